//! Address allocation on the bridge's subnet: `<root>/network/addresses.json`
//! (address -> container id), read and rewritten under an exclusive flock on
//! `<root>/network/.lock`, written atomically. An address whose container no
//! longer exists (its record is gone: the engine was killed mid-`rm`, or
//! mid-`run` before the record) is reclaimed by the next allocation.

use crate::error::{err, Context, Error, Result};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// An IPv4 subnet: network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub net: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses `A.B.C.D/N` (8 <= N <= 30, host bits zero).
    pub fn parse(s: &str) -> Result<Subnet> {
        let bad = |why: &str| err(format!("invalid subnet {s:?}: {why} (expected e.g. 10.88.0.0/16)"));
        let Some((a, n)) = s.split_once('/') else { return bad("no /prefix") };
        let Ok(net) = a.parse::<Ipv4Addr>() else { return bad("bad address") };
        let Ok(prefix) = n.parse::<u8>() else { return bad("bad prefix length") };
        if !(8..=30).contains(&prefix) {
            return bad("the prefix length must be between 8 and 30");
        }
        let sub = Subnet { net, prefix };
        if u32::from(net) & !sub.mask() != 0 {
            return bad(&format!("host bits are set (the network is {})", Ipv4Addr::from(u32::from(net) & sub.mask())));
        }
        Ok(sub)
    }

    pub fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix as u32)
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net) + 1)
    }

    /// The addresses containers get: after the gateway, before broadcast.
    pub fn hosts(&self) -> std::ops::RangeInclusive<u32> {
        let n = u32::from(self.net);
        (n + 2)..=(n | !self.mask()) - 1
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.net)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

pub fn dir(root: &Path) -> PathBuf {
    root.join("network")
}

/// The exclusive lock on `<root>/network/`, held for any read-modify-write
/// of the network state (config, addresses, /etc/hosts entries).
pub struct Lock(#[allow(dead_code)] crate::images::index::FileLock);

impl Lock {
    pub fn acquire(root: &Path) -> Result<Lock> {
        let d = dir(root);
        std::fs::create_dir_all(&d).ctx(|| format!("create {}", d.display()))?;
        crate::images::index::FileLock::exclusive(&d.join(".lock")).map(Lock)
    }
}

/// The allocation table. Load and save only while holding [`Lock`].
#[derive(Debug, Default)]
pub struct Addresses {
    pub by_ip: BTreeMap<Ipv4Addr, String>,
}

fn table(root: &Path) -> PathBuf {
    dir(root).join("addresses.json")
}

/// True when the container `id` still has its record.
pub fn container_exists(root: &Path, id: &str) -> bool {
    crate::record::dir(root, id).join(crate::record::RECORD).exists()
}

impl Addresses {
    /// Reads the table (readers without the lock see a complete one: it is
    /// replaced by rename).
    pub fn load(root: &Path) -> Result<Addresses> {
        let p = table(root);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Addresses::default()),
            Err(e) => return Err(e).ctx(|| format!("read {}", p.display())),
        };
        let raw: BTreeMap<String, String> = serde_json::from_str(&text).ctx(|| format!("parse {}", p.display()))?;
        let mut by_ip = BTreeMap::new();
        for (k, v) in raw {
            let ip = k.parse().map_err(|_| Error(format!("{}: bad address {k:?}", p.display())))?;
            by_ip.insert(ip, v);
        }
        Ok(Addresses { by_ip })
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let raw: BTreeMap<String, &String> = self.by_ip.iter().map(|(k, v)| (k.to_string(), v)).collect();
        let text = serde_json::to_vec_pretty(&raw).ctx(|| "serialize the address table")?;
        skiff_runtime::state::write_atomic(&table(root), &text)
    }

    pub fn of(&self, id: &str) -> Option<Ipv4Addr> {
        self.by_ip.iter().find(|(_, v)| *v == id).map(|(k, _)| *k)
    }

    /// The container's address on `subnet` (a container on several
    /// networks has one on each).
    pub fn of_in(&self, id: &str, subnet: Subnet) -> Option<Ipv4Addr> {
        self.by_ip.iter().find(|(k, v)| *v == id && subnet.contains(**k)).map(|(k, _)| *k)
    }

    /// Drops the addresses of containers that no longer exist; returns them.
    pub fn reclaim(&mut self, root: &Path) -> Vec<Ipv4Addr> {
        let dead: Vec<Ipv4Addr> = self.by_ip.iter().filter(|(_, id)| !container_exists(root, id)).map(|(ip, _)| *ip).collect();
        for ip in &dead {
            self.by_ip.remove(ip);
        }
        dead
    }

    /// Address `ip` for the container (`--ip`): refused when another has it.
    pub fn allocate_exact(&mut self, subnet: Subnet, ip: Ipv4Addr, id: &str) -> Result<Ipv4Addr> {
        if !subnet.contains(ip) || !subnet.hosts().contains(&u32::from(ip)) {
            return err(format!("invalid address {ip}: it is not a host address of the network's subnet {subnet}"));
        }
        match self.by_ip.get(&ip) {
            Some(other) if other != id => err(format!("Address already in use: {ip} (container {})", &other[..12.min(other.len())])),
            _ => {
                self.by_ip.retain(|k, v| v != id || !subnet.contains(*k));
                self.by_ip.insert(ip, id.to_string());
                Ok(ip)
            }
        }
    }

    /// The container's address: the one it has, else the lowest free one.
    pub fn allocate(&mut self, subnet: Subnet, id: &str) -> Result<Ipv4Addr> {
        if let Some(ip) = self.of_in(id, subnet) {
            return Ok(ip);
        }
        for n in subnet.hosts() {
            let ip = Ipv4Addr::from(n);
            if let std::collections::btree_map::Entry::Vacant(v) = self.by_ip.entry(ip) {
                v.insert(id.to_string());
                return Ok(ip);
            }
        }
        err(format!("no free address left in {subnet} ({} in use)", self.by_ip.len()))
    }

    /// Frees every address of the container; returns them.
    pub fn release(&mut self, id: &str) -> Vec<Ipv4Addr> {
        let ips: Vec<Ipv4Addr> = self.by_ip.iter().filter(|(_, v)| *v == id).map(|(k, _)| *k).collect();
        for ip in &ips {
            self.by_ip.remove(ip);
        }
        ips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.88.0.0/16").unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(*s.hosts().start(), u32::from(Ipv4Addr::new(10, 88, 0, 2)));
        assert_eq!(*s.hosts().end(), u32::from(Ipv4Addr::new(10, 88, 255, 254)));
        assert!(s.contains(Ipv4Addr::new(10, 88, 3, 4)) && !s.contains(Ipv4Addr::new(10, 89, 0, 1)));
        assert_eq!(Subnet::parse("10.234.7.0/24").unwrap().to_string(), "10.234.7.0/24");
        for bad in ["10.88.0.0", "10.88.0.1/16", "10.88.0.0/31", "10.88.0.0/4", "x/16", "10.88.0.0/x"] {
            assert!(Subnet::parse(bad).unwrap_err().0.contains("invalid subnet"), "{bad}");
        }
    }

    #[test]
    fn allocate_release_reclaim() {
        let root = std::env::temp_dir().join(format!("skiff-engine-ipam-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let live = |id: &str| {
            let d = crate::record::dir(&root, id);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(crate::record::RECORD), "{}").unwrap();
        };
        let s = Subnet::parse("10.1.2.0/30").unwrap(); // one host address: .2
        let _l = Lock::acquire(&root).unwrap();
        let mut a = Addresses::load(&root).unwrap();
        live("a");
        assert_eq!(a.allocate(s, "a").unwrap(), Ipv4Addr::new(10, 1, 2, 2));
        assert_eq!(a.allocate(s, "a").unwrap(), Ipv4Addr::new(10, 1, 2, 2), "idempotent");
        assert!(a.allocate(s, "b").unwrap_err().0.contains("no free address"));
        a.save(&root).unwrap();
        let mut a = Addresses::load(&root).unwrap();
        assert_eq!(a.of("a"), Some(Ipv4Addr::new(10, 1, 2, 2)));
        assert_eq!(a.release("a"), [Ipv4Addr::new(10, 1, 2, 2)]);
        assert_eq!(a.allocate(s, "b").unwrap(), Ipv4Addr::new(10, 1, 2, 2));
        // "b" has no record: a crashed run. The next allocation reclaims it.
        assert_eq!(a.reclaim(&root), vec![Ipv4Addr::new(10, 1, 2, 2)]);
        assert_eq!(a.allocate(s, "a").unwrap(), Ipv4Addr::new(10, 1, 2, 2));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
