//! Device access rules (`linux.resources.devices`): written to the v1
//! devices controller, or compiled into an eBPF cgroup device filter on v2.

use super::write;
use crate::error::{err, Context, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Access bits, as the kernel's BPF_DEVCG_ACC_*.
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
const ALL: u8 = MKNOD | READ | WRITE;

/// One rule: `kind` is 'a' (all devices), 'c' or 'b'; None is a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    const fn new(
        allow: bool,
        kind: char,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    ) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    /// From the OCI rule: no type is "a", "u" is "c", no (or empty)
    /// access is "rwm", a negative major/minor is a wildcard.
    pub fn from_oci(d: &LinuxDeviceCgroup) -> Result<Rule> {
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => 'a',
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
            Some(LinuxDeviceType::B) => 'b',
            Some(LinuxDeviceType::P) => {
                return err(format!(
                    "device rule \"{d}\": type p is not a device cgroup type"
                ))
            }
        };
        let num = |n: Option<i64>| -> Result<Option<u32>> {
            match n {
                Some(n) if n >= 0 => u32::try_from(n).map(Some).map_err(|_| {
                    crate::error::Error(format!("device rule \"{d}\": number {n} out of range"))
                }),
                _ => Ok(None),
            }
        };
        let mut access = 0;
        for c in d.access().as_deref().unwrap_or("").chars() {
            access |= match c {
                'r' => READ,
                'w' => WRITE,
                'm' => MKNOD,
                _ => {
                    return err(format!(
                        "device rule \"{d}\": invalid access {c:?} (expected r, w, m)"
                    ))
                }
            };
        }
        if access == 0 {
            access = ALL;
        }
        Ok(Rule::new(
            d.allow(),
            kind,
            num(d.major())?,
            num(d.minor())?,
            access,
        ))
    }

    /// The v1 devices.allow/deny line: "a", or "c 1:3 rwm".
    pub fn v1_line(&self) -> String {
        if self.kind == 'a' {
            return "a".to_string();
        }
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        let mut acc = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        format!("{} {}:{} {acc}", self.kind, n(self.major), n(self.minor))
    }

    fn same_device(&self, o: &Rule) -> bool {
        self.kind == o.kind && self.major == o.major && self.minor == o.minor
    }
}

/// runc's default allowed devices, appended after the config's rules.
pub const DEFAULT_ALLOWED: &[Rule] = &[
    Rule::new(true, 'c', None, None, MKNOD),
    Rule::new(true, 'b', None, None, MKNOD),
    Rule::new(true, 'c', Some(1), Some(3), ALL), // /dev/null
    Rule::new(true, 'c', Some(1), Some(8), ALL), // /dev/random
    Rule::new(true, 'c', Some(1), Some(7), ALL), // /dev/full
    Rule::new(true, 'c', Some(5), Some(0), ALL), // /dev/tty
    Rule::new(true, 'c', Some(1), Some(5), ALL), // /dev/zero
    Rule::new(true, 'c', Some(1), Some(9), ALL), // /dev/urandom
    Rule::new(true, 'c', Some(136), None, ALL),  // /dev/pts/*
    Rule::new(true, 'c', Some(5), Some(2), ALL), // /dev/ptmx
    Rule::new(true, 'c', Some(10), Some(200), ALL), // /dev/net/tun
];

/// What runc applies: deny everything, the config's rules in order, then
/// the default allowed devices.
pub fn with_defaults(spec: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut all = vec![Rule::new(false, 'a', None, None, ALL)];
    for d in spec {
        all.push(Rule::from_oci(d)?);
    }
    all.extend_from_slice(DEFAULT_ALLOWED);
    Ok(all)
}

/// Writes the rules, in order, to devices.allow / devices.deny.
pub fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    for r in rules {
        write(
            dir,
            if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            },
            &r.v1_line(),
        )?;
    }
    Ok(())
}

/// The state the v1 controller ends in after `rules`: a default and
/// exceptions to it (kernel semantics: "a" resets; a rule against the
/// default adds or widens an exception for exactly that device; a rule
/// agreeing with the default takes access away from such an exception).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub default_allow: bool,
    pub exceptions: Vec<Rule>,
}

pub fn emulate(rules: &[Rule]) -> Effective {
    let mut st = Effective {
        default_allow: true,
        exceptions: Vec::new(),
    };
    for r in rules {
        if r.kind == 'a' {
            st.default_allow = r.allow;
            st.exceptions.clear();
        } else if r.allow == st.default_allow {
            for e in st.exceptions.iter_mut().filter(|e| e.same_device(r)) {
                e.access &= !r.access;
            }
            st.exceptions.retain(|e| e.access != 0);
        } else if let Some(e) = st.exceptions.iter_mut().find(|e| e.same_device(r)) {
            e.access |= r.access;
        } else {
            st.exceptions.push(*r);
        }
    }
    st
}

/// One eBPF instruction (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV32_K: u8 = 0xb4;
const MOV32_X: u8 = 0xbc;
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d;
const JEQ_K: u8 = 0x15;
const EXIT: u8 = 0x95;
/// A jump to the next rule's block, patched once the block's length is known.
const NEXT: i16 = i16::MIN;

/// The BPF_PROG_TYPE_CGROUP_DEVICE program for `rules` (kernel v1
/// semantics, as `emulate`): with `struct bpf_cgroup_dev_ctx` in r1,
/// r2 = device type, r3 = requested access, r4 = major, r5 = minor; one
/// block per exception, then the default. Returns 1 to allow, 0 to deny.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let st = emulate(rules);
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for e in &st.exceptions {
        let mut block = vec![insn(JNE_K, 2, 0, NEXT, if e.kind == 'b' { 1 } else { 2 })];
        if e.access != ALL {
            block.push(insn(MOV32_X, 1, 3, 0, 0));
            block.push(insn(AND32_K, 1, 0, 0, i32::from(e.access)));
            if e.allow {
                // allowed if every requested bit is granted
                block.push(insn(JNE_X, 1, 3, NEXT, 0));
            } else {
                // denied if any requested bit is denied
                block.push(insn(JEQ_K, 1, 0, NEXT, 0));
            }
        }
        if let Some(major) = e.major {
            block.push(insn(JNE_K, 4, 0, NEXT, major as i32));
        }
        if let Some(minor) = e.minor {
            block.push(insn(JNE_K, 5, 0, NEXT, minor as i32));
        }
        block.push(insn(MOV32_K, 0, 0, 0, i32::from(e.allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.off == NEXT {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(MOV32_K, 0, 0, 0, i32::from(st.default_allow)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<i32> {
    // SAFETY: attr is a live, properly sized bpf_attr prefix for `cmd`.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r as i32)
    }
}

fn load(insns: &[Insn]) -> Result<OwnedFd> {
    const LICENSE: &[u8] = b"Apache\0";
    let mut log = vec![0u8; 0];
    for attempt in 0..2 {
        if attempt == 1 {
            log = vec![0u8; 65536];
        }
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            log_level: u32::from(attempt == 1),
            log_size: log.len() as u32,
            log_buf: if log.is_empty() {
                0
            } else {
                log.as_mut_ptr() as u64
            },
            ..Default::default()
        };
        attr.prog_name[..11].copy_from_slice(b"skiff_devcg");
        match bpf(BPF_PROG_LOAD, &mut attr) {
            // SAFETY: a new fd the kernel just gave us (O_CLOEXEC).
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if attempt == 1 || e.raw_os_error() == Some(libc::EPERM) => {
                let text = String::from_utf8_lossy(&log);
                let last = text
                    .trim_end_matches('\0')
                    .lines()
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or("");
                let note = if last.is_empty() {
                    String::new()
                } else {
                    format!(" (verifier: {last})")
                };
                return Err(e).ctx(|| {
                    format!(
                        "load eBPF device filter of {} instructions{note}",
                        insns.len()
                    )
                });
            }
            Err(_) => {}
        }
    }
    err("load eBPF device filter: failed")
}

/// Loads the device filter for `rules` and attaches it to the cgroup2
/// directory `dir` (BPF_F_ALLOW_MULTI: any other attached filter still has
/// its say). The attachment lives as long as the cgroup.
pub fn attach_ebpf(dir: &Path, rules: &[Rule]) -> Result<()> {
    let prog = load(&program(rules))?;
    let cg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .ctx(|| format!("open {}", dir.display()))?;
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr)
        .ctx(|| format!("attach eBPF device filter to {}", dir.display()))?;
    Ok(())
}
