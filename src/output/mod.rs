//! Writing a run's results into `--out`: every file lands atomically through
//! `store::atomic` (temp file in the same folder, then rename), so a killed run never leaves a
//! partial file where a finished one is expected.

pub mod csv;
pub mod export;
pub mod report;
pub mod round_files;
pub mod summary;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;

use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::store::atomic::{remove_stale_temps, temp_dir_in, write_atomic};

/// Every file a labelwise command writes into `--out` (SPEC.md), `summary.json` first: the
/// names a new run clears before writing its own.
pub const RUN_OUTPUTS: &[&str] = &[
    "summary.json",
    "items.parquet",
    "duplicate_pairs.parquet",
    "autolabels.parquet",
    "autolabels.csv",
    "autolabels.jsonl",
    "batch.csv",
    "budget.csv",
    "curve.csv",
    "selections.csv",
    "split.csv",
    "report.html",
    "rules.csv",
    "rule_votes.parquet",
    "rule_disagreements.csv",
    "tasks.json",
    "manifest.jsonl",
    "prodigy.jsonl",
    "items.jsonl",
    "items.csv",
];

/// The `--out` folder. Files are staged next to their final name and renamed into place.
#[derive(Debug, Clone)]
pub struct OutDir {
    path: PathBuf,
}

impl OutDir {
    /// Creates the folder (and parents) if needed, and removes temporaries an interrupted run
    /// left in it (see [`remove_stale_temps`]), so the folder holds finished files only.
    ///
    /// The previous run's results ([`RUN_OUTPUTS`]) are removed too, `summary.json` first:
    /// every command writes `summary.json` last, so a folder holding it holds one complete run,
    /// and a run killed while writing over an earlier one never leaves files of both side by
    /// side. Commands call this only after their computation succeeded, so a failing run leaves
    /// the earlier results in place.
    pub fn create(path: &Path) -> Result<OutDir> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        remove_stale_temps(path, None);
        for name in RUN_OUTPUTS {
            remove_output(&path.join(name))?;
        }
        Ok(OutDir {
            path: path.to_path_buf(),
        })
    }

    /// Writes `name` as a folder of Parquet parts (a sharded table, read whole by pyarrow,
    /// polars, Spark and `labelwise export`): `fill` writes the parts into a staging folder
    /// beside it, which is renamed into place once every part is there.
    pub fn write_parts(
        &self,
        name: &str,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<PathBuf> {
        let staging = temp_dir_in(&self.path)?;
        fill(staging.path())?;
        let target = self.path.join(name);
        remove_output(&target)?;
        let staged = staging.keep();
        std::fs::rename(&staged, &target).map_err(|e| Error::io(&target, e))?;
        Ok(target)
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` atomically: `write` fills a temp file, which is synced and renamed.
    pub fn write_with(
        &self,
        name: &str,
        write: impl FnOnce(&mut BufWriter<&File>) -> Result<()>,
    ) -> Result<PathBuf> {
        write_atomic(&self.path.join(name), write)
    }

    /// Writes a serializable value as pretty JSON with a trailing newline.
    pub fn write_json<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<PathBuf> {
        self.write_with(name, |w| {
            serde_json::to_writer_pretty(&mut *w, value)
                .map_err(Error::internal(&format!("serializing {name}")))?;
            w.write_all(b"\n").map_err(|e| Error::io(name, e))
        })
    }

    /// Writes a CSV file: `header`, then one line per row (see [`csv::write_csv`]).
    pub fn write_csv<H, R>(
        &self,
        name: &str,
        header: H,
        rows: impl IntoIterator<Item = R>,
    ) -> Result<PathBuf>
    where
        H: IntoIterator,
        H::Item: AsRef<[u8]>,
        R: IntoIterator,
        R::Item: AsRef<[u8]>,
    {
        self.write_with(name, |w| csv::write_csv(w, Path::new(name), header, rows))
    }

    /// Writes one record batch as a zstd-compressed Parquet file.
    pub fn write_parquet(&self, name: &str, batch: &RecordBatch) -> Result<PathBuf> {
        write_parquet_file(&self.path.join(name), batch)
    }

    /// Writes a Parquet file of `n` rows built a chunk at a time (see [`write_parquet_rows`]).
    pub fn write_parquet_rows(
        &self,
        name: &str,
        n: usize,
        rows: impl Fn(Range<usize>) -> Result<RecordBatch>,
    ) -> Result<PathBuf> {
        write_parquet_rows(&self.path.join(name), n, rows)
    }
}

/// Writes one record batch as a zstd-compressed Parquet file at `path`, atomically: every
/// Parquet output (and each part of a sharded one) is written this way.
pub fn write_parquet_file(path: &Path, batch: &RecordBatch) -> Result<PathBuf> {
    write_parquet_chunks(path, batch.schema(), std::iter::once(Ok(batch.clone())))
}

/// Rows per chunk of a Parquet output built chunk by chunk ([`write_parquet_rows`]): a
/// multiple of the writer's 1,024-row mini-batches and a divisor of its 1,048,576-row row
/// groups, so the file is byte for byte the one a single batch would give.
const PARQUET_CHUNK_ROWS: usize = 65_536;

/// Ranges of `PARQUET_CHUNK_ROWS` covering `0..n`; one empty range when `n` is 0, so an
/// empty output is still written with its schema.
fn chunk_ranges(n: usize) -> impl Iterator<Item = Range<usize>> {
    (0..n.max(1))
        .step_by(PARQUET_CHUNK_ROWS)
        .map(move |start| start.min(n)..(start + PARQUET_CHUNK_ROWS).min(n))
}

/// [`write_parquet_file`] for a table of `n` rows that `rows` builds a range at a time (the
/// empty range gives the schema): a file of tens of millions of rows (the duplicate pairs, the
/// auto-labels) is never one table in memory, and its bytes are the one-batch file's.
pub fn write_parquet_rows(
    path: &Path,
    n: usize,
    rows: impl Fn(Range<usize>) -> Result<RecordBatch>,
) -> Result<PathBuf> {
    let schema = rows(0..0)?.schema();
    write_parquet_chunks(path, schema, chunk_ranges(n).map(rows))
}

/// Writes `chunks` (each with `schema`) as one zstd-compressed Parquet file, atomically.
fn write_parquet_chunks(
    path: &Path,
    schema: SchemaRef,
    chunks: impl IntoIterator<Item = Result<RecordBatch>>,
) -> Result<PathBuf> {
    let name = path.display().to_string();
    write_atomic(path, |w| -> Result<()> {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_created_by(format!("labelwise {}", env!("CARGO_PKG_VERSION")))
            .build();
        let mut writer = ArrowWriter::try_new(&mut *w, schema, Some(props))
            .map_err(Error::internal(&format!("writing {name}")))?;
        for chunk in chunks {
            writer
                .write(&chunk?)
                .map_err(Error::internal(&format!("writing {name}")))?;
        }
        writer
            .close()
            .map_err(Error::internal(&format!("writing {name}")))?;
        Ok(())
    })
}

/// Removes an earlier run's output, a file or a folder of parts; absent is fine.
fn remove_output(path: &Path) -> Result<()> {
    let gone = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match gone {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Ids of the given rows, typed like the input ids (Int64 or Utf8), for output tables.
pub fn id_array(data: &Dataset, rows: impl Iterator<Item = usize>) -> ArrayRef {
    if data.ids_are_integers {
        Arc::new(Int64Array::from_iter_values(
            rows.map(|r| data.ids[r].parse::<i64>().unwrap_or_default()),
        ))
    } else {
        Arc::new(StringArray::from_iter_values(rows.map(|r| &data.ids[r])))
    }
}

/// Columns for `items.parquet`, one row per item in input order; commands add what they know.
#[derive(Debug, Default)]
pub struct ItemsTable {
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
}

impl ItemsTable {
    /// Starts the table with the `id` column, typed like the input ids (Int64 or Utf8).
    pub fn new(data: &Dataset) -> ItemsTable {
        ItemsTable::for_rows(data, 0..data.len())
    }

    /// [`ItemsTable::new`] for the items `rows` only: one part of a sharded items.parquet.
    pub fn for_rows(data: &Dataset, rows: Range<usize>) -> ItemsTable {
        let mut t = ItemsTable::default();
        t.push("id", id_array(data, rows), false);
        t
    }

    /// Adds a column; `nullable` must match whether the array holds nulls.
    pub fn push(&mut self, name: &str, array: ArrayRef, nullable: bool) {
        let data_type: DataType = array.data_type().clone();
        self.fields.push(Field::new(name, data_type, nullable));
        self.columns.push(array);
    }

    /// Adds a column with its own field (carried columns keep their metadata and nullability).
    pub fn push_field(&mut self, field: Field, array: ArrayRef) {
        self.fields.push(field);
        self.columns.push(array);
    }

    /// Names of the columns so far.
    pub fn names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name().clone()).collect()
    }

    /// The finished record batch.
    pub fn finish(self) -> Result<RecordBatch> {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.columns)
            .map_err(Error::internal("items table"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::atomic::*;

    fn temps(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_temp_name(n))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn chunk_ranges_cover_every_row_once_and_an_empty_table_once() {
        let n = 2 * PARQUET_CHUNK_ROWS + 7;
        let r: Vec<Range<usize>> = chunk_ranges(n).collect();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], 0..PARQUET_CHUNK_ROWS);
        assert_eq!(r[2], 2 * PARQUET_CHUNK_ROWS..n);
        assert_eq!(chunk_ranges(0).collect::<Vec<_>>(), vec![0..0]);
    }

    /// Writing chunk by chunk must not change a byte: users' pipelines hash these files, and
    /// one machine's files must equal a cluster's. The table spans two row groups
    /// (1,048,576 rows each), pages of strings and a dictionary that falls back to plain.
    #[test]
    fn a_parquet_file_written_in_chunks_is_the_one_batch_file() {
        let n = (1 << 20) + 3 * PARQUET_CHUNK_ROWS + 11;
        let ids = StringArray::from_iter_values((0..n).map(|i| format!("item-{}", i * 7919 % n)));
        let x = Int64Array::from_iter_values((0..n as i64).map(|i| i % 1000));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("x", DataType::Int64, false),
        ]));
        let whole = RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(x)]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let one = write_parquet_file(&dir.path().join("one.parquet"), &whole).unwrap();
        let rows = |r: Range<usize>| Ok(whole.slice(r.start, r.len()));
        let parts = write_parquet_rows(&dir.path().join("parts.parquet"), n, rows).unwrap();
        assert_eq!(std::fs::read(one).unwrap(), std::fs::read(parts).unwrap());
    }

    #[test]
    fn out_dir_creation_cleans_and_writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(".labelwise-abc123.tmp"), b"half a parq").unwrap();
        let o = OutDir::create(&out).unwrap();
        if cfg!(unix) {
            assert!(temps(&out).is_empty());
        }
        o.write_json("a.json", &serde_json::json!({"x": 1}))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("a.json")).unwrap(),
            "{\n  \"x\": 1\n}\n"
        );
        assert!(temps(&out).is_empty());
        assert!(!is_temp_name(".labelwise-.tmp"));
    }
}
