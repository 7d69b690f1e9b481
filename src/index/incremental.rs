//! The neighbour graph of a pool that extends a cached pool: new data arrives between labeling
//! rounds, appended after the rows already seen, and rebuilding the whole graph for it would
//! repeat work the cache already holds.
//!
//! Recognising the cached prefix: beside every cached graph, a *prefix manifest* records the
//! pool's row count and the blake3 hashes of its rows in chunks of [`CHUNK_ROWS`] (the unit
//! rows' little-endian f32 bytes). The manifest is keyed by the graph parameters, the dimension
//! and the first row, which every extension of a pool shares; "the first n rows are identical"
//! is then one hashing pass over those rows. A pool whose rows were reordered, edited or
//! partly removed is not an extension and gets a full rebuild.
//!
//! Extending the graph ([`extend_exact`]): one blocked GEMM of the new rows against the old
//! rows serves both directions — its rows give the new rows' neighbours among the old rows,
//! its columns let every old row's list take in the new rows that beat its current k-th
//! neighbour — plus an exact search of the new rows among themselves. Both are exact, so the old rows' lists are exactly what a
//! rebuild by the base graph's route would hold among the old rows, merged with the exact best
//! among the new rows: an exact base stays exact (bit-identical neighbour lists to an exact
//! rebuild, up to GEMM rounding of near-ties), and an approximate base keeps its recall on the
//! old rows while the new rows are exact. The invariant dedup's pair search relies on — an item
//! whose k-th cosine is below T lists every item above T — holds wherever it held in the base
//! and everywhere for new rows.
//!
//! Cost: m·(n+m) dot products for m new rows on n old ones. [`worth_extending`] compares that
//! with what a rebuild of n+m rows costs by the route `Auto` would take (measured constants,
//! see benches/results/dedup.md) and falls back to a rebuild when the append is larger.
//! With `--index hnsw` the cached `hnsw_rs` index of the base answers the new rows instead
//! ([`extend_with_index`], chosen in `pipeline`): it takes in the new rows and is cached again
//! for the next append. It is not the default: building that index over the pool costs more
//! than rebuilding the graph by the partitioned route at every size measured, and inserting the
//! new rows into it costs more than the exact search of them (benches/results/dedup.md,
//! "incremental").

use indicatif::ProgressBar;
use ndarray::{linalg::general_mat_mul, s, Array2, ArrayView2};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::graph::{self, GraphParams, IndexKind, NeighborGraph};
use crate::index::topk;
use crate::store::cache::Cache;

/// Rows per hashed chunk of the prefix manifest: big enough that the hash list is small
/// (245 hashes for 1M rows), small enough that the hashing parallelises.
pub const CHUNK_ROWS: usize = 4096;
/// Pools remembered per manifest (newest first): enough for a few rounds of appends, and for
/// two pools that share a first row (e.g. a subset run and the full run).
pub const MAX_RECORDS: usize = 6;

/// The hnsw query route asks the index for this many times k neighbours per new row; all of
/// them are candidates for the old rows' lists (the reverse update), the first k are the new
/// row's own list. Old rows' share of their exact top-8 kept, on clustered 16-d data with 17%
/// new rows (unit test): 0.908 with 1× (the reverse of the k-lists alone), 0.940 with 2×,
/// 0.969 with 4×.
pub const REVERSE_FACTOR: usize = 4;

/// Magic of a serialised manifest.
const MANIFEST_MAGIC: &[u8; 4] = b"LWPM";

/// One cached pool that later pools may extend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRecord {
    /// Rows of the cached pool.
    pub n: usize,
    /// Cache key of its graph entry.
    pub graph_key: String,
    /// blake3 of rows `[c·CHUNK_ROWS, min((c+1)·CHUNK_ROWS, n))` for every chunk c.
    pub hashes: Vec<[u8; 32]>,
}

/// Hash of rows `r0..r1` of unit rows (standard layout or not): their little-endian f32 bytes.
fn range_hash(emb: ArrayView2<f32>, r0: usize, r1: usize) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    crate::store::cache::hash_rows(&mut h, emb.slice(s![r0..r1, ..]));
    *h.finalize().as_bytes()
}

/// Chunk hashes of the first `n` rows (the last chunk may be partial), in parallel.
pub fn chunk_hashes(emb: ArrayView2<f32>, n: usize) -> Vec<[u8; 32]> {
    let n = n.min(emb.nrows());
    (0..n.div_ceil(CHUNK_ROWS))
        .into_par_iter()
        .map(|c| range_hash(emb, c * CHUNK_ROWS, ((c + 1) * CHUNK_ROWS).min(n)))
        .collect()
}

/// Cache key of the manifest for pools with these parameters, this dimension and this first
/// row; `None` for an empty pool.
pub fn manifest_key(emb: ArrayView2<f32>, params: &GraphParams) -> Option<String> {
    if emb.nrows() == 0 {
        return None;
    }
    let mut h = blake3::Hasher::new();
    h.update(b"labelwise-prefix-v1");
    h.update(&params.cache_key_bytes());
    h.update(&(emb.ncols() as u64).to_le_bytes());
    h.update(&range_hash(emb, 0, 1));
    Some(format!("prefix-{}", h.finalize().to_hex()))
}

/// Serialises records: magic, count (u32), then per record n (u64), key length (u16), key,
/// hash count (u32), hashes.
fn encode(records: &[PrefixRecord]) -> Vec<u8> {
    let mut v = MANIFEST_MAGIC.to_vec();
    v.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        v.extend_from_slice(&(r.n as u64).to_le_bytes());
        v.extend_from_slice(&(r.graph_key.len() as u16).to_le_bytes());
        v.extend_from_slice(r.graph_key.as_bytes());
        v.extend_from_slice(&(r.hashes.len() as u32).to_le_bytes());
        for h in &r.hashes {
            v.extend_from_slice(h);
        }
    }
    v
}

/// Reads [`encode`]'s bytes; `None` for anything malformed (the entry passed the cache
/// checksum, so that means a bug or a format change: treated as no manifest).
fn decode(b: &[u8]) -> Option<Vec<PrefixRecord>> {
    let mut pos = 0usize;
    let mut take = |len: usize| -> Option<&[u8]> {
        let out = b.get(pos..pos.checked_add(len)?)?;
        pos += len;
        Some(out)
    };
    if take(4)? != MANIFEST_MAGIC {
        return None;
    }
    let count = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    let mut out = Vec::with_capacity(count.min(MAX_RECORDS));
    for _ in 0..count {
        let n = usize::try_from(u64::from_le_bytes(take(8)?.try_into().ok()?)).ok()?;
        let klen = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
        let graph_key = String::from_utf8(take(klen)?.to_vec()).ok()?;
        let nh = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        if nh != n.div_ceil(CHUNK_ROWS) {
            return None;
        }
        let mut hashes = Vec::with_capacity(nh);
        for _ in 0..nh {
            hashes.push(take(32)?.try_into().ok()?);
        }
        out.push(PrefixRecord {
            n,
            graph_key,
            hashes,
        });
    }
    (pos == b.len()).then_some(out)
}

/// The largest remembered pool of which `emb` is a strict extension (same first `n` rows,
/// more rows in total), if any.
pub fn find_base(
    cache: &Cache,
    emb: ArrayView2<f32>,
    params: &GraphParams,
) -> Option<PrefixRecord> {
    let key = manifest_key(emb, params)?;
    let mut records = decode(&cache.get(&key)?)?;
    let total = emb.nrows();
    records.retain(|r| r.n >= 2 && r.n < total);
    records.sort_by_key(|r| std::cmp::Reverse(r.n));
    let longest = records.first()?.n;
    // Full chunks shared by every candidate are hashed once.
    let full = chunk_hashes(emb, (longest / CHUNK_ROWS) * CHUNK_ROWS);
    records.into_iter().find(|r| {
        let whole = r.n / CHUNK_ROWS;
        let same_full = r.hashes[..whole] == full[..whole];
        same_full
            && (r.n % CHUNK_ROWS == 0
                || r.hashes[whole] == range_hash(emb, whole * CHUNK_ROWS, r.n))
    })
}

/// Adds the pool `emb` (whose graph is cached under `graph_key`) to its manifest, newest first,
/// keeping at most [`MAX_RECORDS`]. Two runs writing the same manifest at once may lose one
/// record: that only costs a later run a rebuild.
pub fn remember(
    cache: &Cache,
    emb: ArrayView2<f32>,
    params: &GraphParams,
    graph_key: &str,
) -> Result<()> {
    let Some(key) = manifest_key(emb, params) else {
        return Ok(());
    };
    let n = emb.nrows();
    let mut records = cache.get(&key).and_then(|b| decode(&b)).unwrap_or_default();
    records.retain(|r| r.graph_key != graph_key && r.n != n);
    records.insert(
        0,
        PrefixRecord {
            n,
            graph_key: graph_key.to_string(),
            hashes: chunk_hashes(emb, n),
        },
    );
    records.truncate(MAX_RECORDS);
    cache.put(&key, &encode(&records))
}

/// Measured cost of a partitioned build, in dot products per item per √n (synthetic clustered
/// 384-d on 2 cores: ≈ 40·√n at 1M, more at 100k; the lower figure makes the choice favour a
/// rebuild).
const PARTITIONED_DOTS_PER_SQRT_N: f64 = 40.0;

/// Whether extending a graph of `n_old` rows by `m` rows is cheaper than rebuilding `n_old + m`
/// rows by the `Auto` route: m·(n+m) dot products against n² (exact) or 40·√n·n
/// (partitioned).
pub fn worth_extending(n_old: usize, m: usize) -> bool {
    let total = (n_old + m) as f64;
    let append = m as f64 * total;
    let rebuild = match graph::auto_route(n_old + m) {
        IndexKind::Partitioned => PARTITIONED_DOTS_PER_SQRT_N * total.sqrt() * total,
        _ => total * total,
    };
    m > 0 && append <= rebuild
}

/// The graph of all rows of `emb`, given the graph `base` of its first `base.len()` rows (see
/// the module docs for what is exact). `base.k` must be `min(k, n_old − 1)` for the k wanted;
/// the caller checks it. Advances `progress` by one per row searched (new rows, then old rows).
pub fn extend_exact(
    emb: ArrayView2<f32>,
    base: &NeighborGraph,
    progress: &ProgressBar,
) -> Result<NeighborGraph> {
    let n_old = base.len();
    let n = emb.nrows();
    let k = base.k;
    if k == 0 || n_old == 0 || n_old >= n {
        return Err(Error::Internal(format!(
            "extend_exact: base of {n_old} rows (k = {k}) for {n} rows"
        )));
    }
    let emb = emb.as_standard_layout();
    let emb = emb.view();
    let m = n - n_old;
    let new_rows = emb.slice(s![n_old.., ..]);
    let mut neighbors = Vec::with_capacity(n * k);
    let mut cosines = Vec::with_capacity(n * k);
    neighbors.extend_from_slice(&base.neighbors);
    cosines.extend_from_slice(&base.cosines);
    // One GEMM per (tile of old rows, block of new rows) serves both directions: its rows
    // update the new rows' candidates, its columns the old rows' lists. Parallel over old
    // tiles (each task owns its old rows); every thread folds the new rows' candidates into
    // its own buffer, merged at the end (the top-k under a total order does not depend on the
    // merge order, so the result is deterministic).
    let empty = || (vec![u32::MAX; m * k], vec![f32::NEG_INFINITY; m * k]);
    let (mut nb_new, mut cs_new) = neighbors
        .par_chunks_mut(OLD_TILE * k)
        .zip(cosines.par_chunks_mut(OLD_TILE * k))
        .enumerate()
        .fold(empty, |(mut pn, mut pc), (t, (nb, cs))| {
            let o0 = t * OLD_TILE;
            let rows = nb.len() / k;
            let ov = emb.slice(s![o0..o0 + rows, ..]);
            let mut sc = Array2::<f32>::zeros((NEW_BLOCK.min(m), rows));
            for q0 in (0..m).step_by(NEW_BLOCK) {
                let q1 = (q0 + NEW_BLOCK).min(m);
                let qv = new_rows.slice(s![q0..q1, ..]);
                let mut out = sc.slice_mut(s![..q1 - q0, ..]);
                general_mat_mul(1.0, &qv, &ov.t(), 0.0, &mut out);
                for (r, row) in out.outer_iter().enumerate() {
                    let u = q0 + r;
                    let (pn_u, pc_u) = (&mut pn[u * k..(u + 1) * k], &mut pc[u * k..(u + 1) * k]);
                    let j = (n_old + u) as u32;
                    for (c, &v) in row.iter().enumerate() {
                        let i = (o0 + c) as u32;
                        if topk::better(v, i, pc_u[k - 1], pn_u[k - 1]) {
                            topk::topk_push(pn_u, pc_u, i, v);
                        }
                        let (oi, os) = (&mut nb[c * k..(c + 1) * k], &mut cs[c * k..(c + 1) * k]);
                        if topk::better(v, j, os[k - 1], oi[k - 1]) {
                            topk::topk_push(oi, os, j, v);
                        }
                    }
                }
            }
            progress.inc(rows as u64);
            (pn, pc)
        })
        .reduce(empty, |(mut an, mut ac), (bn, bc)| {
            for u in 0..m {
                let r = u * k..(u + 1) * k;
                let (ai, asc) = (&mut an[r.clone()], &mut ac[r.clone()]);
                for (&j, &c) in bn[r.clone()].iter().zip(&bc[r.clone()]) {
                    if j != u32::MAX {
                        topk::topk_push(ai, asc, j, c);
                    }
                }
            }
            (an, ac)
        });
    // New rows among themselves, exactly, merged in.
    let self_ids: Vec<u32> = (0..m as u32).collect();
    let mut nb_nn = vec![0u32; m * k];
    let mut cs_nn = vec![0f32; m * k];
    topk::exact_topk(
        new_rows, new_rows, &self_ids, k, &mut nb_nn, &mut cs_nn, None,
    );
    nb_new
        .par_chunks_mut(k)
        .zip(cs_new.par_chunks_mut(k))
        .zip(nb_nn.par_chunks(k).zip(cs_nn.par_chunks(k)))
        .for_each(|((nb, cs), (rn, rc))| {
            for (&j, &c) in rn.iter().zip(rc) {
                if j != u32::MAX {
                    topk::topk_push(nb, cs, n_old as u32 + j, c);
                }
            }
        });
    progress.inc(m as u64);
    neighbors.extend_from_slice(&nb_new);
    cosines.extend_from_slice(&cs_new);
    if let Some(pos) = neighbors.iter().position(|&j| j == u32::MAX) {
        return Err(Error::Usage(format!(
            "item {} has no valid neighbours: the embeddings contain NaN or infinite values",
            pos / k
        )));
    }
    Ok(NeighborGraph {
        k,
        neighbors,
        cosines,
    })
}

/// Old rows per task in [`extend_exact`] (the score block is `NEW_BLOCK × OLD_TILE` f32, 4 MiB).
const OLD_TILE: usize = 4096;
/// New rows per GEMM in [`extend_exact`].
const NEW_BLOCK: usize = 256;

/// The graph of all rows of `emb` from the graph `base` of its first rows and an HNSW `index`
/// over those rows: the "hnsw query route" that `--index hnsw` takes, a measured alternative
/// to [`extend_exact`] (benches/results/dedup.md). The new rows are inserted into the index, each
/// new row's k neighbours come from an index query (k+1 asked, itself dropped by id; cosines
/// recomputed), and an old row's list takes in a new row only when that old row appears in
/// the new row's [`REVERSE_FACTOR`]·k nearest by the index and beats its k-th neighbour.
/// **Approximation:** an old row that a new row beats but that is not among the new row's
/// [`REVERSE_FACTOR`]·k nearest is not updated (it
/// happens when the new row sits in a denser region than the old row), and the new rows'
/// lists have the index's recall, not 1.0.
pub fn extend_with_index(
    emb: ArrayView2<f32>,
    base: &NeighborGraph,
    index: &mut crate::index::hnsw::HnswIndex,
) -> Result<NeighborGraph> {
    let n_old = base.len();
    let n = emb.nrows();
    let k = base.k;
    if k == 0 || n_old == 0 || n_old >= n || index.len() != n_old {
        return Err(Error::Internal(format!(
            "extend_with_index: base of {n_old} rows, index of {}, for {n} rows",
            index.len()
        )));
    }
    let emb = emb.as_standard_layout();
    let emb = emb.view();
    index.insert(emb.slice(s![n_old.., ..]), n_old)?;
    let m = n - n_old;
    let kr = k * REVERSE_FACTOR;
    // Each new row's kr nearest by the index (cosines recomputed): its own list is the first
    // k, and all kr are candidates for the reverse update of old rows.
    let mut nb_wide = vec![u32::MAX; m * kr];
    let mut cs_wide = vec![f32::NEG_INFINITY; m * kr];
    nb_wide
        .par_chunks_mut(kr)
        .zip(cs_wide.par_chunks_mut(kr))
        .enumerate()
        .for_each(|(u, (nb, cs))| {
            let i = n_old + u;
            let v = emb.row(i);
            let v = v.as_slice().unwrap_or(&[]);
            for (j, _) in index.query(v, kr + 1) {
                if j as usize != i && (j as usize) < n {
                    let c =
                        crate::index::topk::dot(v, emb.row(j as usize).as_slice().unwrap_or(&[]));
                    topk::topk_push(nb, cs, j, c);
                }
            }
        });
    let mut neighbors = base.neighbors.clone();
    let mut cosines = base.cosines.clone();
    // Reverse of the new rows' results, applied serially in new-row order (deterministic
    // given the results).
    for u in 0..m {
        let j = (n_old + u) as u32;
        for (&i, &c) in nb_wide[u * kr..(u + 1) * kr]
            .iter()
            .zip(&cs_wide[u * kr..(u + 1) * kr])
        {
            if (i as usize) < n_old {
                let r = i as usize * k..(i as usize + 1) * k;
                topk::topk_push(&mut neighbors[r.clone()], &mut cosines[r], j, c);
            }
        }
    }
    let mut nb_new = Vec::with_capacity(m * k);
    let mut cs_new = Vec::with_capacity(m * k);
    for u in 0..m {
        nb_new.extend_from_slice(&nb_wide[u * kr..u * kr + k]);
        cs_new.extend_from_slice(&cs_wide[u * kr..u * kr + k]);
    }
    neighbors.extend_from_slice(&nb_new);
    cosines.extend_from_slice(&cs_new);
    // Rows the index left short (rare) are completed exactly.
    topk::complete_short_rows(
        emb,
        n_old..n,
        k,
        &mut neighbors[n_old * k..],
        &mut cosines[n_old * k..],
    );
    Ok(NeighborGraph {
        k,
        neighbors,
        cosines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::kmeans::tests::clustered;

    fn exact(x: ArrayView2<f32>, k: usize) -> NeighborGraph {
        let p = GraphParams {
            k,
            index: IndexKind::Exact,
            ..GraphParams::default()
        };
        crate::index::build(x, &p, &ProgressBar::hidden())
            .unwrap()
            .0
    }

    #[test]
    fn extension_equals_exact_rebuild() {
        let x = clustered(900, 24, 6, 0.6, 4);
        let base = exact(x.slice(s![..700, ..]), 10);
        let ext = extend_exact(x.view(), &base, &ProgressBar::hidden()).unwrap();
        let full = exact(x.view(), 10);
        assert_eq!(ext.neighbors, full.neighbors);
        for (a, b) in ext.cosines.iter().zip(&full.cosines) {
            assert!((a - b).abs() < 1e-5);
        }
        // A few new rows (fewer than k) still work.
        let base = exact(x.slice(s![..895, ..]), 10);
        let ext = extend_exact(x.view(), &base, &ProgressBar::hidden()).unwrap();
        assert_eq!(ext.neighbors, full.neighbors);
    }

    #[test]
    fn duplicates_of_new_rows_beyond_top_k_are_all_found() {
        // 30 near-copies of one row, half among the old rows and half among the new ones:
        // with k = 8 every copy is saturated, so the pairs come from dedup's extension.
        let mut x = clustered(1000, 24, 6, 0.6, 12);
        let base_row = x.row(3).to_owned();
        let slots: Vec<usize> = (0..30).map(|i| 3 + i * 33).collect();
        for (c, &slot) in slots.iter().enumerate() {
            let mut v = base_row.clone();
            v[c % 24] += 0.01;
            let norm = v.dot(&v).sqrt();
            x.row_mut(slot).assign(&(v / norm));
        }
        let base = exact(x.slice(s![..500, ..]), 8);
        let ext = extend_exact(x.view(), &base, &ProgressBar::hidden()).unwrap();
        let full = exact(x.view(), 8);
        let got = crate::round::dedup::find_pairs(x.view(), &ext, 0.99);
        assert_eq!(got, crate::round::dedup::find_pairs(x.view(), &full, 0.99));
        let copies = got
            .iter()
            .filter(|p| slots.contains(&(p.a as usize)) && slots.contains(&(p.b as usize)))
            .count();
        assert_eq!(copies, 30 * 29 / 2);
    }

    #[test]
    fn manifest_finds_the_longest_cached_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let p = GraphParams::default();
        let x = clustered(2 * CHUNK_ROWS + 300, 8, 3, 0.5, 2);
        let n1 = CHUNK_ROWS + 10;
        let n2 = 2 * CHUNK_ROWS;
        remember(&cache, x.slice(s![..n1, ..]), &p, "graph-a").unwrap();
        remember(&cache, x.slice(s![..n2, ..]), &p, "graph-b").unwrap();
        let got = find_base(&cache, x.view(), &p).unwrap();
        assert_eq!((got.n, got.graph_key.as_str()), (n2, "graph-b"));
        // A pool between the two extends only the first.
        let got = find_base(&cache, x.slice(s![..n1 + 5, ..]), &p).unwrap();
        assert_eq!((got.n, got.graph_key.as_str()), (n1, "graph-a"));
        // The same pool is not its own extension.
        assert!(find_base(&cache, x.slice(s![..n1, ..]), &p).is_none());
        // An edited row inside the prefix (not the first row) breaks the match.
        let mut y = x.clone();
        y[[CHUNK_ROWS + 100, 0]] += 0.25;
        let got = find_base(&cache, y.view(), &p).unwrap();
        assert_eq!(got.n, n1);
        y[[5, 1]] += 0.25;
        assert!(find_base(&cache, y.view(), &p).is_none());
        // Other parameters: other manifest.
        let q = GraphParams {
            k: 7,
            ..GraphParams::default()
        };
        assert!(find_base(&cache, x.view(), &q).is_none());
        // Malformed bytes decode to nothing.
        let key = manifest_key(x.view(), &p).unwrap();
        let good = cache.get(&key).unwrap();
        assert_eq!(decode(&good).unwrap().len(), 2);
        assert!(decode(&good[..good.len() - 1]).is_none());
        assert!(decode(b"LWPM").is_none());
    }

    #[test]
    fn index_route_finds_most_neighbours() {
        let x = clustered(1200, 16, 5, 0.5, 8);
        let base = exact(x.slice(s![..1000, ..]), 8);
        let mut idx =
            crate::index::hnsw::HnswIndex::build(x.slice(s![..1000, ..]), &ProgressBar::hidden())
                .unwrap();
        let g = extend_with_index(x.view(), &base, &mut idx).unwrap();
        assert_eq!(idx.len(), 1200);
        assert_eq!(g.len(), 1200);
        // New rows' lists come from the index (exact here); old rows' lists miss the new rows
        // that the reverse candidates did not reach (0.969 of old rows' top-8 with 4×, 0.940
        // with 2×, 0.908 with 1×, at 17% new rows).
        let full = exact(x.view(), 8);
        let hits = |rows: std::ops::Range<usize>| -> f64 {
            let len = rows.len();
            let h: usize = rows
                .map(|i| {
                    g.row(i)
                        .0
                        .iter()
                        .filter(|j| full.row(i).0.contains(j))
                        .count()
                })
                .sum();
            h as f64 / (len * 8) as f64
        };
        assert!(hits(1000..1200) > 0.98, "new rows {}", hits(1000..1200));
        assert!(hits(0..1000) > 0.95, "old rows {}", hits(0..1000));
    }

    #[test]
    fn cost_rule() {
        assert!(worth_extending(20_000, 1_000));
        assert!(worth_extending(100_000, 5_000));
        assert!(!worth_extending(1_000_000, 100_000));
        // Below the exact route's size limit an append always computes fewer products.
        assert!(worth_extending(1_000, 2_000));
        assert!(!worth_extending(1_000, 0));
    }
}
