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
/// the namespace and, for `bridge`, the veth, address and route; writes its
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
    if bridged(rec) {
        setup_bridge(root, flags, dir, rec, &ns)?;
    }
    Ok(Some(ns))
}

/// Brings a container's network back when its namespace is gone (a host
/// reboot): a new namespace and, for `bridge`, the veth again with the
/// address the container already holds. `host` and `container:` need nothing.
pub fn recreate(root: &Path, flags: &Flags, dir: &Path, rec: &Record) -> Result<()> {
    if rec.network == "host" || rec.network.starts_with("container:") {
        return Ok(());
    }
    remove_netns(dir)?;
    let ns = create_netns(dir)?;
    if bridged(rec) {
        setup_bridge(root, flags, dir, rec, &ns)?;
    }
    Ok(())
}

/// The names a container's network knows it by: name, hostname, aliases.
fn names(r: &Record) -> impl Iterator<Item = &str> {
    [r.name.as_str(), r.hostname.as_str()].into_iter().chain(r.aliases.iter().map(String::as_str))
}

fn setup_bridge(root: &Path, flags: &Flags, dir: &Path, rec: &Record, ns: &Path) -> Result<()> {
    let mut nl = netlink::Netlink::open()?;
    let (bridge, ip, subnet) = {
        let _lock = ipam::Lock::acquire(root)?;
        let cfg = named::config(root, flags, &rec.network)?;
        let subnet = cfg.subnet()?;
        let (bridge, created) = bridge::ensure(&mut nl, &cfg, subnet)?;
        if created {
            if let Err(e) = nat::enable(&cfg).and_then(|_| nat::isolate(&cfg, &named::all(root, flags))) {
                eprintln!("WARNING: outbound NAT for {} on {}: {}", cfg.subnet, cfg.bridge, e.0);
            }
        }
        let mut table = Addresses::load(root)?;
        let mut stale = table.reclaim(root);
        let ip = match rec.ip {
            Some(want) => table.allocate_exact(subnet, want, &rec.id)?,
            None => table.allocate(subnet, &rec.id)?,
        };
        table.save(root)?;
        // The other containers of its network learn this one's name; lines
        // of reclaimed addresses (their containers are gone) go everywhere.
        stale.push(ip);
        let me = hosts::names_line(ip, names(rec));
        let mut peers = Vec::new();
        for (pip, pid) in &table.by_ip {
            let Ok(r) = Record::load(&record::dir(root, pid)) else { continue };
            if r.id == rec.id {
                continue;
            }
            let same = r.network == rec.network;
            let _ = hosts::edit(&record::dir(root, pid), &stale, same.then_some(me.as_str()));
            if same {
                peers.push(hosts::names_line(*pip, names(&r)));
            }
        }
        let own = [rec.hostname.as_str(), rec.name.as_str()].into_iter().chain(rec.aliases.iter().map(String::as_str));
        hosts::write_own(dir, &rec.extra_hosts, &hosts::names_line(ip, own), &peers)?;
        (bridge, ip, subnet)
    };
    bridge::attach(&mut nl, bridge, &rec.id, dir, ns, ip, subnet)
}

/// Undoes [`prepare`]'s bridge part: lets the veth go, releases the address
/// and takes the container's line out of the others' /etc/hosts. Safe to
/// repeat; each step is skipped when already done.
pub fn teardown(root: &Path, dir: &Path, rec: &Record) -> Result<()> {
    if !bridged(rec) || !ipam::dir(root).exists() {
        return Ok(());
    }
    // While the namespace is there, its removal (which follows) takes the
    // pair with it: the kernel deletes the veth when the namespace dies, off
    // our critical path (deleting it here costs 15-40 ms of RCU waits). A
    // veth an unremovable namespace keeps is swept by `ps` once the record
    // is gone. Deleting it here is not fatal either.
    if !dir.join("netns").exists() {
        if let Err(e) = netlink::Netlink::open().and_then(|mut nl| bridge::detach(&mut nl, &rec.id, dir)) {
            eprintln!("WARNING: {}", e.0);
        }
    }
    let _lock = ipam::Lock::acquire(root)?;
    let mut table = Addresses::load(root)?;
    if let Some(ip) = table.release(&rec.id) {
        table.save(root)?;
        for pid in table.by_ip.values() {
            let _ = hosts::edit(&record::dir(root, pid), &[ip], None);
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
    let addr = Addresses::load(root).ok().and_then(|t| t.of(&rec.id));
    let cfg = match rec.network.as_str() {
        "bridge" => Config::peek(root, &Flags::default()).ok(),
        n => named::load(root, n).ok().flatten().map(|n| n.config),
    };
    match (addr, cfg.as_ref().and_then(|c| c.subnet().ok())) {
        (Some(ip), Some(s)) if bridged(rec) => {
            let ep = serde_json::json!({
                "IPAddress": ip.to_string(), "IPPrefixLen": s.prefix, "Gateway": s.gateway().to_string(),
                "MacAddress": bridge::mac_text(bridge::mac_of(ip)), "NetworkID": cfg.map(|c| c.bridge).unwrap_or_default(),
            });
            for k in ["IPAddress", "IPPrefixLen", "Gateway", "MacAddress"] {
                v[k] = ep[k].clone();
            }
            v["Networks"] = serde_json::json!({ name.as_str(): ep });
        }
        _ if name == "container" => {}
        _ => v["Networks"] = serde_json::json!({ name: {} }),
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
    for rec in record::list(root).unwrap_or_default().into_iter().filter(|r| r.network == name) {
        let ip = addrs.as_ref().and_then(|t| t.of(&rec.id));
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
