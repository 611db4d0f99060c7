//! The image store (DESIGN.md `images/`): content-addressed blobs, image
//! configs, a tag index and layers unpacked once per chain id.
//!
//! ```text
//! <root>/images/
//!   blobs/sha256/<hex>        configs and manifests (layer blobs are not kept), verified on write
//!   layers/<chain-hex>/diff/  a layer unpacked (overlayfs lower dir)
//!   layers/<chain-hex>/layer.json
//!   layers/<chain-hex>/tar-split.gz  how to rebuild the layer's tar (split.rs)
//!   layers/<chain-hex>/shadow/  entries the tar replaced, for the rebuild
//!   layers/<chain-hex>/gzip.json  the blob the last push compressed
//!   repositories.json         tags and images (index.rs), replaced atomically
//!   lock                      flock around read-modify-write of repositories.json
//!   gc.lock                   shared by writers, exclusive for garbage collection
//!   tmp/                      work in progress; nothing here is ever referenced
//!   pulls/<manifest-hex>      pulls under way or interrupted (registry::pull): GC keeps their content
//! ```
//! An image is its config blob (the image id is its digest) and a manifest
//! blob listing the config and the layer blobs; `repositories.json` maps
//! `docker.io/library/busybox:latest` to an image id and each image id to
//! its manifest. Content is written first, then made visible by one atomic
//! index update, so a crash leaves at worst unreferenced content, which the
//! next garbage collection (`rmi`) removes.

pub mod archive;
pub mod blobs;
pub mod config;
pub mod digest;
pub mod import;
pub mod index;
pub mod layers;
pub mod reference;
pub mod remove;
pub mod split;
pub mod unpack;
pub mod zstd;

#[cfg(test)]
mod tests;

use crate::error::{err, Context, Result};
use config::{Config, Manifest};
use index::{ensure_dir, FileLock, ImageRecord, Index};
use layers::LayerRecord;
use reference::Reference;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The parts of an image config (OCI image-spec "config") a container needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
}

/// An image's (or `--health-*`'s) HEALTHCHECK, docker's shape: `Test` is
/// `["CMD", arg...]`, `["CMD-SHELL", command]`, `["NONE"]` or empty
/// (inherit); durations in nanoseconds, 0 for the default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default)]
    pub interval: i64,
    #[serde(default)]
    pub timeout: i64,
    #[serde(default)]
    pub start_period: i64,
    #[serde(default)]
    pub retries: u32,
}

/// A resolved image, ready to become a container's rootfs.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>` of the image config.
    pub id: String,
    /// The name it was found by (`busybox:latest`), if any.
    pub name: Option<String>,
    pub config: RunConfig,
    /// Unpacked layer directories, lowest first (overlayfs lowerdir order reversed).
    pub layers: Vec<PathBuf>,
}

/// Everything the store knows about one image.
#[derive(Debug, Clone)]
pub struct Details {
    pub id: String,
    pub record: ImageRecord,
    /// Tag index keys naming it (`docker.io/library/busybox:latest`), sorted.
    pub tags: Vec<String>,
    pub manifest: Manifest,
    pub config: Config,
    /// The config blob as stored (its sha256 is `id`).
    pub config_bytes: Vec<u8>,
    /// Its layers, lowest first.
    pub layers: Vec<LayerRecord>,
    /// Sum of the layers' sizes.
    pub size: u64,
}

/// The store under `<root>/images`.
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    pub fn open(root: &Path) -> Result<Store> {
        Ok(Store { dir: root.join("images") })
    }

    /// The state root the store lives in.
    pub fn root(&self) -> &Path {
        self.dir.parent().unwrap_or(Path::new("/"))
    }

    /// Creates the store's directories (when missing) and takes the writer
    /// lock: garbage collection waits until it is dropped. Hold it from
    /// adding content until the index references it; the container half can
    /// hold it from `resolve` until its container record names the image.
    /// When no other writer is running, what a killed command left behind
    /// (temp files, unreferenced blobs and layers) is removed first.
    pub fn hold(&self) -> Result<FileLock> {
        for d in [self.dir.clone(), self.blobs_dir(), self.layers_dir(), self.dir.join("tmp")] {
            ensure_dir(&d)?;
        }
        let gc = self.dir.join("gc.lock");
        if let Ok(Some(_idle)) = FileLock::try_exclusive(&gc) {
            let _ = remove::collect(self);
        }
        FileLock::shared(&gc)
    }

    /// A fresh path under `tmp/`.
    pub(crate) fn temp_path(&self, what: &str) -> PathBuf {
        self.dir.join("tmp").join(format!("{what}-{}", unique()))
    }

    pub fn index(&self) -> Result<Index> {
        Index::read(&self.dir)
    }

    /// Finds an image by `name[:tag]` (default tag `latest`, docker's name
    /// normalization), by `sha256:` id, or by a unique id prefix.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let index = self.index()?;
        let (id, tag) = lookup(&index, reference)?;
        let d = self.details_in(&index, &id)?;
        let mut layers = Vec::with_capacity(d.layers.len());
        for l in &d.layers {
            layers.push(self.layer_dir(&l.chain_id)?.join(layers::DIFF));
        }
        Ok(Image { id, name: tag.map(|t| reference::familiar_tagged(&t)), config: d.config.run_config(), layers })
    }

    /// Everything about the image `reference` names.
    pub fn details(&self, reference: &str) -> Result<Details> {
        let index = self.index()?;
        let (id, _) = lookup(&index, reference)?;
        self.details_in(&index, &id)
    }

    pub(crate) fn details_in(&self, index: &Index, id: &str) -> Result<Details> {
        let record = index.images.get(id).cloned().ok_or_else(|| crate::error::Error(format!("No such image: {id}")))?;
        let mbytes = self.read_blob(&record.manifest).ctx(|| format!("image {id}: manifest"))?;
        let manifest: Manifest = serde_json::from_slice(&mbytes).ctx(|| format!("image {id}: parse manifest {}", record.manifest))?;
        if manifest.config.digest != id {
            return err(format!("image {id}: its manifest {} names config {}", record.manifest, manifest.config.digest));
        }
        let config_bytes = self.read_blob(id).ctx(|| format!("image {id}: config"))?;
        let config = Config::parse(&config_bytes, id)?;
        let mut layers = Vec::new();
        for chain in Store::chain_ids(&config.rootfs.diff_ids) {
            let rec = self.layer(&chain)?.ok_or_else(|| crate::error::Error(format!("image {id}: layer {chain} is missing from the store")))?;
            layers.push(rec);
        }
        let size = layers.iter().map(|l| l.size).sum();
        Ok(Details { id: id.to_string(), tags: index.tags_of(id), record, manifest, config, config_bytes, layers, size })
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<Details>> {
        let index = self.index()?;
        let mut out = Vec::new();
        for id in index.images.keys() {
            out.push(self.details_in(&index, id)?);
        }
        out.sort_by(|a, b| b.config.created_unix().cmp(&a.config.created_unix()).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `docker tag SRC DST`.
    pub fn tag(&self, src: &str, dst: &str) -> Result<()> {
        let target = Reference::parse(dst)?;
        let key = match target.tagged() {
            Some(k) if target.digest.is_none() => k,
            _ => return err(format!("refusing to create a tag with a digest reference: {dst}")),
        };
        Index::update(&self.dir, |index| {
            let (id, _) = lookup(index, src)?;
            set_tag(index, &key, &id);
            Ok(())
        })
    }

    /// Adds image `id` with manifest `manifest` to the index and points
    /// `tags` (index keys) at it.
    pub(crate) fn register(&self, id: &str, manifest: &str, tags: &[String]) -> Result<()> {
        Index::update(&self.dir, |index| {
            let now = config::now_rfc3339();
            let rec = index.images.entry(id.to_string()).or_insert_with(|| ImageRecord { manifest: manifest.to_string(), added: now, last_tag_time: None });
            rec.manifest = manifest.to_string();
            for t in tags {
                set_tag(index, t, id);
            }
            Ok(())
        })
    }
}

fn set_tag(index: &mut Index, key: &str, id: &str) {
    if index.tags.get(key).map(String::as_str) != Some(id) {
        index.tags.insert(key.to_string(), id.to_string());
        if let Some(rec) = index.images.get_mut(id) {
            rec.last_tag_time = Some(config::now_rfc3339());
        }
    }
}

/// The image `reference` names in `index`: `(id, tag key if found by tag)`.
pub fn lookup(index: &Index, reference: &str) -> Result<(String, Option<String>)> {
    let by_prefix = |hex: &str| -> Result<Option<String>> {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Ok(None);
        }
        let want = format!("sha256:{hex}");
        let hits: Vec<&String> = index.images.keys().filter(|id| id.starts_with(&want)).collect();
        match hits.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some((*one).clone())),
            _ => err(format!("{reference}: ambiguous image id prefix ({} images match)", hits.len())),
        }
    };
    if let Some(hex) = reference.strip_prefix("sha256:") {
        if let Some(id) = by_prefix(hex)? {
            return Ok((id, None));
        }
        return err(format!("No such image: {reference}"));
    }
    let parsed = Reference::parse(reference);
    if let Ok(r) = &parsed {
        if let Some(d) = &r.digest {
            if let Some((id, _)) = index.images.iter().find(|(_, rec)| &rec.manifest == d) {
                return Ok((id.clone(), None));
            }
        } else if let Some(key) = r.tagged() {
            if let Some(id) = index.tags.get(&key) {
                return Ok((id.clone(), Some(key)));
            }
        }
    }
    if let Some(id) = by_prefix(reference)? {
        return Ok((id, None));
    }
    match parsed {
        Ok(r) => err(format!("No such image: {r}")),
        Err(e) => Err(e),
    }
}

/// A name unique to this process and moment, for temp files.
pub(crate) fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A temp file or directory removed when dropped unless kept.
pub(crate) struct Temp {
    path: PathBuf,
    armed: bool,
}

impl Temp {
    /// Creates directory `path`.
    pub fn dir(path: PathBuf) -> Result<Temp> {
        std::fs::create_dir(&path).ctx(|| format!("create {}", path.display()))?;
        Ok(Temp { path, armed: true })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the path in place (it was moved or is wanted).
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir_all(&self.path);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&self.path);
            }
            Err(_) => {}
        }
    }
}
