//! `push label-studio`: a round's tasks into a Label Studio project, resumable.
//!
//! The tasks are exactly `export --format label-studio`'s ([`label_studio_tasks`]): `data` with
//! `lw_id`, `lw_route`, `lw_priority` (and `lw_audit` on audit picks), the model's label as a
//! prediction with its `score`, and the human label of `labeled` items as an annotation. Push
//! adds what only the server can tell or do:
//!
//! - the Choices control and the object it labels are read from the project's labeling config
//!   (or checked against it when given), and every label sent must be one of its choices;
//! - predictions carry the project's `model_version` (Label Studio shows, and sorts by, only the
//!   predictions of that version), or labelwise's own tag, which then becomes the project's;
//! - tasks whose `data.lw_id` the project already holds are not sent again, so a push that
//!   stopped halfway (network, server, Ctrl-C) is completed by running it again; the rest go in
//!   chunks, each one import request;
//! - a Data Manager view ordered by `data.lw_priority` (numerically: the view declares the
//!   column a Number), so "Label Tasks As Displayed" hands out the batch in labelwise's order.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{Client, Method};
use crate::error::{Error, Result};
use crate::output::export::{label_studio_tasks, ExportParams, Format};
use crate::progress::Progress;

/// The Data Manager view push creates (and finds again on the next push).
pub const VIEW_TITLE: &str = "labelwise: batch by priority";

/// The ordering column of that view.
pub const PRIORITY_COLUMN: &str = "tasks:data.lw_priority";

/// Tasks per import request by default.
pub const DEFAULT_CHUNK: usize = 500;

/// What to push and where.
#[derive(Debug, Clone, PartialEq)]
pub struct PushParams {
    /// Project id.
    pub project: u64,
    /// Routes exported (as `export --routes`).
    pub routes: Vec<String>,
    /// `from_name` of the Choices control; `None`: the project's only Choices control.
    pub from_name: Option<String>,
    /// `to_name` (the object labeled); `None`: the control's only one.
    pub to_name: Option<String>,
    /// `model_version` of the predictions; `None`: the project's, else labelwise-VERSION.
    pub model_version: Option<String>,
    /// Tasks per import request.
    pub chunk: usize,
}

/// What a push did, for the one-line report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushReport {
    /// Tasks of the round (after `routes`).
    pub tasks: usize,
    /// Of those, already in the project (matched by `data.lw_id`) and not sent again.
    pub already: usize,
    /// Of those already there, how many hold different `data` (an older round's priority).
    pub stale: usize,
    /// Tasks imported now.
    pub imported: usize,
    /// Predictions imported now (Label Studio's count).
    pub predictions: u64,
    /// Annotations imported now (labels of `labeled` items).
    pub annotations: u64,
    /// Audit tasks among the round's tasks.
    pub audits: usize,
    /// The predictions' `model_version`, now also the project's.
    pub model_version: String,
    /// The Choices control and object the predictions name.
    pub from_name: String,
    /// See `from_name`.
    pub to_name: String,
    /// The Data Manager view's id, and whether this push created it.
    pub view: (u64, bool),
}

/// The Choices control a project's labeling config offers, as `parsed_label_config` lists it.
struct Control {
    name: String,
    to_names: Vec<String>,
    /// The data keys the objects read (`<Text value="$text">` → `text`).
    data_keys: Vec<String>,
    labels: Vec<String>,
}

fn choices_controls(project: &Value) -> Vec<Control> {
    let Some(parsed) = project
        .get("parsed_label_config")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    parsed
        .iter()
        .filter(|(_, c)| c.get("type").and_then(Value::as_str) == Some("Choices"))
        .map(|(name, c)| Control {
            name: name.clone(),
            to_names: strs(c.get("to_name")),
            data_keys: c
                .get("inputs")
                .and_then(Value::as_array)
                .map(|ins| {
                    ins.iter()
                        .filter_map(|i| i.get("value").and_then(Value::as_str))
                        .map(|v| v.trim_start_matches('$').to_string())
                        .collect()
                })
                .unwrap_or_default(),
            labels: strs(c.get("labels")),
        })
        .collect()
}

/// Picks the control and object from the project's config, checking the flags against it.
fn resolve_control(params: &PushParams, project: &Value) -> Result<Control> {
    let id = params.project;
    let mut controls = choices_controls(project);
    let names: Vec<String> = controls.iter().map(|c| c.name.clone()).collect();
    let pick = match &params.from_name {
        Some(n) => controls.iter().position(|c| &c.name == n).ok_or_else(|| {
            Error::Usage(format!(
                "--from-name {n}: project {id}'s labeling config has no <Choices name=\"{n}\"> \
                 (its Choices controls: {})",
                list_or_none(&names)
            ))
        })?,
        None if controls.len() == 1 => 0,
        None => {
            return Err(Error::Usage(format!(
                "project {id}'s labeling config has {} Choices controls ({}): name the one to \
                 pre-annotate with --from-name",
                controls.len(),
                list_or_none(&names)
            )))
        }
    };
    let mut control = controls.swap_remove(pick);
    let to_name = match &params.to_name {
        Some(t) if control.to_names.contains(t) => t.clone(),
        Some(t) => {
            return Err(Error::Usage(format!(
                "--to-name {t}: control '{}' of project {id} labels {}",
                control.name,
                list_or_none(&control.to_names)
            )))
        }
        None if control.to_names.len() == 1 => control.to_names[0].clone(),
        None => {
            return Err(Error::Usage(format!(
                "control '{}' of project {id} labels {}: name one with --to-name",
                control.name,
                list_or_none(&control.to_names)
            )))
        }
    };
    control.to_names = vec![to_name];
    Ok(control)
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Every label a task sends (prediction and annotation choices) must be one of the control's
/// choices, and the data key the object shows must be there: checked here, because Label Studio
/// rejects the first only with its prediction validation on, and never the second.
fn check_tasks(tasks: &[Value], control: &Control, project: u64, dir: &Path) -> Result<()> {
    let items = dir.join("items.parquet");
    for t in tasks {
        let id = t["data"]["lw_id"].to_string();
        for key in &control.data_keys {
            if t["data"].get(key).is_none() {
                return Err(Error::input(
                    &items,
                    Some(key),
                    None,
                    format!(
                        "project {project}'s labeling config shows data.{key}, which the items do \
                         not carry (item {id}): pool a column named '{key}'"
                    ),
                ));
            }
        }
        if control.labels.is_empty() {
            continue; // choices from data (`<Choices value="$options">`): nothing to check
        }
        for kind in ["predictions", "annotations"] {
            for r in t[kind].as_array().into_iter().flatten() {
                for res in r["result"].as_array().into_iter().flatten() {
                    for c in res["value"]["choices"].as_array().into_iter().flatten() {
                        let c = c.as_str().unwrap_or_default();
                        if !control.labels.iter().any(|l| l == c) {
                            return Err(Error::input(
                                &items,
                                Some("label"),
                                None,
                                format!(
                                    "item {id}: label '{c}' is not a choice of control '{}' in \
                                     project {project} (its config lists {} choices)",
                                    control.name,
                                    control.labels.len()
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The project's tasks that carry `data.lw_id`, by that id: (task id, data).
pub fn existing_tasks(client: &Client, project: u64) -> Result<HashMap<String, (u64, Value)>> {
    let mut found = HashMap::new();
    let mut seen = 0u64;
    for page in 1.. {
        let path = format!("/api/tasks/?project={project}&page={page}&page_size=1000");
        let reply = client.call(Method::Get, &path, None)?;
        let Some(tasks) = reply.get("tasks").and_then(Value::as_array) else {
            return Err(client.bad_reply(&format!("GET {path}"), "no `tasks` list"));
        };
        let total = reply.get("total").and_then(Value::as_u64).unwrap_or(0);
        for t in tasks {
            seen += 1;
            let Some(lw_id) = t["data"].get("lw_id").filter(|v| !v.is_null()) else {
                continue;
            };
            let key = lw_id
                .as_str()
                .map_or_else(|| lw_id.to_string(), str::to_string);
            let task_id = t["id"].as_u64().unwrap_or(0);
            found.insert(key, (task_id, t["data"].clone()));
        }
        if tasks.is_empty() || seen >= total {
            break;
        }
    }
    Ok(found)
}

/// Sends `tasks` in chunks; returns (tasks, predictions, annotations) Label Studio reports.
fn import(
    client: &Client,
    project: u64,
    tasks: &[Value],
    chunk: usize,
    progress: Progress,
) -> Result<(usize, u64, u64)> {
    let path = format!("/api/projects/{project}/import");
    let bar = progress.bar(tasks.len() as u64, "push");
    let mut counts = (0, 0, 0);
    for part in tasks.chunks(chunk.max(1)) {
        let reply = client.call(Method::Post, &path, Some(&Value::Array(part.to_vec())))?;
        let count = |k: &str| reply.get(k).and_then(Value::as_u64);
        match count("task_count") {
            Some(n) if n as usize == part.len() => {}
            Some(n) => {
                return Err(client.bad_reply(
                    &format!("POST {path}"),
                    &format!("{n} tasks imported of {} sent", part.len()),
                ))
            }
            // Enterprise imports in the background and answers with the import's id.
            None if reply.get("import").is_some() => {}
            None => return Err(client.bad_reply(&format!("POST {path}"), "no `task_count`")),
        }
        counts.0 += part.len();
        counts.1 += count("prediction_count").unwrap_or(0);
        counts.2 += count("annotation_count").unwrap_or(0);
        bar.inc(part.len() as u64);
    }
    bar.finish_and_clear();
    Ok(counts)
}

/// The view's `data`: ordered by priority as a number (without `columnsDisplayType` Label
/// Studio orders a data field as text: 10 before 2), nulls (no priority) last.
fn view_data() -> Value {
    json!({
        "title": VIEW_TITLE,
        "ordering": [PRIORITY_COLUMN],
        "columnsDisplayType": { PRIORITY_COLUMN: "Number" },
    })
}

/// Creates the priority view, or brings the one an earlier push created back to our ordering.
fn ensure_view(client: &Client, project: u64) -> Result<(u64, bool)> {
    let list = format!("/api/dm/views/?project={project}");
    let views = client.call(Method::Get, &list, None)?;
    let Some(views) = views.as_array() else {
        return Err(client.bad_reply(&format!("GET {list}"), "not a list of views"));
    };
    let ours = views.iter().find(|v| {
        v["data"]["title"].as_str() == Some(VIEW_TITLE)
            && v["project"].as_u64().is_none_or(|p| p == project)
    });
    let body = json!({ "project": project, "data": view_data() });
    if let Some(id) = ours.and_then(|v| v["id"].as_u64()) {
        client.call(Method::Patch, &format!("/api/dm/views/{id}/"), Some(&body))?;
        return Ok((id, false));
    }
    let created = client.call(Method::Post, "/api/dm/views/", Some(&body))?;
    let id = created["id"]
        .as_u64()
        .ok_or_else(|| client.bad_reply("POST /api/dm/views/", "no view `id`"))?;
    Ok((id, true))
}

/// Pushes the round in `dir` (its items.parquet) into the project.
pub fn push(
    client: &Client,
    dir: &Path,
    params: &PushParams,
    progress: Progress,
) -> Result<PushReport> {
    let id = params.project;
    let project = client.call(Method::Get, &format!("/api/projects/{id}/"), None)?;
    let control = resolve_control(params, &project)?;
    let project_version = project["model_version"].as_str().unwrap_or_default();
    let model_version = params
        .model_version
        .clone()
        .filter(|v| !v.is_empty())
        .or_else(|| (!project_version.is_empty()).then(|| project_version.to_string()))
        .unwrap_or_else(|| format!("labelwise-{}", env!("CARGO_PKG_VERSION")));
    let export = ExportParams {
        format: Format::LabelStudio,
        routes: params.routes.clone(),
        from_name: control.name.clone(),
        to_name: control.to_names[0].clone(),
        model_version: Some(model_version.clone()),
        attribute_name: "label".into(),
        text_col: None,
    };
    let tasks = label_studio_tasks(dir, &export)?;
    check_tasks(&tasks, &control, id, dir)?;
    let predicts = tasks.iter().any(|t| t.get("predictions").is_some());
    let existing = existing_tasks(client, id)?;
    let mut report = PushReport {
        tasks: tasks.len(),
        audits: tasks
            .iter()
            .filter(|t| t["data"]["lw_audit"] == true)
            .count(),
        model_version,
        from_name: control.name.clone(),
        to_name: control.to_names[0].clone(),
        ..PushReport::default()
    };
    let mut missing = Vec::new();
    for t in tasks {
        let key = match &t["data"]["lw_id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match existing.get(&key) {
            Some((_, data)) => {
                report.already += 1;
                report.stale += usize::from(!same_data(data, &t["data"]));
            }
            None => missing.push(t),
        }
    }
    (report.imported, report.predictions, report.annotations) =
        import(client, id, &missing, params.chunk, progress)?;
    // After the import: Label Studio accepts a project model_version only once predictions of
    // that version exist (HTTP 400 "Model version doesn't exist" before).
    if predicts && project_version != report.model_version {
        let body = json!({ "model_version": report.model_version });
        client.call(Method::Patch, &format!("/api/projects/{id}/"), Some(&body))?;
    }
    report.view = ensure_view(client, id)?;
    Ok(report)
}

/// Whether a stored task's data equals ours, ignoring JSON number spelling (1 vs 1.0).
fn same_data(stored: &Value, ours: &Value) -> bool {
    let norm = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .unwrap_or(&Map::new())
            .iter()
            .map(|(k, v)| {
                let s = match v.as_f64() {
                    Some(f) => format!("{f}"),
                    None => v.to_string(),
                };
                (k.clone(), s)
            })
            .collect()
    };
    norm(stored) == norm(ours)
}
