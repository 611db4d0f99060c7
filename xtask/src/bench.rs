//! `cargo xtask bench`: skiff's binaries side by side with the programs they
//! replace, in one run, alternating, several rounds; medians, min-max and
//! ratios ours/peer written to bench/RESULTS.md. Ratios, not absolute
//! times, are what count on a shared machine.

use crate::dist::{self, HOST};
use crate::prereq::{require, root};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub mod chart;
pub mod engine;
pub mod proxy;
pub mod runtime;
pub mod shim;

const SECTIONS: [&str; 6] = ["sizes", "init", "proxy", "runtime", "shim", "engine"];

pub fn run(args: &[String]) -> Result<(), String> {
    let began = Instant::now();
    let quick = args.iter().any(|a| a == "--quick");
    let what: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with("--")).collect();
    let what = if what.is_empty() || what == ["all"] { SECTIONS.to_vec() } else { what };
    if let Some(bad) = what.iter().find(|w| !SECTIONS.contains(w)) {
        return Err(format!("bench: unknown section `{bad}` ({}|all)", SECTIONS.join("|")));
    }
    dist::dist(HOST)?;
    let dist_dir = root().join("dist").join(HOST);
    let mut sections = Vec::new();
    // One private dockerd for the shim and engine sections, torn down at the end.
    let mut docker: Option<engine::Dockerd> = None;
    for w in what {
        let t = Instant::now();
        let text = match w {
            "sizes" => sizes(&dist_dir)?,
            "init" => init(&dist_dir, quick)?,
            "proxy" => proxy::proxy(&dist_dir, quick)?,
            "runtime" => runtime::runtime(&dist_dir, quick)?,
            "shim" => shim::shim(&dist_dir, quick, &mut docker)?,
            _ => engine::engine(&dist_dir, quick, &mut docker)?,
        };
        println!("{text}");
        println!("bench {w}: {:.0} s", t.elapsed().as_secs_f64());
        sections.push((w, text));
    }
    drop(docker);
    write_results(&sections)?;
    println!("bench: {:.0} s in all{}", began.elapsed().as_secs_f64(), if quick { " (--quick)" } else { "" });
    Ok(())
}

/// Runs as `xtask zombie-burst N` under the init being measured: forks N
/// children that exit at once and exits without waiting, so all N become
/// orphans of init in one burst.
pub fn zombie_burst(n: u32) -> ! {
    for _ in 0..n {
        // SAFETY: the child only calls _exit.
        match unsafe { libc::fork() } {
            0 => unsafe { libc::_exit(0) },
            -1 => break,
            _ => {}
        }
    }
    // SAFETY: exit without running destructors or waiting for children.
    unsafe { libc::_exit(0) }
}

fn sizes(dist_dir: &Path) -> Result<String, String> {
    let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).map_err(|_| p.to_string());
    let ours = |n: &str| std::fs::metadata(dist_dir.join(n)).map(|m| m.len()).map_err(|e| format!("{n}: {e}"));
    let peers: [(&str, &[&str], &str); 5] = [
        ("init", &["/usr/bin/tini-static"], "tini (static)"),
        ("proxy", &["/usr/sbin/docker-proxy"], "docker-proxy"),
        ("shim", &["/usr/bin/containerd-shim-runc-v2"], "containerd-shim-runc-v2"),
        ("runtime", &["/usr/sbin/runc"], "runc"),
        ("engine", &["/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/bin/docker"], "dockerd+containerd+docker"),
    ];
    let mut t = String::from("| binary | ours KiB | peer | peer KiB | ours/peer |\n|---|---:|---|---:|---:|\n");
    let mut bars = Vec::new();
    for (name, paths, peer) in peers {
        let o = ours(name)?;
        let p: Result<Vec<u64>, String> = paths.iter().map(|p| size(p)).collect();
        match p {
            Ok(v) => {
                let p: u64 = v.iter().sum();
                t += &format!("| {name} | {:.1} | {peer} | {:.1} | {:.3} |\n", kib(o), kib(p), o as f64 / p as f64);
                bars.push(chart::Bar::new(format!("{name} vs {peer}"), o as f64 / p as f64));
            }
            Err(missing) => t += &format!("| {name} | {:.1} | {peer} | missing {missing} (install docker.io, containerd, runc, tini) | - |\n", kib(o)),
        }
    }
    let link = chart::write("sizes", "skiff binary sizes vs the programs they replace", &bars)?;
    Ok(format!("## sizes\n\nStatic x86_64 binaries from `cargo xtask dist` against the Debian peers' files.\n\n{t}\n{link}"))
}

fn kib(b: u64) -> f64 {
    b as f64 / 1024.0
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.total_cmp(b));
    Stats { median: v[v.len() / 2], min: v[0], max: v[v.len() - 1] }
}

/// Wall time of one spawn + wait of `argv`, in microseconds.
fn once(argv: &[PathBuf]) -> Result<f64, String> {
    let t = Instant::now();
    let st = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("run {}: {e}", argv[0].display()))?;
    if !st.success() {
        return Err(format!("{argv:?} failed: {st}"));
    }
    Ok(t.elapsed().as_secs_f64() * 1e6)
}

/// Resident memory (KiB) of `argv`'s process once it has spawned its child.
fn rss_with_child(argv: &[PathBuf]) -> Result<u64, String> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("run {}: {e}", argv[0].display()))?;
    let pid = child.id();
    let children = format!("/proc/{pid}/task/{pid}/children");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&children).unwrap_or_default().trim().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS for {}", argv[0].display()))
}

/// Milliseconds for `init -s -- xtask zombie-burst N` to reap the burst and
/// exit, and how many zombies it left behind (reaped here afterwards).
fn burst(init: &Path, n: u32) -> Result<(f64, u32), String> {
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let t = Instant::now();
    let st = Command::new(init)
        .args(["-s", "--"])
        .arg(&me)
        .args(["zombie-burst", &n.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("run {}: {e}", init.display()))?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if !st.success() {
        return Err(format!("{} zombie burst failed: {st}", init.display()));
    }
    // We are a subreaper: whatever init left behind was reparented to us.
    let mut left = 0;
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid with a valid out pointer.
        if unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } <= 0 {
            break;
        }
        left += 1;
    }
    Ok((ms, left))
}

fn init(dist_dir: &Path, quick: bool) -> Result<String, String> {
    let ours = dist_dir.join("init");
    let tini = require("/usr/bin/tini-static", "tini")?;
    let docker_init = require("/usr/bin/docker-init", "docker.io")?;
    let truth = PathBuf::from("/bin/true");
    // SAFETY: marks this process as subreaper; no memory effects.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) };
    let (rounds, per) = if quick { (3, 30) } else { (7, 100) };
    let cmds: Vec<(&str, Vec<PathBuf>)> = vec![
        ("true alone", vec![truth.clone()]),
        ("skiff init -- true", vec![ours.clone(), "-s".into(), "--".into(), truth.clone()]),
        ("tini-static -- true", vec![tini.clone(), "-s".into(), "--".into(), truth.clone()]),
        ("docker-init -- true", vec![docker_init.clone(), "-s".into(), "--".into(), truth.clone()]),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cmds.len()];
    for _ in 0..rounds {
        for (i, (_, argv)) in cmds.iter().enumerate() {
            let mut v = Vec::with_capacity(per);
            for _ in 0..per {
                v.push(once(argv)?);
            }
            samples[i].push(stats(v).median);
        }
    }
    let st: Vec<Stats> = samples.into_iter().map(stats).collect();
    let base = st[0].median;
    let ours_t = st[1].median;
    let mut t = String::from("| command | median µs | min-max µs | / true | ours / this |\n|---|---:|---:|---:|---:|\n");
    for ((name, _), s) in cmds.iter().zip(&st) {
        t += &format!("| `{name}` | {:.0} | {:.0}-{:.0} | {:.2} | {:.2} |\n", s.median, s.min, s.max, s.median / base, ours_t / s.median);
    }
    let sleep = PathBuf::from("/bin/sleep");
    let mut rss = String::from("\n| init (child running) | VmRSS KiB |\n|---|---:|\n");
    let mut kbs = Vec::new();
    for (name, bin) in [("skiff init", &ours), ("tini-static", &tini), ("docker-init", &docker_init)] {
        let kb = rss_with_child(&[bin.clone(), "-s".into(), "--".into(), sleep.clone(), "5".into()])?;
        rss += &format!("| {name} | {kb} |\n");
        kbs.push(kb as f64);
    }
    let bars = vec![
        chart::Bar::new("init -- true vs tini-static", ours_t / st[2].median),
        chart::Bar::new("init -- true vs docker-init", ours_t / st[3].median),
        chart::Bar::new("init -- true vs true alone", ours_t / base).target(1.5),
        chart::Bar::new("RSS vs tini-static", kbs[0] / kbs[1]),
        chart::Bar::new("RSS vs docker-init", kbs[0] / kbs[2]),
    ];
    let link = chart::write("init", "skiff init vs tini and docker-init", &bars)?;
    let n = if quick { 2000 } else { 10000 };
    let mut reap = format!("\n| zombie burst of {n} orphans | ms to reap all and exit | left behind |\n|---|---:|---:|\n");
    for (name, bin) in [("skiff init", &ours), ("tini-static", &tini)] {
        let (ms, left) = burst(bin, n)?;
        reap += &format!("| {name} | {ms:.0} | {left} |\n");
    }
    Ok(format!(
        "## init\n\n{rounds} rounds x {per} runs, alternating; per-round medians. Target: `init -- true` within 1.5x of `true` alone (measured: {:.2}x); RSS under 200 KiB.\n\n{t}{rss}{reap}\n{link}",
        ours_t / base
    ))
}

/// Replaces the sections just measured in bench/RESULTS.md, keeping the others.
fn write_results(sections: &[(&str, String)]) -> Result<(), String> {
    let path = root().join("bench/RESULTS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut kept: Vec<(String, String)> = Vec::new();
    for block in old.split("\n## ").skip(1) {
        let name = block.lines().next().unwrap_or("").trim().to_string();
        if !sections.iter().any(|(n, _)| *n == name) {
            kept.push((name, format!("## {block}")));
        }
    }
    for (n, text) in sections {
        kept.push((n.to_string(), text.clone()));
    }
    let order = ["sizes", "init", "proxy", "runtime", "shim", "engine"];
    kept.sort_by_key(|(n, _)| order.iter().position(|o| o == n).unwrap_or(order.len()));
    let machine = machine();
    let mut out = format!("# skiff benchmarks\n\nWritten by `cargo xtask bench`. {machine}\n");
    for (_, text) in kept {
        out += "\n";
        out += text.trim_end();
        out += "\n";
    }
    std::fs::create_dir_all(root().join("bench")).map_err(|e| format!("create bench/: {e}"))?;
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, out).map_err(|e| format!("write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("rename to {}: {e}", path.display()))?;
    println!("bench: wrote {}", path.display());
    Ok(())
}

fn machine() -> String {
    let sh = |c: &str| {
        Command::new("sh").args(["-c", c]).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
    };
    format!(
        "Last run: {} on `{}` ({} cores, kernel {}), commit {}.",
        sh("date -u +%Y-%m-%dT%H:%MZ"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
        sh("nproc"),
        sh("uname -r"),
        sh("git rev-parse --short HEAD")
    )
}
