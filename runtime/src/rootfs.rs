//! The container's root filesystem (OCI config.md "Root", "Mounts";
//! config-linux.md "Devices", "maskedPaths", "readonlyPaths",
//! "rootfsPropagation"). Runs inside the container process, in its new
//! mount namespace.
//!
//! What the caller must provide:
//! - `prepare` runs in the container process after it has entered its new
//!   mount namespace (and its pid, user, cgroup ... namespaces: a `proc`
//!   mount shows the pid namespace of the caller) and joined its cgroups
//!   (`cgroup` mounts bind the caller's own cgroups); as root of its user
//!   namespace (CAP_SYS_ADMIN, CAP_MKNOD unless devices may be bound).
//!   Relative bind sources are relative to the current directory, which
//!   should be the bundle, as with runc. The host's /proc must still be
//!   mounted (mount targets are checked through /proc/self/fd).
//! - `pivot` right after `prepare`, with the same rootfs; it leaves the cwd
//!   at the new `/`.
//! - `finish` after `pivot`, before dropping privileges.
//!
//! Choices (as runc): without `rootfsPropagation` `/` is made rslave (host
//! unmounts still reach the container, nothing leaks out); default devices
//! and the /dev links are made unless /dev is a bind mount; a /dev tmpfs
//! asked `ro` is made read-only after its devices; readonlyPaths keep their
//! nosuid/nodev/noexec rather than adding them.

mod cgroupfs;
mod devices;
mod masks;
mod mountinfo;
mod mounts;
mod options;
mod paths;
mod pivot;
#[cfg(test)]
mod sequence_tests;

pub use paths::secure_join;

use crate::error::{err, Context, Result};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::{Path, PathBuf};

const NONE: Option<&str> = None;

/// Before pivot: make mounts private (or `rootfsPropagation`), bind `rootfs`
/// onto itself, perform `spec.mounts` (targets resolved inside rootfs,
/// never through a symlink out of it), create default and `linux.devices`,
/// /dev links (fd, stdin, stdout, stderr, ptmx).
pub fn prepare(spec: &Spec, rootfs: &Path) -> Result<()> {
    let root = canonical(rootfs)?;
    let linux = spec.linux().as_ref();
    let propagation = root_propagation(spec)?;
    mount(NONE, "/", NONE, propagation.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC), NONE).ctx(|| {
        format!("set propagation of / to {}", linux.and_then(|l| l.rootfs_propagation().as_deref()).unwrap_or("rslave"))
    })?;
    parent_mount_private(&root)?;
    mount(Some(&root), &root, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
        .ctx(|| format!("bind mount {} on itself", root.display()))?;

    let cgroupns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup));
    let setup = mounts::Setup { root: root.clone(), cgroupns };
    let mut read_only_later = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        if let Some(p) = mounts::mount_one(&setup, m)? {
            read_only_later.push(p);
        }
    }

    if dev_is_made(spec) {
        for n in devices::all(spec)? {
            devices::create(&root, &n)?;
        }
        devices::links(&root)?;
    }
    for p in read_only_later {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mounts::remount(&setup, &p, flags)?;
    }
    Ok(())
}

/// pivot_root into `rootfs` and detach the old root (chroot when `no_pivot`).
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    let root = canonical(rootfs)?;
    if no_pivot {
        pivot::move_root(&root)
    } else {
        pivot::pivot(&root)
    }
}

/// After pivot: maskedPaths, readonlyPaths, `root.readonly`, final propagation.
pub fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for p in linux.and_then(|l| l.readonly_paths().as_ref()).into_iter().flatten() {
        masks::read_only(p)?;
    }
    for p in linux.and_then(|l| l.masked_paths().as_ref()).into_iter().flatten() {
        masks::mask(p)?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        masks::root_read_only()?;
    }
    // The container's own `/` gets the asked propagation now that it is `/`
    // (before pivot it would have changed the host's mount). Private was
    // already applied to the rootfs's parent.
    if let Some(flags) = root_propagation(spec)? {
        if !flags.contains(MsFlags::MS_PRIVATE) {
            mount(NONE, "/", NONE, flags, NONE)
                .ctx(|| format!("set propagation of / to {}", propagation_name(spec)))?;
        }
    }
    Ok(())
}

fn canonical(rootfs: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(rootfs).ctx(|| format!("rootfs {}", rootfs.display()))
}

fn propagation_name(spec: &Spec) -> &str {
    spec.linux().as_ref().and_then(|l| l.rootfs_propagation().as_deref()).unwrap_or("")
}

/// `linux.rootfsPropagation` as mount flags (None when unset).
fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    match propagation_name(spec) {
        "" => Ok(None),
        name => match options::propagation(name) {
            Some(f) => Ok(Some(f)),
            None => err(format!(
                "linux.rootfsPropagation {name:?}: not one of private, rprivate, slave, rslave, shared, rshared, unbindable, runbindable"
            )),
        },
    }
}

/// pivot_root and MS_MOVE refuse a shared parent mount: make the mount the
/// rootfs lies on private if it is shared.
fn parent_mount_private(root: &Path) -> Result<()> {
    let infos = mountinfo::read()?;
    let Some(parent) = mountinfo::containing(&infos, root) else { return Ok(()) };
    if parent.is_shared() {
        mount(NONE, &parent.mount_point, NONE, MsFlags::MS_PRIVATE, NONE)
            .ctx(|| format!("make {} private", parent.mount_point.display()))?;
    }
    Ok(())
}

/// Devices and /dev links are made unless /dev is bound from elsewhere.
fn dev_is_made(spec: &Spec) -> bool {
    !spec.mounts().as_deref().unwrap_or(&[]).iter().any(|m| {
        let dest = m.destination();
        let is_dev =
            dest.components().eq(Path::new("/dev").components()) || dest.components().eq(Path::new("dev").components());
        let bind = m.typ().as_deref() == Some("bind")
            || m.options().as_deref().unwrap_or(&[]).iter().any(|o| o == "bind" || o == "rbind");
        is_dev && bind
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rootfs_propagation_is_parsed() {
        assert_eq!(root_propagation(&spec(r#"{"ociVersion":"1.0.2"}"#)).unwrap(), None);
        assert_eq!(
            root_propagation(&spec(r#"{"ociVersion":"1.0.2","linux":{"rootfsPropagation":"rshared"}}"#)).unwrap(),
            Some(MsFlags::MS_SHARED | MsFlags::MS_REC)
        );
        let e = root_propagation(&spec(r#"{"ociVersion":"1.0.2","linux":{"rootfsPropagation":"bogus"}}"#)).unwrap_err();
        assert!(e.0.contains("bogus"), "{e}");
    }

    #[test]
    fn dev_is_made_unless_bound() {
        assert!(dev_is_made(&spec(r#"{"ociVersion":"1.0.2"}"#)));
        assert!(dev_is_made(&spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/dev","type":"tmpfs","source":"tmpfs"}]}"#
        )));
        assert!(!dev_is_made(&spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/dev/","source":"/dev","options":["rbind"]}]}"#
        )));
        assert!(!dev_is_made(&spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/dev","type":"bind","source":"/dev"}]}"#
        )));
    }
}
