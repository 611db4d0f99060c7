//! docker's prune commands: `container prune`, `volume prune [-a]`,
//! `image prune [-a]` and `system prune [-a] [--volumes]`, with docker's
//! confirmation prompt (skipped by `-f`), `--filter` (label, label!, until)
//! and output: a `Deleted Containers:` / `Deleted Networks:` /
//! `Deleted Volumes:` / `Deleted Images:` section per kind that lost
//! something, then `Total reclaimed space: SIZE`.

use crate::commands::images::{self as image_cmds, human_size};
use crate::containers::{self, Env};
use crate::error::{err, Context, Result};
use crate::images::{config, Details, Store};
use crate::record::Record;
use crate::volumes::{self, Meta};
use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

/// `--filter` values: every label condition must hold, and `until` is a
/// time the thing must have been created before.
#[derive(Debug, Default)]
pub struct Filters {
    labels: Vec<(bool, String, Option<String>)>,
    until: Option<i64>,
    shown: Vec<String>,
}

impl Filters {
    /// Parses `label=K[=V]`, `label!=K[=V]` and `until=TIME` (RFC 3339, Unix
    /// seconds, or a duration before now such as `24h`, `1h30m`, `90s`).
    pub fn parse(values: &[&str]) -> Result<Filters> {
        let mut f = Filters::default();
        for v in values {
            let Some((key, val)) = v.split_once('=') else {
                return err(format!("bad format of filter (expected name=value): {v}"));
            };
            match key {
                "label" | "label!" => {
                    let (k, want) = match val.split_once('=') {
                        Some((k, w)) => (k.to_string(), Some(w.to_string())),
                        None => (val.to_string(), None),
                    };
                    f.labels.push((key == "label", k, want));
                }
                "until" => f.until = Some(until(val)?),
                _ => return err(format!("invalid filter '{key}' (label=, label!=, until=)")),
            }
            f.shown.push(v.to_string());
        }
        f.shown.sort();
        Ok(f)
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(positive, k, want)| {
            let has = match want {
                Some(w) => labels.get(k).is_some_and(|v| v == w),
                None => labels.contains_key(k),
            };
            has == *positive
        })
    }

    fn created_before(&self, created: Option<i64>) -> bool {
        match self.until {
            Some(t) => created.is_some_and(|c| c < t),
            None => true,
        }
    }

    pub fn container(&self, r: &Record) -> bool {
        self.labels_match(&r.labels) && self.created_before(config::parse_rfc3339(&r.created))
    }

    pub fn volume(&self, m: &Meta) -> bool {
        self.labels_match(&m.labels)
    }

    pub fn image(&self, d: &Details) -> bool {
        let labels: BTreeMap<String, String> = d.config.run_config().labels.unwrap_or_default();
        self.labels_match(&labels) && self.created_before(d.config.created_unix())
    }
}

/// Seconds since the epoch of an `until` value.
pub(crate) fn until(v: &str) -> Result<i64> {
    Ok(crate::timestamp::parse(v, "until")?.div_euclid(1_000_000_000))
}

/// docker's prompt: `MESSAGE [y/N] ` on stdout, a line from stdin; only
/// `y`/`Y` goes on (end of input is a no, and the command does nothing).
pub fn confirm(message: &str) -> Result<bool> {
    let mut out = io::stdout().lock();
    write!(out, "{message} [y/N] ").and_then(|_| out.flush()).ctx(|| "write stdout")?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line).ctx(|| "read the answer from stdin")?;
    Ok(line.trim().eq_ignore_ascii_case("y"))
}

fn section(title: &str, items: &[(String, u64)]) -> Result<u64> {
    if items.is_empty() {
        return Ok(0);
    }
    let mut out = io::stdout().lock();
    writeln!(out, "Deleted {title}:").ctx(|| "write stdout")?;
    for (name, _) in items {
        writeln!(out, "{name}").ctx(|| "write stdout")?;
    }
    writeln!(out).ctx(|| "write stdout")?;
    Ok(items.iter().map(|(_, s)| s).sum())
}

fn total(bytes: u64) -> Result<()> {
    writeln!(io::stdout(), "Total reclaimed space: {}", human_size(bytes)).ctx(|| "write stdout")
}

fn prune_containers(env: &Env, f: &Filters) -> Result<u64> {
    section("Containers", &containers::prune(env, &|r| f.container(r))?)
}

/// The user-defined networks no container is on (their bridges go too).
pub fn prune_networks(env: &Env) -> Result<u64> {
    use crate::network::{named, on_network};
    let recs = crate::record::list(&env.root)?;
    let gone: Vec<(String, u64)> = named::list(&env.root)
        .into_iter()
        .filter(|n| !recs.iter().any(|r| on_network(r, &n.name)))
        .filter(|n| named::remove(&env.root, &n.name).is_ok())
        .map(|n| (n.name, 0))
        .collect();
    section("Networks", &gone)
}

fn prune_volumes(env: &Env, all: bool, f: &Filters) -> Result<u64> {
    section("Volumes", &volumes::prune(&env.root, all, &|_, m| f.volume(m))?)
}

/// `container prune [-f] [--filter ...]`.
pub fn container(env: &Env, force: bool, f: &Filters) -> Result<()> {
    if !force && !confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?")? {
        return Ok(());
    }
    total(prune_containers(env, f)?)
}

/// `volume prune [-a] [-f] [--filter label=...]`: anonymous volumes no
/// container uses; with `-a` every volume no container uses.
pub fn volume(env: &Env, all: bool, force: bool, f: &Filters) -> Result<()> {
    if f.until.is_some() {
        return err("invalid filter 'until'");
    }
    let warning = if all {
        "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?"
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?"
    };
    if !force && !confirm(warning)? {
        return Ok(());
    }
    total(prune_volumes(env, all, f)?)
}

/// `image prune [-a] [-f] [--filter ...]`.
pub fn image(store: &Store, all: bool, force: bool, f: &Filters) -> Result<()> {
    let warning = if all {
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
    } else {
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
    };
    if !force && !confirm(warning)? {
        return Ok(());
    }
    image_cmds::prune(store, all, &|d| f.image(d))
}

/// `system prune [-a] [--volumes] [-f] [--filter ...]`: stopped containers,
/// then (with `--volumes`) unused anonymous volumes, then dangling images
/// (with `-a` every image no container uses), as docker orders them.
pub fn system(env: &Env, store: &Store, all: bool, with_volumes: bool, force: bool, f: &Filters) -> Result<()> {
    if with_volumes && f.until.is_some() {
        return err("ERROR: The \"until\" filter is not supported with \"--volumes\"");
    }
    if !force {
        let mut m = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
        if with_volumes {
            m += "  - all anonymous volumes not used by at least one container\n";
        }
        m += if all { "  - all images without at least one container associated to them\n" } else { "  - all dangling images\n" };
        m += "  - all build cache\n";
        if !f.is_empty() {
            m += "\n  Items to be pruned will be filtered with:\n";
            for s in &f.shown {
                m += &format!("  - {s}\n");
            }
        }
        m += "\nAre you sure you want to continue?";
        if !confirm(&m)? {
            return Ok(());
        }
    }
    let mut freed = prune_containers(env, f)?;
    if f.is_empty() {
        freed += prune_networks(env)?;
    }
    if with_volumes {
        freed += prune_volumes(env, false, f)?;
    }
    freed += image_cmds::prune_section(store, all, &|d| f.image(d))?;
    crate::build::prune_cache(store)?;
    total(freed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = Filters::parse(&["label=a", "label!=b=2", "until=10m"]).unwrap();
        let mut labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
        assert!(f.labels_match(&labels));
        labels.insert("b".into(), "2".into());
        assert!(!f.labels_match(&labels));
        labels.insert("b".into(), "3".into());
        assert!(f.labels_match(&labels));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        assert!(f.created_before(Some(now - 3600)));
        assert!(!f.created_before(Some(now - 60)));
        assert!(!f.created_before(None));
        assert_eq!(until("1704164645").unwrap(), 1704164645);
        assert!(until("5m3").unwrap_err().0.contains("invalid until value"));
        assert!(Filters::parse(&["name=x"]).unwrap_err().0.contains("invalid filter 'name'"));
        assert!(Filters::parse(&["label"]).is_err());
    }
}
