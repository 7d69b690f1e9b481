//! `--labels` reads labeling tools' exports as the tools write them (issue 16, point 2): each
//! test writes a pool and an export, runs the real binary, and checks that exactly the expected
//! labels arrive (items.parquet's `label` column) and that summary.json `label_merge` counts
//! every tie, disagreement and skipped answer. Then round trips: `export --format label-studio`
//! answered as Label Studio exports it, and our JSONL and Prodigy exports answered as Argilla
//! (`records.to_list(flatten=True)`) and `prodigy db-out` write them, each giving exactly the
//! round 2 a plain id,label CSV of the same labels gives. And the errors: one line naming the
//! file, exit 2, nothing written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::{json, Value};

/// 24 items `item00000`…, 4 clusters, `text` carried; item 0 is labeled `c0`, item 1 `c1`.
fn pool(wd: &Workdir) -> PathBuf {
    let s = clustered(24, 4, 8, 0.05, 7);
    let labeled: Vec<bool> = (0..24).map(|i| i < 2).collect();
    write_text_pool(wd, "pool.parquet", &s, &labeled)
}

fn item(i: usize) -> String {
    format!("item{i:05}")
}

/// Runs `score` on the pool with `--labels FILE` (plus `extra`) and returns every item's label
/// after the merge, and summary.json's `label_merge`.
fn merge(wd: &Workdir, file: &Path, extra: &[&str]) -> (BTreeMap<String, Option<String>>, Value) {
    let pool = pool(wd);
    let mut args = vec![
        "score",
        pool.to_str().unwrap(),
        "--labels",
        file.to_str().unwrap(),
        "--out",
        "out",
        "--no-cache",
    ];
    args.extend_from_slice(extra);
    ok(wd, &args);
    let items = read_parquet(&wd.path("out/items.parquet"));
    let labels = strs(&items, "id")
        .into_iter()
        .zip(strings(&items, "label"))
        .collect();
    (
        labels,
        read_json(&wd.path("out/summary.json"))["label_merge"].clone(),
    )
}

/// The pool's labels with `changes` applied: exactly what a merge must produce.
fn expected(changes: &[(usize, &str)]) -> BTreeMap<String, Option<String>> {
    let mut m: BTreeMap<String, Option<String>> = (0..24).map(|i| (item(i), None)).collect();
    m.insert(item(0), Some("c0".into()));
    m.insert(item(1), Some("c1".into()));
    for (i, l) in changes {
        m.insert(item(*i), Some(l.to_string()));
    }
    m
}

/// A Label Studio choices result.
fn choice(from: &str, label: &str) -> Value {
    json!({"id": "r", "from_name": from, "to_name": "text", "type": "choices",
           "origin": "manual", "value": {"choices": [label]}})
}

/// A Label Studio annotation by user `user`.
fn annotation(user: u64, result: Vec<Value>) -> Value {
    json!({"id": user * 100, "completed_by": user, "result": result, "was_cancelled": false,
           "ground_truth": false, "lead_time": 2.5, "prediction": {}})
}

/// A Label Studio task as its JSON export writes it: Label Studio's own task `id`, our fields
/// under `data` (the id as `lw_id`), annotations and the model's predictions.
fn task(ls_id: u64, i: usize, annotations: Vec<Value>) -> Value {
    json!({"id": ls_id, "data": {"text": format!("text of {}", item(i)), "lw_id": item(i),
                                 "lw_route": "human", "lw_priority": 1},
           "annotations": annotations, "drafts": [], "project": 3,
           "predictions": [{"model_version": "labelwise", "score": 0.4,
                            "result": [choice("label", "c3")]}]})
}

/// The same five items in every format: item 2 unanimous c2 (two annotators), item 3 c3 by
/// 2–1, item 4 a 1–1 tie, item 1 relabeled c2 (overrides c1), item 5 cancelled or skipped.
const WANT: &[(usize, &str)] = &[(1, "c2"), (2, "c2"), (3, "c3")];

fn assert_agreement(m: &Value) {
    assert_eq!(m["applied"], 3, "{m:#}");
    assert_eq!(m["overridden"], 1, "{m:#}");
    assert_eq!(m["unanimous"], 1, "{m:#}");
    assert_eq!(m["majority_with_disagreement"], 1, "{m:#}");
    assert_eq!(m["ties"], 1, "{m:#}");
    assert_eq!(m["tie_examples"], json!([item(4)]), "{m:#}");
    assert_eq!(m["unknown_ids"], 0, "{m:#}");
}

#[test]
fn label_studio_json_export_labels_arrive_exactly() {
    let wd = Workdir::new();
    let mut cancelled = annotation(3, vec![choice("label", "c0")]);
    cancelled["was_cancelled"] = json!(true);
    let tasks = json!([
        task(901, 1, vec![annotation(1, vec![choice("label", "c2")])]),
        task(
            902,
            2,
            vec![
                annotation(1, vec![choice("label", "c2")]),
                annotation(2, vec![choice("label", "c2")])
            ]
        ),
        task(
            903,
            3,
            vec![
                annotation(1, vec![choice("label", "c3")]),
                annotation(2, vec![choice("label", "c0")]),
                annotation(3, vec![choice("label", "c3")])
            ]
        ),
        task(
            904,
            4,
            vec![
                annotation(1, vec![choice("label", "c0")]),
                annotation(2, vec![choice("label", "c1")])
            ]
        ),
        task(905, 5, vec![cancelled]),
        task(906, 6, vec![]),
    ]);
    let f = wd.file("project-3-at-2026-12-06.json", tasks.to_string());
    let (labels, m) = merge(&wd, &f, &[]);
    assert_eq!(labels, expected(WANT));
    assert_agreement(&m);
    assert_eq!(m["format"], "label-studio-json", "{m:#}");
    assert_eq!(m["id_field"], "data.lw_id", "{m:#}");
    assert_eq!(m["control"], "label", "{m:#}");
    assert_eq!(m["rows"], 6, "{m:#}");
    assert_eq!(m["skipped"]["cancelled"], 1, "{m:#}");
    assert_eq!(m["without_votes"], 2, "{m:#}");
}

#[test]
fn label_studio_json_min_export_labels_arrive_exactly() {
    let wd = Workdir::new();
    // One flat row per annotation: data fields, Label Studio's task id as `id`, the control.
    let row = |task: u64, i: usize, user: u64, label: &str| {
        json!({"text": format!("text of {}", item(i)), "lw_id": item(i), "lw_route": "human",
               "lw_priority": 1, "id": task, "label": label, "annotator": user,
               "annotation_id": task * 10 + user, "created_at": "2026-12-06T05:00:00Z",
               "updated_at": "2026-12-06T05:00:00Z", "lead_time": 1.5})
    };
    let rows = json!([
        row(901, 1, 1, "c2"),
        row(902, 2, 1, "c2"),
        row(902, 2, 2, "c2"),
        row(903, 3, 1, "c3"),
        row(903, 3, 2, "c0"),
        row(903, 3, 3, "c3"),
        row(904, 4, 1, "c0"),
        row(904, 4, 2, "c1"),
    ]);
    let f = wd.file("min.json", rows.to_string());
    let (labels, m) = merge(&wd, &f, &[]);
    assert_eq!(labels, expected(WANT));
    assert_agreement(&m);
    assert_eq!(m["format"], "label-studio-json-min", "{m:#}");
    assert_eq!(m["control"], "label", "{m:#}");
}

#[test]
fn label_studio_csv_export_labels_arrive_exactly() {
    let wd = Workdir::new();
    // Columns sorted, as Label Studio's CSV converter writes them; task 906 has no annotation.
    let mut csv = String::from(
        "annotation_id,annotator,created_at,id,label,lead_time,lw_id,lw_priority,lw_route,text,updated_at\n",
    );
    let rows: &[(u64, usize, &str, &str)] = &[
        (901, 1, "1", "c2"),
        (902, 2, "1", "c2"),
        (902, 2, "2", "c2"),
        (903, 3, "1", "c3"),
        (903, 3, "2", "c0"),
        (903, 3, "3", "c3"),
        (904, 4, "1", "c0"),
        (904, 4, "2", "c1"),
    ];
    for (k, (task, i, user, label)) in rows.iter().enumerate() {
        csv.push_str(&format!(
            "{k},{user},2026-12-06,{task},{label},1.5,{id},1,human,text of {id},2026-12-06\n",
            id = item(*i)
        ));
    }
    csv.push_str(&format!(
        ",,,906,,,{id},1,human,text of {id},\n",
        id = item(6)
    ));
    let f = wd.file("export.csv", csv);
    let (labels, m) = merge(&wd, &f, &[]);
    assert_eq!(labels, expected(WANT));
    assert_agreement(&m);
    assert_eq!(m["format"], "label-studio-csv", "{m:#}");
    assert_eq!(m["without_votes"], 1, "{m:#}");
}

#[test]
fn argilla_records_labels_arrive_exactly() {
    let wd = Workdir::new();
    // records.to_list(flatten=True): metadata lw_id flattened, one key per question; drafts
    // are not labels; a second question (`quality`) is named with --label-control.
    let rec = |i: usize, labels: &[&str], status: &[&str]| {
        let users: Vec<String> = (1..=labels.len()).map(|u| format!("user-{u}")).collect();
        json!({"id": format!("rec-{i}"), "_server_id": format!("uuid-{i}"),
               "text": format!("text of {}", item(i)), "lw_id": item(i),
               "label.responses": labels, "label.responses.users": users,
               "label.responses.status": status,
               "label.suggestion": "c3", "label.suggestion.score": 0.4,
               "label.suggestion.agent": "labelwise",
               "quality.responses": [3], "quality.responses.users": ["user-1"],
               "quality.responses.status": ["submitted"]})
    };
    let records = json!([
        rec(1, &["c2"], &["submitted"]),
        rec(2, &["c2", "c2"], &["submitted", "submitted"]),
        rec(
            3,
            &["c3", "c0", "c3"],
            &["submitted", "submitted", "submitted"]
        ),
        rec(4, &["c0", "c1"], &["submitted", "submitted"]),
        rec(5, &["c1"], &["draft"]),
    ]);
    let f = wd.file("records.json", records.to_string());
    let (labels, m) = merge(&wd, &f, &["--label-control", "label"]);
    assert_eq!(labels, expected(WANT));
    assert_agreement(&m);
    assert_eq!(m["format"], "argilla-records", "{m:#}");
    assert_eq!(m["id_field"], "lw_id", "{m:#}");
    assert_eq!(m["skipped"]["not_submitted"], 1, "{m:#}");
}

#[test]
fn prodigy_db_out_labels_arrive_exactly() {
    let wd = Workdir::new();
    // Choice tasks (`accept` lists) and binary ones (`label` + answer); reject and ignore are
    // not labels.
    let choice = |i: usize, who: &str, label: &str| {
        json!({"text": format!("text of {}", item(i)), "meta": {"lw_id": item(i)},
               "options": [{"id": "c0", "text": "c0"}, {"id": "c1", "text": "c1"},
                           {"id": "c2", "text": "c2"}, {"id": "c3", "text": "c3"}],
               "accept": [label], "answer": "accept", "_view_id": "choice",
               "_input_hash": i, "_task_hash": i * 7, "_annotator_id": who,
               "_session_id": who, "_timestamp": 1_765_000_000})
    };
    let binary = |i: usize, who: &str, label: &str, answer: &str| {
        json!({"text": format!("text of {}", item(i)), "meta": {"lw_id": item(i)},
               "label": label, "answer": answer, "_view_id": "classification",
               "_input_hash": i, "_task_hash": i * 11, "_annotator_id": who,
               "_session_id": who, "_timestamp": 1_765_000_000})
    };
    let lines = [
        choice(1, "ann-a", "c2"),
        choice(2, "ann-a", "c2"),
        binary(2, "ann-b", "c2", "accept"),
        choice(3, "ann-a", "c3"),
        choice(3, "ann-b", "c0"),
        binary(3, "ann-c", "c3", "accept"),
        choice(4, "ann-a", "c0"),
        choice(4, "ann-b", "c1"),
        binary(5, "ann-a", "c1", "reject"),
        binary(6, "ann-a", "c1", "ignore"),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let f = wd.file("db-out.jsonl", text);
    let (labels, m) = merge(&wd, &f, &[]);
    assert_eq!(labels, expected(WANT));
    assert_agreement(&m);
    assert_eq!(m["format"], "prodigy-jsonl", "{m:#}");
    assert_eq!(m["id_field"], "meta.lw_id", "{m:#}");
    assert_eq!(m["skipped"]["rejected"], 1, "{m:#}");
    assert_eq!(m["skipped"]["ignored"], 1, "{m:#}");
}

#[test]
fn own_csv_and_parquet_with_annotators_labels_arrive_exactly() {
    let wd = Workdir::new();
    let rows: &[(usize, &str, &str)] = &[
        (1, "a", "c2"),
        (2, "a", "c2"),
        (2, "b", "c2"),
        (3, "a", "c3"),
        (3, "b", "c0"),
        (3, "c", "c3"),
        (4, "a", "c0"),
        (4, "b", "c1"),
        (99, "a", "c1"),
        // A tie on a labeled item leaves its label as it was.
        (0, "a", "c1"),
        (0, "b", "c2"),
    ];
    let mut csv = String::from("id,label,annotator\n");
    for (i, who, label) in rows {
        csv.push_str(&format!("{},{label},{who}\n", item(*i)));
    }
    let f = wd.file("labels.csv", csv);
    let (labels, m) = merge(&wd, &f, &[]);
    assert_eq!(labels, expected(WANT));
    assert_eq!(m["format"], "id-label-csv", "{m:#}");
    assert_eq!(m["unknown_ids"], 1, "{m:#}");
    assert_eq!(m["unknown_examples"], json!([item(99)]), "{m:#}");
    assert_eq!(m["ties"], 2, "{m:#}");
    assert_eq!(m["tie_examples"], json!([item(4), item(0)]), "{m:#}");

    let ids: Vec<String> = rows.iter().map(|r| item(r.0)).collect();
    let p = wd.parquet(
        "labels.parquet",
        vec![
            ("id", str_col(&ids)),
            (
                "label",
                str_col(&rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            ),
            (
                "annotator",
                str_col(&rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            ),
        ],
    );
    let (labels, m) = merge(&wd, &p, &[]);
    assert_eq!(labels, expected(WANT));
    assert_eq!(m["format"], "id-label-parquet", "{m:#}");
    assert_eq!(m["ties"], 2, "{m:#}");
}

#[test]
fn round_trip_plan_export_label_studio_plan_picks_up_exactly_those_labels() {
    let wd = Workdir::new();
    let s = clustered(60, 3, 16, 0.1, 5);
    let labeled: Vec<bool> = (0..60).map(|i| i % 10 == 0).collect();
    let pool = write_text_pool(&wd, "pool.parquet", &s, &labeled);
    let p = pool.to_str().unwrap();
    ok(
        &wd,
        &["plan", p, "--out", "r1", "--batch", "6", "--no-cache"],
    );
    ok(&wd, &["export", "r1", "--format", "label-studio"]);
    let tasks = read_json(&wd.path("r1/tasks.json"));
    let tasks = tasks.as_array().expect("tasks array");

    // Label Studio's JSON export of the project after annotators labeled the batch: its own
    // task ids, our data (lw_id) untouched, one annotation per batch task with the true class.
    let truth: BTreeMap<&str, String> = s
        .ids
        .iter()
        .map(String::as_str)
        .zip(s.truth.iter().map(|c| format!("c{c}")))
        .collect();
    let mut given = BTreeMap::new();
    let exported: Vec<Value> = tasks
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let mut t = t.clone();
            t["id"] = json!(5000 + k);
            let id = t["data"]["lw_id"].as_str().expect("data.lw_id").to_string();
            // The batch: priorities 1..=6 (every human item has a priority; 6 were asked for).
            if t["data"]["lw_priority"].as_i64().is_some_and(|p| p <= 6) {
                let label = truth[id.as_str()].clone();
                t["annotations"] = json!([annotation(7, vec![choice("label", &label)])]);
                given.insert(id, label);
            } else {
                t["annotations"] = json!([]);
            }
            t
        })
        .collect();
    assert_eq!(given.len(), 6, "the batch was exported and annotated");
    wd.file("project-1-export.json", Value::Array(exported).to_string());

    ok(
        &wd,
        &[
            "plan",
            p,
            "--labels",
            "project-1-export.json",
            "--out",
            "r2",
            "--no-cache",
        ],
    );
    let items = read_parquet(&wd.path("r2/items.parquet"));
    let after: BTreeMap<String, Option<String>> = strs(&items, "id")
        .into_iter()
        .zip(strings(&items, "label"))
        .collect();
    for (i, id) in s.ids.iter().enumerate() {
        let want = given
            .get(id)
            .cloned()
            .or_else(|| labeled[i].then(|| truth[id.as_str()].clone()));
        assert_eq!(after[id], want, "{id}");
    }
    let summary = read_json(&wd.path("r2/summary.json"));
    let m = &summary["label_merge"];
    assert_eq!(m["file"], "project-1-export.json", "{m:#}");
    assert_eq!(m["applied"], 6, "{m:#}");
    assert_eq!(m["unknown_ids"], 0, "{m:#}");
    assert_eq!(summary["labeled"], 6 + 6, "{summary:#}");
    let report = std::fs::read_to_string(wd.path("r2/report.html")).unwrap();
    assert!(
        report.contains("Labels from"),
        "report.html shows the merge"
    );
}

#[test]
fn exports_carry_lw_id() {
    let wd = Workdir::new();
    let pool = pool(&wd);
    ok(
        &wd,
        &["plan", pool.to_str().unwrap(), "--out", "r", "--no-cache"],
    );
    ok(&wd, &["export", "r", "--format", "label-studio"]);
    ok(&wd, &["export", "r", "--format", "prodigy"]);
    let tasks = read_json(&wd.path("r/tasks.json"));
    let tasks = tasks.as_array().unwrap();
    assert!(!tasks.is_empty());
    assert!(
        tasks.iter().all(|t| t["data"]["lw_id"].is_string()),
        "{tasks:?}"
    );
    let lines = read_jsonl(&wd.path("r/prodigy.jsonl"));
    assert!(!lines.is_empty());
    assert!(
        lines.iter().all(|l| l["meta"]["lw_id"].is_string()),
        "{lines:?}"
    );
}

// ---- round trips through Argilla and Prodigy (issue 16, point 4) ------------------------------

/// Round 1 on 240 items in 4 classes (every third labeled, batch 20 with 6 audits); returns
/// the work dir, the pool, every item's true label and round 1's batch ids.
fn round_one() -> (Workdir, PathBuf, BTreeMap<String, String>, Vec<String>) {
    let wd = Workdir::new();
    let s = clustered(240, 4, 16, 0.1, 7);
    let labeled: Vec<bool> = (0..s.ids.len()).map(|i| i % 3 == 0).collect();
    let pool = write_text_pool(&wd, "pool.parquet", &s, &labeled);
    let p = pool.to_str().unwrap();
    ok(
        &wd,
        &["plan", p, "--out", "r1", "--no-cache", "--batch", "20"],
    );
    let truth = s
        .ids
        .iter()
        .cloned()
        .zip(s.truth.iter().map(|c| format!("c{c}")))
        .collect();
    let (header, rows) = read_csv(&wd.path("r1/batch.csv"));
    let id = header.iter().position(|h| h == "id").unwrap();
    let batch = rows.iter().map(|r| r[id].clone()).collect();
    (wd, pool, truth, batch)
}

/// Round 2 from `labels` into `out`: its batch.csv bytes and every item's label.
fn round_two(
    wd: &Workdir,
    pool: &Path,
    labels: &Path,
    out: &str,
) -> (Vec<u8>, Vec<Option<String>>) {
    ok(
        wd,
        &[
            "plan",
            pool.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--out",
            out,
            "--no-cache",
            "--batch",
            "20",
        ],
    );
    let batch = std::fs::read(wd.path(&format!("{out}/batch.csv"))).unwrap();
    let items = read_parquet(&wd.path(&format!("{out}/items.parquet")));
    (batch, strings(&items, "label"))
}

/// The reference round 2: the batch's true labels as a plain id,label CSV.
fn plain_round_two(
    wd: &Workdir,
    pool: &Path,
    truth: &BTreeMap<String, String>,
    batch: &[String],
) -> (Vec<u8>, Vec<Option<String>>) {
    let mut csv = String::from("id,label\n");
    for id in batch {
        csv.push_str(&format!("{id},{}\n", truth[id]));
    }
    let f = wd.file("plain.csv", csv);
    round_two(wd, pool, &f, "r2-plain")
}

#[test]
fn round_trip_through_argilla_records_equals_the_plain_csv_round() {
    let (wd, pool, truth, batch) = round_one();
    // Records built from our JSONL export (the item id in metadata as lw_id), answered in
    // Argilla, exported with records.to_list(flatten=True): metadata flattened to the top level,
    // one key per question field; the model's label as a suggestion. A draft response on a
    // non-batch item is not a label.
    ok(&wd, &["export", "r1", "--format", "jsonl"]);
    let items = read_jsonl(&wd.path("r1/items.jsonl"));
    let records: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(k, it)| {
            let id = it["id"].as_str().unwrap();
            let mut r = json!({"id": format!("rec-{k}"), "_server_id": format!("0000-{k:04}"),
                "status": "pending", "text": it["text"], "lw_id": id, "lw_route": it["route"],
                "label.suggestion": it["predicted_label"],
                "label.suggestion.score": it["confidence"],
                "label.suggestion.agent": "labelwise"});
            if batch.iter().any(|b| b == id) {
                r["status"] = json!("completed");
                r["label.responses"] = json!([truth[id]]);
                r["label.responses.users"] = json!(["a1b2c3d4-0000-4000-8000-000000000001"]);
                r["label.responses.status"] = json!(["submitted"]);
            } else if k % 7 == 0 {
                r["label.responses"] = json!(["c0"]);
                r["label.responses.users"] = json!(["a1b2c3d4-0000-4000-8000-000000000002"]);
                r["label.responses.status"] = json!(["draft"]);
            }
            r
        })
        .collect();
    assert!(records.len() > batch.len());
    let f = wd.file("argilla-records.json", Value::Array(records).to_string());
    let (tool_batch, tool_labels) = round_two(&wd, &pool, &f, "r2-argilla");
    let (plain_batch, plain_labels) = plain_round_two(&wd, &pool, &truth, &batch);
    assert_eq!(tool_labels, plain_labels, "the same labels arrived");
    assert_eq!(tool_batch, plain_batch, "round 2's batch.csv is identical");
    let m = &read_json(&wd.path("r2-argilla/summary.json"))["label_merge"];
    assert_eq!(m["format"], "argilla-records", "{m:#}");
    assert_eq!(m["applied"], 20, "{m:#}");
    assert!(m["skipped"]["not_submitted"].as_u64().unwrap() > 0, "{m:#}");
}

#[test]
fn round_trip_through_prodigy_db_out_equals_the_plain_csv_round() {
    let (wd, pool, truth, batch) = round_one();
    // Our Prodigy export, annotated and written back by `prodigy db-out`: every other batch item
    // whose shown label is right is accepted as a binary task; the others are answered in the
    // choice interface (`accept` holds the chosen option). Only answered examples are in db-out.
    ok(&wd, &["export", "r1", "--format", "prodigy"]);
    let tasks = read_jsonl(&wd.path("r1/prodigy.jsonl"));
    let options: Vec<Value> = (0..4)
        .map(|c| json!({"id": format!("c{c}"), "text": format!("c{c}")}))
        .collect();
    let (mut binary, mut choice) = (0, 0);
    let mut lines = String::new();
    for (k, t) in tasks.iter().enumerate() {
        let id = t["meta"]["lw_id"].as_str().unwrap();
        if !batch.iter().any(|b| b == id) {
            continue;
        }
        let mut l = t.clone();
        for (key, v) in [
            ("_input_hash", json!(k as i64 * 31 - 7)),
            ("_task_hash", json!(k as i64 * 17 + 3)),
            ("_annotator_id", json!("labels-ann1")),
            ("_session_id", json!("labels-ann1")),
            ("_timestamp", json!(1_765_000_000 + k as i64)),
            ("answer", json!("accept")),
        ] {
            l[key] = v;
        }
        if l["label"].as_str() == Some(truth[id].as_str()) && (binary + choice) % 2 == 0 {
            l["_view_id"] = json!("classification");
            binary += 1;
        } else {
            l.as_object_mut().unwrap().remove("label");
            l["_view_id"] = json!("choice");
            l["options"] = json!(options);
            l["accept"] = json!([truth[id]]);
            choice += 1;
        }
        lines.push_str(&format!("{l}\n"));
    }
    assert_eq!(binary + choice, 20);
    assert!(
        binary > 0 && choice > 0,
        "both shapes used: {binary} binary, {choice} choice"
    );
    let f = wd.file("db-out.jsonl", lines);
    let (tool_batch, tool_labels) = round_two(&wd, &pool, &f, "r2-prodigy");
    let (plain_batch, plain_labels) = plain_round_two(&wd, &pool, &truth, &batch);
    assert_eq!(tool_labels, plain_labels, "the same labels arrived");
    assert_eq!(tool_batch, plain_batch, "round 2's batch.csv is identical");
    let m = &read_json(&wd.path("r2-prodigy/summary.json"))["label_merge"];
    assert_eq!(m["format"], "prodigy-jsonl", "{m:#}");
    assert_eq!(m["id_field"], "meta.lw_id", "{m:#}");
    assert_eq!(m["applied"], 20, "{m:#}");
}

// ---- errors ----------------------------------------------------------------------------------

/// Runs `plan` with `--labels FILE` (plus `extra`): exit 2, one stderr line naming the file,
/// nothing written; returns the line.
fn labels_error(wd: &Workdir, file: &Path, extra: &[&str]) -> String {
    let pool = pool(wd);
    let mut args = vec![
        "plan",
        pool.to_str().unwrap(),
        "--labels",
        file.to_str().unwrap(),
        "--out",
        "out",
        "--no-cache",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let o = wd.run(&args);
    assert_eq!(o.code, 2, "{o:#?}");
    assert_eq!(o.stdout, "", "{o:#?}");
    let lines = o.stderr_lines();
    assert_eq!(lines.len(), 1, "{o:#?}");
    let prefix = format!("error: {}", file.display());
    assert!(lines[0].starts_with(&prefix), "{}", lines[0]);
    assert!(!wd.path("out").exists(), "nothing written");
    lines[0].to_string()
}

#[test]
fn error_export_of_another_project() {
    let wd = Workdir::new();
    let tasks = json!([
        {"id": 1, "data": {"text": "x", "lw_id": "other-1"},
         "annotations": [annotation(1, vec![choice("label", "a")])]},
        {"id": 2, "data": {"text": "y", "lw_id": "other-2"},
         "annotations": [annotation(1, vec![choice("label", "b")])]},
    ]);
    let f = wd.file("other.json", tasks.to_string());
    let line = labels_error(&wd, &f, &[]);
    assert!(line.contains("column 'data.lw_id'"), "{line}");
    assert!(line.contains("'other-1'"), "{line}");
    assert!(line.contains("another project"), "{line}");
}

#[test]
fn error_label_control_missing_or_ambiguous() {
    let wd = Workdir::new();
    let tasks = json!([task(
        1,
        2,
        vec![annotation(
            1,
            vec![choice("label", "c2"), choice("sentiment", "pos")]
        )]
    )]);
    let f = wd.file("two-controls.json", tasks.to_string());
    let line = labels_error(&wd, &f, &[]);
    assert!(
        line.contains("several choices controls (label, sentiment)"),
        "{line}"
    );
    let line = labels_error(&wd, &f, &["--label-control", "topic"]);
    assert!(line.contains("no control 'topic'"), "{line}");
    // Naming one settles it.
    let (labels, m) = merge(&wd, &f, &["--label-control", "sentiment"]);
    assert_eq!(labels[&item(2)].as_deref(), Some("pos"));
    assert_eq!(m["control"], "sentiment", "{m:#}");
}

#[test]
fn error_malformed_records_are_named() {
    let wd = Workdir::new();
    let good = json!({"text": "t", "meta": {"lw_id": item(2)}, "label": "c2", "answer": "accept"});
    let f = wd.file(
        "broken.jsonl",
        format!("{good}\n{good}\n{{\"text\": \"t\", \"meta\": {{\"lw_id\"\n"),
    );
    let line = labels_error(&wd, &f, &[]);
    assert!(line.contains("line 3: malformed JSON"), "{line}");

    let tasks =
        json!([task(11, 2, vec![]), {"id": 12, "data": {"lw_id": item(3)}, "annotations": 5}]);
    let f = wd.file("bad-task.json", tasks.to_string());
    let line = labels_error(&wd, &f, &[]);
    assert!(
        line.contains(", row 1: task 12: 'annotations' is a number"),
        "{line}"
    );
}
