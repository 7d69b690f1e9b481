//! `labelwise plan DATA --out DIR`: the round in one pass over one cached graph — duplicates,
//! rarity, auto-labels, the batch, the budget — and report.html to read before labeling.

use clap::Args;

use crate::cli::{
    AutolabelArgs, BudgetArgs, DedupArgs, GraphArgs, HistoryArgs, InputArgs, RarityArgs,
    RoundCommand, RoundRulesArgs, RunArgs, SelectArgs,
};
use crate::data::dataset::CarriedRows;
use crate::error::Result;
use crate::output::report::{
    self, AutolabelView, BatchRow, BudgetView, DuplicatesView, FinishView, ReportData,
};
use crate::output::round_files;
use crate::output::OutDir;
use crate::progress::Progress;
use crate::round::autolabel::Route;
use crate::round::budget::BudgetOutcome;
use crate::round::{route_name, Round, RoundParams, Stages};

/// Flags of `plan`: every stage's flags.
#[derive(Debug, Args)]
pub struct Cmd {
    /// Which embedding and label files to read, and their columns.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output folder, seed, cache and memory limit for the run.
    #[command(flatten)]
    pub run: RunArgs,
    /// The round history folder.
    #[command(flatten)]
    pub history: HistoryArgs,
    /// The users' rules as an auto-label route.
    #[command(flatten)]
    pub rules: RoundRulesArgs,
    /// Batch size, selection strategy and score weights.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Auto-label precision target, model and output formats.
    #[command(flatten)]
    pub autolabel: AutolabelArgs,
    /// Labeling cost and time, review share and targets for the projection.
    #[command(flatten)]
    pub budget: BudgetArgs,
    /// Near-duplicate threshold and grouping.
    #[command(flatten)]
    pub dedup: DedupArgs,
    /// How rarity is scored.
    #[command(flatten)]
    pub rarity: RarityArgs,
    /// How the neighbour graph is built and cached.
    #[command(flatten)]
    pub graph: GraphArgs,
}

impl Cmd {
    /// The round's parameters, from these flags.
    pub fn params(&self) -> Result<RoundParams> {
        let seed = self.run.seed;
        Ok(RoundParams {
            seed,
            dedup: self.dedup.params()?,
            autolabel: self.autolabel.params(seed)?,
            rarity: self.rarity.params()?,
            select: self.select.params(seed)?,
            budget: self
                .budget
                .params(self.select.batch, self.select.audit_share)?,
            target_coverage: self.budget.target_coverage,
        })
    }

    /// What `plan` reads and runs: every stage, carried columns kept.
    pub fn command(&self) -> RoundCommand<'_> {
        RoundCommand {
            name: "plan",
            input: &self.input,
            run: &self.run,
            graph: &self.graph,
            carry_extra: true,
            history: self.history.history.as_deref(),
            rules: self.rules.inputs(),
            record: true,
            stages: Stages::ALL,
        }
    }

    /// Writes `plan`'s files for `round` into `out` (all but summary.json).
    pub fn write(&self, round: &Round, out: &OutDir) -> Result<()> {
        out.write_parquet("items.parquet", &round_files::items_table(round)?)?;
        self.write_but_items(round, out, &round_files::picked_carried(round)?)
    }

    /// Every file [`Cmd::write`] writes but items.parquet, the picks' carried columns given
    /// (`picked`, in rank order): a driver that never loaded the carried columns reads them
    /// where the pool is, and writes items.parquet in parts there.
    pub fn write_but_items(&self, round: &Round, out: &OutDir, picked: &CarriedRows) -> Result<()> {
        round_files::write_duplicates(round, out)?;
        round_files::write_autolabels(round, out, &self.autolabel.formats)?;
        round_files::write_batch(round, out, picked)?;
        round_files::write_budget(round, out)?;
        out.write_with("report.html", |w| {
            use std::io::Write;
            w.write_all(report::render(&report_data(round, picked)).as_bytes())
                .map_err(|e| crate::Error::io("report.html", e))
        })?;
        Ok(())
    }
}

/// Runs `plan`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let params = args.params()?;
    crate::cli::run_round(args.command(), &params, progress, |round, out| {
        args.write(round, out)
    })
}

/// The page's data, from the round's results (`picked`: the picks' carried columns).
fn report_data(round: &Round, picked: &CarriedRows) -> ReportData {
    let data = round.data();
    let mut r = ReportData {
        inputs: data.files.iter().map(|f| f.display().to_string()).collect(),
        items: data.len(),
        dimension: round.pool.rows().n_cols(),
        label_merge: data.label_merge.clone(),
        rules: round.rules.as_ref().map(|r| r.analysis.clone()),
        ..ReportData::default()
    };
    if let Some(a) = &round.autolabel {
        r.routes = [Route::Labeled, Route::Auto, Route::Duplicate, Route::Human]
            .iter()
            .map(|&route| {
                (
                    route_name(route).to_string(),
                    a.route.iter().filter(|&&x| x == route).count(),
                )
            })
            .collect();
        let s = &a.summary;
        let chosen = s.global.as_ref().or(s.shared.as_ref());
        r.autolabel = Some(AutolabelView {
            target_precision: s.target_precision,
            auto_labeled: s.counts.auto,
            duplicate_labeled: s.counts.duplicate,
            estimated_precision: chosen.map(|t| t.precision),
            precision_lower_bound: chosen.map(|t| t.lower_bound),
            threshold: chosen.map(|t| t.threshold as f64),
            note: s.message.clone(),
        });
    }
    let preview_col = picked
        .fields
        .iter()
        .position(|f| f.name() == "text")
        .or_else(|| (!picked.fields.is_empty()).then_some(0));
    if let Some(sel) = &round.selection {
        r.batch = sel
            .picked
            .iter()
            .enumerate()
            .map(|(rank, &i)| BatchRow {
                rank: rank + 1,
                id: data.ids[i as usize].clone(),
                score: sel.score[rank],
                reasons: sel.reasons[rank].clone(),
                preview: preview_col
                    .map(|c| picked.text(c, rank).chars().take(120).collect())
                    .unwrap_or_default(),
            })
            .collect();
        if data.labeled_count() == 0 {
            r.notes.push(
                "No labels yet: this batch covers the data (one typical item per cluster) so the first round reaches as many classes as possible.".into(),
            );
        }
    }
    if let Some(d) = &round.duplicates {
        let s = d.summary();
        r.duplicates = Some(DuplicatesView {
            threshold: d.threshold as f32,
            pairs: s.pairs,
            groups_with_duplicates: s.groups_with_duplicates,
            items_in_groups: s.items_in_groups,
            labels_saved: s.labels_saved,
        });
    }
    if let Some(rar) = &round.rarity {
        r.rarity = rar.rarity.clone();
    }
    r.budget = round.budget.as_ref().map(budget_view);
    r
}

/// The report's budget section: the advice, the way to the accuracy target, and the projection.
fn budget_view(b: &BudgetOutcome) -> BudgetView {
    let mut lines = vec![b.advice.text.clone()];
    if let Some(t) = &b.accuracy_target {
        if let (Some(m), Some(lo), Some(cost)) = (t.more_labels, t.more_labels_low, t.cost) {
            lines.push(format!(
                "To reach accuracy {:.3}: about {:.0} more labels (at least {:.0}{}), {:.2} {} and {:.1} hours.",
                t.target,
                m,
                lo,
                t.more_labels_high
                    .map(|h| format!(", at most {h:.0}"))
                    .unwrap_or_default(),
                cost,
                b.params.currency,
                t.hours.unwrap_or(0.0)
            ));
        }
    }
    let mut projection = vec![(
        0usize,
        b.accuracy_curve
            .fit
            .map(|l| l.at(b.now.labeled as f64))
            .unwrap_or(0.0),
        b.coverage_curve
            .fit
            .map(|l| l.at(b.now.labeled as f64))
            .unwrap_or(0.0),
    )];
    projection.extend(b.projection.iter().map(|p| {
        (
            p.added_labels,
            p.projected_accuracy.unwrap_or(0.0),
            p.projected_auto_coverage.unwrap_or(0.0),
        )
    }));
    BudgetView {
        currency: b.params.currency.clone(),
        human_items: b.now.left_for_humans,
        hours: b.now.human_hours,
        cost: b.now.human_cost,
        projection: if b.accuracy_curve.fit.is_some() {
            projection
        } else {
            Vec::new()
        },
        summary_lines: lines,
        finish: Some(finish_view(b)),
    }
}

/// The report's cost-to-finish chart: the finish figures and the path to it.
fn finish_view(b: &BudgetOutcome) -> FinishView {
    let f = &b.finish;
    let at = |items: f64| b.params.hours_and_cost(b.now.labeled as f64 + items).1;
    FinishView {
        currency: b.params.currency.clone(),
        human_labels: f.human_labels,
        verifications: f.verifications,
        hours: f.hours,
        cost: f.cost,
        rounds: f.rounds,
        finish_cost_interval: (at(f.low), at(f.high)),
        path: f.path.iter().map(|p| (p.round, p.cost, p.done)).collect(),
    }
}
