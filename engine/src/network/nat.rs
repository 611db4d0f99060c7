//! Outbound NAT for the bridge's subnet through the host's `iptables`
//! (iptables-legacy or iptables-nft, whichever the host has), as docker
//! does: MASQUERADE for traffic leaving through another interface, FORWARD
//! accepted to and from the bridge, and IPv4 forwarding on. Applied when the
//! bridge is created (so after a reboot too), never removed (docker neither).

use super::config::Config;
use crate::error::{err, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The host's iptables program, if any.
pub fn iptables() -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| PathBuf::from(d).join("iptables"))
        .find(|p| p.is_file());
    found
}

/// What `engine info` says about outbound NAT.
pub fn describe(c: &Config) -> String {
    match (c.iptables, iptables()) {
        (false, _) => "none (--iptables=false)".into(),
        (true, None) => "none (iptables not found: containers reach only the host and each other)".into(),
        (true, Some(p)) => format!("iptables ({})", p.display()),
    }
}

fn ensure(bin: &PathBuf, table: &str, chain: &str, insert: bool, rule: &[&str]) -> Result<()> {
    let run = |op: &str| {
        Command::new(bin)
            .args(["-w", "-t", table, op, chain])
            .args(rule)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .ctx(|| format!("run {}", bin.display()))
    };
    if run("-C")?.status.success() {
        return Ok(());
    }
    let out = run(if insert { "-I" } else { "-A" })?;
    if !out.status.success() {
        return err(format!("iptables -t {table} -A {chain} {}: {}", rule.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// Sets up NAT for the config's subnet when it asks for it and iptables is
/// there. Returns whether it did.
pub fn enable(c: &Config) -> Result<bool> {
    if !c.iptables {
        return Ok(false);
    }
    let Some(bin) = iptables() else { return Ok(false) };
    let br = c.bridge.as_str();
    ensure(&bin, "nat", "POSTROUTING", false, &["-s", &c.subnet, "!", "-o", br, "-j", "MASQUERADE"])?;
    ensure(&bin, "filter", "FORWARD", true, &["-i", br, "-j", "ACCEPT"])?;
    ensure(&bin, "filter", "FORWARD", true, &["-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"])?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").ctx(|| "enable IPv4 forwarding (/proc/sys/net/ipv4/ip_forward)")?;
    Ok(true)
}
