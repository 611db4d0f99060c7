//! `docker rmi` and garbage collection: an image goes when its last tag
//! does (or when removed by id) and no container uses it; blobs and layers
//! go when no image references them any more.

use super::config::Manifest;
use super::index::{FileLock, Index};
use super::{digest, lookup, Store};
use crate::error::{err, Context, Result};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A tag went (familiar form, `busybox:latest`).
    Untagged(String),
    /// An image (its id) or a layer (its chain id) went.
    Deleted(String),
}

/// Containers of the state root `root` by the image id they use: any
/// `containers/<id>/container.json` whose `image_id` names the image.
pub fn containers_using(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(root.join("containers")) else { return out };
    for e in rd.flatten() {
        let Ok(bytes) = std::fs::read(e.path().join("container.json")) else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
        if let Some(image) = v.get("image_id").and_then(|i| i.as_str()) {
            let id = if image.starts_with("sha256:") { image.to_string() } else { format!("sha256:{image}") };
            out.entry(id).or_default().push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

/// The 12-digit id docker shows.
pub fn short_id(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

/// `docker rmi [-f] REFERENCE`: see the module docs; `force` removes an
/// image named in several repositories by id, and untags (only) an image
/// containers use.
pub fn remove(store: &Store, reference: &str, force: bool) -> Result<Vec<Removed>> {
    let users = containers_using(store.root());
    let mut out = Vec::new();
    let deleted = Index::update(&store.dir, |index| {
        let (id, tag) = lookup(index, reference)?;
        let short = short_id(&id).to_string();
        let tags = index.tags_of(&id);
        let user = users.get(&id).and_then(|c| c.first()).map(|c| &c[..c.len().min(12)]);
        let untag = |index: &mut Index, out: &mut Vec<Removed>, key: &str| {
            index.tags.remove(key);
            out.push(Removed::Untagged(super::reference::familiar_tagged(key)));
        };
        match tag {
            Some(key) if tags.len() > 1 => {
                untag(index, &mut out, &key);
                return Ok(false);
            }
            Some(key) => {
                if let Some(c) = user {
                    if !force {
                        let name = super::reference::split_tagged(&key).0;
                        return err(format!(
                            "conflict: unable to remove repository reference \"{name}\" (must force) - container {c} is using its referenced image {short}"
                        ));
                    }
                    untag(index, &mut out, &key);
                    return Ok(false);
                }
                untag(index, &mut out, &key);
            }
            None => {
                if let Some(c) = user {
                    if !force {
                        return err(format!("conflict: unable to delete {short} (must be forced) - image is being used by container {c}"));
                    }
                    for t in &tags {
                        untag(index, &mut out, t);
                    }
                    return Ok(false);
                }
                if tags.len() > 1 && !force {
                    return err(format!("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"));
                }
                for t in &tags {
                    untag(index, &mut out, t);
                }
            }
        }
        index.images.remove(&id);
        out.push(Removed::Deleted(id));
        Ok(true)
    })?;
    if deleted {
        out.extend(collect_garbage(store)?.into_iter().map(Removed::Deleted));
    }
    Ok(out)
}

/// Removes every blob and layer no image references, and stale temp files;
/// waits for running writers first. Returns the chain ids of the layers removed.
pub fn collect_garbage(store: &Store) -> Result<Vec<String>> {
    if !store.dir.is_dir() {
        return Ok(Vec::new());
    }
    let _gc = FileLock::exclusive(&store.dir.join("gc.lock"))?;
    collect(store)
}

/// Like `collect_garbage`, but only when no writer is running now (after a
/// failed import or load: what it placed goes, unless another command may
/// be using it, in which case the next collection takes it).
pub fn collect_garbage_if_idle(store: &Store) {
    if let Ok(Some(_gc)) = FileLock::try_exclusive(&store.dir.join("gc.lock")) {
        let _ = collect(store);
    }
}

/// Garbage collection proper; the caller holds gc.lock exclusively.
pub(crate) fn collect(store: &Store) -> Result<Vec<String>> {
    let index = store.index()?;
    let mut blobs: HashSet<String> = HashSet::new();
    let mut chains: HashSet<String> = HashSet::new();
    for (id, rec) in &index.images {
        // an unreadable image keeps everything: better leak than break it
        let m = store.read_blob(&rec.manifest).ctx(|| format!("garbage collection: image {id}"))?;
        let m: Manifest = serde_json::from_slice(&m).ctx(|| format!("garbage collection: image {id}: parse manifest"))?;
        let cfg = store.read_blob(id).ctx(|| format!("garbage collection: image {id}"))?;
        let cfg = super::config::Config::parse(&cfg, id)?;
        blobs.insert(rec.manifest.clone());
        blobs.insert(m.config.digest.clone());
        blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
        chains.extend(Store::chain_ids(&cfg.rootfs.diff_ids));
    }
    // what interrupted pulls completed stays for the next pull to resume
    crate::registry::pull::pending_roots(store, &mut blobs, &mut chains);
    // no writer holds gc.lock: everything in tmp/ is left over from a crash
    let tmp = store.dir.join("tmp");
    for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let p = e.path();
        let _ = if p.is_dir() && !p.is_symlink() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
    }
    for e in std::fs::read_dir(store.blobs_dir()).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !blobs.contains(&format!("sha256:{name}")) {
            std::fs::remove_file(e.path()).ctx(|| format!("remove blob {}", e.path().display()))?;
        }
    }
    let mut removed = Vec::new();
    for e in std::fs::read_dir(store.layers_dir()).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let chain = format!("sha256:{name}");
        if chains.contains(&chain) {
            continue;
        }
        // out of layers/ at once, then removed at leisure
        let gone = store.temp_path("gone");
        std::fs::rename(e.path(), &gone).ctx(|| format!("rename {} to {}", e.path().display(), gone.display()))?;
        std::fs::remove_dir_all(&gone).ctx(|| format!("remove {}", gone.display()))?;
        if digest::is_hex64(&name) {
            removed.push(chain);
        }
    }
    Ok(removed)
}
