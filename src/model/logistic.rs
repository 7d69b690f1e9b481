//! Multinomial logistic regression: our L-BFGS (`model::softmax`) or linfa-logistic's.

use super::{check_dim, check_training, predict_blocked, smooth_row, softmax_masked};
use super::{class_counts, ClassWeight, Classifier, FittedClassifier};
use crate::error::{Error, Result};
use linfa::traits::Fit;
use linfa::DatasetBase;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// Which optimizer fits the weights; both minimize the same objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogisticSolver {
    /// Our L-BFGS over f32 matrix products (`model::softmax`): several times faster.
    #[default]
    Native,
    /// linfa-logistic's L-BFGS in f64 (argmin).
    Linfa,
}

/// Multinomial logistic regression (softmax), L2-regularized, fitted by L-BFGS (ours by
/// default, or linfa's).
///
/// Both minimize linfa's objective `Σ_i −log p(y_i | x_i) + ½·alpha·‖W‖²` (a *sum* over items,
/// not a mean), so `alpha` = 1/C in scikit-learn's terms. Unit-norm 384-d embeddings have small
/// coordinates, so the weights must be large to be confident: the default `alpha = 0.1`
/// (C = 10) was picked on the evaluation datasets. No sample weights; `Balanced` class weights
/// are applied as the equivalent prior correction at prediction time (subtract log class
/// frequency from each logit), which is what reweighting converges to for a well-specified
/// model, without duplicating rows. Prediction is an f32 GEMM.
///
/// Cost: linfa's solver (`autolabel_eval --bench-logistic`, 2 shared cores) took 10.9 s for
/// 10,000 labels × 384 × 77 classes at 50 L-BFGS iterations, 23 s at 100, 42 s at 200 (training
/// accuracy .968 / .971 / .971), so the default is 50; the native solver is several times
/// faster, which is what makes logistic regression affordable as an auto-labeling candidate
/// (calibration refits it once per fold).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Logistic {
    /// Optimizer.
    pub solver: LogisticSolver,
    /// L2 penalty (1/C).
    pub alpha: f64,
    /// L-BFGS iteration cap.
    pub max_iterations: u64,
    /// L-BFGS gradient-norm tolerance.
    pub gradient_tolerance: f64,
    /// Prior correction for imbalanced labels.
    pub class_weight: ClassWeight,
    /// Share of probability mass spread uniformly over seen classes.
    pub smoothing: f32,
}

impl Default for Logistic {
    fn default() -> Self {
        Logistic {
            solver: LogisticSolver::default(),
            alpha: 0.1,
            max_iterations: 50,
            gradient_tolerance: 1e-4,
            class_weight: ClassWeight::Balanced,
            smoothing: 0.01,
        }
    }
}

struct FittedLogistic {
    /// `d × n_classes` (zero columns for unseen classes).
    w: Array2<f32>,
    /// Per-class intercept, including the prior correction.
    b: Array1<f32>,
    support: Vec<bool>,
    smoothing: f32,
}

impl Classifier for Logistic {
    fn name(&self) -> String {
        format!("logistic(alpha={})", self.alpha)
    }

    fn fit(
        &self,
        x: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
    ) -> Result<Box<dyn FittedClassifier>> {
        check_training(x, y, n_classes)?;
        if !(self.alpha.is_finite() && self.alpha >= 0.0 && (0.0..1.0).contains(&self.smoothing)) {
            return Err(Error::Usage(format!(
                "logistic needs alpha ≥ 0 and 0 ≤ smoothing < 1 (got {}, {})",
                self.alpha, self.smoothing
            )));
        }
        let d = x.ncols();
        let counts = class_counts(y, n_classes);
        let support: Vec<bool> = counts.iter().map(|&c| c > 0).collect();
        let mut w = Array2::<f32>::zeros((d, n_classes));
        let mut b = Array1::<f32>::zeros(n_classes);
        let present: Vec<usize> = (0..n_classes).filter(|&c| support[c]).collect();
        if present.len() >= 2 && self.solver == LogisticSolver::Native {
            let fit = super::softmax::fit(
                x,
                y,
                n_classes,
                self.alpha,
                self.max_iterations as usize,
                self.gradient_tolerance,
            );
            w = fit.w;
            b = fit.b;
        } else if present.len() >= 2 {
            let xf = x.mapv(|v| v as f64);
            let yt: Array1<usize> = y.iter().map(|&c| c as usize).collect();
            let model = MultiLogisticRegression::<f64>::default()
                .alpha(self.alpha)
                .max_iterations(self.max_iterations)
                .gradient_tolerance(self.gradient_tolerance)
                .fit(&DatasetBase::new(xf, yt))
                .map_err(Error::internal("logistic regression fit"))?;
            // Columns follow the sorted classes(): map them back to class indices.
            for (col, &cls) in model.classes().iter().enumerate() {
                if cls >= n_classes {
                    return Err(Error::Internal(format!("linfa returned class {cls}")));
                }
                w.column_mut(cls)
                    .assign(&model.params().column(col).mapv(|v| v as f32));
                b[cls] = model.intercept()[col] as f32;
            }
        }
        if self.class_weight == ClassWeight::Balanced {
            let n = y.len() as f32;
            for &c in &present {
                b[c] -= (counts[c] as f32 / n).ln();
            }
        }
        Ok(Box::new(FittedLogistic {
            w,
            b,
            support,
            smoothing: self.smoothing,
        }))
    }
}

impl FittedClassifier for FittedLogistic {
    fn predict_proba(&self, rows: ArrayView2<f32>) -> Result<Array2<f32>> {
        check_dim(rows, self.w.nrows())?;
        predict_blocked(rows, self.support.len(), |_, r, mut out| {
            out.assign(&(r.dot(&self.w) + &self.b));
            for mut o in out.rows_mut() {
                let o = o.as_slice_mut().expect("output rows are contiguous");
                softmax_masked(o, &self.support);
                smooth_row(o, &self.support, self.smoothing);
            }
            Ok(())
        })
    }

    fn n_classes(&self) -> usize {
        self.support.len()
    }
}
