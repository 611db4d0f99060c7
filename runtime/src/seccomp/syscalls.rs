//! Syscall names to numbers for every ABI a filter may meet on this
//! machine: x86_64, i386 and x32 on x86_64 kernels; aarch64 and arm on
//! aarch64 kernels. What seccomp_data.arch says for each is `Abi::audit`.
//!
//! The tables are generated (one sorted name list per family, one number
//! column per ABI) from the union of the libc crate's SYS_* constants (musl
//! and glibc, 0.2.191), linux-libc-dev's asm/unistd_{64,32,x32}.h (6.1), and
//! the numbers shared by every architecture since Linux 5.1 (424..=469, up to
//! file_setattr in 6.17); `tests` checks them against the installed headers.
//! ARM's private syscalls (`__ARM_NR_BASE` 0x0f0000 + n: breakpoint,
//! cacheflush, usr26, usr32, set_tls, get_tls) are stored as 0xf000 + n.

/// The ABIs a syscall can arrive through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    X86_64,
    I386,
    /// x32: AUDIT_ARCH_X86_64 with bit 30 set in the syscall number.
    X32,
    Aarch64,
    Arm,
}

/// `__X32_SYSCALL_BIT`.
pub const X32_BIT: u32 = 0x4000_0000;

impl Abi {
    /// The value of `seccomp_data.arch` (AUDIT_ARCH_*).
    pub fn audit(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => 0xc000_003e,
            Abi::I386 => 0x4000_0003,
            Abi::Aarch64 => 0xc000_00b7,
            Abi::Arm => 0x4000_0028,
        }
    }

    /// Whether syscall arguments are 64-bit (libseccomp's arch size; x32 is 32).
    pub fn is_64bit(self) -> bool {
        matches!(self, Abi::X86_64 | Abi::Aarch64)
    }

    pub fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::I386 => "x86",
            Abi::X32 => "x32",
            Abi::Aarch64 => "aarch64",
            Abi::Arm => "arm",
        }
    }

    /// The ABI of this build (the kernel's own), if seccomp supports it here.
    pub fn native() -> Option<Abi> {
        if cfg!(target_arch = "x86_64") {
            Some(Abi::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Abi::Aarch64)
        } else {
            None
        }
    }

    /// The ABIs a kernel of this build's architecture runs: native first.
    pub fn family() -> &'static [Abi] {
        if cfg!(target_arch = "x86_64") {
            &[Abi::X86_64, Abi::I386, Abi::X32]
        } else if cfg!(target_arch = "aarch64") {
            &[Abi::Aarch64, Abi::Arm]
        } else {
            &[]
        }
    }

    /// The syscall number of `name` on this ABI (x32 numbers include the
    /// x32 bit), or None when the ABI has no such syscall.
    pub fn number(self, name: &str) -> Option<u32> {
        let i = names().binary_search(&name).ok()?;
        let n = column(self)?[i];
        match (n, self) {
            (table::NONE, _) => None,
            (_, Abi::X32) => Some(X32_BIT | n as u32),
            (0xf000.., Abi::Arm) => Some(0x000f_0000 | (n as u32 & 0xfff)),
            _ => Some(n as u32),
        }
    }
}

/// `table::NAMES` as a slice, made once: a profile looks up hundreds of
/// names per ABI, and scanning the text for each took milliseconds.
fn names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| table::NAMES.lines().collect())
}

#[cfg(target_arch = "x86_64")]
fn column(abi: Abi) -> Option<&'static [u16]> {
    match abi {
        Abi::X86_64 => Some(&table::X86_64),
        Abi::I386 => Some(&table::I386),
        Abi::X32 => Some(&table::X32),
        _ => None,
    }
}

#[cfg(target_arch = "aarch64")]
fn column(abi: Abi) -> Option<&'static [u16]> {
    match abi {
        Abi::Aarch64 => Some(&table::AARCH64),
        Abi::Arm => Some(&table::ARM),
        _ => None,
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn column(_: Abi) -> Option<&'static [u16]> {
    None
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod table {
    pub const NAMES: &str = "";
    pub const NONE: u16 = u16::MAX;
}

#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
mod table {
    /// Every name any of this family's ABIs has, sorted, one per line (469).
    pub const NAMES: &str = concat!(
        "_llseek\n", "_newselect\n", "_sysctl\n", "accept\n", "accept4\n", "access\n", "acct\n", "add_key\n",
        "adjtimex\n", "afs_syscall\n", "alarm\n", "arch_prctl\n", "bdflush\n", "bind\n", "bpf\n", "break\n",
        "brk\n", "cachestat\n", "capget\n", "capset\n", "chdir\n", "chmod\n", "chown\n", "chown32\n",
        "chroot\n", "clock_adjtime\n", "clock_adjtime64\n", "clock_getres\n", "clock_getres_time64\n",
        "clock_gettime\n", "clock_gettime64\n", "clock_nanosleep\n", "clock_nanosleep_time64\n",
        "clock_settime\n", "clock_settime64\n", "clone\n", "clone3\n", "close\n", "close_range\n",
        "connect\n", "copy_file_range\n", "creat\n", "create_module\n", "delete_module\n", "dup\n", "dup2\n",
        "dup3\n", "epoll_create\n", "epoll_create1\n", "epoll_ctl\n", "epoll_ctl_old\n", "epoll_pwait\n",
        "epoll_pwait2\n", "epoll_wait\n", "epoll_wait_old\n", "eventfd\n", "eventfd2\n", "execve\n",
        "execveat\n", "exit\n", "exit_group\n", "faccessat\n", "faccessat2\n", "fadvise64\n",
        "fadvise64_64\n", "fallocate\n", "fanotify_init\n", "fanotify_mark\n", "fchdir\n", "fchmod\n",
        "fchmodat\n", "fchmodat2\n", "fchown\n", "fchown32\n", "fchownat\n", "fcntl\n", "fcntl64\n",
        "fdatasync\n", "fgetxattr\n", "file_getattr\n", "file_setattr\n", "finit_module\n", "flistxattr\n",
        "flock\n", "fork\n", "fremovexattr\n", "fsconfig\n", "fsetxattr\n", "fsmount\n", "fsopen\n",
        "fspick\n", "fstat\n", "fstat64\n", "fstatat64\n", "fstatfs\n", "fstatfs64\n", "fsync\n", "ftime\n",
        "ftruncate\n", "ftruncate64\n", "futex\n", "futex_requeue\n", "futex_time64\n", "futex_wait\n",
        "futex_waitv\n", "futex_wake\n", "futimesat\n", "get_kernel_syms\n", "get_mempolicy\n",
        "get_robust_list\n", "get_thread_area\n", "getcpu\n", "getcwd\n", "getdents\n", "getdents64\n",
        "getegid\n", "getegid32\n", "geteuid\n", "geteuid32\n", "getgid\n", "getgid32\n", "getgroups\n",
        "getgroups32\n", "getitimer\n", "getpeername\n", "getpgid\n", "getpgrp\n", "getpid\n", "getpmsg\n",
        "getppid\n", "getpriority\n", "getrandom\n", "getresgid\n", "getresgid32\n", "getresuid\n",
        "getresuid32\n", "getrlimit\n", "getrusage\n", "getsid\n", "getsockname\n", "getsockopt\n",
        "gettid\n", "gettimeofday\n", "getuid\n", "getuid32\n", "getxattr\n", "getxattrat\n", "gtty\n",
        "idle\n", "init_module\n", "inotify_add_watch\n", "inotify_init\n", "inotify_init1\n",
        "inotify_rm_watch\n", "io_cancel\n", "io_destroy\n", "io_getevents\n", "io_pgetevents\n",
        "io_pgetevents_time64\n", "io_setup\n", "io_submit\n", "io_uring_enter\n", "io_uring_register\n",
        "io_uring_setup\n", "ioctl\n", "ioperm\n", "iopl\n", "ioprio_get\n", "ioprio_set\n", "ipc\n",
        "kcmp\n", "kexec_file_load\n", "kexec_load\n", "keyctl\n", "kill\n", "landlock_add_rule\n",
        "landlock_create_ruleset\n", "landlock_restrict_self\n", "lchown\n", "lchown32\n", "lgetxattr\n",
        "link\n", "linkat\n", "listen\n", "listmount\n", "listxattr\n", "listxattrat\n", "llistxattr\n",
        "lock\n", "lookup_dcookie\n", "lremovexattr\n", "lseek\n", "lsetxattr\n", "lsm_get_self_attr\n",
        "lsm_list_modules\n", "lsm_set_self_attr\n", "lstat\n", "lstat64\n", "madvise\n",
        "map_shadow_stack\n", "mbind\n", "membarrier\n", "memfd_create\n", "memfd_secret\n",
        "migrate_pages\n", "mincore\n", "mkdir\n", "mkdirat\n", "mknod\n", "mknodat\n", "mlock\n",
        "mlock2\n", "mlockall\n", "mmap\n", "mmap2\n", "modify_ldt\n", "mount\n", "mount_setattr\n",
        "move_mount\n", "move_pages\n", "mprotect\n", "mpx\n", "mq_getsetattr\n", "mq_notify\n", "mq_open\n",
        "mq_timedreceive\n", "mq_timedreceive_time64\n", "mq_timedsend\n", "mq_timedsend_time64\n",
        "mq_unlink\n", "mremap\n", "mseal\n", "msgctl\n", "msgget\n", "msgrcv\n", "msgsnd\n", "msync\n",
        "munlock\n", "munlockall\n", "munmap\n", "name_to_handle_at\n", "nanosleep\n", "newfstatat\n",
        "nfsservctl\n", "nice\n", "oldfstat\n", "oldlstat\n", "oldolduname\n", "oldstat\n", "olduname\n",
        "open\n", "open_by_handle_at\n", "open_tree\n", "open_tree_attr\n", "openat\n", "openat2\n",
        "pause\n", "perf_event_open\n", "personality\n", "pidfd_getfd\n", "pidfd_open\n",
        "pidfd_send_signal\n", "pipe\n", "pipe2\n", "pivot_root\n", "pkey_alloc\n", "pkey_free\n",
        "pkey_mprotect\n", "poll\n", "ppoll\n", "ppoll_time64\n", "prctl\n", "pread64\n", "preadv\n",
        "preadv2\n", "prlimit64\n", "process_madvise\n", "process_mrelease\n", "process_vm_readv\n",
        "process_vm_writev\n", "prof\n", "profil\n", "pselect6\n", "pselect6_time64\n", "ptrace\n",
        "putpmsg\n", "pwrite64\n", "pwritev\n", "pwritev2\n", "query_module\n", "quotactl\n",
        "quotactl_fd\n", "read\n", "readahead\n", "readdir\n", "readlink\n", "readlinkat\n", "readv\n",
        "reboot\n", "recvfrom\n", "recvmmsg\n", "recvmmsg_time64\n", "recvmsg\n", "remap_file_pages\n",
        "removexattr\n", "removexattrat\n", "rename\n", "renameat\n", "renameat2\n", "request_key\n",
        "restart_syscall\n", "rmdir\n", "rseq\n", "rt_sigaction\n", "rt_sigpending\n", "rt_sigprocmask\n",
        "rt_sigqueueinfo\n", "rt_sigreturn\n", "rt_sigsuspend\n", "rt_sigtimedwait\n",
        "rt_sigtimedwait_time64\n", "rt_tgsigqueueinfo\n", "sched_get_priority_max\n",
        "sched_get_priority_min\n", "sched_getaffinity\n", "sched_getattr\n", "sched_getparam\n",
        "sched_getscheduler\n", "sched_rr_get_interval\n", "sched_rr_get_interval_time64\n",
        "sched_setaffinity\n", "sched_setattr\n", "sched_setparam\n", "sched_setscheduler\n",
        "sched_yield\n", "seccomp\n", "security\n", "select\n", "semctl\n", "semget\n", "semop\n",
        "semtimedop\n", "semtimedop_time64\n", "sendfile\n", "sendfile64\n", "sendmmsg\n", "sendmsg\n",
        "sendto\n", "set_mempolicy\n", "set_mempolicy_home_node\n", "set_robust_list\n", "set_thread_area\n",
        "set_tid_address\n", "setdomainname\n", "setfsgid\n", "setfsgid32\n", "setfsuid\n", "setfsuid32\n",
        "setgid\n", "setgid32\n", "setgroups\n", "setgroups32\n", "sethostname\n", "setitimer\n", "setns\n",
        "setpgid\n", "setpriority\n", "setregid\n", "setregid32\n", "setresgid\n", "setresgid32\n",
        "setresuid\n", "setresuid32\n", "setreuid\n", "setreuid32\n", "setrlimit\n", "setsid\n",
        "setsockopt\n", "settimeofday\n", "setuid\n", "setuid32\n", "setxattr\n", "setxattrat\n",
        "sgetmask\n", "shmat\n", "shmctl\n", "shmdt\n", "shmget\n", "shutdown\n", "sigaction\n",
        "sigaltstack\n", "signal\n", "signalfd\n", "signalfd4\n", "sigpending\n", "sigprocmask\n",
        "sigreturn\n", "sigsuspend\n", "socket\n", "socketcall\n", "socketpair\n", "splice\n", "ssetmask\n",
        "stat\n", "stat64\n", "statfs\n", "statfs64\n", "statmount\n", "statx\n", "stime\n", "stty\n",
        "swapoff\n", "swapon\n", "symlink\n", "symlinkat\n", "sync\n", "sync_file_range\n", "syncfs\n",
        "sysfs\n", "sysinfo\n", "syslog\n", "tee\n", "tgkill\n", "time\n", "timer_create\n",
        "timer_delete\n", "timer_getoverrun\n", "timer_gettime\n", "timer_gettime64\n", "timer_settime\n",
        "timer_settime64\n", "timerfd_create\n", "timerfd_gettime\n", "timerfd_gettime64\n",
        "timerfd_settime\n", "timerfd_settime64\n", "times\n", "tkill\n", "truncate\n", "truncate64\n",
        "tuxcall\n", "ugetrlimit\n", "ulimit\n", "umask\n", "umount\n", "umount2\n", "uname\n", "unlink\n",
        "unlinkat\n", "unshare\n", "uretprobe\n", "uselib\n", "userfaultfd\n", "ustat\n", "utime\n",
        "utimensat\n", "utimensat_time64\n", "utimes\n", "vfork\n", "vhangup\n", "vm86\n", "vm86old\n",
        "vmsplice\n", "vserver\n", "wait4\n", "waitid\n", "waitpid\n", "write\n", "writev\n",
    );
    /// The number of each name in [`NAMES`] on this ABI, or `NONE`.
    pub const X86_64: [u16; 469] = [
        NONE, NONE, 156, 43, 288, 21, 163, 248, 159, 183, 37, 158, NONE, 49, 321, NONE, 12, 451, 125, 126,
        80, 90, 92, NONE, 161, 305, NONE, 229, NONE, 228, NONE, 230, NONE, 227, NONE, 56, 435, 3, 436, 42,
        326, 85, 174, 176, 32, 33, 292, 213, 291, 233, 214, 281, 441, 232, 215, 284, 290, 59, 322, 60, 231,
        269, 439, 221, NONE, 285, 300, 301, 81, 91, 268, 452, 93, NONE, 260, 72, NONE, 75, 193, 468, 469,
        313, 196, 73, 57, 199, 431, 190, 432, 430, 433, 5, NONE, NONE, 138, NONE, 74, NONE, 77, NONE, 202,
        456, NONE, 455, 449, 454, 261, 177, 239, 274, 211, 309, 79, 78, 217, 108, NONE, 107, NONE, 104, NONE,
        115, NONE, 36, 52, 121, 111, 39, 181, 110, 140, 318, 120, NONE, 118, NONE, 97, 98, 124, 51, 55, 186,
        96, 102, NONE, 191, 464, NONE, NONE, 175, 254, 253, 294, 255, 210, 207, 208, 333, NONE, 206, 209,
        426, 427, 425, 16, 173, 172, 252, 251, NONE, 312, 320, 246, 250, 62, 445, 444, 446, 94, NONE, 192,
        86, 265, 50, 458, 194, 465, 195, NONE, 212, 198, 8, 189, 459, 461, 460, 6, NONE, 28, 453, 237, 324,
        319, 447, 256, 27, 83, 258, 133, 259, 149, 325, 151, 9, NONE, 154, 165, 442, 429, 279, 10, NONE, 245,
        244, 240, 243, NONE, 242, NONE, 241, 25, 462, 71, 68, 70, 69, 26, 150, 152, 11, 303, 35, 262, 180,
        NONE, NONE, NONE, NONE, NONE, NONE, 2, 304, 428, 467, 257, 437, 34, 298, 135, 438, 434, 424, 22, 293,
        155, 330, 331, 329, 7, 271, NONE, 157, 17, 295, 327, 302, 440, 448, 310, 311, NONE, NONE, 270, NONE,
        101, 182, 18, 296, 328, 178, 179, 443, 0, 187, NONE, 89, 267, 19, 169, 45, 299, NONE, 47, 216, 197,
        466, 82, 264, 316, 249, 219, 84, 334, 13, 127, 14, 129, 15, 130, 128, NONE, 297, 146, 147, 204, 315,
        143, 145, 148, NONE, 203, 314, 142, 144, 24, 317, 185, 23, 66, 64, 65, 220, NONE, 40, NONE, 307, 46,
        44, 238, 450, 273, 205, 218, 171, 123, NONE, 122, NONE, 106, NONE, 116, NONE, 170, 38, 308, 109, 141,
        114, NONE, 119, NONE, 117, NONE, 113, NONE, 160, 112, 54, 164, 105, NONE, 188, 463, NONE, 30, 31, 67,
        29, 48, NONE, 131, NONE, 282, 289, NONE, NONE, NONE, NONE, 41, NONE, 53, 275, NONE, 4, NONE, 137,
        NONE, 457, 332, NONE, NONE, 168, 167, 88, 266, 162, 277, 306, 139, 99, 103, 276, 234, 201, 222, 226,
        225, 224, NONE, 223, NONE, 283, 287, NONE, 286, NONE, 100, 200, 76, NONE, 184, NONE, NONE, 95, NONE,
        166, 63, 87, 263, 272, 335, 134, 323, 136, 132, 280, NONE, 235, 58, 153, NONE, NONE, 278, 236, 61,
        247, NONE, 1, 20,
    ];
    /// The number of each name in [`NAMES`] on this ABI, or `NONE`.
    pub const I386: [u16; 469] = [
        140, 142, 149, NONE, 364, 33, 51, 286, 124, 137, 27, 384, 134, 361, 357, 17, 45, 451, 184, 185, 12,
        15, 182, 212, 61, 343, 405, 266, 406, 265, 403, 267, 407, 264, 404, 120, 435, 6, 436, 362, 377, 8,
        127, 129, 41, 63, 330, 254, 329, 255, NONE, 319, 441, 256, NONE, 323, 328, 11, 358, 1, 252, 307, 439,
        250, 272, 324, 338, 339, 133, 94, 306, 452, 95, 207, 298, 55, 221, 148, 231, 468, 469, 350, 234, 143,
        2, 237, 431, 228, 432, 430, 433, 108, 197, 300, 100, 269, 118, 35, 93, 194, 240, 456, 422, 455, 449,
        454, 299, 130, 275, 312, 244, 318, 183, 141, 220, 50, 202, 49, 201, 47, 200, 80, 205, 105, 368, 132,
        65, 20, 188, 64, 96, 355, 171, 211, 165, 209, 76, 77, 147, 367, 365, 224, 78, 24, 199, 229, 464, 32,
        112, 128, 292, 291, 332, 293, 249, 246, 247, 385, 416, 245, 248, 426, 427, 425, 54, 101, 110, 290,
        289, 117, 349, NONE, 283, 288, 37, 445, 444, 446, 16, 198, 230, 9, 303, 363, 458, 232, 465, 233, 53,
        253, 236, 19, 227, 459, 461, 460, 107, 196, 219, 453, 274, 375, 356, 447, 294, 218, 39, 296, 14, 297,
        150, 376, 152, 90, 192, 123, 21, 442, 429, 317, 125, 56, 282, 281, 277, 280, 419, 279, 418, 278, 163,
        462, 402, 399, 401, 400, 144, 151, 153, 91, 341, 162, NONE, 169, 34, 28, 84, 59, 18, 109, 5, 342,
        428, 467, 295, 437, 29, 336, 136, 438, 434, 424, 42, 331, 217, 381, 382, 380, 168, 309, 414, 172,
        180, 333, 378, 340, 440, 448, 347, 348, 44, 98, 308, 413, 26, 189, 181, 334, 379, 167, 131, 443, 3,
        225, 89, 85, 305, 145, 88, 371, 337, 417, 372, 257, 235, 466, 38, 302, 353, 287, 0, 40, 386, 174,
        176, 175, 178, 173, 179, 177, 421, 335, 159, 160, 242, 352, 155, 157, 161, 423, 241, 351, 154, 156,
        158, 354, NONE, 82, 394, 393, NONE, NONE, 420, 187, 239, 345, 370, 369, 276, 450, 311, 243, 258, 121,
        139, 216, 138, 215, 46, 214, 81, 206, 74, 104, 346, 57, 97, 71, 204, 170, 210, 164, 208, 70, 203, 75,
        66, 366, 79, 23, 213, 226, 463, 68, 397, 396, 398, 395, 373, 67, 186, 48, 321, 327, 73, 126, 119, 72,
        359, 102, 360, 313, 69, 106, 195, 99, 268, 457, 383, 25, 31, 115, 87, 83, 304, 36, 314, 344, 135,
        116, 103, 315, 270, 13, 259, 263, 262, 261, 408, 260, 409, 322, 326, 410, 325, 411, 43, 238, 92, 193,
        NONE, 191, 58, 60, 22, 52, 122, 10, 301, 310, NONE, 86, 374, 62, 30, 320, 412, 271, 190, 111, 166,
        113, 316, 273, 114, 284, 7, 4, 146,
    ];
    /// The number of each name in [`NAMES`] on this ABI, or `NONE`.
    pub const X32: [u16; 469] = [
        NONE, NONE, NONE, 43, 288, 21, 163, 248, 159, 183, 37, 158, NONE, 49, 321, NONE, 12, 451, 125, 126,
        80, 90, 92, NONE, 161, 305, NONE, 229, NONE, 228, NONE, 230, NONE, 227, NONE, 56, 435, 3, 436, 42,
        326, 85, NONE, 176, 32, 33, 292, 213, 291, 233, NONE, 281, 441, 232, NONE, 284, 290, 520, 545, 60,
        231, 269, 439, 221, NONE, 285, 300, 301, 81, 91, 268, 452, 93, NONE, 260, 72, NONE, 75, 193, 468,
        469, 313, 196, 73, 57, 199, 431, 190, 432, 430, 433, 5, NONE, NONE, 138, NONE, 74, NONE, 77, NONE,
        202, 456, NONE, 455, 449, 454, 261, NONE, 239, 531, NONE, 309, 79, 78, 217, 108, NONE, 107, NONE,
        104, NONE, 115, NONE, 36, 52, 121, 111, 39, 181, 110, 140, 318, 120, NONE, 118, NONE, 97, 98, 124,
        51, 542, 186, 96, 102, NONE, 191, 464, NONE, NONE, 175, 254, 253, 294, 255, 210, 207, 208, 333, NONE,
        543, 544, 426, 427, 425, 514, 173, 172, 252, 251, NONE, 312, 320, 528, 250, 62, 445, 444, 446, 94,
        NONE, 192, 86, 265, 50, 458, 194, 465, 195, NONE, 212, 198, 8, 189, 459, 461, 460, 6, NONE, 28, 453,
        237, 324, 319, 447, 256, 27, 83, 258, 133, 259, 149, 325, 151, 9, NONE, 154, 165, 442, 429, 533, 10,
        NONE, 245, 527, 240, 243, NONE, 242, NONE, 241, 25, 462, 71, 68, 70, 69, 26, 150, 152, 11, 303, 35,
        262, NONE, NONE, NONE, NONE, NONE, NONE, NONE, 2, 304, 428, 467, 257, 437, 34, 298, 135, 438, 434,
        424, 22, 293, 155, 330, 331, 329, 7, 271, NONE, 157, 17, 534, 546, 302, 440, 448, 539, 540, NONE,
        NONE, 270, NONE, 521, 182, 18, 535, 547, NONE, 179, 443, 0, 187, NONE, 89, 267, 515, 169, 517, 537,
        NONE, 519, 216, 197, 466, 82, 264, 316, 249, 219, 84, 334, 512, 522, 14, 524, 513, 130, 523, NONE,
        536, 146, 147, 204, 315, 143, 145, 148, NONE, 203, 314, 142, 144, 24, 317, 185, 23, 66, 64, 65, 220,
        NONE, 40, NONE, 538, 518, 44, 238, 450, 530, NONE, 218, 171, 123, NONE, 122, NONE, 106, NONE, 116,
        NONE, 170, 38, 308, 109, 141, 114, NONE, 119, NONE, 117, NONE, 113, NONE, 160, 112, 541, 164, 105,
        NONE, 188, 463, NONE, 30, 31, 67, 29, 48, NONE, 525, NONE, 282, 289, NONE, NONE, NONE, NONE, 41,
        NONE, 53, 275, NONE, 4, NONE, 137, NONE, 457, 332, NONE, NONE, 168, 167, 88, 266, 162, 277, 306, 139,
        99, 103, 276, 234, 201, 526, 226, 225, 224, NONE, 223, NONE, 283, 287, NONE, 286, NONE, 100, 200, 76,
        NONE, 184, NONE, NONE, 95, NONE, 166, 63, 87, 263, 272, NONE, NONE, 323, 136, 132, 280, NONE, 235,
        58, 153, NONE, NONE, 532, NONE, 61, 529, NONE, 1, 516,
    ];
    pub const NONE: u16 = u16::MAX;
}

#[cfg(target_arch = "aarch64")]
#[rustfmt::skip]
mod table {
    /// Every name any of this family's ABIs has, sorted, one per line (414).
    pub const NAMES: &str = concat!(
        "_llseek\n", "_newselect\n", "_sysctl\n", "accept\n", "accept4\n", "access\n", "acct\n", "add_key\n",
        "adjtimex\n", "arm_fadvise64_64\n", "arm_sync_file_range\n", "bdflush\n", "bind\n", "bpf\n",
        "breakpoint\n", "brk\n", "cacheflush\n", "cachestat\n", "capget\n", "capset\n", "chdir\n", "chmod\n",
        "chown\n", "chown32\n", "chroot\n", "clock_adjtime\n", "clock_getres\n", "clock_gettime\n",
        "clock_nanosleep\n", "clock_settime\n", "clone\n", "clone3\n", "close\n", "close_range\n",
        "connect\n", "copy_file_range\n", "creat\n", "delete_module\n", "dup\n", "dup2\n", "dup3\n",
        "epoll_create\n", "epoll_create1\n", "epoll_ctl\n", "epoll_pwait\n", "epoll_pwait2\n",
        "epoll_wait\n", "eventfd\n", "eventfd2\n", "execve\n", "execveat\n", "exit\n", "exit_group\n",
        "faccessat\n", "faccessat2\n", "fadvise64\n", "fallocate\n", "fanotify_init\n", "fanotify_mark\n",
        "fchdir\n", "fchmod\n", "fchmodat\n", "fchmodat2\n", "fchown\n", "fchown32\n", "fchownat\n",
        "fcntl\n", "fcntl64\n", "fdatasync\n", "fgetxattr\n", "file_getattr\n", "file_setattr\n",
        "finit_module\n", "flistxattr\n", "flock\n", "fork\n", "fremovexattr\n", "fsconfig\n", "fsetxattr\n",
        "fsmount\n", "fsopen\n", "fspick\n", "fstat\n", "fstat64\n", "fstatat64\n", "fstatfs\n",
        "fstatfs64\n", "fsync\n", "ftruncate\n", "ftruncate64\n", "futex\n", "futex_requeue\n",
        "futex_wait\n", "futex_waitv\n", "futex_wake\n", "futimesat\n", "get_mempolicy\n",
        "get_robust_list\n", "get_tls\n", "getcpu\n", "getcwd\n", "getdents\n", "getdents64\n", "getegid\n",
        "getegid32\n", "geteuid\n", "geteuid32\n", "getgid\n", "getgid32\n", "getgroups\n", "getgroups32\n",
        "getitimer\n", "getpeername\n", "getpgid\n", "getpgrp\n", "getpid\n", "getppid\n", "getpriority\n",
        "getrandom\n", "getresgid\n", "getresgid32\n", "getresuid\n", "getresuid32\n", "getrlimit\n",
        "getrusage\n", "getsid\n", "getsockname\n", "getsockopt\n", "gettid\n", "gettimeofday\n", "getuid\n",
        "getuid32\n", "getxattr\n", "getxattrat\n", "init_module\n", "inotify_add_watch\n", "inotify_init\n",
        "inotify_init1\n", "inotify_rm_watch\n", "io_cancel\n", "io_destroy\n", "io_getevents\n",
        "io_pgetevents\n", "io_setup\n", "io_submit\n", "io_uring_enter\n", "io_uring_register\n",
        "io_uring_setup\n", "ioctl\n", "ioprio_get\n", "ioprio_set\n", "kcmp\n", "kexec_file_load\n",
        "kexec_load\n", "keyctl\n", "kill\n", "landlock_add_rule\n", "landlock_create_ruleset\n",
        "landlock_restrict_self\n", "lchown\n", "lchown32\n", "lgetxattr\n", "link\n", "linkat\n",
        "listen\n", "listmount\n", "listxattr\n", "listxattrat\n", "llistxattr\n", "lookup_dcookie\n",
        "lremovexattr\n", "lseek\n", "lsetxattr\n", "lsm_get_self_attr\n", "lsm_list_modules\n",
        "lsm_set_self_attr\n", "lstat\n", "lstat64\n", "madvise\n", "map_shadow_stack\n", "mbind\n",
        "membarrier\n", "memfd_create\n", "memfd_secret\n", "migrate_pages\n", "mincore\n", "mkdir\n",
        "mkdirat\n", "mknod\n", "mknodat\n", "mlock\n", "mlock2\n", "mlockall\n", "mmap\n", "mmap2\n",
        "mount\n", "mount_setattr\n", "move_mount\n", "move_pages\n", "mprotect\n", "mq_getsetattr\n",
        "mq_notify\n", "mq_open\n", "mq_timedreceive\n", "mq_timedsend\n", "mq_unlink\n", "mremap\n",
        "mseal\n", "msgctl\n", "msgget\n", "msgrcv\n", "msgsnd\n", "msync\n", "munlock\n", "munlockall\n",
        "munmap\n", "name_to_handle_at\n", "nanosleep\n", "newfstatat\n", "nfsservctl\n", "nice\n", "open\n",
        "open_by_handle_at\n", "open_tree\n", "open_tree_attr\n", "openat\n", "openat2\n", "pause\n",
        "pciconfig_iobase\n", "pciconfig_read\n", "pciconfig_write\n", "perf_event_open\n", "personality\n",
        "pidfd_getfd\n", "pidfd_open\n", "pidfd_send_signal\n", "pipe\n", "pipe2\n", "pivot_root\n",
        "pkey_alloc\n", "pkey_free\n", "pkey_mprotect\n", "poll\n", "ppoll\n", "prctl\n", "pread64\n",
        "preadv\n", "preadv2\n", "prlimit64\n", "process_madvise\n", "process_mrelease\n",
        "process_vm_readv\n", "process_vm_writev\n", "pselect6\n", "ptrace\n", "pwrite64\n", "pwritev\n",
        "pwritev2\n", "quotactl\n", "quotactl_fd\n", "read\n", "readahead\n", "readlink\n", "readlinkat\n",
        "readv\n", "reboot\n", "recv\n", "recvfrom\n", "recvmmsg\n", "recvmsg\n", "remap_file_pages\n",
        "removexattr\n", "removexattrat\n", "rename\n", "renameat\n", "renameat2\n", "request_key\n",
        "restart_syscall\n", "rmdir\n", "rseq\n", "rt_sigaction\n", "rt_sigpending\n", "rt_sigprocmask\n",
        "rt_sigqueueinfo\n", "rt_sigreturn\n", "rt_sigsuspend\n", "rt_sigtimedwait\n", "rt_tgsigqueueinfo\n",
        "sched_get_priority_max\n", "sched_get_priority_min\n", "sched_getaffinity\n", "sched_getattr\n",
        "sched_getparam\n", "sched_getscheduler\n", "sched_rr_get_interval\n", "sched_setaffinity\n",
        "sched_setattr\n", "sched_setparam\n", "sched_setscheduler\n", "sched_yield\n", "seccomp\n",
        "semctl\n", "semget\n", "semop\n", "semtimedop\n", "send\n", "sendfile\n", "sendfile64\n",
        "sendmmsg\n", "sendmsg\n", "sendto\n", "set_mempolicy\n", "set_mempolicy_home_node\n",
        "set_robust_list\n", "set_tid_address\n", "set_tls\n", "setdomainname\n", "setfsgid\n",
        "setfsgid32\n", "setfsuid\n", "setfsuid32\n", "setgid\n", "setgid32\n", "setgroups\n",
        "setgroups32\n", "sethostname\n", "setitimer\n", "setns\n", "setpgid\n", "setpriority\n",
        "setregid\n", "setregid32\n", "setresgid\n", "setresgid32\n", "setresuid\n", "setresuid32\n",
        "setreuid\n", "setreuid32\n", "setrlimit\n", "setsid\n", "setsockopt\n", "settimeofday\n",
        "setuid\n", "setuid32\n", "setxattr\n", "setxattrat\n", "shmat\n", "shmctl\n", "shmdt\n", "shmget\n",
        "shutdown\n", "sigaction\n", "sigaltstack\n", "signalfd\n", "signalfd4\n", "sigpending\n",
        "sigprocmask\n", "sigreturn\n", "sigsuspend\n", "socket\n", "socketpair\n", "splice\n", "stat\n",
        "stat64\n", "statfs\n", "statfs64\n", "statmount\n", "statx\n", "swapoff\n", "swapon\n", "symlink\n",
        "symlinkat\n", "sync\n", "sync_file_range\n", "syncfs\n", "sysfs\n", "sysinfo\n", "syslog\n",
        "tee\n", "tgkill\n", "timer_create\n", "timer_delete\n", "timer_getoverrun\n", "timer_gettime\n",
        "timer_settime\n", "timerfd_create\n", "timerfd_gettime\n", "timerfd_settime\n", "times\n",
        "tkill\n", "truncate\n", "truncate64\n", "ugetrlimit\n", "umask\n", "umount2\n", "uname\n",
        "unlink\n", "unlinkat\n", "unshare\n", "uselib\n", "userfaultfd\n", "usr26\n", "usr32\n", "ustat\n",
        "utimensat\n", "utimes\n", "vfork\n", "vhangup\n", "vmsplice\n", "vserver\n", "wait4\n", "waitid\n",
        "write\n", "writev\n",
    );
    /// The number of each name in [`NAMES`] on this ABI, or `NONE`.
    pub const AARCH64: [u16; 414] = [
        NONE, NONE, NONE, 202, 242, NONE, 89, 217, 171, NONE, NONE, NONE, 200, 280, NONE, 214, NONE, 451, 90,
        91, 49, NONE, NONE, NONE, 51, 266, 114, 113, 115, 112, 220, 435, 57, 436, 203, 285, NONE, 106, 23,
        NONE, 24, NONE, 20, 21, 22, 441, NONE, NONE, 19, 221, 281, 93, 94, 48, 439, 223, 47, 262, 263, 50,
        52, 53, 452, 55, NONE, 54, 25, NONE, 83, 10, 468, 469, 273, 13, 32, NONE, 16, 431, 7, 432, 430, 433,
        80, NONE, NONE, 44, NONE, 82, 46, NONE, 98, 456, 455, 449, 454, NONE, 236, 100, NONE, 168, 17, NONE,
        61, 177, NONE, 175, NONE, 176, NONE, 158, NONE, 102, 205, 155, NONE, 172, 173, 141, 278, 150, NONE,
        148, NONE, 163, 165, 156, 204, 209, 178, 169, 174, NONE, 8, 464, 105, 27, NONE, 26, 28, 3, 1, 4, 292,
        0, 2, 426, 427, 425, 29, 31, 30, 272, 294, 104, 219, 129, 445, 444, 446, NONE, NONE, 9, NONE, 37,
        201, 458, 11, 465, 12, 18, 15, 62, 6, 459, 461, 460, NONE, NONE, 233, 453, 235, 283, 279, 447, 238,
        232, NONE, 34, NONE, 33, 228, 284, 230, 222, NONE, 40, 442, 429, 239, 226, 185, 184, 180, 183, 182,
        181, 216, 462, 187, 186, 188, 189, 227, 229, 231, 215, 264, 101, 79, 42, NONE, NONE, 265, 428, 467,
        56, 437, NONE, NONE, NONE, NONE, 241, 92, 438, 434, 424, NONE, 59, 41, 289, 290, 288, NONE, 73, 167,
        67, 69, 286, 261, 440, 448, 270, 271, 72, 117, 68, 70, 287, 60, 443, 63, 213, NONE, 78, 65, 142,
        NONE, 207, 243, 212, 234, 14, 466, NONE, 38, 276, 218, 128, NONE, 293, 134, 136, 135, 138, 139, 133,
        137, 240, 125, 126, 123, 275, 121, 120, 127, 122, 274, 118, 119, 124, 277, 191, 190, 193, 192, NONE,
        71, NONE, 269, 211, 206, 237, 450, 99, 96, NONE, 162, 152, NONE, 151, NONE, 144, NONE, 159, NONE,
        161, 103, 268, 154, 140, 143, NONE, 149, NONE, 147, NONE, 145, NONE, 164, 157, 208, 170, 146, NONE,
        5, 463, 196, 195, 197, 194, 210, NONE, 132, NONE, 74, NONE, NONE, NONE, NONE, 198, 199, 76, NONE,
        NONE, 43, NONE, 457, 291, 225, 224, NONE, 36, 81, 84, 267, NONE, 179, 116, 77, 131, 107, 111, 109,
        108, 110, 85, 87, 86, 153, 130, 45, NONE, NONE, 166, 39, 160, NONE, 35, 97, NONE, 282, NONE, NONE,
        NONE, 88, NONE, NONE, 58, 75, NONE, 260, 95, 64, 66,
    ];
    /// The number of each name in [`NAMES`] on this ABI, or `NONE`.
    pub const ARM: [u16; 414] = [
        140, 142, 149, 285, 366, 33, 51, 309, 124, 270, 341, 134, 282, 386, 61441, 45, 61442, 451, 184, 185,
        12, 15, 182, 212, 61, 372, 264, 263, 265, 262, 120, 435, 6, 436, 283, 391, 8, 129, 41, 63, 358, 250,
        357, 251, 346, 441, 252, 351, 356, 11, 387, 1, 248, 334, 439, NONE, 352, 367, 368, 133, 94, 333, 452,
        95, 207, 325, 55, 221, 148, 231, 468, 469, 379, 234, 143, 2, 237, 431, 228, 432, 430, 433, 108, 197,
        327, 100, 267, 118, 93, 194, 240, 456, 455, 449, 454, 326, 320, 339, 61446, 345, 183, 141, 217, 50,
        202, 49, 201, 47, 200, 80, 205, 105, 287, 132, 65, 20, 64, 96, 384, 171, 211, 165, 209, NONE, 77,
        147, 286, 295, 224, 78, 24, 199, 229, 464, 128, 317, 316, 360, 318, 247, 244, 245, NONE, 243, 246,
        426, 427, 425, 54, 315, 314, 378, 401, 347, 311, 37, 445, 444, 446, 16, 198, 230, 9, 330, 284, 458,
        232, 465, 233, 249, 236, 19, 227, 459, 461, 460, 107, 196, 220, 453, 319, 389, 385, 447, NONE, 219,
        39, 323, 14, 324, 150, 390, 152, NONE, 192, 21, 442, 429, 344, 125, 279, 278, 274, 277, 276, 275,
        163, 462, 304, 303, 302, 301, 144, 151, 153, 91, 370, 162, NONE, 169, 34, 5, 371, 428, 467, 322, 437,
        29, 271, 272, 273, 364, 136, 438, 434, 424, 42, 359, 218, 395, 396, 394, 168, 336, 172, 180, 361,
        392, 369, 440, 448, 376, 377, 335, 26, 181, 362, 393, 131, 443, 3, 225, 85, 332, 145, 88, 291, 292,
        365, 297, 253, 235, 466, 38, 329, 382, 310, 0, 40, 398, 174, 176, 175, 178, 173, 179, 177, 363, 159,
        160, 242, 381, 155, 157, 161, 241, 380, 154, 156, 158, 383, 300, 299, 298, 312, 289, 187, 239, 374,
        296, 290, 321, 450, 338, 256, 61445, 121, 139, 216, 138, 215, 46, 214, 81, 206, 74, 104, 375, 57, 97,
        71, 204, 170, 210, 164, 208, 70, 203, 75, 66, 294, 79, 23, 213, 226, 463, 305, 308, 306, 307, 293,
        67, 186, 349, 355, 73, 126, 119, 72, 281, 288, 340, 106, 195, 99, 266, 457, 397, 115, 87, 83, 331,
        36, NONE, 373, 135, 116, 103, 342, 268, 257, 261, 260, 259, 258, 350, 354, 353, 43, 238, 92, 193,
        191, 60, 52, 122, 10, 328, 337, 86, 388, 61443, 61444, 62, 348, 269, 190, 111, 343, 313, 114, 280, 4,
        146,
    ];
    pub const NONE: u16 = u16::MAX;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_and_unique() {
        let names: Vec<&str> = table::NAMES.lines().collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn numbers_match_libc_and_kernel_headers() {
        assert_eq!(Abi::X86_64.number("read"), Some(0));
        assert_eq!(Abi::X86_64.number("mkdir"), Some(libc::SYS_mkdir as u32));
        assert_eq!(Abi::X86_64.number("personality"), Some(libc::SYS_personality as u32));
        assert_eq!(Abi::X86_64.number("clone3"), Some(435));
        assert_eq!(Abi::I386.number("socketcall"), Some(102));
        assert_eq!(Abi::I386.number("arch_prctl"), Some(384));
        assert_eq!(Abi::X32.number("ioctl"), Some(X32_BIT | 514));
        assert_eq!(Abi::X32.number("read"), Some(X32_BIT));
        assert_eq!(Abi::X86_64.number("socketcall"), None);
        assert_eq!(Abi::X86_64.number("no_such_call"), None);
        // Every entry of linux-libc-dev's headers (the kernel's lists) agrees.
        for (file, abi) in [("unistd_64.h", Abi::X86_64), ("unistd_32.h", Abi::I386), ("unistd_x32.h", Abi::X32)] {
            let path = format!("/usr/include/x86_64-linux-gnu/asm/{file}");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path} (package linux-libc-dev): {e}"));
            let mut n = 0;
            for line in text.lines() {
                let mut w = line.split_whitespace();
                let (Some("#define"), Some(name), Some(value)) = (w.next(), w.next(), w.next()) else { continue };
                let Some(name) = name.strip_prefix("__NR_") else { continue };
                let value = value.trim_start_matches('(');
                let num: u32 = if value == "__X32_SYSCALL_BIT" {
                    X32_BIT + w.nth(1).unwrap().trim_end_matches(')').parse::<u32>().unwrap()
                } else {
                    value.parse().unwrap()
                };
                assert_eq!(abi.number(name), Some(num), "{name} in {file}");
                n += 1;
            }
            assert!(n > 300, "{file}: only {n} entries");
        }
    }

    #[cfg(target_arch = "aarch64")]
    #[test]
    fn numbers_match_libc() {
        assert_eq!(Abi::Aarch64.number("mkdirat"), Some(libc::SYS_mkdirat as u32));
        assert_eq!(Abi::Aarch64.number("mkdir"), None);
        assert_eq!(Abi::Arm.number("set_tls"), Some(0x000f_0005));
        assert_eq!(Abi::Arm.number("mkdir"), Some(39));
    }
}
