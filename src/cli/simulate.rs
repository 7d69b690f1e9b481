//! `labelwise simulate DATA --strategy S --batch N --rounds R --out DIR`: replays labeling rounds
//! on a fully labeled dataset, with the same selection code `select` runs.

use clap::Args;

use crate::cli::{
    AutolabelArgs, DedupArgs, GraphArgs, InputArgs, RarityArgs, RoundRulesArgs, RunArgs, SelectArgs,
};
use crate::error::Result;
use crate::index::cached::CacheChoice;
use crate::output::summary::{ClassesFoundAfter, SimulateSummary, Summary};
use crate::output::OutDir;
use crate::progress::Progress;
use crate::round::RoundParams;
use crate::simulate;
use crate::simulate::replay::{replay, setup, split_roles, Replay, Setup, SimulateParams};

/// Flags of `simulate`.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Which embedding and label files to read, and their columns.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output folder, seed, cache and memory limit for the run.
    #[command(flatten)]
    pub run: RunArgs,
    /// Labeling rounds to replay.
    #[arg(long, default_value_t = 15, value_name = "R")]
    pub rounds: usize,
    /// Column naming each row's split (train/val rows form the pool, test rows are scored).
    #[arg(long, default_value = "split", value_name = "NAME")]
    pub split_col: String,
    /// Share of the pool held out: never offered for selection, never auto-labeled, scored
    /// each round as curve.csv's `holdout_accuracy` (the pool's accuracy, which the test rows
    /// need not measure); 0 turns it off.
    #[arg(long, default_value_t = 0.1, value_name = "F")]
    pub holdout: f64,
    /// Batch size, selection strategy and score weights.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Auto-label precision target, model and output formats.
    #[command(flatten)]
    pub autolabel: AutolabelArgs,
    /// How rarity is scored.
    #[command(flatten)]
    pub rarity: RarityArgs,
    /// Near-duplicate threshold and grouping.
    #[command(flatten)]
    pub dedup: DedupArgs,
    /// The users' rules as auto-label candidates.
    #[command(flatten)]
    pub rules: RoundRulesArgs,
    /// How the neighbour graph is built and cached.
    #[command(flatten)]
    pub graph: GraphArgs,
}

impl Cmd {
    /// Library parameters for these flags.
    pub fn params(&self) -> Result<SimulateParams> {
        let seed = self.run.seed;
        crate::cli::args::flag_at_least_1("--rounds", self.rounds)?;
        Ok(SimulateParams {
            rounds: self.rounds,
            split_col: self.split_col.clone(),
            round: RoundParams {
                seed,
                dedup: self.dedup.params()?,
                autolabel: self.autolabel.params(seed)?,
                rarity: self.rarity.params()?,
                select: self.select.params(seed)?,
                ..RoundParams::default()
            },
            graph: self.graph.params(seed)?,
            cache: CacheChoice::from_flags(
                self.run.cache.as_deref(),
                self.run.no_cache,
                &self.input.data[0],
            ),
            holdout: self.holdout,
        })
    }
}

/// Runs `simulate`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let params = args.params()?;
    // A rules file that cannot parse fails before the graph is built.
    let rules = args.rules.inputs();
    rules.check_early()?;
    let opts = args.input.load_options(true);
    let mut setup = setup(
        &args.input.data,
        &opts,
        args.run.max_memory,
        &params,
        progress,
    )?;
    if rules.any() {
        setup.rules = Some(simulate::replay::pool_rules(&mut setup, &rules)?);
    }
    let replay = replay(&mut setup, &params, &params.round.select, progress)?;
    let out = OutDir::create(&args.run.out)?;
    write(&setup, &replay, &out)?;
    summary(args, &setup, &replay).write(&out)?;
    Ok(())
}

/// Writes `simulate`'s files into `out` (all but summary.json): curve.csv, selections.csv,
/// autolabels.csv and split.csv.
pub fn write(setup: &Setup, replay: &Replay, out: &OutDir) -> Result<()> {
    let Replay {
        rows,
        selections,
        autolabels,
        ..
    } = replay;
    let Setup {
        prepared,
        split,
        data,
        ..
    } = setup;
    out.write_csv(
        "curve.csv",
        [
            "round",
            "labels",
            "accuracy",
            "holdout_accuracy",
            "macro_f1",
            "classes_found",
            "auto_coverage",
            "auto_precision",
            "select_seconds",
        ],
        rows.iter().map(|row| {
            [
                row.round.to_string(),
                row.labels.to_string(),
                format!("{:.6}", row.accuracy),
                row.holdout_accuracy
                    .map(|a| format!("{a:.6}"))
                    .unwrap_or_default(),
                format!("{:.6}", row.macro_f1),
                row.classes_found.to_string(),
                format!("{:.6}", row.auto_coverage),
                row.auto_precision
                    .map(|p| format!("{p:.6}"))
                    .unwrap_or_default(),
                format!("{:.3}", row.select_seconds),
            ]
        }),
    )?;
    out.write_csv(
        "selections.csv",
        ["round", "id", "reason"],
        selections.iter().map(|(round, i, reason)| {
            [
                round.to_string(),
                prepared.data.ids[*i].clone(),
                reason.clone(),
            ]
        }),
    )?;
    out.write_csv(
        "autolabels.csv",
        ["round", "id", "label", "source"],
        autolabels.iter().map(|a| {
            [
                a.round.to_string(),
                prepared.data.ids[a.row].clone(),
                data.classes[a.label as usize].clone(),
                a.source.to_string(),
            ]
        }),
    )?;
    let roles = split_roles(split, data.len());
    out.write_csv(
        "split.csv",
        ["id", "split"],
        data.ids
            .iter()
            .zip(&roles)
            .map(|(id, role)| [id.as_str(), role]),
    )?;
    Ok(())
}

/// `simulate`'s summary.json.
pub fn summary<'a>(args: &Cmd, setup: &'a Setup, replay: &'a Replay) -> Summary<'a> {
    let Setup {
        prepared,
        split,
        full_pool,
        timings,
        seed,
        data,
        ..
    } = setup;
    let rows = &replay.rows;
    let n_classes = data.classes.len();
    Summary {
        graph: Some(prepared.graph.summary(prepared.data.len())),
        simulate: Some(SimulateSummary {
            strategy: args.select.strategy,
            batch: args.select.batch,
            rounds: args.rounds,
            seed: *seed,
            split: split.method.clone(),
            pool: split.pool.len(),
            test: split.test.len(),
            classes: n_classes,
            full_pool_accuracy: full_pool.0,
            full_pool_macro_f1: full_pool.1,
            aulc: simulate::aulc(rows),
            labels_to_95pct_of_full: simulate::labels_to_reach(rows, full_pool.0, 0.95),
            classes_found_after: ClassesFoundAfter::from_curve(rows),
            mean_select_seconds: rows.iter().map(|r| r.select_seconds).sum::<f64>()
                / rows.len().max(1) as f64,
            curve: rows,
            coverage_drops: &replay.coverage_drops,
        }),
        ..Summary::new("simulate", timings)
    }
}
