//! `labelwise budget DATA --out DIR`: human labels, hours and cost left, and what more labels buy.

use clap::Args;
use serde_json::json;

use crate::cli::dedup::DedupArgs;
use crate::cli::{GraphArgs, InputArgs, RunArgs};
use crate::error::Result;
use crate::index::cached::Timings;
use crate::output::OutDir;
use crate::progress::Progress;
use crate::round::{AutolabelArgs, BudgetArgs, Round};

/// Flags of `budget`.
#[derive(Debug, Args)]
pub struct Cmd {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Labels per round; the projection table is at +1×, +2×, +5× and +10× this.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub batch: usize,
    #[command(flatten)]
    pub budget: BudgetArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
    #[command(flatten)]
    pub dedup: DedupArgs,
    #[command(flatten)]
    pub autolabel: AutolabelArgs,
}

/// Runs `budget`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    args.dedup.validate()?;
    let seed = args.run.seed;
    let auto_params = args.autolabel.params(seed)?;
    let budget_params = args.budget.params(args.batch)?;
    let mut timings = Timings::default();
    let prepared = crate::cli::prepare(
        &args.input,
        &args.run,
        &args.graph,
        false,
        progress,
        &mut timings,
    )?;
    let mut round = Round::with_duplicates(&prepared, &args.dedup, &mut timings);
    timings.time("autolabel", || round.run_autolabel(&auto_params))?;
    timings.time("budget", || {
        round.run_budget(
            &budget_params,
            args.budget.target_coverage,
            args.autolabel.target_precision,
            seed,
        )
    })?;
    let out = OutDir::create(&args.run.out)?;
    timings.time("write", || round.write_budget(&out))?;
    let n = prepared.data.len();
    let summary = json!({
        "command": "budget",
        "items": n,
        "graph": prepared.graph.summary(n),
        "budget": round.budget,
        "timings": timings,
    });
    out.write_json("summary.json", &summary)?;
    Ok(())
}
