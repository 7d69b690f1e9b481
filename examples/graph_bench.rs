//! Measures the neighbour-graph routes and near-duplicate detection; the figures go into
//! BENCHMARKS.md. Run in release mode:
//!
//! ```text
//! cargo run --release --example graph_bench -- synth 100000 exact,partitioned,hnsw 4,8,16
//! cargo run --release --example graph_bench -- dedup /work/shared/datasets/clinc150.parquet
//! cargo run --release --example graph_bench -- incremental /work/shared/datasets/clinc150.parquet 22700 1000 hnsw
//! ```
//!
//! `incremental FILE N_OLD M [hnsw]`: a pool of the first N_OLD rows plus M appended rows; a
//! full rebuild vs `incremental::extend_exact` (and the hnsw query route), time and recall@10.
//!
//! `synth N ROUTES PROBES`: clustered synthetic unit vectors (d=384, 200 clusters with Zipf(1)
//! sizes, each a centre plus a 16-dim latent subspace of spread 0.5 plus isotropic noise of norm
//! 0.3, 1% near-duplicates), then time and recall@10 (2,000 sampled items vs exact) per route.
//! `dedup FILE`: exact k=16 graph, `find_pairs` at T = 0.90/0.95/0.98 vs brute force over all
//! pairs, and the group statistics of both groupings.

use std::time::Instant;

use indicatif::ProgressBar;
use labelwise::index::{self, GraphParams, IndexKind};
use labelwise::round::dedup::{self, Grouping};
use ndarray::{linalg::general_mat_mul, s, Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

fn normal<R: Rng>(rng: &mut R) -> f32 {
    let u1: f64 = rng.gen::<f64>().max(1e-300);
    let u2: f64 = rng.gen();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

/// The synthetic pool described in research/rust_stack.md.
fn synth(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let clusters = 200;
    let latent = 16;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| {
            let mut c: Vec<f32> = (0..d).map(|_| normal(&mut rng)).collect();
            normalise(&mut c);
            c
        })
        .collect();
    let bases: Vec<Vec<f32>> = (0..clusters)
        .map(|_| {
            (0..latent * d)
                .map(|_| normal(&mut rng) * 0.5 / ((latent * d) as f32).sqrt())
                .collect()
        })
        .collect();
    let weights: Vec<f64> = (0..clusters).map(|r| 1.0 / (r + 1) as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut x = Array2::<f32>::zeros((n, d));
    x.axis_chunks_iter_mut(ndarray::Axis(0), 1024)
        .into_par_iter()
        .enumerate()
        .for_each(|(b, mut block)| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ (b as u64).wrapping_mul(0x9E37));
            for mut row in block.outer_iter_mut() {
                let mut u = rng.gen::<f64>() * total;
                let mut c = 0;
                while c + 1 < clusters && u >= weights[c] {
                    u -= weights[c];
                    c += 1;
                }
                let z: Vec<f32> = (0..latent).map(|_| normal(&mut rng)).collect();
                let v = row.as_slice_mut().expect("row-major");
                for (j, vj) in v.iter_mut().enumerate() {
                    let mut a = centres[c][j] + 0.3 / (d as f32).sqrt() * normal(&mut rng);
                    for (l, zl) in z.iter().enumerate() {
                        a += bases[c][l * d + j] * zl;
                    }
                    *vj = a;
                }
                normalise(v);
            }
        });
    // 1% near-duplicates: copies of another row with noise of norm 0.01.
    let dups = n / 100;
    for _ in 0..dups {
        let (src, dst) = (rng.gen_range(0..n), rng.gen_range(0..n));
        if src == dst {
            continue;
        }
        let mut v: Vec<f32> = x
            .row(src)
            .iter()
            .map(|&a| a + 0.01 / (d as f32).sqrt() * normal(&mut rng))
            .collect();
        normalise(&mut v);
        x.row_mut(dst).assign(&ndarray::ArrayView1::from(&v[..]));
    }
    x
}

fn run_synth(n: usize, routes: &str, probes: &[usize]) {
    let t = Instant::now();
    let x = synth(n, 384, 7);
    println!("generated {n} x 384 in {:.1} s", t.elapsed().as_secs_f64());
    for route in routes.split(',') {
        let (kind, ps): (IndexKind, Vec<usize>) = match route {
            "exact" => (IndexKind::Exact, vec![0]),
            "partitioned" => (IndexKind::Partitioned, probes.to_vec()),
            "hnsw" => (IndexKind::Hnsw, vec![0]),
            "auto" => (IndexKind::Auto, vec![index::DEFAULT_PROBES]),
            other => panic!("unknown route {other}"),
        };
        for p in ps {
            let params = GraphParams {
                k: 16,
                index: kind,
                probes: p.max(1),
                seed: 1,
            };
            let t = Instant::now();
            let (g, used) = index::build(x.view(), &params, &ProgressBar::hidden()).expect("build");
            let secs = t.elapsed().as_secs_f64();
            let r = index::recall_at_10(x.view(), &g, 2000, 3);
            println!(
                "n={n} route={used:?} probes={} k=16 time={secs:.1}s recall@10={r:.4} threads={}",
                if kind == IndexKind::Partitioned {
                    p.to_string()
                } else {
                    "-".into()
                },
                rayon::current_num_threads()
            );
        }
    }
}

/// All pairs with f64-recomputed cosine ≥ t, by blocked GEMM over the whole upper triangle.
fn brute_pairs(x: ArrayView2<f32>, t: f32) -> Vec<(u32, u32)> {
    let n = x.nrows();
    let b = 512;
    let blocks: Vec<Vec<(u32, u32)>> = (0..n.div_ceil(b))
        .into_par_iter()
        .map(|bi| {
            let r0 = bi * b;
            let r1 = (r0 + b).min(n);
            let q = x.slice(s![r0..r1, ..]);
            let mut sc = Array2::<f32>::zeros((r1 - r0, n - r0));
            general_mat_mul(1.0, &q, &x.slice(s![r0.., ..]).t(), 0.0, &mut sc);
            let mut out = Vec::new();
            for r in 0..r1 - r0 {
                for (c, &v) in sc.row(r).iter().enumerate() {
                    let (i, j) = (r0 + r, r0 + c);
                    if j > i && v >= t - 1e-3 {
                        let exact: f64 = x
                            .row(i)
                            .iter()
                            .zip(x.row(j).iter())
                            .map(|(&a, &b)| f64::from(a) * f64::from(b))
                            .sum();
                        if exact >= f64::from(t) {
                            out.push((i as u32, j as u32));
                        }
                    }
                }
            }
            out
        })
        .collect();
    blocks.concat()
}

/// The dataset at `path`, embeddings only (no carried columns).
fn load(path: &str) -> labelwise::data::dataset::Dataset {
    labelwise::data::dataset::load(
        &[path.into()],
        &labelwise::data::dataset::LoadOptions {
            carry_extra: false,
            ..Default::default()
        },
    )
    .expect("load")
}

fn run_dedup(path: &str) {
    let t = Instant::now();
    let data = load(path);
    let x = data.embeddings.view();
    println!(
        "{path}: {} x {} loaded in {:.1} s",
        x.nrows(),
        x.ncols(),
        t.elapsed().as_secs_f64()
    );
    for kind in [IndexKind::Exact, IndexKind::Partitioned] {
        let params = GraphParams {
            k: 16,
            index: kind,
            ..Default::default()
        };
        let t = Instant::now();
        let (g, _) = index::build(x, &params, &ProgressBar::hidden()).expect("graph");
        println!(
            "  graph {kind:?}: {:.1} s, recall@10 {:.4}",
            t.elapsed().as_secs_f64(),
            index::recall_at_10(x, &g, 2000, 3)
        );
        for thr in [0.90f32, 0.95, 0.98] {
            let t = Instant::now();
            let pairs = dedup::find_pairs(x, &g, f64::from(thr));
            let secs = t.elapsed().as_secs_f64();
            let truth = brute_pairs(x, thr);
            let got: std::collections::HashSet<(u32, u32)> =
                pairs.iter().map(|p| (p.a, p.b)).collect();
            let hit = truth.iter().filter(|p| got.contains(p)).count();
            let recall = if truth.is_empty() {
                1.0
            } else {
                hit as f64 / truth.len() as f64
            };
            let precision = if got.is_empty() {
                1.0
            } else {
                hit as f64 / got.len() as f64
            };
            let mut line = format!(
                "  T={thr:.2} {kind:?}: pairs={} truth={} recall={recall:.4} precision={precision:.4} find_pairs={secs:.2}s",
                pairs.len(),
                truth.len()
            );
            for grouping in [Grouping::Connected, Grouping::Star] {
                let gr = dedup::groups(x.nrows(), &pairs, &x, grouping, f64::from(thr)).unwrap();
                let largest = gr.group_size.iter().max().copied().unwrap_or(1);
                let in_groups = gr.group_size.iter().filter(|&&s| s > 1).count();
                line += &format!(
                    " | {grouping:?}: groups={} items={in_groups} largest={largest}",
                    gr.n_groups_with_duplicates
                );
            }
            println!("{line}");
        }
    }
}

/// Pairs at `t` of two graphs over the same rows: (count of a, count of b, only in a, only in b).
fn pair_diff(
    x: ArrayView2<f32>,
    a: &index::NeighborGraph,
    b: &index::NeighborGraph,
    t: f64,
) -> String {
    let pa: std::collections::HashSet<(u32, u32)> = dedup::find_pairs(x, a, t)
        .iter()
        .map(|p| (p.a, p.b))
        .collect();
    let pb: std::collections::HashSet<(u32, u32)> = dedup::find_pairs(x, b, t)
        .iter()
        .map(|p| (p.a, p.b))
        .collect();
    format!(
        "T={t}: {} vs {} pairs, {} only in the first, {} only in the second",
        pa.len(),
        pb.len(),
        pa.difference(&pb).count(),
        pb.difference(&pa).count()
    )
}

/// `incremental FILE N_OLD M [hnsw]`: the first N_OLD rows are the cached pool (its graph built
/// by the Auto route, not timed as part of the update), the next M rows are appended. Times and
/// recall@10 (2,000 sampled rows vs exact) of: a full rebuild of N_OLD+M rows by the Auto route;
/// `incremental::extend_exact`; and with `hnsw`, the hnsw query route (index build over the
/// pool, then insert + query of the new rows). Pairs at T = 0.90/0.95 are compared with the
/// rebuild's.
fn run_incremental(path: &str, n_old: usize, m: usize, with_hnsw: bool) {
    use labelwise::index::incremental;
    let data = load(path);
    let n = (n_old + m).min(data.embeddings.nrows());
    let x = data.embeddings.slice(s![..n, ..]);
    let x = x.as_standard_layout();
    let x = x.view();
    let m = n - n_old;
    let params = GraphParams::default();
    let hidden = ProgressBar::hidden();
    println!(
        "{path}: pool {n_old} + {m} appended (x {}), load avg {}",
        x.ncols(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let t = Instant::now();
    let (base, base_route) = index::build(x.slice(s![..n_old, ..]), &params, &hidden).unwrap();
    println!(
        "  base graph ({base_route:?}) of the pool: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let (full, route) = index::build(x, &params, &hidden).unwrap();
    let full_s = t.elapsed().as_secs_f64();
    let full_r = index::recall_at_10(x, &full, 2000, 7);
    println!("  rebuild ({route:?}) of {n} rows: {full_s:.2} s, recall@10 {full_r:.4}");
    let t = Instant::now();
    let ext = incremental::extend_exact(x, &base, &hidden).unwrap();
    let ext_s = t.elapsed().as_secs_f64();
    let ext_r = index::recall_at_10(x, &ext, 2000, 7);
    println!(
        "  extend_exact: {ext_s:.2} s ({:.1}x faster than the rebuild), recall@10 {ext_r:.4}; worth_extending = {}",
        full_s / ext_s,
        incremental::worth_extending(n_old, m)
    );
    let t = Instant::now();
    let hashes = incremental::chunk_hashes(x, n);
    println!(
        "  prefix chunk hashes of {n} rows ({} chunks): {:.3} s",
        hashes.len(),
        t.elapsed().as_secs_f64()
    );
    for th in [0.90, 0.95] {
        println!(
            "  pairs extend_exact vs rebuild {}",
            pair_diff(x, &ext, &full, th)
        );
    }
    if with_hnsw {
        let t = Instant::now();
        let mut idx =
            labelwise::index::hnsw::HnswIndex::build(x.slice(s![..n_old, ..]), &hidden).unwrap();
        let build_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let hg = incremental::extend_with_index(x, &base, &mut idx).unwrap();
        let upd_s = t.elapsed().as_secs_f64();
        let hr = index::recall_at_10(x, &hg, 2000, 7);
        // Recall of the new rows alone, the part the index answered.
        let new_only = {
            let exact_new = {
                let sub: Vec<usize> = (n_old..n).collect();
                let q = x.select(ndarray::Axis(0), &sub);
                let mut hits = 0usize;
                let mut total = 0usize;
                for (u, row) in q.outer_iter().enumerate() {
                    let i = n_old + u;
                    let mut sc: Vec<(f32, u32)> = (0..n)
                        .filter(|&j| j != i)
                        .map(|j| (row.dot(&x.row(j)), j as u32))
                        .collect();
                    sc.select_nth_unstable_by(9, |a, b| b.0.total_cmp(&a.0));
                    let (g, _) = hg.row(i);
                    hits += sc[..10].iter().filter(|(_, j)| g[..10].contains(j)).count();
                    total += 10;
                    if u >= 499 {
                        break;
                    }
                }
                hits as f64 / total as f64
            };
            exact_new
        };
        println!(
            "  hnsw route: index build over the pool {build_s:.2} s; insert + query {m} new rows + reverse update {upd_s:.2} s; recall@10 {hr:.4} (new rows only, 500 sampled: {new_only:.4})"
        );
        for th in [0.90, 0.95] {
            println!(
                "  pairs hnsw route vs rebuild {}",
                pair_diff(x, &hg, &full, th)
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("incremental") => {
            let num = |i: usize| -> usize { args.get(i).and_then(|s| s.parse().ok()).unwrap_or(0) };
            run_incremental(
                args.get(1).map(String::as_str).unwrap_or(""),
                num(2),
                num(3),
                args.get(4).map(String::as_str) == Some("hnsw"),
            );
        }
        Some("synth") => {
            let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
            let routes = args
                .get(2)
                .cloned()
                .unwrap_or_else(|| "exact,partitioned".into());
            let probes: Vec<usize> = args
                .get(3)
                .map(|s| s.split(',').filter_map(|p| p.parse().ok()).collect())
                .unwrap_or_else(|| vec![index::DEFAULT_PROBES]);
            run_synth(n, &routes, &probes);
        }
        Some("dedup") => {
            for p in &args[1..] {
                run_dedup(p);
            }
        }
        _ => eprintln!(
            "usage: graph_bench synth N ROUTES PROBES | graph_bench dedup FILE... | graph_bench incremental FILE N_OLD M [hnsw]"
        ),
    }
}
