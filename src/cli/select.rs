//! `labelwise select DATA --batch N --out DIR`: the next N items for humans, ranked, with reasons.

use clap::Args;

use crate::cli::{
    AutolabelArgs, DedupArgs, GraphArgs, HistoryArgs, InputArgs, RarityArgs, RunArgs, SelectArgs,
};
use crate::error::Result;
use crate::output::round_files;
use crate::progress::Progress;
use crate::round::{RoundParams, Stages};

/// Flags of `select`.
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
    /// Batch size, selection strategy and score weights.
    #[command(flatten)]
    pub select: SelectArgs,
    /// How the neighbour graph is built and cached.
    #[command(flatten)]
    pub graph: GraphArgs,
    /// Near-duplicate threshold and grouping.
    #[command(flatten)]
    pub dedup: DedupArgs,
    /// Auto-label precision target, model and output formats.
    #[command(flatten)]
    pub autolabel: AutolabelArgs,
    /// How rarity is scored.
    #[command(flatten)]
    pub rarity: RarityArgs,
}

/// Runs `select`: duplicates, auto-labels (so auto-labeled items are never asked), rarity, batch.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let seed = args.run.seed;
    let params = RoundParams {
        seed,
        dedup: args.dedup.params()?,
        autolabel: args.autolabel.params(seed)?,
        rarity: args.rarity.params()?,
        select: args.select.params(seed)?,
        ..RoundParams::default()
    };
    let cmd = crate::cli::RoundCommand {
        name: "select",
        input: &args.input,
        run: &args.run,
        graph: &args.graph,
        carry_extra: true,
        history: args.history.history.as_deref(),
        record: true,
        stages: Stages {
            dedup: true,
            autolabel: true,
            rarity: true,
            select: true,
            ..Stages::default()
        },
    };
    crate::cli::run_round(cmd, &params, progress, |round, out| {
        out.write_parquet("items.parquet", &round_files::items_table(round)?)?;
        round_files::write_batch(round, out)
    })
}
