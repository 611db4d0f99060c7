//! The runtime <-> container-process channel: a SOCK_SEQPACKET pair, one
//! message per step, `E<text>` for an error. Close-on-exec, so the container
//! program never sees it.

use crate::error::{err, Context, Error, Result};
use std::os::fd::RawFd;

#[derive(Debug, Clone, Copy)]
pub struct Channel(pub RawFd);

/// A connected pair: (runtime end, container end).
pub fn pair() -> Result<(Channel, Channel)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair fills two fds.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "socketpair");
    }
    Ok((Channel(fds[0]), Channel(fds[1])))
}

impl Channel {
    pub fn send(&self, msg: &[u8]) -> Result<()> {
        // SAFETY: msg is valid for its length.
        let n = unsafe { libc::send(self.0, msg.as_ptr().cast(), msg.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "send to the other side of the runtime channel");
        }
        Ok(())
    }

    /// Next message; Err on EOF (the other side is gone) or an `E` message.
    pub fn recv(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: buf is valid for its length.
            let n = unsafe { libc::recv(self.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e).ctx(|| "receive on the runtime channel");
            }
            if n == 0 {
                return err("the other side of the runtime channel exited");
            }
            buf.truncate(n as usize);
            if buf.first() == Some(&b'E') {
                return Err(Error(String::from_utf8_lossy(&buf[1..]).into_owned()));
            }
            return Ok(buf);
        }
    }

    pub fn expect(&self, what: &[u8]) -> Result<()> {
        let got = self.recv()?;
        if got != what {
            return err(format!(
                "runtime channel: expected {:?}, got {:?}",
                String::from_utf8_lossy(what),
                String::from_utf8_lossy(&got)
            ));
        }
        Ok(())
    }

    pub fn close(self) {
        // SAFETY: closing our own fd.
        unsafe { libc::close(self.0) };
    }
}
