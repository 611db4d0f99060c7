//! `engine login` credentials: `<root>/auth.json`, mode 0600, in docker's
//! `config.json` format (`{"auths": {"SERVER": {"auth": base64(user:pass)}}}`,
//! Docker Hub under `https://index.docker.io/v1/`), replaced atomically
//! under `<root>/auth.lock`.

use crate::error::{err, Context, Error, Result};
use crate::images::index::{sync_dir, FileLock};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const FILE: &str = "auth.json";
/// The key docker uses for Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The key of registry `domain` in `auths`.
pub fn key(domain: &str) -> String {
    match domain {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        d => d.to_string(),
    }
}

fn path(root: &Path) -> PathBuf {
    root.join(FILE)
}

fn read(root: &Path) -> Result<serde_json::Value> {
    let p = path(root);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).ctx(|| format!("parse {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({ "auths": {} })),
        Err(e) => Err(e).ctx(|| format!("read {}", p.display())),
    }
}

/// The user and password stored for `domain`, if any.
pub fn credentials(root: &Path, domain: &str) -> Result<Option<(String, String)>> {
    let v = read(root)?;
    let k = key(domain);
    let entry = v["auths"].get(&k).or_else(|| v["auths"].get(format!("https://{k}"))).or_else(|| v["auths"].get(format!("http://{k}")));
    let Some(auth) = entry.and_then(|e| e["auth"].as_str()) else { return Ok(None) };
    let raw = base64_decode(auth).ok_or_else(|| Error(format!("{}: the auth of {k} is not base64", path(root).display())))?;
    let s = String::from_utf8(raw).map_err(|_| Error(format!("{}: the auth of {k} is not UTF-8", path(root).display())))?;
    match s.split_once(':') {
        Some((u, p)) => Ok(Some((u.to_string(), p.to_string()))),
        None => err(format!("{}: the auth of {k} is not user:password", path(root).display())),
    }
}

/// Stores (`Some`) or removes (`None`) the credentials of `domain`;
/// returns whether there were some before.
pub fn set(root: &Path, domain: &str, creds: Option<(&str, &str)>) -> Result<bool> {
    std::fs::create_dir_all(root).ctx(|| format!("create {}", root.display()))?;
    let _lock = FileLock::exclusive(&root.join("auth.lock"))?;
    let mut v = read(root)?;
    if !v["auths"].is_object() {
        v["auths"] = serde_json::json!({});
    }
    let k = key(domain);
    let auths = v["auths"].as_object_mut().expect("auths is an object");
    let had = auths.remove(&k).is_some();
    if let Some((user, pass)) = creds {
        auths.insert(k, serde_json::json!({ "auth": base64_encode(format!("{user}:{pass}").as_bytes()) }));
    }
    let mut bytes = serde_json::to_vec_pretty(&v).ctx(|| "serialize auth.json")?;
    bytes.push(b'\n');
    write_private(&path(root), &bytes)?;
    Ok(had)
}

/// Replaces `p` atomically with a file only its owner can read.
fn write_private(p: &Path, bytes: &[u8]) -> Result<()> {
    let dir = p.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{FILE}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(bytes).ctx(|| format!("write {}", tmp.display()))?;
        f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
        std::fs::rename(&tmp, p).ctx(|| format!("rename {} to {}", tmp.display(), p.display()))?;
        sync_dir(dir)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard (or URL-safe) base64, padding optional; None when malformed.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for (plain, enc) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("user:p@ss", "dXNlcjpwQHNz")] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("a*b").is_none());
    }

    #[test]
    fn stored_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("skiff-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!set(&dir, "127.0.0.1:5000", Some(("u", "p:w"))).unwrap());
        assert_eq!(credentials(&dir, "127.0.0.1:5000").unwrap(), Some(("u".into(), "p:w".into())));
        assert_eq!(std::fs::metadata(dir.join(FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(credentials(&dir, "docker.io").unwrap(), None);
        assert!(set(&dir, "127.0.0.1:5000", None).unwrap());
        assert_eq!(credentials(&dir, "127.0.0.1:5000").unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
