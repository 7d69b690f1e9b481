//! `labelwise._labelwise`: the Rust half of the `labelwise` Python package.
//!
//! Every command is run through the library's own pieces, never the binary: its flags are parsed
//! by the command line's own definitions (`labelwise::cli::*::Cmd`, so every default, range check
//! and message is the CLI's), the pool is loaded from Parquet paths (`cli::load_pool`) or from
//! Arrow record batches handed over through the Arrow C stream interface without a copy
//! (`data::dataset::load_batches`), the round runs through `cli::run_recorded` (the CLI's round,
//! `--history` included), and files are written by the same `output` writers the CLI uses. The GIL is released while Rust works.

mod graph;
mod items;
mod rows;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::ffi_stream::RecordBatchStreamReader;
use arrow_array::types::{Float64Type, UInt32Type};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, RecordBatchReader, StringArray};
use arrow_pyarrow::{FromPyArrow, IntoPyArrow, PyArrowType, Table};
use arrow_schema::{Field, Schema, SchemaRef};
use clap::{Args, FromArgMatches};
use labelwise::cli::{self, RoundCommand};
use labelwise::data::dataset::{self, MemoryCheck};
use labelwise::index::cached::{self, CacheChoice};
use labelwise::index::{kmeans, shard};
use labelwise::output::summary::Summary;
use labelwise::output::{round_files, OutDir};
use labelwise::progress::Progress;
use labelwise::round::dedup::DupPair;
use labelwise::round::timings::Timings;
use labelwise::round::{Pool, Round, RoundParams};
use labelwise::rules::{GivenRule, VoteSource};
use labelwise::simulate::replay;
use ndarray::Array2;
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The CLI's allocator, so the package runs as fast as the binary (see the main Cargo.toml).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(
    _labelwise,
    InputError,
    PyValueError,
    "Bad input or a bad parameter: the CLI's one-line message (the CLI exits with code 2)."
);

/// A labelwise error as a Python exception: bad input and bad usage (the CLI's exit code 2)
/// become `InputError` with the CLI's message, everything else `RuntimeError`.
fn py_err(e: labelwise::Error) -> PyErr {
    if e.exit_code() == 2 {
        InputError::new_err(e.to_string())
    } else {
        PyRuntimeError::new_err(e.to_string())
    }
}

/// A clap error (unknown value, bad number) as `InputError`: its first line, as the CLI prints
/// it, without the `error: ` prefix.
fn clap_err(e: clap::Error) -> PyErr {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    InputError::new_err(first.strip_prefix("error: ").unwrap_or(first).to_string())
}

/// Parses `argv` (flags and positionals, no command name) with command `name`'s own flag
/// definitions.
fn parse<C: Args + FromArgMatches>(name: &'static str, argv: &[String]) -> PyResult<C> {
    let command = C::augment_args(clap::Command::new(name));
    let matches = command
        .try_get_matches_from(std::iter::once(name.to_string()).chain(argv.iter().cloned()))
        .map_err(clap_err)?;
    C::from_arg_matches(&matches).map_err(clap_err)
}

/// One flag of a command, for the Python signatures and docstrings.
#[derive(IntoPyObject)]
struct Param {
    /// The long flag without dashes (`target-precision`), or the positional's name.
    flag: String,
    /// Whether the flag takes a value (`--batch 100`) or is a switch (`--no-cache`).
    takes_value: bool,
    /// Whether it is positional (`DATA`, `DIR`).
    positional: bool,
    /// Whether it takes several values (comma-separated for flags).
    multiple: bool,
    /// The CLI's default, as the CLI shows it (empty when it has none).
    default: Vec<String>,
    /// The allowed values, for enumerations.
    choices: Vec<String>,
    /// The flag's one-line help.
    help: String,
}

/// The flags of `command` with their defaults and help, read from the CLI's definitions.
fn params_of<C: Args>(name: &'static str) -> Vec<Param> {
    let command = C::augment_args(clap::Command::new(name));
    command
        .get_arguments()
        .filter(|a| a.get_id() != "help")
        .map(|a| Param {
            flag: a
                .get_long()
                .map(str::to_string)
                .unwrap_or_else(|| a.get_id().to_string()),
            takes_value: a.get_action().takes_values(),
            positional: a.is_positional(),
            multiple: a
                .get_num_args()
                .map(|n| n.max_values() > 1)
                .unwrap_or(false)
                || a.get_value_delimiter().is_some(),
            default: a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect(),
            choices: a
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect(),
            help: a.get_help().map(|h| h.to_string()).unwrap_or_default(),
        })
        .collect()
}

/// `parameters(command)`: the flags a command takes, from the CLI's definitions.
#[pyfunction]
fn parameters(command: &str) -> PyResult<Vec<Param>> {
    Ok(match command {
        "plan" => params_of::<cli::plan::Cmd>("plan"),
        "dedup" => params_of::<cli::dedup::Cmd>("dedup"),
        "score" => params_of::<cli::score::Cmd>("score"),
        "autolabel" => params_of::<cli::autolabel::Cmd>("autolabel"),
        "select" => params_of::<cli::select::Cmd>("select"),
        "budget" => params_of::<cli::budget::Cmd>("budget"),
        "simulate" => params_of::<cli::simulate::Cmd>("simulate"),
        "export" => params_of::<cli::export::Cmd>("export"),
        "rules" => params_of::<cli::rules::Cmd>("rules"),
        other => return Err(PyValueError::new_err(format!("unknown command '{other}'"))),
    })
}

thread_local! {
    /// The Python progress callback of the call running on this thread, if any.
    static OBSERVER: RefCell<Option<Py<PyAny>>> = const { RefCell::new(None) };
}

/// `Progress`'s observer: hands the stage name to this thread's Python callback (taking the
/// GIL just for that call). A failing callback never stops the run.
fn observe(stage: &str) {
    OBSERVER.with(|o| {
        if let Some(cb) = o.borrow().as_ref() {
            Python::attach(|py| {
                if let Err(e) = cb.call1(py, (stage,)) {
                    e.write_unraisable(py, None);
                }
            });
        }
    });
}

/// Runs `work` without the GIL, on a pool of `threads` workers when asked (the CLI's
/// `--threads`; otherwise rayon's global pool), with `callback` told each stage's name.
fn detached<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    callback: Option<Py<PyAny>>,
    work: impl FnOnce(Progress) -> labelwise::Result<T> + Send,
) -> PyResult<T> {
    if threads == Some(0) {
        return Err(InputError::new_err("--threads must be at least 1"));
    }
    let pool = match threads {
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| PyRuntimeError::new_err(format!("thread pool: {e}")))?,
        ),
        None => None,
    };
    let has_callback = callback.is_some();
    let run = move || {
        OBSERVER.with(|o| *o.borrow_mut() = callback);
        let progress = if has_callback {
            Progress::hidden().with_observer(observe)
        } else {
            Progress::hidden()
        };
        let result = work(progress);
        let cb = OBSERVER.with(|o| o.borrow_mut().take());
        (result, cb)
    };
    let (result, cb) = py.detach(|| match &pool {
        Some(p) => p.install(run),
        None => run(),
    });
    // The callback is dropped with the GIL held.
    drop(cb);
    result.map_err(py_err)
}

/// Where the pool comes from: the Parquet paths in the flags, or Arrow record batches.
enum Source {
    /// The `DATA` paths of the flags, read as the CLI reads them.
    Paths,
    /// An Arrow stream's batches (sharing the producer's buffers).
    Arrow {
        /// Stands for the file name in messages (`<pyarrow.Table>`).
        name: PathBuf,
        /// The stream's schema.
        schema: SchemaRef,
        /// The stream's record batches.
        batches: Vec<RecordBatch>,
    },
}

impl Source {
    /// Reads `data` (anything with `__arrow_c_stream__`, or None for paths) through the Arrow
    /// C stream interface: the batches share the producer's buffers.
    fn from_py(data: Option<PyArrowType<RecordBatchStreamReader>>, name: &str) -> PyResult<Source> {
        let Some(PyArrowType(reader)) = data else {
            return Ok(Source::Paths);
        };
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| {
            InputError::new_err(format!("{name}: cannot read the Arrow stream: {e}"))
        })?;
        Ok(Source::Arrow {
            name: PathBuf::from(name),
            schema,
            batches,
        })
    }

    /// The Arrow stream validated and loaded with `opts` (no progress, no memory check).
    fn load(&self, opts: &dataset::LoadOptions) -> labelwise::Result<dataset::Dataset> {
        match self {
            Source::Arrow {
                name,
                schema,
                batches,
            } => dataset::load_batches(name, schema, batches, opts),
            Source::Paths => Err(labelwise::Error::Internal("no Arrow stream".into())),
        }
    }

    /// The pool loaded with `opts` from the stream, or from `paths` (the command's `DATA`) when
    /// there is none.
    fn load_or_read(
        &self,
        paths: &[PathBuf],
        opts: &dataset::LoadOptions,
    ) -> labelwise::Result<dataset::Dataset> {
        match self {
            Source::Paths => dataset::load(paths, opts),
            Source::Arrow { .. } => self.load(opts),
        }
    }

    /// The pool, loaded the way the CLI would (memory check, then the graph from the cache or
    /// built). Arrow data is cached only with `--cache DIR`: it has no folder to sit beside.
    fn pool(
        &self,
        cmd: &RoundCommand<'_>,
        progress: Progress,
        timings: &mut Timings,
    ) -> labelwise::Result<Pool> {
        match self {
            Source::Paths => cli::load_pool(
                cmd.input,
                cmd.run,
                cmd.graph,
                cmd.carry_extra,
                progress,
                timings,
            ),
            Source::Arrow {
                name,
                schema,
                batches,
            } => {
                let graph = cmd.graph.params(cmd.run.seed)?;
                let mut opts = cmd.input.load_options(cmd.carry_extra);
                opts.memory_check = Some(MemoryCheck {
                    limit: cmd.run.max_memory,
                    k: graph.k as u64,
                });
                let data = load_arrow(name, schema, batches, &opts, progress, timings)?;
                let cache = arrow_cache(cmd.run);
                Pool::from_data(data, &graph, &cache, progress, timings)
            }
        }
    }
}

/// Loads Arrow batches into a dataset, timed as `load`.
fn load_arrow(
    name: &Path,
    schema: &Schema,
    batches: &[RecordBatch],
    opts: &dataset::LoadOptions,
    progress: Progress,
    timings: &mut Timings,
) -> labelwise::Result<dataset::Dataset> {
    timings.time("load", || {
        let spinner = progress.spinner("load");
        let data = dataset::load_batches(name, schema, batches, opts);
        spinner.finish_and_clear();
        data
    })
}

/// The cache for Arrow data: `--cache DIR` when given (and not `--no-cache`), else none.
fn arrow_cache(run: &cli::RunArgs) -> CacheChoice {
    match (&run.cache, run.no_cache) {
        (Some(dir), false) => CacheChoice::Dir(dir.clone()),
        _ => CacheChoice::Off,
    }
}

/// Rules written as Python functions (`rules=[fn, ...]`): each is called on the pool's carried
/// columns, one pyarrow RecordBatch per chunk in row order, and returns a label or None per
/// row. They run with the GIL taken back inside the detached work, once the pool is loaded and
/// before the round or analysis uses their votes (as the progress callback does).
struct PyRules {
    /// (rule name, the package's checking wrapper around the user's function); the wrapper
    /// takes (batch, first row) and returns a list of str | None or raises `InputError`.
    functions: Vec<(String, Py<PyAny>)>,
    /// The Python exception that stopped the evaluation, re-raised as it is (with the user's
    /// exception as its cause) once the work returns.
    failure: Mutex<Option<PyErr>>,
}

/// Names the functions' rules in messages and summary.json.
const PY_RULES_SOURCE: &str = "<python>";

impl PyRules {
    fn new(functions: Vec<(String, Py<PyAny>)>) -> Option<PyRules> {
        (!functions.is_empty()).then(|| PyRules {
            functions,
            failure: Mutex::new(None),
        })
    }

    /// The evaluation's own exception when it failed, else `e` as a Python exception.
    fn take_err(rules: Option<&PyRules>, e: PyErr) -> PyErr {
        rules
            .and_then(|r| r.failure.lock().ok().and_then(|mut f| f.take()))
            .unwrap_or(e)
    }

    fn evaluate(&self, py: Python<'_>, data: &dataset::Dataset) -> PyResult<Vec<GivenRule>> {
        let mut batches = Vec::new();
        for (start, batch) in carried_batches(data).map_err(py_err)? {
            batches.push((start, batch.into_pyarrow(py)?));
        }
        let source = Path::new(PY_RULES_SOURCE);
        let mut out = Vec::with_capacity(self.functions.len());
        for (name, f) in &self.functions {
            let mut labels: Vec<Option<String>> = Vec::with_capacity(data.len());
            for (start, batch) in &batches {
                let part: Vec<Option<String>> = f.call1(py, (batch, *start))?.extract(py)?;
                labels.extend(part);
            }
            out.push(GivenRule::from_labels(
                name,
                source,
                labels.iter().map(|l| l.as_deref()),
            ));
        }
        Ok(out)
    }
}

impl VoteSource for PyRules {
    fn rules(&self, data: &dataset::Dataset) -> labelwise::Result<Vec<GivenRule>> {
        Python::attach(|py| {
            self.evaluate(py, data).map_err(|e| {
                let message = e.value(py).to_string();
                if let Ok(mut f) = self.failure.lock() {
                    *f = Some(e);
                }
                labelwise::Error::Usage(message)
            })
        })
    }
}

/// The pool's carried columns as record batches, one per loaded chunk, with each chunk's
/// first row (a pool without carried columns: one batch of no columns).
fn carried_batches(data: &dataset::Dataset) -> labelwise::Result<Vec<(usize, RecordBatch)>> {
    let fields: Vec<_> = data.carried.iter().map(|c| c.field.clone()).collect();
    let schema = Arc::new(Schema::new(fields));
    if data.carried.is_empty() || data.chunk_starts.is_empty() {
        let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(data.len()));
        let batch = RecordBatch::try_new_with_options(schema, Vec::new(), &opts)
            .map_err(labelwise::Error::internal("carried batch"))?;
        return Ok(vec![(0, batch)]);
    }
    data.chunk_starts
        .iter()
        .enumerate()
        .map(|(k, &start)| {
            let columns = data.carried.iter().map(|c| c.chunks[k].clone()).collect();
            let batch = RecordBatch::try_new(schema.clone(), columns)
                .map_err(labelwise::Error::internal("carried batch"))?;
            Ok((start, batch))
        })
        .collect()
}

/// The round commands' shared shape, implemented by each command's flags.
trait RoundCmd: Args + FromArgMatches + Sync {
    /// The round's parameters, from the flags.
    fn params(&self) -> labelwise::Result<RoundParams>;
    /// Name, input, run and graph flags, carried columns and stages.
    fn command(&self) -> RoundCommand<'_>;
    /// The command's files (all but summary.json), as the CLI writes them.
    fn write(&self, round: &Round, out: &OutDir) -> labelwise::Result<()>;
}

macro_rules! round_cmd {
    ($($m:ident),+) => {$(
        impl RoundCmd for cli::$m::Cmd {
            fn params(&self) -> labelwise::Result<RoundParams> {
                cli::$m::Cmd::params(self)
            }
            fn command(&self) -> RoundCommand<'_> {
                cli::$m::Cmd::command(self)
            }
            fn write(&self, round: &Round, out: &OutDir) -> labelwise::Result<()> {
                cli::$m::Cmd::write(self, round, out)
            }
        }
    )+};
}
round_cmd!(plan, score, autolabel, select, budget);

/// What a command computed, as Arrow batches and summary.json's text.
#[derive(Default)]
struct Outcome {
    /// Result tables by name (`items`, `pairs`, `autolabels`, `batch`, `budget`, …).
    tables: Vec<(&'static str, RecordBatch)>,
    /// summary.json's contents, as JSON text.
    summary: String,
}

/// A summary as JSON text, keys sorted as in summary.json.
fn summary_json(summary: &Summary<'_>) -> labelwise::Result<String> {
    let value = serde_json::to_value(summary)
        .map_err(|e| labelwise::Error::Internal(format!("serializing summary: {e}")))?;
    Ok(value.to_string())
}

/// Runs a round command: params (checked first, as the CLI does), pool, round, tables, and the
/// CLI's files when `write_out`.
fn run_round<C: RoundCmd>(
    args: &C,
    source: &Source,
    given: Option<&PyRules>,
    write_out: bool,
    tables: &[&'static str],
    progress: Progress,
) -> labelwise::Result<Outcome> {
    let params = args.params()?;
    let mut cmd = args.command();
    cmd.rules.given = given.map(|g| g as &dyn VoteSource);
    let mut timings = Timings::default();
    let pool = source.pool(&cmd, progress, &mut timings)?;
    let run = RoundRun {
        cmd: &cmd,
        params: &params,
        write_out,
        tables,
        progress,
        cluster: None,
    };
    round_outcome(args, &run, &pool, &mut timings)
}

/// What [`round_outcome`] runs: the command, its parameters, and what it hands back.
struct RoundRun<'c> {
    cmd: &'c RoundCommand<'c>,
    params: &'c RoundParams,
    write_out: bool,
    tables: &'c [&'static str],
    progress: Progress,
    /// `plan` on the map route: items.parquet in parts and the picks' carried columns come
    /// from the cluster (the driver loaded no carried column).
    cluster: Option<ClusterPlan<'c>>,
}

/// `plan`'s writer on the map route, with the cluster that writes items.parquet.
#[derive(Clone, Copy)]
struct ClusterPlan<'c> {
    args: &'c cli::plan::Cmd,
    output: &'c items::ClusterOutput,
}

/// The round on a loaded `pool`, its tables, and the CLI's files when `write_out`.
fn round_outcome<C: RoundCmd>(
    args: &C,
    run: &RoundRun<'_>,
    pool: &Pool,
    timings: &mut Timings,
) -> labelwise::Result<Outcome> {
    let RoundRun {
        cmd,
        params,
        write_out,
        tables,
        progress,
        cluster,
    } = *run;
    // `history=DIR` works as `--history`: evidence from it, the batch recorded last.
    let (round, history) = cli::run_recorded(cmd, pool, params, progress, timings)?;
    // On the map route, the picks' carried columns come from map tasks over the shards holding
    // them (timed, as the write they are part of); one machine reads them where it needs them.
    let picked = match cluster {
        Some(c) => Some(timings.time("carried", || c.output.picked_carried(&round))?),
        None => None,
    };
    if write_out {
        cli::write_round(
            cmd.name,
            &round,
            params,
            &cmd.run.out,
            progress,
            timings,
            |r, o| match (cluster, &picked) {
                (Some(c), Some(picked)) => {
                    c.output.write_items(r, o)?;
                    c.args.write_but_items(r, o, picked)
                }
                _ => args.write(r, o),
            },
        )?;
    }
    // The files first, then the tables handed back: the writer's copy of each table is gone
    // before the returned one is built (at most one items table, the largest, at a time).
    let mut out = Outcome::default();
    for &t in tables {
        let batch = match t {
            // On the map route items.parquet is the folder of parts the cluster wrote.
            "items" if cluster.is_some() => None,
            "items" => Some(round_files::items_table(&round)?),
            // The map route hands back no table as large as the pool: read the files.
            "pairs" | "autolabels" if cluster.is_some() => None,
            "pairs" => match &round.duplicates {
                Some(d) => Some(round_files::pairs_table(d, round.data())?),
                None => None,
            },
            "autolabels" => round_files::autolabels_table(&round)?,
            "batch" => match &picked {
                Some(p) => round_files::batch_table(&round, p)?,
                None => round_files::batch_table(&round, &round_files::picked_carried(&round)?)?,
            },
            "budget" => round_files::budget_table(&round)?,
            _ => None,
        };
        if let Some(b) = batch {
            out.tables.push((t, b));
        }
    }
    out.summary = summary_json(&Summary::of_round(cmd.name, &round, params, timings))?;
    cli::record_round(cmd, history.as_ref(), &round)?;
    Ok(out)
}

/// `dedup`: the duplicates stage alone, as the CLI runs it.
fn run_dedup(
    args: &cli::dedup::Cmd,
    source: &Source,
    write_out: bool,
    progress: Progress,
) -> labelwise::Result<Outcome> {
    let params = args.dedup.params()?;
    let mut timings = Timings::default();
    let cmd = RoundCommand {
        name: "dedup",
        input: &args.input,
        run: &args.run,
        graph: &args.graph,
        carry_extra: false,
        history: None,
        rules: Default::default(),
        record: false,
        stages: Default::default(),
    };
    let pool = source.pool(&cmd, progress, &mut timings)?;
    let mut round = Round::new(&pool);
    round.run_dedup(&params, &mut timings)?;
    let Some(dups) = round.duplicates.as_ref() else {
        return Err(labelwise::Error::Internal("dedup found no groups".into()));
    };
    let mut out = Outcome::default();
    out.tables
        .push(("items", cli::dedup::items_table(dups, &pool.data)?));
    out.tables
        .push(("pairs", round_files::pairs_table(dups, &pool.data)?));
    if write_out {
        let dir = OutDir::create(&args.run.out)?;
        cli::dedup::write(dups, &pool.data, &dir, &mut timings)?;
        cli::dedup::summary(dups, &pool, &timings).write(&dir)?;
    }
    out.summary = summary_json(&cli::dedup::summary(dups, &pool, &timings))?;
    Ok(out)
}

/// `rules`: the rules' analysis, as the CLI runs it; the `votes` table is rule_votes.parquet.
fn run_rules(
    args: &cli::rules::Cmd,
    source: &Source,
    given: Option<&PyRules>,
    write_out: bool,
    progress: Progress,
) -> labelwise::Result<Outcome> {
    let given = given.map(|g| g as &dyn VoteSource);
    let o = match source {
        Source::Paths => cli::rules::compute(args, given, progress)?,
        Source::Arrow {
            name,
            schema,
            batches,
        } => {
            let mut opts = args.input.load_options(true);
            opts.memory_check = Some(MemoryCheck {
                limit: args.run.max_memory,
                k: 0,
            });
            let mut timings = Timings::default();
            let data = load_arrow(name, schema, batches, &opts, progress, &mut timings)?;
            cli::rules::compute_on(args, data, given, progress, timings)?
        }
    };
    if write_out {
        cli::rules::write(args, &o)?;
    }
    let section = labelwise::rules::analysis::RulesSummary::new(&o.rules, &o.analysis, &o.data.ids);
    Ok(Outcome {
        tables: vec![("votes", cli::rules::votes_table(&o).finish()?)],
        summary: summary_json(&cli::rules::summary(&o, &section, &o.timings))?,
    })
}

/// `simulate`: the replay, as the CLI runs it.
fn run_simulate(
    args: &cli::simulate::Cmd,
    source: &Source,
    given: Option<&PyRules>,
    write_out: bool,
    progress: Progress,
) -> labelwise::Result<Outcome> {
    let params = args.params()?;
    let rules = labelwise::rules::RuleInputs {
        given: given.map(|g| g as &dyn VoteSource),
        ..args.rules.inputs()
    };
    // A rules file that cannot parse fails before the graph is built, as in the CLI.
    rules.check_early()?;
    let opts = args.input.load_options(true);
    let mut setup = match source {
        Source::Paths => replay::setup(
            &args.input.data,
            &opts,
            args.run.max_memory,
            &params,
            progress,
        )?,
        Source::Arrow {
            name,
            schema,
            batches,
        } => {
            let mut opts = opts.clone();
            opts.memory_check = Some(MemoryCheck {
                limit: args.run.max_memory,
                k: params.graph.k as u64,
            });
            let mut timings = Timings::default();
            let data = load_arrow(name, schema, batches, &opts, progress, &mut timings)?;
            let mut params = params.clone();
            params.cache = arrow_cache(&args.run);
            replay::setup_data(data, &params, progress, timings)?
        }
    };
    if rules.any() {
        setup.rules = Some(replay::pool_rules(&mut setup, &rules)?);
    }
    let result = replay::replay(&mut setup, &params, &params.round.select, progress)?;
    let mut out = Outcome::default();
    let ids = &setup.prepared.data.ids;
    let int = |v: Vec<i64>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
    let text = |v: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let table = |cols: Vec<(&str, ArrayRef)>| -> labelwise::Result<RecordBatch> {
        let fields: Vec<Field> = cols
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), false))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            cols.into_iter().map(|(_, a)| a).collect(),
        )
        .map_err(labelwise::Error::internal("simulate table"))
    };
    out.tables.push((
        "selections",
        table(vec![
            (
                "round",
                int(result.selections.iter().map(|s| s.0 as i64).collect()),
            ),
            (
                "id",
                text(
                    result
                        .selections
                        .iter()
                        .map(|s| ids[s.1].as_str())
                        .collect(),
                ),
            ),
        ])?,
    ));
    let classes = &setup.data.classes;
    out.tables.push((
        "autolabels",
        table(vec![
            (
                "round",
                int(result.autolabels.iter().map(|a| a.round as i64).collect()),
            ),
            (
                "id",
                text(
                    result
                        .autolabels
                        .iter()
                        .map(|a| ids[a.row].as_str())
                        .collect(),
                ),
            ),
            (
                "label",
                text(
                    result
                        .autolabels
                        .iter()
                        .map(|a| classes[a.label as usize].as_str())
                        .collect(),
                ),
            ),
            (
                "source",
                text(result.autolabels.iter().map(|a| a.source).collect()),
            ),
        ])?,
    ));
    let roles = replay::split_roles(&setup.split, setup.data.len());
    out.tables.push((
        "split",
        table(vec![
            (
                "id",
                text(setup.data.ids.iter().map(String::as_str).collect()),
            ),
            ("split", text(roles)),
        ])?,
    ));
    if write_out {
        let dir = OutDir::create(&args.run.out)?;
        cli::simulate::write(&setup, &result, &dir)?;
        cli::simulate::summary(args, &setup, &result).write(&dir)?;
    }
    out.summary = summary_json(&cli::simulate::summary(args, &setup, &result))?;
    Ok(out)
}

/// `run(command, argv, data, source_name, write_out, progress, threads, tables)`: runs one
/// command. `argv` holds its flags and positionals as the CLI takes them (the Python layer
/// builds it from keyword arguments); `data`, when given, is the pool as an Arrow stream and
/// the `DATA` positional is a placeholder. Returns `(tables, summary_json)`, tables as
/// `{name: pyarrow.Table}`.
#[pyfunction]
#[pyo3(signature = (command, argv, data=None, source_name="<table>", write_out=false, progress=None, threads=None, tables=Vec::new(), rule_functions=Vec::new()))]
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    command: &str,
    argv: Vec<String>,
    data: Option<PyArrowType<RecordBatchStreamReader>>,
    source_name: &str,
    write_out: bool,
    progress: Option<Py<PyAny>>,
    threads: Option<usize>,
    tables: Vec<String>,
    rule_functions: Vec<(String, Py<PyAny>)>,
) -> PyResult<(Py<PyDict>, String)> {
    let source = Source::from_py(data, source_name)?;
    let wanted = wanted_tables(&tables);
    let py_rules = PyRules::new(rule_functions);
    let given = py_rules.as_ref();
    let outcome = run_command(
        py, command, &argv, &source, given, write_out, progress, threads, &wanted,
    )
    .map_err(|e| PyRules::take_err(given, e))?;
    outcome_to_py(py, outcome)
}

/// The tables wanted of the five a round writes, in their fixed order.
fn wanted_tables(tables: &[String]) -> Vec<&'static str> {
    ["items", "pairs", "autolabels", "batch", "budget"]
        .into_iter()
        .filter(|t| tables.iter().any(|w| w == t))
        .collect()
}

/// An outcome as Python sees it: pyarrow tables by name, and summary.json's text.
fn outcome_to_py(py: Python<'_>, outcome: Outcome) -> PyResult<(Py<PyDict>, String)> {
    let dict = PyDict::new(py);
    for (name, batch) in outcome.tables {
        let schema = batch.schema();
        let table = Table::try_new(vec![batch], schema)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        dict.set_item(name, table.into_pyarrow(py)?)?;
    }
    Ok((dict.unbind(), outcome.summary))
}

/// `plan_rows(argv, provider, n, dim, graph, pairs, ...)`: `plan` on a driver that never
/// holds the pool's matrix. The rows stay on the cluster and are reached through `provider`
/// (map tasks over its shards, see `rows::ClusterRows`); the graph (a [`graph::PoolGraph`],
/// which the round takes) and the near-duplicate pairs (a list of record batches with `a`, `b`
/// uint32 and `cosine` float64, read in place through the Arrow C interface and emptied) are
/// the cluster's;
/// `pool_key` (its shards' content hash) names the pool's cached rarity clusters. The ids and
/// labels are read from `argv`'s paths, or from `data` (an Arrow stream of those columns,
/// named `source_name` in messages) when the files are not local. Returns what
/// `run("plan", ...)` returns, without the tables as large as the pool (`items`, `pairs`,
/// `autolabels`: read their files).
#[pyfunction]
#[pyo3(signature = (argv, provider, n, dim, graph, pairs, pool_key=None, write_out=true, progress=None, threads=None, tables=Vec::new(), data=None, source_name="<table>"))]
#[allow(clippy::too_many_arguments)]
fn plan_rows(
    py: Python<'_>,
    argv: Vec<String>,
    provider: Py<PyAny>,
    n: usize,
    dim: usize,
    mut graph: PyRefMut<'_, graph::PoolGraph>,
    pairs: Bound<'_, PyList>,
    pool_key: Option<String>,
    write_out: bool,
    progress: Option<Py<PyAny>>,
    threads: Option<usize>,
    tables: Vec<String>,
    data: Option<PyArrowType<RecordBatchStreamReader>>,
    source_name: &str,
) -> PyResult<(Py<PyDict>, String)> {
    let args: cli::plan::Cmd = parse("plan", &argv)?;
    let source = Source::from_py(data, source_name)?;
    let graph = graph.take()?;
    if graph.len() != n {
        return Err(InputError::new_err("plan_rows: the graph is not n × k"));
    }
    let batches = pairs
        .iter()
        .map(|b| RecordBatch::from_pyarrow_bound(&b))
        .collect::<PyResult<Vec<_>>>()?;
    // The caller keeps no other reference: emptying the list lets each batch go once copied.
    pairs.call_method0("clear")?;
    let pairs = dup_pairs(batches.into_iter())?;
    let wanted = wanted_tables(&tables);
    let output = items::ClusterOutput::new(provider.clone_ref(py));
    let outcome = detached(py, threads, progress, |p| {
        let params = args.params()?;
        let cmd = cli::plan::Cmd::command(&args);
        let mut timings = Timings::default();
        let rows = rows::cluster_rows(provider, n, dim);
        let cluster = rows::ClusterGraph {
            graph,
            pairs,
            pool_key,
        };
        let load = |opts: &dataset::LoadOptions| source.load_or_read(&cmd.input.data, opts);
        let pool = rows::cluster_pool(&cmd, &params.dedup, rows, cluster, &load, &mut timings)?;
        let run = RoundRun {
            cmd: &cmd,
            params: &params,
            write_out,
            tables: &wanted,
            progress: p,
            cluster: Some(ClusterPlan {
                args: &args,
                output: &output,
            }),
        };
        round_outcome(&args, &run, &pool, &mut timings)
    })?;
    outcome_to_py(py, outcome)
}

/// The cluster's near-duplicate pairs from record batches with `a`, `b` (uint32) and `cosine`
/// (float64) columns, copied once, into the round's own type.
fn dup_pairs(batches: impl Iterator<Item = RecordBatch>) -> PyResult<Vec<DupPair>> {
    let mut pairs = Vec::new();
    for batch in batches {
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| {
                InputError::new_err(format!("plan_rows: the pairs have no `{name}` column"))
            })
        };
        let wrong = |name: &str| InputError::new_err(format!("plan_rows: pairs `{name}` type"));
        let (a, b, cos) = (column("a")?, column("b")?, column("cosine")?);
        let a = a
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| wrong("a"))?;
        let b = b
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| wrong("b"))?;
        let cos = cos
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| wrong("cosine"))?;
        if a.null_count() + b.null_count() + cos.null_count() > 0 {
            return Err(InputError::new_err("plan_rows: the pairs have nulls"));
        }
        pairs.reserve(batch.num_rows());
        pairs.extend(
            (a.values().iter().zip(b.values().iter()))
                .zip(cos.values().iter())
                .map(|((&a, &b), &cosine)| DupPair { a, b, cosine }),
        );
    }
    Ok(pairs)
}

/// Parses `argv` for `command` and runs it without the GIL (see [`run`]).
#[allow(clippy::too_many_arguments)]
fn run_command(
    py: Python<'_>,
    command: &str,
    argv: &[String],
    source: &Source,
    given: Option<&PyRules>,
    write_out: bool,
    progress: Option<Py<PyAny>>,
    threads: Option<usize>,
    wanted: &[&'static str],
) -> PyResult<Outcome> {
    Ok(match command {
        "plan" => {
            let args: cli::plan::Cmd = parse("plan", argv)?;
            detached(py, threads, progress, |p| {
                run_round(&args, source, given, write_out, wanted, p)
            })?
        }
        "score" => {
            let args: cli::score::Cmd = parse("score", argv)?;
            detached(py, threads, progress, |p| {
                run_round(&args, source, given, write_out, wanted, p)
            })?
        }
        "autolabel" => {
            let args: cli::autolabel::Cmd = parse("autolabel", argv)?;
            detached(py, threads, progress, |p| {
                run_round(&args, source, given, write_out, wanted, p)
            })?
        }
        "select" => {
            let args: cli::select::Cmd = parse("select", argv)?;
            detached(py, threads, progress, |p| {
                run_round(&args, source, given, write_out, wanted, p)
            })?
        }
        "budget" => {
            let args: cli::budget::Cmd = parse("budget", argv)?;
            detached(py, threads, progress, |p| {
                run_round(&args, source, given, write_out, wanted, p)
            })?
        }
        "dedup" => {
            let args: cli::dedup::Cmd = parse("dedup", argv)?;
            detached(py, threads, progress, |p| {
                run_dedup(&args, source, write_out, p)
            })?
        }
        "rules" => {
            let args: cli::rules::Cmd = parse("rules", argv)?;
            detached(py, threads, progress, |p| {
                run_rules(&args, source, given, write_out, p)
            })?
        }
        "simulate" => {
            let args: cli::simulate::Cmd = parse("simulate", argv)?;
            detached(py, threads, progress, |p| {
                run_simulate(&args, source, given, write_out, p)
            })?
        }
        other => return Err(PyValueError::new_err(format!("unknown command '{other}'"))),
    })
}

/// `export(argv)`: `labelwise export` with the CLI's flags; returns the file written and the
/// number of items in it.
#[pyfunction]
fn export(py: Python<'_>, argv: Vec<String>) -> PyResult<(PathBuf, usize)> {
    let args: cli::export::Cmd = parse("export", &argv)?;
    detached(py, None, None, |_| {
        let params = args.params()?;
        labelwise::output::export::export(&args.dir, args.output.as_deref(), &params)
    })
}

/// `expand_paths(paths)`: the Parquet files a `DATA` argument stands for, in the order the CLI
/// reads them (folders recursively, sorted, hidden entries skipped), so a cluster numbers the
/// pool's rows as the single-machine run does.
#[pyfunction]
fn expand_paths(paths: Vec<PathBuf>) -> PyResult<Vec<PathBuf>> {
    dataset::expand_paths(&paths).map_err(py_err)
}

/// `normalized_embeddings(data, source_name, id_col, embedding_col)`: one shard of a pool
/// (an Arrow stream), validated and L2-normalised exactly as the loader does it (same checks,
/// same messages naming `source_name`), as `(f32 bytes row-major, rows, dim)`.
#[pyfunction]
fn normalized_embeddings(
    py: Python<'_>,
    data: PyArrowType<RecordBatchStreamReader>,
    source_name: &str,
    id_col: &str,
    embedding_col: &str,
) -> PyResult<(Vec<u8>, usize, usize)> {
    let source = Source::from_py(Some(data), source_name)?;
    let opts = dataset::LoadOptions {
        id_col: id_col.to_string(),
        embedding_col: embedding_col.to_string(),
        label_col: None,
        carry_extra: false,
        ..dataset::LoadOptions::default()
    };
    detached(py, Some(1), None, |_| {
        let data = source.load(&opts)?;
        let (n, d) = data.embeddings.dim();
        Ok((f32_bytes(data.embeddings.iter().copied()), n, d))
    })
}

/// Little-endian bytes of f32 values (what numpy's `frombuffer(dtype="<f4")` reads).
fn f32_bytes(v: impl Iterator<Item = f32>) -> Vec<u8> {
    v.flat_map(f32::to_le_bytes).collect()
}

/// `n × d` f32 matrix from little-endian bytes; `InputError` when the length does not match.
fn matrix(bytes: &[u8], d: usize, what: &str) -> PyResult<Array2<f32>> {
    if d == 0 || !bytes.len().is_multiple_of(4 * d) {
        return Err(InputError::new_err(format!(
            "{what}: {} bytes is not a whole number of {d}-dim f32 rows",
            bytes.len()
        )));
    }
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Array2::from_shape_vec((v.len() / d, d), v).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// u32 values from little-endian bytes.
fn u32s(bytes: &[u8], what: &str) -> PyResult<Vec<u32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(InputError::new_err(format!("{what}: not whole u32 values")));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// `kmeans_sample_rows(pool_rows, k, seed)`: the rows the library's k-means fit
/// (`index::kmeans::fit_sample_rows`) samples from a pool, as u64 bytes; `None` when it fits on
/// every row. The driver gathers exactly these rows, so its partition is one machine's.
#[pyfunction]
fn kmeans_sample_rows(pool_rows: usize, k: usize, seed: u64) -> Option<Vec<u8>> {
    kmeans::fit_sample_rows(pool_rows, k, seed).map(|rows| {
        rows.iter()
            .flat_map(|&r| (r as u64).to_le_bytes())
            .collect()
    })
}

/// `kmeans_fit(sample, dim, pool_rows, k, iters, seed, threads)`: the centroids of the library's
/// spherical k-means (`index::kmeans::fit_centroids`) from the rows `kmeans_sample_rows` names,
/// as f32 bytes.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn kmeans_fit(
    py: Python<'_>,
    sample: Vec<u8>,
    dim: usize,
    pool_rows: usize,
    k: usize,
    iters: usize,
    seed: u64,
    threads: Option<usize>,
) -> PyResult<Vec<u8>> {
    let x = matrix(&sample, dim, "kmeans_fit sample")?;
    detached(py, threads, None, |_| {
        let c = kmeans::fit_centroids(x.view(), pool_rows, k, iters, seed)?;
        Ok(f32_bytes(c.iter().copied()))
    })
}

/// `kmeans_refine_steps(pool_rows, k)`: the Lloyd steps over every row that follow the fit
/// (`index::kmeans::refine_steps`), so the cluster refines exactly as one machine does.
#[pyfunction]
fn kmeans_refine_steps(pool_rows: usize, k: usize) -> usize {
    kmeans::refine_steps(pool_rows, k)
}

/// `centroid_sums(rows, centroids, dim, threads)`: one shard's half of a Lloyd step
/// (`index::kmeans::centroid_sums`): `(i64 fixed-point sums bytes k × d, u64 counts bytes)`;
/// integer sums, so the driver's numpy int64 addition is exact in any shard order.
#[pyfunction]
fn centroid_sums(
    py: Python<'_>,
    rows: Vec<u8>,
    centroids: Vec<u8>,
    dim: usize,
    threads: Option<usize>,
) -> PyResult<(Vec<u8>, Vec<u8>)> {
    let x = matrix(&rows, dim, "centroid_sums rows")?;
    let c = matrix(&centroids, dim, "centroid_sums centroids")?;
    detached(py, threads, None, |_| {
        let s = kmeans::centroid_sums(x.view(), c.view())?;
        Ok((
            s.sums.iter().flat_map(|v| v.to_le_bytes()).collect(),
            s.counts.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ))
    })
}

/// `centroids_from_sums(sums, counts, previous, dim)`: the driver's reduce
/// (`index::kmeans::centroids_from_sums`) over the shards' summed sums.
#[pyfunction]
fn centroids_from_sums(
    sums: Vec<u8>,
    counts: Vec<u8>,
    previous: Vec<u8>,
    dim: usize,
) -> PyResult<Vec<u8>> {
    let prev = matrix(&previous, dim, "centroids_from_sums previous")?;
    let total = kmeans::CentroidSums {
        sums: sums
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        counts: counts
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    };
    let c = kmeans::centroids_from_sums(&total, prev.view()).map_err(py_err)?;
    Ok(f32_bytes(c.iter().copied()))
}

/// `assign_top(rows, centroids, dim, p, threads)`: each row's `p` nearest centroids
/// (`index::kmeans::assign_top`), nearest first, as u32 bytes (rows × p).
#[pyfunction]
fn assign_top(
    py: Python<'_>,
    rows: Vec<u8>,
    centroids: Vec<u8>,
    dim: usize,
    p: usize,
    threads: Option<usize>,
) -> PyResult<(Vec<u8>, usize)> {
    let x = matrix(&rows, dim, "assign_top rows")?;
    let c = matrix(&centroids, dim, "assign_top centroids")?;
    detached(py, threads, None, |_| {
        let top = kmeans::assign_top(x.view(), c.view(), p)?;
        Ok((
            top.ids.iter().flat_map(|v| v.to_le_bytes()).collect(),
            top.p,
        ))
    })
}

/// Little-endian bytes of u32 values.
fn u32_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// f32 values from little-endian bytes.
fn f32s(bytes: &[u8], what: &str) -> PyResult<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(InputError::new_err(format!("{what}: not whole f32 values")));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Pairs as `(a u32, b u32, cosine f64)` little-endian bytes.
fn pair_bytes(pairs: &[shard::GroupPair]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let a: Vec<u32> = pairs.iter().map(|q| q.a).collect();
    let b: Vec<u32> = pairs.iter().map(|q| q.b).collect();
    (
        u32_bytes(&a),
        u32_bytes(&b),
        pairs.iter().flat_map(|q| q.cosine.to_le_bytes()).collect(),
    )
}

/// `search_group(rows, lists, nlist, k, threads)`: one group of lists
/// (`index::shard::Group::search`) from the Arrow rows of its lists and their halo (anything
/// with `__arrow_c_stream__`, columns `row` int64, `home` int32, `probes` and `embedding`
/// fixed-size lists of int32 and float32), in any order; the rows whose home is one of `lists`
/// are the owners. The embeddings go from Arrow into one matrix in global row order, the only
/// copy, so a task's memory is about its loaded rows once.
/// Returns `(owner ids u32, neighbours u32, cosines f32)` as little-endian bytes.
#[pyfunction]
#[pyo3(signature = (rows, lists, nlist, k, threads=None))]
fn search_group(
    py: Python<'_>,
    rows: PyArrowType<RecordBatchStreamReader>,
    lists: Vec<u32>,
    nlist: usize,
    k: usize,
    threads: Option<usize>,
) -> PyResult<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let loaded = LoadedRows::from_stream(rows.0, &lists)?;
    detached(py, threads, None, |_| {
        let g = shard::Group {
            emb: loaded.emb.view(),
            ids: &loaded.ids,
            home: &loaded.home,
            owner: &loaded.owner,
            probes: &loaded.probes,
            p: loaded.p,
            nlist,
        };
        let r = g.search(k)?;
        Ok((
            u32_bytes(&r.rows),
            u32_bytes(&r.neighbors),
            f32_bytes(r.cosines.iter().copied()),
        ))
    })
}

/// A search group's rows as the kernel takes them: sorted by global row, owners flagged.
struct LoadedRows {
    emb: Array2<f32>,
    ids: Vec<u32>,
    home: Vec<u32>,
    owner: Vec<bool>,
    probes: Vec<u32>,
    p: usize,
}

/// The columns of one record batch of a list file, typed.
struct ListColumns<'a> {
    row: &'a arrow_array::Int64Array,
    home: &'a arrow_array::Int32Array,
    probes: &'a arrow_array::FixedSizeListArray,
    emb: &'a arrow_array::FixedSizeListArray,
    /// The probes' and the embeddings' flat values.
    probe_values: &'a [i32],
    emb_values: &'a [f32],
}

impl<'a> ListColumns<'a> {
    fn of(batch: &'a RecordBatch) -> PyResult<ListColumns<'a>> {
        fn typed<'b, T: 'static>(c: &'b dyn arrow_array::Array, name: &str) -> PyResult<&'b T> {
            if c.null_count() > 0 {
                return Err(InputError::new_err(format!(
                    "search_group rows: nulls in '{name}'"
                )));
            }
            c.as_any().downcast_ref::<T>().ok_or_else(|| {
                InputError::new_err(format!(
                    "search_group rows: '{name}' has type {}",
                    c.data_type()
                ))
            })
        }
        let col = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| {
                InputError::new_err(format!("search_group rows: no column '{name}'"))
            })
        };
        let probes: &arrow_array::FixedSizeListArray = typed(col("probes")?.as_ref(), "probes")?;
        let emb: &arrow_array::FixedSizeListArray = typed(col("embedding")?.as_ref(), "embedding")?;
        let probe_values: &arrow_array::Int32Array = typed(probes.values().as_ref(), "probes")?;
        let emb_values: &arrow_array::Float32Array = typed(emb.values().as_ref(), "embedding")?;
        Ok(ListColumns {
            row: typed(col("row")?.as_ref(), "row")?,
            home: typed(col("home")?.as_ref(), "home")?,
            probes,
            emb,
            probe_values: probe_values.values(),
            emb_values: emb_values.values(),
        })
    }
}

impl LoadedRows {
    /// Reads every batch, then copies each row once, in increasing global row order.
    fn from_stream(reader: RecordBatchStreamReader, lists: &[u32]) -> PyResult<LoadedRows> {
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| InputError::new_err(format!("search_group rows: {e}")))?;
        let cols = batches
            .iter()
            .map(ListColumns::of)
            .collect::<PyResult<Vec<_>>>()?;
        let (Some(first), m) = (
            cols.first(),
            cols.iter().map(|c| c.row.len()).sum::<usize>(),
        ) else {
            return Err(InputError::new_err("search_group rows: no rows"));
        };
        let (p, d) = (
            first.probes.value_length() as usize,
            first.emb.value_length() as usize,
        );
        if cols
            .iter()
            .any(|c| c.probes.value_length() as usize != p || c.emb.value_length() as usize != d)
        {
            return Err(InputError::new_err(
                "search_group rows: batches of different widths",
            ));
        }
        // (global row, batch, index in the batch), sorted by global row.
        let mut order: Vec<(u32, u32, u32)> = Vec::with_capacity(m);
        for (b, c) in cols.iter().enumerate() {
            for (i, &r) in c.row.values().iter().enumerate() {
                let r = u32::try_from(r)
                    .map_err(|_| InputError::new_err(format!("search_group rows: row {r}")))?;
                order.push((r, b as u32, i as u32));
            }
        }
        order.sort_unstable();
        let own: std::collections::HashSet<u32> = lists.iter().copied().collect();
        let mut out = LoadedRows {
            emb: Array2::zeros((m, d)),
            ids: Vec::with_capacity(m),
            home: Vec::with_capacity(m),
            owner: Vec::with_capacity(m),
            probes: Vec::with_capacity(m * p),
            p,
        };
        for (dst, &(r, b, i)) in out.emb.outer_iter_mut().zip(&order) {
            let (c, i) = (&cols[b as usize], i as usize);
            let home = c.home.value(i) as u32;
            out.ids.push(r);
            out.home.push(home);
            out.owner.push(own.contains(&home));
            let po = c.probes.value_offset_at(i);
            out.probes
                .extend(c.probe_values[po..po + p].iter().map(|&v| v as u32));
            let eo = c.emb.value_offset_at(i);
            for (x, &v) in dst.into_iter().zip(&c.emb_values[eo..eo + d]) {
                *x = v;
            }
        }
        Ok(out)
    }
}

/// What `refine_group` returns: neighbours, cosines, pairs `(a, b, cosine)`, saturated owners.
type RefineBytes = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

/// `refine_group(rows, dim, ids, searched_rows, neighbors, cosines, k, owners, threshold,
/// threads)`: the neighbour-of-neighbour pass for the global rows `owners`
/// (`index::shard::Refine`), given the searched lists of the owners and of their first
/// neighbours, and the unit rows (`ids`, increasing) of every candidate and every owner's
/// neighbour. With a threshold, also the pairs the refined lists link and the saturated owners
/// (`index::shard::threshold_pairs`). Returns `(neighbours u32, cosines f32, pair a u32, pair b
/// u32, pair cosine f64, saturated u32)` bytes, neighbours in owner order.
#[pyfunction]
#[pyo3(signature = (rows, dim, ids, searched_rows, neighbors, cosines, k, owners, threshold=None, threads=None))]
#[allow(clippy::too_many_arguments)]
fn refine_group(
    py: Python<'_>,
    rows: Vec<u8>,
    dim: usize,
    ids: Vec<u8>,
    searched_rows: Vec<u8>,
    neighbors: Vec<u8>,
    cosines: Vec<u8>,
    k: usize,
    owners: Vec<u8>,
    threshold: Option<f64>,
    threads: Option<usize>,
) -> PyResult<RefineBytes> {
    let x = matrix(&rows, dim, "refine_group rows")?;
    drop(rows);
    let ids = u32s(&ids, "refine_group ids")?;
    let searched = u32s(&searched_rows, "refine_group searched_rows")?;
    let neighbors = u32s(&neighbors, "refine_group neighbors")?;
    let owners = u32s(&owners, "refine_group owners")?;
    let cosines = f32s(&cosines, "refine_group cosines")?;
    detached(py, threads, None, |_| {
        let r = shard::Refine {
            emb: x.view(),
            ids: &ids,
            rows: &searched,
            neighbors: &neighbors,
            cosines: &cosines,
            k,
        };
        let (nb, cs) = r.refine(&owners)?;
        let tp = match threshold {
            Some(t) => shard::threshold_pairs(x.view(), &ids, &owners, &nb, &cs, k, t)?,
            None => shard::ThresholdPairs {
                pairs: Vec::new(),
                saturated: Vec::new(),
            },
        };
        let (a, b, c) = pair_bytes(&tp.pairs);
        Ok((
            u32_bytes(&nb),
            f32_bytes(cs.into_iter()),
            a,
            b,
            c,
            u32_bytes(&tp.saturated),
        ))
    })
}

/// `tile_pairs(first_rows, first_ids, second_rows, second_ids, dim, threshold, threads)`: one
/// tile of the exact search among saturated items (`index::shard::tile_pairs`): every pair
/// `a` from the first block, `b` from the second, `a < b`, with cosine ≥ `threshold`.
/// Returns `(a u32, b u32, cosine f64)` bytes, sorted by `(a, b)`.
#[pyfunction]
#[pyo3(signature = (first_rows, first_ids, second_rows, second_ids, dim, threshold, threads=None))]
#[allow(clippy::too_many_arguments)]
fn tile_pairs(
    py: Python<'_>,
    first_rows: Vec<u8>,
    first_ids: Vec<u8>,
    second_rows: Vec<u8>,
    second_ids: Vec<u8>,
    dim: usize,
    threshold: f64,
    threads: Option<usize>,
) -> PyResult<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let xa = matrix(&first_rows, dim, "tile_pairs first rows")?;
    let xb = matrix(&second_rows, dim, "tile_pairs second rows")?;
    let ia = u32s(&first_ids, "tile_pairs first ids")?;
    let ib = u32s(&second_ids, "tile_pairs second ids")?;
    detached(py, threads, None, |_| {
        let pairs = shard::tile_pairs((xa.view(), &ia), (xb.view(), &ib), threshold)?;
        Ok(pair_bytes(&pairs))
    })
}

/// `cache_graph(argv, graph)`: loads the pool `plan`'s flags `argv` name (as the CLI does, or
/// from `data`, an Arrow stream named `source_name`, when the files are not local) and stores
/// `graph` (a [`graph::PoolGraph`] it takes) in its cache, under the key a `plan` with these
/// flags looks up (`index::cached::store_graph`). Returns `(key, recall@10, items)`.
#[pyfunction]
#[pyo3(signature = (argv, graph, data=None, source_name="<table>"))]
fn cache_graph(
    py: Python<'_>,
    argv: Vec<String>,
    mut graph: PyRefMut<'_, graph::PoolGraph>,
    data: Option<PyArrowType<RecordBatchStreamReader>>,
    source_name: &str,
) -> PyResult<(String, f64, usize)> {
    let args: cli::plan::Cmd = parse("plan", &argv)?;
    let source = Source::from_py(data, source_name)?;
    let graph = graph.take()?;
    detached(py, None, None, |_| {
        let cmd = cli::plan::Cmd::command(&args);
        let params = cmd.graph.params(cmd.run.seed)?;
        let opts = cmd.input.load_options(false);
        let data = source.load_or_read(&cmd.input.data, &opts)?;
        let choice = CacheChoice::from_flags(
            cmd.run.cache.as_deref(),
            cmd.run.no_cache,
            &cmd.input.data[0],
        );
        let CacheChoice::Dir(dir) = choice else {
            return Err(labelwise::Error::Usage(
                "the distributed plan hands its graph over through the cache: drop --no-cache"
                    .into(),
            ));
        };
        let cache = labelwise::store::cache::Cache::open(&dir)?;
        let route = labelwise::index::IndexKind::Partitioned;
        let (key, recall) =
            cached::store_graph(&cache, data.embeddings.view(), &params, graph, route)?;
        Ok((key, recall, data.len()))
    })
}

/// The extension module.
#[pymodule]
fn _labelwise(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(parameters, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(export, m)?)?;
    m.add_function(wrap_pyfunction!(plan_rows, m)?)?;
    m.add_class::<graph::PoolGraph>()?;
    for f in [
        wrap_pyfunction!(rows::rows_predict, m)?,
        wrap_pyfunction!(rows::rows_nearest_centroids, m)?,
        wrap_pyfunction!(rows::rows_cluster_sums, m)?,
        wrap_pyfunction!(rows::rows_centroid_distance, m)?,
        wrap_pyfunction!(rows::rows_top_k, m)?,
        wrap_pyfunction!(items::items_part, m)?,
        wrap_pyfunction!(items::carried_rows, m)?,
    ] {
        m.add_function(f)?;
    }
    for f in [
        wrap_pyfunction!(expand_paths, m)?,
        wrap_pyfunction!(normalized_embeddings, m)?,
        wrap_pyfunction!(kmeans_sample_rows, m)?,
        wrap_pyfunction!(kmeans_fit, m)?,
        wrap_pyfunction!(kmeans_refine_steps, m)?,
        wrap_pyfunction!(centroid_sums, m)?,
        wrap_pyfunction!(centroids_from_sums, m)?,
        wrap_pyfunction!(assign_top, m)?,
        wrap_pyfunction!(search_group, m)?,
        wrap_pyfunction!(refine_group, m)?,
        wrap_pyfunction!(tile_pairs, m)?,
        wrap_pyfunction!(cache_graph, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
