//! Inputs found by the fuzzers (fuzz/), each kept as a test: labelwise must answer with one
//! `error:` line and exit code 2, never a panic.

use crate::common::{emb, ids, unit_vectors, Workdir};

/// Runs `inspect` on a valid pool with `bytes` as its `--labels` file and returns the one
/// stderr line, after asserting exit code 2 and that it names the labels file.
fn labels_file_error(bytes: &[u8]) -> String {
    let wd = Workdir::new();
    let data = wd.parquet(
        "pool.parquet",
        vec![("id", ids("x", 6)), ("embedding", emb(&unit_vectors(6, 4)))],
    );
    let labels = wd.file("labels.parquet", bytes);
    let out = wd.run([
        "inspect",
        data.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{out:#?}");
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{out:#?}");
    assert!(lines[0].contains("labels.parquet"), "{}", lines[0]);
    lines[0].to_string()
}

/// fuzz target `labels_csv`, crash-62b4a49d: a `--labels` file starting with `PAR1` whose
/// definition levels overrun their buffer; arrow-buffer 60.1 panicked inside the decoder
/// ("offset + len out of bounds").
#[test]
fn corrupt_parquet_labels_file_is_an_input_error() {
    let line = labels_file_error(include_bytes!("data/fuzz-labels-crash-62b4a49d.bin"));
    assert!(line.contains("corrupt Parquet data"), "{line}");
}

/// fuzz target `labels_csv`, crash-e83933d9: another `PAR1` labels file whose definition levels
/// overrun their buffer (arrow-buffer 60.1, bit_chunk_iterator.rs:235).
#[test]
fn second_corrupt_parquet_labels_file_is_an_input_error() {
    labels_file_error(include_bytes!("data/fuzz-labels-crash-e83933d9.bin"));
}

/// fuzz target `load_parquet`, crash-fc86b1fe: a pool file whose byte-array page makes parquet
/// 60.1's decoder divide by zero (array_reader/byte_array.rs:391).
#[test]
fn pool_file_that_divides_the_decoder_by_zero_is_an_input_error() {
    let wd = Workdir::new();
    let data = wd.file(
        "pool.parquet",
        include_bytes!("data/fuzz-load-crash-fc86b1fe.bin"),
    );
    let out = wd.run(["inspect", data.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:#?}");
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{out:#?}");
    assert!(lines[0].contains("pool.parquet"), "{}", lines[0]);
    assert!(lines[0].contains("corrupt Parquet data"), "{}", lines[0]);
}
