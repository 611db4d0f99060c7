//! One proxied TCP connection: the client socket (side 0) and the backend
//! socket (side 1), and the bytes moving each way.
//!
//! Sockets are registered edge-triggered for both readiness kinds, once,
//! right after they are made, so the registration itself reports whatever
//! readiness they already have; the connection remembers which side is
//! readable/writable and clears a flag only when the kernel says so (EAGAIN,
//! or a short read or write, after which the next change raises a new edge),
//! so no edge is ever lost.
//!
//! Each direction starts by copying through a pooled user-space buffer: for
//! small request/response traffic that is one `recv` and one `send` per hop.
//! Once a read fills the whole buffer the direction is carrying bulk data and
//! switches to splice through a pipe (zero copy, fewer, larger calls); it
//! goes back to copying when the bulk is over. A direction that cannot
//! splice (no pipe, or EINVAL) copies for good. EOF one way becomes
//! `shutdown(SHUT_WR)` on the other side while the other direction keeps
//! flowing; an error on one side resets the other.

use crate::sock::{self, would_block};
use crate::splice::{Pipe, PipePool};
use mio::net::TcpStream;
use mio::Interest;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};

pub const CLIENT: usize = 0;
pub const BACKEND: usize = 1;

/// What both sockets are registered for. Priority (TCP urgent data) is
/// asked for so that a read cut short at the urgent mark is known for what
/// it is.
pub const INTEREST: Interest = Interest::READABLE.add(Interest::WRITABLE).add(Interest::PRIORITY);

/// Bytes one direction may move per turn before others get theirs.
const TURN_BUDGET: usize = 4 << 20;
/// Splice reads below this size count as small...
const SMALL_READ: usize = 4096;
/// ...and this many in a row, with the pipe empty, go back to copying.
const SMALL_READS_TO_COPY: u8 = 16;

/// What a connection needs after being pumped.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Waiting for readiness.
    Idle,
    /// Its turn ran out with work left: pump again soon.
    More,
    /// Both directions finished cleanly: close it (which sends the last
    /// FIN).
    Done,
    /// This side failed (reset, broken pipe...): reset the other and close.
    Failed(usize),
}

/// A pooled copy buffer and the bytes it holds (`start..end`).
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
    /// Moving bytes with splice through `pipe` (else copying through `buf`).
    splicing: bool,
    /// A read filled the copy buffer: splice once it is empty.
    bulk: bool,
    /// Small splice reads in a row.
    small: u8,
    /// Splice is unavailable for this direction: copy through `buf` for good.
    copy: bool,
    /// The source sent EOF.
    eof: bool,
    /// EOF was passed on with `shutdown(SHUT_WR)`.
    shut: bool,
}

/// Result of one `fill`.
enum Filled {
    /// This many bytes (0: EOF).
    Bytes(usize),
    /// A short copy read: the socket had no more for now.
    Drained(usize),
}

impl Dir {
    fn pending(&self) -> usize {
        if self.splicing {
            self.in_pipe
        } else {
            self.buf.as_ref().map_or(0, |b| b.end - b.start)
        }
    }

    fn has_room(&self) -> bool {
        if self.splicing {
            self.pipe.as_ref().is_none_or(|p| self.in_pipe < p.cap)
        } else {
            self.buf.as_ref().is_none_or(|b| b.end < b.data.len())
        }
    }

    /// Gives back an empty pipe or buffer; switches modes when due.
    fn settle(&mut self, pool: &mut PipePool) {
        if self.pending() != 0 {
            return;
        }
        if let Some(p) = self.pipe.take() {
            pool.put(p);
        }
        if let Some(b) = self.buf.take() {
            pool.put_buf(b.data);
        }
        if self.splicing && (self.copy || self.small >= SMALL_READS_TO_COPY) {
            self.splicing = false;
            self.small = 0;
        } else if !self.splicing && self.bulk && !self.copy {
            self.splicing = true;
            self.bulk = false;
            self.small = 0;
        }
    }

    fn fill(&mut self, src: RawFd, pool: &mut PipePool) -> io::Result<Filled> {
        if self.splicing && self.pipe.is_none() {
            match pool.get() {
                Ok(p) => self.pipe = Some(p),
                Err(_) => {
                    self.splicing = false;
                    self.copy = true;
                }
            }
        }
        if let (true, Some(p)) = (self.splicing, &self.pipe) {
            let n = p.fill(src, p.cap - self.in_pipe)?;
            self.in_pipe += n;
            if n < SMALL_READ {
                self.small = self.small.saturating_add(1);
            } else {
                self.small = 0;
            }
            return Ok(Filled::Bytes(n));
        }
        let b = self.buf.get_or_insert_with(|| CopyBuf { data: pool.get_buf(), start: 0, end: 0 });
        let room = &mut b.data[b.end..];
        let want = room.len();
        // SAFETY: room is valid for writes of its length.
        let n = unsafe { libc::recv(src, room.as_mut_ptr() as *mut libc::c_void, want, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        b.end += n;
        if n == 0 {
            Ok(Filled::Bytes(0))
        } else if n < want {
            Ok(Filled::Drained(n))
        } else {
            if b.start == 0 && b.end == b.data.len() {
                self.bulk = true;
            }
            Ok(Filled::Bytes(n))
        }
    }

    /// Sends what is pending to `dst`: `(bytes, all of it went)`.
    fn drain(&mut self, dst: RawFd) -> io::Result<(usize, bool)> {
        if self.splicing {
            let Some(p) = &self.pipe else { return Ok((0, true)) };
            let n = p.drain(dst, self.in_pipe)?;
            self.in_pipe -= n;
            // A short splice write may be the pipe's page layout, not a full
            // socket: only EAGAIN tells.
            return Ok((n, true));
        }
        let Some(b) = self.buf.as_mut() else { return Ok((0, true)) };
        let data = &b.data[b.start..b.end];
        // With the source at EOF, the shutdown follows this send at once:
        // MSG_MORE holds back the last partial segment so that the FIN rides
        // on it instead of going alone (and the peer's ACK of the data rides
        // on its own FIN): two packets less per close.
        let flags = if self.eof { libc::MSG_NOSIGNAL | libc::MSG_MORE } else { libc::MSG_NOSIGNAL };
        // SAFETY: data is valid for reads of its length.
        let n = unsafe { libc::send(dst, data.as_ptr() as *const libc::c_void, data.len(), flags) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        let all = n == data.len();
        b.start += n;
        if b.start == b.end {
            b.start = 0;
            b.end = 0;
        }
        Ok((n, all))
    }
}

/// A proxied connection.
pub struct Conn {
    pub socks: [TcpStream; 2],
    rd: [bool; 2],
    wr: [bool; 2],
    /// The side reported its peer's EOF (or a hang-up): a short read has
    /// taken everything before it.
    hup: [bool; 2],
    /// The side has had TCP urgent data, where reads stop short: it is read
    /// until EAGAIN from then on.
    urg: [bool; 2],
    dirs: [Dir; 2],
    /// The backend connect is still in progress.
    pub connecting: bool,
}

impl Conn {
    /// `client` and `backend` must be registered (or about to be, before the
    /// next poll), so their current readiness shows as events.
    pub fn new(client: TcpStream, backend: TcpStream, connecting: bool) -> Conn {
        Conn {
            socks: [client, backend],
            rd: [false; 2],
            wr: [true; 2],
            hup: [false; 2],
            urg: [false; 2],
            dirs: Default::default(),
            connecting,
        }
    }

    /// Records readiness reported for `side`; `Some(Failed)` when the
    /// socket carries an error (a reset), which reading could hide.
    pub fn ready(&mut self, side: usize, ev: &mio::event::Event) -> Option<Outcome> {
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            self.rd[side] = true;
        }
        if ev.is_read_closed() {
            self.hup[side] = true;
        }
        if ev.is_priority() {
            self.urg[side] = true;
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

    /// Whether the backend connect finished, judged from an event on the
    /// backend: writable without error or hang-up means connected (saving
    /// the two calls of [`Conn::connect_result`]); otherwise asks the socket.
    pub fn connect_event(&mut self, ev: &mio::event::Event) -> Option<io::Result<()>> {
        if ev.is_writable() && !ev.is_error() && !ev.is_write_closed() && !ev.is_read_closed() {
            self.connecting = false;
            return Some(Ok(()));
        }
        self.connect_result()
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
        let [d0, d1] = &mut self.dirs;
        let (dir, back) = if s == CLIENT { (d0, d1) } else { (d1, d0) };
        if self.urg[s] && !dir.copy {
            // Splice stops at the urgent mark for good (EAGAIN): copy.
            dir.copy = true;
            dir.settle(pool);
        }
        let mut moved = 0usize;
        let mut more = false;
        loop {
            let mut progress = false;
            if dir.pending() > 0 && self.wr[t] {
                match dir.drain(dst) {
                    Ok((n, all)) => {
                        progress = n > 0;
                        moved += n;
                        // A short send: the socket buffer is full, and
                        // writable again raises a new edge.
                        if !all {
                            self.wr[t] = false;
                        }
                    }
                    Err(e) if would_block(&e) => self.wr[t] = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(_) => return Err(t),
                }
            }
            if !dir.eof && self.rd[s] && dir.has_room() {
                match dir.fill(src, pool) {
                    Ok(Filled::Bytes(0)) => {
                        dir.eof = true;
                        progress = true;
                    }
                    Ok(Filled::Bytes(n)) => {
                        progress = true;
                        moved += n;
                    }
                    Ok(Filled::Drained(n)) => {
                        progress = true;
                        moved += n;
                        if self.urg[s] {
                            // Maybe stopped at the urgent mark: read on.
                        } else if self.hup[s] {
                            // The peer's FIN was in when the hang-up was
                            // reported, so everything before it was queued
                            // too, and a short read took all of that: the
                            // next read could only return EOF.
                            dir.eof = true;
                        } else {
                            // Nothing more queued for now; new data (or
                            // EOF) raises a new edge.
                            self.rd[s] = false;
                        }
                    }
                    // A pipe can be full (in pages) before it is full in
                    // bytes: EAGAIN then proves nothing while it holds data.
                    Err(e) if would_block(&e) => {
                        if !dir.splicing || dir.pending() == 0 {
                            self.rd[s] = false;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) && dir.splicing && dir.pending() == 0 => {
                        // This socket cannot splice: copy instead.
                        dir.splicing = false;
                        dir.copy = true;
                        if let Some(p) = dir.pipe.take() {
                            pool.put(p);
                        }
                        progress = true;
                    }
                    Err(_) => return Err(s),
                }
            }
            if dir.pending() == 0 {
                dir.settle(pool);
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
            // With the other way done too the connection is finished, and
            // closing it sends this FIN (nothing is left unread).
            if !back.shut {
                // The peer may be gone already; its error shows on the next read.
                let _ = self.socks[t].shutdown(Shutdown::Write);
            }
            dir.shut = true;
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
    use mio::{Events, Poll, Token};
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
        let mut conn = Conn::new(c, b, false);
        for (i, s) in conn.socks.iter_mut().enumerate() {
            poll.registry().register(s, Token(i), INTEREST).unwrap();
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
        assert_eq!(conn.dirs[0].copy, copy);
        assert!(conn.dirs[0].pipe.is_none() && conn.dirs[1].pipe.is_none(), "pipes went back to the pool");
        assert!(conn.dirs[0].buf.is_none() && conn.dirs[1].buf.is_none(), "buffers went back to the pool");
        if !copy {
            assert!(!pool.is_empty(), "bulk data went through splice");
        }
        // Done: closing sends the last FIN.
        drop(conn);
        let mut client = writer.join().unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "reply after eof");
    }

    #[test]
    fn splice_forwards_and_propagates_half_close() {
        half_close_round_trip(false);
    }

    #[test]
    fn copy_fallback_forwards_and_propagates_half_close() {
        half_close_round_trip(true);
    }

    /// A read stops short at TCP urgent data (and splice stops there for
    /// good); the rest, already queued, must still go through (the urgent
    /// byte itself is not inline).
    fn urgent_data(splicing: bool) {
        let (mut poll, mut conn, mut client, mut backend) = setup(false);
        conn.dirs[0].splicing = splicing;
        let mut pool = PipePool::default();
        client.write_all(b"hello").unwrap();
        // SAFETY: plain send of a one-byte buffer on our socket.
        let n = unsafe { libc::send(client.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
        assert_eq!(n, 1);
        client.write_all(b"world").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let got = std::thread::spawn(move || {
            let mut got = [0u8; 10];
            backend.read_exact(&mut got).unwrap();
            got
        });
        let out = drive(&mut poll, &mut conn, &mut pool, |_| got.is_finished());
        assert_eq!(out, Outcome::Idle);
        assert_eq!(&got.join().unwrap(), b"helloworld");
    }

    #[test]
    fn urgent_data_does_not_stall_copying() {
        urgent_data(false);
    }

    #[test]
    fn urgent_data_does_not_stall_splicing() {
        urgent_data(true);
    }

    /// Segments the socket of `peer` has received so far.
    fn segs_in(peer: &std::net::TcpStream) -> u32 {
        // SAFETY: all-zero is a valid tcp_info.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: info and len are valid for writes of the sizes given.
        let r = unsafe {
            libc::getsockopt(peer.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, &mut info as *mut _ as *mut libc::c_void, &mut len)
        };
        assert_eq!(r, 0, "TCP_INFO: {}", io::Error::last_os_error());
        info.tcpi_segs_in
    }

    #[test]
    fn the_fin_rides_on_the_last_reply_segment() {
        let (mut poll, mut conn, client, mut backend) = setup(false);
        let mut pool = PipePool::default();
        // A server that answers and closes: both are in before the proxy looks.
        backend.write_all(b"reply").unwrap();
        backend.shutdown(Shutdown::Write).unwrap();
        let before = segs_in(&client);
        let reader = std::thread::spawn(move || {
            let mut client = client;
            let mut got = Vec::new();
            client.read_to_end(&mut got).unwrap();
            (got, client)
        });
        drive(&mut poll, &mut conn, &mut pool, |_| reader.is_finished());
        let (got, client) = reader.join().unwrap();
        assert_eq!(got, b"reply");
        assert_eq!(segs_in(&client) - before, 1, "the reply and the FIN came in separate segments");
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
