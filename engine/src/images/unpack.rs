//! Unpacks a layer tarball into an empty directory, safely against hostile
//! archives, turning docker's whiteout files into overlayfs whiteouts.
//!
//! Every entry is resolved from the layer root one component at a time with
//! `O_NOFOLLOW`: `..` components and absolute paths are refused, and so is
//! any entry whose path goes through a symbolic link (a layer's links may
//! point anywhere; nothing is ever written through one). Files are created
//! with `O_EXCL | O_NOFOLLOW` after removing what was there, hard links
//! must name an entry inside the layer, and device nodes need root. Owners
//! (when root), modes, xattrs (but never `trusted.overlay.*`/`user.overlay.*`
//! from the archive) and mtimes are kept; directory modes and times are set
//! last, so a read-only directory can still be filled.
//!
//! Whiteouts (OCI image-spec, "Representing changes"): `DIR/.wh.NAME`
//! becomes a 0/0 character device `DIR/NAME`, `DIR/.wh..wh..opq` the
//! `trusted.overlay.opaque=y` xattr on `DIR`, as overlayfs expects.

use super::split::{Recorder, SHADOW};
use crate::error::{err, Context, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use tar::{Archive, Entry, EntryType};

/// Deeper paths are refused (PATH_MAX allows no more than 2048 anyway).
const MAX_DEPTH: usize = 256;
/// Longer paths are refused (PATH_MAX).
const MAX_PATH: usize = 4096;

/// What unpacking a layer found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    /// Bytes of regular file content (docker's layer size).
    pub size: u64,
    pub entries: u64,
}

/// Unpacks the tar stream `tar` into the existing empty directory `dest`.
/// Errors name the entry; the caller removes `dest` on error.
/// With `split`, the caller records the stream through it (`Recorded`):
/// file contents are marked as references, replaced entries moved aside.
pub fn unpack(tar: impl Read, dest: &Path, split: Option<&Recorder>) -> Result<Unpacked> {
    let root = nix::fcntl::open(dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open layer dir {}", dest.display()))?;
    let shadow_dir = dest.parent().unwrap_or(dest).join(SHADOW);
    let mut u = Unpacker { root, split, shadow_dir, shadow_fd: None, is_root: Uid::effective().is_root(), dirs: Vec::new(), out: Unpacked::default() };
    let mut archive = Archive::new(tar);
    let mut last = String::from("the start of the archive");
    for entry in archive.entries().ctx(|| "read tar archive")? {
        let mut entry = entry.map_err(|e| Error(format!("read tar entry after {last}: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        u.entry(&mut entry, &raw).ctx(|| format!("entry {name}"))?;
        u.out.entries += 1;
        last = format!("entry {name}");
    }
    u.finish()?;
    Ok(u.out)
}

/// The components of an entry path; refuses paths that could leave the layer.
pub fn components(raw: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path (it would be written outside the layer)".into());
    }
    if raw.len() > MAX_PATH {
        return Err(format!("path longer than {MAX_PATH} bytes"));
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path has a `..` component (it would be written outside the layer)".into()),
            _ => out.push(c.to_vec()),
        }
    }
    if out.len() > MAX_DEPTH {
        return Err(format!("path deeper than {MAX_DEPTH} directories"));
    }
    Ok(out)
}

struct Unpacker<'a> {
    root: OwnedFd,
    /// Records the tar stream, when its tar-split is wanted.
    split: Option<&'a Recorder>,
    /// `<layer>/shadow`: where replaced entries go when recording.
    shadow_dir: PathBuf,
    shadow_fd: Option<OwnedFd>,
    is_root: bool,
    /// Directories whose mode and mtime are set at the end.
    dirs: Vec<(Vec<Vec<u8>>, u32, TimeSpec)>,
    out: Unpacked,
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn show(comps: &[Vec<u8>]) -> String {
    comps.iter().map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join("/")
}

/// Metadata of an entry, from its header and pax records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn of<R: Read>(e: &mut Entry<'_, R>) -> Result<Meta> {
        let h = e.header();
        let bad = |what: &str, x: io::Error| Error(format!("bad {what} in header: {x}"));
        let mode = h.mode().map_err(|x| bad("mode", x))? & 0o7777;
        let id = |v: u64, what: &str| u32::try_from(v).map_err(|_| Error(format!("{what} {v} out of range")));
        let uid = id(h.uid().map_err(|x| bad("uid", x))?, "uid")?;
        let gid = id(h.gid().map_err(|x| bad("gid", x))?, "gid")?;
        let mut mtime = TimeSpec::new(h.mtime().map_err(|x| bad("mtime", x))?.min(i64::MAX as u64) as i64, 0);
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions().ctx(|| "read pax records")? {
            for ext in exts {
                let ext = ext.ctx(|| "read pax records")?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.as_bytes().to_vec(), ext.value_bytes().to_vec()));
                } else if key == "mtime" {
                    if let Some(t) = ext.value().ok().and_then(parse_pax_time) {
                        mtime = t;
                    }
                }
            }
        }
        Ok(Meta { mode, uid, gid, mtime, xattrs })
    }
}

/// `1700000000.5` -> TimeSpec.
fn parse_pax_time(v: &str) -> Option<TimeSpec> {
    let (s, f) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s.parse().ok()?;
    let mut frac: String = f.chars().take(9).collect();
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    while frac.len() < 9 {
        frac.push('0');
    }
    let nanos: i64 = frac.parse().ok()?;
    Some(if secs < 0 && nanos > 0 { TimeSpec::new(secs - 1, 1_000_000_000 - nanos) } else { TimeSpec::new(secs, nanos) })
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, e: &mut Entry<'_, R>, raw: &[u8]) -> Result<()> {
        let kind = e.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let comps = components(raw).map_err(Error)?;
        let meta = Meta::of(e)?;
        let Some((last, parents)) = comps.split_last() else {
            // `./`: the layer root itself
            if !kind.is_dir() {
                return err("only a directory can stand for the layer root");
            }
            self.owner(self.root.as_fd(), &meta)?;
            self.xattrs_fd(self.root.as_fd(), &meta)?;
            self.dirs.push((Vec::new(), meta.mode, meta.mtime));
            return Ok(());
        };

        if let Some(rest) = last.strip_prefix(b".wh.") {
            return self.whiteout(parents, rest, &meta);
        }
        let dir = self.walk(parents, true)?;
        let existing = fstatat(&dir, os(last), AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let existing_dir = existing.is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
        if existing.is_some() && !(kind.is_dir() && existing_dir) {
            self.displace(&dir, os(last), &comps).ctx(|| "remove what an earlier entry put there")?;
        }
        let name = os(last);
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = openat(
                    &dir,
                    name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .ctx(|| "create file")?;
                let mut f = File::from(fd);
                // sparse entries' stream differs from the file: recorded verbatim
                let referenced = self.split.filter(|_| kind != EntryType::GNUSparse);
                if let Some(rec) = referenced {
                    rec.begin_file(&comps.join(&b'/')).ctx(|| "tar-split")?;
                }
                let n = io::copy(e, &mut f).ctx(|| "write file")?;
                if let Some(rec) = referenced {
                    let recorded = rec.end_file().ctx(|| "tar-split")?;
                    if recorded != n {
                        return err(format!("tar-split: {recorded} bytes passed, {n} written"));
                    }
                }
                if n >= 1 << 20 {
                    drop_written_pages(&f);
                }
                self.out.size += n;
                self.owner(f.as_fd(), &meta)?;
                fchmod(&f, Mode::from_bits_truncate(meta.mode)).ctx(|| "chmod")?;
                self.xattrs_fd(f.as_fd(), &meta)?;
                futimens(&f, &meta.mtime, &meta.mtime).ctx(|| "set mtime")?;
            }
            EntryType::Directory => {
                if !existing_dir {
                    mkdirat(&dir, name, Mode::from_bits_truncate(0o700)).ctx(|| "mkdir")?;
                }
                let fd =
                    openat(&dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| "open directory")?;
                self.owner(fd.as_fd(), &meta)?;
                self.xattrs_fd(fd.as_fd(), &meta)?;
                self.dirs.push((comps.clone(), meta.mode, meta.mtime));
            }
            EntryType::Symlink => {
                let target = e.link_name_bytes().ok_or_else(|| Error("symbolic link without a target".into()))?;
                symlinkat(os(&target), &dir, name).ctx(|| "create symbolic link")?;
                if self.is_root {
                    fchownat(&dir, name, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)), AtFlags::AT_SYMLINK_NOFOLLOW)
                        .ctx(|| "chown symbolic link")?;
                }
                self.xattrs_link(&dir, name, &meta)?;
                utimensat(&dir, name, &meta.mtime, &meta.mtime, UtimensatFlags::NoFollowSymlink).ctx(|| "set mtime")?;
            }
            EntryType::Link => {
                let target = e.link_name_bytes().ok_or_else(|| Error("hard link without a target".into()))?;
                let tcomps = components(&target).map_err(|why| Error(format!("hard link target {}: {why}", String::from_utf8_lossy(&target))))?;
                let Some((tlast, tparents)) = tcomps.split_last() else {
                    return err("hard link to the layer root");
                };
                if tcomps == comps {
                    return err("hard link to itself");
                }
                let tdir = self.walk(tparents, false).ctx(|| format!("hard link target {}", show(&tcomps)))?;
                linkat(&tdir, os(tlast), &dir, name, AtFlags::empty()).ctx(|| format!("hard link to {}", show(&tcomps)))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = if kind == EntryType::Fifo {
                    0
                } else {
                    if !self.is_root {
                        return err("device nodes can only be created by root");
                    }
                    let h = e.header();
                    let major = h.device_major().ok().flatten().unwrap_or(0);
                    let minor = h.device_minor().ok().flatten().unwrap_or(0);
                    libc::makedev(major, minor)
                };
                mknodat(&dir, name, sflag, Mode::from_bits_truncate(0o600), dev).ctx(|| "mknod")?;
                if self.is_root {
                    fchownat(&dir, name, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)), AtFlags::AT_SYMLINK_NOFOLLOW).ctx(|| "chown")?;
                }
                fchmodat(&dir, name, Mode::from_bits_truncate(meta.mode), FchmodatFlags::FollowSymlink).ctx(|| "chmod")?;
                self.xattrs_link(&dir, name, &meta)?;
                utimensat(&dir, name, &meta.mtime, &meta.mtime, UtimensatFlags::NoFollowSymlink).ctx(|| "set mtime")?;
            }
            other => return err(format!("unsupported tar entry type `{}`", other.as_byte() as char)),
        }
        Ok(())
    }

    /// `.wh.NAME` (rest = `NAME`) and `.wh..wh..opq` (rest = `.wh..opq`).
    fn whiteout(&mut self, parents: &[Vec<u8>], rest: &[u8], meta: &Meta) -> Result<()> {
        let dir = self.walk(parents, true)?;
        if rest == b".wh..opq" {
            return set_xattr_fd(dir.as_fd(), b"trusted.overlay.opaque", b"y").ctx(|| "mark the directory opaque (trusted.overlay.opaque)");
        }
        if rest.starts_with(b".wh.") {
            return Ok(()); // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): nothing for overlayfs
        }
        if rest.is_empty() || rest == b"." || rest == b".." {
            return err("whiteout of an invalid name");
        }
        if !self.is_root {
            return err("whiteouts (0/0 character devices) can only be created by root");
        }
        let name = os(rest);
        if fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok() {
            let mut hidden = parents.to_vec();
            hidden.push(rest.to_vec());
            self.displace(&dir, name, &hidden).ctx(|| "remove what the whiteout hides")?;
        }
        mknodat(&dir, name, SFlag::S_IFCHR, Mode::empty(), 0).ctx(|| "create whiteout (mknod 0/0)")?;
        fchownat(&dir, name, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)), AtFlags::AT_SYMLINK_NOFOLLOW).ctx(|| "chown whiteout")
    }

    fn walk(&self, comps: &[Vec<u8>], create: bool) -> Result<OwnedFd> {
        walk(&self.root, comps, create)
    }

    /// Clears `name` in `dir` (the entry `comps`) for a new entry: moved
    /// aside to the layer's shadow dir when a tar-split is recorded (an
    /// earlier entry's content may be needed to rebuild the tar), else removed.
    fn displace(&mut self, dir: &OwnedFd, name: &OsStr, comps: &[Vec<u8>]) -> Result<()> {
        let Some(rec) = self.split else {
            return remove_tree(dir, name).map_err(|e| Error(format!("remove: {e}")));
        };
        if self.shadow_fd.is_none() {
            match std::fs::create_dir(&self.shadow_dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).ctx(|| format!("create {}", self.shadow_dir.display())),
            }
            let fd = nix::fcntl::open(&self.shadow_dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
                .ctx(|| format!("open {}", self.shadow_dir.display()))?;
            self.shadow_fd = Some(fd);
        }
        let Some(to) = &self.shadow_fd else {
            return err("no shadow dir");
        };
        let n = rec.shadow(&comps.join(&b'/'))?;
        nix::fcntl::renameat(dir, name, to, n.to_string().as_str()).ctx(|| "move aside")
    }

    fn owner(&self, fd: std::os::fd::BorrowedFd<'_>, meta: &Meta) -> Result<()> {
        if self.is_root {
            fchown(fd, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid))).ctx(|| format!("chown {}:{}", meta.uid, meta.gid))?;
        }
        Ok(())
    }

    fn xattrs_fd(&self, fd: std::os::fd::BorrowedFd<'_>, meta: &Meta) -> Result<()> {
        for (k, v) in meta.xattrs.iter().filter(|(k, _)| allowed_xattr(k)) {
            self.xattr_result(k, set_xattr_fd(fd, k, v))?;
        }
        Ok(())
    }

    /// Xattrs of a symbolic link or device node, without following it.
    fn xattrs_link(&self, dir: &OwnedFd, name: &OsStr, meta: &Meta) -> Result<()> {
        if meta.xattrs.iter().all(|(k, _)| !allowed_xattr(k)) {
            return Ok(());
        }
        let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
        p.extend_from_slice(name.as_bytes());
        let path = CString::new(p).map_err(|_| Error("NUL in name".into()))?;
        for (k, v) in meta.xattrs.iter().filter(|(k, _)| allowed_xattr(k)) {
            let key = CString::new(k.clone()).map_err(|_| Error("NUL in xattr name".into()))?;
            // SAFETY: valid C strings and a buffer of the given length.
            let r = unsafe { libc::lsetxattr(path.as_ptr(), key.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
            self.xattr_result(k, if r == 0 { Ok(()) } else { Err(Errno::last()) })?;
        }
        Ok(())
    }

    /// Xattrs the filesystem cannot hold (or, unprivileged, may not set) are
    /// dropped, as docker does; other failures fail the entry.
    fn xattr_result(&self, key: &[u8], r: nix::Result<()>) -> Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(Errno::ENOTSUP) => Ok(()),
            Err(Errno::EPERM) if !self.is_root => Ok(()),
            Err(e) => Err(e).ctx(|| format!("set xattr {}", String::from_utf8_lossy(key))),
        }
    }

    /// Modes and mtimes of directories, now that nothing more goes into them.
    fn finish(&mut self) -> Result<()> {
        for (comps, mode, mtime) in std::mem::take(&mut self.dirs) {
            let fd = match comps.split_last() {
                None => nix::unistd::dup(&self.root).ctx(|| "dup layer dir")?,
                Some((last, parents)) => {
                    let Ok(dir) = self.walk(parents, false) else {
                        continue;
                    };
                    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                    match openat(&dir, os(last), flags, Mode::empty()) {
                        Ok(fd) => fd,
                        Err(_) => continue, // replaced by a later entry
                    }
                }
            };
            let what = || format!("entry {}", if comps.is_empty() { ".".into() } else { show(&comps) });
            fchmod(&fd, Mode::from_bits_truncate(mode)).ctx(|| format!("{}: chmod", what()))?;
            futimens(&fd, &mtime, &mtime).ctx(|| format!("{}: set mtime", what()))?;
        }
        Ok(())
    }
}

/// Opens the directory `comps` below the root, creating missing ones
/// when `create`; refuses to go through symbolic links or non-directories.
pub fn walk(root: &OwnedFd, comps: &[Vec<u8>], create: bool) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut cur = nix::unistd::dup(root).ctx(|| "dup layer dir")?;
    for (i, c) in comps.iter().enumerate() {
        let prefix = || show(&comps[..=i]);
        let next = match openat(&cur, os(c), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create => {
                mkdirat(&cur, os(c), Mode::from_bits_truncate(0o755)).ctx(|| format!("mkdir {}", prefix()))?;
                openat(&cur, os(c), flags, Mode::empty()).ctx(|| format!("open {}", prefix()))?
            }
            Err(Errno::ENOENT) => return err(format!("{} does not exist in the layer", prefix())),
            Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                let is_link = fstatat(&cur, os(c), AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
                return if is_link {
                    err(format!("path goes through the symbolic link {} (refused: it could point outside the layer)", prefix()))
                } else {
                    Err(e).ctx(|| format!("{} is not a directory", prefix()))
                };
            }
            Err(e) => return Err(e).ctx(|| format!("open {}", prefix())),
        };
        cur = next;
    }
    Ok(cur)
}

/// Writes a big file's pages out and drops them from the page cache, so a
/// pull does not push out the cache of running containers.
fn drop_written_pages(f: &File) {
    let fd = f.as_raw_fd();
    // SAFETY: plain syscalls on an fd we own.
    unsafe {
        libc::sync_file_range(fd, 0, 0, libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER);
        libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

/// Overlayfs reads its own xattrs from lower dirs: an archive must not set them.
fn allowed_xattr(key: &[u8]) -> bool {
    !(key.starts_with(b"trusted.overlay.") || key.starts_with(b"user.overlay."))
}

fn set_xattr_fd(fd: std::os::fd::BorrowedFd<'_>, key: &[u8], value: &[u8]) -> nix::Result<()> {
    let key = CString::new(key).map_err(|_| Errno::EINVAL)?;
    // SAFETY: a valid fd, C string and buffer of the given length.
    let r = unsafe { libc::fsetxattr(fd.as_raw_fd(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Removes `name` in `dir` and, for a directory, all below it, never
/// following symbolic links. Depth is bounded by MAX_DEPTH of the paths
/// that made the tree.
pub fn remove_tree(dir: &OwnedFd, name: &OsStr) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let sub = openat(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut d = nix::dir::Dir::from_fd(nix::unistd::dup(&sub)?)?;
    let names: Vec<Vec<u8>> = d.iter().filter_map(|e| e.ok()).map(|e| e.file_name().to_bytes().to_vec()).filter(|n| n != b"." && n != b"..").collect();
    for n in names {
        remove_tree(&sub, os(&n))?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}
