//! `export --format label-studio` in the shape Label Studio's importer keeps whole: one
//! prediction per predicted item carrying the run's confidence as `score` and its predicted label as
//! the only choice, the human label of `labeled` items as an annotation (so Label Studio does not
//! queue them again), unique result ids, and the carried columns in `data`.
//! `benches/peers/label_studio_import.sh` imports the same files into a real Label Studio.

use std::collections::{HashMap, HashSet};

use crate::common::*;
use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::Array;
use serde_json::Value;

/// A planned run over 240 items in 4 classes, every 4th labeled, with a `text` column.
fn planned_run(wd: &Workdir) {
    let s = clustered(240, 4, 16, 0.1, 7);
    let labeled: Vec<bool> = (0..s.ids.len()).map(|i| i % 4 == 0).collect();
    let data = write_text_pool(wd, "pool.parquet", &s, &labeled);
    ok(
        wd,
        &[
            "plan",
            data.to_str().unwrap(),
            "--out",
            "run",
            "--no-cache",
            "--batch",
            "20",
        ],
    );
}

/// Per item id: (route, label, predicted_label, confidence) from the run's items.parquet.
type ItemRow = (String, Option<String>, Option<String>, f32);

fn items_by_id(wd: &Workdir) -> HashMap<String, ItemRow> {
    let b = read_parquet(&wd.path("run/items.parquet"));
    let conf = column(&b, "confidence")
        .as_primitive::<Float32Type>()
        .clone();
    let (ids, routes) = (strs(&b, "id"), strs(&b, "route"));
    let (labels, predicted) = (strings(&b, "label"), strings(&b, "predicted_label"));
    (0..b.num_rows())
        .map(|i| {
            let c = if conf.is_null(i) {
                f32::NAN
            } else {
                conf.value(i)
            };
            (
                ids[i].clone(),
                (
                    routes[i].clone(),
                    labels[i].clone(),
                    predicted[i].clone(),
                    c,
                ),
            )
        })
        .collect()
}

fn tasks(wd: &Workdir, file: &str) -> Vec<Value> {
    read_json(&wd.path(file))
        .as_array()
        .expect("tasks file is a JSON array")
        .clone()
}

/// The single `choices` value of a result region with the given control names.
fn only_choice<'a>(region: &'a Value, from: &str, to: &str) -> &'a str {
    assert_eq!(region["type"], "choices", "{region}");
    assert_eq!(region["from_name"], from, "{region}");
    assert_eq!(region["to_name"], to, "{region}");
    let choices = region["value"]["choices"]
        .as_array()
        .expect("choices array");
    assert_eq!(choices.len(), 1, "one choice per region: {region}");
    choices[0].as_str().expect("choice is a string")
}

#[test]
fn label_studio_tasks_carry_predictions_scores_and_human_labels() {
    let wd = Workdir::new();
    planned_run(&wd);
    let items = items_by_id(&wd);
    ok(
        &wd,
        &[
            "export",
            "run",
            "--format",
            "label-studio",
            "--routes",
            "labeled,auto,duplicate,human",
            "--from-name",
            "intent",
            "--to-name",
            "utterance",
            "--model-version",
            "round-1",
            "--output",
            "all.json",
        ],
    );
    let tasks = tasks(&wd, "all.json");
    assert_eq!(tasks.len(), items.len(), "every route exported");

    let mut result_ids = HashSet::new();
    let mut seen = HashSet::new();
    let (mut annotated, mut predicted) = (0, 0);
    for t in &tasks {
        let id = t["data"]["lw_id"].as_str().expect("lw_id in data");
        assert!(seen.insert(id.to_string()), "item {id} exported twice");
        let (route, label, pred, conf) = &items[id];
        assert_eq!(t["data"]["lw_route"], route.as_str());
        assert_eq!(t["data"]["text"], format!("text of {id}"), "carried column");
        assert!(
            t["data"].get("embedding").is_none(),
            "the embedding is not carried"
        );

        match (pred, t.get("predictions")) {
            (Some(pred), Some(p)) => {
                let p = p.as_array().expect("predictions array");
                assert_eq!(p.len(), 1, "{t}");
                assert_eq!(p[0]["model_version"], "round-1");
                let score = p[0]["score"].as_f64().expect("score is a number");
                assert_eq!(score, f64::from(*conf), "score is the item's confidence");
                assert!((0.0..=1.0).contains(&score), "{t}");
                let r = p[0]["result"].as_array().expect("result array");
                assert_eq!(r.len(), 1, "{t}");
                assert_eq!(only_choice(&r[0], "intent", "utterance"), pred);
                assert!(result_ids.insert(r[0]["id"].as_str().unwrap().to_string()));
                predicted += 1;
            }
            (None, None) => {}
            (pred, got) => panic!("predicted_label {pred:?} but predictions {got:?}"),
        }

        match (route.as_str(), t.get("annotations")) {
            ("labeled", Some(a)) => {
                let a = a.as_array().expect("annotations array");
                assert_eq!(a.len(), 1, "{t}");
                let r = a[0]["result"].as_array().expect("result array");
                assert_eq!(r.len(), 1, "{t}");
                let want = label.as_deref().expect("a labeled item has a label");
                assert_eq!(only_choice(&r[0], "intent", "utterance"), want);
                assert!(
                    result_ids.insert(r[0]["id"].as_str().unwrap().to_string()),
                    "annotation result id repeats a prediction's: {t}"
                );
                annotated += 1;
            }
            ("labeled", None) => panic!("labeled item without its label as annotation: {t}"),
            (_, Some(_)) => panic!("only human labels become annotations: {t}"),
            (_, None) => {}
        }
    }
    let n_labeled = items.values().filter(|v| v.0 == "labeled").count();
    assert_eq!(annotated, n_labeled);
    assert_eq!(annotated, 60, "every 4th of 240 items is labeled");
    assert_eq!(predicted, items.values().filter(|v| v.2.is_some()).count());
}

#[test]
fn default_routes_export_no_annotations_and_humans_first_by_priority() {
    let wd = Workdir::new();
    planned_run(&wd);
    ok(&wd, &["export", "run", "--format", "label-studio"]);
    let tasks = tasks(&wd, "run/tasks.json");
    assert!(!tasks.is_empty());
    assert!(
        tasks.iter().all(|t| t.get("annotations").is_none()),
        "no labeled items by default, so nothing is pre-labeled"
    );
    // Label Studio numbers tasks in file order, so the file order is the order annotators get.
    let priorities: Vec<i64> = tasks
        .iter()
        .map_while(|t| t["data"]["lw_priority"].as_i64())
        .collect();
    assert!(!priorities.is_empty(), "the batch comes first");
    assert!(priorities.windows(2).all(|w| w[0] < w[1]), "{priorities:?}");
    // Then the human-routed members of near-duplicate groups that are not their group's
    // representative: never asked about, so without a priority; then the other routes.
    let unranked = tasks[priorities.len()..]
        .iter()
        .take_while(|t| t["data"]["lw_route"] == "human")
        .count();
    assert!(tasks[..priorities.len()]
        .iter()
        .all(|t| t["data"]["lw_route"] == "human"));
    assert!(tasks[priorities.len() + unranked..]
        .iter()
        .all(|t| t["data"]["lw_route"] != "human" && t["data"].get("lw_priority").is_none()));
    for t in &tasks {
        let r = &t["predictions"][0]["result"][0];
        only_choice(r, "label", "text");
    }
}

/// Audits are the batch's verifications: every one is exported, whatever `--routes` says,
/// marked `lw_audit` and pre-annotated with the model's label (Label Studio) or carrying it as
/// the open `label` (Prodigy).
#[test]
fn audits_are_exported_as_pre_annotated_verifications() {
    let wd = Workdir::new();
    // Every third item labeled, so all four classes have labels and a model exists.
    let s = clustered(240, 4, 16, 0.1, 7);
    let labeled: Vec<bool> = (0..s.ids.len()).map(|i| i % 3 == 0).collect();
    let data = write_text_pool(&wd, "pool.parquet", &s, &labeled);
    let data = data.to_str().unwrap();
    ok(
        &wd,
        &["plan", data, "--out", "run", "--no-cache", "--batch", "20"],
    );
    let (header, rows) = read_csv(&wd.path("run/batch.csv"));
    let reasons = header.iter().position(|h| h == "reasons").unwrap();
    let audits: HashSet<String> = rows
        .iter()
        .filter(|r| r[reasons] == "audit")
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(audits.len(), 6, "30% of a batch of 20");
    let items = items_by_id(&wd);
    ok(
        &wd,
        &[
            "export",
            "run",
            "--format",
            "label-studio",
            "--routes",
            "labeled",
        ],
    );
    let tasks: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(wd.path("run/tasks.json")).unwrap()).unwrap();
    let exported: HashSet<String> = tasks
        .iter()
        .filter(|t| t["data"]["lw_audit"] == Value::Bool(true))
        .map(|t| t["data"]["lw_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(exported, audits);
    for t in tasks
        .iter()
        .filter(|t| t["data"]["lw_audit"] == Value::Bool(true))
    {
        let id = t["data"]["lw_id"].as_str().unwrap();
        let shown = &t["predictions"][0]["result"][0]["value"]["choices"][0];
        assert_eq!(
            shown.as_str(),
            items[id].2.as_deref(),
            "{id}: the model's label"
        );
    }
    ok(&wd, &["export", "run", "--format", "prodigy"]);
    let lines = std::fs::read_to_string(wd.path("run/prodigy.jsonl")).unwrap();
    let prodigy: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let open_audits = prodigy
        .iter()
        .filter(|l| l["meta"]["lw_audit"] == Value::Bool(true))
        .inspect(|l| assert!(l.get("answer").is_none() && l["label"].is_string()))
        .count();
    assert_eq!(open_audits, 6);
}

#[test]
fn a_folder_of_items_parts_exports_as_the_single_file() {
    // The distributed map route writes items.parquet as a folder of parts: export reads it as
    // one table, and a part whose columns differ from the first part's is refused.
    let wd = Workdir::new();
    planned_run(&wd);
    let items = read_parquet(&wd.path("run/items.parquet"));
    let parts = wd.path("parts/items.parquet");
    std::fs::create_dir_all(&parts).unwrap();
    for (i, (from, to)) in [(0, 100), (100, 101), (101, 240)].into_iter().enumerate() {
        let part = items.slice(from, to - from);
        write_batch(&parts.join(format!("part-{i:05}.parquet")), &part);
    }
    for dir in ["run", "parts"] {
        let out = format!("{dir}.json");
        ok(
            &wd,
            &["export", dir, "--format", "label-studio", "-o", &out],
        );
    }
    assert_eq!(
        std::fs::read(wd.path("run.json")).unwrap(),
        std::fs::read(wd.path("parts.json")).unwrap()
    );
    let narrow = items.project(&[0, 1, 2]).unwrap();
    write_batch(&parts.join("part-00003.parquet"), &narrow);
    let out = wd.run(["export", "parts", "--format", "csv", "-o", "bad.csv"]);
    assert_eq!(out.code, 2, "{out:#?}");
    let err = out.stderr_lines().join("\n");
    assert!(
        err.contains("part-00003.parquet") && err.contains("first part"),
        "{err}"
    );
    assert_eq!(out.stderr_lines().len(), 1, "{err}");
    assert!(!wd.path("bad.csv").exists());
}

/// Writes `batch` as a Parquet file at `path`.
fn write_batch(path: &std::path::Path, batch: &arrow_array::RecordBatch) {
    let schema = batch.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| (f.name().as_str(), c.clone()))
        .collect();
    write_parquet(path, columns);
}
