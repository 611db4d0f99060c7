//! Container networking (DESIGN.md, step 2 of `engine run`).
//!
//! - `bridge` (the default): a private network namespace plugged into the
//!   engine's bridge by a veth pair, an address from the file-locked
//!   allocator, a default route via the gateway, /etc/hosts with the
//!   container's address and the other containers of the bridge; outbound NAT
//!   through iptables when present. Spoken over netlink ([`netlink`]).
//! - `none`: a private namespace with only `lo` up.
//! - `host`: the host's namespace.
//! - `container:ID`: the namespace of another container.
//!
//! `-p` is served by the proxy dialing 127.0.0.1 inside the container's
//! namespace (`--netns`), for every mode alike: it needs no route, bridge or
//! firewall rule on the host, and works for `none` too.

mod bridge;
pub mod config;
mod hosts;
pub mod ipam;
pub mod named;
pub mod nat;
pub mod netlink;

pub use config::{Config, Flags};

use crate::error::{err, Context, Error, Result};
use crate::record::{self, Port, Record};
use ipam::Addresses;
use std::ffi::CString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Checks a `--network` value; `container:NAME` becomes `container:<id>`.
pub fn mode(root: &Path, spec: &str) -> Result<String> {
    match spec {
        "" | "bridge" | "default" => Ok("bridge".into()),
        "none" | "host" => Ok(spec.into()),
        s => match s.strip_prefix("container:") {
            Some(r) if !r.is_empty() => {
                let target = record::find(root, r).map_err(|e| Error(format!("--network {s}: {}", e.0)))?;
                Ok(format!("container:{}", target.id))
            }
            _ if named::load(root, s)?.is_some() => Ok(s.to_string()),
            _ => err(format!("network {spec} not found")),
        },
    }
}

/// On a bridge: the engine's (`bridge`) or a user-defined network's.
fn bridged(rec: &Record) -> bool {
    !matches!(rec.network.as_str(), "host" | "none") && !rec.network.starts_with("container:")
}

/// The network namespace a container's processes join: None for the host's.
pub fn netns_path(root: &Path, rec: &Record) -> Option<PathBuf> {
    let mut rec = rec.clone();
    // container:X may name a container that itself joined another one.
    for _ in 0..8 {
        match rec.network.strip_prefix("container:") {
            None if rec.network == "host" => return None,
            None => return Some(record::dir(root, &rec.id).join("netns")),
            Some(id) => rec = Record::load(&record::dir(root, id)).ok()?,
        }
    }
    None
}

/// Creates the container's network (after its record, before its bundle):
/// the namespace and, on a bridge, the veth, address and route; writes its
/// /etc/hosts, /etc/hostname and /etc/resolv.conf. Returns the namespace
/// path for config.json (None: the host's).
pub fn prepare(root: &Path, flags: &Flags, dir: &Path, rec: &Record) -> Result<Option<PathBuf>> {
    if let Some(target) = rec.network.strip_prefix("container:") {
        let tdir = record::dir(root, target);
        let ns = netns_path(root, rec);
        if let Some(ns) = &ns {
            if !ns.exists() {
                return err(format!("cannot join the network of container {target}: it has no network namespace ({} is missing)", ns.display()));
            }
        }
        // Its files, as docker shares them: hard links to the same inodes,
        // so the lines the bridge adds to its /etc/hosts show here too.
        write_etc(dir, rec)?;
        for f in ["hosts", "resolv.conf"] {
            let (src, dst) = (tdir.join(f), dir.join(f));
            if src.exists() {
                std::fs::remove_file(&dst).ctx(|| format!("remove {}", dst.display()))?;
                if std::fs::hard_link(&src, &dst).is_err() {
                    std::fs::copy(&src, &dst).ctx(|| format!("copy {} to {}", src.display(), dst.display()))?;
                }
            }
        }
        return Ok(ns);
    }
    if rec.network == "host" {
        write_etc(dir, rec)?;
        return Ok(None);
    }
    let ns = create_netns(dir)?;
    write_etc(dir, rec)?;
    for ep in endpoints(rec) {
        join(root, flags, dir, rec, &ns, &ep)?;
    }
    Ok(Some(ns))
}

/// Brings a container's network back when its namespace is gone (a host
/// reboot): a new namespace and, on bridges, the veths again with the
/// addresses the container already holds. `host` and `container:` need nothing.
pub fn recreate(root: &Path, flags: &Flags, dir: &Path, rec: &Record) -> Result<()> {
    if rec.network == "host" || rec.network.starts_with("container:") {
        return Ok(());
    }
    remove_netns(dir)?;
    let ns = create_netns(dir)?;
    for ep in endpoints(rec) {
        join(root, flags, dir, rec, &ns, &ep)?;
    }
    Ok(())
}

/// One bridged network of a container: its own (slot 0) or one joined
/// with `network connect`.
struct Endpoint<'a> {
    network: &'a str,
    slot: u8,
    aliases: &'a [String],
    ip: Option<Ipv4Addr>,
}

fn endpoints(rec: &Record) -> Vec<Endpoint<'_>> {
    let own = bridged(rec).then_some(Endpoint { network: &rec.network, slot: 0, aliases: &rec.aliases, ip: rec.ip });
    own.into_iter().chain(rec.connected.iter().map(|a| Endpoint { network: &a.network, slot: a.slot, aliases: &a.aliases, ip: a.ip })).collect()
}

/// True when the container is on network `net` (its own or connected).
pub fn on_network(r: &Record, net: &str) -> bool {
    endpoints(r).iter().any(|e| e.network == net)
}

/// The names network `net` knows a container by: name, hostname, aliases there.
fn names_on<'a>(r: &'a Record, net: &str) -> Vec<&'a str> {
    let aliases = endpoints(r).into_iter().find(|e| e.network == net).map(|e| e.aliases).unwrap_or_default();
    [r.name.as_str(), r.hostname.as_str()].into_iter().chain(aliases.iter().map(String::as_str)).collect()
}

/// The addresses of each other container, by id.
fn by_container(table: &Addresses, except: &str) -> std::collections::BTreeMap<String, Vec<Ipv4Addr>> {
    let mut m: std::collections::BTreeMap<String, Vec<Ipv4Addr>> = Default::default();
    for (ip, id) in table.by_ip.iter().filter(|(_, id)| id.as_str() != except) {
        m.entry(id.clone()).or_default().push(*ip);
    }
    m
}

/// Plugs the container into one of its networks: the bridge (made, with
/// its NAT, when missing), an address, /etc/hosts lines both ways with the
/// network's other containers, the veth.
fn join(root: &Path, flags: &Flags, dir: &Path, rec: &Record, ns: &Path, ep: &Endpoint) -> Result<()> {
    let mut nl = netlink::Netlink::open()?;
    let (bridge, ip, subnet) = {
        let _lock = ipam::Lock::acquire(root)?;
        let cfg = named::config(root, flags, ep.network)?;
        let subnet = cfg.subnet()?;
        let (bridge, created) = bridge::ensure(&mut nl, &cfg, subnet)?;
        if created {
            if let Err(e) = nat::enable(&cfg).and_then(|_| nat::isolate(&cfg, &named::all(root, flags))) {
                eprintln!("WARNING: outbound NAT for {} on {}: {}", cfg.subnet, cfg.bridge, e.0);
            }
        }
        let mut table = Addresses::load(root)?;
        let mut stale = table.reclaim(root);
        let ip = match ep.ip {
            Some(want) => table.allocate_exact(subnet, want, &rec.id)?,
            None => table.allocate(subnet, &rec.id)?,
        };
        table.save(root)?;
        // The other containers of the network learn this one's name; lines
        // of reclaimed addresses (their containers are gone) go everywhere.
        stale.push(ip);
        let me = hosts::names_line(ip, names_on(rec, ep.network).into_iter());
        let (mut peers, mut peer_ips) = (Vec::new(), Vec::new());
        for (pid, ips) in by_container(&table, &rec.id) {
            let Ok(r) = Record::load(&record::dir(root, &pid)) else { continue };
            let there = ips.into_iter().find(|a| subnet.contains(*a)).filter(|_| on_network(&r, ep.network));
            let _ = hosts::edit(&record::dir(root, &pid), &stale, there.map(|_| me.as_str()));
            if let Some(pip) = there {
                peers.push(hosts::names_line(pip, names_on(&r, ep.network).into_iter()));
                peer_ips.push(pip);
            }
        }
        if ep.slot == 0 {
            let own = [rec.hostname.as_str(), rec.name.as_str()].into_iter().chain(rec.aliases.iter().map(String::as_str));
            hosts::write_own(dir, &rec.extra_hosts, &hosts::names_line(ip, own), &peers)?;
        } else {
            hosts::edit(dir, &peer_ips, Some(&peers.concat()))?;
        }
        (bridge, ip, subnet)
    };
    bridge::attach(&mut nl, bridge, &rec.id, ep.slot, dir, ns, ip, subnet)
}

/// True when `ns` is a mounted network namespace (not the empty file a
/// reboot leaves).
pub fn netns_mounted(ns: &Path) -> bool {
    let p = ns.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(4) == Some(p.as_str())))
}

/// `network connect [--ip] [--alias] NET CONTAINER`: the container joins
/// another network, at once when its namespace is there (else when it
/// starts); kept in its record for restarts and reboots.
pub fn connect(root: &Path, flags: &Flags, rec: &mut Record, net: &str, ip: Option<&str>, aliases: &[String]) -> Result<()> {
    let net = if net == "default" { "bridge" } else { net };
    if !bridged(rec) {
        return err(format!("container {} cannot be connected to another network: its network mode is {}", rec.name, rec.network));
    }
    if net != "bridge" && named::load(root, net)?.is_none() {
        return err(format!("network {net} not found"));
    }
    if on_network(rec, net) {
        return err(format!("endpoint with name {} already exists in network {net}", rec.name));
    }
    if net == "bridge" && (ip.is_some() || !aliases.is_empty()) {
        return err("user specified IP address and network-scoped aliases are supported on user defined networks only");
    }
    let ip = ip.map(|a| a.parse::<Ipv4Addr>().map_err(|_| Error(format!("invalid IPv4 address: {a}")))).transpose()?;
    let Some(slot) = (1..=9u8).find(|s| !rec.connected.iter().any(|a| a.slot == *s)) else {
        return err(format!("container {} is on 10 networks already", rec.name));
    };
    rec.connected.push(record::Attachment { network: net.to_string(), slot, aliases: aliases.to_vec(), ip });
    let dir = record::dir(root, &rec.id);
    let ns = dir.join("netns");
    if netns_mounted(&ns) {
        let joined = endpoints(rec).last().map(|ep| join(root, flags, &dir, rec, &ns, ep)).unwrap_or(Ok(()));
        if let Err(e) = joined {
            let a = rec.connected.pop().unwrap_or_default();
            let _ = leave(root, &dir, &rec.id, &a);
            return Err(e);
        }
    }
    rec.save(root)?;
    network_event(root, net, "connect", &rec.id);
    Ok(())
}

/// A network's connect/disconnect event (docker's: the network's id, the container).
fn network_event(root: &Path, net: &str, action: &str, container: &str) {
    let id = named::load(root, net).ok().flatten().map_or_else(|| net.to_string(), |n| n.id);
    skiff_shim::lifecycle::emit(root, "network", action, &id, &[("container", container), ("name", net), ("type", "bridge")]);
}

/// `network disconnect NET CONTAINER`: undoes [`connect`].
pub fn disconnect(root: &Path, rec: &mut Record, net: &str) -> Result<()> {
    let Some(pos) = rec.connected.iter().position(|a| a.network == net) else {
        if rec.network == net {
            return err(format!("container {} cannot be disconnected from {net}, the network it was created with", rec.name));
        }
        return err(format!("container {} is not connected to network {net}", rec.name));
    };
    let a = rec.connected.remove(pos);
    leave(root, &record::dir(root, &rec.id), &rec.id, &a)?;
    rec.save(root)?;
    network_event(root, net, "disconnect", &rec.id);
    Ok(())
}

/// A connected network's veth, address and /etc/hosts lines go.
fn leave(root: &Path, dir: &Path, id: &str, a: &record::Attachment) -> Result<()> {
    if let Err(e) = netlink::Netlink::open().and_then(|mut nl| bridge::detach(&mut nl, id, a.slot, dir)) {
        eprintln!("WARNING: {}", e.0);
    }
    let _lock = ipam::Lock::acquire(root)?;
    let subnet = named::config(root, &Flags::default(), &a.network)?.subnet()?;
    let mut table = Addresses::load(root)?;
    let Some(mine) = table.of_in(id, subnet) else { return Ok(()) };
    table.by_ip.remove(&mine);
    table.save(root)?;
    let theirs: Vec<Ipv4Addr> = table.by_ip.keys().filter(|ip| subnet.contains(**ip)).copied().collect();
    for pid in by_container(&table, id).keys() {
        let _ = hosts::edit(&record::dir(root, pid), &[mine], None);
    }
    hosts::edit(dir, &theirs, None)
}

/// Undoes [`prepare`]'s bridge part: lets the veths go, releases the
/// addresses and takes the container's lines out of the others' /etc/hosts.
/// Safe to repeat; each step is skipped when already done.
pub fn teardown(root: &Path, dir: &Path, rec: &Record) -> Result<()> {
    if endpoints(rec).is_empty() || !ipam::dir(root).exists() {
        return Ok(());
    }
    // While the namespace is there, its removal (which follows) takes the
    // pairs with it: the kernel deletes a veth when its namespace dies, off
    // our critical path (deleting it here costs 15-40 ms of RCU waits). A
    // veth an unremovable namespace keeps is swept by `ps` once the record
    // is gone. Deleting it here is not fatal either.
    if !dir.join("netns").exists() {
        for ep in endpoints(rec) {
            if let Err(e) = netlink::Netlink::open().and_then(|mut nl| bridge::detach(&mut nl, &rec.id, ep.slot, dir)) {
                eprintln!("WARNING: {}", e.0);
            }
        }
    }
    let _lock = ipam::Lock::acquire(root)?;
    let mut table = Addresses::load(root)?;
    let mine = table.release(&rec.id);
    if !mine.is_empty() {
        table.save(root)?;
        for pid in by_container(&table, &rec.id).keys() {
            let _ = hosts::edit(&record::dir(root, pid), &mine, None);
        }
    }
    Ok(())
}

/// Repairs what an engine killed mid-way left: addresses of containers that
/// are gone (and their /etc/hosts lines), veths of containers that are gone.
pub fn repair(root: &Path) -> Result<()> {
    if !ipam::dir(root).exists() {
        return Ok(());
    }
    {
        let _lock = ipam::Lock::acquire(root)?;
        let mut table = Addresses::load(root)?;
        let dead = table.reclaim(root);
        if !dead.is_empty() {
            table.save(root)?;
            for pid in table.by_ip.values() {
                let _ = hosts::edit(&record::dir(root, pid), &dead, None);
            }
        }
    }
    bridge::sweep(&mut netlink::Netlink::open()?, &record::containers_dir(root)).map(drop)
}

/// `inspect`'s NetworkSettings: ports, namespace, address on the bridge.
pub fn settings(root: &Path, rec: &Record, ports: serde_json::Value) -> serde_json::Value {
    let sandbox = netns_path(root, rec).map(|p| p.display().to_string()).unwrap_or_default();
    let mut v = serde_json::json!({
        "Ports": ports, "SandboxKey": sandbox,
        "IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "", "Networks": {},
    });
    let name = rec.network.split(':').next().unwrap_or("").to_string();
    let table = Addresses::load(root).ok();
    let eps = endpoints(rec);
    for ep in &eps {
        let cfg = named::config(root, &Flags::default(), ep.network).ok();
        let (Some(c), Some(t)) = (cfg, &table) else { continue };
        let Ok(s) = c.subnet() else { continue };
        let Some(ip) = t.of_in(&rec.id, s) else { continue };
        let e = serde_json::json!({
            "IPAddress": ip.to_string(), "IPPrefixLen": s.prefix, "Gateway": s.gateway().to_string(),
            "MacAddress": bridge::mac_text(bridge::mac_of(ip)), "NetworkID": c.bridge, "Aliases": ep.aliases,
        });
        if ep.slot == 0 {
            for k in ["IPAddress", "IPPrefixLen", "Gateway", "MacAddress"] {
                v[k] = e[k].clone();
            }
        }
        v["Networks"][ep.network] = e;
    }
    if eps.is_empty() && name != "container" {
        v["Networks"] = serde_json::json!({ name: {} });
    }
    v
}

/// docker's own networks: the engine's bridge (docker's `bridge`), `host`
/// and `none`; user-defined ones are in [`named`].
pub const NETWORKS: [&str; 3] = ["bridge", "host", "none"];

/// `network inspect NAME`: docker's shape, with the containers attached.
pub fn inspect(root: &Path, name: &str) -> Result<serde_json::Value> {
    let name = if name == "default" { "bridge" } else { name };
    let user = named::load(root, name)?;
    if !NETWORKS.contains(&name) && user.is_none() {
        return err(format!("network {name} not found"));
    }
    // Read once: only bridges have a subnet.
    let ours = match &user {
        _ if name == "bridge" => {
            let c = Config::peek(root, &Flags::default())?;
            let s = c.subnet()?;
            Some((c, s))
        }
        Some(n) => Some((n.config.clone(), n.config.subnet()?)),
        None => None,
    };
    let prefix = ours.as_ref().map_or(0, |(_, s)| s.prefix);
    let mut containers = serde_json::Map::new();
    let addrs = Addresses::load(root).ok();
    for rec in record::list(root).unwrap_or_default().into_iter().filter(|r| r.network == name || on_network(r, name)) {
        let ip = addrs.as_ref().and_then(|t| ours.as_ref().and_then(|(_, s)| t.of_in(&rec.id, *s)));
        containers.insert(rec.id.clone(), serde_json::json!({
            "Name": rec.name,
            "IPv4Address": ip.map(|ip| format!("{ip}/{prefix}")).unwrap_or_default(),
            "MacAddress": ip.map(|ip| bridge::mac_text(bridge::mac_of(ip))).unwrap_or_default(),
        }));
    }
    let (driver, ipam, options) = match &ours {
        Some((c, s)) => (
            "bridge",
            serde_json::json!([{"Subnet": s.to_string(), "Gateway": s.gateway().to_string()}]),
            serde_json::json!({"com.docker.network.bridge.name": c.bridge}),
        ),
        None => (name, serde_json::json!([]), serde_json::json!({})),
    };
    let (id, created, labels) = match &user {
        Some(n) => (n.id.clone(), n.created.clone(), serde_json::json!(n.labels)),
        None => (name.to_string(), String::new(), serde_json::json!({})),
    };
    Ok(serde_json::json!({
        "Name": name, "Id": id, "Created": created, "Scope": "local", "Driver": driver,
        "IPAM": {"Driver": "default", "Config": ipam}, "Containers": containers, "Options": options, "Labels": labels,
    }))
}

/// `engine info`'s networking lines.
pub fn describe(root: &Path, flags: &Flags) -> String {
    match Config::peek(root, flags).and_then(|c| c.subnet().map(|s| (c, s))) {
        Ok((c, s)) => format!(
            "Networking: bridge {} (subnet {s}, gateway {}); -p through skiff proxy\nOutbound NAT: {}",
            c.bridge,
            s.gateway(),
            nat::describe(&c)
        ),
        Err(e) => format!("Networking: misconfigured: {}", e.0),
    }
}

/// Creates a network namespace with `lo` up, bind-mounted at `<dir>/netns`.
pub fn create_netns(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("netns");
    std::fs::write(&path, "").ctx(|| format!("create {}", path.display()))?;
    let target = path.clone();
    // unshare(CLONE_NEWNET) affects only the calling thread: do it in one
    // that ends right after, leaving the engine in the host namespace.
    std::thread::spawn(move || -> Result<()> {
        // SAFETY: unshare has no memory effects.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "unshare a network namespace");
        }
        loopback_up()?;
        // SAFETY: gettid cannot fail.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let src = CString::new(format!("/proc/self/task/{tid}/ns/net")).unwrap_or_default();
        let dst = CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| Error("netns path has a NUL byte".into()))?;
        // SAFETY: bind mount with valid paths.
        if unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| format!("bind the network namespace to {}", target.display()));
        }
        Ok(())
    })
    .join()
    .map_err(|_| Error("network namespace thread panicked".into()))??;
    Ok(path)
}

/// Brings `lo` up in the current thread's network namespace (SIOCSIFFLAGS).
fn loopback_up() -> Result<()> {
    // SAFETY: an ioctl on a fresh datagram socket with a zeroed ifreq.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "socket for lo");
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
        let r = libc::ioctl(s, libc::SIOCSIFFLAGS as _, &ifr);
        let e = std::io::Error::last_os_error();
        libc::close(s);
        if r != 0 {
            return Err(e).ctx(|| "bring lo up");
        }
    }
    Ok(())
}

/// Unmounts and removes `<dir>/netns` if present.
pub fn remove_netns(dir: &Path) -> Result<()> {
    let path = dir.join("netns");
    if !path.exists() {
        return Ok(());
    }
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Error("netns path has a NUL byte".into()))?;
    // SAFETY: umount2 with a valid path.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    std::fs::remove_file(&path).ctx(|| format!("remove {}", path.display()))
}

/// Parses docker's `-p [IP:][HOST[-END]:]CTR[-END][/PROTO]` into mappings.
pub fn parse_publish(spec: &str) -> Result<Vec<Port>> {
    let bad = |why: &str| err(format!("invalid port specification: {spec:?} ({why})"));
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if proto != "tcp" && proto != "udp" {
        return bad("protocol must be tcp or udp");
    }
    // An IPv6 host address is bracketed: [::1]:8080:80
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        match r.split_once("]:") {
            Some((ip, rest)) => (ip.to_string(), rest.to_string()),
            None => return bad("unclosed [ in the address"),
        }
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
            1 | 2 => (String::new(), rest.to_string()),
            _ => return bad("too many colons"),
        }
    };
    let ip = if ip.is_empty() { "0.0.0.0".to_string() } else { ip };
    if ip.parse::<std::net::IpAddr>().is_err() {
        return bad("bad host address");
    }
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest.as_str()),
    };
    let range = |s: &str| -> Result<(u16, u16)> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        match (a.parse::<u16>(), b.parse::<u16>()) {
            (Ok(a), Ok(b)) if a > 0 && b >= a => Ok((a, b)),
            _ => err(format!("invalid port specification: {spec:?} (bad port {s:?})")),
        }
    };
    let (c0, c1) = range(ctr)?;
    let (h0, h1) = if host.is_empty() { (0, 0) } else { range(host)? };
    if h0 != 0 && h1 - h0 != c1 - c0 {
        return bad("host and container port ranges differ in length");
    }
    Ok((0..=(c1 - c0))
        .map(|i| Port {
            host_ip: ip.clone(),
            host_port: if h0 == 0 { 0 } else { h0 + i },
            container_port: c0 + i,
            proto: proto.clone(),
        })
        .collect())
}

/// Gives ports without a host port a free one, and checks every host port
/// is free now, naming the one that is not.
pub fn bind_ports(ports: &mut [Port]) -> Result<()> {
    for p in ports.iter_mut() {
        let addr = format!("{}:{}", bracket(&p.host_ip), p.host_port);
        let port = if p.proto == "udp" {
            std::net::UdpSocket::bind(&addr).and_then(|s| s.local_addr()).map(|a| a.port())
        } else {
            std::net::TcpListener::bind(&addr).and_then(|s| s.local_addr()).map(|a| a.port())
        };
        match port {
            Ok(n) => p.host_port = n,
            Err(e) => {
                return err(format!("Bind for {addr} failed: port is already allocated ({e})"));
            }
        }
    }
    Ok(())
}

fn bracket(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

/// The proxy's command line for these ports, dialing inside `netns`.
pub fn proxy_args(proxy: &Path, netns: &Path, ports: &[Port]) -> Vec<String> {
    let mut v = vec![proxy.display().to_string(), "--netns".into(), netns.display().to_string()];
    for p in ports {
        let backend = if p.host_ip.contains(':') { "[::1]" } else { "127.0.0.1" };
        v.push("--map".into());
        v.push(format!("{}:{}:{backend}:{}/{}", bracket(&p.host_ip), p.host_port, p.container_port, p.proto));
    }
    v
}

/// /etc/hosts, /etc/hostname, /etc/resolv.conf for the container.
pub fn write_etc(dir: &Path, rec: &Record) -> Result<()> {
    let hosts = format!("{}{}127.0.1.1\t{}\n", hosts::base(), hosts::extra(&rec.extra_hosts), rec.hostname);
    std::fs::write(dir.join("hosts"), hosts).ctx(|| "write hosts")?;
    std::fs::write(dir.join("hostname"), format!("{}\n", rec.hostname)).ctx(|| "write hostname")?;
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let text = resolv_conf(&host, &rec.dns, &rec.dns_search, &rec.dns_options);
    std::fs::write(dir.join("resolv.conf"), text).ctx(|| "write resolv.conf")
}

/// Docker's fallback when the host has no resolver a container can reach.
const FALLBACK_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The container's resolv.conf from the host's: its resolvers minus
/// loopback ones (unreachable from the container's namespace), or
/// docker's public fallback when none is left; `--dns`, `--dns-search`
/// and `--dns-option` replace the host's lines of their kind (a search
/// of "." means none).
pub fn resolv_conf(host: &str, dns: &[String], search: &[String], options: &[String]) -> String {
    let mut out = Vec::new();
    let mut servers = Vec::new();
    for l in host.lines() {
        let t = l.trim();
        let key = t.split_whitespace().next().unwrap_or("");
        match key {
            "nameserver" => {
                let a = t["nameserver".len()..].trim();
                if !(a.starts_with("127.") || a == "::1") {
                    servers.push(a.to_string());
                }
            }
            "search" | "domain" if !search.is_empty() => {}
            "options" if !options.is_empty() => {}
            _ => out.push(l.to_string()),
        }
    }
    if !dns.is_empty() {
        servers = dns.to_vec();
    } else if servers.is_empty() {
        servers = FALLBACK_DNS.iter().map(|s| s.to_string()).collect();
    }
    let search: Vec<&str> = search.iter().map(String::as_str).filter(|s| *s != ".").collect();
    if !search.is_empty() {
        out.push(format!("search {}", search.join(" ")));
    }
    out.extend(servers.iter().map(|s| format!("nameserver {s}")));
    if !options.is_empty() {
        out.push(format!("options {}", options.join(" ")));
    }
    out.join("\n") + "\n"
}

/// `--add-host NAME:IP` (or `NAME=IP`; IPv6 may be bracketed; IP
/// `host-gateway` is the bridge's gateway) as `name:ip`.
pub fn parse_add_host(spec: &str, gateway: Ipv4Addr) -> Result<String> {
    let bad = || err(format!("invalid argument {spec:?} for \"--add-host\" flag: expected HOST:IP"));
    let Some((name, ip)) = spec.split_once('=').or_else(|| spec.split_once(':')) else { return bad() };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return bad();
    }
    let ip = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')).unwrap_or(ip);
    if ip == "host-gateway" {
        return Ok(format!("{name}:{gateway}"));
    }
    match ip.parse::<std::net::IpAddr>() {
        Ok(a) => Ok(format!("{name}:{a}")),
        Err(_) => err(format!("invalid argument {spec:?} for \"--add-host\" flag: invalid IP address {ip:?}")),
    }
}

/// The bridge's gateway address (for `host-gateway`).
pub fn gateway(root: &Path, flags: &Flags) -> Result<Ipv4Addr> {
    Ok(Config::resolve(root, flags)?.subnet()?.gateway())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!((p[0].host_ip.as_str(), p[0].host_port, p[0].container_port, p[0].proto.as_str()), ("0.0.0.0", 8080, 80, "tcp"));
        let p = parse_publish("127.0.0.1:9000-9001:90-91/udp").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].host_port, p[1].container_port, p[1].proto.as_str()), (9001, 91, "udp"));
        let p = parse_publish("80").unwrap();
        assert_eq!((p[0].host_port, p[0].container_port), (0, 80));
        let p = parse_publish("[::1]:8080:80").unwrap();
        assert_eq!(p[0].host_ip, "::1");
        for bad in ["8080:80/sctp", "x:80", "1.2.3:80:80", "9000-9002:90-91", "0:80", "70000:80"] {
            assert!(parse_publish(bad).unwrap_err().0.contains("invalid port specification"), "{bad}");
        }
    }

    #[test]
    fn add_host_specs() {
        let gw = Ipv4Addr::new(10, 88, 0, 1);
        assert_eq!(parse_add_host("db:10.0.0.5", gw).unwrap(), "db:10.0.0.5");
        assert_eq!(parse_add_host("db=10.0.0.5", gw).unwrap(), "db:10.0.0.5");
        assert_eq!(parse_add_host("v6:fd00::1", gw).unwrap(), "v6:fd00::1");
        assert_eq!(parse_add_host("v6=[fd00::1]", gw).unwrap(), "v6:fd00::1");
        assert_eq!(parse_add_host("host.docker.internal:host-gateway", gw).unwrap(), "host.docker.internal:10.88.0.1");
        assert!(parse_add_host("nocolon", gw).unwrap_err().0.contains("expected HOST:IP"));
        assert!(parse_add_host("db:10.0.0", gw).unwrap_err().0.contains("invalid IP address \"10.0.0\""));
        assert_eq!(hosts::extra(&["db:10.0.0.5".into(), "v6:fd00::1".into()]), "10.0.0.5\tdb\nfd00::1\tv6\n");
    }

    #[test]
    fn resolv_conf_as_docker_writes_it() {
        let host = "# host\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch corp.example\noptions edns0\n";
        let none: &[String] = &[];
        assert_eq!(resolv_conf(host, none, none, none), "# host\nsearch corp.example\noptions edns0\nnameserver 192.0.2.1\n");
        // Only loopback resolvers: docker's public fallback.
        assert_eq!(resolv_conf("nameserver 127.0.0.53\n", none, none, none), "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let out = resolv_conf(host, &v(&["192.0.2.9"]), &v(&["a.example", "b.example"]), &v(&["ndots:2"]));
        assert_eq!(out, "# host\nsearch a.example b.example\nnameserver 192.0.2.9\noptions ndots:2\n");
        assert_eq!(resolv_conf(host, none, &v(&["."]), none), "# host\noptions edns0\nnameserver 192.0.2.1\n");
    }
}
