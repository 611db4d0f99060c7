//! `--device HOST[:CONTAINER][:PERMS]`: a host device node made in the
//! container (OCI `linux.devices`) and allowed by its device cgroup
//! (`linux.resources.devices`), as docker does; how serial ports, GPIO and
//! USB gadgets reach containers on small hosts.

use crate::error::{err, Context, Result};
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// One device to pass through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub host: String,
    pub path: String,
    /// 'c' or 'b'.
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Cgroup access: some of "rwm".
    pub access: String,
}

fn is_access(s: &str) -> bool {
    !s.is_empty() && s.len() <= 3 && s.chars().all(|c| "rwm".contains(c))
}

/// Parses docker's `--device` value and looks the node up on the host.
pub fn parse(spec: &str) -> Result<Device> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, path, access) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, a] if is_access(a) => (*h, *h, *a),
        [h, p] => (*h, *p, "rwm"),
        [h, p, a] => (*h, *p, *a),
        _ => return err(format!("invalid device specification: {spec}")),
    };
    if !is_access(access) {
        return err(format!("invalid device mode: {access} (some of r, w, m) in --device {spec}"));
    }
    if !host.starts_with('/') || !path.starts_with('/') {
        return err(format!("invalid device specification: {spec}: paths must be absolute"));
    }
    let md = std::fs::metadata(host).ctx(|| format!("error gathering device information while adding device {host:?}"))?;
    let kind = match md.file_type() {
        t if t.is_char_device() => 'c',
        t if t.is_block_device() => 'b',
        _ => return err(format!("error gathering device information while adding device {host:?}: not a device node")),
    };
    let rdev = md.rdev();
    Ok(Device {
        host: host.into(),
        path: path.into(),
        kind,
        major: libc::major(rdev) as u64,
        minor: libc::minor(rdev) as u64,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        access: access.into(),
    })
}

impl Device {
    /// The `linux.devices` entry.
    pub fn node(&self) -> Value {
        json!({"path": self.path, "type": self.kind.to_string(), "major": self.major, "minor": self.minor,
               "fileMode": self.mode, "uid": self.uid, "gid": self.gid})
    }

    /// The `linux.resources.devices` rule that lets the container use it.
    pub fn rule(&self) -> Value {
        json!({"allow": true, "type": self.kind.to_string(), "major": self.major, "minor": self.minor, "access": self.access})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_as_docker_reads_them() {
        let d = parse("/dev/null").unwrap();
        assert_eq!((d.path.as_str(), d.kind, d.major, d.minor, d.access.as_str()), ("/dev/null", 'c', 1, 3, "rwm"));
        let d = parse("/dev/zero:/dev/z").unwrap();
        assert_eq!((d.path.as_str(), d.minor, d.access.as_str()), ("/dev/z", 5, "rwm"));
        let d = parse("/dev/zero:r").unwrap();
        assert_eq!((d.path.as_str(), d.access.as_str()), ("/dev/zero", "r"));
        let d = parse("/dev/zero:/dev/z:rw").unwrap();
        assert_eq!(d.rule(), json!({"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rw"}));
        assert_eq!(d.node()["fileMode"], 0o666);
        assert!(parse("/dev/zero:/dev/z:rx").unwrap_err().0.contains("invalid device mode: rx"));
        assert!(parse("/no/such/dev").unwrap_err().0.contains("\"/no/such/dev\""));
        assert!(parse("/etc/hostname").unwrap_err().0.contains("not a device node"));
        assert!(parse("/dev/null:dev/n").unwrap_err().0.contains("absolute"));
        assert!(parse("/a:/b:rw:x").unwrap_err().0.contains("invalid device specification"));
    }
}
