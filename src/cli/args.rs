//! Every flag group, defined once with its docs, and its conversion into the library's
//! parameter structs (ripgrep's defs/hiargs split: clap stops here; nothing below `cli` names a
//! flag).

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};

use crate::data::dataset::LoadOptions;
use crate::error::{Error, Result};
use crate::index::graph::{GraphParams, IndexKind, DEFAULT_K, DEFAULT_PROBES};
use crate::model::{GaussianNb, KnnVote, LabelSpreading, Logistic, ModelSpec, NearestCentroid};
use crate::output::export::Format as ExportFormat;
use crate::output::round_files::AutolabelFormat;
use crate::round::autolabel::AutolabelParams;
use crate::round::budget::BudgetParams;
use crate::round::calibrate::CalibrationParams;
use crate::round::dedup::{DedupParams, Grouping};
use crate::round::rarity::RarityParams;
use crate::round::select::{SelectParams, Strategy};

/// The library checks its parameters with messages naming them (`batch must be ≥ 1`); these
/// checks run first so a bad flag is reported by its flag name.
pub(crate) fn flag_at_least_1(flag: &str, value: usize) -> Result<()> {
    if value == 0 {
        return Err(Error::Usage(format!("{flag} must be at least 1")));
    }
    Ok(())
}

/// `value` must be finite and ≥ 0 (a weight, a cost).
fn flag_non_negative(flag: &str, value: f64) -> Result<()> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(Error::Usage(format!(
            "{flag} must be a finite number ≥ 0, got {value}"
        )));
    }
    Ok(())
}

/// `clap::ValueEnum` for a library enum, so the library needs no clap: the value names and
/// their one-line help, in the order `--help` lists them.
macro_rules! value_enum {
    ($ty:ty { $($variant:path => $name:literal : $help:literal),+ $(,)? }) => {
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($variant),+]
            }
            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(match self {
                    $($variant => PossibleValue::new($name).help($help)),+
                })
            }
        }
    };
}

/// Input flags shared by every command that reads a pool.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Parquet files or folders of Parquet files (read recursively, all with the same schema).
    #[arg(required = true, value_name = "DATA")]
    pub data: Vec<PathBuf>,
    /// Column holding the item id (string or integer, unique across all files).
    #[arg(long, default_value = "id", value_name = "NAME")]
    pub id_col: String,
    /// Column holding the embedding (list of float16/32/64, one length for all rows).
    #[arg(long, default_value = "embedding", value_name = "NAME")]
    pub embedding_col: String,
    /// Column holding labels (null = unlabeled) [default: `label` when present].
    #[arg(long, value_name = "NAME")]
    pub label_col: Option<String>,
    /// Annotators' labels applied on top of the label column: a Label Studio (JSON, JSON_MIN, CSV), Argilla or Prodigy export, or CSV/Parquet id,label.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// The control in the --labels export that holds the label (Label Studio from_name, Argilla question) [default: the only one].
    #[arg(long, value_name = "NAME", requires = "labels")]
    pub label_control: Option<String>,
}

impl InputArgs {
    /// Loader options for these flags; `carry_extra` keeps the other columns for exports.
    pub fn load_options(&self, carry_extra: bool) -> LoadOptions {
        LoadOptions {
            id_col: self.id_col.clone(),
            embedding_col: self.embedding_col.clone(),
            label_col: self.label_col.clone(),
            labels_file: self.labels.clone(),
            label_control: self.label_control.clone(),
            carry_extra,
            memory_check: None,
            read_embeddings: true,
        }
    }
}

/// Flags shared by every command that writes a run's outputs.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Output folder (created); every file in it is written atomically.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Seed for every random choice; the same inputs and seed give byte-identical outputs.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Cache folder for label-independent work [default: .labelwise-cache beside the first input].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Refuse to start when the run is estimated to need more memory (e.g. 8G) [default: available memory].
    #[arg(long, value_name = "SIZE", value_parser = crate::data::memory::parse_size)]
    pub max_memory: Option<u64>,
}

/// Neighbour-graph flags, shared by every command that builds the graph.
#[derive(Debug, Clone, Args)]
pub struct GraphArgs {
    /// Neighbours kept per item in the graph.
    #[arg(long, default_value_t = DEFAULT_K, value_name = "K")]
    pub k: usize,
    /// How the graph is built: auto picks exact or partitioned by size (see BENCHMARKS.md).
    #[arg(long, value_enum, default_value_t = IndexKind::Auto)]
    pub index: IndexKind,
    /// Partitioned index: k-means lists each item searches (more = higher recall, slower).
    #[arg(long, default_value_t = DEFAULT_PROBES, value_name = "P")]
    pub probes: usize,
}

impl GraphArgs {
    /// Graph parameters for these flags and the run's seed.
    pub fn params(&self, seed: u64) -> Result<GraphParams> {
        flag_at_least_1("--k", self.k)?;
        if self.k > 1024 {
            return Err(Error::Usage(format!(
                "--k must be at most 1024, got {}",
                self.k
            )));
        }
        flag_at_least_1("--probes", self.probes)?;
        Ok(GraphParams {
            k: self.k,
            index: self.index,
            probes: self.probes,
            seed,
        })
    }
}

/// Near-duplicate flags, shared by `dedup` and `plan`.
#[derive(Debug, Clone, Args)]
pub struct DedupArgs {
    /// Cosine at or above which two items are near-duplicates.
    #[arg(long, default_value_t = 0.95, value_name = "T")]
    pub threshold: f64,
    /// How pairs form groups: connected components, or stars around a representative (no chains).
    #[arg(long, value_enum, default_value_t = Grouping::Star)]
    pub grouping: Grouping,
}

impl DedupArgs {
    /// Library parameters for these flags.
    pub fn params(&self) -> Result<DedupParams> {
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(Error::Usage(format!(
                "--threshold must be in (0, 1], got {}",
                self.threshold
            )));
        }
        DedupParams::new(self.threshold, self.grouping)
    }
}

/// The model flag's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelChoice {
    /// The better of logistic regression + kNN vote (averaged) and label spreading + nearest
    /// centroid: with 100 or more labels the strategy picked (`--history`), the one whose
    /// confidence best separates its right predictions from its wrong ones on those picks;
    /// otherwise the one that certifies the larger share (the measured default, README
    /// "Auto-labels").
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
            keep_uncertainty: true,
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
        flag_at_least_1("--rarity-neighbors", self.rarity_neighbors)?;
        if let Some(k) = self.clusters {
            flag_at_least_1("--clusters", k)?;
        }
        let w = [
            ("--rarity-w-knn", self.rarity_w_knn),
            ("--rarity-w-lof", self.rarity_w_lof),
            ("--rarity-w-centroid", self.rarity_w_centroid),
            ("--rarity-w-small", self.rarity_w_small),
            ("--rarity-w-far", self.rarity_w_far),
            ("--rarity-w-coverage", self.rarity_w_coverage),
            ("--rarity-w-class", self.rarity_w_class),
        ];
        for (flag, v) in w {
            flag_non_negative(flag, v as f64)?;
        }
        if w.iter().all(|(_, v)| *v == 0.0) {
            return Err(Error::Usage(
                "at least one of the --rarity-w-* weights must be > 0".into(),
            ));
        }
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
    /// Share of each batch drawn as audits once a model exists: uniform random draws from the
    /// unlabeled pool, carrying the predicted label for a human to verify. Audits are the
    /// auto-label certificate's evidence (labels the strategy picked are not); 0 turns them off.
    #[arg(long, default_value_t = SelectParams::default().audit_share, value_name = "F")]
    pub audit_share: f64,
}

impl SelectArgs {
    /// Library parameters for these flags.
    pub fn params(&self, seed: u64) -> Result<SelectParams> {
        flag_at_least_1("--batch", self.batch)?;
        let w = [
            ("--w-uncertainty", self.w_uncertainty),
            ("--w-rarity", self.w_rarity),
            ("--w-density", self.w_density),
            ("--w-class", self.w_class),
        ];
        for (flag, v) in w.into_iter().chain([("--diversity", self.diversity)]) {
            flag_non_negative(flag, v as f64)?;
        }
        if w.iter().map(|(_, v)| v).sum::<f32>() <= 0.0 {
            return Err(Error::Usage(
                "at least one of --w-uncertainty, --w-rarity, --w-density and --w-class must be > 0"
                    .into(),
            ));
        }
        let p = SelectParams {
            batch: self.batch,
            strategy: self.strategy,
            w_uncertainty: self.w_uncertainty,
            w_rarity: self.w_rarity,
            w_density: self.w_density,
            w_class: self.w_class,
            diversity: self.diversity,
            cold_start_labels: self.cold_start_labels,
            audit_share: self.audit_share,
            seed,
            ..SelectParams::default()
        };
        p.validate()?;
        Ok(p)
    }
}

/// The round history, shared by `plan`, `select` and `autolabel`.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Folder keeping every round's picks and how each was chosen (created when missing; one
    /// folder per pool). `plan` and `select` add their batch to it once everything else is
    /// written; every command reads it so the auto-label certificate uses only unbiased
    /// evidence: audits and labels the history has no pick for.
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
}

/// The users' rules in the round, shared by `plan`, `select` and `autolabel`.
#[derive(Debug, Clone, Args)]
pub struct RoundRulesArgs {
    /// Rules file (TOML; see README "Rules"): where its rules fire, their votes combined with the
    /// model become one more auto-label route (source `rules`), certified on the same evidence
    /// and error budget as the models; items.parquet's reasons name the rules that fired.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Rule votes computed elsewhere (CSV or Parquet, columns id,rule,label; one row per vote,
    /// an absent row abstains): each rule named in it joins --rules' rules and is analysed,
    /// combined and certified exactly as they are.
    #[arg(long, value_name = "FILE")]
    pub rule_votes: Option<PathBuf>,
}

impl RoundRulesArgs {
    /// The rules these flags give.
    pub fn inputs(&self) -> crate::rules::RuleInputs<'_> {
        rule_inputs(&self.rules, &self.rule_votes)
    }
}

/// The rules `--rules` and `--rule-votes` give (the round's flags and `rules`' own differ only
/// in their help).
fn rule_inputs<'a>(
    file: &'a Option<PathBuf>,
    votes_file: &'a Option<PathBuf>,
) -> crate::rules::RuleInputs<'a> {
    crate::rules::RuleInputs {
        file: file.as_deref(),
        votes_file: votes_file.as_deref(),
        given: None,
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
    /// Seconds one annotator needs to verify an audit's shown label [default: a third of
    /// --seconds-per-label].
    #[arg(long, value_name = "S")]
    pub seconds_per_verify: Option<f64>,
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
    /// Suggest stopping when 100 more labels are also projected to add less certified
    /// auto-label coverage than this (share of the unlabeled pool).
    #[arg(long, default_value_t = 0.005, value_name = "GAIN")]
    pub stop_coverage_gain: f64,
    /// Currency shown next to costs.
    #[arg(long, default_value = "USD", value_name = "CODE")]
    pub currency: String,
}

impl BudgetArgs {
    /// Library parameters for these flags, the batch size the table is expressed in and the
    /// share of each batch that is audits.
    pub fn params(&self, batch: usize, audit_share: f64) -> Result<BudgetParams> {
        flag_non_negative("--cost-per-label", self.cost_per_label)?;
        flag_non_negative("--seconds-per-label", self.seconds_per_label)?;
        let seconds_per_verify = self
            .seconds_per_verify
            .unwrap_or(self.seconds_per_label / 3.0);
        flag_non_negative("--seconds-per-verify", seconds_per_verify)?;
        flag_at_least_1("--annotators", self.annotators)?;
        if !(0.0..=1.0).contains(&self.review_fraction) {
            return Err(Error::Usage(format!(
                "--review-fraction must be in [0, 1], got {}",
                self.review_fraction
            )));
        }
        if let Some(t) = self.target_accuracy {
            if !(t > 0.0 && t < 1.0) {
                return Err(Error::Usage(format!(
                    "--target-accuracy must be in (0, 1), got {t}"
                )));
            }
        }
        flag_at_least_1("--batch", batch)?;
        let p = BudgetParams {
            cost_per_label: self.cost_per_label,
            seconds_per_label: self.seconds_per_label,
            seconds_per_verify,
            audit_share,
            annotators: self.annotators,
            review_fraction: self.review_fraction,
            target_accuracy: self.target_accuracy,
            stop_gain_per_100: self.stop_gain,
            stop_coverage_gain_per_100: self.stop_coverage_gain,
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

value_enum!(IndexKind {
    IndexKind::Auto => "auto": "Exact up to 20,000 items, partitioned above",
    IndexKind::Exact => "exact": "Exact blocked matrix products: recall 1.0, cost O(n²·d)",
    IndexKind::Partitioned => "partitioned": "Exact search inside the `probes` nearest k-means lists of each item: recall ≈ 0.99+",
    IndexKind::Hnsw => "hnsw": "`hnsw_rs` (M=32, ef_construction=200); not deterministic, slower than the others here",
});

value_enum!(Grouping {
    Grouping::Connected => "connected": "Connected components of the pair graph (transitive: chains at low thresholds)",
    Grouping::Star => "star": "Stars: each group is a representative plus the members with cosine ≥ T to it, chosen greedily — the item with the most near-duplicates still ungrouped becomes a representative and takes them all (recommended: no chains, linear in the pairs)",
});

value_enum!(Strategy {
    Strategy::Random => "random": "Uniform, seeded: the baseline every other strategy must beat",
    Strategy::Margin => "margin": "Smallest top-1 − top-2 probability first",
    Strategy::Entropy => "entropy": "Highest predictive entropy first",
    Strategy::Coreset => "coreset": "Greedy k-center: the item farthest from everything labeled or picked",
    Strategy::Typiclust => "typiclust": "Most typical item of each uncovered k-means cluster",
    Strategy::Hybrid => "hybrid": "Uncertainty × rarity × density × class need, made diverse; TypiClust on cold start",
});

value_enum!(AutolabelFormat {
    AutolabelFormat::Parquet => "parquet": "autolabels.parquet (always written)",
    AutolabelFormat::Csv => "csv": "autolabels.csv",
    AutolabelFormat::Jsonl => "jsonl": "autolabels.jsonl",
});

value_enum!(ExportFormat {
    ExportFormat::LabelStudio => "label-studio": "Label Studio tasks with predictions (tasks.json)",
    ExportFormat::Sagemaker => "sagemaker": "SageMaker Ground Truth-style output manifest (manifest.jsonl)",
    ExportFormat::Prodigy => "prodigy": "Prodigy-style JSONL (prodigy.jsonl)",
    ExportFormat::Jsonl => "jsonl": "One JSON object per item (items.jsonl)",
    ExportFormat::Csv => "csv": "One CSV row per item (items.csv)",
});

/// Rules flags, for `rules`.
#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    /// Rules file (TOML): each rule a name, the label it votes for and a condition (README "Rules").
    /// One of --rules and --rule-votes is needed (or rule functions, from Python).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Rule votes computed elsewhere (CSV or Parquet, columns id,rule,label; one row per vote,
    /// an absent row abstains), analysed beside the rules file's rules.
    #[arg(long, value_name = "FILE")]
    pub rule_votes: Option<PathBuf>,
    /// Example ids kept per rule in rule_disagreements.csv (labeled items the rule contradicts).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub examples: usize,
}

impl RulesArgs {
    /// The rules these flags give.
    pub fn inputs(&self) -> crate::rules::RuleInputs<'_> {
        rule_inputs(&self.rules, &self.rule_votes)
    }
}

/// Which Label Studio server and project, for `push label-studio` and `pull label-studio`; the
/// API key comes from the environment (`LABEL_STUDIO_API_KEY`, as Label Studio's SDK reads it),
/// never from a flag, so it stays out of shell history and process lists.
#[derive(Debug, Clone, Args)]
pub struct LabelStudioArgs {
    /// Label Studio's base URL, e.g. http://localhost:8080 (the API key is read from LABEL_STUDIO_API_KEY: a legacy token or a personal access token).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The project's id (the number in its URL, /projects/ID).
    #[arg(long, value_name = "ID")]
    pub project: u64,
}

impl LabelStudioArgs {
    /// Connects with the key in `LABEL_STUDIO_API_KEY` (a personal access token is exchanged
    /// for an access token now, so a wrong one fails before any work).
    pub fn connect(&self) -> Result<crate::tools::label_studio::Client> {
        use crate::tools::label_studio::{Client, API_KEY_ENV};
        let key = std::env::var(API_KEY_ENV).map_err(|_| {
            Error::Usage(format!(
                "{API_KEY_ENV} is not set: export it with your Label Studio access token \
                 (Account & Settings > Access Token)"
            ))
        })?;
        Client::connect(&self.url, &key)
    }
}
