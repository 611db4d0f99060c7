//! `shim` (issue 6) through the dist binary, with runc and with our runtime:
//! the start report, exit records, the json-file log, the control socket,
//! attach, restart policies, tty, proxy supervision, and resilience to the
//! engine (or the shim) being killed. Each test owns its bundle, state dir,
//! container id and cgroup path, and checks that nothing is left behind.

use serde_json::{json, Value};
use skiff_tests::bundle::{cgroup_dirs, Bundle};
use skiff_tests::{bin, require, text, wait_child, wait_until};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn runc() -> PathBuf {
    require("/usr/sbin/runc", "runc")
}

fn ours() -> PathBuf {
    bin("runtime")
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: just opened, ours.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// True while `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Pids of live processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == me {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(needle) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Reads from `r` to EOF in a thread; the bytes, or a failure after `T`.
fn read_all_bounded(r: impl Read + Send + 'static) -> Vec<u8> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = r;
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    rx.recv_timeout(T).expect("no EOF on the ready pipe in time")
}

/// One container under a shim.
struct Ctr {
    b: Bundle,
    rt: PathBuf,
    state: PathBuf,
    shared: Option<PathBuf>,
    shim_pid: Option<i32>,
}

impl Ctr {
    fn new(tag: &str, rt: PathBuf) -> Ctr {
        let b = Bundle::with_runtime(tag, rt.clone());
        let state = b.path().join("ctr");
        std::fs::create_dir_all(&state).unwrap();
        Ctr { b, rt, state, shared: None, shim_pid: None }
    }

    fn sh(&mut self, script: &str) -> &mut Self {
        self.b.sh(script);
        self
    }

    /// A host dir bind-mounted read-write on the container's /tmp.
    fn shared(&mut self) -> PathBuf {
        let dir = self.b.path().join("shared");
        std::fs::create_dir_all(&dir).unwrap();
        let mounts = self.b.config["mounts"].as_array_mut().expect("mounts");
        mounts.push(json!({"destination": "/tmp", "type": "bind", "source": dir, "options": ["rbind", "rw"]}));
        self.shared = Some(dir.clone());
        dir
    }

    /// The container shares the host's pid namespace (so its process is not
    /// a pid-namespace init, which ignores SIGTERM without a handler).
    fn host_pid_ns(&mut self) -> &mut Self {
        let ns = self.b.config["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "pid");
        self
    }

    fn args(&self, extra: &[&str]) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "--id".into(),
            self.b.id.clone().into(),
            "--bundle".into(),
            self.b.path().into(),
            "--state-dir".into(),
            self.state.clone().into(),
            "--runtime".into(),
            self.rt.clone().into(),
            "--runtime-root".into(),
            self.b.state_root().into(),
        ];
        a.extend(extra.iter().map(OsString::from));
        a
    }

    /// Runs `shim ARGS` with a pipe on fd 3: the ready JSON and the
    /// launcher's exit status.
    fn start(&mut self, extra: &[&str]) -> (Value, ExitStatus) {
        self.b.write();
        let (r, w) = pipe();
        let wfd = w.as_raw_fd();
        let mut c = Command::new(bin("shim"));
        c.args(self.args(extra)).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: dup2 only, between fork and exec.
        unsafe {
            c.pre_exec(move || {
                if libc::dup2(wfd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = c.spawn().expect("spawn shim");
        drop(c);
        drop(w);
        let out = read_all_bounded(std::fs::File::from(r));
        let status = wait_child(&mut child, T);
        let line = text(&out);
        let ready: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
        assert!(line.ends_with('\n') && line.trim().lines().count() == 1, "one ready line: {line:?}");
        if ready["ok"] == json!(true) {
            let pid = ready["shim_pid"].as_i64().unwrap_or_else(|| panic!("shim_pid in {ready}"));
            self.shim_pid = Some(pid as i32);
        }
        (ready, status)
    }

    /// Starts and expects success: the container's pid.
    fn run(&mut self, extra: &[&str]) -> i64 {
        let (ready, status) = self.start(extra);
        assert_eq!(ready["ok"], json!(true), "ready: {ready}");
        assert!(status.success(), "launcher status {status:?}");
        let pid = ready["pid"].as_i64().expect("pid in ready");
        assert!(pid > 0);
        pid
    }

    fn shim_pid_file(&self) -> Option<i32> {
        std::fs::read_to_string(self.state.join("shim.pid")).ok()?.trim().parse().ok()
    }

    fn sock(&self) -> PathBuf {
        self.state.join("shim.sock")
    }

    fn ctl(&self) -> Ctl {
        let mut c = Ctl::connect(&self.sock());
        let r = c.call(json!({"type": "hello", "version": 1}));
        assert_eq!(r, json!({"ok": true, "version": 1}));
        c
    }

    fn exit_record(&self) -> Value {
        let p = self.state.join("exit");
        assert!(wait_until(T, || p.exists()), "no exit record at {}", p.display());
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).expect("exit is JSON")
    }

    /// Waits for the shim to exit and checks it cleaned up after itself and
    /// the container.
    fn assert_gone(&self) {
        let pid = self.shim_pid.expect("shim was started");
        assert!(wait_until(T, || !alive(pid)), "shim {pid} still running");
        assert!(!self.sock().exists(), "shim.sock left behind");
        assert!(!self.state.join("shim.pid").exists(), "shim.pid left behind");
        self.assert_container_gone();
    }

    fn assert_container_gone(&self) {
        assert_eq!(self.b.status(), "absent", "the runtime still knows the container");
        let cg = format!("/skiff-test/{}", self.b.id);
        assert!(wait_until(T, || cgroup_dirs(&cg).is_empty()), "cgroup left: {:?}", cgroup_dirs(&cg));
        assert!(processes_with(&self.b.id).is_empty(), "processes left: {:?}", processes_with(&self.b.id));
    }

    /// The log's lines: (raw bytes, parsed).
    fn log(&self, name: &str) -> Vec<(String, Value)> {
        let text = std::fs::read_to_string(self.state.join(name)).unwrap_or_default();
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| (l.to_string(), serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}"))))
            .collect()
    }

    /// Concatenated `log` fields of one stream.
    fn stream(&self, stream: &str) -> String {
        self.log("ctr.log")
            .iter()
            .filter(|(_, v)| v["stream"] == stream)
            .map(|(_, v)| v["log"].as_str().unwrap().to_string())
            .collect()
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        if let Some(pid) = self.shim_pid {
            if alive(pid) {
                // SAFETY: killing the shim this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// A raw control-socket connection speaking JSON lines.
struct Ctl {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Ctl {
    fn connect(path: &Path) -> Ctl {
        // Past sun_path (108 bytes): through an O_PATH fd of the dir.
        let dir = std::fs::File::open(path.parent().unwrap()).unwrap();
        let short = if path.as_os_str().len() > 107 {
            PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(path.file_name().unwrap())
        } else {
            path.to_path_buf()
        };
        let s = UnixStream::connect(&short).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        s.set_read_timeout(Some(T)).unwrap();
        Ctl { r: BufReader::new(s.try_clone().unwrap()), w: s }
    }

    fn send_raw(&mut self, line: &[u8]) {
        self.w.write_all(line).unwrap();
    }

    fn send(&mut self, v: Value) {
        self.send_raw(format!("{v}\n").as_bytes());
    }

    fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.r.read_line(&mut line).expect("read reply");
        assert!(!line.is_empty(), "shim closed the connection");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply {line:?}: {e}"))
    }

    fn call(&mut self, v: Value) -> Value {
        self.send(v);
        self.recv()
    }

    /// The next attach frame: (kind, payload); None at EOF.
    fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut h = [0u8; 8];
        if self.r.read_exact(&mut h).is_err() {
            return None;
        }
        let n = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let mut data = vec![0; n];
        // A dropped client's stream may end inside a frame.
        self.r.read_exact(&mut data).ok()?;
        Some((h[0], data))
    }

    /// Reads frames until the exit frame: (stdout, stderr, exit).
    fn drain(&mut self) -> (String, String, Value) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            match self.frame() {
                Some((1, d)) => out.extend(d),
                Some((2, d)) => err.extend(d),
                Some((3, d)) => {
                    let exit: Value = serde_json::from_slice(&d).unwrap();
                    assert!(self.frame().is_none(), "the stream ends after the exit frame");
                    return (text(&out), text(&err), exit);
                }
                Some((k, _)) => panic!("unknown frame kind {k}"),
                None => panic!("attach stream ended without an exit frame; got {:?} / {:?}", text(&out), text(&err)),
            }
        }
    }
}

/// RFC3339Nano in UTC as Go prints it (fraction without trailing zeros).
fn is_rfc3339nano(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let head = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let tail = &t[19.min(t.len())..];
    let frac_ok = match tail.strip_prefix('.') {
        None => tail == "Z",
        Some(f) => {
            let f = f.strip_suffix('Z').unwrap_or("x");
            (1..=9).contains(&f.len()) && f.bytes().all(|c| c.is_ascii_digit()) && !f.ends_with('0')
        }
    };
    head && frac_ok
}

// ---- scenarios, each run with runc and with our runtime ----

fn ready_pid_and_exit_code_recorded(rt: PathBuf) {
    let mut c = Ctr::new("exit", rt);
    c.sh("exit 7");
    c.run(&[]);
    let e = c.exit_record();
    assert_eq!(e["code"], 7, "{e}");
    assert_eq!(e["signal"], Value::Null, "{e}");
    assert!(is_rfc3339nano(e["time"].as_str().unwrap()), "{e}");
    c.assert_gone();
    assert!(!c.state.join("exit.tmp").exists() && !c.state.join(".exit.tmp").exists());
}

fn log_is_dockers_json_file(rt: PathBuf) {
    let mut c = Ctr::new("log", rt);
    c.sh(concat!(
        "printf 'plain <b>&\"q\"\\tx\\n'; echo err1 >&2; ",
        "head -c 40000 /dev/zero | tr '\\0' a; echo; ",
        "head -c 1048576 /dev/zero | tr '\\0' b >&2; echo >&2; ",
        "printf 'last-no-newline'"
    ));
    c.run(&[]);
    assert_eq!(c.exit_record()["code"], 0);
    c.assert_gone();
    let lines = c.log("ctr.log");
    // Byte-exact: each line is what dockerd writes for its message.
    for (raw, v) in &lines {
        let time = v["time"].as_str().unwrap();
        assert!(is_rfc3339nano(time), "time {time:?}");
        let log = v["log"].as_str().unwrap();
        let escaped = if log.starts_with("plain") {
            r#""plain \u003cb\u003e\u0026\"q\"\u0009x\n""#.to_string()
        } else {
            serde_json::to_string(log).unwrap()
        };
        let stream = v["stream"].as_str().unwrap();
        assert_eq!(*raw, format!("{{\"log\":{escaped},\"stream\":\"{stream}\",\"time\":\"{time}\"}}\n"));
    }
    let of = |s: &str| -> Vec<String> {
        lines.iter().filter(|(_, v)| v["stream"] == s).map(|(_, v)| v["log"].as_str().unwrap().to_string()).collect()
    };
    let out = of("stdout");
    let a16 = "a".repeat(16384);
    let rest = format!("{}\n", "a".repeat(40000 - 2 * 16384));
    assert_eq!(out, vec!["plain <b>&\"q\"\tx\n".to_string(), a16.clone(), a16, rest, "last-no-newline".to_string()]);
    let err = of("stderr");
    assert_eq!(err.len(), 1 + 64 + 1, "err1, 64 pieces of 16 KiB, the newline");
    assert_eq!(err[0], "err1\n");
    assert!(err[1..65].iter().all(|p| *p == "b".repeat(16384)));
    assert_eq!(err[65], "\n");
    // The pieces of one line share the first piece's time.
    let times: Vec<&str> = lines
        .iter()
        .filter(|(_, v)| v["stream"] == "stderr")
        .skip(1)
        .map(|(_, v)| v["time"].as_str().unwrap())
        .collect();
    assert!(times.iter().all(|t| *t == times[0]), "pieces of a line have one time");
}

fn log_rotates(rt: PathBuf) {
    let mut c = Ctr::new("rot", rt);
    c.sh("seq 1 500");
    c.run(&["--log-max-size", "2k", "--log-max-file", "3"]);
    assert_eq!(c.exit_record()["code"], 0);
    c.assert_gone();
    assert!(!c.state.join("ctr.log.3").exists(), "max-file 3 keeps ctr.log, .1, .2");
    let mut all = Vec::new();
    for name in ["ctr.log.2", "ctr.log.1", "ctr.log"] {
        let size = std::fs::metadata(c.state.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")).len();
        let lines = c.log(name);
        let longest = lines.iter().map(|(r, _)| r.len() as u64).max().unwrap();
        assert!(size < 2000 + longest, "{name} is {size} bytes");
        if name != "ctr.log" {
            assert!(size >= 2000, "{name} rotated at {size} bytes, before max-size");
        }
        all.extend(lines.into_iter().map(|(_, v)| v["log"].as_str().unwrap().trim_end().parse::<u32>().unwrap()));
    }
    assert_eq!(*all.last().unwrap(), 500);
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "consecutive lines across files");
    assert!(all.len() > 60, "three files of ~28 lines");
}

fn control_state_stats_wait_kill(rt: PathBuf) {
    let mut c = Ctr::new("ctl", rt);
    c.host_pid_ns().sh("exec sleep 60");
    let pid = c.run(&[]);
    let mode = std::fs::metadata(c.sock()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "shim.sock mode {mode:o}");
    // A second shim for the same state dir refuses, touching nothing.
    let first = c.shim_pid;
    let (ready, status) = c.start(&[]);
    assert_eq!(ready["ok"], false, "{ready}");
    assert!(ready["error"].as_str().unwrap().contains("already serving"), "{ready}");
    assert!(!status.success());
    assert_eq!((c.shim_pid, c.shim_pid_file()), (first, first));
    let mut ctl = c.ctl();
    let st = ctl.call(json!({"type": "state"}));
    assert_eq!(st["ok"], true, "{st}");
    assert_eq!(st["state"]["status"], "running");
    assert_eq!(st["state"]["pid"], pid);
    assert_eq!(st["state"]["id"], json!(c.b.id));
    assert_eq!(st["state"]["shim_pid"], json!(c.shim_pid.unwrap()));
    let stats = ctl.call(json!({"type": "stats"}));
    assert_eq!(stats["ok"], true, "{stats}");
    assert!(stats["stats"]["memory_usage"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["stats"]["pids_current"].as_u64().unwrap() >= 1, "{stats}");
    // Two waiters, then SIGTERM from a third client.
    let mut w1 = c.ctl();
    let mut w2 = c.ctl();
    w1.send(json!({"type": "wait"}));
    w2.send(json!({"type": "wait"}));
    let r = ctl.call(json!({"type": "kill", "signal": 15}));
    assert_eq!(r, json!({"ok": true}));
    for w in [&mut w1, &mut w2] {
        let r = w.recv();
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["exit"]["code"], 143, "{r}");
        assert_eq!(r["exit"]["signal"], 15, "{r}");
    }
    let e = c.exit_record();
    assert_eq!((e["code"].clone(), e["signal"].clone()), (json!(143), json!(15)));
    c.assert_gone();
}

fn attach_two_clients(rt: PathBuf) {
    let mut c = Ctr::new("att", rt);
    let shared = c.shared();
    c.sh("echo before; while [ ! -e /tmp/go ]; do sleep 0.02; done; echo after-attach; echo to-err >&2; exit 4");
    c.run(&[]);
    let mut a1 = c.ctl();
    let mut a2 = c.ctl();
    for a in [&mut a1, &mut a2] {
        assert_eq!(a.call(json!({"type": "attach"})), json!({"ok": true}));
    }
    std::fs::write(shared.join("go"), "").unwrap();
    for a in [&mut a1, &mut a2] {
        let (out, err, exit) = a.drain();
        assert!(out.ends_with("after-attach\n"), "{out:?}");
        assert_eq!(err, "to-err\n");
        assert_eq!(exit["code"], 4, "{exit}");
    }
    assert_eq!(c.stream("stdout"), "before\nafter-attach\n");
    c.assert_gone();
}

fn attach_stdin(rt: PathBuf) {
    let mut c = Ctr::new("stdin", rt);
    c.sh("cat; echo cat-done");
    c.run(&["--stdin"]);
    let mut a = c.ctl();
    assert_eq!(a.call(json!({"type": "attach", "stdin": true})), json!({"ok": true}));
    a.send_raw(b"hello stdin\n");
    let mut echoed = Vec::new();
    while echoed.len() < 12 {
        let (k, d) = a.frame().expect("echoed stdin");
        assert_eq!(k, 1, "stdout frame");
        echoed.extend(d);
    }
    assert_eq!(text(&echoed), "hello stdin\n");
    a.w.shutdown(Shutdown::Write).unwrap();
    let (out, _, exit) = a.drain();
    assert_eq!(out, "cat-done\n");
    assert_eq!(exit["code"], 0);
    c.assert_gone();
}

fn slow_client_never_blocks_the_container(rt: PathBuf) {
    let mut c = Ctr::new("slow", rt);
    let shared = c.shared();
    c.sh("while [ ! -e /tmp/go ]; do sleep 0.02; done; head -c 20000000 /dev/zero | tr '\\0' a; echo done >&2");
    c.run(&["--log-path", "none"]);
    let mut stuck = c.ctl();
    assert_eq!(stuck.call(json!({"type": "attach"})), json!({"ok": true}));
    std::fs::write(shared.join("go"), "").unwrap();
    // The stuck client never reads: the container still finishes.
    assert_eq!(c.exit_record()["code"], 0);
    c.assert_gone();
    assert!(!c.state.join("ctr.log").exists(), "--log-path none writes no log");
    // The dropped client sees its stream end without an exit frame.
    let mut frames = 0;
    while let Some((k, _)) = stuck.frame() {
        assert_ne!(k, 3, "a dropped client gets no exit frame");
        frames += 1;
    }
    assert!(frames > 0);
}

fn bad_requests_get_errors(rt: PathBuf) {
    let mut c = Ctr::new("bad", rt);
    c.sh("exec sleep 60");
    c.run(&[]);
    let mut ctl = Ctl::connect(&c.sock());
    let r = ctl.call(json!({"type": "state"}));
    assert!(r["error"].as_str().unwrap().contains("expected hello first"), "{r}");
    ctl.send_raw(b"this is not json\n");
    let r = ctl.recv();
    assert_eq!(r["ok"], false);
    assert!(r["error"].as_str().unwrap().starts_with("bad request: "), "{r}");
    assert_eq!(ctl.call(json!({"type": "hello", "version": 9})), json!({"ok": true, "version": 1}));
    for (req, want) in [
        (json!({"type": "explode"}), "explode"),
        (json!({"type": "kill"}), "signal"),
        (json!({"type": "kill", "signal": 99}), "invalid signal 99"),
        (json!({"type": "resize", "rows": 1, "cols": 2}), "has no tty"),
        (json!({"type": "attach", "stdin": true}), "without --stdin"),
        (json!({"type": "start"}), "not in created state"),
        (json!(["type", "state"]), "bad request"),
    ] {
        let r = ctl.call(req.clone());
        assert_eq!(r["ok"], false, "{req} -> {r}");
        assert!(r["error"].as_str().unwrap().contains(want), "{req} -> {r}");
    }
    assert_eq!(ctl.call(json!({"type": "state"}))["state"]["status"], "running");
    // An endless line: an error, then the shim hangs up.
    // (The shim hangs up mid-line: the write may fail with EPIPE.)
    let _ = ctl.w.write_all(&vec![b'x'; 200 * 1024]);
    let r = ctl.recv();
    assert!(r["error"].as_str().unwrap().contains("too long"), "{r}");
    let mut rest = String::new();
    assert_eq!(ctl.r.read_line(&mut rest).unwrap_or(0), 0, "closed after the error: {rest:?}");
    // The shim is fine: shutdown with a 1 s grace (sleep as pid-ns init
    // ignores SIGTERM, so SIGKILL ends it).
    let mut ctl = c.ctl();
    assert_eq!(ctl.call(json!({"type": "shutdown", "timeout": 1})), json!({"ok": true}));
    assert_eq!(c.exit_record()["code"], 137);
    c.assert_gone();
}

fn sigterm_to_the_shim_stops_gracefully(rt: PathBuf) {
    let mut c = Ctr::new("term", rt);
    c.sh("trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done");
    c.run(&["--stop-timeout", "20"]);
    assert!(wait_until(T, || c.stream("stdout") == "ready\n"), "container did not start");
    // SAFETY: signalling the shim this test started.
    unsafe { libc::kill(c.shim_pid.unwrap(), libc::SIGTERM) };
    let e = c.exit_record();
    assert_eq!(e["code"], 3, "{e}");
    c.assert_gone();
    assert_eq!(c.stream("stdout"), "ready\ngot-term\n");
}

fn restart_on_failure_counts(rt: PathBuf) {
    let mut c = Ctr::new("onfail", rt);
    let shared = c.shared();
    c.sh("echo run >> /tmp/starts; exit 3");
    c.run(&["--restart", "on-failure:2"]);
    c.assert_gone();
    let starts = std::fs::read_to_string(shared.join("starts")).unwrap();
    assert_eq!(starts.lines().count(), 3, "first run + exactly 2 restarts: {starts:?}");
    assert_eq!(c.exit_record()["code"], 3);
    let events = std::fs::read_to_string(c.state.join("shim.log")).unwrap();
    assert_eq!(events.matches("restart policy on-failure:2: restart").count(), 2, "{events}");
}

fn restart_always_until_stopped(rt: PathBuf) {
    let mut c = Ctr::new("always", rt);
    let shared = c.shared();
    c.sh("echo run >> /tmp/starts; sleep 0.1; exit 0");
    c.run(&["--restart", "always"]);
    let starts = shared.join("starts");
    let count = || std::fs::read_to_string(&starts).map(|s| s.lines().count()).unwrap_or(0);
    assert!(wait_until(T, || count() >= 3), "always restarts after exit 0 (starts: {})", count());
    let mut ctl = c.ctl();
    let st = ctl.call(json!({"type": "state"}));
    assert!(st["state"]["restarts"].as_u64().unwrap() >= 2, "{st}");
    // A stop kill: whether it lands on a run or during the backoff, no more restarts.
    let r = ctl.call(json!({"type": "kill", "signal": 9, "stop": true}));
    assert!(r["ok"] == true || r["error"].as_str().unwrap_or("").contains("not running"), "{r}");
    c.assert_gone();
    let n = count();
    assert!(n >= 3);
    assert!(c.exit_record()["code"].is_i64());
}

fn engine_killed_container_keeps_running(rt: PathBuf) {
    let mut c = Ctr::new("engkill", rt);
    c.sh("i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.05; done");
    c.b.write();
    // The "engine": a shell that runs the shim, reads nothing, and lingers.
    let mut engine = Command::new("/bin/sh");
    engine
        .arg("-c")
        .arg("\"$@\" 3>&1; exec sleep 60")
        .arg("engine")
        .arg(bin("shim"))
        .args(c.args(&[]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = engine.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(T).expect("ready line");
    let ready: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(ready["ok"], true, "{ready}");
    c.shim_pid = ready["shim_pid"].as_i64().map(|p| p as i32);
    assert_eq!(c.shim_pid, c.shim_pid_file(), "shim.pid names the shim");
    // SIGKILL the engine's whole process group right after the start.
    // SAFETY: the process group this test created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    wait_child(&mut child, T);
    let n = c.log("ctr.log").len();
    assert!(wait_until(T, || c.log("ctr.log").len() >= n + 5), "the log keeps growing");
    // A new "engine" sees it running, stops it, reads its exit code.
    let mut ctl = c.ctl();
    assert_eq!(ctl.call(json!({"type": "state"}))["state"]["status"], "running");
    assert_eq!(ctl.call(json!({"type": "kill", "signal": 9, "stop": true})), json!({"ok": true}));
    let r = ctl.call(json!({"type": "wait"}));
    assert_eq!(r["exit"]["code"], 137, "{r}");
    assert_eq!(c.exit_record()["code"], 137);
    c.assert_gone();
}

fn killed_shim_orphans_the_container(rt: PathBuf) {
    let mut c = Ctr::new("orphan", rt);
    c.sh("exec sleep 60");
    c.run(&[]);
    let shim = c.shim_pid.unwrap();
    // SAFETY: killing the shim this test started.
    unsafe { libc::kill(shim, libc::SIGKILL) };
    assert!(wait_until(T, || !alive(shim)));
    // containerd-shim semantics: the container runs on without its shim.
    assert_eq!(c.b.status(), "running");
    assert!(!c.state.join("exit").exists(), "nobody recorded an exit");
    let out = c.b.rt(&["delete", "--force", &c.b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    c.assert_container_gone();
}

fn failing_create_reports_the_runtime_error(rt: PathBuf) {
    let mut c = Ctr::new("fail", rt);
    c.b.args(&["/nope/missing-program"]);
    let (ready, status) = c.start(&[]);
    assert_eq!(ready["ok"], false, "{ready}");
    assert_eq!(status.code(), Some(1));
    let err = ready["error"].as_str().unwrap();
    assert!(err.contains("/nope/missing-program"), "the runtime's error text: {err}");
    assert!(ready.get("pid").is_none());
    let left: Vec<_> = std::fs::read_dir(&c.state).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "state dir left with {left:?}");
    c.assert_container_gone();
}

fn tty_resize(rt: PathBuf) {
    let mut c = Ctr::new("tty", rt);
    let shared = c.shared();
    c.b.config["process"]["terminal"] = json!(true);
    c.sh("while [ ! -e /tmp/go ]; do sleep 0.02; done; stty size; [ -t 0 ] && echo is-a-tty; exit 0");
    c.run(&["--tty"]);
    let mut ctl = c.ctl();
    assert_eq!(ctl.call(json!({"type": "resize", "rows": 33, "cols": 101})), json!({"ok": true}));
    std::fs::write(shared.join("go"), "").unwrap();
    assert_eq!(c.exit_record()["code"], 0);
    c.assert_gone();
    assert_eq!(c.stream("stdout"), "33 101\r\nis-a-tty\r\n");
    assert_eq!(c.stream("stderr"), "");
}

fn deep_state_dir(rt: PathBuf) {
    let mut c = Ctr::new("deep", rt);
    c.state = c.b.path().join("d".repeat(60)).join("e".repeat(50));
    std::fs::create_dir_all(&c.state).unwrap();
    assert!(c.sock().as_os_str().len() > 108, "past sun_path");
    c.b.config["process"]["terminal"] = json!(true);
    c.sh("read line; echo got-$line");
    c.run(&["--tty", "--stdin"]);
    let mut a = c.ctl();
    assert_eq!(a.call(json!({"type": "attach", "stdin": true})), json!({"ok": true}));
    a.send_raw(b"deep\n");
    let (out, _, exit) = a.drain();
    assert!(out.ends_with("got-deep\r\n"), "{out:?}");
    assert_eq!(exit["code"], 0);
    c.assert_gone();
}

fn no_start_then_start(rt: PathBuf) {
    let mut c = Ctr::new("nostart", rt);
    c.sh("echo early; exit 5");
    let pid = c.run(&["--no-start"]);
    let mut a = c.ctl();
    assert_eq!(a.call(json!({"type": "state"}))["state"]["status"], "created");
    assert_eq!(a.call(json!({"type": "attach"})), json!({"ok": true}));
    let mut s = c.ctl();
    assert_eq!(s.call(json!({"type": "start"})), json!({"ok": true, "pid": pid}));
    let (out, _, exit) = a.drain();
    assert_eq!(out, "early\n", "attached before start: nothing missed");
    assert_eq!(exit["code"], 5);
    c.assert_gone();
}

fn proxy_is_supervised(rt: PathBuf) {
    let mut c = Ctr::new("proxy", rt);
    let shared = c.shared();
    c.sh("while [ ! -e /tmp/go ]; do sleep 0.02; done; exit 0");
    let record = shared.join("proxy");
    let script = format!("echo $$ {{pid}} > {}; printf '0\\n' >&3; exec sleep 60", record.display());
    let pid = c.run(&["--", "/bin/sh", "-c", &script]);
    let text = std::fs::read_to_string(&record).unwrap();
    let (proxy, arg) = text.trim().split_once(' ').unwrap();
    assert_eq!(arg, pid.to_string(), "{{pid}} is the container's pid");
    let proxy: i32 = proxy.parse().unwrap();
    assert!(alive(proxy));
    std::fs::write(shared.join("go"), "").unwrap();
    assert_eq!(c.exit_record()["code"], 0);
    c.assert_gone();
    assert!(!alive(proxy), "the proxy stops with the container");
}

fn proxy_restarted_when_it_dies(rt: PathBuf) {
    let mut c = Ctr::new("proxydies", rt);
    let shared = c.shared();
    c.sh("while [ ! -e /tmp/go ]; do sleep 0.02; done; exit 0");
    let record = shared.join("proxy");
    let script = format!("echo $$ >> {}; printf '0\\n' >&3; exec sleep 0.1", record.display());
    c.run(&["--", "/bin/sh", "-c", &script]);
    let count = || std::fs::read_to_string(&record).map(|s| s.lines().count()).unwrap_or(0);
    assert!(wait_until(T, || count() >= 2), "the proxy was not started again");
    std::fs::write(shared.join("go"), "").unwrap();
    assert_eq!(c.exit_record()["code"], 0);
    c.assert_gone();
    let events = std::fs::read_to_string(c.state.join("shim.log")).unwrap();
    assert!(events.contains("proxy exited with status 0"), "{events}");
}

fn failing_proxy_fails_the_start(rt: PathBuf) {
    let mut c = Ctr::new("proxyfail", rt);
    c.sh("exec sleep 60");
    let (ready, status) =
        c.start(&["--", "/bin/sh", "-c", "printf '1\\nlisten tcp 127.0.0.1:1: address already in use' >&3"]);
    assert_eq!(ready["ok"], false, "{ready}");
    assert!(!status.success());
    assert_eq!(ready["error"], "proxy: listen tcp 127.0.0.1:1: address already in use");
    let left: Vec<_> = std::fs::read_dir(&c.state).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "state dir left with {left:?}");
    c.assert_container_gone();
}

macro_rules! with_both_runtimes {
    ($($name:ident),* $(,)?) => {
        mod runc {
            $(#[test] fn $name() { super::$name(super::runc()) })*
        }
        mod skiff_runtime {
            $(#[test] fn $name() { super::$name(super::ours()) })*
        }
    };
}

with_both_runtimes!(
    ready_pid_and_exit_code_recorded,
    log_is_dockers_json_file,
    log_rotates,
    control_state_stats_wait_kill,
    attach_two_clients,
    attach_stdin,
    slow_client_never_blocks_the_container,
    bad_requests_get_errors,
    sigterm_to_the_shim_stops_gracefully,
    restart_on_failure_counts,
    restart_always_until_stopped,
    engine_killed_container_keeps_running,
    killed_shim_orphans_the_container,
    failing_create_reports_the_runtime_error,
    tty_resize,
    deep_state_dir,
    no_start_then_start,
    proxy_is_supervised,
    proxy_restarted_when_it_dies,
    failing_proxy_fails_the_start,
);

#[test]
fn usage_errors_name_the_flag() {
    let out = skiff_tests::run(Command::new(bin("shim")).args(["--id", "x", "--bundle", "b"]), T);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing --state-dir"), "{}", text(&out.stderr));
    let out = skiff_tests::run(Command::new(bin("shim")).arg("--version"), T);
    assert!(text(&out.stdout).starts_with("shim (skiff) version"), "{}", text(&out.stdout));
}
