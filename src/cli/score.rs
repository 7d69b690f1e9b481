//! `labelwise score DATA --out DIR`: rarity per item, so the batch does not starve the tail.

use clap::Args;

use crate::cli::{GraphArgs, InputArgs, RarityArgs, RoundCommand, RunArgs};
use crate::error::Result;
use crate::output::round_files;
use crate::output::OutDir;
use crate::progress::Progress;
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

impl Cmd {
    /// The round's parameters, from these flags.
    pub fn params(&self) -> Result<RoundParams> {
        let seed = self.run.seed;
        Ok(RoundParams {
            seed,
            rarity: self.rarity.params()?,
            ..RoundParams::default()
        })
    }

    /// What `score` reads and runs.
    pub fn command(&self) -> RoundCommand<'_> {
        RoundCommand {
            name: "score",
            input: &self.input,
            run: &self.run,
            graph: &self.graph,
            carry_extra: false,
            history: None,
            rules: Default::default(),
            record: false,
            stages: Stages {
                rarity: true,
                ..Stages::default()
            },
        }
    }

    /// Writes `score`'s files for `round` into `out` (all but summary.json).
    pub fn write(&self, round: &Round, out: &OutDir) -> Result<()> {
        out.write_parquet("items.parquet", &round_files::items_table(round)?)?;
        Ok(())
    }
}

/// Runs `score`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let params = args.params()?;
    crate::cli::run_round(args.command(), &params, progress, |round, out| {
        args.write(round, out)
    })
}
