//! One error type for the library; the binary turns it into one line and an exit code.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, split by who has to act: the user (exit 2) or us (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input data: names the file, column and first offending row so it can be fixed.
    #[error("{}{}{}: {message}", file.display(), column.as_deref().map(|c| format!(": column '{c}'")).unwrap_or_default(), row.map(|r| format!(", row {r}")).unwrap_or_default())]
    Input {
        file: PathBuf,
        column: Option<String>,
        /// 0-based row index within `file`.
        row: Option<u64>,
        message: String,
    },
    /// Bad flags or a request that cannot be satisfied (e.g. memory limit): exit 2.
    #[error("{0}")]
    Usage(String),
    /// An I/O failure on an output or cache path.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A bug or an unexpected library failure: exit 1.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Input fault in `file` at `column`/`row`.
    pub fn input(
        file: impl Into<PathBuf>,
        column: Option<&str>,
        row: Option<u64>,
        message: impl Into<String>,
    ) -> Error {
        Error::Input {
            file: file.into(),
            column: column.map(str::to_string),
            row,
            message: message.into(),
        }
    }

    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a library error that means a bug on our side (a table we built does not fit its
    /// schema, a writer failed on valid data) as `Internal`, with `context` naming what we were
    /// doing: `.map_err(Error::internal("pairs table"))?` reports `internal error: pairs table: …`.
    /// Errors the user's input causes are reported with [`Error::input`] instead.
    pub fn internal<E: std::fmt::Display>(context: &str) -> impl Fn(E) -> Error + Copy + '_ {
        move |e| Error::Internal(format!("{context}: {e}"))
    }

    /// The process exit code SPEC assigns: 2 for the user's input or flags, 1 for the rest.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } | Error::Usage(_) => 2,
            Error::Io { .. } | Error::Internal(_) => 1,
        }
    }
}

/// Library errors that are ours when they reach `?`: the user's input is checked (and reported
/// with [`Error::input`]) before these libraries see it, so what is left is an internal error.
macro_rules! internal_from {
    ($($t:ty),+ $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Internal(e.to_string())
            }
        }
    )+};
}

internal_from!(
    arrow_schema::ArrowError,
    parquet::errors::ParquetError,
    csv::Error,
    serde_json::Error,
    ndarray::ShapeError,
    linfa_logistic::error::Error,
);
