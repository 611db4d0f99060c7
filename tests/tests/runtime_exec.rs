//! The runtime's commands on a running container (issue 5): exec, ps,
//! update, events, pause/resume, through the dist binary, asserted from
//! inside the container and from the host's cgroup files.

use serde_json::json;
use skiff_tests::bundle::{cgroup_dirs, Bundle};
use skiff_tests::{text, wait_child, wait_until};
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// A running container (`sleep 60` as PID 1) and its host pid.
fn running(tag: &str, tweak: impl FnOnce(&mut Bundle)) -> (Bundle, i64) {
    let mut b = Bundle::new(tag);
    b.args(&["sleep", "60"]);
    tweak(&mut b);
    let bundle = b.path().to_string_lossy().into_owned();
    let out = b.rt_detached(&["run", "-d", "--bundle", &bundle, &b.id]);
    assert!(out.status.success(), "run -d: {}", text(&out.stderr));
    let pid = b.state().expect("state")["pid"].as_i64().expect("pid");
    (b, pid)
}

/// `runtime exec ARGS...` in the foreground; fails unless it exits 0; stdout.
fn exec_ok(b: &Bundle, args: &[&str]) -> String {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let out = b.rt(&all);
    assert!(out.status.success(), "exec {args:?} failed ({:?}): {}", out.status, text(&out.stderr));
    text(&out.stdout)
}

fn host_cgroup(b: &Bundle, controller: &str) -> PathBuf {
    PathBuf::from("/sys/fs/cgroup").join(controller).join(format!("skiff-test/{}", b.id))
}

#[test]
fn exec_joins_namespaces_and_mounts_and_passes_the_exit_code() {
    let (b, pid) = running("exns", |b| {
        b.config["hostname"] = json!("exechost");
    });
    let out = exec_ok(
        &b,
        &[&b.id, "sh", "-c", "hostname; cat /proc/1/cmdline; echo; for n in mnt net ipc uts pid cgroup; do readlink /proc/self/ns/$n; done"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "exechost", "{out}");
    assert_eq!(lines[1], "sleep\u{0}60\u{0}", "PID 1 seen from the exec is the container's: {out}");
    for (i, n) in ["mnt", "net", "ipc", "uts", "pid", "cgroup"].iter().enumerate() {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(lines[2 + i], theirs.to_string_lossy(), "{n} namespace: {out}");
        let ours = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        assert_ne!(theirs, ours, "the container has its own {n} namespace");
    }
    // The same mounts as the container's process, seen from the same root
    // (mount ids and points: cgroup roots differ by the reader's cgroup ns).
    let ids_and_points = |info: &str| -> Vec<(String, String)> {
        info.lines().map(|l| l.split(' ').collect::<Vec<_>>()).map(|f| (f[0].to_string(), f[4].to_string())).collect()
    };
    let mounts = exec_ok(&b, &[&b.id, "cat", "/proc/self/mountinfo"]);
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert_eq!(ids_and_points(&mounts), ids_and_points(&theirs), "{mounts}");
    assert!(mounts.lines().next().is_some_and(|l| l.split(' ').nth(4) == Some("/")), "{mounts}");

    let out = b.rt(&["exec", &b.id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let out = b.rt(&["exec", &b.id, "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(143), "death by SIGTERM: {}", text(&out.stderr));
    let out = b.rt(&["exec", &b.id, "no-such-program"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no-such-program"), "{}", text(&out.stderr));
}

#[test]
fn exec_joins_the_containers_user_namespace_first() {
    let (b, pid) = running("exuser", |b| {
        b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
        b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    let out = exec_ok(&b, &["--user", "1000:1000", &b.id, "sh", "-c", "readlink /proc/self/ns/user; id -u; cat /proc/self/uid_map"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap().to_string_lossy(), "{out}");
    assert_eq!(lines[1], "1000", "{out}");
    assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["0", "100000", "65536"], "{out}");
    // On the host the process runs as the mapped uid.
    let pid_file = b.path().join("exec.pid");
    let out = b.rt_detached(&["exec", "-d", "--pid-file", pid_file.to_str().unwrap(), &b.id, "sleep", "30"]);
    assert!(out.status.success(), "exec -d: {}", text(&out.stderr));
    let epid = std::fs::read_to_string(&pid_file).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", epid.trim())).unwrap();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
    assert_eq!(uid.split_whitespace().next(), Some("100000"), "{status}");
}

#[test]
fn exec_env_cwd_user_caps_and_no_new_privs_flags() {
    let (b, _) = running("exflags", |b| {
        b.config["process"]["env"] = json!(["PATH=/bin:/usr/bin", "BASE=1", "FOO=old"]);
        b.config["process"]["noNewPrivileges"] = json!(false);
        b.config["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]
        });
    });
    let out = exec_ok(
        &b,
        &[
            "--env", "FOO=new", "-e", "BAR=2", "--cwd", "/tmp", "--user", "1000:1001", "--additional-gids", "1002",
            &b.id, "sh", "-c", "echo $BASE $FOO $BAR; pwd; id -u; id -g; id -G; echo HOME=$HOME",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1 new 2", "config env plus --env, later wins: {out}");
    assert_eq!(lines[1], "/tmp", "{out}");
    assert_eq!(lines[2], "1000", "{out}");
    assert_eq!(lines[3], "1001", "{out}");
    assert!(lines[4].split(' ').any(|g| g == "1002"), "{out}");
    assert!(lines[5].starts_with("HOME=/"), "{out}");

    // The container's capabilities, plus --cap; no_new_privs on request.
    let status = exec_ok(&b, &["--cap", "CAP_NET_ADMIN", "--no-new-privs", &b.id, "cat", "/proc/self/status"]);
    let field = |k: &str| {
        let v = status.lines().find_map(|l| l.strip_prefix(k)).unwrap_or_else(|| panic!("no {k}: {status}"));
        u64::from_str_radix(v.trim(), 16).unwrap()
    };
    assert_eq!(field("CapBnd:"), (1 << 5) | (1 << 12));
    assert_eq!(field("CapEff:"), (1 << 5) | (1 << 12));
    assert_eq!(field("NoNewPrivs:"), 1);
    let plain = exec_ok(&b, &[&b.id, "grep", "-E", "CapEff|NoNewPrivs", "/proc/self/status"]);
    assert!(plain.contains("0000000000000020") && plain.contains("NoNewPrivs:\t0"), "{plain}");

    // LSM labels this host cannot apply are refused, naming the LSM.
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y");
    if !apparmor {
        let out = b.rt(&["exec", "--apparmor", "some-profile", &b.id, "true"]);
        assert!(!out.status.success() && text(&out.stderr).contains("AppArmor"), "{}", text(&out.stderr));
    }
    let out = b.rt(&["exec", "--process-label", "system_u:system_r:container_t:s0", &b.id, "true"]);
    assert!(!out.status.success() && text(&out.stderr).contains("SELinux"), "{}", text(&out.stderr));
}

#[test]
fn exec_applies_the_containers_seccomp_profile() {
    let (b, _) = running("exsec", |b| {
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let out = b.rt(&["exec", &b.id, "sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x"]);
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("Seccomp:\t2"), "{}", text(&out.stdout));
    // EPERM from the filter, not EROFS from the read-only rootfs.
    assert!(text(&out.stderr).contains("Operation not permitted"), "{}", text(&out.stderr));
}

#[test]
fn foreground_exec_forwards_signals_and_leaks_no_fds() {
    let (b, _) = running("exsig", |_| {});
    // Only stdio reaches the program (the runtime's fds are close-on-exec).
    let fds = exec_ok(&b, &[&b.id, "sh", "-c", "ls /proc/$$/fd; true"]);
    assert_eq!(fds.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2"], "{fds}");

    let err = b.path().join("exec.err");
    let mut child = b
        .cmd(&["exec", &b.id, "sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut pids = String::new();
    let started = wait_until(Duration::from_secs(10), || {
        pids = text(&b.rt(&["ps", "--format", "json", &b.id]).stdout);
        serde_json::from_str::<Vec<i64>>(&pids).is_ok_and(|p| p.len() == 2)
    });
    assert!(started, "the exec'd sleep never showed up in the cgroup: {pids} {}", std::fs::read_to_string(&err).unwrap());
    // SAFETY: plain kill(2) of our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = wait_child(&mut child, Duration::from_secs(10));
    assert_eq!(st.code(), Some(143), "SIGTERM forwarded to the process: {st}");
}

#[test]
fn exec_process_json_as_containerd_sends_it() {
    let (b, _) = running("exproc", |_| {});
    let p = b.path().join("process.json");
    let process = json!({
        "terminal": false,
        "user": {"uid": 1234, "gid": 1234},
        "args": ["sh", "-c", "echo $WHO; pwd; id -u; exit 5"],
        "env": ["PATH=/bin", "WHO=proc-json"],
        "cwd": "/etc",
        "capabilities": {"bounding": ["CAP_CHOWN"], "effective": [], "permitted": []},
        "noNewPrivileges": true
    });
    std::fs::write(&p, serde_json::to_vec(&process).unwrap()).unwrap();
    let out = b.rt(&["exec", "--process", p.to_str().unwrap(), &b.id]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "proc-json\n/etc\n1234\n");
}

#[test]
fn exec_detached_writes_the_pid_file_and_joins_the_cgroup() {
    let (b, pid) = running("exdet", |_| {});
    let pid_file = b.path().join("exec.pid");
    let out = b.rt_detached(&["exec", "-d", "--pid-file", pid_file.to_str().unwrap(), &b.id, "sleep", "60"]);
    assert!(out.status.success(), "exec -d: {}", text(&out.stderr));
    let epid: i64 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert_ne!(epid, pid);
    let procs = std::fs::read_to_string(host_cgroup(&b, "memory").join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == epid.to_string()), "exec'd pid {epid} not in the cgroup: {procs}");
    for n in ["pid", "mnt", "net"] {
        assert_eq!(
            std::fs::read_link(format!("/proc/{epid}/ns/{n}")).unwrap(),
            std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap(),
            "{n} namespace of the detached process"
        );
    }
    let ps = b.rt(&["ps", "--format", "json", &b.id]);
    let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).expect("ps json");
    assert!(pids.contains(&pid) && pids.contains(&epid), "{pids:?}");
    // delete --force takes the exec'd process down with the container.
    let out = b.rt(&["delete", "--force", &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(wait_until(Duration::from_secs(10), || !std::path::Path::new(&format!("/proc/{epid}")).exists()
        || std::fs::read_to_string(format!("/proc/{epid}/stat")).is_ok_and(|s| s.contains(") Z "))));
    assert!(cgroup_dirs(&format!("/skiff-test/{}", b.id)).is_empty(), "cgroup left behind");
}

#[test]
fn exec_tty_goes_through_the_console_socket() {
    let (b, _) = running("extty", |_| {});
    let sock = b.path().join("console.sock");
    let reader = skiff_tests::pty::console_reader(&sock);
    let out = b.rt(&["exec", "-t", "--console-socket", sock.to_str().unwrap(), &b.id, "sh", "-c", "tty; echo in-a-tty; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let got = reader.join().unwrap();
    assert!(got.contains("/dev/pts/") && got.contains("in-a-tty"), "{got}");

    let out = b.rt(&["exec", "-t", &b.id, "true"]);
    assert!(!out.status.success(), "a tty needs --console-socket");
    assert!(text(&out.stderr).contains("console-socket"), "{}", text(&out.stderr));
}

#[test]
fn exec_into_a_stopped_or_paused_container_fails() {
    let (b, _) = running("expause", |_| {});
    let out = b.rt(&["pause", &b.id]);
    assert!(out.status.success(), "pause: {}", text(&out.stderr));
    assert_eq!(b.status(), "paused");
    let out = b.rt(&["exec", &b.id, "true"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("paused"), "{}", text(&out.stderr));
    let out = b.rt(&["resume", &b.id]);
    assert!(out.status.success(), "resume: {}", text(&out.stderr));
    assert_eq!(b.status(), "running");
    exec_ok(&b, &[&b.id, "true"]);

    let out = b.rt(&["kill", &b.id, "KILL"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(wait_until(Duration::from_secs(10), || b.status() == "stopped"));
    let out = b.rt(&["exec", &b.id, "true"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("stopped"), "{}", text(&out.stderr));
    let out = b.rt(&["exec", "no-such-container", "true"]);
    assert!(text(&out.stderr).contains("does not exist"), "{}", text(&out.stderr));
}

#[test]
fn ps_lists_the_containers_processes() {
    let (b, pid) = running("ps", |_| {});
    let out = b.rt(&["ps", "--format", "json", &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).expect("ps json");
    assert_eq!(pids, [pid]);
    let out = b.rt(&["ps", &b.id, "-o", "pid,comm"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "header and the container's process: {table}");
    assert!(lines[0].contains("PID"));
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), [pid.to_string().as_str(), "sleep"], "{table}");
}

#[test]
fn update_changes_limits_from_flags_and_resources_json() {
    let (b, _) = running("upd", |b| {
        b.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
    });
    let mem = host_cgroup(&b, "memory").join("memory.limit_in_bytes");
    let pids = host_cgroup(&b, "pids").join("pids.max");
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap().trim().to_string();
    assert_eq!(read(&mem), "67108864");
    let out = b.rt(&["update", "--memory", "32m", "--pids-limit", "40", &b.id]);
    assert!(out.status.success(), "update: {}", text(&out.stderr));
    assert_eq!(read(&mem), "33554432");
    assert_eq!(read(&pids), "40");

    // Docker (through containerd's shim) sends LinuxResources on stdin.
    let mut child = b
        .cmd(&["update", "--resources", "-", &b.id])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"memory":{"limit":100663296,"reservation":0},"cpu":{"shares":512,"quota":0,"period":0},"blockIO":{"weight":0}}"#)
        .unwrap();
    let st = wait_child(&mut child, Duration::from_secs(30));
    assert!(st.success(), "update --resources -");
    assert_eq!(read(&mem), "100663296");
    assert_eq!(read(&host_cgroup(&b, "cpu").join("cpu.shares")), "512");
    assert_eq!(read(&pids), "40", "what the JSON leaves out stays");
}

#[test]
fn events_report_cgroup_stats() {
    let (b, _) = running("ev", |b| {
        b.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
    });
    let out = b.rt(&["events", "--stats", &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let text_out = text(&out.stdout);
    assert_eq!(text_out.lines().count(), 1, "{text_out}");
    let e: serde_json::Value = serde_json::from_str(&text_out).unwrap();
    assert_eq!(e["type"], "stats");
    assert_eq!(e["id"], json!(b.id));
    assert!(e["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["data"]["memory"]["usage"]["limit"], 67108864);
    assert_eq!(e["data"]["pids"]["current"], 1);
    assert_eq!(e["data"]["pids"]["limit"], 50);

    // The stream: stats every interval, ending when the container stops.
    let log = b.path().join("events.out");
    let mut child = b
        .cmd(&["events", "--interval", "100ms", &b.id])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = || std::fs::read_to_string(&log).unwrap_or_default().lines().count();
    assert!(wait_until(Duration::from_secs(10), || lines() >= 2), "no stream of stats");
    assert!(b.rt(&["kill", &b.id, "KILL"]).status.success());
    let st = wait_child(&mut child, Duration::from_secs(10));
    assert!(st.success(), "events ends when the container stops: {st}");
    for l in std::fs::read_to_string(&log).unwrap().lines() {
        let e: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(e["type"], "stats", "{l}");
    }
    let out = b.rt(&["events", "--stats", &b.id]);
    assert!(!out.status.success(), "stats of a stopped container");
}
