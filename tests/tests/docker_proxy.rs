//! Docker drives skiff's proxy (issue 10): a private dockerd with
//! `--userland-proxy-path <dist>/proxy` and no iptables rules, so a published
//! port reaches the container only through the proxy; busybox httpd in the
//! container, the page fetched through 127.0.0.1.

use skiff_tests::docker::{Dockerd, DockerdOpts};
use skiff_tests::{bin, free_tcp_port, text, wait_until};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One HTTP/1.0 GET of `path` on 127.0.0.1:`port`: (status line, body).
fn http_get(port: u16, path: &str) -> std::io::Result<(String, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
    let mut resp = Vec::new();
    s.take(16 << 20).read_to_end(&mut resp)?;
    let resp = text(&resp);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    Ok((head.lines().next().unwrap_or("").to_string(), body.to_string()))
}

/// Pids of the processes holding a TCP socket listening on 127.0.0.1:`port`.
fn listeners(port: u16) -> Vec<u32> {
    let want = format!("0100007F:{port:04X}");
    let tcp = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 9 && f[1] == want && f[3] == "0A")
        .map(|f| format!("socket:[{}]", f[9]))
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else { continue };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).map(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str())).unwrap_or(false)
        });
        if holds {
            pids.push(pid);
        }
    }
    pids
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

fn cmdline(pid: u32) -> String {
    text(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ")
}

#[test]
fn docker_publish_goes_through_skiff_proxy() {
    let proxy = bin("proxy");
    let d = Dockerd::start(DockerdOpts { userland_proxy_path: Some(proxy.clone()), ..Default::default() });
    let image = d.unique_name("skiff-proxy-busybox");
    d.import_busybox(&image);
    let name = d.unique_name("skiff-proxy-httpd");
    let token = format!("hello-skiff {name}");
    // index.html names this test; big.txt is 1.9 MB the test can rebuild.
    let script = format!(
        "mkdir -p /www && echo '{token}' > /www/index.html && seq 1 300000 > /www/big.txt && exec httpd -f -p 80 -h /www"
    );
    let big: String = (1..=300_000).map(|i| format!("{i}\n")).collect();

    // The port is free when picked; another process may take it before
    // dockerd's proxy binds it, so try a few.
    let mut port = 0;
    let mut last = String::new();
    for _ in 0..5 {
        port = free_tcp_port();
        let publish = format!("127.0.0.1:{port}:80");
        let out = d.docker(&["run", "--detach", "--name", &name, "--publish", &publish, &image, "sh", "-c", &script]);
        if out.status.success() {
            last.clear();
            break;
        }
        last = text(&out.stderr);
        let _ = d.docker(&["rm", "--force", &name]);
        assert!(last.contains("address already in use"), "docker run -p {publish} failed: {last}\ndockerd log:\n{}", d.log_tail(40));
    }
    assert!(last.is_empty(), "no free port after 5 tries: {last}");

    // The page, through the host port: bounded retries while httpd starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        let got = http_get(port, "/");
        if let Ok((status, body)) = &got {
            if status.contains(" 200 ") {
                break (status.clone(), body.clone());
            }
        }
        assert!(Instant::now() < deadline, "no page through 127.0.0.1:{port} within 20 s; last: {got:?}\ndockerd log:\n{}", d.log_tail(40));
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.starts_with("HTTP/1."), "status line {status:?}");
    assert_eq!(body, format!("{token}\n"), "page body through the proxy");

    // What listens on the port is our proxy, started by our dockerd for this
    // container's address on our bridge.
    let pids = listeners(port);
    assert_eq!(pids.len(), 1, "processes listening on 127.0.0.1:{port}: {pids:?}");
    let pid = pids[0];
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("readlink exe of the listener");
    assert_eq!(exe, proxy.canonicalize().expect("canonical proxy path"), "the listener ({}) is not our proxy", cmdline(pid));
    assert_eq!(ppid(pid), Some(d.pid()), "the proxy's parent is our dockerd");
    let args = cmdline(pid);
    let ip = d.docker_ok(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", &name]);
    let ip = ip.trim();
    assert!(ip.starts_with(&d.subnet_prefix()), "container address {ip} on our bridge {}", d.bridge());
    let argv: Vec<&str> = args.split_whitespace().collect();
    let port_s = port.to_string();
    for want in [["-proto", "tcp"], ["-host-ip", "127.0.0.1"], ["-host-port", &port_s], ["-container-ip", ip], ["-container-port", "80"]] {
        assert!(argv.windows(2).any(|w| w == want), "dockerd started the proxy with {argv:?}, without {want:?}");
    }

    // Several requests in a row, each a new connection through the proxy.
    for i in 0..20 {
        let (status, body) = http_get(port, "/").unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert!(status.contains(" 200 "), "request {i}: {status}");
        assert_eq!(body, format!("{token}\n"), "request {i}");
    }

    // Bigger transfers, several at once, byte-exact.
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..3 {
                        let (status, body) = http_get(port, "/big.txt").expect("GET /big.txt");
                        assert!(status.contains(" 200 "), "GET /big.txt: {status}");
                        assert!(body == big, "GET /big.txt: {} bytes, want {}", body.len(), big.len());
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("a /big.txt fetch failed");
        }
    });

    // Removing the container stops the proxy (dockerd sends it SIGINT and
    // waits) and frees the port.
    let started = Instant::now();
    d.docker_ok(&["rm", "--force", &name]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "docker rm -f took {took:?}");
    assert!(
        wait_until(Duration::from_secs(10), || !std::path::Path::new(&format!("/proc/{pid}")).exists()),
        "proxy {pid} still there after docker rm -f: {}",
        cmdline(pid)
    );
    assert!(listeners(port).is_empty(), "127.0.0.1:{port} still listening after docker rm -f");
    assert!(http_get(port, "/").is_err(), "127.0.0.1:{port} still accepts after docker rm -f");
    d.stop();
}
