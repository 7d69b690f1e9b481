//! The auto-label certificate's stated confidence, checked empirically on synthetic pools
//! whose truth is known (issue 19): over 200 seeded pools, the certified auto-label set's
//! realized precision is below the target in at most 5% of them, when the certificate is
//! computed on audits (uniform draws) while the strategy's labels come from the adversarial
//! extremes. The same pools with the strategy's labels counted as evidence show the check can
//! fail: labels picked from the confident end certify sets that miss the target.

use labelwise::round::calibrate::{calibrate, CalibrationParams};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const POOLS: u64 = 200;
const ITEMS: usize = 10_000;
const ACTIVE: usize = 1_000;
const AUDITS: usize = 800;
const TARGET: f64 = 0.95;

/// How the strategy picks its labels.
#[derive(Clone, Copy, PartialEq)]
enum Picks {
    /// The least confident items (uncertainty sampling at its most extreme).
    LeastConfident,
    /// The most confident (a strategy, or a user, labeling the easy items).
    MostConfident,
}

/// One synthetic pool: a confidence score per item and whether the model is right on it,
/// right with probability `accuracy(score)`.
fn pool(seed: u64, accuracy: impl Fn(f64) -> f64) -> (Vec<f32>, Vec<bool>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let score: Vec<f32> = (0..ITEMS).map(|_| rng.gen::<f32>()).collect();
    let right = score
        .iter()
        .map(|&s| rng.gen::<f64>() < accuracy(s as f64))
        .collect();
    (score, right)
}

/// Certifies on the evidence and returns the realized precision of the auto-labeled items
/// (unlabeled, at or above the certified threshold), `None` when nothing is certified.
fn realized_precision(
    seed: u64,
    picks: Picks,
    active_is_evidence: bool,
    accuracy: fn(f64) -> f64,
) -> Option<f64> {
    let (score, right) = pool(seed, accuracy);
    let mut order: Vec<usize> = (0..ITEMS).collect();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    if picks == Picks::MostConfident {
        order.reverse();
    }
    let active = &order[..ACTIVE];
    let mut rest: Vec<usize> = order[ACTIVE..].to_vec();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xa0d1);
    rest.shuffle(&mut rng);
    let audits = &rest[..AUDITS];
    let unlabeled = &rest[AUDITS..];
    let evidence: Vec<usize> = if active_is_evidence {
        active.iter().chain(audits).copied().collect()
    } else {
        audits.to_vec()
    };
    // Predicted class 0 for all; the label is 0 where the model is right.
    let predicted = vec![0u32; evidence.len()];
    let confidence: Vec<f32> = evidence.iter().map(|&i| score[i]).collect();
    let y: Vec<u32> = evidence.iter().map(|&i| u32::from(!right[i])).collect();
    let cal = calibrate(
        &predicted,
        &confidence,
        &y,
        2,
        &CalibrationParams::default(),
    )
    .unwrap();
    let t = cal.threshold_for(0)?;
    let auto: Vec<usize> = unlabeled
        .iter()
        .copied()
        .filter(|&i| score[i] >= t)
        .collect();
    (!auto.is_empty())
        .then(|| auto.iter().filter(|&&i| right[i]).count() as f64 / auto.len() as f64)
}

/// (pools certified, pools certified below target) over the seeds.
fn tally(picks: Picks, active_is_evidence: bool, accuracy: fn(f64) -> f64) -> (usize, usize) {
    let results: Vec<f64> = (0..POOLS)
        .filter_map(|seed| realized_precision(seed, picks, active_is_evidence, accuracy))
        .collect();
    (
        results.len(),
        results.iter().filter(|&&p| p < TARGET).count(),
    )
}

/// Accuracy rising with the score: the top 40% clears the target, the rest does not.
fn rising(s: f64) -> f64 {
    0.88 + 0.12 * s
}

/// Accuracy just under the target everywhere: any certificate is a false one.
fn flat_below(_: f64) -> f64 {
    0.94
}

#[test]
fn audit_evidence_holds_the_stated_confidence_under_adversarial_selection() {
    for picks in [Picks::LeastConfident, Picks::MostConfident] {
        let (certified, below) = tally(picks, false, rising);
        eprintln!("rising: {certified} of {POOLS} pools certified, {below} below target");
        assert!(
            certified >= 100,
            "the check must have power: {certified} pools certified"
        );
        assert!(
            below * 20 <= POOLS as usize,
            "{below} of {POOLS} pools below target"
        );
        let (certified, below) = tally(picks, false, flat_below);
        eprintln!("flat 0.94: {certified} pools certified, {below} below target");
        assert!(
            below * 20 <= POOLS as usize,
            "flat: {below} of {POOLS} pools certified a false set"
        );
    }
}

#[test]
fn counting_the_strategys_easy_picks_as_evidence_breaks_the_certificate() {
    // The check above is not vacuous: the same certificate fed the most confident items as
    // evidence vouches for sets that miss the target far more often than 5%.
    let (certified, below) = tally(Picks::MostConfident, true, rising);
    eprintln!("easy picks as evidence: {certified} certified, {below} below target");
    assert!(
        below * 20 > POOLS as usize,
        "only {below} of {POOLS} pools below target"
    );
}
