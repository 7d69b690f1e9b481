//! `labelwise push label-studio ROUNDDIR --url URL --project ID`: a round's tasks into a
//! labeling tool's project (what is sent and why is in `tools::label_studio::push`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::{flag_at_least_1, LabelStudioArgs};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::tools::label_studio::push::{push, PushParams, DEFAULT_CHUNK, PRIORITY_COLUMN};

/// Flags of `push`.
#[derive(Debug, Args)]
pub struct Cmd {
    /// The labeling tool.
    #[command(subcommand)]
    pub tool: Tool,
}

/// The tools `push` sends to.
#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Import a round's tasks (predictions with scores, audits pre-annotated) into a Label Studio project, skipping those already there, and add a view ordered by priority.
    LabelStudio(LabelStudio),
}

/// Flags of `push label-studio`.
#[derive(Debug, Args)]
pub struct LabelStudio {
    /// A run's output folder (holding items.parquet from `plan`, `autolabel` or `select`).
    #[arg(value_name = "ROUNDDIR")]
    pub dir: PathBuf,
    /// Server and project.
    #[command(flatten)]
    pub server: LabelStudioArgs,
    /// Routes to send, comma-separated (labeled, auto, duplicate, human); audit picks always go.
    #[arg(long, value_delimiter = ',', default_value = "human,auto,duplicate")]
    pub routes: Vec<String>,
    /// `name` of the Choices control to pre-annotate [default: the project's only one].
    #[arg(long, value_name = "NAME")]
    pub from_name: Option<String>,
    /// `toName` of that control (the object labeled) [default: its only one].
    #[arg(long, value_name = "NAME")]
    pub to_name: Option<String>,
    /// The predictions' `model_version`, made the project's [default: the project's, else labelwise-VERSION].
    #[arg(long, value_name = "TAG")]
    pub model_version: Option<String>,
    /// Tasks per import request.
    #[arg(long, default_value_t = DEFAULT_CHUNK, value_name = "N")]
    pub chunk: usize,
}

impl LabelStudio {
    /// Library parameters for these flags.
    pub fn params(&self) -> Result<PushParams> {
        flag_at_least_1("--chunk", self.chunk)?;
        for r in &self.routes {
            if !["labeled", "auto", "duplicate", "human"].contains(&r.as_str()) {
                return Err(Error::Usage(format!(
                    "--routes: unknown route '{r}' (use labeled, auto, duplicate, human)"
                )));
            }
        }
        Ok(PushParams {
            project: self.server.project,
            routes: self.routes.clone(),
            from_name: self.from_name.clone(),
            to_name: self.to_name.clone(),
            model_version: self.model_version.clone(),
            chunk: self.chunk,
        })
    }
}

/// Runs `push`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let Tool::LabelStudio(ls) = &args.tool;
    let params = ls.params()?;
    // Before any request: a wrong folder is the user's to fix, whatever the server says.
    let items = ls.dir.join("items.parquet");
    if !items.is_file() {
        return Err(Error::input(
            &items,
            None,
            None,
            "no such file (run plan, autolabel or select first)",
        ));
    }
    let client = ls.server.connect()?;
    let r = push(&client, &ls.dir, &params, progress)?;
    eprintln!(
        "pushed {} of {} tasks to project {} at {} ({} already there{}); {} predictions \
         (model_version {}, control {}→{}), {} annotations, {} audit tasks",
        r.imported,
        r.tasks,
        params.project,
        client.url(),
        r.already,
        if r.stale > 0 {
            format!(
                ", {} of them with an older round's data, left as they were",
                r.stale
            )
        } else {
            String::new()
        },
        r.predictions,
        r.model_version,
        r.from_name,
        r.to_name,
        r.annotations,
        r.audits,
    );
    eprintln!(
        "view '{}' (id {}, {}) orders the tasks by {PRIORITY_COLUMN}: open it and use \"Label Tasks As Displayed\"",
        crate::tools::label_studio::push::VIEW_TITLE,
        r.view.0,
        if r.view.1 { "created" } else { "updated" },
    );
    Ok(())
}
