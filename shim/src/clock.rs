//! Wall-clock times as Go's `time.RFC3339Nano` prints them in UTC
//! (`2024-05-01T12:00:00.1234Z`: trailing zeros of the fraction dropped),
//! which is what docker writes in json-file logs.

use std::time::{SystemTime, UNIX_EPOCH};

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Formats seconds + nanoseconds since the epoch.
pub fn format(secs: i64, nanos: u32) -> String {
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    if nanos > 0 {
        let frac = format!(".{nanos:09}");
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Now, as RFC3339Nano UTC.
pub fn now() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format(t.as_secs() as i64, t.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(format(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(format(1_700_000_000, 123_456_789), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(format(1_700_000_000, 120_000_000), "2023-11-14T22:13:20.12Z");
        assert_eq!(format(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(format(4_102_444_799, 0), "2099-12-31T23:59:59Z");
        assert!(now().ends_with('Z'));
    }
}
