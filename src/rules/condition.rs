//! Conditions checked against the data ([`Condition::compile`]: columns exist and have a fitting
//! type, regexes compile, example ids and centroid classes exist) and evaluated over a block of
//! rows at a time ([`Condition::eval`]). A null cell makes a column condition false.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use regex::{Regex, RegexBuilder};

use crate::data::dataset::Dataset;
use crate::rules::file::{CmpOp, CondSpec, Scalar};

/// Largest compiled regex accepted (bytes of automaton), so a pathological pattern is an error
/// instead of a stall.
const REGEX_SIZE_LIMIT: usize = 64 << 20;

/// A condition compiled against one pool.
#[derive(Debug, Clone)]
pub enum Condition {
    /// The string column `col` (index into `Dataset::carried`) matches `re`.
    Text {
        /// Carried column index.
        col: usize,
        /// Compiled pattern.
        re: Regex,
    },
    /// The cell of `col` equals one of `values`.
    Equals {
        /// Carried column index.
        col: usize,
        /// Accepted values.
        values: Vec<Scalar>,
    },
    /// The numeric cell of `col` satisfies every bound.
    Compare {
        /// Carried column index.
        col: usize,
        /// The bounds.
        bounds: Vec<(CmpOp, f64)>,
    },
    /// Cosine ≥ `min` to at least one row of `targets` (unit rows, m × d).
    Cosine {
        /// Unit-norm target directions.
        targets: Array2<f32>,
        /// Threshold.
        min: f32,
    },
    /// Every part holds.
    All(Vec<Condition>),
    /// At least one part holds.
    Any(Vec<Condition>),
    /// The part does not hold.
    Not(Box<Condition>),
}

/// What a condition is compiled against: the pool, and the id → row index built on first use.
pub struct CompileCtx<'a> {
    data: &'a Dataset,
    rows_by_id: Option<HashMap<&'a str, usize>>,
}

impl<'a> CompileCtx<'a> {
    /// A context over `data`.
    pub fn new(data: &'a Dataset) -> CompileCtx<'a> {
        CompileCtx {
            data,
            rows_by_id: None,
        }
    }

    fn column(&self, name: &str) -> Result<(usize, &DataType), String> {
        let carried = &self.data.carried;
        match carried.iter().position(|c| c.field.name() == name) {
            Some(i) => Ok((i, carried[i].field.data_type())),
            None => {
                let names: Vec<&str> = carried.iter().map(|c| c.field.name().as_str()).collect();
                Err(format!(
                    "unknown column '{name}' (columns rules can read: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            }
        }
    }

    fn row_of(&mut self, id: &str) -> Option<usize> {
        let data = self.data;
        self.rows_by_id
            .get_or_insert_with(|| {
                data.ids
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.as_str(), i))
                    .collect()
            })
            .get(id)
            .copied()
    }
}

fn is_string(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string(v),
        _ => false,
    }
}

fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || t.is_floating()
}

impl Condition {
    /// Compiles `spec` against the pool in `ctx`; the error says what does not fit the data.
    pub fn compile(spec: &CondSpec, ctx: &mut CompileCtx<'_>) -> Result<Condition, String> {
        Ok(match spec {
            CondSpec::Text {
                column,
                pattern,
                case_sensitive,
            } => {
                let (col, t) = ctx.column(column)?;
                if !is_string(t) {
                    return Err(format!(
                        "column '{column}' holds {t}; keywords and regex need a string column"
                    ));
                }
                Condition::Text {
                    col,
                    re: compile_regex(pattern, *case_sensitive)?,
                }
            }
            CondSpec::Equals { column, values } => {
                let (col, t) = ctx.column(column)?;
                for v in values {
                    check_scalar(column, t, v)?;
                }
                Condition::Equals {
                    col,
                    values: values.clone(),
                }
            }
            CondSpec::Compare { column, bounds } => {
                let (col, t) = ctx.column(column)?;
                if !is_numeric(t) {
                    return Err(format!(
                        "column '{column}' holds {t}; gt/ge/lt/le need a numeric column"
                    ));
                }
                Condition::Compare {
                    col,
                    bounds: bounds.clone(),
                }
            }
            CondSpec::SimilarTo { ids, min_cosine } => similar_to(ids, *min_cosine, ctx)?,
            CondSpec::Centroid { class, min_cosine } => centroid(class, *min_cosine, ctx.data)?,
            CondSpec::All(parts) => Condition::All(compile_all(parts, ctx)?),
            CondSpec::Any(parts) => Condition::Any(compile_all(parts, ctx)?),
            CondSpec::Not(part) => Condition::Not(Box::new(Condition::compile(part, ctx)?)),
        })
    }

    /// Evaluates the condition on `len` rows starting at global row `start`, which lie in
    /// carried chunk `chunk` from offset `offset`; `out[i]` is row `start + i`'s result.
    pub fn eval(&self, data: &Dataset, block: Block, out: &mut [bool]) {
        match self {
            Condition::Text { col, re } => {
                let arr = block.column(data, *col);
                strings(arr.as_ref(), &|s| re.is_match(s), out)
            }
            Condition::Equals { col, values } => {
                equals(block.column(data, *col).as_ref(), values, out)
            }
            Condition::Compare { col, bounds } => {
                let holds = |x: f64| bounds.iter().all(|&(op, b)| op.holds(x, b));
                numbers(block.column(data, *col).as_ref(), holds, out)
            }
            Condition::Cosine { targets, min } => {
                let rows = data
                    .embeddings
                    .slice(ndarray::s![block.start..block.start + out.len(), ..]);
                cosine(rows, targets.view(), *min, out)
            }
            Condition::All(parts) | Condition::Any(parts) => {
                // An empty `all` holds everywhere, an empty `any` nowhere (files cannot say either).
                let all = matches!(self, Condition::All(_));
                out.fill(all);
                let mut tmp = vec![false; out.len()];
                for part in parts {
                    part.eval(data, block, &mut tmp);
                    for (o, t) in out.iter_mut().zip(&tmp) {
                        *o = if all { *o && *t } else { *o || *t };
                    }
                }
            }
            Condition::Not(part) => {
                part.eval(data, block, out);
                out.iter_mut().for_each(|o| *o = !*o);
            }
        }
    }
}

/// A run of rows inside one carried chunk.
#[derive(Debug, Clone, Copy)]
pub struct Block {
    /// Global index of the first row.
    pub start: usize,
    /// Carried chunk holding the rows.
    pub chunk: usize,
    /// Offset of the first row within the chunk.
    pub offset: usize,
    /// Rows in the block.
    pub len: usize,
}

impl Block {
    fn column(&self, data: &Dataset, col: usize) -> ArrayRef {
        data.carried[col].chunks[self.chunk].slice(self.offset, self.len)
    }
}

fn compile_all(parts: &[CondSpec], ctx: &mut CompileCtx<'_>) -> Result<Vec<Condition>, String> {
    parts.iter().map(|p| Condition::compile(p, ctx)).collect()
}

/// Compiles a pattern; the regex crate's multi-line report becomes one line.
pub fn compile_regex(pattern: &str, case_sensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            let detail = text
                .lines()
                .rev()
                .find(|l| l.trim_start().starts_with("error:"))
                .map(|l| {
                    l.trim_start()
                        .trim_start_matches("error:")
                        .trim()
                        .to_string()
                })
                .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "));
            format!("invalid regex '{pattern}': {detail}")
        })
}

fn check_scalar(column: &str, t: &DataType, v: &Scalar) -> Result<(), String> {
    let fits = match v {
        Scalar::Str(_) => is_string(t),
        Scalar::Num(_) => is_numeric(t),
        Scalar::Bool(_) => matches!(t, DataType::Boolean),
    };
    if fits {
        Ok(())
    } else {
        let what = match v {
            Scalar::Str(s) => format!("string \"{s}\""),
            Scalar::Num(x) => format!("number {x}"),
            Scalar::Bool(b) => format!("boolean {b}"),
        };
        Err(format!(
            "column '{column}' holds {t}; cannot compare it with {what}"
        ))
    }
}

/// Cosine conditions read every row: refused for a pool whose embeddings are elsewhere.
fn need_embeddings(data: &Dataset) -> Result<(), String> {
    if data.dim() == 0 {
        return Err("cosine conditions need the pool's embeddings in this process".into());
    }
    Ok(())
}

fn similar_to(ids: &[String], min: f32, ctx: &mut CompileCtx<'_>) -> Result<Condition, String> {
    need_embeddings(ctx.data)?;
    let d = ctx.data.dim();
    let mut targets = Array2::<f32>::zeros((ids.len(), d));
    for (i, id) in ids.iter().enumerate() {
        let row = ctx
            .row_of(id)
            .ok_or_else(|| format!("unknown example id '{id}' in similar_to"))?;
        targets.row_mut(i).assign(&ctx.data.embeddings.row(row));
    }
    Ok(Condition::Cosine { targets, min })
}

fn centroid(class: &str, min: f32, data: &Dataset) -> Result<Condition, String> {
    need_embeddings(data)?;
    let no_items = || format!("class '{class}' has no labeled items, so its centroid is undefined");
    let c = data
        .classes
        .iter()
        .position(|k| k == class)
        .ok_or_else(no_items)? as u32;
    let mut sum = Array1::<f64>::zeros(data.dim());
    for (row, _) in data
        .labels
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == Some(c))
    {
        sum.zip_mut_with(&data.embeddings.row(row), |s, x| *s += *x as f64);
    }
    let norm = sum.dot(&sum).sqrt();
    if norm.is_nan() || norm <= 1e-12 {
        return Err(format!(
            "class '{class}': its labeled items' mean is the zero vector"
        ));
    }
    let unit = sum.mapv(|x| (x / norm) as f32);
    Ok(Condition::Cosine {
        targets: unit.insert_axis(Axis(0)),
        min,
    })
}

fn cosine(rows: ArrayView2<f32>, targets: ArrayView2<f32>, min: f32, out: &mut [bool]) {
    for (o, row) in out.iter_mut().zip(rows.outer_iter()) {
        *o = targets.outer_iter().any(|t| t.dot(&row) >= min);
    }
}

/// `out[i] = pred(row i)` for a string column; null → false. Dictionaries test each value once.
fn strings(arr: &dyn Array, pred: &dyn Fn(&str) -> bool, out: &mut [bool]) {
    let put = |out: &mut [bool], i: usize, v: Option<&str>| out[i] = v.is_some_and(pred);
    match arr.data_type() {
        DataType::Utf8 => arr
            .as_string::<i32>()
            .iter()
            .enumerate()
            .for_each(|(i, v)| put(out, i, v)),
        DataType::LargeUtf8 => arr
            .as_string::<i64>()
            .iter()
            .enumerate()
            .for_each(|(i, v)| put(out, i, v)),
        DataType::Utf8View => arr
            .as_string_view()
            .iter()
            .enumerate()
            .for_each(|(i, v)| put(out, i, v)),
        DataType::Dictionary(_, _) => {
            let dict = arr.as_any_dictionary();
            let mut on_values = vec![false; dict.values().len()];
            strings(dict.values().as_ref(), pred, &mut on_values);
            for (i, key) in dict.normalized_keys().into_iter().enumerate() {
                out[i] = arr.is_valid(i) && on_values[key];
            }
        }
        _ => out.fill(false),
    }
}

/// `out[i] = pred(row i as f64)` for a numeric column; null → false.
fn numbers(arr: &dyn Array, pred: impl Fn(f64) -> bool, out: &mut [bool]) {
    macro_rules! each {
        ($t:ty) => {
            for (o, v) in out.iter_mut().zip(arr.as_primitive::<$t>().iter()) {
                *o = v.is_some_and(|x| pred(x as f64));
            }
        };
    }
    match arr.data_type() {
        DataType::Int8 => each!(Int8Type),
        DataType::Int16 => each!(Int16Type),
        DataType::Int32 => each!(Int32Type),
        DataType::Int64 => each!(Int64Type),
        DataType::UInt8 => each!(UInt8Type),
        DataType::UInt16 => each!(UInt16Type),
        DataType::UInt32 => each!(UInt32Type),
        DataType::UInt64 => each!(UInt64Type),
        DataType::Float32 => each!(Float32Type),
        DataType::Float64 => each!(Float64Type),
        DataType::Float16 => {
            for (o, v) in out.iter_mut().zip(arr.as_primitive::<Float16Type>().iter()) {
                *o = v.is_some_and(|x| pred(x.to_f64()));
            }
        }
        _ => out.fill(false),
    }
}

fn equals(arr: &dyn Array, values: &[Scalar], out: &mut [bool]) {
    match arr.data_type() {
        DataType::Boolean => {
            for (o, v) in out.iter_mut().zip(arr.as_boolean().iter()) {
                *o = v.is_some_and(|b| values.contains(&Scalar::Bool(b)));
            }
        }
        t if is_string(t) => strings(
            arr,
            &|s| values.iter().any(|v| matches!(v, Scalar::Str(x) if x == s)),
            out,
        ),
        _ => numbers(
            arr,
            |x| {
                values
                    .iter()
                    .any(|v| matches!(v, Scalar::Num(y) if *y == x))
            },
            out,
        ),
    }
}
