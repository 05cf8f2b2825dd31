//! The classic BPF fanout program for a `Steering`: the worker index of each received
//! frame, given at the network header (the fanout demux runs after the Ethernet header
//! is pulled). The rules and their reasons are in the parent module's doc.
//!
//! A load beyond the frame ends a classic BPF program with 0, so a truncated frame goes
//! to worker 0 like any frame the program does not recognise. Every path ends in a
//! `ret` whose value is below `workers` (the kernel takes it modulo the group's size,
//! which is then the identity).

use super::asm::{op, Asm, AsmError, To};
use super::Steering;
use ipnet::{Ipv4Net, Ipv6Net};
use natbox_core::shard::PortSplit;
use std::net::Ipv4Addr;

const ETHERTYPE_IPV4: u32 = 0x0800;
const ETHERTYPE_IPV6: u32 = 0x86dd;
const TCP: u32 = 6;
const UDP: u32 = 17;
const ICMP: u32 = 1;
const ICMPV6: u32 = 58;
/// The "more fragments" flag and the fragment offset bits of the IPv4 flags/offset
/// field: non-zero in every fragment (a first fragment has MF set, offset 0).
const FRAGMENT: u32 = 0x3fff;
/// ICMP echo reply, destination unreachable, time exceeded, parameter problem.
const ECHO_REPLY: u32 = 0;
const ERRORS: [u32; 3] = [3, 11, 12];
/// ICMPv6 router solicitation to redirect (RFC 4861 section 4).
const NDP: (u32, u32) = (133, 137);
/// Multiplier of the host hash (2^32 / golden ratio, odd): spreads the low bits in which
/// the addresses of one LAN differ into the high ones, which the xor-shift folds back.
const GOLDEN: u32 = 0x9e37_79b1;

/// Assembles the program.
pub fn build(s: &Steering) -> Result<Vec<libc::sock_filter>, AsmError> {
    let mut a = Asm::default();
    let (v4, v6) = (a.label(), a.label());
    a.op(op::LD_W_ABS, op::PROTOCOL);
    a.jump(op::JEQ, ETHERTYPE_IPV4, To::Next, To::Skip(1));
    a.goto(v4);
    a.jump(op::JEQ, ETHERTYPE_IPV6, To::Next, To::Skip(1));
    a.goto(v6);
    a.ret(0);
    a.here(v4);
    ipv4(&mut a, s);
    a.here(v6);
    ipv6(&mut a, s);
    a.finish()
}

/// IPv4: an inside source is hashed; a destination in the pool goes to the port owner.
fn ipv4(a: &mut Asm, s: &Steering) {
    let (from_inside, to_pool) = (a.label(), a.label());
    for p in &s.inside4 {
        prefix4(a, 12, p, from_inside);
    }
    a.op(op::LD_W_ABS, 16);
    for (lo, hi) in runs(&s.pool) {
        if lo == hi {
            a.jump(op::JEQ, lo, To::Next, To::Skip(1));
        } else {
            a.jump(op::JGE, lo, To::Next, To::Skip(2));
            a.jump(op::JGT, hi, To::Skip(1), To::Next);
        }
        a.goto(to_pool);
    }
    a.ret(0);
    a.here(from_inside);
    a.op(op::LD_W_ABS, 12);
    host_hash(a, s.workers);
    a.here(to_pool);
    to_public_port(a, s);
}

/// The pool as runs of consecutive addresses (`lo`, `hi` inclusive), sorted.
fn runs(pool: &[Ipv4Addr]) -> Vec<(u32, u32)> {
    let mut addrs: Vec<u32> = pool.iter().map(|&a| u32::from(a)).collect();
    addrs.sort_unstable();
    addrs.dedup();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for a in addrs {
        match runs.last_mut() {
            Some((_, hi)) if hi.checked_add(1) == Some(a) => *hi = a,
            _ => runs.push((a, a)),
        }
    }
    runs
}

/// Jumps to `to` if the IPv4 address at `off` is in `p`; A is clobbered.
fn prefix4(a: &mut Asm, off: u32, p: &Ipv4Net, to: super::asm::Label) {
    let mask = u32::from(p.netmask());
    if mask != 0 {
        a.op(op::LD_W_ABS, off);
        if mask != u32::MAX {
            a.alu(op::AND, mask);
        }
        a.jump(op::JEQ, u32::from(p.network()), To::Next, To::Skip(1));
    }
    a.goto(to);
}

/// Jumps to `to` if the IPv6 address at `off` is in `p`; A is clobbered.
fn prefix6(a: &mut Asm, off: u32, p: &Ipv6Net, to: super::asm::Label) {
    let miss = a.label();
    let words = |b: [u8; 16]| {
        let mut w = [0u32; 4];
        for (i, c) in b.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        w
    };
    let (net, mask) = (words(p.network().octets()), words(p.netmask().octets()));
    for (i, (&n, &m)) in (0u32..).zip(net.iter().zip(&mask)) {
        if m == 0 {
            break;
        }
        a.op(op::LD_W_ABS, off + 4 * i);
        if m != u32::MAX {
            a.alu(op::AND, m);
        }
        a.jump(op::JEQ, n, To::Next, To::At(miss));
    }
    a.goto(to);
    a.here(miss);
}

/// Returns the worker of the host whose (folded) address is in A.
fn host_hash(a: &mut Asm, workers: u32) {
    a.alu(op::MUL, GOLDEN);
    a.op(op::TAX, 0);
    a.alu(op::RSH, 16);
    a.op(op::ALU_X | op::XOR, 0);
    a.alu(op::MOD, workers);
    a.op(op::RET_A, 0);
}

/// A frame to a pool address: the owner of its public port or identifier.
fn to_public_port(a: &mut Asm, s: &Steering) {
    let [l4, icmp, echo, error, embedded_l4, embedded_icmp, ports, ids] =
        [(); 8].map(|()| a.label());
    a.op(op::LD_H_ABS, 6);
    a.jump(op::JSET, FRAGMENT, To::Next, To::Skip(1));
    a.ret(0);
    a.op(op::LD_B_ABS, 9);
    a.jump(op::JEQ, TCP, To::At(l4), To::Next);
    a.jump(op::JEQ, UDP, To::At(l4), To::Next);
    a.jump(op::JEQ, ICMP, To::At(icmp), To::Next);
    a.ret(0);

    a.here(l4);
    a.op(op::LDX_MSH, 0);
    a.op(op::LD_H_IND, 2);
    a.goto(ports);

    a.here(icmp);
    a.op(op::LDX_MSH, 0);
    a.op(op::LD_B_IND, 0);
    a.jump(op::JEQ, ECHO_REPLY, To::At(echo), To::Next);
    for t in ERRORS {
        a.jump(op::JEQ, t, To::At(error), To::Next);
    }
    a.ret(0);
    a.here(echo);
    a.op(op::LD_H_IND, 4);
    a.goto(ids);

    // The error's payload, 8 bytes in, is the datagram the box sent: its source port
    // (or echo identifier) is the public one.
    a.here(error);
    a.op(op::LD_B_IND, 8 + 9);
    a.jump(op::JEQ, TCP, To::At(embedded_l4), To::Next);
    a.jump(op::JEQ, UDP, To::At(embedded_l4), To::Next);
    a.jump(op::JEQ, ICMP, To::At(embedded_icmp), To::Next);
    a.ret(0);
    a.here(embedded_l4);
    past_embedded_header(a);
    a.op(op::LD_H_IND, 8);
    a.goto(ports);
    a.here(embedded_icmp);
    past_embedded_header(a);
    a.op(op::LD_H_IND, 8 + 4);
    a.goto(ids);

    a.here(ports);
    for split in &s.ports {
        owner(a, split);
    }
    for &(first, last, worker) in &s.forwarded {
        if first == last {
            a.jump(op::JEQ, u32::from(first), To::Next, To::Skip(1));
        } else {
            a.jump(op::JGE, u32::from(first), To::Next, To::Skip(2));
            a.jump(op::JGT, u32::from(last), To::Skip(1), To::Next);
        }
        a.ret(worker);
    }
    a.ret(0);
    a.here(ids);
    owner(a, &s.icmp_ids);
    a.ret(0);
}

/// X (the outer header's length) becomes the outer plus the embedded header's length,
/// so `[x + 8]` is the embedded transport header: the embedded IHL varies (options).
fn past_embedded_header(a: &mut Asm) {
    a.op(op::LD_B_IND, 8);
    a.alu(op::AND, 0xf);
    a.alu(op::LSH, 2);
    a.op(op::ALU_X | op::ADD, 0);
    a.op(op::TAX, 0);
}

/// Returns the owner of the port in A if `split`'s range holds it; else falls through.
fn owner(a: &mut Asm, split: &PortSplit) {
    let (miss, in_last) = (a.label(), a.label());
    a.jump(op::JGT, u32::from(split.max()), To::At(miss), To::Next);
    a.jump(op::JGE, u32::from(split.min()), To::Next, To::At(miss));
    a.alu(op::SUB, u32::from(split.min()));
    a.alu(op::DIV, split.slice_len());
    a.jump(op::JGT, split.workers() - 1, To::At(in_last), To::Next);
    a.op(op::RET_A, 0);
    a.here(in_last);
    a.ret(split.workers() - 1);
    a.here(miss);
}

/// IPv6: NDP goes to worker 0; an inside source, or else an inside destination, is
/// hashed (the same hash, so both directions of a host's traffic meet).
fn ipv6(a: &mut Asm, s: &Steering) {
    let [not_ndp, from_inside, to_inside] = [(); 3].map(|()| a.label());
    a.op(op::LD_B_ABS, 6);
    a.jump(op::JEQ, ICMPV6, To::Next, To::At(not_ndp));
    a.op(op::LD_B_ABS, 40);
    a.jump(op::JGE, NDP.0, To::Next, To::At(not_ndp));
    a.jump(op::JGT, NDP.1, To::At(not_ndp), To::Next);
    a.ret(0);
    a.here(not_ndp);
    for p in &s.inside6 {
        prefix6(a, 8, p, from_inside);
    }
    for p in &s.inside6 {
        prefix6(a, 24, p, to_inside);
    }
    a.ret(0);
    for (label, off) in [(from_inside, 8), (to_inside, 24)] {
        a.here(label);
        fold6(a, off);
        host_hash(a, s.workers);
    }
}

/// A = the xor of the four words of the IPv6 address at `off`.
fn fold6(a: &mut Asm, off: u32) {
    a.op(op::LD_W_ABS, off);
    for i in 1..4 {
        a.op(op::TAX, 0);
        a.op(op::LD_W_ABS, off + 4 * i);
        a.op(op::ALU_X | op::XOR, 0);
    }
}
