//! The engine's side of starting a shim: run the shim binary with a pipe on
//! fd 3 and read its ready line.

use crate::event;
use crate::options::Options;
use crate::protocol::Ready;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Starts `shim` (the binary at `shim`) with `opts` and returns its ready
/// report: `Ready { ok: true, pid }` once the container runs (or is created,
/// with `no_start`), else the error (for a failed create, the runtime's own
/// text). `opts.ready_fd` is forced to 3 and `opts.foreground` is ignored.
pub fn start(shim: &Path, opts: &Options) -> io::Result<Ready> {
    let mut o = opts.clone();
    o.ready_fd = 3;
    o.foreground = false;
    let (r, w) = event::pipe()?;
    let wfd: RawFd = w.as_raw_fd();
    let mut c = Command::new(shim);
    c.args(o.to_args()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: only dup2/fcntl (async-signal-safe) between fork and exec.
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
    let mut child = c.spawn().map_err(|e| io::Error::new(e.kind(), format!("run {}: {e}", shim.display())))?;
    drop(c);
    drop(w);
    let mut text = Vec::new();
    let read = std::fs::File::from(r).read_to_end(&mut text);
    let _ = child.wait();
    read?;
    serde_json::from_slice::<Ready>(text.trim_ascii()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("shim {} gave no ready line ({e}): {:?}", shim.display(), String::from_utf8_lossy(&text)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in "shim" that ignores its arguments and reports on fd 3.
    fn fake(dir: &Path, body: &str) -> std::path::PathBuf {
        // Written by a child process: a writable descriptor of ours could
        // leak into a concurrent test's fork and make exec fail (ETXTBSY).
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let p = dir.join(format!("fake-shim-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        let st = Command::new("/bin/sh")
            .arg("-c")
            .arg("printf '#!/bin/sh\\n%s\\n' \"$1\" > \"$2\" && chmod 755 \"$2\"")
            .arg("sh")
            .arg(body)
            .arg(&p)
            .status()
            .unwrap();
        assert!(st.success());
        p
    }

    #[test]
    fn reads_the_ready_line_from_fd_3() {
        let dir = std::env::temp_dir().join(format!("shim-launch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let o = Options::new("c", "/b", "/s");
        let ok = fake(&dir, r#"echo '{"ok":true,"pid":12,"shim_pid":11}' >&3"#);
        let r = start(&ok, &o).unwrap();
        assert_eq!((r.ok, r.pid, r.shim_pid), (true, Some(12), Some(11)));
        let bad = fake(&dir, r#"echo '{"ok":false,"error":"no"}' >&3"#);
        assert_eq!(start(&bad, &o).unwrap().error.as_deref(), Some("no"));
        let silent = fake(&dir, "exit 0");
        assert!(start(&silent, &o).unwrap_err().to_string().contains("no ready line"));
        assert!(start(&dir.join("missing"), &o).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
