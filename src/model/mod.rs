//! Cheap classifiers over embeddings, refit every labeling round.
//!
//! The split follows linfa's `Fit`/`Predict`: a [`Classifier`] holds hyper-parameters and
//! fits on the labeled rows; the [`FittedClassifier`] it returns predicts class probabilities
//! for any rows. Every model returns an `n × n_classes` matrix over *all* classes (classes absent
//! from training get probability 0, or the smoothing floor), so models can be averaged and
//! calibrated without knowing which classes happened to be labeled.
//!
//! Members:
//! - [`KnnVote`]: distance-weighted vote of the k most similar labeled items (exact GEMM
//!   against the labeled subset only);
//! - [`Logistic`]: multinomial logistic regression (our L-BFGS, or linfa-logistic's);
//! - [`NearestCentroid`]: softmax over cosine to the class centroids;
//! - [`GaussianNb`]: Gaussian naive Bayes evaluated in log space;
//! - [`LabelSpreading`]: labels spread over the neighbour graph (transductive: it needs the
//!   graph over all items, so only auto-labeling runs it; see [`ModelSpec::is_transductive`]);
//! - [`Ensemble`]: the average of members, so its confidence drops when members disagree;
//! - [`ModelSpec::Select`]: one of several candidates, chosen on the labels (auto-labeling
//!   chooses the one that certifies the most, at a split error rate; see the auto-label stage).
//!
//! All are deterministic: per-row work runs in parallel but every output cell is computed by one
//! task in a fixed order, so rayon's thread count never changes a bit of the result.

mod centroid;
pub mod cv;
mod gnb;
mod knn;
mod logistic;
pub mod softmax;
mod spread;

pub use centroid::NearestCentroid;
pub use gnb::GaussianNb;
pub use knn::{KnnSearch, KnnVote};
pub use logistic::{Logistic, LogisticSolver};
pub use spread::{
    LabelSpreading, SpreadGraph, MAX_CELLS as SPREAD_MAX_CELLS, MAX_WORK as SPREAD_MAX_WORK,
};

use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a model; fitting them on labeled rows gives a [`FittedClassifier`].
///
/// Object-safe so that an ensemble, cross-validation and the CLI can hold any model as
/// `Box<dyn Classifier>`.
pub trait Classifier: Send + Sync {
    /// Short name for reports (e.g. `knn`, `logistic`).
    fn name(&self) -> String;

    /// Fits on `x` (rows L2-normalized) with class indices `y` (`y[i] < n_classes`).
    fn fit(
        &self,
        x: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
    ) -> Result<Box<dyn FittedClassifier>>;
}

/// A trained model: maps rows to class probabilities.
pub trait FittedClassifier: Send + Sync {
    /// `rows.nrows() × n_classes` probabilities; each row sums to 1 (up to rounding).
    fn predict_proba(&self, rows: ArrayView2<f32>) -> Result<Array2<f32>>;

    /// Number of classes of the probability matrix.
    fn n_classes(&self) -> usize;
}

/// How training items are weighted per class, so minority classes are not drowned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    /// Every item counts once.
    Uniform,
    /// scikit-learn's `balanced`: class c weighs `n / (classes_present · n_c)`.
    #[default]
    Balanced,
}

impl ClassWeight {
    /// Per-class weights for the classes present in `y` (0 for absent classes).
    pub fn weights(self, y: &[u32], n_classes: usize) -> Vec<f32> {
        let counts = class_counts(y, n_classes);
        let present = counts.iter().filter(|&&c| c > 0).count().max(1);
        counts
            .iter()
            .map(|&c| match (self, c) {
                (_, 0) => 0.0,
                (ClassWeight::Uniform, _) => 1.0,
                (ClassWeight::Balanced, c) => y.len() as f32 / (present as f32 * c as f32),
            })
            .collect()
    }
}

/// Number of items per class.
pub fn class_counts(y: &[u32], n_classes: usize) -> Vec<usize> {
    let mut counts = vec![0usize; n_classes];
    for &c in y {
        if let Some(slot) = counts.get_mut(c as usize) {
            *slot += 1;
        }
    }
    counts
}

/// Validates a training set: shapes agree, classes are in range, values are finite.
pub(crate) fn check_training(x: ArrayView2<f32>, y: &[u32], n_classes: usize) -> Result<()> {
    if x.nrows() != y.len() {
        return Err(Error::Internal(format!(
            "{} training rows but {} labels",
            x.nrows(),
            y.len()
        )));
    }
    if y.is_empty() {
        return Err(Error::Usage("no labeled items to train on".into()));
    }
    if n_classes == 0 {
        return Err(Error::Usage("n_classes must be at least 1".into()));
    }
    if let Some(&bad) = y.iter().find(|&&c| c as usize >= n_classes) {
        return Err(Error::Internal(format!(
            "label {bad} out of range for {n_classes} classes"
        )));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(Error::Usage(
            "embeddings hold NaN or infinite values".into(),
        ));
    }
    Ok(())
}

/// True for finite values > 0 (NaN-safe parameter check).
pub(crate) fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// Checks prediction rows have the dimension the model was trained on.
pub(crate) fn check_dim(rows: ArrayView2<f32>, d: usize) -> Result<()> {
    if rows.ncols() != d {
        return Err(Error::Internal(format!(
            "rows have {} dimensions, the model was trained on {d}",
            rows.ncols()
        )));
    }
    Ok(())
}

/// Rows per parallel task in blocked predictions: big enough for an efficient GEMM, small
/// enough that the score block stays in a few MB.
pub(crate) const BLOCK_ROWS: usize = 256;

/// Runs `f(first_row, block_rows, out_block)` over row blocks in parallel; each output row
/// is written by exactly one task, so the result does not depend on the thread count.
pub(crate) fn predict_blocked<F>(
    rows: ArrayView2<f32>,
    n_classes: usize,
    f: F,
) -> Result<Array2<f32>>
where
    F: Fn(usize, ArrayView2<f32>, ndarray::ArrayViewMut2<f32>) -> Result<()> + Sync,
{
    let mut out = Array2::<f32>::zeros((rows.nrows(), n_classes));
    out.axis_chunks_iter_mut(Axis(0), BLOCK_ROWS)
        .into_par_iter()
        .zip(rows.axis_chunks_iter(Axis(0), BLOCK_ROWS).into_par_iter())
        .enumerate()
        .try_for_each(|(b, (o, r))| f(b * BLOCK_ROWS, r, o))?;
    Ok(out)
}

/// Mixes a distribution with the uniform one over `support` (the classes seen in training) so
/// no probability of a seen class is exactly 0 or 1: calibration then never faces ties at 1.0
/// that no threshold can separate.
pub(crate) fn smooth_row(row: &mut [f32], support: &[bool], eps: f32) {
    let m = support.iter().filter(|&&s| s).count();
    if m == 0 || eps <= 0.0 {
        return;
    }
    let add = eps / m as f32;
    for (p, &s) in row.iter_mut().zip(support) {
        *p = if s { (1.0 - eps) * *p + add } else { 0.0 };
    }
}

/// Softmax of `logits` in place, in f64 with the max subtracted (log-sum-exp), so large
/// log-likelihoods (hundreds in 384-d) neither overflow nor underflow. Entries where `mask`
/// is false get probability 0.
pub(crate) fn softmax_masked(logits: &mut [f32], mask: &[bool]) {
    let mut max = f64::NEG_INFINITY;
    for (&l, &m) in logits.iter().zip(mask) {
        if m && (l as f64) > max {
            max = l as f64;
        }
    }
    if !max.is_finite() {
        let m = mask.iter().filter(|&&m| m).count().max(1);
        for (l, &ok) in logits.iter_mut().zip(mask) {
            *l = if ok { 1.0 / m as f32 } else { 0.0 };
        }
        return;
    }
    let mut sum = 0.0f64;
    for (&l, &m) in logits.iter().zip(mask) {
        if m {
            sum += ((l as f64) - max).exp();
        }
    }
    for (l, &m) in logits.iter_mut().zip(mask) {
        *l = if m {
            (((*l as f64) - max).exp() / sum) as f32
        } else {
            0.0
        };
    }
}

/// Predicted class (argmax, lowest index on ties) and its probability, per row.
pub fn argmax_rows(proba: &Array2<f32>) -> (Vec<u32>, Vec<f32>) {
    proba
        .rows()
        .into_iter()
        .map(|r| {
            let mut best = 0usize;
            let mut bv = f32::NEG_INFINITY;
            for (j, &v) in r.iter().enumerate() {
                if v > bv {
                    bv = v;
                    best = j;
                }
            }
            (best as u32, bv.max(0.0))
        })
        .unzip()
}

/// Predicted class (argmax, lowest index on ties) and its margin over the runner-up class
/// (`p₁ − p₂`, in [0, 1]), per row.
///
/// Why a margin: with many classes the top probability of a logistic model is split between
/// near-synonymous intents, so "0.6 vs 0.35" and "0.6 vs 0.05" get the same max-probability
/// score; the margin tells them apart. Measured (`examples/autolabel_diag.rs`, 10% labels,
/// target 0.95): logistic regression certified 0.726 of banking77 with the margin against 0.676
/// with the top probability, 0.906 against 0.882 of clinc150.
pub fn margin_rows(proba: &Array2<f32>) -> (Vec<u32>, Vec<f32>) {
    proba
        .rows()
        .into_iter()
        .map(|r| {
            let (mut best, mut bv, mut second) = (0usize, f32::NEG_INFINITY, f32::NEG_INFINITY);
            for (j, &v) in r.iter().enumerate() {
                if v > bv {
                    second = bv;
                    bv = v;
                    best = j;
                } else if v > second {
                    second = v;
                }
            }
            let m = if r.len() < 2 {
                bv.max(0.0)
            } else {
                (bv - second.max(0.0)).clamp(0.0, 1.0)
            };
            (best as u32, m)
        })
        .unzip()
}

/// Averages member probabilities, so the confidence (the averaged probability of the argmax
/// class) is high only when members agree.
pub struct Ensemble {
    /// The member models, averaged with equal weight.
    pub members: Vec<Box<dyn Classifier>>,
}

struct FittedEnsemble {
    members: Vec<Box<dyn FittedClassifier>>,
    n_classes: usize,
}

impl Classifier for Ensemble {
    fn name(&self) -> String {
        let names: Vec<String> = self.members.iter().map(|m| m.name()).collect();
        format!("ensemble({})", names.join("+"))
    }

    fn fit(
        &self,
        x: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
    ) -> Result<Box<dyn FittedClassifier>> {
        if self.members.is_empty() {
            return Err(Error::Usage("an ensemble needs at least one member".into()));
        }
        let members = self
            .members
            .iter()
            .map(|m| m.fit(x, y, n_classes))
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::new(FittedEnsemble { members, n_classes }))
    }
}

impl FittedClassifier for FittedEnsemble {
    fn predict_proba(&self, rows: ArrayView2<f32>) -> Result<Array2<f32>> {
        let mut acc = Array2::<f32>::zeros((rows.nrows(), self.n_classes));
        // Members are added in a fixed order: deterministic.
        for m in &self.members {
            let p = m.predict_proba(rows)?;
            acc += &p;
        }
        acc /= self.members.len() as f32;
        Ok(acc)
    }

    fn n_classes(&self) -> usize {
        self.n_classes
    }
}

/// Which model to use, as plain serializable data (what the CLI and summary.json carry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSpec {
    /// Distance-weighted kNN vote.
    Knn(KnnVote),
    /// Multinomial logistic regression.
    Logistic(Logistic),
    /// Nearest class centroid.
    Centroid(NearestCentroid),
    /// Gaussian naive Bayes in log space.
    Gnb(GaussianNb),
    /// Label spreading over the neighbour graph (transductive; auto-labeling only).
    Spread(LabelSpreading),
    /// Average of the listed members.
    Ensemble(Vec<ModelSpec>),
    /// One of the listed candidates, chosen on the labels. `autolabel` cross-validates every
    /// candidate, calibrates each at an equal share of the error rate (a union bound keeps the
    /// overall guarantee) and keeps the one that certifies the most; fitted on its own, the
    /// candidate with the best 3-fold cross-validated accuracy is fitted.
    Select(Vec<ModelSpec>),
}

impl Default for ModelSpec {
    /// The better of logistic regression + kNN vote (averaged) and label spreading + nearest
    /// centroid, chosen on the labels. A linear model ranks fine-grained intents well and a
    /// neighbour model broad, noisy classes; averaging the two lowers the confidence where they
    /// disagree, which is where the linear model's confident errors sit, and neither candidate
    /// is best on every pool (BENCHMARKS.md, "Auto-labels" and "the model chosen by separation").
    /// Without a usable graph, or where spreading would cost too much, autolabel runs the kNN
    /// vote in spreading's place ([`ModelSpec::without_transduction`]).
    fn default() -> Self {
        ModelSpec::Select(vec![
            ModelSpec::Ensemble(vec![
                ModelSpec::Logistic(Logistic::default()),
                ModelSpec::Knn(KnnVote::default()),
            ]),
            ModelSpec::Ensemble(vec![
                ModelSpec::Spread(LabelSpreading::default()),
                ModelSpec::Centroid(NearestCentroid::default()),
            ]),
        ])
    }
}

/// Neighbours per item assumed by [`ModelSpec::predict_cost`] for label spreading (the graph's
/// usual k).
const SPREAD_COST_K: usize = 10;

/// Fits the candidate with the best stratified 3-fold cross-validated accuracy (the first on
/// ties), for uses of [`ModelSpec::Select`] outside auto-labeling, which chooses by certified
/// coverage instead.
struct SelectByAccuracy {
    candidates: Vec<ModelSpec>,
}

impl Classifier for SelectByAccuracy {
    fn name(&self) -> String {
        let names: Vec<String> = self.candidates.iter().map(|m| m.name()).collect();
        format!("select({})", names.join("|"))
    }

    fn fit(
        &self,
        x: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
    ) -> Result<Box<dyn FittedClassifier>> {
        check_training(x, y, n_classes)?;
        let Some(first) = self.candidates.first() else {
            return Err(Error::Usage("select needs at least one candidate".into()));
        };
        // Transductive candidates need the neighbour graph, which a fit on labeled rows does
        // not have: they are left out here (auto-labeling evaluates them).
        let inductive: Vec<&ModelSpec> = self
            .candidates
            .iter()
            .filter(|c| !c.is_transductive())
            .collect();
        let mut best = inductive.first().copied().unwrap_or(first);
        if inductive.len() > 1 && y.len() >= 6 {
            let mut best_acc = f64::NEG_INFINITY;
            for &c in &inductive {
                let oof = crate::model::cv::cross_validate(c, x, y, n_classes, 3, 0)?;
                let acc = oof.predicted.iter().zip(y).filter(|(p, t)| p == t).count() as f64;
                if acc > best_acc {
                    best_acc = acc;
                    best = c;
                }
            }
        }
        best.fit(x, y, n_classes)
    }
}

impl ModelSpec {
    /// This spec with every kNN member's `Auto` search resolved for a run that predicts `rows`
    /// rows from `labeled` labels ([`KnnVote::for_workload`]): cross-validation must score with
    /// the search the final prediction will use, or its certificate is for another model.
    pub fn for_workload(&self, rows: usize, labeled: usize) -> ModelSpec {
        match self {
            ModelSpec::Knn(m) => ModelSpec::Knn(m.for_workload(rows, labeled)),
            ModelSpec::Ensemble(ms) => {
                ModelSpec::Ensemble(ms.iter().map(|m| m.for_workload(rows, labeled)).collect())
            }
            ModelSpec::Select(ms) => {
                ModelSpec::Select(ms.iter().map(|m| m.for_workload(rows, labeled)).collect())
            }
            other => other.clone(),
        }
    }

    /// True when the spec holds a model that needs the neighbour graph over all items
    /// ([`LabelSpreading`]), so it cannot be fitted on labeled rows alone.
    pub fn is_transductive(&self) -> bool {
        match self {
            ModelSpec::Spread(_) => true,
            ModelSpec::Ensemble(ms) | ModelSpec::Select(ms) => ms.iter().any(Self::is_transductive),
            _ => false,
        }
    }

    /// Upper bound on the multiply-adds of the label-spreading runs this spec needs when each
    /// spread is run `runs` times over `n` items with `graph_k` neighbours (0 when it holds
    /// none).
    pub fn spread_work(&self, n: usize, graph_k: usize, n_classes: usize, runs: usize) -> f64 {
        match self {
            ModelSpec::Spread(m) => m.work(n, graph_k, n_classes, runs),
            ModelSpec::Ensemble(ms) | ModelSpec::Select(ms) => ms
                .iter()
                .map(|m| m.spread_work(n, graph_k, n_classes, runs))
                .sum(),
            _ => 0.0,
        }
    }

    /// This spec with every [`LabelSpreading`] replaced by the default kNN vote (the closest
    /// inductive model: a vote of the nearest labeled items instead of a walk through the
    /// unlabeled ones), for runs without a usable graph or too large to spread over.
    pub fn without_transduction(&self) -> ModelSpec {
        match self {
            ModelSpec::Spread(_) => ModelSpec::Knn(KnnVote::default()),
            ModelSpec::Ensemble(ms) => {
                ModelSpec::Ensemble(ms.iter().map(Self::without_transduction).collect())
            }
            ModelSpec::Select(ms) => {
                ModelSpec::Select(ms.iter().map(Self::without_transduction).collect())
            }
            other => other.clone(),
        }
    }

    /// Rough multiply-adds to predict one of `rows` rows from `labeled` labels in `dim`
    /// dimensions and `n_classes` classes: a GEMM row for logistic regression, the centroids
    /// and naive Bayes, the labeled items compared for kNN ([`KnnVote::predict_cost`]), the
    /// sum over an ensemble's members, the dearest of a selection's candidates. Only ratios
    /// matter: auto-labeling uses it to prefer the cheaper of candidates that certify the same
    /// share (at 1,000,000 rows × 10,000 labels the kNN vote costs ~10× logistic regression).
    pub fn predict_cost(&self, rows: usize, labeled: usize, n_classes: usize, dim: usize) -> f64 {
        let gemm = (dim * n_classes.max(1)) as f64;
        match self {
            ModelSpec::Knn(m) => m.predict_cost(rows, labeled, dim),
            ModelSpec::Logistic(_) | ModelSpec::Centroid(_) => gemm,
            ModelSpec::Gnb(_) => 2.0 * gemm,
            ModelSpec::Spread(m) => m.cost_per_item(SPREAD_COST_K, n_classes),
            ModelSpec::Ensemble(ms) => ms
                .iter()
                .map(|m| m.predict_cost(rows, labeled, n_classes, dim))
                .sum(),
            ModelSpec::Select(ms) => ms
                .iter()
                .map(|m| m.predict_cost(rows, labeled, n_classes, dim))
                .fold(0.0, f64::max),
        }
    }

    /// Builds the classifier this spec describes.
    pub fn build(&self) -> Box<dyn Classifier> {
        match self {
            ModelSpec::Knn(m) => Box::new(m.clone()),
            ModelSpec::Logistic(m) => Box::new(m.clone()),
            ModelSpec::Centroid(m) => Box::new(m.clone()),
            ModelSpec::Gnb(m) => Box::new(m.clone()),
            ModelSpec::Spread(m) => Box::new(m.clone()),
            ModelSpec::Ensemble(ms) => Box::new(Ensemble {
                members: ms.iter().map(|m| m.build()).collect(),
            }),
            ModelSpec::Select(ms) => Box::new(SelectByAccuracy {
                candidates: ms.clone(),
            }),
        }
    }
}

impl Classifier for ModelSpec {
    fn name(&self) -> String {
        self.build().name()
    }

    fn fit(
        &self,
        x: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
    ) -> Result<Box<dyn FittedClassifier>> {
        self.build().fit(x, y, n_classes)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Gaussian-ish clusters on the unit sphere: `per_class` items for each of `c` classes.
    pub(crate) fn clusters(
        c: usize,
        per_class: usize,
        d: usize,
        noise: f32,
        seed: u64,
    ) -> (Array2<f32>, Vec<u32>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let centers: Vec<Vec<f32>> = (0..c)
            .map(|_| (0..d).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
            .collect();
        let n = c * per_class;
        let mut x = Array2::<f32>::zeros((n, d));
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let k = i % c;
            y.push(k as u32);
            let mut row = x.row_mut(i);
            for j in 0..d {
                row[j] = centers[k][j] + noise * rng.gen_range(-1.0f32..1.0);
            }
            let norm = row.dot(&row).sqrt();
            row /= norm;
        }
        (x, y)
    }

    fn accuracy(p: &Array2<f32>, y: &[u32]) -> f64 {
        let (pred, _) = argmax_rows(p);
        pred.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
    }

    fn check_proba(p: &Array2<f32>) {
        for r in p.rows() {
            let s: f32 = r.sum();
            assert!((s - 1.0).abs() < 1e-3, "row sums to {s}");
            assert!(r.iter().all(|v| v.is_finite() && *v >= 0.0 && *v < 1.0));
        }
    }

    #[test]
    fn every_model_learns_separable_clusters() {
        let (x, y) = clusters(5, 40, 32, 0.6, 1);
        let (xt, yt) = clusters(5, 20, 32, 0.6, 1);
        let _ = yt;
        for spec in [
            ModelSpec::Knn(KnnVote::default()),
            ModelSpec::Logistic(Logistic::default()),
            ModelSpec::Centroid(NearestCentroid::default()),
            ModelSpec::Gnb(GaussianNb::default()),
            ModelSpec::default(),
        ] {
            let m = spec.fit(x.view(), &y, 6).unwrap();
            let p = m.predict_proba(xt.view()).unwrap();
            assert_eq!(p.dim(), (100, 6));
            check_proba(&p);
            // Class 5 was never seen: probability exactly 0.
            assert!(p.column(5).iter().all(|&v| v == 0.0), "{}", spec.name());
            let acc = accuracy(&p, &y[..100]);
            assert!(acc > 0.9, "{}: accuracy {acc}", spec.name());
        }
    }

    #[test]
    fn margin_separates_split_and_clear_predictions() {
        let p = ndarray::arr2(&[[0.6f32, 0.35, 0.05], [0.6, 0.05, 0.35], [0.1, 0.8, 0.1]]);
        let (pred, m) = margin_rows(&p);
        assert_eq!(pred, vec![0, 0, 1]);
        assert!((m[0] - 0.25).abs() < 1e-6 && (m[1] - 0.25).abs() < 1e-6);
        assert!((m[2] - 0.7).abs() < 1e-6);
        let (_, top) = argmax_rows(&p);
        assert_eq!(top[0], top[1]);
        let one = ndarray::arr2(&[[1.0f32]]);
        assert_eq!(margin_rows(&one).1, vec![1.0]);
    }

    #[test]
    fn select_fits_the_more_accurate_candidate() {
        // A centroid model cannot separate two classes that are each a pair of opposite
        // clusters (both centroids are ~0); a kNN vote can.
        let (x, y4) = clusters(4, 30, 16, 0.3, 5);
        let mut x = x;
        for (mut r, &c) in x.rows_mut().into_iter().zip(&y4) {
            if c >= 2 {
                r.mapv_inplace(|v| -v);
            }
        }
        let y: Vec<u32> = y4.iter().map(|&c| c % 2).collect();
        let spec = ModelSpec::Select(vec![
            ModelSpec::Centroid(NearestCentroid::default()),
            ModelSpec::Knn(KnnVote::default()),
        ]);
        assert!(spec.name().starts_with("select("));
        let p = spec
            .fit(x.view(), &y, 2)
            .unwrap()
            .predict_proba(x.view())
            .unwrap();
        assert!(accuracy(&p, &y) > 0.95);
    }

    #[test]
    fn gnb_log_space_is_not_degenerate_in_384d() {
        let (x, y) = clusters(4, 50, 384, 0.8, 2);
        let m = GaussianNb::default().fit(x.view(), &y, 4).unwrap();
        let p = m.predict_proba(x.view()).unwrap();
        check_proba(&p);
        // linfa's predict_proba returns all zeros here; ours sums to one and is right.
        assert!(accuracy(&p, &y) > 0.95);
        assert!(p.iter().any(|&v| v > 0.5));
    }

    #[test]
    fn rejects_bad_training_input() {
        let (x, y) = clusters(2, 5, 8, 0.1, 3);
        assert!(KnnVote::default().fit(x.view(), &y[..3], 2).is_err());
        let mut bad = y.clone();
        bad[0] = 7;
        assert!(NearestCentroid::default().fit(x.view(), &bad, 2).is_err());
        let m = NearestCentroid::default().fit(x.view(), &y, 2).unwrap();
        assert!(m.predict_proba(x.slice(ndarray::s![.., ..4])).is_err());
    }

    #[test]
    fn predictions_do_not_depend_on_thread_count() {
        let (x, y) = clusters(6, 60, 48, 1.0, 4);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let m = ModelSpec::Ensemble(vec![
                    ModelSpec::Knn(KnnVote::default()),
                    ModelSpec::Logistic(Logistic::default()),
                    ModelSpec::Centroid(NearestCentroid::default()),
                    ModelSpec::Gnb(GaussianNb::default()),
                ])
                .fit(x.slice(ndarray::s![..200, ..]), &y[..200], 6)
                .unwrap();
                m.predict_proba(x.view()).unwrap()
            })
        };
        let a = run(1);
        let b = run(3);
        assert!(a
            .iter()
            .zip(b.iter())
            .all(|(p, q)| p.to_bits() == q.to_bits()));
    }
}
