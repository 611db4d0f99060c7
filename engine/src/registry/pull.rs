//! `engine pull`: the manifest (an index or manifest list is resolved to
//! the entry for the wanted platform), the config, then each layer streamed
//! from the registry straight into the store: the bytes are hashed (the
//! blob digest) and unpacked into a temp layer dir (hashing the
//! uncompressed tar: the diff id, and recording its tar-split) in one pass,
//! in bounded memory. The blob itself is never written: each layer goes to
//! flash once, as files (big ones written out and dropped from the page
//! cache as they complete); `save` and `push` rebuild the tar from the
//! tar-split. A dropped connection is picked up with a Range request where
//! it stopped. The layer dir is synced and renamed in once its digests
//! check out; the image becomes visible only when every layer is in, by
//! the one atomic index update.
//!
//! Resuming: a pull first records its manifest in `images/pulls/<hex>`;
//! garbage collection keeps what such a record references (for a week), so
//! after a pull is killed or gives up on its connection, the layers it
//! completed stay, and the next pull fetches only what is missing. A pull
//! that fails on content (a digest mismatch, a bad archive) removes its
//! record and what it added.

use super::client::{authorized, describe_status, Client, NetReader, Throttle, MANIFEST_ACCEPT};
use super::progress::{Counted, Progress};
use super::{show_platform, Options};
use crate::error::{err, Context, Error, Result};
use crate::images::config::{self, Config, Descriptor, Index, Manifest, Platform};
use crate::images::digest::{self, HashReader};
use crate::images::index::{ensure_dir, write_atomic};
use crate::images::reference::Reference;
use crate::images::{blobs::MAX_JSON_BLOB, layers, remove, Store};
use std::collections::HashSet;
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::Duration;

/// `images/pulls/`: manifests of pulls under way (or interrupted).
pub const PENDING_DIR: &str = "pulls";
/// An interrupted pull's content is kept this long for a resume.
const PENDING_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Manifests and indexes larger than this are refused (the distribution spec's 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;

pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image id (config digest).
    pub id: String,
    /// The digest of what the name pointed to (an index for multi-platform images).
    pub digest: String,
    /// `docker.io/library/busybox:latest` or `...@sha256:...`.
    pub name: String,
    /// Nothing had to be fetched: the store had the image already.
    pub up_to_date: bool,
}

/// `engine pull REFERENCE`: see the module docs.
pub fn pull(store: &Store, reference: &str, opts: &Options, progress: &mut Progress) -> Result<Pulled> {
    let r = Reference::parse(reference)?;
    let scopes = vec![format!("repository:{}:pull", r.path)];
    let mut c = Client::new(store.root(), &r.domain, &r.path, &opts.insecure, scopes)?;
    let want = r.digest.clone().or(r.tag.clone()).unwrap_or_else(|| "latest".into());
    let shown = r.to_string();
    if r.digest.is_none() && !reference.contains('@') && !has_tag(reference) {
        progress.line(&format!("Using default tag: {want}"));
    }
    progress.line(&format!("{want}: Pulling from {}", r.path));

    let (top, top_digest, top_type) = fetch_manifest(&mut c, &want, &shown)?;
    let (mbytes, mdigest) = if is_index(&top_type) {
        let idx: Index = serde_json::from_slice(&top).ctx(|| format!("{shown}: parse index {top_digest}"))?;
        let wanted = opts.platform.clone().unwrap_or_else(Platform::host);
        let entry = select(&idx, &wanted).ok_or_else(|| {
            let have: Vec<String> = idx.manifests.iter().filter_map(|d| d.platform.as_ref()).map(show_platform).collect();
            Error(format!("no matching manifest for {} in the manifest list entries of {shown} (it has: {})", show_platform(&wanted), have.join(", ")))
        })?;
        let (b, d, t) = fetch_manifest(&mut c, &entry.digest, &shown)?;
        if is_index(&t) {
            return err(format!("{shown}: index {top_digest} points to another index ({d})"));
        }
        (b, d)
    } else {
        (top, top_digest.clone())
    };
    let m: Manifest = serde_json::from_slice(&mbytes).ctx(|| format!("{shown}: parse manifest {mdigest}"))?;
    if m.schema_version != 2 {
        return err(format!("{shown}: schema {} manifests are not supported", m.schema_version));
    }
    for l in &m.layers {
        check_layer_type(l)?;
    }
    let cfg = match store.read_blob(&m.config.digest) {
        Ok(b) => b,
        Err(_) => fetch_small_blob(&mut c, &m.config, &shown)?,
    };
    let config = Config::parse(&cfg, &m.config.digest)?;
    if let Some(p) = &opts.platform {
        if !config.os.is_empty() && !config.platform().matches(p) {
            return err(format!(
                "image with reference {shown} was found but its platform ({}) does not match the specified platform ({})",
                show_platform(&config.platform()),
                show_platform(p)
            ));
        }
    }
    if m.layers.len() != config.rootfs.diff_ids.len() {
        return err(format!("{shown}: the manifest lists {} layers, the config {}", m.layers.len(), config.rootfs.diff_ids.len()));
    }
    let id = m.config.digest.clone();
    let tags: Vec<String> = if r.digest.is_some() { Vec::new() } else { r.tagged().into_iter().collect() };
    let name = match (&r.digest, r.tagged()) {
        (Some(d), _) => format!("{}@{d}", r.name()),
        (None, Some(t)) => t,
        (None, None) => r.name(),
    };

    let index = store.index()?;
    let up_to_date = index.images.get(&id).is_some_and(|rec| rec.manifest == mdigest) && store.details_in(&index, &id).is_ok();
    if up_to_date {
        store.register(&id, &mdigest, &tags)?;
    } else {
        let hold = store.hold()?;
        let res = fetch_image(store, &mut c, &m, &mbytes, &mdigest, &cfg, &config, &tags, opts, progress);
        drop(hold);
        if let Err(e) = res {
            if c.net_failed.get() {
                return Err(Error(format!("{}\n(interrupted: what was verified is kept; pull again to resume)", e.0)));
            }
            remove_pending(store, &mdigest);
            remove::collect_garbage_if_idle(store);
            return Err(e);
        }
    }
    progress.line(&format!("Digest: {top_digest}"));
    if up_to_date {
        progress.line(&format!("Status: Image is up to date for {shown}"));
    } else {
        progress.line(&format!("Status: Downloaded newer image for {shown}"));
    }
    Ok(Pulled { id, digest: top_digest, name, up_to_date })
}

/// True when `reference` names a tag (`name:tag`, not `host:port/name`).
fn has_tag(reference: &str) -> bool {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.contains(':')
}

fn is_index(media_type: &str) -> bool {
    media_type == config::OCI_INDEX || media_type == config::DOCKER_LIST
}

/// The index entry for `want`: an exact variant match first, then any that runs there.
pub fn select<'a>(idx: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let fits = |d: &&Descriptor| d.platform.as_ref().is_some_and(|p| p.matches(want));
    let exact = |d: &&Descriptor| d.platform.as_ref().is_some_and(|p| p.matches(want) && p.variant == want.variant);
    idx.manifests.iter().find(exact).or_else(|| idx.manifests.iter().find(fits))
}

fn check_layer_type(l: &Descriptor) -> Result<()> {
    match l.media_type.as_str() {
        config::OCI_LAYER | config::OCI_LAYER_GZIP | config::OCI_LAYER_ZSTD | DOCKER_LAYER_GZIP | DOCKER_LAYER => Ok(()),
        t if t.contains("foreign") || t.contains("nondistributable") => err(format!("layer {}: foreign layers ({t}) are not supported", l.digest)),
        t => match t.rsplit(['+', '.']).next() {
            Some(c @ ("bzip2" | "xz")) => err(format!("layer {}: {c}-compressed layers ({t}) are not supported (gzip, zstd or plain tar are)", l.digest)),
            _ => err(format!("layer {}: unsupported media type `{t}`", l.digest)),
        },
    }
}

/// GETs manifest `reference` (a tag or a digest): its bytes, digest (checked
/// against a digest reference and the `Docker-Content-Digest` header) and media type.
fn fetch_manifest(c: &mut Client, reference: &str, shown: &str) -> Result<(Vec<u8>, String, String)> {
    let what = format!("pull {shown}");
    let url = c.url(&format!("manifests/{reference}"));
    let resp = c.get(&what, &url, Some(MANIFEST_ACCEPT))?;
    match resp.status().as_u16() {
        200 => {}
        404 => {
            let body = c.read_small(&what, resp, 64 << 10).unwrap_or_default();
            return err(format!("manifest for {shown} not found: {}", describe_status(404, "Not Found", &body)));
        }
        _ => return Err(c.status_error(&what, resp)),
    }
    let header = |k: &str| resp.headers().get(k).and_then(|v| v.to_str().ok()).map(String::from);
    let (claimed, ctype) = (header("docker-content-digest"), header("content-type"));
    let body = c.read_small(&what, resp, MAX_MANIFEST)?;
    let got = digest::of_bytes(&body);
    if reference.starts_with("sha256:") && got != reference {
        return err(format!("{what}: manifest digest mismatch: asked for {reference}, the registry sent content hashing to {got}"));
    }
    if let Some(cl) = claimed.filter(|d| d.starts_with("sha256:")) {
        if cl != got {
            return err(format!("{what}: manifest digest mismatch: the registry says {cl}, its content hashes to {got}"));
        }
    }
    let v: serde_json::Value = serde_json::from_slice(&body).ctx(|| format!("{what}: parse manifest {got}"))?;
    let media_type = match v["mediaType"].as_str() {
        Some(t) => t.to_string(),
        None if v["manifests"].is_array() => config::OCI_INDEX.into(),
        None => ctype.unwrap_or_default().split(';').next().unwrap_or("").trim().to_string(),
    };
    if media_type.contains("distribution.manifest.v1") || v["schemaVersion"].as_u64() == Some(1) {
        return err(format!("{what}: schema 1 manifests are not supported (push the image again with a current client)"));
    }
    Ok((body, got, media_type))
}

/// GETs a small blob (a config) whole, verifying its digest and size.
fn fetch_small_blob(c: &mut Client, desc: &Descriptor, shown: &str) -> Result<Vec<u8>> {
    let what = format!("pull {shown}: blob {}", desc.digest);
    let url = c.url(&format!("blobs/{}", desc.digest));
    let resp = c.get(&what, &url, None)?;
    if resp.status().as_u16() != 200 {
        return Err(c.status_error(&what, resp));
    }
    let body = c.read_small(&what, resp, MAX_JSON_BLOB)?;
    let got = digest::of_bytes(&body);
    if got != desc.digest {
        return err(format!("{what}: digest mismatch: the registry sent content hashing to {got}"));
    }
    Ok(body)
}

/// Stores the manifest and config, records the pull as pending, brings in
/// every layer, registers the image and clears the record. The caller holds the store.
#[allow(clippy::too_many_arguments)]
fn fetch_image(
    store: &Store,
    c: &mut Client,
    m: &Manifest,
    mbytes: &[u8],
    mdigest: &str,
    cfg: &[u8],
    config: &Config,
    tags: &[String],
    opts: &Options,
    progress: &mut Progress,
) -> Result<()> {
    store.put_blob(mbytes)?;
    store.put_blob(cfg)?;
    let dir = store.dir.join(PENDING_DIR);
    ensure_dir(&dir)?;
    let record = dir.join(digest::hex_of(mdigest)?);
    write_atomic(&record, format!("{mdigest}\n").as_bytes())?;

    let chains = Store::chain_ids(&config.rootfs.diff_ids);
    for (i, desc) in m.layers.iter().enumerate() {
        let diff_id = &config.rootfs.diff_ids[i];
        let parent = if i == 0 { None } else { Some(chains[i - 1].as_str()) };
        if store.layer(&chains[i])?.is_some() {
            progress.status(&desc.digest, "Already exists");
        } else if store.has_blob(&desc.digest) {
            // an older engine kept layer blobs: unpack from the store
            let mut blob = HashReader::new(store.open_blob(&desc.digest)?);
            let staged = layers::unpack_blob(store, &mut blob).ctx(|| format!("layer {}", desc.digest))?;
            blob.drain().ctx(|| format!("read blob {}", desc.digest))?;
            if blob.digest() != desc.digest {
                return err(format!("blob {} is corrupt in the store (it hashes to {})", desc.digest, blob.digest()));
            }
            check_diff_id(desc, &staged.diff_id, diff_id)?;
            layers::commit(store, staged, parent)?;
            progress.status(&desc.digest, "Pull complete");
        } else {
            fetch_layer(store, c, desc, diff_id, parent, opts, progress)?;
            progress.status(&desc.digest, "Pull complete");
        }
    }
    store.register(&config_id(m), mdigest, tags)?;
    let _ = std::fs::remove_file(&record);
    Ok(())
}

fn config_id(m: &Manifest) -> String {
    m.config.digest.clone()
}

fn check_diff_id(desc: &Descriptor, got: &str, want: &str) -> Result<()> {
    if got != want {
        return err(format!("layer {}: its content hashes to {got}, the image config says {want}", desc.digest));
    }
    Ok(())
}

/// Streams layer blob `desc` from the registry into the store: unpacked as
/// it arrives (the blob is verified on the stream, never written itself),
/// then committed as the chain on top of `parent`.
#[allow(clippy::too_many_arguments)]
fn fetch_layer(store: &Store, c: &mut Client, desc: &Descriptor, diff_id: &str, parent: Option<&str>, opts: &Options, progress: &mut Progress) -> Result<()> {
    let what = format!("layer {}", desc.digest);
    let url = c.url(&format!("blobs/{}", desc.digest));
    let resp = c.get(&what, &url, None)?;
    if resp.status().as_u16() != 200 {
        return Err(c.status_error(&what, resp));
    }
    let body = Resuming { body: c.reader(resp), c, url, what: what.clone(), done: 0, size: desc.size, resumes: 0 };
    let body: Box<dyn Read> = match opts.limit_rate {
        Some(rate) => Box::new(Throttle::new(body, rate)),
        None => Box::new(body),
    };
    // never more than announced (+1 to notice a longer body)
    let limit = if desc.size > 0 { desc.size + 1 } else { u64::MAX };
    let counted = Counted { inner: body.take(limit), progress, digest: &desc.digest, action: "Downloading", total: desc.size, done: 0 };
    let mut blob = HashReader::new(counted);
    let staged = layers::unpack_blob(store, &mut blob).ctx(|| what.clone())?;
    blob.drain().ctx(|| format!("{what}: read"))?;
    let (got, count) = (blob.digest(), blob.count());
    if got != desc.digest {
        return err(format!("{what}: digest mismatch: the registry sent content hashing to {got}"));
    }
    if desc.size > 0 && count != desc.size {
        return err(format!("{what}: the registry sent {count} bytes, the manifest says {}", desc.size));
    }
    check_diff_id(desc, &staged.diff_id, diff_id)?;
    layers::commit(store, staged, parent)?;
    Ok(())
}

/// How many times one layer's transfer is picked up again after its connection drops.
const RESUMES: u32 = 5;

/// A layer's body that, when the connection drops midway, asks for the rest
/// (`Range: bytes=N-`) and goes on, up to RESUMES times: what arrived is
/// not fetched or written again.
struct Resuming<'c> {
    c: &'c mut Client,
    url: String,
    what: String,
    body: NetReader,
    /// Bytes delivered so far.
    done: u64,
    /// The blob's size from the manifest (0: unknown).
    size: u64,
    resumes: u32,
}

impl Read for Resuming<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let failure = match self.body.read(buf) {
                Ok(0) if self.size == 0 || self.done >= self.size || buf.is_empty() => return Ok(0),
                Ok(0) => io::Error::new(io::ErrorKind::UnexpectedEof, format!("the connection closed after {} of {} bytes", self.done, self.size)),
                Ok(n) => {
                    self.done += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => e,
            };
            if self.resumes >= RESUMES {
                self.c.net_failed.set(true);
                return Err(io::Error::other(format!("{failure} (after {} resumed transfers)", self.resumes)));
            }
            self.resumes += 1;
            std::thread::sleep(Duration::from_millis(200 * self.resumes as u64));
            if let Err(e) = self.reopen() {
                self.c.net_failed.set(true);
                return Err(io::Error::other(format!("{failure}; resuming at byte {}: {}", self.done, e.0)));
            }
        }
    }
}

impl Resuming<'_> {
    /// A new request for the rest of the blob.
    fn reopen(&mut self) -> Result<()> {
        let range = format!("bytes={}-", self.done);
        let url = self.url.clone();
        let resp = self.c.send(&self.what, |a, auth| {
            let rq = authorized(a.get(&url).header("Range", &range), auth);
            rq.call()
        })?;
        match resp.status().as_u16() {
            206 => {
                let start = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if start != Some(self.done) {
                    return err(format!("{}: asked for bytes from {}, the registry sent a range starting at {start:?}", self.what, self.done));
                }
                self.body = self.c.reader(resp);
            }
            200 => {
                // no range support: skip what arrived already
                let mut body = self.c.reader(resp);
                let skipped = io::copy(&mut (&mut body).take(self.done), &mut io::sink()).map_err(|e| Error(format!("{}: read: {e}", self.what)))?;
                if skipped != self.done {
                    return err(format!("{}: the registry sent {skipped} bytes, fewer than before", self.what));
                }
                self.body = body;
            }
            _ => return Err(self.c.status_error(&self.what, resp)),
        }
        self.c.net_failed.set(false);
        Ok(())
    }
}

/// Forgets the pending pull of manifest `mdigest`.
fn remove_pending(store: &Store, mdigest: &str) {
    if let Ok(h) = digest::hex_of(mdigest) {
        let _ = std::fs::remove_file(store.dir.join(PENDING_DIR).join(h));
    }
}

/// Blobs and chain ids that interrupted pulls completed, which garbage
/// collection keeps; records older than a week (or unreadable) are
/// removed. Called with gc.lock held exclusively (no pull is running).
pub(crate) fn pending_roots(store: &Store, blobs: &mut HashSet<String>, chains: &mut HashSet<String>) {
    let dir: PathBuf = store.dir.join(PENDING_DIR);
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let fresh = e.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok()).is_some_and(|age| age < PENDING_MAX_AGE);
        let mdigest = format!("sha256:{name}");
        let roots = (|| -> Option<(Manifest, Option<Config>)> {
            if !fresh || !digest::is_hex64(&name) {
                return None;
            }
            let m: Manifest = serde_json::from_slice(&store.read_blob(&mdigest).ok()?).ok()?;
            let cfg = store.read_blob(&m.config.digest).ok().and_then(|b| Config::parse(&b, &m.config.digest).ok());
            Some((m, cfg))
        })();
        match roots {
            Some((m, cfg)) => {
                blobs.insert(mdigest);
                blobs.insert(m.config.digest.clone());
                blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
                if let Some(c) = cfg {
                    chains.extend(Store::chain_ids(&c.rootfs.diff_ids));
                }
            }
            None => {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: config::OCI_MANIFEST.into(),
            digest: digest::of_bytes(&[n]),
            size: 1,
            annotations: None,
            platform: Some(Platform { architecture: arch.into(), os: "linux".into(), variant: variant.map(String::from) }),
        }
    }

    #[test]
    fn selects_the_platform() {
        let idx = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![desc("amd64", None, 1), desc("arm", Some("v6"), 2), desc("arm", Some("v7"), 3), desc("arm64", Some("v8"), 4)],
        };
        let p = |s: &str| super::super::parse_platform(s).unwrap();
        assert_eq!(select(&idx, &p("linux/amd64")).unwrap().digest, digest::of_bytes(&[1]));
        assert_eq!(select(&idx, &p("linux/arm/v7")).unwrap().digest, digest::of_bytes(&[3]));
        assert_eq!(select(&idx, &p("linux/arm64")).unwrap().digest, digest::of_bytes(&[4]));
        assert!(select(&idx, &p("linux/s390x")).is_none());
        assert!(has_tag("busybox:1") && !has_tag("localhost:5000/busybox") && has_tag("localhost:5000/busybox:x"));
    }

    #[test]
    fn layer_media_types() {
        let layer = |t: &str| Descriptor { media_type: t.into(), ..desc("amd64", None, 1) };
        for t in [config::OCI_LAYER, config::OCI_LAYER_GZIP, config::OCI_LAYER_ZSTD, DOCKER_LAYER, DOCKER_LAYER_GZIP] {
            check_layer_type(&layer(t)).unwrap_or_else(|e| panic!("{t}: {}", e.0));
        }
        for (t, want) in [
            ("application/vnd.oci.image.layer.v1.tar+bzip2", "bzip2-compressed layers"),
            ("application/vnd.oci.image.layer.v1.tar+xz", "xz-compressed layers"),
            ("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", "foreign layers"),
            ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "foreign layers"),
            ("text/plain", "unsupported media type `text/plain`"),
        ] {
            let e = check_layer_type(&layer(t)).unwrap_err();
            assert!(e.0.contains(want) && e.0.contains(&digest::of_bytes(&[1])), "{t}: {}", e.0);
        }
    }
}
