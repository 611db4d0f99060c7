//! One proxied TCP connection: the client socket (side 0) and the backend
//! socket (side 1), and the bytes moving each way.
//!
//! Sockets are registered edge-triggered for both readiness kinds, once; the
//! connection remembers which side is readable/writable and clears a flag only
//! on EAGAIN, so no edge is ever lost. Each direction moves bytes with splice
//! through a pipe, or through a user-space buffer when no pipe can be had.
//! EOF one way becomes `shutdown(SHUT_WR)` on the other side while the other
//! direction keeps flowing; an error on one side resets the other.

use crate::sock::{self, would_block};
use crate::splice::{Pipe, PipePool};
use mio::net::TcpStream;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};

pub const CLIENT: usize = 0;
pub const BACKEND: usize = 1;

/// Bytes one direction may move per turn before others get theirs.
const TURN_BUDGET: usize = 4 << 20;
/// Size of the user-space buffer of a direction that cannot splice.
const COPY_BUF: usize = 64 * 1024;

/// What a connection needs after being pumped.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Waiting for readiness.
    Idle,
    /// Its turn ran out with work left: pump again soon.
    More,
    /// Both directions finished cleanly: close it.
    Done,
    /// This side failed (reset, broken pipe...): reset the other and close.
    Failed(usize),
}

struct CopyBuf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

/// One direction, from side `d` to side `1 - d`.
#[derive(Default)]
struct Dir {
    pipe: Option<Pipe>,
    in_pipe: usize,
    buf: Option<CopyBuf>,
    /// Splice is unavailable for this direction: copy through `buf`.
    copy: bool,
    /// The source sent EOF.
    eof: bool,
    /// EOF was passed on with `shutdown(SHUT_WR)`.
    shut: bool,
}

impl Dir {
    fn pending(&self) -> usize {
        match &self.buf {
            Some(b) if self.copy => b.end - b.start,
            _ => self.in_pipe,
        }
    }

    fn has_room(&self) -> bool {
        if self.copy {
            self.buf.as_ref().map_or(true, |b| b.end < b.data.len())
        } else {
            self.pipe.as_ref().map_or(true, |p| self.in_pipe < p.cap)
        }
    }

    fn fill(&mut self, src: RawFd, pool: &mut PipePool) -> io::Result<usize> {
        if !self.copy && self.pipe.is_none() {
            match pool.get() {
                Ok(p) => self.pipe = Some(p),
                Err(_) => self.copy = true,
            }
        }
        if let (false, Some(p)) = (self.copy, &self.pipe) {
            let n = p.fill(src, p.cap - self.in_pipe)?;
            self.in_pipe += n;
            return Ok(n);
        }
        let b =
            self.buf.get_or_insert_with(|| CopyBuf { data: vec![0u8; COPY_BUF].into_boxed_slice(), start: 0, end: 0 });
        let room = &mut b.data[b.end..];
        // SAFETY: room is valid for writes of its length.
        let n = unsafe { libc::read(src, room.as_mut_ptr() as *mut libc::c_void, room.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        b.end += n as usize;
        Ok(n as usize)
    }

    fn drain(&mut self, dst: RawFd) -> io::Result<usize> {
        if !self.copy {
            if let Some(p) = &self.pipe {
                let n = p.drain(dst, self.in_pipe)?;
                self.in_pipe -= n;
                return Ok(n);
            }
        }
        let Some(b) = self.buf.as_mut() else { return Ok(0) };
        let data = &b.data[b.start..b.end];
        // SAFETY: data is valid for reads of its length.
        let n = unsafe { libc::send(dst, data.as_ptr() as *const libc::c_void, data.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        b.start += n as usize;
        if b.start == b.end {
            b.start = 0;
            b.end = 0;
        }
        Ok(n as usize)
    }
}

/// A proxied connection.
pub struct Conn {
    pub socks: [TcpStream; 2],
    rd: [bool; 2],
    wr: [bool; 2],
    dirs: [Dir; 2],
    /// The backend connect is still in progress.
    pub connecting: bool,
    /// Slot of the listener that accepted it.
    pub listener: usize,
}

impl Conn {
    pub fn new(client: TcpStream, backend: TcpStream, connecting: bool, listener: usize) -> Conn {
        Conn {
            socks: [client, backend],
            // Optimistic: a wasted EAGAIN is cheaper than a lost edge.
            rd: [true; 2],
            wr: [true; 2],
            dirs: Default::default(),
            connecting,
            listener,
        }
    }

    /// Records readiness reported for `side`; `Some(Failed)` when the
    /// socket carries an error (a reset), which reading could hide.
    pub fn ready(&mut self, side: usize, ev: &mio::event::Event) -> Option<Outcome> {
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            self.rd[side] = true;
        }
        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
            self.wr[side] = true;
        }
        if ev.is_error() && !self.connecting {
            if let Ok(Some(_)) | Err(_) = self.socks[side].take_error() {
                return Some(Outcome::Failed(side));
            }
        }
        None
    }

    /// Whether the backend connect finished: `Some(Ok)` connected,
    /// `Some(Err)` failed, `None` still going.
    pub fn connect_result(&mut self) -> Option<io::Result<()>> {
        let b = &self.socks[BACKEND];
        match b.take_error() {
            Ok(Some(e)) | Err(e) => return Some(Err(e)),
            Ok(None) => {}
        }
        match b.peer_addr() {
            Ok(_) => {
                self.connecting = false;
                Some(Ok(()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Moves what can be moved both ways.
    pub fn pump(&mut self, pool: &mut PipePool) -> Outcome {
        if self.connecting {
            return Outcome::Idle;
        }
        let mut more = false;
        for d in [CLIENT, BACKEND] {
            match self.pump_dir(d, pool) {
                Ok(m) => more |= m,
                Err(side) => return Outcome::Failed(side),
            }
        }
        if self.dirs[0].shut && self.dirs[1].shut {
            Outcome::Done
        } else if more {
            Outcome::More
        } else {
            Outcome::Idle
        }
    }

    /// Pumps direction `s -> 1-s`; `Ok(true)` when the turn ran out with work
    /// left, `Err(side)` when a side failed.
    fn pump_dir(&mut self, s: usize, pool: &mut PipePool) -> Result<bool, usize> {
        let t = 1 - s;
        let (src, dst) = (self.socks[s].as_raw_fd(), self.socks[t].as_raw_fd());
        let dir = &mut self.dirs[s];
        let mut moved = 0usize;
        let mut more = false;
        loop {
            let mut progress = false;
            if dir.pending() > 0 && self.wr[t] {
                match dir.drain(dst) {
                    Ok(n) => {
                        progress = n > 0;
                        moved += n;
                    }
                    Err(e) if would_block(&e) => self.wr[t] = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(_) => return Err(t),
                }
            }
            if !dir.eof && self.rd[s] && dir.has_room() {
                match dir.fill(src, pool) {
                    Ok(0) => {
                        dir.eof = true;
                        progress = true;
                    }
                    Ok(n) => {
                        progress = true;
                        moved += n;
                    }
                    // A pipe can be full (in pages) before it is full in
                    // bytes: EAGAIN then proves nothing while it holds data.
                    Err(e) if would_block(&e) => {
                        if dir.copy || dir.pending() == 0 {
                            self.rd[s] = false;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !dir.copy && dir.pending() == 0 => {
                        // This socket cannot splice: copy instead.
                        dir.copy = true;
                        if let Some(p) = dir.pipe.take() {
                            pool.put(p);
                        }
                        progress = true;
                    }
                    Err(_) => return Err(s),
                }
            }
            if !progress {
                break;
            }
            if moved >= TURN_BUDGET {
                more = true;
                break;
            }
        }
        if dir.eof && dir.pending() == 0 && !dir.shut {
            // The peer may be gone already; its error shows on the next read.
            let _ = self.socks[t].shutdown(Shutdown::Write);
            dir.shut = true;
        }
        if dir.pending() == 0 {
            if let Some(p) = dir.pipe.take() {
                pool.put(p);
            }
        }
        Ok(more)
    }

    /// Makes closing side `side` send a reset.
    pub fn reset_on_close(&self, side: usize) {
        let _ = sock::set_linger_zero(self.socks[side].as_raw_fd());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Interest, Poll, Token};
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    /// A connected loopback pair: (our end as mio, the peer's end as std).
    fn pair() -> (TcpStream, std::net::TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (ours, _) = l.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (TcpStream::from_std(ours), peer)
    }

    /// Drives `conn` until `done` holds (or fails after 10 s).
    fn drive(poll: &mut Poll, conn: &mut Conn, pool: &mut PipePool, mut done: impl FnMut(&Outcome) -> bool) -> Outcome {
        let mut events = Events::with_capacity(16);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = conn.pump(pool);
            if done(&out) {
                return out;
            }
            assert!(Instant::now() < deadline, "no progress: {out:?}");
            poll.poll(&mut events, Some(Duration::from_millis(10))).unwrap();
            for ev in events.iter() {
                if let Some(o) = conn.ready(ev.token().0, ev) {
                    return o;
                }
            }
        }
    }

    fn setup(copy: bool) -> (Poll, Conn, std::net::TcpStream, std::net::TcpStream) {
        let (c, client) = pair();
        let (b, backend) = pair();
        let poll = Poll::new().unwrap();
        let mut conn = Conn::new(c, b, false, 0);
        for (i, s) in conn.socks.iter_mut().enumerate() {
            poll.registry().register(s, Token(i), Interest::READABLE | Interest::WRITABLE).unwrap();
        }
        if copy {
            conn.dirs[0].copy = true;
            conn.dirs[1].copy = true;
        }
        (poll, conn, client, backend)
    }

    fn half_close_round_trip(copy: bool) {
        let (mut poll, mut conn, mut client, mut backend) = setup(copy);
        let mut pool = PipePool::default();
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let d2 = data.clone();
        let writer = std::thread::spawn(move || {
            client.write_all(&d2).unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            client
        });
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            backend.read_to_end(&mut got).unwrap();
            // The reply after EOF still goes through.
            backend.write_all(b"reply after eof").unwrap();
            backend.shutdown(Shutdown::Write).unwrap();
            got
        });
        let out = drive(&mut poll, &mut conn, &mut pool, |o| *o == Outcome::Done);
        assert_eq!(out, Outcome::Done);
        assert!(reader.join().unwrap() == data, "data changed on the way");
        let mut client = writer.join().unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "reply after eof");
        assert_eq!(conn.dirs[0].copy, copy);
        assert!(conn.dirs[0].pipe.is_none() && conn.dirs[1].pipe.is_none(), "pipes went back to the pool");
        if !copy {
            assert!(!pool.is_empty());
        }
    }

    #[test]
    fn splice_forwards_and_propagates_half_close() {
        half_close_round_trip(false);
    }

    #[test]
    fn copy_fallback_forwards_and_propagates_half_close() {
        half_close_round_trip(true);
    }

    #[test]
    fn a_reset_side_is_reported() {
        let (mut poll, mut conn, client, _backend) = setup(false);
        let mut pool = PipePool::default();
        sock::set_linger_zero(client.as_raw_fd()).unwrap();
        drop(client);
        let out = drive(&mut poll, &mut conn, &mut pool, |o| matches!(o, Outcome::Failed(_) | Outcome::Done));
        assert_eq!(out, Outcome::Failed(CLIENT));
    }
}
