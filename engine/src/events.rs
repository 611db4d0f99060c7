//! `engine events`: docker's event stream, read from `<root>/events.jsonl`
//! (written by the engine and the shims, see `skiff_shim::lifecycle`):
//! with `--since` the past events first, then new ones as they come, until
//! `--until` passes (else until interrupted or stdout closes).

use crate::error::{err, Result};
use serde_json::Value;
use skiff_shim::lifecycle::FILE;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const KEYS: [&str; 7] = ["type", "event", "container", "image", "network", "volume", "label"];

/// Whether event `v` passes the `--filter`s.
fn matches(v: &Value, filters: &[(String, String)]) -> bool {
    let attr = |k: &str| v["Actor"]["Attributes"][k].as_str().map(String::from);
    let id = v["Actor"]["ID"].as_str().unwrap_or("");
    let kind = v["Type"].as_str().unwrap_or("");
    let given: Vec<(&str, &str)> = filters.iter().map(|(k, x)| (k.as_str(), x.as_str())).collect();
    crate::flags::filters_pass(&given, |key, x| match key {
        "type" => kind == x,
        "event" => v["Action"].as_str().is_some_and(|a| a == x || a.starts_with(&format!("{x}:"))),
        "container" => kind == "container" && (id.starts_with(x) || attr("name").as_deref() == Some(x)),
        "image" => attr("image").as_deref() == Some(x),
        "network" => kind == "network" && (id.starts_with(x) || attr("name").as_deref() == Some(x)),
        "volume" => kind == "volume" && id == x,
        _ => crate::flags::label_matches(x, attr),
    })
}

/// docker's default line: time, type, action, id, (attributes by name).
fn line(v: &Value) -> String {
    let ns = v["timeNano"].as_u64().unwrap_or(0);
    let time = crate::images::config::format_rfc3339((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as u32);
    let attrs: Vec<String> = v["Actor"]["Attributes"].as_object().into_iter().flatten().map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or(""))).collect();
    format!("{time} {} {} {} ({})\n", v["Type"].as_str().unwrap_or(""), v["Action"].as_str().unwrap_or(""), v["Actor"]["ID"].as_str().unwrap_or(""), attrs.join(", "))
}

fn point(v: &str, flag: &str) -> Result<u64> {
    Ok(crate::timestamp::parse(v, &format!("--{flag}"))?.max(0) as u64)
}

pub fn events(root: &Path, since: Option<&str>, until: Option<&str>, filters: &[String], format: Option<&str>) -> Result<()> {
    let mut fs = Vec::new();
    for f in filters {
        match f.split_once('=') {
            Some((k, v)) if KEYS.contains(&k) => fs.push((k.to_string(), v.to_string())),
            _ => return err(format!("invalid filter '{f}' (type, event, container, image, network, volume, label)")),
        }
    }
    // times are whole seconds: --until takes in all of its second
    let (since, until) = (since.map(|s| point(s, "since")).transpose()?, until.map(|u| point(u, "until").map(|t| t + 999_999_999)).transpose()?);
    let mut out = std::io::stdout().lock();
    let mut show = |text: &str| -> bool {
        for l in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(l) else { continue };
            let t = v["timeNano"].as_u64().unwrap_or(0);
            if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) || !matches(&v, &fs) {
                continue;
            }
            let shown = match crate::template::lines(std::slice::from_ref(&v), format) {
                Ok(Some(s)) => s,
                Ok(None) if format == Some("json") => format!("{v}\n"),
                _ => line(&v),
            };
            if out.write_all(shown.as_bytes()).and_then(|_| out.flush()).is_err() {
                return false; // stdout closed: the reader is done
            }
        }
        true
    };
    let path = root.join(FILE);
    // Without --since only what happens from now on is shown (docker).
    let mut offset = if since.is_some() {
        let mut past = std::fs::read(root.join(format!("{FILE}.1"))).unwrap_or_default();
        let current = std::fs::read(&path).unwrap_or_default();
        let len = current.len() as u64;
        past.extend(current);
        if !show(&String::from_utf8_lossy(&past)) {
            return Ok(());
        }
        len
    } else {
        std::fs::metadata(&path).map_or(0, |m| m.len())
    };
    let mut pending = String::new();
    loop {
        if until.is_some_and(|u| crate::timestamp::now() as u64 > u) {
            return Ok(());
        }
        // only the bytes written since the last look
        if let Ok(mut f) = std::fs::File::open(&path) {
            let len = f.metadata().map_or(0, |m| m.len());
            if len < offset {
                offset = 0; // rotated
            }
            let mut fresh = Vec::new();
            if std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset)).is_ok() && std::io::Read::read_to_end(&mut f, &mut fresh).is_ok() {
                offset += fresh.len() as u64;
                pending.push_str(&String::from_utf8_lossy(&fresh));
            }
        }
        if let Some(end) = pending.rfind('\n') {
            let complete: String = pending.drain(..=end).collect();
            if !show(&complete) {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_default_line() {
        let v: Value = serde_json::json!({"Type": "container", "Action": "die", "Actor": {"ID": "abc123", "Attributes": {"exitCode": "3", "image": "busybox", "name": "web", "tier": "front"}}, "timeNano": 1_700_000_000_123_456_789u64});
        let f = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        assert!(matches(&v, &[]));
        assert!(matches(&v, &f(&[("event", "start"), ("event", "die")])));
        assert!(!matches(&v, &f(&[("event", "die"), ("type", "network")])));
        assert!(matches(&v, &f(&[("container", "web"), ("container", "abc")])));
        assert!(matches(&v, &f(&[("label", "tier=front"), ("image", "busybox")])));
        assert!(!matches(&v, &f(&[("label", "tier=back")])));
        assert_eq!(line(&v), "2023-11-14T22:13:20.123456789Z container die abc123 (exitCode=3, image=busybox, name=web, tier=front)\n");
    }
}
