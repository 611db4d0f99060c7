//! seccomp (config-linux.md "Seccomp") through the dist binary, asserted
//! from inside the container: what a syscall returns, how the process dies,
//! /proc/self/status. Docker's default profile is the one Debian ships in
//! golang-github-containers-common, turned into `linux.seccomp` the way
//! moby's profiles/seccomp does for Docker's default capabilities.

use serde_json::{json, Value};
use skiff_tests::bundle::Bundle;
use skiff_tests::{require, text};
use skiff_runtime::capabilities::DOCKER_DEFAULT as DOCKER_CAPS;
use std::path::PathBuf;


/// What busybox's sh, echo, grep, cat, ls, mkdir and the runtime's last
/// steps need (x86_64 and aarch64 names; names an arch lacks are skipped).
const SH_SYSCALLS: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "close",
    "open",
    "openat",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "mremap",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "ioctl",
    "access",
    "faccessat",
    "faccessat2",
    "pipe",
    "pipe2",
    "dup",
    "dup2",
    "dup3",
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "gettid",
    "getpgrp",
    "setpgid",
    "sendfile",
    "clone",
    "fork",
    "vfork",
    "execve",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "kill",
    "tgkill",
    "uname",
    "fcntl",
    "getcwd",
    "chdir",
    "readlink",
    "readlinkat",
    "getdents64",
    "prctl",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "prlimit64",
    "getrlimit",
    "getrandom",
    "rseq",
    "futex",
    "poll",
    "ppoll",
    "umask",
    "sysinfo",
];

/// A bundle running `script` with `seccomp` as linux.seccomp.
fn bundle(tag: &str, script: &str, seccomp: Value) -> Bundle {
    let mut b = Bundle::new(tag);
    b.sh(script);
    b.config["linux"]["seccomp"] = seccomp;
    b
}

/// Runs the container to its end: (exit code, stdout, stderr).
fn run(b: &Bundle) -> (i32, String, String) {
    let out = b.run();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn allow_list(extra: Value) -> Value {
    let mut rules = vec![json!({"names": SH_SYSCALLS, "action": "SCMP_ACT_ALLOW"})];
    rules.extend(extra.as_array().cloned().unwrap_or_default());
    json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules})
}

const MKDIR: [&str; 2] = ["mkdir", "mkdirat"];

#[test]
fn default_errno_with_an_allow_list() {
    let script = "echo ok; ls / >/dev/null && echo listed; grep '^Seccomp:' /proc/self/status; \
                  mkdir /dev/shm/d; echo mkdir=$?";
    let b = bundle("sc-allow", script, allow_list(json!([])));
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("ok\nlisted\n"), "{out}\n{err}");
    assert!(out.contains("Seccomp:\t2"), "no filter in /proc/self/status: {out}");
    assert!(out.contains("mkdir=1"), "{out}\n{err}");
    assert!(err.contains("Operation not permitted"), "mkdir must fail with EPERM: {err}");

    // defaultErrnoRet is what the rest gets.
    let mut p = allow_list(json!([]));
    p["defaultErrnoRet"] = json!(38);
    let b = bundle("sc-allow38", "mkdir /dev/shm/d; echo mkdir=$?", p);
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("mkdir=1") && err.contains("Function not implemented"), "{out}\n{err}");
}

#[test]
fn an_errno_rule_denies_mkdir_with_eacces() {
    let p = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
    let b = bundle(
        "sc-mkdir",
        "mkdir /dev/shm/d; echo mkdir=$?; touch /dev/shm/f && echo touched; echo ok > /dev/shm/f && cat /dev/shm/f",
        p,
    );
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("mkdir=1") && err.contains("Permission denied"), "{out}\n{err}");
    assert!(out.contains("touched\nok\n"), "{out}\n{err}");
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let p = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall", "mkdir", "sys_nonexistent", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
    let b = bundle("sc-unknown", "mkdir /dev/shm/d; echo mkdir=$?", p);
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("mkdir=1") && err.contains("Permission denied"), "{out}\n{err}");
}

#[test]
fn argument_comparisons() {
    // personality(PER_LINUX32 = 8) is denied; a value differing only in the
    // high half (0x1_0000_0000 vs linux64's 0) must not match;
    // setpriority(PRIO_PROCESS, .., prio > 10) is denied.
    let p = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 0, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_EQ"}]},
        {"names": ["setpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 10, "op": "SCMP_CMP_GT"}]}
    ]});
    let script = "linux32 true; echo linux32=$?; linux64 true; echo linux64=$?; \
                  renice 5 -p $$; echo nice5=$?; renice 15 -p $$; echo nice15=$?";
    let b = bundle("sc-args", script, p);
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("linux32=1\nlinux64=0\nnice5=0\nnice15=1\n"), "{out}\n{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(!err.contains("Operation not permitted"), "the high-half rule matched: {err}");
}

#[test]
fn kill_process_kills_the_container() {
    let p = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]});
    let mut b = bundle("sc-kill", "", p);
    b.args(&["uname", "-a"]);
    let (code, out, err) = run(&b);
    assert_eq!(code, 128 + libc::SIGSYS, "{out}\n{err}");
    assert!(out.is_empty(), "uname printed {out}");
}

#[test]
fn kill_thread_and_trap_end_the_caller_with_sigsys() {
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_TRAP"] {
        let p = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["sysinfo"], "action": action}]});
        let b = bundle("sc-killthr", "free; echo free=$?", p);
        let (code, out, err) = run(&b);
        assert_eq!(code, 0, "{action}: {out}\n{err}");
        assert_eq!(out, format!("free={}\n", 128 + libc::SIGSYS), "{action}: {err}");
    }
}

#[test]
fn log_allows() {
    let p = allow_list(json!([{"names": MKDIR, "action": "SCMP_ACT_LOG"}]));
    let script = "grep '^Seccomp:' /proc/self/status; mkdir /dev/shm/d; echo mkdir=$?; test -d /dev/shm/d && echo made; \
                  rmdir /dev/shm/d; echo rmdir=$?";
    let b = bundle("sc-log", script, p);
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{out}\n{err}");
    // Logged and allowed, while what the list lacks (rmdir) is still refused.
    assert_eq!(out, "Seccomp:\t2\nmkdir=0\nmade\nrmdir=1\n", "{err}");
}

#[test]
fn the_filter_is_installed_with_and_without_no_new_privs_for_an_unprivileged_user() {
    // Without no_new_privs the filter must go in while the process still has
    // CAP_SYS_ADMIN; with it, last. Either way the user's program runs under it.
    for nnp in [false, true] {
        let p = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
        let mut b = bundle("sc-user", "id -u; grep '^Seccomp:' /proc/self/status; grep '^NoNewPrivs:' /proc/self/status; mkdir /dev/shm/d; echo mkdir=$?", p);
        b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["process"]["capabilities"] = json!({"bounding": [], "effective": [], "permitted": []});
        let (code, out, err) = run(&b);
        assert_eq!(code, 0, "nnp={nnp}: {out}\n{err}");
        assert!(out.starts_with("1000\nSeccomp:\t2\n"), "nnp={nnp}: {out}\n{err}");
        assert!(out.contains(&format!("NoNewPrivs:\t{}", nnp as u8)), "nnp={nnp}: {out}");
        assert!(out.contains("mkdir=1") && err.contains("Permission denied"), "nnp={nnp}: {out}\n{err}");
    }
}

#[test]
fn a_malformed_profile_is_refused_by_create() {
    for (action, want) in [("SCMP_ACT_BOGUS", "SCMP_ACT_BOGUS"), ("SCMP_ACT_NOTIFY", "SCMP_ACT_NOTIFY is not supported")] {
        let p = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": action}]});
        let b = bundle("sc-bad", "true", p);
        let out = b.create();
        assert!(!out.status.success(), "{action}: create succeeded");
        assert!(text(&out.stderr).contains(want), "{action}: {}", text(&out.stderr));
        assert_eq!(b.status(), "absent", "{action}: container left behind");
    }
}

/// moby's profiles/seccomp setupSeccomp: Docker's profile format to
/// `linux.seccomp` for a container with bounding set `caps` on this arch.
fn docker_profile(caps: &[&str]) -> Value {
    let path = require("/usr/share/containers/seccomp.json", "golang-github-containers-common");
    let p: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read seccomp.json")).expect("parse seccomp.json");
    let (goarch, native) =
        if cfg!(target_arch = "x86_64") { ("amd64", "SCMP_ARCH_X86_64") } else { ("arm64", "SCMP_ARCH_AARCH64") };
    let mut arches = Vec::new();
    for m in p["archMap"].as_array().expect("archMap") {
        if m["architecture"] == native {
            arches.push(m["architecture"].clone());
            arches.extend(m["subArchitectures"].as_array().cloned().unwrap_or_default());
        }
    }
    let has = |list: &Value, v: &str| list.as_array().is_some_and(|l| l.iter().any(|x| x == v));
    let mut calls = Vec::new();
    for c in p["syscalls"].as_array().expect("syscalls") {
        let (inc, exc) = (&c["includes"], &c["excludes"]);
        if has(&exc["arches"], goarch) || caps.iter().any(|cap| has(&exc["caps"], cap)) {
            continue;
        }
        if inc["arches"].as_array().is_some_and(|l| !l.is_empty()) && !has(&inc["arches"], goarch) {
            continue;
        }
        if inc["caps"].as_array().is_some_and(|l| l.iter().any(|x| !caps.iter().any(|c| x == c))) {
            continue;
        }
        assert!(inc.get("minKernel").is_none() && exc.get("minKernel").is_none(), "minKernel is not handled");
        let names = if c["names"].is_array() { c["names"].clone() } else { json!([c["name"]]) };
        let mut call = json!({"names": names, "action": c["action"]});
        if c["args"].as_array().is_some_and(|a| !a.is_empty()) {
            call["args"] = c["args"].clone();
        }
        if !c["errnoRet"].is_null() {
            call["errnoRet"] = c["errnoRet"].clone();
        }
        calls.push(call);
    }
    let mut v = json!({"defaultAction": p["defaultAction"], "architectures": arches, "syscalls": calls});
    if !p["defaultErrnoRet"].is_null() {
        v["defaultErrnoRet"] = p["defaultErrnoRet"].clone();
    }
    v
}

/// Docker's container: default caps, no_new_privs off (the filter goes in
/// before the capabilities are dropped).
fn docker_bundle(tag: &str, runtime: Option<PathBuf>, script: &str, caps: &[&str], seccomp: Option<Value>) -> Bundle {
    let mut b = match runtime {
        Some(r) => Bundle::with_runtime(tag, r),
        None => Bundle::new(tag),
    };
    b.sh(script);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    if let Some(s) = seccomp {
        b.config["linux"]["seccomp"] = s;
    }
    b
}

const PROBE: &str =
    "echo ok; ls /bin >/dev/null && echo ls=0; cat /proc/self/status | grep -E '^(Seccomp|Seccomp_filters):'; \
    unshare -n true; echo unshare=$?; hostname other; echo hostname=$?; linux32 true; echo linux32=$?; \
    renice 5 -p $$; echo nice=$?; mkdir /dev/shm/d; echo mkdir=$?; sleep 0; echo sleep=$?";

#[test]
fn dockers_default_profile_loads_and_works() {
    let profile = docker_profile(&DOCKER_CAPS);
    let mut flagged = profile.clone();
    flagged["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]);
    let b = docker_bundle("sc-docker", None, PROBE, &DOCKER_CAPS, Some(flagged));
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{out}\n{err}");
    for want in [
        "ok\n",
        "ls=0\n",
        "Seccomp:\t2\n",
        "Seccomp_filters:\t1\n",
        "unshare=1\n",
        "hostname=1\n",
        "linux32=0\n",
        "nice=0\n",
        "mkdir=0\n",
        "sleep=0\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}\n{err}");
    }
    assert!(err.contains("Operation not permitted"), "{err}");

    // The profile's own work: with CAP_SYS_ADMIN in the container but the
    // profile made for the default capabilities, sethostname is refused by
    // seccomp (EPERM), though the capability alone would allow it.
    let mut caps = DOCKER_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    let script = "hostname other; echo hostname=$?";
    let b = docker_bundle("sc-dock-adm", None, script, &caps, None);
    let (_, out, err) = run(&b);
    assert!(out.contains("hostname=0"), "without the profile: {out}\n{err}");
    let b = docker_bundle("sc-dock-adm2", None, script, &caps, Some(profile));
    let (_, out, err) = run(&b);
    assert!(out.contains("hostname=1") && err.contains("Operation not permitted"), "with the profile: {out}\n{err}");
}

#[test]
fn dockers_default_profile_behaves_as_under_runc() {
    let runc = require("/usr/sbin/runc", "runc");
    let profile = docker_profile(&DOCKER_CAPS);
    let probe = format!("{PROBE}; chroot / true; echo chroot=$?; nsenter --net=/proc/self/ns/net true; echo setns=$?");
    let ours = docker_bundle("sc-vs-ours", None, &probe, &DOCKER_CAPS, Some(profile.clone()));
    let theirs = docker_bundle("sc-vs-runc", Some(runc), &probe, &DOCKER_CAPS, Some(profile));
    let (c1, o1, e1) = run(&ours);
    let (c2, o2, e2) = run(&theirs);
    assert_eq!((c1, &o1), (c2, &o2), "ours:\n{o1}\n{e1}\nrunc:\n{o2}\n{e2}");
}
