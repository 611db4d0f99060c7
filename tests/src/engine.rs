//! The engine under test: a private state root with the busybox image
//! imported, its own bridge (`skt<pid>x<n>`) and subnet (10.234.X.0/24, X
//! free on this host), `--iptables=false` (no firewall rule, no ip_forward
//! change). Dropping it removes every container and the bridge.

use crate::{bin, busybox_rootfs, require, run, text, TempDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const T: Duration = Duration::from_secs(60);
const IP: (&str, &str) = ("/usr/sbin/ip", "iproute2");

/// Runs `ip ARGS` (the test's own checks and cleanup only: the engine
/// speaks netlink itself).
pub fn ip(args: &[&str]) -> Output {
    run(Command::new(require(IP.0, IP.1)).args(args), Duration::from_secs(20))
}

/// A 10.234.X.0/24 that no interface or route of this host uses and that
/// no other test of this process took.
fn pick_subnet(seed: usize) -> u8 {
    static TAKEN: Mutex<Vec<u8>> = Mutex::new(Vec::new());
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let used = format!("{}\n{}", text(&ip(&["-4", "-o", "addr", "show"]).stdout), text(&ip(&["-4", "route", "show", "table", "all"]).stdout));
    let x = (0..250)
        .map(|i| ((seed + i) % 250 + 2) as u8)
        .find(|x| !taken.contains(x) && !used.contains(&format!("10.234.{x}.")))
        .expect("no free 10.234.X.0/24 subnet on this host");
    taken.push(x);
    x
}

/// A private engine state root with the busybox image imported and its own
/// bridge and subnet; removes every container and the bridge when dropped.
pub struct Engine {
    pub dir: TempDir,
    pub bridge: String,
    pub x: u8,
}

impl Engine {
    pub fn new(tag: &str) -> Engine {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let bridge = format!("skt{}x{n}", pid % 100_000);
        if Path::new("/sys/class/net").join(&bridge).exists() {
            let _ = ip(&["link", "delete", &bridge]); // a stale one from a killed run with our pid
        }
        let x = pick_subnet(pid as usize * 7 + n as usize * 13);
        let e = Engine { dir: TempDir::new(&format!("eng-{tag}")), bridge, x };
        let tar = e.dir.path().join("busybox.tar");
        let out = run(Command::new("tar").arg("-C").arg(busybox_rootfs()).arg("-cf").arg(&tar).arg("."), T);
        assert!(out.status.success(), "tar: {}", text(&out.stderr));
        let out = e.run(&["import", &tar.to_string_lossy(), "busybox"]);
        assert!(out.status.success(), "import: {}", text(&out.stderr));
        e
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn subnet(&self) -> String {
        format!("10.234.{}.0/24", self.x)
    }

    /// One more free 10.234.X.0/24 (for a user-defined network), reserved
    /// for this process like the engine's own.
    pub fn another_subnet(&self) -> String {
        format!("10.234.{}.0/24", pick_subnet(std::process::id() as usize * 11 + self.x as usize * 17))
    }

    /// The bridges of this root's user-defined networks.
    pub fn network_bridges(&self) -> Vec<String> {
        let dir = self.root().join("network/networks");
        let mut v = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let n: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap_or_default()).unwrap_or_default();
            v.extend(n["config"]["bridge"].as_str().map(String::from));
        }
        v
    }

    pub fn addr(&self, host: u8) -> String {
        format!("10.234.{}.{host}", self.x)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("engine"));
        c.arg("--root").arg(self.root()).args(["--bridge", &self.bridge, "--subnet", &self.subnet(), "--iptables=false"]).args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args), T)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "engine {args:?} failed ({:?}): {}", out.status, text(&out.stderr));
        text(&out.stdout)
    }

    /// The engine's runtime state root (`--root` of the runtime it drives).
    pub fn runtime_root(&self) -> PathBuf {
        self.root().join("runtime")
    }

    /// `engine run FLAGS --network none busybox CMD...`.
    pub fn run_busybox(&self, flags: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--network", "none", "busybox"]);
        args.extend_from_slice(cmd);
        self.run(&args)
    }

    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", name])).expect("inspect JSON");
        v[0].clone()
    }

    pub fn ip_of(&self, name: &str) -> String {
        self.inspect(name)["NetworkSettings"]["IPAddress"].as_str().unwrap_or_default().to_string()
    }

    /// The address table of this root.
    pub fn addresses(&self) -> serde_json::Map<String, serde_json::Value> {
        let p = self.root().join("network/addresses.json");
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t).expect("addresses.json"),
            Err(_) => Default::default(),
        }
    }

    /// Host links that this root's engine made for containers (by alias).
    pub fn veths(&self) -> Vec<String> {
        let prefix = format!("skiff:{}/", self.root().join("containers").display());
        let mut v = Vec::new();
        for e in std::fs::read_dir("/sys/class/net").into_iter().flatten().flatten() {
            let alias = std::fs::read_to_string(e.path().join("ifalias")).unwrap_or_default();
            if alias.starts_with(&prefix) {
                v.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        v
    }

    pub fn remove_all(&self) {
        let out = run(&mut self.cmd(&["ps", "-aq"]), T);
        for id in text(&out.stdout).split_whitespace() {
            let _ = run(&mut self.cmd(&["rm", "-f", id]), T);
        }
    }

    /// Removes every container and checks nothing is left on the host.
    pub fn assert_clean(&self) {
        self.remove_all();
        assert!(self.addresses().is_empty(), "addresses left: {:?}", self.addresses());
        // the kernel deletes a veth when its namespace dies, asynchronously
        let slaves = || std::fs::read_dir(Path::new("/sys/class/net").join(&self.bridge).join("brif")).map(|d| d.count()).unwrap_or(0);
        crate::wait_until(Duration::from_secs(10), || self.veths().is_empty() && slaves() == 0);
        assert!(self.veths().is_empty(), "veths left: {:?}", self.veths());
        assert_eq!(slaves(), 0, "ports left on {}", self.bridge);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.remove_all();
        for b in self.network_bridges() {
            let _ = ip(&["link", "delete", &b]);
        }
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            let _ = ip(&["link", "delete", &self.bridge]);
        }
        assert!(std::thread::panicking() || !Path::new("/sys/class/net").join(&self.bridge).exists(), "bridge {} left", self.bridge);
    }
}

/// GET / from `addr:port`, retried until `deadline`.
pub fn fetch(addr: &str, port: u16) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let sa = std::net::SocketAddr::new(addr.parse().expect("address"), port);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect_timeout(&sa, Duration::from_secs(2)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok() {
                let mut body = String::new();
                if s.read_to_string(&mut body).is_ok() && body.starts_with("HTTP/") {
                    return Some(body);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

