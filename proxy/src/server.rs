//! The event loop: one mio `Poll` over every listener, connection and flow.
//!
//! Everything lives in one slab; an event token is `slot * 2 + side`
//! (side 0: listener, client socket or flow socket; side 1: backend socket of
//! a TCP connection). Work is done in bounded turns: a socket that still has
//! work when its turn ends goes on the `again` list, served after the others,
//! so busy or numerous clients cannot starve anyone.

use crate::args::Config;
use crate::listen::Listener;
use crate::netns::Sockets;
use crate::signals::StopSignals;
use crate::slab::Slab;
use crate::sock::{self, out_of_fds, would_block};
use crate::splice::PipePool;
use crate::tcp::{self, Conn, Outcome, BACKEND, CLIENT};
use crate::udp::{self, Flow, Local, UdpListen};
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const SIGNALS: Token = Token(usize::MAX);
/// Connections accepted per listener per turn.
const ACCEPT_TURN: usize = 64;
/// Datagrams forwarded per socket per turn.
const DATAGRAM_TURN: usize = 256;
/// How long accepting pauses when descriptors run out and none is freed.
const ACCEPT_PAUSE: Duration = Duration::from_millis(250);

fn token(slot: usize, side: usize) -> Token {
    Token(slot * 2 + side)
}

struct TcpListen {
    sock: TcpListener,
    backend: SocketAddr,
    /// Open connections it accepted.
    active: usize,
    /// Deregistered because it reached `--max-conns`.
    capped: bool,
    /// Has TCP_NODELAY, which accepted sockets inherit.
    nodelay: bool,
}

/// What became of a new client.
enum Dial {
    Open,
    /// Closed: the backend is unreachable or the client could not be watched.
    Dropped,
    /// No descriptor for the backend socket right now.
    OutOfFds(TcpStream),
}

enum Entry {
    TcpListen(TcpListen),
    UdpListen(UdpListen),
    Conn(Box<Conn>),
    Flow(Flow),
}

pub struct Server {
    poll: Poll,
    entries: Slab<Entry>,
    sockets: Sockets,
    pipes: PipePool,
    signals: StopSignals,
    /// Tokens whose turn ended with work left.
    again: Vec<usize>,
    udp_buf: Vec<u8>,
    udp_timeout: Duration,
    udp_max_flows: usize,
    max_conns: usize,
    tcp_listeners: Vec<usize>,
    /// Accepting is paused (descriptors ran out) until then, or until a
    /// connection closes.
    accept_paused: Option<Instant>,
    /// Accepted clients waiting for a descriptor for their backend socket.
    parked: VecDeque<(usize, TcpStream)>,
    flows: usize,
    next_sweep: Option<Instant>,
}

impl Server {
    pub fn new(
        cfg: &Config,
        listeners: Vec<(Listener, SocketAddr)>,
        sockets: Sockets,
        signals: StopSignals,
    ) -> io::Result<Server> {
        let poll = Poll::new()?;
        poll.registry().register(&mut SourceFd(&signals.raw_fd()), SIGNALS, Interest::READABLE)?;
        let mut s = Server {
            poll,
            entries: Slab::default(),
            sockets,
            pipes: PipePool::default(),
            signals,
            again: Vec::new(),
            udp_buf: Vec::new(),
            udp_timeout: cfg.udp_timeout,
            udp_max_flows: cfg.udp_max_flows,
            max_conns: cfg.max_conns,
            tcp_listeners: Vec::new(),
            accept_paused: None,
            parked: VecDeque::new(),
            flows: 0,
            next_sweep: None,
        };
        for (l, backend) in listeners {
            let slot = s.entries.next_index();
            match l {
                Listener::Tcp(mut sock) => {
                    s.poll.registry().register(&mut sock, token(slot, 0), Interest::READABLE)?;
                    // Accepted sockets inherit it, saving a call per client.
                    let nodelay = sock::setsockopt(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1 as libc::c_int)
                        .is_ok();
                    s.entries.insert(Entry::TcpListen(TcpListen { sock, backend, active: 0, capped: false, nodelay }));
                    s.tcp_listeners.push(slot);
                }
                Listener::Udp(mut sock, pktinfo) => {
                    s.poll.registry().register(&mut sock, token(slot, 0), Interest::READABLE)?;
                    s.entries.insert(Entry::UdpListen(UdpListen { sock, backend, pktinfo, flows: HashMap::new() }));
                    if s.udp_buf.is_empty() {
                        s.udp_buf = vec![0; udp::DATAGRAM_MAX];
                    }
                }
            }
        }
        Ok(s)
    }

    /// Serves until a stop signal arrives.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for ev in events.iter() {
                if ev.token() == SIGNALS {
                    if self.signals.take().is_some() {
                        return Ok(());
                    }
                    continue;
                }
                self.dispatch(ev.token().0, Some(ev));
            }
            let again = std::mem::take(&mut self.again);
            for t in again {
                self.dispatch(t, None);
            }
            self.timers();
        }
    }

    fn timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = match (self.accept_paused, self.next_sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }?;
        // Round up so the deadline has passed when poll returns.
        Some(next.saturating_duration_since(Instant::now()) + Duration::from_millis(1))
    }

    fn timers(&mut self) {
        let now = Instant::now();
        if self.accept_paused.is_some_and(|t| t <= now) {
            self.resume_accepting();
        }
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.sweep_flows(now);
        }
    }

    fn dispatch(&mut self, tok: usize, ev: Option<&mio::event::Event>) {
        let (slot, side) = (tok / 2, tok % 2);
        match self.entries.get_mut(slot) {
            None => {}
            Some(Entry::TcpListen(_)) => self.accept(slot),
            Some(Entry::UdpListen(_)) => self.datagrams_from_clients(slot),
            Some(Entry::Flow(_)) => self.datagrams_from_backend(slot),
            Some(Entry::Conn(c)) => {
                if let Some(ev) = ev {
                    if let Some(out) = c.ready(side, ev) {
                        return self.settle(slot, out);
                    }
                }
                if c.connecting {
                    let (BACKEND, Some(ev)) = (side, ev) else { return };
                    match c.connect_event(ev) {
                        None => return,
                        Some(Ok(())) => {}
                        // The client is closed with nothing forwarded.
                        Some(Err(_)) => return self.close_conn(slot),
                    }
                }
                let out = c.pump(&mut self.pipes);
                self.settle(slot, out);
            }
        }
    }

    fn settle(&mut self, slot: usize, out: Outcome) {
        match out {
            Outcome::Idle => {}
            Outcome::More => self.again.push(token(slot, 0).0),
            Outcome::Done => self.close_conn(slot),
            Outcome::Failed(side) => {
                if let Some(Entry::Conn(c)) = self.entries.get(slot) {
                    c.reset_on_close(1 - side);
                }
                self.close_conn(slot);
            }
        }
    }

    fn close_conn(&mut self, slot: usize) {
        let Some(Entry::Conn(c)) = self.entries.get(slot) else { return };
        let listener = c.listener;
        // Dropping closes both sockets, which also leaves the epoll set.
        self.entries.remove(slot);
        if let Some(Entry::TcpListen(l)) = self.entries.get_mut(listener) {
            l.active = l.active.saturating_sub(1);
            if l.capped && (self.max_conns == 0 || l.active < self.max_conns) {
                l.capped = false;
                if self.accept_paused.is_none()
                    && self.poll.registry().register(&mut l.sock, token(listener, 0), Interest::READABLE).is_ok()
                {
                    self.again.push(token(listener, 0).0);
                }
            }
        }
        if self.accept_paused.is_some() {
            self.resume_accepting();
        }
    }

    /// Stops accepting until a connection closes or a short pause passes:
    /// a listener left registered would wake the loop for nothing.
    fn pause_accepting(&mut self) {
        self.pipes.clear();
        if self.accept_paused.is_some() {
            return;
        }
        self.accept_paused = Some(Instant::now() + ACCEPT_PAUSE);
        for &slot in &self.tcp_listeners {
            if let Some(Entry::TcpListen(l)) = self.entries.get_mut(slot) {
                if !l.capped {
                    let _ = self.poll.registry().deregister(&mut l.sock);
                }
            }
        }
    }

    fn resume_accepting(&mut self) {
        self.accept_paused = None;
        // Clients accepted when the backend socket could not be had go first.
        while let Some((listener, client)) = self.parked.pop_front() {
            let backend = match self.entries.get(listener) {
                Some(Entry::TcpListen(l)) => l.backend,
                _ => continue,
            };
            match self.open_conn(listener, client, backend) {
                Dial::Open => {}
                Dial::Dropped => self.release_slot_of(listener),
                Dial::OutOfFds(client) => {
                    self.parked.push_front((listener, client));
                    return self.pause_accepting();
                }
            }
        }
        for &slot in &self.tcp_listeners {
            if let Some(Entry::TcpListen(l)) = self.entries.get_mut(slot) {
                if !l.capped && self.poll.registry().register(&mut l.sock, token(slot, 0), Interest::READABLE).is_ok() {
                    self.again.push(token(slot, 0).0);
                }
            }
        }
    }

    /// One connection of `listener` is gone before it was opened.
    fn release_slot_of(&mut self, listener: usize) {
        if let Some(Entry::TcpListen(l)) = self.entries.get_mut(listener) {
            l.active = l.active.saturating_sub(1);
        }
    }

    fn accept(&mut self, slot: usize) {
        if self.accept_paused.is_some() {
            return;
        }
        for _ in 0..ACCEPT_TURN {
            let Some(Entry::TcpListen(l)) = self.entries.get_mut(slot) else { return };
            if l.capped {
                return;
            }
            if self.max_conns > 0 && l.active >= self.max_conns {
                l.capped = true;
                let _ = self.poll.registry().deregister(&mut l.sock);
                return;
            }
            match l.sock.accept() {
                Ok((client, _)) => {
                    l.active += 1;
                    let backend = l.backend;
                    if !l.nodelay {
                        let _ = client.set_nodelay(true);
                    }
                    match self.open_conn(slot, client, backend) {
                        Dial::Open => {}
                        Dial::Dropped => self.release_slot_of(slot),
                        // Kept until descriptors free up, rather than dropped.
                        Dial::OutOfFds(client) => {
                            self.parked.push_back((slot, client));
                            return self.pause_accepting();
                        }
                    }
                }
                Err(e) if would_block(&e) => return,
                Err(e) if out_of_fds(&e) => return self.pause_accepting(),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO)) => continue,
                // Unexpected: leave the rest for the next event.
                Err(_) => return,
            }
        }
        self.again.push(token(slot, 0).0);
    }

    /// Dials the backend for a new client.
    fn open_conn(&mut self, listener: usize, client: TcpStream, backend: SocketAddr) -> Dial {
        let fd = match self.sockets.socket(sock::domain(&backend), libc::SOCK_STREAM) {
            Ok(fd) => fd,
            Err(e) if out_of_fds(&e) => return Dial::OutOfFds(client),
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
        let reg = self.poll.registry();
        if reg.register(&mut client, token(slot, CLIENT), tcp::INTEREST).is_err()
            || reg.register(&mut backend, token(slot, BACKEND), tcp::INTEREST).is_err()
        {
            return Dial::Dropped;
        }
        self.entries.insert(Entry::Conn(Box::new(Conn::new(client, backend, connecting, listener))));
        if !connecting {
            self.again.push(token(slot, CLIENT).0);
        }
        Dial::Open
    }

    /// Datagrams from clients on listener `slot`.
    fn datagrams_from_clients(&mut self, slot: usize) {
        for _ in 0..DATAGRAM_TURN {
            let Some(Entry::UdpListen(l)) = self.entries.get(slot) else { return };
            let fd = l.sock.as_raw_fd();
            let (n, from, local) = match udp::recv_from(fd, &mut self.udp_buf) {
                Ok(r) => r,
                Err(e) if would_block(&e) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let now = Instant::now();
            let existing = l.flows.get(&from).copied();
            let flow = match existing {
                Some(f) => f,
                None => match self.new_flow(slot, from, now) {
                    Some(f) => f,
                    None => continue,
                },
            };
            let Some(Entry::Flow(f)) = self.entries.get_mut(flow) else { continue };
            f.last = now;
            if local.is_some() {
                f.local = local;
            }
            let data = &self.udp_buf[..n];
            // A datagram the backend cannot take now is dropped, as UDP would.
            if let Err(e) = f.sock.send(data) {
                // An earlier ICMP error is reported once, on this send: retry.
                if e.raw_os_error() == Some(libc::ECONNREFUSED) {
                    let _ = f.sock.send(data);
                }
            }
        }
        self.again.push(token(slot, 0).0);
    }

    /// Opens the flow of client `from` on listener `lslot`.
    fn new_flow(&mut self, lslot: usize, from: SocketAddr, now: Instant) -> Option<usize> {
        let Some(Entry::UdpListen(l)) = self.entries.get(lslot) else { return None };
        let backend = l.backend;
        if l.flows.len() >= self.udp_max_flows {
            let oldest = l
                .flows
                .values()
                .filter_map(|&f| match self.entries.get(f) {
                    Some(Entry::Flow(fl)) => Some((fl.last, f)),
                    _ => None,
                })
                .min();
            if let Some((_, f)) = oldest {
                self.remove_flow(f);
            }
        }
        let fd = match self.sockets.socket(sock::domain(&backend), libc::SOCK_DGRAM) {
            Ok(fd) => fd,
            Err(e) => {
                if out_of_fds(&e) {
                    self.pipes.clear();
                }
                return None;
            }
        };
        sock::connect(&fd, &backend).ok()?;
        let mut sock = UdpSocket::from_std(std::net::UdpSocket::from(fd));
        let slot = self.entries.next_index();
        self.poll.registry().register(&mut sock, token(slot, 0), Interest::READABLE).ok()?;
        self.entries.insert(Entry::Flow(Flow { sock, client: from, local: None, listener: lslot, last: now }));
        if let Some(Entry::UdpListen(l)) = self.entries.get_mut(lslot) {
            l.flows.insert(from, slot);
        }
        self.flows += 1;
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.sweep_interval());
        }
        Some(slot)
    }

    fn sweep_interval(&self) -> Duration {
        (self.udp_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(5))
    }

    fn remove_flow(&mut self, slot: usize) {
        let Some(Entry::Flow(f)) = self.entries.get(slot) else { return };
        let (client, lslot) = (f.client, f.listener);
        self.entries.remove(slot);
        self.flows -= 1;
        if let Some(Entry::UdpListen(l)) = self.entries.get_mut(lslot) {
            if l.flows.get(&client) == Some(&slot) {
                l.flows.remove(&client);
            }
        }
    }

    fn sweep_flows(&mut self, now: Instant) {
        let timeout = self.udp_timeout;
        let expired: Vec<usize> = self
            .entries
            .iter()
            .filter_map(|(i, e)| match e {
                Entry::Flow(f) if now.saturating_duration_since(f.last) >= timeout => Some(i),
                _ => None,
            })
            .collect();
        for slot in expired {
            self.remove_flow(slot);
        }
        self.next_sweep = (self.flows > 0).then(|| now + self.sweep_interval());
    }

    /// Replies from the backend on flow `slot`, sent back from the address
    /// the client targeted.
    fn datagrams_from_backend(&mut self, slot: usize) {
        let now = Instant::now();
        for _ in 0..DATAGRAM_TURN {
            let Some(Entry::Flow(f)) = self.entries.get_mut(slot) else { return };
            let n = match f.sock.recv(&mut self.udp_buf) {
                Ok(n) => n,
                Err(e) if would_block(&e) => return,
                // ICMP errors from the backend (port unreachable...): go on.
                Err(_) => continue,
            };
            f.last = now;
            let (client, local, lslot): (SocketAddr, Option<Local>, usize) = (f.client, f.local, f.listener);
            let Some(Entry::UdpListen(l)) = self.entries.get(lslot) else { return };
            let local = if l.pktinfo { local } else { None };
            let _ = udp::send_to(l.sock.as_raw_fd(), &self.udp_buf[..n], &client, local);
        }
        self.again.push(token(slot, 0).0);
    }
}
