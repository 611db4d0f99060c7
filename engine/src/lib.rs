//! skiff engine: docker's command line, daemonless. Every command works on
//! the state root directly (DESIGN.md "State on disk"), under file locks.

pub use skiff_runtime::error;
pub mod containers;
pub mod build;
pub mod commit;
pub mod compose;
pub mod copy;
pub mod devices;
pub mod events;
pub mod dockerfile;
pub mod flags;
pub mod images;
pub mod network;
pub mod oci;
pub mod record;
pub mod registry;
pub mod rootfs;
pub mod seccomp;
pub mod template;
pub mod terminal;
pub mod timestamp;
pub mod volumes;
pub mod yaml;
pub mod commands;
