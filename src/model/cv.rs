//! Cross-validation: stratified folds and out-of-fold predictions, the evidence both model
//! choice (the candidates' accuracy) and calibration (the thresholds' precision) are read from.

use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::model::{argmax_rows, Classifier};

/// Fold index for every item: within each class the items are shuffled with `seed` and dealt
/// round-robin (continuing where the previous class stopped), so every fold holds every class
/// in proportion and fold sizes differ by at most one.
pub fn stratified_folds(y: &[u32], n_folds: usize, seed: u64) -> Vec<usize> {
    let n_folds = n_folds.max(1);
    let n_classes = y.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &c) in y.iter().enumerate() {
        by_class[c as usize].push(i);
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut fold = vec![0usize; y.len()];
    let mut next = 0usize;
    for items in &mut by_class {
        items.shuffle(&mut rng);
        for &i in items.iter() {
            fold[i] = next % n_folds;
            next += 1;
        }
    }
    fold
}

/// Out-of-fold predictions for the labeled items.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfFold {
    /// Predicted class per labeled item, from a model that never saw it.
    pub predicted: Vec<u32>,
    /// Probability of the predicted class.
    pub confidence: Vec<f32>,
    /// Full probability rows (`labeled × n_classes`).
    pub proba: Array2<f32>,
}

/// k-fold cross-validation: fits `model` `n_folds` times, each time predicting the fold left
/// out. Folds run in parallel but each writes only its own rows, so results are deterministic.
pub fn cross_validate(
    model: &dyn Classifier,
    x: ArrayView2<f32>,
    y: &[u32],
    n_classes: usize,
    n_folds: usize,
    seed: u64,
) -> Result<OutOfFold> {
    if x.nrows() != y.len() {
        return Err(Error::Internal(format!(
            "{} rows but {} labels",
            x.nrows(),
            y.len()
        )));
    }
    cross_validate_with(y, n_classes, n_folds, seed, true, |train, test| {
        let xt = x.select(Axis(0), train);
        let yt: Vec<u32> = train.iter().map(|&i| y[i]).collect();
        let fitted = model.fit(xt.view(), &yt, n_classes)?;
        fitted.predict_proba(x.select(Axis(0), test).view())
    })
}

/// The fold loop of every cross-validation: stratified folds of `y`, `predict(train, test)`
/// (positions into `y`) giving the test positions' probability rows, assembled into one
/// out-of-fold matrix with each row's argmax. `parallel` runs the folds at once (each writes
/// only its own rows, so the result is the same either way); callers whose folds are large
/// and parallel inside (label spreading over the whole graph) run them one after another.
pub fn cross_validate_with<F>(
    y: &[u32],
    n_classes: usize,
    n_folds: usize,
    seed: u64,
    parallel: bool,
    predict: F,
) -> Result<OutOfFold>
where
    F: Fn(&[usize], &[usize]) -> Result<Array2<f32>> + Sync,
{
    let n = y.len();
    if n < 2 {
        return Err(Error::Usage(
            "cross-validation needs at least 2 labeled items".into(),
        ));
    }
    if n_folds < 2 {
        return Err(Error::Usage(
            "cross-validation needs at least 2 folds".into(),
        ));
    }
    let n_folds = n_folds.min(n);
    let fold = stratified_folds(y, n_folds, seed);
    let run = |f: usize| -> Result<(Vec<usize>, Array2<f32>)> {
        let test: Vec<usize> = (0..n).filter(|&i| fold[i] == f).collect();
        let train: Vec<usize> = (0..n).filter(|&i| fold[i] != f).collect();
        let p = predict(&train, &test)?;
        Ok((test, p))
    };
    let parts = if parallel {
        (0..n_folds)
            .into_par_iter()
            .map(run)
            .collect::<Result<Vec<_>>>()?
    } else {
        (0..n_folds).map(run).collect::<Result<Vec<_>>>()?
    };
    let mut proba = Array2::<f32>::zeros((n, n_classes));
    for (test, p) in parts {
        for (r, &i) in test.iter().enumerate() {
            proba.row_mut(i).assign(&p.row(r));
        }
    }
    let (predicted, confidence) = argmax_rows(&proba);
    Ok(OutOfFold {
        predicted,
        confidence,
        proba,
    })
}
