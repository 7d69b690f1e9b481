//! Replaying labeling rounds on a fully labeled dataset: the pool/test split, the
//! label-independent work done once ([`setup`]), then rounds that reveal the picked items'
//! labels ([`replay`]) with the same stages `plan` runs.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Instant;

use ndarray::Axis;

use crate::data::dataset::{self, Dataset, LoadOptions, MemoryCheck};
use crate::error::{Error, Result};
use crate::index::cached::{self, CacheChoice};
use crate::index::graph::GraphParams;
use crate::index::kmeans::KMeans;
use crate::progress::Progress;
use crate::round::autolabel::{Route, Source};
use crate::round::coverage::{explain_drop, CoverageChange, RoundFigures};
use crate::round::dedup::Duplicates;
use crate::round::rarity;
use crate::round::select::{SelectParams, Strategy, AUDIT_REASON};
use crate::round::timings::Timings;
use crate::round::RoundRules;
use crate::round::{Pool, Round, RoundParams};
use crate::rules::RuleInputs;
use crate::simulate::{self, CurveRow};

/// What a replay runs: rounds, where the split comes from, and every stage's parameters.
#[derive(Debug, Clone)]
pub struct SimulateParams {
    /// Labeling rounds to replay.
    pub rounds: usize,
    /// Column naming each row's split (train/val rows form the pool, test rows are scored).
    pub split_col: String,
    /// The stages' parameters (its `select` is the default strategy's; [`replay`] takes its own).
    pub round: RoundParams,
    /// How the pool's graph is built.
    pub graph: GraphParams,
    /// Where the pool's graph is cached.
    pub cache: CacheChoice,
    /// Share of the pool held out ([`simulate::hold_out`]): scored each round, never selected
    /// or auto-labeled. 0 keeps the pool whole.
    pub holdout: f64,
}

/// The pool as its own dataset: the pool rows' embeddings and ids, every label hidden.
fn pool_dataset(data: &Dataset, pool: &[usize]) -> Dataset {
    Dataset {
        ids: pool.iter().map(|&i| data.ids[i].clone()).collect(),
        ids_are_integers: data.ids_are_integers,
        embeddings: data.embeddings.select(Axis(0), pool),
        labels: vec![None; pool.len()],
        classes: data.classes.clone(),
        carried: Vec::new(),
        chunk_starts: Vec::new(),
        files: data.files.clone(),
        norms: data.norms.clone(),
        label_merge: None,
        warnings: Vec::new(),
    }
}

/// Everything a replay needs that does not depend on the strategy: the data, the pool/test
/// split, the pool's graph, near-duplicates and rarity clustering (all label-independent, so
/// computed once and shared by every round and every strategy replayed on this pool).
pub struct Setup {
    /// The whole file (pool and test rows).
    pub data: Dataset,
    /// True class of every row of `data`.
    pub truth: Vec<u32>,
    /// Which rows form the pool and which the test set.
    pub split: simulate::PoolSplit,
    /// The pool as its own dataset (labels revealed by [`replay`]) with its graph.
    pub prepared: Pool,
    /// True class of every pool row.
    pub pool_truth: Vec<u32>,
    /// Near-duplicates within the pool.
    pub duplicates: Duplicates,
    /// Rarity's k-means on the pool: it depends on the embeddings and the seed only.
    pub rarity_clusters: KMeans,
    /// Accuracy and macro-F1 of the yardstick trained on the whole pool.
    pub full_pool: (f64, f64),
    /// Random seed, so the replay can be repeated exactly.
    pub seed: u64,
    /// Seconds spent in each setup stage.
    pub timings: Timings,
    /// The users' rules on the pool rows, when given ([`pool_rules`]).
    pub rules: Option<RoundRules>,
}

/// The rules at `path` evaluated on the whole file with every label hidden (a rule comparing
/// with a class's labeled centroid cannot see the answers the replay reveals round by round, so
/// it is refused), then restricted to the pool rows.
pub fn pool_rules(setup: &mut Setup, inputs: &RuleInputs<'_>) -> Result<RoundRules> {
    let n = setup.data.len();
    let labels = std::mem::replace(&mut setup.data.labels, vec![None; n]);
    let loaded = RoundRules::load(inputs, &setup.data);
    setup.data.labels = labels;
    let rules = loaded?;
    Ok(RoundRules {
        votes: rules.votes.select(&setup.split.pool),
        ..rules
    })
}

/// Loads the data, splits it, and computes the label-independent work for the pool.
pub fn setup(
    paths: &[PathBuf],
    opts: &LoadOptions,
    max_memory: Option<u64>,
    params: &SimulateParams,
    progress: Progress,
) -> Result<Setup> {
    simulate::validate(params.round.select.batch, params.rounds)?;
    if !(0.0..=0.5).contains(&params.holdout) {
        return Err(Error::Usage(format!(
            "holdout share must be in [0, 0.5], got {}",
            params.holdout
        )));
    }
    let mut timings = Timings::default();

    let mut opts = opts.clone();
    opts.memory_check = Some(MemoryCheck {
        limit: max_memory,
        k: params.graph.k as u64,
    });
    let data = timings.time("load", || dataset::load(paths, &opts))?;
    setup_data(data, params, progress, timings)
}

/// [`setup`] on data already loaded (the Python bindings load Arrow tables themselves):
/// checks every row is labeled, splits, and computes the label-independent work for the pool.
/// `timings` holds what loading took.
pub fn setup_data(
    data: Dataset,
    params: &SimulateParams,
    progress: Progress,
    timings: Timings,
) -> Result<Setup> {
    simulate::validate(params.round.select.batch, params.rounds)?;
    let seed = params.round.seed;
    if let Some(row) = data.labels.iter().position(Option::is_none) {
        return Err(Error::Usage(format!(
            "simulate needs a fully labeled dataset; {} of {} rows have no label (first: id '{}')",
            data.labels.iter().filter(|l| l.is_none()).count(),
            data.len(),
            data.ids[row]
        )));
    }
    let truth: Vec<u32> = data.labels.iter().map(|l| l.unwrap_or(0)).collect();
    let split_values = data
        .carried
        .iter()
        .position(|c| c.field.name() == &params.split_col)
        .map(|c| {
            (0..data.len())
                .map(|i| Some(data.carried_text(c, i)).filter(|s| !s.is_empty()))
                .collect::<Vec<_>>()
        });
    let mut split = simulate::split_pool(split_values.as_deref(), &truth, seed);
    simulate::hold_out(&mut split, params.holdout, seed);
    setup_split(params, data, truth, split, progress, timings)
}

/// The label-independent work for `split`'s pool of `data` (whose rows' classes are `truth`):
/// the pool as its own dataset, its graph, near-duplicates and rarity clustering, and the
/// yardstick's full-pool accuracy on `split.test`. [`setup`] calls it on the file's split;
/// research harnesses call it on a world of their own (examples/budget_selfsim.rs).
pub fn setup_split(
    params: &SimulateParams,
    data: Dataset,
    truth: Vec<u32>,
    split: simulate::PoolSplit,
    progress: Progress,
    mut timings: Timings,
) -> Result<Setup> {
    let seed = params.round.seed;
    let rarity_params = &params.round.rarity;
    let n_classes = data.classes.len();
    let pool_truth: Vec<u32> = split.pool.iter().map(|&i| truth[i]).collect();
    let pool_data = pool_dataset(&data, &split.pool);
    let graph = timings.time("graph", || {
        cached::neighbor_graph(&pool_data, &params.graph, &params.cache, progress)
    })?;
    let prepared = Pool {
        data: pool_data,
        graph,
        remote_rows: None,
        duplicates: None,
    };
    let duplicates = timings.time("dedup", || {
        Duplicates::find(
            prepared.data.embeddings.view(),
            &prepared.graph.graph,
            &params.round.dedup,
        )
    });
    let rarity_clusters = timings.time("rarity clusters", || {
        rarity::fit_clusters(&prepared.data.embeddings, rarity_params, seed)
    })?;
    let full_pool = timings.time("full-pool accuracy", || {
        simulate::evaluate(
            data.embeddings.view(),
            &truth,
            &split.pool,
            &split.test,
            n_classes,
        )
    })?;
    Ok(Setup {
        data,
        truth,
        split,
        prepared,
        pool_truth,
        duplicates,
        rarity_clusters,
        full_pool,
        seed,
        timings,
        rules: None,
    })
}

/// One replay: the learning curve, the picks as (round, pool row), and every round's
/// auto-labels, so the loop can be scored by tools that are not labelwise.
pub struct Replay {
    /// One learning-curve row per round.
    pub rows: Vec<CurveRow>,
    /// Items picked per round, as (round, pool row, reason).
    pub selections: Vec<(usize, usize, String)>,
    /// Rounds whose auto-label coverage fell by more than a third, and why.
    pub coverage_drops: Vec<RoundCoverageDrop>,
    /// Auto-label results per round, when auto-labeling was on.
    pub autolabels: Vec<RoundAutolabel>,
}

/// A round whose coverage fell by more than a third since the round before.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoundCoverageDrop {
    /// The round.
    pub round: usize,
    /// What fell and why.
    #[serde(flatten)]
    pub change: CoverageChange,
}

/// One auto-label a round made: which pool row, the label it gave, and by which route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundAutolabel {
    /// Round number the auto-labels belong to.
    pub round: usize,
    /// Pool row.
    pub row: usize,
    /// Class index.
    pub label: u32,
    /// `model`, `duplicate` or `rules`.
    pub source: &'static str,
}

/// Replays `rounds` rounds from no labels with `select_params` (every pool label is hidden
/// again first, so one [`Setup`] serves several replays).
pub fn replay(
    setup: &mut Setup,
    params: &SimulateParams,
    select_params: &SelectParams,
    progress: Progress,
) -> Result<Replay> {
    let auto_params = &params.round.autolabel;
    let rarity_params = &params.round.rarity;
    let n_pool = setup.prepared.data.len();
    setup.prepared.data.labels = vec![None; n_pool];
    // The simulation knows how every label was obtained: only audits are certificate evidence.
    let mut evidence = vec![false; n_pool];

    let bar = progress.bar(params.rounds as u64, "rounds");
    let mut rows: Vec<CurveRow> = Vec::new();
    let mut selections: Vec<(usize, usize, String)> = Vec::new();
    let mut coverage_drops: Vec<RoundCoverageDrop> = Vec::new();
    let mut previous: Option<RoundFigures> = None;
    let mut autolabels: Vec<RoundAutolabel> = Vec::new();
    let mut select_time = 0.0;
    for r in 0..=params.rounds {
        let labeled_pool: Vec<usize> = (0..n_pool)
            .filter(|&i| setup.prepared.data.labels[i].is_some())
            .collect();
        let mut round = Round::new(&setup.prepared);
        round.duplicates = Some(Cow::Borrowed(&setup.duplicates));
        round.evidence = Some(evidence.clone());
        // The simulation's only evidence is audits (it knows how every label was obtained).
        round.audited = Some(evidence.clone());
        round.rules = setup.rules.clone();
        round.run_autolabel(auto_params)?;
        if r >= 1 {
            let (accuracy, macro_f1, holdout_accuracy) = yardstick_scores(setup, &labeled_pool)?;
            let mut found: Vec<u32> = labeled_pool.iter().map(|&i| setup.pool_truth[i]).collect();
            found.sort_unstable();
            found.dedup();
            let a = round.autolabel.as_ref().expect("autolabel ran");
            let figures = a.summary.figures();
            if let Some(change) = previous.as_ref().and_then(|p| explain_drop(p, &figures)) {
                coverage_drops.push(RoundCoverageDrop { round: r, change });
            }
            previous = Some(figures);
            let hidden = n_pool - labeled_pool.len();
            let auto: Vec<usize> = (0..n_pool)
                .filter(|&i| matches!(a.route[i], Route::Auto | Route::Duplicate))
                .collect();
            let right = auto
                .iter()
                .filter(|&&i| a.predicted[i] == Some(setup.pool_truth[i]))
                .count();
            autolabels.extend(auto.iter().filter_map(|&i| {
                Some(RoundAutolabel {
                    round: r,
                    row: i,
                    label: a.predicted[i]?,
                    source: match a.source[i] {
                        Source::Duplicate => "duplicate",
                        Source::Rules => "rules",
                        _ => "model",
                    },
                })
            }));
            rows.push(CurveRow {
                round: r,
                labels: labeled_pool.len(),
                accuracy,
                holdout_accuracy,
                macro_f1,
                classes_found: found.len(),
                auto_coverage: if hidden == 0 {
                    0.0
                } else {
                    auto.len() as f64 / hidden as f64
                },
                auto_precision: (!auto.is_empty()).then(|| right as f64 / auto.len() as f64),
                select_seconds: select_time,
            });
        }
        if r == params.rounds {
            break;
        }
        let start = Instant::now();
        // Only hybrid reads rarity; the clustering under it was fitted once in `setup`.
        if select_params.strategy == Strategy::Hybrid {
            round.run_rarity_with_clusters(rarity_params, &setup.rarity_clusters)?;
        }
        round.run_select(select_params)?;
        select_time = start.elapsed().as_secs_f64();
        let Some(selection) = round.selection.take() else {
            break;
        };
        drop(round);
        if selection.picked.is_empty() {
            break;
        }
        for (&i, reason) in selection.picked.iter().zip(&selection.reasons) {
            setup.prepared.data.labels[i as usize] = Some(setup.pool_truth[i as usize]);
            evidence[i as usize] = reason == AUDIT_REASON;
            selections.push((r + 1, i as usize, reason.clone()));
        }
        // A promoted audit (already labeled) is the strategy's pick from now on.
        for &i in &selection.promoted {
            evidence[i as usize] = false;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Replay {
        rows,
        selections,
        coverage_drops,
        autolabels,
    })
}

/// The yardstick trained on the labeled pool rows: test accuracy and macro-F1, and the
/// holdout's accuracy when there is a holdout (one fit for both).
fn yardstick_scores(setup: &Setup, labeled_pool: &[usize]) -> Result<(f64, f64, Option<f64>)> {
    let train: Vec<usize> = labeled_pool.iter().map(|&i| setup.split.pool[i]).collect();
    let sets: Vec<&[usize]> = [&setup.split.test, &setup.split.holdout]
        .into_iter()
        .filter(|set| !set.is_empty())
        .map(Vec::as_slice)
        .collect();
    let scores = simulate::evaluate_on(
        setup.data.embeddings.view(),
        &setup.truth,
        &train,
        &sets,
        setup.data.classes.len(),
    )?;
    let (accuracy, macro_f1) = scores[0];
    let holdout = (!setup.split.holdout.is_empty()).then(|| scores[1].0);
    Ok((accuracy, macro_f1, holdout))
}

/// Each row's role in the replay, in input order: `pool` (selectable, labels hidden), `test`
/// (scored), `holdout` (pool rows set aside and scored) or `unused` (a split value that is
/// neither). Written as split.csv so a peer tool can
/// be run on exactly the same pool and test rows: the seeded 80/20 split cannot be rebuilt
/// outside this program.
pub fn split_roles(split: &simulate::PoolSplit, n_rows: usize) -> Vec<&'static str> {
    let mut roles = vec!["unused"; n_rows];
    for &i in &split.pool {
        roles[i] = "pool";
    }
    for &i in &split.test {
        roles[i] = "test";
    }
    for &i in &split.holdout {
        roles[i] = "holdout";
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_roles_name_every_row_once() {
        let split_col: Vec<Option<String>> = ["train", "test", "val", "other", "test"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect();
        let split = simulate::split_pool(Some(&split_col), &[0, 1, 0, 1, 0], 0);
        assert_eq!(
            split_roles(&split, 5),
            ["pool", "test", "pool", "unused", "test"]
        );
        // The seeded 80/20 split: every row is pool or test, test matches the split's rows.
        let labels: Vec<u32> = (0..50).map(|i| i % 2).collect();
        let split = simulate::split_pool(None, &labels, 3);
        let roles = split_roles(&split, 50);
        assert_eq!(roles.iter().filter(|r| **r == "test").count(), 10);
        assert!(split.test.iter().all(|&i| roles[i] == "test"));
        assert!(split.pool.iter().all(|&i| roles[i] == "pool"));
    }
}
