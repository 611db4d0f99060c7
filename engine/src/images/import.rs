//! `docker import`: a rootfs tarball (plain, gzip or zstd) becomes a one-layer
//! image with a generated config (this host's platform, no command).

use super::config::{self, Descriptor, Manifest};
use super::{digest::HashReader, layers, reference::Reference, remove, Store};
use crate::error::{err, Context, Result};
use std::io::Read;

/// The index key for tagging with `name` (`busybox` -> `docker.io/library/busybox:latest`).
pub fn tag_key(name: &str) -> Result<String> {
    let r = Reference::parse(name)?;
    match r.tagged() {
        Some(k) if r.digest.is_none() => Ok(k),
        _ => err(format!("{name}: a tag cannot carry a digest")),
    }
}

/// Imports the rootfs tarball read from `input` as a new image tagged
/// `name` (if given); `source` (a file, or `-`) names it in errors. The
/// config's comment says `Imported from -`, as docker's does for a file
/// or stdin (its client streams both). Returns the image id. On failure
/// nothing of it stays in the store.
pub fn import(store: &Store, input: impl Read, name: Option<&str>, source: &str, changes: &[String], message: Option<&str>) -> Result<String> {
    let tags = match name {
        Some(n) => vec![tag_key(n)?],
        None => Vec::new(),
    };
    // `-c` changes are checked before the tarball is read
    let mut run = serde_json::json!({});
    for c in changes {
        crate::build::apply_change(&mut run, c)?;
    }
    let hold = store.hold()?;
    let res = import_held(store, input, &tags, source, changes, message);
    drop(hold);
    if res.is_err() {
        remove::collect_garbage_if_idle(store);
    }
    res
}

fn import_held(store: &Store, input: impl Read, tags: &[String], source: &str, changes: &[String], message: Option<&str>) -> Result<String> {
    // the tarball is unpacked, not kept: push and save rebuild it from the layer
    let mut blob = HashReader::new(input);
    let staged = layers::unpack_blob(store, &mut blob).ctx(|| format!("import {source}"))?;
    blob.drain().ctx(|| format!("import {source}: read"))?;
    let (blob_digest, blob_size, compression) = (blob.digest(), blob.count(), staged.compression);
    let layer = layers::commit(store, staged, None)?;

    let created = config::now_rfc3339();
    let mut cfg = config::imported(&layer.diff_id, &created, message.unwrap_or("Imported from -"));
    if !changes.is_empty() {
        let mut v: serde_json::Value = serde_json::from_slice(&cfg).ctx(|| "the generated config")?;
        for c in changes {
            crate::build::apply_change(&mut v["config"], c)?;
        }
        cfg = serde_json::to_vec(&v).ctx(|| "serialize the image config")?;
    }
    let layer_desc = Descriptor { media_type: compression.oci_layer().into(), digest: blob_digest, size: blob_size, annotations: None, platform: None };
    store_image(store, &cfg, vec![layer_desc], tags)
}

/// Stores config `cfg` and an OCI manifest for it and `layers` (in the
/// store already), and registers the image under `tags`. Returns its id.
pub(crate) fn store_image(store: &Store, cfg: &[u8], layers: Vec<Descriptor>, tags: &[String]) -> Result<String> {
    let id = store.put_blob(cfg)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(config::OCI_MANIFEST.into()),
        config: Descriptor { media_type: config::OCI_CONFIG.into(), digest: id.clone(), size: cfg.len() as u64, annotations: None, platform: None },
        layers,
        annotations: None,
    };
    let bytes = serde_json::to_vec(&manifest).ctx(|| "serialize manifest")?;
    let mdigest = store.put_blob(&bytes)?;
    store.register(&id, &mdigest, tags)?;
    Ok(id)
}
