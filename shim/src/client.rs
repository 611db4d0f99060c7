//! A small blocking client of the control socket, for the engine.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use skiff_shim::client::Client;
//! let mut c = Client::connect("/var/lib/skiff/containers/ID/shim.sock")?;
//! let st = c.state()?;
//! c.stop(15)?;
//! let exit = c.wait()?;
//! # let _ = (st, exit); Ok(()) }
//! ```

use crate::protocol::{self, Exit, Reply, Request, State, Stats};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest reply line accepted.
const MAX_LINE: u64 = 1 << 20;

/// One connection to a shim, past the hello.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    version: u32,
    /// The state dir, when connected by path (for the `exit` fallback).
    state_dir: Option<PathBuf>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The shim closed the connection (it exits when nothing is left).
fn gone(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
}

impl Client {
    /// Connects to `shim.sock` and says hello.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<Client> {
        let path = path.as_ref();
        let short = crate::sockpath::usable(path)?;
        let stream = UnixStream::connect(&short.path)
            .map_err(|e| io::Error::new(e.kind(), format!("connect to shim at {}: {e}", path.display())))?;
        let mut c = Client::from_stream(stream)?;
        c.state_dir = path.parent().map(Path::to_path_buf);
        Ok(c)
    }

    /// Says hello over an already connected stream.
    pub fn from_stream(stream: UnixStream) -> io::Result<Client> {
        let writer = stream.try_clone()?;
        let mut c = Client { reader: BufReader::new(stream), writer, version: 0, state_dir: None };
        let r = c.call(&Request::Hello { version: protocol::VERSION })?;
        c.version = r.version.unwrap_or(protocol::VERSION);
        Ok(c)
    }

    /// The protocol version agreed with the shim.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bounds every later read (None: block as long as it takes).
    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.writer.set_read_timeout(t)
    }

    /// Sends one request and reads its reply; a reply with `ok: false` is an
    /// error carrying the shim's message.
    pub fn call(&mut self, req: &Request) -> io::Result<Reply> {
        let mut line = serde_json::to_vec(req).map_err(|e| invalid(format!("encode request: {e}")))?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        let mut buf = Vec::new();
        (&mut self.reader).take(MAX_LINE).read_until(b'\n', &mut buf)?;
        if buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "shim closed the connection"));
        }
        let reply: Reply = serde_json::from_slice(&buf).map_err(|e| invalid(format!("bad reply from shim: {e}")))?;
        if !reply.ok {
            return Err(io::Error::other(reply.error.unwrap_or_else(|| "shim: request failed".into())));
        }
        Ok(reply)
    }

    pub fn state(&mut self) -> io::Result<State> {
        self.call(&Request::State)?.state.ok_or_else(|| invalid("state reply without state".into()))
    }

    /// Blocks until the container's next exit (at once when it exited for
    /// good). When the shim goes away meanwhile (it exits once the container
    /// is gone for good), the exit it recorded in the state dir is returned.
    pub fn wait(&mut self) -> io::Result<Exit> {
        match self.call(&Request::Wait) {
            Ok(r) => r.exit.ok_or_else(|| invalid("wait reply without exit".into())),
            Err(e) if gone(&e) => self.state_dir.as_deref().and_then(protocol::read_exit).ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// Signals the container's init process.
    pub fn kill(&mut self, signal: i32) -> io::Result<()> {
        self.signal(signal, false, false)
    }

    /// Signals with stop intent: no restart after this exit.
    pub fn stop(&mut self, signal: i32) -> io::Result<()> {
        self.signal(signal, false, true)
    }

    /// `runtime kill [--all]`, optionally with stop intent.
    pub fn signal(&mut self, signal: i32, all: bool, stop: bool) -> io::Result<()> {
        self.call(&Request::Kill { signal, all, stop }).map(drop)
    }

    pub fn resize(&mut self, rows: u16, cols: u16) -> io::Result<()> {
        self.call(&Request::Resize { rows, cols }).map(drop)
    }

    pub fn stats(&mut self) -> io::Result<Stats> {
        self.call(&Request::Stats)?.stats.ok_or_else(|| invalid("stats reply without stats".into()))
    }

    /// Starts a container created with `--no-start`; returns its pid.
    pub fn start(&mut self) -> io::Result<i32> {
        Ok(self.call(&Request::Start)?.pid.unwrap_or(0))
    }

    /// A new restart policy for the container.
    pub fn set_restart(&mut self, policy: &str) -> io::Result<()> {
        self.call(&Request::Update { restart: Some(policy.to_string()) }).map(drop)
    }

    /// Graceful stop, then the shim exits.
    pub fn shutdown(&mut self, timeout: Option<u32>) -> io::Result<()> {
        self.call(&Request::Shutdown { timeout }).map(drop)
    }

    /// Turns this connection into an attach stream.
    pub fn attach(mut self, stdin: bool) -> io::Result<Attach> {
        self.call(&Request::Attach { stdin })?;
        Ok(Attach { reader: self.reader, writer: self.writer })
    }
}

/// One piece of an attach stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The container exited; the stream ends after this.
    Exit(Exit),
}

/// An attached connection: frames from the shim, stdin to it.
pub struct Attach {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Attach {
    /// The next frame; None when the shim closed the stream.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        let mut head = [0u8; protocol::FRAME_HEADER];
        match self.reader.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let mut data = vec![0u8; len];
        self.reader.read_exact(&mut data)?;
        Ok(Some(match head[0] {
            protocol::FRAME_STDOUT => Frame::Stdout(data),
            protocol::FRAME_STDERR => Frame::Stderr(data),
            protocol::FRAME_EXIT => {
                Frame::Exit(serde_json::from_slice(&data).map_err(|e| invalid(format!("bad exit frame: {e}")))?)
            }
            k => return Err(invalid(format!("unknown attach frame kind {k}"))),
        }))
    }

    /// Writes to the container's stdin (attach with `stdin: true`).
    pub fn write_stdin(&mut self, data: &[u8]) -> io::Result<()> {
        self.writer.write_all(data)
    }

    /// A handle for writing stdin from another thread.
    pub fn stdin_handle(&self) -> io::Result<UnixStream> {
        self.writer.try_clone()
    }

    /// Closes the container's stdin (pipes mode); output keeps coming.
    pub fn close_stdin(&self) -> io::Result<()> {
        self.writer.shutdown(Shutdown::Write)
    }

    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.writer.set_read_timeout(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    /// A fake shim on the other end of a socket pair: answers each line
    /// with the given replies in order.
    fn fake(replies: Vec<&'static str>) -> (UnixStream, std::thread::JoinHandle<Vec<String>>) {
        let (a, b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut r = BufReader::new(b.try_clone().unwrap());
            let mut w = b;
            let mut seen = Vec::new();
            for rep in replies {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                seen.push(line.trim_end().to_string());
                w.write_all(rep.as_bytes()).unwrap();
            }
            seen
        });
        (a, t)
    }

    #[test]
    fn hello_state_and_errors() {
        let (s, t) = fake(vec![
            "{\"ok\":true,\"version\":1}\n",
            "{\"ok\":true,\"state\":{\"id\":\"c\",\"status\":\"running\",\"pid\":7,\"shim_pid\":6}}\n",
            "{\"ok\":false,\"error\":\"container is not running\"}\n",
        ]);
        let mut c = Client::from_stream(s).unwrap();
        assert_eq!(c.version(), 1);
        let st = c.state().unwrap();
        assert_eq!((st.status, st.pid, st.restarts), (protocol::Status::Running, 7, 0));
        let e = c.kill(9).unwrap_err();
        assert_eq!(e.to_string(), "container is not running");
        drop(c);
        let seen = t.join().unwrap();
        assert_eq!(seen[0], r#"{"type":"hello","version":1}"#);
        assert_eq!(seen[1], r#"{"type":"state"}"#);
        assert_eq!(seen[2], r#"{"type":"kill","signal":9,"all":false,"stop":false}"#);
    }

    #[test]
    fn wait_falls_back_to_the_exit_record() {
        let dir = std::env::temp_dir().join(format!("shim-client-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join(protocol::SOCKET);
        let _ = std::fs::remove_file(&sock);
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::fs::write(dir.join(protocol::EXIT_FILE), r#"{"code":137,"time":"t","signal":9}"#).unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            (&s).write_all(b"{\"ok\":true,\"version\":1}\n").unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            // The shim exits instead of answering.
        });
        let mut c = Client::connect(&sock).unwrap();
        let e = c.wait().unwrap();
        assert_eq!((e.code, e.signal), (137, Some(9)));
        t.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn attach_reads_frames() {
        let (a, b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut r = BufReader::new(b.try_clone().unwrap());
            let mut w = b;
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            w.write_all(b"{\"ok\":true,\"version\":1}\n").unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            let mut out = b"{\"ok\":true}\n".to_vec();
            protocol::frame(protocol::FRAME_STDOUT, b"hi\n", &mut out);
            protocol::frame(protocol::FRAME_STDERR, b"", &mut out);
            protocol::frame(protocol::FRAME_EXIT, br#"{"code":3,"time":"t","signal":null}"#, &mut out);
            w.write_all(&out).unwrap();
            line
        });
        let mut at = Client::from_stream(a).unwrap().attach(false).unwrap();
        assert_eq!(at.next_frame().unwrap(), Some(Frame::Stdout(b"hi\n".to_vec())));
        assert_eq!(at.next_frame().unwrap(), Some(Frame::Stderr(Vec::new())));
        match at.next_frame().unwrap() {
            Some(Frame::Exit(e)) => assert_eq!((e.code, e.signal), (3, None)),
            other => panic!("{other:?}"),
        }
        assert_eq!(at.next_frame().unwrap(), None);
        assert_eq!(t.join().unwrap().trim_end(), r#"{"type":"attach","stdin":false}"#);
    }
}
