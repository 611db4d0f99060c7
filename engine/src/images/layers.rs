//! Layers, unpacked once per chain id: `layers/<chain-hex>/diff/` is the
//! directory overlayfs stacks, `layers/<chain-hex>/layer.json` its record.
//! A layer is unpacked into a temp dir and renamed into place whole, so a
//! layer dir that exists is complete.

use super::split::{Reassembly, Recorded, Recorder, Shadow};
use super::unpack::{unpack, Unpacked};
use super::{config, digest, index::sync_dir, zstd, Store, Temp};
use crate::error::{err, Context, Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use std::path::PathBuf;

pub const RECORD: &str = "layer.json";
pub const DIFF: &str = "diff";

/// `layers/<chain-hex>/layer.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    pub chain_id: String,
    pub diff_id: String,
    #[serde(default)]
    pub parent: Option<String>,
    /// Bytes of file content (what docker reports as the layer's size).
    pub size: u64,
    /// Bytes of the uncompressed tar whose sha256 is `diff_id`.
    pub tar_size: u64,
    /// The layer has a tar-split (`split.rs`): its tar can be rebuilt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub split: bool,
    /// Entries of the tar replaced by later ones, kept under `shadow/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadows: Vec<Shadow>,
}

impl Store {
    pub fn layers_dir(&self) -> PathBuf {
        self.dir.join("layers")
    }

    /// `layers/<chain-hex>`.
    pub fn layer_dir(&self, chain_id: &str) -> Result<PathBuf> {
        Ok(self.layers_dir().join(digest::hex_of(chain_id)?))
    }

    /// The record of layer `chain_id`, or None when it is not in the store.
    pub fn layer(&self, chain_id: &str) -> Result<Option<LayerRecord>> {
        let p = self.layer_dir(chain_id)?.join(RECORD);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).ctx(|| format!("parse {}", p.display())).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(|| format!("read {}", p.display())),
        }
    }

    /// Chain ids of the layers `diff_ids`, lowest first.
    pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
        for d in diff_ids {
            let c = digest::chain_id(out.last().map(String::as_str), d);
            out.push(c);
        }
        out
    }
}

/// A layer unpacked into a temp dir, not yet in the store.
pub struct StagedLayer {
    dir: Temp,
    pub diff_id: String,
    pub unpacked: Unpacked,
    pub tar_size: u64,
    /// How the blob was compressed.
    pub compression: Compression,
    shadows: Vec<Shadow>,
}

/// How a layer blob (or an archive) is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The OCI layer media type of a blob compressed this way.
    pub fn oci_layer(self) -> &'static str {
        match self {
            Compression::None => config::OCI_LAYER,
            Compression::Gzip => config::OCI_LAYER_GZIP,
            Compression::Zstd => config::OCI_LAYER_ZSTD,
        }
    }
}

/// A decompressing reader for `r`: gzip and zstd are recognized by their
/// magic bytes (several gzip members or zstd frames are read to the end),
/// anything else is taken as a plain tar; compressions we do not read are
/// named. Returns the compression found.
pub fn decompress<'a>(mut r: impl Read + 'a) -> Result<(Box<dyn Read + 'a>, Compression)> {
    let mut head = [0u8; 6];
    let n = super::blobs::read_full(&mut r, &mut head).ctx(|| "read")?;
    let head = head[..n].to_vec();
    let other = match head.as_slice() {
        [0x1f, 0x8b, ..] => {
            let r = io::Cursor::new(head).chain(r);
            return Ok((Box::new(flate2::read::MultiGzDecoder::new(r)), Compression::Gzip));
        }
        h if h.starts_with(&zstd::MAGIC) => {
            let r = zstd::Decoder::new(io::Cursor::new(head).chain(r)).ctx(|| "read")?;
            return Ok((Box::new(r), Compression::Zstd));
        }
        [b'B', b'Z', b'h', ..] => "bzip2",
        [0xfd, b'7', b'z', b'X', b'Z', 0] => "xz",
        _ => return Ok((Box::new(io::Cursor::new(head).chain(r)), Compression::None)),
    };
    err(format!("{other}-compressed archives are not supported (use gzip, zstd or plain tar)"))
}

/// Decompresses and unpacks the layer blob `blob` into a new temp layer dir
/// of `store`, computing its diff id on the way and recording its
/// tar-split: the blob itself is not kept (a layer is written to flash once).
pub fn unpack_blob(store: &Store, blob: impl Read) -> Result<StagedLayer> {
    let dir = Temp::dir(store.temp_path("layer"))?;
    let diff = dir.path().join(DIFF);
    std::fs::create_dir(&diff).ctx(|| format!("create {}", diff.display()))?;
    let (r, compression) = decompress(blob)?;
    let rec = Recorder::create(&dir.path().join(super::split::FILE))?;
    let mut hashed = digest::HashReader::new(Recorded { inner: r, rec: &rec });
    let unpacked = unpack(&mut hashed, &diff, Some(&rec))?;
    hashed.drain().map_err(|e| Error(format!("read the end of the archive: {e}")))?;
    if hashed.count() == 0 {
        return err("empty input: not a tar archive");
    }
    let (diff_id, tar_size) = (hashed.digest(), hashed.count());
    drop(hashed);
    let shadows = rec.finish()?;
    Ok(StagedLayer { dir, diff_id, unpacked, tar_size, compression, shadows })
}

/// The tar stream of layer `rec`, rebuilt from its tar-split and files
/// (its diff id is checked when the stream ends).
pub fn tar_stream(store: &Store, rec: &LayerRecord) -> Result<Reassembly> {
    if !rec.split {
        return err(format!("layer {}: the store has no tar-split for it (it was stored by an older engine); pull or load the image again", rec.chain_id));
    }
    Reassembly::open(&store.layer_dir(&rec.chain_id)?, &rec.shadows, &rec.diff_id, rec.tar_size)
}

/// The diff id, tar size and compression of a layer blob, without unpacking it (for a
/// layer the store has already).
pub fn hash_blob(blob: impl Read) -> Result<(String, u64, Compression)> {
    let (r, compression) = decompress(blob)?;
    let mut hashed = digest::HashReader::new(r);
    hashed.drain().ctx(|| "read layer")?;
    Ok((hashed.digest(), hashed.count(), compression))
}

/// Moves a staged layer into `layers/<chain>` on top of `parent` (a chain
/// id); when another command put that chain there first, keeps theirs.
pub fn commit(store: &Store, staged: StagedLayer, parent: Option<&str>) -> Result<LayerRecord> {
    let chain_id = digest::chain_id(parent, &staged.diff_id);
    if let Some(rec) = store.layer(&chain_id)? {
        return Ok(rec);
    }
    let rec = LayerRecord {
        chain_id: chain_id.clone(),
        diff_id: staged.diff_id.clone(),
        parent: parent.map(String::from),
        size: staged.unpacked.size,
        tar_size: staged.tar_size,
        split: true,
        shadows: staged.shadows.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&rec).ctx(|| "serialize layer record")?;
    let tmp = staged.dir.path().to_path_buf();
    std::fs::write(tmp.join(RECORD), bytes).ctx(|| format!("write {}", tmp.join(RECORD).display()))?;
    // one syncfs instead of an fsync per file of the layer
    let d = std::fs::File::open(&tmp).ctx(|| format!("open {}", tmp.display()))?;
    nix::unistd::syncfs(&d).ctx(|| format!("syncfs {}", tmp.display()))?;
    let to = store.layer_dir(&chain_id)?;
    match std::fs::rename(&tmp, &to) {
        Ok(()) => {
            staged.dir.keep();
            sync_dir(&store.layers_dir())?;
            Ok(rec)
        }
        // another command committed the same chain meanwhile: theirs stays
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => {
            store.layer(&chain_id)?.ok_or_else(|| Error(format!("layer {chain_id}: {} is incomplete", to.display())))
        }
        Err(e) => Err(e).ctx(|| format!("rename {} to {}", tmp.display(), to.display())),
    }
}
