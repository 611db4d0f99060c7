//! Where backend sockets are made: in the proxy's own network namespace, or
//! in a container's (`--netns /proc/PID/ns/net`). A socket belongs to the
//! namespace it was created in, so a helper thread that entered the
//! container's namespace once creates them on request; listeners and
//! everything else stay in the host namespace with the main thread. Worker
//! threads share it: a lock keeps each request with its reply.

use crate::sock;
use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;

type Request = (libc::c_int, libc::c_int);

/// Creates backend sockets.
pub enum Sockets {
    /// In the proxy's own namespace.
    Here,
    /// Through the helper thread living in another namespace.
    Netns(Mutex<(Sender<Request>, Receiver<io::Result<OwnedFd>>)>),
}

fn open_ns(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: c is a valid C string; the fd is owned right away.
    let fd = sock::cvt(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Sockets {
    /// Backend sockets from `netns` when given, else from here.
    pub fn new(netns: Option<&Path>) -> Result<Sockets, String> {
        let Some(path) = netns else { return Ok(Sockets::Here) };
        let what = |e: io::Error| format!("enter network namespace {}: {e}", path.display());
        let ns = open_ns(path).map_err(what)?;
        let (req_tx, req_rx) = channel::<Request>();
        let (rep_tx, rep_rx) = channel::<io::Result<OwnedFd>>();
        let (ready_tx, ready_rx) = channel::<io::Result<()>>();
        std::thread::Builder::new()
            .name("netns".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                use std::os::fd::AsRawFd;
                // SAFETY: plain syscall on an fd we own; it moves only this thread.
                let entered = sock::cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) });
                drop(ns);
                let ok = entered.is_ok();
                if ready_tx.send(entered.map(drop)).is_err() || !ok {
                    return;
                }
                while let Ok((domain, ty)) = req_rx.recv() {
                    if rep_tx.send(sock::socket(domain, ty)).is_err() {
                        return;
                    }
                }
            })
            .map_err(what)?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(what(e)),
            Err(_) => return Err(what(io::Error::other("helper thread failed"))),
        }
        Ok(Sockets::Netns(Mutex::new((req_tx, rep_rx))))
    }

    /// A non-blocking socket for talking to backends.
    pub fn socket(&self, domain: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
        match self {
            Sockets::Here => sock::socket(domain, ty),
            Sockets::Netns(helper) => {
                let gone = || io::Error::other("network namespace helper thread is gone");
                // A thread that panicked holding the lock left the channels intact.
                let helper = helper.lock().unwrap_or_else(|e| e.into_inner());
                helper.0.send((domain, ty)).map_err(|_| gone())?;
                helper.1.recv().map_err(|_| gone())?
            }
        }
    }
}
