//! Wall time per stage, so summary.json can say where a run's time went.

use std::time::Instant;

use serde::Serialize;

/// Wall time of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageTime {
    /// Stage name as shown in the timings table.
    pub stage: String,
    /// Wall-clock seconds the stage took.
    pub seconds: f64,
}

/// Wall time per stage, in run order. The one part of summary.json that differs between runs.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Timings(pub Vec<StageTime>);

impl Timings {
    /// Runs `f`, recording its wall time under `stage`.
    pub fn time<T>(&mut self, stage: &str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.0.push(StageTime {
            stage: stage.to_string(),
            seconds: start.elapsed().as_secs_f64(),
        });
        out
    }
}
