//! skiff's `proxy` (issue 10), driven as a real process on loopback only
//! (127.0.0.0/8 and ::1, plus the loopback of a network namespace the test
//! makes). Every proxy is started with a pipe on fd 3 and is ready once it
//! writes `0\n` there; each test owns its ports and kills its proxy on drop.

use skiff_tests::{bin, free_tcp_port, free_udp_port, run, text, wait_until};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- processes

/// How to start a proxy.
#[derive(Default)]
struct Opts {
    /// RLIMIT_NOFILE (soft and hard) for the proxy.
    nofile: Option<u64>,
    /// A socket to place on fd 4.
    fd4: Option<RawFd>,
    /// Leave fd 3 closed.
    no_report: bool,
}

/// A proxy process, killed when dropped.
struct Proxy {
    child: Child,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2");
    // SAFETY: both are fresh and ours.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Starts the proxy; returns it with what it wrote on fd 3 before closing it
/// (read with a deadline).
fn spawn(args: &[String], opts: Opts) -> (Proxy, Vec<u8>) {
    let (r, w) = pipe();
    let mut cmd = Command::new(bin("proxy"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
    let mut places: Vec<(RawFd, RawFd)> = Vec::new();
    if !opts.no_report {
        places.push((w.as_raw_fd(), 3));
    }
    if let Some(fd) = opts.fd4 {
        places.push((fd, 4));
    }
    let nofile = opts.nofile;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Out of the way first, so no placement clobbers another's source.
            let mut moved = [(-1, -1); 2];
            for (i, &(src, dst)) in places.iter().enumerate() {
                let t = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 100);
                if t < 0 {
                    return Err(io::Error::last_os_error());
                }
                moved[i] = (t, dst);
            }
            for &(t, dst) in moved.iter().take(places.len()) {
                if libc::dup2(t, dst) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(n) = nofile {
                let rl = libc::rlimit { rlim_cur: n, rlim_max: n };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn proxy: {e}"));
    drop(w);
    let proxy = Proxy { child };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(r);
        let mut v = Vec::new();
        let _ = f.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    let report = rx.recv_timeout(Duration::from_secs(20)).expect("proxy closed fd 3 within 20 s");
    (proxy, report)
}

/// Starts the proxy and waits until it listens.
fn start(args: &[String]) -> Proxy {
    start_opts(args, Opts::default())
}

fn start_opts(args: &[String], opts: Opts) -> Proxy {
    let (p, report) = spawn(args, opts);
    assert_eq!(text(&report), "0\n", "proxy {args:?} did not report ready");
    p
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Sockets the process holds (listeners, connections, flows).
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")))
                .count()
        })
        .unwrap_or(0)
}

/// Descriptors the process holds, of any kind.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Threads of a process.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

/// CPU time (user + system) of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after = &stat[stat.rfind(')').expect("stat has a comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

// ------------------------------------------------------------------ backends

/// A TCP server on a thread, one thread per connection; stopped when dropped.
struct Server {
    addr: SocketAddr,
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(bind: &str, handler: fn(TcpStream)) -> Server {
        let l = TcpListener::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        Server::on(l, handler)
    }

    fn on(l: TcpListener, handler: fn(TcpStream)) -> Server {
        let addr = l.local_addr().expect("local_addr");
        let listener = l.try_clone().expect("clone listener");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            for c in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = c {
                    std::thread::spawn(move || handler(c));
                }
            }
        });
        Server { addr, listener, stop, thread: Some(thread) }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocked accept (with EINVAL) on Linux.
        // SAFETY: plain syscall on a socket we own.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Echoes until EOF, then closes its write side.
fn echo(mut c: TcpStream) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if c.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = c.shutdown(Shutdown::Write);
}

/// A UDP echo server on a thread; stopped when dropped.
struct UdpEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpEcho {
    /// `tag_source`: reply with the sender's address instead of the data.
    fn start(bind: &str, tag_source: bool) -> UdpEcho {
        let s = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        s.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let addr = s.local_addr().expect("local_addr");
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !st.load(Ordering::SeqCst) {
                if let Ok((n, from)) = s.recv_from(&mut buf) {
                    let _ = if tag_source {
                        s.send_to(from.to_string().as_bytes(), from)
                    } else {
                        s.send_to(&buf[..n], from)
                    };
                }
            }
        });
        UdpEcho { addr, stop, thread: Some(thread) }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ------------------------------------------------------------------- clients

fn connect(addr: &str) -> TcpStream {
    let a: SocketAddr = addr.parse().expect("address");
    let c = TcpStream::connect_timeout(&a, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    c.set_write_timeout(Some(Duration::from_secs(20))).expect("timeout");
    c
}

/// One request/reply through an echo path.
fn ping(c: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    c.write_all(msg)?;
    let mut got = vec![0u8; msg.len()];
    c.read_exact(&mut got)?;
    if got != msg {
        return Err(io::Error::other("echo differs"));
    }
    Ok(())
}

/// Whether a fresh connection to `addr` echoes within `timeout`.
fn echoes(addr: &str, timeout: Duration) -> bool {
    let Ok(a) = addr.parse::<SocketAddr>() else { return false };
    let Ok(mut c) = TcpStream::connect_timeout(&a, timeout) else { return false };
    let _ = c.set_read_timeout(Some(timeout));
    ping(&mut c, b"are you there?").is_ok()
}

fn set_linger_zero(fd: RawFd) {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: l lives across the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER");
}

/// The data of a test stream: 64 KiB blocks of pseudo-random bytes, each
/// stamped with the stream's seed and the block's index, so a lost,
/// repeated, reordered or corrupted byte is caught by comparing blocks.
const BLOCK: usize = 64 * 1024;

fn base_block() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v = Vec::with_capacity(BLOCK);
    while v.len() < BLOCK {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

fn make_block(base: &[u8], seed: u64, idx: u64, out: &mut [u8]) {
    out.copy_from_slice(base);
    out[..8].copy_from_slice(&idx.to_le_bytes());
    out[8..16].copy_from_slice(&seed.to_le_bytes());
}

fn send_stream(w: &mut TcpStream, base: &[u8], seed: u64, blocks: u64) -> io::Result<()> {
    let mut b = vec![0u8; BLOCK];
    for i in 0..blocks {
        make_block(base, seed, i, &mut b);
        w.write_all(&b)?;
    }
    Ok(())
}

/// Reads exactly the stream `seed` of `blocks` blocks, then EOF.
fn check_stream(r: &mut TcpStream, base: &[u8], seed: u64, blocks: u64) -> Result<(), String> {
    let (mut got, mut want) = (vec![0u8; BLOCK], vec![0u8; BLOCK]);
    for i in 0..blocks {
        r.read_exact(&mut got).map_err(|e| format!("stream {seed}: block {i}: {e}"))?;
        make_block(base, seed, i, &mut want);
        if got != want {
            return Err(format!("stream {seed}: block {i} differs"));
        }
    }
    match r.read(&mut got[..1]) {
        Ok(0) => Ok(()),
        Ok(_) => Err(format!("stream {seed}: data after the end")),
        Err(e) => Err(format!("stream {seed}: no clean EOF: {e}")),
    }
}

// --------------------------------------------------------------------- tests

#[test]
fn tcp_transfers_are_byte_exact_on_parallel_connections() {
    // 1 GiB each way in all.
    const CONNS: u64 = 8;
    const MIB_EACH_WAY: u64 = 128;
    let backend = Server::start("127.0.0.1:0", echo);
    let port = free_tcp_port();
    // Three threads, whatever the CPU count: connections are handed to workers.
    let p = start(&args(&["--threads", "3", "--map", &format!("127.0.0.1:{port}:127.0.0.1:{}/tcp", backend.port())]));
    let addr = format!("127.0.0.1:{port}");
    let base = Arc::new(base_block());
    let blocks = MIB_EACH_WAY * 1024 * 1024 / BLOCK as u64;
    let t0 = Instant::now();
    let handles: Vec<_> = (0..CONNS)
        .map(|seed| {
            let (addr, base) = (addr.clone(), base.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut c = connect(&addr);
                let mut w = c.try_clone().map_err(|e| e.to_string())?;
                let wb = base.clone();
                let writer = std::thread::spawn(move || {
                    let r = send_stream(&mut w, &wb, seed, blocks);
                    let _ = w.shutdown(Shutdown::Write);
                    r
                });
                let checked = check_stream(&mut c, &base, seed, blocks);
                writer.join().map_err(|_| "writer panicked".to_string())?.map_err(|e| format!("send: {e}"))?;
                checked
            })
        })
        .collect();
    for h in handles {
        h.join().expect("connection thread").expect("stream through the proxy");
    }
    eprintln!("{CONNS} connections x {MIB_EACH_WAY} MiB each way through the proxy in {:?}", t0.elapsed());
    assert_eq!(threads(p.child.id()), 3, "the connections were spread over three threads");
}

#[test]
fn half_close_keeps_the_other_direction_flowing() {
    // Reads until EOF, then answers with everything it read, reversed in blocks.
    fn answer_after_eof(mut c: TcpStream) {
        let mut all = Vec::new();
        if c.read_to_end(&mut all).is_err() {
            return;
        }
        let mut reply = format!("{}\n", all.len()).into_bytes();
        reply.extend(all.iter().rev());
        let _ = c.write_all(&reply);
    }
    let backend = Server::start("127.0.0.1:0", answer_after_eof);
    let port = free_tcp_port();
    let _p = start(&args(&[
        "-host-ip",
        "127.0.0.1",
        "-host-port",
        &port.to_string(),
        "-container-ip",
        "127.0.0.1",
        "-container-port",
        &backend.port().to_string(),
    ]));
    let mut c = connect(&format!("127.0.0.1:{port}"));
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    c.write_all(&data).expect("write");
    c.shutdown(Shutdown::Write).expect("shutdown write");
    let mut reply = Vec::new();
    c.read_to_end(&mut reply).expect("read the reply after our EOF");
    let head = format!("{}\n", data.len());
    assert!(reply.starts_with(head.as_bytes()), "reply starts {:?}", text(&reply[..reply.len().min(20)]));
    let body: Vec<u8> = reply[head.len()..].to_vec();
    assert_eq!(body.len(), data.len());
    assert!(body.iter().rev().eq(data.iter()), "reply is not the data reversed");
}

#[test]
fn resets_are_propagated_both_ways() {
    // Backend resets: the client must see a reset, not a clean EOF.
    fn reset_after_one_byte(mut c: TcpStream) {
        let mut b = [0u8; 1];
        let _ = c.read_exact(&mut b);
        set_linger_zero(c.as_raw_fd());
    }
    let backend = Server::start("127.0.0.1:0", reset_after_one_byte);
    let port = free_tcp_port();
    let _p = start(&args(&["--map", &format!("127.0.0.1:{port}:127.0.0.1:{}", backend.port())]));
    let mut c = connect(&format!("127.0.0.1:{port}"));
    c.write_all(b"x").expect("write");
    let mut b = [0u8; 16];
    let r = c.read(&mut b);
    assert_eq!(
        r.as_ref().map_err(|e| e.kind()),
        Err(io::ErrorKind::ConnectionReset),
        "client after the backend reset: {r:?}"
    );

    // Client resets: the backend must see a reset.
    let (tx, rx) = mpsc::channel::<TcpStream>();
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let bport = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        if let Ok((c, _)) = l.accept() {
            let _ = tx.send(c);
        }
    });
    let port2 = free_tcp_port();
    let _p2 = start(&args(&["--map", &format!("127.0.0.1:{port2}:127.0.0.1:{bport}")]));
    let c = connect(&format!("127.0.0.1:{port2}"));
    let mut server_side = rx.recv_timeout(Duration::from_secs(10)).expect("backend got the connection");
    server_side.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    set_linger_zero(c.as_raw_fd());
    drop(c);
    let r = server_side.read(&mut b);
    assert_eq!(
        r.as_ref().map_err(|e| e.kind()),
        Err(io::ErrorKind::ConnectionReset),
        "backend after the client reset: {r:?}"
    );
}

#[test]
fn backend_down_closes_the_client_and_the_proxy_goes_on() {
    // A port with nothing listening.
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
    let bport = dead.local_addr().expect("addr").port();
    drop(dead);
    let port = free_tcp_port();
    let p = start(&args(&["--map", &format!("127.0.0.1:{port}:127.0.0.1:{bport}")]));
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..20 {
        let mut c = connect(&addr);
        let mut b = [0u8; 8];
        match c.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("client of a dead backend: {other:?}"),
        }
    }
    let pid = p.child.id();
    assert!(wait_until(Duration::from_secs(10), || sockets(pid) == 1), "sockets left: {}", sockets(pid));
    // The backend comes up: the same proxy serves it.
    let l = TcpListener::bind(("127.0.0.1", bport)).expect("rebind the backend port");
    let _backend = Server::on(l, echo);
    let mut c = connect(&addr);
    ping(&mut c, b"hello").expect("echo once the backend is up");
}

#[test]
fn reset_mid_transfer_frees_the_connection() {
    // A backend that reads slowly, so data piles up in the proxy.
    fn slow_reader(mut c: TcpStream) {
        let mut b = [0u8; 1024];
        loop {
            match c.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
    let backend = Server::start("127.0.0.1:0", slow_reader);
    let port = free_tcp_port();
    let p = start(&args(&["--map", &format!("127.0.0.1:{port}:127.0.0.1:{}", backend.port())]));
    let pid = p.child.id();
    assert_eq!(sockets(pid), 1, "one listener");
    for _ in 0..5 {
        let mut c = connect(&format!("127.0.0.1:{port}"));
        c.set_nonblocking(true).expect("nonblocking");
        let chunk = vec![7u8; 1 << 20];
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut sent = 0usize;
        // Fill every buffer on the way.
        while Instant::now() < deadline {
            match c.write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if sent > (4 << 20) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        assert!(sent > 0);
        assert!(wait_until(Duration::from_secs(10), || sockets(pid) == 3), "proxy holds the connection");
        set_linger_zero(c.as_raw_fd());
        drop(c);
        assert!(
            wait_until(Duration::from_secs(10), || sockets(pid) == 1),
            "proxy freed the reset connection (sockets: {})",
            sockets(pid)
        );
    }
}

#[test]
fn udp_echo_100k_datagrams_keeps_boundaries() {
    const N: usize = 100_000;
    const WINDOW: usize = 32;
    let echo = UdpEcho::start("127.0.0.1:0", false);
    let port = free_udp_port();
    let _p = start(&args(&["--map", &format!("127.0.0.1:{port}:127.0.0.1:{}/udp", echo.addr.port())]));
    let c = UdpSocket::bind("127.0.0.1:0").expect("bind");
    c.connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let len_of = |i: usize| 8 + (i * 7919) % 1400;
    let datagram = |i: usize| {
        let mut d = vec![(i % 251) as u8; len_of(i)];
        d[..8].copy_from_slice(&(i as u64).to_le_bytes());
        d
    };
    // 0: in flight, 1: echoed, 2: given up on.
    let mut state = vec![0u8; N];
    let (mut next, mut done, mut lost) = (0usize, 0usize, 0usize);
    let mut buf = vec![0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(120);
    let t0 = Instant::now();
    while done + lost < N {
        assert!(Instant::now() < deadline, "UDP echo ran past its deadline: {done} echoed, {lost} lost");
        while next < N && next - done - lost < WINDOW {
            c.send(&datagram(next)).expect("send");
            next += 1;
        }
        match c.recv(&mut buf) {
            Ok(n) => {
                assert!(n >= 8, "short datagram of {n} bytes");
                let i = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes")) as usize;
                assert!(i < next, "echo of a datagram never sent: {i}");
                assert_eq!(&buf[..n], &datagram(i)[..], "datagram {i} came back changed (boundaries kept?)");
                if state[i] == 0 {
                    state[i] = 1;
                    done += 1;
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                for s in state[..next].iter_mut().filter(|s| **s == 0) {
                    *s = 2;
                    lost += 1;
                }
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
    eprintln!("UDP: {done} of {N} datagrams echoed through the proxy in {:?}, {lost} lost", t0.elapsed());
    // Loopback with a bounded window: no datagram may be lost.
    assert_eq!(lost, 0, "datagrams lost on loopback");
}

#[test]
fn udp_flows_expire_after_the_idle_timeout() {
    let echo = UdpEcho::start("127.0.0.1:0", true);
    let port = free_udp_port();
    let p = start(&args(&[
        "--udp-timeout",
        "0.3",
        "--map",
        &format!("127.0.0.1:{port}:127.0.0.1:{}/udp", echo.addr.port()),
    ]));
    let pid = p.child.id();
    let c = UdpSocket::bind("127.0.0.1:0").expect("bind");
    c.connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut buf = [0u8; 128];
    let mut ask = || -> String {
        c.send(b"who am i").expect("send");
        let n = c.recv(&mut buf).expect("reply through the proxy");
        text(&buf[..n])
    };
    let first = ask();
    assert_eq!(ask(), first, "one flow while traffic flows");
    assert_eq!(sockets(pid), 2, "listener and one flow");
    assert!(wait_until(Duration::from_secs(10), || sockets(pid) == 1), "the idle flow was not dropped");
    let later = ask();
    assert_ne!(later, first, "a new flow (new source port) after expiry");
    // A second client gets its own flow.
    let c2 = UdpSocket::bind("127.0.0.1:0").expect("bind");
    c2.connect(("127.0.0.1", port)).expect("connect");
    c2.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    c2.send(b"x").expect("send");
    let n = c2.recv(&mut buf).expect("reply to the second client");
    assert_ne!(text(&buf[..n]), later);
}

#[test]
fn udp_flow_table_is_bounded_dropping_the_oldest() {
    let echo = UdpEcho::start("127.0.0.1:0", true);
    let port = free_udp_port();
    let p = start(&args(&[
        "--udp-max-flows",
        "2",
        "--map",
        &format!("127.0.0.1:{port}:127.0.0.1:{}/udp", echo.addr.port()),
    ]));
    let pid = p.child.id();
    let clients: Vec<UdpSocket> = (0..3)
        .map(|_| {
            let c = UdpSocket::bind("127.0.0.1:0").expect("bind");
            c.connect(("127.0.0.1", port)).expect("connect");
            c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            c
        })
        .collect();
    let ask = |c: &UdpSocket| -> String {
        c.send(b"who am i").expect("send");
        let mut buf = [0u8; 128];
        let n = c.recv(&mut buf).expect("reply through the proxy");
        text(&buf[..n])
    };
    let first = ask(&clients[0]);
    ask(&clients[1]);
    assert_eq!(sockets(pid), 3, "listener and two flows");
    ask(&clients[2]);
    assert_eq!(sockets(pid), 3, "still two flows after a third client");
    assert_ne!(ask(&clients[0]), first, "the oldest flow (first client) was dropped for the third");
    assert_eq!(sockets(pid), 3);
}

#[test]
fn max_conns_caps_connections_per_port() {
    let backend = Server::start("127.0.0.1:0", echo);
    let port = free_tcp_port();
    let addr = format!("127.0.0.1:{port}");
    // Two threads: the first client stays on the main thread, the second goes
    // to a worker, so a close in either must let the next client in.
    let p = start(&args(&[
        "--threads",
        "2",
        "--max-conns",
        "2",
        "--map",
        &format!("127.0.0.1:{port}:127.0.0.1:{}", backend.port()),
    ]));
    let pid = p.child.id();
    let mut a = connect(&addr);
    ping(&mut a, b"a").expect("first");
    let mut b = connect(&addr);
    ping(&mut b, b"b").expect("second");
    let waits = |c: &mut TcpStream, msg: &[u8]| {
        c.write_all(msg).expect("write");
        c.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
        let mut buf = [0u8; 1];
        let r = c.read(&mut buf);
        assert!(
            matches!(&r, Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)),
            "connection served over the cap: {r:?}"
        );
    };
    let served = |c: &mut TcpStream, msg: &[u8]| {
        c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut buf = [0u8; 1];
        c.read_exact(&mut buf).expect("served once a connection closed");
        assert_eq!(&buf, msg);
    };
    // The third waits in the backlog until one of the two closes.
    let mut c = connect(&addr);
    waits(&mut c, b"c");
    assert_eq!(sockets(pid), 5, "listener and two proxied connections");
    assert_eq!(threads(pid), 2, "the second connection went to a worker");
    drop(b);
    served(&mut c, b"c");
    let mut d = connect(&addr);
    waits(&mut d, b"d");
    drop(a);
    served(&mut d, b"d");
    ping(&mut c, b"c2").expect("third still served");
}

#[test]
fn udp_replies_come_from_the_address_the_client_targeted() {
    let echo = UdpEcho::start("127.0.0.1:0", false);
    let port = free_udp_port();
    let _p = start(&args(&["--map", &format!("0.0.0.0:{port}:127.0.0.1:{}/udp", echo.addr.port())]));
    for target in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        let c = UdpSocket::bind("127.0.0.1:0").expect("bind");
        // A connected socket only accepts datagrams from the address it targets.
        c.connect((target, port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        c.send(target.as_bytes()).expect("send");
        let mut buf = [0u8; 64];
        let n = c.recv(&mut buf).unwrap_or_else(|e| panic!("reply from {target}: {e}"));
        assert_eq!(&buf[..n], target.as_bytes());
    }
}

#[test]
fn ipv6_tcp_and_udp() {
    let backend = Server::start("[::1]:0", echo);
    let echo6 = UdpEcho::start("[::1]:0", false);
    let v4backend = Server::start("127.0.0.1:0", echo);
    let (p1, p2, p3) = (free_tcp_port(), free_udp_port(), free_tcp_port());
    let _p = start(&args(&[
        "--map",
        &format!("[::1]:{p1}:[::1]:{}/tcp", backend.port()),
        "--map",
        &format!("[::1]:{p2}:[::1]:{}/udp", echo6.addr.port()),
        // IPv6 clients to an IPv4 backend.
        "--map",
        &format!("[::1]:{p3}:127.0.0.1:{}/tcp", v4backend.port()),
    ]));
    let mut c = connect(&format!("[::1]:{p1}"));
    ping(&mut c, &vec![6u8; 1 << 20]).expect("echo over ::1");
    let mut c = connect(&format!("[::1]:{p3}"));
    ping(&mut c, b"v6 to v4").expect("echo from ::1 to 127.0.0.1");
    let u = UdpSocket::bind("[::1]:0").expect("bind");
    u.connect(("::1", p2)).expect("connect");
    u.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    for i in 0..100u32 {
        let d = i.to_le_bytes();
        u.send(&d).expect("send");
        let mut b = [0u8; 16];
        let n = u.recv(&mut b).expect("UDP reply over ::1");
        assert_eq!(&b[..n], &d);
    }
}

/// `count` consecutive free TCP ports on 127.0.0.1, below the ephemeral
/// range (where busy neighbouring tests hold many ports).
fn free_port_run(count: u16) -> u16 {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768);
    let span = u32::from(low.saturating_sub(count).max(20_001) - 20_000);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.subsec_nanos());
    let mut x = (std::process::id() ^ nanos ^ u32::from(free_tcp_port())) | 1;
    for _ in 0..500 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let base = 20_000 + (x % span) as u16;
        let held: Vec<_> = (base..base + count).map_while(|p| TcpListener::bind(("127.0.0.1", p)).ok()).collect();
        if held.len() == count as usize {
            return base;
        }
    }
    panic!("no run of {count} free ports");
}

#[test]
fn port_ranges_map_port_by_port() {
    const N: u16 = 20;
    // Backends answer with their own port.
    fn tell_port(mut c: TcpStream) {
        let p = c.local_addr().map(|a| a.port()).unwrap_or(0);
        let _ = c.write_all(p.to_string().as_bytes());
    }
    let bbase = free_port_run(N);
    let backends: Vec<Server> =
        (bbase..bbase + N).map(|p| Server::start(&format!("127.0.0.1:{p}"), tell_port)).collect();
    let hbase = free_port_run(N);
    let p = start(&args(&[
        "--map",
        &format!("127.0.0.1:{hbase}-{}:127.0.0.1:{bbase}-{}/tcp", hbase + N - 1, bbase + N - 1),
    ]));
    assert_eq!(sockets(p.child.id()), N as usize, "one listener per port");
    for i in 0..N {
        let mut c = connect(&format!("127.0.0.1:{}", hbase + i));
        let mut s = String::new();
        c.read_to_string(&mut s).expect("read");
        assert_eq!(s, (bbase + i).to_string(), "host port {} reached the wrong backend", hbase + i);
    }
    drop(backends);
}

#[test]
fn running_out_of_descriptors_pauses_accepting_then_recovers() {
    let backend = Server::start("127.0.0.1:0", echo);
    let port = free_tcp_port();
    let addr = format!("127.0.0.1:{port}");
    // Two threads: clients a worker cannot dial go back to the main thread.
    let p = start_opts(
        &args(&["--threads", "2", "--map", &format!("127.0.0.1:{port}:127.0.0.1:{}", backend.port())]),
        Opts { nofile: Some(24), ..Opts::default() },
    );
    let pid = p.child.id();
    let mut first = connect(&addr);
    ping(&mut first, b"first").expect("first client served");
    // Far more clients than 24 descriptors allow; they queue in the backlog.
    let mut clients: Vec<TcpStream> = (0..60).map(|_| connect(&addr)).collect();
    assert!(
        wait_until(Duration::from_secs(10), || open_fds(pid) >= 23),
        "proxy took connections up to its limit of 24 descriptors: {} open",
        open_fds(pid)
    );
    assert_eq!(threads(pid), 2, "the worker thread started");
    // Exhausted: alive, not spinning, still serving the connections it has.
    let before = cpu_ticks(pid);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(1) {
        assert!(p.child.id() == pid);
        std::thread::sleep(Duration::from_millis(50));
    }
    let spent = cpu_ticks(pid) - before;
    assert!(spent < 30, "proxy burned {spent} ticks in 1 s while out of descriptors");
    ping(&mut first, b"still here").expect("established connection still served");
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_ok(), "proxy died");
    // Free them all: the proxy drains its backlog and serves new clients.
    clients.clear();
    drop(first);
    assert!(wait_until(Duration::from_secs(20), || echoes(&addr, Duration::from_secs(2))), "proxy did not recover");
    // The backlog of closed clients drains (each one accepted, dialled and closed).
    assert!(wait_until(Duration::from_secs(20), || sockets(pid) == 1), "backlog not drained: {} sockets", sockets(pid));
    let mut again: Vec<TcpStream> = (0..5).map(|_| connect(&addr)).collect();
    for (i, c) in again.iter_mut().enumerate() {
        ping(c, format!("again {i}").as_bytes()).expect("served after recovery");
    }
}

#[test]
fn idle_and_stalled_clients_do_not_starve_others() {
    raise_own_nofile();
    let backend = Server::start("127.0.0.1:0", echo);
    let port = free_tcp_port();
    let addr = format!("127.0.0.1:{port}");
    let p = start(&args(&["--map", &format!("127.0.0.1:{port}:127.0.0.1:{}", backend.port())]));
    let pid = p.child.id();
    const IDLE: usize = 2000;
    let idle: Vec<TcpStream> = (0..IDLE).map(|_| connect(&addr)).collect();
    // A client that sends without ever reading its echo: everything stalls behind it.
    let mut stalled = connect(&addr);
    stalled.set_nonblocking(true).expect("nonblocking");
    let chunk = vec![1u8; 1 << 20];
    let t0 = Instant::now();
    let mut stuck = 0;
    while t0.elapsed() < Duration::from_secs(10) && stuck < 20 {
        match stalled.write(&chunk) {
            Ok(_) => stuck = 0,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stuck += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("stalled client write: {e}"),
        }
    }
    assert!(wait_until(Duration::from_secs(20), || sockets(pid) > 2 * (IDLE + 1)), "proxy holds all connections");
    for i in 0..20 {
        let t = Instant::now();
        let mut c = connect(&addr);
        ping(&mut c, format!("fresh {i}").as_bytes()).expect("fresh client served");
        assert!(t.elapsed() < Duration::from_secs(2), "fresh client waited {:?}", t.elapsed());
    }
    drop(idle);
    drop(stalled);
    assert!(
        wait_until(Duration::from_secs(20), || sockets(pid) == 1),
        "connections not freed: {} sockets",
        sockets(pid)
    );
}

fn raise_own_nofile() {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: rl is valid for writes, then a valid rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur = rl.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
    }
    assert!(rl.rlim_cur >= 8192, "RLIMIT_NOFILE hard limit {} is below 8192", rl.rlim_max);
}

#[test]
fn fd3_reports_ready_and_failure() {
    let backend = Server::start("127.0.0.1:0", echo);
    let port = free_tcp_port();
    let a = args(&[
        "-proto",
        "tcp",
        "-host-ip",
        "127.0.0.1",
        "-host-port",
        &port.to_string(),
        "-container-ip",
        "127.0.0.1",
        "-container-port",
        &backend.port().to_string(),
    ]);
    let (p, report) = spawn(&a, Opts::default());
    assert_eq!(text(&report), "0\n");
    let mut c = connect(&format!("127.0.0.1:{port}"));
    ping(&mut c, b"ready means listening").expect("echo");

    // The same port again: taken.
    let (mut p2, report) = spawn(&a, Opts::default());
    let report = text(&report);
    assert!(report.starts_with("1\n"), "failure report: {report:?}");
    assert!(report.contains(&format!("127.0.0.1:{port}")), "report names the address: {report:?}");
    assert!(report.to_lowercase().contains("in use"), "report names the problem: {report:?}");
    let st = skiff_tests::wait_child(&mut p2.child, Duration::from_secs(10));
    assert_eq!(st.code(), Some(1));

    // Without fd 3 it works too, and SIGTERM stops it with status 0.
    drop(p);
    let (mut p3, report) = spawn(&a, Opts { no_report: true, ..Opts::default() });
    assert!(report.is_empty());
    assert!(wait_until(Duration::from_secs(10), || echoes(&format!("127.0.0.1:{port}"), Duration::from_secs(1))));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(p3.child.id() as libc::pid_t, libc::SIGTERM) };
    let st = skiff_tests::wait_child(&mut p3.child, Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "exit status on SIGTERM");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "listener closed after SIGTERM");
}

#[test]
fn use_listen_fd_serves_an_inherited_socket() {
    let backend = Server::start("127.0.0.1:0", echo);
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let _p = start_opts(
        &args(&[
            "-proto",
            "tcp",
            "-host-ip",
            "127.0.0.1",
            "-host-port",
            &port.to_string(),
            "-container-ip",
            "127.0.0.1",
            "-container-port",
            &backend.port().to_string(),
            "-use-listen-fd",
        ]),
        Opts { fd4: Some(l.as_raw_fd()), ..Opts::default() },
    );
    drop(l);
    let mut c = connect(&format!("127.0.0.1:{port}"));
    ping(&mut c, b"through fd 4").expect("echo through the inherited listener");

    let echo_udp = UdpEcho::start("127.0.0.1:0", false);
    let u = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let uport = u.local_addr().expect("addr").port();
    let _pu = start_opts(
        &args(&[
            "-proto",
            "udp",
            "-host-ip",
            "127.0.0.1",
            "-host-port",
            &uport.to_string(),
            "-container-ip",
            "127.0.0.1",
            "-container-port",
            &echo_udp.addr.port().to_string(),
            "-use-listen-fd",
        ]),
        Opts { fd4: Some(u.as_raw_fd()), ..Opts::default() },
    );
    drop(u);
    let c = UdpSocket::bind("127.0.0.1:0").expect("bind");
    c.connect(("127.0.0.1", uport)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    c.send(b"udp via fd 4").expect("send");
    let mut b = [0u8; 64];
    let n = c.recv(&mut b).expect("UDP reply through the inherited socket");
    assert_eq!(&b[..n], b"udp via fd 4");

    // A TCP socket handed over for a UDP mapping is refused.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let (mut bad, report) = spawn(
        &args(&[
            "-proto",
            "udp",
            "-host-port",
            "1",
            "-container-ip",
            "127.0.0.1",
            "-container-port",
            "1",
            "-use-listen-fd",
        ]),
        Opts { fd4: Some(l.as_raw_fd()), ..Opts::default() },
    );
    let report = text(&report);
    assert!(report.starts_with("1\n") && report.contains("fd 4"), "report: {report:?}");
    assert_eq!(skiff_tests::wait_child(&mut bad.child, Duration::from_secs(10)).code(), Some(1));
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let tport = taken.local_addr().expect("addr").port();
    let cases: Vec<(Vec<String>, String)> = vec![
        (args(&["-bogus-flag", "1"]), "-bogus-flag".into()),
        (args(&["-host-port", "70000", "-container-ip", "127.0.0.1", "-container-port", "1"]), "70000".into()),
        (args(&["-host-port", "1", "-container-ip", "127.0.0.300", "-container-port", "1"]), "127.0.0.300".into()),
        (args(&["--map", "127.0.0.1:80:127.0.0.1"]), "127.0.0.1:80:127.0.0.1".into()),
        (args(&["--map", "127.0.0.1:10-20:127.0.0.1:10-21"]), "differ in length".into()),
        (
            args(&["--map", "0.0.0.0:5000:127.0.0.1:1", "--map", "127.0.0.1:4990-5010:127.0.0.1:4990-5010"]),
            "overlap".into(),
        ),
        (args(&["--map", &format!("127.0.0.1:{tport}:127.0.0.1:1")]), format!("127.0.0.1:{tport}")),
        (
            args(&["-proto", "sctp", "-host-port", "1", "-container-ip", "127.0.0.1", "-container-port", "1"]),
            "sctp".into(),
        ),
    ];
    for (a, want) in cases {
        let out = run(Command::new(bin("proxy")).args(&a), Duration::from_secs(10));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{a:?}: status {:?}, stderr {err}", out.status);
        let first = err.lines().next().unwrap_or("");
        assert!(first.contains(&want), "{a:?}: first stderr line {first:?} does not name {want:?}");
    }
    let out = run(Command::new(bin("proxy")).arg("-v"), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("version"), "{}", text(&out.stdout));
}

/// Brings `lo` up in the current network namespace.
fn loopback_up() {
    // SAFETY: a socket and two ioctls on a zeroed, named ifreq.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        assert!(s >= 0, "socket");
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, c) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *c as libc::c_char;
        }
        assert_eq!(libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr), 0, "SIOCGIFFLAGS lo");
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        assert_eq!(libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr), 0, "SIOCSIFFLAGS lo");
        libc::close(s);
    }
}

#[test]
fn netns_dials_the_backend_inside_the_namespace() {
    // A backend on 127.0.0.1:B in a fresh network namespace answers "netns";
    // one on the host's 127.0.0.1:B answers "host".
    fn say_netns(mut c: TcpStream) {
        let _ = c.write_all(b"netns");
    }
    fn say_host(mut c: TcpStream) {
        let _ = c.write_all(b"host");
    }
    let host = Server::start("127.0.0.1:0", say_host);
    let bport = host.port();
    let (tx, rx) = mpsc::channel::<(String, TcpListener, UdpSocket)>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let ns_thread = std::thread::spawn(move || {
        // SAFETY: unshare moves only this thread into a new network namespace.
        assert_eq!(
            unsafe { libc::unshare(libc::CLONE_NEWNET) },
            0,
            "unshare(CLONE_NEWNET): {}",
            io::Error::last_os_error()
        );
        loopback_up();
        let l = TcpListener::bind(("127.0.0.1", bport)).expect("bind inside the namespace");
        let u = UdpSocket::bind(("127.0.0.1", bport)).expect("bind UDP inside the namespace");
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let _ = tx.send((format!("/proc/{}/task/{tid}/ns/net", std::process::id()), l, u));
        // Keep the thread (and its namespace path) until the test ends.
        let _ = stop_rx.recv_timeout(Duration::from_secs(60));
    });
    let (path, l, u) = rx.recv_timeout(Duration::from_secs(10)).expect("namespace thread");
    let inside = Server::on(l, say_netns);
    // A UDP backend in the namespace answers each datagram (for a bounded time).
    let udp_stop = Arc::new(AtomicBool::new(false));
    let stop = udp_stop.clone();
    let udp_backend = std::thread::spawn(move || {
        u.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let mut buf = [0u8; 64];
        let t0 = Instant::now();
        while !stop.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(60) {
            if let Ok((_, from)) = u.recv_from(&mut buf) {
                let _ = u.send_to(b"netns udp", from);
            }
        }
    });
    let (port, uport) = (free_tcp_port(), free_udp_port());
    // Two threads: the main one enters the namespace after binding, the worker
    // it starts dials from there too.
    let p = start(&args(&[
        "--threads",
        "2",
        "--netns",
        &path,
        "--map",
        &format!("127.0.0.1:{port}:127.0.0.1:{bport}"),
        "--map",
        &format!("127.0.0.1:{uport}:127.0.0.1:{bport}/udp"),
    ]));
    for _ in 0..3 {
        // Two at once, so one is dialled by the worker.
        let mut cs = [connect(&format!("127.0.0.1:{port}")), connect(&format!("127.0.0.1:{port}"))];
        for c in &mut cs {
            let mut s = String::new();
            c.read_to_string(&mut s).expect("read");
            assert_eq!(s, "netns", "the backend was dialled outside the namespace");
        }
    }
    assert_eq!(threads(p.child.id()), 2, "a worker served connections");
    let client = UdpSocket::bind("127.0.0.1:0").expect("udp client");
    client.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    client.send_to(b"hi", ("127.0.0.1", uport)).expect("send");
    let mut buf = [0u8; 64];
    let n = client.recv(&mut buf).expect("a UDP reply from the backend inside the namespace");
    assert_eq!(&buf[..n], b"netns udp");
    // The listener itself is in the host namespace.
    let mut direct = connect(&format!("127.0.0.1:{bport}"));
    let mut s = String::new();
    direct.read_to_string(&mut s).expect("read");
    assert_eq!(s, "host");
    drop(p);
    drop(inside);
    let _ = stop_tx.send(());
    let _ = ns_thread.join();
    udp_stop.store(true, Ordering::SeqCst);
    let _ = udp_backend.join();

    // A path that is not a namespace fails clearly.
    let out = run(
        Command::new(bin("proxy")).args([
            "--netns",
            "/nonexistent/ns",
            "--map",
            &format!("127.0.0.1:{port}:127.0.0.1:1"),
        ]),
        Duration::from_secs(10),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("/nonexistent/ns"), "{}", text(&out.stderr));
}
