//! The I/O-free core: a received frame, its port and the current time in; a verdict out.
//!
//! Contract:
//! - `Engine::process` parses the frame once and either rewrites it in place for
//!   sending (`Verdict::Forward`), replaces it with a reply (`Verdict::Reply`: ARP, NDP,
//!   echo replies, ICMP errors), parks a copy until the next hop resolves
//!   (`Verdict::Hold`), absorbs it (`Verdict::Consumed`: ARP replies, NAs), or drops it
//!   with a reason (`Verdict::Drop`, counted). The caller sends `frame.buf[..frame.len]`
//!   on the port named by `Forward`/`Reply`.
//! - Frames the engine makes on its own (ARP/NDP requests, parked packets released by a
//!   neighbour's answer or by a first fragment) wait in a queue the caller drains with
//!   `pop_transmit` after each batch.
//! - `poll` runs the timers (session expiry, port holds, neighbour retries, fragment
//!   timeouts); call it at least every 100 ms.
//! - `process_offloaded` takes a frame with offload metadata (`wire::offload`): a
//!   TCP/UDP checksum left partial (CHECKSUM_PARTIAL) is rewritten as a pseudo-header
//!   sum, MSS clamping leaves it alone; a GSO super-frame is checked against the egress
//!   MTU by its segments' length (hdr + `gso_size`, RFC 1191/8201 errors carry the MTU
//!   as usual) and is sent whole, never buffered (for ARP/NDP or a service of the
//!   box's: those buffers get wire-sized frames with complete checksums). Verdicts and counters treat
//!   a super-frame as one frame. Replies the engine writes over a frame carry no
//!   offloads.
//! - Time is passed in (milliseconds from any fixed origin) and never read here.
//! - After start-up nothing allocates on the packet path: sessions, indexes, buffers and
//!   queues are sized from the configuration once.
//!
//! The kernel owns no address on the data ports: ARP, NDP, ICMP to the box, routing and
//! translation all happen here. Routing decisions: inside-to-outside IPv4 is translated
//! (`nat44`), outside-to-pool IPv4 is translated back, inside-to-pool is hairpinned;
//! IPv6 is routed through the egress-only filter (`fw6`); outside-to-outside and
//! outside-to-private traffic is dropped.
//!
//! Sources are checked before anything else looks at a packet, the box's own
//! addresses included. From any port: martians (IPv4 0/8, loopback, multicast, class
//! E, RFC 1812 section 5.3.7; IPv6 unspecified, loopback, multicast, IPv4-mapped, RFC
//! 6092 REC-3) are `martian_source`. From the outside: sources that can only be an
//! inside host's or the box's (an inside prefix, a pool or port address, and IPv6
//! unique local addresses, RFC 4193 section 4.1) are `spoofed_from_outside` (BCP 38,
//! RFC 6092 REC-6, applied to IPv4 too). An operator whose outside network really
//! uses ULA must list it in no inside prefix and accept that ULA sources are refused.

//!
//! # Shards
//! With several workers, each runs an engine shard (`Engine::new_shard`) that shares
//! nothing with the others: it allocates public ports from its own slices
//! (`engine::pool::Slices`, `shard::PortSplit`), holds its share of the session and
//! state budgets (`Shard::share`: `max_sessions / N` each, so the box's memory and its
//! global limit stay those of the configuration), and has its own neighbour caches,
//! fragment table, buffers and counters. The steering program
//! (`appliance/src/dataplane/steering`) puts each frame on the shard that holds its
//! state; what it cannot place, a shard finishes by handing the frame to another:
//! - `Verdict::Handoff(k)`: shard `k` must finish this frame. The caller passes
//!   `frame.buf[..frame.len]` and its arrival port to shard `k`'s `process_handed`.
//!   Given for a **hairpinned** datagram (RFC 4787 REQ-9) whose source this shard
//!   translated but whose destination mapping shard `k` owns (the frame goes with its
//!   source translated; `k` runs the inbound half), and for an **inbound** datagram
//!   whose public port shard `k` owns (`nat44::Nat44::owner_in`): the steering program
//!   sends every IPv4 fragment from outside to shard 0, which hands the datagram to
//!   its owner (the first fragment names it, the others follow through the fragment
//!   table, `frag`); a frame steered before the program was attached lands on shard
//!   0 too and is handed on the same way. A handed frame carries no offload metadata:
//!   its partial checksum is completed first, and a GSO super-frame is dropped
//!   (`gso_not_buffered`) rather than handed.
//! - Frames a shard hands off on its own (parked fragments released towards their
//!   owner, and shard 0's copies of every ARP and Neighbor Solicitation/Advertisement
//!   it receives, for the other shards to learn the neighbour from: the steering sends
//!   those to shard 0 only, while every shard resolves next hops) wait in a queue the
//!   caller drains with `pop_handoff`, like `pop_transmit`.
//! - `process_handed` learns from a copied ARP or NDP frame without answering it (shard
//!   0 answered), runs the inbound half of a hairpinned datagram (its source is a pool
//!   address, which `process` refuses from inside as spoofed), and processes anything
//!   else like `process`. Per-port receive counters count a frame once, on the shard
//!   that received it; `handed_off` and `handed_in` count the hand-offs.
//!
//! With `Shard::ONLY` (one worker, `Engine::new`), nothing is ever handed off.
//!
//! Layout: this module orders the pipeline (`process` → `dispatch` by ethertype →
//! `l2` for ARP, `ip4`, `ip6` (and `ndp` for Neighbor Discovery) → `local` for what is
//! the box's; `poll` runs the timers). Each stage is an `impl Engine` block in its own
//! module; see ARCHITECTURE.md.

mod autoconf;
pub mod buffers;
mod config;
pub mod control;
pub mod destinations;
pub mod flow;
pub mod flowlog;
pub mod frag;
pub mod fw6;
pub mod icmp;
mod ip4;
mod ip6;
mod l2;
pub mod lease;
pub mod lease6;
pub mod local;
pub mod nat44;
mod ndp;
pub mod neigh;
pub mod policy;
pub mod pool;
pub mod port;
mod probes;
mod query;
pub mod route;
mod sli;
pub mod stats;

pub use config::Reconfigured;
pub use port::{PortId, PortInfo, PortSetup, Roles};

use crate::shard::Shard;
use buffers::{BufId, Buffers};
use firmware_config::Config;
use frag::Frags;
use fw6::Fw6;
use nat44::Nat44;
use neigh::{Cache, Event};
use port::{PortState, Ports};
use route::Routes;
use stats::{DropReason, Stats};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::checksum::Csum;
use crate::wire::ethernet::{self, ethertype, Mac};
use crate::wire::offload::{self, Offload};

const ETH: usize = ethernet::HEADER_LEN;
/// Frame buffers for parked packets and engine-made frames.
const POOL_BUFFERS: usize = 512;
/// Of those, kept for the box's own ARP requests and Neighbor Solicitations (see
/// `buffers`).
const RESERVED_BUFFERS: usize = 64;

/// A frame buffer: `buf` is the whole buffer (its length is the capacity available for
/// replies), `len` the bytes of the frame.
#[derive(Debug)]
pub struct Frame<'a> {
    pub buf: &'a mut [u8],
    pub len: usize,
}

impl Frame<'_> {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// What to do with a processed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the rewritten frame on this port.
    Forward(PortId),
    /// Send the reply the engine wrote over the frame on this port.
    Reply(PortId),
    /// The engine kept a copy until the next hop resolves; release the buffer.
    Hold,
    /// Handled, nothing to send.
    Consumed,
    /// Dropped for this (counted) reason.
    Drop(DropReason),
    /// Another shard must finish this frame: pass it, with its arrival port, to that
    /// shard's `process_handed` (see "Shards" in the module doc).
    Handoff(usize),
}

/// Whether a datagram goes on after translation or filtering, or was parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Go,
    /// A fragment parked until its first fragment arrives.
    Parked,
    /// Another shard owns the datagram's mapping.
    Handoff(usize),
}

#[derive(Debug, Clone, Copy)]
enum NextHop {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    /// The configuration as written (`lease`).
    config: Config,
    /// What the tables are built from: `config` with the ports' leases (`lease`).
    effective: Config,
    /// DHCP leases by `PortId` index.
    leases: Vec<Option<lease::Lease4>>,
    /// What IPv6 ports learned on their links, by `PortId` index (`lease6`).
    leases6: Vec<Option<lease6::Lease6>>,
    /// Address conflict probes under way, at most one a port: ARP (`l2`) and
    /// Duplicate Address Detection (`autoconf`).
    probes4: probes::Probes<Ipv4Addr>,
    probes6: probes::Probes<Ipv6Addr>,
    /// Indexed by `PortId`, in `port::layout` order.
    ports: Ports,
    /// The smallest MTU of the ports with the inside role: what an inbound or
    /// hairpinned datagram is checked against before translation names its port.
    inside_mtu: usize,
    nat: Nat44,
    fw6: Fw6,
    /// The egress policy, asked when a session or state would be created.
    policy: policy::Policy,
    routes: Routes,
    arp: Cache<Ipv4Addr>,
    ndp: Cache<Ipv6Addr>,
    frags: Frags,
    buffers: Buffers,
    tx: VecDeque<(PortId, BufId)>,
    /// Frames for other shards: (shard, arrival port, buffer).
    handoff: VecDeque<(usize, PortId, BufId)>,
    reinject: VecDeque<(PortId, BufId)>,
    icmp_limit: icmp::Budgets,
    local: local::Local,
    stats: Stats,
    ident: u16,
    scratch4: Vec<Event<Ipv4Addr>>,
    scratch6: Vec<Event<Ipv6Addr>>,
    scratch_bufs: Vec<BufId>,
    /// (max sessions, max IPv6 states) the tables were allocated for.
    capacity: (u32, u32),
    /// Offload state of the frame being processed (`process_offloaded`).
    offload: Offload,
    /// Engine time of the last `poll`, in milliseconds: when a configuration change
    /// (which takes no time argument) ends sessions.
    clock: u64,
    shard: Shard,
}

impl Engine {
    /// Builds an engine for a validated configuration and the ports' MAC addresses.
    /// `setups` has one entry per port of `port::layout(config)`, in that order; a
    /// port it does not name (a caller's bug, never a panic in PID 1) gets the zero
    /// MAC until `port_moved` gives it its own.
    pub fn new(config: &Config, setups: &[PortSetup]) -> Engine {
        Engine::new_shard(config, setups, Shard::ONLY)
    }

    /// `new` for shard `shard` of several (see "Shards" in the module doc).
    pub fn new_shard(config: &Config, setups: &[PortSetup], shard: Shard) -> Engine {
        let layout = port::layout(config);
        let unnamed = PortSetup {
            mac: Mac::default(),
        };
        let ports = Ports::new(
            layout
                .iter()
                .enumerate()
                .map(|(i, c)| PortState::new(c, setups.get(i).copied().unwrap_or(unnamed))),
        );
        let inside_mtu = ports
            .iter()
            .filter(|p| p.roles.inside)
            .map(|p| p.mtu)
            .min()
            .unwrap_or(usize::MAX);
        Engine {
            stats: Stats::default(),
            ports,
            inside_mtu,
            nat: Nat44::new(config, shard),
            fw6: Fw6::new(config, shard),
            policy: {
                let mut p = policy::Policy::new(&config.policy);
                p.limit_hosts(None, &config.host_limits);
                p
            },
            routes: Routes::from_config(config),
            arp: Cache::default(),
            ndp: Cache::default(),
            frags: Frags::new(config.timeouts.fragment),
            buffers: Buffers::new(POOL_BUFFERS, ETH + port::max_mtu(config), RESERVED_BUFFERS),
            tx: VecDeque::with_capacity(POOL_BUFFERS),
            handoff: VecDeque::with_capacity(POOL_BUFFERS),
            reinject: VecDeque::with_capacity(POOL_BUFFERS),
            icmp_limit: icmp::Budgets::new(config.icmp.rate_limit, config.icmp.burst),
            local: local::Local::default(),
            ident: 0,
            scratch4: Vec::with_capacity(neigh::MAX_ENTRIES),
            scratch6: Vec::with_capacity(neigh::MAX_ENTRIES),
            scratch_bufs: Vec::with_capacity(POOL_BUFFERS),
            capacity: (config.nat.max_sessions, config.ipv6.max_states),
            offload: Offload::NONE,
            clock: 0,
            config: config.clone(),
            effective: config.clone(),
            leases: Vec::new(),
            leases6: Vec::new(),
            probes4: probes::Probes::default(),
            probes6: probes::Probes::default(),
            shard,
        }
    }

    /// Which shard this engine is.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Processes one received frame. See the module docs for the contract.
    pub fn process(&mut self, port: PortId, frame: &mut Frame<'_>, now_ms: u64) -> Verdict {
        self.process_offloaded(port, frame, Offload::NONE, now_ms)
    }

    /// `process` for a frame whose checksum or segmentation was offloaded (see the
    /// module docs); `offload` comes from `wire::offload::prepare`.
    pub fn process_offloaded(
        &mut self,
        port: PortId,
        frame: &mut Frame<'_>,
        offload: Offload,
        now_ms: u64,
    ) -> Verdict {
        frame.len = frame.len.min(frame.buf.len());
        let counters = &mut self.stats.ports[port.slot()];
        counters.rx_packets += 1;
        counters.rx_bytes += frame.len as u64;
        if self.shard.count() > 1 && self.shard.index() == 0 && is_neighbour_frame(frame.bytes()) {
            self.share_neighbour_frame(port, frame);
        }
        self.offload = offload;
        let verdict = self.dispatch(port, frame, now_ms);
        self.offload = Offload::NONE;
        self.account(port, verdict, frame.len);
        if !self.reinject.is_empty() {
            self.run_reinjected(now_ms);
        }
        verdict
    }

    /// Processes a frame another shard handed to this one (`Verdict::Handoff` or
    /// `pop_handoff`); see "Shards" in the module doc. `port` is the port it arrived on.
    pub fn process_handed(&mut self, port: PortId, frame: &mut Frame<'_>, now_ms: u64) -> Verdict {
        frame.len = frame.len.min(frame.buf.len());
        self.stats.handed_in += 1;
        let verdict = if is_neighbour_frame(frame.bytes()) {
            // Shard 0 answered it and counted what it dropped; learn only.
            let _ = self.dispatch(port, frame, now_ms);
            Verdict::Consumed
        } else if self.hairpinned_half(frame) {
            self.hairpin4_handed(frame, now_ms)
        } else {
            self.dispatch(port, frame, now_ms)
        };
        self.account(port, verdict, frame.len);
        if !self.reinject.is_empty() {
            self.run_reinjected(now_ms);
        }
        verdict
    }

    /// Whether a handed frame is the inbound half of a hairpinned IPv4 datagram: from
    /// a pool address (translated by the shard that handed it) to a pool address.
    fn hairpinned_half(&self, frame: &Frame<'_>) -> bool {
        frame.len >= ETH
            && ethernet::Frame::new_checked(frame.bytes())
                .is_ok_and(|e| e.ethertype() == ethertype::IPV4)
            && crate::wire::ipv4::Packet::new_checked(&frame.buf[ETH..frame.len])
                .is_ok_and(|p| self.nat.is_pool_addr(p.src()) && self.nat.is_pool_addr(p.dst()))
    }

    /// Queues a copy of a received ARP or NDP frame for every other shard.
    fn share_neighbour_frame(&mut self, port: PortId, frame: &Frame<'_>) {
        for k in 1..self.shard.count() {
            match self.buffers.store(frame.bytes()) {
                Some(id) => {
                    self.handoff.push_back((k, port, id));
                    self.stats.handed_off += 1;
                }
                None => self.stats.drop(DropReason::BufferPoolFull),
            }
        }
    }

    /// Takes the next frame this shard hands to another on its own, copying it into
    /// `out`: (the shard, the frame's arrival port, its length). The caller passes it
    /// to that shard's `process_handed`.
    pub fn pop_handoff(&mut self, out: &mut [u8]) -> Option<(usize, PortId, usize)> {
        let (shard, port, id) = self.handoff.pop_front()?;
        let frame = self.buffers.frame(id);
        let n = frame.len().min(out.len());
        out[..n].copy_from_slice(&frame[..n]);
        self.buffers.free(id);
        Some((shard, port, n))
    }

    /// Counts a frame the I/O layer dropped before the engine saw it (e.g. a frame the
    /// NIC truncated or whose VLAN tag it stripped).
    pub fn count_drop(&mut self, port: PortId, reason: DropReason) {
        let c = &mut self.stats.ports[port.slot()];
        c.rx_packets += 1;
        c.drops += 1;
        self.stats.drop(reason);
    }

    /// Takes the next frame the engine made itself, copying it into `out`.
    pub fn pop_transmit(&mut self, out: &mut [u8]) -> Option<(PortId, usize)> {
        let (port, id) = self.tx.pop_front()?;
        let frame = self.buffers.frame(id);
        let n = frame.len().min(out.len());
        out[..n].copy_from_slice(&frame[..n]);
        self.buffers.free(id);
        let c = &mut self.stats.ports[port.slot()];
        c.tx_packets += 1;
        c.tx_bytes += n as u64;
        Some((port, n))
    }

    /// Runs the timers.
    pub fn poll(&mut self, now_ms: u64) {
        self.clock = now_ms;
        let now_s = (now_ms / 1000) as u32;
        self.nat.poll(now_s, &mut self.stats);
        self.fw6.poll(now_s, &mut self.stats);
        let mut events = std::mem::take(&mut self.scratch4);
        self.arp.poll(now_ms, &mut events);
        self.neighbour_events(&mut events, NextHop::V4);
        self.scratch4 = events;
        let mut events = std::mem::take(&mut self.scratch6);
        self.ndp.poll(now_ms, &mut events);
        self.neighbour_events(&mut events, NextHop::V6);
        self.scratch6 = events;
        let mut expired = std::mem::take(&mut self.scratch_bufs);
        self.frags.poll(now_ms, &mut expired);
        for buf in expired.drain(..) {
            self.discard(buf, DropReason::FragmentTimeout);
        }
        self.scratch_bufs = expired;
    }

    fn account(&mut self, port: PortId, verdict: Verdict, len: usize) {
        match verdict {
            Verdict::Forward(out) | Verdict::Reply(out) => {
                let c = &mut self.stats.ports[out.slot()];
                c.tx_packets += 1;
                c.tx_bytes += len as u64;
            }
            Verdict::Drop(reason) => {
                self.stats.drop(reason);
                self.stats.ports[port.slot()].drops += 1;
            }
            Verdict::Handoff(_) => self.stats.handed_off += 1,
            Verdict::Hold | Verdict::Consumed => {}
        }
    }

    fn discard(&mut self, buf: BufId, reason: DropReason) {
        self.buffers.free(buf);
        self.stats.drop(reason);
    }

    fn dispatch(&mut self, port: PortId, frame: &mut Frame<'_>, now: u64) -> Verdict {
        let Ok(eth) = ethernet::Frame::new_checked(frame.bytes()) else {
            return Verdict::Drop(DropReason::FrameTruncated);
        };
        let p = &self.ports[port];
        // A GSO super-frame is longer than any MTU; its segments are checked on egress.
        if frame.len > ETH + p.mtu && self.offload.gso_segment.is_none() {
            return Verdict::Drop(DropReason::FrameTooLong);
        }
        let dst = eth.dst();
        if dst != p.mac && !dst.is_multicast() {
            return Verdict::Drop(DropReason::NotForUs);
        }
        match eth.ethertype() {
            ethertype::ARP => self.arp_in(port, frame, now),
            ethertype::IPV4 => self.ipv4_in(port, frame, now),
            ethertype::IPV6 => self.ipv6_in(port, frame, now),
            ethertype::VLAN => Verdict::Drop(DropReason::VlanTagged),
            _ => Verdict::Drop(DropReason::UnknownEthertype),
        }
    }

    /// Prepares a frame for a buffer of the engine's (parked for ARP/NDP, queued for a
    /// service), which holds wire-sized frames with full checksums only: a GSO
    /// super-frame is refused, a partial checksum completed.
    fn settle_offload(&mut self, frame: &mut Frame<'_>) -> Result<(), DropReason> {
        if self.offload.gso_segment.is_some() {
            return Err(DropReason::GsoNotBuffered);
        }
        if self.offload.csum == Csum::Partial {
            offload::complete_checksum(&mut frame.buf[..frame.len]);
            self.offload.csum = Csum::Full;
        }
        Ok(())
    }
}

/// Whether `frame` is ARP, or an IPv6 Neighbor Solicitation or Advertisement (ICMPv6
/// right after the IPv6 header, as RFC 4861 sends them): what shard 0 shares with the
/// others.
fn is_neighbour_frame(frame: &[u8]) -> bool {
    const NEXT_HEADER: usize = ETH + 6;
    const ICMP_TYPE: usize = ETH + 40;
    match frame.get(12..14) {
        Some([0x08, 0x06]) => true,
        Some([0x86, 0xdd]) => {
            frame.get(NEXT_HEADER) == Some(&crate::wire::proto::ICMPV6)
                && frame.get(ICMP_TYPE).is_some_and(|&t| {
                    t == crate::wire::icmpv6::NEIGHBOR_SOLICIT
                        || t == crate::wire::icmpv6::NEIGHBOR_ADVERT
                })
        }
        _ => false,
    }
}
