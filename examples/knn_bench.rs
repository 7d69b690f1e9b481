//! Times the kNN vote's large-prediction path (inverted file over the labeled items) against the
//! exact GEMM, and measures how often the two agree (issue 5: `autolabel` at 1,000,000 rows).
//!
//! ```text
//! cargo run --release --example synth -- --rows 1000000 --dim 384 --labeled-share 0.01 --out /tmp/lw1m/synth1m-l1.parquet
//! cargo run --release --example knn_bench -- /tmp/lw1m/synth1m-l1.parquet 50000
//! cargo run --release --example knn_bench -- ../shared/datasets/clinc150.parquet 100000 0.5
//! ```
//!
//! Fits the default kNN vote on the file's labeled rows, predicts every unlabeled row with the
//! inverted file, and predicts the first `exact_rows` unlabeled rows (second argument, default
//! 50,000) with the exact GEMM too. A third argument keeps only that seeded share of the
//! labels (for fully labeled files). Prints both times per 1,000 rows, the argmax agreement and
//! the largest probability difference on the compared rows, and the share of rows whose
//! probabilities differ by more than 0.01.

use std::path::PathBuf;
use std::time::Instant;

use labelwise::data::dataset::{load, LoadOptions};
use labelwise::model::KnnVote;
use ndarray::{s, Axis};
use rand::{Rng, SeedableRng};

fn argmax(row: ndarray::ArrayView1<f32>) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: knn_bench FILE [EXACT_ROWS]")?);
    let exact_rows: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50_000);
    let t = Instant::now();
    let ds = load(&[path], &LoadOptions::default())?;
    eprintln!("load: {:.1} s", t.elapsed().as_secs_f64());
    // A fully labeled file (the shared datasets) keeps a seeded random share of its labels.
    let keep: f64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1.0);
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0);
    let kept: Vec<bool> = (0..ds.embeddings.nrows())
        .map(|i| ds.labels[i].is_some() && rng.gen::<f64>() < keep)
        .collect();
    let (lab_idx, unl_idx): (Vec<usize>, Vec<usize>) =
        (0..ds.embeddings.nrows()).partition(|&i| kept[i]);
    let y: Vec<u32> = lab_idx.iter().filter_map(|&i| ds.labels[i]).collect();
    let x_lab = ds.embeddings.select(Axis(0), &lab_idx);
    let x_unl = ds.embeddings.select(Axis(0), &unl_idx);
    let model = KnnVote::default().fit_knn(x_lab.view(), &y, ds.classes.len())?;

    let t = Instant::now();
    let ivf = model.predict_proba_inverted_file(x_unl.view())?;
    let ivf_s = t.elapsed().as_secs_f64();

    let m = exact_rows.min(unl_idx.len());
    let part = x_unl.slice(s![..m, ..]);
    let t = Instant::now();
    let exact = model.predict_proba_excluding(part, &vec![None; m])?;
    let exact_s = t.elapsed().as_secs_f64();

    let mut agree = 0usize;
    let mut max_diff = 0.0f32;
    let mut off = 0usize;
    for i in 0..m {
        let row_diff = ivf
            .row(i)
            .iter()
            .zip(exact.row(i))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        if row_diff > 0.01 {
            off += 1;
        }
        if argmax(ivf.row(i)) == argmax(exact.row(i)) {
            agree += 1;
        }
        for (a, b) in ivf.row(i).iter().zip(exact.row(i)) {
            max_diff = max_diff.max((a - b).abs());
        }
    }
    println!(
        "rows {} labeled {} classes {} | inverted file: {:.1} s ({:.2} ms per 1,000 rows) | exact on {m} rows: {:.1} s ({:.2} ms per 1,000 rows) | speed-up {:.1}× | argmax agreement {:.4} | max prob diff {:.3} | rows off by > 0.01 {:.4}",
        unl_idx.len(),
        lab_idx.len(),
        ds.classes.len(),
        ivf_s,
        ivf_s * 1e6 / unl_idx.len() as f64,
        exact_s,
        exact_s * 1e6 / m as f64,
        (exact_s / m as f64) / (ivf_s / unl_idx.len() as f64),
        agree as f64 / m as f64,
        max_diff,
        off as f64 / m as f64
    );
    Ok(())
}
