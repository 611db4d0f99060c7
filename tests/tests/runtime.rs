//! The runtime's lifecycle (runtime.md) and process features (config.md),
//! through the dist binary, asserted from inside the container.

use serde_json::json;
use skiff_tests::bundle::{cgroup_dirs, Bundle};
use skiff_tests::{text, wait_until};
use std::time::Duration;

fn stdout_of(b: &Bundle) -> String {
    let out = b.run();
    assert!(out.status.success(), "run failed ({:?}): {}", out.status, text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn run_passes_the_exit_code_and_cleans_up() {
    let mut b = Bundle::new("exit");
    b.sh("exit 3");
    let out = b.run();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(b.status(), "absent");
    assert!(cgroup_dirs(&format!("/skiff-test/{}", b.id)).is_empty(), "cgroup left behind");
    // PID 1 of a pid namespace ignores signals it has no handler for, even
    // SIGKILL from inside: death by signal is checked through `kill` below.
    b.sh("exit 255");
    assert_eq!(b.run().status.code(), Some(255));
}

#[test]
fn lifecycle_create_start_kill_delete() {
    let mut b = Bundle::new("life");
    b.args(&["sleep", "30"]);
    let out = b.create();
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let st = b.state().expect("state after create");
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], json!(b.id));
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(st["bundle"], json!(b.path()));

    let again = b.create();
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));

    let out = b.rt_detached(&["start", &b.id]);
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    assert_eq!(b.status(), "running");
    let out = b.rt(&["start", &b.id]);
    assert!(!out.status.success(), "start of a running container must fail");

    let out = b.rt(&["delete", &b.id]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not stopped"), "{}", text(&out.stderr));

    let out = b.rt(&["kill", &b.id, "KILL"]);
    assert!(out.status.success(), "kill: {}", text(&out.stderr));
    assert!(wait_until(Duration::from_secs(10), || b.status() == "stopped"), "status {}", b.status());
    let out = b.rt(&["kill", &b.id, "TERM"]);
    assert!(!out.status.success(), "kill of a stopped container must fail");

    let out = b.rt(&["delete", &b.id]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    assert_eq!(b.status(), "absent");
    assert!(cgroup_dirs(&format!("/skiff-test/{}", b.id)).is_empty(), "cgroup left behind");
}

#[test]
fn delete_force_kills_a_running_container() {
    let mut b = Bundle::new("force");
    b.args(&["sleep", "30"]);
    let bundle = b.path().to_string_lossy().into_owned();
    let out = b.rt_detached(&["run", "-d", "--bundle", &bundle, &b.id]);
    assert!(out.status.success(), "run -d: {}", text(&out.stderr));
    assert_eq!(b.status(), "running");
    let out = b.rt(&["delete", "--force", &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(b.status(), "absent");
}

#[test]
fn errors_name_the_problem_and_leave_nothing() {
    let b = Bundle::new("errs");
    let out = b.rt(&["state", "no-such-container"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("does not exist"), "{}", text(&out.stderr));
    let out = b.rt(&["start", "no-such-container"]);
    assert!(!out.status.success());

    std::fs::write(b.path().join("config.json"), "{ nope").unwrap();
    let bundle = b.path().to_string_lossy().into_owned();
    let mut c = std::process::Command::new(skiff_tests::bin("runtime"));
    c.arg("--root").arg(b.state_root()).args(["create", "--bundle", &bundle, &b.id]);
    let out = skiff_tests::run(&mut c, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("config.json"), "{}", text(&out.stderr));
    assert!(!b.state_root().join(&b.id).exists(), "state left behind");
}

#[test]
fn missing_rootfs_and_missing_program_fail_create() {
    let mut b = Bundle::new("missing");
    b.config["root"]["path"] = json!("/nonexistent/rootfs");
    let out = b.create();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("rootfs"), "{}", text(&out.stderr));

    let mut b = Bundle::new("noprog");
    b.args(&["/no/such/program"]);
    let out = b.create();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/no/such/program"), "{}", text(&out.stderr));
    assert_eq!(b.status(), "absent");
    assert!(cgroup_dirs(&format!("/skiff-test/{}", b.id)).is_empty(), "cgroup left behind");
}

#[test]
fn failing_hook_fails_create_and_leaves_nothing() {
    let mut b = Bundle::new("hook");
    b.args(&["true"]);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    let out = b.create();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("createRuntime hook /bin/false"), "{}", text(&out.stderr));
    assert_eq!(b.status(), "absent");
    assert!(!b.state_root().join(&b.id).exists());
    assert!(cgroup_dirs(&format!("/skiff-test/{}", b.id)).is_empty(), "cgroup left behind");
}

#[test]
fn hooks_get_the_state_on_stdin() {
    let mut b = Bundle::new("hookstate");
    let out = b.path().join("hook.out");
    b.args(&["true"]);
    let script = format!("cat > {0}; echo >> {0}", out.display());
    b.config["hooks"] = json!({
        "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo stopped >> {}", out.display())]}]
    });
    let r = b.run();
    assert!(r.status.success(), "{}", text(&r.stderr));
    let got = std::fs::read_to_string(&out).unwrap();
    let first = got.lines().next().unwrap();
    let st: serde_json::Value = serde_json::from_str(first).expect("state JSON on the hook's stdin");
    assert_eq!(st["id"], json!(b.id));
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert!(got.contains("stopped"), "poststop hook did not run: {got}");
}

#[test]
fn process_is_pid_1_with_hostname_env_and_cwd() {
    let mut b = Bundle::new("proc");
    b.sh("echo pid=$$; echo host=$(hostname); echo foo=$FOO; echo cwd=$(pwd)");
    b.config["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FOO=bar baz"]);
    b.config["process"]["cwd"] = json!("/tmp");
    b.config["hostname"] = json!("skiffhost");
    let out = stdout_of(&b);
    for want in ["pid=1", "host=skiffhost", "foo=bar baz", "cwd=/tmp"] {
        assert!(out.lines().any(|l| l == want), "missing {want}: {out}");
    }
}

#[test]
fn user_groups_umask_and_no_new_privs() {
    let mut b = Bundle::new("user");
    b.sh("id -u; id -g; id -G; umask; grep NoNewPrivs /proc/self/status");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [1002, 1003], "umask": 23});
    b.config["process"]["noNewPrivileges"] = json!(true);
    let out = stdout_of(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1001", "{out}");
    assert!(lines[2].contains("1002") && lines[2].contains("1003"), "{out}");
    assert_eq!(lines[3], "0027", "{out}");
    assert!(lines[4].ends_with('1'), "{out}");
}

fn cap_field(out: &str, key: &str) -> u64 {
    let v = out.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key} in {out}"));
    u64::from_str_radix(v.trim(), 16).unwrap()
}

#[test]
fn capability_sets_are_applied() {
    let mut b = Bundle::new("caps");
    b.args(&["cat", "/proc/self/status"]);
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"]
    });
    let out = stdout_of(&b);
    let (kill, nbs, chown) = (1u64 << 5, 1u64 << 10, 1u64);
    assert_eq!(cap_field(&out, "CapBnd:"), kill | nbs | chown);
    assert_eq!(cap_field(&out, "CapEff:"), kill | nbs);
    assert_eq!(cap_field(&out, "CapPrm:"), kill | nbs);
    assert_eq!(cap_field(&out, "CapInh:"), kill);
    assert_eq!(cap_field(&out, "CapAmb:"), kill);
}

#[test]
fn rlimits_and_oom_score_adj() {
    let mut b = Bundle::new("rlimit");
    b.sh("ulimit -n; cat /proc/self/oom_score_adj");
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}]);
    b.config["process"]["oomScoreAdj"] = json!(123);
    let out = stdout_of(&b);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["512", "123"], "{out}");
}

#[test]
fn namespaces_are_new_or_joined_by_path() {
    let host_uts = std::fs::read_link("/proc/self/ns/uts").unwrap();
    // A network namespace this test owns, held by a sleeping process.
    let mut holder = std::process::Command::new("unshare").args(["--net", "sleep", "60"]).spawn().expect("unshare --net");
    let ns_path = format!("/proc/{}/ns/net", holder.id());
    assert!(wait_until(Duration::from_secs(5), || std::fs::read_link(&ns_path).ok() != std::fs::read_link("/proc/self/ns/net").ok()));
    let mut b = Bundle::new("ns");
    b.sh("readlink /proc/self/ns/net; readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc");
    // Join the host's network namespace by path; the rest are new.
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    for n in ns.iter_mut() {
        if n["type"] == "network" {
            n["path"] = json!(ns_path);
        }
    }
    let out = stdout_of(&b);
    let lines: Vec<&str> = out.lines().collect();
    let joined = std::fs::read_link(&ns_path).unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(lines[0], joined.to_string_lossy(), "{out}");
    assert_ne!(lines[1], host_uts.to_string_lossy(), "{out}");
    assert_ne!(lines[2], std::fs::read_link("/proc/self/ns/ipc").unwrap().to_string_lossy(), "{out}");
}

#[test]
fn terminal_goes_through_the_console_socket() {
    let mut b = Bundle::new("tty");
    b.sh("tty; echo rows=$(stty size)");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    let sock = b.path().join("console.sock");
    let bundle = b.path().to_string_lossy().into_owned();
    let s = sock.to_string_lossy().into_owned();
    let handle = skiff_tests::pty::console_reader(&sock);
    let out = b.rt(&["run", "--console-socket", &s, "--bundle", &bundle, &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = handle.join().unwrap();
    assert!(got.contains("/dev/pts/"), "{got}");
    assert!(got.contains("rows=33 101"), "{got}");
}

#[test]
fn cgroup_limits_are_applied_while_running() {
    let mut b = Bundle::new("cg");
    b.args(&["sleep", "30"]);
    b.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 42}});
    let out = b.create();
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let pid = b.state().unwrap()["pid"].as_i64().unwrap();
    let path = format!("/skiff-test/{}", b.id);
    let mem = std::path::Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
    let pids = std::path::Path::new("/sys/fs/cgroup/pids").join(path.trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap().trim(), "67108864");
    assert_eq!(std::fs::read_to_string(pids.join("pids.max")).unwrap().trim(), "42");
    let procs = std::fs::read_to_string(mem.join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == pid.to_string()), "container pid {pid} not in its cgroup: {procs}");
    // in every hierarchy, v1 (joined by the process itself) and cgroup2 (born there by clone3)
    let mine = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in mine.lines() {
        assert!(line.ends_with(&format!(":{path}")), "container pid {pid} is not in {path} in every hierarchy:\n{mine}");
    }
    assert!(mine.lines().any(|l| l.starts_with("0::")), "no cgroup2 line: {mine}");
    let out = b.rt(&["delete", &b.id]);
    assert!(out.status.success(), "delete of a created container: {}", text(&out.stderr));
    assert!(cgroup_dirs(&path).is_empty(), "cgroup left behind");
}

#[test]
fn list_state_and_features() {
    let mut b = Bundle::new("list");
    b.args(&["sleep", "30"]);
    assert!(b.create().status.success());
    let out = b.rt(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list json");
    assert_eq!(v[0]["id"], json!(b.id));
    assert_eq!(v[0]["status"], "created");
    let out = b.rt(&["list", "-q"]);
    assert_eq!(text(&out.stdout).trim(), b.id);
    let out = b.rt(&["features"]);
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).expect("features json");
    assert!(f["linux"]["namespaces"].as_array().unwrap().contains(&json!("pid")));
    let out = b.rt(&["--version"]);
    assert!(text(&out.stdout).contains("runtime (skiff) version"));
}

#[test]
fn log_file_in_json_names_the_error() {
    let b = Bundle::new("log");
    let log = b.path().join("log.json");
    let l = log.to_string_lossy().into_owned();
    let out = b.rt(&["--log", &l, "--log-format", "json", "start", "nope"]);
    assert!(!out.status.success());
    let line = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("nope"), "{line}");
    assert!(v["time"].as_str().is_some());
}

/// CVE-2019-5736 class: what runs in the container before exec is never
/// the writable host binary. As root on this kernel: the binary seen
/// through a private read-only overlayfs (runc 1.2's way; rootless runs,
/// in runtime_rootless, use the sealed memfd copy).
#[test]
fn container_process_runs_from_a_sealed_copy() {
    let mut b = Bundle::new("sealed");
    b.args(&["sleep", "30"]);
    let out = b.create();
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let pid = b.state().unwrap()["pid"].as_i64().unwrap();
    let exe = format!("/proc/{pid}/exe");
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    let c = std::ffi::CString::new(exe.clone()).unwrap();
    // SAFETY: statfs into a zeroed struct.
    assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut fs) }, 0);
    assert_eq!(fs.f_type as i64, 0x794c_7630, "the container process does not run from an overlayfs: {:?}", std::fs::read_link(&exe));
    use std::os::unix::fs::MetadataExt;
    let (ours, host) = (std::fs::metadata(&exe).unwrap(), std::fs::metadata(skiff_tests::bin("runtime")).unwrap());
    assert_ne!((ours.dev(), ours.ino()), (host.dev(), host.ino()), "the container process runs the host binary itself");
    // Nothing can write it.
    let w = std::fs::OpenOptions::new().append(true).open(&exe);
    assert_eq!(w.err().and_then(|e| e.raw_os_error()), Some(libc::EROFS), "the runtime's binary is writable from the container process");
}

/// CVE-2024-21626 class: no fd of the runtime's caller (here a host
/// directory on fd 7) reaches the container's program.
#[test]
fn no_host_fd_reaches_the_container() {
    use std::os::unix::process::CommandExt;
    let mut b = Bundle::new("fds");
    b.args(&["ls", "/proc/self/fd"]);
    let bundle = b.path().to_string_lossy().into_owned();
    let mut c = b.cmd(&["run", "--bundle", &bundle, &b.id]);
    // SAFETY: open/dup2 between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let fd = libc::open(c"/sys/fs/cgroup".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            if fd >= 0 && fd != 7 {
                libc::dup2(fd, 7);
            }
            Ok(())
        });
    }
    let out = skiff_tests::run(&mut c, Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fds: Vec<String> = text(&out.stdout).split_whitespace().map(String::from).collect();
    // 0-2 and the directory fd ls itself opened.
    assert_eq!(fds, ["0", "1", "2", "3"], "fds seen in the container");
}
