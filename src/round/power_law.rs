//! The inverse power law `y(n) = a − b·n^(−c)` learning curves follow (Figueroa et al. 2012),
//! and its least-squares fit: the shape `budget` projects accuracy and coverage with; and the
//! nearest-rank percentile its bootstrap intervals (and the certificate replay's) are read with.

use serde::Serialize;

/// `y(n) = a − b·n^(−c)`: rises with n and levels off at `a`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct PowerLaw {
    /// Plateau: the value the curve levels off at.
    pub a: f64,
    /// Gap between the plateau and the value at one label.
    pub b: f64,
    /// Decay exponent (> 0): how fast the gap closes.
    pub c: f64,
}

impl PowerLaw {
    /// Predicted value at `n` labels.
    pub fn at(&self, n: f64) -> f64 {
        self.a - self.b * n.max(1.0).powf(-self.c)
    }

    /// Labels at which the curve reaches `y`, if it ever does.
    pub fn labels_for(&self, y: f64) -> Option<f64> {
        if y >= self.a || self.b <= 0.0 || self.c <= 0.0 {
            return None;
        }
        Some((self.b / (self.a - y)).powf(1.0 / self.c))
    }

    /// Derivative: gain per extra label at `n`.
    pub fn slope(&self, n: f64) -> f64 {
        self.b * self.c * n.max(1.0).powf(-self.c - 1.0)
    }
}

/// Least-squares fit of `a − b·n^(−c)` to `(n, y)` points: a grid over `c`, closed-form `a, b`
/// for each, then the best; `a` is capped at 1 (accuracy and coverage are shares).
pub fn fit_power_law(points: &[(f64, f64)]) -> Option<PowerLaw> {
    if points.len() < 3 {
        return None;
    }
    let mut best: Option<(f64, PowerLaw)> = None;
    let mut c = 0.05;
    while c <= 2.0 + 1e-9 {
        // y = a + β·x with x = n^(−c), β = −b.
        let xs: Vec<f64> = points.iter().map(|p| p.0.max(1.0).powf(-c)).collect();
        let m = points.len() as f64;
        let mx = xs.iter().sum::<f64>() / m;
        let my = points.iter().map(|p| p.1).sum::<f64>() / m;
        let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
        let sxy: f64 = xs
            .iter()
            .zip(points)
            .map(|(x, p)| (x - mx) * (p.1 - my))
            .sum();
        if sxx > 1e-15 {
            let beta = sxy / sxx;
            let mut a = my - beta * mx;
            let mut b = -beta;
            if a > 1.0 {
                // Refit b with a pinned at 1.
                a = 1.0;
                let num: f64 = xs.iter().zip(points).map(|(x, p)| x * (a - p.1)).sum();
                let den: f64 = xs.iter().map(|x| x * x).sum();
                b = num / den;
            }
            if b >= 0.0 {
                let law = PowerLaw { a, b, c };
                let sse: f64 = points.iter().map(|p| (law.at(p.0) - p.1).powi(2)).sum();
                if best.as_ref().is_none_or(|(s, _)| sse < *s) {
                    best = Some((sse, law));
                }
            }
        }
        c += 0.01;
    }
    best.map(|(_, law)| law)
}

/// The `q` quantile of ascending values (nearest rank): the 10th and 90th percentiles of
/// bootstrap fits and of replay replicates.
pub fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
