//! Docker drives skiff's runtime in runc's place (issues 4 and 5, "Under
//! Docker"): a private dockerd with `--add-runtime skiff=<dist>/runtime`,
//! and `docker run --runtime skiff` on a busybox image; docker exec, top,
//! stats, update, pause, stop, kill and rm -f go through containerd's runc
//! shim to our runtime. Docker's default seccomp profile is in every
//! config.json (no `--security-opt seccomp=unconfined`): it must load, and
//! hold for exec'd processes too. Each test owns its dockerd, bridge,
//! subnet, names, ports and temp dirs.

use skiff_tests::docker::{Dockerd, DockerdOpts};
use skiff_tests::{bin, free_tcp_port, text, wait_until, TempDir};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// dockerd with our runtime (and our init for `--init`), and a busybox image.
fn dockerd_with_our_runtime() -> (Dockerd, String) {
    let d = Dockerd::start(DockerdOpts {
        runtimes: vec![("skiff".into(), bin("runtime"))],
        init_path: Some(bin("init")),
        ..Default::default()
    });
    let image = d.unique_name("skiff-rt-busybox");
    d.import_busybox(&image);
    (d, image)
}

/// `docker run --runtime skiff --rm ARGS...` (ARGS: options, image, command).
fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["run", "--runtime", "skiff", "--rm"];
    v.extend_from_slice(extra);
    v
}

/// One HTTP/1.0 GET / on 127.0.0.1:`port`: the whole response.
fn http_get(port: u16) -> std::io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut resp = Vec::new();
    s.take(1 << 20).read_to_end(&mut resp)?;
    Ok(text(&resp))
}

#[test]
fn docker_run_with_the_skiff_runtime_applies_the_options() {
    let (d, image) = dockerd_with_our_runtime();
    let img = image.as_str();

    let out = d.docker(&run_args(&[img, "sh", "-c", "exit 3"]));
    assert_eq!(out.status.code(), Some(3), "exit code: {}", text(&out.stderr));
    let out = d.docker(&run_args(&["--init", img, "sh", "-c", "kill -KILL $$"]));
    assert_eq!(out.status.code(), Some(137), "killed by a signal: {}", text(&out.stderr));
    let out = d.docker(&run_args(&[img, "/no/such/program"]));
    assert_eq!(out.status.code(), Some(127), "missing program: {}", text(&out.stderr));

    let out = d.docker_ok(&run_args(&["-e", "FOO=bar baz", "-w", "/tmp", "-u", "1000:1000", img, "sh", "-c", "echo $FOO; pwd; id -u; id -g"]));
    assert_eq!(out, "bar baz\n/tmp\n1000\n1000\n");

    // cgroup limits, read from inside the container.
    let out = d.docker_ok(&run_args(&[
        "--memory", "64m", "--pids-limit", "17", img, "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
    ]));
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["67108864", "17"], "{out}");

    // A bind mount of a test dir, written from inside.
    let dir = TempDir::new("dkrt-vol");
    let vol = format!("{}:/data", dir.path().display());
    d.docker_ok(&run_args(&["-v", &vol, img, "sh", "-c", "echo from-container > /data/f"]));
    assert_eq!(std::fs::read_to_string(dir.path().join("f")).unwrap(), "from-container\n");

    // --read-only: the rootfs refuses writes, the bind mount still takes them.
    let out = d.docker(&run_args(&["--read-only", "-v", &vol, img, "sh", "-c", "touch /x 2>&1; echo rc=$?; echo ok > /data/g"]));
    let s = text(&out.stdout);
    assert!(s.contains("Read-only file system") && s.contains("rc=1"), "{s} {}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(dir.path().join("g")).unwrap(), "ok\n");
    d.stop();
}

#[test]
fn docker_exec_stats_update_and_stop_with_the_skiff_runtime() {
    let (d, image) = dockerd_with_our_runtime();
    let name = d.unique_name("skiff-rt-web");
    let port = free_tcp_port();
    let publish = format!("127.0.0.1:{port}:80");
    d.docker_ok(&[
        "run", "-d", "--runtime", "skiff", "--init", "--name", &name, "--memory", "64m", "-p", &publish, &image, "sh", "-c",
        "mkdir -p /www && echo hello-from-skiff > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let mut page = String::new();
    let served = wait_until(Duration::from_secs(20), || {
        page = http_get(port).unwrap_or_default();
        page.contains("hello-from-skiff")
    });
    assert!(served, "page through 127.0.0.1:{port}: {page:?}");

    // docker exec: exit code, env and user, and with a tty.
    let out = d.docker(&["exec", &name, "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let out = d.docker_ok(&["exec", "-e", "X=1", "-u", "1000", "-w", "/www", &name, "sh", "-c", "echo $X; id -u; pwd; cat /proc/1/cmdline"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["1", "1000", "/www"], "{out}");
    assert!(lines[3].starts_with("/sbin/docker-init"), "exec runs in the container's pid namespace: {out}");
    // Docker's default seccomp profile holds for exec'd processes too.
    let out = d.docker_ok(&["exec", &name, "grep", "Seccomp:", "/proc/self/status"]);
    assert_eq!(out.split_whitespace().nth(1), Some("2"), "{out}");
    let out = d.docker_ok(&["exec", "-t", &name, "tty"]);
    assert!(out.trim().starts_with("/dev/pts/"), "{out:?}");
    // docker exec reports a missing program as 126 (with runc too).
    let out = d.docker(&["exec", &name, "no-such-program"]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    let msg = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(msg.contains("executable file not found"), "{msg}");

    // docker top (runtime ps), stats, update, pause/unpause.
    let top = d.docker_ok(&["top", &name]);
    assert!(top.contains("httpd"), "{top}");
    let stats = d.docker_ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", &name]);
    assert!(stats.contains("64MiB") && !stats.starts_with("0B"), "{stats}");
    d.docker_ok(&["update", "--memory", "96m", &name]);
    let limit = d.docker_ok(&["exec", &name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    assert_eq!(limit.trim(), (96u64 << 20).to_string());
    d.docker_ok(&["pause", &name]);
    assert_eq!(d.docker_ok(&["inspect", "--format", "{{.State.Status}}", &name]).trim(), "paused");
    d.docker_ok(&["unpause", &name]);
    assert!(http_get(port).unwrap_or_default().contains("hello-from-skiff"), "serves again after unpause");

    // docker stop: init forwards SIGTERM to httpd (143).
    d.docker_ok(&["stop", "--time", "10", &name]);
    assert_eq!(d.docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &name]).trim(), "143");
    d.docker_ok(&["rm", &name]);

    // docker kill (SIGKILL: 137) and docker rm -f of a running container.
    let killed = d.unique_name("skiff-rt-kill");
    d.docker_ok(&["run", "-d", "--runtime", "skiff", "--name", &killed, &image, "sleep", "1000"]);
    d.docker_ok(&["kill", &killed]);
    assert_eq!(d.docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &killed]).trim(), "137");
    d.docker_ok(&["rm", &killed]);
    let removed = d.unique_name("skiff-rt-rm");
    d.docker_ok(&["run", "-d", "--runtime", "skiff", "--name", &removed, &image, "sleep", "1000"]);
    d.docker_ok(&["rm", "-f", &removed]);
    let left = d.docker_ok(&["ps", "--all", "--quiet", "--filter", &format!("name={removed}")]);
    assert!(left.trim().is_empty(), "docker rm -f left {left}");
    d.stop();
}

/// `docker run -it` through a pty pair and `docker logs`, on our runtime.
#[test]
fn docker_run_it_and_logs_with_the_skiff_runtime() {
    let (d, image) = dockerd_with_our_runtime();
    let name = d.unique_name("skiff-logs");
    d.docker_ok(&["run", "--runtime", "skiff", "-d", "--name", &name, &image, "sh", "-c", "echo out-line; echo err-line >&2"]);
    assert!(wait_until(Duration::from_secs(20), || d.docker_ok(&["inspect", "-f", "{{.State.Status}}", &name]).trim() == "exited"));
    let out = d.docker(&["logs", &name]);
    assert_eq!(text(&out.stdout), "out-line\n");
    assert_eq!(text(&out.stderr), "err-line\n");
    d.docker_ok(&["rm", &name]);

    let mut pty = skiff_tests::pty::Pty::open(24, 90);
    let mut c = d.docker_command(&["run", "--runtime", "skiff", "-it", "--rm", &image, "sh"]);
    pty.attach(&mut c);
    let mut child = c.spawn().expect("spawn docker run -it");
    let shown = pty.collect();
    // The shell's prompt shows once it runs; bounded wait.
    std::thread::sleep(Duration::from_millis(1500));
    pty.master.write_all(b"echo it-$((6*7)); stty size; tty\r").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    pty.master.write_all(b"exit 9\r").unwrap();
    let st = skiff_tests::wait_child(&mut child, Duration::from_secs(30));
    drop(pty);
    let seen = shown.join().unwrap();
    assert_eq!(st.code(), Some(9), "{seen}");
    assert!(seen.contains("it-42"), "{seen}");
    assert!(seen.contains("24 90"), "{seen}");
    assert!(seen.contains("/dev/pts/"), "{seen}");
}
