//! The integration tests, as one binary (as ripgrep's): the library and its dependencies are
//! linked once instead of once per file. Each module is what was a file under `tests/`; run
//! one with `cargo test --test it MODULE::`.

mod common;

mod certificate;
mod commands;
mod errors;
mod export;
mod fuzz_regressions;
mod history;
mod incremental;
mod input;
mod label_formats;
mod label_studio;
mod pool_rows;
mod reliability;
mod report;
mod rules;
mod summary;
