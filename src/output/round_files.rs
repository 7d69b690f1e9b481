//! The files a round leaves: items.parquet, duplicate_pairs.parquet, autolabels (Parquet, CSV,
//! JSON Lines), batch.csv and budget.csv, each from what the round computed; a stage that did
//! not run writes nothing.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    UInt32Array,
};
use arrow_schema::{DataType, Field, Schema};
use serde_json::{json, Value};

use crate::data::dataset::{CarriedRows, Dataset};
use crate::error::{Error, Result};
use crate::output::{id_array, ItemsTable, OutDir};
use crate::round::autolabel::{AutolabelResult, Route, Source};
use crate::round::dedup::Duplicates;
use crate::round::{rarity, route_name, Round};

/// Extra formats for autolabels beside autolabels.parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutolabelFormat {
    /// Parquet, for pipelines.
    Parquet,
    /// CSV, for spreadsheets and labeling tools.
    Csv,
    /// JSON lines, for streaming into other tools.
    Jsonl,
}

/// Adds `dup_group` and `dup_representative` of the items `rows` to items.parquet.
pub fn add_duplicate_columns(d: &Duplicates, items: &mut ItemsTable, rows: Range<usize>) {
    items.push(
        "dup_group",
        Arc::new(Int64Array::from(d.groups.group[rows.clone()].to_vec())),
        false,
    );
    items.push(
        "dup_representative",
        Arc::new(BooleanArray::from(d.groups.representative[rows].to_vec())),
        false,
    );
}

/// The near-duplicate pairs as a table: `id_a`, `id_b` (typed like the input ids), `cosine`;
/// each pair once, `id_a` first in input order.
pub fn pairs_table(d: &Duplicates, data: &Dataset) -> Result<RecordBatch> {
    pairs_rows(d, data, 0..d.pairs.len())
}

/// [`pairs_table`]'s rows `range` (the file is written a chunk at a time).
fn pairs_rows(d: &Duplicates, data: &Dataset, range: Range<usize>) -> Result<RecordBatch> {
    let pairs = &d.pairs[range];
    let ids_a = id_array(data, pairs.iter().map(|p| p.a as usize));
    let ids_b = id_array(data, pairs.iter().map(|p| p.b as usize));
    let id_type: DataType = ids_a.data_type().clone();
    let schema = Schema::new(vec![
        Field::new("id_a", id_type.clone(), false),
        Field::new("id_b", id_type, false),
        Field::new("cosine", DataType::Float64, false),
    ]);
    let cos = Arc::new(Float64Array::from_iter_values(
        pairs.iter().map(|p| p.cosine),
    ));
    RecordBatch::try_new(Arc::new(schema), vec![ids_a, ids_b, cos])
        .map_err(Error::internal("pairs table"))
}

/// Writes duplicate_pairs.parquet ([`pairs_table`]) a chunk at a time: a pool of 10⁸ items
/// can have more pairs than items, and their ids are not held as one table.
pub fn write_pairs(d: &Duplicates, data: &Dataset, out: &OutDir) -> Result<()> {
    out.write_parquet_rows("duplicate_pairs.parquet", d.pairs.len(), |r| {
        pairs_rows(d, data, r)
    })?;
    Ok(())
}

/// duplicate_pairs.parquet, when duplicates were searched.
pub fn write_duplicates(round: &Round, out: &OutDir) -> Result<()> {
    match &round.duplicates {
        Some(d) => write_pairs(d, round.data(), out),
        None => Ok(()),
    }
}

/// The budget projection as a table (budget.csv's columns, typed: `added_labels` and
/// `total_labels` Int64, the rest Float64, projections null where there is no fit); `None`
/// when the budget stage did not run.
pub fn budget_table(round: &Round) -> Result<Option<RecordBatch>> {
    let Some(b) = &round.budget else {
        return Ok(None);
    };
    let p = &b.projection;
    let int = |f: fn(&crate::round::budget::ProjectionRow) -> usize| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(p.iter().map(|r| f(r) as i64)))
    };
    let opt = |f: fn(&crate::round::budget::ProjectionRow) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from(p.iter().map(f).collect::<Vec<_>>()))
    };
    let float = |f: fn(&crate::round::budget::ProjectionRow) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(p.iter().map(f)))
    };
    let schema = Schema::new(vec![
        Field::new("added_labels", DataType::Int64, false),
        Field::new("total_labels", DataType::Int64, false),
        Field::new("projected_accuracy", DataType::Float64, true),
        Field::new("projected_auto_coverage", DataType::Float64, true),
        Field::new("hours", DataType::Float64, false),
        Field::new("cost", DataType::Float64, false),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            int(|r| r.added_labels),
            int(|r| r.total_labels),
            opt(|r| r.projected_accuracy),
            opt(|r| r.projected_auto_coverage),
            float(|r| r.hours),
            float(|r| r.cost),
        ],
    )
    .map(Some)
    .map_err(Error::internal("budget table"))
}

/// budget.csv: the projection table.
pub fn write_budget(round: &Round, out: &OutDir) -> Result<()> {
    let Some(b) = &round.budget else {
        return Ok(());
    };
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_default();
    out.write_csv(
        "budget.csv",
        [
            "added_labels",
            "total_labels",
            "projected_accuracy",
            "accuracy_low",
            "accuracy_high",
            "projected_auto_coverage",
            "coverage_low",
            "coverage_high",
            "verifications",
            "hours",
            "cost",
        ],
        b.projection.iter().map(|r| {
            [
                r.added_labels.to_string(),
                r.total_labels.to_string(),
                opt(r.projected_accuracy),
                opt(r.accuracy_low),
                opt(r.accuracy_high),
                opt(r.projected_auto_coverage),
                opt(r.coverage_low),
                opt(r.coverage_high),
                r.verifications.to_string(),
                format!("{:.2}", r.hours),
                format!("{:.2}", r.cost),
            ]
        }),
    )?;
    Ok(())
}

/// Reasons of the items `rows`: the batch's own reasons for picked items, rarity reasons
/// otherwise.
fn reasons(round: &Round, rows: Range<usize>) -> Vec<String> {
    let mut reasons: Vec<String> = match &round.rarity {
        Some(r) => r.reasons[rows.clone()]
            .iter()
            .map(|&f| rarity::reason_names(f).join(";"))
            .collect(),
        None => vec![String::new(); rows.len()],
    };
    if let Some(sel) = &round.selection {
        for (rank, &i) in sel.picked.iter().enumerate() {
            if rows.contains(&(i as usize)) {
                reasons[i as usize - rows.start] = sel.reasons[rank].clone();
            }
        }
    }
    if let Some(rules) = &round.rules {
        for (i, r) in rows.clone().zip(reasons.iter_mut()) {
            for k in rules.votes.fired_on(i) {
                if !r.is_empty() {
                    r.push(';');
                }
                r.push_str("rule:");
                r.push_str(&rules.names[k]);
            }
        }
    }
    reasons
}

/// The carried columns of the batch's picks, in rank order (none when selection did not run).
pub fn picked_carried(round: &Round) -> Result<CarriedRows> {
    match &round.selection {
        Some(sel) => round.data().carried_rows(&sel.picked),
        None => Ok(CarriedRows::default()),
    }
}

/// The batch as a table: `rank` (Int64, 1 = label first), `id` (typed like the input ids),
/// `score` (Float32), `reasons`, `propensity` (Float64), then the picks' carried columns
/// (`carried`, in rank order: [`picked_carried`]) with their own types; `None` when selection
/// did not run. batch.csv holds the same rows.
pub fn batch_table(round: &Round, carried: &CarriedRows) -> Result<Option<RecordBatch>> {
    let Some(sel) = &round.selection else {
        return Ok(None);
    };
    let data = round.data();
    let rows: Vec<usize> = sel.picked.iter().map(|&i| i as usize).collect();
    let ids = id_array(data, rows.iter().copied());
    let mut fields = vec![
        Field::new("rank", DataType::Int64, false),
        Field::new("id", ids.data_type().clone(), false),
        Field::new("score", DataType::Float32, false),
        Field::new("reasons", DataType::Utf8, false),
        Field::new("propensity", DataType::Float64, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(1..=rows.len() as i64)),
        ids,
        Arc::new(Float32Array::from(sel.score.clone())),
        Arc::new(StringArray::from_iter_values(sel.reasons.iter())),
        Arc::new(Float64Array::from(sel.propensity.clone())),
    ];
    for (field, column) in carried.fields.iter().zip(&carried.columns) {
        fields.push(field.as_ref().clone().with_nullable(true));
        columns.push(column.clone());
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map(Some)
        .map_err(Error::internal("batch table"))
}

/// batch.csv: rank, id, score, reasons, propensity (the chance the pick was drawn: 1 for the
/// strategy's picks, below 1 for audits), then the picks' carried columns ([`picked_carried`]).
pub fn write_batch(round: &Round, out: &OutDir, carried: &CarriedRows) -> Result<()> {
    let Some(sel) = &round.selection else {
        return Ok(());
    };
    let data = round.data();
    let mut header = vec![
        "rank".to_string(),
        "id".into(),
        "score".into(),
        "reasons".into(),
        "propensity".into(),
    ];
    header.extend(carried.fields.iter().map(|f| f.name().clone()));
    let rows = sel.picked.iter().enumerate().map(|(rank, &i)| {
        let i = i as usize;
        let mut row = vec![
            (rank + 1).to_string(),
            data.ids[i].clone(),
            format!("{:.6}", sel.score[rank]),
            sel.reasons[rank].clone(),
            format!("{}", sel.propensity[rank]),
        ];
        row.extend((0..carried.columns.len()).map(|c| carried.text(c, rank)));
        row
    });
    out.write_csv("batch.csv", &header, rows)?;
    Ok(())
}

/// items.parquet: id, the given label, every stage's columns, then the carried columns.
pub fn items_table(round: &Round) -> Result<RecordBatch> {
    with_carried(
        items_own_columns(round, 0..round.data().len())?,
        round.data(),
    )
}

/// items.parquet's rows `rows` without the carried columns: one part of a sharded items.parquet,
/// whose carried columns are joined where the pool's shard is ([`with_carried`]).
pub fn items_own_columns(round: &Round, rows: Range<usize>) -> Result<RecordBatch> {
    let data = round.data();
    let mut items = ItemsTable::for_rows(data, rows.clone());
    let class_names = |v: &[Option<u32>]| -> ArrayRef {
        Arc::new(StringArray::from(
            v.iter()
                .map(|l| l.map(|c| data.classes[c as usize].as_str()))
                .collect::<Vec<_>>(),
        ))
    };
    items.push("label", class_names(&data.labels[rows.clone()]), true);
    if let Some(d) = &round.duplicates {
        add_duplicate_columns(d, &mut items, rows.clone());
    }
    if let Some(a) = &round.autolabel {
        items.push(
            "predicted_label",
            class_names(&a.predicted[rows.clone()]),
            true,
        );
        items.push(
            "confidence",
            Arc::new(Float32Array::from(a.confidence[rows.clone()].to_vec())),
            false,
        );
        items.push(
            "route",
            Arc::new(StringArray::from_iter_values(
                a.route[rows.clone()].iter().map(|r| route_name(*r)),
            )),
            false,
        );
    }
    if let Some(r) = &round.rarity {
        items.push(
            "rarity",
            Arc::new(Float32Array::from(r.rarity[rows.clone()].to_vec())),
            false,
        );
        items.push(
            "cluster",
            Arc::new(UInt32Array::from(r.cluster[rows.clone()].to_vec())),
            false,
        );
    }
    if let Some(sel) = &round.selection {
        items.push(
            "priority",
            Arc::new(Int64Array::from_iter(
                sel.priority[rows.clone()].iter().map(|p| p.map(i64::from)),
            )),
            true,
        );
    }
    if round.rarity.is_some() || round.selection.is_some() || round.rules.is_some() {
        items.push(
            "reasons",
            Arc::new(StringArray::from_iter_values(reasons(round, rows))),
            false,
        );
    }
    items.finish()
}

/// `own` (items.parquet's own columns of some rows) followed by `data`'s carried columns of
/// the same rows, a carried column whose name labelwise writes itself left out.
pub fn with_carried(own: RecordBatch, data: &Dataset) -> Result<RecordBatch> {
    if own.num_rows() != data.len() {
        return Err(Error::Internal(format!(
            "items: {} rows of own columns against {} carried",
            own.num_rows(),
            data.len()
        )));
    }
    let schema = own.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns = own.columns().to_vec();
    for (c, col) in data.carried.iter().enumerate() {
        if schema.field_with_name(col.field.name()).is_ok() {
            continue;
        }
        fields.push(col.field.as_ref().clone());
        columns.push(concat_chunks(data, c)?);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(Error::internal("items table"))
}

/// The auto-labels as a table: `id` (typed like the input ids), `label`, `confidence`,
/// `source` (`model` or `duplicate`), one row per item routed auto or duplicate, in input
/// order; `None` when auto-labeling did not run.
pub fn autolabels_table(round: &Round) -> Result<Option<RecordBatch>> {
    match &round.autolabel {
        Some(a) => autolabels_of(round.data(), a, &autolabel_rows(round)).map(Some),
        None => Ok(None),
    }
}

/// [`autolabels_table`]'s rows for the items `rows`.
fn autolabels_of(data: &Dataset, a: &AutolabelResult, rows: &[usize]) -> Result<RecordBatch> {
    let label = |i: usize| data.classes[a.predicted[i].unwrap_or(0) as usize].as_str();
    let ids = id_array(data, rows.iter().copied());
    let schema = Schema::new(vec![
        Field::new("id", ids.data_type().clone(), false),
        Field::new("label", DataType::Utf8, false),
        Field::new("confidence", DataType::Float32, false),
        Field::new("source", DataType::Utf8, false),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            ids,
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|&i| label(i)),
            )),
            Arc::new(Float32Array::from_iter_values(
                rows.iter().map(|&i| a.confidence[i]),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|&i| source_name(a.source[i])),
            )),
        ],
    )
    .map_err(Error::internal("autolabels table"))
}

/// Rows routed auto or duplicate, in input order (none when auto-labeling did not run).
fn autolabel_rows(round: &Round) -> Vec<usize> {
    match &round.autolabel {
        Some(a) => (0..round.data().len())
            .filter(|&i| matches!(a.route[i], Route::Auto | Route::Duplicate))
            .collect(),
        None => Vec::new(),
    }
}

/// An auto-label's source as written in outputs.
fn source_name(source: Source) -> &'static str {
    match source {
        Source::Duplicate => "duplicate",
        Source::Rules => "rules",
        _ => "model",
    }
}

/// autolabels.parquet ([`autolabels_table`]) (+ csv/jsonl): the items labeled by the model or
/// by a duplicate.
pub fn write_autolabels(round: &Round, out: &OutDir, formats: &[AutolabelFormat]) -> Result<()> {
    let Some(a) = &round.autolabel else {
        return Ok(());
    };
    let data = round.data();
    let rows = autolabel_rows(round);
    let label = |i: usize| data.classes[a.predicted[i].unwrap_or(0) as usize].as_str();
    let source = |i: usize| source_name(a.source[i]);
    // A chunk at a time: on a pool of 10⁸ items most of them can be auto-labeled.
    out.write_parquet_rows("autolabels.parquet", rows.len(), |r| {
        autolabels_of(data, a, &rows[r])
    })?;
    if formats.contains(&AutolabelFormat::Csv) {
        out.write_csv(
            "autolabels.csv",
            ["id", "label", "confidence", "source"],
            rows.iter().map(|&i| {
                [
                    data.ids[i].clone(),
                    label(i).to_string(),
                    a.confidence[i].to_string(),
                    source(i).to_string(),
                ]
            }),
        )?;
    }
    if formats.contains(&AutolabelFormat::Jsonl) {
        out.write_with("autolabels.jsonl", |w| {
            use std::io::Write;
            for &i in &rows {
                let id: Value = if data.ids_are_integers {
                    json!(data.ids[i].parse::<i64>().unwrap_or_default())
                } else {
                    json!(data.ids[i])
                };
                let line = json!({
                    "id": id,
                    "label": label(i),
                    "confidence": a.confidence[i],
                    "source": source(i),
                });
                writeln!(w, "{line}").map_err(|e| Error::io("autolabels.jsonl", e))?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// One carried column as a single array (chunks concatenated), for items.parquet.
fn concat_chunks(data: &Dataset, col: usize) -> Result<ArrayRef> {
    let chunks: Vec<&dyn arrow_array::Array> = data.carried[col]
        .chunks
        .iter()
        .map(|c| c.as_ref())
        .collect();
    arrow_select::concat::concat(&chunks).map_err(Error::internal("carried column"))
}
