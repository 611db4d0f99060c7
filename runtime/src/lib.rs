//! skiff runtime: an OCI runtime with runc's command line.
//!
//! Modules follow the OCI runtime spec's sections; `main.rs` parses runc's
//! command line and calls `container` for each operation.

pub mod cgroups;
pub mod error;
pub mod rootfs;
