//! Measures batch selection on the shared datasets (issue 6 acceptance figures).
//!
//! ```text
//! cargo run --release --example select_eval -- /work/shared/datasets/clinc150.parquet \
//!     /work/shared/datasets/banking77.parquet
//! ```
//!
//! 1. Cold start: no labels, batch = number of classes, seeds 0–2: distinct true classes reached
//!    by every strategy (random is the yardstick; the target is ≥ 1.2 × random), and time.
//! 2. A short active-learning run (pool = train+val rows, test = test rows, B = classes clipped
//!    to [20, 100], 5 rounds, seed 0) with a cheap proxy model (softmax over cosine to class
//!    centroids, temperature 0.05) for both probabilities and accuracy. This is a proxy for the
//!    `simulate` yardstick (logistic regression), useful to compare strategies, not to quote.

use std::path::PathBuf;
use std::time::Instant;

use labelwise::data::dataset::{load, LoadOptions};
use labelwise::index::{build, GraphParams, IndexKind};
use labelwise::round::rarity::{score, RarityParams};
use labelwise::round::select::{select, SelectInput, SelectParams, Strategy};
use labelwise::round::uncertainty::ItemUncertainty;
use ndarray::{Array2, ArrayView2};

fn distinct(picked: &[u32], truth: &[Option<u32>]) -> usize {
    let mut s: Vec<u32> = picked.iter().filter_map(|&i| truth[i as usize]).collect();
    s.sort_unstable();
    s.dedup();
    s.len()
}

/// Softmax over cosine to class centroids of the labeled items (classes never labeled get 0).
fn centroid_probs(emb: ArrayView2<f32>, labels: &[Option<u32>], c: usize) -> Array2<f32> {
    let d = emb.ncols();
    let mut cent = Array2::<f32>::zeros((c, d));
    let mut cnt = vec![0usize; c];
    for (i, l) in labels.iter().enumerate() {
        if let Some(l) = l {
            let mut r = cent.row_mut(*l as usize);
            r += &emb.row(i);
            cnt[*l as usize] += 1;
        }
    }
    for (k, mut r) in cent.outer_iter_mut().enumerate() {
        let nrm = r.dot(&r).sqrt();
        if cnt[k] > 0 && nrm > 0.0 {
            r /= nrm;
        }
    }
    let mut p = emb.dot(&cent.t());
    for mut row in p.outer_iter_mut() {
        let mx = row
            .iter()
            .enumerate()
            .filter(|(k, _)| cnt[*k] > 0)
            .map(|(_, &v)| v)
            .fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0.0;
        for (k, v) in row.iter_mut().enumerate() {
            *v = if cnt[k] > 0 {
                ((*v - mx) / 0.05).exp()
            } else {
                0.0
            };
            s += *v;
        }
        row.mapv_inplace(|v| v / s);
    }
    p
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    for path in paths {
        let ds = load(std::slice::from_ref(&path), &LoadOptions::default())?;
        let n = ds.len();
        let c = ds.classes.len();
        let emb = ds.embeddings.view();
        let gp = GraphParams {
            index: IndexKind::Exact,
            ..GraphParams::default()
        };
        let (graph, _) = build(emb, &gp, &indicatif::ProgressBar::hidden())?;
        println!("\n== {}: n={n}, classes={c}", path.display());

        // 1. Cold start over the whole file.
        let none = vec![None; n];
        let all = vec![true; n];
        let nodup = vec![-1i64; n];
        let input = SelectInput {
            labels: &none,
            eligible: &all,
            representative: None,
            uncertainty: None,
            audited: None,
        };
        for strat in [
            Strategy::Random,
            Strategy::Typiclust,
            Strategy::Hybrid,
            Strategy::Coreset,
        ] {
            let mut tot = 0usize;
            let t = Instant::now();
            for seed in 0..3u64 {
                let p = SelectParams {
                    batch: c,
                    strategy: strat,
                    seed,
                    ..SelectParams::default()
                };
                let sel = select(&emb, &graph, &input, &nodup, None, &p)?;
                tot += distinct(&sel.picked, &ds.labels);
            }
            println!(
                "cold start B={c} {strat:?}: mean distinct classes {:.1} ({:.2} of classes), {:.2}s/seed",
                tot as f64 / 3.0,
                tot as f64 / 3.0 / c as f64,
                t.elapsed().as_secs_f64() / 3.0
            );
        }

        // 2. Short AL run with the proxy model.
        let split_col = ds.carried.iter().position(|cc| cc.field.name() == "split");
        let is_test: Vec<bool> = (0..n)
            .map(|i| split_col.is_some_and(|col| ds.carried_text(col, i) == "test"))
            .collect();
        let b = c.clamp(20, 100);
        let rar = score(emb, &graph, &none, None, &RarityParams::default(), 0)?;
        let strats: Vec<Strategy> = if std::env::var("LW_ONLY_HYBRID").is_ok() {
            vec![Strategy::Hybrid]
        } else {
            vec![
                Strategy::Random,
                Strategy::Margin,
                Strategy::Coreset,
                Strategy::Typiclust,
                Strategy::Hybrid,
            ]
        };
        for strat in strats {
            let mut labels: Vec<Option<u32>> = vec![None; n];
            let mut accs = Vec::new();
            let mut secs = 0.0;
            for round in 0..5 {
                let model = labels.iter().any(|l| l.is_some()).then(|| {
                    ItemUncertainty::from_probabilities(centroid_probs(emb, &labels, c).view())
                });
                let eligible: Vec<bool> =
                    (0..n).map(|i| !is_test[i] && labels[i].is_none()).collect();
                let input = SelectInput {
                    labels: &labels,
                    eligible: &eligible,
                    representative: None,
                    uncertainty: model.as_ref(),
                    audited: None,
                };
                let env = |k: &str, d: f32| -> f32 {
                    std::env::var(k)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(d)
                };
                let def = SelectParams::default();
                let p = SelectParams {
                    batch: b,
                    strategy: strat,
                    seed: 0,
                    w_uncertainty: env("LW_WU", def.w_uncertainty),
                    w_density: env("LW_WD", def.w_density),
                    w_class: env("LW_WC", def.w_class),
                    w_rarity: env("LW_WR", def.w_rarity),
                    diversity: env("LW_DIV", def.diversity),
                    ..def
                };
                let t = Instant::now();
                let sel = select(&emb, &graph, &input, &nodup, Some(&rar.rarity), &p)?;
                secs += t.elapsed().as_secs_f64();
                for &i in &sel.picked {
                    labels[i as usize] = ds.labels[i as usize];
                }
                let probs = centroid_probs(emb, &labels, c);
                let (mut ok, mut tot) = (0usize, 0usize);
                for i in (0..n).filter(|&i| is_test[i]) {
                    let row = probs.row(i);
                    let mut best = 0;
                    for k in 0..c {
                        if row[k] > row[best] {
                            best = k;
                        }
                    }
                    tot += 1;
                    if ds.labels[i] == Some(best as u32) {
                        ok += 1;
                    }
                }
                let _ = round;
                accs.push(ok as f64 / tot.max(1) as f64);
            }
            let found = {
                let mut s: Vec<u32> = labels.iter().flatten().copied().collect();
                s.sort_unstable();
                s.dedup();
                s.len()
            };
            println!(
                "proxy AL B={b} x5 {strat:?}: acc per round {:?}, mean {:.3}, classes found {found}, select {:.2}s/round",
                accs.iter().map(|a| (a * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
                accs.iter().sum::<f64>() / accs.len() as f64,
                secs / 5.0
            );
        }
    }
    Ok(())
}
