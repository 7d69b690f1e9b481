//! One labeling round's stages and outputs, shared by `dedup`, `score`, `autolabel`, `select`,
//! `budget` and `plan`: each command runs the stages it needs and writes what they produced, so
//! items.parquet has one shape and one writer whichever command made it.

pub mod autolabel;
pub mod budget;
pub mod calibrate;
pub mod dedup;
pub mod rarity;
pub mod select;

use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::cli::dedup::{DedupArgs, Duplicates};
use crate::cli::Prepared;
use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::index::cached::Timings;
use crate::index::kmeans::KMeans;
use crate::model::{GaussianNb, KnnVote, LabelSpreading, Logistic, ModelSpec, NearestCentroid};
use crate::output::{id_array, ItemsTable, OutDir};
use crate::round::autolabel::{AutolabelParams, AutolabelResult, DupInfo, Route, Source};
use crate::round::budget::{BudgetNow, BudgetParams, Curve, ProjectionRow};
use crate::round::calibrate::CalibrationParams;
use crate::round::rarity::{Rarity, RarityParams};
use crate::round::select::{SelectInput, SelectParams, Selection, Strategy};

/// The model flag's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelChoice {
    /// The better of logistic regression and label spreading + nearest centroid, chosen on the
    /// labels by the share each certifies (the measured default, README "Auto-labels").
    Auto,
    /// Label spreading over the neighbour graph + nearest centroid, averaged (transductive: it
    /// uses the unlabeled items' neighbourhoods; the kNN vote stands in beyond its size limit).
    Spread,
    /// kNN vote + nearest centroid, averaged (confidence falls when they disagree).
    Ensemble,
    /// Distance-weighted kNN vote among the labeled items.
    Knn,
    /// Multinomial logistic regression.
    Logistic,
    /// Nearest class centroid.
    Centroid,
    /// Gaussian naive Bayes (log space).
    Gnb,
}

impl ModelChoice {
    fn spec(self) -> ModelSpec {
        match self {
            ModelChoice::Auto => ModelSpec::default(),
            ModelChoice::Spread => ModelSpec::Ensemble(vec![
                ModelSpec::Spread(LabelSpreading::default()),
                ModelSpec::Centroid(NearestCentroid::default()),
            ]),
            ModelChoice::Ensemble => ModelSpec::Ensemble(vec![
                ModelSpec::Knn(KnnVote::default()),
                ModelSpec::Centroid(NearestCentroid::default()),
            ]),
            ModelChoice::Knn => ModelSpec::Knn(KnnVote::default()),
            ModelChoice::Logistic => ModelSpec::Logistic(Logistic::default()),
            ModelChoice::Centroid => ModelSpec::Centroid(NearestCentroid::default()),
            ModelChoice::Gnb => ModelSpec::Gnb(GaussianNb::default()),
        }
    }
}

/// Extra formats for autolabels beside autolabels.parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AutolabelFormat {
    Parquet,
    Csv,
    Jsonl,
}

/// Auto-labeling flags, shared by `autolabel`, `select`, `budget` and `plan`.
#[derive(Debug, Clone, Args)]
pub struct AutolabelArgs {
    /// Precision the auto-labels must have; certified by a one-sided 95% lower bound.
    #[arg(long, default_value_t = 0.95, value_name = "P")]
    pub target_precision: f64,
    /// Cosine to a labeled near-duplicate needed to copy its label (source = duplicate).
    #[arg(long, default_value_t = 0.98, value_name = "T")]
    pub propagation_threshold: f32,
    /// Model that predicts labels.
    #[arg(long, value_enum, default_value_t = ModelChoice::Auto)]
    pub model: ModelChoice,
    /// Cross-validation folds used to calibrate confidence thresholds.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub folds: usize,
    /// Give classes with enough labels their own threshold (off: one shared threshold).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub per_class: bool,
    /// Also write autolabels as CSV and/or JSON Lines (comma-separated: csv,jsonl).
    #[arg(long = "format", value_enum, value_delimiter = ',', value_name = "FMT")]
    pub formats: Vec<AutolabelFormat>,
}

impl AutolabelArgs {
    /// Library parameters for these flags.
    pub fn params(&self, seed: u64) -> Result<AutolabelParams> {
        let t = self.target_precision;
        if !(t > 0.0 && t < 1.0) {
            return Err(Error::Usage(format!(
                "--target-precision must be in (0, 1), got {t}"
            )));
        }
        let p = self.propagation_threshold;
        if !(p > 0.0 && p <= 1.0) {
            return Err(Error::Usage(format!(
                "--propagation-threshold must be in (0, 1], got {p}"
            )));
        }
        if self.folds < 2 {
            return Err(Error::Usage("--folds must be at least 2".into()));
        }
        Ok(AutolabelParams {
            model: self.model.spec(),
            calibration: CalibrationParams {
                target_precision: t,
                per_class: self.per_class,
                ..CalibrationParams::default()
            },
            n_folds: self.folds,
            seed,
            propagation_threshold: p,
            keep_probabilities: true,
            ..AutolabelParams::default()
        })
    }
}

/// Rarity flags, shared by `score`, `select` and `plan`.
#[derive(Debug, Clone, Args)]
pub struct RarityArgs {
    /// k-means clusters for cluster rarity [default: round(√(n/2)), clipped to 1..1000].
    #[arg(long, value_name = "K")]
    pub clusters: Option<usize>,
    /// Neighbours whose cosine distances define sparseness.
    #[arg(long, default_value_t = RarityParams::default().neighbors, value_name = "N")]
    pub rarity_neighbors: usize,
    /// Rarity weight: absolute kNN distance (mean distance to the nearest neighbours).
    #[arg(long, default_value_t = RarityParams::default().w_knn, value_name = "W")]
    pub rarity_w_knn: f32,
    /// Rarity weight: kNN distance relative to the neighbours' own (LOF-like).
    #[arg(long, default_value_t = RarityParams::default().w_lof, value_name = "W")]
    pub rarity_w_lof: f32,
    /// Rarity weight: distance to the item's k-means centroid.
    #[arg(long, default_value_t = RarityParams::default().w_centroid, value_name = "W")]
    pub rarity_w_centroid: f32,
    /// Rarity weight: smallness of the item's cluster.
    #[arg(long, default_value_t = RarityParams::default().w_small, value_name = "W")]
    pub rarity_w_small: f32,
    /// Rarity weight: isolation of the item's cluster from the others.
    #[arg(long, default_value_t = RarityParams::default().w_far, value_name = "W")]
    pub rarity_w_far: f32,
    /// Rarity weight: few labels in the item's cluster relative to its size.
    #[arg(long, default_value_t = RarityParams::default().w_coverage, value_name = "W")]
    pub rarity_w_coverage: f32,
    /// Rarity weight: few labels in the item's predicted class.
    #[arg(long, default_value_t = RarityParams::default().w_class, value_name = "W")]
    pub rarity_w_class: f32,
}

impl RarityArgs {
    /// Library parameters for these flags.
    pub fn params(&self) -> Result<RarityParams> {
        let p = RarityParams {
            neighbors: self.rarity_neighbors,
            clusters: self.clusters,
            w_knn: self.rarity_w_knn,
            w_lof: self.rarity_w_lof,
            w_centroid: self.rarity_w_centroid,
            w_small: self.rarity_w_small,
            w_far: self.rarity_w_far,
            w_coverage: self.rarity_w_coverage,
            w_class: self.rarity_w_class,
            ..RarityParams::default()
        };
        p.validate()?;
        Ok(p)
    }
}

/// Batch-selection flags, shared by `select` and `plan`.
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// Items in the batch for humans.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub batch: usize,
    /// How the batch is chosen (hybrid: uncertainty × rarity × density × class need, diverse).
    #[arg(long, value_enum, default_value_t = Strategy::Hybrid)]
    pub strategy: Strategy,
    /// Hybrid weight: uncertainty (1 − ensemble margin).
    #[arg(long, default_value_t = SelectParams::default().w_uncertainty, value_name = "W")]
    pub w_uncertainty: f32,
    /// Hybrid weight: rarity score.
    #[arg(long, default_value_t = SelectParams::default().w_rarity, value_name = "W")]
    pub w_rarity: f32,
    /// Hybrid weight: representativeness (density of the neighbourhood).
    #[arg(long, default_value_t = SelectParams::default().w_density, value_name = "W")]
    pub w_density: f32,
    /// Hybrid weight: few labels in the predicted class.
    #[arg(long, default_value_t = SelectParams::default().w_class, value_name = "W")]
    pub w_class: f32,
    /// Hybrid: penalty per unit of cosine to the nearest labeled or already picked item.
    #[arg(long, default_value_t = SelectParams::default().diversity, value_name = "W")]
    pub diversity: f32,
    /// Below this many labels, selection covers the data (TypiClust-style cold start).
    #[arg(long, default_value_t = SelectParams::default().cold_start_labels, value_name = "N")]
    pub cold_start_labels: usize,
}

impl SelectArgs {
    /// Library parameters for these flags.
    pub fn params(&self, seed: u64) -> Result<SelectParams> {
        let p = SelectParams {
            batch: self.batch,
            strategy: self.strategy,
            w_uncertainty: self.w_uncertainty,
            w_rarity: self.w_rarity,
            w_density: self.w_density,
            w_class: self.w_class,
            diversity: self.diversity,
            cold_start_labels: self.cold_start_labels,
            seed,
            ..SelectParams::default()
        };
        p.validate()?;
        Ok(p)
    }
}

/// Budget flags, shared by `budget` and `plan`.
#[derive(Debug, Clone, Args)]
pub struct BudgetArgs {
    /// Money per human label.
    #[arg(long, default_value_t = 0.10, value_name = "AMOUNT")]
    pub cost_per_label: f64,
    /// Seconds one annotator needs per label.
    #[arg(long, default_value_t = 30.0, value_name = "S")]
    pub seconds_per_label: f64,
    /// Annotators working in parallel (divides hours, not cost).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub annotators: usize,
    /// Share of auto-labels humans spot-check.
    #[arg(long, default_value_t = 0.05, value_name = "F")]
    pub review_fraction: f64,
    /// Accuracy to project labels for [default: 95% of the accuracy projected for the whole pool].
    #[arg(long, value_name = "A")]
    pub target_accuracy: Option<f64>,
    /// Auto-label coverage (share of unlabeled items) to project labels for.
    #[arg(long, default_value_t = 0.5, value_name = "C")]
    pub target_coverage: f64,
    /// Suggest stopping when 100 more labels are projected to add less accuracy than this.
    #[arg(long, default_value_t = 0.002, value_name = "GAIN")]
    pub stop_gain: f64,
    /// Currency shown next to costs.
    #[arg(long, default_value = "USD", value_name = "CODE")]
    pub currency: String,
}

impl BudgetArgs {
    /// Library parameters for these flags and the batch size the table is expressed in.
    pub fn params(&self, batch: usize) -> Result<BudgetParams> {
        let p = BudgetParams {
            cost_per_label: self.cost_per_label,
            seconds_per_label: self.seconds_per_label,
            annotators: self.annotators,
            review_fraction: self.review_fraction,
            target_accuracy: self.target_accuracy,
            stop_gain_per_100: self.stop_gain,
            batch,
            currency: self.currency.clone(),
        };
        p.validate()?;
        if !(self.target_coverage > 0.0 && self.target_coverage < 1.0) {
            return Err(Error::Usage(format!(
                "--target-coverage must be in (0, 1), got {}",
                self.target_coverage
            )));
        }
        Ok(p)
    }
}

/// Labels needed to reach a target, with the bootstrap interval and what they cost.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reach {
    pub target: f64,
    /// Total labels at which the fitted curve reaches the target.
    pub total_labels: Option<f64>,
    /// More labels than now (central estimate) and its 10th–90th percentile interval.
    pub more_labels: Option<f64>,
    pub more_labels_low: Option<f64>,
    pub more_labels_high: Option<f64>,
    pub hours: Option<f64>,
    pub cost: Option<f64>,
}

/// The budget stage's result: counts now, curves, projection and advice.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BudgetOutcome {
    pub params: BudgetParams,
    pub now: BudgetNow,
    pub accuracy_curve: Curve,
    pub coverage_curve: Curve,
    pub accuracy_target: Option<Reach>,
    pub coverage_target: Option<Reach>,
    pub projection: Vec<ProjectionRow>,
    /// Projected accuracy gain of the next 100 labels.
    pub gain_per_100: Option<f64>,
    pub advice: String,
}

/// What a round computed; stages a command did not run stay `None`.
pub struct Round<'a> {
    pub prepared: &'a Prepared,
    pub duplicates: Option<Duplicates>,
    pub autolabel: Option<AutolabelResult>,
    pub rarity: Option<Rarity>,
    pub selection: Option<Selection>,
    pub budget: Option<BudgetOutcome>,
}

impl<'a> Round<'a> {
    /// A round with nothing computed beyond the graph.
    pub fn new(prepared: &'a Prepared) -> Round<'a> {
        Round {
            prepared,
            duplicates: None,
            autolabel: None,
            rarity: None,
            selection: None,
            budget: None,
        }
    }

    /// A round whose near-duplicates are found first (timed as `dedup`): every command that
    /// auto-labels or selects needs them.
    pub fn with_duplicates(
        prepared: &'a Prepared,
        args: &DedupArgs,
        timings: &mut Timings,
    ) -> Round<'a> {
        let mut round = Round::new(prepared);
        round.duplicates = Some(timings.time("dedup", || {
            Duplicates::find(&prepared.data, &prepared.graph.graph, args)
        }));
        round
    }

    /// The pool.
    pub fn data(&self) -> &Dataset {
        &self.prepared.data
    }

    /// Runs auto-labeling with the duplicate groups found (if any).
    pub fn run_autolabel(&mut self, params: &AutolabelParams) -> Result<()> {
        let data = &self.prepared.data;
        let dup = self.duplicates.as_ref().map(|d| DupInfo {
            group: d.group_or_none(),
        });
        let result = autolabel::autolabel(
            data.embeddings.view(),
            &data.labels,
            data.classes.len(),
            &self.prepared.graph.graph,
            dup.as_ref(),
            params,
        )?;
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
        let data = &self.prepared.data;
        let predicted = self.autolabel.as_ref().map(|a| a.predicted.as_slice());
        self.rarity = Some(rarity::score_with_clusters(
            data.embeddings.view(),
            &self.prepared.graph.graph,
            &data.labels,
            predicted,
            params,
            clusters,
        )?);
        Ok(())
    }

    /// Rarity's k-means, from the cache when this pool was clustered with the same parameters
    /// before: it depends on the embeddings alone, and is the costly part of scoring at scale
    /// (1,000,000 × 384: a sampled fit plus a 1,000-centroid assignment of every row).
    fn rarity_clusters(&self, params: &RarityParams, seed: u64) -> Result<KMeans> {
        let emb = self.prepared.data.embeddings.view();
        let Some(pool) = &self.prepared.graph.pool_cache else {
            return rarity::fit_clusters(emb, params, seed);
        };
        let mut h = blake3::Hasher::new();
        h.update(b"labelwise-rarity-kmeans-v1");
        h.update(pool.pool_key.as_bytes());
        h.update(&params.clusters.map_or(0, |c| c as u64 + 1).to_le_bytes());
        h.update(&(params.kmeans_iter as u64).to_le_bytes());
        h.update(&seed.to_le_bytes());
        let key = format!("clusters-{}", h.finalize().to_hex());
        if let Some(km) = pool.cache.get(&key).and_then(|b| KMeans::from_bytes(&b)) {
            if km.assignment.len() == emb.nrows() && km.centroids.ncols() == emb.ncols() {
                return Ok(km);
            }
        }
        let km = rarity::fit_clusters(emb, params, seed)?;
        // A cache that cannot be written costs the next run time, never this run's result.
        let _ = pool.cache.put(&key, &km.to_bytes());
        Ok(km)
    }

    /// Picks the batch among items routed to humans (all unlabeled ones if auto-labeling did
    /// not run), one per near-duplicate group.
    pub fn run_select(&mut self, params: &SelectParams) -> Result<()> {
        let data = self.data();
        let n = data.len();
        let eligible: Vec<bool> = match &self.autolabel {
            Some(a) => a.route.iter().map(|r| *r == Route::Human).collect(),
            None => data.labels.iter().map(Option::is_none).collect(),
        };
        let probs = self
            .autolabel
            .as_ref()
            .and_then(|a| a.probabilities.as_ref());
        let dup_group: Vec<i64> = match &self.duplicates {
            Some(d) => d.group_or_none(),
            None => vec![-1; n],
        };
        let input = SelectInput {
            labels: &data.labels,
            eligible: &eligible,
            probs: probs.as_ref().map(|p| p.view()),
        };
        let selection = select::select(
            data.embeddings.view(),
            &self.prepared.graph.graph,
            &input,
            &dup_group,
            self.rarity.as_ref().map(|r| r.rarity.as_slice()),
            params,
        )?;
        self.selection = Some(selection);
        Ok(())
    }

    /// duplicate_pairs.parquet, when duplicates were searched.
    pub fn duplicates_write(&self, out: &OutDir) -> Result<()> {
        match &self.duplicates {
            Some(d) => d.write_pairs(self.data(), out),
            None => Ok(()),
        }
    }

    /// Counts, hours and cost now, and the learning-curve projection (needs auto-labeling).
    pub fn run_budget(
        &mut self,
        params: &BudgetParams,
        target_coverage: f64,
        target_precision: f64,
        seed: u64,
    ) -> Result<()> {
        let data = self.data();
        let n = data.len();
        let counts = self
            .autolabel
            .as_ref()
            .map(|a| a.summary.counts.clone())
            .unwrap_or_default();
        let (labeled, auto, dup) = (data.labeled_count(), counts.auto, counts.duplicate);
        // Humans label one item per near-duplicate group; the twins follow.
        let human_items: Vec<usize> = match &self.autolabel {
            Some(a) => (0..n).filter(|&i| a.route[i] == Route::Human).collect(),
            None => (0..n).filter(|&i| data.labels[i].is_none()).collect(),
        };
        let collapsed = match &self.duplicates {
            Some(d) => human_items
                .iter()
                .filter(|&&i| d.groups.representative[i])
                .count(),
            None => human_items.len(),
        };
        let now = budget::now(
            params,
            n,
            human_items.len() - collapsed,
            labeled,
            auto,
            dup,
            collapsed,
        );
        // Learning curves with budget's curve model (logistic regression, C = 10, uniform
        // class weights; see budget::curve_model).
        let labeled_rows: Vec<usize> = (0..n).filter(|&i| data.labels[i].is_some()).collect();
        let labeled_mask: Vec<bool> = data.labels.iter().map(Option::is_some).collect();
        let y: Vec<u32> = labeled_rows
            .iter()
            .filter_map(|&i| data.labels[i])
            .collect();
        let yardstick = budget::curve_model();
        let points = budget::learning_curve_repeated(
            data.embeddings.view(),
            &labeled_rows,
            &y,
            data.classes.len(),
            &yardstick,
            target_precision,
            5,
            6,
            &labeled_mask,
            2000,
            budget::CURVE_REPEATS,
            seed,
        )?;
        let accuracy = points.accuracy_curve(200, seed);
        let coverage = Curve::fit(points.coverage, 200, seed ^ 1);
        let reach = |curve: &Curve, target: f64| -> Reach {
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
        };
        let accuracy_target = accuracy
            .fit
            .map(|law| reach(&accuracy, params.accuracy_target(&law, n)));
        let coverage_target = coverage.fit.map(|_| reach(&coverage, target_coverage));
        let projection = budget::projection_table(params, labeled, &accuracy, &coverage);
        let gain_per_100 = accuracy
            .fit
            .map(|law| law.at(labeled as f64 + 100.0) - law.at(labeled as f64));
        let advice = match (gain_per_100, &accuracy_target) {
            (None, _) => "too few labels to project a learning curve yet: label the batch and rerun".to_string(),
            (Some(g), _) if g < params.stop_gain_per_100 => format!(
                "stop: 100 more labels are projected to add {:.2} accuracy points (below the {:.2} threshold)",
                100.0 * g,
                100.0 * params.stop_gain_per_100
            ),
            (Some(g), Some(Reach { more_labels: Some(m), target, .. })) => format!(
                "continue: 100 more labels are projected to add {:.2} accuracy points; about {:.0} more reach accuracy {:.3}",
                100.0 * g, m, target
            ),
            (Some(g), _) => format!(
                "continue: 100 more labels are projected to add {:.2} accuracy points",
                100.0 * g
            ),
        };
        self.budget = Some(BudgetOutcome {
            params: params.clone(),
            now,
            accuracy_curve: accuracy,
            coverage_curve: coverage,
            accuracy_target,
            coverage_target,
            projection,
            gain_per_100,
            advice,
        });
        Ok(())
    }

    /// budget.csv: the projection table.
    pub fn write_budget(&self, out: &OutDir) -> Result<()> {
        let Some(b) = &self.budget else {
            return Ok(());
        };
        out.write_with("budget.csv", |w| {
            let mut csv = csv::Writer::from_writer(w);
            let err = |e: csv::Error| Error::Internal(format!("budget.csv: {e}"));
            csv.write_record([
                "added_labels",
                "total_labels",
                "projected_accuracy",
                "projected_auto_coverage",
                "hours",
                "cost",
            ])
            .map_err(err)?;
            let opt = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_default();
            for r in &b.projection {
                csv.write_record([
                    r.added_labels.to_string(),
                    r.total_labels.to_string(),
                    opt(r.projected_accuracy),
                    opt(r.projected_auto_coverage),
                    format!("{:.2}", r.hours),
                    format!("{:.2}", r.cost),
                ])
                .map_err(err)?;
            }
            csv.flush().map_err(|e| Error::io("budget.csv", e))
        })?;
        Ok(())
    }

    /// Per-item reasons: the batch's own reasons for picked items, rarity reasons otherwise.
    fn reasons(&self) -> Vec<String> {
        let n = self.data().len();
        let mut reasons: Vec<String> = match &self.rarity {
            Some(r) => r
                .reasons
                .iter()
                .map(|&f| rarity::reason_names(f).join(";"))
                .collect(),
            None => vec![String::new(); n],
        };
        if let Some(sel) = &self.selection {
            for (rank, &i) in sel.picked.iter().enumerate() {
                reasons[i as usize] = sel.reasons[rank].clone();
            }
        }
        reasons
    }

    /// batch.csv: rank, id, score, reasons, then the carried columns.
    pub fn write_batch(&self, out: &OutDir) -> Result<()> {
        let Some(sel) = &self.selection else {
            return Ok(());
        };
        let data = self.data();
        out.write_with("batch.csv", |w| {
            let mut csv = csv::Writer::from_writer(w);
            let err = |e: csv::Error| Error::Internal(format!("batch.csv: {e}"));
            let mut header = vec![
                "rank".to_string(),
                "id".into(),
                "score".into(),
                "reasons".into(),
            ];
            header.extend(data.carried.iter().map(|c| c.field.name().clone()));
            csv.write_record(&header).map_err(err)?;
            for (rank, &i) in sel.picked.iter().enumerate() {
                let i = i as usize;
                let mut row = vec![
                    (rank + 1).to_string(),
                    data.ids[i].clone(),
                    format!("{:.6}", sel.score[rank]),
                    sel.reasons[rank].clone(),
                ];
                row.extend((0..data.carried.len()).map(|c| data.carried_text(c, i)));
                csv.write_record(&row).map_err(err)?;
            }
            csv.flush().map_err(|e| Error::io("batch.csv", e))
        })?;
        Ok(())
    }

    /// items.parquet: id, the given label, every stage's columns, then the carried columns.
    pub fn items_table(&self) -> Result<RecordBatch> {
        let data = self.data();
        let mut items = ItemsTable::new(data);
        let class_names = |v: &[Option<u32>]| -> ArrayRef {
            Arc::new(StringArray::from(
                v.iter()
                    .map(|l| l.map(|c| data.classes[c as usize].as_str()))
                    .collect::<Vec<_>>(),
            ))
        };
        items.push("label", class_names(&data.labels), true);
        if let Some(d) = &self.duplicates {
            d.add_columns(&mut items);
        }
        if let Some(a) = &self.autolabel {
            items.push("predicted_label", class_names(&a.predicted), true);
            items.push(
                "confidence",
                Arc::new(Float32Array::from(a.confidence.clone())),
                false,
            );
            items.push(
                "route",
                Arc::new(StringArray::from_iter_values(
                    a.route.iter().map(|r| route_name(*r)),
                )),
                false,
            );
        }
        if let Some(r) = &self.rarity {
            items.push(
                "rarity",
                Arc::new(Float32Array::from(r.rarity.clone())),
                false,
            );
            items.push(
                "cluster",
                Arc::new(UInt32Array::from(r.cluster.clone())),
                false,
            );
        }
        if let Some(sel) = &self.selection {
            items.push(
                "priority",
                Arc::new(Int64Array::from(
                    sel.priority
                        .iter()
                        .map(|p| p.map(i64::from))
                        .collect::<Vec<_>>(),
                )),
                true,
            );
        }
        if self.rarity.is_some() || self.selection.is_some() {
            items.push(
                "reasons",
                Arc::new(StringArray::from_iter_values(self.reasons())),
                false,
            );
        }
        let own: Vec<String> = items.names();
        for (c, col) in data.carried.iter().enumerate() {
            if own.contains(col.field.name()) {
                continue;
            }
            items.push_field(col.field.as_ref().clone(), concat_chunks(data, c)?);
        }
        items.finish()
    }

    /// autolabels.parquet (+ csv/jsonl): the items labeled by the model or by a duplicate.
    pub fn write_autolabels(&self, out: &OutDir, formats: &[AutolabelFormat]) -> Result<()> {
        let Some(a) = &self.autolabel else {
            return Ok(());
        };
        let data = self.data();
        let rows: Vec<usize> = (0..data.len())
            .filter(|&i| matches!(a.route[i], Route::Auto | Route::Duplicate))
            .collect();
        let label = |i: usize| data.classes[a.predicted[i].unwrap_or(0) as usize].as_str();
        let source = |i: usize| match a.source[i] {
            Source::Duplicate => "duplicate",
            _ => "model",
        };
        let ids = id_array(data, rows.iter().copied());
        let schema = Schema::new(vec![
            Field::new("id", ids.data_type().clone(), false),
            Field::new("label", DataType::Utf8, false),
            Field::new("confidence", DataType::Float32, false),
            Field::new("source", DataType::Utf8, false),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                ids,
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|&i| label(i)),
                )),
                Arc::new(Float32Array::from_iter_values(
                    rows.iter().map(|&i| a.confidence[i]),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|&i| source(i)),
                )),
            ],
        )
        .map_err(|e| Error::Internal(format!("autolabels table: {e}")))?;
        out.write_parquet("autolabels.parquet", &batch)?;
        if formats.contains(&AutolabelFormat::Csv) {
            out.write_with("autolabels.csv", |w| {
                let mut csv = csv::Writer::from_writer(w);
                let err = |e: csv::Error| Error::Internal(format!("autolabels.csv: {e}"));
                csv.write_record(["id", "label", "confidence", "source"])
                    .map_err(err)?;
                for &i in &rows {
                    csv.write_record([
                        data.ids[i].as_str(),
                        label(i),
                        &a.confidence[i].to_string(),
                        source(i),
                    ])
                    .map_err(err)?;
                }
                csv.flush().map_err(|e| Error::io("autolabels.csv", e))
            })?;
        }
        if formats.contains(&AutolabelFormat::Jsonl) {
            out.write_with("autolabels.jsonl", |w| {
                use std::io::Write;
                for &i in &rows {
                    let id: Value = if data.ids_are_integers {
                        json!(data.ids[i].parse::<i64>().unwrap_or_default())
                    } else {
                        json!(data.ids[i])
                    };
                    let line = json!({
                        "id": id,
                        "label": label(i),
                        "confidence": a.confidence[i],
                        "source": source(i),
                    });
                    writeln!(w, "{line}").map_err(|e| Error::io("autolabels.jsonl", e))?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }
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

/// One carried column as a single array (chunks concatenated), for items.parquet.
fn concat_chunks(data: &Dataset, col: usize) -> Result<ArrayRef> {
    let chunks: Vec<&dyn arrow_array::Array> = data.carried[col]
        .chunks
        .iter()
        .map(|c| c.as_ref())
        .collect();
    arrow_select::concat::concat(&chunks)
        .map_err(|e| Error::Internal(format!("carried column: {e}")))
}
