//! docker-proxy's start protocol with its parent: fd 3, when it is an open
//! pipe (or socket), gets `0\n` once the proxy listens, or `1\n<error>` when
//! it cannot start; fd 4, with `-use-listen-fd`, is a socket the parent already bound.

use crate::sock::cvt;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const REPORT_FD: RawFd = 3;
const LISTEN_FD: RawFd = 4;

/// Takes ownership of `fd` when it is open, marking it close-on-exec.
fn inherited(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only asks whether fd is open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return None;
    }
    // SAFETY: fd is open and nothing else in this process owns it yet
    // (taken before the proxy opens any descriptor of its own).
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        Some(OwnedFd::from_raw_fd(fd))
    }
}

/// The parent's status pipe, when there is one.
pub struct Parent(Option<OwnedFd>);

impl Parent {
    /// Takes fd 3 if it is an open pipe or socket (anything else, such as
    /// a file a caller leaked, is left alone). Call before opening any
    /// descriptor.
    pub fn take() -> Parent {
        // SAFETY: all-zero is a valid stat; fstat only fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: st is valid for writes.
        if unsafe { libc::fstat(REPORT_FD, &mut st) } != 0 {
            return Parent(None);
        }
        match st.st_mode & libc::S_IFMT {
            libc::S_IFIFO | libc::S_IFSOCK => Parent(inherited(REPORT_FD)),
            _ => Parent(None),
        }
    }

    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }

    fn send(self, msg: &[u8]) {
        if let Some(fd) = self.0 {
            // SAFETY: fd is open and ours; clear O_NONBLOCK so the write completes.
            unsafe {
                let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
                if fl >= 0 {
                    libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
                }
            }
            let mut f = std::fs::File::from(fd);
            // The parent may be gone; nothing to do about it then.
            let _ = f.write_all(msg);
        }
    }

    /// Listening: `0\n`, and the pipe is closed.
    pub fn ready(self) {
        self.send(b"0\n");
    }

    /// Cannot start: `1\n<error>`, and the pipe is closed.
    pub fn failed(self, err: &str) {
        let mut m = b"1\n".to_vec();
        m.extend_from_slice(err.as_bytes());
        self.send(&m);
    }
}

/// The inherited listening socket on fd 4, made non-blocking. Call before
/// opening any descriptor.
pub fn take_listen_fd() -> io::Result<OwnedFd> {
    let fd = inherited(LISTEN_FD).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: plain fcntl on our fd.
    unsafe {
        let fl = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        cvt(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK))?;
    }
    Ok(fd)
}
