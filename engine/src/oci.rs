//! The OCI bundle config for a container: docker's defaults (capabilities,
//! mounts, masked paths) plus the image config and `run` flags.

use crate::error::{err, Result};
use crate::images::RunConfig;
use crate::record::Record;
use serde_json::{json, Value};
use std::path::Path;


const MASKED: [&str; 10] = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
];
const READONLY: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// docker's command merging: `--entrypoint` replaces the image's entrypoint
/// and drops its Cmd; a command given on the line replaces Cmd.
pub fn command(image: &RunConfig, entrypoint: Option<&str>, cmd: &[String]) -> Result<Vec<String>> {
    let (ep, default_cmd): (Vec<String>, Vec<String>) = match entrypoint {
        Some("") => (Vec::new(), Vec::new()),
        Some(e) => (vec![e.to_string()], Vec::new()),
        None => (image.entrypoint.clone().unwrap_or_default(), image.cmd.clone().unwrap_or_default()),
    };
    let cmd = if cmd.is_empty() { default_cmd } else { cmd.to_vec() };
    let args: Vec<String> = ep.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return err("No command specified");
    }
    Ok(args)
}

/// Environment: image env, then PATH/HOSTNAME/TERM defaults, then `-e`.
pub fn environment(image: &RunConfig, hostname: &str, tty: bool, extra: &[String]) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |kv: &str| {
        let key = kv.split('=').next().unwrap_or(kv).to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv.to_string());
    };
    set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    set(&format!("HOSTNAME={hostname}"));
    for e in image.env.iter().flatten() {
        set(e);
    }
    if tty {
        set("TERM=xterm");
    }
    for e in extra {
        if e.contains('=') {
            set(e);
        } else if let Ok(v) = std::env::var(e) {
            // docker: `-e NAME` copies the caller's value, if any.
            set(&format!("{e}={v}"));
        }
    }
    env
}

/// Resolves `user[:group]` (names looked up in the container's /etc files).
pub fn user(spec: &str, rootfs: &Path) -> Result<(u32, u32)> {
    user_from(spec, &|f| std::fs::read_to_string(rootfs.join(f)).unwrap_or_default())
}

/// [`user`] with /etc/passwd and /etc/group as `read` gives them (`build`
/// reads them from an image's layers).
pub fn user_from(spec: &str, read: &dyn Fn(&str) -> String) -> Result<(u32, u32)> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read("etc/passwd");
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, passwd.lines().find(|l| l.split(':').nth(2) == Some(u)).and_then(|l| l.split(':').nth(3)?.parse().ok())),
        Err(_) => {
            let Some(l) = passwd.lines().find(|l| l.split(':').next() == Some(u)) else {
                return err(format!("unable to find user {u}: no matching entries in passwd file"));
            };
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0), f.get(3).and_then(|s| s.parse().ok()))
        }
    };
    let gid = match g {
        None => primary.unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = read("etc/group");
                match group.lines().find(|l| l.split(':').next() == Some(g)) {
                    Some(l) => l.split(':').nth(2).and_then(|s| s.parse().ok()).unwrap_or(0),
                    None => return err(format!("unable to find group {g}: no matching entries in group file")),
                }
            }
        },
    };
    Ok((uid, gid))
}

/// Limits from `run` flags.
#[derive(Debug, Default, Clone)]
pub struct Limits {
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    /// `--memory-swap`: memory plus swap; -1 unlimited.
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub oom_kill_disable: bool,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub blkio_weight: Option<u16>,
    /// `--memory-swappiness` (0-100; run only: runc's update has no flag).
    pub memory_swappiness: Option<u64>,
}

impl Limits {
    /// docker's checks of the combinations.
    pub fn check(&self) -> Result<()> {
        if self.cpus.is_some() && (self.cpu_period.is_some() || self.cpu_quota.is_some()) {
            return err("Conflicting options: Nano CPUs and CPU Period cannot both be set");
        }
        if let Some(s) = self.memory_swap.filter(|s| *s != -1) {
            match self.memory {
                None => return err("You should always set the Memory limit when using Memoryswap limit"),
                Some(m) if s < m => return err("Minimum memoryswap limit should be larger than memory limit, see usage"),
                _ => {}
            }
        }
        if let (Some(r), Some(m)) = (self.memory_reservation, self.memory) {
            if r > m {
                return err("Minimum memory limit can not be less than memory reservation limit, see usage");
            }
        }
        if let Some(v) = self.memory_swappiness.filter(|v| *v > 100) {
            return err(format!("Invalid value: {v}, valid memory swappiness range is 0-100"));
        }
        if self.blkio_weight.is_some_and(|w| w != 0 && !(10..=1000).contains(&w)) {
            return err("Range of blkio weight is from 10 to 1000");
        }
        for (flag, v) in [("--cpuset-cpus", &self.cpuset_cpus), ("--cpuset-mems", &self.cpuset_mems)] {
            if let Some(v) = v {
                let ok = v.split(',').all(|r| {
                    let mut ends = r.splitn(2, '-').map(|n| n.parse::<u32>());
                    match (ends.next(), ends.next()) {
                        (Some(Ok(a)), None) => a < 8192,
                        (Some(Ok(a)), Some(Ok(b))) => a <= b && b < 8192,
                        _ => false,
                    }
                });
                if !ok {
                    return err(format!("invalid value {v:?} for {flag}: expected a list like 0-2,4"));
                }
            }
        }
        Ok(())
    }
}

/// The CFS quota and period: from `--cpus` (a 100 ms period), else as given.
fn cfs(l: &Limits) -> (Option<i64>, Option<u64>) {
    match l.cpus {
        Some(c) => (Some((c * 100000.0) as i64), Some(100000)),
        None => (l.cpu_quota, l.cpu_period),
    }
}

/// Each limit that is set: its `linux.resources` section and key, runc's
/// `update` flag for it ("" where runc has none) and its value.
fn limit_fields(l: &Limits) -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let (quota, period) = cfs(l);
    let fields: [(&str, &str, &str, Option<Value>); 12] = [
        ("memory", "limit", "--memory", l.memory.map(Value::from)),
        ("memory", "swap", "--memory-swap", l.memory_swap.map(Value::from)),
        ("memory", "reservation", "--memory-reservation", l.memory_reservation.map(Value::from)),
        ("memory", "disableOOMKiller", "", l.oom_kill_disable.then_some(Value::Bool(true))),
        ("cpu", "quota", "--cpu-quota", quota.map(Value::from)),
        ("cpu", "period", "--cpu-period", period.map(Value::from)),
        ("cpu", "shares", "--cpu-share", l.cpu_shares.map(Value::from)),
        ("cpu", "cpus", "--cpuset-cpus", l.cpuset_cpus.clone().map(Value::from)),
        ("cpu", "mems", "--cpuset-mems", l.cpuset_mems.clone().map(Value::from)),
        ("pids", "limit", "--pids-limit", l.pids.map(Value::from)),
        ("blockIO", "weight", "--blkio-weight", l.blkio_weight.map(Value::from)),
        ("memory", "swappiness", "", l.memory_swappiness.map(Value::from)),
    ];
    fields.into_iter().filter_map(|(section, key, flag, v)| Some((section, key, flag, v?))).collect()
}

/// Writes the limits that are set into `resources` (`linux.resources`),
/// merging with what it holds: for `run`, and for `update` on a saved
/// config.
pub fn set_limits(resources: &mut Value, l: &Limits) {
    for (section, key, _, v) in limit_fields(l) {
        let slot = &mut resources[section];
        if !slot.is_object() {
            *slot = json!({});
        }
        slot[key] = v;
    }
}

/// runc's `update` flags for the limits that are set.
pub fn update_flags(l: &Limits) -> Vec<String> {
    limit_fields(l)
        .into_iter()
        .filter(|(_, _, flag, _)| !flag.is_empty())
        .map(|(_, _, flag, v)| format!("{flag}={}", v.as_str().map_or_else(|| v.to_string(), String::from)))
        .collect()
}

/// A namespace a container shares, or not: `--pid`, `--ipc`, `--uts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Share {
    /// Its own (docker's private, shareable).
    #[default]
    Own,
    /// The host's: no namespace of its own.
    Host,
    /// Another container's (`container:ID`), by path.
    Path(std::path::PathBuf),
}

/// Parses docker memory sizes: `64m`, `1g`, `512k`, `1048576`, `1.5g`.
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    match num.parse::<f64>() {
        Ok(n) if n >= 0.0 && n.is_finite() => Ok((n * mult as f64) as i64),
        _ => err(format!("invalid size: '{s}'")),
    }
}

/// docker's `--ulimit` names and the OCI rlimit each sets.
const ULIMITS: &[(&str, &str)] = &[
    ("as", "RLIMIT_AS"), ("core", "RLIMIT_CORE"), ("cpu", "RLIMIT_CPU"), ("data", "RLIMIT_DATA"), ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"), ("memlock", "RLIMIT_MEMLOCK"), ("msgqueue", "RLIMIT_MSGQUEUE"), ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"), ("nproc", "RLIMIT_NPROC"), ("rss", "RLIMIT_RSS"), ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"), ("sigpending", "RLIMIT_SIGPENDING"), ("stack", "RLIMIT_STACK"),
];

/// `--ulimit NAME=SOFT[:HARD]` (-1: unlimited; HARD defaults to SOFT) as an
/// OCI `process.rlimits` entry.
pub fn parse_ulimit(spec: &str) -> Result<Value> {
    let Some((name, limits)) = spec.split_once('=') else { return err(format!("invalid ulimit argument: {spec}")) };
    let Some((_, kind)) = ULIMITS.iter().find(|(n, _)| *n == name) else {
        return err(format!("invalid ulimit type: {name}"));
    };
    let value = |v: &str| -> Result<u64> {
        match v.parse::<i64>() {
            Ok(-1) => Ok(u64::MAX),
            Ok(n) if n >= 0 => Ok(n as u64),
            _ => err(format!("invalid ulimit argument: {spec}: {v:?} is not a number (or -1 for unlimited)")),
        }
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (value(s)?, value(h)?),
        None => (value(limits)?, value(limits)?),
    };
    if soft > hard {
        return err(format!("ulimit soft limit must be less than or equal to hard limit: {spec}"));
    }
    Ok(json!({"type": kind, "soft": soft, "hard": hard}))
}

/// `--sysctl KEY=VALUE`, checked as docker does: only sysctls the
/// container's own namespaces scope (IPC's kernel.msg*, kernel.sem,
/// kernel.shm*, fs.mqueue.*; net.* unless it shares the host's network).
pub fn parse_sysctl(spec: &str, host_network: bool) -> Result<(String, String)> {
    let Some((k, v)) = spec.split_once('=') else { return err(format!("invalid sysctl {spec:?}: expected KEY=VALUE")) };
    let ipc = ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];
    let ok = ipc.contains(&k) || k.starts_with("fs.mqueue.") || (k.starts_with("net.") && !host_network);
    if !ok {
        let why = if k.starts_with("net.") { " in the host's network namespace" } else { "" };
        return err(format!("sysctl '{k}' is not allowed{why}: only namespaced ones (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// `--group-add` values (numbers, or names in the image's /etc/group) as gids.
pub fn group_ids(groups: &[String], rootfs: &Path) -> Result<Vec<u32>> {
    let file = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    groups
        .iter()
        .map(|g| match g.parse::<u32>() {
            Ok(n) => Ok(n),
            Err(_) => file
                .lines()
                .find(|l| l.split(':').next() == Some(g))
                .and_then(|l| l.split(':').nth(2)?.parse().ok())
                .ok_or_else(|| crate::error::Error(format!("unable to find group {g}: no matching entries in group file"))),
        })
        .collect()
}

/// Run flags that shape the process and its devices beyond the basics.
#[derive(Debug, Default, Clone)]
pub struct Extras {
    pub devices: Vec<crate::devices::Device>,
    pub rlimits: Vec<Value>,
    pub sysctls: std::collections::BTreeMap<String, String>,
    pub group_add: Vec<String>,
    pub shm_size: Option<i64>,
    pub pid: Share,
    pub ipc: Share,
    pub uts: Share,
    pub oom_score_adj: i32,
    /// `--cgroupns private`: a cgroup namespace of its own.
    pub cgroupns: bool,
}

pub struct Input<'a> {
    pub rec: &'a Record,
    pub rootfs: &'a Path,
    pub dir: &'a Path,
    pub uid: u32,
    pub gid: u32,
    pub netns: Option<&'a Path>,
    pub init_path: Option<&'a Path>,
    pub limits: &'a Limits,
    pub read_only: bool,
    pub privileged: bool,
    pub cap_add: &'a [String],
    pub cap_drop: &'a [String],
    /// The seccomp profile, in Docker's format (None: unfiltered).
    pub seccomp: Option<&'a Value>,
    pub no_new_privileges: bool,
    pub extras: &'a Extras,
}

fn cap_name(c: &str) -> String {
    let u = c.to_ascii_uppercase();
    if u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    }
}

/// Every capability the engine itself may pass on: those in its bounding
/// set. A container cannot be given more (capset fails), so on a host
/// that withholds some (CAP_SYS_RESOURCE in some VMs) `--privileged` and
/// `--cap-add ALL` mean all the others.
fn all_caps() -> Vec<String> {
    let names = skiff_runtime::capabilities::NAMES.iter().enumerate();
    // SAFETY: PR_CAPBSET_READ only reads: 1 in the set, 0 not, -1 unknown.
    names.filter(|(n, _)| unsafe { libc::prctl(libc::PR_CAPBSET_READ, *n as libc::c_ulong) } == 1).map(|(_, s)| s.to_string()).collect()
}

/// The config.json for the container.
pub fn config(i: &Input) -> Result<Value> {
    let rec = i.rec;
    let mut caps: Vec<String> = if i.privileged {
        all_caps()
    } else {
        skiff_runtime::capabilities::DOCKER_DEFAULT.iter().map(|s| s.to_string()).collect()
    };
    for c in i.cap_add {
        let c = cap_name(c);
        if c == "CAP_ALL" {
            caps = all_caps();
        } else if skiff_runtime::capabilities::number(&c).is_none() {
            return err(format!("unknown capability: {c:?}"));
        } else if !caps.contains(&c) {
            caps.push(c);
        }
    }
    for c in i.cap_drop {
        let c = cap_name(c);
        if c == "CAP_ALL" {
            caps.clear();
        } else {
            caps.retain(|x| *x != c);
        }
    }
    let mut args = rec.args.clone();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if i.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}", i.extras.shm_size.unwrap_or(64 << 20))]}),
    ];
    for f in ["hosts", "hostname", "resolv.conf"] {
        mounts.push(json!({"destination": format!("/etc/{f}"), "type": "bind", "source": i.dir.join(f), "options": ["rbind", "rprivate"]}));
    }
    for m in &rec.mounts {
        let mut opts = vec![];
        match m.kind.as_str() {
            "tmpfs" => {
                // docker's defaults, each undone by its opposite.
                opts.extend(["nosuid", "nodev", "noexec"]);
                opts.retain(|d| !m.options.iter().any(|o| d.strip_prefix("no") == Some(o.as_str())));
                opts.extend(m.options.iter().map(String::as_str));
                if m.read_only {
                    opts.push("ro");
                }
                mounts.push(json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": opts}));
            }
            _ => {
                // A propagation given with -v takes rprivate's place.
                opts.push("rbind");
                match m.options.iter().find(|o| o.ends_with("shared") || o.ends_with("slave") || o.ends_with("private")) {
                    Some(p) => opts.push(p.as_str()),
                    None => opts.push("rprivate"),
                }
                if m.read_only {
                    opts.push("ro");
                }
                mounts.push(json!({"destination": m.destination, "type": "bind", "source": m.source, "options": opts}));
            }
        }
    }
    if rec.init {
        let Some(init) = i.init_path else { return err("--init: no init binary found") };
        mounts.push(json!({"destination": "/dev/init", "type": "bind", "source": init, "options": ["bind", "ro"]}));
        let mut with_init = vec!["/dev/init".to_string(), "--".to_string()];
        with_init.append(&mut args);
        args = with_init;
    }
    let mut namespaces = vec![json!({"type": "mount"})];
    for (kind, share) in [("pid", &i.extras.pid), ("ipc", &i.extras.ipc), ("uts", &i.extras.uts)] {
        match share {
            Share::Own => namespaces.push(json!({"type": kind})),
            Share::Host => {}
            Share::Path(p) => namespaces.push(json!({"type": kind, "path": p})),
        }
    }
    if let Some(ns) = i.netns {
        namespaces.push(json!({"type": "network", "path": ns}));
    }
    if i.extras.cgroupns {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut rules = vec![json!({"allow": i.privileged, "access": "rwm"})];
    rules.extend(i.extras.devices.iter().map(|d| d.rule()));
    let mut resources = json!({"devices": rules});
    set_limits(&mut resources, i.limits);
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": format!("/skiff/{}", rec.id),
    });
    if !i.extras.devices.is_empty() {
        linux["devices"] = i.extras.devices.iter().map(|d| d.node()).collect();
    }
    if !i.extras.sysctls.is_empty() {
        linux["sysctl"] = json!(i.extras.sysctls);
    }
    if let Some(s) = i.seccomp.map(|p| crate::seccomp::for_container(p, &caps)).transpose()?.flatten() {
        linux["seccomp"] = s;
    }
    if !i.privileged {
        linux["maskedPaths"] = json!(MASKED);
        linux["readonlyPaths"] = json!(READONLY);
    }
    let mut config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": rec.tty,
            "user": {"uid": i.uid, "gid": i.gid, "additionalGids": group_ids(&i.extras.group_add, i.rootfs)?},
            "args": args,
            "env": rec.env,
            "cwd": if rec.working_dir.is_empty() { "/" } else { rec.working_dir.as_str() },
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": i.no_new_privileges,
            "rlimits": i.extras.rlimits,
            "oomScoreAdj": i.extras.oom_score_adj
        },
        "root": {"path": i.rootfs, "readonly": i.read_only},
        "mounts": mounts,
        "linux": linux,
        "annotations": rec.labels,
    });
    // Only a UTS namespace of its own may be given a hostname: in the
    // host's (or another container's) one it would rename that.
    if i.extras.uts == Share::Own {
        config["hostname"] = json!(rec.hostname);
        if !rec.domainname.is_empty() {
            config["domainname"] = json!(rec.domainname);
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_command_rules() {
        let img = RunConfig { entrypoint: Some(vec!["/ep".into()]), cmd: Some(vec!["a".into()]), ..Default::default() };
        assert_eq!(command(&img, None, &[]).unwrap(), ["/ep", "a"]);
        assert_eq!(command(&img, None, &["b".into()]).unwrap(), ["/ep", "b"]);
        assert_eq!(command(&img, Some("/x"), &[]).unwrap(), ["/x"]);
        assert!(command(&RunConfig::default(), None, &[]).unwrap_err().0.contains("No command specified"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert!(parse_size("lots").unwrap_err().0.contains("invalid size"));
        assert!(parse_size("-1m").is_err());
    }

    #[test]
    fn ulimits_and_sysctls() {
        assert_eq!(parse_ulimit("nofile=1024:2048").unwrap(), json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}));
        assert_eq!(parse_ulimit("core=-1").unwrap(), json!({"type": "RLIMIT_CORE", "soft": u64::MAX, "hard": u64::MAX}));
        assert!(parse_ulimit("nofile=10:5").unwrap_err().0.contains("soft limit must be less than or equal to hard limit"));
        assert!(parse_ulimit("files=10").unwrap_err().0.contains("invalid ulimit type: files"));
        assert!(parse_ulimit("nofile").unwrap_err().0.contains("invalid ulimit argument"));
        assert!(parse_ulimit("nofile=many").unwrap_err().0.contains("\"many\" is not a number"));
        assert_eq!(parse_sysctl("net.ipv4.ip_forward=1", false).unwrap(), ("net.ipv4.ip_forward".into(), "1".into()));
        assert!(parse_sysctl("kernel.shmmax=1000", true).is_ok());
        assert!(parse_sysctl("fs.mqueue.msg_max=20", false).is_ok());
        assert!(parse_sysctl("net.ipv4.ip_forward=1", true).unwrap_err().0.contains("host's network namespace"));
        assert!(parse_sysctl("kernel.hostname=x", false).unwrap_err().0.contains("sysctl 'kernel.hostname' is not allowed"));
        assert!(parse_sysctl("vm.swappiness", false).unwrap_err().0.contains("expected KEY=VALUE"));
    }

    #[test]
    fn group_add_resolves_names_in_the_image() {
        let dir = std::env::temp_dir().join(format!("skiff-groups-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/group"), "root:x:0:\naudio:x:29:\nvideo:x:44:u\n").unwrap();
        assert_eq!(group_ids(&["audio".into(), "1234".into(), "video".into()], &dir).unwrap(), [29, 1234, 44]);
        assert!(group_ids(&["gpio".into()], &dir).unwrap_err().0.contains("unable to find group gpio"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn env_overrides() {
        let img = RunConfig { env: Some(vec!["A=1".into(), "PATH=/img".into()]), ..Default::default() };
        let e = environment(&img, "h", true, &["A=2".into()]);
        assert!(e.contains(&"A=2".to_string()) && !e.contains(&"A=1".to_string()));
        assert!(e.contains(&"PATH=/img".to_string()) && e.contains(&"TERM=xterm".to_string()));
        assert!(e.contains(&"HOSTNAME=h".to_string()));
    }
}
