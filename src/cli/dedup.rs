//! `labelwise dedup DATA --out DIR`: near-duplicate pairs and groups, so each group is labeled once.

use clap::Args;

use crate::cli::{DedupArgs, GraphArgs, InputArgs, RunArgs};
use crate::data::dataset::Dataset;
use crate::error::Result;
use crate::output::round_files;
use crate::output::summary::Summary;
use crate::output::{ItemsTable, OutDir};
use crate::progress::Progress;
use crate::round::dedup::Duplicates;
use crate::round::timings::Timings;
use crate::round::Pool;
use arrow_array::RecordBatch;

/// Flags of `dedup`.
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
}

/// items.parquet of `dedup`: `id`, `dup_group`, `dup_representative`.
pub fn items_table(dups: &Duplicates, data: &Dataset) -> Result<RecordBatch> {
    let mut items = ItemsTable::new(data);
    round_files::add_duplicate_columns(dups, &mut items, 0..data.len());
    items.finish()
}

/// Writes `dedup`'s files into `out` (all but summary.json), timed as `write`.
pub fn write(dups: &Duplicates, data: &Dataset, out: &OutDir, timings: &mut Timings) -> Result<()> {
    timings.time("write", || -> Result<()> {
        round_files::write_pairs(dups, data, out)?;
        out.write_parquet("items.parquet", &items_table(dups, data)?)?;
        Ok(())
    })
}

/// `dedup`'s summary.json: the pool's facts and the duplicates section.
pub fn summary<'a>(dups: &Duplicates, pool: &'a Pool, timings: &'a Timings) -> Summary<'a> {
    Summary {
        duplicates: Some(dups.summary()),
        ..Summary::of_pool("dedup", pool, timings)
    }
}

/// Runs `dedup`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let params = args.dedup.params()?;
    let mut timings = Timings::default();
    let ctx = crate::cli::load_pool(
        &args.input,
        &args.run,
        &args.graph,
        false,
        progress,
        &mut timings,
    )?;
    let dups = timings.time("dedup", || {
        Duplicates::find(ctx.data.embeddings.view(), &ctx.graph.graph, &params)
    });
    let out = OutDir::create(&args.run.out)?;
    write(&dups, &ctx.data, &out, &mut timings)?;
    summary(&dups, &ctx, &timings).write(&out)?;
    Ok(())
}
