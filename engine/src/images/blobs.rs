//! Content-addressed blobs under `blobs/sha256/<hex>`: written to a temp
//! file, fsynced, verified against their digest, then renamed into place;
//! verified again when read whole.

use super::{digest, index::sync_dir, Store};
use crate::error::{err, Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Configs and manifests are read whole; nothing legitimate is this big.
pub const MAX_JSON_BLOB: u64 = 16 << 20;

impl Store {
    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs/sha256")
    }

    /// Where blob `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.blobs_dir().join(digest::hex_of(digest)?))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Stores `bytes` as a blob; returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String> {
        let d = digest::of_bytes(bytes);
        if self.has_blob(&d) {
            return Ok(d);
        }
        let tmp = self.temp_path("blob");
        let res = (|| {
            let mut f = File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
            f.write_all(bytes).ctx(|| format!("write {}", tmp.display()))?;
            f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
            self.place_blob(&tmp, &d)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res.map(|_| d)
    }

    /// Moves the fsynced temp file `tmp`, whose content the caller verified
    /// to be `digest`, into place.
    pub(crate) fn place_blob(&self, tmp: &Path, digest: &str) -> Result<()> {
        let to = self.blob_path(digest)?;
        std::fs::rename(tmp, &to).ctx(|| format!("rename {} to {}", tmp.display(), to.display()))?;
        sync_dir(&self.blobs_dir())
    }

    /// Opens blob `digest` for streaming (the reader verifies what it needs).
    pub fn open_blob(&self, digest: &str) -> Result<File> {
        let p = self.blob_path(digest)?;
        File::open(&p).ctx(|| format!("open blob {digest} ({})", p.display()))
    }

    /// Reads a small blob (config, manifest) whole, verifying its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?.take(MAX_JSON_BLOB + 1).read_to_end(&mut bytes).ctx(|| format!("read blob {digest}"))?;
        if bytes.len() as u64 > MAX_JSON_BLOB {
            return err(format!("blob {digest}: larger than {MAX_JSON_BLOB} bytes"));
        }
        let got = digest::of_bytes(&bytes);
        if got != digest {
            return err(format!("blob {digest} is corrupt: its content hashes to {got}"));
        }
        Ok(bytes)
    }
}

/// Reads until `buf` is full or the input ends; returns how much it read.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
