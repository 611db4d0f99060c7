//! engine's container commands end to end through the dist binaries:
//! engine -> shim -> runtime -> init, with proxy for -p.

use skiff_tests::engine::{fetch, Engine, T};
use skiff_tests::{free_tcp_port, run, text, wait_until};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

fn mounted_under(p: &Path) -> Vec<String> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = p.to_string_lossy().into_owned();
    mi.lines().filter(|l| l.contains(&p)).map(String::from).collect()
}

fn cgroup_gone(id: &str) -> bool {
    skiff_tests::bundle::cgroup_dirs(&format!("/skiff/{id}")).is_empty()
}

/// The demo: httpd published with -p behind --init, fetched on loopback,
/// stopped through init (143), removed without leftovers.
#[test]
fn demo_httpd_behind_publish_with_init() {
    let e = Engine::new("demo");
    let port = free_tcp_port();
    let name = format!("web{}", std::process::id());
    let id = e.ok(&["run", "-d", "--init", "-p", &format!("127.0.0.1:{port}:80"), "--name", &name, "busybox", "httpd", "-f", "-p", "80", "-h", "/var/www"]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the id: {id}");
    let page = fetch("127.0.0.1", port).expect("page through the published port");
    assert!(page.contains("hello from skiff busybox"), "{page}");
    let ps = e.ok(&["ps"]);
    assert!(ps.contains(&name) && ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    let info = e.inspect(&name);
    assert_eq!(info["State"]["Status"], "running");
    assert_eq!(info["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"], port.to_string());
    assert_eq!(e.ok(&["port", &name]).trim(), format!("80/tcp -> 127.0.0.1:{port}"));
    // PID 1 is our init, with httpd as its child.
    let pid = info["State"]["Pid"].as_i64().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.to_string_lossy().ends_with("/init"), "pid 1 is {exe:?}");

    let t = Instant::now();
    e.ok(&["stop", &name]);
    assert!(t.elapsed() < Duration::from_secs(5), "stop took {:?}", t.elapsed());
    assert_eq!(e.inspect(&name)["State"]["ExitCode"], 143);
    assert!(e.ok(&["ps", "-a"]).contains("Exited (143)"));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the proxy still listens after stop");
    e.ok(&["rm", &name]);
    assert!(!e.ok(&["ps", "-a"]).contains(&name));
    assert!(mounted_under(&e.root()).is_empty(), "mounts left: {:?}", mounted_under(&e.root()));
    assert!(cgroup_gone(&id), "cgroup left for {id}");
    assert!(!e.root().join("containers").join(&id).exists());
}

#[test]
fn foreground_run_streams_and_exits_with_the_code() {
    let e = Engine::new("fg");
    let out = e.run(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err\n"));
    assert!(text(&e.run(&["ps", "-aq"]).stdout).trim().is_empty(), "--rm left a container");
    assert!(mounted_under(&e.root()).is_empty());
}

#[test]
fn docker_exit_codes_for_errors() {
    let e = Engine::new("codes");
    let out = e.run(&["run", "--rm", "busybox", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    let out = e.run(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    // --pull never: no registry is asked (tests talk to loopback only).
    let out = e.run(&["run", "--rm", "--pull", "never", "nosuchimage", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("Unable to find image 'nosuchimage' locally"), "{}", text(&out.stderr));
    let out = e.run(&["run", "--rm", "--pull", "sometimes", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("invalid pull option: 'sometimes'"), "{}", text(&out.stderr));
    let out = e.run(&["run", "--rm", "-p", "99999:80", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("invalid port specification"), "{}", text(&out.stderr));
    let out = e.run(&["run", "--rm", "-m", "lots", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("invalid size"), "{}", text(&out.stderr));
    let out = e.run(&["run", "--bogus", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("unknown flag: --bogus"));
    e.ok(&["run", "-d", "--name", "taken", "busybox", "sleep", "30"]);
    let out = e.run(&["run", "-d", "--name", "taken", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("already in use"), "{}", text(&out.stderr));
    // A host port in use is named.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = held.local_addr().unwrap().port();
    let out = e.run(&["run", "-d", "-p", &format!("127.0.0.1:{p}:80"), "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains(&format!("127.0.0.1:{p}")), "{}", text(&out.stderr));
    let out = e.run(&["rm", "taken"]);
    assert!(!out.status.success(), "rm of a running container needs -f");
    e.ok(&["rm", "-f", "taken"]);
}

#[test]
fn env_workdir_user_hostname_and_volumes() {
    let e = Engine::new("opts");
    let vol = e.dir.path().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("in.txt"), "from host").unwrap();
    let v = format!("{}:/data", vol.display());
    let out = e.ok(&[
        "run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000", "--hostname", "boat", "-v", &v, "busybox", "sh", "-c",
        "echo $FOO; pwd; id -u; hostname; cat /data/in.txt; echo; echo from-ctr > /data/out.txt 2>/dev/null || echo nowrite",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..5], ["bar", "/tmp", "1000", "boat", "from host"], "{out}");
    // uid 1000 cannot write the root-owned dir: docker's behaviour too.
    assert_eq!(lines[5], "nowrite", "{out}");
    e.ok(&["run", "--rm", "-v", &v, "busybox", "sh", "-c", "echo from-ctr > /data/out.txt"]);
    assert_eq!(std::fs::read_to_string(vol.join("out.txt")).unwrap(), "from-ctr\n");
    let ro = format!("{}:/data:ro,z", vol.display());
    let out = e.run(&["run", "--rm", "-v", &ro, "busybox", "sh", "-c", "echo x > /data/y"]);
    assert_ne!(out.status.code(), Some(0), "write to a :ro volume succeeded");
    let out = e.run(&["run", "--rm", "--read-only", "busybox", "sh", "-c", "echo x > /file"]);
    assert_ne!(out.status.code(), Some(0), "write to a --read-only root succeeded");
    let bad = e.run(&["run", "--rm", "-v", &format!("{}:/data:rx", vol.display()), "busybox", "true"]);
    assert!(bad.status.code() == Some(125) && text(&bad.stderr).contains("unknown mode \"rx\""), "{}", text(&bad.stderr));
    e.ok(&["run", "--rm", "-v", &format!("{}:/data:rw,rslave", vol.display()), "busybox", "test", "-f", "/data/in.txt"]);
    // A missing host path is made, as a directory (docker's -v).
    let made = e.dir.path().join("made/on/demand");
    e.ok(&["run", "--rm", "-v", &format!("{}:/m", made.display()), "busybox", "sh", "-c", "echo in > /m/f"]);
    assert_eq!(std::fs::read_to_string(made.join("f")).unwrap(), "in\n");
}

#[test]
fn memory_and_pids_limits_reach_the_cgroup() {
    let e = Engine::new("limits");
    let id = e.ok(&["run", "-d", "-m", "64m", "--pids-limit", "33", "busybox", "sleep", "30"]).trim().to_string();
    let mem = format!("/sys/fs/cgroup/memory/skiff/{id}/memory.limit_in_bytes");
    let pids = format!("/sys/fs/cgroup/pids/skiff/{id}/pids.max");
    assert_eq!(std::fs::read_to_string(mem).unwrap().trim(), (64u64 << 20).to_string());
    assert_eq!(std::fs::read_to_string(pids).unwrap().trim(), "33");
    e.ok(&["rm", "-f", &id]);
    assert!(cgroup_gone(&id));
}

#[test]
fn stop_kills_a_program_that_ignores_sigterm_after_the_timeout() {
    let e = Engine::new("stubborn");
    let id = e.ok(&["run", "-d", "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 1; done"]).trim().to_string();
    assert!(wait_until(Duration::from_secs(10), || e.inspect(&id)["State"]["Status"] == "running"));
    let t = Instant::now();
    e.ok(&["stop", "-t", "1", &id]);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(10), "stop took {took:?}");
    assert_eq!(e.inspect(&id)["State"]["ExitCode"], 137);
}

#[test]
fn logs_and_follow() {
    let e = Engine::new("logs");
    let id = e.ok(&["run", "-d", "busybox", "sh", "-c", "for i in 1 2 3; do echo line$i; echo err$i >&2; sleep 0.2; done"]).trim().to_string();
    let out = e.run(&["logs", "-f", &id]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "line1\nline2\nline3\n");
    assert_eq!(text(&out.stderr), "err1\nerr2\nerr3\n");
    let out = e.run(&["logs", "--tail", "2", &id]);
    let both = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(both.lines().count(), 2, "{both}");
    assert_eq!(e.ok(&["wait", &id]).trim(), "0");
    // Following across rotations: every line once, in order, although the
    // shim renames the file under the reader every dozen lines.
    let id = e.ok(&["run", "-d", "--network", "none", "--log-opt", "max-size=1k", "--log-opt", "max-file=50", "busybox", "sh", "-c", "i=0; while [ $i -lt 120 ]; do i=$((i+1)); echo rotating-line-$i; sleep 0.02; done"]).trim().to_string();
    let out = e.run(&["logs", "-f", &id]);
    let want: String = (1..=120).map(|i| format!("rotating-line-{i}\n")).collect();
    assert_eq!(text(&out.stdout), want);
    assert!(e.root().join("containers").join(&id).join("ctr.log.3").exists(), "the log did not rotate");
}

/// --log-driver none keeps no log on disk (flash) but attached output
/// still flows; local is json-file here; others are refused by name.
#[test]
fn log_drivers() {
    let e = Engine::new("logdrv");
    assert_eq!(e.ok(&["run", "--rm", "--network", "none", "--log-driver", "none", "busybox", "echo", "attached"]), "attached\n");
    let id = e.ok(&["run", "-d", "--network", "none", "--log-driver", "none", "busybox", "echo", "quiet"]).trim().to_string();
    assert_eq!(e.ok(&["wait", &id]).trim(), "0");
    let out = e.run(&["logs", &id]);
    assert!(!out.status.success() && text(&out.stderr).contains("configured logging driver does not support reading"), "{}", text(&out.stderr));
    assert!(!e.root().join("containers").join(&id).join("ctr.log").exists(), "a log was kept");
    assert_eq!(e.inspect(&id)["HostConfig"]["LogConfig"]["Type"], "none");
    let id = e.ok(&["run", "-d", "--network", "none", "--log-driver", "local", "busybox", "echo", "kept"]).trim().to_string();
    assert_eq!(e.ok(&["wait", &id]).trim(), "0");
    assert_eq!(e.ok(&["logs", &id]), "kept\n");
    let out = e.run(&["run", "--rm", "--log-driver", "syslog", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("logging driver \"syslog\" is not supported"), "{}", text(&out.stderr));
}

#[test]
fn restart_policy_on_failure_counts() {
    let e = Engine::new("restart");
    let dir = e.dir.path().join("count");
    std::fs::create_dir_all(&dir).unwrap();
    let v = format!("{}:/count", dir.display());
    let id = e.ok(&["run", "-d", "--restart", "on-failure:2", "-v", &v, "busybox", "sh", "-c", "echo x >> /count/runs; exit 3"]).trim().to_string();
    let runs = || std::fs::read_to_string(dir.join("runs")).unwrap_or_default().lines().count();
    assert!(wait_until(Duration::from_secs(30), || e.inspect(&id)["State"]["Status"] == "exited" && runs() == 3), "runs {}", runs());
    assert_eq!(e.inspect(&id)["State"]["ExitCode"], 3);
    assert_eq!(runs(), 3, "one run and two restarts");
}

#[test]
fn parallel_runs_get_distinct_names_and_ports() {
    let e = Engine::new("par");
    let mut ids = Vec::new();
    std::thread::scope(|sc| {
        let handles: Vec<_> = (0..20).map(|_| sc.spawn(|| run(&mut e.cmd(&["run", "-d", "-p", "127.0.0.1::80", "busybox", "sleep", "30"]), T))).collect();
        for h in handles {
            let out = h.join().unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
            ids.push(text(&out.stdout).trim().to_string());
        }
    });
    let mut names = std::collections::BTreeSet::new();
    let mut ports = std::collections::BTreeSet::new();
    for id in &ids {
        let i = e.inspect(id);
        names.insert(i["Name"].as_str().unwrap().to_string());
        ports.insert(i["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"].as_str().unwrap().to_string());
    }
    assert_eq!(names.len(), 20, "{names:?}");
    assert_eq!(ports.len(), 20, "{ports:?}");
    let addrs: std::collections::BTreeSet<String> = ids.iter().map(|id| e.ip_of(id)).collect();
    assert_eq!(addrs.len(), 20, "bridge addresses: {addrs:?}");
}

/// `run -it` through a pty pair: a shell with a terminal of our size,
/// input typed on the master, the exit code passed back.
#[test]
fn interactive_tty_run() {
    let e = Engine::new("tty");
    let mut pty = skiff_tests::pty::Pty::open(30, 100);
    let mut c = e.cmd(&["run", "-it", "--rm", "busybox", "sh"]);
    pty.attach(&mut c);
    let mut child = c.spawn().expect("spawn engine");
    let shown = pty.collect();
    pty.master.write_all(b"echo hi-$((2+3)); stty size; tty\r").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    pty.master.write_all(b"exit 5\r").unwrap();
    let st = skiff_tests::wait_child(&mut child, Duration::from_secs(30));
    drop(pty);
    let out = shown.join().unwrap();
    assert_eq!(st.code(), Some(5), "{out}");
    assert!(out.contains("hi-5"), "{out}");
    assert!(out.contains("30 100"), "terminal size not passed: {out}");
    assert!(out.contains("/dev/pts/"), "{out}");
}

#[test]
fn exec_top_stats_and_cp() {
    let e = Engine::new("exec");
    let id = e.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "60"]).trim().to_string();
    let out = e.run(&["exec", "-e", "X=1", "-w", "/tmp", "box", "sh", "-c", "echo $X $(pwd) $(hostname); exit 6"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("1 /tmp {}", &id[..12]));
    let top = e.ok(&["top", "box"]);
    assert!(top.contains("sleep 60"), "{top}");
    // docker's (the host ps -ef's) columns.
    assert_eq!(top.lines().next().unwrap_or("").split_whitespace().collect::<Vec<_>>(), ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "{top}");
    assert!(top.lines().any(|l| l.starts_with("root ") && l.ends_with("sleep 60")), "{top}");
    // ps options go to the host's ps; only the container's lines stay
    skiff_tests::require("/usr/bin/ps", "procps");
    let top = e.ok(&["top", "box", "-o", "pid,comm"]);
    assert_eq!(top.lines().map(|l| l.split_whitespace().nth(1).unwrap_or("")).collect::<Vec<_>>(), ["COMMAND", "sleep"], "{top}");
    let out = e.run(&["top", "box", "-o", "comm"]);
    assert!(!out.status.success() && text(&out.stderr).contains("Couldn't find PID field"), "{}", text(&out.stderr));
    let stats = e.ok(&["stats", "--no-stream", "box"]);
    assert!(stats.contains("box") && stats.contains("iB / ") && stats.contains("CPU %"), "{stats}");
    // cp both ways through the container's rootfs.
    let f = e.dir.path().join("host.txt");
    std::fs::write(&f, "to the container").unwrap();
    e.ok(&["cp", &f.to_string_lossy(), "box:/tmp/in.txt"]);
    assert_eq!(e.ok(&["exec", "box", "cat", "/tmp/in.txt"]), "to the container");
    e.ok(&["exec", "box", "sh", "-c", "echo from-ctr > /tmp/out.txt"]);
    let back = e.dir.path().join("back.txt");
    e.ok(&["cp", "box:/tmp/out.txt", &back.to_string_lossy()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from-ctr\n");
    // Paths and symlinks in the container resolve inside it, never to
    // the host's files (docker's CVE-2018-15664 class).
    let theirs = std::fs::read_to_string(skiff_tests::busybox_rootfs().join("etc/passwd")).unwrap();
    e.ok(&["cp", "box:/../../etc/passwd", &back.to_string_lossy()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), theirs, "cp read outside the container");
    e.ok(&["exec", "box", "sh", "-c", "ln -s / /tmp/up && ln -s /etc/passwd /tmp/pw && mkdir /tmp/d && echo deep > /tmp/d/f"]);
    let copied = e.dir.path().join("pw");
    e.ok(&["cp", "box:/tmp/up/etc/passwd", &copied.to_string_lossy()]);
    assert_eq!(std::fs::read_to_string(&copied).unwrap(), theirs, "a symlink to / led cp to the host's /etc");
    let escape = format!("/tmp/skiff-cp-escape-{}", std::process::id());
    let _ = std::fs::remove_file(&escape);
    e.ok(&["cp", &f.to_string_lossy(), &format!("box:/tmp/up{escape}")]);
    assert!(!Path::new(&escape).exists(), "cp wrote through the container's symlink onto the host");
    assert_eq!(e.ok(&["exec", "box", "cat", &escape]), "to the container");
    // A symlink is copied as one; directories whole.
    e.ok(&["cp", "box:/tmp/pw", &copied.to_string_lossy()]);
    assert_eq!(std::fs::read_link(&copied).unwrap(), Path::new("/etc/passwd"));
    let dir = e.dir.path().join("dcopy");
    e.ok(&["cp", "box:/tmp/d", &dir.to_string_lossy()]);
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "deep\n");
    e.ok(&["cp", &dir.to_string_lossy(), "box:/tmp"]);
    assert_eq!(e.ok(&["exec", "box", "cat", "/tmp/dcopy/f"]), "deep\n");
    let out = e.run(&["cp", "box:/no/such", &back.to_string_lossy()]);
    assert!(text(&out.stderr).contains("box:/no/such: no such file or directory"), "{}", text(&out.stderr));
    let out = e.run(&["cp", &f.to_string_lossy(), "box:/no/such/dir/x"]);
    assert!(text(&out.stderr).contains("/no/such/dir: no such directory in the container"), "{}", text(&out.stderr));
    e.ok(&["rm", "-f", "box"]);
    let out = e.run(&["exec", "box", "true"]);
    assert!(!out.status.success());
}

#[test]
fn volumes_and_prune() {
    let e = Engine::new("vols");
    assert_eq!(e.ok(&["volume", "create", "data"]).trim(), "data");
    assert!(e.ok(&["volume", "ls"]).contains("data"));
    e.ok(&["run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f"]);
    let out = e.ok(&["run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f"]);
    assert_eq!(out, "kept\n");
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["volume", "inspect", "data"])).unwrap();
    assert_eq!(v[0]["Name"], "data");
    e.ok(&["run", "--name", "user", "-v", "data:/data", "busybox", "true"]);
    let out = e.run(&["volume", "rm", "data"]);
    assert!(!out.status.success() && text(&out.stderr).contains("in use"), "{}", text(&out.stderr));
    // Without -f docker asks first; no answer (stdin is empty) is a no.
    e.ok(&["container", "prune"]);
    assert!(e.ok(&["ps", "-a"]).contains("user"), "prune went on without a yes");
    let out = e.ok(&["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:\n") && out.contains("\nTotal reclaimed space: "), "{out}");
    assert!(!e.ok(&["ps", "-a"]).contains("user"), "prune left the exited container");
    e.ok(&["volume", "rm", "data"]);
    assert!(!e.ok(&["volume", "ls"]).contains("data"));
}

/// After a "reboot" (the shim and the container killed, nothing running),
/// `engine restore` brings back a container with restart=always.
#[test]
fn restore_brings_back_always_containers() {
    let e = Engine::new("restore");
    let id = e.ok(&["run", "-d", "--restart", "always", "--name", "keeper", "busybox", "sleep", "60"]).trim().to_string();
    let no = e.ok(&["run", "-d", "--name", "plain", "busybox", "sleep", "60"]).trim().to_string();
    for c in [&id, &no] {
        let dir = e.root().join("containers").join(c);
        let shim: i32 = std::fs::read_to_string(dir.join("shim.pid")).unwrap().trim().parse().unwrap();
        let pid = e.inspect(c)["State"]["Pid"].as_i64().unwrap() as i32;
        // SAFETY: killing processes this test started.
        unsafe {
            libc::kill(shim, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
        }
        assert!(wait_until(Duration::from_secs(10), || std::fs::metadata(format!("/proc/{pid}")).is_err() || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))));
    }
    let out = e.ok(&["restore"]);
    assert!(out.contains("keeper") && !out.contains("plain"), "{out}");
    assert!(wait_until(Duration::from_secs(10), || e.inspect("keeper")["State"]["Status"] == "running"));
    assert_ne!(e.inspect("plain")["State"]["Status"], "running");
}

/// Crash consistency: `engine run` SIGKILLed at many points; `ps` still
/// works and `rm -f` leaves nothing behind (mounts, veths, addresses,
/// cgroups, shims, proxies).
#[test]
fn engine_killed_mid_run_leaves_a_repairable_state() {
    let e = Engine::new("crash");
    for i in 0..12u64 {
        let port = free_tcp_port();
        let mut child = e
            .cmd(&["run", "-d", "--init", "-p", &format!("127.0.0.1:{port}:80"), "busybox", "sleep", "30"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn engine run");
        // Spread the kill over the whole run (it takes tens of ms).
        std::thread::sleep(Duration::from_millis(3 + i * 7));
        let _ = child.kill();
        let _ = child.wait();
    }
    let ps = e.run(&["ps", "-a"]);
    assert!(ps.status.success(), "ps after crashes: {}", text(&ps.stderr));
    let ids: Vec<String> = text(&e.run(&["ps", "-aq"]).stdout).split_whitespace().map(String::from).collect();
    e.assert_clean();
    assert!(mounted_under(&e.root()).is_empty(), "mounts left: {:?}", mounted_under(&e.root()));
    let left: Vec<String> = std::fs::read_dir(e.root().join("containers"))
        .map(|d| d.flatten().map(|x| x.file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.')).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "container dirs left: {left:?}");
    let root = e.root().display().to_string();
    let procs = skiff_tests::leftovers::pids_matching(|c| c.contains(&root));
    assert!(procs.is_empty(), "processes left: {}", skiff_tests::leftovers::describe(&procs));
    for id in ids {
        assert!(cgroup_gone(&id), "cgroup left for {id}");
    }
}

#[test]
fn ps_filters_and_logs_since() {
    let e = Engine::new("filters");
    e.ok(&["run", "-d", "--name", "up1", "-l", "tier=web", "busybox", "sleep", "30"]);
    e.ok(&["run", "--name", "done1", "busybox", "sh", "-c", "echo old"]);
    let names = |f: &str| e.ok(&["ps", "-a", "--filter", f, "--format", "json"]).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["Names"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(names("status=exited"), ["done1"]);
    assert_eq!(names("status=running"), ["up1"]);
    assert_eq!(names("label=tier=web"), ["up1"]);
    assert_eq!(names("name=done"), ["done1"]);
    let out = e.run(&["ps", "--filter", "bogus=1"]);
    assert!(!out.status.success() && text(&out.stderr).contains("invalid filter"));
    // Values of one key are alternatives; keys all apply (docker's rule).
    let both = |a: &str, b: &str| {
        let mut n: Vec<String> = e.ok(&["ps", "-a", "--filter", a, "--filter", b, "--format", "{{.Names}}"]).lines().map(String::from).collect();
        n.sort();
        n
    };
    assert_eq!(both("status=exited", "status=running"), ["done1", "up1"]);
    assert_eq!(both("status=running", "name=done"), Vec::<String>::new());
    assert_eq!(e.run(&["run", "--name", "failed7", "busybox", "sh", "-c", "exit 7"]).status.code(), Some(7));
    assert_eq!(names("exited=7"), ["failed7"]);
    assert_eq!(names("health=none").len(), 3);
    assert_eq!(names("network=bridge").len(), 3);
    // --since: nothing is newer than a minute from now, everything is newer than an hour ago.
    assert_eq!(e.ok(&["logs", "--since", "1h", "done1"]), "old\n");
    let future = {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        skiff_runtime::state::rfc3339(now + 60, 0)
    };
    assert_eq!(e.ok(&["logs", "--since", &future, "done1"]), "");
    // --until: everything is older than a minute from now, nothing older than an hour ago
    assert_eq!(e.ok(&["logs", "--until", &future, "done1"]), "old\n");
    assert_eq!(e.ok(&["logs", "--until", "1h", "done1"]), "");
    let bad = e.run(&["logs", "--until", "soon", "done1"]);
    assert!(text(&bad.stderr).contains("invalid --until"), "{}", text(&bad.stderr));
    // docker's other forms: Unix seconds are a time, not seconds ago; Go
    // durations with fractions and several units; a date.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(e.ok(&["logs", "--since", &format!("{}", now + 60), "done1"]), "");
    assert_eq!(e.ok(&["logs", "--since", &format!("{}.5", now - 3600), "done1"]), "old\n");
    assert_eq!(e.ok(&["logs", "--since", "1.5h", "done1"]), "old\n");
    assert_eq!(e.ok(&["logs", "--until", "1h0m30s", "done1"]), "");
    assert_eq!(e.ok(&["logs", "--since", "2000-01-01", "done1"]), "old\n");
    // exec --env-file, under -e
    let ef = e.dir.path().join("exec.env");
    std::fs::write(&ef, "A=from-file\nB=file\n").unwrap();
    assert_eq!(e.ok(&["exec", "--env-file", ef.to_str().unwrap(), "-e", "B=flag", "up1", "sh", "-c", "echo $A $B"]), "from-file flag\n");
}

/// `exec -it` through a pty pair: the exec'd shell gets its own terminal.
#[test]
fn exec_with_a_tty() {
    let e = Engine::new("exectty");
    e.ok(&["run", "-d", "--name", "tbox", "busybox", "sleep", "60"]);
    let mut pty = skiff_tests::pty::Pty::open(20, 70);
    let mut c = e.cmd(&["exec", "-it", "tbox", "sh"]);
    pty.attach(&mut c);
    let mut child = c.spawn().expect("spawn engine exec");
    let shown = pty.collect();
    std::thread::sleep(Duration::from_millis(500));
    pty.master.write_all(b"tty; stty size; echo x-$((3*3))\r").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    pty.master.write_all(b"exit 4\r").unwrap();
    let st = skiff_tests::wait_child(&mut child, Duration::from_secs(30));
    drop(pty);
    let seen = shown.join().unwrap();
    assert_eq!(st.code(), Some(4), "{seen}");
    assert!(seen.contains("/dev/pts/") && seen.contains("x-9"), "{seen}");
    assert!(seen.contains("20 70"), "terminal size not passed: {seen}");
}

/// `image prune` removes dangling images only, `-a` every unused one;
/// `system df` counts images, containers and volumes.
#[test]
fn image_prune_and_system_df() {
    let e = Engine::new("prune");
    // A second busybox with one more file takes the tag: the first dangles.
    let root2 = e.dir.path().join("rootfs2");
    let out = run(std::process::Command::new("cp").arg("-a").arg(skiff_tests::busybox_rootfs()).arg(&root2), T);
    assert!(out.status.success());
    std::fs::write(root2.join("etc/extra"), "x").unwrap();
    let tar2 = e.dir.path().join("b2.tar");
    let out = run(std::process::Command::new("tar").arg("-C").arg(&root2).arg("-cf").arg(&tar2).arg("."), T);
    assert!(out.status.success());
    let first: serde_json::Value = serde_json::from_str(&e.ok(&["image", "inspect", "busybox"])).unwrap();
    let first_id = first[0]["Id"].as_str().unwrap().to_string();
    e.ok(&["import", &tar2.to_string_lossy(), "busybox"]);
    e.ok(&["import", &tar2.to_string_lossy(), "other"]);
    let images = |e: &Engine| e.ok(&["images", "-q"]).split_whitespace().count();
    // busybox (new), other (each import is its own image, as docker's) and the dangling first one.
    assert_eq!(images(&e), 3, "{}", e.ok(&["images"]));
    e.ok(&["run", "--name", "user", "busybox", "true"]);
    let df = e.ok(&["system", "df"]);
    assert!(df.lines().any(|l| l.starts_with("Images") && l.split_whitespace().nth(1) == Some("3")), "{df}");
    assert!(df.lines().any(|l| l.starts_with("Containers") && l.split_whitespace().nth(1) == Some("1")), "{df}");
    let pruned = e.ok(&["image", "prune", "-f"]);
    assert!(pruned.contains(&first_id), "dangling image not pruned: {pruned}");
    assert_eq!(images(&e), 2);
    // -a keeps the image a container uses.
    e.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(images(&e), 1);
    e.ok(&["rm", "user"]);
    e.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(images(&e), 0);
}

/// `system prune --volumes` removes stopped containers and the anonymous
/// volumes nothing uses (not named ones, not one a running container
/// uses); `volume prune -a` then the unused named ones but never one a
/// container (even a stopped one) names; `system prune -a` the unused
/// images; `rm -v` a container's anonymous volumes; bad flags exit 125.
#[test]
fn system_and_volume_prune() {
    let e = Engine::new("sysprune");
    let volumes = |e: &Engine| -> Vec<String> { e.ok(&["volume", "ls"]).lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)).map(String::from).collect() };
    let anon_of = |e: &Engine, c: &str| -> Vec<String> {
        let v = e.inspect(c);
        v["Mounts"].as_array().unwrap().iter().filter(|m| m["Destination"] != "/data").map(|m| m["Name"].as_str().unwrap().to_string()).collect()
    };
    e.ok(&["volume", "create", "named"]);
    // An anonymous volume left behind: its container removed without -v.
    let gone = e.ok(&["run", "-v", "/scratch", "busybox", "sh", "-c", "echo x > /scratch/f"]);
    assert!(gone.is_empty(), "{gone}");
    let first = e.ok(&["ps", "-aq"]).trim().to_string();
    let orphan = anon_of(&e, &first);
    assert_eq!(orphan.len(), 1, "{}", e.ok(&["inspect", &first]));
    let orphan = orphan[0].clone();
    assert_eq!(orphan.len(), 64, "{orphan}");
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["volume", "inspect", &orphan])).unwrap();
    assert!(v[0]["Labels"].get("com.docker.volume.anonymous").is_some(), "{v}");
    e.ok(&["rm", &first]);
    // A running container with a named and an anonymous volume, a stopped one.
    let busy = e.ok(&["run", "-d", "--name", "busy", "-v", "used:/data", "-v", "/cache", "busybox", "sleep", "60"]).trim().to_string();
    let busy_anon = anon_of(&e, "busy")[0].clone();
    let stopped = e.ok(&["run", "--name", "stopped", "busybox", "true"]);
    assert!(stopped.is_empty());
    let stopped_id = e.inspect("stopped")["Id"].as_str().unwrap().to_string();
    let mut all = vec![orphan.clone(), busy_anon.clone(), "named".into(), "used".into()];
    all.sort();
    assert_eq!(volumes(&e), all);

    for bad in [&["system", "prune", "--nope"][..], &["volume", "prune", "-x"], &["container", "prune", "--volumes"]] {
        let out = e.run(bad);
        assert_eq!(out.status.code(), Some(125), "{bad:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("unknown flag"), "{}", text(&out.stderr));
    }
    let out = e.run(&["system", "prune", "-f", "--filter", "colour=red"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    // No answer to the prompt: nothing goes.
    let out = e.ok(&["system", "prune", "--volumes"]);
    assert!(out.starts_with("WARNING! This will remove:") && out.contains("anonymous volumes"), "{out}");
    assert_eq!(volumes(&e), all);

    let out = e.ok(&["system", "prune", "--volumes", "-f"]);
    assert!(out.contains(&format!("Deleted Containers:\n{stopped_id}\n\n")), "{out}");
    assert!(out.contains(&format!("Deleted Volumes:\n{orphan}\n\n")), "{out}");
    assert!(!out.contains("Deleted Images:"), "busybox is in use: {out}");
    assert!(out.lines().last().unwrap().starts_with("Total reclaimed space: "), "{out}");
    let mut left = vec![busy_anon.clone(), "named".into(), "used".into()];
    left.sort();
    assert_eq!(volumes(&e), left);
    assert_eq!(e.ok(&["ps", "-aq"]).trim(), &busy[..12]);
    assert_eq!(e.ok(&["volume", "prune", "-f"]), "Total reclaimed space: 0B\n");

    // A container that never ran still holds its volume.
    e.ok(&["create", "--name", "holder", "--network", "none", "-v", "held:/x", "busybox", "true"]);
    let out = e.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(out, "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n");
    let mut left = vec![busy_anon.clone(), "held".into(), "used".into()];
    left.sort();
    assert_eq!(volumes(&e), left);

    // `system prune -a`: the created container, then the images nothing uses.
    let spare_root = e.dir.path().join("spare");
    std::fs::create_dir_all(&spare_root).unwrap();
    std::fs::write(spare_root.join("only-file"), "spare").unwrap();
    let tar = e.dir.path().join("spare.tar");
    let out = run(std::process::Command::new("tar").arg("-C").arg(&spare_root).arg("-cf").arg(&tar).arg("."), T);
    assert!(out.status.success());
    e.ok(&["import", &tar.to_string_lossy(), "spare"]);
    let spare: serde_json::Value = serde_json::from_str(&e.ok(&["image", "inspect", "spare"])).unwrap();
    let spare_id = spare[0]["Id"].as_str().unwrap().to_string();
    let out = e.ok(&["system", "prune", "-a", "-f"]);
    assert!(out.contains("Deleted Containers:\n") && out.contains(&format!("deleted: {spare_id}")), "{out}");
    assert!(out.contains("untagged: spare:latest"), "{out}");
    assert!(!e.ok(&["images"]).contains("spare"), "spare left");
    assert!(e.ok(&["images"]).contains("busybox"), "the image in use went");
    assert!(volumes(&e).contains(&"held".to_string()), "system prune without --volumes took a volume");

    // `run --rm` and `rm -v`: the anonymous volume goes, the named one stays.
    e.ok(&["run", "--rm", "--network", "none", "-v", "/tmp/anon", "-v", "held:/held", "busybox", "true"]);
    let mut left = vec![busy_anon.clone(), "held".into(), "used".into()];
    left.sort();
    assert_eq!(volumes(&e), left, "run --rm left its anonymous volume or took a named one");
    e.ok(&["rm", "-f", "-v", "busy"]);
    assert_eq!(volumes(&e), ["held", "used"]);
    e.assert_clean();
}

/// `grep`s the seccomp mode and no_new_privs of a container's process.
fn security_status(e: &Engine, flags: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend(flags);
    args.extend(["busybox", "grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"]);
    e.ok(&args)
}

/// Docker's default seccomp profile is on unless `seccomp=unconfined` or
/// `--privileged` turn it off; a profile file in Docker's format applies,
/// to exec'd processes too; no-new-privileges reaches the process; bad
/// profiles fail `run` with 125, naming the file.
#[test]
fn seccomp_profiles_and_no_new_privileges() {
    let e = Engine::new("seccomp");
    let s = security_status(&e, &[]);
    assert!(s.contains("Seccomp:\t2") && s.contains("NoNewPrivs:\t0"), "{s}");
    assert!(security_status(&e, &["--security-opt", "seccomp=unconfined"]).contains("Seccomp:\t0"));
    assert!(security_status(&e, &["--privileged"]).contains("Seccomp:\t0"));
    assert!(security_status(&e, &["--security-opt", "no-new-privileges"]).contains("NoNewPrivs:\t1"));
    // The default: new namespaces need CAP_SYS_ADMIN; forks do not.
    let out = e.run(&["run", "--rm", "--network", "none", "busybox", "unshare", "-U", "true"]);
    assert_eq!(out.status.code(), Some(1), "unshare -U under the default profile: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Operation not permitted"), "{}", text(&out.stderr));
    e.ok(&["run", "--rm", "--network", "none", "--cap-add", "SYS_ADMIN", "busybox", "unshare", "-U", "true"]);
    assert_eq!(e.ok(&["run", "--rm", "--network", "none", "busybox", "sh", "-c", "(echo forked) | cat"]).trim(), "forked");

    // A profile of one's own: mkdir fails with EACCES, the rest is allowed.
    let profile = e.dir.path().join("no-mkdir.json");
    let rules = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#;
    std::fs::write(&profile, rules).unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = e.run(&["run", "--rm", "--network", "none", "--security-opt", &opt, "busybox", "mkdir", "/tmp/d"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Permission denied"), "{}", text(&out.stderr));
    let name = format!("sc{}", std::process::id());
    e.ok(&["run", "-d", "--network", "none", "--name", &name, "--security-opt", &opt, "busybox", "sleep", "60"]);
    let out = e.run(&["exec", &name, "mkdir", "/tmp/e"]);
    assert!(text(&out.stderr).contains("Permission denied"), "exec escaped the profile: {}", text(&out.stderr));
    e.ok(&["exec", &name, "touch", "/tmp/f"]);
    assert_eq!(e.inspect(&name)["HostConfig"]["SecurityOpt"][0], opt.as_str());
    e.ok(&["rm", "-f", &name]);

    let missing = e.dir.path().join("missing.json");
    let out = e.run(&["run", "--rm", "--security-opt", &format!("seccomp={}", missing.display()), "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains(&format!("opening seccomp profile ({})", missing.display())), "{}", text(&out.stderr));
    std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_SOMETIMES"}]}"#).unwrap();
    let out = e.run(&["run", "--rm", "--security-opt", &opt, "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("SCMP_ACT_SOMETIMES"), "{}", text(&out.stderr));
    let out = e.run(&["run", "--rm", "--security-opt", "selinux", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("invalid --security-opt \"selinux\""), "{}", text(&out.stderr));
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty(), "failed runs left containers");
}

/// docker's resolver flags: --add-host (host-gateway is the bridge's
/// gateway), --dns, --dns-search, --dns-option; refused with container:
/// networks as docker does.
#[test]
fn add_host_and_dns_flags() {
    let e = Engine::new("dnsflags");
    let out = e.ok(&[
        "run", "--rm", "--add-host", "db:192.0.2.7", "--add-host", "gw=host-gateway", "--add-host", "v6:fd00::7", "--dns", "192.0.2.53",
        "--dns-search", "a.example", "--dns-option", "ndots:3", "busybox", "sh", "-c", "cat /etc/hosts /etc/resolv.conf",
    ]);
    let gateway = e.addr(1);
    for line in ["192.0.2.7\tdb", &format!("{gateway}\tgw"), "fd00::7\tv6", "nameserver 192.0.2.53", "search a.example", "options ndots:3"] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
    assert_eq!(out.matches("nameserver").count(), 1, "--dns replaces the host's resolvers:\n{out}");
    let bad = e.run(&["run", "--rm", "--add-host", "db:300.1.1.1", "busybox", "true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(text(&bad.stderr).contains("invalid IP address \"300.1.1.1\""), "{}", text(&bad.stderr));
    let bad = e.run(&["run", "--rm", "--dns", "resolver", "busybox", "true"]);
    assert!(text(&bad.stderr).contains("resolver is not an ip address"), "{}", text(&bad.stderr));
    let name = format!("dn{}", std::process::id());
    e.ok(&["run", "-d", "--network", "none", "--name", &name, "busybox", "sleep", "60"]);
    let bad = e.run(&["run", "--rm", "--network", &format!("container:{name}"), "--dns", "192.0.2.53", "busybox", "true"]);
    assert!(text(&bad.stderr).contains("conflicting options: dns and the network mode"), "{}", text(&bad.stderr));
    e.ok(&["rm", "-f", &name]);
}

/// --device (node made, cgroup allows only the asked access), --ulimit,
/// --sysctl, --group-add, --shm-size, --tmpfs options and --mount.
#[test]
fn devices_limits_sysctls_groups_and_mounts() {
    let e = Engine::new("runflags2");
    // A device node of the test's own: char 240 (local use) has no driver
    // here, so opening it says ENXIO when the cgroup lets it through and
    // EPERM when not; nothing anywhere is touched.
    let node = e.dir.path().join("cdev");
    let c = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
    // SAFETY: mknod on a path we own.
    assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o644, libc::makedev(240, 0)) }, 0, "mknod {}", node.display());
    let dev = format!("{}:/dev/xdev:r", node.display());
    let out = e.run(&[
        "run", "--rm", "--network", "none", "--device", &dev, "busybox", "sh", "-c",
        "ls -l /dev/xdev; cat /dev/xdev; echo x > /dev/xdev; mknod /tmp/other c 240 1 && cat /tmp/other; true",
    ]);
    let (o, err) = (text(&out.stdout), text(&out.stderr));
    assert!(o.starts_with("crw-r--r--") && o.contains("240,   0"), "{o}");
    assert!(err.contains("cat: can't open '/dev/xdev': No such device or address"), "read of the device was not let through: {err}");
    assert!(err.contains("can't create /dev/xdev: Operation not permitted"), "write to an r device was let through: {err}");
    assert!(err.contains("cat: can't open '/tmp/other': Operation not permitted"), "a device not passed was let through: {err}");
    let bad = e.run(&["run", "--rm", "--device", "/etc/hostname", "busybox", "true"]);
    assert!(text(&bad.stderr).contains("not a device node"), "{}", text(&bad.stderr));

    let out = e.ok(&[
        "run", "--rm", "--network", "none", "--ulimit", "nofile=123:456", "--ulimit", "core=0", "--sysctl", "net.ipv4.ip_forward=1",
        "--sysctl", "kernel.shmmni=1234", "--group-add", "nogroup", "--group-add", "4242", "--shm-size", "8m", "--tmpfs", "/scratch:size=1m,exec",
        "busybox", "sh", "-c",
        "ulimit -n; ulimit -Hn; ulimit -c; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni; id -G; \
         df -k /dev/shm /scratch | tail -2 | awk '{print $2}'; grep ' /scratch ' /proc/mounts",
    ]);
    let l: Vec<&str> = out.lines().collect();
    let groups = std::fs::read_to_string(skiff_tests::busybox_rootfs().join("etc/group")).unwrap_or_default();
    assert!(groups.lines().any(|g| g == "nogroup:x:65534:"), "the busybox image has no nogroup group: {groups}");
    assert_eq!(&l[..5], ["123", "456", "0", "1", "1234"], "{out}");
    assert_eq!(l[5], "0 4242 65534", "groups");
    assert_eq!(&l[6..8], ["8192", "1024"], "{out}");
    assert!(!l[8].contains("noexec"), "--tmpfs exec kept noexec: {}", l[8]);
    for (flag, value, msg) in [
        ("--ulimit", "nofile=9:3", "soft limit must be less than or equal to hard limit"),
        ("--sysctl", "kernel.hostname=x", "sysctl 'kernel.hostname' is not allowed"),
        ("--group-add", "nosuchgroup", "unable to find group nosuchgroup"),
        ("--tmpfs", "/t:size=1m,suidx", "invalid tmpfs option \"suidx\""),
        ("--mount", "type=bind,source=/no/such/dir,target=/x", "bind source path does not exist: /no/such/dir"),
        ("--mount", "type=nfs,target=/x", "type \"nfs\" is not supported"),
    ] {
        let bad = e.run(&["run", "--rm", flag, value, "busybox", "true"]);
        assert_eq!(bad.status.code(), Some(125), "{flag} {value}");
        assert!(text(&bad.stderr).contains(msg), "{flag} {value}: {}", text(&bad.stderr));
    }
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty(), "failed runs left containers");

    // --mount: a bind (read-only), a named volume and a tmpfs.
    let host = e.dir.path().join("bound");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from host").unwrap();
    let bind = format!("type=bind,source={},target=/b,readonly", host.display());
    let out = e.ok(&[
        "run", "--rm", "--network", "none", "--mount", &bind, "--mount", "type=volume,source=vol2,target=/v", "--mount",
        "type=tmpfs,target=/t,tmpfs-size=2m", "busybox", "sh", "-c",
        "cat /b/f; echo; touch /b/g 2>/dev/null || echo ro; echo kept > /v/k; df -k /t | tail -1 | awk '{print $2}'",
    ]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["from host", "ro", "2048"], "{out}");
    assert_eq!(e.ok(&["run", "--rm", "--network", "none", "-v", "vol2:/v", "busybox", "cat", "/v/k"]).trim(), "kept");
}

/// --pid, --ipc and --uts: host and container: modes; docker's checks.
#[test]
fn namespace_modes() {
    let e = Engine::new("nsmodes");
    let me = std::process::id();
    let probe = format!("test -d /proc/{me} && echo host || echo own");
    assert_eq!(e.ok(&["run", "--rm", "--network", "none", "--pid", "host", "busybox", "sh", "-c", &probe]).trim(), "host");
    assert_eq!(e.ok(&["run", "--rm", "--network", "none", "busybox", "sh", "-c", &probe]).trim(), "own");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(e.ok(&["run", "--rm", "--network", "none", "--uts", "host", "busybox", "hostname"]), host);
    let bad = e.run(&["run", "--rm", "--uts", "host", "-h", "other", "busybox", "true"]);
    assert!(text(&bad.stderr).contains("Conflicting options: hostname and the UTS mode"), "{}", text(&bad.stderr));
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(), host, "the host was renamed");

    let name = format!("ns{me}");
    e.ok(&["run", "-d", "--network", "none", "--name", &name, "busybox", "sleep", "60"]);
    let pid = e.inspect(&name)["State"]["Pid"].as_i64().unwrap();
    let ps = e.ok(&["run", "--rm", "--network", "none", "--pid", &format!("container:{name}"), "busybox", "ps"]);
    assert!(ps.lines().any(|l| l.trim_start().starts_with("1 ") && l.ends_with("sleep 60")), "{ps}");
    let ipc = std::fs::read_link(format!("/proc/{pid}/ns/ipc")).unwrap();
    let out = e.ok(&["run", "--rm", "--network", "none", "--ipc", &format!("container:{name}"), "busybox", "readlink", "/proc/self/ns/ipc"]);
    assert_eq!(out.trim(), ipc.to_string_lossy(), "not in the container's IPC namespace");
    let own = e.ok(&["run", "--rm", "--network", "none", "--ipc", "shareable", "busybox", "readlink", "/proc/self/ns/ipc"]);
    assert_ne!(own.trim(), ipc.to_string_lossy());
    e.ok(&["stop", "-t", "0", &name]);
    let bad = e.run(&["run", "--rm", "--pid", &format!("container:{name}"), "busybox", "true"]);
    assert!(text(&bad.stderr).contains("it is not running"), "{}", text(&bad.stderr));
    for (flag, value) in [("--pid", "bogus"), ("--uts", "container:x"), ("--ipc", "container:")] {
        let bad = e.run(&["run", "--rm", flag, value, "busybox", "true"]);
        assert_eq!(bad.status.code(), Some(125), "{flag} {value}");
        assert!(text(&bad.stderr).contains(&format!("invalid {flag} mode")), "{flag} {value}: {}", text(&bad.stderr));
    }
    e.ok(&["rm", &name]);
}

/// The cgroup and process flags reach the kernel; --cidfile, --expose.
#[test]
fn resource_flags_cidfile_and_expose() {
    let e = Engine::new("resflags");
    let cid = e.dir.path().join("cid");
    let id = e
        .ok(&[
            "run", "-d", "--network", "none", "--cidfile", cid.to_str().unwrap(), "--cpu-shares", "512", "--cpuset-cpus", "0",
            "--cpu-period", "50000", "--cpu-quota", "25000", "-m", "64m", "--memory-swap", "-1", "--memory-reservation", "32m",
            "--oom-score-adj", "300", "--expose", "7000", "-P", "busybox", "sleep", "60",
        ])
        .trim()
        .to_string();
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id);
    let cg = |ctl: &str, file: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}/skiff/{id}/{file}")).unwrap_or_else(|e| panic!("{ctl}/{file}: {e}"));
    assert_eq!(cg("cpu", "cpu.shares").trim(), "512");
    assert_eq!(cg("cpu", "cpu.cfs_period_us").trim(), "50000");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us").trim(), "25000");
    assert_eq!(cg("cpuset", "cpuset.cpus").trim(), "0");
    assert_eq!(cg("memory", "memory.soft_limit_in_bytes").trim(), (32u64 << 20).to_string());
    let pid = e.inspect(&id)["State"]["Pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap().trim(), "300");
    assert!(e.ok(&["port", &id]).starts_with("7000/tcp -> "), "--expose with -P");
    let again = e.run(&["run", "-d", "--cidfile", cid.to_str().unwrap(), "busybox", "true"]);
    assert!(text(&again.stderr).contains("Container ID file found"), "{}", text(&again.stderr));
    e.ok(&["rm", "-f", &id]);
    for (args, msg) in [
        (&["--cpus", "1", "--cpu-period", "1000"][..], "Nano CPUs and CPU Period cannot both be set"),
        (&["--memory-swap", "10m"][..], "set the Memory limit when using Memoryswap limit"),
        (&["-m", "64m", "--memory-swap", "32m"][..], "memoryswap limit should be larger than memory limit"),
        (&["--cpuset-cpus", "1-x"][..], "invalid value \"1-x\" for --cpuset-cpus"),
        (&["--oom-score-adj", "2000"][..], "range for oom score adj is [-1000, 1000]"),
        (&["--blkio-weight", "5"][..], "Range of blkio weight is from 10 to 1000"),
        (&["--expose", "x"][..], "invalid range format for --expose: x"),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args);
        a.extend(["busybox", "true"]);
        let bad = e.run(&a);
        assert_eq!(bad.status.code(), Some(125), "{args:?}");
        assert!(text(&bad.stderr).contains(msg), "{args:?}: {}", text(&bad.stderr));
    }
    assert!(e.ok(&["ps", "-a", "-q"]).trim().is_empty(), "failed runs left containers");
}

/// docker's --format templates in inspect, ps, images and volume inspect.
#[test]
fn format_templates() {
    let e = Engine::new("formats");
    let name = format!("fmt{}", std::process::id());
    let port = free_tcp_port();
    e.ok(&["run", "-d", "--name", &name, "-l", "tier=web", "-p", &format!("127.0.0.1:{port}:80"), "busybox", "sleep", "60"]);
    let out = e.ok(&["inspect", "-f", "{{.State.Status}} {{.Name}} {{.Config.Labels.tier}} {{json .HostConfig.RestartPolicy}}", &name]);
    assert_eq!(out, format!("running /{name} web {{\"Name\":\"no\"}}\n"));
    let out = e.ok(&["inspect", "--format", "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}", &name]);
    assert_eq!(out.trim(), port.to_string());
    let out = e.ok(&["inspect", "--format={{range $p, $c := .NetworkSettings.Ports}}{{$p}}{{end}} {{if .State.Running}}up{{end}}", &name]);
    assert_eq!(out.trim(), "80/tcp up");
    let out = e.ok(&["ps", "--format", "{{.Names}}\t{{.State}}"]);
    assert_eq!(out, format!("{name}\trunning\n"));
    let out = e.ok(&["ps", "--format", "table {{.Names}}\\t{{.Image}}"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("NAMES") && lines[0].ends_with("IMAGE") && lines[1].starts_with(&name) && lines[1].ends_with("busybox"), "{out}");
    assert!(e.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).lines().any(|l| l == "busybox:latest"));
    // history: the imported image's one step, newest first, with its size.
    let hist = e.ok(&["history", "busybox"]);
    let lines: Vec<&str> = hist.lines().collect();
    assert!(lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY") && lines.len() == 2, "{hist}");
    let size = e.ok(&["images", "--format", "{{.Size}}", "busybox"]);
    assert!(lines[1].contains(size.trim()) && lines[1].contains("Imported from"), "{hist}");
    let id = e.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(e.ok(&["image", "history", "-q", "--no-trunc", "busybox"]), id);
    assert!(e.run(&["history", "nosuch"]).status.code() == Some(1));
    // version and info take --format as docker's (scripts probe with them).
    assert_eq!(e.ok(&["version", "--format", "{{.Server.Version}}"]).trim(), e.ok(&["version", "-f", "{{.Client.Version}}"]).trim());
    assert_eq!(e.ok(&["info", "--format", "{{.ContainersRunning}} {{.Containers}}"]).trim(), "1 1");
    // docker's management-command forms.
    assert_eq!(e.ok(&["container", "ls", "--format", "{{.Names}}"]), format!("{name}\n"));
    assert!(e.ok(&["image", "ls", "-q"]).lines().count() >= 1);
    assert_eq!(e.ok(&["container", "run", "--rm", "--network", "none", "busybox", "echo", "via container run"]), "via container run\n");
    e.ok(&["image", "tag", "busybox", "fmt:alias"]);
    assert!(e.ok(&["image", "rm", "fmt:alias"]).contains("Untagged: fmt:alias"));
    e.ok(&["volume", "create", "fmtvol"]);
    assert_eq!(e.ok(&["volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "fmtvol"]), "fmtvol local\n");
    let bad = e.run(&["inspect", "-f", "{{.State.Status", &name]);
    assert!(!bad.status.success() && text(&bad.stderr).contains("unclosed action"), "{}", text(&bad.stderr));
    e.ok(&["rm", "-f", &name]);
    e.ok(&["volume", "rm", "fmtvol"]);
}

/// `update`: limits reach the live cgroup and survive a restart; a new
/// restart policy reaches the shim (the killed process comes back).
#[test]
fn update_limits_and_restart_policy() {
    let e = Engine::new("update");
    let id = e.ok(&["run", "-d", "--network", "none", "-m", "64m", "busybox", "sleep", "300"]).trim().to_string();
    let cg = |ctl: &str, file: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}/skiff/{id}/{file}")).unwrap_or_default().trim().to_string();
    assert_eq!(e.ok(&["update", "-m", "128m", "--cpus", "0.5", "--pids-limit", "50", "--restart", "always", &id]).trim(), id);
    assert_eq!(cg("memory", "memory.limit_in_bytes"), (128u64 << 20).to_string());
    assert_eq!((cg("cpu", "cpu.cfs_quota_us"), cg("cpu", "cpu.cfs_period_us")), ("50000".into(), "100000".into()));
    assert_eq!(cg("pids", "pids.max"), "50");
    assert_eq!(e.inspect(&id)["HostConfig"]["RestartPolicy"]["Name"], "always");
    // stats: docker's columns and --format fields, the limit as updated.
    let st = e.ok(&["stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}", &id]);
    let f: Vec<&str> = st.trim().split('|').collect();
    assert!(f.len() == 5 && f[1].ends_with('%') && f[2].ends_with(" / 128MiB") && f[3].ends_with('%') && f[4] == "1", "{st}");
    let table = e.ok(&["stats", "--no-stream", &id]);
    assert!(table.starts_with("CONTAINER ID") && table.contains("CPU %") && table.contains("MEM USAGE / LIMIT") && table.contains("NET I/O"), "{table}");
    // without --no-stream the table is redrawn every second until stopped
    let mut child = e.cmd(&["stats", "--format", "{{.Name}} {{.PIDs}}", &id]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    // tables at about 0.5, 1.5, 2.5... s: two are due well within 4 s
    std::thread::sleep(Duration::from_millis(4000));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let shown = text(&out.stdout);
    assert!(shown.matches("\x1b[2J\x1b[H").count() >= 2 && shown.matches(" 1\n").count() >= 2, "not streamed: {shown:?}");
    // --memory-swap alone: checked against the limit the container has
    e.ok(&["update", "--memory-swap", "256m", &id]);
    assert_eq!(cg("memory", "memory.memsw.limit_in_bytes"), (256u64 << 20).to_string());
    let bad = e.run(&["update", "--memory-swap", "64m", &id]);
    assert!(text(&bad.stderr).contains("should be larger than memory limit"), "{}", text(&bad.stderr));
    let pid = e.inspect(&id)["State"]["Pid"].as_i64().unwrap();
    // SAFETY: kills the container's process, which the test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(
        wait_until(T, || e.inspect(&id)["RestartCount"] == 1 && e.inspect(&id)["State"]["Status"] == "running"),
        "the updated policy did not restart it: {}",
        e.inspect(&id)
    );
    assert_eq!(cg("memory", "memory.limit_in_bytes"), (128u64 << 20).to_string(), "the restart lost the updated limit");
    let bad = e.run(&["update", "--restart", "sometimes", &id]);
    assert!(!bad.status.success() && text(&bad.stderr).contains("sometimes"), "{}", text(&bad.stderr));
    let bad = e.run(&["update", "--cpus", "1", "--cpu-quota", "1000", &id]);
    assert!(text(&bad.stderr).contains("Nano CPUs and CPU Period cannot both be set"), "{}", text(&bad.stderr));
    e.ok(&["rm", "-f", &id]);
    let rm = e.ok(&["run", "-d", "--rm", "--network", "none", "busybox", "sleep", "30"]).trim().to_string();
    let bad = e.run(&["update", "--restart", "always", &rm]);
    assert!(text(&bad.stderr).contains("AutoRemove is enabled"), "{}", text(&bad.stderr));
    e.ok(&["rm", "-f", &rm]);
}

/// `diff` lists what the container changed (not its mount points);
/// `export` writes its filesystem as a tar, to -o atomically or a pipe.
#[test]
fn diff_and_export() {
    let e = Engine::new("diffexp");
    let vol = e.dir.path().join("v");
    std::fs::create_dir_all(&vol).unwrap();
    let id = e
        .ok(&[
            "run", "-d", "--network", "none", "--init", "-v", &format!("{}:/data/vol", vol.display()), "busybox", "sh", "-c",
            "echo new > /newfile; echo x >> /etc/passwd; rm /etc/group; mkdir -p /opt/a; touch /ready; sleep 60",
        ])
        .trim()
        .to_string();
    assert!(wait_until(T, || e.run(&["exec", &id, "test", "-e", "/ready"]).status.success()), "the container did not get ready");
    let diff = e.ok(&["diff", &id]);
    let expect = ["C /etc", "D /etc/group", "C /etc/passwd", "A /newfile", "A /opt", "A /opt/a", "A /ready"];
    assert_eq!(diff.lines().filter(|l| !l.starts_with("A /data")).collect::<Vec<_>>(), expect, "{diff}");
    let tar = e.dir.path().join("fs.tar");
    e.ok(&["export", "-o", tar.to_str().unwrap(), &id]);
    let list = run(std::process::Command::new("tar").arg("-tf").arg(&tar), T);
    let names = text(&list.stdout);
    for n in ["bin/busybox", "newfile", "opt/a", "etc/passwd"] {
        assert!(names.lines().any(|l| l.trim_end_matches('/') == n), "{n} not in the export");
    }
    assert!(!names.lines().any(|l| l == "etc/group"), "a deleted file was exported");
    let piped = e.run(&["export", &id]);
    assert!(piped.status.success() && piped.stdout.len() > 1 << 20, "export to a pipe: {} bytes, {}", piped.stdout.len(), text(&piped.stderr));
    let out = e.run(&["export", "-o", "/no/such/dir/x.tar", &id]);
    assert!(!out.status.success() && text(&out.stderr).contains("/no/such/dir"), "{}", text(&out.stderr));
    e.ok(&["rm", "-f", &id]);
}

/// HEALTHCHECK through --health-*: starting, unhealthy after the retries,
/// healthy once the check passes (ps and inspect), a probe past its
/// timeout counts as a failure, --no-healthcheck turns it off.
#[test]
fn health_checks() {
    let e = Engine::new("health");
    let id = e
        .ok(&[
            "run", "-d", "--network", "none", "--health-cmd", "test -e /tmp/ok && echo fine", "--health-interval", "100ms",
            "--health-retries", "2", "busybox", "sleep", "60",
        ])
        .trim()
        .to_string();
    let health = |e: &Engine| e.inspect(&id)["State"]["Health"].clone();
    assert!(wait_until(T, || health(&e)["Status"] == "unhealthy"), "never unhealthy: {}", health(&e));
    assert!(health(&e)["FailingStreak"].as_u64().unwrap() >= 2);
    assert!(e.ok(&["ps", "--format", "{{.Status}}"]).contains("(unhealthy)"));
    e.ok(&["exec", &id, "touch", "/tmp/ok"]);
    assert!(wait_until(T, || health(&e)["Status"] == "healthy"), "never healthy: {}", health(&e));
    let log = health(&e)["Log"].as_array().unwrap().clone();
    assert!(log.len() <= 5 && log.last().unwrap()["Output"] == "fine\n" && log.last().unwrap()["ExitCode"] == 0, "{log:?}");
    assert!(e.ok(&["ps", "--format", "{{.Status}}"]).contains("(healthy)"));
    assert_eq!(e.inspect(&id)["Config"]["Healthcheck"]["Test"], serde_json::json!(["CMD-SHELL", "test -e /tmp/ok && echo fine"]));
    e.ok(&["rm", "-f", &id]);

    let slow = e
        .ok(&["run", "-d", "--network", "none", "--health-cmd", "sleep 30", "--health-interval", "100ms", "--health-timeout", "200ms", "--health-retries", "1", "busybox", "sleep", "60"])
        .trim()
        .to_string();
    assert!(wait_until(T, || e.inspect(&slow)["State"]["Health"]["Status"] == "unhealthy"), "{}", e.inspect(&slow)["State"]["Health"]);
    let last = e.inspect(&slow)["State"]["Health"]["Log"][0].clone();
    assert!(last["ExitCode"] == -1 && last["Output"].as_str().unwrap().contains("exceeded timeout"), "{last}");
    // Timed-out probes are killed in the container, not left running.
    assert!(wait_until(T, || e.inspect(&slow)["State"]["Health"]["Log"].as_array().is_some_and(|l| l.len() >= 3)));
    let ps = e.ok(&["exec", &slow, "ps"]);
    assert!(ps.matches("sleep 30").count() <= 1, "probes left behind:\n{ps}");
    e.ok(&["rm", "-f", &slow]);

    let none = e.ok(&["run", "-d", "--network", "none", "--no-healthcheck", "busybox", "sleep", "60"]).trim().to_string();
    assert!(e.inspect(&none)["State"]["Health"].is_null());
    assert!(!e.ok(&["ps", "--format", "{{.Status}}"]).contains("health"));
    e.ok(&["rm", "-f", &none]);
    let bad = e.run(&["run", "--rm", "--health-interval", "soon", "--health-cmd", "true", "busybox", "true"]);
    assert!(bad.status.code() == Some(125) && text(&bad.stderr).contains("invalid --health-interval \"soon\""), "{}", text(&bad.stderr));
}

/// `attach`: the output of a running container until it exits (its code),
/// stdin when it was run with -i; refused for a stopped one.
#[test]
fn attach_to_a_running_container() {
    let e = Engine::new("attach");
    let id = e.ok(&["run", "-d", "--network", "none", "busybox", "sh", "-c", "sleep 1; echo late; echo err >&2; exit 3"]).trim().to_string();
    let out = e.run(&["attach", &id]);
    assert_eq!((out.status.code(), text(&out.stdout), text(&out.stderr)), (Some(3), "late\n".to_string(), "err\n".to_string()));
    let bad = e.run(&["attach", &id]);
    assert!(!bad.status.success() && text(&bad.stderr).contains("You cannot attach to a stopped container"), "{}", text(&bad.stderr));
    let id = e.ok(&["run", "-d", "-i", "--network", "none", "busybox", "sh", "-c", "read x; echo got $x; exit 5"]).trim().to_string();
    let mut child = e.cmd(&["attach", &id]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let status = skiff_tests::wait_child(&mut child, T);
    let mut got = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut got).unwrap();
    assert_eq!((status.code(), got.as_str()), (Some(5), "got hello\n"));
}

/// --volumes-from (the mode given, else the source's), --label-file under
/// --label, --domainname, --link (the running container's address under
/// its name and the alias).
#[test]
fn volumes_from_label_file_domainname_and_link() {
    let e = Engine::new("vfrom");
    let bind = e.dir.path().join("b");
    std::fs::create_dir_all(&bind).unwrap();
    let b = format!("{}:/b", bind.display());
    e.ok(&["run", "-d", "--name", "src", "-v", "/data", "-v", &b, "busybox", "sh", "-c", "echo hi > /data/f; echo bound > /b/g; touch /ready; sleep 60"]);
    assert!(wait_until(T, || e.run(&["exec", "src", "test", "-e", "/ready"]).status.success()));
    assert_eq!(e.ok(&["run", "--rm", "--network", "none", "--volumes-from", "src", "busybox", "cat", "/data/f", "/b/g"]), "hi\nbound\n");
    let out = e.run(&["run", "--rm", "--network", "none", "--volumes-from", "src:ro", "busybox", "touch", "/data/x"]);
    assert!(!out.status.success() && text(&out.stderr).contains("Read-only"), "{}", text(&out.stderr));
    let out = e.run(&["run", "--rm", "--volumes-from", "nosuch", "busybox", "true"]);
    assert!(!out.status.success() && text(&out.stderr).contains("nosuch"), "{}", text(&out.stderr));

    let lf = e.dir.path().join("labels");
    std::fs::write(&lf, "a=1\n# a comment\n\nb=2\n").unwrap();
    let id = e.ok(&["create", "--label-file", lf.to_str().unwrap(), "--label", "b=3", "busybox", "true"]).trim().to_string();
    let labels = &e.inspect(&id)["Config"]["Labels"];
    assert!(labels["a"] == "1" && labels["b"] == "3", "{labels}");
    e.ok(&["rm", &id]);

    let out = e.ok(&["run", "--rm", "--network", "none", "--hostname", "h1", "--domainname", "example.org", "busybox", "cat", "/proc/sys/kernel/domainname"]);
    assert_eq!(out, "example.org\n");
    let ip = e.ip_of("src");
    let hosts = e.ok(&["run", "--rm", "--link", "src:db", "busybox", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip}\tdb\n")) && hosts.contains(&format!("{ip}\tsrc\n")), "{hosts}");
    e.ok(&["stop", "-t", "0", "src"]);
    let out = e.run(&["run", "--rm", "--link", "src", "busybox", "true"]);
    assert!(!out.status.success() && text(&out.stderr).contains("non running"), "{}", text(&out.stderr));
    e.ok(&["rm", "-f", "src"]);
}

/// --cgroupns private (the container sees its cgroup as /), host by
/// default as docker on cgroup v1; --memory-swappiness reaches the cgroup
/// (0-100); flags docker users pass that change nothing here are taken
/// (-a, --sig-proxy, --detach-keys, -q), --userns other than host is not.
#[test]
fn cgroupns_swappiness_and_taken_flags() {
    let e = Engine::new("cgns");
    let mem = |flags: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(flags);
        a.extend_from_slice(&["busybox", "sh", "-c", "grep :memory: /proc/self/cgroup"]);
        e.ok(&a).trim().to_string()
    };
    assert_eq!(mem(&["--cgroupns", "private"]), "4:memory:/".replace("4", mem(&[]).split(':').next().unwrap()));
    assert!(mem(&[]).contains(":memory:/skiff/"), "{}", mem(&[]));
    let out = e.ok(&["run", "--rm", "--network", "none", "--memory-swappiness", "10", "-a", "stdout", "-a", "stderr", "--sig-proxy=false", "--detach-keys", "ctrl-x", "-q",
        "busybox", "cat", "/sys/fs/cgroup/memory/memory.swappiness"]);
    assert_eq!(out.trim(), "10");
    for (args, want) in [
        (vec!["--memory-swappiness", "101"], "valid memory swappiness range is 0-100"),
        (vec!["--userns", "remap"], "user namespaces are not supported"),
        (vec!["--cgroupns", "shared"], "invalid cgroup namespace mode"),
        (vec!["-a", "stdlog"], "valid streams are STDIN, STDOUT and STDERR"),
    ] {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(&args);
        a.extend_from_slice(&["busybox", "true"]);
        let out = e.run(&a);
        assert!(out.status.code() == Some(125) && text(&out.stderr).contains(want), "{args:?}: {}", text(&out.stderr));
    }
}

/// `events`: the engine's (create, rename, destroy) and the shim's (start,
/// die with the exit code) for a container, past ones with --since/--until
/// and --filter, and a die shown as it happens to a following reader.
#[test]
fn events_past_and_followed() {
    let e = Engine::new("events");
    let mut follow = e
        .cmd(&["events", "--filter", "event=die", "--format", "{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for l in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let id = e.ok(&["create", "--name", "ev1", "--network", "none", "busybox", "sh", "-c", "exit 3"]).trim().to_string();
    assert_eq!(e.run(&["start", "-a", &id]).status.code(), Some(3));
    assert_eq!(rx.recv_timeout(T).ok().as_deref(), Some("ev1 3"), "the die event did not reach the follower");
    let _ = follow.kill();
    let _ = follow.wait();
    reader.join().unwrap();
    e.ok(&["rename", "ev1", "ev2"]);
    e.ok(&["rm", "ev2"]);
    let past = e.ok(&["events", "--since", "1m", "--until", "0s", "--filter", &format!("container={id}"), "--format", "{{.Action}}"]);
    assert_eq!(past.lines().collect::<Vec<_>>(), ["create", "start", "die", "rename", "destroy"], "{past}");
    let line = e.ok(&["events", "--since", "1m", "--until", "0s", "--filter", "event=die"]);
    assert!(line.contains(&format!(" container die {id} (exitCode=3, image=busybox, name=ev1)")), "{line}");
    let bad = e.run(&["events", "--filter", "colour=red", "--until", "0s"]);
    assert!(!bad.status.success() && text(&bad.stderr).contains("invalid filter 'colour=red'"), "{}", text(&bad.stderr));
}

/// The listing flags docker users script with: ps -n/-l/--no-trunc/-s,
/// images -f dangling|reference / --no-trunc / --digests, volume ls -q /
/// -f dangling / --format, network ls -f, system info.
#[test]
fn listing_flags() {
    let e = Engine::new("listing");
    e.ok(&["run", "-d", "--name", "ls1", "--network", "none", "busybox", "sleep", "60"]);
    e.ok(&["run", "--name", "ls2", "--network", "none", "busybox", "sh", "-c", "head -c 5000 /dev/zero > /f"]);
    let names = |args: &[&str]| e.ok(args).lines().map(String::from).collect::<Vec<_>>();
    assert_eq!(names(&["ps", "-l", "--format", "{{.Names}}"]), ["ls2"]);
    assert_eq!(names(&["ps", "-n", "2", "--format", "{{.Names}}"]), ["ls2", "ls1"]);
    assert!(names(&["ps", "-a", "-q", "--no-trunc"]).iter().all(|id| id.len() == 64));
    let sized = e.ok(&["ps", "-a", "-s", "--filter", "name=ls2"]);
    assert!(sized.lines().next().unwrap_or("").ends_with("SIZE") && sized.contains("5kB (virtual"), "{sized}");

    e.ok(&["commit", "ls2"]);
    assert_eq!(names(&["images", "-q", "-f", "dangling=true"]).len(), 1);
    assert_eq!(names(&["images", "--format", "{{.Repository}}", "-f", "reference=busy*"]), ["busybox"]);
    assert!(names(&["images", "-q", "--no-trunc"]).iter().all(|id| id.starts_with("sha256:") && id.len() == 71));
    assert!(e.ok(&["images", "--digests"]).starts_with("REPOSITORY   TAG       DIGEST"));
    let bad = e.run(&["images", "-f", "colour=red"]);
    assert!(!bad.status.success() && text(&bad.stderr).contains("invalid filter 'colour=red'"));

    e.ok(&["volume", "create", "v1"]);
    e.ok(&["volume", "create", "v2"]);
    e.ok(&["run", "-d", "--name", "lv", "--network", "none", "-v", "v1:/d", "busybox", "sleep", "60"]);
    assert_eq!(names(&["volume", "ls", "-q"]), ["v1", "v2"]);
    assert_eq!(names(&["volume", "ls", "-q", "-f", "dangling=true"]), ["v2"]);
    assert_eq!(names(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}", "-f", "name=v1"]), ["local v1"]);
    e.ok(&["volume", "create", "--label", "tier=db", "--driver", "local", "v3"]);
    assert_eq!(names(&["volume", "ls", "-q", "-f", "label=tier=db"]), ["v3"]);
    assert_eq!(e.ok(&["volume", "inspect", "-f", "{{.Labels.tier}}", "v3"]).trim(), "db");
    let bad = e.run(&["volume", "create", "-o", "type=tmpfs", "v4"]);
    assert!(!bad.status.success() && text(&bad.stderr).contains("not supported"), "{}", text(&bad.stderr));
    assert_eq!(names(&["network", "ls", "-f", "type=builtin", "--format", "{{.Name}}"]), ["bridge", "host", "none"]);
    assert!(e.ok(&["system", "info"]).contains("Containers: 3"));
    e.ok(&["rm", "-f", "ls1", "ls2", "lv"]);
}

/// cp -a keeps uid/gid (both ways; without it the copy is root's), -L
/// follows a symlink given as the source (without it the link is copied).
#[test]
fn cp_archive_and_follow_link() {
    use std::os::unix::fs::MetadataExt;
    let e = Engine::new("cpflags");
    e.ok(&["run", "-d", "--name", "box", "--network", "none", "busybox", "sh", "-c", "echo in > /owned; chown 1234:5678 /owned; ln -s /owned /link; touch /ready; sleep 60"]);
    assert!(wait_until(T, || e.run(&["exec", "box", "test", "-e", "/ready"]).status.success()));
    let d = e.dir.path();
    e.ok(&["cp", "-a", "box:/owned", d.join("a").to_str().unwrap()]);
    e.ok(&["cp", "box:/owned", d.join("plain").to_str().unwrap()]);
    let m = |p: &str| std::fs::symlink_metadata(d.join(p)).unwrap();
    assert_eq!((m("a").uid(), m("a").gid()), (1234, 5678));
    assert_eq!(m("plain").uid(), 0);
    e.ok(&["cp", "-L", "box:/link", d.join("followed").to_str().unwrap()]);
    e.ok(&["cp", "box:/link", d.join("kept").to_str().unwrap()]);
    assert!(m("followed").is_file() && m("kept").file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(d.join("followed")).unwrap(), "in\n");

    let host = d.join("host.txt");
    std::fs::write(&host, "h\n").unwrap();
    std::os::unix::fs::chown(&host, Some(4321), Some(8765)).unwrap();
    std::os::unix::fs::symlink(&host, d.join("hostlink")).unwrap();
    e.ok(&["cp", "-a", host.to_str().unwrap(), "box:/ha"]);
    e.ok(&["cp", host.to_str().unwrap(), "box:/hp"]);
    e.ok(&["cp", "-L", d.join("hostlink").to_str().unwrap(), "box:/hl"]);
    let out = e.ok(&["exec", "box", "sh", "-c", "stat -c %u:%g /ha /hp; cat /hl; test -L /hl || echo regular"]);
    assert_eq!(out, "4321:8765\n0:0\nh\nregular\n");
    e.ok(&["rm", "-f", "box"]);
}
