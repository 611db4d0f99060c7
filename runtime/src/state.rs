//! Per-container state under the runtime root (`--root`, default
//! /run/skiff-runtime): `<root>/<id>/state.json`, written atomically, and the
//! exec FIFO whose existence means "created, not started".

use crate::cgroups::Cgroup;
use crate::error::{err, Context, Result};
use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/run/skiff-runtime";

/// The state root without `--root`: [`DEFAULT_ROOT`] for root; for another
/// user `$XDG_RUNTIME_DIR/skiff-runtime` (as runc uses `$XDG_RUNTIME_DIR/runc`),
/// else `/tmp/skiff-runtime-<uid>`, which must be the user's own.
pub fn default_root() -> Result<PathBuf> {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return Ok(PathBuf::from(DEFAULT_ROOT));
    }
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
        return Ok(Path::new(&xdg).join("skiff-runtime"));
    }
    let p = PathBuf::from(format!("/tmp/skiff-runtime-{uid}"));
    // In a world-writable /tmp another user could have made it first.
    if let Ok(m) = std::fs::symlink_metadata(&p) {
        use std::os::unix::fs::MetadataExt;
        if !m.is_dir() || m.uid() != uid || m.mode() & 0o022 != 0 {
            return err(format!(
                "state root {} is not a directory private to uid {uid}: remove it or pass --root",
                p.display()
            ));
        }
    }
    Ok(p)
}

pub const FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What the runtime remembers of a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (clock ticks since boot) to tell it from a reused pid.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Cgroup,
    #[serde(default)]
    pub hooks: Option<Hooks>,
    #[serde(default)]
    pub oci_version: String,
}

/// The OCI state (runtime.md "State"), plus runc's extra fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: &'static str,
    pub pid: i32,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'static str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

/// Container ids: what runc accepts, so an id is always a safe file name.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        err(format!("invalid container id {id:?}: use letters, digits and _+-."))
    }
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Saved {
    pub fn load(root: &Path, id: &str) -> Result<Saved> {
        check_id(id)?;
        let p = dir(root, id).join("state.json");
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return err(format!("container {id} does not exist")),
            Err(e) => return Err(e).ctx(|| format!("read {}", p.display())),
        };
        serde_json::from_str(&text).ctx(|| format!("parse {}", p.display()))
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let d = dir(root, &self.id);
        let text = serde_json::to_vec(self).ctx(|| "serialize state")?;
        write_volatile(&d.join("state.json"), &text)
    }

    /// Current status, from the process and the exec FIFO.
    pub fn status(&self, root: &Path) -> Status {
        if self.pid <= 0 || !alive(self.pid, self.pid_start) {
            return Status::Stopped;
        }
        if dir(root, &self.id).join(FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn oci<'a>(&'a self, status: Status) -> OciState<'a> {
        OciState {
            oci_version: if self.oci_version.is_empty() { "1.0.2" } else { &self.oci_version },
            id: &self.id,
            status: status.as_str(),
            pid: if status == Status::Stopped { 0 } else { self.pid },
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: "",
            annotations: &self.annotations,
        }
    }
}

/// Writes `data` to `path` through a temp file, fsync and rename: readers
/// see the old or the new content, and the new one survives a power cut.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_replacing(path, data, true)
}

/// The same without fsync, for state that means nothing after a reboot
/// (the runtime's: its containers die with the host). Readers still never
/// see half a file; a disk flush per `create` would cost more than the rest
/// of it when the state root is not on tmpfs.
pub fn write_volatile(path: &Path, data: &[u8]) -> Result<()> {
    write_replacing(path, data, false)
}

fn write_replacing(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(data).ctx(|| format!("write {}", tmp.display()))?;
    if durable {
        f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))
}

/// Fields of /proc/<pid>/stat after the command name.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Start time of `pid` in clock ticks (field 22 of /proc/<pid>/stat).
pub fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// True while `pid` runs and is the process we started (not a zombie, not reused).
pub fn alive(pid: i32, start: u64) -> bool {
    match stat_fields(pid) {
        None => false,
        Some(f) => {
            let state = f.first().map(String::as_str).unwrap_or("X");
            state != "Z" && state != "X" && f.get(19).and_then(|s| s.parse::<u64>().ok()) == Some(start)
        }
    }
}

/// RFC 3339 UTC time with nanoseconds, as Go's time.RFC3339Nano prints it.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1_2.3+x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951782400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1795392000 + 3661, 0), "2026-11-23T01:01:01.000000000Z");
    }

    #[test]
    fn own_process_is_alive_and_reuse_is_detected() {
        let me = std::process::id() as i32;
        let st = start_time(me).unwrap();
        assert!(alive(me, st));
        assert!(!alive(me, st + 1));
        assert!(!alive(i32::MAX, 0));
    }
}
