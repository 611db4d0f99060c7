//! podman drives skiff's runtime (and init) in crun/runc's place (issue 8):
//! `podman --runtime <dist>/runtime` with its own storage root, run root,
//! tmp dir, containers.conf and storage.conf under the test's temp dir, the
//! busybox fixture saved by our engine in docker-save format and
//! `podman load`ed, then run --rm, run -d, exec, pause, stop, kill and rm
//! through conmon and our runtime, and `--init --init-path <dist>/init`.
//!
//! What the private configuration changes from Debian's podman 4.3 as root:
//! - `lock_type = "file"`: no /dev/shm/libpod_lock shared with the host;
//! - `events_logger = "none"`, `cgroup_manager = "cgroupfs"` (no journald,
//!   no systemd here) and `--cgroup-parent` of the test's own;
//! - the CNI backend with private config and plugin dirs, and
//!   `--network none`: no bridge, no /run/containers/networks;
//! - `default_ulimits`: podman as root asks for RLIMIT_NOFILE and
//!   RLIMIT_NPROC of 1048576, which needs CAP_SYS_RESOURCE (runc fails the
//!   same way without it); the test sets limits any root can set.
//!
//! Two paths stay outside the temp dir whatever the configuration, so they
//! are removed when they did not exist before the first test of the process
//! and are empty (or, for the cache, were created) after the last one:
//! containers/image's blob info cache `/var/lib/containers/cache/blob-info-cache-v1.boltdb`
//! (fixed for root), and `/run/skiff-runtime`, our runtime's default
//! `--root`: podman 4.3 drops `--runtime-flag` from the exit command that
//! deletes a container, so the runtime must keep its state in its default
//! root for podman's cleanup to find it (runc's /run/runc likewise).
//!
//! Prerequisites (failing with the Debian package to install): podman,
//! conmon.

use skiff_tests::containerd::{busybox_docker_archive, host_paths_claim, host_paths_release};
use skiff_tests::leftovers::{cgroup_dirs, cgroup_pids, describe, kill_all, pids_matching, remove_cgroup, unmount_all_under};
use skiff_tests::{bin, require, run, text, wait_until, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const T: Duration = Duration::from_secs(90);
const PODMAN: (&str, &str) = ("/usr/bin/podman", "podman");
const CONMON: (&str, &str) = ("/usr/bin/conmon", "conmon");
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// Our runtime's default state root (see the module docs).
const RUNTIME_ROOT: &str = "/run/skiff-runtime";
const HOST_PATHS: &[&str] = &[
    "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
    "/var/lib/containers/cache",
    "/var/lib/containers",
    RUNTIME_ROOT,
];

/// A private podman configuration with the busybox image loaded.
struct Podman {
    dir: TempDir,
    cgroup_parent: String,
    image: String,
    torn_down: bool,
}

impl Podman {
    fn new() -> Podman {
        require(PODMAN.0, PODMAN.1);
        require(CONMON.0, CONMON.1);
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = TempDir::new("podman");
        let d = dir.path().to_path_buf();
        for sub in ["tmp", "cni", "net", "root", "runroot"] {
            std::fs::create_dir_all(d.join(sub)).unwrap_or_else(|e| panic!("create {sub}: {e}"));
        }
        let p = |s: &str| d.join(s).display().to_string();
        let conf = format!(
            r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
lock_type = "file"
events_logger = "none"
cgroup_manager = "cgroupfs"
tmp_dir = "{tmp}"
image_copy_tmp_dir = "{tmp}"
volume_path = "{root}/volumes"
static_dir = "{root}/libpod"

[network]
network_backend = "cni"
network_config_dir = "{net}"
cni_plugin_dirs = ["{cni}"]
"#,
            tmp = p("tmp"),
            root = p("root"),
            net = p("net"),
            cni = p("cni"),
        );
        std::fs::write(d.join("containers.conf"), conf).expect("write containers.conf");
        let storage = format!("[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n", p("root"), p("runroot"));
        std::fs::write(d.join("storage.conf"), storage).expect("write storage.conf");
        host_paths_claim(HOST_PATHS);
        let mut pm = Podman { dir, cgroup_parent: format!("/skiff-podman-{}-{n}", std::process::id()), image: String::new(), torn_down: false };
        let archive = busybox_docker_archive(&d.join("image"));
        let out = pm.ok(&["load", "--quiet", "--input", archive.to_str().expect("utf-8 temp dir")]);
        let _ = std::fs::remove_dir_all(d.join("image"));
        pm.image = out.trim().strip_prefix("Loaded image: ").unwrap_or(out.trim()).to_string();
        assert_eq!(pm.image, "localhost/busybox:latest", "podman load: {out}");
        pm
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new(PODMAN.0);
        c.arg("--root").arg(d.join("root")).arg("--runroot").arg(d.join("runroot"));
        c.args(["--storage-driver", "overlay", "--cgroup-manager", "cgroupfs"]);
        c.arg("--runtime").arg(bin("runtime"));
        c.args(args);
        c.env_clear()
            .env("PATH", PATH)
            .env("HOME", d)
            .env("TMPDIR", d.join("tmp"))
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"));
        c
    }

    fn podman(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args), T)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(out.status.success(), "podman {args:?} failed ({}):\nstdout: {}\nstderr: {}", out.status, text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    /// `podman run --network none --cgroup-parent <ours> OPTS IMAGE CMD...`
    fn run(&self, opts: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["run", "--network", "none", "--cgroup-parent", &self.cgroup_parent];
        args.extend_from_slice(opts);
        args.push(&self.image);
        args.extend_from_slice(cmd);
        self.podman(&args)
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "--format", format, name]).trim().to_string()
    }

    fn stop(mut self) {
        let problems = self.teardown();
        assert!(problems.is_empty(), "podman left things behind:\n  {}", problems.join("\n  "));
    }

    fn teardown(&mut self) -> Vec<String> {
        if self.torn_down {
            return Vec::new();
        }
        self.torn_down = true;
        let mut problems = Vec::new();
        let d = self.dir.path().to_path_buf();
        let needle = d.display().to_string();
        let ids = text(&self.podman(&["ps", "--all", "--quiet", "--no-trunc"]).stdout);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let out = self.podman(&["rm", "--force", "--all", "--time", "0"]);
            if !out.status.success() {
                problems.push(format!("podman rm -f -a: {}", text(&out.stderr).trim()));
            }
        }
        let _ = self.podman(&["rmi", "--all", "--force"]);
        // conmon and podman's exit command ("container cleanup") name our dir.
        if !wait_until(Duration::from_secs(15), || pids_matching(|c| c.contains(&needle)).is_empty()) {
            let strays = pids_matching(|c| c.contains(&needle));
            problems.push(format!("processes outlived their containers (killed them): {}", describe(&strays)));
            kill_all(&strays);
        }
        let cgroups = cgroup_dirs(&self.cgroup_parent);
        let procs = cgroup_pids(&cgroups);
        if !procs.is_empty() {
            problems.push(format!("container processes left (killed them): {}", describe(&procs)));
            kill_all(&procs);
            wait_until(Duration::from_secs(10), || cgroup_pids(&cgroups).is_empty());
        }
        for id in &ids {
            let state = Path::new(RUNTIME_ROOT).join(id);
            if state.exists() {
                problems.push(format!("our runtime's state {} left (deleted it)", state.display()));
                let _ = run(Command::new(bin("runtime")).args(["delete", "--force", id]), Duration::from_secs(20));
                let _ = std::fs::remove_dir_all(&state);
            }
        }
        problems.extend(unmount_all_under(&d));
        for cg in &cgroups {
            if let Err(e) = remove_cgroup(cg) {
                problems.push(format!("remove cgroup {}: {e}", cg.display()));
            }
        }
        host_paths_release(HOST_PATHS);
        problems
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for p in self.teardown() {
            eprintln!("podman teardown: {p}");
        }
    }
}

/// The state our runtime keeps for container `id` (full id), if any.
fn our_state(id: &str) -> Option<serde_json::Value> {
    let out = run(Command::new(bin("runtime")).args(["state", id]), Duration::from_secs(20));
    out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("runtime state prints JSON"))
}

#[test]
fn podman_run_rm_with_our_runtime_and_init() {
    let p = Podman::new();

    let out = p.run(&["--rm"], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "exit code: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err\n"), "{}", text(&out.stderr));

    // podman's options reach the process and its cgroup.
    let out = p.run(
        &["--rm", "-e", "FOO=bar baz", "-w", "/tmp", "-u", "1000:1000", "--memory", "64m", "--pids-limit", "17"],
        &["sh", "-c", "echo $FOO; pwd; id -u; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert_eq!(s.lines().collect::<Vec<_>>(), ["bar baz", "/tmp", "1000", "67108864", "17"], "{s}");

    // podman's exit codes for a program that cannot run (127), as with runc.
    let out = p.run(&["--rm"], &["/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));

    // --init with our init: PID 1 is /run/podman-init, byte for byte ours.
    let init = bin("init");
    let init_arg = init.display().to_string();
    let out = p.run(&["--rm", "--init", "--init-path", &init_arg], &["sh", "-c", "cat /proc/1/cmdline; echo; cat /proc/1/exe | md5sum"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("/run/podman-init\0--\0sh\0"), "PID 1 argv: {s:?}");
    let ours = run(Command::new("md5sum").arg(&init), Duration::from_secs(10));
    let ours = text(&ours.stdout).split_whitespace().next().unwrap_or("-").to_string();
    assert!(s.lines().nth(1).is_some_and(|l| l.starts_with(&ours)), "PID 1 is not {}: {s:?}", init.display());

    assert!(p.ok(&["ps", "--all", "--quiet"]).trim().is_empty(), "--rm left containers");
    p.stop();
}

#[test]
fn podman_detached_exec_pause_stop_kill_rm_with_our_runtime() {
    let p = Podman::new();
    let name = format!("skiff-pd-{}", std::process::id());
    let init_arg = bin("init").display().to_string();
    let out = p.run(&["-d", "--name", &name, "--init", "--init-path", &init_arg], &["sleep", "60"]);
    assert!(out.status.success(), "podman run -d: {}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");

    // Our runtime made it: podman records it, conmon runs it, its state has the pid.
    assert_eq!(PathBuf::from(p.inspect(&name, "{{.OCIRuntime}}")), bin("runtime"));
    let pid: u32 = p.inspect(&name, "{{.State.Pid}}").parse().expect("pid");
    let state = our_state(&id).unwrap_or_else(|| panic!("our runtime has no state for {id} in {RUNTIME_ROOT}"));
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["pid"].as_u64(), Some(pid as u64), "{state}");
    let conmon = pids_matching(|c| c.starts_with(CONMON.0) && c.contains(&id));
    let ours = format!("-r {}", bin("runtime").display());
    assert!(
        conmon.iter().any(|c| text(&std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default()).replace('\0', " ").contains(&ours)),
        "conmon of {id} does not run {}: {}",
        bin("runtime").display(),
        describe(&conmon)
    );

    // podman exec (runtime exec): output, exit code, user, with and without -t.
    let out = p.podman(&["exec", &name, "sh", "-c", "echo hi; cat /proc/1/cmdline; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n/run/podman-init\0--\0sleep\x0060\0");
    assert_eq!(p.ok(&["exec", "-u", "1000", "-w", "/tmp", &name, "sh", "-c", "id -u; pwd"]), "1000\n/tmp\n");
    let tty = p.ok(&["exec", "-t", &name, "tty"]);
    assert!(tty.trim().starts_with("/dev/pts/"), "{tty:?}");

    // pause/unpause (runtime pause/resume).
    p.ok(&["pause", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "paused");
    assert_eq!(our_state(&id).expect("state")["status"], "paused");
    p.ok(&["unpause", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");

    // podman stop: SIGTERM through our init to sleep (143).
    p.ok(&["stop", "--time", "10", &name]);
    assert_eq!(p.inspect(&name, "{{.State.ExitCode}}"), "143");
    p.ok(&["rm", &name]);
    assert!(wait_until(Duration::from_secs(10), || our_state(&id).is_none()), "our runtime's state of {id} is left after podman rm");

    // podman kill (SIGKILL: 137) and rm -f of a running container.
    let out = p.run(&["-d"], &["sleep", "60"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let killed = text(&out.stdout).trim().to_string();
    p.ok(&["kill", &killed]);
    assert!(
        wait_until(Duration::from_secs(15), || p.inspect(&killed, "{{.State.Status}}") == "exited"),
        "not exited after podman kill"
    );
    assert_eq!(p.inspect(&killed, "{{.State.ExitCode}}"), "137");
    p.ok(&["rm", &killed]);
    let out = p.run(&["-d"], &["sleep", "60"]);
    let removed = text(&out.stdout).trim().to_string();
    p.ok(&["rm", "--force", "--time", "0", &removed]);
    assert!(p.ok(&["ps", "--all", "--quiet"]).trim().is_empty());
    for id in [&killed, &removed] {
        assert!(wait_until(Duration::from_secs(10), || our_state(id).is_none()), "our runtime's state of {id} is left");
    }
    p.stop();
}
