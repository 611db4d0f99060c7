//! `linux.cgroupsPath` -> the cgroup's path inside every hierarchy.

use super::DEFAULT_PARENT;
use crate::error::{err, Result};
use std::path::Path;

/// The cgroup path ("/skiff/<id>", "/system.slice/skiff-<id>.scope", ...)
/// for `linux.cgroupsPath`:
/// - absent: `/skiff/<id>` (`system.slice:skiff:<id>` with `systemd`);
/// - absolute: itself, relative to each hierarchy's root;
/// - relative: under `/skiff`;
/// - with `systemd`: `slice:prefix:name`, mapped to the cgroupfs path systemd
///   would use: `<expanded slice>/<prefix>-<name>.scope`.
///
/// `..` never climbs above the hierarchy root; the root itself is refused.
pub fn cgroup_path(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<String> {
    let given = match cgroups_path {
        None => None,
        Some(p) => match p.to_str() {
            Some("") => None,
            Some(s) => Some(s),
            None => return err(format!("cgroupsPath {}: not UTF-8", p.display())),
        },
    };
    let path = if systemd {
        let default = format!("system.slice:skiff:{id}");
        systemd_path(given.unwrap_or(&default))?
    } else {
        match given {
            None => format!("{DEFAULT_PARENT}/{id}"),
            Some(p) if p.starts_with('/') => p.to_string(),
            Some(p) => format!("{DEFAULT_PARENT}/{p}"),
        }
    };
    let clean = clean(&path);
    if clean == "/" {
        return err(format!(
            "cgroupsPath {:?}: resolves to the root of the cgroup hierarchy",
            given.unwrap_or("")
        ));
    }
    Ok(clean)
}

/// Lexically cleans an absolute path: no empty, `.` or `..` components
/// (`..` at the root stays at the root).
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `slice:prefix:name` -> `<expanded slice>/<prefix>-<name>.scope`, as runc's
/// systemd driver names the unit (a `name` ending in `.slice` is the unit
/// itself); an empty slice is `system.slice`.
pub fn systemd_path(spec: &str) -> Result<String> {
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() != 3 {
        return err(format!(
            "cgroupsPath {spec:?}: expected \"slice:prefix:name\" with --systemd-cgroup"
        ));
    }
    let (slice, prefix, name) = (parts[0], parts[1], parts[2]);
    if name.is_empty() || name.contains('/') || prefix.contains('/') {
        return err(format!("cgroupsPath {spec:?}: invalid unit name"));
    }
    let parent = expand_slice(if slice.is_empty() {
        "system.slice"
    } else {
        slice
    })?;
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(if parent == "/" {
        format!("/{unit}")
    } else {
        format!("{parent}/{unit}")
    })
}

/// systemd's slice nesting: `a-b-c.slice` -> `/a.slice/a-b.slice/a-b-c.slice`,
/// `-.slice` -> `/`. Empty components (`a--b.slice`, `-a.slice`) and `/` are
/// invalid, as in systemd.
pub fn expand_slice(slice: &str) -> Result<String> {
    const SUFFIX: &str = ".slice";
    let bad = || err(format!("invalid systemd slice name {slice:?}"));
    let Some(stem) = slice.strip_suffix(SUFFIX) else {
        return bad();
    };
    if stem.is_empty() || slice.contains('/') {
        return bad();
    }
    if stem == "-" {
        return Ok("/".to_string());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for comp in stem.split('-') {
        if comp.is_empty() {
            return bad();
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(comp);
        path.push_str(SUFFIX);
        prefix.push_str(comp);
        prefix.push('-');
    }
    Ok(path)
}
