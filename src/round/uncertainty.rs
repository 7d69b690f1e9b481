//! What the batch and rarity read of the model's belief about each item: its class and how
//! unsure it is. Kept instead of the n × classes probabilities, so a round holds 12 bytes an
//! item whatever the number of classes (a 1,000,000-item pool of 150 classes would hold 600 MB
//! of probabilities); a driver that holds only per-item scalars can then run the
//! label-dependent half of a pool that is too large for its probabilities.

use ndarray::{ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

/// Per item: the predicted class (argmax, lowest index on ties), margin uncertainty
/// 1 − (p₁ − p₂) and entropy normalised by ln(classes), both in [0, 1]. Items no model
/// predicted read as an all-zero probability row would: class 0, margin 1, entropy 0.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemUncertainty {
    n_classes: usize,
    class: Vec<u32>,
    margin: Vec<f32>,
    entropy: Vec<f32>,
}

impl ItemUncertainty {
    /// `n` items no model has predicted yet, over `n_classes` classes.
    pub fn new(n: usize, n_classes: usize) -> ItemUncertainty {
        ItemUncertainty {
            n_classes,
            class: vec![0; n],
            margin: vec![1.0; n],
            entropy: vec![0.0; n],
        }
    }

    /// Every row of a probability matrix (row i is item i).
    pub fn from_probabilities(p: ArrayView2<f32>) -> ItemUncertainty {
        let mut u = ItemUncertainty::new(p.nrows(), p.ncols());
        let rows: Vec<usize> = (0..p.nrows()).collect();
        u.set_rows(&rows, p);
        u
    }

    /// Takes row k of `p` as item `items[k]`'s probabilities.
    pub fn set_rows(&mut self, items: &[usize], p: ArrayView2<f32>) {
        let c = self.n_classes;
        let read: Vec<(u32, f32, f32)> = p
            .axis_iter(Axis(0))
            .into_par_iter()
            .map(|row| {
                (
                    argmax(row),
                    margin_uncertainty(row),
                    entropy_uncertainty(row, c),
                )
            })
            .collect();
        for (&i, (class, margin, entropy)) in items.iter().zip(read) {
            self.class[i] = class;
            self.margin[i] = margin;
            self.entropy[i] = entropy;
        }
    }

    /// Items covered.
    pub fn len(&self) -> usize {
        self.class.len()
    }

    /// Whether no item is covered.
    pub fn is_empty(&self) -> bool {
        self.class.is_empty()
    }

    /// Classes the probabilities spanned.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Predicted class per item.
    pub fn class(&self) -> &[u32] {
        &self.class
    }

    /// Entropy uncertainty per item with `entropy`, else margin uncertainty.
    pub fn scores(&self, entropy: bool) -> &[f32] {
        if entropy {
            &self.entropy
        } else {
            &self.margin
        }
    }
}

/// Index of the largest probability, the lowest on ties.
fn argmax(row: ArrayView1<f32>) -> u32 {
    let mut best = 0usize;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best as u32
}

/// 1 − (top1 − top2): 1 when two classes tie, 0 when one class has all the mass.
fn margin_uncertainty(row: ArrayView1<f32>) -> f32 {
    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &p in row.iter() {
        if p > a {
            b = a;
            a = p;
        } else if p > b {
            b = p;
        }
    }
    let b = if b.is_finite() { b } else { 0.0 };
    (1.0 - (a - b)).clamp(0.0, 1.0)
}

/// Predictive entropy over ln(classes): 1 for a uniform row, 0 for a certain one.
fn entropy_uncertainty(row: ArrayView1<f32>, classes: usize) -> f32 {
    if classes < 2 {
        return 0.0;
    }
    let h: f32 = row.iter().filter(|&&p| p > 0.0).map(|&p| -p * p.ln()).sum();
    (h / (classes as f32).ln()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn rows_no_model_predicted_read_as_an_all_zero_row() {
        let zero = ItemUncertainty::from_probabilities(ndarray::Array2::zeros((2, 3)).view());
        assert_eq!(zero, ItemUncertainty::new(2, 3));
    }

    #[test]
    fn scalars_follow_the_items_their_rows_were_given_for() {
        let p = array![[0.2f32, 0.7, 0.1], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]];
        let mut u = ItemUncertainty::new(4, 3);
        u.set_rows(&[3, 0, 1], p.view());
        // Item 2 was never given a row; item 0's tie goes to the lower class.
        assert_eq!(u.class(), &[0, 0, 0, 1]);
        let margin = u.scores(false);
        let expected = [1.0f32, 0.0, 1.0, 0.5];
        for (m, e) in margin.iter().zip(expected) {
            assert!((m - e).abs() < 1e-6, "{margin:?}");
        }
        let entropy = u.scores(true);
        assert!((entropy[0] - 2f32.ln() / 3f32.ln()).abs() < 1e-6);
        assert_eq!((entropy[1], entropy[2]), (0.0, 0.0));
    }
}
