//! OCI bundles for runtime tests: `runtime spec`'s config adjusted for a
//! test (no terminal, its own cgroup path, unique id), a rootfs that is the
//! busybox fixture (shared read-only) or a private copy, and a private state
//! root. Dropping it force-deletes the container and removes everything.

use crate::{bin, busybox_rootfs, run, text, wait_child, TempDir};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const T: Duration = Duration::from_secs(60);

pub struct Bundle {
    pub dir: TempDir,
    pub id: String,
    pub config: Value,
    runtime: PathBuf,
}

impl Bundle {
    /// A bundle whose root is the shared busybox fixture, mounted read-only.
    pub fn new(tag: &str) -> Bundle {
        Self::with_runtime(tag, bin("runtime"))
    }

    /// The same, for another runc-compatible runtime (e.g. /usr/sbin/runc).
    pub fn with_runtime(tag: &str, runtime: PathBuf) -> Bundle {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = TempDir::new(&format!("rt-{tag}"));
        let id = format!("sk-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let out = run(Command::new(bin("runtime")).arg("spec").arg("--bundle").arg(dir.path()), T);
        assert!(out.status.success(), "runtime spec: {}", text(&out.stderr));
        let cfg = std::fs::read_to_string(dir.path().join("config.json")).expect("read config.json");
        let mut config: Value = serde_json::from_str(&cfg).expect("parse config.json");
        config["root"] = json!({"path": busybox_rootfs(), "readonly": true});
        config["process"]["terminal"] = json!(false);
        config["hostname"] = json!(tag.chars().take(60).collect::<String>());
        config["linux"]["cgroupsPath"] = json!(format!("/skiff-test/{id}"));
        Bundle { dir, id, config, runtime }
    }

    /// A bundle with a private, writable copy of the busybox rootfs.
    pub fn writable(tag: &str) -> Bundle {
        let mut b = Bundle::new(tag);
        let rootfs = b.dir.path().join("rootfs");
        let out = run(Command::new("cp").arg("-a").arg(busybox_rootfs()).arg(&rootfs), T);
        assert!(out.status.success(), "copy rootfs: {}", text(&out.stderr));
        b.config["root"] = json!({"path": "rootfs", "readonly": false});
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Sets process.args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// `sh -c script` as the process.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn write(&self) {
        let p = self.dir.path().join("config.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&self.config).expect("serialize")).expect("write config.json");
    }

    /// `runtime --root <state> ARGS...` (config written first).
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.write();
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(self.state_root()).args(args);
        c
    }

    /// Runs `runtime --root <state> ARGS...` to completion.
    pub fn rt(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args), T)
    }

    /// `runtime run --bundle B ID` in the foreground: the container's output.
    pub fn run(&self) -> Output {
        let b = self.dir.path().to_string_lossy().into_owned();
        self.rt(&["run", "--bundle", &b, &self.id])
    }

    /// Runs a command whose container outlives it (`create`, `run -d`): the
    /// container inherits stdout/stderr, so they go to files, not pipes
    /// whose EOF would wait for the container.
    pub fn rt_detached(&self, args: &[&str]) -> Output {
        let (o, e) = (self.dir.path().join("rt.out"), self.dir.path().join("rt.err"));
        let mut c = self.cmd(args);
        c.stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).expect("create rt.out"))
            .stderr(std::fs::File::create(&e).expect("create rt.err"));
        let mut child = c.spawn().expect("spawn runtime");
        let status = wait_child(&mut child, T);
        Output { status, stdout: std::fs::read(&o).unwrap_or_default(), stderr: std::fs::read(&e).unwrap_or_default() }
    }

    pub fn create(&self) -> Output {
        let b = self.dir.path().to_string_lossy().into_owned();
        self.rt_detached(&["create", "--bundle", &b, &self.id])
    }

    /// The `state` JSON, or None when the runtime says it does not exist.
    pub fn state(&self) -> Option<Value> {
        let out = self.rt(&["state", &self.id]);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("state is JSON"))
    }

    pub fn status(&self) -> String {
        self.state().map(|s| s["status"].as_str().unwrap_or("").to_string()).unwrap_or_else(|| "absent".into())
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = run(Command::new(&self.runtime).arg("--root").arg(self.state_root()).args(["delete", "--force", &self.id]), T);
    }
}

/// Directories a cgroup path has in the host's hierarchies (for leak checks).
pub use crate::leftovers::cgroup_dirs;
