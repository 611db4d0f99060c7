//! skiff engine: docker's command line, daemonless. Every command works on
//! the state root directly (DESIGN.md "State on disk"), under file locks.

pub mod error;
pub mod images;
