//! Pure tests (parsing, path resolution, conversions, the eBPF program run
//! through a small interpreter) and root tests against this host's real
//! cgroups, each under its own `/skiff-test-<name>-<pid>` and cleaned up by
//! a Drop guard even when an assertion fails.

use super::devices::{self, Insn, Rule};
use super::stats::{parse_blkio, parse_io_stat, parse_keyed};
use super::v2::swap_max;
use super::*;
use serde_json::json;
use std::io::{Read, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const V1_SAMPLE: &str = "\
18 24 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
40 60 0:27 /docker /mnt/other rw - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
32 25 0:29 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:16 master:3 - cgroup cgroup rw,cpuset,clone_children
33 25 0:30 / /run/my\\040cg rw,relatime - cgroup cgroup rw,noprefix,pids
garbage line
1 2 3 - cgroup
";

const V2_SAMPLE: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

/// This host's layout.
const HYBRID_SAMPLE: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

fn names(l: &Layout) -> Vec<&str> {
    l.v1.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn mountinfo_v1_with_comounts_named_and_escapes() {
    let l = parse_mountinfo(V1_SAMPLE);
    assert_eq!(
        names(&l),
        [
            "name=systemd",
            "memory",
            "cpu,cpuacct",
            "net_cls,net_prio",
            "cpuset",
            "pids"
        ]
    );
    let mount = |n: &str| l.v1.iter().find(|(m, _)| m == n).unwrap().1.clone();
    // the memory hierarchy's mount under /sys/fs/cgroup wins over /mnt/other
    assert_eq!(mount("memory"), PathBuf::from("/sys/fs/cgroup/memory"));
    assert_eq!(mount("pids"), PathBuf::from("/run/my cg"));
    assert_eq!(l.unified, None);
    assert_eq!(l.mode().unwrap(), Mode::V1);
}

#[test]
fn mountinfo_v2() {
    let mut l = parse_mountinfo(V2_SAMPLE);
    assert!(l.v1.is_empty());
    assert_eq!(l.unified, Some(PathBuf::from("/sys/fs/cgroup")));
    assert_eq!(l.mode().unwrap(), Mode::V2);
    l.set_v2_controllers("cpuset cpu io memory hugetlb pids rdma misc\n");
    assert_eq!(
        l.v2_controllers,
        ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"]
    );
}

#[test]
fn mountinfo_hybrid() {
    let mut l = parse_mountinfo(HYBRID_SAMPLE);
    assert_eq!(
        names(&l),
        [
            "cpu",
            "cpuacct",
            "cpuset",
            "memory",
            "devices",
            "freezer",
            "blkio",
            "pids",
            "name=systemd"
        ]
    );
    assert_eq!(l.unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    assert_eq!(l.mode().unwrap(), Mode::Hybrid);
    // a controller bound to v1 is never used through cgroup2
    l.set_v2_controllers("memory hugetlb");
    assert_eq!(l.v2_controllers, ["hugetlb"]);
}

#[test]
fn mountinfo_without_cgroups_is_an_error() {
    let l = parse_mountinfo("22 1 0:21 / /proc rw - proc proc rw\n\n-\n");
    let e = l.mode().unwrap_err().0;
    assert!(e.contains("no cgroup"), "{e}");
}

#[test]
fn cgroups_path_resolution() {
    let p = |path: Option<&str>, systemd| cgroup_path(path.map(Path::new), "abc", systemd);
    assert_eq!(p(None, false).unwrap(), "/skiff/abc");
    assert_eq!(p(Some(""), false).unwrap(), "/skiff/abc");
    assert_eq!(p(Some("/a/b"), false).unwrap(), "/a/b");
    assert_eq!(p(Some("/a//./b/"), false).unwrap(), "/a/b");
    assert_eq!(p(Some("rel/x"), false).unwrap(), "/skiff/rel/x");
    assert_eq!(p(Some("/a/../../b"), false).unwrap(), "/b");
    assert_eq!(p(Some("../../etc"), false).unwrap(), "/etc");
    assert!(p(Some("/"), false).unwrap_err().0.contains("root"));
    assert!(p(Some("/x/.."), false).is_err());
    // runc's systemd form
    assert_eq!(p(None, true).unwrap(), "/system.slice/skiff-abc.scope");
    assert_eq!(
        p(Some("system.slice:docker:123"), true).unwrap(),
        "/system.slice/docker-123.scope"
    );
    assert_eq!(
        p(Some("user-1000.slice:docker:x"), true).unwrap(),
        "/user.slice/user-1000.slice/docker-x.scope"
    );
    assert_eq!(
        p(Some(":runc:x"), true).unwrap(),
        "/system.slice/runc-x.scope"
    );
    assert_eq!(p(Some("-.slice:p:n"), true).unwrap(), "/p-n.scope");
    assert_eq!(
        p(Some("machine.slice::my.slice"), true).unwrap(),
        "/machine.slice/my.slice"
    );
    let e = p(Some("/abs/path"), true).unwrap_err().0;
    assert!(e.contains("slice:prefix:name"), "{e}");
    assert!(p(Some("a:b"), true).is_err());
    assert!(p(Some("notaslice:p:n"), true)
        .unwrap_err()
        .0
        .contains("slice"));
}

#[test]
fn systemd_slice_expansion() {
    assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
    assert_eq!(
        expand_slice("user-1000.slice").unwrap(),
        "/user.slice/user-1000.slice"
    );
    assert_eq!(
        expand_slice("a-b-c.slice").unwrap(),
        "/a.slice/a-b.slice/a-b-c.slice"
    );
    assert_eq!(expand_slice("-.slice").unwrap(), "/");
    for bad in [
        "a--b.slice",
        "-a.slice",
        "a-.slice",
        ".slice",
        "a/b.slice",
        "system",
        "system.scope",
    ] {
        assert!(expand_slice(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn cgroup_in_layout_and_state_round_trip() {
    let mut l = parse_mountinfo(V1_SAMPLE);
    l.set_v2_controllers("");
    let cg = Cgroup::in_layout(&l, "/skiff/abc").unwrap();
    assert_eq!(cg.mode, Mode::V1);
    let cpu = cg.find("cpu", "cpu");
    let acct = cg.find("cpuacct", "cpu");
    let dir = Path::new("/sys/fs/cgroup/cpu,cpuacct/skiff/abc");
    assert!(matches!(cpu, Some(Target::V1(d)) if d == dir), "{cpu:?}");
    assert!(matches!(acct, Some(Target::V1(d)) if d == dir), "{acct:?}");
    assert!(cg.find("hugetlb", "hugetlb").is_none());
    assert_eq!(
        cg.hierarchies[0].dir,
        Path::new("/sys/fs/cgroup/systemd/skiff/abc")
    );
    let text = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&text).unwrap();
    assert_eq!(back, cg);
    assert!(Cgroup::in_layout(&l, "/..").is_err());

    let mut h = parse_mountinfo(HYBRID_SAMPLE);
    h.set_v2_controllers("hugetlb");
    let cg = Cgroup::in_layout(&h, "/x").unwrap();
    assert_eq!(cg.hierarchies.last().unwrap().name, UNIFIED);
    assert_eq!(
        cg.hierarchies.last().unwrap().dir,
        Path::new("/sys/fs/cgroup/unified/x")
    );
    assert!(matches!(cg.find("hugetlb", "hugetlb"), Some(Target::V2(_))));
    assert!(matches!(cg.find("memory", "memory"), Some(Target::V1(_))));
    assert!(matches!(cg.freezer(), Some(Target::V1(_))));
}

#[test]
fn cpu_and_io_weight_conversions() {
    assert_eq!(shares_to_weight(0), 0);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262144), 10000);
    assert_eq!(shares_to_weight(1), 1); // clamped, no underflow
    assert_eq!(shares_to_weight(u64::MAX), 10000);
    assert_eq!(blkio_weight_to_io_weight(0), 0);
    assert_eq!(blkio_weight_to_io_weight(10), 1);
    assert_eq!(blkio_weight_to_io_weight(500), 4950);
    assert_eq!(blkio_weight_to_io_weight(1000), 10000);
}

#[test]
fn swap_conversion_for_v2() {
    assert_eq!(swap_max(0, 100).unwrap(), 0);
    assert_eq!(swap_max(-1, 100).unwrap(), -1);
    assert_eq!(swap_max(0, -1).unwrap(), -1);
    assert_eq!(swap_max(300, 100).unwrap(), 200);
    assert_eq!(swap_max(100, 100).unwrap(), 0);
    assert!(swap_max(50, 100).is_err());
    assert!(swap_max(100, 0)
        .unwrap_err()
        .0
        .contains("needs a memory limit"));
}

fn rules(v: serde_json::Value) -> Vec<Rule> {
    let spec: Vec<LinuxDeviceCgroup> = serde_json::from_value(v).unwrap();
    devices::with_defaults(&spec).unwrap()
}

#[test]
fn device_rules_parse_and_v1_lines() {
    let r = rules(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "b", "major": 8, "access": "r"},
        {"allow": false, "type": "u", "major": 4, "minor": -1, "access": "mw"},
    ]));
    let lines: Vec<String> = r.iter().map(|r| r.v1_line()).collect();
    assert_eq!(lines[..5], ["a", "a", "c 1:3 rwm", "b 8:* r", "c 4:* wm"]);
    assert_eq!(lines[5..8], ["c *:* m", "b *:* m", "c 1:3 rwm"]);
    assert_eq!(r.len(), 5 + devices::DEFAULT_ALLOWED.len());
    let bad =
        |v| devices::with_defaults(&serde_json::from_value::<Vec<LinuxDeviceCgroup>>(v).unwrap());
    assert!(bad(json!([{"allow": true, "type": "p"}]))
        .unwrap_err()
        .0
        .contains("type p"));
    assert!(bad(json!([{"allow": true, "type": "c", "access": "rwx"}]))
        .unwrap_err()
        .0
        .contains("'x'"));
}

/// Runs a device filter the way the kernel would, on (type, access, major,
/// minor); only the instructions `devices::program` emits are known.
fn run_bpf(prog: &[Insn], kind: u32, access: u8, major: u32, minor: u32) -> u64 {
    let ctx = [kind | (u32::from(access) << 16), major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..10_000 {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        let imm = i.imm as i64 as u64;
        let mut next = pc + 1;
        let jump = |taken: bool| {
            if taken {
                (pc as i64 + 1 + i64::from(i.off)) as usize
            } else {
                pc + 1
            }
        };
        match i.code {
            0x61 => r[dst] = u64::from(ctx[i.off as usize / 4]),
            0x54 => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
            0x74 => r[dst] = (r[dst] as u32 >> i.imm) as u64,
            0xb4 => r[dst] = i.imm as u32 as u64,
            0xbc => r[dst] = r[src] as u32 as u64,
            0x55 => next = jump(r[dst] != imm),
            0x5d => next = jump(r[dst] != r[src]),
            0x15 => next = jump(r[dst] == imm),
            0x95 => return r[0],
            c => panic!("unexpected opcode {c:#x}"),
        }
        assert!(next < prog.len(), "jump out of the program at {pc}");
        pc = next;
    }
    panic!("program does not end")
}

const C: u32 = 2;
const B: u32 = 1;
const R: u8 = devices::READ;
const W: u8 = devices::WRITE;
const M: u8 = devices::MKNOD;

#[test]
fn ebpf_program_follows_v1_semantics() {
    // docker's default: deny all, then allow a block device for reading
    let p = devices::program(&rules(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"},
    ])));
    assert_eq!(run_bpf(&p, C, R | W, 1, 3), 1, "/dev/null");
    assert_eq!(run_bpf(&p, C, R, 136, 7), 1, "/dev/pts/7");
    assert_eq!(run_bpf(&p, C, R, 1, 11), 0, "/dev/kmsg");
    assert_eq!(run_bpf(&p, B, R, 7, 0), 1, "loop0 read");
    assert_eq!(run_bpf(&p, B, R | W, 7, 0), 0, "loop0 write");
    assert_eq!(run_bpf(&p, B, M, 8, 0), 1, "mknod of any block device");
    assert_eq!(run_bpf(&p, B, R, 8, 0), 0, "sda");

    // privileged: allow everything
    let p = devices::program(&rules(json!([{"allow": true, "access": "rwm"}])));
    assert_eq!(p.len(), 8, "{p:?}");
    assert_eq!(run_bpf(&p, B, R | W | M, 8, 0), 1);

    // deny list: any denied bit denies
    let p = devices::program(&rules(json!([
        {"allow": true, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
    ])));
    assert_eq!(run_bpf(&p, C, R, 1, 3), 1);
    assert_eq!(
        run_bpf(&p, C, R | W, 1, 3),
        1,
        "the default allow rule for 1:3 lifts the deny again"
    );
    let e = devices::emulate(&[
        Rule {
            allow: true,
            kind: 'a',
            major: None,
            minor: None,
            access: 7,
        },
        Rule {
            allow: false,
            kind: 'c',
            major: Some(1),
            minor: Some(11),
            access: W,
        },
    ]);
    let p = devices::program(&[
        Rule {
            allow: true,
            kind: 'a',
            major: None,
            minor: None,
            access: 7,
        },
        Rule {
            allow: false,
            kind: 'c',
            major: Some(1),
            minor: Some(11),
            access: W,
        },
    ]);
    assert!(e.default_allow && e.exceptions.len() == 1);
    assert_eq!(run_bpf(&p, C, R | W, 1, 11), 0);
    assert_eq!(run_bpf(&p, C, R, 1, 11), 1);
    assert_eq!(run_bpf(&p, C, W, 1, 12), 1);
}

#[test]
fn device_emulation_merges_and_removes_exceptions() {
    let r = |allow, kind, major, minor, access| Rule {
        allow,
        kind,
        major,
        minor,
        access,
    };
    let e = devices::emulate(&[
        r(false, 'a', None, None, 7),
        r(true, 'c', Some(1), Some(3), R),
        r(true, 'c', Some(1), Some(3), W),
        r(true, 'c', Some(1), Some(5), R | W),
        r(false, 'c', Some(1), Some(5), R | W),
    ]);
    assert!(!e.default_allow);
    assert_eq!(e.exceptions, [r(true, 'c', Some(1), Some(3), R | W)]);
}

#[test]
fn stats_file_parsers() {
    let d = Path::new("/x");
    let blk = parse_blkio(
        d,
        "f",
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
    )
    .unwrap();
    assert_eq!(blk.len(), 3);
    assert_eq!(
        blk[1],
        BlkioEntry {
            major: 8,
            minor: 0,
            op: "Write".into(),
            value: 8192
        }
    );
    let (bytes, ios) = parse_io_stat(
        d,
        "io.stat",
        "254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6 cost.usage=7\n",
    )
    .unwrap();
    assert_eq!(bytes.iter().map(|e| e.value).collect::<Vec<_>>(), [1, 2, 5]);
    assert_eq!(
        ios.iter()
            .map(|e| (e.op.as_str(), e.value))
            .collect::<Vec<_>>(),
        [("Read", 3), ("Write", 4), ("Discard", 6)]
    );
    let kv = parse_keyed(d, "cpu.stat", "usage_usec 10\nuser_usec 7\n").unwrap();
    assert_eq!(kv["user_usec"], 7);
    let e = parse_keyed(d, "memory.stat", "cache 1\nbroken\n")
        .unwrap_err()
        .0;
    assert_eq!(e, "parse /x/memory.stat: unexpected line \"broken\"");
    let e = parse_blkio(d, "b", "8:x Read 1\n").unwrap_err().0;
    assert!(e.contains("/x/b") && e.contains("\"x\""), "{e}");
    let s = Stats {
        memory_usage: 5,
        pids_current: 2,
        ..Default::default()
    };
    let j = s.runc_json();
    assert_eq!(j["memory"]["usage"]["usage"], 5);
    assert_eq!(j["pids"]["current"], 2);
}

/// A scratch directory under /tmp standing in for cgroup files.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("skiff-cgroups-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fake_cgroup(dir: &Path, name: &str) -> Cgroup {
    Cgroup {
        path: "/c".into(),
        mode: Mode::V1,
        hierarchies: vec![Hierarchy {
            name: name.into(),
            mount: dir.into(),
            dir: dir.into(),
        }],
        v2_controllers: vec![],
    }
}

#[test]
fn bad_cgroup_files_are_errors_naming_file_and_value() {
    let t = TempDir::new("bad");
    std::fs::write(t.0.join("memory.usage_in_bytes"), "lots\n").unwrap();
    let e = fake_cgroup(&t.0, "memory").stats().unwrap_err().0;
    assert!(
        e.contains(&t.0.join("memory.usage_in_bytes").display().to_string())
            && e.contains("\"lots\""),
        "{e}"
    );
    std::fs::write(t.0.join("memory.usage_in_bytes"), "4096\n").unwrap();
    std::fs::write(t.0.join("memory.limit_in_bytes"), "max\n").unwrap();
    let s = fake_cgroup(&t.0, "memory").stats().unwrap();
    assert_eq!((s.memory_usage, s.memory_limit), (4096, u64::MAX));
    std::fs::write(t.0.join("cgroup.procs"), "12\nnot-a-pid\n").unwrap();
    let e = fake_cgroup(&t.0, "memory").pids().unwrap_err().0;
    assert!(e.contains("cgroup.procs") && e.contains("not-a-pid"), "{e}");
    let e = fake_cgroup(&t.0.join("gone"), "memory")
        .stats()
        .unwrap_err()
        .0;
    assert!(e.contains("gone") && e.contains("ENOENT"), "{e}");
}

fn resources(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).unwrap()
}

#[test]
fn missing_controllers_fail_only_when_a_limit_needs_them() {
    let cg = Cgroup {
        path: "/c".into(),
        mode: Mode::V1,
        hierarchies: vec![],
        v2_controllers: vec![],
    };
    cg.create(None).unwrap();
    cg.create(Some(&resources(
        json!({"pids": {"limit": 0}, "memory": {"kernel": 0}}),
    )))
    .unwrap();
    let e = cg
        .create(Some(&resources(json!({"memory": {"limit": 1048576}}))))
        .unwrap_err()
        .0;
    assert_eq!(
        e,
        "create cgroup /c: set memory limits: the memory cgroup controller is not mounted"
    );
    let e = cg
        .update(&resources(json!({"pids": {"limit": 10}})))
        .unwrap_err()
        .0;
    assert!(e.contains("pids cgroup controller is not mounted"), "{e}");
    let e = cg
        .create(Some(&resources(
            json!({"devices": [{"allow": false, "access": "rwm"}]}),
        )))
        .unwrap_err()
        .0;
    assert!(
        e.contains("devices cgroup controller is not mounted"),
        "{e}"
    );
    let e = cg
        .update(&resources(json!({"unified": {"memory.high": "1"}})))
        .unwrap_err()
        .0;
    assert!(e.contains("needs cgroup v2"), "{e}");
    let e = cg.freeze(true).unwrap_err().0;
    assert!(e.contains("freezer"), "{e}");
    assert!(!cg.is_frozen());
}

// ---- root tests, against this host's cgroups ----

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the cgroup tests need root: run `cargo test` as root"
    );
}

fn read_trim(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

fn poll(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A test cgroup `/skiff-test-<name>-<pid>/ctr` and the processes put in it;
/// dropping it kills them and removes every directory it may have made.
struct Fixture {
    cg: Cgroup,
    top: String,
    children: Vec<Child>,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        require_root();
        Fixture::with_layout(name, &Layout::detect().unwrap())
    }

    fn with_layout(name: &str, layout: &Layout) -> Fixture {
        require_root();
        let top = format!("/skiff-test-{name}-{}", std::process::id());
        let cg = Cgroup::in_layout(layout, &format!("{top}/ctr")).unwrap();
        let f = Fixture {
            cg,
            top,
            children: Vec::new(),
        };
        f.cleanup_dirs(); // leftovers of an earlier, killed run
        f
    }

    fn dir(&self, controller: &str) -> PathBuf {
        let h = self
            .cg
            .hierarchies
            .iter()
            .find(|h| h.is_v1(controller) || h.name == controller);
        h.unwrap_or_else(|| panic!("no {controller} hierarchy on this host"))
            .dir
            .clone()
    }

    /// Starts `sh -c script` (which should begin with `read x` to wait for
    /// `release`) and puts it in the cgroup.
    fn spawn(&mut self, script: &str) -> i32 {
        let child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        self.children.push(child);
        self.cg.add_pid(pid).unwrap();
        pid
    }

    fn release(&mut self, i: usize) {
        self.children[i]
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"go\n")
            .unwrap();
    }

    /// Releases child `i` and returns all it printed.
    fn output(&mut self, i: usize) -> String {
        self.release(i);
        drop(self.children[i].stdin.take());
        let mut out = String::new();
        self.children[i]
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.children[i].wait().unwrap();
        out
    }

    fn kill_all(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        let _ = self.cg.freeze(false); // frozen tasks cannot die
        for c in &mut self.children {
            let _ = c.wait();
        }
    }

    fn cleanup_dirs(&self) {
        let _ = self.cg.delete();
        for h in &self.cg.hierarchies {
            let _ = remove_tree(&h.mount.join(&self.top[1..]), Instant::now());
        }
    }

    fn assert_gone(&self) {
        for h in &self.cg.hierarchies {
            assert!(!h.dir.exists(), "{} still exists", h.dir.display());
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.kill_all();
        self.cleanup_dirs();
    }
}

#[test]
fn root_hybrid_limits_pids_freeze_stats_delete() {
    let mut f = Fixture::new("lifecycle");
    assert_eq!(
        f.cg.mode,
        Mode::Hybrid,
        "this test expects the hybrid host it was written on"
    );
    f.cg.create(Some(&resources(json!({
        "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 64},
        "blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}]},
    }))))
    .unwrap();
    let mem = f.dir("memory");
    assert_eq!(read_trim(&mem, "memory.limit_in_bytes"), "104857600");
    assert_eq!(read_trim(&mem, "memory.memsw.limit_in_bytes"), "209715200");
    assert_eq!(read_trim(&mem, "memory.soft_limit_in_bytes"), "52428800");
    assert_eq!(read_trim(&f.dir("cpu"), "cpu.shares"), "512");
    assert_eq!(read_trim(&f.dir("cpu"), "cpu.cfs_quota_us"), "50000");
    assert_eq!(read_trim(&f.dir("cpu"), "cpu.cfs_period_us"), "100000");
    assert_eq!(read_trim(&f.dir("cpuset"), "cpuset.cpus"), "0");
    assert_eq!(read_trim(&f.dir("cpuset"), "cpuset.mems"), "0");
    assert_eq!(read_trim(&f.dir("pids"), "pids.max"), "64");
    assert_eq!(
        read_trim(&f.dir("blkio"), "blkio.throttle.read_bps_device"),
        "254:0 1048576"
    );
    let list = read_trim(&f.dir("devices"), "devices.list");
    assert!(
        !list.contains("a *:* rwm") && list.contains("c 1:3 rwm") && list.contains("c 136:* rwm"),
        "{list}"
    );
    assert!(f.dir(UNIFIED).is_dir());

    let pid = f.spawn("read x; exec sleep 30");
    assert_eq!(f.cg.pids().unwrap(), [pid]);
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cgroups.lines() {
        assert!(
            line.ends_with(&format!(":{}", f.cg.path)),
            "{line} (all of\n{cgroups})"
        );
    }
    assert!(
        cgroups.lines().any(|l| l.starts_with("0::")),
        "not in the unified hierarchy: {cgroups}"
    );
    f.release(0); // exec: memory and cpu time charged to the cgroup
    let mut stats = Stats::default();
    poll("memory and cpu usage", || {
        stats = f.cg.stats().unwrap();
        stats.memory_usage > 0 && stats.cpu_usage_ns > 0
    });
    assert_eq!(stats.memory_limit, 104857600);
    assert_eq!(stats.swap_limit, 209715200);
    assert!(stats.memory_max_usage >= stats.memory_usage, "{stats:?}");
    assert_eq!((stats.pids_current, stats.pids_limit), (1, 64));
    assert!(stats.cpu_percpu_ns.iter().sum::<u64>() > 0, "{stats:?}");
    assert!(stats.memory_stat.contains_key("cache"), "{stats:?}");

    f.cg.freeze(true).unwrap();
    assert_eq!(read_trim(&f.dir("freezer"), "freezer.state"), "FROZEN");
    assert!(f.cg.is_frozen());
    f.cg.freeze(false).unwrap();
    assert_eq!(read_trim(&f.dir("freezer"), "freezer.state"), "THAWED");
    assert!(!f.cg.is_frozen());

    f.kill_all();
    assert_eq!(f.cg.pids().unwrap(), Vec::<i32>::new());
    f.cg.delete().unwrap();
    f.assert_gone();
}

#[test]
fn root_cpuset_copied_and_default_device_rules() {
    let mut f = Fixture::new("cpuset");
    f.cg.create(None).unwrap();
    let root = f
        .dir("cpuset")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let cpus = read_trim(&root, "cpuset.cpus");
    assert!(!cpus.is_empty());
    for dir in [
        f.dir("cpuset").parent().unwrap().to_path_buf(),
        f.dir("cpuset"),
    ] {
        assert_eq!(read_trim(&dir, "cpuset.cpus"), cpus, "{}", dir.display());
        assert_eq!(
            read_trim(&dir, "cpuset.mems"),
            read_trim(&root, "cpuset.mems")
        );
    }
    let list = read_trim(&f.dir("devices"), "devices.list");
    let want: Vec<String> = devices::DEFAULT_ALLOWED
        .iter()
        .map(|r| r.v1_line())
        .collect();
    assert_eq!(list.lines().collect::<Vec<_>>(), want, "devices.list");
    // a pid joins the new cpuset (ENOSPC without the copy)
    let pid = f.spawn("read x");
    assert_eq!(f.cg.pids().unwrap(), [pid]);
    // creating again (an existing cgroup) is fine
    f.cg.create(None).unwrap();
}

#[test]
fn root_update_orders_memory_and_swap_writes() {
    let f = Fixture::new("update");
    f.cg.create(Some(&resources(
        json!({"memory": {"limit": 104857600, "swap": 209715200}}),
    )))
    .unwrap();
    let mem = f.dir("memory");
    // raising: swap must go first
    f.cg.update(&resources(
        json!({"memory": {"limit": 314572800, "swap": 419430400}}),
    ))
    .unwrap();
    assert_eq!(read_trim(&mem, "memory.limit_in_bytes"), "314572800");
    assert_eq!(read_trim(&mem, "memory.memsw.limit_in_bytes"), "419430400");
    // lowering below the old limit: the limit must go first
    f.cg.update(&resources(
        json!({"memory": {"limit": 52428800, "swap": 62914560}}),
    ))
    .unwrap();
    assert_eq!(read_trim(&mem, "memory.limit_in_bytes"), "52428800");
    assert_eq!(read_trim(&mem, "memory.memsw.limit_in_bytes"), "62914560");
    // unlimited memory means unlimited swap
    f.cg.update(&resources(json!({"memory": {"limit": -1}})))
        .unwrap();
    assert_eq!(
        read_trim(&mem, "memory.memsw.limit_in_bytes"),
        read_trim(&mem, "memory.limit_in_bytes")
    );
    f.cg.update(&resources(
        json!({"cpu": {"quota": 25000, "period": 50000}, "pids": {"limit": -1}}),
    ))
    .unwrap();
    assert_eq!(read_trim(&f.dir("cpu"), "cpu.cfs_period_us"), "50000");
    assert_eq!(read_trim(&f.dir("cpu"), "cpu.cfs_quota_us"), "25000");
    assert_eq!(read_trim(&f.dir("pids"), "pids.max"), "max");
    let e =
        f.cg.update(&resources(
            json!({"memory": {"limit": 1048576, "swap": 1000}}),
        ))
        .unwrap_err()
        .0;
    assert!(
        e.contains("memory.memsw.limit_in_bytes") && e.contains("EINVAL"),
        "{e}"
    );
}

const DEVICE_PROBE: &str = r#"read x
t() { if (: <"$1") 2>/dev/null; then echo "$2=ok"; else echo "$2=denied"; fi; }
t /dev/kmsg kmsg; t /dev/null null; t /dev/loop0 loop0"#;

const PROBE_RULES: fn() -> serde_json::Value = || json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}]});

#[test]
fn root_device_rules_enforced_on_v1() {
    let mut f = Fixture::new("devices");
    f.cg.create(Some(&resources(PROBE_RULES()))).unwrap();
    assert!(read_trim(&f.dir("devices"), "devices.list").contains("b 7:0 r"));
    f.spawn(DEVICE_PROBE);
    assert_eq!(f.output(0), "kmsg=denied\nnull=ok\nloop0=ok\n");
}

/// The v2 code paths on this host's (controller-less) cgroup2 mount: the
/// eBPF device filter, cgroup.freeze, cpu.stat, delete.
#[test]
fn root_v2_ebpf_devices_freeze_and_stats() {
    require_root();
    let host = Layout::detect().unwrap();
    let layout = Layout {
        v1: vec![],
        unified: host.unified.clone(),
        v2_controllers: vec![],
    };
    assert!(layout.unified.is_some(), "no cgroup2 mount on this host");
    let mut f = Fixture::with_layout("v2", &layout);
    assert_eq!(f.cg.mode, Mode::V2);
    f.cg.create(Some(&resources(PROBE_RULES()))).unwrap();
    f.spawn(DEVICE_PROBE);
    assert_eq!(f.output(0), "kmsg=denied\nnull=ok\nloop0=ok\n");

    let pid = f.spawn("read x; exec sleep 30");
    assert_eq!(f.cg.pids().unwrap(), [pid]);
    f.cg.freeze(true).unwrap();
    assert!(f.cg.is_frozen());
    assert_eq!(read_trim(&f.dir(UNIFIED), "cgroup.freeze"), "1");
    f.cg.freeze(false).unwrap();
    assert!(!f.cg.is_frozen());
    f.release(1);
    let mut stats = Stats::default();
    poll("cpu usage", || {
        stats = f.cg.stats().unwrap();
        stats.cpu_usage_ns > 0
    });
    assert!(stats.cpu_user_ns + stats.cpu_system_ns > 0, "{stats:?}");
    let e =
        f.cg.update(&resources(json!({"memory": {"limit": 1048576}})))
            .unwrap_err()
            .0;
    assert!(e.contains("memory cgroup controller is not in"), "{e}");
    f.kill_all();
    f.cg.delete().unwrap();
    f.assert_gone();
}

#[test]
fn root_hugetlb_through_unified_on_hybrid() {
    require_root();
    let layout = Layout::detect().unwrap();
    assert!(
        layout.v2_controllers.iter().any(|c| c == "hugetlb"),
        "this test expects hugetlb only on cgroup2 (as on its host): {layout:?}"
    );
    let root = layout.unified.clone().unwrap();
    let before = read_trim(&root, "cgroup.subtree_control");
    let f = Fixture::with_layout("hugetlb", &layout);
    f.cg.create(Some(&resources(
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
    )))
    .unwrap();
    assert_eq!(read_trim(&f.dir(UNIFIED), "hugetlb.2MB.max"), "4194304");
    let e =
        f.cg.update(&resources(
            json!({"hugepageLimits": [{"pageSize": "../x", "limit": 1}]}),
        ))
        .unwrap_err()
        .0;
    assert!(e.contains("invalid page size"), "{e}");
    drop(f);
    if !before.split_whitespace().any(|c| c == "hugetlb") {
        let _ = std::fs::write(root.join("cgroup.subtree_control"), "-hugetlb");
    }
}

#[test]
fn root_failed_create_names_file_and_leaves_nothing() {
    let f = Fixture::new("fail");
    let e =
        f.cg.create(Some(&resources(
            json!({"cpu": {"realtimeRuntime": 2000000}}),
        )))
        .unwrap_err()
        .0;
    let file = f.dir("cpu").join("cpu.rt_runtime_us");
    assert_eq!(
        e,
        format!(
            "create cgroup {}: write 2000000 to {}: EINVAL: Invalid argument",
            f.cg.path,
            file.display()
        )
    );
    for h in &f.cg.hierarchies {
        assert!(
            !h.mount.join(&f.top[1..]).exists(),
            "{} left behind",
            h.mount.join(&f.top[1..]).display()
        );
    }
    let e =
        f.cg.create(Some(&resources(json!({"cpu": {"shares": 1}}))))
            .unwrap_err()
            .0;
    assert!(e.contains("cpu.shares reads back 2"), "{e}");
    f.assert_gone();
}

#[test]
fn root_delete_removes_sub_cgroups_and_is_idempotent() {
    let mut f = Fixture::new("nested");
    f.cg.create(None).unwrap();
    let sub = f.dir("pids").join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::create_dir(f.dir(UNIFIED).join("sub")).unwrap();
    let pid = f.spawn("read x; exec sleep 30");
    std::fs::write(sub.join("cgroup.procs"), pid.to_string()).unwrap();
    assert_eq!(f.cg.pids().unwrap(), [pid], "a pid in a sub-cgroup counts");
    let e = f.cg.delete().unwrap_err().0;
    assert!(
        e.contains("EBUSY") && e.contains(&format!("holds pids {pid}")),
        "{e}"
    );
    f.kill_all();
    f.cg.delete().unwrap();
    f.assert_gone();
    f.cg.delete().unwrap();
}

#[test]
fn rootless_join_keeps_what_it_may_write_and_applies_what_it_can() {
    // No cgroup.procs to write: the hierarchy is left out, its directory removed.
    let t = TempDir::new("rootless-skip");
    let mut cg = fake_cgroup(&t.0, "pids");
    cg.hierarchies = vec![Hierarchy { name: "pids".into(), mount: t.0.clone(), dir: t.0.join("c") }];
    cg.join_rootless(42, Some(&resources(json!({"pids": {"limit": 10}}))));
    assert!(cg.hierarchies.is_empty());
    assert!(!t.0.join("c").exists(), "directory of a skipped hierarchy left behind");
    assert!(cg.check_joined("pause").unwrap_err().0.contains("no cgroup"));

    // A writable (delegated) one is joined; pids applies, memory is only warned about.
    let t = TempDir::new("rootless-join");
    std::fs::create_dir(t.0.join("c")).unwrap();
    for f in ["cgroup.procs", "pids.max"] {
        std::fs::write(t.0.join("c").join(f), "").unwrap();
    }
    cg.hierarchies = vec![Hierarchy { name: "pids".into(), mount: t.0.clone(), dir: t.0.join("c") }];
    cg.join_rootless(
        42,
        Some(&resources(json!({"memory": {"limit": 1048576}, "pids": {"limit": 10},
            "devices": [{"allow": false, "access": "rwm"}]}))),
    );
    assert_eq!(cg.hierarchies.len(), 1);
    assert!(cg.check_joined("pause").is_ok());
    assert_eq!(std::fs::read_to_string(t.0.join("c/cgroup.procs")).unwrap(), "42");
    assert_eq!(std::fs::read_to_string(t.0.join("c/pids.max")).unwrap(), "10");
}

#[test]
fn resources_split_into_sections_without_devices() {
    let r = resources(json!({"devices": [{"allow": false, "access": "rwm"}], "cpu": {"shares": 2}, "pids": {"limit": 3},
        "unified": {}, "hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}));
    let s = sections(&r);
    let names: Vec<&str> = s.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["cpu", "pids", "hugepageLimits"]);
    assert_eq!(s[1].1.pids().as_ref().unwrap().limit(), 3);
    assert!(s.iter().all(|(_, r)| r.devices().is_none() && r.memory().is_none()));
}
