//! Busy serving threads on CPUs of their own. Left to itself the
//! scheduler's wake-affine placement often puts the proxy threads on one
//! CPU next to the peers they wake; measured on 2 cores (wrk keep-alive, 32
//! connections) pinning gave 3-6% more requests per second. A thread with
//! one or two connections (a bulk transfer) is better left free: pinned, it
//! moved ~10% less through iperf3, as it could not get away from the CPU
//! its two ends ran on. So a thread pins itself when it serves `PIN_AT`
//! connections and lets go when it is down to one. With a CPU hog on one
//! core pinning cost 0-5%; `--cpu-affinity none` leaves placement to the
//! scheduler. Each process starts at its own offset (its pid), so that
//! docker's one-proxy-per-port processes spread over the CPUs too.

/// Connections at which a thread pins itself.
pub const PIN_AT: usize = 4;

/// The CPUs this process may run on, in order, and where it starts.
#[derive(Debug)]
pub struct Cpus {
    list: Vec<usize>,
    offset: usize,
}

/// The CPUs this process may run on (std's `available_parallelism` also
/// parses mountinfo and cgroup files: 12 KiB more binary and resident memory).
pub fn allowed() -> Vec<usize> {
    // SAFETY: all-zero is a valid cpu_set_t, filled in by the kernel.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is valid for writes of its size.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    // SAFETY: set was filled in above; the index is below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

impl Cpus {
    /// None when the process may use one CPU only (nothing to spread).
    pub fn allowed() -> Option<Cpus> {
        let list = allowed();
        (list.len() > 1).then(|| Cpus { offset: std::process::id() as usize % list.len(), list })
    }

    /// The CPU of serving thread `i` (0 is the main thread).
    pub fn of(&self, i: usize) -> usize {
        self.list[(self.offset + i) % self.list.len()]
    }

    /// Serving thread `i`'s place: its CPU when busy, all of them else.
    pub fn placement(&self, i: usize) -> Placement {
        Placement { cpu: Some(self.of(i)), all: self.list.clone(), pinned: false }
    }
}

/// One serving thread's place: its CPU, the CPUs it goes back to, and
/// whether it is pinned now.
#[derive(Debug, Default)]
pub struct Placement {
    cpu: Option<usize>,
    all: Vec<usize>,
    pinned: bool,
}

impl Placement {
    /// Pins or frees the calling thread for its `open` connections.
    pub fn update(&mut self, open: usize) {
        let Some(cpu) = self.cpu else { return };
        if !self.pinned && open >= PIN_AT {
            self.pinned = set(&[cpu]);
        } else if self.pinned && open <= 1 {
            self.pinned = !set(&self.all);
        }
    }
}

/// Moves the calling thread onto `cpus`; false when the kernel refused (the
/// CPU went offline, a cgroup took it away): the thread stays where it is.
fn set(cpus: &[usize]) -> bool {
    // SAFETY: all-zero is a valid, empty cpu_set_t; every cpu is below CPU_SETSIZE.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: set is a valid cpu_set_t of the size given; 0 is this thread.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_spread_over_the_allowed_cpus() {
        let c = Cpus { list: vec![0, 2, 3], offset: 2 };
        assert_eq!((0..4).map(|i| c.of(i)).collect::<Vec<_>>(), [3, 0, 2, 3]);
    }

    /// The CPUs the calling thread may run on now.
    fn mine() -> Vec<usize> {
        // SAFETY: as in `allowed`, for this thread (tid 0).
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }, 0);
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
    }

    #[test]
    fn a_busy_thread_is_pinned_and_freed_when_it_is_not() {
        let Some(c) = Cpus::allowed() else { return assert_eq!(allowed().len(), 1) };
        let cpu = c.of(1);
        let mut p = c.placement(1);
        std::thread::spawn(move || {
            let all = mine();
            for (open, want) in [(1, all.clone()), (PIN_AT - 1, all.clone()), (PIN_AT, vec![cpu]), (2, vec![cpu]), (1, all.clone()), (0, all.clone())] {
                p.update(open);
                assert_eq!(mine(), want, "{open} connections");
            }
            let mut off = Placement::default();
            off.update(100);
            assert_eq!(mine(), all);
        })
        .join()
        .unwrap();
    }
}
