//! `engine commit`: a container's changes become a new image layer, as
//! docker's commit makes it. The layer is the container's overlay upper dir
//! written as an OCI layer tar (overlay whiteouts back to `.wh.` files,
//! opaque directories to `.wh..wh..opq`), streamed through a pipe into the
//! store's own unpacker, so the layer is stored like a pulled one (tar-split,
//! diff id) and `save`/`push` rebuild the exact tar.

use crate::containers::Env;
use crate::error::{err, Context, Error, Result};
use crate::images::{config, import, layers, remove, Store};
use crate::record::{self, Record};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// `commit`'s flags besides the names.
#[derive(Debug, Default)]
pub struct Options {
    pub author: Option<String>,
    pub message: Option<String>,
    /// `-c` Dockerfile instructions applied to the config (CMD, ENV, ...).
    pub changes: Vec<String>,
    /// Pause a running container while its files are read (docker's default).
    pub pause: bool,
}

/// Commits container `reference` as a new image (tagged `tag` if given);
/// returns its id. On failure nothing of it stays in the store.
pub fn commit(env: &Env, reference: &str, tag: Option<&str>, o: &Options) -> Result<String> {
    let rec = record::find(&env.root, reference)?;
    let upper = record::dir(&env.root, &rec.id).join("upper");
    if !upper.is_dir() {
        return err(format!("commit needs an overlayfs rootfs: container {} has a copy", rec.name));
    }
    let tags = tag.map(import::tag_key).transpose()?.into_iter().collect::<Vec<_>>();
    let store = Store::open(&env.root)?;
    let hold = store.hold()?;
    let paused = o.pause && crate::containers::status(env, &rec).0 == "running" && crate::containers::pause(env, &rec.id, true).is_ok();
    let res = commit_held(&store, &rec, &upper, &tags, o);
    if paused {
        let _ = crate::containers::pause(env, &rec.id, false);
    }
    drop(hold);
    if res.is_err() {
        remove::collect_garbage_if_idle(&store);
    }
    res
}

fn commit_held(store: &Store, rec: &Record, upper: &Path, tags: &[String], o: &Options) -> Result<String> {
    let parent = store.details(&rec.image_id)?;
    // the changes first: a bad one fails before any work
    let mut cfg: Value = serde_json::from_slice(&parent.config_bytes).ctx(|| format!("parse the config of {}", parent.id))?;
    let mut run = container_config(&cfg["config"], rec);
    for c in &o.changes {
        crate::build::apply_change(&mut run, c)?;
    }
    let mut hidden: Vec<String> = rec.mounts.iter().map(|m| m.destination.clone()).collect();
    hidden.push("/dev/init".into());
    let staged = layer_from_dir(store, upper, &hidden)?;
    let (diff_id, tar_size) = (staged.diff_id.clone(), staged.tar_size);
    let layer = layers::commit(store, staged, parent.layers.last().map(|l| l.chain_id.as_str()))?;
    let created = config::now_rfc3339();
    cfg["config"] = run;
    cfg["created"] = created.clone().into();
    cfg["container"] = rec.id.clone().into();
    cfg["author"] = o.author.clone().unwrap_or_default().into();
    cfg["comment"] = o.message.clone().unwrap_or_default().into();
    push_history(&mut cfg, json!({ "created": created, "created_by": rec.args.join(" "), "comment": o.message.clone().unwrap_or_default() }));
    push_layer(&mut cfg, &layer.diff_id);
    let bytes = serde_json::to_vec(&cfg).ctx(|| "serialize the image config")?;
    let mut descs = parent.manifest.layers.clone();
    descs.push(layer_descriptor(&diff_id, tar_size));
    import::store_image(store, &bytes, descs, tags)
}

/// The manifest entry of a layer the engine made: stored uncompressed, so
/// its blob digest is its diff id (push sends it as is).
pub fn layer_descriptor(diff_id: &str, tar_size: u64) -> config::Descriptor {
    config::Descriptor { media_type: config::OCI_LAYER.into(), digest: diff_id.into(), size: tar_size, annotations: None, platform: None }
}

pub fn push_history(cfg: &mut Value, step: Value) {
    match cfg["history"].as_array_mut() {
        Some(h) => h.push(step),
        None => cfg["history"] = json!([step]),
    }
}

pub fn push_layer(cfg: &mut Value, diff_id: &str) {
    match cfg["rootfs"]["diff_ids"].as_array_mut() {
        Some(d) => d.push(diff_id.into()),
        None => cfg["rootfs"] = json!({ "type": "layers", "diff_ids": [diff_id] }),
    }
}

/// The image config of a commit: the image's, with what the container ran
/// (docker's container Config): command, environment, user, workdir,
/// labels, healthcheck, stop signal.
fn container_config(image: &Value, rec: &Record) -> Value {
    let mut c = if image.is_object() { image.clone() } else { json!({}) };
    let image_ep: Vec<String> = serde_json::from_value(c["Entrypoint"].clone()).unwrap_or_default();
    let ep = rec.entrypoint.clone().unwrap_or_else(|| if rec.args.starts_with(&image_ep) { image_ep } else { Vec::new() });
    let cmd = rec.args.get(ep.len()..).unwrap_or_default();
    c["Entrypoint"] = if ep.is_empty() { Value::Null } else { json!(ep) };
    c["Cmd"] = if cmd.is_empty() { Value::Null } else { json!(cmd) };
    // HOSTNAME is the container's own, set again in every container.
    c["Env"] = json!(rec.env.iter().filter(|e| !e.starts_with("HOSTNAME=")).collect::<Vec<_>>());
    c["WorkingDir"] = rec.working_dir.clone().into();
    c["User"] = rec.user.clone().into();
    if !rec.labels.is_empty() {
        let mut labels = c["Labels"].as_object().cloned().unwrap_or_default();
        labels.extend(rec.labels.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))));
        c["Labels"] = Value::Object(labels);
    }
    if let Some(h) = &rec.healthcheck {
        c["Healthcheck"] = serde_json::to_value(h).unwrap_or(Value::Null);
    }
    if c["StopSignal"].is_string() || rec.stop_signal != "SIGTERM" {
        c["StopSignal"] = rec.stop_signal.clone().into();
    }
    c
}

/// Stages the layer of the changes in overlay upper dir `upper`, leaving
/// out the engine's mount points and the paths in `hidden`.
pub fn layer_from_dir(store: &Store, upper: &Path, hidden: &[String]) -> Result<layers::StagedLayer> {
    stage(store, |w| layer_tar(upper, hidden, w))
}

/// Stages the layer whose tar `write` writes: through a pipe into the
/// store's unpacker, which records its tar-split and diff id.
pub fn stage(store: &Store, write: impl FnOnce(std::io::PipeWriter) -> Result<()> + Send) -> Result<layers::StagedLayer> {
    let (reader, writer) = std::io::pipe().ctx(|| "pipe")?;
    std::thread::scope(|s| {
        let writing = s.spawn(move || write(writer));
        let staged = layers::unpack_blob(store, reader);
        let written = writing.join().map_err(|_| Error("the layer writer panicked".into()))?;
        // Whichever side failed first names the cause: a reader that gave up
        // leaves the writer a broken pipe; a writer that did, a short stream.
        match written {
            Err(e) if !e.0.contains("Broken pipe") => Err(e),
            _ => staged,
        }
    })
}

/// Writes the overlay upper dir `upper` as an OCI layer tar to `out`.
pub fn layer_tar(upper: &Path, hidden: &[String], out: impl Write) -> Result<()> {
    let mut w = LayerWriter { b: tar::Builder::new(out), upper, hidden, links: HashMap::new() };
    w.dir(Path::new(""))?;
    w.b.into_inner().ctx(|| "write the layer").map(drop)
}

struct LayerWriter<'a, W: Write> {
    b: tar::Builder<W>,
    upper: &'a Path,
    hidden: &'a [String],
    /// (dev, inode) of files with several links -> the first name written.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> LayerWriter<'_, W> {
    fn dir(&mut self, rel: &Path) -> Result<()> {
        let here = self.upper.join(rel);
        let mut names: Vec<OsString> = std::fs::read_dir(&here).ctx(|| format!("read {}", here.display()))?.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let path = format!("/{}", r.display());
            let under = |m: &String| path == *m || path.starts_with(&format!("{m}/"));
            if crate::rootfs::MOUNT_POINTS.iter().map(|m| m.to_string()).any(|m| under(&m)) || self.hidden.iter().any(under) {
                continue;
            }
            self.entry(&r, &n)?;
        }
        Ok(())
    }

    fn entry(&mut self, r: &Path, name: &OsString) -> Result<()> {
        let p = self.upper.join(r);
        let m = std::fs::symlink_metadata(&p).ctx(|| format!("stat {}", p.display()))?;
        let ft = m.file_type();
        let put = |e: std::io::Result<()>| e.ctx(|| format!("write {} to the layer", r.display()));
        if ft.is_char_device() && m.rdev() == 0 {
            // an overlay whiteout: the image's file is deleted
            let mut wh = OsString::from(".wh.");
            wh.push(name);
            return put(self.empty(&r.with_file_name(wh), m.mtime()));
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
        self.xattrs(&p)?;
        if ft.is_dir() {
            put(self.b.append_data(&mut h, r, std::io::empty()))?;
            if xattr(&p, "trusted.overlay.opaque").as_deref() == Some(b"y") {
                put(self.empty(&r.join(".wh..wh..opq"), m.mtime()))?;
            }
            return self.dir(r);
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(&p).ctx(|| format!("readlink {}", p.display()))?;
            return put(self.b.append_link(&mut h, r, target));
        }
        if m.nlink() > 1 {
            if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                let first = first.clone();
                return put(self.b.append_link(&mut h, r, first));
            }
            self.links.insert((m.dev(), m.ino()), r.to_path_buf());
        }
        if ft.is_file() {
            // the last component is not followed (a running container could swap it)
            let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&p).ctx(|| format!("open {}", p.display()))?;
            return put(self.b.append_data(&mut h, r, f));
        }
        put(self.b.append_data(&mut h, r, std::io::empty())) // fifos and device nodes
    }

    fn empty(&mut self, path: &Path, mtime: i64) -> std::io::Result<()> {
        let mut h = new_header(tar::EntryType::Regular, 0o644, (0, 0), mtime.max(0) as u64);
        self.b.append_data(&mut h, path, std::io::empty())
    }

    /// The file's xattrs (file capabilities...) as PAX records before its
    /// entry; overlayfs' own are not the image's.
    fn xattrs(&mut self, p: &Path) -> Result<()> {
        let names = list_xattrs(p);
        let mut recs: Vec<(String, Vec<u8>)> = Vec::new();
        for n in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let n = String::from_utf8_lossy(n).into_owned();
            if n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.") {
                continue;
            }
            if let Some(v) = xattr(p, &n) {
                recs.push((format!("SCHILY.xattr.{n}"), v));
            }
        }
        if recs.is_empty() {
            return Ok(());
        }
        self.b.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).ctx(|| format!("write the xattrs of {}", p.display()))
    }
}

/// A header for an entry made up here (every numeric field set: a blank
/// one does not parse).
pub fn new_header(kind: tar::EntryType, mode: u32, (uid, gid): (u64, u64), mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_size(0);
    h.set_mtime(mtime);
    h
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// The NUL-separated xattr names of `p` (not followed); empty on error.
fn list_xattrs(p: &Path) -> Vec<u8> {
    let c = cpath(p);
    let mut buf = vec![0u8; 4096];
    // SAFETY: buf is valid for writes of its length; c is NUL-terminated.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    buf.truncate(n.max(0) as usize);
    buf
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let (c, n) = (cpath(p), CString::new(name).ok()?);
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: buf is valid for writes of its length; both strings NUL-terminated.
    let len = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}
