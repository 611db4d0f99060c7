//! `runtime`: runc's command line (Go-flag style: `--flag value`,
//! `--flag=value`, single dash too), calling the library for each command.

use skiff_runtime::container::{self, CreateOpts, Global, UpdateOpts};
use skiff_runtime::error::{err, Error, Result};
use skiff_runtime::exec::{self, ExecOpts};
use skiff_runtime::{features, logging, spec, state};
use std::path::PathBuf;

/// Not musl's malloc, which returns pages to the kernel after almost every
/// free (see Cargo.toml). The runtime is single-threaded, so the allocator's
/// lock is never held across its forks and clones.
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

const USAGE: &str = "usage: runtime [global options] COMMAND [options] ID

global options: --root DIR  --log FILE  --log-format text|json  --debug  --systemd-cgroup  --rootless VALUE
commands:
  spec [--bundle B] [--rootless]        write a default config.json
  create [--bundle B] [--console-socket S] [--pid-file F] [--no-pivot] ID
  start ID                              run the created container's program
  run [-d] [--bundle B] [--console-socket S] [--pid-file F] ID
  state ID                              print the OCI state JSON
  kill [--all] ID [SIGNAL]              signal by name or number (default SIGTERM)
  delete [--force] ID
  list [--format table|json] [-q]
  pause ID | resume ID
  exec [--process P.json] [-t --console-socket S] [-d] [--pid-file F] [--env K=V] [--cwd D]
       [--user UID[:GID]] [--additional-gids G] [--cap C] [--no-new-privs] [--preserve-fds N] ID [ARGS...]
  ps [--format table|json] ID [PS ARGS...]
  update [--resources R.json|-] [--memory N] [--memory-swap N] [--memory-reservation N] [--cpu-quota N]
         [--cpu-period N] [--cpu-share N] [--cpuset-cpus S] [--cpuset-mems S] [--pids-limit N] [--blkio-weight N] ID
  events [--stats] [--interval 5s] ID
  features                              supported features JSON
  --version";

/// Flags that take a value; every other flag is a boolean.
const VALUED: &[&str] = &[
    "root", "log", "log-format", "criu", "rootless", "bundle", "b", "console-socket", "pid-file",
    "preserve-fds", "format", "f", "process", "p", "cwd", "env", "e", "user", "u", "additional-gids",
    "g", "cap", "c", "apparmor", "process-label", "interval", "resources", "r", "memory", "memory-swap",
    "memory-reservation", "kernel-memory", "kernel-memory-tcp", "cpu-quota", "cpu-period", "cpu-share", "cpu-shares",
    "cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "pids-limit", "blkio-weight", "l3-cache-schema",
    "mem-bw-schema",
];

/// runc update's limit flags (see container::update_resources).
const UPDATE_FLAGS: &[&str] = &[
    "memory", "memory-swap", "memory-reservation", "kernel-memory", "kernel-memory-tcp", "cpu-quota", "cpu-period",
    "cpu-share", "cpu-shares", "cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "pids-limit",
    "blkio-weight",
];

/// One parsed command line segment: flags and positional arguments.
#[derive(Default, Debug)]
struct Parsed {
    flags: Vec<(String, String)>,
    args: Vec<String>,
}

impl Parsed {
    fn get(&self, names: &[&str]) -> Option<&str> {
        self.flags.iter().rev().find(|(k, _)| names.contains(&k.as_str())).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable flag, in order.
    fn all(&self, names: &[&str]) -> Vec<String> {
        self.flags.iter().filter(|(k, _)| names.contains(&k.as_str())).map(|(_, v)| v.clone()).collect()
    }

    fn on(&self, names: &[&str]) -> bool {
        self.get(names).is_some_and(|v| v != "false")
    }

    fn id(&self, cmd: &str) -> Result<&str> {
        match self.args.first() {
            Some(id) => Ok(id),
            None => err(format!("\"{cmd}\" requires a container ID")),
        }
    }
}

/// Parses flags until the first positional when `stop_at_positional`
/// (global options), else flags anywhere until `--`. `-f` is `--force`
/// (a boolean) for `delete`, `--format` elsewhere.
fn parse(args: &[String], stop_at_positional: bool, cmd: &str) -> Result<(Parsed, usize)> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            p.args.extend(args[i + 1..].iter().cloned());
            return Ok((p, args.len()));
        }
        if a.len() > 1 && a.starts_with('-') {
            let name = a.trim_start_matches('-');
            let (k, v) = match name.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (name.to_string(), None),
            };
            let v = match v {
                Some(v) => v,
                None if VALUED.contains(&k.as_str())
                    && !(k == "f" && cmd == "delete")
                    && !(k == "rootless" && cmd == "spec") =>
                {
                    i += 1;
                    args.get(i).cloned().ok_or_else(|| Error(format!("flag needs an argument: {a}")))?
                }
                None => "true".to_string(),
            };
            p.flags.push((k, v));
            i += 1;
            continue;
        }
        if stop_at_positional {
            return Ok((p, i));
        }
        p.args.push(a.clone());
        i += 1;
    }
    Ok((p, i))
}

fn signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return err(format!("invalid signal {s:?}"));
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let table = [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("IOT", 6), ("BUS", 7),
        ("FPE", 8), ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14),
        ("TERM", 15), ("STKFLT", 16), ("CHLD", 17), ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21),
        ("TTOU", 22), ("URG", 23), ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28),
        ("IO", 29), ("POLL", 29), ("PWR", 30), ("SYS", 31),
    ];
    table.iter().find(|(n, _)| *n == name).map(|&(_, v)| v).ok_or_else(|| Error(format!("invalid signal {s:?}")))
}

fn create_opts(p: &Parsed, cmd: &str) -> Result<CreateOpts> {
    Ok(CreateOpts {
        id: p.id(cmd)?.to_string(),
        bundle: PathBuf::from(p.get(&["bundle", "b"]).unwrap_or(".")),
        console_socket: p.get(&["console-socket"]).map(PathBuf::from),
        pid_file: p.get(&["pid-file"]).map(PathBuf::from),
        no_pivot: p.on(&["no-pivot"]),
        preserve_fds: match p.get(&["preserve-fds"]) {
            None => 0,
            Some(n) => n.parse().map_err(|_| Error(format!("--preserve-fds {n:?} is not a number")))?,
        },
    })
}

fn exec_opts(p: &Parsed, cmd: &str) -> Result<ExecOpts> {
    let mut args = p.args.get(1..).unwrap_or_default().to_vec();
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    Ok(ExecOpts {
        id: p.id(cmd)?.to_string(),
        process: p.get(&["process", "p"]).map(PathBuf::from),
        args,
        tty: p.on(&["tty", "t"]),
        console_socket: p.get(&["console-socket"]).map(PathBuf::from),
        detach: p.on(&["detach", "d"]),
        pid_file: p.get(&["pid-file"]).map(PathBuf::from),
        env: p.all(&["env", "e"]),
        cwd: p.get(&["cwd"]).map(str::to_string),
        user: p.get(&["user", "u"]).map(str::to_string),
        additional_gids: p.all(&["additional-gids", "g"]),
        caps: p.all(&["cap", "c"]),
        no_new_privs: p.get(&["no-new-privs"]).map(|v| v != "false"),
        preserve_fds: match p.get(&["preserve-fds"]) {
            None => 0,
            Some(n) => n.parse().map_err(|_| Error(format!("--preserve-fds {n:?} is not a number")))?,
        },
        process_label: p.get(&["process-label"]).map(str::to_string),
        apparmor: p.get(&["apparmor"]).map(str::to_string),
    })
}

fn real_main(args: &[String]) -> Result<i32> {
    let (global, at) = parse(args, true, "")?;
    if global.on(&["version", "v"]) {
        println!("runtime (skiff) version {}\nspec: 1.2.0", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    if global.on(&["help", "h"]) {
        println!("{USAGE}");
        return Ok(0);
    }
    let log_format = global.get(&["log-format"]).unwrap_or("text");
    if log_format != "text" && log_format != "json" {
        return err(format!("invalid log-format {log_format:?} (text or json)"));
    }
    logging::init(global.get(&["log"]).map(PathBuf::from), log_format == "json", global.on(&["debug"]));
    // SAFETY: geteuid cannot fail.
    let rootless = match global.get(&["rootless"]).unwrap_or("auto") {
        "auto" => (unsafe { libc::geteuid() }) != 0,
        "true" => true,
        "false" => false,
        v => return err(format!("invalid --rootless value {v:?} (true, false or auto)")),
    };
    let g = Global {
        root: match global.get(&["root"]) {
            Some(r) => PathBuf::from(r),
            None => state::default_root()?,
        },
        systemd_cgroup: global.on(&["systemd-cgroup"]),
        rootless,
    };
    let Some(cmd) = args.get(at) else {
        eprintln!("{USAGE}");
        return Ok(1);
    };
    // exec and ps stop at the ID: what follows is the command and ps's arguments.
    // Commands that put a process inside a container run from a sealed copy.
    if matches!(cmd.as_str(), "create" | "run" | "exec") && !skiff_runtime::cloned_binary::is_cloned() {
        // The private overlayfs needs privilege; its second layer is the state root.
        // SAFETY: geteuid cannot fail.
        let privileged = unsafe { libc::geteuid() } == 0 && !g.rootless;
        skiff_runtime::cloned_binary::reexec(privileged.then_some(g.root.as_path()))?;
    }
    let p = if cmd == "exec" || cmd == "ps" {
        let (mut p, n) = parse(&args[at + 1..], true, cmd)?;
        p.args.extend(args[at + 1 + n..].iter().cloned());
        p
    } else {
        parse(&args[at + 1..], false, cmd)?.0
    };
    match cmd.as_str() {
        "version" | "--version" => {
            println!("runtime (skiff) version {}\nspec: 1.2.0", env!("CARGO_PKG_VERSION"));
        }
        "spec" => spec::write_template(&PathBuf::from(p.get(&["bundle", "b"]).unwrap_or(".")), p.on(&["rootless"]))?,
        "create" => {
            // SAFETY: reading the current mask.
            let mask = unsafe {
                let mut m: libc::sigset_t = std::mem::zeroed();
                libc::sigprocmask(libc::SIG_SETMASK, std::ptr::null(), &mut m);
                m
            };
            container::create(&g, &create_opts(&p, cmd)?, mask)?;
        }
        "start" => container::start(&g, p.id(cmd)?)?,
        "run" => return container::run(&g, &create_opts(&p, cmd)?, p.on(&["detach", "d"])),
        "state" => println!("{}", container::state_json(&g, p.id(cmd)?)?),
        "kill" => {
            let sig = signal(p.args.get(1).map(String::as_str).unwrap_or("SIGTERM"))?;
            container::kill(&g, p.id(cmd)?, sig, p.on(&["all", "a"]))?;
        }
        "delete" => container::delete(&g, p.id(cmd)?, p.on(&["force", "f"]))?,
        "list" | "ls" => list(&g, &p)?,
        "pause" | "resume" => {
            let saved = state::Saved::load(&g.root, p.id(cmd)?)?;
            let st = saved.status(&g.root);
            if st == state::Status::Stopped || st == state::Status::Created {
                return err(format!("container {} is {}, not running", saved.id, st.as_str()));
            }
            saved.cgroup.check_joined(cmd)?;
            saved.cgroup.freeze(cmd == "pause")?;
        }
        "features" => println!("{}", features::json()),
        "exec" => {
            let o = exec_opts(&p, cmd)?;
            // runc's exit status for an exec that could not start.
            return Ok(exec::exec(&g, &o).unwrap_or_else(|e| {
                logging::error(&format!("exec failed: {e}"));
                255
            }));
        }
        "ps" => {
            let pids = container::pids(&g, p.id(cmd)?)?;
            match p.get(&["format", "f"]).unwrap_or("table") {
                "json" => println!("{}", serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into())),
                "table" => print!("{}", container::ps_table(&pids, &p.args[1..])?),
                f => return err(format!("invalid format {f:?} (table or json)")),
            }
        }
        "update" => {
            let o = UpdateOpts {
                resources: p.get(&["resources", "r"]).map(PathBuf::from),
                flags: p.flags.iter().filter(|(k, _)| UPDATE_FLAGS.contains(&k.as_str())).cloned().collect(),
            };
            container::update(&g, p.id(cmd)?, &o)?;
        }
        "events" => {
            let interval = container::parse_duration(p.get(&["interval"]).unwrap_or("5s"))?;
            container::events(&g, p.id(cmd)?, p.on(&["stats"]), interval)?;
        }
        "checkpoint" | "restore" => {
            return err(format!("\"{cmd}\" is not implemented yet in skiff runtime"));
        }
        other => return err(format!("unknown command {other:?}\n{USAGE}")),
    }
    Ok(0)
}

fn list(g: &Global, p: &Parsed) -> Result<()> {
    let all = container::list(g)?;
    if p.on(&["quiet", "q"]) {
        for (s, _) in &all {
            println!("{}", s.id);
        }
        return Ok(());
    }
    if p.get(&["format", "f"]) == Some("json") {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|(s, st)| {
                serde_json::json!({"ociVersion": s.oci_version, "id": s.id, "pid": s.oci(*st).pid, "status": st.as_str(),
                    "bundle": s.bundle, "rootfs": s.rootfs, "created": s.created, "owner": "", "annotations": s.annotations})
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    println!("{:<12} {:<8} {:<10} {:<40} {:<31} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
    for (s, st) in &all {
        println!("{:<12} {:<8} {:<10} {:<40} {:<31} root", s.id, s.oci(*st).pid, st.as_str(), s.bundle.display(), s.created);
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match real_main(&args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            logging::error(&e.0);
            std::process::exit(1);
        }
    }
}
