//! The container's root filesystem (OCI config.md "Root", "Mounts";
//! config-linux.md "Devices", "maskedPaths", "readonlyPaths",
//! "rootfsPropagation"). Runs inside the container process, in its new
//! mount namespace.

use crate::error::{err, Result};
use oci_spec::runtime::Spec;
use std::path::Path;

/// Before pivot: make mounts private (or `rootfsPropagation`), bind `rootfs`
/// onto itself, perform `spec.mounts` (targets resolved inside rootfs,
/// never through a symlink out of it), create default and `linux.devices`,
/// /dev links (fd, stdin, stdout, stderr, ptmx).
pub fn prepare(spec: &Spec, rootfs: &Path) -> Result<()> {
    let _ = (spec, rootfs);
    err("rootfs: not implemented yet")
}

/// pivot_root into `rootfs` and detach the old root (chroot when `no_pivot`).
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    let _ = (rootfs, no_pivot);
    err("rootfs: not implemented yet")
}

/// After pivot: maskedPaths, readonlyPaths, `root.readonly`, final propagation.
pub fn finish(spec: &Spec) -> Result<()> {
    let _ = spec;
    err("rootfs: not implemented yet")
}
