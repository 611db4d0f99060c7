//! cgroup statistics, in the units and meanings runc's `events --stats`
//! reports (bytes, nanoseconds).

use super::{parse, read_opt, Cgroup, Mode, Target};
use crate::error::{Context, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// One blkio counter: device, operation ("Read", "Write", "Sync", "Async",
/// "Discard", "Total"), value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// cgroup statistics for `events --stats`; see [`Stats::runc_json`] for
/// runc's JSON shape. Controllers the host lacks leave their fields zero.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Stats {
    /// Bytes in use (memory.usage_in_bytes / memory.current).
    pub memory_usage: u64,
    /// The limit in bytes (a huge number when there is none).
    pub memory_limit: u64,
    /// Peak usage (memory.max_usage_in_bytes / memory.peak).
    pub memory_max_usage: u64,
    /// Times the limit was hit (memory.failcnt / memory.events "max").
    pub memory_failcnt: u64,
    /// Page cache bytes (memory.stat "cache" / "file").
    pub memory_cache: u64,
    /// Memory + swap in use, and its limit (v1 memsw; on v2 computed so, as
    /// runc does).
    pub swap_usage: u64,
    pub swap_limit: u64,
    /// memory.stat as is.
    pub memory_stat: BTreeMap<String, u64>,
    /// CPU time in nanoseconds: total, user, system, per CPU (v1 only).
    pub cpu_usage_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
    pub cpu_percpu_ns: Vec<u64>,
    /// CFS throttling: periods, throttled periods, throttled time (ns).
    pub cpu_periods: u64,
    pub cpu_throttled_periods: u64,
    pub cpu_throttled_ns: u64,
    pub pids_current: u64,
    /// 0 when there is no limit.
    pub pids_limit: u64,
    /// Bytes and operations per device (blkio.*_recursive / io.stat).
    pub blkio_service_bytes: Vec<BlkioEntry>,
    pub blkio_serviced: Vec<BlkioEntry>,
}

impl Stats {
    /// The `data` object of runc's `events --stats` ("type":"stats").
    pub fn runc_json(&self) -> Value {
        let entries = |v: &[BlkioEntry]| -> Value {
            v.iter()
                .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
                .collect()
        };
        json!({
            "cpu": {
                "usage": {
                    "total": self.cpu_usage_ns,
                    "percpu": self.cpu_percpu_ns,
                    "kernel": self.cpu_system_ns,
                    "user": self.cpu_user_ns,
                },
                "throttling": {
                    "periods": self.cpu_periods,
                    "throttledPeriods": self.cpu_throttled_periods,
                    "throttledTime": self.cpu_throttled_ns,
                },
            },
            "memory": {
                "cache": self.memory_cache,
                "usage": {
                    "limit": self.memory_limit,
                    "usage": self.memory_usage,
                    "max": self.memory_max_usage,
                    "failcnt": self.memory_failcnt,
                },
                "swap": {"limit": self.swap_limit, "usage": self.swap_usage, "max": 0, "failcnt": 0},
                "kernel": {"limit": 0, "usage": 0, "max": 0, "failcnt": 0},
                "kernelTCP": {"limit": 0, "usage": 0, "max": 0, "failcnt": 0},
                "raw": self.memory_stat,
            },
            "pids": {"current": self.pids_current, "limit": self.pids_limit},
            "blkio": {
                "ioServiceBytesRecursive": entries(&self.blkio_service_bytes),
                "ioServicedRecursive": entries(&self.blkio_serviced),
            },
            "hugetlb": {},
            "intel_rdt": {},
            "network_interfaces": null,
        })
    }
}

/// A number file if it exists ("max" as `max`); other failures are errors.
fn num(dir: &Path, file: &str, max: u64) -> Result<Option<u64>> {
    match read_opt(dir, file)? {
        None => Ok(None),
        Some(s) if s.trim() == "max" => Ok(Some(max)),
        Some(s) => parse(dir, file, &s).map(Some),
    }
}

/// "key value" lines (memory.stat, cpu.stat, cpuacct.stat, cgroup.events).
pub fn parse_keyed(dir: &Path, file: &str, text: &str) -> Result<BTreeMap<String, u64>> {
    let mut map = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.split_whitespace();
        match (it.next(), it.next(), it.next()) {
            (Some(k), Some(v), None) => {
                map.insert(k.to_string(), parse(dir, file, v)?);
            }
            _ => return Err(bad_line(dir, file, line)),
        }
    }
    Ok(map)
}

fn bad_line(dir: &Path, file: &str, line: &str) -> Error {
    Error(format!(
        "parse {}: unexpected line {line:?}",
        dir.join(file).display()
    ))
}

fn keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    match read_opt(dir, file)? {
        None => Ok(BTreeMap::new()),
        Some(text) => parse_keyed(dir, file, &text),
    }
}

fn device(dir: &Path, file: &str, line: &str, dev: &str) -> Result<(u64, u64)> {
    let (maj, min) = dev
        .split_once(':')
        .ok_or_else(|| bad_line(dir, file, line))?;
    Ok((parse(dir, file, maj)?, parse(dir, file, min)?))
}

/// v1 blkio files: "8:0 Read 4096" lines and a final "Total N".
pub fn parse_blkio(dir: &Path, file: &str, text: &str) -> Result<Vec<BlkioEntry>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["Total", _] => {}
            [dev, op, value] => {
                let (major, minor) = device(dir, file, line, dev)?;
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value: parse(dir, file, value)?,
                });
            }
            _ => return Err(bad_line(dir, file, line)),
        }
    }
    Ok(out)
}

/// v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" ->
/// (bytes, operations) as v1 entries (Read/Write/Discard).
pub fn parse_io_stat(
    dir: &Path,
    file: &str,
    text: &str,
) -> Result<(Vec<BlkioEntry>, Vec<BlkioEntry>)> {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut f = line.split_whitespace();
        let dev = f.next().unwrap_or("");
        let (major, minor) = device(dir, file, line, dev)?;
        for kv in f {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad_line(dir, file, line))?;
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "dbytes" => (&mut bytes, "Discard"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                "dios" => (&mut ios, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: parse(dir, file, v)?,
            });
        }
    }
    Ok((bytes, ios))
}

pub(super) fn read(cg: &Cgroup) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(h) = cg.hierarchies.first() {
        std::fs::metadata(&h.dir).ctx(|| format!("open {}", h.dir.display()))?;
    }
    match cg.find("memory", "memory") {
        Some(Target::V1(d)) => memory_v1(d, &mut s)?,
        Some(Target::V2(d)) => memory_v2(d, &mut s)?,
        None => {}
    }
    if cg.mode != Mode::V2 {
        if let Some(Target::V1(d)) = cg.find("cpuacct", "") {
            cpuacct_v1(d, &mut s)?;
        } else if let Some(h) = cg.unified() {
            cpu_v2(&h.dir, &mut s)?; // usage_usec is in every cgroup2 cpu.stat
        }
        if let Some(Target::V1(d)) = cg.find("cpu", "") {
            let st = keyed(d, "cpu.stat")?;
            s.cpu_periods = st.get("nr_periods").copied().unwrap_or(0);
            s.cpu_throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
            s.cpu_throttled_ns = st.get("throttled_time").copied().unwrap_or(0);
        }
    } else if let Some(h) = cg.unified() {
        cpu_v2(&h.dir, &mut s)?;
    }
    if let Some(Target::V1(d) | Target::V2(d)) = cg.find("pids", "pids") {
        s.pids_current = num(d, "pids.current", 0)?.unwrap_or(0);
        s.pids_limit = num(d, "pids.max", 0)?.unwrap_or(0);
    }
    match cg.find("blkio", "io") {
        Some(Target::V1(d)) => blkio_v1(d, &mut s)?,
        Some(Target::V2(d)) => {
            if let Some(text) = read_opt(d, "io.stat")? {
                (s.blkio_service_bytes, s.blkio_serviced) = parse_io_stat(d, "io.stat", &text)?;
            }
        }
        None => {}
    }
    Ok(s)
}

fn memory_v1(d: &Path, s: &mut Stats) -> Result<()> {
    s.memory_usage = num(d, "memory.usage_in_bytes", u64::MAX)?.unwrap_or(0);
    s.memory_limit = num(d, "memory.limit_in_bytes", u64::MAX)?.unwrap_or(0);
    s.memory_max_usage = num(d, "memory.max_usage_in_bytes", u64::MAX)?.unwrap_or(0);
    s.memory_failcnt = num(d, "memory.failcnt", u64::MAX)?.unwrap_or(0);
    s.swap_usage = num(d, "memory.memsw.usage_in_bytes", u64::MAX)?.unwrap_or(0);
    s.swap_limit = num(d, "memory.memsw.limit_in_bytes", u64::MAX)?.unwrap_or(0);
    s.memory_stat = keyed(d, "memory.stat")?;
    s.memory_cache = s.memory_stat.get("cache").copied().unwrap_or(0);
    Ok(())
}

fn memory_v2(d: &Path, s: &mut Stats) -> Result<()> {
    s.memory_usage = num(d, "memory.current", u64::MAX)?.unwrap_or(0);
    s.memory_limit = num(d, "memory.max", u64::MAX)?.unwrap_or(0);
    s.memory_max_usage = num(d, "memory.peak", u64::MAX)?.unwrap_or(0);
    s.memory_failcnt = keyed(d, "memory.events")?.get("max").copied().unwrap_or(0);
    let swap = num(d, "memory.swap.current", u64::MAX)?.unwrap_or(0);
    s.swap_usage = swap.saturating_add(s.memory_usage);
    let swap_max = num(d, "memory.swap.max", u64::MAX)?.unwrap_or(0);
    s.swap_limit = swap_max.saturating_add(s.memory_limit);
    s.memory_stat = keyed(d, "memory.stat")?;
    s.memory_cache = s.memory_stat.get("file").copied().unwrap_or(0);
    Ok(())
}

fn cpuacct_v1(d: &Path, s: &mut Stats) -> Result<()> {
    s.cpu_usage_ns = num(d, "cpuacct.usage", u64::MAX)?.unwrap_or(0);
    if let Some(text) = read_opt(d, "cpuacct.usage_percpu")? {
        s.cpu_percpu_ns = text
            .split_whitespace()
            .map(|v| parse(d, "cpuacct.usage_percpu", v))
            .collect::<Result<_>>()?;
    }
    match (
        num(d, "cpuacct.usage_user", u64::MAX)?,
        num(d, "cpuacct.usage_sys", u64::MAX)?,
    ) {
        (Some(user), Some(sys)) => (s.cpu_user_ns, s.cpu_system_ns) = (user, sys),
        _ => {
            // cpuacct.stat counts clock ticks
            // SAFETY: sysconf has no memory-safety preconditions.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
            let st = keyed(d, "cpuacct.stat")?;
            s.cpu_user_ns = st
                .get("user")
                .copied()
                .unwrap_or(0)
                .saturating_mul(1_000_000_000 / hz);
            s.cpu_system_ns = st
                .get("system")
                .copied()
                .unwrap_or(0)
                .saturating_mul(1_000_000_000 / hz);
        }
    }
    Ok(())
}

fn cpu_v2(d: &Path, s: &mut Stats) -> Result<()> {
    let st = keyed(d, "cpu.stat")?;
    let us = |k: &str| st.get(k).copied().unwrap_or(0).saturating_mul(1000);
    s.cpu_usage_ns = us("usage_usec");
    s.cpu_user_ns = us("user_usec");
    s.cpu_system_ns = us("system_usec");
    s.cpu_periods = st.get("nr_periods").copied().unwrap_or(0);
    s.cpu_throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
    s.cpu_throttled_ns = us("throttled_usec");
    Ok(())
}

/// CFQ's blkio.io_service*_recursive when they say anything, else BFQ's,
/// else the throttle layer's (which counts every I/O), as runc reads them.
fn blkio_v1(d: &Path, s: &mut Stats) -> Result<()> {
    for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
        let bytes_file = format!("{prefix}io_service_bytes_recursive");
        let ios_file = format!("{prefix}io_serviced_recursive");
        let bytes = match read_opt(d, &bytes_file)? {
            Some(t) => parse_blkio(d, &bytes_file, &t)?,
            None => continue,
        };
        if bytes.is_empty() && prefix != "blkio.throttle." {
            continue;
        }
        s.blkio_service_bytes = bytes;
        if let Some(t) = read_opt(d, &ios_file)? {
            s.blkio_serviced = parse_blkio(d, &ios_file, &t)?;
        }
        break;
    }
    Ok(())
}
