//! Shared helpers for integration tests: build small Parquet files from columns, run the real
//! `labelwise` binary on them, and check its exit code, stdout and stderr.
//!
//! In the manner of xsv/ripgrep's test harness: every test makes its own temporary folder
//! (`Workdir`), writes its inputs there, and runs the binary with that folder as current dir.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float16Builder, Float32Builder, Float64Builder, StringDictionaryBuilder,
};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, FixedSizeListArray, Float64Array, Int64Array, LargeListArray, ListArray, RecordBatch,
    StringArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// Result of one run of the binary.
#[derive(Debug)]
pub struct Output {
    /// Exit code (`-1` when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The stderr lines (without the trailing newline).
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// stdout parsed as JSON; panics with the whole output when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self:#?}"))
    }

    /// Asserts success and returns stdout parsed as JSON.
    pub fn ok_json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "expected exit 0:\n{self:#?}");
        self.json()
    }
}

/// Runs the real binary with `args`, in `cwd` when given; never panics on failure exit codes.
pub fn run_in<I, S>(cwd: Option<&Path>, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_in_as(cwd, args, None)
}

/// Like [`run_in`], as user and group `uid` when given (the caller must be root): how tests
/// that need permissions to bite run under CI, which runs as root.
pub fn run_in_as<I, S>(cwd: Option<&Path>, args: I, uid: Option<u32>) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_labelwise"));
    cmd.args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if let Some(id) = uid {
        cmd.uid(id).gid(id);
    }
    // Keep the output stable whatever the developer's environment.
    cmd.env_remove("RUST_BACKTRACE").env("NO_COLOR", "1");
    let out = cmd.output().expect("failed to start the labelwise binary");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the real binary with `args`: `(exit code, stdout, stderr)`.
pub fn run<I, S>(args: I) -> (i32, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let o = run_in(None, args);
    (o.code, o.stdout, o.stderr)
}

/// A temporary folder for one test's inputs and outputs, removed on drop.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Default for Workdir {
    fn default() -> Self {
        Self::new()
    }
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::Builder::new()
                .prefix("labelwise-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// Root of the folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `name` inside the folder (parent folders are created).
    pub fn path(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        p
    }

    /// Writes `columns` as a Parquet file `name` and returns its path.
    pub fn parquet(&self, name: &str, columns: Vec<(&str, ArrayRef)>) -> PathBuf {
        let p = self.path(name);
        write_parquet(&p, columns);
        p
    }

    /// Writes `columns` as a Parquet file `name` with row groups of `rows_per_group` rows.
    pub fn parquet_groups(
        &self,
        name: &str,
        columns: Vec<(&str, ArrayRef)>,
        rows_per_group: usize,
    ) -> PathBuf {
        let p = self.path(name);
        write_parquet_groups(&p, columns, Some(rows_per_group));
        p
    }

    /// Writes raw bytes or text to `name` and returns its path.
    pub fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).expect("write file");
        p
    }

    /// Runs the binary with this folder as current directory.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_in(Some(self.root()), args)
    }

    /// Runs the binary with this folder as current directory, as user and group `uid` when
    /// given (see [`run_in_as`]).
    pub fn run_as<I, S>(&self, args: I, uid: Option<u32>) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_in_as(Some(self.root()), args, uid)
    }

    /// Asserts that an output folder (`--out`) was never created or is still empty.
    pub fn assert_no_output(&self, out_dir: &Path) {
        assert_nothing_written(out_dir);
    }
}

/// Asserts `dir` does not exist, or exists and is empty (no partial outputs, no temp files).
pub fn assert_nothing_written(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read out dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert!(
        entries.is_empty(),
        "{} should be empty, holds {entries:?}",
        dir.display()
    );
}

/// Writes one record batch of `columns` (nullability taken from the arrays) to `path`.
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    write_parquet_groups(path, columns, None);
}

/// Like `write_parquet`, with row groups of at most `rows_per_group` rows when given, so a
/// small file still exercises reading across row-group boundaries.
pub fn write_parquet_groups(
    path: &Path,
    columns: Vec<(&str, ArrayRef)>,
    rows_per_group: Option<usize>,
) {
    let batch = batch(columns);
    let props = rows_per_group.map(|n| {
        WriterProperties::builder()
            .set_max_row_group_row_count(Some(n))
            .build()
    });
    let file = File::create(path).expect("create parquet file");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), props).expect("parquet writer");
    writer.write(&batch).expect("write batch");
    writer.close().expect("close parquet writer");
}

/// A record batch from named columns; every field is declared nullable.
pub fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, arr)| Field::new(*name, arr.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("record batch")
}

// ---- column builders -------------------------------------------------------------------------

/// String ids.
pub fn str_col<S: AsRef<str>>(values: &[S]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        values.iter().map(|s| s.as_ref()),
    ))
}

/// Nullable strings.
pub fn opt_str_col(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

/// Ids `id0`, `id1`, ... with `prefix`.
pub fn ids(prefix: &str, n: usize) -> ArrayRef {
    str_col(&(0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>())
}

/// Nullable int64 values.
pub fn i64_col(values: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(values.to_vec()))
}

/// Float64 values.
pub fn f64_col(values: &[f64]) -> ArrayRef {
    Arc::new(Float64Array::from(values.to_vec()))
}

/// Nullable booleans.
pub fn bool_col(values: &[Option<bool>]) -> ArrayRef {
    let mut b = BooleanBuilder::new();
    for v in values {
        b.append_option(*v);
    }
    Arc::new(b.finish())
}

/// Dictionary-encoded strings (Int32 keys).
pub fn dict_col(values: &[Option<&str>]) -> ArrayRef {
    let mut b = StringDictionaryBuilder::<Int32Type>::new();
    for v in values {
        b.append_option(*v);
    }
    Arc::new(b.finish())
}

/// Element types an embedding column can be written with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Float {
    F16,
    F32,
    F64,
}

impl Float {
    fn data_type(self) -> DataType {
        match self {
            Float::F16 => DataType::Float16,
            Float::F32 => DataType::Float32,
            Float::F64 => DataType::Float64,
        }
    }

    fn array(self, values: &[Option<f64>]) -> ArrayRef {
        match self {
            Float::F16 => {
                let mut b = Float16Builder::new();
                for v in values {
                    b.append_option(v.map(half::f16::from_f64));
                }
                Arc::new(b.finish())
            }
            Float::F32 => {
                let mut b = Float32Builder::new();
                for v in values {
                    b.append_option(v.map(|x| x as f32));
                }
                Arc::new(b.finish())
            }
            Float::F64 => {
                let mut b = Float64Builder::new();
                for v in values {
                    b.append_option(*v);
                }
                Arc::new(b.finish())
            }
        }
    }
}

/// Arrow list layouts an embedding column can be written with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    FixedSizeList,
    List,
    LargeList,
}

/// The most general embedding builder: `None` rows are null lists, `None` elements are nulls.
/// `FixedSizeList` needs every non-null row to have the same length (null rows are padded).
pub fn embedding_col(layout: Layout, float: Float, rows: &[Option<Vec<Option<f64>>>]) -> ArrayRef {
    let item = Arc::new(Field::new("item", float.data_type(), true));
    let any_null_row = rows.iter().any(Option::is_none);
    let nulls = any_null_row
        .then(|| NullBuffer::from(rows.iter().map(Option::is_some).collect::<Vec<bool>>()));
    match layout {
        Layout::FixedSizeList => {
            let d = rows.iter().flatten().map(Vec::len).next().unwrap_or(4);
            let mut flat = Vec::with_capacity(rows.len() * d);
            for r in rows {
                match r {
                    Some(r) => {
                        assert_eq!(r.len(), d, "FixedSizeList rows must have one length");
                        flat.extend_from_slice(r);
                    }
                    None => flat.extend(std::iter::repeat_n(Some(0.0), d)),
                }
            }
            Arc::new(
                FixedSizeListArray::try_new(item, d as i32, float.array(&flat), nulls)
                    .expect("fixed size list"),
            )
        }
        Layout::List | Layout::LargeList => {
            let lens = rows.iter().map(|r| r.as_ref().map_or(0, Vec::len));
            let flat: Vec<Option<f64>> = rows.iter().flatten().flatten().copied().collect();
            let values = float.array(&flat);
            if layout == Layout::List {
                Arc::new(
                    ListArray::try_new(item, OffsetBuffer::from_lengths(lens), values, nulls)
                        .expect("list"),
                )
            } else {
                Arc::new(
                    LargeListArray::try_new(item, OffsetBuffer::from_lengths(lens), values, nulls)
                        .expect("large list"),
                )
            }
        }
    }
}

/// Plain dense embeddings as FixedSizeList<f32>.
pub fn emb(rows: &[Vec<f64>]) -> ArrayRef {
    emb_as(Layout::FixedSizeList, Float::F32, rows)
}

/// Dense embeddings in a chosen layout and element type.
pub fn emb_as(layout: Layout, float: Float, rows: &[Vec<f64>]) -> ArrayRef {
    let rows: Vec<Option<Vec<Option<f64>>>> = rows
        .iter()
        .map(|r| Some(r.iter().copied().map(Some).collect()))
        .collect();
    embedding_col(layout, float, &rows)
}

/// `n` deterministic, distinct, non-zero vectors of dimension `d` (not unit-norm: row `i` has
/// components of magnitude ≈ 1 + i/10). Exactly representable enough for f16 too.
pub fn vectors(n: usize, d: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| {
            (0..d)
                .map(|j| {
                    let sign = if (i + j) % 3 == 0 { -1.0 } else { 1.0 };
                    sign * (1.0 + ((i * 7 + j * 3) % 11) as f64 / 8.0)
                })
                .collect()
        })
        .collect()
}

/// `n` unit vectors of dimension `d` (each a one-hot or a normalized pair), for norm checks.
pub fn unit_vectors(n: usize, d: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| {
            let mut v = vec![0.0; d];
            if i % 2 == 0 {
                v[i % d] = 1.0;
            } else {
                // 0.6² + 0.8² = 1 exactly.
                v[i % d] = 0.6;
                v[(i + 1) % d] = 0.8;
            }
            v
        })
        .collect()
}

// ---- run outputs and synthetic pools (commands, reliability and report tests) ----------------

/// The bundled sample (3,000 banking77 rows, 10% labeled, with a `true_label` column).
pub fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/banking77_sample.parquet")
}

/// Reads every record batch of a Parquet file into one batch.
pub fn read_parquet(path: &Path) -> RecordBatch {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap_or_else(|e| panic!("{} is not Parquet: {e}", path.display()))
        .build()
        .expect("parquet reader");
    let schema = arrow_array::RecordBatchReader::schema(&reader);
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("read batch")).collect();
    arrow_select::concat::concat_batches(&schema, &batches).expect("concat batches")
}

/// A column of `batch` by name; panics with the schema when it is missing.
pub fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name:?} in {:?}", batch.schema()))
}

/// A column's values as optional strings (string, large string, integer or dictionary columns).
pub fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    let col = column(batch, name);
    let col = arrow_cast_to_string(col);
    let s = col.as_string::<i32>();
    (0..s.len())
        .map(|i| (!s.is_null(i)).then(|| s.value(i).to_string()))
        .collect()
}

fn arrow_cast_to_string(col: &ArrayRef) -> ArrayRef {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type as I32, Int64Type};
    use arrow_array::Array;
    match col.data_type() {
        DataType::Utf8 => col.clone(),
        DataType::LargeUtf8 => {
            let s = col.as_string::<i64>();
            Arc::new(StringArray::from(
                (0..s.len())
                    .map(|i| (!s.is_null(i)).then(|| s.value(i)))
                    .collect::<Vec<_>>(),
            ))
        }
        DataType::Int64 => {
            let a = col.as_primitive::<Int64Type>();
            Arc::new(StringArray::from(
                (0..a.len())
                    .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
                    .collect::<Vec<_>>(),
            ))
        }
        DataType::Dictionary(k, _) if **k == DataType::Int32 => {
            let d = col.as_dictionary::<I32>();
            let values = arrow_cast_to_string(d.values());
            let values = values.as_string::<i32>();
            Arc::new(StringArray::from(
                (0..d.len())
                    .map(|i| {
                        (!d.is_null(i))
                            .then(|| values.value(d.keys().value(i) as usize).to_string())
                    })
                    .collect::<Vec<_>>(),
            ))
        }
        other => panic!("cannot read a {other:?} column as strings"),
    }
}

/// A non-null string column.
pub fn strs(batch: &RecordBatch, name: &str) -> Vec<String> {
    strings(batch, name)
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.unwrap_or_else(|| panic!("{name}[{i}] is null")))
        .collect()
}

/// A CSV file as (header, rows).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let header = r
        .headers()
        .expect("csv header")
        .iter()
        .map(String::from)
        .collect();
    let rows = r
        .records()
        .map(|rec| rec.expect("csv row").iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// A JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A JSON Lines file, one value per non-empty line.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// The regular files of a folder with their bytes, sorted by name.
pub fn dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read file"),
            )
        })
        .collect();
    v.sort();
    v
}

/// A deterministic pool of clustered vectors: `classes` random unit centres in dimension `dim`,
/// items = centre + Gaussian noise of standard deviation `noise` per component.
pub struct Synth {
    pub ids: Vec<String>,
    pub vectors: Vec<Vec<f64>>,
    /// True class of each item.
    pub truth: Vec<usize>,
}

/// A small seeded RNG (splitmix64) so tests do not depend on any crate's stream.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    /// Uniform integer in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n
    }
}

/// `n` items in `classes` well-separated clusters (class of item i = i % classes).
pub fn clustered(n: usize, classes: usize, dim: usize, noise: f64, seed: u64) -> Synth {
    let mut rng = Rng(seed);
    let centres: Vec<Vec<f64>> = (0..classes)
        .map(|_| normalize(&(0..dim).map(|_| rng.normal()).collect::<Vec<_>>()))
        .collect();
    let truth: Vec<usize> = (0..n).map(|i| i % classes).collect();
    let vectors = truth
        .iter()
        .map(|&c| {
            centres[c]
                .iter()
                .map(|x| f64::from((x + noise * rng.normal()) as f32))
                .collect()
        })
        .collect();
    Synth {
        ids: (0..n).map(|i| format!("item{i:05}")).collect(),
        vectors,
        truth,
    }
}

/// `v` scaled to unit length.
pub fn normalize(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// Cosine similarity in f64.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Writes `pool.parquet` with `id`, `embedding` (f32), `label` (class name `c{k}` where
/// `labeled[i]`, null otherwise) and `true_label`; returns its path.
pub fn write_pool(wd: &Workdir, name: &str, s: &Synth, labeled: &[bool]) -> PathBuf {
    let labels: Vec<Option<String>> = s
        .truth
        .iter()
        .zip(labeled)
        .map(|(&c, &l)| l.then(|| format!("c{c}")))
        .collect();
    let label_refs: Vec<Option<&str>> = labels.iter().map(|l| l.as_deref()).collect();
    let truth: Vec<String> = s.truth.iter().map(|c| format!("c{c}")).collect();
    wd.parquet(
        name,
        vec![
            ("id", str_col(&s.ids)),
            ("embedding", emb(&s.vectors)),
            ("label", opt_str_col(&label_refs)),
            ("true_label", str_col(&truth)),
        ],
    )
}

/// Writes `name` with `id`, `embedding`, `label` (`c{k}` where `labeled[i]`, null otherwise)
/// and a `text` column `"text of {id}"` (what exports carry through); returns its path.
pub fn write_text_pool(wd: &Workdir, name: &str, s: &Synth, labeled: &[bool]) -> PathBuf {
    let texts: Vec<String> = s.ids.iter().map(|id| format!("text of {id}")).collect();
    let labels: Vec<Option<String>> = s
        .truth
        .iter()
        .zip(labeled)
        .map(|(&c, &l)| l.then(|| format!("c{c}")))
        .collect();
    let label_refs: Vec<Option<&str>> = labels.iter().map(|l| l.as_deref()).collect();
    wd.parquet(
        name,
        vec![
            ("id", str_col(&s.ids)),
            ("embedding", emb(&s.vectors)),
            ("label", opt_str_col(&label_refs)),
            ("text", str_col(&texts)),
        ],
    )
}

/// An embedding column (FixedSizeList or List of float32/float64) as f64 rows.
pub fn embeddings(batch: &RecordBatch, name: &str) -> Vec<Vec<f64>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type};
    use arrow_array::Array;
    let col = column(batch, name);
    let rows: Vec<ArrayRef> = match col.data_type() {
        DataType::FixedSizeList(_, _) => {
            let l = col.as_fixed_size_list();
            (0..l.len()).map(|i| l.value(i)).collect()
        }
        DataType::List(_) => {
            let l = col.as_list::<i32>();
            (0..l.len()).map(|i| l.value(i)).collect()
        }
        other => panic!("embedding column of type {other:?}"),
    };
    rows.iter()
        .map(|r| match r.data_type() {
            DataType::Float32 => r
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|&x| f64::from(x))
                .collect(),
            DataType::Float64 => r.as_primitive::<Float64Type>().values().to_vec(),
            other => panic!("embedding values of type {other:?}"),
        })
        .collect()
}

/// Runs the binary in `wd` with `args` (plus `--quiet`) and asserts exit 0.
pub fn ok(wd: &Workdir, args: &[&str]) -> Output {
    let mut a: Vec<&str> = args.to_vec();
    a.push("--quiet");
    let o = wd.run(&a);
    assert_eq!(o.code, 0, "expected exit 0 for {args:?}:\n{o:#?}");
    o
}

/// Copies the bundled sample into the work dir.
pub fn copy_sample(wd: &Workdir) -> PathBuf {
    let p = wd.path("sample.parquet");
    std::fs::copy(sample_path(), &p).expect("copy sample");
    p
}
