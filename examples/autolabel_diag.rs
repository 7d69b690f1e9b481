//! Diagnostics for auto-labeling (issue 5), for choosing models and scores, not for the verdict
//! (that is `autolabel_eval`): per model and score (`max` probability or `margin`), the
//! cross-validated and hidden-label accuracy, the best coverage any threshold could reach at
//! precision 0.95 / 0.97 / 0.98 on the hidden labels (an oracle: it looks at them, so it bounds what a
//! certified threshold can reach), and the coverage / realized precision of one global
//! certified threshold transferred by rank.
//!
//! ```text
//! cargo run --release --example autolabel_diag -- [--datasets banking77,clinc150,agnews]
//!     [--models knn+centroid,logistic,logistic@0.03@100,knn@30+centroid,spread+centroid]
//!     [--kinds max,margin]
//!     [--scans burn4] [--level 0.95] [--folds 5] [--shares 0.05,0.10] [--seeds 0,1,2]
//! ```
//!
//! `CURVE=1` prints the cumulative out-of-fold and hidden precision curves; `FOLDTEST=s` prints
//! each fold model's precision at the top share `s` of its own test fold and of the hidden
//! items (whether the cross-validated record is representative).

use labelwise::model::cv::cross_validate;
use labelwise::model::{Classifier, GaussianNb, KnnVote, Logistic, ModelSpec, NearestCentroid};
use labelwise::round::calibrate::{min_count_for, select_threshold, Score};
use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::time::Instant;

#[path = "protocol_pool/mod.rs"]
mod protocol_pool;
use protocol_pool::{arg_value, exact_graph, read, BoxError};

fn parse_one(m: &str) -> ModelSpec {
    if let Some(a) = m.strip_prefix("logistic@") {
        let mut it = a.split('@');
        let alpha = it.next().unwrap().parse().unwrap();
        let iters = it.next().map_or(50, |v| v.parse().unwrap());
        return ModelSpec::Logistic(Logistic {
            alpha,
            max_iterations: iters,
            ..Default::default()
        });
    }
    if let Some(k) = m.strip_prefix("knn@") {
        return ModelSpec::Knn(KnnVote {
            k: k.parse().unwrap(),
            ..Default::default()
        });
    }
    match m {
        "knn" => ModelSpec::Knn(KnnVote::default()),
        "logistic" => ModelSpec::Logistic(Logistic::default()),
        "centroid" => ModelSpec::Centroid(NearestCentroid::default()),
        "gnb" => ModelSpec::Gnb(GaussianNb::default()),
        "spread" => ModelSpec::Spread(labelwise::model::LabelSpreading::default()),
        other => panic!("unknown model {other}"),
    }
}

fn parse_model(s: &str) -> ModelSpec {
    if s.contains('+') {
        ModelSpec::Ensemble(s.split('+').map(parse_one).collect())
    } else {
        parse_one(s)
    }
}

/// The score a `--kinds` entry names: `max` is the top probability, anything else the margin.
fn score_of(kind: &str) -> Score {
    if kind == "max" {
        Score::Probability
    } else {
        Score::Margin
    }
}

/// Largest prefix (by descending score) with precision >= t: share of items.
fn oracle(score: &[f32], correct: &[bool], t: f64) -> f64 {
    let n = score.len();
    let mut o: Vec<usize> = (0..n).collect();
    o.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let mut hits = 0;
    let mut best = 0;
    for (k, &i) in o.iter().enumerate() {
        hits += correct[i] as usize;
        if hits as f64 >= t * (k + 1) as f64 {
            best = k + 1;
        }
    }
    best as f64 / n as f64
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| arg_value(&args, name);
    let dir = "/work/shared/datasets";
    let datasets = opt("--datasets").unwrap_or_else(|| "banking77,clinc150,agnews".into());
    let models =
        opt("--models").unwrap_or_else(|| "knn+centroid,logistic,knn+centroid+logistic".into());
    let shares: Vec<f64> = opt("--shares")
        .unwrap_or_else(|| "0.05,0.10".into())
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let seeds: Vec<u64> = opt("--seeds")
        .unwrap_or_else(|| "0,1,2".into())
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let level: f64 = opt("--level").map_or(0.95, |f| f.parse().unwrap());
    let folds: usize = opt("--folds").map_or(5, |f| f.parse().unwrap());
    let scans: Vec<String> = opt("--scans")
        .unwrap_or_else(|| "burn4".into())
        .split(',')
        .map(String::from)
        .collect();
    let kinds: Vec<String> = opt("--kinds")
        .unwrap_or_else(|| "max,margin".into())
        .split(',')
        .map(String::from)
        .collect();
    println!("| ds | share | seed | model | score | cv acc | hid acc | oracle .95 | oracle .97 | oracle .98 | cert .95 cov/prec | cert .98 cov/prec | fit s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for ds in datasets.split(',') {
        let data = read(&format!("{dir}/{ds}.parquet"), 0)?;
        let n = data.emb.nrows();
        // The pool's graph, for transductive models (label spreading).
        let sg = models
            .split(',')
            .any(|m| parse_model(m).is_transductive())
            .then(|| labelwise::model::SpreadGraph::new(&exact_graph(&data.emb, 10)));
        for &share in &shares {
            for &seed in &seeds {
                let mut idx: Vec<usize> = (0..n).collect();
                idx.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
                let keep = ((n as f64) * share).round() as usize;
                let mut lab: Vec<usize> = idx[..keep].to_vec();
                lab.sort_unstable();
                let mut hid: Vec<usize> = idx[keep..].to_vec();
                hid.sort_unstable();
                let xl = data.emb.select(Axis(0), &lab);
                let yl: Vec<u32> = lab.iter().map(|&i| data.label[i]).collect();
                let xh = data.emb.select(Axis(0), &hid);
                let yh: Vec<u32> = hid.iter().map(|&i| data.label[i]).collect();
                for m in models.split(',') {
                    let spec = parse_model(m);
                    let t = Instant::now();
                    let (oof, ph) = if spec.is_transductive() {
                        use labelwise::round::autolabel::{cross_validate_items, predict_items};
                        let g = sg.as_ref();
                        let c = data.n_classes;
                        let oof =
                            cross_validate_items(&spec, &data.emb, g, &lab, &yl, c, folds, seed)?;
                        let ph = predict_items(&spec, &data.emb, g, &lab, &yl, &hid, c)?;
                        (oof, ph)
                    } else {
                        let oof =
                            cross_validate(&spec, xl.view(), &yl, data.n_classes, folds, seed)?;
                        let fitted = spec.fit(xl.view(), &yl, data.n_classes)?;
                        (oof, fitted.predict_proba(xh.view())?)
                    };
                    let secs = t.elapsed().as_secs_f64();
                    if let Ok(sh) = std::env::var("FOLDTEST") {
                        let sh: f64 = sh.parse().unwrap();
                        let folds_of = labelwise::model::cv::stratified_folds(&yl, folds, seed);
                        let prec_at = |p: &Array2<f32>| {
                            let (pr, sc) = Score::Margin.rows(p);
                            let mut o: Vec<usize> = (0..hid.len()).collect();
                            o.sort_by(|&a, &b| sc[b].total_cmp(&sc[a]));
                            let take = (sh * hid.len() as f64) as usize;
                            o[..take].iter().filter(|&&i| pr[i] == yh[i]).count() as f64
                                / take as f64
                        };
                        eprint!("{ds} {share} {seed} {m}: final {:.4} folds", prec_at(&ph));
                        for f in 0..folds {
                            let tr: Vec<usize> =
                                (0..yl.len()).filter(|&i| folds_of[i] != f).collect();
                            let fm = spec.fit(
                                xl.select(Axis(0), &tr).view(),
                                &tr.iter().map(|&i| yl[i]).collect::<Vec<_>>(),
                                data.n_classes,
                            )?;
                            eprint!(" {:.4}", prec_at(&fm.predict_proba(xh.view())?));
                            let te: Vec<usize> =
                                (0..yl.len()).filter(|&i| folds_of[i] == f).collect();
                            let pt = fm.predict_proba(xl.select(Axis(0), &te).view())?;
                            let (pr, sc) = Score::Margin.rows(&pt);
                            let mut o: Vec<usize> = (0..te.len()).collect();
                            o.sort_by(|&a, &b| sc[b].total_cmp(&sc[a]));
                            let take = (sh * te.len() as f64) as usize;
                            let ok = o[..take].iter().filter(|&&i| pr[i] == yl[te[i]]).count();
                            let oofp = &oof.proba;
                            let same = te.iter().enumerate().all(|(r, &i)| {
                                (0..data.n_classes)
                                    .all(|c| (oofp[[i, c]] - pt[[r, c]]).abs() < 1e-6)
                            });
                            eprint!(" (own {ok}/{take} same {same})");
                        }
                        eprintln!();
                    }
                    for kind in kinds.iter().map(String::as_str) {
                        for scan in &scans {
                            let (pc, sc) = score_of(kind).rows(&oof.proba);
                            let cc: Vec<bool> = pc.iter().zip(&yl).map(|(a, b)| a == b).collect();
                            let (ph_pred, ph_s) = score_of(kind).rows(&ph);
                            let hc: Vec<bool> =
                                ph_pred.iter().zip(&yh).map(|(a, b)| a == b).collect();
                            if std::env::var("CURVE").is_ok() {
                                eprintln!("{ds} {share} {seed} {m} {kind} CV:");
                                curve(&sc, &cc, 20);
                                eprintln!("hidden:");
                                curve(&ph_s, &hc, 200);
                            }
                            let acc = |c: &[bool]| {
                                c.iter().filter(|&&b| b).count() as f64 / c.len() as f64
                            };
                            let mut cert = Vec::new();
                            for target in [0.95, 0.98] {
                                let min = min_count_for(target, level);
                                let ch = {
                                    let b: usize =
                                        scan.strip_prefix("burn").unwrap().parse().unwrap();
                                    select_threshold(&sc, &cc, target, level, 30, b * min)
                                };
                                let s = match ch {
                                    None => "0 / -".to_string(),
                                    Some(ch) => {
                                        let share_c = ch.n_above as f64 / ch.n_scope as f64;
                                        let take = (share_c * hid.len() as f64).floor() as usize;
                                        let mut o: Vec<usize> = (0..hid.len()).collect();
                                        o.sort_by(|&a, &b| ph_s[b].total_cmp(&ph_s[a]));
                                        let mut k = 0;
                                        let mut h = 0;
                                        for &i in o.iter().take(take) {
                                            if ph_s[i] < ch.threshold {
                                                break;
                                            }
                                            k += 1;
                                            h += hc[i] as usize;
                                        }
                                        format!(
                                            "{:.3} / {:.4}",
                                            k as f64 / hid.len() as f64,
                                            if k > 0 { h as f64 / k as f64 } else { f64::NAN }
                                        )
                                    }
                                };
                                cert.push(s);
                            }
                            println!(
                            "| {ds} | {share} | {seed} | {m} | {kind} {scan} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} | {secs:.1} |",
                            acc(&cc), acc(&hc), oracle(&ph_s, &hc, 0.95), oracle(&ph_s, &hc, 0.97), oracle(&ph_s, &hc, 0.98), cert[0], cert[1]
                        );
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Prints the cumulative CV precision / CP lower bound every `step` items (debug helper).
#[allow(dead_code)]
pub fn curve(score: &[f32], correct: &[bool], step: usize) {
    let n = score.len();
    let mut o: Vec<usize> = (0..n).collect();
    o.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let mut hits = 0;
    for (k, &i) in o.iter().enumerate() {
        hits += correct[i] as usize;
        if (k + 1) % step == 0 {
            let lb = labelwise::round::calibrate::clopper_pearson_lower(
                hits as u64,
                (k + 1) as u64,
                0.95,
            );
            eprint!("{}:{:.3}/{:.3} ", k + 1, hits as f64 / (k + 1) as f64, lb);
        }
    }
    eprintln!();
}
