//! The mounts of config.json (OCI config.md "Mounts"), performed before
//! pivot on targets resolved inside the rootfs: bind/rbind with their flags
//! applied by a remount, proc, sysfs, tmpfs (and `tmpcopyup`), devpts,
//! mqueue, cgroup, cgroup2 and any other filesystem type, then propagation
//! and recursive (`rro` ...) attributes.

use super::cgroupfs;
use super::options::{self, MountOptions};
use super::paths::{self, Target};
use crate::error::{err, Context, Error, Result};
use nix::errno::Errno;
use nix::mount::MsFlags;
use oci_spec::runtime::Mount;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What the mounts need to know about the container.
pub struct Setup {
    /// The rootfs, canonical.
    pub root: PathBuf,
    /// Whether the container has its own cgroup namespace.
    pub cgroupns: bool,
}

/// Entries under /proc a mount may cover (those lxcfs emulates), as runc.
const PROC_ALLOWED: &[&str] = &[
    "cpuinfo",
    "diskstats",
    "meminfo",
    "stat",
    "swaps",
    "uptime",
    "loadavg",
    "slabinfo",
    "net/dev",
    "sys/kernel/ns_last_pid",
];

/// Performs one mount of `spec.mounts`. Returns the resolved target when it
/// is a /dev filesystem asked read-only: it is mounted read-write so the
/// devices can be made, and the caller remounts it read-only afterwards.
pub fn mount_one(setup: &Setup, m: &Mount) -> Result<Option<PathBuf>> {
    let dest = m.destination();
    let typ = m.typ().as_deref().unwrap_or("");
    let mut opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    if typ == "bind" {
        opts.flags.insert(MsFlags::MS_BIND);
    }
    let shown = if typ.is_empty() { "bind" } else { typ };
    if opts.idmap {
        return err(format!("mount {shown} on {}: idmapped mounts (idmap, ridmap) are not supported", dest.display()));
    }
    let resolved = paths::secure_join(&setup.root, dest)?;
    check_proc(setup, &resolved, typ, &opts, m.source().as_deref())?;
    let mut read_only_later = None;
    if opts.is_bind() {
        let Some(source) = m.source() else {
            return err(format!("bind mount on {}: no source", dest.display()));
        };
        bind(setup, source, &resolved, &opts)?;
    } else {
        if typ.is_empty() {
            return err(format!("mount on {}: no type and not a bind mount", dest.display()));
        }
        let source = m.source().as_deref().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| typ.to_string());
        paths::create_dirs(&setup.root, &resolved)?;
        let mut flags = opts.flags;
        if resolved == setup.root.join("dev")
            && flags.contains(MsFlags::MS_RDONLY)
            && !flags.contains(MsFlags::MS_REMOUNT)
        {
            flags.remove(MsFlags::MS_RDONLY);
            read_only_later = Some(resolved.clone());
        }
        match typ {
            "cgroup" => cgroupfs::mount_cgroup(setup, &opts, &resolved)?,
            "cgroup2" => cgroupfs::mount_cgroup2(setup, &source, &opts, &resolved)?,
            "sysfs" | "mqueue" => {
                let t = Target::open(&setup.root, &resolved)?;
                match raw_mount(&t, Some(&source), Some(typ), flags, opts.data()) {
                    // In a user namespace sysfs needs the container's own network
                    // namespace and mqueue its own IPC namespace; fall back to
                    // binding the host's, as runc does.
                    Err(Errno::EPERM) => {
                        let host = if typ == "sysfs" { "/sys" } else { "/dev/mqueue" };
                        let mut b = opts.clone();
                        b.flags = flags | MsFlags::MS_BIND | MsFlags::MS_REC;
                        bind(setup, Path::new(host), &resolved, &b)?;
                        // The host's submounts came along: read-only too when
                        // asked (where the kernel has mount_setattr).
                        if flags.contains(MsFlags::MS_RDONLY) {
                            let t = Target::open(&setup.root, &resolved)?;
                            match set_recursive(&t, options::attr::RDONLY, 0) {
                                Ok(()) | Err(Errno::ENOSYS) => {}
                                Err(e) => {
                                    return Err(e).ctx(|| format!("make {} read-only recursively", resolved.display()))
                                }
                            }
                        }
                    }
                    r => r.ctx(|| format!("mount {typ} on {}", resolved.display()))?,
                }
            }
            "devpts" => {
                let t = Target::open(&setup.root, &resolved)?;
                let what = || format!("mount devpts on {}", resolved.display());
                match raw_mount(&t, Some(&source), Some(typ), flags, opts.data()) {
                    // gid=5 where group 5 is not mapped (a user namespace):
                    // the kernel says EINVAL; go without it, as crun does.
                    Err(Errno::EINVAL) if opts.data.split(',').any(|d| d.starts_with("gid=")) => {
                        let data: Vec<&str> = opts.data.split(',').filter(|d| !d.starts_with("gid=")).collect();
                        raw_mount(&t, Some(&source), Some(typ), flags, Some(&data.join(","))).ctx(what)?
                    }
                    r => r.ctx(what)?,
                }
            }
            "tmpfs" if opts.copy_up => tmpfs_copy_up(setup, &source, &resolved, flags, opts.data())?,
            _ => mount_fs(setup, &source, &resolved, typ, flags, opts.data())?,
        }
    }
    settle(setup, &resolved, &opts)?;
    Ok(read_only_later)
}

/// mount(2) through a checked target.
pub(super) fn raw_mount(
    t: &Target,
    source: Option<&str>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(source, t.mount_path(), fstype, flags, data)
}

/// Mounts a filesystem of type `fstype` on `resolved`.
pub(super) fn mount_fs(
    setup: &Setup,
    source: &str,
    resolved: &Path,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    let t = Target::open(&setup.root, resolved)?;
    raw_mount(&t, Some(source), Some(fstype), flags, data).ctx(|| format!("mount {fstype} on {}", resolved.display()))
}

/// Bind-mounts host `source` on `resolved` (creating a directory or a file
/// there to match the source), then remounts it with the flags a bind
/// ignores (ro, nosuid, nodev, noexec, atime ...).
pub(super) fn bind(setup: &Setup, source: &Path, resolved: &Path, opts: &MountOptions) -> Result<()> {
    let meta =
        fs::metadata(source).ctx(|| format!("bind mount {} on {}: source", source.display(), resolved.display()))?;
    if meta.is_dir() {
        paths::create_dirs(&setup.root, resolved)?;
    } else {
        paths::create_file(&setup.root, resolved)?;
    }
    let t = Target::open(&setup.root, resolved)?;
    let src = source.to_string_lossy();
    raw_mount(&t, Some(&src), None, opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC), None)
        .ctx(|| format!("bind mount {} on {}", source.display(), resolved.display()))?;
    if let Some(flags) = opts.bind_remount_flags() {
        remount(setup, resolved, flags)?;
    }
    Ok(())
}

/// Remounts the mount on `resolved` with `flags` (MS_REMOUNT included).
/// In a user namespace the flags the mount was locked with (nosuid, nodev,
/// noexec, atime) must be kept: on EPERM it retries with them.
pub(super) fn remount(setup: &Setup, resolved: &Path, flags: MsFlags) -> Result<()> {
    let t = Target::open(&setup.root, resolved)?;
    let what = || format!("remount {} {}", resolved.display(), describe(flags));
    match raw_mount(&t, None, None, flags, None) {
        Err(Errno::EPERM) => {
            let current = statfs_flags(Some(t.fd()), resolved)?;
            raw_mount(&t, None, None, flags | locked_flags(current, flags), None).ctx(what)
        }
        r => r.ctx(what),
    }
}

/// The statfs flags (`ST_*`) of the mount `fd` or `path` is on; raw,
/// since nix drops the bits it does not name on musl (ST_RELATIME).
pub(super) fn statfs_flags(fd: Option<&OwnedFd>, path: &Path) -> Result<u64> {
    // SAFETY: statvfs into a zeroed struct, from our own fd or a C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = match fd {
        Some(fd) => unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) },
        None => {
            let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
                .map_err(|_| Error(format!("path {} has a NUL byte", path.display())))?;
            unsafe { libc::statvfs(c.as_ptr(), &mut st) }
        }
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| format!("statfs {}", path.display()));
    }
    Ok(st.f_flag as u64)
}

/// The flags of a mount (statfs `ST_*` flags) a remount with `wanted` must
/// keep: nosuid, nodev, noexec and the access-time mode may be locked.
pub(super) fn locked_flags(current: u64, wanted: MsFlags) -> MsFlags {
    const ST_NOSUID: u64 = 0x2;
    const ST_NODEV: u64 = 0x4;
    const ST_NOEXEC: u64 = 0x8;
    const ST_NOATIME: u64 = 0x400;
    const ST_NODIRATIME: u64 = 0x800;
    const ST_RELATIME: u64 = 0x1000;
    let mut f = MsFlags::empty();
    for (st, ms) in [
        (ST_NOSUID, MsFlags::MS_NOSUID),
        (ST_NODEV, MsFlags::MS_NODEV),
        (ST_NOEXEC, MsFlags::MS_NOEXEC),
        (ST_NODIRATIME, MsFlags::MS_NODIRATIME),
    ] {
        if current & st != 0 {
            f |= ms;
        }
    }
    if !wanted.intersects(MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME) {
        if current & ST_NOATIME != 0 {
            f |= MsFlags::MS_NOATIME;
        } else if current & ST_RELATIME != 0 {
            f |= MsFlags::MS_RELATIME;
        } else {
            f |= MsFlags::MS_STRICTATIME;
        }
    }
    f
}

/// `ro,nosuid,...` for a message.
pub(super) fn describe(flags: MsFlags) -> String {
    let names: Vec<&str> = [
        (MsFlags::MS_RDONLY, "ro"),
        (MsFlags::MS_NOSUID, "nosuid"),
        (MsFlags::MS_NODEV, "nodev"),
        (MsFlags::MS_NOEXEC, "noexec"),
        (MsFlags::MS_NOATIME, "noatime"),
        (MsFlags::MS_NODIRATIME, "nodiratime"),
        (MsFlags::MS_RELATIME, "relatime"),
        (MsFlags::MS_STRICTATIME, "strictatime"),
        (MsFlags::MS_SYNCHRONOUS, "sync"),
        (MsFlags::MS_DIRSYNC, "dirsync"),
        (MsFlags::MS_BIND, "bind"),
    ]
    .into_iter()
    .filter(|(f, _)| flags.contains(*f))
    .map(|(_, n)| n)
    .collect();
    names.join(",")
}

/// Propagation changes and recursive attributes, after the mount.
fn settle(setup: &Setup, resolved: &Path, opts: &MountOptions) -> Result<()> {
    for p in &opts.propagation {
        let t = Target::open(&setup.root, resolved)?;
        raw_mount(&t, None, None, *p, None).ctx(|| format!("set propagation {p:?} on {}", resolved.display()))?;
    }
    if opts.has_recursive() {
        let t = Target::open(&setup.root, resolved)?;
        set_recursive(&t, opts.rec_set, opts.rec_clear).map_err(|e| {
            let hint =
                if e == Errno::ENOSYS { " (recursive mount options need mount_setattr(2), Linux 5.12)" } else { "" };
            Error(format!("set recursive mount attributes on {}: {e}{hint}", resolved.display()))
        })?;
    }
    Ok(())
}

/// mount_setattr(2) with AT_RECURSIVE on the mount `t` is the root of.
fn set_recursive(t: &Target, set: u64, clear: u64) -> nix::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const AT_RECURSIVE: libc::c_int = 0x8000;
    let a = MountAttr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    // SAFETY: the syscall reads `a` (size given) and an empty C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            t.fd().as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | AT_RECURSIVE,
            &a as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

/// Refuses mounts over /proc or inside it, except a proc filesystem on
/// /proc itself and the files lxcfs emulates (runc's rule: a mount there
/// could hide what maskedPaths and readonlyPaths protect).
fn check_proc(setup: &Setup, resolved: &Path, typ: &str, opts: &MountOptions, source: Option<&Path>) -> Result<()> {
    let proc = setup.root.join("proc");
    let Ok(rel) = resolved.strip_prefix(&proc) else { return Ok(()) };
    if rel.as_os_str().is_empty() {
        if !opts.is_bind() && typ == "proc" {
            return Ok(());
        }
        if opts.is_bind() {
            if let Some(src) = source {
                if nix::sys::statfs::statfs(src)
                    .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
                {
                    return Ok(());
                }
            }
        }
        return err(format!("mount {} on {}: only a proc filesystem may be mounted there", typ, resolved.display()));
    }
    if PROC_ALLOWED.iter().any(|a| rel == Path::new(a)) {
        return Ok(());
    }
    err(format!(
        "mount {} on {}: mounts inside /proc are not allowed",
        if typ.is_empty() { "bind" } else { typ },
        resolved.display()
    ))
}

/// A tmpfs that starts with a copy of what it covers (`tmpcopyup`).
fn tmpfs_copy_up(setup: &Setup, source: &str, resolved: &Path, flags: MsFlags, data: Option<&str>) -> Result<()> {
    // Keep the covered directory reachable through a descriptor.
    let below = fs::File::open(Target::open(&setup.root, resolved)?.mount_path())
        .ctx(|| format!("open {} for tmpcopyup", resolved.display()))?;
    let below_meta = below.metadata().ctx(|| format!("stat {}", resolved.display()))?;
    // Mounted writable for the copy, then remounted with the flags asked for.
    mount_fs(setup, source, resolved, "tmpfs", flags - MsFlags::MS_RDONLY, data)?;
    let below_path = PathBuf::from(format!("/proc/self/fd/{}", below.as_raw_fd()));
    copy_tree(&below_path, resolved).ctx(|| format!("tmpcopyup into {}", resolved.display()))?;
    if !data.unwrap_or("").split(',').any(|d| d.starts_with("mode=")) {
        fs::set_permissions(resolved, fs::Permissions::from_mode(below_meta.mode() & 0o7777))
            .ctx(|| format!("chmod {}", resolved.display()))?;
    }
    std::os::unix::fs::lchown(resolved, Some(below_meta.uid()), Some(below_meta.gid()))
        .ctx(|| format!("chown {}", resolved.display()))?;
    if flags.contains(MsFlags::MS_RDONLY) {
        let t = Target::open(&setup.root, resolved)?;
        raw_mount(&t, None, Some("tmpfs"), flags | MsFlags::MS_REMOUNT, data)
            .ctx(|| format!("remount tmpfs on {} read-only", resolved.display()))?;
    }
    Ok(())
}

/// Copies directory `src` into existing directory `dst`: files, dirs,
/// symlinks and special files, with modes and owners.
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    for entry in fs::read_dir(src).ctx(|| format!("read {}", src.display()))? {
        let entry = entry.ctx(|| format!("read {}", src.display()))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let meta = fs::symlink_metadata(&from).ctx(|| format!("lstat {}", from.display()))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&from).ctx(|| format!("readlink {}", from.display()))?;
            std::os::unix::fs::symlink(&target, &to).ctx(|| format!("symlink {}", to.display()))?;
        } else if ft.is_dir() {
            fs::create_dir(&to).ctx(|| format!("mkdir {}", to.display()))?;
            copy_tree(&from, &to)?;
        } else if ft.is_file() {
            fs::copy(&from, &to).ctx(|| format!("copy {} to {}", from.display(), to.display()))?;
        } else {
            let kind = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
            let perm = nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777);
            nix::sys::stat::mknod(&to, kind, perm, meta.rdev()).ctx(|| format!("mknod {}", to.display()))?;
        }
        std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid())).ctx(|| format!("chown {}", to.display()))?;
        if !ft.is_symlink() {
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .ctx(|| format!("chmod {}", to.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_flags_keep_what_the_kernel_locked() {
        let (nosuid, nodev, noatime, relatime) = (0x2, 0x4, 0x400, 0x1000);
        let cur = nosuid | nodev | relatime;
        assert_eq!(
            locked_flags(cur, MsFlags::MS_RDONLY),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME
        );
        assert_eq!(locked_flags(cur, MsFlags::MS_NOATIME), MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
        assert_eq!(locked_flags(noatime, MsFlags::empty()), MsFlags::MS_NOATIME);
        assert_eq!(locked_flags(0, MsFlags::empty()), MsFlags::MS_STRICTATIME);
    }

    #[test]
    fn flags_are_described() {
        assert_eq!(
            describe(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REMOUNT),
            "ro,nosuid,bind"
        );
    }
}
