//! One labeling round: the stages in their one order (duplicates, auto-labels, rarity, the batch,
//! the budget) over a [`Pool`], each taking a parameter struct and returning plain results.
//! Commands, the Python bindings and a distributed driver all run a round through [`Round::run`]
//! and write what it computed with `output`.

pub mod autolabel;
pub mod budget;
pub mod calibrate;
pub mod certificate_replay;
pub mod certify;
pub mod coverage;
pub mod dedup;
pub mod forecast;
pub mod pool;
pub mod power_law;
pub mod rarity;
pub mod rows;
pub mod rule_route;
pub mod select;
pub mod timings;
pub mod uncertainty;

use std::borrow::Cow;

use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::index::kmeans::KMeans;
use crate::progress::Progress;
use crate::round::autolabel::{AutolabelParams, AutolabelResult, DupInfo, Route};
use crate::round::budget::{BudgetOutcome, BudgetParams};
use crate::round::calibrate::CalibrationParams;
use crate::round::dedup::{DedupParams, Duplicates};
use crate::round::rarity::{Rarity, RarityParams};
use crate::round::select::{SelectInput, SelectParams, Selection};
use crate::round::timings::Timings;
pub use rule_route::RoundRules;

pub use pool::Pool;

/// Which stages a round runs; each command picks its own set (`plan`: all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stages {
    /// Find near-duplicates (and copy labels across them).
    pub dedup: bool,
    /// Train, calibrate and certify auto-labels.
    pub autolabel: bool,
    /// Score how rare each item is.
    pub rarity: bool,
    /// Pick the next batch for humans.
    pub select: bool,
    /// Project labels, time and cost to the targets.
    pub budget: bool,
}

impl Stages {
    /// Every stage: what `plan` runs.
    pub const ALL: Stages = Stages {
        dedup: true,
        autolabel: true,
        rarity: true,
        select: true,
        budget: true,
    };
}

/// Every stage's parameters, each validated when it was built.
#[derive(Debug, Clone)]
pub struct RoundParams {
    /// Seed for every random choice of the round.
    pub seed: u64,
    /// Parameters for the duplicates stage.
    pub dedup: DedupParams,
    /// Parameters for the auto-label stage.
    pub autolabel: AutolabelParams,
    /// Parameters for the rarity stage.
    pub rarity: RarityParams,
    /// Parameters for batch selection.
    pub select: SelectParams,
    /// Parameters for the budget projection.
    pub budget: BudgetParams,
    /// Auto-label coverage (share of unlabeled items) the budget projects labels for.
    pub target_coverage: f64,
}

impl RoundParams {
    /// Checks every stage's parameters before any stage runs (linfa's `ParamGuard` idea), so a
    /// bad value fails the round up front instead of after the expensive stages.
    pub fn validate(&self) -> Result<()> {
        DedupParams::new(self.dedup.threshold, self.dedup.grouping)?;
        self.rarity.validate()?;
        self.select.validate()?;
        self.budget.validate()?;
        if !(self.target_coverage > 0.0 && self.target_coverage < 1.0) {
            return Err(crate::Error::Usage(format!(
                "target coverage must be in (0, 1), got {}",
                self.target_coverage
            )));
        }
        Ok(())
    }
}

impl Default for RoundParams {
    /// The command line's defaults.
    fn default() -> Self {
        RoundParams {
            seed: 0,
            dedup: DedupParams::default(),
            autolabel: AutolabelParams::default(),
            rarity: RarityParams::default(),
            select: SelectParams::default(),
            budget: BudgetParams::default(),
            target_coverage: 0.5,
        }
    }
}

/// What the round reads besides the pool and its labels: the round history and the users' rules.
#[derive(Debug, Clone, Default)]
pub struct LabelInputs {
    /// Which labeled items the certificate may use (`None`: all), from the round history.
    pub evidence: Option<Vec<bool>>,
    /// Which labeled items were audits (`None`: none), from the round history: the batch is
    /// chosen as if they were not labeled ([`Round::audited`]).
    pub audited: Option<Vec<bool>>,
    /// The users' rules and their votes on the pool.
    pub rules: Option<RoundRules>,
    /// (labels, certified coverage) of the earlier recorded rounds, for the budget's coverage
    /// projection (empty without a history).
    pub measured_coverage: Vec<(f64, f64)>,
}

/// What a round computed; stages a command did not run stay `None`.
pub struct Round<'a> {
    /// The loaded data and neighbour graph the round works on.
    pub pool: &'a Pool,
    /// Duplicates stage result, if it ran; borrowed when the pool came with them (a cluster's
    /// pairs, a simulation's setup), so a large pool's pairs are not held twice.
    pub duplicates: Option<Cow<'a, Duplicates>>,
    /// Auto-label stage result, if it ran.
    pub autolabel: Option<AutolabelResult>,
    /// Rarity stage result, if it ran.
    pub rarity: Option<Rarity>,
    /// The batch for humans, if selection ran.
    pub selection: Option<Selection>,
    /// Budget projection, if it ran.
    pub budget: Option<BudgetOutcome>,
    /// Which labeled items the auto-label certificate may use (`None`: all; see
    /// [`autolabel::autolabel_with_evidence`]). Set from the round history.
    pub evidence: Option<Vec<bool>>,
    /// Which labeled items were audits. Rarity and the batch treat them as unlabeled (a pick of
    /// one promotes it; see [`select::SelectInput::audited`]) and rank by a model fitted without
    /// them: an audit that steered the picks around it would no longer be a fair sample of what
    /// the model has to vouch for.
    pub audited: Option<Vec<bool>>,
    /// The users' rules, when given: one more auto-label route ([`rule_route`]).
    pub rules: Option<RoundRules>,
    /// What the round history measured of certified coverage (see [`LabelInputs`]).
    pub measured_coverage: Vec<(f64, f64)>,
}

impl<'a> Round<'a> {
    /// A round with nothing computed beyond the graph.
    pub fn new(pool: &'a Pool) -> Round<'a> {
        Round {
            pool,
            duplicates: None,
            autolabel: None,
            rarity: None,
            selection: None,
            budget: None,
            evidence: None,
            audited: None,
            rules: None,
            measured_coverage: Vec::new(),
        }
    }

    /// A round whose near-duplicates are found first (timed as `dedup`): every command that
    /// auto-labels or selects needs them.
    pub fn with_duplicates(
        pool: &'a Pool,
        params: &DedupParams,
        timings: &mut Timings,
    ) -> Result<Round<'a>> {
        let mut round = Round::new(pool);
        round.run_dedup(params, timings)?;
        Ok(round)
    }

    /// Finds the near-duplicate pairs and groups (timed as `dedup`). They are recomputed from
    /// the embeddings, so the pool's matrix must be in this process.
    pub fn run_dedup(&mut self, params: &DedupParams, timings: &mut Timings) -> Result<()> {
        let pool = self.pool;
        let Some(emb) = pool.rows().matrix() else {
            return Err(Error::Internal(
                "near-duplicates of a pool whose rows are elsewhere must be given".into(),
            ));
        };
        self.duplicates =
            Some(Cow::Owned(timings.time("dedup", || {
                Duplicates::find(emb, &pool.graph.graph, params)
            })));
        Ok(())
    }

    /// The pool.
    pub fn data(&self) -> &Dataset {
        &self.pool.data
    }

    /// Runs auto-labeling with the duplicate groups found (if any).
    pub fn run_autolabel(&mut self, params: &AutolabelParams) -> Result<()> {
        let data = &self.pool.data;
        let dup = self.duplicates.as_ref().map(|d| DupInfo {
            group: d.group_or_none(),
        });
        let input = autolabel::AutolabelInput {
            rows: self.pool.rows(),
            labels: &data.labels,
            n_classes: data.classes.len(),
            graph: &self.pool.graph.graph,
            dup: dup.as_ref(),
            evidence: self.evidence.as_deref(),
            audited: self.audited.as_deref(),
            rules: self.rules.as_ref().map(|r| &r.votes),
        };
        let result = autolabel::autolabel_round(&input, params)?;
        self.autolabel = Some(result);
        Ok(())
    }

    /// Scores rarity, using the model's predictions (when auto-labeling ran) for class rarity.
    pub fn run_rarity(&mut self, params: &RarityParams, seed: u64) -> Result<()> {
        let clusters = self.rarity_clusters(params, seed)?;
        self.run_rarity_with_clusters(params, &clusters)
    }

    /// [`Round::run_rarity`] on a clustering the caller already has (`simulate` fits it once
    /// for all its rounds).
    pub fn run_rarity_with_clusters(
        &mut self,
        params: &RarityParams,
        clusters: &KMeans,
    ) -> Result<()> {
        let predicted = self.predicted_for_selection();
        let labels = self.labels_for_selection();
        self.rarity = Some(rarity::score_with_clusters(
            self.pool.rows(),
            &self.pool.graph.graph,
            &labels,
            predicted.as_deref(),
            params,
            clusters,
        )?);
        Ok(())
    }

    /// Rarity's k-means, from the cache when this pool was clustered with the same parameters
    /// before: it depends on the embeddings alone, and is the costly part of scoring at scale
    /// (1,000,000 × 384: a sampled fit plus a 1,000-centroid assignment of every row).
    fn rarity_clusters(&self, params: &RarityParams, seed: u64) -> Result<KMeans> {
        let rows = self.pool.rows();
        let Some(pool) = &self.pool.graph.pool_cache else {
            return rarity::fit_clusters(rows, params, seed);
        };
        let mut h = blake3::Hasher::new();
        h.update(b"labelwise-rarity-kmeans-v1");
        h.update(pool.pool_key.as_bytes());
        h.update(&params.clusters.map_or(0, |c| c as u64 + 1).to_le_bytes());
        h.update(&(params.kmeans_iter as u64).to_le_bytes());
        h.update(&seed.to_le_bytes());
        let key = format!("clusters-{}", h.finalize().to_hex());
        if let Some(km) = pool.cache.get(&key).and_then(|b| KMeans::from_bytes(&b)) {
            if km.assignment.len() == rows.n_rows() && km.centroids.ncols() == rows.n_cols() {
                return Ok(km);
            }
        }
        let km = rarity::fit_clusters(rows, params, seed)?;
        // A cache that cannot be written costs the next run time, never this run's result.
        let _ = pool.cache.put(&key, &km.to_bytes());
        Ok(km)
    }

    /// Picks the batch among items routed to humans (all unlabeled ones if auto-labeling did
    /// not run) that stand for their near-duplicate group: singletons and representatives, so
    /// a group's other members are never asked about (at most one pick per group).
    pub fn run_select(&mut self, params: &SelectParams) -> Result<()> {
        let data = self.data();
        let n = data.len();
        let labels = self.labels_for_selection();
        let mut eligible: Vec<bool> = match &self.autolabel {
            Some(a) => a.route.iter().map(|r| *r == Route::Human).collect(),
            None => data.labels.iter().map(Option::is_none).collect(),
        };
        // Audited items are pickable as if never audited (a pick promotes them; see
        // `SelectInput::audited`).
        if let Some(a) = &self.audited {
            for (e, &audit) in eligible.iter_mut().zip(a) {
                *e |= audit;
            }
        }
        if let Some(d) = &self.duplicates {
            for (e, &rep) in eligible.iter_mut().zip(&d.groups.representative) {
                *e &= rep;
            }
        }
        let uncertainty = self.autolabel.as_ref().and_then(|a| a.uncertainty.as_ref());
        let dup_group: Vec<i64> = match &self.duplicates {
            Some(d) => d.group_or_none(),
            None => vec![-1; n],
        };
        let input = SelectInput {
            labels: &labels,
            eligible: &eligible,
            representative: self
                .duplicates
                .as_ref()
                .map(|d| d.groups.representative.as_slice()),
            uncertainty,
            audited: self.audited.as_deref(),
        };
        let selection = select::select(
            self.pool.rows(),
            &self.pool.graph.graph,
            &input,
            &dup_group,
            self.rarity.as_ref().map(|r| r.rarity.as_slice()),
            params,
        )?;
        self.selection = Some(selection);
        Ok(())
    }

    /// The labels rarity and the batch see: audited items' hidden (see [`Round::audited`]).
    fn labels_for_selection(&self) -> std::borrow::Cow<'_, [Option<u32>]> {
        let labels = &self.pool.data.labels;
        match &self.audited {
            Some(a) if a.iter().any(|&x| x) => labels
                .iter()
                .zip(a)
                .map(|(l, &audit)| if audit { None } else { *l })
                .collect(),
            _ => std::borrow::Cow::Borrowed(labels.as_slice()),
        }
    }

    /// The predicted classes rarity sees ([`blind_predictions`]).
    fn predicted_for_selection(&self) -> Option<std::borrow::Cow<'_, [Option<u32>]>> {
        let a = self.autolabel.as_ref()?;
        Some(match (&self.audited, &a.uncertainty) {
            (Some(audited), Some(u)) => {
                std::borrow::Cow::Owned(blind_predictions(&a.predicted, audited, u.class()))
            }
            _ => std::borrow::Cow::Borrowed(a.predicted.as_slice()),
        })
    }

    /// Counts, hours and cost now, and the projection ([`budget::plan`]; needs auto-labeling
    /// for the routes, duplicates for the labels they save).
    pub fn run_budget(
        &mut self,
        params: &BudgetParams,
        target_coverage: f64,
        calibration: &CalibrationParams,
        seed: u64,
    ) -> Result<()> {
        let target_precision = calibration.target_precision;
        let inputs = budget::BudgetInputs {
            autolabel: self.autolabel.as_ref(),
            duplicates: self.duplicates.as_deref(),
            measured_coverage: &self.measured_coverage,
            evidence: self.evidence.as_deref(),
            calibration: Some(calibration),
            rows: Some(self.pool.rows()),
        };
        self.budget = Some(budget::plan(
            self.data(),
            inputs,
            params,
            target_coverage,
            target_precision,
            seed,
        )?);
        if let (Some(b), Some(sel)) = (self.budget.as_mut(), &self.selection) {
            let labels = sel.picked.len() - sel.n_audits;
            b.batch = Some(budget::BatchCost::of(labels, sel.n_audits, params));
        }
        Ok(())
    }

    /// Runs `stages` in the round's one order — duplicates, auto-labels, rarity, batch, budget —
    /// each timed under its name with a spinner on `progress`.
    pub fn run(
        pool: &'a Pool,
        params: &RoundParams,
        stages: Stages,
        progress: Progress,
        timings: &mut Timings,
    ) -> Result<Round<'a>> {
        Round::run_with_evidence(
            pool,
            params,
            stages,
            LabelInputs::default(),
            progress,
            timings,
        )
    }

    /// [`Round::run`] with what the auto-label stage reads besides the labels: the evidence
    /// its certificate is computed on (from the round history) and the users' rules.
    pub fn run_with_evidence(
        pool: &'a Pool,
        params: &RoundParams,
        stages: Stages,
        inputs: LabelInputs,
        progress: Progress,
        timings: &mut Timings,
    ) -> Result<Round<'a>> {
        params.validate()?;
        let mut round = Round::new(pool);
        round.evidence = inputs.evidence;
        round.audited = inputs.audited;
        round.rules = inputs.rules;
        round.measured_coverage = inputs.measured_coverage;
        let seed = params.seed;
        if let (true, Some(given)) = (stages.dedup, &pool.duplicates) {
            round.duplicates = Some(Cow::Borrowed(given));
        } else if stages.dedup {
            let bar = progress.spinner("dedup");
            let found = round.run_dedup(&params.dedup, timings);
            bar.finish_and_clear();
            found?;
        }
        let mut stage = |name: &str, f: &mut dyn FnMut(&mut Round<'a>) -> Result<()>| {
            let bar = progress.spinner(name);
            let r = timings.time(name, || f(&mut round));
            bar.finish_and_clear();
            r
        };
        if stages.autolabel {
            stage("autolabel", &mut |r| r.run_autolabel(&params.autolabel))?;
        }
        if stages.rarity {
            stage("rarity", &mut |r| r.run_rarity(&params.rarity, seed))?;
        }
        if stages.select {
            stage("select", &mut |r| r.run_select(&params.select))?;
        }
        if stages.budget {
            stage("budget", &mut |r| {
                r.run_budget(
                    &params.budget,
                    params.target_coverage,
                    &params.autolabel.calibration,
                    seed,
                )
            })?;
        }
        Ok(round)
    }
}

/// `predicted`, with each audited item given the class it would have had unaudited:
/// `blind_class`, the class of the model fitted without the audits. Without it an audited item
/// has no prediction, so rarity would never find its class rare, and the strategy would not rank
/// it as it ranks the unaudited items like it.
pub fn blind_predictions(
    predicted: &[Option<u32>],
    audited: &[bool],
    blind_class: &[u32],
) -> Vec<Option<u32>> {
    let mut out = predicted.to_vec();
    for (i, o) in out.iter_mut().enumerate() {
        if audited[i] {
            *o = Some(blind_class[i]);
        }
    }
    out
}

/// The route's name in outputs.
pub fn route_name(route: Route) -> &'static str {
    match route {
        Route::Labeled => "labeled",
        Route::Auto => "auto",
        Route::Duplicate => "duplicate",
        Route::Human => "human",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audited_items_get_the_blind_models_class_and_the_others_keep_theirs() {
        let predicted = [Some(2), None, None, Some(0)];
        let audited = [false, true, true, false];
        let probabilities = ndarray::array![
            [0.1f32, 0.2, 0.7],
            [0.1, 0.8, 0.1],
            [0.4, 0.4, 0.2],
            [0.9, 0.05, 0.05],
        ];
        let blind_class = uncertainty::ItemUncertainty::from_probabilities(probabilities.view());
        let blind = blind_predictions(&predicted, &audited, blind_class.class());
        // Item 1: its blind class; item 2: a tie goes to the first class; 0 and 3 unchanged.
        assert_eq!(blind, [Some(2), Some(1), Some(0), Some(0)]);
    }
}
