//! Progress bars on stderr: shown on a terminal, silent when piped or with `--quiet`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Hands out progress bars that respect `--quiet` and whether stderr is a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    visible: bool,
    /// Told each stage's name as its bar or spinner starts (see [`Progress::with_observer`]).
    observer: Option<fn(&str)>,
}

impl Progress {
    /// Bars are drawn only when not quiet and stderr is a terminal, so logs and CI stay clean.
    pub fn new(quiet: bool) -> Progress {
        Progress {
            visible: !quiet && std::io::stderr().is_terminal(),
            observer: None,
        }
    }

    /// A progress bar that never draws, for library callers and tests.
    pub fn hidden() -> Progress {
        Progress {
            visible: false,
            observer: None,
        }
    }

    /// The same, and `observer` is called with the stage's name (`load`, `graph`, `dedup`,
    /// `autolabel`, `rarity`, `select`, `budget`, `write`, …) on the calling thread each time a
    /// stage starts its bar or spinner, drawn or not: how the Python bindings drive a tqdm bar.
    pub fn with_observer(self, observer: fn(&str)) -> Progress {
        Progress {
            observer: Some(observer),
            ..self
        }
    }

    fn observe(&self, stage: &str) {
        if let Some(f) = self.observer {
            f(stage);
        }
    }

    /// A bar over `len` units of work, labeled with the stage name.
    pub fn bar(&self, len: u64, stage: &str) -> ProgressBar {
        self.observe(stage);
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(stage.to_string());
        bar
    }

    /// A spinner for work whose length is unknown (e.g. reading Parquet).
    pub fn spinner(&self, stage: &str) -> ProgressBar {
        self.observe(stage);
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>10} [{elapsed_precise}] {spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(stage.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}
