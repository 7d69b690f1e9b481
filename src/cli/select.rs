//! `labelwise select DATA --batch N --out DIR`: the next N items for humans, ranked, with reasons.

use clap::Args;
use serde_json::json;

use crate::cli::dedup::DedupArgs;
use crate::cli::{GraphArgs, InputArgs, RunArgs};
use crate::error::Result;
use crate::index::cached::Timings;
use crate::output::OutDir;
use crate::progress::Progress;
use crate::round::{AutolabelArgs, RarityArgs, Round, SelectArgs};

/// Flags of `select`.
#[derive(Debug, Args)]
pub struct Cmd {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
    #[command(flatten)]
    pub dedup: DedupArgs,
    #[command(flatten)]
    pub autolabel: AutolabelArgs,
    #[command(flatten)]
    pub rarity: RarityArgs,
}

/// Runs `select`: duplicates, auto-labels (so auto-labeled items are never asked), rarity, batch.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    args.dedup.validate()?;
    let seed = args.run.seed;
    let auto_params = args.autolabel.params(seed)?;
    let rarity_params = args.rarity.params()?;
    let select_params = args.select.params(seed)?;
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
    timings.time("autolabel", || round.run_autolabel(&auto_params))?;
    timings.time("rarity", || round.run_rarity(&rarity_params, seed))?;
    timings.time("select", || round.run_select(&select_params))?;
    let out = OutDir::create(&args.run.out)?;
    timings.time("write", || -> Result<()> {
        out.write_parquet("items.parquet", &round.items_table()?)?;
        round.write_batch(&out)?;
        Ok(())
    })?;
    let n = prepared.data.len();
    let sel = round.selection.as_ref();
    let summary = json!({
        "command": "select",
        "items": n,
        "graph": prepared.graph.summary(n),
        "batch": sel.map(|s| s.picked.len()),
        "strategy": args.select.strategy,
        "strategy_used": sel.map(|s| s.strategy_used),
        "duplicates": round.duplicates.as_ref().map(|d| d.summary()),
        "autolabel": round.autolabel.as_ref().map(|a| &a.summary.counts),
        "timings": timings,
    });
    out.write_json("summary.json", &summary)?;
    Ok(())
}
