//! Rootless operation: the dist runtime run by an unprivileged user with a
//! config from `runtime spec --rootless` (a user namespace mapping the
//! user to root), asserted from inside the container. Each test has its
//! own uid (no passwd entry needed, except for newuidmap) and checks that
//! nothing of that uid is left running afterwards.

use serde_json::{json, Value};
use skiff_tests::bundle::T;
use skiff_tests::{bin, busybox_rootfs, require, run, text, wait_child, wait_until, TempDir};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A bundle owned by `uid` (a private copy of the busybox rootfs) with the
/// config `runtime spec --rootless` wrote as that user.
struct Rootless {
    dir: TempDir,
    uid: u32,
    gid: u32,
    id: String,
    config: Value,
    /// Extra environment for the runtime (XDG_RUNTIME_DIR).
    env: Vec<(String, Option<String>)>,
    /// `--root`, unless None (the default root is under test).
    root: Option<PathBuf>,
    /// cgroup.procs files the runtime's process joins (as root, before it
    /// drops to the user): a delegated cgroup.
    cgroups: Vec<PathBuf>,
}

/// Unprivileged users may create user namespaces here; else fail saying
/// which switch the host has off.
fn require_unprivileged_userns() {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    assert_ne!(
        read("/proc/sys/user/max_user_namespaces").as_deref(),
        Some("0"),
        "user namespaces are disabled: sysctl user.max_user_namespaces=15000"
    );
    assert_ne!(
        read("/proc/sys/kernel/unprivileged_userns_clone").as_deref(),
        Some("0"),
        "unprivileged user namespaces are off: sysctl kernel.unprivileged_userns_clone=1"
    );
    assert_ne!(
        read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref(),
        Some("1"),
        "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+): sysctl kernel.apparmor_restrict_unprivileged_userns=0"
    );
}

impl Rootless {
    fn new(tag: &str, uid: u32) -> Rootless {
        require_unprivileged_userns();
        let dir = TempDir::new(&format!("rl-{tag}"));
        let out = run(Command::new("cp").arg("-a").arg(busybox_rootfs()).arg(dir.path().join("rootfs")), T);
        assert!(out.status.success(), "copy rootfs: {}", text(&out.stderr));
        chown_r(dir.path(), uid, uid);
        let mut b = Rootless {
            id: format!("rl-{tag}-{}", std::process::id()),
            root: Some(dir.path().join("state")),
            dir,
            uid,
            gid: uid,
            config: Value::Null,
            env: Vec::new(),
            cgroups: Vec::new(),
        };
        let out = b.rt_raw(&["spec", "--rootless", "--bundle", &b.path_str()]);
        assert!(out.status.success(), "spec --rootless as uid {uid}: {}", text(&out.stderr));
        let cfg = std::fs::read_to_string(b.dir.path().join("config.json")).expect("read config.json");
        b.config = serde_json::from_str(&cfg).expect("parse config.json");
        b.config["process"]["terminal"] = json!(false);
        b.config["hostname"] = json!(format!("rl-{tag}"));
        b
    }

    fn path_str(&self) -> String {
        self.dir.path().to_string_lossy().into_owned()
    }

    fn sh(&mut self, script: &str) -> &mut Self {
        self.config["process"]["args"] = json!(["sh", "-c", script]);
        self
    }

    /// The runtime as the user: `runtime [--root R] ARGS...`, config not written.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("runtime"));
        if let Some(r) = &self.root {
            c.arg("--root").arg(r);
        }
        c.args(args).current_dir(self.dir.path()).env_remove("XDG_RUNTIME_DIR");
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        let (uid, gid) = (self.uid, self.gid);
        // Opened here (close-on-exec): between fork and exec only raw syscalls.
        let procs: Vec<std::fs::File> = self
            .cgroups
            .iter()
            .map(|p| std::fs::OpenOptions::new().write(true).open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display())))
            .collect();
        // SAFETY: only async-signal-safe calls (write, set*id) between fork and exec.
        unsafe {
            c.pre_exec(move || {
                // Into the delegated cgroups while still root, then drop to the user.
                for f in &procs {
                    if libc::write(std::os::fd::AsRawFd::as_raw_fd(f), b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(gid, gid, gid) != 0
                    || libc::setresuid(uid, uid, uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c
    }

    fn write(&self) {
        let p = self.dir.path().join("config.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&self.config).expect("serialize")).expect("write config.json");
    }

    fn rt_raw(&self, args: &[&str]) -> Output {
        run(&mut self.command(args), T)
    }

    /// `runtime ARGS...` as the user, config written first.
    fn rt(&self, args: &[&str]) -> Output {
        self.write();
        self.rt_raw(args)
    }

    fn run(&self) -> Output {
        self.rt(&["run", "--bundle", &self.path_str(), &self.id])
    }

    /// A command whose container outlives it: output to files, not pipes.
    fn rt_detached(&self, args: &[&str]) -> Output {
        self.write();
        let (o, e) = (self.dir.path().join("rt.out"), self.dir.path().join("rt.err"));
        let mut c = self.command(args);
        c.stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).expect("create rt.out"))
            .stderr(std::fs::File::create(&e).expect("create rt.err"));
        let mut child = c.spawn().expect("spawn runtime");
        let status = wait_child(&mut child, T);
        Output { status, stdout: std::fs::read(&o).unwrap_or_default(), stderr: std::fs::read(&e).unwrap_or_default() }
    }

    fn state(&self) -> Option<Value> {
        let out = self.rt_raw(&["state", &self.id]);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("state is JSON"))
    }

    fn status(&self) -> String {
        self.state().map(|s| s["status"].as_str().unwrap_or("").to_string()).unwrap_or_else(|| "absent".into())
    }

    /// Nothing of the user left: no process, no container in the state root.
    fn assert_clean(&self) {
        assert!(
            wait_until(Duration::from_secs(10), || pids_of_uid(self.uid).is_empty()),
            "processes of uid {} left: {:?}",
            self.uid,
            pids_of_uid(self.uid)
        );
        let root = self.root.clone().unwrap_or_else(|| self.dir.path().join("state"));
        let left: Vec<_> = std::fs::read_dir(&root).into_iter().flatten().flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "state left in {}: {left:?}", root.display());
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        let _ = self.rt_raw(&["delete", "--force", &self.id]);
        // A failed test must not leave the user's processes behind.
        for pid in pids_of_uid(self.uid) {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn chown_r(p: &Path, uid: u32, gid: u32) {
    let out = run(Command::new("chown").arg("-R").arg(format!("{uid}:{gid}")).arg(p), T);
    assert!(out.status.success(), "chown -R {}: {}", p.display(), text(&out.stderr));
}

/// Live processes whose real uid is `uid`.
fn pids_of_uid(uid: u32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            let zombie = status.lines().any(|l| l.starts_with("State:") && (l.contains('Z') || l.contains('X')));
            let real = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next());
            !zombie && real == Some(uid.to_string().as_str())
        })
        .collect()
}

/// uid_map / gid_map lines as numbers.
fn map_lines(s: &str) -> Vec<Vec<u64>> {
    s.lines()
        .map(|l| l.split_whitespace().filter_map(|n| n.parse().ok()).collect())
        .filter(|v: &Vec<u64>| v.len() == 3)
        .collect()
}

#[test]
fn run_as_a_user_is_root_in_its_user_namespace() {
    let uid = 64_101;
    let mut b = Rootless::new("run", uid);
    // Limits without a delegated cgroup: warned about and ignored.
    b.config["linux"]["resources"] = json!({"pids": {"limit": 10}});
    b.sh(
        "echo uid=$(id -u) gid=$(id -g); echo host=$(hostname); grep -q '^proc /proc proc' /proc/mounts && echo proc=ok; \
         cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; cat /proc/self/setgroups; \
         touch /tmp/made-inside; exit 3",
    );
    b.config["root"]["readonly"] = json!(false);
    let out = b.run();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("uid=0 gid=0"), "{stdout}");
    assert!(stdout.contains("host=rl-run"), "{stdout}");
    assert!(stdout.contains("proc=ok"), "{stdout}");
    let parts: Vec<&str> = stdout.split("--\n").collect();
    assert_eq!(map_lines(parts[0]), [[0, uid as u64, 1]], "uid_map: {stdout}");
    assert_eq!(map_lines(parts[1]), [[0, uid as u64, 1]], "gid_map: {stdout}");
    assert!(parts[2].contains("deny"), "setgroups must be denied for a direct gid_map: {stdout}");
    assert!(stderr.contains("linux.resources pids ignored"), "no warning about the limits: {stderr}");
    // Root inside is the user outside.
    let meta = std::fs::metadata(b.dir.path().join("rootfs/tmp/made-inside")).expect("file made inside");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), uid);
    assert_eq!(b.status(), "absent");
    b.assert_clean();
}

#[test]
fn lifecycle_create_start_exec_kill_delete_as_a_user() {
    let uid = 64_102;
    let mut b = Rootless::new("life", uid);
    b.config["process"]["args"] = json!(["sleep", "60"]);
    let out = b.rt_detached(&["create", "--bundle", &b.path_str(), &b.id]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let st = b.state().expect("state after create");
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().expect("pid") as i32;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("container process");
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or_default().to_string();
    assert!(uids.split_whitespace().skip(1).all(|u| u == uid.to_string()), "host view of its uid: {uids}");
    let mine = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_ne!(std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap(), mine, "no user namespace of its own");
    // no privilege for the private overlayfs: the sealed memfd copy (CVE-2019-5736)
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("container process exe");
    assert!(exe.to_string_lossy().starts_with("/memfd:skiff-runtime"), "a rootless container process runs {exe:?}");

    let out = b.rt_detached(&["start", &b.id]);
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    assert_eq!(b.status(), "running");

    let out = b.rt(&["exec", &b.id, "sh", "-c", "id -u; hostname; cat /proc/1/cmdline | tr '\\0' ' '"]);
    assert!(out.status.success(), "exec: {}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("0\nrl-life\nsleep 60"), "{s}");

    let out = b.rt(&["kill", &b.id, "KILL"]);
    assert!(out.status.success(), "kill: {}", text(&out.stderr));
    assert!(wait_until(Duration::from_secs(10), || b.status() == "stopped"), "status {}", b.status());
    let out = b.rt(&["delete", &b.id]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    assert_eq!(b.status(), "absent");
    b.assert_clean();
}

#[test]
fn kill_all_and_delete_force_without_a_cgroup() {
    let uid = 64_103;
    let mut b = Rootless::new("killall", uid);
    b.sh("sleep 60 & sleep 60 & wait");
    let out = b.rt_detached(&["run", "-d", "--bundle", &b.path_str(), &b.id]);
    assert!(out.status.success(), "run -d: {}", text(&out.stderr));
    assert!(wait_until(Duration::from_secs(10), || pids_of_uid(uid).len() >= 3), "{:?}", pids_of_uid(uid));
    let out = b.rt(&["pause", &b.id]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no cgroup"), "{}", text(&out.stderr));
    let out = b.rt(&["kill", "--all", &b.id, "KILL"]);
    assert!(out.status.success(), "kill --all: {}", text(&out.stderr));
    assert!(wait_until(Duration::from_secs(10), || b.status() == "stopped"), "status {}", b.status());
    let out = b.rt(&["delete", "--force", &b.id]);
    assert!(out.status.success(), "delete --force: {}", text(&out.stderr));
    b.assert_clean();
}

#[test]
fn a_user_without_a_user_namespace_is_told_so() {
    let uid = 64_104;
    let mut b = Rootless::new("nouserns", uid);
    let ns = b.config["linux"]["namespaces"].as_array_mut().expect("namespaces");
    ns.retain(|n| n["type"] != "user");
    b.sh("true");
    let out = b.run();
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(e.contains("user namespace") && e.contains(&format!("uid {uid}")) && e.contains("spec --rootless"), "{e}");
    b.assert_clean();
}

#[test]
fn default_state_root_is_the_users_own() {
    let uid = 64_105;
    let mut b = Rootless::new("root", uid);
    b.config["process"]["args"] = json!(["sleep", "60"]);
    // $XDG_RUNTIME_DIR/skiff-runtime when set.
    let xdg = b.dir.path().join("xdg");
    std::fs::create_dir(&xdg).unwrap();
    chown_r(&xdg, uid, uid);
    b.root = None;
    b.env = vec![("XDG_RUNTIME_DIR".into(), Some(xdg.to_string_lossy().into_owned()))];
    let out = b.rt_detached(&["create", "--bundle", &b.path_str(), &b.id]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    assert!(xdg.join("skiff-runtime").join(&b.id).join("state.json").is_file(), "state not under $XDG_RUNTIME_DIR");
    let out = b.rt(&["delete", "--force", &b.id]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    assert!(!xdg.join("skiff-runtime").join(&b.id).exists());

    // Else /tmp/skiff-runtime-<uid>, made private to the user.
    b.env.clear();
    let tmp_root = PathBuf::from(format!("/tmp/skiff-runtime-{uid}"));
    let _ = std::fs::remove_dir_all(&tmp_root);
    let out = b.rt_detached(&["create", "--bundle", &b.path_str(), &b.id]);
    let made = tmp_root.join(&b.id).join("state.json").is_file();
    let meta = std::fs::metadata(&tmp_root);
    let out2 = b.rt(&["delete", "--force", &b.id]);
    let _ = std::fs::remove_dir_all(&tmp_root);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    assert!(made, "state not under {}", tmp_root.display());
    let meta = meta.expect("state root");
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.mode() & 0o777), (uid, 0o700));
    assert!(out2.status.success(), "delete: {}", text(&out2.stderr));

    // --root still wins.
    b.root = Some(b.dir.path().join("state"));
    let out = b.rt_detached(&["create", "--bundle", &b.path_str(), &b.id]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    assert!(b.dir.path().join("state").join(&b.id).is_dir());
    let out = b.rt(&["delete", "--force", &b.id]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    b.assert_clean();
}

#[test]
fn mapping_more_than_ones_own_id_without_newuidmap_is_explained() {
    let uid = 64_106;
    let mut b = Rootless::new("nohelper", uid);
    b.config["linux"]["uidMappings"].as_array_mut().unwrap().push(json!({"containerID": 1, "hostID": 300000, "size": 10}));
    b.sh("true");
    // newuidmap out of reach.
    b.env = vec![("PATH".into(), Some("/nonexistent".into()))];
    let out = b.run();
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(e.contains("newuidmap") && e.contains("uidmap") && e.contains("/etc/subuid"), "{e}");
    b.assert_clean();
}

/// A passwd user with subordinate ids (what newuidmap checks), removed on drop.
struct TestUser {
    name: String,
    uid: u32,
    sub: (u64, u64),
}

impl TestUser {
    fn add() -> TestUser {
        let name = format!("skiff-rl-{}", std::process::id());
        let _ = run(Command::new("userdel").arg(&name), T);
        let out = run(Command::new("useradd").args(["-M", "-s", "/usr/sbin/nologin", &name]), T);
        assert!(out.status.success(), "useradd {name}: {}", text(&out.stderr));
        let mut u = TestUser { uid: 0, sub: (0, 0), name };
        let out = run(Command::new("id").arg("-u").arg(&u.name), T);
        u.uid = text(&out.stdout).trim().parse().expect("uid of the test user");
        let find = |file: &str| {
            std::fs::read_to_string(file).unwrap_or_default().lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() == 3 && f[0] == u.name).then(|| (f[1].parse().unwrap_or(0), f[2].parse().unwrap_or(0)))
            })
        };
        if find("/etc/subuid").is_none() || find("/etc/subgid").is_none() {
            // useradd adds them only when login.defs has SUB_UID_*.
            let range = "1500000000-1500065535";
            let out = run(Command::new("usermod").args(["--add-subuids", range, "--add-subgids", range, &u.name]), T);
            assert!(out.status.success(), "usermod --add-subuids: {}", text(&out.stderr));
        }
        let (s, g): ((u64, u64), (u64, u64)) = (find("/etc/subuid").unwrap(), find("/etc/subgid").unwrap());
        u.sub = (s.0.max(g.0), s.1.min(g.1).min(65536));
        // Both files must hold the same start for the simple maps below.
        assert_eq!(s.0, g.0, "subuid and subgid ranges of {} differ", u.name);
        u
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // userdel removes the passwd, group, subuid and subgid entries.
        let _ = run(Command::new("userdel").arg(&self.name), T);
    }
}

#[test]
fn newuidmap_maps_subordinate_ids() {
    require("/usr/bin/newuidmap", "uidmap");
    require("/usr/bin/newgidmap", "uidmap");
    let user = TestUser::add();
    let (start, count) = user.sub;
    let mut b = Rootless::new("subids", user.uid);
    for key in ["uidMappings", "gidMappings"] {
        b.config["linux"][key].as_array_mut().unwrap().push(json!({"containerID": 1, "hostID": start, "size": count}));
    }
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
    b.sh("echo ids=$(id -u):$(id -g):$(id -G); cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; touch /tmp/by-1000");
    // The rootfs's /tmp writable for the container's uid 1000.
    std::fs::set_permissions(b.dir.path().join("rootfs/tmp"), std::os::unix::fs::PermissionsExt::from_mode(0o1777))
        .unwrap();
    let out = b.run();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "run: {}\n{stdout}", text(&out.stderr));
    assert!(stdout.contains("ids=1000:1000:"), "{stdout}");
    let groups = stdout.lines().next().unwrap_or("").split(':').nth(2).unwrap_or("").to_string();
    assert!(groups.split_whitespace().any(|g| g == "5"), "additional gid 5 missing: {stdout}");
    let parts: Vec<&str> = stdout.split_once('\n').map_or("", |x| x.1).split("--\n").collect();
    assert_eq!(map_lines(parts[0]), [[0, user.uid as u64, 1], [1, start, count]], "uid_map: {stdout}");
    assert_eq!(map_lines(parts[1]), [[0, user.uid as u64, 1], [1, start, count]], "gid_map: {stdout}");
    let meta = std::fs::metadata(b.dir.path().join("rootfs/tmp/by-1000")).expect("file made by uid 1000");
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid() as u64, meta.gid() as u64), (start + 999, start + 999));
    b.assert_clean();
    // Processes of the subordinate ids too.
    assert!(pids_of_uid((start + 999) as u32).is_empty());
    drop(b);
}

/// Every cgroup hierarchy mounted on the host (v1 controllers, cgroup2).
fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::canonicalize(e.path()).ok())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A cgroup delegated to a user in every hierarchy: `<h>/<name>` owned by
/// the user, with a `leaf` where the runtime runs (cgroup2 admits a move
/// only when the common ancestor is writable); removed on drop.
struct Delegated {
    dirs: Vec<PathBuf>,
}

impl Delegated {
    fn new(name: &str, uid: u32) -> Delegated {
        let mut dirs = Vec::new();
        for h in hierarchies() {
            let d = h.join(name);
            std::fs::create_dir(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
            dirs.push(d.clone());
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(h.join(f)) {
                    std::fs::write(d.join(f), v.trim()).unwrap();
                }
            }
            // cgroup2: the controllers the parent offers, for the container below.
            if let Ok(c) = std::fs::read_to_string(d.join("cgroup.controllers")) {
                for ctl in c.split_whitespace() {
                    let _ = std::fs::write(d.join("cgroup.subtree_control"), format!("+{ctl}"));
                }
            }
            let leaf = d.join("leaf");
            std::fs::create_dir(&leaf).unwrap();
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(d.join(f)) {
                    std::fs::write(leaf.join(f), v.trim()).unwrap();
                }
            }
            chown_r(&d, uid, uid);
        }
        Delegated { dirs }
    }

    fn procs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("leaf/cgroup.procs")).collect()
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in &self.dirs {
            let mut subs: Vec<PathBuf> = std::fs::read_dir(d)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            subs.push(d.clone());
            for s in subs {
                wait_until(Duration::from_secs(5), || std::fs::remove_dir(&s).is_ok() || !s.exists());
            }
        }
    }
}

#[test]
fn a_delegated_cgroup_is_used_with_its_limits() {
    let uid = 64_107;
    let name = format!("skiff-rl-deleg-{}", std::process::id());
    let deleg = Delegated::new(&name, uid);
    let mut b = Rootless::new("deleg", uid);
    b.cgroups = deleg.procs();
    let path = format!("/{name}/{}", b.id);
    b.config["linux"]["cgroupsPath"] = json!(path);
    b.config["linux"]["resources"] = json!({"pids": {"limit": 17}, "memory": {"limit": 67108864}});
    b.config["process"]["args"] = json!(["sleep", "60"]);
    let out = b.rt_detached(&["create", "--bundle", &b.path_str(), &b.id]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let pid = b.state().expect("state")["pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cg.lines() {
        assert!(line.ends_with(&path), "container not in its delegated cgroup: {cg}");
    }
    let pids_max = ["pids", ""].iter().map(|c| Path::new("/sys/fs/cgroup").join(c).join(&path[1..]).join("pids.max"));
    let pids_max = pids_max.filter_map(|p| std::fs::read_to_string(p).ok()).next().expect("pids.max of the container");
    assert_eq!(pids_max.trim(), "17");
    let mem = [("memory", "memory.limit_in_bytes"), ("", "memory.max")]
        .iter()
        .filter_map(|(c, f)| std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(c).join(&path[1..]).join(f)).ok())
        .next()
        .expect("memory limit file of the container");
    assert_eq!(mem.trim(), "67108864");

    let out = b.rt_detached(&["start", &b.id]);
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    let out = b.rt(&["pause", &b.id]);
    assert!(out.status.success(), "pause: {}", text(&out.stderr));
    assert_eq!(b.status(), "paused");
    let out = b.rt(&["resume", &b.id]);
    assert!(out.status.success(), "resume: {}", text(&out.stderr));
    let out = b.rt(&["ps", "--format", "json", &b.id]);
    assert!(out.status.success(), "ps: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&pid.to_string()), "{}", text(&out.stdout));
    let out = b.rt(&["delete", "--force", &b.id]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    for d in &deleg.dirs {
        assert!(!d.join(&b.id).exists(), "cgroup {} left behind", d.join(&b.id).display());
    }
    b.assert_clean();
}
