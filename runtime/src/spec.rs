//! config.json: loading a bundle's spec with errors that name the problem,
//! and the template `runtime spec` writes (runc's, so `runtime spec` +
//! a rootfs gives a runnable bundle).

use crate::error::{err, Context, Result};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// Loads `<bundle>/config.json` and checks what every operation needs.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).ctx(|| format!("read {}", path.display()))?;
    let mut value: serde_json::Value = serde_json::from_str(&text).ctx(|| format!("parse {}", path.display()))?;
    // Seccomp names newer than oci-spec 0.6.7 knows (SCMP_ACT_KILL_THREAD, arches).
    crate::seccomp::compat(&mut value);
    let spec: Spec = serde_json::from_value(value).ctx(|| format!("parse {}", path.display()))?;
    let version = spec.version();
    if !version.starts_with("1.") {
        return err(format!("{}: unsupported ociVersion {version:?} (1.x supported)", path.display()));
    }
    let Some(process) = spec.process() else {
        return err(format!("{}: no process to run (\"process\" is missing)", path.display()));
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return err(format!("{}: process.args must not be empty", path.display()));
    }
    if !process.cwd().is_absolute() {
        return err(format!("{}: process.cwd {:?} must be an absolute path", path.display(), process.cwd()));
    }
    rootfs(bundle, &spec)?;
    Ok(spec)
}

/// The container's root directory: `root.path`, relative to the bundle.
pub fn rootfs(bundle: &Path, spec: &Spec) -> Result<PathBuf> {
    let Some(root) = spec.root() else {
        return err(format!("{}/config.json: \"root\" is missing", bundle.display()));
    };
    let p = bundle.join(root.path());
    if !p.is_dir() {
        return err(format!("rootfs {} does not exist or is not a directory", p.display()));
    }
    Ok(p)
}

/// Writes runc's default config.json into `bundle` (refusing to overwrite).
pub fn write_template(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return err(format!("File {} exists. Remove it first", path.display()));
    }
    let mut v: serde_json::Value = serde_json::from_str(TEMPLATE).ctx(|| "parse built-in template")?;
    if rootless {
        make_rootless(&mut v);
    }
    let text = serde_json::to_string_pretty(&v).ctx(|| "serialize template")?;
    std::fs::write(&path, text + "\n").ctx(|| format!("write {}", path.display()))
}

/// runc's `spec --rootless` changes: a user namespace mapping the caller's
/// ids to root, no network namespace, no cgroup limits, sysfs bound.
fn make_rootless(v: &mut serde_json::Value) {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let linux = &mut v["linux"];
    linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
        ns.push(serde_json::json!({"type": "user"}));
    }
    if let Some(obj) = linux.as_object_mut() {
        obj.remove("resources");
    }
    if let Some(mounts) = v["mounts"].as_array_mut() {
        mounts.retain(|m| m["type"] != "cgroup");
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| !o.as_str().unwrap_or("").starts_with("gid="));
            }
        }
    }
}

const TEMPLATE: &str = r#"{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": true,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "runc",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
      "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("skiff-spec-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("rootfs")).unwrap();
        d
    }

    #[test]
    fn template_loads_back_and_refuses_overwrite() {
        let b = bundle("tpl");
        write_template(&b, false).unwrap();
        let spec = load(&b).unwrap();
        assert_eq!(spec.process().as_ref().unwrap().args().as_ref().unwrap(), &["sh"]);
        assert!(write_template(&b, false).unwrap_err().0.contains("exists"));
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn rootless_template_has_a_user_namespace() {
        let b = bundle("rootless");
        write_template(&b, true).unwrap();
        let spec = load(&b).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.uid_mappings().as_ref().is_some_and(|m| m.len() == 1));
        let ns: Vec<String> = linux.namespaces().as_ref().unwrap().iter().map(|n| format!("{:?}", n.typ())).collect();
        assert!(ns.contains(&"User".to_string()) && !ns.contains(&"Network".to_string()), "{ns:?}");
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn bad_bundles_name_the_problem() {
        let b = bundle("bad");
        assert!(load(&b).unwrap_err().0.contains("config.json"));
        std::fs::write(b.join("config.json"), "{not json").unwrap();
        assert!(load(&b).unwrap_err().0.contains("parse"));
        std::fs::write(b.join("config.json"), r#"{"ociVersion":"1.0.2","root":{"path":"nope"},"process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}}}"#).unwrap();
        assert!(load(&b).unwrap_err().0.contains("rootfs"), "{}", load(&b).unwrap_err());
        std::fs::write(b.join("config.json"), r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"}}"#).unwrap();
        assert!(load(&b).unwrap_err().0.contains("no process"));
        std::fs::remove_dir_all(&b).unwrap();
    }
}
