//! The shim's command line: parsed by the binary, built by the engine
//! ([`Options::to_args`]), so both sides agree on it.

use crate::protocol;
use crate::restart::Policy;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: shim --id ID --bundle DIR --state-dir DIR [options] [-- PROXY-COMMAND...]
  --id ID               container id (as given to the runtime)
  --bundle DIR          OCI bundle (config.json + rootfs)
  --state-dir DIR       the container's dir: shim.sock, shim.pid, exit, ctr.log
  --runtime PATH        runc-compatible runtime (default runc, from PATH)
  --runtime-root DIR    the runtime's --root
  --tty                 give the container a pty (runtime --console-socket)
  --stdin               keep the container's stdin open for attach clients
  --log-path FILE       json-file log (default STATE-DIR/ctr.log; `none`: no log)
  --log-max-size SIZE   rotate when the log reaches SIZE (docker units: 10m, 1g)
  --log-max-file N      log files kept, the current one included (default 1)
  --restart POLICY      no | on-failure[:MAX] | always | unless-stopped (default no)
  --stop-timeout SECS   grace before SIGKILL when the shim is told to stop (default 10)
  --ready-fd N          where the ready line goes (default 3)
  --health-cmd JSON     HEALTHCHECK command, a JSON list run with `runtime exec ID`
  --health-interval MS, --health-timeout MS, --health-start-period MS, --health-retries N
                        (docker's defaults: 30000, 30000, 0, 3)
  --no-start            runtime create only; a `start` request starts the program
  --foreground          do not detach (debugging)
  -- PROXY-COMMAND      the container's proxy (e.g. proxy --map ...), started after
                        create and stopped on exit; `{pid}` becomes the container's pid
The ready line: {\"ok\":true,\"pid\":N} or {\"ok\":false,\"error\":\"...\"}.";

/// Everything the shim is told on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub runtime: PathBuf,
    pub runtime_root: Option<PathBuf>,
    pub tty: bool,
    pub stdin: bool,
    /// The json-file log; None: no log.
    pub log: Option<PathBuf>,
    /// Rotate at this many bytes (None: never).
    pub log_max_size: Option<u64>,
    /// Files kept, the current one included (1: truncate at max-size).
    pub log_max_file: u32,
    pub restart: Policy,
    pub stop_timeout: u32,
    pub ready_fd: i32,
    pub no_start: bool,
    pub foreground: bool,
    /// The proxy's argv (empty: no proxy).
    pub proxy: Vec<String>,
    /// HEALTHCHECK, if any.
    pub health: Option<crate::health::Config>,
}

impl Options {
    /// Options with the defaults for the required values.
    pub fn new(id: impl Into<String>, bundle: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Options {
        let state_dir = state_dir.into();
        Options {
            id: id.into(),
            bundle: bundle.into(),
            log: Some(state_dir.join(protocol::LOG_FILE)),
            state_dir,
            runtime: PathBuf::from("runc"),
            runtime_root: None,
            tty: false,
            stdin: false,
            log_max_size: None,
            health: None,
            log_max_file: 1,
            restart: Policy::No,
            stop_timeout: 10,
            ready_fd: 3,
            no_start: false,
            foreground: false,
            proxy: Vec::new(),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.state_dir.join(protocol::SOCKET)
    }

    /// The command line that parses back into these options.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut kv = |k: &str, v: OsString| {
            a.push(k.into());
            a.push(v);
        };
        kv("--id", self.id.clone().into());
        kv("--bundle", self.bundle.clone().into());
        kv("--state-dir", self.state_dir.clone().into());
        kv("--runtime", self.runtime.clone().into());
        if let Some(r) = &self.runtime_root {
            kv("--runtime-root", r.clone().into());
        }
        kv("--log-path", self.log.clone().map(Into::into).unwrap_or_else(|| "none".into()));
        if let Some(s) = self.log_max_size {
            kv("--log-max-size", s.to_string().into());
        }
        kv("--log-max-file", self.log_max_file.to_string().into());
        kv("--restart", self.restart.to_string().into());
        kv("--stop-timeout", self.stop_timeout.to_string().into());
        kv("--ready-fd", self.ready_fd.to_string().into());
        if let Some(h) = &self.health {
            kv("--health-cmd", serde_json::to_string(&h.cmd).unwrap_or_default().into());
            kv("--health-interval", h.interval.as_millis().to_string().into());
            kv("--health-timeout", h.timeout.as_millis().to_string().into());
            kv("--health-start-period", h.start_period.as_millis().to_string().into());
            kv("--health-retries", h.retries.to_string().into());
        }
        for (on, flag) in [
            (self.tty, "--tty"),
            (self.stdin, "--stdin"),
            (self.no_start, "--no-start"),
            (self.foreground, "--foreground"),
        ] {
            if on {
                a.push(flag.into());
            }
        }
        if !self.proxy.is_empty() {
            a.push("--".into());
            a.extend(self.proxy.iter().map(OsString::from));
        }
        a
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Box<Options>),
    Version,
    Help,
}

/// Parses docker's size units (decimal, like go-units' FromHumanSize):
/// `1024`, `10k`, `10kb`, `1.5m`, `2g`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {s:?} (a number with an optional k, m, g, t suffix)");
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, mult): (&str, u64) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1_000),
        Some('m') => (&t[..t.len() - 1], 1_000_000),
        Some('g') => (&t[..t.len() - 1], 1_000_000_000),
        Some('t') => (&t[..t.len() - 1], 1_000_000_000_000),
        _ => (t, 1),
    };
    // Integer and fraction parts, without floating point (smaller binary).
    let (int, frac) = num.trim_end().split_once('.').unwrap_or((num.trim_end(), ""));
    let digits = |d: &str| d.chars().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || frac.len() > 12 {
        return Err(bad());
    }
    let whole: u64 = int.parse().map_err(|_| bad())?;
    let mut v = whole.checked_mul(mult).ok_or_else(bad)?;
    let mut scale = mult;
    for c in frac.chars() {
        scale /= 10;
        v += u64::from(c as u8 - b'0') * scale;
    }
    if v == 0 {
        return Err(format!("invalid size {s:?}: must be positive"));
    }
    Ok(v)
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("invalid value {v:?} for {flag}: not a number"))
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, String> {
    let mut id = None;
    let mut bundle = None;
    let mut state_dir: Option<PathBuf> = None;
    let mut log: Option<Option<PathBuf>> = None;
    let mut o = Options::new("", "", "");
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let arg = arg.into_vec();
        if arg == b"--" {
            for a in it.by_ref() {
                o.proxy.push(a.into_string().map_err(|a| format!("proxy argument {a:?} is not UTF-8"))?);
            }
            break;
        }
        let text = String::from_utf8_lossy(&arg).into_owned();
        if !text.starts_with('-') || text == "-" {
            return Err(format!("unexpected argument {text:?} (the proxy command goes after `--`)"));
        }
        let (name, inline) = match arg.iter().position(|&b| b == b'=') {
            Some(i) => {
                (String::from_utf8_lossy(&arg[..i]).into_owned(), Some(OsString::from_vec(arg[i + 1..].to_vec())))
            }
            None => (text.clone(), None),
        };
        let name = format!("--{}", name.trim_start_matches('-'));
        match name.as_str() {
            "--version" => return Ok(Command::Version),
            "--help" => return Ok(Command::Help),
            "--tty" | "--stdin" | "--no-start" | "--foreground" => {
                if inline.is_some() {
                    return Err(format!("{name} takes no value"));
                }
                match name.as_str() {
                    "--tty" => o.tty = true,
                    "--stdin" => o.stdin = true,
                    "--no-start" => o.no_start = true,
                    _ => o.foreground = true,
                }
                continue;
            }
            _ => {}
        }
        let value = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => return Err(format!("flag needs an argument: {name}")),
        };
        let v = value.to_string_lossy().into_owned();
        match name.as_str() {
            "--id" => id = Some(v),
            "--bundle" => bundle = Some(PathBuf::from(value)),
            "--state-dir" => state_dir = Some(PathBuf::from(value)),
            "--runtime" => o.runtime = PathBuf::from(value),
            "--runtime-root" => o.runtime_root = Some(PathBuf::from(value)),
            "--log-path" => log = Some((v != "none").then(|| PathBuf::from(value))),
            "--log-max-size" => o.log_max_size = Some(parse_size(&v).map_err(|e| format!("--log-max-size: {e}"))?),
            "--log-max-file" => {
                o.log_max_file = number(&name, &v)?;
                if o.log_max_file < 1 {
                    return Err("--log-max-file cannot be less than 1".into());
                }
            }
            "--restart" => o.restart = v.parse()?,
            "--stop-timeout" => o.stop_timeout = number(&name, &v)?,
            "--ready-fd" => o.ready_fd = number(&name, &v)?,
            "--health-cmd" => {
                let cmd: Vec<String> = serde_json::from_str(&v).map_err(|e| format!("--health-cmd: a JSON list of strings: {e}"))?;
                if cmd.is_empty() {
                    return Err("--health-cmd: empty command".into());
                }
                o.health.get_or_insert_with(Default::default).cmd = cmd;
            }
            "--health-interval" | "--health-timeout" | "--health-start-period" => {
                let ms = Duration::from_millis(number(&name, &v)?);
                let h = o.health.get_or_insert_with(Default::default);
                match name.as_str() {
                    "--health-interval" => h.interval = ms.max(Duration::from_millis(1)),
                    "--health-timeout" => h.timeout = ms.max(Duration::from_millis(1)),
                    _ => h.start_period = ms,
                }
            }
            "--health-retries" => o.health.get_or_insert_with(Default::default).retries = number(&name, &v)?,
            _ => return Err(format!("unknown flag {name}")),
        }
    }
    if o.health.as_ref().is_some_and(|h| h.cmd.is_empty()) {
        return Err("--health-* options need --health-cmd".into());
    }
    let id = id.ok_or("missing --id")?;
    if id.is_empty() || id.contains('/') || id.starts_with('-') || id.contains(char::is_whitespace) {
        return Err(format!("invalid container id {id:?}"));
    }
    o.id = id;
    o.bundle = bundle.ok_or("missing --bundle")?;
    let state_dir = state_dir.ok_or("missing --state-dir")?;
    o.log = log.unwrap_or_else(|| Some(state_dir.join(protocol::LOG_FILE)));
    o.state_dir = state_dir;
    Ok(Command::Run(Box::new(o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from))
    }

    fn opts(args: &[&str]) -> Options {
        match p(args).unwrap() {
            Command::Run(o) => *o,
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn parses_a_full_command_line() {
        let o = opts(&[
            "--id",
            "c1",
            "--bundle=/b",
            "--state-dir",
            "/s",
            "--runtime",
            "/usr/sbin/runc",
            "--runtime-root",
            "/r",
            "--tty",
            "--stdin",
            "--log-max-size",
            "10k",
            "--log-max-file=3",
            "--restart",
            "on-failure:2",
            "--stop-timeout",
            "4",
            "--ready-fd",
            "5",
            "--no-start",
            "--",
            "proxy",
            "--netns",
            "/proc/{pid}/ns/net",
        ]);
        assert_eq!(o.id, "c1");
        assert_eq!(o.bundle, PathBuf::from("/b"));
        assert_eq!(o.log, Some(PathBuf::from("/s/ctr.log")));
        assert_eq!(o.runtime_root, Some(PathBuf::from("/r")));
        assert!(o.tty && o.stdin && o.no_start && !o.foreground);
        assert_eq!((o.log_max_size, o.log_max_file), (Some(10_000), 3));
        assert_eq!(o.restart, Policy::OnFailure { max: 2 });
        assert_eq!((o.stop_timeout, o.ready_fd), (4, 5));
        assert_eq!(o.proxy, ["proxy", "--netns", "/proc/{pid}/ns/net"]);
        let back = match parse(o.to_args()).unwrap() {
            Command::Run(b) => *b,
            c => panic!("{c:?}"),
        };
        assert_eq!(back, o);
    }

    #[test]
    fn defaults_and_no_log() {
        let o = opts(&["--id", "x", "--bundle", "b", "--state-dir", "s", "--log-path", "none"]);
        assert_eq!(o.log, None);
        assert_eq!(o.runtime, PathBuf::from("runc"));
        assert_eq!((o.restart, o.ready_fd, o.log_max_file), (Policy::No, 3, 1));
        let again = match parse(o.to_args()).unwrap() {
            Command::Run(b) => *b,
            c => panic!("{c:?}"),
        };
        assert_eq!(again, o);
    }

    #[test]
    fn health_options_round_trip() {
        let o = opts(&[
            "--id", "x", "--bundle", "b", "--state-dir", "s", "--health-cmd", r#"["/bin/sh","-c","test -e /ok"]"#,
            "--health-interval", "200", "--health-retries", "2",
        ]);
        let h = o.health.clone().unwrap();
        assert_eq!(h.cmd, ["/bin/sh", "-c", "test -e /ok"]);
        assert_eq!((h.interval, h.timeout, h.retries), (Duration::from_millis(200), Duration::from_secs(30), 2));
        let again = match parse(o.to_args()).unwrap() {
            Command::Run(b) => *b,
            c => panic!("{c:?}"),
        };
        assert_eq!(again, o);
        assert!(p(&["--id", "x", "--bundle", "b", "--state-dir", "s", "--health-retries", "2"]).unwrap_err().contains("need --health-cmd"));
        assert!(p(&["--id", "x", "--bundle", "b", "--state-dir", "s", "--health-cmd", "true"]).unwrap_err().contains("JSON list"));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(p(&["--bundle", "b", "--state-dir", "s"]).unwrap_err(), "missing --id");
        assert_eq!(p(&["--id", "x", "--state-dir", "s"]).unwrap_err(), "missing --bundle");
        assert!(p(&["--id"]).unwrap_err().contains("flag needs an argument: --id"));
        assert!(p(&["--bogus", "1"]).unwrap_err().contains("unknown flag --bogus"));
        assert!(p(&["--id", "a/b", "--bundle", "b", "--state-dir", "s"]).unwrap_err().contains("invalid container id"));
        assert!(p(&["--restart", "maybe"]).unwrap_err().contains("maybe"));
        assert!(p(&["--log-max-size", "ten"]).unwrap_err().contains("\"ten\""));
        assert!(p(&["--log-max-file", "0"]).unwrap_err().contains("less than 1"));
        assert!(p(&["stray"]).unwrap_err().contains("stray"));
        assert!(p(&["--tty=1"]).unwrap_err().contains("takes no value"));
        assert_eq!(p(&["--version"]).unwrap(), Command::Version);
    }

    #[test]
    fn sizes_are_docker_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("10k"), Ok(10_000));
        assert_eq!(parse_size("10KB"), Ok(10_000));
        assert_eq!(parse_size("1.5m"), Ok(1_500_000));
        assert_eq!(parse_size("2g"), Ok(2_000_000_000));
        assert_eq!(parse_size("3mib"), Ok(3_000_000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("k").is_err());
        assert!(parse_size("1.2.3k").is_err());
        assert_eq!(parse_size("2.25k"), Ok(2_250));
    }
}
