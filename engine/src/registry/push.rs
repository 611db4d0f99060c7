//! `engine push NAME[:TAG]`: each blob of the image (layers, then the
//! config) that the repository lacks (HEAD), mounted from another
//! repository of the same registry that this store knows holds it, or
//! uploaded (POST, then one PUT with the whole blob); then the manifest,
//! byte for byte as the store has it (so its digest stays the same).

use super::client::{encode, Client};
use super::progress::{Counted, Progress};
use super::Options;
use crate::error::{err, Context, Error, Result};
use crate::images::config::{self, Descriptor};
use crate::images::reference::{self, Reference};
use crate::images::{digest, Store};
use std::collections::BTreeSet;

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
        if m.config.media_type == config::OCI_CONFIG { config::OCI_MANIFEST.into() } else { config::DOCKER_MANIFEST.into() }
    });
    let scopes = vec![format!("repository:{}:pull,push", r.path)];
    let mut c = Client::new(store.root(), &r.domain, &r.path, &opts.insecure, scopes)?;
    progress.line(&format!("The push refers to repository [{}]", r.name()));

    let mut blobs: Vec<&Descriptor> = m.layers.iter().rev().collect();
    blobs.push(&m.config);
    for desc in blobs {
        let sources = mount_sources(store, &r, &desc.digest);
        push_blob(store, &mut c, desc, &sources, progress).ctx(|| format!("push {name}"))?;
    }

    let what = format!("push {name}: manifest");
    let url = c.url(&format!("manifests/{tag}"));
    let resp = c.send(&what, |a, auth| {
        let mut rq = a.put(&url).header("Content-Type", &media_type);
        if let Some(v) = auth {
            rq = rq.header("Authorization", v);
        }
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

/// Other repositories of the same registry that hold blob `digest`, as
/// far as this store knows (its images named there reference it).
fn mount_sources(store: &Store, target: &Reference, digest: &str) -> Vec<String> {
    let Ok(index) = store.index() else { return Vec::new() };
    let mut out = BTreeSet::new();
    for (key, id) in &index.tags {
        let (name, _) = reference::split_tagged(key);
        let Ok(r) = Reference::parse(&name) else { continue };
        if r.domain != target.domain || r.path == target.path {
            continue;
        }
        let Ok(d) = store.details_in(&index, id) else { continue };
        if d.manifest.layers.iter().any(|l| l.digest == digest) || d.manifest.config.digest == digest {
            out.insert(r.path);
        }
    }
    out.into_iter().take(3).collect()
}

fn location(resp: &ureq::http::Response<ureq::Body>) -> Option<String> {
    resp.headers().get("location").and_then(|v| v.to_str().ok()).map(String::from)
}

/// One blob: skipped, mounted or uploaded.
fn push_blob(store: &Store, c: &mut Client, desc: &Descriptor, sources: &[String], progress: &mut Progress) -> Result<()> {
    let what = format!("blob {}", desc.digest);
    let resp = c.head(&what, &c.url(&format!("blobs/{}", desc.digest)))?;
    match resp.status().as_u16() {
        200 => {
            progress.status(&desc.digest, "Layer already exists");
            return Ok(());
        }
        404 => {}
        _ => return Err(c.status_error(&what, resp)),
    }
    let mut upload = None;
    for from in sources {
        c.add_scope(&format!("repository:{from}:pull"))?;
        let url = c.url(&format!("blobs/uploads/?mount={}&from={}", encode(&desc.digest), encode(from)));
        let resp = c.send(&what, |a, auth| {
            let mut rq = a.post(&url);
            if let Some(v) = auth {
                rq = rq.header("Authorization", v);
            }
            rq.send_empty()
        })?;
        match resp.status().as_u16() {
            201 => {
                progress.status(&desc.digest, &format!("Mounted from {from}"));
                return Ok(());
            }
            202 => {
                upload = location(&resp);
                break;
            }
            _ => {}
        }
    }
    let upload = match upload {
        Some(u) => u,
        None => {
            let url = c.url("blobs/uploads/");
            let resp = c.send(&what, |a, auth| {
                let mut rq = a.post(&url);
                if let Some(v) = auth {
                    rq = rq.header("Authorization", v);
                }
                rq.send_empty()
            })?;
            if resp.status().as_u16() != 202 {
                return Err(c.status_error(&format!("{what}: start upload"), resp));
            }
            location(&resp).ok_or_else(|| Error(format!("{what}: the registry started an upload without a Location")))?
        }
    };
    let sep = if upload.contains('?') { '&' } else { '?' };
    let url = c.absolute(&format!("{upload}{sep}digest={}", encode(&desc.digest)));
    let path = store.blob_path(&desc.digest)?;
    let size = std::fs::metadata(&path).ctx(|| format!("{what}: stat {}", path.display()))?.len();
    let resp = c.send(&what, |a, auth| {
        let file = std::fs::File::open(&path).map_err(ureq::Error::Io)?;
        let mut counted = Counted { inner: file, progress: &mut *progress, digest: &desc.digest, action: "Pushing", total: size, done: 0 };
        let mut rq = a.put(&url).header("Content-Type", "application/octet-stream").header("Content-Length", size.to_string());
        if let Some(v) = auth {
            rq = rq.header("Authorization", v);
        }
        rq.send(ureq::SendBody::from_reader(&mut counted))
    })?;
    if resp.status().as_u16() != 201 {
        return Err(c.status_error(&format!("{what}: upload"), resp));
    }
    progress.status(&desc.digest, "Pushed");
    Ok(())
}
