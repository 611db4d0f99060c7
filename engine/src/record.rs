//! The engine's record of each container (`<root>/containers/<id>/container.json`),
//! ids, unique names under a file lock, and lookup by name or id prefix.

use crate::error::{err, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const RECORD: &str = "container.json";

/// One `-p` mapping as given and as bound.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Port {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: String,
}

/// One `-v`/`--mount`/`--tmpfs` mount.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Mount {
    /// "bind", "volume" or "tmpfs".
    pub kind: String,
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// tmpfs mount options (size=, mode=, exec...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Record {
    pub id: String,
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// `sha256:...` of the image config; the image store treats it as a reference.
    pub image_id: String,
    /// The process: entrypoint + cmd after docker's merging rules.
    pub args: Vec<String>,
    /// The entrypoint part of `args` (docker's Config.Entrypoint, for
    /// `commit`); None in records older than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub created: String,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    pub restart: String,
    pub auto_remove: bool,
    pub init: bool,
    pub tty: bool,
    pub interactive: bool,
    pub runtime: PathBuf,
    pub network: String,
    pub hostname: String,
    pub stop_signal: String,
    pub stop_timeout: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub privileged: bool,
    /// `--security-opt` values as given.
    #[serde(default)]
    pub security_opt: Vec<String>,
    /// The HEALTHCHECK in force (the image's with `--health-*` over it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::images::Healthcheck>,
    /// `--log-driver` ("": json-file; "local"; "none").
    #[serde(default)]
    pub log_driver: String,
    /// `--pid`, `--ipc`, `--uts` as given.
    #[serde(default)]
    pub pid_mode: String,
    #[serde(default)]
    pub ipc_mode: String,
    #[serde(default)]
    pub uts_mode: String,
    /// `--add-host` entries as `name:ip`.
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_options: Vec<String>,
    #[serde(default)]
    pub log_max_size: Option<String>,
    #[serde(default)]
    pub log_max_file: Option<u32>,
    pub working_dir: String,
    pub user: String,
    /// `--domainname`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domainname: String,
    /// `--network-alias`es: more names the container's network knows it by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `--ip`: the address asked for on a user-defined network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Networks joined by `network connect`, besides `network`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connected: Vec<Attachment>,
}

/// A network a container was connected to after its creation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Attachment {
    pub network: String,
    /// Its interface is `eth<slot>`, its host end `vsk<8 hex of the id><slot>`.
    pub slot: u8,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
}

pub fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    containers_dir(root).join(id)
}

/// An exclusive flock on `<root>/containers/.lock`, held while names are
/// checked and records created or renamed.
pub struct Lock(#[allow(dead_code)] crate::images::index::FileLock);

impl Lock {
    pub fn acquire(root: &Path) -> Result<Lock> {
        let d = containers_dir(root);
        std::fs::create_dir_all(&d).ctx(|| format!("create {}", d.display()))?;
        crate::images::index::FileLock::exclusive(&d.join(".lock")).map(Lock)
    }
}

/// A flock on `<root>/containers/.starting`: shared from the moment a
/// command makes or starts a container until it runs (so it is not seen
/// "created" or "exited" and pruned meanwhile), exclusive while `prune`
/// picks and removes the containers that are not running.
pub struct Starting(#[allow(dead_code)] crate::images::index::FileLock);

impl Starting {
    fn take(root: &Path, exclusive: bool) -> Result<Starting> {
        let d = containers_dir(root);
        std::fs::create_dir_all(&d).ctx(|| format!("create {}", d.display()))?;
        let p = d.join(".starting");
        let l = if exclusive { crate::images::index::FileLock::exclusive(&p) } else { crate::images::index::FileLock::shared(&p) };
        l.map(Starting)
    }

    pub fn shared(root: &Path) -> Result<Starting> {
        Starting::take(root, false)
    }

    pub fn exclusive(root: &Path) -> Result<Starting> {
        Starting::take(root, true)
    }
}

/// 64 hex digits from the kernel's random source, as docker's ids.
pub fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).ctx(|| "read /dev/urandom")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

const ADJECTIVES: [&str; 16] = [
    "brave", "calm", "eager", "fond", "keen", "lucid", "merry", "nimble", "proud", "quiet", "sharp", "steady",
    "swift", "tidy", "vivid", "wise",
];
const NOUNS: [&str; 16] = [
    "anchor", "buoy", "cutter", "dinghy", "ferry", "galley", "harbor", "jetty", "keel", "mast", "oar",
    "rudder", "schooner", "sloop", "tiller", "wharf",
];

/// A free docker-style name (`adjective_noun`, with a number when needed).
pub fn generate_name(root: &Path, id: &str) -> Result<String> {
    let seed = u64::from_str_radix(&id[..12.min(id.len())], 16).unwrap_or(0);
    for n in 0..1000u64 {
        let s = seed.wrapping_add(n * 7919);
        let mut name = format!("{}_{}", ADJECTIVES[(s % 16) as usize], NOUNS[((s / 16) % 16) as usize]);
        if n >= 256 {
            name += &format!("{n}");
        }
        if find_by_name(root, &name)?.is_none() {
            return Ok(name);
        }
    }
    err("no free container name")
}

/// docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
/// docker's object name pattern `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (containers,
/// volumes and networks; their length rules differ).
pub fn name_pattern(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

pub fn check_name(name: &str) -> Result<()> {
    if name.len() >= 2 && name_pattern(name) {
        Ok(())
    } else {
        err(format!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"))
    }
}

impl Record {
    pub fn load(dir: &Path) -> Result<Record> {
        let p = dir.join(RECORD);
        let text = std::fs::read_to_string(&p).ctx(|| format!("read {}", p.display()))?;
        serde_json::from_str(&text).ctx(|| format!("parse {}", p.display()))
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let d = dir(root, &self.id);
        let text = serde_json::to_vec_pretty(self).ctx(|| "serialize container record")?;
        skiff_runtime::state::write_atomic(&d.join(RECORD), &text)
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// Every container with a readable record, newest first.
pub fn list(root: &Path) -> Result<Vec<Record>> {
    let d = containers_dir(root);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).ctx(|| format!("read {}", d.display())),
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if let Ok(r) = Record::load(&e.path()) {
            out.push(r);
        }
    }
    out.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(out)
}

fn find_by_name(root: &Path, name: &str) -> Result<Option<Record>> {
    let name = name.trim_start_matches('/');
    Ok(list(root)?.into_iter().find(|r| r.name == name))
}

/// A container by full id, name, or unique id prefix (docker's lookup order).
pub fn find(root: &Path, reference: &str) -> Result<Record> {
    if reference.is_empty() {
        return err("No such container: (empty name)");
    }
    let all = list(root)?;
    if let Some(r) = all.iter().find(|r| r.id == reference) {
        return Ok(r.clone());
    }
    if let Some(r) = all.iter().find(|r| r.name == reference.trim_start_matches('/')) {
        return Ok(r.clone());
    }
    let matches: Vec<&Record> = all.iter().filter(|r| r.id.starts_with(reference)).collect();
    match matches.len() {
        1 => Ok(matches[0].clone()),
        0 => err(format!("No such container: {reference}")),
        _ => err(format!("multiple containers match the prefix {reference:?}: be more specific")),
    }
}

/// Creates the container's dir and record, the name checked unique under the lock.
pub fn create(root: &Path, mut rec: Record, name: Option<&str>) -> Result<Record> {
    let _lock = Lock::acquire(root)?;
    rec.name = match name {
        Some(n) => {
            let n = n.trim_start_matches('/');
            check_name(n)?;
            if let Some(other) = find_by_name(root, n)? {
                return err(format!(
                    "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                ));
            }
            n.to_string()
        }
        None => generate_name(root, &rec.id)?,
    };
    // The dir appears with its record or not at all: an engine killed here
    // leaves only a `.tmp-` dir, which `list` ignores and later runs remove.
    let d = dir(root, &rec.id);
    let tmp = containers_dir(root).join(format!(".tmp-{}", rec.id));
    std::fs::create_dir_all(&tmp).ctx(|| format!("create {}", tmp.display()))?;
    let text = serde_json::to_vec_pretty(&rec).ctx(|| "serialize container record")?;
    skiff_runtime::state::write_atomic(&tmp.join(RECORD), &text)?;
    std::fs::rename(&tmp, &d).ctx(|| format!("rename {} to {}", tmp.display(), d.display()))?;
    remove_stale_temps(root);
    Ok(rec)
}

/// `.tmp-` dirs older than a minute are from killed engines: remove them.
fn remove_stale_temps(root: &Path) {
    let Ok(entries) = std::fs::read_dir(containers_dir(root)) else { return };
    for e in entries.flatten() {
        let stale = e.file_name().to_string_lossy().starts_with(".tmp-")
            && e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|a| a.as_secs() > 60));
        if stale {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_lookup() {
        let root = std::env::temp_dir().join(format!("skiff-engine-rec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mk = |name: Option<&str>| {
            let rec = Record { id: new_id().unwrap(), created: skiff_runtime::state::now_rfc3339(), ..Default::default() };
            create(&root, rec, name)
        };
        let a = mk(Some("web")).unwrap();
        assert_eq!(a.id.len(), 64);
        assert!(mk(Some("web")).unwrap_err().0.contains("already in use"));
        assert!(mk(Some("-bad")).unwrap_err().0.contains("Invalid container name"));
        let b = mk(None).unwrap();
        assert!(b.name.contains('_'), "{}", b.name);
        assert_eq!(find(&root, "web").unwrap().id, a.id);
        assert_eq!(find(&root, &a.id[..8]).unwrap().id, a.id);
        assert_eq!(find(&root, &b.name).unwrap().id, b.id);
        assert!(find(&root, "nope").unwrap_err().0.contains("No such container: nope"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
