//! A classic-BPF assembler for seccomp filters, built backward: each
//! instruction goes in front of those already emitted, so every jump target
//! exists when the jump is written and its distance is known. Conditional
//! jumps have 8-bit offsets; a target further than 255 instructions away is
//! reached through a `ja` trampoline (32-bit offset) inserted next to the jump.

/// `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

pub const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub const ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const JGT: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
pub const JGE: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
pub const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// `struct seccomp_data` offsets.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
pub const OFF_ARGS: u32 = 16;

/// A position in the program, counted from its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Default)]
pub struct Asm {
    rev: Vec<Insn>,
    /// The latest `ret` of each value, for sharing while it is in reach.
    rets: Vec<(u32, Label)>,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    pub fn len(&self) -> usize {
        self.rev.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rev.is_empty()
    }

    /// The first instruction emitted so far (what falls through to the rest).
    pub fn here(&self) -> Label {
        Label(self.rev.len() - 1)
    }

    /// The distance a jump placed next would need to reach `to`.
    fn dist(&self, to: Label) -> usize {
        self.rev.len() - 1 - to.0
    }

    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32) -> Label {
        self.rev.push(Insn { code, jt, jf, k });
        self.here()
    }

    pub fn ld(&mut self, off: u32) -> Label {
        self.push(LD_W_ABS, 0, 0, off)
    }

    pub fn and(&mut self, k: u32) -> Label {
        self.push(ALU_AND_K, 0, 0, k)
    }

    /// A `ret k`, shared with an earlier one when a short jump reaches it.
    pub fn ret(&mut self, k: u32) -> Label {
        if let Some(&(_, l)) = self.rets.iter().find(|(v, l)| *v == k && self.dist(*l) < 200) {
            return l;
        }
        let l = self.push(RET_K, 0, 0, k);
        self.rets.retain(|(v, _)| *v != k);
        self.rets.push((k, l));
        l
    }

    /// An unconditional jump (used for trampolines and long skips).
    pub fn ja(&mut self, to: Label) -> Label {
        let d = self.dist(to) as u32;
        if d == 0 {
            return to;
        }
        self.push(JA, 0, 0, d)
    }

    /// `if A <op> k goto jt else goto jf`.
    pub fn jump(&mut self, op: u16, k: u32, jt: Label, jf: Label) -> Label {
        let jf = if self.dist(jf) > 255 { self.push(JA, 0, 0, self.dist(jf) as u32) } else { jf };
        let jt = if self.dist(jt) > 255 { self.push(JA, 0, 0, self.dist(jt) as u32) } else { jt };
        let (t, f) = (self.dist(jt) as u8, self.dist(jf) as u8);
        self.push(op, t, f, k)
    }

    /// The program in execution order.
    pub fn finish(mut self) -> Vec<Insn> {
        self.rev.reverse();
        self.rev
    }
}

/// seccomp_data offset of the low and high halves of argument `index`.
fn halves(index: u8) -> (u32, u32) {
    let base = OFF_ARGS + 8 * index as u32;
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

/// The comparisons of OCI's `linux.seccomp.syscalls[].args[].op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// (arg & value) == value_two
    MaskedEq,
}

/// Emits "if argument `index` <op> `value` goto pass else goto fail";
/// returns the entry. `wide`: compare all 64 bits, the high half first;
/// else (32-bit ABIs, as libseccomp does) only the low halves, since the
/// high half of a 32-bit ABI's register is not the argument's.
#[allow(clippy::too_many_arguments)]
pub fn compare(a: &mut Asm, wide: bool, index: u8, op: Op, value: u64, value_two: u64, pass: Label, fail: Label) -> Label {
    let (lo_off, hi_off) = halves(index);
    let (value, value_two) = if wide { (value, value_two) } else { (value & 0xffff_ffff, value_two & 0xffff_ffff) };
    let (vh, vl) = ((value >> 32) as u32, value as u32);
    match op {
        Op::Eq | Op::Ne | Op::MaskedEq => {
            // Equality on both halves; Ne swaps the outcomes.
            let (yes, no) = if op == Op::Ne { (fail, pass) } else { (pass, fail) };
            let (mh, ml, wh, wl) = if op == Op::MaskedEq {
                (vh, vl, (value_two >> 32) as u32, value_two as u32)
            } else {
                (u32::MAX, u32::MAX, vh, vl)
            };
            if op == Op::MaskedEq && value_two & !value != 0 {
                // (arg & mask) can never equal a value with bits outside the mask.
                return a.ja(no);
            }
            a.jump(JEQ, wl, yes, no);
            if ml != u32::MAX {
                a.and(ml);
            }
            let lo = a.ld(lo_off);
            if !wide || mh == 0 {
                return lo; // no high half to compare, or it is masked out entirely
            }
            a.jump(JEQ, wh, lo, no);
            if mh != u32::MAX {
                a.and(mh);
            }
            a.ld(hi_off)
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            // arg > v: hi > vh, or hi == vh and lo > vl (>= for Ge).
            // Lt is !Ge and Le is !Gt: the same test with outcomes swapped.
            let (lo_op, yes, no) = match op {
                Op::Gt => (JGT, pass, fail),
                Op::Ge => (JGE, pass, fail),
                Op::Lt => (JGE, fail, pass),
                _ => (JGT, fail, pass),
            };
            a.jump(lo_op, vl, yes, no);
            let lo = a.ld(lo_off);
            if !wide {
                return lo;
            }
            a.jump(JEQ, vh, lo, no);
            let eq = a.here();
            a.jump(JGT, vh, yes, eq);
            a.ld(hi_off)
        }
    }
}

/// Runs a program on a `seccomp_data` the way the kernel does (for tests).
#[cfg(test)]
pub fn run(prog: &[Insn], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, v) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_ne_bytes());
    }
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => {
                let o = i.k as usize;
                assert!(o.is_multiple_of(4) && o + 4 <= 64, "bad load {o}");
                acc = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
            }
            ALU_AND_K => acc &= i.k,
            JA => pc += i.k as usize,
            JEQ | JGT | JGE => {
                let c = match i.code {
                    JEQ => acc == i.k,
                    JGT => acc > i.k,
                    _ => acc >= i.k,
                };
                pc += if c { i.jt } else { i.jf } as usize;
            }
            RET_K => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
        assert!(pc < prog.len(), "fell off the end");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: u32 = 1;
    const FAIL: u32 = 2;

    fn prog(index: u8, op: Op, v: u64, v2: u64) -> Vec<Insn> {
        prog_w(true, index, op, v, v2)
    }

    fn prog_w(wide: bool, index: u8, op: Op, v: u64, v2: u64) -> Vec<Insn> {
        let mut a = Asm::new();
        let fail = a.ret(FAIL);
        let pass = a.ret(PASS);
        compare(&mut a, wide, index, op, v, v2, pass, fail);
        a.finish()
    }

    #[test]
    fn comparisons_use_both_halves() {
        let edges = [
            0u64,
            1,
            7,
            8,
            9,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0008,
            0x7fff_ffff_ffff_ffff,
            u64::MAX,
            0x8000_0000_0000_0008,
        ];
        for &v in &edges {
            for &x in &edges {
                for (op, want) in [
                    (Op::Eq, x == v),
                    (Op::Ne, x != v),
                    (Op::Lt, x < v),
                    (Op::Le, x <= v),
                    (Op::Gt, x > v),
                    (Op::Ge, x >= v),
                ] {
                    for index in [0u8, 3, 5] {
                        let mut args = [0xdead_beef_u64; 6];
                        args[index as usize] = x;
                        let got = run(&prog(index, op, v, 0), 0, 0, args) == PASS;
                        assert_eq!(got, want, "{x:#x} {op:?} {v:#x} (arg {index})");
                    }
                }
                for &m in &edges {
                    let got = run(&prog(1, Op::MaskedEq, m, v), 0, 0, [0, x, 0, 0, 0, 0]) == PASS;
                    assert_eq!(got, x & m == v, "{x:#x} & {m:#x} == {v:#x}");
                    let (x32, m32, v32) = (x as u32, m as u32, v as u32);
                    let got = run(&prog_w(false, 1, Op::MaskedEq, m, v), 0, 0, [0, x, 0, 0, 0, 0]) == PASS;
                    assert_eq!(got, x32 & m32 == v32, "32-bit {x:#x} & {m:#x} == {v:#x}");
                }
                // 32-bit ABIs: only the low halves count.
                let (x32, v32) = (x as u32, v as u32);
                for (op, want) in [
                    (Op::Eq, x32 == v32),
                    (Op::Ne, x32 != v32),
                    (Op::Lt, x32 < v32),
                    (Op::Le, x32 <= v32),
                    (Op::Gt, x32 > v32),
                    (Op::Ge, x32 >= v32),
                ] {
                    let got = run(&prog_w(false, 2, op, v, 0), 0, 0, [0, 0, x, 0, 0, 0]) == PASS;
                    assert_eq!(got, want, "32-bit {x:#x} {op:?} {v:#x}");
                }
            }
        }
    }

    #[test]
    fn far_targets_get_trampolines() {
        let mut a = Asm::new();
        let far = a.ret(7);
        for i in 0..300 {
            a.ret(1000 + i);
        }
        let near = a.ret(9);
        a.jump(JEQ, 5, far, near); // jt far
        let next = a.here();
        a.jump(JEQ, 6, next, far); // jf far
        let next = a.here();
        a.jump(JEQ, 4, far, next); // jt far again, after trampolines
        let next = a.here();
        a.jump(JEQ, 3, far, next);
        a.ld(OFF_NR);
        let p = a.finish();
        assert_eq!(run(&p, 3, 0, [0; 6]), 7);
        assert_eq!(run(&p, 4, 0, [0; 6]), 7);
        assert_eq!(run(&p, 5, 0, [0; 6]), 7);
        assert_eq!(run(&p, 1, 0, [0; 6]), 7); // not 6: jf far
        assert_eq!(run(&p, 6, 0, [0; 6]), 9);
    }
}
