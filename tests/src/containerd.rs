//! A private containerd for one test (Debian's `containerd` 1.6), driven
//! with `ctr`, plus what the drop-in tests of containerd and podman share:
//! the busybox fixture as a docker-save archive (made by our engine), and
//! the bookkeeping of host paths those programs create at fixed places.
//!
//! ```no_run
//! use skiff_tests::containerd::Containerd;
//! let c = Containerd::start();
//! let image = c.import_busybox();
//! let out = c.ctr(&["run", "--rm", "--runc-binary", "/usr/sbin/runc", &image, "x", "true"]);
//! c.stop(); // or drop it; stop() also asserts that nothing was left behind
//! ```
//!
//! What it owns, so tests run in parallel and leave nothing behind:
//! - `/tmp/skiff-test-ctrd-<pid>-<n>/`: `config.toml` (instead of
//!   /etc/containerd/config.toml: CRI and the snapshotters other than
//!   overlayfs/native disabled, the `opt` plugin's dir moved in here),
//!   `root/` (content store, metadata, overlayfs snapshots), `state/`
//!   (bundles: the rootfs mounts), `containerd.sock` (+ `.ttrpc`),
//!   `runc-root/` (the runtime's `--root`, through `ctr run --runc-root`),
//!   `fifo/` (ctr's stdio FIFOs, through `--fifo-dir`; else ctr makes
//!   them in /run/containerd/fifo), `containerd.log`;
//! - the namespace `skiff` of that daemon and the cgroup parent
//!   `/skiff-ctrd-<pid>-<n>` (each container's `--cgroup` is under it).
//!
//! containerd 1.6 puts one thing outside its dirs whatever its config: the
//! runc shim's socket `/run/containerd/s/<sha256(<grpc address>/<namespace>/<id>)>`
//! (the shim removes it when it exits normally). Teardown removes the
//! sockets of our containers, and `/run/containerd/s` and `/run/containerd`
//! when they did not exist before the first Containerd of the process and
//! are empty after the last one.
//!
//! Teardown (`Drop`, or `stop` which also asserts): delete every task
//! (forced) and container, SIGTERM containerd (bounded wait, then SIGKILL),
//! SIGKILL whatever still names our socket on its command line (shims) or
//! sits in our cgroups, unmount everything under the dir, remove the
//! cgroups, the shim sockets and the host dirs above, then the dir.
//!
//! Prerequisites (failing with the Debian package to install): containerd
//! (containerd, ctr, containerd-shim-runc-v2), tar, coreutils (sha256sum).

use crate::leftovers::{cgroup_dirs, cgroup_pids, describe, kill_all, pids_matching, remove_cgroup, unmount_all_under};
use crate::{bin, busybox_rootfs, require, run, text, wait_until, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a `ctr` command may take.
pub const CTR_TIMEOUT: Duration = Duration::from_secs(60);
/// How long containerd may take to answer `ctr version` after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long containerd may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

const CONTAINERD: (&str, &str) = ("/usr/bin/containerd", "containerd");
const CTR: (&str, &str) = ("/usr/bin/ctr", "containerd");
const SHIM: (&str, &str) = ("/usr/bin/containerd-shim-runc-v2", "containerd");
const TAR: (&str, &str) = ("/usr/bin/tar", "tar");
const SHA256SUM: (&str, &str) = ("/usr/bin/sha256sum", "coreutils");

/// Only the Debian packages' programs.
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The namespace every test uses in its own daemon.
pub const NAMESPACE: &str = "skiff";

/// Where containerd 1.6's runc shim puts its socket, whatever the config
/// (children before parents).
const HOST_PATHS: &[&str] = &["/run/containerd/s", "/run/containerd"];

/// A running private containerd; see the module docs.
pub struct Containerd {
    child: Option<Child>,
    sock: PathBuf,
    cgroup_parent: String,
    names: AtomicU32,
    torn_down: bool,
    dir: TempDir,
}

impl Containerd {
    /// Starts containerd and waits (bounded) until it answers `ctr version`.
    /// containerd gets SIGTERM when the thread that started it ends
    /// (PR_SET_PDEATHSIG), so keep it in the test's own thread.
    pub fn start() -> Containerd {
        for (p, pkg) in [CONTAINERD, CTR, SHIM, TAR, SHA256SUM] {
            require(p, pkg);
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = TempDir::new("ctrd");
        let root = dir.path().to_path_buf();
        assert!(
            root.as_os_str().len() + 30 < 100,
            "{} is too long for unix socket paths under it: set TMPDIR to a shorter dir",
            root.display()
        );
        host_paths_claim(HOST_PATHS);
        let mut c = Containerd {
            child: None,
            sock: root.join("containerd.sock"),
            cgroup_parent: format!("/skiff-ctrd-{}-{n}", std::process::id()),
            names: AtomicU32::new(0),
            torn_down: false,
            dir,
        };
        let r = |p: &str| root.join(p).display().to_string();
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
# The Kubernetes CRI plugin is not needed by ctr; the snapshotters other
# than overlayfs (ctr's default) and native probe the host for nothing.
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = r("root"),
            state = r("state"),
            sock = c.sock.display(),
            opt = r("opt"),
        );
        std::fs::write(root.join("config.toml"), config).expect("write config.toml");
        for d in ["fifo", "runc-root"] {
            std::fs::create_dir_all(root.join(d)).unwrap_or_else(|e| panic!("create {d}: {e}"));
        }

        let mut cmd = Command::new(CONTAINERD.0);
        cmd.arg("--config").arg(root.join("config.toml"));
        cmd.env_clear().env("PATH", PATH).env("HOME", &root).env("TMPDIR", &root);
        c.child = Some(crate::leftovers::spawn_daemon(&mut cmd, &root.join("containerd.log")));

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(st) = c.child.as_mut().and_then(|ch| ch.try_wait().ok().flatten()) {
                panic!("containerd exited during startup ({st}); its log:\n{}", c.log_tail(40));
            }
            let out = c.ctr_timeout(&["version"], Duration::from_secs(10));
            if out.status.success() && text(&out.stdout).contains("Server:") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not answer `ctr version` within {READY_TIMEOUT:?}: {}\nits log:\n{}",
                text(&out.stderr).trim(),
                c.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// The temp dir that holds all of this daemon's state.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// containerd's gRPC socket, for `ctr -a`.
    pub fn socket(&self) -> &Path {
        &self.sock
    }

    /// containerd's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The runtime root to pass as `ctr run --runc-root`; the runc shim adds
    /// the namespace: a container's state is in `<this>/skiff/<id>/`.
    pub fn runc_root(&self) -> PathBuf {
        self.dir().join("runc-root")
    }

    /// The directory to pass as `--fifo-dir` to `ctr run` and `ctr task exec`.
    pub fn fifo_dir(&self) -> PathBuf {
        self.dir().join("fifo")
    }

    /// The cgroup path to pass as `ctr run --cgroup` for container `id`.
    pub fn cgroup(&self, id: &str) -> String {
        format!("{}/{id}", self.cgroup_parent)
    }

    /// The cgroup parent of every container of this daemon.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// A container id unique to this daemon and process.
    pub fn unique_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}-{}", std::process::id(), self.names.fetch_add(1, Ordering::Relaxed))
    }

    /// `ctr -a <ours> -n skiff ARGS...`, bounded by CTR_TIMEOUT.
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_timeout(args, CTR_TIMEOUT)
    }

    /// The same, bounded by `timeout` (killed and failing after it).
    pub fn ctr_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = Command::new(CTR.0);
        cmd.arg("--address").arg(&self.sock).args(["--namespace", NAMESPACE]).args(args);
        cmd.env_clear().env("PATH", PATH).env("HOME", self.dir()).env("TMPDIR", self.dir());
        run(&mut cmd, timeout)
    }

    /// Like `ctr`, failing (with stderr and containerd's log) unless it
    /// exits 0; returns stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {} failed ({}):\nstdout: {}\nstderr: {}\ncontainerd log:\n{}",
            args.join(" "),
            out.status,
            text(&out.stdout).trim(),
            text(&out.stderr).trim(),
            self.log_tail(30)
        );
        text(&out.stdout)
    }

    /// `ctr task ls` as (id, pid, status) rows.
    pub fn tasks(&self) -> Vec<(String, u32, String)> {
        self.ctr_ok(&["task", "ls"])
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((f.first()?.to_string(), f.get(1)?.parse().ok()?, f.get(2)?.to_string()))
            })
            .collect()
    }

    /// The status column of `ctr task ls` for `id` (None: no such task).
    pub fn task_status(&self, id: &str) -> Option<String> {
        self.tasks().into_iter().find(|t| t.0 == id).map(|t| t.2)
    }

    /// The last `lines` lines of containerd's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = text(&std::fs::read(self.dir().join("containerd.log")).unwrap_or_default());
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `ctr image import`s the busybox fixture saved by our engine in
    /// docker-save format; returns the image reference containerd gives it.
    pub fn import_busybox(&self) -> String {
        let archive = busybox_docker_archive(&self.dir().join("image"));
        self.ctr_ok(&["image", "import", archive.to_str().expect("utf-8 temp dir")]);
        let _ = std::fs::remove_dir_all(self.dir().join("image"));
        let image = "docker.io/library/busybox:latest";
        let list = self.ctr_ok(&["image", "ls", "--quiet"]);
        assert!(list.lines().any(|l| l == image), "ctr image import did not create {image}: {list}");
        image.to_string()
    }

    /// Tears everything down and fails listing whatever was left behind.
    pub fn stop(mut self) {
        let problems = self.teardown();
        assert!(problems.is_empty(), "private containerd left things behind:\n  {}", problems.join("\n  "));
    }

    /// The teardown of the module docs; returns what could not be cleaned.
    fn teardown(&mut self) -> Vec<String> {
        if self.torn_down {
            return Vec::new();
        }
        self.torn_down = true;
        let mut problems = Vec::new();
        let root = self.dir().to_path_buf();
        let sock = self.sock.display().to_string();

        // Container ids: from containerd, and from its bundle dirs in case it is gone.
        let mut ids: Vec<String> = Vec::new();
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                let ls = self.ctr_timeout(&["container", "ls", "--quiet"], Duration::from_secs(20));
                ids.extend(text(&ls.stdout).split_whitespace().map(String::from));
                for id in &ids {
                    let _ = self.ctr(&["task", "delete", "--force", id]);
                    let out = self.ctr(&["container", "delete", id]);
                    if !out.status.success() {
                        problems.push(format!("ctr container delete {id}: {}", text(&out.stderr).trim()));
                    }
                }
                // SAFETY: plain kill(2) of our own child.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                let deadline = Instant::now() + STOP_TIMEOUT;
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if child.try_wait().ok().flatten().is_none() {
                    problems.push(format!("containerd did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it"));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let bundles = root.join("state/io.containerd.runtime.v2.task").join(NAMESPACE);
        for e in std::fs::read_dir(&bundles).into_iter().flatten().flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }

        // Shims name our socket on their command line.
        let strays = pids_matching(|c| c.contains(&sock));
        if !strays.is_empty() {
            problems.push(format!("processes outlived containerd (killed them): {}", describe(&strays)));
            kill_all(&strays);
        }
        if !wait_until(Duration::from_secs(10), || pids_matching(|c| c.contains(&sock)).is_empty()) {
            problems.push(format!("processes survive SIGKILL: {}", describe(&pids_matching(|c| c.contains(&sock)))));
        }

        let cgroups = cgroup_dirs(&self.cgroup_parent);
        let procs = cgroup_pids(&cgroups);
        if !procs.is_empty() {
            problems.push(format!("container processes outlived containerd (killed them): {}", describe(&procs)));
            kill_all(&procs);
            if !wait_until(Duration::from_secs(10), || cgroup_pids(&cgroups).is_empty()) {
                problems.push(format!("processes survive SIGKILL in {}", self.cgroup_parent));
            }
        }

        // Shim sockets of killed shims stay in /run/containerd/s.
        for id in &ids {
            let sock_file = shim_socket(&self.sock, NAMESPACE, id);
            if sock_file.exists() {
                problems.push(format!("shim socket {} left for {id} (removed it)", sock_file.display()));
                let _ = std::fs::remove_file(&sock_file);
            }
        }

        problems.extend(unmount_all_under(&root));
        for cg in &cgroups {
            if let Err(e) = remove_cgroup(cg) {
                problems.push(format!("remove cgroup {}: {e}", cg.display()));
            }
        }
        host_paths_release(HOST_PATHS);
        if let Err(e) = std::fs::remove_dir_all(&root) {
            if root.exists() {
                problems.push(format!("remove {}: {e}", root.display()));
            }
        }
        problems
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for p in self.teardown() {
            eprintln!("skiff-tests containerd teardown: {p}");
        }
    }
}

/// Where containerd 1.6's runc shim listens for container `id` of
/// `namespace` of the containerd at `grpc_socket`:
/// `/run/containerd/s/<sha256 of "<socket>/<namespace>/<id>">`.
pub fn shim_socket(grpc_socket: &Path, namespace: &str, id: &str) -> PathBuf {
    let key = format!("{}/{namespace}/{id}", grpc_socket.display());
    let out = run(
        Command::new("/bin/sh").args(["-c", "printf %s \"$1\" | \"$2\"", "sh", &key, SHA256SUM.0]),
        Duration::from_secs(10),
    );
    let hash = text(&out.stdout).split_whitespace().next().unwrap_or_default().to_string();
    assert_eq!(hash.len(), 64, "sha256sum of {key:?}: {}", text(&out.stderr));
    Path::new("/run/containerd/s").join(hash)
}

/// The busybox fixture as a `docker save` archive of image `busybox:latest`,
/// made by our engine (`engine import` of the fixture's tarball, then
/// `engine save`) in `dir` (created); returns the archive's path.
pub fn busybox_docker_archive(dir: &Path) -> PathBuf {
    require(TAR.0, TAR.1);
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let t = Duration::from_secs(120);
    let rootfs_tar = dir.join("busybox-rootfs.tar");
    let out = run(
        Command::new(TAR.0)
            .arg("--create")
            .arg("--file")
            .arg(&rootfs_tar)
            .args(["--numeric-owner", "--owner=0", "--group=0", "--directory"])
            .arg(busybox_rootfs())
            .arg("."),
        t,
    );
    assert!(out.status.success(), "tar the busybox fixture: {}", text(&out.stderr));
    let engine_root = dir.join("engine");
    let engine = |args: &[&str]| {
        let mut c = Command::new(bin("engine"));
        c.arg("--root").arg(&engine_root).args(args);
        let out = run(&mut c, t);
        assert!(out.status.success(), "engine {args:?} failed ({}): {}", out.status, text(&out.stderr));
    };
    engine(&["import", rootfs_tar.to_str().expect("utf-8 temp dir"), "busybox"]);
    let archive = dir.join("busybox-save.tar");
    engine(&["save", "-o", archive.to_str().expect("utf-8 temp dir"), "busybox"]);
    let _ = std::fs::remove_file(&rootfs_tar);
    let _ = std::fs::remove_dir_all(&engine_root);
    archive
}

/// Host paths (files or dirs) that programs under test create at fixed
/// places: each one's users in this process, and whether it was missing
/// before the first of them.
static HOST: Mutex<Vec<(&'static str, usize, bool)>> = Mutex::new(Vec::new());

/// Notes that a test is about to run something that may create `paths`
/// (children before parents): the first claim of a path records whether it
/// exists.
pub fn host_paths_claim(paths: &[&'static str]) {
    let mut host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    for &p in paths {
        match host.iter_mut().find(|h| h.0 == p) {
            Some(h) => {
                if h.1 == 0 {
                    h.2 = !Path::new(p).exists();
                }
                h.1 += 1;
            }
            None => host.push((p, 1, !Path::new(p).exists())),
        }
    }
}

/// The test is done with `paths` (as claimed): when it was the last user,
/// removes those that were missing before (files; dirs only when empty,
/// since another process may use them).
pub fn host_paths_release(paths: &[&'static str]) {
    let mut host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    for &p in paths {
        if let Some(h) = host.iter_mut().find(|h| h.0 == p) {
            h.1 = h.1.saturating_sub(1);
            if h.1 == 0 && h.2 {
                let path = Path::new(p);
                if path.is_dir() {
                    let _ = std::fs::remove_dir(path);
                } else {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

