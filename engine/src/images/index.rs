//! The tag index `repositories.json` (which images the store holds and the
//! tags naming them), the store's file locks, and atomic file replacement.
//!
//! - `lock`: held exclusively around every read-modify-write of the index.
//! - `gc.lock`: held shared by every command that adds content (blobs,
//!   layers) until that content is referenced by the index, and exclusively
//!   by garbage collection, so GC never takes what a writer just placed and
//!   can remove stale temp files (no writer is alive while it holds it).

use crate::error::{err, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;

pub const INDEX_FILE: &str = "repositories.json";

/// One image of the store.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// `sha256:` digest of the image manifest blob (config + layer blobs).
    pub manifest: String,
    /// When the image was added to this store (RFC 3339).
    #[serde(default)]
    pub added: String,
    /// When a tag last moved to it (docker's Metadata.LastTagTime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
}

/// `repositories.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Index {
    /// `docker.io/library/busybox:latest` -> image id (`sha256:` of its config).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// image id -> record.
    #[serde(default)]
    pub images: BTreeMap<String, ImageRecord>,
}

impl Index {
    /// Reads the index of the store in `dir` (empty when there is none yet).
    /// Replacement is atomic, so reading needs no lock.
    pub fn read(dir: &Path) -> Result<Index> {
        let p = dir.join(INDEX_FILE);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).ctx(|| format!("parse {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(e).ctx(|| format!("read {}", p.display())),
        }
    }

    /// Runs `f` on the index under the store lock and writes the result back
    /// atomically when `f` succeeds and changed it.
    pub fn update<T>(dir: &Path, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        ensure_dir(dir)?;
        let _lock = FileLock::exclusive(&dir.join("lock"))?;
        let mut index = Index::read(dir)?;
        let before = index.clone();
        let out = f(&mut index)?;
        if index != before {
            let mut bytes = serde_json::to_vec_pretty(&index).ctx(|| "serialize the image index")?;
            bytes.push(b'\n');
            write_atomic(&dir.join(INDEX_FILE), &bytes)?;
        }
        Ok(out)
    }

    /// Tags of image `id`, sorted.
    pub fn tags_of(&self, id: &str) -> Vec<String> {
        self.tags.iter().filter(|(_, v)| v.as_str() == id).map(|(k, _)| k.clone()).collect()
    }
}

/// An flock(2) on a file, released when dropped.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        FileLock::take(path, libc::LOCK_EX).map(|l| l.expect("blocking flock returns a lock"))
    }

    pub fn shared(path: &Path) -> Result<FileLock> {
        FileLock::take(path, libc::LOCK_SH).map(|l| l.expect("blocking flock returns a lock"))
    }

    /// An exclusive lock only if nobody holds the file locked now.
    pub fn try_exclusive(path: &Path) -> Result<Option<FileLock>> {
        FileLock::take(path, libc::LOCK_EX | libc::LOCK_NB)
    }

    fn take(path: &Path, how: libc::c_int) -> Result<Option<FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ctx(|| format!("open lock {}", path.display()))?;
        loop {
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(file.as_raw_fd(), how) } == 0 {
                return Ok(Some(FileLock { _file: file }));
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) if how & libc::LOCK_NB != 0 => return Ok(None),
                _ => return Err(e).ctx(|| format!("lock {}", path.display())),
            }
        }
    }
}

/// Replaces `path` with `bytes` atomically and durably: temp file beside
/// it, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", super::unique()));
    let res = (|| {
        let mut f = File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(bytes).ctx(|| format!("write {}", tmp.display()))?;
        f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
        std::fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))?;
        sync_dir(dir)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// fsync of a directory, so renames into it survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx(|| format!("fsync {}", dir.display()))
}

/// Fails when `path` exists but is not what the store made (a symlink
/// planted in place of a store directory, say).
pub fn ensure_dir(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => err(format!("{} exists and is not a directory", path.display())),
        Err(_) => std::fs::create_dir_all(path).ctx(|| format!("create {}", path.display())),
    }
}
