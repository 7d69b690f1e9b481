//! Labeling-budget estimates: what is left now, and what more labels would buy.
//!
//! "Now" is counting: items, duplicates collapsed, labeled, auto-labelable, left for humans, and
//! the hours and cost of those. The projection is a learning curve: the labeled items are
//! subsampled in nested, growing subsets inside cross-validation folds; each subset's model is
//! scored on a uniform sample of the *unlabeled pool*, its accuracy there estimated by average
//! thresholded confidence (the held-out labeled items only calibrate the confidence scale:
//! after active rounds they are the hard items, and their own accuracy understated the pool's
//! by 0.15–0.35, which made the projection 4–14× too high). An inverse power law
//! `y(n) = a − b·n^(−c)` (the form learning curves follow in the sample-size literature, e.g.
//! Figueroa et al. 2012) is fitted past the class-discovery phase (subsets missing classes climb
//! by finding them, which labeling beyond now does not repeat); bootstrap refits over the
//! folds' replicate estimates give the interval. The interval covers that measurement noise,
//! not the law's misfit: see benches/results/budget.md for how often it holds the truth.
//!
//! The curve is measured [`CURVE_REPEATS`] times with different seeds (folds, subset order,
//! pool sample) and averaged: a single measurement's projection moved 0.6–1.8× with the seed
//! alone. A self-simulation (replaying the hybrid loop on a pseudo-labeled pool,
//! examples/budget_selfsim.rs) was measured as an alternative and not adopted: no pseudo-labeler
//! set its difficulty right, and even the hidden true pool labels miss clinc150's test-row mix
//! (benches/results/budget.md, Session 3).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::Serialize;

use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::round::autolabel::{AutolabelResult, Route};
use crate::round::calibrate::CalibrationParams;
use crate::round::certificate_replay::{
    CertificateReplay, EvidenceRecord, PoolScores, ReplaySetup,
};
use crate::round::dedup::Duplicates;
use crate::round::forecast::{self, Advice, CoverageProjection, CoverageTrend, Finish, PoolState};
use crate::round::power_law::nearest_rank;
pub use crate::round::power_law::{fit_power_law, PowerLaw};
use crate::round::rows::PoolRows;

/// Share of the projected full-pool accuracy that `budget` targets when `--target-accuracy` is
/// absent.
pub const DEFAULT_TARGET_SHARE: f64 = 0.95;

/// Costs and targets the user sets.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetParams {
    /// Money per human label, in the user's currency.
    pub cost_per_label: f64,
    /// Seconds one annotator spends on one label.
    pub seconds_per_label: f64,
    /// Seconds one annotator spends verifying a shown label (an audit): a yes/no check instead
    /// of a choice among every class. Default a third of a label (see the README's budget
    /// section for where the figure comes from).
    pub seconds_per_verify: f64,
    /// Share of every batch that is audits (verifications), as selection draws them.
    pub audit_share: f64,
    /// Annotators working in parallel (divides calendar hours, not cost).
    pub annotators: usize,
    /// Share of auto-labels humans spot-check (each check costs one label's time and money).
    pub review_fraction: f64,
    /// Accuracy to project the labels for; `None` projects to [`DEFAULT_TARGET_SHARE`] (95%) of
    /// the accuracy the fitted law projects with every pool item labeled (see
    /// [`BudgetParams::accuracy_target`]).
    pub target_accuracy: Option<f64>,
    /// Stop suggestion: below this projected accuracy gain per 100 more labels (and below
    /// `stop_coverage_gain_per_100`), stop labeling.
    pub stop_gain_per_100: f64,
    /// Stop suggestion: below this projected certified-coverage gain per 100 more labels (and
    /// below `stop_gain_per_100`), stop labeling.
    pub stop_coverage_gain_per_100: f64,
    /// Batch size the projection table is expressed in (+1×, +2×, +5×, +10×).
    pub batch: usize,
    /// Currency label for display.
    pub currency: String,
}

impl Default for BudgetParams {
    /// The command line's defaults.
    fn default() -> Self {
        BudgetParams {
            cost_per_label: 0.10,
            seconds_per_label: 30.0,
            seconds_per_verify: 10.0,
            // select::DEFAULT_AUDIT_SHARE (a test keeps them equal; importing it would make
            // budget depend on selection).
            audit_share: 0.3,
            annotators: 1,
            review_fraction: 0.05,
            target_accuracy: None,
            stop_gain_per_100: 0.002,
            stop_coverage_gain_per_100: 0.005,
            batch: 100,
            currency: "USD".into(),
        }
    }
}

impl BudgetParams {
    /// Rejects negative costs, zero annotators and shares outside [0, 1].
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Usage(m));
        if !(self.cost_per_label >= 0.0 && self.cost_per_label.is_finite()) {
            return bad(format!(
                "cost_per_label must be ≥ 0, got {}",
                self.cost_per_label
            ));
        }
        if !(self.seconds_per_label >= 0.0 && self.seconds_per_label.is_finite()) {
            return bad(format!(
                "seconds_per_label must be ≥ 0, got {}",
                self.seconds_per_label
            ));
        }
        if self.annotators == 0 {
            return bad("annotators must be at least 1".into());
        }
        if !(self.seconds_per_verify >= 0.0 && self.seconds_per_verify.is_finite()) {
            return bad(format!(
                "seconds_per_verify must be ≥ 0, got {}",
                self.seconds_per_verify
            ));
        }
        if !(0.0..=1.0).contains(&self.audit_share) {
            return bad(format!(
                "audit_share must be in [0, 1], got {}",
                self.audit_share
            ));
        }
        if !(0.0..=1.0).contains(&self.review_fraction) {
            return bad(format!(
                "review_fraction must be in [0, 1], got {}",
                self.review_fraction
            ));
        }
        if let Some(t) = self.target_accuracy {
            if !(t > 0.0 && t < 1.0) {
                return bad(format!("target_accuracy must be in (0, 1), got {t}"));
            }
        }
        if !(self.stop_coverage_gain_per_100 >= 0.0 && self.stop_coverage_gain_per_100.is_finite())
        {
            return bad(format!(
                "stop_coverage_gain_per_100 must be ≥ 0, got {}",
                self.stop_coverage_gain_per_100
            ));
        }
        if self.batch == 0 {
            return bad("batch must be at least 1".into());
        }
        Ok(())
    }

    /// The accuracy the projection is made for: `--target-accuracy` when given, otherwise
    /// [`DEFAULT_TARGET_SHARE`] of `law.at(items)`, the accuracy the law projects with all
    /// `items` of the pool labeled (its full-pool accuracy). That is the question the issue-8
    /// check asks ("labels to reach 95% of the full-pool accuracy"). When the law's plateau is
    /// not identified (`plateau_identified: false`, it sits at its cap of 1), the full-pool
    /// accuracy and so this target are overstated: see benches/results/budget.md.
    pub fn accuracy_target(&self, law: &PowerLaw, items: usize) -> f64 {
        self.target_accuracy
            .unwrap_or_else(|| DEFAULT_TARGET_SHARE * law.at(items as f64).clamp(0.0, 1.0))
    }

    /// Hours (calendar, with all annotators working) and cost of `items` human items, of
    /// which [`BudgetParams::audit_share`] are verifications.
    pub fn hours_and_cost(&self, items: f64) -> (f64, f64) {
        let verifications = items * self.audit_share;
        self.hours_and_cost_of(items - verifications, verifications)
    }

    /// Hours and cost of `labels` labels and `verifications` verifications. A verification
    /// costs what its time costs at the label rate.
    pub fn hours_and_cost_of(&self, labels: f64, verifications: f64) -> (f64, f64) {
        let seconds = labels * self.seconds_per_label + verifications * self.seconds_per_verify;
        let verify_cost = if self.seconds_per_label > 0.0 {
            self.cost_per_label * self.seconds_per_verify / self.seconds_per_label
        } else {
            self.cost_per_label
        };
        (
            seconds / 3600.0 / self.annotators as f64,
            labels * self.cost_per_label + verifications * verify_cost,
        )
    }
}

/// The proposed batch's price: audits are verifications, cheaper than labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchCost {
    /// Items to label from scratch.
    pub labels: usize,
    /// Audits: a shown label to confirm or correct.
    pub verifications: usize,
    /// Calendar hours with all annotators working.
    pub hours: f64,
    /// Money.
    pub cost: f64,
}

impl BatchCost {
    /// The price of `labels` labels and `verifications` verifications under `params`.
    pub fn of(labels: usize, verifications: usize, params: &BudgetParams) -> BatchCost {
        let (hours, cost) = params.hours_and_cost_of(labels as f64, verifications as f64);
        BatchCost {
            labels,
            verifications,
            hours,
            cost,
        }
    }
}

/// The state of the pool this round.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetNow {
    /// Items in the pool.
    pub items: usize,
    /// Items that need no label of their own because a near-duplicate twin gets one.
    pub saved_by_duplicates: usize,
    /// Items already labeled by humans.
    pub labeled: usize,
    /// Items auto-labeled this round.
    pub auto_labeled: usize,
    /// Items labeled from a labeled near-duplicate.
    pub duplicate_labeled: usize,
    /// Items only a human can label now (after duplicates collapse).
    pub left_for_humans: usize,
    /// Hours to label `left_for_humans` at the configured rate.
    pub human_hours: f64,
    /// Cost of those hours, in the configured currency.
    pub human_cost: f64,
    /// Auto-labels spot-checked at `review_fraction`.
    pub review_labels: usize,
    /// Hours to review `review_labels`.
    pub review_hours: f64,
    /// Cost of that review, in the configured currency.
    pub review_cost: f64,
}

/// Counts for "now". `human_items` are routed to humans after duplicate collapse.
pub fn now(
    params: &BudgetParams,
    items: usize,
    saved_by_duplicates: usize,
    labeled: usize,
    auto_labeled: usize,
    duplicate_labeled: usize,
    human_items: usize,
) -> BudgetNow {
    let (human_hours, human_cost) = params.hours_and_cost(human_items as f64);
    let review_labels =
        ((auto_labeled + duplicate_labeled) as f64 * params.review_fraction).ceil() as usize;
    let (review_hours, review_cost) = params.hours_and_cost(review_labels as f64);
    BudgetNow {
        items,
        saved_by_duplicates,
        labeled,
        auto_labeled,
        duplicate_labeled,
        left_for_humans: human_items,
        human_hours,
        human_cost,
        review_labels,
        review_hours,
        review_cost,
    }
}

/// A measured learning curve and its fitted law, with bootstrap refits for uncertainty.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    /// (labels, measured value) points.
    pub points: Vec<(f64, f64)>,
    /// Power law fitted to `points`; `None` when too few points or the fit failed.
    pub fit: Option<PowerLaw>,
    /// Refits on resampled points, for intervals.
    #[serde(skip)]
    pub bootstrap: Vec<PowerLaw>,
    /// Labels the law was fitted from: the points at or above this many labels (the curve's
    /// class-discovery phase, which continued labeling does not repeat, is left out).
    pub fitted_from: f64,
    /// The measured value with every label (the last point), when measured: a target it
    /// already reaches needs no more labels, whatever the law says.
    pub now: Option<(f64, f64)>,
    /// Whether the fitted plateau `a` lies below its cap of 1. When it sits at the cap the
    /// points still rise too steeply to show where they level off, so a target defined relative
    /// to the plateau (the default: 95% of it) is relative to an assumed plateau of 1.
    pub plateau_identified: bool,
}

impl Curve {
    /// Fits the law and `reps` bootstrap refits (resampling points with replacement). The last
    /// point is taken as the value now.
    pub fn fit(points: Vec<(f64, f64)>, reps: usize, seed: u64) -> Curve {
        let fit = fit_power_law(&points);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut bootstrap = Vec::with_capacity(reps);
        if fit.is_some() {
            for _ in 0..reps {
                let sample: Vec<(f64, f64)> = (0..points.len())
                    .map(|_| points[rng.gen_range(0..points.len())])
                    .collect();
                let distinct = {
                    let mut ns: Vec<u64> = sample.iter().map(|p| p.0 as u64).collect();
                    ns.sort_unstable();
                    ns.dedup();
                    ns.len()
                };
                if distinct >= 3 {
                    if let Some(law) = fit_power_law(&sample) {
                        bootstrap.push(law);
                    }
                }
            }
        }
        let fitted_from = points.first().map_or(0.0, |p| p.0);
        Curve::new(points, fit, bootstrap, fitted_from)
    }

    /// A curve from its parts; the last point is taken as the value now.
    fn new(
        points: Vec<(f64, f64)>,
        fit: Option<PowerLaw>,
        bootstrap: Vec<PowerLaw>,
        fitted_from: f64,
    ) -> Curve {
        Curve {
            fitted_from,
            now: points.last().copied(),
            plateau_identified: fit.is_some_and(|l| l.a < 1.0 - 1e-9),
            points,
            fit,
            bootstrap,
        }
    }

    /// Fits the law to the points from `fit_from` on, each point the mean of its replicate
    /// measurements (one per cross-validation fold); the bootstrap resamples each point's
    /// replicates with replacement and refits, so the interval is the spread the folds'
    /// disagreement implies. The last point is taken as the value now.
    pub fn fit_replicates(
        labels: &[f64],
        replicates: &[Vec<f64>],
        fit_from: usize,
        reps: usize,
        seed: u64,
    ) -> Curve {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let points: Vec<(f64, f64)> = labels
            .iter()
            .zip(replicates)
            .filter(|(_, r)| !r.is_empty())
            .map(|(&n, r)| (n, mean(r)))
            .collect();
        let used: Vec<usize> = (0..labels.len())
            .filter(|&i| i >= fit_from && !replicates[i].is_empty())
            .collect();
        let fit = fit_power_law(
            &used
                .iter()
                .map(|&i| (labels[i], mean(&replicates[i])))
                .collect::<Vec<_>>(),
        );
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut bootstrap = Vec::with_capacity(reps);
        if fit.is_some() {
            for _ in 0..reps {
                let resampled: Vec<(f64, f64)> = used
                    .iter()
                    .map(|&i| {
                        let r = &replicates[i];
                        let m = (0..r.len())
                            .map(|_| r[rng.gen_range(0..r.len())])
                            .sum::<f64>()
                            / r.len() as f64;
                        (labels[i], m)
                    })
                    .collect();
                if let Some(law) = fit_power_law(&resampled) {
                    bootstrap.push(law);
                }
            }
        }
        let fitted_from = used.first().map_or(0.0, |&i| labels[i]);
        Curve::new(points, fit, bootstrap, fitted_from)
    }

    /// Central estimate and 10th–90th percentile interval of the labels needed to reach `y`.
    pub fn labels_for(&self, y: f64) -> Option<(f64, f64, f64)> {
        if let Some((n, v)) = self.now {
            if v >= y {
                return Some((n, n, n));
            }
        }
        let central = self.fit?.labels_for(y)?;
        let mut boot: Vec<f64> = self
            .bootstrap
            .iter()
            .map(|l| l.labels_for(y).unwrap_or(f64::INFINITY))
            .collect();
        if boot.is_empty() {
            return Some((central, central, central));
        }
        boot.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| nearest_rank(&boot, p);
        Some((central, q(0.1), q(0.9)))
    }
}

/// Nested random subsets of the labeled items, growing geometrically from `min_size` to all.
///
/// Nested (each contains the previous) so the curve measures adding labels, not resampling.
pub fn nested_subsets(
    labeled: &[usize],
    min_size: usize,
    steps: usize,
    seed: u64,
) -> Vec<Vec<usize>> {
    let n = labeled.len();
    if n == 0 {
        return Vec::new();
    }
    let mut order = labeled.to_vec();
    order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
    let lo = min_size.clamp(1, n) as f64;
    let mut sizes: Vec<usize> = (0..steps.max(1))
        .map(|i| {
            let t = if steps <= 1 {
                1.0
            } else {
                i as f64 / (steps - 1) as f64
            };
            (lo * (n as f64 / lo).powf(t)).round() as usize
        })
        .collect();
    sizes.dedup();
    sizes
        .into_iter()
        .map(|s| order[..s.min(n)].to_vec())
        .collect()
}

/// One row of the projection table (budget.csv).
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionRow {
    /// More human items (labels and verifications) than now.
    pub added_labels: usize,
    /// Labels in total after adding `added_labels`.
    pub total_labels: usize,
    /// Projected pool accuracy of the yardstick model at that total, in 0–1; `None` without a
    /// fitted curve.
    pub projected_accuracy: Option<f64>,
    /// 10th percentile of the pool accuracy (the measured residuals, [`forecast`]).
    pub accuracy_low: Option<f64>,
    /// 90th percentile of the pool accuracy.
    pub accuracy_high: Option<f64>,
    /// Projected share of the unlabeled pool auto-labeled at the target precision.
    pub projected_auto_coverage: Option<f64>,
    /// 10th percentile of that coverage.
    pub coverage_low: Option<f64>,
    /// 90th percentile of that coverage.
    pub coverage_high: Option<f64>,
    /// How many of `added_labels` are verifications (audits).
    pub verifications: usize,
    /// Hours for the added labels and verifications.
    pub hours: f64,
    /// Cost of the added labels and verifications, in the configured currency.
    pub cost: f64,
}

/// Pool accuracy with `total` labels: the law's value now plus [`forecast::ACCURACY_GAIN_SHARE`]
/// of its rise from `now` labels.
pub fn projected_accuracy(law: &PowerLaw, now: f64, total: f64) -> f64 {
    let base = law.at(now);
    (base + forecast::ACCURACY_GAIN_SHARE * (law.at(total) - base)).clamp(0.0, 1.0)
}

/// The projection table at +1×, +2×, +5×, +10× the batch: the accuracy law and the coverage
/// trend, each with its measured 80% interval.
pub fn projection_table(
    params: &BudgetParams,
    labeled_now: usize,
    accuracy: &Curve,
    coverage: CoverageProjection<'_>,
) -> Vec<ProjectionRow> {
    use forecast::{share_interval, ACCURACY_RESIDUALS};
    [1usize, 2, 5, 10]
        .iter()
        .map(|&m| {
            let added = m * params.batch;
            let total = labeled_now + added;
            let (hours, cost) = params.hours_and_cost(added as f64);
            let acc = accuracy
                .fit
                .map(|l| projected_accuracy(&l, labeled_now as f64, total as f64));
            let acc_band = acc.map(|a| share_interval(&ACCURACY_RESIDUALS, a, m as f64));
            let cov = coverage.at(total as f64);
            let (cov_low, cov_high) = coverage.interval(total as f64, m as f64);
            ProjectionRow {
                added_labels: added,
                total_labels: total,
                projected_accuracy: acc,
                accuracy_low: acc_band.map(|b| b.0),
                accuracy_high: acc_band.map(|b| b.1),
                projected_auto_coverage: Some(cov),
                coverage_low: Some(cov_low),
                coverage_high: Some(cov_high),
                verifications: (added as f64 * params.audit_share).round() as usize,
                hours,
                cost,
            }
        })
        .collect()
}

/// Labels needed to reach a target, with the bootstrap interval and what they cost.
#[derive(Debug, Clone, Serialize)]
pub struct Reach {
    /// The target value (accuracy or coverage) in 0–1.
    pub target: f64,
    /// Total labels at which the fitted curve reaches the target.
    pub total_labels: Option<f64>,
    /// More labels than now (central estimate) and its 10th–90th percentile interval.
    pub more_labels: Option<f64>,
    /// 10th percentile of `more_labels`.
    pub more_labels_low: Option<f64>,
    /// 90th percentile of `more_labels`.
    pub more_labels_high: Option<f64>,
    /// Labeling hours for `more_labels`.
    pub hours: Option<f64>,
    /// Labeling cost for `more_labels`, in the configured currency.
    pub cost: Option<f64>,
}

/// The budget stage's result: counts now, curves, projection and advice.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetOutcome {
    /// The parameters used, echoed so the output is self-describing.
    pub params: BudgetParams,
    /// Counts, hours and cost as things stand.
    pub now: BudgetNow,
    /// Measured accuracy against labels, with its fit.
    pub accuracy_curve: Curve,
    /// Auto-label coverage against labels measured by the learning curve, with its fit (the
    /// fallback of `coverage_trend`).
    pub coverage_curve: Curve,
    /// Certified coverage the loop measured round after round, and the law projected from it
    /// (the projection when there is no replay).
    pub coverage_trend: CoverageTrend,
    /// The certificate replayed on the evidence the next batches bring: the coverage
    /// projection, when the round cross-validated a model.
    pub coverage_replay: Option<CertificateReplay>,
    /// Labels needed for the accuracy target, if one was set.
    pub accuracy_target: Option<Reach>,
    /// Labels needed for the coverage target, if one was set.
    pub coverage_target: Option<Reach>,
    /// Projected accuracy, coverage and cost at a few label counts.
    pub projection: Vec<ProjectionRow>,
    /// Projected accuracy gain of the next 100 labels ([`projected_accuracy`]).
    pub gain_per_100: Option<f64>,
    /// Human labels, verifications, hours, cost and rounds until the pool is done.
    pub finish: Finish,
    /// Stop or continue, with the projected gains it rests on.
    pub advice: Advice,
    /// What the proposed batch costs: its labels and its verifications (audits); null when
    /// the command selects no batch.
    pub batch: Option<BatchCost>,
}

/// What the budget reads of the round besides the data: the stages it builds on and what the
/// round history measured.
#[derive(Clone, Copy, Default)]
pub struct BudgetInputs<'a> {
    /// The auto-label stage (routes and certified coverage now).
    pub autolabel: Option<&'a AutolabelResult>,
    /// Near-duplicate groups (humans label one item per group).
    pub duplicates: Option<&'a Duplicates>,
    /// (labels, certified coverage) of the earlier rounds `--history` recorded: what the
    /// coverage projection extrapolates. Empty without a history.
    pub measured_coverage: &'a [(f64, f64)],
    /// Which labeled items the certificate used (`None`: all): the record the coverage
    /// projection replays.
    pub evidence: Option<&'a [bool]>,
    /// The calibration the auto-label stage ran, replayed on more evidence.
    pub calibration: Option<&'a CalibrationParams>,
    /// Where the pool's rows are read (`None`: the data's own matrix).
    pub rows: Option<&'a dyn PoolRows>,
}

/// Counts, hours and cost now, and the learning-curve projection: what the next batches
/// buy and the labels to reach the targets. Humans label one item per near-duplicate group.
pub fn plan(
    data: &Dataset,
    inputs: BudgetInputs<'_>,
    params: &BudgetParams,
    target_coverage: f64,
    target_precision: f64,
    seed: u64,
) -> Result<BudgetOutcome> {
    let n = data.len();
    let BudgetInputs {
        autolabel,
        duplicates,
        measured_coverage,
        ..
    } = inputs;
    let counts = autolabel
        .map(|a| a.summary.counts.clone())
        .unwrap_or_default();
    let (labeled, auto, dup) = (data.labeled_count(), counts.auto, counts.duplicate);
    // Humans label one item per near-duplicate group; the twins follow.
    let human_items: Vec<usize> = match autolabel {
        Some(a) => (0..n).filter(|&i| a.route[i] == Route::Human).collect(),
        None => (0..n).filter(|&i| data.labels[i].is_none()).collect(),
    };
    let collapsed = match duplicates {
        Some(d) => human_items
            .iter()
            .filter(|&&i| d.groups.representative[i])
            .count(),
        None => human_items.len(),
    };
    let now = now(
        params,
        n,
        human_items.len() - collapsed,
        labeled,
        auto,
        dup,
        collapsed,
    );
    // Learning curves with budget's curve model (logistic regression, C = 10, uniform
    // class weights; see curve_model).
    let labeled_rows: Vec<usize> = (0..n).filter(|&i| data.labels[i].is_some()).collect();
    let labeled_mask: Vec<bool> = data.labels.iter().map(Option::is_some).collect();
    let y: Vec<u32> = labeled_rows
        .iter()
        .filter_map(|&i| data.labels[i])
        .collect();
    let yardstick = curve_model();
    // The curve fits many subsets of the labeled rows: gathered once, they are read locally.
    let rows: &dyn PoolRows = inputs.rows.unwrap_or(&data.embeddings);
    let xl = rows.gather(&labeled_rows)?;
    let positions: Vec<usize> = (0..labeled_rows.len()).collect();
    let set = LabeledSet {
        emb: xl.view(),
        labeled: &positions,
        y: &y,
        n_classes: data.classes.len(),
        pool: rows,
    };
    let points = learning_curve_repeated(
        &set,
        &yardstick,
        &labeled_mask,
        &CurveParams {
            target_precision,
            folds: 5,
            steps: 6,
            pool_size: 2000,
            repeats: CURVE_REPEATS,
            seed,
        },
    )?;
    let accuracy = points.accuracy_curve(200, seed);
    let coverage = Curve::fit(points.coverage, 200, seed ^ 1);
    let accuracy_target = accuracy
        .fit
        .map(|law| reach(params, &accuracy, params.accuracy_target(&law, n), labeled));
    let coverage_target = coverage
        .fit
        .map(|_| reach(params, &coverage, target_coverage, labeled));
    let unlabeled = n - labeled;
    let coverage_now = if unlabeled == 0 {
        0.0
    } else {
        (auto + dup) as f64 / unlabeled as f64
    };
    let trend = CoverageTrend::new(
        measured_coverage,
        (labeled as f64, coverage_now),
        coverage.fit,
    );
    let state = PoolState {
        items: n as f64,
        labeled: labeled as f64,
        left_for_humans: now.left_for_humans as f64,
    };
    let replay = replay_certificate(data, &inputs, params, &accuracy, coverage_now, seed)?;
    Ok(outcome(
        params,
        now,
        (accuracy, coverage),
        (trend, replay),
        state,
        (accuracy_target, coverage_target),
    ))
}

/// The certificate replayed on the evidence the next batches bring ([`CertificateReplay`]),
/// when the auto-label stage cross-validated a model; its errors fall as the accuracy
/// projection says.
fn replay_certificate(
    data: &Dataset,
    inputs: &BudgetInputs<'_>,
    params: &BudgetParams,
    accuracy: &Curve,
    coverage_now: f64,
    seed: u64,
) -> Result<Option<CertificateReplay>> {
    let (Some(a), Some(cal)) = (inputs.autolabel, inputs.calibration) else {
        return Ok(None);
    };
    let Some(chosen) = a.summary.candidates.iter().find(|c| c.chosen) else {
        return Ok(None);
    };
    let mut record = EvidenceRecord::default();
    for (i, l) in data.labels.iter().enumerate() {
        let used = inputs.evidence.is_none_or(|e| e[i]);
        if let (Some(y), Some(p), true) = (l, a.predicted[i], used) {
            record.predicted.push(p);
            record.confidence.push(a.confidence[i]);
            record.correct.push(p == *y);
        }
    }
    let unlabeled = (0..data.len()).filter(|&i| data.labels[i].is_none());
    let pool = PoolScores::new(
        data.classes.len(),
        unlabeled.filter_map(|i| a.predicted[i].map(|p| (p, a.confidence[i]))),
    );
    let labels_now = data.labeled_count() as f64;
    let law = accuracy.fit;
    let errors_left = move |labels: f64| match law {
        Some(law) => {
            let now = 1.0 - projected_accuracy(&law, labels_now, labels_now);
            let then = 1.0 - projected_accuracy(&law, labels_now, labels);
            if now > 0.0 {
                then / now
            } else {
                1.0
            }
        }
        None => 1.0,
    };
    let params_at_level = CalibrationParams {
        confidence_level: chosen.confidence_level,
        ..cal.clone()
    };
    let setup = ReplaySetup {
        params: &params_at_level,
        n_classes: data.classes.len(),
        labels_now,
        items: data.len() as f64,
        batch: params.batch as f64,
        evidence_per_label: if inputs.evidence.is_some() {
            params.audit_share
        } else {
            1.0
        },
        audit_share: params.audit_share,
        coverage_now,
        errors_left: &errors_left,
        seed,
    };
    CertificateReplay::run(&record, &pool, &setup)
}

/// The projection table, the cost to finish and the advice, from the fitted curves.
fn outcome(
    params: &BudgetParams,
    now: BudgetNow,
    (accuracy, coverage): (Curve, Curve),
    (trend, replay): (CoverageTrend, Option<CertificateReplay>),
    state: PoolState,
    (accuracy_target, coverage_target): (Option<Reach>, Option<Reach>),
) -> BudgetOutcome {
    let labeled = now.labeled;
    let cover = match &replay {
        Some(r) => CoverageProjection::Replay(r),
        None => CoverageProjection::Trend(&trend),
    };
    let projection = projection_table(params, labeled, &accuracy, cover);
    let at = labeled as f64;
    let gain_per_100 = accuracy
        .fit
        .map(|law| projected_accuracy(&law, at, at + 100.0) - projected_accuracy(&law, at, at));
    let coverage_gain = (
        cover.gain_per_100(at, params.batch as f64),
        cover.gain_high_per_100(at, params.batch as f64),
    );
    let ahead = replay.as_ref().map(|_| {
        let far = forecast::ADVICE_BATCHES_AHEAD;
        (far, cover.at(at + (far * params.batch) as f64))
    });
    let advice = forecast::advice(
        (params.stop_gain_per_100, params.stop_coverage_gain_per_100),
        gain_per_100,
        coverage_gain,
        cover.at(at),
        ahead,
    );
    let hours_and_cost = |items: f64| params.hours_and_cost(items);
    let pace = forecast::Pace {
        batch: params.batch as f64,
        audit_share: params.audit_share,
        hours_and_cost: &hours_and_cost,
    };
    let finish = forecast::finish(state, cover, &trend, &pace);
    BudgetOutcome {
        params: params.clone(),
        now,
        accuracy_curve: accuracy,
        coverage_curve: coverage,
        coverage_trend: trend,
        coverage_replay: replay,
        accuracy_target,
        coverage_target,
        projection,
        gain_per_100,
        finish,
        advice,
        batch: None,
    }
}

/// The labels, hours and cost from `labeled` labels to `target` on `curve` (central estimate
/// and bootstrap interval), or none of them when the fitted law never reaches the target.
fn reach(params: &BudgetParams, curve: &Curve, target: f64, labeled: usize) -> Reach {
    let est = curve.labels_for(target);
    let more = |x: f64| (x - labeled as f64).max(0.0);
    let central = est.map(|e| more(e.0));
    let (hours, cost) = match central {
        Some(m) => {
            let (h, c) = params.hours_and_cost(m);
            (Some(h), Some(c))
        }
        None => (None, None),
    };
    Reach {
        target,
        total_labels: est.map(|e| e.0),
        more_labels: central,
        more_labels_low: est.map(|e| more(e.1)),
        more_labels_high: est.map(|e| more(e.2)).filter(|x| x.is_finite()),
        hours,
        cost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_power_law() {
        let truth = PowerLaw {
            a: 0.9,
            b: 1.2,
            c: 0.5,
        };
        let points: Vec<(f64, f64)> = [20.0, 40.0, 80.0, 160.0, 320.0, 640.0]
            .iter()
            .map(|&n| (n, truth.at(n)))
            .collect();
        let fit = fit_power_law(&points).unwrap();
        assert!((fit.a - 0.9).abs() < 0.01, "{fit:?}");
        assert!((fit.c - 0.5).abs() < 0.03, "{fit:?}");
        let need = fit.labels_for(0.85).unwrap();
        let exact = truth.labels_for(0.85).unwrap();
        assert!((need / exact - 1.0).abs() < 0.05, "{need} vs {exact}");
    }

    #[test]
    fn projection_takes_half_the_laws_rise_from_now() {
        // README "Budget": the law's value now plus half its rise (the law, fitted on subsets
        // of the labels, rises faster than the loop that adds to them).
        let law = PowerLaw {
            a: 0.95,
            b: 2.0,
            c: 0.5,
        };
        let (now, later) = (400.0, 900.0);
        let rise = law.at(later) - law.at(now);
        assert!((projected_accuracy(&law, now, now) - law.at(now)).abs() < 1e-12);
        let projected = projected_accuracy(&law, now, later);
        assert!((projected - (law.at(now) + 0.5 * rise)).abs() < 1e-12);
    }

    #[test]
    fn unreachable_targets_have_no_label_count() {
        let law = PowerLaw {
            a: 0.8,
            b: 1.0,
            c: 0.5,
        };
        assert!(law.labels_for(0.85).is_none());
        assert!(law.labels_for(0.7).is_some());
    }

    #[test]
    fn nested_subsets_grow_and_contain_each_other() {
        let labeled: Vec<usize> = (0..1000).collect();
        let subsets = nested_subsets(&labeled, 50, 6, 3);
        assert_eq!(subsets.first().unwrap().len(), 50);
        assert_eq!(subsets.last().unwrap().len(), 1000);
        for w in subsets.windows(2) {
            assert!(w[0].len() < w[1].len());
            assert_eq!(&w[1][..w[0].len()], &w[0][..]);
        }
    }

    #[test]
    fn pool_sample_draws_unlabeled_rows_deterministically() {
        let labeled: Vec<bool> = (0..10_000).map(|i| i % 3 == 0).collect();
        let a = pool_sample(&labeled, 500, 7);
        assert_eq!(a, pool_sample(&labeled, 500, 7));
        assert_ne!(a, pool_sample(&labeled, 500, 8));
        assert_eq!(a.len(), 500);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert!(a.iter().all(|&i| !labeled[i]));
        // Spread over the whole pool, not the first rows.
        assert!(*a.last().unwrap() > 9_000 && a[0] < 1_000, "{:?}", &a[..5]);
        // Fewer unlabeled rows than asked: all of them.
        let few: Vec<bool> = (0..10).map(|i| i != 4 && i != 7).collect();
        assert_eq!(pool_sample(&few, 500, 1), vec![4, 7]);
    }

    #[test]
    fn atc_threshold_leaves_as_many_predictions_above_as_are_correct() {
        let held: Vec<(f32, bool)> = (0..100)
            .map(|i| (i as f32 / 100.0, i % 4 != 0 || i > 60))
            .collect();
        let correct = held.iter().filter(|p| p.1).count();
        let t = atc_threshold(&held).unwrap();
        let conf: Vec<f32> = held.iter().map(|p| p.0).collect();
        assert_eq!(
            (share_above(&conf, t) * 100.0).round() as usize,
            correct,
            "t = {t}"
        );
        assert_eq!(atc_threshold(&[]), None);
        // All correct: every prediction counts; none correct: none does.
        assert_eq!(
            share_above(&conf, atc_threshold(&[(0.3, true)]).unwrap()),
            1.0
        );
        assert_eq!(
            share_above(&[0.3], atc_threshold(&[(0.3, false)]).unwrap()),
            0.0
        );
    }

    #[test]
    fn fold_bootstrap_brackets_the_law_and_skips_the_discovery_phase() {
        let truth = PowerLaw {
            a: 0.9,
            b: 2.0,
            c: 0.7,
        };
        let labels = [20.0, 40.0, 80.0, 160.0, 320.0, 400.0];
        // Five fold replicates per point, ±0.01 around the law; the first two points are in a
        // class-discovery phase far below it.
        let replicates: Vec<Vec<f64>> = labels
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let y = if i < 2 {
                    truth.at(n) - 0.3
                } else {
                    truth.at(n)
                };
                [-0.01, -0.005, 0.0, 0.005, 0.01]
                    .iter()
                    .map(|e| y + e)
                    .collect()
            })
            .collect();
        let points = CurvePoints {
            accuracy: labels
                .iter()
                .zip(&replicates)
                .map(|(&n, r)| (n, r.iter().sum::<f64>() / 5.0))
                .collect(),
            accuracy_replicates: replicates,
            class_share: vec![0.5, 0.8, 0.95, 0.99, 1.0, 1.0],
            ..CurvePoints::default()
        };
        assert_eq!(points.fit_from(), 2);
        let curve = points.accuracy_curve(200, 3);
        assert_eq!(curve.fitted_from, 80.0);
        assert_eq!(curve.now, Some((400.0, truth.at(400.0))));
        assert!(curve.plateau_identified, "{:?}", curve.fit);
        let exact = truth.labels_for(0.88).unwrap();
        let (central, lo, hi) = curve.labels_for(0.88).unwrap();
        assert!((central / exact - 1.0).abs() < 0.1, "{central} vs {exact}");
        assert!(lo <= exact && exact <= hi, "{lo}–{hi} vs {exact}");
        assert!(lo < hi, "the folds disagree, so the interval has a width");
        // A target the model already reaches needs the labels it has.
        assert_eq!(curve.labels_for(0.5), Some((400.0, 400.0, 400.0)));
        // Too few points past the discovery phase: the last three are used.
        let late = CurvePoints {
            class_share: vec![0.1, 0.2, 0.3, 0.4, 0.5, 1.0],
            ..points
        };
        assert_eq!(late.fit_from(), 3);
    }

    /// Labeled items chosen for being hard (closest to another class's centre) make held-out
    /// accuracy understate the pool's; the pool estimate must land closer to the truth.
    #[test]
    fn pool_estimate_corrects_hard_labeled_items() {
        use crate::index::kmeans::tests::rand_distr_free::normal;
        use crate::model::Classifier;
        let (n, d, k) = (3000usize, 16usize, 4usize);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let centres: Vec<Vec<f32>> = (0..k)
            .map(|_| (0..d).map(|_| normal(&mut rng)).collect())
            .collect();
        let mut emb = ndarray::Array2::<f32>::zeros((n, d));
        let mut truth = vec![0u32; n];
        let mut margin = vec![0f32; n];
        for (i, mut row) in emb.outer_iter_mut().enumerate() {
            let c = rng.gen_range(0..k);
            truth[i] = c as u32;
            for (j, v) in row.iter_mut().enumerate() {
                *v = centres[c][j] / 4.0 + 0.45 * normal(&mut rng);
            }
            let nn = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            row.mapv_inplace(|v| v / nn);
            let dots: Vec<f32> = centres
                .iter()
                .map(|cen| cen.iter().zip(row.iter()).map(|(a, b)| a * b).sum())
                .collect();
            let other = (0..k)
                .filter(|&o| o != c)
                .map(|o| dots[o])
                .fold(f32::MIN, f32::max);
            margin[i] = dots[c] - other;
        }
        // 150 labels: the hardest fifth of 750 random rows.
        let mut candidates: Vec<usize> = (0..n).collect();
        candidates.shuffle(&mut rng);
        candidates.truncate(750);
        candidates.sort_by(|&a, &b| margin[a].total_cmp(&margin[b]));
        let mut labeled: Vec<usize> = candidates[..150].to_vec();
        labeled.sort_unstable();
        let y: Vec<u32> = labeled.iter().map(|&i| truth[i]).collect();
        let mut mask = vec![false; n];
        labeled.iter().for_each(|&i| mask[i] = true);
        let pool = pool_sample(&mask, 1000, 5);
        let model = crate::simulate::yardstick();
        let points =
            learning_curve(emb.view(), &labeled, &y, k, &model, 0.95, 5, 6, &pool, 5).unwrap();
        // The truth: the model on all labels, scored on the pool sample.
        let xs = emb.select(ndarray::Axis(0), &labeled);
        let fitted = model.fit(xs.view(), &y, k).unwrap();
        let xp = emb.select(ndarray::Axis(0), &pool);
        let (pred, _) = crate::model::argmax_rows(&fitted.predict_proba(xp.view()).unwrap());
        let true_acc = pred
            .iter()
            .zip(&pool)
            .filter(|(p, &i)| **p == truth[i])
            .count() as f64
            / pool.len() as f64;
        let estimate = points.accuracy.last().unwrap();
        assert_eq!(estimate.0, 150.0);
        let held_out = points.held_out_accuracy.last().unwrap().1;
        assert!(
            held_out < true_acc - 0.05,
            "the setup must bias held-out accuracy: {held_out} vs {true_acc}"
        );
        assert!(
            (estimate.1 - true_acc).abs() < (held_out - true_acc).abs(),
            "pool estimate {} vs held-out {held_out}, truth {true_acc}",
            estimate.1
        );
        // Repeat 0 of the repeated curve is this curve; more repeats average more replicates.
        let set = LabeledSet {
            emb: emb.view(),
            labeled: &labeled,
            y: &y,
            n_classes: k,
            pool: &emb,
        };
        let repeated = |repeats: usize| {
            let params = CurveParams {
                target_precision: 0.95,
                folds: 5,
                steps: 6,
                pool_size: 1000,
                repeats,
                seed: 5,
            };
            learning_curve_repeated(&set, &model, &mask, &params).unwrap()
        };
        let once = repeated(1);
        assert_eq!(once.accuracy, points.accuracy);
        let thrice = repeated(3);
        assert_eq!(thrice.accuracy.len(), points.accuracy.len());
        assert_eq!(
            thrice.accuracy_replicates[0].len(),
            3 * points.accuracy_replicates[0].len()
        );
        assert_eq!(points.accuracy.len(), points.accuracy_replicates.len());
        assert_eq!(points.accuracy.len(), points.class_share.len());
        assert!(points.coverage.iter().all(|p| (0.0..=1.0).contains(&p.1)));
    }

    /// Repeats merge by label count: replicates concatenate, the point is their mean, a size
    /// only one repeat measured is kept, and the order is by label count.
    #[test]
    fn repeats_merge_by_label_count() {
        let run = |sizes: &[f64], reps: &[[f64; 2]], cov: f64| CurvePoints {
            accuracy: sizes
                .iter()
                .zip(reps)
                .map(|(&n, r)| (n, (r[0] + r[1]) / 2.0))
                .collect(),
            accuracy_replicates: reps.iter().map(|r| r.to_vec()).collect(),
            class_share: vec![1.0; sizes.len()],
            coverage: sizes.iter().map(|&n| (n, cov)).collect(),
            held_out_accuracy: sizes.iter().map(|&n| (n, 0.5)).collect(),
        };
        let a = run(
            &[10.0, 20.0, 40.0],
            &[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]],
            0.2,
        );
        let b = run(&[10.0, 40.0], &[[0.3, 0.4], [0.7, 0.8]], 0.4);
        let m = merge_repeats(&[a, b]);
        let ns: Vec<f64> = m.accuracy.iter().map(|p| p.0).collect();
        assert_eq!(ns, vec![10.0, 20.0, 40.0]);
        assert_eq!(m.accuracy_replicates[0], vec![0.1, 0.2, 0.3, 0.4]);
        assert!((m.accuracy[0].1 - 0.25).abs() < 1e-12);
        assert_eq!(m.accuracy_replicates[1], vec![0.3, 0.4]);
        assert!((m.accuracy[2].1 - 0.65).abs() < 1e-12);
        assert!((m.coverage[0].1 - 0.3).abs() < 1e-12);
        assert!((m.coverage[1].1 - 0.2).abs() < 1e-12);
        assert_eq!(m.class_share.len(), 3);
    }

    #[test]
    fn default_audit_share_is_selections() {
        assert_eq!(
            BudgetParams::default().audit_share,
            crate::round::select::DEFAULT_AUDIT_SHARE
        );
    }

    #[test]
    fn counts_hours_and_cost() {
        let p = BudgetParams {
            cost_per_label: 0.5,
            seconds_per_label: 36.0,
            seconds_per_verify: 12.0,
            audit_share: 0.0,
            annotators: 2,
            review_fraction: 0.1,
            target_accuracy: None,
            stop_gain_per_100: 0.005,
            stop_coverage_gain_per_100: 0.005,
            batch: 100,
            currency: "USD".into(),
        };
        p.validate().unwrap();
        // Default target: 95% of what the law projects with every pool item labeled.
        let law = PowerLaw {
            a: 0.9,
            b: 2.0,
            c: 0.5,
        };
        let t = p.accuracy_target(&law, 10_000);
        assert!((t - 0.95 * law.at(10_000.0)).abs() < 1e-12, "{t}");
        let given = BudgetParams {
            target_accuracy: Some(0.8),
            ..p.clone()
        };
        assert_eq!(given.accuracy_target(&law, 10_000), 0.8);
        let now = now(&p, 1000, 50, 100, 300, 20, 530);
        assert_eq!(now.review_labels, 32);
        assert!((now.human_cost - 265.0).abs() < 1e-9);
        assert!((now.human_hours - 530.0 * 36.0 / 3600.0 / 2.0).abs() < 1e-9);
        // A verification costs its time at the label rate: 70 labels + 30 checks of 12 s.
        let b = BatchCost::of(70, 30, &p);
        assert!((b.hours - (70.0 * 36.0 + 30.0 * 12.0) / 3600.0 / 2.0).abs() < 1e-9);
        assert!((b.cost - (70.0 * 0.5 + 30.0 * 0.5 / 3.0)).abs() < 1e-9);
        // With audits a share of the human items, hours blend the two rates.
        let mixed = BudgetParams {
            audit_share: 0.3,
            ..p.clone()
        };
        let (h, c) = mixed.hours_and_cost(100.0);
        assert!((h - b.hours).abs() < 1e-9 && (c - b.cost).abs() < 1e-9);
    }
}

/// Measured points of the two learning curves, before fitting.
#[derive(Debug, Clone, Default)]
pub struct CurvePoints {
    /// (labels, estimated accuracy on the unlabeled pool): the mean of `accuracy_replicates`.
    pub accuracy: Vec<(f64, f64)>,
    /// Per point, one accuracy estimate per fold (the last point: the model on all labels,
    /// scored with each fold's threshold).
    pub accuracy_replicates: Vec<Vec<f64>>,
    /// Per point, the mean share of the labeled classes the subsets hold a label of.
    pub class_share: Vec<f64>,
    /// (labels, share of the unlabeled pool auto-labelable at the target precision).
    pub coverage: Vec<(f64, f64)>,
    /// (labels, cross-validated accuracy on the held-out labeled items): kept for comparison.
    /// After active rounds the labeled items are the hard ones, so this is biased low.
    pub held_out_accuracy: Vec<(f64, f64)>,
}

/// Subsets holding a label of fewer than this share of the classes are in the class-discovery
/// phase: their accuracy climbs by finding classes, which labeling beyond now (every class
/// already found) does not repeat, so the law is fitted to the points past it.
pub const MIN_CLASS_SHARE: f64 = 0.9;

impl CurvePoints {
    /// Index of the first point the law is fitted from: the first whose subsets hold at least
    /// `MIN_CLASS_SHARE` of the classes, moved down so that at least three points remain.
    pub fn fit_from(&self) -> usize {
        let n = self.accuracy.len();
        let first = self
            .class_share
            .iter()
            .position(|&c| c >= MIN_CLASS_SHARE)
            .unwrap_or(n);
        first.min(n.saturating_sub(3))
    }

    /// The accuracy curve: the law fitted past the class-discovery phase, with the fold
    /// bootstrap (see [`Curve::fit_replicates`]).
    pub fn accuracy_curve(&self, reps: usize, seed: u64) -> Curve {
        let labels: Vec<f64> = self.accuracy.iter().map(|p| p.0).collect();
        Curve::fit_replicates(
            &labels,
            &self.accuracy_replicates,
            self.fit_from(),
            reps,
            seed,
        )
    }
}

/// Up to `size` unlabeled rows, drawn uniformly with `seed`: the sample the learning curve
/// scores its models on. Linear in the pool (one pass), so 1,000,000 rows cost nothing.
pub fn pool_sample(labeled: &[bool], size: usize, seed: u64) -> Vec<usize> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5eed_5a3b);
    // Reservoir sampling (algorithm R), then sorted for a deterministic, cache-friendly order.
    let mut sample: Vec<usize> = Vec::with_capacity(size);
    let mut seen = 0usize;
    for (i, &l) in labeled.iter().enumerate() {
        if l {
            continue;
        }
        if sample.len() < size {
            sample.push(i);
        } else {
            let j = rng.gen_range(0..=seen);
            if j < size {
                sample[j] = i;
            }
        }
        seen += 1;
    }
    sample.sort_unstable();
    sample
}

/// Average thresholded confidence (Garg et al., ICLR 2022): the confidence `t` above which the
/// share of held-out predictions equals their accuracy. The share of *unlabeled* predictions
/// above `t` then estimates accuracy on the unlabeled pool. Held-out labeled items were chosen
/// for being hard, so their accuracy understates the pool's; the threshold transfers the
/// confidence–correctness relation instead, which a shift toward easier items leaves intact.
pub fn atc_threshold(held: &[(f32, bool)]) -> Option<f32> {
    if held.is_empty() {
        return None;
    }
    let correct = held.iter().filter(|p| p.1).count();
    let mut conf: Vec<f32> = held.iter().map(|p| p.0).collect();
    conf.sort_by(|a, b| b.total_cmp(a));
    // Exactly `correct` predictions strictly above t: t = the confidence ranked `correct`.
    Some(if correct == 0 {
        conf[0]
    } else if correct >= conf.len() {
        f32::NEG_INFINITY
    } else {
        conf[correct]
    })
}

/// Share of `conf` strictly above `t`.
fn share_above(conf: &[f32], t: f32) -> f64 {
    if conf.is_empty() {
        return 0.0;
    }
    conf.iter().filter(|&&c| c > t).count() as f64 / conf.len() as f64
}

/// Highest class probability of every row.
fn max_proba(proba: &ndarray::Array2<f32>) -> Vec<f32> {
    crate::model::argmax_rows(proba).1
}

/// The labeled items a learning curve learns from: rows of `emb` and their classes.
#[derive(Clone, Copy)]
pub struct LabeledSet<'a> {
    /// Embeddings the labeled items are read from.
    pub emb: ndarray::ArrayView2<'a, f32>,
    /// Rows of `emb` that are labeled.
    pub labeled: &'a [usize],
    /// Class of each row in `labeled`, in the same order.
    pub y: &'a [u32],
    /// Number of classes the model predicts over.
    pub n_classes: usize,
    /// The pool the unlabeled sample ([`pool_sample`]'s ids) is read from.
    pub pool: &'a dyn PoolRows,
}

/// How a learning curve is measured; named fields, so a call site says which number is what.
#[derive(Debug, Clone, Copy)]
pub struct CurveParams {
    /// Precision the coverage curve's auto-label threshold must certify.
    pub target_precision: f64,
    /// Cross-validation folds over the labeled items.
    pub folds: usize,
    /// Nested subset sizes fitted in each fold.
    pub steps: usize,
    /// Unlabeled rows each repeat scores its models on (see [`pool_sample`]).
    pub pool_size: usize,
    /// Independent repeats averaged by [`learning_curve_repeated`].
    pub repeats: usize,
    /// Seed of folds, subset order and pool sample (repeat `r` uses `seed + 1000·r`).
    pub seed: u64,
}

/// Learning curves from the labeled items, scored on the unlabeled pool: k folds; inside each,
/// nested growing subsets of the training part are fitted, scored on the held-out fold (for the
/// confidence–correctness relation) and on `pool` (unlabeled rows, see [`pool_sample`]). At each
/// size, accuracy on the pool is estimated by [`atc_threshold`] from the pooled held-out
/// predictions; auto-label coverage is the share of pool predictions at or above the lowest
/// threshold whose Clopper–Pearson bound on the held-out predictions certifies
/// `target_precision`. A last point fits all labels and reuses the largest size's thresholds.
#[allow(clippy::too_many_arguments)]
pub fn learning_curve(
    emb: ndarray::ArrayView2<f32>,
    labeled: &[usize],
    y: &[u32],
    n_classes: usize,
    model: &dyn crate::model::Classifier,
    target_precision: f64,
    folds: usize,
    steps: usize,
    pool: &[usize],
    seed: u64,
) -> Result<CurvePoints> {
    let set = LabeledSet {
        emb: emb.view(),
        labeled,
        y,
        n_classes,
        pool: &emb,
    };
    let params = CurveParams {
        target_precision,
        folds,
        steps,
        pool_size: pool.len(),
        repeats: 1,
        seed,
    };
    curve_once(&set, model, &params, pool, &mut None)
}

/// [`learning_curve`] with `params.seed`, `params.folds`, `params.steps` and
/// `params.target_precision` (the sample is `pool`: `pool_size` and `repeats` are not read),
/// with the model fitted on all labels (its last point) taken from `full` when there, and left
/// there: that fit depends on neither the seed nor the pool sample, so
/// [`learning_curve_repeated`]'s repeats share one.
fn curve_once(
    set: &LabeledSet,
    model: &dyn crate::model::Classifier,
    params: &CurveParams,
    pool: &[usize],
    full: &mut Option<Box<dyn crate::model::FittedClassifier>>,
) -> Result<CurvePoints> {
    let n = set.labeled.len();
    let mut classes: Vec<u32> = set.y.to_vec();
    classes.sort_unstable();
    classes.dedup();
    if n < 2 * params.folds || classes.len() < 2 || pool.is_empty() {
        return Ok(CurvePoints::default());
    }
    let x_pool = set.pool.gather(pool)?;
    let steps = fit_subset_steps(set, model, params, classes.len(), x_pool.view())?;
    let (mut points, last) = points_per_size(&steps, params.target_precision);
    // All labels: the model the user has now, scored with the largest size's thresholds.
    if let Some(last) = last {
        if n as f64 > points.accuracy.last().map_or(0.0, |p| p.0) {
            let fitted = match full.take() {
                Some(f) => f,
                None => model.fit(
                    set.emb.select(ndarray::Axis(0), set.labeled).view(),
                    set.y,
                    set.n_classes,
                )?,
            };
            let conf = max_proba(&fitted.predict_proba(x_pool.view())?);
            *full = Some(fitted);
            push_all_labels_point(&mut points, n, &conf, &last);
        }
    }
    Ok(points)
}

/// What the models fitted at one subset size predicted, one entry per fold that fitted one.
#[derive(Debug, Clone, Default)]
struct SizeStep {
    /// Labels the models at this step saw.
    labels: usize,
    /// Per fold: (confidence, correct) of the held-out fold's predictions.
    held: Vec<Vec<(f32, bool)>>,
    /// Per fold: confidence of the pool sample's predictions.
    pooled: Vec<Vec<f32>>,
    /// Per fold: share of the labeled classes the subset holds a label of.
    share: Vec<f64>,
}

/// A fold's held-out items (positions in `LabeledSet::labeled`) and their embeddings, taken
/// once and shared by every subset fitted in that fold.
struct HeldOut {
    test: Vec<usize>,
    x_test: ndarray::Array2<f32>,
}

/// One fit of the learning curve: one of a fold's nested subsets.
struct SubsetJob {
    fold: usize,
    step: usize,
    subset: Vec<usize>,
}

/// What one fold's model at one subset size predicted (see [`SizeStep`]).
struct SubsetFit {
    step: usize,
    held: Vec<(f32, bool)>,
    pooled: Vec<f32>,
    share: f64,
}

/// Fits `job`'s subset (positions in `set.labeled`) and scores the fold's held-out items and
/// the pool sample; `None` when the subset holds a single class.
fn fit_subset(
    set: &LabeledSet,
    model: &dyn crate::model::Classifier,
    held_out: &HeldOut,
    job: &SubsetJob,
    x_pool: ndarray::ArrayView2<f32>,
    n_label_classes: usize,
) -> Result<Option<SubsetFit>> {
    let ys: Vec<u32> = job.subset.iter().map(|&i| set.y[i]).collect();
    let mut distinct = ys.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 2 {
        return Ok(None);
    }
    let rows: Vec<usize> = job.subset.iter().map(|&i| set.labeled[i]).collect();
    let xs = set.emb.select(ndarray::Axis(0), &rows);
    let fitted = model.fit(xs.view(), &ys, set.n_classes)?;
    let proba = fitted.predict_proba(held_out.x_test.view())?;
    let (pred, conf) = crate::model::argmax_rows(&proba);
    Ok(Some(SubsetFit {
        step: job.step,
        held: held_out
            .test
            .iter()
            .enumerate()
            .map(|(r, &t)| (conf[r], pred[r] == set.y[t]))
            .collect(),
        pooled: max_proba(&fitted.predict_proba(x_pool)?),
        share: distinct.len() as f64 / n_label_classes as f64,
    }))
}

/// The cross-validation behind the curve: in each fold, fits the nested growing subsets of the
/// training part and records their predictions on the held-out fold and on `x_pool`. Subset
/// sizes are shares of a training part, identical in every fold, so step `s` pools the folds.
fn fit_subset_steps(
    set: &LabeledSet,
    model: &dyn crate::model::Classifier,
    params: &CurveParams,
    n_label_classes: usize,
    x_pool: ndarray::ArrayView2<f32>,
) -> Result<Vec<SizeStep>> {
    use crate::model::cv::stratified_folds;
    let (labeled, y, folds, seed) = (set.labeled, set.y, params.folds, params.seed);
    let n = labeled.len();
    let fold_of = stratified_folds(y, folds, seed);
    // A wide range (a tenth of the training part up to all of it) constrains the curve's shape.
    let train_size = n - n.div_ceil(folds);
    let min_size = (train_size / 10).max(10).min(train_size);
    let positions: Vec<usize> = (0..train_size).collect();
    let mut steps: Vec<SizeStep> = nested_subsets(&positions, min_size, params.steps, seed)
        .iter()
        .map(|subset| SizeStep {
            labels: subset.len(),
            ..SizeStep::default()
        })
        .collect();
    // Every (fold, step) fit is independent: run them in parallel (most subsets are smaller
    // than one of the model's row blocks, so a fit alone keeps one core busy), then file the
    // results in fold order, exactly as a sequential loop would.
    let mut held_out: Vec<HeldOut> = Vec::new();
    let mut jobs: Vec<SubsetJob> = Vec::new();
    for f in 0..folds {
        let train: Vec<usize> = (0..n).filter(|&i| fold_of[i] != f).collect();
        let test: Vec<usize> = (0..n).filter(|&i| fold_of[i] == f).collect();
        if test.is_empty() || train.len() < 2 {
            continue;
        }
        let subsets = nested_subsets(&train, min_size, params.steps, seed ^ (f as u64 + 1));
        let fold = held_out.len();
        jobs.extend(
            subsets
                .into_iter()
                .take(steps.len())
                .enumerate()
                .map(|(step, subset)| SubsetJob { fold, step, subset }),
        );
        let rows: Vec<usize> = test.iter().map(|&i| labeled[i]).collect();
        let x_test = set.emb.select(ndarray::Axis(0), &rows);
        held_out.push(HeldOut { test, x_test });
    }
    let fits: Vec<Option<SubsetFit>> = jobs
        .par_iter()
        .map(|job| {
            fit_subset(
                set,
                model,
                &held_out[job.fold],
                job,
                x_pool,
                n_label_classes,
            )
        })
        .collect::<Result<_>>()?;
    for fit in fits.into_iter().flatten() {
        let step = &mut steps[fit.step];
        step.held.push(fit.held);
        step.pooled.push(fit.pooled);
        step.share.push(fit.share);
    }
    Ok(steps)
}

/// The largest measured size's per-fold ATC thresholds and pooled certified threshold, which
/// the all-labels point reuses (it has no held-out fold of its own).
struct LastThresholds {
    atc: Vec<f32>,
    certified: Option<f32>,
}

/// One curve point per size that some fold measured: pool accuracy by ATC (one replicate per
/// fold), auto-label coverage at the certified threshold, class share and held-out accuracy.
fn points_per_size(
    steps: &[SizeStep],
    target_precision: f64,
) -> (CurvePoints, Option<LastThresholds>) {
    use crate::round::calibrate::select_threshold;
    let mut points = CurvePoints::default();
    let mut last = None;
    for step in steps {
        if step.held.is_empty() {
            continue;
        }
        // The models at this step saw `step.labels` labels (of a training part of n·(k−1)/k).
        let labels = step.labels as f64;
        let all: Vec<(f32, bool)> = step.held.iter().flatten().copied().collect();
        let acc = all.iter().filter(|p| p.1).count() as f64 / all.len() as f64;
        let thresholds: Vec<f32> = step
            .held
            .iter()
            .map(|h| atc_threshold(h).unwrap_or(f32::INFINITY))
            .collect();
        let reps: Vec<f64> = thresholds
            .iter()
            .zip(&step.pooled)
            .map(|(&t, c)| share_above(c, t))
            .collect();
        let conf: Vec<f32> = all.iter().map(|p| p.0).collect();
        let correct: Vec<bool> = all.iter().map(|p| p.1).collect();
        let certified =
            select_threshold(&conf, &correct, target_precision, 0.95, 30, 0).map(|t| t.threshold);
        let cov = certified.map_or(0.0, |t| {
            step.pooled
                .iter()
                .map(|c| share_at_or_above(c, t))
                .sum::<f64>()
                / step.pooled.len() as f64
        });
        points.held_out_accuracy.push((labels, acc));
        points
            .accuracy
            .push((labels, reps.iter().sum::<f64>() / reps.len() as f64));
        points.accuracy_replicates.push(reps);
        points
            .class_share
            .push(step.share.iter().sum::<f64>() / step.share.len() as f64);
        points.coverage.push((labels, cov));
        last = Some(LastThresholds {
            atc: thresholds,
            certified,
        });
    }
    (points, last)
}

/// Appends the point of the model fitted on all `n` labels, whose pool confidences are `conf`,
/// scored with the largest measured size's thresholds.
fn push_all_labels_point(points: &mut CurvePoints, n: usize, conf: &[f32], last: &LastThresholds) {
    let reps: Vec<f64> = last.atc.iter().map(|&t| share_above(conf, t)).collect();
    points
        .accuracy
        .push((n as f64, reps.iter().sum::<f64>() / reps.len() as f64));
    points.accuracy_replicates.push(reps);
    points.class_share.push(1.0);
    points.coverage.push((
        n as f64,
        last.certified.map_or(0.0, |t| share_at_or_above(conf, t)),
    ));
}

/// The model the learning curve fits: logistic regression, C = 10, uniform class weights, no
/// smoothing, `Logistic`'s default iteration cap. One constructor, so `budget` and the
/// research harness (examples/budget_curve.rs) measure the same curve. It is not quite
/// [`crate::simulate::yardstick`], which pins 100 iterations: moving to it would change every
/// projection, so that is a measured decision, not a refactor.
pub fn curve_model() -> crate::model::Logistic {
    crate::model::Logistic {
        class_weight: crate::model::ClassWeight::Uniform,
        smoothing: 0.0,
        ..crate::model::Logistic::default()
    }
}

/// Independent repeats of the learning curve `budget` averages. One repeat's projection after
/// 3 rounds moved between 0.6× and 1.8× of its mean with the seed alone (fold assignment, subset
/// order, pool sample; benches/results/budget.md, Session 3), which is larger than the ±25% the
/// projection is asked to hold; averaging R repeats divides that spread by about √R. Each repeat
/// costs `folds × steps` model fits on subsets of the labeled items plus predictions of the
/// pool sample, so the curve costs R times that, plus one fit on all labels the repeats share
/// (independent of the pool's size).
pub const CURVE_REPEATS: usize = 5;

/// [`learning_curve`] `params.repeats` times, repeat `r` with seed `seed + 1000·r` and its own
/// [`pool_sample`] of `pool_size` unlabeled rows of `labeled_mask`'s pool (repeat 0 is exactly the single curve with
/// `seed`), merged point by point: the points' sizes depend on the label count, folds and steps
/// only, so every repeat measures the same sizes; each repeat's fold estimates become
/// replicates of the point (its mean is then the mean over repeats, and [`Curve::fit_replicates`]
/// bootstraps over all of them); coverage, held-out accuracy and class share are averaged.
pub fn learning_curve_repeated(
    set: &LabeledSet,
    model: &dyn crate::model::Classifier,
    labeled_mask: &[bool],
    params: &CurveParams,
) -> Result<CurvePoints> {
    let repeats = params.repeats.max(1);
    let mut runs = Vec::with_capacity(repeats);
    let mut full = None;
    for r in 0..repeats as u64 {
        let s = params.seed.wrapping_add(1000 * r);
        let pool = pool_sample(labeled_mask, params.pool_size, s);
        let once = CurveParams { seed: s, ..*params };
        runs.push(curve_once(set, model, &once, &pool, &mut full)?);
    }
    Ok(merge_repeats(&runs))
}

/// Merges repeated curves by label count (see [`learning_curve_repeated`]).
pub fn merge_repeats(runs: &[CurvePoints]) -> CurvePoints {
    // labels -> (replicates, class shares, coverages, held-out accuracies)
    type Acc = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);
    let mut by_size: std::collections::BTreeMap<u64, Acc> = std::collections::BTreeMap::new();
    for run in runs {
        for i in 0..run.accuracy.len() {
            let e = by_size
                .entry(run.accuracy[i].0.to_bits())
                .or_insert_with(|| (Vec::new(), Vec::new(), Vec::new(), Vec::new()));
            e.0.extend_from_slice(&run.accuracy_replicates[i]);
            e.1.extend(run.class_share.get(i).copied());
            e.2.extend(run.coverage.get(i).map(|p| p.1));
            e.3.extend(run.held_out_accuracy.get(i).map(|p| p.1));
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    // f64 bits of non-negative numbers sort like the numbers, but be explicit.
    let mut sizes: Vec<(f64, Acc)> = by_size
        .into_iter()
        .map(|(b, a)| (f64::from_bits(b), a))
        .collect();
    sizes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = CurvePoints::default();
    for (n, (reps, share, cov, held)) in sizes {
        out.accuracy.push((n, mean(&reps)));
        out.accuracy_replicates.push(reps);
        out.class_share.push(mean(&share));
        if !cov.is_empty() {
            out.coverage.push((n, mean(&cov)));
        }
        if !held.is_empty() {
            out.held_out_accuracy.push((n, mean(&held)));
        }
    }
    out
}

/// Share of `conf` at or above `t`.
fn share_at_or_above(conf: &[f32], t: f32) -> f64 {
    if conf.is_empty() {
        return 0.0;
    }
    conf.iter().filter(|&&c| c >= t).count() as f64 / conf.len() as f64
}
