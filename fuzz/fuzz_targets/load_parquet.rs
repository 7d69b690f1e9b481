//! Arbitrary bytes as the Parquet input file: `dataset::load` may return any error, never panic.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use labelwise::data::dataset::{load, LoadOptions};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

/// labelwise turns a panic inside the Parquet/Arrow decoders into an input error
/// (`dataset::guard_decoder`); libfuzzer-sys's hook would abort on that caught panic before the
/// guard sees it. A silent hook keeps the guard in charge, while a panic that escapes `load` still
/// reaches libfuzzer-sys's `catch_unwind` and is reported as a crash.
fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

fuzz_target!(|data: &[u8]| {
    quiet_caught_panics();
    let path = dir().path().join("input.parquet");
    let mut f = std::fs::File::create(&path).expect("create input");
    f.write_all(data).expect("write input");
    drop(f);
    let opts = LoadOptions::default();
    let _ = load(&[path], &opts);
});
