//! seccomp for containers, as `docker run` does it: every container gets
//! Docker's default profile, unless `--security-opt seccomp=unconfined` or
//! `--privileged` turn filtering off or `seccomp=PATH` names a profile file
//! (Docker's format, or a plain `linux.seccomp`). The profile's conditions
//! are settled for the container's capabilities by the runtime library's
//! `seccomp::docker`, and the result is compiled once here so that a bad
//! profile fails `run` with its own message before anything starts.
//!
//! The default profile is an allow list, as Docker's: what a program in a
//! container needs is allowed, calls that reach outside the container
//! (modules, kexec, keyrings, clock setting, new namespaces, mounting,
//! tracing other processes, ...) are allowed only with the capability that
//! grants them, and the rest fail with EPERM. Calls newer than the list fail
//! with ENOSYS (the runtime's stub), so C libraries fall back.

use crate::error::{err, Context, Error, Result};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Which profile a container gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Choice {
    #[default]
    Default,
    Unconfined,
    File(PathBuf),
}

/// What `--security-opt` asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityOpts {
    pub seccomp: Choice,
    pub no_new_privileges: bool,
}

/// Parses docker's `--security-opt` values (`key=value`, or the older
/// `key:value`). AppArmor and SELinux options are accepted and have no
/// effect: skiff loads neither.
pub fn parse(opts: &[String]) -> Result<SecurityOpts> {
    let mut s = SecurityOpts::default();
    for o in opts {
        let (k, v) = match o.split_once('=') {
            Some(kv) => kv,
            None => o.split_once(':').unwrap_or((o.as_str(), "")),
        };
        match (k, v) {
            ("seccomp", "unconfined") => s.seccomp = Choice::Unconfined,
            ("seccomp", "") => return err(format!("invalid --security-opt {o:?}: seccomp needs unconfined or a profile path")),
            ("seccomp", path) => s.seccomp = Choice::File(PathBuf::from(path)),
            ("no-new-privileges", "" | "true") => s.no_new_privileges = true,
            ("no-new-privileges", "false") => s.no_new_privileges = false,
            ("no-new-privileges", _) => return err(format!("invalid --security-opt {o:?}: no-new-privileges takes true or false")),
            ("apparmor" | "label", _) => {}
            _ => {
                return err(format!(
                    "invalid --security-opt {o:?} (seccomp=unconfined|PATH, no-new-privileges[=true|false], apparmor=..., label=...)"
                ))
            }
        }
    }
    Ok(s)
}

/// Whether this kernel has seccomp (CONFIG_SECCOMP_FILTER; small kernels
/// may not).
fn kernel_has_seccomp() -> bool {
    // SAFETY: PR_GET_SECCOMP reads this process's mode; EINVAL means the
    // kernel has no seccomp.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP) >= 0 }
}

/// The Docker-format profile `choice` names (`None`: no filter). Without
/// seccomp in the kernel the default profile is skipped, as docker does,
/// and a named one is an error.
pub fn profile(choice: &Choice) -> Result<Option<Value>> {
    match choice {
        Choice::Unconfined => Ok(None),
        Choice::Default if !kernel_has_seccomp() => Ok(None),
        Choice::Default => Ok(Some(default_profile())),
        Choice::File(_) if !kernel_has_seccomp() => err("seccomp is not enabled in your kernel, cannot run a custom seccomp profile"),
        Choice::File(p) => {
            let text = std::fs::read(p).ctx(|| format!("opening seccomp profile ({}) failed", p.display()))?;
            let v = serde_json::from_slice(&text)
                .map_err(|e| Error(format!("decoding seccomp profile ({}) failed: {e}", p.display())))?;
            Ok(Some(v))
        }
    }
}

/// `profile` as the `linux.seccomp` of a container with bounding set
/// `caps` on this machine, checked by compiling it as the runtime will.
pub fn for_container(profile: &Value, caps: &[String]) -> Result<Option<Value>> {
    use skiff_runtime::seccomp::docker::{host_goarch, host_kernel, to_oci, Target};
    let t = Target { caps, goarch: host_goarch(), kernel: host_kernel() };
    let bad = |e: skiff_runtime::error::Error| Error(format!("seccomp profile: {}", e.0));
    let Some(s) = to_oci(profile, &t).map_err(bad)? else { return Ok(None) };
    let mut cfg = json!({"linux": {"seccomp": s}});
    skiff_runtime::seccomp::compat(&mut cfg);
    let parsed = serde_json::from_value(cfg["linux"]["seccomp"].clone()).map_err(|e| Error(format!("seccomp profile: {e}")))?;
    skiff_runtime::seccomp::compile(&parsed).map_err(bad)?;
    Ok(Some(s))
}

/// Allowed for every container.
const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget", "capset", "chdir", "chmod",
    "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime",
    "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range",
    "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat",
    "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat",
    "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
    "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage",
    "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32",
    "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl",
    "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
    "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
    "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64",
    "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readdir", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
    "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
    "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
    "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
    "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
    "sigaction", "sigaltstack", "signal", "signalfd", "signalfd4", "sigpending", "sigprocmask", "sigreturn", "sigsuspend", "socket", "socketcall", "socketpair", "splice",
    "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
    "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
    "waitpid", "write", "writev",
];

/// Allowed with a capability: (capability, calls).
const WITH_CAP: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount",
            "mount_setattr", "move_mount", "name_to_handle_at", "open_tree", "perf_event_open", "pivot_root", "quotactl", "quotactl_fd",
            "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
        ],
    ),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Allowed on some architectures (Go names): (arches, calls).
const ON_ARCH: &[(&[&str], &[&str])] = &[
    (&["amd64", "x32", "386"], &["arch_prctl", "modify_ldt"]),
    (&["arm", "arm64"], &["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"]),
    (&["riscv64"], &["riscv_flush_icache"]),
];

/// Namespace flags of clone(2): CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC |
/// NEWUSER | NEWPID | NEWNET. Without CAP_SYS_ADMIN clone may not set them.
const CLONE_NAMESPACES: u64 = 0x7e02_0000;

/// Docker's default profile, in Docker's format.
pub fn default_profile() -> Value {
    let mut rules = vec![json!({"names": ALLOWED, "action": "SCMP_ACT_ALLOW"})];
    // personality(2): the plain Linux personalities and queries only.
    for p in [0x0u64, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
        rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]}));
    }
    for (arches, names) in ON_ARCH {
        rules.push(json!({"names": names, "action": "SCMP_ACT_ALLOW", "includes": {"arches": arches}}));
    }
    for (cap, names) in WITH_CAP {
        rules.push(json!({"names": names, "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}}));
    }
    // Threads and plain forks, but no new namespaces, without CAP_SYS_ADMIN
    // (s390 passes the flags second).
    rules.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]},
                      "args": [{"index": 0, "value": CLONE_NAMESPACES, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
    rules.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390", "s390x"]}, "excludes": {"caps": ["CAP_SYS_ADMIN"]},
                      "args": [{"index": 1, "value": CLONE_NAMESPACES, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
    // clone3 passes its flags in memory, out of a filter's reach: ENOSYS
    // makes C libraries fall back to clone, which the rules above check.
    rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}));
    // ptrace(2) can no longer bypass seccomp since Linux 4.8.
    rules.push(json!({"names": ["process_vm_readv", "process_vm_writev", "ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": []},
        ],
        "syscalls": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn caps(extra: &[&str]) -> Vec<String> {
        skiff_runtime::capabilities::DOCKER_DEFAULT.iter().chain(extra).map(|c| c.to_string()).collect()
    }

    /// Calls that profile `p` (Docker's format) allows whatever their
    /// arguments, for a container with `caps` on `goarch`.
    fn allowed(p: &Value, caps: &[String], goarch: &str) -> BTreeSet<String> {
        let t = skiff_runtime::seccomp::docker::Target { caps, goarch, kernel: (6, 1) };
        let s = skiff_runtime::seccomp::docker::to_oci(p, &t).unwrap().unwrap();
        let mut out = BTreeSet::new();
        for r in s["syscalls"].as_array().unwrap() {
            if r["action"] == "SCMP_ACT_ALLOW" && r["args"].as_array().is_none_or(|a| a.is_empty()) {
                out.extend(r["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()));
            }
        }
        out
    }

    /// Allowed by containers-common's profile (podman's, which also allows
    /// user namespaces), gated by a capability or denied in Docker's.
    const PODMAN_ONLY: &[&str] = &[
        "clone", "clone3", "fsconfig", "fsmount", "fsopen", "fspick", "get_mempolicy", "keyctl", "mbind", "mount",
        "mount_setattr", "move_mount", "name_to_handle_at", "open_tree", "pidfd_getfd", "pivot_root", "query_module",
        "reboot", "set_mempolicy", "setns", "syscall", "syslog", "timerfd", "umount", "umount2", "unshare",
    ];

    /// Calls that reach outside a container: denied with Docker's default
    /// capabilities.
    const OUTSIDE: &[&str] = &[
        "acct", "add_key", "bpf", "clock_settime", "create_module", "delete_module", "finit_module", "fsmount", "init_module",
        "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount", "move_mount",
        "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open", "pidfd_getfd", "pivot_root",
        "quotactl", "reboot", "request_key", "setdomainname", "sethostname", "setns", "settimeofday", "swapoff", "swapon",
        "syslog", "umount2", "unshare", "uselib", "userfaultfd", "vhangup",
    ];

    /// Checked against a real Docker-format default profile: Debian's
    /// containers-common one. Ours allows all it allows but what Docker
    /// gates (`PODMAN_ONLY`), plus calls newer than that file.
    #[test]
    fn default_profile_matches_containers_common_but_for_dockers_gates() {
        let path = "/usr/share/containers/seccomp.json";
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path} (package golang-github-containers-common): {e}"));
        let theirs: Value = serde_json::from_str(&text).unwrap();
        let newer = ["cachestat", "fchmodat2", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake", "io_pgetevents", "io_pgetevents_time64", "map_shadow_stack", "vmsplice"];
        for arch in ["amd64", "arm64"] {
            let c = caps(&[]);
            let (ours, theirs) = (allowed(&default_profile(), &c, arch), allowed(&theirs, &c, arch));
            let missing: Vec<_> = theirs.difference(&ours).filter(|n| !PODMAN_ONLY.contains(&n.as_str())).collect();
            assert!(missing.is_empty(), "{arch}: ours denies {missing:?}");
            let extra: Vec<_> = ours.difference(&theirs).filter(|n| !newer.contains(&n.as_str())).collect();
            assert!(extra.is_empty(), "{arch}: ours also allows {extra:?}");
            let open: Vec<_> = OUTSIDE.iter().filter(|n| ours.contains(**n)).collect();
            assert!(open.is_empty(), "{arch}: allowed without capabilities: {open:?}");
        }
        assert!(allowed(&default_profile(), &caps(&[]), "amd64").contains("arch_prctl"));
        assert!(!allowed(&default_profile(), &caps(&[]), "arm64").contains("arch_prctl"));
        assert!(allowed(&default_profile(), &caps(&[]), "arm64").contains("cacheflush"));
    }

    #[test]
    fn capabilities_open_their_calls() {
        let admin = allowed(&default_profile(), &caps(&["CAP_SYS_ADMIN"]), "amd64");
        for n in ["mount", "umount2", "unshare", "setns", "clone", "clone3", "sethostname", "pivot_root"] {
            assert!(admin.contains(n), "{n} with CAP_SYS_ADMIN");
        }
        assert!(!admin.contains("kexec_load") && !admin.contains("init_module"));
        // ptrace no longer bypasses seccomp from Linux 4.8 on: allowed there.
        assert!(admin.contains("ptrace") && allowed(&default_profile(), &caps(&[]), "amd64").contains("ptrace"));
        let all = allowed(&default_profile(), &caps(&["CAP_SYS_MODULE", "CAP_SYS_TIME", "CAP_SYS_BOOT", "CAP_SYS_PTRACE"]), "amd64");
        for n in ["init_module", "finit_module", "delete_module", "settimeofday", "clock_settime", "reboot", "kcmp", "pidfd_getfd"] {
            assert!(all.contains(n), "{n}");
        }
        // Without CAP_SYS_ADMIN, clone is allowed only without namespace
        // flags and clone3 gets ENOSYS.
        let t = skiff_runtime::seccomp::docker::Target { caps: &caps(&[]), goarch: "amd64", kernel: (6, 1) };
        let s = skiff_runtime::seccomp::docker::to_oci(&default_profile(), &t).unwrap().unwrap();
        let rules: Vec<&Value> = s["syscalls"].as_array().unwrap().iter().filter(|r| r["names"] == json!(["clone"]) || r["names"] == json!(["clone3"])).collect();
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert_eq!(rules[0]["args"][0], json!({"index": 0, "value": CLONE_NAMESPACES, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}));
        assert_eq!((rules[1]["action"].as_str(), rules[1]["errnoRet"].as_i64()), (Some("SCMP_ACT_ERRNO"), Some(38)));
    }

    #[test]
    fn security_opts() {
        let p = |v: &[&str]| parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(p(&[]).unwrap(), SecurityOpts::default());
        assert_eq!(p(&["seccomp=unconfined"]).unwrap().seccomp, Choice::Unconfined);
        assert_eq!(p(&["seccomp:unconfined"]).unwrap().seccomp, Choice::Unconfined);
        assert_eq!(p(&["seccomp=/etc/p.json"]).unwrap().seccomp, Choice::File("/etc/p.json".into()));
        assert!(p(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(p(&["no-new-privileges:true"]).unwrap().no_new_privileges);
        assert!(!p(&["no-new-privileges", "no-new-privileges=false"]).unwrap().no_new_privileges);
        assert_eq!(p(&["apparmor=unconfined", "label=disable"]).unwrap(), SecurityOpts::default());
        assert!(p(&["seccomp="]).unwrap_err().0.contains("unconfined or a profile path"));
        assert!(p(&["no-new-privileges=maybe"]).unwrap_err().0.contains("true or false"));
        assert!(p(&["selinux"]).unwrap_err().0.contains("invalid --security-opt \"selinux\""));
    }

    #[test]
    fn profiles_load_and_compile_or_say_why() {
        let dir = std::env::temp_dir().join(format!("skiff-seccomp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            Choice::File(p)
        };
        let c = caps(&[]);
        // The default compiles for this machine, well under the kernel's limit.
        let s = for_container(&default_profile(), &c).unwrap().unwrap();
        let parsed = serde_json::from_value(s).unwrap();
        let n = skiff_runtime::seccomp::compile(&parsed).unwrap().prog.len();
        assert!(n < skiff_runtime::seccomp::MAX_INSNS / 2, "{n} instructions");
        assert!(profile(&Choice::Unconfined).unwrap().is_none());
        let ok = profile(&file("ok.json", r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#));
        assert!(for_container(&ok.unwrap().unwrap(), &c).unwrap().is_some());
        let e = profile(&Choice::File(dir.join("none.json"))).unwrap_err().0;
        assert!(e.contains("opening seccomp profile (") && e.contains("none.json"), "{e}");
        let e = profile(&file("bad.json", "{x")).unwrap_err().0;
        assert!(e.contains("decoding seccomp profile (") && e.contains("bad.json"), "{e}");
        let bogus = profile(&file("bogus.json", r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_BOGUS"}]}"#));
        let e = for_container(&bogus.unwrap().unwrap(), &c).unwrap_err().0;
        assert!(e.starts_with("seccomp profile:") && e.contains("SCMP_ACT_BOGUS"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
