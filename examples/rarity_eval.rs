//! Measures the rarity score on the shared datasets (issue 4 acceptance figures).
//!
//! ```text
//! cargo run --release --example rarity_eval -- /work/shared/datasets/clinc150.parquet \
//!     /work/shared/datasets/banking77.parquet
//! ```
//!
//! For each file: AUROC of every component and of several weightings for the rows labeled
//! `oos` (when present; all labels hidden), and rare-class reach: the share of classes present
//! among the top-B items (B = number of classes) by rarity, by mean kNN distance alone, and by
//! random choice (mean of seeds 0–2).

use std::path::PathBuf;
use std::time::Instant;

use labelwise::data::dataset::{load, LoadOptions};
use labelwise::index::{build, GraphParams, IndexKind};
use labelwise::round::rarity::{components, rank01, score, RarityParams};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// AUROC of `score` for the positives (Mann–Whitney U with mid-ranks for ties).
fn auroc(score: &[f32], pos: &[bool]) -> f64 {
    let r = rank01(score);
    let n = score.len() as f64;
    let np = pos.iter().filter(|&&p| p).count() as f64;
    let nn = n - np;
    // rank01 gives (rank-1)/(n-1) with mid-ranks; convert back to 1-based ranks.
    let sum_r: f64 = r
        .iter()
        .zip(pos)
        .filter(|(_, &p)| p)
        .map(|(&v, _)| v as f64 * (n - 1.0) + 1.0)
        .sum();
    (sum_r - np * (np + 1.0) / 2.0) / (np * nn)
}

/// Share of classes present among the `b` highest-scoring items.
fn reach(score: &[f32], labels: &[Option<u32>], n_classes: usize, b: usize) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &c| score[c].total_cmp(&score[a]).then(a.cmp(&c)));
    let mut seen = vec![false; n_classes];
    for &i in idx.iter().take(b) {
        if let Some(c) = labels[i] {
            seen[c as usize] = true;
        }
    }
    seen.iter().filter(|&&s| s).count() as f64 / n_classes as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    for path in paths {
        let t = Instant::now();
        let ds = load(std::slice::from_ref(&path), &LoadOptions::default())?;
        let n = ds.len();
        let b = ds.classes.len();
        println!(
            "\n== {} : n={n}, classes={b} (load {:.1}s)",
            path.display(),
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let gp = GraphParams {
            index: IndexKind::Exact,
            ..GraphParams::default()
        };
        let (graph, _) = build(ds.embeddings.view(), &gp, &indicatif::ProgressBar::hidden())?;
        println!(
            "graph k={} exact: {:.1}s",
            graph.k,
            t.elapsed().as_secs_f64()
        );
        let hidden = vec![None; n];
        let params = RarityParams::default();

        let t = Instant::now();
        let rar = score(ds.embeddings.view(), &graph, &hidden, None, &params, 0)?;
        println!(
            "score (defaults, all labels hidden): {:.2}s, clusters={}, weights={:?}",
            t.elapsed().as_secs_f64(),
            rar.summary.clusters,
            rar.summary.weights
        );
        println!("reasons: {:?}", rar.summary.reason_counts);

        let (comp, _) = components(ds.embeddings.view(), &graph, &hidden, None, &params, 0)?;
        let oos = ds.classes.iter().position(|c| c == "oos");
        let ranks = [
            rank01(&comp.knn),
            rank01(&comp.lof),
            rank01(&comp.small),
            rank01(&comp.far),
        ];
        let names = ["knn", "lof", "small", "far"];
        let mix = |w: [f32; 4]| -> Vec<f32> {
            let s: f32 = w.iter().sum();
            (0..n)
                .map(|i| (0..4).map(|c| w[c] * ranks[c][i]).sum::<f32>() / s)
                .collect()
        };
        let weightings: Vec<(&str, Vec<f32>)> = vec![
            ("knn only", mix([1.0, 0.0, 0.0, 0.0])),
            ("lof only", mix([0.0, 1.0, 0.0, 0.0])),
            ("small only", mix([0.0, 0.0, 1.0, 0.0])),
            ("far only", mix([0.0, 0.0, 0.0, 1.0])),
            ("equal 4", mix([1.0, 1.0, 1.0, 1.0])),
            ("knn .5 lof .5", mix([0.5, 0.5, 0.0, 0.0])),
            ("knn .7 lof .1 sm .1 far .1", mix([0.7, 0.1, 0.1, 0.1])),
            (
                "knn .6 lof .1 sm .1 far .1 (default)",
                mix([0.6, 0.1, 0.1, 0.1]),
            ),
            ("knn .5 lof .2 sm .15 far .15", mix([0.5, 0.2, 0.15, 0.15])),
            ("knn .4 lof .2 sm .2 far .2", mix([0.4, 0.2, 0.2, 0.2])),
            ("knn .8 far .2", mix([0.8, 0.0, 0.0, 0.2])),
            ("knn .8 lof .2", mix([0.8, 0.2, 0.0, 0.0])),
            ("knn .8 small .2", mix([0.8, 0.0, 0.2, 0.0])),
        ];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        let rand_reach: f64 = (0..3u64)
            .map(|s| {
                let mut r = Xoshiro256PlusPlus::seed_from_u64(s);
                let mut idx: Vec<usize> = (0..n).collect();
                idx.shuffle(&mut r);
                let mut fake = vec![0f32; n];
                for (rank, &i) in idx.iter().enumerate() {
                    fake[i] = -(rank as f32);
                }
                reach(&fake, &ds.labels, b, b)
            })
            .sum::<f64>()
            / 3.0;
        let _ = &mut rng;
        if let Some(o) = oos {
            let pos: Vec<bool> = ds.labels.iter().map(|l| *l == Some(o as u32)).collect();
            println!("oos rows: {}", pos.iter().filter(|&&p| p).count());
            for (name, c) in names
                .iter()
                .zip([&comp.knn, &comp.lof, &comp.small, &comp.far])
            {
                println!("  AUROC raw {name:<6}: {:.4}", auroc(c, &pos));
            }
            println!(
                "  AUROC rarity (score() defaults): {:.4}",
                auroc(&rar.rarity, &pos)
            );
            println!(
                "  AUROC centroid distance: {:.4}",
                auroc(&comp.centroid, &pos)
            );
            for a in [0.1f32, 0.2, 0.3, 0.5, 1.0] {
                let s: Vec<f32> = comp
                    .knn
                    .iter()
                    .zip(&comp.centroid)
                    .map(|(&x, &l)| x.max(1e-6).ln() + a * l.max(1e-6).ln())
                    .collect();
                println!(
                    "    knn * centroid^{a}: AUROC {:.4} reach {:.3}",
                    auroc(&s, &pos),
                    reach(&s, &ds.labels, b, b)
                );
                let s: Vec<f32> = comp
                    .knn
                    .iter()
                    .zip(&comp.far)
                    .map(|(&x, &l)| x.max(1e-6).ln() + a * l.max(1e-6).ln())
                    .collect();
                println!(
                    "    knn * far^{a}: AUROC {:.4} reach {:.3}",
                    auroc(&s, &pos),
                    reach(&s, &ds.labels, b, b)
                );
                let s: Vec<f32> = comp
                    .knn
                    .iter()
                    .zip(&comp.small)
                    .map(|(&x, &l)| x.max(1e-6).ln() - a * (-l).max(1.0).ln())
                    .collect();
                println!(
                    "    knn / size^{a}: AUROC {:.4} reach {:.3}",
                    auroc(&s, &pos),
                    reach(&s, &ds.labels, b, b)
                );
            }
            let rc = rank01(&comp.centroid);
            let geo = |w: [f32; 5]| -> Vec<f32> {
                let rr = [&ranks[0], &ranks[1], &ranks[2], &ranks[3], &rc];
                let eps = 1.0 / n as f32;
                (0..n)
                    .map(|i| (0..5).map(|c| w[c] * (rr[c][i] + eps).ln()).sum::<f32>())
                    .collect()
            };
            let ari = |w: [f32; 5]| -> Vec<f32> {
                let rr = [&ranks[0], &ranks[1], &ranks[2], &ranks[3], &rc];
                (0..n)
                    .map(|i| (0..5).map(|c| w[c] * rr[c][i]).sum::<f32>())
                    .collect()
            };
            for w in [
                [0.7f32, 0.0, 0.0, 0.0, 0.3],
                [0.6, 0.1, 0.0, 0.0, 0.3],
                [0.5, 0.1, 0.1, 0.1, 0.2],
                [0.6, 0.1, 0.05, 0.05, 0.2],
                [0.5, 0.0, 0.0, 0.0, 0.5],
                [0.6, 0.2, 0.0, 0.0, 0.2],
                [0.5, 0.2, 0.05, 0.05, 0.2],
            ] {
                let g = geo(w);
                let a = ari(w);
                println!("    w(knn,lof,small,far,centroid)={w:?}: geo AUROC {:.4} reach {:.3} | arith AUROC {:.4} reach {:.3}", auroc(&g, &pos), reach(&g, &ds.labels, b, b), auroc(&a, &pos), reach(&a, &ds.labels, b, b));
            }
            for m in [3usize, 5, 10, 16] {
                let d = labelwise::round::rarity::knn_distance(&graph, m.min(graph.k), n);
                println!("  AUROC mean {m}-NN distance: {:.4}", auroc(&d, &pos));
                for a in [0.1f32, 0.2, 0.3, 0.5] {
                    let s: Vec<f32> = d
                        .iter()
                        .zip(&comp.lof)
                        .map(|(&x, &l)| x.max(1e-6).ln() + a * l.max(1e-6).ln())
                        .collect();
                    println!(
                        "    knn{m} * lof^{a}: AUROC {:.4} reach {:.3}",
                        auroc(&s, &pos),
                        reach(&s, &ds.labels, b, b)
                    );
                }
            }
            for (name, s) in &weightings {
                println!(
                    "  AUROC {name:<40} {:.4}  reach@B {:.3}",
                    auroc(s, &pos),
                    reach(s, &ds.labels, b, b)
                );
            }
        } else {
            for (name, s) in &weightings {
                println!("  {name:<40} reach@B {:.3}", reach(s, &ds.labels, b, b));
            }
        }
        println!(
            "rare-class reach@B={b}: rarity {:.3}, mean kNN distance {:.3}, random {:.3} (seeds 0-2)",
            reach(&rar.rarity, &ds.labels, b, b),
            reach(&comp.knn, &ds.labels, b, b),
            rand_reach
        );
    }
    Ok(())
}
