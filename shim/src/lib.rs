//! skiff's shim: one small supervisor per container (the containerd-shim /
//! conmon role). It outlives the engine that started it, holds the
//! container's stdio, writes the json-file log, serves the control socket,
//! records the exit and applies the restart policy.
//!
//! The engine uses [`launch::start`] with [`options::Options`] to start a
//! shim, and [`client::Client`] (types in [`protocol`]) to talk to it.
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
pub mod launch;
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
