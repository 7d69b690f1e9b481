//! An `hnsw_rs` index over unit rows: answers nearest-neighbour queries for new vectors against
//! a fixed embedding set and takes in appended rows ([`HnswIndex::insert`]), and can build the
//! self-kNN graph (the `--index hnsw` route, which is slower than the exact and partitioned
//! routes on 2 cores and, unlike them, **not deterministic**: `hnsw_rs` parallel insertion
//! depends on thread timing).
//!
//! It is also the query index for rows appended to a cached pool under `--index hnsw`: the
//! index built with the pool's graph is cached beside it ([`HnswIndex::to_bytes`]), and when new
//! rows arrive it is reloaded, takes them in, and answers their queries
//! (`incremental::extend_with_index`, 6× faster than an hnsw rebuild on clinc150 + 1,000 rows).
//! The default index does not use it: there the exact append of `incremental` is faster still
//! (building the hnsw index costs 7–12× a partitioned rebuild, and inserting plus querying the
//! new rows costs more than the exact append: benches/results/dedup.md).
//!
//! Parameters follow the measurements in `research/rust_stack.md`: M=32 (M=16 collapses on
//! clustered data), ef_construction=200, and a custom clamped dot distance because anndists'
//! `DistDot` panics on normalised input (pitfall P1).

use anndists::dist::Distance;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use indicatif::ProgressBar;
use ndarray::ArrayView2;
use rayon::prelude::*;
use std::path::Path;

use crate::error::{Error, Result};
use crate::index::graph::NeighborGraph;

/// Connections per node (M). 32, not 16: see pitfall P2.
pub const MAX_CONNECTIONS: usize = 32;
/// Candidate list size during construction.
pub const EF_CONSTRUCTION: usize = 200;
/// Default candidate list size during search (recall@10 ≈ 0.99 at 100k in the research runs).
pub const DEFAULT_EF_SEARCH: usize = 64;
/// Magic of a serialised index ([`HnswIndex::to_bytes`]).
pub const INDEX_MAGIC: &[u8; 8] = b"LWHNSW01";
/// Layers of the hierarchy (hnsw_rs caps it at 16).
const MAX_LAYER: usize = 16;

/// Cosine distance for unit vectors, `max(0, 1 − a·b)`: never panics, unlike anndists' `DistDot`.
/// `Default` so that an index dumped with `hnsw_rs` can be reloaded with the same type.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClampedDot;

impl Distance<f32> for ClampedDot {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - crate::index::topk::dot(va, vb)).max(0.0)
    }
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
            return Err(Error::Internal(format!(
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

    /// The index as one byte blob (`hnsw_rs`'s dump: its graph file and its data file), so that
    /// it can live in the cache as one checksummed, atomically written entry like every other
    /// artifact. `scratch` is a directory for the dump's temporary files (removed before
    /// returning); the cache directory is the natural choice (same filesystem, same space).
    ///
    /// Layout: [`INDEX_MAGIC`], dim (u64), len (u64), graph file length (u64), graph file
    /// bytes, data file bytes.
    pub fn to_bytes(&self, scratch: &Path) -> Result<Vec<u8>> {
        let dir = crate::store::atomic::temp_dir_in(scratch)?;
        // hnsw_rs returns the basename it actually used (it may add a suffix: pitfall P6).
        let base = self
            .inner
            .file_dump(dir.path(), "index")
            .map_err(Error::internal("hnsw_rs could not dump the index"))?;
        let graph_path = dir.path().join(format!("{base}.hnsw.graph"));
        let data_path = dir.path().join(format!("{base}.hnsw.data"));
        let graph = std::fs::read(&graph_path).map_err(|e| Error::io(&graph_path, e))?;
        let data = std::fs::read(&data_path).map_err(|e| Error::io(&data_path, e))?;
        let mut v = Vec::with_capacity(INDEX_MAGIC.len() + 24 + graph.len() + data.len());
        v.extend_from_slice(INDEX_MAGIC);
        v.extend_from_slice(&(self.dim as u64).to_le_bytes());
        v.extend_from_slice(&(self.len as u64).to_le_bytes());
        v.extend_from_slice(&(graph.len() as u64).to_le_bytes());
        v.extend_from_slice(&graph);
        v.extend_from_slice(&data);
        Ok(v)
    }

    /// The index [`HnswIndex::to_bytes`] wrote. Malformed bytes are an error, never a panic
    /// (hnsw_rs's loader asserts on what it reads, so it runs under `catch_unwind`); callers
    /// pass bytes whose checksum the cache has verified, so an error here means a bug or a
    /// different hnsw_rs version, and the caller rebuilds.
    ///
    /// hnsw_rs's reloaded index borrows its loader (pitfall P6), so the loader — a few paths
    /// and flags, no point data (no mmap: the points are read into the index) — is leaked to
    /// give the index a `'static` lifetime: one small allocation per reload per process.
    pub fn from_bytes(bytes: &[u8], scratch: &Path) -> Result<HnswIndex> {
        let bad = |why: &str| Error::Internal(format!("cached hnsw index unreadable: {why}"));
        let header = INDEX_MAGIC.len() + 24;
        if bytes.len() < header || &bytes[..INDEX_MAGIC.len()] != INDEX_MAGIC {
            return Err(bad("no header"));
        }
        let field = |i: usize| {
            let at = INDEX_MAGIC.len() + 8 * i;
            u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8])) as usize
        };
        let (dim, len, graph_len) = (field(0), field(1), field(2));
        if graph_len > bytes.len() - header {
            return Err(bad("truncated"));
        }
        let dir = crate::store::atomic::temp_dir_in(scratch)?;
        let graph_path = dir.path().join("index.hnsw.graph");
        let data_path = dir.path().join("index.hnsw.data");
        std::fs::write(&graph_path, &bytes[header..header + graph_len])
            .map_err(|e| Error::io(&graph_path, e))?;
        std::fs::write(&data_path, &bytes[header + graph_len..])
            .map_err(|e| Error::io(&data_path, e))?;
        let dump_dir = dir.path().to_path_buf();
        let loaded = std::panic::catch_unwind(move || {
            let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&dump_dir, "index")));
            loader.load_hnsw::<f32, ClampedDot>()
        });
        let mut inner = match loaded {
            Ok(Ok(inner)) => inner,
            Ok(Err(e)) => return Err(bad(&e.to_string())),
            Err(_) => return Err(bad("hnsw_rs panicked while loading")),
        };
        if inner.get_nb_point() != len {
            return Err(bad("point count differs from the header"));
        }
        inner.set_searching_mode(true);
        Ok(HnswIndex {
            inner,
            dim,
            len,
            ef_search: DEFAULT_EF_SEARCH,
        })
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
/// Cosines are recomputed from the embeddings (f32 dot), not taken from the index. Returns the
/// index too, so that the caller can cache it as the query index for rows appended later.
pub fn self_knn_graph(
    emb: ArrayView2<f32>,
    k: usize,
    progress: &ProgressBar,
) -> Result<(NeighborGraph, HnswIndex)> {
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
                    let c =
                        crate::index::topk::dot(&v, emb.row(j as usize).as_slice().unwrap_or(&[]));
                    crate::index::topk::topk_push(nb, cs, j, c);
                }
            }
            progress.inc(1);
        });
    // Complete rows the index left short.
    crate::index::topk::complete_short_rows(emb, 0..n, k, &mut neighbors, &mut cosines);
    let graph = NeighborGraph {
        k,
        neighbors,
        cosines,
    };
    Ok((graph, index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::kmeans::tests::clustered;

    #[test]
    fn clamped_dot_never_negative() {
        let v = [0.6f32, 0.8];
        assert_eq!(
            ClampedDot.eval(&v, &v),
            0.0f32.max(1.0 - crate::index::topk::dot(&v, &v))
        );
        assert!(ClampedDot.eval(&v, &v) >= 0.0);
    }

    #[test]
    fn an_index_survives_bytes_and_bad_bytes_are_an_error() {
        let x = clustered(600, 16, 4, 0.5, 3);
        let idx = HnswIndex::build(x.view(), &ProgressBar::hidden()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bytes = idx.to_bytes(dir.path()).unwrap();
        let back = HnswIndex::from_bytes(&bytes, dir.path()).unwrap();
        assert_eq!((back.len(), back.dim), (600, 16));
        for i in [0, 17, 599] {
            let v = x.row(i);
            let v = v.as_slice().unwrap();
            assert_eq!(back.query(v, 8), idx.query(v, 8));
        }
        for bad in [
            &bytes[..10],
            &bytes[..bytes.len() / 2],
            b"not an index at all",
        ] {
            assert!(HnswIndex::from_bytes(bad, dir.path()).is_err());
        }
        // Scratch files are gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
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
        let (g, _) = self_knn_graph(x.view(), 10, &ProgressBar::hidden()).unwrap();
        assert!(crate::index::graph::recall_at_10(x.view(), &g, 200, 1) > 0.95);
    }
}
