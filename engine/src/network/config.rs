//! Per-engine network configuration: the global flags `--bridge NAME`,
//! `--subnet CIDR` and `--iptables=false`, stored in
//! `<root>/network/config.json` on first use so that later commands agree.

use super::ipam::{self, Subnet};
use crate::error::{err, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DEFAULT_BRIDGE: &str = "skiff0";
pub const DEFAULT_SUBNET: &str = "10.88.0.0/16";

/// The network flags as given on the command line (None: not given).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub bridge: Option<String>,
    pub subnet: Option<String>,
    pub iptables: Option<bool>,
}

impl Flags {
    pub fn given(&self) -> bool {
        self.bridge.is_some() || self.subnet.is_some() || self.iptables.is_some()
    }
}

/// The configuration in force for an engine root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    pub bridge: String,
    pub subnet: String,
    pub iptables: bool,
}

fn path(root: &Path) -> PathBuf {
    ipam::dir(root).join("config.json")
}

fn check_bridge_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.len() < 16 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        err(format!("invalid bridge name {name:?}: 1 to 15 characters of [a-zA-Z0-9_.-]"))
    }
}

impl Config {
    pub fn subnet(&self) -> Result<Subnet> {
        Subnet::parse(&self.subnet)
    }

    fn from_flags(f: &Flags) -> Result<Config> {
        let c = Config {
            bridge: f.bridge.clone().unwrap_or_else(|| DEFAULT_BRIDGE.into()),
            subnet: f.subnet.clone().unwrap_or_else(|| DEFAULT_SUBNET.into()),
            iptables: f.iptables.unwrap_or(true),
        };
        check_bridge_name(&c.bridge)?;
        let s = c.subnet()?;
        Ok(Config { subnet: s.to_string(), ..c })
    }

    fn stored(root: &Path) -> Result<Option<Config>> {
        let p = path(root);
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t).map(Some).ctx(|| format!("parse {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(|| format!("read {}", p.display())),
        }
    }

    /// The stored config checked against the flags given, else the one the
    /// flags (and defaults) make. Nothing is written.
    pub fn peek(root: &Path, f: &Flags) -> Result<Config> {
        match Self::stored(root)? {
            Some(c) => c.agree(root, f),
            None => Self::from_flags(f),
        }
    }

    /// Like [`peek`](Self::peek), storing the config when there is none yet.
    /// Call with the network lock held.
    pub fn resolve(root: &Path, f: &Flags) -> Result<Config> {
        if let Some(c) = Self::stored(root)? {
            return c.agree(root, f);
        }
        let c = Self::from_flags(f)?;
        let text = serde_json::to_vec_pretty(&c).ctx(|| "serialize the network config")?;
        std::fs::create_dir_all(ipam::dir(root)).ctx(|| format!("create {}", ipam::dir(root).display()))?;
        skiff_runtime::state::write_atomic(&path(root), &text)?;
        Ok(c)
    }

    fn agree(self, root: &Path, f: &Flags) -> Result<Config> {
        let given = Self::from_flags(f)?;
        let mismatch = |what: &str, stored: &str, flag: &str| {
            err(format!(
                "--{what} {flag} does not match this engine's network config ({what} {stored}, in {}); \
                 drop the flag, or remove every container and that file to change it",
                path(root).display()
            ))
        };
        if f.bridge.is_some() && given.bridge != self.bridge {
            return mismatch("bridge", &self.bridge, &given.bridge);
        }
        if f.subnet.is_some() && given.subnet != self.subnet {
            return mismatch("subnet", &self.subnet, &given.subnet);
        }
        if f.iptables.is_some() && given.iptables != self.iptables {
            return mismatch("iptables", &self.iptables.to_string(), &given.iptables.to_string());
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_once_then_checked() {
        let root = std::env::temp_dir().join(format!("skiff-engine-netcfg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let none = Flags::default();
        assert_eq!(Config::peek(&root, &none).unwrap(), Config { bridge: "skiff0".into(), subnet: "10.88.0.0/16".into(), iptables: true });
        let f = Flags { bridge: Some("skt1".into()), subnet: Some("10.234.1.0/24".into()), iptables: Some(false) };
        let c = Config::resolve(&root, &f).unwrap();
        assert_eq!((c.bridge.as_str(), c.subnet.as_str(), c.iptables), ("skt1", "10.234.1.0/24", false));
        // Later commands without flags get the stored config.
        assert_eq!(Config::resolve(&root, &none).unwrap(), c);
        let other = Flags { subnet: Some("10.234.2.0/24".into()), ..Default::default() };
        assert!(Config::resolve(&root, &other).unwrap_err().0.contains("does not match"));
        let bad = Flags { bridge: Some("way-too-long-bridge".into()), ..Default::default() };
        assert!(Config::peek(&root, &bad).unwrap_err().0.contains("invalid bridge name"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
