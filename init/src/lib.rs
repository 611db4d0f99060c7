//! skiff init: a tini-compatible PID 1 for containers.
//!
//! One straight path, as tini: parse options, configure signals, register as
//! subreaper, spawn the program, then forward signals and reap zombies until
//! the program exits, and exit with its code (128+N when killed by signal N).
//! `#![no_std]` on purpose: it is what fits the 32 KiB budget.
#![cfg_attr(not(test), no_std)]

pub mod log;
pub mod options;
pub mod process;
pub mod reaper;
pub mod signals;

use core::ffi::c_char;
use log::{emit, errno, prefix, strerror};
use options::Options;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs `argv` (NULL-terminated) under init's supervision and returns the
/// exit code init must exit with.
///
/// # Safety
/// `argv` must point to a NULL-terminated array of valid C strings.
pub unsafe fn run(opts: &Options, argv: *const *const c_char) -> i32 {
    let v = opts.verbosity;
    let (inherited, waited) = match signals::configure() {
        Ok(s) => s,
        Err(what) => {
            let e = errno();
            emit(v, log::FATAL, prefix(log::FATAL).str(what).str(" failed: ").bytes(strerror(e)));
            return 1;
        }
    };
    if opts.pdeathsig != 0 && libc::prctl(libc::PR_SET_PDEATHSIG, opts.pdeathsig as libc::c_ulong) != 0 {
        let e = errno();
        emit(v, log::FATAL, prefix(log::FATAL).str("PR_SET_PDEATHSIG failed: ").bytes(strerror(e)));
        return 1;
    }
    if opts.subreaper && libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) != 0 {
        let e = errno();
        emit(v, log::FATAL, prefix(log::FATAL).str("PR_SET_CHILD_SUBREAPER failed: ").bytes(strerror(e)));
        return 1;
    }
    reaper::check(v);
    let child = match process::spawn(argv, &inherited, v) {
        Ok(pid) => pid,
        Err(code) => return code,
    };
    emit(v, log::INFO, prefix(log::INFO).str("Spawned child process with pid ").int(child as i64));
    loop {
        if let Some(sig) = signals::wait(&waited) {
            if sig != libc::SIGCHLD {
                forward(sig, child, opts, v);
            }
        }
        if let Some(status) = reaper::reap(child, opts.warn_on_reap, v) {
            let code = exit_code(status);
            let code = if opts.expects(code) { 0 } else { code };
            emit(v, log::INFO, prefix(log::INFO).str("Main child exited, init exits with ").int(code as i64));
            return code as i32;
        }
    }
}

fn forward(sig: i32, child: libc::pid_t, opts: &Options, v: u8) {
    emit(v, log::DEBUG, prefix(log::DEBUG).str("Passing signal ").int(sig as i64).str(" to child"));
    let target = if opts.kill_process_group { -child } else { child };
    // SAFETY: kill has no memory effects.
    if unsafe { libc::kill(target, sig) } != 0 {
        let e = errno();
        if e == libc::ESRCH {
            emit(v, log::WARN, prefix(log::WARN).str("Child was dead when forwarding signal"));
        } else {
            emit(v, log::FATAL, prefix(log::FATAL).str("Unexpected error when forwarding signal: ").bytes(strerror(e)));
        }
    }
}

/// The code init exits with for a wait status: the exit code, or 128+N for signal N.
pub fn exit_code(status: i32) -> u8 {
    if libc::WIFSIGNALED(status) {
        (128 + libc::WTERMSIG(status)) as u8
    } else {
        libc::WEXITSTATUS(status) as u8
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wait_status_to_exit_code() {
        assert_eq!(super::exit_code(3 << 8), 3);
        assert_eq!(super::exit_code(0), 0);
        assert_eq!(super::exit_code(libc::SIGTERM), 143);
        assert_eq!(super::exit_code(libc::SIGKILL | 0x80), 137); // core dumped flag
    }
}
