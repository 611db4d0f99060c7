//! The one child: forked, put in its own process group (and in the
//! terminal's foreground when stdin is a tty), then exec'd with the signal
//! state init was started with.

use crate::log::{self, emit, errno, prefix, strerror};
use crate::signals::{self, Inherited};
use core::ffi::c_char;
use libc::pid_t;

/// Forks and execs `argv` (NULL-terminated). Returns the child's pid.
///
/// # Safety
/// `argv` must point to a NULL-terminated array of valid C strings.
pub unsafe fn spawn(argv: *const *const c_char, inherited: &Inherited, verbosity: u8) -> Result<pid_t, i32> {
    let pid = libc::fork();
    if pid < 0 {
        let e = errno();
        emit(verbosity, log::FATAL, prefix(log::FATAL).str("fork failed: ").bytes(strerror(e)));
        return Err(1);
    }
    if pid > 0 {
        return Ok(pid);
    }
    // Child: only async-signal-safe calls from here to exec.
    libc::_exit(exec_child(argv, inherited, verbosity))
}

unsafe fn exec_child(argv: *const *const c_char, inherited: &Inherited, verbosity: u8) -> i32 {
    if libc::setpgid(0, 0) < 0 {
        let e = errno();
        emit(verbosity, log::FATAL, prefix(log::FATAL).str("setpgid failed: ").bytes(strerror(e)));
        return 1;
    }
    // SIGTTOU is still blocked here, so a background group may take the tty.
    if libc::tcsetpgrp(0, libc::getpgrp()) < 0 {
        let e = errno();
        if e != libc::ENOTTY && e != libc::ENXIO {
            emit(verbosity, log::FATAL, prefix(log::FATAL).str("tcsetpgrp failed: ").bytes(strerror(e)));
            return 1;
        }
    }
    if let Err(what) = signals::restore(inherited) {
        let e = errno();
        emit(verbosity, log::FATAL, prefix(log::FATAL).str(what).str(" failed: ").bytes(strerror(e)));
        return 1;
    }
    libc::execvp(*argv, argv);
    let e = errno();
    let program = core::ffi::CStr::from_ptr(*argv).to_bytes();
    emit(
        verbosity,
        log::FATAL,
        prefix(log::FATAL).str("exec ").bytes(program).str(" failed: ").bytes(strerror(e)),
    );
    // Docker's and tini's convention: 127 not found, 126 found but not runnable.
    if e == libc::ENOENT || e == libc::ENOTDIR {
        127
    } else {
        126
    }
}
