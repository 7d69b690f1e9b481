//! Atomic file writes: a temp file beside the target, synced, then renamed, so readers see all
//! or nothing; the temp files a killed run leaves under a hidden name are removed by the next
//! run ([`remove_stale_temps`]), never a live writer's (they are locked while written). Every
//! file labelwise leaves behind — results and cache entries — goes through here.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// Prefix and suffix of every temporary file labelwise stages a result or cache entry in.
/// [`remove_stale_temps`] only ever touches names of this shape.
pub const TEMP_PREFIX: &str = ".labelwise-";
/// See [`TEMP_PREFIX`].
pub const TEMP_SUFFIX: &str = ".tmp";
/// Temporaries on file systems without `flock` support are removed only after this long
/// untouched: a writer writes its temp file in one go, so an in-flight one is never this old.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Stages `path` in a temp file beside it, then syncs and renames: readers see all or nothing.
///
/// The temp file is held under an exclusive `flock` from creation to rename, which is how
/// [`remove_stale_temps`] tells a live writer's file (locked: keep) from one a killed process
/// left behind (the kernel drops the lock of a dead process, even after SIGKILL).
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> Result<()>,
) -> Result<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = locked_temp(dir)?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        write(&mut w)?;
        w.flush().map_err(|e| Error::io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    // Temp files are created 0600; results are ordinary files others may read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(path, e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(path.to_path_buf())
}

/// A new temp file in `dir`, exclusively locked. A concurrent [`remove_stale_temps`] may lock
/// and unlink the file in the instant between its creation and our lock; we then hold a lock
/// on an unlinked file, which the inode check below detects, and try again with a new name.
fn locked_temp(dir: &Path) -> Result<NamedTempFile> {
    for _ in 0..8 {
        let tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        if lock_exclusive(tmp.as_file()) && !same_file(tmp.as_file(), tmp.path()) {
            continue; // removed under us before we held the lock
        }
        return Ok(tmp);
    }
    Err(Error::io(
        dir,
        std::io::Error::other("temporary files keep disappearing (another process removes them)"),
    ))
}

/// Takes a blocking exclusive lock; false when the file system does not support locks.
#[cfg(unix)]
fn lock_exclusive(f: &File) -> bool {
    rustix::fs::flock(f, rustix::fs::FlockOperation::LockExclusive).is_ok()
}

#[cfg(not(unix))]
fn lock_exclusive(_f: &File) -> bool {
    false
}

/// Outcome of trying to take the lock of somebody else's temp file.
enum TryLock {
    /// We hold it: its writer is gone.
    Acquired,
    /// Someone holds it: a writer is alive.
    Busy,
    /// The file system cannot tell.
    Unsupported,
}

#[cfg(unix)]
fn try_lock_exclusive(f: &File) -> TryLock {
    use rustix::io::Errno;
    match rustix::fs::flock(f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => TryLock::Acquired,
        Err(e) if e == Errno::WOULDBLOCK || e == Errno::AGAIN || e == Errno::INTR => TryLock::Busy,
        Err(_) => TryLock::Unsupported,
    }
}

#[cfg(not(unix))]
fn try_lock_exclusive(_f: &File) -> TryLock {
    TryLock::Unsupported
}

/// True when `path` currently names the same file as the open handle `f`.
fn same_file(f: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (f.metadata(), std::fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = f;
        path.exists()
    }
}

/// A scratch directory in `dir`, named like our temporaries so that a killed run's leftover
/// is removed by a later [`remove_stale_temps`] (after [`STALE_TEMP_AGE`]); removed on drop.
pub fn temp_dir_in(dir: &Path) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempdir_in(dir)
        .map_err(|e| Error::io(dir, e))
}

/// Whether a directory entry is one of labelwise's temporaries (see [`TEMP_PREFIX`]).
pub fn is_temp_name(name: &str) -> bool {
    name.len() > TEMP_PREFIX.len() + TEMP_SUFFIX.len()
        && name.starts_with(TEMP_PREFIX)
        && name.ends_with(TEMP_SUFFIX)
}

/// Removes temporaries that a killed or crashed labelwise left in `dir`, and returns how many.
///
/// Only names of our shape are considered ([`is_temp_name`], plus `extra` for older layouts),
/// and only files nobody holds the lock of: a concurrent run writing into the same folder keeps
/// its in-flight file. Where the file system cannot lock, only files untouched for
/// [`STALE_TEMP_AGE`] go. Scratch *directories* of our shape ([`temp_dir_in`]) cannot be
/// locked, so they go by that age rule alone. Best effort: errors (unreadable folder, a race
/// with another cleaner) just leave the file for next time.
pub fn remove_stale_temps(dir: &Path, extra: Option<fn(&str) -> bool>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(is_temp_name(name) || extra.is_some_and(|f| f(name))) {
            continue;
        }
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= STALE_TEMP_AGE);
            if old && std::fs::remove_dir_all(&path).is_ok() {
                removed += 1;
            }
            continue;
        }
        // Write access: on NFS, flock is emulated with POSIX locks, which need it.
        let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path) else {
            continue;
        };
        if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
            continue;
        }
        let stale = match try_lock_exclusive(&f) {
            TryLock::Acquired => true,
            TryLock::Busy => false,
            TryLock::Unsupported => f
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= STALE_TEMP_AGE),
        };
        // Unlink while holding the lock, and only if the name still is the file we locked
        // (it may have been renamed into place and the name reused in between).
        if stale && same_file(&f, &path) && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn temps(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_temp_name(n))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn stale_scratch_directories_go_fresh_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = temp_dir_in(dir.path()).unwrap();
        let left = temp_dir_in(dir.path()).unwrap().keep();
        std::fs::write(left.join("index.hnsw.data"), b"partial dump").unwrap();
        let long_ago = std::time::SystemTime::now() - STALE_TEMP_AGE - Duration::from_secs(60);
        File::open(&left).unwrap().set_modified(long_ago).unwrap();
        assert_eq!(remove_stale_temps(dir.path(), None), 1);
        assert!(!left.exists());
        assert!(fresh.path().exists());
    }

    #[test]
    fn stale_temps_go_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Left by a killed run: nobody holds its lock.
        std::fs::write(d.join(".labelwise-dead01.tmp"), b"partial").unwrap();
        // A concurrent writer's in-flight file: locked for as long as it writes.
        let live = locked_temp(d).unwrap();
        let live_name = live
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // Not ours: never touched.
        std::fs::write(d.join("notes.tmp"), b"x").unwrap();
        std::fs::write(d.join(".labelwise-cache"), b"x").unwrap();
        std::fs::write(d.join("items.parquet"), b"x").unwrap();
        let removed = remove_stale_temps(d, None);
        if cfg!(unix) {
            assert_eq!(removed, 1);
            assert_eq!(temps(d), vec![live_name]);
        }
        assert!(d.join("notes.tmp").exists() && d.join(".labelwise-cache").exists());
        // The live writer still finishes: its file lands under the final name.
        live.persist(d.join("done.json")).unwrap();
        assert!(temps(d).is_empty() || !cfg!(unix));
        assert!(d.join("done.json").exists());
    }
}
