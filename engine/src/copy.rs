//! `engine cp`: files between a container and the host, as docker's
//! chrootarchive does it. Paths inside the container are resolved by a
//! child process chrooted into the container's root filesystem, so every
//! symlink in them resolves inside the container: one pointing at `/` or
//! at `/etc/shadow` names the container's, never the host's (docker's
//! CVE-2018-15664 class). The two sides talk tar through a pipe; the tar
//! readers refuse absolute and `..` entry names.

use crate::error::{err, Context, Error, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// `cp`'s flags.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options {
    /// `-a`: the files keep their uid/gid (else the copy's owner is root).
    pub archive: bool,
    /// `-L`: a symlink given as SRC is followed.
    pub follow: bool,
}

/// Copies `src` to `dst`, one of them `CONTAINER:PATH` whose container
/// root filesystem `rootfs_of` finds.
pub fn cp(src: &str, dst: &str, o: Options, rootfs_of: &dyn Fn(&str) -> Result<PathBuf>) -> Result<()> {
    let split = |s: &str| -> Result<Option<(PathBuf, String)>> {
        match s.split_once(':') {
            Some((c, p)) if !c.contains('/') => Ok(Some((rootfs_of(c)?, p.to_string()))),
            _ => Ok(None),
        }
    };
    match (split(src)?, split(dst)?) {
        (Some((root, p)), None) => out_of(&root, &p, Path::new(dst), src, o),
        (None, Some((root, p))) => into(Path::new(src), &root, &p, o),
        _ => err("cp: exactly one of SRC and DST must be CONTAINER:PATH"),
    }
}

/// `export`: the container's whole filesystem as a tar stream into `out`
/// (names relative, as docker's: `bin/sh`), archived by a child chrooted
/// into it like `cp`'s.
pub fn export(root: &Path, out: &mut dyn Write) -> Result<()> {
    let (child, data) = in_root(root, false, |pipe| {
        let mut b = tar::Builder::new(pipe);
        b.follow_symlinks(false);
        let mut names: Vec<_> = std::fs::read_dir("/").ctx(|| "export: read /")?.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for n in names {
            let p = Path::new("/").join(&n);
            let r = if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) { b.append_dir_all(&n, &p) } else { b.append_path_with_name(&p, &n) };
            r.ctx(|| format!("export: read {}", p.display()))?;
        }
        b.into_inner().ctx(|| "export: write the archive").map(drop)
    })?;
    let copied = std::io::copy(&mut File::from(data), out).map(drop).ctx(|| "export: write the archive");
    child.finish()?;
    copied
}

/// The last component of `p` ("/" and "." have none: the copy keeps the
/// source's own name then).
fn base(p: &Path) -> Option<String> {
    match p.components().next_back() {
        Some(Component::Normal(n)) => Some(n.to_string_lossy().into_owned()),
        _ => None,
    }
}

/// Container -> host: the child archives `p` under the name the copy gets.
fn out_of(root: &Path, p: &str, dst: &Path, what: &str, o: Options) -> Result<()> {
    let (dir, name) = if dst.is_dir() {
        (dst.to_path_buf(), base(Path::new(p)).unwrap_or_else(|| "rootfs".into()))
    } else {
        let parent = dst.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return err(format!("cp: {}: no such directory", parent.display()));
        }
        (parent.to_path_buf(), base(dst).ok_or_else(|| Error(format!("cp: bad destination {}", dst.display())))?)
    };
    let (child, data) = in_root(root, false, |pipe| {
        let path = Path::new("/").join(p);
        if std::fs::symlink_metadata(&path).is_err() {
            return err(format!("cp: {what}: no such file or directory"));
        }
        let mut b = tar::Builder::new(pipe);
        b.follow_symlinks(false);
        let meta = if o.follow { std::fs::metadata(&path) } else { std::fs::symlink_metadata(&path) };
        if meta.is_ok_and(|m| m.is_dir()) {
            b.append_dir_all(&name, &path).ctx(|| format!("cp: read {p}"))?;
        } else if o.follow {
            let mut f = File::open(&path).ctx(|| format!("cp: read {p}"))?;
            b.append_file(&name, &mut f).ctx(|| format!("cp: read {p}"))?;
        } else {
            b.append_path_with_name(&path, &name).ctx(|| format!("cp: read {p}"))?;
        }
        b.into_inner().ctx(|| "cp: write the archive").map(drop)
    })?;
    let unpacked = unpack(File::from(data), &dir, None, o.archive);
    child.finish()?;
    unpacked
}

/// Host -> container: the child unpacks into `p` (an existing directory
/// there), or as `p` itself.
fn into(src: &Path, root: &Path, p: &str, o: Options) -> Result<()> {
    let meta = if o.follow { std::fs::metadata(src) } else { std::fs::symlink_metadata(src) };
    let meta = meta.ctx(|| format!("cp: {}", src.display()))?;
    let name = base(src).unwrap_or_else(|| "rootfs".into());
    let target = p.to_string();
    let (child, data) = in_root(root, true, move |pipe| {
        let path = Path::new("/").join(&target);
        // As docker: into an existing directory under the source's name,
        // else as the path given (its directory must exist).
        let (dir, rename) = if path.is_dir() {
            (path, None)
        } else {
            let parent = path.parent().unwrap_or(Path::new("/")).to_path_buf();
            if !parent.is_dir() {
                return err(format!("cp: {}: no such directory in the container", parent.display()));
            }
            (parent, Some(base(&path).ok_or_else(|| Error(format!("cp: bad destination {target}")))?))
        };
        unpack(pipe, &dir, rename.as_deref(), o.archive)
    })?;
    let packed = {
        // Dropped (the pipe closed) before the wait, whatever happened.
        let mut b = tar::Builder::new(File::from(data));
        b.follow_symlinks(false);
        let packed = if meta.is_dir() {
            b.append_dir_all(&name, src)
        } else if o.follow {
            File::open(src).and_then(|mut f| b.append_file(&name, &mut f))
        } else {
            b.append_path_with_name(src, &name)
        };
        packed.and_then(|_| b.into_inner()).map(drop).ctx(|| format!("cp: read {}", src.display()))
    };
    // The child's own error says more than a broken pipe.
    child.finish()?;
    packed
}

/// Unpacks `r` into `dir`, the first component of each name replaced by
/// `rename` if given. Names that are absolute or hold `..` are refused.
fn unpack(r: impl Read, dir: &Path, rename: Option<&str>, owners: bool) -> Result<()> {
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(owners);
    a.set_overwrite(true);
    for entry in a.entries().ctx(|| "cp: read the archive")? {
        let mut entry = entry.ctx(|| "cp: read the archive")?;
        let name = entry.path().ctx(|| "cp: read the archive")?.into_owned();
        if name.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            return err(format!("cp: refused archive entry {}", name.display()));
        }
        let rel = match rename {
            Some(r) => {
                let mut parts = name.components();
                parts.next();
                match parts.as_path() {
                    rest if rest.as_os_str().is_empty() => PathBuf::from(r),
                    rest => Path::new(r).join(rest),
                }
            }
            None => name,
        };
        let to = dir.join(&rel);
        entry.unpack(&to).ctx(|| format!("cp: write {}", to.display()))?;
    }
    Ok(())
}

/// A child process chrooted into a container's root.
struct Child {
    pid: libc::pid_t,
    errors: File,
}

impl Child {
    /// Waits for the child; its error, if it had one.
    fn finish(mut self) -> Result<()> {
        let mut msg = String::new();
        let _ = self.errors.read_to_string(&mut msg);
        let mut status = 0;
        // SAFETY: waits for our own child.
        while unsafe { libc::waitpid(self.pid, &mut status, 0) } < 0 {
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return err(format!("cp: wait for the copying process: {}", std::io::Error::last_os_error()));
            }
        }
        if !msg.is_empty() {
            return Err(Error(msg));
        }
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            return err(format!("cp: the copying process failed (wait status {status:#x})"));
        }
        Ok(())
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is valid for two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return err(format!("cp: pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Forks a child that chroots into `root` and runs `f` with its end of a
/// data pipe (the read end if `reads`, else the write end); returns the
/// child and the parent's end.
fn in_root(root: &Path, reads: bool, f: impl FnOnce(File) -> Result<()>) -> Result<(Child, OwnedFd)> {
    let root_c = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()).map_err(|_| Error("cp: bad rootfs path".into()))?;
    let (data_r, data_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // SAFETY: the engine is single-threaded; the child only chroots, runs
    // `f` and exits without returning.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return err(format!("cp: fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(err_r);
        let (mine, theirs) = if reads { (data_r, data_w) } else { (data_w, data_r) };
        drop(theirs);
        // SAFETY: chroot and chdir with a valid path, in the child.
        let r = if unsafe { libc::chroot(root_c.as_ptr()) } != 0 || unsafe { libc::chdir(c"/".as_ptr()) } != 0 {
            err(format!("cp: enter the container's root {}: {}", root.display(), std::io::Error::last_os_error()))
        } else {
            f(File::from(mine))
        };
        let code = match r {
            Ok(()) => 0,
            Err(e) => {
                let _ = File::from(err_w).write_all(e.0.as_bytes());
                1
            }
        };
        // SAFETY: leaves the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    drop(err_w);
    let (mine, theirs) = if reads { (data_w, data_r) } else { (data_r, data_w) };
    drop(theirs);
    Ok((Child { pid, errors: File::from(err_r) }, mine))
}
