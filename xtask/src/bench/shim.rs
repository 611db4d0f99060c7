//! `cargo xtask bench shim`: resident memory per running container of our
//! `shim` (started by our engine) against containerd-shim-runc-v2 (under a
//! private dockerd) and conmon (Debian `conmon`, driving runc on a bundle
//! of the same busybox fixture), each supervising a busybox `sleep`.

use super::chart::{self, Bar};
use super::engine::{busybox_tar, Dockerd, Engine};
use super::runtime::{loadavg, no_subreaper, ok, ratio, remove_cgroup, rss_kib, verdict, wait_until, Bundle, Scratch, RUNC, T};
use super::stats;
use crate::prereq::run_bounded;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CONMON: &str = "/usr/bin/conmon";

/// Containers supervised by conmon + runc, each in its own dirs under one
/// scratch dir; every container killed and deleted, every conmon killed, on drop.
struct Conmon {
    dir: Scratch,
    runc_root: PathBuf,
    bundle: Bundle,
    cg_parent: String,
    ids: Vec<String>,
    pids: Vec<u32>,
}

impl Conmon {
    fn new(dist_dir: &Path) -> Result<Conmon, String> {
        let dir = Scratch::new("cm")?;
        let bundle = Bundle::new(&dist_dir.join("runtime"), dir.path().join("bundle"))?;
        Ok(Conmon {
            runc_root: dir.path().join("runc"),
            bundle,
            cg_parent: format!("/skiff-bench-conmon-{}", std::process::id()),
            dir,
            ids: Vec::new(),
            pids: Vec::new(),
        })
    }

    fn runc(&self, args: &[&str]) -> Command {
        let mut c = Command::new(RUNC);
        c.arg("--root").arg(&self.runc_root).args(args);
        c
    }

    /// Starts `sleep 300` under a new conmon (podman's way: conmon runs
    /// `runc create` and daemonizes, then `runc start`); returns conmon's pid.
    fn start(&mut self, k: usize) -> Result<u32, String> {
        let id = format!("skb-cm-{}-{k}", std::process::id());
        let d = self.dir.path().join(&id);
        for sub in ["exits", "socks"] {
            std::fs::create_dir_all(d.join(sub)).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        self.bundle.write(&["sleep", "300"], &format!("{}/{id}", self.cg_parent))?;
        self.ids.push(id.clone());
        let p = |s: &str| d.join(s).to_string_lossy().into_owned();
        let root = self.runc_root.to_string_lossy().into_owned();
        ok(Command::new(CONMON).args([
            "--api-version", "1", "-c", &id, "-u", &id, "-n", &id, "-r", RUNC, "-b", &self.bundle.dir.to_string_lossy(),
            "-p", &p("ctr.pid"), "-P", &p("conmon.pid"), "--exit-dir", &p("exits"), "--socket-dir-path", &p("socks"),
            "-l", &format!("k8s-file:{}", p("ctr.log")), "--log-level", "error", "--runtime-arg", "--root", "--runtime-arg", &root,
        ]))?;
        let pid: u32 = std::fs::read_to_string(d.join("conmon.pid")).ok().and_then(|s| s.trim().parse().ok()).ok_or("conmon wrote no pid file")?;
        self.pids.push(pid);
        if !wait_until(T, || d.join("ctr.pid").exists()) {
            return Err(format!("conmon {id}: container not created within {T:?}"));
        }
        ok(&mut self.runc(&["start", &id]))?;
        Ok(pid)
    }
}

impl Drop for Conmon {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = run_bounded(&mut self.runc(&["kill", id, "KILL"]), T);
        }
        // conmon exits once its container has; then the container can go.
        wait_until(Duration::from_secs(10), || self.pids.iter().all(|&p| rss_kib(p).is_none()));
        for &p in &self.pids {
            if rss_kib(p).is_some() && super::runtime::cmdline(p).contains(&*self.dir.path().to_string_lossy()) {
                // SAFETY: kill(2) of a conmon we started (checked by its command line).
                unsafe { libc::kill(p as libc::pid_t, libc::SIGKILL) };
            }
        }
        for id in &self.ids {
            let _ = run_bounded(&mut self.runc(&["delete", "--force", id]), T);
        }
        if let Some(s) = super::runtime::kill_strays(&self.dir.path().to_string_lossy()) {
            eprintln!("bench shim: conmon processes left (killed): {s}");
        }
        for p in remove_cgroup(&self.cg_parent) {
            eprintln!("bench shim: {p}");
        }
    }
}

pub(super) fn shim(dist_dir: &Path, quick: bool, docker: &mut Option<Dockerd>) -> Result<String, String> {
    no_subreaper();
    let began = Instant::now();
    let load_before = loadavg();
    let n = if quick { 3 } else { 6 };
    let d = Dockerd::get(docker)?;
    let scratch = Scratch::new("shim")?;
    let tar = busybox_tar(scratch.path())?;
    let e = Engine::new(dist_dir, "shimroot", &tar)?;
    let mut conmon = if Path::new(CONMON).exists() { Some(Conmon::new(dist_dir)?) } else { None };

    // n containers of each, started alternately, all running at once.
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut cm = Vec::new();
    let mut docker_ids = Vec::new();
    for k in 0..n {
        let id = e.run_d(&["busybox", "sleep", "300"])?;
        ours.push(e.shim_pid(&id)?);
        let name = format!("skb-shim-{}-{k}", std::process::id());
        let id = d.docker(&["run", "-d", "--name", &name, &d.image, "sleep", "300"])?.trim().to_string();
        theirs.push(d.shim_pid(&id)?);
        docker_ids.push(id);
        if let Some(c) = conmon.as_mut() {
            cm.push(c.start(k)?);
        }
    }
    // Go shims settle after start; measure all at once after a pause.
    std::thread::sleep(Duration::from_secs(1));
    let rss = |pids: &[u32], what: &str| -> Result<Vec<f64>, String> {
        pids.iter().map(|&p| rss_kib(p).map(|k| k as f64).ok_or_else(|| format!("{what} {p} is gone"))).collect()
    };
    let o = stats(rss(&ours, "shim")?);
    let p = stats(rss(&theirs, "containerd-shim-runc-v2")?);
    let c = if cm.is_empty() { None } else { Some(stats(rss(&cm, "conmon")?)) };
    let mut rm = vec!["rm", "-f"];
    rm.extend(docker_ids.iter().map(String::as_str));
    let _ = d.docker(&rm);
    drop(conmon);
    drop(e);
    drop(scratch);

    let mut t = String::from("| shim (one per container) | median VmRSS KiB | min-max KiB | ours / this |\n|---|---:|---:|---:|\n");
    t += &format!("| skiff shim | {:.0} | {:.0}-{:.0} | 1.00 |\n", o.median, o.min, o.max);
    let rp = o.median / p.median;
    t += &format!("| containerd-shim-runc-v2 (docker) | {:.0} | {:.0}-{:.0} | {} |\n", p.median, p.min, p.max, ratio(rp));
    let mut bars = vec![Bar::new("shim RSS vs containerd-shim-runc-v2", rp).target_as(1024.0 / p.median, "target <= 1 MiB")];
    match &c {
        Some(c) => {
            let rc = o.median / c.median;
            t += &format!("| conmon (with runc) | {:.0} | {:.0}-{:.0} | {} |\n", c.median, c.min, c.max, ratio(rc));
            bars.push(Bar::new("shim RSS vs conmon", rc).target_as(1024.0 / c.median, "target <= 1 MiB"));
        }
        None => t += "| conmon | not installed (Debian package conmon) | - | - |\n",
    }
    t += &format!(
        "\n| target | measured | |\n|---|---:|---|\n| ours <= 1 MiB resident per running container | {:.0} KiB | {} |\n",
        o.median,
        verdict(o.median <= 1024.0)
    );
    let link = chart::write("shim", "skiff shim: resident memory per container", &bars)?;
    Ok(format!(
        "## shim\n\nVmRSS of the one supervisor process per running container, {n} containers of each running busybox \
         `sleep 300` at once (started alternately), read 1 s after the last start; median and min-max over the containers. \
         Ours: the `shim` our engine starts (`engine run -d busybox sleep 300`, pid from `<root>/containers/<id>/shim.pid`; \
         the proxy is a separate process, none here without `-p`). containerd-shim-runc-v2: the shim of `docker run -d` on a \
         private dockerd (Debian docker.io + containerd). conmon: Debian `conmon` running runc on the same busybox bundle, as \
         podman does. The shim section took {:.0} s (including the dockerd start when it was not already up); 1-minute load \
         average {load_before} before, {} after.\n\n{t}\n{link}",
        began.elapsed().as_secs_f64(),
        loadavg()
    ))
}
