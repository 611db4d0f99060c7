//! A compose project: its files read, merged (later files override earlier
//! ones) and interpolated, and each service turned into the arguments of
//! the engine's own `create`, so that compose takes exactly what `run`
//! takes and refuses it with the same words.

use super::interpolate::{dotenv, interpolate, shell_quote, split};
use crate::error::{err, Context, Error, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const HASH: &str = "com.docker.compose.config-hash";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";

/// The files compose looks for, in its order.
const DEFAULT_FILES: [&str; 4] = ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"];

/// The command line's say in loading (`-f`, `-p`, `--project-directory`,
/// `--env-file`, `--profile`).
#[derive(Debug, Default)]
pub struct Options {
    pub files: Vec<PathBuf>,
    pub name: Option<String>,
    pub dir: Option<PathBuf>,
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
}

#[derive(Debug)]
pub struct Project {
    pub name: String,
    pub dir: PathBuf,
    /// Active services, each after the ones it depends on.
    pub services: Vec<Service>,
    pub networks: Vec<Resource>,
    pub volumes: Vec<Resource>,
    /// The merged, interpolated model (`config` prints it).
    pub model: Value,
}

/// A top-level network or volume.
#[derive(Debug)]
pub struct Resource {
    pub key: String,
    /// The engine's name for it (`<project>_<key>` unless named).
    pub name: String,
    pub external: bool,
    pub subnet: Option<String>,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    Completed,
}

#[derive(Debug)]
pub struct Service {
    pub name: String,
    pub image: String,
    pub build: Option<Build>,
    pub replicas: u32,
    pub container_name: Option<String>,
    pub depends_on: Vec<(String, Condition)>,
    /// `create` flags but the name, ports, networks and compose's labels.
    pub flags: Vec<String>,
    pub ports: Vec<String>,
    /// Networks joined, the first at create; `--network` as given for a
    /// `network_mode`.
    pub networks: Vec<Attach>,
    pub network_mode: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub pull_policy: String,
    /// Whether attached `up` shows its log (`attach: false` leaves it out).
    pub attach: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attach {
    pub network: String,
    pub aliases: Vec<String>,
    pub ip: Option<String>,
}

#[derive(Debug)]
pub struct Build {
    pub context: PathBuf,
    pub dockerfile: Option<String>,
    pub args: Vec<String>,
    pub target: Option<String>,
}

/// Reads the project the options name.
pub fn load(o: &Options) -> Result<Project> {
    let cwd = std::env::current_dir().ctx(|| "find the current directory")?;
    let mut files: Vec<PathBuf> = o.files.iter().map(|f| cwd.join(f)).collect();
    if files.is_empty() {
        if let Ok(list) = std::env::var("COMPOSE_FILE") {
            files = list.split(':').filter(|f| !f.is_empty()).map(|f| cwd.join(f)).collect();
        }
    }
    if files.is_empty() {
        let dir = o.dir.as_ref().map_or(cwd.clone(), |d| cwd.join(d));
        let found = DEFAULT_FILES.iter().map(|f| dir.join(f)).find(|p| p.is_file());
        files.push(found.ok_or_else(|| Error(format!("no configuration file provided: not found (looked for {} in {})", DEFAULT_FILES.join(", "), dir.display())))?);
    }
    let dir = match &o.dir {
        Some(d) => cwd.join(d),
        None => files[0].parent().map_or(cwd.clone(), Path::to_path_buf),
    };
    // The shell's variables win over the .env file's.
    let mut vars = BTreeMap::new();
    let env_files: Vec<PathBuf> = if o.env_files.is_empty() { vec![dir.join(".env")] } else { o.env_files.iter().map(|f| cwd.join(f)).collect() };
    for f in env_files {
        match std::fs::read_to_string(&f) {
            Ok(text) => vars.extend(dotenv(&text, &|k| std::env::var(k).ok()).map_err(|e| Error(format!("{}: {}", f.display(), e.0)))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && o.env_files.is_empty() => {}
            Err(e) => return err(format!("read env file {}: {e}", f.display())),
        }
    }
    let lookup = |k: &str| std::env::var(k).ok().or_else(|| vars.get(k).cloned());
    let mut model = Value::Object(Map::new());
    for f in &files {
        let text = std::fs::read_to_string(f).ctx(|| format!("read {}", f.display()))?;
        let mut v = crate::yaml::parse(&text).map_err(|e| Error(format!("{}: {e}", f.display())))?;
        if !v.is_object() {
            return err(format!("{}: top-level object must be a mapping", f.display()));
        }
        interpolate_all(&mut v, &lookup).map_err(|e| Error(format!("{}: {}", f.display(), e.0)))?;
        merge(&mut model, v);
    }
    // COMPOSE_PROJECT_NAME and COMPOSE_PROFILES may come from .env too.
    let name = o.name.clone().or_else(|| lookup("COMPOSE_PROJECT_NAME")).or_else(|| model["name"].as_str().map(String::from));
    let name = project_name(name.as_deref().unwrap_or_else(|| dir.file_name().and_then(|n| n.to_str()).unwrap_or("")))?;
    let mut profiles = o.profiles.clone();
    if profiles.is_empty() {
        profiles = lookup("COMPOSE_PROFILES").map(|p| p.split(',').map(String::from).collect()).unwrap_or_default();
    }
    Project::new(name, dir, model, &profiles)
}

/// docker compose's rule: lowercase letters, digits, `-` and `_`.
pub fn project_name(raw: &str) -> Result<String> {
    let n: String = raw.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    let n = n.trim_start_matches(['-', '_']).to_string();
    if n.is_empty() {
        return err(format!("project name {raw:?} must contain a lowercase letter or digit (set one with -p)"));
    }
    Ok(n)
}

fn interpolate_all(v: &mut Value, vars: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    match v {
        Value::String(s) => *s = interpolate(s, vars)?,
        Value::Array(a) => a.iter_mut().try_for_each(|x| interpolate_all(x, vars))?,
        Value::Object(m) => m.iter_mut().try_for_each(|(_, x)| interpolate_all(x, vars))?,
        _ => {}
    }
    Ok(())
}

/// An override file: mappings merge key by key; the lists of things a
/// service has more of (ports, volumes, ...) add up; anything else is
/// replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(Value::Array(have)) if APPENDED.contains(&k.as_str()) => {
                        if let Value::Array(more) = v {
                            for m in more {
                                if !have.contains(&m) {
                                    have.push(m);
                                }
                            }
                        }
                    }
                    Some(have @ Value::Object(_)) if v.is_object() => merge(have, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

const APPENDED: [&str; 10] = ["ports", "expose", "volumes", "dns", "dns_search", "cap_add", "cap_drop", "devices", "env_file", "security_opt"];

/// A scalar as text (`8080`, `true`, `"x"`).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list or a mapping of `KEY=VALUE` (a null value gives `KEY` alone).
fn pairs(v: &Value, what: &str, sep: &str) -> Result<Vec<String>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a.iter().map(|x| text(x).ok_or_else(|| Error(format!("{what}: every entry must be a string")))).collect(),
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| match x {
                Value::Null => Ok(k.clone()),
                x => text(x).map(|t| format!("{k}{sep}{t}")).ok_or_else(|| Error(format!("{what}: {k} must be a string, number or boolean"))),
            })
            .collect(),
        _ => err(format!("{what} must be a list or a mapping")),
    }
}

/// A string or a list of strings.
fn strings(v: &Value, what: &str) -> Result<Vec<String>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(_) => pairs(v, what, "="),
        x => text(x).map(|t| vec![t]).ok_or_else(|| Error(format!("{what} must be a string or a list of strings"))),
    }
}

/// `command`/`entrypoint`: a list as is, a string split as a shell would.
fn command(v: &Value, what: &str) -> Result<Option<Vec<String>>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => split(s).map(Some),
        Value::Array(_) => pairs(v, what, "=").map(Some),
        _ => err(format!("{what} must be a string or a list")),
    }
}

/// Seconds of a Go/compose duration (`1m30s`, `10s`, `90`).
fn seconds(v: &Value, what: &str) -> Result<String> {
    let t = text(v).ok_or_else(|| Error(format!("{what} must be a duration like 10s")))?;
    let t = if t.bytes().all(|c| c.is_ascii_digit()) { format!("{t}s") } else { t };
    let ns = crate::timestamp::duration(&t).ok_or_else(|| Error(format!("{what}: invalid duration {t:?} (like 10s, 1m30s)")))?;
    Ok(((ns + 500_000_000) / 1_000_000_000).to_string())
}

/// The service keys skiff's compose reads; anything else is refused by name.
const KEYS: [&str; 70] = [
    "image", "build", "command", "entrypoint", "environment", "env_file", "ports", "expose", "volumes", "tmpfs", "networks",
    "network_mode", "depends_on", "restart", "container_name", "hostname", "domainname", "user", "working_dir", "stop_signal",
    "stop_grace_period", "platform", "pull_policy", "ipc", "pid", "userns_mode", "cgroup", "shm_size", "mem_limit",
    "memswap_limit", "mem_reservation", "mem_swappiness", "cpus", "cpu_shares", "cpuset", "cpu_period", "cpu_quota",
    "pids_limit", "oom_score_adj", "oom_kill_disable", "init", "privileged", "read_only", "tty", "stdin_open", "labels",
    "cap_add", "cap_drop", "devices", "dns", "dns_search", "dns_opt", "extra_hosts", "security_opt", "sysctls", "ulimits",
    "group_add", "healthcheck", "logging", "deploy", "scale", "profiles", "links", "volumes_from", "runtime", "secrets",
    "configs", "uts", "label_file", "attach",
];

/// Compose keys skiff's compose knows and cannot honour: refused with that reason.
const UNSUPPORTED: [&str; 20] = [
    "extends", "annotations", "cgroup_parent", "credential_spec", "develop", "device_cgroup_rules", "gpus", "isolation",
    "mac_address", "post_start", "pre_stop", "storage_opt", "use_api_socket", "models", "provider", "cpu_count",
    "cpu_percent", "blkio_config", "external_links", "volume_driver",
];

impl Project {
    fn new(name: String, dir: PathBuf, model: Value, profiles: &[String]) -> Result<Project> {
        for k in model.as_object().into_iter().flatten().map(|(k, _)| k) {
            if !["version", "name", "services", "networks", "volumes", "secrets", "configs", "include"].contains(&k.as_str()) && !k.starts_with("x-") {
                return err(format!("(root) additional property {k} is not allowed"));
            }
        }
        if !model["include"].is_null() {
            return err("top-level include is not supported by skiff's compose");
        }
        // Secrets and configs from files; the others need swarm or a daemon.
        let mut files: Vec<(&str, String, PathBuf)> = Vec::new();
        for kind in ["secrets", "configs"] {
            for (key, v) in model[kind].as_object().into_iter().flatten() {
                let Some(file) = v["file"].as_str() else {
                    return err(format!("{kind}.{key}: only file {kind} are supported by skiff's compose (not external, environment or content)"));
                };
                let path = normalize(&dir.join(file));
                files.push((kind, key.clone(), path));
            }
        }
        let resources = |kind: &str, default: bool| -> Result<Vec<Resource>> {
            let mut out = Vec::new();
            let m = match &model[kind] {
                Value::Null => Map::new(),
                Value::Object(m) => m.clone(),
                _ => return err(format!("{kind} must be a mapping")),
            };
            if default && !m.contains_key("default") {
                out.push(Resource { key: "default".into(), name: format!("{name}_default"), external: false, subnet: None, labels: Vec::new() });
            }
            for (key, v) in &m {
                let what = format!("{kind}.{key}");
                if !(v.is_null() || v.is_object()) {
                    return err(format!("{what} must be a mapping"));
                }
                let external = v["external"].as_bool().unwrap_or(false);
                let driver = v["driver"].as_str().unwrap_or(if kind == "networks" { "bridge" } else { "local" });
                if driver != "bridge" && driver != "local" {
                    return err(format!("{what}: driver {driver:?} is not supported (only bridge networks and local volumes)"));
                }
                if v["driver_opts"].as_object().is_some_and(|o| !o.is_empty()) {
                    return err(format!("{what}: driver_opts are not supported"));
                }
                let given = v["name"].as_str().map(String::from);
                let real = given.unwrap_or_else(|| if external { key.clone() } else { format!("{name}_{key}") });
                let subnet = v["ipam"]["config"][0]["subnet"].as_str().map(String::from);
                let labels = pairs(&v["labels"], &format!("{what}.labels"), "=")?;
                out.push(Resource { key: key.clone(), name: real, external, subnet, labels });
            }
            Ok(out)
        };
        let networks = resources("networks", true)?;
        let volumes = resources("volumes", false)?;
        let Some(all) = model["services"].as_object() else {
            return err("services must be a mapping of service names to their definitions");
        };
        let mut services = Vec::new();
        for (sname, v) in all {
            let active = match &v["profiles"] {
                Value::Array(p) => p.iter().any(|x| x.as_str().is_some_and(|x| profiles.iter().any(|p| p == x || p == "*"))),
                _ => true,
            };
            if active {
                services.push(Service::new(&name, &dir, sname, v, &networks, &volumes, &files)?);
            }
        }
        let services = order(services)?;
        Ok(Project { name, dir, services, networks, volumes, model })
    }

    pub fn service(&self, name: &str) -> Result<&Service> {
        self.services.iter().find(|s| s.name == name).ok_or_else(|| Error(format!("no such service: {name}")))
    }

    /// The services named (all when none is), in dependency order.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Service>> {
        for n in names {
            self.service(n)?;
        }
        Ok(self.services.iter().filter(|s| names.is_empty() || names.contains(&s.name)).collect())
    }
}

/// Dependencies first; a cycle is an error that shows it.
fn order(mut left: Vec<Service>) -> Result<Vec<Service>> {
    let names: Vec<String> = left.iter().map(|s| s.name.clone()).collect();
    for s in &left {
        if let Some((d, _)) = s.depends_on.iter().find(|(d, _)| !names.contains(d)) {
            return err(format!("service {:?} depends on undefined service {d:?}: invalid compose project", s.name));
        }
    }
    let mut done: Vec<Service> = Vec::new();
    while !left.is_empty() {
        let Some(i) = left.iter().position(|s| s.depends_on.iter().all(|(d, _)| done.iter().any(|x| &x.name == d))) else {
            let cycle: Vec<&str> = left.iter().map(|s| s.name.as_str()).collect();
            return err(format!("dependency cycle detected among services: {}", cycle.join(", ")));
        };
        done.push(left.remove(i));
    }
    Ok(done)
}

impl Service {
    fn new(project: &str, dir: &Path, name: &str, v: &Value, networks: &[Resource], volumes: &[Resource], files: &[(&str, String, PathBuf)]) -> Result<Service> {
        let what = |k: &str| format!("services.{name}.{k}");
        let Some(m) = v.as_object() else { return err(format!("services.{name} must be a mapping")) };
        if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str()) && !k.starts_with("x-")) {
            if UNSUPPORTED.contains(&k.as_str()) {
                return err(format!("services.{name}.{k} is not supported by skiff's compose"));
            }
            return err(format!("services.{name} additional property {k} is not allowed"));
        }
        let mut f = Args::default();
        let mut depends: Vec<(String, Condition)> = Vec::new();
        // Scalars that are one flag each.
        for (key, fl) in [
            ("restart", "--restart"), ("hostname", "--hostname"), ("domainname", "--domainname"), ("user", "--user"),
            ("working_dir", "--workdir"), ("stop_signal", "--stop-signal"), ("platform", "--platform"), ("ipc", "--ipc"),
            ("pid", "--pid"), ("userns_mode", "--userns"), ("cgroup", "--cgroupns"), ("shm_size", "--shm-size"),
            ("mem_limit", "--memory"), ("memswap_limit", "--memory-swap"), ("mem_reservation", "--memory-reservation"),
            ("mem_swappiness", "--memory-swappiness"), ("cpus", "--cpus"), ("cpu_shares", "--cpu-shares"), ("cpuset", "--cpuset-cpus"),
            ("cpu_period", "--cpu-period"), ("cpu_quota", "--cpu-quota"), ("pids_limit", "--pids-limit"), ("oom_score_adj", "--oom-score-adj"),
            ("runtime", "--runtime"), ("uts", "--uts"),
        ] {
            if let Some(x) = m.get(key).filter(|x| !x.is_null()) {
                f.pair(fl, text(x).ok_or_else(|| Error(format!("{} must be a string or a number", what(key))))?);
            }
        }
        for (key, fl) in [("init", "--init"), ("privileged", "--privileged"), ("read_only", "--read-only"), ("tty", "--tty"), ("stdin_open", "--interactive"), ("oom_kill_disable", "--oom-kill-disable")] {
            match m.get(key) {
                None | Some(Value::Null) | Some(Value::Bool(false)) => {}
                Some(Value::Bool(true)) => f.one(fl),
                Some(_) => return err(format!("{} must be a boolean", what(key))),
            }
        }
        if let Some(x) = m.get("stop_grace_period") {
            let s = seconds(x, &what("stop_grace_period"))?;
            f.pair("--stop-timeout", s);
        }
        for (key, fl) in [("expose", "--expose"), ("cap_add", "--cap-add"), ("cap_drop", "--cap-drop"), ("devices", "--device"), ("dns", "--dns"), ("dns_search", "--dns-search"), ("dns_opt", "--dns-option"), ("security_opt", "--security-opt"), ("group_add", "--group-add"), ("tmpfs", "--tmpfs")] {
            for x in strings(m.get(key).unwrap_or(&Value::Null), &what(key))? {
                f.pair(fl, x);
            }
        }
        for (key, fl) in [("environment", "--env"), ("labels", "--label"), ("sysctls", "--sysctl")] {
            for x in pairs(m.get(key).unwrap_or(&Value::Null), &what(key), "=")? {
                f.pair(fl, x);
            }
        }
        for x in pairs(m.get("extra_hosts").unwrap_or(&Value::Null), &what("extra_hosts"), ":")? {
            // compose also takes host=ip
            let x = if x.contains('=') && !x.contains(':') { x.replacen('=', ":", 1) } else { x };
            f.pair("--add-host", x);
        }
        if let Some(lf) = m.get("label_file") {
            for l in strings(lf, &what("label_file"))? {
                f.pair("--label-file", dir.join(l).display().to_string());
            }
        }
        // File secrets and configs: read-only binds, as compose does without swarm.
        for (kind, base) in [("secrets", "/run/secrets/"), ("configs", "/")] {
            for x in m.get(kind).and_then(Value::as_array).into_iter().flatten() {
                let (source, target) = match x {
                    Value::Object(o) => (o.get("source").and_then(text), o.get("target").and_then(text)),
                    x => (text(x), None),
                };
                let source = source.ok_or_else(|| Error(format!("{}: an entry needs a source", what(kind))))?;
                let file = files
                    .iter()
                    .find(|(k, key, _)| *k == kind && *key == source)
                    .map(|(_, _, p)| p)
                    .ok_or_else(|| Error(format!("service {name:?} refers to undefined {} {source}: invalid compose project", &kind[..kind.len() - 1])))?;
                let target = target.unwrap_or_else(|| source.clone());
                let target = if target.starts_with('/') { target } else { format!("{base}{target}") };
                f.pair("--volume", format!("{}:{target}:ro", file.display()));
            }
        }
        let env_files = match m.get("env_file") {
            Some(Value::Array(a)) => a.clone(),
            Some(x) if !x.is_null() => vec![x.clone()],
            _ => Vec::new(),
        };
        for e in env_files {
            let (path, required) = match &e {
                Value::Object(o) => (o.get("path").and_then(text), o.get("required").and_then(Value::as_bool).unwrap_or(true)),
                x => (text(x), true),
            };
            let path = dir.join(path.ok_or_else(|| Error(format!("{}: an entry needs a path", what("env_file"))))?);
            if path.exists() || required {
                if !path.exists() {
                    return err(format!("env file {} not found (services.{name}.env_file)", path.display()));
                }
                f.pair("--env-file", path.display().to_string());
            }
        }
        if let Some(u) = m.get("ulimits").and_then(Value::as_object) {
            for (k, x) in u {
                let v = match x {
                    Value::Object(o) => format!("{}:{}", o.get("soft").and_then(text).unwrap_or_default(), o.get("hard").and_then(text).unwrap_or_default()),
                    x => text(x).ok_or_else(|| Error(format!("{} must be a number or soft/hard", what("ulimits"))))?,
                };
                f.pair("--ulimit", format!("{k}={v}"));
            }
        }
        let hc = m.get("healthcheck").filter(|h| !h.is_null());
        if let Some(h) = hc {
            let test = match &h["test"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                Value::Array(a) => {
                    let words: Vec<String> = a.iter().filter_map(text).collect();
                    match words.first().map(String::as_str) {
                        Some("NONE") => None,
                        Some("CMD") => Some(shell_quote(&words[1..])),
                        Some("CMD-SHELL") => Some(words[1..].join(" ")),
                        _ => return err(format!("{} must start with CMD, CMD-SHELL or NONE", what("healthcheck.test"))),
                    }
                }
                _ => return err(format!("{} must be a string or a list", what("healthcheck.test"))),
            };
            if h["disable"].as_bool() == Some(true) || h["test"][0] == "NONE" {
                f.one("--no-healthcheck");
            } else {
                if let Some(t) = test {
                    f.pair("--health-cmd", t);
                }
                for (key, fl) in [("interval", "--health-interval"), ("timeout", "--health-timeout"), ("start_period", "--health-start-period"), ("retries", "--health-retries")] {
                    if let Some(x) = h.get(key).and_then(text) {
                        f.pair(fl, x);
                    }
                }
            }
        }
        if let Some(l) = m.get("logging").filter(|l| !l.is_null()) {
            if let Some(d) = l["driver"].as_str() {
                f.pair("--log-driver", d.to_string());
            }
            for o in pairs(&l["options"], &what("logging.options"), "=")? {
                f.pair("--log-opt", o);
            }
        }
        let mut replicas = m.get("scale").and_then(Value::as_u64).unwrap_or(1);
        if let Some(d) = m.get("deploy").filter(|d| !d.is_null()) {
            if let Some(r) = d["replicas"].as_u64() {
                replicas = r;
            }
            let lim = &d["resources"]["limits"];
            for (key, fl) in [("memory", "--memory"), ("cpus", "--cpus"), ("pids", "--pids-limit")] {
                if let Some(x) = lim.get(key).and_then(text) {
                    f.pair(fl, x);
                }
            }
            if let Some(c) = d["restart_policy"]["condition"].as_str() {
                let p = match (c, d["restart_policy"]["max_attempts"].as_u64()) {
                    ("any", _) => "always".to_string(),
                    ("on-failure", Some(n)) => format!("on-failure:{n}"),
                    ("on-failure", None) => "on-failure".to_string(),
                    ("none", _) => "no".to_string(),
                    (c, _) => return err(format!("{}: unknown condition {c:?}", what("deploy.restart_policy"))),
                };
                f.pair("--restart", p);
            }
        }
        // Volumes: binds made absolute from the project directory, named
        // volumes through their top-level entry.
        for x in m.get("volumes").and_then(Value::as_array).into_iter().flatten() {
            let volume = |src: &str| -> Result<String> {
                if src.starts_with(['.', '/', '~']) {
                    let home = std::env::var("HOME").unwrap_or_default();
                    let p = if let Some(r) = src.strip_prefix('~') { PathBuf::from(format!("{home}{r}")) } else { dir.join(src) };
                    return Ok(normalize(&p).display().to_string());
                }
                volumes
                    .iter()
                    .find(|v| v.key == src)
                    .map(|v| v.name.clone())
                    .ok_or_else(|| Error(format!("service {name:?} refers to undefined volume {src}: invalid compose project")))
            };
            match x {
                Value::String(s) => {
                    let parts: Vec<&str> = s.splitn(3, ':').collect();
                    let v = match parts.as_slice() {
                        [target] => target.to_string(),
                        [src, rest @ ..] => format!("{}:{}", volume(src)?, rest.join(":")),
                        [] => unreachable!("splitn gives one part at least"),
                    };
                    f.pair("--volume", v);
                }
                Value::Object(o) => {
                    let target = o.get("target").and_then(text).ok_or_else(|| Error(format!("{}: an entry needs a target", what("volumes"))))?;
                    let ro = if o.get("read_only").and_then(Value::as_bool) == Some(true) { ":ro" } else { "" };
                    match (o.get("type").and_then(Value::as_str).unwrap_or("volume"), o.get("source").and_then(text)) {
                        ("tmpfs", _) => {
                            let size = o.get("tmpfs").and_then(|t| t.get("size")).and_then(text).map(|s| format!(":size={s}")).unwrap_or_default();
                            f.pair("--tmpfs", format!("{target}{size}"));
                        }
                        ("volume", None) => f.pair("--volume", format!("{target}{ro}")),
                        ("bind" | "volume", Some(src)) => {
                            let src = if o.get("type").and_then(Value::as_str) == Some("bind") && !src.starts_with(['.', '/', '~']) { format!("./{src}") } else { src };
                            f.pair("--volume", format!("{}:{target}{ro}", volume(&src)?));
                        }
                        (t, _) => return err(format!("{}: type {t:?} is not supported (volume, bind, tmpfs)", what("volumes"))),
                    }
                }
                _ => return err(format!("{} entries must be strings or mappings", what("volumes"))),
            }
        }
        for x in strings(m.get("volumes_from").unwrap_or(&Value::Null), &what("volumes_from"))? {
            let v = match x.strip_prefix("container:") {
                Some(c) => c.to_string(),
                None => {
                    let (svc, mode) = x.split_once(':').map_or((x.as_str(), None), |(s, m)| (s, Some(m)));
                    depends.push((svc.to_string(), Condition::Started));
                    format!("{project}-{svc}-1{}", mode.map(|m| format!(":{m}")).unwrap_or_default())
                }
            };
            f.pair("--volumes-from", v);
        }
        let mut ports = Vec::new();
        for x in m.get("ports").and_then(Value::as_array).into_iter().flatten() {
            ports.push(match x {
                Value::Object(o) => {
                    let target = o.get("target").and_then(text).ok_or_else(|| Error(format!("{}: an entry needs a target", what("ports"))))?;
                    let proto = o.get("protocol").and_then(text).map(|p| format!("/{p}")).unwrap_or_default();
                    match (o.get("host_ip").and_then(text), o.get("published").and_then(text)) {
                        (Some(ip), Some(p)) => format!("{ip}:{p}:{target}{proto}"),
                        (None, Some(p)) => format!("{p}:{target}{proto}"),
                        (Some(ip), None) => format!("{ip}::{target}{proto}"),
                        (None, None) => format!("{target}{proto}"),
                    }
                }
                x => text(x).ok_or_else(|| Error(format!("{} entries must be strings, numbers or mappings", what("ports"))))?,
            });
        }
        match m.get("depends_on") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for d in a {
                    depends.push((text(d).ok_or_else(|| Error(format!("{} entries must be service names", what("depends_on"))))?, Condition::Started));
                }
            }
            Some(Value::Object(o)) => {
                for (d, c) in o {
                    let cond = match c["condition"].as_str().unwrap_or("service_started") {
                        "service_started" => Condition::Started,
                        "service_healthy" => Condition::Healthy,
                        "service_completed_successfully" => Condition::Completed,
                        other => return err(format!("{}.{d}: unknown condition {other:?}", what("depends_on"))),
                    };
                    depends.push((d.clone(), cond));
                }
            }
            Some(_) => return err(format!("{} must be a list or a mapping", what("depends_on"))),
        }
        for l in strings(m.get("links").unwrap_or(&Value::Null), &what("links"))? {
            // Services reach each other by name on the project network;
            // a link still orders the start.
            depends.push((l.split(':').next().unwrap_or(&l).to_string(), Condition::Started));
        }
        let network_mode = m.get("network_mode").and_then(text);
        let network_mode = match network_mode.as_deref().map(|n| n.split_once(':').unwrap_or((n, ""))) {
            Some(("service", s)) => {
                depends.push((s.to_string(), Condition::Started));
                Some(format!("container:{project}-{s}-1"))
            }
            _ => network_mode,
        };
        let mut attach = Vec::new();
        if network_mode.is_none() {
            let joined: Vec<(String, Value)> = match m.get("networks") {
                None | Some(Value::Null) => vec![("default".into(), Value::Null)],
                Some(Value::Array(a)) => a.iter().map(|x| (text(x).unwrap_or_default(), Value::Null)).collect(),
                Some(Value::Object(o)) => o.iter().map(|(k, x)| (k.clone(), x.clone())).collect(),
                Some(_) => return err(format!("{} must be a list or a mapping", what("networks"))),
            };
            for (key, opts) in joined {
                let net = networks.iter().find(|n| n.key == key).ok_or_else(|| Error(format!("service {name:?} refers to undefined network {key}: invalid compose project")))?;
                let mut aliases = vec![name.to_string()];
                aliases.extend(opts["aliases"].as_array().into_iter().flatten().filter_map(text));
                attach.push(Attach { network: net.name.clone(), aliases, ip: opts["ipv4_address"].as_str().map(String::from) });
            }
        }
        let build = match m.get("build") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) => Some(Build { context: normalize(&dir.join(c)), dockerfile: None, args: Vec::new(), target: None }),
            Some(b @ Value::Object(_)) => Some(Build {
                context: normalize(&dir.join(b["context"].as_str().unwrap_or("."))),
                dockerfile: b["dockerfile"].as_str().map(String::from),
                args: pairs(&b["args"], &what("build.args"), "=")?,
                target: b["target"].as_str().map(String::from),
            }),
            Some(_) => return err(format!("{} must be a path or a mapping", what("build"))),
        };
        let image = match (m.get("image").and_then(text), &build) {
            (Some(i), _) => i,
            (None, Some(_)) => format!("{project}-{name}"),
            (None, None) => return err(format!("service {name:?} has neither an image nor a build context specified: invalid compose project")),
        };
        let container_name = m.get("container_name").and_then(text);
        if container_name.is_some() && replicas > 1 {
            return err(format!("services.{name}: container_name {:?} cannot be used with more than one replica", container_name.unwrap_or_default()));
        }
        Ok(Service {
            name: name.to_string(),
            image,
            build,
            replicas: replicas.min(1000) as u32,
            container_name,
            depends_on: depends,
            flags: f.0,
            ports,
            networks: attach,
            network_mode,
            entrypoint: command(m.get("entrypoint").unwrap_or(&Value::Null), &what("entrypoint"))?,
            command: command(m.get("command").unwrap_or(&Value::Null), &what("command"))?,
            pull_policy: m.get("pull_policy").and_then(text).unwrap_or_else(|| "missing".into()),
            attach: m.get("attach").and_then(Value::as_bool).unwrap_or(true),
        })
    }

    /// The name of container `n` (from 1).
    pub fn container(&self, project: &str, n: u32) -> String {
        match &self.container_name {
            Some(c) => c.clone(),
            None => format!("{project}-{}-{n}", self.name),
        }
    }

    /// What decides whether a container is still up to date: every flag,
    /// port, network and word, and the image it was created from.
    pub fn hash(&self, image_id: &str) -> String {
        use sha2::Digest;
        let v = serde_json::json!([self.flags, self.ports, self.networks.iter().map(|a| (&a.network, &a.aliases, &a.ip)).collect::<Vec<_>>(),
            self.network_mode, self.entrypoint, self.command, self.image, image_id]);
        let d = sha2::Sha256::digest(v.to_string().as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Arguments of the engine's `create` (or `run`) for container `n`,
    /// after the command word; `ports` is false for one-off containers.
    pub fn create_args(&self, project: &Project, name: &str, n: u32, hash: &str, ports: bool, oneoff: bool) -> Vec<String> {
        let mut a: Vec<String> = vec!["--name".into(), name.into()];
        let labels = [
            format!("{PROJECT}={}", project.name),
            format!("{SERVICE}={}", self.name),
            format!("{NUMBER}={n}"),
            format!("{ONEOFF}={}", if oneoff { "True" } else { "False" }),
            format!("{HASH}={hash}"),
            format!("com.docker.compose.project.working_dir={}", project.dir.display()),
        ];
        for l in labels {
            a.push("--label".into());
            a.push(l);
        }
        a.extend(self.flags.iter().cloned());
        if ports {
            for p in &self.ports {
                a.push("--publish".into());
                a.push(p.clone());
            }
        }
        if let Some(m) = &self.network_mode {
            a.push("--network".into());
            a.push(m.clone());
        } else if let Some(first) = self.networks.first() {
            a.push("--network".into());
            a.push(first.network.clone());
            for al in &first.aliases {
                a.push("--network-alias".into());
                a.push(al.clone());
            }
            if let Some(ip) = &first.ip {
                a.push("--ip".into());
                a.push(ip.clone());
            }
        }
        a.push("--pull".into());
        a.push(if self.pull_policy == "always" { "always" } else if self.build.is_some() || self.pull_policy == "never" { "never" } else { "missing" }.into());
        let mut words = self.command.clone();
        if let Some(ep) = &self.entrypoint {
            a.push("--entrypoint".into());
            a.push(ep.first().cloned().unwrap_or_default());
            words = Some(ep.iter().skip(1).cloned().chain(words.unwrap_or_default()).collect());
        }
        a.push("--".into());
        a.push(self.image.clone());
        a.extend(words.unwrap_or_default());
        a
    }
}

/// Flags as they are gathered.
#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    fn one(&mut self, flag: &str) {
        self.0.push(flag.to_string());
    }

    fn pair(&mut self, flag: &str, value: String) {
        self.0.push(flag.to_string());
        self.0.push(value);
    }
}

/// `a/./b/../c` as `a/c`, without touching the disk (the path may not exist yet).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Result<Project> {
        let v = crate::yaml::parse(yaml).map_err(Error)?;
        Project::new("demo".into(), PathBuf::from("/srv/demo"), v, &[])
    }

    #[test]
    fn services_become_create_arguments() {
        let p = project(
            "services:\n  web:\n    image: nginx:1.25\n    ports: ['8080:80', {target: 443, published: 8443, host_ip: 127.0.0.1}]\n    \
             environment: {A: '1', B: null}\n    volumes: ['./html:/usr/share/html:ro', 'data:/data', '/cache']\n    \
             command: nginx -g 'daemon off;'\n    depends_on: {db: {condition: service_healthy}}\n    \
             healthcheck: {test: [CMD, wget, -q, 'http://x/'], interval: 5s}\n    stop_grace_period: 1m30s\n  \
             db:\n    image: busybox\n    networks: [default, back]\n    entrypoint: [sh, -c]\n    command: ['echo hi']\n\
             volumes:\n  data: {}\nnetworks:\n  back:\n    ipam: {config: [{subnet: 10.99.0.0/24}]}\n",
        )
        .unwrap();
        assert_eq!(p.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["db", "web"]);
        let web = p.service("web").unwrap();
        assert_eq!(web.depends_on, [("db".to_string(), Condition::Healthy)]);
        let a = web.create_args(&p, "demo-web-1", 1, "h", true, false);
        let s = a.join(" ");
        for want in [
            "--name demo-web-1",
            "--label com.docker.compose.project=demo",
            "--env A=1 --env B",
            "--volume /srv/demo/html:/usr/share/html:ro --volume demo_data:/data --volume /cache",
            "--health-cmd wget -q http://x/ --health-interval 5s",
            "--stop-timeout 90",
            "--publish 8080:80 --publish 127.0.0.1:8443:443",
            "--network demo_default --network-alias web",
            "-- nginx:1.25 nginx -g daemon off;",
        ] {
            assert!(s.contains(want), "{want:?} not in {s}");
        }
        assert_eq!(a.last().unwrap(), "daemon off;");
        let v = crate::yaml::parse("services:\n  a:\n    image: x\n    secrets: [pw, {source: pw, target: other}]\n    configs: [{source: conf, target: /etc/app.conf}]\nsecrets:\n  pw: {file: ./pw.txt}\nconfigs:\n  conf: {file: conf/app.conf}\n").unwrap();
        let sp = Project::new("demo".into(), PathBuf::from("/srv/demo"), v, &[]).unwrap();
        let a = sp.services[0].create_args(&sp, "n", 1, "h", true, false).join(" ");
        assert!(a.contains("--volume /srv/demo/pw.txt:/run/secrets/pw:ro --volume /srv/demo/pw.txt:/run/secrets/other:ro --volume /srv/demo/conf/app.conf:/etc/app.conf:ro"), "{a}");
        let db = p.service("db").unwrap();
        assert_eq!(db.networks.iter().map(|n| n.network.as_str()).collect::<Vec<_>>(), ["demo_default", "demo_back"]);
        let a = db.create_args(&p, "demo-db-1", 1, "h", false, false).join(" ");
        assert!(a.ends_with("--entrypoint sh -- busybox -c echo hi"), "{a}");
        assert_eq!(p.networks.iter().find(|n| n.key == "back").unwrap().subnet.as_deref(), Some("10.99.0.0/24"));
        assert_ne!(web.hash("sha256:1"), web.hash("sha256:2"));
    }

    #[test]
    fn bad_projects_are_named() {
        let e = |y: &str| project(y).unwrap_err().0;
        assert!(e("services:\n  a:\n    image: x\n    depends_on: [b]\n").contains("depends on undefined service \"b\""));
        assert!(e("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n").contains("dependency cycle"));
        assert!(e("services:\n  a:\n    image: x\n    volumes: ['nope:/d']\n").contains("undefined volume nope"));
        assert!(e("services:\n  a:\n    image: x\n    networks: [nope]\n").contains("undefined network nope"));
        assert!(e("services:\n  a:\n    image: x\n    bogus: 1\n").contains("services.a additional property bogus is not allowed"));
        assert!(e("services:\n  a:\n    command: x\n").contains("neither an image nor a build context"));
        assert!(e("services:\n  a:\n    image: x\nsecrets:\n  s: {external: true}\n").contains("secrets.s: only file secrets"));
        assert!(e("services:\n  a:\n    image: x\n    secrets: [nope]\n").contains("undefined secret nope"));
        assert!(e("services:\n  a:\n    image: x\n    extends: {service: b}\n").contains("services.a.extends is not supported"));
        assert!(e("services:\n  a:\n    image: x\n    container_name: c\n    deploy: {replicas: 2}\n").contains("container_name"));
        assert!(e("services:\n  a:\n    image: x\nnetworks:\n  n: {driver: overlay}\n").contains("driver \"overlay\""));
    }

    #[test]
    fn profiles_builds_and_merges() {
        let v = crate::yaml::parse("services:\n  a:\n    build: ./app\n  dbg:\n    image: x\n    profiles: [debug]\n").unwrap();
        let p = Project::new("demo".into(), PathBuf::from("/srv/demo"), v.clone(), &[]).unwrap();
        assert_eq!(p.services.len(), 1);
        assert_eq!(p.services[0].image, "demo-a");
        assert_eq!(p.services[0].build.as_ref().unwrap().context, PathBuf::from("/srv/demo/app"));
        assert!(p.services[0].create_args(&p, "n", 1, "h", true, false).join(" ").contains("--pull never"));
        let p = Project::new("demo".into(), PathBuf::from("/srv/demo"), v, &["debug".into()]).unwrap();
        assert_eq!(p.services.len(), 2);
        let mut base = crate::yaml::parse("services:\n  a:\n    image: x\n    ports: ['1:1']\n    environment: {A: '1'}\n").unwrap();
        merge(&mut base, crate::yaml::parse("services:\n  a:\n    image: y\n    ports: ['2:2']\n    environment: {B: '2'}\n").unwrap());
        assert_eq!(base["services"]["a"], serde_json::json!({"image": "y", "ports": ["1:1", "2:2"], "environment": {"A": "1", "B": "2"}}));
        assert_eq!(project_name("My App.v2").unwrap(), "myappv2");
        assert!(project_name("..").is_err());
    }
}
