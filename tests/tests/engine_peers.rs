//! skiff's engine (and shim) driving the programs they replace (issue 8):
//! runc as `--runtime`, tini as `--init-path`, and both at once. Every
//! container runs with `--network none` (a private namespace with only lo):
//! these tests are about the runtime and init interfaces, and so touch no
//! bridge or address of the host. Each test owns its engine root.

use skiff_tests::bundle::cgroup_dirs;
use skiff_tests::engine::{Engine, T};
use skiff_tests::{require, run, text, wait_until};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};


fn runc() -> PathBuf {
    require("/usr/sbin/runc", "runc")
}

fn tini() -> PathBuf {
    require("/usr/bin/tini-static", "tini")
}

/// A private engine state root with the busybox image imported; removes
/// every container (and so every mount, shim, proxy) when dropped.
/// (The harness of tests/engine.rs.)
fn mounted_under(p: &Path) -> Vec<String> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = p.to_string_lossy().into_owned();
    mi.lines().filter(|l| l.contains(&p)).map(String::from).collect()
}

/// After `rm`: no mount, cgroup, runtime state or record of `id` is left.
fn assert_removed(e: &Engine, id: &str) {
    assert!(mounted_under(&e.root()).is_empty(), "mounts left: {:?}", mounted_under(&e.root()));
    assert!(cgroup_dirs(&format!("/skiff/{id}")).is_empty(), "cgroup left for {id}");
    assert!(!e.runtime_root().join(id).exists(), "runtime state left for {id}");
    assert!(!e.root().join("containers").join(id).exists(), "container dir left for {id}");
}

/// runc's view of container `id` in the engine's runtime root.
fn runc_state(e: &Engine, id: &str) -> Option<serde_json::Value> {
    let out = run(Command::new(runc()).arg("--root").arg(e.runtime_root()).args(["state", id]), T);
    out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("runc state prints JSON"))
}

/// True when `pid`'s executable is the file at `path` (same device and inode:
/// the engine bind-mounts the init binary at /dev/init).
fn runs_file(pid: i64, path: &Path) -> bool {
    match (std::fs::metadata(format!("/proc/{pid}/exe")), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[test]
fn engine_runs_containers_with_runc() {
    let e = Engine::new("runc");
    let rt = runc().display().to_string();

    let out = e.run_busybox(&["--runtime", &rt, "--rm"], &["sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err\n"));
    let out = e.run_busybox(&["--runtime", &rt, "--rm"], &["/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    let out = e.run_busybox(&["--runtime", &rt, "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000"], &["sh", "-c", "echo $FOO; pwd; id -u"]);
    assert_eq!(text(&out.stdout), "bar\n/tmp\n1000\n", "{}", text(&out.stderr));
    assert!(text(&e.run(&["ps", "-aq"]).stdout).trim().is_empty(), "--rm left a container");

    // -d: runc made the container (its state has the container's pid).
    let id = e.ok(&["run", "-d", "--network", "none", "--runtime", &rt, "-m", "64m", "busybox", "sleep", "60"]).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let info = e.inspect(&id);
    assert_eq!(info["State"]["Status"], "running");
    assert_eq!(info["HostConfig"]["Runtime"].as_str().or(info["Runtime"].as_str()), Some(rt.as_str()), "{info}");
    let pid = info["State"]["Pid"].as_i64().expect("pid");
    let state = runc_state(&e, &id).expect("runc has the container's state");
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["pid"].as_i64(), Some(pid), "{state}");
    let limit = cgroup_dirs(&format!("/skiff/{id}")).iter().find_map(|d| std::fs::read_to_string(d.join("memory.limit_in_bytes")).ok());
    assert_eq!(limit.as_deref().map(str::trim), Some("67108864"), "runc applied -m");

    // exec through runc, pause/unpause through runc.
    let out = e.run(&["exec", &id, "sh", "-c", "echo hi; cat /proc/1/cmdline; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\nsleep\x0060\x00");
    e.ok(&["pause", &id]);
    assert_eq!(e.inspect(&id)["State"]["Status"], "paused");
    assert_eq!(runc_state(&e, &id).expect("state")["status"], "paused");
    e.ok(&["unpause", &id]);
    assert_eq!(e.inspect(&id)["State"]["Status"], "running");

    // stop: sleep as PID 1 ignores SIGTERM, so SIGKILL after the timeout (137).
    let t = Instant::now();
    e.ok(&["stop", "-t", "1", &id]);
    assert!(t.elapsed() < Duration::from_secs(10), "stop took {:?}", t.elapsed());
    assert_eq!(e.inspect(&id)["State"]["ExitCode"], 137);
    e.ok(&["rm", &id]);
    assert_removed(&e, &id);
}

#[test]
fn engine_init_is_tini() {
    let e = Engine::new("tini");
    let tini = tini();
    let tini_arg = tini.display().to_string();

    let out = e.run_busybox(&["--rm", "--init", "--init-path", &tini_arg], &["sh", "-c", "cat /proc/1/cmdline; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "/dev/init\0--\0sh\0-c\0cat /proc/1/cmdline; exit 5\0");

    // -d: PID 1 is tini (the host's file, bind-mounted), stop -> SIGTERM
    // forwarded by tini to sleep (143).
    let id = e.ok(&["run", "-d", "--network", "none", "--init", "--init-path", &tini_arg, "busybox", "sleep", "60"]).trim().to_string();
    let pid = e.inspect(&id)["State"]["Pid"].as_i64().expect("pid");
    assert!(runs_file(pid, &tini), "PID 1 of {id} is not {}", tini.display());
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).is_ok_and(|c| !c.trim().is_empty())),
        "tini did not start sleep"
    );
    let t = Instant::now();
    e.ok(&["stop", &id]);
    assert!(t.elapsed() < Duration::from_secs(5), "stop took {:?}: tini did not forward SIGTERM", t.elapsed());
    assert_eq!(e.inspect(&id)["State"]["ExitCode"], 143);
    e.ok(&["rm", &id]);
    assert_removed(&e, &id);
}

/// Everything theirs under our engine and shim: runc with tini as init.
#[test]
fn engine_with_runc_and_tini() {
    let e = Engine::new("runc-tini");
    let (rt, tini) = (runc(), tini());
    let (rt_arg, tini_arg) = (rt.display().to_string(), tini.display().to_string());
    let id = e
        .ok(&["run", "-d", "--network", "none", "--runtime", &rt_arg, "--init", "--init-path", &tini_arg, "busybox", "sleep", "60"])
        .trim()
        .to_string();
    let pid = e.inspect(&id)["State"]["Pid"].as_i64().expect("pid");
    assert!(runs_file(pid, &tini), "PID 1 of {id} is not {}", tini.display());
    assert_eq!(runc_state(&e, &id).expect("runc has the container's state")["pid"].as_i64(), Some(pid));
    assert_eq!(e.ok(&["exec", &id, "cat", "/proc/1/cmdline"]), "/dev/init\0--\0sleep\x0060\0");
    let logs_id = e.ok(&["run", "-d", "--network", "none", "--runtime", &rt_arg, "--init", "--init-path", &tini_arg, "busybox", "sh", "-c", "echo out; echo err >&2"]);
    let logs_id = logs_id.trim();
    assert_eq!(e.ok(&["wait", logs_id]).trim(), "0");
    let out = e.run(&["logs", logs_id]);
    assert_eq!((text(&out.stdout).as_str(), text(&out.stderr).as_str()), ("out\n", "err\n"));
    e.ok(&["stop", &id]);
    assert_eq!(e.inspect(&id)["State"]["ExitCode"], 143);
    e.ok(&["rm", &id, logs_id]);
    assert_removed(&e, &id);
    assert_removed(&e, logs_id);
}

/// The seccomp config the engine writes (Docker's default profile, or a
/// profile file) is one runc applies the same way as skiff's runtime.
#[test]
fn runc_applies_the_engines_seccomp_profiles() {
    let e = Engine::new("runcsec");
    let rt = runc().display().to_string();
    let base = ["run", "--rm", "--network", "none", "--runtime", rt.as_str()];
    let with = |extra: &[&str]| -> Vec<String> { base.iter().chain(extra).map(|s| s.to_string()).collect() };
    let args = with(&["busybox", "grep", "^Seccomp:", "/proc/self/status"]);
    assert!(e.ok(&args.iter().map(String::as_str).collect::<Vec<_>>()).contains("Seccomp:\t2"));
    let args = with(&["busybox", "unshare", "-U", "true"]);
    let out = e.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(text(&out.stderr).contains("Operation not permitted"), "unshare -U under runc: {}", text(&out.stderr));
    let profile = e.dir.path().join("no-mkdir.json");
    let rules = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#;
    std::fs::write(&profile, rules).unwrap();
    let opt = format!("seccomp={}", profile.display());
    let args = with(&["--security-opt", &opt, "busybox", "sh", "-c", "mkdir /tmp/d || echo denied; touch /tmp/f && echo touched"]);
    let out = e.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(text(&out.stdout).split_whitespace().collect::<Vec<_>>(), ["denied", "touched"], "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Permission denied"), "{}", text(&out.stderr));
}
