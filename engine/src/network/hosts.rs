//! The `/etc/hosts` of bridged containers: the container's own address and
//! hostname, plus one line per other container on the bridge (`IP name
//! hostname`), so containers reach each other by name. Other containers'
//! files are edited in place (they are bind-mounted: a rename would not be
//! seen), under the network lock; every skiff line starts with the address,
//! which is unique on the bridge, so a line is removed by its address.

use crate::error::{Context, Result};
use std::net::Ipv4Addr;
use std::path::Path;

/// The loopback part every container's /etc/hosts starts with.
pub fn base() -> &'static str {
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
}

/// `IP\tname...`, each name once, empty ones left out.
pub fn names_line<'a>(ip: Ipv4Addr, names: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for n in names.filter(|n| !n.is_empty()) {
        if !seen.contains(&n) {
            seen.push(n);
        }
    }
    format!("{ip}\t{}\n", seen.join(" "))
}

fn starts_with_ip(l: &str, ips: &[Ipv4Addr]) -> bool {
    let first = l.split(['\t', ' ']).next().unwrap_or("");
    ips.iter().any(|ip| first == ip.to_string())
}

/// `--add-host` entries (`name:ip`) as hosts lines, after the base ones
/// as docker writes them.
pub fn extra(entries: &[String]) -> String {
    entries.iter().filter_map(|e| e.split_once(':')).map(|(name, ip)| format!("{ip}\t{name}\n")).collect()
}

/// A fresh file for a container that is not running yet.
pub fn write_own(dir: &Path, extra_hosts: &[String], own: &str, peers: &[String]) -> Result<()> {
    let text = format!("{}{}{own}{}", base(), extra(extra_hosts), peers.concat());
    std::fs::write(dir.join("hosts"), text).ctx(|| format!("write {}", dir.join("hosts").display()))
}

/// Removes the lines of `ips` from a container's hosts file and appends
/// `add`, in place. A container without the file is left alone.
pub fn edit(dir: &Path, ips: &[Ipv4Addr], add: Option<&str>) -> Result<()> {
    let p = dir.join("hosts");
    let Ok(text) = std::fs::read_to_string(&p) else { return Ok(()) };
    let mut out: String = text.lines().filter(|l| !starts_with_ip(l, ips)).map(|l| format!("{l}\n")).collect();
    if let Some(a) = add {
        out.push_str(a);
    }
    if out == text {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(&p).ctx(|| format!("open {}", p.display()))?;
    std::io::Write::write_all(&mut f, out.as_bytes()).ctx(|| format!("write {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_added_and_removed_by_address() {
        let dir = std::env::temp_dir().join(format!("skiff-engine-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = Ipv4Addr::new(10, 9, 0, 2);
        let b = Ipv4Addr::new(10, 9, 0, 3);
        let c = Ipv4Addr::new(10, 9, 0, 30);
        write_own(&dir, &[], &names_line(a, ["host-a", "web"].into_iter()), &[names_line(c, ["db", "db"].into_iter())]).unwrap();
        let t = std::fs::read_to_string(dir.join("hosts")).unwrap();
        assert!(t.starts_with("127.0.0.1\tlocalhost\n") && t.contains("10.9.0.2\thost-a web\n") && t.ends_with("10.9.0.30\tdb\n"), "{t}");
        edit(&dir, &[b], Some(&names_line(b, ["cache", "abc"].into_iter()))).unwrap();
        edit(&dir, &[c], None).unwrap();
        let t = std::fs::read_to_string(dir.join("hosts")).unwrap();
        assert!(t.ends_with("10.9.0.2\thost-a web\n10.9.0.3\tcache abc\n"), "{t}");
        edit(&dir, &[Ipv4Addr::new(10, 9, 0, 3)], None).unwrap();
        assert!(!std::fs::read_to_string(dir.join("hosts")).unwrap().contains("cache"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
