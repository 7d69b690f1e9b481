//! Issue 8 research: the `budget` accuracy projection with other cross-validation shapes
//! (folds, subset steps, seeds averaged), to see how much of its error after 3 rounds is fold
//! noise. Mirrors `Round::run_budget`'s accuracy part (same model, pool sample of 2,000,
//! default target 95% of the law's full-pool accuracy).
//!
//! ```text
//! cargo run --release --example budget_curve -- /tmp/q8/budget-check/banking77-pool.parquet \
//!     /tmp/q8/budget-check/banking77-s0-r3.csv 0 5 6 1
//! ```
//!
//! Arguments: pool file (labels hidden), labels file, seed, folds, steps, repeats (seeds
//! `seed, seed + 1000, …` whose projections are averaged in log space). Prints the projected
//! total labels of each repeat and their geometric mean.

use std::path::PathBuf;

use labelwise::data::dataset::{load, LoadOptions};
use labelwise::round::budget;

fn main() -> labelwise::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 7 {
        return Err(labelwise::Error::Usage(
            "usage: budget_curve POOL LABELS SEED FOLDS STEPS REPEATS".into(),
        ));
    }
    let num = |i: usize| -> labelwise::Result<u64> {
        a[i].parse()
            .map_err(|_| labelwise::Error::Usage(format!("argument {i} must be a whole number")))
    };
    let (seed, folds, steps, repeats) = (num(3)?, num(4)? as usize, num(5)? as usize, num(6)?);
    let opts = LoadOptions {
        labels_file: Some(PathBuf::from(&a[2])),
        ..LoadOptions::default()
    };
    let data = load(&[PathBuf::from(&a[1])], &opts)?;
    let n = data.len();
    let labeled: Vec<usize> = (0..n).filter(|&i| data.labels[i].is_some()).collect();
    let y: Vec<u32> = labeled.iter().filter_map(|&i| data.labels[i]).collect();
    let mask: Vec<bool> = data.labels.iter().map(Option::is_some).collect();
    let model = budget::curve_model();
    let mut logs = Vec::new();
    for r in 0..repeats {
        let s = seed + 1000 * r;
        let points = budget::learning_curve(
            data.embeddings.view(),
            &labeled,
            &y,
            data.classes.len(),
            &model,
            0.95,
            folds,
            steps,
            &budget::pool_sample(&mask, 2000, s),
            s,
        )?;
        let curve = points.accuracy_curve(200, s);
        let Some(law) = curve.fit else { continue };
        let target = budget::DEFAULT_TARGET_SHARE * law.at(n as f64).clamp(0.0, 1.0);
        let total = curve.labels_for(target).map(|e| e.0);
        println!(
            "seed {s}: law a={:.3} b={:.2} c={:.2}, target {target:.3}, now {:?}, projected {:?}",
            law.a, law.b, law.c, curve.now, total
        );
        if let Some(t) = total {
            logs.push(t.ln());
        }
    }
    if !logs.is_empty() {
        let g = (logs.iter().sum::<f64>() / logs.len() as f64).exp();
        println!("geometric mean of {} projections: {g:.0}", logs.len());
    }
    Ok(())
}
