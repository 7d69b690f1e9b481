//! Prodigy `db-out` JSON Lines.
//!
//! Shape followed (prodi.gy/docs/api-interfaces: "Annotated tasks contain an additional
//! `answer` key mapping to either `accept`, `reject` or `ignore`", the format `db-out`
//! exports; the `choice` interface's `options[{id, text}]` and `accept` list of selected option
//! ids, which `textcat.manual` fills with the label names (explosion/prodigy-recipes,
//! `textcat/textcat_manual.py`); the binary `classification` interface's `label`): each line is
//! the task plus `answer`, `_input_hash`, `_task_hash`, `_annotator_id`, `_session_id`,
//! `_timestamp`. A choice task accepted with one option is that label; a binary task accepted is
//! its `label`, rejected is no label; `ignore` is no label.

use std::path::Path;

use serde_json::{Map, Value};

use super::{
    annotator_text, id_text, json_kind, pick_id_path, Annotations, Collector, Format, Locate,
};
use crate::error::Result;

/// Our id travels in `meta` (`export` wrote `meta.id` before `meta.lw_id`); a top-level `id` is
/// the source data's own, Prodigy never sets one.
const IDS: &[&[&str]] = &[
    &["meta", "lw_id"],
    &["meta", "labelwise_id"],
    &["meta", "id"],
    &["lw_id"],
    &["id"],
];

/// Reads `db-out` lines: each accepted task is one annotator's label for its item.
pub(super) fn read(path: &Path, lines: &[Map<String, Value>], at: Locate) -> Result<Annotations> {
    let id_path = pick_id_path(path, lines, IDS)?;
    let id_name = id_path.join(".");
    let mut c = Collector::default();
    for (i, task) in lines.iter().enumerate() {
        let id = at.item_id(path, i, task, id_path, &id_name)?;
        if let Some(id) = &id {
            c.item(id);
        }
        match answer(path, i, task, at)? {
            "accept" => {}
            "reject" => {
                c.skipped.rejected += 1;
                continue;
            }
            // "ignore", the only other answer `answer` lets through
            _ => {
                c.skipped.ignored += 1;
                continue;
            }
        }
        let label = match task.get("accept") {
            Some(accepted) => accepted_option(path, i, accepted, at)?,
            None => Some(binary_label(path, i, task, at)?),
        };
        let Some(label) = label else {
            c.skipped.no_label += 1;
            continue;
        };
        let Some(id) = &id else {
            return Err(at.err(path, i, None, format!("labeled, but no {id_name}")));
        };
        let annotator =
            annotator_text(task.get("_annotator_id")).or(annotator_text(task.get("_session_id")));
        c.vote(id, annotator, label);
    }
    Ok(c.finish(
        path,
        Format::ProdigyJsonl,
        id_name,
        None,
        lines.len() as u64,
    ))
}

/// The task's `answer`, checked to be `accept`, `reject` or `ignore`: only an accepted task
/// holds a label, and anything else means the line is not an annotated task.
fn answer<'a>(path: &Path, i: usize, task: &'a Map<String, Value>, at: Locate) -> Result<&'a str> {
    let answer = task.get("answer").and_then(Value::as_str).ok_or_else(|| {
        at.err(
            path,
            i,
            Some("answer"),
            "missing: not an annotated task (db-out lines have accept, reject or ignore)",
        )
    })?;
    match answer {
        "accept" | "reject" | "ignore" => Ok(answer),
        other => Err(at.err(
            path,
            i,
            Some("answer"),
            format!("'{other}', expected accept, reject or ignore"),
        )),
    }
}

/// The label of an accepted choice task: its one accepted option id (`None` when none was
/// accepted); several accepted options are an error, labelwise takes one label per item.
fn accepted_option(path: &Path, i: usize, accepted: &Value, at: Locate) -> Result<Option<String>> {
    let Value::Array(options) = accepted else {
        return Err(at.err(
            path,
            i,
            Some("accept"),
            format!("{}, expected a list of option ids", json_kind(accepted)),
        ));
    };
    let mut ids = Vec::with_capacity(options.len());
    for o in options {
        // Option ids are strings (textcat.manual: the label) or integers in custom
        // recipes; an integer id is its digits.
        ids.push(id_text(o).ok_or_else(|| {
            at.err(
                path,
                i,
                Some("accept"),
                format!("option id is {}, expected a string", json_kind(o)),
            )
        })?);
    }
    match ids.len() {
        0 => Ok(None),
        1 => Ok(ids.pop()),
        _ => Err(at.err(
            path,
            i,
            Some("accept"),
            format!(
                "several options accepted ({}): labelwise takes one label per item",
                ids.join(", ")
            ),
        )),
    }
}

/// The label of an accepted binary task (no `accept` list): its `label`; a task with neither is
/// not a classification task (e.g. NER spans), an error rather than a silent skip.
fn binary_label(path: &Path, i: usize, task: &Map<String, Value>, at: Locate) -> Result<String> {
    match task.get("label") {
        Some(Value::String(l)) => Ok(l.clone()),
        Some(other) => Err(at.err(
            path,
            i,
            Some("label"),
            format!("{}, expected a string", json_kind(other)),
        )),
        None => Err(at.err(
            path,
            i,
            None,
            "accepted task has neither 'accept' (choice) nor 'label' (binary): not a \
             classification task",
        )),
    }
}
