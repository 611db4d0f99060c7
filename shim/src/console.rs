//! The pty master of a tty container: received from the runtime over the
//! `--console-socket` (SCM_RIGHTS, as runc sends it), resized with TIOCSWINSZ.

use crate::event::cvt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// The listening console socket; removed when dropped.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> io::Result<ConsoleSocket> {
        let _ = std::fs::remove_file(path);
        let short = crate::sockpath::usable(path)?;
        let listener = UnixListener::bind(&short.path)
            .map_err(|e| io::Error::new(e.kind(), format!("bind console socket {}: {e}", path.display())))?;
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket { listener, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the pty master the runtime sent (call after `runtime create`
    /// returned: the runtime has connected and sent it by then).
    pub fn receive(&self) -> io::Result<OwnedFd> {
        let (conn, _) = self.listener.accept().map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(e.kind(), "the runtime did not connect to the console socket")
            } else {
                e
            }
        })?;
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        recv_fd(conn.as_raw_fd())
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Receives one descriptor (SCM_RIGHTS) from a connected unix socket;
/// extra descriptors are closed.
pub fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    // Room for a few descriptors, u64-aligned.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    // SAFETY: all-zero is a valid msghdr; the pointers set below stay valid
    // for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg describes valid buffers.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut got: Vec<OwnedFd> = Vec::new();
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(c) as *const libc::c_int;
                for i in 0..len / std::mem::size_of::<libc::c_int>() {
                    got.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if got.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "no descriptor received on the console socket"));
    }
    Ok(got.swap_remove(0))
}

/// TIOCSWINSZ on the pty master.
pub fn resize(master: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: ws is a valid winsize for the ioctl to read.
    cvt(unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    /// Sends `fd` over `sock` the way runc's utils.SendFd does.
    fn send_fd(sock: RawFd, fd: RawFd) {
        let name = b"/dev/pts/x";
        let mut control = [0u64; 4];
        let mut iov = libc::iovec { iov_base: name.as_ptr() as *mut _, iov_len: name.len() };
        // SAFETY: test-only sendmsg with valid buffers.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::c_int, fd);
            assert!(libc::sendmsg(sock, &msg, 0) > 0);
        }
    }

    #[test]
    fn receives_a_pty_master_and_resizes_it() {
        let dir = std::env::temp_dir().join(format!("shim-console-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cs = ConsoleSocket::bind(&dir.join("c.sock")).unwrap();
        // SAFETY: opening a pty master for the test.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        assert!(master >= 0);
        // SAFETY: master was just opened.
        let master = unsafe { OwnedFd::from_raw_fd(master) };
        let conn = UnixStream::connect(cs.path()).unwrap();
        send_fd(conn.as_raw_fd(), master.as_raw_fd());
        let got = cs.receive().unwrap();
        resize(got.as_raw_fd(), 33, 120).unwrap();
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: ws is valid for the ioctl to write.
        assert_eq!(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) }, 0);
        assert_eq!((ws.ws_row, ws.ws_col), (33, 120));
        let path = cs.path().to_path_buf();
        drop(cs);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
