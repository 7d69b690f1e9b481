//! Issue 8 research harness: does a self-simulation on a pseudo-labeled pool predict how many
//! labels the real active-learning run needed to reach 95% of its full-pool accuracy?
//!
//! ```text
//! cargo run --release --example budget_selfsim -- ../shared/datasets/banking77.parquet \
//!     --out /tmp/ss --batch 77 --rounds 20 --seed 0 --cache /tmp/q8/cache \
//!     --selections /tmp/q8/banking77-hybrid-s0/selections.csv --after 3 --variant argmax
//! ```
//!
//! Pseudo world: the pool's rows (train + val), labeled by `--variant`, split 80/20 (seeded) into
//! a pseudo pool and pseudo test rows, then replayed with `simulate`'s own `setup`-shaped state
//! and `replay` (the same hybrid loop, autolabel, rarity and selection code) from no labels. It
//! prints the pseudo world's full-pool accuracy, the labels at the first round reaching 95% of
//! it (`needed`, as `simulate` reads it) and the curve. Variants:
//!
//! - `oracle`: the hidden true pool labels. Not available to `budget`; it is the ceiling of any
//!   self-simulation on the pool (what a perfect pseudo-labeler would give).
//! - `argmax`: the yardstick fitted on the labels of rounds 1..`--after` (the labeled rows keep
//!   their labels), its predicted class for every other pool row.
//! - `sample`: a label drawn from its predicted distribution (sharpened by `--temperature`).
//! - `selftrain`: one self-training step (refit on the labels plus `argmax` everywhere else).
//! - `knn`: similarity-weighted vote of the 10 most similar labeled rows (cosine).
//!
//! `benches/budget_selfsim.sh VARIANT` runs the six issue-8 cells; results are in
//! benches/results/budget.md (Session 3). Only test rows of the *pool* are scored here, while
//! `simulate` scores the file's test rows: the oracle's gap to `simulate` measures that mismatch.

use std::path::PathBuf;

use clap::Parser;
use labelwise::cli::simulate::Cmd;
use labelwise::model::{argmax_rows, Classifier};
use labelwise::progress::Progress;
use labelwise::round::timings::Timings;
use labelwise::simulate;
use labelwise::simulate::replay as simcmd;
use ndarray::Axis;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    sim: Cmd,
    #[arg(long)]
    selections: PathBuf,
    #[arg(long, default_value_t = 3)]
    after: usize,
    #[arg(long, default_value = "argmax")]
    variant: String,
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
}

fn main() -> labelwise::Result<()> {
    let args = Args::parse();
    let progress = Progress::hidden();
    let seed = args.sim.run.seed;
    let params = args.sim.params()?;
    let opts = args.sim.input.load_options(true);
    let setup = simcmd::setup(&args.sim.input.data, &opts, None, &params, progress)?;
    let n_pool = setup.prepared.data.len();
    let n_classes = setup.data.classes.len();
    let index: std::collections::HashMap<&str, usize> = setup
        .prepared
        .data
        .ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let text = std::fs::read_to_string(&args.selections)
        .map_err(|e| labelwise::Error::io(&args.selections, e))?;
    let mut labeled: Vec<usize> = Vec::new();
    for (row, line) in text.lines().enumerate().skip(1) {
        let bad = || {
            labelwise::Error::Usage(format!(
                "{}: row {}: expected `round,id[,reason]` with an id of the pool",
                args.selections.display(),
                row + 1
            ))
        };
        // simulate's selections.csv: round,id,reason (older files: round,id).
        let mut cols = line.split(',');
        let (r, id) = (cols.next().ok_or_else(bad)?, cols.next().ok_or_else(bad)?);
        if r.parse::<usize>().map_err(|_| bad())? <= args.after {
            labeled.push(*index.get(id).ok_or_else(bad)?);
        }
    }
    let y: Vec<u32> = labeled.iter().map(|&i| setup.pool_truth[i]).collect();
    let emb = setup.prepared.data.embeddings.clone();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 77);
    let pseudo: Vec<u32> = match args.variant.as_str() {
        "oracle" => setup.pool_truth.clone(),
        v => {
            let xs = emb.select(Axis(0), &labeled);
            let model = simulate::yardstick().fit(xs.view(), &y, n_classes)?;
            let proba = model.predict_proba(emb.view())?;
            let mut p: Vec<u32> = match v {
                "argmax" => argmax_rows(&proba).0,
                "sample" => proba
                    .outer_iter()
                    .map(|row| {
                        let w: Vec<f32> = row
                            .iter()
                            .map(|&q| q.max(1e-12).powf(1.0 / args.temperature))
                            .collect();
                        let s: f32 = w.iter().sum();
                        let mut u = rng.gen::<f32>() * s;
                        for (c, &q) in w.iter().enumerate() {
                            u -= q;
                            if u <= 0.0 {
                                return c as u32;
                            }
                        }
                        (w.len() - 1) as u32
                    })
                    .collect(),
                "selftrain" => {
                    // One self-training step: refit on the labeled rows plus every other pool
                    // row with the first model's prediction, predict again.
                    let mut all = argmax_rows(&proba).0;
                    for (&i, &l) in labeled.iter().zip(&y) {
                        all[i] = l;
                    }
                    let refit = simulate::yardstick().fit(emb.view(), &all, n_classes)?;
                    argmax_rows(&refit.predict_proba(emb.view())?).0
                }
                "knn" => {
                    // Vote of the 10 most similar labeled rows (cosine), similarity-weighted.
                    let sims = emb.dot(&xs.t());
                    sims.outer_iter()
                        .map(|row| {
                            let mut idx: Vec<usize> = (0..row.len()).collect();
                            idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                            let mut votes = vec![0f32; n_classes];
                            for &j in idx.iter().take(10) {
                                votes[y[j] as usize] += row[j].max(0.0);
                            }
                            (0..n_classes)
                                .max_by(|&a, &b| votes[a].total_cmp(&votes[b]))
                                .unwrap_or(0) as u32
                        })
                        .collect()
                }
                other => {
                    return Err(labelwise::Error::Usage(format!(
                        "--variant must be oracle, argmax, selftrain, sample or knn, got {other}"
                    )))
                }
            };
            for (&i, &l) in labeled.iter().zip(&y) {
                p[i] = l;
            }
            p
        }
    };
    let agree = pseudo
        .iter()
        .zip(&setup.pool_truth)
        .filter(|(a, b)| a == b)
        .count() as f64
        / n_pool as f64;
    // Pseudo world: 80/20 of the pool rows.
    let mut order: Vec<usize> = (0..n_pool).collect();
    order.shuffle(&mut rng);
    let n_test = n_pool / 5;
    let mut ptest = order[..n_test].to_vec();
    let mut ppool = order[n_test..].to_vec();
    ptest.sort_unstable();
    ppool.sort_unstable();
    let mut world = simcmd::setup_split(
        &params,
        setup.prepared.data.clone(),
        pseudo,
        simulate::PoolSplit {
            pool: ppool,
            test: ptest,
            holdout: Vec::new(),
            method: "pseudo".into(),
        },
        progress,
        Timings::default(),
    )?;
    let full = world.full_pool;
    let replay = simcmd::replay(&mut world, &params, &params.round.select, progress)?;
    let needed = simulate::labels_to_reach(&replay.rows, full.0, 0.95);
    let accs: Vec<String> = replay
        .rows
        .iter()
        .map(|r| format!("{:.3}", r.accuracy))
        .collect();
    println!(
        "variant={} agree={agree:.3} labeled={} full={:.3} needed={:?} curve={}",
        args.variant,
        labeled.len(),
        full.0,
        needed,
        accs.join(",")
    );
    Ok(())
}
