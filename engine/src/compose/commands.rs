//! `engine compose COMMAND`: docker compose's commands over a project.
//! Every change goes through the engine's own commands (this binary run
//! again with the same global flags), so a service's container is exactly
//! what `engine create` makes of the same flags; what is there is read
//! from the container records, by compose's labels.

use super::project::{self, Condition, Project, Service, HASH, NETWORK, NUMBER, ONEOFF, PROJECT, SERVICE, VOLUME};
use crate::containers::{self, Env};
use crate::error::{err, Context, Error, Result};
use crate::flags::{flag, parse, Flag, Parsed};
use crate::record::{self, Record};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const GLOBAL: &[Flag] = &[
    flag("file", Some('f'), true),
    flag("project-name", Some('p'), true),
    flag("project-directory", None, true),
    flag("env-file", None, true),
    flag("profile", None, true),
    flag("progress", None, true),
    flag("ansi", None, true),
];

const USAGE: &str = "
Usage:  engine compose [-f FILE]... [-p NAME] [--project-directory DIR] [--env-file FILE] [--profile P] COMMAND

Commands: up, create, down, ps, logs, start, stop, restart, kill, pause, unpause, rm, exec, run, build, pull, port, top,
          wait, cp, config, ls, version
";

/// How long `up` waits for a dependency to be healthy or done.
const DEPENDENCY_WAIT: Duration = Duration::from_secs(300);

/// Set by SIGINT/SIGTERM while `up` is attached.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// The engine's commands, run as this binary with the global flags given.
struct Engine {
    exe: PathBuf,
    globals: Vec<String>,
}

impl Engine {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(&self.globals).args(args);
        c
    }

    /// Runs `args`; its error output becomes the error.
    fn run(&self, args: &[&str]) -> Result<String> {
        let out = self.command(args).stdin(Stdio::null()).output().ctx(|| format!("run {}", self.exe.display()))?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return err(if msg.is_empty() { format!("engine {} failed ({})", args.join(" "), out.status) } else { msg });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn run_all(&self, args: &[String]) -> Result<String> {
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Runs `args` on this terminal; its exit code.
    fn attached(&self, args: &[String]) -> Result<i32> {
        let st = self.command(&[]).args(args).status().ctx(|| format!("run {}", self.exe.display()))?;
        Ok(st.code().unwrap_or(128 + st.signal().unwrap_or(0)))
    }
}

use std::os::unix::process::{CommandExt, ExitStatusExt};

/// Progress lines as compose prints them, on stderr.
fn said(kind: &str, name: &str, what: &str) {
    let _ = writeln!(std::io::stderr(), " {kind} {name}  {what}");
}

/// `engine compose ...` with the engine's global flags; the exit code.
pub fn main(env: &Env, globals: &[String], args: &[String]) -> i32 {
    match compose(env, globals, args) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{}", e.0);
            1
        }
    }
}

fn compose(env: &Env, globals: &[String], args: &[String]) -> Result<i32> {
    let g = parse(GLOBAL, args, true, "compose")?;
    let Some((cmd, rest)) = g.args.split_first() else {
        print!("{USAGE}");
        return Ok(1);
    };
    if cmd == "version" {
        println!("Docker Compose version v2 (skiff engine {})", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    let engine = Engine { exe: std::env::current_exe().ctx(|| "find the engine binary")?, globals: globals.to_vec() };
    if cmd == "ls" {
        return ls(env, rest);
    }
    let opts = project::Options {
        files: g.all("file").into_iter().map(PathBuf::from).collect(),
        name: g.get("project-name").map(String::from),
        dir: g.get("project-directory").map(PathBuf::from),
        env_files: g.all("env-file").into_iter().map(PathBuf::from).collect(),
        profiles: g.all("profile").into_iter().map(String::from).collect(),
    };
    let c = Ctx { env, engine, project: project::load(&opts)? };
    let sub = |flags: &[Flag], stop: bool| parse(flags, rest, stop, &format!("compose {cmd}"));
    match cmd.as_str() {
        "up" => c.up(&sub(UP, false)?),
        "down" => c.down(&sub(&[flag("volumes", Some('v'), false), flag("rmi", None, true), flag("remove-orphans", None, false), flag("timeout", Some('t'), true)], false)?),
        "ps" => c.ps(&sub(&[flag("all", Some('a'), false), flag("quiet", Some('q'), false), flag("services", None, false), flag("format", None, true)], false)?),
        "logs" => c.logs(&sub(&[flag("follow", Some('f'), false), flag("timestamps", Some('t'), false), flag("tail", Some('n'), true), flag("no-log-prefix", None, false), flag("no-color", None, false), flag("since", None, true), flag("until", None, true)], false)?),
        "start" | "stop" | "restart" | "kill" | "pause" | "unpause" => {
            let p = sub(&[flag("timeout", Some('t'), true), flag("signal", Some('s'), true)], false)?;
            c.each(cmd, &p)
        }
        "rm" => c.rm(&sub(&[flag("force", Some('f'), false), flag("stop", Some('s'), false), flag("volumes", Some('v'), false)], false)?),
        "exec" => c.exec(&sub(EXEC, true)?),
        "run" => c.run(&sub(RUN, true)?),
        "build" => {
            let p = sub(&[flag("no-cache", None, false), flag("pull", None, false), flag("quiet", Some('q'), false), flag("build-arg", None, true)], false)?;
            for s in c.project.select(&p.args)? {
                c.build(s, &p)?;
            }
            Ok(0)
        }
        "pull" => {
            let p = sub(&[flag("quiet", Some('q'), false), flag("ignore-pull-failures", None, false)], false)?;
            for s in c.project.select(&p.args)?.into_iter().filter(|s| s.build.is_none()) {
                match c.engine.run(&["pull", &s.image]) {
                    Ok(_) => said("✔", &s.name, "Pulled"),
                    Err(e) if p.on("ignore-pull-failures") => said("!", &s.name, &e.0),
                    Err(e) => return Err(e),
                }
            }
            Ok(0)
        }
        "create" => {
            let mut p = sub(UP, false)?;
            p.values.push(("no-start", "true".into()));
            c.up(&p)
        }
        "port" => c.port(&sub(&[flag("protocol", None, true), flag("index", None, true)], false)?),
        "top" | "wait" => {
            let p = sub(&[], false)?;
            let mut code = 0;
            for r in c.of(&p.args)? {
                if cmd == "top" {
                    println!("{}", r.name);
                }
                code = code.max(c.engine.attached(&[cmd.to_string(), r.name.clone()])?);
            }
            Ok(code)
        }
        "cp" => {
            let p = sub(&[flag("archive", Some('a'), false), flag("follow-link", Some('L'), false), flag("index", None, true)], false)?;
            c.cp(&p)
        }
        "config" => c.config(&sub(&[flag("quiet", Some('q'), false), flag("services", None, false), flag("volumes", None, false), flag("format", None, true)], false)?),
        other => err(format!("unknown docker command: \"compose {other}\"{USAGE}")),
    }
}

const UP: &[Flag] = &[
    flag("detach", Some('d'), false),
    flag("build", None, false),
    flag("no-build", None, false),
    flag("force-recreate", None, false),
    flag("no-recreate", None, false),
    flag("remove-orphans", None, false),
    flag("no-start", None, false),
    flag("no-deps", None, false),
    flag("timeout", Some('t'), true),
    flag("wait", None, false),
    flag("abort-on-container-exit", None, false),
    flag("exit-code-from", None, true),
    flag("pull", None, true),
    flag("quiet-pull", None, false),
];

const EXEC: &[Flag] = &[
    flag("detach", Some('d'), false),
    flag("no-TTY", Some('T'), false),
    flag("env", Some('e'), true),
    flag("user", Some('u'), true),
    flag("workdir", Some('w'), true),
    flag("index", None, true),
    flag("privileged", None, false),
    flag("interactive", Some('i'), false),
    flag("tty", Some('t'), false),
];

const RUN: &[Flag] = &[
    flag("rm", None, false),
    flag("detach", Some('d'), false),
    flag("env", Some('e'), true),
    flag("name", None, true),
    flag("no-deps", None, false),
    flag("no-TTY", Some('T'), false),
    flag("entrypoint", None, true),
    flag("user", Some('u'), true),
    flag("workdir", Some('w'), true),
    flag("publish", Some('p'), true),
    flag("service-ports", None, false),
    flag("volume", Some('v'), true),
    flag("label", Some('l'), true),
    flag("interactive", Some('i'), false),
    flag("tty", Some('t'), false),
    flag("build", None, false),
];

struct Ctx<'a> {
    env: &'a Env,
    engine: Engine,
    project: Project,
}

impl Ctx<'_> {
    /// This project's containers (one-off ones too), by service order and number.
    fn containers(&self) -> Result<Vec<Record>> {
        let mut v: Vec<Record> = record::list(&self.env.root)?.into_iter().filter(|r| r.labels.get(PROJECT) == Some(&self.project.name)).collect();
        let rank = |r: &Record| {
            let s = r.labels.get(SERVICE).and_then(|s| self.project.services.iter().position(|x| &x.name == s)).unwrap_or(usize::MAX);
            (s, r.labels.get(ONEOFF).cloned(), r.labels.get(NUMBER).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0), r.name.clone())
        };
        v.sort_by_key(rank);
        Ok(v)
    }

    /// The service containers (not one-off) of the services named.
    fn of(&self, names: &[String]) -> Result<Vec<Record>> {
        let wanted: Vec<&str> = self.project.select(names)?.iter().map(|s| s.name.as_str()).collect();
        Ok(self
            .containers()?
            .into_iter()
            .filter(|r| r.labels.get(ONEOFF).is_none_or(|o| o != "True") && r.labels.get(SERVICE).is_some_and(|s| wanted.contains(&s.as_str())))
            .collect())
    }

    fn state(&self, r: &Record) -> String {
        containers::status(self.env, r).0
    }

    fn exit_code(&self, r: &Record) -> Option<i32> {
        skiff_shim::protocol::read_exit(&record::dir(&self.env.root, &r.id)).map(|e| e.code)
    }

    fn image_id(&self, image: &str) -> Option<String> {
        crate::images::Store::open(&self.env.root).ok()?.resolve(image).ok().map(|i| i.id)
    }

    fn build(&self, s: &Service, p: &Parsed) -> Result<()> {
        let Some(b) = &s.build else { return Ok(()) };
        let mut a: Vec<String> = vec!["build".into(), "-q".into(), "-t".into(), s.image.clone()];
        if let Some(f) = &b.dockerfile {
            a.extend(["-f".into(), b.context.join(f).display().to_string()]);
        }
        for x in b.args.iter().map(String::as_str).chain(p.all("build-arg")) {
            a.extend(["--build-arg".into(), x.to_string()]);
        }
        if let Some(t) = &b.target {
            a.extend(["--target".into(), t.clone()]);
        }
        if p.on("no-cache") {
            a.push("--no-cache".into());
        }
        a.push(b.context.display().to_string());
        said("✔", &s.name, "Building");
        self.engine.run_all(&a)?;
        said("✔", &s.name, "Built");
        Ok(())
    }

    /// The image a service runs, built or pulled as its policy says.
    fn ensure_image(&self, s: &Service, p: &Parsed) -> Result<String> {
        let have = self.image_id(&s.image);
        let policy = p.get("pull").unwrap_or(&s.pull_policy);
        if s.build.is_some() {
            if (have.is_none() || p.on("build")) && !p.on("no-build") {
                self.build(s, &Parsed::default())?;
            }
        } else if policy == "always" || (have.is_none() && policy != "never") {
            self.engine.run(&["pull", &s.image])?;
            said("✔", &s.name, "Pulled");
        }
        self.image_id(&s.image).ok_or_else(|| Error(format!("service {:?}: image {} is not here (pull_policy {policy})", s.name, s.image)))
    }

    fn networks_and_volumes(&self, services: &[&Service]) -> Result<()> {
        let used: Vec<&str> = services.iter().flat_map(|s| s.networks.iter().map(|a| a.network.as_str())).collect();
        let nets = crate::network::named::list(&self.env.root);
        for n in self.project.networks.iter().filter(|n| used.contains(&n.name.as_str())) {
            if nets.iter().any(|x| x.name == n.name) {
                continue;
            }
            if n.external {
                return err(format!("network {} declared as external, but could not be found", n.name));
            }
            self.create("network", NETWORK, n)?;
            said("✔", &format!("Network {}", n.name), "Created");
        }
        for v in &self.project.volumes {
            if crate::volumes::dir(&self.env.root, &v.name).exists() {
                continue;
            }
            if v.external {
                return err(format!("external volume \"{}\" not found", v.name));
            }
            self.create("volume", VOLUME, v)?;
            said("✔", &format!("Volume \"{}\"", v.name), "Created");
        }
        Ok(())
    }

    /// `network create` / `volume create` of a project resource, with compose's labels.
    fn create(&self, kind: &str, label: &str, r: &project::Resource) -> Result<()> {
        let mut a = vec![kind.to_string(), "create".into(), "--label".into(), format!("{PROJECT}={}", self.project.name), "--label".into(), format!("{label}={}", r.key)];
        for l in &r.labels {
            a.extend(["--label".into(), l.clone()]);
        }
        if let Some(s) = &r.subnet {
            a.extend(["--subnet".into(), s.clone()]);
        }
        a.push(r.name.clone());
        self.engine.run_all(&a).map(drop)
    }

    /// Waits until `dep`'s first container meets `cond`.
    fn wait_for(&self, dep: &str, cond: Condition) -> Result<()> {
        let Ok(s) = self.project.service(dep) else { return Ok(()) };
        if cond == Condition::Started {
            return Ok(());
        }
        let name = s.container(&self.project.name, 1);
        let deadline = Instant::now() + DEPENDENCY_WAIT;
        loop {
            let r = record::find(&self.env.root, &name)?;
            let st = self.state(&r);
            let exit = self.exit_code(&r);
            match cond {
                Condition::Started => return Ok(()),
                Condition::Completed if st == "exited" => {
                    return match exit {
                        Some(0) => Ok(()),
                        code => err(format!("service {dep:?} didn't complete successfully: exit {}", code.unwrap_or(-1))),
                    };
                }
                Condition::Healthy => {
                    let h = containers::health_of(&record::dir(&self.env.root, &r.id), &r);
                    match h.as_ref().and_then(|h| h["Status"].as_str()) {
                        Some("healthy") => return Ok(()),
                        Some("unhealthy") => return err(format!("dependency failed to start: container {name} is unhealthy")),
                        None => return err(format!("dependency failed to start: container {name} has no healthcheck")),
                        _ if st == "exited" => return err(format!("dependency failed to start: container {name} exited ({})", exit.unwrap_or(-1))),
                        _ => {}
                    }
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return err(format!("timed out after {}s waiting for service {dep:?}", DEPENDENCY_WAIT.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The services named and, unless `no_deps`, what they depend on.
    fn with_deps(&self, names: &[String], no_deps: bool) -> Result<Vec<&Service>> {
        let mut want: Vec<String> = self.project.select(names)?.iter().map(|s| s.name.clone()).collect();
        if !no_deps {
            // Services come dependencies first, so one pass from the end adds them all.
            for s in self.project.services.iter().rev() {
                if want.contains(&s.name) {
                    for (d, _) in &s.depends_on {
                        if !want.contains(d) {
                            want.push(d.clone());
                        }
                    }
                }
            }
        }
        Ok(self.project.services.iter().filter(|s| want.contains(&s.name)).collect())
    }

    fn stop_rm(&self, r: &Record, timeout: Option<&str>, volumes: bool) -> Result<()> {
        if self.state(r) != "exited" && self.state(r) != "created" {
            let mut a = vec!["stop"];
            if let Some(t) = timeout {
                a.extend(["-t", t]);
            }
            a.push(&r.name);
            self.engine.run(&a)?;
            said("✔", &format!("Container {}", r.name), "Stopped");
        }
        let mut a = vec!["rm", "-f"];
        if volumes {
            a.push("-v");
        }
        a.push(&r.name);
        self.engine.run(&a)?;
        said("✔", &format!("Container {}", r.name), "Removed");
        Ok(())
    }

    fn up(&self, p: &Parsed) -> Result<i32> {
        if let Some(s) = p.get("exit-code-from") {
            self.project.service(s)?;
        }
        let attached = !(p.on("detach") || p.on("wait") || p.on("no-start"));
        if attached {
            // From here a ^C stops what was started, instead of leaving it.
            unsafe {
                libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
                libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
            }
        }
        let services = self.with_deps(&p.args, p.on("no-deps"))?;
        let known: Vec<&str> = self.project.services.iter().map(|s| s.name.as_str()).collect();
        let orphans: Vec<Record> = self.containers()?.into_iter().filter(|r| r.labels.get(SERVICE).is_none_or(|s| !known.contains(&s.as_str()))).collect();
        if !orphans.is_empty() {
            if p.on("remove-orphans") {
                for r in &orphans {
                    self.stop_rm(r, p.get("timeout"), false)?;
                }
            } else {
                let names: Vec<&str> = orphans.iter().map(|r| r.name.as_str()).collect();
                let _ = writeln!(std::io::stderr(), "WARN Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", names.join(", "));
            }
        }
        self.networks_and_volumes(&services)?;
        let mut started: Vec<(String, bool)> = Vec::new();
        for s in &services {
            if STOPPING.load(Ordering::SeqCst) {
                break;
            }
            let id = self.ensure_image(s, p)?;
            let hash = s.hash(&id);
            // Only what this up starts is waited for (not with --no-deps).
            for (d, cond) in s.depends_on.iter().filter(|(d, _)| services.iter().any(|x| &x.name == d)) {
                if !p.on("no-start") {
                    self.wait_for(d, *cond)?;
                }
            }
            let have = self.of(std::slice::from_ref(&s.name))?;
            for n in 1..=s.replicas {
                let name = s.container(&self.project.name, n);
                let existing = have.iter().find(|r| r.name == name);
                // Kept when nothing it was made from changed (or --no-recreate).
                let keep = existing.is_some_and(|r| p.on("no-recreate") || (r.labels.get(HASH) == Some(&hash) && !p.on("force-recreate")));
                if let (Some(r), false) = (existing, keep) {
                    self.stop_rm(r, p.get("timeout"), false)?;
                }
                if !keep {
                    let mut a = vec!["create".to_string(), "-q".into()];
                    a.extend(s.create_args(&self.project, &name, n, &hash, true, false));
                    self.engine.run_all(&a)?;
                    for net in s.networks.iter().skip(1) {
                        let mut a = vec!["network".to_string(), "connect".into()];
                        for al in &net.aliases {
                            a.extend(["--alias".into(), al.clone()]);
                        }
                        if let Some(ip) = &net.ip {
                            a.extend(["--ip".into(), ip.clone()]);
                        }
                        a.extend([net.network.clone(), name.clone()]);
                        self.engine.run_all(&a)?;
                    }
                    said("✔", &format!("Container {name}"), if existing.is_some() { "Recreated" } else { "Created" });
                }
                let r = record::find(&self.env.root, &name)?;
                if p.on("no-start") {
                    continue;
                }
                if self.state(&r) == "running" {
                    said("✔", &format!("Container {name}"), "Running");
                } else {
                    self.engine.run(&["start", &name])?;
                    said("✔", &format!("Container {name}"), "Started");
                }
                started.push((name, s.attach));
            }
            // Scaled down: the containers past the count go.
            for r in have.iter().filter(|r| r.labels.get(NUMBER).and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n > s.replicas)) {
                self.stop_rm(r, p.get("timeout"), false)?;
            }
        }
        if p.on("wait") {
            for s in &services {
                let healthy = s.flags.iter().any(|f| f == "--health-cmd") || self.image_has_healthcheck(s);
                self.wait_for(&s.name, if healthy { Condition::Healthy } else { Condition::Started })?;
            }
        }
        if !attached {
            return Ok(0);
        }
        self.attach(&started, p)
    }

    fn image_has_healthcheck(&self, s: &Service) -> bool {
        crate::images::Store::open(&self.env.root).ok().and_then(|st| st.resolve(&s.image).ok()).is_some_and(|i| i.config.healthcheck.is_some_and(|h| h.test.first().is_none_or(|t| t != "NONE")))
    }

    /// `up` without `-d`: every container's log, prefixed, until they all
    /// exit (or one does, with `--abort-on-container-exit`) or a signal asks to stop.
    fn attach(&self, started: &[(String, bool)], p: &Parsed) -> Result<i32> {
        let names: Vec<String> = started.iter().map(|(n, _)| n.clone()).collect();
        let abort = p.on("abort-on-container-exit") || p.get("exit-code-from").is_some();
        let width = names.iter().map(String::len).max().unwrap_or(0);
        let mut children = Vec::new();
        let mut readers = Vec::new();
        for n in started.iter().filter(|(_, shown)| *shown).map(|(n, _)| n) {
            let mut c = self.engine.command(&["logs", "-f", n]);
            // Its own group: a ^C is the engine's to handle (stop everything),
            // and each log follower ends when its container has.
            c.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).process_group(0);
            let mut child = c.spawn().ctx(|| "follow the logs")?;
            readers.extend(prefixed(&mut child, &format!("{n:<width$}  | ")));
            children.push(child);
        }
        // The exit code: the service --exit-code-from names, else the first
        // to exit when aborting, 130 after a signal, 0 when all ended.
        let mut first: Option<String> = None;
        let mut signalled = false;
        loop {
            if STOPPING.load(Ordering::SeqCst) {
                let _ = writeln!(std::io::stderr(), "Gracefully stopping...");
                signalled = true;
                break;
            }
            let recs: Vec<Record> = names.iter().filter_map(|n| record::find(&self.env.root, n).ok()).collect();
            let exited: Vec<&Record> = recs.iter().filter(|r| self.state(r) == "exited").collect();
            if let Some(r) = exited.first().filter(|_| abort) {
                first = Some(r.name.clone());
                let _ = writeln!(std::io::stderr(), "Aborting on container exit...");
                break;
            }
            if exited.len() == recs.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        for n in names.iter().rev() {
            if let Ok(r) = record::find(&self.env.root, n) {
                if self.state(&r) != "exited" {
                    let _ = self.engine.run(&["stop", n]);
                    said("✔", &format!("Container {n}"), "Stopped");
                }
            }
        }
        let recs: Vec<Record> = names.iter().filter_map(|n| record::find(&self.env.root, n).ok()).collect();
        for r in &recs {
            println!("{} exited with code {}", r.name, self.exit_code(r).unwrap_or(-1));
        }
        let from = match p.get("exit-code-from") {
            Some(svc) => recs.iter().find(|r| r.labels.get(SERVICE).is_some_and(|s| s == svc)),
            None => recs.iter().find(|r| first.as_ref() == Some(&r.name)),
        };
        let code = match from {
            Some(r) => self.exit_code(r).unwrap_or(0),
            None if signalled => 130,
            None => 0,
        };
        for mut c in children {
            // Bounded: a follower ends with its container, which is stopped now.
            let _ = c.wait();
        }
        for r in readers {
            let _ = r.join();
        }
        Ok(code)
    }

    fn down(&self, p: &Parsed) -> Result<i32> {
        let known: Vec<&str> = self.project.services.iter().map(|s| s.name.as_str()).collect();
        let mut all = self.containers()?;
        if !p.on("remove-orphans") {
            all.retain(|r| r.labels.get(SERVICE).is_some_and(|s| known.contains(&s.as_str())));
        }
        for r in all.iter().rev() {
            self.stop_rm(r, p.get("timeout"), p.on("volumes"))?;
        }
        let nets = crate::network::named::list(&self.env.root);
        for n in self.project.networks.iter().filter(|n| !n.external) {
            if nets.iter().any(|x| x.name == n.name) {
                self.engine.run(&["network", "rm", &n.name])?;
                said("✔", &format!("Network {}", n.name), "Removed");
            }
        }
        if p.on("volumes") {
            for v in self.project.volumes.iter().filter(|v| !v.external && crate::volumes::dir(&self.env.root, &v.name).exists()) {
                self.engine.run(&["volume", "rm", &v.name])?;
                said("✔", &format!("Volume {}", v.name), "Removed");
            }
        }
        match p.get("rmi") {
            None => {}
            Some(which @ ("local" | "all")) => {
                for s in &self.project.services {
                    let built_here = s.build.is_some() && s.image == format!("{}-{}", self.project.name, s.name);
                    if (which == "all" || built_here) && self.image_id(&s.image).is_some() && self.engine.run(&["rmi", &s.image]).is_ok() {
                        said("✔", &format!("Image {}", s.image), "Removed");
                    }
                }
            }
            Some(other) => return err(format!("invalid --rmi value {other:?}: local or all")),
        }
        Ok(0)
    }

    fn ps(&self, p: &Parsed) -> Result<i32> {
        if p.on("services") {
            for s in self.project.select(&p.args)? {
                println!("{}", s.name);
            }
            return Ok(0);
        }
        let recs: Vec<Record> = self.of(&p.args)?.into_iter().filter(|r| p.on("all") || self.state(r) != "exited").collect();
        if p.on("quiet") {
            for r in &recs {
                println!("{}", r.id);
            }
            return Ok(0);
        }
        // The engine's own ps gives status and ports as docker words them.
        let out = self.engine.run(&["ps", "-a", "--no-trunc", "--filter", &format!("label={PROJECT}={}", self.project.name), "--format", "json"])?;
        let rows: Vec<serde_json::Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let mut table = vec![["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"].map(String::from).to_vec()];
        let mut json = Vec::new();
        for r in &recs {
            let Some(row) = rows.iter().find(|x| x["Names"] == r.name.as_str()) else { continue };
            let service = r.labels.get(SERVICE).cloned().unwrap_or_default();
            let s = |k: &str| row[k].as_str().unwrap_or("").to_string();
            json.push(serde_json::json!({"ID": r.id, "Name": r.name, "Image": r.image, "Command": s("Command"), "Project": self.project.name,
                "Service": service, "Created": s("CreatedAt"), "State": s("State"), "Status": s("Status"), "Publishers": s("Ports"),
                "ExitCode": self.exit_code(r).unwrap_or(0), "Health": containers::health_of(&record::dir(&self.env.root, &r.id), r).and_then(|h| h["Status"].as_str().map(String::from)).unwrap_or_default()}));
            table.push(vec![r.name.clone(), r.image.clone(), s("Command"), service, s("RunningFor"), s("Status"), s("Ports")]);
        }
        match p.get("format") {
            Some("json") => json.iter().for_each(|j| println!("{j}")),
            None | Some("table") => print!("{}", crate::commands::images::tabulate(&table)),
            Some(f) => return err(format!("unsupported format {f:?}: table or json")),
        }
        Ok(0)
    }

    fn logs(&self, p: &Parsed) -> Result<i32> {
        let recs = self.of(&p.args)?;
        let width = recs.iter().map(|r| r.name.len()).max().unwrap_or(0);
        let mut pass: Vec<String> = Vec::new();
        for (f, on) in [("follow", "-f"), ("timestamps", "-t")] {
            if p.on(f) {
                pass.push(on.into());
            }
        }
        for f in ["tail", "since", "until"] {
            if let Some(v) = p.get(f) {
                pass.extend([format!("--{f}"), v.to_string()]);
            }
        }
        let mut threads = Vec::new();
        for r in recs {
            let mut args: Vec<&str> = vec!["logs"];
            args.extend(pass.iter().map(String::as_str));
            args.push(&r.name);
            let mut child = self.engine.command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn().ctx(|| "read the logs")?;
            let prefix = if p.on("no-log-prefix") { String::new() } else { format!("{:<width$}  | ", r.name) };
            threads.extend(prefixed(&mut child, &prefix));
            threads.push(std::thread::spawn(move || {
                let _ = child.wait();
            }));
        }
        for t in threads {
            let _ = t.join();
        }
        Ok(0)
    }

    /// start, stop, restart, kill, pause, unpause: on every container of the services named.
    fn each(&self, cmd: &str, p: &Parsed) -> Result<i32> {
        let mut recs = self.of(&p.args)?;
        if cmd != "start" && cmd != "unpause" {
            // dependents first
            recs.reverse();
        }
        for r in &recs {
            let mut a = vec![cmd];
            match (cmd, p.get("timeout"), p.get("signal")) {
                ("stop" | "restart", Some(t), _) => a.extend(["-t", t]),
                ("kill", _, Some(s)) => a.extend(["-s", s]),
                _ => {}
            }
            if cmd == "start" && self.state(r) == "running" {
                continue;
            }
            if cmd == "kill" && self.state(r) != "running" {
                continue;
            }
            a.push(&r.name);
            self.engine.run(&a)?;
            let done = match cmd {
                "start" => "Started",
                "stop" => "Stopped",
                "restart" => "Restarted",
                "kill" => "Killed",
                "pause" => "Paused",
                _ => "Unpaused",
            };
            said("✔", &format!("Container {}", r.name), done);
        }
        Ok(0)
    }

    fn rm(&self, p: &Parsed) -> Result<i32> {
        let recs = self.of(&p.args)?;
        if p.on("stop") {
            for r in recs.iter().rev().filter(|r| self.state(r) == "running") {
                self.engine.run(&["stop", &r.name])?;
                said("✔", &format!("Container {}", r.name), "Stopped");
            }
        }
        let gone: Vec<&Record> = recs.iter().filter(|r| matches!(self.state(r).as_str(), "exited" | "created")).collect();
        if gone.is_empty() {
            let _ = writeln!(std::io::stderr(), "No stopped containers");
            return Ok(0);
        }
        let names: Vec<&str> = gone.iter().map(|r| r.name.as_str()).collect();
        if !p.on("force") && !crate::commands::prune::confirm(&format!("Going to remove {}\n? Are you sure?", names.join(", ")))? {
            return Ok(0);
        }
        for r in gone {
            let mut a = vec!["rm"];
            if p.on("volumes") {
                a.push("-v");
            }
            a.push(&r.name);
            self.engine.run(&a)?;
            said("✔", &format!("Container {}", r.name), "Removed");
        }
        Ok(0)
    }

    fn exec(&self, p: &Parsed) -> Result<i32> {
        let Some((svc, cmd)) = p.args.split_first() else { return err("compose exec needs a service and a command") };
        if cmd.is_empty() {
            return err("compose exec needs a command after the service");
        }
        let name = self.container_of(svc, p)?;
        let r = record::find(&self.env.root, &name).map_err(|_| Error(format!("service {svc:?} is not running")))?;
        if self.state(&r) != "running" {
            return err(format!("service {svc:?} is not running"));
        }
        let mut a = attach_flags("exec", p, &[("env", "-e"), ("user", "-u"), ("workdir", "-w")]);
        if p.on("privileged") {
            a.push("--privileged".into());
        }
        a.push(name);
        a.extend(cmd.iter().cloned());
        self.engine.attached(&a)
    }

    fn run(&self, p: &Parsed) -> Result<i32> {
        let Some((svc, cmd)) = p.args.split_first() else { return err("compose run needs a service") };
        let s = self.project.service(svc)?;
        if !p.on("no-deps") {
            let deps: Vec<String> = s.depends_on.iter().map(|(d, _)| d.clone()).collect();
            if !deps.is_empty() {
                let up = Parsed { values: vec![("detach", "true".into())], args: deps };
                self.up(&up)?;
                for (d, c) in &s.depends_on {
                    self.wait_for(d, *c)?;
                }
            }
        }
        let mut opts = Parsed::default();
        if p.on("build") {
            opts.values.push(("build", "true".into()));
        }
        let id = self.ensure_image(s, &opts)?;
        self.networks_and_volumes(&[s])?;
        let name = match p.get("name") {
            Some(n) => n.to_string(),
            None => format!("{}-{}-run-{}", self.project.name, s.name, &crate::record::new_id()?[..12]),
        };
        let mut a = attach_flags("run", p, &[("env", "-e"), ("user", "-u"), ("workdir", "-w"), ("publish", "-p"), ("volume", "-v"), ("label", "-l")]);
        if p.on("rm") {
            a.push("--rm".into());
        }
        let mut args = s.create_args(&self.project, &name, 1, &s.hash(&id), p.on("service-ports"), true);
        // A command given replaces the service's; --entrypoint the entrypoint.
        let image_at = args.iter().rposition(|x| x == "--").unwrap_or(args.len());
        if let Some(ep) = p.get("entrypoint") {
            if let Some(i) = args[..image_at].iter().position(|x| x == "--entrypoint") {
                args.drain(i..i + 2);
            }
            let image_at = args.iter().rposition(|x| x == "--").unwrap_or(args.len());
            args.truncate(image_at + 2);
            args.splice(image_at..image_at, ["--entrypoint".to_string(), ep.to_string()]);
        }
        if !cmd.is_empty() {
            let image_at = args.iter().rposition(|x| x == "--").unwrap_or(args.len());
            let keep_ep: Vec<String> = match (&s.entrypoint, p.get("entrypoint")) {
                (Some(ep), None) => ep.iter().skip(1).cloned().collect(),
                _ => Vec::new(),
            };
            args.truncate(image_at + 2);
            args.extend(keep_ep);
            args.extend(cmd.iter().cloned());
        }
        a.extend(args);
        self.engine.attached(&a)
    }

    /// The container of `svc` that `--index` names (1 by default).
    fn container_of(&self, svc: &str, p: &Parsed) -> Result<String> {
        let s = self.project.service(svc)?;
        let n: u32 = p.get("index").map_or(Ok(1), str::parse).map_err(|_| Error("invalid --index: a number from 1".into()))?;
        Ok(s.container(&self.project.name, n))
    }

    /// `port SERVICE PRIVATE_PORT`: the host address it is published on.
    fn port(&self, p: &Parsed) -> Result<i32> {
        let [svc, private] = p.args.as_slice() else { return err("compose port needs a service and a private port") };
        let proto = p.get("protocol").unwrap_or("tcp");
        let name = self.container_of(svc, p)?;
        let r = record::find(&self.env.root, &name)?;
        let Some(port) = r.ports.iter().find(|x| x.container_port.to_string() == *private && x.proto == proto) else {
            return err(format!("no port {private}/{proto} for container {name}"));
        };
        println!("{}:{}", port.host_ip, port.host_port);
        Ok(0)
    }

    /// `cp [SERVICE:]SRC [SERVICE:]DST`: the service's container in the engine's own cp.
    fn cp(&self, p: &Parsed) -> Result<i32> {
        let [src, dst] = p.args.as_slice() else { return err("compose cp needs a source and a destination") };
        let mut a = vec!["cp".to_string()];
        for (f, fl) in [("archive", "-a"), ("follow-link", "-L")] {
            if p.on(f) {
                a.push(fl.into());
            }
        }
        for side in [src, dst] {
            a.push(match side.split_once(':') {
                Some((svc, path)) if !svc.contains('/') => format!("{}:{path}", self.container_of(svc, p)?),
                _ => side.clone(),
            });
        }
        self.engine.attached(&a)
    }

    fn config(&self, p: &Parsed) -> Result<i32> {
        if p.on("quiet") {
            return Ok(0);
        }
        if p.on("services") {
            for s in &self.project.services {
                println!("{}", s.name);
            }
            return Ok(0);
        }
        if p.on("volumes") {
            for v in &self.project.volumes {
                println!("{}", v.key);
            }
            return Ok(0);
        }
        let mut model = self.project.model.clone();
        model["name"] = self.project.name.clone().into();
        match p.get("format") {
            Some("json") => println!("{}", serde_json::to_string_pretty(&model).unwrap_or_default()),
            None | Some("yaml") => print!("{}", super::emit(&model)),
            Some(f) => return err(format!("unsupported format {f:?}: yaml or json")),
        }
        Ok(0)
    }
}

fn ls(env: &Env, rest: &[String]) -> Result<i32> {
    let p = parse(&[flag("all", Some('a'), false), flag("quiet", Some('q'), false), flag("format", None, true)], rest, false, "compose ls")?;
    let mut projects: std::collections::BTreeMap<String, (Vec<String>, String)> = Default::default();
    for r in record::list(&env.root)? {
        let Some(name) = r.labels.get(PROJECT) else { continue };
        let e = projects.entry(name.clone()).or_default();
        e.0.push(containers::status(env, &r).0);
        e.1 = r.labels.get("com.docker.compose.project.working_dir").cloned().unwrap_or_default();
    }
    let mut table = vec![["NAME", "STATUS", "WORKING DIR"].map(String::from).to_vec()];
    let mut json = Vec::new();
    for (name, (states, dir)) in projects {
        let running = states.iter().filter(|s| *s == "running").count();
        if running == 0 && !p.on("all") {
            continue;
        }
        let mut counts: Vec<String> = Vec::new();
        for st in ["running", "exited", "created", "paused", "restarting"] {
            let n = states.iter().filter(|s| *s == st).count();
            if n > 0 {
                counts.push(format!("{st}({n})"));
            }
        }
        if p.on("quiet") {
            println!("{name}");
            continue;
        }
        json.push(serde_json::json!({"Name": name, "Status": counts.join(", "), "WorkingDir": dir}));
        table.push(vec![name, counts.join(", "), dir]);
    }
    if !p.on("quiet") {
        match p.get("format") {
            Some("json") => println!("{}", serde_json::Value::Array(json)),
            _ => print!("{}", crate::commands::images::tabulate(&table)),
        }
    }
    Ok(0)
}

/// `exec`/`run` flags: detached, or with stdin and (unless -T, or when
/// there is no terminal to give) a terminal; then the flags passed on.
fn attach_flags(cmd: &str, p: &Parsed, passed: &[(&str, &str)]) -> Vec<String> {
    let mut a: Vec<String> = vec![cmd.into()];
    if p.on("detach") {
        a.push("-d".into());
    } else {
        a.push("-i".into());
        if !p.on("no-TTY") && crate::commands::images::is_tty(0) {
            a.push("-t".into());
        }
    }
    for (f, fl) in passed {
        for v in p.all(f) {
            a.extend([fl.to_string(), v.to_string()]);
        }
    }
    a
}

extern "C" fn on_signal(_: libc::c_int) {
    STOPPING.store(true, Ordering::SeqCst);
}

/// Threads copying `child`'s stdout and stderr to stdout, a line at a time,
/// each after `prefix`.
fn prefixed(child: &mut std::process::Child, prefix: &str) -> Vec<std::thread::JoinHandle<()>> {
    let out = child.stdout.take().map(|o| Box::new(o) as Box<dyn std::io::Read + Send>);
    let err = child.stderr.take().map(|e| Box::new(e) as Box<dyn std::io::Read + Send>);
    [out, err]
        .into_iter()
        .flatten()
        .map(|pipe| {
            let prefix = prefix.to_string();
            std::thread::spawn(move || prefix_lines(pipe, &prefix))
        })
        .collect()
}

/// Copies `from` to stdout a line at a time, each after `prefix`.
fn prefix_lines(from: Box<dyn std::io::Read + Send>, prefix: &str) {
    let mut r = std::io::BufReader::new(from);
    let mut line = Vec::new();
    while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(prefix.as_bytes()).and_then(|_| out.write_all(&line));
        if !line.ends_with(b"\n") {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
        line.clear();
    }
}
