//! `engine push NAME[:TAG]`: each blob of the image (layers, then the
//! config) that the repository lacks (HEAD), mounted from another
//! repository of the same registry that this store knows holds it, or
//! uploaded; then the manifest.
//!
//! Layers are kept unpacked, not as blobs (pull.rs). When the registry has
//! a layer's original blob, or can mount it, nothing is sent and the
//! manifest is pushed as it is. Otherwise an uncompressed layer
//! is rebuilt from its tar-split (same digest, one monolithic PUT); a gzip
//! layer is rebuilt and compressed again, streamed up in chunks (POST,
//! PATCHes with Content-Range, PUT with the digest) since its digest is
//! known only at the end. Another gzip than the original's gives another
//! digest, so the manifest pushed names the new blobs (what podman does);
//! the digest and size are remembered beside the layer (`gzip.json`) so the
//! next push can find the blob in place. Blobs an older engine kept are
//! pushed as they are, and the manifest byte for byte when nothing changed.

use super::client::{authorized, encode, Client};
use super::progress::{Counted, Progress};
use super::Options;
use crate::error::{err, Context, Error, Result};
use crate::images::blobs::read_full;
use crate::images::config::{self, Descriptor};
use crate::images::digest::{self, HashReader};
use crate::images::index::write_atomic;
use crate::images::layers::{self, LayerRecord};
use crate::images::reference::{self, Reference};
use crate::images::Store;
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read};

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub tag: String,
    /// The manifest's digest.
    pub digest: String,
    pub size: usize,
}

/// `engine push NAME[:TAG]`: see the module docs.
pub fn push(store: &Store, name: &str, opts: &Options, progress: &mut Progress) -> Result<Pushed> {
    let r = Reference::parse(name)?;
    if r.digest.is_some() {
        return err(format!("cannot push a digest reference: {name}"));
    }
    let key = r.tagged().ok_or_else(|| Error(format!("{name}: no tag")))?;
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let index = store.index()?;
    let Some(id) = index.tags.get(&key).cloned() else {
        return err(format!("An image does not exist locally with the tag: {}", r.familiar_name()));
    };
    let d = store.details_in(&index, &id)?;
    let mbytes = store.read_blob(&d.record.manifest)?;
    let m = &d.manifest;
    let media_type = m.media_type.clone().unwrap_or_else(|| {
        if m.config.media_type == config::OCI_CONFIG {
            config::OCI_MANIFEST.into()
        } else {
            config::DOCKER_MANIFEST.into()
        }
    });
    let scopes = vec![format!("repository:{}:pull,push", r.path)];
    let mut c = Client::new(store.root(), &r.domain, &r.path, &opts.insecure, scopes)?;
    progress.line(&format!("The push refers to repository [{}]", r.name()));

    if m.layers.len() != d.layers.len() {
        return err(format!("image {id}: its manifest has {} layers, its config {}", m.layers.len(), d.layers.len()));
    }
    let mounts = Mounts::of(store, &r);
    let mut pushed_layers = m.layers.clone();
    for (i, (desc, rec)) in m.layers.iter().zip(&d.layers).enumerate().rev() {
        pushed_layers[i] = push_layer(store, &mut c, &mounts, desc, rec, progress).ctx(|| format!("push {name}"))?;
    }
    push_blob(store, &mut c, &m.config, &mounts.sources(&m.config.digest), progress).ctx(|| format!("push {name}"))?;
    let mbytes = if pushed_layers.iter().zip(&m.layers).all(|(a, b)| a.digest == b.digest) {
        mbytes
    } else {
        // the original manifest with the new layer digests and sizes, other fields kept
        let mut v: serde_json::Value = serde_json::from_slice(&mbytes).ctx(|| format!("image {id}: parse manifest"))?;
        for (i, l) in pushed_layers.iter().enumerate() {
            v["layers"][i]["digest"] = l.digest.clone().into();
            v["layers"][i]["size"] = l.size.into();
        }
        serde_json::to_vec(&v).ctx(|| "serialize manifest")?
    };

    let what = format!("push {name}: manifest");
    let url = c.url(&format!("manifests/{tag}"));
    let resp = c.send(&what, |a, auth| {
        let rq = authorized(a.put(&url).header("Content-Type", &media_type), auth);
        rq.send(&mbytes[..])
    })?;
    if !matches!(resp.status().as_u16(), 200 | 201) {
        return Err(c.status_error(&what, resp));
    }
    let computed = digest::of_bytes(&mbytes);
    if let Some(claimed) = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()) {
        if claimed.starts_with("sha256:") && claimed != computed {
            return err(format!("{what}: the registry stored it as {claimed}, its content hashes to {computed}"));
        }
    }
    progress.line(&format!("{tag}: digest: {computed} size: {}", mbytes.len()));
    Ok(Pushed { tag, digest: computed, size: mbytes.len() })
}

/// For each blob digest, the other repositories of the target's registry
/// that hold it, as far as this store knows: its images named there
/// reference it, or it is what a push compressed one of their layers into.
/// Made once per push.
struct Mounts(HashMap<String, BTreeSet<String>>);

impl Mounts {
    fn of(store: &Store, target: &Reference) -> Mounts {
        let mut map: HashMap<String, BTreeSet<String>> = HashMap::new();
        let Ok(index) = store.index() else {
            return Mounts(map);
        };
        for (key, id) in &index.tags {
            let (name, _) = reference::split_tagged(key);
            let Ok(r) = Reference::parse(&name) else {
                continue;
            };
            if r.domain != target.domain || r.path == target.path {
                continue;
            }
            let Ok(d) = store.details_in(&index, id) else {
                continue;
            };
            let blobs = d.manifest.layers.iter().map(|l| l.digest.clone()).chain([d.manifest.config.digest.clone()]);
            let recompressed = d.layers.iter().filter_map(|l| recompressed(store, l).map(|(digest, _)| digest));
            for digest in blobs.chain(recompressed) {
                map.entry(digest).or_default().insert(r.path.clone());
            }
        }
        Mounts(map)
    }

    /// At most three repositories to mount blob `digest` from.
    fn sources(&self, digest: &str) -> Vec<String> {
        self.0.get(digest).map(|s| s.iter().take(3).cloned().collect()).unwrap_or_default()
    }
}

fn location(resp: &ureq::http::Response<ureq::Body>) -> Option<String> {
    resp.headers().get("location").and_then(|v| v.to_str().ok()).map(String::from)
}

/// One blob of the store: skipped, mounted or uploaded.
fn push_blob(store: &Store, c: &mut Client, desc: &Descriptor, sources: &[String], progress: &mut Progress) -> Result<()> {
    let what = format!("blob {}", desc.digest);
    let Some(upload) = find_or_start(c, desc, sources, progress)? else {
        return Ok(());
    };
    let path = store.blob_path(&desc.digest)?;
    let size = std::fs::metadata(&path).ctx(|| format!("{what}: stat {}", path.display()))?.len();
    let open = || std::fs::File::open(&path).map(|f| Box::new(f) as Box<dyn Read>).map_err(|e| Error(format!("open {}: {e}", path.display())));
    put_whole(c, &what, &upload, desc, size, open, progress)?;
    progress.status(&desc.digest, "Pushed");
    Ok(())
}

/// `layers/<chain>/gzip.json`: the blob the last push made of a layer.
const GZIP_RECORD: &str = "gzip.json";

/// Layer `desc` (in the store as `rec`): its blob pushed as it is when an
/// older engine kept it, else rebuilt (see the module docs). Returns the
/// descriptor the pushed manifest lists.
fn push_layer(store: &Store, c: &mut Client, mounts: &Mounts, desc: &Descriptor, rec: &LayerRecord, progress: &mut Progress) -> Result<Descriptor> {
    let what = format!("layer {}", desc.digest);
    if store.has_blob(&desc.digest) {
        push_blob(store, c, desc, &mounts.sources(&desc.digest), progress)?;
        return Ok(desc.clone());
    }
    // the registry has the original blob (or can mount it): the manifest stays as it is
    let Some(upload) = find_or_start(c, desc, &mounts.sources(&desc.digest), progress)? else { return Ok(desc.clone()) };
    if desc.digest == rec.diff_id {
        // uncompressed: the rebuilt tar is the blob
        let open = || layers::tar_stream(store, rec).map(|t| Box::new(t) as Box<dyn Read>);
        put_whole(c, &what, &upload, desc, rec.tar_size, open, progress)?;
        progress.status(&desc.digest, "Pushed");
        return Ok(desc.clone());
    }
    // gzip (or zstd, which we do not write) rebuilt and compressed again
    let media_type = if desc.media_type == super::pull::DOCKER_LAYER_GZIP { desc.media_type.clone() } else { config::OCI_LAYER_GZIP.to_string() };
    let known = recompressed(store, rec).map(|(digest, size)| Descriptor { media_type: media_type.clone(), digest, size, annotations: None, platform: None });
    let mut upload = upload;
    if let Some(k) = &known {
        // what the last push made of it may be there, or mountable
        let first = upload;
        let found = find_or_start(c, k, &mounts.sources(&k.digest), progress)?;
        cancel_upload(c, &first);
        match found {
            None => return Ok(k.clone()),
            Some(u) => upload = u,
        }
    }
    let gz = flate2::read::GzEncoder::new(layers::tar_stream(store, rec)?, flate2::Compression::default());
    let (digest, size) = put_chunked(c, &what, &upload, gz, &rec.diff_id, progress)?;
    progress.status(&digest, "Pushed");
    if known.as_ref().is_none_or(|k| k.digest != digest) {
        let record = store.layer_dir(&rec.chain_id)?.join(GZIP_RECORD);
        let _ = write_atomic(&record, &serde_json::to_vec(&(&digest, size)).unwrap_or_default());
    }
    Ok(Descriptor { media_type, digest, size, annotations: None, platform: None })
}

/// (digest, size) of the blob the last push compressed layer `rec` into.
fn recompressed(store: &Store, rec: &LayerRecord) -> Option<(String, u64)> {
    let record = store.layer_dir(&rec.chain_id).ok()?.join(GZIP_RECORD);
    serde_json::from_slice(&std::fs::read(record).ok()?).ok()
}

/// When the repository has blob `desc` or can mount it from one of
/// `sources`: None. Else the upload started for it (its Location).
fn find_or_start(c: &mut Client, desc: &Descriptor, sources: &[String], progress: &mut Progress) -> Result<Option<String>> {
    let what = format!("blob {}", desc.digest);
    let resp = c.head(&what, &c.url(&format!("blobs/{}", desc.digest)))?;
    match resp.status().as_u16() {
        200 => {
            progress.status(&desc.digest, "Layer already exists");
            return Ok(None);
        }
        404 => {}
        _ => return Err(c.status_error(&what, resp)),
    }
    for from in sources {
        c.add_scope(&format!("repository:{from}:pull"))?;
        let url = c.url(&format!("blobs/uploads/?mount={}&from={}", encode(&desc.digest), encode(from)));
        let resp = c.send(&what, |a, auth| {
            let rq = authorized(a.post(&url), auth);
            rq.send_empty()
        })?;
        match resp.status().as_u16() {
            201 => {
                progress.status(&desc.digest, &format!("Mounted from {from}"));
                return Ok(None);
            }
            // not mountable: the registry started a plain upload instead
            202 => return location(&resp).map(Some).ok_or_else(|| Error(format!("{what}: the registry started an upload without a Location"))),
            _ => {}
        }
    }
    start_upload(c, &what).map(Some)
}

/// POSTs a new upload; returns its Location.
fn start_upload(c: &mut Client, what: &str) -> Result<String> {
    let url = c.url("blobs/uploads/");
    let resp = c.send(what, |a, auth| {
        let rq = authorized(a.post(&url), auth);
        rq.send_empty()
    })?;
    if resp.status().as_u16() != 202 {
        return Err(c.status_error(&format!("{what}: start upload"), resp));
    }
    location(&resp).ok_or_else(|| Error(format!("{what}: the registry started an upload without a Location")))
}

/// Abandons the upload at `location` (best effort: registries expire them anyway).
fn cancel_upload(c: &mut Client, location: &str) {
    let url = c.absolute(location);
    let _ = c.send("cancel upload", |a, auth| authorized(a.delete(&url), auth).call());
}

/// `Location?digest=D` (or `&digest=D`).
fn with_digest(c: &Client, location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    c.absolute(&format!("{location}{sep}digest={}", encode(digest)))
}

/// Completes upload `upload` with the whole blob `desc` (`size` bytes from
/// what `open` gives, opened again if the request must be repeated) in one PUT.
fn put_whole<F>(c: &mut Client, what: &str, upload: &str, desc: &Descriptor, size: u64, open: F, progress: &mut Progress) -> Result<()>
where
    F: Fn() -> Result<Box<dyn Read>>,
{
    let url = with_digest(c, upload, &desc.digest);
    let resp = c.send(what, |a, auth| {
        let body = open().map_err(|e| ureq::Error::Io(io::Error::other(e.0)))?;
        let mut counted = Counted { inner: body, progress: &mut *progress, digest: &desc.digest, action: "Pushing", total: size, done: 0 };
        let rq = authorized(a.put(&url).header("Content-Type", "application/octet-stream").header("Content-Length", size.to_string()), auth);
        rq.send(ureq::SendBody::from_reader(&mut counted))
    })?;
    if resp.status().as_u16() != 201 {
        return Err(c.status_error(&format!("{what}: upload"), resp));
    }
    Ok(())
}

/// Bytes per PATCH of a chunked upload (what one request holds in memory).
const CHUNK: usize = 4 << 20;

/// Uploads the stream `body` to `upload` in chunks (PATCH with
/// Content-Range, following each Location), then completes it with its
/// digest (PUT). Returns (digest, size).
fn put_chunked(c: &mut Client, what: &str, upload: &str, body: impl Read, label: &str, progress: &mut Progress) -> Result<(String, u64)> {
    let mut hashed = HashReader::new(body);
    let mut location = upload.to_string();
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut hashed, &mut buf).map_err(|e| Error(format!("{what}: {e}")))?;
        if n == 0 {
            break;
        }
        let url = c.absolute(&location);
        let range = format!("{offset}-{}", offset + n as u64 - 1);
        let resp = c.send(what, |a, auth| {
            let rq = authorized(
                a.patch(&url).header("Content-Type", "application/octet-stream").header("Content-Range", &range).header("Content-Length", n.to_string()),
                auth,
            );
            rq.send(&buf[..n])
        })?;
        if resp.status().as_u16() != 202 {
            return Err(c.status_error(&format!("{what}: upload bytes {range}"), resp));
        }
        location = self::location(&resp).unwrap_or(location);
        offset += n as u64;
        progress.bytes(label, "Pushing", offset, offset);
        if n < CHUNK {
            break;
        }
    }
    let digest = hashed.digest();
    let url = with_digest(c, &location, &digest);
    let resp = c.send(what, |a, auth| {
        let rq = authorized(a.put(&url).header("Content-Type", "application/octet-stream"), auth);
        rq.send_empty()
    })?;
    if resp.status().as_u16() != 201 {
        return Err(c.status_error(&format!("{what}: complete upload"), resp));
    }
    Ok((digest, offset))
}
