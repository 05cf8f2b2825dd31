//! Steering received frames to worker shards (issue #16): N AF_PACKET sockets bound to
//! one interface form a fanout group (packet(7) `PACKET_FANOUT`), and a classic BPF
//! program (`PACKET_FANOUT_CBPF`, built by `program.rs`, checked by the kernel when
//! `join` attaches it) returns, for each frame, the index of the socket (the worker)
//! that gets it. Every port gets the same program: the rules depend on addresses, not
//! on the port's role, so one-armed mode needs nothing special.
//!
//! # The rules, in order
//! 1. **ARP and anything not IPv4/IPv6**, and **NDP** (ICMPv6 133-137 right after the
//!    IPv6 header): worker 0.
//! 2. **IPv4 from inside** (source in `inside4`): a hash of the source address. This
//!    rule wins over the next, so a **hairpinned** frame (inside source, pool
//!    destination) goes to its source's worker.
//! 3. **IPv4 to a pool address**: the worker that owns the public port
//!    (`natbox_core::shard::PortSplit`, the split the per-worker port allocators must
//!    use, so that the owner is the worker holding the mapping): TCP/UDP destination port;
//!    ICMP echo reply identifier (translated like a port, over the identifier range);
//!    ICMP errors (destination unreachable, time exceeded, parameter problem): the
//!    *source* port or echo identifier of the embedded datagram, which is the one the
//!    box sent (its IHL is read, options and all). A port of a **port forward**
//!    (`[[forward]]`, never in a split range): the worker of the forward's inside
//!    host (`natbox_core::shard::host_worker`), which holds the forward's sessions
//!    because the server's replies come from inside (rule 2). Forwards whose port
//!    ranges overlap (another protocol or public address) with hosts on different
//!    workers are left to worker 0 whole, which hands each frame to its owner. If
//!    the forwards make the program too long for the kernel, it is built without
//!    them, with a warning (again worker 0 and hand-offs). Any other port, another ICMP type and any
//!    fragment (first or not): worker 0.
//! 4. **IPv6 from inside** (source in `inside6`): a hash of the source address;
//!    **IPv6 to inside** (destination in `inside6`): the same hash of the destination,
//!    so both directions of a host's traffic meet on one worker (the IPv6 filter is
//!    stateful, RFC 6092).
//! 5. Anything else (IPv4 to a non-pool address from outside, IPv6 between outside
//!    addresses): worker 0.
//!
//! # Source-address hash, not tuple hash
//! The issue suggested hashing the inside 5-tuple (as `PACKET_FANOUT_HASH` does). We
//! hash the inside host's address instead, because then everything the engine keeps
//! *per host* lives on one worker: the per-host session and port quotas (RFC 6888
//! REQ-4/5) and paired pooling (RFC 4787 REQ-2: one public address per host) stay local
//! decisions with no cross-worker counting; and all fragments of a datagram (the
//! non-first ones carry no ports, so a tuple hash would send them elsewhere than the
//! first) reach the same fragment table. Since a host's mappings are created on its
//! worker, from that worker's port slice, replies to them are steered by rule 3 to the
//! same worker. The price: one host's traffic cannot use more than one core, and the
//! balance depends on the number of active hosts (a site with two busy hosts behind the
//! box uses at most two workers). A NAT's load is the sum of many hosts, so this is the
//! usual trade (VPP's NAT44-EI picks an inside source's thread by a hash of its address
//! too).
//!
//! # What the engine must do with the frames it did not expect
//! - **Worker 0 gets every IPv4 fragment from outside** (the non-first ones carry no
//!   port, and a BPF program has no state to remember the first fragment's owner, so
//!   the first goes with them), plus ARP, NDP and traffic for the box itself. Worker 0
//!   hands each datagram to the owner of its public port: the first fragment names
//!   it, and worker 0's fragment table records the owner so the others follow, parked
//!   until the first comes (`natbox_core::engine::frag`); one FIFO lane from worker 0
//!   means the owner sees the first before the others. It also copies every ARP and
//!   NS/NA it receives to the other workers, which resolve next hops of their own. The
//!   alternative, `PACKET_FANOUT_FLAG_DEFRAG`, makes the kernel reassemble IPv4 before
//!   the demux, so the program would see the port; but then the engine receives
//!   datagrams larger than the MTU and must fragment them again, and reassembly would
//!   happen under the namespace's `ipfrag_*` limits instead of the engine's own
//!   fragment bounds and counters, so it was not chosen. Until the program is
//!   attached (`join` attaches it after the last socket joined) every frame goes to
//!   worker 0 as well, and the engine hands inbound frames to their owners the same
//!   way.
//! - **Hairpinning** (RFC 4787 section 6, RFC 7857 section 3): the frame reaches the
//!   source's worker, which translates the source (its own mapping); the destination's
//!   mapping belongs to the owner of the destination port, so the source's worker must
//!   hand the half-translated frame to that owner (for example through the owner's
//!   bounded hand-off ring) instead of looking it up itself.
//! - ICMP errors *from inside* about an inbound flow are hashed by their source (rule
//!   2), which is the worker of the inside host the flow belongs to: nothing to do.
//!
//! # Cost: the program against the kernel's own demux
//! `tests::measure_steering_cost` (ignored; `cargo test -p appliance --lib
//! dataplane::steering::tests::measure_steering_cost -- --ignored --nocapture`, debug build)
//! sends 200 000 60-byte UDP/IPv4 frames per round over a veth in a private namespace
//! to a fanout group of 2 `PacketSocket`s, each drained by a thread: half are replies
//! to pool ports over both slices (the longest path through the program, about 30
//! instructions), half come from 64 inside hosts (about 15). The sending thread's CPU
//! time per frame covers the send system call, the veth and the receive path up to the
//! sockets' queues, fanout demux included (all run in the sender's context); the three
//! modes alternate within each of 9 rounds. On the 2-core development VM (Xeon, load
//! average about 3.9 from other work, kernel 6.18, BPF JIT on), medians and ranges:
//!
//! | fanout mode                 | sender CPU per frame   | frames per socket  |
//! |-----------------------------|------------------------|--------------------|
//! | `PACKET_FANOUT_LB` (baseline) | 1085 ns (981-1100)   | 100 001 / 100 002  |
//! | `PACKET_FANOUT_HASH`        | 1116 ns (1090-1157)    | 82 815 / 117 188   |
//! | `PACKET_FANOUT_CBPF` (this) | 1090 ns (1062-1209)    | 100 020 / 99 985   |
//!
//! Two earlier runs of 5 rounds gave (LB/HASH/CBPF) 1063/1140/1157 and 1068/1143/1117
//! ns. So the
//! program costs no more than the kernel's flow hash; the difference between the modes
//! is within the noise (about 30 ns) of a path of 1.1 us, so this method bounds the
//! program's cost rather than measuring it. Frames per second (430 000 to 725 000 for
//! the same mode across runs) measured the other sessions on the machine, not the
//! modes, and are not used. The hash's uneven split is its nature: it balances flows
//! (128 here), not frames. The sender's time includes the test's own debug-build code
//! (a frame copy per send), the same in every mode.
//!
//! # The alternative: hash, then hand off through a ring
//! The other option steers by `PACKET_FANOUT_HASH` (or `_QM`) and has each
//! worker push a reply it does not own into the owner's bounded lock-free ring. It
//! cannot be measured until the workers exist. What to measure then, at 2-4 workers,
//! with replies spread over every worker's ports: CPU per frame and frames per second
//! of the whole box (a reply lands on the wrong worker (N-1)/N of the time and then
//! costs an enqueue, a dequeue, a cross-core cache transfer of the buffer or a copy,
//! and a wake-up of an idle owner), the added latency, and ring-full drops under a
//! burst. The program puts the frame on the owner's socket for no measurable cost, so
//! the rings are needed only for what no stateless program can place (non-first
//! fragments and hairpinning, above). `_QM` (the NIC's RSS queue) cannot follow the
//! port split at all: RSS hashes the tuple, and flow rules match masks, not ranges.

mod asm;
#[cfg(test)]
mod interp;
mod program;
#[cfg(test)]
mod tests;

pub use asm::AsmError;

use super::socket::PacketSocket;
use ipnet::{Ipv4Net, Ipv6Net};
use natbox_core::shard::{PortSplit, PublicSplit};
use std::io;
use std::net::Ipv4Addr;

/// What the steering program needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steering {
    /// Workers (sockets in the group), at least 1.
    pub workers: u32,
    /// Public addresses of the NAT44 pool (the outside port's address when the
    /// configured pool is empty).
    pub pool: Vec<Ipv4Addr>,
    /// TCP/UDP public port ranges (disjoint: the RFC 4787 REQ-3 classes), each split.
    pub ports: Vec<PortSplit>,
    /// The ICMP identifier range, split.
    pub icmp_ids: PortSplit,
    /// Sources translated by NAT44.
    pub inside4: Vec<Ipv4Net>,
    /// Inside IPv6 prefixes.
    pub inside6: Vec<Ipv6Net>,
    /// Public port ranges of port forwards (`first`, `last`, the inside host's
    /// worker), sorted, disjoint, none in `ports` (rule 3).
    pub forwarded: Vec<(u16, u16, u32)>,
}

impl Steering {
    /// The steering for `workers` workers and the NAT's configured port range
    /// (`port_min`..=`port_max`), split into the classes the engine allocates from;
    /// `None` for no workers or an empty range.
    pub fn new(
        workers: usize,
        pool: Vec<Ipv4Addr>,
        (port_min, port_max): (u16, u16),
        inside4: Vec<Ipv4Net>,
        inside6: Vec<Ipv6Net>,
    ) -> Option<Steering> {
        let split = PublicSplit::new(workers, (port_min, port_max))?;
        Some(Steering {
            workers: u32::try_from(workers).ok()?,
            pool,
            ports: split.ports,
            icmp_ids: split.icmp_ids,
            inside4,
            inside6,
            forwarded: Vec::new(),
        })
    }

    /// The steering for `workers` workers under `config`: its pool, port range,
    /// inside prefixes and port forwards (`None` for an empty port range).
    pub fn of(workers: usize, config: &firmware_config::Config) -> Option<Steering> {
        let s = Steering::new(
            workers,
            config.nat_pool(),
            (config.nat.port_min, config.nat.port_max),
            config.nat_inside_prefixes(),
            config.ipv6_inside_prefixes(),
        )?;
        Some(s.with_forwards(&config.forward))
    }

    /// With the public ports of `forwards` steered to their inside hosts' workers
    /// (rule 3): ranges whose workers disagree where they overlap are left out, and
    /// touching ranges of one worker are merged.
    pub fn with_forwards(mut self, forwards: &[firmware_config::forward::Forward]) -> Steering {
        let mut ranges: Vec<(u16, u16, u32)> = forwards
            .iter()
            .map(|f| {
                let worker = natbox_core::shard::host_worker(u32::from(f.to), self.workers);
                (f.port.first, f.port.last, worker as u32)
            })
            .collect();
        ranges.sort_unstable();
        let disputed = |i: usize| {
            let (lo, hi, w) = ranges[i];
            ranges.iter().any(|&(l, h, x)| x != w && l <= hi && lo <= h)
        };
        let agreed: Vec<(u16, u16, u32)> = (0..ranges.len())
            .filter(|&i| !disputed(i))
            .map(|i| ranges[i])
            .collect();
        self.forwarded.clear();
        for (lo, hi, w) in agreed {
            match self.forwarded.last_mut() {
                Some((_, last, x)) if *x == w && u32::from(lo) <= u32::from(*last) + 1 => {
                    *last = (*last).max(hi);
                }
                _ => self.forwarded.push((lo, hi, w)),
            }
        }
        self
    }

    /// The classic BPF program (`Err` if it would exceed the kernel's 4096
    /// instructions: about 2000 pool address runs or inside prefixes). Forwards that
    /// would pass the limit are left out (rule 3).
    pub fn program(&self) -> Result<Vec<libc::sock_filter>, AsmError> {
        program::build(self).or_else(|e| {
            if self.forwarded.is_empty() {
                return Err(e);
            }
            log::warn!(
                "steering: {} forwarded port ranges make the program too long; \
                 their frames reach their workers through hand-offs",
                self.forwarded.len()
            );
            program::build(&Steering {
                forwarded: Vec::new(),
                ..self.clone()
            })
        })
    }
}

/// `PACKET_FANOUT`'s argument: the group id and the mode.
fn fanout_arg(group: u16, mode: libc::c_uint) -> libc::c_uint {
    libc::c_uint::from(group) | (mode << 16)
}

/// Forms a new fanout group of `sockets` (all bound to one interface, with the same
/// protocol), steered by `program`: socket `k` receives the frames for which the
/// program returns `k`. Returns the group's id, which the kernel picks unique in the
/// namespace (`found`). The sockets join in their order (the kernel indexes a group's
/// members by the order they joined) and the program is attached once every socket
/// has joined, so indices are never taken modulo a partial group.
pub fn form(sockets: &[&PacketSocket], program: &[libc::sock_filter]) -> io::Result<u16> {
    let (first, rest) = sockets
        .split_first()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let id = found(first)?;
    for s in rest {
        join(id, s)?;
    }
    attach(first, program)?;
    Ok(id)
}

/// Starts a fanout group with `socket` as its member 0, under an id the kernel picks
/// unused in the namespace (`PACKET_FANOUT_FLAG_UNIQUEID`), and returns that id. Until
/// a program is attached every frame goes to member 0. The group ignores frames sent
/// out of the interface (`PACKET_FANOUT_FLAG_IGNORE_OUTGOING`): the members' own
/// `PACKET_IGNORE_OUTGOING` stops applying once they join, since the group receives
/// through a hook of its own.
pub fn found(socket: &PacketSocket) -> io::Result<u16> {
    socket.set(
        libc::SOL_PACKET,
        libc::PACKET_FANOUT,
        &fanout_arg(0, MODE | libc::PACKET_FANOUT_FLAG_UNIQUEID),
    )?;
    // getsockopt(PACKET_FANOUT) answers the id in the low 16 bits.
    Ok((socket.get_int(libc::SOL_PACKET, libc::PACKET_FANOUT)? & 0xffff) as u16)
}

/// Adds `socket` to group `id` as its next member.
pub fn join(id: u16, socket: &PacketSocket) -> io::Result<()> {
    socket.set(libc::SOL_PACKET, libc::PACKET_FANOUT, &fanout_arg(id, MODE))
}

/// Attaches `program` to the group `socket` is a member of; the kernel checks it (an
/// invalid program is `EINVAL`).
pub fn attach(socket: &PacketSocket, program: &[libc::sock_filter]) -> io::Result<()> {
    let len =
        u16::try_from(program.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // The kernel copies the program during the call; `program` outlives it.
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    socket.set(libc::SOL_PACKET, libc::PACKET_FANOUT_DATA, &prog)
}

/// The group's mode: steered by a classic BPF program, blind to outgoing frames.
const MODE: libc::c_uint = libc::PACKET_FANOUT_CBPF | libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
