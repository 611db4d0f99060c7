//! Container networking. Until the bridge lands, every container that is
//! not `--network host` gets a private network namespace with loopback up;
//! `-p` is served by the proxy dialing into that namespace (`--netns`), so
//! published ports work without any host network change.

use crate::error::{err, Context, Error, Result};
use crate::record::Port;
use std::ffi::CString;
use std::path::{Path, PathBuf};

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
pub fn write_etc(dir: &Path, hostname: &str) -> Result<()> {
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
    );
    std::fs::write(dir.join("hosts"), hosts).ctx(|| "write hosts")?;
    std::fs::write(dir.join("hostname"), format!("{hostname}\n")).ctx(|| "write hostname")?;
    // The host's resolvers, minus loopback ones the container cannot reach.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let kept: Vec<&str> = host
        .lines()
        .filter(|l| {
            let ns = l.trim().strip_prefix("nameserver").map(str::trim);
            !ns.is_some_and(|a| a.starts_with("127.") || a == "::1")
        })
        .collect();
    std::fs::write(dir.join("resolv.conf"), kept.join("\n") + "\n").ctx(|| "write resolv.conf")
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
}
