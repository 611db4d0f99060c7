//! init as real processes: tini's behaviour, driven through the dist binary.

use skiff_tests::{bin, busybox, run, text, wait_child, wait_until, TempDir};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn init() -> Command {
    Command::new(bin("init"))
}

/// `init [opts] -- busybox sh -c script`
fn init_sh(opts: &[&str], script: &str) -> Command {
    let mut c = init();
    c.args(opts).arg("--").arg(busybox()).args(["sh", "-c", script]);
    c
}

fn code(c: &mut Command) -> i32 {
    run(c, T).status.code().expect("init exited by a signal")
}

#[test]
fn exit_codes_pass_through() {
    for n in 0..=255 {
        assert_eq!(code(&mut init_sh(&["-s"], &format!("exit {n}"))), n, "exit {n}");
    }
}

#[test]
fn expected_codes_are_remapped_to_zero() {
    assert_eq!(code(&mut init_sh(&["-s", "-e", "3", "-e143"], "exit 3")), 0);
    assert_eq!(code(&mut init_sh(&["-s", "-e", "3", "-e143"], "exit 4")), 4);
    assert_eq!(code(&mut init_sh(&["-s", "-e", "3", "-e143"], "kill -TERM $$")), 0);
}

#[test]
fn death_by_signal_is_128_plus_n() {
    assert_eq!(code(&mut init_sh(&["-s"], "kill -USR1 $$")), 128 + libc::SIGUSR1);
    assert_eq!(code(&mut init_sh(&["-s"], "kill -KILL $$")), 128 + libc::SIGKILL);
}

#[test]
fn missing_and_unexecutable_programs() {
    let out = run(init().args(["-s", "--", "/nonexistent/prog"]), T);
    assert_eq!(out.status.code(), Some(127));
    assert!(text(&out.stderr).contains("/nonexistent/prog"), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("No such file or directory"), "{}", text(&out.stderr));
    let out = run(init().args(["-s", "--", "/etc/passwd"]), T);
    assert_eq!(out.status.code(), Some(126));
    assert!(text(&out.stderr).contains("Permission denied"), "{}", text(&out.stderr));
}

#[test]
fn bad_options_print_usage_and_exit_1() {
    for args in [&["-x", "--", "true"][..], &["-e", "300", "true"], &["-p", "SIGNOPE", "true"], &[], &["-e"]] {
        let out = run(init().args(args), T);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("Usage: init"), "{args:?}: {err}");
    }
    let out = run(init().args(["-x", "--", "true"]), T);
    assert!(text(&out.stderr).contains("unknown option -x"));
}

#[test]
fn version_help_and_license() {
    let out = run(init().arg("--version"), T);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("init (skiff) version "), "{}", text(&out.stdout));
    let out = run(init().arg("-h"), T);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("TINI_KILL_PROCESS_GROUP"));
    let out = run(init().arg("-l"), T);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("Apache License"));
}

/// Every catchable signal but SIGCHLD reaches the child, which records it.
#[test]
fn catchable_signals_are_forwarded() {
    let dir = TempDir::new("init-signals");
    let got = dir.path().join("got");
    let ready = dir.path().join("ready");
    let stop = dir.path().join("stop");
    let sigs: Vec<i32> = (1..=31).filter(|&s| ![libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD].contains(&s)).collect();
    let mut script = String::new();
    for s in &sigs {
        script += &format!("trap 'echo {s} >> {}' {s}\n", got.display());
    }
    // Bounded: 3000 x 10 ms at most.
    script += &format!(
        "touch {}\ni=0\nwhile [ $i -lt 3000 ] && [ ! -e {} ]; do sleep 0.01; i=$((i+1)); done\n",
        ready.display(),
        stop.display()
    );
    let mut child = init_sh(&["-s"], &script).stdin(Stdio::null()).spawn().expect("spawn init");
    let pid = child.id() as i32;
    assert!(wait_until(Duration::from_secs(10), || ready.exists()), "child never got ready");
    for &s in &sigs {
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(pid, s) }, 0);
        let seen = wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&got).unwrap_or_default().lines().any(|l| l == s.to_string())
        });
        assert!(seen, "signal {s} was not forwarded; got {:?}", std::fs::read_to_string(&got));
    }
    std::fs::write(&stop, "").unwrap();
    assert_eq!(wait_child(&mut child, T).code(), Some(0));
}

/// SIGTERM sent as soon as init has taken over its signals, while its child
/// is still starting (forked, maybe not exec'd yet), is delivered, not lost.
#[test]
fn no_signal_is_lost_at_start() {
    for _ in 0..20 {
        let mut child = init().args(["-s", "--"]).arg(busybox()).args(["sleep", "20"]).spawn().expect("spawn");
        // Signals are blocked before the fork, so once a child exists (it
        // may not have exec'd yet) nothing sent to init may be lost.
        let children = format!("/proc/{0}/task/{0}/children", child.id());
        let forked = wait_until(Duration::from_secs(5), || {
            !std::fs::read_to_string(&children).unwrap_or_default().trim().is_empty()
        });
        assert!(forked, "init never started its child");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let st = wait_child(&mut child, Duration::from_secs(10));
        assert_eq!(st.code(), Some(143));
    }
}

/// Inside a new PID namespace init is PID 1 and reaps a storm of orphans.
#[test]
fn zombie_storm_is_reaped_as_pid_1() {
    skiff_tests::require("/usr/bin/unshare", "util-linux");
    let n = 2000;
    let script = format!("echo pid=$$ ppid=$PPID\ni=0\nwhile [ $i -lt {n} ]; do (true &); i=$((i+1)); done\nsleep 0.3");
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "--kill-child"]).arg(bin("init")).args(["-w", "--"]).arg(busybox()).args(["sh", "-c", &script]);
    let out = run(&mut c, Duration::from_secs(120));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(text(&out.stdout).contains("ppid=1"), "init is not PID 1: {}", text(&out.stdout));
    let reaped = err.lines().filter(|l| l.contains("Reaped zombie process with pid=")).count();
    assert_eq!(reaped, n, "reaped {reaped} of {n} orphans");
    assert!(!err.contains("subreaper"), "PID 1 must not warn: {err}");
}

#[test]
fn subreaper_reaps_orphans_when_not_pid_1() {
    let script = "(sleep 0.1 &); sleep 0.5";
    for env in [false, true] {
        let mut c = if env {
            let mut c = init_sh(&["-w"], script);
            c.env("TINI_SUBREAPER", "1");
            c
        } else {
            init_sh(&["-s", "-w"], script)
        };
        let out = run(&mut c, T);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0));
        assert!(err.contains("Reaped zombie process with pid="), "env={env}: {err}");
        assert!(!err.contains("isn't registered as a child subreaper"), "{err}");
    }
}

#[test]
fn warns_without_subreaper_unless_quiet() {
    let out = run(init().args(["--"]).arg(busybox()).arg("true"), T);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("isn't registered as a child subreaper"), "{}", text(&out.stderr));
    let out = run(init().env("TINI_VERBOSITY", "0").args(["--"]).arg(busybox()).arg("true"), T);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

fn gone_or_zombie(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// With -g a signal reaches the whole process group: the grandchild too.
#[test]
fn group_signal_reaches_grandchildren() {
    for (flag, env) in [("-g", false), ("", true)] {
        let dir = TempDir::new("init-group");
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}.tmp; mv {0}.tmp {0}; wait", pidfile.display());
        let opts: &[&str] = if flag.is_empty() { &["-s"] } else { &["-s", flag] };
        let mut c = init_sh(opts, &script);
        if env {
            c.env("TINI_KILL_PROCESS_GROUP", "1");
        }
        let mut child = c.spawn().expect("spawn");
        assert!(wait_until(Duration::from_secs(10), || pidfile.exists()));
        let grandchild: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let st = wait_child(&mut child, T);
        let dead = wait_until(Duration::from_secs(10), || gone_or_zombie(grandchild));
        if !dead {
            // SAFETY: cleanup of the leftover grandchild.
            unsafe { libc::kill(grandchild, libc::SIGKILL) };
        }
        assert!(dead, "grandchild {grandchild} survived the group signal");
        assert_eq!(st.code(), Some(143));
    }
}

/// -p SIG: init gets SIG when its parent dies, forwards it, and exits.
#[test]
fn parent_death_signal() {
    let script = format!("{} -p SIGTERM -s -- {} sleep 30 & echo $!; sleep 0.3", bin("init").display(), busybox().display());
    let out = run(Command::new(busybox()).args(["sh", "-c", &script]), T);
    let pid: i32 = text(&out.stdout).trim().parse().expect("init pid");
    let dead = wait_until(Duration::from_secs(10), || gone_or_zombie(pid));
    if !dead {
        // SAFETY: cleanup of the leftover init (and its group).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(dead, "init {pid} outlived its parent despite -p SIGTERM");
}

fn status_field(status: &str, key: &str) -> String {
    status.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_default().trim().to_string()
}

/// The child gets the signal mask and ignored set init was started with.
#[test]
fn child_inherits_start_up_signal_state() {
    let with_state = |c: &mut Command| {
        // SAFETY: async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR1);
                libc::sigaddset(&mut set, libc::SIGWINCH);
                libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                libc::signal(libc::SIGUSR2, libc::SIG_IGN);
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                Ok(())
            });
        }
    };
    let mut direct = Command::new(busybox());
    direct.args(["cat", "/proc/self/status"]);
    with_state(&mut direct);
    let expected = text(&run(&mut direct, T).stdout);
    let mut under = init();
    under.args(["-s", "--"]).arg(busybox()).args(["cat", "/proc/self/status"]);
    with_state(&mut under);
    let got = text(&run(&mut under, T).stdout);
    for key in ["SigBlk:", "SigIgn:"] {
        assert_eq!(status_field(&got, key), status_field(&expected, key), "{key}");
    }
    assert_ne!(status_field(&got, "SigBlk:"), "0000000000000000");
}

/// With a terminal on stdin the child runs in its own process group, which
/// is the terminal's foreground group.
#[test]
fn child_becomes_foreground_process_group_on_a_tty() {
    // SAFETY: standard pty allocation; fds are owned below.
    let (master, slave) = unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let name = std::ffi::CStr::from_ptr(libc::ptsname(m)).to_owned();
        let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        assert!(s >= 0, "open pty slave");
        (m, s)
    };
    let mut c = init();
    c.args(["-s", "--"]).arg(busybox()).args(["cat", "/proc/self/stat"]);
    // SAFETY: async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            libc::setsid();
            libc::ioctl(slave, libc::TIOCSCTTY, 0);
            for fd in 0..3 {
                libc::dup2(slave, fd);
            }
            Ok(())
        });
    }
    let mut child = c.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit()).spawn().expect("spawn");
    let init_pid = child.id() as i32;
    let st = wait_child(&mut child, T);
    // SAFETY: closing our copy of the slave lets the master read EOF/EIO.
    unsafe { libc::close(slave) };
    let mut out = Vec::new();
    // SAFETY: master is a valid fd we own.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(master) };
    let _ = f.read_to_end(&mut out); // EIO at hangup ends the read.
    assert_eq!(st.code(), Some(0), "{}", text(&out));
    let stat = text(&out);
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // After ")": state ppid pgrp session tty_nr tpgid
    let (ppid, pgrp, tpgid): (i32, i32, i32) = (fields[1].parse().unwrap(), fields[2].parse().unwrap(), fields[5].parse().unwrap());
    assert_eq!(ppid, init_pid, "{stat}");
    assert_ne!(pgrp, init_pid, "child must have its own process group: {stat}");
    assert_eq!(tpgid, pgrp, "child's group must be the terminal's foreground group: {stat}");
}

#[test]
fn posixly_correct_stops_at_the_program() {
    let mut c = init();
    c.env("POSIXLY_CORRECT", "1").arg("-s").arg(busybox()).args(["sh", "-c", "exit 5"]);
    assert_eq!(code(&mut c), 5);
    // Without it, glibc-style permutation takes `-c` as init's option.
    let out = run(init().arg("-s").arg(busybox()).args(["sh", "-c", "exit 5"]), T);
    assert_eq!(out.status.code(), Some(1));
}
