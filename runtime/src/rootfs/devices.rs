//! Device nodes (config-linux.md "Devices", "Default Devices") and the /dev
//! symlinks runc makes: /dev/fd, stdin, stdout, stderr, core, ptmx.

use super::paths::{self, Target};
use crate::error::{err, Context, Result};
use nix::errno::Errno;
use nix::sys::stat::{makedev, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};
use std::path::{Path, PathBuf};

/// A device node to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (config-linux.md "Default Devices").
pub fn defaults() -> Vec<Node> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, major, minor)| Node {
        path: PathBuf::from(p),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// A `linux.devices` entry as a node (mode 0666 and owner 0:0 by default).
pub fn node(d: &LinuxDevice) -> Result<Node> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return err(format!("device {}: type \"a\" is not a node type (c, b, u or p)", d.path().display()))
        }
    };
    if d.major() < 0 || d.minor() < 0 {
        return err(format!("device {}: negative major/minor {}:{}", d.path().display(), d.major(), d.minor()));
    }
    Ok(Node {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// The default devices, replaced by `linux.devices` entries of the same
/// path, then the other `linux.devices` entries, in order.
pub fn all(spec: &Spec) -> Result<Vec<Node>> {
    let wanted: Vec<Node> = match spec.linux().as_ref().and_then(|l| l.devices().as_ref()) {
        Some(devs) => devs.iter().map(node).collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let mut out: Vec<Node> = defaults().into_iter().filter(|d| !wanted.iter().any(|w| w.path == d.path)).collect();
    out.extend(wanted);
    Ok(out)
}

/// Makes `n` inside `root`. Where mknod is not permitted (a user
/// namespace) the host's node of the same path is bind-mounted instead,
/// as runc does. An existing file is left as it is.
pub fn create(root: &Path, n: &Node) -> Result<()> {
    let resolved = paths::secure_join(root, &n.path)?;
    let (Some(parent), Some(name)) = (resolved.parent(), resolved.file_name()) else {
        return err(format!("device {}: not a file path", n.path.display()));
    };
    paths::create_dirs(root, parent)?;
    let dir = Target::open(root, parent)?;
    let dev = if n.kind == SFlag::S_IFIFO { 0 } else { makedev(n.major, n.minor) };
    match nix::sys::stat::mknodat(dir.fd(), name, n.kind, Mode::from_bits_truncate(n.mode), dev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(()),
        Err(Errno::EPERM) => return bind_host(root, n, &resolved),
        Err(e) => return Err(e).ctx(|| format!("mknod {}", resolved.display())),
    }
    // mknod is subject to the umask: set the mode exactly.
    nix::sys::stat::fchmodat(
        dir.fd(),
        name,
        Mode::from_bits_truncate(n.mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .ctx(|| format!("chmod {}", resolved.display()))?;
    nix::unistd::fchownat(
        dir.fd(),
        name,
        Some(nix::unistd::Uid::from_raw(n.uid)),
        Some(nix::unistd::Gid::from_raw(n.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown {} to {}:{}", resolved.display(), n.uid, n.gid))
}

fn bind_host(root: &Path, n: &Node, resolved: &Path) -> Result<()> {
    if std::fs::symlink_metadata(&n.path).is_err() {
        return err(format!(
            "device {}: mknod not permitted (user namespace?) and the host has no {} to bind",
            n.path.display(),
            n.path.display()
        ));
    }
    paths::create_file(root, resolved)?;
    let t = Target::open(root, resolved)?;
    nix::mount::mount(Some(&n.path), t.mount_path(), None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>)
        .ctx(|| format!("bind mount device {} on {} (mknod not permitted)", n.path.display(), resolved.display()))
}

/// The /dev symlinks: fd, stdin, stdout, stderr, core (when the host has
/// /proc/kcore) and ptmx -> pts/ptmx (replacing any ptmx node).
pub fn links(root: &Path) -> Result<()> {
    let dev = paths::secure_join(root, Path::new("/dev"))?;
    paths::create_dirs(root, &dev)?;
    let dir = Target::open(root, &dev)?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    match nix::unistd::unlinkat(dir.fd(), "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).ctx(|| format!("remove {}/ptmx", dev.display())),
    }
    links.push(("pts/ptmx", "ptmx"));
    for (target, name) in links {
        match nix::unistd::symlinkat(target, dir.fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).ctx(|| format!("symlink {}/{name} -> {target}", dev.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_devices_override_defaults() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"devices":[
                {"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":384,"uid":5,"gid":6},
                {"path":"/dev/fuse","type":"c","major":10,"minor":229},
                {"path":"/dev/loop9","type":"b","major":7,"minor":9},
                {"path":"/dev/pipe","type":"p"},
                {"path":"/dev/uc","type":"u","major":1,"minor":3}]}}"#,
        )
        .unwrap();
        let all = all(&spec).unwrap();
        let paths: Vec<_> = all.iter().map(|n| n.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
                "/dev/null",
                "/dev/fuse",
                "/dev/loop9",
                "/dev/pipe",
                "/dev/uc"
            ]
        );
        assert_eq!((all[5].mode, all[5].uid, all[5].gid), (0o600, 5, 6));
        assert_eq!((all[6].kind, all[6].mode, all[6].uid), (SFlag::S_IFCHR, 0o666, 0));
        assert_eq!(all[7].kind, SFlag::S_IFBLK);
        assert_eq!(all[8].kind, SFlag::S_IFIFO);
        assert_eq!(all[9].kind, SFlag::S_IFCHR);
        assert_eq!(defaults().len(), 6);
    }

    #[test]
    fn type_a_is_refused() {
        let spec: Spec =
            serde_json::from_str(r#"{"ociVersion":"1.0.2","linux":{"devices":[{"path":"/dev/x","type":"a"}]}}"#)
                .unwrap();
        assert!(all(&spec).unwrap_err().0.contains("/dev/x"));
    }
}
