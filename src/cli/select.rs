//! `labelwise select DATA --batch N --out DIR`: the next N items for humans, ranked, with reasons.

use clap::Args;

use crate::cli::{
    AutolabelArgs, DedupArgs, GraphArgs, HistoryArgs, InputArgs, RarityArgs, RoundCommand,
    RoundRulesArgs, RunArgs, SelectArgs,
};
use crate::error::Result;
use crate::output::round_files;
use crate::output::OutDir;
use crate::progress::Progress;
use crate::round::{Round, RoundParams, Stages};

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
    /// The users' rules as an auto-label route.
    #[command(flatten)]
    pub rules: RoundRulesArgs,
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

impl Cmd {
    /// The round's parameters, from these flags.
    pub fn params(&self) -> Result<RoundParams> {
        let seed = self.run.seed;
        Ok(RoundParams {
            seed,
            dedup: self.dedup.params()?,
            autolabel: self.autolabel.params(seed)?,
            rarity: self.rarity.params()?,
            select: self.select.params(seed)?,
            ..RoundParams::default()
        })
    }

    /// What `select` reads and runs.
    pub fn command(&self) -> RoundCommand<'_> {
        RoundCommand {
            name: "select",
            input: &self.input,
            run: &self.run,
            graph: &self.graph,
            carry_extra: true,
            history: self.history.history.as_deref(),
            rules: self.rules.inputs(),
            record: true,
            stages: Stages {
                dedup: true,
                autolabel: true,
                rarity: true,
                select: true,
                ..Stages::default()
            },
        }
    }

    /// Writes `select`'s files for `round` into `out` (all but summary.json).
    pub fn write(&self, round: &Round, out: &OutDir) -> Result<()> {
        out.write_parquet("items.parquet", &round_files::items_table(round)?)?;
        round_files::write_batch(round, out, &round_files::picked_carried(round)?)
    }
}

/// Runs `select`: duplicates, auto-labels (so auto-labeled items are never asked), rarity, batch.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let params = args.params()?;
    crate::cli::run_round(args.command(), &params, progress, |round, out| {
        args.write(round, out)
    })
}
