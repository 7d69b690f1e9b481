//! Labeling rules users write (heuristics, in Snorkel's terms labeling functions): a TOML file
//! of rules, each voting one label where its condition holds and abstaining elsewhere.
//!
//! - [`file`](mod@file): the file format, parsed without the data;
//! - [`condition`]: conditions checked against the pool and evaluated over blocks of rows;
//! - [`votes`]: which rule fired where, and the majority vote;
//! - [`analysis`]: coverage, overlaps, conflicts and empirical accuracy per rule, defined as
//!   Snorkel's `LFAnalysis` defines them.
//!
//! ```no_run
//! # fn main() -> labelwise::Result<()> {
//! # let data: labelwise::data::dataset::Dataset = todo!();
//! use labelwise::rules::RuleSet;
//! let rules = RuleSet::load("rules.toml".as_ref(), &data)?; // checked against the data
//! let votes = rules.votes(&data);                            // per item, per rule: fired or not
//! rules.check_fires(&votes)?;                               // a rule that never fires is an error
//! let majority = votes.majority();                          // per item: Option<class>, counts, tie
//! # Ok(()) }
//! ```

pub mod analysis;
pub mod condition;
pub mod file;
pub mod votes;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use condition::{Block, CompileCtx, Condition};
use file::RuleSpec;
pub use votes::{MajorityVote, RuleVotes};

/// Rows per parallel evaluation task.
const BLOCK_ROWS: usize = 4096;

/// One rule, compiled against a pool.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's name.
    pub name: String,
    /// The label it votes for.
    pub label: String,
    /// `label`'s index in [`RuleSet::classes`].
    pub class: u32,
    /// Where it fires.
    pub condition: Condition,
}

/// The rules of one file, checked against one pool.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// The rules file (named in errors).
    pub file: PathBuf,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// The pool's classes (same indices), then labels only rules name, sorted.
    pub classes: Vec<String>,
}

impl RuleSet {
    /// Reads and parses the rules file at `path` and checks it against `data`: columns exist
    /// and fit their conditions, regexes compile, example ids exist, centroid classes have
    /// labeled items. Any problem is an input error naming the file and the rule.
    pub fn load(path: &Path, data: &Dataset) -> Result<RuleSet> {
        RuleSet::from_specs(path, &RuleSet::read_specs(path)?, data)
    }

    /// Reads and parses the rules file at `path` without the data: what can be checked before
    /// a pool is loaded (the syntax, every rule's name, label and condition shape).
    pub fn read_specs(path: &Path) -> Result<Vec<RuleSpec>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::input(path, None, None, format!("cannot read the rules file: {e}"))
        })?;
        file::parse(&text).map_err(|m| Error::input(path, None, None, m))
    }

    /// Compiles parsed `specs` against `data`; `file` names the source in errors.
    pub fn from_specs(file: &Path, specs: &[RuleSpec], data: &Dataset) -> Result<RuleSet> {
        let mut classes = data.classes.clone();
        let mut new: Vec<&str> = specs
            .iter()
            .map(|s| s.label.as_str())
            .filter(|l| !data.classes.iter().any(|c| c == l))
            .collect();
        new.sort_unstable();
        new.dedup();
        classes.extend(new.into_iter().map(str::to_string));
        let mut ctx = CompileCtx::new(data);
        let rules = specs
            .iter()
            .map(|s| {
                let condition = Condition::compile(&s.when, &mut ctx).map_err(|m| {
                    Error::input(file, None, None, format!("rule '{}': {m}", s.name))
                })?;
                Ok(Rule {
                    name: s.name.clone(),
                    label: s.label.clone(),
                    class: classes.iter().position(|c| *c == s.label).unwrap_or(0) as u32,
                    condition,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RuleSet {
            file: file.to_path_buf(),
            rules,
            classes,
        })
    }

    /// Evaluates every rule on every item of `data` (the pool the set was loaded against), in
    /// parallel over blocks of rows; the result does not depend on the thread count.
    pub fn votes(&self, data: &Dataset) -> RuleVotes {
        let blocks = blocks(data);
        let per_block: Vec<Vec<Vec<bool>>> = blocks
            .par_iter()
            .map(|b| {
                self.rules
                    .iter()
                    .map(|r| {
                        let mut out = vec![false; b.len];
                        r.condition.eval(data, *b, &mut out);
                        out
                    })
                    .collect()
            })
            .collect();
        let mut fired: Vec<Vec<bool>> = (0..self.rules.len())
            .map(|_| Vec::with_capacity(data.len()))
            .collect();
        for block in per_block {
            for (f, part) in fired.iter_mut().zip(block) {
                f.extend_from_slice(&part);
            }
        }
        let rule_class = self.rules.iter().map(|r| r.class).collect();
        RuleVotes::new(self.classes.clone(), rule_class, fired)
    }

    /// Refuses a rule that fired on no item: it can never fire on this data (a misspelt
    /// keyword, an impossible range), so its analysis would be empty.
    pub fn check_fires(&self, votes: &RuleVotes) -> Result<()> {
        let counts = votes.fired_counts();
        match self.rules.iter().zip(&counts).find(|(_, &n)| n == 0) {
            Some((rule, _)) => Err(Error::input(
                &self.file,
                None,
                None,
                format!(
                    "rule '{}': fires on none of the {} items, so it can never vote on this data",
                    rule.name,
                    votes.items()
                ),
            )),
            None => Ok(()),
        }
    }
}

/// Loads the rules at `path` against `data`, evaluates them and refuses a rule that never
/// fires: [`RuleSet::load`], [`RuleSet::votes`] and [`RuleSet::check_fires`] in one call.
pub fn load_and_vote(path: &Path, data: &Dataset) -> Result<(RuleSet, RuleVotes)> {
    let rules = RuleSet::load(path, data)?;
    let votes = rules.votes(data);
    rules.check_fires(&votes)?;
    Ok((rules, votes))
}

/// The pool cut into blocks of at most [`BLOCK_ROWS`] rows, none straddling a carried chunk.
fn blocks(data: &Dataset) -> Vec<Block> {
    let n = data.len();
    let starts: Vec<usize> = if data.chunk_starts.is_empty() {
        vec![0]
    } else {
        data.chunk_starts.clone()
    };
    let mut out = Vec::new();
    for (chunk, &start) in starts.iter().enumerate() {
        let end = starts.get(chunk + 1).copied().unwrap_or(n);
        let mut offset = 0;
        while start + offset < end {
            let len = BLOCK_ROWS.min(end - start - offset);
            out.push(Block {
                start: start + offset,
                chunk,
                offset,
                len,
            });
            offset += len;
        }
    }
    out
}
