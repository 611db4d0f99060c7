//! Namespaces (config-linux.md "Namespaces"): which to create with clone(2)
//! and which to join by path with setns(2).

use crate::error::{err, Context, Result};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

pub fn flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => 0x80, // CLONE_NEWTIME
    }
}

/// The container's namespaces, split into new ones and ones to join.
#[derive(Debug, Default)]
pub struct Plan {
    /// CLONE_NEW* flags for namespaces created fresh.
    pub clone_flags: libc::c_int,
    /// (flag, path) of namespaces joined by path, user namespace first.
    pub join: Vec<(libc::c_int, PathBuf)>,
}

impl Plan {
    pub fn new(namespaces: &[LinuxNamespace]) -> Result<Plan> {
        let mut plan = Plan::default();
        let mut seen = 0;
        for ns in namespaces {
            let f = flag(ns.typ());
            if seen & f != 0 {
                return err(format!("namespace {:?} is listed twice", ns.typ()));
            }
            seen |= f;
            match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => plan.join.push((f, p.clone())),
                _ => plan.clone_flags |= f,
            }
        }
        // The user namespace decides what the others may do: join it first.
        plan.join.sort_by_key(|(f, _)| *f != libc::CLONE_NEWUSER);
        Ok(plan)
    }

    pub fn has(&self, f: libc::c_int) -> bool {
        self.clone_flags & f != 0 || self.join.iter().any(|(j, _)| *j == f)
    }

    /// Joins the namespaces given by path whose flag is in `which`.
    pub fn enter(&self, which: libc::c_int) -> Result<()> {
        for (f, path) in self.join.iter().filter(|(f, _)| which & f != 0) {
            let file = std::fs::File::open(path).ctx(|| format!("open namespace {}", path.display()))?;
            // SAFETY: setns on a valid fd.
            if unsafe { libc::setns(file.as_raw_fd(), *f) } != 0 {
                return Err(std::io::Error::last_os_error()).ctx(|| format!("setns {}", path.display()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(json: &str) -> Vec<LinuxNamespace> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn new_and_joined() {
        let p = Plan::new(&ns(r#"[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"},{"type":"user","path":"/u"},{"type":"mount"}]"#)).unwrap();
        assert_eq!(p.clone_flags, libc::CLONE_NEWPID | libc::CLONE_NEWNS);
        assert_eq!(p.join[0].0, libc::CLONE_NEWUSER);
        assert!(p.has(libc::CLONE_NEWNET) && !p.has(libc::CLONE_NEWUTS));
        assert!(Plan::new(&ns(r#"[{"type":"pid"},{"type":"pid"}]"#)).is_err());
    }
}
