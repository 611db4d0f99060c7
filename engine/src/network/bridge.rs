//! The bridge and the containers' veth pairs, over netlink.
//!
//! Host side: bridge `<config.bridge>` with the gateway address, created on
//! first use; per container a veth `vsk<8 hex of the id>`, enslaved to the
//! bridge and tagged with the alias `skiff:<container dir>` so that a veth
//! whose container is gone can be recognised and deleted later. Container
//! side: the peer is created directly inside the container's namespace as
//! `eth0` (MAC derived from the address, so a reused address keeps its MAC
//! and no neighbour cache goes stale), configured from a thread that
//! setns()'d into that namespace.

use super::config::Config;
use super::ipam::Subnet;
use super::netlink::Netlink;
use crate::error::{err, Context, Error, Result};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

pub const ALIAS_PREFIX: &str = "skiff:";

/// The host end's name for a container's network `slot` (0: its own).
pub fn veth_name(id: &str, slot: u8) -> String {
    let base = format!("vsk{}", &id[..8.min(id.len())]);
    if slot == 0 {
        base
    } else {
        format!("{base}{slot}")
    }
}

/// The container's MAC: locally administered, from its address.
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x53, o[0], o[1], o[2], o[3]]
}

pub fn mac_text(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn random_mac() -> [u8; 6] {
    let mut m = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut m);
    }
    m[0] = (m[0] & 0xfe) | 0x02; // unicast, locally administered
    m
}

/// Makes sure the bridge exists, is up and has the gateway address.
/// Returns its index and whether it was created now.
pub fn ensure(nl: &mut Netlink, c: &Config, subnet: Subnet) -> Result<(u32, bool)> {
    let mut created = false;
    let link = match nl.link(&c.bridge)? {
        Some(l) => l,
        None => {
            match nl.add_bridge(&c.bridge, random_mac()) {
                Ok(()) => created = true,
                // Another engine (another state root) made it meanwhile.
                Err(e) if e.errno == libc::EEXIST => {}
                Err(e) => return Err(e.into()),
            }
            nl.link(&c.bridge)?.ok_or_else(|| Error(format!("bridge {} vanished after its creation", c.bridge)))?
        }
    };
    if link.kind != "bridge" {
        return err(format!("{} exists and is not a bridge (it is {:?}): pick another name with --bridge", c.bridge, link.kind));
    }
    nl.add_address(link.index, subnet.gateway(), subnet.prefix)?;
    if !link.up {
        nl.set_up(link.index)?;
    }
    Ok((link.index, created))
}

/// Runs `f` with a netlink socket inside the network namespace `netns`
/// (a thread that setns()'d into it; the engine's other threads stay put).
pub fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce(&mut Netlink) -> Result<T> + Send + 'static) -> Result<T> {
    let ns = std::fs::File::open(netns).ctx(|| format!("open {}", netns.display()))?;
    let shown = netns.display().to_string();
    std::thread::spawn(move || -> Result<T> {
        // SAFETY: setns on a valid namespace fd; it affects only this thread.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| format!("setns into {shown}"));
        }
        f(&mut Netlink::open()?)
    })
    .join()
    .map_err(|_| Error("network namespace thread panicked".into()))?
}

/// Plugs the container's namespace into the bridge: veth pair, `eth<slot>`
/// with `ip/prefix`, up; for slot 0 (its own network) the default route
/// via the gateway.
#[allow(clippy::too_many_arguments)]
pub fn attach(nl: &mut Netlink, bridge: u32, id: &str, slot: u8, dir: &Path, netns: &Path, ip: Ipv4Addr, subnet: Subnet) -> Result<()> {
    let host = veth_name(id, slot);
    let inner = format!("eth{slot}");
    let alias = format!("{ALIAS_PREFIX}{}", dir.display());
    let ns = std::fs::File::open(netns).ctx(|| format!("open {}", netns.display()))?;
    match nl.add_veth(&host, &alias, bridge, &inner, ns.as_raw_fd(), mac_of(ip)) {
        Err(e) if e.errno == libc::EEXIST => {
            // A veth of this name is left from a container that is gone (or
            // this one's earlier, interrupted attempt): replace it.
            let stale = nl.link(&host)?.is_some_and(|l| l.alias.is_empty() || l.alias == alias || owner_gone(&l.alias));
            if !stale {
                return err(format!("{}: {host} belongs to another container", e.err.0));
            }
            nl.del_link(&host)?;
            nl.add_veth(&host, &alias, bridge, &inner, ns.as_raw_fd(), mac_of(ip))?;
        }
        r => r?,
    }
    let gateway = subnet.gateway();
    in_netns(netns, move |nl| {
        let eth = nl.link(&inner)?.ok_or_else(|| Error(format!("{inner} is missing in the container's namespace")))?;
        nl.add_address(eth.index, ip, subnet.prefix)?;
        nl.set_up(eth.index)?;
        if slot == 0 {
            nl.add_default_route(gateway)?;
        }
        Ok(())
    })
}

/// Deletes the container's veth (both ends go); false when there was none
/// or it belongs to another container (same 8 hex digits of id).
pub fn detach(nl: &mut Netlink, id: &str, slot: u8, dir: &Path) -> Result<bool> {
    let name = veth_name(id, slot);
    let alias = format!("{ALIAS_PREFIX}{}", dir.display());
    match nl.link(&name)? {
        Some(l) if l.alias.is_empty() || l.alias == alias || owner_gone(&l.alias) => Ok(nl.del_link(&name)?),
        _ => Ok(false),
    }
}

/// True when the alias names a container dir whose record is gone.
fn owner_gone(alias: &str) -> bool {
    match alias.strip_prefix(ALIAS_PREFIX) {
        Some(dir) if !dir.is_empty() => !Path::new(dir).join(crate::record::RECORD).exists(),
        _ => false,
    }
}

/// Deletes the veths of containers of this root (their dirs are under
/// `containers`) that no longer exist. Returns their names.
pub fn sweep(nl: &mut Netlink, containers: &Path) -> Result<Vec<String>> {
    let prefix = format!("{ALIAS_PREFIX}{}/", containers.display());
    let mut gone = Vec::new();
    for l in nl.links()? {
        if l.kind == "veth" && l.alias.starts_with(&prefix) && owner_gone(&l.alias) && nl.del_link(&l.name)? {
            gone.push(l.name);
        }
    }
    Ok(gone)
}
