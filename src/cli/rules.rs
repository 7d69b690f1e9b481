//! `labelwise rules DATA --rules FILE --out DIR`: evaluates labeling rules on the pool and
//! writes what users act on: per-rule coverage, overlaps, conflicts and accuracy (rules.csv),
//! the votes and majority label per item (rule_votes.parquet), the labeled items the rules
//! contradict (rule_disagreements.csv) and summary.json. Builds no neighbour graph.

use std::sync::Arc;

use arrow_array::{BooleanArray, Int32Array, StringArray};
use clap::Args;

use crate::cli::{InputArgs, RulesArgs, RunArgs};
use crate::data::dataset::{self, Dataset, LoadOptions, MemoryCheck};
use crate::error::{Error, Result};
use crate::output::summary::{PoolSummary, Summary};
use crate::output::{ItemsTable, OutDir};
use crate::progress::Progress;
use crate::round::timings::Timings;
use crate::rules::analysis::{Analysis, RulesSummary};
use crate::rules::{MajorityVote, RuleInputs, RuleSet, RuleVotes, VoteSource};

/// Flags of `rules`.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Which embedding and label files to read, and their columns.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output folder and memory limit (`rules` builds no graph: the cache flags do nothing).
    #[command(flatten)]
    pub run: RunArgs,
    /// The rules file and how many examples to keep.
    #[command(flatten)]
    pub rules: RulesArgs,
}

/// What `rules` computed: the pool, the rules, their votes, majority and analysis.
pub struct Outcome {
    /// The pool.
    pub data: Dataset,
    /// The rules, checked against the pool.
    pub rules: RuleSet,
    /// Their votes on every item.
    pub votes: RuleVotes,
    /// The majority vote per item.
    pub majority: Vec<MajorityVote>,
    /// Coverage, overlaps, conflicts and accuracy per rule.
    pub analysis: Analysis,
    /// Seconds per stage.
    pub timings: Timings,
}

/// Runs `rules`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let outcome = compute(args, None, progress)?;
    write(args, &outcome)
}

/// Loads the pool and evaluates and analyses the rules the flags give, with `given` rules (the
/// caller's, e.g. Python functions) beside them.
pub fn compute(args: &Cmd, given: Option<&dyn VoteSource>, progress: Progress) -> Result<Outcome> {
    let opts = LoadOptions {
        memory_check: Some(MemoryCheck {
            limit: args.run.max_memory,
            k: 0,
        }),
        ..args.input.load_options(true)
    };
    require_rules(&RuleInputs {
        given,
        ..args.rules.inputs()
    })?;
    let mut timings = Timings::default();
    let data = timings.time("load", || {
        let spinner = progress.spinner("load");
        let data = dataset::load(&args.input.data, &opts);
        spinner.finish_and_clear();
        data
    })?;
    compute_on(args, data, given, progress, timings)
}

/// Refuses a run without rules.
fn require_rules(inputs: &RuleInputs<'_>) -> Result<()> {
    match inputs.any() {
        true => Ok(()),
        false => Err(Error::Usage(
            "rules needs --rules FILE or --rule-votes FILE".into(),
        )),
    }
}

/// [`compute`] on a pool already loaded (`timings` holds its load).
pub fn compute_on(
    args: &Cmd,
    data: Dataset,
    given: Option<&dyn VoteSource>,
    progress: Progress,
    mut timings: Timings,
) -> Result<Outcome> {
    let inputs = RuleInputs {
        given,
        ..args.rules.inputs()
    };
    require_rules(&inputs)?;
    let (rules, votes) = timings.time("votes", || {
        let spinner = progress.spinner("rules");
        let out = inputs.load_and_vote(&data);
        spinner.finish_and_clear();
        out
    })?;
    let majority = timings.time("majority", || votes.majority());
    let analysis = timings.time("analysis", || {
        Analysis::compute(&rules, &votes, &majority, &data.labels, args.rules.examples)
    });
    Ok(Outcome {
        data,
        rules,
        votes,
        majority,
        analysis,
        timings,
    })
}

/// Writes `rules`' files into `--out`: rules.csv, rule_votes.parquet,
/// rule_disagreements.csv, then summary.json.
pub fn write(args: &Cmd, o: &Outcome) -> Result<()> {
    let out = OutDir::create(&args.run.out)?;
    let mut timings = o.timings.clone();
    timings.time("write", || write_files(o, &out))?;
    let section = RulesSummary::new(&o.rules, &o.analysis, &o.data.ids);
    summary(o, &section, &timings).write(&out)?;
    Ok(())
}

/// summary.json of `rules` (`section` is its `rules` part).
pub fn summary<'a>(o: &'a Outcome, section: &'a RulesSummary, timings: &'a Timings) -> Summary<'a> {
    Summary {
        pool: Some(PoolSummary {
            items: o.data.len(),
            dimension: o.data.dim(),
            labeled: o.data.labeled_count(),
            classes: o.data.classes.len(),
        }),
        label_merge: o.data.label_merge.as_ref(),
        rules: Some(section),
        ..Summary::new("rules", timings)
    }
}

fn write_files(o: &Outcome, out: &OutDir) -> Result<()> {
    write_rules_csv(o, out)?;
    out.write_parquet("rule_votes.parquet", &votes_table(o).finish()?)?;
    write_disagreements(o, out)?;
    Ok(())
}

/// A float as the shortest text that reads back to it; absent as an empty field.
fn num(x: Option<f64>) -> String {
    x.map(|x| x.to_string()).unwrap_or_default()
}

fn write_rules_csv(o: &Outcome, out: &OutDir) -> Result<()> {
    let header = [
        "rule",
        "label",
        "fired",
        "coverage",
        "overlaps",
        "conflicts",
        "correct",
        "incorrect",
        "accuracy",
        "accuracy_low",
        "accuracy_high",
    ];
    let rows = o.analysis.per_rule.iter().map(|s| {
        vec![
            s.rule.clone(),
            s.label.clone(),
            s.fired.to_string(),
            num(Some(s.coverage)),
            num(Some(s.overlaps)),
            num(Some(s.conflicts)),
            s.correct.to_string(),
            s.incorrect.to_string(),
            num(s.accuracy),
            num(s.accuracy_low),
            num(s.accuracy_high),
        ]
    });
    out.write_csv("rules.csv", header, rows)?;
    Ok(())
}

/// rule_votes.parquet: one row per item: id, given label, majority label, vote counts, tie,
/// the rules that fired.
pub fn votes_table(o: &Outcome) -> ItemsTable {
    let mut t = ItemsTable::new(&o.data);
    let given = StringArray::from_iter(
        o.data
            .labels
            .iter()
            .map(|l| l.map(|c| o.data.classes[c as usize].as_str())),
    );
    let major = StringArray::from_iter(
        o.majority
            .iter()
            .map(|m| m.label.map(|c| o.votes.classes[c as usize].as_str())),
    );
    let names = (0..o.data.len()).map(|i| {
        o.votes
            .fired_on(i)
            .map(|r| o.rules.rules[r].name.as_str())
            .collect::<Vec<_>>()
            .join(";")
    });
    let votes = Int32Array::from_iter_values(o.majority.iter().map(|m| m.votes as i32));
    let top = Int32Array::from_iter_values(o.majority.iter().map(|m| m.top as i32));
    let tie = BooleanArray::from_iter(o.majority.iter().map(|m| Some(m.tie)));
    t.push("label", Arc::new(given), true);
    t.push("majority_label", Arc::new(major), true);
    t.push("votes", Arc::new(votes), false);
    t.push("majority_votes", Arc::new(top), false);
    t.push("tie", Arc::new(tie), false);
    t.push(
        "rules",
        Arc::new(StringArray::from_iter_values(names)),
        false,
    );
    t
}

/// The labeled items each disagreeing rule contradicts (most incorrect rule first), with the
/// carried columns so the text can be read beside the verdict.
fn write_disagreements(o: &Outcome, out: &OutDir) -> Result<()> {
    let data = &o.data;
    let mut header: Vec<String> = [
        "rule",
        "rule_label",
        "incorrect",
        "labeled_votes",
        "id",
        "label",
    ]
    .map(String::from)
    .to_vec();
    header.extend(data.carried.iter().map(|c| c.field.name().clone()));
    let mut rows = Vec::new();
    for d in &o.analysis.disagreements {
        let rule = &o.rules.rules[d.rule];
        for &i in &d.examples {
            let given = data.labels[i].map_or("", |c| data.classes[c as usize].as_str());
            let mut row = vec![
                rule.name.clone(),
                rule.label.clone(),
                d.incorrect.to_string(),
                d.labeled_votes.to_string(),
                data.ids[i].clone(),
                given.to_string(),
            ];
            row.extend((0..data.carried.len()).map(|c| data.carried_text(c, i)));
            rows.push(row);
        }
    }
    out.write_csv("rule_disagreements.csv", header, rows)?;
    Ok(())
}
