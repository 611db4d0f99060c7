//! The engine <-> shim control protocol (version 1).
//!
//! Transport: the unix stream socket `shim.sock` in the container's state
//! dir (mode 0600). Each message is one JSON object on one line.
//!
//! 1. The client's first line is [`Request::Hello`]; the shim answers with
//!    its own protocol version (`min(client, VERSION)`). Any other first
//!    request gets an error reply.
//! 2. Then requests and replies alternate, one [`Reply`] per [`Request`],
//!    in order. `wait` holds its reply until the container's next exit.
//! 3. After a successful `attach` reply the connection switches to frames:
//!    shim -> client frames are `[kind, 0, 0, 0, len (u32, big endian)]`
//!    followed by `len` bytes (docker's stdcopy header), kinds
//!    [`FRAME_STDOUT`], [`FRAME_STDERR`] and finally [`FRAME_EXIT`] whose
//!    payload is an [`Exit`] as JSON, after which the shim closes the
//!    connection. Client -> shim bytes are raw stdin for the container
//!    (with `stdin: true`); the client's half-close (`shutdown(Write)`)
//!    closes the container's stdin (pipes mode).
//!
//! The start report on the ready fd is a [`Ready`] line; the exit record in
//! `<state dir>/exit` is an [`Exit`].

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The protocol version this shim speaks.
pub const VERSION: u32 = 1;

/// File names inside the container's state dir.
pub const SOCKET: &str = "shim.sock";
pub const PID_FILE: &str = "shim.pid";
pub const EXIT_FILE: &str = "exit";
pub const LOG_FILE: &str = "ctr.log";

/// Attach frame kinds (the first header byte).
pub const FRAME_STDOUT: u8 = 1;
pub const FRAME_STDERR: u8 = 2;
pub const FRAME_EXIT: u8 = 3;
/// Size of an attach frame header.
pub const FRAME_HEADER: usize = 8;

/// One request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Must be first; `version` is the highest version the client speaks.
    Hello { version: u32 },
    /// The container's [`State`].
    State,
    /// Blocks until the container's next exit (or answers at once when it
    /// has exited for good); the reply carries `exit`.
    Wait,
    /// `runtime kill [--all] ID signal`. `stop: true` marks a user stop:
    /// the restart policy no longer applies (and a pending restart is cancelled).
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
        #[serde(default)]
        stop: bool,
    },
    /// Switches this connection to attach frames (see the module docs).
    Attach {
        #[serde(default)]
        stdin: bool,
    },
    /// TIOCSWINSZ on the pty master (tty containers).
    Resize { rows: u16, cols: u16 },
    /// Memory, cpu and pids usage from the container's cgroups.
    Stats,
    /// `runtime start` for a shim started with `--no-start`; the reply carries `pid`.
    Start,
    /// Graceful stop (SIGTERM, `timeout` seconds or the shim's
    /// `--stop-timeout`, then SIGKILL), no restarts, then the shim exits.
    Shutdown {
        #[serde(default)]
        timeout: Option<u32>,
    },
    /// `engine update`: a new restart policy (docker's syntax), from the
    /// next exit on; the restart count carries on.
    Update {
        #[serde(default)]
        restart: Option<String>,
    },
}

/// One reply line. `ok: false` replies carry `error`; the other fields are
/// set by the requests that produce them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `hello`: the version both sides now speak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// `wait`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<Exit>,
    /// `stats`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// `start`: the container's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply { ok: true, ..Reply::default() }
    }

    pub fn error(msg: impl Into<String>) -> Reply {
        Reply { ok: false, error: Some(msg.into()), ..Reply::default() }
    }
}

/// Where the container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created by the runtime, program not started (`--no-start`).
    Created,
    Running,
    /// Exited; the restart policy will start it again after a backoff.
    Restarting,
    /// Exited for good; the shim is about to exit.
    Stopped,
}

/// The `state` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub status: Status,
    /// The container's init process (0 when none is alive).
    pub pid: i32,
    /// The shim's own pid.
    pub shim_pid: i32,
    /// The last exit, if the container exited at least once.
    #[serde(default)]
    pub exit: Option<Exit>,
    /// Restarts done by the restart policy so far.
    #[serde(default)]
    pub restarts: u32,
    /// When the current (or last) run started, RFC 3339 UTC.
    #[serde(default)]
    pub started: Option<String>,
    /// A stop was requested (`kill` with `stop`, `shutdown`, SIGTERM to the shim).
    #[serde(default)]
    pub stopping: bool,
    /// Log lines dropped because the log could not be written (full disk).
    #[serde(default)]
    pub log_dropped: u64,
}

/// How the container exited: the `wait` reply and the `exit` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// Docker's exit code: the program's status, or 128+N for signal N.
    pub code: i32,
    /// RFC 3339 UTC time with nanoseconds.
    pub time: String,
    /// The signal that killed the program, if one did.
    #[serde(default)]
    pub signal: Option<i32>,
}

/// The `stats` reply; a field is None when its controller is not there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub pid: i32,
    #[serde(default)]
    pub memory_usage: Option<u64>,
    #[serde(default)]
    pub memory_limit: Option<u64>,
    #[serde(default)]
    pub cpu_usage_ns: Option<u64>,
    #[serde(default)]
    pub pids_current: Option<u64>,
    #[serde(default)]
    pub pids_limit: Option<u64>,
    /// Bytes read from and written to block devices.
    #[serde(default)]
    pub block_read: Option<u64>,
    #[serde(default)]
    pub block_write: Option<u64>,
}

/// The line written to the ready fd: `{"ok":true,"pid":N,"shim_pid":M}` or
/// `{"ok":false,"error":"..."}` (for a failed create, the runtime's own text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub ok: bool,
    /// The container's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The shim's own pid (its process outlives the launcher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim_pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Ready {
    pub fn failed(error: impl Into<String>) -> Ready {
        Ready { ok: false, pid: None, shim_pid: None, error: Some(error.into()) }
    }
}

/// Reads `<state_dir>/exit`: how the container last exited, when the shim
/// recorded it (None when absent or unreadable).
pub fn read_exit(state_dir: &Path) -> Option<Exit> {
    let text = std::fs::read(state_dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Encodes one attach frame.
pub fn frame(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload[..len as usize]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_name_bad_input() {
        let r: Request = serde_json::from_str(r#"{"type":"kill","signal":15}"#).unwrap();
        assert_eq!(r, Request::Kill { signal: 15, all: false, stop: false });
        let r: Request = serde_json::from_str(r#"{"type":"hello","version":1}"#).unwrap();
        assert_eq!(r, Request::Hello { version: 1 });
        let r: Request = serde_json::from_str(r#"{"type":"shutdown"}"#).unwrap();
        assert_eq!(r, Request::Shutdown { timeout: None });
        let e = serde_json::from_str::<Request>(r#"{"type":"explode"}"#).unwrap_err().to_string();
        assert!(e.contains("explode"), "{e}");
        let e = serde_json::from_str::<Request>(r#"{"type":"resize","rows":1}"#).unwrap_err().to_string();
        assert!(e.contains("cols"), "{e}");
        for r in [Request::State, Request::Wait, Request::Attach { stdin: true }, Request::Resize { rows: 2, cols: 3 }]
        {
            let s = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        }
    }

    #[test]
    fn ready_lines_are_the_documented_shape() {
        let ok = Ready { ok: true, pid: Some(42), shim_pid: Some(41), error: None };
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"ok":true,"pid":42,"shim_pid":41}"#);
        let bad = Ready::failed("boom");
        assert_eq!(serde_json::to_string(&bad).unwrap(), r#"{"ok":false,"error":"boom"}"#);
        assert_eq!(serde_json::to_string(&Reply::ok()).unwrap(), r#"{"ok":true}"#);
    }

    #[test]
    fn frames_have_the_stdcopy_header() {
        let mut v = Vec::new();
        frame(FRAME_STDERR, b"abc", &mut v);
        assert_eq!(v, [2, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c']);
    }
}
