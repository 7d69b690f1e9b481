//! What checkpointing costs a cold graph build, and what resuming saves (issue 9). Release mode:
//!
//! ```text
//! cargo run --release --example synth -- --rows 200000 --dim 384 --out /tmp/synth200k.parquet
//! cargo run --release --example checkpoint_bench -- /tmp/synth200k.parquet [REPS] [auto|exact|partitioned]
//! ```
//!
//! Per repetition, side by side (the machine is shared, so compare within a repetition):
//! 1. `plain`: `graph::build`, no checkpoints;
//! 2. `ckpt-cold`: `build_resumable` into an empty cache folder (every chunk and the partition
//!    written, fsynced);
//! 3. `resume-50%`: refined chunks and odd-numbered search chunks deleted (a kill halfway
//!    through the search): partition and half the search chunks loaded, the rest computed;
//! 4. `resume-search`: refined chunks deleted (a kill after the search, before refinement);
//! 5. `resume-100%`: every chunk present (a kill after the graph was built, e.g. while its
//!    recall is measured, before the final cache entry is written).
//!
//! Every resumed graph is checked bit-identical to `plain`. Prints one line per build. Because
//! wall times on a shared machine swing by ±30% between identical builds, the checkpoint cost is
//! also measured directly: the time spent inside the store's `save` (serialise, write, fsync,
//! rename) and `load` calls.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use labelwise::data::dataset::{self, LoadOptions};
use labelwise::index::{self, CheckpointStore, GraphParams, IndexKind};
use labelwise::store::cache::{Cache, Checkpoints};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: checkpoint_bench FILE.parquet [REPS] [auto|exact|partitioned]");
        std::process::exit(2);
    };
    let reps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let index = match args.get(2).map(String::as_str) {
        Some("exact") => IndexKind::Exact,
        Some("partitioned") => IndexKind::Partitioned,
        _ => IndexKind::Auto,
    };
    let t = Instant::now();
    let data = dataset::load(&[PathBuf::from(file)], &LoadOptions::default()).expect("load");
    let emb = data.embeddings.view();
    let n = emb.nrows();
    println!(
        "loaded {n} x {} in {:.1}s; threads {}",
        emb.ncols(),
        t.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    let params = GraphParams {
        index,
        ..GraphParams::default()
    };
    let hidden = ProgressBar::hidden();
    let dir = tempfile::tempdir().expect("tempdir");
    for rep in 0..reps {
        let (t, c) = (Instant::now(), cpu_seconds());
        let (plain, route) = index::build(emb, &params, &hidden).expect("build");
        let t_plain = t.elapsed().as_secs_f64();
        let c_plain = cpu_seconds() - c;
        println!("rep {rep} plain          {t_plain:7.2}s  route {route:?}; CPU {c_plain:.1}s");

        let cache = Cache::open(dir.path().join(format!("cache{rep}"))).expect("cache");
        let ck = Checkpoints::new(&cache, &format!("graph-bench-{rep}"));
        let timed = Timed {
            inner: &ck,
            spent: Mutex::new((Duration::ZERO, Duration::ZERO)),
        };
        let store: &dyn CheckpointStore = &timed;
        let (t, c) = (Instant::now(), cpu_seconds());
        let (g, _, st) = index::build_resumable(emb, &params, &hidden, Some(store)).expect("b");
        let t_cold = t.elapsed().as_secs_f64();
        let c_cold = cpu_seconds() - c;
        assert!(g == plain, "checkpointed build differs");
        let bytes: u64 = std::fs::read_dir(cache.dir())
            .expect("dir")
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        println!(
            "rep {rep} ckpt-cold      {t_cold:7.2}s  ({:+.1}% vs plain; {} chunks, {:.1} MB written)",
            100.0 * (t_cold / t_plain - 1.0),
            st.chunks,
            bytes as f64 / 1e6
        );
        let (save, _) = timed.take();
        println!(
            "rep {rep}   time inside checkpoint saves: {:.2}s = {:.1}% of the checkpointed build; CPU {c_cold:.1}s ({:+.1}% vs plain)",
            save.as_secs_f64(),
            100.0 * save.as_secs_f64() / t_cold,
            100.0 * (c_cold / c_plain - 1.0)
        );

        // A kill midway through the search: no refined rows, half the searched ones.
        drop_chunks(cache.dir(), |refined, i| refined || i % 2 == 1);
        let t = Instant::now();
        let (g, _, st) = index::build_resumable(emb, &params, &hidden, Some(store)).expect("b");
        let t_half = t.elapsed().as_secs_f64();
        assert!(g == plain, "resumed build differs");
        println!(
            "rep {rep} resume-50%     {t_half:7.2}s  ({:.0}% of plain; {}/{} search chunks resumed, partition {})",
            100.0 * t_half / t_plain,
            st.chunks_resumed,
            st.chunks,
            if st.partition_resumed { "resumed" } else { "refitted" }
        );
        let (save, load) = timed.take();
        println!(
            "rep {rep}   time inside checkpoint loads {:.2}s, saves {:.2}s",
            load.as_secs_f64(),
            save.as_secs_f64()
        );

        // A kill after the search, before refinement.
        drop_chunks(cache.dir(), |refined, _| refined);
        let t = Instant::now();
        let (g, _, st) = index::build_resumable(emb, &params, &hidden, Some(store)).expect("b");
        let t_s = t.elapsed().as_secs_f64();
        assert!(g == plain, "resumed build differs");
        println!(
            "rep {rep} resume-search  {t_s:7.2}s  ({:.0}% of plain; {}/{} search chunks resumed, {} refined)",
            100.0 * t_s / t_plain,
            st.chunks_resumed,
            st.chunks,
            st.refined_resumed
        );

        let t = Instant::now();
        let (g, _, st) = index::build_resumable(emb, &params, &hidden, Some(store)).expect("b");
        let t_full = t.elapsed().as_secs_f64();
        assert!(g == plain, "resumed build differs");
        println!(
            "rep {rep} resume-100%    {t_full:7.2}s  ({:.0}% of plain; {}/{} search, {} refined chunks resumed)",
            100.0 * t_full / t_plain,
            st.chunks_resumed,
            st.chunks,
            st.refined_resumed
        );
        println!("rep {rep} cleared {} checkpoint entries", ck.clear());
    }
}

/// Deletes the chunk checkpoints for which `drop(refined, index)` holds.
fn drop_chunks(dir: &std::path::Path, drop: impl Fn(bool, usize) -> bool) {
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((head, tail)) = name.rsplit_once("-c") else {
            continue;
        };
        let Some(i) = tail
            .strip_suffix(".lwc")
            .and_then(|r| r.parse::<usize>().ok())
        else {
            continue;
        };
        if drop(head.ends_with("-r"), i) {
            std::fs::remove_file(e.path()).expect("rm");
        }
    }
}

/// A store that times the calls it forwards.
struct Timed<'a> {
    inner: &'a dyn CheckpointStore,
    /// (save, load) time so far.
    spent: Mutex<(Duration, Duration)>,
}

impl Timed<'_> {
    /// (save, load) time since the last call.
    fn take(&self) -> (Duration, Duration) {
        std::mem::take(&mut *self.spent.lock().expect("lock"))
    }
}

impl CheckpointStore for Timed<'_> {
    fn min_rows(&self) -> usize {
        self.inner.min_rows()
    }
    fn load(&self, name: &str) -> Option<Vec<u8>> {
        let t = Instant::now();
        let r = self.inner.load(name);
        self.spent.lock().expect("lock").1 += t.elapsed();
        r
    }
    fn save(&self, name: &str, bytes: &[u8]) {
        let t = Instant::now();
        self.inner.save(name, bytes);
        self.spent.lock().expect("lock").0 += t.elapsed();
    }
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, 100 ticks/s); 0
/// where unavailable. Less sensitive than wall time to other processes on a shared machine.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}
