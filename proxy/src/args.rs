//! The command line, parsed the way Go's `flag` package does for docker-proxy:
//! one or two dashes, `-flag value` or `-flag=value`, booleans only take
//! `=value`. skiff's own flags (`--map`, `--netns`, ...) follow the same rules.

use crate::mapping::{self, Mapping, Proto};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// What the proxy runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Everything to forward; the docker-proxy flags make one mapping.
    pub mappings: Vec<Mapping>,
    /// Dial backends from inside this network namespace.
    pub netns: Option<PathBuf>,
    /// Forget a UDP flow after this long without traffic.
    pub udp_timeout: Duration,
    /// Most UDP flows per listening port; the least recently active goes first.
    pub udp_max_flows: usize,
    /// Most TCP connections per listening port (0: no cap); more wait in the backlog.
    pub max_conns: usize,
    /// Index into `mappings` of the mapping whose listener is inherited on fd 4.
    pub listen_fd: Option<usize>,
    /// Threads serving TCP connections, the main one included (0: one per CPU).
    pub threads: usize,
    /// Pin each busy serving thread to a CPU of its own (`--cpu-affinity spread`, the default).
    pub pin: bool,
}

impl Config {
    /// Threads to serve TCP connections with.
    pub fn threads(&self) -> usize {
        match self.threads {
            0 => cpus(),
            n => n,
        }
    }
}

/// CPUs this process may run on.
fn cpus() -> usize {
    crate::affinity::allowed().len().max(1)
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(Config),
    Version,
    Help,
}

pub const USAGE: &str = "\
usage: proxy [flags]
docker-proxy flags (one mapping):
  -proto tcp|udp          protocol (default tcp)
  -host-ip IP             host address to listen on (default 0.0.0.0)
  -host-port PORT         host port
  -container-ip IP        backend address
  -container-port PORT    backend port
  -use-listen-fd          listen on the socket inherited on fd 4
  -v, -version            print the version and exit
skiff flags:
  --map [HOSTIP:]PORT[-LAST]:CONTAINERIP:PORT[-LAST][/tcp|/udp]   (repeatable; IPv6 in brackets)
  --netns PATH            dial backends inside this network namespace (e.g. /proc/PID/ns/net)
  --udp-timeout SECS      idle timeout of a UDP flow (default 90)
  --udp-max-flows N       UDP flows per port, oldest dropped first (default 1024)
  --max-conns N           TCP connections per port, 0 for no cap (default 0)
  --threads N             threads serving TCP connections (default: one per CPU, at most 64)
  --cpu-affinity spread|none   a CPU of its own for each busy one (default spread)
On start, fd 3 (when it is a pipe or socket) gets \"0\\n\" once listening or \"1\\n<error>\" on failure.
";

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse::<T>().map_err(|_| format!("invalid value {v:?} for flag -{flag}: not a number"))
}

fn boolean(flag: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(v) => Err(format!("invalid boolean value {v:?} for flag -{flag}")),
    }
}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut args = args.into_iter();
    let mut proto = Proto::Tcp;
    let mut host_ip: Option<IpAddr> = None;
    let mut host_port: Option<u16> = None;
    let mut container_ip: Option<IpAddr> = None;
    let mut container_port: Option<u16> = None;
    let mut use_listen_fd = false;
    let mut version = false;
    let mut maps = Vec::new();
    let mut netns = None;
    let mut udp_timeout = Duration::from_secs(90);
    let mut udp_max_flows = 1024usize;
    let mut max_conns = 0usize;
    let mut threads = 0usize;
    let mut pin = true;

    while let Some(arg) = args.next() {
        let arg = arg.into_string().map_err(|a| format!("argument {a:?} is not UTF-8"))?;
        if arg == "--" {
            if let Some(extra) = args.next() {
                return Err(format!("unexpected argument {:?}", extra.to_string_lossy()));
            }
            break;
        }
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')).filter(|f| !f.is_empty()) else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        if flag.starts_with('-') || flag.starts_with('=') {
            return Err(format!("bad flag syntax: {arg}"));
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (flag, None),
        };
        match name {
            "use-listen-fd" => {
                use_listen_fd = boolean(name, inline)?;
                continue;
            }
            "v" | "version" => {
                version = boolean(name, inline)?;
                continue;
            }
            "h" | "help" => return Ok(Command::Help),
            "proto" | "host-ip" | "host-port" | "container-ip" | "container-port" | "map" | "netns" | "udp-timeout"
            | "udp-max-flows" | "max-conns" | "threads" | "cpu-affinity" => {}
            _ => return Err(format!("flag provided but not defined: -{name}")),
        }
        let value = match inline {
            Some(v) => v.to_string(),
            None => args
                .next()
                .ok_or_else(|| format!("flag needs an argument: -{name}"))?
                .into_string()
                .map_err(|a| format!("value {a:?} of -{name} is not UTF-8"))?,
        };
        let v = value.as_str();
        let ctx = |e: String| format!("invalid value {v:?} for flag -{name}: {e}");
        match name {
            "proto" => proto = v.parse().map_err(ctx)?,
            "host-ip" => host_ip = Some(mapping::parse_ip(v).map_err(ctx)?),
            "host-port" => host_port = Some(mapping::parse_port(v).map_err(ctx)?),
            "container-ip" => container_ip = Some(mapping::parse_ip(v).map_err(ctx)?),
            "container-port" => container_port = Some(mapping::parse_port(v).map_err(ctx)?),
            "map" => maps.push(v.parse::<Mapping>()?),
            "netns" => netns = Some(PathBuf::from(v)),
            "udp-timeout" => {
                let secs: f64 = number(name, v)?;
                if !(secs > 0.0 && secs <= 1e9) {
                    return Err(ctx("want a positive number of seconds".into()));
                }
                udp_timeout = Duration::from_secs_f64(secs);
            }
            "udp-max-flows" => {
                udp_max_flows = number(name, v)?;
                if udp_max_flows == 0 {
                    return Err(ctx("want at least 1".into()));
                }
            }
            "max-conns" => max_conns = number(name, v)?,
            "threads" => {
                threads = number(name, v)?;
                if !(1..=crate::team::MAX_THREADS).contains(&threads) {
                    return Err(ctx(format!("want 1 to {}", crate::team::MAX_THREADS)));
                }
            }
            "cpu-affinity" => {
                pin = match v {
                    "spread" => true,
                    "none" => false,
                    _ => return Err(ctx("want spread or none".into())),
                }
            }
            _ => return Err(format!("flag provided but not defined: -{name}")),
        }
    }
    if version {
        return Ok(Command::Version);
    }

    let mut listen_fd = None;
    let docker = host_port.is_some() || container_ip.is_some() || container_port.is_some() || use_listen_fd;
    if docker {
        let container_ip = container_ip.ok_or("missing -container-ip")?;
        let container_port = container_port.ok_or("missing -container-port")?;
        if container_ip.is_unspecified() {
            return Err(format!("invalid -container-ip {container_ip}: unspecified address"));
        }
        let host_port = match host_port {
            Some(p) => p,
            // The inherited socket says where it listens.
            None if use_listen_fd => 0,
            None => return Err("missing -host-port".into()),
        };
        let host_ip = host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if use_listen_fd {
            listen_fd = Some(maps.len());
        }
        maps.push(Mapping { proto, host_ip, host_port, container_ip, container_port, count: 1 });
    } else if host_ip.is_some() {
        return Err("-host-ip needs -host-port, -container-ip and -container-port".into());
    }
    if maps.is_empty() {
        return Err("nothing to forward: give -host-port/-container-ip/-container-port or --map".into());
    }
    // An inherited socket's real address is known only once it is read.
    let checked: Vec<Mapping> =
        maps.iter().enumerate().filter(|(i, _)| Some(*i) != listen_fd).map(|(_, m)| m.clone()).collect();
    mapping::check_overlaps(&checked)?;
    Ok(Command::Run(Config { mappings: maps, netns, udp_timeout, udp_max_flows, max_conns, listen_fd, threads, pin }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse(args.iter().copied()) {
            Ok(Command::Run(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match parse(args.iter().copied()) {
            Err(e) => e,
            other => panic!("{args:?} should fail: {other:?}"),
        }
    }

    #[test]
    fn docker_proxy_command_line_in_all_spellings() {
        let want = Mapping {
            proto: Proto::Udp,
            host_ip: "127.0.0.1".parse().unwrap(),
            host_port: 8080,
            container_ip: "10.0.0.2".parse().unwrap(),
            container_port: 80,
            count: 1,
        };
        for args in [
            &[
                "-proto",
                "udp",
                "-host-ip",
                "127.0.0.1",
                "-host-port",
                "8080",
                "-container-ip",
                "10.0.0.2",
                "-container-port",
                "80",
            ][..],
            &[
                "--proto=udp",
                "--host-ip=127.0.0.1",
                "--host-port=8080",
                "-container-ip=10.0.0.2",
                "--container-port",
                "80",
            ][..],
        ] {
            let c = run(args);
            assert_eq!(c.mappings, vec![want.clone()]);
            assert_eq!(c.listen_fd, None);
            assert_eq!(c.udp_timeout, Duration::from_secs(90));
        }
        let c = run(&["-container-ip", "::1", "-container-port", "1", "-host-port", "2", "-use-listen-fd"]);
        assert_eq!(c.listen_fd, Some(0));
        assert_eq!(c.mappings[0].proto, Proto::Tcp);
        assert_eq!(c.mappings[0].host_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let c = run(&["-container-ip", "::1", "-container-port", "1", "-host-port", "2", "-use-listen-fd=false"]);
        assert_eq!(c.listen_fd, None);
        assert_eq!(parse(["-v"]), Ok(Command::Version));
        assert_eq!(parse(["--version"]), Ok(Command::Version));
        assert_eq!(parse(["-h"]), Ok(Command::Help));
    }

    #[test]
    fn skiff_flags() {
        let c = run(&[
            "--map",
            "0.0.0.0:8080:10.88.0.2:80/tcp",
            "--map=[::]:5353:10.88.0.2:53/udp",
            "-map",
            "0.0.0.0:9000-9099:10.88.0.2:9000-9099/tcp",
            "--netns",
            "/proc/1/ns/net",
            "--udp-timeout",
            "0.5",
            "--udp-max-flows=7",
            "--max-conns",
            "3",
            "--threads=5",
        ]);
        assert_eq!(c.mappings.len(), 3);
        assert_eq!(c.netns, Some(PathBuf::from("/proc/1/ns/net")));
        assert_eq!(c.udp_timeout, Duration::from_millis(500));
        assert_eq!((c.udp_max_flows, c.max_conns, c.threads()), (7, 3, 5));
        // By default, one thread per CPU it may run on.
        let c = run(&["--map", "8080:10.88.0.2:80"]);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim();
        let allowed: usize = list
            .split(',')
            .map(|r| match r.split_once('-') {
                Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
                None => 1,
            })
            .sum();
        assert_eq!(c.threads(), allowed, "CPUs allowed: {list}");
        assert!(c.pin, "threads are spread over the CPUs by default");
        assert!(!run(&["--map", "8080:10.88.0.2:80", "--cpu-affinity", "none"]).pin);
        assert!(err(&["--map", "1:10.0.0.1:1", "--cpu-affinity", "all"]).contains("want spread or none"));
    }

    #[test]
    fn bad_input_names_the_problem() {
        assert!(err(&["-bogus"]).contains("-bogus"));
        assert!(err(&["--map"]).contains("flag needs an argument: -map"));
        assert!(err(&["-host-port", "70000"]).contains("bad port \"70000\""));
        assert!(err(&["-host-port", "x"]).contains("bad port"));
        assert!(err(&["-container-ip", "300.1.1.1", "-container-port", "1", "-host-port", "1"])
            .contains("bad IP address \"300.1.1.1\""));
        assert!(err(&["-proto", "sctp"]).contains("unsupported protocol"));
        assert!(err(&["-host-port", "1", "-container-port", "1"]).contains("missing -container-ip"));
        assert!(err(&[]).contains("nothing to forward"));
        assert!(err(&["stray"]).contains("unexpected argument"));
        assert!(err(&["-use-listen-fd=maybe"]).contains("invalid boolean"));
        assert!(err(&["--udp-timeout", "0", "--map", "1:10.0.0.1:1"]).contains("positive"));
        assert!(
            err(&["--map", "0.0.0.0:80:10.0.0.1:80", "--map", "127.0.0.1:79-81:10.0.0.1:79-81"]).contains("overlap")
        );
        assert!(err(&["---x"]).contains("bad flag syntax"));
        assert!(err(&["--threads", "0", "--map", "1:10.0.0.1:1"]).contains("want 1 to 64"));
        assert!(err(&["--threads", "65", "--map", "1:10.0.0.1:1"]).contains("want 1 to 64"));
    }
}
