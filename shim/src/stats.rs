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
    pub blkio: Option<PathBuf>,
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
                "blkio" => c.blkio = Some(dir.clone()),
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

/// Sums the `name` column of per-device lines: v1's `MAJ:MIN Read N`
/// (`field` = "Read") or v2's `MAJ:MIN rbytes=N ...` (`field` = "rbytes=").
fn per_device(p: &Path, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(p).ok()?;
    let line = |l: &str| -> u64 {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            [_, name, n] if *name == field => n.parse().unwrap_or(0),
            _ => w.iter().filter_map(|kv| kv.strip_prefix(field)?.parse::<u64>().ok()).sum(),
        }
    };
    Some(text.lines().map(line).sum())
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
        if let Some(d) = &self.blkio {
            let f = d.join("blkio.throttle.io_service_bytes");
            s.block_read = per_device(&f, "Read");
            s.block_write = per_device(&f, "Write");
        }
        if let Some(d) = &self.unified {
            if s.block_read.is_none() {
                s.block_read = per_device(&d.join("io.stat"), "rbytes=");
                s.block_write = per_device(&d.join("io.stat"), "wbytes=");
            }
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
        let text = "12:pids:/skiff/c1\n4:cpu,cpuacct:/skiff/c1\n9:memory:/skiff/c1\n7:blkio:/skiff/c1\n1:name=systemd:/x\n0::/skiff/c1\n";
        let c = parse(text, Path::new("/nonexistent"));
        assert_eq!(c.blkio, Some(PathBuf::from("/nonexistent/blkio/skiff/c1")));
        assert_eq!(c.pids, Some(PathBuf::from("/nonexistent/pids/skiff/c1")));
        assert_eq!(c.cpuacct, Some(PathBuf::from("/nonexistent/cpu,cpuacct/skiff/c1")));
        assert_eq!(c.memory, Some(PathBuf::from("/nonexistent/memory/skiff/c1")));
        assert_eq!(c.unified, Some(PathBuf::from("/nonexistent/skiff/c1")));
    }

    #[test]
    fn block_io_of_v1_and_v2_files() {
        let dir = std::env::temp_dir().join(format!("skiff-blkio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let v1 = dir.join("v1");
        std::fs::write(&v1, "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:16 Read 100\n8:16 Write 0\nTotal 4708\n").unwrap();
        assert_eq!((per_device(&v1, "Read"), per_device(&v1, "Write")), (Some(4196), Some(512)));
        let v2 = dir.join("v2");
        std::fs::write(&v2, "8:0 rbytes=4096 wbytes=512 rios=1 wios=1\n8:16 rbytes=100 wbytes=0 rios=1 wios=0\n").unwrap();
        assert_eq!((per_device(&v2, "rbytes="), per_device(&v2, "wbytes=")), (Some(4196), Some(512)));
        assert_eq!(per_device(&dir.join("none"), "Read"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_our_own_cgroup() {
        let s = Cgroups::of(std::process::id() as i32).stats(1);
        // Some controller is mounted on any Linux host this runs on.
        assert!(s.memory_usage.is_some() || s.pids_current.is_some() || s.cpu_usage_ns.is_some(), "{s:?}");
    }
}
