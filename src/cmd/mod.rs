//! One module per subcommand, each wiring library stages together (in the manner of xsv).
//! Only this layer and `output` touch the filesystem.

pub mod inspect;

use std::path::PathBuf;

use clap::Args;

use crate::dataset::LoadOptions;

/// Input flags shared by every command that reads a pool.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Parquet files or folders of Parquet files (read recursively, all with the same schema).
    #[arg(required = true, value_name = "DATA")]
    pub data: Vec<PathBuf>,
    /// Column holding the item id (string or integer, unique across all files).
    #[arg(long, default_value = "id", value_name = "NAME")]
    pub id_col: String,
    /// Column holding the embedding (list of float16/32/64, one length for all rows).
    #[arg(long, default_value = "embedding", value_name = "NAME")]
    pub embedding_col: String,
    /// Column holding labels (null = unlabeled) [default: `label` when present].
    #[arg(long, value_name = "NAME")]
    pub label_col: Option<String>,
    /// Annotators' labels (CSV or Parquet with columns id,label) applied on top of the label column.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
}

impl InputArgs {
    /// Loader options for these flags; `carry_extra` keeps the other columns for exports.
    pub fn load_options(&self, carry_extra: bool) -> LoadOptions {
        LoadOptions {
            id_col: self.id_col.clone(),
            embedding_col: self.embedding_col.clone(),
            label_col: self.label_col.clone(),
            labels_file: self.labels.clone(),
            carry_extra,
        }
    }
}
