//! Compares selection variants with the exact `simulate` loop (same split, graph, duplicates,
//! auto-labeling, yardstick), sharing the label-independent work between variants.
//!
//! ```text
//! cargo run --release --example al_lab -- /work/shared/datasets/agnews.parquet --batch 20 \
//!     --rounds 15 --out /tmp/lab -- 0,1,2 random typiclust hybrid typiclust:typ=knn20
//! ```
//!
//! Everything before `--` is `simulate`'s flags (`--seed` is replaced by each listed seed);
//! after it come the seeds and the variants. A variant is a strategy name, optionally followed
//! by `:key=value,...` overriding `SelectParams` fields: `wu`, `wd`, `wc`, `wr`, `div`, `cold`
//! (cold-start labels), `typn` (typical neighbours), `cov` (coverage clusters), `lam`
//! (coverage uncertainty), `rs` (TypiClust k-means runs), `need`
//! (coverage cluster uncertainty weight). Prints per-round accuracy per seed
//! and the mean AULC per variant.

use clap::Parser;
use labelwise::cli::simulate::Cmd;
use labelwise::progress::Progress;
use labelwise::round::select::{SelectParams, Strategy};
use labelwise::simulate::replay::{replay, setup};

#[derive(Parser)]
struct Lab {
    #[command(flatten)]
    cmd: Cmd,
    #[arg(last = true)]
    rest: Vec<String>,
}

fn variant(spec: &str, base: &SelectParams) -> Result<SelectParams, String> {
    let (name, opts) = spec.split_once(':').unwrap_or((spec, ""));
    let strategy = <Strategy as clap::ValueEnum>::from_str(name, true)?;
    let mut p = SelectParams {
        strategy,
        ..base.clone()
    };
    for kv in opts.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or(format!("bad option {kv}"))?;
        let f = || v.parse::<f32>().map_err(|e| format!("{kv}: {e}"));
        match k {
            "wu" => p.w_uncertainty = f()?,
            "wd" => p.w_density = f()?,
            "wc" => p.w_class = f()?,
            "wr" => p.w_rarity = f()?,
            "div" => p.diversity = f()?,
            "cold" => p.cold_start_labels = f()? as usize,
            "lam" => p.coverage_uncertainty = f()?,
            "typn" => p.typical_neighbors = f()? as usize,
            "cov" => p.coverage_clusters = f()? as usize,
            "rs" => p.typiclust_restarts = f()? as usize,
            "need" => p.coverage_need = f()?,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(p)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut lab = Lab::parse();
    let seeds: Vec<u64> = lab
        .rest
        .first()
        .ok_or("seeds missing")?
        .split(',')
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let variants = lab.rest[1..].to_vec();
    let progress = Progress::new(true);
    let mut aulc: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut first: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut secs: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for &seed in &seeds {
        lab.cmd.run.seed = seed;
        let params = lab.cmd.params()?;
        let base = params.round.select.clone();
        let opts = lab.cmd.input.load_options(true);
        let mut s = setup(&lab.cmd.input.data, &opts, None, &params, progress)?;
        for (v, spec) in variants.iter().enumerate() {
            let p = variant(spec, &base)?;
            let r = replay(&mut s, &params, &p, progress)?;
            let acc: Vec<f64> = r.rows.iter().map(|x| x.accuracy).collect();
            let a = acc.iter().sum::<f64>() / acc.len().max(1) as f64;
            let t = r.rows.iter().map(|x| x.select_seconds).sum::<f64>() / acc.len().max(1) as f64;
            println!(
                "seed {seed} {spec:<40} AULC {a:.4} sel {t:.2}s classes@1 {} | {}",
                r.rows.first().map_or(0, |x| x.classes_found),
                acc.iter()
                    .map(|x| format!("{:.3}", x))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            aulc[v].push(a);
            first[v].push(r.rows.first().map_or(0.0, |x| x.classes_found as f64));
            secs[v].push(t);
        }
    }
    println!("\nmean over seeds {seeds:?}:");
    for (v, spec) in variants.iter().enumerate() {
        let m = |x: &[f64]| x.iter().sum::<f64>() / x.len().max(1) as f64;
        println!(
            "{spec:<40} AULC {:.4}  classes@1 {:.1}  select {:.2}s/round",
            m(&aulc[v]),
            m(&first[v]),
            m(&secs[v])
        );
    }
    Ok(())
}
