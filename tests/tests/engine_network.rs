//! engine's networking end to end through the dist binaries: the bridge
//! (veth pairs, addresses from the file-locked allocator, /etc/hosts,
//! default route), `-p` over it, and the none / host / container:X modes.
//!
//! Every test owns its bridge (`skt<pid>x<n>`) and subnet (10.234.X.0/24,
//! X free on this host), runs the engine with `--iptables=false` (no
//! firewall rule, no ip_forward change), deletes its bridge at the end, and
//! sends traffic only to loopback and to its containers' addresses.

use skiff_tests::engine::{fetch, ip, Engine, T};
use skiff_tests::{bin, free_tcp_port, require, run, text, wait_until, TempDir};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether an /etc/hosts text names `name` (a whole word: hostnames are
/// hex ids, which can hold a short name such as "db" or "fa").
fn names(hosts: &str, name: &str) -> bool {
    hosts.split_whitespace().any(|w| w == name)
}

const HTTPD: [&str; 7] = ["busybox", "httpd", "-f", "-p", "80", "-h", "/var/www"];

fn httpd(e: &Engine, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&HTTPD);
    e.ok(&args).trim().to_string()
}

#[test]
fn bridge_containers_reach_each_other_and_the_host_reaches_them() {
    let e = Engine::new("bridge");
    let a = httpd(&e, "web-a", &[]);
    let b = httpd(&e, "web-b", &[]);
    let (ia, ib) = (e.ip_of("web-a"), e.ip_of("web-b"));
    assert_ne!(ia, ib);
    for i in [&ia, &ib] {
        let ip: Ipv4Addr = i.parse().unwrap_or_else(|_| panic!("bad address {i:?}"));
        assert_eq!(ip.octets()[..3], [10, 234, e.x], "{ip} outside {}", e.subnet());
        assert!(ip.octets()[3] >= 2, "{ip} is the network or the gateway");
    }
    let info = e.inspect("web-a");
    let ns = &info["NetworkSettings"];
    assert_eq!(ns["Gateway"], e.addr(1));
    assert_eq!(ns["IPPrefixLen"], 24);
    assert_eq!(ns["Networks"]["bridge"]["IPAddress"], ia.as_str());
    assert_eq!(ns["Networks"]["bridge"]["Gateway"], e.addr(1));
    // The bridge is up with the gateway address; the host ends are its ports.
    let br = text(&ip(&["-4", "-o", "addr", "show", "dev", &e.bridge]).stdout);
    assert!(br.contains(&format!("{}/24", e.addr(1))), "{br}");
    for id in [&a, &b] {
        let veth = format!("vsk{}", &id[..8]);
        let master = std::fs::read_link(format!("/sys/class/net/{veth}/master")).unwrap_or_else(|err| panic!("{veth}: {err}"));
        assert!(master.ends_with(&e.bridge), "{veth} is attached to {master:?}");
    }
    // Inside: eth0 with the address, default route via the gateway, own
    // hostname and the other container's name in /etc/hosts.
    let out = e.ok(&["exec", "web-a", "sh", "-c", "ip -4 -o addr show eth0; ip route; cat /etc/hosts; hostname"]);
    assert!(out.contains(&format!("inet {ia}/24")), "{out}");
    assert!(out.contains(&format!("default via {}", e.addr(1))), "{out}");
    let hostname = out.lines().last().unwrap_or_default().to_string();
    assert!(out.lines().any(|l| l.starts_with(&format!("{ia}\t")) && l.contains(&hostname)), "own line missing: {out}");
    assert!(out.lines().any(|l| l.starts_with(&format!("{ib}\t")) && l.contains("web-b")), "web-b missing: {out}");
    // Container <-> container, by address and by name, both ways.
    e.ok(&["exec", "web-b", "ping", "-c1", "-W2", &ia]);
    let page = e.ok(&["exec", "web-b", "wget", "-q", "-O-", &format!("http://{ia}/")]);
    assert!(page.contains("hello from skiff busybox"), "{page}");
    let page = e.ok(&["exec", "web-a", "wget", "-q", "-O-", "http://web-b/"]);
    assert!(page.contains("hello from skiff busybox"), "{page}");
    // A third container started later is known to the first ones, and
    // forgotten when removed.
    e.ok(&["run", "--rm", "--name", "client", "busybox", "wget", "-q", "-O-", "http://web-a/"]);
    assert!(!e.ok(&["exec", "web-a", "cat", "/etc/hosts"]).contains("client"));
    e.ok(&["run", "-d", "--name", "late", "busybox", "sleep", "60"]);
    e.ok(&["exec", "web-a", "ping", "-c1", "-W2", "late"]);
    e.ok(&["rm", "-f", "late"]);
    assert!(!e.ok(&["exec", "web-a", "cat", "/etc/hosts"]).contains("late"));
    // Host -> container over the bridge.
    let page = fetch(&ia, 80).expect("the host reaches web-a at its bridge address");
    assert!(page.contains("hello from skiff busybox"), "{page}");
    // No NAT asked for: the engine says so.
    let info = e.ok(&["info"]);
    assert!(info.contains(&format!("bridge {}", e.bridge)) && info.contains("Outbound NAT: none"), "{info}");
    e.assert_clean();
}

#[test]
fn publish_works_with_the_bridge_and_with_none() {
    let e = Engine::new("publish");
    for (name, mode) in [("pub-bridge", "bridge"), ("pub-none", "none")] {
        let port = free_tcp_port();
        httpd(&e, name, &["--init", "--network", mode, "-p", &format!("127.0.0.1:{port}:80")]);
        let page = fetch("127.0.0.1", port).unwrap_or_else(|| panic!("{mode}: no page through 127.0.0.1:{port}"));
        assert!(page.contains("hello from skiff busybox"), "{page}");
        assert_eq!(e.ok(&["port", name]).trim(), format!("80/tcp -> 127.0.0.1:{port}"));
        e.ok(&["rm", "-f", name]);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "{mode}: the proxy still listens after rm");
    }
    e.assert_clean();
}

#[test]
fn none_has_only_loopback_and_host_sees_the_host() {
    let e = Engine::new("modes");
    // A bridged container first, so that the test's bridge exists.
    e.ok(&["run", "-d", "--name", "anchor", "busybox", "sleep", "60"]);
    let out = e.ok(&["run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net; ip route"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["lo"], "none: {out}");
    assert!(e.addresses().len() == 1, "none took an address: {:?}", e.addresses());
    assert_eq!(e.inspect("anchor")["HostConfig"]["NetworkMode"], "bridge");
    let out = e.ok(&["run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net"]);
    let names: BTreeSet<&str> = out.split_whitespace().collect();
    assert!(names.contains(e.bridge.as_str()), "host mode does not see {}: {out}", e.bridge);
    assert!(names.contains("lo") && names.len() >= 2, "{out}");
    let out = e.run(&["run", "--rm", "--network", "nosuch", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("network nosuch not found"), "{}", text(&out.stderr));
    // docker's network ls / inspect: the bridge with its subnet, gateway and containers.
    assert_eq!(e.ok(&["network", "ls", "--format", "{{.Name}}"]), "bridge\nhost\nnone\n");
    let net = e.ok(&["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}} {{range .Containers}}{{.Name}}{{end}}", "bridge"]);
    assert_eq!(net.trim(), format!("{} {} anchor", e.subnet(), e.addr(1)));
    e.ok(&["rm", "-f", "anchor"]);
    e.assert_clean();
}

#[test]
fn container_mode_shares_the_address() {
    let e = Engine::new("join");
    httpd(&e, "target", &[]);
    let ia = e.ip_of("target");
    e.ok(&["run", "-d", "--name", "joiner", "--network", "container:target", "busybox", "sleep", "60"]);
    let out = e.ok(&["exec", "joiner", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(out.contains(&format!("inet {ia}/24")), "{out}");
    // The target's /etc/hosts, kept up to date as containers come and go.
    e.ok(&["run", "-d", "--name", "later", "busybox", "sleep", "60"]);
    let hosts = e.ok(&["exec", "joiner", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ia}\t")) && hosts.contains("later"), "{hosts}");
    e.ok(&["exec", "joiner", "ping", "-c1", "-W2", "later"]);
    e.ok(&["rm", "-f", "later"]);
    // Same namespace: the target's httpd is on the joiner's loopback.
    let page = e.ok(&["exec", "joiner", "wget", "-q", "-O-", "http://127.0.0.1/"]);
    assert!(page.contains("hello from skiff busybox"), "{page}");
    let info = e.inspect("joiner");
    assert!(info["HostConfig"]["NetworkMode"].as_str().unwrap().starts_with("container:"), "{info}");
    assert_eq!(info["NetworkSettings"]["SandboxKey"], e.inspect("target")["NetworkSettings"]["SandboxKey"]);
    assert_eq!(e.addresses().len(), 1, "the joiner took an address: {:?}", e.addresses());
    assert_eq!(info["NetworkSettings"]["Networks"], serde_json::json!({}));
    let out = e.run(&["run", "--rm", "--network", "container:target", "-p", "80", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    let out = e.run(&["run", "--rm", "--network", "container:nosuch", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("No such container: nosuch"), "{}", text(&out.stderr));
    e.assert_clean();
}

#[test]
fn addresses_are_distinct_released_on_rm_and_reused() {
    let e = Engine::new("ipam");
    httpd(&e, "first", &[]);
    e.ok(&["run", "-d", "--name", "second", "busybox", "sleep", "60"]);
    assert_eq!((e.ip_of("first"), e.ip_of("second")), (e.addr(2), e.addr(3)));
    assert!(fetch(&e.addr(2), 80).is_some_and(|p| p.contains("hello")));
    e.ok(&["rm", "-f", "first"]);
    assert_eq!(e.addresses().len(), 1, "{:?}", e.addresses());
    assert!(!e.addresses().contains_key(&e.addr(2)), "not released: {:?}", e.addresses());
    // The lowest free address again; the host still reaches it (the MAC
    // comes from the address, so no neighbour entry went stale).
    httpd(&e, "third", &[]);
    assert_eq!(e.ip_of("third"), e.addr(2));
    assert!(fetch(&e.addr(2), 80).is_some_and(|p| p.contains("hello")), "the reused address is unreachable");
    e.ok(&["exec", "second", "ping", "-c1", "-W2", "third"]);
    e.assert_clean();
}

#[test]
fn parallel_runs_get_distinct_addresses() {
    let e = Engine::new("par");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let mut c = e.cmd(&["run", "-d", "busybox", "sleep", "60"]);
            std::thread::spawn(move || run(&mut c, T))
        })
        .collect();
    let mut ids = Vec::new();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        ids.push(text(&out.stdout).trim().to_string());
    }
    let addrs: BTreeSet<String> = ids.iter().map(|id| e.ip_of(id)).collect();
    assert_eq!(addrs.len(), 8, "{addrs:?}");
    assert_eq!(e.addresses().len(), 8);
    assert_eq!(e.veths().len(), 8, "{:?}", e.veths());
    // Each reaches the next one.
    let first = addrs.iter().next().unwrap().clone();
    e.ok(&["exec", &ids[7], "ping", "-c1", "-W2", &first]);
    let handles: Vec<_> = ids
        .iter()
        .map(|id| {
            let mut c = e.cmd(&["rm", "-f", id]);
            std::thread::spawn(move || run(&mut c, T))
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    e.assert_clean();
}

#[test]
fn a_killed_engine_leaves_nothing_that_ps_and_rm_do_not_repair() {
    let e = Engine::new("crash");
    e.ok(&["run", "-d", "--name", "keep", "busybox", "sleep", "60"]);
    // SIGKILL `run` at points spread over its course (~50-150 ms).
    for i in 0..10u64 {
        let mut child = e.cmd(&["run", "-d", "busybox", "sleep", "60"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(2 + i * 12));
        let _ = child.kill();
        let _ = child.wait();
    }
    // Leftovers as of an engine killed mid-rm: an address and a veth whose
    // container record is gone.
    let ghost = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let table = e.root().join("network/addresses.json");
    let mut t = e.addresses();
    t.insert(e.addr(200), ghost.into());
    std::fs::write(&table, serde_json::to_string(&t).unwrap()).unwrap();
    let ghost_veth = "vsk01234567";
    let out = ip(&["link", "add", ghost_veth, "type", "veth", "peer", "name", "vskghostpeer"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let alias = format!("skiff:{}", e.root().join("containers").join(ghost).display());
    let out = ip(&["link", "set", ghost_veth, "alias", &alias]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    e.ok(&["ps", "-a"]);
    assert!(!Path::new("/sys/class/net").join(ghost_veth).exists(), "ps left the ghost veth");
    assert!(!e.addresses().contains_key(&e.addr(200)), "ps left the ghost address");
    // What remains belongs to containers that exist (created or running);
    // rm -f takes the rest.
    let ids: BTreeSet<String> = e.ok(&["ps", "-aq"]).split_whitespace().map(String::from).collect();
    for id in e.addresses().values() {
        assert!(ids.iter().any(|i| id.as_str().unwrap().starts_with(i)), "address of a missing container {id}");
    }
    // The survivor is untouched: it still reaches the gateway.
    e.ok(&["exec", "keep", "ping", "-c1", "-W2", &e.addr(1)]);
    e.assert_clean();
}

#[test]
fn network_config_is_stored_and_checked() {
    let e = Engine::new("config");
    e.ok(&["run", "--rm", "busybox", "true"]);
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(e.root().join("network/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["bridge"], e.bridge.as_str());
    assert_eq!(cfg["subnet"], e.subnet().as_str());
    assert_eq!(cfg["iptables"], false);
    // Later commands without the flags use the stored config.
    let out = run(Command::new(bin("engine")).arg("--root").arg(e.root()).arg("info"), T);
    let info = text(&out.stdout);
    assert!(info.contains(&format!("bridge {} (subnet {}", e.bridge, e.subnet())) && info.contains("Outbound NAT: none"), "{info}");
    // A flag that disagrees is a clear error.
    let out = run(Command::new(bin("engine")).arg("--root").arg(e.root()).args(["--subnet", "10.234.255.0/24", "ps"]), T);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("does not match"), "{}", text(&out.stderr));
    let other = TempDir::new("net-badcfg");
    for (flag, value, msg) in [("--subnet", "10.234.1.1/24", "invalid subnet"), ("--bridge", "a-very-long-bridge-name", "invalid bridge name")] {
        let out = run(Command::new(bin("engine")).arg("--root").arg(other.path()).args([flag, value, "ps"]), T);
        assert_eq!(out.status.code(), Some(125));
        assert!(text(&out.stderr).contains(msg), "{}", text(&out.stderr));
    }
    e.assert_clean();
}

/// Outbound NAT, proven where it cannot touch the host: the engine runs in
/// a private network namespace (its bridge, iptables rules and ip_forward
/// live and die there) with an "outside" namespace behind a veth that has
/// no route back to the containers. A container reaches the outside only
/// through MASQUERADE; a second engine with --iptables=false does not.
#[test]
fn outbound_nat_in_a_private_network_namespace() {
    let unshare = require("/usr/bin/unshare", "util-linux");
    require("/usr/bin/nsenter", "util-linux");
    require("/usr/sbin/iptables", "iptables");
    let (nat, plain) = (Engine::new("nat"), Engine::new("nonat"));
    let engine = |e: &Engine, iptables: bool| {
        format!(
            "{} --root {} --bridge {} --subnet {}{}",
            bin("engine").display(),
            e.root().display(),
            e.bridge,
            e.subnet(),
            if iptables { "" } else { " --iptables=false" }
        )
    };
    let script = format!(
        r#"
ip link set lo up
unshare --net sleep 30 &
OUT=$!
i=0; while [ "$(readlink /proc/$OUT/ns/net)" = "$(readlink /proc/self/ns/net)" ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i+1)); done
ip link add up0 type veth peer name up1 && ip link set up1 netns $OUT || echo SETUP_FAILED
ip addr add 192.0.2.1/24 dev up0 && ip link set up0 up || echo SETUP_FAILED
nsenter -t $OUT -n sh -c 'ip link set lo up; ip addr add 192.0.2.2/24 dev up1; ip link set up1 up' || echo SETUP_FAILED
{nat} info | grep 'Outbound NAT'
{nat} run --rm busybox ping -c1 -W2 192.0.2.2 >/dev/null && echo NAT_REACHED || echo NAT_FAILED
iptables -w -t nat -S POSTROUTING
echo forward=$(cat /proc/sys/net/ipv4/ip_forward)
{plain} run --rm busybox ping -c1 -W2 192.0.2.2 >/dev/null 2>&1 && echo PLAIN_REACHED || echo PLAIN_FAILED
kill $OUT
"#,
        nat = engine(&nat, true),
        plain = engine(&plain, false)
    );
    let before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let out = run(Command::new(unshare).args(["--net", "sh", "-c", &script]), T);
    let o = text(&out.stdout) + &text(&out.stderr);
    assert!(!o.contains("SETUP_FAILED"), "{o}");
    assert!(o.contains("Outbound NAT: iptables"), "{o}");
    assert!(o.contains(&format!("-A POSTROUTING -s {} ! -o {} -j MASQUERADE", nat.subnet(), nat.bridge)), "{o}");
    assert!(o.contains("forward=1"), "{o}");
    assert!(o.contains("NAT_REACHED"), "the container did not get out through NAT: {o}");
    assert!(o.contains("PLAIN_FAILED"), "without NAT the outside should not answer: {o}");
    // Nothing of it reached the host.
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(), before);
    for e in [&nat, &plain] {
        assert!(!Path::new("/sys/class/net").join(&e.bridge).exists(), "{} appeared on the host", e.bridge);
        let ps = run(Command::new(bin("engine")).arg("--root").arg(e.root()).args(["ps", "-aq"]), T);
        assert!(ps.status.success() && text(&ps.stdout).trim().is_empty(), "{}{}", text(&ps.stdout), text(&ps.stderr));
        assert!(e.addresses().is_empty(), "{:?}", e.addresses());
    }
}

/// User-defined networks: `network create --subnet` makes a bridge of its
/// own when its first container starts; containers on it reach each other
/// by name, and the default bridge's containers do not know them (nor
/// they those); inspect, ls, -p, and `network rm` (refused while in use,
/// then the bridge is gone); bad names and subnets are refused.
#[test]
fn user_defined_networks() {
    let e = Engine::new("usernet");
    let subnet = e.another_subnet();
    let id = e.ok(&["network", "create", "--subnet", &subnet, "--label", "tier=front", "front"]).trim().to_string();
    assert_eq!(id.len(), 64, "network create prints the id: {id}");
    assert!(e.ok(&["network", "ls"]).lines().any(|l| l.contains(&id[..12]) && l.contains("front") && l.contains("bridge")));
    let net: serde_json::Value = serde_json::from_str(&e.ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(net[0]["IPAM"]["Config"][0]["Subnet"], subnet.as_str(), "{net}");
    assert_eq!(net[0]["Labels"]["tier"], "front");
    let bridge = net[0]["Options"]["com.docker.network.bridge.name"].as_str().unwrap().to_string();

    let port = free_tcp_port();
    httpd(&e, "fa", &["--network", "front", "-p", &format!("127.0.0.1:{port}:80")]);
    e.ok(&["run", "-d", "--name", "fb", "--network", "front", "busybox", "sleep", "60"]);
    e.ok(&["run", "-d", "--name", "dc", "busybox", "sleep", "60"]);
    let ia = e.ip_of("fa");
    let prefix = subnet.trim_end_matches("0/24");
    assert!(ia.starts_with(prefix), "{ia} is not in {subnet}");
    assert_eq!(e.inspect("fa")["NetworkSettings"]["Networks"]["front"]["IPAddress"], ia.as_str());
    let master = std::fs::read_link(format!("/sys/class/net/vsk{}/master", &e.inspect("fa")["Id"].as_str().unwrap()[..8])).unwrap();
    assert!(master.ends_with(&bridge), "fa is on {master:?}, not {bridge}");
    // by name inside the network, both ways; the default bridge's container is not listed
    let page = e.ok(&["exec", "fb", "wget", "-q", "-O-", "http://fa/"]);
    assert!(page.contains("hello from skiff busybox"), "{page}");
    e.ok(&["exec", "fa", "ping", "-c1", "-W2", "fb"]);
    let hosts = e.ok(&["exec", "fa", "cat", "/etc/hosts"]);
    assert!(names(&hosts, "fb") && !names(&hosts, "dc"), "{hosts}");
    let hosts = e.ok(&["exec", "dc", "cat", "/etc/hosts"]);
    assert!(!names(&hosts, "fa") && !names(&hosts, "fb"), "{hosts}");
    assert!(fetch("127.0.0.1", port).is_some_and(|p| p.contains("hello from skiff busybox")), "-p on a user-defined network");
    let inspect: serde_json::Value = serde_json::from_str(&e.ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(inspect[0]["Containers"].as_object().map(|c| c.len()), Some(2), "{inspect}");
    // --ip and --network-alias on it
    let fixed = format!("{prefix}50");
    e.ok(&["run", "-d", "--name", "fc", "--network", "front", "--ip", &fixed, "--network-alias", "cache", "--network-alias", "kv", "busybox", "sleep", "60"]);
    assert_eq!(e.ip_of("fc"), fixed);
    e.ok(&["exec", "fa", "ping", "-c1", "-W2", "kv"]);
    assert!(e.ok(&["exec", "fb", "cat", "/etc/hosts"]).lines().any(|l| l.starts_with(&format!("{fixed}\t")) && l.ends_with(" cache kv")));
    let out = e.run(&["run", "--rm", "--network", "front", "--ip", &fixed, "busybox", "true"]);
    assert!(!out.status.success() && text(&out.stderr).contains("Address already in use"), "{}", text(&out.stderr));
    for (flag, value, want) in [("--ip", "10.234.0.9", "user defined networks only"), ("--network-alias", "x", "user defined networks")] {
        let out = e.run(&["run", "--rm", flag, value, "busybox", "true"]);
        assert!(!out.status.success() && text(&out.stderr).contains(want), "{flag}: {}", text(&out.stderr));
    }

    let out = e.run(&["network", "rm", "front"]);
    assert!(!out.status.success() && text(&out.stderr).contains("active endpoints"), "{}", text(&out.stderr));
    e.ok(&["rm", "-f", "fa", "fb", "fc", "dc"]);
    e.ok(&["network", "rm", "front"]);
    assert!(!Path::new("/sys/class/net").join(&bridge).exists(), "{bridge} left after network rm");
    assert!(!e.ok(&["network", "ls"]).contains("front"));

    for (args, want) in [
        (vec!["network", "create", "bridge"], "reserved"),
        (vec!["network", "create", "bad/name"], "invalid network name"),
        (vec!["network", "create", "--subnet", &e.subnet(), "clash"], "overlaps"),
        (vec!["network", "create", "--driver", "overlay", "ov"], "not supported"),
        (vec!["network", "rm", "nosuch"], "not found"),
        (vec!["run", "--rm", "--network", "nosuch", "busybox", "true"], "network nosuch not found"),
    ] {
        let out = e.run(&args);
        assert!(!out.status.success() && text(&out.stderr).contains(want), "{args:?}: {}", text(&out.stderr));
    }
    e.ok(&["network", "create", "--subnet", &subnet, "twice"]);
    let out = e.run(&["network", "create", "twice"]);
    assert!(!out.status.success() && text(&out.stderr).contains("already exists"), "{}", text(&out.stderr));
    assert_eq!(e.ok(&["network", "prune", "-f"]).trim(), "Deleted Networks:\ntwice");
    e.ok(&["network", "create", "--subnet", &subnet, "idle"]);
    assert!(e.ok(&["system", "prune", "-f"]).contains("Deleted Networks:\nidle\n"));
    assert!(!e.ok(&["network", "ls"]).contains("idle"));
    e.assert_clean();
}

/// With iptables (in a private network namespace, so the host's firewall
/// is untouched), user-defined networks are isolated as docker's are: a
/// container reaches its own network's containers but not the default
/// bridge's, although the host routes between them (ip_forward is on);
/// `network rm` takes its rules away.
#[test]
fn networks_are_isolated_from_each_other_with_iptables() {
    let unshare = require("/usr/bin/unshare", "util-linux");
    require("/usr/sbin/iptables", "iptables");
    let e = Engine::new("isolate");
    let eng = format!("{} --root {} --bridge {} --subnet {}", bin("engine").display(), e.root().display(), e.bridge, e.subnet());
    let script = format!(
        r#"
ip link set lo up
{eng} network create --subnet {front} front >/dev/null || echo SETUP_FAILED
{eng} run -d --name dc busybox sleep 30 >/dev/null || echo SETUP_FAILED
{eng} run -d --name fa --network front busybox sleep 30 >/dev/null || echo SETUP_FAILED
{eng} run -d --name fb --network front busybox sleep 30 >/dev/null || echo SETUP_FAILED
DC=$({eng} inspect -f '{{{{.NetworkSettings.IPAddress}}}}' dc)
echo forward=$(cat /proc/sys/net/ipv4/ip_forward)
{eng} exec fa ping -c1 -W2 fb >/dev/null && echo SAME_REACHED || echo SAME_FAILED
{eng} exec fa ping -c1 -W1 $DC >/dev/null 2>&1 && echo CROSS_REACHED || echo CROSS_BLOCKED
{eng} exec dc ping -c1 -W1 $({eng} inspect -f '{{{{.NetworkSettings.IPAddress}}}}' fb) >/dev/null 2>&1 && echo BACK_REACHED || echo BACK_BLOCKED
{eng} rm -f dc fa fb >/dev/null
{eng} network rm front >/dev/null || echo RM_FAILED
echo drops=$(iptables -w -S FORWARD | grep -c DROP)
"#,
        front = e.another_subnet()
    );
    let out = run(Command::new(unshare).args(["--net", "sh", "-c", &script]), T);
    let o = text(&out.stdout) + &text(&out.stderr);
    for want in ["forward=1", "SAME_REACHED", "CROSS_BLOCKED", "BACK_BLOCKED", "drops=0"] {
        assert!(o.contains(want), "{want} missing: {o}");
    }
    assert!(!o.contains("SETUP_FAILED") && !o.contains("RM_FAILED"), "{o}");
    assert!(e.addresses().is_empty(), "{:?}", e.addresses());
    assert!(e.network_bridges().is_empty());
}

/// network connect / disconnect: a container joins a second network (eth1,
/// an address there, by name both ways, with --alias), live and on a
/// stopped container (--ip, kept across start); disconnect takes it all
/// back; a network in use by a connected container is not removed.
#[test]
fn connect_and_disconnect() {
    let e = Engine::new("connect");
    let (s1, s2) = (e.another_subnet(), e.another_subnet());
    e.ok(&["network", "create", "--subnet", &s1, "front"]);
    e.ok(&["network", "create", "--subnet", &s2, "back"]);
    for (name, net) in [("api", "front"), ("web", "front"), ("db", "back")] {
        e.ok(&["run", "-d", "--name", name, "--network", net, "busybox", "sleep", "120"]);
    }
    let hosts = |c: &str| e.ok(&["exec", c, "cat", "/etc/hosts"]);
    assert!(!names(&hosts("api"), "db"));
    e.ok(&["network", "connect", "--alias", "apiback", "back", "api"]);
    let addrs = e.ok(&["exec", "api", "ip", "-4", "-o", "addr", "show"]);
    let back_prefix = s2.trim_end_matches("0/24");
    assert!(addrs.lines().any(|l| l.contains("eth1") && l.contains(&format!("inet {back_prefix}"))), "{addrs}");
    e.ok(&["exec", "api", "ping", "-c1", "-W2", "db"]);
    e.ok(&["exec", "db", "ping", "-c1", "-W2", "apiback"]);
    assert!(!names(&hosts("web"), "db"), "web is not on back");
    let info = e.inspect("api");
    assert!(info["NetworkSettings"]["Networks"]["back"]["IPAddress"].as_str().is_some_and(|a| a.starts_with(back_prefix)), "{info}");
    assert!(info["NetworkSettings"]["Networks"]["front"]["IPAddress"].is_string(), "{info}");
    let net: serde_json::Value = serde_json::from_str(&e.ok(&["network", "inspect", "back"])).unwrap();
    assert_eq!(net[0]["Containers"].as_object().map(|c| c.len()), Some(2), "{net}");
    let out = e.run(&["network", "connect", "back", "api"]);
    assert!(!out.status.success() && text(&out.stderr).contains("already exists"), "{}", text(&out.stderr));
    let out = e.run(&["network", "rm", "back"]);
    assert!(!out.status.success() && text(&out.stderr).contains("api"), "{}", text(&out.stderr));

    e.ok(&["network", "disconnect", "back", "api"]);
    assert!(!e.ok(&["exec", "api", "ls", "/sys/class/net"]).contains("eth1"));
    assert!(!names(&hosts("db"), "api") && !names(&hosts("api"), "db"));
    let out = e.run(&["network", "disconnect", "back", "api"]);
    assert!(!out.status.success() && text(&out.stderr).contains("not connected"), "{}", text(&out.stderr));
    let out = e.run(&["network", "disconnect", "front", "api"]);
    assert!(!out.status.success() && text(&out.stderr).contains("created with"), "{}", text(&out.stderr));

    // a stopped container: connected now, its address there when it starts
    e.ok(&["stop", "-t", "0", "web"]);
    let fixed = format!("{back_prefix}77");
    e.ok(&["network", "connect", "--ip", &fixed, "back", "web"]);
    e.ok(&["start", "web"]);
    assert!(e.ok(&["exec", "web", "ip", "-4", "-o", "addr", "show", "eth1"]).contains(&format!("inet {fixed}/24")));
    e.ok(&["exec", "web", "ping", "-c1", "-W2", "db"]);
    e.ok(&["rm", "-f", "api", "web", "db"]);
    e.ok(&["network", "rm", "front", "back"]);
    assert!(e.addresses().is_empty(), "{:?}", e.addresses());
    e.assert_clean();
}

/// After a reboot (here: the shim and process killed, the namespace
/// unmounted, the bridges deleted), `restore` brings a container back on
/// its user-defined network and on the one it was connected to, with the
/// same addresses.
#[test]
fn restore_rejoins_every_network() {
    let e = Engine::new("netrestore");
    let (s1, s2) = (e.another_subnet(), e.another_subnet());
    e.ok(&["network", "create", "--subnet", &s1, "front"]);
    e.ok(&["network", "create", "--subnet", &s2, "back"]);
    let id = e.ok(&["run", "-d", "--restart", "always", "--name", "keeper", "--network", "front", "busybox", "sleep", "120"]).trim().to_string();
    e.ok(&["network", "connect", "back", "keeper"]);
    let addrs = || e.ok(&["exec", "keeper", "ip", "-4", "-o", "addr", "show"]).lines().filter(|l| l.contains(" eth")).map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" ")).collect::<Vec<_>>();
    let before = addrs();
    assert_eq!(before.len(), 2, "{before:?}");
    let dir = e.root().join("containers").join(&id);
    let shim: i32 = std::fs::read_to_string(dir.join("shim.pid")).unwrap().trim().parse().unwrap();
    let pid = e.inspect(&id)["State"]["Pid"].as_i64().unwrap() as i32;
    // SAFETY: killing processes this test started.
    unsafe {
        libc::kill(shim, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    assert!(wait_until(T, || std::fs::metadata(format!("/proc/{pid}")).is_err() || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))));
    let ns = std::ffi::CString::new(dir.join("netns").to_string_lossy().as_bytes()).unwrap();
    // SAFETY: unmounting the namespace mount this test's engine made.
    assert_eq!(unsafe { libc::umount2(ns.as_ptr(), libc::MNT_DETACH) }, 0);
    for b in e.network_bridges() {
        ip(&["link", "delete", &b]);
    }
    let out = e.ok(&["restore"]);
    assert!(out.contains("keeper"), "{out}");
    assert!(wait_until(T, || e.inspect("keeper")["State"]["Status"] == "running"));
    assert_eq!(addrs(), before);
    e.ok(&["rm", "-f", "keeper"]);
    e.ok(&["network", "rm", "front", "back"]);
    e.assert_clean();
}
