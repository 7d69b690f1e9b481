//! A small valid Parquet pool (written once) plus arbitrary bytes as the `--labels` file
//! (CSV, or Parquet when the bytes start with `PAR1`): `dataset::load` must never panic.
#![no_main]

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arrow_array::types::Float32Type;
use arrow_array::{Array, FixedSizeListArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use labelwise::data::dataset::{load, LoadOptions};
use libfuzzer_sys::fuzz_target;
use parquet::arrow::ArrowWriter;

struct Fixture {
    _dir: tempfile::TempDir,
    pool: PathBuf,
    labels: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = dir.path().join("pool.parquet");
        let ids = StringArray::from(vec!["a", "b", "c", "1", "2", "x y"]);
        let labels = StringArray::from(vec![Some("cat"), None, Some("dog"), None, None, Some("cat")]);
        let values: Vec<Option<Vec<Option<f32>>>> = (0..6)
            .map(|i| Some((0..4).map(|j| Some(1.0 + (i * 4 + j) as f32)).collect()))
            .collect();
        let emb = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(values, 4);
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("embedding", emb.data_type().clone(), false),
            Field::new("label", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(ids), Arc::new(emb), Arc::new(labels)],
        )
        .expect("batch");
        let file = std::fs::File::create(&pool).expect("create pool");
        let mut w = ArrowWriter::try_new(file, schema, None).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        let labels = dir.path().join("labels.csv");
        Fixture { _dir: dir, pool, labels }
    })
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
    let fx = fixture();
    let mut f = std::fs::File::create(&fx.labels).expect("create labels");
    f.write_all(data).expect("write labels");
    drop(f);
    let opts = LoadOptions {
        labels_file: Some(fx.labels.clone()),
        ..LoadOptions::default()
    };
    let _ = load(std::slice::from_ref(&fx.pool), &opts);
});
