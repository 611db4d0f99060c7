//! A container's root filesystem: overlayfs with the image layers as lower
//! dirs and a per-container upper dir, or a private copy of the layers where
//! overlayfs is missing (some embedded kernels).

use crate::error::{Context, Result};
use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How a rootfs was made, for `engine info` and `rm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Overlay,
    Copy,
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| crate::error::Error(format!("{} has a NUL byte", p.display())))
}

/// True when the kernel offers overlayfs.
pub fn overlay_supported() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|s| s.lines().any(|l| l.trim_end().ends_with("overlay")))
}

/// Mount points the engine and runtime make in every container (docker's
/// init layer): not the container's changes.
pub const MOUNT_POINTS: &[&str] = &["/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/mtab", "/dev", "/proc", "/sys"];

/// `diff`: what the container changed, from its overlay upper dir, as
/// docker lists it (sorted): `A` added, `C` changed (an entry the image
/// has; a directory only when something under it is listed), `D` deleted
/// (an overlay whiteout). `hidden`: more mount points to leave out
/// (volumes, /dev/init).
pub fn changes(dir: &Path, layers: &[PathBuf], hidden: &[String]) -> Result<Vec<(char, String)>> {
    let upper = dir.join("upper");
    if !upper.is_dir() {
        return Err(crate::error::Error("diff needs an overlayfs rootfs: this container's is a copy".into()));
    }
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = upper.join(&rel);
        for e in std::fs::read_dir(&here).ctx(|| format!("read {}", here.display()))?.flatten() {
            let r = rel.join(e.file_name());
            let Ok(m) = e.path().symlink_metadata() else { continue };
            let whiteout = m.file_type().is_char_device() && m.rdev() == 0;
            let in_image = layers.iter().any(|l| l.join(&r).symlink_metadata().is_ok());
            let kind = if whiteout { 'D' } else if in_image { 'C' } else { 'A' };
            let path = format!("/{}", r.display());
            let under = |m: &str| path == m || path.starts_with(&format!("{m}/"));
            if MOUNT_POINTS.iter().any(|m| under(m)) || hidden.iter().any(|m| under(m)) {
                continue;
            }
            out.push((kind, path, m.is_dir()));
            if m.is_dir() {
                stack.push(r);
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    // A changed directory is listed for what changed under it.
    let shown: Vec<(char, String)> = out
        .iter()
        .filter(|(k, p, is_dir)| !(*k == 'C' && *is_dir) || out.iter().any(|(_, q, _)| q.starts_with(&format!("{p}/"))))
        .map(|(k, p, _)| (*k, p.clone()))
        .collect();
    Ok(shown)
}

/// Mounts `layers` (lowest first) at `<dir>/rootfs` with `<dir>/upper`,
/// `<dir>/work`; falls back to copying when overlayfs is unavailable.
pub fn mount(dir: &Path, layers: &[PathBuf]) -> Result<Kind> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).ctx(|| format!("create {}", rootfs.display()))?;
    if overlay_supported() {
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).ctx(|| format!("create {}", d.display()))?;
        }
        let lower: Vec<String> = layers.iter().rev().map(|l| l.display().to_string()).collect();
        let data = format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), upper.display(), work.display());
        let (src, fstype, target, opts) = (cstr(Path::new("overlay"))?, cstr(Path::new("overlay"))?, cstr(&rootfs)?, CString::new(data.clone()).unwrap_or_default());
        // SAFETY: mount with valid NUL-terminated strings.
        if unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, opts.as_ptr().cast()) } == 0 {
            return Ok(Kind::Overlay);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENODEV) {
            return Err(e).ctx(|| format!("mount overlay on {} ({data})", rootfs.display()));
        }
    }
    for l in layers {
        copy_tree(l, &rootfs)?;
    }
    std::fs::write(dir.join("rootfs.copy"), "").ctx(|| "mark the rootfs as a copy")?;
    Ok(Kind::Copy)
}

/// Unmounts (or removes the copy); a rootfs that is not mounted is fine.
pub fn unmount(dir: &Path) -> Result<()> {
    let rootfs = dir.join("rootfs");
    if !rootfs.exists() {
        return Ok(());
    }
    let target = cstr(&rootfs)?;
    // SAFETY: umount2 with a valid path.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOENT) {
            return Err(e).ctx(|| format!("unmount {}", rootfs.display()));
        }
    }
    Ok(())
}

/// Copies a layer over `to`, applying overlay whiteouts (0/0 char devices)
/// as deletions. Keeps modes, owners and symlinks.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).ctx(|| format!("read {}", from.display()))? {
        let entry = entry.ctx(|| format!("read {}", from.display()))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src).ctx(|| format!("stat {}", src.display()))?;
        let ft = meta.file_type();
        use std::os::unix::fs::FileTypeExt;
        if ft.is_char_device() && meta.rdev() == 0 {
            let _ = std::fs::remove_dir_all(&dst).or_else(|_| std::fs::remove_file(&dst));
            continue;
        }
        if ft.is_dir() {
            if !dst.is_dir() {
                let _ = std::fs::remove_file(&dst);
                std::fs::create_dir(&dst).ctx(|| format!("create {}", dst.display()))?;
            }
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&src).ctx(|| format!("readlink {}", src.display()))?;
            let _ = std::fs::remove_file(&dst);
            std::os::unix::fs::symlink(&target, &dst).ctx(|| format!("symlink {}", dst.display()))?;
        } else if ft.is_file() {
            let _ = std::fs::remove_file(&dst);
            std::fs::copy(&src, &dst).ctx(|| format!("copy {} to {}", src.display(), dst.display()))?;
        } else {
            continue; // device nodes and fifos come from the runtime's /dev
        }
        if !ft.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777)).ctx(|| format!("chmod {}", dst.display()))?;
        }
        let c = cstr(&dst)?;
        // SAFETY: lchown with a valid path.
        unsafe { libc::lchown(c.as_ptr(), meta.uid(), meta.gid()) };
    }
    Ok(())
}
