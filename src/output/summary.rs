//! summary.json, typed: one [`Summary`] for every command. A stage's section has one shape
//! whichever command ran it, and is absent when the command did not run that stage; `simulate`
//! adds its own fields ([`SimulateSummary`]).
//!
//! Keys are written sorted, as summary.json has always had them (the summary goes through
//! [`serde_json::Value`], whose map is ordered by key).

use std::path::PathBuf;

use serde::Serialize;

use crate::data::label_formats::LabelMerge;
use crate::error::{Error, Result};
use crate::index::cached::GraphSummary;
use crate::output::OutDir;
use crate::round::autolabel::AutolabelSummary;
use crate::round::budget::BudgetOutcome;
use crate::round::dedup::DuplicatesSummary;
use crate::round::rarity::RaritySummary;
use crate::round::select::{Selection, Strategy};
use crate::round::timings::Timings;
use crate::round::{Pool, Round, RoundParams};
use crate::rules::analysis::RulesSummary;
use crate::simulate::replay::RoundCoverageDrop;
use crate::simulate::CurveRow;

/// The contents of summary.json.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    /// The subcommand that wrote it.
    pub command: &'static str,
    /// `items`, `dimension`, `labeled`, `classes` of the loaded pool (every command but
    /// `simulate`, which reports its split instead).
    #[serde(flatten)]
    pub pool: Option<PoolSummary>,
    /// What merging `--labels FILE` did; absent without `--labels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_merge: Option<&'a LabelMerge>,
    /// The neighbour graph: route, recall, cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphSummary>,
    /// The near-duplicate stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<DuplicatesSummary>,
    /// The auto-labeling stage: counts per route, thresholds, precision estimates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autolabel: Option<&'a AutolabelSummary>,
    /// The rarity stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rarity: Option<&'a RaritySummary>,
    /// The batch selection stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select: Option<SelectSummary>,
    /// The budget stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<&'a BudgetOutcome>,
    /// The rules analysis (`rules`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<&'a RulesSummary>,
    /// `simulate`'s own fields.
    #[serde(flatten)]
    pub simulate: Option<SimulateSummary<'a>>,
    /// Wall time per stage, in run order.
    pub timings: &'a Timings,
}

/// The pool's size and shape, at the top level of summary.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolSummary {
    /// Items in the pool.
    pub items: usize,
    /// Embedding width.
    pub dimension: usize,
    /// Items with a label (after `--labels`).
    pub labeled: usize,
    /// Distinct classes among the labels.
    pub classes: usize,
}

/// The `select` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectSummary {
    /// Items in the batch.
    pub batch: usize,
    /// The strategy asked for (`--strategy`).
    pub strategy: Strategy,
    /// The strategy that chose the batch (`hybrid` falls back to `typiclust` on cold start).
    pub strategy_used: Strategy,
    /// Audited items the strategy picked again: not in the batch (their labels are known), so
    /// the batch is smaller by as many; recorded in the history as reason `promoted`.
    #[serde(skip_serializing_if = "is_zero")]
    pub promoted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl SelectSummary {
    /// The section for a selection made with `requested`.
    pub fn new(selection: &Selection, requested: Strategy) -> SelectSummary {
        SelectSummary {
            batch: selection.picked.len(),
            strategy: requested,
            strategy_used: selection.strategy_used,
            promoted: selection.promoted.len(),
        }
    }
}

/// `simulate`'s fields, beside `command`, `graph` (the pool's) and `timings`.
#[derive(Debug, Clone, Serialize)]
pub struct SimulateSummary<'a> {
    /// Selection strategy that was replayed.
    pub strategy: Strategy,
    /// Items picked per round.
    pub batch: usize,
    /// Labeling rounds replayed.
    pub rounds: usize,
    /// Random seed, so the run can be repeated exactly.
    pub seed: u64,
    /// How the pool/test split was made.
    pub split: String,
    /// Rows in the pool (selectable).
    pub pool: usize,
    /// Rows in the test set (scored).
    pub test: usize,
    /// Distinct classes in the ground truth.
    pub classes: usize,
    /// The yardstick trained on the whole pool: the ceiling the curve is read against.
    pub full_pool_accuracy: f64,
    /// Macro-F1 of a model trained on the whole pool: the ceiling the curve is judged against.
    pub full_pool_macro_f1: f64,
    /// Area under the learning curve.
    pub aulc: f64,
    /// Labels needed to reach 95% of the full-pool accuracy; `None` if never reached.
    pub labels_to_95pct_of_full: Option<usize>,
    /// Classes discovered after rounds 1, 3 and 5, to compare how fast strategies find rare classes.
    pub classes_found_after: ClassesFoundAfter,
    /// Mean wall-clock seconds per selection step.
    pub mean_select_seconds: f64,
    /// curve.csv's rows.
    pub curve: &'a [CurveRow],
    /// Rounds whose auto-label coverage fell by more than a third, and why.
    pub coverage_drops: &'a [RoundCoverageDrop],
}

/// Classes found after rounds 1, 3 and 5 (null when the simulation ran fewer rounds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassesFoundAfter {
    /// Classes found after round 1; `None` if the run was shorter.
    #[serde(rename = "1")]
    pub round_1: Option<usize>,
    /// Classes found after round 3; `None` if the run was shorter.
    #[serde(rename = "3")]
    pub round_3: Option<usize>,
    /// Classes found after round 5; `None` if the run was shorter.
    #[serde(rename = "5")]
    pub round_5: Option<usize>,
}

impl ClassesFoundAfter {
    /// From the curve's rows.
    pub fn from_curve(rows: &[CurveRow]) -> ClassesFoundAfter {
        let after = |round: usize| {
            rows.iter()
                .find(|r| r.round == round)
                .map(|r| r.classes_found)
        };
        ClassesFoundAfter {
            round_1: after(1),
            round_3: after(3),
            round_5: after(5),
        }
    }
}

impl<'a> Summary<'a> {
    /// A summary holding only the command and its timings.
    pub fn new(command: &'static str, timings: &'a Timings) -> Summary<'a> {
        Summary {
            command,
            pool: None,
            label_merge: None,
            graph: None,
            duplicates: None,
            autolabel: None,
            rarity: None,
            select: None,
            budget: None,
            rules: None,
            simulate: None,
            timings,
        }
    }

    /// The pool's facts, its label merge and its graph.
    pub fn of_pool(command: &'static str, pool: &'a Pool, timings: &'a Timings) -> Summary<'a> {
        let data = &pool.data;
        Summary {
            pool: Some(PoolSummary {
                items: data.len(),
                dimension: pool.rows().n_cols(),
                labeled: data.labeled_count(),
                classes: data.classes.len(),
            }),
            label_merge: data.label_merge.as_ref(),
            graph: Some(pool.graph.summary(data.len())),
            ..Summary::new(command, timings)
        }
    }

    /// [`Summary::of_pool`] plus a section for every stage the round ran.
    pub fn of_round(
        command: &'static str,
        round: &'a Round<'_>,
        params: &RoundParams,
        timings: &'a Timings,
    ) -> Summary<'a> {
        Summary {
            duplicates: round.duplicates.as_ref().map(|d| d.summary()),
            autolabel: round.autolabel.as_ref().map(|a| &a.summary),
            rarity: round.rarity.as_ref().map(|r| &r.summary),
            select: round
                .selection
                .as_ref()
                .map(|s| SelectSummary::new(s, params.select.strategy)),
            budget: round.budget.as_ref(),
            rules: round.rules.as_ref().map(|r| &r.analysis),
            ..Summary::of_pool(command, round.pool, timings)
        }
    }

    /// Writes `summary.json` into `out` (keys sorted, pretty, trailing newline).
    pub fn write(&self, out: &OutDir) -> Result<PathBuf> {
        let value = serde_json::to_value(self)
            .map_err(|e| Error::Internal(format!("serializing summary.json: {e}")))?;
        out.write_json("summary.json", &value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(promoted: Vec<u32>) -> Selection {
        Selection {
            picked: vec![0, 1],
            score: vec![1.0, 0.5],
            reasons: vec!["uncertain".into(), "rare".into()],
            priority: vec![Some(1), Some(2)],
            propensity: vec![1.0, 1.0],
            n_audits: 0,
            strategy_used: Strategy::Hybrid,
            promoted,
        }
    }

    #[test]
    fn the_select_section_counts_promoted_audits_only_when_there_are_some() {
        let with =
            serde_json::to_value(SelectSummary::new(&selection(vec![4, 7]), Strategy::Hybrid))
                .unwrap();
        assert_eq!(with["promoted"], 2);
        assert_eq!(with["batch"], 2);
        let without =
            serde_json::to_value(SelectSummary::new(&selection(vec![]), Strategy::Hybrid)).unwrap();
        assert!(without.get("promoted").is_none(), "{without}");
    }
}
