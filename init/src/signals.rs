//! Signal handling, tini's way: init blocks signals for itself and collects
//! them with sigtimedwait, so none is lost between start-up and the child's
//! exec; the child gets back the mask init started with.

use core::mem::MaybeUninit;
use libc::{c_int, sigset_t};

/// Names accepted by `-p`, with or without the `SIG` prefix.
const NAMES: [(&[u8], c_int); 31] = [
    (b"HUP", libc::SIGHUP),
    (b"INT", libc::SIGINT),
    (b"QUIT", libc::SIGQUIT),
    (b"ILL", libc::SIGILL),
    (b"TRAP", libc::SIGTRAP),
    (b"ABRT", libc::SIGABRT),
    (b"BUS", libc::SIGBUS),
    (b"FPE", libc::SIGFPE),
    (b"KILL", libc::SIGKILL),
    (b"USR1", libc::SIGUSR1),
    (b"SEGV", libc::SIGSEGV),
    (b"USR2", libc::SIGUSR2),
    (b"PIPE", libc::SIGPIPE),
    (b"ALRM", libc::SIGALRM),
    (b"TERM", libc::SIGTERM),
    (b"STKFLT", libc::SIGSTKFLT),
    (b"CHLD", libc::SIGCHLD),
    (b"CONT", libc::SIGCONT),
    (b"STOP", libc::SIGSTOP),
    (b"TSTP", libc::SIGTSTP),
    (b"TTIN", libc::SIGTTIN),
    (b"TTOU", libc::SIGTTOU),
    (b"URG", libc::SIGURG),
    (b"XCPU", libc::SIGXCPU),
    (b"XFSZ", libc::SIGXFSZ),
    (b"VTALRM", libc::SIGVTALRM),
    (b"PROF", libc::SIGPROF),
    (b"WINCH", libc::SIGWINCH),
    (b"IO", libc::SIGIO),
    (b"PWR", libc::SIGPWR),
    (b"SYS", libc::SIGSYS),
];

/// A signal from its name (`SIGKILL`, `KILL`) or number (`9`).
pub fn by_name(name: &[u8]) -> Option<c_int> {
    if !name.is_empty() && name.iter().all(u8::is_ascii_digit) && name.len() <= 2 {
        let n = name.iter().fold(0, |n, c| n * 10 + (c - b'0') as c_int);
        return (1..=64).contains(&n).then_some(n);
    }
    let bare = name.strip_prefix(b"SIG").unwrap_or(name);
    NAMES.iter().find(|(n, _)| *n == bare).map(|&(_, s)| s)
}

/// What init found at start-up and must hand to the child unchanged.
pub struct Inherited {
    pub mask: sigset_t,
}

/// The set init waits on.
pub struct Waited(sigset_t);

/// Blocks every signal, so each one sent to init is collected by `wait` and
/// forwarded, SIGSEGV or SIGTTIN included (tini leaves those unblocked and
/// dies of a `kill -SEGV 1`). Faults init itself causes still kill it: the
/// kernel unblocks synchronous signals it forces. Blocked SIGTTOU also lets
/// the child take the terminal before restoring the mask. Dispositions are
/// never changed, so ignored signals stay ignored across the child's exec.
pub fn configure() -> Result<(Inherited, Waited), &'static str> {
    // SAFETY: plain libc calls on locally owned, initialised structures.
    unsafe {
        let mut all = MaybeUninit::<sigset_t>::zeroed().assume_init();
        libc::sigfillset(&mut all);
        let mut mask = MaybeUninit::<sigset_t>::zeroed().assume_init();
        if libc::sigprocmask(libc::SIG_SETMASK, &all, &mut mask) != 0 {
            return Err("sigprocmask");
        }
        Ok((Inherited { mask }, Waited(all)))
    }
}

/// In the child, before exec: the start-up mask comes back.
pub fn restore(inherited: &Inherited) -> Result<(), &'static str> {
    // SAFETY: restores the mask read by `configure`.
    if unsafe { libc::sigprocmask(libc::SIG_SETMASK, &inherited.mask, core::ptr::null_mut()) } != 0 {
        return Err("sigprocmask");
    }
    Ok(())
}

/// Waits up to one second for a blocked signal; `None` on timeout or EINTR.
pub fn wait(set: &Waited) -> Option<c_int> {
    let timeout = libc::timespec { tv_sec: 1, tv_nsec: 0 };
    // SAFETY: set and timeout are valid; siginfo may be null.
    let s = unsafe { libc::sigtimedwait(&set.0, core::ptr::null_mut(), &timeout) };
    (s > 0).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(by_name(b"SIGKILL"), Some(libc::SIGKILL));
        assert_eq!(by_name(b"TERM"), Some(libc::SIGTERM));
        assert_eq!(by_name(b"SIGSYS"), Some(libc::SIGSYS));
        assert_eq!(by_name(b"15"), Some(15));
        assert_eq!(by_name(b"0"), None);
        assert_eq!(by_name(b"65"), None);
        assert_eq!(by_name(b"SIG"), None);
        assert_eq!(by_name(b"sigterm"), None);
        assert_eq!(by_name(b""), None);
    }
}
