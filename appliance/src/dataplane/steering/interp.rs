//! Test support: a classic BPF interpreter for the instructions `program.rs` emits,
//! with the kernel's semantics (a load beyond the frame returns 0; only forward jumps),
//! so the program's answers can be checked for any frame without a kernel.

use super::asm::op;
use libc::sock_filter;

/// Runs `prog` on `frame` (from the network header) whose EtherType is `protocol`.
/// Panics on an instruction the kernel's checker would refuse (unknown opcode, jump
/// out of the program, falling off its end, division by zero).
pub fn run(prog: &[sock_filter], protocol: u16, frame: &[u8]) -> u32 {
    let load = |off: u32, size: usize| -> Option<u32> {
        if off == op::PROTOCOL {
            return Some(u32::from(protocol));
        }
        let at = usize::try_from(off).ok()?;
        let bytes = frame.get(at..at.checked_add(size)?)?;
        Some(bytes.iter().fold(0, |v, &b| (v << 8) | u32::from(b)))
    };
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    loop {
        let i = prog[pc];
        pc += 1;
        let loaded = match i.code {
            op::LD_W_ABS => Some(load(i.k, 4)),
            op::LD_H_ABS => Some(load(i.k, 2)),
            op::LD_B_ABS => Some(load(i.k, 1)),
            op::LD_H_IND => Some(load(x.wrapping_add(i.k), 2)),
            op::LD_B_IND => Some(load(x.wrapping_add(i.k), 1)),
            _ => None,
        };
        if let Some(v) = loaded {
            match v {
                Some(v) => a = v,
                None => return 0,
            }
            continue;
        }
        let jump = |cond: bool| usize::from(if cond { i.jt } else { i.jf });
        match i.code {
            op::LDX_MSH => match load(i.k, 1) {
                Some(b) => x = 4 * (b & 0xf),
                None => return 0,
            },
            op::TAX => x = a,
            c if c & 0x07 == libc::BPF_ALU as u16 => {
                let v = if c & op::ALU_X == op::ALU_X { x } else { i.k };
                a = match c & 0xf0 {
                    op::ADD => a.wrapping_add(v),
                    op::SUB => a.wrapping_sub(v),
                    op::MUL => a.wrapping_mul(v),
                    op::DIV => a.checked_div(v).expect("division by zero"),
                    op::MOD => a.checked_rem(v).expect("division by zero"),
                    op::AND => a & v,
                    op::LSH => a << (v & 31),
                    op::RSH => a >> (v & 31),
                    op::XOR => a ^ v,
                    other => panic!("ALU op {other:#x}"),
                };
            }
            op::JA => pc += i.k as usize,
            op::JEQ => pc += jump(a == i.k),
            op::JGT => pc += jump(a > i.k),
            op::JGE => pc += jump(a >= i.k),
            op::JSET => pc += jump(a & i.k != 0),
            op::RET_K => return i.k,
            op::RET_A => return a,
            other => panic!("opcode {other:#x}"),
        }
    }
}
