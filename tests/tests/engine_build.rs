//! `engine commit` and `engine build` end to end through the dist binaries:
//! images made from a container's changes and from Dockerfiles, run again,
//! saved and loaded into another root.

use skiff_tests::engine::{Engine, T};
use skiff_tests::{run, text, wait_until};
use std::path::Path;
use std::process::Command;

fn write(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn image_ids(e: &Engine) -> Vec<String> {
    e.ok(&["images", "-q"]).split_whitespace().map(String::from).collect()
}

/// commit: the container's changes (added, deleted, hard- and symlinked
/// files) and what it ran (env, workdir) make a new image, with `-c`
/// changes, author and message; the container keeps running (paused for
/// the copy, then resumed); the image survives save + load elsewhere.
#[test]
fn commit_makes_an_image_of_the_changes() {
    let e = Engine::new("commit");
    let script = "echo hi > /greeting; rm /etc/group; mkdir -p /opt/d; echo x > /opt/d/f; ln /opt/d/f /opt/d/hard; \
                  ln -s /greeting /link; touch /ready; sleep 60";
    let id = e.ok(&["run", "-d", "--network", "none", "-e", "FOO=bar", "-w", "/opt", "busybox", "sh", "-c", script]).trim().to_string();
    assert!(wait_until(T, || e.run(&["exec", &id, "test", "-e", "/ready"]).status.success()), "the container did not get ready");
    let image = e
        .ok(&["commit", "-a", "tester", "-m", "first commit", "-c", "CMD [\"cat\", \"/greeting\"]", "-c", "ENV MODE=committed", &id, "snap:v1"])
        .trim()
        .to_string();
    assert!(image.starts_with("sha256:") && image.len() == 71, "commit prints the image id: {image}");
    assert_eq!(e.inspect(&id)["State"]["Status"], "running", "the container was left paused or stopped");

    let out = e.run_busybox_image("snap:v1", &[]);
    assert_eq!(out, "hi\n", "the committed CMD");
    let out = e.run_busybox_image("snap:v1", &["sh", "-c", "test ! -e /etc/group && cat /opt/d/hard && readlink /link && echo $FOO $MODE && pwd && stat -c %h /opt/d/f"]);
    assert_eq!(out, "x\n/greeting\nbar committed\n/opt\n2\n");

    let info: serde_json::Value = serde_json::from_str(&e.ok(&["image", "inspect", "snap:v1"])).unwrap();
    assert_eq!(info[0]["Author"], "tester", "{info}");
    assert_eq!(info[0]["Comment"], "first commit", "{info}");
    assert_eq!(info[0]["RootFS"]["Layers"].as_array().map(|l| l.len()), Some(2), "one layer over busybox's: {info}");
    assert!(e.ok(&["history", "snap:v1"]).contains("first commit"));

    // --pause=false, no tag: a dangling image; a bad change is refused and stores nothing
    let before = image_ids(&e);
    let out = e.run(&["commit", "-c", "RUN true", &id]);
    assert!(!out.status.success() && text(&out.stderr).contains("not a valid change command"), "{}", text(&out.stderr));
    assert_eq!(image_ids(&e), before, "a failed commit left an image");
    let out = e.run(&["commit", "no-such-container"]);
    assert!(!out.status.success() && text(&out.stderr).contains("no-such-container"), "{}", text(&out.stderr));
    e.ok(&["commit", "--pause=false", &id]);
    assert_eq!(image_ids(&e).len(), before.len() + 1);
    e.ok(&["rm", "-f", &id]);

    // save + load into another root: the layer rebuilds to its diff id
    let tar = e.dir.path().join("snap.tar");
    e.ok(&["save", "-o", tar.to_str().unwrap(), "snap:v1"]);
    let other = Engine::new("commit-load");
    other.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(other.run_busybox_image("snap:v1", &[]), "hi\n");
}

/// build: ARG before FROM, ENV/WORKDIR expansion, COPY of files and
/// directories (.dockerignore honoured, --chown), ADD of a tar.gz, RUN
/// (build args in its environment, not the image's; deletions), USER,
/// EXPOSE, LABEL, HEALTHCHECK, CMD; no intermediate container or image is
/// left; the history lists the steps.
#[test]
fn build_runs_a_dockerfile() {
    let e = Engine::new("build");
    let ctx = e.dir.path().join("ctx");
    write(&ctx, "hello.txt", "hello\n");
    write(&ctx, "dir/a", "a\n");
    write(&ctx, "dir/sub/b", "b\n");
    write(&ctx, "dir/skip.log", "no\n");
    write(&ctx, ".dockerignore", "# logs stay out\n**/*.log\n");
    write(&ctx, "stage/x/inner", "inner\n");
    let out = run(Command::new("tar").arg("-C").arg(ctx.join("stage")).arg("-czf").arg(ctx.join("app.tar.gz")).arg("x"), T);
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    write(
        &ctx,
        "Dockerfile",
        "# syntax=docker/dockerfile:1\n\
         ARG BASE=busybox\n\
         FROM ${BASE}\n\
         ARG GREETING=hello\n\
         ENV APP=/app\n\
         WORKDIR $APP\n\
         COPY hello.txt .\n\
         COPY dir/ ./dir/\n\
         ADD app.tar.gz /opt/\n\
         RUN echo \"$GREETING from run\" > run.txt \\\n    && rm /etc/group\n\
         COPY --chown=1:2 hello.txt /owned\n\
         USER 1000\n\
         EXPOSE 8080/tcp\n\
         LABEL org.test=yes\n\
         HEALTHCHECK --interval=30s CMD true\n\
         CMD [\"cat\", \"/app/run.txt\"]\n",
    );
    let before = image_ids(&e);
    let out = e.ok(&["build", "--network", "none", "--build-arg", "GREETING=hi-arg", "-t", "built:1", "-t", "built:alias", ctx.to_str().unwrap()]);
    assert!(out.contains("Step 1/15 : ARG BASE=busybox") && out.contains("Successfully tagged built:1"), "{out}");
    assert!(out.contains("Step 9/15 : RUN echo \"$GREETING from run\" > run.txt"), "continuation joined: {out}");
    assert_eq!(e.run_busybox_image("built:1", &[]), "hi-arg from run\n");
    let check = "cat hello.txt dir/a dir/sub/b /opt/x/inner; test -e dir/skip.log || echo ignored; test -e /etc/group || echo deleted; \
                 stat -c %u:%g /owned; stat -c %u hello.txt; id -u; pwd; echo ${GREETING:-unset}";
    let out = e.run_busybox_image("built:1", &["sh", "-c", check]);
    assert_eq!(out, "hello\na\nb\ninner\nignored\ndeleted\n1:2\n0\n1000\n/app\nunset\n");

    let info: serde_json::Value = serde_json::from_str(&e.ok(&["image", "inspect", "built:1"])).unwrap();
    let c = &info[0]["Config"];
    assert_eq!(c["ExposedPorts"], serde_json::json!({ "8080/tcp": {} }), "{c}");
    assert_eq!(c["Labels"]["org.test"], "yes");
    assert_eq!(c["Healthcheck"]["Test"], serde_json::json!(["CMD-SHELL", "true"]));
    assert_eq!(c["Healthcheck"]["Interval"], 30_000_000_000i64);
    assert!(c["Env"].as_array().unwrap().iter().any(|v| v == "APP=/app"), "{c}");
    assert!(!c["Env"].to_string().contains("GREETING"), "a build arg leaked into the image: {c}");
    assert_eq!(c["User"], "1000");
    // busybox's layer, then COPY, COPY, ADD, RUN, COPY
    assert_eq!(info[0]["RootFS"]["Layers"].as_array().map(|l| l.len()), Some(6), "{info}");
    let history = e.ok(&["history", "--no-trunc", "built:1"]);
    assert!(history.contains("/bin/sh -c echo \"$GREETING from run\""), "{history}");

    let after = image_ids(&e);
    assert_eq!(after.len(), before.len() + 1, "intermediate images left: {after:?}");
    assert!(e.ok(&["ps", "-aq"]).trim().is_empty(), "intermediate containers left");
    assert_eq!(e.ok(&["image", "inspect", "-f", "{{.Id}}", "built:alias"]), e.ok(&["image", "inspect", "-f", "{{.Id}}", "built:1"]));
}

/// The build cache: a second build reuses the COPY and RUN layers (the
/// RUN's random output is the first build's), a touched file still hits
/// (times are not inputs), a changed file misses from that step on, and
/// --no-cache runs everything again.
#[test]
fn build_cache_reuses_unchanged_steps() {
    let e = Engine::new("buildcache");
    let ctx = e.dir.path().join("ctx");
    write(&ctx, "f", "one\n");
    write(&ctx, "Dockerfile", "FROM busybox\nCOPY f /f\nRUN head -c 16 /dev/urandom | od -An -tx1 > /stamp\nCMD [\"cat\", \"/stamp\"]\n");
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "--network", "none", "-t", "cached"];
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        let out = e.ok(&args);
        (out.matches("Using cache").count(), e.run_busybox_image("cached", &[]))
    };
    let (hits, first) = build(&[]);
    assert_eq!(hits, 0);
    assert_eq!(build(&[]), (2, first.clone()), "an unchanged build");
    let f = std::fs::File::options().write(true).open(ctx.join("f")).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60)).unwrap();
    assert_eq!(build(&[]), (2, first.clone()), "only the file's time changed");
    write(&ctx, "f", "two\n");
    let (hits, changed) = build(&[]);
    assert_eq!(hits, 0, "a changed COPY source");
    assert_ne!(changed, first);
    assert_eq!(e.run_busybox_image("cached", &["cat", "/f"]), "two\n");
    let (hits, fresh) = build(&["--no-cache"]);
    assert_eq!(hits, 0, "--no-cache");
    assert_ne!(fresh, changed);
    assert_eq!(build(&[]).0, 2, "the --no-cache build was cached");
    assert!(e.ok(&["builder", "prune", "-f"]).starts_with("Deleted build cache objects: "));
    assert_eq!(build(&[]).0, 0, "builder prune forgets the cache");
}

/// Multi-stage: COPY --from a named stage (two layers: a merged view),
/// onto scratch; --target stops at a stage; -q prints only the id and
/// --iidfile writes it.
#[test]
fn multi_stage_build_and_target() {
    let e = Engine::new("multistage");
    let ctx = e.dir.path().join("ctx");
    write(
        &ctx,
        "build.Dockerfile",
        "FROM --platform=$BUILDPLATFORM busybox AS builder\n\
         ARG TARGETARCH\n\
         RUN mkdir /out && echo built > /out/artifact && echo $TARGETARCH > /out/arch\n\
         FROM scratch\n\
         COPY --from=builder /out/artifact /artifact\n\
         COPY --from=builder /bin/busybox /bin/busybox\n\
         ENTRYPOINT [\"/bin/busybox\"]\n\
         CMD [\"cat\", \"/artifact\"]\n",
    );
    let f = ctx.join("build.Dockerfile");
    let iid = e.dir.path().join("iid");
    let out = e.ok(&["build", "-q", "--network", "none", "--iidfile", iid.to_str().unwrap(), "-f", f.to_str().unwrap(), "-t", "multi", ctx.to_str().unwrap()]);
    let id = std::fs::read_to_string(&iid).unwrap();
    assert_eq!(out.trim(), id, "-q prints the id alone");
    assert_eq!(e.run_busybox_image("multi", &[]), "built\n");
    let info: serde_json::Value = serde_json::from_str(&e.ok(&["image", "inspect", "multi"])).unwrap();
    assert_eq!(info[0]["RootFS"]["Layers"].as_array().map(|l| l.len()), Some(2), "scratch + two COPY layers: {info}");

    e.ok(&["build", "--network", "none", "--target", "builder", "-f", f.to_str().unwrap(), "-t", "stage1", ctx.to_str().unwrap()]);
    assert_eq!(e.run_busybox_image("stage1", &["cat", "/out/artifact"]), "built\n");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(e.run_busybox_image("stage1", &["cat", "/out/arch"]), format!("{arch}\n"), "BuildKit's automatic TARGETARCH");
    let out = e.run(&["build", "--target", "nope", "-f", f.to_str().unwrap(), ctx.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
}

/// Bad Dockerfiles and contexts: a failing RUN (its code, nothing left
/// behind), an unknown instruction (its line), a source outside the
/// context, a symlink pointing out of it (resolved inside: the host's
/// file is never copied), a missing source.
#[test]
fn build_errors_name_the_problem_and_leave_nothing() {
    let e = Engine::new("builderr");
    let ctx = e.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", ctx.join("hostlink")).unwrap();
    let before = image_ids(&e);
    let cases: [(&str, &str); 6] = [
        ("FROM busybox\nRUN echo partial > /p\nRUN exit 3\n", "returned a non-zero code: 3"),
        ("FROM busybox\nRUN --mount=type=cache,target=/c true\n", "needs BuildKit"),
        ("FROM busybox\n\nFOO bar\n", "line 3: unknown instruction: FOO"),
        ("FROM busybox\nCOPY ../outside /x\n", "outside the build context"),
        ("FROM busybox\nCOPY hostlink /x\n", "hostlink"),
        ("FROM busybox\nCOPY missing /x\n", "missing"),
    ];
    for (df, want) in cases {
        write(&ctx, "Dockerfile", df);
        let out = e.run(&["build", "--network", "none", "-t", "bad", ctx.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{df:?}: want {want:?} in {err}");
        assert_eq!(image_ids(&e), before, "{df:?} left an image");
        assert!(e.ok(&["ps", "-aq"]).trim().is_empty(), "{df:?} left a container");
    }
}

trait RunImage {
    fn run_busybox_image(&self, image: &str, cmd: &[&str]) -> String;
}

impl RunImage for Engine {
    /// `run --rm --network none IMAGE CMD...`, its stdout (must succeed).
    fn run_busybox_image(&self, image: &str, cmd: &[&str]) -> String {
        let mut args = vec!["run", "--rm", "--network", "none", image];
        args.extend_from_slice(cmd);
        self.ok(&args)
    }
}

/// `--help` on every command prints docker's usage line (and the flags
/// where the command has some) on stdout and succeeds; before, most
/// commands answered "unknown flag: --help. See 'engine CMD --help'".
#[test]
fn every_command_answers_help() {
    let e = Engine::new("help");
    let cmds = [
        "run", "create", "start", "stop", "restart", "kill", "rm", "ps", "logs", "wait", "port", "update", "rename", "pause", "unpause", "exec",
        "import", "load", "save", "tag", "images", "history", "rmi", "pull", "push", "login", "logout", "top", "stats", "cp", "attach", "commit",
        "build", "export", "diff", "restore", "inspect", "version", "info", "volume", "network", "image", "container",
    ];
    for c in cmds {
        let out = e.run(&[c, "--help"]);
        let stdout = text(&out.stdout);
        assert!(out.status.success() && stdout.contains(&format!("Usage:  engine {c}")), "{c} --help ({:?}): {stdout}{}", out.status, text(&out.stderr));
    }
    let run = e.ok(&["run", "--help"]);
    assert!(run.contains("  -d, --detach\n") && run.contains("  -p, --publish string\n"), "{run}");
    // after the image, --help is the container's
    let out = e.run(&["run", "--rm", "--network", "none", "busybox", "echo", "--help"]);
    assert_eq!(text(&out.stdout), "--help\n");
}

/// The build context or the Dockerfile from stdin, as docker takes them:
/// `build - < Dockerfile` (no context), `build - < context.tar.gz`,
/// `build -f - DIR < Dockerfile`; not both from stdin.
#[test]
fn build_from_stdin() {
    let e = Engine::new("buildstdin");
    let with_stdin = |args: &[&str], input: &[u8]| {
        let mut c = e.cmd(args).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        // an engine that refuses the arguments exits without reading: EPIPE then
        let _ = std::io::Write::write_all(&mut c.stdin.take().unwrap(), input);
        c.wait_with_output().unwrap()
    };
    let out = with_stdin(&["build", "--network", "none", "-t", "s1", "-"], b"FROM busybox\nRUN echo no-context > /s\nCMD [\"cat\", \"/s\"]\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(e.run_busybox_image("s1", &[]), "no-context\n");

    let ctx = e.dir.path().join("ctx");
    write(&ctx, "Dockerfile", "FROM busybox\nCOPY data.txt /data.txt\nCMD [\"cat\", \"/data.txt\"]\n");
    write(&ctx, "data.txt", "from the tar\n");
    let tgz = e.dir.path().join("ctx.tar.gz");
    let out = run(Command::new("tar").arg("-C").arg(&ctx).arg("-czf").arg(&tgz).arg("."), T);
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    let out = with_stdin(&["build", "--network", "none", "-t", "s2", "-"], &std::fs::read(&tgz).unwrap());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(e.run_busybox_image("s2", &[]), "from the tar\n");

    let out = with_stdin(&["build", "--network", "none", "-t", "s3", "-f", "-", ctx.to_str().unwrap()], b"FROM busybox\nCOPY data.txt /d\nCMD [\"cat\", \"/d\"]\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(e.run_busybox_image("s3", &[]), "from the tar\n");
    let out = with_stdin(&["build", "-f", "-", "-"], b"FROM busybox\n");
    assert!(!out.status.success() && text(&out.stderr).contains("can't use stdin for both"), "{}", text(&out.stderr));
    // the unpacked context does not stay in the store
    let tmp = e.root().join("images/tmp");
    assert_eq!(std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0), 0, "left in {}", tmp.display());
}

/// ADD of a URL (here a server on loopback): the file lands under the
/// destination with docker's mode 0600 and is not extracted even when it
/// is an archive; a missing file is a clear error.
#[test]
fn add_fetches_urls() {
    let e = Engine::new("addurl");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    // answers until the test is done (at most 30 s, at most 10 requests)
    let server = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut served = 0;
        while served < 10 && std::time::Instant::now() < deadline {
            let Ok((mut c, _)) = listener.accept() else {
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            };
            served += 1;
            c.set_nonblocking(false).unwrap();
            let mut req = [0u8; 2048];
            let n = std::io::Read::read(&mut c, &mut req).unwrap_or(0);
            let line = String::from_utf8_lossy(&req[..n]).lines().next().unwrap_or("").to_string();
            let (status, body): (&str, &[u8]) = if line.starts_with("GET /files/tool.sh ") {
                ("200 OK", b"#!/bin/sh\necho tool\n")
            } else if line.starts_with("GET /files/data.tar.gz ") {
                ("200 OK", b"\x1f\x8b not really gzip")
            } else if line.starts_with("GET /stop ") {
                break;
            } else {
                ("404 Not Found", b"no")
            };
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = std::io::Write::write_all(&mut c, head.as_bytes());
            let _ = std::io::Write::write_all(&mut c, body);
        }
    });
    let ctx = e.dir.path().join("ctx");
    let base = format!("http://127.0.0.1:{port}/files");
    write(&ctx, "Dockerfile", &format!("FROM busybox\nADD {base}/tool.sh /usr/local/bin/\nADD {base}/data.tar.gz /opt/\n"));
    e.ok(&["build", "--network", "none", "-t", "fetched", ctx.to_str().unwrap()]);
    let out = e.run_busybox_image("fetched", &["sh", "-c", "stat -c %a /usr/local/bin/tool.sh; cat /usr/local/bin/tool.sh; head -c 2 /opt/data.tar.gz | od -An -tx1"]);
    assert_eq!(out, "600\n#!/bin/sh\necho tool\n 1f 8b\n");
    write(&ctx, "Dockerfile", &format!("FROM busybox\nADD {base}/missing.bin /x\n"));
    let out = e.run(&["build", "--network", "none", ctx.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out.stderr).contains("missing.bin") && text(&out.stderr).contains("404"), "{}", text(&out.stderr));
    let _ = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| std::io::Write::write_all(&mut s, b"GET /stop HTTP/1.1\r\n\r\n"));
    server.join().unwrap();
}

/// Here-documents (BuildKit's syntax, common in current Dockerfiles): a
/// RUN script, a here-document fed to a command (quoted: not expanded),
/// COPY of one as a file, `<<-` stripping tabs; a changed body misses the
/// cache.
#[test]
fn heredocs_in_run_and_copy() {
    let e = Engine::new("heredoc");
    let ctx = e.dir.path().join("ctx");
    let df = |marker: &str| {
        format!(
            "# syntax=docker/dockerfile:1\nFROM busybox\nRUN <<EOF\necho one > /h1\necho {marker} >> /h1\nEOF\nRUN cat > /h2 <<'END'\nliteral $HOME\nEND\n\
             COPY <<app.conf /etc/\na=1\napp.conf\nCOPY <<-EOF /x.txt\n\ttabbed\n\tEOF\n"
        )
    };
    write(&ctx, "Dockerfile", &df("two"));
    e.ok(&["build", "--network", "none", "-t", "hd", ctx.to_str().unwrap()]);
    assert_eq!(e.run_busybox_image("hd", &["cat", "/h1", "/h2", "/etc/app.conf", "/x.txt"]), "one\ntwo\nliteral $HOME\na=1\ntabbed\n");
    write(&ctx, "Dockerfile", &df("three"));
    let out = e.ok(&["build", "--network", "none", "-t", "hd", ctx.to_str().unwrap()]);
    assert_eq!(out.matches("Using cache").count(), 0, "the changed RUN script and the steps after it run again: {out}");
    assert_eq!(e.run_busybox_image("hd", &["cat", "/h1"]), "one\nthree\n");
    write(&ctx, "Dockerfile", "FROM busybox\nRUN cat <<EOF\nnever ends\n");
    let out = e.run(&["build", "--network", "none", ctx.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out.stderr).contains("unterminated heredoc EOF"), "{}", text(&out.stderr));
}

/// `import -c/--change` and `-m/--message`, as docker's: the config of a
/// rootfs tarball's image gets the changes; a bad change stores nothing.
#[test]
fn import_with_changes() {
    let e = Engine::new("importc");
    let tar = e.dir.path().join("busybox.tar");
    let before = image_ids(&e);
    let out = e.run(&["import", "-c", "RUN true", tar.to_str().unwrap(), "bad"]);
    assert!(!out.status.success() && text(&out.stderr).contains("not a valid change command"), "{}", text(&out.stderr));
    assert_eq!(image_ids(&e), before);
    e.ok(&["import", "-c", "CMD [\"sh\", \"-c\", \"echo $A\"]", "--change", "ENV A=changed", "-m", "from a tarball", tar.to_str().unwrap(), "imp:1"]);
    assert_eq!(e.run_busybox_image("imp:1", &[]), "changed\n");
    let info: serde_json::Value = serde_json::from_str(&e.ok(&["image", "inspect", "imp:1"])).unwrap();
    assert_eq!(info[0]["Comment"], "from a tarball");
}
