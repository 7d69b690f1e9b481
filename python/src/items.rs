//! The output half of `plan` on the map route: items.parquet written in parts by map tasks
//! beside the pool's shards, and the picks' carried columns gathered from them, so the carried
//! columns (often the items' text) never reach the driver. The `items_part` and `carried_rows`
//! kernels are what those tasks run on one shard of the input.

use std::ops::Range;
use std::path::{Path, PathBuf};

use arrow_array::ffi_stream::RecordBatchStreamReader;
use arrow_array::{Array, RecordBatch};
use arrow_pyarrow::{FromPyArrow, PyArrowType, ToPyArrow};
use labelwise::cli;
use labelwise::data::dataset::{self, CarriedRows};
use labelwise::output::{id_array, round_files, write_parquet_file, OutDir};
use labelwise::round::Round;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::{detached, parse, u32s, Source};

/// A Python failure while writing the cluster's outputs, as the library's error.
fn lib_err(e: PyErr) -> labelwise::Error {
    labelwise::Error::Internal(format!("the cluster's outputs: {e}"))
}

/// Where the driver's round hands its per-item output to the cluster: `provider` (see
/// `labelwise.distributed._ClusterRows`) runs the map tasks.
pub struct ClusterOutput {
    provider: Py<PyAny>,
}

impl ClusterOutput {
    /// Output through `provider`'s `part_starts`, `write_items_part`, `items_written` and
    /// `carried_rows` methods.
    pub fn new(provider: Py<PyAny>) -> ClusterOutput {
        ClusterOutput { provider }
    }

    /// The carried columns of the batch's picks, in rank order, read by map tasks from the
    /// shards holding them (none when selection did not run).
    pub fn picked_carried(&self, round: &Round) -> labelwise::Result<CarriedRows> {
        let Some(sel) = &round.selection else {
            return Ok(CarriedRows::default());
        };
        let ids: Vec<u8> = sel
            .picked
            .iter()
            .flat_map(|&i| u64::from(i).to_le_bytes())
            .collect();
        let batch = Python::attach(|py| {
            let answer = self
                .provider
                .bind(py)
                .call_method1("carried_rows", (PyBytes::new(py, &ids),))?;
            RecordBatch::from_pyarrow_bound(&answer)
        })
        .map_err(lib_err)?;
        if batch.num_rows() != sel.picked.len() {
            return Err(labelwise::Error::Internal(format!(
                "carried_rows: {} rows for {} picks",
                batch.num_rows(),
                sel.picked.len()
            )));
        }
        Ok(CarriedRows::from_batch(&batch))
    }

    /// items.parquet as a folder of parts, one per input shard: the driver builds each part's
    /// own columns in turn and a map task joins the shard's carried columns and writes it.
    pub fn write_items(&self, round: &Round, out: &OutDir) -> labelwise::Result<PathBuf> {
        let n = round.data().len();
        out.write_parts("items.parquet", |dir| {
            let starts: Vec<usize> = Python::attach(|py| {
                self.provider
                    .bind(py)
                    .call_method0("part_starts")?
                    .extract()
            })
            .map_err(lib_err)?;
            for (index, rows) in part_ranges(&starts, n)?.into_iter().enumerate() {
                let own = round_files::items_own_columns(round, rows)?;
                Python::attach(|py| {
                    let args = (dir.to_path_buf(), index, own.to_pyarrow(py)?);
                    self.provider
                        .bind(py)
                        .call_method1("write_items_part", args)
                        .map(drop)
                })
                .map_err(lib_err)?;
            }
            Python::attach(|py| {
                self.provider
                    .bind(py)
                    .call_method0("items_written")
                    .map(drop)
            })
            .map_err(lib_err)
        })
    }
}

/// The row ranges of parts starting at `starts` (ascending, the first 0) in a pool of `n`.
fn part_ranges(starts: &[usize], n: usize) -> labelwise::Result<Vec<Range<usize>>> {
    let ordered = starts.first() == Some(&0)
        && starts.windows(2).all(|w| w[0] < w[1])
        && starts.last().is_some_and(|&s| s < n);
    if !ordered {
        return Err(labelwise::Error::Internal(format!(
            "part_starts {starts:?} do not cut a pool of {n} rows"
        )));
    }
    let ends = starts.iter().skip(1).copied().chain([n]);
    Ok(starts.iter().zip(ends).map(|(&s, e)| s..e).collect())
}

/// One input shard as the driver's `plan` reads it (`argv`: plan's), its carried columns kept
/// and its embeddings skipped (the normalise stage checked them).
fn load_shard(
    argv: &[String],
    data: PyArrowType<RecordBatchStreamReader>,
    source_name: &str,
) -> PyResult<(dataset::LoadOptions, Source)> {
    let args: cli::plan::Cmd = parse("plan", argv)?;
    let mut opts = args.input.load_options(true);
    opts.read_embeddings = false;
    // Annotators' labels change no carried column, and name ids of the whole pool.
    opts.labels_file = None;
    Ok((opts, Source::from_py(Some(data), source_name)?))
}

/// `items_part(argv, data, source_name, own, path)`: writes one part of items.parquet at
/// `path`: `own` (the driver's columns for the shard's rows, `id` first) followed by the
/// shard's carried columns, read from `data` (the shard's input rows as an Arrow stream) as
/// the single-machine `plan` reads them. Returns the rows written.
#[pyfunction]
pub fn items_part(
    py: Python<'_>,
    argv: Vec<String>,
    data: PyArrowType<RecordBatchStreamReader>,
    source_name: &str,
    own: PyArrowType<RecordBatch>,
    path: PathBuf,
) -> PyResult<usize> {
    let (opts, source) = load_shard(&argv, data, source_name)?;
    let own = own.0;
    detached(py, Some(1), None, |_| {
        let shard = source.load(&opts)?;
        check_same_ids(&own, &shard, &path)?;
        let part = round_files::with_carried(own, &shard)?;
        write_parquet_file(&path, &part)?;
        Ok(part.num_rows())
    })
}

/// The driver's part and the shard must be the same items in the same order.
fn check_same_ids(
    own: &RecordBatch,
    shard: &dataset::Dataset,
    path: &Path,
) -> labelwise::Result<()> {
    let ids = id_array(shard, 0..shard.len());
    match own.column_by_name("id") {
        Some(mine) if mine.to_data() == ids.to_data() => Ok(()),
        _ => Err(labelwise::Error::Internal(format!(
            "{}: the driver's rows are not the shard's items",
            path.display()
        ))),
    }
}

/// `carried_rows(argv, data, source_name, rows)`: the carried columns of the shard rows `rows`
/// (u32 bytes, in the order wanted) as one record batch, read as in [`items_part`].
#[pyfunction]
pub fn carried_rows(
    py: Python<'_>,
    argv: Vec<String>,
    data: PyArrowType<RecordBatchStreamReader>,
    source_name: &str,
    rows: &[u8],
) -> PyResult<PyArrowType<RecordBatch>> {
    let (opts, source) = load_shard(&argv, data, source_name)?;
    let rows = u32s(rows, "carried_rows")?;
    let picked = detached(py, Some(1), None, |_| {
        let shard = source.load(&opts)?;
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= shard.len()) {
            return Err(labelwise::Error::Internal(format!(
                "carried_rows: row {bad} of a shard of {}",
                shard.len()
            )));
        }
        shard.carried_rows(&rows)?.into_batch()
    })?;
    Ok(PyArrowType(picked))
}
