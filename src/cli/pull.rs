//! `labelwise pull label-studio --url URL --project ID --out FILE`: a project's annotations as
//! the tool's own export, the file `--labels` reads (see `tools::label_studio::pull`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::LabelStudioArgs;
use crate::error::Result;
use crate::progress::Progress;
use crate::tools::label_studio::pull::pull;

/// Flags of `pull`.
#[derive(Debug, Args)]
pub struct Cmd {
    /// The labeling tool.
    #[command(subcommand)]
    pub tool: Tool,
}

/// The tools `pull` fetches from.
#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Save a Label Studio project's annotated tasks (its JSON export) for --labels.
    LabelStudio(LabelStudio),
}

/// Flags of `pull label-studio`.
#[derive(Debug, Args)]
pub struct LabelStudio {
    /// Server and project.
    #[command(flatten)]
    pub server: LabelStudioArgs,
    /// The file to write (Label Studio JSON export; written atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Runs `pull`.
pub fn run(args: &Cmd, progress: Progress) -> Result<()> {
    let Tool::LabelStudio(ls) = &args.tool;
    let client = ls.server.connect()?;
    let bar = progress.spinner("pull");
    let r = pull(&client, ls.server.project, &ls.out)?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {} annotated tasks ({} with data.lw_id) and {} annotations ({} cancelled) from project {} to {}",
        r.tasks,
        r.ours,
        r.annotations,
        r.cancelled,
        ls.server.project,
        ls.out.display()
    );
    if r.tasks == 0 {
        eprintln!("no task of this project is annotated yet: --labels has nothing to read in it");
    }
    Ok(())
}
