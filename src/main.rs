//! The `labelwise` binary: parse flags, dispatch to a subcommand, turn errors into one line on
//! stderr and an exit code (0 success, 2 bad usage or input, 1 internal error).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use labelwise::cli;
use labelwise::progress::Progress;
use labelwise::Error;

/// mimalloc keeps freed pages for reuse; see Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Decides what humans should label next, and auto-labels the rest at a precision you choose.
#[derive(Debug, Parser)]
#[command(name = "labelwise", version, about, propagate_version = true)]
struct Cli {
    /// Worker threads [default: all cores]. Outputs do not depend on it.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    /// No progress bars on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The main job: duplicates, rarity, auto-labels, the next batch, the budget and report.html.
    Plan(cli::plan::Cmd),
    /// Rows, dimension, labeled share, class counts and problems of a pool.
    Inspect(cli::inspect::InspectArgs),
    /// Near-duplicate pairs (cosine ≥ T) and groups, each to be labeled once.
    Dedup(cli::dedup::Cmd),
    /// Auto-label what the labels certify at the target precision; route the rest to humans.
    Autolabel(cli::autolabel::Cmd),
    /// Rarity and under-representation score per item, with reasons.
    Score(cli::score::Cmd),
    /// The next batch for humans, ranked, with reasons; one per near-duplicate group.
    Select(cli::select::Cmd),
    /// Human labels, hours and cost left, and the projection to a target.
    Budget(cli::budget::Cmd),
    /// Replay labeling rounds on a fully labeled dataset to compare strategies.
    Simulate(cli::simulate::Cmd),
    /// Analyse labeling rules: coverage, overlaps, conflicts, accuracy; majority-vote labels.
    Rules(cli::rules::Cmd),
    /// Convert a run's outputs for labeling tools (Label Studio, SageMaker, Prodigy, JSONL, CSV).
    Export(cli::export::Cmd),
    /// Send a round's tasks to a labeling tool's server (Label Studio).
    Push(cli::push::Cmd),
    /// Fetch the annotations from a labeling tool's server as a file --labels reads.
    Pull(cli::pull::Cmd),
}

fn run(cli: Cli) -> Result<(), Error> {
    if let Some(n) = cli.threads {
        if n == 0 {
            return Err(Error::Usage("--threads must be at least 1".into()));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(Error::internal("thread pool"))?;
    }
    let progress = Progress::new(cli.quiet);
    match &cli.command {
        Command::Plan(args) => cli::plan::run(args, progress),
        Command::Inspect(args) => cli::inspect::run(args, progress),
        Command::Dedup(args) => cli::dedup::run(args, progress),
        Command::Autolabel(args) => cli::autolabel::run(args, progress),
        Command::Score(args) => cli::score::run(args, progress),
        Command::Select(args) => cli::select::run(args, progress),
        Command::Budget(args) => cli::budget::run(args, progress),
        Command::Simulate(args) => cli::simulate::run(args, progress),
        Command::Rules(args) => cli::rules::run(args, progress),
        Command::Export(args) => cli::export::run(args, progress),
        Command::Push(args) => cli::push::run(args, progress),
        Command::Pull(args) => cli::pull::run(args, progress),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Panics become one `error:` line and exit code 1 (below); set LABELWISE_BACKTRACE=1 to get
    // Rust's own report (with RUST_BACKTRACE for the trace) when debugging.
    if std::env::var_os("LABELWISE_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            eprintln!("error: internal error: {msg} (please report this)");
            ExitCode::from(1)
        }
    }
}
