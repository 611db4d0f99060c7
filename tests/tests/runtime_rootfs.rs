//! The runtime's root filesystem (config.md "Root", "Mounts";
//! config-linux.md "Devices", "maskedPaths", "readonlyPaths",
//! "rootfsPropagation") through the dist binary, asserted from inside the
//! container: its /proc/self/mountinfo, its /dev, what it can write.

use serde_json::{json, Value};
use skiff_tests::bundle::Bundle;
use skiff_tests::{text, TempDir};
use std::collections::HashMap;
use std::path::Path;

/// One line of the container's /proc/self/mountinfo.
#[derive(Debug)]
struct Mount {
    root: String,
    point: String,
    options: Vec<String>,
    optional: Vec<String>,
    fs_type: String,
    super_options: Vec<String>,
}

/// What the container printed: mountinfo, a `@@` line, `key=value` lines.
struct Report {
    mounts: Vec<Mount>,
    values: HashMap<String, String>,
    raw: String,
}

impl Report {
    fn parse(out: &str) -> Report {
        let (info, rest) = out.split_once("@@\n").unwrap_or_else(|| panic!("no report from the container:\n{out}"));
        let mounts = info
            .lines()
            .filter_map(|l| {
                let (a, b) = l.split_once(" - ")?;
                let a: Vec<&str> = a.split(' ').collect();
                let b: Vec<&str> = b.split(' ').collect();
                Some(Mount {
                    root: a.get(3)?.to_string(),
                    point: a.get(4)?.replace("\\040", " "),
                    options: a.get(5)?.split(',').map(String::from).collect(),
                    optional: a[6..].iter().map(|s| s.to_string()).collect(),
                    fs_type: b.first()?.to_string(),
                    super_options: b.get(2).unwrap_or(&"").split(',').map(String::from).collect(),
                })
            })
            .collect();
        let values =
            rest.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Report { mounts, values, raw: out.to_string() }
    }

    /// The topmost mount on `at`.
    fn mount(&self, at: &str) -> &Mount {
        self.mounts.iter().rev().find(|m| m.point == at).unwrap_or_else(|| panic!("no mount on {at}:\n{}", self.raw))
    }

    fn has_mount(&self, at: &str) -> bool {
        self.mounts.iter().any(|m| m.point == at)
    }

    /// Asserts the mount on `at` has `fs_type` (unless empty) and `options`
    /// among its per-mount or superblock options.
    fn assert_mount(&self, at: &str, fs_type: &str, options: &[&str]) {
        let m = self.mount(at);
        if !fs_type.is_empty() {
            assert_eq!(m.fs_type, fs_type, "type of {at}:\n{}", self.raw);
        }
        for o in options {
            assert!(m.options.iter().chain(&m.super_options).any(|x| x == o), "{at} lacks {o}: {m:?}\n{}", self.raw);
        }
    }

    fn value(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or_else(|| panic!("no {key}= in:\n{}", self.raw))
    }

    fn expect(&self, key: &str, want: &str) {
        assert_eq!(self.value(key), want, "{key} in:\n{}", self.raw);
    }
}

/// Runs `script` after printing mountinfo and `@@`; fails on a non-zero exit.
fn report(b: &mut Bundle, script: &str) -> Report {
    b.sh(&format!("cat /proc/self/mountinfo; echo @@; {script}"));
    let out = b.run();
    assert!(out.status.success(), "run failed ({:?}): {}\n{}", out.status, text(&out.stderr), text(&out.stdout));
    Report::parse(&text(&out.stdout))
}

/// `write:P=rw|ro` for each path: whether a file can be made there.
fn writes(paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| format!("if touch {p}/.probe 2>/dev/null || touch {p} 2>/dev/null; then echo write:{p}=rw; else echo write:{p}=ro; fi; "))
        .collect()
}

fn add_mounts(b: &mut Bundle, mounts: Value) {
    let list = b.config["mounts"].as_array_mut().expect("mounts in the config");
    list.extend(mounts.as_array().expect("a list of mounts").iter().cloned());
}

fn run_fails(b: &mut Bundle) -> String {
    b.sh("true");
    let out = b.run();
    assert!(!out.status.success(), "run should fail: {}", text(&out.stdout));
    assert_eq!(b.status(), "absent", "a failed run leaves no container");
    text(&out.stderr)
}

#[test]
fn default_mounts_have_their_types_and_flags() {
    let mut b = Bundle::new("rfs-mounts");
    let r = report(&mut b, "true");
    r.assert_mount("/proc", "proc", &[]);
    r.assert_mount("/dev", "tmpfs", &["nosuid", "mode=755", "size=65536k"]);
    r.assert_mount("/dev/pts", "devpts", &["nosuid", "noexec", "ptmxmode=666", "mode=620", "gid=5"]);
    r.assert_mount("/dev/shm", "tmpfs", &["nosuid", "noexec", "nodev", "size=65536k"]);
    r.assert_mount("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]);
    r.assert_mount("/sys", "sysfs", &["ro", "nosuid", "noexec", "nodev"]);
    r.assert_mount("/sys/fs/cgroup", "", &["ro", "nosuid", "noexec", "nodev"]);
    let cgroups: Vec<&Mount> = r.mounts.iter().filter(|m| m.fs_type.starts_with("cgroup")).collect();
    assert!(!cgroups.is_empty(), "no cgroup filesystem:\n{}", r.raw);
    for m in cgroups {
        assert!(m.point.starts_with("/sys/fs/cgroup") && m.options.iter().any(|o| o == "ro"), "{m:?}");
    }
    // The old root is gone: the rootfs is `/` and nothing of the host's is left.
    assert_eq!(r.mounts.iter().filter(|m| m.fs_type == "sysfs").count(), 1, "{}", r.raw);
    assert_eq!(r.mounts.iter().filter(|m| m.fs_type == "proc" && m.root == "/").count(), 1, "{}", r.raw);
}

#[test]
fn default_devices_and_dev_links() {
    let mut b = Bundle::new("rfs-dev");
    let r = report(
        &mut b,
        "for d in null zero full random urandom tty; do echo \"dev:$d=$(stat -c '%F|%a|%u:%g|%t:%T' /dev/$d)\"; done; \
         for l in ptmx fd stdin stdout stderr; do echo \"link:$l=$(readlink /dev/$l)\"; done; \
         echo zero=$(head -c 4 /dev/zero | wc -c); echo x > /dev/null && echo null=ok; ls -l /dev",
    );
    for (d, mm) in
        [("null", "1:3"), ("zero", "1:5"), ("full", "1:7"), ("random", "1:8"), ("urandom", "1:9"), ("tty", "5:0")]
    {
        r.expect(&format!("dev:{d}"), &format!("character special file|666|0:0|{mm}"));
    }
    r.expect("link:ptmx", "pts/ptmx");
    r.expect("link:fd", "/proc/self/fd");
    r.expect("link:stdin", "/proc/self/fd/0");
    r.expect("link:stdout", "/proc/self/fd/1");
    r.expect("link:stderr", "/proc/self/fd/2");
    r.expect("zero", "4");
    r.expect("null", "ok");
}

#[test]
fn linux_devices_are_made_with_mode_and_owner() {
    let mut b = Bundle::new("rfs-devices");
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 384, "uid": 1, "gid": 2},
        {"path": "/dev/skiff-loop", "type": "b", "major": 7, "minor": 200},
        {"path": "/dev/skiff-fifo", "type": "p", "fileMode": 416},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 432}
    ]);
    let r = report(
        &mut b,
        "for d in fuse skiff-loop skiff-fifo null; do echo \"dev:$d=$(stat -c '%F|%a|%u:%g|%t:%T' /dev/$d)\"; done",
    );
    r.expect("dev:fuse", "character special file|600|1:2|a:e5");
    r.expect("dev:skiff-loop", "block special file|666|0:0|7:c8");
    r.expect("dev:skiff-fifo", "fifo|640|0:0|0:0");
    // A linux.devices entry replaces the default of the same path.
    r.expect("dev:null", "character special file|660|0:0|1:3");
}

#[test]
fn bind_mounts_apply_their_flags() {
    let host = TempDir::new("rfs-bind-src");
    std::fs::write(host.path().join("hello"), "hello from the host").unwrap();
    std::fs::write(host.path().join("file"), "a file").unwrap();
    let src = host.path().to_str().unwrap();
    let mut b = Bundle::writable("rfs-bind");
    add_mounts(
        &mut b,
        json!([
            {"destination": "/ro-data", "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid", "nodev", "noexec", "rprivate"]},
            {"destination": "/rw-data", "type": "bind", "source": src, "options": ["rbind", "rw"]},
            {"destination": "/rro-data", "source": src, "options": ["rbind", "rro", "rslave"]},
            {"destination": "/etc/hostfile", "source": format!("{src}/file"), "options": ["bind", "ro"]},
            {"destination": "/noatime", "source": src, "options": ["bind", "noatime", "nodiratime"]}
        ]),
    );
    let r = report(
        &mut b,
        &format!(
            "{} echo hello=$(cat /ro-data/hello); echo file=$(cat /etc/hostfile); echo made > /rw-data/made",
            writes(&["/ro-data", "/rw-data", "/rro-data", "/etc/hostfile"])
        ),
    );
    r.assert_mount("/ro-data", "", &["ro", "nosuid", "nodev", "noexec"]);
    r.assert_mount("/rw-data", "", &["rw"]);
    r.assert_mount("/rro-data", "", &["ro"]);
    r.assert_mount("/etc/hostfile", "", &["ro"]);
    r.assert_mount("/noatime", "", &["rw", "noatime", "nodiratime"]);
    assert!(r.mount("/rro-data").optional.iter().all(|o| !o.starts_with("shared:")), "{}", r.raw);
    r.expect("write:/ro-data", "ro");
    r.expect("write:/rro-data", "ro");
    r.expect("write:/etc/hostfile", "ro");
    r.expect("write:/rw-data", "rw");
    r.expect("hello", "hello from the host");
    r.expect("file", "a file");
    assert_eq!(std::fs::read_to_string(host.path().join("made")).unwrap(), "made\n");
}

#[test]
fn tmpfs_options_and_tmpcopyup() {
    // The fixture root is shared and read-only: only existing targets.
    let mut b = Bundle::new("rfs-tmpfs");
    add_mounts(
        &mut b,
        json!([
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1777"]},
            {"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "nosuid"]}
        ]),
    );
    let r = report(
        &mut b,
        &format!("{} echo tmpmode=$(stat -c %a /tmp); echo passwd=$(head -c 4 /etc/passwd); echo hostname=$(cat /etc/hostname)",
            writes(&["/tmp", "/etc", "/"])),
    );
    r.assert_mount("/tmp", "tmpfs", &["nosuid", "nodev", "noexec", "size=1024k"]);
    r.expect("tmpmode", "1777");
    r.expect("write:/tmp", "rw");
    // /etc is a writable tmpfs holding a copy of the read-only root's /etc.
    r.assert_mount("/etc", "tmpfs", &["nosuid"]);
    r.expect("passwd", "root");
    let want = std::fs::read_to_string(skiff_tests::busybox_rootfs().join("etc/hostname")).unwrap();
    r.expect("hostname", want.trim());
    r.expect("write:/etc", "rw");
    r.expect("write:/", "ro");
}

#[test]
fn hostile_symlinks_cannot_lead_mounts_out_of_the_rootfs() {
    let tag = format!("{}-{}", std::process::id(), line!());
    let mut b = Bundle::writable("rfs-symlinks");
    let rootfs = b.path().join("rootfs");
    std::os::unix::fs::symlink("/etc", rootfs.join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../../..", rootfs.join("up")).unwrap();
    std::os::unix::fs::symlink("/up/../evil/../up", rootfs.join("winding")).unwrap();
    add_mounts(
        &mut b,
        json!([
            {"destination": format!("/evil/skiff-mnt-{tag}"), "type": "tmpfs", "source": "tmpfs"},
            {"destination": format!("/up/skiff-escape-{tag}"), "type": "tmpfs", "source": "tmpfs"},
            {"destination": format!("/winding/etc/skiff-wind-{tag}"), "type": "tmpfs", "source": "tmpfs"}
        ]),
    );
    let r = report(&mut b, "true");
    r.assert_mount(&format!("/etc/skiff-mnt-{tag}"), "tmpfs", &[]);
    r.assert_mount(&format!("/skiff-escape-{tag}"), "tmpfs", &[]);
    r.assert_mount(&format!("/etc/skiff-wind-{tag}"), "tmpfs", &[]);
    assert!(!r.mounts.iter().any(|m| m.point.starts_with("/evil") || m.point.starts_with("/up")), "{}", r.raw);
    // The targets were made in the rootfs, never on the host.
    assert!(rootfs.join(format!("etc/skiff-mnt-{tag}")).is_dir());
    assert!(rootfs.join(format!("skiff-escape-{tag}")).is_dir());
    for p in [format!("/etc/skiff-mnt-{tag}"), format!("/skiff-escape-{tag}"), format!("/etc/skiff-wind-{tag}")] {
        assert!(!Path::new(&p).exists(), "{p} was made on the host");
    }
}

#[test]
fn symlink_loops_in_a_mount_target_fail_clearly() {
    let mut b = Bundle::writable("rfs-loop");
    let rootfs = b.path().join("rootfs");
    std::os::unix::fs::symlink("/loop2", rootfs.join("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", rootfs.join("loop2")).unwrap();
    add_mounts(&mut b, json!([{"destination": "/loop1/x", "type": "tmpfs", "source": "tmpfs"}]));
    let err = run_fails(&mut b);
    assert!(err.contains("/loop1/x") && err.contains("ELOOP"), "{err}");
}

#[test]
fn masked_and_readonly_paths() {
    let mut b = Bundle::writable("rfs-masks");
    b.config["root"]["readonly"] = json!(false);
    // The default config's lists, plus paths of the rootfs and missing ones.
    let linux = &mut b.config["linux"];
    let masked = linux["maskedPaths"].as_array_mut().expect("runtime spec has maskedPaths");
    masked.extend([json!("/etc/passwd"), json!("/root"), json!("/no/such/path")]);
    let ro = linux["readonlyPaths"].as_array_mut().expect("runtime spec has readonlyPaths");
    ro.extend([json!("/tmp"), json!("/no/such/dir")]);
    let r = report(
        &mut b,
        &format!(
            "{} echo passwd=[$(cat /etc/passwd)]; echo rootdir=[$(ls -A /root)]; echo keys=[$(cat /proc/keys)]; \
             echo firmware=[$(ls -A /sys/firmware)]; echo acpi=[$(ls -A /proc/acpi)]; \
             echo sysctl=$(cat /proc/sys/kernel/ostype)",
            writes(&["/tmp", "/proc/sys/kernel/domainname", "/root", "/var"])
        ),
    );
    r.expect("passwd", "[]");
    r.expect("rootdir", "[]");
    r.expect("keys", "[]");
    r.expect("firmware", "[]");
    r.expect("acpi", "[]");
    r.assert_mount("/root", "tmpfs", &["ro"]);
    r.assert_mount("/sys/firmware", "tmpfs", &["ro"]);
    r.assert_mount("/tmp", "", &["ro"]);
    r.assert_mount("/proc/sys", "proc", &["ro"]);
    r.expect("sysctl", "Linux");
    r.expect("write:/tmp", "ro");
    r.expect("write:/proc/sys/kernel/domainname", "ro");
    r.expect("write:/root", "ro");
    r.expect("write:/var", "rw");
}

#[test]
fn root_readonly_or_writable() {
    let mut ro = Bundle::new("rfs-root-ro");
    let r = report(&mut ro, &writes(&["/", "/etc"]));
    r.assert_mount("/", "", &["ro"]);
    r.expect("write:/", "ro");
    r.expect("write:/etc", "ro");

    let mut rw = Bundle::writable("rfs-root-rw");
    let r = report(&mut rw, &writes(&["/", "/etc"]));
    r.assert_mount("/", "", &["rw"]);
    r.expect("write:/", "rw");
    assert!(rw.path().join("rootfs/.probe").exists(), "the write did not reach the rootfs");
}

#[test]
fn rootfs_propagation() {
    for (mode, shared) in [("rshared", true), ("private", false), ("rslave", false)] {
        let mut b = Bundle::new(&format!("rfs-prop-{mode}"));
        b.config["linux"]["rootfsPropagation"] = json!(mode);
        let r = report(&mut b, "true");
        let root = r.mount("/");
        assert_eq!(root.optional.iter().any(|o| o.starts_with("shared:")), shared, "{mode}: {root:?}");
        if mode == "private" {
            assert!(root.optional.is_empty(), "{mode}: {root:?}");
        }
    }
}

#[test]
fn no_pivot_chroots_and_hides_the_hosts_proc_and_sys() {
    let mut b = Bundle::new("rfs-nopivot");
    b.sh("cat /proc/self/mountinfo; echo @@; echo hostname=$(cat /etc/hostname); echo pid=$$");
    let bundle = b.path().to_string_lossy().into_owned();
    let id = b.id.clone();
    let out = b.rt(&["run", "--no-pivot", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "run --no-pivot: {}", text(&out.stderr));
    let r = Report::parse(&text(&out.stdout));
    let want = std::fs::read_to_string(skiff_tests::busybox_rootfs().join("etc/hostname")).unwrap();
    r.expect("hostname", want.trim());
    r.expect("pid", "1");
    assert_eq!(r.mounts.iter().filter(|m| m.fs_type == "sysfs").count(), 1, "{}", r.raw);
    r.assert_mount("/sys", "sysfs", &["ro"]);
    r.assert_mount("/proc", "proc", &[]);
    r.assert_mount("/", "", &["ro"]);
}

/// Whether the host has cgroup v2 only (/sys/fs/cgroup is cgroup2).
fn host_is_unified() -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some("/sys/fs/cgroup") && l.contains(" - cgroup2 "))
}

/// The container's view of its cgroups: each hierarchy shows the
/// container's own cgroup (pid 1 in it), read-only.
fn assert_own_cgroups(cgroupns: bool) {
    let mut b = Bundle::new(if cgroupns { "rfs-cg-ns" } else { "rfs-cg" });
    if !cgroupns {
        let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
    }
    let path = b.config["linux"]["cgroupsPath"].as_str().unwrap().to_string();
    let r = report(
        &mut b,
        "for d in /sys/fs/cgroup /sys/fs/cgroup/pids /sys/fs/cgroup/memory; do \
           [ -f $d/cgroup.procs ] && echo \"procs:$d=$(cat $d/cgroup.procs | tr '\\n' ' ')\"; done; \
         mkdir /sys/fs/cgroup/x 2>/dev/null && echo mkdir=ok || echo mkdir=refused; \
         echo self=$(cat /proc/self/cgroup | tr '\\n' ' ')",
    );
    r.expect("mkdir", "refused");
    if !cgroupns && host_is_unified() {
        // As runc: the whole hierarchy, read-only.
        r.assert_mount("/sys/fs/cgroup", "cgroup2", &["ro"]);
        return;
    }
    let procs: Vec<(&String, &String)> = r.values.iter().filter(|(k, _)| k.starts_with("procs:")).collect();
    assert!(!procs.is_empty(), "no cgroup.procs under /sys/fs/cgroup:\n{}", r.raw);
    for (k, v) in procs {
        assert!(v.split_whitespace().any(|p| p == "1"), "cgroupns={cgroupns} {k}: [{v}]\n{}", r.raw);
    }
    if cgroupns {
        for l in r.value("self").split_whitespace() {
            assert!(l.ends_with(":/"), "cgroup namespace not rooted at the container's cgroup: {l}\n{}", r.raw);
        }
    } else {
        for m in r.mounts.iter().filter(|m| m.fs_type == "cgroup" && m.options.iter().all(|o| o != "name=systemd")) {
            assert!(m.root.ends_with(&path), "{} shows {} rather than {path}\n{}", m.point, m.root, r.raw);
        }
    }
}

#[test]
fn cgroup_mount_binds_the_containers_own_cgroups() {
    assert_own_cgroups(false);
}

#[test]
fn cgroup_mount_in_a_cgroup_namespace_is_rooted_at_its_cgroups() {
    assert_own_cgroups(true);
}

#[test]
fn mount_errors_name_the_mount_and_leave_nothing() {
    let mut b = Bundle::new("rfs-err-proc");
    add_mounts(&mut b, json!([{"destination": "/proc/sysrq-trigger", "source": "/dev/null", "options": ["bind"]}]));
    let err = run_fails(&mut b);
    assert!(err.contains("/proc/sysrq-trigger") && err.contains("inside /proc"), "{err}");

    let mut b = Bundle::new("rfs-err-src");
    add_mounts(&mut b, json!([{"destination": "/tmp", "source": "/nonexistent/skiff-src", "options": ["rbind"]}]));
    let err = run_fails(&mut b);
    assert!(err.contains("/nonexistent/skiff-src") && err.contains("ENOENT"), "{err}");

    let mut b = Bundle::new("rfs-err-type");
    add_mounts(&mut b, json!([{"destination": "/tmp", "type": "nosuchfs", "source": "x"}]));
    let err = run_fails(&mut b);
    assert!(err.contains("mount nosuchfs on") && err.contains("/tmp"), "{err}");
}

#[test]
fn user_namespace_binds_devices_it_cannot_make() {
    let mut b = Bundle::new("rfs-userns");
    b.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let r = report(
        &mut b,
        "for d in null zero tty; do echo \"dev:$d=$(stat -c '%F|%t:%T' /dev/$d)\"; done; \
         echo x > /dev/null && echo null=ok; echo uid=$(cat /proc/self/uid_map | tr -s ' ')",
    );
    r.expect("dev:null", "character special file|1:3");
    r.expect("dev:zero", "character special file|1:5");
    r.expect("dev:tty", "character special file|5:0");
    r.expect("null", "ok");
    // mknod is not permitted in a user namespace: the host's nodes are bound.
    assert!(r.has_mount("/dev/null"), "{}", r.raw);
    r.assert_mount("/dev/pts", "devpts", &["ptmxmode=666"]);
    r.assert_mount("/sys", "sysfs", &["ro"]);
    r.assert_mount("/", "", &["ro"]);
}
