//! Distance-weighted kNN vote among the labeled items.

use super::positive;
use super::{
    check_dim, check_training, predict_blocked, smooth_row, ClassWeight, Classifier,
    FittedClassifier,
};
use crate::error::Result;
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Labeled items from which the inverted-file search is used for large predictions.
const IVF_MIN_LABELED: usize = 4096;
/// Rows × labeled items from which the inverted-file search is used.
const IVF_MIN_WORK: f64 = 2e9;
/// Lists each row searches in the inverted file.
const IVF_PROBES: usize = 8;
/// Rows per parallel task of the inverted-file search: large enough that each list's GEMM has
/// hundreds of rows, small enough to spread over the cores.
const IVF_CHUNK_ROWS: usize = 8192;

/// How the kNN vote finds each row's most similar labeled items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KnnSearch {
    /// Inverted file for large predictions (≥ 4,096 labels and rows × labels ≥ 2·10⁹), exact
    /// otherwise. Callers that calibrate on small cross-validated predictions and then predict
    /// many rows should resolve it first ([`KnnVote::for_workload`]) so both use one search.
    #[default]
    Auto,
    /// Every labeled item is compared with every row (a GEMM).
    Exact,
    /// Each row is compared only with the labeled items in its nearest lists: approximate, so
    /// the items it misses change the vote on a few rows (clinc150 with half its labels: 1.7%
    /// of argmax differ from the exact vote); calibrated with the same search it is certified
    /// like any other model.
    InvertedFile,
}

/// kNN vote: each row's `k` most similar labeled items vote for their class with weight
/// `exp((cos − cos_best) / tau)` times the class weight.
///
/// Similarities come from an exact GEMM against the labeled subset only (10k labels × d), not
/// against all items, so it costs `n × labeled × d` and needs no index. The vote is mixed with
/// `smoothing` of the uniform distribution over seen classes, so probabilities are never exactly
/// 0 or 1. Why kNN: labels are unions of clusters in embedding space, which a linear model cannot
/// separate but a local vote can (rust_stack.md §5: accuracy .95 vs .75).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KnnVote {
    /// Neighbours that vote.
    pub k: usize,
    /// Temperature of the similarity weights; smaller trusts the closest neighbour more.
    pub tau: f32,
    /// Share of probability mass spread uniformly over seen classes.
    pub smoothing: f32,
    /// Per-class vote weights.
    pub class_weight: ClassWeight,
    /// Exact or inverted-file search for the nearest labeled items.
    pub search: KnnSearch,
}

impl Default for KnnVote {
    fn default() -> Self {
        KnnVote {
            k: 10,
            tau: 0.05,
            smoothing: 0.01,
            class_weight: ClassWeight::Balanced,
            search: KnnSearch::Auto,
        }
    }
}

/// A fitted kNN vote: a copy of the labeled rows and their classes.
pub struct FittedKnn {
    params: KnnVote,
    x: Array2<f32>,
    y: Vec<u32>,
    class_w: Vec<f32>,
    support: Vec<bool>,
    n_classes: usize,
    /// Built on the first inverted-file prediction and kept: a pool is predicted chunk by
    /// chunk, and every chunk searches the same lists (rebuilding them per chunk was ~10% of a
    /// warm 1M-row `plan`).
    inverted_file: std::sync::OnceLock<InvertedFile>,
}

/// The labeled items clustered into lists, for [`FittedKnn::predict_proba_inverted_file`].
struct InvertedFile {
    centroids: Array2<f32>,
    /// List `l`'s labeled indices are `order[offsets[l]..offsets[l + 1]]` (kmeans::bucket_by).
    offsets: Vec<usize>,
    order: Vec<u32>,
    /// Members of each list as one contiguous matrix, transposed once for the GEMMs.
    members: Vec<Array2<f32>>,
}

impl InvertedFile {
    /// Labeled indices in list `l`, in increasing order.
    fn list(&self, l: usize) -> &[u32] {
        &self.order[self.offsets[l]..self.offsets[l + 1]]
    }
}

impl KnnVote {
    /// This vote with `Auto` resolved for a run that predicts `rows` rows from `labeled` labels:
    /// cross-validation then scores held-out items with the search the final prediction uses,
    /// so the precision it certifies is that of the predictions actually made.
    pub fn for_workload(&self, rows: usize, labeled: usize) -> KnnVote {
        let search = match self.search {
            KnnSearch::Auto if uses_inverted_file(rows, labeled) => KnnSearch::InvertedFile,
            KnnSearch::Auto => KnnSearch::Exact,
            s => s,
        };
        KnnVote {
            search,
            ..self.clone()
        }
    }

    /// Rough multiply-adds to score one row against `labeled` items in `dim` dimensions, for
    /// preferring the cheaper of equally good models: the exact search compares every labeled
    /// item; the inverted file compares the √labeled list centroids and the items of
    /// `IVF_PROBES` lists (`Auto` as it resolves for `rows` rows).
    pub fn predict_cost(&self, rows: usize, labeled: usize, dim: usize) -> f64 {
        let labeled = labeled.max(1);
        let (lab, d) = (labeled as f64, dim as f64);
        match self.for_workload(rows, labeled).search {
            KnnSearch::InvertedFile => {
                let lists = ivf_lists(labeled) as f64;
                (lists + IVF_PROBES as f64 * lab / lists) * d
            }
            _ => lab * d,
        }
    }

    /// Fits and returns the concrete type (for `FittedKnn::predict_proba_excluding`).
    pub fn fit_knn(&self, x: ArrayView2<f32>, y: &[u32], n_classes: usize) -> Result<FittedKnn> {
        check_training(x, y, n_classes)?;
        if self.k == 0 || !positive(self.tau as f64) || !(0.0..1.0).contains(&self.smoothing) {
            return Err(crate::error::Error::Usage(format!(
                "knn needs k ≥ 1, tau > 0 and 0 ≤ smoothing < 1 (got k={}, tau={}, smoothing={})",
                self.k, self.tau, self.smoothing
            )));
        }
        let class_w = self.class_weight.weights(y, n_classes);
        let support = class_w.iter().map(|&w| w > 0.0).collect();
        Ok(FittedKnn {
            params: self.clone(),
            x: x.as_standard_layout().into_owned(),
            y: y.to_vec(),
            class_w,
            support,
            n_classes,
            inverted_file: std::sync::OnceLock::new(),
        })
    }
}

impl Classifier for KnnVote {
    fn name(&self) -> String {
        format!("knn(k={})", self.k)
    }

    fn fit(
        &self,
        x: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
    ) -> Result<Box<dyn FittedClassifier>> {
        Ok(Box::new(self.fit_knn(x, y, n_classes)?))
    }
}

impl FittedKnn {
    /// The inverted file over the labeled items (seeded, so every build is the same).
    fn inverted_file(&self) -> Result<&InvertedFile> {
        if let Some(built) = self.inverted_file.get() {
            return Ok(built);
        }
        let km = crate::index::kmeans::fit(self.x.view(), ivf_lists(self.y.len()), 10, 0)?;
        let (offsets, order) =
            crate::index::kmeans::bucket_by(&km.assignment, km.centroids.nrows());
        let members = offsets
            .windows(2)
            .map(|w| {
                let idx: Vec<usize> = order[w[0]..w[1]].iter().map(|&j| j as usize).collect();
                self.x
                    .select(Axis(0), &idx)
                    .reversed_axes()
                    .as_standard_layout()
                    .into_owned()
            })
            .collect();
        let built = InvertedFile {
            centroids: km.centroids,
            offsets,
            order,
            members,
        };
        Ok(self.inverted_file.get_or_init(|| built))
    }

    /// Like `predict_proba`, but row `i` never counts training item `exclude[i]`: a labeled item
    /// scored against a model that contains it must not vote for itself.
    pub fn predict_proba_excluding(
        &self,
        rows: ArrayView2<f32>,
        exclude: &[Option<u32>],
    ) -> Result<Array2<f32>> {
        check_dim(rows, self.x.ncols())?;
        if exclude.len() != rows.nrows() {
            return Err(crate::error::Error::Internal(format!(
                "{} rows but {} exclusions",
                rows.nrows(),
                exclude.len()
            )));
        }
        self.predict_inner(rows, Some(exclude))
    }

    fn predict_inner(
        &self,
        rows: ArrayView2<f32>,
        exclude: Option<&[Option<u32>]>,
    ) -> Result<Array2<f32>> {
        let labeled = self.y.len();
        let inverted = match self.params.search {
            KnnSearch::Auto => uses_inverted_file(rows.nrows(), labeled),
            KnnSearch::Exact => false,
            // Fewer labels than two lists per probe: the lists would hold (almost) everything.
            KnnSearch::InvertedFile => labeled >= 2 * IVF_PROBES * IVF_PROBES,
        };
        if exclude.is_none() && inverted {
            return self.predict_ivf(rows);
        }
        let k = self.params.k.min(labeled);
        let xt = self.x.t();
        predict_blocked(rows, self.n_classes, |start, r, mut out| {
            let scores = r.dot(&xt);
            let mut top: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
            let mut votes = vec![0.0f32; self.n_classes];
            for (bi, srow) in scores.rows().into_iter().enumerate() {
                let skip = exclude.and_then(|e| e[start + bi]);
                top.clear();
                for (j, &s) in srow.iter().enumerate() {
                    if Some(j as u32) != skip {
                        push_top(&mut top, k, s, j as u32);
                    }
                }
                let mut o = out.row_mut(bi);
                let o = o.as_slice_mut().expect("output rows are contiguous");
                self.vote(&top, &mut votes, o);
            }
            Ok(())
        })
    }

    /// Votes of the `top` (cosine, labeled index) neighbours into probabilities `o`.
    fn vote(&self, top: &[(f32, u32)], votes: &mut [f32], o: &mut [f32]) {
        votes.iter_mut().for_each(|v| *v = 0.0);
        let best = top.first().map(|t| t.0).unwrap_or(0.0);
        let mut total = 0.0f32;
        for &(s, j) in top {
            let c = self.y[j as usize] as usize;
            let w = ((s - best) / self.params.tau).exp() * self.class_w[c];
            votes[c] += w;
            total += w;
        }
        if total > 0.0 {
            for (p, v) in o.iter_mut().zip(votes.iter()) {
                *p = v / total;
            }
        }
        smooth_row(o, &self.support, self.params.smoothing.max(1e-6));
        if total <= 0.0 {
            // No neighbour (e.g. the only labeled item was excluded): uniform.
            let m = self.support.iter().filter(|&&s| s).count().max(1);
            for (p, &s) in o.iter_mut().zip(&self.support) {
                *p = if s { 1.0 / m as f32 } else { 0.0 };
            }
        }
    }

    /// Large labeled sets and many rows: an inverted file over the labeled items. The labeled
    /// rows are clustered into ≈√labeled lists; each row is scored only against the members of
    /// its `IVF_PROBES` nearest lists. Rows are taken in chunks; inside a chunk every list is
    /// scored once, by one GEMM against exactly the chunk's rows that probe it, so no row is
    /// compared with a list it did not probe (grouping rows by their nearest list instead made
    /// each group probe a wide union of lists). Work: rows × probes × (labeled / lists) × d,
    /// about lists / probes ≈ 12× less than the exact GEMM at 10,000 labels (BENCHMARKS.md).
    /// The inverted-file prediction whatever `search` says (for benchmarks against the exact
    /// vote, `examples/knn_bench.rs`).
    pub fn predict_proba_inverted_file(&self, rows: ArrayView2<f32>) -> Result<Array2<f32>> {
        check_dim(rows, self.x.ncols())?;
        if self.y.is_empty() {
            return self.predict_inner(rows, None);
        }
        self.predict_ivf(rows)
    }

    fn predict_ivf(&self, rows: ArrayView2<f32>) -> Result<Array2<f32>> {
        let labeled = self.y.len();
        let ivf = self.inverted_file()?;
        let (centroids, members) = (&ivf.centroids, &ivf.members);
        let top = crate::index::kmeans::assign_top(rows, centroids.view(), IVF_PROBES)?;
        let p = top.p;
        let k = self.params.k.min(labeled);
        let mut out = Array2::<f32>::zeros((rows.nrows(), self.n_classes));
        out.axis_chunks_iter_mut(Axis(0), IVF_CHUNK_ROWS)
            .into_par_iter()
            .enumerate()
            .for_each(|(chunk, mut block)| {
                let start = chunk * IVF_CHUNK_ROWS;
                let len = block.nrows();
                let mut probing: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
                for r in 0..len {
                    for &l in &top.ids[(start + r) * p..(start + r + 1) * p] {
                        probing[l as usize].push(r);
                    }
                }
                let mut tops: Vec<Vec<(f32, u32)>> = vec![Vec::with_capacity(k + 1); len];
                let mut global: Vec<usize> = Vec::new();
                for (l, local) in probing.iter().enumerate() {
                    let list = ivf.list(l);
                    if local.is_empty() || list.is_empty() {
                        continue;
                    }
                    global.clear();
                    global.extend(local.iter().map(|&r| start + r));
                    let scores = rows.select(Axis(0), &global).dot(&members[l]);
                    for (srow, &r) in scores.rows().into_iter().zip(local) {
                        let t = &mut tops[r];
                        for (&s, &j) in srow.iter().zip(list) {
                            push_top(t, k, s, j);
                        }
                    }
                }
                let mut votes = vec![0.0f32; self.n_classes];
                for (r, t) in tops.iter().enumerate() {
                    let mut o = block.row_mut(r);
                    let o = o.as_slice_mut().expect("output rows are contiguous");
                    self.vote(t, &mut votes, o);
                }
            });
        Ok(out)
    }
}

/// Lists of the inverted file over `labeled` items: ≈√labeled lists of ≈√labeled items each
/// (the prediction and its cost estimate must agree on it).
fn ivf_lists(labeled: usize) -> usize {
    ((labeled as f64).sqrt().round() as usize).max(1)
}

/// The `Auto` rule: the inverted file pays only for many labels and much work.
fn uses_inverted_file(rows: usize, labeled: usize) -> bool {
    labeled >= IVF_MIN_LABELED && (rows as f64) * (labeled as f64) >= IVF_MIN_WORK
}

/// Keeps `top` the `k` best (score, index) pairs, descending; equal scores keep the lower index
/// first, so the result does not depend on the order candidates arrive in.
fn push_top(top: &mut Vec<(f32, u32)>, k: usize, s: f32, j: u32) {
    let s = if s.is_finite() { s } else { -1.0 };
    if top.len() == k {
        let last = top[k - 1];
        if s < last.0 || (s == last.0 && j > last.1) {
            return;
        }
    }
    let pos = top
        .iter()
        .position(|&(t, i)| s > t || (s == t && j < i))
        .unwrap_or(top.len());
    top.insert(pos, (s, j));
    top.truncate(k);
}

impl FittedClassifier for FittedKnn {
    fn predict_proba(&self, rows: ArrayView2<f32>) -> Result<Array2<f32>> {
        check_dim(rows, self.x.ncols())?;
        self.predict_inner(rows, None)
    }

    fn n_classes(&self) -> usize {
        self.n_classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::clusters;

    #[test]
    fn labeled_item_does_not_vote_for_itself() {
        let (x, mut y) = clusters(3, 10, 16, 0.3, 7);
        // Item 0 carries a wrong label; without itself its neighbours outvote it.
        y[0] = 1;
        let m = KnnVote {
            k: 3,
            ..KnnVote::default()
        }
        .fit_knn(x.view(), &y, 3)
        .unwrap();
        let with_self = m.predict_proba(x.slice(ndarray::s![..1, ..])).unwrap();
        let without = m
            .predict_proba_excluding(x.slice(ndarray::s![..1, ..]), &[Some(0)])
            .unwrap();
        assert!(with_self[[0, 1]] > without[[0, 1]]);
        assert!(without[[0, 0]] > 0.9);
    }

    #[test]
    fn inverted_file_agrees_with_the_exact_vote_on_clustered_data() {
        let (x, y) = clusters(8, 700, 32, 0.4, 11);
        let (train, test): (Vec<usize>, Vec<usize>) = (0..y.len()).partition(|i| i % 4 != 0);
        let yt: Vec<u32> = train.iter().map(|&i| y[i]).collect();
        let m = KnnVote::default()
            .fit_knn(x.select(Axis(0), &train).view(), &yt, 8)
            .unwrap();
        let rows = x.select(Axis(0), &test);
        let exact = m
            .predict_proba_excluding(rows.view(), &vec![None; test.len()])
            .unwrap();
        let ivf = m.predict_proba_inverted_file(rows.view()).unwrap();
        let argmax = |r: ndarray::ArrayView1<f32>| {
            (0..r.len()).fold(0, |b, j| if r[j] > r[b] { j } else { b })
        };
        let agree = (0..test.len())
            .filter(|&i| argmax(exact.row(i)) == argmax(ivf.row(i)))
            .count();
        assert!(
            agree as f64 >= 0.95 * test.len() as f64,
            "{agree}/{}",
            test.len()
        );
        for r in ivf.rows() {
            assert!((r.sum() - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn inverted_file_predicts_a_pool_chunk_by_chunk_as_in_one_go() {
        // The lists are built on the first prediction and kept: later chunks must search the
        // same lists, so the chunked prediction equals the whole one, bit for bit.
        let (x, y) = clusters(6, 300, 16, 0.4, 5);
        let (train, test): (Vec<usize>, Vec<usize>) = (0..y.len()).partition(|i| i % 3 != 0);
        let yt: Vec<u32> = train.iter().map(|&i| y[i]).collect();
        let fit = || {
            KnnVote::default()
                .fit_knn(x.select(Axis(0), &train).view(), &yt, 6)
                .unwrap()
        };
        let rows = x.select(Axis(0), &test);
        let whole = fit().predict_proba_inverted_file(rows.view()).unwrap();
        let m = fit();
        for start in (0..test.len()).step_by(97) {
            let end = (start + 97).min(test.len());
            let part = m
                .predict_proba_inverted_file(rows.slice(ndarray::s![start..end, ..]))
                .unwrap();
            assert_eq!(part, whole.slice(ndarray::s![start..end, ..]));
        }
        assert!(m.inverted_file.get().is_some());
    }

    #[test]
    fn workload_resolves_auto_once_for_calibration_and_prediction() {
        let v = KnnVote::default();
        assert_eq!(
            v.for_workload(1_000_000, 10_000).search,
            KnnSearch::InvertedFile
        );
        assert_eq!(v.for_workload(20_000, 2_000).search, KnnSearch::Exact);
        let fixed = KnnVote {
            search: KnnSearch::Exact,
            ..KnnVote::default()
        };
        assert_eq!(
            fixed.for_workload(1_000_000, 10_000).search,
            KnnSearch::Exact
        );
    }
}
