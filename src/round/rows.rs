//! How the label-dependent stages reach the pool's embeddings: by id (a bounded gather) or by a
//! pass over every row with a small broadcast (a model, centroids), never by holding the whole
//! matrix. One process answers from its matrix; a cluster answers with map tasks over its shards
//! (`labelwise.distributed`). Every answer is defined row by row, so any sharding of the rows
//! gives the same bits as the matrix in one piece.

use std::collections::HashMap;

use ndarray::{Array2, ArrayBase, ArrayView1, ArrayView2, Axis, Data, Ix2};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::graph::{self, NeighborGraph};
use crate::index::kmeans::{self, KMeans};
use crate::index::topk::{exact_topk, topk_push};
use crate::model::{Classifier, FittedClassifier, ModelSpec};

/// Rows per prediction call: bounds the probabilities in flight to 32,768 × classes.
pub const PREDICT_CHUNK: usize = 32_768;

/// Receives one chunk of a prediction: the query rows it covers and their probabilities.
pub type PredictSink<'s> = dyn FnMut(&[usize], Array2<f32>) -> Result<()> + 's;

/// The pool's rows as the round reads them after the graph is built.
pub trait PoolRows: Sync {
    /// Number of rows.
    fn n_rows(&self) -> usize;

    /// Embedding dimension.
    fn n_cols(&self) -> usize;

    /// The rows `ids`, in that order (labeled items, a shortlist, a sample).
    fn gather(&self, ids: &[usize]) -> Result<Array2<f32>>;

    /// Fits the inductive `spec` on `train` (rows already gathered) with classes `y` and
    /// predicts the rows `query`, handing each chunk to `sink` in query order. A cluster
    /// broadcasts the training set and every task fits the same model: fitting is
    /// deterministic, so the tasks agree bit for bit.
    fn predict(
        &self,
        spec: &ModelSpec,
        train: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
        query: &[usize],
        sink: &mut PredictSink<'_>,
    ) -> Result<()>;

    /// Every row's nearest centroid (largest dot; ties: lowest id).
    fn nearest_centroids(&self, centroids: ArrayView2<f32>) -> Result<Vec<u32>>;

    /// Rarity's `centroid` component under the clustering `km` of these rows: one pass that
    /// sums each cluster's members in row order, then one that reads them back per row.
    fn centroid_distance(&self, km: &KMeans) -> Result<Vec<f32>>;

    /// Each query's `k` nearest rows by exact search (higher cosine, then lower row first),
    /// skipping row `self_ids[q]` for query `q` (`u32::MAX`: none); `queries.nrows() × k`
    /// entries. A cluster searches each shard and merges by the same order.
    fn exact_top_k(
        &self,
        queries: ArrayView2<f32>,
        self_ids: &[u32],
        k: usize,
    ) -> Result<(Vec<u32>, Vec<f32>)>;

    /// The whole matrix, when it is in this process; routes without a row-wise form (greedy
    /// core-set, TypiClust restarts, recomputing the duplicate pairs) need it.
    fn matrix(&self) -> Option<ArrayView2<'_, f32>>;
}

impl<S: Data<Elem = f32> + Sync> PoolRows for ArrayBase<S, Ix2> {
    fn n_rows(&self) -> usize {
        self.nrows()
    }

    fn n_cols(&self) -> usize {
        self.ncols()
    }

    fn gather(&self, ids: &[usize]) -> Result<Array2<f32>> {
        check_ids(ids, self.nrows())?;
        Ok(self.select(Axis(0), ids))
    }

    fn predict(
        &self,
        spec: &ModelSpec,
        train: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
        query: &[usize],
        sink: &mut PredictSink<'_>,
    ) -> Result<()> {
        check_ids(query, self.nrows())?;
        predict_rows(
            spec,
            train,
            y,
            n_classes,
            query,
            |chunk| Ok(self.select(Axis(0), chunk)),
            sink,
        )
    }

    fn nearest_centroids(&self, centroids: ArrayView2<f32>) -> Result<Vec<u32>> {
        Ok(kmeans::assign_best(self.view(), centroids).0)
    }

    fn centroid_distance(&self, km: &KMeans) -> Result<Vec<f32>> {
        let x = self.view();
        let sums = cluster_sums(x, &km.assignment, km.sizes.len(), None);
        Ok(centroid_distance_of(x, &km.assignment, km, &sums))
    }

    fn exact_top_k(
        &self,
        queries: ArrayView2<f32>,
        self_ids: &[u32],
        k: usize,
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        let mut nb = vec![0u32; queries.nrows() * k];
        let mut cs = vec![0f32; queries.nrows() * k];
        exact_topk(self.view(), queries, self_ids, k, &mut nb, &mut cs, None);
        Ok((nb, cs))
    }

    fn matrix(&self) -> Option<ArrayView2<'_, f32>> {
        Some(self.view())
    }
}

/// Refuses ids past the pool (an internal fault: ids come from the round itself).
fn check_ids(ids: &[usize], n: usize) -> Result<()> {
    match ids.iter().find(|&&i| i >= n) {
        Some(i) => Err(Error::Internal(format!(
            "row {i} asked of a pool of {n} rows"
        ))),
        None => Ok(()),
    }
}

/// [`PoolRows::predict`] over rows fetched chunk by chunk with `rows_of`: one fit
/// ([`fit_row_model`]), then [`predict_fitted`]. Shared by every implementation, so they fit and
/// predict alike.
pub fn predict_rows(
    spec: &ModelSpec,
    train: ArrayView2<f32>,
    y: &[u32],
    n_classes: usize,
    query: &[usize],
    rows_of: impl FnMut(&[usize]) -> Result<Array2<f32>>,
    sink: &mut PredictSink<'_>,
) -> Result<()> {
    let fitted = fit_row_model(spec, train, y, n_classes)?;
    predict_fitted(fitted.as_ref(), query, rows_of, sink)
}

/// `spec` fitted on the training rows for a row-by-row prediction; a transductive model, which
/// predicts over the graph instead, is refused.
pub fn fit_row_model(
    spec: &ModelSpec,
    train: ArrayView2<f32>,
    y: &[u32],
    n_classes: usize,
) -> Result<Box<dyn FittedClassifier>> {
    if spec.is_transductive() {
        return Err(Error::Internal(format!(
            "{} is transductive: it predicts over the graph, not row by row",
            spec.name()
        )));
    }
    spec.fit(train, y, n_classes)
}

/// A fitted model's probabilities for the rows `query`, fetched and handed to `sink`
/// [`PREDICT_CHUNK`] rows at a time.
pub fn predict_fitted(
    fitted: &dyn FittedClassifier,
    query: &[usize],
    mut rows_of: impl FnMut(&[usize]) -> Result<Array2<f32>>,
    sink: &mut PredictSink<'_>,
) -> Result<()> {
    for chunk in query.chunks(PREDICT_CHUNK) {
        let x = rows_of(chunk)?;
        sink(chunk, fitted.predict_proba(x.view())?)?;
    }
    Ok(())
}

/// Hands the probabilities `whole` of all the rows `query` to `sink` in [`PREDICT_CHUNK`]-row
/// chunks, in query order: how an answer computed in one piece (label spreading) reaches a
/// caller that consumes chunks.
pub fn sink_in_chunks(
    query: &[usize],
    whole: &Array2<f32>,
    sink: &mut PredictSink<'_>,
) -> Result<()> {
    for (ci, chunk) in query.chunks(PREDICT_CHUNK).enumerate() {
        let s = ci * PREDICT_CHUNK;
        sink(
            chunk,
            whole.slice(ndarray::s![s..s + chunk.len(), ..]).to_owned(),
        )?;
    }
    Ok(())
}

/// Per-cluster sums of the rows `x` (f32, added in row order) into `start`, or into zeros:
/// a cluster adds its shards in row order, carrying the sums, and gets the same bits.
pub fn cluster_sums(
    x: ArrayView2<f32>,
    assignment: &[u32],
    k: usize,
    start: Option<Array2<f32>>,
) -> Array2<f32> {
    let mut sums = start.unwrap_or_else(|| Array2::<f32>::zeros((k, x.ncols())));
    for (row, &c) in x.outer_iter().zip(assignment) {
        let mut r = sums.row_mut(c as usize);
        r += &row;
    }
    sums
}

/// The `centroid` component of the rows `x` (whose clusters are `km.assignment`, aligned) from
/// the whole pool's cluster `sums`. Leave-one-out: an item's distance to the mean of the *other*
/// members of its cluster, so a far outlier that k-means gave a cluster of its own is not scored
/// 0. Members of singleton clusters use the nearest other centroid instead.
pub fn centroid_distance_of(
    x: ArrayView2<f32>,
    assignment: &[u32],
    km: &KMeans,
    sums: &Array2<f32>,
) -> Vec<f32> {
    let k = km.sizes.len();
    (0..x.nrows())
        .into_par_iter()
        .map(|i| {
            let c = assignment[i] as usize;
            let x = x.row(i);
            if km.sizes[c] >= 2 {
                let v = &sums.row(c) - &x;
                let nrm = v.dot(&v).sqrt();
                if nrm > 0.0 {
                    return 1.0 - x.dot(&v) / nrm;
                }
                return 0.0;
            }
            let best = (0..k)
                .filter(|&o| o != c && km.sizes[o] > 0)
                .map(|o| x.dot(&km.centroids.row(o)))
                .fold(f32::NEG_INFINITY, f32::max);
            if best.is_finite() {
                1.0 - best
            } else {
                0.0
            }
        })
        .collect()
}

/// [`kmeans::fit`] through [`PoolRows`]: the seeded fit sample gathered, the centroids fitted
/// on it, every row assigned. Bit-identical to `kmeans::fit` on the matrix.
pub fn fit_kmeans(rows: &dyn PoolRows, k: usize, max_iter: usize, seed: u64) -> Result<KMeans> {
    if let Some(x) = rows.matrix() {
        return kmeans::fit(x, k, max_iter, seed);
    }
    let n = rows.n_rows();
    let sample = match kmeans::fit_sample_rows(n, k, seed) {
        Some(ids) => rows.gather(&ids)?,
        None => rows.gather(&(0..n).collect::<Vec<_>>())?,
    };
    let centroids = kmeans::fit_centroids(sample.view(), n, k, max_iter, seed)?;
    drop(sample);
    let assignment = rows.nearest_centroids(centroids.view())?;
    Ok(KMeans::from_assignment(centroids, assignment))
}

/// Some rows of the pool, read by pool index: the matrix itself when it is in this process,
/// else a gathered copy of just those rows.
pub struct RowLookup<'r> {
    whole: Option<ArrayView2<'r, f32>>,
    part: Array2<f32>,
    at: HashMap<usize, usize>,
}

impl<'r> RowLookup<'r> {
    /// Every row of a matrix in this process.
    pub fn whole(x: ArrayView2<'r, f32>) -> RowLookup<'r> {
        RowLookup {
            whole: Some(x),
            part: Array2::zeros((0, 0)),
            at: HashMap::new(),
        }
    }

    /// Makes the rows `ids` (repeats and any order allowed) readable.
    pub fn new(rows: &'r dyn PoolRows, mut ids: Vec<usize>) -> Result<RowLookup<'r>> {
        if let Some(whole) = rows.matrix() {
            return Ok(RowLookup::whole(whole));
        }
        ids.sort_unstable();
        ids.dedup();
        let part = rows.gather(&ids)?;
        let at = ids.iter().enumerate().map(|(k, &i)| (i, k)).collect();
        Ok(RowLookup {
            whole: None,
            part,
            at,
        })
    }

    /// The rows of pool items `ids` (each among the ids given), in that order.
    pub fn select(&self, ids: &[u32]) -> Array2<f32> {
        match &self.whole {
            Some(w) => {
                let idx: Vec<usize> = ids.iter().map(|&i| i as usize).collect();
                w.select(Axis(0), &idx)
            }
            None => {
                let idx: Vec<usize> = ids.iter().map(|&i| self.at[&(i as usize)]).collect();
                self.part.select(Axis(0), &idx)
            }
        }
    }

    /// The row of pool item `i`, which must be among the ids given.
    pub fn row(&self, i: usize) -> ArrayView1<'_, f32> {
        match &self.whole {
            Some(w) => w.row(i),
            None => self.part.row(self.at[&i]),
        }
    }
}

/// The pool in row shards, each answered on its own and the answers put together in row order:
/// what a cluster's map tasks do, in one process. It holds no whole matrix, so a round run on
/// it shows that no stage needs one, and its answers equal the matrix's bit for bit.
pub struct ShardedRows {
    shards: Vec<Array2<f32>>,
    /// First row of each shard, ascending, starting at 0.
    starts: Vec<usize>,
    n: usize,
    d: usize,
}

impl ShardedRows {
    /// Cuts `x` into shards of `shard_rows` rows (the last may be shorter).
    pub fn split(x: Array2<f32>, shard_rows: usize) -> ShardedRows {
        let (n, d) = x.dim();
        let step = shard_rows.max(1);
        let starts: Vec<usize> = (0..n).step_by(step).collect();
        let shards = starts
            .iter()
            .map(|&s| x.slice(ndarray::s![s..(s + step).min(n), ..]).to_owned())
            .collect();
        ShardedRows {
            shards,
            starts,
            n,
            d,
        }
    }

    /// (shard, row within it) of pool row `i`.
    fn locate(&self, i: usize) -> (usize, usize) {
        let s = self.starts.partition_point(|&st| st <= i) - 1;
        (s, i - self.starts[s])
    }

    /// The ids of `ids` that fall in each shard, as (shard, positions in `ids`, local rows).
    fn by_shard(&self, ids: &[usize]) -> Vec<(usize, Vec<usize>, Vec<usize>)> {
        let mut out: Vec<(usize, Vec<usize>, Vec<usize>)> = (0..self.shards.len())
            .map(|s| (s, Vec::new(), Vec::new()))
            .collect();
        for (k, &i) in ids.iter().enumerate() {
            let (s, r) = self.locate(i);
            out[s].1.push(k);
            out[s].2.push(r);
        }
        out.retain(|(_, k, _)| !k.is_empty());
        out
    }
}

impl PoolRows for ShardedRows {
    fn n_rows(&self) -> usize {
        self.n
    }

    fn n_cols(&self) -> usize {
        self.d
    }

    fn gather(&self, ids: &[usize]) -> Result<Array2<f32>> {
        check_ids(ids, self.n)?;
        let mut out = Array2::<f32>::zeros((ids.len(), self.d));
        for (s, at, local) in self.by_shard(ids) {
            for (&k, &r) in at.iter().zip(&local) {
                out.row_mut(k).assign(&self.shards[s].row(r));
            }
        }
        Ok(out)
    }

    fn predict(
        &self,
        spec: &ModelSpec,
        train: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
        query: &[usize],
        sink: &mut PredictSink<'_>,
    ) -> Result<()> {
        check_ids(query, self.n)?;
        // Every shard fits its own copy of the model, as every task of a cluster does.
        let mut whole = Array2::<f32>::zeros((query.len(), n_classes));
        for (s, at, local) in self.by_shard(query) {
            let shard = &self.shards[s];
            let mut done = 0;
            let mut put = |chunk: &[usize], p: Array2<f32>| -> Result<()> {
                for (j, row) in p.outer_iter().enumerate() {
                    whole.row_mut(at[done + j]).assign(&row);
                }
                done += chunk.len();
                Ok(())
            };
            let rows_of = |c: &[usize]| Ok(shard.select(Axis(0), c));
            predict_rows(spec, train, y, n_classes, &local, rows_of, &mut put)?;
        }
        sink_in_chunks(query, &whole, sink)
    }

    fn nearest_centroids(&self, centroids: ArrayView2<f32>) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(self.n);
        for shard in &self.shards {
            out.extend(kmeans::assign_best(shard.view(), centroids).0);
        }
        Ok(out)
    }

    fn centroid_distance(&self, km: &KMeans) -> Result<Vec<f32>> {
        let k = km.sizes.len();
        let part =
            |s: usize| &km.assignment[self.starts[s]..self.starts[s] + self.shards[s].nrows()];
        // The sums pass from shard to shard in row order, so they are the whole pool's bits.
        let mut sums: Option<Array2<f32>> = None;
        for (s, shard) in self.shards.iter().enumerate() {
            sums = Some(cluster_sums(shard.view(), part(s), k, sums));
        }
        let sums = sums.unwrap_or_else(|| Array2::zeros((k, self.d)));
        let mut out = Vec::with_capacity(self.n);
        for (s, shard) in self.shards.iter().enumerate() {
            out.extend(centroid_distance_of(shard.view(), part(s), km, &sums));
        }
        Ok(out)
    }

    fn exact_top_k(
        &self,
        queries: ArrayView2<f32>,
        self_ids: &[u32],
        k: usize,
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        let m = queries.nrows();
        let mut nb = vec![u32::MAX; m * k];
        let mut cs = vec![f32::NEG_INFINITY; m * k];
        for (s, shard) in self.shards.iter().enumerate() {
            let (start, rows) = (self.starts[s], shard.nrows());
            let local: Vec<u32> = self_ids
                .iter()
                .map(|&i| match (i as usize).checked_sub(start) {
                    Some(r) if r < rows && i != u32::MAX => r as u32,
                    _ => u32::MAX,
                })
                .collect();
            let (snb, scs) = shard.exact_top_k(queries, &local, k)?;
            merge_top_k(&mut nb, &mut cs, &snb, &scs, k, start);
        }
        Ok((nb, cs))
    }

    fn matrix(&self) -> Option<ArrayView2<'_, f32>> {
        None
    }
}

/// Adds one shard's top-k lists (rows local to the shard, first row `start`) to the running
/// lists, in the exact search's order.
pub fn merge_top_k(
    nb: &mut [u32],
    cs: &mut [f32],
    snb: &[u32],
    scs: &[f32],
    k: usize,
    start: usize,
) {
    if k == 0 {
        return;
    }
    for ((ids, scores), (sid, ssc)) in nb
        .chunks_mut(k)
        .zip(cs.chunks_mut(k))
        .zip(snb.chunks(k).zip(scs.chunks(k)))
    {
        for (&j, &v) in sid.iter().zip(ssc) {
            if j != u32::MAX {
                topk_push(ids, scores, j + start as u32, v);
            }
        }
    }
}

/// Recall@10 of `graph` against exact search over `rows`, on [`graph::recall_sample`]'s
/// items: what [`crate::index::recall_at_10`] measures, with the rows read through
/// [`PoolRows`].
pub fn recall_at_10(
    rows: &dyn PoolRows,
    graph: &NeighborGraph,
    sample: usize,
    seed: u64,
) -> Result<f64> {
    let n = rows.n_rows();
    let kk = graph.k.min(10).min(n.saturating_sub(1));
    if kk == 0 || sample == 0 || graph.len() != n {
        return Ok(1.0);
    }
    let idx = graph::recall_sample(n, sample, seed);
    let qv = rows.gather(&idx)?;
    let self_ids: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
    let (nb, _) = rows.exact_top_k(qv.view(), &self_ids, kk)?;
    Ok(graph::recall_hits(graph, &idx, &nb, kk))
}
