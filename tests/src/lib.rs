//! Shared pieces of skiff's integration tests: where the dist binaries and
//! fixtures are, prerequisites that fail with the Debian package to install,
//! private temp dirs, free loopback ports, and deadline-bounded waiting.
//!
//! The tests drive the static binaries users copy (`dist/<target>/`), built
//! by `cargo xtask dist`; `cargo xtask test` builds them and the fixtures first.

pub mod bundle;
pub mod containerd;
pub mod docker;
pub mod engine;
pub mod leftovers;
pub mod pty;
pub mod registry;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The workspace root (the parent of this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests crate has a parent").to_path_buf()
}

/// The directory of the dist binaries under test: `$SKIFF_DIST`, or
/// `dist/x86_64-unknown-linux-musl` in the workspace.
pub fn dist_dir() -> PathBuf {
    std::env::var_os("SKIFF_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("dist/x86_64-unknown-linux-musl"))
}

/// Path of the dist binary `name`; fails when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = dist_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `cargo xtask dist` (or `cargo xtask test`, which builds it)",
        p.display()
    );
    p
}

/// A host program the tests need; fails naming the Debian package to install.
pub fn require(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(p.exists(), "{path} is missing: install the Debian package `{package}` (apt-get install {package})");
    p
}

/// The static busybox from Debian's busybox-static.
pub fn busybox() -> PathBuf {
    require("/bin/busybox", "busybox-static")
}

/// The busybox root filesystem fixture made by `cargo xtask test`
/// (`$SKIFF_FIXTURES/busybox-rootfs`).
pub fn busybox_rootfs() -> PathBuf {
    let root = std::env::var_os("SKIFF_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/fixtures"))
        .join("busybox-rootfs");
    assert!(
        root.join("bin/busybox").is_file(),
        "{} is missing: run `cargo xtask fixtures` (or `cargo xtask test`)",
        root.display()
    );
    root
}

/// A private directory removed (recursively) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `/tmp/skiff-test-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "skiff-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TCP port free on 127.0.0.1 right now (the kernel picks it).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// A UDP port free on 127.0.0.1 right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` up to `timeout`; kills it (and fails) when it does not exit.
pub fn wait_child(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().expect("try_wait") {
            Some(st) => return st,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("process {} did not exit within {timeout:?}; killed it", child.id());
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Runs `cmd` to completion with captured output, bounded by `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_child(&mut child, timeout);
    Output { status, stdout: t_out.join().unwrap_or_default(), stderr: t_err.join().unwrap_or_default() }
}

/// Text of a captured stream, lossily.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
