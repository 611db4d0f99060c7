//! `engine compose` end to end through the dist binaries: a project's
//! network, volumes and containers made from compose.yaml, dependency
//! order and conditions, interpolation, recreation when the file changes,
//! logs, exec, one-off runs, builds, attached `up`, and `down` leaving
//! nothing behind.
//!
//! Each test owns its engine root, bridge and subnets (the project network
//! gets one of this process's 10.234.X.0/24), and talks only to loopback.

use skiff_tests::engine::{fetch, Engine, T};
use skiff_tests::{free_tcp_port, run, text};
use std::path::PathBuf;
use std::process::Output;

struct Project {
    e: Engine,
    dir: PathBuf,
    name: String,
}

impl Project {
    fn new(tag: &str, yaml: &str) -> Project {
        let e = Engine::new(tag);
        let dir = e.dir.path().join("proj");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
        Project { e, dir, name: format!("p{tag}") }
    }

    fn compose(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all = vec!["compose", "-p", &self.name];
        all.extend_from_slice(args);
        let mut c = self.e.cmd(&all);
        c.current_dir(&self.dir).envs(env.iter().copied());
        run(&mut c, T)
    }

    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = self.compose(args, env);
        assert!(out.status.success(), "compose {args:?} failed ({:?}): {}{}", out.status, text(&out.stdout), text(&out.stderr));
        out
    }

    fn id(&self, name: &str) -> String {
        self.e.inspect(name)["Id"].as_str().unwrap_or_default().to_string()
    }
}

#[test]
fn up_ps_logs_exec_recreate_run_down() {
    let port = free_tcp_port();
    let yaml = |subnet: &str| {
        format!(
            r#"# a web service that waits for a healthy db
x-common: &common
  restart: "no"
services:
  web:
    <<: *common
    image: busybox
    depends_on:
      db: {{condition: service_healthy}}
      setup: {{condition: service_completed_successfully}}
    ports: ["127.0.0.1:{port}:80"]
    environment:
      GREETING: ${{GREETING:-hello}}
    volumes: [data:/data]
    command: sh -c 'mkdir -p /www && echo "$$GREETING from web, $$(cat /data/made-by)" > /www/index.html && exec httpd -f -p 80 -h /www'
  db:
    image: busybox
    command: ["sh", "-c", "echo db-ready; exec sleep 300"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
  setup:
    image: busybox
    volumes:
      - type: volume
        source: data
        target: /data
    command: sh -c 'echo setup > /data/made-by'
networks:
  default:
    ipam:
      config:
        - subnet: {subnet}
volumes:
  data: {{}}
"#
        )
    };
    let p = Project::new("cup", "");
    std::fs::write(p.dir.join("compose.yaml"), yaml(&p.e.another_subnet())).unwrap();
    let up = p.ok(&["up", "-d"], &[]);
    let said = text(&up.stderr);
    for want in ["Network pcup_default  Created", "Container pcup-db-1  Started", "Container pcup-web-1  Started"] {
        assert!(said.contains(want), "{want:?} not in {said}");
    }
    // Dependencies first, each as its condition says.
    let page = fetch("127.0.0.1", port).expect("the web service answers on the published port");
    assert!(page.contains("hello from web, setup"), "{page}");
    // ps --format json: an object a line, as compose v2 prints them.
    let ps = text(&p.ok(&["ps", "--format", "json"], &[]).stdout);
    let mut running: Vec<String> = ps.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["Service"].as_str().unwrap().to_string()).collect();
    running.sort();
    assert_eq!(running, ["db", "web"], "{ps}");
    assert_eq!(text(&p.ok(&["port", "web", "80"], &[]).stdout), format!("127.0.0.1:{port}\n"));
    p.ok(&["cp", "web:/www/index.html", "page.html"], &[]);
    assert!(std::fs::read_to_string(p.dir.join("page.html")).unwrap().contains("hello from web"));
    let top = text(&p.ok(&["top", "db"], &[]).stdout);
    assert!(top.starts_with("pcup-db-1\n") && top.contains("sleep 300"), "{top}");
    let all = text(&p.ok(&["ps", "-a"], &[]).stdout);
    assert!(all.lines().next().unwrap().starts_with("NAME") && all.contains("pcup-setup-1"), "{all}");
    assert_eq!(p.e.inspect("pcup-setup-1")["State"]["ExitCode"], 0);
    // Services reach each other by name on the project network.
    let hosts = text(&p.ok(&["exec", "-T", "web", "cat", "/etc/hosts"], &[]).stdout);
    assert!(hosts.split_whitespace().any(|w| w == "db"), "{hosts}");
    assert!(p.e.inspect("pcup-web-1")["Config"]["Labels"]["com.docker.compose.project"] == "pcup");
    let logs = text(&p.ok(&["logs", "db"], &[]).stdout);
    assert!(logs.contains("pcup-db-1  | db-ready"), "{logs}");
    // Up again: nothing changed, nothing is recreated.
    let (web, db) = (p.id("pcup-web-1"), p.id("pcup-db-1"));
    let again = p.ok(&["up", "-d"], &[]);
    assert!(text(&again.stderr).contains("Container pcup-web-1  Running"), "{}", text(&again.stderr));
    assert_eq!((p.id("pcup-web-1"), p.id("pcup-db-1")), (web.clone(), db.clone()));
    // A changed variable changes web's config: web alone is recreated.
    p.ok(&["up", "-d"], &[("GREETING", "bye")]);
    assert_ne!(p.id("pcup-web-1"), web);
    assert_eq!(p.id("pcup-db-1"), db);
    let page = fetch("127.0.0.1", port).expect("the recreated web service answers");
    assert!(page.contains("bye from web, setup"), "{page}");
    // A one-off container with its own command, removed after.
    let one = p.ok(&["run", "--rm", "-T", "--no-deps", "db", "echo", "one-off"], &[]);
    assert_eq!(text(&one.stdout), "one-off\n");
    assert_eq!(text(&p.ok(&["config", "--services"], &[]).stdout), "db\nsetup\nweb\n");
    // stop, then down -v: no container, network or volume is left.
    p.ok(&["stop"], &[]);
    assert_eq!(p.e.inspect("pcup-web-1")["State"]["Status"], "exited");
    let down = p.ok(&["down", "-v"], &[]);
    assert!(text(&down.stderr).contains("Network pcup_default  Removed"), "{}", text(&down.stderr));
    assert_eq!(p.e.ok(&["ps", "-aq"]), "");
    assert!(!p.e.ok(&["network", "ls"]).contains("pcup_default"));
    assert!(!p.e.ok(&["volume", "ls"]).contains("pcup_data"));
    assert!(p.e.network_bridges().is_empty());
}

#[test]
fn attached_up_builds_and_returns_the_exit_code() {
    let p = Project::new(
        "cbuild",
        "services:\n  job:\n    build: ./app\n    network_mode: none\n    environment: [CODE=3]\n  \
         side:\n    image: busybox\n    network_mode: none\n    command: sleep 300\n    stop_grace_period: 1s\n",
    );
    std::fs::create_dir_all(p.dir.join("app")).unwrap();
    std::fs::write(p.dir.join("app/Dockerfile"), "FROM busybox\nRUN echo built-in-image > /msg\nCMD [\"sh\", \"-c\", \"cat /msg; exit $CODE\"]\n").unwrap();
    // create builds and makes the containers without starting them; up then starts those.
    p.ok(&["create"], &[]);
    assert_eq!(p.e.inspect("pcbuild-side-1")["State"]["Status"], "created");
    let created = p.id("pcbuild-job-1");
    let out = p.compose(&["up", "--exit-code-from", "job"], &[]);
    assert_eq!(p.id("pcbuild-job-1"), created);
    assert_eq!(out.status.code(), Some(3), "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("pcbuild-job-1   | built-in-image"), "{stdout}");
    // The other service was stopped when job ended.
    assert_eq!(p.e.inspect("pcbuild-side-1")["State"]["Status"], "exited");
    assert!(p.e.ok(&["images"]).contains("pcbuild-job"));
    p.ok(&["down", "--rmi", "local"], &[]);
    assert!(!p.e.ok(&["images"]).contains("pcbuild-job"));
    assert_eq!(p.e.ok(&["ps", "-aq"]), "");
}

/// Attached `up` ends on SIGINT by stopping its containers (130); file
/// secrets and configs are read-only files in the container; a service
/// with `attach: false` runs without its log shown.
#[test]
fn attached_up_stops_on_sigint_with_secrets() {
    let p = Project::new(
        "csig",
        "services:\n  app:\n    image: busybox\n    network_mode: none\n    stop_grace_period: 2s\n    secrets: [pw]\n    \
         configs: [{source: conf, target: /etc/app.conf}]\n    \
         command: sh -c 'echo \"secret=$$(cat /run/secrets/pw) conf=$$(cat /etc/app.conf)\"; touch /run/secrets/pw 2>/dev/null || echo read-only; trap \"exit 0\" TERM; while true; do sleep 0.1; done'\n  \
         quiet:\n    image: busybox\n    network_mode: none\n    attach: false\n    command: sh -c 'echo should-not-show; sleep 300'\n    stop_signal: SIGKILL\n\
         secrets:\n  pw:\n    file: ./pw.txt\nconfigs:\n  conf:\n    file: ./app.conf\n",
    );
    std::fs::write(p.dir.join("pw.txt"), "s3cret").unwrap();
    std::fs::write(p.dir.join("app.conf"), "level=2").unwrap();
    let mut c = p.e.cmd(&["compose", "-p", &p.name, "up"]);
    c.current_dir(&p.dir).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let pid = child.id() as i32;
    // Up and logging once the app has printed its line.
    let running = skiff_tests::wait_until(std::time::Duration::from_secs(60), || {
        p.e.run(&["logs", "pcsig-app-1"]).stdout.windows(6).any(|w| w == b"secret") && text(&p.e.run(&["inspect", "-f", "{{.State.Status}}", "pcsig-quiet-1"]).stdout).trim() == "running"
    });
    assert!(running, "the services never came up");
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "{stdout}{stderr}");
    assert!(stdout.contains("pcsig-app-1    | secret=s3cret conf=level=2"), "{stdout}");
    assert!(stdout.contains("pcsig-app-1    | read-only"), "{stdout}");
    assert!(!stdout.contains("should-not-show"), "{stdout}");
    assert!(stderr.contains("Gracefully stopping..."), "{stderr}");
    for n in ["pcsig-app-1", "pcsig-quiet-1"] {
        assert_eq!(p.e.inspect(n)["State"]["Status"], "exited", "{n}");
    }
    assert_eq!(p.e.inspect("pcsig-app-1")["State"]["ExitCode"], 0, "the app got SIGTERM and exited by its trap");
    p.ok(&["down"], &[]);
}

#[test]
fn bad_projects_get_clear_errors() {
    let p = Project::new("cbad", "services:\n  a:\n    image: busybox\n    depends_on: [b]\n");
    let fails = |args: &[&str], env: &[(&str, &str)], want: &str| {
        let out = p.compose(args, env);
        assert!(!out.status.success(), "compose {args:?} succeeded");
        assert!(text(&out.stderr).contains(want), "{want:?} not in {}", text(&out.stderr));
    };
    fails(&["up", "-d"], &[], "service \"a\" depends on undefined service \"b\"");
    std::fs::write(p.dir.join("compose.yaml"), "services:\n  a:\n    image: busybox:${TAG:?set TAG}\n").unwrap();
    fails(&["config"], &[], "required variable TAG is missing a value: set TAG");
    std::fs::write(p.dir.join("compose.yaml"), "services:\n  a:\n    image: busybox\n    bogus: 1\n").unwrap();
    fails(&["config"], &[], "services.a additional property bogus is not allowed");
    std::fs::write(p.dir.join("compose.yaml"), "services:\n  a:\n    image: busybox\n   ports: []\n").unwrap();
    fails(&["config"], &[], "line 4");
    std::fs::write(p.dir.join("compose.yaml"), "services:\n  a:\n    image: busybox\n    command: echo $${HOME}\n    ports: [\"x:80\"]\n    network_mode: none\n").unwrap();
    // The engine's own flag checks apply to what compose makes.
    fails(&["up", "-d"], &[], "x:80");
    // .env gives variables; the shell's win.
    std::fs::write(p.dir.join(".env"), "TAG=latest\nNAME=from-env-file\n").unwrap();
    std::fs::write(p.dir.join("compose.yaml"), "services:\n  a:\n    image: busybox:${TAG}\n    container_name: ${NAME}\n").unwrap();
    let cfg = text(&p.ok(&["config"], &[("NAME", "from-shell")]).stdout);
    assert!(cfg.contains("image: busybox:latest") && cfg.contains("container_name: from-shell"), "{cfg}");
    std::fs::remove_file(p.dir.join("compose.yaml")).unwrap();
    fails(&["ps"], &[], "no configuration file provided");
}

/// The project name from .env (no -p); `up --no-deps` starts a service
/// without its dependencies and does not wait for them.
#[test]
fn project_name_from_env_file_and_no_deps() {
    let p = Project::new(
        "cenv",
        "services:\n  a:\n    image: busybox\n    network_mode: none\n    command: sleep 300\n    stop_signal: SIGKILL\n    \
         depends_on: {b: {condition: service_healthy}}\n  b:\n    image: busybox\n    network_mode: none\n    command: sleep 300\n    \
         healthcheck: {test: [CMD, 'false'], interval: 1s}\n",
    );
    std::fs::write(p.dir.join(".env"), "COMPOSE_PROJECT_NAME=fromenv-cenv\n").unwrap();
    let bare = |args: &[&str]| {
        let mut all = vec!["compose"];
        all.extend_from_slice(args);
        let mut c = p.e.cmd(&all);
        c.current_dir(&p.dir);
        let out = run(&mut c, T);
        assert!(out.status.success(), "compose {args:?}: {}", text(&out.stderr));
        out
    };
    bare(&["up", "-d", "--no-deps", "a"]);
    assert_eq!(p.e.inspect("fromenv-cenv-a-1")["State"]["Status"], "running");
    assert!(!p.e.run(&["inspect", "fromenv-cenv-b-1"]).status.success(), "b was started");
    assert_eq!(text(&bare(&["ps", "-q"]).stdout).lines().count(), 1);
    bare(&["down"]);
    assert_eq!(p.e.ok(&["ps", "-aq"]), "");
}
