//! The control socket's server side: the listener (`shim.sock`, mode 0600)
//! and one non-blocking connection per client, with bounded buffers so a
//! client that stops reading is dropped instead of stalling the container.

use crate::protocol::{self, Reply, Request};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Longest request line.
pub const MAX_LINE: usize = 64 * 1024;
/// Output queued for a client beyond this drops the client.
pub const MAX_QUEUED: usize = 1 << 20;

/// Binds `path` with mode 0600. A live shim already serving it is an
/// error; a stale socket file is replaced.
pub fn listen(path: &Path) -> io::Result<UnixListener> {
    let short = crate::sockpath::usable(path)?;
    if UnixStream::connect(&short.path).is_ok() {
        return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("a shim is already serving {}", path.display())));
    }
    let _ = std::fs::remove_file(path);
    // SAFETY: umask only changes this (single-threaded) process's mask.
    let old = unsafe { libc::umask(0o177) };
    let l = UnixListener::bind(&short.path);
    // SAFETY: as above, restoring it.
    unsafe { libc::umask(old) };
    let l = l.map_err(|e| io::Error::new(e.kind(), format!("bind control socket {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reading request lines.
    Requests,
    /// A `wait` is pending; later lines wait for its reply.
    Waiting,
    /// Streaming output frames; input is stdin when `stdin`.
    Attached { stdin: bool },
}

pub struct Conn {
    pub stream: UnixStream,
    pub inbuf: Vec<u8>,
    pub outbuf: Vec<u8>,
    pub hello: bool,
    pub mode: Mode,
    /// The client shut down its sending side.
    pub input_closed: bool,
    /// Close once `outbuf` is written.
    pub closing: bool,
    pub dead: bool,
}

impl Conn {
    pub fn new(stream: UnixStream) -> io::Result<Conn> {
        stream.set_nonblocking(true)?;
        Ok(Conn {
            stream,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            hello: false,
            mode: Mode::Requests,
            input_closed: false,
            closing: false,
            dead: false,
        })
    }

    /// Reads what is available into `inbuf` (at most `limit` bytes queued).
    /// Sets `input_closed` at end of input.
    pub fn fill(&mut self, limit: usize) {
        let mut buf = [0u8; 16 * 1024];
        while self.inbuf.len() < limit {
            match (&self.stream).read(&mut buf) {
                Ok(0) => {
                    self.input_closed = true;
                    return;
                }
                Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
    }

    /// The next complete request line, if any; an over-long line is an error.
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            match self.inbuf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line: Vec<u8> = self.inbuf.drain(..=i).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    if line.len() > MAX_LINE {
                        return Some(Err(format!("request line too long ({} bytes, at most {MAX_LINE})", line.len())));
                    }
                    return Some(Ok(line));
                }
                None if self.inbuf.len() > MAX_LINE => {
                    self.inbuf.clear();
                    return Some(Err(format!("request line too long (more than {MAX_LINE} bytes)")));
                }
                None if self.input_closed && !self.inbuf.iter().all(u8::is_ascii_whitespace) => {
                    // A last request without its newline.
                    return Some(Ok(std::mem::take(&mut self.inbuf)));
                }
                None => return None,
            }
        }
    }

    /// Queues a reply line.
    pub fn reply(&mut self, r: &Reply) {
        match serde_json::to_vec(r) {
            Ok(v) => self.outbuf.extend_from_slice(&v),
            Err(e) => {
                self.outbuf.extend_from_slice(format!("{{\"ok\":false,\"error\":\"encode reply: {e}\"}}").as_bytes())
            }
        }
        self.outbuf.push(b'\n');
    }

    /// Queues output bytes; drops the client when too much is queued.
    pub fn queue(&mut self, data: &[u8]) {
        if self.outbuf.len() + data.len() > MAX_QUEUED {
            self.dead = true;
            self.outbuf.clear();
            return;
        }
        self.outbuf.extend_from_slice(data);
    }

    /// Writes what it can of `outbuf` without blocking.
    pub fn flush(&mut self) {
        while !self.outbuf.is_empty() && !self.dead {
            match (&self.stream).write(&self.outbuf) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => self.dead = true,
            }
        }
        if self.outbuf.is_empty() && self.closing {
            self.dead = true;
        }
    }
}

/// Decodes one request line, enforcing the hello-first rule.
pub fn decode(line: &[u8], hello_done: bool) -> Result<Request, String> {
    let req: Request = serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))?;
    match (&req, hello_done) {
        (Request::Hello { version: 0 }, _) => Err("unsupported protocol version 0".into()),
        (Request::Hello { .. }, _) => Ok(req),
        (_, false) => Err(format!("expected hello first: {{\"type\":\"hello\",\"version\":{}}}", protocol::VERSION)),
        _ => Ok(req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_names_the_problem() {
        assert!(decode(b"{\"type\":\"state\"}", false).unwrap_err().contains("expected hello first"));
        assert!(decode(b"not json", true).unwrap_err().starts_with("bad request: "));
        assert!(decode(b"{\"type\":\"kill\"}", true).unwrap_err().contains("signal"));
        assert!(decode(b"{\"type\":\"hello\",\"version\":0}", false).unwrap_err().contains("version 0"));
        assert_eq!(decode(b"{\"type\":\"hello\",\"version\":7}", false), Ok(Request::Hello { version: 7 }));
        assert_eq!(decode(b"{\"type\":\"state\"}", true), Ok(Request::State));
        assert!(decode(&[0xff, 0xfe], true).is_err());
    }

    #[test]
    fn lines_and_slow_clients() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut c = Conn::new(a).unwrap();
        (&b).write_all(b"one\r\n\n  \ntwo").unwrap();
        c.fill(1 << 20);
        assert_eq!(c.next_line(), Some(Ok(b"one".to_vec())));
        assert_eq!(c.next_line(), None);
        drop(b);
        c.fill(1 << 20);
        assert!(c.input_closed);
        assert_eq!(c.next_line(), Some(Ok(b"two".to_vec())));
        assert_eq!(c.next_line(), None);

        let (a, _b) = UnixStream::pair().unwrap();
        let mut c = Conn::new(a).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..200 {
            c.queue(&chunk);
            c.flush();
            if c.dead {
                break;
            }
        }
        assert!(c.dead, "a client that never reads is dropped");
    }

    #[test]
    fn listen_is_private_and_exclusive() {
        use std::os::unix::fs::FileTypeExt;
        let dir = std::env::temp_dir().join(format!("shim-control-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.sock");
        let l = listen(&p).unwrap();
        let md = std::fs::metadata(&p).unwrap();
        assert!(md.file_type().is_socket());
        assert_eq!(md.permissions().mode() & 0o777, 0o600);
        assert!(listen(&p).unwrap_err().to_string().contains("already serving"));
        drop(l);
        // Stale socket file: replaced. A concurrent test's child may hold a
        // copy of the listener between its fork and exec (the fd is
        // CLOEXEC, not yet closed), and then a connect still succeeds: poll
        // until that child has exec'd, with a deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let _l = loop {
            match listen(&p) {
                Ok(l) => break l,
                Err(e) if std::time::Instant::now() < deadline && e.kind() == io::ErrorKind::AddrInUse => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(e) => panic!("a stale socket file is not replaced: {e}"),
            }
        };
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
