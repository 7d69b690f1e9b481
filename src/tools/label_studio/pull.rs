//! `pull label-studio`: a project's annotations as Label Studio's own JSON export, the format
//! `--labels` reads (tasks with `data.lw_id` and `annotations[].result[]`).
//!
//! The export is `GET /api/projects/{id}/export?exportType=JSON`, Label Studio's synchronous
//! export of the annotated tasks, saved as it comes once it parses as a JSON array of tasks; the
//! file is written atomically, so a failed pull leaves the previous file (or none).

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use super::{Client, Method};
use crate::error::{Error, Result};
use crate::store::atomic::write_atomic;

/// What a pull wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Tasks in the export (the annotated ones).
    pub tasks: usize,
    /// Of those, tasks carrying `data.lw_id` (ours; others are ignored by `--labels`).
    pub ours: usize,
    /// Annotations, cancelled (skipped) ones included.
    pub annotations: usize,
    /// Cancelled (skipped) annotations, which `--labels` does not count as labels.
    pub cancelled: usize,
}

/// Fetches the project's JSON export and writes it to `out`.
pub fn pull(client: &Client, project: u64, out: &Path) -> Result<PullReport> {
    // The project first: a wrong id gets Label Studio's "Not found" for the project, not for
    // its export.
    client.call(Method::Get, &format!("/api/projects/{project}/"), None)?;
    let path = format!("/api/projects/{project}/export?exportType=JSON&download_all_tasks=false");
    let bytes = client.get_bytes(&path)?;
    let tasks: Vec<Value> = serde_json::from_slice(&bytes).map_err(|e| {
        client.bad_reply(
            &format!("GET {path}"),
            &format!("not a JSON array of tasks: {e}"),
        )
    })?;
    let mut report = PullReport {
        tasks: tasks.len(),
        ..PullReport::default()
    };
    for t in &tasks {
        if !t.is_object() {
            return Err(client.bad_reply(&format!("GET {path}"), "a task is not an object"));
        }
        report.ours += usize::from(t["data"].get("lw_id").is_some());
        for a in t["annotations"].as_array().into_iter().flatten() {
            report.annotations += 1;
            report.cancelled += usize::from(a["was_cancelled"] == true);
        }
    }
    write_atomic(out, |w| {
        w.write_all(&bytes).map_err(|e| Error::io(out, e))?;
        Ok(())
    })?;
    Ok(report)
}
