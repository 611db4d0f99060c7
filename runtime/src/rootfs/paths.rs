//! Paths inside the container's root, resolved the way the container will
//! see them: every symlink (absolute or relative, `..` included) is followed
//! relative to the root and can never lead out of it (the algorithm of
//! filepath-securejoin, which runc uses). Mount targets are then opened
//! O_PATH and checked through /proc/self/fd, so a path swapped for a symlink
//! between resolution and mount is caught rather than followed.

use crate::error::{err, Context, Result};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// How many symlinks one resolution may follow (as Linux's MAXSYMLINKS).
pub const MAX_SYMLINKS: usize = 40;

/// Resolves `unsafe_path` (absolute or relative, as in config.json) inside
/// `root` as if `root` were `/`: `..` stops at the root, absolute symlinks
/// restart from the root, missing components are kept as they are. The
/// result is `root` joined with a path free of symlinks, `.` and `..`.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut pending: VecDeque<OsString> = components(unsafe_path);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&c);
        let full = root.join(&candidate);
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if is_missing(&e) => {
                resolved = candidate;
                continue;
            }
            Err(e) => {
                return Err(e).ctx(|| {
                    format!("resolve {} in {}: lstat {}", unsafe_path.display(), root.display(), full.display())
                })
            }
        };
        if !meta.file_type().is_symlink() {
            resolved = candidate;
            continue;
        }
        links += 1;
        if links > MAX_SYMLINKS {
            return err(format!(
                "resolve {} in {}: ELOOP: more than {MAX_SYMLINKS} symbolic links",
                unsafe_path.display(),
                root.display()
            ));
        }
        let target = fs::read_link(&full)
            .ctx(|| format!("resolve {} in {}: readlink {}", unsafe_path.display(), root.display(), full.display()))?;
        if target.is_absolute() {
            resolved.clear();
        }
        for t in components(&target).into_iter().rev() {
            pending.push_front(t);
        }
    }
    Ok(root.join(resolved))
}

/// The normal and `..` components of `p` (`/`, `.` and empty ones dropped).
fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn is_missing(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

/// Creates the directories of `resolved` (a [`secure_join`] result under
/// `root`) that do not exist yet, mode 0755; refuses a component that turned
/// into a symlink meanwhile.
pub fn create_dirs(root: &Path, resolved: &Path) -> Result<()> {
    let rel = resolved
        .strip_prefix(root)
        .map_err(|_| crate::error::Error(format!("{} is not under {}", resolved.display(), root.display())))?;
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return err(format!(
                    "create {}: {} is a symlink (changed during setup)",
                    resolved.display(),
                    cur.display()
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => match fs::DirBuilder::new().mode(0o755).create(&cur) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).ctx(|| format!("mkdir {}", cur.display())),
            },
            Err(e) => return Err(e).ctx(|| format!("lstat {}", cur.display())),
        }
    }
    Ok(())
}

/// Creates an empty file at `resolved` (and its parent directories) unless
/// something is there already.
pub fn create_file(root: &Path, resolved: &Path) -> Result<()> {
    if fs::symlink_metadata(resolved).is_ok() {
        return Ok(());
    }
    if let Some(parent) = resolved.parent() {
        create_dirs(root, parent)?;
    }
    match fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(resolved)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).ctx(|| format!("create {}", resolved.display())),
    }
}

/// A mount target opened O_PATH and checked to be inside the root; mounts
/// go through `/proc/self/fd/N` so they land exactly on what was checked.
pub struct Target {
    fd: OwnedFd,
    path: PathBuf,
    via_fd: Option<PathBuf>,
}

impl Target {
    /// Opens `resolved` (no symlink followed) and checks it lies in `root`.
    pub fn open(root: &Path, resolved: &Path) -> Result<Target> {
        let c = std::ffi::CString::new(resolved.as_os_str().as_bytes())
            .map_err(|_| crate::error::Error(format!("path {} has a NUL byte", resolved.display())))?;
        // SAFETY: plain syscall on a NUL-terminated path; the fd is owned below.
        let raw = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| format!("open {}", resolved.display()));
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let via = PathBuf::from(format!("/proc/self/fd/{raw}"));
        let via_fd = match fs::read_link(&via) {
            Ok(real) => {
                if !real.starts_with(root) {
                    return err(format!(
                        "mount target {} resolves to {} outside of {}",
                        resolved.display(),
                        real.display(),
                        root.display()
                    ));
                }
                // The magic link itself is a symlink; what it names must not be.
                // SAFETY: fstat on our own descriptor into a zeroed struct.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                    return err(format!("mount target {} is a symlink", resolved.display()));
                }
                Some(via)
            }
            // No /proc in this mount namespace: the resolved path is all we have.
            Err(_) => None,
        };
        Ok(Target { fd, path: resolved.to_path_buf(), via_fd })
    }

    /// The path to hand to mount(2).
    pub fn mount_path(&self) -> &Path {
        self.via_fd.as_deref().unwrap_or(&self.path)
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Tree(PathBuf);
    impl Tree {
        fn new(tag: &str) -> Tree {
            let p = std::env::temp_dir().join(format!("skiff-rootfs-paths-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(p.join("etc")).unwrap();
            fs::create_dir_all(p.join("usr/lib")).unwrap();
            fs::write(p.join("etc/passwd"), "root").unwrap();
            // Canonical, as prepare() uses it.
            Tree(fs::canonicalize(&p).unwrap())
        }
    }
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn plain_paths() {
        let t = Tree::new("plain");
        let r = &t.0;
        assert_eq!(secure_join(r, Path::new("/etc/passwd")).unwrap(), r.join("etc/passwd"));
        assert_eq!(secure_join(r, Path::new("etc/./passwd")).unwrap(), r.join("etc/passwd"));
        assert_eq!(secure_join(r, Path::new("/missing/dir")).unwrap(), r.join("missing/dir"));
        assert_eq!(secure_join(r, Path::new("/")).unwrap(), r.to_path_buf());
        assert_eq!(secure_join(r, Path::new("/../../..")).unwrap(), r.to_path_buf());
        assert_eq!(secure_join(r, Path::new("/usr/../../../etc")).unwrap(), r.join("etc"));
    }

    #[test]
    fn hostile_symlinks_stay_inside() {
        let t = Tree::new("hostile");
        let r = &t.0;
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../../../../../", r.join("usr/up")).unwrap();
        symlink("/../../../tmp", r.join("usr/abs-up")).unwrap();
        symlink("../../etc/shadow-missing", r.join("usr/lib/rel")).unwrap();
        symlink("/proc/self/root", r.join("selfroot")).unwrap();
        assert_eq!(secure_join(r, Path::new("/abs")).unwrap(), r.join("etc"));
        assert_eq!(secure_join(r, Path::new("/abs/passwd")).unwrap(), r.join("etc/passwd"));
        assert_eq!(secure_join(r, Path::new("/usr/up")).unwrap(), r.to_path_buf());
        assert_eq!(secure_join(r, Path::new("/usr/up/etc")).unwrap(), r.join("etc"));
        assert_eq!(secure_join(r, Path::new("/usr/abs-up/x")).unwrap(), r.join("tmp/x"));
        assert_eq!(secure_join(r, Path::new("/usr/lib/rel")).unwrap(), r.join("etc/shadow-missing"));
        assert_eq!(secure_join(r, Path::new("/selfroot/etc")).unwrap(), r.join("proc/self/root/etc"));
        // A chain of links through each other.
        symlink("abs", r.join("chain1")).unwrap();
        symlink("/chain1/../usr/up", r.join("chain2")).unwrap();
        assert_eq!(secure_join(r, Path::new("/chain2/etc/passwd")).unwrap(), r.join("etc/passwd"));
    }

    #[test]
    fn loops_are_bounded() {
        let t = Tree::new("loops");
        let r = &t.0;
        symlink("/loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        symlink("self/x", r.join("self")).unwrap();
        for p in ["/loop1", "/loop2/x", "/self"] {
            let e = secure_join(r, Path::new(p)).unwrap_err().0;
            assert!(e.contains("ELOOP") && e.contains(p), "{p}: {e}");
        }
    }

    #[test]
    fn creates_missing_dirs_and_files() {
        let t = Tree::new("create");
        let r = &t.0;
        symlink("/etc", r.join("abs")).unwrap();
        let d = secure_join(r, Path::new("/abs/new/deeper")).unwrap();
        create_dirs(r, &d).unwrap();
        assert!(r.join("etc/new/deeper").is_dir());
        let f = secure_join(r, Path::new("/abs/other/file")).unwrap();
        create_file(r, &f).unwrap();
        assert!(r.join("etc/other/file").is_file());
        create_file(r, &f).unwrap();
        let target = Target::open(r, &d).unwrap();
        assert!(target.mount_path().starts_with("/proc/self/fd/"));
        // A path outside the root is refused.
        let e = Target::open(r, Path::new("/etc")).err().unwrap().0;
        assert!(e.contains("outside"), "{e}");
    }
}
