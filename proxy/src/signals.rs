//! Stop signals as an event source: SIGTERM and SIGINT are blocked and read
//! from a signalfd in the event loop; SIGPIPE is ignored (writes report EPIPE).

use crate::sock::cvt;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub struct StopSignals {
    fd: OwnedFd,
}

impl StopSignals {
    /// Blocks the stop signals in this thread (and the threads it starts
    /// later) and opens a signalfd for them. Call before starting threads.
    pub fn new() -> io::Result<StopSignals> {
        // SAFETY: plain libc calls on a local, zero-initialised sigset.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            let mut set: libc::sigset_t = zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            let fd = cvt(libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC))?;
            Ok(StopSignals { fd: OwnedFd::from_raw_fd(fd) })
        }
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// The stop signal received, if any.
    pub fn take(&self) -> Option<i32> {
        // SAFETY: all-zero is valid for signalfd_siginfo.
        let mut info: libc::signalfd_siginfo = unsafe { zeroed() };
        // SAFETY: info is valid for writes of its size.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                &mut info as *mut _ as *mut libc::c_void,
                size_of::<libc::signalfd_siginfo>(),
            )
        };
        (n == size_of::<libc::signalfd_siginfo>() as isize).then_some(info.ssi_signo as i32)
    }
}
