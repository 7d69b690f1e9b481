//! Auto-labeling: label what the labels can vouch for, route the rest to humans.
//!
//! One round, all label-dependent and cheap:
//! 1. cross-validate the model on the labeled items and calibrate confidence thresholds whose
//!    precision lower bound meets the target ([`crate::round::calibrate`]); with several candidate
//!    models ([`ModelSpec::Select`], the default) each is calibrated at `(1 − level) / M` and the
//!    one that certifies the largest share of the labeled items is kept;
//! 2. fit the model on all labeled items and predict every unlabeled item;
//! 3. near-duplicates of labeled items inherit their label (route `Duplicate`), when that route's
//!    own leave-one-out precision is certified;
//! 4. unlabeled items whose confidence clears their class's threshold are `Auto`; the rest are
//!    `Human`.
//!
//! When the labels cannot certify the target, nothing is auto-labeled and the summary says
//! roughly how many labels would be needed.

use crate::error::{Error, Result};
use crate::index::graph::NeighborGraph;
use crate::model::cv::{cross_validate, cross_validate_with, OutOfFold};
use crate::model::{
    class_counts, Classifier, ModelSpec, SpreadGraph, SPREAD_MAX_CELLS, SPREAD_MAX_WORK,
};
use crate::round::calibrate::{
    calibrate, clopper_pearson_lower, min_count_for, separation, Calibration, CalibrationParams,
    Score, ThresholdChoice,
};
use crate::round::coverage::{CoverageChange, RoundFigures};
use crate::round::rows::{self, PoolRows, PredictSink, RowLookup};
use crate::round::rule_route::{self, RuleRecord, RulesInRound};
use crate::round::uncertainty::ItemUncertainty;
use crate::rules::RuleVotes;
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Near-duplicate groups, one id per item (items sharing an id are near-duplicates; a negative
/// id means the item has no duplicate). Produced by the dedup stage from the graph's edges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DupInfo {
    /// Group id per item.
    pub group: Vec<i64>,
}

/// Where an item's final label comes from: the one field a consumer needs to decide whether to
/// trust, review or label an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// A human already labeled it.
    Labeled,
    /// The model labeled it above a certified threshold.
    Auto,
    /// It inherited the label of its labeled near-duplicates.
    Duplicate,
    /// Needs a human.
    Human,
}

/// What produced `predicted` for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Out-of-fold model prediction for a labeled item (compare with its label to spot label
    /// errors), or the label itself when there was too little data to cross-validate.
    CrossValidation,
    /// The model fitted on all labels.
    Model,
    /// Copied from labeled near-duplicates.
    Duplicate,
    /// The users' rules, combined with the model ([`crate::round::rule_route`]).
    Rules,
    /// No prediction (no labels to learn from).
    None,
}

/// How a threshold certified on cross-validated predictions is applied to the final model.
///
/// The final model is fitted on all labels, the fold models on `(k−1)/k` of them, so the final
/// model's confidences run higher (a kNN vote finds more same-class neighbours when labels are
/// denser). Applying the same confidence value then admits items the fold models would have
/// rejected, and realized precision can fall below the certified bound (measured: 0.941 for a
/// 0.95 target on clinc150 with 5% labels). `Rank` instead auto-labels the same *share* of each
/// scope that cross-validation certified (the top of the final model's ranking, which is at least
/// as good as the fold models'), and never below the certified confidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdTransfer {
    /// Apply the certified confidence value as is.
    Confidence,
    /// Apply the certified share of each scope, and at least the certified confidence.
    #[default]
    Rank,
}

/// Parameters of one auto-labeling round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutolabelParams {
    /// The model (default: the measured ensemble).
    pub model: ModelSpec,
    /// Target precision, confidence level, per-class thresholds.
    pub calibration: CalibrationParams,
    /// Cross-validation folds. More folds train each fold's model on more labels, so its
    /// confidences are closer to the final model's.
    pub n_folds: usize,
    /// Seed for fold assignment.
    pub seed: u64,
    /// Minimum cosine between an unlabeled item and a labeled near-duplicate to copy its label.
    pub propagation_threshold: f32,
    /// How certified thresholds carry over from the cross-validated models to the final model.
    pub transfer: ThresholdTransfer,
    /// Only propagate duplicate labels when the duplicate route's own leave-one-out precision
    /// bound meets the target (otherwise such items go through the model like any other).
    pub certify_duplicates: bool,
    /// Keep the final model's class and uncertainty for the unlabeled items (for batch
    /// selection), so no caller has to fit and predict the model a second time.
    pub keep_uncertainty: bool,
    /// The score thresholds apply to (reported as `confidence`).
    pub score: Score,
}

impl Default for AutolabelParams {
    fn default() -> Self {
        AutolabelParams {
            model: ModelSpec::default(),
            calibration: CalibrationParams::default(),
            n_folds: 5,
            seed: 0,
            propagation_threshold: 0.98,
            certify_duplicates: true,
            transfer: ThresholdTransfer::Rank,
            keep_uncertainty: false,
            score: Score::Margin,
        }
    }
}

/// Per-class part of the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSummary {
    /// Class index.
    pub class: u32,
    /// Labeled items of this class.
    pub n_labeled: usize,
    /// Threshold certified on cross-validated predictions (`None` = never auto-labeled).
    pub cv_threshold: Option<f32>,
    /// Lowest confidence actually auto-labeled in this class's scope after the transfer to the
    /// final model (`None` = nothing auto-labeled).
    pub threshold: Option<f32>,
    /// `class` when the class has its own certified threshold, `shared` otherwise.
    pub threshold_source: String,
    /// Evidence behind the class's own threshold.
    pub own: Option<ThresholdChoice>,
    /// Unlabeled items predicted as this class.
    pub n_predicted: usize,
    /// Of those, auto-labeled by the model.
    pub n_auto: usize,
    /// Unlabeled items that inherited this class from duplicates.
    pub n_duplicate: usize,
    /// (auto + duplicate) / predicted.
    pub coverage: f64,
}

/// Evidence for the duplicate route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DuplicateSummary {
    /// Cosine needed to copy a label.
    pub propagation_threshold: f32,
    /// Whether the route was used this round.
    pub enabled: bool,
    /// Labeled items with labeled near-duplicates (leave-one-out trials).
    pub loo_n: usize,
    /// Trials where the copied label was right.
    pub loo_correct: usize,
    /// loo_correct / loo_n.
    pub precision: Option<f64>,
    /// One-sided Clopper–Pearson lower bound.
    pub lower_bound: f64,
    /// Items labeled by this route.
    pub n_propagated: usize,
}

/// Counts per route.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RouteCounts {
    /// Human-labeled items.
    pub labeled: usize,
    /// Model auto-labels.
    pub auto: usize,
    /// Duplicate propagations.
    pub duplicate: usize,
    /// Items left for humans.
    pub human: usize,
}

/// One candidate model's cross-validated record (several when the model is
/// [`ModelSpec::Select`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateSummary {
    /// Model name.
    pub model: String,
    /// Confidence level its thresholds were certified at (the round's level, Bonferroni-split
    /// over the candidates).
    pub confidence_level: f64,
    /// Out-of-fold accuracy.
    pub cv_accuracy: f64,
    /// Share of the labeled items above the certified thresholds (out-of-fold).
    pub certified_share: f64,
    /// Estimated cost of predicting one row, relative to the cheapest candidate
    /// ([`ModelSpec::predict_cost`]); breaks ties in favour of the cheaper model.
    pub relative_cost: f64,
    /// How well its score ranks its right predictions above its wrong ones on the strategy's
    /// picks (AUROC, [`separation`]), when the model was chosen on those; null otherwise.
    #[serde(default)]
    pub separation: Option<f64>,
    /// Whether this candidate labeled the round.
    pub chosen: bool,
}

/// What summary.json reports about a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutolabelSummary {
    /// Model name (the chosen candidate's).
    pub model: String,
    /// Every candidate's record (one entry when there was nothing to choose).
    pub candidates: Vec<CandidateSummary>,
    /// Score the thresholds apply to.
    pub score: Score,
    /// Required precision.
    pub target_precision: f64,
    /// Confidence level of the whole certificate.
    pub confidence_level: f64,
    /// How the certificate's error rate (1 − confidence level) is shared out.
    pub error_budget: ErrorBudget,
    /// Items, labeled items, classes.
    pub n_items: usize,
    /// Labeled items.
    pub n_labeled: usize,
    /// Labeled items the certificate was computed on: audits and labels with no record of how
    /// they were chosen (every label when the round has no history). Labels the strategy picked
    /// train the model but are not evidence.
    #[serde(default)]
    pub n_evidence: usize,
    /// Why coverage fell by more than a third since the previous round (from the history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage_change: Option<CoverageChange>,
    /// Classes.
    pub n_classes: usize,
    /// Cross-validation folds actually used (0 = none possible).
    pub n_folds: usize,
    /// Whether any class can be auto-labeled.
    pub certified: bool,
    /// Out-of-fold accuracy.
    pub cv_accuracy: Option<f64>,
    /// Threshold over all classes with its CV precision and lower bound.
    pub global: Option<ThresholdChoice>,
    /// Threshold shared by classes without their own.
    pub shared: Option<ThresholdChoice>,
    /// Per-class thresholds and coverage.
    pub classes: Vec<ClassSummary>,
    /// Counts per route.
    pub counts: RouteCounts,
    /// (auto + duplicate) / unlabeled.
    pub coverage: f64,
    /// Duplicate route evidence.
    pub duplicate: DuplicateSummary,
    /// What the rules did (only with a rules file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<RulesInRound>,
    /// Estimated total labels needed to certify the target when it is not certified yet.
    pub labels_needed: Option<usize>,
    /// Human-readable explanation when nothing could be certified.
    pub message: Option<String>,
}

/// Per-item outcome plus the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct AutolabelResult {
    /// With `keep_uncertainty`: the final model's class and uncertainty for unlabeled items
    /// (labeled items read as an all-zero probability row).
    pub uncertainty: Option<ItemUncertainty>,
    /// Predicted class per item (see `source` for where it comes from).
    pub predicted: Vec<Option<u32>>,
    /// Probability of `predicted` (1.0 for duplicate propagation).
    pub confidence: Vec<f32>,
    /// Route per item.
    pub route: Vec<Route>,
    /// Source of `predicted` per item.
    pub source: Vec<Source>,
    /// Round summary.
    pub summary: AutolabelSummary,
}

/// The certificate's one error budget: the chance that any auto-label scope it certifies — any
/// candidate model, per-class or shared threshold, or the duplicate route — misses the target
/// stays ≤ `1 − level` (a union bound over the shares).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ErrorBudget {
    /// Shared equally by the candidate models (each splits its share between its per-class
    /// family and its shared threshold; see `calibrate`).
    pub models: f64,
    /// The duplicate route's share (0 when no unlabeled item has a labeled near-duplicate).
    pub duplicates: f64,
}

impl ErrorBudget {
    /// The duplicate route's share of the error budget when it can fire.
    pub const DUPLICATE_SHARE: f64 = 0.25;

    /// Splits `alpha`: a quarter to the duplicate route when it can fire, the rest to the models
    /// (their rule-combining twins among them).
    pub fn split(alpha: f64, duplicate_route: bool) -> ErrorBudget {
        let duplicates = if duplicate_route {
            alpha * Self::DUPLICATE_SHARE
        } else {
            0.0
        };
        ErrorBudget {
            models: alpha - duplicates,
            duplicates,
        }
    }
}

/// Whether the duplicate route could certify anything this round: some unlabeled item shares a
/// near-duplicate group with a labeled one, and enough labeled items share a group with another
/// labeled one that a leave-one-out record all right but one (the route's one-error floor) would
/// reach `target` at the route's share of the error budget. Decided from the groups and which
/// items are labeled, never from the labels' values, so spending part of the budget on the route
/// does not depend on the evidence it is judged on; a route that cannot pass spends nothing.
fn dup_route_possible(
    dup: Option<&DupInfo>,
    labels: &[Option<u32>],
    target: f64,
    alpha: f64,
) -> bool {
    let Some(d) = dup else {
        return false;
    };
    let mut labeled_in_group: HashMap<i64, u64> = HashMap::new();
    for (g, l) in d.group.iter().zip(labels) {
        if *g >= 0 && l.is_some() {
            *labeled_in_group.entry(*g).or_default() += 1;
        }
    }
    let reaches_unlabeled = d
        .group
        .iter()
        .zip(labels)
        .any(|(g, l)| *g >= 0 && l.is_none() && labeled_in_group.contains_key(g));
    // Leave-one-out trials possible at most: labeled items with a labeled group mate.
    let trials: u64 = labeled_in_group.values().filter(|&&c| c >= 2).sum();
    let level = 1.0 - alpha * ErrorBudget::DUPLICATE_SHARE;
    reaches_unlabeled && trials >= 1 && clopper_pearson_lower(trials - 1, trials, level) >= target
}

/// [`Round::preselect`]'s choice from each candidate's accuracy and [`separation`] on the
/// `n` strategy picks: the best separation, then the cheapest, the first listed; without any
/// separation (every pick right, or every one wrong), the most accurate, the cheapest within
/// one standard error.
fn choose_on_picks(
    accuracy: &[f64],
    separation: &[Option<f64>],
    costs: &[f64],
    n: usize,
) -> Option<usize> {
    let cheapest = |ks: &mut dyn Iterator<Item = usize>| {
        ks.min_by(|&a, &b| costs[a].total_cmp(&costs[b]).then(a.cmp(&b)))
    };
    let best_separation = separation
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if best_separation.is_finite() {
        return cheapest(
            &mut (0..separation.len()).filter(|&k| separation[k] == Some(best_separation)),
        );
    }
    let best = accuracy.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let se = (best * (1.0 - best) / n.max(1) as f64).sqrt();
    cheapest(&mut (0..accuracy.len()).filter(|&k| best - accuracy[k] <= se + 1e-12))
}

/// The model chosen before certifying, and what it was chosen on.
struct Preselection {
    /// The chosen candidate; `None` when every candidate is certified.
    chosen: Option<usize>,
    /// Per candidate, [`separation`] on the strategy's picks (`None` without a choice).
    separation: Vec<Option<f64>>,
}

/// Labels outside the certificate's evidence needed to choose the model on them alone.
const PRESELECT_MIN: usize = 100;

/// Labeled near-duplicates checked by direct dot product per item when the graph does not hold
/// one (bounds the cost of huge duplicate groups).
const MAX_DUP_DOTS: usize = 64;

/// The model spec a round runs: label spreading only where it fits (otherwise the kNN vote
/// stands in), then every kNN vote's search resolved for the workload, so that
/// cross-validation certifies the very search the final prediction uses. The order matters: a
/// stand-in resolved after the fact would choose its search per call (4× slower at 1M rows,
/// and calibrated on a different search than it predicts with).
fn round_model(
    model: &ModelSpec,
    graph: &NeighborGraph,
    n: usize,
    n_classes: usize,
    n_folds: usize,
    unlabeled: usize,
    labeled: usize,
) -> ModelSpec {
    // Spreading's two n × classes iterates and its work (a run per fold and the final one)
    // must stay small.
    let spread_ok = !graph.is_empty()
        && graph.len() == n
        && n.saturating_mul(n_classes) <= SPREAD_MAX_CELLS
        && model.spread_work(n, graph.k, n_classes, n_folds + 1) <= SPREAD_MAX_WORK;
    let model = if spread_ok {
        model.clone()
    } else {
        model.without_transduction()
    };
    model.for_workload(unlabeled, labeled)
}

/// The candidates a round certifies ([`round_model`]'s spec, a selection's members listed), and
/// whether the spec holds a transductive model (which needs the graph prepared for spreading).
fn round_specs(
    params: &AutolabelParams,
    graph: &NeighborGraph,
    n: usize,
    n_classes: usize,
    unlabeled: &[usize],
    labeled: &[usize],
) -> (Vec<ModelSpec>, bool) {
    let (folds, u, l) = (params.n_folds, unlabeled.len(), labeled.len());
    let resolved = round_model(&params.model, graph, n, n_classes, folds, u, l);
    let transductive = resolved.is_transductive();
    let specs = match resolved {
        ModelSpec::Select(c) if !c.is_empty() => c,
        m => vec![m],
    };
    (specs, transductive)
}

/// Runs one auto-labeling round (see the module docs), every label counting as evidence.
pub fn autolabel(
    emb: ArrayView2<f32>,
    labels: &[Option<u32>],
    n_classes: usize,
    graph: &NeighborGraph,
    dup: Option<&DupInfo>,
    params: &AutolabelParams,
) -> Result<AutolabelResult> {
    autolabel_with_evidence(emb, labels, n_classes, graph, dup, None, params)
}

/// Runs one auto-labeling round whose certificate is computed only on the labeled items
/// `evidence` marks (`None`: all of them). Every label trains the model; only labels drawn
/// without looking at the model (audits, a random seed set) say how often it is wrong where it
/// is confident. Labels picked for being uncertain would make the certificate pessimistic at
/// best and, picked another way, optimistic.
pub fn autolabel_with_evidence(
    emb: ArrayView2<f32>,
    labels: &[Option<u32>],
    n_classes: usize,
    graph: &NeighborGraph,
    dup: Option<&DupInfo>,
    evidence: Option<&[bool]>,
    params: &AutolabelParams,
) -> Result<AutolabelResult> {
    let input = AutolabelInput {
        rows: &emb,
        labels,
        n_classes,
        graph,
        dup,
        evidence,
        audited: None,
        rules: None,
    };
    autolabel_round(&input, params)
}

/// What one auto-labeling round reads besides its parameters.
pub struct AutolabelInput<'a> {
    /// One embedding per item, read through [`PoolRows`].
    pub rows: &'a dyn PoolRows,
    /// Human labels (class indices), `None` where unlabeled.
    pub labels: &'a [Option<u32>],
    /// Classes the labels index into.
    pub n_classes: usize,
    /// The neighbour graph (kNN votes, label spreading, duplicates).
    pub graph: &'a NeighborGraph,
    /// Near-duplicate groups, for the duplicate route.
    pub dup: Option<&'a DupInfo>,
    /// Labeled items the certificate may use (`None`: all; see [`autolabel_with_evidence`]).
    pub evidence: Option<&'a [bool]>,
    /// Audited items (`None`: none): the uncertainty kept for selection comes from the model
    /// fitted without them, so an audit never steers the picks that follow it.
    pub audited: Option<&'a [bool]>,
    /// The users' rules' votes, for the rules route ([`crate::round::rule_route`]).
    pub rules: Option<&'a RuleVotes>,
}

/// [`autolabel_with_evidence`] with every input, the rules among them.
pub fn autolabel_round(
    input: &AutolabelInput<'_>,
    params: &AutolabelParams,
) -> Result<AutolabelResult> {
    let (rows, labels, n_classes) = (input.rows, input.labels, input.n_classes);
    let (graph, dup, evidence) = (input.graph, input.dup, input.evidence);
    let n = rows.n_rows();
    check_inputs(n, labels, n_classes, graph, dup, params)?;
    check_item_counts(input)?;
    let cal_params = &params.calibration;
    let target = cal_params.target_precision;
    let level = cal_params.confidence_level;
    let budget = ErrorBudget::split(
        1.0 - level,
        params.certify_duplicates && dup_route_possible(dup, labels, target, 1.0 - level),
    );
    let (labeled, unlabeled, y, evidence_at) = split_labels(labels, evidence);
    let (specs, transductive) = round_specs(params, graph, n, n_classes, &unlabeled, &labeled);
    let spread_graph = transductive.then(|| SpreadGraph::new(graph));
    let rule_record = input.rules.map(|v| (v, RuleRecord::of(v, &labeled, &y)));
    let job = Job {
        rows,
        labels,
        n_classes,
        sg: spread_graph.as_ref(),
        labeled: &labeled,
        unlabeled: &unlabeled,
        y: &y,
        evidence_at: &evidence_at,
        rules: rule_record.as_ref().map(|(v, r)| (*v, r)),
        params,
    };
    let mut items = Items::new(n);

    // 1. Cross-validation and calibration of every candidate; one labels the round.
    let certified_run = job.certify_candidates(&specs, &budget, &mut items)?;
    for &i in &labeled {
        items.route[i] = Route::Labeled;
    }
    // 2. Final model on all labels, predicting unlabeled items chunk by chunk.
    let chosen_spec = &specs[certified_run.spec];
    let mut uncertainty =
        job.predict_unlabeled(chosen_spec, certified_run.with_rules, &mut items)?;
    if let (Some(u), Some(audited)) = (uncertainty.as_mut(), input.audited) {
        job.blind_to_audits(chosen_spec, audited, u)?;
    }
    // 3. Duplicate propagation and its leave-one-out precision.
    let duplicate = job.propagate_duplicates(graph, dup, &budget, &mut items)?;
    // 4. Thresholds, transferred from the cross-validated models to the final one; auto-labels
    // a rule voted for are the rules'.
    let rule_scope = job.rule_scope(&certified_run, &items);
    let applied = job.apply_certified(&certified_run, &rule_scope, &mut items);
    let rules = job.credit_rules(&certified_run, &rule_scope, &mut items);

    let calibration = certified_run.calibration;
    let chosen_accuracy = certified_run
        .candidates
        .get(certified_run.chosen)
        .map(|c| c.cv_accuracy);
    let counts = RouteCounts::of(&items.route);
    let classes = class_summaries(&job, calibration.as_ref(), &applied, &items);
    let label_counts = LabelCounts {
        labels: y.len(),
        evidence: evidence_at.len(),
    };
    let (certified, labels_needed, message) = outcome(
        calibration.as_ref(),
        certified_run.message,
        label_counts,
        target,
        level,
    );
    let summary = AutolabelSummary {
        model: certified_run
            .candidates
            .get(certified_run.chosen)
            .map_or_else(|| chosen_spec.name(), |c| c.model.clone()),
        candidates: certified_run.candidates,
        score: params.score,
        target_precision: target,
        confidence_level: level,
        error_budget: budget,
        n_items: n,
        n_labeled: y.len(),
        n_evidence: evidence_at.len(),
        coverage_change: None,
        n_classes,
        n_folds: if calibration.is_some() {
            certified_run.n_folds
        } else {
            0
        },
        certified,
        cv_accuracy: chosen_accuracy.or(calibration.as_ref().map(|c| c.cv_accuracy)),
        global: calibration.as_ref().and_then(|c| c.global.clone()),
        shared: calibration.as_ref().and_then(|c| c.fallback.clone()),
        classes,
        coverage: (counts.auto + counts.duplicate) as f64 / unlabeled.len().max(1) as f64,
        counts,
        duplicate,
        rules,
        labels_needed,
        message,
    };
    Ok(AutolabelResult {
        uncertainty,
        predicted: items.predicted,
        confidence: items.confidence,
        route: items.route,
        source: items.source,
        summary,
    })
}

impl AutolabelSummary {
    /// The figures the next round compares its own with to explain a coverage drop.
    pub fn figures(&self) -> RoundFigures {
        let t = self.shared.as_ref().or(self.global.as_ref());
        RoundFigures {
            coverage: self.coverage,
            model: self.model.clone(),
            n_evidence: self.n_evidence,
            n_labeled: self.n_labeled,
            threshold: t.map(|t| t.threshold),
            above: t.map(|t| (t.n_above, t.n_correct)),
            evidence_accuracy: self.cv_accuracy,
        }
    }
}

/// The labeled items, the unlabeled ones, the labels, and the positions in `labeled` whose
/// labels the certificate may use.
fn split_labels(
    labels: &[Option<u32>],
    evidence: Option<&[bool]>,
) -> (Vec<usize>, Vec<usize>, Vec<u32>, Vec<usize>) {
    let n = labels.len();
    let labeled: Vec<usize> = (0..n).filter(|&i| labels[i].is_some()).collect();
    let unlabeled: Vec<usize> = (0..n).filter(|&i| labels[i].is_none()).collect();
    let y: Vec<u32> = labeled.iter().filter_map(|&i| labels[i]).collect();
    let evidence_at: Vec<usize> = match evidence {
        Some(e) => (0..labeled.len()).filter(|&k| e[labeled[k]]).collect(),
        None => (0..labeled.len()).collect(),
    };
    (labeled, unlabeled, y, evidence_at)
}

/// The evidence flags and the rules' votes cover the pool's items.
fn check_item_counts(input: &AutolabelInput<'_>) -> Result<()> {
    let n = input.rows.n_rows();
    if let Some(e) = input.evidence.filter(|e| e.len() != n) {
        let msg = format!("autolabel: {} evidence flags for {n} items", e.len());
        return Err(Error::Internal(msg));
    }
    if let Some(v) = input.rules.filter(|v| v.items() != n) {
        let msg = format!("autolabel: rule votes on {} items for {n}", v.items());
        return Err(Error::Internal(msg));
    }
    Ok(())
}

/// How many labels the certificate had, of how many: its evidence (audits and labels with no
/// record of how they were picked) is what an estimate of the labels still needed counts.
#[derive(Debug, Clone, Copy)]
struct LabelCounts {
    labels: usize,
    evidence: usize,
}

/// Whether anything was certified, the labels estimated to certify the target when not, and
/// the message saying why nothing was (the candidates' own, or the one labels_needed gives).
/// The calibration's estimate counts evidence; the labels that are not evidence (the strategy's
/// picks) are added, so `labels_needed` stays a total of labels, the rest of them audits.
fn outcome(
    calibration: Option<&Calibration>,
    message: Option<String>,
    counts: LabelCounts,
    target: f64,
    level: f64,
) -> (bool, Option<usize>, Option<String>) {
    let certified = calibration.is_some_and(Calibration::certified);
    let evidence_needed = match calibration {
        Some(c) if !c.certified() => c.labels_needed,
        Some(_) => None,
        None => Some(min_count_for(target, level).max(counts.evidence + 1)),
    };
    let others = counts.labels - counts.evidence;
    let labels_needed = evidence_needed.map(|k| k.max(counts.evidence + 1) + others);
    let message = message.or_else(|| {
        (!certified).then(|| not_certified_message(counts, target, level, labels_needed))
    });
    (certified, labels_needed, message)
}

/// Rejects inputs whose shapes disagree (our own bug: internal) and parameters out of range.
fn check_inputs(
    n: usize,
    labels: &[Option<u32>],
    n_classes: usize,
    graph: &NeighborGraph,
    dup: Option<&DupInfo>,
    params: &AutolabelParams,
) -> Result<()> {
    if labels.len() != n {
        return Err(Error::Internal(format!(
            "{n} embeddings but {} labels",
            labels.len()
        )));
    }
    if !graph.is_empty() && graph.len() != n {
        return Err(Error::Internal(format!(
            "graph has {} items, embeddings {n}",
            graph.len()
        )));
    }
    if let Some(d) = dup {
        if d.group.len() != n {
            return Err(Error::Internal(format!(
                "duplicate groups cover {} items, embeddings {n}",
                d.group.len()
            )));
        }
    }
    if let Some(bad) = labels.iter().flatten().find(|&&c| c as usize >= n_classes) {
        return Err(Error::Internal(format!(
            "label {bad} out of range for {n_classes} classes"
        )));
    }
    if !(params.propagation_threshold.is_finite() && params.propagation_threshold <= 1.0) {
        return Err(Error::Usage(format!(
            "propagation threshold must be ≤ 1, got {}",
            params.propagation_threshold
        )));
    }
    Ok(())
}

/// Per-item results as the round builds them up, stage by stage.
struct Items {
    predicted: Vec<Option<u32>>,
    confidence: Vec<f32>,
    route: Vec<Route>,
    source: Vec<Source>,
}

impl Items {
    fn new(n: usize) -> Items {
        Items {
            predicted: vec![None; n],
            confidence: vec![0.0f32; n],
            route: vec![Route::Human; n],
            source: vec![Source::None; n],
        }
    }
}

/// What the round's auto-labeling works on: the data, who is labeled, the parameters.
struct Job<'a, 'e> {
    rows: &'e dyn PoolRows,
    labels: &'a [Option<u32>],
    n_classes: usize,
    sg: Option<&'a SpreadGraph>,
    labeled: &'a [usize],
    unlabeled: &'a [usize],
    y: &'a [u32],
    /// Positions in `labeled` / `y` the certificate is computed on.
    evidence_at: &'a [usize],
    /// The rules' votes and their record on the labeled items.
    rules: Option<(&'a RuleVotes, &'a RuleRecord)>,
    params: &'a AutolabelParams,
}

/// Out-of-fold predicted class and score per labeled item.
type OutOfFoldRows = (Vec<u32>, Vec<f32>);

/// One candidate's certificate on its out-of-fold predictions: thresholds (of the `model`
/// source scope for a rules twin) and a rules twin's `rules` scope thresholds.
struct CandidateRun {
    pred: Vec<u32>,
    score: Vec<f32>,
    calibration: Calibration,
    rules_calibration: Option<Calibration>,
}

/// One candidate: a model, alone or combined with the users' rules.
struct Twin {
    /// Index into the round's model specs.
    spec: usize,
    /// Whether the rules' votes are combined with the model's probabilities.
    rules: bool,
}

/// The candidates' cross-validation: the kept one's calibration (none when cross-validation
/// was impossible), every candidate's record, and why nothing could be tried.
struct CertifiedRun {
    /// Thresholds of the kept candidate (of its `model` source scope when it is a rules twin).
    calibration: Option<Calibration>,
    /// A rules twin's thresholds for the items a fired rule voted the prediction for.
    rules_calibration: Option<Calibration>,
    /// The kept candidate's model (index into the specs) and whether it combines the rules.
    spec: usize,
    with_rules: bool,
    chosen: usize,
    candidates: Vec<CandidateSummary>,
    n_folds: usize,
    message: Option<String>,
}

impl Job<'_, '_> {
    /// Cross-validates and calibrates every candidate at its share of the models' error budget
    /// and keeps the one that certifies the most; the labeled items get its out-of-fold
    /// predictions.
    fn certify_candidates(
        &self,
        specs: &[ModelSpec],
        budget: &ErrorBudget,
        items: &mut Items,
    ) -> Result<CertifiedRun> {
        let (y, n_classes, params) = (self.y, self.n_classes, self.params);
        let n_present = class_counts(y, n_classes)
            .iter()
            .filter(|&&c| c > 0)
            .count();
        let n_folds = params.n_folds.min(y.len());
        if n_folds < 2 || n_present < 2 {
            return Ok(self.nothing_to_cross_validate(n_folds, n_present, items));
        }
        let ev = self.evidence_at;
        let y_ev: Vec<u32> = ev.iter().map(|&k| y[k]).collect();
        let (twins, oofs) = self.candidate_oofs(specs, n_folds)?;
        let m = twins.len();
        let cost = |t: &Twin| {
            let (u, l, d) = (self.unlabeled.len(), y.len(), self.rows.n_cols());
            specs[t.spec].predict_cost(u, l, n_classes, d)
        };
        let costs: Vec<f64> = twins.iter().map(cost).collect();
        // With enough labels outside the evidence, the model is chosen on those (its choice
        // then costs the certificate nothing) and only it is certified, at the models' whole
        // share; otherwise every candidate is certified at an equal share, so the chance that
        // the kept one's threshold misses the target stays within it whichever is kept.
        let Preselection {
            chosen: preselected,
            separation,
        } = self.preselect(&oofs, &costs);
        let tested = if preselected.is_some() { 1 } else { m };
        let cand_params = CalibrationParams {
            confidence_level: 1.0 - budget.models / tested as f64,
            ..params.calibration.clone()
        };
        let mut candidates: Vec<CandidateSummary> = Vec::with_capacity(m);
        let mut runs: Vec<CandidateRun> = Vec::with_capacity(m);
        for (k, (twin, (pred, score))) in twins.iter().zip(oofs).enumerate() {
            let right = ev.iter().filter(|&&j| pred[j] == y[j]).count();
            let accuracy = right as f64 / ev.len().max(1) as f64;
            let (cal, rules_cal) = if preselected.is_some_and(|c| c != k) {
                // Not the chosen one: not certified, only its accuracy on the evidence reported.
                (Calibration::uncertified(n_classes, accuracy), None)
            } else if twin.rules {
                self.calibrate_rules_twin(&pred, &score, &cand_params)?
            } else {
                (
                    self.calibrate_on_evidence(&pred, &score, ev, &cand_params)?,
                    None,
                )
            };
            let share = certified_share(&cal, ev.len())
                + rules_cal
                    .as_ref()
                    .map_or(0.0, |c| certified_share(c, ev.len()));
            let name = specs[twin.spec].name();
            candidates.push(CandidateSummary {
                model: if twin.rules {
                    format!("{name}+rules")
                } else {
                    name
                },
                confidence_level: cand_params.confidence_level,
                cv_accuracy: accuracy,
                certified_share: share,
                relative_cost: costs[k],
                separation: separation[k],
                chosen: false,
            });
            runs.push(CandidateRun {
                pred,
                score,
                calibration: cal,
                rules_calibration: rules_cal,
            });
        }
        let cheapest = candidates
            .iter()
            .map(|c| c.relative_cost)
            .fold(f64::INFINITY, f64::min);
        if cheapest.is_finite() && cheapest > 0.0 {
            for c in &mut candidates {
                c.relative_cost /= cheapest;
            }
        }
        let chosen = preselected.unwrap_or_else(|| choose_candidate(&candidates, y_ev.len()));
        candidates[chosen].chosen = true;
        let CandidateRun {
            pred,
            score,
            calibration: cal,
            rules_calibration: rules_cal,
        } = runs.swap_remove(chosen);
        for (k, &i) in self.labeled.iter().enumerate() {
            items.predicted[i] = Some(pred[k]);
            items.confidence[i] = score[k];
            items.source[i] = Source::CrossValidation;
        }
        Ok(CertifiedRun {
            calibration: Some(cal),
            rules_calibration: rules_cal,
            spec: twins[chosen].spec,
            with_rules: twins[chosen].rules,
            chosen,
            candidates,
            n_folds,
            message: None,
        })
    }

    /// Too few labels or classes to cross-validate: the labeled items keep their own labels
    /// and nothing is certified.
    fn nothing_to_cross_validate(
        &self,
        n_folds: usize,
        n_present: usize,
        items: &mut Items,
    ) -> CertifiedRun {
        for &i in self.labeled {
            items.predicted[i] = self.labels[i];
            items.confidence[i] = 1.0;
            items.source[i] = Source::CrossValidation;
        }
        CertifiedRun {
            calibration: None,
            rules_calibration: None,
            spec: 0,
            with_rules: false,
            chosen: 0,
            candidates: Vec::new(),
            n_folds,
            message: Some(format!(
                "{} labeled items in {n_present} classes: cross-validation needs at least 2 of each",
                self.y.len()
            )),
        }
    }

    /// Calibrates out-of-fold predictions `pred` / `score` (one per labeled item) on the
    /// evidence positions `at`.
    fn calibrate_on_evidence(
        &self,
        pred: &[u32],
        score: &[f32],
        at: &[usize],
        params: &CalibrationParams,
    ) -> Result<Calibration> {
        let p: Vec<u32> = at.iter().map(|&k| pred[k]).collect();
        let s: Vec<f32> = at.iter().map(|&k| score[k]).collect();
        let y: Vec<u32> = at.iter().map(|&k| self.y[k]).collect();
        calibrate(&p, &s, &y, self.n_classes, params)
    }

    /// A rules twin is certified on two disjoint scopes at half its share each: the evidence a
    /// fired rule voted the prediction for (source `rules`), then the rest (source `model`),
    /// so each source's auto-labels meet the target on their own. Returns (model, rules).
    fn calibrate_rules_twin(
        &self,
        pred: &[u32],
        score: &[f32],
        params: &CalibrationParams,
    ) -> Result<(Calibration, Option<Calibration>)> {
        let Some((votes, _)) = self.rules else {
            let all = self.calibrate_on_evidence(pred, score, self.evidence_at, params)?;
            return Ok((all, None));
        };
        let half = CalibrationParams {
            confidence_level: 1.0 - (1.0 - params.confidence_level) / 2.0,
            ..params.clone()
        };
        let (by_rules, by_model): (Vec<usize>, Vec<usize>) = self
            .evidence_at
            .iter()
            .partition(|&&k| rule_route::voted_for(votes, self.labeled[k], pred[k]));
        let model = self.calibrate_on_evidence(pred, score, &by_model, &half)?;
        let rules = self.calibrate_on_evidence(pred, score, &by_rules, &half)?;
        Ok((model, Some(rules)))
    }

    /// Out-of-fold predictions and scores of every candidate: each model, then (with rules)
    /// each model combined with the rules, whose labeled items' combinations leave their own
    /// labels out of the rules' accuracies.
    fn candidate_oofs(
        &self,
        specs: &[ModelSpec],
        n_folds: usize,
    ) -> Result<(Vec<Twin>, Vec<OutOfFoldRows>)> {
        let score = self.params.score;
        let mut twins = Vec::new();
        let mut oofs = Vec::new();
        let mut combined = Vec::new();
        for (k, spec) in specs.iter().enumerate() {
            let mut proba = self.out_of_fold(spec, n_folds)?.proba;
            twins.push(Twin {
                spec: k,
                rules: false,
            });
            oofs.push(score.rows(&proba));
            if let Some((votes, record)) = self.rules {
                rule_route::combine_rows(&mut proba, self.labeled, votes, record, Some(self.y));
                combined.push((
                    Twin {
                        spec: k,
                        rules: true,
                    },
                    score.rows(&proba),
                ));
            }
        }
        for (twin, oof) in combined {
            twins.push(twin);
            oofs.push(oof);
        }
        Ok((twins, oofs))
    }

    /// The candidate chosen on the labels that are not evidence (the strategy's picks), and
    /// every candidate's [`separation`] there ([`choose_on_picks`]): the one whose score best
    /// separates its right predictions from its wrong ones, since that is how far a threshold
    /// scan can certify it; being more accurate on those hard items is not the same. Nothing is
    /// chosen when every label is evidence or fewer than [`PRESELECT_MIN`] are not.
    fn preselect(&self, oofs: &[OutOfFoldRows], costs: &[f64]) -> Preselection {
        let mut is_evidence = vec![false; self.y.len()];
        for &k in self.evidence_at {
            is_evidence[k] = true;
        }
        let others: Vec<usize> = (0..self.y.len()).filter(|&k| !is_evidence[k]).collect();
        if others.len() < PRESELECT_MIN || oofs.len() < 2 {
            return Preselection {
                chosen: None,
                separation: vec![None; oofs.len()],
            };
        }
        let right: Vec<Vec<bool>> = oofs
            .iter()
            .map(|(pred, _)| others.iter().map(|&k| pred[k] == self.y[k]).collect())
            .collect();
        let separation: Vec<Option<f64>> = oofs
            .iter()
            .zip(&right)
            .map(|((_, score), ok)| {
                let s: Vec<f32> = others.iter().map(|&k| score[k]).collect();
                separation(&s, ok)
            })
            .collect();
        let accuracy: Vec<f64> = right
            .iter()
            .map(|ok| ok.iter().filter(|&&r| r).count() as f64 / others.len() as f64)
            .collect();
        let chosen = choose_on_picks(&accuracy, &separation, costs, others.len());
        Preselection { chosen, separation }
    }

    /// Out-of-fold probabilities of `spec` on the labeled items.
    fn out_of_fold(&self, spec: &ModelSpec, n_folds: usize) -> Result<OutOfFold> {
        let p = self.params;
        if spec.is_transductive() {
            cross_validate_items(
                spec,
                self.rows,
                self.sg,
                self.labeled,
                self.y,
                self.n_classes,
                n_folds,
                p.seed,
            )
        } else {
            let xl = self.rows.gather(self.labeled)?;
            cross_validate(
                spec.build().as_ref(),
                xl.view(),
                self.y,
                self.n_classes,
                n_folds,
                p.seed,
            )
        }
    }

    /// The chosen model fitted on all labels predicts every unlabeled item (chunk by chunk,
    /// bounding memory); returns their uncertainty when the caller keeps it.
    fn predict_unlabeled(
        &self,
        spec: &ModelSpec,
        with_rules: bool,
        items: &mut Items,
    ) -> Result<Option<ItemUncertainty>> {
        let (n, n_classes) = (self.rows.n_rows(), self.n_classes);
        if self.y.is_empty() || self.unlabeled.is_empty() {
            return Ok(None);
        }
        let mut uncertainty = self
            .params
            .keep_uncertainty
            .then(|| ItemUncertainty::new(n, n_classes));
        let mut take = |chunk: &[usize], mut p: Array2<f32>| -> Result<()> {
            if let Some(u) = uncertainty.as_mut() {
                u.set_rows(chunk, p.view());
            }
            if let (true, Some((votes, record))) = (with_rules, self.rules) {
                rule_route::combine_rows(&mut p, chunk, votes, record, None);
            }
            let (pc, cc) = self.params.score.rows(&p);
            for (k, &i) in chunk.iter().enumerate() {
                items.predicted[i] = Some(pc[k]);
                items.confidence[i] = cc[k];
                items.source[i] = Source::Model;
            }
            Ok(())
        };
        self.predict_chunks(spec, self.labeled, self.y, self.unlabeled, &mut take)?;
        Ok(uncertainty)
    }

    /// `spec` fitted on the items `train` (classes `y`) predicts the items `query`, handed to
    /// `sink` chunk by chunk in query order. A transductive model predicts them in one go (its
    /// size is bounded by SPREAD_MAX_CELLS); the others are fitted once and predict chunk by
    /// chunk, so query × classes probabilities are never held at once.
    fn predict_chunks(
        &self,
        spec: &ModelSpec,
        train: &[usize],
        y: &[u32],
        query: &[usize],
        sink: &mut PredictSink<'_>,
    ) -> Result<()> {
        if spec.is_transductive() {
            let whole = predict_items(spec, self.rows, self.sg, train, y, query, self.n_classes)?;
            return rows::sink_in_chunks(query, &whole, sink);
        }
        let xt = self.rows.gather(train)?;
        self.rows
            .predict(spec, xt.view(), y, self.n_classes, query, sink)
    }

    /// Replaces the kept uncertainty with that of `spec` fitted on the labels that are not
    /// audits, on the unlabeled and the audited items. The certificate's out-of-fold record on
    /// an audit is exchangeable with the unlabeled pool only if the audit did not steer which
    /// items were labeled around it; picks ranked by a model that learned from it do.
    fn blind_to_audits(
        &self,
        spec: &ModelSpec,
        audited: &[bool],
        uncertainty: &mut ItemUncertainty,
    ) -> Result<()> {
        if !self.labeled.iter().any(|&i| audited[i]) {
            return Ok(());
        }
        let (train, y): (Vec<usize>, Vec<u32>) = self
            .labeled
            .iter()
            .zip(self.y)
            .filter(|(&i, _)| !audited[i])
            .map(|(&i, &c)| (i, c))
            .unzip();
        if train.is_empty() {
            return Ok(());
        }
        let query: Vec<usize> = (0..self.rows.n_rows())
            .filter(|&i| self.labels[i].is_none() || audited[i])
            .collect();
        let mut keep = |chunk: &[usize], p: Array2<f32>| -> Result<()> {
            uncertainty.set_rows(chunk, p.view());
            Ok(())
        };
        self.predict_chunks(spec, &train, &y, &query, &mut keep)
    }

    /// Per item, whether it is in a rules twin's `rules` scope: a fired rule voted its
    /// prediction (all false unless the kept candidate is a rules twin).
    fn rule_scope(&self, run: &CertifiedRun, items: &Items) -> Vec<bool> {
        let n = self.rows.n_rows();
        match (run.with_rules, self.rules) {
            (true, Some((votes, _))) => (0..n)
                .map(|i| items.predicted[i].is_some_and(|c| rule_route::voted_for(votes, i, c)))
                .collect(),
            _ => vec![false; n],
        }
    }

    /// Applies the kept candidate's thresholds (a rules twin's two scopes are disjoint: items
    /// in `rule_scope`, and the rest); returns the threshold applied per class in the `model`
    /// scope.
    fn apply_certified(
        &self,
        run: &CertifiedRun,
        rule_scope: &[bool],
        items: &mut Items,
    ) -> Vec<Option<f32>> {
        let applied = match &run.calibration {
            Some(cal) => self.apply_thresholds(cal, &|i| !rule_scope[i], items),
            None => vec![None; self.n_classes],
        };
        if let Some(cal) = &run.rules_calibration {
            self.apply_thresholds(cal, &|i| rule_scope[i], items);
        }
        applied
    }

    /// Auto-labels on which a fired rule voted for the label get source `rules` (when the
    /// chosen candidate combines the rules); the rules' part of the summary.
    fn credit_rules(
        &self,
        run: &CertifiedRun,
        rule_scope: &[bool],
        items: &mut Items,
    ) -> Option<RulesInRound> {
        let (votes, _) = self.rules?;
        let with_rules = run.with_rules;
        let mut n_auto = 0;
        if with_rules {
            for &i in self.unlabeled {
                if items.route[i] == Route::Auto && rule_scope[i] {
                    items.source[i] = Source::Rules;
                    n_auto += 1;
                }
            }
        }
        let items_fired = (0..votes.items())
            .filter(|&i| votes.fired_on(i).next().is_some())
            .count();
        Some(RulesInRound {
            rules: votes.rules(),
            items_fired,
            chosen: with_rules,
            n_auto,
            certified: run
                .rules_calibration
                .as_ref()
                .is_some_and(Calibration::certified),
            shared: run
                .rules_calibration
                .as_ref()
                .and_then(|c| c.fallback.clone()),
        })
    }

    /// Copies labels from agreeing labeled near-duplicates when the route's leave-one-out
    /// record certifies it at its share of the error budget.
    fn propagate_duplicates(
        &self,
        graph: &NeighborGraph,
        dup: Option<&DupInfo>,
        budget: &ErrorBudget,
        items: &mut Items,
    ) -> Result<DuplicateSummary> {
        let n = self.rows.n_rows();
        let params = self.params;
        let target = params.calibration.target_precision;
        let (dup_pred, loo_n, loo_correct) = match dup {
            Some(d) => duplicate_candidates(
                self.rows,
                self.labels,
                graph,
                d,
                params.propagation_threshold,
            )?,
            None => (vec![None; n], 0, 0),
        };
        // The route's own share of the error rate, with the same one-error floor as the models'
        // scans: a perfect leave-one-out record is not taken at face value.
        let dup_hits = loo_correct.min(loo_n.saturating_sub(1));
        let dup_lb = clopper_pearson_lower(dup_hits as u64, loo_n as u64, 1.0 - budget.duplicates);
        let enabled = dup.is_some() && (!params.certify_duplicates || dup_lb >= target);
        let mut n_propagated = 0usize;
        if enabled {
            for &i in self.unlabeled {
                if let Some(c) = dup_pred[i] {
                    items.predicted[i] = Some(c);
                    items.confidence[i] = 1.0;
                    items.route[i] = Route::Duplicate;
                    items.source[i] = Source::Duplicate;
                    n_propagated += 1;
                }
            }
        }
        Ok(DuplicateSummary {
            propagation_threshold: params.propagation_threshold,
            enabled,
            loo_n,
            loo_correct,
            precision: (loo_n > 0).then(|| loo_correct as f64 / loo_n as f64),
            lower_bound: dup_lb,
            n_propagated,
        })
    }

    /// Routes to auto the unlabeled items each scope's certified threshold covers (each class
    /// with its own threshold, plus one shared scope for the rest); returns the threshold
    /// applied per class.
    fn apply_thresholds(
        &self,
        cal: &Calibration,
        in_scope: &dyn Fn(usize) -> bool,
        items: &mut Items,
    ) -> Vec<Option<f32>> {
        let n_classes = self.n_classes;
        let mut applied: Vec<Option<f32>> = vec![None; n_classes];
        let scope_of = |c: u32| -> usize {
            match cal.per_class.get(c as usize) {
                Some(Some(_)) => c as usize,
                _ => n_classes,
            }
        };
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_classes + 1];
        for &i in self.unlabeled.iter().filter(|&&i| in_scope(i)) {
            if let Some(c) = items.predicted[i] {
                members[scope_of(c)].push(i);
            }
        }
        for (scope, scope_items) in members.iter_mut().enumerate() {
            let choice = if scope < n_classes {
                cal.per_class[scope].as_ref()
            } else {
                cal.fallback.as_ref()
            };
            let Some(choice) = choice else { continue };
            let applied_t = self.route_scope(choice, scope_items, items);
            if scope < n_classes {
                applied[scope] = applied_t;
            } else {
                for (c, a) in applied.iter_mut().enumerate() {
                    if scope_of(c as u32) == n_classes {
                        *a = applied_t;
                    }
                }
            }
        }
        applied
    }

    /// One scope: its items from the most confident down, as many as the threshold transfer
    /// allows and no lower than the certified threshold; returns the threshold applied.
    fn route_scope(
        &self,
        choice: &ThresholdChoice,
        scope_items: &mut [usize],
        items: &mut Items,
    ) -> Option<f32> {
        let confidence = &items.confidence;
        let take = scope_take(choice, scope_items, |i| confidence[i], self.params.transfer);
        for &i in &scope_items[..take] {
            if items.route[i] == Route::Human {
                items.route[i] = Route::Auto;
            }
        }
        take.checked_sub(1)
            .map(|last| items.confidence[scope_items[last]].max(choice.threshold))
    }
}

/// How many of a scope's items a certified `choice` takes, once sorted here from the highest
/// `score` down: as many as the threshold transfer allows and none below the certified
/// threshold.
fn scope_take(
    choice: &ThresholdChoice,
    scope_items: &mut [usize],
    score: impl Fn(usize) -> f32,
    transfer: ThresholdTransfer,
) -> usize {
    scope_items.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
    let cap = match transfer {
        ThresholdTransfer::Confidence => scope_items.len(),
        // Same share of the scope as cross-validation certified (rounded down).
        ThresholdTransfer::Rank => (choice.n_above as f64 / choice.n_scope.max(1) as f64
            * scope_items.len() as f64)
            .floor() as usize,
    };
    scope_items
        .iter()
        .take(cap)
        .take_while(|&&i| score(i) >= choice.threshold)
        .count()
}

impl RouteCounts {
    /// Items per route.
    fn of(route: &[Route]) -> RouteCounts {
        let mut counts = RouteCounts::default();
        for r in route {
            match r {
                Route::Labeled => counts.labeled += 1,
                Route::Auto => counts.auto += 1,
                Route::Duplicate => counts.duplicate += 1,
                Route::Human => counts.human += 1,
            }
        }
        counts
    }
}

/// Per class: labels, thresholds (certified and applied) and how much of it was auto-labeled.
fn class_summaries(
    job: &Job<'_, '_>,
    calibration: Option<&Calibration>,
    applied: &[Option<f32>],
    items: &Items,
) -> Vec<ClassSummary> {
    let label_counts = class_counts(job.y, job.n_classes);
    let mut classes: Vec<ClassSummary> = (0..job.n_classes)
        .map(|c| {
            let own = calibration.and_then(|cal| cal.per_class.get(c).cloned().flatten());
            ClassSummary {
                class: c as u32,
                n_labeled: label_counts[c],
                cv_threshold: calibration.and_then(|cal| cal.threshold_for(c as u32)),
                threshold: applied[c],
                threshold_source: if own.is_some() { "class" } else { "shared" }.into(),
                own,
                n_predicted: 0,
                n_auto: 0,
                n_duplicate: 0,
                coverage: 0.0,
            }
        })
        .collect();
    for &i in job.unlabeled {
        if let Some(c) = items.predicted[i] {
            let s = &mut classes[c as usize];
            s.n_predicted += 1;
            match items.route[i] {
                Route::Auto => s.n_auto += 1,
                Route::Duplicate => s.n_duplicate += 1,
                _ => {}
            }
        }
    }
    for s in &mut classes {
        if s.n_predicted > 0 {
            s.coverage = (s.n_auto + s.n_duplicate) as f64 / s.n_predicted as f64;
        }
    }
    classes
}

/// Why nothing is auto-labeled by the model, and roughly what it would take.
fn not_certified_message(
    counts: LabelCounts,
    target: f64,
    level: f64,
    labels_needed: Option<usize>,
) -> String {
    let LabelCounts { labels, evidence } = counts;
    let what = if evidence < labels {
        format!(
            "the {evidence} labels drawn at random (audits, and labels the history has no pick \
             for) of the {labels}"
        )
    } else {
        format!("the {labels} labels")
    };
    let needed = match labels_needed {
        Some(k) if evidence < labels => format!(
            " (roughly {k} labels in total would be needed: {} more audits; the strategy's \
             picks do not count as evidence)",
            k.saturating_sub(labels)
        ),
        Some(k) => format!(" (roughly {k} labels in total would be needed)"),
        None => " (the model's cross-validated precision is below the target at every \
                 threshold; more labels alone may not help)"
            .into(),
    };
    format!(
        "{what} cannot certify precision {target} at {:.0}% confidence; nothing is auto-labeled \
         by the model{needed}",
        level * 100.0
    )
}

/// Probabilities for the items `query` (rows of `rows`) of `spec` trained on the items
/// `train` with labels `y_train`: inductive members are fitted on those rows and predict the
/// query rows; label spreading runs over the whole graph with only `train` labeled; ensembles
/// average their members.
#[allow(clippy::too_many_arguments)]
pub fn predict_items(
    spec: &ModelSpec,
    rows: &dyn PoolRows,
    graph: Option<&SpreadGraph>,
    train: &[usize],
    y_train: &[u32],
    query: &[usize],
    n_classes: usize,
) -> Result<Array2<f32>> {
    match spec {
        ModelSpec::Spread(s) => {
            let g = graph.ok_or_else(|| {
                Error::Internal("label spreading needs the neighbour graph".into())
            })?;
            Ok(s.spread(g, train, y_train, n_classes)?
                .select(Axis(0), query))
        }
        ModelSpec::Ensemble(ms) => {
            if ms.is_empty() {
                return Err(Error::Usage("an ensemble needs at least one member".into()));
            }
            let mut acc = Array2::<f32>::zeros((query.len(), n_classes));
            for m in ms {
                acc += &predict_items(m, rows, graph, train, y_train, query, n_classes)?;
            }
            acc /= ms.len() as f32;
            Ok(acc)
        }
        ModelSpec::Select(_) => Err(Error::Usage(
            "a selection of models cannot be nested in another model".into(),
        )),
        other => {
            let xt = rows.gather(train)?;
            let mut out = Array2::<f32>::zeros((query.len(), n_classes));
            let mut at = 0usize;
            let mut put = |chunk: &[usize], p: Array2<f32>| -> Result<()> {
                let end = at + chunk.len();
                out.slice_mut(ndarray::s![at..end, ..]).assign(&p);
                at = end;
                Ok(())
            };
            rows.predict(other, xt.view(), y_train, n_classes, query, &mut put)?;
            Ok(out)
        }
    }
}

/// [`cross_validate`] for a spec that holds a transductive model: the same stratified folds,
/// each predicted by [`predict_items`] trained on the other folds' labels (label spreading
/// walks the whole graph with the fold's labels hidden).
#[allow(clippy::too_many_arguments)]
pub fn cross_validate_items(
    spec: &ModelSpec,
    rows: &dyn PoolRows,
    graph: Option<&SpreadGraph>,
    labeled: &[usize],
    y: &[u32],
    n_classes: usize,
    n_folds: usize,
    seed: u64,
) -> Result<OutOfFold> {
    cross_validate_with(y, n_classes, n_folds, seed, false, |train, test| {
        let train_items: Vec<usize> = train.iter().map(|&i| labeled[i]).collect();
        let train_y: Vec<u32> = train.iter().map(|&i| y[i]).collect();
        let test_items: Vec<usize> = test.iter().map(|&i| labeled[i]).collect();
        predict_items(
            spec,
            rows,
            graph,
            &train_items,
            &train_y,
            &test_items,
            n_classes,
        )
    })
}

/// Which candidate labels the round: the one certifying the largest share of the labeled items;
/// among candidates that tie on it — certified counts within one labeled item (the resolution
/// of the scan) and cross-validated accuracies within one standard error of the best
/// (`√(a(1−a)/n)`: 1.4 points with 600 labels, differences no choice should rest on) — the
/// cheapest to predict with ([`CandidateSummary::relative_cost`]); then the more accurate, the
/// first listed. Why cost: at 1,000,000 rows × 10,000 labels the kNN vote costs ~10× logistic
/// regression for the same certified coverage.
fn choose_candidate(c: &[CandidateSummary], n_labeled: usize) -> usize {
    if c.is_empty() {
        return 0;
    }
    let n = n_labeled.max(1) as f64;
    let count = |k: usize| (c[k].certified_share * n).round();
    let top = (0..c.len()).map(count).fold(f64::NEG_INFINITY, f64::max);
    let tied: Vec<usize> = (0..c.len()).filter(|&k| top - count(k) <= 1.0).collect();
    let acc = tied
        .iter()
        .map(|&k| c[k].cv_accuracy)
        .fold(f64::NEG_INFINITY, f64::max);
    let se = (acc.clamp(0.0, 1.0) * (1.0 - acc.clamp(0.0, 1.0)) / n).sqrt();
    let mut best: Option<usize> = None;
    for &k in &tied {
        if acc - c[k].cv_accuracy > se + 1e-12 {
            continue;
        }
        best = Some(match best {
            None => k,
            Some(b) => {
                let (cb, ck) = (&c[b], &c[k]);
                let better = ck
                    .relative_cost
                    .total_cmp(&cb.relative_cost)
                    .reverse()
                    .then(ck.cv_accuracy.total_cmp(&cb.cv_accuracy))
                    .then(ck.certified_share.total_cmp(&cb.certified_share));
                if better == std::cmp::Ordering::Greater {
                    k
                } else {
                    b
                }
            }
        });
    }
    best.unwrap_or(tied[0])
}

/// Share of the labeled items whose out-of-fold prediction clears its scope's certified
/// threshold: what a candidate model can vouch for.
fn certified_share(cal: &Calibration, n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    // Scopes are disjoint: each class with its own threshold, and the shared fallback scope.
    let own: usize = cal.per_class.iter().flatten().map(|t| t.n_above).sum();
    let shared = cal.fallback.as_ref().map_or(0, |t| t.n_above);
    (own + shared) as f64 / n as f64
}

/// For every item, the label its labeled near-duplicates would give it (all labeled members of
/// its group other than itself agree, and one of them is within `threshold` cosine), plus the
/// leave-one-out record of that rule on labeled items: (predictions, trials, correct).
fn duplicate_candidates(
    rows: &dyn PoolRows,
    labels: &[Option<u32>],
    graph: &NeighborGraph,
    dup: &DupInfo,
    threshold: f32,
) -> Result<(Vec<Option<u32>>, usize, usize)> {
    // Labeled members per group, in item order.
    let mut members: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, &g) in dup.group.iter().enumerate() {
        if g >= 0 && labels[i].is_some() {
            members.entry(g).or_default().push(i);
        }
    }
    let use_graph = !graph.is_empty();
    // The class the other labeled members agree on, and whether a graph edge already links the
    // item to one of them within `threshold`; else its dots with them decide.
    let decided: Vec<Option<(u32, bool)>> = (0..rows.n_rows())
        .into_par_iter()
        .map(|i| {
            let g = dup.group[i];
            let m = members.get(&g)?;
            // The others' labels must all agree.
            let mut others = m.iter().copied().filter(|&j| j != i);
            let first = others.next()?;
            let c = labels[first]?;
            if m.iter().any(|&j| j != i && labels[j] != Some(c)) {
                return None;
            }
            let in_graph = use_graph && {
                let (nb, cs) = graph.row(i);
                nb.iter().zip(cs).any(|(&j, &cs)| {
                    let j = j as usize;
                    cs >= threshold && j != i && dup.group.get(j) == Some(&g) && labels[j].is_some()
                })
            };
            Some((c, in_graph))
        })
        .collect();
    let mates = |i: usize| members[&dup.group[i]].iter().copied().take(MAX_DUP_DOTS);
    let mut needed: Vec<usize> = Vec::new();
    for (i, d) in decided.iter().enumerate() {
        if let Some((_, false)) = d {
            needed.push(i);
            needed.extend(mates(i));
        }
    }
    let lookup = RowLookup::new(rows, needed)?;
    let pred: Vec<Option<u32>> = decided
        .par_iter()
        .enumerate()
        .map(|(i, d)| {
            let (c, in_graph) = (*d)?;
            let close = |j: usize| j != i && lookup.row(i).dot(&lookup.row(j)) >= threshold;
            (in_graph || mates(i).any(close)).then_some(c)
        })
        .collect();
    let mut loo_n = 0;
    let mut loo_correct = 0;
    for (i, p) in pred.iter().enumerate() {
        if let (Some(p), Some(t)) = (p, labels[i]) {
            loo_n += 1;
            loo_correct += (*p == t) as usize;
        }
    }
    Ok((pred, loo_n, loo_correct))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cv::stratified_folds;
    use crate::model::tests::clusters;
    use crate::model::{KnnVote, Logistic, NearestCentroid};
    use crate::round::rarity::tests::exact_graph;
    use ndarray::Array2;

    fn empty_graph() -> NeighborGraph {
        NeighborGraph {
            k: 0,
            neighbors: vec![],
            cosines: vec![],
        }
    }

    /// The labels of `y` kept where `keep(i)`, hidden elsewhere.
    fn labels_where(y: &[u32], keep: impl Fn(usize) -> bool) -> Vec<Option<u32>> {
        y.iter()
            .enumerate()
            .map(|(i, &c)| keep(i).then_some(c))
            .collect()
    }

    /// A round with the default parameters, no graph and no duplicate groups.
    fn run_default(
        x: &Array2<f32>,
        labels: &[Option<u32>],
        n_classes: usize,
    ) -> Result<AutolabelResult> {
        autolabel(
            x.view(),
            labels,
            n_classes,
            &empty_graph(),
            None,
            &AutolabelParams::default(),
        )
    }

    #[test]
    fn a_knn_vote_standing_in_for_spreading_gets_the_workload_search() {
        use crate::model::KnnSearch;
        // No graph (or too large to spread over): the default's neighbour candidate is a kNN
        // vote, and at 1M rows × 10k labels it, and the vote averaged with logistic regression,
        // must be the inverted file, not "decide per call".
        let spec = round_model(
            &ModelSpec::default(),
            &empty_graph(),
            1_010_000,
            50,
            5,
            1_000_000,
            10_000,
        );
        let mut searches = Vec::new();
        fn walk(s: &ModelSpec, out: &mut Vec<KnnSearch>) {
            match s {
                ModelSpec::Knn(KnnVote { search, .. }) => out.push(*search),
                ModelSpec::Ensemble(ms) | ModelSpec::Select(ms) => {
                    ms.iter().for_each(|m| walk(m, out))
                }
                _ => {}
            }
        }
        walk(&spec, &mut searches);
        assert_eq!(searches, vec![KnnSearch::InvertedFile; 2]);
        assert!(!spec.is_transductive());
    }

    #[test]
    fn certifies_easy_data_and_meets_target() {
        let (x, y) = clusters(4, 400, 32, 0.5, 11);
        let labels = labels_where(&y, |i| i % 4 == 0 || i % 7 == 0);
        let r = run_default(&x, &labels, 4).unwrap();
        assert!(r.summary.certified, "{:?}", r.summary.message);
        let auto: Vec<usize> = (0..y.len())
            .filter(|&i| r.route[i] == Route::Auto)
            .collect();
        assert!(!auto.is_empty());
        let right = auto
            .iter()
            .filter(|&&i| r.predicted[i] == Some(y[i]))
            .count();
        assert!(right as f64 / auto.len() as f64 >= 0.95);
        assert_eq!(r.summary.counts.labeled, labels.iter().flatten().count());
    }

    #[test]
    fn default_model_reports_every_candidate_and_keeps_one() {
        let (x, y) = clusters(4, 300, 32, 0.5, 16);
        let labels = labels_where(&y, |i| i % 3 == 0);
        let r = run_default(&x, &labels, 4).unwrap();
        let c = &r.summary.candidates;
        assert_eq!(c.len(), 2);
        assert_eq!(c.iter().filter(|c| c.chosen).count(), 1);
        let chosen = c.iter().find(|c| c.chosen).unwrap();
        assert_eq!(chosen.model, r.summary.model);
        // Each candidate is certified at half the error rate.
        assert!(c.iter().all(|c| (c.confidence_level - 0.975).abs() < 1e-12));
        assert!(c
            .iter()
            .all(|o| o.certified_share <= chosen.certified_share));
        assert_eq!(r.summary.score, Score::Margin);
    }

    #[test]
    fn the_strategy_picks_choose_the_candidate_that_separates_right_from_wrong_best() {
        let costs = [1.0, 2.0];
        // The less accurate candidate whose score separates right from wrong better is chosen.
        let chosen = choose_on_picks(&[0.86, 0.80], &[Some(0.80), Some(0.84)], &costs, 700);
        assert_eq!(chosen, Some(1));
        // Equal separation: the cheaper.
        let chosen = choose_on_picks(&[0.80, 0.86], &[Some(0.84), Some(0.84)], &costs, 700);
        assert_eq!(chosen, Some(0));
        // No separation anywhere: the most accurate, the cheapest within one standard error
        // (√(0.86·0.14/700) ≈ 0.013).
        assert_eq!(
            choose_on_picks(&[0.85, 0.86], &[None, None], &costs, 700),
            Some(0)
        );
        assert_eq!(
            choose_on_picks(&[0.80, 0.86], &[None, None], &costs, 700),
            Some(1)
        );
    }

    #[test]
    fn ties_go_to_the_cheaper_candidate() {
        let cand = |model: &str, acc: f64, share: f64, cost: f64| CandidateSummary {
            model: model.into(),
            confidence_level: 0.975,
            cv_accuracy: acc,
            certified_share: share,
            relative_cost: cost,
            separation: None,
            chosen: false,
        };
        // 600 labels: the dear kNN vote is listed first and slightly more accurate, but both
        // certify 300 items (or 300 vs 301, within the scan's resolution): the cheaper wins.
        let c = [
            cand("knn", 0.870, 0.5, 10.0),
            cand("logistic", 0.865, 0.5, 1.0),
        ];
        assert_eq!(choose_candidate(&c, 600), 1);
        let c = [
            cand("knn", 0.870, 301.0 / 600.0, 10.0),
            cand("logistic", 0.865, 0.5, 1.0),
        ];
        assert_eq!(choose_candidate(&c, 600), 1);
        // Nothing certified by either: the same rule (no coverage is lost by the cheaper).
        let c = [
            cand("knn", 0.870, 0.0, 10.0),
            cand("logistic", 0.860, 0.0, 1.0),
        ];
        assert_eq!(choose_candidate(&c, 600), 1);
        // A clearly larger certified share wins whatever it costs.
        let c = [
            cand("knn", 0.870, 310.0 / 600.0, 10.0),
            cand("logistic", 0.865, 0.5, 1.0),
        ];
        assert_eq!(choose_candidate(&c, 600), 0);
        // A tie on share but a clearly better accuracy (beyond one standard error, 1.4 points
        // here): accuracy decides, as before.
        let c = [
            cand("knn", 0.900, 0.0, 10.0),
            cand("logistic", 0.850, 0.0, 1.0),
        ];
        assert_eq!(choose_candidate(&c, 600), 0);
        // Equal cost and accuracy: the first listed.
        let c = [cand("a", 0.9, 0.5, 1.0), cand("b", 0.9, 0.5, 1.0)];
        assert_eq!(choose_candidate(&c, 600), 0);
    }

    #[test]
    fn candidate_costs_are_relative_to_the_cheapest() {
        let (x, y) = clusters(4, 300, 32, 0.5, 16);
        let labels = labels_where(&y, |i| i % 3 == 0);
        let params = AutolabelParams {
            model: ModelSpec::Select(vec![
                ModelSpec::Logistic(Logistic::default()),
                ModelSpec::Ensemble(vec![
                    ModelSpec::Knn(KnnVote::default()),
                    ModelSpec::Centroid(NearestCentroid::default()),
                ]),
            ]),
            ..Default::default()
        };
        let r = autolabel(x.view(), &labels, 4, &empty_graph(), None, &params).unwrap();
        let c = &r.summary.candidates;
        // Logistic regression (32 × 4 per row) is the cheapest; the kNN vote + centroid
        // compares 400 labeled items per row.
        assert_eq!(c[0].relative_cost, 1.0);
        assert!(c[1].relative_cost > 3.0, "{c:?}");
    }

    #[test]
    fn default_spreads_over_the_graph_and_falls_back_without_it() {
        let (x, y) = clusters(4, 300, 32, 0.5, 17);
        let labels = labels_where(&y, |i| i % 3 == 0);
        let g = exact_graph(x.view(), 10);
        let params = AutolabelParams {
            keep_uncertainty: true,
            ..Default::default()
        };
        let r = autolabel(x.view(), &labels, 4, &g, None, &params).unwrap();
        let names: Vec<&str> = r
            .summary
            .candidates
            .iter()
            .map(|c| c.model.as_str())
            .collect();
        assert!(names[1].contains("spread"), "{names:?}");
        assert!(r.summary.certified, "{:?}", r.summary.message);
        let auto: Vec<usize> = (0..y.len())
            .filter(|&i| r.route[i] == Route::Auto)
            .collect();
        let right = auto
            .iter()
            .filter(|&&i| r.predicted[i] == Some(y[i]))
            .count();
        assert!(!auto.is_empty() && right as f64 / auto.len() as f64 >= 0.95);
        // The chosen model's class is kept for every unlabeled item.
        let kept = r.uncertainty.as_ref().unwrap();
        for i in (0..y.len()).filter(|&i| labels[i].is_none()) {
            assert_eq!(Some(kept.class()[i]), r.predicted[i]);
        }
        // The same run is deterministic across thread counts.
        let again = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| autolabel(x.view(), &labels, 4, &g, None, &params).unwrap());
        assert_eq!(again.summary, r.summary);
        assert_eq!(again.route, r.route);
        // Without a graph the kNN vote stands in for label spreading.
        let r = autolabel(x.view(), &labels, 4, &empty_graph(), None, &params).unwrap();
        let names: Vec<&str> = r
            .summary
            .candidates
            .iter()
            .map(|c| c.model.as_str())
            .collect();
        assert!(
            names[1].contains("knn") && !names[1].contains("spread"),
            "{names:?}"
        );
    }

    #[test]
    fn transductive_cross_validation_never_sees_the_held_out_label() {
        // An item's out-of-fold row is the spread of the *other* folds' labels only (bit for
        // bit), while a spread that did hold its (flipped) label would read differently.
        let (x, y) = clusters(3, 60, 16, 0.8, 18);
        let sg = SpreadGraph::new(&exact_graph(x.view(), 8));
        let labeled: Vec<usize> = (0..y.len()).filter(|i| i % 2 == 0).collect();
        let yl: Vec<u32> = labeled.iter().map(|&i| y[i]).collect();
        let ModelSpec::Select(c) = ModelSpec::default() else {
            panic!("the default is a selection")
        };
        let spread = &c[1];
        assert!(spread.is_transductive());
        let oof = cross_validate_items(spread, &x, Some(&sg), &labeled, &yl, 3, 5, 7).unwrap();
        let fold = stratified_folds(&yl, 5, 7);
        let k = 10;
        let others: Vec<usize> = (0..yl.len()).filter(|&j| fold[j] != fold[k]).collect();
        let items: Vec<usize> = others.iter().map(|&j| labeled[j]).collect();
        let ys: Vec<u32> = others.iter().map(|&j| yl[j]).collect();
        let q = [labeled[k]];
        let own = predict_items(spread, &x, Some(&sg), &items, &ys, &q, 3).unwrap();
        assert!(oof
            .proba
            .row(k)
            .iter()
            .zip(own.row(0))
            .all(|(p, q)| p.to_bits() == q.to_bits()));
        let mut with_it = items.clone();
        with_it.push(labeled[k]);
        let mut ys_it = ys.clone();
        ys_it.push((yl[k] + 1) % 3);
        let leak = predict_items(spread, &x, Some(&sg), &with_it, &ys_it, &q, 3).unwrap();
        assert_ne!(leak.row(0), own.row(0));
    }

    #[test]
    fn refuses_with_too_few_labels() {
        let (x, y) = clusters(4, 100, 32, 0.5, 12);
        let labels = labels_where(&y, |i| i % 20 == 0);
        let r = run_default(&x, &labels, 4).unwrap();
        assert!(!r.summary.certified);
        assert_eq!(r.summary.counts.auto, 0);
        assert!(r.summary.labels_needed.is_some() || r.summary.message.is_some());
        // No labels at all: nothing breaks, everything goes to humans.
        let none = vec![None; y.len()];
        let r = run_default(&x, &none, 4).unwrap();
        assert_eq!(r.summary.counts.human, y.len());
    }

    #[test]
    fn audit_labels_never_reach_the_uncertainty_selection_ranks_by() {
        // The batch after an audit must be the batch without it: flipping every audited label
        // leaves the kept uncertainty of the unlabeled items as it was (the auto-labels
        // may change: audits are the certificate's evidence).
        let (x, y) = clusters(4, 200, 16, 0.8, 21);
        let labels = labels_where(&y, |i| i % 5 == 0);
        let audited: Vec<bool> = (0..y.len()).map(|i| i % 20 == 0).collect();
        let flipped: Vec<Option<u32>> = labels
            .iter()
            .zip(&audited)
            .map(|(l, &a)| l.map(|c| if a { (c + 1) % 4 } else { c }))
            .collect();
        let params = AutolabelParams {
            model: ModelSpec::Centroid(Default::default()),
            keep_uncertainty: true,
            ..AutolabelParams::default()
        };
        let run = |labels: &[Option<u32>], audited: Option<&[bool]>| {
            let input = AutolabelInput {
                rows: &x,
                labels,
                n_classes: 4,
                graph: &empty_graph(),
                dup: None,
                evidence: audited,
                audited,
                rules: None,
            };
            autolabel_round(&input, &params)
                .unwrap()
                .uncertainty
                .unwrap()
        };
        let of = |u: &ItemUncertainty, items: &[usize]| -> Vec<(u32, f32, f32)> {
            let (margin, entropy) = (u.scores(false), u.scores(true));
            items
                .iter()
                .map(|&i| (u.class()[i], margin[i], entropy[i]))
                .collect()
        };
        let unlabeled: Vec<usize> = (0..y.len()).filter(|&i| labels[i].is_none()).collect();
        let blind = run(&labels, Some(&audited));
        let flipped_blind = run(&flipped, Some(&audited));
        assert_eq!(of(&blind, &unlabeled), of(&flipped_blind, &unlabeled));
        // Without the flags the audits train the ranking model, and the flip shows.
        let (seen, seen_flipped) = (run(&labels, None), run(&flipped, None));
        assert_ne!(of(&seen, &unlabeled), of(&seen_flipped, &unlabeled));
        // Audited items are ranked as unlabeled: what a round that never had their labels
        // predicts for them.
        let audits: Vec<usize> = (0..y.len()).filter(|&i| audited[i]).collect();
        let without: Vec<Option<u32>> = labels
            .iter()
            .zip(&audited)
            .map(|(&l, &a)| if a { None } else { l })
            .collect();
        assert_eq!(of(&blind, &audits), of(&run(&without, None), &audits));
    }

    #[test]
    fn labels_needed_counts_the_evidence_still_missing() {
        // 400 labels, 50 of them audits: what is missing is audits (the strategy's picks do not
        // count), so the estimate is the 350 picks plus the evidence a perfect record needs.
        let counts = LabelCounts {
            labels: 400,
            evidence: 50,
        };
        let (certified, needed, message) = outcome(None, None, counts, 0.95, 0.95);
        let evidence_needed = min_count_for(0.95, 0.95);
        assert!(!certified);
        assert_eq!(needed, Some(350 + evidence_needed));
        let message = message.unwrap();
        assert!(
            message.contains("the 50 labels drawn at random"),
            "{message}"
        );
        assert!(
            message.contains(&format!("{} more audits", evidence_needed - 50)),
            "{message}"
        );
        // Without a history every label is evidence, and the estimate is a plain count.
        let all = LabelCounts {
            labels: 40,
            evidence: 40,
        };
        let (_, needed, message) = outcome(None, None, all, 0.95, 0.95);
        assert_eq!(needed, Some(evidence_needed));
        assert!(!message.unwrap().contains("audits"));
    }

    #[test]
    fn duplicates_inherit_agreeing_labels() {
        // 200 pairs of near-identical items; in the first 100 pairs one member is labeled.
        let (base, yb) = clusters(2, 100, 16, 1.0, 13);
        let n = 400;
        let mut x = Array2::<f32>::zeros((n, 16));
        let mut labels = vec![None; n];
        let mut group = vec![-1i64; n];
        for p in 0..200 {
            let src = p % 200;
            for k in 0..2 {
                let i = 2 * p + k;
                let mut r = base.row(src).to_owned();
                r[k] += 1e-3;
                let norm = r.dot(&r).sqrt();
                x.row_mut(i).assign(&(r / norm));
                group[i] = p as i64;
            }
            // Both members labeled in pairs < 100 (LOO evidence), none after.
            if p < 100 {
                labels[2 * p] = Some(yb[src]);
                labels[2 * p + 1] = Some(yb[src]);
            }
        }
        // Pair 150 gets one labeled member so its partner can inherit it.
        labels[300] = Some(yb[150]);
        let dup = DupInfo { group };
        let params = AutolabelParams {
            model: ModelSpec::Centroid(Default::default()),
            ..Default::default()
        };
        let r = autolabel(x.view(), &labels, 2, &empty_graph(), Some(&dup), &params).unwrap();
        assert!(r.summary.duplicate.enabled, "{:?}", r.summary.duplicate);
        assert_eq!(r.summary.duplicate.loo_n, 200);
        assert_eq!(r.route[301], Route::Duplicate);
        assert_eq!(r.predicted[301], Some(yb[150]));
        assert_eq!(r.summary.counts.duplicate, 1);
        // Disagreeing labeled members: no propagation.
        labels[300] = Some(1 - yb[150]);
        labels[299] = None;
        let mut group = dup.group.clone();
        group[299] = 150;
        labels[299] = Some(yb[150]);
        let r = autolabel(
            x.view(),
            &labels,
            2,
            &empty_graph(),
            Some(&DupInfo { group }),
            &params,
        )
        .unwrap();
        assert_ne!(r.route[301], Route::Duplicate);
    }

    #[test]
    fn deterministic_across_thread_counts() {
        let (x, y) = clusters(5, 120, 24, 0.9, 14);
        let labels = labels_where(&y, |i| i % 3 == 0);
        let run = |t: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| run_default(&x, &labels, 5).unwrap())
        };
        let (a, b) = (run(1), run(4));
        assert_eq!(a.predicted, b.predicted);
        assert_eq!(a.route, b.route);
        assert!(a
            .confidence
            .iter()
            .zip(&b.confidence)
            .all(|(p, q)| p.to_bits() == q.to_bits()));
        assert_eq!(a.summary, b.summary);
    }

    #[test]
    fn rejects_mismatched_inputs() {
        let (x, _) = clusters(2, 5, 8, 0.1, 15);
        let labels = vec![None; 3];
        assert!(run_default(&x, &labels, 2).is_err());
        let labels = vec![Some(5u32); 10];
        assert!(run_default(&x, &labels, 2).is_err());
    }
}
