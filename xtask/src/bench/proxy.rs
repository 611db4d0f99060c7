//! `cargo xtask bench proxy`: skiff's `proxy` against docker-proxy, rinetd,
//! socat and direct loopback, all on 127.0.0.1 in front of the same
//! backends: iperf3 bulk throughput, wrk keep-alive and connection churn
//! against xtask's own tiny HTTP/1.1 server (`xtask http-backend PORT`), and
//! idle RSS for one mapping and for 1000 mapped ports.
//!
//! Every process started here lives in its own process group owned by a
//! [`Procs`] guard, killed (group and all) when the guard drops; every wait
//! has a deadline.

use super::runtime::{loadavg, ratio, rss_kib, verdict};
use super::{stats, Stats};
use crate::prereq::{check, run_bounded};
use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DOCKER_PROXY: &str = "/usr/sbin/docker-proxy";
const RINETD: &str = "/usr/sbin/rinetd";
const SOCAT: &str = "/usr/bin/socat";
const IPERF3: &str = "/usr/bin/iperf3";
const WRK: &str = "/usr/bin/wrk";

/// How long any process gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Ours,
    DockerProxy,
    Rinetd,
    Socat,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "skiff proxy",
            Kind::DockerProxy => "docker-proxy",
            Kind::Rinetd => "rinetd",
            Kind::Socat => "socat",
        }
    }
}

const PROXIES: [Kind; 4] = [Kind::Ours, Kind::DockerProxy, Kind::Rinetd, Kind::Socat];

/// Child processes, each the leader of its own process group; dropping the
/// guard SIGKILLs every group and reaps what it can.
#[derive(Default)]
struct Procs {
    children: Vec<Child>,
}

impl Procs {
    /// Spawns `cmd` in a new process group with null stdio. With `fd3`, fd 3
    /// of the child is the write end of a pipe (docker-proxy's start
    /// protocol) whose read end is returned.
    fn spawn(&mut self, cmd: &mut Command, fd3: bool) -> Result<Option<OwnedFd>, String> {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
        let mut read_end = None;
        let mut write_end = None;
        let mut w: RawFd = -1;
        if fd3 {
            let mut fds = [0 as RawFd; 2];
            // SAFETY: fds is valid for two ints.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                return Err(format!("pipe: {}", std::io::Error::last_os_error()));
            }
            // SAFETY: pipe2 just returned these two fds, owned by nothing else.
            unsafe {
                read_end = Some(OwnedFd::from_raw_fd(fds[0]));
                write_end = Some(OwnedFd::from_raw_fd(fds[1]));
            }
            w = fds[1];
        }
        // SAFETY: only prctl, dup2 and fcntl (async-signal-safe) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Dies with xtask even if xtask is killed before the guard drops
                // (the process group keeps it from getting the terminal's ^C).
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                if w == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0);
                } else if w >= 0 && libc::dup2(w, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| format!("run {cmd:?}: {e}"))?;
        drop(write_end);
        self.children.push(child);
        Ok(read_end)
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Fails if any child has already exited.
    fn check_alive(&mut self, what: &str) -> Result<(), String> {
        for c in &mut self.children {
            if let Ok(Some(st)) = c.try_wait() {
                return Err(format!("{what}: process {} exited early: {st}", c.id()));
            }
        }
        Ok(())
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &self.children {
            // SAFETY: signals the process group this guard created.
            unsafe { libc::kill(-(c.id() as libc::pid_t), libc::SIGKILL) };
        }
        for c in &mut self.children {
            let _ = c.wait();
            // Grandchildren (socat's per-connection forks) reparented to us
            // when xtask is a subreaper (after `bench init`): reap them too.
            for _ in 0..10_000 {
                let mut st = 0;
                // SAFETY: plain waitpid on our own group with a valid out pointer.
                if unsafe { libc::waitpid(-(c.id() as libc::pid_t), &mut st, libc::WNOHANG) } <= 0 {
                    break;
                }
            }
        }
    }
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let p = std::env::temp_dir().join(format!("skiff-bench-proxy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("create {}: {e}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits (bounded) for docker-proxy's start message on `fd`: `0\n` once
/// listening, `1\n<error>` on failure.
fn wait_ready_pipe(fd: &OwnedFd, what: &str, deadline: Instant) -> Result<(), String> {
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{what}: no start message on fd 3 within {START_TIMEOUT:?}"));
        }
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: pfd is one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as libc::c_int) };
        if n <= 0 {
            continue;
        }
        let mut buf = [0u8; 512];
        // SAFETY: buf is valid for writes of its length.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r > 0 {
            got.extend_from_slice(&buf[..r as usize]);
            if got.starts_with(b"0\n") {
                return Ok(());
            }
            if got.len() > 4096 {
                break;
            }
            continue;
        }
        if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break;
    }
    Err(format!("{what} failed to start: {:?}", String::from_utf8_lossy(&got).trim()))
}

/// TCP ports in LISTEN state (IPv4), from /proc/net/tcp.
fn listening_ports() -> HashSet<u16> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() > 3 && f[3] == "0A" {
                f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok())
            } else {
                None
            }
        })
        .collect()
}

/// Waits (bounded) until every port in `ports` is listening, and `procs` are all alive.
fn wait_listening(ports: &[u16], procs: &mut Procs, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let l = listening_ports();
        let missing = ports.iter().filter(|p| !l.contains(p)).count();
        if missing == 0 {
            return Ok(());
        }
        procs.check_alive(what)?;
        if Instant::now() > deadline {
            return Err(format!("{what}: {missing} of {} ports not listening after {START_TIMEOUT:?}", ports.len()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `n` distinct free ports on 127.0.0.1 (bound to port 0, then released).
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}")))
        .collect::<Result<_, _>>()?;
    held.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| format!("local_addr: {e}"))).collect()
}

/// The first of `len` consecutive free ports on 127.0.0.1 (each checked by binding it).
fn free_range(len: u16) -> Result<u16, String> {
    let mut start: u32 = 20000;
    while start + len as u32 <= 65535 {
        let mut held = Vec::with_capacity(len as usize);
        let mut taken = None;
        for p in start..start + len as u32 {
            match TcpListener::bind(("127.0.0.1", p as u16)) {
                Ok(l) => held.push(l),
                Err(_) => {
                    taken = Some(p);
                    break;
                }
            }
        }
        match taken {
            None => return Ok(start as u16),
            Some(p) => start = p + 1,
        }
    }
    Err(format!("no {len} consecutive free ports on 127.0.0.1"))
}

/// Starts `kind` forwarding each (host port -> backend port) pair on
/// 127.0.0.1 and waits until all host ports listen. Ours serves any number
/// of pairs in one process (`--map` range, which must be contiguous);
/// docker-proxy and socat take one process per pair, rinetd one config.
/// Returns the pids of the processes started.
fn start(kind: Kind, ours: &Path, pairs: &[(u16, u16)], procs: &mut Procs, tmp: &Path) -> Result<Vec<u32>, String> {
    let first = procs.children.len();
    let mut pipes = Vec::new();
    let docker_flags = |cmd: &mut Command, (h, b): (u16, u16)| {
        cmd.args(["-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port", &h.to_string()]);
        cmd.args(["-container-ip", "127.0.0.1", "-container-port", &b.to_string()]);
    };
    match kind {
        Kind::Ours => {
            let mut cmd = Command::new(ours);
            if let [pair] = pairs {
                docker_flags(&mut cmd, *pair);
            } else {
                let (h, b) = pairs[0];
                let n = pairs.len() as u16 - 1;
                if pairs.iter().enumerate().any(|(i, &(hh, bb))| hh != h + i as u16 || bb != b + i as u16) {
                    return Err("bench: ours takes a contiguous range".into());
                }
                cmd.arg("--map").arg(format!("127.0.0.1:{h}-{}:127.0.0.1:{b}-{}/tcp", h + n, b + n));
            }
            pipes.push(procs.spawn(&mut cmd, true)?);
        }
        Kind::DockerProxy => {
            for &pair in pairs {
                let mut cmd = Command::new(DOCKER_PROXY);
                docker_flags(&mut cmd, pair);
                pipes.push(procs.spawn(&mut cmd, true)?);
            }
        }
        Kind::Rinetd => {
            let conf = tmp.join(format!("rinetd-{}-{}.conf", pairs[0].0, pairs.len()));
            let text: String = pairs.iter().map(|(h, b)| format!("127.0.0.1 {h} 127.0.0.1 {b}\n")).collect();
            std::fs::write(&conf, text).map_err(|e| format!("write {}: {e}", conf.display()))?;
            procs.spawn(Command::new(RINETD).arg("-f").arg("-c").arg(&conf), false)?;
        }
        Kind::Socat => {
            for &(h, b) in pairs {
                let mut cmd = Command::new(SOCAT);
                cmd.arg(format!("TCP-LISTEN:{h},fork,reuseaddr,bind=127.0.0.1")).arg(format!("TCP:127.0.0.1:{b}"));
                procs.spawn(&mut cmd, false)?;
            }
        }
    }
    let deadline = Instant::now() + START_TIMEOUT;
    for p in pipes.iter().flatten() {
        wait_ready_pipe(p, kind.name(), deadline)?;
    }
    let hosts: Vec<u16> = pairs.iter().map(|p| p.0).collect();
    wait_listening(&hosts, procs, kind.name())?;
    Ok(procs.pids()[first..].to_vec())
}

/// VmRSS in KiB of `pid`, or why not.
fn rss(pid: u32) -> Result<u64, String> {
    rss_kib(pid).ok_or_else(|| format!("no VmRSS for pid {pid}"))
}

/// Gbit/s of one `iperf3 -c 127.0.0.1 -p PORT -t SECS` (receiver side).
fn iperf(port: u16, secs: u32) -> Result<f64, String> {
    let mut last = String::new();
    for _ in 0..5 {
        let mut cmd = Command::new(IPERF3);
        cmd.args(["-c", "127.0.0.1", "-p", &port.to_string(), "-t", &secs.to_string(), "-J"]);
        let ran = run_bounded(&mut cmd, Duration::from_secs(secs as u64 + 20))?;
        if ran.code == Some(0) {
            return json_number_after(&ran.stdout, "\"sum_received\"", "\"bits_per_second\":")
                .map(|b| b / 1e9)
                .ok_or_else(|| format!("iperf3 -p {port}: no sum_received in its output"));
        }
        last = format!("{}{}", ran.stdout.trim(), ran.stderr.trim());
        if ran.timed_out {
            last = format!("timed out; {last}");
        }
        // The server refuses a test while it is still finishing the last one.
        std::thread::sleep(Duration::from_millis(500));
    }
    let err = last.lines().find(|l| l.contains("\"error\"")).unwrap_or(&last).trim().to_string();
    Err(format!("iperf3 -c 127.0.0.1 -p {port} failed: {err}"))
}

fn json_number_after(text: &str, section: &str, key: &str) -> Option<f64> {
    let rest = &text[text.find(section)?..];
    let rest = &rest[rest.find(key)? + key.len()..];
    let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// req/s and error count (socket errors + non-2xx) of one wrk run.
fn wrk(port: u16, secs: u32, close: bool) -> Result<(f64, u64), String> {
    let mut cmd = Command::new(WRK);
    cmd.args(["-c", "32", "-t", "2", "-d", &format!("{secs}s")]);
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}/"));
    let ran = run_bounded(&mut cmd, Duration::from_secs(secs as u64 + 20))?;
    if ran.code != Some(0) {
        return Err(format!("wrk -p {port} failed ({:?}): {}{}", ran.code, ran.stdout.trim(), ran.stderr.trim()));
    }
    let mut rps = None;
    let mut errors = 0;
    for l in ran.stdout.lines() {
        let l = l.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            errors += v.split(',').filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok()).sum::<u64>();
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().unwrap_or(0);
        }
    }
    let rps = rps.ok_or_else(|| format!("wrk: no Requests/sec in {:?}", ran.stdout))?;
    Ok((rps, errors))
}

/// Runs `f(i)` for every path i, `rounds` times, rotating who goes first.
fn alternate(
    what: &str,
    names: &[&str],
    rounds: usize,
    mut f: impl FnMut(usize) -> Result<f64, String>,
) -> Result<Vec<Stats>, String> {
    let mut s = vec![Vec::new(); names.len()];
    for r in 0..rounds {
        for k in 0..names.len() {
            let i = (r + k) % names.len();
            let v = f(i)?;
            eprintln!("bench proxy: {what} round {}/{rounds} {}: {v:.2}", r + 1, names[i]);
            s[i].push(v);
        }
    }
    Ok(s.into_iter().map(stats).collect())
}

/// Table of throughput-like results (higher is better); index 1 is ours.
fn rate_table(unit: &str, names: &[&str], st: &[Stats], prec: usize, errors: Option<&[u64]>) -> String {
    let ours = st[1].median;
    let mut t = format!("| path | median {unit} | min-max {unit} | ours / this |");
    t += if errors.is_some() { " wrk errors |\n|---|---:|---:|---:|---:|\n" } else { "\n|---|---:|---:|---:|\n" };
    for (i, (n, s)) in names.iter().zip(st).enumerate() {
        t += &format!(
            "| {n} | {:.p$} | {:.p$}-{:.p$} | {:.2} |",
            s.median,
            s.min,
            s.max,
            ours / s.median,
            p = prec
        );
        if let Some(e) = errors {
            t += &format!(" {} |", e[i]);
        }
        t += "\n";
    }
    t
}

/// The whole section; Err names any missing peer's Debian package.
pub fn proxy(dist_dir: &Path, quick: bool) -> Result<String, String> {
    check(&[
        (DOCKER_PROXY, "docker.io"),
        (RINETD, "rinetd"),
        (SOCAT, "socat"),
        (IPERF3, "iperf3"),
        (WRK, "wrk"),
    ])?;
    let ours = dist_dir.join("proxy");
    if !ours.exists() {
        return Err(format!("{} missing (cargo xtask dist)", ours.display()));
    }
    let began = Instant::now();
    let load_before = loadavg();
    let (rounds, bulk_secs, wrk_secs) = if quick { (3, 1, 1) } else { (5, 2, 3) };
    let tmp = TempDir::new()?;

    // Idle memory first, on a quiet machine.
    let rss = rss_section(&ours, &tmp.0, quick)?;

    let mut procs = Procs::default();
    let ports = free_ports(2 + 2 * PROXIES.len())?;
    let (iperf_port, http_port) = (ports[0], ports[1]);
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    procs.spawn(Command::new(IPERF3).args(["-s", "-B", "127.0.0.1", "-p", &iperf_port.to_string()]), false)?;
    procs.spawn(Command::new(&me).args(["http-backend", &http_port.to_string()]), false)?;
    wait_listening(&[iperf_port, http_port], &mut procs, "iperf3 -s / http-backend")?;
    let mut names = vec!["direct"];
    let mut bulk_ports = vec![iperf_port];
    let mut http_ports = vec![http_port];
    for (i, kind) in PROXIES.into_iter().enumerate() {
        names.push(kind.name());
        let (b, h) = (ports[2 + 2 * i], ports[3 + 2 * i]);
        start(kind, &ours, &[(b, iperf_port)], &mut procs, &tmp.0)?;
        start(kind, &ours, &[(h, http_port)], &mut procs, &tmp.0)?;
        bulk_ports.push(b);
        http_ports.push(h);
    }
    let idx = |n: &str| names.iter().position(|x| *x == n).expect("known path");
    let (direct, us, dp, rin) = (idx("direct"), idx("skiff proxy"), idx("docker-proxy"), idx("rinetd"));

    let bulk = alternate("iperf3 Gbit/s", &names, rounds, |i| iperf(bulk_ports[i], bulk_secs))?;
    let mut ka_err = vec![0; names.len()];
    let ka = alternate("keep-alive req/s", &names, rounds, |i| {
        let (r, e) = wrk(http_ports[i], wrk_secs, false)?;
        ka_err[i] += e;
        Ok(r)
    })?;
    let mut ch_err = vec![0; names.len()];
    let churn = alternate("churn req/s", &names, rounds, |i| {
        let (r, e) = wrk(http_ports[i], wrk_secs, true)?;
        ch_err[i] += e;
        Ok(r)
    })?;
    procs.check_alive("proxies after the runs")?;
    drop(procs);

    let m = |s: &[Stats], i: usize| s[i].median;
    let ratio_best = |s: &[Stats]| m(s, us) / m(s, dp).max(m(s, rin));
    let mut out = format!(
        "## proxy\n\n`proxy` (docker-proxy's flags) against docker-proxy (docker.io), rinetd, socat and direct \
         loopback, all on 127.0.0.1 in front of the same backends; {rounds} rounds, alternating (order rotated \
         each round); median and min-max of the rounds; ours / this = ratio of medians. Proxy section took {{TIME}} s; 1-minute load average {load_before} before, \
         {{LOAD}} after (other work on the machine shows up as wide min-max).\n\n"
    );
    out += &format!("### bulk throughput: `iperf3 -c 127.0.0.1 -t {bulk_secs}` (receiver Gbit/s)\n\n");
    out += &rate_table("Gbit/s", &names, &bulk, 2, None);
    let (b_dp, b_direct) = (m(&bulk, us) / m(&bulk, dp), m(&bulk, us) / m(&bulk, direct));
    out += &format!(
        "\n| target | measured | |\n|---|---:|---|\n| ours >= 1.0x docker-proxy | {b_dp:.2}x | {} |\n| ours >= 0.45x direct | {b_direct:.2}x | {} |\n\n",
        verdict(b_dp >= 1.0),
        verdict(b_direct >= 0.45)
    );
    out += &format!(
        "### keep-alive: `wrk -c 32 -t 2 -d {wrk_secs}s` against xtask's HTTP/1.1 backend (req/s)\n\n"
    );
    out += &rate_table("req/s", &names, &ka, 0, Some(&ka_err));
    let r = ratio_best(&ka);
    out += &format!(
        "\n| target | measured | |\n|---|---:|---|\n| ours >= 1.2x best of docker-proxy and rinetd | {r:.2}x | {} |\n\n",
        verdict(r >= 1.2)
    );
    out += "### connection churn: the same with `-H \"Connection: close\"` (req/s, one connection each)\n\n";
    out += &rate_table("req/s", &names, &churn, 0, Some(&ch_err));
    let r = ratio_best(&churn);
    out += &format!(
        "\n| target | measured | |\n|---|---:|---|\n| ours >= 1.2x best of docker-proxy and rinetd | {r:.2}x | {} |\n\n",
        verdict(r >= 1.2)
    );
    out += &rss;
    // Throughput ratios: higher is better, so the targets are floors.
    let bars = vec![
        super::chart::Bar::new("bulk vs docker-proxy", b_dp).target_as(1.0, "target >= 1.0x"),
        super::chart::Bar::new("bulk vs direct loopback", b_direct).target_as(0.45, "target >= 0.45x"),
        super::chart::Bar::new("keep-alive vs best of docker-proxy, rinetd", ratio_best(&ka)).target_as(1.2, "target >= 1.2x"),
        super::chart::Bar::new("churn vs best of docker-proxy, rinetd", ratio_best(&churn)).target_as(1.2, "target >= 1.2x"),
    ];
    out += "\n";
    out += &super::chart::write("proxy", "skiff proxy throughput vs its peers (higher is better)", &bars)?;
    Ok(out.replace("{TIME}", &format!("{:.0}", began.elapsed().as_secs_f64())).replace("{LOAD}", &loadavg()))
}

/// Idle VmRSS: one mapping (several rounds, fresh processes) and 1000 mapped ports.
fn rss_section(ours: &Path, tmp: &Path, quick: bool) -> Result<String, String> {
    let rounds = if quick { 3 } else { 5 };
    let settle = Duration::from_millis(300);
    let names: Vec<&str> = PROXIES.iter().map(|k| k.name()).collect();
    let one = alternate("idle RSS KiB (1 mapping)", &names, rounds, |i| {
        let mut procs = Procs::default();
        let p = free_ports(2)?;
        let pids = start(PROXIES[i], ours, &[(p[0], p[1])], &mut procs, tmp)?;
        std::thread::sleep(settle);
        pids.iter().map(|&pid| rss(pid)).sum::<Result<u64, String>>().map(|k| k as f64)
    })?;
    const N: u16 = 1000;
    let base = free_range(2 * N)?;
    let pairs: Vec<(u16, u16)> = (0..N).map(|i| (base + i, base + N + i)).collect();
    let mut many: HashMap<&str, (u64, usize)> = HashMap::new();
    for kind in [Kind::Ours, Kind::DockerProxy, Kind::Rinetd] {
        let mut procs = Procs::default();
        let pids = start(kind, ours, &pairs, &mut procs, tmp)?;
        std::thread::sleep(settle * 2);
        let kib = pids.iter().map(|&pid| rss(pid)).sum::<Result<u64, String>>()?;
        eprintln!("bench proxy: idle RSS KiB ({N} ports) {}: {kib} in {} processes", kind.name(), pids.len());
        many.insert(kind.name(), (kib, pids.len()));
    }
    let o1 = one[0].median;
    let (o1000, _) = many["skiff proxy"];
    let mut t = format!(
        "### idle memory: VmRSS after start (no connections yet)\n\n1 mapping: {rounds} fresh starts each, median. \
         {N} mapped ports: ours one `--map` range, docker-proxy {N} processes (summed), rinetd one config with {N} lines.\n\n\
         | proxy | 1 mapping KiB | min-max KiB | ours / this | {N} ports KiB | processes | ours / this |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for (n, s) in names.iter().zip(&one) {
        t += &format!("| {n} | {:.0} | {:.0}-{:.0} | {} |", s.median, s.min, s.max, ratio(o1 / s.median));
        match many.get(n) {
            Some(&(k, procs)) => t += &format!(" {k} | {procs} | {} |\n", ratio(o1000 as f64 / k as f64)),
            None => t += " - | - | - |\n",
        }
    }
    t += &format!(
        "\n| target | measured | |\n|---|---:|---|\n| ours <= 1 MiB for 1 mapping | {o1:.0} KiB | {} |\n| ours <= 8 MiB for {N} ports | {o1000} KiB | {} |\n",
        verdict(o1 <= 1024.0),
        verdict(o1000 <= 8192)
    );
    Ok(t)
}

// ---------------------------------------------------------------------------
// `xtask http-backend PORT`: the backend every HTTP measurement goes to.

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, skiff\n";
const RESPONSE_CLOSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nhello, skiff\n";

#[derive(Default)]
struct Conn {
    input: Vec<u8>,
    output: Vec<u8>,
    /// Close once `output` is written (the client asked, or hung up).
    closing: bool,
    /// Registered for EPOLLOUT.
    writing: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn epoll_ctl(ep: RawFd, op: libc::c_int, fd: RawFd, events: u32) {
    let mut ev = libc::epoll_event { events, u64: fd as u64 };
    // SAFETY: ev is a valid epoll_event; errors leave the fd unregistered.
    unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) };
}

impl Conn {
    /// Reads what is there, answers every complete request, writes what it
    /// can. Returns true when the connection should be closed.
    fn service(&mut self, fd: RawFd, ep: RawFd, buf: &mut [u8]) -> bool {
        if !self.closing {
            loop {
                // SAFETY: buf is valid for writes of its length.
                let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if r > 0 {
                    self.input.extend_from_slice(&buf[..r as usize]);
                    if (r as usize) < buf.len() {
                        break;
                    }
                } else if r == 0 {
                    self.closing = true;
                    break;
                } else {
                    let e = std::io::Error::last_os_error();
                    match e.kind() {
                        std::io::ErrorKind::WouldBlock => break,
                        std::io::ErrorKind::Interrupted => continue,
                        _ => return true,
                    }
                }
            }
            while let Some(end) = find(&self.input, b"\r\n\r\n") {
                let close = self.input[..end].windows(17).any(|w| w.eq_ignore_ascii_case(b"connection: close"));
                self.output.extend_from_slice(if close { RESPONSE_CLOSE } else { RESPONSE });
                self.input.drain(..end + 4);
                if close {
                    self.closing = true;
                    self.input.clear();
                    break;
                }
            }
            if self.input.len() > 64 * 1024 {
                return true;
            }
        }
        while !self.output.is_empty() {
            // SAFETY: output is valid for reads of its length.
            let w = unsafe { libc::send(fd, self.output.as_ptr().cast(), self.output.len(), libc::MSG_NOSIGNAL) };
            if w > 0 {
                self.output.drain(..w as usize);
                continue;
            }
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => {
                    if !self.writing {
                        self.writing = true;
                        epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, (libc::EPOLLIN | libc::EPOLLOUT) as u32);
                    }
                    return false;
                }
                _ => return true,
            }
        }
        if self.writing {
            self.writing = false;
            epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32);
        }
        self.closing
    }
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1:PORT, one epoll thread, the
/// same 13-byte answer to every request; `Connection: close` is honoured.
/// Runs until killed.
pub fn http_backend(port: Option<u16>) -> Result<(), String> {
    let port = port.ok_or("usage: xtask http-backend PORT")?;
    let l = TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
    l.set_nonblocking(true).map_err(|e| format!("nonblocking: {e}"))?;
    let lfd = l.as_raw_fd();
    // SAFETY: plain syscalls on fds we own.
    let ep = unsafe {
        libc::listen(lfd, 4096);
        libc::epoll_create1(libc::EPOLL_CLOEXEC)
    };
    if ep < 0 {
        return Err(format!("epoll_create1: {}", std::io::Error::last_os_error()));
    }
    epoll_ctl(ep, libc::EPOLL_CTL_ADD, lfd, libc::EPOLLIN as u32);
    let mut conns: HashMap<RawFd, Conn> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: events is valid for writes of its length.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as libc::c_int, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("epoll_wait: {e}"));
        }
        for ev in &events[..n as usize] {
            let fd = ev.u64 as RawFd;
            if fd == lfd {
                for _ in 0..1024 {
                    // SAFETY: accept4 with null address pointers.
                    let c = unsafe {
                        libc::accept4(lfd, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                    };
                    if c < 0 {
                        break;
                    }
                    let one: libc::c_int = 1;
                    // SAFETY: one is a valid c_int option value.
                    unsafe {
                        libc::setsockopt(
                            c,
                            libc::IPPROTO_TCP,
                            libc::TCP_NODELAY,
                            (&one as *const libc::c_int).cast(),
                            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                        )
                    };
                    epoll_ctl(ep, libc::EPOLL_CTL_ADD, c, libc::EPOLLIN as u32);
                    conns.insert(c, Conn::default());
                }
                continue;
            }
            let close = match conns.get_mut(&fd) {
                Some(c) => c.service(fd, ep, &mut buf),
                None => continue,
            };
            if close {
                conns.remove(&fd);
                // SAFETY: fd is a connection we accepted and no longer track; close drops its epoll registration.
                unsafe { libc::close(fd) };
            }
        }
    }
}
