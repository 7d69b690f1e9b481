//! `labelwise autolabel DATA --target-precision P --out DIR`: labels what the labels can vouch
//! for at precision P, and routes the rest to humans.

use clap::Args;

use crate::cli::{AutolabelArgs, DedupArgs, GraphArgs, InputArgs, RunArgs};
use crate::error::Result;
use crate::output::summary::Summary;
use crate::output::{round_files, OutDir};
use crate::progress::Progress;
use crate::round::timings::Timings;
use crate::round::{Round, RoundParams, Stages};

/// Flags of `autolabel`.
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
    let mut timings = Timings::default();
    let pool = crate::cli::load_pool(
        &args.input,
        &args.run,
        &args.graph,
        true,
        progress,
        &mut timings,
    )?;
    let round = Round::run(
        &pool,
        &params,
        Stages {
            dedup: true,
            autolabel: true,
            ..Stages::default()
        },
        progress,
        &mut timings,
    )?;
    let out = OutDir::create(&args.run.out)?;
    timings.time("write", || -> Result<()> {
        out.write_parquet("items.parquet", &round_files::items_table(&round)?)?;
        round_files::write_autolabels(&round, &out, &args.autolabel.formats)?;
        Ok(())
    })?;
    Summary::of_round("autolabel", &round, &params, &timings).write(&out)?;
    Ok(())
}
