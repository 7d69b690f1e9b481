//! Rules in the round: the users' labeling rules ([`crate::rules`]) as priors for the models,
//! certified on the same evidence and inside the same error budget.
//!
//! A rule says what its author believes; a model says what the labels taught it. With a rules
//! file every candidate model gets a twin that combines the two as independent sources (a
//! naive-Bayes label model): each rule that fires on an item multiplies its class's
//! probability by the rule's estimated accuracy and every other class's by the rest, spread
//! evenly. A rule label the model does not contradict comes out confident; one it contradicts
//! does not. The twins are one more set of candidates: cross-validated, chosen and certified
//! exactly as the models are, so rule labels are auto-labeled only where the combination is
//! certified at the target, under the one error budget.
//!
//! Each rule's accuracy is estimated on the labeled items it fired on (Laplace-smoothed, as a
//! Beta(1, 1) prior would). A labeled item's out-of-fold combination uses accuracies that leave
//! its own label out, so the certificate is computed on labels its scores did not see.

use ndarray::{Array2, ArrayViewMut1};
use serde::{Deserialize, Serialize};

use crate::data::dataset::Dataset;
use crate::error::Result;
use crate::round::calibrate::ThresholdChoice;
use crate::rules::analysis::{Analysis, RulesSummary};
use crate::rules::{RuleInputs, RuleVotes};

/// The rules a round runs with: their names (items' reasons name the rules that fired), their
/// votes on the pool, evaluated once per round (only a `centroid` condition reads the labels:
/// the round's labeled centroid), and their analysis on the labels the round has (summary.json
/// `rules`, the report's section).
#[derive(Debug, Clone)]
pub struct RoundRules {
    /// Rule names, indexed like the votes' rules.
    pub names: Vec<String>,
    /// Which rule fired on which item.
    pub votes: RuleVotes,
    /// Coverage, overlaps, conflicts and accuracy on the labeled items, as `rules` reports them.
    pub analysis: RulesSummary,
}

/// Example ids kept per rule among the labeled items it contradicts (the `rules` command's
/// default).
const ANALYSIS_EXAMPLES: usize = 5;

impl RoundRules {
    /// Loads the rules `inputs` give against the pool `data`, evaluates every rule and refuses
    /// one that never fires (an input error naming the source and the rule).
    pub fn load(inputs: &RuleInputs<'_>, data: &Dataset) -> Result<RoundRules> {
        let (set, votes) = inputs.load_and_vote(data)?;
        let names = set.rules.iter().map(|r| r.name.clone()).collect();
        let majority = votes.majority();
        let analysis = Analysis::compute(&set, &votes, &majority, &data.labels, ANALYSIS_EXAMPLES);
        let analysis = RulesSummary::new(&set, &analysis, &data.ids);
        Ok(RoundRules {
            names,
            votes,
            analysis,
        })
    }
}

/// What the rules did in the round, for summary.json `autolabel.rules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesInRound {
    /// Rules in the file.
    pub rules: usize,
    /// Items at least one rule fired on.
    pub items_fired: usize,
    /// Whether the chosen candidate combines the rules with its model.
    pub chosen: bool,
    /// Auto-labels whose label a rule that fired on the item voted for (source `rules`).
    pub n_auto: usize,
    /// Whether the chosen twin's `rules` scope (the items a fired rule voted the prediction
    /// for, certified apart from the rest at half the twin's share) certified anything.
    pub certified: bool,
    /// That scope's threshold shared by classes without their own, with its evidence.
    pub shared: Option<ThresholdChoice>,
}

/// Labeled items each rule fired on, and how many of them carry the rule's class.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRecord {
    fired: Vec<u32>,
    correct: Vec<u32>,
}

impl RuleRecord {
    /// Counts over the labeled items `labeled` with labels `y`.
    pub fn of(votes: &RuleVotes, labeled: &[usize], y: &[u32]) -> RuleRecord {
        let rules = votes.rules();
        let (mut fired, mut correct) = (vec![0u32; rules], vec![0u32; rules]);
        for (&i, &label) in labeled.iter().zip(y) {
            for r in votes.fired_on(i) {
                fired[r] += 1;
                correct[r] += u32::from(votes.class_of(r, i) == label);
            }
        }
        RuleRecord { fired, correct }
    }

    /// Rule `r`'s smoothed accuracy; `own` leaves one labeled item's outcome out (whether the
    /// rule was right on it) when that item is the one being scored.
    pub fn accuracy(&self, r: usize, own: Option<bool>) -> f64 {
        let (mut n, mut c) = (f64::from(self.fired[r]), f64::from(self.correct[r]));
        if let Some(right) = own {
            n -= 1.0;
            c -= f64::from(u8::from(right));
        }
        (c + 1.0) / (n + 2.0)
    }
}

/// Probabilities below this are floored before the log, so one rule never overrules a model
/// that is certain, nor a certain rule a model that assigns zero.
const MIN_PROBABILITY: f64 = 1e-6;

/// Combines one item's class probabilities `row` (in place, renormalized) with the rules that
/// fired on it, given as (class, accuracy); rules naming a class outside the row are ignored.
pub fn combine_row(mut row: ArrayViewMut1<f32>, fired: &[(u32, f64)]) {
    let k = row.len();
    if k < 2 || !fired.iter().any(|&(c, _)| (c as usize) < k) {
        return;
    }
    let mut log_q: Vec<f64> = row
        .iter()
        .map(|&p| f64::from(p).max(MIN_PROBABILITY).ln())
        .collect();
    let other_share = 1.0 / (k - 1) as f64;
    for &(class, acc) in fired.iter().filter(|&&(c, _)| (c as usize) < k) {
        let a = acc.clamp(MIN_PROBABILITY, 1.0 - MIN_PROBABILITY);
        let (hit, miss) = (a.ln(), ((1.0 - a) * other_share).ln());
        for (c, l) in log_q.iter_mut().enumerate() {
            *l += if c == class as usize { hit } else { miss };
        }
    }
    let top = log_q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let q: Vec<f64> = log_q.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = q.iter().sum();
    for (p, v) in row.iter_mut().zip(q) {
        *p = (v / total) as f32;
    }
}

/// The fired rules on `item` as (class, accuracy); `own_label` (the item's own label, when it
/// is labeled) is left out of the accuracies.
pub fn fired_with_accuracy(
    votes: &RuleVotes,
    record: &RuleRecord,
    item: usize,
    own_label: Option<u32>,
) -> Vec<(u32, f64)> {
    votes
        .fired_on(item)
        .map(|r| {
            let class = votes.class_of(r, item);
            let own = own_label.map(|y| y == class);
            (class, record.accuracy(r, own))
        })
        .collect()
}

/// Combines the rows of `proba` (row `k` is item `items[k]`) with the rules that fired on each;
/// `own_labels` (one per row, for labeled items) are left out of the accuracies.
pub fn combine_rows(
    proba: &mut Array2<f32>,
    items: &[usize],
    votes: &RuleVotes,
    record: &RuleRecord,
    own_labels: Option<&[u32]>,
) {
    for (k, (&i, row)) in items.iter().zip(proba.rows_mut()).enumerate() {
        let fired = fired_with_accuracy(votes, record, i, own_labels.map(|y| y[k]));
        if !fired.is_empty() {
            combine_row(row, &fired);
        }
    }
}

/// Whether a rule that fired on `item` voted for `class`: its auto-label is then the rules'.
pub fn voted_for(votes: &RuleVotes, item: usize, class: u32) -> bool {
    votes
        .fired_on(item)
        .any(|r| votes.class_of(r, item) == class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn a_rule_the_model_agrees_with_is_confident_and_one_it_contradicts_is_not() {
        let mut p = array![[0.6f32, 0.3, 0.1], [0.01, 0.01, 0.98], [0.6, 0.3, 0.1]];
        combine_row(p.row_mut(0), &[(0, 0.9)]);
        assert!(p[[0, 0]] > 0.9, "{p}");
        // The model is sure of class 2; a 60%-accurate rule for class 0 does not overturn it.
        combine_row(p.row_mut(1), &[(0, 0.6)]);
        assert!(p[[1, 2]] > 0.9 && p[[1, 0]] < 0.1, "{p}");
        // A rule outside the model's classes changes nothing.
        combine_row(p.row_mut(2), &[(5, 0.9)]);
        assert_eq!(p.row(2), array![0.6f32, 0.3, 0.1]);
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn leave_one_out_accuracy_excludes_the_scored_item() {
        // One rule (class 1) fired on three labeled items, right on two.
        let votes = RuleVotes::new(
            vec!["a".into(), "b".into()],
            vec![1],
            vec![vec![true, true, true, false]],
        );
        let record = RuleRecord::of(&votes, &[0, 1, 2, 3], &[1, 1, 0, 0]);
        assert!((record.accuracy(0, None) - 3.0 / 5.0).abs() < 1e-12);
        // Scoring item 2 (the miss): 2 right of 2 others.
        assert!((record.accuracy(0, Some(false)) - 3.0 / 4.0).abs() < 1e-12);
        // Scoring item 0 (a hit): 1 right of 2 others.
        assert!((record.accuracy(0, Some(true)) - 2.0 / 4.0).abs() < 1e-12);
    }
}
