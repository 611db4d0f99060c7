//! The user's terminal for `run -it`: raw mode while attached (restored on
//! drop, also on error paths), and its size for the container's pty.

/// Raw mode on a terminal fd until dropped.
pub struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    /// None when `fd` is not a terminal.
    pub fn enable(fd: i32) -> Option<RawMode> {
        // SAFETY: termios calls on a caller-owned fd with local structs.
        unsafe {
            if libc::isatty(fd) != 1 {
                return None;
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return None;
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the attributes read in `enable`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// (rows, cols) of the terminal on `fd`.
pub fn size(fd: i32) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ fills a local winsize.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
    }
}

/// Accepts one connection on a console socket and receives the pty master
/// the runtime sends with SCM_RIGHTS.
pub fn receive_pty(l: &std::os::unix::net::UnixListener) -> crate::error::Result<std::fs::File> {
    use crate::error::Context;
    use std::os::fd::{AsRawFd, FromRawFd};
    let (conn, _) = l.accept().ctx(|| "accept on the console socket")?;
    let mut buf = [0u8; 4096];
    let mut cmsg = [0u64; 8];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: recvmsg with valid buffers; a received fd is owned below.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cmsg) as _;
        if libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "receive the pty master");
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return crate::error::err("the runtime sent no pty master");
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32);
        Ok(std::fs::File::from_raw_fd(fd))
    }
}

/// Bridges our stdin/stdout to a pty master in raw mode, sized like our
/// terminal, until the pty closes (the process and its children exited).
pub fn bridge(master: std::fs::File) {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    if let Some((rows, cols)) = size(1).or_else(|| size(0)) {
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ with a local winsize.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let _raw = RawMode::enable(0);
    if let Ok(mut to) = master.try_clone() {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::stdin().read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    let mut from = master;
    let mut buf = [0u8; 8192];
    let mut out = std::io::stdout();
    // EIO once every holder of the pty slave is gone.
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || out.write_all(&buf[..n]).is_err() {
            break;
        }
        let _ = out.flush();
    }
}
