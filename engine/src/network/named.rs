//! docker's user-defined networks (`network create NAME`): each is a bridge
//! of its own (`sk-<12 hex of its id>`, made when its first container
//! starts) on a subnet of its own, kept in `<root>/network/networks/
//! NAME.json`. Containers on one network reach each other by name (their
//! /etc/hosts), and only the containers of their network.

use super::config::{Config, Flags};
use super::ipam::{self, Subnet};
use crate::error::{err, Context, Result};
use crate::record;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub config: Config,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The names docker keeps for its own networks.
pub const RESERVED: [&str; 4] = ["bridge", "host", "none", "default"];

fn dir(root: &Path) -> PathBuf {
    ipam::dir(root).join("networks")
}

fn file(root: &Path, name: &str) -> PathBuf {
    dir(root).join(format!("{name}.json"))
}

fn check_name(name: &str) -> Result<()> {
    if name.len() > 64 || !record::name_pattern(name) {
        return err(format!("invalid network name {name:?}: [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"));
    }
    if RESERVED.contains(&name) {
        return err(format!("network name {name} is reserved: docker's own network has it"));
    }
    Ok(())
}

/// The network called `name`, if there is one.
pub fn load(root: &Path, name: &str) -> Result<Option<Network>> {
    if check_name(name).is_err() {
        return Ok(None);
    }
    let p = file(root, name);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map(Some).ctx(|| format!("parse {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx(|| format!("read {}", p.display())),
    }
}

/// Every network of this root, by name.
pub fn list(root: &Path) -> Vec<Network> {
    let mut names: Vec<String> = std::fs::read_dir(dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(String::from))
        .collect();
    names.sort();
    names.iter().filter_map(|n| load(root, n).ok().flatten()).collect()
}

/// The bridge config a container on network `name` gets ("bridge": the
/// engine's own). Call with the network lock held.
pub fn config(root: &Path, flags: &Flags, name: &str) -> Result<Config> {
    if name == "bridge" {
        return Config::resolve(root, flags);
    }
    load(root, name)?.map(|n| n.config).ok_or_else(|| crate::error::Error(format!("network {name} not found")))
}

/// The configs of every bridge of this root: the engine's, then the
/// user-defined networks'.
pub fn all(root: &Path, flags: &Flags) -> Vec<Config> {
    Config::peek(root, flags).into_iter().chain(list(root).into_iter().map(|n| n.config)).collect()
}

fn overlaps(a: Subnet, b: Subnet) -> bool {
    a.contains(b.net) || b.contains(a.net)
}

/// Subnets this host routes already (its interfaces' and others), from
/// /proc/net/route: a new network must not shadow them.
fn host_subnets() -> Vec<Subnet> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(|v| Ipv4Addr::from(u32::from_be(v)));
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, mask) = (hex(f.get(1)?)?, hex(f.get(7)?)?);
            let prefix = u32::from(mask).count_ones() as u8;
            (prefix > 0).then_some(Subnet { net: dest, prefix })
        })
        .collect()
}

/// `network create [--subnet CIDR] NAME`: checked and stored under the
/// network lock; the subnet, when not given, is the first free /24 of
/// 10.89.0.0/16.
pub fn create(root: &Path, flags: &Flags, name: &str, subnet: Option<&str>, labels: BTreeMap<String, String>) -> Result<Network> {
    check_name(name)?;
    let _lock = ipam::Lock::acquire(root)?;
    if load(root, name)?.is_some() {
        return err(format!("network with name {name} already exists"));
    }
    let default = Config::resolve(root, flags)?;
    let mut taken: Vec<Subnet> = list(root).iter().filter_map(|n| n.config.subnet().ok()).collect();
    taken.push(default.subnet()?);
    let subnet = match subnet {
        Some(s) => {
            let s = Subnet::parse(s)?;
            if let Some(t) = taken.iter().find(|t| overlaps(**t, s)) {
                return err(format!("invalid pool request: Pool overlaps with other one on this address space ({s} and {t})"));
            }
            s
        }
        None => {
            taken.extend(host_subnets());
            (0..=255u32)
                .map(|n| Subnet { net: Ipv4Addr::from(0x0a59_0000 | n << 8), prefix: 24 })
                .find(|s| !taken.iter().any(|t| overlaps(*t, *s)))
                .ok_or_else(|| crate::error::Error("no free /24 left in 10.89.0.0/16: give --subnet".into()))?
        }
    };
    let id = record::new_id()?;
    let n = Network {
        name: name.to_string(),
        id: id.clone(),
        created: skiff_runtime::state::now_rfc3339(),
        config: Config { bridge: format!("sk-{}", &id[..12]), subnet: subnet.to_string(), iptables: default.iptables },
        labels,
    };
    std::fs::create_dir_all(dir(root)).ctx(|| format!("create {}", dir(root).display()))?;
    let text = serde_json::to_vec_pretty(&n).ctx(|| "serialize the network")?;
    skiff_runtime::state::write_atomic(&file(root, name), &text)?;
    skiff_shim::lifecycle::emit(root, "network", "create", &n.id, &[("name", name), ("type", "bridge")]);
    Ok(n)
}

/// `network rm NAME`: refused while a container is on it; its bridge and
/// NAT rules go with it.
pub fn remove(root: &Path, name: &str) -> Result<()> {
    let _lock = ipam::Lock::acquire(root)?;
    let Some(n) = load(root, name)? else {
        if RESERVED.contains(&name) {
            return err(format!("{name} is a pre-defined network and cannot be removed"));
        }
        return err(format!("network {name} not found"));
    };
    let users: Vec<String> = record::list(root).unwrap_or_default().into_iter().filter(|r| super::on_network(r, &n.name)).map(|r| r.name).collect();
    if !users.is_empty() {
        return err(format!("error while removing network: network {name} id {} has active endpoints ({})", n.id, users.join(", ")));
    }
    super::netlink::Netlink::open()?.del_link(&n.config.bridge)?;
    if let Err(e) = super::nat::disable(&n.config, &all(root, &Flags::default())) {
        eprintln!("WARNING: removing the NAT rules of {}: {}", n.config.bridge, e.0);
    }
    let p = file(root, name);
    std::fs::remove_file(&p).ctx(|| format!("remove {}", p.display()))?;
    skiff_shim::lifecycle::emit(root, "network", "destroy", &n.id, &[("name", name), ("type", "bridge")]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_subnets_and_overlaps() {
        assert!(check_name("web_1.a-b").is_ok());
        assert!(check_name("-x").is_err() && check_name("").is_err() && check_name("a/b").is_err());
        assert!(check_name("bridge").unwrap_err().0.contains("reserved"));
        let s = |t: &str| Subnet::parse(t).unwrap();
        assert!(overlaps(s("10.88.0.0/16"), s("10.88.3.0/24")));
        assert!(overlaps(s("10.88.3.0/24"), s("10.88.0.0/16")));
        assert!(!overlaps(s("10.89.0.0/24"), s("10.88.0.0/16")));
        // the host's own routes are read (lo has none; a default route is /0, skipped)
        assert!(host_subnets().iter().all(|s| s.prefix > 0));
    }

    #[test]
    fn create_list_and_remove() {
        let root = std::env::temp_dir().join(format!("skiff-engine-named-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let f = Flags { bridge: Some("sktnamed".into()), subnet: Some("10.235.0.0/24".into()), iptables: Some(false) };
        let a = create(&root, &f, "front", Some("10.235.1.0/24"), BTreeMap::new()).unwrap();
        assert_eq!(a.config.subnet, "10.235.1.0/24");
        assert!(a.config.bridge.starts_with("sk-") && a.config.bridge.len() == 15 && !a.config.iptables);
        assert!(create(&root, &f, "front", None, BTreeMap::new()).unwrap_err().0.contains("already exists"));
        assert!(create(&root, &f, "back", Some("10.235.0.0/16"), BTreeMap::new()).unwrap_err().0.contains("overlaps"));
        let b = create(&root, &f, "back", None, BTreeMap::new()).unwrap();
        assert!(b.config.subnet.starts_with("10.89.") && b.config.subnet.ends_with(".0/24"), "{}", b.config.subnet);
        assert_eq!(list(&root).iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["back", "front"]);
        assert_eq!(config(&root, &f, "front").unwrap(), a.config);
        remove(&root, "front").unwrap();
        remove(&root, "back").unwrap();
        assert!(remove(&root, "front").unwrap_err().0.contains("not found"));
        assert!(remove(&root, "bridge").unwrap_err().0.contains("pre-defined"));
        assert!(list(&root).is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
