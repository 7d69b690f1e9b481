//! Batch selection: which items humans should label next.
//!
//! One function, [`select`], serves `select`, `plan` and `simulate`, so the strategy measured in
//! simulations is exactly the one users run.
//!
//! - **Cold start** (no class probabilities, fewer than `cold_start_labels` labels, or fewer
//!   than two labeled classes): TypiClust. k-means into about `labeled + batch` clusters;
//!   clusters without labels first (largest first), then the clusters with the most items per
//!   label; from each, the most typical eligible member, typicality being the paper's inverse
//!   mean distance to the nearest members of the same cluster (50 of them, at most half the
//!   cluster). Every cluster, small and far-away ones included, gets a pick before any cluster
//!   gets a second.
//! - **Hybrid** (the default, with a model), first while `labeled + batch ≤
//!   coverage_clusters` (200): the same cluster coverage, but within a cluster members rank by
//!   typicality blended with uncertainty (weight `coverage_uncertainty`, 0.2). Then: a base
//!   score, the weighted mean of rank-normalised uncertainty (1 − ensemble margin), rarity,
//!   density and class under-representation (few labels in the predicted class), and greedy
//!   k-center-style diversity: each next pick maximises
//!   `base − diversity · max cosine to (labeled ∪ already picked)`. This is what keeps top-k
//!   uncertainty from returning near-identical items of one class (modAL #11, #162). Coverage
//!   wins while labels are few and clusters coarse (agnews, 4 classes: AULC 0.829 vs 0.808 for
//!   the scored pick from round 2 on); on clinc150 (151 classes) the scored pick wins once more
//!   than a couple of batches are labeled (0.764 with coverage to 200 clusters, 0.740 to 500).
//! - Plain strategies for comparison: `random`, `margin`, `entropy` (no diversity; random when
//!   no model exists yet, as peers do), `coreset` (greedy k-center over all eligible items, from
//!   the labeled ones, GEMM in blocks) and `typiclust` (the cold-start rule, always).
//!
//! Every strategy takes at most one item per near-duplicate group, skips groups that already
//! hold a labeled item, and never picks an ineligible item (routed labeled/auto/duplicate, or a
//! group member other than the representative: [`crate::round::Round::run_select`] makes only
//! representatives and singletons eligible).
//! Cost: hybrid works on the `max(20,000, 20·batch)` best candidates by base score, so one
//! round is O(n log n + candidates · (labeled + batch) · d) and never builds an n × n matrix;
//! TypiClust costs one k-means plus, per cluster picked from, a Gram matrix of at most
//! 2,048 × 2,048 members.
//! Determinism: ties break by index, parallel loops write their own slots, k-means and random
//! choices take the seed; output is bit-identical for any number of rayon threads.

use std::collections::HashSet;

use ndarray::{linalg::general_mat_mul, Array2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::index::graph::NeighborGraph;
use crate::index::kmeans;
use crate::round::rarity::{density, rank01};
use crate::round::rows::{fit_kmeans, PoolRows, RowLookup};
use crate::round::uncertainty::ItemUncertainty;

/// Hybrid's candidate pool is at least this many items (all of them in pools up to this size).
pub const POOL_MIN: usize = 20_000;
/// TypiClust caps its clusters here (as the reference implementation does) so k-means stays
/// cheap once many labels exist; the largest uncovered clusters are used first.
pub const TYPICLUST_MAX_CLUSTERS: usize = 500;
/// Candidate rows per GEMM block when measuring similarity to labeled items.
const BLOCK: usize = 1024;

/// How the batch is chosen (see the module docs); `hybrid` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Uniform, seeded: the baseline every other strategy must beat.
    Random,
    /// Smallest top-1 − top-2 probability first.
    Margin,
    /// Highest predictive entropy first.
    Entropy,
    /// Greedy k-center: the item farthest from everything labeled or picked.
    Coreset,
    /// Most typical item of each uncovered k-means cluster.
    Typiclust,
    /// Uncertainty × rarity × density × class need, made diverse; TypiClust on cold start.
    #[default]
    Hybrid,
}

/// Knobs of the selection; all are CLI flags.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectParams {
    /// Items to pick.
    pub batch: usize,
    /// Strategy.
    pub strategy: Strategy,
    /// Hybrid: weight of uncertainty (1 − margin).
    pub w_uncertainty: f32,
    /// Hybrid: weight of the rarity score (when one is given).
    pub w_rarity: f32,
    /// Hybrid: weight of representativeness (density).
    pub w_density: f32,
    /// Hybrid: weight of class under-representation (few labels in the predicted class).
    pub w_class: f32,
    /// Hybrid: penalty per unit of cosine to the nearest labeled or already picked item.
    pub diversity: f32,
    /// Below this many labels the hybrid strategy uses the cold-start (TypiClust) rule.
    pub cold_start_labels: usize,
    /// Graph neighbours that define density.
    pub density_neighbors: usize,
    /// TypiClust typicality: nearest members of the item's own cluster whose mean distance
    /// defines it (clipped to half the cluster, as in the paper's code).
    pub typical_neighbors: usize,
    /// Hybrid keeps TypiClust's cluster coverage while `labeled + batch` clusters are at most
    /// this many; past it the clusters get too small to mean "an unlabeled region" and k-means
    /// too slow, and the scored, diversity-penalised pick takes over.
    pub coverage_clusters: usize,
    /// Hybrid's coverage phase: weight of uncertainty against typicality within a cluster.
    pub coverage_uncertainty: f32,
    /// TypiClust k-means runs (different seeds); the one with the lowest inertia is used, so
    /// the clusters a batch covers depend less on one k-means++ start. Default 1: 3 or 5 runs
    /// did not raise agnews AULC (0.822 vs 0.829, seeds 0–2) and cost 3–5× selection time.
    pub typiclust_restarts: usize,
    /// Hybrid's coverage phase: uncovered clusters rank by size × (1 + this × the cluster's
    /// mean uncertainty rank), so confused regions are covered first. Default 0: weight 1 gave
    /// agnews AULC 0.833 vs 0.829 on seeds 0–2 but 0.824 vs 0.826 on seeds 3–5 (noise).
    pub coverage_need: f32,
    /// Share of the batch drawn as audits once a model exists: uniform random draws from the
    /// unlabeled items the active picks left (auto-labeled ones included), whose labels are the
    /// auto-label certificate's unbiased evidence (active picks are chosen for being hard, so
    /// their error rate is not the confident region's). 0 turns audits off.
    pub audit_share: f64,
    /// Seed for k-means and random choices.
    pub seed: u64,
}

impl Default for SelectParams {
    fn default() -> Self {
        SelectParams {
            batch: 100,
            strategy: Strategy::Hybrid,
            // Measured with examples/select_eval.rs (proxy AL, banking77 and clinc150):
            // density-heavy weights and a mild diversity penalty matched or beat TypiClust;
            // uncertainty-heavy weights (0.5) or diversity ≥ 2 lost 0.03–0.07 mean accuracy.
            w_uncertainty: 0.3,
            w_rarity: 0.1,
            w_density: 0.5,
            w_class: 0.1,
            diversity: 0.5,
            cold_start_labels: 20,
            density_neighbors: 10,
            // Measured with examples/al_lab.rs (issue 7; the simulate loop and yardstick).
            // Typicality from 50 in-cluster neighbours gave the best first batch on all three
            // shared datasets (mean yardstick accuracy after batch 1 over 10 k-means seeds,
            // agnews: 0.72 vs 0.65 with the paper's 20 and 0.61 with graph density; banking77
            // 0.57 vs 0.54; clinc150 0.456 vs 0.444). Coverage to 200 clusters with 0.2
            // uncertainty: agnews AULC 0.829 (3 seeds; 0.808 without coverage), banking77 0.823,
            // clinc150 0.764 (seed 0; 0.740 with coverage to 500 clusters).
            typical_neighbors: 50,
            coverage_clusters: 200,
            coverage_uncertainty: 0.2,
            typiclust_restarts: 1,
            coverage_need: 0.0,
            audit_share: DEFAULT_AUDIT_SHARE,
            seed: 0,
        }
    }
}

/// Default [`SelectParams::audit_share`] (measured with benches/loop_protocol.sh; see
/// BENCHMARKS.md, "Auto-labels in the loop").
pub const DEFAULT_AUDIT_SHARE: f64 = 0.3;

impl SelectParams {
    /// Rejects unusable values with a message naming the parameter.
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            return Err(Error::Usage("select: batch must be ≥ 1".into()));
        }
        for (name, v) in [
            ("w_uncertainty", self.w_uncertainty),
            ("w_rarity", self.w_rarity),
            ("w_density", self.w_density),
            ("w_class", self.w_class),
            ("diversity", self.diversity),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Usage(format!(
                    "select: {name} must be a finite number ≥ 0, got {v}"
                )));
            }
        }
        if self.w_uncertainty + self.w_rarity + self.w_density + self.w_class <= 0.0 {
            return Err(Error::Usage(
                "select: at least one of the hybrid weights must be > 0".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.coverage_uncertainty) {
            return Err(Error::Usage(format!(
                "select: coverage uncertainty must be in [0, 1], got {}",
                self.coverage_uncertainty
            )));
        }
        if !(self.coverage_need >= 0.0 && self.coverage_need.is_finite()) {
            return Err(Error::Usage(format!(
                "select: coverage need weight must be finite and ≥ 0, got {}",
                self.coverage_need
            )));
        }
        if !(0.0..=1.0).contains(&self.audit_share) {
            return Err(Error::Usage(format!(
                "select: audit share must be in [0, 1], got {}",
                self.audit_share
            )));
        }
        if self.typiclust_restarts == 0 {
            return Err(Error::Usage(
                "select: TypiClust k-means runs must be ≥ 1".into(),
            ));
        }
        if self.typical_neighbors == 0 {
            return Err(Error::Usage(
                "select: typical neighbours must be ≥ 1".into(),
            ));
        }
        if self.density_neighbors == 0 {
            return Err(Error::Usage(
                "select: density neighbours must be ≥ 1".into(),
            ));
        }
        Ok(())
    }
}

/// Label-dependent input of one round, as plain data so selection does not depend on the
/// model types.
#[derive(Debug, Clone, Copy)]
pub struct SelectInput<'a> {
    /// Known class per item.
    pub labels: &'a [Option<u32>],
    /// True for items a human may be asked about: routed `human` and standing for their
    /// near-duplicate group (a singleton or the group's representative). Labeled, auto-labeled,
    /// duplicate-routed items and the other members of a group are false.
    pub eligible: &'a [bool],
    /// Which item stands for its near-duplicate group (`None`: every item stands for itself).
    /// An audit draws a whole group through its representative, like every other pick.
    pub representative: Option<&'a [bool]>,
    /// The current model's class and uncertainty per item, when a model exists.
    pub uncertainty: Option<&'a ItemUncertainty>,
    /// Items audited in earlier rounds (`None`: none). `labels` shows them unlabeled and the
    /// caller makes them eligible, so the strategy ranks as if they had never been audited; a
    /// pick of one is *promoted* ([`Selection::promoted`]) instead of sent to a human (its label
    /// is known), and audits never draw one again. Either way an audit leaves the pool of
    /// unlabeled-looking items exactly when an unaudited item would have, which is what keeps the
    /// audits a uniform sample of what the certificate vouches for.
    pub audited: Option<&'a [bool]>,
}

/// The batch, in the order humans should label it, plus a priority for every item.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Picked items, rank order (first = label first).
    pub picked: Vec<u32>,
    /// Score of each pick at the moment it was picked (strategy-specific, higher = better).
    pub score: Vec<f32>,
    /// Why each pick was made, `;`-separated (e.g. `uncertain;rare;typical`).
    pub reasons: Vec<String>,
    /// For every item: its rank among eligible items (1 = label first), `None` if ineligible.
    /// The batch holds ranks 1..=picked.len(); the rest continue by the strategy's score.
    pub priority: Vec<Option<u32>>,
    /// Probability that this pick was drawn, given everything before the draw: 1 for the
    /// strategy's (deterministic) picks, `audits / frame` for audits. The certificate and any
    /// peer tool re-weighting the labels need it.
    pub propensity: Vec<f64>,
    /// How many of the picks (the last ones) are audits.
    pub n_audits: usize,
    /// The strategy that actually ran (hybrid on cold start runs typiclust; margin/entropy
    /// without a model run random).
    pub strategy_used: Strategy,
    /// Audited items the strategy picked (see [`SelectInput::audited`]): not in the batch, their
    /// labels known; from now on they are the strategy's picks, not evidence.
    pub promoted: Vec<u32>,
}

/// The reason a promoted audit is recorded with in the round history.
pub const PROMOTED_REASON: &str = "promoted";

/// The reason an audit pick carries in batch.csv and exports.
pub const AUDIT_REASON: &str = "audit";

/// Picks the next batch (see the module docs).
///
/// `dup_group`: near-duplicate group per item (negative = no group). `rarity`: per-item score
/// from [`crate::round::rarity::score`], used by hybrid when given. Errors with `Error::Usage` on bad
/// parameters, `Error::Internal` on inputs whose lengths do not match the embeddings.
pub fn select(
    rows: &dyn PoolRows,
    graph: &NeighborGraph,
    input: &SelectInput,
    dup_group: &[i64],
    rarity: Option<&[f32]>,
    params: &SelectParams,
) -> Result<Selection> {
    params.validate()?;
    let n = rows.n_rows();
    check_len("labels", input.labels.len(), n)?;
    check_len("eligible flags", input.eligible.len(), n)?;
    if let Some(a) = input.audited {
        check_len("audit flags", a.len(), n)?;
    }
    check_len("duplicate groups", dup_group.len(), n)?;
    if let Some(r) = rarity {
        check_len("rarity scores", r.len(), n)?;
    }
    if let Some(u) = input.uncertainty {
        check_len("uncertainty scores", u.len(), n)?;
        if u.n_classes() == 0 {
            return Err(Error::Internal("select: the model has no classes".into()));
        }
    }
    if graph.len() != n && graph.k != 0 {
        return Err(Error::Internal(format!(
            "select: the neighbour graph has {} items, the embeddings {n}",
            graph.len()
        )));
    }
    if u32::try_from(n).is_err() {
        return Err(Error::Usage(format!(
            "select: at most {} items are supported",
            u32::MAX
        )));
    }

    let mut ctx = Ctx::new(rows, graph, *input, dup_group, params);
    let n_labeled = input.labels.iter().filter(|l| l.is_some()).count();
    let n_classes_labeled = input.labels.iter().flatten().collect::<HashSet<_>>().len();
    let has_model = input.uncertainty.is_some();
    let cold = !has_model || n_labeled < params.cold_start_labels.max(1) || n_classes_labeled < 2;

    // Audits only once a model exists: before that nothing can be auto-labeled, and the cold
    // start's coverage of the clusters is worth more than evidence.
    let n_audits = if cold {
        0
    } else {
        (params.batch as f64 * params.audit_share).round() as usize
    };
    ctx.capacity = params.batch - n_audits.min(params.batch);
    let used = match params.strategy {
        Strategy::Hybrid if cold => Strategy::Typiclust,
        Strategy::Margin | Strategy::Entropy if !has_model => Strategy::Random,
        s => s,
    };
    match used {
        Strategy::Random => ctx.random(),
        Strategy::Margin | Strategy::Entropy => {
            let model = input
                .uncertainty
                .ok_or_else(|| Error::Internal("uncertainty strategy without a model".into()))?;
            let u = model.scores(used == Strategy::Entropy);
            let label = if used == Strategy::Margin {
                "uncertain (margin)"
            } else {
                "uncertain (entropy)"
            };
            ctx.by_score(u, label);
        }
        Strategy::Coreset => ctx.coreset()?,
        Strategy::Typiclust => ctx.typiclust(0.0)?,
        Strategy::Hybrid if n_labeled + params.batch <= params.coverage_clusters => {
            ctx.typiclust(params.coverage_uncertainty)?
        }
        Strategy::Hybrid => {
            let model = input
                .uncertainty
                .ok_or_else(|| Error::Internal("hybrid without a model".into()))?;
            ctx.hybrid(model, rarity)?;
        }
    }
    let promoted = ctx.promote_audited();
    ctx.audits(n_audits);
    let mut selection = ctx.finish(used);
    selection.promoted = promoted;
    Ok(selection)
}

fn check_len(what: &str, got: usize, n: usize) -> Result<()> {
    if got != n {
        return Err(Error::Internal(format!(
            "select: {got} {what} for {n} items"
        )));
    }
    Ok(())
}

/// Mixed into the seed for audit draws, so they are not the random strategy's order.
const AUDIT_SEED: u64 = 0xa0d1_75ee_d000_0001;

/// The seed of one round's random choices: `seed` mixed with which items are labeled (never
/// with the labels' values). One `--seed` serves every round of a loop, so a stream seeded by it
/// alone would repeat each round; on a shrinking frame it then draws the *neighbours* of the
/// last round's picks (row order is often class order), and a loop's audits become a few
/// clusters of look-alike items instead of independent uniform draws. Deterministic: rerunning
/// a round on the same labels draws the same items.
fn round_seed(seed: u64, labels: &[Option<u32>]) -> u64 {
    // SplitMix64's finaliser over the labeled positions.
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    labels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_some())
        .fold(mix(seed), |h, (i, _)| mix(h ^ mix(i as u64 + 1)))
}

/// Working state shared by the strategies.
struct Ctx<'a, 'e, 'i> {
    rows: &'e dyn PoolRows,
    /// Number of items.
    n: usize,
    graph: &'a NeighborGraph,
    input: SelectInput<'i>,
    dup_group: &'a [i64],
    params: &'a SelectParams,
    /// Groups already holding a labeled item or a pick.
    used_groups: HashSet<i64>,
    picked: Vec<u32>,
    is_picked: Vec<bool>,
    score: Vec<f32>,
    reasons: Vec<String>,
    /// Order of the remaining eligible items after the batch (best first).
    rest_order: Vec<u32>,
    /// Picks the strategy makes (the batch minus its audits).
    capacity: usize,
    propensity: Vec<f64>,
    /// Seed of this round's random choices ([`round_seed`]).
    rng_seed: u64,
}

impl<'a, 'e, 'i> Ctx<'a, 'e, 'i> {
    fn new(
        rows: &'e dyn PoolRows,
        graph: &'a NeighborGraph,
        input: SelectInput<'i>,
        dup_group: &'a [i64],
        params: &'a SelectParams,
    ) -> Ctx<'a, 'e, 'i> {
        let n = rows.n_rows();
        let used_groups = input
            .labels
            .iter()
            .zip(dup_group)
            .filter(|(l, &g)| l.is_some() && g >= 0)
            .map(|(_, &g)| g)
            .collect();
        Ctx {
            rows,
            n,
            graph,
            input,
            dup_group,
            params,
            used_groups,
            picked: Vec::new(),
            is_picked: vec![false; n],
            score: Vec::new(),
            reasons: Vec::new(),
            rest_order: Vec::new(),
            capacity: params.batch,
            propensity: Vec::new(),
            rng_seed: round_seed(params.seed, input.labels),
        }
    }

    /// Eligible and not blocked by a used duplicate group or an earlier pick.
    fn can_pick(&self, i: usize) -> bool {
        self.input.eligible[i]
            && !self.is_picked[i]
            && (self.dup_group[i] < 0 || !self.used_groups.contains(&self.dup_group[i]))
    }

    fn take(&mut self, i: usize, score: f32, reason: String) {
        self.is_picked[i] = true;
        if self.dup_group[i] >= 0 {
            self.used_groups.insert(self.dup_group[i]);
        }
        self.picked.push(i as u32);
        self.score.push(score);
        self.reasons.push(reason);
        self.propensity.push(1.0);
    }

    fn full(&self) -> bool {
        self.picked.len() >= self.capacity
    }

    /// Draws `n` audits uniformly, without replacement, from the frame: every unlabeled item
    /// not picked, whatever its route (auto-labeled ones included, or the draws would not be a
    /// uniform sample of the region the certificate tests), counting a near-duplicate group as
    /// one unit drawn through its representative (groups holding a label or a pick are out:
    /// their members are the duplicate route's, certified on its own record).
    fn audits(&mut self, n: usize) {
        let representative = self.input.representative;
        let mut frame: Vec<u32> = (0..self.n)
            .filter(|&i| {
                let g = self.dup_group[i];
                self.input.labels[i].is_none()
                    && !self.input.audited.is_some_and(|a| a[i])
                    && !self.is_picked[i]
                    && (g < 0
                        || (!self.used_groups.contains(&g) && representative.is_none_or(|r| r[i])))
            })
            .map(|i| i as u32)
            .collect();
        if representative.is_none() {
            // Without representatives, a group's first member stands for it.
            let mut seen = HashSet::new();
            frame.retain(|&i| {
                let g = self.dup_group[i as usize];
                g < 0 || seen.insert(g)
            });
        }
        let n = n.min(frame.len());
        if n == 0 {
            return;
        }
        let propensity = n as f64 / frame.len() as f64;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.rng_seed ^ AUDIT_SEED);
        let (drawn, _) = frame.partial_shuffle(&mut rng, n);
        let mut drawn = drawn.to_vec();
        drawn.sort_unstable();
        for i in drawn {
            self.is_picked[i as usize] = true;
            if self.dup_group[i as usize] >= 0 {
                self.used_groups.insert(self.dup_group[i as usize]);
            }
            self.picked.push(i);
            self.score.push(0.0);
            self.reasons.push(AUDIT_REASON.into());
            self.propensity.push(propensity);
        }
    }

    fn eligible_ids(&self) -> Vec<u32> {
        (0..self.n as u32)
            .filter(|&i| self.input.eligible[i as usize])
            .collect()
    }

    /// Eligible ids sorted by `s` descending (ties: lower index first).
    fn sorted_by(&self, s: &[f32]) -> Vec<u32> {
        let mut ids = self.eligible_ids();
        ids.par_sort_unstable_by(|&a, &b| s[b as usize].total_cmp(&s[a as usize]).then(a.cmp(&b)));
        ids
    }

    fn density(&self) -> Vec<f32> {
        let n = self.n;
        let m = self.params.density_neighbors.min(self.graph.k);
        density(self.graph, m, n)
    }

    fn random(&mut self) {
        let mut ids = self.eligible_ids();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.rng_seed);
        ids.shuffle(&mut rng);
        let total = ids.len().max(1) as f32;
        for (r, &i) in ids.iter().enumerate() {
            if self.full() {
                break;
            }
            if self.can_pick(i as usize) {
                self.take(i as usize, 1.0 - r as f32 / total, "random".into());
            }
        }
        self.rest_order = ids;
    }

    /// Top items by a per-item score, no diversity beyond one per duplicate group.
    fn by_score(&mut self, s: &[f32], reason: &str) {
        let order = self.sorted_by(s);
        for &i in &order {
            if self.full() {
                break;
            }
            if self.can_pick(i as usize) {
                self.take(i as usize, s[i as usize], reason.to_string());
            }
        }
        self.rest_order = order;
    }

    fn coreset(&mut self) -> Result<()> {
        if self.rows.matrix().is_none() {
            return Err(Error::Usage(
                "the coreset strategy compares every item with every pick: it needs the pool's \
                 matrix in one process"
                    .into(),
            ));
        }
        let emb = RowLookup::new(self.rows, Vec::new())?;
        let cand = self.eligible_ids();
        let labeled: Vec<u32> = labeled_ids(self.input.labels);
        let mut sim = if labeled.is_empty() {
            vec![f32::NEG_INFINITY; cand.len()]
        } else {
            max_cos(&emb, &cand, &labeled)
        };
        let dens = self.density();
        while !self.full() {
            // Farthest candidate (lowest max-cosine); with nothing labeled or picked yet,
            // the most typical item, so the first pick is a sensible centre.
            let mut best: Option<(usize, f32)> = None;
            for (j, &i) in cand.iter().enumerate() {
                if !self.can_pick(i as usize) {
                    continue;
                }
                let key = if sim[j] == f32::NEG_INFINITY {
                    -2.0 - dens[i as usize]
                } else {
                    sim[j]
                };
                if best.is_none_or(|(_, b)| key < b) {
                    best = Some((j, key));
                }
            }
            let Some((j, key)) = best else { break };
            let i = cand[j] as usize;
            let dist = if key < -1.5 { 1.0 } else { 1.0 - key };
            self.take(i, dist, "far-from-labeled".into());
            update_sim(&emb, &cand, &mut sim, i);
        }
        let dist: Vec<f32> = {
            let mut d = vec![0f32; self.n];
            for (j, &i) in cand.iter().enumerate() {
                d[i as usize] = -sim[j];
            }
            d
        };
        self.rest_order = self.sorted_by(&dist);
        Ok(())
    }

    /// TypiClust: k-means into `labeled + batch` clusters (at most [`TYPICLUST_MAX_CLUSTERS`]);
    /// clusters without labels first, largest first, then the most items per label; from each,
    /// the most typical eligible member. With `lam > 0` and a model, a member's rank blends
    /// typicality (1 − lam) and uncertainty (lam) within its cluster. Typicality is computed
    /// only for the clusters picked from.
    fn typiclust(&mut self, lam: f32) -> Result<()> {
        let n = self.n;
        let labels = self.input.labels;
        let n_labeled = labels.iter().filter(|l| l.is_some()).count();
        let batch = self.params.batch;
        let k = (n_labeled + batch)
            .min(TYPICLUST_MAX_CLUSTERS.max(batch))
            .clamp(1, n);
        let km = best_kmeans(self.rows, k, self.params)?;
        let mut covered = vec![0usize; k];
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); k];
        for (i, (l, &c)) in labels.iter().zip(&km.assignment).enumerate() {
            if l.is_some() {
                covered[c as usize] += 1;
            }
            members[c as usize].push(i as u32);
        }
        let unc = match self.input.uncertainty {
            Some(u) if lam > 0.0 => Some(u.scores(false)),
            _ => None,
        };
        let weight: Vec<f64> = match &unc {
            Some(u) if self.params.coverage_need > 0.0 => {
                let r = rank01(u);
                members
                    .iter()
                    .map(|m| {
                        let mean = m.iter().map(|&i| f64::from(r[i as usize])).sum::<f64>()
                            / m.len().max(1) as f64;
                        1.0 + f64::from(self.params.coverage_need) * mean
                    })
                    .collect()
            }
            _ => vec![1.0; k],
        };
        let mut ranked: Vec<Option<Vec<(u32, f32, bool)>>> = vec![None; k];
        let mut alive: Vec<bool> = members
            .iter()
            .map(|m| m.iter().any(|&i| self.input.eligible[i as usize]))
            .collect();
        let mut next = vec![0usize; k];
        while !self.full() {
            // Uncovered clusters first (largest first), then most items per label.
            let mut best: Option<(usize, (bool, f64))> = None;
            for c in (0..k).filter(|&c| alive[c]) {
                let key = (
                    covered[c] == 0,
                    weight[c] * km.sizes[c] as f64 / (1.0 + covered[c] as f64),
                );
                if best.is_none_or(|(_, b)| key > b) {
                    best = Some((c, key));
                }
            }
            let Some((c, (uncovered, _))) = best else {
                break;
            };
            if ranked[c].is_none() {
                ranked[c] = Some(rank_cluster(
                    self.rows,
                    &members[c],
                    self.input.eligible,
                    km.centroids.row(c),
                    unc,
                    lam,
                    self.params.typical_neighbors,
                )?);
            }
            let list = ranked[c].as_deref().unwrap_or_default();
            while next[c] < list.len() && !self.can_pick(list[next[c]].0 as usize) {
                next[c] += 1;
            }
            let Some(&(i, score, uncertain)) = list.get(next[c]) else {
                alive[c] = false;
                continue;
            };
            next[c] += 1;
            let mut reason = String::from("typical");
            if uncertain {
                reason.push_str(";uncertain");
            }
            reason.push_str(if uncovered {
                ";uncovered-cluster"
            } else {
                ";large-cluster"
            });
            self.take(i as usize, score, reason);
            covered[c] += 1;
        }
        // The rest by graph density (typicality was computed for the picked clusters only).
        self.rest_order = self.sorted_by(&self.density());
        Ok(())
    }

    fn hybrid(&mut self, model: &ItemUncertainty, rarity: Option<&[f32]>) -> Result<()> {
        let n = self.n;
        let p = self.params;
        let labels = self.input.labels;
        let elig = self.eligible_ids();
        if elig.is_empty() {
            return Ok(());
        }
        // Components, rank-normalised over eligible items.
        let on_elig = |v: &[f32]| -> Vec<f32> {
            let sub: Vec<f32> = elig.iter().map(|&i| v[i as usize]).collect();
            let r = rank01(&sub);
            let mut full = vec![0f32; n];
            for (&i, &x) in elig.iter().zip(&r) {
                full[i as usize] = x;
            }
            full
        };
        let u = on_elig(model.scores(false));
        let d = on_elig(&self.density());
        let counts = {
            let mut c = vec![0usize; model.n_classes()];
            for &l in labels.iter().flatten() {
                if let Some(x) = c.get_mut(l as usize) {
                    *x += 1;
                }
            }
            c
        };
        let need: Vec<f32> = model
            .class()
            .iter()
            .map(|&c| 1.0 / (1.0 + counts[c as usize] as f32))
            .collect();
        let cls = on_elig(&need);
        let rar = rarity.map(on_elig);
        let wr = if rar.is_some() { p.w_rarity } else { 0.0 };
        let wsum = p.w_uncertainty + p.w_density + p.w_class + wr;
        let base: Vec<f32> = (0..n)
            .map(|i| {
                let mut s = p.w_uncertainty * u[i] + p.w_density * d[i] + p.w_class * cls[i];
                if let Some(r) = &rar {
                    s += wr * r[i];
                }
                s / wsum
            })
            .collect();

        let order = self.sorted_by(&base);
        let m = order.len().min(POOL_MIN.max(20 * p.batch));
        let cand: Vec<u32> = order[..m].to_vec();
        let labeled = labeled_ids(labels);
        let gathered: Vec<usize> = cand.iter().chain(&labeled).map(|&i| i as usize).collect();
        let rows = RowLookup::new(self.rows, gathered)?;
        let mut sim = if labeled.is_empty() {
            vec![0f32; m]
        } else {
            max_cos(&rows, &cand, &labeled)
        };
        sim.iter_mut().for_each(|s| *s = s.max(0.0));
        while !self.full() {
            let mut best: Option<(usize, f32)> = None;
            for (j, &i) in cand.iter().enumerate() {
                if !self.can_pick(i as usize) {
                    continue;
                }
                let g = base[i as usize] - p.diversity * sim[j];
                if best.is_none_or(|(_, b)| g > b) {
                    best = Some((j, g));
                }
            }
            let Some((j, g)) = best else { break };
            let i = cand[j] as usize;
            let mut why: Vec<&str> = Vec::new();
            if u[i] >= 0.75 {
                why.push("uncertain");
            }
            if rar.as_ref().is_some_and(|r| r[i] >= 0.75) {
                why.push("rare");
            }
            if d[i] >= 0.75 {
                why.push("typical");
            }
            if cls[i] >= 0.75 {
                why.push("under-represented-class");
            }
            if sim[j] < 0.5 {
                why.push("diverse");
            }
            if why.is_empty() {
                why.push("best-combined");
            }
            self.take(i, g, why.join(";"));
            update_sim(&rows, &cand, &mut sim, i);
        }
        self.rest_order = order;
        Ok(())
    }

    /// Takes the audited items out of the strategy's picks (see [`SelectInput::audited`]).
    fn promote_audited(&mut self) -> Vec<u32> {
        let Some(audited) = self.input.audited else {
            return Vec::new();
        };
        let mut promoted = Vec::new();
        let mut k = 0;
        while k < self.picked.len() {
            let i = self.picked[k];
            if audited[i as usize] {
                promoted.push(i);
                self.picked.remove(k);
                self.score.remove(k);
                self.reasons.remove(k);
                self.propensity.remove(k);
            } else {
                k += 1;
            }
        }
        promoted
    }

    fn finish(self, used: Strategy) -> Selection {
        let n = self.n;
        let audited = self.input.audited;
        let is_audited = |i: usize| audited.is_some_and(|a| a[i]);
        let mut priority = vec![None; n];
        let mut r = 0u32;
        for &i in &self.picked {
            r += 1;
            priority[i as usize] = Some(r);
        }
        for &i in &self.rest_order {
            let i = i as usize;
            if self.input.eligible[i] && !is_audited(i) && priority[i].is_none() {
                r += 1;
                priority[i] = Some(r);
            }
        }
        // Anything eligible the strategy did not order (none today) goes last, by index.
        for (i, (p, &e)) in priority.iter_mut().zip(self.input.eligible).enumerate() {
            if e && !is_audited(i) && p.is_none() {
                r += 1;
                *p = Some(r);
            }
        }
        let n_audits = self.reasons.iter().filter(|r| *r == AUDIT_REASON).count();
        Selection {
            picked: self.picked,
            score: self.score,
            reasons: self.reasons,
            priority,
            propensity: self.propensity,
            n_audits,
            strategy_used: used,
            promoted: Vec::new(),
        }
    }
}

fn labeled_ids(labels: &[Option<u32>]) -> Vec<u32> {
    labels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_some())
        .map(|(i, _)| i as u32)
        .collect()
}

/// Max cosine of every candidate row to the target rows: GEMM in candidate blocks, parallel
/// over blocks (each block writes its own slots).
fn max_cos(rows: &RowLookup<'_>, cand: &[u32], targets: &[u32]) -> Vec<f32> {
    let t = rows.select(targets);
    let mut out = vec![f32::NEG_INFINITY; cand.len()];
    out.par_chunks_mut(BLOCK)
        .zip(cand.par_chunks(BLOCK))
        .for_each(|(o, c)| {
            let block = rows.select(c);
            let mut sc = Array2::<f32>::zeros((c.len(), t.nrows()));
            general_mat_mul(1.0, &block, &t.t(), 0.0, &mut sc);
            for (slot, row) in o.iter_mut().zip(sc.outer_iter()) {
                *slot = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            }
        });
    out
}

/// The lowest-inertia (sum of `1 − cos` to the assigned centroid) of
/// `params.typiclust_restarts` k-means fits seeded `seed, seed + 1, …`. With one run (the
/// default) there is nothing to compare, so no inertia is computed.
fn best_kmeans(rows: &dyn PoolRows, k: usize, params: &SelectParams) -> Result<kmeans::KMeans> {
    let runs = params.typiclust_restarts.max(1) as u64;
    let fit = |r: u64| {
        fit_kmeans(
            rows,
            k,
            25,
            params.seed.wrapping_add(r.wrapping_mul(0x9E37_79B9)),
        )
    };
    if runs == 1 {
        return fit(0);
    }
    let mut best: Option<(f64, kmeans::KMeans)> = None;
    for r in 0..runs {
        let km = fit(r)?;
        // Order-fixed: the comparison between restarts must not depend on the thread count.
        let Some(emb) = rows.matrix() else {
            return Err(Error::Usage(
                "TypiClust restarts compare inertias over every row: they need the pool's \
                 matrix in one process"
                    .into(),
            ));
        };
        let inertia = kmeans::inertia(emb, &km);
        if best.as_ref().is_none_or(|(b, _)| inertia < *b) {
            best = Some((inertia, km));
        }
    }
    best.map(|b| b.1)
        .ok_or_else(|| Error::Internal("k-means: no run".into()))
}

/// Candidates and neighbour references per cluster are capped here: above it, the members
/// closest to the centroid are the candidates (typical items sit near it) and an even stride
/// of members the references, so one cluster costs at most `CAP² · d`.
const TYPICAL_CAP: usize = 2048;

/// A cluster's eligible members, best first, as (item, score, uncertain): typicality as in the
/// TypiClust paper, 1 / (mean Euclidean distance to the `m` nearest other members, `m` clipped
/// to half the cluster), rank-normalised within the cluster and blended with uncertainty's rank
/// when `unc` is given. Ties break by index.
fn rank_cluster(
    rows: &dyn PoolRows,
    members: &[u32],
    eligible: &[bool],
    centroid: ndarray::ArrayView1<f32>,
    unc: Option<&[f32]>,
    lam: f32,
    neighbors: usize,
) -> Result<Vec<(u32, f32, bool)>> {
    let mut cand: Vec<u32> = members
        .iter()
        .copied()
        .filter(|&i| eligible[i as usize])
        .collect();
    if cand.is_empty() {
        return Ok(Vec::new());
    }
    if cand.len() > TYPICAL_CAP {
        let all = RowLookup::new(rows, cand.iter().map(|&i| i as usize).collect())?;
        let cos: Vec<f32> = cand
            .par_iter()
            .map(|&i| all.row(i as usize).dot(&centroid))
            .collect();
        let mut idx: Vec<usize> = (0..cand.len()).collect();
        idx.sort_unstable_by(|&a, &b| cos[b].total_cmp(&cos[a]).then(a.cmp(&b)));
        idx.truncate(TYPICAL_CAP);
        idx.sort_unstable();
        cand = idx.into_iter().map(|j| cand[j]).collect();
    }
    let refs: Vec<u32> = if members.len() > TYPICAL_CAP {
        let step = members.len().div_ceil(TYPICAL_CAP);
        members.iter().step_by(step).copied().collect()
    } else {
        members.to_vec()
    };
    let m = neighbors.min(members.len() / 2).max(1);
    let lookup = RowLookup::new(
        rows,
        refs.iter().chain(&cand).map(|&i| i as usize).collect(),
    )?;
    let r = lookup.select(&refs);
    let typ: Vec<f32> = cand
        .par_chunks(BLOCK)
        .flat_map_iter(|block| {
            let x = lookup.select(block);
            let mut g = Array2::<f32>::zeros((block.len(), refs.len()));
            general_mat_mul(1.0, &x, &r.t(), 0.0, &mut g);
            block
                .iter()
                .zip(g.outer_iter())
                .map(|(&item, row)| {
                    let mut v: Vec<f32> = row
                        .iter()
                        .copied()
                        .zip(refs.iter())
                        .filter(|&(_, &j)| j != item)
                        .map(|(c, _)| c)
                        .collect();
                    if v.is_empty() {
                        return 1.0;
                    }
                    let mm = m.min(v.len());
                    v.select_nth_unstable_by(mm - 1, |a, b| b.total_cmp(a));
                    let d = v[..mm]
                        .iter()
                        .map(|&c| (2.0 - 2.0 * c).max(0.0).sqrt())
                        .sum::<f32>()
                        / mm as f32;
                    1.0 / (d + 1e-7)
                })
                .collect::<Vec<f32>>()
        })
        .collect();
    let t = rank01(&typ);
    let u: Option<Vec<f32>> =
        unc.map(|u| rank01(&cand.iter().map(|&i| u[i as usize]).collect::<Vec<_>>()));
    let mut out: Vec<(u32, f32, bool)> = cand
        .iter()
        .enumerate()
        .map(|(j, &i)| match &u {
            Some(u) => (i, (1.0 - lam) * t[j] + lam * u[j], u[j] >= 0.75),
            None => (i, t[j], false),
        })
        .collect();
    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// `sim[j] = max(sim[j], cos(cand[j], pick))`, parallel over candidates.
fn update_sim(emb: &RowLookup<'_>, cand: &[u32], sim: &mut [f32], pick: usize) {
    let x = emb.row(pick);
    sim.par_iter_mut().zip(cand.par_iter()).for_each(|(s, &i)| {
        let v = emb.row(i as usize).dot(&x);
        if v > *s {
            *s = v;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::round::rarity::tests::{blobs, exact_graph, unit};

    #[test]
    fn cold_start_covers_all_clusters_including_tiny_far_one() {
        let d = 8;
        let per = [200, 150, 120, 100, 5];
        let x = blobs(
            &[unit(d, 0), unit(d, 1), unit(d, 2), unit(d, 3), unit(d, 7)],
            &per,
            0.2,
            4,
        );
        let n = x.nrows();
        let g = exact_graph(x.view(), 10);
        let truth: Vec<usize> = per
            .iter()
            .enumerate()
            .flat_map(|(c, &m)| std::iter::repeat_n(c, m))
            .collect();
        let input = SelectInput {
            labels: &vec![None; n],
            eligible: &vec![true; n],
            representative: None,
            uncertainty: None,
            audited: None,
        };
        let p = SelectParams {
            batch: 5,
            ..SelectParams::default()
        };
        let sel = select(&x, &g, &input, &vec![-1; n], None, &p).unwrap();
        assert_eq!(sel.strategy_used, Strategy::Typiclust);
        let mut found: Vec<usize> = sel.picked.iter().map(|&i| truth[i as usize]).collect();
        found.sort_unstable();
        assert_eq!(found, vec![0, 1, 2, 3, 4]);
    }

    fn warm_setup() -> (
        Array2<f32>,
        NeighborGraph,
        Vec<Option<u32>>,
        ItemUncertainty,
    ) {
        warm_setup_sized(80)
    }

    /// Three blobs of `per_class` items, the first 10 of each labeled, with fake probabilities.
    fn warm_setup_sized(
        per_class: usize,
    ) -> (
        Array2<f32>,
        NeighborGraph,
        Vec<Option<u32>>,
        ItemUncertainty,
    ) {
        let d = 8;
        let x = blobs(
            &[unit(d, 0), unit(d, 1), unit(d, 2)],
            &[per_class; 3],
            0.5,
            5,
        );
        let n = x.nrows();
        let g = exact_graph(x.view(), 8);
        let mut labels = vec![None; n];
        for c in 0..3 {
            for j in 0..10 {
                labels[c * per_class + j] = Some(c as u32);
            }
        }
        // Fake probabilities: cosine-softmax to the three directions.
        let mut probs = Array2::<f32>::zeros((n, 3));
        for i in 0..n {
            let e: Vec<f32> = (0..3).map(|c| (x[[i, c]] / 0.1).exp()).collect();
            let s: f32 = e.iter().sum();
            for c in 0..3 {
                probs[[i, c]] = e[c] / s;
            }
        }
        (
            x,
            g,
            labels,
            ItemUncertainty::from_probabilities(probs.view()),
        )
    }

    #[test]
    fn audits_are_uniform_draws_from_the_unlabeled_items_the_strategy_left() {
        let (x, g, labels, probs) = warm_setup();
        let n = x.nrows();
        // Half the items ineligible (as if auto-labeled): audits may still draw them.
        let eligible: Vec<bool> = (0..n).map(|i| labels[i].is_none() && i % 2 == 0).collect();
        let input = SelectInput {
            labels: &labels,
            eligible: &eligible,
            representative: None,
            uncertainty: Some(&probs),
            audited: None,
        };
        let p = SelectParams {
            batch: 40,
            audit_share: 0.25,
            ..SelectParams::default()
        };
        let sel = select(&x, &g, &input, &vec![-1; n], None, &p).unwrap();
        assert_eq!((sel.picked.len(), sel.n_audits), (40, 10));
        let frame = labels.iter().filter(|l| l.is_none()).count() - 30;
        for (k, &i) in sel.picked.iter().enumerate() {
            let audit = k >= 30;
            assert_eq!(sel.reasons[k] == AUDIT_REASON, audit, "pick {k}");
            assert!(labels[i as usize].is_none());
            let expected = if audit { 10.0 / frame as f64 } else { 1.0 };
            assert!((sel.propensity[k] - expected).abs() < 1e-12);
        }
        let picked: HashSet<u32> = sel.picked.iter().copied().collect();
        assert_eq!(picked.len(), 40, "no item twice");
        // Over many seeds every unlabeled item is audited about equally often.
        let mut hits = vec![0usize; n];
        for seed in 0..400 {
            let p = SelectParams {
                seed,
                strategy: Strategy::Margin,
                ..p.clone()
            };
            let sel = select(&x, &g, &input, &vec![-1; n], None, &p).unwrap();
            for (k, &i) in sel.picked.iter().enumerate() {
                hits[i as usize] += (k >= 30) as usize;
            }
        }
        // Margin's picks are the same every seed; the other unlabeled items share 4,000 draws.
        let first = select(
            &x,
            &g,
            &input,
            &vec![-1; n],
            None,
            &SelectParams {
                strategy: Strategy::Margin,
                ..p.clone()
            },
        )
        .unwrap();
        let active: HashSet<u32> = first.picked[..30].iter().copied().collect();
        let counts: Vec<usize> = (0..n)
            .filter(|&i| labels[i].is_none() && !active.contains(&(i as u32)))
            .map(|i| hits[i])
            .collect();
        let mean = 4000.0 / counts.len() as f64;
        assert!(
            counts
                .iter()
                .all(|&c| (c as f64 - mean).abs() < 5.0 * mean.sqrt() + 1.0),
            "{counts:?}"
        );
        // No audits without a model.
        let cold = SelectInput {
            uncertainty: None,
            ..input
        };
        let sel = select(&x, &g, &cold, &vec![-1; n], None, &p).unwrap();
        assert_eq!(sel.n_audits, 0);
    }

    #[test]
    fn audited_items_are_ranked_as_unlabeled_promoted_when_picked_and_never_drawn_again() {
        let (x, g, labels, probs) = warm_setup();
        let n = x.nrows();
        // A third of the unlabeled items were audited: the caller shows them unlabeled and
        // eligible, so the strategy ranks as if they had never been audited.
        let audited: Vec<bool> = (0..n).map(|i| labels[i].is_none() && i % 3 == 0).collect();
        let eligible: Vec<bool> = labels.iter().map(Option::is_none).collect();
        let input = SelectInput {
            labels: &labels,
            eligible: &eligible,
            representative: None,
            uncertainty: Some(&probs),
            audited: Some(&audited),
        };
        let blind = SelectInput {
            audited: None,
            ..input
        };
        let (mut promoted, mut redrawn) = (0, 0);
        for seed in 0..50 {
            let p = SelectParams {
                seed,
                batch: 40,
                audit_share: 0.5,
                strategy: Strategy::Margin,
                ..SelectParams::default()
            };
            let sel = select(&x, &g, &input, &vec![-1; n], None, &p).unwrap();
            // The strategy's picks are those of a run that never heard of the audits, the
            // audited ones taken out (promoted); audits never land on an audited item.
            let unaware = select(&x, &g, &blind, &vec![-1; n], None, &p).unwrap();
            let strategy = &unaware.picked[..unaware.picked.len() - unaware.n_audits];
            let kept: Vec<u32> = strategy
                .iter()
                .copied()
                .filter(|&i| !audited[i as usize])
                .collect();
            let moved: Vec<u32> = strategy
                .iter()
                .copied()
                .filter(|&i| audited[i as usize])
                .collect();
            assert_eq!(&sel.picked[..sel.picked.len() - sel.n_audits], &kept[..]);
            assert_eq!(sel.promoted, moved);
            assert!(sel.picked.iter().all(|&i| !audited[i as usize]));
            assert!(sel
                .picked
                .iter()
                .all(|&i| sel.priority[i as usize].is_some()));
            assert!((0..n).all(|i| !audited[i] || sel.priority[i].is_none()));
            promoted += moved.len();
            let audits = &unaware.picked[unaware.picked.len() - unaware.n_audits..];
            redrawn += audits.iter().filter(|&&i| audited[i as usize]).count();
        }
        // Both paths were exercised: without the flags a third of the draws land on audited
        // items, and the strategy does pick some.
        assert!(promoted > 0);
        assert!(
            redrawn > 100,
            "{redrawn} of 1,000 draws on audited items without the flags"
        );
    }

    #[test]
    fn the_next_rounds_audits_are_not_the_last_rounds_neighbours() {
        // A loop under one seed: round 2's labels are round 1's plus its batch, 1% of the pool.
        // Drawn from a stream seeded by `--seed` alone, round 2's audits sat a few rows from
        // round 1's (each draw lands at the same relative position of a frame 1% shorter).
        // Independent uniform draws put about 20 × 7 / 3,000 ≈ 0.05 of them within ±3 rows of
        // any one of round 1's 20, so about 1 of 20 in all.
        let (x, g, mut labels, probs) = warm_setup_sized(1000);
        let n = x.nrows();
        let p = SelectParams {
            batch: 30,
            audit_share: 0.67,
            strategy: Strategy::Margin,
            ..SelectParams::default()
        };
        let eligible = |labels: &[Option<u32>]| labels.iter().map(Option::is_none).collect();
        let audits = |labels: &[Option<u32>]| {
            let eligible: Vec<bool> = eligible(labels);
            let input = SelectInput {
                labels,
                eligible: &eligible,
                representative: None,
                uncertainty: Some(&probs),
                audited: None,
            };
            let sel = select(&x, &g, &input, &vec![-1; n], None, &p).unwrap();
            let audits: Vec<u32> = sel.picked[sel.picked.len() - sel.n_audits..].to_vec();
            (sel.picked, audits)
        };
        let (picked, first) = audits(&labels);
        for &i in &picked {
            labels[i as usize] = Some(0);
        }
        let (_, second) = audits(&labels);
        assert_eq!((first.len(), second.len()), (20, 20));
        let near = second
            .iter()
            .filter(|&&b| first.iter().any(|&a| a.abs_diff(b) <= 3))
            .count();
        assert!(near <= 5, "{near} of 20 audits next to last round's");
    }

    #[test]
    fn respects_eligibility_and_duplicate_groups_for_every_strategy() {
        let (x, g, labels, probs) = warm_setup();
        let n = x.nrows();
        // Every third item ineligible; items in pairs share a duplicate group.
        let eligible: Vec<bool> = (0..n).map(|i| labels[i].is_none() && i % 3 != 0).collect();
        let dup: Vec<i64> = (0..n).map(|i| (i / 2) as i64).collect();
        let input = SelectInput {
            labels: &labels,
            eligible: &eligible,
            representative: None,
            uncertainty: Some(&probs),
            audited: None,
        };
        for strategy in [
            Strategy::Random,
            Strategy::Margin,
            Strategy::Entropy,
            Strategy::Coreset,
            Strategy::Typiclust,
            Strategy::Hybrid,
        ] {
            let p = SelectParams {
                batch: 40,
                strategy,
                audit_share: 0.0,
                ..SelectParams::default()
            };
            let sel = select(&x, &g, &input, &dup, None, &p).unwrap();
            assert_eq!(sel.picked.len(), 40, "{strategy:?}");
            let mut groups = HashSet::new();
            for &i in &sel.picked {
                assert!(eligible[i as usize], "{strategy:?} picked ineligible {i}");
                assert!(
                    groups.insert(dup[i as usize]),
                    "{strategy:?} two of one group"
                );
            }
            for (i, pr) in sel.priority.iter().enumerate() {
                assert_eq!(pr.is_some(), eligible[i]);
            }
            for (r, &i) in sel.picked.iter().enumerate() {
                assert_eq!(sel.priority[i as usize], Some(r as u32 + 1));
            }
            assert_eq!(sel.reasons.len(), 40);
        }
    }

    #[test]
    fn deterministic_across_thread_counts() {
        let (x, g, labels, probs) = warm_setup();
        let n = x.nrows();
        let eligible: Vec<bool> = labels.iter().map(|l| l.is_none()).collect();
        let rar: Vec<f32> = (0..n).map(|i| (i % 17) as f32 / 17.0).collect();
        for strategy in [
            Strategy::Hybrid,
            Strategy::Typiclust,
            Strategy::Coreset,
            Strategy::Random,
        ] {
            let run = |t: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap()
                    .install(|| {
                        let input = SelectInput {
                            labels: &labels,
                            eligible: &eligible,
                            representative: None,
                            uncertainty: Some(&probs),
                            audited: None,
                        };
                        let p = SelectParams {
                            batch: 30,
                            strategy,
                            seed: 3,
                            ..SelectParams::default()
                        };
                        select(&x, &g, &input, &vec![-1; n], Some(&rar), &p).unwrap()
                    })
            };
            let a = run(1);
            assert_eq!(a, run(2));
            assert_eq!(a, run(4));
        }
    }

    /// Picks a hybrid batch of 12 on the warm setup and asserts it spans ≥ 2 of the 3 classes
    /// with at most 8 from any one.
    fn assert_hybrid_batch_is_not_one_class(coverage_clusters: Option<usize>) {
        let (x, g, labels, probs) = warm_setup();
        let eligible: Vec<bool> = labels.iter().map(|l| l.is_none()).collect();
        let input = SelectInput {
            labels: &labels,
            eligible: &eligible,
            representative: None,
            uncertainty: Some(&probs),
            audited: None,
        };
        let mut p = SelectParams {
            batch: 12,
            ..SelectParams::default()
        };
        if let Some(c) = coverage_clusters {
            p.coverage_clusters = c;
        }
        let sel = select(&x, &g, &input, &vec![-1; x.nrows()], None, &p).unwrap();
        assert_eq!(sel.strategy_used, Strategy::Hybrid);
        let mut per_class = [0usize; 3];
        for &i in &sel.picked {
            per_class[i as usize / 80] += 1;
        }
        assert!(
            per_class.iter().filter(|&&c| c > 0).count() >= 2 && per_class.iter().all(|&c| c <= 8),
            "{per_class:?}"
        );
    }

    #[test]
    fn hybrid_batch_is_not_one_class() {
        assert_hybrid_batch_is_not_one_class(None);
    }

    #[test]
    fn scored_hybrid_batch_is_not_one_class() {
        // Past the coverage phase: the scored, diversity-penalised pick.
        assert_hybrid_batch_is_not_one_class(Some(0));
    }

    #[test]
    fn typiclust_picks_from_the_dense_core_not_the_shell() {
        // One direction: 60 tight items and 60 spread ones; one pick must be a tight one.
        let d = 8;
        let core = blobs(&[unit(d, 0)], &[60], 0.05, 1);
        let shell = blobs(&[unit(d, 0)], &[60], 0.6, 2);
        let x = ndarray::concatenate(ndarray::Axis(0), &[core.view(), shell.view()]).unwrap();
        let n = x.nrows();
        let g = exact_graph(x.view(), 10);
        let input = SelectInput {
            labels: &vec![None; n],
            eligible: &vec![true; n],
            representative: None,
            uncertainty: None,
            audited: None,
        };
        let p = SelectParams {
            batch: 1,
            strategy: Strategy::Typiclust,
            ..SelectParams::default()
        };
        let sel = select(&x, &g, &input, &vec![-1; n], None, &p).unwrap();
        assert!(sel.picked[0] < 60, "picked {}", sel.picked[0]);
        assert!(sel.reasons[0].contains("typical"));
    }

    #[test]
    fn coverage_knobs_keep_picks_eligible_distinct_and_deterministic() {
        // Several k-means runs and need-weighted cluster order: still a full batch of
        // eligible, distinct items, identical on a re-run.
        let (x, g, labels, probs) = warm_setup();
        let n = x.nrows();
        let eligible: Vec<bool> = labels.iter().map(|l| l.is_none()).collect();
        let input = SelectInput {
            labels: &labels,
            eligible: &eligible,
            representative: None,
            uncertainty: Some(&probs),
            audited: None,
        };
        let p = SelectParams {
            batch: 20,
            typiclust_restarts: 3,
            coverage_need: 1.0,
            ..SelectParams::default()
        };
        let a = select(&x, &g, &input, &vec![-1; n], None, &p).unwrap();
        let b = select(&x, &g, &input, &vec![-1; n], None, &p).unwrap();
        assert_eq!(a.picked, b.picked);
        assert_eq!(a.picked.len(), 20);
        assert!(a.picked.iter().all(|&i| eligible[i as usize]));
        assert_eq!(a.picked.iter().collect::<HashSet<_>>().len(), 20);
        for bad in [
            SelectParams {
                typiclust_restarts: 0,
                ..SelectParams::default()
            },
            SelectParams {
                coverage_need: -1.0,
                ..SelectParams::default()
            },
            SelectParams {
                coverage_need: f32::NAN,
                ..SelectParams::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::Usage(_))));
        }
    }

    #[test]
    fn bad_parameters_are_usage_errors() {
        let (x, g, labels, _) = warm_setup();
        let n = x.nrows();
        let input = SelectInput {
            labels: &labels,
            eligible: &vec![true; n],
            representative: None,
            uncertainty: None,
            audited: None,
        };
        let p = SelectParams {
            batch: 0,
            ..SelectParams::default()
        };
        assert!(matches!(
            select(&x, &g, &input, &vec![-1; n], None, &p),
            Err(Error::Usage(_))
        ));
        let p = SelectParams::default();
        assert!(select(&x, &g, &input, &vec![-1; n - 1], None, &p).is_err());
    }
}
