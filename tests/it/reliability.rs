//! Issue 9 on the real binary: determinism across runs, threads and cache use; a torn or
//! corrupted cache entry is never trusted; edge-case pools; two runs sharing one cache at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use serde_json::Value;

/// summary.json without the fields allowed to differ between equivalent runs.
fn stable_summary(dir: &Path) -> Value {
    let mut s = read_json(&dir.join("summary.json"));
    let o = s.as_object_mut().expect("summary is an object");
    o.remove("timings");
    if let Some(g) = o.get_mut("graph").and_then(Value::as_object_mut) {
        g.remove("cache_hit");
    }
    s
}

/// Asserts two run folders hold the same files, byte for byte, except summary.json, which must
/// be equal once `timings` and `graph.cache_hit` are removed.
fn assert_same_outputs(a: &Path, b: &Path) {
    let (fa, fb) = (dir_files(a), dir_files(b));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&fa), names(&fb), "same files in {a:?} and {b:?}");
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        if name == "summary.json" {
            continue;
        }
        assert!(
            x == y,
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    assert_eq!(stable_summary(a), stable_summary(b), "summary.json differs");
}

/// The single graph entry in a cache folder.
fn cache_entry(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("cache dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("graph-")
        })
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "one graph entry in the cache: {entries:?}"
    );
    entries[0].clone()
}

fn cache_hit(dir: &Path) -> Value {
    read_json(&dir.join("summary.json"))["graph"]["cache_hit"].clone()
}

// ---- 10. determinism -------------------------------------------------------------------------

#[test]
fn plan_is_byte_identical_across_runs_threads_and_cache() {
    let wd = Workdir::new();
    let data = copy_sample(&wd);
    let data = data.to_str().unwrap();
    let base = ["plan", data, "--seed", "3"];
    let run = |out: &str, extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(&["--out", out]);
        a.extend_from_slice(extra);
        ok(&wd, &a);
        wd.path(out)
    };
    let a = run("a", &["--threads", "1", "--no-cache"]);
    let b = run("b", &["--threads", "2", "--cache", "cache"]);
    let c = run("c", &["--threads", "2", "--cache", "cache"]);
    let d = run("d", &["--threads", "1", "--cache", "cache"]);
    assert_eq!(cache_hit(&b), false);
    assert_eq!(
        cache_hit(&c),
        true,
        "third run reads the graph from the cache"
    );
    assert_same_outputs(&a, &b);
    assert_same_outputs(&a, &c);
    assert_same_outputs(&a, &d);
    // A different seed is allowed to change things, but the same one must not: rerun a.
    let a2 = run("a2", &["--threads", "1", "--no-cache"]);
    assert_same_outputs(&a, &a2);
}

#[test]
fn plan_on_a_partitioned_pool_is_byte_identical_at_1_2_and_4_threads() {
    // Above 20,000 rows `--index auto` takes the partitioned route (k-means lists, then
    // matrix products per list), whose parallel loops split differently at each thread count.
    let wd = Workdir::new();
    let n = 21_000;
    let mut s = clustered(n, 40, 24, 0.25, 11);
    // Near-copies of every 50th item, so that duplicate pairs and groups exist.
    let mut rng = Rng(12);
    for src in (0..n).step_by(50) {
        let v: Vec<f64> = s.vectors[src]
            .iter()
            .map(|x| f64::from((x + 0.002 * rng.normal()) as f32))
            .collect();
        s.ids.push(format!("copy{src:05}"));
        s.vectors.push(v);
        s.truth.push(s.truth[src]);
    }
    let labeled: Vec<bool> = (0..s.ids.len()).map(|_| rng.uniform() < 0.05).collect();
    let data = write_pool(&wd, "pool.parquet", &s, &labeled);
    let data = data.to_str().unwrap();
    let run = |threads: &str| {
        let out = format!("t{threads}");
        ok(
            &wd,
            &[
                "--threads",
                threads,
                "plan",
                data,
                "--out",
                &out,
                "--no-cache",
            ],
        );
        wd.path(&out)
    };
    let one = run("1");
    let summary = read_json(&one.join("summary.json"));
    assert_eq!(summary["graph"]["index"], "partitioned", "{summary:#}");
    for f in [
        "items.parquet",
        "batch.csv",
        "autolabels.parquet",
        "budget.csv",
        "duplicate_pairs.parquet",
    ] {
        assert!(one.join(f).is_file(), "plan wrote {f}");
    }
    assert!(
        read_parquet(&one.join("duplicate_pairs.parquet")).num_rows() > 0,
        "the pool holds near-duplicates"
    );
    for threads in ["2", "4"] {
        assert_same_outputs(&one, &run(threads));
    }
}

// ---- 11. cache corruption --------------------------------------------------------------------

#[test]
fn a_corrupted_or_truncated_cache_entry_is_never_trusted() {
    let wd = Workdir::new();
    let s = clustered(1500, 12, 48, 0.2, 17);
    let data = write_pool(&wd, "pool.parquet", &s, &vec![false; s.ids.len()]);
    let data = data.to_str().unwrap();
    let run = |out: &str| {
        ok(
            &wd,
            &[
                "dedup",
                data,
                "--out",
                out,
                "--cache",
                "cache",
                "--threshold",
                "0.9",
            ],
        );
        wd.path(out)
    };
    let first = run("first");
    assert_eq!(cache_hit(&first), false);
    let second = run("second");
    assert_eq!(cache_hit(&second), true, "second run hits the cache");
    assert_same_outputs(&first, &second);

    // Flip one byte in the middle of the entry.
    let entry = cache_entry(&wd.path("cache"));
    let mut bytes = std::fs::read(&entry).unwrap();
    let len = bytes.len();
    bytes[len / 2] ^= 0x5A;
    std::fs::write(&entry, &bytes).unwrap();
    let flipped = run("flipped");
    assert_eq!(
        cache_hit(&flipped),
        false,
        "a flipped byte must be detected"
    );
    assert_same_outputs(&first, &flipped);

    // The entry was rewritten; truncate it (a torn write).
    let entry = cache_entry(&wd.path("cache"));
    let bytes = std::fs::read(&entry).unwrap();
    assert_eq!(bytes.len(), len, "the rewritten entry is whole again");
    std::fs::write(&entry, &bytes[..bytes.len() / 3]).unwrap();
    let torn = run("torn");
    assert_eq!(
        cache_hit(&torn),
        false,
        "a truncated entry must be detected"
    );
    assert_same_outputs(&first, &torn);

    // An empty entry too.
    let entry = cache_entry(&wd.path("cache"));
    std::fs::write(&entry, b"").unwrap();
    let empty = run("empty");
    assert_eq!(cache_hit(&empty), false);
    assert_same_outputs(&first, &empty);
    assert_eq!(cache_hit(&run("again")), true, "and the cache heals");
}

// ---- 12. edge cases --------------------------------------------------------------------------

#[test]
fn a_single_item_pool_plans() {
    let wd = Workdir::new();
    let data = wd.parquet(
        "one.parquet",
        vec![
            ("id", ids("x", 1)),
            ("embedding", emb(&[vec![0.3, -0.2, 0.9, 0.1]])),
        ],
    );
    ok(
        &wd,
        &["plan", data.to_str().unwrap(), "--out", "out", "--no-cache"],
    );
    let items = read_parquet(&wd.path("out/items.parquet"));
    assert_eq!(items.num_rows(), 1);
    assert_eq!(
        strs(&items, "route"),
        ["human"],
        "an unlabeled item goes to humans"
    );
    let (_, rows) = read_csv(&wd.path("out/batch.csv"));
    assert_eq!(rows.len(), 1, "the batch is the one item");
    assert_eq!(rows[0][1], "x0");
    assert_eq!(
        read_parquet(&wd.path("out/duplicate_pairs.parquet")).num_rows(),
        0
    );
    assert!(wd.path("out/report.html").is_file());
}

#[test]
fn two_identical_items_are_one_duplicate_group_and_one_pick() {
    let wd = Workdir::new();
    let v = vec![0.5, 0.5, -0.5, 0.5, 0.25, 0.0];
    let data = wd.parquet(
        "two.parquet",
        vec![("id", ids("t", 2)), ("embedding", emb(&[v.clone(), v]))],
    );
    ok(
        &wd,
        &["plan", data.to_str().unwrap(), "--out", "out", "--no-cache"],
    );
    let pairs = read_parquet(&wd.path("out/duplicate_pairs.parquet"));
    assert_eq!(strs(&pairs, "id_a"), ["t0"]);
    assert_eq!(strs(&pairs, "id_b"), ["t1"]);
    let items = read_parquet(&wd.path("out/items.parquet"));
    let g = column(&items, "dup_group");
    let g = g
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .expect("int64 dup_group");
    assert_eq!(g.value(0), g.value(1), "one group");
    let (_, rows) = read_csv(&wd.path("out/batch.csv"));
    assert_eq!(rows.len(), 1, "humans label one of the two");
}

#[test]
fn a_class_with_a_single_label_is_kept() {
    let wd = Workdir::new();
    let s = clustered(300, 3, 16, 0.05, 71);
    // Classes c0 and c1 have 20 labels each; c2 exactly one.
    let mut labeled = vec![false; 300];
    let (mut n0, mut n1) = (0, 0);
    let mut single = None;
    for (i, &class) in s.truth.iter().enumerate() {
        match class {
            0 if n0 < 20 => {
                labeled[i] = true;
                n0 += 1;
            }
            1 if n1 < 20 => {
                labeled[i] = true;
                n1 += 1;
            }
            2 if single.is_none() => {
                labeled[i] = true;
                single = Some(i);
            }
            _ => {}
        }
    }
    let single = single.unwrap();
    let data = write_pool(&wd, "pool.parquet", &s, &labeled);
    ok(
        &wd,
        &[
            "plan",
            data.to_str().unwrap(),
            "--out",
            "out",
            "--no-cache",
            "--batch",
            "10",
        ],
    );
    let summary = read_json(&wd.path("out/summary.json"));
    assert_eq!(summary["classes"], 3, "the single-label class counts");
    let items = read_parquet(&wd.path("out/items.parquet"));
    let ids = strs(&items, "id");
    let route = strs(&items, "route");
    let r = ids.iter().position(|x| *x == s.ids[single]).unwrap();
    assert_eq!(route[r], "labeled");
    // Its class can be predicted: the model knows all three classes.
    let predicted = strings(&items, "predicted_label");
    assert!(
        predicted.iter().any(|p| p.as_deref() == Some("c2")),
        "c2 is predicted somewhere"
    );
}

#[test]
fn labels_file_with_unknown_ids_and_an_unseen_class() {
    let wd = Workdir::new();
    let s = clustered(300, 3, 16, 0.05, 81);
    let labeled: Vec<bool> = (0..300).map(|i| i % 5 == 0).collect();
    let data = write_pool(&wd, "pool.parquet", &s, &labeled);
    let fresh = &s.ids[1]; // unlabeled in the pool
    let relabel = &s.ids[5]; // labeled in the pool: overridden
    let labels = wd.file(
        "labels.csv",
        format!("id,label\n{fresh},brand_new\n{relabel},c9\nghost-1,c0\nghost-2,c1\n"),
    );
    ok(
        &wd,
        &[
            "plan",
            data.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--out",
            "out",
            "--no-cache",
        ],
    );
    let summary = read_json(&wd.path("out/summary.json"));
    let merge = &summary["label_merge"];
    assert_eq!(merge["unknown_ids"], 2, "unknown ids are counted: {merge}");
    assert_eq!(summary["classes"], 5, "c0..c2 plus brand_new and c9");
    let items = read_parquet(&wd.path("out/items.parquet"));
    let ids = strs(&items, "id");
    let label = strings(&items, "label");
    let route = strs(&items, "route");
    let at = |id: &str| ids.iter().position(|x| x == id).unwrap();
    assert_eq!(label[at(fresh)].as_deref(), Some("brand_new"));
    assert_eq!(route[at(fresh)], "labeled");
    assert_eq!(
        label[at(relabel)].as_deref(),
        Some("c9"),
        "the file overrides"
    );
    assert!(
        !ids.iter().any(|x| x.starts_with("ghost")),
        "unknown ids add no items"
    );
}

// ---- 13. two runs sharing one cache ----------------------------------------------------------

#[test]
fn concurrent_runs_share_a_cache_safely() {
    let wd = Workdir::new();
    let s = clustered(2500, 20, 64, 0.2, 91);
    let data = write_pool(&wd, "pool.parquet", &s, &vec![false; s.ids.len()]);
    let spawn = |out: &str| {
        Command::new(env!("CARGO_BIN_EXE_labelwise"))
            .args([
                "dedup",
                data.to_str().unwrap(),
                "--out",
                out,
                "--cache",
                "cache",
                "--quiet",
            ])
            .current_dir(wd.root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn("a"), spawn("b"));
    for (name, child) in [("a", a), ("b", b)] {
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "run {name}: {:?}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_same_outputs(&wd.path("a"), &wd.path("b"));
    ok(
        &wd,
        &[
            "dedup",
            data.to_str().unwrap(),
            "--out",
            "c",
            "--cache",
            "cache",
        ],
    );
    assert_eq!(
        cache_hit(&wd.path("c")),
        true,
        "the third run hits the cache"
    );
    assert_same_outputs(&wd.path("a"), &wd.path("c"));
    // No temp files or locks left behind beside the entry.
    let _ = cache_entry(&wd.path("cache"));
}

// ---- 9. interrupted runs: checkpoints and leftover temporaries --------------------------------

/// Unit rows of a clustered synthetic pool, as the graph builder takes them.
fn unit_matrix(n: usize, classes: usize, dim: usize, seed: u64) -> ndarray::Array2<f32> {
    let s = clustered(n, classes, dim, 0.3, seed);
    let flat: Vec<f32> = s
        .vectors
        .iter()
        .flat_map(|v| normalize(v).into_iter().map(|x| x as f32))
        .collect();
    ndarray::Array2::from_shape_vec((n, dim), flat).expect("shape")
}

/// Checkpoint entries (`ckpt-*.lwc`) in a cache folder, sorted.
fn checkpoint_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("ckpt-") && n.ends_with(".lwc")
        })
        .collect();
    v.sort();
    v
}

/// Names of labelwise temporaries (`.labelwise-*.tmp`, and the older `.tmp-*`) in a folder.
fn temp_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| (n.starts_with(".labelwise-") && n.ends_with(".tmp")) || n.starts_with(".tmp-"))
        .collect();
    v.sort();
    v
}

#[test]
fn an_interrupted_graph_build_resumes_from_its_checkpoints_bit_identically() {
    use labelwise::index::{self, GraphParams, IndexKind};
    use labelwise::store::atomic::remove_stale_temps;
    use labelwise::store::cache::{Cache, Checkpoints};

    let x = unit_matrix(6000, 30, 24, 7);
    let params = GraphParams {
        k: 8,
        index: IndexKind::Partitioned,
        ..GraphParams::default()
    };
    let hidden = indicatif::ProgressBar::hidden();
    let (plain, _) = index::build(x.view(), &params, &hidden).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let cache = Cache::open(&cache_dir).unwrap();
    let ck = Checkpoints::new(&cache, "graph-under-test").with_min_rows(0);
    let (cold, _, st) = index::build_resumable(x.view(), &params, &hidden, Some(&ck)).unwrap();
    assert_eq!(cold, plain, "checkpointing does not change the graph");
    assert_eq!(st.chunks, 3);
    // The partition, 3 chunks of searched rows and 3 of refined rows.
    let files = checkpoint_files(&cache_dir);
    assert_eq!(files.len(), 7, "{files:?}");
    let name = |p: &PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
    let (refined, searched): (Vec<&PathBuf>, Vec<&PathBuf>) = files
        .iter()
        .filter(|p| name(p).contains("-c"))
        .partition(|p| name(p).contains("-r-c"));
    assert_eq!((searched.len(), refined.len()), (3, 3));

    // What a SIGKILL midway through the search leaves: no refined rows yet, a torn chunk (the
    // file cut short), a corrupted one (a flipped byte under the checksum), one intact, and
    // the killed writer's temporary file.
    for r in &refined {
        std::fs::remove_file(r).unwrap();
    }
    let b = std::fs::read(searched[0]).unwrap();
    std::fs::write(searched[0], &b[..b.len() / 2]).unwrap();
    let mut b = std::fs::read(searched[1]).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(searched[1], &b).unwrap();
    std::fs::write(
        cache_dir.join(".labelwise-k1LLed.tmp"),
        b"LWCACHE\0 half an entry",
    )
    .unwrap();

    let cache = Cache::open(&cache_dir).unwrap();
    if cfg!(unix) {
        assert!(
            temp_files(&cache_dir).is_empty(),
            "the dead writer's temp is removed"
        );
    }
    let ck = Checkpoints::new(&cache, "graph-under-test").with_min_rows(0);
    let (resumed, _, st) = index::build_resumable(x.view(), &params, &hidden, Some(&ck)).unwrap();
    assert_eq!(resumed, plain, "the resumed graph is bit-identical");
    assert!(
        st.partition_resumed,
        "the k-means partition is reloaded, not refitted"
    );
    assert_eq!(
        (st.chunks_resumed, st.refined_resumed),
        (1, 0),
        "only the intact chunk is trusted"
    );
    // Another build's checkpoints are separate.
    let other = Checkpoints::new(&cache, "graph-other").with_min_rows(0);
    let (_, _, st) = index::build_resumable(x.view(), &params, &hidden, Some(&other)).unwrap();
    assert_eq!((st.chunks_resumed, st.partition_resumed), (0, false));
    assert_eq!(other.clear(), 7);
    // Once the graph is stored the caller clears its checkpoints: nothing is left.
    assert_eq!(ck.clear(), 7);
    assert!(checkpoint_files(&cache_dir).is_empty());
    assert_eq!(remove_stale_temps(&cache_dir, None), 0);
}

#[test]
fn a_rerun_removes_temporaries_a_killed_run_left_but_not_a_live_writers() {
    let wd = Workdir::new();
    let data = copy_sample(&wd);
    let (out, cache) = (wd.path("out"), wd.path("cache"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    // Left by a killed run: a half-written result, a half-written cache entry, and a temp of
    // the older cache layout.
    std::fs::write(out.join(".labelwise-aB3dE9.tmp"), b"PAR1 half a parquet").unwrap();
    std::fs::write(cache.join(".labelwise-Zy8xW7.tmp"), b"LWCACHE\0 torn").unwrap();
    std::fs::write(cache.join(".tmp-Qr5sT2"), b"LWCACHE\0 torn").unwrap();
    // A concurrent run's in-flight entry: its writer holds the lock (here: this test).
    let live_path = cache.join(".labelwise-L1veW2.tmp");
    let live = std::fs::File::create(&live_path).unwrap();
    #[cfg(unix)]
    rustix::fs::flock(&live, rustix::fs::FlockOperation::LockExclusive).unwrap();

    ok(
        &wd,
        &[
            "plan",
            data.to_str().unwrap(),
            "--out",
            "out",
            "--cache",
            "cache",
        ],
    );
    assert!(
        temp_files(&out).is_empty(),
        "out folder: {:?}",
        temp_files(&out)
    );
    assert!(out.join("summary.json").is_file());
    if cfg!(unix) {
        assert_eq!(
            temp_files(&cache),
            vec![".labelwise-L1veW2.tmp".to_string()],
            "only the live writer's temp stays"
        );
    }
    assert!(
        checkpoint_files(&cache).is_empty(),
        "no checkpoints after a finished run"
    );
    let _ = cache_entry(&cache);
    drop(live);
}

/// A run into a folder that holds an earlier run's results replaces them as a set: files the new
/// command does not write (here plan's batch.csv and report.html under `score`) are gone, so the
/// folder never mixes two runs; a failing run leaves the earlier results untouched.
#[test]
fn a_rerun_into_an_old_out_folder_leaves_no_file_of_the_old_run() {
    let wd = Workdir::new();
    let data = wd.parquet(
        "pool.parquet",
        vec![
            ("id", ids("x", 40)),
            ("embedding", emb(&unit_vectors(40, 8))),
        ],
    );
    let d = data.to_str().unwrap();
    ok(&wd, &["plan", d, "--out", "out", "--no-cache"]);
    assert!(wd.path("out/batch.csv").is_file());
    // A failing run (bad flag value, detected before any write) keeps plan's files.
    let bad = wd.run([
        "score",
        d,
        "--out",
        "out",
        "--no-cache",
        "--rarity-w-knn",
        "-1",
    ]);
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(wd.path("out/batch.csv").is_file());
    ok(&wd, &["score", d, "--out", "out", "--no-cache"]);
    let mut names: Vec<String> = dir_files(&wd.path("out"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    assert_eq!(names, ["items.parquet", "summary.json"]);
    assert_eq!(read_json(&wd.path("out/summary.json"))["command"], "score");
}
