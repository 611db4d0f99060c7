//! Tar-split: what it takes to give back a layer's exact tar stream (the
//! bytes its diff id is the sha256 of) from the unpacked layer. A layer is
//! written to flash once, as files; the tar is regenerated only when `save`
//! or `push` need it (what containers/storage does with its tar-split).
//!
//! While a layer is unpacked, every byte of its tar passes a `Recorder`:
//! headers, padding and anything not file content are kept verbatim, file
//! content as a reference (size and path in the layer). The record is
//! gzip-compressed into `layers/<chain>/tar-split.gz` (a few bytes per
//! entry once compressed). Records: `R` u32 length + bytes, `F` u64 size +
//! u16 path length + path, `E` the end.
//!
//! A path an entry replaces that an earlier entry of the same tar wrote
//! (the same file twice, a directory replaced by a file, a whiteout of
//! something just added) is moved aside to `shadow/<n>` instead of being
//! removed, and the move is listed in the layer record: a file reference
//! made before the move reads from the shadow.

use super::digest::hex;
use super::unpack::walk;
use crate::error::{err, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub const FILE: &str = "tar-split.gz";
pub const SHADOW: &str = "shadow";
/// Entries a layer's tar may replace (the same path again, a whiteout of its own entry).
const MAX_SHADOWS: usize = 65_536;
/// Verbatim bytes are written in records of at most this size.
const RAW_CHUNK: usize = 64 << 10;

/// A path of the layer moved aside to `shadow/<its index>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Shadow {
    /// Relative to the layer's `diff/` (bytes: tar paths need not be UTF-8).
    pub path: Vec<u8>,
    /// How many file references the record held when it moved.
    pub after: u64,
}

/// Records the tar stream read through `Recorded` readers.
pub struct Recorder {
    state: RefCell<State>,
}

struct State {
    out: Option<flate2::write::GzEncoder<BufWriter<File>>>,
    raw: Vec<u8>,
    /// The file whose content is passing now: its path and bytes so far.
    file: Option<(Vec<u8>, u64)>,
    files: u64,
    shadows: Vec<Shadow>,
}

impl State {
    fn out(&mut self) -> io::Result<&mut flate2::write::GzEncoder<BufWriter<File>>> {
        self.out.as_mut().ok_or_else(|| io::Error::other("tar-split: already finished"))
    }

    fn flush_raw(&mut self) -> io::Result<()> {
        if self.raw.is_empty() {
            return Ok(());
        }
        let out = self.out.as_mut().ok_or_else(|| io::Error::other("tar-split: already finished"))?;
        out.write_all(b"R")?;
        out.write_all(&(self.raw.len() as u32).to_le_bytes())?;
        out.write_all(&self.raw)?;
        self.raw.clear();
        Ok(())
    }
}

impl Recorder {
    /// A recorder writing to the new file `path`.
    pub fn create(path: &Path) -> Result<Recorder> {
        let f = File::create(path).ctx(|| format!("create {}", path.display()))?;
        let out = flate2::write::GzEncoder::new(BufWriter::with_capacity(1 << 16, f), flate2::Compression::default());
        Ok(Recorder { state: RefCell::new(State { out: Some(out), raw: Vec::with_capacity(RAW_CHUNK), file: None, files: 0, shadows: Vec::new() }) })
    }

    fn observe(&self, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.state.borrow_mut();
        if let Some((_, n)) = s.file.as_mut() {
            *n += bytes.len() as u64;
            return Ok(());
        }
        s.raw.extend_from_slice(bytes);
        if s.raw.len() >= RAW_CHUNK {
            s.flush_raw()?;
        }
        Ok(())
    }

    /// The bytes read from now until `end_file` are the content of the
    /// file at `path` (relative to the layer's `diff/`).
    pub fn begin_file(&self, path: &[u8]) -> io::Result<()> {
        let mut s = self.state.borrow_mut();
        s.flush_raw()?;
        s.file = Some((path.to_vec(), 0));
        Ok(())
    }

    /// Ends the file content begun with `begin_file`; returns its size.
    pub fn end_file(&self) -> io::Result<u64> {
        let mut s = self.state.borrow_mut();
        let Some((path, n)) = s.file.take() else {
            return Ok(0);
        };
        if n > 0 {
            let out = s.out()?;
            out.write_all(b"F")?;
            out.write_all(&n.to_le_bytes())?;
            out.write_all(&(path.len() as u16).to_le_bytes())?;
            out.write_all(&path)?;
            s.files += 1;
        }
        Ok(n)
    }

    /// Notes that `path` moves to `shadow/<returned index>`. A tar that
    /// replaces more than MAX_SHADOWS of its own entries is refused (the
    /// list is kept in memory and in the layer record).
    pub fn shadow(&self, path: &[u8]) -> Result<usize> {
        let mut s = self.state.borrow_mut();
        if s.shadows.len() >= MAX_SHADOWS {
            return err(format!("the archive replaces more than {MAX_SHADOWS} of its own entries"));
        }
        let after = s.files;
        s.shadows.push(Shadow { path: path.to_vec(), after });
        Ok(s.shadows.len() - 1)
    }

    /// Ends the record (the caller syncs the layer dir); returns the shadows.
    pub fn finish(&self) -> Result<Vec<Shadow>> {
        let mut s = self.state.borrow_mut();
        if s.file.is_some() {
            return err("tar-split: the archive ended inside a file");
        }
        let res: io::Result<()> = (|| {
            s.flush_raw()?;
            let mut out = s.out.take().ok_or_else(|| io::Error::other("already finished"))?;
            out.write_all(b"E")?;
            out.finish()?.flush()
        })();
        res.ctx(|| "write tar-split")?;
        Ok(std::mem::take(&mut s.shadows))
    }
}

/// A reader whose bytes `rec` records.
pub struct Recorded<'a, R> {
    pub inner: R,
    pub rec: &'a Recorder,
}

impl<R: Read> Read for Recorded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.rec.observe(&buf[..n]).map_err(|e| io::Error::other(format!("write tar-split: {e}")))?;
        Ok(n)
    }
}

/// The tar stream of a layer, regenerated from its tar-split and files; at
/// the end it checks that the stream hashes to the diff id.
pub struct Reassembly {
    split: flate2::read::GzDecoder<BufReader<File>>,
    /// `layers/<chain>/`.
    layer: OwnedFd,
    shadows: Vec<Shadow>,
    cur: Part,
    files: u64,
    hash: Sha256,
    count: u64,
    diff_id: String,
    size: u64,
}

enum Part {
    Raw(u64),
    File(File, u64, String),
    End,
}

impl Reassembly {
    /// Opens the tar-split of the layer in `dir` (`layers/<chain>`), whose
    /// tar is `size` bytes hashing to `diff_id`.
    pub fn open(dir: &Path, shadows: &[Shadow], diff_id: &str, size: u64) -> Result<Reassembly> {
        let p = dir.join(FILE);
        let f = File::open(&p).ctx(|| format!("open {}", p.display()))?;
        let layer =
            nix::fcntl::open(dir, nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                .ctx(|| format!("open {}", dir.display()))?;
        Ok(Reassembly {
            split: flate2::read::GzDecoder::new(BufReader::with_capacity(1 << 16, f)),
            layer,
            shadows: shadows.to_vec(),
            cur: Part::Raw(0),
            files: 0,
            hash: Sha256::new(),
            count: 0,
            diff_id: diff_id.to_string(),
            size,
        })
    }

    /// The next record of the split.
    fn next(&mut self) -> io::Result<Part> {
        let mut tag = [0u8; 1];
        self.split.read_exact(&mut tag)?;
        match tag[0] {
            b'R' => {
                let mut n = [0u8; 4];
                self.split.read_exact(&mut n)?;
                Ok(Part::Raw(u32::from_le_bytes(n) as u64))
            }
            b'F' => {
                let mut n = [0u8; 8];
                self.split.read_exact(&mut n)?;
                let mut l = [0u8; 2];
                self.split.read_exact(&mut l)?;
                let mut path = vec![0u8; u16::from_le_bytes(l) as usize];
                self.split.read_exact(&mut path)?;
                let f = self.open_file(&path)?;
                self.files += 1;
                Ok(Part::File(f, u64::from_le_bytes(n), String::from_utf8_lossy(&path).into_owned()))
            }
            b'E' => Ok(Part::End),
            t => Err(io::Error::new(io::ErrorKind::InvalidData, format!("tar-split: unknown record `{}`", t as char))),
        }
    }

    /// The file a reference made as the `self.files`th points to: in
    /// `diff/`, or in the shadow its path moved to after the reference.
    fn open_file(&self, path: &[u8]) -> io::Result<File> {
        let moved = self
            .shadows
            .iter()
            .enumerate()
            .find(|(_, s)| s.after > self.files && (path == s.path.as_slice() || (path.starts_with(&s.path) && path.get(s.path.len()) == Some(&b'/'))));
        let (base, rel): (Vec<Vec<u8>>, &[u8]) = match moved {
            Some((i, s)) => (vec![SHADOW.into(), i.to_string().into_bytes()], &path[s.path.len()..]),
            None => (vec![super::layers::DIFF.into()], path),
        };
        let mut comps = base;
        comps.extend(rel.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").map(<[u8]>::to_vec));
        let Some((last, parents)) = comps.split_last() else {
            return Err(io::Error::other("tar-split: empty path"));
        };
        let dir = walk(&self.layer, parents, false).map_err(|e| io::Error::other(e.0))?;
        let fd = nix::fcntl::openat(
            &dir,
            std::ffi::OsStr::from_bytes(last),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| io::Error::other(format!("open {}: {e}", String::from_utf8_lossy(path))))?;
        Ok(File::from(fd))
    }

    fn end(&mut self) -> io::Result<usize> {
        let got = format!("sha256:{}", hex(&self.hash.clone().finalize()));
        if got != self.diff_id || self.count != self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "layer {}: the tar rebuilt from the store is {} bytes hashing to {got}, not {} bytes hashing to its diff id (the store is corrupt)",
                    self.diff_id, self.count, self.size
                ),
            ));
        }
        Ok(0)
    }
}

impl Read for Reassembly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = match &mut self.cur {
                Part::End => return self.end(),
                Part::Raw(0) | Part::File(_, 0, _) => {
                    self.cur = self.next()?;
                    continue;
                }
                Part::Raw(left) => {
                    let want = buf.len().min(*left as usize);
                    let n = self.split.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "tar-split: truncated"));
                    }
                    *left -= n as u64;
                    n
                }
                Part::File(f, left, path) => {
                    let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = f.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{path}: shorter than its tar entry (the layer changed)")));
                    }
                    *left -= n as u64;
                    n
                }
            };
            self.hash.update(&buf[..n]);
            self.count += n as u64;
            return Ok(n);
        }
    }
}

/// Reads a whole reassembly, for tests and checks: its bytes.
#[cfg(test)]
pub fn read_all(mut r: Reassembly) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(|e| crate::error::Error(format!("reassemble: {e}")))?;
    Ok(out)
}
