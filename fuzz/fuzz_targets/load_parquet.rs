//! Arbitrary bytes as the Parquet input file: `dataset::load` may return any error, never panic.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use labelwise::dataset::{load, LoadOptions};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

fuzz_target!(|data: &[u8]| {
    let path = dir().path().join("input.parquet");
    let mut f = std::fs::File::create(&path).expect("create input");
    f.write_all(data).expect("write input");
    drop(f);
    let opts = LoadOptions::default();
    let _ = load(&[path], &opts);
});
