//! The container's port proxy (`proxy --map ...`, or docker-proxy): started
//! once the container's namespaces exist, with docker-proxy's start report
//! on fd 3 (`0\n` listening, `1\n<error>`), restarted if it dies while the
//! container runs, stopped (SIGTERM, then SIGKILL) when the container exits.

use crate::event;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long a proxy may take to report.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped proxy may take to exit before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The argv with `{pid}` replaced by the container's pid.
pub fn argv(template: &[String], pid: i32) -> Vec<String> {
    template.iter().map(|a| a.replace("{pid}", &pid.to_string())).collect()
}

/// Starts the proxy and waits for its report; Ok(pid) once it listens.
/// `output` receives its stdout and stderr.
pub fn start(argv: &[String], output: Option<&File>) -> Result<libc::pid_t, String> {
    let (prog, args) = argv.split_first().ok_or("empty proxy command")?;
    let (r, w) = event::pipe().map_err(|e| format!("proxy report pipe: {e}"))?;
    let mut c = event::command(prog);
    c.args(args).stdin(Stdio::null());
    match output.and_then(|f| Some((f.try_clone().ok()?, f.try_clone().ok()?))) {
        Some((o, e)) => c.stdout(o).stderr(e),
        None => c.stdout(Stdio::null()).stderr(Stdio::null()),
    };
    let wfd: RawFd = w.as_raw_fd();
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if wfd == 3 {
                let fl = libc::fcntl(3, libc::F_GETFD);
                event::cvt(libc::fcntl(3, libc::F_SETFD, fl & !libc::FD_CLOEXEC))?;
            } else {
                event::cvt(libc::dup2(wfd, 3))?;
            }
            Ok(())
        });
    }
    let child = c.spawn().map_err(|e| format!("start proxy {prog}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    drop(child);
    drop(w);
    let _ = event::set_nonblocking(r.as_raw_fd(), true);
    let deadline = Instant::now() + REPORT_TIMEOUT;
    let mut report = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            stop(pid);
            return Err(format!("proxy {prog} did not report within {}s", REPORT_TIMEOUT.as_secs()));
        }
        let mut fds = [event::pollfd(r.as_raw_fd(), libc::POLLIN)];
        let _ = event::poll(&mut fds, Some(left));
        let mut buf = [0u8; 1024];
        match event::read(r.as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                report.extend_from_slice(&buf[..n]);
                if report.starts_with(b"0\n") {
                    return Ok(pid);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read proxy report: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&report).into_owned();
    if let Some(err) = text.strip_prefix("1\n") {
        stop(pid);
        return Err(format!("proxy: {}", err.trim()));
    }
    if text.starts_with('0') {
        return Ok(pid);
    }
    // No report: fine if it is still running (a proxy without fd 3 support).
    if let Some(st) = event::reap_within(pid, Duration::from_millis(50)) {
        let (code, _) = event::exit_code(st);
        return Err(format!("proxy {prog} exited with status {code} before listening"));
    }
    Ok(pid)
}

/// SIGTERM, up to [`STOP_GRACE`], then SIGKILL; reaps it.
pub fn stop(pid: libc::pid_t) {
    event::signal(pid, libc::SIGTERM);
    if event::reap_within(pid, STOP_GRACE).is_some() {
        return;
    }
    event::signal(pid, libc::SIGKILL);
    let mut st = 0;
    // SAFETY: blocking wait for our own child after SIGKILL.
    unsafe { libc::waitpid(pid, &mut st, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn substitutes_the_pid() {
        let a = argv(&["p".into(), "--netns".into(), "/proc/{pid}/ns/net".into()], 42);
        assert_eq!(a, ["p", "--netns", "/proc/42/ns/net"]);
    }

    #[test]
    fn reads_docker_proxy_reports() {
        let pid = start(&sh("printf '0\\n' >&3; exec sleep 30"), None).unwrap();
        stop(pid);
        let e = start(&sh("printf '1\\nlisten tcp 0.0.0.0:80: address already in use' >&3"), None).unwrap_err();
        assert_eq!(e, "proxy: listen tcp 0.0.0.0:80: address already in use");
        let e = start(&sh("exec 3>&-; exit 4"), None).unwrap_err();
        assert!(e.contains("status 4"), "{e}");
        let e = start(&["/nonexistent/proxy".to_string()], None).unwrap_err();
        assert!(e.contains("/nonexistent/proxy"), "{e}");
    }
}
