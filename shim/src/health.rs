//! HEALTHCHECK: the shim runs the container's check command (`runtime exec
//! ID CMD...`, so with the container's env, cwd and user) every interval,
//! kills it after the timeout, and keeps docker's `State.Health` in
//! STATE-DIR/health.json: `starting` until a probe passes (failures in the
//! start period do not count), `healthy`, or `unhealthy` after `retries`
//! failures in a row; the last 5 probes with their output (4 KiB each).
//! The engine reads the file for `inspect` and `ps`. As in docker, an
//! unhealthy container is only reported, not restarted.

use crate::runtime::Runtime;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const FILE: &str = "health.json";
const OUTPUT: &str = "health.out";
/// The probe's pid in the container's namespace's host view, to kill it
/// on timeout (killing `runtime exec` alone would leave it running).
const PID: &str = "health.pid";
const KEEP: usize = 5;
const OUTPUT_MAX: u64 = 4096;

/// The check, from `--health-*` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The command run in the container.
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
}

impl Default for Config {
    fn default() -> Config {
        // docker's defaults.
        Config { cmd: Vec::new(), interval: Duration::from_secs(30), timeout: Duration::from_secs(30), start_period: Duration::ZERO, retries: 3 }
    }
}

/// Kills a probe: its process in the container (from the runtime's pid
/// file), then `runtime exec` (pid `runner`) itself.
fn kill_probe(dir: &Path, runner: libc::pid_t) {
    if let Some(pid) = std::fs::read_to_string(dir.join(PID)).ok().and_then(|s| s.trim().parse::<libc::pid_t>().ok()).filter(|p| *p > 1) {
        // SAFETY: kill has no memory effects; the pid is the probe's.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // SAFETY: as above, for our own child.
    unsafe { libc::kill(runner, libc::SIGKILL) };
}

/// One probe, as docker's `State.Health.Log` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// docker's `State.Health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: String,
    pub failing_streak: u32,
    pub log: VecDeque<Probe>,
}

struct Running {
    pid: libc::pid_t,
    began: Instant,
    start: String,
    timed_out: bool,
}

pub struct Health {
    cfg: Config,
    dir: PathBuf,
    state: State,
    /// When the container (re)started: the start period runs from here.
    since: Instant,
    next_at: Option<Instant>,
    running: Option<Running>,
    /// The container is not running: no probes, none recorded.
    stopped: bool,
}

impl Health {
    pub fn new(cfg: Config, dir: &Path) -> Health {
        let state = State { status: "starting".into(), failing_streak: 0, log: VecDeque::new() };
        Health { cfg, dir: dir.to_path_buf(), state, since: Instant::now(), next_at: None, running: None, stopped: true }
    }

    /// The container (re)started: checks begin again from `starting`.
    pub fn started(&mut self) {
        self.since = Instant::now();
        self.stopped = false;
        self.state.status = "starting".into();
        self.state.failing_streak = 0;
        self.next_at = Some(self.since + self.cfg.interval);
        self.save();
    }

    /// The container stopped: no more probes (a running one is killed).
    pub fn stopped(&mut self) {
        self.next_at = None;
        self.stopped = true;
        if let Some(r) = &self.running {
            kill_probe(&self.dir, r.pid);
        }
    }

    /// When `tick` has work next.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.running {
            Some(r) if !r.timed_out => Some(r.began + self.cfg.timeout),
            Some(_) => None,
            None => self.next_at,
        }
    }

    /// Starts a probe when one is due; kills one past its timeout.
    pub fn tick(&mut self, rt: &Runtime) -> Option<String> {
        let now = Instant::now();
        if let Some(r) = &mut self.running {
            if !r.timed_out && now >= r.began + self.cfg.timeout {
                r.timed_out = true;
                kill_probe(&self.dir, r.pid);
            }
            return None;
        }
        if self.next_at.is_none_or(|t| now < t) {
            return None;
        }
        self.next_at = None;
        let out = self.dir.join(OUTPUT);
        match rt.exec_detached(&self.cfg.cmd, &out, &self.dir.join(PID)) {
            Ok(pid) => {
                self.running = Some(Running { pid, began: now, start: crate::clock::now(), timed_out: false });
                None
            }
            Err(e) => {
                self.record(-1, format!("health check: {e}"), crate::clock::now());
                Some(format!("health check: {e}"))
            }
        }
    }

    /// Takes the exit of `pid` if it is the probe's; true then.
    pub fn reaped(&mut self, pid: libc::pid_t, code: i32) -> bool {
        if self.running.as_ref().is_none_or(|r| r.pid != pid) {
            return false;
        }
        let Some(r) = self.running.take() else { return false };
        if self.stopped {
            let _ = std::fs::remove_file(self.dir.join(OUTPUT));
            return true;
        }
        let mut output = String::new();
        if let Ok(f) = std::fs::File::open(self.dir.join(OUTPUT)) {
            let _ = f.take(OUTPUT_MAX).read_to_string(&mut output);
        }
        let _ = std::fs::remove_file(self.dir.join(OUTPUT));
        let _ = std::fs::remove_file(self.dir.join(PID));
        if r.timed_out {
            output = format!("Health check exceeded timeout ({:?})", self.cfg.timeout);
        }
        self.record(if r.timed_out { -1 } else { code }, output, r.start);
        true
    }

    fn record(&mut self, code: i32, output: String, start: String) {
        let now = Instant::now();
        if code == 0 {
            self.state.failing_streak = 0;
            self.state.status = "healthy".into();
        } else if now.duration_since(self.since) >= self.cfg.start_period || self.state.status != "starting" {
            self.state.failing_streak += 1;
            if self.state.failing_streak >= self.cfg.retries.max(1) {
                self.state.status = "unhealthy".into();
            }
        }
        self.state.log.push_back(Probe { start, end: crate::clock::now(), exit_code: code, output });
        while self.state.log.len() > KEEP {
            self.state.log.pop_front();
        }
        if self.next_at.is_none() && !self.stopped {
            self.next_at = Some(now + self.cfg.interval);
        }
        self.save();
    }

    fn save(&self) {
        if let Ok(text) = serde_json::to_vec(&self.state) {
            let _ = crate::record::write_atomic(&self.dir, FILE, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(retries: u32, start_period: Duration) -> (Health, PathBuf) {
        let dir = std::env::temp_dir().join(format!("skiff-health-{}-{retries}-{}", std::process::id(), start_period.as_millis()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = Config { cmd: vec!["true".into()], interval: Duration::from_millis(10), retries, start_period, ..Default::default() };
        (Health::new(cfg, &dir), dir)
    }

    fn saved(dir: &Path) -> State {
        serde_json::from_slice(&std::fs::read(dir.join(FILE)).unwrap()).unwrap()
    }

    #[test]
    fn streaks_turn_the_status() {
        let (mut h, dir) = health(2, Duration::ZERO);
        h.started();
        assert_eq!(saved(&dir).status, "starting");
        h.record(1, "no".into(), "t".into());
        assert_eq!((saved(&dir).status.as_str(), saved(&dir).failing_streak), ("starting", 1));
        h.record(1, "no".into(), "t".into());
        assert_eq!(saved(&dir).status, "unhealthy");
        h.record(0, "ok".into(), "t".into());
        let s = saved(&dir);
        assert_eq!((s.status.as_str(), s.failing_streak, s.log.len()), ("healthy", 0, 3));
        for _ in 0..10 {
            h.record(0, "ok".into(), "t".into());
        }
        assert_eq!(saved(&dir).log.len(), KEEP);
        let text = std::fs::read_to_string(dir.join(FILE)).unwrap();
        assert!(text.contains("\"FailingStreak\":0") && text.contains("\"ExitCode\":0"), "docker's field names: {text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let (mut h, dir) = health(1, Duration::from_secs(3600));
        h.started();
        h.record(1, "no".into(), "t".into());
        assert_eq!((saved(&dir).status.as_str(), saved(&dir).failing_streak), ("starting", 0));
        h.record(0, "ok".into(), "t".into());
        h.record(1, "no".into(), "t".into());
        assert_eq!(saved(&dir).status, "unhealthy", "after a pass the start period is over");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
