//! `push label-studio` and `pull label-studio` (issue 16, point 3) against an in-process stub
//! of Label Studio's REST API: the real binary runs, the stub records every request and keeps
//! the project's tasks and views the way the server does, so the tests check what was sent
//! (tasks equal to `export`'s, predictions with the project's `model_version`, the priority
//! view), that a rerun after a half-done push imports only what is missing, the two kinds of
//! API key, and that errors (401, 500, refused connection) exit 2 with the server's message on
//! one line and write nothing. The real server is exercised by
//! `benches/peers/label_studio_import.sh`, outside CI.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

const LEGACY: &str = "0123456789abcdef0123456789abcdef01234567";
const ACCESS: &str = "stub-access-token";

/// One request the stub received.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    url: String,
    auth: Option<String>,
    body: Value,
}

/// The stub's project, tasks and views, and what it was asked.
struct State {
    project: Value,
    tasks: Vec<Value>,
    views: Vec<Value>,
    requests: Vec<Req>,
    /// Import requests answered normally before the stub starts answering 500.
    imports_before_failure: Option<usize>,
    /// Answer every request with this status and body.
    always: Option<(u16, String)>,
    /// The personal access token the refresh endpoint accepts.
    refresh_token: String,
}

/// A Label Studio stand-in on 127.0.0.1, serving one project (id 3) until dropped.
struct Stub {
    url: String,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The labeling config's parse, as Label Studio's project API returns it.
fn parsed_config(controls: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for c in controls {
        m.insert(
            c.to_string(),
            json!({"type": "Choices", "to_name": ["text"],
                   "inputs": [{"type": "Text", "value": "$text", "valueType": null}],
                   "labels": ["c0", "c1", "c2", "c3"], "labels_attrs": {}}),
        );
    }
    Value::Object(m)
}

fn reply(status: u16, body: Value) -> (u16, String) {
    (status, body.to_string())
}

fn not_found() -> (u16, String) {
    reply(404, json!({"status_code": 404, "detail": "Not found."}))
}

impl Stub {
    fn start(model_version: &str) -> Stub {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind stub"));
        let port = server.server_addr().to_ip().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            project: json!({"id": 3, "title": "stub", "model_version": model_version,
                            "parsed_label_config": parsed_config(&["label"])}),
            tasks: Vec::new(),
            views: Vec::new(),
            requests: Vec::new(),
            imports_before_failure: None,
            always: None,
            refresh_token: String::new(),
        }));
        let (srv, st) = (server.clone(), state.clone());
        let thread = std::thread::spawn(move || {
            for mut rq in srv.incoming_requests() {
                let mut text = String::new();
                let _ = rq.as_reader().read_to_string(&mut text);
                let auth = rq
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_string());
                let req = Req {
                    method: rq.method().as_str().to_string(),
                    url: rq.url().to_string(),
                    auth,
                    body: serde_json::from_str(&text).unwrap_or(Value::Null),
                };
                let (status, body) = {
                    let mut s = st.lock().unwrap();
                    s.requests.push(req.clone());
                    s.answer(&req)
                };
                let ct = if body.starts_with('<') {
                    "text/html"
                } else {
                    "application/json"
                };
                let header = tiny_http::Header::from_bytes("Content-Type", ct).unwrap();
                let _ = rq.respond(
                    tiny_http::Response::from_string(body)
                        .with_status_code(status)
                        .with_header(header),
                );
            }
        });
        Stub {
            url: format!("http://127.0.0.1:{port}"),
            state,
            server,
            thread: Some(thread),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

impl State {
    fn answer(&mut self, r: &Req) -> (u16, String) {
        if let Some(a) = &self.always {
            return a.clone();
        }
        let path = r.url.split('?').next().unwrap_or_default();
        if path == "/api/token/refresh/" {
            return if r.body["refresh"] == self.refresh_token.as_str() {
                reply(200, json!({ "access": ACCESS }))
            } else {
                reply(
                    401,
                    json!({"detail": "Token is invalid or expired", "code": "token_not_valid"}),
                )
            };
        }
        let legacy = format!("Token {LEGACY}");
        let bearer = format!("Bearer {ACCESS}");
        if r.auth.as_deref() != Some(&legacy) && r.auth.as_deref() != Some(&bearer) {
            return reply(401, json!({"status_code": 401, "detail": "Invalid token."}));
        }
        let query: BTreeMap<&str, &str> = r
            .url
            .split_once('?')
            .map(|(_, q)| q.split('&').filter_map(|kv| kv.split_once('=')).collect())
            .unwrap_or_default();
        match (r.method.as_str(), path) {
            (_, p) if p.starts_with("/api/projects/") && !p.starts_with("/api/projects/3/") => {
                not_found()
            }
            ("GET", "/api/projects/3/") => (200, self.project.to_string()),
            ("PATCH", "/api/projects/3/") => {
                // As Label Studio 1.23 does: a model_version no prediction has is refused.
                if let Some(v) = r.body.get("model_version") {
                    if !self.has_model_version(v) {
                        let msg = "Model version doesn't exist either as live model or as static predictions.";
                        return reply(
                            400,
                            json!({"detail": "Validation error",
                                                 "validation_errors": {"model_version": [msg]}}),
                        );
                    }
                }
                for (k, v) in r.body.as_object().unwrap() {
                    self.project[k] = v.clone();
                }
                (200, self.project.to_string())
            }
            ("GET", "/api/tasks/") => self.task_page(&query),
            ("POST", "/api/projects/3/import") => self.import(&r.body),
            ("GET", "/api/dm/views/") => (200, Value::Array(self.views.clone()).to_string()),
            ("POST", "/api/dm/views/") => {
                let mut v = r.body.clone();
                v["id"] = json!(100 + self.views.len());
                self.views.push(v.clone());
                (201, v.to_string())
            }
            ("PATCH", p) if p.starts_with("/api/dm/views/") => {
                let id: u64 = p
                    .trim_start_matches("/api/dm/views/")
                    .trim_end_matches('/')
                    .parse()
                    .unwrap();
                let v = self.views.iter_mut().find(|v| v["id"] == id).unwrap();
                v["data"] = r.body["data"].clone();
                (200, v.to_string())
            }
            ("GET", "/api/projects/3/export") => {
                assert_eq!(query.get("exportType"), Some(&"JSON"), "{r:?}");
                let annotated: Vec<Value> = self
                    .tasks
                    .iter()
                    .filter(|t| t["annotations"].as_array().is_some_and(|a| !a.is_empty()))
                    .cloned()
                    .collect();
                (200, Value::Array(annotated).to_string())
            }
            _ => not_found(),
        }
    }

    fn has_model_version(&self, v: &Value) -> bool {
        self.tasks.iter().any(|t| {
            t["predictions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| &p["model_version"] == v)
        })
    }

    fn task_page(&self, q: &BTreeMap<&str, &str>) -> (u16, String) {
        assert_eq!(q.get("project"), Some(&"3"));
        let page: usize = q["page"].parse().unwrap();
        let size: usize = q["page_size"].parse().unwrap();
        let start = (page - 1) * size;
        if start >= self.tasks.len() && page > 1 {
            return reply(404, json!({"detail": "Invalid page."}));
        }
        // Listed without annotations and predictions, as the API does without fields=all.
        let tasks: Vec<Value> = self.tasks[start.min(self.tasks.len())..]
            .iter()
            .take(size)
            .map(|t| json!({"id": t["id"], "data": t["data"]}))
            .collect();
        reply(200, json!({"tasks": tasks, "total": self.tasks.len()}))
    }

    fn import(&mut self, body: &Value) -> (u16, String) {
        if let Some(n) = self.imports_before_failure.as_mut() {
            if *n == 0 {
                let page = "<!doctype html>\n<html><head><title>Server Error (500)</title></head>\
                            <body><h1>Server Error (500)</h1></body></html>";
                return (500, page.to_string());
            }
            *n -= 1;
        }
        let tasks = body.as_array().unwrap();
        let (mut preds, mut anns) = (0, 0);
        for t in tasks {
            let mut t = t.clone();
            t["id"] = json!(1000 + self.tasks.len());
            preds += t["predictions"].as_array().map_or(0, Vec::len);
            anns += t["annotations"].as_array().map_or(0, Vec::len);
            self.tasks.push(t);
        }
        reply(
            201,
            json!({"task_count": tasks.len(), "prediction_count": preds,
                   "annotation_count": anns, "duration": 0.01}),
        )
    }
}

/// Runs the binary in `wd` with `LABEL_STUDIO_API_KEY=key` (unset when `None`).
fn run_with_key(wd: &Workdir, key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_labelwise"));
    cmd.args(args).arg("--quiet").current_dir(wd.root());
    cmd.env_remove("RUST_BACKTRACE").env("NO_COLOR", "1");
    cmd.env_remove("http_proxy").env_remove("HTTP_PROXY");
    cmd.env_remove("ALL_PROXY").env_remove("all_proxy");
    match key {
        Some(k) => cmd.env("LABEL_STUDIO_API_KEY", k),
        None => cmd.env_remove("LABEL_STUDIO_API_KEY"),
    };
    let out = cmd.output().expect("run labelwise");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A planned round: 240 items in 4 classes, every third labeled, a batch of 20 (6 audits).
/// Returns the workdir, the synthetic truth and the round folder name.
fn round() -> (Workdir, Synth) {
    let wd = Workdir::new();
    let s = clustered(240, 4, 16, 0.1, 7);
    let labeled: Vec<bool> = (0..s.ids.len()).map(|i| i % 3 == 0).collect();
    let pool = write_text_pool(&wd, "pool.parquet", &s, &labeled);
    ok(
        &wd,
        &[
            "plan",
            pool.to_str().unwrap(),
            "--out",
            "r1",
            "--no-cache",
            "--batch",
            "20",
        ],
    );
    (wd, s)
}

fn push_args<'a>(stub: &'a Stub, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "push",
        "label-studio",
        "r1",
        "--url",
        &stub.url,
        "--project",
        "3",
    ];
    a.extend_from_slice(extra);
    a
}

/// Requests of one kind (method and path prefix).
fn sent<'a>(reqs: &'a [Req], method: &str, prefix: &str) -> Vec<&'a Req> {
    reqs.iter()
        .filter(|r| r.method == method && r.url.starts_with(prefix))
        .collect()
}

fn lw_ids(tasks: &[Value]) -> Vec<String> {
    tasks
        .iter()
        .map(|t| t["data"]["lw_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn push_sends_export_tasks_with_the_projects_model_version_and_a_priority_view() {
    let (wd, _) = round();
    let stub = Stub::start("ml-backend-v7");
    let o = run_with_key(&wd, Some(LEGACY), &push_args(&stub, &["--chunk", "64"]));
    assert_eq!(o.code, 0, "{o:#?}");
    // The tasks are export's, with the project's model_version on every prediction.
    ok(
        &wd,
        &[
            "export",
            "r1",
            "--format",
            "label-studio",
            "--model-version",
            "ml-backend-v7",
        ],
    );
    let exported = read_json(&wd.path("r1/tasks.json"));
    let exported = exported.as_array().unwrap();
    let reqs = stub.with(|s| s.requests.clone());
    let imports = sent(&reqs, "POST", "/api/projects/3/import");
    let bodies: Vec<Value> = imports
        .iter()
        .flat_map(|r| r.body.as_array().unwrap().clone())
        .collect();
    assert_eq!(
        &bodies, exported,
        "push sends exactly export's tasks, in its order"
    );
    assert_eq!(
        imports.len(),
        exported.len().div_ceil(64),
        "in chunks of 64"
    );
    assert!(imports
        .iter()
        .all(|r| r.body.as_array().unwrap().len() <= 64));
    let preds: Vec<&Value> = bodies
        .iter()
        .flat_map(|t| t["predictions"].as_array().unwrap())
        .collect();
    assert!(!preds.is_empty());
    assert!(preds
        .iter()
        .all(|p| p["model_version"] == "ml-backend-v7" && p["score"].is_f64()));
    // Audits: pre-annotated (a prediction) and marked.
    let audits: Vec<&Value> = bodies
        .iter()
        .filter(|t| t["data"]["lw_audit"] == true)
        .collect();
    assert_eq!(audits.len(), 6, "30% of a batch of 20");
    assert!(audits
        .iter()
        .all(|t| t["predictions"][0]["result"][0]["value"]["choices"][0]
            .as_str()
            .is_some_and(|c| c.starts_with('c'))));
    // The project's model_version already matched: not changed.
    assert!(sent(&reqs, "PATCH", "/api/projects/3/").is_empty());
    // One view, ordered by priority as a number.
    let views = sent(&reqs, "POST", "/api/dm/views/");
    assert_eq!(views.len(), 1);
    let v = &views[0].body;
    assert_eq!(v["project"], 3);
    assert_eq!(v["data"]["ordering"], json!(["tasks:data.lw_priority"]));
    assert_eq!(
        v["data"]["columnsDisplayType"]["tasks:data.lw_priority"],
        "Number"
    );
    // Every request carried the legacy token.
    let legacy = format!("Token {LEGACY}");
    assert!(reqs
        .iter()
        .all(|r| r.auth.as_deref() == Some(legacy.as_str())));
    assert!(
        o.stderr
            .contains(&format!("pushed {} of {}", bodies.len(), bodies.len())),
        "{}",
        o.stderr
    );
}

#[test]
fn push_without_a_project_model_version_sets_ours_on_the_project() {
    let (wd, _) = round();
    let stub = Stub::start("");
    let o = run_with_key(&wd, Some(LEGACY), &push_args(&stub, &[]));
    assert_eq!(o.code, 0, "{o:#?}");
    let want = format!("labelwise-{}", env!("CARGO_PKG_VERSION"));
    let reqs = stub.with(|s| s.requests.clone());
    let patches = sent(&reqs, "PATCH", "/api/projects/3/");
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].body, json!({ "model_version": want }));
    // After the import: before it, the server refuses a version no prediction has.
    let last_import = reqs
        .iter()
        .rposition(|r| r.url.ends_with("/import"))
        .unwrap();
    let patch_at = reqs.iter().position(|r| r.method == "PATCH").unwrap();
    assert!(patch_at > last_import);
    assert_eq!(
        stub.with(|s| s.project["model_version"].clone()),
        json!(want)
    );
    let tasks = stub.with(|s| s.tasks.clone());
    assert!(tasks
        .iter()
        .flat_map(|t| t["predictions"].as_array().unwrap())
        .all(|p| p["model_version"] == want.as_str()));
}

#[test]
fn rerun_after_a_half_done_push_imports_only_the_missing_tasks() {
    let (wd, _) = round();
    let stub = Stub::start("v1");
    // The second import request fails: the first chunk of 50 is in, the rest is not.
    stub.with(|s| s.imports_before_failure = Some(1));
    let o = run_with_key(&wd, Some(LEGACY), &push_args(&stub, &["--chunk", "50"]));
    assert_eq!(o.code, 2, "{o:#?}");
    let lines = o.stderr_lines();
    assert_eq!(lines.len(), 1, "{o:#?}");
    assert!(
        lines[0].contains("HTTP 500: Server Error (500)"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("/api/projects/3/import"), "{}", lines[0]);
    let half = stub.with(|s| lw_ids(&s.tasks));
    assert_eq!(half.len(), 50);
    assert!(
        stub.with(|s| s.views.is_empty()),
        "no view before the tasks are in"
    );

    stub.with(|s| {
        s.imports_before_failure = None;
        s.requests.clear();
    });
    let o = run_with_key(&wd, Some(LEGACY), &push_args(&stub, &["--chunk", "50"]));
    assert_eq!(o.code, 0, "{o:#?}");
    let all = stub.with(|s| lw_ids(&s.tasks));
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no task imported twice");
    let reqs = stub.with(|s| s.requests.clone());
    let resent: Vec<String> = sent(&reqs, "POST", "/api/projects/3/import")
        .iter()
        .flat_map(|r| lw_ids(r.body.as_array().unwrap()))
        .collect();
    assert_eq!(resent.len(), all.len() - 50);
    assert!(
        resent.iter().all(|id| !half.contains(id)),
        "only the missing ones"
    );
    assert!(o.stderr.contains("(50 already there)"), "{}", o.stderr);

    // A third run sends nothing and keeps one view.
    stub.with(|s| s.requests.clear());
    let o = run_with_key(&wd, Some(LEGACY), &push_args(&stub, &["--chunk", "50"]));
    assert_eq!(o.code, 0, "{o:#?}");
    let reqs = stub.with(|s| s.requests.clone());
    assert!(sent(&reqs, "POST", "/api/projects/3/import").is_empty());
    assert!(sent(&reqs, "POST", "/api/dm/views/").is_empty());
    assert_eq!(sent(&reqs, "PATCH", "/api/dm/views/").len(), 1);
    assert_eq!(
        stub.with(|s| (s.tasks.len(), s.views.len())),
        (all.len(), 1)
    );
}

/// A JWT personal access token (refresh token) expiring in an hour.
fn personal_access_token() -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let seg = |s: String| URL_SAFE_NO_PAD.encode(s.as_bytes());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        seg(r#"{"alg":"HS256","typ":"JWT"}"#.into()),
        seg(format!(
            r#"{{"token_type":"refresh","exp":{exp},"jti":"x","user_id":1}}"#
        ))
    )
}

#[test]
fn a_personal_access_token_is_exchanged_for_a_bearer_access_token() {
    let (wd, _) = round();
    let stub = Stub::start("v1");
    let pat = personal_access_token();
    stub.with(|s| s.refresh_token = pat.clone());
    let o = run_with_key(&wd, Some(&pat), &push_args(&stub, &[]));
    assert_eq!(o.code, 0, "{o:#?}");
    let reqs = stub.with(|s| s.requests.clone());
    assert_eq!(reqs[0].url, "/api/token/refresh/");
    assert_eq!(reqs[0].body, json!({ "refresh": pat }));
    assert_eq!(reqs[0].auth, None);
    let bearer = format!("Bearer {ACCESS}");
    assert!(reqs[1..]
        .iter()
        .all(|r| r.auth.as_deref() == Some(bearer.as_str())));

    // A token the server does not know: its message, exit 2, nothing imported.
    let stub = Stub::start("v1");
    stub.with(|s| s.refresh_token = "another".into());
    let o = run_with_key(&wd, Some(&pat), &push_args(&stub, &[]));
    assert_eq!(o.code, 2, "{o:#?}");
    assert_eq!(o.stderr_lines().len(), 1, "{o:#?}");
    assert!(
        o.stderr
            .contains("POST /api/token/refresh/: HTTP 401: Token is invalid or expired"),
        "{}",
        o.stderr
    );
    assert!(stub.with(|s| s.tasks.is_empty()));
}

/// Pull after annotators labeled the batch: the file is Label Studio's JSON export, and
/// `plan --labels` reads exactly those labels.
#[test]
fn pull_writes_the_json_export_that_labels_reads() {
    let (wd, s) = round();
    let stub = Stub::start("v1");
    assert_eq!(
        run_with_key(&wd, Some(LEGACY), &push_args(&stub, &[])).code,
        0
    );
    let truth: BTreeMap<String, String> = s
        .ids
        .iter()
        .cloned()
        .zip(s.truth.iter().map(|c| format!("c{c}")))
        .collect();
    // Before anyone labeled: an empty export, said so.
    let o = pull_to(&wd, &stub.url, Some(LEGACY), "3");
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(o.stderr.contains("nothing to read"), "{}", o.stderr);
    assert_eq!(read_json(&wd.path("labels.json")), json!([]));
    let (_, batch) = read_csv(&wd.path("r1/batch.csv"));
    let batch: BTreeSet<String> = batch.iter().map(|r| r[1].clone()).collect();
    stub.with(|st| {
        for t in st.tasks.iter_mut() {
            let id = t["data"]["lw_id"].as_str().unwrap().to_string();
            if batch.contains(&id) {
                t["annotations"] = json!([{"id": 1, "completed_by": 1, "was_cancelled": false,
                    "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                "value": {"choices": [truth[&id]]}}]}]);
            }
        }
    });
    let o = run_with_key(
        &wd,
        Some(LEGACY),
        &[
            "pull",
            "label-studio",
            "--url",
            &stub.url,
            "--project",
            "3",
            "--out",
            "labels.json",
        ],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(
        o.stderr
            .contains("wrote 20 annotated tasks (20 with data.lw_id) and 20 annotations"),
        "{}",
        o.stderr
    );
    let pool = wd.path("pool.parquet");
    ok(
        &wd,
        &[
            "plan",
            pool.to_str().unwrap(),
            "--labels",
            "labels.json",
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
    for id in &batch {
        assert_eq!(after[id].as_deref(), Some(truth[id].as_str()), "{id}");
    }
    let m = &read_json(&wd.path("r2/summary.json"))["label_merge"];
    assert_eq!(m["applied"], 20, "{m:#}");
    assert_eq!(m["format"], "label-studio-json", "{m:#}");
}

fn assert_one_line_exit_2(o: &Output, needle: &str) {
    assert_eq!(o.code, 2, "{o:#?}");
    let lines = o.stderr_lines();
    assert_eq!(lines.len(), 1, "{o:#?}");
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    assert!(lines[0].contains(needle), "{needle:?} not in {}", lines[0]);
}

fn pull_to(wd: &Workdir, url: &str, key: Option<&str>, project: &str) -> Output {
    run_with_key(
        wd,
        key,
        &[
            "pull",
            "label-studio",
            "--url",
            url,
            "--project",
            project,
            "--out",
            "labels.json",
        ],
    )
}

#[test]
fn server_errors_exit_2_with_the_servers_message_and_write_nothing() {
    let (wd, _) = round();
    let stub = Stub::start("v1");
    let out = wd.root().join("labels.json");
    // A wrong legacy token.
    let o = pull_to(&wd, &stub.url, Some("wrong"), "3");
    assert_one_line_exit_2(&o, "HTTP 401: Invalid token. (check LABEL_STUDIO_API_KEY)");
    assert!(!out.exists());
    let o = run_with_key(&wd, Some("wrong"), &push_args(&stub, &[]));
    assert_one_line_exit_2(&o, "HTTP 401: Invalid token.");
    // A folder that is not a run: named, before any request.
    let before = stub.with(|s| s.requests.len());
    let o = run_with_key(
        &wd,
        Some(LEGACY),
        &[
            "push",
            "label-studio",
            "nowhere",
            "--url",
            &stub.url,
            "--project",
            "3",
        ],
    );
    assert_one_line_exit_2(&o, "nowhere/items.parquet: no such file (run plan");
    assert_eq!(stub.with(|s| s.requests.len()), before);
    // No key at all.
    let o = pull_to(&wd, &stub.url, None, "3");
    assert_one_line_exit_2(&o, "LABEL_STUDIO_API_KEY is not set");
    // A project that is not there.
    let o = pull_to(&wd, &stub.url, Some(LEGACY), "99");
    assert_one_line_exit_2(
        &o,
        "GET /api/projects/99/: HTTP 404: Not found. (check --url and --project)",
    );
    // The server failing.
    stub.with(|s| {
        s.always = Some((
            500,
            "<html><head><title>Server Error (500)</title></head>\n<body>\n</body></html>".into(),
        ))
    });
    let o = pull_to(&wd, &stub.url, Some(LEGACY), "3");
    assert_one_line_exit_2(&o, "HTTP 500: Server Error (500)");
    assert!(!out.exists());
    let o = run_with_key(&wd, Some(LEGACY), &push_args(&stub, &[]));
    assert_one_line_exit_2(&o, "HTTP 500: Server Error (500)");
    assert!(stub.with(|s| s.tasks.is_empty()));
    // An earlier pull's file is kept whole when a later pull fails.
    std::fs::write(&out, "[]").unwrap();
    let o = pull_to(&wd, &stub.url, Some(LEGACY), "3");
    assert_eq!(o.code, 2);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "[]");
    std::fs::remove_file(&out).unwrap();
    // Nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let o = pull_to(&wd, &url, Some(LEGACY), "3");
    assert_one_line_exit_2(&o, &format!("Label Studio at {url}: GET /api/projects/3/"));
    assert!(o.stderr.to_lowercase().contains("refused"), "{}", o.stderr);
    assert!(!out.exists());
    assert_nothing_left(wd.root());
}

/// No temp file left beside the output after failed pulls.
fn assert_nothing_left(dir: &Path) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n == "pool.parquet" || n == "r1"),
        "{names:?}"
    );
}

#[test]
fn labels_and_controls_are_checked_against_the_project_before_anything_is_sent() {
    let (wd, _) = round();
    // A config whose choices lack the pool's classes.
    let stub = Stub::start("v1");
    stub.with(|s| {
        s.project["parsed_label_config"]["label"]["labels"] = json!(["c0", "c1"]);
    });
    let o = run_with_key(&wd, Some(LEGACY), &push_args(&stub, &[]));
    assert_one_line_exit_2(
        &o,
        "is not a choice of control 'label' in project 3 (its config lists 2 choices)",
    );
    assert!(o.stderr.contains("r1/items.parquet"), "{}", o.stderr);
    // Two Choices controls and no --from-name.
    stub.with(|s| s.project["parsed_label_config"] = parsed_config(&["intent", "topic"]));
    let o = run_with_key(&wd, Some(LEGACY), &push_args(&stub, &[]));
    assert_one_line_exit_2(
        &o,
        "2 Choices controls (intent, topic): name the one to pre-annotate with --from-name",
    );
    let o = run_with_key(
        &wd,
        Some(LEGACY),
        &push_args(&stub, &["--from-name", "label"]),
    );
    assert_one_line_exit_2(
        &o,
        "--from-name label: project 3's labeling config has no <Choices name=\"label\">",
    );
    let reqs = stub.with(|s| s.requests.clone());
    assert!(
        reqs.iter().all(|r| r.method == "GET"),
        "nothing changed on the server"
    );
    // Named: the predictions use it.
    let o = run_with_key(
        &wd,
        Some(LEGACY),
        &push_args(&stub, &["--from-name", "topic"]),
    );
    assert_eq!(o.code, 0, "{o:#?}");
    let tasks = stub.with(|s| s.tasks.clone());
    assert!(tasks
        .iter()
        .all(|t| t["predictions"][0]["result"][0]["from_name"] == "topic"));
}
