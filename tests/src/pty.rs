//! A pseudo-terminal pair for `-it` tests: the program under test gets the
//! slave as its controlling terminal and stdio; the test types on the master
//! and collects everything the terminal shows.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::thread::JoinHandle;

pub struct Pty {
    pub master: File,
    slave: RawFd,
}

impl Pty {
    /// A pty pair whose terminal is `rows` x `cols`.
    pub fn open(rows: u16, cols: u16) -> Pty {
        // SAFETY: pty allocation; the fds are owned by the returned value.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(m >= 0, "posix_openpt");
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            let name = std::ffi::CStr::from_ptr(libc::ptsname(m)).to_owned();
            let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(s >= 0, "open pty slave");
            let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
            libc::ioctl(s, libc::TIOCSWINSZ, &ws);
            Pty { master: File::from_raw_fd(m), slave: s }
        }
    }

    /// Makes the slave `cmd`'s controlling terminal and stdio (new session).
    pub fn attach(&self, cmd: &mut Command) {
        let slave = self.slave;
        // SAFETY: async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                libc::ioctl(slave, libc::TIOCSCTTY, 0);
                for fd in 0..3 {
                    libc::dup2(slave, fd);
                }
                Ok(())
            });
        }
    }

    /// Closes our copy of the slave (after spawning) and reads the master
    /// until the terminal hangs up; the thread returns what it showed.
    pub fn collect(&mut self) -> JoinHandle<String> {
        if self.slave >= 0 {
            // SAFETY: our own fd, closed once.
            unsafe { libc::close(self.slave) };
            self.slave = -1;
        }
        let mut r = self.master.try_clone().expect("clone pty master");
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            // EIO once every holder of the slave is gone.
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(&all).into_owned()
        })
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if self.slave >= 0 {
            // SAFETY: our own fd.
            unsafe { libc::close(self.slave) };
        }
    }
}

/// Receives the pty master sent over the console socket and reads it to EOF.
pub fn console_reader(sock: &std::path::Path) -> std::thread::JoinHandle<String> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let listener = std::os::unix::net::UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("console socket connection");
        let mut buf = [0u8; 4096];
        let mut cmsg = [0u8; 64];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: a recvmsg with valid buffers; the received fd is owned below.
        let fd = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cmsg.as_mut_ptr().cast();
            msg.msg_controllen = cmsg.len() as _;
            let n = libc::recvmsg(std::os::fd::AsRawFd::as_raw_fd(&conn), &mut msg, 0);
            assert!(n >= 0, "recvmsg");
            let c = libc::CMSG_FIRSTHDR(&msg);
            assert!(!c.is_null(), "no fd received");
            std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32)
        };
        // SAFETY: fd was just received and is ours.
        let mut master = unsafe { std::fs::File::from_raw_fd(fd) };
        let mut out = Vec::new();
        let _ = master.read_to_end(&mut out); // EIO when the slave side closes
        String::from_utf8_lossy(&out).into_owned()
    })
}
