//! engine pull/push/login against a private registry (Debian's
//! docker-registry) on 127.0.0.1, started and killed by each test with its
//! own storage dir: push then pull by tag and by digest and run the result,
//! a multi-arch OCI index with `--platform` selection, the Bearer token flow
//! (a token server and an authenticating proxy written here), a pull killed
//! with SIGKILL (once midway, then again and again at varied points) resumed
//! without fetching again what it had verified, connections that drop picked
//! up with Range requests, concurrent pulls of images sharing layers, the
//! peak memory of pulling and pushing a 200 MiB layer, and a corrupted blob
//! refused with nothing left in the store. Everything stays on loopback.

use skiff_tests::engine::Engine;
use skiff_tests::registry::{http, sha256, Registry};
use skiff_tests::{require, run, text, wait_until, TempDir};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);

/// What the proxy does to the traffic it forwards.
#[derive(Default)]
struct Policy {
    /// Requests under /v2/ need `Authorization: Bearer TOKEN`; else a 401
    /// challenge names `realm`.
    token: Option<String>,
    realm: String,
    /// Blob digest whose body is sent at this many bytes per second.
    slow: Option<(String, u64)>,
    /// Blob digest whose body gets one byte flipped halfway.
    corrupt: Option<String>,
    /// Blob digest whose connection is closed after this many body bytes.
    drop_after: Option<(String, u64)>,
    /// `METHOD PATH` of each request seen.
    log: Vec<String>,
    /// `Authorization` of each request under /v2/ (None: none).
    auth_log: Vec<Option<String>>,
    /// Body bytes sent so far per blob digest.
    sent: HashMap<String, u64>,
}

/// A one-request-per-connection HTTP proxy in front of a registry.
struct Proxy {
    port: u16,
    policy: Arc<Mutex<Policy>>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = l.local_addr().unwrap().port();
        let policy = Arc::new(Mutex::new(Policy::default()));
        let p = policy.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(c) = conn else { continue };
                let p = p.clone();
                std::thread::spawn(move || {
                    let _ = proxy_one(c, upstream, &p);
                });
            }
        });
        Proxy { port, policy }
    }

    fn name(&self, name: &str) -> String {
        format!("127.0.0.1:{}/{name}", self.port)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Policy) -> T) -> T {
        f(&mut self.policy.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Reads up to and including the blank line that ends an HTTP head.
fn read_head(s: &mut impl Read) -> io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b)? == 0 {
            return if head.is_empty() { Ok(None) } else { Err(io::Error::other("truncated head")) };
        }
        head.push(b[0]);
        if head.len() > 64 << 10 {
            return Err(io::Error::other("head too long"));
        }
    }
    Ok(Some(text(&head)))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).filter_map(|l| l.split_once(':')).find(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
}

/// The head with `Connection: close` in place of any Connection header.
fn closing(head: &str) -> String {
    let mut out: Vec<&str> = head.trim_end().split("\r\n").filter(|l| !l.to_lowercase().starts_with("connection:")).collect();
    out.push("Connection: close");
    format!("{}\r\n\r\n", out.join("\r\n"))
}

fn proxy_one(mut client: TcpStream, upstream: u16, policy: &Mutex<Policy>) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let Some(head) = read_head(&mut client)? else {
        return Ok(());
    };
    let mut words = head.split(' ');
    let (method, path) = (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
    let len: u64 = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(header(&head, "transfer-encoding").is_none(), "the test proxy takes only Content-Length request bodies: {head}");
    let mut body = Vec::new();
    (&mut client).take(len).read_to_end(&mut body)?;
    let blob = path.split_once("/blobs/").map(|(_, d)| d.split('?').next().unwrap_or("").to_string()).filter(|d| d.starts_with("sha256:"));
    let auth = header(&head, "authorization").map(String::from);
    let (challenge, slow, corrupt, drop_after) = {
        let mut p = policy.lock().unwrap_or_else(|e| e.into_inner());
        p.log.push(format!("{method} {path}"));
        if path.starts_with("/v2/") {
            p.auth_log.push(auth.clone());
        }
        let challenge = match &p.token {
            Some(t) if path.starts_with("/v2/") && auth.as_deref() != Some(&format!("Bearer {t}")) => {
                let repo = path.strip_prefix("/v2/").and_then(|r| r.split_once("/manifests/").or(r.split_once("/blobs/"))).map(|(n, _)| n.to_string());
                let actions = if method == "GET" || method == "HEAD" { "pull" } else { "pull,push" };
                let scope = repo.map(|r| format!(",scope=\"repository:{r}:{actions}\"")).unwrap_or_default();
                Some(format!("Bearer realm=\"{}\",service=\"test-registry\"{scope}", p.realm))
            }
            _ => None,
        };
        let pick = |x: &Option<(String, u64)>| x.as_ref().filter(|(d, _)| blob.as_deref() == Some(d)).map(|(_, n)| *n);
        (challenge, pick(&p.slow), blob.as_ref().filter(|d| p.corrupt.as_ref() == Some(*d)).is_some(), pick(&p.drop_after))
    };
    if let Some(ch) = challenge {
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        let resp = format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {ch}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        client.write_all(resp.as_bytes())?;
        client.write_all(body)?;
        return Ok(());
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    up.write_all(closing(&head).as_bytes())?;
    up.write_all(&body)?;
    let Some(rhead) = read_head(&mut up)? else {
        return Ok(());
    };
    client.write_all(closing(&rhead).as_bytes())?;
    let total: u64 = header(&rhead, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let (start, mut sent) = (Instant::now(), 0u64);
    let mut buf = vec![0u8; if slow.is_some() { 8 << 10 } else { 64 << 10 }];
    loop {
        let n = match up.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return Err(e),
        };
        let chunk = &mut buf[..n];
        if corrupt && method == "GET" && sent <= total / 2 && total / 2 < sent + n as u64 {
            chunk[(total / 2 - sent) as usize] ^= 0x5a;
        }
        if let Some(limit) = drop_after.filter(|_| method == "GET") {
            if sent + n as u64 >= limit {
                let keep = (limit - sent) as usize;
                client.write_all(&chunk[..keep])?;
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
        client.write_all(chunk)?;
        sent += n as u64;
        if let Some(d) = &blob {
            *policy.lock().unwrap_or_else(|e| e.into_inner()).sent.entry(d.clone()).or_default() += n as u64;
        }
        if let Some(rate) = slow.filter(|_| method == "GET") {
            let due = Duration::from_micros(sent * 1_000_000 / rate.max(1));
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    Ok(())
}

/// A token server on loopback: `GET /token?...` answers a fixed token,
/// refusing wrong Basic credentials; it logs (path and query, Authorization).
struct TokenServer {
    port: u16,
    log: Arc<Mutex<TokenLog>>,
}

/// (path and query, Authorization) of each token request.
type TokenLog = Vec<(String, Option<String>)>;

impl TokenServer {
    fn start(token: &str, user: &str, password: &str) -> TokenServer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        let port = l.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (token, log2) = (token.to_string(), log.clone());
        let good = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
                let Ok(Some(head)) = read_head(&mut c) else {
                    continue;
                };
                let target = head.split(' ').nth(1).unwrap_or("").to_string();
                let auth = header(&head, "authorization").map(String::from);
                log2.lock().unwrap_or_else(|e| e.into_inner()).push((target.clone(), auth.clone()));
                let ok = target.starts_with("/token") && auth.as_ref().is_none_or(|a| *a == good);
                let (status, body) = if ok { ("200 OK", format!("{{\"token\":\"{token}\",\"expires_in\":300}}")) } else { ("401 Unauthorized", "{}".into()) };
                let _ = write!(c, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
        });
        TokenServer { port, log }
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}


fn sh(script: &str) {
    let o = run(Command::new("sh").arg("-c").arg(script), T);
    assert!(o.status.success(), "{script}: {}", text(&o.stderr));
}

/// `registry::busybox_variant`, gzip-compressed when `gzip`.
fn busybox_variant(dir: &Path, marker: &str, gzip: bool) -> PathBuf {
    let tar = skiff_tests::registry::busybox_variant(dir, marker);
    if !gzip {
        return tar;
    }
    sh(&format!("gzip -f '{}'", tar.display()));
    dir.join(format!("{marker}.tar.gz"))
}

/// A docker-save archive of one image: `layers` (plain tars), an image
/// config for `arch` running `sh`, tagged `tag`.
fn save_archive(dir: &Path, tag: &str, arch: &str, layers: &[PathBuf]) -> PathBuf {
    let work = dir.join(format!("save-{arch}-{}", layers.len()));
    std::fs::create_dir_all(&work).unwrap();
    let mut names = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        std::fs::copy(l, work.join(format!("l{i}.tar"))).unwrap();
        names.push(format!("l{i}.tar"));
        diff_ids.push(sha256(l));
    }
    let cfg = serde_json::json!({
        "architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": { "Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    std::fs::write(work.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let manifest = serde_json::json!([{ "Config": "config.json", "RepoTags": [tag], "Layers": names }]);
    std::fs::write(work.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    let out = dir.join(format!("save-{arch}-{}.tar", layers.len()));
    sh(&format!("tar -C '{}' -cf '{}' .", work.display(), out.display()));
    out
}

/// A tar holding `/big`: `size` pseudo-random bytes (incompressible, distinct per seed).
fn big_layer(dir: &Path, seed: u64, size: usize) -> PathBuf {
    let d = dir.join(format!("big-{seed}"));
    std::fs::create_dir_all(&d).unwrap();
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(size);
    std::fs::write(d.join("big"), data).unwrap();
    let out = dir.join(format!("big-{seed}.tar"));
    sh(&format!("tar -C '{}' --numeric-owner -cf '{}' big", d.display(), out.display()));
    out
}

/// `TAG: digest: D size: N` of push output -> (D, N).
fn pushed(out: &str) -> (String, u64) {
    let line = out.lines().find(|l| l.contains(": digest: ")).unwrap_or_else(|| panic!("no digest line in: {out}"));
    let d = line.split(": digest: ").nth(1).unwrap().split(' ').next().unwrap().to_string();
    let n = line.rsplit(' ').next().unwrap().parse().unwrap();
    (d, n)
}

/// Records of pulls under way and temp files: none once a pull is done.
fn pull_leftovers(e: &Engine) -> Vec<String> {
    content(e).into_iter().filter(|p| p.contains("/images/pulls/") || p.contains("/images/tmp/")).collect()
}

/// Paths holding content in a store (blobs, layers, temp files, pending pulls).
fn content(e: &Engine) -> Vec<String> {
    let s = e.root().join("images");
    let mut out = Vec::new();
    for d in ["blobs/sha256", "layers", "tmp", "pulls"] {
        for x in std::fs::read_dir(s.join(d)).into_iter().flatten().flatten() {
            out.push(x.path().display().to_string());
        }
    }
    out.sort();
    out
}

fn fails(out: &Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} succeeded: {}", text(&out.stdout));
    text(&out.stderr)
}

/// `REPOSITORY:TAG ID` of each image.
fn image_tags(e: &Engine) -> String {
    let out = e.ok(&["images", "--format", "json"]);
    let line = |l: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|err| panic!("images --format json: {err}: {l}"));
        format!("{}:{} {}\n", v["Repository"].as_str().unwrap_or(""), v["Tag"].as_str().unwrap_or(""), v["ID"].as_str().unwrap_or(""))
    };
    out.lines().filter(|l| !l.trim().is_empty()).map(line).collect()
}

#[test]
fn push_then_pull_by_tag_and_digest_and_run() {
    let reg = Registry::start();
    let (e1, e2) = (Engine::new("reg-push"), Engine::new("reg-pull"));
    let tar = busybox_variant(e1.dir.path(), "pushed-and-pulled", true);
    let name = reg.name("skiff/bb:v1");
    e1.ok(&["import", &tar.to_string_lossy(), &name]);
    let out = e1.ok(&["push", &name]);
    assert!(out.contains(&format!("The push refers to repository [{}]", reg.name("skiff/bb"))), "{out}");
    assert_eq!(out.matches(": Pushed").count(), 2, "a layer and the config: {out}");
    let (digest, size) = pushed(&out);
    let again = e1.ok(&["push", &name]);
    assert_eq!(again.matches("Layer already exists").count(), 2, "{again}");
    assert_eq!(pushed(&again).0, digest);

    // the registry has it under that digest
    let (status, hs, body) =
        http(reg.port, "GET", &format!("/v2/skiff/bb/manifests/{digest}"), &[("Accept", "application/vnd.oci.image.manifest.v1+json")], b"").unwrap();
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(body.len() as u64, size);
    assert!(hs.iter().any(|(k, v)| k == "docker-content-digest" && *v == digest), "{hs:?}");

    // a cross-repository mount
    let other = reg.name("skiff/other:v1");
    e1.ok(&["tag", &name, &other]);
    let out = e1.ok(&["push", &other]);
    assert_eq!(out.matches("Mounted from skiff/bb").count(), 2, "{out}");

    // by tag, into a store that has none of it
    let out = e2.ok(&["pull", &name]);
    assert!(out.contains("v1: Pulling from skiff/bb") && out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")) && out.trim_end().ends_with(&name), "{out}");
    let id1 = e1.inspect_image(&name);
    assert_eq!(e2.inspect_image(&name), id1, "the same config, the same image id");
    let run = e2.ok(&["run", "--rm", "--network", "none", &name, "cat", "/marker"]);
    assert_eq!(run.trim(), "pushed-and-pulled");
    let out = e2.ok(&["pull", &name]);
    assert!(out.contains(&format!("Status: Image is up to date for {name}")), "{out}");

    // run pulls a missing image first (docker's lines on stderr, stdout the
    // container's); --pull always pulls again; --pull never does not.
    let e4 = Engine::new("reg-run");
    let out = e4.run(&["run", "--rm", "--network", "none", &name, "cat", "/marker"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "pushed-and-pulled");
    let err = text(&out.stderr);
    assert!(err.contains(&format!("Unable to find image '{name}' locally")) && err.contains("Pull complete"), "{err}");
    let out = e4.run(&["run", "--rm", "--network", "none", "--pull", "always", &name, "true"]);
    assert!(out.status.success() && text(&out.stderr).contains("Image is up to date"), "{}", text(&out.stderr));
    let gone = reg.name("skiff/bb:nope");
    let out = e4.run(&["run", "--rm", "--pull", "never", &gone, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(!text(&out.stderr).contains("Pulling"), "{}", text(&out.stderr));

    // by digest, into a third store
    let e3 = Engine::new("reg-digest");
    let by_digest = format!("{}@{digest}", reg.name("skiff/bb"));
    let out = e3.ok(&["pull", "-q", &by_digest]);
    assert_eq!(out.trim(), by_digest, "quiet prints only the name");
    assert_eq!(e3.inspect_image(&by_digest), id1);
    let run = e3.ok(&["run", "--rm", "--network", "none", &by_digest, "cat", "/marker"]);
    assert_eq!(run.trim(), "pushed-and-pulled");
    let wrong = format!("{}@sha256:{}", reg.name("skiff/bb"), "0".repeat(64));
    let err = fails(&e3.run(&["pull", &wrong]), "pull of an unknown digest");
    assert!(err.contains("not found") && err.contains("manifest unknown"), "{err}");
    assert!(content(&e3).iter().all(|p| !p.contains("/images/pulls/") && !p.contains("/images/tmp/")), "{:?}", content(&e3));
    let err = fails(&e3.run(&["push", &reg.name("skiff/none:v1")]), "push of a missing image");
    assert!(err.contains("An image does not exist locally with the tag"), "{err}");
}

#[test]
fn multi_arch_index_platform_selection() {
    let reg = Registry::start();
    let (e1, e2) = (Engine::new("reg-ma-push"), Engine::new("reg-ma-pull"));
    let amd = reg.name("multi:amd64");
    let arm = reg.name("multi:arm64");
    e1.ok(&["import", &busybox_variant(e1.dir.path(), "amd64-image", false).to_string_lossy(), &amd]);
    let small = big_layer(e1.dir.path(), 7, 4096);
    e1.ok(&["load", "-i", &save_archive(e1.dir.path(), &arm, "arm64", &[small]).to_string_lossy()]);
    let (amd_d, amd_n) = pushed(&e1.ok(&["push", &amd]));
    let (arm_d, arm_n) = pushed(&e1.ok(&["push", &arm]));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd_d, "size": amd_n, "platform": { "architecture": "amd64", "os": "linux" } },
            { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_d, "size": arm_n, "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" } },
        ],
    });
    let body = serde_json::to_vec(&index).unwrap();
    let (status, _, resp) = http(reg.port, "PUT", "/v2/multi/manifests/latest", &[("Content-Type", "application/vnd.oci.image.index.v1+json")], &body).unwrap();
    assert_eq!(status, 201, "PUT index: {}", text(&resp));

    let multi = reg.name("multi:latest");
    let out = e2.ok(&["pull", "--platform", "linux/arm64", &multi]);
    let index_digest = format!("sha256:{}", {
        let p = e2.dir.path().join("index.json");
        std::fs::write(&p, &body).unwrap();
        sha256(&p).trim_start_matches("sha256:").to_string()
    });
    assert!(out.contains(&format!("Digest: {index_digest}")), "the index's digest: {out}");
    let v = e2.inspect_json(&multi);
    assert_eq!(v["Architecture"], "arm64", "{v}");
    assert_eq!(v["Id"].as_str(), Some(e1.inspect_image(&arm).as_str()));

    e2.ok(&["pull", &multi]);
    let v = e2.inspect_json(&multi);
    assert_eq!(v["Architecture"], "amd64", "the host's platform by default: {v}");
    assert_eq!(v["Id"].as_str(), Some(e1.inspect_image(&amd).as_str()));
    let run = e2.ok(&["run", "--rm", "--network", "none", &multi, "cat", "/marker"]);
    assert_eq!(run.trim(), "amd64-image");

    let err = fails(&e2.run(&["pull", "--platform", "linux/s390x", &multi]), "pull for a platform the index lacks");
    assert!(err.contains("no matching manifest for linux/s390x") && err.contains("linux/arm64/v8"), "{err}");
    let err = fails(&e2.run(&["pull", "--platform", "linux/arm64", &amd]), "pull of an amd64 image for arm64");
    assert!(err.contains("does not match the specified platform"), "{err}");
}

#[test]
fn token_auth_flow_and_login() {
    let reg = Registry::start();
    let tokens = TokenServer::start("t0ken-for-test", "alice", "wonderland");
    let proxy = Proxy::start(reg.port);
    proxy.with(|p| {
        p.token = Some("t0ken-for-test".into());
        p.realm = format!("http://127.0.0.1:{}/token", tokens.port);
    });
    let (status, hs, _) = http(proxy.port, "GET", "/v2/", &[], b"").unwrap();
    assert_eq!(status, 401);
    assert!(hs.iter().any(|(k, v)| k == "www-authenticate" && v.starts_with("Bearer realm=")), "{hs:?}");

    let (e1, e2) = (Engine::new("reg-auth-push"), Engine::new("reg-auth-pull"));
    let name = proxy.name("secure/bb:v1");
    e1.ok(&["import", &busybox_variant(e1.dir.path(), "behind-a-token", true).to_string_lossy(), &name]);
    let out = e1.ok(&["push", &name]);
    assert!(out.contains(": Pushed"), "{out}");
    let log = tokens.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|(q, _)| q.contains("service=test-registry") && q.contains("scope=repository%3Asecure%2Fbb%3Apull%2Cpush")),
        "token requests: {log:?}"
    );

    let out = e2.ok(&["pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(e2.ok(&["run", "--rm", "--network", "none", &name, "cat", "/marker"]).trim(), "behind-a-token");
    let unauthenticated = proxy.with(|p| p.auth_log.iter().filter(|a| a.is_none()).count());
    assert!(unauthenticated <= 3, "each client is challenged once, then sends its token: {unauthenticated}");

    // login: wrong password refused, nothing stored; right one stored 0600
    let login = |pw: &str| {
        let mut c = e2.cmd(&["login", &format!("127.0.0.1:{}", proxy.port), "-u", "alice", "--password-stdin"]);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn engine login");
        child.stdin.take().unwrap().write_all(format!("{pw}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let err = fails(&login("queen-of-hearts"), "login with a wrong password");
    assert!(err.contains("incorrect username or password"), "{err}");
    let auth_json = e2.root().join("auth.json");
    assert!(!std::fs::read_to_string(&auth_json).unwrap_or_default().contains(&format!("127.0.0.1:{}", proxy.port)));
    let out = login("wonderland");
    assert!(out.status.success(), "login: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "Login Succeeded");
    assert_eq!(std::fs::metadata(&auth_json).unwrap().permissions().mode() & 0o777, 0o600);
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth_json).unwrap()).unwrap();
    assert_eq!(stored["auths"][format!("127.0.0.1:{}", proxy.port)]["auth"], base64(b"alice:wonderland"));

    // pulls now ask for tokens as alice
    tokens.log.lock().unwrap().clear();
    e2.ok(&["rmi", &name]);
    e2.ok(&["pull", &name]);
    let log = tokens.log.lock().unwrap().clone();
    let basic = format!("Basic {}", base64(b"alice:wonderland"));
    assert!(!log.is_empty() && log.iter().all(|(q, a)| a.as_deref() == Some(basic.as_str()) && q.contains("account=alice")), "{log:?}");
    let out = e2.ok(&["logout", &format!("127.0.0.1:{}", proxy.port)]);
    assert_eq!(out.trim(), format!("Removing login credentials for 127.0.0.1:{}", proxy.port));
    assert!(!std::fs::read_to_string(&auth_json).unwrap().contains(&format!("127.0.0.1:{}", proxy.port)));
}

/// A two-layer image (busybox + a 3 MiB random file) pushed to `reg` as
/// `name`: (busybox layer blob, big layer blob).
fn two_layer_image(e: &Engine, reg: &Registry, name: &str, seed: u64) -> (String, String) {
    let l1 = busybox_variant(e.dir.path(), &format!("two-layers-{seed}"), false);
    let l2 = big_layer(e.dir.path(), seed, 3 << 20);
    let (d1, d2) = (sha256(&l1), sha256(&l2));
    e.ok(&["load", "-i", &save_archive(e.dir.path(), &reg.name(name), &Engine::host_arch(), &[l1, l2]).to_string_lossy()]);
    e.ok(&["push", &reg.name(name)]);
    (d1, d2)
}

fn blob_path(e: &Engine, digest: &str) -> PathBuf {
    e.root().join("images/blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// The dir of the bottom layer whose (uncompressed) blob is `digest`: its chain id is its diff id.
fn base_layer_dir(e: &Engine, digest: &str) -> PathBuf {
    e.root().join("images/layers").join(digest.trim_start_matches("sha256:"))
}

/// The layers the store holds (their dirs).
fn layers(e: &Engine) -> Vec<PathBuf> {
    std::fs::read_dir(e.root().join("images/layers")).into_iter().flatten().flatten().map(|d| d.path()).collect()
}

/// The layers added since `before`.
fn new_layers(e: &Engine, before: &[PathBuf]) -> Vec<PathBuf> {
    layers(e).into_iter().filter(|l| !before.contains(l)).collect()
}

#[test]
fn killed_pull_resumes_without_refetching() {
    let reg = Registry::start();
    let (e1, e2) = (Engine::new("reg-kill-push"), Engine::new("reg-kill-pull"));
    let (l1, l2) = two_layer_image(&e1, &reg, "two:v1", 11);
    let proxy = Proxy::start(reg.port);
    proxy.with(|p| p.slow = Some((l2.clone(), 256 << 10)));
    let name = proxy.name("two:v1");
    let before = layers(&e2);
    let mut child = e2.cmd(&["pull", &name]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn pull");
    let midway = wait_until(Duration::from_secs(30), || proxy.with(|p| p.sent.get(&l2).copied().unwrap_or(0)) >= 512 << 10);
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    assert!(midway, "the slowed layer never got going: {:?}", proxy.with(|p| p.log.clone()));

    assert!(!image_tags(&e2).contains("two"), "a half-pulled image is visible: {}", image_tags(&e2));
    assert!(base_layer_dir(&e2, &l1).join("layer.json").is_file(), "the verified first layer is kept");
    assert_eq!(new_layers(&e2, &before), [base_layer_dir(&e2, &l1)], "only the verified layer was added to the store");
    assert!(!blob_path(&e2, &l1).exists() && !blob_path(&e2, &l2).exists(), "layer blobs are written to the store (they should only be unpacked)");
    // another writer's garbage collection keeps what the killed pull verified
    let small = big_layer(e2.dir.path(), 99, 1000);
    e2.ok(&["import", &small.to_string_lossy(), "unrelated"]);
    assert!(base_layer_dir(&e2, &l1).join("layer.json").is_file(), "garbage collection took the interrupted pull's layer");
    assert_eq!(std::fs::read_dir(e2.root().join("images/pulls")).unwrap().count(), 1);

    proxy.with(|p| {
        p.slow = None;
        p.log.clear();
    });
    let out = e2.ok(&["pull", &name]);
    assert!(out.contains("Already exists") && out.contains("Pull complete"), "{out}");
    let log = proxy.with(|p| p.log.clone());
    assert!(!log.iter().any(|l| l.contains(&l1)), "the verified layer was fetched again: {log:?}");
    assert_eq!(log.iter().filter(|l| l.starts_with("GET") && l.contains(&l2)).count(), 1, "{log:?}");
    let run = e2.ok(&["run", "--rm", "--network", "none", &name, "sh", "-c", "test $(wc -c < /big) = 3145728 && cat /marker"]);
    assert_eq!(run.trim(), "two-layers-11");
    let left = pull_leftovers(&e2);
    assert!(left.is_empty(), "left over: {left:?}");
}

#[test]
fn dropped_connections_are_resumed_with_ranges() {
    let reg = Registry::start();
    let (e1, e2) = (Engine::new("reg-drop-push"), Engine::new("reg-drop-pull"));
    let (l1, l2) = two_layer_image(&e1, &reg, "drop:v1", 12);
    let size = std::fs::metadata(reg.blob_file(&l2)).unwrap().len();
    let proxy = Proxy::start(reg.port);
    // every connection for the big layer drops after 1 MiB: the pull goes on with Range requests
    proxy.with(|p| p.drop_after = Some((l2.clone(), 1 << 20)));
    let name = proxy.name("drop:v1");
    e2.ok(&["pull", &name]);
    let (gets, sent) = proxy.with(|p| (p.log.iter().filter(|l| l.starts_with("GET") && l.contains(&l2)).count(), p.sent.get(&l2).copied().unwrap_or(0)));
    assert!(gets >= 3, "the layer came in {gets} requests");
    assert!(sent <= size + (64 << 10), "{sent} bytes were sent for a {size}-byte layer: what arrived was fetched again");
    assert_eq!(e2.ok(&["run", "--rm", "--network", "none", &name, "cat", "/marker"]).trim(), "two-layers-12");

    // a connection that keeps dropping: the pull gives up, keeps what it verified, and the next one resumes
    let e3 = Engine::new("reg-drop-pull2");
    let before = layers(&e3);
    proxy.with(|p| p.drop_after = Some((l2.clone(), 32 << 10)));
    let err = fails(&e3.run(&["pull", &name]), "a pull whose connection keeps dropping");
    assert!(err.contains("pull again to resume"), "{err}");
    assert!(!image_tags(&e3).contains("drop"));
    assert_eq!(new_layers(&e3, &before), [base_layer_dir(&e3, &l1)], "only the verified layer was added to the store");
    proxy.with(|p| {
        p.drop_after = None;
        p.log.clear();
    });
    e3.ok(&["pull", &name]);
    assert!(!proxy.with(|p| p.log.iter().any(|l| l.contains(&l1))), "the verified layer was fetched again");
    assert_eq!(e3.ok(&["run", "--rm", "--network", "none", &name, "cat", "/marker"]).trim(), "two-layers-12");
}


#[test]
fn digest_mismatch_refused_with_nothing_left() {
    let reg = Registry::start();
    let (e1, e2) = (Engine::new("reg-bad-push"), Engine::new("reg-bad-pull"));
    let tar = busybox_variant(e1.dir.path(), "corrupted-on-the-way", false);
    let layer = sha256(&tar);
    e1.ok(&["import", &tar.to_string_lossy(), &reg.name("bad:v1")]);
    e1.ok(&["push", &reg.name("bad:v1")]);
    let proxy = Proxy::start(reg.port);
    proxy.with(|p| p.corrupt = Some(layer.clone()));
    let before = content(&e2);
    let images_before = image_tags(&e2);
    let err = fails(&e2.run(&["pull", &proxy.name("bad:v1")]), "pull of a corrupted blob");
    assert!(err.contains("digest mismatch") && err.contains(&layer), "{err}");
    assert!(!err.contains("resume"), "a content error is not resumable: {err}");
    assert_eq!(content(&e2), before, "the store changed");
    assert_eq!(image_tags(&e2), images_before);
    assert!(proxy.with(|p| p.sent.get(&layer).copied().unwrap_or(0)) > 0, "the corrupted blob was fetched");
}

trait EngineExt {
    fn inspect_json(&self, name: &str) -> serde_json::Value;
    fn inspect_image(&self, name: &str) -> String;
    fn host_arch() -> String;
}

impl EngineExt for Engine {
    fn inspect_json(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["image", "inspect", name])).expect("image inspect JSON");
        v[0].clone()
    }

    fn inspect_image(&self, name: &str) -> String {
        self.inspect_json(name)["Id"].as_str().unwrap_or_default().to_string()
    }

    fn host_arch() -> String {
        match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }
        .to_string()
    }
}

/// A CONNECT proxy on loopback that takes every tunnel to 127.0.0.1:`to`,
/// logging the targets asked for (so a test can speak HTTPS to a registry
/// by a name that resolves nowhere).
fn connect_proxy(to: u16) -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind the CONNECT proxy");
    let port = l.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let log = log2.clone();
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
                let Ok(Some(head)) = read_head(&mut c) else {
                    return;
                };
                log.lock().unwrap_or_else(|e| e.into_inner()).push(head.lines().next().unwrap_or("").to_string());
                let Ok(up) = TcpStream::connect(("127.0.0.1", to)) else {
                    return;
                };
                if c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").is_err() {
                    return;
                }
                let (mut c2, mut up2) = (c.try_clone().unwrap(), up.try_clone().unwrap());
                let t = std::thread::spawn(move || {
                    let _ = io::copy(&mut c2, &mut up2);
                    let _ = up2.shutdown(Shutdown::Write);
                });
                let (mut up, mut c) = (up, c);
                let _ = io::copy(&mut up, &mut c);
                let _ = c.shutdown(Shutdown::Write);
                let _ = t.join();
            });
        }
    });
    (port, log)
}

#[test]
fn https_registry_verified_against_the_ca_bundle() {
    require("/usr/bin/openssl", "openssl");
    let certs = TempDir::new("reg-tls");
    let d = certs.path();
    let host = "registry.skiff.test";
    sh(&format!(
        "cd '{}' && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=skiff-test-ca -keyout ca.key -out ca.pem \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null \
         && openssl req -newkey rsa:2048 -nodes -subj /CN={host} -keyout reg.key -out reg.csr 2>/dev/null \
         && printf 'subjectAltName=DNS:{host}\\nbasicConstraints=critical,CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext \
         && openssl x509 -req -in reg.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out reg.pem 2>/dev/null",
        d.display()
    ));
    let reg = Registry::start_with(Some((&d.join("reg.pem"), &d.join("reg.key"))));
    let (proxy, tunnels) = connect_proxy(reg.port);
    let (e1, e2) = (Engine::new("reg-tls-push"), Engine::new("reg-tls-pull"));
    let name = format!("{host}/skiff/tls:v1");
    e1.ok(&["import", &busybox_variant(e1.dir.path(), "over-tls", true).to_string_lossy(), &name]);
    let with_env = |e: &Engine, args: &[&str], ca: Option<&Path>| {
        let mut c = e.cmd(args);
        c.env("HTTPS_PROXY", format!("http://127.0.0.1:{proxy}")).env_remove("NO_PROXY").env_remove("no_proxy");
        match ca {
            Some(p) => c.env("SSL_CERT_FILE", p),
            None => c.env_remove("SSL_CERT_FILE"),
        };
        run(&mut c, T)
    };
    let ca = d.join("ca.pem");
    let out = with_env(&e1, &["push", &name], Some(&ca));
    assert!(out.status.success(), "push over HTTPS: {}", text(&out.stderr));
    let out = with_env(&e2, &["pull", &name], Some(&ca));
    assert!(out.status.success(), "pull over HTTPS: {}", text(&out.stderr));
    assert!(tunnels.lock().unwrap().iter().all(|t| t.starts_with(&format!("CONNECT {host}:443 "))), "{:?}", tunnels.lock().unwrap());
    assert_eq!(e2.ok(&["run", "--rm", "--network", "none", &name, "cat", "/marker"]).trim(), "over-tls");
    // the system bundle does not know the test CA: refused
    e2.ok(&["rmi", &name]);
    let err = fails(&with_env(&e2, &["pull", &name], None), "pull from a registry with an unknown CA");
    assert!(err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"), "{err}");
}

#[test]
fn concurrent_pulls_of_images_sharing_layers() {
    let reg = Registry::start();
    let (e1, e2) = (Engine::new("reg-conc-push"), Engine::new("reg-conc-pull"));
    let base = busybox_variant(e1.dir.path(), "shared-base", false);
    let (a, b) = (big_layer(e1.dir.path(), 31, 1 << 20), big_layer(e1.dir.path(), 32, 1 << 20));
    for (tag, top) in [("conc:a", &a), ("conc:b", &b)] {
        let archive = save_archive(e1.dir.path(), &reg.name(tag), &Engine::host_arch(), &[base.clone(), top.clone()]);
        e1.ok(&["load", "-i", &archive.to_string_lossy()]);
        e1.ok(&["push", &reg.name(tag)]);
    }
    let before = layers(&e2);
    // four pulls at once into one store: two of each image, all sharing the base layer
    let children: Vec<(String, Child)> = ["conc:a", "conc:b", "conc:a", "conc:b"]
        .iter()
        .map(|t| {
            (t.to_string(), e2.cmd(&["pull", &reg.name(t)]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn pull"))
        })
        .collect();
    for (tag, child) in children {
        let out = child.wait_with_output().expect("wait for pull");
        assert!(out.status.success(), "pull {tag}: {}{}", text(&out.stdout), text(&out.stderr));
    }
    assert_eq!(new_layers(&e2, &before).len(), 3, "the shared base once, and one top layer per image");
    for (tag, seed) in [("conc:a", 31), ("conc:b", 32)] {
        let sum = e2.ok(&["run", "--rm", "--network", "none", &reg.name(tag), "sh", "-c", "cat /marker; echo; md5sum < /big"]);
        assert_eq!(sum.lines().next(), Some("shared-base"), "{sum}");
        let want = run(Command::new("sh").arg("-c").arg(format!("tar -xOf '{}' big | md5sum", e1.dir.path().join(format!("big-{seed}.tar")).display())), T);
        assert_eq!(sum.lines().nth(1).unwrap_or(""), text(&want.stdout).trim(), "{tag}");
    }
    let left = pull_leftovers(&e2);
    assert!(left.is_empty(), "left over: {left:?}");
}

#[test]
fn pulls_killed_at_many_points_leave_a_consistent_store() {
    let reg = Registry::start();
    let (e1, e2) = (Engine::new("reg-kills-push"), Engine::new("reg-kills-pull"));
    let l1 = busybox_variant(e1.dir.path(), "killed-often", false);
    let layers_in: Vec<PathBuf> = std::iter::once(l1).chain((0..3).map(|i| big_layer(e1.dir.path(), 40 + i, 2 << 20))).collect();
    let archive = save_archive(e1.dir.path(), &reg.name("kills:v1"), &Engine::host_arch(), &layers_in);
    e1.ok(&["load", "-i", &archive.to_string_lossy()]);
    e1.ok(&["push", &reg.name("kills:v1")]);
    let proxy = Proxy::start(reg.port);
    let name = proxy.name("kills:v1");
    // the last layer slow, so that the kills land inside transfers, unpacking and commits
    let last = sha256(layers_in.last().unwrap());
    proxy.with(|p| p.slow = Some((last, 1 << 20)));
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    let mut delays = Vec::new();
    for i in 0..6u64 {
        let ms = 30 + (seed.wrapping_mul(2654435761).wrapping_add(i * 7919)) % 1500;
        delays.push(ms);
        let mut child = e2.cmd(&["pull", &name]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn pull");
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // whatever the point, the store reads, and an image it shows is complete
        let listed = e2.ok(&["images", "--format", "json"]);
        if listed.contains("kills") {
            e2.ok(&["image", "inspect", &name]);
        }
        for l in layers(&e2) {
            assert!(l.join("layer.json").is_file() && l.join("diff").is_dir(), "after a kill at {ms} ms: incomplete layer {}", l.display());
        }
    }
    proxy.with(|p| p.slow = None);
    let out = e2.ok(&["pull", &name]);
    assert!(out.contains("Status: "), "{out}");
    let run = e2.ok(&["run", "--rm", "--network", "none", &name, "sh", "-c", "cat /marker; echo; wc -c < /big"]);
    assert_eq!(run.split_whitespace().collect::<Vec<_>>(), ["killed-often", "2097152"], "kills at {delays:?} ms");
    let left = pull_leftovers(&e2);
    assert!(left.is_empty(), "left over after kills at {delays:?} ms: {left:?}");
}

/// Peak resident memory (KiB) of `cmd` run to its end: its VmHWM, read
/// every 10 ms until it exits (rusage would count the test process's own
/// memory when the spawn forks it).
fn max_rss_kib(mut cmd: Command) -> (std::process::ExitStatus, u64) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let status = format!("/proc/{}/status", child.id());
    let (start, mut peak) = (Instant::now(), 0);
    loop {
        if let Ok(s) = std::fs::read_to_string(&status) {
            let hwm = s.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        if let Some(st) = child.try_wait().expect("wait") {
            return (st, peak);
        }
        assert!(start.elapsed() < T, "{cmd:?} did not finish in {T:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn pull_of_a_200_mib_layer_stays_under_32_mib_resident() {
    let reg = Registry::start();
    let (e1, e2) = (Engine::new("reg-rss-push"), Engine::new("reg-rss-pull"));
    let big = big_layer(e1.dir.path(), 77, 200 << 20);
    let archive = save_archive(e1.dir.path(), &reg.name("rss:v1"), &Engine::host_arch(), std::slice::from_ref(&big));
    let diff_id = sha256(&big);
    std::fs::remove_file(&big).unwrap();
    e1.ok(&["load", "-i", &archive.to_string_lossy()]);
    std::fs::remove_file(&archive).unwrap();
    let (st, push_kib) = max_rss_kib(e1.cmd(&["push", &reg.name("rss:v1")]));
    assert!(st.success(), "push failed");
    let (st, pull_kib) = max_rss_kib(e2.cmd(&["pull", &reg.name("rss:v1")]));
    assert!(st.success(), "pull failed");
    assert!(pull_kib > 0 && push_kib > 0, "no memory figure was read");
    assert!(pull_kib < 32 << 10, "pulling a 200 MiB layer took {pull_kib} KiB resident");
    assert!(push_kib < 32 << 10, "pushing a 200 MiB layer took {push_kib} KiB resident");
    let file = base_layer_dir(&e2, &diff_id).join("diff/big");
    assert_eq!(std::fs::metadata(&file).map(|m| m.len()).ok(), Some(200 << 20), "{}", file.display());
    eprintln!("peak RSS: pull {pull_kib} KiB, push {push_kib} KiB");
}

/// Images the engine makes (build's RUN and COPY layers, commit's layer)
/// push and pull like any other: the registry gets their uncompressed
/// layers under their diff ids, another store pulls the same image id and
/// runs it.
#[test]
fn built_and_committed_images_push_and_pull() {
    let reg = Registry::start();
    let (e1, e2) = (Engine::new("reg-build"), Engine::new("reg-build-pull"));
    let ctx = e1.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("note"), "copied\n").unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo ran > /ran\nCOPY note /note\nCMD [\"cat\", \"/ran\", \"/note\"]\n").unwrap();
    let built = reg.name("skiff/built:1");
    e1.ok(&["build", "--network", "none", "-t", &built, &ctx.to_string_lossy()]);
    let out = e1.ok(&["push", &built]);
    assert_eq!(out.matches(": Pushed").count(), 4, "busybox's layer, RUN's, COPY's and the config: {out}");
    let id = e1.ok(&["run", "-d", "--network", "none", &built, "sh", "-c", "echo changed > /c; sleep 60"]).trim().to_string();
    assert!(wait_until(std::time::Duration::from_secs(20), || e1.run(&["exec", &id, "test", "-e", "/c"]).status.success()));
    let snap = reg.name("skiff/snap:1");
    e1.ok(&["commit", &id, &snap]);
    e1.ok(&["push", &snap]);
    e1.ok(&["rm", "-f", &id]);

    e2.ok(&["pull", &built]);
    e2.ok(&["pull", &snap]);
    assert_eq!(e2.inspect_image(&built), e1.inspect_image(&built));
    assert_eq!(e2.inspect_image(&snap), e1.inspect_image(&snap));
    assert_eq!(e2.ok(&["run", "--rm", "--network", "none", &built]), "ran\ncopied\n");
    assert_eq!(e2.ok(&["run", "--rm", "--network", "none", &snap, "cat", "/c", "/note"]), "changed\ncopied\n");
}
