//! Zombie reaping: every child that exits, whether ours or reparented to us.

use crate::log::{self, emit, errno, prefix, strerror};
use libc::pid_t;

/// Warns when zombies reparented to us would never reach init.
pub fn check(verbosity: u8) {
    // SAFETY: getpid/prctl only read process attributes.
    unsafe {
        if libc::getpid() == 1 {
            return;
        }
        let mut on: libc::c_int = 0;
        if libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut on as *mut libc::c_int as libc::c_ulong) == 0 && on != 0 {
            return;
        }
    }
    emit(
        verbosity,
        log::WARN,
        prefix(log::WARN).str(
            "init is not running as PID 1 and isn't registered as a child subreaper.\n\
Zombie processes will not be re-parented to init, so zombie reaping won't work.\n\
To fix the problem, use the -s option or set the environment variable TINI_SUBREAPER to register init as a child subreaper, or run init as PID 1.",
        ),
    );
}

/// Reaps every exited child without blocking. Returns the main child's wait
/// status once it has exited.
pub fn reap(child: pid_t, warn_on_reap: bool, verbosity: u8) -> Option<i32> {
    let mut main_status = None;
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid == 0 {
            break;
        }
        if pid < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            if e != libc::ECHILD {
                emit(verbosity, log::WARN, prefix(log::WARN).str("waitpid failed: ").bytes(strerror(e)));
            }
            break;
        }
        if pid == child {
            main_status = Some(status);
        } else if warn_on_reap {
            emit(verbosity, log::WARN, prefix(log::WARN).str("Reaped zombie process with pid=").int(pid as i64));
        }
    }
    main_status
}
