//! Worker threads. On a machine with several CPUs one thread is the limit:
//! the kernel's TCP work for every hop is done in the thread that makes the
//! call, so the main thread would run flat out while the other CPUs wait on
//! it. The main thread keeps listeners, UDP and signals, accepts, and hands
//! each new client to the thread with the fewest connections (itself
//! included); that thread dials the backend and pumps the connection for
//! its whole life, in its own event loop, without locks.
//!
//! Workers start only when a second connection is open at once, so an idle
//! proxy is one thread. A worker that runs out of descriptors dialling hands
//! the client back to the main thread, which parks it and pauses accepting,
//! as it does for its own.

use crate::affinity::{Cpus, Placement};
use crate::conns::{Conns, Dial, Origin};
use mio::net::TcpStream;
use mio::{Events, Poll, Token, Waker};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Token of the waker in every thread's event loop.
pub const WAKER: Token = Token(usize::MAX - 1);
/// Most threads in all, whatever the CPU count.
pub const MAX_THREADS: usize = 64;
/// Worker stack: pumping needs little (buffers are on the heap).
const STACK: usize = 128 * 1024;

type Handoff = (Arc<Origin>, TcpStream);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays valid even if a holder panicked (panics abort anyway).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the main thread and the workers share.
struct Shared {
    /// Wakes the main thread.
    main: Waker,
    /// Clients a worker could not dial for lack of descriptors.
    returned: Mutex<Vec<Handoff>>,
    /// The main thread wants to hear of every closed connection (a
    /// listener is capped or accepting is paused).
    watch: AtomicBool,
}

/// One worker as the main thread sees it.
struct Seat {
    inbox: Mutex<Vec<Handoff>>,
    /// A wake is on its way: later handoffs need not send another.
    pending: AtomicBool,
    waker: Waker,
    /// Connections handed to it and not closed yet.
    open: AtomicUsize,
    /// Close the pooled pipes: descriptors ran out.
    shed: AtomicBool,
}

/// The main thread's side of the workers.
pub struct Team {
    /// Threads in all, the main one included.
    size: usize,
    shared: Option<Arc<Shared>>,
    seats: Vec<Arc<Seat>>,
    /// Where each thread is pinned when busy, when they are.
    cpus: Option<Cpus>,
    /// The main thread's own.
    pub placement: Placement,
}

impl Team {
    /// Up to `size` threads in all; the main thread's waker goes into
    /// `poll`. With `pin`, each thread gets a CPU of its own for when it
    /// is busy (the main thread's is `placement`).
    pub fn new(size: usize, poll: &Poll, pin: bool) -> io::Result<Team> {
        let size = size.clamp(1, MAX_THREADS);
        let cpus = if pin && size > 1 { Cpus::allowed() } else { None };
        // The CPU list is read here, before any thread is pinned.
        let placement = cpus.as_ref().map(|c| c.placement(0)).unwrap_or_default();
        let shared = if size > 1 {
            Some(Arc::new(Shared {
                main: Waker::new(poll.registry(), WAKER)?,
                returned: Mutex::new(Vec::new()),
                watch: AtomicBool::new(false),
            }))
        } else {
            None
        };
        Ok(Team { size, shared, seats: Vec::new(), cpus, placement })
    }

    /// Where a new client goes: `None` for the main thread (which has `mine`
    /// connections), else a worker's index. Starts a worker when every
    /// running thread has connections and the team is not full.
    pub fn pick(&mut self, mine: usize) -> Option<usize> {
        self.shared.as_ref()?;
        let mut best = (mine, None);
        for (i, s) in self.seats.iter().enumerate() {
            let n = s.open.load(Ordering::Relaxed);
            if n < best.0 {
                best = (n, Some(i));
            }
        }
        if best.0 > 0 && self.seats.len() + 1 < self.size {
            match self.spawn() {
                Ok(i) => return Some(i),
                // No thread (no descriptors, no memory): the team stays as
                // it is, rather than paying for a failed try per client.
                Err(_) => self.size = self.seats.len() + 1,
            }
        }
        best.1
    }

    fn spawn(&mut self) -> io::Result<usize> {
        let Some(shared) = &self.shared else { return Err(io::ErrorKind::Unsupported.into()) };
        let poll = Poll::new()?;
        let seat = Arc::new(Seat {
            inbox: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            waker: Waker::new(poll.registry(), WAKER)?,
            open: AtomicUsize::new(0),
            shed: AtomicBool::new(false),
        });
        let (s, sh) = (seat.clone(), shared.clone());
        let placement = self.cpus.as_ref().map(|c| c.placement(self.seats.len() + 1)).unwrap_or_default();
        std::thread::Builder::new()
            .name(format!("worker{}", self.seats.len() + 1))
            .stack_size(STACK)
            .spawn(move || work(poll, &s, &sh, placement))?;
        self.seats.push(seat);
        Ok(self.seats.len() - 1)
    }

    /// Gives `client` of `origin` to worker `i`.
    pub fn hand(&self, i: usize, origin: Arc<Origin>, client: TcpStream) {
        let seat = &self.seats[i];
        seat.open.fetch_add(1, Ordering::Relaxed);
        lock(&seat.inbox).push((origin, client));
        if !seat.pending.swap(true, Ordering::SeqCst) {
            // Fails only if the eventfd is gone, with the process.
            let _ = seat.waker.wake();
        }
    }

    /// Clients workers handed back for lack of descriptors.
    pub fn returned(&self) -> Vec<Handoff> {
        self.shared.as_ref().map(|s| std::mem::take(&mut *lock(&s.returned))).unwrap_or_default()
    }

    /// Whether workers wake the main thread when a connection closes.
    pub fn watch(&self, on: bool) {
        if let Some(s) = &self.shared {
            s.watch.store(on, Ordering::SeqCst);
        }
    }

    /// Asks every worker to close its pooled pipes: descriptors ran out.
    pub fn shed(&self) {
        for seat in &self.seats {
            seat.shed.store(true, Ordering::SeqCst);
            let _ = seat.waker.wake();
        }
    }
}

/// A worker's event loop, for the life of the process.
fn work(mut poll: Poll, seat: &Seat, shared: &Shared, mut placement: Placement) {
    let mut conns = Conns::default();
    let mut events = Events::with_capacity(256);
    loop {
        let timeout = conns.busy().then_some(Duration::ZERO);
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // As when the main loop fails: the process cannot serve on.
            let _ = writeln!(io::stderr(), "proxy: worker event loop: {e}");
            std::process::exit(1);
        }
        let mut closed = 0;
        for ev in events.iter() {
            if ev.token() != WAKER {
                closed += conns.dispatch(ev.token().0, Some(ev));
                continue;
            }
            // Cleared before the inbox is read: a handoff after this wakes again.
            seat.pending.store(false, Ordering::SeqCst);
            if seat.shed.swap(false, Ordering::SeqCst) {
                conns.pipes.clear();
            }
            let new = std::mem::take(&mut *lock(&seat.inbox));
            for (origin, client) in new {
                match conns.open(poll.registry(), &origin, client) {
                    Dial::Open => {}
                    // Counted as a close: it was counted open when handed over.
                    Dial::Dropped => closed += 1,
                    Dial::OutOfFds(client) => {
                        lock(&shared.returned).push((origin, client));
                        seat.open.fetch_sub(1, Ordering::Relaxed);
                        let _ = shared.main.wake();
                    }
                }
            }
        }
        closed += conns.turns();
        placement.update(conns.len());
        if closed > 0 {
            seat.open.fetch_sub(closed, Ordering::Relaxed);
            if shared.watch.load(Ordering::SeqCst) {
                let _ = shared.main.wake();
            }
        }
    }
}
