//! Which cgroup hierarchies the host has mounted, from /proc/self/mountinfo.

use super::{Mode, UNIFIED};
use crate::error::{err, Context, Result};
use std::path::{Path, PathBuf};

/// The v1 controllers (and `name=` hierarchies) the kernel can mount; mount
/// options that are not in this list (`rw`, `noprefix`, `clone_children`,
/// `release_agent=...`, `xattr`, ...) are not controllers.
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// The host's cgroup layout: v1 hierarchies, the cgroup2 mount, and the
/// controllers that cgroup2 offers at its root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// v1 hierarchies: controllers as mounted ("cpu,cpuacct",
    /// "name=systemd") -> mount point.
    pub v1: Vec<(String, PathBuf)>,
    /// Where cgroup2 is mounted (all of it on v2, the empty
    /// `/sys/fs/cgroup/unified` on hybrid hosts).
    pub unified: Option<PathBuf>,
    /// `cgroup.controllers` of the cgroup2 root, minus those bound to v1.
    pub v2_controllers: Vec<String>,
}

impl Layout {
    /// Reads /proc/self/mountinfo and the cgroup2 root's `cgroup.controllers`.
    pub fn detect() -> Result<Layout> {
        let info =
            std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
        let mut layout = parse_mountinfo(&info);
        if let Some(root) = &layout.unified {
            let file = root.join("cgroup.controllers");
            let list = match std::fs::read_to_string(&file) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(e).ctx(|| format!("read {}", file.display())),
            };
            layout.set_v2_controllers(&list);
        }
        Ok(layout)
    }

    /// Sets the cgroup2 controllers from a `cgroup.controllers` line,
    /// leaving out any a v1 hierarchy already holds.
    pub fn set_v2_controllers(&mut self, list: &str) {
        let v1 = &self.v1;
        self.v2_controllers = list
            .split_whitespace()
            .filter(|c| !v1.iter().any(|(name, _)| name.split(',').any(|n| n == *c)))
            .map(str::to_string)
            .collect();
    }

    pub fn mode(&self) -> Result<Mode> {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (true, true) => Ok(Mode::V2),
            (false, true) => Ok(Mode::Hybrid),
            (false, false) => Ok(Mode::V1),
            (true, false) => err(
                "cgroups: no cgroup or cgroup2 filesystem is mounted (see /proc/self/mountinfo)",
            ),
        }
    }

    /// Every hierarchy as (name, mount point), "unified" last.
    pub(super) fn hierarchies(&self) -> Vec<(String, &Path)> {
        let mut all: Vec<(String, &Path)> = self
            .v1
            .iter()
            .map(|(n, p)| (n.clone(), p.as_path()))
            .collect();
        if let Some(u) = &self.unified {
            all.push((UNIFIED.to_string(), u));
        }
        all
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses /proc/self/mountinfo text: `ID PARENT MAJ:MIN ROOT MOUNTPOINT
/// OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`. A hierarchy mounted more
/// than once is taken from its first mount under /sys/fs/cgroup (else its
/// first mount). Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Layout {
    let mut layout = Layout::default();
    let preferred = |p: &Path| p.starts_with("/sys/fs/cgroup");
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if dash < 6 || fields.len() < dash + 4 {
            continue;
        }
        let mountpoint = PathBuf::from(unescape(fields[4]));
        let fstype = fields[dash + 1];
        let superopts = fields[dash + 3];
        match fstype {
            "cgroup2" => {
                let better = match &layout.unified {
                    None => true,
                    Some(old) => !preferred(old) && preferred(&mountpoint),
                };
                if better {
                    layout.unified = Some(mountpoint);
                }
            }
            "cgroup" => {
                let name = superopts
                    .split(',')
                    .filter(|o| {
                        V1_CONTROLLERS.contains(o) || (o.starts_with("name=") && o.len() > 5)
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                if name.is_empty() {
                    continue;
                }
                match layout.v1.iter_mut().find(|(n, _)| *n == name) {
                    None => layout.v1.push((name, mountpoint)),
                    Some((_, old)) => {
                        if !preferred(old) && preferred(&mountpoint) {
                            *old = mountpoint;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    layout
}
