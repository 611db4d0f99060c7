//! Points in time given on the command line: `logs --since/--until`,
//! `events --since/--until` and the prune filters' `until=`. One reader for
//! all of them, taking what docker's GetTimestamp takes: an RFC 3339 time
//! (fraction and zone optional; no zone is UTC, skiff's hosts keep UTC), a
//! date, Unix seconds with an optional fraction, or a Go duration before now
//! (`90s`, `10m`, `1h30m`, `1.5h`, `250ms`).

use crate::error::{Error, Result};
use crate::images::config;

const NANOS: i64 = 1_000_000_000;

/// Nanoseconds since the Unix epoch of `v`; errors name `what` (the flag).
pub fn parse(v: &str, what: &str) -> Result<i64> {
    let bad = || Error(format!("invalid {what} value {v:?}: a time (RFC 3339, a date, or Unix seconds) or a duration like 10m, 1h30m, 90s"));
    if let Some(t) = rfc3339_nanos(v) {
        return Ok(t);
    }
    // A date, or a time without a zone.
    if v.len() == 10 || (v.len() >= 19 && !v.ends_with(['Z', 'z'])) {
        let full = if v.len() == 10 { format!("{v}T00:00:00Z") } else { format!("{v}Z") };
        if let Some(t) = rfc3339_nanos(&full) {
            return Ok(t);
        }
    }
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return decimal(v, NANOS).ok_or_else(bad);
    }
    let ago = duration(v).ok_or_else(bad)?;
    Ok(now() - ago)
}

/// Nanoseconds since the epoch now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// An RFC 3339 time with its fraction kept (log lines carry nanoseconds).
pub fn rfc3339_nanos(s: &str) -> Option<i64> {
    let secs = config::parse_rfc3339(s)?;
    let frac = s.get(19..).filter(|f| f.starts_with('.')).map_or("", |f| &f[1..]);
    let digits = &frac[..frac.bytes().take_while(u8::is_ascii_digit).count()];
    let nanos = decimal(&format!("0.{digits}"), NANOS)?;
    secs.checked_mul(NANOS)?.checked_add(nanos)
}

/// `n` or `n.f` times `unit`, rounded down; digits only.
fn decimal(v: &str, unit: i64) -> Option<i64> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return None;
    }
    let w: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut part = 0i64;
    let mut scale = unit;
    for c in frac.bytes().take(18) {
        scale /= 10;
        part += i64::from(c.checked_sub(b'0').filter(|d| *d <= 9)?) * scale;
    }
    w.checked_mul(unit)?.checked_add(part)
}

/// A Go duration (`time.ParseDuration` without the sign) in nanoseconds.
pub fn duration(v: &str) -> Option<i64> {
    let mut rest = v;
    let mut total = 0i64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
        let (num, tail) = rest.split_at(n);
        let u = tail.bytes().take_while(|c| !(c.is_ascii_digit() || *c == b'.')).count();
        let (unit, next) = tail.split_at(u);
        let unit = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS,
            "m" => 60 * NANOS,
            "h" => 3600 * NANOS,
            _ => return None,
        };
        total = total.checked_add(decimal(num, unit)?)?;
        rest = next;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_in_time() {
        let s = |v| parse(v, "--since").map(|t| t / NANOS);
        assert_eq!(s("2024-01-02T03:04:05Z").unwrap(), 1704164645);
        assert_eq!(parse("2024-01-02T03:04:05.5Z", "x").unwrap(), 1704164645 * NANOS + NANOS / 2);
        assert_eq!(s("2024-01-02T04:04:05+01:00").unwrap(), 1704164645);
        assert_eq!(s("2024-01-02T03:04:05").unwrap(), 1704164645);
        assert_eq!(s("2024-01-02").unwrap(), 1704153600);
        assert_eq!(s("1704164645").unwrap(), 1704164645);
        assert_eq!(parse("1704164645.25", "x").unwrap(), 1704164645 * NANOS + NANOS / 4);
        let now = now() / NANOS;
        for (v, ago) in [("1h30m", 5400), ("90s", 90), ("10m", 600), ("1.5h", 5400), ("2h0m3s", 7203)] {
            assert!((s(v).unwrap() - (now - ago)).abs() < 5, "{v}");
        }
        assert!((parse("250ms", "x").unwrap() - (now * NANOS - NANOS / 4)).abs() < 5 * NANOS);
        for bad in ["1x", "h", "abc", "5m3", "", "1..2", "2024-13-01", "-5m", "1.2.3"] {
            let e = parse(bad, "--until").unwrap_err().0;
            assert!(e.contains("invalid --until value"), "{bad}: {e}");
        }
    }

    #[test]
    fn log_times_keep_nanoseconds() {
        assert_eq!(rfc3339_nanos("2024-01-02T03:04:05.000000123Z"), Some(1704164645 * NANOS + 123));
        assert!(rfc3339_nanos("2024-01-02T03:04:05.100Z") > rfc3339_nanos("2024-01-02T03:04:05.09Z"));
        assert_eq!(rfc3339_nanos("nope"), None);
    }
}
