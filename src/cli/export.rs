//! `labelwise export DIR --format …`: turns a run's items.parquet into files labeling tools
//! import (the formats are described in `output::export`).

use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, Result};
use crate::output::export::{export, ExportParams, Format};
use crate::progress::Progress;

/// Flags of `export`.
#[derive(Debug, Args)]
pub struct Cmd {
    /// A run's output folder (holding items.parquet from `plan`, `autolabel` or `select`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Target format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Output file [default: DIR/tasks.json, manifest.jsonl, prodigy.jsonl, items.jsonl or items.csv].
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Routes to export, comma-separated (labeled, auto, duplicate, human).
    #[arg(long, value_delimiter = ',', default_value = "human,auto,duplicate")]
    pub routes: Vec<String>,
    /// Label Studio: `from_name` of the Choices control in your labeling config.
    #[arg(long, default_value = "label", value_name = "NAME")]
    pub from_name: String,
    /// Label Studio: `to_name` (the object the choices label) in your labeling config.
    #[arg(long, default_value = "text", value_name = "NAME")]
    pub to_name: String,
    /// Label Studio `model_version` tag [default: labelwise-VERSION].
    #[arg(long, value_name = "TAG")]
    pub model_version: Option<String>,
    /// SageMaker: the label attribute name.
    #[arg(long, default_value = "label", value_name = "NAME")]
    pub attribute_name: String,
    /// Column used as the item's text/source (SageMaker `source`, Prodigy `text`) [default: text, else id].
    #[arg(long, value_name = "COL")]
    pub text_col: Option<String>,
}

impl Cmd {
    /// Library parameters for these flags.
    pub fn params(&self) -> Result<ExportParams> {
        for r in &self.routes {
            if !["labeled", "auto", "duplicate", "human"].contains(&r.as_str()) {
                return Err(Error::Usage(format!(
                    "--routes: unknown route '{r}' (use labeled, auto, duplicate, human)"
                )));
            }
        }
        Ok(ExportParams {
            format: self.format,
            routes: self.routes.clone(),
            from_name: self.from_name.clone(),
            to_name: self.to_name.clone(),
            model_version: self.model_version.clone(),
            attribute_name: self.attribute_name.clone(),
            text_col: self.text_col.clone(),
        })
    }
}

/// Runs `export`.
pub fn run(args: &Cmd, _progress: Progress) -> Result<()> {
    let params = args.params()?;
    let (path, n) = export(&args.dir, args.output.as_deref(), &params)?;
    eprintln!("wrote {n} items to {}", path.display());
    Ok(())
}
