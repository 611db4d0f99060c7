//! Named volumes (`engine volume create|ls|rm|inspect`): directories under
//! `<root>/volumes/<name>/_data`, in use while a container record names them.

use crate::error::{err, Context, Result};
use crate::record;
use std::path::{Path, PathBuf};

pub fn dir(root: &Path, name: &str) -> PathBuf {
    root.join("volumes").join(name)
}

fn check(name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        err(format!("invalid volume name {name:?}: [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"))
    }
}

pub fn create(root: &Path, name: Option<&str>) -> Result<String> {
    let name = match name {
        Some(n) => n.to_string(),
        None => record::new_id()?,
    };
    check(&name)?;
    let d = dir(root, &name).join("_data");
    std::fs::create_dir_all(&d).ctx(|| format!("create {}", d.display()))?;
    Ok(name)
}

pub fn list(root: &Path) -> Result<Vec<String>> {
    let d = root.join("volumes");
    let mut names = Vec::new();
    match std::fs::read_dir(&d) {
        Ok(entries) => {
            for e in entries.flatten() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).ctx(|| format!("read {}", d.display())),
    }
    names.sort();
    Ok(names)
}

/// Containers whose mounts use the volume.
fn users(root: &Path, name: &str) -> Result<Vec<String>> {
    let data = dir(root, name).join("_data").display().to_string();
    Ok(record::list(root)?.into_iter().filter(|r| r.mounts.iter().any(|m| m.source == data)).map(|r| r.name).collect())
}

pub fn remove(root: &Path, name: &str, force: bool) -> Result<()> {
    check(name)?;
    let d = dir(root, name);
    if !d.exists() {
        return err(format!("get {name}: no such volume"));
    }
    let used = users(root, name)?;
    if !used.is_empty() && !force {
        return err(format!("remove {name}: volume is in use - [{}]", used.join(", ")));
    }
    std::fs::remove_dir_all(&d).ctx(|| format!("remove {}", d.display()))
}

pub fn inspect(root: &Path, name: &str) -> Result<serde_json::Value> {
    check(name)?;
    let d = dir(root, name);
    if !d.exists() {
        return err(format!("get {name}: no such volume"));
    }
    Ok(serde_json::json!({"Driver": "local", "Mountpoint": d.join("_data"), "Name": name, "Scope": "local"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_remove() {
        let root = std::env::temp_dir().join(format!("skiff-vol-{}", std::process::id()));
        assert_eq!(create(&root, Some("data")).unwrap(), "data");
        assert!(create(&root, Some("../x")).is_err());
        assert_eq!(list(&root).unwrap(), ["data"]);
        assert_eq!(inspect(&root, "data").unwrap()["Name"], "data");
        remove(&root, "data", false).unwrap();
        assert!(remove(&root, "data", false).unwrap_err().0.contains("no such volume"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
