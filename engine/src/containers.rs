//! Container commands: run/create/start, stop/kill/restart, rm, ps, logs,
//! wait, inspect, port. Daemonless: each command reads the state dirs and
//! talks to the container's shim; the shim owns the running container.

use crate::error::{err, Context, Error, Result};
use crate::images::Store;
use crate::network;
use crate::oci::{self, Limits};
use crate::record::{self, Mount, Port, Record};
use crate::rootfs;
use skiff_shim::client::{Client, Frame};
use skiff_shim::options::Options as ShimOptions;
use skiff_shim::protocol::{self, Status};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the engine finds its peers: beside its own binary unless overridden.
#[derive(Debug, Clone)]
pub struct Env {
    pub root: PathBuf,
    pub bin_dir: PathBuf,
    /// The global network flags (`--bridge`, `--subnet`, `--iptables`).
    pub net: network::Flags,
}

impl Env {
    pub fn new(root: PathBuf) -> Result<Env> {
        let exe = std::env::current_exe().ctx(|| "find the engine binary")?;
        let bin_dir = exe.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/usr/local/bin"));
        Ok(Env { root, bin_dir, net: network::Flags::default() })
    }

    pub fn peer(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.root.join("runtime")
    }
}

/// Everything `run`/`create` takes.
#[derive(Debug, Default, Clone)]
pub struct RunOpts {
    pub detach: bool,
    pub interactive: bool,
    pub tty: bool,
    pub rm: bool,
    pub name: Option<String>,
    pub init: bool,
    pub init_path: Option<PathBuf>,
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub volumes: Vec<String>,
    pub tmpfs: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub network: String,
    pub limits: Limits,
    pub read_only: bool,
    pub restart: String,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security_opt: Vec<String>,
    pub add_host: Vec<String>,
    pub pid: String,
    pub ipc: String,
    pub uts: String,
    pub oom_score_adj: i32,
    pub cidfile: Option<PathBuf>,
    pub expose: Vec<String>,
    pub mounts: Vec<String>,
    pub devices: Vec<String>,
    pub ulimits: Vec<String>,
    pub sysctls: Vec<String>,
    pub group_add: Vec<String>,
    pub shm_size: Option<i64>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_option: Vec<String>,
    pub entrypoint: Option<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u32>,
    pub log_opts: Vec<String>,
    pub log_driver: Option<String>,
    /// `--health-cmd` etc. as a Healthcheck over the image's; `--no-healthcheck`.
    pub health: crate::images::Healthcheck,
    pub no_healthcheck: bool,
    pub runtime: Option<PathBuf>,
    pub labels: Vec<String>,
    pub label_files: Vec<PathBuf>,
    pub volumes_from: Vec<String>,
    pub domainname: Option<String>,
    pub network_aliases: Vec<String>,
    pub ip: Option<String>,
    pub links: Vec<String>,
    /// `--cgroupns private|host` ("" host: docker's default on cgroup v1).
    pub cgroupns: String,
    pub image: String,
    pub cmd: Vec<String>,
}

/// A failure with docker's exit code: 125 engine, 126 not executable, 127 not found.
#[derive(Debug)]
pub struct Failed {
    pub code: i32,
    pub msg: String,
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed { code: 125, msg: e.0 }
    }
}

fn parse_volume(root: &Path, spec: &str) -> Result<Mount> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        [d] if d.starts_with('/') => ("", *d, ""),
        _ => return err(format!("invalid volume specification: '{spec}'")),
    };
    if !dst.starts_with('/') {
        return err(format!("invalid volume specification: '{spec}': the container path must be absolute"));
    }
    // docker's modes, comma-separated: ro/rw; a bind propagation; z/Z
    // (SELinux relabel: no SELinux here), nocopy and the Mac consistency
    // words are taken and do nothing.
    let (mut read_only, mut options) = (false, Vec::new());
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "rw" => read_only = false,
            "ro" => read_only = true,
            "shared" | "slave" | "private" | "rshared" | "rslave" | "rprivate" => options.push(m.to_string()),
            "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            m => return err(format!("invalid volume specification: '{spec}': unknown mode {m:?}")),
        }
    }
    let (kind, source) = if src.starts_with('/') {
        // docker's -v makes a missing host path, as a directory.
        if !Path::new(src).exists() {
            std::fs::create_dir_all(src).ctx(|| format!("error while creating mount source path '{src}'"))?;
        }
        ("bind", src.to_string())
    } else {
        // No name: a new anonymous volume, as docker's `-v /path`.
        let name = Some(src).filter(|s| !s.is_empty());
        let name = crate::volumes::ensure(root, name).map_err(|e| Error(format!("invalid volume specification: '{spec}': {}", e.0)))?;
        ("volume", crate::volumes::data_dir(root, &name).display().to_string())
    };
    Ok(Mount { kind: kind.into(), source, destination: dst.into(), read_only, options })
}

/// tmpfs options docker passes on (`--tmpfs PATH:OPTS`, `--mount
/// type=tmpfs,tmpfs-size=,tmpfs-mode=`).
fn tmpfs_options(what: &str, opts: &str) -> Result<Vec<String>> {
    let flags = ["ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev"];
    let keyed = ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"];
    opts.split(',')
        .filter(|o| !o.is_empty())
        .map(|o| {
            let known = flags.contains(&o) || o.split_once('=').is_some_and(|(k, v)| keyed.contains(&k) && !v.is_empty());
            if known {
                Ok(o.to_string())
            } else {
                err(format!("invalid tmpfs option {o:?} in {what} (size=, mode=, uid=, gid=, nr_inodes=, ro, rw, exec, noexec, suid, nosuid, dev, nodev)"))
            }
        })
        .collect()
}

/// `--mount type=bind|volume|tmpfs,source=...,target=...[,readonly]`.
fn parse_mount(root: &Path, spec: &str) -> Result<Mount> {
    let bad = |why: String| err(format!("invalid argument {spec:?} for \"--mount\" flag: {why}"));
    let (mut kind, mut src, mut dst, mut read_only, mut options) = ("volume", "", "", false, Vec::new());
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match (k, v) {
            ("type", t @ ("bind" | "volume" | "tmpfs")) => kind = t,
            ("type", t) => return bad(format!("type {t:?} is not supported (bind, volume, tmpfs)")),
            ("source" | "src", s) => src = s,
            ("target" | "destination" | "dst", d) => dst = d,
            ("readonly" | "ro", "" | "true" | "1") => read_only = true,
            ("readonly" | "ro", "false" | "0") => read_only = false,
            ("tmpfs-size", s) => options.push(format!("size={}", oci::parse_size(s)?)),
            ("tmpfs-mode", m) if u32::from_str_radix(m, 8).is_ok() => options.push(format!("mode={m}")),
            ("bind-propagation", "rprivate") | ("consistency", _) => {}
            _ => return bad(format!("unknown or bad field {field:?}")),
        }
    }
    if !dst.starts_with('/') {
        return bad("target must be an absolute path".into());
    }
    match kind {
        "bind" => {
            if src.is_empty() {
                return bad("missing source for a bind mount".into());
            }
            if !Path::new(src).exists() {
                return err(format!("invalid mount config for type \"bind\": bind source path does not exist: {src}"));
            }
            Ok(Mount { kind: "bind".into(), source: src.into(), destination: dst.into(), read_only, ..Default::default() })
        }
        "tmpfs" if !src.is_empty() => bad("tmpfs mounts take no source".into()),
        "tmpfs" => Ok(Mount { kind: "tmpfs".into(), source: "tmpfs".into(), destination: dst.into(), read_only, options }),
        _ if src.starts_with('/') => bad(format!("volume names cannot be paths ({src}); use type=bind")),
        _ => parse_volume(root, format!("{src}:{dst}{}", if read_only { ":ro" } else { "" }).trim_start_matches(':')),
    }
}

/// `--pid`, `--ipc` or `--uts` MODE: private (the default; for IPC also
/// shareable), host, or container:NAME|ID (a running one; not for UTS).
fn share(env: &Env, kind: &str, mode: &str) -> Result<oci::Share> {
    match mode {
        "" | "private" => Ok(oci::Share::Own),
        "shareable" if kind == "ipc" => Ok(oci::Share::Own),
        "host" => Ok(oci::Share::Host),
        m => match m.strip_prefix("container:") {
            Some(x) if kind != "uts" && !x.is_empty() => {
                let target = record::find(&env.root, x).map_err(|e| Error(format!("--{kind} {m}: {}", e.0)))?;
                let (st, state) = status(env, &target);
                match state.map(|s| s.pid).filter(|p| st == "running" && *p > 0) {
                    Some(pid) => Ok(oci::Share::Path(PathBuf::from(format!("/proc/{pid}/ns/{kind}")))),
                    None => err(format!("cannot join the {kind} namespace of container {x}: it is not running")),
                }
            }
            _ => {
                let also = if kind == "uts" { "" } else { ", container:NAME|ID" };
                err(format!("invalid --{kind} mode {m:?} (private, host{also})"))
            }
        },
    }
}

/// The HEALTHCHECK a container gets: the image's, each `--health-*` over
/// its field; none for `["NONE"]` or `--no-healthcheck`.
fn healthcheck(image: Option<&crate::images::Healthcheck>, flags: &crate::images::Healthcheck, off: bool) -> Result<Option<crate::images::Healthcheck>> {
    if off {
        if !flags.test.is_empty() {
            return err("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(None);
    }
    let mut h = image.cloned().unwrap_or_default();
    if !flags.test.is_empty() {
        h.test = flags.test.clone();
    }
    for (mine, theirs) in [(&mut h.interval, flags.interval), (&mut h.timeout, flags.timeout), (&mut h.start_period, flags.start_period)] {
        if theirs != 0 {
            *mine = theirs;
        }
    }
    if flags.retries != 0 {
        h.retries = flags.retries;
    }
    match h.test.first().map(String::as_str) {
        None | Some("NONE") => Ok(None),
        Some("CMD") if h.test.len() > 1 => Ok(Some(h)),
        Some("CMD-SHELL") if h.test.len() == 2 => Ok(Some(h)),
        _ => err(format!("invalid healthcheck test {:?}: CMD ARG..., CMD-SHELL COMMAND or NONE", h.test)),
    }
}

/// docker's `State.Health`, as the shim last wrote it (None without a
/// HEALTHCHECK).
pub(crate) fn health_of(dir: &Path, rec: &Record) -> Option<serde_json::Value> {
    rec.healthcheck.as_ref()?;
    let v = std::fs::read(dir.join(skiff_shim::health::FILE)).ok().and_then(|t| serde_json::from_slice(&t).ok());
    Some(v.unwrap_or_else(|| serde_json::json!({"Status": "starting", "FailingStreak": 0, "Log": []})))
}

/// The shim's form of a HEALTHCHECK: the argv and docker's defaults.
fn health_config(h: &crate::images::Healthcheck) -> skiff_shim::health::Config {
    let cmd = match h.test.split_first() {
        Some((kind, rest)) if kind == "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), rest.join(" ")],
        Some((_, rest)) => rest.to_vec(),
        None => Vec::new(),
    };
    let mut c = skiff_shim::health::Config { cmd, ..Default::default() };
    let ns = |n: i64, d: Duration| if n > 0 { Duration::from_nanos(n as u64) } else { d };
    c.interval = ns(h.interval, c.interval);
    c.timeout = ns(h.timeout, c.timeout);
    c.start_period = ns(h.start_period, c.start_period);
    if h.retries > 0 {
        c.retries = h.retries;
    }
    c
}

pub fn read_env_file(p: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(p).ctx(|| format!("read env file {}", p.display()))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect())
}

/// `create`: makes the container (record, rootfs, network, bundle) without
/// starting it. Returns its record.
pub fn create(env: &Env, o: &RunOpts) -> Result<Record> {
    let store = Store::open(&env.root)?;
    // Keeps `prune` from taking the container before it runs, `rmi` the
    // image and `volume prune` its volumes before our record names them.
    let _starting = record::Starting::shared(&env.root)?;
    let _hold = store.hold()?;
    let _volumes = crate::volumes::hold(&env.root)?;
    let image = store.resolve(&o.image).map_err(|e| Error(format!("Unable to find image '{}' locally: {}", o.image, e.0)))?;
    let id = record::new_id()?;
    o.limits.check()?;
    let uts = share(env, "uts", &o.uts)?;
    if uts != oci::Share::Own && o.hostname.is_some() {
        return err("Conflicting options: hostname and the UTS mode");
    }
    let hostname = match uts {
        oci::Share::Own => o.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
        _ => std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string(),
    };
    if !(-1000..=1000).contains(&o.oom_score_adj) {
        return err(format!("Invalid value {}, range for oom score adj is [-1000, 1000]", o.oom_score_adj));
    }
    if let Some(f) = o.cidfile.as_ref().filter(|f| f.exists()) {
        return err(format!("Container ID file found, make sure the other container isn't running or delete {}", f.display()));
    }
    let args = oci::command(&image.config, o.entrypoint.as_deref(), &o.cmd)?;
    let mut extra_env = Vec::new();
    for f in &o.env_files {
        extra_env.extend(read_env_file(f)?);
    }
    extra_env.extend(o.env.iter().cloned());
    let env_vars = oci::environment(&image.config, &hostname, o.tty, &extra_env);
    let mut mounts = Vec::new();
    for v in &o.volumes {
        mounts.push(parse_volume(&env.root, v)?);
    }
    for m in &o.mounts {
        mounts.push(parse_mount(&env.root, m)?);
    }
    // --volumes-from C[:ro|:rw]: C's volumes and binds at the same places
    // (the mode given, else theirs); one given here already wins
    for spec in &o.volumes_from {
        let (c, mode) = match spec.rsplit_once(':') {
            Some((c, m @ ("ro" | "rw"))) => (c, Some(m == "ro")),
            _ => (spec.as_str(), None),
        };
        let from = record::find(&env.root, c).map_err(|e| Error(format!("--volumes-from {spec}: {}", e.0)))?;
        for m in from.mounts.iter().filter(|m| m.kind != "tmpfs") {
            if !mounts.iter().any(|x: &Mount| x.destination == m.destination) {
                mounts.push(Mount { read_only: mode.unwrap_or(m.read_only), ..m.clone() });
            }
        }
    }
    for t in &o.tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
        if !dst.starts_with('/') {
            return err(format!("invalid tmpfs specification: '{t}': the path must be absolute"));
        }
        let options = tmpfs_options(&format!("--tmpfs {t}"), opts)?;
        mounts.push(Mount { kind: "tmpfs".into(), source: "tmpfs".into(), destination: dst.into(), options, ..Default::default() });
    }
    let mut ports = Vec::new();
    for p in &o.publish {
        ports.extend(network::parse_publish(p)?);
    }
    for e in &o.expose {
        // Checked now, as docker does, though only -P uses them.
        network::parse_publish(e).map_err(|_| Error(format!("invalid range format for --expose: {e}")))?;
    }
    if o.publish_all {
        for key in image.config.exposed_ports.iter().flatten().map(|(k, _)| k).chain(&o.expose) {
            ports.extend(network::parse_publish(key)?);
        }
    }
    let health = healthcheck(image.config.healthcheck.as_ref(), &o.health, o.no_healthcheck)?;
    let security = crate::seccomp::parse(&o.security_opt)?;
    // Privileged containers run unfiltered, whatever the profile (docker).
    let seccomp = if o.privileged { None } else { crate::seccomp::profile(&security.seccomp)? };
    let policy: skiff_shim::restart::Policy = if o.restart.is_empty() { "no" } else { o.restart.as_str() }.parse().map_err(Error)?;
    if o.rm && policy != skiff_shim::restart::Policy::No {
        return err("Conflicting options: --restart and --rm");
    }
    let network = network::mode(&env.root, &o.network)?;
    let resolver = !(o.add_host.is_empty() && o.dns.is_empty() && o.dns_search.is_empty() && o.dns_option.is_empty());
    if network.starts_with("container:") && resolver {
        return err("conflicting options: dns and the network mode");
    }
    for d in &o.dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return err(format!("{d} is not an ip address (--dns)"));
        }
    }
    let mut extras = oci::Extras {
        group_add: o.group_add.clone(),
        shm_size: o.shm_size,
        pid: share(env, "pid", &o.pid)?,
        ipc: share(env, "ipc", &o.ipc)?,
        uts,
        oom_score_adj: o.oom_score_adj,
        cgroupns: match o.cgroupns.as_str() {
            "" | "host" => false,
            "private" => true,
            m => return err(format!("invalid cgroup namespace mode: {m} (host or private)")),
        },
        ..Default::default()
    };
    for d in &o.devices {
        extras.devices.push(crate::devices::parse(d)?);
    }
    for u in &o.ulimits {
        let r = oci::parse_ulimit(u)?;
        // A later --ulimit of the same kind wins.
        extras.rlimits.retain(|x| x["type"] != r["type"]);
        extras.rlimits.push(r);
    }
    for s in &o.sysctls {
        let (k, v) = oci::parse_sysctl(s, network == "host")?;
        extras.sysctls.insert(k, v);
    }
    let mut extra_hosts = Vec::new();
    for h in &o.add_host {
        let gateway = if h.ends_with("host-gateway") { network::gateway(&env.root, &env.net)? } else { std::net::Ipv4Addr::UNSPECIFIED };
        extra_hosts.push(network::parse_add_host(h, gateway)?);
    }
    if network.starts_with("container:") && !ports.is_empty() {
        return err("conflicting options: port publishing and the container type network mode");
    }
    if network == "host" && !ports.is_empty() {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
        ports.clear();
    }
    network::bind_ports(&mut ports)?;
    // "local" is docker's compact on-disk driver: here the json-file one,
    // rotated as asked. "none" keeps no log (attached output still flows).
    let log_driver = match o.log_driver.as_deref() {
        None | Some("json-file") => String::new(),
        Some(d @ ("local" | "none")) => d.to_string(),
        Some(d) => return err(format!("logging driver {d:?} is not supported (json-file, local, none)")),
    };
    if log_driver == "none" && !o.log_opts.is_empty() {
        return err("logging driver \"none\" takes no --log-opt");
    }
    let (mut log_max_size, mut log_max_file) = (None, None);
    for opt in &o.log_opts {
        match opt.split_once('=') {
            Some(("max-size", v)) => {
                oci::parse_size(v)?;
                log_max_size = Some(v.to_string());
            }
            Some(("max-file", v)) => log_max_file = Some(v.parse().map_err(|_| Error(format!("invalid max-file {v:?}")))?),
            _ => return err(format!("unknown log opt '{opt}' (max-size, max-file)")),
        }
    }
    let mut from_files = Vec::new();
    for f in &o.label_files {
        let text = std::fs::read_to_string(f).ctx(|| format!("read the label file {}", f.display()))?;
        from_files.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from));
    }
    let labels = crate::flags::labels(from_files.iter().chain(&o.labels).map(String::as_str));
    // --ip and --network-alias belong to user-defined networks (docker)
    let user_net = crate::network::named::load(&env.root, &network)?;
    if user_net.is_none() && !o.network_aliases.is_empty() {
        return err("network-scoped alias is supported only for containers in user defined networks");
    }
    let ip = match (&o.ip, &user_net) {
        (None, _) => None,
        (Some(_), None) => return err("user specified IP address is supported on user defined networks only"),
        (Some(a), Some(n)) => {
            let ip: std::net::Ipv4Addr = a.parse().map_err(|_| Error(format!("invalid IPv4 address: {a}")))?;
            let subnet = n.config.subnet()?;
            if !subnet.contains(ip) {
                return err(format!("invalid address {ip}: it is not in network {}'s subnet {subnet}", n.name));
            }
            Some(ip)
        }
    };
    // --link NAME[:ALIAS]: the running container's address under both names
    for l in &o.links {
        let (c, alias) = l.split_once(':').unwrap_or((l, l));
        let target = record::find(&env.root, c).map_err(|e| Error(format!("could not get container for {c}: {}", e.0)))?;
        let addr = network::ipam::Addresses::load(&env.root)?.of(&target.id);
        let Some(addr) = addr.filter(|_| status(env, &target).0 == "running") else {
            return err(format!("Cannot link to a non running container: /{}", target.name));
        };
        for n in [alias, target.name.as_str()] {
            extra_hosts.push(format!("{n}:{addr}"));
        }
    }
    let rec = Record {
        id: id.clone(),
        image: o.image.clone(),
        image_id: image.id.clone(),
        args,
        entrypoint: Some(match o.entrypoint.as_deref() {
            Some("") => Vec::new(),
            Some(e) => vec![e.to_string()],
            None => image.config.entrypoint.clone().unwrap_or_default(),
        }),
        env: env_vars,
        created: skiff_runtime::state::now_rfc3339(),
        ports,
        mounts,
        restart: policy.to_string(),
        auto_remove: o.rm,
        init: o.init,
        tty: o.tty,
        interactive: o.interactive,
        runtime: o.runtime.clone().unwrap_or_else(|| env.peer("runtime")),
        network,
        hostname: hostname.clone(),
        stop_signal: o.stop_signal.clone().or_else(|| image.config.stop_signal.clone()).unwrap_or_else(|| "SIGTERM".into()),
        stop_timeout: o.stop_timeout.unwrap_or(10),
        labels,
        privileged: o.privileged,
        security_opt: o.security_opt.clone(),
        extra_hosts,
        pid_mode: o.pid.clone(),
        ipc_mode: o.ipc.clone(),
        uts_mode: o.uts.clone(),
        dns: o.dns.clone(),
        dns_search: o.dns_search.clone(),
        dns_options: o.dns_option.clone(),
        log_driver,
        healthcheck: health,
        log_max_size,
        log_max_file,
        domainname: o.domainname.clone().unwrap_or_default(),
        aliases: o.network_aliases.clone(),
        ip,
        working_dir: o.workdir.clone().or_else(|| image.config.working_dir.clone()).unwrap_or_default(),
        user: o.user.clone().or_else(|| image.config.user.clone()).unwrap_or_default(),
        ..Default::default()
    };
    let rec = record::create(&env.root, rec, o.name.as_deref())?;
    event(env, &rec, "create", &[]);
    if let Some(f) = &o.cidfile {
        // create_new: a file that appeared meanwhile is not overwritten.
        let wrote = std::fs::OpenOptions::new().write(true).create_new(true).open(f).and_then(|mut h| h.write_all(rec.id.as_bytes()));
        if let Err(e) = wrote {
            let _ = remove_files(env, &rec);
            return err(format!("failed to write the container ID to the file {}: {e}", f.display()));
        }
    }
    let dir = record::dir(&env.root, &rec.id);
    let made = (|| -> Result<()> {
        rootfs::mount(&dir, &image.layers)?;
        let rootfs_dir = dir.join("rootfs");
        let netns = network::prepare(&env.root, &env.net, &dir, &rec)?;
        let (uid, gid) = oci::user(&rec.user, &rootfs_dir)?;
        let init_path = o.init_path.clone().unwrap_or_else(|| env.peer("init"));
        if rec.init && !init_path.is_file() {
            return err(format!("--init: {} not found (install skiff's init beside the engine or pass --init-path)", init_path.display()));
        }
        let cfg = oci::config(&oci::Input {
            rec: &rec,
            rootfs: &rootfs_dir,
            dir: &dir,
            uid,
            gid,
            netns: netns.as_deref(),
            init_path: Some(&init_path),
            limits: &o.limits,
            read_only: o.read_only,
            privileged: o.privileged,
            cap_add: &o.cap_add,
            cap_drop: &o.cap_drop,
            seccomp: seccomp.as_ref(),
            no_new_privileges: security.no_new_privileges,
            extras: &extras,
        })?;
        let text = serde_json::to_vec_pretty(&cfg).ctx(|| "serialize config.json")?;
        skiff_runtime::state::write_atomic(&dir.join("config.json"), &text)
    })();
    if let Err(e) = made {
        let _ = remove_files(env, &rec);
        return Err(e);
    }
    Ok(rec)
}

fn shim_options(env: &Env, rec: &Record, no_start: bool) -> Result<ShimOptions> {
    let dir = record::dir(&env.root, &rec.id);
    let mut o = ShimOptions::new(rec.id.clone(), dir.clone(), dir.clone());
    o.runtime = rec.runtime.clone();
    o.runtime_root = Some(env.runtime_root());
    o.tty = rec.tty;
    o.stdin = rec.interactive;
    o.restart = rec.restart.parse().map_err(Error)?;
    o.stop_timeout = rec.stop_timeout;
    o.no_start = no_start;
    if rec.log_driver == "none" {
        o.log = None;
    }
    o.health = rec.healthcheck.as_ref().map(health_config);
    if let Some(s) = &rec.log_max_size {
        o.log_max_size = Some(oci::parse_size(s)? as u64);
    }
    if let Some(n) = rec.log_max_file {
        o.log_max_file = n;
    }
    if !rec.ports.is_empty() {
        o.proxy = network::proxy_args(&env.peer("proxy"), &dir.join("netns"), &rec.ports);
    }
    Ok(o)
}

/// Docker's exit codes for a program that cannot start.
fn start_failure(msg: String) -> Failed {
    let code = if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        125
    };
    Failed { code, msg }
}

/// Starts the container's shim (which creates and, unless `no_start`, starts
/// the container). Returns the container's pid.
fn launch(env: &Env, rec: &Record, no_start: bool) -> std::result::Result<i32, Failed> {
    let opts = shim_options(env, rec, no_start)?;
    let dir = record::dir(&env.root, &rec.id);
    let _ = std::fs::remove_file(dir.join(protocol::EXIT_FILE));
    let ready = skiff_shim::launch::start(&env.peer("shim"), &opts).ctx(|| format!("start the shim for {}", rec.short_id()))?;
    if !ready.ok {
        return Err(start_failure(ready.error.unwrap_or_else(|| "the shim failed without a message".into())));
    }
    Ok(ready.pid.unwrap_or(0))
}

fn client(env: &Env, rec: &Record) -> Option<Client> {
    Client::connect(record::dir(&env.root, &rec.id).join(protocol::SOCKET)).ok()
}

/// Status as docker names it: created, running, restarting, exited, paused.
pub fn status(env: &Env, rec: &Record) -> (String, Option<protocol::State>) {
    if let Some(mut c) = client(env, rec) {
        if let Ok(st) = c.state() {
            let s = match st.status {
                Status::Created => "created",
                Status::Running if paused(env, rec) => "paused",
                Status::Running => "running",
                Status::Restarting => "restarting",
                Status::Stopped => "exited",
            };
            return (s.to_string(), Some(st));
        }
    }
    let dir = record::dir(&env.root, &rec.id);
    if protocol::read_exit(&dir).is_some() {
        ("exited".into(), None)
    } else {
        ("created".into(), None)
    }
}

fn paused(env: &Env, rec: &Record) -> bool {
    let out = std::process::Command::new(&rec.runtime).arg("--root").arg(env.runtime_root()).args(["state", &rec.id]).output();
    out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("\"paused\""))
}

/// `run`: create + start; attached unless `-d`. Returns the exit code.
pub fn run(env: &Env, o: &RunOpts) -> std::result::Result<i32, Failed> {
    let starting = record::Starting::shared(&env.root)?;
    let mut rec = create(env, o)?;
    if o.detach {
        if let Err(f) = launch_picking_ports(env, &mut rec, o, false) {
            let _ = remove(env, &rec, true);
            return Err(f);
        }
        println!("{}", rec.id);
        return Ok(0);
    }
    let code = attached(env, &mut rec, o, starting)?;
    if o.rm {
        remove_exited(env, &rec)?;
    }
    code
}

/// Create, attach, then start, so no output is missed; returns the exit
/// code. A container that could not start is removed (the outer error).
fn attached(env: &Env, rec: &mut Record, o: &RunOpts, starting: record::Starting) -> std::result::Result<std::result::Result<i32, Failed>, Failed> {
    if let Err(f) = launch_picking_ports(env, rec, o, true) {
        let _ = remove(env, rec, true);
        return Err(f);
    }
    Ok(attach_and_start(env, rec, o.interactive, starting))
}

/// `run` without `--rm` for `build`: the exited container is kept (to be
/// committed) and returned with its exit code.
pub fn run_kept(env: &Env, o: &RunOpts) -> std::result::Result<(Record, std::result::Result<i32, Failed>), Failed> {
    let starting = record::Starting::shared(&env.root)?;
    let mut rec = create(env, o)?;
    let code = attached(env, &mut rec, o, starting)?;
    Ok((rec, code))
}

/// Removes an exited container as `--rm` does, with its anonymous volumes.
pub fn remove_exited(env: &Env, rec: &Record) -> Result<()> {
    let _ = wait_shim_gone(env, rec, Duration::from_secs(10));
    remove(env, rec, true)?;
    remove_anonymous_volumes(env, rec)
}

/// Starts the shim. A host port picked at random (`-p 80`, `-p IP::80`,
/// `-P`) can be taken by another program between our check and the
/// proxy's bind: then pick again, a few times, rather than fail the run.
fn launch_picking_ports(env: &Env, rec: &mut Record, o: &RunOpts, no_start: bool) -> std::result::Result<i32, Failed> {
    let mut random = Vec::new();
    for spec in &o.publish {
        random.extend(network::parse_publish(spec)?.iter().map(|p| p.host_port == 0));
    }
    // -P's ports come after the -p ones, all picked at random.
    random.resize(rec.ports.len(), true);
    let mut tries = 0;
    loop {
        match launch(env, rec, no_start) {
            Err(f) if tries < 3 && f.msg.contains("in use") && random.iter().any(|r| *r) => {
                tries += 1;
                let _ = wait_shim_gone(env, rec, Duration::from_secs(5));
                runtime_delete(env, rec);
                for (p, r) in rec.ports.iter_mut().zip(&random) {
                    if *r {
                        p.host_port = 0;
                    }
                }
                network::bind_ports(&mut rec.ports)?;
                rec.save(&env.root)?;
            }
            other => return other,
        }
    }
}

/// `starting` is released once the container runs.
fn attach_and_start(env: &Env, rec: &Record, stdin: bool, starting: record::Starting) -> std::result::Result<i32, Failed> {
    let sock = record::dir(&env.root, &rec.id).join(protocol::SOCKET);
    let (attach, _raw) = connect_streams(rec, &sock, stdin)?;
    let mut ctl = Client::connect(&sock).ctx(|| "connect to the shim")?;
    ctl.start().map_err(|e| start_failure(e.to_string()))?;
    drop(starting);
    stream(attach)
}

/// `attach [--no-stdin] CONTAINER`: a running container's output (and our
/// stdin, if it was run with -i) until it exits; returns its exit code.
pub fn attach(env: &Env, reference: &str, no_stdin: bool) -> std::result::Result<i32, Failed> {
    let rec = record::find(&env.root, reference)?;
    match status(env, &rec).0.as_str() {
        "running" => {}
        "paused" => return Err(Failed { code: 1, msg: "You cannot attach to a paused container, unpause it first".into() }),
        _ => return Err(Failed { code: 1, msg: "You cannot attach to a stopped container, start it first".into() }),
    }
    let sock = record::dir(&env.root, &rec.id).join(protocol::SOCKET);
    let (attach, _raw) = connect_streams(&rec, &sock, rec.interactive && !no_stdin)?;
    stream(attach)
}

/// Attaches to the container's streams through its shim: our stdin copied
/// in (when `stdin`), the terminal in raw mode and its size followed for
/// a tty container. The guard restores the terminal when dropped.
fn connect_streams(
    rec: &Record,
    sock: &Path,
    stdin: bool,
) -> std::result::Result<(skiff_shim::client::Attach, Option<crate::terminal::RawMode>), Failed> {
    let attach = Client::connect(sock).and_then(|c| c.attach(stdin)).ctx(|| "attach to the container")?;
    // -t on a terminal: raw mode, so keys (Ctrl-C included) go to the
    // container's pty, whose line discipline handles them as docker's does.
    let raw = if rec.tty && stdin { crate::terminal::RawMode::enable(0) } else { None };
    if stdin {
        if let Ok(mut to) = attach.stdin_handle() {
            let tty = rec.tty;
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match std::io::Read::read(&mut std::io::stdin(), &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                // On a pty, EOF is the user's Ctrl-D, already sent as a byte.
                if !tty {
                    let _ = to.shutdown(std::net::Shutdown::Write);
                }
            });
        }
    }
    if rec.tty {
        // Sized before the program starts, so its first look is right.
        follow_terminal_size(sock.to_path_buf());
    }
    Ok((attach, raw))
}

/// Keeps the container's pty the size of our terminal (polled: no signal
/// handler needed; the thread ends with the process or the shim).
fn follow_terminal_size(sock: PathBuf) {
    let Some(mut last) = crate::terminal::size(1).or_else(|| crate::terminal::size(0)) else { return };
    let Ok(mut c) = Client::connect(&sock) else { return };
    let _ = c.resize(last.0, last.1);
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(250));
        let Some(now) = crate::terminal::size(1).or_else(|| crate::terminal::size(0)) else { return };
        if now != last {
            if c.resize(now.0, now.1).is_err() {
                return;
            }
            last = now;
        }
    });
}

/// Copies frames to stdout/stderr until the exit frame; returns its code.
fn stream(mut attach: skiff_shim::client::Attach) -> std::result::Result<i32, Failed> {
    let (mut out, mut errs) = (std::io::stdout(), std::io::stderr());
    loop {
        match attach.next_frame().ctx(|| "read from the container")? {
            Some(Frame::Stdout(b)) => {
                let _ = out.write_all(&b);
                let _ = out.flush();
            }
            Some(Frame::Stderr(b)) => {
                let _ = errs.write_all(&b);
            }
            // The raw-mode guard restores the terminal as the caller returns.
            Some(Frame::Exit(e)) => return Ok(e.code),
            None => return Err(Failed { code: 125, msg: "the container's shim went away".into() }),
        }
    }
}

/// `start [-a]`: a created or exited container runs again.
pub fn start(env: &Env, reference: &str, attach: bool) -> std::result::Result<i32, Failed> {
    let starting = record::Starting::shared(&env.root)?;
    let rec = record::find(&env.root, reference)?;
    let (st, _) = status(env, &rec);
    if st == "running" || st == "restarting" || st == "paused" {
        if !attach {
            println!("{reference}");
        }
        return Ok(0);
    }
    if st == "created" {
        if let Some(mut c) = client(env, &rec) {
            c.start().map_err(|e| start_failure(e.to_string()))?;
            if !attach {
                println!("{reference}");
            }
            return Ok(0);
        }
    }
    wait_shim_gone(env, &rec, Duration::from_secs(10))?;
    if attach {
        launch(env, &rec, true)?;
        return attach_and_start(env, &rec, rec.interactive, starting);
    }
    launch(env, &rec, false)?;
    println!("{reference}");
    Ok(0)
}

fn signal_number(s: &str) -> Result<i32> {
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Ok(n) = name.parse::<i32>() {
        return if (1..=64).contains(&n) { Ok(n) } else { err(format!("invalid signal: {s}")) };
    }
    let table = [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("BUS", 7), ("FPE", 8),
        ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14), ("TERM", 15),
        ("CHLD", 17), ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21), ("TTOU", 22), ("URG", 23),
        ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28), ("IO", 29), ("PWR", 30), ("SYS", 31),
    ];
    table.iter().find(|(n, _)| *n == name).map(|&(_, v)| v).ok_or_else(|| Error(format!("invalid signal: {s}")))
}

/// `kill [-s SIG]`.
pub fn kill(env: &Env, reference: &str, sig: &str) -> Result<()> {
    let rec = record::find(&env.root, reference)?;
    let n = signal_number(sig)?;
    let (st, _) = status(env, &rec);
    if st != "running" && st != "paused" {
        return err(format!("Cannot kill container: {reference}: Container {} is not running", rec.id));
    }
    let mut c = client(env, &rec).ok_or_else(|| Error(format!("container {reference} has no shim")))?;
    // docker kill counts as a stop for restart policies.
    c.signal(n, false, true).ctx(|| format!("kill {reference}"))?;
    event(env, &rec, "kill", &[("signal", &n.to_string())]);
    Ok(())
}

/// `stop [-t N]`: the stop signal, then SIGKILL after the timeout.
pub fn stop(env: &Env, reference: &str, timeout: Option<u32>) -> Result<()> {
    let rec = record::find(&env.root, reference)?;
    let Some(mut c) = client(env, &rec) else { return Ok(()) };
    let Ok(st) = c.state() else { return Ok(()) };
    if st.status == Status::Stopped {
        return Ok(());
    }
    let t = Duration::from_secs(timeout.unwrap_or(rec.stop_timeout) as u64);
    c.stop(signal_number(&rec.stop_signal)?).ctx(|| format!("stop {reference}"))?;
    // A shim that is already gone has recorded the exit: nothing to wait for.
    let Some(mut waiter) = client(env, &rec) else { return Ok(()) };
    let _ = waiter.set_timeout(Some(t.max(Duration::from_millis(1))));
    if waiter.wait().is_err() && client(env, &rec).is_some() {
        // Still running after the grace period.
        if let Some(mut k) = client(env, &rec) {
            let _ = k.signal(libc::SIGKILL, true, true);
        }
    }
    wait_shim_gone(env, &rec, Duration::from_secs(10))?;
    event(env, &rec, "stop", &[]);
    Ok(())
}

/// Waits until the shim has exited (its socket refuses connections).
fn wait_shim_gone(env: &Env, rec: &Record, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        match client(env, &rec.clone()) {
            None => return Ok(()),
            Some(mut c) => {
                if c.state().is_err() {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            return err(format!("the shim of {} did not exit within {limit:?}", rec.short_id()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `runtime delete --force`: the runtime's record of the container goes.
fn runtime_delete(env: &Env, rec: &Record) {
    // runc-style runtimes keep `<root>/<id>`: nothing there, nothing to delete
    // (the shim already did), and no process to spawn.
    if !env.runtime_root().join(&rec.id).exists() {
        return;
    }
    let _ = std::process::Command::new(&rec.runtime)
        .arg("--root")
        .arg(env.runtime_root())
        .args(["delete", "--force", &rec.id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Unmounts and deletes what the container owns on disk.
fn remove_files(env: &Env, rec: &Record) -> Result<()> {
    let dir = record::dir(&env.root, &rec.id);
    runtime_delete(env, rec);
    rootfs::unmount(&dir)?;
    network::teardown(&env.root, &dir, rec)?;
    network::remove_netns(&dir)?;
    std::fs::remove_dir_all(&dir).ctx(|| format!("remove {}", dir.display()))
}

fn remove(env: &Env, rec: &Record, force: bool) -> Result<()> {
    let (st, _) = status(env, rec);
    if st == "running" || st == "restarting" || st == "paused" {
        if !force {
            return err(format!(
                "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                rec.id
            ));
        }
        if let Some(mut c) = client(env, rec) {
            let _ = c.signal(libc::SIGKILL, true, true);
        }
    } else if let Some(mut c) = client(env, rec) {
        // A created container's shim waits for `start`: tell it to go.
        let _ = c.shutdown(Some(0));
    }
    wait_shim_gone(env, rec, Duration::from_secs(15))?;
    event(env, rec, "destroy", &[]);
    remove_files(env, rec)
}

/// `rm [-f] [-v]`: `-v` takes the container's anonymous volumes too (not
/// the named ones), as docker's.
pub fn rm(env: &Env, reference: &str, force: bool, volumes: bool) -> Result<()> {
    let rec = record::find(&env.root, reference)?;
    // Leftovers of engines killed mid-way; before the removal, so that the
    // veth the kernel is about to take with this container's namespace is
    // not deleted the slow way here.
    let _ = network::repair(&env.root);
    remove(env, &rec, force)?;
    if volumes {
        remove_anonymous_volumes(env, &rec)?;
    }
    Ok(())
}

/// The anonymous volumes of a removed container that no other container uses.
fn remove_anonymous_volumes(env: &Env, rec: &Record) -> Result<()> {
    let names: Vec<String> = rec.mounts.iter().filter(|m| m.kind == "volume").filter_map(|m| crate::volumes::name_of(&env.root, &m.source)).collect();
    crate::volumes::remove_anonymous(&env.root, &names)
}

/// `wait`: blocks until exit and returns the code.
pub fn wait(env: &Env, reference: &str) -> Result<i32> {
    let rec = record::find(&env.root, reference)?;
    if let Some(mut c) = client(env, &rec) {
        if let Ok(e) = c.wait() {
            return Ok(e.code);
        }
    }
    protocol::read_exit(&record::dir(&env.root, &rec.id))
        .map(|e| e.code)
        .ok_or_else(|| Error(format!("container {reference} has not run")))
}

fn ago(rfc: &str) -> String {
    let secs = seconds_since(rfc);
    match secs {
        s if s < 60 => format!("{s} seconds"),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 86400 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

/// Seconds between an RFC 3339 UTC time and now.
fn seconds_since(rfc: &str) -> u64 {
    let parse = || -> Option<i64> {
        let (date, time) = rfc.split_once('T')?;
        let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let mut t = time.trim_end_matches('Z').split(':');
        let (hh, mm) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
        let ss = t.next()?.split('.').next()?.parse::<i64>().ok()?;
        let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let doy = (153 * m2 + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146097 + doe - 719468;
        Some(days * 86400 + hh * 3600 + mm * 60 + ss)
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    parse().map(|t| (now - t).max(0) as u64).unwrap_or(0)
}

fn ports_text(ports: &[Port]) -> String {
    ports
        .iter()
        .map(|p| format!("{}:{}->{}/{}", p.host_ip, p.host_port, p.container_port, p.proto))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ps [-a] [-q] [--format json]`.
/// `ps`'s flags besides the filters.
#[derive(Debug, Default)]
pub struct PsOptions<'a> {
    pub all: bool,
    pub quiet: bool,
    pub format: Option<&'a str>,
    /// `-n N` / `-l`: the N last created, whatever their state.
    pub last: Option<usize>,
    pub no_trunc: bool,
    /// `-s`: the writable layer's size (and with the image's).
    pub size: bool,
}

pub fn ps(env: &Env, o: &PsOptions, filters: &[String]) -> Result<()> {
    let (all, quiet, format) = (o.all || o.last.is_some(), o.quiet, o.format);
    let mut wanted = Vec::new();
    for f in filters {
        match f.split_once('=') {
            Some((k @ ("status" | "name" | "id" | "label" | "ancestor" | "exited" | "health" | "network" | "volume" | "publish"), v)) => {
                wanted.push((k, v))
            }
            _ => return err(format!("invalid filter '{f}' (status=, name=, id=, label=, ancestor=, exited=, health=, network=, volume=, publish=)")),
        }
    }
    // A status or exit filter shows stopped containers too, as docker does.
    let all = all || wanted.iter().any(|(k, _)| *k == "status" || *k == "exited");
    // Addresses and veths left by an engine killed mid-run/rm.
    let _ = network::repair(&env.root);
    let mut rows = Vec::new();
    for rec in record::list(&env.root)? {
        let (st, state) = status(env, &rec);
        if !all && st != "running" && st != "paused" && st != "restarting" {
            continue;
        }
        let dir = record::dir(&env.root, &rec.id);
        let health = health_of(&dir, &rec).and_then(|h| h["Status"].as_str().map(String::from));
        let matches = |k: &str, v: &str| match k {
            "status" => st == v,
            "name" => rec.name.contains(v),
            "id" => rec.id.starts_with(v),
            "ancestor" => rec.image == v || rec.image_id.starts_with(v),
            "exited" => st == "exited" && protocol::read_exit(&dir).is_some_and(|e| e.code.to_string() == v),
            "health" => health.as_deref().unwrap_or("none") == v,
            "network" => rec.network == v || (v == "default" && rec.network == "bridge"),
            "volume" => rec.mounts.iter().any(|m| m.destination == v || m.source == v || m.source.ends_with(&format!("/volumes/{v}/_data"))),
            "publish" => {
                let (port, proto) = v.split_once('/').unwrap_or((v, "tcp"));
                rec.ports.iter().any(|p| p.container_port.to_string() == port && p.proto == proto)
            }
            _ => crate::flags::label_matches(v, |k| rec.labels.get(k).cloned()),
        };
        if !crate::flags::filters_pass(&wanted, matches) {
            continue;
        }
        let text = match st.as_str() {
            "running" => {
                let up = format!("Up {}", ago(state.as_ref().and_then(|s| s.started.as_deref()).unwrap_or(&rec.created)));
                match health.as_deref() {
                    Some("starting") => format!("{up} (health: starting)"),
                    Some(s) => format!("{up} ({s})"),
                    None => up,
                }
            }
            "paused" => format!("Up {} (Paused)", ago(state.as_ref().and_then(|s| s.started.as_deref()).unwrap_or(&rec.created))),
            "restarting" => "Restarting".to_string(),
            "exited" => match protocol::read_exit(&dir).or_else(|| state.and_then(|s| s.exit)) {
                Some(e) => format!("Exited ({}) {} ago", e.code, ago(&e.time)),
                None => "Exited".to_string(),
            },
            _ => "Created".to_string(),
        };
        rows.push((rec, st, text));
    }
    if let Some(n) = o.last {
        // RFC 3339 times of one format sort as strings: newest first
        rows.sort_by(|a, b| b.0.created.cmp(&a.0.created));
        rows.truncate(n);
    }
    let id_of = |r: &Record| if o.no_trunc { r.id.clone() } else { r.short_id().to_string() };
    let store = Store::open(&env.root)?;
    let sizes: Vec<String> = rows
        .iter()
        .map(|(r, _, _)| {
            if !o.size {
                return String::new();
            }
            let mine = crate::commands::images::disk_usage(&record::dir(&env.root, &r.id).join("upper"));
            let image = store.details(&r.image_id).map_or(0, |d| d.size);
            let hs = crate::commands::images::human_size;
            format!("{} (virtual {})", hs(mine), hs(mine + image))
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if quiet {
        for (r, _, _) in &rows {
            let _ = writeln!(out, "{}", id_of(r));
        }
        return Ok(());
    }
    let objects: Vec<serde_json::Value> = rows
        .iter()
        .zip(&sizes)
        .map(|((r, st, text), size)| {
            let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mounts: Vec<&str> = r.mounts.iter().map(|m| m.destination.as_str()).collect();
            serde_json::json!({"ID": id_of(r), "Image": r.image, "Command": format!("\"{}\"", r.args.join(" ")), "CreatedAt": r.created,
                "RunningFor": format!("{} ago", ago(&r.created)), "State": st, "Status": text, "Ports": ports_text(&r.ports), "Names": r.name,
                "Labels": labels.join(","), "Mounts": mounts.join(","), "Networks": r.network, "Size": size})
        })
        .collect();
    let headers = [("ID", "CONTAINER ID"), ("RunningFor", "CREATED"), ("CreatedAt", "CREATED AT")];
    if let Some(text) = crate::template::list(&objects, format, &headers)? {
        let _ = write!(out, "{text}");
        return Ok(());
    }
    let mut table = vec![["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES", "SIZE"].map(String::from).to_vec()];
    for ((r, _, text), size) in rows.iter().zip(&sizes) {
        let mut cmd = format!("\"{}\"", r.args.join(" "));
        if !o.no_trunc && cmd.chars().count() > 22 {
            cmd = format!("{}…\"", cmd.chars().take(20).collect::<String>());
        }
        table.push(vec![id_of(r), r.image.clone(), cmd, format!("{} ago", ago(&r.created)), text.clone(), ports_text(&r.ports), r.name.clone(), size.clone()]);
    }
    if !o.size {
        table.iter_mut().for_each(|row| drop(row.pop()));
    }
    let _ = write!(out, "{}", crate::commands::images::tabulate(&table));
    Ok(())
}

/// The json-file log files of a container, oldest first.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for n in (1..100).rev() {
        let p = dir.join(format!("{}.{n}", protocol::LOG_FILE));
        if p.exists() {
            v.push(p);
        }
    }
    v.push(dir.join(protocol::LOG_FILE));
    v
}

/// `logs [-f] [--tail N] [-t]`.
pub fn logs(env: &Env, reference: &str, follow: bool, tail: Option<usize>, timestamps: bool, since: Option<&str>, until: Option<&str>) -> Result<()> {
    let rec = record::find(&env.root, reference)?;
    if rec.log_driver == "none" {
        return err("configured logging driver does not support reading");
    }
    let dir = record::dir(&env.root, &rec.id);
    let path = dir.join(protocol::LOG_FILE);
    let mut lines: Vec<String> = Vec::new();
    // The current file is read through the handle that following goes on
    // with, so that nothing written meanwhile is skipped or shown twice.
    let mut current = LogTail::open(&path);
    let mut pending = Vec::new();
    for f in log_files(&dir) {
        if f == path {
            current.read_into(&mut pending);
            let rest = pending.split_off(pending.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1));
            lines.extend(String::from_utf8_lossy(&pending).lines().map(String::from));
            pending = rest;
        } else if let Ok(data) = std::fs::read(&f) {
            lines.extend(String::from_utf8_lossy(&data).lines().map(String::from));
        }
    }
    let time_of = |l: &str| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["time"].as_str().and_then(crate::timestamp::rfc3339_nanos));
    if let Some(cut) = since.map(|s| crate::timestamp::parse(s, "--since")).transpose()? {
        lines.retain(|l| time_of(l).is_some_and(|t| t >= cut));
    }
    let until = until.map(|u| crate::timestamp::parse(u, "--until")).transpose()?;
    let before_until = |l: &str| until.is_none_or(|u| time_of(l).is_some_and(|t| t < u));
    lines.retain(|l| before_until(l));
    if let Some(n) = tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let print = |line: &str| {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { return };
        let text = v["log"].as_str().unwrap_or("");
        let ts = if timestamps { format!("{} ", v["time"].as_str().unwrap_or("")) } else { String::new() };
        if v["stream"] == "stderr" {
            let _ = write!(std::io::stderr(), "{ts}{text}");
        } else {
            let mut o = std::io::stdout().lock();
            let _ = write!(o, "{ts}{text}");
            let _ = o.flush();
        }
    };
    for l in &lines {
        print(l);
    }
    if !follow {
        return Ok(());
    }
    // Follow the current file until the container stops.
    loop {
        let running = status(env, &rec).0 != "exited";
        current.read_into(&mut pending);
        if current.replaced() {
            // Rotated: the old file is complete once renamed; finish it first.
            current.read_into(&mut pending);
            current = LogTail::open(&path);
            current.read_into(&mut pending);
        }
        // Whole lines only: a line the shim is still writing stays pending.
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line);
            if before_until(line.trim_end()) {
                print(line.trim_end());
            }
        }
        if !running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The json-file log being written, read from where the last read ended.
struct LogTail {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl LogTail {
    fn open(path: &Path) -> LogTail {
        LogTail { path: path.to_path_buf(), file: std::fs::File::open(path).ok() }
    }

    /// Appends what was added since the last read.
    fn read_into(&mut self, to: &mut Vec<u8>) {
        if let Some(f) = self.file.as_mut() {
            let _ = std::io::Read::read_to_end(f, to);
        }
    }

    /// Whether the path now names another file (the shim rotated it), or
    /// ours was cut short.
    fn replaced(&mut self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(now) = std::fs::metadata(&self.path) else { return false };
        match self.file.as_mut().map(|f| (f.metadata(), std::io::Seek::stream_position(f))) {
            Some((Ok(m), Ok(pos))) => m.ino() != now.ino() || m.dev() != now.dev() || now.len() < pos,
            _ => true,
        }
    }
}

/// `port ID`.
pub fn port(env: &Env, reference: &str) -> Result<()> {
    let rec = record::find(&env.root, reference)?;
    for p in &rec.ports {
        println!("{}/{} -> {}:{}", p.container_port, p.proto, p.host_ip, p.host_port);
    }
    Ok(())
}

/// `inspect` JSON close to docker's shape.
pub fn inspect(env: &Env, references: &[String], format: Option<&str>) -> std::result::Result<(), Failed> {
    let mut out = Vec::new();
    let mut missing = None;
    for r in references {
        let rec = match record::find(&env.root, r) {
            Ok(rec) => rec,
            Err(e) => {
                missing = Some(e.0);
                continue;
            }
        };
        let (st, state) = status(env, &rec);
        let dir = record::dir(&env.root, &rec.id);
        let exit = protocol::read_exit(&dir);
        let mut ports = serde_json::Map::new();
        for p in &rec.ports {
            let key = format!("{}/{}", p.container_port, p.proto);
            let entry = ports.entry(key).or_insert_with(|| serde_json::json!([]));
            if let Some(a) = entry.as_array_mut() {
                a.push(serde_json::json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
            }
        }
        out.push(serde_json::json!({
            "Id": rec.id,
            "Created": rec.created,
            "Path": rec.args.first(),
            "Args": rec.args.get(1..).unwrap_or(&[]),
            "State": {
                "Status": st,
                "Running": st == "running",
                "Paused": st == "paused",
                "Restarting": st == "restarting",
                "Pid": state.as_ref().map(|s| s.pid).unwrap_or(0),
                "ExitCode": exit.as_ref().map(|e| e.code).unwrap_or(0),
                "StartedAt": state.as_ref().and_then(|s| s.started.clone()).unwrap_or_default(),
                "FinishedAt": exit.as_ref().map(|e| e.time.clone()).unwrap_or_default(),
                "Health": health_of(&dir, &rec),
            },
            "Image": rec.image_id,
            "Name": format!("/{}", rec.name),
            "RestartCount": state.as_ref().map(|s| s.restarts).unwrap_or(0),
            "Config": {
                "Hostname": rec.hostname, "User": rec.user, "Tty": rec.tty, "OpenStdin": rec.interactive,
                "Env": rec.env, "Cmd": rec.args, "Image": rec.image, "WorkingDir": rec.working_dir,
                "Labels": rec.labels, "StopSignal": rec.stop_signal, "StopTimeout": rec.stop_timeout, "Healthcheck": rec.healthcheck,
            },
            "HostConfig": {
                "NetworkMode": rec.network, "RestartPolicy": {"Name": rec.restart}, "AutoRemove": rec.auto_remove,
                "Init": rec.init, "Runtime": rec.runtime,
                "LogConfig": {"Type": if rec.log_driver.is_empty() { "json-file" } else { rec.log_driver.as_str() }}, "Privileged": rec.privileged,
                "SecurityOpt": Some(&rec.security_opt).filter(|s| !s.is_empty()),
                "ExtraHosts": Some(&rec.extra_hosts).filter(|s| !s.is_empty()),
                "PidMode": rec.pid_mode, "IpcMode": if rec.ipc_mode.is_empty() { "private" } else { rec.ipc_mode.as_str() }, "UTSMode": rec.uts_mode,
                "Dns": rec.dns, "DnsSearch": rec.dns_search, "DnsOptions": rec.dns_options,
            },
            "NetworkSettings": network::settings(&env.root, &rec, ports.into()),
            "Mounts": rec.mounts.iter().map(|m| {
                let mut v = serde_json::json!({"Type": m.kind, "Source": m.source, "Destination": m.destination, "RW": !m.read_only});
                if let Some(name) = Some(m).filter(|m| m.kind == "volume").and_then(|m| crate::volumes::name_of(&env.root, &m.source)) {
                    v["Name"] = name.into();
                    v["Driver"] = "local".into();
                }
                v
            }).collect::<Vec<_>>(),
            "LogPath": dir.join(protocol::LOG_FILE),
        }));
    }
    print!("{}", crate::template::inspect_text(&out, format)?);
    match missing {
        Some(m) => Err(Failed { code: 1, msg: format!("Error: {m}") }),
        None => Ok(()),
    }
}

/// `update [--restart P] [limits] CONTAINER`: docker's update. Limits
/// reach a live container through its runtime (runc's `update` flags) and
/// its config.json, so that restarts keep them; the restart policy reaches
/// its shim and its record.
pub fn update(env: &Env, reference: &str, restart: Option<&str>, limits: &oci::Limits) -> Result<()> {
    let _lock = record::Lock::acquire(&env.root)?;
    let mut rec = record::find(&env.root, reference)?;
    // --memory-swap alone is checked against the memory limit in force
    let mut checked = limits.clone();
    if checked.memory.is_none() {
        let cfg = std::fs::read(record::dir(&env.root, &rec.id).join("config.json")).ok();
        let cfg: Option<serde_json::Value> = cfg.and_then(|b| serde_json::from_slice(&b).ok());
        checked.memory = cfg.and_then(|c| c["linux"]["resources"]["memory"]["limit"].as_i64());
    }
    checked.check()?;
    let policy: Option<skiff_shim::restart::Policy> = restart.map(str::parse).transpose().map_err(Error)?;
    if policy.is_some() && rec.auto_remove {
        return err("Restart policy cannot be updated because AutoRemove is enabled for the container");
    }
    let dir = record::dir(&env.root, &rec.id);
    let flags = oci::update_flags(limits);
    if !flags.is_empty() {
        let (st, _) = status(env, &rec);
        if matches!(st.as_str(), "running" | "paused" | "created") {
            let out = std::process::Command::new(&rec.runtime)
                .arg("--root")
                .arg(env.runtime_root())
                .arg("update")
                .args(&flags)
                .arg(&rec.id)
                .output()
                .ctx(|| format!("run {}", rec.runtime.display()))?;
            if !out.status.success() {
                return err(format!("Cannot update container {}: {}", rec.short_id(), String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
        let path = dir.join("config.json");
        let text = std::fs::read(&path).ctx(|| format!("read {}", path.display()))?;
        let mut cfg: serde_json::Value = serde_json::from_slice(&text).map_err(|e| Error(format!("parse {}: {e}", path.display())))?;
        oci::set_limits(&mut cfg["linux"]["resources"], limits);
        let text = serde_json::to_vec_pretty(&cfg).ctx(|| "serialize config.json")?;
        skiff_runtime::state::write_atomic(&path, &text)?;
    }
    if let Some(p) = policy {
        if let Some(mut c) = client(env, &rec) {
            c.set_restart(&p.to_string()).map_err(|e| Error(format!("Cannot update the restart policy of {}: its shim says {e}", rec.short_id())))?;
        }
        rec.restart = p.to_string();
        rec.save(&env.root)?;
    }
    Ok(())
}

/// `rename OLD NEW` under the names lock.
pub fn rename(env: &Env, old: &str, new: &str) -> Result<()> {
    let _lock = record::Lock::acquire(&env.root)?;
    let mut rec = record::find(&env.root, old)?;
    record::check_name(new)?;
    if record::find(&env.root, new).is_ok_and(|r| r.name == new) {
        return err(format!("Error response: Conflict. The container name \"/{new}\" is already in use"));
    }
    let old_name = std::mem::replace(&mut rec.name, new.to_string());
    rec.save(&env.root)?;
    event(env, &rec, "rename", &[("oldName", &format!("/{old_name}"))]);
    Ok(())
}

/// `pause` / `unpause` through the runtime.
pub fn pause(env: &Env, reference: &str, on: bool) -> Result<()> {
    let rec = record::find(&env.root, reference)?;
    let out = std::process::Command::new(&rec.runtime)
        .arg("--root")
        .arg(env.runtime_root())
        .args([if on { "pause" } else { "resume" }, &rec.id])
        .output()
        .ctx(|| format!("run {}", rec.runtime.display()))?;
    if !out.status.success() {
        return err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    event(env, &rec, if on { "pause" } else { "unpause" }, &[]);
    Ok(())
}

/// `exec [-d] [-i] [-t] [-e] [-u] [-w] ID CMD...` through the runtime; with
/// `-t` the process gets a pty whose master comes back to us over a console
/// socket, and our terminal is put in raw mode and bridged to it.
#[allow(clippy::too_many_arguments)]
pub fn exec(env: &Env, reference: &str, detach: bool, tty: bool, envs: &[String], user: Option<&str>, workdir: Option<&str>, cmd: &[String]) -> std::result::Result<i32, Failed> {
    let rec = record::find(&env.root, reference)?;
    if status(env, &rec).0 != "running" {
        return Err(Failed { code: 1, msg: format!("Error response: Container {} is not running", rec.id) });
    }
    let mut c = std::process::Command::new(&rec.runtime);
    c.arg("--root").arg(env.runtime_root()).arg("exec");
    if detach {
        c.arg("-d");
    }
    for e in envs {
        c.args(["--env", e]);
    }
    if let Some(u) = user {
        let (uid, gid) = oci::user(u, &record::dir(&env.root, &rec.id).join("rootfs"))?;
        c.args(["--user", &format!("{uid}:{gid}")]);
    }
    if let Some(w) = workdir {
        c.args(["--cwd", w]);
    }
    let console = if tty {
        let dir = record::dir(&env.root, &rec.id);
        let path = dir.join(format!("exec-{}.sock", std::process::id()));
        let short = skiff_shim::sockpath::usable(&path).ctx(|| "console socket path")?;
        let _ = std::fs::remove_file(&path);
        let l = std::os::unix::net::UnixListener::bind(&short.path).ctx(|| format!("bind {}", path.display()))?;
        c.args(["--tty", "--console-socket"]).arg(&path);
        Some((l, path, short))
    } else {
        None
    };
    c.arg(&rec.id).args(cmd);
    let mut child = c.spawn().ctx(|| format!("run {}", rec.runtime.display()))?;
    if let Some((l, path, _short)) = console {
        let got = crate::terminal::receive_pty(&l);
        let _ = std::fs::remove_file(&path);
        match got {
            Ok(master) => crate::terminal::bridge(master),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.into());
            }
        }
    }
    let st = child.wait().ctx(|| format!("wait for {}", rec.runtime.display()))?;
    Ok(st.code().unwrap_or(125))
}

/// Pids in the container's cgroup (any v1 hierarchy, or the unified one).
fn container_pids(rec: &Record) -> Vec<i32> {
    for h in ["pids", "memory", "cpu", "unified", "systemd"] {
        let p = PathBuf::from("/sys/fs/cgroup").join(h).join("skiff").join(&rec.id).join("cgroup.procs");
        if let Ok(t) = std::fs::read_to_string(&p) {
            return t.lines().filter_map(|l| l.trim().parse().ok()).collect();
        }
    }
    Vec::new()
}

/// `top ID`: the container's processes (UID PID PPID CMD), from /proc.
pub fn top(env: &Env, reference: &str, ps_args: &[String]) -> Result<()> {
    let rec = record::find(&env.root, reference)?;
    if status(env, &rec).0 != "running" {
        return err(format!("Error response: Container {} is not running", rec.id));
    }
    if !ps_args.is_empty() {
        return top_with_ps(&rec, ps_args);
    }
    // docker runs the host's `ps -ef`: the same columns, from /proc.
    // SAFETY: sysconf has no preconditions.
    let hz = (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as u64;
    let uptime = std::fs::read_to_string("/proc/uptime").ok().and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok()).unwrap_or(0.0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let mut table = vec![["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"].map(String::from)];
    for pid in container_pids(&rec) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next()).unwrap_or("?").to_string();
        let user = passwd.lines().find(|l| l.split(':').nth(2) == Some(uid.as_str())).and_then(|l| l.split(':').next()).unwrap_or(&uid).to_string();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis: state is [0].
        let f: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let (ppid, tty, cpu, start) = (num(1), num(4), num(11) + num(12), num(19));
        let age = (uptime - start as f64 / hz as f64).max(0.001);
        let c = ((cpu as f64 / hz as f64) / age * 100.0) as u64;
        let started = now.saturating_sub(age as u64);
        let stime = format!("{:02}:{:02}", started / 3600 % 24, started / 60 % 60);
        let tty = if tty == 0 { "?".to_string() } else { format!("pts/{}", (tty & 0xff) | ((tty >> 12) & 0xfff00)) };
        let secs = cpu / hz;
        let time = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut cmd = String::from_utf8_lossy(&cmd).replace('\0', " ").trim().to_string();
        if cmd.is_empty() {
            cmd = format!("[{}]", stat.split_once('(').and_then(|(_, r)| r.rsplit_once(')')).map_or("?", |(c, _)| c));
        }
        table.push([user, pid.to_string(), ppid.to_string(), c.to_string(), stime, tty, time, cmd]);
    }
    print!("{}", crate::commands::images::tabulate(&table));
    Ok(())
}

/// docker's units.BytesSize: binary units, 4 significant digits at most
/// ("2.3MiB", "23.45GiB").
fn bytes_size(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let (mut v, mut i) = (b as f64, 0);
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    // Go's %.4g: 4 significant digits, trailing zeros dropped.
    let int_digits = (v.max(1.0).log10().floor() as usize) + 1;
    let text = format!("{v:.prec$}", prec = 4usize.saturating_sub(int_digits));
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    format!("{text}{}", UNITS[i])
}

/// Bytes received and sent on the interfaces of `pid`'s network
/// namespace, loopback aside.
fn net_io(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    let mut sum = (0, 0);
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else { continue };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if f.len() >= 9 {
            sum = (sum.0 + f[0], sum.1 + f[8]);
        }
    }
    sum
}

/// `top CONTAINER [ps OPTIONS]`: as docker, the host's `ps` with those
/// options, only the lines whose PID is one of the container's.
fn top_with_ps(rec: &Record, args: &[String]) -> Result<()> {
    let out = std::process::Command::new("ps").args(args).output().ctx(|| "run ps (the host's: procps or busybox)")?;
    if !out.status.success() {
        return err(format!("Error response: ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let Some(col) = header.split_whitespace().position(|f| f == "PID") else {
        return err(format!("Error response: Couldn't find PID field in ps output (ps {})", args.join(" ")));
    };
    let pids = container_pids(rec);
    let mut shown = format!("{header}\n");
    for l in lines {
        if l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
            shown.push_str(l);
            shown.push('\n');
        }
    }
    print!("{shown}");
    Ok(())
}

/// A container's `events` line (see `skiff_shim::lifecycle`).
fn event(env: &Env, rec: &Record, action: &str, extra: &[(&str, &str)]) {
    skiff_shim::lifecycle::emit_container(&record::dir(&env.root, &rec.id), action, extra);
}

/// `stats [--no-stream] [--format F] [CONTAINER...]`: docker's columns from
/// two samples half a second apart (CPU % of one CPU over that time, as
/// docker's); memory against the limit or, without one, the host's memory.
/// `stats [--no-stream] [-a] [--format] [CONTAINER...]`: docker's columns,
/// CPU % over the time between two samples (half a second for the first
/// table). Without `--no-stream` the table is redrawn every second, as
/// docker's, until interrupted (or stdout closes).
pub fn stats(env: &Env, references: &[String], all: bool, format: Option<&str>, stream: bool) -> Result<()> {
    type Sample = (Record, Option<protocol::Stats>, Instant);
    let sample_all = || -> Result<Vec<Sample>> {
        let recs = if references.is_empty() {
            record::list(&env.root)?
        } else if stream {
            // a container removed meanwhile drops out of the table
            references.iter().filter_map(|r| record::find(&env.root, r).ok()).collect()
        } else {
            references.iter().map(|r| record::find(&env.root, r)).collect::<Result<Vec<_>>>()?
        };
        Ok(recs.into_iter().map(|r| {
            let s = client(env, &r).and_then(|mut c| c.stats().ok());
            (r, s, Instant::now())
        }).collect())
    };
    let mut before = sample_all()?;
    if before.iter().any(|(_, s, _)| s.is_some()) {
        std::thread::sleep(Duration::from_millis(500));
    }
    let host_mem = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<u64>().ok().map(|k| k * 1024)
    });
    let table = "table {{.Container}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
    let headers = [("Container", "CONTAINER ID"), ("CPUPerc", "CPU %"), ("MemUsage", "MEM USAGE / LIMIT"), ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"), ("BlockIO", "BLOCK I/O"), ("PIDs", "PIDS"), ("ID", "CONTAINER ID")];
    loop {
        let now = sample_all()?;
        let mut rows = Vec::new();
        for (rec, s, t1) in &now {
            let Some(s) = s.as_ref() else {
                if all {
                    rows.push(serde_json::json!({"Container": rec.short_id(), "ID": rec.id, "Name": rec.name, "CPUPerc": "0.00%",
                        "MemUsage": "0B / 0B", "MemPerc": "0.00%", "NetIO": "0B / 0B", "BlockIO": "0B / 0B", "PIDs": "0"}));
                }
                continue;
            };
            let prev = before.iter().find(|(r, _, _)| r.id == rec.id);
            let cpu = match (prev.and_then(|(_, b, t0)| Some((b.as_ref()?.cpu_usage_ns?, *t0))), s.cpu_usage_ns) {
                (Some((a, t0)), Some(b)) => b.saturating_sub(a) as f64 / t1.duration_since(t0).as_nanos().max(1) as f64 * 100.0,
                _ => 0.0,
            };
            let usage = s.memory_usage.unwrap_or(0);
            let limit = s.memory_limit.filter(|l| *l < 1 << 60).or(host_mem).unwrap_or(0);
            let mem_perc = if limit > 0 { usage as f64 / limit as f64 * 100.0 } else { 0.0 };
            let (rx, tx) = net_io(s.pid);
            let (rd, wr) = (s.block_read.unwrap_or(0), s.block_write.unwrap_or(0));
            let hs = crate::commands::images::human_size;
            rows.push(serde_json::json!({
                "Container": rec.short_id(), "ID": rec.id, "Name": rec.name,
                "CPUPerc": format!("{cpu:.2}%"), "MemUsage": format!("{} / {}", bytes_size(usage), bytes_size(limit)),
                "MemPerc": format!("{mem_perc:.2}%"), "NetIO": format!("{} / {}", hs(rx), hs(tx)),
                "BlockIO": format!("{} / {}", hs(rd), hs(wr)), "PIDs": s.pids_current.unwrap_or(0).to_string(),
            }));
        }
        let text = crate::template::list_or(&rows, format, table, &headers)?;
        // clear the screen and go home before each table, as docker redraws
        let page = if stream { format!("\x1b[2J\x1b[H{text}") } else { text };
        let mut out = std::io::stdout().lock();
        if out.write_all(page.as_bytes()).and_then(|_| out.flush()).is_err() || !stream {
            return Ok(()); // stdout closed: the reader is done
        }
        drop(out);
        before = now;
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `container prune`: removes every container that is not running (created
/// or exited) and that `pick` accepts; returns each one's id and the size of
/// its writable layer. Containers being made or started wait, or are skipped.
pub fn prune(env: &Env, pick: &dyn Fn(&Record) -> bool) -> Result<Vec<(String, u64)>> {
    let _starting = record::Starting::exclusive(&env.root)?;
    // first, as in `rm`: the veths of the removed go with their namespaces
    let _ = network::repair(&env.root);
    let mut out = Vec::new();
    for rec in record::list(&env.root)? {
        let (st, _) = status(env, &rec);
        if (st == "exited" || st == "created") && pick(&rec) {
            let size = crate::commands::images::disk_usage(&record::dir(&env.root, &rec.id).join("upper"));
            remove(env, &rec, false)?;
            out.push((rec.id, size));
        }
    }
    Ok(out)
}

/// `restore`: after a reboot, starts again the containers whose restart
/// policy says so (always; unless-stopped and on-failure unless stopped by
/// the user), and unmounts what a crash left of the others.
pub fn restore(env: &Env) -> Result<()> {
    let _starting = record::Starting::shared(&env.root)?;
    for rec in record::list(&env.root)? {
        if client(env, &rec).is_some_and(|mut c| c.state().is_ok()) {
            continue; // its shim survived
        }
        let dir = record::dir(&env.root, &rec.id);
        let exit = protocol::read_exit(&dir);
        let stopped_by_user = std::fs::read_to_string(dir.join("shim.log")).is_ok_and(|l| l.contains("stop requested"));
        let wanted = match rec.restart.as_str() {
            "always" => true,
            "unless-stopped" => !stopped_by_user,
            r if r.starts_with("on-failure") => exit.as_ref().is_none_or(|e| e.code != 0) && !stopped_by_user,
            _ => false,
        };
        if !wanted {
            continue;
        }
        // A reboot lost the overlay mount and the netns: make them again.
        let store = Store::open(&env.root)?;
        let image = store.resolve(&rec.image_id).or_else(|_| store.resolve(&rec.image))?;
        // The runtime still knows the dead container (its shim died before
        // `runtime delete`): forget it, so create can use the id again.
        runtime_delete(env, &rec);
        rootfs::unmount(&dir)?;
        if !dir.join("rootfs").join("bin").exists() && !dir.join("rootfs.copy").exists() {
            rootfs::mount(&dir, &image.layers)?;
        }
        if rec.network != "host" && !network::netns_mounted(&dir.join("netns")) {
            network::recreate(&env.root, &env.net, &dir, &rec)?;
        }
        match launch(env, &rec, false) {
            Ok(_) => println!("{}", rec.name),
            Err(f) => eprintln!("engine: restore {}: {}", rec.name, f.msg),
        }
    }
    Ok(())
}

/// True when `<dir>/netns` is still a bind mount of a namespace.
/// `export [-o FILE] CONTAINER`: its filesystem as a tar, to FILE
/// (written whole, then renamed) or stdout (not a terminal).
pub fn export(env: &Env, reference: &str, output: Option<&Path>) -> Result<()> {
    let rec = record::find(&env.root, reference)?;
    let root = record::dir(&env.root, &rec.id).join("rootfs");
    match output {
        None => {
            // SAFETY: isatty only inspects fd 1.
            if unsafe { libc::isatty(1) } == 1 {
                return err("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            crate::copy::export(&root, &mut std::io::stdout().lock())
        }
        Some(f) => {
            let tmp = f.with_file_name(format!(".{}.tmp{}", f.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
            let written = std::fs::File::create(&tmp).ctx(|| format!("create {}", tmp.display())).and_then(|mut file| {
                crate::copy::export(&root, &mut file)?;
                file.sync_all().ctx(|| format!("sync {}", tmp.display()))
            });
            match written.and_then(|_| std::fs::rename(&tmp, f).ctx(|| format!("rename to {}", f.display()))) {
                Ok(()) => Ok(()),
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(e)
                }
            }
        }
    }
}

/// `diff CONTAINER`: `A|C|D path` lines.
pub fn diff(env: &Env, reference: &str) -> Result<()> {
    let rec = record::find(&env.root, reference)?;
    let image = Store::open(&env.root)?.resolve(&rec.image_id)?;
    let mut out = std::io::stdout().lock();
    let mut hidden: Vec<String> = rec.mounts.iter().map(|m| m.destination.clone()).collect();
    hidden.push("/dev/init".into());
    for (k, p) in rootfs::changes(&record::dir(&env.root, &rec.id), &image.layers, &hidden)? {
        let _ = writeln!(out, "{k} {p}");
    }
    Ok(())
}

/// `cp SRC DST`, one of them `CONTAINER:PATH` (see `copy`).
pub fn cp(env: &Env, src: &str, dst: &str, o: crate::copy::Options) -> Result<()> {
    crate::copy::cp(src, dst, o, &|c| Ok(record::dir(&env.root, &record::find(&env.root, c)?.id).join("rootfs")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::Healthcheck;

    #[test]
    fn bytes_size_as_docker() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1536), "1.5KiB");
        assert_eq!(bytes_size(2_413_568), "2.302MiB");
        assert_eq!(bytes_size(25_165_824_000), "23.44GiB");
        assert_eq!(bytes_size(1023), "1023B");
    }

    #[test]
    fn healthcheck_flags_over_the_images() {
        let image = Healthcheck { test: vec!["CMD".into(), "/bin/check".into(), "-q".into()], interval: 5_000_000_000, retries: 5, ..Default::default() };
        let none = Healthcheck::default();
        assert_eq!(healthcheck(Some(&image), &none, false).unwrap(), Some(image.clone()));
        let flags = Healthcheck { test: vec!["CMD-SHELL".into(), "test -e /ok".into()], retries: 2, ..Default::default() };
        let h = healthcheck(Some(&image), &flags, false).unwrap().unwrap();
        assert_eq!((h.test.clone(), h.interval, h.retries), (flags.test.clone(), 5_000_000_000, 2));
        assert_eq!(healthcheck(Some(&image), &none, true).unwrap(), None);
        assert!(healthcheck(None, &flags, true).unwrap_err().0.contains("--no-healthcheck conflicts"));
        let off = Healthcheck { test: vec!["NONE".into()], ..Default::default() };
        assert_eq!(healthcheck(Some(&off), &none, false).unwrap(), None);
        let bad = Healthcheck { test: vec!["CMD".into()], ..Default::default() };
        assert!(healthcheck(Some(&bad), &none, false).unwrap_err().0.contains("invalid healthcheck test"));
        let c = health_config(&image);
        assert_eq!((c.cmd.clone(), c.interval, c.timeout, c.retries), (vec!["/bin/check".to_string(), "-q".into()], Duration::from_secs(5), Duration::from_secs(30), 5));
        assert_eq!(health_config(&h).cmd, ["/bin/sh", "-c", "test -e /ok"]);
    }
}
