//! An `hnsw_rs` index over unit rows: answers nearest-neighbour queries for new vectors against
//! a fixed embedding set and takes in appended rows ([`HnswIndex::insert`]), and can build the
//! self-kNN graph (the `--index hnsw` route, which is slower than the exact and partitioned
//! routes on 2 cores and, unlike them, **not deterministic**: `hnsw_rs` parallel insertion
//! depends on thread timing).
//!
//! As the query route for rows appended to a cached pool it was measured against the exact
//! append of `incremental` and lost at every size (building the index over the pool costs
//! 7–12× a rebuild of the graph; even with the index built, inserting and querying the new rows
//! is slower than the exact append, with lower recall: benches/results/dedup.md), so runs do not
//! use it; `incremental::extend_with_index` keeps the route measurable.
//!
//! Parameters follow the measurements in `research/rust_stack.md`: M=32 (M=16 collapses on
//! clustered data), ef_construction=200, and a custom clamped dot distance because anndists'
//! `DistDot` panics on normalised input (pitfall P1).

use anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;
use indicatif::ProgressBar;
use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::graph::NeighborGraph;

/// Connections per node (M). 32, not 16: see pitfall P2.
pub const MAX_CONNECTIONS: usize = 32;
/// Candidate list size during construction.
pub const EF_CONSTRUCTION: usize = 200;
/// Default candidate list size during search (recall@10 ≈ 0.99 at 100k in the research runs).
pub const DEFAULT_EF_SEARCH: usize = 64;
/// Layers of the hierarchy (hnsw_rs caps it at 16).
const MAX_LAYER: usize = 16;

/// Cosine distance for unit vectors, `max(0, 1 − a·b)`: never panics, unlike anndists' `DistDot`.
/// `Default` so that an index dumped with `hnsw_rs` can be reloaded with the same type.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClampedDot;

impl Distance<f32> for ClampedDot {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(va, vb)).max(0.0)
    }
}

/// Dot product with 8 independent accumulators so that the compiler vectorises it.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// An HNSW index over the rows of an embedding matrix; item ids are row indices.
pub struct HnswIndex {
    inner: Hnsw<'static, f32, ClampedDot>,
    dim: usize,
    len: usize,
    /// Candidate list size used by [`HnswIndex::query`] (at least k is always used).
    pub ef_search: usize,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("len", &self.len)
            .field("ef_search", &self.ef_search)
            .finish()
    }
}

impl HnswIndex {
    /// Builds the index over the unit rows of `emb` (parallel insertion: not deterministic).
    /// Advances `progress` by the number of rows once insertion finishes.
    pub fn build(emb: ArrayView2<f32>, progress: &ProgressBar) -> Result<HnswIndex> {
        let n = emb.nrows();
        if n == 0 {
            return Err(Error::Usage(
                "cannot build an HNSW index over no items".into(),
            ));
        }
        let emb = emb.as_standard_layout();
        let flat = emb
            .as_slice()
            .ok_or_else(|| Error::Internal("standard layout without a slice".into()))?;
        let d = emb.ncols();
        let mut inner = Hnsw::<f32, ClampedDot>::new(
            MAX_CONNECTIONS,
            n,
            MAX_LAYER,
            EF_CONSTRUCTION,
            ClampedDot,
        );
        let data: Vec<(&[f32], usize)> = flat.chunks_exact(d.max(1)).zip(0..n).collect();
        for chunk in data.chunks(8192) {
            inner.parallel_insert_slice(&chunk.to_vec());
            progress.inc(chunk.len() as u64);
        }
        inner.set_searching_mode(true);
        Ok(HnswIndex {
            inner,
            dim: d,
            len: n,
            ef_search: DEFAULT_EF_SEARCH,
        })
    }

    /// Inserts the unit rows of `rows` with ids `first_id, first_id + 1, …` (parallel: not
    /// deterministic), so that later queries also see them: how a cached index takes in the
    /// rows appended to its pool. Rows of the wrong dimension are an error.
    pub fn insert(&mut self, rows: ArrayView2<f32>, first_id: usize) -> Result<()> {
        if rows.nrows() == 0 {
            return Ok(());
        }
        if rows.ncols() != self.dim {
            return Err(Error::Usage(format!(
                "cannot insert {}-dimensional rows into a {}-dimensional index",
                rows.ncols(),
                self.dim
            )));
        }
        let rows = rows.as_standard_layout();
        let flat = rows
            .as_slice()
            .ok_or_else(|| Error::Internal("standard layout without a slice".into()))?;
        let data: Vec<(&[f32], usize)> =
            flat.chunks_exact(self.dim.max(1)).zip(first_id..).collect();
        self.inner.set_searching_mode(false);
        for chunk in data.chunks(8192) {
            self.inner.parallel_insert_slice(&chunk.to_vec());
        }
        self.inner.set_searching_mode(true);
        self.len = self.len.max(first_id + data.len());
        Ok(())
    }

    /// Number of indexed items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the index holds no items (never, for an index from [`HnswIndex::build`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The (approximately) `k` nearest items to the unit vector `v` as `(row, cosine)`, most
    /// similar first (ties: lower row). May return fewer than `k`. Empty if `v` has the wrong
    /// dimension.
    pub fn query(&self, v: &[f32], k: usize) -> Vec<(u32, f32)> {
        if v.len() != self.dim || k == 0 {
            return Vec::new();
        }
        let mut out: Vec<(u32, f32)> = self
            .inner
            .search(v, k, self.ef_search.max(k))
            .into_iter()
            .map(|nb| (nb.d_id as u32, 1.0 - nb.distance))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(k);
        out
    }
}

/// The self-kNN graph through an HNSW index: asks for k+1 per row and drops the row itself by
/// id. Rows for which the index returns fewer than k others are completed by an exact search.
/// Cosines are recomputed from the embeddings (f32 dot), not taken from the index.
pub fn self_knn_graph(
    emb: ArrayView2<f32>,
    k: usize,
    progress: &ProgressBar,
) -> Result<NeighborGraph> {
    let n = emb.nrows();
    let emb = emb.as_standard_layout();
    let emb = emb.view();
    let index = HnswIndex::build(emb, &ProgressBar::hidden())?;
    let ef = index.ef_search.max(k + 1);
    let mut neighbors = vec![u32::MAX; n * k];
    let mut cosines = vec![f32::NEG_INFINITY; n * k];
    neighbors
        .par_chunks_mut(k)
        .zip(cosines.par_chunks_mut(k))
        .enumerate()
        .for_each(|(i, (nb, cs))| {
            let row = emb.row(i);
            let v = row
                .as_slice()
                .map(|s| s.to_vec())
                .unwrap_or_else(|| row.to_vec());
            for h in index.inner.search(&v, k + 1, ef) {
                let j = h.d_id as u32;
                if h.d_id != i && h.d_id < n {
                    let c = dot(&v, emb.row(j as usize).as_slice().unwrap_or(&[]));
                    crate::graph::topk_push(nb, cs, j, c);
                }
            }
            progress.inc(1);
        });
    // Complete rows the index left short.
    crate::graph::complete_short_rows(emb, 0..n, k, &mut neighbors, &mut cosines);
    Ok(NeighborGraph {
        k,
        neighbors,
        cosines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::tests::clustered;

    #[test]
    fn clamped_dot_never_negative() {
        let v = [0.6f32, 0.8];
        assert_eq!(ClampedDot.eval(&v, &v), 0.0f32.max(1.0 - dot(&v, &v)));
        assert!(ClampedDot.eval(&v, &v) >= 0.0);
    }

    #[test]
    fn query_finds_itself_and_neighbours() {
        let x = clustered(800, 16, 5, 0.5, 9);
        let idx = HnswIndex::build(x.view(), &ProgressBar::hidden()).unwrap();
        assert_eq!(idx.len(), 800);
        let r = idx.query(x.row(17).as_slice().unwrap(), 5);
        assert_eq!(r[0].0, 17);
        assert!((r[0].1 - 1.0).abs() < 1e-5);
        assert!(idx.query(&[1.0], 5).is_empty());
        let g = self_knn_graph(x.view(), 10, &ProgressBar::hidden()).unwrap();
        assert!(crate::graph::recall_at_10(x.view(), &g, 200, 1) > 0.95);
    }
}
