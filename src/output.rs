//! Writing results: every file lands atomically (temp file in the same folder, then rename), so
//! a killed run never leaves a partial file where a finished one is expected.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// The `--out` folder. Files are staged next to their final name and renamed into place.
#[derive(Debug, Clone)]
pub struct OutDir {
    path: PathBuf,
}

impl OutDir {
    /// Creates the folder (and parents) if needed.
    pub fn create(path: &Path) -> Result<OutDir> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        Ok(OutDir {
            path: path.to_path_buf(),
        })
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
                .map_err(|e| Error::Internal(format!("serializing {name}: {e}")))?;
            w.write_all(b"\n").map_err(|e| Error::io(name, e))
        })
    }

    /// Writes one record batch as a zstd-compressed Parquet file.
    pub fn write_parquet(&self, name: &str, batch: &RecordBatch) -> Result<PathBuf> {
        self.write_with(name, |w| {
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .set_created_by(format!("labelwise {}", env!("CARGO_PKG_VERSION")))
                .build();
            let mut writer = ArrowWriter::try_new(&mut *w, batch.schema(), Some(props))
                .map_err(|e| Error::Internal(format!("writing {name}: {e}")))?;
            writer
                .write(batch)
                .map_err(|e| Error::Internal(format!("writing {name}: {e}")))?;
            writer
                .close()
                .map_err(|e| Error::Internal(format!("writing {name}: {e}")))?;
            Ok(())
        })
    }
}

/// Stages `path` in a temp file beside it, then syncs and renames: readers see all or nothing.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> Result<()>,
) -> Result<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".labelwise-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        write(&mut w)?;
        w.flush().map_err(|e| Error::io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    // Temp files are created 0600; results are ordinary files others may read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(path, e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(path.to_path_buf())
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
        let mut t = ItemsTable::default();
        let ids: ArrayRef = if data.ids_are_integers {
            Arc::new(Int64Array::from_iter_values(
                data.ids
                    .iter()
                    .map(|s| s.parse::<i64>().unwrap_or_default()),
            ))
        } else {
            Arc::new(StringArray::from_iter_values(data.ids.iter()))
        };
        t.push("id", ids, false);
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
            .map_err(|e| Error::Internal(format!("items table: {e}")))
    }
}
