//! Top-k buffers and the exact blocked search every route shares: the strict order (higher
//! cosine, then lower index) that makes graphs independent of thread timing, the insertion into
//! a sorted buffer, and the GEMM kernel that scans queries against rows.

use indicatif::ProgressBar;
use ndarray::{linalg::general_mat_mul, s, Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

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
pub(crate) const QUERY_BLOCK: usize = 256;
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

/// Dot product with 8 independent accumulators so that the compiler vectorises it.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
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
