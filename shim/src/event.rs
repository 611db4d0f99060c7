//! The event loop's system pieces: poll(2), a signalfd for SIGCHLD and the
//! stop signals, non-blocking pipes, and reaping children.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

pub fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 just opened both; they are ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor the caller holds.
    unsafe {
        let fl = cvt(libc::fcntl(fd, libc::F_GETFL))?;
        let fl = if on { fl | libc::O_NONBLOCK } else { fl & !libc::O_NONBLOCK };
        cvt(libc::fcntl(fd, libc::F_SETFL, fl)).map(drop)
    }
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for buf.len() bytes of writes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for buf.len() bytes of reads.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Writes all of `buf` to a blocking descriptor.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A pollfd asking for `events` on `fd`.
pub fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd { fd, events, revents: 0 }
}

/// poll(2); an interrupted call reports no events.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        Some(d) => d.as_millis().min(i32::MAX as u128) as libc::c_int + i32::from(d.subsec_nanos() % 1_000_000 != 0),
    };
    // SAFETY: fds is a valid array of fds.len() pollfds.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

/// The signals the shim handles, blocked and read from a signalfd.
pub const SIGNALS: [libc::c_int; 4] = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

pub struct Signals(OwnedFd);

fn sigset(sigs: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initializes the set; sigaddset with valid numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

impl Signals {
    /// Blocks [`SIGNALS`] and opens a non-blocking signalfd for them.
    /// Children started with std's Command get an empty mask again.
    pub fn new() -> io::Result<Signals> {
        let set = sigset(&SIGNALS);
        // SAFETY: set is initialized; the old mask is not wanted.
        cvt(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) })?;
        // SAFETY: set is initialized.
        let fd = cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
        // SAFETY: signalfd returned a new descriptor.
        Ok(Signals(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// The signals that arrived since the last call.
    pub fn pending(&self) -> Vec<libc::c_int> {
        let mut out = Vec::new();
        // SAFETY: all-zero is a valid signalfd_siginfo.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: info is valid for size bytes of writes.
            let n = unsafe { libc::read(self.fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
            if n as usize != size {
                break;
            }
            out.push(info.ssi_signo as libc::c_int);
        }
        out
    }
}

/// A Command for `prog` whose process starts with an empty signal mask
/// (std keeps the parent's mask, and the shim blocks [`SIGNALS`]: a
/// runtime would pass that mask on to the container).
pub fn command(prog: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(prog);
    // SAFETY: sigprocmask is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            let set = sigset(&[]);
            cvt(libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())).map(drop)
        });
    }
    c
}

/// Reaps one exited child without blocking: (pid, wait status).
pub fn reap_any() -> Option<(libc::pid_t, libc::c_int)> {
    let mut status = 0;
    // SAFETY: status is valid for writes.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (pid > 0).then_some((pid, status))
}

/// Reaps `pid` if it exited, without blocking.
pub fn reap(pid: libc::pid_t) -> Option<libc::c_int> {
    let mut status = 0;
    // SAFETY: status is valid for writes.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    (r == pid).then_some(status)
}

/// Waits up to `timeout` for child `pid` to exit and reaps it. A pidfd
/// (Linux 5.3) wakes the wait the moment it exits; without one, short naps
/// that grow to 5 ms.
pub fn reap_within(pid: libc::pid_t, timeout: Duration) -> Option<libc::c_int> {
    let deadline = std::time::Instant::now() + timeout;
    // SAFETY: pidfd_open takes no pointers; a returned fd is owned at once.
    let mut pidfd = unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd as RawFd))
    };
    let mut nap = Duration::from_micros(100);
    loop {
        if let Some(st) = reap(pid) {
            return Some(st);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        match &pidfd {
            Some(fd) => {
                // Readable: it exited, and the reap above gets it; should that
                // fail (not our child any more), nap instead of polling again.
                if poll(&mut [pollfd(fd.as_raw_fd(), libc::POLLIN)], Some(left)).unwrap_or(1) > 0 {
                    pidfd = None;
                }
            }
            None => {
                std::thread::sleep(nap.min(left));
                nap = (nap * 2).min(Duration::from_millis(5));
            }
        }
    }
}

/// Docker's exit code for a wait status, and the signal if one killed it.
pub fn exit_code(status: libc::c_int) -> (i32, Option<i32>) {
    if libc::WIFSIGNALED(status) {
        let s = libc::WTERMSIG(status);
        (128 + s, Some(s))
    } else {
        (libc::WEXITSTATUS(status), None)
    }
}

/// kill(2), ignoring a process that is already gone.
pub fn signal(pid: libc::pid_t, sig: libc::c_int) {
    if pid > 0 {
        // SAFETY: plain kill(2) on a positive pid.
        unsafe { libc::kill(pid, sig) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reap_within_returns_the_status_once_the_child_exits() {
        let sh = |script: &str| std::process::Command::new("/bin/sh").args(["-c", script]).spawn().unwrap().id() as libc::pid_t;
        let pid = sh("sleep 0.2; exit 7");
        let t = std::time::Instant::now();
        let st = reap_within(pid, Duration::from_secs(10)).expect("reaped");
        assert_eq!(exit_code(st), (7, None));
        assert!(t.elapsed() >= Duration::from_millis(150), "returned before the child exited");
        // Still running at the deadline: None, and the child is left alone.
        let pid = sh("exec sleep 30");
        assert_eq!(reap_within(pid, Duration::from_millis(100)), None);
        signal(pid, libc::SIGKILL);
        let st = reap_within(pid, Duration::from_secs(10)).expect("reaped after SIGKILL");
        assert_eq!(exit_code(st), (137, Some(9)));
    }

    #[test]
    fn exit_codes_follow_docker() {
        assert_eq!(exit_code(7 << 8), (7, None));
        assert_eq!(exit_code(libc::SIGTERM), (143, Some(15)));
        assert_eq!(exit_code(libc::SIGKILL), (137, Some(9)));
    }

    #[test]
    fn pipes_read_and_write_without_blocking() {
        let (r, w) = pipe().unwrap();
        set_nonblocking(r.as_raw_fd(), true).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(read(r.as_raw_fd(), &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        write_all(w.as_raw_fd(), b"hey").unwrap();
        let mut fds = [pollfd(r.as_raw_fd(), libc::POLLIN)];
        assert_eq!(poll(&mut fds, Some(Duration::from_secs(5))).unwrap(), 1);
        assert_eq!(read(r.as_raw_fd(), &mut buf).unwrap(), 3);
        drop(w);
        // A test forking meanwhile can hold a copy of `w` until its child
        // execs (CLOEXEC): wait for the hang-up rather than read at once.
        let mut fds = [pollfd(r.as_raw_fd(), libc::POLLIN)];
        assert_eq!(poll(&mut fds, Some(Duration::from_secs(10))).unwrap(), 1);
        assert_eq!(read(r.as_raw_fd(), &mut buf).unwrap(), 0);
    }
}
