//! The container process from clone(2) to execve(2) (config.md "Process",
//! runtime.md "Lifecycle" steps 1-3): it waits for the runtime to map ids
//! and place it in its cgroup, builds its world (namespaces, rootfs,
//! console, limits, user, capabilities), reports ready, then blocks on the
//! exec FIFO until `start`.

use crate::capabilities::{self, Sets};
use crate::error::{err, Context, Error, Result};
use crate::namespaces::Plan;
use crate::sync::Channel;
use crate::{console, hooks, rlimits, rootfs};
use oci_spec::runtime::Spec;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// What the container process needs, prepared by the runtime before clone.
pub struct Init<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    /// Relative mount sources are relative to the bundle (runc chdirs there).
    pub bundle: PathBuf,
    pub plan: &'a Plan,
    pub sync: Channel,
    /// O_PATH fd of the state dir, to open the exec FIFO after pivot_root.
    pub state_dir: RawFd,
    pub console: Option<RawFd>,
    pub no_pivot: bool,
    /// The signal mask to restore (the runtime may block signals it forwards).
    pub sigmask: libc::sigset_t,
    /// Extra fds from the caller kept open for the program: 3..3+N.
    pub preserve_fds: u32,
    /// v1 cgroup dirs to join by ourselves, first thing (cgroups::join_self).
    pub cgroup_tasks: Vec<PathBuf>,
}

/// Runs in the cloned child; never returns.
pub fn run(init: Init) -> ! {
    let code = match setup_and_exec(&init) {
        Ok(never) => match never {},
        Err(e) => {
            // The runtime reports the error; a broken channel leaves stderr.
            if init.sync.send(format!("E{}", e.0).as_bytes()).is_err() {
                eprintln!("runtime: container init: {e}");
            }
            1
        }
    };
    // SAFETY: leave without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

pub(crate) enum Never {}

fn setup_and_exec(init: &Init) -> Result<Never> {
    let spec = init.spec;
    let process = spec.process().as_ref().ok_or_else(|| Error("no process".into()))?;
    let linux = spec.linux().as_ref();
    // SAFETY: restoring a mask saved by the runtime.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &init.sigmask, std::ptr::null_mut()) };
    crate::cgroups::join_self(&init.cgroup_tasks)?;
    init.sync.expect(b"go")?;

    init.plan.enter(libc::CLONE_NEWUSER)?;
    if init.plan.has(libc::CLONE_NEWUSER) {
        // Become root of the user namespace now that the maps are written.
        // SAFETY: credential syscalls with constant arguments.
        unsafe {
            if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error()).ctx(|| "become root in the user namespace");
            }
        }
    }
    // A new cgroup namespace is rooted where we stand: unshare it only now
    // that the runtime has moved us into the container's cgroup.
    if init.plan.clone_flags & libc::CLONE_NEWCGROUP != 0 {
        // SAFETY: unshare has no memory effects.
        if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "unshare the cgroup namespace");
        }
    }
    init.plan.enter(
        libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::CLONE_NEWNS | libc::CLONE_NEWCGROUP | 0x80,
    )?;
    // SAFETY: setsid has no memory effects; as PID 1 of a new pid ns or a
    // fresh child we are never a group leader already.
    unsafe { libc::setsid() };

    if init.plan.has(libc::CLONE_NEWUTS) {
        if let Some(h) = spec.hostname() {
            nix::unistd::sethostname(h).ctx(|| format!("set hostname {h}"))?;
        }
        if let Some(d) = spec.domainname() {
            let c = CString::new(d.as_str()).map_err(|_| Error(format!("domainname {d:?} has a NUL byte")))?;
            // SAFETY: valid pointer and length.
            if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } != 0 {
                return Err(std::io::Error::last_os_error()).ctx(|| format!("set domainname {d}"));
            }
        }
    } else if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) {
        return err("hostname is set but the container has no UTS namespace");
    }

    if !init.plan.has(libc::CLONE_NEWNS) {
        return err("the container needs a mount namespace (linux.namespaces has no \"mount\")");
    }
    nix::unistd::chdir(init.bundle.as_path()).ctx(|| format!("chdir to bundle {}", init.bundle.display()))?;
    rootfs::prepare(spec, &init.rootfs)?;
    // prestart and createRuntime hooks run in the runtime's namespaces.
    init.sync.send(b"hooks")?;
    init.sync.expect(b"ok")?;
    let state = init.sync.recv()?;
    if let Some(h) = spec.hooks() {
        hooks::run_all("createContainer", h.create_container(), &state)?;
    }
    rootfs::pivot(&init.rootfs, init.no_pivot)?;
    // Before readonlyPaths make /proc/sys read-only (runc's order).
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        for (k, v) in sysctl {
            let p = Path::new("/proc/sys").join(k.replace('.', "/"));
            std::fs::write(&p, v).ctx(|| format!("sysctl {k}={v}"))?;
        }
    }
    rootfs::finish(spec)?;
    if process.terminal().unwrap_or(false) {
        let Some(sock) = init.console else {
            return err("process.terminal is true but no --console-socket was given");
        };
        let size = process.console_size().map(|b| (b.height() as u16, b.width() as u16));
        console::setup(sock, size)?;
        // SAFETY: closing our copy of the socket.
        unsafe { libc::close(sock) };
    }
    if process.apparmor_profile().as_ref().is_some_and(|p| !p.is_empty())
        && !Path::new("/sys/kernel/security/apparmor").exists()
    {
        // Checked after pivot: the host's securityfs is not visible, so ask /proc.
        if !std::fs::read_to_string("/proc/self/attr/current").is_ok_and(|s| !s.trim().is_empty()) {
            return err("apparmor profile requested but AppArmor is not enabled on this host");
        }
    }
    if process.selinux_label().as_ref().is_some_and(|l| !l.is_empty()) {
        return err("selinux label requested but SELinux is not supported by this runtime/host");
    }
    if let Some(r) = process.rlimits() {
        rlimits::apply(r)?;
    }
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        let domain = if format!("{:?}", p.domain()).contains("32") { 0x0008 } else { 0 };
        // SAFETY: personality has no memory effects.
        if unsafe { libc::personality(domain) } < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "set personality");
        }
    }
    let cwd = process.cwd();
    std::fs::create_dir_all(cwd).ok();
    nix::unistd::chdir(cwd.as_path()).ctx(|| format!("chdir to cwd {}", cwd.display()))?;

    let mut seccomp = crate::seccomp::Pending::from_spec(spec)?;
    seccomp.install_if_privileged()?;
    set_user_and_caps(spec)?;

    let args = process.args().clone().unwrap_or_default();
    let env = process.env().clone().unwrap_or_default();
    let exe = find_executable(&args[0], &env)?;
    init.sync.send(b"ready")?;

    // Block until `start` opens the FIFO for reading.
    let fifo = c"exec.fifo";
    // SAFETY: openat on a valid dir fd and a NUL-terminated name.
    let fd = unsafe { libc::openat(init.state_dir, fifo.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "open exec fifo");
    }
    // SAFETY: writing one byte from a static buffer; closing our fds.
    unsafe {
        libc::write(fd, b"0".as_ptr().cast(), 1);
        libc::close(fd);
        libc::close(init.state_dir);
    }
    if let Some(h) = spec.hooks() {
        // The state is no longer reachable from here; hooks get what create sent.
        hooks::run_all("startContainer", h.start_container(), &state)?;
    }
    close_inherited_fds(3 + init.preserve_fds)?;
    seccomp.install()?;
    exec(&exe, &args, &env)
}

/// No host fd reaches the program: everything from `first` up is marked
/// close-on-exec (the caller's stray fds, anything the runtime opened).
pub(crate) fn close_inherited_fds(first: u32) -> Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) };
    if r == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk the fd table.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(1024, 1 << 20) as i32;
    for fd in first as i32..max {
        // SAFETY: fcntl on an fd number that may be closed (EBADF is fine).
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}

pub(crate) fn set_user_and_caps(spec: &Spec) -> Result<()> {
    let process = spec.process().as_ref().ok_or_else(|| Error("no process".into()))?;
    let user = process.user();
    let last = capabilities::last_cap();
    let sets = match process.capabilities() {
        Some(c) => Some(Sets::from_spec(c, last)?),
        None => None,
    };
    if let Some(s) = &sets {
        capabilities::drop_bounding(s, last)?;
    }
    let gids: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    // SAFETY: plain credential syscalls with valid arguments.
    unsafe {
        if libc::setgroups(gids.len(), gids.as_ptr()) != 0 {
            let e = std::io::Error::last_os_error();
            // In a user namespace with setgroups denied, only an empty list is possible.
            if !(gids.is_empty() && e.raw_os_error() == Some(libc::EPERM)) {
                return Err(e).ctx(|| format!("setgroups {gids:?}"));
            }
        }
        if libc::setresgid(user.gid(), user.gid(), user.gid()) != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| format!("setgid {}", user.gid()));
        }
        libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0);
        if libc::setresuid(user.uid(), user.uid(), user.uid()) != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| format!("setuid {}", user.uid()));
        }
        libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
    }
    if let Some(s) = &sets {
        capabilities::apply(s, last)?;
    }
    if let Some(mask) = user.umask() {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    if process.no_new_privileges().unwrap_or(false) {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "set no_new_privs");
        }
    }
    Ok(())
}

/// Resolves `arg0` with the container's PATH, as runc does at create time,
/// so a missing program fails `create`, not `start`.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let runnable = |p: &Path| {
        let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap_or_default();
        // SAFETY: access on a NUL-terminated path.
        p.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        if !p.exists() {
            return err(format!("exec: {arg0:?}: no such file or directory"));
        }
        if !runnable(&p) {
            return err(format!("exec: {arg0:?}: permission denied"));
        }
        return Ok(p);
    }
    let path = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(arg0);
        if runnable(&p) {
            return Ok(p);
        }
    }
    err(format!("exec: {arg0:?}: executable file not found in $PATH"))
}

pub(crate) fn exec(exe: &Path, args: &[String], env: &[String]) -> Result<Never> {
    // Rust's runtime ignores SIGPIPE, and an ignored signal stays ignored
    // across exec: give the program the default, as runc does.
    // SAFETY: resetting a disposition; no handler involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cstr = |s: &str| CString::new(s).map_err(|_| Error(format!("{s:?} contains a NUL byte")));
    let exe_c = CString::new(exe.as_os_str().as_encoded_bytes()).map_err(|_| Error("exe path has a NUL byte".into()))?;
    let argv: Vec<CString> = args.iter().map(|a| cstr(a)).collect::<Result<_>>()?;
    let envp: Vec<CString> = env.iter().map(|a| cstr(a)).collect::<Result<_>>()?;
    let e = nix::unistd::execve(&exe_c, &argv, &envp).unwrap_err();
    err(format!("exec {}: {e}", exe.display()))
}
