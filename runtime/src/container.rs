//! The lifecycle operations of runtime.md: create, start, state, kill,
//! delete, plus runc's run and list, and its commands on a container's
//! cgroup: ps, update, events (exec is in `exec`). Each command rebuilds
//! its view from the state dir; nothing is left behind when one fails.

use crate::cgroups::Cgroup;
use crate::error::{err, Context, Error, Result};
use crate::namespaces::Plan;
use crate::process::{self, Init};
use crate::state::{self, Saved, Status, FIFO};
use crate::{hooks, spec, sync};
use oci_spec::runtime::LinuxIdMapping;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// In the state dir: the bundle's config.json as it was at create (`exec`
/// reads it; the bundle's may change meanwhile).
pub const CONFIG_COPY: &str = "config.json";

/// Global options (runc's).
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    /// `--rootless` (auto: not running as root): cgroups are used only
    /// where the user may write them (a delegated cgroup), limits that
    /// cannot be applied are warned about, not errors.
    pub rootless: bool,
}

#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
}

/// Undoes a half-made container unless disarmed.
struct Cleanup<'a> {
    dir: PathBuf,
    cgroup: Option<Cgroup>,
    pid: i32,
    armed: bool,
    _g: &'a Global,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.pid > 0 {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
        if let Some(c) = &self.cgroup {
            let _ = c.delete();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).ctx(|| format!("bundle {}", p.display()))
}

/// `create`: sets up the container and leaves its process blocked before
/// exec. Returns its pid; the process is our child until we exit.
pub fn create(g: &Global, o: &CreateOpts, sigmask: libc::sigset_t) -> Result<i32> {
    state::check_id(&o.id)?;
    let bundle = absolute(&o.bundle)?;
    let spec = spec::load(&bundle)?;
    let rootfs = absolute(&spec::rootfs(&bundle, &spec)?)?;
    let process = spec.process().as_ref().ok_or_else(|| Error("no process".into()))?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && o.console_socket.is_none() {
        return err("cannot allocate a tty without --console-socket (process.terminal is true)");
    }
    let linux = spec.linux().as_ref();
    let plan = Plan::new(linux.and_then(|l| l.namespaces().as_deref()).unwrap_or(&[]))?;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 && !plan.has(libc::CLONE_NEWUSER) {
        return err(format!(
            "running as uid {euid} (not root) needs a user namespace, and linux.namespaces in {} has no \"user\" \
             entry: make the config with `runtime spec --rootless` (a user namespace mapping your ids to root)",
            bundle.join("config.json").display()
        ));
    }

    if g.rootless {
        // Private to the user, as runc makes its root.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&g.root)
    } else {
        std::fs::create_dir_all(&g.root)
    }
    .ctx(|| format!("create state root {}", g.root.display()))?;
    let dir = state::dir(&g.root, &o.id);
    match std::fs::create_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return err(format!("container with id {} already exists", o.id));
        }
        r => r.ctx(|| format!("create {}", dir.display()))?,
    }
    let mut cleanup = Cleanup { dir: dir.clone(), cgroup: None, pid: 0, armed: true, _g: g };
    let fifo = dir.join(FIFO);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622)).ctx(|| format!("mkfifo {}", fifo.display()))?;
    // Not subject to our umask: the container's user (any uid) opens the
    // FIFO for writing and must reach it through the dir.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o622)).ctx(|| format!("chmod {}", fifo.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).ctx(|| format!("chmod {}", dir.display()))?;
    let state_dir = std::fs::File::open(&dir).ctx(|| format!("open {}", dir.display()))?;

    let mut cgroup = Cgroup::resolve(linux.and_then(|l| l.cgroups_path().as_deref()), &o.id, g.systemd_cgroup)?;
    let resources = linux.and_then(|l| l.resources().as_ref());
    // Rootless: the cgroup is joined where the user may, once the pid is known.
    if !g.rootless {
        cleanup.cgroup = Some(cgroup.clone());
        cgroup.create(resources)?;
    }

    let console = match (&o.console_socket, terminal) {
        (Some(p), true) => Some(crate::console::connect(p)?),
        _ => None,
    };
    let (parent, child) = sync::pair()?;
    // A pid namespace given by path applies to our children: join it here.
    plan.enter(libc::CLONE_NEWPID)?;

    // Privileged and without a new user namespace, the child joins its v1
    // cgroups itself and is born in its cgroup2 one: much faster than being
    // moved (Cgroup::self_join_dirs).
    let self_join = !g.rootless && plan.clone_flags & libc::CLONE_NEWUSER == 0;
    let (v1_dirs, v2_dir) = if self_join { cgroup.self_join_dirs() } else { (Vec::new(), None) };
    let v2_fd = v2_dir.as_ref().and_then(|d| std::fs::File::open(d).ok());
    // The cgroup namespace is unshared by the child once it is in its cgroup.
    let flags = (plan.clone_flags & !libc::CLONE_NEWCGROUP) as u64;
    // SAFETY: clone without CLONE_VM behaves like fork; this process has a
    // single thread, so the child may keep running Rust code.
    let (pid, into_v2) = unsafe { clone_child(flags, v2_fd.as_ref().map(|f| f.as_raw_fd())) }.ctx(|| "clone the container process")?;
    if pid == 0 {
        parent.close();
        process::run(Init {
            spec: &spec,
            rootfs,
            bundle: bundle.clone(),
            plan: &plan,
            sync: child,
            state_dir: state_dir.as_raw_fd(),
            console: console.as_ref().map(|c| c.as_raw_fd()),
            no_pivot: o.no_pivot,
            sigmask,
            preserve_fds: o.preserve_fds,
            cgroup_tasks: v1_dirs.clone(),
        });
    }
    child.close();
    drop(v2_fd);
    drop(console);
    cleanup.pid = pid;

    if plan.clone_flags & libc::CLONE_NEWUSER != 0 {
        write_id_maps(pid, linux)?;
    }
    if g.rootless {
        cgroup.join_rootless(pid, resources);
        cleanup.cgroup = Some(cgroup.clone());
    } else {
        let mut joined = v1_dirs;
        joined.extend(v2_dir.filter(|_| into_v2));
        cgroup.add_pid_except(pid, &joined)?;
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string()).ctx(|| format!("set oom_score_adj {adj}"))?;
    }
    let mut saved = Saved {
        id: o.id.clone(),
        pid,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: spec::rootfs(&bundle, &spec)?,
        created: state::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: cgroup.clone(),
        hooks: spec.hooks().clone(),
        oci_version: spec.version().clone(),
    };
    parent.send(b"go")?;
    // The child asks for the runtime-namespace hooks once its mounts are done.
    parent.expect(b"hooks").ctx(|| "container init")?;
    let creating = serde_json::to_vec(&saved.oci(Status::Creating)).ctx(|| "serialize state")?;
    if let Some(h) = spec.hooks() {
        hooks::run_all("prestart", h.prestart(), &creating)?;
        hooks::run_all("createRuntime", h.create_runtime(), &creating)?;
    }
    parent.send(b"ok")?;
    parent.send(&creating)?;
    parent.expect(b"ready").ctx(|| "container init")?;
    parent.close();

    saved.pid_start = state::start_time(pid).ok_or_else(|| Error(format!("container process {pid} exited during create")))?;
    // The config as created, for `exec` (the bundle's may change later).
    let config = dir.join(CONFIG_COPY);
    std::fs::copy(bundle.join("config.json"), &config).ctx(|| format!("copy config.json to {}", config.display()))?;
    saved.save(&g.root)?;
    if let Some(p) = &o.pid_file {
        state::write_volatile(p, pid.to_string().as_bytes())?;
    }
    cleanup.armed = false;
    Ok(pid)
}

/// clone(2) with `flags` (namespaces; SIGCHLD to the parent), fork-like.
/// With `cgroup` (a cgroup2 dir fd), clone3 starts the child in that
/// cgroup (CLONE_INTO_CGROUP, Linux 5.7); where that fails, a plain clone.
/// Returns (pid, 0 in the child; whether the child was born in `cgroup`).
///
/// # Safety
/// As fork: the calling process must have a single thread.
unsafe fn clone_child(flags: u64, cgroup: Option<RawFd>) -> std::io::Result<(i32, bool)> {
    /// `struct clone_args` of linux/sched.h (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    if let Some(fd) = cgroup {
        let args = CloneArgs { flags: flags | CLONE_INTO_CGROUP, exit_signal: libc::SIGCHLD as u64, cgroup: fd as u64, ..Default::default() };
        let r = libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>());
        if r >= 0 {
            return Ok((r as i32, true));
        }
        let e = std::io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::ENOMEM)) {
            return Err(e);
        }
        // an older kernel, or a cgroup it will not start us in: clone, then move
    }
    let r = libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD as u64) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize);
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((r as i32, false))
}

/// Writes the new user namespace's uid and gid maps. Root writes them
/// directly. Another user may write only a map of its own id that way (the
/// gid map after `deny` in setgroups, as the kernel requires); a map of
/// more ids goes through newuidmap / newgidmap (Debian's `uidmap`, which
/// check /etc/subuid and /etc/subgid), as runc does.
fn write_id_maps(pid: i32, linux: Option<&oci_spec::runtime::Linux>) -> Result<()> {
    let uids = linux.and_then(|l| l.uid_mappings().as_deref()).unwrap_or(&[]);
    let gids = linux.and_then(|l| l.gid_mappings().as_deref()).unwrap_or(&[]);
    if uids.is_empty() || gids.is_empty() {
        return err("a new user namespace needs linux.uidMappings and linux.gidMappings");
    }
    // SAFETY: geteuid/getegid cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let direct = |file: &str, maps: &[LinuxIdMapping]| {
        let text: String = maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect();
        std::fs::write(format!("/proc/{pid}/{file}"), &text)
            .ctx(|| format!("write {file} {}", text.trim().replace('\n', ", ")))
    };
    let own_only = |maps: &[LinuxIdMapping], id: u32| maps.len() == 1 && maps[0].host_id() == id && maps[0].size() == 1;
    if euid == 0 {
        direct("uid_map", uids)?;
        return direct("gid_map", gids);
    }
    if own_only(uids, euid) {
        direct("uid_map", uids)?;
    } else {
        map_with_helper("newuidmap", pid, uids, ("uid", euid, "/etc/subuid"))?;
    }
    if own_only(gids, egid) {
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
            .ctx(|| format!("write deny to /proc/{pid}/setgroups"))?;
        direct("gid_map", gids)
    } else {
        map_with_helper("newgidmap", pid, gids, ("gid", egid, "/etc/subgid"))
    }
}

/// Runs newuidmap / newgidmap `pid` with `maps`. `who` is (uid or gid,
/// the caller's id, the subordinate ids file) for the messages.
fn map_with_helper(tool: &str, pid: i32, maps: &[LinuxIdMapping], who: (&str, u32, &str)) -> Result<()> {
    let (kind, own, file) = who;
    let path = std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        .to_string_lossy()
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file());
    let Some(path) = path else {
        return err(format!(
            "linux.{kind}Mappings maps more than your own {kind} {own}: that needs {tool} (Debian package uidmap, \
             not found in $PATH) and ids for you in {file}; or map only {kind} {own} (`runtime spec --rootless`)"
        ));
    };
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([m.container_id(), m.host_id(), m.size()].map(|v| v.to_string()));
    }
    let out = std::process::Command::new(&path)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .ctx(|| format!("run {}", path.display()))?;
    if !out.status.success() {
        return err(format!(
            "{} {} failed ({}): {} (are the ids in {file}?)",
            path.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// `start`: releases a created container into its program.
pub fn start(g: &Global, id: &str) -> Result<()> {
    let saved = Saved::load(&g.root, id)?;
    match saved.status(&g.root) {
        Status::Created => {}
        s => return err(format!("cannot start container {id}: it is {}, not created", s.as_str())),
    }
    let fifo = state::dir(&g.root, id).join(FIFO);
    // Non-blocking: a container that died must not hang us.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .ctx(|| format!("open {}", fifo.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut byte = [0u8; 1];
    loop {
        match std::io::Read::read(&mut &f, &mut byte) {
            Ok(1) => break,
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return Err(e).ctx(|| format!("read {}", fifo.display())),
            _ => {}
        }
        if !state::alive(saved.pid, saved.pid_start) {
            return err(format!("container {id} exited before start"));
        }
        if Instant::now() > deadline {
            return err(format!("container {id} did not take the start signal within 30s"));
        }
        // Woken as soon as the byte comes (a fixed sleep cost a millisecond
        // of every start); the timeout only bounds the liveness checks.
        let mut pfd = libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 20) };
        if pfd.revents & libc::POLLHUP != 0 && pfd.revents & libc::POLLIN == 0 {
            // the writer came and went without a byte: don't spin on HUP
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    std::fs::remove_file(&fifo).ctx(|| format!("remove {}", fifo.display()))?;
    if let Some(h) = &saved.hooks {
        let st = serde_json::to_vec(&saved.oci(Status::Running)).ctx(|| "serialize state")?;
        if let Err(e) = hooks::run_all("poststart", h.poststart(), &st) {
            crate::logging::warn(&format!("{e}"));
        }
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

pub fn state_json(g: &Global, id: &str) -> Result<String> {
    let saved = Saved::load(&g.root, id)?;
    serde_json::to_string_pretty(&saved.oci(saved.status(&g.root))).ctx(|| "serialize state")
}

/// `kill [--all] ID SIG`.
pub fn kill(g: &Global, id: &str, sig: i32, all: bool) -> Result<()> {
    let saved = Saved::load(&g.root, id)?;
    let status = saved.status(&g.root);
    if status == Status::Stopped {
        return err(format!("container {id} is not running"));
    }
    let mut pids = if all { saved.cgroup.pids()? } else { vec![saved.pid] };
    // A rootless container without a cgroup: its init (and with it a pid
    // namespace) is what can be signalled.
    if pids.is_empty() {
        pids.push(saved.pid);
    }
    for pid in pids {
        // SAFETY: kill has no memory effects.
        if unsafe { libc::kill(pid, sig) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e).ctx(|| format!("kill {pid} with signal {sig}"));
            }
        }
    }
    Ok(())
}

/// `delete [--force] ID`: a created container is killed (as runc does); a
/// running one only with --force.
pub fn delete(g: &Global, id: &str, force: bool) -> Result<()> {
    let saved = match Saved::load(&g.root, id) {
        Ok(s) => s,
        Err(_) if force && state::check_id(id).is_ok() => {
            let _ = std::fs::remove_dir_all(state::dir(&g.root, id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    match saved.status(&g.root) {
        Status::Stopped => {}
        Status::Created => stop(&saved)?,
        s if force => {
            if s == Status::Paused {
                let _ = saved.cgroup.freeze(false);
            }
            stop(&saved)?
        }
        s => return err(format!("cannot delete container {id} that is not stopped: {}", s.as_str())),
    }
    saved.cgroup.delete()?;
    if let Some(h) = &saved.hooks {
        let st = serde_json::to_vec(&saved.oci(Status::Stopped)).ctx(|| "serialize state")?;
        if let Err(e) = hooks::run_all("poststop", h.poststop(), &st) {
            crate::logging::warn(&format!("{e}"));
        }
    }
    let dir = state::dir(&g.root, id);
    std::fs::remove_dir_all(&dir).ctx(|| format!("remove {}", dir.display()))
}

/// SIGKILLs the container (all of its cgroup) and waits until it is gone.
fn stop(saved: &Saved) -> Result<()> {
    let mut pids = saved.cgroup.pids().unwrap_or_default();
    pids.push(saved.pid);
    for pid in pids {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while state::alive(saved.pid, saved.pid_start) {
        if Instant::now() > deadline {
            return err(format!("container process {} survived SIGKILL for 10s", saved.pid));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // Its other processes leave the cgroup as they die.
    while saved.cgroup.pids().is_ok_and(|p| !p.is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Every container under the root, sorted by id.
pub fn list(g: &Global) -> Result<Vec<(Saved, Status)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&g.root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).ctx(|| format!("read {}", g.root.display())),
    };
    for e in entries.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if let Ok(s) = Saved::load(&g.root, &id) {
            let st = s.status(&g.root);
            out.push((s, st));
        }
    }
    out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    Ok(out)
}

/// `run`: create + start; unless detached, forward signals, wait, delete,
/// and return the exit code (128+N for signal N).
pub fn run(g: &Global, o: &CreateOpts, detach: bool) -> Result<i32> {
    // Signals to forward are blocked before the clone; the child restores
    // the original mask before exec.
    // SAFETY: sigset manipulation on local values.
    let (old, forwarded) = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        if !detach {
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH, libc::SIGCHLD] {
                libc::sigaddset(&mut set, s);
            }
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        (old, set)
    };
    let pid = create(g, o, old)?;
    if let Err(e) = start(g, &o.id) {
        let _ = delete(g, &o.id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = loop {
        let timeout = libc::timespec { tv_sec: 1, tv_nsec: 0 };
        // SAFETY: valid set and timeout.
        let sig = unsafe { libc::sigtimedwait(&forwarded, std::ptr::null_mut(), &timeout) };
        if sig > 0 && sig != libc::SIGCHLD {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(pid, sig) };
        }
        let mut status = 0;
        // SAFETY: waitpid on our child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break if libc::WIFSIGNALED(status) { 128 + libc::WTERMSIG(status) } else { libc::WEXITSTATUS(status) };
        }
    };
    delete(g, &o.id, true)?;
    Ok(code)
}

/// `ps`: every pid in the container's cgroup (json form), sorted.
pub fn pids(g: &Global, id: &str) -> Result<Vec<i32>> {
    let saved = Saved::load(&g.root, id)?;
    saved.cgroup.check_joined("ps")?;
    saved.cgroup.pids()
}

/// `ps` table form, as runc: the host's `ps ARGS` (default `-ef`), its
/// header and the lines whose PID column is one of `pids`.
pub fn ps_table(pids: &[i32], args: &[String]) -> Result<String> {
    let default = ["-ef".to_string()];
    let args = if args.is_empty() { &default[..] } else { args };
    let out = std::process::Command::new("ps").args(args).output().ctx(|| format!("run ps {}", args.join(" ")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return err(format!("ps {}: {}{}", args.join(" "), text.trim(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error(format!("ps {}: no PID column in its output", args.join(" "))))?;
    let mut s = format!("{header}\n");
    for line in lines {
        if line.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
            s.push_str(line);
            s.push('\n');
        }
    }
    Ok(s)
}

/// runc update's options: `--resources` (a file, or `-` for stdin) holds
/// LinuxResources JSON; without it the limit flags build one.
#[derive(Debug, Clone, Default)]
pub struct UpdateOpts {
    pub resources: Option<PathBuf>,
    /// (flag name, value) of the limit flags given.
    pub flags: Vec<(String, String)>,
}

/// Docker's units.RAMInBytes: `64m`, `1.5g`, `512k`, `100` (bytes), with an
/// optional `b`/`ib`, base 1024; `-1` for unlimited.
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let bad = || Error(format!("invalid size {s:?}"));
    let lower = s.trim().to_ascii_lowercase();
    let t = lower.strip_suffix('b').unwrap_or(&lower);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            (&t[..t.len() - 1], 1i64 << (10 * (1 + "kmgtp".find(c).unwrap_or(0) as u32)))
        }
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if v.is_nan() || v < 0.0 {
        return Err(bad());
    }
    Ok((v * mult as f64) as i64)
}

/// The resources `update` applies, from `--resources` or the flags.
pub fn update_resources(o: &UpdateOpts) -> Result<oci_spec::runtime::LinuxResources> {
    use serde_json::{json, Value};
    if let Some(p) = &o.resources {
        let text = if p.as_os_str() == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).ctx(|| "read resources from stdin")?;
            s
        } else {
            std::fs::read_to_string(p).ctx(|| format!("read resources {}", p.display()))?
        };
        return serde_json::from_str(&text).ctx(|| format!("parse resources {}", p.display()));
    }
    let mut r = json!({});
    for (flag, v) in &o.flags {
        let int = |v: &str| v.parse::<i64>().map_err(|_| Error(format!("--{flag} {v:?}: not a number")));
        let uint = |v: &str| v.parse::<u64>().map_err(|_| Error(format!("--{flag} {v:?}: not a number")));
        let (section, key, value): (&str, &str, Value) = match flag.as_str() {
            "memory" => ("memory", "limit", ram_in_bytes(v)?.into()),
            "memory-swap" => ("memory", "swap", ram_in_bytes(v)?.into()),
            "memory-reservation" => ("memory", "reservation", ram_in_bytes(v)?.into()),
            "cpu-quota" => ("cpu", "quota", int(v)?.into()),
            "cpu-period" => ("cpu", "period", uint(v)?.into()),
            "cpu-share" | "cpu-shares" => ("cpu", "shares", uint(v)?.into()),
            "cpu-rt-period" => ("cpu", "realtimePeriod", uint(v)?.into()),
            "cpu-rt-runtime" => ("cpu", "realtimeRuntime", int(v)?.into()),
            "cpuset-cpus" => ("cpu", "cpus", v.as_str().into()),
            "cpuset-mems" => ("cpu", "mems", v.as_str().into()),
            "pids-limit" => ("pids", "limit", int(v)?.into()),
            "blkio-weight" => ("blockIO", "weight", uint(v)?.into()),
            "kernel-memory" | "kernel-memory-tcp" => continue, // obsolete, as in runc
            other => return err(format!("update: unknown flag --{other}")),
        };
        r[section][key] = value;
    }
    // "unlimited memory" needs unlimited swap too (runc's fix-up).
    if r["memory"]["limit"] == -1 && r["memory"]["swap"].is_null() {
        r["memory"]["swap"] = (-1).into();
    }
    serde_json::from_str(&r.to_string()).ctx(|| "resources from the update flags")
}

/// `update`: new limits for a created, running or paused container.
pub fn update(g: &Global, id: &str, o: &UpdateOpts) -> Result<()> {
    let saved = Saved::load(&g.root, id)?;
    if saved.status(&g.root) == Status::Stopped {
        return err(format!("cannot update container {id}: it is not running"));
    }
    let r = update_resources(o)?;
    saved.cgroup.check_joined("update")?;
    saved.cgroup.update(&r)
}

/// Go's time.ParseDuration for what `--interval` takes: `5s`, `1m30s`, `250ms`, `1.5s`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error(format!("invalid duration {s:?}"));
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += v * unit;
        rest = &rest[u..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// The container's OOM kill count (memory.oom_control / memory.events).
fn oom_kills(c: &Cgroup) -> u64 {
    let v1 = c.hierarchies.iter().find(|h| h.name.split(',').any(|n| n == "memory"));
    let file = match v1 {
        Some(h) => h.dir.join("memory.oom_control"),
        None => match c.hierarchies.iter().find(|h| h.name == crate::cgroups::UNIFIED) {
            Some(h) => h.dir.join("memory.events"),
            None => return 0,
        },
    };
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// `events [--stats] [--interval D] ID`: one stats event, or a stream of
/// stats events every `interval` (and `oom` events, checked as often)
/// until the container stops. Each event is a JSON line on stdout.
pub fn events(g: &Global, id: &str, once: bool, interval: Duration) -> Result<()> {
    use std::io::Write;
    let saved = Saved::load(&g.root, id)?;
    let event = |typ: &str, data: Option<serde_json::Value>| {
        let mut e = serde_json::json!({"type": typ, "id": id});
        if let Some(d) = data {
            e["data"] = d;
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{e}").and_then(|()| out.flush())
    };
    if saved.status(&g.root) == Status::Stopped {
        return err(format!("container {id} is not running"));
    }
    if once {
        let s = saved.cgroup.stats()?;
        return event("stats", Some(s.runc_json())).ctx(|| "write to stdout");
    }
    if interval.is_zero() {
        return err("--interval must be more than 0");
    }
    let mut ooms = oom_kills(&saved.cgroup);
    loop {
        let next = Instant::now() + interval;
        while Instant::now() < next {
            if !state::alive(saved.pid, saved.pid_start) {
                return Ok(());
            }
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(100)));
        }
        let now = oom_kills(&saved.cgroup);
        if now > ooms {
            ooms = now;
            event("oom", None).ctx(|| "write to stdout")?;
        }
        match saved.cgroup.stats() {
            Ok(s) => event("stats", Some(s.runc_json())).ctx(|| "write to stdout")?,
            Err(e) if !state::alive(saved.pid, saved.pid_start) => {
                let _ = e;
                return Ok(());
            }
            Err(e) => crate::logging::error(&e.0),
        }
    }
}

#[cfg(test)]
mod update_tests {
    use super::*;

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(ram_in_bytes("512KiB").unwrap(), 512 << 10);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("-1").unwrap(), -1);
        assert!(ram_in_bytes("lots").is_err() && ram_in_bytes("-5m").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5").is_err() && parse_duration("5x").is_err() && parse_duration("").is_err());
    }

    #[test]
    fn flags_become_resources() {
        let flags = [("memory", "32m"), ("cpu-share", "512"), ("cpuset-cpus", "0"), ("pids-limit", "9"), ("blkio-weight", "300")];
        let o = UpdateOpts { resources: None, flags: flags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
        let r = update_resources(&o).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(32 << 20));
        assert_eq!(r.memory().as_ref().unwrap().swap(), None);
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
        assert_eq!(r.cpu().as_ref().unwrap().cpus().as_deref(), Some("0"));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 9);
        assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
        let o = UpdateOpts { resources: None, flags: vec![("memory".into(), "-1".into())] };
        assert_eq!(update_resources(&o).unwrap().memory().as_ref().unwrap().swap(), Some(-1));
        let o = UpdateOpts { resources: None, flags: vec![("cpu-quota".into(), "x".into())] };
        assert!(update_resources(&o).unwrap_err().0.contains("--cpu-quota"));
    }
}
