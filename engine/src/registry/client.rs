//! One repository of one registry over the distribution API: requests with
//! the right `Authorization`, answering `401` challenges once (Bearer: a
//! token from the challenge's realm for the scopes this client needs, with
//! `engine login` credentials when there are some; Basic: those
//! credentials), and error bodies turned into messages.
//!
//! Transport failures (connection refused or reset, timeouts, 5xx, 429)
//! are flagged in `net_failed`, so a pull can tell an interrupted transfer
//! (resume later) from content that is wrong (drop it).

use super::auth;
use crate::error::{err, Error, Result};
use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::http::Response;
use ureq::Body;

/// What `Accept` asks for on manifest requests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Where Linux distributions keep the system CA bundle (`$SSL_CERT_FILE` first).
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

pub struct Client {
    agent: ureq::Agent,
    /// `https://registry-1.docker.io`.
    pub base: String,
    /// The reference's domain (`docker.io`, `127.0.0.1:5000`).
    pub domain: String,
    /// The repository path (`library/busybox`).
    pub path: String,
    creds: Option<(String, String)>,
    /// The `Authorization` value in use, once a challenge asked for one.
    authorization: Option<String>,
    /// Token scopes (`repository:library/busybox:pull`).
    scopes: Vec<String>,
    /// The last Bearer challenge's realm and service, to ask for more scopes.
    bearer: Option<(String, Option<String>)>,
    /// Set when a request or a body read failed in transit.
    pub net_failed: Rc<Cell<bool>>,
}

/// The CA certificates of the system bundle (none found: an empty list, and
/// HTTPS registries fail to verify, naming the problem).
fn system_roots() -> Vec<ureq::tls::Certificate<'static>> {
    let env = std::env::var("SSL_CERT_FILE").ok();
    let paths = env.iter().map(String::as_str).chain(CA_BUNDLES.iter().copied());
    for p in paths {
        if let Ok(pem) = std::fs::read(p) {
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if !certs.is_empty() {
                return certs;
            }
        }
    }
    Vec::new()
}

impl Client {
    /// A client for repository `path` of registry `domain`, with the
    /// credentials `engine login` stored under `root`, asking tokens for `scopes`.
    pub fn new(root: &Path, domain: &str, path: &str, insecure: &[String], scopes: Vec<String>) -> Result<Client> {
        let base = super::base_url(domain, insecure);
        let creds = auth::credentials(root, domain)?;
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(if base.starts_with("https:") { system_roots() } else { Vec::new() })))
            .unversioned_rustls_crypto_provider(Arc::new(super::tls::provider()))
            .build();
        let mut cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(10)
            .user_agent(format!("skiff-engine/{}", env!("CARGO_PKG_VERSION")))
            .accept_encoding("identity")
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .tls_config(tls);
        if super::is_loopback(domain) {
            cfg = cfg.proxy(None);
        }
        Ok(Client {
            agent: cfg.build().new_agent(),
            base,
            domain: domain.to_string(),
            path: path.to_string(),
            creds,
            authorization: None,
            scopes,
            bearer: None,
            net_failed: Rc::new(Cell::new(false)),
        })
    }

    /// Uses `creds` instead of the stored ones (`engine login` checking new ones).
    pub fn set_credentials(&mut self, creds: Option<(String, String)>) {
        self.creds = creds;
    }

    /// `BASE/v2/PATH/SUFFIX`.
    pub fn url(&self, suffix: &str) -> String {
        format!("{}/v2/{}/{suffix}", self.base, self.path)
    }

    /// An absolute URL for a `Location` header (which may be relative).
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    /// Sends the request `f` builds (given the `Authorization` to use),
    /// answering one authentication challenge. `what` names the request in errors.
    pub fn send<F>(&mut self, what: &str, mut f: F) -> Result<Response<Body>>
    where
        F: FnMut(&ureq::Agent, Option<&str>) -> std::result::Result<Response<Body>, ureq::Error>,
    {
        let mut answered = false;
        loop {
            let resp = f(&self.agent, self.authorization.as_deref()).map_err(|e| self.transport(what, e))?;
            let status = resp.status().as_u16();
            if status == 401 && !answered {
                if let Some(ch) = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()) {
                    let ch = ch.to_string();
                    answered = true;
                    self.answer(&ch).map_err(|e| Error(format!("{what}: {}", e.0)))?;
                    continue;
                }
            }
            if status >= 500 || status == 429 || status == 408 {
                self.net_failed.set(true);
            }
            return Ok(resp);
        }
    }

    /// GET with `Accept` (None: any).
    pub fn get(&mut self, what: &str, url: &str, accept: Option<&str>) -> Result<Response<Body>> {
        self.send(what, |a, auth| {
            let mut r = a.get(url);
            if let Some(v) = accept {
                r = r.header("Accept", v);
            }
            authorized(r, auth).call()
        })
    }

    /// HEAD.
    pub fn head(&mut self, what: &str, url: &str) -> Result<Response<Body>> {
        self.send(what, |a, auth| {
            let r = authorized(a.head(url), auth);
            r.call()
        })
    }

    /// Asks for a token that also covers `scope` (a cross-repository mount
    /// source), when tokens are in use.
    pub fn add_scope(&mut self, scope: &str) -> Result<()> {
        if self.scopes.iter().any(|s| s == scope) {
            return Ok(());
        }
        self.scopes.push(scope.to_string());
        if let Some((realm, service)) = self.bearer.clone() {
            self.token(&realm, service.as_deref(), None)?;
        }
        Ok(())
    }

    /// Sets `authorization` for the challenge `ch`.
    fn answer(&mut self, ch: &str) -> Result<()> {
        let (scheme, params) = parse_challenge(ch);
        let param = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
        if scheme.eq_ignore_ascii_case("bearer") {
            let realm = param("realm").ok_or_else(|| Error(format!("the registry's challenge has no realm: {ch}")))?;
            let service = param("service");
            self.bearer = Some((realm.clone(), service.clone()));
            self.token(&realm, service.as_deref(), param("scope").as_deref())
        } else if scheme.eq_ignore_ascii_case("basic") {
            match &self.creds {
                Some((u, p)) => {
                    self.authorization = Some(format!("Basic {}", auth::base64_encode(format!("{u}:{p}").as_bytes())));
                    Ok(())
                }
                None => err(format!("no basic auth credentials (run `engine login {}`)", self.domain)),
            }
        } else {
            err(format!("unsupported authentication scheme `{scheme}`"))
        }
    }

    /// GETs a token from `realm` for this client's scopes (plus `extra`).
    fn token(&mut self, realm: &str, service: Option<&str>, extra: Option<&str>) -> Result<()> {
        let mut query = Vec::new();
        if let Some(s) = service {
            query.push(format!("service={}", encode(s)));
        }
        let mut scopes = self.scopes.clone();
        if let Some(e) = extra {
            for s in e.split(' ') {
                if !s.is_empty() && !scopes.iter().any(|x| x == s) {
                    scopes.push(s.to_string());
                }
            }
        }
        for s in &scopes {
            query.push(format!("scope={}", encode(s)));
        }
        if let Some((u, _)) = &self.creds {
            query.push(format!("account={}", encode(u)));
        }
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = if query.is_empty() { realm.to_string() } else { format!("{realm}{sep}{}", query.join("&")) };
        let basic = self.creds.as_ref().map(|(u, p)| format!("Basic {}", auth::base64_encode(format!("{u}:{p}").as_bytes())));
        let what = format!("get a token from {realm}");
        let mut r = self.agent.get(&url);
        if let Some(b) = &basic {
            r = r.header("Authorization", b);
        }
        let resp = r.call().map_err(|e| self.transport(&what, e))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return err(format!("{what}: unauthorized: {}", if basic.is_some() { "incorrect username or password" } else { "authentication required" }));
        }
        if status != 200 {
            return Err(self.status_error(&what, resp));
        }
        let body = self.read_small(&what, resp, 1 << 20)?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| Error(format!("{what}: parse the answer: {e}")))?;
        let token = v["token"].as_str().or(v["access_token"].as_str()).filter(|t| !t.is_empty());
        match token {
            Some(t) => {
                self.authorization = Some(format!("Bearer {t}"));
                Ok(())
            }
            None => err(format!("{what}: the answer has no token")),
        }
    }

    /// Checks `engine login` credentials: `GET /v2/` must succeed with them.
    pub fn check_login(&mut self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let what = format!("login to {}", self.domain);
        let resp = self.get(&what, &url, None)?;
        match resp.status().as_u16() {
            200 => Ok(()),
            401 => err(format!("{what}: unauthorized: incorrect username or password")),
            _ => Err(self.status_error(&what, resp)),
        }
    }

    /// A transport error: flagged, and named.
    pub fn transport(&self, what: &str, e: ureq::Error) -> Error {
        self.net_failed.set(true);
        Error(format!("{what}: {e}"))
    }

    /// Reads a small body whole (at most `limit` bytes).
    pub fn read_small(&self, what: &str, resp: Response<Body>, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut r = self.reader(resp).take(limit + 1);
        r.read_to_end(&mut out).map_err(|e| Error(format!("{what}: read the answer: {e}")))?;
        if out.len() as u64 > limit {
            return err(format!("{what}: the answer is larger than {limit} bytes"));
        }
        Ok(out)
    }

    /// The body of `resp` as a reader that flags transport failures.
    pub fn reader(&self, resp: Response<Body>) -> NetReader {
        NetReader { inner: resp.into_body().into_reader(), failed: self.net_failed.clone() }
    }

    /// The error an unexpected status stands for: the registry's error
    /// codes and messages when the body has them (`manifest unknown`).
    pub fn status_error(&self, what: &str, resp: Response<Body>) -> Error {
        let status = resp.status();
        let body = self.read_small(what, resp, 64 << 10).unwrap_or_default();
        Error(format!("{what}: {}", describe_status(status.as_u16(), status.canonical_reason().unwrap_or(""), &body)))
    }
}

/// `manifest unknown: manifest unknown` from a registry error body, else the status.
pub fn describe_status(code: u16, reason: &str, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let errors: Vec<String> = parsed
        .as_ref()
        .and_then(|v| v["errors"].as_array())
        .map(|list| {
            list.iter()
                .map(|e| {
                    let c = e["code"].as_str().unwrap_or("").to_lowercase().replace('_', " ");
                    let m = e["message"].as_str().unwrap_or("");
                    if m.is_empty() || m == c {
                        c
                    } else {
                        format!("{c}: {m}")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if errors.is_empty() {
        match code {
            401 => "unauthorized: authentication required".into(),
            _ => format!("{code} {reason}"),
        }
    } else {
        errors.join("; ")
    }
}

/// A response body reader that flags read errors as transport failures.
pub struct NetReader {
    inner: ureq::BodyReader<'static>,
    failed: Rc<Cell<bool>>,
}

impl Read for NetReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        if r.is_err() {
            self.failed.set(true);
        }
        r
    }
}

/// A reader held to `rate` bytes per second on average.
pub struct Throttle<R> {
    inner: R,
    rate: u64,
    start: Instant,
    bytes: u64,
}

impl<R: Read> Throttle<R> {
    pub fn new(inner: R, rate: u64) -> Self {
        Throttle { inner, rate: rate.max(1), start: Instant::now(), bytes: 0 }
    }
}

impl<R: Read> Read for Throttle<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // small reads keep the pace smooth on slow links
        let cap = buf.len().min((self.rate / 4).clamp(1024, 1 << 16) as usize);
        let n = self.inner.read(&mut buf[..cap])?;
        self.bytes += n as u64;
        let due = Duration::from_micros(self.bytes.saturating_mul(1_000_000) / self.rate);
        if let Some(wait) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(wait);
        }
        Ok(n)
    }
}

/// `rq` with `Authorization: auth` when there is one.
pub fn authorized<B>(rq: ureq::RequestBuilder<B>, auth: Option<&str>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(v) => rq.header("Authorization", v),
        None => rq,
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Bearer realm="...",service="...",scope="a,b"` -> ("Bearer", [(realm, ...), ...]).
pub fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = rest[ks..i].trim().to_string();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let start = i;
                // copy one UTF-8 character
                i += 1;
                while i < b.len() && (b[i] & 0xc0) == 0x80 {
                    i += 1;
                }
                val.push_str(&rest[start..i]);
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = rest[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            params.push((key, val));
        }
    }
    (scheme.to_string(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push",error="insufficient_scope""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p[0], ("realm".into(), "https://auth.docker.io/token".into()));
        assert_eq!(p[1], ("service".into(), "registry.docker.io".into()));
        assert_eq!(p[2], ("scope".into(), "repository:a/b:pull,push".into()));
        assert_eq!(p[3].0, "error");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!((s.as_str(), p[0].1.as_str()), ("Basic", "Registry Realm"));
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(describe_status(404, "Not Found", body), "manifest unknown");
        assert_eq!(describe_status(404, "Not Found", b""), "404 Not Found");
    }
}
