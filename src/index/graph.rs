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
//! Interrupted builds resume ([`build_resumable`]): the exact and partitioned routes compute
//! their rows in fixed chunks (≈5% of the rows each, boundaries a function of n only) and, given
//! a [`CheckpointStore`], save every finished chunk (and the partitioned route's k-means
//! centroids) as it completes. A rerun loads the valid chunks and computes only the missing
//! ones; since every chunk's content is a deterministic function of the input and parameters
//! (and chunks are keyed by the partition they were computed against), the resumed graph is
//! bit-identical to an uninterrupted one.

use std::ops::Range;
use std::sync::Mutex;

use indicatif::ProgressBar;
use ndarray::{linalg::general_mat_mul, s, Array2, ArrayView1, ArrayView2, Axis};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::kmeans::{self, TopCentroids};

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

/// Which search builds the graph; `Auto` picks by size from measurements (see [`build`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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
            return Err(Error::Usage("--k must be at least 1".into()));
        }
        if self.k > 1024 {
            return Err(Error::Usage(format!(
                "--k must be at most 1024, got {}",
                self.k
            )));
        }
        if self.probes == 0 {
            return Err(Error::Usage("--probes must be at least 1".into()));
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
    /// (combine with [`crate::store::cache::embedding_hash`]). Probes only matter for partitioned
    /// builds but are always included, which is simpler and merely costs a rare cache miss.
    pub fn cache_key_bytes(&self) -> Vec<u8> {
        let mut v = b"labelwise-graph-v1".to_vec();
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

/// Builds the k-nearest-neighbour graph of the unit rows of `emb`; returns it with the route
/// actually used.
///
/// `k` is clipped to `n − 1`; for `n = 1` the graph has `k = 0` and no entries (so
/// `graph.len()` is 0 and callers must take n from the embeddings). Advances `progress` by one
/// per item (set its length to `n` if you want a bar).
pub fn build(
    emb: ArrayView2<f32>,
    params: &GraphParams,
    progress: &ProgressBar,
) -> Result<(NeighborGraph, IndexKind)> {
    build_resumable(emb, params, progress, None).map(|(g, route, _)| (g, route))
}

/// Where a resumable build keeps its finished pieces between runs (see [`build_resumable`]).
///
/// [`crate::store::cache::Checkpoints`] implements it over the cache directory, under a key derived
/// from the graph's own cache key (embedding hash + parameters), so a store only ever holds
/// pieces of the same build. `load` must return exactly what `save` stored or nothing (the
/// cache's checksums guarantee that); the build still validates what it loads.
pub trait CheckpointStore: Sync {
    /// Smallest input (rows) worth checkpointing: below [`CHECKPOINT_MIN_ROWS`] the whole build
    /// takes about a second, less than rerunning it costs anyway.
    fn min_rows(&self) -> usize {
        CHECKPOINT_MIN_ROWS
    }
    /// The bytes saved under `name`, if present and intact.
    fn load(&self, name: &str) -> Option<Vec<u8>>;
    /// Saves `bytes` under `name` atomically. Best effort: a failed save only means less to
    /// resume from, so the store notes it and the build goes on.
    fn save(&self, name: &str, bytes: &[u8]);
}

/// Inputs smaller than this are not checkpointed (see [`CheckpointStore::min_rows`]). Exact
/// search costs ~1 s at 10k rows and 7–11 s at 20k on 2 cores.
pub const CHECKPOINT_MIN_ROWS: usize = 20_000;
/// Chunks of rows a build is split into: a kill loses at most ≈1/20 of the row work.
pub const CHECKPOINT_CHUNKS: usize = 20;
/// Smallest chunk, so small inputs are not cut into slivers.
const MIN_CHUNK_ROWS: usize = 2048;

/// Rows per checkpoint chunk for `n` items: ≈ n / [`CHECKPOINT_CHUNKS`], at least
/// [`MIN_CHUNK_ROWS`], rounded up to whole exact-search query blocks (so chunking the exact
/// route does not change its GEMM blocks). A function of `n` only: a rerun cuts the same chunks.
pub fn chunk_rows(n: usize) -> usize {
    let c = n.div_ceil(CHECKPOINT_CHUNKS).max(MIN_CHUNK_ROWS);
    c.div_ceil(QUERY_BLOCK) * QUERY_BLOCK
}

/// What a checkpointed build found and did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResumeStats {
    /// Chunks the rows were computed in (0 when the build was not checkpointed).
    pub chunks: usize,
    /// Chunks loaded from checkpoints instead of computed.
    pub chunks_resumed: usize,
    /// Whether the partitioned route's k-means centroids were loaded instead of fitted.
    pub partition_resumed: bool,
    /// Partitioned route: chunks of refined rows loaded (when all are, nothing is searched).
    pub refined_resumed: usize,
}

/// [`build`], checkpointing into `store` as it goes and resuming from what an interrupted
/// build with the same input and parameters left there.
///
/// The result is bit-identical to [`build`]'s whatever was resumed. Checkpoints are left in
/// the store: the caller deletes them once the finished graph is stored safely (a kill in
/// between would otherwise lose them). The HNSW route and inputs below
/// [`CheckpointStore::min_rows`] are not checkpointed.
pub fn build_resumable(
    emb: ArrayView2<f32>,
    params: &GraphParams,
    progress: &ProgressBar,
    store: Option<&dyn CheckpointStore>,
) -> Result<(NeighborGraph, IndexKind, ResumeStats)> {
    build_keeping_index(emb, params, progress, store).map(|(g, route, stats, _)| (g, route, stats))
}

/// [`build_resumable`], also returning the `hnsw_rs` index the HNSW route built (`None` for
/// the other routes), so the caller can cache it as the query index for rows appended later.
pub fn build_keeping_index(
    emb: ArrayView2<f32>,
    params: &GraphParams,
    progress: &ProgressBar,
    store: Option<&dyn CheckpointStore>,
) -> Result<(
    NeighborGraph,
    IndexKind,
    ResumeStats,
    Option<crate::index::hnsw::HnswIndex>,
)> {
    let n = emb.nrows();
    params.validate(n)?;
    let k = params.k.min(n - 1);
    let route = match params.index {
        IndexKind::Auto => auto_route(n),
        r => r,
    };
    if k == 0 {
        progress.inc(n as u64);
        let empty = NeighborGraph {
            k: 0,
            neighbors: Vec::new(),
            cosines: Vec::new(),
        };
        return Ok((empty, route, ResumeStats::default(), None));
    }
    let store = store.filter(|s| n >= s.min_rows());
    let emb = emb.as_standard_layout();
    let emb = emb.view();
    let (graph, stats, index) = match route {
        IndexKind::Exact | IndexKind::Auto => {
            let (g, st) = exact(emb, k, progress, store)?;
            (g, st, None)
        }
        IndexKind::Partitioned => {
            let (g, st) = partitioned(emb, k, params.probes, params.seed, progress, store)?;
            (g, st, None)
        }
        IndexKind::Hnsw => {
            let (g, index) = crate::index::hnsw::self_knn_graph(emb, k, progress)?;
            (g, ResumeStats::default(), Some(index))
        }
    };
    check_filled(&graph)?;
    Ok((graph, route, stats, index))
}

/// Magic of a serialised chunk of graph rows.
const CHUNK_MAGIC: &[u8; 4] = b"LWCK";
/// Bytes before a chunk's rows: magic, k, n, first row, rows.
const CHUNK_HEADER: usize = 4 + 4 + 8 + 8 + 8;

/// Chunk payload: `"LWCK"`, k (u32), n (u64), first row (u64), rows (u64), then `rows·k`
/// neighbour ids (u32) and `rows·k` cosines (f32), little-endian.
fn chunk_to_bytes(n: usize, k: usize, start: usize, nb: &[u32], cs: &[f32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(CHUNK_HEADER + nb.len() * 8);
    v.extend_from_slice(CHUNK_MAGIC);
    v.extend_from_slice(&(k as u32).to_le_bytes());
    v.extend_from_slice(&(n as u64).to_le_bytes());
    v.extend_from_slice(&(start as u64).to_le_bytes());
    v.extend_from_slice(&((nb.len() / k) as u64).to_le_bytes());
    for &j in nb {
        v.extend_from_slice(&j.to_le_bytes());
    }
    for &c in cs {
        v.extend_from_slice(&c.to_le_bytes());
    }
    v
}

/// Copies a chunk saved by [`chunk_to_bytes`] into `nb`/`cs` if it is exactly the chunk
/// expected (same n, k, first row and row count; ids in range, no self-loops, finite cosines);
/// false otherwise, leaving the buffers in an unspecified state to be recomputed.
fn chunk_from_bytes(
    b: &[u8],
    n: usize,
    k: usize,
    start: usize,
    nb: &mut [u32],
    cs: &mut [f32],
) -> bool {
    let rows = nb.len() / k;
    let u64_at =
        |o: usize| -> Option<u64> { Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?)) };
    let header_ok = b.len() == CHUNK_HEADER + rows * k * 8
        && &b[..4] == CHUNK_MAGIC
        && b[4..8] == (k as u32).to_le_bytes()
        && u64_at(8) == Some(n as u64)
        && u64_at(16) == Some(start as u64)
        && u64_at(24) == Some(rows as u64);
    if !header_ok {
        return false;
    }
    let (ids, cos) = b[CHUNK_HEADER..].split_at(rows * k * 4);
    for (e, (c, slot)) in ids.chunks_exact(4).zip(nb.iter_mut()).enumerate() {
        let j = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if j as usize >= n || j as usize == start + e / k {
            return false;
        }
        *slot = j;
    }
    for (c, slot) in cos.chunks_exact(4).zip(cs.iter_mut()) {
        let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if !v.is_finite() {
            return false;
        }
        *slot = v;
    }
    true
}

/// Loads every chunk `store` holds a valid checkpoint of (named `<tag>-c<index>`, `chunk` rows
/// each) into `nb`/`cs` (n·k each); returns which chunks were loaded.
fn load_chunks(
    store: Option<&dyn CheckpointStore>,
    tag: &str,
    (n, k, chunk): (usize, usize, usize),
    nb: &mut [u32],
    cs: &mut [f32],
) -> Vec<bool> {
    nb.chunks_mut(chunk * k)
        .zip(cs.chunks_mut(chunk * k))
        .enumerate()
        .map(|(c, (nbc, csc))| {
            store
                .and_then(|s| s.load(&format!("{tag}-c{c}")))
                .is_some_and(|bytes| chunk_from_bytes(&bytes, n, k, c * chunk, nbc, csc))
        })
        .collect()
}

/// Computes the chunks not `loaded` with `compute(rows, nb, cs)`, in order, saving each to
/// `store` as soon as it is done (see [`load_chunks`] for the layout). `progress` advances by
/// the rows of every chunk, loaded or computed, when given.
fn compute_chunks(
    store: Option<&dyn CheckpointStore>,
    tag: &str,
    (n, k, chunk): (usize, usize, usize),
    (nb, cs): (&mut [u32], &mut [f32]),
    loaded: &[bool],
    progress: Option<&ProgressBar>,
    mut compute: impl FnMut(Range<usize>, &mut [u32], &mut [f32]) -> Result<()>,
) -> Result<()> {
    for (c, (nbc, csc)) in nb
        .chunks_mut(chunk * k)
        .zip(cs.chunks_mut(chunk * k))
        .enumerate()
    {
        let start = c * chunk;
        let rows = start..start + nbc.len() / k;
        if !loaded[c] {
            compute(rows.clone(), nbc, csc)?;
            // A sentinel left in means NaN input: the build fails later, nothing worth saving.
            if let Some(s) = store.filter(|_| !nbc.contains(&u32::MAX)) {
                s.save(
                    &format!("{tag}-c{c}"),
                    &chunk_to_bytes(n, k, start, nbc, csc),
                );
            }
        }
        if let Some(p) = progress {
            p.inc(rows.len() as u64);
        }
    }
    Ok(())
}

/// A leftover sentinel means a score was NaN (non-finite embeddings reached us).
fn check_filled(g: &NeighborGraph) -> Result<()> {
    if let Some(pos) = g.neighbors.iter().position(|&j| j == u32::MAX) {
        return Err(Error::Usage(format!(
            "item {} has no valid neighbours: the embeddings contain NaN or infinite values",
            pos / g.k.max(1)
        )));
    }
    Ok(())
}

/// `a` ranks before `b`: higher score, then lower index.
#[inline]
pub(crate) fn better(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
    sa > sb || (sa == sb && ia < ib)
}

/// Inserts `(id, s)` into a full top-k buffer sorted best first (sentinels: `-inf`, `u32::MAX`).
/// Crate-visible because k-means uses it for the top-p centroids.
#[inline]
pub(crate) fn topk_push(ids: &mut [u32], scores: &mut [f32], id: u32, s: f32) {
    let k = ids.len();
    if k == 0 || !better(s, id, scores[k - 1], ids[k - 1]) {
        return;
    }
    let mut pos = k - 1;
    while pos > 0 && better(s, id, scores[pos - 1], ids[pos - 1]) {
        ids[pos] = ids[pos - 1];
        scores[pos] = scores[pos - 1];
        pos -= 1;
    }
    ids[pos] = id;
    scores[pos] = s;
}

/// Queries per GEMM block in the exact kernel.
const QUERY_BLOCK: usize = 256;
/// Items per GEMM tile: the score buffer is `QUERY_BLOCK × ITEM_TILE` f32 (4 MiB) per thread.
const ITEM_TILE: usize = 4096;

/// Recomputes exactly the rows in `rows` whose neighbour list an approximate search left short
/// (last slot still `u32::MAX`), so every row ends with `k` neighbours. `neighbors` and
/// `cosines` hold the lists of `rows` only, row `rows.start` first.
pub(crate) fn complete_short_rows(
    emb: ArrayView2<f32>,
    rows: std::ops::Range<usize>,
    k: usize,
    neighbors: &mut [u32],
    cosines: &mut [f32],
) {
    let r0 = rows.start;
    let short: Vec<usize> = rows
        .filter(|&i| neighbors[(i - r0) * k + k - 1] == u32::MAX)
        .collect();
    if short.is_empty() {
        return;
    }
    let qv = emb.select(ndarray::Axis(0), &short);
    let ids: Vec<u32> = short.iter().map(|&i| i as u32).collect();
    let mut nb = vec![0u32; short.len() * k];
    let mut cs = vec![0f32; short.len() * k];
    exact_topk(emb, qv.view(), &ids, k, &mut nb, &mut cs, None);
    for (u, &i) in short.iter().enumerate() {
        let r = (i - r0) * k..(i - r0 + 1) * k;
        neighbors[r.clone()].copy_from_slice(&nb[u * k..(u + 1) * k]);
        cosines[r].copy_from_slice(&cs[u * k..(u + 1) * k]);
    }
}

/// Exact top-k of `queries` (rows of `emb` or outside vectors) against all rows of `emb`,
/// skipping `self_ids[q]` for query q (`u32::MAX` to skip nothing). Writes `queries.nrows() × k`
/// entries into `nb`/`cs`. Parallel over query blocks.
pub(crate) fn exact_topk(
    emb: ArrayView2<f32>,
    queries: ArrayView2<f32>,
    self_ids: &[u32],
    k: usize,
    nb: &mut [u32],
    cs: &mut [f32],
    progress: Option<&ProgressBar>,
) {
    let n = emb.nrows();
    nb.fill(u32::MAX);
    cs.fill(f32::NEG_INFINITY);
    nb.par_chunks_mut(QUERY_BLOCK * k)
        .zip(cs.par_chunks_mut(QUERY_BLOCK * k))
        .enumerate()
        .for_each(|(b, (nbb, csb))| {
            let q0 = b * QUERY_BLOCK;
            let rows = nbb.len() / k;
            let qv = queries.slice(s![q0..q0 + rows, ..]);
            let mut sc = Array2::<f32>::zeros((rows, ITEM_TILE.min(n)));
            let mut t0 = 0;
            while t0 < n {
                let t1 = (t0 + ITEM_TILE).min(n);
                let iv = emb.slice(s![t0..t1, ..]);
                let mut out = sc.slice_mut(s![.., 0..t1 - t0]);
                general_mat_mul(1.0, &qv, &iv.t(), 0.0, &mut out);
                for r in 0..rows {
                    let me = self_ids[q0 + r];
                    let ids = &mut nbb[r * k..(r + 1) * k];
                    let scs = &mut csb[r * k..(r + 1) * k];
                    scan_row(out.row(r), t0, me, ids, scs);
                }
                t0 = t1;
            }
            if let Some(p) = progress {
                p.inc(rows as u64);
            }
        });
}

/// Pushes one row of GEMM scores (items `t0..`) into a top-k buffer, with a fast reject against
/// the current worst entry.
#[inline]
fn scan_row(row: ArrayView1<f32>, t0: usize, me: u32, ids: &mut [u32], scs: &mut [f32]) {
    let k = ids.len();
    let mut worst_s = scs[k - 1];
    let mut worst_i = ids[k - 1];
    let mut visit = |j: usize, v: f32| {
        let id = (t0 + j) as u32;
        if (v > worst_s || (v == worst_s && id < worst_i)) && id != me {
            topk_push(ids, scs, id, v);
            worst_s = scs[k - 1];
            worst_i = ids[k - 1];
        }
    };
    match row.as_slice() {
        Some(sl) => {
            for (j, &v) in sl.iter().enumerate() {
                visit(j, v);
            }
        }
        None => {
            for (j, &v) in row.iter().enumerate() {
                visit(j, v);
            }
        }
    }
}

/// Exact route: every item against every item, blocked; in checkpointed chunks given a store
/// (chunks are whole query blocks, so the result is the same either way).
fn exact(
    emb: ArrayView2<f32>,
    k: usize,
    progress: &ProgressBar,
    store: Option<&dyn CheckpointStore>,
) -> Result<(NeighborGraph, ResumeStats)> {
    let n = emb.nrows();
    let self_ids: Vec<u32> = (0..n as u32).collect();
    let mut neighbors = vec![0u32; n * k];
    let mut cosines = vec![0f32; n * k];
    let chunk = if store.is_some() { chunk_rows(n) } else { n };
    let tag = format!("x{chunk}");
    let dims = (n, k, chunk);
    let loaded = load_chunks(store, &tag, dims, &mut neighbors, &mut cosines);
    compute_chunks(
        store,
        &tag,
        dims,
        (&mut neighbors, &mut cosines),
        &loaded,
        Some(progress),
        |rows, nb, cs| {
            let qv = emb.slice(s![rows.clone(), ..]);
            exact_topk(emb, qv, &self_ids[rows], k, nb, cs, None);
            Ok(())
        },
    )?;
    let stats = ResumeStats {
        chunks: if store.is_some() { loaded.len() } else { 0 },
        chunks_resumed: loaded.iter().filter(|&&l| l).count(),
        ..ResumeStats::default()
    };
    let graph = NeighborGraph {
        k,
        neighbors,
        cosines,
    };
    Ok((graph, stats))
}

/// Number of k-means lists the partitioned route uses for n items: ≈ √n, at least 1.
pub fn partition_lists(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).clamp(1, n.max(1))
}

/// Lloyd iterations for the partition (the lists need not be optimal, only coherent).
const PARTITION_ITERS: usize = 10;
/// Queries per GEMM block in the partitioned route.
const PART_QUERY_BLOCK: usize = 1024;
/// Members per GEMM tile in the partitioned route.
const PART_MEMBER_TILE: usize = 4096;

/// Magic of a serialised k-means partition.
const PARTITION_MAGIC: &[u8; 4] = b"LWKP";

/// Partition payload: `"LWKP"`, lists (u64), dimension (u64), then the centroids (f32, row
/// major), little-endian.
fn partition_to_bytes(c: ArrayView2<f32>) -> Vec<u8> {
    let mut v = Vec::with_capacity(20 + c.len() * 4);
    v.extend_from_slice(PARTITION_MAGIC);
    v.extend_from_slice(&(c.nrows() as u64).to_le_bytes());
    v.extend_from_slice(&(c.ncols() as u64).to_le_bytes());
    for &x in c.iter() {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// Centroids saved by [`partition_to_bytes`], if they have the expected shape and are finite.
fn partition_from_bytes(b: &[u8], lists: usize, d: usize) -> Option<Array2<f32>> {
    let body = b.strip_prefix(PARTITION_MAGIC)?;
    let (shape, vals) = body.split_at_checked(16)?;
    if shape[..8] != (lists as u64).to_le_bytes()
        || shape[8..] != (d as u64).to_le_bytes()
        || vals.len() != lists.checked_mul(d)?.checked_mul(4)?
    {
        return None;
    }
    let v: Vec<f32> = vals
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if !v.iter().all(|x| x.is_finite()) {
        return None;
    }
    Array2::from_shape_vec((lists, d), v).ok()
}

/// Partitioned route: k-means into ≈√n lists; each item searches the members of its `probes`
/// nearest lists exactly, then one neighbour-of-neighbour refinement pass ([`refine_rows`]).
///
/// The k-means partition is seeded, hence the same on a rerun; given a store it is saved right
/// after fitting and reloaded on resume (which skips the fit). Rows are then searched in fixed
/// chunks ([`chunk_rows`], always, so checkpointing cannot change the GEMM shapes), each saved
/// under a name carrying a hash of the centroids, so a chunk computed against another
/// partition is never mixed in. Refinement reads every searched row, so it runs after the last
/// search chunk, in the same chunks, checkpointed as well.
fn partitioned(
    emb: ArrayView2<f32>,
    k: usize,
    probes: usize,
    seed: u64,
    progress: &ProgressBar,
    store: Option<&dyn CheckpointStore>,
) -> Result<(NeighborGraph, ResumeStats)> {
    let n = emb.nrows();
    let d = emb.ncols();
    let nlist = partition_lists(n);
    let loaded = store
        .and_then(|s| s.load("partition"))
        .and_then(|b| partition_from_bytes(&b, nlist, d));
    let partition_resumed = loaded.is_some();
    let centroids = match loaded {
        Some(c) => c,
        None => {
            let km = kmeans::fit(emb, nlist, PARTITION_ITERS, seed)?;
            if let Some(s) = store {
                s.save("partition", &partition_to_bytes(km.centroids.view()));
            }
            km.centroids
        }
    };
    let chunk = chunk_rows(n);
    let dims = (n, k, chunk);
    let tag = {
        let mut h = blake3::Hasher::new();
        h.update(b"labelwise-partitioned-chunks-v1");
        h.update(&partition_to_bytes(centroids.view()));
        h.update(&(probes.min(nlist) as u64).to_le_bytes());
        h.update(&(chunk as u64).to_le_bytes());
        format!("p{}", &h.finalize().to_hex()[..16])
    };
    let refined_tag = format!("{tag}-r");
    // Refined rows first: when every chunk of them was saved, the build is already done.
    let mut neighbors = vec![0u32; n * k];
    let mut cosines = vec![0f32; n * k];
    let refined = load_chunks(store, &refined_tag, dims, &mut neighbors, &mut cosines);
    let mut stats = ResumeStats {
        chunks: if store.is_some() { refined.len() } else { 0 },
        partition_resumed,
        refined_resumed: refined.iter().filter(|&&l| l).count(),
        ..ResumeStats::default()
    };
    if store.is_some() && refined.iter().all(|&l| l) {
        progress.inc(n as u64);
        let graph = NeighborGraph {
            k,
            neighbors,
            cosines,
        };
        return Ok((graph, stats));
    }
    // The search, chunk by chunk. Its lists (the probes of every row) are needed only for
    // chunks not checkpointed, so they are computed on first need.
    let mut s_nb = vec![0u32; n * k];
    let mut s_cs = vec![0f32; n * k];
    let searched = load_chunks(store, &tag, dims, &mut s_nb, &mut s_cs);
    stats.chunks_resumed = searched.iter().filter(|&&l| l).count();
    let mut lists: Option<(TopCentroids, Vec<usize>, Vec<u32>)> = None;
    compute_chunks(
        store,
        &tag,
        dims,
        (&mut s_nb, &mut s_cs),
        &searched,
        Some(progress),
        |rows, nb, cs| {
            if lists.is_none() {
                let top = kmeans::assign_top(emb, centroids.view(), probes)?;
                // Membership: nearest list (= first probe).
                let home: Vec<u32> = (0..n).map(|i| top.ids[i * top.p]).collect();
                let (m_off, m_ord) = kmeans::bucket_by(&home, nlist);
                lists = Some((top, m_off, m_ord));
            }
            let Some((top, m_off, m_ord)) = &lists else {
                return Err(Error::Internal("partition lists missing".into()));
            };
            Lists {
                emb,
                k,
                nlist,
                top,
                m_off,
                m_ord,
            }
            .search(rows, nb, cs)
        },
    )?;
    drop(lists);
    let searched = NeighborGraph {
        k,
        neighbors: s_nb,
        cosines: s_cs,
    };
    // Refinement reads every searched row and writes its own: chunked and checkpointed too.
    compute_chunks(
        store,
        &refined_tag,
        dims,
        (&mut neighbors, &mut cosines),
        &refined,
        None,
        |rows, nb, cs| {
            refine_rows(emb, &searched, REFINE_EXPAND, rows, nb, cs);
            Ok(())
        },
    )?;
    let graph = NeighborGraph {
        k,
        neighbors,
        cosines,
    };
    Ok((graph, stats))
}

/// The partition the partitioned route searches: list members and each row's probed lists.
struct Lists<'e, 'a> {
    emb: ArrayView2<'e, f32>,
    k: usize,
    nlist: usize,
    top: &'a TopCentroids,
    /// Members of list L: `m_ord[m_off[L]..m_off[L + 1]]`, increasing.
    m_off: &'a [usize],
    m_ord: &'a [u32],
}

impl Lists<'_, '_> {
    /// Top-k of the rows `rows` among the members of their probed lists, into `nb`/`cs`
    /// (`rows.len() · k` each). Work is organised by list: the chunk's queries probing list L
    /// are gathered and multiplied with L's members in one GEMM, and each query's top-k is
    /// merged under its own lock (the merge result does not depend on the order, see the module
    /// docs). Rows whose probed lists hold fewer than k others are then searched exactly.
    fn search(&self, rows: Range<usize>, nb: &mut [u32], cs: &mut [f32]) -> Result<()> {
        let (emb, k, nlist, p) = (self.emb, self.k, self.nlist, self.top.p);
        let (m_off, m_ord) = (self.m_off, self.m_ord);
        let r0 = rows.start;
        // Queries per list: row i probes lists top.ids[i*p..(i+1)*p].
        let probed = &self.top.ids[rows.start * p..rows.end * p];
        let (q_off, mut q_ord) = crate::index::kmeans::bucket_by(probed, nlist);
        for e in &mut q_ord {
            *e = (r0 + *e as usize / p) as u32;
        }
        let bufs: Vec<Mutex<(Vec<u32>, Vec<f32>)>> = rows
            .clone()
            .map(|_| Mutex::new((vec![u32::MAX; k], vec![f32::NEG_INFINITY; k])))
            .collect();
        // Largest lists first, for load balance (the result does not depend on the order).
        let mut order: Vec<usize> = (0..nlist).collect();
        order.sort_by_key(|&l| {
            std::cmp::Reverse((q_off[l + 1] - q_off[l]) * (m_off[l + 1] - m_off[l]))
        });
        let poisoned = || Error::Internal("a worker thread panicked".into());
        order.par_iter().try_for_each(|&l| -> Result<()> {
            let members = &m_ord[m_off[l]..m_off[l + 1]];
            let queries = &q_ord[q_off[l]..q_off[l + 1]];
            if members.is_empty() || queries.is_empty() {
                return Ok(());
            }
            for mchunk in members.chunks(PART_MEMBER_TILE) {
                let midx: Vec<usize> = mchunk.iter().map(|&i| i as usize).collect();
                let mv = emb.select(Axis(0), &midx);
                for qchunk in queries.chunks(PART_QUERY_BLOCK) {
                    let qidx: Vec<usize> = qchunk.iter().map(|&i| i as usize).collect();
                    let qv = emb.select(Axis(0), &qidx);
                    let mut sc = Array2::<f32>::zeros((qchunk.len(), mchunk.len()));
                    general_mat_mul(1.0, &qv, &mv.t(), 0.0, &mut sc);
                    for (r, &q) in qchunk.iter().enumerate() {
                        let mut guard = bufs[q as usize - r0].lock().map_err(|_| poisoned())?;
                        let (ids, scs) = &mut *guard;
                        let mut worst_s = scs[k - 1];
                        let mut worst_i = ids[k - 1];
                        for (&j, &v) in mchunk.iter().zip(sc.row(r).iter()) {
                            if better(v, j, worst_s, worst_i) && j != q {
                                topk_push(ids, scs, j, v);
                                worst_s = scs[k - 1];
                                worst_i = ids[k - 1];
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
        for (u, b) in bufs.into_iter().enumerate() {
            let (ids, scs) = b.into_inner().map_err(|_| poisoned())?;
            nb[u * k..(u + 1) * k].copy_from_slice(&ids);
            cs[u * k..(u + 1) * k].copy_from_slice(&scs);
        }
        // Rows whose probed lists hold fewer than k others: search them exactly.
        complete_short_rows(emb, rows, k, nb, cs);
        Ok(())
    }
}

/// Neighbours whose own lists are scanned in the refinement pass.
const REFINE_EXPAND: usize = 8;

/// One neighbour-of-neighbour pass (as in NN-descent) over the rows `rows`, into `nb`/`cs`:
/// every item also considers the neighbours of its first `expand` neighbours, which recovers
/// most of what the probed lists missed (neighbours across list boundaries) for about
/// `expand · k` dot products per item. Reads the searched graph `g`, writes each item's own
/// row: deterministic, and the same whichever rows are done together.
fn refine_rows(
    emb: ArrayView2<f32>,
    g: &NeighborGraph,
    expand: usize,
    rows: Range<usize>,
    nb: &mut [u32],
    cs: &mut [f32],
) {
    let k = g.k;
    nb.copy_from_slice(&g.neighbors[rows.start * k..rows.end * k]);
    cs.copy_from_slice(&g.cosines[rows.start * k..rows.end * k]);
    nb.par_chunks_mut(k)
        .zip(cs.par_chunks_mut(k))
        .enumerate()
        .for_each_init(Vec::new, |cand: &mut Vec<u32>, (u, (nb, cs))| {
            let i = rows.start + u;
            let (own, _) = g.row(i);
            cand.clear();
            for &j in own.iter().take(expand) {
                cand.extend(g.row(j as usize).0.iter().filter(|&&l| l as usize != i));
            }
            cand.sort_unstable();
            cand.dedup();
            let row = emb.row(i);
            let Some(ri) = row.as_slice() else { return };
            for &c in cand.iter() {
                if own.contains(&c) {
                    continue;
                }
                if let Some(rc) = emb.row(c as usize).as_slice() {
                    topk_push(nb, cs, c, crate::index::hnsw::dot(ri, rc));
                }
            }
        });
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
    let m = sample.min(n);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, n, m).into_vec();
    idx.sort_unstable();
    let emb = emb.as_standard_layout();
    let qv = emb.select(Axis(0), &idx);
    let self_ids: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
    let mut nb = vec![0u32; m * kk];
    let mut cs = vec![0f32; m * kk];
    exact_topk(emb.view(), qv.view(), &self_ids, kk, &mut nb, &mut cs, None);
    let mut hits = 0usize;
    for (u, &i) in idx.iter().enumerate() {
        let (g, _) = graph.row(i);
        let g = &g[..kk];
        hits += nb[u * kk..(u + 1) * kk]
            .iter()
            .filter(|j| g.contains(j))
            .count();
    }
    hits as f64 / (m * kk) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::kmeans::tests::clustered;

    fn brute(emb: ArrayView2<f32>, k: usize) -> NeighborGraph {
        let n = emb.nrows();
        let mut neighbors = Vec::new();
        let mut cosines = Vec::new();
        for i in 0..n {
            let mut c: Vec<(f32, u32)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (emb.row(i).dot(&emb.row(j)), j as u32))
                .collect();
            c.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for &(s, j) in c.iter().take(k) {
                neighbors.push(j);
                cosines.push(s);
            }
        }
        NeighborGraph {
            k,
            neighbors,
            cosines,
        }
    }

    fn params(k: usize, index: IndexKind) -> GraphParams {
        GraphParams {
            k,
            index,
            ..GraphParams::default()
        }
    }

    #[test]
    fn exact_matches_brute_force() {
        let x = clustered(700, 32, 1, 3.0, 11); // nearly random directions
        let (g, route) = build(
            x.view(),
            &params(7, IndexKind::Auto),
            &ProgressBar::hidden(),
        )
        .unwrap();
        assert_eq!(route, IndexKind::Exact);
        let b = brute(x.view(), 7);
        assert_eq!(g.neighbors, b.neighbors);
        for (a, c) in g.cosines.iter().zip(&b.cosines) {
            assert!((a - c).abs() < 1e-5);
        }
        assert_eq!(recall_at_10(x.view(), &g, 200, 1), 1.0);
    }

    #[test]
    fn partitioned_recall_on_clustered_data() {
        let x = clustered(6000, 48, 30, 0.8, 5);
        let p = params(10, IndexKind::Partitioned);
        let (g, route) = build(x.view(), &p, &ProgressBar::hidden()).unwrap();
        assert_eq!(route, IndexKind::Partitioned);
        let r = recall_at_10(x.view(), &g, 500, 2);
        assert!(r >= 0.98, "recall {r}");
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| build(x.view(), &p, &ProgressBar::hidden()).unwrap().0);
        assert_eq!(one, g);
    }

    #[test]
    fn ties_broken_by_lower_index() {
        // Items 1..=5 are identical copies; item 0 is elsewhere.
        let mut x = Array2::<f32>::zeros((6, 4));
        x[[0, 0]] = 1.0;
        for i in 1..6 {
            x[[i, 1]] = 1.0;
        }
        for kind in [IndexKind::Exact, IndexKind::Partitioned] {
            let (g, _) = build(x.view(), &params(3, kind), &ProgressBar::hidden()).unwrap();
            assert_eq!(g.row(3).0, &[1, 2, 4]);
            assert_eq!(g.row(1).0, &[2, 3, 4]);
            assert_eq!(g.row(0).0, &[1, 2, 3]);
        }
    }

    #[test]
    fn tiny_inputs() {
        let one = Array2::from_shape_vec((1, 3), vec![1.0f32, 0.0, 0.0]).unwrap();
        let (g, _) = build(
            one.view(),
            &params(16, IndexKind::Auto),
            &ProgressBar::hidden(),
        )
        .unwrap();
        assert_eq!(g.k, 0);
        assert!(g.neighbors.is_empty());
        let two = Array2::from_shape_vec((2, 2), vec![0.6f32, 0.8, 0.6, 0.8]).unwrap();
        for kind in [IndexKind::Exact, IndexKind::Partitioned, IndexKind::Hnsw] {
            let (g, _) = build(two.view(), &params(16, kind), &ProgressBar::hidden()).unwrap();
            assert_eq!(g.k, 1);
            assert_eq!(g.neighbors, vec![1, 0]);
            assert!((g.cosines[0] - 1.0).abs() < 1e-6);
        }
        let empty = Array2::<f32>::zeros((0, 3));
        assert!(build(
            empty.view(),
            &GraphParams::default(),
            &ProgressBar::hidden()
        )
        .is_err());
        assert!(params(0, IndexKind::Auto).validate(5).is_err());
    }

    #[test]
    fn nan_is_an_error_not_a_panic() {
        let mut x = clustered(50, 8, 2, 0.5, 1);
        x[[3, 0]] = f32::NAN;
        let r = build(
            x.view(),
            &params(4, IndexKind::Exact),
            &ProgressBar::hidden(),
        );
        assert!(r.is_err());
    }

    /// An in-memory checkpoint store that checkpoints inputs of any size.
    #[derive(Default)]
    struct MemStore(Mutex<std::collections::BTreeMap<String, Vec<u8>>>);

    impl CheckpointStore for MemStore {
        fn min_rows(&self) -> usize {
            0
        }
        fn load(&self, name: &str) -> Option<Vec<u8>> {
            self.0.lock().unwrap().get(name).cloned()
        }
        fn save(&self, name: &str, bytes: &[u8]) {
            self.0
                .lock()
                .unwrap()
                .insert(name.to_string(), bytes.to_vec());
        }
    }

    impl MemStore {
        fn chunk_names(&self) -> Vec<String> {
            let m = self.0.lock().unwrap();
            m.keys().filter(|k| k.contains("-c")).cloned().collect()
        }
    }

    #[test]
    fn chunks_are_a_function_of_n_only() {
        assert_eq!(chunk_rows(1), MIN_CHUNK_ROWS);
        assert_eq!(chunk_rows(200_000), 10_240);
        assert_eq!(chunk_rows(200_000) % QUERY_BLOCK, 0);
        assert!(200_000usize.div_ceil(chunk_rows(200_000)) <= CHECKPOINT_CHUNKS);
    }

    #[test]
    fn resumed_build_is_identical_to_an_uninterrupted_one() {
        let x = clustered(6000, 24, 20, 0.8, 3);
        let hidden = ProgressBar::hidden();
        for kind in [IndexKind::Exact, IndexKind::Partitioned] {
            let part = kind == IndexKind::Partitioned;
            let p = params(8, kind);
            let (plain, _) = build(x.view(), &p, &hidden).unwrap();
            let store = MemStore::default();
            let (cold, _, st) = build_resumable(x.view(), &p, &hidden, Some(&store)).unwrap();
            assert_eq!(cold, plain, "{kind:?}: checkpointing changes nothing");
            assert_eq!(st.chunks, 3, "{kind:?}: 6000 rows in 2048-row chunks");
            assert_eq!((st.chunks_resumed, st.refined_resumed), (0, 0));
            assert!(!st.partition_resumed);
            let names = store.chunk_names();
            let (refined, searched): (Vec<String>, Vec<String>) =
                names.iter().cloned().partition(|n| n.contains("-r-"));
            assert_eq!(searched.len(), 3, "{names:?}");
            assert_eq!(refined.len(), if part { 3 } else { 0 }, "{names:?}");
            // Killed during the search: no refined rows yet, chunk 1 never written, chunk 0
            // holding a self-loop (wrong content under a valid checksum, which only a bug
            // could produce): both are recomputed, chunk 2 is resumed.
            {
                let mut m = store.0.lock().unwrap();
                for r in &refined {
                    m.remove(r);
                }
                m.remove(&searched[1]);
                let b = m.get_mut(&searched[0]).unwrap();
                b[CHUNK_HEADER..CHUNK_HEADER + 4].copy_from_slice(&0u32.to_le_bytes());
            }
            let (resumed, _, st) = build_resumable(x.view(), &p, &hidden, Some(&store)).unwrap();
            assert_eq!(resumed, plain, "{kind:?}: resumed graph is bit-identical");
            assert_eq!(
                (st.chunks, st.chunks_resumed, st.refined_resumed),
                (3, 1, 0)
            );
            assert_eq!(st.partition_resumed, part);
            if part {
                // Killed during refinement: every searched chunk and two refined ones saved.
                store.0.lock().unwrap().remove(&refined[2]);
                let (g, _, st) = build_resumable(x.view(), &p, &hidden, Some(&store)).unwrap();
                assert_eq!(g, plain, "resumed refinement is bit-identical");
                assert_eq!((st.chunks_resumed, st.refined_resumed), (3, 2));
            }
            // Everything checkpointed: nothing left to compute, same graph.
            let (again, _, st) = build_resumable(x.view(), &p, &hidden, Some(&store)).unwrap();
            assert_eq!(again, plain);
            let resumed = if part {
                st.refined_resumed
            } else {
                st.chunks_resumed
            };
            assert_eq!(resumed, 3);
        }
    }

    #[test]
    fn chunks_of_another_partition_are_never_used() {
        let x = clustered(5000, 16, 10, 0.8, 4);
        let hidden = ProgressBar::hidden();
        let p = params(6, IndexKind::Partitioned);
        let store = MemStore::default();
        build_resumable(x.view(), &p, &hidden, Some(&store)).unwrap();
        // Swap in the partition of another seed: the saved chunks belong to the old one.
        let other = kmeans::fit(x.view(), partition_lists(5000), PARTITION_ITERS, 99).unwrap();
        store.save("partition", &partition_to_bytes(other.centroids.view()));
        let (g, _, st) = build_resumable(x.view(), &p, &hidden, Some(&store)).unwrap();
        assert!(st.partition_resumed);
        assert_eq!(
            st.chunks_resumed, 0,
            "chunks keyed by the partition they came from"
        );
        assert_eq!(g.len(), 5000);
        // A partition of the wrong shape is refitted.
        store.save(
            "partition",
            &partition_to_bytes(other.centroids.slice(s![..3, ..])),
        );
        let (g2, _, st) = build_resumable(x.view(), &p, &hidden, Some(&store)).unwrap();
        assert!(!st.partition_resumed);
        assert_eq!(g2, build(x.view(), &p, &hidden).unwrap().0);
    }

    #[test]
    fn small_inputs_are_not_checkpointed_by_default() {
        struct Default_(MemStore);
        impl CheckpointStore for Default_ {
            fn load(&self, name: &str) -> Option<Vec<u8>> {
                self.0.load(name)
            }
            fn save(&self, name: &str, bytes: &[u8]) {
                self.0.save(name, bytes)
            }
        }
        let x = clustered(3000, 8, 5, 0.8, 1);
        let store = Default_(MemStore::default());
        let (_, _, st) = build_resumable(
            x.view(),
            &params(5, IndexKind::Exact),
            &ProgressBar::hidden(),
            Some(&store),
        )
        .unwrap();
        assert_eq!(st, ResumeStats::default());
        assert!(store.0 .0.lock().unwrap().is_empty());
    }

    #[test]
    fn cache_key_changes_with_params() {
        let a = GraphParams::default();
        let mut b = a.clone();
        b.k = 17;
        assert_ne!(a.cache_key_bytes(), b.cache_key_bytes());
        assert_eq!(
            a.cache_key_bytes(),
            GraphParams::default().cache_key_bytes()
        );
    }
}
