//! Detaching from the engine and reporting the start.
//!
//! The process the engine starts (the launcher) forks; the child calls
//! setsid and forks the shim proper, then exits; so the shim is in its own
//! session, not the engine's child, and re-parented to init (or the nearest
//! subreaper). The shim points stdio at /dev/null, moves to `/`, closes
//! every inherited descriptor, becomes child subreaper (the container's
//! init is re-parented to it when `runtime create` exits), and sends the
//! ready line to the launcher over a private pipe. The launcher copies it
//! to the ready fd and exits 0 (started) or 1, so the engine learns the
//! outcome either way, and can die at any moment without touching the shim.

use crate::event;
use crate::options::Options;
use crate::protocol::Ready;
use crate::supervise::Supervisor;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Takes `fd` when it is open (close-on-exec from now on).
fn take_fd(fd: RawFd) -> Option<OwnedFd> {
    if fd < 0 {
        return None;
    }
    // SAFETY: F_GETFD only asks whether fd is open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return None;
    }
    // SAFETY: fd is open and nothing else in the process owns it.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        Some(OwnedFd::from_raw_fd(fd))
    }
}

fn line(r: &Ready) -> Vec<u8> {
    let mut v = serde_json::to_vec(r).unwrap_or_else(|_| b"{\"ok\":false,\"error\":\"encode\"}".to_vec());
    v.push(b'\n');
    v
}

fn report(to: Option<OwnedFd>, r: &Ready) {
    if let Some(fd) = to {
        let _ = event::set_nonblocking(fd.as_raw_fd(), false);
        let _ = event::write_all(fd.as_raw_fd(), &line(r));
    }
}

/// Runs the supervisor in this process: start, report, loop.
fn supervise(o: Options, ready: Option<OwnedFd>) -> i32 {
    let mut s = match Supervisor::new(o) {
        Ok(s) => s,
        Err(e) => {
            report(ready, &Ready::failed(e));
            return 1;
        }
    };
    match s.start() {
        Ok(pid) => {
            // SAFETY: getpid has no preconditions.
            let me = unsafe { libc::getpid() };
            report(ready, &Ready { ok: true, pid: Some(pid), shim_pid: Some(me), error: None });
            s.run()
        }
        Err(e) => {
            report(ready, &Ready::failed(e));
            1
        }
    }
}

fn subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// `--foreground`: no fork; the ready line goes straight to the ready fd.
pub fn foreground(o: Options) -> i32 {
    let ready = take_fd(o.ready_fd);
    subreaper();
    supervise(o, ready)
}

/// Closes every descriptor above 2 except `keep`.
fn close_inherited(keep: RawFd) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => (3..1024).collect(),
    };
    for fd in fds {
        if fd > 2 && fd != keep {
            // SAFETY: closing descriptors nothing in this fresh process uses.
            unsafe { libc::close(fd) };
        }
    }
}

fn null_stdio() {
    // SAFETY: open/dup2/close on the standard descriptors.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
}

/// Detaches and supervises; returns the launcher's exit status (0 when the
/// container started, 1 when not), after writing the ready line to the
/// ready fd (or to stdout when the ready fd is not open).
pub fn detach(o: Options) -> i32 {
    let ready = take_fd(o.ready_fd);
    let (r, w) = match event::pipe() {
        Ok(p) => p,
        Err(e) => return fail(ready, format!("pipe: {e}")),
    };
    // SAFETY: single-threaded here; the child only continues in Rust code
    // that does not depend on other threads.
    match unsafe { libc::fork() } {
        -1 => return fail(ready, format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            drop(r);
            drop(ready);
            // SAFETY: setsid/fork/_exit in the intermediate child.
            unsafe {
                libc::setsid();
                match libc::fork() {
                    -1 => libc::_exit(1),
                    0 => {}
                    _ => libc::_exit(0),
                }
            }
            let _ = std::env::set_current_dir("/");
            null_stdio();
            close_inherited(w.as_raw_fd());
            subreaper();
            let code = supervise(o, Some(w));
            std::process::exit(code);
        }
        child => {
            drop(w);
            let mut st = 0;
            // SAFETY: waiting for the intermediate child, which exits at once.
            unsafe { libc::waitpid(child, &mut st, 0) };
        }
    }
    let mut text = Vec::new();
    let _ = std::fs::File::from(r).read_to_end(&mut text);
    let got = serde_json::from_slice::<Ready>(text.trim_ascii()).ok();
    let rep = got.unwrap_or_else(|| Ready::failed("the shim exited before reporting its start"));
    relay(ready, &rep)
}

fn fail(ready: Option<OwnedFd>, e: String) -> i32 {
    relay(ready, &Ready::failed(e))
}

fn relay(ready: Option<OwnedFd>, rep: &Ready) -> i32 {
    match ready {
        Some(fd) => report(Some(fd), rep),
        None => {
            let _ = event::write_all(1, &line(rep));
        }
    }
    if let Some(e) = &rep.error {
        let _ = event::write_all(2, format!("shim: {e}\n").as_bytes());
    }
    i32::from(!rep.ok)
}
