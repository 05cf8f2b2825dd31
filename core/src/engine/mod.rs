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

pub mod buffers;
pub mod frag;
pub mod fw6;
pub mod icmp;
pub mod index;
pub mod list;
pub mod local;
pub mod lru;
pub mod nat44;
pub mod neigh;
pub mod route;
pub mod stats;
pub mod track;

use buffers::{BufId, Buffers};
use firmware_config::Config;
use frag::{FragAction, FragKey, Frags};
use fw6::Fw6;
use ipnet::{Ipv4Net, Ipv6Net};
use nat44::Nat44;
use neigh::{Cache, Claim, Event, Resolve};
use route::Routes;
use stats::{DropReason, Stats};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};
use track::Dir;

use crate::wire::checksum::{self, Csum};
use crate::wire::ethernet::{self, ethertype, Mac};
use crate::wire::offload::{self, Offload};
use crate::wire::{arp, icmpv4, icmpv6, ipv4, ipv6, proto, tcp};

const ETH: usize = ethernet::HEADER_LEN;
/// Frame buffers for parked packets and engine-made frames.
const POOL_BUFFERS: usize = 512;
/// Of those, kept for the box's own ARP requests and Neighbor Solicitations (see
/// `buffers`).
const RESERVED_BUFFERS: usize = 64;

/// A data port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    Inside = 0,
    Outside = 1,
}

impl Port {
    pub const ALL: [Port; 2] = [Port::Inside, Port::Outside];

    pub fn name(self) -> &'static str {
        match self {
            Port::Inside => "inside",
            Port::Outside => "outside",
        }
    }
}

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
    Forward(Port),
    /// Send the reply the engine wrote over the frame on this port.
    Reply(Port),
    /// The engine kept a copy until the next hop resolves; release the buffer.
    Hold,
    /// Handled, nothing to send.
    Consumed,
    /// Dropped for this (counted) reason.
    Drop(DropReason),
}

/// What the I/O layer knows about a port that the configuration does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSetup {
    pub mac: Mac,
}

#[derive(Debug, Clone)]
struct PortState {
    mac: Mac,
    ipv4: Option<Ipv4Net>,
    /// The directed broadcast address of `ipv4` (none for /31 and /32).
    broadcast4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Net>,
    link_local: Ipv6Addr,
    mtu: usize,
}

/// A port as the shell shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub port: Port,
    pub mac: Mac,
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    pub link_local: Ipv6Addr,
    pub mtu: usize,
}

/// Whether a datagram goes on after translation or filtering, or was parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Go,
    /// A fragment parked until its first fragment arrives.
    Parked,
}

#[derive(Debug, Clone, Copy)]
enum NextHop {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    ports: [PortState; 2],
    nat: Nat44,
    fw6: Fw6,
    routes: Routes,
    arp: Cache<Ipv4Addr>,
    ndp: Cache<Ipv6Addr>,
    frags: Frags,
    buffers: Buffers,
    tx: VecDeque<(Port, BufId)>,
    reinject: VecDeque<(Port, BufId)>,
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
}

/// The part of a configuration that shapes the tables and the forwarding topology:
/// the configuration with every in-place tunable reset to its default. A tunable reset
/// here must be applied by `reconfigure` (the `retune`s); the test
/// `in_place_reconfiguration_matches_a_fresh_engine` changes every scalar setting in
/// turn and fails if an engine reconfigured in place differs from a fresh one.
fn addressing(config: &Config) -> Config {
    let mut c = config.clone();
    let defaults = firmware_config::Nat::default();
    c.hostname = String::new();
    c.nat.filtering = defaults.filtering;
    c.nat.max_sessions = defaults.max_sessions;
    c.nat.max_sessions_per_host = defaults.max_sessions_per_host;
    c.nat.max_ports_per_host = defaults.max_ports_per_host;
    c.nat.icmp_on_limit = defaults.icmp_on_limit;
    c.nat.port_reuse_hold = defaults.port_reuse_hold;
    c.nat.udp_inbound_refresh = defaults.udp_inbound_refresh;
    c.nat.mss_clamp = defaults.mss_clamp;
    c.ipv6.max_states = firmware_config::Ipv6Filter::default().max_states;
    c.timeouts = Default::default();
    c.icmp = Default::default();
    c.shell = Default::default();
    c.log = Default::default();
    c.metrics = Default::default();
    c
}

/// The EUI-64 link-local address of a MAC (RFC 4291 appendix A).
fn link_local(mac: Mac) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 2,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

impl Engine {
    /// Builds an engine for a validated configuration and the ports' MAC addresses.
    pub fn new(config: &Config, inside: PortSetup, outside: PortSetup) -> Engine {
        let port = |p: &firmware_config::Port, s: PortSetup| PortState {
            mac: s.mac,
            ipv4: p.ipv4,
            broadcast4: p
                .ipv4
                .filter(|n| n.prefix_len() < 31)
                .map(|n| n.broadcast()),
            ipv6: p.ipv6,
            link_local: link_local(s.mac),
            mtu: usize::from(p.mtu),
        };
        Engine {
            ports: [port(&config.inside, inside), port(&config.outside, outside)],
            nat: Nat44::new(config),
            fw6: Fw6::new(config),
            routes: Routes::from_config(config),
            arp: Cache::default(),
            ndp: Cache::default(),
            frags: Frags::new(config.timeouts.fragment),
            buffers: Buffers::new(
                POOL_BUFFERS,
                ETH + usize::from(config.inside.mtu.max(config.outside.mtu)),
                RESERVED_BUFFERS,
            ),
            tx: VecDeque::with_capacity(POOL_BUFFERS),
            reinject: VecDeque::with_capacity(POOL_BUFFERS),
            icmp_limit: icmp::Budgets::new(config.icmp.rate_limit, config.icmp.burst),
            local: local::Local::default(),
            stats: Stats::default(),
            ident: 0,
            scratch4: Vec::with_capacity(neigh::MAX_ENTRIES),
            scratch6: Vec::with_capacity(neigh::MAX_ENTRIES),
            scratch_bufs: Vec::with_capacity(POOL_BUFFERS),
            capacity: (config.nat.max_sessions, config.ipv6.max_states),
            offload: Offload::NONE,
            config: config.clone(),
        }
    }

    // ---- queries (for the shell, metrics and tests) ----

    /// The most bytes an engine for `config` holds in its tables and buffers, for a
    /// check against the memory the box has before it is built.
    pub fn table_bytes(config: &Config) -> usize {
        Nat44::table_bytes(config)
            + Fw6::table_bytes(config)
            + POOL_BUFFERS * (ETH + usize::from(config.inside.mtu.max(config.outside.mtu)))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn clear_stats(&mut self) {
        self.stats = Stats::default();
        self.nat.events_mut().clear_counters();
    }

    /// Applies a new, validated configuration. Settings that only tune behaviour
    /// (filtering, limits, timeouts, MSS clamp, ICMP rate, hold time) change in place
    /// and every session survives; anything that changes addressing (ports,
    /// addresses, pool, port range, prefixes, routes) or grows the tables beyond their
    /// allocation rebuilds the engine, and sessions start afresh. Returns whether the
    /// sessions were kept.
    pub fn reconfigure(&mut self, new: &Config) -> bool {
        if addressing(&self.config) == addressing(new)
            && new.nat.max_sessions <= self.capacity.0
            && new.ipv6.max_states <= self.capacity.1
        {
            self.nat.retune(new);
            self.fw6.retune(new);
            self.frags.set_timeout(new.timeouts.fragment);
            self.icmp_limit = icmp::Budgets::new(new.icmp.rate_limit, new.icmp.burst);
            self.config = new.clone();
            return true;
        }
        let macs = (
            PortSetup {
                mac: self.ports[0].mac,
            },
            PortSetup {
                mac: self.ports[1].mac,
            },
        );
        let stats = self.stats.clone();
        *self = Engine::new(new, macs.0, macs.1);
        self.stats = stats;
        false
    }

    pub fn nat(&self) -> &Nat44 {
        &self.nat
    }

    pub fn nat_mut(&mut self) -> &mut Nat44 {
        &mut self.nat
    }

    pub fn fw6(&self) -> &Fw6 {
        &self.fw6
    }

    pub fn fw6_mut(&mut self) -> &mut Fw6 {
        &mut self.fw6
    }

    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    pub fn neighbours4(&self, now_ms: u64) -> Vec<neigh::NeighbourInfo<Ipv4Addr>> {
        self.arp.list(now_ms)
    }

    pub fn neighbours6(&self, now_ms: u64) -> Vec<neigh::NeighbourInfo<Ipv6Addr>> {
        self.ndp.list(now_ms)
    }

    pub fn port_info(&self, port: Port) -> PortInfo {
        let p = &self.ports[port as usize];
        PortInfo {
            port,
            mac: p.mac,
            ipv4: p.ipv4,
            ipv6: p.ipv6,
            link_local: p.link_local,
            mtu: p.mtu,
        }
    }

    // ---- the packet path ----

    /// Processes one received frame. See the module docs for the contract.
    pub fn process(&mut self, port: Port, frame: &mut Frame<'_>, now_ms: u64) -> Verdict {
        self.process_offloaded(port, frame, Offload::NONE, now_ms)
    }

    /// `process` for a frame whose checksum or segmentation was offloaded (see the
    /// module docs); `offload` comes from `wire::offload::prepare`.
    pub fn process_offloaded(
        &mut self,
        port: Port,
        frame: &mut Frame<'_>,
        offload: Offload,
        now_ms: u64,
    ) -> Verdict {
        frame.len = frame.len.min(frame.buf.len());
        let counters = &mut self.stats.ports[port as usize];
        counters.rx_packets += 1;
        counters.rx_bytes += frame.len as u64;
        self.offload = offload;
        let verdict = self.dispatch(port, frame, now_ms);
        self.offload = Offload::NONE;
        self.account(port, verdict, frame.len);
        if !self.reinject.is_empty() {
            self.run_reinjected(now_ms);
        }
        verdict
    }

    /// Counts a frame the I/O layer dropped before the engine saw it (e.g. a frame the
    /// NIC truncated or whose VLAN tag it stripped).
    pub fn count_drop(&mut self, port: Port, reason: DropReason) {
        let c = &mut self.stats.ports[port as usize];
        c.rx_packets += 1;
        c.drops += 1;
        self.stats.drop(reason);
    }

    /// Takes the next frame the engine made itself, copying it into `out`.
    pub fn pop_transmit(&mut self, out: &mut [u8]) -> Option<(Port, usize)> {
        let (port, id) = self.tx.pop_front()?;
        let frame = self.buffers.frame(id);
        let n = frame.len().min(out.len());
        out[..n].copy_from_slice(&frame[..n]);
        self.buffers.free(id);
        let c = &mut self.stats.ports[port as usize];
        c.tx_packets += 1;
        c.tx_bytes += n as u64;
        Some((port, n))
    }

    // ---- the box's own endpoints (see `local`) ----

    /// Replaces what the box's services receive.
    pub fn bind_local(&mut self, bindings: &[local::Binding]) {
        self.local.bind(bindings);
    }

    pub fn local_bindings(&self) -> &[local::Binding] {
        self.local.bindings()
    }

    /// Takes the oldest datagram delivered to a service, copying it into `out`.
    pub fn pop_local(&mut self, out: &mut [u8]) -> Option<local::Delivery> {
        self.local.pop(&mut self.buffers, out)
    }

    /// The box's address toward `dst`: the address of the port its route leaves by
    /// (for IPv4 on a port without one, the first pool address).
    pub fn source_for(&self, dst: std::net::IpAddr) -> Option<std::net::IpAddr> {
        match dst {
            std::net::IpAddr::V4(a) => {
                let (port, _) = self.routes.lookup4(a)?;
                self.source4(port).map(Into::into)
            }
            std::net::IpAddr::V6(a) => {
                let (port, _) = self.routes.lookup6(&a)?;
                self.ports[port as usize].ipv6.map(|n| n.addr().into())
            }
        }
    }

    /// Sends an IP datagram the box's services made (`ip` starts at the IP header and
    /// its source is one of the box's addresses): routed, its next hop resolved (the
    /// datagram waits if needed), and queued for `pop_transmit`.
    pub fn originate(&mut self, ip: &[u8], now_ms: u64) -> Result<(), DropReason> {
        let (egress, hop, kind) = match ip.first().map(|b| b >> 4) {
            Some(4) => {
                let p = ipv4::Packet::new_checked(ip).map_err(|_| DropReason::Ipv4Malformed)?;
                let (egress, hop) = self.routes.lookup4(p.dst()).ok_or(DropReason::NoRoute)?;
                (egress, NextHop::V4(hop), ethertype::IPV4)
            }
            Some(6) => {
                let p = ipv6::Packet::new_checked(ip).map_err(|_| DropReason::Ipv6Malformed)?;
                let (egress, hop) = self.routes.lookup6(&p.dst()).ok_or(DropReason::NoRoute)?;
                (egress, NextHop::V6(hop), ethertype::IPV6)
            }
            _ => return Err(DropReason::UnknownEthertype),
        };
        if ip.len() > self.ports[egress as usize].mtu {
            return Err(DropReason::TooBig);
        }
        let id = self.buffers.alloc().ok_or(DropReason::BufferPoolFull)?;
        let (mut data, _) = self.buffers.take(id);
        let len = ETH + ip.len();
        data[12..14].copy_from_slice(&kind.to_be_bytes());
        data[ETH..len].copy_from_slice(ip);
        let mut frame = Frame {
            buf: &mut data,
            len,
        };
        let verdict = self.send(egress, hop, &mut frame, now_ms);
        self.buffers.put(id, data, len);
        match verdict {
            Verdict::Forward(out) => self.tx.push_back((out, id)),
            // `send` parked a copy, or refused.
            _ => self.buffers.free(id),
        }
        match verdict {
            Verdict::Drop(reason) => Err(reason),
            _ => {
                self.stats.local_sent += 1;
                Ok(())
            }
        }
    }

    /// Forgets the ARP and NDP entries learnt on `port`: its interface was replaced
    /// (it disappeared and came back), so the neighbours behind it may have new MACs
    /// and must be resolved again. Packets waiting for them are dropped (counted as
    /// `neighbour_unresolved`).
    pub fn link_replaced(&mut self, port: Port) {
        self.forget_neighbours(port);
    }

    /// The port now runs on an interface with MAC `mac` (the configuration named
    /// another interface): the box answers for its addresses with the new MAC, and
    /// its link-local address follows (RFC 4291 appendix A).
    pub fn port_moved(&mut self, port: Port, mac: Mac) {
        let p = &mut self.ports[port as usize];
        p.mac = mac;
        p.link_local = link_local(mac);
        self.forget_neighbours(port);
    }

    fn forget_neighbours(&mut self, port: Port) {
        let mut parked = self.arp.forget_port(port);
        parked.extend(self.ndp.forget_port(port));
        for buf in parked {
            self.discard(buf, DropReason::NeighbourUnresolved);
        }
    }

    /// Runs the timers.
    pub fn poll(&mut self, now_ms: u64) {
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

    /// Sends the requests a neighbour cache asked for and drops what waited in vain.
    fn neighbour_events<A>(&mut self, events: &mut Vec<Event<A>>, hop: fn(A) -> NextHop) {
        for e in events.drain(..) {
            match e {
                Event::Probe(port, addr, to) => self.solicit(port, hop(addr), to),
                Event::Failed(buf) => self.discard(buf, DropReason::NeighbourUnresolved),
            }
        }
    }

    fn account(&mut self, port: Port, verdict: Verdict, len: usize) {
        match verdict {
            Verdict::Forward(out) | Verdict::Reply(out) => {
                let c = &mut self.stats.ports[out as usize];
                c.tx_packets += 1;
                c.tx_bytes += len as u64;
            }
            Verdict::Drop(reason) => {
                self.stats.drop(reason);
                self.stats.ports[port as usize].drops += 1;
            }
            Verdict::Hold | Verdict::Consumed => {}
        }
    }

    fn discard(&mut self, buf: BufId, reason: DropReason) {
        self.buffers.free(buf);
        self.stats.drop(reason);
    }

    fn dispatch(&mut self, port: Port, frame: &mut Frame<'_>, now: u64) -> Verdict {
        let Ok(eth) = ethernet::Frame::new_checked(frame.bytes()) else {
            return Verdict::Drop(DropReason::FrameTruncated);
        };
        let p = &self.ports[port as usize];
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

    // ---- ARP ----

    /// The box's IPv4 addresses on a port: the port address, plus the pool on the
    /// outside (the gateway must be able to reach every pool address).
    fn owns4(&self, port: Port, addr: Ipv4Addr) -> bool {
        self.ports[port as usize]
            .ipv4
            .is_some_and(|n| n.addr() == addr)
            || (port == Port::Outside && self.nat.is_pool_addr(addr))
    }

    /// The address the box speaks from on a port.
    fn source4(&self, port: Port) -> Option<Ipv4Addr> {
        self.ports[port as usize]
            .ipv4
            .map(|n| n.addr())
            .or_else(|| self.nat.pool().first().copied())
    }

    /// Whether `addr` is on-link on `port`: in the port's IPv4 prefix (a port without
    /// one has no IPv4 neighbours). Every route's next hop is (the configuration checks).
    fn on_link4(&self, port: Port, addr: Ipv4Addr) -> bool {
        self.ports[port as usize]
            .ipv4
            .is_some_and(|n| n.contains(&addr))
    }

    /// ARP (RFC 826): requests for our addresses are answered; what an on-link sender
    /// says about itself updates the cache (see `neigh`). A claim from an off-link
    /// sender is never learnt: a reply or announcement to us from one is dropped as
    /// `neighbour_off_link`; a request from one for our address is still answered (the
    /// reply goes to the MAC that asked, and nothing is stored).
    fn arp_in(&mut self, port: Port, frame: &mut Frame<'_>, now: u64) -> Verdict {
        let Ok(a) = arp::Packet::new_checked(&frame.buf[ETH..frame.len]) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        let (op, sender_ip, sender_mac, target) =
            (a.operation(), a.sender_ip(), a.sender_mac(), a.target_ip());
        let ours = self.owns4(port, target);
        let claims = !sender_ip.is_unspecified()
            && !sender_mac.is_multicast()
            && !self.owns4(port, sender_ip);
        let on_link = self.on_link4(port, sender_ip);
        if claims && on_link {
            // Only a reply sent to our MAC answers a request of ours.
            let to_us = ethernet::Frame::new_checked(&frame.buf[..frame.len])
                .is_ok_and(|e| e.dst() == self.ports[port as usize].mac);
            let claim = Claim {
                solicited: op == arp::OP_REPLY && to_us,
                ..Claim::announcement(sender_mac, ours)
            };
            let learnt = self.arp.learn(port, sender_ip, claim, now);
            self.learnt(port, sender_mac, learnt);
        }
        match (op, ours) {
            (arp::OP_REQUEST, true) => {
                let mac = self.ports[port as usize].mac;
                match icmp::arp_reply(frame.buf, mac, target) {
                    Some(len) => {
                        frame.len = len;
                        Verdict::Reply(port)
                    }
                    None => Verdict::Drop(DropReason::ArpMalformed),
                }
            }
            (_, true) if claims && !on_link => Verdict::Drop(DropReason::NeighbourOffLink),
            (_, true) => Verdict::Consumed,
            _ => Verdict::Drop(DropReason::NeighbourIgnored),
        }
    }

    /// Sends the packets a neighbour's answer released and drops those of an entry
    /// evicted to make room for it.
    fn learnt(
        &mut self,
        port: Port,
        mac: Mac,
        (released, evicted): (neigh::Queue, Option<neigh::Queue>),
    ) {
        self.release(port, mac, &released);
        self.evicted(evicted);
    }

    /// Counts an eviction from a neighbour cache and drops the packets that waited.
    fn evicted(&mut self, evicted: Option<neigh::Queue>) {
        if let Some(queue) = evicted {
            self.stats.neighbours_evicted += 1;
            for buf in queue {
                self.discard(buf, DropReason::NeighbourEvicted);
            }
        }
    }

    /// Sends packets that waited for `mac`.
    fn release(&mut self, port: Port, mac: Mac, bufs: &[BufId]) {
        let own = self.ports[port as usize].mac;
        for &id in bufs {
            let b = self.buffers.buf_mut(id);
            b[0..6].copy_from_slice(&mac.0);
            b[6..12].copy_from_slice(&own.0);
            self.tx.push_back((port, id));
        }
    }

    /// Queues an ARP request or Neighbor Solicitation for `hop` on `port`: broadcast
    /// (multicast), or unicast to `to` (a PROBE of a cached MAC). It may use the
    /// buffers kept in reserve, which parked packets cannot take.
    fn solicit(&mut self, port: Port, hop: NextHop, to: Option<Mac>) {
        let Some(id) = self.buffers.alloc_reserved() else {
            self.stats.drop(DropReason::NeighbourRequestNoBuffer);
            return;
        };
        let p = &self.ports[port as usize];
        let mac = p.mac;
        let len = match hop {
            NextHop::V4(target) => {
                let Some(src) = self.source4(port) else {
                    self.buffers.free(id);
                    return;
                };
                self.stats.arp_requests += 1;
                icmp::arp_request(self.buffers.buf_mut(id), mac, src, target, to)
            }
            NextHop::V6(target) => {
                let src = if target.is_unicast_link_local() {
                    p.link_local
                } else {
                    p.ipv6.map_or(p.link_local, |n| n.addr())
                };
                self.stats.ndp_solicits += 1;
                icmp::neighbor_solicit(self.buffers.buf_mut(id), mac, &src, &target, to)
            }
        };
        self.buffers.set_len(id, len);
        self.tx.push_back((port, id));
    }

    /// Finishes a forwarded frame: fills in the Ethernet header for the next hop, or
    /// parks the frame until the next hop answers.
    fn send(&mut self, egress: Port, hop: NextHop, frame: &mut Frame<'_>, now: u64) -> Verdict {
        let (resolved, evicted) = match hop {
            NextHop::V4(a) => self.arp.resolve(egress, a, now),
            NextHop::V6(a) => self.ndp.resolve(egress, a, now),
        };
        self.evicted(evicted);
        match resolved {
            Resolve::Known(mac) => {
                let own = self.ports[egress as usize].mac;
                frame.buf[0..6].copy_from_slice(&mac.0);
                frame.buf[6..12].copy_from_slice(&own.0);
                Verdict::Forward(egress)
            }
            Resolve::Unknown { probe } => {
                let verdict = self.park(egress, hop, frame);
                if probe {
                    self.solicit(egress, hop, None);
                }
                verdict
            }
        }
    }

    /// Parks a frame until `hop` on `egress` resolves.
    fn park(&mut self, egress: Port, hop: NextHop, frame: &mut Frame<'_>) -> Verdict {
        if let Err(reason) = self.settle_offload(frame) {
            return Verdict::Drop(reason);
        }
        let Some(id) = self.buffers.store(frame.bytes()) else {
            return Verdict::Drop(DropReason::BufferPoolFull);
        };
        let parked = match hop {
            NextHop::V4(a) => self.arp.park(egress, a, id),
            NextHop::V6(a) => self.ndp.park(egress, a, id),
        };
        match parked {
            Ok(()) => Verdict::Hold,
            Err(reason) => {
                self.buffers.free(id);
                Verdict::Drop(reason)
            }
        }
    }

    // ---- the box's own ICMP ----

    /// Takes a token from the general rate limit for a message the box generates (RFC
    /// 1812 4.3.2.8, RFC 4443 2.4(f)), counting the message as sent or as suppressed.
    fn icmp_allowed(&mut self, now: u64) -> bool {
        self.icmp_budget_allows(icmp::Budget::Other, now)
    }

    /// As `icmp_allowed`, from `budget` (PMTUD errors have their own: see `icmp`).
    fn icmp_budget_allows(&mut self, budget: icmp::Budget, now: u64) -> bool {
        if self.icmp_limit.allow(budget, now) {
            self.stats.icmp_sent += 1;
            true
        } else {
            self.stats.icmp_rate_limited += 1;
            false
        }
    }

    /// Answers `frame` with an ICMPv4 error (rate-limited) and counts `reason`; if no
    /// error may or can be sent, the verdict is a plain drop.
    fn reject4(
        &mut self,
        port: Port,
        frame: &mut Frame<'_>,
        reason: DropReason,
        kind: (u8, u8, u32),
        now: u64,
    ) -> Verdict {
        let ip = &frame.buf[ETH..frame.len];
        let Some(src) = self.source4(port) else {
            return Verdict::Drop(reason);
        };
        if !icmp::may_error4(ip) || !icmp::error4_fits(frame.buf.len(), ip.len()) {
            return Verdict::Drop(reason);
        }
        if !self.icmp_budget_allows(icmp::Budget::of4(kind), now) {
            return Verdict::Drop(reason);
        }
        self.ident = self.ident.wrapping_add(1);
        let mac = self.ports[port as usize].mac;
        let Some(len) = icmp::error4(frame.buf, frame.len, mac, src, kind, self.ident) else {
            return Verdict::Drop(reason);
        };
        frame.len = len;
        // The offending packet is dropped even though a reply leaves.
        self.stats.drop(reason);
        self.stats.ports[port as usize].drops += 1;
        Verdict::Reply(port)
    }

    /// As `reject4`, for ICMPv6.
    fn reject6(
        &mut self,
        port: Port,
        frame: &mut Frame<'_>,
        reason: DropReason,
        kind: (u8, u8, u32),
        now: u64,
    ) -> Verdict {
        let ip = &frame.buf[ETH..frame.len];
        if !icmp::may_error6(ip) || !icmp::error6_fits(frame.buf.len(), ip.len()) {
            return Verdict::Drop(reason);
        }
        if !self.icmp_budget_allows(icmp::Budget::of6(kind), now) {
            return Verdict::Drop(reason);
        }
        let p = &self.ports[port as usize];
        let src = p.ipv6.map_or(p.link_local, |n| n.addr());
        let Some(len) = icmp::error6(frame.buf, frame.len, p.mac, &src, kind) else {
            return Verdict::Drop(reason);
        };
        frame.len = len;
        // The offending packet is dropped even though a reply leaves.
        self.stats.drop(reason);
        self.stats.ports[port as usize].drops += 1;
        Verdict::Reply(port)
    }

    // ---- IPv4 ----

    fn ipv4_in(&mut self, port: Port, frame: &mut Frame<'_>, now: u64) -> Verdict {
        let (src, dst, total, ttl, df, fragment, protocol, ident, first_frag) = {
            let Ok(p) = ipv4::Packet::new_checked(&frame.buf[ETH..frame.len]) else {
                return Verdict::Drop(DropReason::Ipv4Malformed);
            };
            if !p.verify_checksum() {
                return Verdict::Drop(DropReason::Ipv4BadChecksum);
            }
            (
                p.src(),
                p.dst(),
                p.total_len(),
                p.ttl(),
                p.dont_fragment(),
                p.is_fragment(),
                p.protocol(),
                p.ident(),
                p.frag_offset() == 0,
            )
        };
        frame.len = ETH + total; // strip Ethernet padding
        if martian4(src) {
            return Verdict::Drop(DropReason::MartianSource);
        }
        if port == Port::Outside && self.inside_or_own4(src) {
            return Verdict::Drop(DropReason::SpoofedFromOutside);
        }
        if dst.is_multicast() || dst.is_broadcast() || self.is_subnet_broadcast(port, dst) {
            return Verdict::Drop(DropReason::BroadcastOrMulticast);
        }
        let echo_request = protocol == proto::ICMP && first_frag && !fragment && {
            ipv4::Packet::new_checked(&frame.buf[ETH..frame.len]).is_ok_and(|p| {
                icmpv4::Packet::new_checked(p.payload())
                    .is_ok_and(|i| i.msg_type() == icmpv4::ECHO_REQUEST)
            })
        };
        let pool_dst = self.nat.is_pool_addr(dst);
        // Pool addresses are translated, except that echo requests to them are answered
        // by the box; the ports' own addresses are the box's.
        // (`owns4` without its pool test: `dst` is known not to be a pool address.)
        let port_addr = |p: Port| self.ports[p as usize].ipv4.is_some_and(|n| n.addr() == dst);
        let local = if pool_dst {
            echo_request || self.local.wants_echo_replies() && self.echo_reply_unclaimed(frame)
        } else {
            port_addr(port) || (port == Port::Inside && port_addr(Port::Outside))
        };
        if local {
            return self.local4(port, frame, echo_request, now);
        }
        let ctx = Pkt4 {
            src,
            dst,
            total,
            ttl,
            df,
            fragment,
            first_frag,
            protocol,
            ident,
        };
        match port {
            Port::Inside if pool_dst => self.hairpin4(frame, &ctx, now),
            Port::Inside => self.forward4_from_inside(frame, &ctx, now),
            Port::Outside if pool_dst => self.inbound4(frame, &ctx, now),
            Port::Outside => match self.routes.lookup4(dst) {
                Some((Port::Inside, _)) => Verdict::Drop(DropReason::InboundNotTranslated),
                Some(_) => Verdict::Drop(DropReason::TransitDenied),
                None => Verdict::Drop(DropReason::NoRoute),
            },
        }
    }

    /// Whether `src` can only be an inside host's or the box's own (BCP 38, RFC 6092
    /// REC-6 applied to IPv4): an inside prefix, a pool address, a port address. Such a
    /// source on the outside is forged.
    fn inside_or_own4(&self, src: Ipv4Addr) -> bool {
        // `owns4` of the outside port includes the pool.
        self.nat.translates(src) || Port::ALL.iter().any(|&p| self.owns4(p, src))
    }

    fn is_subnet_broadcast(&self, port: Port, dst: Ipv4Addr) -> bool {
        self.ports[port as usize].broadcast4 == Some(dst)
    }

    fn local4(
        &mut self,
        port: Port,
        frame: &mut Frame<'_>,
        echo_request: bool,
        now: u64,
    ) -> Verdict {
        if !echo_request {
            return self.deliver_local(port, frame, now);
        }
        // RFC 1122 section 3.2.2: a message whose checksum fails is discarded.
        let verified = ipv4::Packet::new_checked(&frame.buf[ETH..frame.len])
            .ok()
            .and_then(|p| {
                icmpv4::Packet::new_checked(p.payload())
                    .ok()
                    .map(|i| i.verify_checksum())
            });
        match verified {
            None => return Verdict::Drop(DropReason::IcmpMalformed),
            Some(false) => return Verdict::Drop(DropReason::IcmpBadChecksum),
            Some(true) => {}
        }
        if !self.icmp_allowed(now) {
            return Verdict::Consumed;
        }
        let mac = self.ports[port as usize].mac;
        match icmp::echo_reply4(frame.buf, frame.len, mac) {
            Some(len) => {
                frame.len = len;
                Verdict::Reply(port)
            }
            None => Verdict::Drop(DropReason::IcmpMalformed),
        }
    }

    /// Hands a packet addressed to the box to the service bound to it, if any.
    fn deliver_local(&mut self, port: Port, frame: &mut Frame<'_>, now: u64) -> Verdict {
        if !self.local.wants(port, &frame.buf[ETH..frame.len]) {
            return Verdict::Drop(DropReason::LocalUnsupported);
        }
        if let Err(reason) = self.settle_offload(frame) {
            return Verdict::Drop(reason);
        }
        let ip = &frame.buf[ETH..frame.len];
        if !self.local.deliver(&mut self.buffers, ip, now) {
            return Verdict::Drop(DropReason::LocalQueueFull);
        }
        self.stats.local_delivered += 1;
        Verdict::Consumed
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

    /// Whether an echo reply to a pool address is for a `ping` of the box's own: one
    /// that no NAT mapping claims (NAT always wins).
    fn echo_reply_unclaimed(&self, frame: &Frame<'_>) -> bool {
        let ip = &frame.buf[ETH..frame.len];
        self.local.wants(Port::Outside, ip) && !self.nat.claims_echo_reply(ip)
    }

    /// TTL and MTU checks before any rewrite, so errors quote what the sender sent.
    fn check4(
        &mut self,
        port: Port,
        egress: Port,
        frame: &mut Frame<'_>,
        ctx: &Pkt4,
        now: u64,
    ) -> Option<Verdict> {
        if ctx.ttl <= 1 {
            let kind = (icmpv4::TIME_EXCEEDED, 0, 0);
            return Some(self.reject4(port, frame, DropReason::TtlExceeded, kind, now));
        }
        let mtu = self.ports[egress as usize].mtu;
        if self.offload.network_len(ctx.total) > mtu {
            if !ctx.df {
                return Some(Verdict::Drop(DropReason::TooBigNoDf));
            }
            let kind = (
                icmpv4::DEST_UNREACHABLE,
                icmpv4::CODE_FRAG_NEEDED,
                mtu as u32,
            );
            return Some(self.reject4(port, frame, DropReason::TooBig, kind, now));
        }
        None
    }

    fn forward4_from_inside(&mut self, frame: &mut Frame<'_>, ctx: &Pkt4, now: u64) -> Verdict {
        let Some((egress, hop)) = self.routes.lookup4(ctx.dst) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        if let Some(v) = self.check4(Port::Inside, egress, frame, ctx, now) {
            return v;
        }
        if egress == Port::Outside {
            if !self.nat.translates(ctx.src) {
                return Verdict::Drop(DropReason::SpoofedSource);
            }
            match self.translate4(frame, ctx, Dir::Out, now) {
                Ok(Step::Go) => {}
                Ok(Step::Parked) => return Verdict::Hold,
                Err(reason) => return self.refuse4(frame, reason, now),
            }
        }
        self.finish4(frame, egress, hop, now)
    }

    fn inbound4(&mut self, frame: &mut Frame<'_>, ctx: &Pkt4, now: u64) -> Verdict {
        if let Some(v) = self.check4(Port::Outside, Port::Inside, frame, ctx, now) {
            return v;
        }
        match self.translate4(frame, ctx, Dir::In, now) {
            Ok(Step::Go) => self.route_inside4(frame, now),
            Ok(Step::Parked) => Verdict::Hold,
            Err(reason) => Verdict::Drop(reason),
        }
    }

    /// RFC 4787 REQ-9 / RFC 5508 REQ-7: translate out, then back in.
    fn hairpin4(&mut self, frame: &mut Frame<'_>, ctx: &Pkt4, now: u64) -> Verdict {
        if !self.nat.translates(ctx.src) {
            return Verdict::Drop(DropReason::SpoofedSource);
        }
        if let Some(v) = self.check4(Port::Inside, Port::Inside, frame, ctx, now) {
            return v;
        }
        if ctx.fragment {
            // A hairpinned datagram would need two table entries; not supported.
            return Verdict::Drop(DropReason::UnsupportedProtocol);
        }
        let now_s = (now / 1000) as u32;
        let ip = &mut frame.buf[ETH..frame.len];
        if is_icmp_error4(ctx, ip) {
            // An error about a hairpinned packet: its quote is translated the same way.
            let translated = self.nat.icmp_error(ip, Dir::Out);
            if let Err(reason) = translated.and_then(|()| self.nat.icmp_error(ip, Dir::In)) {
                return Verdict::Drop(reason);
            }
            self.stats.icmp_errors_translated += 1;
        } else {
            let csum = self.offload.csum;
            if let Err(reason) = self.nat.outbound(ip, csum, now_s, &mut self.stats) {
                return self.refuse4(frame, reason, now);
            }
            if let Err(reason) = self.nat.inbound(ip, csum, now_s, &mut self.stats) {
                return Verdict::Drop(reason);
            }
        }
        self.stats.hairpinned += 1;
        self.route_inside4(frame, now)
    }

    /// Routes a translated inbound datagram to its inside destination.
    fn route_inside4(&mut self, frame: &mut Frame<'_>, now: u64) -> Verdict {
        let Ok(p) = ipv4::Packet::new_checked(&frame.buf[ETH..frame.len]) else {
            return Verdict::Drop(DropReason::Ipv4Malformed);
        };
        let dst = p.dst();
        match self.routes.lookup4(dst) {
            Some((Port::Inside, hop)) => self.finish4(frame, Port::Inside, hop, now),
            _ => Verdict::Drop(DropReason::NoRoute),
        }
    }

    /// A NAT refusal; over a limit, optionally answered with ICMP type 3 code 13.
    fn refuse4(&mut self, frame: &mut Frame<'_>, reason: DropReason, now: u64) -> Verdict {
        let limit = matches!(
            reason,
            DropReason::SessionLimit
                | DropReason::HostSessionLimit
                | DropReason::HostPortLimit
                | DropReason::PortsExhausted
        );
        if limit && self.config.nat.icmp_on_limit {
            let kind = (icmpv4::DEST_UNREACHABLE, icmpv4::CODE_ADMIN_PROHIBITED, 0);
            return self.reject4(Port::Inside, frame, reason, kind, now);
        }
        Verdict::Drop(reason)
    }

    /// Translates a datagram (or fragment) travelling `dir`, keeping fragments of one
    /// datagram together (RFC 4787 REQ-14).
    fn translate4(
        &mut self,
        frame: &mut Frame<'_>,
        ctx: &Pkt4,
        dir: Dir,
        now: u64,
    ) -> Result<Step, DropReason> {
        let key = || FragKey::v4(ctx.src, ctx.dst, ctx.protocol, ctx.ident);
        if ctx.fragment && !ctx.first_frag {
            return match self.frags.lookup(&key()) {
                Some(FragAction::Rewrite4 { src, dst }) => {
                    let mut p = ipv4::Packet::new_checked(&mut frame.buf[ETH..frame.len])
                        .map_err(|_| DropReason::Ipv4Malformed)?;
                    p.set_src(src);
                    p.set_dst(dst);
                    self.stats.fragments_forwarded += 1;
                    Ok(Step::Go)
                }
                _ => {
                    let port = match dir {
                        Dir::Out => Port::Inside,
                        Dir::In => Port::Outside,
                    };
                    self.park_fragment(frame, key(), port, now)
                }
            };
        }
        let now_s = (now / 1000) as u32;
        let ip = &mut frame.buf[ETH..frame.len];
        if is_icmp_error4(ctx, ip) {
            self.nat.icmp_error(ip, dir)?;
            self.stats.icmp_errors_translated += 1;
        } else {
            let csum = self.offload.csum;
            match dir {
                Dir::Out => self.nat.outbound(ip, csum, now_s, &mut self.stats)?,
                Dir::In => self.nat.inbound(ip, csum, now_s, &mut self.stats)?,
            }
        }
        if ctx.fragment {
            let p = ipv4::Packet::new_checked(&frame.buf[ETH..frame.len])
                .map_err(|_| DropReason::Ipv4Malformed)?;
            let action = FragAction::Rewrite4 {
                src: p.src(),
                dst: p.dst(),
            };
            for (id, port) in self.frags.first(key(), action, now)? {
                self.reinject.push_back((port, id));
            }
        }
        Ok(Step::Go)
    }

    /// Parks a fragment that came before its first fragment.
    fn park_fragment(
        &mut self,
        frame: &Frame<'_>,
        key: FragKey,
        port: Port,
        now: u64,
    ) -> Result<Step, DropReason> {
        let id = self
            .buffers
            .store(frame.bytes())
            .ok_or(DropReason::BufferPoolFull)?;
        match self.frags.park(key, id, port, now) {
            Ok(()) => Ok(Step::Parked),
            Err(reason) => {
                self.buffers.free(id);
                Err(reason)
            }
        }
    }

    /// MSS clamp, TTL decrement, next hop.
    fn finish4(&mut self, frame: &mut Frame<'_>, egress: Port, hop: Ipv4Addr, now: u64) -> Verdict {
        let clamp = self.config.nat.mss_clamp;
        let Ok(mut p) = ipv4::Packet::new_checked(&mut frame.buf[ETH..frame.len]) else {
            return Verdict::Drop(DropReason::Ipv4Malformed);
        };
        if clamp != 0
            && p.protocol() == proto::TCP
            && p.frag_offset() == 0
            && clamp_syn(p.payload_mut(), clamp, self.offload.csum)
        {
            self.stats.mss_clamped += 1;
        }
        p.decrement_ttl();
        self.send(egress, NextHop::V4(hop), frame, now)
    }

    /// Processes fragments parked before their first fragment, now that it came.
    fn run_reinjected(&mut self, now: u64) {
        // Bounded: each parked fragment is processed once; new parkings cannot happen
        // for a datagram whose first fragment was seen.
        for _ in 0..self.reinject.len() {
            let Some((port, id)) = self.reinject.pop_front() else {
                break;
            };
            let (mut data, len) = self.buffers.take(id);
            let mut frame = Frame {
                buf: &mut data,
                len,
            };
            let verdict = self.dispatch(port, &mut frame, now);
            let len = frame.len;
            self.account(port, verdict, len);
            self.buffers.put(id, data, len);
            match verdict {
                Verdict::Forward(out) | Verdict::Reply(out) => {
                    // `account` counted the send; the queue entry must not count again.
                    let c = &mut self.stats.ports[out as usize];
                    c.tx_packets -= 1;
                    c.tx_bytes -= len as u64;
                    self.tx.push_back((out, id));
                }
                _ => self.buffers.free(id),
            }
        }
    }

    // ---- IPv6 ----

    fn owns6(&self, port: Port, addr: &Ipv6Addr) -> bool {
        let p = &self.ports[port as usize];
        p.link_local == *addr || p.ipv6.is_some_and(|n| n.addr() == *addr)
    }

    fn ipv6_in(&mut self, port: Port, frame: &mut Frame<'_>, now: u64) -> Verdict {
        if !self.config.ipv6.enabled {
            return Verdict::Drop(DropReason::Ipv6Disabled);
        }
        let (src, dst, total, hop_limit, upper) = {
            let Ok(p) = ipv6::Packet::new_checked(&frame.buf[ETH..frame.len]) else {
                return Verdict::Drop(DropReason::Ipv6Malformed);
            };
            let Ok(upper) = p.upper_layer() else {
                return Verdict::Drop(DropReason::Ipv6Malformed);
            };
            (p.src(), p.dst(), p.total_len(), p.hop_limit(), upper)
        };
        frame.len = ETH + total;
        // Read within the packet: Ethernet padding and stale buffer bytes are no type.
        let l4_type = (upper.protocol == proto::ICMPV6 && upper.fragment.is_none())
            .then(|| frame.bytes().get(ETH + upper.offset).copied())
            .flatten();
        let nd = matches!(
            l4_type,
            Some(icmpv6::NEIGHBOR_SOLICIT | icmpv6::NEIGHBOR_ADVERT)
        );
        if nd {
            return self.ndp_in(port, frame, &src, &dst, hop_limit, upper.offset, now);
        }
        // RFC 6092 REC-3: addresses that must not appear as a source anywhere.
        if src.is_multicast()
            || src.is_unspecified()
            || src.is_loopback()
            || src.to_ipv4_mapped().is_some()
        {
            return Verdict::Drop(DropReason::MartianSource);
        }
        if port == Port::Outside && self.inside_or_own6(&src) {
            return Verdict::Drop(DropReason::SpoofedFromOutside);
        }
        if dst.is_multicast() {
            return Verdict::Drop(DropReason::Ipv6Multicast);
        }
        if self.owns6(port, &dst)
            || self.owns6(Port::Outside, &dst)
            || self.owns6(Port::Inside, &dst)
        {
            if l4_type == Some(icmpv6::ECHO_REQUEST) {
                return self.echo6(port, frame, (&src, &dst), upper.offset, now);
            }
            return self.deliver_local(port, frame, now);
        }
        // Link-local addresses never leave their link (RFC 4291 section 2.5.6).
        if src.is_unicast_link_local() || dst.is_unicast_link_local() {
            return Verdict::Drop(DropReason::MartianSource);
        }
        if upper.has_rh0 {
            return Verdict::Drop(DropReason::Ipv6Rh0);
        }
        let Some((egress, hop)) = self.routes.lookup6(&dst) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        let dir = match (port, egress) {
            (Port::Inside, Port::Outside) => Dir::Out,
            (Port::Outside, Port::Inside) => Dir::In,
            (Port::Inside, Port::Inside) => {
                return self.finish6(frame, port, egress, hop, hop_limit, total, now)
            }
            (Port::Outside, Port::Outside) => return Verdict::Drop(DropReason::TransitDenied),
        };
        // RFC 6092 REC-5 (outbound) and REC-6 (inbound).
        if self.fw6.is_inside(&src) != (dir == Dir::Out) {
            return Verdict::Drop(DropReason::SpoofedSource);
        }
        if hop_limit <= 1 || self.offload.network_len(total) > self.ports[egress as usize].mtu {
            return self.finish6(frame, port, egress, hop, hop_limit, total, now);
        }
        match self.filter6(frame, &src, &dst, &upper, dir, port, now) {
            Ok(Step::Go) => {}
            Ok(Step::Parked) => return Verdict::Hold,
            Err(reason) => return Verdict::Drop(reason),
        }
        self.finish6(frame, port, egress, hop, hop_limit, total, now)
    }

    /// Whether `src` can only be an inside host's or the box's own: an inside prefix, a
    /// unique local address (RFC 4193 section 4.1: filtered at the site border by
    /// default), or a port address (global or link-local). Such a source on the
    /// outside is forged (RFC 6092 REC-6, BCP 38).
    fn inside_or_own6(&self, src: &Ipv6Addr) -> bool {
        self.fw6.is_inside(src)
            || src.is_unique_local()
            || Port::ALL.iter().any(|&p| self.owns6(p, src))
    }

    /// Answers an ICMPv6 echo request to the box (RFC 4443 section 4.2), after the
    /// checks RFC 4443 section 2.3 asks of a receiver: a whole header and a checksum
    /// that verifies.
    ///
    /// ICMPv6 is never offloaded (`wire::offload::prepare` drops GSO of it and
    /// completes a partial checksum), so the frame is checked as it is.
    fn echo6(
        &mut self,
        port: Port,
        frame: &mut Frame<'_>,
        (src, dst): (&Ipv6Addr, &Ipv6Addr),
        offset: usize,
        now: u64,
    ) -> Verdict {
        let Some(body) = frame.bytes().get(ETH + offset..) else {
            return Verdict::Drop(DropReason::IcmpMalformed);
        };
        let Ok(msg) = icmpv6::Packet::new_checked(body) else {
            return Verdict::Drop(DropReason::IcmpMalformed);
        };
        let pseudo = checksum::pseudo_v6(src, dst, proto::ICMPV6, body.len() as u32);
        if !msg.verify_checksum(pseudo) {
            return Verdict::Drop(DropReason::IcmpBadChecksum);
        }
        if !self.icmp_allowed(now) {
            return Verdict::Consumed;
        }
        let mac = self.ports[port as usize].mac;
        match icmp::echo_reply6(frame.buf, frame.len, mac, offset) {
            Some(len) => {
                frame.len = len;
                Verdict::Reply(port)
            }
            None => Verdict::Drop(DropReason::IcmpMalformed),
        }
    }

    /// Runs the egress-only filter for a routed IPv6 packet.
    #[allow(clippy::too_many_arguments)]
    fn filter6(
        &mut self,
        frame: &mut Frame<'_>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        upper: &ipv6::UpperLayer,
        dir: Dir,
        port: Port,
        now: u64,
    ) -> Result<Step, DropReason> {
        let now_s = (now / 1000) as u32;
        let key = upper.fragment.map(|f| FragKey::v6(src, dst, f.ident));
        if let (Some(f), Some(key)) = (upper.fragment, key) {
            if f.is_non_first() {
                if self.frags.lookup(&key) == Some(FragAction::Pass) {
                    self.stats.fragments_forwarded += 1;
                    return Ok(Step::Go);
                }
                return self.park_fragment(frame, key, port, now);
            }
        }
        let l4 = &frame.buf[ETH + upper.offset..frame.len];
        let icmp_error = upper.protocol == proto::ICMPV6 && l4.first().is_some_and(|&t| t < 128);
        if icmp_error {
            if dir == Dir::In {
                let body = l4
                    .get(icmpv6::HEADER_LEN..)
                    .ok_or(DropReason::L4Truncated)?;
                let quoted = fw6::quoted_tuple(body).map_err(|_| DropReason::IcmpErrorNoMatch)?;
                if !self.fw6.matches(&quoted) {
                    return Err(DropReason::IcmpErrorNoMatch);
                }
                self.stats.icmp_errors_translated += 1;
            }
        } else {
            let ports = fw6::ports(upper.protocol, l4).map_err(|_| DropReason::L4Truncated)?;
            let t = fw6::tuple(upper.protocol, *src, *dst, ports, dir);
            match dir {
                Dir::Out => self.fw6.outbound(&t, now_s, &mut self.stats)?,
                Dir::In => self.fw6.inbound(&t, now_s, &mut self.stats)?,
            }
        }
        if let Some(key) = key {
            for (id, port) in self.frags.first(key, FragAction::Pass, now)? {
                self.reinject.push_back((port, id));
            }
        }
        Ok(Step::Go)
    }

    /// Hop limit, packet too big (IPv6 routers never fragment), MSS clamp, next hop.
    #[allow(clippy::too_many_arguments)]
    fn finish6(
        &mut self,
        frame: &mut Frame<'_>,
        port: Port,
        egress: Port,
        hop: Ipv6Addr,
        hop_limit: u8,
        total: usize,
        now: u64,
    ) -> Verdict {
        if hop_limit <= 1 {
            let kind = (icmpv6::TIME_EXCEEDED, 0, 0);
            return self.reject6(port, frame, DropReason::TtlExceeded, kind, now);
        }
        let mtu = self.ports[egress as usize].mtu;
        if self.offload.network_len(total) > mtu {
            let kind = (icmpv6::PACKET_TOO_BIG, 0, mtu as u32);
            return self.reject6(port, frame, DropReason::TooBig, kind, now);
        }
        let Ok(mut p) = ipv6::Packet::new_checked(&mut frame.buf[ETH..frame.len]) else {
            return Verdict::Drop(DropReason::Ipv6Malformed);
        };
        let clamp = self.config.nat.mss_clamp;
        if clamp != 0 {
            if let Ok(u) = p.upper_layer() {
                if u.protocol == proto::TCP && u.fragment.is_none() {
                    // IPv6 headers are 20 bytes longer than IPv4's.
                    let at = u.offset;
                    let l4 = &mut p.packet_mut()[at..];
                    if clamp_syn(l4, clamp.saturating_sub(20), self.offload.csum) {
                        self.stats.mss_clamped += 1;
                    }
                }
            }
        }
        p.decrement_hop_limit();
        self.send(egress, NextHop::V6(hop), frame, now)
    }

    /// Whether `addr` is on-link on `port`: link-local, or in the port's IPv6 prefix.
    fn on_link6(&self, port: Port, addr: &Ipv6Addr) -> bool {
        addr.is_unicast_link_local()
            || self.ports[port as usize]
                .ipv6
                .is_some_and(|n| n.contains(addr))
    }

    /// Neighbor Solicitations for our addresses get an advertisement; advertisements
    /// update the cache (see `neigh`). RFC 4861 section 7.1 validity: hop limit 255,
    /// code 0, a valid checksum, and no Solicited flag on a multicast advertisement.
    /// Only on-link addresses are learnt: a solicitation from an off-link source is
    /// answered but not learnt (as ARP), an advertisement for an off-link target is
    /// dropped as `neighbour_off_link`.
    #[allow(clippy::too_many_arguments)]
    fn ndp_in(
        &mut self,
        port: Port,
        frame: &mut Frame<'_>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        hop_limit: u8,
        offset: usize,
        now: u64,
    ) -> Verdict {
        let body = &frame.buf[ETH + offset..frame.len];
        let Ok(msg) = icmpv6::Packet::new_checked(body) else {
            return Verdict::Drop(DropReason::NdpMalformed);
        };
        let pseudo = crate::wire::checksum::pseudo_v6(src, dst, proto::ICMPV6, body.len() as u32);
        let Some(target) = msg.nd_target() else {
            return Verdict::Drop(DropReason::NdpMalformed);
        };
        if hop_limit != 255
            || msg.code() != 0
            || !msg.verify_checksum(pseudo)
            || target.is_multicast()
        {
            return Verdict::Drop(DropReason::NdpMalformed);
        }
        if msg.msg_type() == icmpv6::NEIGHBOR_SOLICIT {
            if !self.owns6(port, &target) {
                return Verdict::Drop(DropReason::NeighbourIgnored);
            }
            let sender_mac = msg.nd_link_addr(icmpv6::OPT_SOURCE_LL);
            if let (Some(mac), false) = (sender_mac, src.is_unspecified()) {
                if self.on_link6(port, src) && !self.owns6(port, src) {
                    let learnt = self
                        .ndp
                        .learn(port, *src, Claim::announcement(mac, true), now);
                    self.learnt(port, mac, learnt);
                }
            }
            if frame.buf.len() < icmp::ND_FRAME_LEN {
                return Verdict::Drop(DropReason::NoRoomForReply);
            }
            let Ok(eth) = ethernet::Frame::new_checked(frame.bytes()) else {
                return Verdict::Drop(DropReason::FrameTruncated);
            };
            let peer_mac = eth.src();
            let mac = self.ports[port as usize].mac;
            frame.len = icmp::neighbor_advert(frame.buf, mac, &target, peer_mac, src);
            return Verdict::Reply(port);
        }
        // Neighbor Advertisement (RFC 4861 section 7.2.5).
        let flags = msg.na_flags();
        let solicited = flags & icmpv6::NA_SOLICITED != 0;
        if solicited && dst.is_multicast() {
            return Verdict::Drop(DropReason::NdpMalformed);
        }
        if !self.on_link6(port, &target) {
            return Verdict::Drop(DropReason::NeighbourOffLink);
        }
        let claim = Claim {
            mac: msg.nd_link_addr(icmpv6::OPT_TARGET_LL),
            solicited,
            overrides: flags & icmpv6::NA_OVERRIDE != 0,
            create: false,
        };
        let learnt = self.ndp.learn(port, target, claim, now);
        if let Some(mac) = claim.mac {
            self.learnt(port, mac, learnt);
        }
        Verdict::Consumed
    }
}

/// Facts about an IPv4 datagram gathered by one parse.
#[derive(Debug, Clone, Copy)]
struct Pkt4 {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    total: usize,
    ttl: u8,
    df: bool,
    fragment: bool,
    first_frag: bool,
    protocol: u8,
    ident: u16,
}

/// Sources no router accepts from any port (RFC 1812 section 5.3.7, RFC 6890):
/// 0.0.0.0/8 ("this network"), 127.0.0.0/8 (loopback), 224.0.0.0/4 (multicast) and
/// 240.0.0.0/4 (class E, with the limited broadcast address).
fn martian4(src: Ipv4Addr) -> bool {
    matches!(src.octets()[0], 0 | 127 | 224..)
}

/// Whether the datagram `ip` (described by `ctx`) is an ICMPv4 error message.
fn is_icmp_error4(ctx: &Pkt4, ip: &[u8]) -> bool {
    ctx.protocol == proto::ICMP && {
        ipv4::Packet::new_checked(ip)
            .is_ok_and(|p| icmpv4::Packet::new_checked(p.payload()).is_ok_and(|i| i.is_error()))
    }
}

/// Clamps the MSS option of a TCP SYN at `l4`; returns whether it changed.
fn clamp_syn(l4: &mut [u8], clamp: u16, csum: Csum) -> bool {
    match tcp::Packet::new_checked(l4) {
        Ok(mut t) if t.flags() & tcp::SYN != 0 => t.clamp_mss(clamp, csum),
        _ => false,
    }
}

#[cfg(test)]
mod reconfigure_tests {
    use super::*;

    /// Every scalar setting of `config` (a dotted path, and a different value for it
    /// that may or may not be valid): booleans flipped, numbers moved, strings swapped
    /// for one of a few candidates. Lists (addresses, prefixes) are left alone.
    fn scalar_changes(config: &Config) -> Vec<(String, toml::Value)> {
        fn walk(prefix: &str, value: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
            use toml::Value;
            let mut push = |v: Value| out.push((prefix.to_string(), v));
            match value {
                Value::Table(t) => {
                    for (k, v) in t {
                        let path = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&path, v, out);
                    }
                }
                Value::Boolean(b) => push(Value::Boolean(!b)),
                Value::Integer(i) => {
                    for n in [i + 1, i - 1, i * 2, i / 2, 1] {
                        if n != *i {
                            push(Value::Integer(n));
                        }
                    }
                }
                Value::String(s) => {
                    for c in [
                        "address-dependent",
                        "endpoint-independent",
                        "debug",
                        "other",
                    ] {
                        if c != s {
                            push(Value::String(c.to_string()));
                        }
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk("", &toml::Value::try_from(config).unwrap(), &mut out);
        out
    }

    /// `config` with the setting at `path` set to `value`, if that is a valid
    /// configuration.
    fn with(config: &Config, path: &str, value: toml::Value) -> Option<Config> {
        let mut doc = toml::Value::try_from(config).unwrap();
        let mut at = &mut doc;
        for key in path.split('.') {
            at = at.get_mut(key)?;
        }
        *at = value;
        firmware_config::from_toml(&toml::to_string(&doc).ok()?).ok()
    }

    /// The engine's state that a configuration shapes, without what differs between
    /// any two engines (hash seeds) or only with the tables' capacity.
    fn shaped(engine: &Engine) -> String {
        format!(
            "{:?} {:?} {:?} {:?}",
            engine.nat.params(),
            engine.fw6.tunables(),
            engine.frags,
            engine.icmp_limit
        )
    }

    /// A setting `reconfigure` applies in place must leave the engine as a fresh one
    /// built from the new configuration: a tunable that `addressing` resets but no
    /// `retune` applies would otherwise be silently ignored until a restart.
    #[test]
    fn in_place_reconfiguration_matches_a_fresh_engine() {
        let base = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        let setup = PortSetup {
            mac: Mac([2, 0, 0, 0, 0, 1]),
        };
        let mut in_place = std::collections::BTreeSet::new();
        for (path, value) in scalar_changes(&base) {
            let Some(changed) = with(&base, &path, value) else {
                continue;
            };
            if changed == base {
                continue;
            }
            let mut engine = Engine::new(&base, setup, setup);
            if engine.reconfigure(&changed) {
                let fresh = Engine::new(&changed, setup, setup);
                assert_eq!(shaped(&engine), shaped(&fresh), "{path} changed in place");
                in_place.insert(path);
            }
        }
        // The guard guards something: the tunables of [nat], [ipv6], [timeouts] and
        // [icmp] were among the settings changed in place.
        for path in [
            "nat.filtering",
            "nat.max_sessions_per_host",
            "nat.port_reuse_hold",
            "ipv6.max_states",
            "timeouts.udp",
            "timeouts.fragment",
            "icmp.rate_limit",
        ] {
            assert!(
                in_place.contains(path),
                "{path} not changed in place: {in_place:?}"
            );
        }
    }
}
