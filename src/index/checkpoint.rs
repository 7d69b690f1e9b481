//! Resumable builds: the graph's rows are computed in fixed chunks, each saved to a
//! [`CheckpointStore`] as it completes and reloaded (after validation) by a rerun.

use std::ops::Range;

use indicatif::ProgressBar;

use crate::error::Result;
use crate::index::topk::QUERY_BLOCK;

/// Where a resumable build keeps its finished pieces between runs (see `build::build_resumable`).
///
/// The cache's `Checkpoints` (in `store::cache`) implements it over the cache directory, under a key derived
/// from the graph's own cache key (embedding hash + parameters), so a store only ever holds
/// pieces of the same build. `load` must return exactly what `save` stored or nothing (the
/// cache's checksums guarantee that); the build still validates what it loads.
pub trait CheckpointStore: Sync {
    /// Smallest input (rows) worth checkpointing: below [`CHECKPOINT_MIN_ROWS`] the whole build
    /// takes about a second, less than rerunning it costs anyway.
    fn min_rows(&self) -> usize {
        CHECKPOINT_MIN_ROWS
    }
    /// The bytes saved under `name`, if present and intact.
    fn load(&self, name: &str) -> Option<Vec<u8>>;
    /// Saves `bytes` under `name` atomically. Best effort: a failed save only means less to
    /// resume from, so the store notes it and the build goes on.
    fn save(&self, name: &str, bytes: &[u8]);
}

/// Inputs smaller than this are not checkpointed (see [`CheckpointStore::min_rows`]). Exact
/// search costs ~1 s at 10k rows and 7–11 s at 20k on 2 cores.
pub const CHECKPOINT_MIN_ROWS: usize = 20_000;
/// Chunks of rows a build is split into: a kill loses at most ≈1/20 of the row work.
pub const CHECKPOINT_CHUNKS: usize = 20;
/// Smallest chunk, so small inputs are not cut into slivers.
pub(crate) const MIN_CHUNK_ROWS: usize = 2048;

/// Rows per checkpoint chunk for `n` items: ≈ n / [`CHECKPOINT_CHUNKS`], at least
/// `MIN_CHUNK_ROWS`, rounded up to whole exact-search query blocks (so chunking the exact
/// route does not change its GEMM blocks). A function of `n` only: a rerun cuts the same chunks.
pub fn chunk_rows(n: usize) -> usize {
    let c = n.div_ceil(CHECKPOINT_CHUNKS).max(MIN_CHUNK_ROWS);
    c.div_ceil(QUERY_BLOCK) * QUERY_BLOCK
}

/// What a checkpointed build found and did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResumeStats {
    /// Chunks the rows were computed in (0 when the build was not checkpointed).
    pub chunks: usize,
    /// Chunks loaded from checkpoints instead of computed.
    pub chunks_resumed: usize,
    /// Whether the partitioned route's k-means centroids were loaded instead of fitted.
    pub partition_resumed: bool,
    /// Partitioned route: chunks of refined rows loaded (when all are, nothing is searched).
    pub refined_resumed: usize,
}

/// Magic of a serialised chunk of graph rows.
const CHUNK_MAGIC: &[u8; 4] = b"LWCK";
/// Bytes before a chunk's rows: magic, k, n, first row, rows.
pub(crate) const CHUNK_HEADER: usize = 4 + 4 + 8 + 8 + 8;

/// Chunk payload: `"LWCK"`, k (u32), n (u64), first row (u64), rows (u64), then `rows·k`
/// neighbour ids (u32) and `rows·k` cosines (f32), little-endian.
fn chunk_to_bytes(n: usize, k: usize, start: usize, nb: &[u32], cs: &[f32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(CHUNK_HEADER + nb.len() * 8);
    v.extend_from_slice(CHUNK_MAGIC);
    v.extend_from_slice(&(k as u32).to_le_bytes());
    v.extend_from_slice(&(n as u64).to_le_bytes());
    v.extend_from_slice(&(start as u64).to_le_bytes());
    v.extend_from_slice(&((nb.len() / k) as u64).to_le_bytes());
    for &j in nb {
        v.extend_from_slice(&j.to_le_bytes());
    }
    for &c in cs {
        v.extend_from_slice(&c.to_le_bytes());
    }
    v
}

/// Copies a chunk saved by [`chunk_to_bytes`] into `nb`/`cs` if it is exactly the chunk
/// expected (same n, k, first row and row count; ids in range, no self-loops, finite cosines);
/// false otherwise, leaving the buffers in an unspecified state to be recomputed.
fn chunk_from_bytes(
    b: &[u8],
    n: usize,
    k: usize,
    start: usize,
    nb: &mut [u32],
    cs: &mut [f32],
) -> bool {
    let rows = nb.len() / k;
    let u64_at =
        |o: usize| -> Option<u64> { Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?)) };
    let header_ok = b.len() == CHUNK_HEADER + rows * k * 8
        && &b[..4] == CHUNK_MAGIC
        && b[4..8] == (k as u32).to_le_bytes()
        && u64_at(8) == Some(n as u64)
        && u64_at(16) == Some(start as u64)
        && u64_at(24) == Some(rows as u64);
    if !header_ok {
        return false;
    }
    let (ids, cos) = b[CHUNK_HEADER..].split_at(rows * k * 4);
    for (e, (c, slot)) in ids.chunks_exact(4).zip(nb.iter_mut()).enumerate() {
        let j = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if j as usize >= n || j as usize == start + e / k {
            return false;
        }
        *slot = j;
    }
    for (c, slot) in cos.chunks_exact(4).zip(cs.iter_mut()) {
        let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if !v.is_finite() {
            return false;
        }
        *slot = v;
    }
    true
}

/// Loads every chunk `store` holds a valid checkpoint of (named `<tag>-c<index>`, `chunk` rows
/// each) into `nb`/`cs` (n·k each); returns which chunks were loaded.
pub(crate) fn load_chunks(
    store: Option<&dyn CheckpointStore>,
    tag: &str,
    (n, k, chunk): (usize, usize, usize),
    nb: &mut [u32],
    cs: &mut [f32],
) -> Vec<bool> {
    nb.chunks_mut(chunk * k)
        .zip(cs.chunks_mut(chunk * k))
        .enumerate()
        .map(|(c, (nbc, csc))| {
            store
                .and_then(|s| s.load(&format!("{tag}-c{c}")))
                .is_some_and(|bytes| chunk_from_bytes(&bytes, n, k, c * chunk, nbc, csc))
        })
        .collect()
}

/// Computes the chunks not `loaded` with `compute(rows, nb, cs)`, in order, saving each to
/// `store` as soon as it is done (see [`load_chunks`] for the layout). `progress` advances by
/// the rows of every chunk, loaded or computed, when given.
pub(crate) fn compute_chunks(
    store: Option<&dyn CheckpointStore>,
    tag: &str,
    (n, k, chunk): (usize, usize, usize),
    (nb, cs): (&mut [u32], &mut [f32]),
    loaded: &[bool],
    progress: Option<&ProgressBar>,
    mut compute: impl FnMut(Range<usize>, &mut [u32], &mut [f32]) -> Result<()>,
) -> Result<()> {
    for (c, (nbc, csc)) in nb
        .chunks_mut(chunk * k)
        .zip(cs.chunks_mut(chunk * k))
        .enumerate()
    {
        let start = c * chunk;
        let rows = start..start + nbc.len() / k;
        if !loaded[c] {
            compute(rows.clone(), nbc, csc)?;
            // A sentinel left in means NaN input: the build fails later, nothing worth saving.
            if let Some(s) = store.filter(|_| !nbc.contains(&u32::MAX)) {
                s.save(
                    &format!("{tag}-c{c}"),
                    &chunk_to_bytes(n, k, start, nbc, csc),
                );
            }
        }
        if let Some(p) = progress {
            p.inc(rows.len() as u64);
        }
    }
    Ok(())
}
