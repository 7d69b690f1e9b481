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
        /// The input file at fault.
        file: PathBuf,
        /// The column at fault, when the problem is in one column.
        column: Option<String>,
        /// 0-based row index within `file`.
        row: Option<u64>,
        /// What is wrong, in words the user can act on.
        message: String,
    },
    /// Bad flags or parameters (library messages name the parameter, the CLI the flag), or a
    /// request the input cannot satisfy (e.g. memory limit): exit 2.
    #[error("{0}")]
    Usage(String),
    /// An I/O failure on an output or cache path.
    #[error("{path}: {source}")]
    Io {
        /// The output or cache path that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A bug: arrays of ours that disagree in shape, a library failing on data we built, a panic
    /// in our own code: exit 1.
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

/// Who a caught panic belongs to, from the source file it started in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicOrigin {
    /// A dependency or the standard library, e.g. a Parquet/Arrow decoder that panicked on bad
    /// bytes (fuzzing found several): the input is at fault.
    Dependency,
    /// labelwise's own code: a bug, whatever the input.
    Labelwise,
}

/// Classifies a panic location's file. Cargo compiles this crate with paths relative to its
/// root (`src/data/dataset.rs`) and dependencies with absolute paths (under the cargo registry,
/// git checkouts or a vendor directory; the standard library as `/rustc/<hash>/library/…`).
pub fn panic_origin(file: &str) -> PanicOrigin {
    let path = std::path::Path::new(file);
    if path.is_relative() || path.starts_with(env!("CARGO_MANIFEST_DIR")) {
        PanicOrigin::Labelwise
    } else {
        PanicOrigin::Dependency
    }
}

/// A panic caught by [`catch_panic`].
#[derive(Debug, Clone)]
pub struct CaughtPanic {
    /// The panic message (`"unknown panic"` when the payload is not a string).
    pub message: String,
    /// `file:line` where it started, when it started on the calling thread.
    pub location: Option<String>,
    /// Who is at fault; a panic with no recorded location (e.g. re-raised from another thread)
    /// counts as ours.
    pub origin: PanicOrigin,
}

thread_local! {
    /// The location of the last panic on this thread, recorded by the hook `catch_panic` adds.
    static LAST_PANIC: std::cell::RefCell<Option<(String, u32)>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f`, catching a panic and telling where it started. The first call chains a panic hook
/// that records each panic's location on its thread before calling the hook set before it (the
/// binary's silent hook, or Rust's report).
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, CaughtPanic> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| (l.file().to_string(), l.line()));
            // `try_with`: a panic while the thread's locals are being torn down records nothing.
            let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = at);
            previous(info)
        }));
    });
    LAST_PANIC.with(|p| *p.borrow_mut() = None);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = LAST_PANIC.with(|p| p.borrow_mut().take());
        CaughtPanic {
            message,
            origin: at
                .as_ref()
                .map_or(PanicOrigin::Labelwise, |(file, _)| panic_origin(file)),
            location: at.map(|(file, line)| format!("{file}:{line}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_origin_tells_dependencies_from_our_code() {
        for ours in [
            "src/data/dataset.rs",
            "src/round/select.rs",
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/index/graph.rs"),
        ] {
            assert_eq!(panic_origin(ours), PanicOrigin::Labelwise, "{ours}");
        }
        for theirs in [
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/parquet-60.1.0/src/arrow/array_reader/byte_array.rs",
            "/home/u/.cargo/registry/src/index.crates.io-6f17d22bba15001f/arrow-buffer-60.1.0/src/util/bit_chunk_iterator.rs",
            "/home/u/.cargo/git/checkouts/arrow-rs-1234/abcd/parquet/src/encodings/rle.rs",
            "/rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/alloc/src/raw_vec.rs",
        ] {
            assert_eq!(panic_origin(theirs), PanicOrigin::Dependency, "{theirs}");
        }
    }

    #[test]
    fn catch_panic_records_where_a_panic_started() {
        let caught = catch_panic(|| -> u32 { panic!("ours: {}", 7) }).unwrap_err();
        assert_eq!(caught.message, "ours: 7");
        assert_eq!(caught.origin, PanicOrigin::Labelwise);
        assert!(
            caught
                .location
                .as_deref()
                .unwrap()
                .starts_with("src/error.rs:"),
            "{caught:?}"
        );
        // A panic inside the standard library's own code (not `#[track_caller]`) is a dependency's.
        let caught = catch_panic(|| {
            let v: Vec<u8> = Vec::with_capacity(usize::MAX);
            v.len()
        })
        .unwrap_err();
        assert_eq!(caught.origin, PanicOrigin::Dependency, "{caught:?}");
        assert_eq!(catch_panic(|| 3).unwrap(), 3);
    }
}
