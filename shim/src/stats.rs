//! Resource usage of the container, read from the cgroups its init process
//! is in (`/proc/<pid>/cgroup`): cgroup v2 (unified) or v1 controllers.

use crate::protocol::Stats;
use std::path::{Path, PathBuf};

/// Where each controller of a process lives.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cgroups {
    pub unified: Option<PathBuf>,
    pub memory: Option<PathBuf>,
    pub cpuacct: Option<PathBuf>,
    pub pids: Option<PathBuf>,
}

/// Parses `/proc/<pid>/cgroup` against the cgroup mount at `root`
/// (v1 controllers under `root/<controller list>`, v2 at `root` or, on
/// hybrid hosts, `root/unified`).
pub fn parse(text: &str, root: &Path) -> Cgroups {
    let mut c = Cgroups::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let rel = path.trim_start_matches('/');
        if ctrls.is_empty() {
            let hybrid = root.join("unified");
            let base = if hybrid.is_dir() { hybrid } else { root.to_path_buf() };
            c.unified = Some(base.join(rel));
            continue;
        }
        let dir = root.join(ctrls).join(rel);
        for ctl in ctrls.split(',') {
            match ctl {
                "memory" => c.memory = Some(dir.clone()),
                "cpuacct" => c.cpuacct = Some(dir.clone()),
                "pids" => c.pids = Some(dir.clone()),
                _ => {}
            }
        }
    }
    c
}

fn number(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// A limit file: "max" (v2) or a huge v1 value means none.
fn limit(p: &Path) -> Option<u64> {
    number(p).filter(|&v| v < (1 << 62))
}

fn key(p: &Path, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(p).ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

impl Cgroups {
    pub fn of(pid: i32) -> Cgroups {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        parse(&text, Path::new("/sys/fs/cgroup"))
    }

    pub fn stats(&self, pid: i32) -> Stats {
        let mut s = Stats { pid, ..Stats::default() };
        if let Some(d) = &self.memory {
            s.memory_usage = number(&d.join("memory.usage_in_bytes"));
            s.memory_limit = limit(&d.join("memory.limit_in_bytes"));
        }
        if let Some(d) = &self.cpuacct {
            s.cpu_usage_ns = number(&d.join("cpuacct.usage"));
        }
        if let Some(d) = &self.pids {
            s.pids_current = number(&d.join("pids.current"));
            s.pids_limit = limit(&d.join("pids.max"));
        }
        if let Some(d) = &self.unified {
            if s.memory_usage.is_none() {
                s.memory_usage = number(&d.join("memory.current"));
                s.memory_limit = limit(&d.join("memory.max"));
            }
            if s.cpu_usage_ns.is_none() {
                s.cpu_usage_ns = key(&d.join("cpu.stat"), "usage_usec").map(|us| us * 1000);
            }
            if s.pids_current.is_none() {
                s.pids_current = number(&d.join("pids.current"));
                s.pids_limit = limit(&d.join("pids.max"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_and_v2_lines() {
        let text = "12:pids:/skiff/c1\n4:cpu,cpuacct:/skiff/c1\n9:memory:/skiff/c1\n1:name=systemd:/x\n0::/skiff/c1\n";
        let c = parse(text, Path::new("/nonexistent"));
        assert_eq!(c.pids, Some(PathBuf::from("/nonexistent/pids/skiff/c1")));
        assert_eq!(c.cpuacct, Some(PathBuf::from("/nonexistent/cpu,cpuacct/skiff/c1")));
        assert_eq!(c.memory, Some(PathBuf::from("/nonexistent/memory/skiff/c1")));
        assert_eq!(c.unified, Some(PathBuf::from("/nonexistent/skiff/c1")));
    }

    #[test]
    fn reads_our_own_cgroup() {
        let s = Cgroups::of(std::process::id() as i32).stats(1);
        // Some controller is mounted on any Linux host this runs on.
        assert!(s.memory_usage.is_some() || s.pids_current.is_some() || s.cpu_usage_ns.is_some(), "{s:?}");
    }
}
