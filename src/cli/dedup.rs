//! `labelwise dedup DATA --out DIR`: near-duplicate pairs and groups, so each group is labeled once.

use std::sync::Arc;

use arrow_array::{BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use clap::Args;
use serde::Serialize;

use crate::cli::{GraphArgs, InputArgs, RunArgs};
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::index::cached::Timings;
use crate::output::{id_array, ItemsTable, OutDir};
use crate::progress::Progress;
use crate::round::dedup::{self, DupGroups, DupPair, Grouping};

/// Near-duplicate flags, shared by `dedup` and `plan`.
#[derive(Debug, Clone, Args)]
pub struct DedupArgs {
    /// Cosine at or above which two items are near-duplicates.
    #[arg(long, default_value_t = 0.95, value_name = "T")]
    pub threshold: f64,
    /// How pairs form groups: connected components, or stars around a representative (no chains).
    #[arg(long, value_enum, default_value_t = Grouping::Star)]
    pub grouping: Grouping,
}

impl DedupArgs {
    /// Rejects thresholds outside (0, 1].
    pub fn validate(&self) -> Result<()> {
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(Error::Usage(format!(
                "--threshold must be in (0, 1], got {}",
                self.threshold
            )));
        }
        Ok(())
    }
}

/// Flags of `dedup`.
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
}

/// Pairs and groups, computed once and shared by the stages that need them.
#[derive(Debug, Clone)]
pub struct Duplicates {
    pub threshold: f64,
    pub grouping: Grouping,
    pub pairs: Vec<DupPair>,
    pub groups: DupGroups,
}

/// summary.json's view of the duplicates.
#[derive(Debug, Serialize)]
pub struct DuplicatesSummary {
    pub threshold: f64,
    pub grouping: String,
    pub pairs: usize,
    pub groups_with_duplicates: usize,
    pub items_in_groups: usize,
    /// Items that need no label of their own: group members other than the representative.
    pub labels_saved: usize,
    pub largest_group: usize,
}

impl Duplicates {
    /// Finds the pairs on the graph (extended past top-k where needed) and groups them.
    pub fn find(
        data: &Dataset,
        graph: &crate::index::graph::NeighborGraph,
        args: &DedupArgs,
    ) -> Duplicates {
        let emb = data.embeddings.view();
        let pairs = dedup::find_pairs(emb, graph, args.threshold);
        let groups = dedup::groups(data.len(), &pairs, emb, args.grouping, args.threshold);
        Duplicates {
            threshold: args.threshold,
            grouping: args.grouping,
            pairs,
            groups,
        }
    }

    /// Group id per item, −1 for items without a near-duplicate: the form auto-labeling and
    /// selection take.
    pub fn group_or_none(&self) -> Vec<i64> {
        self.groups
            .group
            .iter()
            .zip(&self.groups.group_size)
            .map(|(&g, &size)| if size > 1 { g } else { -1 })
            .collect()
    }

    /// Figures for summary.json and the report.
    pub fn summary(&self) -> DuplicatesSummary {
        let mut sizes = std::collections::HashMap::<i64, usize>::new();
        for &g in &self.groups.group {
            *sizes.entry(g).or_default() += 1;
        }
        let multi: Vec<usize> = sizes.values().copied().filter(|&s| s > 1).collect();
        DuplicatesSummary {
            threshold: self.threshold,
            grouping: format!("{:?}", self.grouping).to_lowercase(),
            pairs: self.pairs.len(),
            groups_with_duplicates: multi.len(),
            items_in_groups: multi.iter().sum(),
            labels_saved: multi.iter().map(|s| s - 1).sum(),
            largest_group: multi.iter().copied().max().unwrap_or(1),
        }
    }

    /// Adds `dup_group` and `dup_representative` to items.parquet.
    pub fn add_columns(&self, items: &mut ItemsTable) {
        items.push(
            "dup_group",
            Arc::new(Int64Array::from(self.groups.group.clone())),
            false,
        );
        items.push(
            "dup_representative",
            Arc::new(BooleanArray::from(self.groups.representative.clone())),
            false,
        );
    }

    /// Writes duplicate_pairs.parquet (`id_a`, `id_b`, `cosine`; id_a first in input order).
    pub fn write_pairs(&self, data: &Dataset, out: &OutDir) -> Result<()> {
        let ids_a = id_array(data, self.pairs.iter().map(|p| p.a as usize));
        let ids_b = id_array(data, self.pairs.iter().map(|p| p.b as usize));
        let id_type: DataType = ids_a.data_type().clone();
        let schema = Schema::new(vec![
            Field::new("id_a", id_type.clone(), false),
            Field::new("id_b", id_type, false),
            Field::new("cosine", DataType::Float64, false),
        ]);
        let cos = Arc::new(Float64Array::from_iter_values(
            self.pairs.iter().map(|p| p.cosine),
        ));
        let batch = RecordBatch::try_new(Arc::new(schema), vec![ids_a, ids_b, cos])
            .map_err(|e| Error::Internal(format!("pairs table: {e}")))?;
        out.write_parquet("duplicate_pairs.parquet", &batch)?;
        Ok(())
    }
}

/// Runs `dedup`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    args.dedup.validate()?;
    let mut timings = Timings::default();
    let ctx = crate::cli::prepare(
        &args.input,
        &args.run,
        &args.graph,
        false,
        progress,
        &mut timings,
    )?;
    let dups = timings.time("dedup", || {
        Duplicates::find(&ctx.data, &ctx.graph.graph, &args.dedup)
    });
    let out = OutDir::create(&args.run.out)?;
    let mut items = ItemsTable::new(&ctx.data);
    dups.add_columns(&mut items);
    timings.time("write", || -> Result<()> {
        dups.write_pairs(&ctx.data, &out)?;
        out.write_parquet("items.parquet", &items.finish()?)?;
        Ok(())
    })?;
    let summary = serde_json::json!({
        "command": "dedup",
        "items": ctx.data.len(),
        "graph": ctx.graph.summary(ctx.data.len()),
        "duplicates": dups.summary(),
        "timings": timings,
    });
    out.write_json("summary.json", &summary)?;
    Ok(())
}
