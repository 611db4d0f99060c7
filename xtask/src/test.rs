//! `cargo xtask test` (the one test command), `test-cross` and `demo`.

use crate::dist::{self, AARCH64, HOST};
use crate::fixtures;
use crate::prereq::{self, clean, require, root, run_bounded, status};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// dist, fixtures, unit tests and tests/ (cargo test --workspace), then test-cross.
pub fn all() -> Result<(), String> {
    let started = Instant::now();
    prereq::check(prereq::SUITE)?;
    dist::dist(HOST)?;
    let fixtures = fixtures::build()?;
    let dist_dir = root().join("dist").join(HOST);
    let mut cmd = clean(Command::new("cargo"));
    cmd.current_dir(root())
        .args(["+stable", "test", "--workspace", "--no-fail-fast"])
        .env("SKIFF_DIST", &dist_dir)
        .env("SKIFF_FIXTURES", &fixtures);
    status(&mut cmd).map_err(|e| format!("tests failed: {e}"))?;
    cross()?;
    println!("xtask test: all passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Builds the aarch64 dist and runs it under qemu-aarch64-static: every
/// binary's --version, and init reaping an orphan as PID 1.
pub fn cross() -> Result<(), String> {
    let qemu = require("/usr/bin/qemu-aarch64-static", "qemu-user-static")?;
    require("/usr/bin/unshare", "util-linux")?;
    let busybox = require("/bin/busybox", "busybox-static")?;
    let built = dist::dist(AARCH64)?;
    let mut failures = Vec::new();
    let mut passed = 0;
    for b in &built {
        let r = run_bounded(Command::new(&qemu).arg(&b.path).arg("--version"), Duration::from_secs(30))?;
        let ok = r.code == Some(0) && r.stdout.contains(b.name);
        let what = if r.timed_out { "timed out".to_string() } else { r.stdout.trim().to_string() };
        report(ok, &format!("aarch64 {} --version: {what}", b.name), &mut passed, &mut failures);
    }
    // As PID 1 of a new pid namespace (qemu-user lacks PR_SET_CHILD_SUBREAPER),
    // init must reap the orphaned grandchild and pass the exit code through.
    let init = &built.iter().find(|b| b.name == "init").ok_or("no init built")?.path;
    let script = "(/bin/busybox sleep 0.2 &); /bin/busybox sleep 0.5; exit 7";
    let r = run_bounded(
        Command::new("unshare").args(["--pid", "--fork"]).arg(&qemu).arg(init).arg("-w").arg("--").arg(&busybox).args(["sh", "-c", script]),
        Duration::from_secs(30),
    )?;
    let ok = r.code == Some(7) && r.stderr.contains("Reaped zombie process with pid=");
    report(ok, &format!("aarch64 init reaps an orphan as PID 1 (exit {:?}, stderr {:?})", r.code, r.stderr.trim()), &mut passed, &mut failures);
    println!("test-cross: {passed} passed; {} failed", failures.len());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("test-cross failed:\n  {}", failures.join("\n  ")))
    }
}

fn report(ok: bool, what: &str, passed: &mut u32, failures: &mut Vec<String>) {
    println!("test-cross: {} {what}", if ok { "ok  " } else { "FAIL" });
    if ok {
        *passed += 1;
    } else {
        failures.push(what.to_string());
    }
}

/// The product's main job on a fresh machine: a busybox httpd published on
/// 127.0.0.1:8080 by `engine run -d --init -p 8080:80`, fetched and removed.
pub fn demo() -> Result<(), String> {
    dist::dist(HOST)?;
    let fixtures = fixtures::build()?;
    let dist_dir = root().join("dist").join(HOST);
    let engine = dist_dir.join("engine");
    let state = std::env::temp_dir().join(format!("skiff-demo-{}", std::process::id()));
    // Its own bridge and subnet, no firewall rules: the demo leaves the
    // host as it found it.
    let bridge = format!("skdemo{}", std::process::id() % 100_000);
    let engine_cmd = |args: &[&str]| {
        let mut c = Command::new(&engine);
        c.arg("--root").arg(&state).args(["--bridge", &bridge, "--subnet", "10.236.77.0/24", "--iptables=false"]).args(args);
        c
    };
    let rootfs = fixtures.join("busybox-rootfs");
    std::fs::create_dir_all(&state).map_err(|e| format!("create {}: {e}", state.display()))?;
    let tarball = state.join("busybox.tar");
    prereq::require("/bin/tar", "tar")?;
    status(Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tarball).arg("."))?;
    let imported = run_bounded(&mut engine_cmd(&["import", &tarball.to_string_lossy(), "busybox"]), Duration::from_secs(60))?;
    if imported.code != Some(0) {
        let _ = std::fs::remove_dir_all(&state);
        if imported.stderr.contains("not implemented") {
            return Err(format!("demo: engine not implemented yet ({})", imported.stderr.trim()));
        }
        return Err(format!("demo: engine import failed: {}", imported.stderr.trim()));
    }
    println!("demo: imported busybox from {}", rootfs.display());
    let result = (|| {
        let run = run_bounded(&mut engine_cmd(&["run", "-d", "--init", "-p", "8080:80", "--name", "demo", "busybox", "httpd", "-f", "-p", "80", "-h", "/var/www"]),
            Duration::from_secs(60),
        )?;
        if run.code != Some(0) {
            return Err(format!("demo: engine run failed: {}", run.stderr.trim()));
        }
        println!("demo: engine run -d --init -p 8080:80 --name demo busybox httpd -> {}", run.stdout.trim());
        let page = fetch("127.0.0.1:8080", Duration::from_secs(10))?;
        println!("demo: GET http://127.0.0.1:8080/ ->\n{page}");
        let ps = run_bounded(&mut engine_cmd(&["ps"]), Duration::from_secs(30))?;
        println!("demo: engine ps\n{}", ps.stdout);
        Ok(())
    })();
    let _ = run_bounded(&mut engine_cmd(&["rm", "-f", "demo"]), Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&state);
    if std::path::Path::new("/sys/class/net").join(&bridge).exists() {
        let _ = run_bounded(Command::new("ip").args(["link", "delete", &bridge]), Duration::from_secs(10));
    }
    result
}

/// HTTP/1.0 GET /, retried until `timeout` while the server comes up.
fn fetch(addr: &str, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(body) if body.starts_with("HTTP/") => return Ok(body),
            _ if Instant::now() > deadline => return Err(format!("demo: no HTTP answer from {addr} within {timeout:?}")),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
