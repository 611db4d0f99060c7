//! tini-style diagnostics on stderr: `[WARN  init (PID)] message`.
//!
//! No `core::fmt`: it alone would cost a third of the 32 KiB budget. Lines are
//! assembled in a fixed stack buffer (truncated when too long) and written
//! with one write(2) so lines from init and its child do not interleave.

use core::ffi::c_int;

pub const FATAL: u8 = 0;
pub const WARN: u8 = 1;
pub const INFO: u8 = 2;
pub const DEBUG: u8 = 3;
pub const TRACE: u8 = 4;

/// A line being assembled; bytes past the capacity are dropped.
pub struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    pub const fn new() -> Self {
        Line { buf: [0; 512], len: 0 }
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        for &c in b {
            if self.len == self.buf.len() {
                break;
            }
            self.buf[self.len] = c;
            self.len += 1;
        }
        self
    }

    pub fn int(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.bytes(b"-");
        }
        let mut v = n.unsigned_abs();
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.bytes(&digits[i..])
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Writes the whole line to `fd`, retrying on EINTR and short writes.
    pub fn write_to(&self, fd: c_int) {
        write_all(fd, self.as_bytes());
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

pub fn write_all(fd: c_int, mut b: &[u8]) {
    while !b.is_empty() {
        // SAFETY: b is a valid slice for its length.
        let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        b = &b[n as usize..];
    }
}

pub fn errno() -> c_int {
    // SAFETY: musl's and glibc's errno location is always valid for the thread.
    unsafe { *libc::__errno_location() }
}

/// The text of an errno value, from libc.
pub fn strerror(e: c_int) -> &'static [u8] {
    // SAFETY: strerror returns a pointer to a static, NUL-terminated string.
    unsafe { core::ffi::CStr::from_ptr(libc::strerror(e)) }.to_bytes()
}

/// Starts a diagnostic line with tini's prefix for `level`.
pub fn prefix(level: u8) -> Line {
    let mut l = Line::new();
    l.str(match level {
        FATAL => "[FATAL init (",
        WARN => "[WARN  init (",
        INFO => "[INFO  init (",
        DEBUG => "[DEBUG init (",
        _ => "[TRACE init (",
    });
    // SAFETY: getpid cannot fail.
    l.int(unsafe { libc::getpid() } as i64).str(")] ");
    l
}

/// Prints `line` + newline on stderr when `verbosity` allows `level`.
pub fn emit(verbosity: u8, level: u8, line: &mut Line) {
    if level <= verbosity || level == FATAL {
        line.str("\n").write_to(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_integers_and_truncates() {
        let mut l = Line::new();
        l.int(0).str(" ").int(-42).str(" ").int(i64::MAX);
        assert_eq!(l.as_bytes(), b"0 -42 9223372036854775807");
        let mut l = Line::new();
        for _ in 0..600 {
            l.str("x");
        }
        assert_eq!(l.as_bytes().len(), 512);
    }

    #[test]
    fn prefix_has_tini_shape() {
        let l = prefix(WARN);
        let s = core::str::from_utf8(l.as_bytes()).unwrap();
        assert!(s.starts_with("[WARN  init ("), "{s}");
        assert!(s.ends_with(")] "), "{s}");
    }
}
