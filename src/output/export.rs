//! A run's items.parquet as files labeling tools import (`labelwise export`).
//!
//! - `label-studio`: a tasks JSON array; `data` holds the carried columns and our own fields
//!   (`lw_id`, the item id, which survives Label Studio's renaming of `id`; `lw_route`,
//!   `lw_priority`), `predictions` the model's label as a `choices` pre-annotation with its
//!   `score`, so annotators can sort by it, and `annotations` the human label of items already
//!   labeled (`--routes labeled`);
//! - `sagemaker`: a Ground-Truth-style output manifest (JSON Lines) with `confidence` and
//!   `human-annotated`;
//! - `prodigy`: Prodigy-style JSONL (`text`, `label`, `score`, `meta` with the item id as
//!   `lw_id`, `answer`);
//! - `jsonl`: one JSON object per item with every column;
//! - `csv`: one row per item with every column.
//!
//! Audit picks (reason `audit`) are always exported, whatever `--routes` says: they are the
//! batch's verifications, carrying the model's label as the pre-annotation to confirm or
//! correct (Label Studio `predictions` and `data.lw_audit`, Prodigy `label` and
//! `meta.lw_audit`, the `predicted_label` and `reasons` columns in CSV and JSONL).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{json, Map, Value};

use crate::data::dataset::cell_json;
use crate::error::{Error, Result};
use crate::round::select::AUDIT_REASON;
use crate::store::atomic::write_atomic;

/// Target formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Label Studio tasks with predictions (tasks.json).
    LabelStudio,
    /// SageMaker Ground Truth-style output manifest (manifest.jsonl).
    Sagemaker,
    /// Prodigy-style JSONL (prodigy.jsonl).
    Prodigy,
    /// One JSON object per item (items.jsonl).
    Jsonl,
    /// One CSV row per item (items.csv).
    Csv,
}

impl Format {
    fn default_file(self) -> &'static str {
        match self {
            Format::LabelStudio => "tasks.json",
            Format::Sagemaker => "manifest.jsonl",
            Format::Prodigy => "prodigy.jsonl",
            Format::Jsonl => "items.jsonl",
            Format::Csv => "items.csv",
        }
    }
}

/// What an export writes: the format, which routes, and the labeling tool's names.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportParams {
    /// File format to write.
    pub format: Format,
    /// Routes exported (`labeled`, `auto`, `duplicate`, `human`).
    pub routes: Vec<String>,
    /// Label Studio: `from_name` of the Choices control.
    pub from_name: String,
    /// Label Studio: `to_name`, the object the choices label.
    pub to_name: String,
    /// Label Studio `model_version` tag (default: labelwise-VERSION).
    pub model_version: Option<String>,
    /// SageMaker: the label attribute name.
    pub attribute_name: String,
    /// Column used as the item's text (default: `text`, else `id`).
    pub text_col: Option<String>,
}

/// Columns labelwise itself writes to items.parquet; everything else is carried data.
const OWN_COLUMNS: [&str; 11] = [
    "id",
    "label",
    "dup_group",
    "dup_representative",
    "rarity",
    "cluster",
    "predicted_label",
    "confidence",
    "route",
    "priority",
    "reasons",
];

/// One item of the run, as JSON values by column name.
struct Item {
    cols: Map<String, Value>,
}

impl Item {
    fn str(&self, name: &str) -> Option<&str> {
        self.cols.get(name).and_then(Value::as_str)
    }
    fn f64(&self, name: &str) -> Option<f64> {
        self.cols.get(name).and_then(Value::as_f64)
    }
    /// An audit pick: a shown label for a human to verify (`audit` among its reasons).
    fn is_audit(&self) -> bool {
        self.str("reasons")
            .is_some_and(|r| r.split(';').any(|x| x == AUDIT_REASON))
    }
    fn label(&self) -> Option<&str> {
        self.str("label").or_else(|| self.str("predicted_label"))
    }
}

/// The run's items: items.parquet, a file or (a distributed run's) a folder of parts.
fn read_items(path: &Path) -> Result<(Vec<String>, Vec<Item>)> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::input(
            path,
            None,
            None,
            format!("{e} (run plan, autolabel or select first)"),
        )
    })?;
    let files = if meta.is_dir() {
        crate::data::dataset::expand_paths(&[path.to_path_buf()])?
    } else {
        vec![path.to_path_buf()]
    };
    let mut names = Vec::new();
    let mut items = Vec::new();
    for file in &files {
        read_items_file(file, &mut names, &mut items)?;
    }
    Ok((names, items))
}

/// Appends one items file's rows to `items`; `names` are the first file's columns, which every
/// part must have.
fn read_items_file(path: &Path, names: &mut Vec<String>, items: &mut Vec<Item>) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::input(path, None, None, e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| Error::input(path, None, None, format!("not a readable items file: {e}")))?;
    for batch in reader {
        let batch: RecordBatch = batch
            .map_err(|e| Error::input(path, None, None, format!("unreadable items file: {e}")))?;
        let schema_names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if names.is_empty() {
            *names = schema_names;
            for need in ["id", "route"] {
                if !names.iter().any(|n| n == need) {
                    return Err(Error::input(
                        path,
                        Some(need),
                        None,
                        "missing column (this folder's items.parquet has no routes: run plan or autolabel)",
                    ));
                }
            }
        } else if *names != schema_names {
            return Err(Error::input(
                path,
                None,
                None,
                "its columns differ from the first part's (items.parquet's parts are one table)",
            ));
        }
        for row in 0..batch.num_rows() {
            let mut cols = Map::new();
            for (i, name) in names.iter().enumerate() {
                let col: &dyn Array = batch.column(i).as_ref();
                cols.insert(name.clone(), cell_json(col, row));
            }
            items.push(Item { cols });
        }
    }
    Ok(())
}

/// The run's items in `dir` that `params` exports, in task order: the batch first in priority
/// order (audits included), then pre-annotations by ascending confidence, then the rest.
fn export_items(dir: &Path, params: &ExportParams) -> Result<(PathBuf, Vec<String>, Vec<Item>)> {
    let args = params;
    let items_path = dir.join("items.parquet");
    let (names, mut items) = read_items(&items_path)?;
    // Audits are always tasks: they are the batch's verifications, whatever their route.
    items.retain(|it| {
        it.is_audit()
            || it
                .str("route")
                .is_some_and(|r| args.routes.iter().any(|x| x == r))
    });
    // The batch first in priority order (audits included), then pre-annotations by ascending
    // confidence (review the least certain first), then the rest; ties keep input order.
    items.sort_by(|a, b| {
        let key = |it: &Item| match it.str("route") {
            _ if it.is_audit() => (0, it.f64("priority").unwrap_or(f64::MAX)),
            Some("human") => (0, it.f64("priority").unwrap_or(f64::MAX)),
            Some("auto") | Some("duplicate") => (1, it.f64("confidence").unwrap_or(0.0)),
            _ => (2, 0.0),
        };
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    Ok((items_path, names, items))
}

/// The carried columns of items.parquet (everything labelwise did not write itself).
fn carried_columns(names: &[String]) -> Vec<&String> {
    names
        .iter()
        .filter(|n| !OWN_COLUMNS.contains(&n.as_str()))
        .collect()
}

/// The `model_version` predictions carry: `params.model_version`, else `labelwise-VERSION`.
fn model_version_of(params: &ExportParams) -> String {
    params
        .model_version
        .clone()
        .unwrap_or_else(|| format!("labelwise-{}", env!("CARGO_PKG_VERSION")))
}

/// The Label Studio tasks `export --format label-studio` writes, in the same order, for callers
/// that send them elsewhere (`push label-studio`) rather than to a file.
pub fn label_studio_tasks(dir: &Path, params: &ExportParams) -> Result<Vec<Value>> {
    let (_, names, items) = export_items(dir, params)?;
    let carried = carried_columns(&names);
    let model_version = model_version_of(params);
    Ok(items
        .iter()
        .map(|it| label_studio_task(it, &carried, params, &model_version))
        .collect())
}

/// Runs `export`.
/// Writes the run in `dir` (its items.parquet) for a labeling tool; returns the file written
/// and how many items it holds.
pub fn export(
    dir: &Path,
    output: Option<&Path>,
    params: &ExportParams,
) -> Result<(PathBuf, usize)> {
    let args = params;
    let (items_path, names, items) = export_items(dir, params)?;
    let carried = carried_columns(&names);
    let text_col = match &args.text_col {
        Some(c) => {
            if !names.contains(c) {
                return Err(Error::input(&items_path, Some(c), None, "missing column"));
            }
            c.clone()
        }
        None if names.iter().any(|n| n == "text") => "text".into(),
        None => "id".into(),
    };
    let model_version = model_version_of(args);
    let out_path = output
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(args.format.default_file()));

    write_atomic(&out_path, |w| {
        let io = |e| Error::io(&out_path, e);
        match args.format {
            Format::LabelStudio => {
                let tasks: Vec<Value> = items
                    .iter()
                    .map(|it| label_studio_task(it, &carried, args, &model_version))
                    .collect();
                serde_json::to_writer_pretty(&mut *w, &tasks)?;
                w.write_all(b"\n").map_err(io)?;
            }
            Format::Sagemaker | Format::Prodigy | Format::Jsonl => {
                let classes: BTreeMap<&str, usize> = {
                    let mut names: Vec<&str> = items.iter().filter_map(Item::label).collect();
                    names.sort_unstable();
                    names.dedup();
                    names.into_iter().enumerate().map(|(i, n)| (n, i)).collect()
                };
                for it in &items {
                    let line = match args.format {
                        Format::Sagemaker => sagemaker_line(it, &text_col, &classes, args),
                        Format::Prodigy => prodigy_line(it, &text_col),
                        _ => Value::Object(it.cols.clone()),
                    };
                    let Some(line) = line_or_skip(line) else {
                        continue;
                    };
                    serde_json::to_writer(&mut *w, &line)?;
                    w.write_all(b"\n").map_err(io)?;
                }
            }
            Format::Csv => {
                let rows = items.iter().map(|it| {
                    names.iter().map(|n| match it.cols.get(n) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    })
                });
                crate::output::csv::write_csv(&mut *w, &out_path, &names, rows)?;
            }
        }
        Ok(())
    })?;
    Ok((out_path, items.len()))
}

fn line_or_skip(v: Value) -> Option<Value> {
    (!v.is_null()).then_some(v)
}

/// A Label Studio task: `data` = carried columns (+ our id), `predictions` = the model's label,
/// `annotations` = the human label of a `labeled` item.
fn label_studio_task(
    it: &Item,
    carried: &[&String],
    args: &ExportParams,
    model_version: &str,
) -> Value {
    let mut data = Map::new();
    for c in carried {
        data.insert(
            (*c).clone(),
            it.cols.get(*c).cloned().unwrap_or(Value::Null),
        );
    }
    data.insert(
        "lw_id".into(),
        it.cols.get("id").cloned().unwrap_or(Value::Null),
    );
    if let Some(r) = it.str("route") {
        data.insert("lw_route".into(), r.into());
    }
    if let Some(p) = it.cols.get("priority").filter(|v| !v.is_null()) {
        data.insert("lw_priority".into(), p.clone());
    }
    if it.is_audit() {
        // The prediction below is the pre-annotation the annotator confirms or corrects.
        data.insert("lw_audit".into(), true.into());
    }
    let mut task = json!({ "data": data });
    let id = it.cols.get("id").map(value_text).unwrap_or_default();
    let choice = |result_id: String, label: &str| {
        json!({
            "id": result_id,
            "from_name": args.from_name,
            "to_name": args.to_name,
            "type": "choices",
            "value": { "choices": [label] }
        })
    };
    if let Some(label) = it.str("predicted_label") {
        task["predictions"] = json!([{
            "model_version": model_version,
            "score": it.f64("confidence").unwrap_or(0.0),
            "result": [choice(format!("lw-{id}"), label)]
        }]);
    }
    // A label a human already gave is an annotation, not a guess: without it Label Studio would
    // show the item as unlabeled and queue it for labeling again.
    if it.str("route") == Some("labeled") {
        if let Some(label) = it.str("label") {
            task["annotations"] = json!([{
                "result": [choice(format!("lw-{id}-label"), label)]
            }]);
        }
    }
    task
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A Ground Truth output-manifest line; items without a label are skipped.
fn sagemaker_line(
    it: &Item,
    text_col: &str,
    classes: &BTreeMap<&str, usize>,
    args: &ExportParams,
) -> Value {
    let Some(label) = it.label() else {
        return Value::Null;
    };
    let human = matches!(it.str("route"), Some("labeled"));
    let confidence = if human {
        1.0
    } else {
        it.f64("confidence").unwrap_or(0.0)
    };
    let attr = &args.attribute_name;
    let mut line = Map::new();
    line.insert(
        "source".into(),
        it.cols.get(text_col).cloned().unwrap_or(Value::Null),
    );
    line.insert(
        "id".into(),
        it.cols.get("id").cloned().unwrap_or(Value::Null),
    );
    line.insert(attr.clone(), classes[label].into());
    line.insert(
        format!("{attr}-metadata"),
        json!({
            "class-name": label,
            "confidence": confidence,
            "type": "groundtruth/text-classification",
            "job-name": "labelwise",
            "human-annotated": if human { "yes" } else { "no" },
        }),
    );
    Value::Object(line)
}

/// A Prodigy task: known labels are `accept`ed answers, human items are open tasks.
fn prodigy_line(it: &Item, text_col: &str) -> Value {
    let mut line = Map::new();
    line.insert(
        "text".into(),
        it.cols
            .get(text_col)
            .map(|v| Value::String(value_text(v)))
            .unwrap_or(Value::Null),
    );
    if let Some(label) = it.label() {
        line.insert("label".into(), label.into());
    }
    if let Some(c) = it.f64("confidence") {
        line.insert("score".into(), c.into());
    }
    if let Some(p) = it.cols.get("priority").filter(|v| !v.is_null()) {
        line.insert("priority".into(), p.clone());
    }
    let mut meta = Map::new();
    meta.insert(
        "lw_id".into(),
        it.cols.get("id").cloned().unwrap_or(Value::Null),
    );
    if it.is_audit() {
        // A verification: `label` is the prediction to accept or reject, never pre-answered.
        meta.insert("lw_audit".into(), true.into());
    }
    if let Some(r) = it.str("route") {
        meta.insert("route".into(), r.into());
        if r != "human" && !it.is_audit() {
            line.insert("answer".into(), "accept".into());
        }
    }
    line.insert("meta".into(), Value::Object(meta));
    Value::Object(line)
}
