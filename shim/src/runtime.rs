//! Driving a runc-compatible runtime: `create`, `start`, `kill`, `delete`,
//! and turning its stderr into the error text the engine shows.

use std::io::{self, Read};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// One container as the runtime knows it.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub path: PathBuf,
    pub root: Option<PathBuf>,
    pub id: String,
    pub bundle: PathBuf,
    /// `--log` for `create`, where the runtime's stderr is the container's.
    pub log: PathBuf,
}

/// The container's stdio as handed to `runtime create`.
pub struct CreateIo {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// The read end of whatever `stderr` writes to (non-blocking), read for
    /// the runtime's error text when create fails.
    pub errors: RawFd,
}

impl Runtime {
    fn command(&self) -> Command {
        let mut c = crate::event::command(&self.path);
        if let Some(r) = &self.root {
            c.arg("--root").arg(r);
        }
        c
    }

    fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "runtime".into())
    }

    /// `runtime exec --pid-file P ID CMD...` (the container's env, cwd and
    /// user), its output into `out`, not waited for: the caller reaps the
    /// pid.
    pub fn exec_detached(&self, cmd: &[String], out: &Path, pid_file: &Path) -> Result<libc::pid_t, String> {
        let f = std::fs::File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
        let f2 = f.try_clone().map_err(|e| format!("dup {}: {e}", out.display()))?;
        let _ = std::fs::remove_file(pid_file);
        let mut c = self.command();
        c.arg("exec").arg("--pid-file").arg(pid_file).arg(&self.id).args(cmd).stdin(Stdio::null()).stdout(f).stderr(f2);
        let child = c.spawn().map_err(|e| format!("run {} exec: {e}", self.path.display()))?;
        Ok(child.id() as libc::pid_t)
    }

    /// `runtime create --bundle B --pid-file F [--console-socket S] ID`.
    pub fn create(&self, io: CreateIo, console: Option<&Path>, pid_file: &Path) -> Result<(), String> {
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(pid_file);
        let mut c = self.command();
        c.arg("--log").arg(&self.log).args(["--log-format", "json", "create", "--bundle"]).arg(&self.bundle);
        c.arg("--pid-file").arg(pid_file);
        if let Some(s) = console {
            c.arg("--console-socket").arg(s);
        }
        c.arg(&self.id).stdin(io.stdin).stdout(io.stdout).stderr(io.stderr);
        let status = run(&mut c).map_err(|e| format!("run {} create: {e}", self.path.display()))?;
        if status.success() {
            return Ok(());
        }
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = crate::event::read(io.errors, &mut buf) {
            if n == 0 || text.len() > 64 * 1024 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
        }
        let mut msg = error_text(&String::from_utf8_lossy(&text));
        if msg.is_empty() {
            msg = log_errors(&std::fs::read_to_string(&self.log).unwrap_or_default());
        }
        if msg.is_empty() {
            msg = format!("{} create failed ({status})", self.name());
        }
        Err(msg)
    }

    /// Runs `runtime ARGS... ID [tail]`, its stderr as the error.
    fn simple(&self, args: &[&str], tail: &[&str]) -> Result<(), String> {
        let mut c = self.command();
        c.args(args).arg(&self.id).args(tail).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| format!("run {} {}: {e}", self.path.display(), args[0]))?;
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let status = child.wait().map_err(|e| format!("wait for {} {}: {e}", self.path.display(), args[0]))?;
        if status.success() {
            return Ok(());
        }
        let msg = error_text(&err);
        Err(if msg.is_empty() { format!("{} {} failed ({status})", self.name(), args[0]) } else { msg })
    }

    pub fn start(&self) -> Result<(), String> {
        self.simple(&["start"], &[])
    }

    pub fn kill(&self, signal: i32, all: bool) -> Result<(), String> {
        let sig = signal.to_string();
        if all {
            self.simple(&["kill", "--all"], &[&sig])
        } else {
            self.simple(&["kill"], &[&sig])
        }
    }

    pub fn delete(&self, force: bool) -> Result<(), String> {
        if force {
            self.simple(&["delete", "--force"], &[])
        } else {
            self.simple(&["delete"], &[])
        }
    }
}

fn run(c: &mut Command) -> io::Result<ExitStatus> {
    c.spawn()?.wait()
}

/// A logrus JSON line.
#[derive(serde::Deserialize)]
struct LogLine {
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    msg: Option<String>,
}

/// The message of one runtime log line: logrus JSON (`{"msg":...}`),
/// logrus text (`level=error msg="..."`) or plain text.
fn message(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    if line.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<LogLine>(line) {
            if !matches!(v.level.as_deref().unwrap_or("error"), "error" | "fatal" | "panic") {
                return None;
            }
            return v.msg;
        }
    }
    let at = if line.starts_with("msg=\"") { Some(0) } else { line.find(" msg=\"").map(|i| i + 1) };
    if let Some(i) = at {
        if line.contains("level=") && !line.contains("level=error") && !line.contains("level=fatal") {
            return None;
        }
        let quoted = &line[i + 4..];
        let mut out = String::new();
        let mut chars = quoted[1..].chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => break,
                },
                '"' => break,
                c => out.push(c),
            }
        }
        return Some(out);
    }
    Some(line.to_string())
}

/// The runtime's error text from what it wrote on stderr.
pub fn error_text(stderr: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for m in stderr.lines().filter_map(message) {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out.join("\n")
}

/// The error messages of a JSON `--log` file.
fn log_errors(log: &str) -> String {
    let errs: Vec<String> = log.lines().filter(|l| l.starts_with('{')).filter_map(message).collect();
    errs.last().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_from_runtimes() {
        assert_eq!(
            error_text("time=\"2024\" level=error msg=\"runc create failed: exec: \\\"nope\\\": not found\"\n"),
            "runc create failed: exec: \"nope\": not found"
        );
        assert_eq!(error_text("time=\"x\" level=warning msg=\"meh\"\nreal problem\n"), "real problem");
        assert_eq!(error_text("{\"level\":\"error\",\"msg\":\"bad\",\"time\":\"t\"}\n"), "bad");
        assert_eq!(
            error_text("runtime: mount proc: EPERM\nruntime: mount proc: EPERM\n"),
            "runtime: mount proc: EPERM"
        );
        assert_eq!(log_errors("{\"level\":\"warning\",\"msg\":\"w\"}\n{\"level\":\"error\",\"msg\":\"e1\"}\n"), "e1");
        assert_eq!(error_text("\n  \n"), "");
    }
}
