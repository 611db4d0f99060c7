//! Dialling backends inside a container's network namespace (`--netns
//! /proc/PID/ns/net`). A socket belongs to the namespace it was created in,
//! whichever thread uses it later. So the proxy binds every listener in the
//! host namespace first, then its main thread enters the container's: every
//! socket made after that (TCP backends, UDP flows) is the container's, and
//! so is each worker thread, started from the main one. Listeners and the
//! clients they accept stay in the host namespace.

use crate::sock;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn open_ns(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: c is a valid C string; the fd is owned right away.
    let fd = sock::cvt(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Moves the calling thread (and the threads it starts later) into the
/// network namespace at `path`.
pub fn enter(path: &Path) -> Result<(), String> {
    let what = |e: io::Error| format!("enter network namespace {}: {e}", path.display());
    let ns = open_ns(path).map_err(what)?;
    // SAFETY: plain syscall on an fd we own; it moves only this thread.
    sock::cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }).map_err(what)?;
    Ok(())
}
