//! Registries: `pull`, `push`, `login` and `logout` over the OCI
//! distribution API (v2), on ureq + rustls (ring, the system CA bundle).
//!
//! - `client`: one repository of one registry: endpoints, the Bearer token
//!   flow (`WWW-Authenticate` challenge -> realm -> token) and Basic auth,
//!   registry error bodies turned into messages.
//! - `auth`: `engine login` credentials, `<root>/auth.json` (mode 0600, in
//!   docker's `config.json` format).
//! - `pull`: manifests, indexes with platform selection, blobs streamed into
//!   the store (digest verified on the stream, layers unpacked as they
//!   arrive), resumable across a killed pull (`images/pulls/`).
//! - `push`: blobs (HEAD to skip, cross-repository mount, POST + PUT), then
//!   the manifest.
//! - `progress`: per-layer lines, updated in place on a terminal.
//!
//! Plain HTTP is used for loopback registries (`localhost`, `127.0.0.0/8`,
//! `[::1]`) and for those named by `--insecure-registry HOST:PORT` or by
//! `insecure-registries` in `<root>/daemon.json` (dockerd's key); HTTPS
//! otherwise. `docker.io` is served by `registry-1.docker.io`, as docker does.

pub mod auth;
pub mod client;
pub mod progress;
pub mod pull;
pub mod push;
pub mod tls;

use crate::error::{err, Result};
use crate::images::config::Platform;
use std::path::Path;

/// The host that serves `docker.io`.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

/// What pull and push were asked for besides the image name.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `HOST:PORT` spoken to over plain HTTP (flags and daemon.json).
    pub insecure: Vec<String>,
    /// `--platform`; None: this host's.
    pub platform: Option<Platform>,
    /// `--quiet`: no per-layer lines.
    pub quiet: bool,
    /// `--limit-rate`: bytes per second for blob transfers.
    pub limit_rate: Option<u64>,
}

impl Options {
    /// Options with the insecure registries of `<root>/daemon.json` added to `flags`.
    pub fn new(root: &Path, insecure_flags: &[String]) -> Result<Options> {
        let mut insecure: Vec<String> = insecure_flags.to_vec();
        insecure.extend(daemon_insecure(root)?);
        Ok(Options { insecure, ..Default::default() })
    }
}

/// `insecure-registries` of `<root>/daemon.json` (missing file: none).
fn daemon_insecure(root: &Path) -> Result<Vec<String>> {
    let p = root.join("daemon.json");
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return err(format!("read {}: {e}", p.display())),
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| crate::error::Error(format!("parse {}: {e}", p.display())))?;
    Ok(v.get("insecure-registries")
        .and_then(|l| l.as_array())
        .map(|l| l.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default())
}

/// `os/arch[/variant]` as `--platform` takes it (`linux/arm64`, `linux/arm/v7`).
pub fn parse_platform(s: &str) -> Result<Platform> {
    let parts: Vec<&str> = s.split('/').collect();
    let ok = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match parts.as_slice() {
        [os, arch] if ok(os) && ok(arch) => Ok(Platform { os: os.to_string(), architecture: normalize_arch(arch), variant: None }),
        [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => {
            Ok(Platform { os: os.to_string(), architecture: normalize_arch(arch), variant: Some(variant.to_string()) })
        }
        _ => err(format!("invalid platform `{s}`: want os/arch[/variant] (linux/arm64, linux/arm/v7)")),
    }
}

/// The names containerd's platforms package accepts for Go's architectures.
fn normalize_arch(a: &str) -> String {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        "armhf" => "arm",
        other => other,
    }
    .to_string()
}

/// `--limit-rate`: bytes per second, with an optional k/m/g suffix (1024-based).
pub fn parse_rate(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix("/s").unwrap_or(&t);
    let t = t.strip_suffix('b').unwrap_or(t);
    let (num, mult) = match t.as_bytes().last() {
        Some(b'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some(b'm') => (&t[..t.len() - 1], 1 << 20),
        Some(b'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    match num.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n.saturating_mul(mult)),
        _ => err(format!("invalid --limit-rate `{s}`: want bytes per second (500k, 2m)")),
    }
}

/// `os/arch[/variant]`.
pub fn show_platform(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// `http://HOST` or `https://HOST` for the registry `domain` (a reference's
/// domain: `docker.io`, `localhost:5000`, `quay.io`).
pub fn base_url(domain: &str, insecure: &[String]) -> String {
    let host = if domain == crate::images::reference::DEFAULT_DOMAIN { DOCKER_HUB_HOST } else { domain };
    let scheme = if is_loopback(domain) || insecure.iter().any(|i| i == domain || i.strip_prefix("http://") == Some(domain)) { "http" } else { "https" };
    format!("{scheme}://{host}")
}

/// `localhost[:port]`, `127.x.y.z[:port]`, `[::1][:port]`.
pub fn is_loopback(domain: &str) -> bool {
    let host = if let Some(rest) = domain.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        domain.rsplit_once(':').map(|(h, _)| h).unwrap_or(domain)
    };
    host == "localhost" || host == "::1" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_and_endpoints() {
        assert_eq!(show_platform(&parse_platform("linux/arm64").unwrap()), "linux/arm64");
        assert_eq!(show_platform(&parse_platform("linux/arm/v7").unwrap()), "linux/arm/v7");
        assert_eq!(parse_platform("linux/aarch64").unwrap().architecture, "arm64");
        assert!(parse_platform("linux").is_err());
        assert!(parse_platform("linux//x").is_err());
        assert_eq!(base_url("docker.io", &[]), "https://registry-1.docker.io");
        assert_eq!(base_url("127.0.0.1:5000", &[]), "http://127.0.0.1:5000");
        assert_eq!(base_url("localhost:5000", &[]), "http://localhost:5000");
        assert_eq!(base_url("reg.lan:5000", &[]), "https://reg.lan:5000");
        assert_eq!(base_url("reg.lan:5000", &["reg.lan:5000".into()]), "http://reg.lan:5000");
        assert!(!is_loopback("localhost.evil.com"));
        assert!(is_loopback("127.0.0.2"));
        assert_eq!(parse_rate("500k").unwrap(), 500 << 10);
        assert_eq!(parse_rate("2M").unwrap(), 2 << 20);
        assert_eq!(parse_rate("100").unwrap(), 100);
        assert!(parse_rate("fast").is_err());
    }
}
