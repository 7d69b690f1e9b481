//! Criterion benches of the neighbour-graph kernels (exact and partitioned) and of k-means on a
//! modest synthetic clustered pool (default 20,000 × 384; set `LABELWISE_BENCH_N` to change it).
//! Larger measurements with recall: `cargo run --release --example graph_bench`.

use criterion::{criterion_group, criterion_main, Criterion};
use indicatif::ProgressBar;
use labelwise::index::kmeans;
use labelwise::index::{self, GraphParams, IndexKind};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;

/// Unit rows around 100 random centres, noise of norm ≈ 0.6.
fn clustered(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut normal = move || -> f32 {
        let u1: f64 = rng.gen::<f64>().max(1e-300);
        let u2: f64 = rng.gen();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    };
    let centres: Vec<f32> = (0..100 * d).map(|_| normal() / (d as f32).sqrt()).collect();
    let mut x = Array2::<f32>::zeros((n, d));
    for (i, mut row) in x.outer_iter_mut().enumerate() {
        let c = (i * 7919) % 100;
        for (j, v) in row.iter_mut().enumerate() {
            *v = centres[c * d + j] + 0.6 * normal() / (d as f32).sqrt();
        }
        let nn = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.mapv_inplace(|v| v / nn);
    }
    x
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("LABELWISE_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let x = clustered(n, 384, 1);
    let mut g = c.benchmark_group(format!("graph_{n}x384"));
    g.sample_size(10);
    for (name, kind) in [
        ("exact", IndexKind::Exact),
        ("partitioned", IndexKind::Partitioned),
    ] {
        let params = GraphParams {
            index: kind,
            ..Default::default()
        };
        g.bench_function(name, |b| {
            b.iter(|| index::build(black_box(x.view()), &params, &ProgressBar::hidden()))
        });
    }
    let k = kmeans::default_k(n);
    g.bench_function(format!("kmeans_k{k}_10iter"), |b| {
        b.iter(|| kmeans::fit(black_box(x.view()), k, 10, 1))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
