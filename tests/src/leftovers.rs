//! What tests leave behind on the host and how to remove it: processes by
//! command line, mounts under a dir, cgroups by parent path. Shared by the
//! private dockerd and containerd harnesses.

use crate::{text, wait_until};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Pids (not ours) whose command line, NULs as spaces, satisfies `f`.
pub fn pids_matching(f: impl Fn(&str) -> bool) -> Vec<u32> {
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| p != me && !zombie(p))
        .filter(|p| {
            let c = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            !c.is_empty() && f(&text(&c).replace('\0', " "))
        })
        .collect()
}

pub fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')))
        .unwrap_or(true)
}

/// `pid (command line)` for each pid.
pub fn describe(pids: &[u32]) -> String {
    pids.iter()
        .map(|p| {
            let c = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            format!("{p} ({})", text(&c).replace('\0', " ").trim())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// SIGKILLs each pid.
pub fn kill_all(pids: &[u32]) {
    for &p in pids {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(p as libc::pid_t, libc::SIGKILL) };
    }
}

/// Mount points (unescaped) of /proc/self/mountinfo at or under `root`, in mount order.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(root))
        .collect()
}

/// Unmounts (lazily) everything at or under `root`; returns the problems:
/// a mount that a test left there is one.
pub fn unmount_all_under(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let left = mounts_under(root);
    if !left.is_empty() {
        problems.push(format!("mounts left (unmounted them): {left:?}"));
    }
    for _ in 0..5 {
        let mounts = mounts_under(root);
        if mounts.is_empty() {
            break;
        }
        for m in mounts.iter().rev() {
            let c = CString::new(m.as_os_str().as_bytes()).expect("mount point without NUL");
            // SAFETY: umount2 with a valid C string.
            if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
                problems.push(format!("umount {}: {}", m.display(), std::io::Error::last_os_error()));
            }
        }
    }
    let mounts = mounts_under(root);
    if !mounts.is_empty() {
        problems.push(format!("still mounted: {mounts:?}"));
    }
    problems
}

/// Undoes mountinfo's octal escapes (`\040` for a space...).
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `<hierarchy>/<parent>` for every mounted cgroup hierarchy (v1 and v2) where it exists.
pub fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| pre.split(' ').nth(4).map(unescape_mountinfo))?
        })
        .map(|m| Path::new(&m).join(parent.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Every pid in `cgroups` and their descendants.
pub fn cgroup_pids(cgroups: &[PathBuf]) -> Vec<u32> {
    fn walk(dir: &Path, out: &mut Vec<u32>) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        out.extend(procs.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&e.path(), out);
                }
            }
        }
    }
    let mut out = Vec::new();
    for cg in cgroups {
        walk(cg, &mut out);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Removes cgroup `dir` and its descendants (rmdir, children first).
pub fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_type()?.is_dir() {
            remove_cgroup(&e.path())?;
        }
    }
    // freshly emptied cgroups can be busy for a moment
    let mut last = Ok(());
    wait_until(Duration::from_secs(5), || {
        last = std::fs::remove_dir(dir);
        last.is_ok() || !dir.exists()
    });
    if dir.exists() {
        last
    } else {
        Ok(())
    }
}

/// Starts a test's private daemon with its output in `log` and SIGTERM
/// when the thread that started it dies without cleaning up (a killed test).
pub fn spawn_daemon(cmd: &mut std::process::Command, log: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let f = std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    cmd.stdin(std::process::Stdio::null()).stdout(f.try_clone().expect("dup log")).stderr(f);
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0);
            Ok(())
        });
    }
    cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}
