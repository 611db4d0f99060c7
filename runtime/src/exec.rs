//! `exec` (runc exec): a new process inside a created or running container.
//!
//! The runtime forks a helper that joins every namespace of the container's
//! process (`/proc/<pid>/ns/*`, user first, pid last) after the runtime has
//! moved it into the container's cgroup; the helper clones the exec'd
//! process with CLONE_PARENT, so it is the runtime's child, born inside the
//! pid namespace and the cgroup, and the helper exits. That process gets the
//! container's view of `/` from the mount namespace (no chroot), its cwd,
//! console, rlimits, user, capabilities, no_new_privs and the container's
//! seccomp filter, then execs. The runtime learns that exec happened when
//! the close-on-exec channel closes; errors come back over it as `E<text>`.
//!
//! Not detached, the runtime forwards signals and exits with the process's
//! code (128+N for signal N); detached (`-d`, what containerd's shim uses)
//! it exits at once and the process is re-parented to the caller's subreaper.

use crate::capabilities;
use crate::container::Global;
use crate::error::{err, Context, Error, Result};
use crate::state::{self, Saved, Status};
use crate::sync::Channel;
use crate::{console, process, rlimits, spec, sync};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process, Spec};
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// runc exec's options.
#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    pub id: String,
    /// `--process P.json`: the whole process; the flags below that shape a
    /// process (env, cwd, user, caps, ...) only apply to the ARGS form.
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    /// `UID[:GID]`.
    pub user: Option<String>,
    pub additional_gids: Vec<String>,
    pub caps: Vec<String>,
    pub no_new_privs: Option<bool>,
    pub preserve_fds: u32,
    pub process_label: Option<String>,
    pub apparmor: Option<String>,
}

/// The namespaces joined, in order: the user namespace decides what may be
/// done in the others; the pid namespace applies to the children only.
const NAMESPACES: [(&str, libc::c_int); 8] = [
    ("user", libc::CLONE_NEWUSER),
    ("mnt", libc::CLONE_NEWNS),
    ("net", libc::CLONE_NEWNET),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", 0x80), // CLONE_NEWTIME
    ("pid", libc::CLONE_NEWPID),
];

/// Signals a foreground exec forwards to its process.
const FORWARDED: [libc::c_int; 7] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// The process `exec` runs: `--process` JSON as is, else the container's
/// process with ARGS and the flags applied, as runc does.
pub fn build_process(spec: &Spec, o: &ExecOpts) -> Result<Process> {
    let mut p = match &o.process {
        Some(path) => {
            let text = std::fs::read_to_string(path).ctx(|| format!("read process {}", path.display()))?;
            let p: Process = serde_json::from_str(&text).ctx(|| format!("parse process {}", path.display()))?;
            p
        }
        None => {
            let mut p = spec.process().clone().ok_or_else(|| Error("config.json has no process".into()))?;
            if o.args.is_empty() {
                return err("exec needs a command: ID ARGS... or --process P.json");
            }
            p.set_args(Some(o.args.clone()));
            if let Some(c) = &o.cwd {
                p.set_cwd(PathBuf::from(c));
            }
            if let Some(a) = &o.apparmor {
                p.set_apparmor_profile(Some(a.clone()));
            }
            if let Some(l) = &o.process_label {
                p.set_selinux_label(Some(l.clone()));
            }
            if !o.caps.is_empty() {
                p.set_capabilities(Some(add_caps(p.capabilities().as_ref(), &o.caps)?));
            }
            let mut env = p.env().clone().unwrap_or_default();
            env.extend(o.env.iter().cloned());
            p.set_env(Some(env));
            p.set_terminal(Some(o.tty));
            if let Some(n) = o.no_new_privs {
                p.set_no_new_privileges(Some(n));
            }
            if let Some(u) = &o.user {
                let num = |s: &str| s.parse::<u32>().map_err(|_| Error(format!("--user {u:?}: expected UID[:GID] (numbers)")));
                let (uid, gid) = match u.split_once(':') {
                    Some((uid, gid)) => (num(uid)?, Some(num(gid)?)),
                    None => (num(u)?, None),
                };
                p.user_mut().set_uid(uid);
                if let Some(gid) = gid {
                    p.user_mut().set_gid(gid);
                }
            }
            if !o.additional_gids.is_empty() {
                let mut gids = p.user().additional_gids().clone().unwrap_or_default();
                for g in &o.additional_gids {
                    gids.push(g.parse().map_err(|_| Error(format!("--additional-gids {g:?}: not a number")))?);
                }
                p.user_mut().set_additional_gids(Some(gids));
            }
            p
        }
    };
    match p.args().as_deref() {
        Some([first, ..]) if !first.is_empty() => {}
        _ => return err("exec: process args must not be empty"),
    }
    if !p.cwd().is_absolute() {
        return err(format!("exec: cwd {:?} must be an absolute path", p.cwd()));
    }
    // Later entries win, at the place of the first (as runc dedups).
    let mut env: Vec<String> = Vec::new();
    for kv in p.env().clone().unwrap_or_default() {
        let key = kv.split('=').next().unwrap_or("").to_string();
        match env.iter_mut().find(|e| e.split('=').next() == Some(key.as_str())) {
            Some(slot) => *slot = kv,
            None => env.push(kv),
        }
    }
    p.set_env(Some(env));
    Ok(p)
}

/// `--cap C`: added to bounding, effective and permitted, and to ambient
/// when the process has inheritable capabilities (runc's rule).
fn add_caps(caps: Option<&LinuxCapabilities>, add: &[String]) -> Result<LinuxCapabilities> {
    // Without capabilities in the process, the sets start empty.
    let mut c = caps.cloned().unwrap_or_else(|| serde_json::from_str("{}").unwrap_or_default());
    let inheritable = c.inheritable().is_some();
    for name in add {
        let n = capabilities::number(name).ok_or_else(|| Error(format!("--cap {name:?}: unknown capability")))?;
        let cap: Capability = serde_json::from_str(&format!("\"{}\"", capabilities::NAMES[n as usize]))
            .ctx(|| format!("--cap {name:?}"))?;
        let with = |set: &Option<Capabilities>| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        c.set_bounding(with(c.bounding()));
        c.set_effective(with(c.effective()));
        c.set_permitted(with(c.permitted()));
        if inheritable {
            c.set_ambient(with(c.ambient()));
        }
    }
    Ok(c)
}

/// Whether this host enforces AppArmor (what an apparmorProfile needs).
fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
        && Path::new("/sys/kernel/security/apparmor").exists()
}

/// The container's config.json as it was at create (copied to the state
/// dir), or the bundle's for a container created without that copy.
fn config_as_created(root: &Path, saved: &Saved) -> Result<Spec> {
    let copy = state::dir(root, &saved.id).join(crate::container::CONFIG_COPY);
    match std::fs::read_to_string(&copy) {
        Ok(text) => {
            let mut v: serde_json::Value = serde_json::from_str(&text).ctx(|| format!("parse {}", copy.display()))?;
            crate::seccomp::compat(&mut v);
            serde_json::from_value(v).ctx(|| format!("parse {}", copy.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => spec::load(&saved.bundle),
        Err(e) => Err(e).ctx(|| format!("read {}", copy.display())),
    }
}

/// Opens the namespaces of `pid` that differ from ours, in join order.
fn open_namespaces(pid: i32) -> Result<Vec<(libc::c_int, File)>> {
    let mut out = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{pid}/ns/{name}");
        let f = match File::open(&path) {
            Ok(f) => f,
            // A kernel without this namespace type (time before 5.6).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).ctx(|| format!("open namespace {path}")),
        };
        let theirs = f.metadata().ctx(|| format!("stat {path}"))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}")).ctx(|| format!("stat /proc/self/ns/{name}"))?;
        if (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()) {
            out.push((flag, f));
        }
    }
    Ok(out)
}

/// What the forked helper and the process need, made before the fork.
struct Child<'a> {
    spec: &'a Spec,
    namespaces: &'a [(libc::c_int, File)],
    chan: Channel,
    console: Option<RawFd>,
    sigmask: libc::sigset_t,
    preserve_fds: u32,
}

/// `exec`: returns the process's exit code (0 when detached).
pub fn exec(g: &Global, o: &ExecOpts) -> Result<i32> {
    let saved = Saved::load(&g.root, &o.id)?;
    match saved.status(&g.root) {
        Status::Stopped => return err(format!("cannot exec in a stopped container {}", o.id)),
        Status::Paused => return err(format!("cannot exec in a paused container {} (resume it first)", o.id)),
        _ => {}
    }
    let config = config_as_created(&g.root, &saved)?;
    let process = build_process(&config, o)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && o.console_socket.is_none() {
        return err("cannot allocate a tty without --console-socket");
    }
    if process.selinux_label().as_ref().is_some_and(|l| !l.is_empty()) {
        return err("selinux label requested but SELinux is not supported by this runtime/host");
    }
    if process.apparmor_profile().as_ref().is_some_and(|p| !p.is_empty()) && !apparmor_enabled() {
        return err(format!(
            "apparmor profile {:?} requested but AppArmor is not enabled on this host",
            process.apparmor_profile().as_deref().unwrap_or("")
        ));
    }
    let oom = process.oom_score_adj();
    let mut spec = config.clone();
    spec.set_process(Some(process));

    let namespaces = open_namespaces(saved.pid)?;
    // The fds are the container's namespaces only if its process is still
    // the one we started (not a reused pid).
    if !state::alive(saved.pid, saved.pid_start) {
        return err(format!("cannot exec in a stopped container {}", o.id));
    }
    let console = match (&o.console_socket, terminal) {
        (Some(p), true) => Some(console::connect(p)?),
        _ => None,
    };
    let (parent, child) = sync::pair()?;
    // Block what we forward before the fork so nothing is lost; the
    // process restores the original mask.
    // SAFETY: sigset manipulation on local values.
    let (old, forwarded) = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        if !o.detach {
            for s in FORWARDED.iter().chain(&[libc::SIGCHLD]) {
                libc::sigaddset(&mut set, *s);
            }
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        (old, set)
    };

    // SAFETY: this process has a single thread; the child runs Rust code
    // and leaves with _exit.
    let helper = unsafe { libc::fork() };
    if helper < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "fork the exec helper");
    }
    if helper == 0 {
        parent.close();
        helper_main(Child {
            spec: &spec,
            namespaces: &namespaces,
            chan: child,
            console: console.as_ref().map(|c| c.as_raw_fd()),
            sigmask: old,
            preserve_fds: o.preserve_fds,
        });
    }
    child.close();
    drop(console);
    drop(namespaces);
    let kill_wait = |pid: i32| {
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    };
    let pid = match start(&saved, &parent, helper, oom, g.rootless) {
        Ok(pid) => pid,
        Err(e) => {
            kill_wait(helper);
            parent.close();
            return Err(e);
        }
    };
    // The process reports an error, or the channel closes when it execs.
    let outcome = recv_or_eof(&parent);
    parent.close();
    if let Err(e) = outcome {
        kill_wait(pid);
        return Err(e);
    }
    if let Some(f) = &o.pid_file {
        state::write_volatile(f, pid.to_string().as_bytes())?;
    }
    if o.detach {
        return Ok(0);
    }
    Ok(wait_forwarding(pid, &forwarded))
}

/// The runtime's side up to the clone: cgroup, oom_score_adj, then the
/// helper joins the namespaces and reports the process's pid.
fn start(saved: &Saved, chan: &Channel, helper: i32, oom: Option<i32>, rootless: bool) -> Result<i32> {
    match saved.cgroup.add_pid(helper) {
        // Rootless, a delegated cgroup may not admit a process from where
        // the caller stands (cgroup2 wants the common ancestor writable).
        Err(e) if rootless => {
            crate::logging::warn(&format!("rootless: exec process not in the container's cgroup: {e}"))
        }
        r => r?,
    }
    if let Some(adj) = oom {
        std::fs::write(format!("/proc/{helper}/oom_score_adj"), adj.to_string())
            .ctx(|| format!("set oom_score_adj {adj}"))?;
    }
    chan.send(b"go")?;
    let msg = chan.recv().ctx(|| "exec helper")?;
    // SAFETY: reaping the helper, which exits after sending the pid.
    unsafe { libc::waitpid(helper, std::ptr::null_mut(), 0) };
    let pid = std::str::from_utf8(&msg)
        .ok()
        .and_then(|m| m.strip_prefix('P'))
        .and_then(|n| n.parse::<i32>().ok())
        .ok_or_else(|| Error(format!("exec helper: unexpected message {:?}", String::from_utf8_lossy(&msg))))?;
    chan.send(b"run")?;
    Ok(pid)
}

/// Ok on EOF (the other side exec'd or exited), Err on an `E` message.
fn recv_or_eof(chan: &Channel) -> Result<()> {
    match chan.recv() {
        Ok(m) => err(format!("exec: unexpected message {:?}", String::from_utf8_lossy(&m))),
        Err(e) if e.0 == "the other side of the runtime channel exited" => Ok(()),
        Err(e) => Err(e),
    }
}

/// Forwards signals to `pid` until it exits; its code, 128+N for signal N.
fn wait_forwarding(pid: i32, set: &libc::sigset_t) -> i32 {
    loop {
        let timeout = libc::timespec { tv_sec: 1, tv_nsec: 0 };
        // SAFETY: valid set and timeout.
        let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &timeout) };
        if sig > 0 && sig != libc::SIGCHLD {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(pid, sig) };
        }
        let mut status = 0;
        // SAFETY: waitpid on our child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return if libc::WIFSIGNALED(status) { 128 + libc::WTERMSIG(status) } else { libc::WEXITSTATUS(status) };
        }
        if r < 0 {
            return 255; // not our child any more: nothing to wait for
        }
    }
}

/// The helper: joins the namespaces, clones the process into them and
/// exits. Never returns.
fn helper_main(c: Child) -> ! {
    let report = |e: Error| {
        if c.chan.send(format!("E{}", e.0).as_bytes()).is_err() {
            eprintln!("runtime: exec: {e}");
        }
    };
    let r = (|| -> Result<i32> {
        // Nothing in the container may open our /proc entries (exe, mem,
        // fds) while we run inside it: non-dumpable until exec.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        c.chan.expect(b"go")?;
        for (flag, f) in c.namespaces {
            // SAFETY: setns on a valid fd.
            if unsafe { libc::setns(f.as_raw_fd(), *flag) } != 0 {
                let name = NAMESPACES.iter().find(|(_, fl)| fl == flag).map(|(n, _)| *n).unwrap_or("?");
                return Err(std::io::Error::last_os_error()).ctx(|| format!("join the container's {name} namespace"));
            }
        }
        // SAFETY: clone without CLONE_VM behaves like fork; we have one thread.
        let pid = unsafe {
            libc::syscall(libc::SYS_clone, (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
        } as i32;
        if pid < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "clone the exec process into the container");
        }
        Ok(pid)
    })();
    match r {
        Ok(0) => {
            let e = match process_main(&c) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            report(e);
        }
        Ok(pid) => {
            let _ = c.chan.send(format!("P{pid}").as_bytes());
            // SAFETY: leave without running the parent's atexit handlers.
            unsafe { libc::_exit(0) }
        }
        Err(e) => report(e),
    }
    // SAFETY: as above.
    unsafe { libc::_exit(1) }
}

/// The exec'd process, inside every namespace and the cgroup.
fn process_main(c: &Child) -> Result<process::Never> {
    let spec = c.spec;
    let p = spec.process().as_ref().ok_or_else(|| Error("no process".into()))?;
    c.chan.expect(b"run")?;
    // SAFETY: restoring the caller's mask; setsid has no memory effects
    // (a fresh child is never a group leader).
    unsafe {
        libc::sigprocmask(libc::SIG_SETMASK, &c.sigmask, std::ptr::null_mut());
        libc::setsid();
    }
    // Joining the mount namespace made its root (the rootfs) our / and cwd.
    let cwd = p.cwd();
    nix::unistd::chdir(cwd.as_path()).ctx(|| format!("chdir to cwd {}", cwd.display()))?;
    if p.terminal().unwrap_or(false) {
        let Some(sock) = c.console else {
            return err("process.terminal is true but no --console-socket was given");
        };
        let size = p.console_size().map(|b| (b.height() as u16, b.width() as u16));
        console::setup(sock, size)?;
        // SAFETY: closing our copy of the socket.
        unsafe { libc::close(sock) };
    }
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        // Applied at exec, as runc's change_onexec does.
        let cmd = format!("exec {profile}");
        std::fs::write("/proc/self/attr/apparmor/exec", &cmd)
            .or_else(|_| std::fs::write("/proc/self/attr/exec", &cmd))
            .ctx(|| format!("set apparmor profile {profile}"))?;
    }
    if let Some(r) = p.rlimits() {
        rlimits::apply(r)?;
    }
    let mut env = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(p.user().uid())));
    }
    // The container's seccomp profile, loaded where process.rs loads it.
    let mut seccomp = crate::seccomp::Pending::from_spec(spec)?;
    seccomp.install_if_privileged()?;
    process::set_user_and_caps(spec)?;
    let args = p.args().clone().unwrap_or_default();
    let exe = process::find_executable(&args[0], &env)?;
    process::close_inherited_fds(3 + c.preserve_fds)?;
    seccomp.install()?;
    process::exec(&exe, &args, &env)
}

/// The user's home directory from the container's /etc/passwd, else "/"
/// (runc sets HOME this way when the process has none).
fn home_of(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid))
        .map(|f| f[5].to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        serde_json::from_str(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","user":{"uid":0,"gid":0},
            "args":["sh"],"env":["PATH=/bin","A=1"],"capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],
            "permitted":["CAP_KILL"]}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn args_form_applies_flags() {
        let o = ExecOpts {
            args: vec!["ls".into(), "-l".into()],
            env: vec!["A=2".into(), "B=3".into()],
            cwd: Some("/tmp".into()),
            user: Some("1000:1001".into()),
            additional_gids: vec!["5".into()],
            caps: vec!["net_admin".into()],
            tty: true,
            ..Default::default()
        };
        let p = build_process(&spec(), &o).unwrap();
        assert_eq!(p.args().as_deref().unwrap(), ["ls", "-l"]);
        assert_eq!(p.env().as_deref().unwrap(), ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        assert_eq!(p.user().additional_gids().as_deref().unwrap(), [5]);
        assert_eq!(p.terminal(), Some(true));
        let caps = serde_json::to_value(p.capabilities()).unwrap();
        assert_eq!(caps["bounding"].as_array().unwrap().len(), 2);
        assert!(caps["permitted"].as_array().unwrap().contains(&"CAP_NET_ADMIN".into()));
        assert!(caps["ambient"].is_null());
    }

    #[test]
    fn bad_input_is_named() {
        let o = ExecOpts { args: vec![], ..Default::default() };
        assert!(build_process(&spec(), &o).unwrap_err().0.contains("needs a command"));
        let o = ExecOpts { args: vec!["x".into()], user: Some("bob".into()), ..Default::default() };
        assert!(build_process(&spec(), &o).unwrap_err().0.contains("UID[:GID]"));
        let o = ExecOpts { args: vec!["x".into()], cwd: Some("rel".into()), ..Default::default() };
        assert!(build_process(&spec(), &o).unwrap_err().0.contains("absolute"));
        let o = ExecOpts { args: vec!["x".into()], caps: vec!["CAP_NOPE".into()], ..Default::default() };
        assert!(build_process(&spec(), &o).unwrap_err().0.contains("CAP_NOPE"));
    }
}
