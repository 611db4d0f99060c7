//! skiff's shim: one small supervisor per container (the containerd-shim /
//! conmon role). It outlives the engine that started it, holds the
//! container's stdio, writes the json-file log, serves the control socket,
//! records the exit and applies the restart policy.
//!
//! The engine uses [`launch::start`] with [`options::Options`] to start a
//! shim, and [`client::Client`] (types in [`protocol`]) to talk to it.
//!
//! Files in the state dir: `shim.sock` (control socket, 0600), `shim.pid`,
//! `exit` (atomic record of the last exit, kept after the shim is gone),
//! `ctr.log` (+ `.1`... with rotation), `shim.log` (the shim's own events:
//! restarts, proxy exits), `init.pid` (the runtime's `--pid-file`),
//! `runtime.log` (the runtime's `--log` of `create`, removed when empty),
//! `console.sock` (tty mode, while the runtime creates the container).
//! The shim removes `shim.sock`, `shim.pid` and `init.pid` when it exits.
//!
//! If the shim itself is killed (SIGKILL), the container keeps running,
//! re-parented to init (or the nearest subreaper), like containerd-shim's
//! containers: but its stdout/stderr pipes lose their reader, so its next
//! write gets EPIPE/SIGPIPE, no exit is recorded, and the engine sees a
//! container without a shim (shim.pid names a dead process, no `exit`).

pub mod client;
pub mod clock;
pub mod console;
pub mod control;
pub mod daemon;
pub mod event;
pub mod health;
pub mod launch;
pub mod lifecycle;
pub mod log;
pub mod options;
pub mod protocol;
pub mod proxy;
pub mod record;
pub mod restart;
pub mod runtime;
pub mod sockpath;
pub mod stats;
pub mod supervise;

/// Runs the shim as the command line asks; returns the process exit status.
pub fn main_with(o: options::Options) -> i32 {
    if o.foreground {
        daemon::foreground(o)
    } else {
        daemon::detach(o)
    }
}
