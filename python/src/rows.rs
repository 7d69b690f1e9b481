//! The label-dependent half of a distributed `plan` without the pool's matrix on the driver:
//! [`ClusterRows`] answers the round's [`PoolRows`] calls through a Python object whose methods
//! run map tasks over the cluster's shards, and the `rows_*` kernels are what those tasks run on
//! one shard (the library's own per-row code, so the answers are one machine's bit for bit).

use labelwise::cli;
use labelwise::data::dataset;
use labelwise::index::cached::{CacheChoice, GraphOutcome, PoolCache, RECALL_SAMPLE};
use labelwise::index::kmeans::KMeans;
use labelwise::index::{IndexKind, NeighborGraph};
use labelwise::model::{FittedClassifier, ModelSpec};
use labelwise::round::dedup::{DupPair, Duplicates};
use labelwise::round::rows::{self, PoolRows, PredictSink};
use labelwise::round::timings::Timings;
use labelwise::round::Pool;
use ndarray::{Array2, ArrayView2};
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};
use std::sync::{Arc, Mutex};

use crate::{detached, f32_bytes, f32s, matrix, u32_bytes, u32s, InputError};

/// Bytes of rows a gather asks the provider for at a time (see `ClusterRows::gather`).
const GATHER_BLOCK_BYTES: usize = 16 << 20;

/// Little-endian bytes of row indices (u64), the form the provider receives ids in.
fn id_bytes(ids: &[usize]) -> Vec<u8> {
    ids.iter().flat_map(|&i| (i as u64).to_le_bytes()).collect()
}

/// u64 values from little-endian bytes.
fn u64s(bytes: &[u8], what: &str) -> PyResult<Vec<u64>> {
    if !bytes.len().is_multiple_of(8) {
        return Err(InputError::new_err(format!("{what}: not whole u64 values")));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

/// Runs `read` on an answer's bytes in place (an answer can be n × classes floats): `bytes`, or
/// a `bytearray`, which the provider fills through a numpy view so that it never makes a
/// `tobytes()` copy of the whole answer.
fn read_answer<T>(
    answer: &Bound<'_, PyAny>,
    what: &str,
    read: impl FnOnce(&[u8]) -> PyResult<T>,
) -> PyResult<T> {
    if let Ok(b) = answer.cast::<PyBytes>() {
        return read(b.as_bytes());
    }
    let array = answer.cast::<PyByteArray>().map_err(|_| {
        InputError::new_err(format!(
            "{what}: the provider answered neither bytes nor bytearray"
        ))
    })?;
    // SAFETY: the GIL is held for the whole read and `read` runs no Python code, so nothing
    // can resize or write the bytearray while the slice lives.
    read(unsafe { array.as_bytes() })
}

/// A Python failure inside the round, as the library's error (its message kept whole).
fn lib_err(e: PyErr) -> labelwise::Error {
    labelwise::Error::Internal(format!("the cluster's rows: {e}"))
}

/// The pool's rows on a cluster, reached through `provider`'s methods (see
/// `labelwise.distributed._ClusterRows`); every argument and answer is little-endian bytes.
pub struct ClusterRows {
    provider: Py<PyAny>,
    n: usize,
    d: usize,
}

impl ClusterRows {
    /// Calls `provider.method(*args)` with the GIL and returns what it answered: `bytes`, or
    /// a `bytearray` the provider filled through a numpy view (see [`read_answer`]).
    fn call<'py, A>(&self, py: Python<'py>, method: &str, args: A) -> PyResult<Bound<'py, PyAny>>
    where
        A: pyo3::call::PyCallArgs<'py>,
    {
        self.provider.bind(py).call_method1(method, args)
    }

    /// The next `(rows, answer)` of the provider's iterator `parts` (`None` when it is done).
    fn next_part(parts: &Py<PyAny>) -> PyResult<Option<(usize, Py<PyAny>)>> {
        Python::attach(|py| match parts.bind(py).call_method0("__next__") {
            Ok(part) => Ok(Some(part.extract::<(usize, Py<PyAny>)>()?)),
            Err(e) if e.is_instance_of::<PyStopIteration>(py) => Ok(None),
            Err(e) => Err(e),
        })
    }

    /// Hands `answer`'s probabilities (f32 bytes, query × n_classes) to `sink` in
    /// [`rows::PREDICT_CHUNK`]-row chunks, each converted as it is handed over, so the driver
    /// holds the answer once. The GIL is taken per chunk, not across the sink's work.
    fn sink_answer(
        answer: Py<PyAny>,
        query: &[usize],
        n_classes: usize,
        sink: &mut PredictSink<'_>,
    ) -> labelwise::Result<()> {
        let row = n_classes * 4;
        let len = Python::attach(|py| read_answer(answer.bind(py), "predict", |b| Ok(b.len())))
            .map_err(lib_err)?;
        if len != query.len() * row {
            return Err(labelwise::Error::Internal(format!(
                "predict: answered {len} bytes for {} rows of {n_classes} classes",
                query.len()
            )));
        }
        for (ci, chunk) in query.chunks(rows::PREDICT_CHUNK).enumerate() {
            let at = ci * rows::PREDICT_CHUNK * row;
            let v = Python::attach(|py| {
                read_answer(answer.bind(py), "predict", |b| {
                    f32s(&b[at..at + chunk.len() * row], "predict")
                })
            })
            .map_err(lib_err)?;
            let p = Array2::from_shape_vec((chunk.len(), n_classes), v)
                .map_err(|e| labelwise::Error::Internal(format!("predict: {e}")))?;
            sink(chunk, p)?;
        }
        Python::attach(|_| drop(answer));
        Ok(())
    }
}

impl PoolRows for ClusterRows {
    fn n_rows(&self) -> usize {
        self.n
    }

    fn n_cols(&self) -> usize {
        self.d
    }

    fn gather(&self, ids: &[usize]) -> labelwise::Result<Array2<f32>> {
        // A call per block of rows: the provider's answer and its copy into the matrix are
        // both alive while it is read, so a block bounds the second copy (the rows of 10⁵
        // paired near-duplicates are hundreds of MB).
        let block = (GATHER_BLOCK_BYTES / (self.d * 4).max(1)).max(1);
        let mut out = Array2::<f32>::zeros((ids.len(), self.d));
        for (bi, chunk) in ids.chunks(block).enumerate() {
            let mut rows = out.slice_mut(ndarray::s![bi * block..bi * block + chunk.len(), ..]);
            Python::attach(|py| {
                let b = self.call(py, "gather", (PyBytes::new(py, &id_bytes(chunk)),))?;
                read_answer(&b, "gather", |bytes| {
                    if bytes.len() != rows.len() * 4 {
                        return Err(InputError::new_err(format!(
                            "gather: answered {} bytes for {} rows of {}",
                            bytes.len(),
                            chunk.len(),
                            self.d
                        )));
                    }
                    for (x, c) in rows.iter_mut().zip(bytes.chunks_exact(4)) {
                        *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    }
                    Ok(())
                })
            })
            .map_err(lib_err)?;
        }
        Ok(out)
    }

    fn predict(
        &self,
        spec: &ModelSpec,
        train: ArrayView2<f32>,
        y: &[u32],
        n_classes: usize,
        query: &[usize],
        sink: &mut PredictSink<'_>,
    ) -> labelwise::Result<()> {
        let spec_json = serde_json::to_string(spec)
            .map_err(|e| labelwise::Error::Internal(format!("model spec: {e}")))?;
        // Ascending rows (every caller's): each shard's answer is the next run of the query,
        // handed on as it arrives, so the driver holds one shard's answer, not query × classes.
        let ascending = query.windows(2).all(|w| w[0] < w[1]);
        let method = if ascending {
            "predict_parts"
        } else {
            "predict"
        };
        let answer = Python::attach(|py| {
            let args = (
                spec_json.as_str(),
                PyBytes::new(py, &f32_bytes(train.iter().copied())),
                PyBytes::new(py, &u32_bytes(y)),
                n_classes,
                PyBytes::new(py, &id_bytes(query)),
            );
            self.call(py, method, args).map(Bound::unbind)
        })
        .map_err(lib_err)?;
        if !ascending {
            return Self::sink_answer(answer, query, n_classes, sink);
        }
        let mut at = 0;
        while let Some((rows, part)) = Self::next_part(&answer).map_err(lib_err)? {
            let Some(run) = query.get(at..at + rows) else {
                return Err(labelwise::Error::Internal(format!(
                    "predict: the shards answered more than the {} rows asked",
                    query.len()
                )));
            };
            Self::sink_answer(part, run, n_classes, sink)?;
            at += rows;
        }
        if at != query.len() {
            return Err(labelwise::Error::Internal(format!(
                "predict: the shards answered {at} of {} rows",
                query.len()
            )));
        }
        Ok(())
    }

    fn nearest_centroids(&self, centroids: ArrayView2<f32>) -> labelwise::Result<Vec<u32>> {
        Python::attach(|py| {
            let c = PyBytes::new(py, &f32_bytes(centroids.iter().copied()));
            let answer = self.call(py, "nearest_centroids", (c, centroids.nrows()))?;
            read_answer(&answer, "nearest_centroids", |b| {
                u32s(b, "nearest_centroids")
            })
        })
        .map_err(lib_err)
    }

    fn centroid_distance(&self, km: &KMeans) -> labelwise::Result<Vec<f32>> {
        Python::attach(|py| {
            let sizes: Vec<u8> = km
                .sizes
                .iter()
                .flat_map(|&s| (s as u64).to_le_bytes())
                .collect();
            let args = (
                PyBytes::new(py, &f32_bytes(km.centroids.iter().copied())),
                PyBytes::new(py, &u32_bytes(&km.assignment)),
                PyBytes::new(py, &sizes),
            );
            let answer = self.call(py, "centroid_distance", args)?;
            read_answer(&answer, "centroid_distance", |b| {
                f32s(b, "centroid_distance")
            })
        })
        .map_err(lib_err)
    }

    fn exact_top_k(
        &self,
        queries: ArrayView2<f32>,
        self_ids: &[u32],
        k: usize,
    ) -> labelwise::Result<(Vec<u32>, Vec<f32>)> {
        let m = queries.nrows();
        let mut nb = vec![u32::MAX; m * k];
        let mut cs = vec![f32::NEG_INFINITY; m * k];
        let parts: Vec<(usize, Vec<u8>, Vec<u8>)> = Python::attach(|py| {
            let args = (
                PyBytes::new(py, &f32_bytes(queries.iter().copied())),
                PyBytes::new(py, &u32_bytes(self_ids)),
                k,
            );
            self.provider
                .bind(py)
                .call_method1("exact_top_k", args)?
                .extract::<Vec<(usize, Vec<u8>, Vec<u8>)>>()
        })
        .map_err(lib_err)?;
        for (start, snb, scs) in parts {
            let snb = u32s(&snb, "exact_top_k").map_err(lib_err)?;
            let scs = f32s(&scs, "exact_top_k").map_err(lib_err)?;
            if snb.len() != m * k || scs.len() != m * k {
                return Err(labelwise::Error::Internal(
                    "exact_top_k: a shard answered the wrong shape".into(),
                ));
            }
            rows::merge_top_k(&mut nb, &mut cs, &snb, &scs, k, start);
        }
        Ok((nb, cs))
    }

    fn matrix(&self) -> Option<ArrayView2<'_, f32>> {
        None
    }
}

/// `rows_predict(spec_json, train, y, n_classes, rows, dim, threads)`: one shard's class
/// probabilities (f32 bytes, rows × n_classes) under the model `spec` fits on `train`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn rows_predict(
    py: Python<'_>,
    spec_json: &str,
    train: Vec<u8>,
    y: Vec<u8>,
    n_classes: usize,
    rows: Vec<u8>,
    dim: usize,
    threads: Option<usize>,
) -> PyResult<Vec<u8>> {
    let spec: ModelSpec = serde_json::from_str(spec_json)
        .map_err(|e| InputError::new_err(format!("rows_predict: model spec: {e}")))?;
    let x = matrix(&rows, dim, "rows_predict rows")?;
    detached(py, threads, None, |_| {
        let fitted = fitted_for(&spec, spec_json, (&train, &y), n_classes, dim)?;
        let query: Vec<usize> = (0..x.nrows()).collect();
        let mut out = Vec::with_capacity(x.nrows() * n_classes * 4);
        let rows_of = |c: &[usize]| Ok(x.select(ndarray::Axis(0), c));
        rows::predict_fitted(fitted.as_ref(), &query, rows_of, &mut |_, p| {
            out.extend(f32_bytes(p.iter().copied()));
            Ok(())
        })?;
        Ok(out)
    })
}

/// The model this worker process fitted last, keyed by everything its fit reads. A prediction
/// pass sends each shard's task the same training set, and a worker runs several of those
/// tasks: it fits once instead of once per shard (fitting is deterministic, so the answers
/// are the ones a refit gives). One model is kept, the last.
static LAST_FIT: Mutex<Option<(blake3::Hash, Arc<dyn FittedClassifier>)>> = Mutex::new(None);

/// `spec` fitted on the training rows and labels `(train, y)` (f32 rows × dim, u32 bytes),
/// from [`LAST_FIT`] when that is the same fit.
fn fitted_for(
    spec: &ModelSpec,
    spec_json: &str,
    (train, y): (&[u8], &[u8]),
    n_classes: usize,
    dim: usize,
) -> labelwise::Result<Arc<dyn FittedClassifier>> {
    let mut h = blake3::Hasher::new();
    let (classes, width) = ((n_classes as u64).to_le_bytes(), (dim as u64).to_le_bytes());
    for part in [spec_json.as_bytes(), &classes, &width, train, y] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let key = h.finalize();
    let mut last = LAST_FIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((k, fitted)) = last.as_ref() {
        if *k == key {
            return Ok(Arc::clone(fitted));
        }
    }
    let xt = matrix(train, dim, "rows_predict train").map_err(lib_err)?;
    let y = u32s(y, "rows_predict labels").map_err(lib_err)?;
    let fitted: Arc<dyn FittedClassifier> =
        Arc::from(rows::fit_row_model(spec, xt.view(), &y, n_classes)?);
    *last = Some((key, Arc::clone(&fitted)));
    Ok(fitted)
}

/// `rows_nearest_centroids(rows, centroids, dim, threads)`: one shard's nearest centroid per
/// row (u32 bytes).
#[pyfunction]
pub fn rows_nearest_centroids(
    py: Python<'_>,
    rows: Vec<u8>,
    centroids: Vec<u8>,
    dim: usize,
    threads: Option<usize>,
) -> PyResult<Vec<u8>> {
    let x = matrix(&rows, dim, "rows_nearest_centroids rows")?;
    let c = matrix(&centroids, dim, "rows_nearest_centroids centroids")?;
    detached(py, threads, None, |_| {
        Ok(u32_bytes(&x.nearest_centroids(c.view())?))
    })
}

/// `rows_cluster_sums(rows, assignment, k, start, dim)`: `start` (the sums of the shards
/// before, f32 bytes k × dim; None for the first) plus this shard's rows, added in row order.
#[pyfunction]
pub fn rows_cluster_sums(
    rows: Vec<u8>,
    assignment: Vec<u8>,
    k: usize,
    start: Option<Vec<u8>>,
    dim: usize,
) -> PyResult<Vec<u8>> {
    let x = matrix(&rows, dim, "rows_cluster_sums rows")?;
    let a = u32s(&assignment, "rows_cluster_sums assignment")?;
    if a.len() != x.nrows() || a.iter().any(|&c| c as usize >= k) {
        return Err(InputError::new_err(
            "rows_cluster_sums: assignment does not fit the rows",
        ));
    }
    let start = start
        .map(|b| matrix(&b, dim, "rows_cluster_sums start"))
        .transpose()?;
    let sums = rows::cluster_sums(x.view(), &a, k, start);
    Ok(f32_bytes(sums.iter().copied()))
}

/// `rows_centroid_distance(rows, assignment, centroids, sizes, sums, dim)`: rarity's centroid
/// component of one shard's rows, from the whole pool's cluster sums (f32 bytes).
#[pyfunction]
pub fn rows_centroid_distance(
    rows: Vec<u8>,
    assignment: Vec<u8>,
    centroids: Vec<u8>,
    sizes: Vec<u8>,
    sums: Vec<u8>,
    dim: usize,
) -> PyResult<Vec<u8>> {
    let x = matrix(&rows, dim, "rows_centroid_distance rows")?;
    let a = u32s(&assignment, "rows_centroid_distance assignment")?;
    let centroids = matrix(&centroids, dim, "rows_centroid_distance centroids")?;
    let sizes: Vec<usize> = u64s(&sizes, "rows_centroid_distance sizes")?
        .into_iter()
        .map(|s| s as usize)
        .collect();
    let sums = matrix(&sums, dim, "rows_centroid_distance sums")?;
    let k = centroids.nrows();
    if a.len() != x.nrows()
        || sizes.len() != k
        || sums.nrows() != k
        || a.iter().any(|&c| c as usize >= k)
    {
        return Err(InputError::new_err(
            "rows_centroid_distance: shapes do not match",
        ));
    }
    let km = KMeans {
        centroids,
        assignment: Vec::new(),
        sizes,
    };
    Ok(f32_bytes(
        rows::centroid_distance_of(x.view(), &a, &km, &sums).into_iter(),
    ))
}

/// `rows_top_k(rows, queries, self_ids, k, dim, threads)`: each query's `k` nearest rows of one
/// shard (row indices local to it; `self_ids` local too, `u32::MAX` for none) as
/// `(u32 bytes, f32 bytes)`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn rows_top_k(
    py: Python<'_>,
    rows: Vec<u8>,
    queries: Vec<u8>,
    self_ids: Vec<u8>,
    k: usize,
    dim: usize,
    threads: Option<usize>,
) -> PyResult<(Vec<u8>, Vec<u8>)> {
    let x = matrix(&rows, dim, "rows_top_k rows")?;
    let q = matrix(&queries, dim, "rows_top_k queries")?;
    let ids = u32s(&self_ids, "rows_top_k self ids")?;
    if ids.len() != q.nrows() {
        return Err(InputError::new_err("rows_top_k: one self id per query"));
    }
    detached(py, threads, None, |_| {
        let (nb, cs) = x.exact_top_k(q.view(), &ids, k)?;
        Ok((u32_bytes(&nb), f32_bytes(cs.into_iter())))
    })
}

/// What the cluster hands the driver's round: its graph, its near-duplicate pairs, and the
/// content key of its normalised shards.
pub struct ClusterGraph {
    /// The neighbour graph (n × k).
    pub graph: NeighborGraph,
    /// Every pair ≥ the threshold, each once.
    pub pairs: Vec<DupPair>,
    /// The shards' content hash: names the pool's cached label-independent results (rarity's
    /// clusters) in the cache, as the embeddings' hash does on one machine.
    pub pool_key: Option<String>,
}

/// The driver's pool when the rows stay on the cluster: ids and labels loaded by `load` (from
/// the files or a stream of those columns) without the embeddings, the cluster's graph
/// (recall@10 measured through the rows, as one machine measures it), and the near-duplicate
/// groups of the cluster's pairs.
pub fn cluster_pool(
    cmd: &cli::RoundCommand<'_>,
    dedup: &labelwise::round::dedup::DedupParams,
    rows: ClusterRows,
    cluster: ClusterGraph,
    load: &dyn Fn(&dataset::LoadOptions) -> labelwise::Result<dataset::Dataset>,
    timings: &mut Timings,
) -> labelwise::Result<Pool> {
    let ClusterGraph {
        graph,
        pairs,
        pool_key,
    } = cluster;
    if cmd.rules.any() {
        // Rules' cosine conditions compare every row with their targets in one process.
        return Err(labelwise::Error::Usage(
            "rules are not supported with label_half='map': run the label-dependent half on \
             the driver (label_half='driver')"
                .into(),
        ));
    }
    // Neither the matrix nor the carried columns: the map tasks join those into items.parquet.
    let mut opts = cmd.input.load_options(false);
    opts.read_embeddings = false;
    let data = timings.time("load", || load(&opts))?;
    if data.len() != rows.n {
        return Err(labelwise::Error::Internal(format!(
            "the driver loaded {} items, the cluster {}",
            data.len(),
            rows.n
        )));
    }
    let seed = cmd.graph.params(cmd.run.seed)?.seed;
    let recall = timings.time("graph", || {
        rows::recall_at_10(&rows, &graph, RECALL_SAMPLE, seed)
    })?;
    let graph = GraphOutcome {
        graph,
        route: IndexKind::Partitioned,
        recall_at_10: recall,
        cache_hit: false,
        cache_note: None,
        incremental: None,
        pool_cache: pool_key.and_then(|key| pool_cache(cmd, &key)),
    };
    let mut pool = Pool {
        data,
        graph,
        remote_rows: Some(Box::new(rows)),
        duplicates: None,
    };
    let found = timings.time("dedup", || {
        Duplicates::from_pairs(pairs, pool.rows(), dedup)
    })?;
    pool.duplicates = Some(found);
    Ok(pool)
}

/// The cache the pool's label-independent results go to, keyed by the cluster's content key;
/// `None` without a cache or when it cannot be opened (a cache saves the next run time, it
/// never changes this one's result).
fn pool_cache(cmd: &cli::RoundCommand<'_>, key: &str) -> Option<PoolCache> {
    let choice = CacheChoice::from_flags(
        cmd.run.cache.as_deref(),
        cmd.run.no_cache,
        cmd.input.data.first()?,
    );
    let CacheChoice::Dir(dir) = choice else {
        return None;
    };
    let cache = labelwise::store::cache::Cache::open(&dir).ok()?;
    Some(PoolCache {
        cache,
        pool_key: format!("distributed-{key}"),
    })
}

/// Builds [`ClusterRows`] for `provider` over `n` rows of `d` dimensions.
pub fn cluster_rows(provider: Py<PyAny>, n: usize, d: usize) -> ClusterRows {
    ClusterRows { provider, n, d }
}
