//! `cargo xtask bench runtime`: `runtime run` of a busybox bundle running
//! `true`, and `runtime exec ID true` into a running container, against
//! runc on the same bundle, alternating, several rounds.
//!
//! Also the helpers the runtime, shim and engine sections share: scratch
//! dirs, deadline-bounded timing (pidfd), OCI bundles made from `runtime
//! spec` and the busybox fixture, /proc process trees and RSS, and cgroup
//! and mount cleanup. Nothing here touches the host beyond its own temp
//! dirs and its own cgroup `/skiff-bench-<pid>` (removed at the end).

use super::chart::{self, Bar};
// The tests' host helpers: the bench cleans up what it starts the same way.
pub(super) use skiff_tests::leftovers::{cgroup_dirs, kill_all};
pub(super) use skiff_tests::wait_until;
use super::{stats, Stats};
use crate::prereq::{check, root, run_bounded};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(super) const RUNC: &str = "/usr/sbin/runc";
/// How long any one command may take.
pub(super) const T: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Shared helpers.

/// `/tmp/skb-<tag>-<pid>`: short (unix socket paths live under it), removed
/// on drop after whatever is still mounted under it is detached.
pub(super) struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Result<Scratch, String> {
        let p = PathBuf::from(format!("/tmp/skb-{tag}-{}", std::process::id()));
        unmount_under(&p);
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("create {}: {e}", p.display()))?;
        Ok(Scratch(p))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unmount_under(&self.0);
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if self.0.exists() {
                eprintln!("bench: remove {}: {e}", self.0.display());
            }
        }
    }
}

/// Clears PR_SET_CHILD_SUBREAPER (set by `bench init`): daemonizing shims
/// must go to pid 1, not linger as zombies of xtask.
pub(super) fn no_subreaper() {
    // SAFETY: prctl with plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0 as libc::c_ulong) };
}

/// The busybox fixture, built by `cargo xtask fixtures` when missing.
pub(super) fn busybox_rootfs() -> Result<PathBuf, String> {
    let p = root().join("target/fixtures/busybox-rootfs");
    if !p.join("bin/busybox").is_file() {
        crate::fixtures::build()?;
    }
    Ok(p)
}

/// Waits for `child` until `deadline` (through a pidfd, so the exit is
/// seen at once); kills it and fails after.
pub(super) fn wait_deadline(child: &mut Child, deadline: Instant, what: &str) -> Result<ExitStatus, String> {
    // SAFETY: pidfd_open on our own unreaped child.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) } as libc::c_int;
    let mut done = false;
    if fd >= 0 {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().clamp(1, 1000) as libc::c_int) };
            if n > 0 {
                done = true;
                break;
            }
        }
        // SAFETY: closing the pidfd we opened.
        unsafe { libc::close(fd) };
    } else {
        while Instant::now() < deadline {
            if child.try_wait().map_err(|e| format!("wait {what}: {e}"))?.is_some() {
                done = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{what}: still running after its deadline; killed"));
    }
    child.wait().map_err(|e| format!("wait {what}: {e}"))
}

/// Milliseconds of one spawn + wait of `cmd` (stdio null, stderr to `err`),
/// which must exit 0 within `timeout`.
pub(super) fn timed(cmd: &mut Command, err: &Path, timeout: Duration) -> Result<f64, String> {
    let f = std::fs::File::create(err).map_err(|e| format!("create {}: {e}", err.display()))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(f);
    let what = format!("{cmd:?}");
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("run {what}: {e}"))?;
    let st = wait_deadline(&mut child, t + timeout, &what)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if !st.success() {
        let e = std::fs::read_to_string(err).unwrap_or_default();
        return Err(format!("{what} failed ({st}): {}", e.trim()));
    }
    Ok(ms)
}

/// Runs `cmd` bounded by T; Ok(stdout) when it exits 0, else Err with stderr.
pub(super) fn ok(cmd: &mut Command) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let ran = run_bounded(cmd, T)?;
    if ran.code == Some(0) {
        Ok(ran.stdout)
    } else if ran.timed_out {
        Err(format!("{what} timed out after {T:?}"))
    } else {
        Err(format!("{what} failed ({:?}): {}", ran.code, ran.stderr.trim()))
    }
}

/// VmRSS in KiB of `pid`.
pub(super) fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub(super) fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

pub(super) fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ")
}

/// Every process and its parent.
fn parents() -> HashMap<u32, u32> {
    let mut m = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        if let Some(ppid) = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)?.parse().ok()) {
            m.insert(pid, ppid);
        }
    }
    m
}

/// `roots` and all their descendants (alive now), sorted.
pub(super) fn tree(roots: &[u32]) -> Vec<u32> {
    let parents = parents();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&p, &pp) in &parents {
        children.entry(pp).or_default().push(p);
    }
    let mut seen: HashSet<u32> = HashSet::new();
    let mut todo: Vec<u32> = roots.iter().copied().filter(|p| parents.contains_key(p)).collect();
    while let Some(p) = todo.pop() {
        if seen.insert(p) {
            todo.extend(children.get(&p).into_iter().flatten());
        }
    }
    let mut v: Vec<u32> = seen.into_iter().collect();
    v.sort_unstable();
    v
}

/// Pids (not ours) whose command line contains `needle`.
pub(super) fn pids_with_cmdline(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    parents().into_keys().filter(|&p| p != me && cmdline(p).contains(needle)).collect()
}

/// SIGKILLs every process whose command line names `needle` (bounded wait
/// for them to go); returns a description of what had to be killed.
pub(super) fn kill_strays(needle: &str) -> Option<String> {
    let strays = pids_with_cmdline(needle);
    if strays.is_empty() {
        return None;
    }
    let desc = strays.iter().map(|&p| format!("{p} ({})", cmdline(p).trim())).collect::<Vec<_>>().join(", ");
    kill_all(&strays);
    wait_until(Duration::from_secs(10), || pids_with_cmdline(needle).is_empty());
    Some(desc)
}

/// Detaches every mount at or under `root` (deepest first, a few passes).
pub(super) fn unmount_under(root: &Path) {
    let _ = skiff_tests::leftovers::unmount_all_under(root);
}

/// Kills every process in cgroup `path` (any hierarchy, any depth) and
/// removes the cgroups, children first; returns what went wrong.
pub(super) fn remove_cgroup(path: &str) -> Vec<String> {
    fn walk(dir: &Path, pids: &mut Vec<u32>, dirs: &mut Vec<PathBuf>) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        pids.extend(procs.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path(), pids, dirs);
            }
        }
        dirs.push(dir.to_path_buf());
    }
    let mut problems = Vec::new();
    let scan = || {
        let (mut pids, mut dirs) = (Vec::new(), Vec::new());
        for d in cgroup_dirs(path) {
            walk(&d, &mut pids, &mut dirs);
        }
        (pids, dirs)
    };
    let (pids, _) = scan();
    if !pids.is_empty() {
        problems.push(format!("processes left in cgroup {path} (killed): {pids:?}"));
        kill_all(&pids);
        wait_until(Duration::from_secs(10), || scan().0.is_empty());
    }
    let (_, dirs) = scan();
    for d in dirs {
        // freshly emptied cgroups can be busy for a moment
        let gone = wait_until(Duration::from_secs(5), || std::fs::remove_dir(&d).is_ok() || !d.exists());
        if !gone {
            problems.push(format!("could not remove cgroup {}", d.display()));
        }
    }
    problems
}

/// An OCI bundle directory: `runtime spec`'s config.json with the busybox
/// fixture as a read-only root (absolute path), no terminal, and the given
/// args and cgroupsPath (rewritten by `write`).
pub(super) struct Bundle {
    pub dir: PathBuf,
    template: String,
}

impl Bundle {
    pub fn new(runtime: &Path, dir: PathBuf) -> Result<Bundle, String> {
        let rootfs = busybox_rootfs()?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        ok(Command::new(runtime).arg("spec").arg("--bundle").arg(&dir))?;
        let spec = std::fs::read_to_string(dir.join("config.json")).map_err(|e| format!("read config.json: {e}"))?;
        let mut t = spec;
        // `runtime spec` writes a fixed document; patch it textually (xtask
        // has no JSON dependency) and fail loudly if its shape changed.
        for (from, to) in [
            ("\"terminal\": true", "\"terminal\": false".to_string()),
            ("\"path\": \"rootfs\"", format!("\"path\": \"{}\"", rootfs.display())),
            ("\"args\": [\n      \"sh\"\n    ]", "\"args\": @ARGS@".to_string()),
            ("\"linux\": {", "\"linux\": {\n    \"cgroupsPath\": \"@CGROUP@\",".to_string()),
        ] {
            if !t.contains(from) {
                return Err(format!("bench: `runtime spec` output has no {from:?}: update xtask/src/bench/runtime.rs"));
            }
            t = t.replacen(from, &to, 1);
        }
        Ok(Bundle { dir, template: t })
    }

    /// Writes config.json for `args` in cgroup `cgroup`.
    pub fn write(&self, args: &[&str], cgroup: &str) -> Result<(), String> {
        let args = format!("[{}]", args.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", "));
        let text = self.template.replace("@ARGS@", &args).replace("@CGROUP@", cgroup);
        let p = self.dir.join("config.json");
        std::fs::write(&p, text).map_err(|e| format!("write {}: {e}", p.display()))
    }
}

/// A ratio with enough digits to be non-zero.
pub(super) fn ratio(r: f64) -> String {
    if r >= 0.1 {
        format!("{r:.2}")
    } else if r >= 0.01 {
        format!("{r:.3}")
    } else {
        format!("{r:.5}")
    }
}

pub(super) fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_string()
}

// ---------------------------------------------------------------------------
// The section.

/// One runtime being measured: its binary and its own state root.
struct Rt {
    name: &'static str,
    bin: PathBuf,
    root: PathBuf,
    bundle: Bundle,
}

impl Rt {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args);
        c
    }
}

/// Per-round medians of `per` timed runs of `f(i)` for each tool.
fn timed_rounds(
    what: &str,
    names: &[&str],
    rounds: usize,
    per: usize,
    mut f: impl FnMut(usize) -> Result<Option<f64>, String>,
) -> Result<Vec<Option<Stats>>, String> {
    let mut per_round: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for r in 0..rounds {
        let mut this: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        for _ in 0..per {
            for k in 0..names.len() {
                let i = (k + r) % names.len();
                if let Some(v) = f(i)? {
                    this[i].push(v);
                }
            }
        }
        for (i, v) in this.into_iter().enumerate() {
            if !v.is_empty() {
                per_round[i].push(stats(v).median);
            }
        }
        eprintln!("bench {what}: round {}/{rounds} done", r + 1);
    }
    Ok(per_round.into_iter().map(|v| (!v.is_empty()).then(|| stats(v))).collect())
}

pub fn runtime(dist_dir: &Path, quick: bool) -> Result<String, String> {
    check(&[(RUNC, "runc")])?;
    no_subreaper();
    let began = Instant::now();
    let load_before = loadavg();
    let ours = dist_dir.join("runtime");
    if !ours.exists() {
        return Err(format!("{} missing (cargo xtask dist)", ours.display()));
    }
    let (rounds, per) = if quick { (3, 6) } else { (7, 10) };
    let scratch = Scratch::new("rt")?;
    let pid = std::process::id();
    let cg_parent = format!("/skiff-bench-{pid}");
    let tools: Vec<Rt> = [("skiff runtime", ours.clone()), ("runc", PathBuf::from(RUNC))]
        .into_iter()
        .enumerate()
        .map(|(i, (name, bin))| {
            Ok(Rt { name, bin, root: scratch.path().join(format!("state{i}")), bundle: Bundle::new(&ours, scratch.path().join(format!("bundle{i}")))? })
        })
        .collect::<Result<_, String>>()?;
    let names: Vec<&str> = tools.iter().map(|t| t.name).collect();
    let err = scratch.path().join("stderr");
    let mut n = 0u32;
    let mut result = measure(&tools, &names, &cg_parent, &err, rounds, per, &mut n);
    // Cleanup whatever happened: every container of either root, our cgroups.
    let mut problems = Vec::new();
    for t in &tools {
        let list = run_bounded(&mut t.cmd(&["list", "-q"]), T).map(|r| r.stdout).unwrap_or_default();
        for id in list.split_whitespace() {
            let _ = run_bounded(&mut t.cmd(&["delete", "--force", id]), T);
        }
    }
    if let Some(s) = kill_strays(&scratch.path().to_string_lossy()) {
        problems.push(format!("processes left (killed): {s}"));
    }
    problems.extend(remove_cgroup(&cg_parent));
    for p in &problems {
        eprintln!("bench runtime cleanup: {p}");
    }
    drop(scratch);
    if let Ok(text) = &mut result {
        *text = text.replace("{TIME}", &format!("{:.0}", began.elapsed().as_secs_f64())).replace("{LOAD0}", &load_before).replace("{LOAD1}", &loadavg());
        if !problems.is_empty() {
            *text += &format!("\nCleanup problems: {}\n", problems.join("; "));
        }
    }
    result
}

fn measure(tools: &[Rt], names: &[&str], cg_parent: &str, err: &Path, rounds: usize, per: usize, n: &mut u32) -> Result<String, String> {
    let pid = std::process::id();
    let mut run_once = |i: usize| -> Result<f64, String> {
        let t = &tools[i];
        *n += 1;
        let id = format!("skb-run-{pid}-{}", *n);
        t.bundle.write(&["true"], &format!("{cg_parent}/{id}"))?;
        let b = t.bundle.dir.to_string_lossy().into_owned();
        timed(&mut t.cmd(&["run", "--bundle", &b, &id]), err, T)
    };
    // Warm-up (page cache, first cgroup creation), not counted.
    for i in 0..tools.len() {
        run_once(i)?;
    }
    let run = timed_rounds("runtime run", names, rounds, per, |i| run_once(i).map(Some))?;

    // exec: a container running `sleep` per runtime, then timed `exec ID true`.
    let mut exec_ids = Vec::new();
    for t in tools {
        let id = format!("skb-exec-{pid}-{}", t.name.replace(' ', "-"));
        t.bundle.write(&["sleep", "300"], &format!("{cg_parent}/{id}"))?;
        let b = t.bundle.dir.to_string_lossy().into_owned();
        timed(&mut t.cmd(&["run", "-d", "--bundle", &b, &id]), err, T)?;
        exec_ids.push(id);
    }
    // Our runtime's exec may not exist yet: find out once, untimed.
    let mut exec_state: Vec<Option<String>> = vec![None; tools.len()];
    for (i, t) in tools.iter().enumerate() {
        if let Err(e) = timed(&mut t.cmd(&["exec", &exec_ids[i], "true"]), err, T) {
            let short = e.rsplit("): ").next().unwrap_or(&e).lines().next().unwrap_or("").to_string();
            exec_state[i] = Some(if e.contains("not implemented") { "not implemented yet".to_string() } else { format!("failed: {short}") });
        }
    }
    let exec = timed_rounds("runtime exec", names, rounds, per, |i| {
        if exec_state[i].is_some() {
            return Ok(None);
        }
        timed(&mut tools[i].cmd(&["exec", &exec_ids[i], "true"]), err, T).map(Some)
    })?;
    for (t, id) in tools.iter().zip(&exec_ids) {
        let _ = run_bounded(&mut t.cmd(&["kill", id, "KILL"]), T);
        let _ = run_bounded(&mut t.cmd(&["delete", "--force", id]), T);
    }

    let r_run = run[0].as_ref().zip(run[1].as_ref()).map(|(o, p)| o.median / p.median);
    let r_exec = exec[0].as_ref().zip(exec[1].as_ref()).map(|(o, p)| o.median / p.median);
    let mut t = String::from("| command | median ms | min-max ms | ours / runc |\n|---|---:|---:|---:|\n");
    let row = |t: &mut String, label: &str, s: &Option<Stats>, r: Option<f64>, note: &Option<String>| match (s, note) {
        (Some(s), _) => *t += &format!("| {label} | {:.1} | {:.1}-{:.1} | {} |\n", s.median, s.min, s.max, r.map(ratio).unwrap_or("-".into())),
        (None, Some(n)) => *t += &format!("| {label} | {n} | - | - |\n"),
        (None, None) => *t += &format!("| {label} | not measured | - | - |\n"),
    };
    row(&mut t, "`runtime run ID` (busybox `true`)", &run[0], r_run, &None);
    row(&mut t, "`runc run ID` (busybox `true`)", &run[1], Some(1.0), &None);
    row(&mut t, "`runtime exec ID true`", &exec[0], r_exec, &exec_state[0]);
    row(&mut t, "`runc exec ID true`", &exec[1], r_exec.map(|_| 1.0), &exec_state[1]);
    let rr = r_run.unwrap_or(f64::NAN);
    t += &format!(
        "\n| target | measured | |\n|---|---:|---|\n| `runtime run` <= 0.25x runc | {}x | {} |\n",
        ratio(rr),
        verdict(rr <= 0.25)
    );
    let mut bars = vec![Bar::new("run busybox true vs runc", rr).target(0.25)];
    bars.push(Bar::new(
        match &exec_state[0] {
            Some(s) => format!("exec true vs runc ({s})"),
            None => "exec true vs runc".into(),
        },
        r_exec.unwrap_or(f64::NAN),
    ));
    let link = chart::write("runtime", "skiff runtime vs runc", &bars)?;
    Ok(format!(
        "## runtime\n\n`runtime` against runc (Debian `runc`) on the same busybox bundle (`runtime spec` + the busybox fixture as a \
         read-only root, no terminal), each with its own `--root`, a fresh id and cgroup per run. {rounds} rounds x {per} runs, \
         alternating (order rotated each round), after one untimed warm-up each; median and min-max of the per-round medians. \
         exec: into a container running `sleep` started with `run -d`. Section took {{TIME}} s; 1-minute load average {{LOAD0}} \
         before, {{LOAD1}} after.\n\n{t}\n{link}"
    ))
}
