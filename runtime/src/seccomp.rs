//! seccomp (config-linux.md "Seccomp"): `linux.seccomp` compiled to a
//! classic BPF program and loaded with seccomp(2), with libseccomp's and
//! runc's semantics so profiles written for runc (Docker's default) behave
//! the same:
//!
//! - the program checks `seccomp_data.arch`: one section per listed ABI this
//!   kernel can run (the native one always); any other arch gets the default
//!   action. On x86_64, x32 calls (bit 30 in the number) have their own section.
//! - syscall names the ABI lacks are skipped; a rule whose action is the
//!   default action is skipped (runc does, libseccomp refuses them).
//! - per syscall, an unconditional rule wins over every conditional one (the
//!   first unconditional rule if there are several); conditional rules are
//!   ORed, the first match giving the action; the arguments of one rule are
//!   ANDed; comparisons are on all 64 bits (on the low 32 bits for x86,
//!   x32 and arm, as libseccomp: there the high half is not the argument's).
//! - unless the default action allows, syscalls numbered above the highest
//!   one the profile names fail with ENOSYS (runc's stub), so a C library
//!   falls back from syscalls newer than the profile instead of failing.
//!
//! The program is a linear list of compares, ascending by number, sharing
//! `ret` instructions (see `bpf`): Docker's default profile is 1,181
//! instructions for x86_64 + x86 + x32 (730 for aarch64 + arm), well under
//! the kernel's 4,096. Since Linux 5.11 the kernel caches syscalls such a
//! program always allows, so they skip the filter entirely.
//!
//! When: compiled before the container reports ready (so `create` reports a
//! bad profile), installed as the last step before execve when
//! no_new_privs is set; without no_new_privs loading a filter needs
//! CAP_SYS_ADMIN, so then it is installed before the capabilities are
//! dropped (runc's order).

pub mod bpf;
pub mod docker;
pub mod syscalls;

use crate::error::{err, Error, Result};
use bpf::{Asm, Insn, Label, Op};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompFilterFlag, LinuxSeccompOperator, Spec,
};
pub use syscalls::Abi;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// The kernel's limit (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// A compiled filter and its seccomp(2) flags.
#[derive(Debug, Clone)]
pub struct Filter {
    pub prog: Vec<Insn>,
    pub flags: u32,
}

/// One argument comparison.
#[derive(Debug, Clone, Copy)]
struct Cmp {
    index: u8,
    op: Op,
    value: u64,
    value_two: u64,
}

/// One ABI's syscalls (number, rules) by number, and the highest number named.
type AbiRules = (Abi, Vec<(u32, Rules)>, Option<u32>);

/// What one syscall gets on one ABI.
#[derive(Default)]
struct Rules {
    unconditional: Option<u32>,
    conditional: Vec<(Vec<Cmp>, u32)>,
}

/// The `SECCOMP_RET_*` value of an OCI action.
fn ret_value(action: Action, errno_ret: Option<u32>, what: &dyn Fn() -> String) -> Result<u32> {
    let data = || -> Result<u32> {
        match errno_ret {
            None => Ok(libc::EPERM as u32),
            Some(n) if n <= 0xffff => Ok(n),
            Some(n) => err(format!("seccomp: {}: errnoRet {n} is out of range (0..=65535)", what())),
        }
    };
    Ok(match action {
        Action::ScmpActKill => RET_KILL_THREAD,
        Action::ScmpActKillProcess => RET_KILL_PROCESS,
        Action::ScmpActTrap => RET_TRAP,
        Action::ScmpActErrno => RET_ERRNO | data()?,
        Action::ScmpActTrace => RET_TRACE | data()?,
        Action::ScmpActLog => RET_LOG,
        Action::ScmpActAllow => RET_ALLOW,
        Action::ScmpActNotify => {
            return err(format!(
                "seccomp: {}: SCMP_ACT_NOTIFY is not supported by this runtime (no seccomp agent / listenerPath support)",
                what()
            ))
        }
    })
}

fn op(o: LinuxSeccompOperator) -> Op {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

/// The ABI an OCI architecture names, if a kernel of this build's
/// architecture can run it (others can never show up in seccomp_data).
fn abi_of(a: Arch, native: Abi) -> Option<Abi> {
    let abi = match a {
        Arch::ScmpArchNative => native,
        Arch::ScmpArchX86_64 => Abi::X86_64,
        Arch::ScmpArchX86 => Abi::I386,
        Arch::ScmpArchX32 => Abi::X32,
        Arch::ScmpArchAarch64 => Abi::Aarch64,
        Arch::ScmpArchArm => Abi::Arm,
        _ => return None,
    };
    Abi::family().contains(&abi).then_some(abi)
}

/// Makes a config.json that newer runtimes accept parse with oci-spec 0.6.7
/// (for `spec::load`, before deserializing): SCMP_ACT_KILL_THREAD becomes its
/// synonym SCMP_ACT_KILL; architectures 0.6.7 does not know (riscv64,
/// loongarch64, parisc, ...) are dropped, as no kernel this runtime runs on
/// produces them; SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, which only
/// concerns SCMP_ACT_NOTIFY (refused anyway), is dropped.
pub fn compat(config: &mut serde_json::Value) {
    let Some(s) = config.pointer_mut("/linux/seccomp").and_then(|s| s.as_object_mut()) else { return };
    let kill = |v: &mut serde_json::Value| {
        if v == "SCMP_ACT_KILL_THREAD" {
            *v = "SCMP_ACT_KILL".into();
        }
    };
    if let Some(v) = s.get_mut("defaultAction") {
        kill(v);
    }
    for rule in s.get_mut("syscalls").and_then(|v| v.as_array_mut()).into_iter().flatten() {
        if let Some(v) = rule.get_mut("action") {
            kill(v);
        }
    }
    if let Some(a) = s.get_mut("architectures").and_then(|v| v.as_array_mut()) {
        a.retain(|v| serde_json::from_value::<Arch>(v.clone()).is_ok());
    }
    if let Some(f) = s.get_mut("flags").and_then(|v| v.as_array_mut()) {
        f.retain(|v| v != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV");
    }
}

/// The OCI names of the architectures filters handle on this build (`features`).
pub fn features_archs() -> Vec<&'static str> {
    Abi::family()
        .iter()
        .map(|a| match a {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::I386 => "SCMP_ARCH_X86",
            Abi::X32 => "SCMP_ARCH_X32",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
            Abi::Arm => "SCMP_ARCH_ARM",
        })
        .collect()
}

/// Compiles `linux.seccomp`.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
    let Some(native) = Abi::native() else {
        return err(format!("seccomp is not supported on {} by this runtime", std::env::consts::ARCH));
    };
    let default = ret_value(s.default_action(), s.default_errno_ret(), &|| format!("defaultAction {}", s.default_action()))?;
    let listed: Vec<Abi> = s.architectures().iter().flatten().filter_map(|a| abi_of(*a, native)).collect();
    // Sections in the family's order, native first.
    let abis = Abi::family().iter().filter(|a| **a == native || listed.contains(a));

    let mut per_abi: Vec<AbiRules> = abis.map(|a| (*a, Vec::new(), None)).collect();
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        let what = || format!("syscalls[{i}] ({})", rule.names().join(","));
        let ret = ret_value(rule.action(), rule.errno_ret(), &what)?;
        let mut cmps = Vec::new();
        for a in rule.args().iter().flatten() {
            if a.index() > 5 {
                return err(format!("seccomp: {}: argument index {} is out of range (0..=5)", what(), a.index()));
            }
            cmps.push(Cmp {
                index: a.index() as u8,
                op: op(a.op()),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            });
        }
        for (abi, rules, max) in per_abi.iter_mut() {
            for name in rule.names() {
                let Some(nr) = abi.number(name) else { continue };
                *max = Some(max.map_or(nr, |m: u32| m.max(nr)));
                if ret == default {
                    continue;
                }
                let at = match rules.binary_search_by_key(&nr, |e| e.0) {
                    Ok(at) => at,
                    Err(at) => {
                        rules.insert(at, (nr, Rules::default()));
                        at
                    }
                };
                let r = &mut rules[at].1;
                if cmps.is_empty() {
                    r.unconditional.get_or_insert(ret);
                } else {
                    r.conditional.push((cmps.clone(), ret));
                }
            }
        }
    }

    let enosys = default != RET_ALLOW && default != RET_LOG && default != RET_ERRNO | libc::ENOSYS as u32;
    let mut a = Asm::new();
    // Backward: the last section first. x32 is entered from x86_64's section.
    let mut entries: Vec<(Abi, Label)> = Vec::new();
    for (abi, rules, max) in per_abi.iter().rev() {
        let split = match abi {
            Abi::X86_64 => Some(entries.iter().find(|(a, _)| *a == Abi::X32).map(|e| e.1)),
            _ => None,
        };
        let entry = section(&mut a, abi.is_64bit(), rules, default, max.filter(|_| enosys), split, *abi != Abi::X32);
        entries.push((*abi, entry));
    }
    let mut next = a.ret(default);
    for (abi, entry) in entries.iter().filter(|(abi, _)| *abi != Abi::X32) {
        next = a.jump(bpf::JEQ, abi.audit(), *entry, next);
    }
    a.ld(bpf::OFF_ARCH);
    let prog = a.finish();
    if prog.len() > MAX_INSNS {
        return err(format!(
            "seccomp: the profile compiles to {} BPF instructions, more than the kernel's limit of {MAX_INSNS}",
            prog.len()
        ));
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
        };
    }
    Ok(Filter { prog, flags })
}

/// One ABI's section; returns its entry (`wide`: 64-bit arguments). Program order: load the number
/// (`load`), on x86_64 send x32 numbers to `x32` (Some(None): the default),
/// ENOSYS above `enosys_max`, then one compare per syscall, ascending.
fn section(
    a: &mut Asm,
    wide: bool,
    rules: &[(u32, Rules)],
    default: u32,
    enosys_max: Option<u32>,
    x32: Option<Option<Label>>,
    load: bool,
) -> Label {
    let mut next = a.ret(default);
    for (nr, r) in rules.iter().rev() {
        let nr = *nr;
        let body = match r.unconditional {
            Some(ret) => a.ret(ret),
            None => {
                // Rules in order, each falling to the next when it does not match.
                let mut entry = a.ret(default);
                for (cmps, ret) in r.conditional.iter().rev() {
                    let mut pass = a.ret(*ret);
                    for c in cmps.iter().rev() {
                        pass = bpf::compare(a, wide, c.index, c.op, c.value, c.value_two, pass, entry);
                    }
                    entry = pass;
                }
                entry
            }
        };
        next = a.jump(bpf::JEQ, nr, body, next);
    }
    if let Some(max) = enosys_max {
        let t = a.ret(RET_ERRNO | libc::ENOSYS as u32);
        next = a.jump(bpf::JGT, max, t, next);
    }
    if let Some(x32) = x32 {
        let t = match x32 {
            Some(l) => l,
            None => a.ret(default),
        };
        next = a.jump(bpf::JGE, syscalls::X32_BIT, t, next);
    }
    if load {
        next = a.ld(bpf::OFF_NR);
    }
    next
}

impl Filter {
    /// Loads the filter into the calling thread (seccomp(2), or prctl on
    /// kernels before 3.17 when no flags are asked for).
    pub fn install(&self) -> Result<()> {
        let prog = libc::sock_fprog { len: self.prog.len() as u16, filter: self.prog.as_ptr() as *mut libc::sock_filter };
        // SAFETY: prog points to self.prog, alive for the call; Insn is sock_filter's layout.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if r < 0 && e.raw_os_error() == Some(libc::ENOSYS) && self.flags == 0 {
            // SAFETY: as above.
            if unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const libc::sock_fprog) } == 0
            {
                return Ok(());
            }
        }
        let detail = if r > 0 {
            format!("thread {r} could not be synchronized (SECCOMP_FILTER_FLAG_TSYNC)")
        } else {
            let e = std::io::Error::last_os_error();
            let name = e.raw_os_error().map(|n| nix::errno::Errno::from_raw(n).to_string()).unwrap_or_else(|| e.to_string());
            match e.raw_os_error() {
                Some(libc::EACCES) => format!("{name} (without no_new_privs this needs CAP_SYS_ADMIN)"),
                Some(libc::EINVAL) if self.flags != 0 => {
                    format!("{name} (flags {:#x} unsupported by this kernel?)", self.flags)
                }
                _ => name,
            }
        };
        Err(Error(format!("install seccomp filter ({} instructions): {detail}", self.prog.len())))
    }
}

/// The container's filter between compiling and loading it (runc's order):
/// compiled before the container reports ready; loaded before the
/// capabilities change when no_new_privs is off (loading then needs
/// CAP_SYS_ADMIN), else as the last step before execve.
pub struct Pending {
    filter: Option<Filter>,
    no_new_privs: bool,
}

impl Pending {
    /// For the container's process (`linux.seccomp`, `process.noNewPrivileges`).
    pub fn from_spec(spec: &Spec) -> Result<Pending> {
        let no_new_privs = spec.process().as_ref().and_then(|p| p.no_new_privileges()).unwrap_or(false);
        Pending::new(spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()), no_new_privs)
    }

    /// For any process (`exec` passes its own no_new_privs).
    pub fn new(seccomp: Option<&LinuxSeccomp>, no_new_privs: bool) -> Result<Pending> {
        let filter = match seccomp {
            Some(s) => Some(compile(s)?),
            None => None,
        };
        Ok(Pending { filter, no_new_privs })
    }

    /// Call before dropping capabilities and changing user: loads the
    /// filter now unless no_new_privs will be set.
    pub fn install_if_privileged(&mut self) -> Result<()> {
        if self.no_new_privs {
            return Ok(());
        }
        self.install()
    }

    /// Call right before execve (after no_new_privs is set): loads the
    /// filter unless it already is.
    pub fn install(&mut self) -> Result<()> {
        match self.filter.take() {
            Some(f) => f.install(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpf::run;
    use serde_json::json;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).expect("valid linux.seccomp")
    }

    fn nr(name: &str) -> u32 {
        Abi::native().unwrap().number(name).unwrap()
    }

    fn native() -> u32 {
        Abi::native().unwrap().audit()
    }

    fn eval(f: &Filter, name: &str, args: [u64; 6]) -> u32 {
        run(&f.prog, nr(name), native(), args)
    }

    #[test]
    fn actions_and_errno() {
        let f = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["getppid"], "action": "SCMP_ACT_KILL"},
                {"names": ["getuid"], "action": "SCMP_ACT_TRAP"},
                {"names": ["getgid"], "action": "SCMP_ACT_LOG"},
                {"names": ["geteuid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                {"names": ["getegid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["no_such_syscall", "umask"], "action": "SCMP_ACT_ALLOW"}
            ]
        })))
        .unwrap();
        assert_eq!(eval(&f, "read", [0; 6]), RET_ALLOW);
        assert_eq!(eval(&f, "write", [0; 6]), RET_ALLOW);
        assert_eq!(eval(&f, "umask", [0; 6]), RET_ALLOW);
        assert_eq!(eval(&f, "getpid", [0; 6]), RET_KILL_PROCESS);
        assert_eq!(eval(&f, "getppid", [0; 6]), RET_KILL_THREAD);
        assert_eq!(eval(&f, "getuid", [0; 6]), RET_TRAP);
        assert_eq!(eval(&f, "getgid", [0; 6]), RET_LOG);
        assert_eq!(eval(&f, "geteuid", [0; 6]), RET_TRACE | 7);
        assert_eq!(eval(&f, "getegid", [0; 6]), RET_ERRNO | 1);
        assert_eq!(eval(&f, "mkdirat", [0; 6]), RET_ERRNO | 13);
        assert_eq!(eval(&f, "openat", [0; 6]), RET_ERRNO | 38);
        // Another arch than the listed (native) one: the default action.
        assert_eq!(run(&f.prog, nr("read"), 0x1234, [0; 6]), RET_ERRNO | 38);
    }

    #[test]
    fn arguments_and_rule_order() {
        let f = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                // Two args ANDed: socket(AF_INET6, *, protocol > 5)
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
                 "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 5, "op": "SCMP_CMP_GT"}]},
                // clone without namespace flags (Docker's rule).
                {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 0, "value": 0x7e02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW"},
                // An unconditional rule wins over conditional ones, whatever the order.
                {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                 "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
                {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9},
                {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11}
            ]
        })))
        .unwrap();
        assert_eq!(eval(&f, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ERRNO | 13);
        assert_eq!(eval(&f, "personality", [0x1_ffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&f, "personality", [8, 0, 0, 0, 0, 0]), RET_ERRNO | 22);
        assert_eq!(eval(&f, "personality", [0x1_0000_0008, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&f, "personality", [0, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&f, "socket", [10, 1, 6, 0, 0, 0]), RET_ERRNO | 97);
        assert_eq!(eval(&f, "socket", [10, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&f, "socket", [2, 1, 6, 0, 0, 0]), RET_ALLOW);
        // The clone rule is unconditional ALLOW: the masked one is ignored (libseccomp).
        assert_eq!(eval(&f, "clone", [0x1000_0000, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&f, "dup", [3, 0, 0, 0, 0, 0]), RET_ERRNO | 9);
        assert_eq!(eval(&f, "dup", [4, 0, 0, 0, 0, 0]), RET_ERRNO | 9);
    }

    #[test]
    fn masked_eq_alone() {
        let f = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 0x7e02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
        })))
        .unwrap();
        assert_eq!(eval(&f, "clone", [0x0111_0011, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&f, "clone", [0x2000_0000, 0, 0, 0, 0, 0]), RET_ERRNO | 1); // CLONE_NEWPID
        assert_eq!(eval(&f, "clone", [0x4000_0000 | 0x11, 0, 0, 0, 0, 0]), RET_ERRNO | 1);
        // CLONE_NEWNET
    }

    #[test]
    fn notify_and_bad_values_are_refused_by_name() {
        let e = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})))
        .unwrap_err();
        assert!(e.0.contains("SCMP_ACT_NOTIFY") && e.0.contains("mkdir"), "{e}");
        let e = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})))
        .unwrap_err();
        assert!(e.0.contains("index 6"), "{e}");
        let e = compile(&profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}))).unwrap_err();
        assert!(e.0.contains("70000"), "{e}");
        // An unknown action never reaches us: the spec does not parse, naming it.
        let e = serde_json::from_value::<LinuxSeccomp>(json!({"defaultAction": "SCMP_ACT_BOGUS"})).unwrap_err();
        assert!(e.to_string().contains("SCMP_ACT_BOGUS"), "{e}");
    }

    #[test]
    fn compat_rewrites_what_oci_spec_0_6_7_rejects() {
        let mut v = json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_KILL_THREAD",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_RISCV64"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL_THREAD"}]}}});
        assert!(serde_json::from_value::<LinuxSeccomp>(v["linux"]["seccomp"].clone()).is_err());
        compat(&mut v);
        let s: LinuxSeccomp = serde_json::from_value(v["linux"]["seccomp"].clone()).unwrap();
        assert_eq!(compile(&s).unwrap().flags, 2);
        assert_eq!(v["linux"]["seccomp"]["syscalls"][0]["action"], "SCMP_ACT_KILL");
        assert_eq!(v["linux"]["seccomp"]["architectures"], json!(["SCMP_ARCH_X86_64"]));
        compat(&mut json!({"linux": {}}));
    }

    #[test]
    fn flags() {
        let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]})))
        .unwrap();
        assert_eq!(f.flags, 7);
    }

    #[test]
    fn enosys_above_the_newest_named_syscall() {
        let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "openat2"], "action": "SCMP_ACT_ALLOW"}]})))
        .unwrap();
        assert_eq!(run(&f.prog, nr("openat2") + 1, native(), [0; 6]), RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(eval(&f, "write", [0; 6]), RET_ERRNO | 1);
        let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]})))
        .unwrap();
        assert_eq!(run(&f.prog, 999, native(), [0; 6]), RET_ALLOW);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_sections() {
        let f = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": ["mkdir", "socketcall", "arch_prctl", "ioctl"], "action": "SCMP_ACT_ALLOW"}]
        })))
        .unwrap();
        let (x86_64, i386) = (Abi::X86_64.audit(), Abi::I386.audit());
        assert_eq!(run(&f.prog, 83, x86_64, [0; 6]), RET_ALLOW); // mkdir
        assert_eq!(run(&f.prog, 39, i386, [0; 6]), RET_ALLOW); // i386 mkdir
        assert_eq!(run(&f.prog, 83, i386, [0; 6]), RET_ERRNO | 1); // i386 83 is symlink
        assert_eq!(run(&f.prog, 102, i386, [0; 6]), RET_ALLOW); // socketcall
        assert_eq!(run(&f.prog, 384, i386, [0; 6]), RET_ALLOW); // i386 arch_prctl
        assert_eq!(run(&f.prog, 158, x86_64, [0; 6]), RET_ALLOW); // arch_prctl
        assert_eq!(run(&f.prog, syscalls::X32_BIT | 83, x86_64, [0; 6]), RET_ALLOW);
        assert_eq!(run(&f.prog, syscalls::X32_BIT | 514, x86_64, [0; 6]), RET_ALLOW); // x32 ioctl
        assert_eq!(run(&f.prog, 16, x86_64, [0; 6]), RET_ALLOW); // ioctl
        assert_eq!(run(&f.prog, syscalls::X32_BIT | 16, x86_64, [0; 6]), RET_ERRNO | 1); // not x32's ioctl
                                                                                         // Arguments: 64 bits on x86_64, the low 32 on x86 and x32.
        let f = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
        })))
        .unwrap();
        let high = [0xdead_0000_0000_0008u64, 0, 0, 0, 0, 0];
        assert_eq!(run(&f.prog, 135, x86_64, high), RET_ALLOW);
        assert_eq!(run(&f.prog, 135, x86_64, [8, 0, 0, 0, 0, 0]), RET_ERRNO | 1);
        assert_eq!(run(&f.prog, 136, i386, high), RET_ERRNO | 1);
        assert_eq!(run(&f.prog, syscalls::X32_BIT | 135, x86_64, high), RET_ERRNO | 1);
        // Without X32 and X86 listed, both get the default action.
        let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})))
        .unwrap();
        assert_eq!(run(&f.prog, 83, x86_64, [0; 6]), RET_ERRNO | 1);
        assert_eq!(run(&f.prog, syscalls::X32_BIT | 83, x86_64, [0; 6]), RET_ALLOW);
        assert_eq!(run(&f.prog, 39, i386, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn long_rule_lists_stay_correct() {
        // Many conditional rules on one syscall: its block is far longer
        // than a conditional jump reaches.
        let rules: Vec<_> = (0..200u64)
            .map(|i| {
                json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": i + 1,
                "args": [{"index": 1, "value": i << 32 | i, "op": "SCMP_CMP_EQ"}]})
            })
            .chain([json!({"names": ["read", "write", "close"], "action": "SCMP_ACT_ALLOW"})])
            .collect();
        let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": rules}))).unwrap();
        assert!(f.prog.len() > 1000);
        for i in 0..200u64 {
            assert_eq!(eval(&f, "personality", [0, i << 32 | i, 0, 0, 0, 0]), RET_ERRNO | (i as u32 + 1));
        }
        assert_eq!(eval(&f, "personality", [0, 1, 0, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(eval(&f, "read", [0; 6]), RET_ALLOW);
        assert_eq!(eval(&f, "close", [0; 6]), RET_ALLOW);
        assert_eq!(eval(&f, "dup", [0; 6]), RET_KILL_PROCESS);
    }


    /// A Docker-format profile file as `linux.seccomp` for `caps` here.
    fn docker_profile(path: &str, caps: &[&str]) -> serde_json::Value {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path} (package golang-github-containers-common): {e}"));
        let p: serde_json::Value = serde_json::from_str(&text).unwrap();
        let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        let t = docker::Target { caps: &caps, goarch: docker::host_goarch(), kernel: docker::host_kernel() };
        docker::to_oci(&p, &t).unwrap().unwrap()
    }

    #[test]
    fn dockers_default_profile() {
        let f = compile(&profile(docker_profile("/usr/share/containers/seccomp.json", &crate::capabilities::DOCKER_DEFAULT))).unwrap();
        eprintln!("Docker's default profile: {} BPF instructions", f.prog.len());
        assert!(f.prog.len() < MAX_INSNS / 2, "{} instructions", f.prog.len());
        for name in ["read", "write", "openat", "execve", "clone", "wait4", "exit_group", "mkdirat", "unshare", "keyctl"] {
            assert_eq!(eval(&f, name, [0; 6]), RET_ALLOW, "{name}");
        }
        assert_eq!(eval(&f, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&f, "personality", [8, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&f, "personality", [0x40_0000, 0, 0, 0, 0, 0]), RET_ERRNO | 38);
        assert_eq!(eval(&f, "sethostname", [0; 6]), RET_ERRNO | 1);
        assert_eq!(eval(&f, "bpf", [0; 6]), RET_ERRNO | 1);
        assert_eq!(eval(&f, "kexec_load", [0; 6]), RET_ERRNO | 1);
        assert_eq!(eval(&f, "add_key", [0; 6]), RET_ERRNO | 38);
        // In the allow list first, then denied without CAP_SYS_ADMIN: the
        // first unconditional rule wins (libseccomp).
        assert_eq!(eval(&f, "setns", [0; 6]), RET_ALLOW);
        assert_eq!(eval(&f, "socket", [16, 3, 9, 0, 0, 0]), RET_ALLOW); // CAP_AUDIT_WRITE is in
        #[cfg(target_arch = "x86_64")]
        {
            let i386 = Abi::I386.audit();
            assert_eq!(run(&f.prog, 102, i386, [0; 6]), RET_ALLOW); // socketcall
            assert_eq!(run(&f.prog, 192, i386, [0; 6]), RET_ALLOW); // mmap2
            assert_eq!(run(&f.prog, 74, i386, [0; 6]), RET_ERRNO | 1); // sethostname
            assert_eq!(run(&f.prog, syscalls::X32_BIT | 514, Abi::X86_64.audit(), [0; 6]), RET_ALLOW);
            // x32 ioctl
        }
        // Without CAP_AUDIT_WRITE, netlink audit sockets are refused.
        let caps: Vec<&str> = crate::capabilities::DOCKER_DEFAULT.iter().copied().filter(|c| *c != "CAP_AUDIT_WRITE").collect();
        let f = compile(&profile(docker_profile("/usr/share/containers/seccomp.json", &caps))).unwrap();
        assert_eq!(eval(&f, "socket", [16, 3, 9, 0, 0, 0]), RET_ERRNO | 22);
        assert_eq!(eval(&f, "socket", [16, 3, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&f, "socket", [2, 1, 9, 0, 0, 0]), RET_ALLOW);
    }

    const INSTALL_FAILED: i32 = 100;

    /// Forks; the child installs `f` (with no_new_privs) and runs `body`,
    /// whose return value is the child's exit code. Returns the wait status.
    fn in_child(f: &Filter, body: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only makes raw syscalls (no allocation, no
        // locks) and leaves with _exit.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let prog = libc::sock_fprog { len: f.prog.len() as u16, filter: f.prog.as_ptr() as *mut libc::sock_filter };
                if libc::syscall(libc::SYS_seccomp, 1, f.flags as libc::c_ulong, &prog) != 0 {
                    libc::_exit(INSTALL_FAILED);
                }
                libc::_exit(body());
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            status
        }
    }

    fn errno_of(r: libc::c_long) -> i32 {
        if r < 0 {
            // SAFETY: reading errno.
            unsafe { *libc::__errno_location() }
        } else {
            0
        }
    }

    #[test]
    fn the_kernel_runs_the_filters() {
        let f = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
            "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 0, "value": 0x1_0000_0005u64, "op": "SCMP_CMP_GE"},
                          {"index": 5, "value": 0xff00, "valueTwo": 0x1200, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 1, "value": 7, "op": "SCMP_CMP_NE"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["gettid"], "action": "SCMP_ACT_KILL_PROCESS"}
            ]
        })))
        .unwrap();
        let sys = |a: [u64; 6]| {
            // SAFETY: getppid ignores its arguments.
            errno_of(unsafe { libc::syscall(libc::SYS_getppid, a[0], a[1], a[2], a[3], a[4], a[5]) })
        };
        let status = in_child(&f, || {
            let checks = [
                sys([0x1_0000_0005, 7, 0, 0, 0, 0x1234]) == 13,
                sys([0x1_0000_0004, 7, 0, 0, 0, 0x1234]) == 0,
                sys([0x2_0000_0000, 7, 0, 0, 0, 0x2234]) == 0,
                sys([0x2_0000_0000, 8, 0, 0, 0, 0x2234]) == 22,
                sys([0x5, 7, 0, 0, 0, 0x1234]) == 0,
                // SAFETY: plain syscalls.
                errno_of(unsafe { libc::syscall(libc::SYS_getpid) }) == 38,
                errno_of(unsafe { libc::syscall(libc::SYS_getuid) }) == 0,
            ];
            checks.iter().position(|ok| !ok).map_or(0, |i| 10 + i as i32)
        });
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_ne!(libc::WEXITSTATUS(status), INSTALL_FAILED, "seccomp(SECCOMP_SET_MODE_FILTER) failed");
        assert_eq!(libc::WEXITSTATUS(status), 0, "check {} failed", libc::WEXITSTATUS(status) - 10);

        // KILL_PROCESS: the child dies of SIGSYS.
        // SAFETY: a plain syscall.
        let status = in_child(&f, || {
            unsafe { libc::syscall(libc::SYS_gettid) };
            0
        });
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS, "status {status:#x}");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_kernel_sees_i386_and_x32_calls() {
        // int 0x80 from a 64-bit process is an i386 syscall (AUDIT_ARCH_I386);
        // a number with bit 30 is an x32 one, filtered even where x32 is off.
        let f = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5,
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["getpid", "exit", "exit_group", "seccomp", "wait4"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 21}
            ]
        })))
        .unwrap();
        fn int80(nr: u32) -> i64 {
            let r: i64;
            // SAFETY: an i386 syscall without pointer arguments.
            unsafe { std::arch::asm!("int 0x80", inlateout("rax") nr as i64 => r, options(nostack)) };
            r
        }
        let status = in_child(&f, || {
            let checks = [
                int80(20) > 0,    // i386 getpid: allowed
                int80(64) == -21, // i386 getppid
                int80(24) == -5,  // i386 getuid: default
                // SAFETY: plain syscalls.
                unsafe { libc::syscall(0x4000_0000 | 110) } == -1 && errno_of(-1) == 21, // x32 getppid
                unsafe { libc::syscall(0x4000_0000 | 102) } == -1 && errno_of(-1) == 5,  // x32 getuid
                unsafe { libc::syscall(libc::SYS_getppid) } == -1 && errno_of(-1) == 21,
            ];
            checks.iter().position(|ok| !ok).map_or(0, |i| 10 + i as i32)
        });
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_ne!(libc::WEXITSTATUS(status), INSTALL_FAILED, "seccomp(SECCOMP_SET_MODE_FILTER) failed");
        assert_eq!(libc::WEXITSTATUS(status), 0, "check {} failed", libc::WEXITSTATUS(status) - 10);
    }
}
