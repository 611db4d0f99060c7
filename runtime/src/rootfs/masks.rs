//! After pivot: `linux.readonlyPaths`, `linux.maskedPaths` and
//! `root.readonly` (config.md "Root", config-linux.md "Masked Paths",
//! "Readonly Paths"). Paths are the container's own now; missing ones are
//! skipped, as the spec allows and runc does.

use super::mounts::{describe, locked_flags, statfs_flags};
use crate::error::{Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use std::path::Path;

const NONE: Option<&str> = None;

/// Binds `path` onto itself and remounts it read-only, keeping its nosuid,
/// nodev and noexec (runc's readonlyPath).
pub fn read_only(path: &str) -> Result<()> {
    match mount(Some(path), path, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.ctx(|| format!("bind mount {path} on itself (readonlyPaths)"))?,
    }
    remount_keeping_locked(path, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY)
}

/// Remounts `path` with `flags` plus the nosuid/nodev/noexec/atime flags it
/// has (which a user namespace may have locked).
fn remount_keeping_locked(path: &str, flags: MsFlags) -> Result<()> {
    let flags = flags | locked_flags(statfs_flags(None, Path::new(path))?, flags);
    mount(NONE, path, NONE, flags, NONE).ctx(|| format!("remount {path} {}", describe(flags)))
}

/// Hides `path`: /dev/null bound over a file, a read-only empty tmpfs over
/// a directory (runc's maskPath).
pub fn mask(path: &str) -> Result<()> {
    match mount(Some("/dev/null"), path, NONE, MsFlags::MS_BIND, NONE) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ENOTDIR) => mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, NONE)
            .ctx(|| format!("mount tmpfs on {path} (maskedPaths)")),
        Err(e) => Err(e).ctx(|| format!("bind mount /dev/null on {path} (maskedPaths)")),
    }
}

/// `root.readonly`: the container's / read-only.
pub fn root_read_only() -> Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    match mount(NONE, "/", NONE, flags, NONE) {
        Err(Errno::EPERM) => remount_keeping_locked("/", flags),
        r => r.ctx(|| "remount / read-only (root.readonly)"),
    }
}
