//! The exact route: every item against every item by blocked matrix products (recall 1.0).

use indicatif::ProgressBar;
use ndarray::{s, ArrayView2};

use crate::error::Result;
use crate::index::checkpoint::{
    chunk_rows, compute_chunks, load_chunks, CheckpointStore, ResumeStats,
};
use crate::index::graph::NeighborGraph;
use crate::index::topk::exact_topk;

/// Exact route: every item against every item, blocked; in checkpointed chunks given a store
/// (chunks are whole query blocks, so the result is the same either way).
pub(crate) fn exact(
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
