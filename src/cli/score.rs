//! `labelwise score DATA --out DIR`: rarity per item, so the batch does not starve the tail.

use clap::Args;

use crate::cli::{GraphArgs, InputArgs, RarityArgs, RunArgs};
use crate::error::Result;
use crate::output::summary::Summary;
use crate::output::{round_files, OutDir};
use crate::progress::Progress;
use crate::round::timings::Timings;
use crate::round::{Round, RoundParams, Stages};

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
    let mut timings = Timings::default();
    let pool = crate::cli::load_pool(
        &args.input,
        &args.run,
        &args.graph,
        false,
        progress,
        &mut timings,
    )?;
    let round = Round::run(
        &pool,
        &params,
        Stages {
            rarity: true,
            ..Stages::default()
        },
        progress,
        &mut timings,
    )?;
    let out = OutDir::create(&args.run.out)?;
    timings.time("write", || {
        out.write_parquet("items.parquet", &round_files::items_table(&round)?)
    })?;
    Summary::of_round("score", &round, &params, &timings).write(&out)?;
    Ok(())
}
