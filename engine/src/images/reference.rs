//! Image references as docker parses them: `[DOMAIN/]PATH[:TAG][@DIGEST]`,
//! normalized (`busybox` -> `docker.io/library/busybox:latest`) for the
//! store, shown familiar (`busybox:latest`) to people.

use super::digest;
use crate::error::{err, Result};
use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

/// A normalized reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `registry.example:443`.
    pub domain: String,
    /// `library/busybox`, `org/app`.
    pub path: String,
    /// `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// `sha256:<hex>` for `NAME@sha256:...`.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalizes `s`; a clear error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &str| err(format!("invalid reference format `{s}`: {why}"));
        if s.is_empty() {
            return bad("empty");
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if digest::hex_of(d).is_err() {
                    return bad("the digest is not sha256:<64 hex digits>");
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return bad("bad tag (want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})");
            }
        }
        if name.len() > 255 {
            return bad("name longer than 255 characters");
        }
        let (mut domain, mut path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if domain == "index.docker.io" {
            domain = DEFAULT_DOMAIN.to_string();
        }
        if !valid_domain(&domain) {
            return bad("bad registry host");
        }
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("library/{path}");
        }
        if path.split('/').any(|c| !valid_component(c)) {
            return bad("repository names must be lowercase letters, digits and separators (. _ __ -)");
        }
        if digest::is_hex64(name) {
            return bad("a repository name cannot be a 64-character hex string");
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference { domain, path, tag, digest })
    }

    /// `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The key of the tag index: `docker.io/library/busybox:latest`
    /// (None for a digest-only reference).
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// `busybox`, `org/app`, `localhost:5000/app`: the name as docker shows it.
    pub fn familiar_name(&self) -> String {
        familiar_name(&self.name())
    }
}

impl fmt::Display for Reference {
    /// The familiar form: `busybox:latest`, `busybox@sha256:...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar_name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `docker.io/library/busybox` -> `busybox`; `docker.io/org/app` -> `org/app`.
pub fn familiar_name(full: &str) -> String {
    match full.strip_prefix("docker.io/") {
        Some(p) => match p.strip_prefix("library/") {
            Some(q) if !q.contains('/') => q.to_string(),
            _ => p.to_string(),
        },
        None => full.to_string(),
    }
}

/// Splits a tag index key `NAME:TAG` into its familiar name and tag.
pub fn split_tagged(key: &str) -> (String, String) {
    let last_slash = key.rfind('/').map(|i| i + 1).unwrap_or(0);
    match key[last_slash..].rfind(':') {
        Some(i) => (familiar_name(&key[..last_slash + i]), key[last_slash + i + 1..].to_string()),
        None => (familiar_name(key), String::new()),
    }
}

/// `busybox:latest` for a tag index key.
pub fn familiar_tagged(key: &str) -> String {
    let (n, t) = split_tagged(key);
    format!("{n}:{t}")
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty() && b.len() <= 128 && word(b[0]) && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `host[.host...][:port]`, each label alphanumerics and inner dashes.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let r = Reference::parse(s).unwrap();
        let mut out = r.name();
        if let Some(t) = &r.tag {
            out += &format!(":{t}");
        }
        if let Some(d) = &r.digest {
            out += &format!("@{d}");
        }
        out
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("org/app"), "docker.io/org/app:latest");
        assert_eq!(norm("index.docker.io/library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("quay.io/a/b/c:x"), "quay.io/a/b/c:x");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(norm(&format!("busybox@{d}")), format!("docker.io/library/busybox@{d}"));
        assert_eq!(Reference::parse("busybox").unwrap().to_string(), "busybox:latest");
        assert_eq!(Reference::parse("localhost:5000/x/y").unwrap().to_string(), "localhost:5000/x/y:latest");
        assert_eq!(familiar_tagged("docker.io/org/app:v2"), "org/app:v2");
        assert_eq!(split_tagged("localhost:5000/app:v1"), ("localhost:5000/app".into(), "v1".into()));
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "Busybox", "busy box", "a/../b", "x:", "x:-bad", "a@sha256:12", "/abs", "a//b", "a-", &"a".repeat(64)] {
            assert!(Reference::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(Reference::parse("a__b.c-d---e").is_ok());
        assert!(Reference::parse("a___b").is_err());
    }
}
