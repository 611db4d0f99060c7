//! zstd-compressed layers (`application/vnd.oci.image.layer.v1.tar+zstd`)
//! through the dist engine: `import` of a .tar.zst made by the zstd CLI (two
//! concatenated frames), `load` of a docker-save archive whose layer is
//! zstd, and `pull` of an image whose OCI manifest (uploaded here straight
//! to a private docker-registry on 127.0.0.1) names a zstd layer; each is
//! run. Corrupt zstd is refused naming what it came from, leaving nothing
//! in the store; bzip2 layers are refused naming the compression.

use skiff_tests::engine::Engine;
use skiff_tests::registry::{busybox_variant, sha256, host_arch, http, Registry, OCI_MANIFEST};
use skiff_tests::{require, run, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";


fn sh(script: &str) {
    let o = run(Command::new("sh").arg("-c").arg(script), T);
    assert!(o.status.success(), "{script}: {}", text(&o.stderr));
}

/// `tar` compressed by the zstd CLI into `frames` concatenated frames (as
/// `zstd` writes them when fed in pieces); checked with `zstd -d`.
fn zstd(tar: &Path, frames: usize) -> PathBuf {
    let z = require("/usr/bin/zstd", "zstd");
    let out = tar.with_extension("tar.zst");
    let size = std::fs::metadata(tar).unwrap().len() as usize;
    let piece = size.div_ceil(frames);
    let _ = std::fs::remove_file(&out);
    for i in 0..frames {
        sh(&format!(
            "tail -c +{} '{}' | head -c {piece} | '{}' -q -c >> '{}'",
            i * piece + 1,
            tar.display(),
            z.display(),
            out.display()
        ));
    }
    sh(&format!("'{}' -q -d -c '{}' | cmp - '{}'", z.display(), out.display(), tar.display()));
    let data = std::fs::read(&out).unwrap();
    let magics = data.windows(4).filter(|w| *w == [0x28, 0xb5, 0x2f, 0xfd]).count();
    assert!(magics >= frames, "{} should hold {frames} frames", out.display());
    out
}

/// A copy of the .zst `file` with its last byte flipped: the content
/// checksum of its last frame (which the zstd CLI always writes).
fn corrupted(file: &Path) -> PathBuf {
    let mut data = std::fs::read(file).unwrap();
    *data.last_mut().unwrap() ^= 0x55;
    let out = file.with_extension("bad.zst");
    std::fs::write(&out, data).unwrap();
    out
}

/// A docker-save archive of one image `tag` whose one layer is the file
/// `layer` (kept as it is: here zstd) with diff id `diff_id`.
fn save_archive(dir: &Path, tag: &str, layer: &Path, diff_id: &str) -> PathBuf {
    let work = dir.join("save");
    std::fs::create_dir_all(work.join("l0")).unwrap();
    std::fs::copy(layer, work.join("l0/layer.tar")).unwrap();
    let cfg = serde_json::json!({
        "architecture": host_arch(), "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": { "Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    });
    std::fs::write(work.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let manifest = serde_json::json!([{ "Config": "config.json", "RepoTags": [tag], "Layers": ["l0/layer.tar"] }]);
    std::fs::write(work.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    let out = dir.join("save.tar");
    sh(&format!("tar -C '{}' -cf '{}' .", work.display(), out.display()));
    out
}

fn inspect(e: &Engine, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["image", "inspect", name])).expect("image inspect JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    v[0].clone()
}

fn cat_marker(e: &Engine, image: &str) -> String {
    e.ok(&["run", "--rm", "--network", "none", image, "cat", "/marker"]).trim().to_string()
}

fn fails(out: &Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} succeeded: {}", text(&out.stdout));
    text(&out.stderr)
}

/// Temp files and pending pulls of a store (none after a command ends).
fn leftovers(e: &Engine) -> Vec<String> {
    let s = e.root().join("images");
    let mut out = Vec::new();
    for d in ["tmp", "pulls"] {
        for x in std::fs::read_dir(s.join(d)).into_iter().flatten().flatten() {
            out.push(x.path().display().to_string());
        }
    }
    out
}

#[test]
fn import_and_load_zstd_then_run() {
    let e = Engine::new("zstd-import");
    let tar = busybox_variant(e.dir.path(), "zstd-imported");
    let diff_id = sha256(&tar);
    let zst = zstd(&tar, 2);

    let id = e.ok(&["import", &zst.to_string_lossy(), "zimp:v1"]).trim().to_string();
    let i = inspect(&e, "zimp:v1");
    assert_eq!(i["Id"], id);
    assert_eq!(i["RootFS"]["Layers"], serde_json::json!([diff_id]), "the diff id is the uncompressed tar's digest");
    assert!(i["Size"].as_u64().unwrap() > 100_000, "{i}");
    assert_eq!(cat_marker(&e, "zimp:v1"), "zstd-imported");

    // corrupt: refused naming the file and zstd, no image, nothing left behind
    let bad = corrupted(&zst);
    let err = fails(&e.run(&["import", &bad.to_string_lossy(), "zbad:v1"]), "import of a corrupt .tar.zst");
    assert!(err.contains(&format!("import {}: ", bad.display())) && err.contains("zstd: content checksum mismatch"), "{err}");
    assert!(fails(&e.run(&["image", "inspect", "zbad:v1"]), "inspect").contains("No such image"));
    assert_eq!(leftovers(&e), Vec::<String>::new());

    // a docker-save archive whose layer is zstd, into a store without the layer
    let e2 = Engine::new("zstd-load");
    let archive = save_archive(e.dir.path(), "zload:v1", &zst, &diff_id);
    let out = e2.ok(&["load", "-i", &archive.to_string_lossy()]);
    assert!(out.contains("Loaded image: zload:v1"), "{out}");
    assert_eq!(inspect(&e2, "zload:v1")["RootFS"]["Layers"], serde_json::json!([diff_id]));
    assert_eq!(cat_marker(&e2, "zload:v1"), "zstd-imported");
    // one whose zstd layer is corrupt: refused naming the layer
    let bad_archive = save_archive(&e.dir.path().join("bad"), "zloadbad:v1", &bad, &diff_id);
    let err = fails(&e2.run(&["load", "-i", &bad_archive.to_string_lossy()]), "load of a corrupt zstd layer");
    assert!(err.contains("layer l0/layer.tar") && err.contains("zstd: content checksum mismatch"), "{err}");
    assert_eq!(leftovers(&e2), Vec::<String>::new());
}

#[test]
fn pull_zstd_layer_then_run() {
    let reg = Registry::start();
    let e = Engine::new("zstd-pull");
    let tar = busybox_variant(e.dir.path(), "zstd-pulled");
    let diff_id = sha256(&tar);
    let zst = std::fs::read(zstd(&tar, 1)).unwrap();
    let layer = reg.put_blob("skiff/zst", &zst);
    let cfg = reg.put_image("skiff/zst", "v1", (&layer, zst.len() as u64, OCI_LAYER_ZSTD), &diff_id);

    let name = reg.name("skiff/zst:v1");
    let out = e.ok(&["pull", &name]);
    assert!(out.contains("Pull complete") && out.trim_end().ends_with(&name), "{out}");
    let i = inspect(&e, &name);
    assert_eq!(i["Id"], cfg);
    assert_eq!(i["RootFS"]["Layers"], serde_json::json!([diff_id]));
    assert_eq!(cat_marker(&e, &name), "zstd-pulled");

    // the store recorded the layer as zstd: a push sends it as it came, typed so
    let again = reg.name("skiff/zst-again:v1");
    e.ok(&["tag", &name, &again]);
    e.ok(&["push", &again]);
    let (status, _, body) = http(reg.port, "GET", "/v2/skiff/zst-again/manifests/v1", &[("Accept", OCI_MANIFEST)], b"").unwrap();
    assert_eq!(status, 200, "{}", text(&body));
    let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(m["layers"][0]["mediaType"], OCI_LAYER_ZSTD, "{m}");
    assert_eq!(m["layers"][0]["digest"], layer, "{m}");

    // a corrupt zstd layer (its digest matches: the registry has it so) is
    // refused naming the layer, with no temp file left behind
    let bad = std::fs::read(corrupted(&e.dir.path().join("zstd-pulled.tar.zst"))).unwrap();
    let bad_layer = reg.put_blob("skiff/zst", &bad);
    reg.put_image("skiff/zst", "bad", (&bad_layer, bad.len() as u64, OCI_LAYER_ZSTD), &diff_id);
    let e2 = Engine::new("zstd-pull-bad");
    let err = fails(&e2.run(&["pull", &reg.name("skiff/zst:bad")]), "pull of a corrupt zstd layer");
    assert!(err.contains(&format!("layer {bad_layer}")) && err.contains("zstd: content checksum mismatch"), "{err}");
    assert!(fails(&e2.run(&["image", "inspect", &reg.name("skiff/zst:bad")]), "inspect").contains("No such image"));
    assert!(leftovers(&e2).iter().all(|p| !p.contains("/images/tmp/")), "{:?}", leftovers(&e2));

    // bzip2 layers are refused naming the compression
    reg.put_image("skiff/zst", "bz", (&layer, zst.len() as u64, "application/vnd.oci.image.layer.v1.tar+bzip2"), &diff_id);
    let err = fails(&e2.run(&["pull", &reg.name("skiff/zst:bz")]), "pull of a bzip2 layer");
    assert!(err.contains("bzip2-compressed layers") && err.contains(&layer), "{err}");
}
