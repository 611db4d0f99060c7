//! Making the rootfs the container's `/`: pivot_root(2) with runc's
//! `pivot_root(".", ".")` trick (no put_old directory needed), or with
//! `--no-pivot` (for a ramfs root where pivot_root is impossible) a move
//! of the rootfs onto `/` and a chroot.

use super::mountinfo;
use crate::error::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use std::path::Path;

const NONE: Option<&str> = None;

/// pivot_root into `root` and detach the old root.
pub fn pivot(root: &Path) -> Result<()> {
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", dir, Mode::empty()).ctx(|| "open /")?;
    let new = open(root, dir, Mode::empty()).ctx(|| format!("open {}", root.display()))?;
    fchdir(&new).ctx(|| format!("chdir {}", root.display()))?;
    pivot_root(".", ".").ctx(|| format!("pivot_root to {}", root.display()))?;
    // The old root is now stacked under the new one, at ".". Make it a
    // slave first so the unmount does not propagate to the host.
    fchdir(&old).ctx(|| "chdir to the old root")?;
    mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE).ctx(|| "make the old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "unmount the old root")?;
    chdir("/").ctx(|| "chdir /")
}

/// `--no-pivot`: hide the host's proc and sysfs mounts (as runc does, so
/// they cannot be reached or count as "already visible" to the kernel),
/// move `root` onto `/` and chroot into it.
pub fn move_root(root: &Path) -> Result<()> {
    chdir(root).ctx(|| format!("chdir {}", root.display()))?;
    for m in mountinfo::read()? {
        if !(m.fs_type == "proc" || m.fs_type == "sysfs") || m.mount_point.starts_with(root) {
            continue;
        }
        let p = &m.mount_point;
        match mount(NONE, p, NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE) {
            Ok(()) | Err(Errno::ENOENT) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(e).ctx(|| format!("make {} rslave", p.display())),
        }
        match umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::ENOENT) => {}
            // Not ours to unmount (a user namespace): cover it instead.
            Err(Errno::EINVAL | Errno::EPERM) => {
                mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::empty(), NONE)
                    .ctx(|| format!("cover {} with a tmpfs", p.display()))?;
            }
            Err(e) => return Err(e).ctx(|| format!("unmount {}", p.display())),
        }
    }
    mount(Some(root), "/", NONE, MsFlags::MS_MOVE, NONE).ctx(|| format!("move {} to /", root.display()))?;
    chroot(".").ctx(|| format!("chroot {}", root.display()))?;
    chdir("/").ctx(|| "chdir /")
}
