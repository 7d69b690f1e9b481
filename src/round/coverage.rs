//! Why auto-label coverage dropped from one round to the next.
//!
//! Labels only grow, so a user who sees coverage fall from 0.4 to 0.2 assumes a bug. It is
//! usually one of a few causes, each visible in the two rounds' figures: another model was
//! chosen, the certified threshold rose because the evidence above the old one now holds errors,
//! the model's accuracy on the evidence fell, or evidence is missing. The round summary names
//! them when coverage drops by more than a third.

use serde::{Deserialize, Serialize};
/// The figures of one round's auto-labeling that explain its coverage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundFigures {
    /// Share of the unlabeled items auto-labeled (model and duplicates).
    pub coverage: f64,
    /// The model that labeled the round.
    pub model: String,
    /// Labels the certificate was computed on.
    pub n_evidence: usize,
    /// Labels in all.
    pub n_labeled: usize,
    /// The shared (or global) certified threshold, when there was one.
    pub threshold: Option<f32>,
    /// Evidence items above that threshold, and how many of them the model got right.
    pub above: Option<(usize, usize)>,
    /// Out-of-fold accuracy on the evidence.
    pub evidence_accuracy: Option<f64>,
}

/// A coverage drop of more than a third, and its likely causes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageChange {
    /// The earlier round's coverage.
    pub previous: f64,
    /// This round's.
    pub current: f64,
    /// The causes found in the figures, most decisive first.
    pub reasons: Vec<String>,
}

/// Coverage counts as dropped below this share of the previous round's.
pub const DROP_SHARE: f64 = 2.0 / 3.0;

/// Explains a drop from `prev` to `cur`; `None` when coverage fell by a third or less.
pub fn explain_drop(prev: &RoundFigures, cur: &RoundFigures) -> Option<CoverageChange> {
    if prev.coverage <= 0.0 || cur.coverage >= DROP_SHARE * prev.coverage {
        return None;
    }
    let mut reasons = Vec::new();
    if prev.model != cur.model {
        reasons.push(format!(
            "the model changed ({} → {}): the new one is certified on its own record",
            prev.model, cur.model
        ));
    }
    if cur.n_evidence < prev.n_evidence {
        reasons.push(format!(
            "less evidence: {} → {} labels the certificate may use (labels were removed, or \
             audits re-labeled as strategy picks)",
            prev.n_evidence, cur.n_evidence
        ));
    }
    match (prev.threshold, cur.threshold) {
        (Some(_), None) => reasons.push(
            "no threshold is certified any more: the evidence's errors among the most \
             confident predictions ended the scan before any threshold passed"
                .into(),
        ),
        (Some(a), Some(b)) if b > a => reasons.push(format!(
            "the certified threshold rose {a:.3} → {b:.3}: new evidence put errors among \
             the confident predictions, so the scan stopped higher{}",
            cur.above
                .map(|(n, ok)| format!(" ({} errors in the {n} evidence items above it)", n - ok))
                .unwrap_or_default()
        )),
        _ => {}
    }
    if let (Some(a), Some(b)) = (prev.evidence_accuracy, cur.evidence_accuracy) {
        if b + 0.02 < a {
            reasons.push(format!(
                "accuracy on the evidence fell {a:.3} → {b:.3} (new audits found errors the \
                 earlier evidence had not seen)"
            ));
        }
    }
    if reasons.is_empty() {
        reasons.push(
            "the same threshold covers fewer unlabeled items: the model's confidences moved \
             after it was refitted on the new labels"
                .into(),
        );
    }
    Some(CoverageChange {
        previous: prev.coverage,
        current: cur.coverage,
        reasons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(coverage: f64, model: &str, threshold: Option<f32>) -> RoundFigures {
        RoundFigures {
            coverage,
            model: model.into(),
            n_evidence: 100,
            n_labeled: 400,
            threshold,
            above: threshold.map(|_| (80, 78)),
            evidence_accuracy: Some(0.9),
        }
    }

    #[test]
    fn explains_only_drops_of_more_than_a_third() {
        let prev = figures(0.6, "logistic", Some(0.5));
        assert!(explain_drop(&prev, &figures(0.41, "logistic", Some(0.5))).is_none());
        let c = explain_drop(&prev, &figures(0.3, "spread", Some(0.7))).unwrap();
        assert_eq!((c.previous, c.current), (0.6, 0.3));
        assert!(c.reasons[0].contains("model changed"), "{:?}", c.reasons);
        assert!(c.reasons[1].contains("threshold rose"), "{:?}", c.reasons);
        let c = explain_drop(&prev, &figures(0.0, "logistic", None)).unwrap();
        assert!(c.reasons[0].contains("no threshold"), "{:?}", c.reasons);
    }
}
