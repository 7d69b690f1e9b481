//! New rows appended to a cached pool (the usual case between labeling rounds): the graph is
//! extended from the cached one instead of rebuilt, summary.json says so, and everything
//! downstream (duplicates first) is what a cold run on the whole pool gives.

use std::path::Path;

use crate::common::*;
use arrow_array::RecordBatch;

/// Writes rows `rows` of `batch` (all columns) as a Parquet file.
fn write_rows(path: &Path, batch: &RecordBatch, rows: &[usize]) {
    let idx = arrow_array::UInt32Array::from_iter_values(rows.iter().map(|&r| r as u32));
    let schema = batch.schema();
    let cols: Vec<(&str, arrow_array::ArrayRef)> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            (
                f.name().as_str(),
                arrow_select::take::take(c.as_ref(), &idx, None).expect("take"),
            )
        })
        .collect();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    write_parquet(path, cols);
}

fn run_ok(wd: &Workdir, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--quiet");
    let o = wd.run(&a);
    assert_eq!(o.code, 0, "{args:?} failed:\n{o:#?}");
    let out = args[args.iter().position(|&s| s == "--out").expect("--out") + 1];
    read_json(&wd.path(out).join("summary.json"))
}

/// (id_a, id_b, cosine) of a run's duplicate_pairs.parquet, in file order.
fn pairs(path: &Path) -> Vec<(String, String, String)> {
    let b = read_parquet(path);
    let a = strings(&b, "id_a");
    let bb = strings(&b, "id_b");
    let c = column(&b, "cosine");
    let c = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Float64Type>(c);
    (0..b.num_rows())
        .map(|i| {
            (
                a[i].clone().unwrap(),
                bb[i].clone().unwrap(),
                format!("{:.12}", c.value(i)),
            )
        })
        .collect()
}

#[test]
fn appended_rows_extend_the_cached_graph_and_dedup_matches_a_cold_run() {
    let wd = Workdir::new();
    let all = read_parquet(&sample_path());
    let n = all.num_rows();
    assert!(n > 2000);
    let cut = n - 400;
    write_rows(
        &wd.path("pool/part-0.parquet"),
        &all,
        &(0..cut).collect::<Vec<_>>(),
    );
    let first = run_ok(&wd, &["dedup", "pool", "--out", "r1", "--cache", "cache"]);
    assert_eq!(first["graph"]["cache_hit"], false);
    assert!(first["graph"].get("incremental").is_none());

    // New data arrives as a second file.
    write_rows(
        &wd.path("pool/part-1.parquet"),
        &all,
        &(cut..n).collect::<Vec<_>>(),
    );
    let second = run_ok(&wd, &["dedup", "pool", "--out", "r2", "--cache", "cache"]);
    let g = &second["graph"];
    assert_eq!(g["cache_hit"], false);
    assert_eq!(g["incremental"]["base_items"], cut as u64, "{g}");
    assert_eq!(g["incremental"]["new_items"], 400, "{g}");
    assert_eq!(g["incremental"]["method"], "exact-append");
    // An exact base extended exactly is exact.
    assert_eq!(g["index"], "exact");
    assert_eq!(g["recall_at_10"], 1.0);

    // A cold run on the same pool with an empty cache finds the same duplicates and groups.
    let cold = run_ok(&wd, &["dedup", "pool", "--out", "r3", "--cache", "fresh"]);
    assert!(cold["graph"].get("incremental").is_none());
    assert_eq!(second["duplicates"], cold["duplicates"]);
    let p2 = pairs(&wd.path("r2/duplicate_pairs.parquet"));
    assert!(!p2.is_empty());
    assert_eq!(p2, pairs(&wd.path("r3/duplicate_pairs.parquet")));
    let items = |d: &str| {
        let b = read_parquet(&wd.path(d).join("items.parquet"));
        (strings(&b, "id"), strings(&b, "dup_group"))
    };
    assert_eq!(items("r2"), items("r3"));

    // The extended graph was cached: the next run is a plain cache hit.
    let again = run_ok(&wd, &["dedup", "pool", "--out", "r4", "--cache", "cache"]);
    assert_eq!(again["graph"]["cache_hit"], true);
    assert_eq!(again["duplicates"], cold["duplicates"]);
}

#[test]
fn plan_on_an_extended_pool_matches_a_cold_plan() {
    let wd = Workdir::new();
    let all = read_parquet(&sample_path());
    let n = all.num_rows();
    let cut = n - 300;
    write_rows(
        &wd.path("pool/a.parquet"),
        &all,
        &(0..cut).collect::<Vec<_>>(),
    );
    run_ok(&wd, &["plan", "pool", "--out", "p1", "--cache", "cache"]);
    write_rows(
        &wd.path("pool/b.parquet"),
        &all,
        &(cut..n).collect::<Vec<_>>(),
    );
    let inc = run_ok(&wd, &["plan", "pool", "--out", "p2", "--cache", "cache"]);
    assert_eq!(inc["graph"]["incremental"]["base_items"], cut as u64);
    let cold = run_ok(&wd, &["plan", "pool", "--out", "p3", "--no-cache"]);
    assert!(cold["graph"].get("incremental").is_none());
    assert_eq!(inc["duplicates"], cold["duplicates"]);
    // Everything downstream of the graph is the same: the batch for humans first of all.
    let batch = |d: &str| read_csv(&wd.path(d).join("batch.csv"));
    assert_eq!(batch("p2"), batch("p3"));
}

#[test]
fn a_changed_prefix_is_rebuilt_not_extended() {
    let wd = Workdir::new();
    let all = read_parquet(&sample_path());
    let n = all.num_rows();
    let cut = n - 400;
    write_rows(
        &wd.path("pool/part-0.parquet"),
        &all,
        &(0..cut).collect::<Vec<_>>(),
    );
    run_ok(&wd, &["dedup", "pool", "--out", "r1", "--cache", "cache"]);
    // The same first row, but a row in the middle removed: not an extension of the cached pool.
    let edited: Vec<usize> = (0..cut).filter(|&i| i != cut / 2).collect();
    write_rows(&wd.path("pool/part-0.parquet"), &all, &edited);
    write_rows(
        &wd.path("pool/part-1.parquet"),
        &all,
        &(cut..n).collect::<Vec<_>>(),
    );
    let s = run_ok(&wd, &["dedup", "pool", "--out", "r2", "--cache", "cache"]);
    assert!(s["graph"].get("incremental").is_none(), "{}", s["graph"]);
    assert_eq!(s["graph"]["cache_hit"], false);
}

/// Pairs as a set of (id_a, id_b), cosines aside.
fn pair_ids(path: &Path) -> std::collections::BTreeSet<(String, String)> {
    pairs(path).into_iter().map(|(a, b, _)| (a, b)).collect()
}

/// The `hnsw` flags of these tests: the index, and one cache for every run.
const HNSW: [&str; 4] = ["--index", "hnsw", "--cache", "cache"];

/// Writes the sample's first `cut` rows as pool/part-0 and runs `dedup --index hnsw` on them
/// (filling the cache), then appends the rest as pool/part-1; returns the first run's summary.
fn hnsw_pool_then_append(wd: &Workdir, cut_from_end: usize) -> (serde_json::Value, usize) {
    let all = read_parquet(&sample_path());
    let n = all.num_rows();
    let cut = n - cut_from_end;
    write_rows(
        &wd.path("pool/part-0.parquet"),
        &all,
        &(0..cut).collect::<Vec<_>>(),
    );
    let first = run_ok(wd, &[&["dedup", "pool", "--out", "r1"][..], &HNSW].concat());
    write_rows(
        &wd.path("pool/part-1.parquet"),
        &all,
        &(cut..n).collect::<Vec<_>>(),
    );
    (first, cut)
}

/// Paths of the cached hnsw indexes.
fn cached_indexes(wd: &Workdir) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(wd.path("cache"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("hnsw-index-")
        })
        .collect()
}

#[test]
fn with_index_hnsw_the_cached_hnsw_index_answers_the_new_rows() {
    let wd = Workdir::new();
    let (first, cut) = hnsw_pool_then_append(&wd, 400);
    assert_eq!(first["graph"]["index"], "hnsw");
    assert!(first["graph"].get("incremental").is_none());
    // The index is cached beside the graph... (checked before the appended run below writes
    // its own.)
    assert_eq!(cached_indexes(&wd).len(), 1);

    let second = run_ok(
        &wd,
        &[&["dedup", "pool", "--out", "r2"][..], &HNSW].concat(),
    );
    let g = &second["graph"];
    assert_eq!(g["incremental"]["method"], "hnsw-insert", "{g}");
    assert_eq!(g["incremental"]["base_items"], cut as u64);
    assert_eq!(g["incremental"]["new_items"], 400);
    assert!(g["recall_at_10"].as_f64().unwrap() >= 0.98, "{g}");
    // ...and the extended index is cached too (under the new pool's key).
    assert_eq!(cached_indexes(&wd).len(), 2);

    // Against an exact cold run: every reported pair is real (cosines are recomputed), and
    // almost every real pair is found.
    run_ok(&wd, &["dedup", "pool", "--out", "exact", "--no-cache"]);
    let found = pair_ids(&wd.path("r2/duplicate_pairs.parquet"));
    let truth = pair_ids(&wd.path("exact/duplicate_pairs.parquet"));
    assert!(!truth.is_empty());
    assert!(
        found.is_subset(&truth),
        "a reported pair is not a real pair"
    );
    let recall = found.len() as f64 / truth.len() as f64;
    assert!(recall >= 0.98, "pair recall {recall}");
}

#[test]
fn a_corrupt_cached_hnsw_index_is_rebuilt_not_trusted() {
    let wd = Workdir::new();
    hnsw_pool_then_append(&wd, 300);
    let entry = cached_indexes(&wd).pop().expect("cached index");
    let mut bytes = std::fs::read(&entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&entry, bytes).unwrap();
    let s = run_ok(
        &wd,
        &[&["dedup", "pool", "--out", "r2"][..], &HNSW].concat(),
    );
    assert!(s["graph"].get("incremental").is_none(), "{}", s["graph"]);
    assert_eq!(s["graph"]["index"], "hnsw");
}
