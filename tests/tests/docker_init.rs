//! Docker drives skiff's init (issue 3): a private dockerd with
//! `--init-path <dist>/init`, and `docker run --init` on a busybox image.
//! Each test owns its dockerd, bridge, subnet, names and temp dir.

use skiff_tests::docker::{Dockerd, DockerdOpts};
use skiff_tests::{bin, text};
use std::time::{Duration, Instant};

fn dockerd_with_our_init() -> (Dockerd, String) {
    let d = Dockerd::start(DockerdOpts { init_path: Some(bin("init")), ..Default::default() });
    let image = d.unique_name("skiff-init-busybox");
    d.import_busybox(&image);
    (d, image)
}

#[test]
fn docker_run_init_is_skiff_init() {
    let (d, image) = dockerd_with_our_init();

    // docker bind-mounts --init-path at /sbin/docker-init and runs it as PID 1.
    let cmdline = d.docker_ok(&["run", "--rm", "--init", &image, "cat", "/proc/1/cmdline"]);
    let argv: Vec<&str> = cmdline.split('\0').collect();
    assert_eq!(argv.first(), Some(&"/sbin/docker-init"), "PID 1's argv: {argv:?}");
    assert!(argv.ends_with(&["cat", "/proc/1/cmdline", ""]), "PID 1 runs the command: {argv:?}");

    // PID 1's executable is byte for byte our dist binary.
    let exe = d.docker(&["run", "--rm", "--init", &image, "cat", "/proc/1/exe"]);
    assert!(exe.status.success(), "cat /proc/1/exe: {}", text(&exe.stderr));
    let ours = std::fs::read(bin("init")).expect("read dist init");
    assert!(exe.stdout == ours, "PID 1 is not {} ({} bytes, ours {})", bin("init").display(), exe.stdout.len(), ours.len());

    let version = d.docker_ok(&["run", "--rm", "--init", &image, "/sbin/docker-init", "--version"]);
    assert!(version.contains("init (skiff) version"), "docker-init --version in the container: {version:?}");

    // dockerd runs `init --version` itself and parses tini's format
    // "NAME version X.Y.Z - git.COMMIT"; `docker info` shows the commit.
    let host_version = text(&skiff_tests::run(std::process::Command::new(bin("init")).arg("--version"), Duration::from_secs(10)).stdout);
    let commit = host_version.trim().rsplit_once(" - git.").map(|(_, c)| c.to_string());
    let commit = commit.unwrap_or_else(|| panic!("init --version {host_version:?} lacks tini's \" - git.COMMIT\" that dockerd parses"));
    let info = d.docker_ok(&["info", "--format", "{{.InitCommit.ID}}"]);
    assert_eq!(info.trim(), commit, "docker info's init version");
    d.stop();
}

#[test]
fn docker_run_init_passes_exit_codes_through() {
    let (d, image) = dockerd_with_our_init();
    for (script, want) in [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("kill -TERM $$", 143), ("kill -KILL $$", 137)] {
        let out = d.docker(&["run", "--rm", "--init", &image, "sh", "-c", script]);
        assert_eq!(out.status.code(), Some(want), "docker run --init sh -c '{script}': {}", text(&out.stderr).trim());
    }
    // docker's own codes for a command that cannot run, through init
    let out = d.docker(&["run", "--rm", "--init", &image, "/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "missing program: {}", text(&out.stderr).trim());
    d.stop();
}

#[test]
fn docker_stop_through_init_is_prompt_and_exits_143() {
    let (d, image) = dockerd_with_our_init();
    let name = d.unique_name("skiff-init-stop");
    // sleep as PID 1 would ignore SIGTERM and docker stop would wait the
    // whole 10 s then SIGKILL (137); init forwards it, so sleep dies of it.
    d.docker_ok(&["run", "--detach", "--init", "--name", &name, &image, "sleep", "1000"]);
    let running = d.docker_ok(&["inspect", "--format", "{{.State.Running}}", &name]);
    assert_eq!(running.trim(), "true");

    let started = Instant::now();
    d.docker_ok(&["stop", "--time", "10", &name]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "docker stop -t 10 took {took:?}: init did not forward SIGTERM");

    let code = d.docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(code.trim(), "143", "exit code after docker stop (128 + SIGTERM)");
    d.docker_ok(&["rm", &name]);
    d.stop();
}
