//! `labelwise score DATA --out DIR`: rarity per item, so the batch does not starve the tail.

use clap::Args;

use crate::cli::{GraphArgs, InputArgs, RarityArgs, RunArgs};
use crate::error::Result;
use crate::output::round_files;
use crate::progress::Progress;
use crate::round::{RoundParams, Stages};

/// Flags of `score`.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Which embedding and label files to read, and their columns.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output folder, seed, cache and memory limit for the run.
    #[command(flatten)]
    pub run: RunArgs,
    /// How the neighbour graph is built and cached.
    #[command(flatten)]
    pub graph: GraphArgs,
    /// How rarity is scored.
    #[command(flatten)]
    pub rarity: RarityArgs,
}

/// Runs `score`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let seed = args.run.seed;
    let params = RoundParams {
        seed,
        rarity: args.rarity.params()?,
        ..RoundParams::default()
    };
    let cmd = crate::cli::RoundCommand {
        name: "score",
        input: &args.input,
        run: &args.run,
        graph: &args.graph,
        carry_extra: false,
        history: None,
        record: false,
        stages: Stages {
            rarity: true,
            ..Stages::default()
        },
    };
    crate::cli::run_round(cmd, &params, progress, |round, out| {
        out.write_parquet("items.parquet", &round_files::items_table(round)?)?;
        Ok(())
    })
}
