//! A round whose pool rows live in shards (`ShardedRows`: what a cluster's map tasks do) computes
//! what a round on the matrix computes, bit for bit, and reads no matrix to do it.

use labelwise::data::dataset::LoadOptions;
use labelwise::index::cached::CacheChoice;
use labelwise::index::graph::GraphParams;
use labelwise::progress::Progress;
use labelwise::round::dedup::Duplicates;
use labelwise::round::rows::{self, PoolRows, ShardedRows};
use labelwise::round::timings::Timings;
use labelwise::round::{LabelInputs, Pool, Round, RoundParams, Stages};
use ndarray::Array2;

use crate::common::{clustered, write_pool, Rng, Workdir};

/// A pool of 700 items in 5 classes, 30 of them near-copies of labeled items (so the duplicate
/// route has work), labeled where `labeled` says.
fn pool(wd: &Workdir, labeled: impl Fn(usize) -> bool) -> Pool {
    let mut s = clustered(700, 5, 24, 0.35, 3);
    let mut rng = Rng(11);
    for k in 0..30 {
        let (from, to) = (k * 5, 650 + k);
        let jitter: Vec<f64> = s.vectors[from]
            .iter()
            .map(|x| x + 0.002 * rng.normal())
            .collect();
        s.vectors[to] = jitter;
        s.truth[to] = s.truth[from];
    }
    let mask: Vec<bool> = (0..700).map(labeled).collect();
    let path = write_pool(wd, "pool.parquet", &s, &mask);
    let mut timings = Timings::default();
    Pool::load(
        &[path],
        &LoadOptions::default(),
        &GraphParams::default(),
        &CacheChoice::Off,
        None,
        Progress::hidden(),
        &mut timings,
    )
    .unwrap()
}

/// The same pool with its matrix moved into shards of `shard_rows` rows: `data.embeddings` is
/// left with no rows, so a stage that still read it would fail. The near-duplicates come as a
/// cluster hands them over: its pairs (its stage finds the single process's pairs given the
/// graph), grouped by reading the paired rows from the shards; the groups are the matrix
/// route's.
fn sharded(pool: &Pool, shard_rows: usize) -> Pool {
    let mut data = pool.data.clone();
    let d = data.embeddings.ncols();
    let x = std::mem::replace(&mut data.embeddings, Array2::zeros((0, d)));
    let rows = ShardedRows::split(x, shard_rows);
    let params = RoundParams::default().dedup;
    let found = Duplicates::find(pool.data.embeddings.view(), &pool.graph.graph, &params);
    let given = Duplicates::from_pairs(found.pairs.clone(), &rows, &params).unwrap();
    assert_eq!(given.groups, found.groups);
    assert!(found.groups.n_groups_with_duplicates >= 20);
    Pool {
        data,
        graph: pool.graph.clone(),
        remote_rows: Some(Box::new(rows)),
        duplicates: Some(given),
    }
}

/// Everything a round computed, printed exactly (f32 and f64 print their shortest exact form).
fn outcome(round: &Round<'_>) -> Vec<String> {
    vec![
        format!("{:?}", round.autolabel),
        format!("{:?}", round.rarity),
        format!("{:?}", round.selection),
        format!("{:?}", round.budget),
    ]
}

/// Runs every stage on `pool` (its near-duplicates given when `given`) with `inputs`.
fn run(pool: &Pool, inputs: LabelInputs) -> Vec<String> {
    let mut timings = Timings::default();
    let mut params = RoundParams::default();
    // As `plan` runs it: the batch ranks by the model's probabilities.
    params.autolabel.keep_uncertainty = true;
    let round = Round::run_with_evidence(
        pool,
        &params,
        Stages::ALL,
        inputs,
        Progress::hidden(),
        &mut timings,
    )
    .unwrap();
    outcome(&round)
}

/// Which items of the pool are labeled.
type IsLabeled = fn(usize) -> bool;

#[test]
fn sharded_rows_give_the_matrix_rounds_every_result() {
    // Cold start (TypiClust over the pool), then a labeled pool (models, spreading, the
    // duplicate route, hybrid's shortlist, the budget's sample), then audits in a history
    // (the model fitted blind to them, and evidence that is not every label).
    let cases: [(&str, IsLabeled); 2] = [
        ("cold start", |i| i < 10),
        ("labeled", |i| i % 2 == 0 && i < 640),
    ];
    for (what, labeled) in cases {
        let wd = Workdir::new();
        let whole = pool(&wd, labeled);
        let inputs = || LabelInputs::default();
        let expected = run(&whole, inputs());
        // The routes the comparison is meant to cover did run.
        let (autolabel, selection) = (&expected[0], &expected[2]);
        if what == "cold start" {
            assert!(
                selection.contains("strategy_used: Typiclust"),
                "{selection}"
            );
        } else {
            assert!(selection.contains("strategy_used: Hybrid"), "{selection}");
            assert!(
                autolabel.contains("route: Auto") || autolabel.contains("Auto,"),
                "{autolabel}"
            );
            assert!(
                autolabel.contains("Duplicate"),
                "no duplicate route: {autolabel}"
            );
        }
        for shard_rows in [97, 700] {
            let parts = sharded(&whole, shard_rows);
            let got = run(&parts, inputs());
            for (e, g) in expected.iter().zip(&got) {
                assert_eq!(e, g, "{what}, shards of {shard_rows}");
            }
        }
        let n = whole.data.len();
        let audited: Vec<bool> = (0..n)
            .map(|i| whole.data.labels[i].is_some() && i % 3 == 0)
            .collect();
        let history = || LabelInputs {
            evidence: Some(audited.clone()),
            audited: Some(audited.clone()),
            ..LabelInputs::default()
        };
        let expected = run(&whole, history());
        let parts = sharded(&whole, 97);
        let got = run(&parts, history());
        for (e, g) in expected.iter().zip(&got) {
            assert_eq!(e, g, "{what} with audits");
        }
    }
}

#[test]
fn a_pool_without_its_matrix_asks_for_its_duplicates() {
    let wd = Workdir::new();
    let whole = pool(&wd, |i| i % 4 == 0);
    let mut parts = sharded(&whole, 100);
    parts.duplicates = None;
    let mut timings = Timings::default();
    let err = Round::run_with_evidence(
        &parts,
        &RoundParams::default(),
        Stages::ALL,
        LabelInputs::default(),
        Progress::hidden(),
        &mut timings,
    )
    .err()
    .expect("no duplicates to read");
    assert!(err.to_string().contains("must be given"), "{err}");
}

#[test]
fn sharded_exact_search_and_recall_are_the_matrix_ones() {
    let wd = Workdir::new();
    let whole = pool(&wd, |i| i % 4 == 0);
    let x = whole.data.embeddings.view();
    let parts = ShardedRows::split(x.to_owned(), 97);
    let ids: Vec<usize> = (0..700).step_by(7).collect();
    let queries = x.select(ndarray::Axis(0), &ids);
    let self_ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    for k in [1, 10, 16] {
        assert_eq!(
            parts.exact_top_k(queries.view(), &self_ids, k).unwrap(),
            x.exact_top_k(queries.view(), &self_ids, k).unwrap(),
            "k = {k}"
        );
    }
    // A graph that misses some neighbours: every item's 3rd to 5th neighbours replaced.
    let mut graph = whole.graph.graph.clone();
    let k = graph.k;
    for (i, row) in graph.neighbors.chunks_mut(k).enumerate() {
        for (s, j) in row.iter_mut().enumerate().skip(2).take(3) {
            *j = ((i + 31 * s) % 700) as u32;
        }
    }
    let single = labelwise::index::recall_at_10(x, &graph, 200, 5);
    assert!(single < 0.9, "{single}");
    assert_eq!(rows::recall_at_10(&parts, &graph, 200, 5).unwrap(), single);
    assert_eq!(rows::recall_at_10(&x, &graph, 200, 5).unwrap(), single);
}

#[test]
fn a_driver_loads_ids_labels_and_columns_without_the_embeddings() {
    let wd = Workdir::new();
    let s = clustered(300, 3, 16, 0.3, 2);
    let labeled: Vec<bool> = (0..300).map(|i| i % 5 == 0).collect();
    let path = write_pool(&wd, "pool.parquet", &s, &labeled);
    let full = labelwise::data::dataset::load(std::slice::from_ref(&path), &LoadOptions::default())
        .unwrap();
    let opts = LoadOptions {
        read_embeddings: false,
        ..LoadOptions::default()
    };
    let light = labelwise::data::dataset::load(&[path], &opts).unwrap();
    assert_eq!(light.ids, full.ids);
    assert_eq!(light.labels, full.labels);
    assert_eq!(light.classes, full.classes);
    assert_eq!(light.carried.len(), full.carried.len());
    assert_eq!(light.carried[0].field.name(), "true_label");
    assert_eq!(light.embeddings.dim(), (300, 0));
}

#[test]
fn items_in_parts_joined_with_each_shards_carried_columns_are_the_items_table() {
    // The map route's items.parquet: the driver (no carried column loaded) builds each part's
    // own columns, and the task beside each shard joins the carried columns it loads from the
    // shard's input rows alone. Read together, the parts are the single process's table.
    use labelwise::data::dataset;
    use labelwise::output::round_files;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let wd = Workdir::new();
    let whole = pool(&wd, |i| i % 2 == 0 && i < 640);
    let mut timings = Timings::default();
    let mut params = RoundParams::default();
    params.autolabel.keep_uncertainty = true;
    let round = Round::run_with_evidence(
        &whole,
        &params,
        Stages::ALL,
        LabelInputs::default(),
        Progress::hidden(),
        &mut timings,
    )
    .unwrap();
    let expected = round_files::items_table(&round).unwrap();
    assert!(expected.schema().field_with_name("true_label").is_ok());
    let path = wd.path("pool.parquet");
    let file = std::fs::File::open(&path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = reader.schema().clone();
    let input: Vec<_> = reader.build().unwrap().map(Result::unwrap).collect();
    // A task reads its shard without the embeddings (the normalise stage read those).
    let input = arrow_select::concat::concat_batches(&schema, &input).unwrap();
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| schema.field(i).name() != "embedding")
        .collect();
    let input = input.project(&keep).unwrap();
    let schema = input.schema();
    let opts = LoadOptions {
        read_embeddings: false,
        ..LoadOptions::default()
    };
    let mut parts = Vec::new();
    for (from, to) in [(0, 97), (97, 400), (400, 700)] {
        let own = round_files::items_own_columns(&round, from..to).unwrap();
        assert!(own.schema().field_with_name("true_label").is_err());
        let rows = input.slice(from, to - from);
        let shard = dataset::load_batches(&path, &schema, &[rows], &opts).unwrap();
        parts.push(round_files::with_carried(own, &shard).unwrap());
    }
    let joined = arrow_select::concat::concat_batches(&expected.schema(), &parts).unwrap();
    assert_eq!(joined, expected);
    // A part and a shard of different lengths are not joined.
    let own = round_files::items_own_columns(&round, 0..10).unwrap();
    let shard = dataset::load_batches(&path, &schema, &[input.slice(0, 11)], &opts).unwrap();
    assert!(round_files::with_carried(own, &shard).is_err());
}
