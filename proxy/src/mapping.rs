//! Port mappings: what to listen on and where to forward it, as given by
//! docker-proxy's flags or skiff's `--map HOSTIP:PORTS:CONTAINERIP:PORTS/PROTO`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// Transport protocol of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

impl FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Proto, String> {
        match s {
            "tcp" | "tcp4" | "tcp6" => Ok(Proto::Tcp),
            "udp" | "udp4" | "udp6" => Ok(Proto::Udp),
            _ => Err(format!("unsupported protocol {s:?} (want tcp or udp)")),
        }
    }
}

/// A run of `count` consecutive host ports forwarded to as many consecutive
/// container ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub proto: Proto,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
    pub count: u16,
}

impl Mapping {
    /// The (host, container) address pairs, one per port.
    pub fn pairs(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        (0..self.count).map(move |i| {
            (
                SocketAddr::new(self.host_ip, self.host_port.wrapping_add(i)),
                SocketAddr::new(self.container_ip, self.container_port.wrapping_add(i)),
            )
        })
    }

    fn last_host_port(&self) -> u32 {
        u32::from(self.host_port) + u32::from(self.count) - 1
    }

    /// Whether both mappings would listen on a common protocol, address and port.
    pub fn overlaps(&self, other: &Mapping) -> bool {
        if self.proto != other.proto || self.host_ip.is_ipv4() != other.host_ip.is_ipv4() {
            return false;
        }
        let ips = self.host_ip == other.host_ip || self.host_ip.is_unspecified() || other.host_ip.is_unspecified();
        let ports =
            u32::from(self.host_port) <= other.last_host_port() && u32::from(other.host_port) <= self.last_host_port();
        ips && ports
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = |f: &mut fmt::Formatter<'_>, ip: IpAddr| match ip {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "[{a}]"),
        };
        let ports = |f: &mut fmt::Formatter<'_>, p: u16| {
            if self.count > 1 {
                write!(f, "{p}-{}", u32::from(p) + u32::from(self.count) - 1)
            } else {
                write!(f, "{p}")
            }
        };
        ip(f, self.host_ip)?;
        f.write_str(":")?;
        ports(f, self.host_port)?;
        f.write_str(":")?;
        ip(f, self.container_ip)?;
        f.write_str(":")?;
        ports(f, self.container_port)?;
        write!(f, "/{}", self.proto)
    }
}

/// Parses a port number (1-65535).
pub fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("bad port {s:?} (want 1-65535)")),
    }
}

/// Parses `PORT` or `FIRST-LAST` into (first, count).
fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    match s.split_once('-') {
        None => Ok((parse_port(s)?, 1)),
        Some((a, b)) => {
            let (a, b) = (parse_port(a)?, parse_port(b)?);
            if b < a {
                return Err(format!("bad port range {s:?} (end before start)"));
            }
            Ok((a, b - a + 1))
        }
    }
}

/// Parses an IP address; IPv6 may be bracketed.
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let inner = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
    match inner {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().map(IpAddr::V6).ok(),
        None => s.parse::<IpAddr>().ok(),
    }
    .ok_or_else(|| format!("bad IP address {s:?}"))
}

/// Splits at the colons that are outside brackets.
fn fields(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.checked_sub(1).ok_or_else(|| format!("unbalanced ']' in {s:?}"))?,
            ':' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced '[' in {s:?}"));
    }
    out.push(&s[start..]);
    Ok(out)
}

impl FromStr for Mapping {
    type Err = String;

    /// `[HOSTIP:]HOSTPORTS:CONTAINERIP:CONTAINERPORTS[/tcp|/udp]`, IPv6 in
    /// brackets, PORTS either `N` or `FIRST-LAST` of equal lengths.
    fn from_str(spec: &str) -> Result<Mapping, String> {
        let bad = |why: String| format!("bad mapping {spec:?}: {why}");
        let (body, proto) = match spec.rsplit_once('/') {
            Some((b, p)) => (b, p.parse::<Proto>().map_err(bad)?),
            None => (spec, Proto::Tcp),
        };
        let f = fields(body).map_err(bad)?;
        let (host_ip, hp, cip, cp) = match f.as_slice() {
            [h, hp, c, cp] => (parse_ip(h).map_err(bad)?, *hp, *c, *cp),
            [hp, c, cp] => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), *hp, *c, *cp),
            _ => return Err(bad("want HOSTIP:HOSTPORT:CONTAINERIP:CONTAINERPORT[/PROTO] (IPv6 in brackets)".into())),
        };
        let container_ip = parse_ip(cip).map_err(bad)?;
        if container_ip.is_unspecified() {
            return Err(bad(format!("container address {cip} is unspecified")));
        }
        let (host_port, hn) = parse_ports(hp).map_err(bad)?;
        let (container_port, cn) = parse_ports(cp).map_err(bad)?;
        if hn != cn {
            return Err(bad(format!("host ports {hp} and container ports {cp} differ in length")));
        }
        Ok(Mapping { proto, host_ip, host_port, container_ip, container_port, count: hn })
    }
}

/// Fails naming the first two mappings that share a listening address.
pub fn check_overlaps(maps: &[Mapping]) -> Result<(), String> {
    for (i, a) in maps.iter().enumerate() {
        for b in &maps[i + 1..] {
            if a.overlaps(b) {
                return Err(format!("mappings {a} and {b} overlap"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Mapping {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_v4_v6_ranges_and_defaults() {
        let a = m("0.0.0.0:8080:10.88.0.2:80/tcp");
        assert_eq!((a.host_port, a.container_port, a.count, a.proto), (8080, 80, 1, Proto::Tcp));
        let b = m("[::]:5353:10.88.0.2:53/udp");
        assert!(b.host_ip.is_ipv6() && b.host_ip.is_unspecified());
        assert_eq!(b.proto, Proto::Udp);
        let c = m("0.0.0.0:9000-9099:10.88.0.2:9000-9099/tcp");
        assert_eq!(c.count, 100);
        let pairs: Vec<_> = c.pairs().collect();
        assert_eq!(pairs.len(), 100);
        assert_eq!(pairs[99].0.port(), 9099);
        assert_eq!(pairs[99].1.port(), 9099);
        let d = m("8080:[fd00::2]:80");
        assert_eq!(d.host_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(d.container_ip, "fd00::2".parse::<IpAddr>().unwrap());
        assert_eq!(d.to_string(), "0.0.0.0:8080:[fd00::2]:80/tcp");
        assert_eq!(c.to_string(), "0.0.0.0:9000-9099:10.88.0.2:9000-9099/tcp");
    }

    #[test]
    fn rejects_bad_specs_naming_the_problem() {
        let err = |s: &str| s.parse::<Mapping>().unwrap_err();
        assert!(err("0.0.0.0:0:10.0.0.1:80").contains("bad port \"0\""));
        assert!(err("0.0.0.0:70000:10.0.0.1:80").contains("bad port \"70000\""));
        assert!(err("0.0.0.0:80:10.0.0:80").contains("bad IP address \"10.0.0\""));
        assert!(err("0.0.0.0:80-81:10.0.0.1:80").contains("differ in length"));
        assert!(err("0.0.0.0:81-80:10.0.0.1:80-81").contains("end before start"));
        assert!(err("0.0.0.0:80:10.0.0.1:80/sctp").contains("unsupported protocol"));
        assert!(err("::1:80:10.0.0.1:80").contains("want HOSTIP"));
        assert!(err("[::1:80:10.0.0.1:80").contains("unbalanced"));
        assert!(err("0.0.0.0:80:0.0.0.0:80").contains("unspecified"));
        assert!(err("").contains("want HOSTIP"));
    }

    #[test]
    fn overlap_rules() {
        let o = |a: &str, b: &str| m(a).overlaps(&m(b));
        assert!(o("0.0.0.0:80:10.0.0.1:80", "127.0.0.1:80:10.0.0.2:81"));
        assert!(o("127.0.0.1:70-90:10.0.0.1:70-90", "127.0.0.1:90:10.0.0.2:81"));
        assert!(!o("127.0.0.1:70-89:10.0.0.1:70-89", "127.0.0.1:90:10.0.0.2:81"));
        assert!(!o("0.0.0.0:80:10.0.0.1:80", "[::]:80:10.0.0.1:80"));
        assert!(!o("0.0.0.0:80:10.0.0.1:80/tcp", "0.0.0.0:80:10.0.0.1:80/udp"));
        assert!(!o("127.0.0.1:80:10.0.0.1:80", "127.0.0.2:80:10.0.0.1:80"));
        assert!(o("[::]:65535:[::1]:1", "[::1]:65535:[::1]:2"));
        let err = check_overlaps(&[m("0.0.0.0:80:10.0.0.1:80"), m("127.0.0.1:80:10.0.0.1:80")]).unwrap_err();
        assert!(err.contains("overlap"), "{err}");
    }
}
