//! Each format from a small file shaped like the tool's documented export, and each error.

use std::path::PathBuf;

use serde_json::json;
use tempfile::TempDir;

use super::*;

fn write(dir: &TempDir, name: &str, content: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn read(dir: &TempDir, name: &str, content: &str) -> Annotations {
    read_annotations(&write(dir, name, content)).unwrap()
}

fn read_err(dir: &TempDir, name: &str, content: &str, opts: &ReadOptions) -> String {
    let path = write(dir, name, content);
    let err = read_annotations_with(&path, opts).unwrap_err();
    assert!(matches!(err, Error::Input { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    // The message starts with the file, for the user to find it.
    let rest = msg
        .strip_prefix(&path.display().to_string())
        .unwrap_or_else(|| panic!("names the file: {msg}"));
    rest.strip_prefix(": ")
        .or(rest.strip_prefix(", "))
        .unwrap_or(rest)
        .to_string()
}

fn merged(a: &Annotations) -> Vec<(String, Option<String>)> {
    a.merge()
        .labels
        .into_iter()
        .map(|m| (m.id, m.label))
        .collect()
}

fn votes(a: &Annotations, id: &str) -> Vec<(Option<String>, String)> {
    a.items
        .iter()
        .find(|it| it.id == id)
        .unwrap()
        .votes
        .iter()
        .map(|v| (v.annotator.clone(), v.label.clone()))
        .collect()
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn pairs(v: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    v.iter()
        .map(|(id, l)| (id.to_string(), l.map(str::to_string)))
        .collect()
}

/// A choices result as Label Studio writes it.
fn choice(label: &str) -> serde_json::Value {
    json!({"id": "r1", "from_name": "label", "to_name": "text", "type": "choices",
           "origin": "manual", "value": {"choices": [label]}})
}

fn annotation(id: u64, user: u64, result: serde_json::Value) -> serde_json::Value {
    json!({"id": id, "completed_by": user, "result": result, "was_cancelled": false,
           "ground_truth": false, "created_at": "2026-12-01T10:00:00.000000Z",
           "updated_at": "2026-12-01T10:00:00.000000Z", "lead_time": 3.2, "task": 0,
           "project": 7, "prediction": {}, "result_count": 0})
}

/// A Label Studio JSON export: task 1 unanimous (2 annotators), task 2 majority 2-1 plus a
/// cancelled annotation, task 3 a 1-1 tie, task 4 unannotated, task 5 one annotator whose
/// annotation also answers a TextArea. Predictions (the model's) must not count.
fn label_studio_tasks() -> serde_json::Value {
    let task = |tid: u64, lw: &str, anns: Vec<serde_json::Value>| {
        json!({"id": tid, "data": {"text": format!("text of {lw}"), "lw_id": lw,
                                   "lw_priority": 1},
               "annotations": anns,
               "predictions": [{"model_version": "labelwise-0.1.0", "score": 0.9,
                                "result": [choice("spam")]}],
               "drafts": [], "meta": {}, "project": 7, "inner_id": tid,
               "created_at": "2026-12-01T09:00:00.000000Z"})
    };
    let mut cancelled = annotation(24, 4, json!([]));
    cancelled["was_cancelled"] = json!(true);
    let textarea = json!({"id": "t1", "from_name": "note", "to_name": "text", "type": "textarea",
                          "value": {"text": ["looks fine"]}});
    json!([
        task(
            101,
            "a",
            vec![
                annotation(11, 1, json!([choice("ham")])),
                annotation(12, 2, json!([choice("ham")]))
            ]
        ),
        task(
            102,
            "b",
            vec![
                annotation(21, 1, json!([choice("spam")])),
                annotation(22, 2, json!([choice("ham")])),
                annotation(23, 3, json!([choice("spam")])),
                cancelled
            ]
        ),
        task(
            103,
            "c",
            vec![
                annotation(31, 1, json!([choice("ham")])),
                annotation(32, 2, json!([choice("spam")]))
            ]
        ),
        task(104, "d", vec![]),
        task(
            105,
            "e",
            vec![annotation(51, 3, json!([choice("eggs"), textarea]))]
        ),
    ])
}

#[test]
fn label_studio_json_export() {
    let dir = TempDir::new().unwrap();
    let a = read(&dir, "export.json", &label_studio_tasks().to_string());
    assert_eq!(a.format, Format::LabelStudioJson);
    assert_eq!(a.id_field, "data.lw_id");
    assert_eq!(a.control.as_deref(), Some("label"));
    assert_eq!(a.records, 5);
    assert_eq!(a.ids().collect::<Vec<_>>(), ["a", "b", "c", "d", "e"]);
    assert_eq!(
        votes(&a, "b"),
        [
            (some("1"), "spam".into()),
            (some("2"), "ham".into()),
            (some("3"), "spam".into())
        ]
    );
    assert_eq!(
        merged(&a),
        pairs(&[
            ("a", Some("ham")),
            ("b", Some("spam")),
            ("c", None),
            ("d", None),
            ("e", Some("eggs"))
        ])
    );
    let r = a.merge().report;
    assert_eq!(r.votes, 8);
    assert_eq!(r.items, 5);
    assert_eq!(r.labeled, 3);
    assert_eq!(r.without_votes, 1);
    assert_eq!(r.single_annotator, 1);
    assert_eq!(r.multi_annotator, 3);
    assert_eq!(r.unanimous, 1);
    assert_eq!(r.majority_with_disagreement, 1);
    assert_eq!(r.ties, 1);
    assert_eq!(r.tie_examples, ["c"]);
    assert_eq!(
        r.skipped,
        Skipped {
            cancelled: 1,
            ..Skipped::default()
        }
    );
    let m = &a.merge().labels[1];
    assert_eq!((m.votes, m.majority_votes), (3, 2));
    // The report is what summary.json's label_merge will hold.
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["format"], "label-studio-json");
    assert_eq!(j["ties"], 1);
    assert_eq!(j["skipped"]["cancelled"], 1);
}

#[test]
fn label_studio_json_ids_fall_back_to_labelwise_id_then_data_id() {
    let dir = TempDir::new().unwrap();
    // `export` before lw_id wrote labelwise_id; annotators with emails (user objects).
    let tasks = json!([
        {"id": 1, "data": {"labelwise_id": 42, "id": "x"},
         "annotations": [{"completed_by": {"id": 9, "email": "ann@example.com"},
                          "result": [choice("ham")]}]},
    ]);
    let a = read(&dir, "old.json", &tasks.to_string());
    assert_eq!(a.id_field, "data.labelwise_id");
    assert_eq!(votes(&a, "42"), [(some("ann@example.com"), "ham".into())]);
    // Without either, the data's own `id` (never the task's `id`, 1 here).
    let tasks = json!([
        {"id": 1, "data": {"id": "x", "text": "t"},
         "completions": [{"result": [choice("ham")]}]},
    ]);
    let a = read(&dir, "data_id.json", &tasks.to_string());
    assert_eq!(a.id_field, "data.id");
    assert_eq!(votes(&a, "x"), [(None, "ham".into())]);
}

#[test]
fn label_studio_json_same_annotator_twice_counts_once() {
    let dir = TempDir::new().unwrap();
    let tasks = json!([{"id": 1, "data": {"lw_id": "a"},
        "annotations": [annotation(1, 5, json!([choice("ham")])),
                        annotation(2, 5, json!([choice("spam")]))]}]);
    let a = read(&dir, "twice.json", &tasks.to_string());
    assert_eq!(votes(&a, "a"), [(some("5"), "spam".into())]);
    assert_eq!(a.skipped.replaced, 1);
}

#[test]
fn label_studio_json_control_choice() {
    let dir = TempDir::new().unwrap();
    let mut other = choice("positive");
    other["from_name"] = json!("sentiment");
    let tasks = json!([{"id": 1, "data": {"lw_id": "a"},
        "annotations": [annotation(1, 5, json!([choice("ham"), other]))]}]);
    let text = tasks.to_string();
    let msg = read_err(&dir, "two.json", &text, &ReadOptions::default());
    assert_eq!(
        msg,
        "several choices controls (label, sentiment): choose one as the label control"
    );
    let opts = ReadOptions {
        control: Some("sentiment".into()),
        ..ReadOptions::default()
    };
    let a = read_annotations_with(&write(&dir, "two.json", &text), &opts).unwrap();
    assert_eq!(a.control.as_deref(), Some("sentiment"));
    assert_eq!(merged(&a), pairs(&[("a", Some("positive"))]));
    let opts = ReadOptions {
        control: Some("labels".into()),
        ..ReadOptions::default()
    };
    assert_eq!(
        read_err(&dir, "two.json", &text, &opts),
        "no control 'labels' in the annotations (choices controls: label, sentiment)"
    );
}

#[test]
fn label_studio_json_errors() {
    let dir = TempDir::new().unwrap();
    let none = ReadOptions::default();
    // No choices control: an export of another kind of project.
    let rect = json!({"from_name": "box", "to_name": "image", "type": "rectanglelabels",
                      "value": {"x": 1, "rectanglelabels": ["car"]}});
    let tasks = json!([{"id": 1, "data": {"lw_id": "a"},
                        "annotations": [annotation(1, 5, json!([rect]))]}]);
    assert_eq!(
        read_err(&dir, "rect.json", &tasks.to_string(), &none),
        "no choices control in 1 non-cancelled annotations of 1 tasks (other controls: box \
         (rectanglelabels))"
    );
    // A choice that is not a string.
    let mut bad = choice("x");
    bad["value"]["choices"] = json!([3]);
    let tasks = json!([{"id": 1, "data": {"lw_id": "a"}, "annotations": [annotation(1, 5, json!([choice("ham")]))]},
                       {"id": 7, "data": {"lw_id": "b"}, "annotations": [annotation(2, 5, json!([bad]))]}]);
    assert_eq!(
        read_err(&dir, "num.json", &tasks.to_string(), &none),
        "row 1: task 7: choice value is a number, expected a string"
    );
    // Multi-label: one annotation, two choices.
    let mut two = choice("x");
    two["value"]["choices"] = json!(["ham", "spam"]);
    let tasks =
        json!([{"id": 3, "data": {"lw_id": "a"}, "annotations": [annotation(1, 5, json!([two]))]}]);
    assert_eq!(
        read_err(&dir, "multi.json", &tasks.to_string(), &none),
        "row 0: task 3: several choices (ham, spam): labelwise takes one label per item"
    );
    // No ids we know: an export of another project.
    let tasks = json!([{"id": 3, "data": {"text": "t"}, "annotations": [annotation(1, 5, json!([choice("ham")]))]}]);
    assert_eq!(
        read_err(&dir, "foreign.json", &tasks.to_string(), &none),
        "no item ids found (looked for data.lw_id, data.labelwise_id, data.id): not an export \
         of labelwise items?"
    );
    // Truncated JSON.
    let text = label_studio_tasks().to_string();
    let msg = read_err(&dir, "cut.json", &text[..text.len() / 2], &none);
    assert!(
        msg.starts_with("malformed JSON (EOF while parsing"),
        "{msg}"
    );
    // A task without data.
    assert_eq!(
        read_err(
            &dir,
            "nodata.json",
            r#"[{"id": 4, "annotations": []}]"#,
            &none
        ),
        "row 0: task 4: no 'data' object"
    );
}

/// JSON_MIN as `convert_to_json_min` writes it: data fields, `id` (the task id), the control,
/// then the annotation's keys; a task nobody annotated still gets a row.
const JSON_MIN: &str = r#"[
{"text": "first", "lw_id": "a", "lw_priority": 1, "id": 101, "label": "ham", "annotator": 1,
 "annotation_id": 11, "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z", "lead_time": 2.5},
{"text": "first", "lw_id": "a", "lw_priority": 1, "id": 101, "label": "spam", "annotator": 2,
 "annotation_id": 12, "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z", "lead_time": 2.5},
{"text": "first", "lw_id": "a", "lw_priority": 1, "id": 101, "label": ["spam"], "annotator": 3,
 "annotation_id": 13, "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z", "lead_time": 2.5},
{"text": "second", "lw_id": "b", "lw_priority": 2, "id": 102, "label": "ham", "annotator": "lee@example.com",
 "annotation_id": 21, "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z", "lead_time": 1.0},
{"text": "third", "lw_id": "c", "lw_priority": 3, "id": 103, "annotator": null,
 "annotation_id": null, "created_at": null, "updated_at": null, "lead_time": null}
]"#;

#[test]
fn label_studio_json_min_export() {
    let dir = TempDir::new().unwrap();
    let a = read(&dir, "min.json", JSON_MIN);
    assert_eq!(a.format, Format::LabelStudioJsonMin);
    assert_eq!(a.id_field, "lw_id");
    // `text` has a value in the unannotated row, so it is data; `label` is the control.
    assert_eq!(a.control.as_deref(), Some("label"));
    assert_eq!(a.records, 5);
    assert_eq!(
        votes(&a, "a"),
        [
            (some("1"), "ham".into()),
            (some("2"), "spam".into()),
            (some("3"), "spam".into())
        ]
    );
    assert_eq!(votes(&a, "b"), [(some("lee@example.com"), "ham".into())]);
    assert_eq!(
        merged(&a),
        pairs(&[("a", Some("spam")), ("b", Some("ham")), ("c", None)])
    );
    let r = a.merge().report;
    assert_eq!(
        (
            r.majority_with_disagreement,
            r.single_annotator,
            r.without_votes
        ),
        (1, 1, 1)
    );
}

#[test]
fn label_studio_json_min_control_from_data_fields_or_name() {
    let dir = TempDir::new().unwrap();
    // Every task annotated: `text` and `sentiment` both look like labels.
    let rows = r#"[{"text": "t", "lw_id": "a", "id": 1, "sentiment": "pos", "annotator": 1, "annotation_id": 5}]"#;
    assert_eq!(
        read_err(&dir, "amb.json", rows, &ReadOptions::default()),
        "cannot tell the label column from data columns (sentiment, text): name the label \
         control (its from_name)"
    );
    let path = write(&dir, "amb.json", rows);
    let by_data = ReadOptions {
        data_fields: vec!["text".into()],
        ..ReadOptions::default()
    };
    let by_name = ReadOptions {
        control: Some("sentiment".into()),
        ..ReadOptions::default()
    };
    for opts in [by_data, by_name] {
        let a = read_annotations_with(&path, &opts).unwrap();
        assert_eq!(a.control.as_deref(), Some("sentiment"));
        assert_eq!(merged(&a), pairs(&[("a", Some("pos"))]));
    }
    let opts = ReadOptions {
        control: Some("label".into()),
        ..ReadOptions::default()
    };
    assert_eq!(
        read_err(&dir, "amb.json", rows, &opts),
        "no column 'label' (the label control's from_name); columns: annotation_id, annotator, \
         id, lw_id, sentiment, text"
    );
}

#[test]
fn label_studio_json_min_with_an_answer_data_field_is_not_prodigy() {
    let dir = TempDir::new().unwrap();
    let rows = r#"[{"question": "q?", "answer": "42", "lw_id": "a", "id": 1, "label": "good",
        "annotator": 1, "annotation_id": 5},
        {"question": "q2?", "answer": "43", "lw_id": "b", "id": 2, "annotator": null,
        "annotation_id": null}]"#;
    let a = read(&dir, "qa.json", rows);
    assert_eq!(a.format, Format::LabelStudioJsonMin);
    assert_eq!(a.control.as_deref(), Some("label"));
    assert_eq!(merged(&a), pairs(&[("a", Some("good")), ("b", None)]));
}

#[test]
fn label_studio_json_min_errors() {
    let dir = TempDir::new().unwrap();
    let none = ReadOptions::default();
    // Several choices: prettify_result writes {"choices": [...]}.
    let rows = r#"[{"lw_id": "a", "id": 1, "label": {"choices": ["ham", "spam"]}, "annotator": 1, "annotation_id": 5}]"#;
    assert_eq!(
        read_err(&dir, "multi.json", rows, &none),
        "column 'label', row 0: several choices (ham, spam): labelwise takes one label per item"
    );
    // Without lw_id the `id` is Label Studio's task id: not ours.
    let rows = r#"[{"text": "t", "id": 1, "label": "ham", "annotator": 1, "annotation_id": 5}]"#;
    assert_eq!(
        read_err(&dir, "noid.json", rows, &none),
        "no item ids found (looked for lw_id, labelwise_id): not an export of labelwise items?"
    );
}

/// CSV as `csv2.convert` writes it: sorted columns, QUOTE_NONNUMERIC, an unannotated task with
/// empty cells, several choices JSON-encoded.
const LS_CSV: &str = "\
\"annotation_id\",\"annotator\",\"created_at\",\"id\",\"label\",\"lead_time\",\"lw_id\",\"text\",\"updated_at\"
11,\"1\",\"2026-12-01T10:00:00Z\",101,\"ham\",2.5,\"a\",\"first, with a comma\",\"2026-12-01T10:00:00Z\"
12,\"2\",\"2026-12-01T10:00:00Z\",101,\"ham\",2.5,\"a\",\"first, with a comma\",\"2026-12-01T10:00:00Z\"
21,\"1\",\"2026-12-01T10:00:00Z\",102,\"spam\",1.0,\"b\",\"second\",\"2026-12-01T10:00:00Z\"
\"\",\"\",\"\",103,\"\",\"\",\"c\",\"third\",\"\"
";

#[test]
fn label_studio_csv_export() {
    let dir = TempDir::new().unwrap();
    let a = read(&dir, "export.csv", LS_CSV);
    assert_eq!(a.format, Format::LabelStudioCsv);
    assert_eq!(a.id_field, "lw_id");
    assert_eq!(a.control.as_deref(), Some("label"));
    assert_eq!(a.records, 4);
    assert_eq!(
        votes(&a, "a"),
        [(some("1"), "ham".into()), (some("2"), "ham".into())]
    );
    assert_eq!(
        merged(&a),
        pairs(&[("a", Some("ham")), ("b", Some("spam")), ("c", None)])
    );
    let r = a.merge().report;
    assert_eq!(
        (r.unanimous, r.single_annotator, r.without_votes),
        (1, 1, 1)
    );
    // The TSV export is the same with tabs.
    let tsv: String = LS_CSV
        .lines()
        .map(|l| {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(l.as_bytes());
            let rec = rdr.records().next().unwrap().unwrap();
            rec.iter().collect::<Vec<_>>().join("\t") + "\n"
        })
        .collect();
    let t = read(&dir, "export.tsv", &tsv);
    assert_eq!(t.format, Format::LabelStudioCsv);
    assert_eq!(merged(&t), merged(&a));
}

#[test]
fn label_studio_csv_errors() {
    let dir = TempDir::new().unwrap();
    let none = ReadOptions::default();
    let multi = "annotation_id,annotator,id,label,lw_id\n11,1,101,\"{\"\"choices\"\": [\"\"ham\"\", \"\"spam\"\"]}\",a\n";
    assert_eq!(
        read_err(&dir, "multi.csv", multi, &none),
        "column 'label', row 0: several choices (ham, spam): labelwise takes one label per item"
    );
    let ragged = "annotation_id,annotator,id,label,lw_id\n11,1,101,ham,a\n12,1,101\n";
    let msg = read_err(&dir, "ragged.csv", ragged, &none);
    assert!(msg.starts_with("row 1: bad CSV record:"), "{msg}");
}

/// Argilla records as `to_list(flatten=True)` gives them: fields and metadata at the top level,
/// responses with users and status; a rating question (numbers) beside the label question.
fn argilla_records() -> serde_json::Value {
    json!([
        {"id": "rec-1", "_server_id": "5f0c…", "text": "first", "lw_id": "a",
         "label.responses": ["ham", "spam", "ham"],
         "label.responses.users": ["u1", "u2", "u3"],
         "label.responses.status": ["submitted", "submitted", "submitted"],
         "quality.responses": [4], "quality.responses.users": ["u1"],
         "quality.responses.status": ["submitted"],
         "label.suggestion": "spam", "label.suggestion.score": 0.7,
         "label.suggestion.agent": "labelwise"},
        {"id": "rec-2", "_server_id": "6a1d…", "text": "second", "lw_id": "b",
         "label.responses": ["spam", "ham", "ham"],
         "label.responses.users": ["u1", "u2", "u3"],
         "label.responses.status": ["submitted", "draft", "discarded"],
         "quality.responses": null, "quality.responses.users": null,
         "quality.responses.status": null,
         "label.suggestion": null, "label.suggestion.score": null,
         "label.suggestion.agent": null},
        {"id": "rec-3", "_server_id": "7b2e…", "text": "third", "lw_id": "c",
         "label.responses": null, "label.responses.users": null,
         "label.responses.status": null,
         "quality.responses": null, "quality.responses.users": null,
         "quality.responses.status": null,
         "label.suggestion": "ham", "label.suggestion.score": 0.9,
         "label.suggestion.agent": "labelwise"}
    ])
}

#[test]
fn argilla_flattened_records() {
    let dir = TempDir::new().unwrap();
    let a = read(&dir, "records.json", &argilla_records().to_string());
    assert_eq!(a.format, Format::ArgillaRecords);
    assert_eq!(a.id_field, "lw_id");
    assert_eq!(a.control.as_deref(), Some("label"));
    assert_eq!(
        votes(&a, "a"),
        [
            (some("u1"), "ham".into()),
            (some("u2"), "spam".into()),
            (some("u3"), "ham".into())
        ]
    );
    // The draft and the discarded response are not labels; the suggestion is the model's.
    assert_eq!(votes(&a, "b"), [(some("u1"), "spam".into())]);
    assert_eq!(
        merged(&a),
        pairs(&[("a", Some("ham")), ("b", Some("spam")), ("c", None)])
    );
    assert_eq!(a.skipped.not_submitted, 2);
    // One record per line works too.
    let jsonl: String = argilla_records()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string() + "\n")
        .collect();
    let l = read(&dir, "records.jsonl", &jsonl);
    assert_eq!(merged(&l), merged(&a));
    // Without lw_id, the record id the user gave.
    let mut recs = argilla_records();
    for r in recs.as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("lw_id");
    }
    let i = read(&dir, "ids.json", &recs.to_string());
    assert_eq!(i.id_field, "id");
    assert_eq!(i.ids().collect::<Vec<_>>(), ["rec-1", "rec-2", "rec-3"]);
}

#[test]
fn argilla_errors() {
    let dir = TempDir::new().unwrap();
    let none = ReadOptions::default();
    let text = argilla_records().to_string();
    let rating = ReadOptions {
        control: Some("quality".into()),
        ..ReadOptions::default()
    };
    assert_eq!(
        read_err(&dir, "r.json", &text, &rating),
        "column 'quality.responses', row 0: response 0 is a number, expected a string (the \
         answer of a label question)"
    );
    let mut recs = argilla_records();
    recs[1]
        .as_object_mut()
        .unwrap()
        .remove("label.responses.status");
    assert_eq!(
        read_err(&dir, "nostatus.json", &recs.to_string(), &none),
        "column 'label.responses.status', row 1: missing or not one per response: cannot tell \
         submitted responses from drafts (3 responses)"
    );
    // Two questions answered with strings: which one is the label is the user's to say.
    let mut recs = argilla_records();
    for r in recs.as_array_mut().unwrap() {
        let r = r.as_object_mut().unwrap();
        r.insert("topic.responses".into(), json!(["billing"]));
        r.insert("topic.responses.users".into(), json!(["u1"]));
        r.insert("topic.responses.status".into(), json!(["submitted"]));
    }
    assert_eq!(
        read_err(&dir, "two.json", &recs.to_string(), &none),
        "several questions (label, quality, topic): choose one as the label control"
    );
    let nested = r#"[{"id": "r", "_server_id": "s", "fields": {"text": "t"}, "metadata": {"lw_id": "a"},
        "responses": {"label": [{"value": "ham", "user_id": "u1"}]}, "suggestions": {}, "vectors": {}}]"#;
    assert!(read_err(&dir, "nested.json", nested, &none)
        .starts_with("Argilla records exported without flatten=True"));
}

/// Prodigy db-out lines: a choice task (textcat.manual: options with the labels as ids, the
/// selection in `accept`) by two annotators, binary tasks accepted and rejected, an ignore.
const PRODIGY: &str = r#"{"text":"first","meta":{"lw_id":"a"},"_input_hash":-1,"_task_hash":-11,"options":[{"id":"ham","text":"ham"},{"id":"spam","text":"spam"}],"_view_id":"choice","accept":["ham"],"config":{"choice_style":"single"},"answer":"accept","_timestamp":1764580000,"_annotator_id":"labels-alex","_session_id":"labels-alex"}
{"text":"first","meta":{"lw_id":"a"},"_input_hash":-1,"_task_hash":-11,"options":[{"id":"ham","text":"ham"},{"id":"spam","text":"spam"}],"_view_id":"choice","accept":["ham"],"config":{"choice_style":"single"},"answer":"accept","_timestamp":1764580001,"_annotator_id":"labels-kim","_session_id":"labels-kim"}

{"text":"second","meta":{"lw_id":"b"},"_input_hash":-2,"_task_hash":-22,"label":"spam","_view_id":"classification","answer":"accept","_timestamp":1764580002,"_annotator_id":"labels-alex","_session_id":"labels-alex"}
{"text":"third","meta":{"lw_id":"c"},"_input_hash":-3,"_task_hash":-33,"label":"spam","_view_id":"classification","answer":"reject","_timestamp":1764580003,"_annotator_id":"labels-alex","_session_id":"labels-alex"}
{"text":"fourth","meta":{"lw_id":"d"},"_input_hash":-4,"_task_hash":-44,"options":[{"id":"ham","text":"ham"}],"_view_id":"choice","accept":[],"answer":"ignore","_timestamp":1764580004,"_annotator_id":"labels-kim","_session_id":"labels-kim"}
{"text":"fifth","meta":{"lw_id":"e"},"_input_hash":-5,"_task_hash":-55,"options":[{"id":"ham","text":"ham"}],"_view_id":"choice","accept":[],"answer":"accept","_timestamp":1764580005,"_session_id":"labels-kim"}
"#;

#[test]
fn prodigy_db_out() {
    let dir = TempDir::new().unwrap();
    let a = read(&dir, "db-out.jsonl", PRODIGY);
    assert_eq!(a.format, Format::ProdigyJsonl);
    assert_eq!(a.id_field, "meta.lw_id");
    assert_eq!(a.control, None);
    assert_eq!(a.records, 6);
    assert_eq!(
        votes(&a, "a"),
        [
            (some("labels-alex"), "ham".into()),
            (some("labels-kim"), "ham".into())
        ]
    );
    assert_eq!(
        merged(&a),
        pairs(&[
            ("a", Some("ham")),
            ("b", Some("spam")),
            ("c", None),
            ("d", None),
            ("e", None)
        ])
    );
    assert_eq!(
        a.skipped,
        Skipped {
            rejected: 1,
            ignored: 1,
            no_label: 1,
            ..Skipped::default()
        }
    );
    assert_eq!(a.merge().report.unanimous, 1);
    // Leading blank lines are still JSON Lines.
    let b = read(&dir, "blank.jsonl", &format!("\n\n{PRODIGY}"));
    assert_eq!(merged(&b), merged(&a));
}

#[test]
fn prodigy_errors() {
    let dir = TempDir::new().unwrap();
    let none = ReadOptions::default();
    let mut lines: Vec<&str> = PRODIGY.lines().collect();
    lines[3] = r#"{"text":"broken","meta":{"lw_id":"x"},"answer":"acc"#;
    assert!(read_err(&dir, "cut.jsonl", &lines.join("\n"), &none)
        .starts_with("line 4: malformed JSON ("));
    let multi = r#"{"meta":{"lw_id":"a"},"options":[{"id":"ham"},{"id":"spam"}],"accept":["ham","spam"],"answer":"accept"}"#;
    assert_eq!(
        read_err(&dir, "multi.jsonl", multi, &none),
        "column 'accept': line 1: several options accepted (ham, spam): labelwise takes one \
         label per item"
    );
    let spans = "{\"meta\":{\"lw_id\":\"a\"},\"answer\":\"accept\"}\n{\"meta\":{\"lw_id\":\"b\"},\"spans\":[],\"answer\":\"accept\"}\n";
    assert_eq!(
        read_err(&dir, "ner.jsonl", spans, &none),
        "line 1: accepted task has neither 'accept' (choice) nor 'label' (binary): not a \
         classification task"
    );
    let foreign = r#"{"text":"t","label":"ham","answer":"accept","_task_hash":1}"#;
    assert_eq!(
        read_err(&dir, "foreign.jsonl", foreign, &none),
        "no item ids found (looked for meta.lw_id, meta.labelwise_id, meta.id, lw_id, id): not \
         an export of labelwise items?"
    );
}

#[test]
fn own_csv_and_parquet() {
    let dir = TempDir::new().unwrap();
    let a = read(&dir, "labels.txt", "id,label\n1,ham\n2,spam\n2,ham\n3,\n");
    assert_eq!(a.format, Format::IdLabelCsv);
    assert_eq!(a.id_field, "id");
    assert_eq!(
        merged(&a),
        pairs(&[("1", Some("ham")), ("2", None), ("3", None)])
    );
    assert_eq!(a.skipped.no_label, 1);
    assert_eq!(a.merge().report.ties, 1);
    // lw_id wins over id; an annotator column names the votes.
    let b = read(
        &dir,
        "votes.csv",
        "id,lw_id,label,annotator\n9,a,ham,u1\n9,a,spam,u2\n9,a,spam,u3\n",
    );
    assert_eq!(b.id_field, "lw_id");
    assert_eq!(merged(&b), pairs(&[("a", Some("spam"))]));
    assert_eq!(b.merge().report.majority_with_disagreement, 1);

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(vec![7, 8, 7])) as ArrayRef),
        (
            "label",
            Arc::new(StringArray::from(vec![Some("ham"), None, Some("ham")])) as ArrayRef,
        ),
    ])
    .unwrap();
    let path = dir.path().join("labels.data");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let p = read_annotations(&path).unwrap();
    assert_eq!(p.format, Format::IdLabelParquet);
    assert_eq!(p.records, 3);
    assert_eq!(merged(&p), pairs(&[("7", Some("ham")), ("8", None)]));
    assert_eq!(p.merge().report.unanimous, 1);
}

#[test]
fn own_csv_errors_and_unknown_content() {
    let dir = TempDir::new().unwrap();
    let none = ReadOptions::default();
    assert_eq!(
        read_err(&dir, "nolabel.csv", "id,class\n1,ham\n", &none),
        "column 'label': missing column (a labels file needs a header row with id,label)"
    );
    assert_eq!(
        read_err(&dir, "emptyid.csv", "id,label\n,ham\n", &none),
        "column 'id', row 0: empty id"
    );
    assert_eq!(read_err(&dir, "empty.csv", " \n", &none), "empty file");
    assert_eq!(
        read_err(&dir, "other.jsonl", "{\"a\": 1}\n{\"a\": 2}\n", &none),
        "line 1: JSON object of no known export (Prodigy db-out lines have 'answer', Argilla \
         records '<question>.responses', Label Studio tasks 'annotations')"
    );
    assert_eq!(
        read_err(&dir, "nums.json", "[1, 2]", &none),
        "row 0: expected a JSON object, found a number"
    );
    assert!(read_err(&dir, "junk.parquet", "PAR1 not really", &none)
        .starts_with("not a Parquet file, or truncated"));
}
