//! `process.terminal`: a pty made inside the container (its own devpts),
//! whose master goes to the caller's `--console-socket` with SCM_RIGHTS,
//! as runc does; the slave becomes the process's stdio and controlling tty.

use crate::error::{err, Context, Result};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Connects to the console socket (a path in the runtime's namespace: do it
/// before pivot_root).
pub fn connect(path: &Path) -> Result<UnixStream> {
    // Paths past sun_path's 108 bytes are reached through an O_PATH fd of
    // their directory: /proc/self/fd/N/NAME.
    if let (true, Some(dir), Some(name)) = (path.as_os_str().len() > 107, path.parent(), path.file_name()) {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let d = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(dir)
            .ctx(|| format!("open {}", dir.display()))?;
        let short = Path::new(&format!("/proc/self/fd/{}", d.as_raw_fd())).join(name);
        return UnixStream::connect(&short).ctx(|| format!("connect to console socket {}", path.display()));
    }
    UnixStream::connect(path).ctx(|| format!("connect to console socket {}", path.display()))
}

/// Opens a pty, sends the master over `socket`, makes the slave our
/// stdin/stdout/stderr and controlling terminal (we are a session leader).
pub fn setup(socket: RawFd, size: Option<(u16, u16)>) -> Result<()> {
    // SAFETY: standard pty calls; fds are checked and closed below.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if master < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "open /dev/ptmx");
        }
        if libc::grantpt(master) != 0 || libc::unlockpt(master) != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "unlock pty");
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(master, name.as_mut_ptr(), name.len()) != 0 {
            return err("ptsname: cannot name the pty slave");
        }
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "open pty slave");
        }
        if let Some((rows, cols)) = size {
            let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
        }
        let pty_name = std::ffi::CStr::from_ptr(name.as_ptr()).to_bytes().to_vec();
        let fds = [master];
        sendmsg::<()>(socket, &[IoSlice::new(&pty_name)], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
            .ctx(|| "send the pty master to the console socket")?;
        libc::close(master);
        for fd in 0..3 {
            if libc::dup2(slave, fd) < 0 {
                return Err(std::io::Error::last_os_error()).ctx(|| "dup2 pty slave to stdio");
            }
        }
        if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "make the pty the controlling terminal");
        }
        if slave > 2 {
            libc::close(slave);
        }
    }
    Ok(())
}
