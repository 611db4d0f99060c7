//! containerd drives skiff's runtime in runc's place (issue 8): a private
//! containerd (its own config, root, state, socket, namespace and cgroup
//! parent), the busybox fixture saved by our engine in docker-save format
//! and `ctr image import`ed, then `ctr run --runc-binary <dist>/runtime`:
//! the setting Kubernetes uses through containerd's CRI (a RuntimeClass
//! whose handler has `BinaryName` in its io.containerd.runc.v2 options),
//! the runc shim (containerd-shim-runc-v2) calling our runtime for create,
//! start, exec, ps, pause, resume, kill and delete.
//!
//! That our runtime, not runc, ran each container is checked on its state:
//! `<dist>/runtime --root <runc-root>/<namespace> state ID` reports the
//! task's pid, and runc cannot read that state.

use serde_json::Value;
use skiff_tests::containerd::{shim_socket, Containerd, NAMESPACE};
use skiff_tests::leftovers::{cgroup_dirs, mounts_under, pids_matching};
use skiff_tests::{bin, require, run, text, wait_until};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// `ctr run` with our runtime, its root, the container's cgroup under the
/// daemon's parent and the FIFOs in the daemon's dir: the arguments up to
/// (not including) the image.
fn run_args(c: &Containerd, id: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["run".into()];
    v.extend(extra.iter().map(|s| s.to_string()));
    v.push("--runc-binary".into());
    v.push(bin("runtime").display().to_string());
    v.push("--runc-root".into());
    v.push(c.runc_root().display().to_string());
    v.push("--cgroup".into());
    v.push(c.cgroup(id));
    v.push("--fifo-dir".into());
    v.push(c.fifo_dir().display().to_string());
    v
}

fn ctr_run(c: &Containerd, id: &str, opts: &[&str], image: &str, cmd: &[&str]) -> std::process::Output {
    let mut args = run_args(c, id, opts);
    args.push(image.into());
    args.push(id.into());
    args.extend(cmd.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    c.ctr(&refs)
}

/// Our runtime's view of container `id` (`runtime state`), where the runc
/// shim told it to keep its state: `<runc-root>/<namespace>`.
fn our_state(c: &Containerd, id: &str) -> Option<Value> {
    let root = c.runc_root().join(NAMESPACE);
    let out = run(Command::new(bin("runtime")).arg("--root").arg(&root).args(["state", id]), Duration::from_secs(20));
    out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("runtime state prints JSON"))
}

/// Asserts that container `id`, a task with pid `pid`, runs under our
/// runtime: our state names that pid, runc cannot read it, and the process
/// sits in the cgroup given with `--cgroup`.
fn assert_ours(c: &Containerd, id: &str, pid: u32) {
    let state = our_state(c, id).unwrap_or_else(|| panic!("our runtime has no state for {id} under {}", c.runc_root().display()));
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["pid"].as_u64(), Some(pid as u64), "our state's pid is the task's: {state}");
    let runc = require("/usr/sbin/runc", "runc");
    let out = run(Command::new(runc).arg("--root").arg(c.runc_root().join(NAMESPACE)).args(["state", id]), Duration::from_secs(20));
    assert!(!out.status.success(), "runc can read the state: it, not our runtime, made the container: {}", text(&out.stdout));
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert!(cg.contains(&c.cgroup(id)), "pid {pid} is not in {}: {cg}", c.cgroup(id));
}

/// The exit code `ctr task delete` reports (it logs non-zero ones).
fn delete_task(c: &Containerd, id: &str) -> i32 {
    let out = c.ctr(&["task", "delete", id]);
    assert!(out.status.success(), "ctr task delete {id}: {}", text(&out.stderr));
    let err = text(&out.stderr);
    match err.split("exit code ").nth(1) {
        Some(rest) => rest.trim_start().split(|ch: char| !ch.is_ascii_digit()).next().unwrap_or("").parse().expect("exit code number"),
        None => 0,
    }
}

/// After `ctr container delete`: no state, shim, socket, mount or cgroup
/// of `id` is left.
fn assert_gone(c: &Containerd, id: &str) {
    assert!(!c.runc_root().join(NAMESPACE).join(id).exists(), "our runtime's state of {id} is left");
    let bundle = c.dir().join("state/io.containerd.runtime.v2.task").join(NAMESPACE).join(id);
    assert!(
        wait_until(Duration::from_secs(10), || !bundle.exists()),
        "bundle {} is left",
        bundle.display()
    );
    let shim_args = format!("-id {id} -address {}", c.socket().display());
    assert!(
        wait_until(Duration::from_secs(10), || pids_matching(|cmd| cmd.contains(&shim_args)).is_empty()),
        "the shim of {id} is still running"
    );
    assert!(!shim_socket(c.socket(), NAMESPACE, id).exists(), "shim socket of {id} left in /run/containerd/s");
    let mounts = mounts_under(&bundle);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let cgs = cgroup_dirs(&c.cgroup(id));
    assert!(cgs.is_empty(), "cgroups of {id} left: {cgs:?}");
}

#[test]
fn ctr_run_rm_with_our_runtime_passes_output_and_exit_code() {
    let c = Containerd::start();
    let image = c.import_busybox();

    let id = c.unique_id("exit");
    let out = ctr_run(&c, &id, &["--rm"], &image, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "exit code; stderr: {}\nlog:\n{}", text(&out.stderr), c.log_tail(20));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err\n"), "{}", text(&out.stderr));
    assert_gone(&c, &id);
    assert!(c.ctr_ok(&["container", "ls", "--quiet"]).trim().is_empty(), "--rm left the container");

    // The image's config and ctr's options reach the process.
    let id = c.unique_id("opts");
    let out = ctr_run(
        &c,
        &id,
        &["--rm", "--env", "FOO=bar baz", "--cwd", "/tmp"],
        &image,
        &["sh", "-c", "echo $FOO; pwd; ls /"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(&lines[..2], ["bar baz", "/tmp"], "{s}");
    assert!(s.contains("linuxrc"), "the busybox image is the root: {s}");
    assert_gone(&c, &id);

    // A missing program fails the task's start; nothing is left.
    let id = c.unique_id("missing");
    let out = ctr_run(&c, &id, &["--rm"], &image, &["/no/such/program"]);
    assert!(!out.status.success(), "a missing program ran");
    let msg = text(&out.stderr);
    assert!(msg.contains("/no/such/program"), "the error names the program: {msg}");
    let _ = c.ctr(&["container", "delete", &id]);
    assert_gone(&c, &id);
    c.stop();
}

#[test]
fn ctr_detached_task_exec_ps_pause_kill_delete_with_our_runtime() {
    let c = Containerd::start();
    let image = c.import_busybox();

    let id = c.unique_id("sleep");
    let out = ctr_run(&c, &id, &["-d", "--memory-limit", "67108864"], &image, &["sleep", "60"]);
    assert!(out.status.success(), "ctr run -d: {}\nlog:\n{}", text(&out.stderr), c.log_tail(20));
    let (_, pid, status) = c.tasks().into_iter().find(|t| t.0 == id).expect("ctr task ls lists the task");
    assert_eq!(status, "RUNNING");
    assert_ours(&c, &id, pid);
    // ctr's default spec mounts no cgroupfs inside: read the limit on the host.
    let limit = cgroup_dirs(&c.cgroup(&id))
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join("memory.limit_in_bytes")).or_else(|_| std::fs::read_to_string(d.join("memory.max"))).ok());
    assert_eq!(limit.as_deref().map(str::trim), Some("67108864"), "--memory-limit in the container's cgroup");
    assert!(
        std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default().starts_with(b"sleep\0"),
        "pid {pid} is the container's sleep"
    );

    // ctr task exec: output and exit code, in the container.
    let fifo = c.fifo_dir().display().to_string();
    let out = c.ctr(&["task", "exec", "--fifo-dir", &fifo, "--exec-id", "e1", &id, "sh", "-c", "echo hi; cat /proc/1/cmdline"]);
    assert!(out.status.success(), "ctr task exec: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\nsleep\x0060\x00", "exec runs in the container's pid namespace");
    let out = c.ctr(&["task", "exec", "--fifo-dir", &fifo, "--exec-id", "e2", "--cwd", "/etc", &id, "sh", "-c", "pwd; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "exec's exit code: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "/etc\n");

    // ctr task ps (runtime ps), pause and resume (runtime pause/resume).
    let ps = c.ctr_ok(&["task", "ps", &id]);
    assert!(ps.lines().any(|l| l.split_whitespace().next() == Some(&pid.to_string())), "ctr task ps: {ps}");
    c.ctr_ok(&["task", "pause", &id]);
    assert_eq!(c.task_status(&id).as_deref(), Some("PAUSED"));
    assert_eq!(our_state(&c, &id).expect("state")["status"], "paused");
    c.ctr_ok(&["task", "resume", &id]);
    assert_eq!(c.task_status(&id).as_deref(), Some("RUNNING"));

    // sleep is PID 1 without a SIGTERM handler: SIGKILL ends it (137).
    c.ctr_ok(&["task", "kill", "--signal", "SIGKILL", &id]);
    assert!(
        wait_until(Duration::from_secs(15), || c.task_status(&id).as_deref() == Some("STOPPED")),
        "task not stopped after SIGKILL: {:?}",
        c.task_status(&id)
    );
    assert_eq!(delete_task(&c, &id), 137);
    c.ctr_ok(&["container", "delete", &id]);
    assert_gone(&c, &id);

    // ctr task kill's default SIGTERM reaches a PID 1 that handles it.
    let id = c.unique_id("term");
    let out = ctr_run(&c, &id, &["-d"], &image, &["sh", "-c", "trap 'exit 7' TERM; sleep 60 & wait"]);
    assert!(out.status.success(), "ctr run -d: {}", text(&out.stderr));
    let (_, pid, _) = c.tasks().into_iter().find(|t| t.0 == id).expect("ctr task ls lists the task");
    assert_ours(&c, &id, pid);
    // the trap is set once sh waits for its child
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).is_ok_and(|ch| !ch.trim().is_empty())
        }),
        "sh did not start sleep"
    );
    c.ctr_ok(&["task", "kill", &id]);
    assert!(
        wait_until(Duration::from_secs(15), || c.task_status(&id).as_deref() == Some("STOPPED")),
        "task not stopped after SIGTERM: {:?}",
        c.task_status(&id)
    );
    assert_eq!(delete_task(&c, &id), 7);
    c.ctr_ok(&["container", "delete", &id]);
    assert_gone(&c, &id);

    let left: Vec<PathBuf> = std::fs::read_dir(c.runc_root().join(NAMESPACE)).into_iter().flatten().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "our runtime's root keeps {left:?}");
    c.stop();
}
