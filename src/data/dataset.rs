//! Loading and validating the input: Parquet files of ids, embeddings, labels and carried columns.
//!
//! Record batches stream into one contiguous, row-normalized `f32` matrix, which is the only full
//! copy of the embeddings. Every fault names the file, the column and the first offending row
//! (0-based, within that file), so a user can find it with any Parquet reader.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use ndarray::Array2;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::Serialize;

use crate::data::label_formats::{self, Annotations, LabelMerge, ReadOptions};
use crate::error::{Error, Result};

/// Rows per record batch while streaming; 8,192 × 384 f32 is 12.6 MB in flight.
const BATCH_ROWS: usize = 8192;

/// Which columns to read and what to merge on top; mirrors the shared CLI input flags.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Column holding the item id (string or integer, unique across all files).
    pub id_col: String,
    /// Column holding the embedding (FixedSizeList / List / LargeList of f16, f32 or f64).
    pub embedding_col: String,
    /// Column holding labels; `None` means "`label` if present".
    pub label_col: Option<String>,
    /// Annotators' labels that add to / override the label column: a labeling tool's export or
    /// `id,label` CSV/Parquet, detected from content (see [`label_formats`]).
    pub labels_file: Option<PathBuf>,
    /// The label control to read from `labels_file` (Label Studio `from_name`, Argilla
    /// question); `None`: the only one there is.
    pub label_control: Option<String>,
    /// Keep all other columns for exports. Commands that never export skip them to save memory.
    pub carry_extra: bool,
    /// Refuse (exit 2) before allocating the matrix when the run would not fit; see `memory`.
    pub memory_check: Option<MemoryCheck>,
    /// Read the embeddings. Off for a driver whose rows are read elsewhere (a cluster's
    /// shards): the dataset's matrix then has no columns, and the column may be absent (a map
    /// task reads a shard's other columns only); when present its type is still checked.
    pub read_embeddings: bool,
}

/// The limit a run must fit in, checked as soon as rows × dimension are known.
#[derive(Debug, Clone, Copy)]
pub struct MemoryCheck {
    /// Bytes allowed; `None` means the machine's available memory.
    pub limit: Option<u64>,
    /// Neighbours per item the run will store.
    pub k: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            id_col: "id".into(),
            embedding_col: "embedding".into(),
            label_col: None,
            labels_file: None,
            label_control: None,
            carry_extra: true,
            memory_check: None,
            read_embeddings: true,
        }
    }
}

/// Norms of the raw embeddings, before normalization: tells whether the input was unit-norm.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NormStats {
    /// Smallest embedding L2 norm; near 0 flags empty or broken vectors.
    pub min: f64,
    /// Largest embedding L2 norm.
    pub max: f64,
    /// Mean embedding L2 norm; near 1 means the input was already unit-norm.
    pub mean: f64,
}

/// A column carried through unchanged to exports, kept as the Arrow chunks it was read in.
#[derive(Debug, Clone)]
pub struct CarriedColumn {
    /// Arrow field (name, type, nullability) so the column is written back as it was read.
    pub field: Arc<Field>,
    /// One array per record batch; chunk boundaries are `Dataset::chunk_starts`.
    pub chunks: Vec<ArrayRef>,
}

/// Some rows' carried columns, row `r` of every array being the same item. A driver that never
/// loaded the carried columns gets them this way from where the pool is (the wheel's map route).
#[derive(Debug, Clone, Default)]
pub struct CarriedRows {
    /// The columns' fields, as the loader read them.
    pub fields: Vec<Arc<Field>>,
    /// One array per field, all of the same length.
    pub columns: Vec<ArrayRef>,
}

impl CarriedRows {
    /// Column `col` at `row` as plain text (empty for null), as [`Dataset::carried_text`].
    pub fn text(&self, col: usize, row: usize) -> String {
        cell_text(self.columns[col].as_ref(), row)
    }

    /// The columns of `batch` (e.g. a gathered Arrow table) taken as carried rows.
    pub fn from_batch(batch: &RecordBatch) -> CarriedRows {
        CarriedRows {
            fields: batch.schema().fields().iter().cloned().collect(),
            columns: batch.columns().to_vec(),
        }
    }

    /// The columns as one record batch (what a map task hands back to the driver).
    pub fn into_batch(self) -> Result<RecordBatch> {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.columns)
            .map_err(Error::internal("carried rows"))
    }
}

/// The validated pool: everything later stages need, in memory once.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Item ids in input order (integers rendered in decimal).
    pub ids: Vec<String>,
    /// True when every input file stored ids as integers: outputs then write ids as Int64.
    pub ids_are_integers: bool,
    /// n × d, row-major, every row L2-normalized: cosine is a dot product.
    pub embeddings: Array2<f32>,
    /// Class index per item, `None` = unlabeled.
    pub labels: Vec<Option<u32>>,
    /// Class names, sorted; `labels` index into this.
    pub classes: Vec<String>,
    /// Other columns, carried through for exports.
    pub carried: Vec<CarriedColumn>,
    /// First row of each carried chunk (global row index), ascending.
    pub chunk_starts: Vec<usize>,
    /// The Parquet files read, in order.
    pub files: Vec<PathBuf>,
    /// Norm statistics before normalization.
    pub norms: NormStats,
    /// Report of the `--labels` merge, when a labels file was given.
    pub label_merge: Option<LabelMerge>,
    /// Non-fatal observations worth showing the user (e.g. columns not carried).
    pub warnings: Vec<String>,
}

impl Dataset {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no items (never true for a loaded dataset).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.embeddings.ncols()
    }

    /// Number of labeled items.
    pub fn labeled_count(&self) -> usize {
        self.labels.iter().filter(|l| l.is_some()).count()
    }

    /// Labeled items per class, indexed like `classes`.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.classes.len()];
        for l in self.labels.iter().flatten() {
            counts[*l as usize] += 1;
        }
        counts
    }

    /// The carried value at `row` of column `col` as JSON, for exports.
    pub fn carried_json(&self, col: usize, row: usize) -> serde_json::Value {
        let (chunk, offset) = self.locate(row);
        cell_json(self.carried[col].chunks[chunk].as_ref(), offset)
    }

    /// The carried value at `row` of column `col` as plain text (empty for null), for CSV.
    pub fn carried_text(&self, col: usize, row: usize) -> String {
        let (chunk, offset) = self.locate(row);
        cell_text(self.carried[col].chunks[chunk].as_ref(), offset)
    }

    /// The carried columns of `rows` (any order, repeats allowed), one array per column: what
    /// batch.csv and the report show of the picked items, without concatenating whole columns.
    pub fn carried_rows(&self, rows: &[u32]) -> Result<CarriedRows> {
        let at: Vec<(usize, usize)> = rows.iter().map(|&r| self.locate(r as usize)).collect();
        let columns = self
            .carried
            .iter()
            .map(|col| {
                let chunks: Vec<&dyn Array> = col.chunks.iter().map(|c| c.as_ref()).collect();
                arrow_select::interleave::interleave(&chunks, &at)
                    .map_err(Error::internal("carried rows"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CarriedRows {
            fields: self.carried.iter().map(|c| c.field.clone()).collect(),
            columns,
        })
    }

    fn locate(&self, row: usize) -> (usize, usize) {
        let chunk = self.chunk_starts.partition_point(|&s| s <= row) - 1;
        (chunk, row - self.chunk_starts[chunk])
    }
}

/// Expands files and directories (recursively, sorted, skipping hidden `.`/`_` entries) into
/// the Parquet files to read.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::input(path, None, None, format!("cannot read: {e}")))?;
        if meta.is_dir() {
            let before = files.len();
            walk_dir(path, &mut files)?;
            if files.len() == before {
                return Err(Error::input(
                    path,
                    None,
                    None,
                    "directory holds no .parquet files",
                ));
            }
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Err(Error::Usage("no input files given".into()));
    }
    Ok(files)
}

fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::input(dir, None, None, format!("cannot read directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if path.is_dir() {
            walk_dir(&path, out)?;
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            out.push(path);
        }
    }
    Ok(())
}

/// Ids → row, storing a 64-bit hash instead of a second copy of every id string.
#[derive(Default)]
struct IdIndex {
    by_hash: HashMap<u64, u32>,
    /// Ids whose hash collided with a different id (rare): looked up by value.
    collided: HashMap<String, u32>,
}

type FixedHasher = BuildHasherDefault<DefaultHasher>;

impl IdIndex {
    fn hash(id: &str) -> u64 {
        FixedHasher::default().hash_one(id)
    }

    /// Inserts `id` at `row`; returns the earlier row when the id was already present.
    fn insert(&mut self, ids: &[String], id: &str, row: u32) -> Option<u32> {
        let h = Self::hash(id);
        match self.by_hash.get(&h) {
            None => {
                self.by_hash.insert(h, row);
                None
            }
            Some(&prev) if ids[prev as usize] == id => Some(prev),
            Some(_) => match self.collided.get(id) {
                Some(&prev) => Some(prev),
                None => {
                    self.collided.insert(id.to_string(), row);
                    None
                }
            },
        }
    }

    fn get(&self, ids: &[String], id: &str) -> Option<u32> {
        match self.by_hash.get(&Self::hash(id)) {
            Some(&row) if ids[row as usize] == id => Some(row),
            Some(_) => self.collided.get(id).copied(),
            None => None,
        }
    }
}

/// The file and in-file row of global row `row`, for messages that point back at an earlier row.
fn locate_row<'a>(files: &'a [PathBuf], file_starts: &[usize], row: usize) -> (&'a Path, u64) {
    let f = file_starts.partition_point(|&s| s <= row) - 1;
    (&files[f], (row - file_starts[f]) as u64)
}

thread_local! {
    /// The file and row being decoded, so a decoder panic can still be reported as an input
    /// error naming them.
    static DECODING: std::cell::RefCell<(PathBuf, u64)> = std::cell::RefCell::new((PathBuf::new(), 0));
}

pub(crate) fn decoding_at(file: &Path, row: u64) {
    DECODING.with(|d| *d.borrow_mut() = (file.to_path_buf(), row));
}

/// Runs `f`, turning a panic inside the Parquet/Arrow decoders (seen on corrupt files found by
/// fuzzing) into an input error for the file and row being read. A panic that starts in our own
/// code is a bug, not bad input: it stays an internal error (exit 1), with its location.
fn guard_decoder<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match crate::error::catch_panic(f) {
        Ok(result) => result,
        Err(p) if p.origin == crate::error::PanicOrigin::Dependency => {
            let (file, row) = DECODING.with(|d| d.borrow().clone());
            Err(Error::input(
                file,
                None,
                Some(row),
                format!("corrupt Parquet data: the decoder failed ({})", p.message),
            ))
        }
        Err(p) => Err(Error::Internal(format!(
            "panic while loading: {} at {} (please report this)",
            p.message,
            p.location.as_deref().unwrap_or("an unknown location")
        ))),
    }
}

/// Reads, validates and normalizes the pool. Errors name file, column and first bad row.
pub fn load(paths: &[PathBuf], opts: &LoadOptions) -> Result<Dataset> {
    guard_decoder(|| load_unguarded(paths, opts))
}

/// Validates and normalizes a pool already in memory as Arrow record batches (the Python
/// bindings' tables, or any other in-process producer), exactly as [`load`] does a Parquet
/// file's: the same schema checks, the same per-row validation and the same messages, with
/// `source` standing where a file name would (e.g. `<pyarrow.Table>`) and rows counted from 0
/// across the batches. `opts.labels_file` is merged on top, and `opts.memory_check` is run once
/// the dimension is known. The batches' buffers are read in place; the only copy made is the
/// normalized `f32` matrix (and, with `opts.carry_extra`, the carried columns share the
/// batches' buffers).
pub fn load_batches(
    source: &Path,
    schema: &Schema,
    batches: &[RecordBatch],
    opts: &LoadOptions,
) -> Result<Dataset> {
    guard_decoder(|| {
        check_schema(source, schema, opts)?;
        let total_rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        if total_rows > u32::MAX as u64 {
            return Err(Error::Usage(format!(
                "{total_rows} rows: more than {} items are not supported",
                u32::MAX
            )));
        }
        let label_col = resolve_label_col(schema, opts);
        let annotations = read_labels_file(opts, schema, label_col.as_deref())?;
        let mut pool = PoolBuilder::new(opts, label_col, total_rows, 1);
        let files = [source.to_path_buf()];
        pool.file_starts.push(0);
        let mut row: u64 = 0;
        for batch in batches {
            if batch.schema().fields() != schema.fields() {
                return Err(Error::input(
                    source,
                    None,
                    Some(row),
                    "record batch schema differs from the table's",
                ));
            }
            decoding_at(source, row);
            row += pool.push_batch(batch, source, row, &files)?;
        }
        pool.finish(files.to_vec(), annotations.as_ref())
    })
}

fn load_unguarded(paths: &[PathBuf], opts: &LoadOptions) -> Result<Dataset> {
    let files = expand_paths(paths)?;
    let (total_rows, first_schema) = scan_footers(&files, opts)?;
    let label_col = resolve_label_col(&first_schema, opts);
    let annotations = read_labels_file(opts, &first_schema, label_col.as_deref())?;
    let mut pool = PoolBuilder::new(opts, label_col, total_rows, files.len());
    for file in &files {
        pool.read_file(file, &files)?;
    }
    pool.finish(files, annotations.as_ref())
}

/// Reads `--labels` (any format `label_formats` knows) before the pool, so a bad labels file
/// stops the run before the embeddings are decoded. The pool's other columns are named as data
/// fields: in flat exports (Label Studio JSON_MIN, CSV) they sit beside the label control.
fn read_labels_file(
    opts: &LoadOptions,
    schema: &Schema,
    label_col: Option<&str>,
) -> Result<Option<Annotations>> {
    let Some(file) = &opts.labels_file else {
        return Ok(None);
    };
    let data_fields = schema
        .fields()
        .iter()
        .map(|f| f.name())
        .filter(|n| {
            **n != opts.id_col && **n != opts.embedding_col && Some(n.as_str()) != label_col
        })
        .cloned()
        .collect();
    let read = ReadOptions {
        control: opts.label_control.clone(),
        data_fields,
    };
    decoding_at(file, 0);
    label_formats::read_annotations_with(file, &read).map(Some)
}

/// Pass 1: footers only, to size the matrix once and to check every file's schema (and that all
/// files carry the same extra columns) before any decoding. Returns the total row count and
/// the first file's schema.
fn scan_footers(files: &[PathBuf], opts: &LoadOptions) -> Result<(u64, Arc<Schema>)> {
    let mut total_rows: u64 = 0;
    let mut first_schema: Option<(PathBuf, Arc<Schema>)> = None;
    for file in files {
        decoding_at(file, 0);
        let builder = open_parquet(file)?;
        let schema = builder.schema().clone();
        check_schema(file, &schema, opts)?;
        if let Some((first_file, first)) = &first_schema {
            check_same_extras(first_file, first, file, &schema, opts)?;
        } else {
            first_schema = Some((file.clone(), schema));
        }
        total_rows += builder.metadata().file_metadata().num_rows().max(0) as u64;
    }
    if total_rows > u32::MAX as u64 {
        return Err(Error::Usage(format!(
            "{total_rows} rows: more than {} items are not supported",
            u32::MAX
        )));
    }
    Ok((total_rows, first_schema.expect("files non-empty").1))
}

/// Running min, max and sum of the raw row norms, in row order.
struct NormAcc {
    sum: f64,
    min: f64,
    max: f64,
}

/// Pass 2's state: the pool as it grows, record batch by record batch, file by file. Every
/// column is appended in input order, so row `i` of ids, matrix, labels and carried chunks is
/// the same item.
struct PoolBuilder<'o> {
    opts: &'o LoadOptions,
    /// The label column all files share (resolved on the first file), if any.
    label_col: Option<String>,
    /// Rows announced by the footers: the matrix is reserved for them once.
    total_rows: u64,
    ids: Vec<String>,
    id_index: IdIndex,
    ids_are_integers: bool,
    matrix: Vec<f32>,
    /// The embedding dimension and the file that set it, once the first batch is read.
    dim: Option<(usize, PathBuf)>,
    raw_labels: Vec<Option<String>>,
    carried: Vec<CarriedColumn>,
    chunk_starts: Vec<usize>,
    warnings: Vec<String>,
    norms: NormAcc,
    /// First global row of each file read so far, to point duplicate ids back at their file.
    file_starts: Vec<usize>,
}

impl<'o> PoolBuilder<'o> {
    fn new(
        opts: &'o LoadOptions,
        label_col: Option<String>,
        total_rows: u64,
        n_files: usize,
    ) -> Self {
        PoolBuilder {
            opts,
            label_col,
            total_rows,
            ids: Vec::with_capacity(total_rows as usize),
            id_index: IdIndex::default(),
            ids_are_integers: true,
            matrix: Vec::new(),
            dim: None,
            raw_labels: Vec::with_capacity(total_rows as usize),
            carried: Vec::new(),
            chunk_starts: Vec::new(),
            warnings: Vec::new(),
            norms: NormAcc {
                sum: 0.0,
                min: f64::INFINITY,
                max: 0.0,
            },
            file_starts: Vec::with_capacity(n_files),
        }
    }

    /// True for the columns the loader consumes itself (id, embedding, label); the others are
    /// carried.
    fn is_core_column(&self, name: &str) -> bool {
        name == self.opts.id_col
            || name == self.opts.embedding_col
            || Some(name) == self.label_col.as_deref()
    }

    /// Streams one file's record batches into the pool, reading only the columns it keeps.
    fn read_file(&mut self, file: &Path, files: &[PathBuf]) -> Result<()> {
        self.file_starts.push(self.ids.len());
        let builder = open_parquet(file)?;
        let schema = builder.schema().clone();
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| {
                let name = schema.field(i).name();
                (self.opts.carry_extra || self.is_core_column(name))
                    && (self.opts.read_embeddings || *name != self.opts.embedding_col)
            })
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), keep);
        let reader = builder
            .with_batch_size(BATCH_ROWS)
            .with_projection(mask)
            .build()
            .map_err(|e| Error::input(file, None, None, format!("cannot read Parquet: {e}")))?;
        let mut file_row: u64 = 0;
        for batch in reader {
            decoding_at(file, file_row);
            let batch = batch.map_err(|e| {
                Error::input(
                    file,
                    None,
                    Some(file_row),
                    format!("unreadable or truncated Parquet data: {e}"),
                )
            })?;
            file_row += self.push_batch(&batch, file, file_row, files)?;
        }
        Ok(())
    }

    /// Appends one record batch of `file`, whose first row is `file_row` within it; returns
    /// its row count.
    fn push_batch(
        &mut self,
        batch: &RecordBatch,
        file: &Path,
        file_row: u64,
        files: &[PathBuf],
    ) -> Result<u64> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(0);
        }
        self.push_ids(batch, file, file_row, files)?;
        if self.opts.read_embeddings {
            self.push_embeddings(batch, file, file_row)?;
        }
        self.push_labels(batch, file, file_row)?;
        if self.opts.carry_extra {
            self.push_carried(batch);
        }
        Ok(n as u64)
    }

    /// Appends a batch's ids, refusing one already seen (in any file) with both places named.
    fn push_ids(
        &mut self,
        batch: &RecordBatch,
        file: &Path,
        file_row: u64,
        files: &[PathBuf],
    ) -> Result<()> {
        let id_col = &self.opts.id_col;
        let id_array = column(batch, id_col, file)?;
        self.ids_are_integers &= !matches!(
            id_array.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
        let batch_ids = id_strings(id_array, file, id_col, file_row)?;
        for (i, id) in batch_ids.into_iter().enumerate() {
            let row = self.ids.len() as u32;
            if let Some(prev) = self.id_index.insert(&self.ids, &id, row) {
                let (pf, pr) = locate_row(files, &self.file_starts, prev as usize);
                return Err(Error::input(
                    file,
                    Some(id_col),
                    Some(file_row + i as u64),
                    format!(
                        "duplicate id '{id}' (first seen in {}, row {pr})",
                        pf.display()
                    ),
                ));
            }
            self.ids.push(id);
        }
        Ok(())
    }

    /// Appends a batch's embeddings to the matrix and normalizes them. The first batch fixes
    /// the dimension, runs the memory check and reserves the whole matrix; later batches must
    /// match that dimension.
    fn push_embeddings(&mut self, batch: &RecordBatch, file: &Path, file_row: u64) -> Result<()> {
        let opts = self.opts;
        let emb = column(batch, &opts.embedding_col, file)?;
        let ctx = EmbCtx {
            file,
            col: &opts.embedding_col,
            first_row: file_row,
        };
        let d = embedding_dim(emb, &ctx)?;
        match &self.dim {
            None => {
                self.dim = Some((d, file.to_path_buf()));
                if let Some(mc) = opts.memory_check {
                    crate::data::memory::check(self.total_rows, d as u64, mc.k, mc.limit)?;
                }
                self.matrix.reserve_exact(self.total_rows as usize * d);
            }
            Some((d0, f0)) if *d0 != d => {
                return Err(Error::input(
                    file,
                    Some(&opts.embedding_col),
                    Some(file_row),
                    format!(
                        "embedding has {d} dimensions, but {} has {d0}",
                        f0.display()
                    ),
                ));
            }
            _ => {}
        }
        let before = self.matrix.len();
        append_embeddings(emb, d, &ctx, &mut self.matrix)?;
        normalize_rows(&mut self.matrix[before..], d, &ctx, &mut self.norms)
    }

    /// Appends a batch's raw labels (`None` for every row when there is no label column).
    fn push_labels(&mut self, batch: &RecordBatch, file: &Path, file_row: u64) -> Result<()> {
        match &self.label_col {
            Some(name) => {
                let arr = column(batch, name, file)?;
                self.raw_labels
                    .extend(label_strings(arr, file, name, file_row)?);
            }
            None => self
                .raw_labels
                .extend(std::iter::repeat_n(None, batch.num_rows())),
        }
        Ok(())
    }

    /// Keeps a batch's other columns as Arrow chunks for exports, warning once per column
    /// whose type exports cannot write.
    fn push_carried(&mut self, batch: &RecordBatch) {
        self.chunk_starts.push(self.ids.len() - batch.num_rows());
        let mut c = 0;
        for (i, field) in batch.schema().fields().iter().enumerate() {
            let name = field.name();
            if self.is_core_column(name) {
                continue;
            }
            if self.carried.len() <= c {
                if !cell_supported(field.data_type()) {
                    self.warnings.push(format!(
                        "column '{name}' has type {} which exports write as null",
                        field.data_type()
                    ));
                }
                self.carried.push(CarriedColumn {
                    field: field.clone(),
                    chunks: Vec::new(),
                });
            }
            self.carried[c].chunks.push(batch.column(i).clone());
            c += 1;
        }
    }

    /// The finished pool: refuses an empty one, shapes the matrix, merges `--labels` over the
    /// label column and encodes the classes.
    fn finish(self, files: Vec<PathBuf>, annotations: Option<&Annotations>) -> Result<Dataset> {
        let PoolBuilder {
            ids,
            id_index,
            mut ids_are_integers,
            matrix,
            dim,
            mut raw_labels,
            carried,
            chunk_starts,
            warnings,
            norms,
            ..
        } = self;
        let n = ids.len();
        if n == 0 {
            return Err(Error::input(
                &files[0],
                None,
                None,
                "empty dataset: no rows in any input file",
            ));
        }
        let d = dim.map(|(d, _)| d).unwrap_or(0);
        let embeddings = Array2::from_shape_vec((n, d), matrix)
            .map_err(Error::internal("embedding matrix shape"))?;

        let label_merge = match annotations {
            Some(a) => Some(label_formats::apply(
                a,
                |id| id_index.get(&ids, id).map(|row| row as usize),
                &mut raw_labels,
            )?),
            None => None,
        };
        let (labels, classes) = encode_labels(&raw_labels);

        if ids_are_integers {
            // Integer ids are written back as Int64; values beyond i64 fall back to strings.
            ids_are_integers = ids.iter().all(|s| s.parse::<i64>().is_ok());
        }
        Ok(Dataset {
            ids,
            ids_are_integers,
            embeddings,
            labels,
            classes,
            carried,
            chunk_starts,
            files,
            norms: NormStats {
                min: norms.min,
                max: norms.max,
                mean: norms.sum / n as f64,
            },
            label_merge,
            warnings,
        })
    }
}

/// Scales each `d`-wide row of `rows` to unit L2 norm, refusing zero and overflowing rows, and
/// adds the raw norms to `norms` in row order.
fn normalize_rows(rows: &mut [f32], d: usize, ctx: &EmbCtx, norms: &mut NormAcc) -> Result<()> {
    for (i, row) in rows.chunks_exact_mut(d).enumerate() {
        let norm = row
            .iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 || !norm.is_finite() {
            let what = if norm == 0.0 {
                "zero vector (cosine is undefined)"
            } else {
                "embedding norm overflows"
            };
            return Err(ctx.err(i, what));
        }
        norms.sum += norm;
        norms.min = norms.min.min(norm);
        norms.max = norms.max.max(norm);
        // Scale in f64: `1/norm` overflows f32 for tiny (subnormal) rows and underflows
        // for huge ones, which would turn a valid row into inf/NaN.
        let inv = 1.0 / norm;
        row.iter_mut().for_each(|x| *x = (*x as f64 * inv) as f32);
    }
    Ok(())
}

fn open_parquet(file: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let handle = File::open(file).map_err(|e| Error::input(file, None, None, format!("{e}")))?;
    if handle.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::input(file, None, None, "is a directory"));
    }
    ParquetRecordBatchReaderBuilder::try_new(handle).map_err(|e| {
        Error::input(
            file,
            None,
            None,
            format!("not a Parquet file, or truncated ({e})"),
        )
    })
}

fn resolve_label_col(schema: &Schema, opts: &LoadOptions) -> Option<String> {
    match &opts.label_col {
        Some(name) => Some(name.clone()),
        None => schema.field_with_name("label").ok().map(|_| "label".into()),
    }
}

/// `name`'s field, or the error naming the file, the column and the columns there are.
fn required_field<'s>(file: &Path, schema: &'s Schema, name: &str) -> Result<&'s Field> {
    schema.field_with_name(name).map_err(|_| {
        let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        Error::input(
            file,
            Some(name),
            None,
            format!("missing column (columns are: {})", have.join(", ")),
        )
    })
}

/// Checks column presence and types from the footer, before decoding any data.
fn check_schema(file: &Path, schema: &Schema, opts: &LoadOptions) -> Result<()> {
    let need = |name: &str| required_field(file, schema, name);
    let id = need(&opts.id_col)?;
    if !id_type_ok(id.data_type()) {
        return Err(Error::input(
            file,
            Some(&opts.id_col),
            None,
            format!(
                "wrong column type {}: ids must be strings or integers",
                id.data_type()
            ),
        ));
    }
    // A reader that skips the matrix may be handed rows without it (a cluster's map task).
    if !opts.read_embeddings && schema.field_with_name(&opts.embedding_col).is_err() {
        return check_label_column(file, schema, opts);
    }
    let emb = need(&opts.embedding_col)?;
    let inner = match emb.data_type() {
        DataType::FixedSizeList(f, _) | DataType::List(f) | DataType::LargeList(f) => {
            Some(f.data_type())
        }
        _ => None,
    };
    if !matches!(
        inner,
        Some(DataType::Float16 | DataType::Float32 | DataType::Float64)
    ) {
        return Err(Error::input(
            file,
            Some(&opts.embedding_col),
            None,
            format!(
                "wrong column type {}: embeddings must be a list of float16/32/64",
                emb.data_type()
            ),
        ));
    }
    check_label_column(file, schema, opts)
}

/// The label column (`--label-col`, else `label` when present) must hold labels.
fn check_label_column(file: &Path, schema: &Schema, opts: &LoadOptions) -> Result<()> {
    if let Some(name) = &opts.label_col {
        let label = required_field(file, schema, name)?;
        if !label_type_ok(label.data_type()) {
            return Err(Error::input(
                file,
                Some(name),
                None,
                format!(
                    "wrong column type {}: labels must be string, integer, boolean or dictionary",
                    label.data_type()
                ),
            ));
        }
    } else if let Ok(label) = schema.field_with_name("label") {
        if !label_type_ok(label.data_type()) {
            return Err(Error::input(
                file,
                Some("label"),
                None,
                format!(
                    "wrong column type {}: labels must be string, integer, boolean or dictionary",
                    label.data_type()
                ),
            ));
        }
    }
    Ok(())
}

/// All files must carry the same extra columns, so exports have one shape.
fn check_same_extras(
    first_file: &Path,
    first: &Schema,
    file: &Path,
    schema: &Schema,
    opts: &LoadOptions,
) -> Result<()> {
    let label = resolve_label_col(first, opts);
    let extras = |s: &Schema| -> Vec<(String, DataType)> {
        s.fields()
            .iter()
            .filter(|f| {
                f.name() != &opts.id_col
                    && f.name() != &opts.embedding_col
                    && Some(f.name()) != label.as_ref()
            })
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    let (a, b) = (extras(first), extras(schema));
    if a != b {
        let differing = b
            .iter()
            .find(|c| !a.contains(c))
            .or_else(|| a.iter().find(|c| !b.contains(c)))
            .map(|c| c.0.clone());
        return Err(Error::input(
            file,
            differing.as_deref(),
            None,
            format!(
                "schema differs from {}: all inputs must have the same columns",
                first_file.display()
            ),
        ));
    }
    if resolve_label_col(schema, opts) != label {
        return Err(Error::input(
            file,
            Some("label"),
            None,
            format!(
                "schema differs from {}: the label column is present in one and not the other",
                first_file.display()
            ),
        ));
    }
    Ok(())
}

fn id_type_ok(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

fn label_type_ok(t: &DataType) -> bool {
    match t {
        DataType::Boolean => true,
        DataType::Dictionary(_, v) => label_type_ok(v),
        other => id_type_ok(other),
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str, file: &Path) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::input(file, Some(name), None, "missing column"))
}

macro_rules! int_strings {
    ($arr:expr, $t:ty) => {
        $arr.as_primitive::<$t>()
            .iter()
            .map(|v| v.map(|v| v.to_string()))
            .collect::<Vec<Option<String>>>()
    };
}

/// Any supported scalar column (string, integer, bool, dictionary of those) as optional strings.
pub(crate) fn scalar_strings(arr: &dyn Array) -> Option<Vec<Option<String>>> {
    Some(match arr.data_type() {
        DataType::Utf8 => arr
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        DataType::LargeUtf8 => arr
            .as_string::<i64>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        DataType::Utf8View => arr
            .as_string_view()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        DataType::Int8 => int_strings!(arr, Int8Type),
        DataType::Int16 => int_strings!(arr, Int16Type),
        DataType::Int32 => int_strings!(arr, Int32Type),
        DataType::Int64 => int_strings!(arr, Int64Type),
        DataType::UInt8 => int_strings!(arr, UInt8Type),
        DataType::UInt16 => int_strings!(arr, UInt16Type),
        DataType::UInt32 => int_strings!(arr, UInt32Type),
        DataType::UInt64 => int_strings!(arr, UInt64Type),
        DataType::Boolean => arr
            .as_boolean()
            .iter()
            .map(|v| v.map(|b| b.to_string()))
            .collect(),
        DataType::Dictionary(_, _) => {
            let dict = arr.as_any_dictionary();
            let values = scalar_strings(dict.values().as_ref())?;
            let keys = dict.normalized_keys();
            (0..arr.len())
                .map(|i| {
                    if arr.is_null(i) {
                        None
                    } else {
                        values.get(keys[i]).cloned().flatten()
                    }
                })
                .collect()
        }
        _ => return None,
    })
}

fn id_strings(arr: &ArrayRef, file: &Path, col: &str, first_row: u64) -> Result<Vec<String>> {
    let values = scalar_strings(arr.as_ref()).ok_or_else(|| {
        Error::input(
            file,
            Some(col),
            None,
            format!("wrong column type {}", arr.data_type()),
        )
    })?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.ok_or_else(|| Error::input(file, Some(col), Some(first_row + i as u64), "null id"))
        })
        .collect()
}

/// A batch's column `name` as optional strings: a missing column (`missing` says what the file
/// should hold) or an unsupported type is an input error naming `path` and the column.
pub(crate) fn batch_strings(
    path: &Path,
    batch: &RecordBatch,
    name: &str,
    missing: &str,
) -> Result<Vec<Option<String>>> {
    let arr = batch
        .column_by_name(name)
        .ok_or_else(|| Error::input(path, Some(name), None, missing))?;
    label_strings(arr, path, name, 0)
}

fn label_strings(
    arr: &ArrayRef,
    file: &Path,
    col: &str,
    _first_row: u64,
) -> Result<Vec<Option<String>>> {
    scalar_strings(arr.as_ref()).ok_or_else(|| {
        Error::input(
            file,
            Some(col),
            None,
            format!("wrong column type {}", arr.data_type()),
        )
    })
}

struct EmbCtx<'a> {
    file: &'a Path,
    col: &'a str,
    first_row: u64,
}

impl EmbCtx<'_> {
    fn err(&self, row: usize, msg: impl Into<String>) -> Error {
        Error::input(
            self.file,
            Some(self.col),
            Some(self.first_row + row as u64),
            msg,
        )
    }
}

/// Row ranges of a list-like embedding array within its child values.
fn row_ranges(arr: &ArrayRef) -> Option<(Vec<(usize, usize)>, ArrayRef)> {
    match arr.data_type() {
        DataType::FixedSizeList(_, _) => {
            let a = arr.as_fixed_size_list();
            let len = a.value_length() as usize;
            Some((
                (0..a.len()).map(|i| (a.value_offset_at(i), len)).collect(),
                a.values().clone(),
            ))
        }
        DataType::List(_) => {
            let a = arr.as_list::<i32>();
            let o = a.value_offsets();
            Some((
                (0..a.len())
                    .map(|i| (o[i] as usize, (o[i + 1] - o[i]) as usize))
                    .collect(),
                a.values().clone(),
            ))
        }
        DataType::LargeList(_) => {
            let a = arr.as_list::<i64>();
            let o = a.value_offsets();
            Some((
                (0..a.len())
                    .map(|i| (o[i] as usize, (o[i + 1] - o[i]) as usize))
                    .collect(),
                a.values().clone(),
            ))
        }
        _ => None,
    }
}

/// Dimension of a batch's embeddings: the length of its first row (which must not be null).
fn embedding_dim(arr: &ArrayRef, ctx: &EmbCtx) -> Result<usize> {
    let (ranges, _) = row_ranges(arr)
        .ok_or_else(|| ctx.err(0, format!("wrong column type {}", arr.data_type())))?;
    let Some(&(_, len)) = ranges.first() else {
        return Err(ctx.err(0, "no rows"));
    };
    if arr.is_null(0) {
        return Err(ctx.err(0, "null embedding"));
    }
    if len == 0 {
        return Err(ctx.err(0, "empty embedding (0 values)"));
    }
    Ok(len)
}

/// Appends a batch's embeddings (any float width) to the matrix, validating every row.
fn append_embeddings(arr: &ArrayRef, d: usize, ctx: &EmbCtx, out: &mut Vec<f32>) -> Result<()> {
    let (ranges, values) = row_ranges(arr)
        .ok_or_else(|| ctx.err(0, format!("wrong column type {}", arr.data_type())))?;
    let nulls = values.logical_nulls();
    for (i, &(start, len)) in ranges.iter().enumerate() {
        if arr.is_null(i) {
            return Err(ctx.err(i, "null embedding"));
        }
        if len != d {
            return Err(ctx.err(
                i,
                format!("ragged embedding: {len} values, earlier rows have {d}"),
            ));
        }
        if let Some(nulls) = &nulls {
            if (start..start + len).any(|j| nulls.is_null(j)) {
                return Err(ctx.err(i, "null element inside the embedding"));
            }
        }
        let before = out.len();
        match values.data_type() {
            DataType::Float32 => out.extend_from_slice(
                &values.as_primitive::<Float32Type>().values()[start..start + len],
            ),
            DataType::Float64 => out.extend(
                values.as_primitive::<Float64Type>().values()[start..start + len]
                    .iter()
                    .map(|&x| x as f32),
            ),
            DataType::Float16 => out.extend(
                values.as_primitive::<Float16Type>().values()[start..start + len]
                    .iter()
                    .map(|x| x.to_f32()),
            ),
            other => return Err(ctx.err(i, format!("wrong element type {other}"))),
        }
        if let Some(j) = out[before..].iter().position(|x| !x.is_finite()) {
            return Err(ctx.err(
                i,
                format!("non-finite value {} at position {j}", out[before + j]),
            ));
        }
    }
    Ok(())
}

fn cell_supported(t: &DataType) -> bool {
    match t {
        DataType::Null
        | DataType::Boolean
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64 => true,
        DataType::Dictionary(_, v) => cell_supported(v),
        other => id_type_ok(other),
    }
}

/// One cell as plain text (empty for null), for CSV.
fn cell_text(arr: &dyn Array, i: usize) -> String {
    match cell_json(arr, i) {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// One cell as JSON: strings, numbers and booleans as themselves, null as null.
pub(crate) fn cell_json(arr: &dyn Array, i: usize) -> serde_json::Value {
    use serde_json::Value;
    if arr.is_null(i) {
        return Value::Null;
    }
    let num = |x: f64| {
        serde_json::Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    };
    match arr.data_type() {
        DataType::Boolean => Value::Bool(arr.as_boolean().value(i)),
        DataType::Float16 => num(arr.as_primitive::<Float16Type>().value(i).to_f64()),
        DataType::Float32 => num(arr.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => num(arr.as_primitive::<Float64Type>().value(i)),
        DataType::Int8 => arr.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => arr.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => arr.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => arr.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => arr.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => arr.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => arr.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => arr.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Utf8 => arr.as_string::<i32>().value(i).into(),
        DataType::LargeUtf8 => arr.as_string::<i64>().value(i).into(),
        DataType::Utf8View => arr.as_string_view().value(i).into(),
        DataType::Dictionary(_, _) => {
            let dict = arr.as_any_dictionary();
            let key = dict.normalized_keys()[i];
            cell_json(dict.values().as_ref(), key)
        }
        _ => Value::Null,
    }
}

/// Class names sorted, labels as indices into them: stable across rounds whatever the row order.
fn encode_labels(raw: &[Option<String>]) -> (Vec<Option<u32>>, Vec<String>) {
    let mut classes: Vec<String> = raw.iter().flatten().cloned().collect();
    classes.sort_unstable();
    classes.dedup();
    let index: HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let labels = raw.iter().map(|l| l.as_deref().map(|s| index[s])).collect();
    (labels, classes)
}
