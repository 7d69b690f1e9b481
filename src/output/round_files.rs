//! The files a round leaves: items.parquet, duplicate_pairs.parquet, autolabels (Parquet, CSV,
//! JSON Lines), batch.csv and budget.csv, each from what the round computed; a stage that did
//! not run writes nothing.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    UInt32Array,
};
use arrow_schema::{DataType, Field, Schema};
use serde_json::{json, Value};

use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::output::{id_array, ItemsTable, OutDir};
use crate::round::autolabel::{Route, Source};
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

/// Adds `dup_group` and `dup_representative` to items.parquet.
pub fn add_duplicate_columns(d: &Duplicates, items: &mut ItemsTable) {
    items.push(
        "dup_group",
        Arc::new(Int64Array::from(d.groups.group.clone())),
        false,
    );
    items.push(
        "dup_representative",
        Arc::new(BooleanArray::from(d.groups.representative.clone())),
        false,
    );
}

/// Writes duplicate_pairs.parquet (`id_a`, `id_b`, `cosine`; id_a first in input order).
pub fn write_pairs(d: &Duplicates, data: &Dataset, out: &OutDir) -> Result<()> {
    let ids_a = id_array(data, d.pairs.iter().map(|p| p.a as usize));
    let ids_b = id_array(data, d.pairs.iter().map(|p| p.b as usize));
    let id_type: DataType = ids_a.data_type().clone();
    let schema = Schema::new(vec![
        Field::new("id_a", id_type.clone(), false),
        Field::new("id_b", id_type, false),
        Field::new("cosine", DataType::Float64, false),
    ]);
    let cos = Arc::new(Float64Array::from_iter_values(
        d.pairs.iter().map(|p| p.cosine),
    ));
    let batch = RecordBatch::try_new(Arc::new(schema), vec![ids_a, ids_b, cos])
        .map_err(Error::internal("pairs table"))?;
    out.write_parquet("duplicate_pairs.parquet", &batch)?;
    Ok(())
}

/// duplicate_pairs.parquet, when duplicates were searched.
pub fn write_duplicates(round: &Round, out: &OutDir) -> Result<()> {
    match &round.duplicates {
        Some(d) => write_pairs(d, round.data(), out),
        None => Ok(()),
    }
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
            "projected_auto_coverage",
            "hours",
            "cost",
        ],
        b.projection.iter().map(|r| {
            [
                r.added_labels.to_string(),
                r.total_labels.to_string(),
                opt(r.projected_accuracy),
                opt(r.projected_auto_coverage),
                format!("{:.2}", r.hours),
                format!("{:.2}", r.cost),
            ]
        }),
    )?;
    Ok(())
}

/// Per-item reasons: the batch's own reasons for picked items, rarity reasons otherwise.
fn reasons(round: &Round) -> Vec<String> {
    let n = round.data().len();
    let mut reasons: Vec<String> = match &round.rarity {
        Some(r) => r
            .reasons
            .iter()
            .map(|&f| rarity::reason_names(f).join(";"))
            .collect(),
        None => vec![String::new(); n],
    };
    if let Some(sel) = &round.selection {
        for (rank, &i) in sel.picked.iter().enumerate() {
            reasons[i as usize] = sel.reasons[rank].clone();
        }
    }
    reasons
}

/// batch.csv: rank, id, score, reasons, propensity (the chance the pick was drawn: 1 for the
/// strategy's picks, below 1 for audits), then the carried columns.
pub fn write_batch(round: &Round, out: &OutDir) -> Result<()> {
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
    header.extend(data.carried.iter().map(|c| c.field.name().clone()));
    let rows = sel.picked.iter().enumerate().map(|(rank, &i)| {
        let i = i as usize;
        let mut row = vec![
            (rank + 1).to_string(),
            data.ids[i].clone(),
            format!("{:.6}", sel.score[rank]),
            sel.reasons[rank].clone(),
            format!("{}", sel.propensity[rank]),
        ];
        row.extend((0..data.carried.len()).map(|c| data.carried_text(c, i)));
        row
    });
    out.write_csv("batch.csv", &header, rows)?;
    Ok(())
}

/// items.parquet: id, the given label, every stage's columns, then the carried columns.
pub fn items_table(round: &Round) -> Result<RecordBatch> {
    let data = round.data();
    let mut items = ItemsTable::new(data);
    let class_names = |v: &[Option<u32>]| -> ArrayRef {
        Arc::new(StringArray::from(
            v.iter()
                .map(|l| l.map(|c| data.classes[c as usize].as_str()))
                .collect::<Vec<_>>(),
        ))
    };
    items.push("label", class_names(&data.labels), true);
    if let Some(d) = &round.duplicates {
        add_duplicate_columns(d, &mut items);
    }
    if let Some(a) = &round.autolabel {
        items.push("predicted_label", class_names(&a.predicted), true);
        items.push(
            "confidence",
            Arc::new(Float32Array::from(a.confidence.clone())),
            false,
        );
        items.push(
            "route",
            Arc::new(StringArray::from_iter_values(
                a.route.iter().map(|r| route_name(*r)),
            )),
            false,
        );
    }
    if let Some(r) = &round.rarity {
        items.push(
            "rarity",
            Arc::new(Float32Array::from(r.rarity.clone())),
            false,
        );
        items.push(
            "cluster",
            Arc::new(UInt32Array::from(r.cluster.clone())),
            false,
        );
    }
    if let Some(sel) = &round.selection {
        items.push(
            "priority",
            Arc::new(Int64Array::from(
                sel.priority
                    .iter()
                    .map(|p| p.map(i64::from))
                    .collect::<Vec<_>>(),
            )),
            true,
        );
    }
    if round.rarity.is_some() || round.selection.is_some() {
        items.push(
            "reasons",
            Arc::new(StringArray::from_iter_values(reasons(round))),
            false,
        );
    }
    let own: Vec<String> = items.names();
    for (c, col) in data.carried.iter().enumerate() {
        if own.contains(col.field.name()) {
            continue;
        }
        items.push_field(col.field.as_ref().clone(), concat_chunks(data, c)?);
    }
    items.finish()
}

/// autolabels.parquet (+ csv/jsonl): the items labeled by the model or by a duplicate.
pub fn write_autolabels(round: &Round, out: &OutDir, formats: &[AutolabelFormat]) -> Result<()> {
    let Some(a) = &round.autolabel else {
        return Ok(());
    };
    let data = round.data();
    let rows: Vec<usize> = (0..data.len())
        .filter(|&i| matches!(a.route[i], Route::Auto | Route::Duplicate))
        .collect();
    let label = |i: usize| data.classes[a.predicted[i].unwrap_or(0) as usize].as_str();
    let source = |i: usize| match a.source[i] {
        Source::Duplicate => "duplicate",
        _ => "model",
    };
    let ids = id_array(data, rows.iter().copied());
    let schema = Schema::new(vec![
        Field::new("id", ids.data_type().clone(), false),
        Field::new("label", DataType::Utf8, false),
        Field::new("confidence", DataType::Float32, false),
        Field::new("source", DataType::Utf8, false),
    ]);
    let batch = RecordBatch::try_new(
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
                rows.iter().map(|&i| source(i)),
            )),
        ],
    )
    .map_err(Error::internal("autolabels table"))?;
    out.write_parquet("autolabels.parquet", &batch)?;
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
