//! The restart policy (docker's `--restart`) and its backoff.

use std::fmt;
use std::time::Duration;

/// First backoff delay; it doubles per restart up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff (as docker does).
pub const RESET_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    No,
    /// Restart after a non-zero exit; `max` restarts at most (0: no limit).
    OnFailure {
        max: u32,
    },
    Always,
    /// Same as `always` for the shim; the engine treats it differently at boot.
    UnlessStopped,
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        let (name, max) = match s.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (s, None),
        };
        let p = match (name, max) {
            ("no", None) => Policy::No,
            ("always", None) => Policy::Always,
            ("unless-stopped", None) => Policy::UnlessStopped,
            ("on-failure", None) => Policy::OnFailure { max: 0 },
            ("on-failure", Some(m)) => match m.parse::<u32>() {
                Ok(max) => Policy::OnFailure { max },
                Err(_) => {
                    return Err(format!("invalid restart policy {s:?}: maximum retry count {m:?} is not a number"))
                }
            },
            ("no" | "always" | "unless-stopped", Some(_)) => {
                return Err(format!("invalid restart policy {s:?}: maximum retry count is only for on-failure"))
            }
            _ => return Err(format!("invalid restart policy {s:?} (no, on-failure[:max], always, unless-stopped)")),
        };
        Ok(p)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::No => f.write_str("no"),
            Policy::OnFailure { max: 0 } => f.write_str("on-failure"),
            Policy::OnFailure { max } => write!(f, "on-failure:{max}"),
            Policy::Always => f.write_str("always"),
            Policy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl Policy {
    /// Whether to start the container again after an exit with `code`,
    /// `restarts` restarts done so far, `stopped` when a user asked it to stop.
    pub fn should_restart(self, code: i32, restarts: u32, stopped: bool) -> bool {
        if stopped {
            return false;
        }
        match self {
            Policy::No => false,
            Policy::OnFailure { max } => code != 0 && (max == 0 || restarts < max),
            Policy::Always | Policy::UnlessStopped => true,
        }
    }
}

/// Exponential backoff between restarts.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    /// The delay before the next restart, given how long the last run lasted.
    pub fn delay(&mut self, ran: Duration) -> Duration {
        if ran >= RESET_AFTER {
            self.next = None;
        }
        let d = self.next.unwrap_or(FIRST_BACKOFF);
        self.next = Some((d * 2).min(MAX_BACKOFF));
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_policies() {
        assert_eq!("no".parse(), Ok(Policy::No));
        assert_eq!("always".parse(), Ok(Policy::Always));
        assert_eq!("unless-stopped".parse(), Ok(Policy::UnlessStopped));
        assert_eq!("on-failure".parse(), Ok(Policy::OnFailure { max: 0 }));
        assert_eq!("on-failure:3".parse(), Ok(Policy::OnFailure { max: 3 }));
        assert!("on-failure:x".parse::<Policy>().unwrap_err().contains("\"x\""));
        assert!("always:2".parse::<Policy>().is_err());
        assert!("sometimes".parse::<Policy>().unwrap_err().contains("sometimes"));
        for p in ["no", "always", "unless-stopped", "on-failure", "on-failure:5"] {
            assert_eq!(p.parse::<Policy>().unwrap().to_string(), p);
        }
    }

    #[test]
    fn decides_like_docker() {
        let of = Policy::OnFailure { max: 2 };
        assert!(of.should_restart(1, 0, false));
        assert!(of.should_restart(1, 1, false));
        assert!(!of.should_restart(1, 2, false));
        assert!(!of.should_restart(0, 0, false));
        assert!(Policy::OnFailure { max: 0 }.should_restart(3, 1000, false));
        assert!(Policy::Always.should_restart(0, 99, false));
        assert!(!Policy::Always.should_restart(1, 0, true));
        assert!(!Policy::No.should_restart(1, 0, false));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(5);
        assert_eq!(b.delay(short), Duration::from_millis(100));
        assert_eq!(b.delay(short), Duration::from_millis(200));
        assert_eq!(b.delay(short), Duration::from_millis(400));
        for _ in 0..20 {
            b.delay(short);
        }
        assert_eq!(b.delay(short), MAX_BACKOFF);
        assert_eq!(b.delay(Duration::from_secs(11)), Duration::from_millis(100));
    }
}
