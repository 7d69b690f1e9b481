//! Spherical k-means on unit rows, written as matrix products (Lloyd with GEMM).
//!
//! Used to partition the embedding space for the partitioned neighbour search, and by other
//! stages for rarity scoring and cold-start batch selection. Rows are assumed L2-normalised, so
//! "nearest centroid" means "largest dot product", and centroids are re-normalised after every
//! update (spherical k-means).
//!
//! Determinism: every random choice takes the seed; every parallel loop is over rows or over
//! clusters and writes its own slot; sums are taken in a fixed (index) order. The result is
//! bit-identical for the same input and seed whatever the number of rayon threads.

use ndarray::{linalg::general_mat_mul, s, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Largest number of rows Lloyd iterations run on; larger inputs are fitted on a seeded sample
/// and then every row is assigned with one GEMM pass (the centroids barely move past ~100k).
pub const FIT_SAMPLE_MAX: usize = 100_000;

/// k-means++ runs on at most this many rows per cluster (and at least [`INIT_SAMPLE_MIN`]),
/// which keeps initialisation O(k² · 20 · d) instead of O(k · n · d).
const INIT_SAMPLE_PER_CLUSTER: usize = 20;
/// Lower bound of the k-means++ sample.
const INIT_SAMPLE_MIN: usize = 10_000;
/// Seedings tried when rows × clusters is at most [`RESTART_BUDGET`].
const RESTARTS: usize = 4;
/// Rows × clusters up to which several seedings are tried (a few GEMM passes each).
const RESTART_BUDGET: f64 = 5e5;
/// Lloyd stops once at most this fraction of the fitted rows changed cluster in an iteration.
const TOLERANCE: f64 = 1e-4;
/// Rows per GEMM block in assignment; bounds memory at `ROW_BLOCK * k` f32 per thread.
const ROW_BLOCK: usize = 512;

/// A fitted clustering: unit-norm centroids and the cluster of every input row.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// `k × d`, each row L2-normalised (a row of zeros only if its cluster never had members).
    pub centroids: Array2<f32>,
    /// Cluster of every input row (the centroid with the largest dot product; ties: lowest id).
    pub assignment: Vec<u32>,
    /// Number of input rows per cluster (can be 0 for degenerate input, e.g. many identical rows).
    pub sizes: Vec<usize>,
}

impl KMeans {
    /// The clustering that `assignment` (every row's centroid) makes of `centroids`.
    pub fn from_assignment(centroids: Array2<f32>, assignment: Vec<u32>) -> KMeans {
        let mut sizes = vec![0usize; centroids.nrows()];
        for &a in &assignment {
            sizes[a as usize] += 1;
        }
        KMeans {
            centroids,
            assignment,
            sizes,
        }
    }

    /// A compact little-endian encoding (k, d, n, centroids, assignment) for the cache: the
    /// clustering is label-independent, so later rounds on the same pool reuse it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (k, d) = self.centroids.dim();
        let n = self.assignment.len();
        let mut b = Vec::with_capacity(24 + 4 * (k * d + n));
        for v in [k, d, n] {
            b.extend_from_slice(&(v as u64).to_le_bytes());
        }
        for v in self.centroids.iter() {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in &self.assignment {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Decodes [`KMeans::to_bytes`]; `None` for anything inconsistent (sizes are recounted
    /// from the assignment, never trusted).
    pub fn from_bytes(b: &[u8]) -> Option<KMeans> {
        let word = |i: usize| -> Option<usize> {
            let s = b.get(8 * i..8 * i + 8)?;
            usize::try_from(u64::from_le_bytes(s.try_into().ok()?)).ok()
        };
        let (k, d, n) = (word(0)?, word(1)?, word(2)?);
        let cells = k.checked_mul(d)?;
        let len = cells.checked_add(n)?.checked_mul(4)?.checked_add(24)?;
        if b.len() != len {
            return None;
        }
        let f = |o: usize| <[u8; 4]>::try_from(&b[o..o + 4]).expect("4 bytes");
        let centroids: Vec<f32> = (0..cells)
            .map(|i| f32::from_le_bytes(f(24 + 4 * i)))
            .collect();
        let base = 24 + 4 * cells;
        let assignment: Vec<u32> = (0..n)
            .map(|i| u32::from_le_bytes(f(base + 4 * i)))
            .collect();
        let mut sizes = vec![0usize; k];
        for &c in &assignment {
            *sizes.get_mut(c as usize)? += 1;
        }
        Some(KMeans {
            centroids: Array2::from_shape_vec((k, d), centroids).ok()?,
            assignment,
            sizes,
        })
    }
}

/// The `p` nearest centroids of every row, as needed by the partitioned neighbour search.
#[derive(Debug, Clone, PartialEq)]
pub struct TopCentroids {
    /// Centroids per row (the requested `p`, clipped to the number of centroids).
    pub p: usize,
    /// `ids[i * p + j]`: j-th nearest centroid of row i (largest dot first; ties: lowest id).
    pub ids: Vec<u32>,
    /// `dots[i * p + j]`: dot product of row i with that centroid.
    pub dots: Vec<f32>,
}

/// Rule of thumb for the number of clusters when the caller has no better idea:
/// `round(√(n/2))`, clipped to `[1, 1000]` and to `n`. √(n/2) is the classic heuristic; the
/// upper clip keeps assignment cost (n·k·d) bounded for millions of rows.
pub fn default_k(n: usize) -> usize {
    let k = ((n as f64) / 2.0).sqrt().round() as usize;
    k.clamp(1, 1000).min(n.max(1))
}

/// Fits spherical k-means with `k` clusters on the unit rows of `x`.
///
/// Seeded k-means++ initialisation on a sample, then at most `max_iter` Lloyd iterations on at
/// most [`FIT_SAMPLE_MAX`] sampled rows ([`fit_centroids`]), then one assignment pass over all
/// rows. Empty clusters are re-seeded deterministically with the fitted rows farthest from their
/// centroid. Errors with `Error::Usage` when `x` has no rows, `k == 0` or `k > n`.
pub fn fit(x: ArrayView2<f32>, k: usize, max_iter: usize, seed: u64) -> Result<KMeans> {
    check_shape(x.nrows(), k)?;
    let centroids = sample_centroids(x, k, max_iter, seed);
    let (assignment, _) = assign_best(x, centroids.view());
    Ok(KMeans::from_assignment(centroids, assignment))
}

/// The partition's centroids as the partitioned route and a cluster compute them: [`fit`]'s
/// centroids, then [`refine_steps`] Lloyd steps over every row. Without `fit`'s assignment
/// pass, which the route has no use for.
pub fn fit_refined_centroids(
    x: ArrayView2<f32>,
    k: usize,
    max_iter: usize,
    seed: u64,
) -> Result<Array2<f32>> {
    let n = x.nrows();
    check_shape(n, k)?;
    let centroids = sample_centroids(x, k, max_iter, seed);
    refine_centroids(x, centroids, refine_steps(n, k))
}

/// [`fit`]'s centroids: the fit on its seeded sample (a copy only when sampling).
fn sample_centroids(x: ArrayView2<f32>, k: usize, max_iter: usize, seed: u64) -> Array2<f32> {
    let (rows, mut rng) = draw_fit_sample(x.nrows(), k, seed);
    match rows {
        Some(idx) => fit_on(x.select(Axis(0), &idx).view(), k, max_iter, &mut rng),
        None => fit_on(x, k, max_iter, &mut rng),
    }
}

/// The rows [`fit`] runs Lloyd on for a pool of `n` rows, sorted; `None` when it uses them all.
/// A cluster gathers exactly these rows from its shards and passes them to [`fit_centroids`].
pub fn fit_sample_rows(n: usize, k: usize, seed: u64) -> Option<Vec<usize>> {
    draw_fit_sample(n, k, seed).0
}

/// The centroids [`fit`] computes, from the rows [`fit_sample_rows`] names already gathered (in
/// that order) out of a pool of `n` rows: bit-identical to the single process's, which is what
/// lets a cluster's partition equal one machine's.
pub fn fit_centroids(
    sample: ArrayView2<f32>,
    n: usize,
    k: usize,
    max_iter: usize,
    seed: u64,
) -> Result<Array2<f32>> {
    check_shape(n, k)?;
    let (rows, mut rng) = draw_fit_sample(n, k, seed);
    let expected = rows.map_or(n, |r| r.len());
    if sample.nrows() != expected {
        return Err(Error::Usage(format!(
            "k-means: the fit sample of a pool of {n} rows has {expected} rows, got {}",
            sample.nrows()
        )));
    }
    Ok(fit_on(sample, k, max_iter, &mut rng))
}

/// Rejects shapes k-means cannot fit: no rows, `k` outside `1..=n`, more rows than `u32` holds.
fn check_shape(n: usize, k: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Usage("k-means needs at least one row".into()));
    }
    if k == 0 || k > n {
        return Err(Error::Usage(format!(
            "k-means: the number of clusters must be between 1 and the number of rows ({n}), got {k}"
        )));
    }
    if u32::try_from(n).is_err() {
        return Err(Error::Usage(format!(
            "k-means: at most {} rows are supported",
            u32::MAX
        )));
    }
    Ok(())
}

/// The seeded fit sample (`None`: all rows) and the generator as the fit goes on with it.
fn draw_fit_sample(n: usize, k: usize, seed: u64) -> (Option<Vec<usize>>, Xoshiro256PlusPlus) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let rows = samples(n, k).then(|| sorted_sample(&mut rng, n, fit_rows(k)));
    (rows, rng)
}

/// Rows the fit runs Lloyd on at most: [`FIT_SAMPLE_MAX`], or 4 per cluster if that is more.
fn fit_rows(k: usize) -> usize {
    FIT_SAMPLE_MAX.max(4 * k)
}

/// Whether the fit of `n` rows into `k` clusters runs on a sample rather than every row.
fn samples(n: usize, k: usize) -> bool {
    n > fit_rows(k)
}

/// k-means++ seedings and Lloyd on the fit rows `xs`; keeps the tightest.
fn fit_on(
    xs: ArrayView2<f32>,
    k: usize,
    max_iter: usize,
    rng: &mut Xoshiro256PlusPlus,
) -> Array2<f32> {
    let m = xs.nrows();
    // Small problems get several seedings and keep the tightest result: one k-means++ start
    // can still merge two nearby clusters and split another, which costs a cold-start batch a
    // class. Large problems (fitted on a sample anyway) get one.
    let restarts = if (m as f64) * (k as f64) <= RESTART_BUDGET {
        RESTARTS
    } else {
        1
    };
    let mut best_fit: Option<(f64, Array2<f32>)> = None;
    for _ in 0..restarts {
        let centroids = lloyd(xs, kmeans_pp(xs, k, rng), max_iter);
        let (_, best) = assign_best(xs, centroids.view());
        let inertia: f64 = best.iter().map(|&b| f64::from(1.0 - b)).sum();
        if best_fit.as_ref().is_none_or(|(i, _)| inertia < *i) {
            best_fit = Some((inertia, centroids));
        }
    }
    best_fit.map(|b| b.1).expect("at least one start")
}

/// Lloyd iterations from `centroids` until few rows move, re-seeding empty clusters.
fn lloyd(xs: ArrayView2<f32>, mut centroids: Array2<f32>, max_iter: usize) -> Array2<f32> {
    let m = xs.nrows();
    let mut assign = vec![u32::MAX; m];
    for _ in 0..max_iter {
        let (new_assign, best) = assign_best(xs, centroids.view());
        let changed = new_assign
            .iter()
            .zip(&assign)
            .filter(|(a, b)| a != b)
            .count();
        assign = new_assign;
        let empty = update_centroids(xs, &assign, &mut centroids);
        if !empty.is_empty() {
            reseed_empty(xs, &best, &empty, &mut centroids);
        } else if (changed as f64) <= TOLERANCE * m as f64 {
            break;
        }
    }
    centroids
}

/// The `p` nearest centroids (largest dot product) of every row of `x`; `p` is clipped to the
/// number of centroids. Errors with `Error::Usage` on `p == 0` or no centroids, `Error::Internal`
/// on a dimension mismatch.
pub fn assign_top(
    x: ArrayView2<f32>,
    centroids: ArrayView2<f32>,
    p: usize,
) -> Result<TopCentroids> {
    let k = centroids.nrows();
    if p == 0 || k == 0 {
        return Err(Error::Usage(
            "assign_top needs p ≥ 1 and at least one centroid".into(),
        ));
    }
    if x.ncols() != centroids.ncols() {
        return Err(Error::Internal(format!(
            "assign_top: rows have dimension {}, centroids {}",
            x.ncols(),
            centroids.ncols()
        )));
    }
    let p = p.min(k);
    let n = x.nrows();
    let mut ids = vec![u32::MAX; n * p];
    let mut dots = vec![f32::NEG_INFINITY; n * p];
    ids.par_chunks_mut(ROW_BLOCK * p)
        .zip(dots.par_chunks_mut(ROW_BLOCK * p))
        .enumerate()
        .for_each(|(b, (ib, db))| {
            let r0 = b * ROW_BLOCK;
            let rows = ib.len() / p;
            let block = x.slice(s![r0..r0 + rows, ..]);
            let mut sc = Array2::<f32>::zeros((rows, k));
            general_mat_mul(1.0, &block, &centroids.t(), 0.0, &mut sc);
            for (r, srow) in sc.outer_iter().enumerate() {
                let (ir, dr) = (&mut ib[r * p..(r + 1) * p], &mut db[r * p..(r + 1) * p]);
                for (c, &v) in srow.iter().enumerate() {
                    crate::index::topk::topk_push(ir, dr, c as u32, v);
                }
            }
        });
    Ok(TopCentroids { p, ids, dots })
}

/// Seeded sample of `m` distinct indices out of `0..n`, sorted (for memory locality).
fn sorted_sample(rng: &mut Xoshiro256PlusPlus, n: usize, m: usize) -> Vec<usize> {
    let mut idx = rand::seq::index::sample(rng, n, m).into_vec();
    idx.sort_unstable();
    idx
}

/// Best centroid (largest dot, ties lowest id) and its dot for every row; GEMM in row blocks,
/// parallel over blocks.
pub(crate) fn assign_best(x: ArrayView2<f32>, c: ArrayView2<f32>) -> (Vec<u32>, Vec<f32>) {
    let n = x.nrows();
    let k = c.nrows();
    let mut ids = vec![0u32; n];
    let mut best = vec![f32::NEG_INFINITY; n];
    ids.par_chunks_mut(ROW_BLOCK)
        .zip(best.par_chunks_mut(ROW_BLOCK))
        .enumerate()
        .for_each(|(b, (ib, bb))| {
            let r0 = b * ROW_BLOCK;
            let rows = ib.len();
            let block = x.slice(s![r0..r0 + rows, ..]);
            let mut sc = Array2::<f32>::zeros((rows, k));
            general_mat_mul(1.0, &block, &c.t(), 0.0, &mut sc);
            for (r, srow) in sc.outer_iter().enumerate() {
                let mut bi = 0u32;
                let mut bv = f32::NEG_INFINITY;
                for (j, &v) in srow.iter().enumerate() {
                    if v > bv {
                        bv = v;
                        bi = j as u32;
                    }
                }
                ib[r] = bi;
                bb[r] = bv;
            }
        });
    (ids, best)
}

/// Seeded spherical k-means++: next centre drawn with probability ∝ 1 − max dot to the chosen
/// centres (half the squared Euclidean distance on unit vectors). Runs on a sample.
fn kmeans_pp(xs: ArrayView2<f32>, k: usize, rng: &mut Xoshiro256PlusPlus) -> Array2<f32> {
    let m = xs.nrows();
    let d = xs.ncols();
    let init_m = m
        .min((INIT_SAMPLE_PER_CLUSTER * k).max(INIT_SAMPLE_MIN))
        .max(k);
    let init_owned;
    let xi: ArrayView2<f32> = if init_m < m {
        let idx = sorted_sample(rng, m, init_m);
        init_owned = xs.select(Axis(0), &idx);
        init_owned.view()
    } else {
        xs.view()
    };
    let mi = xi.nrows();
    let mut centroids = Array2::<f32>::zeros((k, d));
    let mut best = vec![f32::NEG_INFINITY; mi];
    let mut chosen = vec![false; mi];
    let mut next = rng.gen_range(0..mi);
    // Dots of every row with `next`, when the greedy step already computed them.
    let mut next_dots: Option<Vec<f32>> = None;
    for c in 0..k {
        chosen[next] = true;
        centroids.row_mut(c).assign(&xi.row(next));
        if c + 1 == k {
            break;
        }
        let dots = next_dots
            .take()
            .unwrap_or_else(|| dots_with_rows(xi, &[next]));
        best.par_iter_mut().zip(&dots).for_each(|(b, &v)| {
            if v > *b {
                *b = v;
            }
        });
        let weight = |i: usize, b: f32| -> f64 {
            if chosen[i] {
                0.0
            } else {
                f64::from((1.0 - b).max(0.0))
            }
        };
        // Prefix sums of the D² weights, for drawing candidates.
        let mut prefix = Vec::with_capacity(mi);
        let mut total = 0.0f64;
        for (i, &b) in best.iter().enumerate() {
            total += weight(i, b);
            prefix.push(total);
        }
        if !(total > 0.0 && total.is_finite()) {
            // Every remaining row coincides with a centre: take the first unchosen row.
            next = chosen.iter().position(|&ch| !ch).unwrap_or(0);
            continue;
        }
        // Greedy k-means++ (as scikit-learn does): draw 2 + ln k candidates and keep the one
        // that lowers the potential most. Plain k-means++ often seeds two centres in one
        // well-separated cluster and leaves another without one, which Lloyd cannot repair.
        let trials = 2 + (k as f64).ln().floor() as usize;
        let mut cands: Vec<usize> = Vec::with_capacity(trials);
        for _ in 0..trials {
            let target = rng.gen::<f64>() * total;
            let mut cand = prefix.partition_point(|&p| p <= target).min(mi - 1);
            while chosen[cand] || weight(cand, best[cand]) == 0.0 {
                // Zero-weight rows share the prefix value: move to the next row with weight.
                cand = match (cand + 1..mi).find(|&i| weight(i, best[i]) > 0.0) {
                    Some(i) => i,
                    None => (0..mi)
                        .rev()
                        .find(|&i| weight(i, best[i]) > 0.0)
                        .unwrap_or(0),
                };
                if weight(cand, best[cand]) > 0.0 || chosen.iter().all(|&c| c) {
                    break;
                }
            }
            cands.push(cand);
        }
        // All candidates' dots in one matrix product (was one scalar dot per row and
        // candidate: the hot spot of k-means at 1,000 clusters).
        let t = cands.len();
        let dots = dots_with_rows(xi, &cands);
        let mut best_pick: Option<(f64, usize)> = None;
        for j in 0..t {
            let potential: f64 = (0..mi)
                .map(|i| weight(i, best[i].max(dots[i * t + j])))
                .sum();
            if best_pick.is_none_or(|(p, _)| potential < p) {
                best_pick = Some((potential, j));
            }
        }
        let j = best_pick.map(|b| b.1).unwrap_or(0);
        next = cands[j];
        next_dots = Some((0..mi).map(|i| dots[i * t + j]).collect());
    }
    centroids
}

/// Dot products of every row of `x` with the rows `idx` of `x`, row-major (`x.nrows()` ×
/// `idx.len()`). Fixed row blocks, each one GEMM, so the result does not depend on the number
/// of threads.
fn dots_with_rows(x: ArrayView2<f32>, idx: &[usize]) -> Vec<f32> {
    let c = x.select(Axis(0), idx);
    let t = idx.len();
    let mut out = vec![0.0f32; x.nrows() * t];
    out.par_chunks_mut(ROW_BLOCK * t)
        .zip(x.axis_chunks_iter(Axis(0), ROW_BLOCK).into_par_iter())
        .for_each(|(o, rows)| {
            let block = rows.dot(&c.t());
            for (dst, src) in o.iter_mut().zip(block.iter()) {
                *dst = *src;
            }
        });
    out
}

/// Recomputes every centroid as the normalised sum (f64, index order) of its rows; returns the
/// clusters that are empty. A cluster whose sum is zero keeps its previous centroid.
fn update_centroids(
    xs: ArrayView2<f32>,
    assign: &[u32],
    centroids: &mut Array2<f32>,
) -> Vec<usize> {
    let k = centroids.nrows();
    let d = xs.ncols();
    let (offsets, order) = bucket_by(assign, k);
    let new: Vec<Option<Vec<f32>>> = (0..k)
        .into_par_iter()
        .map(|c| {
            let members = &order[offsets[c]..offsets[c + 1]];
            if members.is_empty() {
                return None;
            }
            let mut acc = vec![0f64; d];
            for &i in members {
                for (a, &v) in acc.iter_mut().zip(xs.row(i as usize).iter()) {
                    *a += f64::from(v);
                }
            }
            let norm = acc.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 0.0 && norm.is_finite() {
                Some(acc.iter().map(|a| (a / norm) as f32).collect())
            } else {
                Some(Vec::new())
            }
        })
        .collect();
    let mut empty = Vec::new();
    for (c, v) in new.into_iter().enumerate() {
        match v {
            None => empty.push(c),
            Some(v) if v.len() == d => {
                for (dst, src) in centroids.row_mut(c).iter_mut().zip(v) {
                    *dst = src;
                }
            }
            Some(_) => {}
        }
    }
    empty
}

/// Lloyd steps over every row after a sampled fit: what the distributed route's map and
/// reduce do over shards, so the single process takes them too and both partitions agree.
pub const REFINE_STEPS: usize = 2;

/// Fixed-point scale of [`CentroidSums`]: a unit row's components become integers, so sums are
/// exact and add up to the same value in any order or sharding (f64 sums do not).
const SUM_SCALE: f64 = (1u64 << 32) as f64;

/// Lloyd steps over all rows that follow the fit of a pool of `n` rows into `k` clusters:
/// [`REFINE_STEPS`] when the fit saw a sample, 0 when it already ran on every row.
pub fn refine_steps(n: usize, k: usize) -> usize {
    if samples(n, k) {
        REFINE_STEPS
    } else {
        0
    }
}

/// One shard's half of a Lloyd step: per centroid, the sum of the rows nearest to it (fixed
/// point, each component × 2³²) and their count. Integer sums make any split of the rows add
/// up to the whole data's sums bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub struct CentroidSums {
    /// `k × d`, row-major: sum of the rows assigned to each centroid, times 2³².
    pub sums: Vec<i64>,
    /// Rows assigned to each centroid.
    pub counts: Vec<u64>,
}

/// The map half of a Lloyd step on the unit rows `x` of one shard: each row goes to its nearest
/// centroid (largest dot, ties lowest id) and is added to that centroid's sum.
pub fn centroid_sums(x: ArrayView2<f32>, centroids: ArrayView2<f32>) -> Result<CentroidSums> {
    let (k, d) = centroids.dim();
    if x.ncols() != d || k == 0 {
        return Err(Error::Usage(format!(
            "centroid sums: rows have dimension {}, centroids {d} (k = {k})",
            x.ncols()
        )));
    }
    let (assign, _) = assign_best(x, centroids);
    let (offsets, order) = bucket_by(&assign, k);
    let per: Vec<Vec<i64>> = (0..k)
        .into_par_iter()
        .map(|c| {
            let mut acc = vec![0i64; d];
            for &i in &order[offsets[c]..offsets[c + 1]] {
                for (a, &v) in acc.iter_mut().zip(x.row(i as usize).iter()) {
                    *a = a.wrapping_add((f64::from(v) * SUM_SCALE).round() as i64);
                }
            }
            acc
        })
        .collect();
    Ok(CentroidSums {
        sums: per.concat(),
        counts: (0..k)
            .map(|c| (offsets[c + 1] - offsets[c]) as u64)
            .collect(),
    })
}

/// The reduce half: new centroids from the summed shards' sums, each the normalised sum; a
/// centroid nobody chose (or whose sum is zero) keeps its `previous` value.
pub fn centroids_from_sums(total: &CentroidSums, previous: ArrayView2<f32>) -> Result<Array2<f32>> {
    let (k, d) = previous.dim();
    if total.sums.len() != k * d || total.counts.len() != k {
        return Err(Error::Usage(format!(
            "centroid sums hold {} values and {} counts, expected {k} × {d}",
            total.sums.len(),
            total.counts.len()
        )));
    }
    let mut out = previous.to_owned();
    for c in 0..k {
        let acc: Vec<f64> = total.sums[c * d..(c + 1) * d]
            .iter()
            .map(|&a| a as f64)
            .collect();
        let norm = acc.iter().map(|a| a * a).sum::<f64>().sqrt();
        if total.counts[c] > 0 && norm > 0.0 && norm.is_finite() {
            for (dst, a) in out.row_mut(c).iter_mut().zip(&acc) {
                *dst = (a / norm) as f32;
            }
        }
    }
    Ok(out)
}

/// `steps` Lloyd steps over every row of `x` from `centroids` ([`centroid_sums`] then
/// [`centroids_from_sums`]): the single-process twin of the distributed refinement.
pub fn refine_centroids(
    x: ArrayView2<f32>,
    mut centroids: Array2<f32>,
    steps: usize,
) -> Result<Array2<f32>> {
    for _ in 0..steps {
        let sums = centroid_sums(x, centroids.view())?;
        centroids = centroids_from_sums(&sums, centroids.view())?;
    }
    Ok(centroids)
}

/// Inertia of a clustering of `x`: the sum over rows of `1 − cos` to the assigned centroid.
///
/// Summed in f64 per block of `ROW_BLOCK` rows in parallel, then over the blocks in block
/// order: the blocks do not depend on the thread count, so neither does the result (a rayon
/// `sum()` splits where its scheduler happens to, and f64 addition is not associative).
pub fn inertia(x: ArrayView2<f32>, km: &KMeans) -> f64 {
    let per_block: Vec<f64> = km
        .assignment
        .par_chunks(ROW_BLOCK)
        .enumerate()
        .map(|(b, block)| {
            block
                .iter()
                .enumerate()
                .map(|(r, &c)| {
                    let i = b * ROW_BLOCK + r;
                    f64::from(1.0 - x.row(i).dot(&km.centroids.row(c as usize)))
                })
                .sum::<f64>()
        })
        .collect();
    per_block.iter().sum()
}

/// Re-seeds each empty cluster with a distinct fitted row among those farthest from their
/// centroid (smallest best dot; ties: lowest index).
fn reseed_empty(xs: ArrayView2<f32>, best: &[f32], empty: &[usize], centroids: &mut Array2<f32>) {
    let mut order: Vec<u32> = (0..best.len() as u32).collect();
    let key = |i: &u32| best[*i as usize];
    let take = empty.len().min(order.len());
    if take == 0 {
        return;
    }
    order.select_nth_unstable_by(take - 1, |a, b| key(a).total_cmp(&key(b)).then(a.cmp(b)));
    let mut far = order[..take].to_vec();
    far.sort_unstable_by(|a, b| key(a).total_cmp(&key(b)).then(a.cmp(b)));
    for (&c, &i) in empty.iter().zip(&far) {
        centroids.row_mut(c).assign(&xs.row(i as usize));
    }
}

/// Counting sort of `0..labels.len()` by label: returns `(offsets, order)` with the members of
/// label `c` at `order[offsets[c]..offsets[c+1]]`, in increasing index order.
pub(crate) fn bucket_by(labels: &[u32], k: usize) -> (Vec<usize>, Vec<u32>) {
    let mut offsets = vec![0usize; k + 1];
    for &l in labels {
        offsets[l as usize + 1] += 1;
    }
    for c in 0..k {
        offsets[c + 1] += offsets[c];
    }
    let mut fill = offsets.clone();
    let mut order = vec![0u32; labels.len()];
    for (i, &l) in labels.iter().enumerate() {
        order[fill[l as usize]] = i as u32;
        fill[l as usize] += 1;
    }
    (offsets, order)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand_distr_free::*;

    /// Tiny normal sampler without rand_distr: Box–Muller on the seeded generator.
    pub(crate) mod rand_distr_free {
        use rand::Rng;
        pub fn normal<R: Rng>(rng: &mut R) -> f32 {
            let u1: f64 = rng.gen::<f64>().max(1e-300);
            let u2: f64 = rng.gen();
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        }
    }

    /// Clustered unit rows: `c` random centres plus Gaussian noise of total norm ≈ `noise`.
    pub(crate) fn clustered(n: usize, d: usize, c: usize, noise: f32, seed: u64) -> Array2<f32> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..c)
            .map(|_| (0..d).map(|_| normal(&mut rng)).collect())
            .collect();
        let mut x = Array2::<f32>::zeros((n, d));
        let scale = noise / (d as f32).sqrt();
        for mut row in x.outer_iter_mut() {
            let cen = &centres[rng.gen_range(0..c)];
            let cn = cen.iter().map(|v| v * v).sum::<f32>().sqrt();
            for (j, v) in row.iter_mut().enumerate() {
                *v = cen[j] / cn + scale * normal(&mut rng);
            }
            let nn = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            row.mapv_inplace(|v| v / nn);
        }
        x
    }

    #[test]
    fn finds_separated_clusters() {
        let x = clustered(600, 16, 4, 0.2, 1);
        let km = fit(x.view(), 4, 50, 7).unwrap();
        assert_eq!(km.sizes.iter().sum::<usize>(), 600);
        assert!(km.sizes.iter().all(|&s| s > 50), "{:?}", km.sizes);
        for r in km.centroids.outer_iter() {
            let nrm = r.dot(&r).sqrt();
            assert!((nrm - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn greedy_seeding_covers_every_separated_cluster() {
        // 10 clusters in 64-d with noise norm 0.4: plain k-means++ double-seeded a cluster for
        // some seeds (cold-start batches then missed a class); greedy seeding must not.
        let x = clustered(500, 64, 10, 0.4, 3);
        for seed in 0..8 {
            let km = fit(x.view(), 10, 25, seed).unwrap();
            let mut sizes = km.sizes.clone();
            sizes.sort_unstable();
            assert!(sizes[0] >= 25, "seed {seed}: sizes {:?}", km.sizes);
        }
    }

    #[test]
    fn deterministic_across_threads() {
        let x = clustered(3000, 24, 10, 0.5, 3);
        let run = |t: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| fit(x.view(), 12, 20, 42).unwrap())
        };
        let a = run(1);
        let b = run(2);
        let c = run(3);
        assert_eq!(a, b);
        assert_eq!(a, c);
        let top1 = run(1);
        let t = assign_top(x.view(), top1.centroids.view(), 3).unwrap();
        for i in 0..x.nrows() {
            assert_eq!(t.ids[i * 3], top1.assignment[i]);
            assert!(t.dots[i * 3] >= t.dots[i * 3 + 1] && t.dots[i * 3 + 1] >= t.dots[i * 3 + 2]);
        }
    }

    #[test]
    fn inertia_is_the_same_whatever_the_threads() {
        let x = clustered(20_000, 16, 10, 0.5, 4);
        let km = fit(x.view(), 10, 10, 1).unwrap();
        let at = |t: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| inertia(x.view(), &km))
        };
        let one = at(1);
        for t in [2, 3, 4, 7] {
            assert_eq!(one.to_bits(), at(t).to_bits(), "{t} threads");
        }
        let direct: f64 = (0..x.nrows())
            .map(|i| f64::from(1.0 - x.row(i).dot(&km.centroids.row(km.assignment[i] as usize))))
            .sum();
        assert!((one - direct).abs() < 1e-6 * direct.max(1.0));
    }

    #[test]
    fn centroids_from_the_gathered_sample_are_the_fits_own() {
        let n = FIT_SAMPLE_MAX + 20_000;
        let x = clustered(n, 8, 6, 0.5, 4);
        let rows = fit_sample_rows(n, 6, 9).expect("a pool past the cap is sampled");
        assert_eq!(rows.len(), FIT_SAMPLE_MAX);
        assert!(rows.windows(2).all(|w| w[0] < w[1]));
        let sample = x.select(Axis(0), &rows);
        let c = fit_centroids(sample.view(), n, 6, 5, 9).unwrap();
        assert_eq!(c, fit(x.view(), 6, 5, 9).unwrap().centroids);
        assert_ne!(c, fit(x.view(), 6, 5, 10).unwrap().centroids);
        assert!(fit_centroids(sample.slice(s![1.., ..]), n, 6, 5, 9).is_err());
        assert_eq!(refine_steps(n, 6), REFINE_STEPS);
        // Small pools are fitted on every row: nothing to gather, nothing to refine.
        assert_eq!(fit_sample_rows(5_000, 6, 9), None);
        assert_eq!(refine_steps(5_000, 6), 0);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(fit(Array2::<f32>::zeros((0, 4)).view(), 1, 10, 0).is_err());
        let x = clustered(5, 4, 1, 0.0, 0);
        assert!(fit(x.view(), 0, 10, 0).is_err());
        assert!(fit(x.view(), 6, 10, 0).is_err());
        // identical rows, k = n: must not panic, every row assigned
        let km = fit(x.view(), 5, 10, 0).unwrap();
        assert_eq!(km.assignment.len(), 5);
        assert_eq!(km.sizes.iter().sum::<usize>(), 5);
        assert_eq!(default_k(1), 1);
        assert_eq!(default_k(20_000), 100);
        assert_eq!(default_k(10_000_000), 1000);
    }

    #[test]
    fn cache_encoding_round_trips_and_rejects_torn_bytes() {
        let x = clustered(120, 8, 3, 0.1, 5);
        let km = fit(x.view(), 3, 20, 1).unwrap();
        let b = km.to_bytes();
        assert_eq!(KMeans::from_bytes(&b), Some(km));
        assert_eq!(KMeans::from_bytes(&b[..b.len() - 1]), None);
        let mut bad = b.clone();
        // An assignment past the last cluster.
        let last = bad.len() - 4;
        bad[last..].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(KMeans::from_bytes(&bad), None);
    }
}
