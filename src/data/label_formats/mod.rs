//! Labels back from the labeling tools, read as the tools export them (issue 16, point 2).
//!
//! [`read_annotations`] detects the format from the file's content (never from its extension):
//!
//! | format | recognised by |
//! |---|---|
//! | Label Studio JSON export | a JSON array of tasks with `annotations` (or legacy `completions`) |
//! | Label Studio JSON_MIN | a JSON array of flat objects (data fields at the top level) |
//! | Label Studio CSV / TSV | a delimited file whose header has `annotation_id` |
//! | Argilla v2 `records.to_list(flatten=True)` | JSON records with `<question>.responses` keys |
//! | Prodigy `db-out` | JSON Lines with `answer` |
//! | our own `id,label` | Parquet (by its magic bytes) or any other delimited file |
//!
//! Every format yields the same thing: per item id, each annotator's label ([`Annotations`]).
//! [`Annotations::merge`] then takes the majority label per item and counts agreement; a tie
//! leaves the item unlabeled and is counted, never dropped silently.
//!
//! The item id: labelwise writes `lw_id` into every export (`data.lw_id` in Label Studio tasks,
//! `meta.lw_id` in Prodigy tasks, `metadata.lw_id` in Argilla records, which `flatten=True`
//! moves to the top level). It is preferred wherever it appears; `labelwise_id` (what `export`
//! wrote before `lw_id`) comes next; a plain `id` is used only where it is certainly the item's
//! own id (Label Studio `data.id`, Argilla's record `id`, Prodigy `meta.id`/`id`, our CSV's
//! `id`), never Label Studio's task id. One id field is chosen per file (the most preferred one
//! any record carries), so a file never mixes two kinds of id.
//!
//! [`apply`] puts the merged labels on the pool's label column; the loader calls it for
//! `LoadOptions::labels_file`, so every command that reads a pool reads every format.

mod apply;
mod argilla;
mod label_studio;
mod plain;
mod prodigy;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

pub use apply::{apply, LabelMerge};

/// The first character of a JSON array (a JSON export, or a JSON-encoded cell); a module-level
/// const so that no brace-counting tool sees a bracket inside a function body.
const JSON_ARRAY_OPEN: char = '[';
/// The first character of a JSON object (JSON Lines, or a JSON-encoded cell); see above.
const JSON_OBJECT_OPEN: char = '{';

/// The export formats [`read_annotations`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Label Studio full JSON export (tasks with nested annotations).
    LabelStudioJson,
    /// Label Studio JSON-MIN export (one flat object per task).
    LabelStudioJsonMin,
    /// Label Studio CSV export.
    LabelStudioCsv,
    /// Argilla records export (JSON, responses per record).
    ArgillaRecords,
    /// Prodigy JSONL export (one annotation per line, with `answer`).
    ProdigyJsonl,
    /// Plain two-column CSV of item id and label.
    IdLabelCsv,
    /// Plain two-column Parquet of item id and label.
    IdLabelParquet,
}

impl Format {
    /// The name used in reports and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::LabelStudioJson => "label-studio-json",
            Format::LabelStudioJsonMin => "label-studio-json-min",
            Format::LabelStudioCsv => "label-studio-csv",
            Format::ArgillaRecords => "argilla-records",
            Format::ProdigyJsonl => "prodigy-jsonl",
            Format::IdLabelCsv => "id-label-csv",
            Format::IdLabelParquet => "id-label-parquet",
        }
    }
}

/// How to read a file; the defaults suit an export of tasks labelwise wrote.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The label control to read: Label Studio's `from_name` (the `<Choices name=…>`), Argilla's
    /// question name. `None`: the only one there is, or an error naming the candidates.
    pub control: Option<String>,
    /// Names of data fields (the pool's carried columns): in Label Studio JSON_MIN and CSV
    /// exports data fields and label controls sit side by side, so naming the data fields lets
    /// the reader find the control without `control`.
    pub data_fields: Vec<String>,
}

/// One annotator's label for one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vote {
    /// The annotator as the tool names them (Label Studio user id or email, Argilla user id,
    /// Prodigy `_annotator_id`/`_session_id`); `None` when the format has no annotator.
    pub annotator: Option<String>,
    /// The class this annotator chose.
    pub label: String,
}

/// Every label the file gives one item, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemAnnotations {
    /// Item id as it appears in the embeddings' id column, used for the join.
    pub id: String,
    /// Empty for an item that is in the file but was not labeled (e.g. a task nobody annotated).
    pub votes: Vec<Vote>,
}

/// Annotations left out, by reason; none of them is a label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Label Studio annotations with `was_cancelled` (or legacy `skipped`) set.
    pub cancelled: u64,
    /// Argilla responses whose status is not `submitted` (`draft`, `discarded`, none).
    pub not_submitted: u64,
    /// Prodigy tasks answered `reject` (a binary `reject` means "not this label").
    pub rejected: u64,
    /// Prodigy tasks answered `ignore`.
    pub ignored: u64,
    /// Annotations with no choice for the control (empty choice, empty `accept`, empty cell).
    pub no_label: u64,
    /// Earlier labels replaced by a later one from the same annotator on the same item.
    pub replaced: u64,
}

/// What one labels file says, before merging.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annotations {
    /// The export file these annotations were read from, for messages.
    pub file: PathBuf,
    /// The export format it was detected or declared as.
    pub format: Format,
    /// Where the item ids were read, e.g. `data.lw_id`, `meta.lw_id`, `id`.
    pub id_field: String,
    /// The label control or question read; `None` for formats without one (Prodigy, `id,label`).
    pub control: Option<String>,
    /// Records in the file: tasks, rows or lines.
    pub records: u64,
    /// Items in first-seen order, each id once.
    pub items: Vec<ItemAnnotations>,
    /// Records dropped while reading, by reason, so nothing is lost silently.
    pub skipped: Skipped,
}

/// The merged label of one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergedLabel {
    /// Item id to join with the embeddings.
    pub id: String,
    /// The majority label; `None` for a tie or an item without votes.
    pub label: Option<String>,
    /// Votes the item got.
    pub votes: u32,
    /// Votes for the majority label (for a tie: for each tied label).
    pub majority_votes: u32,
}

/// What merging did, for summary.json `label_merge` and the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeReport {
    /// The export file that was merged.
    pub file: PathBuf,
    /// The export format it was read as.
    pub format: Format,
    /// Field of the export used as the item id.
    pub id_field: String,
    /// Annotation control (Label Studio `from_name`) the labels were taken from, if the export names one.
    pub control: Option<String>,
    /// Records read from the export, before any were skipped.
    pub records: u64,
    /// Labels read (after skipping and replacing).
    pub votes: u64,
    /// Distinct item ids in the file.
    pub items: u64,
    /// Items given a label by the merge.
    pub labeled: u64,
    /// Items in the file without any vote.
    pub without_votes: u64,
    /// Items with exactly one vote.
    pub single_annotator: u64,
    /// Items with two votes or more; each is exactly one of the next three.
    pub multi_annotator: u64,
    /// Multi-annotator items where every vote agreed.
    pub unanimous: u64,
    /// Multi-annotator items settled by a strict majority over dissenting votes.
    pub majority_with_disagreement: u64,
    /// Items whose top labels tie: left unlabeled.
    pub ties: u64,
    /// Up to five tied item ids.
    pub tie_examples: Vec<String>,
    /// Records dropped while reading, by reason.
    pub skipped: Skipped,
}

/// The merge: one entry per item of [`Annotations::items`], same order, and its report.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// One resolved label per item.
    pub labels: Vec<MergedLabel>,
    /// What the merge did, shown by `inspect` and the report.
    pub report: MergeReport,
}

impl Annotations {
    /// The item ids, for checking them against the pool before anything else.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|it| it.id.as_str())
    }

    /// Labels read, over all items.
    pub fn vote_count(&self) -> u64 {
        self.items.iter().map(|it| it.votes.len() as u64).sum()
    }

    /// Majority label per item; ties stay unlabeled and are counted.
    pub fn merge(&self) -> Merged {
        let mut report = MergeReport {
            file: self.file.clone(),
            format: self.format,
            id_field: self.id_field.clone(),
            control: self.control.clone(),
            records: self.records,
            votes: self.vote_count(),
            items: self.items.len() as u64,
            labeled: 0,
            without_votes: 0,
            single_annotator: 0,
            multi_annotator: 0,
            unanimous: 0,
            majority_with_disagreement: 0,
            ties: 0,
            tie_examples: Vec::new(),
            skipped: self.skipped.clone(),
        };
        let labels = self
            .items
            .iter()
            .map(|it| {
                let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
                for v in &it.votes {
                    *counts.entry(v.label.as_str()).or_default() += 1;
                }
                let votes = it.votes.len() as u32;
                let top = counts.values().copied().max().unwrap_or(0);
                let mut at_top = counts.iter().filter(|(_, &c)| c == top);
                let label = match (at_top.next(), at_top.next()) {
                    (Some((l, _)), None) => Some(l.to_string()),
                    _ => None,
                };
                match votes {
                    0 => report.without_votes += 1,
                    1 => report.single_annotator += 1,
                    _ => {
                        report.multi_annotator += 1;
                        if label.is_none() {
                            report.ties += 1;
                            if report.tie_examples.len() < 5 {
                                report.tie_examples.push(it.id.clone());
                            }
                        } else if counts.len() == 1 {
                            report.unanimous += 1;
                        } else {
                            report.majority_with_disagreement += 1;
                        }
                    }
                }
                if label.is_some() {
                    report.labeled += 1;
                }
                MergedLabel {
                    id: it.id.clone(),
                    label,
                    votes,
                    majority_votes: top,
                }
            })
            .collect();
        Merged { labels, report }
    }
}

/// Reads a labels file in any supported format, with default options.
pub fn read_annotations(path: &Path) -> Result<Annotations> {
    read_annotations_with(path, &ReadOptions::default())
}

/// Reads a labels file in any supported format.
pub fn read_annotations_with(path: &Path, opts: &ReadOptions) -> Result<Annotations> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, None, None, e.to_string()))?;
    if bytes.starts_with(b"PAR1") {
        return plain::read_parquet(path);
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| Error::input(path, None, None, format!("not UTF-8 text: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match text.trim_start().chars().next() {
        None => Err(Error::input(path, None, None, "empty file")),
        Some(JSON_ARRAY_OPEN) => read_json_array(path, text, opts),
        Some(JSON_OBJECT_OPEN) => read_json_lines(path, text, opts),
        Some(_) => read_delimited(path, text, opts),
    }
}

fn read_json_array(path: &Path, text: &str, opts: &ReadOptions) -> Result<Annotations> {
    let values: Vec<Value> = serde_json::from_str(text).map_err(|e| json_error(path, &e))?;
    let records = objects(path, values, Locate::Index)?;
    let Some(first) = records.first() else {
        return Err(Error::input(
            path,
            None,
            None,
            "no records (empty JSON array)",
        ));
    };
    match classify(first) {
        Kind::LabelStudioTasks => label_studio::read_tasks(path, &records, opts),
        Kind::Argilla => argilla::read(path, &records, opts, Locate::Index),
        Kind::ArgillaNested => Err(argilla::nested_error(path)),
        Kind::Prodigy => prodigy::read(path, &records, Locate::Index),
        Kind::Flat => label_studio::read_json_min(path, records, opts),
    }
}

fn read_json_lines(path: &Path, text: &str, opts: &ReadOptions) -> Result<Annotations> {
    let mut values = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) => values.push((n, v)),
            // A single pretty-printed object is not JSON Lines: read it as one record.
            Err(_) if values.is_empty() => {
                let v: Value = serde_json::from_str(text).map_err(|e| json_error(path, &e))?;
                values.push((0, v));
                break;
            }
            Err(e) => {
                return Err(Error::input(
                    path,
                    None,
                    None,
                    format!("line {}: malformed JSON ({e})", n + 1),
                ))
            }
        }
    }
    let lines: Vec<usize> = values.iter().map(|(n, _)| *n).collect();
    let records = objects(
        path,
        values.into_iter().map(|(_, v)| v).collect(),
        Locate::Lines(&lines),
    )?;
    let first = &records[0];
    match classify(first) {
        Kind::Prodigy => prodigy::read(path, &records, Locate::Lines(&lines)),
        Kind::Argilla => argilla::read(path, &records, opts, Locate::Lines(&lines)),
        Kind::ArgillaNested => Err(argilla::nested_error(path)),
        Kind::LabelStudioTasks => label_studio::read_tasks(path, &records, opts),
        Kind::Flat => Err(Error::input(
            path,
            None,
            None,
            "line 1: JSON object of no known export (Prodigy db-out lines have 'answer', Argilla \
             records '<question>.responses', Label Studio tasks 'annotations')",
        )),
    }
}

fn read_delimited(path: &Path, text: &str, opts: &ReadOptions) -> Result<Annotations> {
    let header = text.lines().next().unwrap_or("");
    // Label Studio's TSV export is its CSV export with tabs.
    let delimiter = if header.matches('\t').count() > header.matches(',').count() {
        b'\t'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::input(path, None, Some(0), format!("bad CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            Error::input(path, None, Some(row as u64), format!("bad CSV record: {e}"))
        })?;
        rows.push(record.iter().map(str::to_string).collect::<Vec<_>>());
    }
    if headers.iter().any(|h| h == "annotation_id") {
        label_studio::read_csv(path, &headers, rows, opts)
    } else {
        plain::read_csv(path, &headers, rows)
    }
}

/// What a JSON record looks like.
enum Kind {
    LabelStudioTasks,
    Argilla,
    ArgillaNested,
    Prodigy,
    Flat,
}

fn classify(first: &serde_json::Map<String, Value>) -> Kind {
    if first.contains_key("annotations") || first.contains_key("completions") {
        Kind::LabelStudioTasks
    } else if first.keys().any(|k| k.ends_with(".responses")) || first.contains_key("_server_id") {
        if first.get("responses").is_some_and(Value::is_object) {
            Kind::ArgillaNested
        } else {
            Kind::Argilla
        }
    } else if first.contains_key("_task_hash")
        || first.contains_key("_input_hash")
        // a data field called `answer` (a Q&A dataset in JSON_MIN) is not Prodigy's
        || matches!(
            first.get("answer").and_then(Value::as_str),
            Some("accept" | "reject" | "ignore")
        )
    {
        Kind::Prodigy
    } else {
        Kind::Flat
    }
}

/// How to name a record in messages: by index in a JSON array, by line in JSON Lines.
#[derive(Clone, Copy)]
pub(crate) enum Locate<'a> {
    Index,
    /// 0-based line of each record.
    Lines(&'a [usize]),
}

impl Locate<'_> {
    /// An error about record `i`, naming its index (as the row) or its 1-based line.
    pub(crate) fn err(
        self,
        path: &Path,
        i: usize,
        column: Option<&str>,
        msg: impl Into<String>,
    ) -> Error {
        match self {
            Locate::Index => Error::input(path, column, Some(i as u64), msg),
            Locate::Lines(lines) => Error::input(
                path,
                column,
                None,
                format!("line {}: {}", lines[i] + 1, msg.into()),
            ),
        }
    }

    /// The item id of record `i` at `id_path` (`id_name` is its dotted name, for the message);
    /// `None` when the record has none, an error when it is neither a string nor an integer.
    pub(crate) fn item_id(
        self,
        path: &Path,
        i: usize,
        record: &serde_json::Map<String, Value>,
        id_path: &[&str],
        id_name: &str,
    ) -> Result<Option<String>> {
        let Some(v) = lookup(record, id_path) else {
            return Ok(None);
        };
        let id = id_text(v).ok_or_else(|| {
            self.err(
                path,
                i,
                Some(id_name),
                format!("id is {}, expected a string or integer", json_kind(v)),
            )
        })?;
        Ok(Some(id))
    }
}

fn objects(
    path: &Path,
    values: Vec<Value>,
    at: Locate,
) -> Result<Vec<serde_json::Map<String, Value>>> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(m) => Ok(m),
            other => Err(at.err(
                path,
                i,
                None,
                format!("expected a JSON object, found {}", json_kind(&other)),
            )),
        })
        .collect()
}

fn json_error(path: &Path, e: &serde_json::Error) -> Error {
    Error::input(path, None, None, format!("malformed JSON ({e})"))
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Follows `path` (e.g. `["data", "lw_id"]`) into a record; JSON null counts as absent.
pub(crate) fn lookup<'a>(
    record: &'a serde_json::Map<String, Value>,
    path: &[&str],
) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = record.get(*first)?;
    for key in rest {
        v = v.as_object()?.get(*key)?;
    }
    (!v.is_null()).then_some(v)
}

/// The most preferred id path that any record carries, or an error naming the paths tried.
pub(crate) fn pick_id_path<'p>(
    path: &Path,
    records: &[serde_json::Map<String, Value>],
    candidates: &[&'p [&'p str]],
) -> Result<&'p [&'p str]> {
    candidates
        .iter()
        .find(|c| records.iter().any(|r| lookup(r, c).is_some()))
        .copied()
        .ok_or_else(|| {
            let tried: Vec<String> = candidates.iter().map(|c| c.join(".")).collect();
            Error::input(
                path,
                None,
                None,
                format!(
                    "no item ids found (looked for {}): not an export of labelwise items?",
                    tried.join(", ")
                ),
            )
        })
}

/// An item id from JSON: a string, or an integer written as digits.
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// An annotator id from JSON: a string, a number, or a user object (email, else id).
pub(crate) fn annotator_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(user) => annotator_text(user.get("email")).or(annotator_text(user.get("id"))),
        _ => None,
    }
}

/// Collects votes per item id, keeping first-seen order.
#[derive(Default)]
pub(crate) struct Collector {
    items: Vec<ItemAnnotations>,
    index: HashMap<String, usize>,
    pub(crate) skipped: Skipped,
}

impl Collector {
    /// Registers an item (so an item without votes is still reported).
    pub(crate) fn item(&mut self, id: &str) -> usize {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        self.items.push(ItemAnnotations {
            id: id.to_string(),
            votes: Vec::new(),
        });
        self.index.insert(id.to_string(), self.items.len() - 1);
        self.items.len() - 1
    }

    /// Adds a vote; a later vote of the same named annotator on the same item replaces theirs.
    pub(crate) fn vote(&mut self, id: &str, annotator: Option<String>, label: String) {
        if label.is_empty() {
            self.skipped.no_label += 1;
            self.item(id);
            return;
        }
        let i = self.item(id);
        let votes = &mut self.items[i].votes;
        if let Some(a) = &annotator {
            if let Some(old) = votes.iter_mut().find(|v| v.annotator.as_deref() == Some(a)) {
                old.label = label;
                self.skipped.replaced += 1;
                return;
            }
        }
        votes.push(Vote { annotator, label });
    }

    pub(crate) fn finish(
        self,
        file: &Path,
        format: Format,
        id_field: String,
        control: Option<String>,
        records: u64,
    ) -> Annotations {
        Annotations {
            file: file.to_path_buf(),
            format,
            id_field,
            control,
            records,
            items: self.items,
            skipped: self.skipped,
        }
    }
}

/// The one label a choice value holds, read the way Label Studio writes it: a string, a list of
/// strings (one chosen), or `{"choices": [...]}`. `Ok(None)`: nothing chosen.
pub(crate) fn single_choice(v: &Value) -> std::result::Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok((!s.is_empty()).then(|| s.clone())),
        Value::Array(items) => {
            let mut labels = Vec::new();
            for item in items {
                if let Some(l) = single_choice(item)? {
                    if !labels.contains(&l) {
                        labels.push(l);
                    }
                }
            }
            match labels.len() {
                0 => Ok(None),
                1 => Ok(labels.pop()),
                _ => Err(format!(
                    "several choices ({}): labelwise takes one label per item",
                    labels.join(", ")
                )),
            }
        }
        Value::Object(m) if m.contains_key("choices") => single_choice(&m["choices"]),
        other => Err(format!(
            "choice value is {}, expected a string",
            json_kind(other)
        )),
    }
}
