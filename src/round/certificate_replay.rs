//! The coverage the certificate will reach: the round's own calibration replayed on the
//! evidence it will have after more batches.
//!
//! Certified coverage does not grow smoothly with labels. It stays at 0 until the evidence
//! holds enough items above some threshold, then jumps, then moves as each batch's audits land
//! above or below the threshold. A trend of past coverage cannot foresee the jump; the evidence
//! can. The certificate's evidence is a uniform sample of the items it vouches for (the audits;
//! every label without a history), so the evidence still to come looks like the evidence now.
//! Each replicate keeps today's record, adds the items the next batches bring, drawn from it,
//! lets the model make fewer of its mistakes as the accuracy law says it will, and runs the
//! calibration the round ran. The thresholds it certifies are applied to today's predictions
//! on the pool. The mean over replicates is the projection, the 10th and 90th percentiles its
//! interval.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::round::calibrate::{calibrate, Calibration, CalibrationParams};
use crate::round::power_law::nearest_rank;

/// Replicates per projected label count, at most.
pub const REPLICATES: usize = 64;

/// Replicates per label count at least, however large the evidence.
pub const MIN_REPLICATES: usize = 16;

/// Evidence items calibrated over all replicates and label counts, at most: bounds the replay's
/// time on large pools by taking fewer replicates.
pub const WORK_ITEMS: usize = 8_000_000;

/// Evidence added at most, as a multiple of today's record (and at least
/// [`MIN_EXTRA_EVIDENCE`]); coverage is held beyond.
pub const MAX_EVIDENCE_GROWTH: usize = 4;

/// Evidence added at most on a small record.
pub const MIN_EXTRA_EVIDENCE: usize = 5_000;

/// Label counts projected at most (a geometric grid of batches ahead); beyond the last one
/// coverage is held.
pub const GRID_POINTS: usize = 24;

/// The certificate's evidence now: each item's out-of-fold prediction, its score and whether it
/// was right.
#[derive(Debug, Clone, Default)]
pub struct EvidenceRecord {
    /// Out-of-fold predicted class.
    pub predicted: Vec<u32>,
    /// Out-of-fold score the thresholds apply to.
    pub confidence: Vec<f32>,
    /// Whether the prediction matched the label.
    pub correct: Vec<bool>,
}

impl EvidenceRecord {
    /// Items in the record.
    pub fn len(&self) -> usize {
        self.predicted.len()
    }

    /// True when the record holds no item.
    pub fn is_empty(&self) -> bool {
        self.predicted.is_empty()
    }
}

/// Today's predictions on the items still unlabeled, sorted per predicted class, so a
/// calibration's coverage is one binary search per class.
#[derive(Debug, Clone)]
pub struct PoolScores {
    by_class: Vec<Vec<f32>>,
    total: usize,
}

impl PoolScores {
    /// From the unlabeled items' (predicted class, score).
    pub fn new(n_classes: usize, items: impl Iterator<Item = (u32, f32)>) -> PoolScores {
        let mut by_class: Vec<Vec<f32>> = vec![Vec::new(); n_classes];
        let mut total = 0;
        for (c, s) in items {
            total += 1;
            if let Some(v) = by_class.get_mut(c as usize) {
                v.push(s);
            }
        }
        for v in &mut by_class {
            v.sort_by(f32::total_cmp);
        }
        PoolScores { by_class, total }
    }

    /// Share of the items a calibration's thresholds accept.
    pub fn covered(&self, cal: &Calibration) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let accepted: usize = self
            .by_class
            .iter()
            .enumerate()
            .filter_map(|(c, v)| {
                let t = cal.threshold_for(c as u32)?;
                Some(v.len() - v.partition_point(|&s| s < t))
            })
            .sum();
        accepted as f64 / self.total as f64
    }
}

/// Projected coverage at one label count.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReplayPoint {
    /// Labels (human items) in all.
    pub labels: f64,
    /// Evidence items the certificate would have then.
    pub evidence: usize,
    /// 10th percentile of the coverage over replicates (the mean, when lower).
    pub low: f64,
    /// Mean coverage over replicates: the projection. Replicates split between certifying
    /// and not (the jump), and the mean moves smoothly where the median would jump.
    pub mean: f64,
    /// 90th percentile (the mean, when higher).
    pub high: f64,
}

/// What the replay needs besides the record and the pool.
pub struct ReplaySetup<'a> {
    /// The calibration the round ran (its confidence level the chosen candidate's).
    pub params: &'a CalibrationParams,
    /// Classes of the pool.
    pub n_classes: usize,
    /// Labels now.
    pub labels_now: f64,
    /// Items in the pool: no projection past labeling all of them.
    pub items: f64,
    /// Human items per batch.
    pub batch: f64,
    /// Evidence items each human item adds (the audit share with a history, 1 without).
    pub evidence_per_label: f64,
    /// Share of each batch drawn as audits, uniformly from the unlabeled items: they leave
    /// the auto-labeled items in proportion, while the strategy's picks leave only the items
    /// routed to humans.
    pub audit_share: f64,
    /// Coverage now, by every route: the replay projects the change from now.
    pub coverage_now: f64,
    /// Share of today's errors left at a label count (from the accuracy law; 1 = none fixed).
    pub errors_left: &'a (dyn Fn(f64) -> f64 + Sync),
    /// Seed of the replicates.
    pub seed: u64,
}

/// The replay's projection (summary.json `budget.coverage_replay`).
#[derive(Debug, Clone, Serialize)]
pub struct CertificateReplay {
    /// Evidence items each human item adds.
    pub evidence_per_label: f64,
    /// Replicates per point.
    pub replicates: usize,
    /// Projected coverage, now first, at growing label counts.
    pub points: Vec<ReplayPoint>,
}

impl CertificateReplay {
    /// Replays the certificate at a grid of label counts (see the module docs). `None` when
    /// the record is empty or no evidence would ever be added.
    pub fn run(
        record: &EvidenceRecord,
        pool: &PoolScores,
        setup: &ReplaySetup<'_>,
    ) -> Result<Option<CertificateReplay>> {
        let grows = setup.evidence_per_label.is_finite() && setup.evidence_per_label > 0.0;
        if record.is_empty() || setup.n_classes < 2 || !grows {
            return Ok(None);
        }
        let profile = Profile::new(record);
        let base = pool.covered(&calibrate_record(record, &profile, setup, (0, 1.0), 0)?);
        let offset = setup.coverage_now - base;
        let grid = grid(setup, record.len());
        let work: usize = grid.iter().map(|g| record.len() + g.1).sum();
        let reps = (WORK_ITEMS / work.max(1)).clamp(MIN_REPLICATES, REPLICATES);
        let errors_left: Vec<f64> = grid
            .iter()
            .map(|&(labels, _)| (setup.errors_left)(labels).clamp(0.0, 1.0))
            .collect();
        let tasks: Vec<(usize, usize)> = (0..grid.len())
            .flat_map(|g| (0..reps).map(move |r| (g, r)))
            .collect();
        let covered: Vec<f64> = tasks
            .par_iter()
            .map(|&(g, r)| {
                let ((labels, extra), left) = (grid[g], errors_left[g]);
                let stream = (g * reps + r) as u64 + 1;
                let cal = calibrate_record(record, &profile, setup, (extra, left), stream)?;
                let today = (pool.covered(&cal) + offset).clamp(0.0, 1.0);
                Ok(share_then(
                    today,
                    pool.total as f64,
                    labels - setup.labels_now,
                    setup,
                ))
            })
            .collect::<Result<_>>()?;
        let points = grid
            .iter()
            .zip(covered.chunks(reps))
            .map(|(&(labels, extra), c)| {
                let mut c = c.to_vec();
                c.sort_by(f64::total_cmp);
                let mean = c.iter().sum::<f64>() / c.len() as f64;
                // A few replicates that certify among many that do not put the mean above
                // the 90th percentile: the interval always holds the projection.
                ReplayPoint {
                    labels,
                    evidence: record.len() + extra,
                    low: nearest_rank(&c, 0.1).min(mean),
                    mean,
                    high: nearest_rank(&c, 0.9).max(mean),
                }
            })
            .collect();
        Ok(Some(CertificateReplay {
            evidence_per_label: setup.evidence_per_label,
            replicates: reps,
            points,
        }))
    }

    /// Projected (mean) coverage with `labels` labels.
    pub fn at(&self, labels: f64) -> f64 {
        self.interpolate(labels, |p| p.mean)
    }

    /// The 80% interval of the coverage with `labels` labels.
    pub fn interval(&self, labels: f64) -> (f64, f64) {
        (
            self.interpolate(labels, |p| p.low),
            self.interpolate(labels, |p| p.high),
        )
    }

    /// `value` linear in labels between the grid's points, held outside them.
    fn interpolate(&self, labels: f64, value: impl Fn(&ReplayPoint) -> f64) -> f64 {
        let p = &self.points;
        if labels <= p[0].labels {
            return value(&p[0]);
        }
        for w in p.windows(2) {
            if labels <= w[1].labels {
                let t = (labels - w[0].labels) / (w[1].labels - w[0].labels);
                return value(&w[0]) + t * (value(&w[1]) - value(&w[0]));
            }
        }
        value(&p[p.len() - 1])
    }
}

/// Coverage `today` of today's `unlabeled` items, as a share of the items still unlabeled
/// `added` labels later: the audits among them were drawn uniformly, so they took the
/// auto-labeled items' share of themselves; the strategy's picks came from the items left for
/// humans.
fn share_then(today: f64, unlabeled: f64, added: f64, setup: &ReplaySetup<'_>) -> f64 {
    let added = added.clamp(0.0, unlabeled);
    let left = unlabeled - added;
    if left <= 0.0 {
        // Every item labeled: nothing is left to cover.
        return 1.0;
    }
    let covered = today * (unlabeled - added * setup.audit_share.clamp(0.0, 1.0));
    (covered / left).clamp(0.0, 1.0)
}

/// (labels, extra evidence items) at 0, 1, 2, 3, 5, 8, … batches ahead, until every item is
/// labeled, the evidence has grown by [`MAX_EVIDENCE_GROWTH`] × the `record`'s, or
/// [`GRID_POINTS`] are taken.
fn grid(setup: &ReplaySetup<'_>, record: usize) -> Vec<(f64, usize)> {
    let max_extra = (record * MAX_EVIDENCE_GROWTH).max(MIN_EXTRA_EVIDENCE);
    let mut out = vec![(setup.labels_now, 0)];
    let mut batches = 1.0f64;
    while out.len() < GRID_POINTS {
        let labels = (setup.labels_now + batches * setup.batch).min(setup.items);
        let extra = ((labels - setup.labels_now) * setup.evidence_per_label).round() as usize;
        if extra > max_extra {
            break;
        }
        out.push((labels, extra));
        if labels >= setup.items {
            break;
        }
        batches = (batches * 1.5).ceil();
    }
    out
}

/// How the evidence still to come is drawn: today's record sorted by score, and the chance of
/// being right as a logistic curve in the score (Platt's scaling). A new item takes a score between two
/// neighbouring positions and is right with the curve's chance there, so the new errors fall
/// apart from one another as new audits' would. Copies of recorded items would bring each
/// recorded error back in a clump of identical scores (one clump ends the scan where the
/// record shows one error), and local error rates from a few hundred items are mostly noise:
/// two parameters fitted to all of them are not.
struct Profile {
    /// Predicted classes of the record's items by ascending score.
    classes: Vec<u32>,
    /// Scores in that order.
    scores: Vec<f32>,
    /// Intercept and slope of the chance of being right, logistic in the score.
    curve: (f64, f64),
}

/// Pseudo-observations, one right and one wrong, each weighing this much at the median score:
/// a record with no error (or no right item) still gets a finite curve.
const PRIOR_WEIGHT: f64 = 0.5;

impl Profile {
    fn new(record: &EvidenceRecord) -> Profile {
        let mut order: Vec<usize> = (0..record.len()).collect();
        order.sort_by(|&a, &b| {
            let (ca, cb) = (record.confidence[a], record.confidence[b]);
            ca.total_cmp(&cb).then(a.cmp(&b))
        });
        let scores: Vec<f32> = order.iter().map(|&i| record.confidence[i]).collect();
        let mut points: Vec<(f64, f64, f64)> = order
            .iter()
            .map(|&i| {
                let right = f64::from(u8::from(record.correct[i]));
                (f64::from(record.confidence[i]), right, 1.0)
            })
            .collect();
        let median = f64::from(scores[scores.len() / 2]);
        points.push((median, 1.0, PRIOR_WEIGHT));
        points.push((median, 0.0, PRIOR_WEIGHT));
        Profile {
            classes: order.iter().map(|&i| record.predicted[i]).collect(),
            scores,
            curve: fit_logistic(&points),
        }
    }

    /// The chance of being right at `score`.
    fn right_at(&self, score: f32) -> f64 {
        let (a, b) = self.curve;
        sigmoid(a + b * f64::from(score))
    }

    /// A new item: (the class of the nearest recorded item, score, chance of being right).
    fn draw(&self, rng: &mut Xoshiro256PlusPlus) -> (u32, f32, f64) {
        let last = self.classes.len() - 1;
        let u = rng.gen::<f64>() * last as f64;
        let i = (u.floor() as usize).min(last);
        let j = (i + 1).min(last);
        let t = u - i as f64;
        let score = self.scores[i] + (t as f32) * (self.scores[j] - self.scores[i]);
        let nearest = if t < 0.5 { i } else { j };
        (self.classes[nearest], score, self.right_at(score))
    }
}

/// The logistic function.
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Maximum-likelihood logistic curve through weighted (x, y, weight) points, by Newton's
/// method: (intercept, slope).
fn fit_logistic(points: &[(f64, f64, f64)]) -> (f64, f64) {
    let (mut a, mut b) = (0.0f64, 0.0f64);
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(x, y, w) in points {
            let p = sigmoid(a + b * x);
            let v = w * p * (1.0 - p);
            ga += w * (y - p);
            gb += w * (y - p) * x;
            haa += v;
            hab += v * x;
            hbb += v * x * x;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        a += da;
        b += db;
        if da.abs() + db.abs() < 1e-10 {
            break;
        }
    }
    (a, b)
}

/// The calibration on today's record plus `extra` new items drawn from its [`Profile`], each
/// error kept with probability `errors_left` (replicate `stream`; with nothing added or fixed
/// it is the record's own calibration).
fn calibrate_record(
    record: &EvidenceRecord,
    profile: &Profile,
    setup: &ReplaySetup<'_>,
    (extra, errors_left): (usize, f64),
    stream: u64,
) -> Result<Calibration> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(setup.seed ^ stream.wrapping_mul(0x9E37));
    let n = record.len() + extra;
    let nc = setup.n_classes as u32;
    let mut predicted = Vec::with_capacity(n);
    let mut confidence = Vec::with_capacity(n);
    let mut truth = Vec::with_capacity(n);
    let mut push = |p: u32, score: f32, right: bool| {
        predicted.push(p);
        confidence.push(score);
        truth.push(if right { p } else { (p + 1) % nc });
    };
    let fixed = |rng: &mut Xoshiro256PlusPlus| errors_left < 1.0 && rng.gen::<f64>() >= errors_left;
    for j in 0..record.len() {
        let right = record.correct[j] || fixed(&mut rng);
        push(record.predicted[j], record.confidence[j], right);
    }
    for _ in 0..extra {
        let (class, score, chance) = profile.draw(&mut rng);
        let right = rng.gen::<f64>() < chance || fixed(&mut rng);
        push(class, score, right);
    }
    calibrate(
        &predicted,
        &confidence,
        &truth,
        setup.n_classes,
        setup.params,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `n` items over 4 classes, scores evenly in (0, 1], each right with chance
    /// σ(8·score − 2): 0.998 at the top, 0.98 at 0.75, 0.88 at 0.5 (seeded draws).
    fn record(n: usize) -> EvidenceRecord {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut r = EvidenceRecord::default();
        for i in 0..n {
            let score = 1.0 - i as f32 / n as f32;
            let chance = 1.0 / (1.0 + (2.0 - 8.0 * f64::from(score)).exp());
            r.predicted.push((i % 4) as u32);
            r.confidence.push(score);
            r.correct.push(rng.gen::<f64>() < chance);
        }
        r
    }

    fn setup<'a>(
        params: &'a CalibrationParams,
        errors_left: &'a (dyn Fn(f64) -> f64 + Sync),
        per_label: f64,
    ) -> ReplaySetup<'a> {
        ReplaySetup {
            params,
            n_classes: 4,
            labels_now: 100.0,
            items: 10_100.0,
            batch: 100.0,
            evidence_per_label: per_label,
            audit_share: 0.3,
            coverage_now: 0.0,
            errors_left,
            seed: 3,
        }
    }

    /// The calibration with one scope (no per-class thresholds).
    fn one_scope() -> CalibrationParams {
        CalibrationParams {
            per_class: false,
            ..CalibrationParams::default()
        }
    }

    /// 10,000 unlabeled items over 4 classes, scores evenly in (0, 1].
    fn pool() -> PoolScores {
        PoolScores::new(
            4,
            (0..10_000).map(|i| ((i % 4) as u32, 1.0 - i as f32 / 10_000.0)),
        )
    }

    #[test]
    fn more_evidence_certifies_what_too_little_cannot_and_now_is_the_record_itself() {
        let params = one_scope();
        let rec = record(100);
        let pool = pool();
        let keep = |_: f64| 1.0;
        let s = setup(&params, &keep, 1.0);
        // 100 items: too few above any threshold precise enough to certify now.
        let profile = Profile::new(&rec);
        let own = calibrate_record(&rec, &profile, &s, (0, 1.0), 0).unwrap();
        assert!(!own.certified());
        let replay = CertificateReplay::run(&rec, &pool, &s).unwrap().unwrap();
        let now = replay.points[0];
        assert_eq!((now.low, now.mean, now.high), (0.0, 0.0, 0.0));
        // Ten batches on, the precise top has hundreds of items: certified.
        assert!(replay.at(1100.0) > 0.3, "{:?}", replay.points);
        let (lo, hi) = replay.interval(1100.0);
        assert!(lo <= replay.at(1100.0) && replay.at(1100.0) <= hi);
        // Evidence that never grows cannot certify more later.
        let frozen = setup(&params, &keep, 1e-9);
        let flat = CertificateReplay::run(&rec, &pool, &frozen)
            .unwrap()
            .unwrap();
        // (Once every item is labeled nothing is left to cover: the last point is 1.)
        let (last, before) = flat.points.split_last().unwrap();
        assert!(before.iter().all(|p| p.mean == 0.0), "{:?}", flat.points);
        assert_eq!((last.labels, last.mean), (10_100.0, 1.0));
    }

    #[test]
    fn fewer_errors_ahead_raise_coverage_and_replays_are_deterministic() {
        let params = one_scope();
        let rec = record(400);
        let pool = pool();
        let keep = |_: f64| 1.0;
        let halve = |l: f64| if l > 100.0 { 0.5 } else { 1.0 };
        let same = CertificateReplay::run(&rec, &pool, &setup(&params, &keep, 0.3)).unwrap();
        let better = CertificateReplay::run(&rec, &pool, &setup(&params, &halve, 0.3)).unwrap();
        let (same, better) = (same.unwrap(), better.unwrap());
        assert!(
            better.at(2000.0) > same.at(2000.0),
            "{} {}",
            better.at(2000.0),
            same.at(2000.0)
        );
        let again = CertificateReplay::run(&rec, &pool, &setup(&params, &halve, 0.3));
        let again = again.unwrap().unwrap();
        let means = |r: &CertificateReplay| r.points.iter().map(|p| p.mean).collect::<Vec<_>>();
        assert_eq!(means(&better), means(&again));
    }

    #[test]
    fn pool_coverage_counts_each_class_at_its_own_threshold() {
        let pool = PoolScores::new(2, [(0, 0.9), (0, 0.5), (1, 0.8), (1, 0.2)].into_iter());
        let mut cal = Calibration::uncertified(2, 0.9);
        assert_eq!(pool.covered(&cal), 0.0);
        cal.per_class[1] = Some(crate::round::calibrate::ThresholdChoice {
            threshold: 0.5,
            n_above: 1,
            n_correct: 1,
            precision: 1.0,
            lower_bound: 1.0,
            n_scope: 1,
        });
        assert_eq!(pool.covered(&cal), 0.25);
    }
}
