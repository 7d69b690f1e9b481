//! `labelwise autolabel DATA --target-precision P --out DIR`: labels what the labels can vouch
//! for at precision P, and routes the rest to humans.

use clap::Args;
use serde_json::json;

use crate::cli::dedup::DedupArgs;
use crate::cli::{GraphArgs, InputArgs, RunArgs};
use crate::error::Result;
use crate::index::cached::Timings;
use crate::output::OutDir;
use crate::progress::Progress;
use crate::round::{AutolabelArgs, Round};

/// Flags of `autolabel`.
#[derive(Debug, Args)]
pub struct Cmd {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
    #[command(flatten)]
    pub dedup: DedupArgs,
    #[command(flatten)]
    pub autolabel: AutolabelArgs,
}

/// Runs `autolabel`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    args.dedup.validate()?;
    let params = args.autolabel.params(args.run.seed)?;
    let mut timings = Timings::default();
    let prepared = crate::cli::prepare(
        &args.input,
        &args.run,
        &args.graph,
        true,
        progress,
        &mut timings,
    )?;
    let mut round = Round::with_duplicates(&prepared, &args.dedup, &mut timings);
    timings.time("autolabel", || round.run_autolabel(&params))?;
    let out = OutDir::create(&args.run.out)?;
    timings.time("write", || -> Result<()> {
        out.write_parquet("items.parquet", &round.items_table()?)?;
        round.write_autolabels(&out, &args.autolabel.formats)?;
        Ok(())
    })?;
    let n = prepared.data.len();
    let summary = json!({
        "command": "autolabel",
        "items": n,
        "graph": prepared.graph.summary(n),
        "duplicates": round.duplicates.as_ref().map(|d| d.summary()),
        "autolabel": round.autolabel.as_ref().map(|a| &a.summary),
        "timings": timings,
    });
    out.write_json("summary.json", &summary)?;
    Ok(())
}
