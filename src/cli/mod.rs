//! The command line: flag groups defined once ([`args`]) and one module per subcommand, each
//! converting its flags into parameters, running the round's stages and writing their files (in
//! the manner of xsv).

pub mod autolabel;
pub mod budget;
pub mod dedup;
pub mod export;
pub mod inspect;
pub mod plan;
pub mod pull;
pub mod push;
pub mod rules;
pub mod score;
pub mod select;
pub mod simulate;

pub mod args;

use crate::error::Result;
use crate::index::cached::CacheChoice;
use crate::output::summary::Summary;
use crate::output::OutDir;
use crate::progress::Progress;
use crate::round::coverage::explain_drop;
use crate::round::timings::Timings;
use crate::round::{LabelInputs, Pool, Round, RoundParams, RoundRules, Stages};
use crate::store::history::{pool_fingerprint, History, RoundRecord};

pub use args::*;

/// Loads the pool the input flags name and gets its graph, the way the run flags say (cache,
/// memory limit, seed).
pub fn load_pool(
    input: &InputArgs,
    run: &RunArgs,
    graph: &GraphArgs,
    carry_extra: bool,
    progress: Progress,
    timings: &mut Timings,
) -> Result<Pool> {
    let opts = input.load_options(carry_extra);
    let cache = CacheChoice::from_flags(run.cache.as_deref(), run.no_cache, &input.data[0]);
    Pool::load(
        &input.data,
        &opts,
        &graph.params(run.seed)?,
        &cache,
        run.max_memory,
        progress,
        timings,
    )
}

/// What a round command reads and runs: its name (summary.json `command`), the input, run and
/// graph flags, whether carried columns are kept, and its stages.
pub struct RoundCommand<'a> {
    /// The command's name, written as summary.json `command`.
    pub name: &'static str,
    /// Which pool.
    pub input: &'a InputArgs,
    /// Output folder, seed, cache and memory limit.
    pub run: &'a RunArgs,
    /// How the graph is built.
    pub graph: &'a GraphArgs,
    /// Keep the carried columns (for batch.csv, items.parquet and exports).
    pub carry_extra: bool,
    /// The stages the command runs.
    pub stages: Stages,
    /// The round history folder (`--history`), when given.
    pub history: Option<&'a std::path::Path>,
    /// The rules (`--rules`, `--rule-votes`, or evaluated by the caller).
    pub rules: crate::rules::RuleInputs<'a>,
    /// Record the round's batch in the history (`plan`, `select`).
    pub record: bool,
}

/// The shape every round command shares: load the pool and its graph, run the command's
/// stages, create `--out` (clearing the previous run only now that the work succeeded), write
/// the command's files with `write` (timed as `write`), and summary.json last.
pub fn run_round(
    cmd: RoundCommand<'_>,
    params: &RoundParams,
    progress: Progress,
    write: impl FnOnce(&Round<'_>, &OutDir) -> Result<()>,
) -> Result<()> {
    let mut timings = Timings::default();
    // A rules file that cannot parse fails before the graph is built.
    cmd.rules.check_early()?;
    let pool = load_pool(
        cmd.input,
        cmd.run,
        cmd.graph,
        cmd.carry_extra,
        progress,
        &mut timings,
    )?;
    let (round, history) = run_recorded(&cmd, &pool, params, progress, &mut timings)?;
    write_round(
        cmd.name,
        &round,
        params,
        &cmd.run.out,
        progress,
        &mut timings,
        write,
    )?;
    // Last: the history gains the round only once everything else is written.
    record_round(&cmd, history.as_ref(), &round)
}

/// Runs `cmd`'s stages on `pool` with the auto-label certificate on the evidence `--history`
/// allows, and explains a coverage drop since the last recorded round; returns the history for
/// [`record_round`].
pub fn run_recorded<'p>(
    cmd: &RoundCommand<'_>,
    pool: &'p Pool,
    params: &RoundParams,
    progress: Progress,
    timings: &mut Timings,
) -> Result<(Round<'p>, Option<History>)> {
    let history = cmd
        .history
        .map(|dir| History::load(dir, &pool.data.ids))
        .transpose()?;
    let inputs = LabelInputs {
        evidence: history.as_ref().map(|h| h.evidence(&pool.data.labels)),
        audited: history.as_ref().map(|h| h.audited(&pool.data.labels)),
        rules: cmd
            .rules
            .any()
            .then(|| RoundRules::load(&cmd.rules, &pool.data))
            .transpose()?,
        measured_coverage: history
            .as_ref()
            .map(History::measured_coverage)
            .unwrap_or_default(),
    };
    let mut round = Round::run_with_evidence(pool, params, cmd.stages, inputs, progress, timings)?;
    let previous = history.as_ref().and_then(|h| h.rounds.last());
    if let (Some(prev), Some(a)) = (
        previous.and_then(|r| r.figures.as_ref()),
        round.autolabel.as_mut(),
    ) {
        a.summary.coverage_change = explain_drop(prev, &a.summary.figures());
    }
    Ok((round, history))
}

/// Adds the round's batch to the history when the command records (`plan`, `select`); call it
/// after every other output is written, so a killed run never leaves half a round.
pub fn record_round(
    cmd: &RoundCommand<'_>,
    history: Option<&History>,
    round: &Round<'_>,
) -> Result<()> {
    let (Some(h), Some(sel), true) = (history, &round.selection, cmd.record) else {
        return Ok(());
    };
    let ids = &round.pool.data.ids;
    let (n_items, pool_hash) = pool_fingerprint(ids);
    let record = RoundRecord {
        round: h.next_round(),
        n_items,
        pool_hash,
        figures: round.autolabel.as_ref().map(|a| a.summary.figures()),
    };
    h.record(&record, sel, ids)
}

/// The end of [`run_round`], for callers that loaded the pool and ran the round themselves (the
/// Python bindings): creates `out` (clearing the previous run's results), writes the command's
/// files with `write` (timed as `write`), then summary.json for command `name`.
pub fn write_round<'p>(
    name: &'static str,
    round: &Round<'p>,
    params: &RoundParams,
    out: &std::path::Path,
    progress: Progress,
    timings: &mut Timings,
    write: impl FnOnce(&Round<'p>, &OutDir) -> Result<()>,
) -> Result<()> {
    let out = OutDir::create(out)?;
    let bar = progress.spinner("write");
    timings.time("write", || write(round, &out))?;
    bar.finish_and_clear();
    Summary::of_round(name, round, params, timings).write(&out)?;
    Ok(())
}
