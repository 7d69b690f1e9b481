//! Label Studio exports: JSON (tasks), JSON_MIN and CSV/TSV.
//!
//! Shapes followed (checked against the tool's own code and docs):
//! - JSON (labelstud.io/guide/export, guide/task_format): a list of tasks; the task's `id` is
//!   Label Studio's, our fields sit under `data`; `annotations[]` (legacy `completions[]`) has
//!   `completed_by` (a user id, or a user object), `was_cancelled`, `result[]`; a choices answer
//!   is `{"from_name": …, "to_name": …, "type": "choices", "value": {"choices": ["x"]}}`.
//!   `predictions` are the model's, never read as labels.
//! - JSON_MIN (label-studio-sdk `converter/converter.py`, `convert_to_json_min` and
//!   `annotation_result_from_task`): one flat object per non-cancelled annotation (and one per
//!   task without annotations); `data` fields at the top level, then `id` = the task id
//!   (overwriting a data field `id`), the control's `from_name` holding `prettify_result`'s value
//!   (one choice: the string; several: `{"choices": [...]}`; several regions: a list), then
//!   `annotator` (user id or email), `annotation_id`, `created_at`, `updated_at`, `lead_time`.
//! - CSV (`converter/exports/csv2.py`): the same keys as columns, sorted, non-string values
//!   JSON-encoded, data fields written after `id` (so a data field `id` overwrites the task id);
//!   TSV is the same with tabs.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};

use super::{
    annotator_text, id_text, json_kind, lookup, pick_id_path, single_choice, Annotations,
    Collector, Format, ReadOptions, JSON_ARRAY_OPEN, JSON_OBJECT_OPEN,
};
use crate::error::{Error, Result};

/// Id fields of a task, most preferred first; the task's own `id` is Label Studio's, not ours.
const TASK_IDS: &[&[&str]] = &[
    &["data", "lw_id"],
    &["data", "labelwise_id"],
    &["data", "id"],
];
/// Id fields of a JSON_MIN/CSV row: there `id` is the task id (or, in CSV, whichever of task id
/// and data `id` was written last), so only our own fields are trusted.
const FLAT_IDS: &[&[&str]] = &[&["lw_id"], &["labelwise_id"]];
/// Keys the converter adds to every JSON_MIN/CSV row.
const FLAT_META: &[&str] = &[
    "id",
    "annotator",
    "annotation_id",
    "created_at",
    "updated_at",
    "lead_time",
    "agreement",
    "history",
];

fn task_err(path: &Path, i: usize, task: &Map<String, Value>, msg: impl Into<String>) -> Error {
    let who = match task.get("id").and_then(id_text) {
        Some(id) => format!("task {id}: "),
        None => String::new(),
    };
    Error::input(path, None, Some(i as u64), format!("{who}{}", msg.into()))
}

fn task_annotations<'a>(
    path: &Path,
    i: usize,
    task: &'a Map<String, Value>,
) -> Result<&'a [Value]> {
    match task.get("annotations").or_else(|| task.get("completions")) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(task_err(
            path,
            i,
            task,
            format!("'annotations' is {}, expected a list", json_kind(other)),
        )),
    }
}

fn cancelled(ann: &Map<String, Value>) -> bool {
    ann.get("was_cancelled").and_then(Value::as_bool) == Some(true)
        || ann.get("skipped").and_then(Value::as_bool) == Some(true)
}

fn results(ann: &Map<String, Value>) -> &[Value] {
    ann.get("result")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A Label Studio JSON export: a list of tasks.
pub(super) fn read_tasks(
    path: &Path,
    tasks: &[Map<String, Value>],
    opts: &ReadOptions,
) -> Result<Annotations> {
    for (i, task) in tasks.iter().enumerate() {
        if !task.get("data").is_some_and(Value::is_object) {
            return Err(task_err(path, i, task, "no 'data' object"));
        }
    }
    let id_path = pick_id_path(path, tasks, TASK_IDS)?;
    let controls = Controls::survey(path, tasks)?;
    let control = controls.pick(path, tasks.len(), opts)?;

    let mut c = Collector::default();
    let id_name = id_path.join(".");
    for (i, task) in tasks.iter().enumerate() {
        let id = match lookup(task, id_path) {
            None => None,
            Some(v) => Some(id_text(v).ok_or_else(|| {
                task_err(
                    path,
                    i,
                    task,
                    format!(
                        "{id_name} is {}, expected a string or integer",
                        json_kind(v)
                    ),
                )
            })?),
        };
        if let Some(id) = &id {
            c.item(id);
        }
        for ann in task_annotations(path, i, task)? {
            let ann = ann.as_object().expect("checked by Controls::survey");
            if cancelled(ann) {
                c.skipped.cancelled += 1;
                continue;
            }
            let Some(label) = annotation_label(path, i, task, ann, &control)? else {
                c.skipped.no_label += 1;
                continue;
            };
            let Some(id) = &id else {
                return Err(task_err(
                    path,
                    i,
                    task,
                    format!("labeled, but no {id_name}"),
                ));
            };
            c.vote(id, annotator_text(ann.get("completed_by")), label);
        }
    }
    Ok(c.finish(
        path,
        Format::LabelStudioJson,
        id_name,
        Some(control),
        tasks.len() as u64,
    ))
}

/// Every control the non-cancelled annotations answer, with its type: the choices control
/// holds the label, the others are only named in messages.
struct Controls {
    /// `from_name`s of `choices` results, first-seen order.
    choices: Vec<String>,
    /// `from_name` and type of every other result.
    others: Vec<(String, String)>,
    /// Non-cancelled annotations seen, for the message when no choices control is found.
    annotation_count: usize,
}

impl Controls {
    /// Surveys every annotation of every task; an annotation that is not an object is an error.
    fn survey(path: &Path, tasks: &[Map<String, Value>]) -> Result<Controls> {
        let mut seen = Controls {
            choices: Vec::new(),
            others: Vec::new(),
            annotation_count: 0,
        };
        for (i, task) in tasks.iter().enumerate() {
            for ann in task_annotations(path, i, task)? {
                let Some(ann) = ann.as_object() else {
                    return Err(task_err(
                        path,
                        i,
                        task,
                        "an annotation is not a JSON object",
                    ));
                };
                if cancelled(ann) {
                    continue;
                }
                seen.annotation_count += 1;
                for r in results(ann) {
                    let from = r.get("from_name").and_then(Value::as_str).unwrap_or("");
                    let kind = r.get("type").and_then(Value::as_str).unwrap_or("");
                    if kind == "choices" {
                        if !seen.choices.iter().any(|c| c == from) {
                            seen.choices.push(from.to_string());
                        }
                    } else if !seen.others.iter().any(|(c, _)| c == from) {
                        seen.others.push((from.to_string(), kind.to_string()));
                    }
                }
            }
        }
        Ok(seen)
    }

    /// The control to read: the one named (it must be a choices control), else the only choices
    /// control; otherwise an error naming what there is.
    fn pick(self, path: &Path, task_count: usize, opts: &ReadOptions) -> Result<String> {
        let Controls {
            mut choices,
            others,
            annotation_count,
        } = self;
        match &opts.control {
            Some(name) if choices.contains(name) => Ok(name.clone()),
            Some(name) => {
                let msg = match others.iter().find(|(c, _)| c == name) {
                    Some((_, kind)) => {
                        format!("control '{name}' is a '{kind}' control, not choices")
                    }
                    None => format!(
                        "no control '{name}' in the annotations (choices controls: {})",
                        list_or_none(&choices)
                    ),
                };
                Err(Error::input(path, None, None, msg))
            }
            None => match choices.len() {
                1 => Ok(choices.swap_remove(0)),
                0 => {
                    let seen: Vec<String> =
                        others.iter().map(|(c, k)| format!("{c} ({k})")).collect();
                    Err(Error::input(
                        path,
                        None,
                        None,
                        format!(
                            "no choices control in {annotation_count} non-cancelled annotations \
                             of {task_count} tasks (other controls: {})",
                            list_or_none(&seen)
                        ),
                    ))
                }
                _ => Err(Error::input(
                    path,
                    None,
                    None,
                    format!(
                        "several choices controls ({}): choose one as the label control",
                        choices.join(", ")
                    ),
                )),
            },
        }
    }
}

/// The one label annotation `ann` of task `i` gives on `control` (`None`: nothing chosen);
/// several distinct choices are an error, labelwise takes one label per item.
fn annotation_label(
    path: &Path,
    i: usize,
    task: &Map<String, Value>,
    ann: &Map<String, Value>,
    control: &str,
) -> Result<Option<String>> {
    let mut labels = Vec::<String>::new();
    for r in results(ann) {
        if r.get("from_name").and_then(Value::as_str) != Some(control)
            || r.get("type").and_then(Value::as_str) != Some("choices")
        {
            continue;
        }
        let Some(chosen) = r.get("value").and_then(|v| v.get("choices")) else {
            return Err(task_err(
                path,
                i,
                task,
                "choices result without value.choices",
            ));
        };
        if !chosen.is_array() {
            return Err(task_err(
                path,
                i,
                task,
                format!("value.choices is {}, expected a list", json_kind(chosen)),
            ));
        }
        if let Some(l) = single_choice(chosen).map_err(|m| task_err(path, i, task, m))? {
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
    }
    match labels.len() {
        0 => Ok(None),
        1 => Ok(labels.pop()),
        _ => Err(task_err(
            path,
            i,
            task,
            format!(
                "one annotation gives several choices ({}): labelwise takes one label per item",
                labels.join(", ")
            ),
        )),
    }
}

/// A Label Studio JSON_MIN export: a list of flat rows.
pub(super) fn read_json_min(
    path: &Path,
    rows: Vec<Map<String, Value>>,
    opts: &ReadOptions,
) -> Result<Annotations> {
    read_flat(path, Format::LabelStudioJsonMin, rows, opts)
}

/// A Label Studio CSV or TSV export. Empty cells are absent values; the control's cells that
/// hold JSON (several choices) are decoded.
pub(super) fn read_csv(
    path: &Path,
    headers: &[String],
    rows: Vec<Vec<String>>,
    opts: &ReadOptions,
) -> Result<Annotations> {
    let rows = rows
        .into_iter()
        .map(|cells| {
            headers
                .iter()
                .zip(cells)
                .map(|(h, cell)| {
                    let v = if cell.is_empty() {
                        Value::Null
                    } else {
                        Value::String(cell)
                    };
                    (h.clone(), v)
                })
                .collect()
        })
        .collect();
    read_flat(path, Format::LabelStudioCsv, rows, opts)
}

/// Reads JSON_MIN or CSV rows: each annotated row is one annotator's label for its item.
fn read_flat(
    path: &Path,
    format: Format,
    rows: Vec<Map<String, Value>>,
    opts: &ReadOptions,
) -> Result<Annotations> {
    let id_path = pick_id_path(path, &rows, FLAT_IDS)?;
    let id_name = id_path.join(".");
    let has_annotation_ids = rows.iter().any(|r| r.contains_key("annotation_id"));
    let annotated = |r: &Map<String, Value>| is_annotated(has_annotation_ids, r);
    let control = flat_control(path, &rows, opts, has_annotation_ids)?;

    let mut c = Collector::default();
    for (i, row) in rows.iter().enumerate() {
        let id = match lookup(row, id_path) {
            None => None,
            Some(v) => Some(id_text(v).ok_or_else(|| {
                Error::input(
                    path,
                    Some(&id_name),
                    Some(i as u64),
                    format!("id is {}, expected a string or integer", json_kind(v)),
                )
            })?),
        };
        if let Some(id) = &id {
            c.item(id);
        }
        if !annotated(row) {
            continue;
        }
        let value = control_value(format, row, &control);
        let label = single_choice(&value)
            .map_err(|m| Error::input(path, Some(&control), Some(i as u64), m))?;
        let Some(label) = label else {
            c.skipped.no_label += 1;
            continue;
        };
        let Some(id) = &id else {
            return Err(Error::input(
                path,
                Some(&id_name),
                Some(i as u64),
                "labeled, but no item id",
            ));
        };
        c.vote(id, annotator_text(row.get("annotator")), label);
    }
    let records = rows.len() as u64;
    Ok(c.finish(path, format, id_name, Some(control), records))
}

/// Whether a row holds an annotation: with an `annotation_id` column, a task nobody annotated
/// still gets a row, with that cell empty.
fn is_annotated(has_annotation_ids: bool, row: &Map<String, Value>) -> bool {
    !has_annotation_ids || lookup(row, &["annotation_id"]).is_some_and(|v| v.as_str() != Some(""))
}

/// The label column (the control's `from_name`): the one named, else the only column that can
/// only be a label; otherwise an error listing the columns.
fn flat_control(
    path: &Path,
    rows: &[Map<String, Value>],
    opts: &ReadOptions,
    has_annotation_ids: bool,
) -> Result<String> {
    let keys: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.keys())
        .map(String::as_str)
        .collect();
    let columns = || keys.iter().copied().collect::<Vec<_>>().join(", ");
    if let Some(name) = &opts.control {
        return if keys.contains(name.as_str()) {
            Ok(name.clone())
        } else {
            Err(Error::input(
                path,
                None,
                None,
                format!(
                    "no column '{name}' (the label control's from_name); columns: {}",
                    columns()
                ),
            ))
        };
    }
    let candidates: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| could_be_label(k, rows, opts, has_annotation_ids))
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(Error::input(
            path,
            None,
            None,
            format!("no label column found (columns: {})", columns()),
        )),
        several => Err(Error::input(
            path,
            None,
            None,
            format!(
                "cannot tell the label column from data columns ({}): name the label control \
                 (its from_name)",
                several.join(", ")
            ),
        )),
    }
}

/// Whether column `k` can be the label control: not a converter or labelwise column, not a
/// named data field, empty in unannotated rows, filled in some annotated row, and holding only
/// what a choices control writes (a string, a list, or `{"choices": [...]}`).
fn could_be_label(
    k: &str,
    rows: &[Map<String, Value>],
    opts: &ReadOptions,
    has_annotation_ids: bool,
) -> bool {
    let annotated = |r: &Map<String, Value>| is_annotated(has_annotation_ids, r);
    !FLAT_META.contains(&k)
        && !k.starts_with("lw_")
        && !k.starts_with("labelwise_")
        && !k.ends_with("_transcript")
        && !opts.data_fields.iter().any(|d| d == k)
        // a value in the row of a task nobody annotated is data, not a label
        && !rows.iter().any(|r| !annotated(r) && lookup(r, &[k]).is_some())
        && rows.iter().filter(|r| annotated(r)).all(|r| {
            matches!(
                r.get(k),
                None | Some(Value::Null | Value::String(_) | Value::Array(_))
            ) || r.get(k).is_some_and(|v| v.get("choices").is_some())
        })
        && rows.iter().any(|r| annotated(r) && lookup(r, &[k]).is_some())
}

/// The row's value for the control, JSON-decoded where a CSV cell holds several choices (CSV
/// writes non-string values as JSON); absent is null.
fn control_value(format: Format, row: &Map<String, Value>, control: &str) -> Value {
    match row.get(control) {
        Some(Value::String(s))
            if format == Format::LabelStudioCsv
                && (s.starts_with(JSON_ARRAY_OPEN) || s.starts_with(JSON_OBJECT_OPEN)) =>
        {
            serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
        }
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
