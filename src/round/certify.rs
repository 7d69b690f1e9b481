//! Certifying auto-labels from audit draws whose sampling propensities are known (issue 19).
//!
//! Self-contained statistical core: pure functions over slices, no I/O, no model code.
//!
//! ## The design this certifies
//! Every round `s`, after the batch's active picks are chosen (blind to audits), `n_s` audit draws
//! are taken *with replacement* from a pre-registered distribution `q_s` over the round's frame
//! `D_s` = the pool minus the items used to train the model (audited items stay in the frame:
//! drawing one again costs nothing). Audit labels never train the model and never steer the
//! active picks, so conditional on the trajectory (models, frames, margins) the draws are
//! independent, and for the model of any later round `r` and any threshold `t`, each draw `j`
//! gives an unbiased Horvitz–Thompson term for
//! `E_r(t) = #{ i ∈ D_r : score_r(i) ≥ t, model r wrong on i }` (because `D_r ⊆ D_s`).
//! Errors on audited items are known exactly and subtracted; the auto-labels are the unlabeled
//! items of `D_r` above `t`. With uniform `q_s` the draws that land in the set are, given how many
//! do, uniform on it: a binomial, so the exact Clopper–Pearson bound applies to all rounds' draws
//! pooled ([`certify_pooled_uniform`]). With non-uniform `q_s`, [`betting_rejects`] tests the
//! importance-weighted terms (Waudby-Smith & Ramdas' betting, valid for weighted, independent,
//! non-identically distributed bounded terms).
//!
//! ## The scan
//! Levels are the current scores of the draws that lie in the frame, most confident first: the
//! `n_start`-th, then every `step` draws (label-free, so a fixed sequence). Each level is tested at
//! the full `alpha`; the scan stops at the first failure (fixed-sequence testing keeps the
//! family-wise error at `alpha`).
//!
//! ## One error budget
//! [`AlphaBudget`] splits the stated `1 − confidence` over every test family that can emit
//! auto-labels (candidate models × scopes, plus the duplicate route): a union bound over the
//! whole certificate, each family then scanned in a fixed sequence at its share.

use crate::error::{Error, Result};
use crate::round::calibrate::clopper_pearson_lower;

/// One audit draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    /// Round that drew it (draws of one round share one sampling distribution).
    pub round: u32,
    /// Pool index of the drawn item.
    pub item: usize,
    /// Probability that this one draw picked this item, `q_s(item)` (with replacement).
    pub propensity: f64,
}

/// What the certificate sees of the pool at certification time (all slices one entry per item).
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The current model's confidence (e.g. top-two margin).
    pub score: &'a [f64],
    /// In the current frame `D_r`: not a training label of the current model.
    pub frame: &'a [bool],
    /// Would be auto-labeled when above the threshold: unlabeled (a subset of the frame).
    pub candidate: &'a [bool],
    /// Whether the current model is wrong, for items with a human label (`None` otherwise).
    pub wrong: &'a [Option<bool>],
    /// Every audit draw of every round so far.
    pub draws: &'a [Draw],
}

/// A certified auto-label set.
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    /// Auto-label the candidates with score ≥ threshold.
    pub threshold: f64,
    /// How many candidates that is.
    pub n_auto: usize,
    /// Draws that landed in the set's frame part, and how many of them were wrong.
    pub draws_in_set: usize,
    /// Of those draws, how many had a wrong auto-label.
    pub errors_in_set: usize,
    /// Upper confidence bound on the auto-labels' error rate at the threshold.
    pub error_upper: f64,
}

// ---------------------------------------------------------------------------------------------
// Exact binomial bounds

/// One-sided exact (Clopper–Pearson) upper bound on a binomial rate: the `p` with
/// `P(Binomial(n, p) ≤ errors) = alpha`. 1 when `n == 0`.
pub fn binomial_upper(errors: u64, n: u64, alpha: f64) -> f64 {
    if n == 0 || errors >= n {
        return 1.0;
    }
    // The upper bound on the error rate is one minus the lower bound on the success rate.
    1.0 - clopper_pearson_lower(n - errors, n, 1.0 - alpha)
}

// ---------------------------------------------------------------------------------------------
// Betting test for weighted terms

/// Tests `H0: mean ≥ m0` for independent terms `x[j] ≤ upper[j]` sharing one mean (or means
/// ≥ m0 under H0) by betting against it: capital `∏ (1 + λ_j (m0 − x_j))` with `λ_j` chosen from
/// the earlier terms only (aGRAPA, capped at `cap / (upper_j − m0)` so the capital stays
/// positive). Rejects — the mean is certified below `m0` — once the capital reaches `1/alpha`
/// (Ville's inequality; valid at any stopping point, so terms may be appended round by round).
pub fn betting_rejects(x: &[f64], upper: &[f64], m0: f64, alpha: f64, cap: f64) -> bool {
    debug_assert_eq!(x.len(), upper.len());
    let (mut capital, mut s, mut s2, mut n) = (1.0f64, 0.0f64, 0.0f64, 0.0f64);
    let prior = m0 / 2.0;
    for (&xj, &bj) in x.iter().zip(upper) {
        let mu = (s + prior) / (n + 1.0);
        let var = ((s2 + prior * prior) / (n + 1.0) - mu * mu).max(1e-12);
        let gap = m0 - mu;
        let mut lam = if gap > 0.0 {
            gap / (var + gap * gap)
        } else {
            0.0
        };
        lam = lam.clamp(0.0, cap / (bj - m0).max(1e-12));
        capital *= 1.0 + lam * (m0 - xj);
        if capital >= 1.0 / alpha {
            return true;
        }
        s += xj;
        s2 += xj * xj;
        n += 1.0;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// The pooled uniform certificate

fn check(ev: &Evidence<'_>) -> Result<()> {
    let n = ev.score.len();
    if ev.frame.len() != n || ev.candidate.len() != n || ev.wrong.len() != n {
        return Err(Error::Internal(
            "certify: evidence slices differ in length".into(),
        ));
    }
    for (i, (&c, &f)) in ev.candidate.iter().zip(ev.frame).enumerate() {
        if c && !f {
            return Err(Error::Internal(format!(
                "certify: candidate {i} outside the frame"
            )));
        }
    }
    for d in ev.draws {
        if d.item >= n || !(d.propensity > 0.0 && d.propensity <= 1.0) {
            return Err(Error::Internal(format!("certify: bad draw {d:?}")));
        }
        if ev.frame[d.item] && ev.wrong[d.item].is_none() {
            return Err(Error::Internal(format!(
                "certify: draw of item {} has no label",
                d.item
            )));
        }
    }
    Ok(())
}

/// Checks that every round's draws have one propensity (uniform over that round's frame).
pub fn draws_are_uniform(draws: &[Draw]) -> bool {
    let mut seen: Vec<(u32, f64)> = Vec::new();
    for d in draws {
        match seen.iter().find(|(r, _)| *r == d.round) {
            Some(&(_, p)) if (p - d.propensity).abs() > 1e-12 * p.max(1e-300) => return false,
            Some(_) => {}
            None => seen.push((d.round, d.propensity)),
        }
    }
    true
}

/// Tests one threshold: the auto-label error rate at `t` is ≤ `1 − target` with confidence
/// `1 − alpha`, from every round's uniform draws pooled.
pub fn test_threshold_uniform(
    ev: &Evidence<'_>,
    t: f64,
    target: f64,
    alpha: f64,
) -> Option<Certificate> {
    let in_set = |i: usize| ev.frame[i] && ev.score[i] >= t;
    let n_set = (0..ev.score.len()).filter(|&i| in_set(i)).count();
    let n_auto = (0..ev.score.len())
        .filter(|&i| in_set(i) && ev.candidate[i])
        .count();
    if n_auto == 0 {
        return None;
    }
    // Errors known exactly: labeled frame items (the audited ones) in the set.
    let known = (0..ev.score.len())
        .filter(|&i| in_set(i) && !ev.candidate[i] && ev.wrong[i] == Some(true))
        .count();
    let (mut n, mut e) = (0u64, 0u64);
    for d in ev.draws.iter().filter(|d| in_set(d.item)) {
        n += 1;
        e += u64::from(ev.wrong[d.item] == Some(true));
    }
    let u = binomial_upper(e, n, alpha);
    let upper = ((u * n_set as f64 - known as f64) / n_auto as f64).max(0.0);
    (upper <= 1.0 - target).then_some(Certificate {
        threshold: t,
        n_auto,
        draws_in_set: n as usize,
        errors_in_set: e as usize,
        error_upper: upper,
    })
}

/// The fixed-sequence scan over the draws' own scores (see the module docs), each level at
/// `alpha`: the largest certified auto-label set, or `None`. Errors when the draws are not
/// uniform within a round (use the weighted certificate then) or the evidence is inconsistent.
pub fn certify_pooled_uniform(
    ev: &Evidence<'_>,
    target: f64,
    alpha: f64,
    n_start: usize,
    step: usize,
) -> Result<Option<Certificate>> {
    check(ev)?;
    if !draws_are_uniform(ev.draws) {
        return Err(Error::Internal(
            "certify: draws are not uniform within a round".into(),
        ));
    }
    let mut levels: Vec<f64> = ev
        .draws
        .iter()
        .filter(|d| ev.frame[d.item])
        .map(|d| ev.score[d.item])
        .collect();
    levels.sort_by(|a, b| b.total_cmp(a));
    let mut best = None;
    let mut k = n_start.max(1);
    while k <= levels.len() {
        match test_threshold_uniform(ev, levels[k - 1], target, alpha) {
            Some(c) => best = Some(c),
            None => break,
        }
        k += step.max(1);
    }
    Ok(best)
}

// ---------------------------------------------------------------------------------------------
// The error budget

/// How `alpha = 1 − confidence` is shared by every family of tests that can emit auto-labels.
#[derive(Debug, Clone, PartialEq)]
pub struct AlphaBudget {
    /// Per candidate model and scope (`[candidate][scope]`), then the duplicate route.
    pub per_test: Vec<Vec<f64>>,
    /// Share of alpha spent on the duplicate-copy route.
    pub duplicate: f64,
}

impl AlphaBudget {
    /// Equal shares: `candidates × scopes` families plus one for the duplicate route when it is
    /// on. The shares sum to `alpha`, so the whole certificate holds with `1 − alpha` (union bound).
    pub fn split(alpha: f64, candidates: usize, scopes: usize, duplicate_route: bool) -> Self {
        let families = candidates * scopes + usize::from(duplicate_route);
        let share = if families == 0 {
            alpha
        } else {
            alpha / families as f64
        };
        AlphaBudget {
            per_test: vec![vec![share; scopes]; candidates],
            duplicate: if duplicate_route { share } else { 0.0 },
        }
    }

    /// The total spent (≤ alpha).
    pub fn total(&self) -> f64 {
        self.per_test.iter().flatten().sum::<f64>() + self.duplicate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: the tests' own seeded generator.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }
        fn below(&mut self, n: usize) -> usize {
            ((self.next() * n as f64) as usize).min(n - 1)
        }
    }

    #[test]
    fn binomial_upper_matches_known_values() {
        // Zero errors: 1 − alpha^(1/n).
        assert!((binomial_upper(0, 59, 0.05) - (1.0 - 0.05f64.powf(1.0 / 59.0))).abs() < 1e-12);
        // scipy.stats.beta.ppf(0.95, 3, 98) = 0.0616192
        assert!(
            (binomial_upper(2, 100, 0.05) - 0.061_619).abs() < 1e-5,
            "{}",
            binomial_upper(2, 100, 0.05)
        );
        assert_eq!(binomial_upper(0, 0, 0.05), 1.0);
        assert!(binomial_upper(5, 200, 0.01) > binomial_upper(5, 200, 0.05));
    }

    #[test]
    fn betting_certifies_clean_draws_and_not_dirty_ones() {
        let clean = vec![0.0; 120];
        assert!(betting_rejects(&clean, &vec![1.0; 120], 0.05, 0.05, 0.9));
        let dirty: Vec<f64> = (0..400)
            .map(|j| if j % 12 == 0 { 1.0 } else { 0.0 })
            .collect();
        assert!(!betting_rejects(&dirty, &vec![1.0; 400], 0.05, 0.05, 0.9));
    }

    fn pool(n: usize, err_at: impl Fn(f64) -> f64, rng: &mut Rng) -> (Vec<f64>, Vec<bool>) {
        let score: Vec<f64> = (0..n).map(|i| 1.0 - i as f64 / n as f64).collect();
        let wrong = (0..n)
            .map(|i| rng.next() < err_at(i as f64 / n as f64))
            .collect();
        (score, wrong)
    }

    #[test]
    fn certifies_the_clean_part_of_a_pool() {
        let mut rng = Rng(7);
        let n = 5000;
        let (score, truth) = pool(n, |u| if u < 0.6 { 0.0 } else { 0.5 }, &mut rng);
        let draws: Vec<Draw> = (0..400)
            .map(|_| Draw {
                round: 1,
                item: rng.below(n),
                propensity: 1.0 / n as f64,
            })
            .collect();
        let mut wrong = vec![None; n];
        let mut candidate = vec![true; n];
        for d in &draws {
            wrong[d.item] = Some(truth[d.item]);
            candidate[d.item] = false;
        }
        let frame = vec![true; n];
        let ev = Evidence {
            score: &score,
            frame: &frame,
            candidate: &candidate,
            wrong: &wrong,
            draws: &draws,
        };
        let c = certify_pooled_uniform(&ev, 0.95, 0.05, 100, 10)
            .unwrap()
            .expect("certifies");
        assert!(
            c.n_auto > n / 2 && c.n_auto < (n as f64 * 0.65) as usize,
            "{c:?}"
        );
    }

    /// The stated confidence holds: pools whose precision crosses the target, adversarial labels
    /// (the least confident items train the model and are outside the frame), 300 seeds.
    #[test]
    fn false_certificates_are_rare() {
        let (n, target) = (3000, 0.95);
        let mut bad = 0;
        let seeds = 300;
        for seed in 0..seeds {
            let mut rng = Rng(seed * 7919 + 1);
            let (score, truth) = pool(n, |u| 0.01 + 0.3 * u * u, &mut rng);
            let frame: Vec<bool> = (0..n).map(|i| i < n - 300).collect(); // the 300 least confident trained
            let fr = frame.iter().filter(|&&f| f).count();
            let draws: Vec<Draw> = (0..300)
                .map(|_| Draw {
                    round: 1 + rng.below(3) as u32,
                    item: rng.below(fr),
                    propensity: 1.0 / fr as f64,
                })
                .collect();
            // The rounds drew from the same frame here, so one propensity per round holds.
            let mut wrong: Vec<Option<bool>> =
                (0..n).map(|i| (!frame[i]).then_some(truth[i])).collect();
            let mut candidate = frame.clone();
            for d in &draws {
                wrong[d.item] = Some(truth[d.item]);
                candidate[d.item] = false;
            }
            let ev = Evidence {
                score: &score,
                frame: &frame,
                candidate: &candidate,
                wrong: &wrong,
                draws: &draws,
            };
            if let Some(c) = certify_pooled_uniform(&ev, target, 0.05, 60, 10).unwrap() {
                let auto: Vec<usize> = (0..n)
                    .filter(|&i| candidate[i] && score[i] >= c.threshold)
                    .collect();
                let errs = auto.iter().filter(|&&i| truth[i]).count();
                if 1.0 - errs as f64 / auto.len() as f64 <= target - 1e-12 {
                    bad += 1;
                }
            }
        }
        assert!(
            bad as f64 <= 0.05 * seeds as f64,
            "{bad} of {seeds} pools below target"
        );
    }

    #[test]
    fn non_uniform_rounds_are_refused() {
        let d = |p| Draw {
            round: 1,
            item: 0,
            propensity: p,
        };
        assert!(!draws_are_uniform(&[d(0.1), d(0.2)]));
        assert!(draws_are_uniform(&[
            d(0.1),
            d(0.1),
            Draw {
                round: 2,
                item: 1,
                propensity: 0.3
            }
        ]));
    }

    #[test]
    fn the_budget_sums_to_alpha() {
        let b = AlphaBudget::split(0.05, 2, 3, true);
        assert!((b.total() - 0.05).abs() < 1e-15);
        assert!((b.duplicate - 0.05 / 7.0).abs() < 1e-15);
        assert_eq!(
            AlphaBudget::split(0.05, 1, 1, false).per_test,
            vec![vec![0.05]]
        );
    }
}
