//! Simulated labeling rounds on a fully labeled dataset: the evidence for choosing a strategy.
//!
//! The pool's labels are hidden; each round a strategy picks a batch, its labels are revealed,
//! and one fixed yardstick — multinomial logistic regression with C = 10 on the labeled items'
//! embeddings, scored on held-out test rows — measures the result, so only selection differs
//! between strategies.

pub mod replay;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{argmax_rows, ClassWeight, Classifier, Logistic};
use ndarray::{ArrayView2, Axis};

/// Rows that form the pool (labels hidden, selectable) and the test set (never selected).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSplit {
    /// Row indices whose labels are revealed as the replay asks for them.
    pub pool: Vec<usize>,
    /// Held-out row indices used only to score each round's model.
    pub test: Vec<usize>,
    /// Pool rows set aside before the replay ([`hold_out`]): never offered for selection, never
    /// auto-labeled, scored like the test rows. Unlike the test rows they are drawn from the
    /// pool, so their accuracy is the pool's (what `budget` projects).
    pub holdout: Vec<usize>,
    /// How the split was made, for summary.json.
    pub method: String,
}

/// Moves a seeded random `share` of the pool rows into the holdout (rounded; 0 leaves the pool
/// whole).
pub fn hold_out(split: &mut PoolSplit, share: f64, seed: u64) {
    let n = (split.pool.len() as f64 * share).round() as usize;
    if n == 0 {
        return;
    }
    let mut rows = split.pool.clone();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ HOLDOUT_SEED);
    rows.shuffle(&mut rng);
    let mut holdout = rows[..n].to_vec();
    holdout.sort_unstable();
    let held: std::collections::HashSet<usize> = holdout.iter().copied().collect();
    split.pool.retain(|i| !held.contains(i));
    split.holdout = holdout;
}

/// Mixed into the seed for the holdout draw, so it is not the 80/20 split's stream.
const HOLDOUT_SEED: u64 = 0x401d_0a7e_5eed_0001;

/// Pool = rows whose split is `train` or `val`, test = `test`. Without a split column, or when
/// no row is train/val, a seeded stratified 80/20 split of all rows.
pub fn split_pool(split: Option<&[Option<String>]>, labels: &[u32], seed: u64) -> PoolSplit {
    if let Some(split) = split {
        let pool: Vec<usize> = (0..labels.len())
            .filter(|&i| matches!(split[i].as_deref(), Some("train" | "val")))
            .collect();
        let test: Vec<usize> = (0..labels.len())
            .filter(|&i| split[i].as_deref() == Some("test"))
            .collect();
        if !pool.is_empty() && !test.is_empty() {
            return PoolSplit {
                pool,
                test,
                holdout: Vec::new(),
                method: "split column: train+val pool, test rows scored".into(),
            };
        }
    }
    let n_classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &y) in labels.iter().enumerate() {
        by_class[y as usize].push(i);
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (mut pool, mut test) = (Vec::new(), Vec::new());
    for rows in &mut by_class {
        rows.shuffle(&mut rng);
        let n_test = (rows.len() as f64 * 0.2).round() as usize;
        test.extend_from_slice(&rows[..n_test]);
        pool.extend_from_slice(&rows[n_test..]);
    }
    pool.sort_unstable();
    test.sort_unstable();
    PoolSplit {
        pool,
        test,
        holdout: Vec::new(),
        method: format!("seeded stratified 80/20 split (seed {seed})"),
    }
}

/// The yardstick: logistic regression, C = 10, no class weights, no smoothing, and scikit-learn's
/// default cap of 100 L-BFGS iterations (fixed here so a change of `Logistic`'s defaults cannot
/// move the yardstick).
pub fn yardstick() -> Logistic {
    Logistic {
        alpha: 0.1,
        max_iterations: 100,
        class_weight: ClassWeight::Uniform,
        smoothing: 0.0,
        ..Logistic::default()
    }
}

/// Accuracy and macro-F1 (over classes in truth ∪ predictions, as scikit-learn does).
pub fn accuracy_and_macro_f1(truth: &[u32], predicted: &[u32], n_classes: usize) -> (f64, f64) {
    let n = truth.len().min(predicted.len());
    if n == 0 {
        return (0.0, 0.0);
    }
    let mut tp = vec![0usize; n_classes];
    let mut fp = vec![0usize; n_classes];
    let mut fnn = vec![0usize; n_classes];
    let mut correct = 0;
    for i in 0..n {
        let (t, p) = (truth[i] as usize, predicted[i] as usize);
        if t == p {
            tp[t] += 1;
            correct += 1;
        } else {
            fp[p] += 1;
            fnn[t] += 1;
        }
    }
    let mut f1_sum = 0.0;
    let mut classes = 0usize;
    for c in 0..n_classes {
        if tp[c] + fp[c] + fnn[c] == 0 {
            continue;
        }
        classes += 1;
        let denom = 2 * tp[c] + fp[c] + fnn[c];
        f1_sum += 2.0 * tp[c] as f64 / denom as f64;
    }
    (
        correct as f64 / n as f64,
        if classes == 0 {
            0.0
        } else {
            f1_sum / classes as f64
        },
    )
}

/// Fits the yardstick on `train` rows and scores it on `test` rows.
pub fn evaluate(
    emb: ArrayView2<f32>,
    labels: &[u32],
    train: &[usize],
    test: &[usize],
    n_classes: usize,
) -> Result<(f64, f64)> {
    Ok(evaluate_on(emb, labels, train, &[test], n_classes)?[0])
}

/// [`evaluate`] on several scored sets with one fit of the yardstick: (accuracy, macro-F1) per
/// set, in order.
pub fn evaluate_on(
    emb: ArrayView2<f32>,
    labels: &[u32],
    train: &[usize],
    sets: &[&[usize]],
    n_classes: usize,
) -> Result<Vec<(f64, f64)>> {
    let y: Vec<u32> = train.iter().map(|&i| labels[i]).collect();
    let mut distinct = y.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let model = if distinct.len() < 2 {
        None
    } else {
        let x = emb.select(Axis(0), train);
        Some(yardstick().fit(x.view(), &y, n_classes)?)
    };
    sets.iter()
        .map(|set| {
            let truth: Vec<u32> = set.iter().map(|&i| labels[i]).collect();
            let pred = match &model {
                Some(m) => argmax_rows(&m.predict_proba(emb.select(Axis(0), set).view())?).0,
                // One class known: predicting it is what any model would do.
                None => vec![distinct.first().copied().unwrap_or(0); truth.len()],
            };
            Ok(accuracy_and_macro_f1(&truth, &pred, n_classes))
        })
        .collect()
}

/// One row of curve.csv.
#[derive(Debug, Clone, Serialize)]
pub struct CurveRow {
    /// Round number, 0 for the seed labels.
    pub round: usize,
    /// Labels revealed so far.
    pub labels: usize,
    /// Test-set accuracy, in 0–1.
    pub accuracy: f64,
    /// Accuracy on the pool's held-out rows (`None` without a holdout).
    pub holdout_accuracy: Option<f64>,
    /// Test-set macro-F1, in 0–1, which weighs rare classes equally.
    pub macro_f1: f64,
    /// Distinct classes among the revealed labels.
    pub classes_found: usize,
    /// Share of the still-hidden pool auto-labeled at the default target precision.
    pub auto_coverage: f64,
    /// Precision of those auto-labels against the hidden truth (`None` when none were made).
    pub auto_precision: Option<f64>,
    /// Wall time of picking the batch (rarity, uncertainty, selection).
    pub select_seconds: f64,
}

/// Area under the learning curve: mean accuracy over rounds 1..R.
pub fn aulc(rows: &[CurveRow]) -> f64 {
    let r: Vec<&CurveRow> = rows.iter().filter(|r| r.round >= 1).collect();
    if r.is_empty() {
        0.0
    } else {
        r.iter().map(|x| x.accuracy).sum::<f64>() / r.len() as f64
    }
}

/// Labels at the first round whose accuracy reaches `share` × `full_accuracy`.
pub fn labels_to_reach(rows: &[CurveRow], full_accuracy: f64, share: f64) -> Option<usize> {
    rows.iter()
        .find(|r| r.accuracy >= share * full_accuracy)
        .map(|r| r.labels)
}

/// Checks a simulation's shape parameters.
pub fn validate(batch: usize, rounds: usize) -> Result<()> {
    if batch == 0 || rounds == 0 {
        return Err(Error::Usage("batch and rounds must be at least 1".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_matches_hand_computation() {
        // truth 0 0 1 1, predicted 0 1 1 1: class 0 F1 = 2/3, class 1 F1 = 0.8.
        let (acc, f1) = accuracy_and_macro_f1(&[0, 0, 1, 1], &[0, 1, 1, 1], 3);
        assert!((acc - 0.75).abs() < 1e-12);
        assert!((f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn split_uses_the_split_column_or_a_stratified_80_20() {
        let labels = vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
        let split: Vec<Option<String>> = (0..10)
            .map(|i| Some(if i % 5 == 0 { "test" } else { "train" }.to_string()))
            .collect();
        let s = split_pool(Some(&split), &labels, 0);
        assert_eq!(s.test, vec![0, 5]);
        assert_eq!(s.pool.len(), 8);
        let s = split_pool(None, &labels, 0);
        assert_eq!(s.test.len(), 2);
        assert_eq!(s.test.iter().filter(|&&i| labels[i] == 0).count(), 1);
        assert_eq!(s, split_pool(None, &labels, 0));
    }
}
