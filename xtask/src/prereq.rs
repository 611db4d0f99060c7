//! Host prerequisites and process helpers: a missing program is an error
//! that names the Debian package to install, never a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent dir").to_path_buf()
}

/// (path, Debian package) pairs the suite needs.
pub const SUITE: &[(&str, &str)] = &[
    ("/bin/busybox", "busybox-static"),
    ("/usr/bin/qemu-aarch64-static", "qemu-user-static"),
    ("/usr/bin/file", "file"),
    ("/usr/bin/unshare", "util-linux"),
    ("/usr/bin/tini", "tini"),
    ("/usr/sbin/dockerd", "docker.io"),
    ("/usr/bin/docker", "docker.io"),
    ("/usr/bin/containerd", "containerd"),
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/sbin/iptables", "iptables"),
    ("/usr/bin/podman", "podman"),
    ("/usr/bin/ctr", "containerd"),
    ("/usr/share/containers/seccomp.json", "golang-github-containers-common"),
    ("/bin/tar", "tar"),
    ("/usr/bin/newuidmap", "uidmap"),
    ("/usr/sbin/useradd", "passwd"),
    ("/usr/bin/docker-registry", "docker-registry"),
    ("/usr/bin/zstd", "zstd"),
    ("/usr/bin/openssl", "openssl"),
    ("/usr/bin/clang", "clang"),
    ("/usr/bin/llvm-ar", "llvm"),
];

/// Fails listing every missing program with its package.
pub fn check(needed: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<String> = needed
        .iter()
        .filter(|(p, _)| !Path::new(p).exists())
        .map(|(p, pkg)| format!("  {p}: install the Debian package `{pkg}`"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing prerequisites (apt-get install them):\n{}", missing.join("\n")))
    }
}

pub fn require(path: &str, package: &str) -> Result<PathBuf, String> {
    check(&[(path, package)]).map(|_| PathBuf::from(path))
}

/// A cargo/rustc-free command: strips what `cargo run` and rustup put in our
/// environment so a nested cargo picks its own toolchain.
pub fn clean(mut cmd: Command) -> Command {
    for v in ["RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC", "RUSTC_WRAPPER", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET"] {
        cmd.env_remove(v);
    }
    cmd
}

/// Runs `cmd` inheriting stdio; Err names the command and its status.
pub fn status(cmd: &mut Command) -> Result<(), String> {
    let st = cmd.status().map_err(|e| format!("run {cmd:?}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {st}"))
    }
}

/// Output of a command bounded by `timeout` (killed after it).
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Ran, String> {
    let dir = std::env::temp_dir().join(format!("skiff-xtask-{}-{:?}", std::process::id(), Instant::now()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let (o, e) = (dir.join("out"), dir.join("err"));
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| format!("create {}: {e}", p.display()));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file(&o)?)
        .stderr(file(&e)?)
        .spawn()
        .map_err(|err| format!("run {cmd:?}: {err}"))?;
    let deadline = Instant::now() + timeout;
    let (code, timed_out) = loop {
        if let Some(st) = child.try_wait().map_err(|e| format!("wait {cmd:?}: {e}"))? {
            break (st.code(), false);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let ran = Ran { code, stdout: read(&o), stderr: read(&e), timed_out };
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ran)
}
