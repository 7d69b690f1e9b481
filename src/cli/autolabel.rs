//! `labelwise autolabel DATA --target-precision P --out DIR`: labels what the labels can vouch
//! for at precision P, and routes the rest to humans.

use clap::Args;

use crate::cli::{AutolabelArgs, DedupArgs, GraphArgs, HistoryArgs, InputArgs, RunArgs};
use crate::error::Result;
use crate::output::round_files;
use crate::progress::Progress;
use crate::round::{RoundParams, Stages};

/// Flags of `autolabel`.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Which embedding and label files to read, and their columns.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output folder, seed, cache and memory limit for the run.
    #[command(flatten)]
    pub run: RunArgs,
    /// The round history folder.
    #[command(flatten)]
    pub history: HistoryArgs,
    /// How the neighbour graph is built and cached.
    #[command(flatten)]
    pub graph: GraphArgs,
    /// Near-duplicate threshold and grouping.
    #[command(flatten)]
    pub dedup: DedupArgs,
    /// Auto-label precision target, model and output formats.
    #[command(flatten)]
    pub autolabel: AutolabelArgs,
}

/// Runs `autolabel`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let seed = args.run.seed;
    let params = RoundParams {
        seed,
        dedup: args.dedup.params()?,
        autolabel: args.autolabel.params(seed)?,
        ..RoundParams::default()
    };
    let cmd = crate::cli::RoundCommand {
        name: "autolabel",
        input: &args.input,
        run: &args.run,
        graph: &args.graph,
        carry_extra: true,
        history: args.history.history.as_deref(),
        record: false,
        stages: Stages {
            dedup: true,
            autolabel: true,
            ..Stages::default()
        },
    };
    crate::cli::run_round(cmd, &params, progress, |round, out| {
        out.write_parquet("items.parquet", &round_files::items_table(round)?)?;
        round_files::write_autolabels(round, out, &args.autolabel.formats)
    })
}
