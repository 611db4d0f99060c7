//! A private Docker daemon for one test: Debian's `dockerd` (docker.io 20.10)
//! with its own data root, exec root, socket, key, bridge, subnet and cgroup
//! parent, all under a temp dir, torn down completely when dropped.
//!
//! ```no_run
//! use skiff_tests::docker::{Dockerd, DockerdOpts};
//! let d = Dockerd::start(DockerdOpts { init_path: Some(skiff_tests::bin("init")), ..Default::default() });
//! d.import_busybox("skiff-busybox");
//! let out = d.docker_ok(&["run", "--rm", "--init", "skiff-busybox", "true"]);
//! d.stop(); // or drop it; stop() also asserts that nothing was left behind
//! ```
//!
//! What it owns, so tests run in parallel and leave nothing behind:
//! - `/tmp/skiff-test-dk-<pid>-<n>/`: `data/` (--data-root, with the managed
//!   containerd's root), `exec/` (--exec-root, with containerd's state,
//!   socket and netns mounts), `docker.sock`, `dockerd.pid`, `dockerd.log`,
//!   `key.json`, `daemon.json` (instead of /etc/docker/daemon.json; it
//!   puts key.json here, not in /etc/docker) and `cli/` (DOCKER_CONFIG of the docker commands);
//! - the bridge `skd<pid%100000>x<n>` with 10.233.X.1/24, X free on the host
//!   (picked under a lock), passed as `--bridge` (dockerd 20.10 refuses
//!   `--bip` with `--bridge`, and creates only `docker0` itself); no
//!   iptables rules and no ip_forward sysctl (`--iptables=false
//!   --ip-masq=false --ip-forward=false`), so published ports go through
//!   the userland proxy only;
//! - the cgroup parent `/skiff-docker-<pid>-<n>` in every hierarchy.
//!
//! Teardown (`Drop`, or `stop` which also asserts): `docker rm -f` every
//! container, SIGTERM dockerd (bounded wait, then SIGKILL), SIGKILL whatever
//! is left that names our dir on its command line (managed containerd,
//! shims) or sits in our cgroups (container processes), unmount everything
//! under the dir, remove the cgroups, the veths on our bridge and the bridge,
//! and the host dirs dockerd and containerd create at fixed paths
//! (`/run/docker/plugins`, `/run/containerd/s`, `/opt/containerd/{bin,lib}`)
//! when they did not exist before and are empty, once the last Dockerd of the
//! process is gone.
//!
//! Prerequisites (failing with the Debian package to install): docker.io,
//! containerd, runc, iproute2, tar.

use crate::leftovers::{cgroup_dirs, cgroup_pids, describe, kill_all, mounts_under, pids_matching, remove_cgroup};
use crate::{busybox_rootfs, require, run, text, wait_until, TempDir};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a `docker` command may take.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long dockerd may take to answer `docker version` after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long dockerd may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

const DOCKERD: (&str, &str) = ("/usr/sbin/dockerd", "docker.io");
const DOCKER: (&str, &str) = ("/usr/bin/docker", "docker.io");
const CONTAINERD: (&str, &str) = ("/usr/bin/containerd", "containerd");
const SHIM: (&str, &str) = ("/usr/bin/containerd-shim-runc-v2", "containerd");
const RUNC: (&str, &str) = ("/usr/sbin/runc", "runc");
const IP: (&str, &str) = ("/usr/sbin/ip", "iproute2");
const TAR: (&str, &str) = ("/usr/bin/tar", "tar");

/// Only the Debian packages' programs: /usr/local/bin may hold another docker.
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Directories dockerd 20.10 and its managed containerd 1.6 create at fixed
/// host paths whatever their roots are, children before parents.
const HOST_DIRS: &[&str] = &[
    "/run/docker/plugins",
    "/run/docker",
    "/run/containerd/s",
    "/run/containerd",
    "/opt/containerd/bin",
    "/opt/containerd/lib",
    "/opt/containerd",
];

/// Live Dockerds of this process and which HOST_DIRS were missing before the
/// first of them started.
static HOST: Mutex<(usize, Vec<&'static str>)> = Mutex::new((0, Vec::new()));

/// What the private dockerd is started with besides its own roots and network.
#[derive(Clone, Debug, Default)]
pub struct DockerdOpts {
    /// `--init-path`: the docker-init that `docker run --init` injects.
    pub init_path: Option<PathBuf>,
    /// `--userland-proxy-path` (with `--userland-proxy=true`).
    pub userland_proxy_path: Option<PathBuf>,
    /// `--add-runtime NAME=PATH` for each.
    pub runtimes: Vec<(String, PathBuf)>,
    /// More dockerd arguments, appended last.
    pub extra_args: Vec<String>,
}

/// A running private dockerd; see the module docs.
pub struct Dockerd {
    child: Option<Child>,
    sock: PathBuf,
    bridge: Option<String>,
    subnet: u8,
    cgroup_parent: String,
    names: AtomicU32,
    torn_down: bool,
    dir: TempDir,
}

impl Dockerd {
    /// Starts dockerd and waits (bounded) until it answers `docker version`.
    /// Keep it in the thread that started it (a test's own): dockerd gets
    /// SIGTERM when that thread ends (PR_SET_PDEATHSIG), so a killed test
    /// does not leave a daemon behind.
    pub fn start(opts: DockerdOpts) -> Dockerd {
        for (p, pkg) in [DOCKERD, DOCKER, CONTAINERD, SHIM, RUNC, IP, TAR] {
            require(p, pkg);
        }
        for p in opts.init_path.iter().chain(&opts.userland_proxy_path).chain(opts.runtimes.iter().map(|(_, p)| p)) {
            assert!(p.is_file(), "{} is missing (passed to dockerd)", p.display());
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let dir = TempDir::new("dk");
        let root = dir.path().to_path_buf();
        // unix socket paths are limited to 108 bytes; the longest one dockerd
        // and containerd make is exec/containerd/containerd-debug.sock.
        assert!(
            root.as_os_str().len() + 40 < 100,
            "{} is too long for unix socket paths under it: set TMPDIR to a shorter dir",
            root.display()
        );
        {
            let mut host = HOST.lock().unwrap_or_else(|e| e.into_inner());
            if host.0 == 0 {
                host.1 = HOST_DIRS.iter().copied().filter(|p| !Path::new(p).exists()).collect();
            }
            host.0 += 1;
        }
        let mut d = Dockerd {
            child: None,
            sock: root.join("docker.sock"),
            bridge: None,
            subnet: 0,
            cgroup_parent: format!("/skiff-docker-{pid}-{n}"),
            names: AtomicU32::new(0),
            torn_down: false,
            dir,
        };
        // deprecated-key-path is daemon.json-only in 20.10; without it dockerd
        // writes /etc/docker/key.json.
        let key = root.join("key.json");
        let config = format!("{{\"deprecated-key-path\": \"{}\"}}\n", key.display());
        std::fs::write(root.join("daemon.json"), config).expect("write daemon.json");
        std::fs::create_dir_all(root.join("cli")).expect("create cli dir");

        let bridge = format!("skd{}x{n}", pid % 100_000);
        d.subnet = create_bridge(&bridge, pid as usize * 7 + n as usize * 13);
        d.bridge = Some(bridge.clone());

        let mut cmd = Command::new(DOCKERD.0);
        let r = |p: &str| root.join(p).into_os_string();
        cmd.arg("--config-file").arg(r("daemon.json"));
        cmd.arg("--data-root").arg(r("data"));
        cmd.arg("--exec-root").arg(r("exec"));
        cmd.arg("--pidfile").arg(r("dockerd.pid"));
        cmd.arg("--host").arg(format!("unix://{}", d.sock.display()));
        // no iptables rules and no ip_forward sysctl: nothing on the host changes
        cmd.args(["--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false", "--ipv6=false"]);
        cmd.args(["--bridge", &bridge]);
        cmd.args(["--cgroup-parent", &d.cgroup_parent]);
        cmd.args(["--exec-opt", "native.cgroupdriver=cgroupfs"]);
        cmd.arg("--userland-proxy=true");
        if let Some(p) = &opts.userland_proxy_path {
            cmd.arg("--userland-proxy-path").arg(p);
        }
        if let Some(p) = &opts.init_path {
            cmd.arg("--init-path").arg(p);
        }
        for (name, p) in &opts.runtimes {
            cmd.arg("--add-runtime").arg(format!("{name}={}", p.display()));
        }
        cmd.args(&opts.extra_args);
        cmd.env_clear().env("PATH", PATH).env("HOME", &root);
        d.child = Some(crate::leftovers::spawn_daemon(&mut cmd, &root.join("dockerd.log")));

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(st) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("dockerd exited during startup ({st}); its log:\n{}", d.log_tail(60));
            }
            let out = d.docker_timeout(&["version", "--format", "{{.Server.Version}}"], Duration::from_secs(10));
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer `docker version` within {READY_TIMEOUT:?}: {}\nits log:\n{}",
                text(&out.stderr).trim(),
                d.log_tail(60)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    /// The temp dir that holds all of this daemon's state.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `unix://<dir>/docker.sock`, for `docker -H`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// dockerd's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The bridge the containers are attached to.
    pub fn bridge(&self) -> &str {
        self.bridge.as_deref().unwrap_or("")
    }

    /// The containers' subnet prefix, e.g. `10.233.17.` (gateway `.1`).
    pub fn subnet_prefix(&self) -> String {
        format!("10.233.{}.", self.subnet)
    }

    /// A container or image name unique to this daemon and process.
    pub fn unique_name(&self, prefix: &str) -> String {
        format!("{prefix}-{}-{}", std::process::id(), self.names.fetch_add(1, Ordering::Relaxed))
    }

    /// `docker -H <ours> ARGS...`, bounded by DOCKER_TIMEOUT.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_timeout(args, DOCKER_TIMEOUT)
    }

    /// `docker -H <ours> ARGS...`, bounded by `timeout` (killed and failing after it).
    pub fn docker_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        run(&mut self.docker_command(args), timeout)
    }

    /// The `docker -H <ours> ARGS...` command, to spawn as the test needs.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER.0);
        cmd.arg("--host").arg(self.host()).args(args);
        cmd.env_clear().env("PATH", PATH).env("HOME", self.dir()).env("DOCKER_CONFIG", self.dir().join("cli"));
        cmd
    }

    /// Like `docker`, failing (with stderr and dockerd's log) unless it exits 0;
    /// returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {} failed ({}):\nstdout: {}\nstderr: {}\ndockerd log:\n{}",
            args.join(" "),
            out.status,
            text(&out.stdout).trim(),
            text(&out.stderr).trim(),
            self.log_tail(40)
        );
        text(&out.stdout)
    }

    /// The last `lines` lines of dockerd's (and its containerd's) log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read(self.dir().join("dockerd.log")).unwrap_or_default();
        let log = text(&log);
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Tars the busybox fixture (`busybox_rootfs()`) and `docker import`s it as `name`.
    pub fn import_busybox(&self, name: &str) {
        let rootfs = busybox_rootfs();
        let tarball = self.dir().join("busybox-rootfs.tar");
        let out = run(
            Command::new(TAR.0)
                .arg("--create")
                .arg("--file")
                .arg(&tarball)
                .args(["--numeric-owner", "--owner=0", "--group=0", "--directory"])
                .arg(&rootfs)
                .arg("."),
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "tar {}: {}", rootfs.display(), text(&out.stderr));
        self.docker_ok(&["import", tarball.to_str().expect("utf-8 temp dir"), name]);
        let _ = std::fs::remove_file(&tarball);
    }

    /// Tears everything down and fails listing whatever was left behind.
    pub fn stop(mut self) {
        let problems = self.teardown();
        assert!(problems.is_empty(), "private dockerd left things behind:\n  {}", problems.join("\n  "));
    }

    /// The teardown of the module docs; returns what could not be cleaned.
    fn teardown(&mut self) -> Vec<String> {
        if self.torn_down {
            return Vec::new();
        }
        self.torn_down = true;
        let mut problems = Vec::new();
        let root = self.dir().to_path_buf();
        let root_str = root.to_string_lossy().into_owned();

        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                let ps = self.docker_timeout(&["ps", "--all", "--quiet"], Duration::from_secs(20));
                let ids: Vec<String> = text(&ps.stdout).split_whitespace().map(String::from).collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "--force"];
                    args.extend(ids.iter().map(String::as_str));
                    let out = self.docker(&args);
                    if !out.status.success() {
                        problems.push(format!("docker rm -f: {}", text(&out.stderr).trim()));
                    }
                }
                // SAFETY: plain kill(2) of our own child.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                let deadline = Instant::now() + STOP_TIMEOUT;
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if child.try_wait().ok().flatten().is_none() {
                    problems.push(format!("dockerd did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it"));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }

        // The managed containerd and shims name our dir on their command line.
        let strays = pids_matching(|cmdline| cmdline.contains(&root_str));
        if !strays.is_empty() {
            problems.push(format!("processes outlived dockerd (killed them): {}", describe(&strays)));
            kill_all(&strays);
        }
        if !wait_until(Duration::from_secs(10), || pids_matching(|c| c.contains(&root_str)).is_empty()) {
            problems.push(format!("processes survive SIGKILL: {}", describe(&pids_matching(|c| c.contains(&root_str)))));
        }

        // Container processes left in our cgroups.
        let cgroups = cgroup_dirs(&self.cgroup_parent);
        let procs = cgroup_pids(&cgroups);
        if !procs.is_empty() {
            problems.push(format!("container processes outlived dockerd (killed them): {}", describe(&procs)));
            kill_all(&procs);
            if !wait_until(Duration::from_secs(10), || cgroup_pids(&cgroups).is_empty()) {
                problems.push(format!("processes survive SIGKILL in {}", self.cgroup_parent));
            }
        }

        // Shims killed above leave their sockets in /run/containerd/s, named
        // sha256(<containerd socket>/<namespace>/<container id>).
        let containerd_sock = root.join("exec/containerd/containerd.sock");
        for id in std::fs::read_dir(root.join("data/containers")).into_iter().flatten().flatten() {
            let key = format!("{}/moby/{}", containerd_sock.display(), id.file_name().to_string_lossy());
            let out = run(Command::new("/bin/sh").args(["-c", "printf %s \"$1\" | sha256sum", "sh", &key]), Duration::from_secs(10));
            if let Some(hash) = text(&out.stdout).split_whitespace().next().filter(|h| h.len() == 64) {
                let _ = std::fs::remove_file(Path::new("/run/containerd/s").join(hash));
            }
        }

        for _ in 0..5 {
            let mounts = mounts_under(&root);
            if mounts.is_empty() {
                break;
            }
            for m in mounts.iter().rev() {
                let c = CString::new(m.as_os_str().as_bytes()).expect("mount point without NUL");
                // SAFETY: umount2 with a valid C string.
                if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
                    let e = std::io::Error::last_os_error();
                    problems.push(format!("umount {}: {e}", m.display()));
                }
            }
        }
        let mounts = mounts_under(&root);
        if !mounts.is_empty() {
            problems.push(format!("still mounted: {mounts:?}"));
        }

        for cg in &cgroups {
            if let Err(e) = remove_cgroup(cg) {
                problems.push(format!("remove cgroup {}: {e}", cg.display()));
            }
        }

        if let Some(br) = self.bridge.take() {
            for veth in links_with_master(&br) {
                let _ = ip(&["link", "delete", &veth]);
            }
            if let Err(e) = ip(&["link", "delete", &br]) {
                problems.push(format!("delete bridge {br}: {e}"));
            }
        }

        {
            let mut host = HOST.lock().unwrap_or_else(|e| e.into_inner());
            host.0 = host.0.saturating_sub(1);
            if host.0 == 0 {
                for p in HOST_DIRS.iter().filter(|p| host.1.contains(p)) {
                    // only empty ones: another daemon may still use them
                    let _ = std::fs::remove_dir(p);
                }
            }
        }

        if let Err(e) = std::fs::remove_dir_all(&root) {
            if root.exists() {
                problems.push(format!("remove {}: {e}", root.display()));
            }
        }
        problems
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        for p in self.teardown() {
            eprintln!("skiff-tests docker teardown: {p}");
        }
    }
}

/// Runs `ip ARGS`; Err carries its stderr.
fn ip(args: &[&str]) -> Result<String, String> {
    let out = run(Command::new(IP.0).args(args), Duration::from_secs(20));
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(format!("ip {}: {}", args.join(" "), text(&out.stderr).trim()))
    }
}

/// Creates bridge `name` up with 10.233.X.1/24 for an X no interface or route
/// on the host uses, under a lock on /tmp shared by every process using this
/// harness; returns X.
fn create_bridge(name: &str, seed: usize) -> u8 {
    let tmp = std::fs::File::open("/tmp").expect("open /tmp");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&tmp);
    // SAFETY: flock on an fd we own; released when `tmp` is closed.
    assert_eq!(unsafe { libc::flock(fd, libc::LOCK_EX) }, 0, "flock /tmp: {}", std::io::Error::last_os_error());
    if Path::new("/sys/class/net").join(name).exists() {
        let _ = ip(&["link", "delete", name]); // a stale one from a killed run with our pid
    }
    let used = format!(
        "{}\n{}",
        ip(&["-4", "-o", "addr", "show"]).unwrap_or_else(|e| panic!("{e}")),
        ip(&["-4", "route", "show", "table", "all"]).unwrap_or_else(|e| panic!("{e}"))
    );
    let start = seed % 250;
    let x = (0..250)
        .map(|i| ((start + i) % 250 + 2) as u8)
        .find(|x| !used.contains(&format!("10.233.{x}.")))
        .expect("no free 10.233.X.0/24 subnet on this host");
    ip(&["link", "add", name, "type", "bridge"]).unwrap_or_else(|e| panic!("{e}"));
    let addr = format!("10.233.{x}.1/24");
    if let Err(e) = ip(&["addr", "add", &addr, "dev", name]).and_then(|_| ip(&["link", "set", name, "up"])) {
        let _ = ip(&["link", "delete", name]);
        panic!("{e}");
    }
    drop(tmp);
    x
}

/// Names of the links enslaved to bridge `br` (veths of containers).
fn links_with_master(br: &str) -> Vec<String> {
    ip(&["-o", "link", "show", "master", br])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

