//! runc-style logging: errors and warnings to stderr and, with `--log`, to a
//! file as text or JSON lines (`{"level","msg","time"}`), which is what
//! containerd reads back when a runtime command fails.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

struct Sink {
    file: Option<PathBuf>,
    json: bool,
    debug: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

pub fn init(file: Option<PathBuf>, json: bool, debug: bool) {
    let _ = SINK.set(Sink { file, json, debug });
}

fn emit(level: &str, msg: &str) {
    let sink = SINK.get();
    let time = crate::state::now_rfc3339();
    match sink.and_then(|s| s.file.as_ref().map(|f| (f, s.json))) {
        Some((path, json)) => {
            let line = if json {
                serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
            } else {
                format!("time=\"{time}\" level={level} msg={msg:?}")
            };
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
                let _ = writeln!(f, "{line}");
            }
            // runc writes errors to stderr too, where the caller's user sees them.
            if level == "error" {
                eprintln!("runtime: {msg}");
            }
        }
        None => eprintln!("runtime: {}{msg}", if level == "error" { "" } else { "warning: " }),
    }
}

pub fn error(msg: &str) {
    emit("error", msg);
}

pub fn warn(msg: &str) {
    emit("warning", msg);
}

pub fn debug(msg: &str) {
    if SINK.get().is_some_and(|s| s.debug) {
        emit("debug", msg);
    }
}
