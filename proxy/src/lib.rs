//! skiff proxy: a userland port forwarder and docker-proxy drop-in.
//!
//! One process serves any number of mappings (TCP and UDP, IPv4 and IPv6,
//! port ranges) from a single mio event loop; backends may be dialled from
//! inside a container's network namespace.

pub mod affinity;
pub mod args;
pub mod conns;
pub mod listen;
pub mod mapping;
pub mod netns;
pub mod parent;
pub mod server;
pub mod signals;
pub mod slab;
pub mod sock;
pub mod splice;
pub mod team;
pub mod tcp;
pub mod udp;

use args::Config;
use listen::Listener;
use parent::Parent;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

/// Why the proxy could not start, and its exit code without a parent pipe.
#[derive(Debug)]
pub struct StartError {
    pub code: i32,
    pub msg: String,
}

impl StartError {
    fn new(code: i32, msg: String) -> StartError {
        StartError { code, msg }
    }
}

/// Raises the soft limit on open files to the hard limit, as Go programs
/// (docker-proxy) do: every proxied connection costs descriptors.
fn raise_nofile_limit() {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: rl is valid for writes.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 && rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max;
        // SAFETY: rl is a valid rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) };
    }
}

/// Opens every listener and the event loop.
fn start(cfg: &Config, mut inherited: Option<std::io::Result<OwnedFd>>) -> Result<server::Server, StartError> {
    let signals = signals::StopSignals::new().map_err(|e| StartError::new(1, format!("block stop signals: {e}")))?;
    let mut listeners: Vec<(Listener, SocketAddr)> = Vec::new();
    for (i, m) in cfg.mappings.iter().enumerate() {
        if Some(i) == cfg.listen_fd {
            let backend = SocketAddr::new(m.container_ip, m.container_port);
            let fd = match inherited.take() {
                Some(Ok(fd)) => fd,
                Some(Err(e)) => return Err(StartError::new(2, format!("-use-listen-fd: fd 4: {e}"))),
                None => return Err(StartError::new(2, "-use-listen-fd: fd 4 is not open".into())),
            };
            let (l, _addr) =
                listen::adopt(m.proto, fd).map_err(|e| StartError::new(2, format!("-use-listen-fd: fd 4: {e}")))?;
            listeners.push((l, backend));
            continue;
        }
        for (host, backend) in m.pairs() {
            let l = listen::bind(m.proto, host)
                .map_err(|e| StartError::new(2, format!("listen {} {host}: {e}", m.proto)))?;
            listeners.push((l, backend));
        }
    }
    // Only once every listener is bound in the host namespace.
    if let Some(path) = &cfg.netns {
        netns::enter(path).map_err(|e| StartError::new(1, e))?;
    }
    server::Server::new(cfg, listeners, signals).map_err(|e| StartError::new(1, format!("event loop: {e}")))
}

/// Says what went wrong on stderr (if it can).
fn report(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "proxy: {msg}");
}

/// Runs the proxy until SIGTERM or SIGINT; returns the exit code.
///
/// Call first thing: fds 3 and 4 are taken before any other is opened.
pub fn run(cfg: &Config) -> i32 {
    let parent = Parent::take();
    let inherited = cfg.listen_fd.map(|_| parent::take_listen_fd());
    raise_nofile_limit();
    match start(cfg, inherited) {
        Ok(mut server) => {
            parent.ready();
            match server.run() {
                Ok(()) => 0,
                Err(e) => {
                    report(&format!("event loop: {e}"));
                    1
                }
            }
        }
        Err(e) => {
            report(&e.msg);
            if parent.is_present() {
                parent.failed(&e.msg);
                1
            } else {
                e.code
            }
        }
    }
}
