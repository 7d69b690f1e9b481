//! The pool a round works on: the loaded items and their neighbour graph, the label-independent
//! base every stage reads.

use std::path::PathBuf;

use crate::data::dataset::{self, Dataset, LoadOptions, MemoryCheck};
use crate::error::Result;
use crate::index::cached::{self, CacheChoice, GraphOutcome};
use crate::index::graph::GraphParams;
use crate::progress::Progress;
use crate::round::dedup::Duplicates;
use crate::round::rows::PoolRows;
use crate::round::timings::Timings;

/// The loaded pool and its neighbour graph.
pub struct Pool {
    /// The loaded embeddings, ids and labels.
    pub data: Dataset,
    /// The neighbour graph and how it was obtained.
    pub graph: GraphOutcome,
    /// Where the stages read rows when the matrix is not in this process (a cluster's shards;
    /// `data.embeddings` is then empty). `None`: from `data.embeddings`.
    pub remote_rows: Option<Box<dyn PoolRows + Send>>,
    /// Near-duplicates found where the rows are (a cluster's stage; `None`: the round finds
    /// them): a pool whose matrix is not in this process cannot recompute them.
    pub duplicates: Option<Duplicates>,
}

impl Pool {
    /// Loads the pool from Parquet `paths` (refusing early, before the matrix is allocated, when
    /// the run would need more than `max_memory` bytes or the machine's available memory), then
    /// fetches its graph from `cache` or builds it. Timed as `load` and `graph`.
    pub fn load(
        paths: &[PathBuf],
        opts: &LoadOptions,
        graph: &GraphParams,
        cache: &CacheChoice,
        max_memory: Option<u64>,
        progress: Progress,
        timings: &mut Timings,
    ) -> Result<Pool> {
        let mut opts = opts.clone();
        opts.memory_check = Some(MemoryCheck {
            limit: max_memory,
            k: graph.k as u64,
        });
        let data = timings.time("load", || {
            let spinner = progress.spinner("load");
            let data = dataset::load(paths, &opts);
            spinner.finish_and_clear();
            data
        })?;
        Pool::from_data(data, graph, cache, progress, timings)
    }

    /// A pool from data already in memory (the Python bindings and `simulate` build their own);
    /// the graph comes from `cache` or is built, timed as `graph`.
    pub fn from_data(
        data: Dataset,
        graph: &GraphParams,
        cache: &CacheChoice,
        progress: Progress,
        timings: &mut Timings,
    ) -> Result<Pool> {
        let graph = timings.time("graph", || {
            cached::neighbor_graph(&data, graph, cache, progress)
        })?;
        Ok(Pool {
            data,
            graph,
            remote_rows: None,
            duplicates: None,
        })
    }

    /// The rows every label-dependent stage reads.
    pub fn rows(&self) -> &dyn PoolRows {
        match &self.remote_rows {
            Some(r) => r.as_ref(),
            None => &self.data.embeddings,
        }
    }
}
