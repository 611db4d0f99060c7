//! What pull and push print: docker's per-layer lines (`3f4d90098f5b: Pull
//! complete`), with the bytes moving updated in place when stdout is a
//! terminal; nothing but the result with `--quiet`.

use crate::commands::images::human_size;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    /// Lines go to stderr (`run`'s implicit pull), not stdout.
    stderr: bool,
    tty: bool,
    quiet: bool,
    last: Option<Instant>,
    /// A partial line is on the terminal.
    open: bool,
}

/// The 12 hex digits docker names a layer by.
pub fn short(digest: &str) -> &str {
    let h = digest.split_once(':').map(|(_, h)| h).unwrap_or(digest);
    &h[..h.len().min(12)]
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        // SAFETY: isatty only inspects the fd.
        let tty = unsafe { libc::isatty(1) == 1 };
        Progress { stderr: false, tty, quiet, last: None, open: false }
    }

    /// Progress on stderr, as docker shows the pull `run` makes.
    pub fn on_stderr() -> Progress {
        // SAFETY: isatty only inspects the fd.
        let tty = unsafe { libc::isatty(2) == 1 };
        Progress { stderr: true, tty, quiet: false, last: None, open: false }
    }

    fn out(&self) -> Box<dyn Write> {
        if self.stderr {
            Box::new(io::stderr().lock())
        } else {
            Box::new(io::stdout().lock())
        }
    }

    /// A line of the summary (`Digest: ...`), unless quiet.
    pub fn line(&mut self, s: &str) {
        if !self.quiet {
            self.clear();
            let _ = writeln!(self.out(), "{s}");
        }
    }

    /// `ID: STATUS`, unless quiet.
    pub fn status(&mut self, digest: &str, s: &str) {
        self.line(&format!("{}: {s}", short(digest)));
    }

    /// `ID: ACTION  DONE/TOTAL`, in place, on a terminal only (at most ten times a second).
    pub fn bytes(&mut self, digest: &str, action: &str, done: u64, total: u64) {
        if self.quiet || !self.tty {
            return;
        }
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) && done < total {
            return;
        }
        self.last = Some(Instant::now());
        let mut out = self.out();
        let _ = write!(out, "\r\x1b[K{}: {action}  {}/{}", short(digest), human_size(done), human_size(total));
        let _ = out.flush();
        self.open = true;
    }

    fn clear(&mut self) {
        if self.open {
            let _ = write!(self.out(), "\r\x1b[K");
            self.open = false;
        }
    }
}

/// A reader that reports its bytes to a `Progress`.
pub struct Counted<'a, R> {
    pub inner: R,
    pub progress: &'a mut Progress,
    pub digest: &'a str,
    pub action: &'static str,
    pub total: u64,
    pub done: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.bytes(self.digest, self.action, self.done, self.total);
        Ok(n)
    }
}
