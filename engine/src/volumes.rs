//! Volumes (`engine volume create|ls|rm|inspect|prune`): directories under
//! `<root>/volumes/<name>/_data`, in use while a container record names them.
//!
//! ```text
//! <root>/volumes/
//!   <name>/_data         what containers mount
//!   <name>/volume.json   CreatedAt and Labels (volumes made before it existed have none)
//!   .tmp-<name>/         a volume being made; renamed to <name> when whole
//!   .lock                shared while volumes are made and the containers naming
//!                        them created; exclusive while volumes are removed
//! ```
//! As docker 23+, a volume made without a name (`run -v /path`, `volume
//! create` with no name) is anonymous: a 64-hex name and the label
//! `com.docker.volume.anonymous`. `volume prune` and `system prune --volumes`
//! remove only anonymous volumes, `volume prune -a` every unused one; a
//! volume any container names (running or not) is never removed. The lock
//! keeps a volume from being pruned between its creation and the record of
//! the container that uses it.

use crate::error::{err, Context, Result};
use crate::images::index::FileLock;
use crate::record;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// docker's label on volumes made without a name.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
const META: &str = "volume.json";

pub fn volumes_dir(root: &Path) -> PathBuf {
    root.join("volumes")
}

pub fn dir(root: &Path, name: &str) -> PathBuf {
    volumes_dir(root).join(name)
}

/// What containers mount: `<root>/volumes/<name>/_data`.
pub fn data_dir(root: &Path, name: &str) -> PathBuf {
    dir(root, name).join("_data")
}

/// The volume a mount source (`.../volumes/<name>/_data`) of this root names.
pub fn name_of(root: &Path, source: &str) -> Option<String> {
    let rel = Path::new(source).strip_prefix(volumes_dir(root)).ok()?;
    let mut parts = rel.components();
    let name = parts.next()?.as_os_str().to_str()?.to_string();
    (parts.as_path() == Path::new("_data")).then_some(name)
}

/// Shared: volumes may be made and containers naming them created.
pub fn hold(root: &Path) -> Result<FileLock> {
    lock(root, false)
}

fn lock(root: &Path, exclusive: bool) -> Result<FileLock> {
    let d = volumes_dir(root);
    std::fs::create_dir_all(&d).ctx(|| format!("create {}", d.display()))?;
    let p = d.join(".lock");
    if exclusive {
        FileLock::exclusive(&p)
    } else {
        FileLock::shared(&p)
    }
}

pub fn check(name: &str) -> Result<()> {
    if name.len() >= 2 && record::name_pattern(name) {
        Ok(())
    } else {
        err(format!("invalid volume name {name:?}: [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"))
    }
}

/// A volume's metadata, as `volume inspect` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Meta {
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Meta {
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

fn read_meta(root: &Path, name: &str) -> Meta {
    std::fs::read(dir(root, name).join(META)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// The volume `name`, made when missing; None makes a new anonymous one.
/// The caller holds [`hold`]. Returns its name.
pub fn ensure(root: &Path, name: Option<&str>) -> Result<String> {
    ensure_labelled(root, name, &BTreeMap::new())
}

/// [`ensure`] with `volume create --label`s for a new volume.
fn ensure_labelled(root: &Path, name: Option<&str>, labels: &BTreeMap<String, String>) -> Result<String> {
    let (name, anonymous) = match name {
        Some(n) => (n.to_string(), false),
        None => (record::new_id()?, true),
    };
    check(&name)?;
    let d = dir(root, &name);
    if d.join("_data").is_dir() {
        return Ok(name);
    }
    // It appears whole (data dir and labels) or not at all.
    let tmp = volumes_dir(root).join(format!(".tmp-{name}"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("_data")).ctx(|| format!("create {}", tmp.display()))?;
    let mut meta = Meta { created_at: skiff_runtime::state::now_rfc3339(), labels: labels.clone() };
    if anonymous {
        meta.labels.insert(ANONYMOUS_LABEL.into(), String::new());
    }
    let made = (|| {
        let text = serde_json::to_vec_pretty(&meta).ctx(|| "serialize volume.json")?;
        skiff_runtime::state::write_atomic(&tmp.join(META), &text)?;
        std::fs::rename(&tmp, &d).ctx(|| format!("rename {} to {}", tmp.display(), d.display()))
    })();
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        if d.join("_data").is_dir() {
            return Ok(name); // made by another engine meanwhile
        }
    }
    made.map(|_| name)
}

/// `volume create [NAME]`.
pub fn create(root: &Path, name: Option<&str>, labels: &BTreeMap<String, String>) -> Result<String> {
    let _hold = hold(root)?;
    let n = ensure_labelled(root, name, labels)?;
    skiff_shim::lifecycle::emit(root, "volume", "create", &n, &[("driver", "local")]);
    Ok(n)
}

/// Every volume's name, sorted.
pub fn list(root: &Path) -> Result<Vec<String>> {
    let d = volumes_dir(root);
    let mut names = Vec::new();
    match std::fs::read_dir(&d) {
        Ok(entries) => {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if !n.starts_with('.') && e.path().is_dir() {
                    names.push(n);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).ctx(|| format!("read {}", d.display())),
    }
    names.sort();
    Ok(names)
}

/// Volume name -> names of the containers whose records mount it.
/// `volume ls [-q] [--format] [-f dangling=|name=|label=|driver=]`.
pub fn ls(root: &Path, quiet: bool, format: Option<&str>, filters: &[String]) -> Result<()> {
    let mut given = Vec::new();
    for f in filters {
        match f.split_once('=') {
            Some((k @ ("dangling" | "name" | "label" | "driver"), v)) => given.push((k, v)),
            _ => return err(format!("invalid filter '{f}' (dangling=, name=, label=, driver=)")),
        }
    }
    let used = users(root)?;
    let mut rows = Vec::new();
    for n in list(root)? {
        let meta = read_meta(root, &n);
        let keep = |k: &str, v: &str| match k {
            "dangling" => used.contains_key(&n) != (v == "true" || v == "1"),
            "name" => n.contains(v),
            "driver" => v == "local",
            _ => crate::flags::label_matches(v, |l| meta.labels.get(l).cloned()),
        };
        if crate::flags::filters_pass(&given, keep) {
            rows.push(serde_json::json!({"Driver": "local", "Name": n, "Scope": "local", "Mountpoint": dir(root, &n).join("_data"),
                "Labels": meta.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")}));
        }
    }
    let text = if quiet {
        rows.iter().map(|r| format!("{}\n", r["Name"].as_str().unwrap_or(""))).collect()
    } else {
        crate::template::list_or(&rows, format, "table {{.Driver}}\t{{.Name}}", &[("Name", "VOLUME NAME")])?
    };
    std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()).ctx(|| "write stdout")
}

fn users(root: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in record::list(root)? {
        for m in r.mounts.iter().filter(|m| m.kind == "volume") {
            if let Some(n) = name_of(root, &m.source) {
                out.entry(n).or_default().push(r.name.clone());
            }
        }
    }
    Ok(out)
}

pub fn remove(root: &Path, name: &str, force: bool) -> Result<()> {
    check(name)?;
    let _lock = lock(root, true)?;
    let d = dir(root, name);
    if !d.exists() {
        return err(format!("get {name}: no such volume"));
    }
    let used = users(root)?.remove(name).unwrap_or_default();
    if !used.is_empty() && !force {
        return err(format!("remove {name}: volume is in use - [{}]", used.join(", ")));
    }
    std::fs::remove_dir_all(&d).ctx(|| format!("remove {}", d.display()))?;
    skiff_shim::lifecycle::emit(root, "volume", "destroy", name, &[("driver", "local")]);
    Ok(())
}

pub fn inspect(root: &Path, name: &str) -> Result<serde_json::Value> {
    check(name)?;
    let d = dir(root, name);
    if !d.exists() {
        return err(format!("get {name}: no such volume"));
    }
    let meta = read_meta(root, name);
    Ok(serde_json::json!({
        "CreatedAt": meta.created_at,
        "Driver": "local",
        "Labels": meta.labels,
        "Mountpoint": d.join("_data"),
        "Name": name,
        "Options": null,
        "Scope": "local",
    }))
}

/// `volume prune [-a]`: under the exclusive lock, removes the volumes no
/// container names that `pick` (given the name and labels) accepts, only
/// anonymous ones unless `all`. Returns each removed name with its size.
pub fn prune(root: &Path, all: bool, pick: &dyn Fn(&str, &Meta) -> bool) -> Result<Vec<(String, u64)>> {
    let _lock = lock(root, true)?;
    remove_stale_temps(root);
    let used = users(root)?;
    let mut out = Vec::new();
    for name in list(root)? {
        let meta = read_meta(root, &name);
        if used.contains_key(&name) || !(all || meta.anonymous()) || !pick(&name, &meta) {
            continue;
        }
        let d = dir(root, &name);
        let size = crate::commands::images::disk_usage(&d.join("_data"));
        std::fs::remove_dir_all(&d).ctx(|| format!("remove {}", d.display()))?;
        out.push((name, size));
    }
    Ok(out)
}

/// `rm -v`, `run --rm`: removes the anonymous volumes among `names` that no
/// container names any more (a named volume always stays).
pub fn remove_anonymous(root: &Path, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let _lock = lock(root, true)?;
    let used = users(root)?;
    for n in names {
        if used.contains_key(n) || !read_meta(root, n).anonymous() {
            continue;
        }
        let d = dir(root, n);
        std::fs::remove_dir_all(&d).ctx(|| format!("remove {}", d.display()))?;
    }
    Ok(())
}

/// `.tmp-` dirs left by killed engines (the caller holds the lock exclusively).
fn remove_stale_temps(root: &Path) {
    let Ok(entries) = std::fs::read_dir(volumes_dir(root)) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(".tmp-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Mount, Record};

    #[test]
    fn create_list_remove() {
        let root = std::env::temp_dir().join(format!("skiff-vol-{}", std::process::id()));
        assert_eq!(create(&root, Some("data"), &BTreeMap::new()).unwrap(), "data");
        assert!(create(&root, Some("../x"), &BTreeMap::new()).is_err());
        assert_eq!(list(&root).unwrap(), ["data"]);
        assert_eq!(inspect(&root, "data").unwrap()["Name"], "data");
        remove(&root, "data", false).unwrap();
        assert!(remove(&root, "data", false).unwrap_err().0.contains("no such volume"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn prune_takes_unused_anonymous_volumes_and_with_all_named_ones() {
        let root = std::env::temp_dir().join(format!("skiff-vol-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let anon = create(&root, None, &BTreeMap::new()).unwrap();
        assert_eq!(anon.len(), 64);
        assert_eq!(inspect(&root, &anon).unwrap()["Labels"][ANONYMOUS_LABEL], "");
        let used_anon = create(&root, None, &BTreeMap::new()).unwrap();
        create(&root, Some("named"), &BTreeMap::new()).unwrap();
        create(&root, Some("used"), &BTreeMap::new()).unwrap();
        std::fs::write(data_dir(&root, &anon).join("f"), "12345").unwrap();
        // A container record (not running: records are all that count) naming two of them.
        let mount = |n: &str| Mount { kind: "volume".into(), source: data_dir(&root, n).display().to_string(), destination: "/d".into(), read_only: false, ..Default::default() };
        let rec = Record { id: record::new_id().unwrap(), mounts: vec![mount("used"), mount(&used_anon)], ..Default::default() };
        record::create(&root, rec, Some("holder")).unwrap();
        assert_eq!(name_of(&root, &data_dir(&root, "used").display().to_string()).as_deref(), Some("used"));

        let gone = prune(&root, false, &|_, _| true).unwrap();
        assert_eq!(gone, [(anon.clone(), 5)]);
        let mut left = vec![used_anon.clone(), "named".to_string(), "used".to_string()];
        left.sort();
        assert_eq!(list(&root).unwrap(), left);
        assert!(prune(&root, true, &|n, _| n != "named").unwrap().is_empty());
        assert_eq!(prune(&root, true, &|_, _| true).unwrap(), [("named".to_string(), 0)]);
        remove_anonymous(&root, &[used_anon.clone(), "used".into()]).unwrap();
        assert_eq!(list(&root).unwrap().len(), 2, "a volume in use went");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
