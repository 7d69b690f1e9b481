//! The k-nearest-neighbour graph: the central label-independent artifact.
//!
//! Three routes build it (see [`IndexKind`]): an exact blocked GEMM search, a partitioned exact
//! search (spherical k-means lists, each item compared with the members of its `probes` nearest
//! lists, organised list by list as GEMMs), and `hnsw_rs`. Rows are unit vectors, so the GEMM
//! result is the cosine.
//!
//! Ordering and ties: neighbours are sorted by cosine descending, ties broken by the lower item
//! index, so the exact and partitioned graphs are bit-identical for the same input and
//! parameters whatever the number of rayon threads (the top-k of a set under a strict total
//! order does not depend on the order candidates arrive in, and every parallel loop writes its
//! own rows). The HNSW route is the exception: `hnsw_rs` parallel insertion is not
//! deterministic.
//!
//! Interrupted builds resume (`build::build_resumable`): the exact and partitioned routes compute
//! their rows in fixed chunks (≈5% of the rows each, boundaries a function of n only) and, given
//! a `CheckpointStore`, save every finished chunk (and the partitioned route's k-means
//! centroids) as it completes. A rerun loads the valid chunks and computes only the missing
//! ones; since every chunk's content is a deterministic function of the input and parameters
//! (and chunks are keyed by the partition they were computed against), the resumed graph is
//! bit-identical to an uninterrupted one.

use ndarray::{ArrayView2, Axis};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::error::{Error, Result};
use crate::index::topk::exact_topk;

/// For every item, its `k` nearest other items by cosine, most similar first.
///
/// Stored flat (`n * k`) so it is one allocation, trivially cached and shared by every stage.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighborGraph {
    /// Neighbours per item.
    pub k: usize,
    /// `neighbors[i * k + j]` is the j-th nearest neighbour of item i (never i itself).
    pub neighbors: Vec<u32>,
    /// `cosines[i * k + j]` is the cosine between item i and `neighbors[i * k + j]`.
    pub cosines: Vec<f32>,
}

impl NeighborGraph {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.neighbors.len().checked_div(self.k).unwrap_or(0)
    }

    /// True when the graph holds no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Neighbour indices and cosines of item `i`, most similar first.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let r = i * self.k..(i + 1) * self.k;
        (&self.neighbors[r.clone()], &self.cosines[r])
    }
}

/// Which search builds the graph; `Auto` picks by size from measurements (see `build::build`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexKind {
    /// Exact up to [`AUTO_EXACT_MAX`] items, partitioned above.
    Auto,
    /// Exact blocked matrix products: recall 1.0, cost O(n²·d).
    Exact,
    /// Exact search inside the `probes` nearest k-means lists of each item: recall ≈ 0.99+.
    Partitioned,
    /// `hnsw_rs` (M=32, ef_construction=200); not deterministic, slower than the others here.
    Hnsw,
}

impl IndexKind {
    /// Stable one-byte code, used in cache keys.
    fn code(self) -> u8 {
        match self {
            IndexKind::Auto => 0,
            IndexKind::Exact => 1,
            IndexKind::Partitioned => 2,
            IndexKind::Hnsw => 3,
        }
    }
}

/// Largest n that `IndexKind::Auto` searches exactly. Measured on 2 shared cores (synthetic
/// clustered 384-d, k=16, release): exact 0.9 s at 10k, 7–11 s at 20–30k; partitioned 0.3 s
/// at 10k, 1.6–3 s at 20–30k with recall@10 ≥ 0.995. Exact stays the choice while it costs
/// seconds, because its recall is 1.0; above 20k the partitioned search is 3–5× faster.
pub const AUTO_EXACT_MAX: usize = 20_000;
/// Default neighbours per item.
pub const DEFAULT_K: usize = 16;
/// Default number of lists each item searches in the partitioned route. Measured recall@10
/// (synthetic clustered 384-d, √n lists, with the refinement pass): 0.9993 at 100k and 0.9996
/// at 30k with 12 probes, 0.9947 with 8, 0.965 with 4. Recall falls as n grows (see
/// BENCHMARKS.md for 1M), so raise `probes` for millions of items.
pub const DEFAULT_PROBES: usize = 12;

/// Parameters of the graph build; part of the cache key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphParams {
    /// Neighbours per item (clipped to n−1 for tiny inputs).
    pub k: usize,
    /// Search route.
    pub index: IndexKind,
    /// Partitioned route: number of nearest k-means lists each item searches.
    pub probes: usize,
    /// Seed for the k-means partition (and anything else random).
    pub seed: u64,
}

impl Default for GraphParams {
    fn default() -> Self {
        GraphParams {
            k: DEFAULT_K,
            index: IndexKind::Auto,
            probes: DEFAULT_PROBES,
            seed: 0,
        }
    }
}

impl GraphParams {
    /// Checks the parameters against an input of `n` items (`Error::Usage` if unusable).
    pub fn validate(&self, n: usize) -> Result<()> {
        if self.k == 0 {
            return Err(Error::Usage("k must be at least 1".into()));
        }
        if self.k > 1024 {
            return Err(Error::Usage(format!(
                "k must be at most 1024, got {}",
                self.k
            )));
        }
        if self.probes == 0 {
            return Err(Error::Usage("probes must be at least 1".into()));
        }
        if n == 0 {
            return Err(Error::Usage(
                "no items to build a neighbour graph from".into(),
            ));
        }
        if u32::try_from(n).is_err() {
            return Err(Error::Usage(format!(
                "at most {} items are supported, got {n}",
                u32::MAX
            )));
        }
        Ok(())
    }

    /// Stable bytes describing every parameter that changes the graph, for the cache key
    /// (combine with the cache's `embedding_hash`). Probes only matter for partitioned
    /// builds but are always included, which is simpler and merely costs a rare cache miss.
    /// The tag's version goes up whenever a route computes a different graph from the same
    /// inputs, so no cache serves a graph the current code would not build.
    pub fn cache_key_bytes(&self) -> Vec<u8> {
        let mut v = b"labelwise-graph-v2".to_vec();
        v.extend_from_slice(&(self.k as u64).to_le_bytes());
        v.push(self.index.code());
        v.extend_from_slice(&(self.probes as u64).to_le_bytes());
        v.extend_from_slice(&self.seed.to_le_bytes());
        v
    }
}

/// The route `Auto` takes for `n` items.
pub fn auto_route(n: usize) -> IndexKind {
    if n <= AUTO_EXACT_MAX {
        IndexKind::Exact
    } else {
        IndexKind::Partitioned
    }
}

/// Recall@10 of `graph` against an exact search, on a seeded sample of `sample` items (all
/// items if fewer): the fraction of each sampled item's exact top-10 (top-k if k < 10) found in
/// the graph's first 10 neighbours. 1.0 for graphs with k = 0.
pub fn recall_at_10(emb: ArrayView2<f32>, graph: &NeighborGraph, sample: usize, seed: u64) -> f64 {
    let n = emb.nrows();
    let kk = graph.k.min(10).min(n.saturating_sub(1));
    if kk == 0 || sample == 0 || graph.len() != n {
        return 1.0;
    }
    let idx = recall_sample(n, sample, seed);
    let emb = emb.as_standard_layout();
    let qv = emb.select(Axis(0), &idx);
    let self_ids: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
    let m = idx.len();
    let mut nb = vec![0u32; m * kk];
    let mut cs = vec![0f32; m * kk];
    exact_topk(emb.view(), qv.view(), &self_ids, kk, &mut nb, &mut cs, None);
    recall_hits(graph, &idx, &nb, kk)
}

/// The items recall is measured on: `sample` of `n` (all if fewer), seeded, ascending.
pub fn recall_sample(n: usize, sample: usize, seed: u64) -> Vec<usize> {
    let m = sample.min(n);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, n, m).into_vec();
    idx.sort_unstable();
    idx
}

/// Share of the exact top-`kk` lists `nb` (one per item of `idx`) found among the graph's first
/// `kk` neighbours of that item.
pub fn recall_hits(graph: &NeighborGraph, idx: &[usize], nb: &[u32], kk: usize) -> f64 {
    let mut hits = 0usize;
    for (u, &i) in idx.iter().enumerate() {
        let (g, _) = graph.row(i);
        let g = &g[..kk];
        hits += nb[u * kk..(u + 1) * kk]
            .iter()
            .filter(|j| g.contains(j))
            .count();
    }
    hits as f64 / (idx.len() * kk) as f64
}
