//! `labelwise budget DATA --out DIR`: human labels, hours and cost left, and what more labels buy.

use clap::Args;

use crate::round::select::SelectParams;

use crate::cli::{AutolabelArgs, BudgetArgs, DedupArgs, GraphArgs, InputArgs, RunArgs};
use crate::error::Result;
use crate::output::round_files;
use crate::progress::Progress;
use crate::round::{RoundParams, Stages};

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
}

/// Runs `budget`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let seed = args.run.seed;
    let params = RoundParams {
        seed,
        dedup: args.dedup.params()?,
        autolabel: args.autolabel.params(seed)?,
        budget: args.budget.params(args.batch, args.audit_share)?,
        target_coverage: args.budget.target_coverage,
        ..RoundParams::default()
    };
    let cmd = crate::cli::RoundCommand {
        name: "budget",
        input: &args.input,
        run: &args.run,
        graph: &args.graph,
        carry_extra: false,
        history: None,
        record: false,
        stages: Stages {
            dedup: true,
            autolabel: true,
            budget: true,
            ..Stages::default()
        },
    };
    crate::cli::run_round(cmd, &params, progress, |round, out| {
        round_files::write_budget(round, out)
    })
}
