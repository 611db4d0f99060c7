//! `docker load` and `docker save` archives.
//!
//! Load reads both docker-save archives (`manifest.json` + config
//! `<id>.json` + `<dir>/layer.tar`, symlinked duplicates included) and OCI
//! image layouts (`oci-layout`, `index.json`, `blobs/sha256/...`), plain,
//! gzip or zstd (the archive and each layer), with several images per
//! archive. The archive is read once, its
//! files staged under `tmp/` with their digests, then every config and
//! layer is verified (layer diff ids against the config) before an image
//! is registered. Save writes the docker-save format `docker load` reads.

use super::config::{self, Config, Descriptor, Manifest, Platform};
use super::digest::{self, HashReader};
use super::import::{store_image, tag_key};
use super::{layers, lookup, reference, remove, Store, Temp};
use crate::error::{err, Context, Error, Result};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

/// An image a load added: its id and the tag index keys it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub id: String,
    pub tags: Vec<String>,
}

/// `docker load`: every image of the archive read from `input`.
pub fn load(store: &Store, input: impl Read) -> Result<Vec<Loaded>> {
    let hold = store.hold()?;
    let res = load_held(store, input);
    drop(hold);
    if res.is_err() {
        remove::collect_garbage_if_idle(store);
    }
    res
}

fn load_held(store: &Store, input: impl Read) -> Result<Vec<Loaded>> {
    let staged = Staged::stage(store, input)?;
    if staged.files.contains_key("manifest.json") {
        load_docker(store, &staged)
    } else if staged.files.contains_key("index.json") {
        load_oci(store, &staged)
    } else if staged.files.is_empty() {
        err("load: the input is not a tar archive (or an empty one)")
    } else {
        err("load: the archive has neither manifest.json (docker save) nor index.json (OCI image layout)")
    }
}

/// A file of the archive, copied under tmp/.
struct StagedFile {
    path: PathBuf,
    digest: String,
    size: u64,
}

/// The archive's files by normalized name, and its links.
struct Staged {
    _dir: Temp,
    files: HashMap<String, StagedFile>,
    links: HashMap<String, String>,
}

/// `a/./b/../c` -> `a/c`; None when it climbs above the archive root.
pub(crate) fn normalize(p: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

impl Staged {
    fn stage(store: &Store, input: impl Read) -> Result<Staged> {
        let dir = Temp::dir(store.temp_path("load"))?;
        let (r, _) = layers::decompress(input).ctx(|| "load")?;
        let mut archive = tar::Archive::new(r);
        let mut files = HashMap::new();
        let mut links = HashMap::new();
        let mut last = String::from("the start of the archive");
        let entries = archive.entries().ctx(|| "load: read archive")?;
        for (n, entry) in entries.enumerate() {
            let mut entry = entry.map_err(|e| Error(format!("load: read tar entry after {last}: {e}")))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            last = format!("entry {raw}");
            let Some(name) = normalize(&raw) else {
                return err(format!("load: entry {raw}: path leaves the archive"));
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let path = dir.path().join(format!("f{n}"));
                    let mut f = BufWriter::with_capacity(1 << 16, File::create(&path).ctx(|| format!("create {}", path.display()))?);
                    let mut h = HashReader::new(&mut entry);
                    std::io::copy(&mut h, &mut f).ctx(|| format!("load: entry {raw}"))?;
                    let f = f.into_inner().map_err(|e| e.into_error()).ctx(|| format!("write {}", path.display()))?;
                    f.sync_all().ctx(|| format!("fsync {}", path.display()))?;
                    files.insert(name, StagedFile { path, digest: h.digest(), size: h.count() });
                }
                kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                    let target = entry.link_name_bytes().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default();
                    let full = if kind == tar::EntryType::Symlink && !target.starts_with('/') {
                        format!("{}/{target}", name.rsplit_once('/').map(|(d, _)| d).unwrap_or(""))
                    } else {
                        target.clone()
                    };
                    let Some(t) = normalize(&full) else {
                        return err(format!("load: entry {raw}: link target {target} leaves the archive"));
                    };
                    links.insert(name, t);
                }
                _ => {}
            }
        }
        Ok(Staged { _dir: dir, files, links })
    }

    /// The file `name` names, following the archive's links.
    fn get(&self, name: &str) -> Result<&StagedFile> {
        let mut n = normalize(name).ok_or_else(|| Error(format!("{name}: path leaves the archive")))?;
        for _ in 0..16 {
            if let Some(f) = self.files.get(&n) {
                return Ok(f);
            }
            match self.links.get(&n) {
                Some(t) => n = t.clone(),
                None => break,
            }
        }
        err(format!("{name} is not in the archive"))
    }

    /// Reads a small file (JSON) whole.
    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let f = self.get(name)?;
        if f.size > super::blobs::MAX_JSON_BLOB {
            return err(format!("{name}: larger than {} bytes", super::blobs::MAX_JSON_BLOB));
        }
        std::fs::read(&f.path).ctx(|| format!("read {name}"))
    }

    /// The blob `digest` of an OCI layout, verified.
    fn blob(&self, digest: &str) -> Result<&StagedFile> {
        let f = self.get(&format!("blobs/sha256/{}", digest::hex_of(digest)?))?;
        if f.digest != digest {
            return err(format!("blob {digest} is corrupt in the archive: its content hashes to {}", f.digest));
        }
        Ok(f)
    }
}

/// Unpacks (or, when the store has them, verifies) the layers `files` of an
/// image whose config lists `diff_ids`. Returns their descriptors (the
/// blobs are not kept: save and push rebuild them from the layers).
fn ingest(store: &Store, files: &[(&str, &StagedFile)], diff_ids: &[String]) -> Result<Vec<Descriptor>> {
    if files.len() != diff_ids.len() {
        return err(format!("the image has {} layers but its config lists {} diff ids", files.len(), diff_ids.len()));
    }
    let mut parent: Option<String> = None;
    let mut out = Vec::new();
    for ((name, f), want) in files.iter().zip(diff_ids) {
        let chain = digest::chain_id(parent.as_deref(), want);
        let open = || File::open(&f.path).ctx(|| format!("open {}", f.path.display()));
        let compression = if store.layer(&chain)?.is_some() {
            let (got, _, compression) = layers::hash_blob(open()?).ctx(|| format!("layer {name}"))?;
            if &got != want {
                return err(format!("layer {name}: its content hashes to {got}, the config says {want}"));
            }
            compression
        } else {
            let staged = layers::unpack_blob(store, open()?).ctx(|| format!("layer {name}"))?;
            if &staged.diff_id != want {
                return err(format!("layer {name}: its content hashes to {}, the config says {want}", staged.diff_id));
            }
            let compression = staged.compression;
            layers::commit(store, staged, parent.as_deref())?;
            compression
        };
        out.push(Descriptor { media_type: compression.oci_layer().into(), digest: f.digest.clone(), size: f.size, annotations: None, platform: None });
        parent = Some(chain);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

fn load_docker(store: &Store, staged: &Staged) -> Result<Vec<Loaded>> {
    let entries: Vec<SaveEntry> = serde_json::from_slice(&staged.read("manifest.json")?).ctx(|| "load: parse manifest.json")?;
    let mut out = Vec::new();
    for e in &entries {
        let what = e.repo_tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_else(|| e.config.clone());
        let res: Result<Loaded> = (|| {
            let tags = e.repo_tags.iter().flatten().map(|t| tag_key(t)).collect::<Result<Vec<_>>>()?;
            let cfg = staged.read(&e.config)?;
            let config = Config::parse(&cfg, &e.config)?;
            let files = e.layers.iter().map(|l| staged.get(l).map(|f| (l.as_str(), f))).collect::<Result<Vec<_>>>()?;
            let descs = ingest(store, &files, &config.rootfs.diff_ids)?;
            let id = store_image(store, &cfg, descs, &tags)?;
            Ok(Loaded { id, tags })
        })();
        out.push(res.ctx(|| format!("load {what}"))?);
    }
    Ok(out)
}

fn load_oci(store: &Store, staged: &Staged) -> Result<Vec<Loaded>> {
    let index: config::Index = serde_json::from_slice(&staged.read("index.json")?).ctx(|| "load: parse index.json")?;
    let host = Platform::host();
    let mut out = Vec::new();
    for desc in &index.manifests {
        let tags = match desc.annotation(config::ANNOTATION_IMAGE_NAME).or(desc.annotation(config::ANNOTATION_REF_NAME)) {
            Some(n) => vec![tag_key(n).ctx(|| format!("load: the name of {}", desc.digest))?],
            None => Vec::new(),
        };
        let what = tags.first().map(|t| reference::familiar_tagged(t)).unwrap_or_else(|| desc.digest.clone());
        let res: Result<Loaded> = (|| {
            let mdesc = pick_manifest(staged, desc, &host, 0)?;
            let mbytes = std::fs::read(&staged.blob(&mdesc.digest)?.path).ctx(|| format!("read manifest {}", mdesc.digest))?;
            let m: Manifest = serde_json::from_slice(&mbytes).ctx(|| format!("parse manifest {}", mdesc.digest))?;
            let cfg_file = staged.blob(&m.config.digest)?;
            let cfg = staged.read(&format!("blobs/sha256/{}", digest::hex_of(&m.config.digest)?))?;
            let config = Config::parse(&cfg, &m.config.digest)?;
            debug_assert_eq!(cfg_file.digest, m.config.digest);
            let names: Vec<String> = m.layers.iter().map(|l| l.digest.clone()).collect();
            let files = m.layers.iter().zip(&names).map(|(l, n)| staged.blob(&l.digest).map(|f| (n.as_str(), f))).collect::<Result<Vec<_>>>()?;
            ingest(store, &files, &config.rootfs.diff_ids)?;
            let id = store.put_blob(&cfg)?;
            let mdigest = store.put_blob(&mbytes)?;
            store.register(&id, &mdigest, &tags)?;
            Ok(Loaded { id, tags: tags.clone() })
        })();
        out.push(res.ctx(|| format!("load {what}"))?);
    }
    Ok(out)
}

/// The image manifest `desc` stands for: itself, or for an index (a
/// multi-platform image) the entry for `host`.
fn pick_manifest(staged: &Staged, desc: &Descriptor, host: &Platform, depth: u32) -> Result<Descriptor> {
    let is_index = desc.media_type == config::OCI_INDEX || desc.media_type == config::DOCKER_LIST;
    if !is_index {
        return Ok(desc.clone());
    }
    if depth > 2 {
        return err(format!("index {} nests too deep", desc.digest));
    }
    let bytes = std::fs::read(&staged.blob(&desc.digest)?.path).ctx(|| format!("read index {}", desc.digest))?;
    let idx: config::Index = serde_json::from_slice(&bytes).ctx(|| format!("parse index {}", desc.digest))?;
    let fits = |d: &&Descriptor| d.platform.as_ref().is_some_and(|p| p.matches(host));
    let pick = idx.manifests.iter().find(fits).or(match idx.manifests.as_slice() {
        [only] if only.platform.is_none() => Some(only),
        _ => None,
    });
    match pick {
        Some(d) => pick_manifest(staged, d, host, depth + 1),
        None => {
            let have: Vec<String> = idx.manifests.iter().filter_map(|d| d.platform.as_ref()).map(|p| format!("{}/{}", p.os, p.architecture)).collect();
            err(format!("index {} has no image for {}/{} (it has: {})", desc.digest, host.os, host.architecture, have.join(", ")))
        }
    }
}

/// `docker save`: the images `names` as a docker-save archive on `out`
/// (layers uncompressed, each once; `RepoTags` are the names given by tag).
pub fn save(store: &Store, names: &[String], out: impl Write) -> Result<()> {
    let index = store.index()?;
    let mut images: Vec<(String, Vec<String>)> = Vec::new();
    for n in names {
        let (id, tag) = lookup(&index, n)?;
        let pos = match images.iter().position(|(i, _)| *i == id) {
            Some(p) => p,
            None => {
                images.push((id, Vec::new()));
                images.len() - 1
            }
        };
        if let Some(t) = tag {
            let t = reference::familiar_tagged(&t);
            if !images[pos].1.contains(&t) {
                images[pos].1.push(t);
            }
        }
    }
    let mut b = tar::Builder::new(out);
    let mut written = HashSet::new();
    let mut manifest = Vec::new();
    for (id, tags) in &images {
        let d = store.details_in(&index, id)?;
        let mtime = d.config.created_unix().unwrap_or(0).max(0) as u64;
        let cfg_name = format!("{}.json", digest::hex_of(id)?);
        append(&mut b, &cfg_name, tar::EntryType::Regular, d.config_bytes.len() as u64, mtime, &d.config_bytes[..])?;
        if d.manifest.layers.len() != d.layers.len() {
            return err(format!("image {id}: its manifest has {} layers, its config {}", d.manifest.layers.len(), d.layers.len()));
        }
        let mut layer_names = Vec::new();
        for (rec, desc) in d.layers.iter().zip(&d.manifest.layers) {
            let hex = digest::hex_of(&rec.diff_id)?;
            let name = format!("{hex}/layer.tar");
            if written.insert(hex.to_string()) {
                append(&mut b, &format!("{hex}/"), tar::EntryType::Directory, 0, mtime, std::io::empty())?;
                if rec.split {
                    // the stream checks the diff id at its end
                    let tar = layers::tar_stream(store, rec)?;
                    append(&mut b, &name, tar::EntryType::Regular, rec.tar_size, mtime, tar)?;
                } else {
                    save_from_blob(store, &mut b, &name, rec, desc, mtime)?;
                }
            }
            layer_names.push(name);
        }
        manifest.push(serde_json::json!({
            "Config": cfg_name,
            "RepoTags": if tags.is_empty() { serde_json::Value::Null } else { tags.clone().into() },
            "Layers": layer_names,
        }));
    }
    let m = serde_json::to_vec(&manifest).ctx(|| "serialize manifest.json")?;
    append(&mut b, "manifest.json", tar::EntryType::Regular, m.len() as u64, 0, &m[..])?;
    let mut out = b.into_inner().ctx(|| "save: write archive")?;
    out.flush().ctx(|| "save: write archive")
}

/// A layer an older engine stored as a blob: decompressed, its digest checked.
fn save_from_blob<W: Write>(store: &Store, b: &mut tar::Builder<W>, name: &str, rec: &layers::LayerRecord, desc: &Descriptor, mtime: u64) -> Result<()> {
    let mut raw = HashReader::new(store.open_blob(&desc.digest)?);
    let (r, _) = layers::decompress(&mut raw).ctx(|| format!("save: layer blob {}", desc.digest))?;
    let mut diff = HashReader::new(r);
    append(b, name, tar::EntryType::Regular, rec.tar_size, mtime, (&mut diff).take(rec.tar_size))?;
    diff.drain().ctx(|| format!("save: read layer blob {}", desc.digest))?;
    drop(diff);
    raw.drain().ctx(|| format!("save: read layer blob {}", desc.digest))?;
    if raw.digest() != desc.digest {
        return err(format!("save: layer blob {} is corrupt in the store (it hashes to {})", desc.digest, raw.digest()));
    }
    Ok(())
}

/// Appends one entry, failing when `data` does not hold exactly `size` bytes.
fn append<W: Write>(b: &mut tar::Builder<W>, name: &str, kind: tar::EntryType, size: u64, mtime: u64, data: impl Read) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    let mut counted = HashReader::new(data);
    b.append_data(&mut h, name, &mut counted).ctx(|| format!("save: write {name}"))?;
    if counted.count() != size {
        return err(format!("save: {name}: {} bytes where {size} were expected (the store is corrupt)", counted.count()));
    }
    Ok(())
}
