//! `cgroup` and `cgroup2` mounts: the container's view of its cgroups.
//!
//! What is mounted, as runc does:
//! - A host with only cgroup v2 (/sys/fs/cgroup is cgroup2): a cgroup2
//!   filesystem (its root is the container's cgroup when the container has
//!   a cgroup namespace). Where the kernel refuses (a user namespace without
//!   a cgroup namespace) the host's /sys/fs/cgroup is bound instead.
//! - A v1 or hybrid host: a tmpfs (mode 755, nosuid, nodev, noexec) with one
//!   directory per host hierarchy, named like the host's (`memory`,
//!   `cpu,cpuacct`, `systemd`, `unified` ...), and a symlink per controller of
//!   a combined one (`cpu -> cpu,cpuacct`). Without a cgroup namespace each
//!   directory is a bind of the container's own cgroup in that hierarchy
//!   (/proc/self/cgroup, so the caller must have joined its cgroups first);
//!   with one, a fresh mount of that hierarchy (which the namespace roots at
//!   the container's cgroup). The mount's flags (ro, nosuid ...) apply to
//!   each hierarchy; with `ro` the tmpfs is made read-only last.

use super::mountinfo::{self, MountInfo};
use super::mounts::{self, Setup};
use super::options::MountOptions;
use super::paths::{self, Target};
use crate::error::{Context, Result};
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::path::{Path, PathBuf};

const HOST_ROOT: &str = "/sys/fs/cgroup";

/// One line of /proc/self/cgroup: `id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

/// Parses /proc/self/cgroup text.
pub fn parse_memberships(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _id = f.next()?;
            let controllers = f.next()?.split(',').filter(|c| !c.is_empty()).map(String::from).collect();
            Some(Membership { controllers, path: PathBuf::from(f.next()?) })
        })
        .collect()
}

/// A host cgroup hierarchy this process is a member of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Directory name under the container's cgroup mount.
    pub name: String,
    /// The host mount (mount point, root, type).
    pub mount: MountInfo,
    /// Controllers (`cpu`, `name=systemd`); empty for cgroup2.
    pub controllers: Vec<String>,
    /// This process's cgroup in it.
    pub path: PathBuf,
}

impl Hierarchy {
    /// The host directory of this process's cgroup in this hierarchy.
    pub fn own_dir(&self) -> PathBuf {
        match self.path.strip_prefix(&self.mount.root) {
            Ok(rel) => self.mount.mount_point.join(rel),
            // Outside what the host mounted: the mount's root is all we see.
            Err(_) => self.mount.mount_point.clone(),
        }
    }
}

/// The hierarchies of `infos` (mounts outside `root`, first mount of each
/// filesystem) matched with this process's memberships.
pub fn hierarchies(infos: &[MountInfo], memberships: &[Membership], root: &Path) -> Vec<Hierarchy> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out: Vec<Hierarchy> = Vec::new();
    for m in infos {
        if !(m.fs_type == "cgroup" || m.fs_type == "cgroup2")
            || m.mount_point.starts_with(root)
            || seen.contains(&m.dev.as_str())
        {
            continue;
        }
        let Some(name) = m.mount_point.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        let member = if m.fs_type == "cgroup2" {
            memberships.iter().find(|s| s.controllers.is_empty())
        } else {
            let opts: Vec<&str> = m.super_options.split(',').collect();
            memberships
                .iter()
                .find(|s| !s.controllers.is_empty() && s.controllers.iter().all(|c| opts.contains(&c.as_str())))
        };
        let Some(member) = member else { continue };
        if out.iter().any(|h| h.name == name) {
            continue;
        }
        seen.push(&m.dev);
        out.push(Hierarchy {
            name,
            mount: m.clone(),
            controllers: member.controllers.clone(),
            path: member.path.clone(),
        });
    }
    out
}

fn host_is_unified() -> bool {
    nix::sys::statfs::statfs(HOST_ROOT).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// A `cgroup` mount (see the module documentation).
pub fn mount_cgroup(setup: &Setup, opts: &MountOptions, resolved: &Path) -> Result<()> {
    if host_is_unified() {
        return mount_cgroup2(setup, "cgroup2", opts, resolved);
    }
    let infos = mountinfo::read()?;
    let text = std::fs::read_to_string("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup")?;
    let found = hierarchies(&infos, &parse_memberships(&text), &setup.root);
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mounts::mount_fs(setup, "tmpfs", resolved, "tmpfs", base, Some("mode=755"))?;
    for h in &found {
        let dir = resolved.join(&h.name);
        paths::create_dirs(&setup.root, &dir)?;
        if setup.cgroupns {
            let flags = base | (opts.flags & MsFlags::MS_RDONLY);
            if h.mount.fs_type == "cgroup2" {
                mounts::mount_fs(setup, "cgroup2", &dir, "cgroup2", flags, None)?;
            } else {
                let data = h.controllers.join(",");
                mounts::mount_fs(setup, "cgroup", &dir, "cgroup", flags, Some(&data))?;
            }
        } else {
            let mut b = opts.clone();
            b.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
            mounts::bind(setup, &h.own_dir(), &dir, &b)?;
        }
        if h.name.contains(',') {
            for c in h.name.split(',') {
                match std::os::unix::fs::symlink(&h.name, resolved.join(c)) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                        return Err(e).ctx(|| format!("symlink {}", resolved.join(c).display()))
                    }
                    _ => {}
                }
            }
        }
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        mounts::remount(setup, resolved, base | MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REMOUNT)?;
    }
    Ok(())
}

/// A `cgroup2` mount; where the kernel refuses it (EPERM, EBUSY: a user
/// namespace without a cgroup namespace), a bind of the host's /sys/fs/cgroup.
pub fn mount_cgroup2(setup: &Setup, source: &str, opts: &MountOptions, resolved: &Path) -> Result<()> {
    let t = Target::open(&setup.root, resolved)?;
    match mounts::raw_mount(&t, Some(source), Some("cgroup2"), opts.flags, opts.data()) {
        Err(Errno::EPERM | Errno::EBUSY) => {
            let mut b = opts.clone();
            b.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
            mounts::bind(setup, Path::new(HOST_ROOT), resolved, &b)
        }
        r => r.ctx(|| format!("mount cgroup2 on {}", resolved.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 27 0:39 / /opt/misc rw,relatime - cgroup cgroup rw,misc
50 27 0:29 / /var/rootfs/sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu,cpuacct
51 27 0:32 / /elsewhere/memory rw,relatime - cgroup cgroup rw,memory
";
    const SELF: &str = "\
9:name=systemd:/user.slice
4:memory:/docker/abc
2:cpu,cpuacct:/docker/abc
0::/docker/abc
";

    #[test]
    fn memberships_and_hierarchies() {
        let s = parse_memberships(SELF);
        assert_eq!(s.len(), 4);
        assert_eq!(s[2].controllers, vec!["cpu", "cpuacct"]);
        assert!(s[3].controllers.is_empty());
        let h = hierarchies(&mountinfo::parse(INFO), &s, Path::new("/var/rootfs"));
        let names: Vec<&str> = h.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, vec!["cpu,cpuacct", "memory", "systemd", "unified"]);
        assert_eq!(h[0].own_dir(), PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/docker/abc"));
        // The host mounted /docker of the memory hierarchy: relative to it.
        assert_eq!(h[1].own_dir(), PathBuf::from("/sys/fs/cgroup/memory/abc"));
        assert_eq!(h[2].controllers, vec!["name=systemd"]);
        assert_eq!(h[2].own_dir(), PathBuf::from("/sys/fs/cgroup/systemd/user.slice"));
        assert_eq!(h[3].own_dir(), PathBuf::from("/sys/fs/cgroup/unified/docker/abc"));
    }
}
