//! A small content-addressed cache directory for label-independent artifacts (the neighbour
//! graph first of all), keyed by a hash of the embeddings plus the parameters.
//!
//! Entry file format (all integers little-endian):
//! `magic "LWCACHE\0"` (8 bytes) · `format version` (u32) · `payload length` (u64) · payload ·
//! `blake3(payload)` (32 bytes). A file that is truncated, has trailing bytes, a wrong magic or
//! version, or a checksum mismatch is removed and reported as a miss: never trusted, never a
//! panic. Writes go to a temporary file in the same directory which is then renamed over the
//! entry, so concurrent readers and writers never see a torn entry (rename is atomic on POSIX
//! file systems; two writers of the same key simply race to put identical content). Temporaries
//! a killed run left behind are removed when the cache is next opened, without touching a
//! concurrent run's in-flight ones (see [`crate::store::atomic::remove_stale_temps`]).
//!
//! [`Checkpoints`] keeps the finished pieces of an interrupted graph build as ordinary entries,
//! so the next run resumes it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use ndarray::ArrayView2;

use crate::error::{Error, Result};
use crate::index::checkpoint::CheckpointStore;
use crate::index::graph::NeighborGraph;
use crate::store::atomic;

/// File magic of a cache entry.
const MAGIC: &[u8; 8] = b"LWCACHE\0";
/// Bump when the entry layout changes; old entries then read as misses.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before the payload: magic, version, length.
const HEADER: usize = 8 + 4 + 8;
/// Bytes after the payload: the blake3 checksum.
const TRAILER: usize = 32;

/// Content hash of an embedding matrix: shape plus the raw little-endian f32 bytes in row-major
/// order (independent of the in-memory layout), so equal matrices share cache entries.
pub fn embedding_hash(emb: ArrayView2<f32>) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"labelwise-embeddings-v1");
    h.update(&(emb.nrows() as u64).to_le_bytes());
    h.update(&(emb.ncols() as u64).to_le_bytes());
    hash_rows(&mut h, emb);
    h.finalize()
}

/// Feeds the little-endian f32 bytes of `rows`, row-major, into `h` (any memory layout: the
/// bytes, and so the hash, depend only on the values).
pub fn hash_rows(h: &mut blake3::Hasher, rows: ArrayView2<f32>) {
    let mut buf: Vec<u8> = Vec::with_capacity(rows.ncols() * 4 * 256);
    for block in rows.axis_chunks_iter(ndarray::Axis(0), 256) {
        buf.clear();
        for v in block.iter() {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        h.update(&buf);
    }
}

/// A cache directory; entries are files named by their key.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// Opens (creating it if needed) the cache directory `dir`.
    /// Temporaries left by a killed run are removed (only ones no live process holds), and so
    /// are checkpoints untouched for [`CHECKPOINT_MAX_AGE`]: those of builds that were killed
    /// and never rerun on the same data, which nothing else would ever delete.
    pub fn open(dir: impl AsRef<Path>) -> Result<Cache> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        atomic::remove_stale_temps(&dir, Some(is_legacy_temp));
        let cache = Cache { dir };
        cache.remove_old(CHECKPOINT_PREFIX, CHECKPOINT_MAX_AGE);
        Ok(cache)
    }

    /// Deletes entries whose key starts with `prefix` and whose file was last written more
    /// than `max_age` ago; returns how many went (best effort).
    pub fn remove_old(&self, prefix: &str, max_age: Duration) -> usize {
        let now = SystemTime::now();
        self.entries_with_prefix(prefix)
            .filter(|e| {
                e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age > max_age)
            })
            .filter(|e| fs::remove_file(e.path()).is_ok())
            .count()
    }

    /// The directory this cache lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the entry for `key`; `None` for keys that are not plain file names.
    fn path(&self, key: &str) -> Option<PathBuf> {
        let ok = !key.is_empty()
            && key.len() <= 200
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !key.starts_with('.');
        ok.then(|| self.dir.join(format!("{key}.lwc")))
    }

    /// The payload stored under `key`, or `None` on a miss. Invalid entries are deleted and
    /// count as misses; so do unreadable files and invalid keys.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let path = self.path(key)?;
        let bytes = fs::read(&path).ok()?;
        match decode_entry(&bytes) {
            Some(payload) => Some(payload.to_vec()),
            None => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `bytes` under `key`, atomically (locked temporary file + rename in the cache
    /// directory, see [`atomic::write_atomic`]).
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self
            .path(key)
            .ok_or_else(|| Error::Internal(format!("invalid cache key {key:?}")))?;
        atomic::write_atomic(&path, |w| {
            let mut write = || -> std::io::Result<()> {
                w.write_all(MAGIC)?;
                w.write_all(&FORMAT_VERSION.to_le_bytes())?;
                w.write_all(&(bytes.len() as u64).to_le_bytes())?;
                w.write_all(bytes)?;
                w.write_all(blake3::hash(bytes).as_bytes())
            };
            write().map_err(|e| Error::io(&path, e))
        })?;
        Ok(())
    }

    /// Deletes the entry for `key` if present (best effort: a missing entry is not an error).
    pub fn remove(&self, key: &str) {
        if let Some(path) = self.path(key) {
            let _ = fs::remove_file(path);
        }
    }

    /// Deletes every entry whose key starts with `prefix` and returns how many went.
    pub fn remove_prefix(&self, prefix: &str) -> usize {
        self.entries_with_prefix(prefix)
            .filter(|e| fs::remove_file(e.path()).is_ok())
            .count()
    }

    /// The directory entries of the valid keys that start with `prefix` (none when the
    /// directory cannot be read).
    fn entries_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = fs::DirEntry> + 'a {
        fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(move |e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".lwc"))
                    .is_some_and(|k| k.starts_with(prefix) && self.path(k).is_some())
            })
    }
}

/// Temporary names of cache writes before they moved to [`atomic::write_atomic`]
/// (`tempfile`'s `.tmp-XXXXXX`).
fn is_legacy_temp(name: &str) -> bool {
    name.strip_prefix(".tmp-")
        .is_some_and(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Key prefix of every checkpoint entry.
const CHECKPOINT_PREFIX: &str = "ckpt-";

/// Checkpoints untouched this long belong to a build nobody resumed: [`Cache::open`] removes
/// them. A week: long past any rerun after a kill, short enough that abandoned builds (up to a
/// graph's size each) do not pile up.
pub const CHECKPOINT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The checkpoints of one graph build: entries named `ckpt-<graph key hash>-<name>` in a
/// [`Cache`], so a killed build's finished chunks are found by the next run with the same
/// embeddings and parameters (and by nothing else). Writes are best effort: a checkpoint that
/// cannot be stored only means less to resume from. [`Checkpoints::clear`] deletes them all
/// once the finished graph is safely cached.
#[derive(Debug)]
pub struct Checkpoints<'a> {
    cache: &'a Cache,
    prefix: String,
    min_rows: usize,
    failed: Mutex<Option<String>>,
}

impl<'a> Checkpoints<'a> {
    /// Checkpoints of the build whose final graph is stored under `graph_key`.
    pub fn new(cache: &'a Cache, graph_key: &str) -> Checkpoints<'a> {
        let h = blake3::hash(graph_key.as_bytes()).to_hex();
        Checkpoints {
            cache,
            prefix: format!("{CHECKPOINT_PREFIX}{}-", &h[..32]),
            min_rows: crate::index::checkpoint::CHECKPOINT_MIN_ROWS,
            failed: Mutex::new(None),
        }
    }

    /// Overrides the smallest input that is checkpointed (tests use 0 to exercise small sets).
    pub fn with_min_rows(mut self, min_rows: usize) -> Checkpoints<'a> {
        self.min_rows = min_rows;
        self
    }

    /// Key prefix of every entry of this build.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Deletes every checkpoint of this build; returns how many there were.
    pub fn clear(&self) -> usize {
        self.cache.remove_prefix(&self.prefix)
    }

    /// The first error a checkpoint write hit, if any (for a note; the build went on).
    pub fn write_error(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|g| g.clone())
    }
}

impl CheckpointStore for Checkpoints<'_> {
    fn min_rows(&self) -> usize {
        self.min_rows
    }

    fn load(&self, name: &str) -> Option<Vec<u8>> {
        self.cache.get(&format!("{}{name}", self.prefix))
    }

    fn save(&self, name: &str, bytes: &[u8]) {
        if let Err(e) = self.cache.put(&format!("{}{name}", self.prefix), bytes) {
            if let Ok(mut g) = self.failed.lock() {
                g.get_or_insert_with(|| format!("checkpoint not written: {e}"));
            }
        }
    }
}

/// The payload of a well-formed entry, `None` for anything else.
fn decode_entry(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < HEADER + TRAILER || &bytes[..8] != MAGIC {
        return None;
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
    if version != FORMAT_VERSION {
        return None;
    }
    let len = usize::try_from(u64::from_le_bytes(bytes[12..20].try_into().ok()?)).ok()?;
    if bytes.len() - HEADER - TRAILER != len {
        return None;
    }
    let payload = &bytes[HEADER..HEADER + len];
    let sum = &bytes[HEADER + len..];
    (blake3::hash(payload).as_bytes() == sum).then_some(payload)
}

/// Magic of the serialised graph.
const GRAPH_MAGIC: &[u8; 4] = b"LWKG";

/// Serialises a graph: `"LWKG"`, `k` (u32), `n` (u64), `n·k` neighbour ids (u32), `n·k`
/// cosines (f32), all little-endian.
pub fn graph_to_bytes(g: &NeighborGraph) -> Vec<u8> {
    let n = g.len();
    let mut v = Vec::with_capacity(16 + g.neighbors.len() * 8);
    v.extend_from_slice(GRAPH_MAGIC);
    v.extend_from_slice(&(g.k as u32).to_le_bytes());
    v.extend_from_slice(&(n as u64).to_le_bytes());
    for &j in &g.neighbors {
        v.extend_from_slice(&j.to_le_bytes());
    }
    for &c in &g.cosines {
        v.extend_from_slice(&c.to_le_bytes());
    }
    v
}

/// Reads a graph written by [`graph_to_bytes`], validating its size, that every neighbour id is
/// `< n` and not the item itself, and that cosines are finite (`Error::Internal` otherwise, as
/// the bytes passed the cache checksum and can only be wrong through a bug).
pub fn graph_from_bytes(b: &[u8]) -> Result<NeighborGraph> {
    let bad = |m: &str| Error::Internal(format!("invalid serialised neighbour graph: {m}"));
    if b.len() < 16 || &b[..4] != GRAPH_MAGIC {
        return Err(bad("wrong magic or too short"));
    }
    let k = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    let n = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
    let n = usize::try_from(n).map_err(|_| bad("item count too large"))?;
    let entries = n.checked_mul(k).ok_or_else(|| bad("size overflow"))?;
    let expect = entries
        .checked_mul(8)
        .and_then(|x| x.checked_add(16))
        .ok_or_else(|| bad("size overflow"))?;
    if b.len() != expect {
        return Err(bad("length does not match the header"));
    }
    if k == 0 && n != 0 {
        return Err(bad("k = 0 with items"));
    }
    let body = &b[16..];
    let (ids, cos) = body.split_at(entries * 4);
    let neighbors: Vec<u32> = ids
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let cosines: Vec<f32> = cos
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for (e, (&j, &c)) in neighbors.iter().zip(&cosines).enumerate() {
        if j as usize >= n || j as usize == e / k.max(1) || !c.is_finite() {
            return Err(bad(
                "neighbour out of range, self-loop or non-finite cosine",
            ));
        }
    }
    Ok(NeighborGraph {
        k,
        neighbors,
        cosines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_path(c: &Cache, key: &str) -> PathBuf {
        c.path(key).unwrap()
    }

    #[test]
    fn roundtrip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path().join("sub")).unwrap();
        assert_eq!(c.get("a"), None);
        c.put("a", b"hello world").unwrap();
        assert_eq!(c.get("a").as_deref(), Some(&b"hello world"[..]));
        c.put("empty", b"").unwrap();
        assert_eq!(c.get("empty").as_deref(), Some(&b""[..]));
        assert!(c.put("../evil", b"x").is_err());
        assert_eq!(c.get("../evil"), None);

        let p = entry_path(&c, "a");
        let good = fs::read(&p).unwrap();
        // truncated
        fs::write(&p, &good[..good.len() - 5]).unwrap();
        assert_eq!(c.get("a"), None);
        assert!(!p.exists(), "corrupt entry removed");
        // flipped payload byte
        let mut flip = good.clone();
        flip[HEADER + 3] ^= 0x40;
        fs::write(&p, &flip).unwrap();
        assert_eq!(c.get("a"), None);
        // wrong magic
        let mut magic = good.clone();
        magic[0] = b'X';
        fs::write(&p, &magic).unwrap();
        assert_eq!(c.get("a"), None);
        // wrong version
        let mut ver = good.clone();
        ver[8] = 99;
        fs::write(&p, &ver).unwrap();
        assert_eq!(c.get("a"), None);
        // trailing garbage
        let mut long = good.clone();
        long.push(0);
        fs::write(&p, &long).unwrap();
        assert_eq!(c.get("a"), None);
        // empty file
        fs::write(&p, b"").unwrap();
        assert_eq!(c.get("a"), None);
        // and a good one again
        fs::write(&p, &good).unwrap();
        assert_eq!(c.get("a").as_deref(), Some(&b"hello world"[..]));
        // no temporary files left behind
        let leftovers = fs::read_dir(c.dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .map(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                    .unwrap_or(false)
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn abandoned_checkpoints_are_removed_when_the_cache_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let ck = Checkpoints::new(&c, "graph-abc");
        ck.save("chunk-0", b"rows");
        ck.save("chunk-1", b"rows");
        c.put("graph-abc", b"graph").unwrap();
        // chunk-0 and the graph were last written long ago; chunk-1 just now.
        let long_ago = SystemTime::now() - CHECKPOINT_MAX_AGE - Duration::from_secs(60);
        for key in [format!("{}chunk-0", ck.prefix()), "graph-abc".to_string()] {
            let f = fs::File::options()
                .write(true)
                .open(entry_path(&c, &key))
                .unwrap();
            f.set_modified(long_ago).unwrap();
        }
        let c = Cache::open(dir.path()).unwrap();
        let ck = Checkpoints::new(&c, "graph-abc");
        assert!(
            ck.load("chunk-0").is_none(),
            "an abandoned checkpoint stays"
        );
        assert!(ck.load("chunk-1").is_some(), "a recent checkpoint went");
        assert!(
            c.get("graph-abc").is_some(),
            "an old graph is not a checkpoint"
        );
    }

    #[test]
    fn graph_roundtrip_and_validation() {
        let g = NeighborGraph {
            k: 2,
            neighbors: vec![1, 2, 0, 2, 1, 0],
            cosines: vec![0.9, 0.5, 0.9, 0.1, 0.5, 0.4],
        };
        let b = graph_to_bytes(&g);
        assert_eq!(graph_from_bytes(&b).unwrap(), g);
        assert!(graph_from_bytes(&b[..b.len() - 1]).is_err());
        let mut bad = b.clone();
        bad[16] = 7; // neighbour id out of range
        assert!(graph_from_bytes(&bad).is_err());
        let mut selfloop = b.clone();
        selfloop[16] = 0; // item 0 listing itself
        assert!(graph_from_bytes(&selfloop).is_err());
        let empty = NeighborGraph {
            k: 0,
            neighbors: vec![],
            cosines: vec![],
        };
        assert_eq!(graph_from_bytes(&graph_to_bytes(&empty)).unwrap(), empty);
    }

    #[test]
    fn embedding_hash_depends_on_shape_and_values() {
        let a = ndarray::Array2::<f32>::zeros((2, 3));
        let b = ndarray::Array2::<f32>::zeros((3, 2));
        assert_ne!(embedding_hash(a.view()), embedding_hash(b.view()));
        let mut c = a.clone();
        c[[1, 2]] = 1.0;
        assert_ne!(embedding_hash(a.view()), embedding_hash(c.view()));
        // layout-independent
        let t = c.t().to_owned();
        let tt = t.t();
        assert_eq!(embedding_hash(c.view()), embedding_hash(tt));
    }
}
