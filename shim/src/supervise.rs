//! The supervisor: creates and starts the container through the runtime,
//! then runs one poll(2) loop that copies its output into the log and to
//! attached clients, feeds its stdin, answers the control socket, reaps
//! it (and anything else reparented to the shim), records its exit, and
//! applies the restart policy until nothing is left to supervise.

use crate::console::{self, ConsoleSocket};
use crate::control::{self, Conn, Mode};
use crate::event::{self, Signals};
use crate::log::{JsonLog, Lines, Stream};
use crate::options::Options;
use crate::protocol::{self, Exit, Reply, Request, State, Status};
use crate::restart::Backoff;
use crate::runtime::{CreateIo, Runtime};
use crate::{clock, proxy, record, stats};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long output may keep flowing after the container's init exited
/// (other processes holding its stdio) before the exit is recorded anyway.
const DRAIN: Duration = Duration::from_secs(2);
/// How long pending replies get when the shim is about to exit.
const FINAL_FLUSH: Duration = Duration::from_secs(2);
/// How long connected clients may still send requests once the shim is done.
const LINGER: Duration = Duration::from_millis(100);
/// Delay before a proxy that died is started again.
const PROXY_RETRY: Duration = Duration::from_secs(1);
/// Stdin queued from clients beyond this pauses reading from them.
const STDIN_QUEUE: usize = 256 * 1024;
/// Size of the shim's own event log before it is rotated to `.1`.
const EVENTS_MAX: u64 = 1 << 20;
const EVENTS_FILE: &str = "shim.log";
const CONTAINER_PID_FILE: &str = "init.pid";
const RUNTIME_LOG: &str = "runtime.log";
const CONSOLE_SOCKET: &str = "console.sock";

/// The container's stdio as the shim holds it.
#[derive(Default)]
struct Io {
    /// stdout pipe, or the pty master.
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    /// stdin pipe (pipes mode with --stdin).
    stdin: Option<OwnedFd>,
    /// The pty master for stdin and resize (tty mode).
    pty: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    close_stdin: bool,
    lines: [Lines; 2],
}

impl Io {
    fn stdin_fd(&self) -> Option<RawFd> {
        self.pty.as_ref().or(self.stdin.as_ref()).map(AsRawFd::as_raw_fd)
    }
}

pub struct Supervisor {
    o: Options,
    rt: Runtime,
    sigs: Signals,
    listener: Option<UnixListener>,
    conns: Vec<Conn>,
    log: Option<JsonLog>,
    log_created: bool,
    events: Option<File>,
    io: Io,
    status: Status,
    pid: i32,
    exit: Option<Exit>,
    restarts: u32,
    started: Option<String>,
    run_since: Instant,
    stopping: bool,
    proxy_pid: Option<libc::pid_t>,
    proxy_retry_at: Option<Instant>,
    backoff: Backoff,
    restart_at: Option<Instant>,
    kill_at: Option<Instant>,
    health: Option<crate::health::Health>,
    /// Reaped, waiting for its output to drain until the instant.
    reaped: Option<(Exit, Instant)>,
    /// Finished: (linger until, exit at the latest).
    done_at: Option<(Instant, Instant)>,
}

fn nonblocking(fd: &OwnedFd) {
    let _ = event::set_nonblocking(fd.as_raw_fd(), true);
}

impl Supervisor {
    /// Takes the state dir: blocks the signals, binds `shim.sock`, writes
    /// `shim.pid`, forgets an old `exit`, opens the log.
    pub fn new(o: Options) -> Result<Supervisor, String> {
        let sigs = Signals::new().map_err(|e| format!("signalfd: {e}"))?;
        std::fs::create_dir_all(&o.state_dir)
            .map_err(|e| format!("create state dir {}: {e}", o.state_dir.display()))?;
        let listener = control::listen(&o.socket()).map_err(|e| e.to_string())?;
        let undo = |e: String| {
            let _ = std::fs::remove_file(o.socket());
            let _ = std::fs::remove_file(o.state_dir.join(protocol::PID_FILE));
            e
        };
        let _ = std::fs::remove_file(o.state_dir.join(protocol::EXIT_FILE));
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        record::write_pid(&o.state_dir, me).map_err(|e| undo(e.to_string()))?;
        let (log, log_created) = match &o.log {
            Some(p) => {
                let existed = p.exists();
                let log = JsonLog::open(p, o.log_max_size, o.log_max_file).map_err(|e| undo(e.to_string()))?;
                (Some(log), !existed)
            }
            None => (None, false),
        };
        let rt = Runtime {
            path: o.runtime.clone(),
            root: o.runtime_root.clone(),
            id: o.id.clone(),
            bundle: o.bundle.clone(),
            log: o.state_dir.join(RUNTIME_LOG),
        };
        Ok(Supervisor {
            rt,
            sigs,
            listener: Some(listener),
            conns: Vec::new(),
            log,
            log_created,
            events: None,
            io: Io::default(),
            status: Status::Created,
            pid: 0,
            exit: None,
            restarts: 0,
            started: None,
            run_since: Instant::now(),
            stopping: false,
            proxy_pid: None,
            proxy_retry_at: None,
            backoff: Backoff::default(),
            restart_at: None,
            health: o.health.clone().map(|h| crate::health::Health::new(h, &o.state_dir)),
            kill_at: None,
            reaped: None,
            done_at: None,
            o,
        })
    }

    /// Appends a line to the shim's own event log (`shim.log`).
    fn event(&mut self, msg: &str) {
        let path = self.o.state_dir.join(EVENTS_FILE);
        if self.events.as_ref().and_then(|f| f.metadata().ok()).is_some_and(|m| m.len() > EVENTS_MAX) {
            let _ = std::fs::rename(&path, self.o.state_dir.join(format!("{EVENTS_FILE}.1")));
            self.events = None;
        }
        if self.events.is_none() {
            self.events =
                OpenOptions::new().create(true).append(true).mode(0o640).custom_flags(libc::O_CLOEXEC).open(&path).ok();
        }
        if let Some(f) = &mut self.events {
            let _ = writeln!(f, "{} {msg}", clock::now());
        }
    }

    /// First start: create (+ start unless `--no-start`); the container's
    /// pid, or the error for the ready line. On error nothing is left.
    pub fn start(&mut self) -> Result<i32, String> {
        match self.launch(!self.o.no_start) {
            Ok(pid) => Ok(pid),
            Err(e) => {
                self.cleanup_files();
                Err(e)
            }
        }
    }

    /// Removes what the shim put in the state dir (not `exit`).
    fn cleanup_files(&mut self) {
        let d = self.o.state_dir.clone();
        for f in [protocol::SOCKET, protocol::PID_FILE, CONTAINER_PID_FILE, CONSOLE_SOCKET] {
            let _ = std::fs::remove_file(d.join(f));
        }
        let rt_log = d.join(RUNTIME_LOG);
        if self.exit.is_none() || std::fs::metadata(&rt_log).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&rt_log);
        }
        if self.exit.is_none() {
            // A failed start: the error went to the ready line.
            self.events = None;
            let _ = std::fs::remove_file(d.join(EVENTS_FILE));
            if let (Some(log), true) = (&self.log, self.log_created) {
                if std::fs::metadata(log.path()).is_ok_and(|m| m.len() == 0) {
                    let _ = std::fs::remove_file(log.path());
                }
            }
        }
        self.listener = None;
    }

    /// `runtime create`, the proxy, then `runtime start` when `run`.
    fn launch(&mut self, run: bool) -> Result<i32, String> {
        let pid_file = self.o.state_dir.join(CONTAINER_PID_FILE);
        let (err_r, err_w) = event::pipe().map_err(|e| format!("pipe: {e}"))?;
        nonblocking(&err_r);
        let mut io = Io::default();
        let console = if self.o.tty {
            // The runtime gets this path: keep it within sun_path (a deep
            // state dir falls back to the temp dir).
            let mut path = self.o.state_dir.join(CONSOLE_SOCKET);
            if path.as_os_str().len() > 100 {
                // SAFETY: getpid has no preconditions.
                path = std::env::temp_dir().join(format!("skiff-shim-{}-console.sock", unsafe { libc::getpid() }));
            }
            let cs = ConsoleSocket::bind(&path).map_err(|e| e.to_string())?;
            let cio = CreateIo {
                stdin: Stdio::null(),
                stdout: Stdio::null(),
                stderr: Stdio::from(err_w),
                errors: err_r.as_raw_fd(),
            };
            self.rt.create(cio, Some(cs.path()), &pid_file).inspect_err(|_| {
                let _ = self.rt.delete(true);
            })?;
            Some(cs)
        } else {
            let (out_r, out_w) = event::pipe().map_err(|e| format!("pipe: {e}"))?;
            let stdin = if self.o.stdin {
                let (in_r, in_w) = event::pipe().map_err(|e| format!("pipe: {e}"))?;
                io.stdin = Some(in_w);
                Stdio::from(in_r)
            } else {
                Stdio::null()
            };
            let cio =
                CreateIo { stdin, stdout: Stdio::from(out_w), stderr: Stdio::from(err_w), errors: err_r.as_raw_fd() };
            self.rt.create(cio, None, &pid_file).inspect_err(|_| {
                let _ = self.rt.delete(true);
            })?;
            io.out = Some(out_r);
            io.err = Some(err_r);
            None
        };
        let undo = |s: &mut Supervisor, e: String| {
            let _ = s.rt.kill(libc::SIGKILL, false);
            let _ = s.rt.delete(true);
            let _ = std::fs::remove_file(&pid_file);
            Err(e)
        };
        let pid = match std::fs::read_to_string(&pid_file).map(|s| s.trim().parse::<i32>()) {
            Ok(Ok(p)) if p > 0 => p,
            _ => return undo(self, format!("the runtime wrote no container pid to {}", pid_file.display())),
        };
        if let Some(cs) = console {
            match cs.receive() {
                Ok(m) => {
                    nonblocking(&m);
                    io.out = m.try_clone().ok();
                    io.pty = Some(m);
                }
                Err(e) => return undo(self, format!("console socket: {e}")),
            }
        }
        if !self.o.proxy.is_empty() {
            let argv = proxy::argv(&self.o.proxy, pid);
            let out = self.proxy_output();
            match proxy::start(&argv, out.as_ref()) {
                Ok(p) => self.proxy_pid = Some(p),
                Err(e) => return undo(self, e),
            }
        }
        if run {
            if let Err(e) = self.rt.start() {
                self.stop_proxy();
                return undo(self, e);
            }
        }
        for fd in [&io.out, &io.err, &io.stdin].into_iter().flatten() {
            nonblocking(fd);
        }
        self.io = io;
        self.pid = pid;
        self.status = if run { Status::Running } else { Status::Created };
        if run {
            self.mark_started();
        }
        Ok(pid)
    }

    fn mark_started(&mut self) {
        crate::lifecycle::emit_container(&self.o.state_dir, "start", &[]);
        self.started = Some(clock::now());
        if let Some(h) = &mut self.health {
            h.started();
        }
        self.run_since = Instant::now();
    }

    fn proxy_output(&mut self) -> Option<File> {
        self.event("starting proxy");
        self.events.as_ref().and_then(|f| f.try_clone().ok())
    }

    fn stop_proxy(&mut self) {
        self.proxy_retry_at = None;
        if let Some(p) = self.proxy_pid.take() {
            proxy::stop(p);
        }
    }

    fn state(&self) -> State {
        State {
            id: self.o.id.clone(),
            status: self.status,
            pid: if matches!(self.status, Status::Running | Status::Created) { self.pid } else { 0 },
            // SAFETY: getpid has no preconditions.
            shim_pid: unsafe { libc::getpid() },
            exit: self.exit.clone(),
            restarts: self.restarts,
            started: self.started.clone(),
            stopping: self.stopping,
            log_dropped: self.log.as_ref().map_or(0, JsonLog::dropped),
        }
    }

    fn alive(&self) -> bool {
        matches!(self.status, Status::Running | Status::Created) && self.reaped.is_none()
    }

    /// The loop; returns the shim's exit status once nothing is left.
    pub fn run(mut self) -> i32 {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let now = Instant::now();
            if let Some((linger, hard)) = self.done_at {
                // Requests already on their way (a `wait` right after a
                // stop) still get answers; idle clients are let go.
                let busy = self.conns.iter().any(|c| !c.outbuf.is_empty() || !c.inbuf.is_empty());
                if self.conns.is_empty() || (now >= linger && !busy) || now >= hard {
                    break;
                }
            }
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(8 + self.conns.len());
            fds.push(event::pollfd(self.sigs.fd(), libc::POLLIN));
            let lfd = self.listener.as_ref().map_or(-1, AsRawFd::as_raw_fd);
            fds.push(event::pollfd(lfd, libc::POLLIN));
            let ofd = self.io.out.as_ref().map_or(-1, AsRawFd::as_raw_fd);
            fds.push(event::pollfd(ofd, libc::POLLIN));
            let efd = self.io.err.as_ref().map_or(-1, AsRawFd::as_raw_fd);
            fds.push(event::pollfd(efd, libc::POLLIN));
            let ifd = match self.io.stdin_fd() {
                Some(fd) if !self.io.stdin_buf.is_empty() => fd,
                _ => -1,
            };
            fds.push(event::pollfd(ifd, libc::POLLOUT));
            let stdin_full = self.io.stdin_buf.len() >= STDIN_QUEUE;
            for c in &self.conns {
                let mut ev = 0;
                let paused = stdin_full && matches!(c.mode, Mode::Attached { stdin: true });
                if !c.input_closed && !paused {
                    ev |= libc::POLLIN;
                }
                if !c.outbuf.is_empty() {
                    ev |= libc::POLLOUT;
                }
                fds.push(event::pollfd(c.stream.as_raw_fd(), ev));
            }
            let deadline = [
                self.restart_at,
                self.kill_at,
                self.reaped.as_ref().map(|r| r.1),
                self.proxy_retry_at,
                self.health.as_ref().and_then(|h| h.deadline()),
                self.done_at.map(|(l, h)| if now < l { l } else { h }),
            ]
            .into_iter()
            .flatten()
            .min();
            let timeout = deadline.map(|d| d.saturating_duration_since(now));
            if let Err(e) = event::poll(&mut fds, timeout) {
                self.event(&format!("poll: {e}"));
                return 1;
            }
            let rev = |i: usize| fds[i].revents;
            if rev(0) != 0 {
                self.on_signals();
            }
            if rev(2) != 0 {
                self.read_output(Stream::Stdout, &mut buf);
            }
            if rev(3) != 0 {
                self.read_output(Stream::Stderr, &mut buf);
            }
            if rev(4) != 0 {
                self.write_stdin();
            }
            for (i, f) in fds[5..].iter().enumerate() {
                if f.revents != 0 && i < self.conns.len() {
                    self.on_conn(i, f.revents);
                }
            }
            if rev(1) != 0 {
                self.accept();
            }
            self.timers();
            self.tidy_conns();
        }
        self.event("exiting");
        0
    }

    fn on_signals(&mut self) {
        for s in self.sigs.pending() {
            match s {
                libc::SIGCHLD => self.reap(),
                libc::SIGTERM | libc::SIGINT => {
                    self.event(&format!("signal {s}: stopping the container"));
                    self.begin_stop(self.o.stop_timeout);
                }
                _ => {}
            }
        }
        // SIGCHLD can coalesce: reap whatever is there anyway.
        self.reap();
    }

    fn reap(&mut self) {
        while let Some((pid, status)) = event::reap_any() {
            if self.health.as_mut().is_some_and(|h| h.reaped(pid, event::exit_code(status).0)) {
                continue;
            }
            if pid == self.pid && self.reaped.is_none() && matches!(self.status, Status::Running | Status::Created) {
                let (code, signal) = event::exit_code(status);
                let exit = Exit { code, time: clock::now(), signal };
                let until = if self.io.out.is_none() && self.io.err.is_none() {
                    Instant::now()
                } else {
                    Instant::now() + DRAIN
                };
                self.reaped = Some((exit, until));
            } else if Some(pid) == self.proxy_pid {
                self.proxy_pid = None;
                let (code, _) = event::exit_code(status);
                self.event(&format!("proxy exited with status {code}"));
                if self.alive() && !self.stopping {
                    self.proxy_retry_at = Some(Instant::now() + PROXY_RETRY);
                }
            }
        }
    }

    fn read_output(&mut self, stream: Stream, buf: &mut [u8]) {
        let slot = match stream {
            Stream::Stdout => &self.io.out,
            Stream::Stderr => &self.io.err,
        };
        let Some(fd) = slot.as_ref().map(AsRawFd::as_raw_fd) else { return };
        match event::read(fd, buf) {
            Ok(0) => self.close_output(stream),
            Ok(n) => {
                let data = &buf[..n];
                let idx = stream as usize;
                if let Some(log) = &mut self.log {
                    self.io.lines[idx].push(data, &mut |line, complete, time| log.write(stream, line, complete, time));
                }
                let kind = match stream {
                    Stream::Stdout => protocol::FRAME_STDOUT,
                    Stream::Stderr => protocol::FRAME_STDERR,
                };
                let mut frame = Vec::with_capacity(n + protocol::FRAME_HEADER);
                protocol::frame(kind, data, &mut frame);
                for c in self.conns.iter_mut().filter(|c| matches!(c.mode, Mode::Attached { .. }) && !c.dead) {
                    c.queue(&frame);
                    c.flush();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
            // EIO: the pty's last slave is closed.
            Err(_) => self.close_output(stream),
        }
    }

    fn close_output(&mut self, stream: Stream) {
        match stream {
            Stream::Stdout => self.io.out = None,
            Stream::Stderr => self.io.err = None,
        }
        if let Some(log) = &mut self.log {
            self.io.lines[stream as usize].flush(&mut |line, complete, time| log.write(stream, line, complete, time));
        }
    }

    fn write_stdin(&mut self) {
        let Some(fd) = self.io.stdin_fd() else {
            self.io.stdin_buf.clear();
            return;
        };
        while !self.io.stdin_buf.is_empty() {
            match event::write(fd, &self.io.stdin_buf) {
                Ok(n) => {
                    self.io.stdin_buf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    // The container closed its stdin (EPIPE): drop the rest.
                    self.io.stdin_buf.clear();
                    self.io.stdin = None;
                    return;
                }
            }
        }
        if self.io.close_stdin {
            self.io.stdin = None;
            self.io.close_stdin = false;
        }
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        while let Ok((s, _)) = l.accept() {
            if let Ok(c) = Conn::new(s) {
                self.conns.push(c);
            }
        }
    }

    fn on_conn(&mut self, i: usize, revents: libc::c_short) {
        let mode = self.conns[i].mode;
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && !self.conns[i].input_closed {
            let limit =
                if matches!(mode, Mode::Attached { stdin: true }) { STDIN_QUEUE } else { control::MAX_LINE + 2 };
            self.conns[i].fill(limit);
        }
        match self.conns[i].mode {
            Mode::Attached { stdin } => {
                let data = std::mem::take(&mut self.conns[i].inbuf);
                if stdin && self.io.stdin_fd().is_some() {
                    self.io.stdin_buf.extend_from_slice(&data);
                    self.write_stdin();
                }
                if stdin && self.conns[i].input_closed && !self.o.tty && self.io.stdin.is_some() {
                    self.io.close_stdin = true;
                    self.write_stdin();
                }
            }
            Mode::Requests => self.handle_lines(i),
            Mode::Waiting => {}
        }
        let c = &mut self.conns[i];
        if revents & (libc::POLLHUP | libc::POLLERR) != 0 && revents & libc::POLLIN == 0 {
            c.dead = true;
        }
    }

    /// Answers request lines queued behind a `wait` that was answered,
    /// closes finished connections, writes what is pending.
    fn tidy_conns(&mut self) {
        for i in 0..self.conns.len() {
            if self.conns[i].mode == Mode::Requests && !self.conns[i].inbuf.is_empty() {
                self.handle_lines(i);
            }
            let c = &mut self.conns[i];
            if c.input_closed && c.mode == Mode::Requests && c.inbuf.is_empty() {
                c.closing = true;
            }
            c.flush();
        }
        self.conns.retain(|c| !c.dead);
    }

    fn handle_lines(&mut self, i: usize) {
        while self.conns[i].mode == Mode::Requests && !self.conns[i].dead && !self.conns[i].closing {
            let line = match self.conns[i].next_line() {
                None => return,
                Some(Err(e)) => {
                    self.conns[i].reply(&Reply::error(e));
                    self.conns[i].closing = true;
                    return;
                }
                Some(Ok(l)) => l,
            };
            let reply = match control::decode(&line, self.conns[i].hello) {
                Err(e) => Some(Reply::error(e)),
                Ok(req) => self.request(i, req),
            };
            if let Some(r) = reply {
                self.conns[i].reply(&r);
            }
        }
    }

    /// Handles one request; None when the reply comes later (`wait`).
    fn request(&mut self, i: usize, req: Request) -> Option<Reply> {
        let not_running = |s: &Supervisor| Reply::error(format!("container {} is not running", s.o.id));
        Some(match req {
            Request::Hello { version } => {
                self.conns[i].hello = true;
                Reply { version: Some(version.min(protocol::VERSION)), ..Reply::ok() }
            }
            Request::State => Reply { state: Some(self.state()), ..Reply::ok() },
            Request::Wait => {
                if self.status == Status::Stopped {
                    Reply { exit: self.exit.clone(), ..Reply::ok() }
                } else {
                    self.conns[i].mode = Mode::Waiting;
                    return None;
                }
            }
            Request::Kill { signal, all, stop } => {
                if !(1..=64).contains(&signal) {
                    return Some(Reply::error(format!("invalid signal {signal}")));
                }
                if stop {
                    self.stopping = true;
                }
                if self.status == Status::Restarting && stop {
                    self.event("stop requested while waiting to restart: not restarting");
                    self.finish();
                    Reply::ok()
                } else if !self.alive() {
                    not_running(self)
                } else {
                    match self.rt.kill(signal, all) {
                        Ok(()) => Reply::ok(),
                        Err(e) => Reply::error(e),
                    }
                }
            }
            Request::Attach { stdin } => {
                if self.status == Status::Stopped {
                    not_running(self)
                } else if stdin && !self.o.stdin {
                    Reply::error("stdin is not open: the shim was started without --stdin")
                } else {
                    self.conns[i].mode = Mode::Attached { stdin };
                    Reply::ok()
                }
            }
            Request::Update { restart } => match restart.map(|r| r.parse::<crate::restart::Policy>()).transpose() {
                Ok(Some(p)) => {
                    self.event(&format!("restart policy now {p}"));
                    self.o.restart = p;
                    Reply::ok()
                }
                Ok(None) => Reply::ok(),
                Err(e) => Reply::error(e),
            },
            Request::Resize { rows, cols } => match &self.io.pty {
                None => Reply::error(format!("container {} has no tty", self.o.id)),
                Some(m) => match console::resize(m.as_raw_fd(), rows, cols) {
                    Ok(()) => Reply::ok(),
                    Err(e) => Reply::error(format!("resize the pty: {e}")),
                },
            },
            Request::Stats => {
                if !self.alive() {
                    not_running(self)
                } else {
                    Reply { stats: Some(stats::Cgroups::of(self.pid).stats(self.pid)), ..Reply::ok() }
                }
            }
            Request::Start => {
                if self.status != Status::Created || self.reaped.is_some() {
                    Reply::error(format!("container {} is not in created state", self.o.id))
                } else {
                    match self.rt.start() {
                        Ok(()) => {
                            self.status = Status::Running;
                            self.mark_started();
                            Reply { pid: Some(self.pid), ..Reply::ok() }
                        }
                        Err(e) => Reply::error(e),
                    }
                }
            }
            Request::Shutdown { timeout } => {
                self.begin_stop(timeout.unwrap_or(self.o.stop_timeout));
                Reply::ok()
            }
        })
    }

    /// Stop for good: SIGTERM now, SIGKILL after `grace` seconds.
    fn begin_stop(&mut self, grace: u32) {
        self.stopping = true;
        if self.status == Status::Restarting {
            self.finish();
        } else if self.alive() {
            if let Err(e) = self.rt.kill(libc::SIGTERM, false) {
                self.event(&format!("kill SIGTERM: {e}"));
            }
            let at = Instant::now() + Duration::from_secs(u64::from(grace));
            self.kill_at = Some(self.kill_at.map_or(at, |k| k.min(at)));
        }
    }

    fn timers(&mut self) {
        let now = Instant::now();
        if self.kill_at.is_some_and(|t| now >= t) {
            self.kill_at = None;
            if self.alive() {
                self.event("grace period over: SIGKILL");
                if let Err(e) = self.rt.kill(libc::SIGKILL, true) {
                    self.event(&format!("kill SIGKILL: {e}"));
                }
            }
        }
        if let Some((_, until)) = &self.reaped {
            if now >= *until || (self.io.out.is_none() && self.io.err.is_none()) {
                self.exited();
            }
        }
        if self.restart_at.is_some_and(|t| now >= t) {
            self.restart_at = None;
            self.restart();
        }
        if self.status == Status::Running && self.reaped.is_none() && !self.stopping {
            if let Some(msg) = self.health.as_mut().and_then(|h| h.tick(&self.rt)) {
                self.event(&msg);
            }
        }
        if self.proxy_retry_at.is_some_and(|t| now >= t) {
            self.proxy_retry_at = None;
            if self.status == Status::Running && !self.stopping && self.reaped.is_none() {
                let argv = proxy::argv(&self.o.proxy, self.pid);
                let out = self.proxy_output();
                match proxy::start(&argv, out.as_ref()) {
                    Ok(p) => self.proxy_pid = Some(p),
                    Err(e) => {
                        self.event(&format!("restart proxy: {e}"));
                        self.proxy_retry_at = Some(Instant::now() + PROXY_RETRY * 5);
                    }
                }
            }
        }
    }

    /// The container's exit, once its output is drained: record it, tell
    /// waiters and attached clients, stop the proxy, delete the container,
    /// then restart it or finish.
    fn exited(&mut self) {
        let Some((exit, _)) = self.reaped.take() else { return };
        self.close_output(Stream::Stdout);
        self.close_output(Stream::Stderr);
        self.io = Io::default();
        self.event(&format!("container exited with code {}", exit.code));
        crate::lifecycle::emit_container(&self.o.state_dir, "die", &[("exitCode", &exit.code.to_string())]);
        if let Err(e) = record::write_exit(&self.o.state_dir, &exit) {
            self.event(&format!("record exit: {e}"));
        }
        self.exit = Some(exit.clone());
        if let Some(h) = &mut self.health {
            h.stopped();
        }
        self.stop_proxy();
        if let Err(e) = self.rt.delete(false) {
            if let Err(e2) = self.rt.delete(true) {
                self.event(&format!("runtime delete: {e}; delete --force: {e2}"));
            }
        }
        let _ = std::fs::remove_file(self.o.state_dir.join(CONTAINER_PID_FILE));
        self.kill_at = None;
        let restart = self.o.restart.should_restart(exit.code, self.restarts, self.stopping);
        self.status = if restart { Status::Restarting } else { Status::Stopped };
        let payload = serde_json::to_vec(&exit).unwrap_or_default();
        let mut frame = Vec::new();
        protocol::frame(protocol::FRAME_EXIT, &payload, &mut frame);
        for c in &mut self.conns {
            match c.mode {
                Mode::Waiting => {
                    c.reply(&Reply { exit: Some(exit.clone()), ..Reply::ok() });
                    c.mode = Mode::Requests;
                }
                Mode::Attached { .. } => {
                    c.queue(&frame);
                    c.closing = true;
                }
                Mode::Requests => {}
            }
            c.flush();
        }
        if restart {
            let delay = self.backoff.delay(self.run_since.elapsed());
            self.event(&format!(
                "restart policy {}: restart {} in {} ms",
                self.o.restart,
                self.restarts + 1,
                delay.as_millis()
            ));
            self.restart_at = Some(Instant::now() + delay);
        } else {
            self.finish();
        }
    }

    fn restart(&mut self) {
        if self.stopping {
            self.finish();
            return;
        }
        self.restarts += 1;
        match self.launch(true) {
            Ok(pid) => {
                self.event(&format!("restarted (restart {}), pid {pid}", self.restarts));
                // A wait that was answered with the last exit sees this run as new.
            }
            Err(e) => {
                self.event(&format!("restart {} failed: {e}", self.restarts));
                self.status = Status::Running;
                self.reaped = Some((Exit { code: 125, time: clock::now(), signal: None }, Instant::now()));
            }
        }
    }

    /// Nothing left to supervise: answer whoever waits, stop listening,
    /// and let the loop flush replies and end.
    fn finish(&mut self) {
        self.status = Status::Stopped;
        self.restart_at = None;
        self.stop_proxy();
        let exit = self.exit.clone();
        let mut frame = Vec::new();
        protocol::frame(protocol::FRAME_EXIT, &serde_json::to_vec(&exit).unwrap_or_default(), &mut frame);
        for c in &mut self.conns {
            match c.mode {
                Mode::Waiting => {
                    c.reply(&Reply { exit: exit.clone(), ..Reply::ok() });
                    c.mode = Mode::Requests;
                }
                Mode::Attached { .. } if !c.closing => {
                    c.queue(&frame);
                    c.closing = true;
                }
                _ => {}
            }
        }
        self.cleanup_files();
        let now = Instant::now();
        self.done_at = Some((now + LINGER, now + FINAL_FLUSH));
    }
}
