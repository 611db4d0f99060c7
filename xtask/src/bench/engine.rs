//! `cargo xtask bench engine`: `engine run --rm busybox true` and `engine
//! run --rm --init -p 127.0.0.1:P:80 busybox true` against `docker run` on a
//! private dockerd, and resident memory with 10 containers running.
//!
//! Also the two guards the shim section shares: [`Engine`] (a private
//! engine root with the busybox image; every container removed on drop)
//! and [`Dockerd`] (a private Debian dockerd with its own data root, exec
//! root, socket, bridge and cgroup parent, loopback-only published ports,
//! no iptables; everything torn down on drop).

use super::chart::{self, Bar};
use super::runtime::{
    busybox_rootfs, comm, kill_strays, loadavg, no_subreaper, ok, ratio, remove_cgroup, rss_kib, timed, tree, unmount_under, verdict,
    wait_deadline, Scratch, T,
};
use super::{stats, Stats};
use crate::prereq::{check, run_bounded};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DOCKERD: &str = "/usr/sbin/dockerd";
const DOCKER: &str = "/usr/bin/docker";
/// Only the Debian packages' programs: /usr/local/bin may hold another docker.
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// Directories dockerd 20.10 and its containerd create at fixed host paths,
/// children before parents; removed at the end when they were not there
/// before and are empty.
const HOST_DIRS: &[&str] =
    &["/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd", "/opt/containerd/bin", "/opt/containerd/lib", "/opt/containerd"];

/// A tarball of the busybox fixture in `dir`.
pub(super) fn busybox_tar(dir: &Path) -> Result<PathBuf, String> {
    let tar = dir.join("busybox.tar");
    ok(Command::new("tar")
        .arg("--create")
        .arg("--file")
        .arg(&tar)
        .args(["--numeric-owner", "--owner=0", "--group=0", "--directory"])
        .arg(busybox_rootfs()?)
        .arg("."))?;
    Ok(tar)
}

/// A free TCP port on 127.0.0.1 right now.
pub(super) fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| format!("bind 127.0.0.1:0: {e}"))
}

// ---------------------------------------------------------------------------
// Our engine.

/// A private engine root. When the engine has bridge networking (`--bridge`
/// in its usage), every command gets its own bridge, a free 10.235.X.0/24
/// and `--iptables=false`, so nothing on the host is shared or rewritten;
/// the bridge is deleted on drop.
pub(super) struct Engine {
    dir: Scratch,
    bin: PathBuf,
    /// Global flags given to every command (the private bridge, if any).
    global: Vec<String>,
    pub bridge: Option<String>,
}

impl Engine {
    /// A fresh root under /tmp/skb-<tag>-<pid> with `tar` imported as `busybox`.
    pub fn new(dist_dir: &Path, tag: &str, tar: &Path) -> Result<Engine, String> {
        let bin = dist_dir.join("engine");
        if !bin.exists() {
            return Err(format!("{} missing (cargo xtask dist)", bin.display()));
        }
        let mut e = Engine { dir: Scratch::new(tag)?, bin, global: Vec::new(), bridge: None };
        let help = run_bounded(Command::new(&e.bin).arg("--help"), T)?;
        if help.stdout.contains("--bridge") || help.stderr.contains("--bridge") {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("skbe{n}x{}", std::process::id() % 100_000);
            let x = free_subnet("10.235", std::process::id() as usize + n as usize * 31)?;
            e.global = vec!["--bridge".into(), name.clone(), "--subnet".into(), format!("10.235.{x}.0/24"), "--iptables=false".into()];
            e.bridge = Some(name);
        }
        e.ok(&["import", &tar.to_string_lossy(), "busybox"])?;
        Ok(e)
    }

    /// How our containers are networked, for the report.
    pub fn networking(&self) -> String {
        match &self.bridge {
            Some(b) => format!("a veth on the engine's own bridge `{b}` (`--iptables=false`)"),
            None => "a private network namespace (the proxy dials into it)".into(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root()).args(&self.global).args(args);
        c
    }

    pub fn ok(&self, args: &[&str]) -> Result<String, String> {
        ok(&mut self.cmd(args))
    }

    /// `run -d ARGS...`: the container id.
    pub fn run_d(&self, args: &[&str]) -> Result<String, String> {
        let mut a = vec!["run", "-d"];
        a.extend_from_slice(args);
        let id = self.ok(&a)?.trim().to_string();
        if id.is_empty() {
            return Err(format!("engine {a:?} printed no id"));
        }
        Ok(id)
    }

    /// The shim pid of container `id` (from `<root>/containers/<id>/shim.pid`).
    pub fn shim_pid(&self, id: &str) -> Result<u32, String> {
        let p = self.root().join("containers").join(id).join("shim.pid");
        std::fs::read_to_string(&p)
            .map_err(|e| format!("read {}: {e}", p.display()))?
            .trim()
            .parse()
            .map_err(|e| format!("{}: {e}", p.display()))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let ids = run_bounded(&mut self.cmd(&["ps", "-aq"]), T).map(|r| r.stdout).unwrap_or_default();
        for id in ids.split_whitespace() {
            let _ = run_bounded(&mut self.cmd(&["rm", "-f", id]), T);
        }
        let root = self.root().to_string_lossy().into_owned();
        if let Some(s) = kill_strays(&root) {
            eprintln!("bench: engine processes left after rm -f (killed): {s}");
        }
        unmount_under(&self.root());
        if let Some(br) = self.bridge.take() {
            if Path::new("/sys/class/net").join(&br).exists() {
                if let Some(e) = delete_bridge(&br) {
                    eprintln!("bench: delete bridge {br}: {e}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// A private dockerd.

pub(super) struct Dockerd {
    child: Option<Child>,
    dir: Option<Scratch>,
    sock: PathBuf,
    bridge: Option<String>,
    cgroup_parent: String,
    missing_host_dirs: Vec<&'static str>,
    /// The busybox image, imported from the fixture tarball.
    pub image: String,
}

impl Dockerd {
    /// The daemon in `slot`, started (and the busybox tarball imported) on first use.
    pub fn get(slot: &mut Option<Dockerd>) -> Result<&Dockerd, String> {
        if slot.is_none() {
            *slot = Some(Dockerd::start()?);
        }
        Ok(slot.as_ref().expect("just set"))
    }

    fn start() -> Result<Dockerd, String> {
        check(&[
            (DOCKERD, "docker.io"),
            (DOCKER, "docker.io"),
            ("/usr/bin/containerd", "containerd"),
            ("/usr/bin/containerd-shim-runc-v2", "containerd"),
            ("/usr/sbin/runc", "runc"),
            ("/usr/sbin/docker-proxy", "docker.io"),
            ("/usr/bin/docker-init", "docker.io"),
            ("/usr/sbin/ip", "iproute2"),
        ])?;
        let t0 = Instant::now();
        let pid = std::process::id();
        let dir = Scratch::new("dk")?;
        let root = dir.path().to_path_buf();
        let mut d = Dockerd {
            child: None,
            sock: root.join("docker.sock"),
            bridge: None,
            cgroup_parent: format!("/skiff-bench-docker-{pid}"),
            missing_host_dirs: HOST_DIRS.iter().copied().filter(|p| !Path::new(p).exists()).collect(),
            image: format!("skiff-bench-busybox-{pid}"),
            dir: Some(dir),
        };
        // deprecated-key-path is daemon.json-only in 20.10; without it dockerd writes /etc/docker/key.json.
        let conf = format!("{{\"deprecated-key-path\": \"{}\"}}\n", root.join("key.json").display());
        std::fs::write(root.join("daemon.json"), conf).map_err(|e| format!("write daemon.json: {e}"))?;
        std::fs::create_dir_all(root.join("cli")).map_err(|e| format!("create cli dir: {e}"))?;
        let bridge = format!("skb{}", pid % 1_000_000);
        create_bridge(&bridge, pid as usize)?;
        d.bridge = Some(bridge.clone());

        let r = |p: &str| root.join(p).into_os_string();
        let mut cmd = Command::new(DOCKERD);
        cmd.arg("--config-file").arg(r("daemon.json"));
        cmd.arg("--data-root").arg(r("data"));
        cmd.arg("--exec-root").arg(r("exec"));
        cmd.arg("--pidfile").arg(r("dockerd.pid"));
        cmd.arg("--host").arg(format!("unix://{}", d.sock.display()));
        cmd.args(["--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false", "--ipv6=false"]);
        cmd.args(["--bridge", &bridge, "--cgroup-parent", &d.cgroup_parent, "--exec-opt", "native.cgroupdriver=cgroupfs"]);
        cmd.args(["--userland-proxy=true", "--log-level=warn"]);
        cmd.env_clear().env("PATH", PATH).env("HOME", &root);
        let log = std::fs::File::create(root.join("dockerd.log")).map_err(|e| format!("create dockerd.log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("dup log: {e}"))?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        // SAFETY: prctl is async-signal-safe: dockerd gets SIGTERM if xtask dies first.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0);
                Ok(())
            });
        }
        d.child = Some(cmd.spawn().map_err(|e| format!("run {DOCKERD}: {e}"))?);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(c) = d.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    return Err(format!("dockerd exited ({st}) at start:\n{}", d.log_tail(20)));
                }
            }
            if d.docker(&["version"]).map(|_| ()).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("dockerd did not answer within 60 s:\n{}", d.log_tail(20)));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let tar = busybox_tar(&root)?;
        d.docker(&["import", &tar.to_string_lossy(), &d.image])?;
        let _ = std::fs::remove_file(&tar);
        eprintln!("bench: private dockerd up in {:.1} s", t0.elapsed().as_secs_f64());
        Ok(d)
    }

    pub fn root(&self) -> &Path {
        self.dir.as_ref().expect("dir lives until drop").path()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// `docker -H <ours> ARGS...` (Debian's CLI, private config).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("--host").arg(format!("unix://{}", self.sock.display())).args(args);
        c.env_clear().env("PATH", PATH).env("HOME", self.root()).env("DOCKER_CONFIG", self.root().join("cli"));
        c
    }

    /// Runs `docker ARGS`, bounded; its stdout, or Err with stderr.
    pub fn docker(&self, args: &[&str]) -> Result<String, String> {
        ok(&mut self.cmd(args))
    }

    /// The pid of the containerd-shim-runc-v2 serving container `id`.
    pub fn shim_pid(&self, id: &str) -> Result<u32, String> {
        let needle = format!("-id {id}");
        let mut found = None;
        let ok = super::runtime::wait_until(Duration::from_secs(10), || {
            found = super::runtime::pids_with_cmdline(&needle).into_iter().find(|&p| comm(p).starts_with("containerd-shim"));
            found.is_some()
        });
        found.filter(|_| ok).ok_or_else(|| format!("no containerd-shim for container {id}"))
    }

    /// dockerd, its containerd, every shim, docker-proxy and container process.
    pub fn all_pids(&self) -> Vec<u32> {
        let root = self.root().to_string_lossy().into_owned();
        let mut roots = super::runtime::pids_with_cmdline(&root);
        roots.push(self.pid());
        tree(&roots)
    }

    fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.root().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Everything torn down; returns what could not be cleaned.
    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(dir) = self.dir.as_ref() else { return problems };
        let root = dir.path().to_path_buf();
        let root_s = root.to_string_lossy().into_owned();
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                let ids = self.docker(&["ps", "-aq"]).unwrap_or_default();
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut a = vec!["rm", "-f"];
                    a.extend(ids);
                    if let Err(e) = self.docker(&a) {
                        problems.push(e);
                    }
                }
                // SAFETY: kill(2) of our own child.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                if wait_deadline(&mut child, Instant::now() + Duration::from_secs(30), "dockerd").is_err() {
                    problems.push("dockerd did not exit within 30 s of SIGTERM; killed it".into());
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // The managed containerd and the shims name our dir on their command line.
        if let Some(s) = kill_strays(&root_s) {
            problems.push(format!("processes outlived dockerd (killed): {s}"));
        }
        problems.extend(remove_cgroup(&self.cgroup_parent));
        // Killed shims leave sockets in /run/containerd/s named sha256(<containerd socket>/moby/<id>).
        let sock = root.join("exec/containerd/containerd.sock");
        for id in std::fs::read_dir(root.join("data/containers")).into_iter().flatten().flatten() {
            let key = format!("{}/moby/{}", sock.display(), id.file_name().to_string_lossy());
            let out = ok(Command::new("/bin/sh").args(["-c", "printf %s \"$1\" | sha256sum", "sh", &key])).unwrap_or_default();
            if let Some(h) = out.split_whitespace().next().filter(|h| h.len() == 64) {
                let _ = std::fs::remove_file(Path::new("/run/containerd/s").join(h));
            }
        }
        unmount_under(&root);
        if let Some(br) = self.bridge.take() {
            if let Some(e) = delete_bridge(&br) {
                problems.push(format!("delete bridge {br}: {e}"));
            }
        }
        for p in HOST_DIRS.iter().filter(|p| self.missing_host_dirs.contains(p)) {
            let _ = std::fs::remove_dir(p); // only when empty: another daemon may use it
        }
        self.dir = None; // removes the dir
        if root.exists() {
            problems.push(format!("{} could not be removed", root.display()));
        }
        problems
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let t = Instant::now();
        for p in self.teardown() {
            eprintln!("bench: private dockerd teardown: {p}");
        }
        eprintln!("bench: private dockerd torn down in {:.1} s", t.elapsed().as_secs_f64());
    }
}

fn ip(args: &[&str]) -> Result<String, String> {
    ok(Command::new("/usr/sbin/ip").args(args))
}

/// Deletes bridge `br` and the veths still attached to it.
fn delete_bridge(br: &str) -> Option<String> {
    let veths = ip(&["-o", "link", "show", "master", br]).unwrap_or_default();
    for v in veths.lines().filter_map(|l| l.split(": ").nth(1)) {
        let _ = ip(&["link", "delete", v.split('@').next().unwrap_or(v)]);
    }
    ip(&["link", "delete", br]).err()
}

/// Holds the lock on /tmp the test harness takes while picking subnets.
struct TmpLock(#[allow(dead_code)] std::fs::File);

fn lock_tmp() -> Result<TmpLock, String> {
    let tmp = std::fs::File::open("/tmp").map_err(|e| format!("open /tmp: {e}"))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&tmp);
    // SAFETY: flock on an fd we own; released when `tmp` is closed.
    if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
        return Err(format!("flock /tmp: {}", std::io::Error::last_os_error()));
    }
    Ok(TmpLock(tmp))
}

/// An X for which no address or route on the host is in `<prefix>.X.0/24`.
fn free_subnet(prefix: &str, seed: usize) -> Result<u8, String> {
    let _lock = lock_tmp()?;
    let used = format!("{}\n{}", ip(&["-4", "-o", "addr", "show"])?, ip(&["-4", "route", "show", "table", "all"])?);
    let start = seed % 250;
    (0..250)
        .map(|i| ((start + i) % 250 + 2) as u8)
        .find(|x| !used.contains(&format!("{prefix}.{x}.")))
        .ok_or_else(|| format!("no free {prefix}.X.0/24 subnet on this host"))
}

/// Creates bridge `name`, up, with 10.233.X.1/24 for an X no address or
/// route on the host uses, under the lock on /tmp the test harness uses too.
fn create_bridge(name: &str, seed: usize) -> Result<u8, String> {
    let lock = lock_tmp()?;
    if Path::new("/sys/class/net").join(name).exists() {
        let _ = ip(&["link", "delete", name]); // stale, from a killed run with our pid
    }
    let used = format!("{}\n{}", ip(&["-4", "-o", "addr", "show"])?, ip(&["-4", "route", "show", "table", "all"])?);
    let start = seed % 250;
    let x = (0..250)
        .map(|i| ((start + i) % 250 + 2) as u8)
        .find(|x| !used.contains(&format!("10.233.{x}.")))
        .ok_or("no free 10.233.X.0/24 subnet on this host")?;
    ip(&["link", "add", name, "type", "bridge"])?;
    if let Err(e) = ip(&["addr", "add", &format!("10.233.{x}.1/24"), "dev", name]).and_then(|_| ip(&["link", "set", name, "up"])) {
        let _ = ip(&["link", "delete", name]);
        return Err(e);
    }
    drop(lock);
    Ok(x)
}

// ---------------------------------------------------------------------------
// Resident memory of a set of processes, by role.

const ROLES: [&str; 5] = ["daemons", "shims", "proxies", "inits", "container processes"];

fn role(comm: &str) -> usize {
    match comm {
        "dockerd" | "containerd" => 0,
        c if c.starts_with("containerd-shim") || c == "shim" || c == "conmon" => 1,
        "docker-proxy" | "proxy" => 2,
        "docker-init" | "init" => 3,
        _ => 4,
    }
}

/// (KiB, processes) per role, plus the total.
fn by_role(pids: &[u32]) -> (Vec<(u64, usize)>, u64, BTreeMap<String, usize>) {
    let mut v = vec![(0u64, 0usize); ROLES.len()];
    let mut names = BTreeMap::new();
    let mut total = 0;
    for &p in pids {
        let Some(k) = rss_kib(p) else { continue };
        let c = comm(p);
        let r = role(&c);
        v[r].0 += k;
        v[r].1 += 1;
        total += k;
        *names.entry(c).or_insert(0) += 1;
    }
    (v, total, names)
}

// ---------------------------------------------------------------------------
// The section.

pub(super) fn engine(dist_dir: &Path, quick: bool, docker: &mut Option<Dockerd>) -> Result<String, String> {
    no_subreaper();
    let began = Instant::now();
    let load_before = loadavg();
    let (rounds, per) = if quick { (3, 1) } else { (7, 2) };
    let d = Dockerd::get(docker)?;
    let scratch = Scratch::new("eng")?;
    let tar = busybox_tar(scratch.path())?;
    let e = Engine::new(dist_dir, "engroot", &tar)?;
    let err = scratch.path().join("stderr");
    let net = e.networking();

    // run --rm, plain and with --init -p; a fresh host port per -p run.
    let plain = |i: usize| -> Result<f64, String> {
        match i {
            0 => timed(&mut e.cmd(&["run", "--rm", "busybox", "true"]), &err, T),
            _ => timed(&mut d.cmd(&["run", "--rm", &d.image, "true"]), &err, T),
        }
    };
    let publish = |i: usize| -> Result<f64, String> {
        let p = format!("127.0.0.1:{}:80", free_port()?);
        match i {
            0 => timed(&mut e.cmd(&["run", "--rm", "--init", "-p", &p, "busybox", "true"]), &err, T),
            _ => timed(&mut d.cmd(&["run", "--rm", "--init", "-p", &p, &d.image, "true"]), &err, T),
        }
    };
    for i in 0..2 {
        plain(i)?; // warm-up, not counted
        publish(i)?;
    }
    let mut s: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); 2]; 2]; // [command][tool] per-round medians
    for r in 0..rounds {
        for (c, f) in [&plain as &dyn Fn(usize) -> Result<f64, String>, &publish].into_iter().enumerate() {
            let mut this = vec![Vec::new(); 2];
            for _ in 0..per {
                for k in 0..2 {
                    let i = (k + r) % 2;
                    this[i].push(f(i)?);
                }
            }
            for (i, v) in this.into_iter().enumerate() {
                s[c][i].push(stats(v).median);
            }
        }
        eprintln!("bench engine: run round {}/{rounds} done", r + 1);
    }
    let st: Vec<Vec<Stats>> = s.into_iter().map(|c| c.into_iter().map(stats).collect()).collect();

    // Resident memory with N containers running `sleep` behind --init -p.
    const N: usize = 10;
    let mut ours_ids = Vec::new();
    let mut docker_ids = Vec::new();
    for k in 0..N {
        let p = format!("127.0.0.1:{}:80", free_port()?);
        ours_ids.push(e.run_d(&["--init", "-p", &p, "busybox", "sleep", "300"])?);
        let p = format!("127.0.0.1:{}:80", free_port()?);
        let name = format!("skb-mem-{}-{k}", std::process::id());
        docker_ids.push(d.docker(&["run", "-d", "--name", &name, "--init", "-p", &p, &d.image, "sleep", "300"])?.trim().to_string());
    }
    std::thread::sleep(Duration::from_secs(1));
    let shims: Vec<u32> = ours_ids.iter().map(|id| e.shim_pid(id)).collect::<Result<_, _>>()?;
    let ours_pids = tree(&shims);
    let docker_pids = d.all_pids();
    let (o_roles, o_total, o_names) = by_role(&ours_pids);
    let (d_roles, d_total, d_names) = by_role(&docker_pids);
    for id in &ours_ids {
        let _ = e.ok(&["rm", "-f", id]);
    }
    let mut rm = vec!["rm", "-f"];
    rm.extend(docker_ids.iter().map(String::as_str));
    let _ = d.docker(&rm);
    drop(e);
    drop(scratch);

    let names = ["`engine run --rm busybox true`", "`engine run --rm --init -p 127.0.0.1:P:80 busybox true`"];
    let dnames = ["`docker run --rm busybox true`", "`docker run --rm --init -p 127.0.0.1:P:80 busybox true`"];
    let mut t = String::from("| command | median ms | min-max ms | ours / docker |\n|---|---:|---:|---:|\n");
    let mut targets = String::from("| target | measured | |\n|---|---:|---|\n");
    let mut bars = Vec::new();
    for c in 0..2 {
        let (o, p) = (&st[c][0], &st[c][1]);
        let r = o.median / p.median;
        t += &format!("| {} | {:.0} | {:.0}-{:.0} | {} |\n", names[c], o.median, o.min, o.max, ratio(r));
        t += &format!("| {} | {:.0} | {:.0}-{:.0} | 1.00 |\n", dnames[c], p.median, p.min, p.max);
        targets += &format!("| {} <= 0.1x docker | {}x | {} |\n", names[c], ratio(r), verdict(r <= 0.1));
        bars.push(Bar::new(if c == 0 { "run --rm true vs docker" } else { "run --rm --init -p true vs docker" }, r).target(0.1));
    }
    let mut m = format!("| with {N} containers running | ours KiB | ours processes | docker KiB | docker processes |\n|---|---:|---:|---:|---:|\n");
    for (i, name) in ROLES.iter().enumerate() {
        m += &format!("| {name} | {} | {} | {} | {} |\n", o_roles[i].0, o_roles[i].1, d_roles[i].0, d_roles[i].1);
    }
    let mr = o_total as f64 / d_total as f64;
    m += &format!("| **total** | **{o_total}** | {} | **{d_total}** | {} |\n", ours_pids.len(), docker_pids.len());
    m += &format!("| per container | {} | | {} | |\n", o_total / N as u64, d_total / N as u64);
    m += &format!("\nours / docker: {}x. ", ratio(mr));
    let list = |n: &BTreeMap<String, usize>| n.iter().map(|(k, v)| format!("{k} x{v}")).collect::<Vec<_>>().join(", ");
    m += &format!("Processes counted: ours {}; docker {}.\n", list(&o_names), list(&d_names));
    bars.push(Bar::new(format!("RSS, {N} containers vs docker"), mr));
    let link = chart::write("engine", "skiff engine vs docker (docker.io 20.10)", &bars)?;
    Ok(format!(
        "## engine\n\n`engine` against `docker` + a private `dockerd` (Debian docker.io, its managed containerd, runc, \
         docker-proxy, docker-init; own data root, socket and bridge, `--iptables=false`), both with the busybox fixture \
         imported from the same tarball. {rounds} rounds x {per} run{} of each command, alternating (order rotated each round), \
         after one untimed warm-up each; a fresh 127.0.0.1 port per `-p` run; median and min-max of the per-round medians. \
         Our containers get {}, docker's a veth on its own bridge (`--iptables=false`). \
         Section took {:.0} s (including the dockerd start when it was not already up); 1-minute load average {load_before} before, \
         {} after.\n\n{t}\n{targets}\n### resident memory with {N} containers running\n\n\
         {N} containers each, `run -d --init -p 127.0.0.1:P:80 busybox sleep 300`, VmRSS summed 1 s after the last start. \
         Ours: every shim and its descendants (proxy, init, `sleep`); nothing else is resident. Docker: dockerd, containerd, \
         every containerd-shim-runc-v2 and their descendants (docker-init, `sleep`), every docker-proxy.\n\n{m}\n{link}",
        if per == 1 { "" } else { "s" },
        net,
        began.elapsed().as_secs_f64(),
        loadavg()
    ))
}
