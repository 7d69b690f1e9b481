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
pub mod given;
pub mod votes;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use condition::{Block, CompileCtx, Condition};
use file::RuleSpec;
pub use given::{GivenRule, RuleInputs, VoteSource};
pub use votes::{MajorityVote, RuleClass, RuleVotes};

/// Rows per parallel evaluation task.
const BLOCK_ROWS: usize = 4096;

/// One rule, compiled against a pool.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's name.
    pub name: String,
    /// The label it votes for (a given rule voting several: each, in class order, `|`-joined).
    pub label: String,
    /// How its votes are known.
    pub kind: RuleKind,
}

/// How a rule's votes are known: its condition is evaluated on the pool, or they were given
/// per item from outside (a Python function, another tool's votes file). Both end as the same
/// [`RuleVotes`], so the analysis and the round treat them alike.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// A rules-file rule: votes `class` where `condition` holds.
    Condition {
        /// The label's index in [`RuleSet::classes`].
        class: u32,
        /// Where it fires.
        condition: Condition,
    },
    /// Votes given per item (index into [`RuleSet::classes`], `None` = abstain).
    Given {
        /// Where they came from (named in errors).
        source: PathBuf,
        /// One vote per item of the pool.
        votes: Vec<Option<u32>>,
    },
}

/// The rules of one run, checked against one pool: a rules file's, then any given ones.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Where the rules come from, as errors and summary.json name it: the rules file, then
    /// the given votes' sources, ` + `-joined.
    pub file: PathBuf,
    /// The rules, in file order, then the given rules in their order.
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
        RuleSet::build(Some((file, specs)), Vec::new(), data)
    }

    /// The rules of a file (`specs` parsed from it, when there is one) and `given` rules,
    /// checked against `data`: conditions compile, given votes cover the pool with non-empty
    /// labels, no two rules share a name.
    pub fn build(
        file: Option<(&Path, &[RuleSpec])>,
        given: Vec<GivenRule>,
        data: &Dataset,
    ) -> Result<RuleSet> {
        let specs = file.map_or(&[][..], |f| f.1);
        let classes = rule_classes(data, specs, &given);
        let class_of = |l: &str| classes.iter().position(|c| c == l).unwrap_or(0) as u32;
        let mut rules = Vec::with_capacity(specs.len() + given.len());
        let mut sources: Vec<String> = Vec::new();
        if let Some((path, specs)) = file {
            sources.push(path.display().to_string());
            let mut ctx = CompileCtx::new(data);
            for s in specs {
                let condition = Condition::compile(&s.when, &mut ctx).map_err(|m| {
                    Error::input(path, None, None, format!("rule '{}': {m}", s.name))
                })?;
                let class = class_of(&s.label);
                let kind = RuleKind::Condition { class, condition };
                rules.push(Rule::new(&s.name, s.label.clone(), kind));
            }
        }
        for g in given {
            g.check(data.len())?;
            if let Some(prev) = rules.iter().find(|r| r.name == g.name) {
                let other = prev.source(file.map(|f| f.0));
                return Err(g.error(format!("name also used by a rule in {}", other.display())));
            }
            let source = g.source.display().to_string();
            if !sources.contains(&source) {
                sources.push(source);
            }
            let map: Vec<u32> = g.labels.iter().map(|l| class_of(l)).collect();
            let votes: Vec<Option<u32>> =
                g.votes.iter().map(|v| v.map(|k| map[k as usize])).collect();
            let mut voted: Vec<u32> = votes.iter().flatten().copied().collect();
            voted.sort_unstable();
            voted.dedup();
            let label: Vec<&str> = voted
                .iter()
                .map(|&c| classes[c as usize].as_str())
                .collect();
            let kind = RuleKind::Given {
                source: g.source,
                votes,
            };
            rules.push(Rule::new(&g.name, label.join("|"), kind));
        }
        Ok(RuleSet {
            file: PathBuf::from(sources.join(" + ")),
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
                        match &r.kind {
                            RuleKind::Condition { condition, .. } => {
                                condition.eval(data, *b, &mut out)
                            }
                            RuleKind::Given { votes, .. } => {
                                for (o, v) in out.iter_mut().zip(&votes[b.start..b.start + b.len]) {
                                    *o = v.is_some();
                                }
                            }
                        }
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
        let class = self.rules.iter().map(Rule::class).collect();
        RuleVotes::with_classes(self.classes.clone(), class, fired)
    }

    /// Refuses a rule that fired on no item: it can never fire on this data (a misspelt
    /// keyword, an impossible range, a function that always returns None), so its analysis
    /// would be empty.
    pub fn check_fires(&self, votes: &RuleVotes) -> Result<()> {
        let counts = votes.fired_counts();
        match self.rules.iter().zip(&counts).find(|(_, &n)| n == 0) {
            Some((rule, _)) => Err(Error::input(
                rule.source(Some(&self.file)),
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

impl Rule {
    fn new(name: &str, label: String, kind: RuleKind) -> Rule {
        Rule {
            name: name.to_string(),
            label,
            kind,
        }
    }

    /// Where the rule came from: its given votes' source, else `file` (the rules file).
    fn source<'a>(&'a self, file: Option<&'a Path>) -> &'a Path {
        match (&self.kind, file) {
            (RuleKind::Given { source, .. }, _) => source,
            (_, Some(f)) => f,
            (_, None) => Path::new(""),
        }
    }

    /// The class(es) it votes, as [`RuleVotes`] holds them.
    fn class(&self) -> RuleClass {
        match &self.kind {
            RuleKind::Condition { class, .. } => RuleClass::One(*class),
            RuleKind::Given { votes, .. } => {
                RuleClass::PerItem(votes.iter().map(|v| v.unwrap_or(0)).collect())
            }
        }
    }
}

/// The pool's classes, then the labels only the rules name (in `specs` or `given`), sorted.
fn rule_classes(data: &Dataset, specs: &[RuleSpec], given: &[GivenRule]) -> Vec<String> {
    let mut classes = data.classes.clone();
    let mut new: Vec<&str> = specs
        .iter()
        .map(|s| s.label.as_str())
        .chain(
            given
                .iter()
                .flat_map(|g| g.labels.iter().map(String::as_str)),
        )
        .filter(|l| !data.classes.iter().any(|c| c == l))
        .collect();
    new.sort_unstable();
    new.dedup();
    classes.extend(new.into_iter().map(str::to_string));
    classes
}

/// Loads the rules at `path` against `data`, evaluates them and refuses a rule that never
/// fires: [`RuleSet::load`], [`RuleSet::votes`] and [`RuleSet::check_fires`] in one call.
pub fn load_and_vote(path: &Path, data: &Dataset) -> Result<(RuleSet, RuleVotes)> {
    RuleInputs {
        file: Some(path),
        ..RuleInputs::default()
    }
    .load_and_vote(data)
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
