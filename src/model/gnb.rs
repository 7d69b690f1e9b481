//! Gaussian naive Bayes, evaluated in log space.

use super::positive;
use super::{check_dim, check_training, predict_blocked, smooth_row, softmax_masked};
use super::{class_counts, ClassWeight, Classifier, FittedClassifier};
use crate::error::{Error, Result};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// Gaussian naive Bayes with per-class diagonal variances.
///
/// Written by hand because linfa-bayes' `predict_proba` exponentiates joint log-likelihoods of
/// several hundred in 384-d without log-sum-exp and returns all zeros (rust_stack.md P8). Here
/// the joint log-likelihood is two GEMMs and the softmax subtracts the row maximum in f64.
/// Naive Bayes is overconfident in high dimension (independence is far from true), so the
/// log-likelihoods are divided by `temperature` before the softmax; do not auto-label with it
/// alone. Balanced class weights mean uniform class priors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GaussianNb {
    /// Added to every variance, as a share of the mean per-feature variance of all rows; keeps
    /// classes with few labels from producing near-zero variances.
    pub var_smoothing: f32,
    /// Divides the joint log-likelihood before normalizing (1 = textbook naive Bayes).
    pub temperature: f32,
    /// Share of probability mass spread uniformly over seen classes.
    pub smoothing: f32,
    /// `Balanced` = uniform priors; `Uniform` = priors from label frequencies.
    pub class_weight: ClassWeight,
}

impl Default for GaussianNb {
    fn default() -> Self {
        GaussianNb {
            var_smoothing: 0.1,
            temperature: 1.0,
            smoothing: 0.01,
            class_weight: ClassWeight::Balanced,
        }
    }
}

struct FittedGnb {
    /// `d × C`: −1 / (2 var).
    a: Array2<f32>,
    /// `d × C`: mean / var.
    b: Array2<f32>,
    /// Per-class constant: log prior − ½ Σ (log 2π var + mean² / var).
    c: Array1<f32>,
    support: Vec<bool>,
    params: GaussianNb,
}

impl Classifier for GaussianNb {
    fn name(&self) -> String {
        "gnb".into()
    }

    fn fit(
        &self,
        x: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
    ) -> Result<Box<dyn FittedClassifier>> {
        check_training(x, y, n_classes)?;
        if !positive(self.var_smoothing as f64)
            || !positive(self.temperature as f64)
            || !(0.0..1.0).contains(&self.smoothing)
        {
            return Err(Error::Usage(
                "gnb needs var_smoothing > 0, temperature > 0, 0 ≤ smoothing < 1".into(),
            ));
        }
        let (n, d) = x.dim();
        let counts = class_counts(y, n_classes);
        // Sums in f64, sequential in row order (deterministic, no cancellation trouble).
        let mut s1 = Array2::<f64>::zeros((n_classes, d));
        let mut s2 = Array2::<f64>::zeros((n_classes, d));
        for (row, &cls) in x.rows().into_iter().zip(y) {
            let c = cls as usize;
            for j in 0..d {
                let v = row[j] as f64;
                s1[[c, j]] += v;
                s2[[c, j]] += v * v;
            }
        }
        let all_mean = s1.sum_axis(Axis(0)) / n as f64;
        let all_var = s2.sum_axis(Axis(0)) / n as f64 - &all_mean * &all_mean;
        let eps = self.var_smoothing as f64 * all_var.mean().unwrap_or(0.0).max(1e-12);
        let present = counts.iter().filter(|&&c| c > 0).count().max(1);
        let mut a = Array2::<f32>::zeros((d, n_classes));
        let mut b = Array2::<f32>::zeros((d, n_classes));
        let mut c = Array1::<f32>::zeros(n_classes);
        for k in 0..n_classes {
            let nk = counts[k];
            if nk == 0 {
                continue;
            }
            let prior = match self.class_weight {
                ClassWeight::Balanced => 1.0 / present as f64,
                ClassWeight::Uniform => nk as f64 / n as f64,
            };
            let mut ck = prior.ln();
            for j in 0..d {
                let m = s1[[k, j]] / nk as f64;
                let var = (s2[[k, j]] / nk as f64 - m * m).max(0.0) + eps;
                a[[j, k]] = (-0.5 / var) as f32;
                b[[j, k]] = (m / var) as f32;
                ck -= 0.5 * ((2.0 * std::f64::consts::PI * var).ln() + m * m / var);
            }
            c[k] = ck as f32;
        }
        Ok(Box::new(FittedGnb {
            a,
            b,
            c,
            support: counts.iter().map(|&n| n > 0).collect(),
            params: self.clone(),
        }))
    }
}

impl FittedClassifier for FittedGnb {
    fn predict_proba(&self, rows: ArrayView2<f32>) -> Result<Array2<f32>> {
        check_dim(rows, self.a.nrows())?;
        let inv_t = 1.0 / self.params.temperature;
        predict_blocked(rows, self.support.len(), |_, r, mut out| {
            let sq = r.mapv(|v| v * v);
            // jll = x²·a + x·b + c
            let jll = sq.dot(&self.a) + r.dot(&self.b) + &self.c;
            out.assign(&jll);
            for mut o in out.rows_mut() {
                let o = o.as_slice_mut().expect("output rows are contiguous");
                o.iter_mut().for_each(|v| *v *= inv_t);
                softmax_masked(o, &self.support);
                smooth_row(o, &self.support, self.params.smoothing);
            }
            Ok(())
        })
    }

    fn n_classes(&self) -> usize {
        self.support.len()
    }
}
