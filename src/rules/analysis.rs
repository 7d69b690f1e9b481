//! What users act on: per rule, the quantities Snorkel's `LFAnalysis.lf_summary` reports, with
//! the same definitions, and the rules that disagree with the labels most.
//!
//! Over all `n` items, for rule `j`:
//! - coverage: share of items where `j` fires;
//! - overlaps: share where `j` and at least one other rule fire;
//! - conflicts: share where `j` fires and the rules that fire there do not all vote one label
//!   (so another rule votes a label different from `j`'s);
//!
//! and over the labeled items: correct / incorrect (fired and equal to / different from the
//! label), empirical accuracy `correct / (correct + incorrect)` (absent when `j` fires on no
//! labeled item) with its two-sided 95% Clopper–Pearson interval.

use rayon::prelude::*;
use serde::Serialize;

use crate::round::calibrate::clopper_pearson_lower;
use crate::rules::{MajorityVote, RuleSet, RuleVotes};

/// Confidence of the accuracy interval (two-sided).
pub const INTERVAL_CONFIDENCE: f64 = 0.95;

/// Rules listed in summary.json's `disagree_most`.
pub const SUMMARY_DISAGREEMENTS: usize = 10;

/// One rule's figures (a row of rules.csv).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStats {
    /// The rule's name.
    pub rule: String,
    /// The label it votes for.
    pub label: String,
    /// Items it fired on.
    pub fired: u64,
    /// Share of items it fired on.
    pub coverage: f64,
    /// Share of items where it and at least one other rule fired.
    pub overlaps: f64,
    /// Share of items where it fired and the rules there disagree.
    pub conflicts: f64,
    /// Labeled items where it fired and equals the label.
    pub correct: u64,
    /// Labeled items where it fired and differs from the label.
    pub incorrect: u64,
    /// `correct / (correct + incorrect)`; absent when it fired on no labeled item.
    pub accuracy: Option<f64>,
    /// Lower end of the 95% Clopper–Pearson interval on the accuracy.
    pub accuracy_low: Option<f64>,
    /// Upper end of the 95% Clopper–Pearson interval on the accuracy.
    pub accuracy_high: Option<f64>,
}

/// A rule that contradicts labels, with the labeled items where it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagreement {
    /// Index of the rule.
    pub rule: usize,
    /// Labeled items where it fired and differs from the label.
    pub incorrect: u64,
    /// Labeled items where it fired.
    pub labeled_votes: u64,
    /// The first such items (rows, input order).
    pub examples: Vec<usize>,
}

/// How the majority vote fares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MajoritySummary {
    /// Items the majority vote labels (some rule fired and the top is not tied).
    pub labeled_items: u64,
    /// Items with a tied top.
    pub ties: u64,
    /// Items no rule fired on.
    pub no_votes: u64,
    /// Labeled items.
    pub labeled: u64,
    /// Labeled items whose majority vote equals the label.
    pub correct: u64,
    /// Labeled items the majority vote labels.
    pub voted_labeled: u64,
    /// `correct / voted_labeled`: accuracy where the majority vote gives a label, as Snorkel's
    /// `MajorityLabelVoter.score` (tie-break `abstain`) counts it.
    pub accuracy: Option<f64>,
    /// `correct / labeled`: tied and vote-less labeled items counted as wrong.
    pub accuracy_all_labeled: Option<f64>,
}

/// The analysis of one rule set on one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Items in the pool.
    pub items: u64,
    /// Labeled items.
    pub labeled: u64,
    /// Per rule, in rule order.
    pub per_rule: Vec<RuleStats>,
    /// Items where at least one rule fired.
    pub covered: u64,
    /// Items where two or more rules fired.
    pub overlapped: u64,
    /// Items where rules voting different labels fired.
    pub conflicted: u64,
    /// The majority vote's figures.
    pub majority: MajoritySummary,
    /// Rules with at least one incorrect vote, most incorrect first (ties: lower accuracy,
    /// then rule order).
    pub disagreements: Vec<Disagreement>,
}

/// Per item: rules that fired, and whether they disagree.
#[derive(Debug, Clone, Copy, Default)]
struct ItemFacts {
    fired: u32,
    conflicted: bool,
}

fn item_facts(votes: &RuleVotes) -> Vec<ItemFacts> {
    (0..votes.items())
        .into_par_iter()
        .map(|i| {
            let mut facts = ItemFacts::default();
            let mut first = None;
            for r in votes.fired_on(i) {
                facts.fired += 1;
                let class = votes.class_of(r, i);
                match first {
                    None => first = Some(class),
                    Some(c) if c != class => facts.conflicted = true,
                    Some(_) => {}
                }
            }
            facts
        })
        .collect()
}

/// The two-sided `INTERVAL_CONFIDENCE` Clopper–Pearson interval on `k` successes in `n`.
pub fn accuracy_interval(k: u64, n: u64) -> (f64, f64) {
    let one_side = 1.0 - (1.0 - INTERVAL_CONFIDENCE) / 2.0;
    let low = clopper_pearson_lower(k, n, one_side);
    let high = 1.0 - clopper_pearson_lower(n - k, n, one_side);
    (low, high)
}

impl Analysis {
    /// Analyses `votes` of `rules` against `labels` (the pool's, indexed like
    /// `Dataset::classes`) and their `majority`; keeps up to `examples` example items per
    /// disagreeing rule.
    pub fn compute(
        rules: &RuleSet,
        votes: &RuleVotes,
        majority: &[MajorityVote],
        labels: &[Option<u32>],
        examples: usize,
    ) -> Analysis {
        let facts = item_facts(votes);
        let n = votes.items() as u64;
        let share = |k: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
        let per_rule: Vec<(RuleStats, Disagreement)> = (0..votes.rules())
            .into_par_iter()
            .map(|r| rule_stats(rules, votes, r, &facts, labels, examples, &share))
            .collect();
        let count = |f: &dyn Fn(&ItemFacts) -> bool| facts.iter().filter(|x| f(x)).count() as u64;
        let mut disagreements: Vec<Disagreement> = per_rule
            .iter()
            .map(|(_, d)| d.clone())
            .filter(|d| d.incorrect > 0)
            .collect();
        disagreements.sort_by(|a, b| {
            let acc = |d: &Disagreement| 1.0 - d.incorrect as f64 / d.labeled_votes as f64;
            b.incorrect
                .cmp(&a.incorrect)
                .then(acc(a).total_cmp(&acc(b)))
                .then(a.rule.cmp(&b.rule))
        });
        Analysis {
            items: n,
            labeled: labels.iter().flatten().count() as u64,
            per_rule: per_rule.into_iter().map(|(s, _)| s).collect(),
            covered: count(&|f| f.fired >= 1),
            overlapped: count(&|f| f.fired >= 2),
            conflicted: count(&|f| f.conflicted),
            majority: majority_summary(majority, labels),
            disagreements,
        }
    }

    /// Share of items at least one rule fired on.
    pub fn coverage(&self) -> f64 {
        self.covered as f64 / self.items.max(1) as f64
    }
}

fn rule_stats(
    rules: &RuleSet,
    votes: &RuleVotes,
    r: usize,
    facts: &[ItemFacts],
    labels: &[Option<u32>],
    examples: usize,
    share: &dyn Fn(u64) -> f64,
) -> (RuleStats, Disagreement) {
    let (mut fired, mut overlaps, mut conflicts, mut correct, mut incorrect) = (0, 0, 0, 0, 0);
    let mut wrong_rows = Vec::new();
    for (i, _) in votes.fired(r).iter().enumerate().filter(|(_, &f)| f) {
        fired += 1;
        overlaps += u64::from(facts[i].fired >= 2);
        conflicts += u64::from(facts[i].conflicted);
        match labels[i] {
            Some(l) if l == votes.class_of(r, i) => correct += 1,
            Some(_) => {
                incorrect += 1;
                if wrong_rows.len() < examples {
                    wrong_rows.push(i);
                }
            }
            None => {}
        }
    }
    let voted = correct + incorrect;
    let interval = (voted > 0).then(|| accuracy_interval(correct, voted));
    let stats = RuleStats {
        rule: rules.rules[r].name.clone(),
        label: rules.rules[r].label.clone(),
        fired,
        coverage: share(fired),
        overlaps: share(overlaps),
        conflicts: share(conflicts),
        correct,
        incorrect,
        accuracy: (voted > 0).then(|| correct as f64 / voted as f64),
        accuracy_low: interval.map(|i| i.0),
        accuracy_high: interval.map(|i| i.1),
    };
    let disagreement = Disagreement {
        rule: r,
        incorrect,
        labeled_votes: voted,
        examples: wrong_rows,
    };
    (stats, disagreement)
}

fn majority_summary(majority: &[MajorityVote], labels: &[Option<u32>]) -> MajoritySummary {
    let (mut labeled, mut correct, mut voted_labeled) = (0u64, 0u64, 0u64);
    for (m, l) in majority.iter().zip(labels) {
        let Some(l) = l else { continue };
        labeled += 1;
        if let Some(p) = m.label {
            voted_labeled += 1;
            correct += u64::from(p == *l);
        }
    }
    let ratio = |k: u64, n: u64| (n > 0).then(|| k as f64 / n as f64);
    MajoritySummary {
        labeled_items: majority.iter().filter(|m| m.label.is_some()).count() as u64,
        ties: majority.iter().filter(|m| m.tie).count() as u64,
        no_votes: majority.iter().filter(|m| m.votes == 0).count() as u64,
        labeled,
        correct,
        voted_labeled,
        accuracy: ratio(correct, voted_labeled),
        accuracy_all_labeled: ratio(correct, labeled),
    }
}

/// summary.json's `rules` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulesSummary {
    /// The rules file.
    pub file: String,
    /// Rules in the file.
    pub rules: usize,
    /// Share of items at least one rule fired on.
    pub coverage: f64,
    /// Share of items two or more rules fired on.
    pub overlaps: f64,
    /// Share of items where firing rules disagree.
    pub conflicts: f64,
    /// The majority vote's figures.
    pub majority: MajoritySummary,
    /// Per rule (rules.csv's rows).
    pub per_rule: Vec<RuleStats>,
    /// The rules that disagree with the labels most, with example ids.
    pub disagree_most: Vec<DisagreementSummary>,
}

/// One rule of `disagree_most`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DisagreementSummary {
    /// The rule's name.
    pub rule: String,
    /// The label it votes for.
    pub label: String,
    /// Labeled items where it differs from the label.
    pub incorrect: u64,
    /// Labeled items where it fired.
    pub labeled_votes: u64,
    /// Ids of the first such items.
    pub examples: Vec<String>,
}

impl RulesSummary {
    /// The section for `analysis` of `rules`, naming items by `ids`.
    pub fn new(rules: &RuleSet, analysis: &Analysis, ids: &[String]) -> RulesSummary {
        let share = |k: u64| k as f64 / analysis.items.max(1) as f64;
        RulesSummary {
            file: rules.file.display().to_string(),
            rules: rules.rules.len(),
            coverage: share(analysis.covered),
            overlaps: share(analysis.overlapped),
            conflicts: share(analysis.conflicted),
            majority: analysis.majority.clone(),
            per_rule: analysis.per_rule.clone(),
            disagree_most: analysis
                .disagreements
                .iter()
                .take(SUMMARY_DISAGREEMENTS)
                .map(|d| DisagreementSummary {
                    rule: rules.rules[d.rule].name.clone(),
                    label: rules.rules[d.rule].label.clone(),
                    incorrect: d.incorrect,
                    labeled_votes: d.labeled_votes,
                    examples: d.examples.iter().map(|&i| ids[i].clone()).collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::condition::Condition;
    use crate::rules::{Rule, RuleKind};

    fn set(labels: &[(&str, u32)]) -> RuleSet {
        RuleSet {
            file: "r.toml".into(),
            rules: labels
                .iter()
                .map(|(name, class)| Rule {
                    name: name.to_string(),
                    label: format!("c{class}"),
                    kind: RuleKind::Condition {
                        class: *class,
                        condition: Condition::All(vec![]),
                    },
                })
                .collect(),
            classes: vec!["c0".into(), "c1".into()],
        }
    }

    #[test]
    fn figures_by_hand() {
        // Items 0..5; rules a→0, b→0, c→1.
        // item0: a,c (conflict)  item1: a,b (overlap, no conflict)  item2: c  item3: none
        // item4: a.  Labels: 0, 0, 0, None, 1.
        let fired = vec![
            vec![true, true, false, false, true],
            vec![false, true, false, false, false],
            vec![true, false, true, false, false],
        ];
        let votes = RuleVotes::new(vec!["c0".into(), "c1".into()], vec![0, 0, 1], fired);
        let labels = [Some(0), Some(0), Some(0), None, Some(1)];
        let rules = set(&[("a", 0), ("b", 0), ("c", 1)]);
        let a = Analysis::compute(&rules, &votes, &votes.majority(), &labels, 5);
        let s = &a.per_rule;
        assert_eq!(s[0].fired, 3);
        assert_eq!(
            (s[0].coverage, s[0].overlaps, s[0].conflicts),
            (0.6, 0.4, 0.2)
        );
        assert_eq!((s[0].correct, s[0].incorrect), (2, 1));
        assert_eq!(s[0].accuracy, Some(2.0 / 3.0));
        assert_eq!((s[1].overlaps, s[1].conflicts), (0.2, 0.0));
        assert_eq!((s[2].correct, s[2].incorrect), (0, 2));
        assert_eq!((a.covered, a.overlapped, a.conflicted), (4, 2, 1));
        // Majority: item0 tie, item1 → 0 (right), item2 → 1 (wrong), item4 → 0 (wrong).
        assert_eq!(a.majority.labeled, 4);
        assert_eq!(a.majority.correct, 1);
        assert_eq!(a.majority.accuracy_all_labeled, Some(0.25));
        assert_eq!(a.majority.accuracy, Some(1.0 / 3.0));
        assert_eq!((a.majority.ties, a.majority.no_votes), (1, 1));
        // c is wrong twice, a once.
        assert_eq!(a.disagreements.len(), 2);
        assert_eq!(a.disagreements[0].rule, 2);
        assert_eq!(a.disagreements[0].examples, vec![0, 2]);
        assert_eq!(a.disagreements[1].examples, vec![4]);
    }

    #[test]
    fn interval_brackets_the_estimate() {
        let (lo, hi) = accuracy_interval(8, 10);
        assert!(
            (lo - 0.4439).abs() < 1e-3 && (hi - 0.9748).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(accuracy_interval(0, 5).0, 0.0);
        assert_eq!(accuracy_interval(5, 5).1, 1.0);
    }
}
