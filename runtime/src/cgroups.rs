//! cgroups through cgroupfs on v1, v2 and hybrid hosts (OCI config-linux.md
//! "Control groups"). Interface used by the lifecycle code; see each fn.

use crate::error::{err, Result};
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A container's cgroup: where it lives in each mounted hierarchy. Stored in
/// the container's state so later commands (kill --all, pause, delete,
/// events) find it without the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cgroup {
    /// Controller (or "unified" for the v2 hierarchy) -> absolute directory.
    pub paths: Vec<(String, PathBuf)>,
}

/// cgroup statistics for `events --stats` (runc's shape, subset).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub cpu_usage_ns: u64,
    pub pids_current: u64,
    pub pids_limit: u64,
}

impl Cgroup {
    /// Resolves `linux.cgroupsPath` (absolute: relative to each hierarchy's
    /// root; relative or absent: under `/skiff/<id>`; with `systemd`,
    /// `slice:prefix:name` mapped to a cgroupfs path) without touching the
    /// filesystem.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<Cgroup> {
        let _ = (cgroups_path, id, systemd);
        err("cgroups: not implemented yet")
    }

    /// Creates the directories and applies `resources` (memory, cpu, cpuset,
    /// pids, blkio/io, devices, hugepages).
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let _ = resources;
        err("cgroups: not implemented yet")
    }

    /// Applies new limits to an existing cgroup (`update`).
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        let _ = resources;
        err("cgroups: not implemented yet")
    }

    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        let _ = pid;
        err("cgroups: not implemented yet")
    }

    /// Every pid in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        err("cgroups: not implemented yet")
    }

    /// Freezes (true) or thaws (false) the cgroup and waits until done.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let _ = frozen;
        err("cgroups: not implemented yet")
    }

    pub fn is_frozen(&self) -> bool {
        false
    }

    pub fn stats(&self) -> Result<Stats> {
        err("cgroups: not implemented yet")
    }

    /// Removes the (empty) cgroup directories; missing ones are fine.
    pub fn delete(&self) -> Result<()> {
        err("cgroups: not implemented yet")
    }
}
