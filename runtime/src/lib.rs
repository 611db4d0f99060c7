//! skiff runtime: an OCI runtime with runc's command line.
//!
//! Modules follow the OCI runtime spec's sections; `main.rs` parses runc's
//! command line and calls `container` for each operation.

pub mod capabilities;
pub mod cgroups;
pub mod cloned_binary;
pub mod console;
pub mod container;
pub mod error;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod logging;
pub mod namespaces;
pub mod process;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sync;
