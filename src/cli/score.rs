//! `labelwise score DATA --out DIR`: rarity per item, so the batch does not starve the tail.

use clap::Args;
use serde_json::json;

use crate::cli::{GraphArgs, InputArgs, RunArgs};
use crate::error::Result;
use crate::index::cached::Timings;
use crate::output::OutDir;
use crate::progress::Progress;
use crate::round::{RarityArgs, Round};

/// Flags of `score`.
#[derive(Debug, Args)]
pub struct Cmd {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
    #[command(flatten)]
    pub rarity: RarityArgs,
}

/// Runs `score`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let params = args.rarity.params()?;
    let mut timings = Timings::default();
    let prepared = crate::cli::prepare(
        &args.input,
        &args.run,
        &args.graph,
        false,
        progress,
        &mut timings,
    )?;
    let mut round = Round::new(&prepared);
    timings.time("rarity", || round.run_rarity(&params, args.run.seed))?;
    let out = OutDir::create(&args.run.out)?;
    timings.time("write", || {
        out.write_parquet("items.parquet", &round.items_table()?)
    })?;
    let n = prepared.data.len();
    let summary = json!({
        "command": "score",
        "items": n,
        "graph": prepared.graph.summary(n),
        "rarity": round.rarity.as_ref().map(|r| &r.summary),
        "timings": timings,
    });
    out.write_json("summary.json", &summary)?;
    Ok(())
}
