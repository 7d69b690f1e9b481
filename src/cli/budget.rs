//! `labelwise budget DATA --out DIR`: human labels, hours and cost left, and what more labels buy.

use clap::Args;

use crate::round::select::SelectParams;

use crate::cli::{
    AutolabelArgs, BudgetArgs, DedupArgs, GraphArgs, HistoryArgs, InputArgs, RoundCommand, RunArgs,
};
use crate::error::Result;
use crate::output::round_files;
use crate::output::OutDir;
use crate::progress::Progress;
use crate::round::{Round, RoundParams, Stages};

/// Flags of `budget`.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Which embedding and label files to read, and their columns.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output folder, seed, cache and memory limit for the run.
    #[command(flatten)]
    pub run: RunArgs,
    /// Labels per round; the projection table is at +1×, +2×, +5× and +10× this.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub batch: usize,
    /// Share of each batch drawn as audits (verifications), as `plan` and `select` draw them.
    #[arg(long, default_value_t = SelectParams::default().audit_share, value_name = "F")]
    pub audit_share: f64,
    /// Labeling cost and time, review share and targets for the projection.
    #[command(flatten)]
    pub budget: BudgetArgs,
    /// How the neighbour graph is built and cached.
    #[command(flatten)]
    pub graph: GraphArgs,
    /// Near-duplicate threshold and grouping.
    #[command(flatten)]
    pub dedup: DedupArgs,
    /// Auto-label precision target, model and output formats.
    #[command(flatten)]
    pub autolabel: AutolabelArgs,
    /// The round history `plan` and `select` keep: read only (its audits are the certificate's
    /// evidence, its rounds' coverage is what the coverage projection extrapolates).
    #[command(flatten)]
    pub history: HistoryArgs,
}

impl Cmd {
    /// The round's parameters, from these flags.
    pub fn params(&self) -> Result<RoundParams> {
        let seed = self.run.seed;
        Ok(RoundParams {
            seed,
            dedup: self.dedup.params()?,
            autolabel: self.autolabel.params(seed)?,
            budget: self.budget.params(self.batch, self.audit_share)?,
            target_coverage: self.budget.target_coverage,
            ..RoundParams::default()
        })
    }

    /// What `budget` reads and runs.
    pub fn command(&self) -> RoundCommand<'_> {
        RoundCommand {
            name: "budget",
            input: &self.input,
            run: &self.run,
            graph: &self.graph,
            carry_extra: false,
            history: self.history.history.as_deref(),
            rules: Default::default(),
            record: false,
            stages: Stages {
                dedup: true,
                autolabel: true,
                budget: true,
                ..Stages::default()
            },
        }
    }

    /// Writes `budget`'s files for `round` into `out` (all but summary.json).
    pub fn write(&self, round: &Round, out: &OutDir) -> Result<()> {
        round_files::write_budget(round, out)
    }
}

/// Runs `budget`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let params = args.params()?;
    crate::cli::run_round(args.command(), &params, progress, |round, out| {
        args.write(round, out)
    })
}
