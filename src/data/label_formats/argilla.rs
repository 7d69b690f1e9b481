//! Argilla 2.x records as `dataset.records.to_list(flatten=True)` writes them.
//!
//! Shape followed (argilla-io/argilla, `argilla/src/argilla/records/_io/_generic.py`,
//! `GenericIO._record_to_dict`, and `records/_resource.py`, `Record.to_dict`): `id` (the record
//! id the user gave, else a generated UUID), `_server_id`, the fields, the metadata and the
//! vectors merged into the top level, then per question `<question>.responses` (one value per
//! response), `<question>.responses.users` (user ids, as strings) and
//! `<question>.responses.status` (`submitted`, `draft`, `discarded`), and per suggestion
//! `<question>.suggestion`, `.suggestion.score`, `.suggestion.agent` (never read: a suggestion
//! is a model's). `to_list` gives every record every key, `None` where absent. Only
//! `submitted` responses are labels.

use std::path::Path;

use serde_json::{Map, Value};

use super::{
    annotator_text, json_kind, pick_id_path, Annotations, Collector, Format, Locate, ReadOptions,
};
use crate::error::{Error, Result};

/// `metadata.lw_id` is flattened to `lw_id`; the nested path is kept for hand-made files.
const IDS: &[&[&str]] = &[
    &["lw_id"],
    &["metadata", "lw_id"],
    &["labelwise_id"],
    &["metadata", "labelwise_id"],
    &["id"],
];

pub(super) fn nested_error(path: &Path) -> Error {
    Error::input(
        path,
        None,
        None,
        "Argilla records exported without flatten=True carry no response status (submitted or \
         draft): export them with records.to_list(flatten=True)",
    )
}

fn is_label_like(records: &[Map<String, Value>], key: &str) -> bool {
    records.iter().all(|r| match r.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.iter().all(|v| v.is_string() || v.is_null()),
        Some(_) => false,
    })
}

/// Reads flattened records: each submitted response to the label question is one annotator's
/// label for the record's item.
pub(super) fn read(
    path: &Path,
    records: &[Map<String, Value>],
    opts: &ReadOptions,
    at: Locate,
) -> Result<Annotations> {
    let question = pick_question(path, records, opts)?;
    let id_path = pick_id_path(path, records, IDS)?;
    let id_name = id_path.join(".");
    let key = format!("{question}.responses");
    let users_key = format!("{key}.users");
    let status_key = format!("{key}.status");

    let mut c = Collector::default();
    for (i, rec) in records.iter().enumerate() {
        let id = at.item_id(path, i, rec, id_path, &id_name)?;
        if let Some(id) = &id {
            c.item(id);
        }
        let responses = match rec.get(&key) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(at.err(
                    path,
                    i,
                    Some(&key),
                    format!("{}, expected a list of responses", json_kind(other)),
                ))
            }
        };
        let status = match rec.get(&status_key) {
            Some(Value::Array(s)) if s.len() == responses.len() => s,
            _ => {
                return Err(at.err(
                    path,
                    i,
                    Some(&status_key),
                    format!(
                        "missing or not one per response: cannot tell submitted responses from \
                         drafts ({} responses)",
                        responses.len()
                    ),
                ))
            }
        };
        let users = rec.get(&users_key).and_then(Value::as_array);
        for (k, value) in responses.iter().enumerate() {
            if status[k].as_str() != Some("submitted") {
                c.skipped.not_submitted += 1;
                continue;
            }
            let label = match value {
                Value::String(s) => s.clone(),
                other => {
                    return Err(at.err(
                        path,
                        i,
                        Some(&key),
                        format!(
                            "response {k} is {}, expected a string (the answer of a label \
                             question)",
                            json_kind(other)
                        ),
                    ))
                }
            };
            let Some(id) = &id else {
                return Err(at.err(path, i, None, format!("labeled, but no {id_name}")));
            };
            let annotator = annotator_text(users.and_then(|u| u.get(k)));
            c.vote(id, annotator, label);
        }
    }
    Ok(c.finish(
        path,
        Format::ArgillaRecords,
        id_name,
        Some(question),
        records.len() as u64,
    ))
}

/// The question whose responses are the labels: the one named, else the only one answered, else
/// the only one whose responses look like labels (strings); otherwise an error naming them.
fn pick_question(
    path: &Path,
    records: &[Map<String, Value>],
    opts: &ReadOptions,
) -> Result<String> {
    let mut questions = Vec::<String>::new();
    for r in records {
        for k in r.keys() {
            if let Some(q) = k.strip_suffix(".responses") {
                if !questions.iter().any(|x| x == q) {
                    questions.push(q.to_string());
                }
            }
        }
    }
    match &opts.control {
        Some(name) if questions.contains(name) => Ok(name.clone()),
        Some(name) => Err(Error::input(
            path,
            None,
            None,
            format!(
                "no responses to a question '{name}' (questions answered: {})",
                if questions.is_empty() {
                    "none".into()
                } else {
                    questions.join(", ")
                }
            ),
        )),
        None => {
            let labels: Vec<&String> = questions
                .iter()
                .filter(|q| is_label_like(records, &format!("{q}.responses")))
                .collect();
            match (questions.len(), labels.as_slice()) {
                (1, _) => Ok(questions[0].clone()),
                (0, _) => Err(Error::input(
                    path,
                    None,
                    None,
                    "no '<question>.responses' keys: no question was answered",
                )),
                (_, [one]) => Ok((*one).clone()),
                _ => Err(Error::input(
                    path,
                    None,
                    None,
                    format!(
                        "several questions ({}): choose one as the label control",
                        questions.join(", ")
                    ),
                )),
            }
        }
    }
}
