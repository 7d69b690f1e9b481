//! The round history (`--history DIR`, issue 19): `plan` records each batch with its reasons
//! and propensities, the next round reads it without the user juggling files, the certificate
//! counts audits and unrecorded labels as evidence and the strategy's picks not, and a history
//! that does not fit the data stops the run with one line naming the file and row.

use std::collections::HashMap;

use crate::common::*;

/// A pool of 600 items in 4 classes, every 5th labeled (all classes).
fn pool(wd: &Workdir) -> (Synth, String) {
    let s = clustered(600, 4, 16, 0.15, 11);
    let labeled: Vec<bool> = (0..s.ids.len()).map(|i| i % 5 == 0).collect();
    let path = write_pool(wd, "pool.parquet", &s, &labeled);
    (s, path.to_str().unwrap().to_string())
}

fn plan(wd: &Workdir, data: &str, out: &str, labels: Option<&str>) -> Output {
    let mut args = vec![
        "plan",
        data,
        "--out",
        out,
        "--no-cache",
        "--batch",
        "50",
        "--history",
        "hist",
    ];
    if let Some(l) = labels {
        args.extend(["--labels", l]);
    }
    ok(wd, &args)
}

#[test]
fn rounds_are_recorded_and_only_audits_and_unrecorded_labels_are_evidence() {
    let wd = Workdir::new();
    let (s, data) = pool(&wd);
    plan(&wd, &data, "r1", None);
    let summary = read_json(&wd.path("r1/summary.json"));
    assert_eq!(
        summary["autolabel"]["n_evidence"], 120,
        "no history yet: every label"
    );
    let (header, picks) = read_csv(&wd.path("hist/round-0001.csv"));
    assert_eq!(header, ["id", "reason", "propensity"]);
    let (_, batch) = read_csv(&wd.path("r1/batch.csv"));
    let batch_picks: Vec<[String; 3]> = batch
        .iter()
        .map(|r| [r[1].clone(), r[3].clone(), r[4].clone()])
        .collect();
    let recorded: Vec<[String; 3]> = picks
        .iter()
        .map(|r| [r[0].clone(), r[1].clone(), r[2].clone()])
        .collect();
    assert_eq!(recorded, batch_picks, "the history holds batch.csv's picks");
    let audits = picks.iter().filter(|r| r[1] == "audit").count();
    assert_eq!(audits, 15, "30% of 50");

    // The annotators label the whole batch; round 2 reads the history by itself.
    let truth: HashMap<&str, usize> = s
        .ids
        .iter()
        .map(String::as_str)
        .zip(s.truth.iter().copied())
        .collect();
    let mut labels = String::from("id,label\n");
    for r in &picks {
        labels.push_str(&format!("{},c{}\n", r[0], truth[r[0].as_str()]));
    }
    std::fs::write(wd.path("labels.csv"), labels).unwrap();
    plan(&wd, &data, "r2", Some("labels.csv"));
    let summary = read_json(&wd.path("r2/summary.json"));
    assert_eq!(summary["autolabel"]["n_labeled"], 120 + picks.len());
    assert!(picks.len() > audits, "the strategy picked too");
    assert_eq!(
        summary["autolabel"]["n_evidence"],
        120 + audits,
        "the strategy's picks are not evidence"
    );
    assert!(wd.path("hist/round-0002.csv").is_file());
}

#[test]
fn a_history_that_does_not_fit_the_data_stops_the_run() {
    let wd = Workdir::new();
    let (_, data) = pool(&wd);
    plan(&wd, &data, "r1", None);
    let csv = wd.path("hist/round-0001.csv");
    let good = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines[3] = "nope,audit,0.02";
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let args = [
        "plan",
        &data,
        "--out",
        "r2",
        "--no-cache",
        "--history",
        "hist",
        "--quiet",
    ];
    let o = wd.run(args);
    assert_eq!(o.code, 2, "{o:#?}");
    let err = o.stderr_lines();
    assert_eq!(err.len(), 1, "{o:#?}");
    assert!(
        err[0].contains("round-0001.csv") && err[0].contains("row 3") && err[0].contains("nope"),
        "{}",
        err[0]
    );
    assert!(!wd.path("r2").exists(), "nothing written");

    // A round file from another pool.
    std::fs::write(&csv, good).unwrap();
    let other = write_pool(
        &wd,
        "other.parquet",
        &clustered(300, 4, 16, 0.15, 3),
        &vec![true; 300],
    );
    let o = wd.run([
        "plan",
        other.to_str().unwrap(),
        "--out",
        "r3",
        "--no-cache",
        "--history",
        "hist",
        "--quiet",
    ]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert!(
        o.stderr.contains("round-0001.json") && o.stderr.contains("not of this pool"),
        "{}",
        o.stderr
    );
    assert!(!wd.path("r3").exists(), "nothing written");
}
