//! Nearest class centroid with a softmax over cosines.

use super::positive;
use super::{check_dim, check_training, predict_blocked, smooth_row, softmax_masked};
use super::{class_counts, Classifier, FittedClassifier};
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// Nearest centroid: `p(c | x) ∝ exp(cos(x, centroid_c) / temperature)`.
///
/// Centroids are the normalized means of each class's labeled rows. It is the cheapest model
/// (one `n × classes` GEMM), works from a single label per class, and gives the ensemble a
/// global view that the local kNN vote lacks. Class weights do not apply: each centroid is a
/// per-class average, so class sizes do not tilt it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NearestCentroid {
    /// Softmax temperature on cosines (cosines of sentence embeddings differ by ~0.1 between
    /// classes, so 0.05 turns that gap into a clear preference).
    pub temperature: f32,
    /// Share of probability mass spread uniformly over seen classes.
    pub smoothing: f32,
}

impl Default for NearestCentroid {
    fn default() -> Self {
        NearestCentroid {
            temperature: 0.05,
            smoothing: 0.01,
        }
    }
}

struct FittedCentroid {
    /// `d × n_classes`, unit columns (zero for unseen classes).
    centroids_t: Array2<f32>,
    support: Vec<bool>,
    params: NearestCentroid,
}

impl Classifier for NearestCentroid {
    fn name(&self) -> String {
        "centroid".into()
    }

    fn fit(
        &self,
        x: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
    ) -> Result<Box<dyn FittedClassifier>> {
        check_training(x, y, n_classes)?;
        if !positive(self.temperature as f64) || !(0.0..1.0).contains(&self.smoothing) {
            return Err(Error::Usage(format!(
                "centroid needs temperature > 0 and 0 ≤ smoothing < 1 (got {}, {})",
                self.temperature, self.smoothing
            )));
        }
        let d = x.ncols();
        let counts = class_counts(y, n_classes);
        let mut c = Array2::<f32>::zeros((d, n_classes));
        // Sequential sum in row order: deterministic.
        for (row, &cls) in x.rows().into_iter().zip(y) {
            let mut col = c.column_mut(cls as usize);
            col += &row;
        }
        for mut col in c.columns_mut() {
            let norm = col.dot(&col).sqrt();
            if norm > 0.0 {
                col /= norm;
            }
        }
        Ok(Box::new(FittedCentroid {
            centroids_t: c,
            support: counts.iter().map(|&n| n > 0).collect(),
            params: self.clone(),
        }))
    }
}

impl FittedClassifier for FittedCentroid {
    fn predict_proba(&self, rows: ArrayView2<f32>) -> Result<Array2<f32>> {
        check_dim(rows, self.centroids_t.nrows())?;
        let inv_t = 1.0 / self.params.temperature;
        predict_blocked(rows, self.support.len(), |_, r, mut out| {
            out.assign(&r.dot(&self.centroids_t));
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
