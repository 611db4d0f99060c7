//! The main event loop: one mio `Poll` over every listener, UDP flow, the
//! stop signals, and the TCP connections this thread pumps itself (see
//! `team` for the others).
//!
//! Listeners and flows live in one slab; their event token is `slot * 2`.
//! Connections have their own tokens (`conns::CONN`). Work is done in
//! bounded turns: a socket that still has work when its turn ends goes on
//! the `again` list, served after the others, so busy or numerous clients
//! cannot starve anyone.

use crate::args::Config;
use crate::conns::{Conns, Dial, Origin, CONN};
use crate::listen::Listener;
use crate::signals::StopSignals;
use crate::slab::Slab;
use crate::sock::{self, out_of_fds, would_block};
use crate::team::{Team, WAKER};
use crate::udp::{self, Flow, Local, UdpListen};
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIGNALS: Token = Token(usize::MAX);
/// Connections accepted per listener per turn.
const ACCEPT_TURN: usize = 64;
/// Datagrams forwarded per socket per turn.
const DATAGRAM_TURN: usize = 256;
/// How long accepting pauses when descriptors run out and none is freed.
const ACCEPT_PAUSE: Duration = Duration::from_millis(250);

fn token(slot: usize) -> Token {
    Token(slot * 2)
}

struct TcpListen {
    sock: TcpListener,
    origin: Arc<Origin>,
    /// Deregistered because it reached `--max-conns`.
    capped: bool,
    /// Has TCP_NODELAY, which accepted sockets inherit.
    nodelay: bool,
}

enum Entry {
    TcpListen(TcpListen),
    UdpListen(UdpListen),
    Flow(Flow),
}

pub struct Server {
    poll: Poll,
    entries: Slab<Entry>,
    /// The TCP connections this thread pumps.
    conns: Conns,
    team: Team,
    signals: StopSignals,
    /// Listener and flow tokens whose turn ended with work left.
    again: Vec<usize>,
    udp_buf: Vec<u8>,
    udp_timeout: Duration,
    udp_max_flows: usize,
    max_conns: usize,
    tcp_listeners: Vec<usize>,
    /// Listeners deregistered at `--max-conns`.
    capped: usize,
    /// Accepting is paused (descriptors ran out) until then, or until a
    /// connection closes.
    accept_paused: Option<Instant>,
    /// Accepted clients waiting for a descriptor for their backend socket.
    parked: VecDeque<(Arc<Origin>, TcpStream)>,
    flows: usize,
    next_sweep: Option<Instant>,
}

impl Server {
    pub fn new(
        cfg: &Config,
        listeners: Vec<(Listener, SocketAddr)>,
        signals: StopSignals,
    ) -> io::Result<Server> {
        let poll = Poll::new()?;
        poll.registry().register(&mut SourceFd(&signals.raw_fd()), SIGNALS, Interest::READABLE)?;
        let team = Team::new(cfg.threads(), &poll, cfg.pin)?;
        let mut s = Server {
            poll,
            entries: Slab::default(),
            conns: Conns::default(),
            team,
            signals,
            again: Vec::new(),
            udp_buf: Vec::new(),
            udp_timeout: cfg.udp_timeout,
            udp_max_flows: cfg.udp_max_flows,
            max_conns: cfg.max_conns,
            tcp_listeners: Vec::new(),
            capped: 0,
            accept_paused: None,
            parked: VecDeque::new(),
            flows: 0,
            next_sweep: None,
        };
        for (l, backend) in listeners {
            let slot = s.entries.next_index();
            match l {
                Listener::Tcp(mut sock) => {
                    s.poll.registry().register(&mut sock, token(slot), Interest::READABLE)?;
                    // Accepted sockets inherit it, saving a call per client.
                    let nodelay = sock::setsockopt(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1 as libc::c_int)
                        .is_ok();
                    let origin = Arc::new(Origin { backend, active: AtomicUsize::new(0) });
                    s.entries.insert(Entry::TcpListen(TcpListen { sock, origin, capped: false, nodelay }));
                    s.tcp_listeners.push(slot);
                }
                Listener::Udp(mut sock, pktinfo) => {
                    s.poll.registry().register(&mut sock, token(slot), Interest::READABLE)?;
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
            let mut closed = 0;
            for ev in events.iter() {
                match ev.token() {
                    SIGNALS => {
                        if self.signals.take().is_some() {
                            return Ok(());
                        }
                    }
                    // A worker handed a client back, or closed a connection
                    // while a listener is capped or accepting paused.
                    WAKER => self.news_from_workers(),
                    Token(t) if t & CONN != 0 => closed += self.conns.dispatch(t, Some(ev)),
                    Token(t) => self.dispatch(t),
                }
            }
            let again = std::mem::take(&mut self.again);
            for t in again {
                self.dispatch(t);
            }
            closed += self.conns.turns();
            self.team.placement.update(self.conns.len());
            if closed > 0 {
                self.after_close();
            }
            self.timers();
        }
    }

    fn timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() || self.conns.busy() {
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

    fn dispatch(&mut self, tok: usize) {
        let slot = tok / 2;
        match self.entries.get_mut(slot) {
            None => {}
            Some(Entry::TcpListen(_)) => self.accept(slot),
            Some(Entry::UdpListen(_)) => self.datagrams_from_clients(slot),
            Some(Entry::Flow(_)) => self.datagrams_from_backend(slot),
        }
    }

    fn news_from_workers(&mut self) {
        self.after_close();
        let back = self.team.returned();
        if !back.is_empty() {
            self.parked.extend(back);
            self.pause_accepting();
        }
    }

    /// Connections closed (here or in a worker): capped listeners may
    /// accept again, and so may paused ones, descriptors being freed.
    fn after_close(&mut self) {
        if self.capped > 0 {
            for i in 0..self.tcp_listeners.len() {
                let slot = self.tcp_listeners[i];
                let Some(Entry::TcpListen(l)) = self.entries.get_mut(slot) else { continue };
                if l.capped && l.origin.active.load(Ordering::SeqCst) < self.max_conns {
                    l.capped = false;
                    self.capped -= 1;
                    if self.accept_paused.is_none()
                        && self.poll.registry().register(&mut l.sock, token(slot), Interest::READABLE).is_ok()
                    {
                        self.again.push(token(slot).0);
                    }
                }
            }
        }
        if self.accept_paused.is_some() {
            self.resume_accepting();
        }
        self.team.watch(self.capped > 0 || self.accept_paused.is_some());
    }

    /// Stops accepting until a connection closes or a short pause passes:
    /// a listener left registered would wake the loop for nothing.
    fn pause_accepting(&mut self) {
        self.conns.pipes.clear();
        if self.accept_paused.is_some() {
            return;
        }
        self.accept_paused = Some(Instant::now() + ACCEPT_PAUSE);
        self.team.watch(true);
        self.team.shed();
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
        while let Some((origin, client)) = self.parked.pop_front() {
            match self.conns.open(self.poll.registry(), &origin, client) {
                Dial::Open | Dial::Dropped => {}
                Dial::OutOfFds(client) => {
                    self.parked.push_front((origin, client));
                    return self.pause_accepting();
                }
            }
        }
        self.team.watch(self.capped > 0);
        for &slot in &self.tcp_listeners {
            if let Some(Entry::TcpListen(l)) = self.entries.get_mut(slot) {
                if !l.capped && self.poll.registry().register(&mut l.sock, token(slot), Interest::READABLE).is_ok() {
                    self.again.push(token(slot).0);
                }
            }
        }
    }

    /// Stops listener `slot` at `--max-conns`, unless a connection closed
    /// meanwhile (the workers only report closes once they see `watch`).
    fn cap(&mut self, slot: usize) {
        let Some(Entry::TcpListen(l)) = self.entries.get_mut(slot) else { return };
        l.capped = true;
        self.capped += 1;
        let _ = self.poll.registry().deregister(&mut l.sock);
        self.team.watch(true);
        if l.origin.active.load(Ordering::SeqCst) < self.max_conns {
            self.after_close();
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
            if self.max_conns > 0 && l.origin.active.load(Ordering::SeqCst) >= self.max_conns {
                return self.cap(slot);
            }
            match l.sock.accept() {
                Ok((client, _)) => {
                    l.origin.active.fetch_add(1, Ordering::SeqCst);
                    let origin = l.origin.clone();
                    if !l.nodelay {
                        let _ = client.set_nodelay(true);
                    }
                    if let Some(w) = self.team.pick(self.conns.len()) {
                        self.team.hand(w, origin, client);
                        continue;
                    }
                    match self.conns.open(self.poll.registry(), &origin, client) {
                        Dial::Open | Dial::Dropped => {}
                        // Kept until descriptors free up, rather than dropped.
                        Dial::OutOfFds(client) => {
                            self.parked.push_back((origin, client));
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
        self.again.push(token(slot).0);
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
        self.again.push(token(slot).0);
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
        let fd = match sock::socket(sock::domain(&backend), libc::SOCK_DGRAM) {
            Ok(fd) => fd,
            Err(e) => {
                if out_of_fds(&e) {
                    self.conns.pipes.clear();
                }
                return None;
            }
        };
        sock::connect(&fd, &backend).ok()?;
        let mut sock = UdpSocket::from_std(std::net::UdpSocket::from(fd));
        let slot = self.entries.next_index();
        self.poll.registry().register(&mut sock, token(slot), Interest::READABLE).ok()?;
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
        self.again.push(token(slot).0);
    }
}
