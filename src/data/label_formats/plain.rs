//! Our own labels file: CSV or Parquet with `id,label` (`lw_id` preferred over `id` when both
//! are there), optionally `annotator`. Several rows for one id are several votes.

use std::fs::File;
use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Annotations, Collector, Format};
use crate::data::dataset::{batch_strings, decoding_at};
use crate::error::{Error, Result};

fn id_column<'a>(path: &Path, names: impl Iterator<Item = &'a str> + Clone) -> Result<&'a str> {
    names
        .clone()
        .find(|h| *h == "lw_id")
        .or_else(|| names.clone().find(|h| *h == "id"))
        .ok_or_else(|| {
            Error::input(
                path,
                Some("id"),
                None,
                "missing column (a labels file needs a header row with id,label)",
            )
        })
}

pub(super) fn read_csv(
    path: &Path,
    headers: &[String],
    rows: Vec<Vec<String>>,
) -> Result<Annotations> {
    let id_name = id_column(path, headers.iter().map(String::as_str))?.to_string();
    let position = |name: &str| headers.iter().position(|h| h == name);
    let id_at = position(&id_name).expect("found above");
    let label_at = position("label").ok_or_else(|| {
        Error::input(
            path,
            Some("label"),
            None,
            "missing column (a labels file needs a header row with id,label)",
        )
    })?;
    let annotator_at = position("annotator");
    let mut c = Collector::default();
    let records = rows.len() as u64;
    for (row, cells) in rows.into_iter().enumerate() {
        let cell = |at: usize| cells.get(at).map(String::as_str).unwrap_or("");
        let id = cell(id_at);
        if id.is_empty() {
            return Err(Error::input(
                path,
                Some(&id_name),
                Some(row as u64),
                "empty id",
            ));
        }
        let annotator = annotator_at
            .map(cell)
            .filter(|a| !a.is_empty())
            .map(str::to_string);
        c.vote(id, annotator, cell(label_at).to_string());
    }
    Ok(c.finish(path, Format::IdLabelCsv, id_name, None, records))
}

pub(super) fn read_parquet(path: &Path) -> Result<Annotations> {
    let file = File::open(path).map_err(|e| Error::input(path, None, None, e.to_string()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        Error::input(
            path,
            None,
            None,
            format!("not a Parquet file, or truncated ({e})"),
        )
    })?;
    let schema = builder.schema().clone();
    let id_name = id_column(path, schema.fields().iter().map(|f| f.name().as_str()))?.to_string();
    if schema.field_with_name("label").is_err() {
        return Err(Error::input(path, Some("label"), None, "missing column"));
    }
    let has_annotator = schema.field_with_name("annotator").is_ok();
    let reader = builder
        .build()
        .map_err(|e| Error::input(path, None, None, format!("cannot read Parquet: {e}")))?;
    let mut c = Collector::default();
    let mut row = 0u64;
    for batch in reader {
        decoding_at(path, row);
        let batch = batch.map_err(|e| {
            Error::input(
                path,
                None,
                Some(row),
                format!("unreadable or truncated Parquet data: {e}"),
            )
        })?;
        let ids = strings(path, &batch, &id_name)?;
        let labels = strings(path, &batch, "label")?;
        let annotators = if has_annotator {
            Some(strings(path, &batch, "annotator")?)
        } else {
            None
        };
        for (i, (id, label)) in ids.into_iter().zip(labels).enumerate() {
            let Some(id) = id.filter(|s| !s.is_empty()) else {
                return Err(Error::input(
                    path,
                    Some(&id_name),
                    Some(row + i as u64),
                    "null id",
                ));
            };
            let annotator = annotators.as_ref().and_then(|a| a[i].clone());
            c.vote(&id, annotator, label.unwrap_or_default());
        }
        row += batch.num_rows() as u64;
    }
    Ok(c.finish(path, Format::IdLabelParquet, id_name, None, row))
}

fn strings(path: &Path, batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    batch_strings(path, batch, name, "missing column")
}
