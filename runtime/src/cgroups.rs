//! cgroups through cgroupfs on v1, v2 and hybrid hosts (OCI config-linux.md
//! "Control groups"). Interface used by the lifecycle code; see each fn.
//!
//! `mounts` finds the host's hierarchies in /proc/self/mountinfo, `paths`
//! turns `linux.cgroupsPath` into a cgroup path, `v1` and `v2` write each
//! controller's files, `devices` applies device rules (v1 `devices.*` files,
//! an eBPF filter on v2) and `stats` reads the statistics. On hybrid hosts
//! (v1 controllers + an empty cgroup2 at /sys/fs/cgroup/unified) the v1
//! controllers do the limiting and the cgroup2 directory is created and
//! joined too, so the process is tracked there, as runc does; a controller
//! only cgroup2 offers (say hugetlb) is used there.

mod devices;
mod mounts;
mod paths;
mod stats;
#[cfg(test)]
mod tests;
mod v1;
mod v2;

pub use mounts::{parse_mountinfo, Layout};
pub use paths::{cgroup_path, expand_slice};
pub use stats::{BlkioEntry, Stats};
pub use v2::{blkio_weight_to_io_weight, shares_to_weight};

use crate::error::{err, Context, Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Where containers without an absolute `cgroupsPath` go.
pub const DEFAULT_PARENT: &str = "/skiff";
/// The name of the cgroup2 hierarchy in [`Cgroup::hierarchies`].
pub const UNIFIED: &str = "unified";

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only v1 hierarchies (embedded kernels, old distributions).
    #[default]
    V1,
    /// Only cgroup2, mounted at /sys/fs/cgroup.
    V2,
    /// v1 controllers plus an (often controller-less) cgroup2 mount.
    Hybrid,
}

/// One mounted hierarchy and the container's directory in it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hierarchy {
    /// Controllers as mounted ("cpu,cpuacct", "memory", "name=systemd"), or
    /// "unified" for cgroup2.
    pub name: String,
    /// Where the hierarchy is mounted.
    pub mount: PathBuf,
    /// The container's cgroup directory (`mount` + the cgroup path).
    pub dir: PathBuf,
}

impl Hierarchy {
    fn is_v1(&self, controller: &str) -> bool {
        self.name != UNIFIED && self.name.split(',').any(|c| c == controller)
    }
}

/// A container's cgroup: where it lives in each mounted hierarchy. Stored in
/// the container's state so later commands (kill --all, pause, delete,
/// events) find it without the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cgroup {
    /// The cgroup's path inside every hierarchy ("/skiff/<id>").
    pub path: String,
    pub mode: Mode,
    /// Every hierarchy the container joins (all v1 ones, named ones like
    /// name=systemd included, then "unified").
    pub hierarchies: Vec<Hierarchy>,
    /// Controllers used through cgroup2: all of them on v2; on hybrid the
    /// ones no v1 hierarchy holds.
    pub v2_controllers: Vec<String>,
}

/// Where one controller's files are written.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl Cgroup {
    /// Resolves `linux.cgroupsPath` (absolute: relative to each hierarchy's
    /// root; relative: under `/skiff`; absent: `/skiff/<id>`; with `systemd`,
    /// `slice:prefix:name` mapped to its cgroupfs path, see [`cgroup_path`])
    /// against the mounted hierarchies (/proc/self/mountinfo), without
    /// creating anything.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<Cgroup> {
        let path = paths::cgroup_path(cgroups_path, id, systemd)?;
        Cgroup::in_layout(&Layout::detect()?, &path)
    }

    /// The cgroup at `path` ("/a/b") in every hierarchy of `layout`.
    pub fn in_layout(layout: &Layout, path: &str) -> Result<Cgroup> {
        let path = paths::clean(path);
        if path == "/" {
            return err("cgroup path: refusing the root of the cgroup hierarchy");
        }
        let rel = &path[1..];
        let hierarchies = layout
            .hierarchies()
            .into_iter()
            .map(|(name, mount)| Hierarchy {
                dir: mount.join(rel),
                mount: mount.to_path_buf(),
                name,
            })
            .collect();
        Ok(Cgroup {
            mode: layout.mode()?,
            path,
            hierarchies,
            v2_controllers: layout.v2_controllers.clone(),
        })
    }

    /// Creates the directories and applies `resources` (memory, cpu, cpuset,
    /// pids, blkio/io, devices, hugepages, network, rdma, unified). Device
    /// rules are always applied as runc does: deny everything, then the
    /// rules in order, then runc's default allowed devices (null, zero, full,
    /// tty, random, urandom, ptmx, pts, mknod of anything); `linux.devices`
    /// nodes need their own allow rules in `resources.devices`. On failure
    /// the directories this call created are removed again.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let mut made = Vec::new();
        let res = self
            .make_dirs(&mut made)
            .and_then(|()| self.apply(resources, true));
        if res.is_err() {
            for dir in made.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        res.ctx(|| format!("create cgroup {}", self.path))
    }

    /// Applies new limits to an existing cgroup (`update`). Device rules
    /// are left as they are (as runc update does).
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        self.apply(Some(resources), false)
            .ctx(|| format!("update cgroup {}", self.path))
    }

    /// Rootless (no privileges over the host's cgroups, runc's rootless
    /// cgroup manager): puts `pid` in the hierarchies where the user may make
    /// the directories and move the process (a delegated cgroup), leaves the
    /// others out of the container's cgroup, then applies each section of
    /// `resources` it can and warns about the rest, as runc does. Device
    /// rules are not applied: the user namespace keeps device nodes out.
    pub fn join_rootless(&mut self, pid: i32, resources: Option<&LinuxResources>) {
        let mut kept = Vec::new();
        for h in std::mem::take(&mut self.hierarchies) {
            let mut made = Vec::new();
            let r = self.make_dirs_in(&h, &mut made).and_then(|()| write(&h.dir, "cgroup.procs", &pid.to_string()));
            match r {
                Ok(()) => kept.push(h),
                Err(e) => {
                    for dir in made.iter().rev() {
                        let _ = std::fs::remove_dir(dir);
                    }
                    crate::logging::debug(&format!("rootless: cgroup hierarchy {} not used: {e}", h.mount.display()));
                }
            }
        }
        self.hierarchies = kept;
        if self.mode == Mode::V2 {
            if let Some(h) = self.unified() {
                v2::enable_all(&h.mount, &self.path, &self.v2_controllers);
            }
        }
        let sections = resources.map(sections).unwrap_or_default();
        if sections.is_empty() {
            return;
        }
        if self.hierarchies.is_empty() {
            let keys: Vec<&str> = sections.iter().map(|(k, _)| *k).collect();
            crate::logging::warn(&format!(
                "rootless container without a cgroup it may write (no delegated cgroup at {}): linux.resources {} ignored",
                self.path,
                keys.join(", ")
            ));
            return;
        }
        for (key, one) in sections {
            if let Err(e) = self.apply(Some(&one), false) {
                crate::logging::warn(&format!("rootless: linux.resources.{key} ignored: {e}"));
            }
        }
    }

    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        self.add_pid_except(pid, &[])
    }

    /// `add_pid`, leaving out the hierarchies in `joined` (cgroup dirs).
    pub fn add_pid_except(&self, pid: i32, joined: &[PathBuf]) -> Result<()> {
        for h in self.hierarchies.iter().filter(|h| !joined.contains(&h.dir)) {
            write(&h.dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// The v1 cgroup dirs a single-threaded process can join by itself
    /// (`join_self`), and the cgroup2 dir, which clone3 can put a child in
    /// (CLONE_INTO_CGROUP). Moving a process through `cgroup.procs` takes
    /// the kernel's global threadgroup lock for writing, which waits for an
    /// RCU grace period (10-25 ms here, most of a container's start); a
    /// thread moving itself through `tasks`, and a child born in its
    /// cgroup, do not.
    pub fn self_join_dirs(&self) -> (Vec<PathBuf>, Option<PathBuf>) {
        let v1 = self.hierarchies.iter().filter(|h| h.name != UNIFIED).map(|h| h.dir.clone()).collect();
        (v1, self.unified().map(|h| h.dir.clone()))
    }
}

/// Moves the calling thread, the only one of its process, into the v1
/// cgroups `dirs` (writing 0 to `tasks`).
pub fn join_self(dirs: &[PathBuf]) -> Result<()> {
    for d in dirs {
        write(d, "tasks", "0")?;
    }
    Ok(())
}

impl Cgroup {

    /// Every pid in the cgroup and its sub-cgroups, in every hierarchy,
    /// sorted.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut all = Vec::new();
        for h in &self.hierarchies {
            collect_pids(&h.dir, true, &mut all)?;
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Freezes (true) or thaws (false) the cgroup and waits until done
    /// (v1 freezer.state; cgroup.freeze where no v1 freezer is mounted).
    /// A freeze that does not complete within 5 s is undone and fails.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let what = if frozen { "freeze" } else { "thaw" };
        match self.freezer() {
            Some(Target::V1(dir)) => v1::freeze(dir, frozen),
            Some(Target::V2(dir)) => v2::freeze(dir, frozen),
            None => err("no freezer cgroup controller is mounted"),
        }
        .ctx(|| format!("{what} cgroup {}", self.path))
    }

    /// Whether the cgroup is frozen (false when it cannot be read).
    pub fn is_frozen(&self) -> bool {
        match self.freezer() {
            Some(Target::V1(dir)) => v1::is_frozen(dir),
            Some(Target::V2(dir)) => v2::is_frozen(dir),
            None => false,
        }
    }

    /// Memory, cpu, pids and blkio statistics (runc's `events --stats`);
    /// controllers the host lacks read as zero.
    pub fn stats(&self) -> Result<Stats> {
        stats::read(self).ctx(|| format!("stats of cgroup {}", self.path))
    }

    /// Removes the (empty) cgroup directories, sub-cgroups first, in every
    /// hierarchy; missing ones are fine, busy ones are retried for a moment.
    /// Parents (`/skiff`) are left in place, as runc does.
    pub fn delete(&self) -> Result<()> {
        // One retry budget for the whole cgroup: a busy directory is
        // retried while it lasts, then reported.
        let deadline = Instant::now() + Duration::from_millis(1000);
        let mut first = None;
        for h in &self.hierarchies {
            if let Err(e) = remove_tree(&h.dir, deadline) {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e).ctx(|| format!("delete cgroup {}", self.path)),
            None => Ok(()),
        }
    }

    /// Fails naming `what` when the container joined no hierarchy (rootless
    /// without a delegated cgroup).
    pub fn check_joined(&self, what: &str) -> Result<()> {
        if self.hierarchies.is_empty() {
            return err(format!(
                "{what}: the container has no cgroup (rootless, without a cgroup delegated to the user at {})",
                self.path
            ));
        }
        Ok(())
    }

    fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.name == UNIFIED)
    }

    fn freezer(&self) -> Option<Target<'_>> {
        if self.mode != Mode::V2 {
            if let Some(h) = self.hierarchies.iter().find(|h| h.is_v1("freezer")) {
                return Some(Target::V1(&h.dir));
            }
        }
        // cgroup.freeze is part of every non-root cgroup2 directory.
        self.unified().map(|h| Target::V2(&h.dir))
    }

    /// Where controller `v1` (cgroup v1 name) / `v2` (cgroup2 name) lives,
    /// without enabling anything.
    fn find(&self, v1: &str, v2: &str) -> Option<Target<'_>> {
        if self.mode != Mode::V2 {
            if let Some(h) = self.hierarchies.iter().find(|h| h.is_v1(v1)) {
                return Some(Target::V1(&h.dir));
            }
        }
        let h = self.unified()?;
        self.v2_controllers
            .iter()
            .any(|c| c == v2)
            .then_some(Target::V2(&h.dir))
    }

    /// Like `find`, for writing: a cgroup2 controller gets enabled in the
    /// parents' `cgroup.subtree_control`; a missing controller is an error
    /// saying `what` needed it.
    fn need(&self, v1: &str, v2: &str, what: &str) -> Result<Target<'_>> {
        match self.find(v1, v2) {
            Some(Target::V2(dir)) => {
                let h = self
                    .unified()
                    .ok_or_else(|| Error(format!("{what}: no cgroup2 hierarchy")))?;
                v2::enable(&h.mount, &self.path, v2).ctx(|| what.to_string())?;
                Ok(Target::V2(dir))
            }
            Some(t) => Ok(t),
            None => {
                let list = || match self.unified() {
                    Some(h) => h.mount.join("cgroup.controllers").display().to_string(),
                    None => "cgroup.controllers".to_string(),
                };
                let why = match self.mode {
                    Mode::V1 => format!("the {v1} cgroup controller is not mounted"),
                    Mode::V2 => format!("the {v2} cgroup controller is not in {}", list()),
                    Mode::Hybrid => {
                        format!(
                            "the {v1} cgroup controller is not mounted (cgroup v1) nor in {}",
                            list()
                        )
                    }
                };
                err(format!("{what}: {why}"))
            }
        }
    }

    fn make_dirs(&self, made: &mut Vec<PathBuf>) -> Result<()> {
        for h in &self.hierarchies {
            // A parent another runtime removes meanwhile (its failed create
            // cleaning up) is made again, a few times at most.
            let mut attempt = 0;
            while let Err(e) = self.make_dirs_in(h, made) {
                attempt += 1;
                if attempt == 3 || !e.0.ends_with(&nix::errno::Errno::ENOENT.to_string()) {
                    return Err(e);
                }
            }
            if h.name == UNIFIED && self.mode == Mode::V2 {
                v2::enable_all(&h.mount, &self.path, &self.v2_controllers);
            }
        }
        Ok(())
    }

    fn make_dirs_in(&self, h: &Hierarchy, made: &mut Vec<PathBuf>) -> Result<()> {
        let cpuset = h.is_v1("cpuset");
        let mut cur = h.mount.clone();
        for comp in self.path.split('/').filter(|c| !c.is_empty()) {
            let parent = cur.clone();
            cur.push(comp);
            match std::fs::create_dir(&cur) {
                Ok(()) => made.push(cur.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).ctx(|| format!("mkdir {}", cur.display())),
            }
            if cpuset {
                v1::cpuset_inherit(&parent, &cur)?;
            }
        }
        Ok(())
    }

    fn apply(&self, r: Option<&LinuxResources>, creating: bool) -> Result<()> {
        if creating {
            self.apply_devices(r.and_then(|r| r.devices().as_deref()))?;
        }
        let Some(r) = r else { return Ok(()) };
        if let Some(cpu) = r.cpu() {
            let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
            let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
            if cpus.is_some() || mems.is_some() {
                let (Target::V1(dir) | Target::V2(dir)) =
                    self.need("cpuset", "cpuset", "set cpuset")?;
                for (file, value) in [("cpuset.cpus", cpus), ("cpuset.mems", mems)] {
                    if let Some(v) = value {
                        write(dir, file, v)?;
                    }
                }
            }
        }
        if let Some(m) = r.memory() {
            let nz = |v: Option<i64>| v.is_some_and(|v| v != 0);
            let set = nz(m.limit())
                || nz(m.reservation())
                || nz(m.swap())
                || nz(m.kernel_tcp())
                || m.swappiness().is_some()
                || m.disable_oom_killer() == Some(true);
            if set {
                match self.need("memory", "memory", "set memory limits")? {
                    Target::V1(dir) => v1::memory(dir, m)?,
                    Target::V2(dir) => v2::memory(dir, m)?,
                }
            }
        }
        if let Some(cpu) = r.cpu() {
            let nz = |v: Option<i64>| v.is_some_and(|v| v != 0);
            let nzu = |v: Option<u64>| v.is_some_and(|v| v != 0);
            let set = nzu(cpu.shares())
                || nz(cpu.quota())
                || nzu(cpu.period())
                || cpu.burst().is_some()
                || nz(cpu.realtime_runtime())
                || nzu(cpu.realtime_period())
                || cpu.idle().is_some();
            if set {
                match self.need("cpu", "cpu", "set cpu limits")? {
                    Target::V1(dir) => v1::cpu(dir, cpu)?,
                    Target::V2(dir) => v2::cpu(dir, cpu)?,
                }
            }
        }
        if let Some(p) = r.pids() {
            // -1 and 0 mean no limit: not worth an error where pids is missing.
            let target = match p.limit() {
                n if n > 0 => Some(self.need("pids", "pids", "set pids limit")?),
                _ => self
                    .find("pids", "pids")
                    .and_then(|_| self.need("pids", "pids", "set pids limit").ok()),
            };
            if let Some(Target::V1(dir) | Target::V2(dir)) = target {
                let max = if p.limit() > 0 {
                    p.limit().to_string()
                } else {
                    "max".to_string()
                };
                write(dir, "pids.max", &max)?;
            }
        }
        if let Some(b) = r.block_io() {
            let lists = [
                b.throttle_read_bps_device(),
                b.throttle_write_bps_device(),
                b.throttle_read_iops_device(),
                b.throttle_write_iops_device(),
            ];
            let set = b.weight().is_some_and(|w| w != 0)
                || b.leaf_weight().is_some_and(|w| w != 0)
                || b.weight_device().as_ref().is_some_and(|l| !l.is_empty())
                || lists
                    .iter()
                    .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()));
            if set {
                match self.need("blkio", "io", "set block I/O limits")? {
                    Target::V1(dir) => v1::blkio(dir, b)?,
                    Target::V2(dir) => v2::io(dir, b)?,
                }
            }
        }
        for l in r.hugepage_limits().iter().flatten() {
            let size = l.page_size();
            if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
                return err(format!("hugepage limit: invalid page size {size:?}"));
            }
            match self.need(
                "hugetlb",
                "hugetlb",
                &format!("set hugepage limit for {size}"),
            )? {
                Target::V1(dir) => v1::hugetlb(dir, size, l.limit())?,
                Target::V2(dir) => v2::hugetlb(dir, size, l.limit())?,
            }
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                let (Target::V1(dir) | Target::V2(dir)) =
                    self.need("net_cls", "net_cls", "set network class id")?;
                write(dir, "net_cls.classid", &id.to_string())?;
            }
            for p in n.priorities().iter().flatten() {
                let (Target::V1(dir) | Target::V2(dir)) =
                    self.need("net_prio", "net_prio", "set network interface priorities")?;
                write(
                    dir,
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
        if let Some(rdma) = r.rdma() {
            let mut devs: Vec<_> = rdma.iter().collect();
            devs.sort_by(|a, b| a.0.cmp(b.0));
            for (dev, l) in devs {
                let mut v = dev.clone();
                if let Some(h) = l.hca_handles() {
                    v.push_str(&format!(" hca_handle={h}"));
                }
                if let Some(o) = l.hca_objects() {
                    v.push_str(&format!(" hca_object={o}"));
                }
                if v.len() > dev.len() {
                    let (Target::V1(dir) | Target::V2(dir)) =
                        self.need("rdma", "rdma", "set rdma limits")?;
                    write(dir, "rdma.max", &v)?;
                }
            }
        }
        if let Some(u) = r.unified() {
            let mut keys: Vec<_> = u.iter().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            for (key, value) in keys {
                self.write_unified(key, value)?;
            }
        }
        Ok(())
    }

    /// `linux.resources.unified`: a cgroup2 file name -> value.
    fn write_unified(&self, key: &str, value: &str) -> Result<()> {
        let what = format!("unified {key}");
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return err(format!("{what}: not a cgroup file name"));
        }
        let Some(h) = self.unified() else {
            return err(format!(
                "{what}: needs cgroup v2, and this host has only cgroup v1"
            ));
        };
        let controller = key.split('.').next().unwrap_or(key);
        if controller != "cgroup" {
            match self.find(controller, controller) {
                Some(Target::V2(_)) => {
                    v2::enable(&h.mount, &self.path, controller).ctx(|| what.clone())?
                }
                _ => {
                    return err(format!(
                    "{what}: the {controller} controller is not available on cgroup v2 here ({})",
                    h.mount.join("cgroup.controllers").display()
                ))
                }
            }
        }
        write(&h.dir, key, value)
    }

    fn apply_devices(&self, rules: Option<&[LinuxDeviceCgroup]>) -> Result<()> {
        let specified = rules.is_some_and(|r| !r.is_empty());
        let rules = devices::with_defaults(rules.unwrap_or(&[]))?;
        if self.mode == Mode::V2 {
            let Some(h) = self.unified() else {
                return Ok(());
            };
            return match devices::attach_ebpf(&h.dir, &rules) {
                Err(e) if specified => Err(e),
                _ => Ok(()),
            };
        }
        match self.hierarchies.iter().find(|h| h.is_v1("devices")) {
            Some(h) => devices::apply_v1(&h.dir, &rules),
            None if specified => {
                err("set device rules: the devices cgroup controller is not mounted")
            }
            None => Ok(()),
        }
    }
}

/// `r` split into one LinuxResources per section that is set (devices
/// left out), each applied on its own in rootless mode.
fn sections(r: &LinuxResources) -> Vec<(&'static str, LinuxResources)> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, set: bool, fill: &dyn Fn(&mut LinuxResources)| {
        if set {
            let mut one = LinuxResources::default();
            fill(&mut one);
            out.push((name, one));
        }
    };
    add("memory", r.memory().is_some(), &|o| {
        o.set_memory(*r.memory());
    });
    add("cpu", r.cpu().is_some(), &|o| {
        o.set_cpu(r.cpu().clone());
    });
    add("pids", r.pids().is_some(), &|o| {
        o.set_pids(*r.pids());
    });
    add("blockIO", r.block_io().is_some(), &|o| {
        o.set_block_io(r.block_io().clone());
    });
    add("hugepageLimits", r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty()), &|o| {
        o.set_hugepage_limits(r.hugepage_limits().clone());
    });
    add("network", r.network().is_some(), &|o| {
        o.set_network(r.network().clone());
    });
    add("rdma", r.rdma().as_ref().is_some_and(|m| !m.is_empty()), &|o| {
        o.set_rdma(r.rdma().clone());
    });
    add("unified", r.unified().as_ref().is_some_and(|m| !m.is_empty()), &|o| {
        o.set_unified(r.unified().clone());
    });
    out
}

fn collect_pids(dir: &Path, top: bool, out: &mut Vec<i32>) -> Result<()> {
    let text = match read_opt(dir, "cgroup.procs")? {
        Some(t) => t,
        None if !top => return Ok(()), // a sub-cgroup removed meanwhile
        None => return read(dir, "cgroup.procs").map(|_| ()),
    };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        out.push(parse(dir, "cgroup.procs", line)?);
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("read directory {}", dir.display())),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&entry.path(), false, out)?;
        }
    }
    Ok(())
}

fn remove_tree(dir: &Path, deadline: Instant) -> Result<()> {
    // Most have no sub-cgroups and no tasks left: one rmdir, no listing.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("read directory {}", dir.display())),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path(), deadline)?;
        }
    }
    // An emptied cgroup stays busy until its last task is fully gone.
    let mut delay = Duration::from_millis(5);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => {
                let procs = read(dir, "cgroup.procs").unwrap_or_default();
                let procs: Vec<&str> = procs.split_whitespace().collect();
                let note = if procs.is_empty() {
                    String::new()
                } else {
                    format!(" (holds pids {})", procs.join(" "))
                };
                return Err(e).ctx(|| format!("rmdir {}{note}", dir.display()));
            }
        }
    }
    Ok(())
}

/// Writes `value` to `dir/file` (no create, no truncate: cgroupfs files).
fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .ctx(|| format!("write {value} to {}", path.display()))
}

fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).ctx(|| format!("read {}", path.display()))
}

/// `read`, with a missing file as None.
fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx(|| format!("read {}", path.display())),
    }
}

/// Parses `value`, read from `dir/file`; the error names both.
fn parse<T: FromStr>(dir: &Path, file: &str, value: &str) -> Result<T> {
    value.trim().parse().map_err(|_| {
        Error(format!(
            "parse {}: unexpected value {:?}",
            dir.join(file).display(),
            value.trim()
        ))
    })
}

fn read_num<T: FromStr>(dir: &Path, file: &str) -> Result<T> {
    parse(dir, file, &read(dir, file)?)
}

fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}
