//! Label spreading over the neighbour graph (Zhou et al. 2004, "Learning with local and global
//! consistency"): transductive, it uses the unlabeled items as well.
//!
//! Why: the other models see only the labeled items, so with a few hundred labels a class's
//! boundary is drawn from a few hundred points. The cached neighbour graph links every item to
//! its most similar ones; spreading the labels along it follows the clusters the unlabeled items
//! form. Measured on agnews (4 broad classes, 608 labels, numpy prototype over 40 label draws):
//! spreading + nearest centroid ranks its predictions so that precision 0.97 holds on 0.56 of
//! the hidden items against 0.48 for the kNN vote + centroid, and precision 0.98 on 0.35
//! against 0.30.
//!
//! The iteration is `F ← α·S·F + (1 − α)·Y` with `S = D^{-1/2} W D^{-1/2}`, `W` the symmetrized
//! graph (an edge in either direction, weight max(cosine, 0)) and `Y` the class-weighted
//! one-hot rows of the labeled items. Rows are normalized to probabilities at the end and mixed
//! with `smoothing` of the uniform distribution over the classes seen, like the other models.
//! Items the labels never reach (no path within `iterations` steps) get the uniform row.
//!
//! Deterministic: each output row is computed by one task from the previous iterate.

use super::{smooth_row, ClassWeight, Classifier, FittedClassifier};
use crate::error::{Error, Result};
use crate::index::graph::NeighborGraph;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Largest items × classes for which spreading is run (its two iterates then take ≤ 80 MB);
/// beyond it auto-labeling uses the kNN vote in its place.
pub const MAX_CELLS: usize = 10_000_000;

/// Largest multiply-adds of all the spreading runs of one auto-labeling round (each fold and the
/// final one; see [`LabelSpreading::work`]). Measured: ~1.2·10⁹ per second on two shared cores
/// (clinc150, 18,200 items × 151 classes), so the bound keeps spreading to ~10 s at most;
/// beyond it the kNN vote stands in. A 1,000,000-item graph with 4 classes fits, with 10 not.
pub const MAX_WORK: f64 = 1e10;

/// Label spreading hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LabelSpreading {
    /// Weight of the neighbours against the item's own label (0 < alpha < 1); larger spreads
    /// further.
    pub alpha: f32,
    /// Iterations of the update: labels travel at most this many hops. 20 (0.9^20 ≈ 0.12 of
    /// the initial rows left) certified as much as 40 on agnews (8 label draws, 10% labels:
    /// mean 0.397 vs 0.369) at half the cost.
    pub iterations: usize,
    /// Per-class weight of the labeled rows, so minority classes are not drowned.
    pub class_weight: ClassWeight,
    /// Share of probability mass spread uniformly over seen classes.
    pub smoothing: f32,
}

impl Default for LabelSpreading {
    fn default() -> Self {
        LabelSpreading {
            alpha: 0.9,
            iterations: 20,
            class_weight: ClassWeight::Balanced,
            smoothing: 0.01,
        }
    }
}

/// The symmetrized, degree-normalized graph `S` in compressed rows.
pub struct SpreadGraph {
    offsets: Vec<usize>,
    cols: Vec<u32>,
    weights: Vec<f32>,
}

impl SpreadGraph {
    /// `S = D^{-1/2} W D^{-1/2}` of the neighbour graph made symmetric (an edge i–j exists when
    /// either lists the other; its weight is the larger of the two max(cosine, 0)).
    pub fn new(graph: &NeighborGraph) -> SpreadGraph {
        let n = graph.len();
        let mut edges: Vec<(u32, u32, f32)> = Vec::with_capacity(2 * graph.neighbors.len());
        for i in 0..n {
            let (nb, cs) = graph.row(i);
            for (&j, &c) in nb.iter().zip(cs) {
                let w = if c.is_finite() { c.max(0.0) } else { 0.0 };
                if (j as usize) < n && j as usize != i && w > 0.0 {
                    edges.push((i as u32, j, w));
                    edges.push((j, i as u32, w));
                }
            }
        }
        edges.par_sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(b.2.total_cmp(&a.2)));
        edges.dedup_by(|b, a| a.0 == b.0 && a.1 == b.1);
        let mut offsets = vec![0usize; n + 1];
        for e in &edges {
            offsets[e.0 as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut degree = vec![0.0f64; n];
        for e in &edges {
            degree[e.0 as usize] += e.2 as f64;
        }
        let inv: Vec<f64> = degree
            .iter()
            .map(|&d| if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 })
            .collect();
        let cols = edges.iter().map(|e| e.1).collect();
        let weights = edges
            .iter()
            .map(|e| (e.2 as f64 * inv[e.0 as usize] * inv[e.1 as usize]) as f32)
            .collect();
        SpreadGraph {
            offsets,
            cols,
            weights,
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when the graph holds no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stored (directed) edges: each undirected edge counts twice.
    pub fn n_edges(&self) -> usize {
        self.cols.len()
    }
}

impl LabelSpreading {
    /// Spreads the labels `y` of items `seeds` over `graph`: probabilities for every item
    /// (`graph.len() × n_classes`). A labeled item's own row is included (it is pulled towards
    /// its label but may disagree with it).
    pub fn spread(
        &self,
        graph: &SpreadGraph,
        seeds: &[usize],
        y: &[u32],
        n_classes: usize,
    ) -> Result<Array2<f32>> {
        let n = graph.len();
        if !(self.alpha > 0.0 && self.alpha < 1.0)
            || self.iterations == 0
            || !(0.0..1.0).contains(&self.smoothing)
        {
            return Err(Error::Usage(format!(
                "label spreading needs 0 < alpha < 1, iterations ≥ 1 and 0 ≤ smoothing < 1 (got \
                 {}, {}, {})",
                self.alpha, self.iterations, self.smoothing
            )));
        }
        if seeds.len() != y.len() {
            return Err(Error::Internal(format!(
                "{} labeled items but {} labels",
                seeds.len(),
                y.len()
            )));
        }
        if seeds.is_empty() || n_classes == 0 {
            return Err(Error::Usage("no labeled items to spread".into()));
        }
        if let Some(&bad) = seeds.iter().find(|&&i| i >= n) {
            return Err(Error::Internal(format!(
                "labeled item {bad} is outside the graph of {n} items"
            )));
        }
        if let Some(&bad) = y.iter().find(|&&c| c as usize >= n_classes) {
            return Err(Error::Internal(format!(
                "label {bad} out of range for {n_classes} classes"
            )));
        }
        let class_w = self.class_weight.weights(y, n_classes);
        let support: Vec<bool> = class_w.iter().map(|&w| w > 0.0).collect();
        let c = n_classes;
        let mut y0 = vec![0.0f32; n * c];
        for (&i, &k) in seeds.iter().zip(y) {
            y0[i * c + k as usize] += class_w[k as usize];
        }
        let a = self.alpha;
        let mut f = y0.clone();
        let mut next = vec![0.0f32; n * c];
        for _ in 0..self.iterations {
            next.par_chunks_mut(c).enumerate().for_each(|(i, out)| {
                for (o, &v) in out.iter_mut().zip(&y0[i * c..(i + 1) * c]) {
                    *o = (1.0 - a) * v;
                }
                for e in graph.offsets[i]..graph.offsets[i + 1] {
                    let j = graph.cols[e] as usize;
                    let w = a * graph.weights[e];
                    for (o, &v) in out.iter_mut().zip(&f[j * c..(j + 1) * c]) {
                        *o += w * v;
                    }
                }
            });
            std::mem::swap(&mut f, &mut next);
        }
        let mut out =
            Array2::<f32>::from_shape_vec((n, c), f).map_err(Error::internal("label spreading"))?;
        let m = support.iter().filter(|&&s| s).count().max(1) as f32;
        out.axis_iter_mut(ndarray::Axis(0))
            .into_par_iter()
            .for_each(|mut row| {
                let row = row.as_slice_mut().expect("standard layout");
                let mut sum = 0.0f32;
                for (v, &s) in row.iter_mut().zip(&support) {
                    *v = if s && v.is_finite() { v.max(0.0) } else { 0.0 };
                    sum += *v;
                }
                if sum > 0.0 {
                    row.iter_mut().for_each(|v| *v /= sum);
                } else {
                    for (v, &s) in row.iter_mut().zip(&support) {
                        *v = if s { 1.0 / m } else { 0.0 };
                    }
                }
                smooth_row(row, &support, self.smoothing);
            });
        Ok(out)
    }

    /// Rough multiply-adds per item and run: every iteration visits each stored edge (at most
    /// 2·k per item once symmetrized) once per class.
    pub fn cost_per_item(&self, graph_k: usize, n_classes: usize) -> f64 {
        self.iterations as f64 * 2.0 * graph_k.max(1) as f64 * n_classes.max(1) as f64
    }

    /// Upper bound on the multiply-adds of `runs` spreads over `n` items with `graph_k`
    /// neighbours each.
    pub fn work(&self, n: usize, graph_k: usize, n_classes: usize, runs: usize) -> f64 {
        self.cost_per_item(graph_k, n_classes) * n as f64 * runs as f64
    }
}

impl Classifier for LabelSpreading {
    fn name(&self) -> String {
        format!("spread(alpha={})", self.alpha)
    }

    /// Label spreading needs the neighbour graph over all items, which a fit on the labeled
    /// rows alone does not have: only auto-labeling runs it.
    fn fit(
        &self,
        _x: ArrayView2<f32>,
        _y: &[u32],
        _n_classes: usize,
    ) -> Result<Box<dyn FittedClassifier>> {
        Err(Error::Internal(
            "label spreading is transductive: it runs over the neighbour graph inside \
             auto-labeling only"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two chains 0–1–2–3 and 4–5–6–7, each item linked to its chain neighbours.
    fn two_chains() -> NeighborGraph {
        let mut neighbors = Vec::new();
        let mut cosines = Vec::new();
        for i in 0..8u32 {
            let (a, b) = match i % 4 {
                0 => (i + 1, i + 2),
                3 => (i - 1, i - 2),
                _ => (i - 1, i + 1),
            };
            neighbors.extend([a, b]);
            cosines.extend([0.9f32, 0.8]);
        }
        NeighborGraph {
            k: 2,
            neighbors,
            cosines,
        }
    }

    #[test]
    fn labels_follow_the_graph() {
        let g = SpreadGraph::new(&two_chains());
        assert_eq!(g.len(), 8);
        let p = LabelSpreading::default()
            .spread(&g, &[0, 7], &[0, 1], 3)
            .unwrap();
        for i in 0..4 {
            assert!(p[[i, 0]] > 0.9, "item {i}: {:?}", p.row(i));
        }
        for i in 4..8 {
            assert!(p[[i, 1]] > 0.9, "item {i}: {:?}", p.row(i));
        }
        // Class 2 never labeled: probability 0; rows sum to 1.
        for r in p.rows() {
            assert_eq!(r[2], 0.0);
            assert!((r.sum() - 1.0).abs() < 1e-5);
        }
        // Deterministic across thread counts.
        let q = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| {
                LabelSpreading::default()
                    .spread(&g, &[0, 7], &[0, 1], 3)
                    .unwrap()
            });
        assert!(p
            .iter()
            .zip(q.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn unreached_items_are_uniform_and_bad_input_is_refused() {
        let g = SpreadGraph::new(&two_chains());
        let p = LabelSpreading::default()
            .spread(&g, &[0, 1], &[0, 1], 2)
            .unwrap();
        // The second chain holds no label: uniform over the classes seen.
        assert!((p[[6, 0]] - 0.5).abs() < 1e-6);
        let s = LabelSpreading::default();
        assert!(s.spread(&g, &[9], &[0], 2).is_err());
        assert!(s.spread(&g, &[0], &[5], 2).is_err());
        assert!(s.spread(&g, &[0, 1], &[0], 2).is_err());
        let bad = LabelSpreading {
            alpha: 1.0,
            ..Default::default()
        };
        assert!(bad.spread(&g, &[0], &[0], 2).is_err());
        // Without the graph there is nothing to fit.
        let x = Array2::<f32>::zeros((2, 3));
        assert!(s.fit(x.view(), &[0, 1], 2).is_err());
    }
}
