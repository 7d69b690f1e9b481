//! One labeling round's stages and outputs, shared by `dedup`, `score`, `autolabel`, `select`,
//! `budget` and `plan`: each command runs the stages it needs and writes what they produced, so
//! items.parquet has one shape and one writer whichever command made it.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::autolabel::{self, AutolabelParams, AutolabelResult, DupInfo, Route, Source};
use crate::calibrate::CalibrationParams;
use crate::cmd::dedup::Duplicates;
use crate::cmd::Prepared;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::model::{GaussianNb, KnnVote, Logistic, ModelSpec, NearestCentroid};
use crate::output::{id_array, ItemsTable, OutDir};

/// The model flag's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelChoice {
    /// kNN vote + logistic regression + nearest centroid, averaged (measured default).
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
            ModelChoice::Ensemble => ModelSpec::default(),
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
    #[arg(long, value_enum, default_value_t = ModelChoice::Ensemble)]
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
            ..AutolabelParams::default()
        })
    }
}

/// What a round computed; stages a command did not run stay `None`.
pub struct Round<'a> {
    pub prepared: &'a Prepared,
    pub duplicates: Option<Duplicates>,
    pub autolabel: Option<AutolabelResult>,
}

impl<'a> Round<'a> {
    /// A round with nothing computed beyond the graph.
    pub fn new(prepared: &'a Prepared) -> Round<'a> {
        Round {
            prepared,
            duplicates: None,
            autolabel: None,
        }
    }

    /// The pool.
    pub fn data(&self) -> &Dataset {
        &self.prepared.data
    }

    /// Runs auto-labeling with the duplicate groups found (if any).
    pub fn run_autolabel(&mut self, params: &AutolabelParams) -> Result<()> {
        let data = &self.prepared.data;
        let dup = self.duplicates.as_ref().map(|d| DupInfo {
            group: d
                .groups
                .group
                .iter()
                .zip(&d.groups.group_size)
                .map(|(&g, &size)| if size > 1 { g } else { -1 })
                .collect(),
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
