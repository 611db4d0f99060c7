//! cgroup v2 (unified hierarchy) controller files.

use super::{exists, read, read_num, write};
use crate::error::{err, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// cpu.shares (v1, 2..262144) -> cpu.weight (v2, 1..10000), runc's
/// conversion: `1 + ((shares - 2) * 9999) / 262142`; 0 stays 0 (unset).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262144) - 2) * 9999) / 262142
}

/// blkio.weight (v1, 10..1000) -> io.weight (v2, 1..10000), runc's
/// conversion: `1 + (weight - 10) * 9999 / 990`; 0 stays 0 (unset).
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight.clamp(10, 1000)) - 10) * 9999 / 990
}

/// The OCI swap value is memory + swap (v1 memsw); v2's memory.swap.max is
/// swap alone. Returns 0 for "leave alone", -1 for "max" (runc's rules).
pub fn swap_max(swap: i64, limit: i64) -> Result<i64> {
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if limit == 0 || limit == -1 {
        return err(format!(
            "memory swap {swap}: a swap limit needs a memory limit"
        ));
    }
    if limit < 0 || swap < limit {
        return err(format!(
            "memory swap {swap}: must be at least the memory limit {limit}"
        ));
    }
    Ok(swap - limit)
}

fn num(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

fn listed(dir: &Path, file: &str, controller: &str) -> Result<bool> {
    Ok(read(dir, file)?.split_whitespace().any(|c| c == controller))
}

/// The directories from the hierarchy root down to the parent of `path`.
fn ancestors(mount: &Path, path: &str) -> Vec<PathBuf> {
    let mut dir = mount.to_path_buf();
    let mut all = vec![dir.clone()];
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        dir.push(c);
        all.push(dir.clone());
    }
    all
}

/// Makes `controller` available in the cgroup at `path` by enabling it in
/// `cgroup.subtree_control` from the root down to the parent.
pub(super) fn enable(mount: &Path, path: &str, controller: &str) -> Result<()> {
    if listed(&mount.join(&path[1..]), "cgroup.controllers", controller)? {
        return Ok(());
    }
    for dir in ancestors(mount, path) {
        if !listed(&dir, "cgroup.subtree_control", controller)? {
            write(&dir, "cgroup.subtree_control", &format!("+{controller}"))?;
        }
    }
    Ok(())
}

/// Enables every controller down to the parent of `path`, as runc does on
/// v2; those that cannot be enabled are left out (a limit that needs one
/// fails later, naming it).
pub(super) fn enable_all(mount: &Path, path: &str, controllers: &[String]) {
    if controllers.is_empty() {
        return;
    }
    let all: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    for dir in ancestors(mount, path) {
        if write(&dir, "cgroup.subtree_control", &all.join(" ")).is_err() {
            for c in &all {
                let _ = write(&dir, "cgroup.subtree_control", c);
            }
        }
    }
}

/// memory.max, memory.swap.max (swap alone), memory.low; swappiness,
/// kernel memory and the OOM killer switch have no v2 files and are ignored.
pub(super) fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    let swap = swap_max(m.swap().unwrap_or(0), limit)?;
    if m.check_before_update() == Some(true) && limit > 0 {
        let usage: u64 = read_num(dir, "memory.current")?;
        if usage > limit as u64 {
            return err(format!(
                "memory limit {limit} is below the current usage {usage} of {}",
                dir.display()
            ));
        }
    }
    if swap != 0 {
        if exists(dir, "memory.swap.max") {
            write(dir, "memory.swap.max", &num(swap))?;
        } else if swap > 0 {
            return err(format!(
                "set swap limit: {} is missing (kernel without swap accounting)",
                dir.join("memory.swap.max").display()
            ));
        }
    }
    if limit != 0 {
        write(dir, "memory.max", &num(limit))?;
    }
    if let Some(r) = m.reservation().filter(|&r| r != 0) {
        write(dir, "memory.low", &num(r))?;
    }
    Ok(())
}

/// cpu.weight (from shares), cpu.max ("quota period"; a missing half keeps
/// its current value), cpu.max.burst, cpu.idle. Realtime limits do not
/// exist on v2.
pub(super) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if c.realtime_runtime().is_some_and(|r| r != 0) || c.realtime_period().is_some_and(|p| p != 0) {
        return err("cpu realtime runtime/period: not supported on cgroup v2");
    }
    if let Some(shares) = c.shares().filter(|&s| s != 0) {
        write(dir, "cpu.weight", &shares_to_weight(shares).to_string())?;
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    if quota != 0 || period != 0 {
        let current = read(dir, "cpu.max")?;
        let mut cur = current.split_whitespace();
        let (cur_quota, cur_period) = (cur.next().unwrap_or("max"), cur.next().unwrap_or("100000"));
        let q = match quota {
            0 => cur_quota.to_string(),
            q => num(q),
        };
        let p = if period != 0 {
            period.to_string()
        } else {
            cur_period.to_string()
        };
        write(dir, "cpu.max", &format!("{q} {p}"))?;
    }
    if let Some(burst) = c.burst() {
        write(dir, "cpu.max.burst", &burst.to_string())?;
    }
    if let Some(idle) = c.idle() {
        write(dir, "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

/// io.bfq.weight (BFQ, the blkio value as is) or io.weight (converted),
/// per-device weights, io.max throttles. Leaf weights have no v2 file.
pub(super) fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = exists(dir, "io.bfq.weight");
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        if bfq {
            write(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            write(dir, "io.weight", &blkio_weight_to_io_weight(w).to_string())?;
        }
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            if bfq {
                write(
                    dir,
                    "io.bfq.weight",
                    &format!("{}:{} {w}", d.major(), d.minor()),
                )?;
            } else {
                let v = blkio_weight_to_io_weight(w);
                write(
                    dir,
                    "io.weight",
                    &format!("{}:{} {v}", d.major(), d.minor()),
                )?;
            }
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for t in list.iter().flatten() {
            write(
                dir,
                "io.max",
                &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// hugetlb.<size>.max (and .rsvd.max where the kernel has it).
pub(super) fn hugetlb(dir: &Path, size: &str, limit: i64) -> Result<()> {
    let value = num(limit);
    write(dir, &format!("hugetlb.{size}.max"), &value)?;
    let rsvd = format!("hugetlb.{size}.rsvd.max");
    if exists(dir, &rsvd) {
        write(dir, &rsvd, &value)?;
    }
    Ok(())
}

/// The "frozen" key of cgroup.events.
fn frozen_event(dir: &Path) -> Result<Option<bool>> {
    let events = read(dir, "cgroup.events")?;
    Ok(events
        .lines()
        .find_map(|l| l.strip_prefix("frozen "))
        .map(|v| v.trim() == "1"))
}

/// cgroup.freeze, then polls cgroup.events until "frozen" agrees, for at
/// most 5 s; a freeze that does not finish is undone.
pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut delay = Duration::from_micros(100);
    loop {
        match frozen_event(dir)? {
            None => {
                return err(format!(
                    "{}: no \"frozen\" key",
                    dir.join("cgroup.events").display()
                ))
            }
            Some(f) if f == frozen => return Ok(()),
            Some(_) => {}
        }
        if Instant::now() >= deadline {
            if frozen {
                let _ = write(dir, "cgroup.freeze", "0");
            }
            return err(format!(
                "{} does not report frozen {} after 5 s",
                dir.join("cgroup.events").display(),
                u8::from(frozen)
            ));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

pub(super) fn is_frozen(dir: &Path) -> bool {
    matches!(frozen_event(dir), Ok(Some(true)))
}
