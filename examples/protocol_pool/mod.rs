//! The issue-5 protocol's pool, shared by `autolabel_eval` and `autolabel_diag`: rows whose
//! split is train or val (a seeded stratified 80% when there are only test rows), with their
//! embeddings and true labels.

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use labelwise::index::graph::NeighborGraph;
use ndarray::{Array2, Axis};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

pub type BoxError = Box<dyn std::error::Error>;

/// The command-line value after the flag `name`, if both are there.
pub fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

pub struct Data {
    pub emb: Array2<f32>,
    pub label: Vec<u32>,
    pub n_classes: usize,
}

/// Strings of a utf8 / large-utf8 / dictionary-encoded utf8 column.
fn strings(col: &ArrayRef) -> Result<Vec<String>, BoxError> {
    Ok(match col.data_type() {
        DataType::Utf8 => col
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap_or("").to_string())
            .collect(),
        DataType::LargeUtf8 => col
            .as_string::<i64>()
            .iter()
            .map(|s| s.unwrap_or("").to_string())
            .collect(),
        DataType::Dictionary(_, _) => {
            let d = col.as_any_dictionary();
            let values = strings(d.values())?;
            d.normalized_keys()
                .into_iter()
                .map(|k| values.get(k).cloned().unwrap_or_default())
                .collect()
        }
        t => return Err(format!("expected a string column, got {t}").into()),
    })
}

pub fn read(path: &str, seed: u64) -> Result<Data, BoxError> {
    let file = std::fs::File::open(path)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let (mut labels, mut splits, mut flat) = (Vec::new(), Vec::new(), Vec::<f32>::new());
    let mut d = 0usize;
    for batch in reader {
        let batch: RecordBatch = batch?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| format!("{path}: no column {name}"))
        };
        labels.extend(strings(&col("label")?)?);
        splits.extend(strings(&col("split")?)?);
        let e = col("embedding")?;
        match e.data_type() {
            DataType::FixedSizeList(_, size) => {
                let l = e.as_fixed_size_list();
                d = *size as usize;
                let v = l.values().as_primitive::<Float32Type>();
                let off = l.value_offset_at(0);
                flat.extend_from_slice(&v.values()[off..off + l.len() * d]);
            }
            DataType::List(_) => {
                let l = e.as_list::<i32>();
                for i in 0..l.len() {
                    let r = l.value(i);
                    let r = r.as_primitive::<Float32Type>();
                    d = r.len();
                    flat.extend_from_slice(r.values());
                }
            }
            t => return Err(format!("{path}: embedding has type {t}").into()),
        }
    }
    let n = labels.len();
    let emb = Array2::from_shape_vec((n, d), flat)?;
    let names: Vec<String> = {
        let mut v = labels.clone();
        v.sort();
        v.dedup();
        v
    };
    let label_all: Vec<u32> = labels
        .iter()
        .map(|l| names.binary_search(l).map(|k| k as u32))
        .collect::<Result<_, _>>()
        .map_err(|_| "label lookup")?;
    // Pool: train + val; or a seeded stratified 80% when there is no train/val.
    let mut pool: Vec<usize> = (0..n)
        .filter(|&i| splits[i] == "train" || splits[i] == "val")
        .collect();
    if pool.is_empty() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        for c in 0..names.len() as u32 {
            let mut items: Vec<usize> = (0..n).filter(|&i| label_all[i] == c).collect();
            items.shuffle(&mut rng);
            let keep = (items.len() as f64 * 0.8).round() as usize;
            pool.extend_from_slice(&items[..keep]);
        }
        pool.sort_unstable();
    }
    Ok(Data {
        emb: emb.select(Axis(0), &pool),
        label: pool.iter().map(|&i| label_all[i]).collect(),
        n_classes: names.len(),
    })
}

/// Exact top-k neighbours by blocked GEMM (self excluded, ties by index).
pub fn exact_graph(emb: &Array2<f32>, k: usize) -> NeighborGraph {
    let n = emb.nrows();
    let et = emb.t();
    let rows: Vec<(Vec<u32>, Vec<f32>)> = (0..n)
        .into_par_iter()
        .step_by(256)
        .flat_map_iter(|s| {
            let e = (s + 256).min(n);
            let scores = emb.slice(ndarray::s![s..e, ..]).dot(&et);
            (s..e)
                .map(|i| {
                    let r = scores.row(i - s);
                    let mut idx: Vec<u32> = (0..n as u32).filter(|&j| j as usize != i).collect();
                    idx.select_nth_unstable_by(k - 1, |&a, &b| {
                        r[b as usize].total_cmp(&r[a as usize]).then(a.cmp(&b))
                    });
                    idx.truncate(k);
                    idx.sort_by(|&a, &b| r[b as usize].total_cmp(&r[a as usize]).then(a.cmp(&b)));
                    let cs = idx.iter().map(|&j| r[j as usize]).collect();
                    (idx, cs)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut g = NeighborGraph {
        k,
        neighbors: Vec::with_capacity(n * k),
        cosines: Vec::with_capacity(n * k),
    };
    for (nb, cs) in rows {
        g.neighbors.extend(nb);
        g.cosines.extend(cs);
    }
    g
}
