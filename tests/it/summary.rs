//! summary.json has one shape per stage whichever command ran it (README "summary.json
//! changes"), a stage the command did not run has no section, and the CSV files keep their
//! headers now that one writer (output/csv.rs) writes them all.

use std::collections::BTreeSet;

use crate::common::*;
use serde_json::Value;

/// Every stage section summary.json can have, with the commands that run that stage.
const STAGES: &[(&str, &[&str])] = &[
    (
        "duplicates",
        &["plan", "select", "autolabel", "budget", "dedup"],
    ),
    ("autolabel", &["plan", "select", "autolabel", "budget"]),
    ("rarity", &["plan", "select", "score"]),
    ("select", &["plan", "select"]),
    ("budget", &["plan", "budget"]),
];

/// The pool commands, run on one pool of 300 items in 3 classes, every 5th labeled.
const COMMANDS: &[&str] = &["plan", "select", "autolabel", "budget", "score", "dedup"];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// Runs every pool command (each with `extra` flags) into `<command>` folders; returns their
/// summaries in [`COMMANDS`] order.
fn run_all(wd: &Workdir, data: &str, extra: &[&str]) -> Vec<(&'static str, Value)> {
    COMMANDS
        .iter()
        .map(|&cmd| {
            let mut args = vec![cmd, data, "--out", cmd, "--no-cache"];
            args.extend_from_slice(extra);
            ok(wd, &args);
            (cmd, read_json(&wd.path(cmd).join("summary.json")))
        })
        .collect()
}

fn pool(wd: &Workdir) -> String {
    let s = clustered(300, 3, 16, 0.15, 5);
    let labeled: Vec<bool> = (0..300).map(|i| i % 5 == 0).collect();
    write_text_pool(wd, "pool.parquet", &s, &labeled)
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_stage_has_one_shape_whichever_command_ran_it() {
    let wd = Workdir::new();
    let data = pool(&wd);
    let runs = run_all(&wd, &data, &[]);
    for (cmd, s) in &runs {
        assert_eq!(s["command"], *cmd);
        // The pool's facts and the graph, at the top, for every pool command.
        assert_eq!(s["items"], 300, "{cmd}");
        assert_eq!(s["dimension"], 16, "{cmd}");
        assert_eq!(s["labeled"], 60, "{cmd}");
        assert_eq!(s["classes"], 3, "{cmd}");
        assert!(s["graph"]["index"].is_string(), "{cmd}: graph: {s}");
        assert!(s["timings"].is_array(), "{cmd}");
        // No --labels: no label_merge section.
        assert!(s.get("label_merge").is_none(), "{cmd}: {s}");
        // The selection's fields live in `select` only.
        for moved in ["batch", "strategy", "strategy_used"] {
            assert!(s.get(moved).is_none(), "{cmd}: top-level {moved}: {s}");
        }
        // A section exactly for the stages the command ran.
        for (stage, ran_by) in STAGES {
            assert_eq!(
                s.get(*stage).is_some(),
                ran_by.contains(cmd),
                "{cmd}: section {stage}: {s}"
            );
        }
    }
    // The same keys in a stage's section whoever ran it (plan runs every stage).
    let plan = &runs[0].1;
    for (cmd, s) in &runs[1..] {
        for (stage, _) in STAGES {
            if let Some(section) = s.get(*stage) {
                assert_eq!(keys(section), keys(&plan[*stage]), "{cmd}: {stage}");
            }
        }
    }
    let select = &runs[1].1;
    for s in [plan, select] {
        let (_, rows) = read_csv(&wd.path(s["command"].as_str().unwrap()).join("batch.csv"));
        assert_eq!(
            s["select"]["batch"],
            rows.len(),
            "select.batch = rows of batch.csv"
        );
        assert_eq!(s["select"]["strategy"], "hybrid");
        assert!(s["select"]["strategy_used"].is_string());
    }
    // select's autolabel is the full summary, not the counts alone.
    let al = &select["autolabel"];
    assert!(al["counts"]["auto"].is_u64(), "{al}");
    assert!(al["target_precision"].is_f64(), "{al}");
    // budget reports the auto-labeling its figures rest on.
    let budget = &runs[3].1;
    assert_eq!(
        budget["autolabel"]["counts"]["auto"],
        budget["budget"]["now"]["auto_labeled"]
    );
}

#[test]
fn label_merge_is_reported_by_every_command_given_labels() {
    let wd = Workdir::new();
    let data = pool(&wd);
    let labels = wd.file("labels.csv", "id,label\nitem00001,c1\nghost,c0\n");
    let runs = run_all(&wd, &data, &["--labels", labels.to_str().unwrap()]);
    for (cmd, s) in &runs {
        let m = &s["label_merge"];
        assert_eq!(m["applied"], 1, "{cmd}: {m}");
        assert_eq!(m["unknown_ids"], 1, "{cmd}: {m}");
        assert_eq!(s["labeled"], 61, "{cmd}");
    }
}

#[test]
fn simulate_keeps_its_own_fields() {
    let wd = Workdir::new();
    let s = clustered(300, 3, 16, 0.15, 9);
    let data = write_pool(&wd, "full.parquet", &s, &[true; 300]);
    ok(
        &wd,
        &[
            "simulate",
            data.to_str().unwrap(),
            "--rounds",
            "2",
            "--batch",
            "10",
            "--out",
            "sim",
            "--no-cache",
        ],
    );
    let s = read_json(&wd.path("sim/summary.json"));
    assert_eq!(
        keys(&s),
        [
            "aulc",
            "batch",
            "classes",
            "classes_found_after",
            "command",
            "coverage_drops",
            "curve",
            "full_pool_accuracy",
            "full_pool_macro_f1",
            "graph",
            "labels_to_95pct_of_full",
            "mean_select_seconds",
            "pool",
            "rounds",
            "seed",
            "split",
            "strategy",
            "test",
            "timings",
        ]
        .map(String::from)
        .into_iter()
        .collect::<BTreeSet<_>>()
    );
    assert_eq!(s["command"], "simulate");
    assert_eq!(s["batch"], 10);
    assert_eq!(s["rounds"], 2);
    assert_eq!(s["strategy"], "hybrid");
    let header = |f: &str| read_csv(&wd.path("sim").join(f)).0;
    let (_, curve) = read_csv(&wd.path("sim/curve.csv"));
    assert_eq!(s["curve"].as_array().unwrap().len(), curve.len());
    assert_eq!(s["curve"][0]["round"], 1);
    let after = &s["classes_found_after"];
    assert_eq!(after["1"], s["curve"][0]["classes_found"]);
    assert!(after["3"].is_null() && after["5"].is_null(), "{after}");
    assert_eq!(
        header("curve.csv"),
        [
            "round",
            "labels",
            "accuracy",
            "holdout_accuracy",
            "macro_f1",
            "classes_found",
            "auto_coverage",
            "auto_precision",
            "select_seconds",
        ]
    );
    assert_eq!(header("selections.csv"), ["round", "id", "reason"]);
    assert_eq!(header("split.csv"), ["id", "split"]);
}

#[test]
fn csv_headers_are_unchanged() {
    let wd = Workdir::new();
    let data = pool(&wd);
    ok(
        &wd,
        &[
            "plan",
            &data,
            "--out",
            "run",
            "--no-cache",
            "--batch",
            "10",
            "--format",
            "csv",
        ],
    );
    let header = |f: &str| read_csv(&wd.path("run").join(f)).0;
    assert_eq!(
        header("batch.csv"),
        ["rank", "id", "score", "reasons", "propensity", "text"]
    );
    assert_eq!(
        header("budget.csv"),
        [
            "added_labels",
            "total_labels",
            "projected_accuracy",
            "accuracy_low",
            "accuracy_high",
            "projected_auto_coverage",
            "coverage_low",
            "coverage_high",
            "verifications",
            "hours",
            "cost",
        ]
    );
    assert_eq!(
        header("autolabels.csv"),
        ["id", "label", "confidence", "source"]
    );
    ok(&wd, &["export", "run", "--format", "csv"]);
    assert_eq!(
        header("items.csv"),
        [
            "id",
            "label",
            "dup_group",
            "dup_representative",
            "predicted_label",
            "confidence",
            "route",
            "rarity",
            "cluster",
            "priority",
            "reasons",
            "text",
        ]
    );
    // Rows as long as the header, and batch.csv's ranks 1..=10.
    let (header, rows) = read_csv(&wd.path("run/items.csv"));
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let (_, batch) = read_csv(&wd.path("run/batch.csv"));
    let ranks: Vec<String> = batch.iter().map(|r| r[0].clone()).collect();
    assert_eq!(ranks, (1..=10).map(|r| r.to_string()).collect::<Vec<_>>());
}
