//! `engine`: docker's command line, daemonless. Parses docker's flags and
//! calls the library; exit codes follow docker (125 engine error, 126/127
//! for a program that cannot run, else the container's code).

use skiff_engine::commands::images as image_cmds;
use skiff_engine::commands::prune::{self, Filters};
use skiff_engine::containers::{self, Env, Failed, RunOpts};
use skiff_engine::flags::{flag, parse, Flag, Parsed};
use skiff_engine::images::Store;
use skiff_engine::oci;
use std::path::PathBuf;

const USAGE: &str = "Usage: engine [--root DIR] [--bridge NAME] [--subnet CIDR] [--iptables=false] COMMAND

A daemonless Docker-compatible engine for small Linux hosts (skiff).

Containers: run create start stop kill restart rm ps logs wait inspect port rename pause unpause exec top stats cp update export diff attach commit
            container prune, restore (after a reboot: restart policies)
Volumes:    volume create|ls|rm|inspect|prune;  Networks: network create|connect|disconnect|ls|inspect|rm|prune
Images:     build import load save tag images rmi history image inspect|ls|rm|prune
            pull push login logout (registries: --platform, --insecure-registry HOST:PORT)
Compose:    compose [-f FILE] [-p NAME] up|create|down|ps|logs|start|stop|restart|kill|rm|exec|run|build|pull|port|top|cp|config|ls
Other:      version info events, system df, system prune [-a] [--volumes], builder prune

Run 'engine COMMAND --help' for the flags (they are docker's).";

/// The cgroup limits `run` and `update` share (read by `limits`).
const LIMIT_FLAGS: &[Flag] = &[
    flag("memory", Some('m'), true),
    flag("memory-swap", None, true),
    flag("memory-reservation", None, true),
    flag("cpus", None, true),
    flag("cpu-shares", Some('c'), true),
    flag("cpu-period", None, true),
    flag("cpu-quota", None, true),
    flag("cpuset-cpus", None, true),
    flag("cpuset-mems", None, true),
    flag("pids-limit", None, true),
    flag("blkio-weight", None, true),
];

/// `run`'s flags besides `LIMIT_FLAGS`.
const RUN_FLAGS: &[Flag] = &[
    flag("detach", Some('d'), false),
    flag("interactive", Some('i'), false),
    flag("tty", Some('t'), false),
    flag("rm", None, false),
    flag("name", None, true),
    flag("init", None, false),
    flag("init-path", None, true),
    flag("publish", Some('p'), true),
    flag("publish-all", Some('P'), false),
    flag("env", Some('e'), true),
    flag("env-file", None, true),
    flag("volume", Some('v'), true),
    flag("tmpfs", None, true),
    flag("workdir", Some('w'), true),
    flag("user", Some('u'), true),
    flag("hostname", Some('h'), true),
    flag("network", None, true),
    flag("net", None, true),
    flag("read-only", None, false),
    flag("restart", None, true),
    flag("cap-add", None, true),
    flag("cap-drop", None, true),
    flag("privileged", None, false),
    flag("security-opt", None, true),
    flag("add-host", None, true),
    flag("pid", None, true),
    flag("ipc", None, true),
    flag("uts", None, true),
    flag("oom-score-adj", None, true),
    flag("oom-kill-disable", None, false),
    flag("cidfile", None, true),
    flag("expose", None, true),
    flag("mount", None, true),
    flag("device", None, true),
    flag("ulimit", None, true),
    flag("sysctl", None, true),
    flag("group-add", None, true),
    flag("shm-size", None, true),
    flag("dns", None, true),
    flag("dns-search", None, true),
    flag("dns-option", None, true),
    flag("dns-opt", None, true),
    flag("entrypoint", None, true),
    flag("stop-signal", None, true),
    flag("stop-timeout", None, true),
    flag("log-opt", None, true),
    flag("log-driver", None, true),
    flag("pull", None, true),
    flag("platform", None, true),
    flag("health-cmd", None, true),
    flag("health-interval", None, true),
    flag("health-timeout", None, true),
    flag("health-start-period", None, true),
    flag("health-retries", None, true),
    flag("no-healthcheck", None, false),
    flag("runtime", None, true),
    flag("label", Some('l'), true),
    flag("label-file", None, true),
    flag("volumes-from", None, true),
    flag("domainname", None, true),
    flag("network-alias", None, true),
    flag("ip", None, true),
    flag("link", None, true),
    flag("cgroupns", None, true),
    flag("memory-swappiness", None, true),
    flag("userns", None, true),
    flag("quiet", Some('q'), false),
    // taken as docker takes them; what they ask is what happens anyway
    flag("sig-proxy", None, false),
    flag("detach-keys", None, true),
    flag("disable-content-trust", None, false),
    flag("attach", Some('a'), true),
];

fn fail(code: i32, msg: impl std::fmt::Display) -> i32 {
    let msg = msg.to_string();
    if msg.starts_with("Error") {
        eprintln!("{msg}");
    } else {
        eprintln!("engine: {msg}");
    }
    code
}

/// `--health-*` as a Healthcheck (zeros: not given).
fn health_flags(p: &Parsed) -> Result<skiff_engine::images::Healthcheck, String> {
    let dur = |name: &str| -> Result<i64, String> {
        match p.get(name) {
            None => Ok(0),
            Some(v) => match skiff_runtime::container::parse_duration(v) {
                Ok(d) if d >= std::time::Duration::from_millis(1) => Ok(d.as_nanos() as i64),
                _ => Err(format!("invalid --{name} {v:?}: a duration of at least 1ms (500ms, 30s, 1m30s)")),
            },
        }
    };
    let retries = match p.get("health-retries") {
        None => 0,
        Some(v) => v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| format!("invalid --health-retries {v:?}: a number above 0"))?,
    };
    Ok(skiff_engine::images::Healthcheck {
        test: p.get("health-cmd").map(|c| vec!["CMD-SHELL".to_string(), c.to_string()]).unwrap_or_default(),
        interval: dur("health-interval")?,
        timeout: dur("health-timeout")?,
        start_period: dur("health-start-period")?,
        retries,
    })
}

/// An integer flag's value, if given.
fn int_flag(p: &Parsed, name: &str) -> Result<Option<i64>, String> {
    p.get(name).map(|v| v.parse::<i64>().map_err(|_| format!("invalid value {v:?} for --{name}"))).transpose()
}

/// The cgroup limit flags of `run` and `update`.
fn limits(p: &Parsed) -> Result<oci::Limits, String> {
    let mut l = oci::Limits::default();
    let num = |name: &str| int_flag(p, name);
    if let Some(m) = p.get("memory") {
        l.memory = Some(oci::parse_size(m).map_err(|e| e.0)?);
    }
    if let Some(c) = p.get("cpus") {
        l.cpus = Some(c.parse::<f64>().ok().filter(|c| *c > 0.0).ok_or_else(|| format!("invalid argument {c:?} for --cpus"))?);
    }
    l.pids = num("pids-limit")?;
    let size = |name: &str| -> Result<Option<i64>, String> {
        p.get(name).map(|v| if v == "-1" { Ok(-1) } else { oci::parse_size(v).map_err(|e| format!("invalid --{name}: {}", e.0)) }).transpose()
    };
    l.memory_swap = size("memory-swap")?;
    l.memory_reservation = size("memory-reservation")?.filter(|n| *n > 0);
    l.oom_kill_disable = p.on("oom-kill-disable");
    let unsigned = |name: &str| -> Result<Option<u64>, String> {
        p.get(name).map(|v| v.parse::<u64>().map_err(|_| format!("invalid value {v:?} for --{name}"))).transpose()
    };
    l.cpu_shares = unsigned("cpu-shares")?.filter(|n| *n > 0);
    l.cpu_period = unsigned("cpu-period")?.filter(|n| *n > 0);
    l.cpu_quota = num("cpu-quota")?.filter(|n| *n != 0);
    l.cpuset_cpus = p.get("cpuset-cpus").map(String::from);
    l.cpuset_mems = p.get("cpuset-mems").map(String::from);
    l.blkio_weight = unsigned("blkio-weight")?.filter(|n| *n > 0).map(|w| w.min(u16::MAX as u64) as u16);
    Ok(l)
}

fn run_opts(p: &Parsed) -> Result<RunOpts, String> {
    let num = |name: &str| int_flag(p, name);
    let mut o = RunOpts {
        detach: p.on("detach"),
        interactive: p.on("interactive"),
        tty: p.on("tty"),
        rm: p.on("rm"),
        name: p.get("name").map(String::from),
        init: p.on("init"),
        init_path: p.get("init-path").map(PathBuf::from),
        publish: p.all("publish").into_iter().map(String::from).collect(),
        publish_all: p.on("publish-all"),
        env: p.all("env").into_iter().map(String::from).collect(),
        env_files: p.all("env-file").into_iter().map(PathBuf::from).collect(),
        volumes: p.all("volume").into_iter().map(String::from).collect(),
        tmpfs: p.all("tmpfs").into_iter().map(String::from).collect(),
        workdir: p.get("workdir").map(String::from),
        user: p.get("user").map(String::from),
        hostname: p.get("hostname").map(String::from),
        network: p.get("network").or(p.get("net")).unwrap_or("").to_string(),
        read_only: p.on("read-only"),
        restart: p.get("restart").unwrap_or("").to_string(),
        cap_add: p.all("cap-add").into_iter().map(String::from).collect(),
        cap_drop: p.all("cap-drop").into_iter().map(String::from).collect(),
        privileged: p.on("privileged"),
        entrypoint: p.get("entrypoint").map(String::from),
        stop_signal: p.get("stop-signal").map(String::from),
        stop_timeout: num("stop-timeout")?.map(|n| n.max(0) as u32),
        log_opts: p.all("log-opt").into_iter().map(String::from).collect(),
        log_driver: p.get("log-driver").map(String::from),
        health: health_flags(p)?,
        no_healthcheck: p.on("no-healthcheck"),
        runtime: p.get("runtime").map(which),
        labels: p.all("label").into_iter().map(String::from).collect(),
        label_files: p.all("label-file").into_iter().map(PathBuf::from).collect(),
        volumes_from: p.all("volumes-from").into_iter().map(String::from).collect(),
        domainname: p.get("domainname").map(String::from),
        network_aliases: p.all("network-alias").into_iter().map(String::from).collect(),
        ip: p.get("ip").map(String::from),
        links: p.all("link").into_iter().map(String::from).collect(),
        cgroupns: p.get("cgroupns").unwrap_or("").to_string(),
        security_opt: p.all("security-opt").into_iter().map(String::from).collect(),
        add_host: p.all("add-host").into_iter().map(String::from).collect(),
        pid: p.get("pid").unwrap_or("").to_string(),
        ipc: p.get("ipc").unwrap_or("").to_string(),
        uts: p.get("uts").unwrap_or("").to_string(),
        oom_score_adj: num("oom-score-adj")?.unwrap_or(0).clamp(i32::MIN as i64, i32::MAX as i64) as i32,
        cidfile: p.get("cidfile").map(PathBuf::from),
        expose: p.all("expose").into_iter().map(String::from).collect(),
        mounts: p.all("mount").into_iter().map(String::from).collect(),
        devices: p.all("device").into_iter().map(String::from).collect(),
        ulimits: p.all("ulimit").into_iter().map(String::from).collect(),
        sysctls: p.all("sysctl").into_iter().map(String::from).collect(),
        group_add: p.all("group-add").into_iter().map(String::from).collect(),
        dns: p.all("dns").into_iter().map(String::from).collect(),
        dns_search: p.all("dns-search").into_iter().map(String::from).collect(),
        dns_option: p.all("dns-option").into_iter().chain(p.all("dns-opt")).map(String::from).collect(),
        ..Default::default()
    };
    o.limits = limits(p)?;
    o.limits.memory_swappiness = p.get("memory-swappiness").map(|v| v.parse::<i64>().map_err(|_| format!("invalid value {v:?} for --memory-swappiness"))).transpose()?.and_then(|v| u64::try_from(v).ok());
    if let Some(u) = p.get("userns").filter(|u| !u.is_empty() && *u != "host") {
        return Err(format!("--userns {u}: user namespaces are not supported (host is)"));
    }
    for a in p.all("attach") {
        if !["stdin", "stdout", "stderr"].contains(&a.to_lowercase().as_str()) {
            return Err(format!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"));
        }
    }
    if let Some(s) = p.get("shm-size") {
        o.shm_size = Some(oci::parse_size(s).map_err(|e| format!("invalid --shm-size: {}", e.0))?).filter(|n| *n > 0);
    }
    let Some((image, cmd)) = p.args.split_first() else {
        return Err("\"run\" requires at least 1 argument.\nUsage: engine run [OPTIONS] IMAGE [COMMAND] [ARG...]".into());
    };
    o.image = image.clone();
    o.cmd = cmd.to_vec();
    Ok(o)
}

/// `--runtime runc` means the program on PATH; a path is taken as is.
fn which(name: &str) -> PathBuf {
    if name.contains('/') {
        return PathBuf::from(name);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

fn simple(args: &[String], flags: &[Flag], cmd: &str) -> Result<Parsed, i32> {
    parse(flags, args, false, cmd).map_err(|e| fail(125, e))
}

/// docker's management-command forms (`container ls`, `image pull`, ...)
/// as the plain commands they name; others (`image inspect`, `volume ...`,
/// `... prune`) stay as they are.
fn management_alias(cmd: &str, rest: &[String]) -> (String, Vec<String>) {
    let plain = |c: &str| (c.to_string(), rest[1..].to_vec());
    match (cmd, rest.first().map(String::as_str)) {
        ("container", Some("ls" | "list" | "ps")) => plain("ps"),
        ("container", Some("remove")) => plain("rm"),
        (
            "container",
            Some(
                c @ ("run" | "create" | "start" | "stop" | "kill" | "restart" | "rm" | "logs" | "wait" | "port" | "rename" | "pause"
                | "unpause" | "exec" | "top" | "stats" | "cp" | "update" | "export" | "diff" | "attach" | "commit"),
            ),
        ) => plain(c),
        ("image", Some("ls" | "list")) => plain("images"),
        ("image", Some("rm" | "remove")) => plain("rmi"),
        ("image", Some(c @ ("pull" | "push" | "tag" | "save" | "load" | "import" | "history" | "build"))) => plain(c),
        _ => (cmd.to_string(), rest.to_vec()),
    }
}

/// docker's `run --pull missing|always|never` (default missing): the image
/// is pulled first when it is not here (or always), with docker's lines on
/// stderr so that stdout stays the container's.
fn pull_for_run(root: &std::path::Path, image: &str, policy: Option<&str>, platform: Option<&str>, quiet: bool) -> Result<(), String> {
    use skiff_engine::registry;
    let policy = policy.unwrap_or("missing");
    if !["missing", "always", "never"].contains(&policy) {
        return Err(format!("invalid pull option: '{policy}': must be one of \"always\", \"missing\" or \"never\""));
    }
    let store = Store::open(root).map_err(|e| e.0)?;
    let here = store.resolve(image).is_ok();
    if policy == "never" || (policy == "missing" && here) {
        return Ok(());
    }
    if !here && !quiet {
        let last = image.rsplit('/').next().unwrap_or(image);
        let shown = if last.contains(':') || last.contains('@') { image.to_string() } else { format!("{image}:latest") };
        eprintln!("Unable to find image '{shown}' locally");
    }
    let mut opts = registry::Options::new(root, &[]).map_err(|e| e.0)?;
    opts.quiet = quiet;
    opts.platform = platform.map(registry::parse_platform).transpose().map_err(|e| e.0)?;
    let mut progress = registry::progress::Progress::on_stderr();
    registry::pull::pull(&store, image, &opts, &mut progress).map(drop).map_err(|e| e.0)
}

/// One JSON object (`version`, `info`) through `--format`.
fn print_formatted(v: &serde_json::Value, format: &str) -> i32 {
    match skiff_engine::template::lines(std::slice::from_ref(v), Some(format)) {
        Ok(Some(t)) => print!("{t}"),
        Ok(None) => println!("{v}"),
        Err(e) => return fail(1, e),
    }
    0
}

/// `inspect`'s flags: `-f/--format TEMPLATE` (`-s`, `--type` taken and
/// ignored); returns the names and the format.
fn inspect_flags(args: &[String], cmd: &str) -> Result<(Vec<String>, Option<String>), i32> {
    let p = simple(args, &[flag("format", Some('f'), true), flag("size", Some('s'), false), flag("type", None, true)], cmd)?;
    if p.args.is_empty() {
        return Err(fail(1, format!("\"{cmd}\" requires at least 1 argument")));
    }
    Ok((p.args.clone(), p.get("format").map(String::from)))
}

/// A prune command's flags (docker's: no arguments) and its `--filter`s.
fn prune_flags(args: &[String], flags: &[Flag], cmd: &str) -> Result<(Parsed, Filters), i32> {
    let p = simple(args, flags, cmd)?;
    if !p.args.is_empty() {
        return Err(fail(1, format!("\"engine {cmd}\" accepts no arguments.\nSee 'engine {cmd} --help'.")));
    }
    let f = Filters::parse(&p.all("filter")).map_err(|e| fail(125, e))?;
    Ok((p, f))
}

fn each(refs: &[String], cmd: &str, f: impl Fn(&str) -> skiff_engine::error::Result<()>) -> i32 {
    if refs.is_empty() {
        return fail(1, format!("\"{cmd}\" requires at least 1 argument"));
    }
    let mut code = 0;
    for r in refs {
        match f(r) {
            Ok(()) => println!("{r}"),
            Err(e) => code = fail(1, format!("Error response: {e}")),
        }
    }
    code
}

fn real_main(args: Vec<String>) -> i32 {
    let global = [
        flag("root", None, true),
        flag("version", Some('v'), false),
        flag("help", None, false),
        flag("host", Some('H'), true),
        flag("bridge", Some('b'), true),
        flag("subnet", None, true),
        flag("iptables", None, false),
    ];
    // Global flags stop at the command.
    let at = {
        let mut i = 0;
        while i < args.len() && args[i].starts_with('-') {
            i += if ["--root", "-H", "--host", "--bridge", "-b", "--subnet"].contains(&args[i].as_str()) { 2 } else { 1 };
        }
        i
    };
    let g = match parse(&global, &args[..at.min(args.len())], false, "") {
        Ok(g) => g,
        Err(e) => return fail(125, e),
    };
    if g.on("version") {
        println!("engine (skiff) version {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let Some(cmd) = args.get(at) else {
        println!("{USAGE}");
        return if g.on("help") { 0 } else { 1 };
    };
    let (cmd, rest) = management_alias(cmd, &args[at + 1..]);
    let cmd = &cmd;
    // commands that take no flags answer --help here; the others in their flag parsing
    if ["port", "rename", "pause", "unpause", "tag", "logout", "top", "diff", "restore", "wait"].contains(&cmd.as_str()) && rest.first().is_some_and(|a| a == "--help") {
        print!("{}", skiff_engine::flags::help(cmd, &[]));
        return 0;
    }
    let subcommands = match cmd.as_str() {
        "volume" => "create [VOLUME], ls, rm VOLUME..., inspect VOLUME..., prune [-a] [-f]",
        "network" => "create [--subnet CIDR] NETWORK, connect [--ip IP] [--alias A] NETWORK CONTAINER, disconnect NETWORK CONTAINER, ls, inspect NETWORK..., rm NETWORK..., prune",
        "image" => "build, history, import, inspect, load, ls, prune, pull, push, rm, save, tag",
        "builder" => "prune (forget the build cache)",
        "container" => "attach, commit, cp, create, diff, exec, export, inspect, kill, logs, ls, pause, port, prune, rename, restart, rm, run, start, stats, stop, top, unpause, update, wait",
        _ => "",
    };
    if !subcommands.is_empty() && (rest.is_empty() || rest.iter().any(|a| a == "--help")) {
        println!("\nUsage:  engine {cmd} COMMAND\n\nCommands: {subcommands}");
        return if rest.is_empty() { 1 } else { 0 };
    }
    let root = PathBuf::from(g.get("root").unwrap_or("/var/lib/skiff"));
    let mut env = match Env::new(root.clone()) {
        Ok(e) => e,
        Err(e) => return fail(125, e),
    };
    env.net = skiff_engine::network::Flags {
        bridge: g.get("bridge").map(String::from),
        subnet: g.get("subnet").map(String::from),
        iptables: g.get("iptables").map(|v| v != "false"),
    };
    if env.net.given() {
        // A flag that disagrees with this root's stored network config.
        if let Err(e) = skiff_engine::network::Config::peek(&root, &env.net) {
            return fail(125, e);
        }
    }
    let store = || Store::open(&root);
    let images = |f: &dyn Fn(&Store) -> skiff_engine::error::Result<()>| match store().and_then(|s| f(&s)) {
        Ok(()) => 0,
        Err(e) => fail(1, e),
    };
    let result = |r: Result<i32, Failed>| match r {
        Ok(c) => c,
        Err(f) => fail(f.code, f.msg),
    };
    match cmd.as_str() {
        "version" => {
            let Ok(p) = simple(&rest, &[flag("format", Some('f'), true)], cmd) else { return 125 };
            let Some(format) = p.get("format") else {
                println!("Client: skiff engine {}\nServer: none (daemonless)", env!("CARGO_PKG_VERSION"));
                return 0;
            };
            // docker's shape, for scripts: the engine is client and server.
            let part = serde_json::json!({"Version": env!("CARGO_PKG_VERSION"), "ApiVersion": "1.41", "Os": "linux",
                "Arch": skiff_runtime::seccomp::docker::host_goarch()});
            let v = serde_json::json!({"Client": part, "Server": part});
            print_formatted(&v, format)
        }
        "info" => {
            let Ok(p) = simple(&rest, &[flag("format", Some('f'), true)], cmd) else { return 125 };
            let recs = skiff_engine::record::list(&root).unwrap_or_default();
            let Some(format) = p.get("format") else {
                println!("Containers: {}\nRoot Dir: {}\nStorage Driver: {}\n{}\nRuntime: {}",
                    recs.len(),
                    root.display(),
                    if skiff_engine::rootfs::overlay_supported() { "overlay" } else { "copy (overlayfs missing)" },
                    skiff_engine::network::describe(&root, &env.net),
                    env.peer("runtime").display());
                return 0;
            };
            let states: Vec<String> = recs.iter().map(|r| containers::status(&env, r).0).collect();
            let count = |s: &str| states.iter().filter(|x| *x == s).count();
            let images = store().and_then(|s| s.list()).map(|l| l.len()).unwrap_or(0);
            let v = serde_json::json!({
                "Containers": recs.len(), "ContainersRunning": count("running"), "ContainersPaused": count("paused"),
                "ContainersStopped": recs.len() - count("running") - count("paused"), "Images": images,
                "Driver": if skiff_engine::rootfs::overlay_supported() { "overlay" } else { "copy" },
                "DockerRootDir": root, "ServerVersion": env!("CARGO_PKG_VERSION"), "DefaultRuntime": env.peer("runtime"),
                "OperatingSystem": "linux", "OSType": "linux", "Architecture": std::env::consts::ARCH,
                "KernelVersion": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
                "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            });
            print_formatted(&v, format)
        }
        "run" | "create" => {
            let p = match parse(&[RUN_FLAGS, LIMIT_FLAGS].concat(), &rest, true, cmd) {
                Ok(p) => p,
                Err(e) => return fail(125, e),
            };
            let mut o = match run_opts(&p) {
                Ok(o) => o,
                Err(e) => return fail(125, e),
            };
            if let Err(e) = pull_for_run(&root, &o.image, p.get("pull"), p.get("platform"), p.on("quiet")) {
                return fail(125, e);
            }
            if cmd == "create" {
                return match containers::create(&env, &o) {
                    Ok(r) => {
                        // A created container has its shim waiting for `start`.
                        o.detach = true;
                        println!("{}", r.id);
                        0
                    }
                    Err(e) => fail(125, e),
                };
            }
            result(containers::run(&env, &o))
        }
        "start" => {
            let Ok(p) = simple(&rest, &[flag("attach", Some('a'), false), flag("interactive", Some('i'), false)], cmd) else { return 125 };
            let mut code = 0;
            for r in &p.args {
                code = result(containers::start(&env, r, p.on("attach")));
            }
            code
        }
        "stop" | "restart" => {
            let Ok(p) = simple(&rest, &[flag("time", Some('t'), true)], cmd) else { return 125 };
            let t = p.get("time").and_then(|t| t.parse().ok());
            // `prune` waits while a restart is between its stop and its start.
            let _starting = if cmd == "restart" { skiff_engine::record::Starting::shared(&root).ok() } else { None };
            each(&p.args, cmd, |r| {
                containers::stop(&env, r, t)?;
                if cmd == "restart" {
                    containers::start(&env, r, false).map(|_| ()).map_err(|f| skiff_engine::error::Error(f.msg))?;
                }
                Ok(())
            })
        }
        "kill" => {
            let Ok(p) = simple(&rest, &[flag("signal", Some('s'), true)], cmd) else { return 125 };
            let sig = p.get("signal").unwrap_or("KILL").to_string();
            each(&p.args, cmd, |r| containers::kill(&env, r, &sig))
        }
        "rm" => {
            let Ok(p) = simple(&rest, &[flag("force", Some('f'), false), flag("volumes", Some('v'), false)], cmd) else { return 125 };
            each(&p.args, cmd, |r| containers::rm(&env, r, p.on("force"), p.on("volumes")))
        }
        "ps" => {
            let flags = [
                flag("all", Some('a'), false),
                flag("quiet", Some('q'), false),
                flag("format", None, true),
                flag("filter", Some('f'), true),
                flag("last", Some('n'), true),
                flag("latest", Some('l'), false),
                flag("no-trunc", None, false),
                flag("size", Some('s'), false),
            ];
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            let filters: Vec<String> = p.all("filter").into_iter().map(String::from).collect();
            let last = match p.get("last").map(|n| n.parse::<i64>()) {
                Some(Err(_)) => return fail(125, format!("invalid argument {:?} for \"-n, --last\" flag", p.get("last").unwrap_or(""))),
                Some(Ok(n)) if n >= 0 => Some(n as usize),
                _ if p.on("latest") => Some(1),
                _ => None,
            };
            let o = containers::PsOptions { all: p.on("all"), quiet: p.on("quiet"), format: p.get("format"), last, no_trunc: p.on("no-trunc"), size: p.on("size") };
            match containers::ps(&env, &o, &filters) {
                Ok(()) => 0,
                Err(e) => fail(1, e),
            }
        }
        "logs" => {
            let flags = [
                flag("follow", Some('f'), false),
                flag("tail", Some('n'), true),
                flag("timestamps", Some('t'), false),
                flag("since", None, true),
                flag("until", None, true),
                flag("details", None, false),
            ];
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            let tail = p.get("tail").filter(|t| *t != "all").and_then(|t| t.parse().ok());
            let Some(r) = p.args.first() else { return fail(1, "\"logs\" requires exactly 1 argument") };
            match containers::logs(&env, r, p.on("follow"), tail, p.on("timestamps"), p.get("since"), p.get("until")) {
                Ok(()) => 0,
                Err(e) => fail(1, format!("Error response: {e}")),
            }
        }
        "wait" => {
            let mut code = 0;
            for r in &rest {
                match containers::wait(&env, r) {
                    Ok(c) => println!("{c}"),
                    Err(e) => code = fail(1, format!("Error response: {e}")),
                }
            }
            code
        }
        "inspect" | "container" if cmd == "inspect" || rest.first().map(String::as_str) == Some("inspect") => {
            let args: Vec<String> = if cmd == "inspect" { rest.clone() } else { rest[1..].to_vec() };
            let Ok((refs, format)) = inspect_flags(&args, "inspect") else { return 1 };
            result(containers::inspect(&env, &refs, format.as_deref()).map(|_| 0))
        }
        "port" => match rest.first() {
            Some(r) => match containers::port(&env, r) {
                Ok(()) => 0,
                Err(e) => fail(1, e),
            },
            None => fail(1, "\"port\" requires at least 1 argument"),
        },
        "update" => {
            let flags = [&[flag("restart", None, true)][..], LIMIT_FLAGS].concat();
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            let limits = match limits(&p) {
                Ok(l) => l,
                Err(e) => return fail(125, e),
            };
            each(&p.args, cmd, |r| containers::update(&env, r, p.get("restart"), &limits))
        }
        "rename" => match rest.as_slice() {
            [old, new] => match containers::rename(&env, old, new) {
                Ok(()) => 0,
                Err(e) => fail(1, e),
            },
            _ => fail(1, "\"rename\" requires exactly 2 arguments"),
        },
        "pause" | "unpause" => each(&rest, cmd, |r| containers::pause(&env, r, cmd == "pause")),
        "exec" => {
            let flags = [
                flag("detach", Some('d'), false),
                flag("interactive", Some('i'), false),
                flag("tty", Some('t'), false),
                flag("env", Some('e'), true),
                flag("user", Some('u'), true),
                flag("workdir", Some('w'), true),
                flag("env-file", None, true),
                flag("detach-keys", None, true),
            ];
            let p = match parse(&flags, &rest, true, cmd) {
                Ok(p) => p,
                Err(e) => return fail(125, e),
            };
            let Some((id, command)) = p.args.split_first() else { return fail(125, "\"exec\" requires at least 2 arguments") };
            let mut envs = Vec::new();
            for f in p.all("env-file") {
                match containers::read_env_file(std::path::Path::new(f)) {
                    Ok(v) => envs.extend(v),
                    Err(e) => return fail(125, e),
                }
            }
            envs.extend(p.all("env").into_iter().map(String::from));
            result(containers::exec(&env, id, p.on("detach"), p.on("tty"), &envs, p.get("user"), p.get("workdir"), command))
        }
        "import" => {
            let Ok(p) = simple(&rest, &[flag("change", Some('c'), true), flag("message", Some('m'), true), flag("platform", None, true)], cmd) else { return 125 };
            let changes: Vec<String> = p.all("change").into_iter().map(String::from).collect();
            match p.args.as_slice() {
                [src] => images(&|s| image_cmds::import(s, src, None, &changes, p.get("message"))),
                [src, name] => images(&|s| image_cmds::import(s, src, Some(name), &changes, p.get("message"))),
                _ => fail(1, "\"import\" requires 1 or 2 arguments: FILE|- [REPOSITORY[:TAG]]"),
            }
        }
        "load" => {
            let Ok(p) = simple(&rest, &[flag("input", Some('i'), true), flag("quiet", Some('q'), false)], cmd) else { return 125 };
            images(&|s| image_cmds::load(s, p.get("input")))
        }
        "save" => {
            let Ok(p) = simple(&rest, &[flag("output", Some('o'), true)], cmd) else { return 125 };
            images(&|s| image_cmds::save(s, p.get("output"), &p.args))
        }
        "tag" => match rest.as_slice() {
            [a, b] => images(&|s| image_cmds::tag(s, a, b)),
            _ => fail(1, "\"tag\" requires exactly 2 arguments"),
        },
        "images" => {
            let flags = [
                flag("quiet", Some('q'), false),
                flag("format", None, true),
                flag("all", Some('a'), false),
                flag("filter", Some('f'), true),
                flag("digests", None, false),
                flag("no-trunc", None, false),
            ];
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            let filters: Vec<String> = p.all("filter").into_iter().map(String::from).collect();
            let o = image_cmds::ImagesOptions { quiet: p.on("quiet"), format: p.get("format"), filters: &filters, digests: p.on("digests"), no_trunc: p.on("no-trunc") };
            images(&|s| image_cmds::images(s, p.args.first().map(String::as_str), &o))
        }
        "history" => {
            let flags = [flag("quiet", Some('q'), false), flag("no-trunc", None, false), flag("format", None, true), flag("human", Some('H'), true)];
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            let [name] = p.args.as_slice() else { return fail(1, "\"history\" requires exactly 1 argument") };
            images(&|s| image_cmds::history(s, name, p.on("quiet"), p.on("no-trunc"), p.get("format")))
        }
        "rmi" => {
            let Ok(p) = simple(&rest, &[flag("force", Some('f'), false)], cmd) else { return 125 };
            images(&|s| image_cmds::rmi(s, &p.args, p.on("force")))
        }
        "pull" | "push" => {
            let flags = [
                flag("platform", None, true),
                flag("quiet", Some('q'), false),
                flag("insecure-registry", None, true),
                flag("limit-rate", None, true),
                flag("disable-content-trust", None, false),
            ];
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            let [name] = p.args.as_slice() else { return fail(1, format!("\"{cmd}\" requires exactly 1 argument: NAME[:TAG]")) };
            use skiff_engine::registry;
            let insecure: Vec<String> = p.all("insecure-registry").into_iter().map(String::from).collect();
            let opts = (|| -> skiff_engine::error::Result<registry::Options> {
                let mut o = registry::Options::new(&root, &insecure)?;
                o.quiet = p.on("quiet");
                o.platform = p.get("platform").map(registry::parse_platform).transpose()?;
                o.limit_rate = p.get("limit-rate").map(registry::parse_rate).transpose()?;
                Ok(o)
            })();
            let opts = match opts {
                Ok(o) => o,
                Err(e) => return fail(1, e),
            };
            images(&|s| if cmd == "pull" { image_cmds::pull(s, name, &opts) } else { image_cmds::push(s, name, &opts) })
        }
        "login" => {
            let flags = [
                flag("username", Some('u'), true),
                flag("password", Some('p'), true),
                flag("password-stdin", None, false),
                flag("insecure-registry", None, true),
            ];
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            let insecure: Vec<String> = p.all("insecure-registry").into_iter().map(String::from).collect();
            let server = p.args.first().map(String::as_str);
            match image_cmds::login(&root, server, p.get("username"), p.get("password"), p.on("password-stdin"), &insecure) {
                Ok(()) => 0,
                Err(e) => fail(1, e),
            }
        }
        "logout" => match image_cmds::logout(&root, rest.first().map(String::as_str)) {
            Ok(()) => 0,
            Err(e) => fail(1, e),
        },
        "container" | "system" | "volume" | "image" if rest.first().map(String::as_str) == Some("prune") => {
            let name = format!("{cmd} prune");
            let mut flags = vec![flag("force", Some('f'), false), flag("filter", None, true)];
            if cmd != "container" {
                flags.push(flag("all", Some('a'), false));
            }
            if cmd == "system" {
                flags.push(flag("volumes", None, false));
            }
            let (p, f) = match prune_flags(&rest[1..], &flags, &name) {
                Ok(x) => x,
                Err(code) => return code,
            };
            let (all, force) = (p.on("all"), p.on("force"));
            let r = match cmd.as_str() {
                "container" => prune::container(&env, force, &f),
                "volume" => prune::volume(&env, all, force, &f),
                "image" => store().and_then(|s| prune::image(&s, all, force, &f)),
                _ => store().and_then(|s| prune::system(&env, &s, all, p.on("volumes"), force, &f)),
            };
            match r {
                Ok(()) => 0,
                Err(e) => fail(1, e),
            }
        }
        "image" => match rest.split_first() {
            Some((sub, more)) if sub == "inspect" => {
                let Ok((names, format)) = inspect_flags(more, "image inspect") else { return 1 };
                images(&|s| image_cmds::inspect(s, &names, format.as_deref()))
            }
            _ => fail(1, "usage: engine image inspect|ls|rm|prune ..."),
        },
        "top" => match rest.split_first() {
            Some((r, ps_args)) => match containers::top(&env, r, ps_args) {
                Ok(()) => 0,
                Err(e) => fail(1, e),
            },
            None => fail(1, "\"top\" requires at least 1 argument"),
        },
        "stats" => {
            let flags = [flag("no-stream", None, false), flag("all", Some('a'), false), flag("format", None, true), flag("no-trunc", None, false)];
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            match containers::stats(&env, &p.args, p.on("all"), p.get("format"), !p.on("no-stream")) {
                Ok(()) => 0,
                Err(e) => fail(1, e),
            }
        }
        "cp" => {
            let flags = [flag("archive", Some('a'), false), flag("follow-link", Some('L'), false), flag("quiet", Some('q'), false)];
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            let o = skiff_engine::copy::Options { archive: p.on("archive"), follow: p.on("follow-link") };
            match p.args.as_slice() {
                [a, b] => match containers::cp(&env, a, b, o) {
                    Ok(()) => 0,
                    Err(e) => fail(1, e),
                },
                _ => fail(1, "\"cp\" requires exactly 2 arguments"),
            }
        }
        "attach" => {
            let Ok(p) = simple(&rest, &[flag("no-stdin", None, false), flag("sig-proxy", None, true), flag("detach-keys", None, true)], cmd) else { return 125 };
            match p.args.as_slice() {
                [c] => result(containers::attach(&env, c, p.on("no-stdin"))),
                _ => fail(1, "\"attach\" requires exactly 1 argument"),
            }
        }
        "commit" => {
            let flags = [flag("author", Some('a'), true), flag("message", Some('m'), true), flag("change", Some('c'), true), flag("pause", Some('p'), false)];
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            let (c, tag) = match p.args.as_slice() {
                [c] => (c, None),
                [c, t] => (c, Some(t.as_str())),
                _ => return fail(1, "\"commit\" requires at least 1 and at most 2 arguments: CONTAINER [REPOSITORY[:TAG]]"),
            };
            let o = skiff_engine::commit::Options {
                author: p.get("author").map(String::from),
                message: p.get("message").map(String::from),
                changes: p.all("change").into_iter().map(String::from).collect(),
                pause: p.get("pause") != Some("false"),
            };
            match skiff_engine::commit::commit(&env, c, tag, &o) {
                Ok(id) => {
                    println!("{id}");
                    0
                }
                Err(e) => fail(1, e),
            }
        }
        "build" => {
            let flags = [
                flag("tag", Some('t'), true),
                flag("file", Some('f'), true),
                flag("build-arg", None, true),
                flag("label", None, true),
                flag("target", None, true),
                flag("network", None, true),
                flag("quiet", Some('q'), false),
                flag("iidfile", None, true),
                flag("pull", None, false),
                flag("platform", None, true),
                flag("no-cache", None, false),
                flag("rm", None, false),
                flag("force-rm", None, false),
                flag("progress", None, true),
            ];
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            let [context] = p.args.as_slice() else { return fail(1, "\"build\" requires exactly 1 argument: PATH (the build context)") };
            if context.contains("://") {
                return fail(1, "build: the context must be a local directory, or - (stdin: a Dockerfile or a tar)");
            }
            let o = skiff_engine::build::Options {
                tags: p.all("tag").into_iter().map(String::from).collect(),
                file: p.get("file").map(PathBuf::from),
                build_args: p.all("build-arg").into_iter().map(String::from).collect(),
                labels: p.all("label").into_iter().map(String::from).collect(),
                target: p.get("target").map(String::from),
                network: p.get("network").map(String::from),
                quiet: p.on("quiet"),
                no_cache: p.on("no-cache"),
            };
            let policy = if p.on("pull") { "always" } else { "missing" };
            let base = |image: &str| pull_for_run(&root, image, Some(policy), p.get("platform"), p.on("quiet")).map_err(skiff_engine::error::Error);
            match skiff_engine::build::build(&env, std::path::Path::new(context), &o, &base) {
                Ok(id) => match p.get("iidfile") {
                    Some(f) => match std::fs::write(f, &id) {
                        Ok(()) => 0,
                        Err(e) => fail(1, format!("write {f}: {e}")),
                    },
                    None => 0,
                },
                Err(e) => fail(1, e),
            }
        }
        "export" => {
            let Ok(p) = simple(&rest, &[flag("output", Some('o'), true)], cmd) else { return 125 };
            match p.args.as_slice() {
                [c] => match containers::export(&env, c, p.get("output").map(std::path::Path::new)) {
                    Ok(()) => 0,
                    Err(e) => fail(1, e),
                },
                _ => fail(1, "\"export\" requires exactly 1 argument"),
            }
        }
        "diff" => match rest.as_slice() {
            [c] => match containers::diff(&env, c) {
                Ok(()) => 0,
                Err(e) => fail(1, e),
            },
            _ => fail(1, "\"diff\" requires exactly 1 argument"),
        },
        "restore" => match containers::restore(&env) {
            Ok(()) => 0,
            Err(e) => fail(1, e),
        },
        "compose" => skiff_engine::compose::commands::main(&env, &args[..at], &rest),
        "events" => {
            let flags = [flag("since", None, true), flag("until", None, true), flag("filter", Some('f'), true), flag("format", None, true)];
            let Ok(p) = simple(&rest, &flags, cmd) else { return 125 };
            let filters: Vec<String> = p.all("filter").into_iter().map(String::from).collect();
            match skiff_engine::events::events(&root, p.get("since"), p.get("until"), &filters, p.get("format")) {
                Ok(()) => 0,
                Err(e) => fail(1, e),
            }
        }
        "builder" if rest.first().map(String::as_str) == Some("prune") => {
            let flags = [flag("all", Some('a'), false), flag("force", Some('f'), false), flag("filter", None, true), flag("keep-storage", None, true)];
            if simple(&rest[1..], &flags, "builder prune").is_err() {
                return 125;
            }
            images(&|s| {
                let n = skiff_engine::build::prune_cache(s)?;
                println!("Deleted build cache objects: {n}\nTotal reclaimed space: 0B");
                Ok(())
            })
        }
        "system" if rest.first().map(String::as_str) == Some("info") => real_main(args[..at].iter().cloned().chain(["info".to_string()]).chain(rest[1..].iter().cloned()).collect()),
        "system" if rest.first().map(String::as_str) == Some("df") => {
            let running: Vec<String> = skiff_engine::record::list(&root)
                .unwrap_or_default()
                .into_iter()
                .filter(|r| containers::status(&env, r).0 == "running")
                .map(|r| r.id)
                .collect();
            images(&|s| image_cmds::df(s, &root, &running))
        }
        "network" => {
            use skiff_engine::network;
            match rest.split_first() {
                Some((sub, more)) if sub == "ls" || sub == "list" => {
                    let flags = [flag("quiet", Some('q'), false), flag("format", None, true), flag("no-trunc", None, false), flag("filter", Some('f'), true)];
                    let Ok(p) = simple(more, &flags, "network ls") else { return 125 };
                    let mut rows: Vec<serde_json::Value> = network::NETWORKS
                        .iter()
                        .map(|n| serde_json::json!({"ID": n, "Name": n, "Driver": if *n == "none" { "null" } else { n }, "Scope": "local", "Type": "builtin"}))
                        .collect();
                    for n in network::named::list(&root) {
                        let id = if p.on("no-trunc") { n.id.clone() } else { n.id[..12].to_string() };
                        rows.push(serde_json::json!({"ID": id, "Name": n.name, "Driver": "bridge", "Scope": "local", "CreatedAt": n.created, "Type": "custom"}));
                    }
                    let mut given = Vec::new();
                    for f in p.all("filter") {
                        match f.split_once('=') {
                            Some((k @ ("name" | "id" | "driver" | "type" | "scope"), v)) => given.push((k, v)),
                            _ => return fail(1, format!("invalid filter '{f}' (name=, id=, driver=, type=custom|builtin, scope=)")),
                        }
                    }
                    let keep = |r: &serde_json::Value, k: &str, v: &str| {
                        let field = |f: &str| r[f].as_str().unwrap_or("").to_string();
                        match k {
                            "name" => field("Name").contains(v),
                            "id" => field("ID").starts_with(v),
                            "driver" => field("Driver") == v,
                            "type" => field("Type") == v,
                            _ => field("Scope") == v,
                        }
                    };
                    rows.retain(|r| skiff_engine::flags::filters_pass(&given, |k, v| keep(r, k, v)));
                    if p.on("quiet") {
                        rows.iter().for_each(|r| println!("{}", r["ID"].as_str().unwrap_or("")));
                        return 0;
                    }
                    let headers = [("ID", "NETWORK ID")];
                    let table = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
                    match skiff_engine::template::list_or(&rows, p.get("format"), table, &headers) {
                        Ok(text) => print!("{text}"),
                        Err(e) => return fail(1, e),
                    }
                    0
                }
                Some((sub, more)) if sub == "inspect" => {
                    let Ok((names, format)) = inspect_flags(more, "network inspect") else { return 1 };
                    let r = names.iter().map(|n| network::inspect(&root, n)).collect::<skiff_engine::error::Result<Vec<_>>>().and_then(|v| skiff_engine::template::inspect_text(&v, format.as_deref()).map(|t| print!("{t}")));
                    match r {
                        Ok(()) => 0,
                        Err(e) => fail(1, format!("Error: {e}")),
                    }
                }
                Some((sub, more)) if sub == "create" => {
                    let flags = [
                        flag("subnet", None, true),
                        flag("driver", Some('d'), true),
                        flag("label", None, true),
                        flag("attachable", None, false),
                        flag("opt", Some('o'), true),
                    ];
                    let Ok(p) = simple(more, &flags, "network create") else { return 125 };
                    let [name] = p.args.as_slice() else { return fail(1, "\"network create\" requires exactly 1 argument: NETWORK") };
                    if let Some(d) = p.get("driver").filter(|d| *d != "bridge") {
                        return fail(1, format!("network driver {d:?} is not supported: user-defined networks are bridges"));
                    }
                    if let Some(o) = p.get("opt") {
                        return fail(1, format!("network option {o:?} is not supported"));
                    }
                    let labels = skiff_engine::flags::labels(p.all("label"));
                    match network::named::create(&root, &env.net, name, p.get("subnet"), labels) {
                        Ok(n) => {
                            println!("{}", n.id);
                            0
                        }
                        Err(e) => fail(1, format!("Error response: {e}")),
                    }
                }
                Some((sub, more)) if sub == "rm" || sub == "remove" => {
                    let Ok(p) = simple(more, &[flag("force", Some('f'), false)], "network rm") else { return 125 };
                    if p.args.is_empty() {
                        return fail(1, "\"network rm\" requires at least 1 argument");
                    }
                    each(&p.args, cmd, |n| network::named::remove(&root, n))
                }
                Some((sub, more)) if sub == "prune" => {
                    if simple(more, &[flag("force", Some('f'), false), flag("filter", None, true)], "network prune").is_err() {
                        return 125;
                    }
                    match skiff_engine::commands::prune::prune_networks(&env) {
                        Ok(_) => 0,
                        Err(e) => fail(1, e),
                    }
                }
                Some((sub, more)) if sub == "connect" || sub == "disconnect" => {
                    let flags = [flag("ip", None, true), flag("alias", None, true), flag("force", Some('f'), false), flag("link", None, true)];
                    let Ok(p) = simple(more, &flags, &format!("network {sub}")) else { return 125 };
                    let [net, c] = p.args.as_slice() else { return fail(1, format!("\"network {sub}\" requires exactly 2 arguments: NETWORK CONTAINER")) };
                    let done = (|| {
                        let _lock = skiff_engine::record::Lock::acquire(&root)?;
                        let mut rec = skiff_engine::record::find(&root, c)?;
                        if sub == "connect" {
                            let aliases: Vec<String> = p.all("alias").into_iter().map(String::from).collect();
                            network::connect(&root, &env.net, &mut rec, net, p.get("ip"), &aliases)
                        } else {
                            network::disconnect(&root, &mut rec, net)
                        }
                    })();
                    match done {
                        Ok(()) => 0,
                        Err(e) => fail(1, format!("Error response: {e}")),
                    }
                }
                _ => fail(1, "usage: engine network ls|inspect NAME"),
            }
        }
        "volume" => {
            use skiff_engine::volumes;
            let r = match rest.split_first() {
                Some((sub, more)) if sub == "create" => {
                    let flags = [flag("label", Some('l'), true), flag("driver", Some('d'), true), flag("opt", Some('o'), true), flag("name", None, true)];
                    let Ok(p) = simple(more, &flags, "volume create") else { return 125 };
                    if let Some(d) = p.get("driver").filter(|d| *d != "local") {
                        return fail(1, format!("volume driver {d:?} is not supported (local)"));
                    }
                    if let Some(o) = p.get("opt") {
                        return fail(1, format!("volume option {o:?} is not supported: local volumes are directories here"));
                    }
                    let labels = skiff_engine::flags::labels(p.all("label"));
                    volumes::create(&root, p.get("name").or(p.args.first().map(String::as_str)), &labels).map(|n| println!("{n}"))
                }
                Some((sub, more)) if sub == "ls" || sub == "list" => {
                    let Ok(p) = simple(more, &[flag("quiet", Some('q'), false), flag("format", None, true), flag("filter", Some('f'), true)], "volume ls") else { return 125 };
                    let filters: Vec<String> = p.all("filter").into_iter().map(String::from).collect();
                    volumes::ls(&root, p.on("quiet"), p.get("format"), &filters)
                }
                Some((sub, more)) if sub == "rm" => {
                    let force = more.iter().any(|a| a == "-f" || a == "--force");
                    more.iter().filter(|a| !a.starts_with('-')).try_for_each(|n| volumes::remove(&root, n, force).map(|_| println!("{n}")))
                }
                Some((sub, more)) if sub == "inspect" => {
                    let Ok((names, format)) = inspect_flags(more, "volume inspect") else { return 1 };
                    names.iter().map(|n| volumes::inspect(&root, n)).collect::<skiff_engine::error::Result<Vec<_>>>().and_then(|v| skiff_engine::template::inspect_text(&v, format.as_deref()).map(|t| print!("{t}")))
                }
                _ => Err(skiff_engine::error::Error("usage: engine volume create|ls|rm|inspect [NAME], engine volume prune [-a] [-f]".into())),
            };
            match r {
                Ok(()) => 0,
                Err(e) => fail(1, e),
            }
        }
        other => fail(1, format!("'{other}' is not an engine command.\n{USAGE}")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(real_main(args));
}
