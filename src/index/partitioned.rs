//! The partitioned route: spherical k-means into ≈√n lists, each item searched exactly against
//! the members of its `probes` nearest lists, then one neighbour-of-neighbour refinement pass.

use std::ops::Range;
use std::sync::Mutex;

use indicatif::ProgressBar;
use ndarray::{linalg::general_mat_mul, Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::checkpoint::{
    chunk_rows, compute_chunks, load_chunks, CheckpointStore, ResumeStats,
};
use crate::index::graph::NeighborGraph;
use crate::index::kmeans::{self, TopCentroids};
use crate::index::topk::{better, complete_short_rows, topk_push};

/// Number of k-means lists the partitioned route uses for n items: ≈ √n, at least 1.
pub fn partition_lists(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).clamp(1, n.max(1))
}

/// Lloyd iterations for the partition (the lists need not be optimal, only coherent).
pub(crate) const PARTITION_ITERS: usize = 10;
/// Queries per GEMM block in the partitioned route.
const PART_QUERY_BLOCK: usize = 1024;
/// Members per GEMM tile in the partitioned route.
const PART_MEMBER_TILE: usize = 4096;

/// Magic of a serialised k-means partition.
const PARTITION_MAGIC: &[u8; 4] = b"LWKP";

/// Partition payload: `"LWKP"`, lists (u64), dimension (u64), then the centroids (f32, row
/// major), little-endian.
pub(crate) fn partition_to_bytes(c: ArrayView2<f32>) -> Vec<u8> {
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
pub(crate) fn partition_from_bytes(b: &[u8], lists: usize, d: usize) -> Option<Array2<f32>> {
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

/// Partitioned route: k-means into ≈√n lists (fitted on a sample, then refined by Lloyd steps
/// over every row, [`kmeans::fit_refined_centroids`]); each item searches the members of its `probes`
/// nearest lists exactly, then one neighbour-of-neighbour refinement pass ([`refine_rows`]).
///
/// The k-means partition is seeded, hence the same on a rerun; given a store it is saved right
/// after fitting and reloaded on resume (which skips the fit). Rows are then searched in fixed
/// chunks ([`chunk_rows`], always, so checkpointing cannot change the GEMM shapes), each saved
/// under a name carrying a hash of the centroids, so a chunk computed against another
/// partition is never mixed in. Refinement reads every searched row, so it runs after the last
/// search chunk, in the same chunks, checkpointed as well.
pub(crate) fn partitioned(
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
            let centroids = kmeans::fit_refined_centroids(emb, nlist, PARTITION_ITERS, seed)?;
            if let Some(s) = store {
                s.save("partition", &partition_to_bytes(centroids.view()));
            }
            centroids
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
            let lists = Lists {
                emb,
                k,
                nlist,
                m_off,
                m_ord,
            };
            search_chunk(&lists, top, rows, nb, cs)
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

/// One chunk of rows searched among their probed lists; rows whose probed lists hold fewer
/// than k others are then searched exactly.
fn search_chunk(
    lists: &Lists<'_, '_>,
    top: &TopCentroids,
    rows: Range<usize>,
    nb: &mut [u32],
    cs: &mut [f32],
) -> Result<()> {
    let p = top.p;
    let queries: Vec<u32> = (rows.start as u32..rows.end as u32).collect();
    lists.search(&queries, &top.ids[rows.start * p..rows.end * p], p, nb, cs)?;
    complete_short_rows(lists.emb, rows, lists.k, nb, cs);
    Ok(())
}

/// The partition the partitioned route searches: the rows of `emb` and the members of each
/// list. Also used on one group of lists at a time by a sharded build (`index::shard`), with
/// `emb` holding only the rows that group needs, in increasing global order.
pub(crate) struct Lists<'e, 'a> {
    pub(crate) emb: ArrayView2<'e, f32>,
    pub(crate) k: usize,
    pub(crate) nlist: usize,
    /// Members of list L: `m_ord[m_off[L]..m_off[L + 1]]`, increasing.
    pub(crate) m_off: &'a [usize],
    pub(crate) m_ord: &'a [u32],
}

impl Lists<'_, '_> {
    /// Top-k of the rows `queries` (increasing) among the members of their probed lists
    /// (`probed[u * p..(u + 1) * p]` for query u), into `nb`/`cs` (`queries.len() · k` each,
    /// sentinels left where fewer than k candidates exist). Work is organised by list: the
    /// queries probing list L are gathered and multiplied with L's members in one GEMM, and
    /// each query's top-k is merged under its own lock (the merge result does not depend on
    /// the order, see the module docs).
    pub(crate) fn search(
        &self,
        queries: &[u32],
        probed: &[u32],
        p: usize,
        nb: &mut [u32],
        cs: &mut [f32],
    ) -> Result<()> {
        let (emb, k, nlist) = (self.emb, self.k, self.nlist);
        let (m_off, m_ord) = (self.m_off, self.m_ord);
        // Queries per list, as positions u in `queries`.
        let (q_off, mut q_ord) = crate::index::kmeans::bucket_by(probed, nlist);
        for e in &mut q_ord {
            *e /= p as u32;
        }
        let bufs: Vec<Mutex<(Vec<u32>, Vec<f32>)>> = queries
            .iter()
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
            let positions = &q_ord[q_off[l]..q_off[l + 1]];
            if members.is_empty() || positions.is_empty() {
                return Ok(());
            }
            for mchunk in members.chunks(PART_MEMBER_TILE) {
                let midx: Vec<usize> = mchunk.iter().map(|&i| i as usize).collect();
                let mv = emb.select(Axis(0), &midx);
                for pchunk in positions.chunks(PART_QUERY_BLOCK) {
                    let qidx: Vec<usize> = pchunk
                        .iter()
                        .map(|&u| queries[u as usize] as usize)
                        .collect();
                    let qv = emb.select(Axis(0), &qidx);
                    let mut sc = Array2::<f32>::zeros((pchunk.len(), mchunk.len()));
                    general_mat_mul(1.0, &qv, &mv.t(), 0.0, &mut sc);
                    for (r, &u) in pchunk.iter().enumerate() {
                        let q = queries[u as usize];
                        let mut guard = bufs[u as usize].lock().map_err(|_| poisoned())?;
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
        Ok(())
    }
}

/// Neighbours whose own lists are scanned in the refinement pass.
pub(crate) const REFINE_EXPAND: usize = 8;

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
                    topk_push(nb, cs, c, crate::index::topk::dot(ri, rc));
                }
            }
        });
}
