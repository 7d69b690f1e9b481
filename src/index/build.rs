//! Building the graph: picks the route for the input and parameters, runs it (checkpointed when
//! given a store), and checks every row came back full.

use indicatif::ProgressBar;
use ndarray::ArrayView2;

use crate::error::{Error, Result};
use crate::index::checkpoint::{CheckpointStore, ResumeStats};
use crate::index::exact::exact;
use crate::index::graph::{auto_route, GraphParams, IndexKind, NeighborGraph};
use crate::index::partitioned::partitioned;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::checkpoint::*;
    use crate::index::graph::*;
    use crate::index::kmeans;
    use crate::index::kmeans::tests::clustered;
    use crate::index::partitioned::*;
    use crate::index::topk::*;
    use ndarray::{s, Array2};
    use std::sync::Mutex;

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
