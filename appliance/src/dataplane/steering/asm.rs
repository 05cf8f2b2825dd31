//! A tiny classic BPF assembler: instructions with forward jumps to labels, resolved
//! into `sock_filter`s.
//!
//! Conditional jumps carry 8-bit offsets, so `jump` targets must lie within 255
//! instructions (the program keeps them inside fixed-size blocks); a target at any
//! distance is reached with `goto` (`BPF_JA`, a 32-bit offset). Jumps only go forward:
//! classic BPF has no backward jumps, which is what makes every program loop-free.

use libc::sock_filter;

/// A position in the program, placed once with `Asm::here`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// Where a conditional jump goes when its condition holds or fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// The next instruction.
    Next,
    /// Skip that many instructions.
    Skip(u8),
    /// A label.
    At(Label),
}

/// Why a program could not be assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsmError {
    /// More than `BPF_MAXINSNS` instructions.
    TooLong(usize),
    /// A conditional jump's target is behind it or more than 255 instructions ahead.
    JumpOutOfRange,
}

/// Operation classes and modes (linux/bpf_common.h), as the u16 opcode wants them.
pub mod op {
    pub const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    pub const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    pub const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    pub const LD_H_IND: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_IND) as u16;
    pub const LD_B_IND: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_IND) as u16;
    /// X = 4 * (P[k] & 0xf): an IPv4 header's length.
    pub const LDX_MSH: u16 = (libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH) as u16;
    pub const TAX: u16 = (libc::BPF_MISC | libc::BPF_TAX) as u16;
    pub const ALU_K: u16 = (libc::BPF_ALU | libc::BPF_K) as u16;
    pub const ALU_X: u16 = (libc::BPF_ALU | libc::BPF_X) as u16;
    pub const ADD: u16 = libc::BPF_ADD as u16;
    pub const SUB: u16 = libc::BPF_SUB as u16;
    pub const MUL: u16 = libc::BPF_MUL as u16;
    pub const DIV: u16 = libc::BPF_DIV as u16;
    pub const AND: u16 = libc::BPF_AND as u16;
    pub const LSH: u16 = libc::BPF_LSH as u16;
    pub const RSH: u16 = libc::BPF_RSH as u16;
    pub const MOD: u16 = libc::BPF_MOD as u16;
    pub const XOR: u16 = libc::BPF_XOR as u16;
    pub const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
    pub const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    pub const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
    pub const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    pub const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    pub const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    pub const RET_A: u16 = (libc::BPF_RET | libc::BPF_A) as u16;
    /// `k` of a load of the frame's EtherType (`skb->protocol`, host order).
    pub const PROTOCOL: u32 = (libc::SKF_AD_OFF + libc::SKF_AD_PROTOCOL) as u32;
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Fixed(u8),
    At(Label),
}

#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u16,
    jt: Target,
    jf: Target,
    /// For `goto`: the label, resolved into `k`.
    goto: Option<Label>,
    k: u32,
}

/// A program being written.
#[derive(Debug, Default)]
pub struct Asm {
    code: Vec<Insn>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    /// A label to place later.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `label` at the next instruction.
    pub fn here(&mut self, label: Label) {
        self.labels[label.0] = Some(self.code.len());
    }

    /// An instruction without jumps (`code`, `k`).
    pub fn op(&mut self, code: u16, k: u32) {
        self.push(code, Target::Fixed(0), Target::Fixed(0), None, k);
    }

    /// An ALU operation on A with the constant `k`.
    pub fn alu(&mut self, operation: u16, k: u32) {
        self.op(op::ALU_K | operation, k);
    }

    /// A conditional jump (`code` compares A with `k`).
    pub fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        let target = |to| match to {
            To::Next => Target::Fixed(0),
            To::Skip(n) => Target::Fixed(n),
            To::At(l) => Target::At(l),
        };
        self.push(code, target(jt), target(jf), None, k);
    }

    /// An unconditional jump to `label`, at any distance.
    pub fn goto(&mut self, label: Label) {
        self.push(op::JA, Target::Fixed(0), Target::Fixed(0), Some(label), 0);
    }

    /// Returns the constant `k`.
    pub fn ret(&mut self, k: u32) {
        self.op(op::RET_K, k);
    }

    fn push(&mut self, code: u16, jt: Target, jf: Target, goto: Option<Label>, k: u32) {
        self.code.push(Insn {
            code,
            jt,
            jf,
            goto,
            k,
        });
    }

    /// Resolves the labels (each must have been placed) into the final program.
    pub fn finish(self) -> Result<Vec<sock_filter>, AsmError> {
        if self.code.len() > libc::BPF_MAXINSNS as usize {
            return Err(AsmError::TooLong(self.code.len()));
        }
        let offset = |at: usize, label: Label| -> Result<usize, AsmError> {
            self.labels[label.0]
                .and_then(|to| to.checked_sub(at + 1))
                .ok_or(AsmError::JumpOutOfRange)
        };
        let short = |at: usize, t: Target| match t {
            Target::Fixed(n) => Ok(n),
            Target::At(l) => u8::try_from(offset(at, l)?).map_err(|_| AsmError::JumpOutOfRange),
        };
        self.code
            .iter()
            .enumerate()
            .map(|(at, i)| {
                let k = match i.goto {
                    Some(l) => offset(at, l)? as u32,
                    None => i.k,
                };
                Ok(sock_filter {
                    code: i.code,
                    jt: short(at, i.jt)?,
                    jf: short(at, i.jf)?,
                    k,
                })
            })
            .collect()
    }
}
