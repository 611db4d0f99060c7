//! A private docker-registry (Debian's `docker-registry`) on 127.0.0.1 for
//! the image tests, with its own storage dir, and a minimal HTTP/1.1 client
//! to talk to it (and to the test proxies and token servers) directly.

use crate::{free_tcp_port, require, text, wait_until, TempDir};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// A docker-registry serving 127.0.0.1:port from its own storage dir.
pub struct Registry {
    child: Child,
    pub port: u16,
    /// Its config, log and storage (`data/`).
    pub dir: TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    /// With `tls` (certificate, key): HTTPS only.
    pub fn start_with(tls: Option<(&Path, &Path)>) -> Registry {
        let exe = require("/usr/bin/docker-registry", "docker-registry");
        let dir = TempDir::new("registry");
        for _ in 0..5 {
            let port = free_tcp_port();
            let cfg = dir.path().join("config.yml");
            let mut yaml = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            );
            if let Some((cert, key)) = tls {
                yaml += &format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display());
            }
            std::fs::write(&cfg, yaml).unwrap();
            let log = File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new(&exe)
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let up = wait_until(Duration::from_secs(20), || {
                matches!(child.try_wait(), Ok(Some(_)))
                    || match tls {
                        None => http(port, "GET", "/v2/", &[], b"").map(|r| r.0 == 200).unwrap_or(false),
                        Some(_) => TcpStream::connect(("127.0.0.1", port)).is_ok(),
                    }
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return Registry { child, port, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        panic!("docker-registry did not start: {log}");
    }

    /// `127.0.0.1:PORT/NAME`.
    pub fn name(&self, name: &str) -> String {
        format!("127.0.0.1:{}/{name}", self.port)
    }

    /// Uploads `data` as a blob of `repo` (POST, then one PUT with the
    /// digest); returns its digest.
    pub fn put_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256_bytes(data);
        let (status, hs, body) = http(self.port, "POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"").unwrap();
        assert_eq!(status, 202, "start an upload: {}", text(&body));
        let location = hs.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone()).expect("upload Location");
        let path = location.strip_prefix(&format!("http://127.0.0.1:{}", self.port)).unwrap_or(&location).to_string();
        let sep = if path.contains('?') { '&' } else { '?' };
        let headers = [("Content-Type", "application/octet-stream")];
        let (status, _, body) = http(self.port, "PUT", &format!("{path}{sep}digest={digest}"), &headers, data).unwrap();
        assert_eq!(status, 201, "finish the upload of {digest}: {}", text(&body));
        digest
    }

    /// Uploads an image: `layer` (a blob already there, of `layer_type`) and a
    /// config listing `diff_id`, under `repo:tag`. Returns the config digest.
    pub fn put_image(&self, repo: &str, tag: &str, layer: (&str, u64, &str), diff_id: &str) -> String {
        let cfg = serde_json::to_vec(&serde_json::json!({
            "architecture": host_arch(), "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": { "Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
            "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        }))
        .unwrap();
        let cfg_digest = self.put_blob(repo, &cfg);
        let (digest, size, media_type) = layer;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": OCI_CONFIG, "digest": cfg_digest, "size": cfg.len() },
            "layers": [{ "mediaType": media_type, "digest": digest, "size": size }],
        }))
        .unwrap();
        let (status, _, body) = http(self.port, "PUT", &format!("/v2/{repo}/manifests/{tag}"), &[("Content-Type", OCI_MANIFEST)], &manifest).unwrap();
        assert_eq!(status, 201, "put manifest {repo}:{tag}: {}", text(&body));
        cfg_digest
    }

    /// Where the registry keeps blob `digest`.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.path().join("data/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to 127.0.0.1:port (Connection: close, bodies with a
/// Content-Length): (status, headers with lowercase names, body).
/// (status, headers, body) of an HTTP response.
pub type Response = (u16, Vec<(String, String)>, Vec<u8>);

pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| io::Error::other("no response head"))?;
    let head = text(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let hs = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string())).collect();
    Ok((status, hs, raw[end + 4..].to_vec()))
}

/// The platform's OCI architecture name (amd64, arm64, ...).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `sha256:<hex>` of `data` (sha256sum, from coreutils).
pub fn sha256_bytes(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn sha256sum");
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success());
    format!("sha256:{}", text(&out.stdout).split_whitespace().next().unwrap())
}


/// The busybox rootfs plus `/marker` (so its layer is new to every store), as a tar.
pub fn busybox_variant(dir: &Path, marker: &str) -> PathBuf {
    let extra = dir.join(format!("extra-{marker}"));
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("marker"), marker).unwrap();
    let tar = dir.join(format!("{marker}.tar"));
    let script = format!(
        "tar -C '{}' --numeric-owner -cf '{}' . && tar -C '{}' --numeric-owner -rf '{}' marker",
        crate::busybox_rootfs().display(),
        tar.display(),
        extra.display(),
        tar.display()
    );
    let o = crate::run(Command::new("sh").arg("-c").arg(&script), Duration::from_secs(120));
    assert!(o.status.success(), "{script}: {}", text(&o.stderr));
    tar
}


/// `sha256:<hex>` of the file `file` (sha256sum).
pub fn sha256(file: &Path) -> String {
    let o = crate::run(Command::new("sha256sum").arg(file), Duration::from_secs(120));
    assert!(o.status.success(), "sha256sum: {}", text(&o.stderr));
    format!("sha256:{}", text(&o.stdout).split_whitespace().next().unwrap_or_default())
}
