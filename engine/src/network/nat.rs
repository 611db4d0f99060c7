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

/// The rules of a bridge: (table, chain, insert at the top, rule).
fn rules(c: &Config) -> [(&'static str, &'static str, bool, Vec<&str>); 3] {
    let br = c.bridge.as_str();
    [
        ("nat", "POSTROUTING", false, vec!["-s", &c.subnet, "!", "-o", br, "-j", "MASQUERADE"]),
        ("filter", "FORWARD", true, vec!["-i", br, "-j", "ACCEPT"]),
        ("filter", "FORWARD", true, vec!["-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]),
    ]
}

/// Sets up NAT for the config's subnet when it asks for it and iptables is
/// there. Returns whether it did.
pub fn enable(c: &Config) -> Result<bool> {
    if !c.iptables {
        return Ok(false);
    }
    let Some(bin) = iptables() else { return Ok(false) };
    for (table, chain, insert, rule) in rules(c) {
        ensure(&bin, table, chain, insert, &rule)?;
    }
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").ctx(|| "enable IPv4 forwarding (/proc/sys/net/ipv4/ip_forward)")?;
    Ok(true)
}

/// FORWARD drops between bridge `c` and each of `others`, both ways:
/// containers reach only their own network, as docker isolates its networks.
fn isolation<'a>(c: &'a Config, others: &'a [Config]) -> impl Iterator<Item = [&'a str; 6]> {
    others.iter().filter(move |o| o.bridge != c.bridge).flat_map(move |o| {
        [["-i", c.bridge.as_str(), "-o", o.bridge.as_str(), "-j", "DROP"], ["-i", o.bridge.as_str(), "-o", c.bridge.as_str(), "-j", "DROP"]]
    })
}

fn delete(bin: &PathBuf, table: &str, chain: &str, rule: &[&str]) {
    // -D fails when the rule is not there: nothing to do then
    let _ = Command::new(bin).args(["-w", "-t", table, "-D", chain]).args(rule).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// Isolates the (new) bridge of `c` from the engine's other bridges. The
/// drops go back on top, above the ACCEPT that [`enable`] just put there.
pub fn isolate(c: &Config, others: &[Config]) -> Result<()> {
    let Some(bin) = iptables().filter(|_| c.iptables) else { return Ok(()) };
    for rule in isolation(c, others) {
        delete(&bin, "filter", "FORWARD", &rule);
        ensure(&bin, "filter", "FORWARD", true, &rule)?;
    }
    Ok(())
}

/// Removes what [`enable`] and [`isolate`] added (a removed user-defined
/// network's).
pub fn disable(c: &Config, others: &[Config]) -> Result<()> {
    let Some(bin) = iptables().filter(|_| c.iptables) else { return Ok(()) };
    for (table, chain, _, rule) in rules(c) {
        delete(&bin, table, chain, &rule);
    }
    for rule in isolation(c, others) {
        delete(&bin, "filter", "FORWARD", &rule);
    }
    Ok(())
}
