//! The neighbour graph through the cache: fetched when this pool was indexed before with the
//! same parameters, extended when the pool is a cached one plus appended rows, built otherwise.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::dataset::Dataset;
use crate::error::Result;
use crate::index::graph::{self, GraphParams, IndexKind, NeighborGraph};
use crate::index::incremental;
use crate::index::{build, checkpoint};
use crate::progress::Progress;
use crate::store::cache::{self, Cache};

/// Items sampled to measure the graph's recall@10 against exact search.
pub const RECALL_SAMPLE: usize = 2000;

/// Where the cache lives for a run, or that it is off.
#[derive(Debug, Clone)]
pub enum CacheChoice {
    /// No cache: build the graph every run and write nothing.
    Off,
    /// Read and write cached graphs in this directory.
    Dir(PathBuf),
}

impl CacheChoice {
    /// `--cache DIR`, or `.labelwise-cache` beside the first input; `--no-cache` turns it off.
    pub fn from_flags(cache: Option<&Path>, no_cache: bool, first_input: &Path) -> CacheChoice {
        if no_cache {
            return CacheChoice::Off;
        }
        match cache {
            Some(dir) => CacheChoice::Dir(dir.to_path_buf()),
            None => {
                let base = if first_input.is_dir() {
                    first_input
                } else {
                    first_input.parent().unwrap_or(Path::new("."))
                };
                let base = if base.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    base
                };
                CacheChoice::Dir(base.join(".labelwise-cache"))
            }
        }
    }
}

/// The graph with how it was obtained, for summary.json.
#[derive(Debug, Clone)]
pub struct GraphOutcome {
    /// The k-nearest-neighbour graph every label-independent stage reads.
    pub graph: NeighborGraph,
    /// Which index built it (exact or approximate), reported so recall can be judged.
    pub route: IndexKind,
    /// Measured recall@10 against exact search in 0–1; 1 for the exact index.
    pub recall_at_10: f64,
    /// Whether the graph came from the cache rather than being built.
    pub cache_hit: bool,
    /// Why the cache was not used, when it was requested but unusable (e.g. read-only folder).
    pub cache_note: Option<String>,
    /// Set when the graph extends the cached graph of a prefix of the pool instead of being
    /// rebuilt (new rows appended since an earlier run).
    pub incremental: Option<IncrementalInfo>,
    /// The cache and this pool's content key, so later label-independent stages (rarity's
    /// clusters) store their results beside the graph; `None` without a cache.
    pub pool_cache: Option<PoolCache>,
}

/// Where label-independent artifacts of one pool are cached.
#[derive(Debug, Clone)]
pub struct PoolCache {
    /// The cache directory.
    pub cache: Cache,
    /// Hex content hash of the pool's embeddings: every artifact key starts from it.
    pub pool_key: String,
}

/// How an incremental graph was obtained (summary.json `graph.incremental`).
#[derive(Debug, Clone, Serialize)]
pub struct IncrementalInfo {
    /// Rows of the cached pool the graph extends (the first rows of this pool).
    pub base_items: usize,
    /// Rows appended since, whose neighbours were searched now.
    pub new_items: usize,
    /// `exact-append`: new rows searched exactly against all rows, old rows' lists updated
    /// exactly with the new rows (see `incremental`). `hnsw-insert` (`--index hnsw`): the
    /// cached `hnsw_rs` index of the base took in the new rows and answered their queries.
    pub method: String,
}

/// What summary.json says about the graph.
#[derive(Debug, Clone, Serialize)]
pub struct GraphSummary {
    /// Neighbours kept per item.
    pub k: usize,
    /// Name of the index that built the graph.
    pub index: String,
    /// Measured recall@10 against exact search, in 0–1.
    pub recall_at_10: f64,
    /// Items sampled to measure that recall.
    pub recall_sample: usize,
    /// Whether the graph was read from the cache.
    pub cache_hit: bool,
    /// Why the cache was missed or not used, when that is worth telling the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_note: Option<String>,
    /// What an incremental update added to a cached graph, if one happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalInfo>,
}

impl GraphOutcome {
    /// The summary.json view.
    pub fn summary(&self, n: usize) -> GraphSummary {
        GraphSummary {
            k: self.graph.k,
            index: format!("{:?}", self.route).to_lowercase(),
            recall_at_10: self.recall_at_10,
            recall_sample: RECALL_SAMPLE.min(n),
            cache_hit: self.cache_hit,
            cache_note: self.cache_note.clone(),
            incremental: self.incremental.clone(),
        }
    }
}

fn route_code(route: IndexKind) -> u8 {
    match route {
        IndexKind::Auto | IndexKind::Exact => 1,
        IndexKind::Partitioned => 2,
        IndexKind::Hnsw => 3,
    }
}

fn route_from_code(code: u8) -> Option<IndexKind> {
    match code {
        1 => Some(IndexKind::Exact),
        2 => Some(IndexKind::Partitioned),
        3 => Some(IndexKind::Hnsw),
        _ => None,
    }
}

/// Cache payload: route (1 byte), recall (f64), then the graph's own encoding.
fn encode_graph_entry(outcome: &GraphOutcome) -> Vec<u8> {
    let mut bytes = vec![route_code(outcome.route)];
    bytes.extend_from_slice(&outcome.recall_at_10.to_le_bytes());
    bytes.extend_from_slice(&cache::graph_to_bytes(&outcome.graph));
    bytes
}

fn decode_graph_entry(bytes: &[u8], n: usize) -> Option<(NeighborGraph, IndexKind, f64)> {
    let route = route_from_code(*bytes.first()?)?;
    let recall = f64::from_le_bytes(bytes.get(1..9)?.try_into().ok()?);
    let graph = cache::graph_from_bytes(bytes.get(9..)?).ok()?;
    // A graph for a different item count can only come from a hash collision or a bug.
    (graph.len() == n || graph.k == 0).then_some((graph, route, recall))
}

/// Cache key of the graph of the pool whose embeddings hash to `pool_hash`, built with
/// `params`.
fn graph_key(pool_hash: &blake3::Hash, params: &GraphParams) -> String {
    let mut h = blake3::Hasher::new();
    h.update(pool_hash.as_bytes());
    h.update(&params.cache_key_bytes());
    format!("graph-{}", h.finalize().to_hex())
}

/// Stores a graph built elsewhere (by a cluster, `labelwise.distributed`) under the key a run
/// on the same embeddings with `params` looks up, with its recall@10 measured here as
/// [`neighbor_graph`] measures it; that run then reads it as a cache hit and its every other
/// stage is the single-machine one. `route` is what summary.json reports. Returns the key and
/// the recall.
pub fn store_graph(
    cache: &Cache,
    emb: ndarray::ArrayView2<f32>,
    params: &GraphParams,
    graph: NeighborGraph,
    route: IndexKind,
) -> Result<(String, f64)> {
    let n = emb.nrows();
    params.validate(n)?;
    let k = params.k.min(n - 1);
    if graph.len() != n || graph.k != k {
        return Err(crate::error::Error::Usage(format!(
            "the graph has {} rows of {} neighbours, the pool {n} items (k = {k})",
            graph.len(),
            graph.k
        )));
    }
    // The same validation a cached graph passes on the way in.
    let graph = cache::graph_from_bytes(&cache::graph_to_bytes(&graph))?;
    let key = graph_key(&cache::embedding_hash(emb), params);
    let recall = graph::recall_at_10(emb, &graph, RECALL_SAMPLE, params.seed);
    let outcome = GraphOutcome {
        graph,
        route,
        recall_at_10: recall,
        cache_hit: false,
        cache_note: None,
        incremental: None,
        pool_cache: None,
    };
    cache.put(&key, &encode_graph_entry(&outcome))?;
    incremental::remember(cache, emb, params, &key)?;
    Ok((key, recall))
}

/// Builds (or loads from the cache) the neighbour graph of the pool.
pub fn neighbor_graph(
    data: &Dataset,
    params: &GraphParams,
    cache_choice: &CacheChoice,
    progress: Progress,
) -> Result<GraphOutcome> {
    let emb = data.embeddings.view();
    let n = data.len();
    params.validate(n)?;
    let (cache, mut cache_note) = match cache_choice {
        CacheChoice::Off => (None, None),
        CacheChoice::Dir(dir) => match Cache::open(dir) {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(format!("cache disabled: {e}"))),
        },
    };
    let pool_hash = cache.as_ref().map(|_| cache::embedding_hash(emb));
    let pool_cache = cache.as_ref().zip(pool_hash).map(|(c, h)| PoolCache {
        cache: c.clone(),
        pool_key: h.to_hex().to_string(),
    });
    let key = pool_hash.map(|pool_hash| graph_key(&pool_hash, params));
    if let (Some(c), Some(key)) = (&cache, &key) {
        if let Some((graph, route, recall)) = c.get(key).and_then(|b| decode_graph_entry(&b, n)) {
            return Ok(GraphOutcome {
                graph,
                route,
                recall_at_10: recall,
                cache_hit: true,
                cache_note,
                incremental: None,
                pool_cache,
            });
        }
    }
    let extended = match &cache {
        Some(c) => extend_cached_prefix(c, data, params, progress)?,
        None => None,
    };
    let (graph, route, incremental, hnsw_index) = match extended {
        Some((g, route, info, index)) => (g, route, Some(info), index),
        None => {
            let bar = progress.bar(n as u64, "graph");
            // Checkpointed under the graph's key, so a killed build resumes on the next run.
            let ckpt = cache
                .as_ref()
                .zip(key.as_deref())
                .map(|(c, k)| cache::Checkpoints::new(c, k));
            let store = ckpt.as_ref().map(|c| c as &dyn checkpoint::CheckpointStore);
            // The hnsw route's index is kept: cached beside the graph, it is the query index
            // for rows appended to this pool later (`extend_cached_prefix`).
            let (graph, route, _, index) = build::build_keeping_index(emb, params, &bar, store)?;
            bar.finish_and_clear();
            (graph, route, None, index.filter(|_| cache.is_some()))
        }
    };
    let recall = match (route, &incremental) {
        // Exact search is exact (and an exact base extended exactly stays exact): measuring it
        // would only re-derive 1.0.
        (IndexKind::Exact | IndexKind::Auto, _) => 1.0,
        _ => graph::recall_at_10(emb, &graph, RECALL_SAMPLE, params.seed),
    };
    let outcome = GraphOutcome {
        graph,
        route,
        recall_at_10: recall,
        cache_hit: false,
        cache_note: None,
        incremental,
        pool_cache,
    };
    if let (Some(c), Some(key)) = (&cache, &key) {
        let stored = c
            .put(key, &encode_graph_entry(&outcome))
            .and_then(|()| match &hnsw_index {
                Some(index) => c.put(&hnsw_index_key(key), &index.to_bytes(c.dir())?),
                None => Ok(()),
            })
            .and_then(|()| incremental::remember(c, emb, params, key));
        if let Err(e) = stored {
            cache_note = Some(format!("graph not cached: {e}"));
        } else {
            // The graph is stored: its build's checkpoints are no longer needed.
            cache::Checkpoints::new(c, key).clear();
        }
    }
    Ok(GraphOutcome {
        cache_note,
        ..outcome
    })
}

/// Cache key of the HNSW index built with (or extended into) the graph stored under `graph_key`.
fn hnsw_index_key(graph_key: &str) -> String {
    format!("hnsw-index-{graph_key}")
}

/// A graph extended from a cached prefix: the graph, the base's route, how, and (hnsw route)
/// the query index now holding every row.
type Extension = (
    NeighborGraph,
    IndexKind,
    IncrementalInfo,
    Option<crate::index::hnsw::HnswIndex>,
);

/// The graph of `data` extended from the cached graph of its longest cached prefix, when there
/// is one with the same parameters and the extension is cheaper than a rebuild; `None`
/// otherwise (the caller rebuilds).
///
/// Two routes. `--index hnsw`: the base's cached `hnsw_rs` index takes in the new rows and
/// answers their queries ([`incremental::extend_with_index`]); inserting m rows costs less
/// than rebuilding n + m, so it extends whenever the base is at least as large as the append.
/// Every other index: the exact append ([`incremental::extend_exact`]) when
/// [`incremental::worth_extending`] says it beats a rebuild.
fn extend_cached_prefix(
    cache: &Cache,
    data: &Dataset,
    params: &GraphParams,
    progress: Progress,
) -> Result<Option<Extension>> {
    let emb = data.embeddings.view();
    let n = data.len();
    let Some(base) = incremental::find_base(cache, emb, params) else {
        return Ok(None);
    };
    let m = n - base.n;
    let hnsw_route = params.index == IndexKind::Hnsw;
    let worth = if hnsw_route {
        m <= base.n
    } else {
        incremental::worth_extending(base.n, m)
    };
    if !worth {
        return Ok(None);
    }
    let Some((base_graph, route, _)) = cache
        .get(&base.graph_key)
        .and_then(|b| decode_graph_entry(&b, base.n))
    else {
        return Ok(None);
    };
    // k is clipped to n − 1 for tiny pools: a base clipped harder than this pool needs is
    // not extendable.
    if base_graph.k == 0 || base_graph.k != params.k.min(n - 1) {
        return Ok(None);
    }
    let info = |method: &str| IncrementalInfo {
        base_items: base.n,
        new_items: m,
        method: method.into(),
    };
    if hnsw_route {
        // A missing, corrupt (the cache verifies checksums) or unloadable index: rebuild.
        let Some(mut index) = cache
            .get(&hnsw_index_key(&base.graph_key))
            .and_then(|b| crate::index::hnsw::HnswIndex::from_bytes(&b, cache.dir()).ok())
            .filter(|index| index.len() == base.n)
        else {
            return Ok(None);
        };
        let bar = progress.spinner("graph (new rows, hnsw)");
        let graph = incremental::extend_with_index(emb, &base_graph, &mut index)?;
        bar.finish_and_clear();
        return Ok(Some((graph, route, info("hnsw-insert"), Some(index))));
    }
    let bar = progress.bar(n as u64, "graph (new rows)");
    let graph = incremental::extend_exact(emb, &base_graph, &bar)?;
    bar.finish_and_clear();
    Ok(Some((graph, route, info("exact-append"), None)))
}
