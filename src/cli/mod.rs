//! One module per subcommand, each wiring library stages together (in the manner of xsv).
//! Only this layer and `output` touch the filesystem.

pub mod autolabel;
pub mod budget;
pub mod dedup;
pub mod export;
pub mod inspect;
pub mod plan;
pub mod score;
pub mod select;
pub mod simulate;

use std::path::PathBuf;

use clap::Args;

use crate::data::dataset::{self, Dataset, LoadOptions, MemoryCheck};
use crate::error::Result;
use crate::index::cached::{self, CacheChoice, GraphOutcome, Timings};
use crate::index::graph::{GraphParams, IndexKind, DEFAULT_K, DEFAULT_PROBES};
use crate::progress::Progress;

/// Input flags shared by every command that reads a pool.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Parquet files or folders of Parquet files (read recursively, all with the same schema).
    #[arg(required = true, value_name = "DATA")]
    pub data: Vec<PathBuf>,
    /// Column holding the item id (string or integer, unique across all files).
    #[arg(long, default_value = "id", value_name = "NAME")]
    pub id_col: String,
    /// Column holding the embedding (list of float16/32/64, one length for all rows).
    #[arg(long, default_value = "embedding", value_name = "NAME")]
    pub embedding_col: String,
    /// Column holding labels (null = unlabeled) [default: `label` when present].
    #[arg(long, value_name = "NAME")]
    pub label_col: Option<String>,
    /// Annotators' labels (CSV or Parquet with columns id,label) applied on top of the label column.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
}

impl InputArgs {
    /// Loader options for these flags; `carry_extra` keeps the other columns for exports.
    pub fn load_options(&self, carry_extra: bool) -> LoadOptions {
        LoadOptions {
            id_col: self.id_col.clone(),
            embedding_col: self.embedding_col.clone(),
            label_col: self.label_col.clone(),
            labels_file: self.labels.clone(),
            carry_extra,
            memory_check: None,
        }
    }
}

/// Flags shared by every command that writes a run's outputs.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Output folder (created); every file in it is written atomically.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Seed for every random choice; the same inputs and seed give byte-identical outputs.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Cache folder for label-independent work [default: .labelwise-cache beside the first input].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Refuse to start when the run is estimated to need more memory (e.g. 8G) [default: available memory].
    #[arg(long, value_name = "SIZE", value_parser = crate::data::memory::parse_size)]
    pub max_memory: Option<u64>,
}

/// Neighbour-graph flags, shared by every command that builds the graph.
#[derive(Debug, Clone, Args)]
pub struct GraphArgs {
    /// Neighbours kept per item in the graph.
    #[arg(long, default_value_t = DEFAULT_K, value_name = "K")]
    pub k: usize,
    /// How the graph is built: auto picks exact or partitioned by size (see BENCHMARKS.md).
    #[arg(long, value_enum, default_value_t = IndexKind::Auto)]
    pub index: IndexKind,
    /// Partitioned index: k-means lists each item searches (more = higher recall, slower).
    #[arg(long, default_value_t = DEFAULT_PROBES, value_name = "P")]
    pub probes: usize,
}

impl GraphArgs {
    /// Graph parameters for these flags and the run's seed.
    pub fn params(&self, seed: u64) -> GraphParams {
        GraphParams {
            k: self.k,
            index: self.index,
            probes: self.probes,
            seed,
        }
    }
}

/// The loaded pool and its neighbour graph: the label-independent base of every command.
pub struct Prepared {
    pub data: Dataset,
    pub graph: GraphOutcome,
}

/// Loads the pool (refusing early when it would not fit in memory) and gets its graph.
pub fn prepare(
    input: &InputArgs,
    run: &RunArgs,
    graph: &GraphArgs,
    carry_extra: bool,
    progress: Progress,
    timings: &mut Timings,
) -> Result<Prepared> {
    let mut opts = input.load_options(carry_extra);
    opts.memory_check = Some(MemoryCheck {
        limit: run.max_memory,
        k: graph.k as u64,
    });
    let data = timings.time("load", || {
        let spinner = progress.spinner("load");
        let data = dataset::load(&input.data, &opts);
        spinner.finish_and_clear();
        data
    })?;
    let cache = CacheChoice::from_flags(run.cache.as_deref(), run.no_cache, &input.data[0]);
    let params = graph.params(run.seed);
    let graph = timings.time("graph", || {
        cached::neighbor_graph(&data, &params, &cache, progress)
    })?;
    Ok(Prepared { data, graph })
}
