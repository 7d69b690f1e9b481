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
    annotator_text, id_text, json_kind, lookup, pick_id_path, Annotations, Collector, Format,
    Locate,
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

pub(super) fn read(path: &Path, lines: &[Map<String, Value>], at: Locate) -> Result<Annotations> {
    let id_path = pick_id_path(path, lines, IDS)?;
    let id_name = id_path.join(".");
    let mut c = Collector::default();
    for (i, task) in lines.iter().enumerate() {
        let id = match lookup(task, id_path) {
            None => None,
            Some(v) => Some(id_text(v).ok_or_else(|| {
                at.err(
                    path,
                    i,
                    Some(&id_name),
                    format!("id is {}, expected a string or integer", json_kind(v)),
                )
            })?),
        };
        if let Some(id) = &id {
            c.item(id);
        }
        let answer = task.get("answer").and_then(Value::as_str).ok_or_else(|| {
            at.err(
                path,
                i,
                Some("answer"),
                "missing: not an annotated task (db-out lines have accept, reject or ignore)",
            )
        })?;
        match answer {
            "accept" => {}
            "reject" => {
                c.skipped.rejected += 1;
                continue;
            }
            "ignore" => {
                c.skipped.ignored += 1;
                continue;
            }
            other => {
                return Err(at.err(
                    path,
                    i,
                    Some("answer"),
                    format!("'{other}', expected accept, reject or ignore"),
                ))
            }
        }
        let label =
            if let Some(accepted) = task.get("accept") {
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
                    0 => {
                        c.skipped.no_label += 1;
                        continue;
                    }
                    1 => ids.pop().expect("one id"),
                    _ => {
                        return Err(at.err(
                            path,
                            i,
                            Some("accept"),
                            format!(
                                "several options accepted ({}): labelwise takes one label per item",
                                ids.join(", ")
                            ),
                        ))
                    }
                }
            } else {
                match task.get("label") {
                    Some(Value::String(l)) => l.clone(),
                    Some(other) => {
                        return Err(at.err(
                            path,
                            i,
                            Some("label"),
                            format!("{}, expected a string", json_kind(other)),
                        ))
                    }
                    None => return Err(at.err(
                        path,
                        i,
                        None,
                        "accepted task has neither 'accept' (choice) nor 'label' (binary): not a \
                         classification task",
                    )),
                }
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
