//! Store tests through the library: import, hostile archives, whiteouts,
//! load/save round trips (docker-save and OCI layouts), tags, rmi, and
//! concurrent imports. They run as root (as the crate's tests do in CI).

use super::archive::{load, save};
use super::config::{self, Descriptor, Manifest};
use super::digest;
use super::import::import;
use super::remove::{remove, Removed};
use super::Store;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A temp dir removed when dropped.
pub struct Dir(PathBuf);

impl Dir {
    pub fn new(tag: &str) -> Dir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("skiff-engine-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tar written header by header, so tests can say anything (`..`,
/// absolute paths, links anywhere) that tar writers refuse to.
#[derive(Default)]
pub struct RawTar(pub Vec<u8>);

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0w$o}", v, w = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
}

impl RawTar {
    /// kind: b'0' file, b'5' dir, b'2' symlink, b'1' hard link, b'3' char, b'6' fifo.
    pub fn entry(mut self, name: &str, kind: u8, link: &str, data: &[u8], mode: u32) -> Self {
        self.add(name, kind, link, data, mode, (0, 0));
        self
    }

    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name, b'0', "", data, 0o644)
    }

    pub fn dir(self, name: &str) -> Self {
        self.entry(name, b'5', "", b"", 0o755)
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, b'2', target, b"", 0o777)
    }

    pub fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(name, b'1', target, b"", 0o644)
    }

    /// A file with pax records (xattrs: `SCHILY.xattr.NAME`, mtime...).
    pub fn pax_file(mut self, name: &str, data: &[u8], records: &[(&str, &[u8])]) -> Self {
        let mut pax = Vec::new();
        for (k, v) in records {
            let body_len = k.len() + v.len() + 3; // ' ' '=' '\n'
            let mut len = body_len + 1;
            while len != body_len + len.to_string().len() {
                len = body_len + len.to_string().len();
            }
            pax.extend_from_slice(format!("{len} {k}=").as_bytes());
            pax.extend_from_slice(v);
            pax.push(b'\n');
        }
        self.add("PaxHeader", b'x', "", &pax, 0o644, (0, 0));
        self.add(name, b'0', "", data, 0o644, (0, 0));
        self
    }

    pub fn add(&mut self, name: &str, kind: u8, link: &str, data: &[u8], mode: u32, dev: (u64, u64)) {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], mode as u64);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], 1_600_000_000);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], dev.0);
        octal(&mut h[337..345], dev.1);
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| b as u64).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.0.extend_from_slice(&h);
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.resize(self.0.len() + pad, 0);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.0.resize(self.0.len() + 1024, 0);
        self.0
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Everything under `images/` that holds content: must be empty after a failure.
fn content(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for d in [store.blobs_dir(), store.layers_dir(), store.dir.join("tmp")] {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            out.push(e.path().display().to_string());
        }
    }
    let index = store.index().unwrap();
    out.extend(index.images.keys().cloned());
    out.extend(index.tags.keys().cloned());
    out
}

fn rootfs_tar() -> Vec<u8> {
    RawTar::default()
        .dir("./")
        .dir("./bin/")
        .file("./bin/hello", b"#!/bin/sh\necho hi\n")
        .entry("./bin/suid", b'0', "", b"x", 0o4755)
        .symlink("./bin/sh", "hello")
        .hardlink("./bin/hello2", "./bin/hello")
        .dir("./etc/")
        .file("./etc/hostname", b"skiff\n")
        .entry("./dev-fifo", b'6', "", b"", 0o600)
        .finish()
}

#[test]
fn import_then_resolve() {
    let root = Dir::new("import");
    let store = Store::open(root.path()).unwrap();
    let tar = rootfs_tar();
    let id = import(&store, &gzip(&tar)[..], Some("busybox"), "-", &[], None).unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let img = store.resolve("busybox").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.name.as_deref(), Some("busybox:latest"));
    assert_eq!(img.config.cmd, None);
    assert_eq!(img.layers.len(), 1);
    let l = &img.layers[0];
    assert_eq!(std::fs::read(l.join("bin/hello")).unwrap(), b"#!/bin/sh\necho hi\n");
    assert_eq!(std::fs::read_link(l.join("bin/sh")).unwrap(), Path::new("hello"));
    assert_eq!(std::fs::metadata(l.join("bin/suid")).unwrap().permissions().mode() & 0o7777, 0o4755);
    assert_eq!(std::fs::metadata(l.join("bin/hello")).unwrap().ino(), std::fs::metadata(l.join("bin/hello2")).unwrap().ino());
    assert!(std::fs::symlink_metadata(l.join("dev-fifo")).unwrap().file_type().is_fifo());
    assert_eq!(std::fs::metadata(l.join("etc/hostname")).unwrap().mtime(), 1_600_000_000);

    // by id, prefix, full name; the diff id is the uncompressed tar's digest
    assert_eq!(store.resolve(&id).unwrap().id, id);
    assert_eq!(store.resolve(&id[7..19]).unwrap().id, id);
    assert_eq!(store.resolve("docker.io/library/busybox:latest").unwrap().id, id);
    assert!(store.resolve("busybox:other").unwrap_err().0.contains("No such image: busybox:other"));
    let d = store.details("busybox").unwrap();
    assert_eq!(d.config.rootfs.diff_ids, vec![digest::of_bytes(&tar)]);
    assert_eq!(d.manifest.layers[0].media_type, config::OCI_LAYER_GZIP);
    assert_eq!(d.config.platform(), config::Platform::host());
    // what a layer holds: file bytes
    assert_eq!(d.size, 18 + 1 + 6);

    // the same tarball again, uncompressed: same layer, a new image id (new created time)
    let id2 = import(&store, &tar[..], Some("other:v1"), "-", &[], None).unwrap();
    assert_eq!(store.resolve("other:v1").unwrap().layers, img.layers);
    assert_eq!(std::fs::read_dir(store.layers_dir()).unwrap().count(), 1);
    assert_ne!(id, id2);
}

/// `zstd -19` (the zstd CLI, made once) of a ustar archive of `etc/` and
/// `etc/hello` ("hi from zstd\n"), mtime 1600000000: 10240 bytes whose sha256 is
/// [`ZSTD_TAR_DIFF_ID`].
const ZSTD_TAR: &str = "28b52ffd046835030092440f1290cf01bf359a70ec99d93a6e9170f65362a507abd21ba29c2d3cc7e1844b9b2ee54808997b9572327fa64aed6fc2fb10ee2e6820d2e71b83f84255161020702b6d39ef03afc0aaa6c3ecc1373ac00a2753180740e17f31d11aec2148105380f184df36e33a68";
const ZSTD_TAR_DIFF_ID: &str = "sha256:4372864e816746bdfb63aef53f27ccfaac8bf5c0008de9c297bd61a6f45b1fa8";

fn zstd_tar() -> Vec<u8> {
    (0..ZSTD_TAR.len()).step_by(2).map(|i| u8::from_str_radix(&ZSTD_TAR[i..i + 2], 16).unwrap()).collect()
}

fn zstd_tar_bad_checksum() -> Vec<u8> {
    let mut z = zstd_tar();
    *z.last_mut().unwrap() ^= 0xff;
    z
}

#[test]
fn zstd_import_and_load() {
    let root = Dir::new("zstd");
    let store = Store::open(root.path()).unwrap();
    import(&store, &zstd_tar()[..], Some("z"), "-", &[], None).unwrap();
    let img = store.resolve("z").unwrap();
    assert_eq!(std::fs::read(img.layers[0].join("etc/hello")).unwrap(), b"hi from zstd\n");
    let d = store.details("z").unwrap();
    assert_eq!(d.config.rootfs.diff_ids, vec![ZSTD_TAR_DIFF_ID.to_string()]);
    assert_eq!(d.manifest.layers[0].media_type, config::OCI_LAYER_ZSTD);
    assert_eq!(d.manifest.layers[0].digest, digest::of_bytes(&zstd_tar()), "the blob is kept as it came");

    // a docker-save archive with a zstd layer (new to the store, then known), the whole archive zstd too
    let plain = RawTar::default().file("plain", b"p").finish();
    let archive = docker_save_archive(&[(&["zl:v1"], &[zstd_tar(), plain.clone()])]);
    for (n, input) in [(1, archive.clone()), (2, compress_zstd_frames(&archive))] {
        let b = Dir::new(&format!("zstd-load{n}"));
        let s = Store::open(b.path()).unwrap();
        for round in 0..2 {
            load(&s, &input[..]).unwrap_or_else(|e| panic!("load {n} round {round}: {}", e.0));
            let d = s.details("zl:v1").unwrap();
            let types: Vec<&str> = d.manifest.layers.iter().map(|l| l.media_type.as_str()).collect();
            assert_eq!(types, [config::OCI_LAYER_ZSTD, config::OCI_LAYER], "load {n} round {round}");
            assert_eq!(d.config.rootfs.diff_ids[0], ZSTD_TAR_DIFF_ID);
            assert_eq!(std::fs::read(s.resolve("zl:v1").unwrap().layers[0].join("etc/hello")).unwrap(), b"hi from zstd\n");
        }
    }

    // a corrupt zstd layer is refused naming it, nothing stays
    let c = Dir::new("zstd-bad");
    let s = Store::open(c.path()).unwrap();
    let mut bad = docker_save_archive(&[(&["bad"], &[zstd_tar()])]);
    let z = zstd_tar();
    let pos = bad.windows(z.len()).position(|w| w == z).unwrap() + z.len() - 1;
    bad[pos] ^= 0xff; // the frame's checksum
    let e = load(&s, &bad[..]).unwrap_err();
    assert!(e.0.contains("load bad: layer img0layer0/layer.tar: ") && e.0.contains("zstd: content checksum mismatch"), "{}", e.0);
    assert_eq!(content(&s), Vec::<String>::new());
}

/// `data` as zstd raw blocks (no compression), one frame per 100 KiB: what
/// a zstd writer that flushes frames produces, without a zstd encoder.
fn compress_zstd_frames(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in data.chunks(100 << 10) {
        // magic; frame header descriptor: no checksum, not single segment, no content size; window 1 MiB
        out.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50]);
        let blocks: Vec<&[u8]> = frame.chunks(64 << 10).collect();
        for (i, b) in blocks.iter().enumerate() {
            let last = (i + 1 == blocks.len()) as u32;
            let h = last | (b.len() as u32) << 3; // block type 0: raw
            out.extend_from_slice(&h.to_le_bytes()[..3]);
            out.extend_from_slice(b);
        }
    }
    out
}

/// Each hostile archive is refused naming the entry, writes nothing outside
/// the layer and leaves nothing in the store.
#[test]
fn hostile_archives_are_refused() {
    let root = Dir::new("hostile");
    let outside = root.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"precious").unwrap();
    let o = outside.display().to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dotdot", RawTar::default().file("../../../outside/pwned", b"x").finish(), "entry ../../../outside/pwned: path has a `..`"),
        ("inner dotdot", RawTar::default().dir("a/").file("a/../../x", b"x").finish(), "entry a/../../x: path has a `..`"),
        ("absolute", RawTar::default().file(&format!("{o}/pwned"), b"x").finish(), "absolute path"),
        (
            "write through symlink",
            RawTar::default().symlink("evil", &o).file("evil/pwned", b"x").finish(),
            "entry evil/pwned: path goes through the symbolic link evil",
        ),
        (
            "write through relative symlink",
            RawTar::default().symlink("evil", "../../../../../../../..").dir("evil/tmp/").finish(),
            "entry evil/tmp/: path goes through the symbolic link evil",
        ),
        (
            "symlinked dir then deeper",
            RawTar::default().dir("d/").symlink("d/l", &o).file("d/l/x/y", b"x").finish(),
            "entry d/l/x/y: path goes through the symbolic link d/l",
        ),
        ("hardlink outside absolute", RawTar::default().hardlink("h", &format!("{o}/victim")).finish(), "entry h: hard link target"),
        (
            "hardlink outside dotdot",
            RawTar::default().hardlink("h", "../outside/victim").finish(),
            "entry h: hard link target ../outside/victim: path has a `..`",
        ),
        (
            "hardlink through symlink",
            RawTar::default().symlink("s", &o).hardlink("h", "s/victim").finish(),
            "entry h: hard link target s/victim: path goes through the symbolic link s",
        ),
        ("hardlink to missing", RawTar::default().hardlink("h", "nothere").finish(), "entry h: hard link to nothere"),
        ("not a tar", b"this is not a tar archive at all, just text that goes on long enough".repeat(20), "tar"),
        ("empty", Vec::new(), "empty input"),
        ("bzip2", b"BZh91AY&SY".to_vec(), "bzip2-compressed archives are not supported"),
        ("corrupt zstd", vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0], "import -: "),
        ("zstd with a bad checksum", zstd_tar_bad_checksum(), "zstd: content checksum mismatch"),
        ("truncated", RawTar::default().file("big", &[7u8; 4000]).finish()[..1500].to_vec(), "big"),
    ];
    for (what, tar, want) in cases {
        let store = Store::open(root.path()).unwrap();
        let e = import(&store, &tar[..], Some("evil"), "-", &[], None).expect_err(what);
        assert!(e.0.contains(want), "{what}: error `{}` lacks `{want}`", e.0);
        assert_eq!(content(&store), Vec::<String>::new(), "{what}: left in the store");
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"precious", "{what}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1, "{what}: wrote outside");
    }

    // replacing a symlink by a file replaces the link, never writes through it
    let store = Store::open(root.path()).unwrap();
    let tar = RawTar::default().symlink("s", &format!("{o}/victim")).file("s", b"mine").finish();
    let id = import(&store, &tar[..], Some("ok"), "-", &[], None).unwrap();
    let l = store.resolve(&id).unwrap().layers[0].clone();
    assert_eq!(std::fs::read(l.join("s")).unwrap(), b"mine");
    assert!(!std::fs::symlink_metadata(l.join("s")).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"precious");
    // a hard link to a symlink links the symlink itself
    let tar = RawTar::default().symlink("s", &format!("{o}/victim")).hardlink("h", "s").file("h", b"new").finish();
    let id = import(&store, &tar[..], Some("ok2"), "-", &[], None).unwrap();
    let l = store.resolve(&id).unwrap().layers[0].clone();
    assert_eq!(std::fs::read(l.join("h")).unwrap(), b"new");
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"precious");
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let root = Dir::new("whiteout");
    let store = Store::open(root.path()).unwrap();
    let tar = RawTar::default()
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"n")
        .file(".wh.gone", b"")
        .file("sub/.wh.x", b"")
        .file(".wh..wh.plnk", b"")
        .pax_file("caps", b"c", &[("SCHILY.xattr.user.skiff", b"v1"), ("SCHILY.xattr.trusted.overlay.opaque", b"y"), ("mtime", b"1600000001.5")])
        .finish();
    let id = import(&store, &tar[..], None, "-", &[], None).unwrap();
    let l = store.resolve(&id).unwrap().layers[0].clone();
    for wh in ["gone", "sub/x"] {
        let m = std::fs::symlink_metadata(l.join(wh)).unwrap();
        assert!(m.file_type().is_char_device() && m.rdev() == 0, "{wh} is not a 0/0 char device");
    }
    assert!(!l.join(".wh.gone").exists() && !l.join(".wh..wh.plnk").exists());
    assert_eq!(xattr(&l.join("d"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert!(!l.join("d/.wh..wh..opq").exists());
    assert_eq!(xattr(&l.join("caps"), "user.skiff").as_deref(), Some(&b"v1"[..]));
    assert_eq!(xattr(&l.join("caps"), "trusted.overlay.opaque"), None, "an archive set an overlay xattr");
    let m = std::fs::metadata(l.join("caps")).unwrap();
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_001, 500_000_000));
    // untagged: listed with no tags
    assert!(store.list().unwrap()[0].tags.is_empty());
}

pub fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let key = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and buffer.
    let n = unsafe { libc::lgetxattr(path.as_ptr(), key.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

/// A docker-save archive of one image with `layers` (tar bytes, maybe gzip).
fn docker_save_archive(images: &[(&[&str], &[Vec<u8>])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let put = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    for (n, (tags, layers)) in images.iter().enumerate() {
        let mut diff_ids = Vec::new();
        let mut names = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let mut plain = Vec::new();
            let (mut r, _) = super::layers::decompress(&l[..]).unwrap();
            std::io::Read::read_to_end(&mut r, &mut plain).unwrap();
            diff_ids.push(digest::of_bytes(&plain));
            let name = format!("img{n}layer{i}/layer.tar");
            put(&mut b, &name, l);
            names.push(name);
        }
        let cfg = serde_json::to_vec(&serde_json::json!({
            "architecture": config::Platform::host().architecture, "os": "linux",
            "created": "2023-11-14T22:13:20Z",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "WorkingDir": "/w"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
        }))
        .unwrap();
        let cfg_name = format!("{}.json", &digest::of_bytes(&cfg)[7..]);
        put(&mut b, &cfg_name, &cfg);
        manifest.push(serde_json::json!({"Config": cfg_name, "RepoTags": tags, "Layers": names}));
    }
    put(&mut b, "manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.into_inner().unwrap()
}

#[test]
fn load_save_round_trip() {
    let a = Dir::new("rt-a");
    let store = Store::open(a.path()).unwrap();
    let l1 = RawTar::default().dir("etc/").file("etc/a", b"a").file("keep", b"k").finish();
    let l2 = RawTar::default().file("etc/b", b"b").file(".wh.keep", b"").finish();
    let l3 = RawTar::default().file("third", b"3").finish();
    let archive = docker_save_archive(&[(&["app:v1", "app:latest"], &[l1.clone(), gzip(&l2)]), (&["other"], &[l1.clone(), gzip(&l2), l3.clone()])]);
    let loaded = load(&store, &archive[..]).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].tags, vec!["docker.io/library/app:v1", "docker.io/library/app:latest"]);
    let app = store.resolve("app:v1").unwrap();
    assert_eq!(app.config.cmd, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(app.config.working_dir.as_deref(), Some("/w"));
    assert_eq!(app.layers.len(), 2);
    assert!(app.layers[0].join("keep").exists());
    assert_eq!(std::fs::read(app.layers[1].join("etc/b")).unwrap(), b"b");
    let other = store.resolve("other").unwrap();
    assert_eq!(&other.layers[..2], &app.layers[..], "shared layers are unpacked once");
    assert_eq!(std::fs::read_dir(store.layers_dir()).unwrap().count(), 3);

    // save both, load into a fresh store: same ids, same layer contents
    let mut saved = Vec::new();
    save(&store, &["app:v1".into(), "other:latest".into(), "app".into()], &mut saved).unwrap();
    let b = Dir::new("rt-b");
    let store2 = Store::open(b.path()).unwrap();
    let loaded2 = load(&store2, &saved[..]).unwrap();
    assert_eq!(loaded2.iter().map(|l| l.id.clone()).collect::<Vec<_>>(), vec![app.id.clone(), other.id.clone()]);
    assert_eq!(loaded2[0].tags, vec!["docker.io/library/app:v1", "docker.io/library/app:latest"]);
    let other2 = store2.resolve("other").unwrap();
    assert_eq!(std::fs::read(other2.layers[2].join("third")).unwrap(), b"3");
    assert_eq!(store2.details("other").unwrap().config.rootfs.diff_ids, store.details("other").unwrap().config.rootfs.diff_ids);
    // the saved archive has each layer once, uncompressed
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(&saved[..]);
    for e in ar.entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert_eq!(names.iter().filter(|n| n.ends_with("layer.tar")).count(), 3, "{names:?}");
    assert_eq!(names.last().map(String::as_str), Some("manifest.json"));

    // a layer whose content does not match the config is refused, nothing stays
    let c = Dir::new("rt-c");
    let store3 = Store::open(c.path()).unwrap();
    let mut bad = docker_save_archive(&[(&["bad"], std::slice::from_ref(&l1))]);
    let pos = bad.windows(4).position(|w| w == [b'k', 0, 0, 0]).unwrap(); // the content of `keep`
    bad[pos] = b'K';
    let e = load(&store3, &bad[..]).unwrap_err();
    assert!(e.0.contains("load bad: layer img0layer0/layer.tar: its content hashes to"), "{}", e.0);
    assert_eq!(content(&store3), Vec::<String>::new());
}

/// An OCI layout with a multi-platform index and gzip layers.
#[test]
fn load_oci_layout() {
    let root = Dir::new("oci");
    let store = Store::open(root.path()).unwrap();
    let layer = RawTar::default().file("hello", b"oci").finish();
    let gz = gzip(&layer);
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": config::Platform::host().architecture, "os": "linux",
        "config": {"Entrypoint": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [digest::of_bytes(&layer)]}
    }))
    .unwrap();
    let desc = |mt: &str, b: &[u8]| Descriptor { media_type: mt.into(), digest: digest::of_bytes(b), size: b.len() as u64, annotations: None, platform: None };
    let m = Manifest {
        schema_version: 2,
        media_type: Some(config::OCI_MANIFEST.into()),
        config: desc(config::OCI_CONFIG, &cfg),
        layers: vec![desc(config::OCI_LAYER_GZIP, &gz)],
        annotations: None,
    };
    let mb = serde_json::to_vec(&m).unwrap();
    let mut for_host = desc(config::OCI_MANIFEST, &mb);
    for_host.platform = Some(config::Platform::host());
    let mut other = for_host.clone();
    other.platform = Some(config::Platform { architecture: "s390x".into(), os: "linux".into(), variant: None });
    other.digest = format!("sha256:{}", "0".repeat(64)); // not in the archive: never read
    let idx = serde_json::to_vec(&config::Index { schema_version: 2, media_type: Some(config::OCI_INDEX.into()), manifests: vec![other, for_host] }).unwrap();
    let mut top = desc(config::OCI_INDEX, &idx);
    top.annotations = Some([(config::ANNOTATION_REF_NAME.to_string(), "localhost:5000/hello:1.0".to_string())].into());
    let index = serde_json::to_vec(&config::Index { schema_version: 2, media_type: Some(config::OCI_INDEX.into()), manifests: vec![top] }).unwrap();

    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json".to_string(), index),
        (format!("blobs/sha256/{}", &digest::of_bytes(&idx)[7..]), idx.clone()),
        (format!("blobs/sha256/{}", &digest::of_bytes(&mb)[7..]), mb.clone()),
        (format!("blobs/sha256/{}", &digest::of_bytes(&cfg)[7..]), cfg.clone()),
        (format!("blobs/sha256/{}", &digest::of_bytes(&gz)[7..]), gz.clone()),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, &name, &data[..]).unwrap();
    }
    let archive = gzip(&b.into_inner().unwrap());
    let loaded = load(&store, &archive[..]).unwrap();
    assert_eq!(loaded[0].tags, vec!["localhost:5000/hello:1.0"]);
    let img = store.resolve("localhost:5000/hello:1.0").unwrap();
    assert_eq!(img.id, digest::of_bytes(&cfg));
    assert_eq!(img.config.entrypoint, Some(vec!["/hello".to_string()]));
    assert_eq!(std::fs::read(img.layers[0].join("hello")).unwrap(), b"oci");
    // the manifest is kept byte for byte, and reachable by digest
    assert_eq!(store.resolve(&format!("localhost:5000/hello@{}", digest::of_bytes(&mb))).unwrap().id, img.id);
    // and it saves as docker-save
    let mut saved = Vec::new();
    save(&store, &["localhost:5000/hello:1.0".into()], &mut saved).unwrap();
    let d2 = Dir::new("oci2");
    let s2 = Store::open(d2.path()).unwrap();
    assert_eq!(load(&s2, &saved[..]).unwrap()[0].id, img.id);
}

#[test]
fn tag_rmi_and_shared_layers() {
    let root = Dir::new("rmi");
    let store = Store::open(root.path()).unwrap();
    let base = RawTar::default().file("base", b"b").finish();
    let top = RawTar::default().file("top", b"t").finish();
    load(&store, &docker_save_archive(&[(&["one"], std::slice::from_ref(&base)), (&["two"], &[base.clone(), top.clone()])])[..]).unwrap();
    let one = store.resolve("one").unwrap();
    let two = store.resolve("two").unwrap();
    store.tag("one", "one:alias").unwrap();
    store.tag(&two.id[7..15], "localhost/two:x").unwrap();
    assert!(store.tag("missing", "x").unwrap_err().0.contains("No such image: missing:latest"));

    // by tag with another tag left: untag only
    assert_eq!(remove(&store, "one:alias", false).unwrap(), vec![Removed::Untagged("one:alias".into())]);
    // by id while tagged twice: must force
    let e = remove(&store, &two.id, false).unwrap_err();
    assert!(e.0.contains("must be forced") && e.0.contains("multiple repositories"), "{}", e.0);
    // a container using `one`: refused without -f, untagged only with it
    let c = root.path().join("containers/c0ffee");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(c.join("container.json"), serde_json::to_vec(&serde_json::json!({"image_id": one.id})).unwrap()).unwrap();
    let e = remove(&store, "one", false).unwrap_err();
    assert!(e.0.contains("container c0ffee is using its referenced image"), "{}", e.0);
    assert_eq!(remove(&store, "one", true).unwrap(), vec![Removed::Untagged("one:latest".into())]);
    assert!(store.resolve(&one.id).is_ok(), "an image a container uses stays");
    std::fs::remove_dir_all(root.path().join("containers")).unwrap();

    // removing `one` (now untagged, by id) keeps the base layer `two` uses
    let out = remove(&store, &one.id, false).unwrap();
    assert_eq!(out, vec![Removed::Deleted(one.id.clone())]);
    let two_again = store.resolve("two").unwrap();
    assert!(two_again.layers.iter().all(|l| l.join(".").is_dir()));
    assert!(two.layers[0].join("base").is_file());
    // removing `two` by -f id: both tags go, then both layers and all blobs
    let out = remove(&store, &two.id, true).unwrap();
    assert!(out.contains(&Removed::Untagged("localhost/two:x".into())) && out.contains(&Removed::Untagged("two:latest".into())));
    assert!(out.contains(&Removed::Deleted(two.id.clone())));
    assert_eq!(out.len(), 5, "{out:?}");
    assert_eq!(content(&store), Vec::<String>::new());
    assert!(remove(&store, "two", false).unwrap_err().0.contains("No such image: two:latest"));
}

/// Imports of the same tarball from several threads (separate lock file
/// descriptions, as separate processes have) end with one layer, one blob
/// per content and every tag pointing at a complete image.
#[test]
fn concurrent_imports_are_consistent() {
    let root = Dir::new("concurrent");
    let mut tar = RawTar::default();
    for i in 0..200 {
        tar = tar.file(&format!("f{i}"), format!("{i}").repeat(100).as_bytes());
    }
    let tar = tar.finish();
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let tar = &tar;
                let root = root.path();
                s.spawn(move || {
                    let store = Store::open(root).unwrap();
                    import(&store, &tar[..], Some(&format!("img{i}")), "-", &[], None).unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let store = Store::open(root.path()).unwrap();
    assert_eq!(std::fs::read_dir(store.layers_dir()).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(store.dir.join("tmp")).unwrap().count(), 0);
    for (i, id) in ids.iter().enumerate() {
        let img = store.resolve(&format!("img{i}")).unwrap();
        assert_eq!(&img.id, id);
        assert_eq!(std::fs::read_dir(&img.layers[0]).unwrap().count(), 200);
    }
    assert_eq!(store.index().unwrap().tags.len(), 4);
}

/// What a killed import leaves (a half-unpacked layer in tmp/, a placed but
/// unreferenced blob or layer) goes with the next write when no other runs.
#[test]
fn leftovers_of_a_killed_command_are_collected() {
    let root = Dir::new("leftovers");
    let store = Store::open(root.path()).unwrap();
    let id = import(&store, &rootfs_tar()[..], Some("keep"), "-", &[], None).unwrap();
    let before = content(&store);
    std::fs::create_dir_all(store.dir.join("tmp/layer-1-2-3/diff/usr")).unwrap();
    let orphan = store.put_blob(b"orphan").unwrap();
    std::fs::create_dir_all(store.layers_dir().join(&digest::of_bytes(b"l")[7..]).join("diff")).unwrap();
    let _held = store.hold().unwrap();
    assert_eq!(content(&store), before);
    assert!(!store.has_blob(&orphan));
    // while a writer holds the store, nothing is collected
    std::fs::create_dir_all(store.dir.join("tmp/other-writer")).unwrap();
    let _second = store.hold().unwrap();
    assert!(store.dir.join("tmp/other-writer").is_dir());
    assert_eq!(store.resolve("keep").unwrap().id, id);
}

/// The layer of the one-layer image `id`.
fn only_layer(store: &Store, id: &str) -> super::layers::LayerRecord {
    let d = store.details(id).unwrap();
    assert_eq!(d.layers.len(), 1);
    d.layers[0].clone()
}

#[test]
fn tar_split_rebuilds_the_exact_tar_and_no_blob_is_kept() {
    let root = Dir::new("split");
    let store = Store::open(root.path()).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut tar = RawTar::default()
        .dir("./")
        .dir("a/")
        .file("a/f", b"first")
        .file("./a/f", b"second, longer")
        .dir("d/")
        .file("d/x", b"in a dir replaced by a file")
        .file("d", b"now a file")
        .file("w", b"hidden by a whiteout")
        .file(".wh.w", b"")
        .hardlink("h", "a/f")
        .file("empty", b"")
        .file("big", &big)
        .pax_file("p", b"pax", &[("SCHILY.xattr.user.k", b"v"), ("path", "a-long-name-".repeat(12).as_bytes())])
        .symlink("s", "a/f")
        .finish();
    tar.resize(tar.len() + 5000, 0); // a tar writer's record padding after the end blocks
    for (name, input) in [("plain", tar.clone()), ("gz", gzip(&tar))] {
        let id = import(&store, &input[..], Some(name), "-", &[], None).unwrap();
        let rec = only_layer(&store, &id);
        assert!(rec.split, "{rec:?}");
        assert_eq!(rec.shadows.len(), 3, "a/f, d and w were replaced: {:?}", rec.shadows);
        assert_eq!(rec.diff_id, digest::of_bytes(&tar));
        let rebuilt = super::split::read_all(super::layers::tar_stream(&store, &rec).unwrap()).unwrap();
        assert!(rebuilt == tar, "{name}: rebuilt tar differs ({} vs {} bytes)", rebuilt.len(), tar.len());
        // the layer is kept as files only
        let d = store.details(&id).unwrap();
        assert!(!store.has_blob(&d.manifest.layers[0].digest), "{name}: the layer blob was kept");
        let diff = store.layer_dir(&rec.chain_id).unwrap().join("diff");
        assert_eq!(std::fs::read(diff.join("a/f")).unwrap(), b"second, longer");
        assert_eq!(std::fs::read(diff.join("d")).unwrap(), b"now a file");
    }
    // a changed file is caught when the tar is rebuilt
    let rec = only_layer(&store, "plain");
    let diff = store.layer_dir(&rec.chain_id).unwrap().join("diff");
    std::fs::write(diff.join("big"), &big[1..]).unwrap();
    let e = super::split::read_all(super::layers::tar_stream(&store, &rec).unwrap()).unwrap_err();
    assert!(e.0.contains("big") && e.0.contains("shorter"), "{e}");
    let mut changed = big.clone();
    changed[1000] ^= 1;
    std::fs::write(diff.join("big"), &changed).unwrap();
    let e = super::split::read_all(super::layers::tar_stream(&store, &rec).unwrap()).unwrap_err();
    assert!(e.0.contains("store is corrupt") && e.0.contains(&rec.diff_id), "{e}");
}
