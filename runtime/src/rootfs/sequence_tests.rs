//! The whole sequence (prepare, pivot, finish) for real, without the rest
//! of the runtime: a forked child enters new mount and pid (and in one test
//! user) namespaces, sets up a busybox rootfs in a temp dir and execs
//! busybox to report what the container sees through a pipe. Nothing is
//! mounted outside those namespaces; the temp dir is removed afterwards.

use super::{finish, pivot, prepare};
use oci_spec::runtime::Spec;
use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

const APPLETS: &[&str] = &["sh", "cat", "ls", "mount", "stat", "touch", "readlink", "echo"];

/// A temp dir with `rootfs/` (busybox and some hostile symlinks), a host
/// `data/` directory and a host file to bind.
struct Bundle(PathBuf);

impl Bundle {
    fn new(tag: &str) -> Bundle {
        let busybox = Path::new("/bin/busybox");
        assert!(busybox.is_file(), "/bin/busybox is missing: install the Debian package `busybox-static`");
        let dir = std::env::temp_dir().join(format!("skiff-rootfs-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let r = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc/secretdir", "etc/rodir", "opt/sub", "tmp"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::copy(busybox, r.join("bin/busybox")).unwrap();
        for a in APPLETS {
            symlink("busybox", r.join("bin").join(a)).unwrap();
        }
        fs::write(r.join("etc/secret"), "s3cret").unwrap();
        fs::write(r.join("etc/secretdir/file"), "hidden").unwrap();
        fs::write(r.join("etc/rodir/file"), "ro").unwrap();
        fs::write(r.join("opt/copied"), "copy me").unwrap();
        fs::write(r.join("opt/sub/deep"), "deep").unwrap();
        symlink("copied", r.join("opt/link")).unwrap();
        // Hostile mount targets: both must stay inside the rootfs.
        symlink("/etc", r.join("evil")).unwrap();
        symlink("../../../../../../../../..", r.join("up")).unwrap();
        fs::create_dir_all(dir.join("data")).unwrap();
        fs::write(dir.join("data/hello"), "hello").unwrap();
        fs::create_dir_all(dir.join("data/sub")).unwrap();
        fs::write(dir.join("hostfile"), "from the host").unwrap();
        Bundle(dir)
    }

    fn rootfs(&self) -> PathBuf {
        self.0.join("rootfs")
    }

    fn spec(&self, json: &str) -> Spec {
        let json = json.replace("@BUNDLE@", self.0.to_str().unwrap()).replace("@PID@", &std::process::id().to_string());
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("test config: {e}\n{json}"))
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write_fd(fd: RawFd, s: &str) {
    let b = s.as_bytes();
    let mut off = 0;
    while off < b.len() {
        // SAFETY: writing from a live buffer.
        let n = unsafe { libc::write(fd, b[off..].as_ptr().cast(), b.len() - off) };
        if n <= 0 {
            return;
        }
        off += n as usize;
    }
}

/// Forks a child that unshares `flags`, forks again (the grandchild is pid
/// 1 of the new pid namespace) and runs `body` there with stdout and
/// stderr on a pipe; `body` must exec or fail. Returns the exit status of
/// the child and everything written to the pipe.
fn run_in_namespaces(flags: libc::c_int, body: impl FnOnce() -> Result<(), String>) -> (i32, String) {
    let pipe = || {
        let mut fds = [0; 2];
        // SAFETY: pipe2 into a two-int array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        (fds[0], fds[1])
    };
    let (rd, wr) = pipe();
    // With a user namespace: the child says when it has unshared, the
    // parent writes its id maps and says go.
    let (ready_rd, ready_wr) = pipe();
    let (go_rd, go_wr) = pipe();
    // SAFETY: the child only runs the code below and always _exits; it never
    // returns into the test harness (a panic is caught).
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: plain syscalls in the freshly forked child.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::close(rd);
                libc::dup2(wr, 1);
                libc::dup2(wr, 2);
            }
            unsafe {
                libc::close(ready_rd);
                libc::close(go_wr);
            }
            if let Err(e) = enter(flags, ready_wr, go_rd) {
                write_fd(2, &format!("ERROR: {e}\n"));
                return 1;
            }
            // SAFETY: as above; the grandchild runs `body` and execs or _exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                let e = body().err().unwrap_or_else(|| "body returned without exec".into());
                write_fd(2, &format!("ERROR: {e}\n"));
                unsafe { libc::_exit(1) };
            }
            let mut st = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            if libc::WIFEXITED(st) {
                libc::WEXITSTATUS(st)
            } else {
                128 + libc::WTERMSIG(st)
            }
        }))
        .unwrap_or(101);
        unsafe { libc::_exit(code) };
    }
    unsafe {
        libc::close(wr);
        libc::close(ready_wr);
        libc::close(go_rd);
    }
    if flags & libc::CLONE_NEWUSER != 0 {
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into a live buffer.
        if unsafe { libc::read(ready_rd, b.as_mut_ptr().cast(), 1) } == 1 {
            for (file, map) in [("uid_map", USERNS_MAP), ("gid_map", USERNS_MAP)] {
                let _ = fs::write(format!("/proc/{child}/{file}"), map);
            }
        }
    }
    unsafe {
        libc::close(ready_rd);
        libc::close(go_wr);
    }
    // SAFETY: `rd` is ours; the File owns it from here.
    let mut f = unsafe { fs::File::from_raw_fd(rd) };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(s) => s,
        Err(_) => {
            // SAFETY: killing our own child; its descendants die with it (PDEATHSIG).
            unsafe { libc::kill(child, libc::SIGKILL) };
            unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
            panic!("the namespaced child did not finish within 60 s");
        }
    };
    let mut st = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(child, &mut st, 0) };
    let code = if libc::WIFEXITED(st) { libc::WEXITSTATUS(st) } else { 128 + libc::WTERMSIG(st) };
    (code, out)
}

/// The id map of the user namespace tests: the container's 0..65535 are
/// the host's 100000..165535, as with podman or Docker's userns-remap.
const USERNS_MAP: &str = "0 100000 65536";

/// Unshares `flags`. In a new user namespace, waits for the parent to write
/// the id maps (on `go`, closed when done), then becomes root of the
/// namespace, as the runtime does before setting up the rootfs.
fn enter(flags: libc::c_int, ready: RawFd, go: RawFd) -> Result<(), String> {
    // SAFETY: plain syscall.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(format!("unshare: {}", std::io::Error::last_os_error()));
    }
    write_fd(ready, "u");
    let mut b = [0u8; 1];
    // SAFETY: plain syscalls on our own descriptors and ids.
    unsafe {
        libc::close(ready);
        libc::read(go, b.as_mut_ptr().cast(), 1);
        libc::close(go);
    }
    if flags & libc::CLONE_NEWUSER != 0 {
        let m = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        if m.trim().is_empty() {
            return Err("the parent did not write the uid map".into());
        }
        // SAFETY: plain syscalls.
        if unsafe { libc::setresgid(0, 0, 0) } != 0 || unsafe { libc::setresuid(0, 0, 0) } != 0 {
            return Err(format!("become root in the user namespace: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Gives the tree at `p` to the user namespace's root (host uid 100000).
fn chown_tree(p: &Path) {
    std::os::unix::fs::lchown(p, Some(100000), Some(100000)).unwrap();
    if fs::symlink_metadata(p).unwrap().is_dir() {
        for e in fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path());
        }
    }
}

/// Replaces the process with `busybox sh -c script`.
fn exec_sh(script: &str) -> Result<(), String> {
    let args = [CString::new("sh").unwrap(), CString::new("-c").unwrap(), CString::new(script).unwrap()];
    let env = [CString::new("PATH=/bin").unwrap()];
    let e = nix::unistd::execve(c"/bin/busybox", &args, &env).unwrap_err();
    Err(format!("exec /bin/busybox: {e}"))
}

/// What the container reported: its mountinfo and `key:value` lines.
struct Report {
    mounts: Vec<super::mountinfo::MountInfo>,
    values: HashMap<String, String>,
    raw: String,
}

impl Report {
    fn parse(out: &str) -> Report {
        let (info, rest) = out.split_once("@@\n").unwrap_or_else(|| panic!("no report from the container:\n{out}"));
        let values =
            rest.lines().filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect();
        Report { mounts: super::mountinfo::parse(info), values, raw: out.to_string() }
    }

    fn mount(&self, at: &str) -> &super::mountinfo::MountInfo {
        self.mounts
            .iter()
            .rev()
            .find(|m| m.mount_point == Path::new(at))
            .unwrap_or_else(|| panic!("no mount on {at} in the container:\n{}", self.raw))
    }

    fn value(&self, key: &str) -> &str {
        self.values.get(key).unwrap_or_else(|| panic!("no {key}= in the report:\n{}", self.raw))
    }

    fn expect(&self, key: &str, want: &str) {
        assert_eq!(self.value(key), want, "{key} in the report:\n{}", self.raw);
    }

    fn assert_mount(&self, at: &str, fs_type: &str, options: &[&str]) {
        let m = self.mount(at);
        assert_eq!(m.fs_type, fs_type, "type of {at}:\n{}", self.raw);
        for o in options {
            assert!(m.has_option(o), "{at} lacks {o} ({}):\n{}", m.options, self.raw);
        }
    }
}

/// Prints mountinfo, `@@`, then one `key=value` per check.
const SCRIPT: &str = r#"
cat /proc/self/mountinfo
echo @@
echo pid=$$
for p in /data /data/sub /rdata /rdata/sub /etc/rodir /tmp /newfile /dev/shm /proc/sys/kernel/x; do
  if touch $p/probe 2>/dev/null || touch $p 2>/dev/null; then echo "write:$p=rw"; else echo "write:$p=ro"; fi
done
echo "secret=[$(cat /etc/secret)]"
echo "secretdir=[$(ls -A /etc/secretdir)]"
echo "keys=[$(cat /proc/keys 2>&1)]"
echo "acpi=[$(ls -A /proc/acpi 2>&1)]"
echo "hostfile=[$(cat /etc/hostfile)]"
echo "opt=[$(cat /opt/copied)|$(cat /opt/sub/deep)|$(readlink /opt/link)]"
echo "rodirfile=[$(cat /etc/rodir/file)]"
for l in ptmx fd stdin stdout stderr; do echo "link:/dev/$l=$(readlink /dev/$l)"; done
for d in null zero full random urandom tty mynull myfifo; do
  echo "dev:/dev/$d=$(stat -c '%F|%a|%u:%g|%t:%T' /dev/$d 2>&1)"
done
echo "ls=$(ls /dev | tr '\n' ' ')"
"#;

const FULL: &str = r#"{
  "ociVersion": "1.0.2",
  "root": {"path": "rootfs", "readonly": true},
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    {"destination": "/data", "type": "bind", "source": "@BUNDLE@/data", "options": ["rbind", "ro", "nosuid", "nodev", "rprivate"]},
    {"destination": "/rdata", "source": "@BUNDLE@/data", "options": ["rbind", "rro"]},
    {"destination": "/etc/hostfile", "source": "@BUNDLE@/hostfile", "options": ["bind", "ro"]},
    {"destination": "/evil/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "noexec"]},
    {"destination": "/up/skiff-escape-@PID@", "type": "tmpfs", "source": "tmpfs"},
    {"destination": "/opt", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "noexec"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}
  ],
  "linux": {
    "namespaces": [{"type": "mount"}, {"type": "pid"}],
    "devices": [
      {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 384, "uid": 1, "gid": 2},
      {"path": "/dev/myfifo", "type": "p", "fileMode": 420}
    ],
    "maskedPaths": ["/etc/secret", "/etc/secretdir", "/proc/kcore", "/proc/keys", "/proc/acpi", "/does/not/exist"],
    "readonlyPaths": ["/etc/rodir", "/proc/sys", "/not/there"]
  }
}"#;

/// Mounts a tmpfs on `data/sub` of the bundle (inside the namespace), to
/// tell a recursive read-only bind from a plain one.
fn mount_sub(bundle: &Path) -> Result<(), String> {
    let sub = bundle.join("data/sub");
    nix::mount::mount(Some("tmpfs"), &sub, Some("tmpfs"), nix::mount::MsFlags::empty(), None::<&str>)
        .map_err(|e| format!("mount tmpfs on {}: {e}", sub.display()))
}

fn host_is_clean(bundle: &Bundle) {
    let host = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host.contains(bundle.0.to_str().unwrap()), "a mount leaked to the host:\n{host}");
    let escape = PathBuf::from(format!("/skiff-escape-{}", std::process::id()));
    assert!(!escape.exists(), "a hostile symlink led a mount target out of the rootfs: {}", escape.display());
}

fn assert_common(r: &Report) {
    assert_eq!(r.value("pid"), "1", "busybox should be pid 1 of the new pid namespace");
    // Hostile symlinks resolved inside the rootfs.
    r.assert_mount("/etc/mnt", "tmpfs", &["noexec"]);
    r.assert_mount(&format!("/skiff-escape-{}", std::process::id()), "tmpfs", &[]);
    assert!(!r.mounts.iter().any(|m| m.mount_point.starts_with("/evil")));
    // Binds, their flags and recursion.
    r.assert_mount("/data", r.mount("/data").fs_type.as_str(), &["ro", "nosuid", "nodev"]);
    r.assert_mount("/data/sub", "tmpfs", &["rw"]);
    r.assert_mount("/rdata", r.mount("/rdata").fs_type.as_str(), &["ro"]);
    r.assert_mount("/rdata/sub", "tmpfs", &["ro"]);
    r.assert_mount("/etc/hostfile", r.mount("/etc/hostfile").fs_type.as_str(), &["ro"]);
    r.expect("hostfile", "[from the host]");
    r.expect("write:/data", "ro");
    r.expect("write:/data/sub", "rw");
    r.expect("write:/rdata/sub", "ro");
    // Kernel filesystems.
    r.assert_mount("/proc", "proc", &["nosuid", "noexec", "nodev"]);
    r.assert_mount("/dev/pts", "devpts", &["nosuid", "noexec"]);
    let pts = r.mount("/dev/pts");
    for o in ["ptmxmode=666", "mode=620"] {
        assert!(pts.super_options.split(',').any(|s| s == o), "devpts lacks {o}: {}", pts.super_options);
    }
    r.assert_mount("/dev/shm", "tmpfs", &["nosuid", "noexec", "nodev"]);
    assert!(r.mount("/dev/shm").super_options.contains("size=65536k"));
    r.assert_mount("/tmp", "tmpfs", &["nosuid", "nodev", "rw"]);
    r.expect("write:/tmp", "rw");
    r.assert_mount("/opt", "tmpfs", &["noexec"]);
    r.expect("opt", "[copy me|deep|copied]");
    // Masked and read-only paths; missing ones skipped.
    r.expect("secret", "[]");
    r.expect("secretdir", "[]");
    r.expect("keys", "[]");
    r.expect("acpi", "[]");
    r.assert_mount("/proc/acpi", "tmpfs", &["ro"]);
    r.mount("/etc/secret");
    r.assert_mount("/etc/secretdir", "tmpfs", &["ro"]);
    r.assert_mount("/etc/rodir", r.mount("/etc/rodir").fs_type.as_str(), &["ro"]);
    r.expect("rodirfile", "[ro]");
    r.expect("write:/etc/rodir", "ro");
    r.assert_mount("/proc/sys", "proc", &["ro", "nosuid", "nodev", "noexec"]);
    // root.readonly.
    r.assert_mount("/", r.mount("/").fs_type.as_str(), &["ro"]);
    r.expect("write:/newfile", "ro");
}

fn assert_devices(r: &Report, owner_of_defaults: &str) {
    for (d, mm) in
        [("null", "1:3"), ("zero", "1:5"), ("full", "1:7"), ("random", "1:8"), ("urandom", "1:9"), ("tty", "5:0")]
    {
        assert_eq!(
            r.value(&format!("dev:/dev/{d}")),
            format!("character special file|666|{owner_of_defaults}|{mm}"),
            "/dev/{d}"
        );
    }
    r.expect("link:/dev/ptmx", "pts/ptmx");
    r.expect("link:/dev/fd", "/proc/self/fd");
    r.expect("link:/dev/stdin", "/proc/self/fd/0");
    r.expect("link:/dev/stdout", "/proc/self/fd/1");
    r.expect("link:/dev/stderr", "/proc/self/fd/2");
}

#[test]
fn full_sequence_in_new_mount_and_pid_namespaces() {
    let b = Bundle::new("full");
    let spec = b.spec(FULL);
    let (rootfs, bundle) = (b.rootfs(), b.0.clone());
    let (code, out) = run_in_namespaces(libc::CLONE_NEWNS | libc::CLONE_NEWPID, || {
        mount_sub(&bundle)?;
        prepare(&spec, &rootfs).map_err(|e| e.0)?;
        pivot(&rootfs, false).map_err(|e| e.0)?;
        finish(&spec).map_err(|e| e.0)?;
        exec_sh(SCRIPT)
    });
    assert_eq!(code, 0, "container failed:\n{out}");
    let r = Report::parse(&out);
    assert_common(&r);
    assert_devices(&r, "0:0");
    r.expect("dev:/dev/mynull", "character special file|600|1:2|1:3");
    assert!(r.value("dev:/dev/myfifo").starts_with("fifo|644|0:0"), "{}", r.value("dev:/dev/myfifo"));
    r.assert_mount("/dev", "tmpfs", &["nosuid"]);
    assert!(r.mount("/dev/pts").super_options.contains("gid=5"), "{}", r.raw);
    r.assert_mount("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]);
    r.assert_mount("/sys", "sysfs", &["ro", "nosuid", "noexec", "nodev"]);
    r.assert_mount("/sys/fs/cgroup", r.mount("/sys/fs/cgroup").fs_type.as_str(), &["ro"]);
    let cgroups: Vec<_> = r.mounts.iter().filter(|m| m.fs_type.starts_with("cgroup")).collect();
    assert!(!cgroups.is_empty(), "no cgroup mount:\n{}", r.raw);
    for m in cgroups {
        assert!(m.mount_point.starts_with("/sys/fs/cgroup") && m.has_option("ro"), "{m:?}");
    }
    // The old root is gone: one proc (and its read-only /proc/sys), one sysfs.
    assert_eq!(r.mounts.iter().filter(|m| m.fs_type == "proc").count(), 2, "{}", r.raw);
    assert_eq!(r.mounts.iter().filter(|m| m.fs_type == "sysfs").count(), 1);
    host_is_clean(&b);
}

#[test]
fn user_namespace_falls_back_to_binds() {
    let b = Bundle::new("userns");
    // No mqueue: a user namespace without an IPC namespace of its own
    // cannot mount one and the host may have no /dev/mqueue to bind.
    let config = FULL.replace(
        r#"{"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},"#,
        "",
    );
    // No /dev/mynull: a node the host lacks cannot be bound (mknod of a
    // fifo needs no privilege).
    let config = config.replace(
        r#"{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 384, "uid": 1, "gid": 2},"#,
        "",
    );
    // A devpts group the namespace does not map: the kernel refuses it.
    let config = config.replace(r#""mode=0620", "gid=5""#, r#""mode=0620", "gid=70000""#);
    let spec = b.spec(&config);
    let (rootfs, bundle) = (b.rootfs(), b.0.clone());
    chown_tree(&rootfs);
    let (code, out) = run_in_namespaces(libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID, || {
        mount_sub(&bundle)?;
        prepare(&spec, &rootfs).map_err(|e| e.0)?;
        pivot(&rootfs, false).map_err(|e| e.0)?;
        finish(&spec).map_err(|e| e.0)?;
        exec_sh(SCRIPT)
    });
    assert_eq!(code, 0, "container failed:\n{out}");
    let r = Report::parse(&out);
    assert_common(&r);
    // mknod is not permitted: the host's nodes are bound (their owner,
    // host root, is unmapped: nobody).
    assert_devices(&r, "65534:65534");
    assert!(r.mounts.iter().any(|m| m.mount_point == Path::new("/dev/null")), "no bind on /dev/null:\n{}", r.raw);
    assert!(r.value("dev:/dev/myfifo").starts_with("fifo|644|0:0"), "{}", r.raw);
    // Group 70000 is not mapped: devpts goes without it.
    assert!(!r.mount("/dev/pts").super_options.contains("gid="), "{}", r.raw);
    // sysfs without a network namespace: the host's /sys, bound read-only.
    r.assert_mount("/sys", "sysfs", &["ro"]);
    // ... recursively: the host's submounts under /sys too.
    for m in r.mounts.iter().filter(|m| m.mount_point.starts_with("/sys")) {
        assert!(m.has_option("ro"), "{m:?} is writable:\n{}", r.raw);
    }
    host_is_clean(&b);
}

const NO_PIVOT: &str = r#"{
  "ociVersion": "1.0.2",
  "root": {"path": "rootfs"},
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "source": "/dev", "options": ["rbind", "nosuid"]},
    {"destination": "/evil/mnt", "type": "tmpfs", "source": "tmpfs"},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
  ],
  "linux": {"rootfsPropagation": "rshared", "maskedPaths": ["/etc/secret"], "readonlyPaths": ["/etc/rodir"]}
}"#;

fn shared_propagation_and_a_bound_dev(no_pivot: bool) {
    let b = Bundle::new(if no_pivot { "nopivot" } else { "shared" });
    let spec = b.spec(NO_PIVOT);
    let rootfs = b.rootfs();
    let (code, out) = run_in_namespaces(libc::CLONE_NEWNS | libc::CLONE_NEWPID, || {
        // rshared must not join the host's peer groups in a test.
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_PRIVATE | nix::mount::MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("make / rprivate: {e}"))?;
        prepare(&spec, &rootfs).map_err(|e| e.0)?;
        pivot(&rootfs, no_pivot).map_err(|e| e.0)?;
        finish(&spec).map_err(|e| e.0)?;
        exec_sh(SCRIPT)
    });
    assert_eq!(code, 0, "container failed:\n{out}");
    let r = Report::parse(&out);
    r.expect("pid", "1");
    r.assert_mount("/etc/mnt", "tmpfs", &[]);
    assert!(r.mount("/").is_shared(), "/ should be shared:\n{}", r.raw);
    r.assert_mount("/dev", "devtmpfs", &["nosuid"]);
    // /dev is the host's: no links or nodes made in it.
    r.expect("dev:/dev/mynull", "stat: can't stat '/dev/mynull': No such file or directory");
    r.expect("secret", "[]");
    r.expect("write:/etc/rodir", "ro");
    r.expect("write:/newfile", "rw");
    // The old root is gone (pivot), or the host's proc and sysfs were
    // unmounted before the chroot (no pivot).
    assert_eq!(r.mounts.iter().filter(|m| m.fs_type == "proc").count(), 1, "{}", r.raw);
    assert_eq!(r.mounts.iter().filter(|m| m.fs_type == "sysfs").count(), 0, "{}", r.raw);
    fs::remove_file(b.rootfs().join("newfile")).ok();
    host_is_clean(&b);
}

#[test]
fn no_pivot_with_shared_propagation_and_a_bound_dev() {
    shared_propagation_and_a_bound_dev(true);
}

#[test]
fn pivot_with_shared_propagation_and_a_bound_dev() {
    shared_propagation_and_a_bound_dev(false);
}

#[test]
fn errors_name_the_mount_and_target() {
    let b = Bundle::new("errors");
    let spec = b.spec(
        r#"{"ociVersion": "1.0.2", "mounts": [{"destination": "/proc/sysrq-trigger", "source": "/dev/null", "options": ["bind"]}]}"#,
    );
    let rootfs = b.rootfs();
    let (code, out) = run_in_namespaces(libc::CLONE_NEWNS, || {
        prepare(&spec, &rootfs).map_err(|e| e.0)?;
        Err("prepare should have failed".into())
    });
    assert_eq!(code, 1);
    assert!(
        out.contains("ERROR: mount bind on ")
            && out.contains("rootfs/proc/sysrq-trigger: mounts inside /proc are not allowed"),
        "{out}"
    );
    host_is_clean(&b);
}
