//! Rules whose votes are given per item rather than by a condition: computed outside the
//! library (a Python function over the carried columns, another tool's output) and handed in
//! as one label or none per item. They join the rules file's rules in one [`RuleSet`], so the
//! analysis, the round and the certificate treat them exactly as file rules.
//!
//! The command line reads them from a votes file (`--rule-votes FILE`: CSV or Parquet with
//! `id,rule,label`, one row per vote, absent = abstain); the Python package evaluates its
//! functions through a [`VoteSource`].

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{RuleSet, RuleVotes};
use crate::data::dataset::{batch_strings, Dataset};
use crate::error::{Error, Result};

/// One rule's votes on every item of a pool, as labels interned in `labels`.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenRule {
    /// The rule's name (letters, digits, `_`, `-`, `.`), unique among the run's rules.
    pub name: String,
    /// Where the votes came from (named in errors and summary.json).
    pub source: PathBuf,
    /// The labels it votes, in first-seen order.
    pub labels: Vec<String>,
    /// Per item (pool order): index into `labels`, `None` = abstain.
    pub votes: Vec<Option<u32>>,
}

impl GivenRule {
    /// A rule from one label (or none) per item, in pool order.
    pub fn from_labels<'a>(
        name: &str,
        source: &Path,
        labels: impl IntoIterator<Item = Option<&'a str>>,
    ) -> GivenRule {
        let mut rule = GivenRule::empty(name, source, 0);
        for l in labels {
            let v = l.map(|l| rule.intern(l));
            rule.votes.push(v);
        }
        rule
    }

    /// A rule abstaining on all `items`.
    fn empty(name: &str, source: &Path, items: usize) -> GivenRule {
        GivenRule {
            name: name.to_string(),
            source: source.to_path_buf(),
            labels: Vec::new(),
            votes: vec![None; items],
        }
    }

    /// `label`'s index in `labels`, added when new.
    fn intern(&mut self, label: &str) -> u32 {
        match self.labels.iter().position(|l| l == label) {
            Some(i) => i as u32,
            None => {
                self.labels.push(label.to_string());
                (self.labels.len() - 1) as u32
            }
        }
    }

    /// An input error naming the source and the rule.
    pub fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::input(
            &self.source,
            None,
            None,
            format!("rule '{}': {message}", self.name),
        )
    }

    /// Refuses a bad name, votes not covering the `items` of the pool, an empty label.
    pub fn check(&self, items: usize) -> Result<()> {
        super::file::check_name(&self.name).map_err(|m| self.error(m))?;
        if self.votes.len() != items {
            return Err(self.error(format!(
                "{} votes for a pool of {items} items",
                self.votes.len()
            )));
        }
        if self.labels.iter().any(String::is_empty) {
            return Err(self.error("votes an empty label (abstain instead)"));
        }
        Ok(())
    }
}

/// Something that evaluates rules on a loaded pool (the Python package's functions): called
/// once, after the pool is loaded and before the round.
pub trait VoteSource: Sync {
    /// One [`GivenRule`] per rule, votes in `data`'s item order.
    fn rules(&self, data: &Dataset) -> Result<Vec<GivenRule>>;
}

/// Every way rules reach a run: a rules file, a votes file, rules evaluated by the caller.
#[derive(Clone, Copy, Default)]
pub struct RuleInputs<'a> {
    /// The rules file (`--rules`).
    pub file: Option<&'a Path>,
    /// A votes file (`--rule-votes`): `id,rule,label`.
    pub votes_file: Option<&'a Path>,
    /// Rules the caller evaluates on the pool.
    pub given: Option<&'a dyn VoteSource>,
}

impl<'a> RuleInputs<'a> {
    /// Whether any rules are given.
    pub fn any(&self) -> bool {
        self.file.is_some() || self.votes_file.is_some() || self.given.is_some()
    }

    /// What can be checked before the pool is loaded: the rules file parses.
    pub fn check_early(&self) -> Result<()> {
        if let Some(path) = self.file {
            RuleSet::read_specs(path)?;
        }
        Ok(())
    }

    /// Builds the rule set on `data`, evaluates it and refuses a rule that never fires.
    pub fn load_and_vote(&self, data: &Dataset) -> Result<(RuleSet, RuleVotes)> {
        let specs = self.file.map(RuleSet::read_specs).transpose()?;
        let taken: Vec<&str> = specs.iter().flatten().map(|s| s.name.as_str()).collect();
        let mut given = match self.votes_file {
            Some(path) => read_votes_file(path, data, &taken)?,
            None => Vec::new(),
        };
        if let Some(source) = self.given {
            given.extend(source.rules(data)?);
        }
        let file = self.file.zip(specs.as_deref());
        let rules = RuleSet::build(file, given, data)?;
        let votes = rules.votes(data);
        rules.check_fires(&votes)?;
        Ok((rules, votes))
    }
}

/// Reads a votes file (CSV, or Parquet by its `.parquet` extension) with columns
/// `id,rule,label` into one rule per distinct `rule`, in first-seen order. An unknown id, an
/// empty id, rule or label, a rule named as one in `taken` (the rules file's), or a second
/// vote of one rule on one item is an input error naming the file, the column and the row
/// (0-based, data rows).
pub fn read_votes_file(path: &Path, data: &Dataset, taken: &[&str]) -> Result<Vec<GivenRule>> {
    let rows = if path.extension().is_some_and(|e| e == "parquet") {
        parquet_rows(path)?
    } else {
        csv_rows(path)?
    };
    let row_of: HashMap<&str, usize> = data
        .ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut rules: Vec<GivenRule> = Vec::new();
    for (row, [id, rule, label]) in rows.into_iter().enumerate() {
        let at = |col: &str, msg: String| Error::input(path, Some(col), Some(row as u64), msg);
        let item = *row_of
            .get(id.as_str())
            .ok_or_else(|| at("id", format!("unknown id '{id}' (not in the pool)")))?;
        if rule.is_empty() {
            return Err(at("rule", "empty rule name".into()));
        }
        if label.is_empty() {
            return Err(at(
                "label",
                "empty label (leave the row out to abstain)".into(),
            ));
        }
        super::file::check_name(&rule).map_err(|m| at("rule", format!("'{rule}': {m}")))?;
        if taken.contains(&rule.as_str()) {
            let msg = format!("rule '{rule}' is also a rule of the rules file (names are unique)");
            return Err(at("rule", msg));
        }
        let r = match rules.iter().position(|r| r.name == rule) {
            Some(r) => r,
            None => {
                rules.push(GivenRule::empty(&rule, path, data.len()));
                rules.len() - 1
            }
        };
        let given = &mut rules[r];
        if given.votes[item].is_some() {
            return Err(at("id", format!("rule '{rule}' votes twice on id '{id}'")));
        }
        given.votes[item] = Some(given.intern(&label));
    }
    if rules.is_empty() {
        return Err(Error::input(path, None, None, "holds no votes"));
    }
    Ok(rules)
}

/// The `id,rule,label` columns of a CSV votes file (a missing column is an error).
fn csv_rows(path: &Path) -> Result<Vec<[String; 3]>> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| Error::input(path, None, None, format!("cannot read: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| Error::input(path, None, None, format!("cannot read the header: {e}")))?
        .clone();
    let at = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            Error::input(
                path,
                Some(name),
                None,
                "missing column (a votes file has id,rule,label)",
            )
        })
    };
    let cols = [at("id")?, at("rule")?, at("label")?];
    let mut rows = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            Error::input(path, None, Some(row as u64), format!("unreadable CSV: {e}"))
        })?;
        rows.push(cols.map(|c| record.get(c).unwrap_or("").to_string()));
    }
    Ok(rows)
}

/// The `id,rule,label` columns of a Parquet votes file (ids may be integers; nulls are empty).
fn parquet_rows(path: &Path) -> Result<Vec<[String; 3]>> {
    let file = File::open(path).map_err(|e| Error::input(path, None, None, e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| {
            Error::input(
                path,
                None,
                None,
                format!("not a readable Parquet file ({e})"),
            )
        })?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| {
            let row = Some(rows.len() as u64);
            Error::input(path, None, row, format!("unreadable Parquet data: {e}"))
        })?;
        let [id, rule, label] = ["id", "rule", "label"].map(|c| column(path, &batch, c));
        let (id, rule, label) = (id?, rule?, label?);
        for ((id, rule), label) in id.into_iter().zip(rule).zip(label) {
            rows.push([id, rule, label].map(Option::unwrap_or_default));
        }
    }
    Ok(rows)
}

fn column(path: &Path, batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    batch_strings(
        path,
        batch,
        name,
        "missing column (a votes file has id,rule,label)",
    )
}
