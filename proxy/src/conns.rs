//! The TCP connections one thread pumps. The main thread and each worker
//! thread have their own: slab, pipe pool and list of unfinished turns, so
//! pumping takes no lock.

use crate::slab::Slab;
use crate::sock::{self, out_of_fds};
use crate::splice::PipePool;
use crate::tcp::{self, Conn, Outcome, BACKEND, CLIENT};
use mio::net::TcpStream;
use mio::{Registry, Token};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Connection tokens have this bit set: `CONN | slot * 2 + side`. The
/// thread's other tokens (listeners, flows, waker, signals) are told apart
/// before it is tested.
pub const CONN: usize = 1 << (usize::BITS - 2);

fn token(slot: usize, side: usize) -> usize {
    CONN | (slot * 2 + side)
}

/// What a TCP listener shares with the connections it accepted, in
/// whichever thread they are pumped.
pub struct Origin {
    pub backend: SocketAddr,
    /// Connections accepted and not closed yet (`--max-conns`).
    pub active: AtomicUsize,
}

impl Origin {
    /// One of its connections is gone.
    pub fn release(&self) {
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What became of a new client.
pub enum Dial {
    Open,
    /// Closed (and released from its origin): the backend is unreachable
    /// or the client could not be watched.
    Dropped,
    /// No descriptor for the backend socket right now.
    OutOfFds(TcpStream),
}

#[derive(Default)]
pub struct Conns {
    entries: Slab<(Box<Conn>, Arc<Origin>)>,
    pub pipes: PipePool,
    /// Connection tokens whose turn ended with work left.
    again: Vec<usize>,
}

impl Conns {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Some turn ended with work left: poll without waiting.
    pub fn busy(&self) -> bool {
        !self.again.is_empty()
    }

    /// Dials `origin`'s backend for `client` and starts pumping between them.
    pub fn open(&mut self, registry: &Registry, origin: &Arc<Origin>, client: TcpStream) -> Dial {
        let dial = self.dial(registry, origin, client);
        if let Dial::Dropped = dial {
            origin.release();
        }
        dial
    }

    fn dial(&mut self, registry: &Registry, origin: &Arc<Origin>, client: TcpStream) -> Dial {
        let backend = origin.backend;
        let fd = match sock::socket(sock::domain(&backend), libc::SOCK_STREAM) {
            Ok(fd) => fd,
            Err(e) if out_of_fds(&e) => {
                self.pipes.clear();
                return Dial::OutOfFds(client);
            }
            Err(_) => return Dial::Dropped,
        };
        let _ = sock::setsockopt(fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1 as libc::c_int);
        let connecting = match sock::connect(&fd, &backend) {
            Ok(done) => !done,
            // The client is closed with nothing forwarded.
            Err(_) => return Dial::Dropped,
        };
        let mut client = client;
        let mut backend = TcpStream::from_std(std::net::TcpStream::from(fd));
        let slot = self.entries.next_index();
        if registry.register(&mut client, Token(token(slot, CLIENT)), tcp::INTEREST).is_err()
            || registry.register(&mut backend, Token(token(slot, BACKEND)), tcp::INTEREST).is_err()
        {
            return Dial::Dropped;
        }
        self.entries.insert((Box::new(Conn::new(client, backend, connecting)), origin.clone()));
        if !connecting {
            self.again.push(token(slot, CLIENT));
        }
        Dial::Open
    }

    /// Serves connection token `tok` (`ev`: its event; None: another turn).
    /// Returns how many connections closed (0 or 1).
    pub fn dispatch(&mut self, tok: usize, ev: Option<&mio::event::Event>) -> usize {
        let t = tok & !CONN;
        let (slot, side) = (t / 2, t % 2);
        let Some((c, _)) = self.entries.get_mut(slot) else { return 0 };
        if let Some(ev) = ev {
            if let Some(out) = c.ready(side, ev) {
                return self.settle(slot, out);
            }
        }
        if c.connecting {
            let (BACKEND, Some(ev)) = (side, ev) else { return 0 };
            match c.connect_event(ev) {
                None => return 0,
                Some(Ok(())) => {}
                // The client is closed with nothing forwarded.
                Some(Err(_)) => return self.close(slot),
            }
        }
        let out = c.pump(&mut self.pipes);
        self.settle(slot, out)
    }

    /// Gives every connection whose last turn ran out another one; returns
    /// how many closed.
    pub fn turns(&mut self) -> usize {
        let again = std::mem::take(&mut self.again);
        again.into_iter().map(|t| self.dispatch(t, None)).sum()
    }

    fn settle(&mut self, slot: usize, out: Outcome) -> usize {
        match out {
            Outcome::Idle => 0,
            Outcome::More => {
                self.again.push(token(slot, CLIENT));
                0
            }
            Outcome::Done => self.close(slot),
            Outcome::Failed(side) => {
                if let Some((c, _)) = self.entries.get(slot) {
                    c.reset_on_close(1 - side);
                }
                self.close(slot)
            }
        }
    }

    fn close(&mut self, slot: usize) -> usize {
        // Dropping closes both sockets, which also leaves the epoll set.
        match self.entries.remove(slot) {
            Some((_, origin)) => {
                origin.release();
                1
            }
            None => 0,
        }
    }
}
