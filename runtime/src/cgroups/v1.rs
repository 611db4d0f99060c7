//! cgroup v1 controller files.

use super::{exists, read, read_num, write};
use crate::error::{err, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};
use std::path::Path;
use std::time::{Duration, Instant};

/// A new v1 cpuset cgroup starts with empty cpuset.cpus/mems, and adding a
/// task to it fails (ENOSPC) until they are set: copy the parent's.
pub(super) fn cpuset_inherit(parent: &Path, dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if read(dir, file)?.trim().is_empty() {
            let value = read(parent, file)?;
            let value = value.trim();
            if value.is_empty() {
                return err(format!(
                    "copy {} to {}: it is empty",
                    parent.join(file).display(),
                    dir.display()
                ));
            }
            write(dir, file, value)?;
        }
    }
    Ok(())
}

/// memory.limit_in_bytes, memory.memsw.limit_in_bytes (memory + swap, which
/// the kernel requires to stay >= the limit: written in the order that
/// keeps it so, as runc does), soft limit, swappiness, kmem.tcp, oom_control.
pub(super) fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    if limit == -1 && swap == 0 {
        swap = -1; // "unlimited memory" means unlimited swap too
    }
    if swap != 0 && !exists(dir, "memory.memsw.limit_in_bytes") {
        if swap > 0 {
            return err(format!(
                "set swap limit {swap}: {} is missing (kernel without swap accounting, see swapaccount=1)",
                dir.join("memory.memsw.limit_in_bytes").display()
            ));
        }
        swap = 0;
    }
    if let (true, Some(cap)) = (
        m.check_before_update() == Some(true),
        (limit > 0).then_some(limit),
    ) {
        let usage: u64 = read_num(dir, "memory.usage_in_bytes")?;
        if usage > cap as u64 {
            return err(format!(
                "memory limit {cap} is below the current usage {usage} of {}",
                dir.display()
            ));
        }
    }
    let set_limit = || -> Result<()> {
        if limit == 0 {
            return Ok(());
        }
        write(dir, "memory.limit_in_bytes", &limit.to_string()).map_err(|e| {
            let usage = read(dir, "memory.usage_in_bytes").unwrap_or_default();
            let peak = read(dir, "memory.max_usage_in_bytes").unwrap_or_default();
            crate::error::Error(format!(
                "{} (current usage {}, peak {})",
                e.0,
                usage.trim(),
                peak.trim()
            ))
        })
    };
    let set_swap = || -> Result<()> {
        if swap == 0 {
            return Ok(());
        }
        write(dir, "memory.memsw.limit_in_bytes", &swap.to_string())
    };
    if limit != 0 && swap != 0 {
        let current: u64 = read_num(dir, "memory.limit_in_bytes")?;
        if swap == -1 || current < swap as u64 {
            set_swap()?;
            set_limit()?;
        } else {
            set_limit()?;
            set_swap()?;
        }
    } else {
        set_limit()?;
        set_swap()?;
    }
    if let Some(r) = m.reservation().filter(|&r| r != 0) {
        write(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(t) = m.kernel_tcp().filter(|&t| t != 0) {
        write(dir, "memory.kmem.tcp.limit_in_bytes", &t.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return err(format!("memory swappiness {s}: must be between 0 and 100"));
        }
        write(dir, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    Ok(())
}

/// cpu.shares (checked: the kernel clamps it), cfs period/quota/burst,
/// rt period/runtime, idle.
pub(super) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(shares) = c.shares().filter(|&s| s != 0) {
        write(dir, "cpu.shares", &shares.to_string())?;
        let got: u64 = read_num(dir, "cpu.shares")?;
        if got != shares {
            return err(format!(
                "cpu shares {shares}: {} reads back {got} (the kernel allows 2 to 262144)",
                dir.join("cpu.shares").display()
            ));
        }
    }
    let quota = c.quota().unwrap_or(0);
    let mut period_pending = None;
    if let Some(period) = c.period().filter(|&p| p != 0) {
        if let Err(e) = write(dir, "cpu.cfs_period_us", &period.to_string()) {
            // A shorter period can break the parent's quota until the new
            // quota is in: retry after it.
            if quota == 0 || !e.0.contains("EINVAL") {
                return Err(e);
            }
            period_pending = Some(period);
        }
    }
    if quota != 0 {
        write(dir, "cpu.cfs_quota_us", &quota.to_string())?;
        if let Some(period) = period_pending {
            write(dir, "cpu.cfs_period_us", &period.to_string())?;
        }
    }
    if let Some(burst) = c.burst() {
        write(dir, "cpu.cfs_burst_us", &burst.to_string())?;
    }
    if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
        write(dir, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = c.realtime_runtime().filter(|&r| r != 0) {
        write(dir, "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(idle) = c.idle() {
        write(dir, "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

/// blkio weights (blkio.bfq.* under BFQ, else blkio.* of CFQ) and throttles.
pub(super) fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = exists(dir, "blkio.bfq.weight");
    let weight_file = if bfq {
        "blkio.bfq.weight"
    } else {
        "blkio.weight"
    };
    let weight_device_file = if bfq {
        "blkio.bfq.weight_device"
    } else {
        "blkio.weight_device"
    };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        if !exists(dir, weight_file) {
            return err(format!(
                "set blkio weight {w}: neither blkio.weight nor blkio.bfq.weight in {} (the I/O scheduler has no weights)",
                dir.display()
            ));
        }
        write(dir, weight_file, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        write(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            write(
                dir,
                weight_device_file,
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            write(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, list) in throttles {
        for t in list.iter().flatten() {
            write(
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// hugetlb.<size>.limit_in_bytes (and the reservation limit where the kernel
/// has one); a negative limit means none.
pub(super) fn hugetlb(dir: &Path, size: &str, limit: i64) -> Result<()> {
    let value = if limit < 0 {
        "-1".to_string()
    } else {
        limit.to_string()
    };
    write(dir, &format!("hugetlb.{size}.limit_in_bytes"), &value)?;
    let rsvd = format!("hugetlb.{size}.rsvd.limit_in_bytes");
    if exists(dir, &rsvd) {
        write(dir, &rsvd, &value)?;
    }
    Ok(())
}

/// freezer.state: writes FROZEN/THAWED and polls until the state is reached
/// (FREEZING in between), for at most 5 s; a freeze that does not finish is
/// undone.
pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut delay = Duration::from_micros(100);
    loop {
        write(dir, "freezer.state", want)?;
        let state = read(dir, "freezer.state")?;
        if state.trim() == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            if frozen {
                let _ = write(dir, "freezer.state", "THAWED");
            }
            return err(format!(
                "{} is still {} after 5 s",
                dir.join("freezer.state").display(),
                state.trim()
            ));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

pub(super) fn is_frozen(dir: &Path) -> bool {
    read(dir, "freezer.state").is_ok_and(|s| s.trim() == "FROZEN")
}
