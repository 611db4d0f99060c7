//! engine's image store through the dist binary: import, hostile archives,
//! whiteouts through a real overlay mount, save/load round trips (and with
//! a private dockerd both ways), rmi with shared layers, concurrent imports.
//! Each test owns its `--root`; nothing touches the network.

use skiff_tests::docker::{Dockerd, DockerdOpts};
use skiff_tests::{bin, busybox_rootfs, run, text, wait_child, TempDir};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// A private engine state root.
struct Engine {
    dir: TempDir,
}

impl Engine {
    fn new(tag: &str) -> Engine {
        Engine { dir: TempDir::new(&format!("img-{tag}")) }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("engine"));
        c.arg("--root").arg(self.root()).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args), T)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "engine {args:?} failed ({:?}): {}", out.status, text(&out.stderr));
        text(&out.stdout)
    }

    /// Runs `args` with `file` as stdin.
    fn ok_stdin(&self, args: &[&str], file: &Path) -> String {
        let mut c = self.cmd(args);
        c.stdin(std::fs::File::open(file).unwrap()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = c.spawn().expect("spawn engine");
        let out = child.wait_with_output().expect("wait engine");
        assert!(out.status.success(), "engine {args:?} < {} failed: {}", file.display(), text(&out.stderr));
        text(&out.stdout)
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["image", "inspect", name])).expect("image inspect JSON");
        assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
        v[0].clone()
    }

    /// `images --format json`, one object a line.
    fn images(&self) -> Vec<serde_json::Value> {
        self.ok(&["images", "--format", "json"]).lines().map(|l| serde_json::from_str(l).expect("images JSON line")).collect()
    }

    /// The unpacked layer dirs of `name`, top first (overlayfs lowerdir order).
    fn lower_dirs(&self, name: &str) -> Vec<PathBuf> {
        let i = self.inspect(name);
        i["GraphDriver"]["Data"]["LowerDir"].as_str().expect("LowerDir").split(':').map(PathBuf::from).collect()
    }

    /// Paths holding content in the store (must be none after a failure
    /// or once every image is gone).
    fn content(&self) -> Vec<String> {
        let s = self.root().join("images");
        let mut out = Vec::new();
        for d in ["blobs/sha256", "layers", "tmp"] {
            for e in std::fs::read_dir(s.join(d)).into_iter().flatten().flatten() {
                out.push(e.path().display().to_string());
            }
        }
        out
    }
}

/// `tar -C dir -cf out .` with numeric root ownership, as docker's helper does.
fn tar_dir(dir: &Path, out: &Path) {
    let o = run(
        Command::new("tar")
            .args(["--create", "--numeric-owner", "--owner=0", "--group=0", "--file"])
            .arg(out)
            .arg("--directory")
            .arg(dir)
            .arg("."),
        T,
    );
    assert!(o.status.success(), "tar {}: {}", dir.display(), text(&o.stderr));
}

fn sha256(file: &Path) -> String {
    let o = run(Command::new("sha256sum").arg(file), T);
    assert!(o.status.success(), "sha256sum: {}", text(&o.stderr));
    format!("sha256:{}", text(&o.stdout).split_whitespace().next().unwrap())
}

/// The sha256 of the uncompressed content of a (maybe gzip) layer file.
fn diff_id(file: &Path) -> String {
    let script = "case \"$1\" in *.gz) gzip -dc \"$1\";; *) cat \"$1\";; esac | sha256sum";
    let o = run(Command::new("sh").arg("-c").arg(script).arg("sh").arg(file), T);
    assert!(o.status.success(), "sha256sum: {}", text(&o.stderr));
    format!("sha256:{}", text(&o.stdout).split_whitespace().next().unwrap())
}

fn gzip_file(file: &Path) -> PathBuf {
    let gz = file.with_extension("tar.gz");
    let o = run(Command::new("sh").arg("-c").arg("gzip -c \"$1\" > \"$2\"").arg("sh").arg(file).arg(&gz), T);
    assert!(o.status.success(), "gzip: {}", text(&o.stderr));
    gz
}

/// A tar written header by header, so a test can put in it what tar
/// writers refuse to (`..`, absolute paths, links anywhere).
#[derive(Default)]
struct RawTar(Vec<u8>);

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0w$o}", v, w = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
}

impl RawTar {
    /// kind: b'0' file, b'5' dir, b'2' symlink, b'1' hard link, b'3' char device.
    fn entry(mut self, name: &str, kind: u8, link: &str, data: &[u8], mode: u32, dev: (u64, u64)) -> Self {
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
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.0.extend_from_slice(&h);
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len() + (512 - data.len() % 512) % 512, 0);
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name, b'0', "", data, 0o644, (0, 0))
    }

    fn dir(self, name: &str) -> Self {
        self.entry(name, b'5', "", b"", 0o755, (0, 0))
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, b'2', target, b"", 0o777, (0, 0))
    }

    fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(name, b'1', target, b"", 0o644, (0, 0))
    }

    fn write(mut self, path: &Path) -> PathBuf {
        self.0.resize(self.0.len() + 1024, 0);
        std::fs::write(path, &self.0).unwrap();
        path.to_path_buf()
    }
}

/// Writes a docker-save archive to `out`: each image is (RepoTags, layer
/// tarball files); its config has Cmd ["/bin/sh"].
fn docker_save_archive(work: &Path, images: &[(&[&str], &[PathBuf])], out: &Path) {
    let stage = work.join("stage");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).unwrap();
    let mut manifest = Vec::new();
    for (n, (tags, layers)) in images.iter().enumerate() {
        let mut diff_ids = Vec::new();
        let mut names = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let name = format!("i{n}l{i}/layer.tar");
            std::fs::create_dir_all(stage.join(format!("i{n}l{i}"))).unwrap();
            std::fs::copy(l, stage.join(&name)).unwrap();
            diff_ids.push(diff_id(l));
            names.push(name);
        }
        let cfg = serde_json::json!({
            "architecture": host_arch(), "os": "linux", "created": "2023-11-14T22:13:20Z",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
        });
        let cfg_path = stage.join(format!("cfg{n}.json"));
        std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
        let cfg_name = format!("{}.json", &sha256(&cfg_path)[7..]);
        std::fs::rename(&cfg_path, stage.join(&cfg_name)).unwrap();
        manifest.push(serde_json::json!({"Config": cfg_name, "RepoTags": tags, "Layers": names}));
    }
    std::fs::write(stage.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    tar_dir(&stage, out);
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The busybox fixture as a rootfs tarball in `e`'s dir.
fn busybox_tar(e: &Engine) -> PathBuf {
    let tar = e.path("busybox.tar");
    tar_dir(&busybox_rootfs(), &tar);
    tar
}

#[test]
fn import_busybox_then_list_and_inspect() {
    let e = Engine::new("import");
    let tar = busybox_tar(&e);
    let id = e.ok(&["import", tar.to_str().unwrap(), "busybox"]).trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "import prints the id: {id}");

    let imgs = e.images();
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    assert_eq!(imgs[0]["Repository"], "busybox");
    assert_eq!(imgs[0]["Tag"], "latest");
    assert_eq!(imgs[0]["ID"], id[7..19]);
    let table = e.ok(&["images"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED") && header.ends_with("SIZE"), "{table}");
    let row = lines.next().unwrap();
    assert!(row.starts_with("busybox      latest    ") && row.contains(&id[7..19]) && row.contains("ago"), "{table}");
    assert_eq!(e.ok(&["images", "-q"]).trim(), &id[7..19]);

    let i = e.inspect("busybox");
    assert_eq!(i["Id"], id);
    assert_eq!(i["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(i["Os"], "linux");
    assert_eq!(i["Architecture"], host_arch());
    assert_eq!(i["RootFS"]["Type"], "layers");
    assert_eq!(i["RootFS"]["Layers"], serde_json::json!([sha256(&tar)]), "the diff id is the tarball's digest");
    assert!(i["Size"].as_u64().unwrap() > 100_000);
    assert!(i["Config"]["Cmd"].is_null(), "import sets no command: {}", i["Config"]);
    let layers = e.lower_dirs("busybox");
    assert_eq!(layers.len(), 1);
    let bb = layers[0].join("bin/busybox");
    assert_eq!(std::fs::read(&bb).unwrap(), std::fs::read(busybox_rootfs().join("bin/busybox")).unwrap());
    assert_eq!(std::fs::metadata(&bb).unwrap().mode() & 0o7777, std::fs::metadata(busybox_rootfs().join("bin/busybox")).unwrap().mode() & 0o7777);

    // by id prefix, through stdin (gzip), with a tag
    assert_eq!(e.inspect(&id[7..15])["Id"], id);
    let gz = gzip_file(&tar);
    let id2 = e.ok_stdin(&["import", "-", "bb:gz"], &gz).trim().to_string();
    assert_eq!(e.inspect("bb:gz")["RootFS"]["Layers"], i["RootFS"]["Layers"]);
    assert_eq!(e.lower_dirs("bb:gz"), layers, "the same layer is unpacked once");
    assert_ne!(id2, id);
    // errors: missing image and file, bad name
    let out = e.run(&["image", "inspect", "nothere"]);
    assert!(!out.status.success() && text(&out.stderr).contains("No such image: nothere:latest"), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "[]");
    let out = e.run(&["import", "/nonexistent.tar", "x"]);
    assert!(!out.status.success() && text(&out.stderr).contains("/nonexistent.tar"), "{}", text(&out.stderr));
    let out = e.run(&["import", tar.to_str().unwrap(), "Bad:Name"]);
    assert!(!out.status.success() && text(&out.stderr).contains("invalid reference format"), "{}", text(&out.stderr));
}

/// Each escape case is refused with the entry named; nothing is written
/// outside and nothing stays in the store.
#[test]
fn hostile_archives_are_refused_and_leave_nothing() {
    let e = Engine::new("hostile");
    let outside = e.path("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"precious").unwrap();
    let o = outside.display().to_string();
    let cases: Vec<(&str, RawTar, &str)> = vec![
        ("dotdot", RawTar::default().file("../../../../outside/pwned", b"x"), "entry ../../../../outside/pwned: path has a `..` component"),
        ("absolute", RawTar::default().file(&format!("{o}/pwned"), b"x"), "absolute path"),
        ("through symlink", RawTar::default().symlink("evil", &o).file("evil/pwned", b"x"), "entry evil/pwned: path goes through the symbolic link evil"),
        (
            "through relative symlink",
            RawTar::default().dir("a/").symlink("a/up", "../../../../../..").file("a/up/tmp/pwned", b"x"),
            "entry a/up/tmp/pwned: path goes through the symbolic link a/up",
        ),
        ("hard link outside", RawTar::default().hardlink("h", &format!("{o}/victim")), "entry h: hard link target"),
        ("hard link dotdot", RawTar::default().hardlink("h", "../../outside/victim"), "entry h: hard link target ../../outside/victim"),
        ("hard link through symlink", RawTar::default().symlink("s", &o).hardlink("h", "s/victim"), "path goes through the symbolic link s"),
    ];
    for (what, tar, want) in cases {
        // after a good file, so the failure comes mid-archive
        let tar = RawTar::default().file("good", b"g").entry_all(tar).write(&e.path("evil.tar"));
        let out = e.run(&["import", tar.to_str().unwrap(), "evil"]);
        assert!(!out.status.success(), "{what}: accepted");
        assert!(text(&out.stderr).contains(want), "{what}: error `{}` lacks `{want}`", text(&out.stderr).trim());
        assert_eq!(e.content(), Vec::<String>::new(), "{what}: left in the store");
        assert!(e.images().is_empty(), "{what}: an image was registered");
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"precious", "{what}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1, "{what}: wrote outside the layer");
    }

    // unprivileged: device nodes and whiteouts are refused, naming the entry
    let nobody = Engine::new("hostile-nobody");
    std::fs::create_dir(nobody.root()).unwrap();
    chown(&nobody.root(), 65534);
    chown(nobody.dir.path(), 65534);
    for (what, tar, want) in [
        ("device", RawTar::default().entry("dev/evil", b'3', "", b"", 0o666, (1, 1)), "entry dev/evil: device nodes can only be created by root"),
        ("whiteout", RawTar::default().file(".wh.x", b""), "entry .wh.x: whiteouts"),
    ] {
        let tar = tar.write(&nobody.path("dev.tar"));
        chown(&tar, 65534);
        let mut c = nobody.cmd(&["import", tar.to_str().unwrap(), "dev"]);
        c.uid(65534).gid(65534);
        let out = run(&mut c, T);
        assert!(!out.status.success(), "{what}: accepted unprivileged");
        assert!(text(&out.stderr).contains(want), "{what}: {}", text(&out.stderr));
        assert_eq!(nobody.content(), Vec::<String>::new(), "{what}: left in the store");
    }
}

impl RawTar {
    fn entry_all(mut self, other: RawTar) -> RawTar {
        self.0.extend_from_slice(&other.0);
        self
    }
}

fn chown(p: &Path, id: u32) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: chown with a valid C string.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), id, id) }, 0, "chown {}", p.display());
}

/// An overlay mount of lower dirs only (read-only), unmounted when dropped.
struct Overlay(PathBuf);

impl Overlay {
    fn mount(lower: &[PathBuf], at: &Path) -> Overlay {
        std::fs::create_dir_all(at).unwrap();
        let opts = format!("lowerdir={}", lower.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"));
        let (src, target, fs, data) = (CString::new("overlay").unwrap(), CString::new(at.as_os_str().as_bytes()).unwrap(), CString::new("overlay").unwrap(), CString::new(opts.clone()).unwrap());
        // SAFETY: mount(2) with valid C strings.
        let r = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fs.as_ptr(), libc::MS_RDONLY, data.as_ptr().cast()) };
        assert_eq!(r, 0, "mount overlay {opts} on {}: {}", at.display(), std::io::Error::last_os_error());
        Overlay(at.to_path_buf())
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let c = CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: umount2 with a valid C string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn whiteouts_and_opaque_dirs_through_overlay() {
    let e = Engine::new("overlay");
    let l1 = RawTar::default()
        .dir("d/")
        .file("d/a", b"a")
        .file("d/b", b"b")
        .file("gone", b"x")
        .dir("kept/")
        .file("kept/old", b"o")
        .write(&e.path("l1.tar"));
    let l2 = RawTar::default()
        .file(".wh.gone", b"")
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/c", b"c")
        .file("kept/new", b"n")
        .write(&e.path("l2.tar"));
    let l2 = gzip_file(&l2);
    let archive = e.path("save.tar");
    docker_save_archive(e.dir.path(), &[(&["layered:1"], &[l1, l2])], &archive);
    assert_eq!(e.ok(&["load", "-i", archive.to_str().unwrap()]).trim(), "Loaded image: layered:1");

    let lower = e.lower_dirs("layered:1");
    assert_eq!(lower.len(), 2);
    // as overlayfs expects them on disk
    let wh = std::fs::symlink_metadata(lower[0].join("gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "gone is not a whiteout");
    assert!(!lower[0].join(".wh.gone").exists() && !lower[0].join("d/.wh..wh..opq").exists());
    // and as a container sees them
    let mnt = e.path("mnt");
    {
        let _m = Overlay::mount(&lower, &mnt);
        assert!(!mnt.join("gone").exists(), "the whiteout does not hide `gone`");
        let mut d: Vec<String> = std::fs::read_dir(mnt.join("d")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        d.sort();
        assert_eq!(d, vec!["c"], "the opaque dir shows lower entries");
        let mut k: Vec<String> = std::fs::read_dir(mnt.join("kept")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        k.sort();
        assert_eq!(k, vec!["new", "old"], "a plain dir merges");
        assert_eq!(std::fs::read(mnt.join("d/c")).unwrap(), b"c");
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(&mnt.display().to_string()), "overlay left mounted");
}

#[test]
fn save_then_load_round_trip() {
    let a = Engine::new("save-a");
    let tar = busybox_tar(&a);
    let id = a.ok(&["import", tar.to_str().unwrap(), "busybox"]).trim().to_string();
    a.ok(&["tag", "busybox", "localhost:5000/bb:v1"]);
    let out = a.path("out.tar");
    a.ok(&["save", "-o", out.to_str().unwrap(), "busybox", "localhost:5000/bb:v1"]);
    assert!(std::fs::read_dir(a.dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp")));

    let b = Engine::new("save-b");
    let loaded = b.ok(&["load", "-i", out.to_str().unwrap()]);
    assert_eq!(loaded, "Loaded image: busybox:latest\nLoaded image: localhost:5000/bb:v1\n");
    assert_eq!(b.inspect("busybox")["Id"], id);
    assert_eq!(b.inspect("localhost:5000/bb:v1")["Id"], id);
    assert_eq!(b.inspect("busybox")["RootFS"], a.inspect("busybox")["RootFS"]);
    let bb = b.lower_dirs("busybox")[0].join("bin/busybox");
    assert_eq!(std::fs::read(bb).unwrap(), std::fs::read(busybox_rootfs().join("bin/busybox")).unwrap());

    // from stdin, into a third store; then saving to stdout
    let c = Engine::new("save-c");
    assert!(c.ok_stdin(&["load"], &out).contains("Loaded image: busybox:latest"));
    let mut cmd = c.cmd(&["save", "busybox"]);
    let piped = c.path("piped.tar");
    cmd.stdout(std::fs::File::create(&piped).unwrap()).stderr(Stdio::piped()).stdin(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    assert!(wait_child(&mut child, T).success());
    let d = Engine::new("save-d");
    assert_eq!(d.ok(&["load", "-i", piped.to_str().unwrap()]).trim(), "Loaded image: busybox:latest");
    assert_eq!(d.inspect("busybox")["Id"], id);
    // saving what is not there fails and leaves no file
    let bad = a.path("bad.tar");
    assert!(!a.run(&["save", "-o", bad.to_str().unwrap(), "nothere"]).status.success());
    assert!(!bad.exists());
}

/// Our save loads into real docker (and runs there); docker's save loads into ours.
#[test]
fn docker_load_of_our_save_and_our_load_of_docker_save() {
    let e = Engine::new("docker");
    let tar = busybox_tar(&e);
    let id = e.ok(&["import", tar.to_str().unwrap(), "skiff-bb:v1"]).trim().to_string();
    let ours = e.path("ours.tar");
    e.ok(&["save", "-o", ours.to_str().unwrap(), "skiff-bb:v1"]);

    let d = Dockerd::start(DockerdOpts::default());
    let out = d.docker_ok(&["load", "-i", ours.to_str().unwrap()]);
    assert!(out.contains("Loaded image: skiff-bb:v1"), "{out}");
    assert_eq!(d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", "skiff-bb:v1"]).trim(), id);
    let layers = d.docker_ok(&["image", "inspect", "--format", "{{json .RootFS.Layers}}", "skiff-bb:v1"]);
    let layers: serde_json::Value = serde_json::from_str(&layers).unwrap();
    assert_eq!(layers, e.inspect("skiff-bb:v1")["RootFS"]["Layers"]);
    let said = d.docker_ok(&["run", "--rm", "skiff-bb:v1", "/bin/busybox", "echo", "from skiff's save"]);
    assert_eq!(said.trim(), "from skiff's save");

    // docker import + docker save, loaded here
    let name = d.unique_name("dk-bb");
    d.import_busybox(&name);
    let theirs = e.path("theirs.tar");
    d.docker_ok(&["save", "-o", theirs.to_str().unwrap(), &name]);
    let docker_id = d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &name]).trim().to_string();
    d.stop();
    let out = e.ok(&["load", "-i", theirs.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("Loaded image: {name}:latest"));
    assert_eq!(e.inspect(&name)["Id"], docker_id);
    let bb = e.lower_dirs(&name)[0].join("bin/busybox");
    assert_eq!(std::fs::read(bb).unwrap(), std::fs::read(busybox_rootfs().join("bin/busybox")).unwrap());
}

#[test]
fn rmi_keeps_shared_layers() {
    let e = Engine::new("rmi");
    let base = RawTar::default().file("base", b"b").write(&e.path("base.tar"));
    let top = RawTar::default().file("top", b"t").write(&e.path("top.tar"));
    let archive = e.path("two.tar");
    docker_save_archive(e.dir.path(), &[(&["one"], std::slice::from_ref(&base)), (&["two"], &[base.clone(), top])], &archive);
    e.ok(&["load", "-i", archive.to_str().unwrap()]);
    let one = e.inspect("one")["Id"].as_str().unwrap().to_string();
    let two_layers = e.lower_dirs("two");
    assert_eq!(e.lower_dirs("one").last(), two_layers.last(), "the base layer is shared");
    e.ok(&["tag", "one", "one:again"]);

    assert_eq!(e.ok(&["rmi", "one"]), "Untagged: one:latest\n");
    let out = e.ok(&["rmi", "one:again"]);
    assert!(out.starts_with(&format!("Untagged: one:again\nDeleted: {one}\n")), "{out}");
    assert!(two_layers.iter().all(|l| l.is_dir()), "a layer `two` uses went");
    assert_eq!(std::fs::read(two_layers[1].join("base")).unwrap(), b"b");
    assert_eq!(e.images().len(), 1);
    let out = e.run(&["rmi", "one"]);
    assert!(!out.status.success() && text(&out.stderr).contains("No such image: one:latest"), "{}", text(&out.stderr));

    // a container record naming the image keeps it
    let two = e.inspect("two")["Id"].as_str().unwrap().to_string();
    let c = e.root().join("containers/feedface");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(c.join("container.json"), format!("{{\"image_id\": \"{two}\"}}")).unwrap();
    let out = e.run(&["rmi", "two"]);
    assert!(!out.status.success() && text(&out.stderr).contains("container feedface is using its referenced image"), "{}", text(&out.stderr));
    std::fs::remove_dir_all(e.root().join("containers")).unwrap();
    let out = e.ok(&["rmi", "two"]);
    assert_eq!(out.lines().count(), 4, "untag, image, two layers: {out}");
    assert_eq!(e.content(), Vec::<String>::new());
    assert!(e.images().is_empty());
}

/// Four engines importing the same tarball at once: all succeed, one layer,
/// every tag resolves to a complete image, no temp files left.
#[test]
fn concurrent_imports_end_consistent() {
    let e = Engine::new("concurrent");
    let tar = busybox_tar(&e);
    let mut children: Vec<_> = (0..4)
        .map(|i| {
            let mut c = e.cmd(&["import", tar.to_str().unwrap(), &format!("bb{i}")]);
            c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().expect("spawn engine import")
        })
        .collect();
    for c in &mut children {
        assert!(wait_child(c, T).success(), "a concurrent import failed");
    }
    let imgs = e.images();
    assert_eq!(imgs.len(), 4, "{imgs:?}");
    let layers = std::fs::read_dir(e.root().join("images/layers")).unwrap().count();
    assert_eq!(layers, 1);
    assert_eq!(std::fs::read_dir(e.root().join("images/tmp")).unwrap().count(), 0);
    for i in 0..4 {
        let l = e.lower_dirs(&format!("bb{i}"));
        assert!(l[0].join("bin/busybox").is_file());
    }
    // and removing them all, concurrently, leaves nothing
    let mut children: Vec<_> = (0..4)
        .map(|i| {
            let mut c = e.cmd(&["rmi", &format!("bb{i}")]);
            c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().expect("spawn engine rmi")
        })
        .collect();
    for c in &mut children {
        assert!(wait_child(c, T).success(), "a concurrent rmi failed");
    }
    assert_eq!(e.content(), Vec::<String>::new());
}
