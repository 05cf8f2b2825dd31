//! Stateful IPv4 source NAT (NAPT): mappings, sessions, filtering, ICMP query and error
//! translation, hairpinning.
//!
//! Behaviour (RFC 4787, RFC 5382, RFC 5508, RFC 6888, RFC 7857):
//! - Mapping is endpoint-independent (RFC 4787 REQ-1, RFC 5382 REQ-1): one inside
//!   (address, port) keeps one external (address, port) for as long as any session
//!   uses it, whatever the remote.
//! - Each inside host is paired with one pool address, chosen by a fixed hash of its
//!   address (REQ-2), so the pairing holds across mappings and restarts.
//! - Port preservation, range and parity: see `engine::pool` (REQ-3, REQ-4).
//! - Filtering is configurable (REQ-8): endpoint-independent, address-dependent, or
//!   address-and-port-dependent. An admitted inbound packet with a new remote opens a
//!   session of its own on the existing mapping.
//! - UDP mappings are refreshed by outbound packets, and by inbound ones only when
//!   configured (REQ-6). TCP refreshes both ways. ICMP errors never touch state.
//! - Limits: global sessions, sessions per host (RFC 6888 REQ-5), ports per host
//!   (REQ-4). A packet over a limit is dropped and counted; live sessions are never
//!   evicted to make room (REQ-11). Freed ports are held for their last host for
//!   `port_reuse_hold` seconds (REQ-8).
//! - Sessions opened from outside (a new remote reaching a mapping through
//!   endpoint-independent or address-dependent filtering) are charged to the mapping,
//!   not to the inside host, until the inside answers (`track::OPENED_IN`): at most
//!   `MAX_UNANSWERED_PER_MAPPING` per mapping (over it: `MappingInboundLimit`), each in
//!   an incoming class that only the inside refreshes, so it ends `tcp_incoming_syn`
//!   seconds after the outsider's first packet unless answered. Outsiders therefore
//!   cannot use up an inside host's session quota (RFC 6888 REQ-5). The inside's
//!   answer (a UDP packet out, or the completed TCP open) charges the session to the
//!   host like one it opened, and is refused (`HostSessionLimit`) when the host is at
//!   its quota.
//! - ICMP echo identifiers are mapped like ports (RFC 5508 REQ-1). ICMP errors are
//!   translated in both directions, outer and quoted headers and every checksum, and
//!   dropped when the quoted packet matches no session (REQ-3, REQ-4, REQ-6).
//! - Hairpinning (REQ-9, RFC 5508 REQ-7): a packet from inside to a pool address is
//!   translated outbound (source becomes external) and then inbound, so the target
//!   sees the sender's external address and port; an ICMP error about a hairpinned
//!   packet is translated as an outbound error, then as an inbound one.
//!
//! Data layout: sessions live in a `Slab`; one fixed `Index` holds four kinds of keys
//! (outbound 5-tuple, inbound 5-tuple, mapping by inside endpoint, host by inside
//! address); per-class LRU lists give O(1) expiry; a mapping is the chain of sessions
//! sharing an external port, whose first member the port slot names. A session is 52
//! bytes (56 as a slab entry: `born` took padding), 10 of them the TCP sequence
//! windows (`track::Window`) and 4 its creation time (`born`, for flow records and the
//! per-destination SLIs, `sli`); with the index's four slots per allowed session and
//! the port-hold FIFO, `Engine::new` sets aside 97 bytes per unit of `nat.max_sessions`
//! (measured by the `memory` benchmark; 89 before the windows were added), plus 768
//! KiB per pool address and protocol once used, plus 12 bytes per session (at most 768
//! KiB) for the TCP attempts awaiting judgment (`sli`), and with flow logs on a 48-byte
//! account per session (`flowlog::Account`).
//!
//! The module works on IPv4 datagram bytes (`ip` starts at the IPv4 header) and never
//! fragments, routes or builds packets: the engine does that around it.

mod adopt;
mod blocks;
pub mod events;
pub mod forward;
mod rewrite;

use super::destinations::Dest;
pub use super::destinations::Report;
use super::flow::index::{Hasher, Index};
use super::flow::list::{self, Linked, Links, List};
use super::flow::lru::Lru;
use super::flow::track::{self, Class, Dir, TcpState, Timeouts};
use super::flowlog::{self, Accounts, Action, EndReason, FlowLog, FlowRecord};
use super::policy::{self, Policy};
use super::pool::blocks::{Blocks, NONE};
use super::pool::{PortTable, Ranges, Slices};
use super::sli::{Attempt, Sli};
use super::stats::{DropReason, Stats};
use crate::shard::{PublicSplit, Shard};
use crate::wire::checksum::Csum;
use crate::wire::{icmpv4, ipv4, proto, tcp};
pub use blocks::{BlockInfo, BlockUsage};
use firmware_config::{Config, Filtering};
use ipnet::Ipv4Net;
pub use rewrite::End;
use slab::Slab;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

const KIND_OUT: u32 = 0;
const KIND_IN: u32 = 1;
const KIND_MAP: u32 = 2;
const KIND_HOST: u32 = 3;
const HANDLE_MASK: u32 = (1 << 30) - 1;

/// At most this many sessions expire per `poll`, to bound its latency.
const EXPIRE_BATCH: usize = 16_384;

/// Sessions opened from outside that one mapping may hold before the inside answers.
/// They live `tcp_incoming_syn` seconds (6 by default) unanswered, so this admits a
/// sustained ten new remotes a second per mapping; an inside host answers within a
/// round trip, so a legitimate server rarely has more than a few unanswered.
pub const MAX_UNANSWERED_PER_MAPPING: u32 = 64;

/// One translated flow between an inside endpoint and a remote endpoint.
#[derive(Debug, Clone)]
struct Session {
    in_addr: u32,
    rem_addr: u32,
    in_port: u16,
    rem_port: u16,
    ext_port: u16,
    pool: u8,
    proto: u8,
    /// See `track::step`.
    state: u8,
    class: u8,
    /// Last activity, whole seconds of engine time.
    last: u32,
    /// When the session was created, whole seconds of engine time.
    born: u32,
    lru: Links,
    /// Sessions sharing this session's mapping.
    sib: Links,
    /// TCP sequence windows (unused for other protocols).
    tcp: track::Window,
}

crate::timed_record!(Session);

impl Attempt for Session {
    fn dest(&self) -> Dest {
        Dest::v4(self.rem_addr)
    }
    fn born(&self) -> u32 {
        self.born
    }
    fn tag(&self) -> u32 {
        u32::from(self.in_port) << 16 | u32::from(self.ext_port)
    }
    fn proto(&self) -> u8 {
        self.proto
    }
    fn state(&self) -> u8 {
        self.state
    }
}

impl Linked<1> for Session {
    fn links(&mut self) -> &mut Links {
        &mut self.sib
    }
}

/// Where `insert_session` puts a session.
enum Join {
    /// Into the mapping whose first session this is.
    Mapping(u32),
    /// As the first session of a new mapping on its external port, owned by `host`.
    NewMapping { host: u32 },
    /// Alone, as a session of a port forward (`forward`): no mapping, no host.
    Forward,
}

#[derive(Debug, Clone)]
struct Host {
    addr: u32,
    sessions: u32,
    ports: u32,
    /// The pool address the host is paired with (REQ-2), fixed while the record lives.
    pool: u8,
    /// Its port blocks per protocol slot: chain heads in `Nat44::blocks` (`NONE`).
    blocks: [u16; 3],
}

#[derive(Debug, Clone, Copy)]
struct Hold {
    pool: u8,
    proto: u8,
    port: u16,
    freed: u32,
}

/// The transport identity of a packet as seen by the NAT.
#[derive(Debug, Clone, Copy)]
struct Flow {
    proto: u8,
    /// The datagram's length (IPv4 total length).
    len: usize,
    /// Offset of the transport header within the datagram.
    l4: usize,
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    tcp: track::Segment,
}

/// Settings derived from the configuration.
#[derive(Debug, Clone)]
struct Params {
    pool: Vec<Ipv4Addr>,
    /// The pool as (address, index into `pool`), sorted by address: `pool_index` runs
    /// on every packet to or from the outside, and pools hold up to 64 addresses.
    pool_sorted: Vec<(u32, usize)>,
    inside: Vec<Ipv4Net>,
    /// The ports and identifiers this shard allocates from (`pool::Slices`).
    slices: Slices,
    /// Who owns which public port, for `owner_in` (`None` only for an empty port
    /// range, which validation refuses).
    split: Option<PublicSplit>,
    shard: Shard,
    /// Port blocks (`blocks`), if configured.
    blocks: Option<blocks::BlockParams>,
    t: Tunables,
}

/// The settings `retune` changes in place, read from a configuration in one place.
#[derive(Debug, Clone)]
struct Tunables {
    filtering: Filtering,
    max_sessions: u32,
    max_sessions_per_host: u32,
    max_ports_per_host: u32,
    hold: u32,
    udp_inbound_refresh: bool,
    timeouts: Timeouts,
}

impl Tunables {
    /// The tunables of shard `shard`: its share of the global session limit.
    fn of(config: &Config, shard: Shard) -> Tunables {
        let n = &config.nat;
        Tunables {
            filtering: n.filtering,
            max_sessions: shard.share(n.max_sessions),
            max_sessions_per_host: n.max_sessions_per_host,
            max_ports_per_host: n.max_ports_per_host,
            hold: n.port_reuse_hold,
            udp_inbound_refresh: n.udp_inbound_refresh,
            timeouts: Timeouts::from_config(&config.timeouts),
        }
    }
}

/// A session as the shell and tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub proto: u8,
    pub inside: SocketAddrV4,
    pub outside: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub state: &'static str,
    pub class: Class,
    /// Seconds since last activity.
    pub idle: u32,
    /// Seconds until expiry.
    pub expires: u32,
}

/// The NAT44 state.
#[derive(Debug)]
pub struct Nat44 {
    p: Params,
    sessions: Slab<Session>,
    hosts: Slab<Host>,
    index: Index,
    hasher: Hasher,
    /// `ports[pool][proto_slot]`; allocated on first use of an address.
    ports: Vec<[Option<Box<PortTable>>; 3]>,
    lru: Lru,
    holds: VecDeque<Hold>,
    events: events::EventLog,
    /// `blocks[pool][proto_slot]`, with port blocks on; allocated on first use.
    blocks: Vec<[Option<Box<Blocks>>; 3]>,
    block_failures: u64,
    /// Flow records (`engine::flowlog`) and the sessions' accounts.
    flows: FlowLog,
    accounts: Accounts,
    /// Per-destination SLIs (`engine::destinations`): fed at session creation, TCP
    /// open and judgment, never per packet.
    sli: Sli,
    /// The port forwards (`forward`).
    fwd: forward::Forwards,
}

/// Interim flow records' interval when flow logging is on, else `None`.
pub(crate) fn flow_interval(config: &Config) -> Option<u32> {
    config
        .flow_log
        .enabled()
        .then_some(config.flow_log.interval)
}

/// An event log that runs when a syslog collector is configured.
fn event_log(config: &Config) -> events::EventLog {
    let mut log = events::EventLog::default();
    log.configure(event_rate(config));
    log
}

/// The event log's rate: `log.event_rate` when a collector is configured, else off.
fn event_rate(config: &Config) -> Option<u32> {
    config.log.syslog.map(|_| config.log.event_rate)
}

fn proto_slot(proto: u8) -> usize {
    match proto {
        proto::TCP => 0,
        proto::UDP => 1,
        _ => 2,
    }
}

impl Nat44 {
    /// The NAT of engine shard `shard` (`Shard::ONLY` for a box with one worker): its
    /// tables hold its share of `nat.max_sessions` (`Shard::share`), and it allocates
    /// ports from its slices only (`pool::Slices`).
    pub fn new(config: &Config, shard: Shard) -> Nat44 {
        let n = &config.nat;
        let max = shard.share(n.max_sessions) as usize;
        let classes = Ranges::from_config(n.port_min, n.port_max);
        // `table_bytes` counts what these take: keep the two in step.
        let pool = config.nat_pool();
        let mut pool_sorted: Vec<(u32, usize)> = pool
            .iter()
            .enumerate()
            .map(|(i, a)| (a.to_bits(), i))
            .collect();
        pool_sorted.sort_unstable();
        // Like a scan of `pool`, a repeated address resolves to its first index.
        pool_sorted.dedup_by_key(|e| e.0);
        let p = Params {
            pool,
            pool_sorted,
            inside: config.nat_inside_prefixes(),
            slices: Slices::new(classes, shard),
            split: PublicSplit::new(shard.count(), (n.port_min, n.port_max)),
            shard,
            blocks: blocks::BlockParams::of(config),
            t: Tunables::of(config, shard),
        };
        let fwd = forward::Forwards::new(config, &p.pool);
        let mut nat = Nat44 {
            ports: (0..p.pool.len()).map(|_| [None, None, None]).collect(),
            blocks: (0..p.pool.len()).map(|_| [None, None, None]).collect(),
            block_failures: 0,
            p,
            sessions: Slab::with_capacity(max),
            hosts: Slab::with_capacity(max.min(1 << 16)),
            // Two keys per session, at most one mapping key per session, and hosts.
            index: Index::with_capacity(max * 4),
            hasher: Hasher::default(),
            lru: Lru::default(),
            holds: VecDeque::with_capacity(max.min(1 << 20)),
            events: event_log(config),
            flows: FlowLog::default(),
            accounts: Accounts::default(),
            sli: Sli::new(max),
            fwd: forward::Forwards::default(),
        };
        nat.set_forwards(fwd);
        nat.configure_flows(config);
        nat
    }

    /// Flow logs as `config` sets them, with an account for every session slot.
    fn configure_flows(&mut self, config: &Config) {
        let slots = self.sessions.capacity();
        self.flows
            .configure(flow_interval(config), &mut self.accounts, slots);
    }

    /// Applies the tunable settings of `config` (filtering, limits, hold, UDP refresh,
    /// timeouts) in place; live sessions are kept, and a lowered limit only stops new
    /// sessions (RFC 6888 REQ-11: nothing is evicted).
    pub fn retune(&mut self, config: &Config) {
        self.p.t = Tunables::of(config, self.p.shard);
        self.events.configure(event_rate(config));
        self.configure_flows(config);
    }

    /// The flow log (see `engine::flowlog`).
    pub fn flows(&self) -> &FlowLog {
        &self.flows
    }

    pub fn flows_mut(&mut self) -> &mut FlowLog {
        &mut self.flows
    }

    /// The flow record of session `idx` for what it carried since its last record.
    pub(super) fn report(&mut self, idx: u32, now: u32, reason: EndReason) {
        if !self.flows.enabled() {
            return;
        }
        let s = &self.sessions[idx as usize];
        let carried = self.flows.session_ended(
            &mut self.accounts,
            (idx, s.proto),
            now,
            reason,
            |account, reason| FlowRecord {
                proto: s.proto,
                inside: Ipv4Addr::from_bits(s.in_addr).into(),
                in_port: s.in_port,
                remote: Ipv4Addr::from_bits(s.rem_addr).into(),
                rem_port: s.rem_port,
                outside: Some((self.p.pool[usize::from(s.pool)], s.ext_port)),
                account,
                born: s.born,
                end: s.last,
                action: Action::Accepted,
                reason,
            },
        );
        // A forward's remote is a client, not a destination (`engine::sli`).
        if self.forward_of(s).is_none() {
            self.sli.carried(s.dest(), &carried);
        }
    }

    /// The flow record of a new outbound session refused with `reason`.
    fn report_refused(&mut self, flow: &Flow, len: usize, now: u32, reason: DropReason, rule: u16) {
        let Some(action) = flowlog::refusal(reason) else {
            return;
        };
        let ends = (
            flow.proto,
            Ipv4Addr::from_bits(flow.src).into(),
            flow.sport,
            Ipv4Addr::from_bits(flow.dst).into(),
            flow.dport,
        );
        let record = FlowRecord::refused(ends, (len, flow.tcp.flags), (action, rule), now);
        self.flows.refused(now, record);
    }

    /// The settings in force, for tests that compare engines.
    #[cfg(test)]
    pub(crate) fn params(&self) -> impl std::fmt::Debug + '_ {
        &self.p
    }

    /// The mapping event log (see `events`).
    pub fn events(&self) -> &events::EventLog {
        &self.events
    }

    pub fn events_mut(&mut self) -> &mut events::EventLog {
        &mut self.events
    }

    /// A mapping event about session `idx` (the head of its mapping).
    fn log_mapping(&mut self, idx: u32, created: bool, now: u32) {
        if self.events.enabled() {
            let s = &self.sessions[idx as usize];
            let outside = self.p.pool[usize::from(s.pool)];
            self.events.record(
                now,
                events::MappingEvent {
                    created,
                    proto: s.proto,
                    inside: SocketAddrV4::new(Ipv4Addr::from_bits(s.in_addr), s.in_port),
                    outside: SocketAddrV4::new(outside, s.ext_port),
                    block_last: None,
                },
            );
        }
    }

    /// Whether `addr` is one of the pool's public addresses.
    #[inline]
    pub fn is_pool_addr(&self, addr: Ipv4Addr) -> bool {
        self.pool_index(addr.to_bits()).is_some()
    }

    /// Whether packets from `src` are translated.
    pub fn translates(&self, src: Ipv4Addr) -> bool {
        self.p.inside.iter().any(|n| n.contains(&src))
    }

    pub fn pool(&self) -> &[Ipv4Addr] {
        &self.p.pool
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn class_count(&self, class: Class) -> u32 {
        self.lru.count(class)
    }

    /// Ports (and ICMP ids) owned or held on pool address `pool`, per protocol slot
    /// (TCP, UDP, ICMP).
    pub fn ports_in_use(&self, pool: usize) -> [u32; 3] {
        let t = &self.ports[pool];
        [0, 1, 2].map(|i| t[i].as_ref().map_or(0, |t| t.in_use()))
    }

    /// The `n` inside hosts with the most sessions: (address, sessions, ports).
    pub fn top_hosts(&self, n: usize) -> Vec<(Ipv4Addr, u32, u32)> {
        let mut hosts: Vec<(Ipv4Addr, u32, u32)> = self
            .hosts
            .iter()
            .map(|(_, h)| (Ipv4Addr::from_bits(h.addr), h.sessions, h.ports))
            .collect();
        hosts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        hosts.truncate(n);
        hosts
    }

    /// The most bytes the tables of shard `shard` under `config` can hold: what `new`
    /// sets aside for its share of the sessions, plus a port table for every pool
    /// address and protocol.
    pub fn table_bytes(config: &Config, shard: Shard) -> usize {
        let max = shard.share(config.nat.max_sessions) as usize;
        max * SLAB_ENTRY_SIZE
            + Index::memory_for(max * 4)
            + max.min(1 << 16) * std::mem::size_of::<Host>()
            + max.min(1 << 20) * std::mem::size_of::<Hold>()
            + config.nat_pool().len() * 3 * PortTable::memory()
            + config
                .port_block
                .enabled()
                .map_or(0, |size| config.nat_pool().len() * 3 * Blocks::memory(size))
            + flowlog::accounts_bytes(config, max)
            + Sli::memory_for(max)
    }

    /// Bytes held by the tables (sessions, index, hosts, port tables).
    pub fn memory(&self) -> usize {
        let tables = self.ports.iter().flatten().filter(|t| t.is_some()).count();
        let blocks = self.blocks.iter().flatten().filter(|t| t.is_some()).count();
        blocks * self.p.blocks.map_or(0, |b| Blocks::memory(b.size))
            + self.sessions.capacity() * SLAB_ENTRY_SIZE
            + self.index.memory()
            + self.hosts.capacity() * std::mem::size_of::<Host>()
            + tables * PortTable::memory()
            + self.accounts.memory()
            + self.sli.memory()
    }

    /// The per-destination SLIs (`engine::destinations`).
    pub fn destinations(&self) -> Report {
        self.sli.report(self.flows.enabled())
    }

    /// Forgets the per-destination SLIs (`clear stats`).
    pub fn clear_destinations(&mut self) {
        self.sli.clear();
    }

    #[inline]
    fn pool_index(&self, addr: u32) -> Option<usize> {
        let sorted = &self.p.pool_sorted;
        sorted
            .binary_search_by_key(&addr, |&(a, _)| a)
            .ok()
            .map(|at| sorted[at].1)
    }

    /// Translates an outbound datagram's source in place; `csum` says what its TCP/UDP
    /// checksum field holds. `outbound` and `inbound` share every step (parse, track,
    /// rewrite) and differ in the lookup, the rule that may open a session, and the
    /// end rewritten. Issue #16 asked for one `translate(dir)`; written so (four ways: a
    /// run-time direction, a const-generic body, each with and without forced
    /// inlining) it cost 5-10% per packet in the criterion engine bench (`out_1_flow`
    /// 60-63 ns against 65-70 ns, interleaved runs of both binaries), so the two
    /// entry points stay.
    ///
    /// A datagram that would open a session is first put to the egress `policy`
    /// (`engine::policy`), by its inside source and destination before translation,
    /// and charged to its host's new-session rate limit (`Policy::open4`).
    pub fn outbound(
        &mut self,
        ip: &mut [u8],
        csum: Csum,
        now: u32,
        stats: &mut Stats,
        policy: &mut Policy,
    ) -> Result<(), DropReason> {
        let flow = parse_flow(ip, Dir::Out)?;
        let rem_port = remote_port(flow.proto, flow.dport);
        let idx = match self.find_out(flow.proto, flow.src, flow.sport, flow.dst, rem_port) {
            Some(idx) => idx,
            None => {
                if flow.proto == proto::TCP && TcpState::open(Dir::Out, flow.tcp.flags).is_none() {
                    return Err(DropReason::TcpNoSession);
                }
                let src = Ipv4Addr::from_bits(flow.src);
                let made = policy
                    .open4(
                        src,
                        Ipv4Addr::from_bits(flow.dst),
                        policy::session_key(flow.proto, rem_port),
                    )
                    .and_then(|()| {
                        self.create_outbound(&flow, rem_port, now)
                            .inspect_err(|_| policy.not_made(src.into()))
                    });
                let rule = flowlog::rule(policy.decided());
                let idx = match made {
                    Ok(idx) => idx,
                    Err(e) => {
                        if self.flows.enabled() {
                            self.report_refused(&flow, flow.len, now, e, rule);
                        }
                        return Err(e);
                    }
                };
                self.accounts.open(self.flows.enabled(), idx, now, rule);
                stats.sessions_created += 1;
                self.sli.created(idx, &self.sessions[idx as usize]);
                idx
            }
        };
        self.track(idx, Dir::Out, &flow.tcp, now)?;
        self.accounts.count(idx, Dir::Out, flow.len, flow.tcp.flags);
        let s = &self.sessions[idx as usize];
        let ext = self.p.pool[usize::from(s.pool)].to_bits();
        rewrite::rewrite(ip, flow.l4, flow.proto, End::Src, (ext, s.ext_port), csum);
        stats.nat_out.count(flow.proto);
        Ok(())
    }

    /// Translates an inbound datagram's destination in place (`csum` as for `outbound`).
    /// A session an outsider opens on a mapping is put to the egress `policy` as the
    /// inside host's traffic to that remote endpoint would be; refused, it is dropped
    /// silently (`PolicyDeny`: the box answers the inside only).
    pub fn inbound(
        &mut self,
        ip: &mut [u8],
        csum: Csum,
        now: u32,
        stats: &mut Stats,
        policy: &mut Policy,
    ) -> Result<(), DropReason> {
        let flow = parse_flow(ip, Dir::In)?;
        let pool = self.pool_index(flow.dst).ok_or(DropReason::NoMapping)?;
        let rem_port = remote_port(flow.proto, flow.sport);
        let idx = match self.find_in(flow.proto, pool, flow.dport, flow.src, rem_port) {
            Some(idx) => idx,
            None => {
                let (idx, rule) = match self.fwd.position(pool, flow.proto, flow.dport) {
                    Some(at) => (self.admit_forward(&flow, pool, at, now)?, flowlog::NO_RULE),
                    None => {
                        let idx = self.admit_inbound(&flow, pool, now, policy)?;
                        (idx, flowlog::rule(policy.decided()))
                    }
                };
                self.accounts.open(self.flows.enabled(), idx, now, rule);
                stats.sessions_created += 1;
                idx
            }
        };
        self.track(idx, Dir::In, &flow.tcp, now)?;
        self.accounts.count(idx, Dir::In, flow.len, flow.tcp.flags);
        let s = &self.sessions[idx as usize];
        rewrite::rewrite(
            ip,
            flow.l4,
            flow.proto,
            End::Dst,
            (s.in_addr, s.in_port),
            csum,
        );
        stats.nat_in.count(flow.proto);
        Ok(())
    }

    /// Whether the ICMP identifier `ident` on pool address `addr` is taken by a
    /// live mapping: an echo reply carrying it belongs to NAT.
    pub fn echo_ident_taken(&self, addr: Ipv4Addr, ident: u16) -> bool {
        self.pool_index(addr.to_bits()).is_some_and(|pool| {
            self.ports[pool][proto_slot(proto::ICMP)]
                .as_ref()
                .is_some_and(|t| t.owner(ident).is_some())
        })
    }

    /// Whether the inbound echo reply `ip` (to a pool address) belongs to NAT.
    pub fn claims_echo_reply(&self, ip: &[u8]) -> bool {
        parse_flow(ip, Dir::In)
            .is_ok_and(|f| self.echo_ident_taken(Ipv4Addr::from_bits(f.dst), f.dport))
    }

    /// The shard that owns the mapping an inbound datagram `ip` (to a pool address)
    /// would use: the owner of its public port or identifier, which is its destination
    /// port (echo reply identifier), or for an ICMP error the quoted datagram's source
    /// port (identifier), as the steering program computes it. `None` when the datagram
    /// has neither (it is dropped alike on any shard).
    pub fn owner_in(&self, ip: &[u8]) -> Option<usize> {
        let p = ipv4::Packet::new_checked(ip).ok()?;
        let error = p.protocol() == proto::ICMP
            && icmpv4::Packet::new_checked(p.payload()).is_ok_and(|i| i.is_error());
        let (protocol, public, port) = if error {
            let q = rewrite::quoted(ip).ok()?;
            (q.proto, q.src, q.sport)
        } else {
            let f = parse_flow(ip, Dir::In).ok()?;
            (f.proto, f.dst, f.dport)
        };
        if let Some(owner) = self.forward_owner(protocol, public, port) {
            return Some(owner);
        }
        let split = self.p.split.as_ref()?;
        Some(if protocol == proto::ICMP {
            split.ident_owner(port)
        } else {
            split.port_owner(port)
        })
    }

    /// Whether this NAT is one shard of several.
    pub fn sharded(&self) -> bool {
        self.p.shard.count() > 1
    }

    /// This NAT's shard.
    pub fn shard(&self) -> Shard {
        self.p.shard
    }

    /// Translates an ICMP error about a packet this NAT translated. `dir` is the
    /// error's own direction. No state changes (RFC 5508 REQ-6 style: ICMP never
    /// refreshes or kills a mapping).
    pub fn icmp_error(&mut self, ip: &mut [u8], dir: Dir) -> Result<(), DropReason> {
        let quoted = rewrite::quoted(ip)?;
        let idx = match dir {
            // The quote is our outbound packet: src = external, dst = remote.
            Dir::In => {
                let pool = self
                    .pool_index(quoted.src)
                    .ok_or(DropReason::IcmpErrorNoMatch)?;
                let rem_port = remote_port(quoted.proto, quoted.dport);
                self.find_in(quoted.proto, pool, quoted.sport, quoted.dst, rem_port)
            }
            // The quote is an inbound packet we delivered: src = remote, dst = inside.
            Dir::Out => {
                let rem_port = remote_port(quoted.proto, quoted.sport);
                self.find_out(quoted.proto, quoted.dst, quoted.dport, quoted.src, rem_port)
            }
        }
        .ok_or(DropReason::IcmpErrorNoMatch)?;
        let s = &self.sessions[idx as usize];
        let (addr, port) = match dir {
            Dir::In => (s.in_addr, s.in_port),
            Dir::Out => (self.p.pool[usize::from(s.pool)].to_bits(), s.ext_port),
        };
        rewrite::rewrite_icmp_error(ip, &quoted, dir, addr, port);
        Ok(())
    }

    /// Expires idle sessions and ends port holds. Call at least once a second.
    pub fn poll(&mut self, now: u32, stats: &mut Stats) {
        for _ in 0..EXPIRE_BATCH {
            let Some(idx) = self
                .lru
                .next_expired(&self.sessions, &self.p.t.timeouts, now)
            else {
                break;
            };
            if self.sessions[idx as usize].class == Class::TcpEstablished as u8 {
                self.sli.idle_timeouts += 1;
            }
            self.report(idx, now, EndReason::IdleTimeout);
            self.remove(idx, now);
            stats.sessions_expired += 1;
        }
        self.sli.judge_due(&self.sessions, now);
        if self.flows.enabled() {
            let interval = self.flows.interval();
            for idx in self.flows.sweep(self.sessions.capacity()) {
                if self.sessions.contains(idx as usize) && self.accounts.due(idx, now, interval) {
                    self.report(idx, now, EndReason::ActiveTimeout);
                }
            }
        }
        while let Some(h) = self.holds.front().copied() {
            if h.freed.saturating_add(self.p.t.hold) > now {
                break;
            }
            self.holds.pop_front();
            self.end_hold(h, now);
        }
    }

    /// Every session, for the shell.
    pub fn sessions(&self, now: u32) -> impl Iterator<Item = SessionInfo> + '_ {
        self.sessions.iter().map(move |(_, s)| self.info(s, now))
    }

    /// Removes the sessions for which `pred` holds; returns how many.
    pub fn clear(&mut self, now: u32, mut pred: impl FnMut(&SessionInfo) -> bool) -> usize {
        let doomed: Vec<u32> = self
            .sessions
            .iter()
            .filter(|(_, s)| pred(&self.info(s, now)))
            .map(|(i, _)| i as u32)
            .collect();
        for &idx in &doomed {
            self.report(idx, now, EndReason::ForcedEnd);
            self.remove(idx, now);
        }
        doomed.len()
    }

    fn info(&self, s: &Session, now: u32) -> SessionInfo {
        let class = Class::ALL[usize::from(s.class)];
        let idle = now.saturating_sub(s.last);
        SessionInfo {
            proto: s.proto,
            inside: SocketAddrV4::new(Ipv4Addr::from_bits(s.in_addr), s.in_port),
            outside: SocketAddrV4::new(self.p.pool[usize::from(s.pool)], s.ext_port),
            remote: SocketAddrV4::new(Ipv4Addr::from_bits(s.rem_addr), s.rem_port),
            state: track::state_name(s.proto, s.state),
            class,
            idle,
            expires: self.p.t.timeouts.get(class).saturating_sub(idle),
        }
    }

    // ---- lookups ----

    fn out_hash(&self, proto: u8, in_addr: u32, in_port: u16, rem: u32, rem_port: u16) -> u64 {
        self.hasher.hash(&[
            u64::from(KIND_OUT) << 62
                | u64::from(proto) << 48
                | u64::from(in_port) << 32
                | u64::from(in_addr),
            u64::from(rem) << 16 | u64::from(rem_port),
        ])
    }

    fn in_hash(&self, proto: u8, pool: usize, ext_port: u16, rem: u32, rem_port: u16) -> u64 {
        self.hasher.hash(&[
            u64::from(KIND_IN) << 62
                | u64::from(proto) << 48
                | u64::from(ext_port) << 32
                | pool as u64,
            u64::from(rem) << 16 | u64::from(rem_port),
        ])
    }

    fn map_hash(&self, proto: u8, in_addr: u32, in_port: u16) -> u64 {
        self.hasher.hash(&[u64::from(KIND_MAP) << 62
            | u64::from(proto) << 48
            | u64::from(in_port) << 32
            | u64::from(in_addr)])
    }

    fn host_hash(&self, in_addr: u32) -> u64 {
        self.hasher
            .hash(&[u64::from(KIND_HOST) << 62 | u64::from(in_addr), 0, 0])
    }

    /// The session behind an index entry of `kind` with this hash for which `is` holds.
    #[inline]
    fn find(&self, kind: u32, hash: u64, is: impl Fn(&Session) -> bool) -> Option<u32> {
        self.index
            .find(hash, |v| {
                v >> 30 == kind && is(&self.sessions[(v & HANDLE_MASK) as usize])
            })
            .map(|v| v & HANDLE_MASK)
    }

    #[inline]
    fn find_out(
        &self,
        proto: u8,
        in_addr: u32,
        in_port: u16,
        rem: u32,
        rem_port: u16,
    ) -> Option<u32> {
        let h = self.out_hash(proto, in_addr, in_port, rem, rem_port);
        self.find(KIND_OUT, h, |s| {
            s.in_addr == in_addr
                && s.in_port == in_port
                && s.rem_addr == rem
                && s.rem_port == rem_port
                && s.proto == proto
        })
    }

    #[inline]
    fn find_in(
        &self,
        proto: u8,
        pool: usize,
        ext_port: u16,
        rem: u32,
        rem_port: u16,
    ) -> Option<u32> {
        let h = self.in_hash(proto, pool, ext_port, rem, rem_port);
        self.find(KIND_IN, h, |s| {
            usize::from(s.pool) == pool
                && s.ext_port == ext_port
                && s.rem_addr == rem
                && s.rem_port == rem_port
                && s.proto == proto
        })
    }

    fn find_mapping(&self, proto: u8, in_addr: u32, in_port: u16) -> Option<u32> {
        let h = self.map_hash(proto, in_addr, in_port);
        self.find(KIND_MAP, h, |s| {
            s.in_addr == in_addr && s.in_port == in_port && s.proto == proto
        })
    }

    fn find_host(&self, addr: u32) -> Option<u32> {
        let h = self.host_hash(addr);
        self.index
            .find(h, |v| {
                v >> 30 == KIND_HOST && self.hosts[(v & HANDLE_MASK) as usize].addr == addr
            })
            .map(|v| v & HANDLE_MASK)
    }

    // ---- session life cycle ----

    /// The pool address paired with an inside host (REQ-2): a fixed multiplicative
    /// hash, so the pairing needs no state and survives restarts. `None` while the
    /// pool is empty (its address comes by DHCP and no lease is held yet).
    fn paired_pool(&self, in_addr: u32) -> Option<usize> {
        if self
            .p
            .blocks
            .is_some_and(|b| b.mode == blocks::Mode::Deterministic)
        {
            return self.deterministic_block(in_addr).map(|(pool, _)| pool);
        }
        ((in_addr.wrapping_mul(0x9e37_79b1) >> 16) as usize).checked_rem(self.p.pool.len())
    }

    fn create_outbound(&mut self, flow: &Flow, rem_port: u16, now: u32) -> Result<u32, DropReason> {
        let host = self.reserve_session(flow.src)?;
        let (pool, ext_port, head) = match self.find_mapping(flow.proto, flow.src, flow.sport) {
            Some(head) => {
                let s = &self.sessions[head as usize];
                (s.pool, s.ext_port, Some(head))
            }
            None => {
                if self.hosts[host as usize].ports >= self.p.t.max_ports_per_host {
                    self.release_host_if_idle(host);
                    return Err(DropReason::HostPortLimit);
                }
                let pool = usize::from(self.hosts[host as usize].pool);
                let range = self.range_for(flow.proto, flow.sport);
                let picked = match range {
                    None => Err(DropReason::PortsExhausted),
                    Some(range) if self.p.blocks.is_some() => {
                        self.pick_in_blocks(host, pool, flow.proto, range, flow.sport, now)
                    }
                    Some(range) => (self.port_table(pool, flow.proto))
                        .pick(range, flow.sport, flow.src)
                        .ok_or(DropReason::PortsExhausted),
                };
                match picked {
                    Ok(port) => (pool as u8, port, None),
                    Err(e) => {
                        self.release_host_if_idle(host);
                        return Err(e);
                    }
                }
            }
        };
        let state = TcpState::open(Dir::Out, flow.tcp.flags).map_or(0, |s| s as u8);
        let idx = self.insert_session(
            Session {
                in_addr: flow.src,
                rem_addr: flow.dst,
                in_port: flow.sport,
                rem_port,
                ext_port,
                pool,
                proto: flow.proto,
                state,
                class: track::class_of(flow.proto, state) as u8,
                last: now,
                born: now,
                lru: Links::default(),
                sib: Links::default(),
                tcp: track::Window::open(Dir::Out, &flow.tcp),
            },
            match head {
                Some(head) => Join::Mapping(head),
                None => Join::NewMapping { host },
            },
        );
        Ok(idx)
    }

    /// Filtering (REQ-8) for an inbound packet with no session of its own.
    fn admit_inbound(
        &mut self,
        flow: &Flow,
        pool: usize,
        now: u32,
        policy: &mut Policy,
    ) -> Result<u32, DropReason> {
        let head = self.ports[pool][proto_slot(flow.proto)]
            .as_ref()
            .and_then(|t| t.owner(flow.dport))
            .ok_or(DropReason::NoMapping)?;
        let admitted = match self.p.t.filtering {
            Filtering::EndpointIndependent => true,
            Filtering::AddressDependent => self.mapping_has_remote(head, flow.src),
            Filtering::AddressAndPortDependent => false,
        };
        if !admitted || flow.proto == proto::ICMP {
            return Err(DropReason::Filtered);
        }
        let state = opened_in_state(flow)?;
        let (in_addr, in_port) = {
            let s = &self.sessions[head as usize];
            (s.in_addr, s.in_port)
        };
        policy
            .admit4(
                Ipv4Addr::from_bits(in_addr),
                Ipv4Addr::from_bits(flow.src),
                policy::session_key(flow.proto, flow.sport),
            )
            .map_err(|_| DropReason::PolicyDeny)?;
        if self.sessions.len() as u32 >= self.p.t.max_sessions {
            return Err(DropReason::SessionLimit);
        }
        let table = self.port_table(pool, flow.proto);
        if table.unanswered(flow.dport) >= MAX_UNANSWERED_PER_MAPPING {
            return Err(DropReason::MappingInboundLimit);
        }
        table.count_unanswered(flow.dport, true);
        Ok(self.insert_session(
            opened_in(flow, pool, (in_addr, in_port), state, now),
            Join::Mapping(head),
        ))
    }

    fn mapping_has_remote(&mut self, head: u32, remote: u32) -> bool {
        let mut at = Some(head);
        while let Some(i) = at {
            if self.sessions[i as usize].rem_addr == remote {
                return true;
            }
            at = List::next::<1, _>(&mut self.sessions, i);
        }
        false
    }

    /// Checks the global and per-host session limits and returns the host record
    /// (created if new) with one session charged to it.
    fn reserve_session(&mut self, in_addr: u32) -> Result<u32, DropReason> {
        if self.sessions.len() as u32 >= self.p.t.max_sessions {
            return Err(DropReason::SessionLimit);
        }
        let pool = self.paired_pool(in_addr).ok_or(DropReason::NoPoolAddress)? as u8;
        let host = self
            .host_or_new(in_addr, pool)
            .ok_or(DropReason::SessionLimit)?;
        if let Err(e) = self.charge_host(host) {
            self.release_host_if_idle(host);
            return Err(e);
        }
        Ok(host)
    }

    /// The host record of `in_addr`, created (paired with pool address `pool`) if it
    /// has none; `None` if the index has no room for a new one.
    fn host_or_new(&mut self, in_addr: u32, pool: u8) -> Option<u32> {
        if let Some(h) = self.find_host(in_addr) {
            return Some(h);
        }
        let h = self.hosts.insert(Host {
            addr: in_addr,
            sessions: 0,
            ports: 0,
            pool,
            blocks: [NONE; 3],
        }) as u32;
        let hash = self.host_hash(in_addr);
        if !self.index.insert(hash, KIND_HOST << 30 | h) {
            self.hosts.remove(h as usize);
            return None;
        }
        Some(h)
    }

    /// Charges one session to `host` if it is below its quota (RFC 6888 REQ-5).
    fn charge_host(&mut self, host: u32) -> Result<(), DropReason> {
        let rec = &mut self.hosts[host as usize];
        if rec.sessions >= self.p.t.max_sessions_per_host {
            return Err(DropReason::HostSessionLimit);
        }
        rec.sessions += 1;
        Ok(())
    }

    fn release_host_if_idle(&mut self, host: u32) {
        let rec = &self.hosts[host as usize];
        if rec.sessions == 0 && rec.ports == 0 && rec.blocks == [NONE; 3] {
            let hash = self.host_hash(rec.addr);
            self.index.remove(hash, KIND_HOST << 30 | host);
            self.hosts.remove(host as usize);
        }
    }

    fn port_table(&mut self, pool: usize, proto: u8) -> &mut PortTable {
        self.ports[pool][proto_slot(proto)].get_or_insert_with(Default::default)
    }

    /// Stores a session and its keys, joining a mapping or starting one, and puts it
    /// at the back of its idle list.
    fn insert_session(&mut self, s: Session, join: Join) -> u32 {
        let idx = self.place(s, join, true);
        self.lru.insert(&mut self.sessions, idx);
        idx
    }

    /// Stores a session and its keys, joining a mapping or starting one (a mapping
    /// event if `log`); the caller puts it on its idle list.
    fn place(&mut self, s: Session, join: Join, log: bool) -> u32 {
        let (proto, in_addr, in_port, rem, rem_port, pool, ext_port) = (
            s.proto,
            s.in_addr,
            s.in_port,
            s.rem_addr,
            s.rem_port,
            usize::from(s.pool),
            s.ext_port,
        );
        let idx = self.sessions.insert(s) as u32;
        let out_h = self.out_hash(proto, in_addr, in_port, rem, rem_port);
        let in_h = self.in_hash(proto, pool, ext_port, rem, rem_port);
        // The index holds 4 slots per allowed session; these inserts cannot fail.
        self.index.insert(out_h, KIND_OUT << 30 | idx);
        self.index.insert(in_h, KIND_IN << 30 | idx);
        match join {
            Join::Forward => {}
            Join::Mapping(head) => list::chain_insert_after::<1, _>(&mut self.sessions, head, idx),
            Join::NewMapping { host } => {
                if log && self.logs_mappings() {
                    let now = self.sessions[idx as usize].last;
                    self.log_mapping(idx, true, now);
                }
                let map_h = self.map_hash(proto, in_addr, in_port);
                self.index.insert(map_h, KIND_MAP << 30 | idx);
                let fresh = self.port_table(pool, proto).claim(ext_port, idx, in_addr);
                if let Some(b) = self.blocks[pool][proto_slot(proto)].as_mut() {
                    b.mapped(ext_port, fresh);
                }
                self.hosts[host as usize].ports += 1;
            }
        }
        idx
    }

    fn remove(&mut self, idx: u32, now: u32) {
        let s = self.sessions[idx as usize].clone();
        self.lru.remove(&mut self.sessions, idx);
        let pool = usize::from(s.pool);
        let out_h = self.out_hash(s.proto, s.in_addr, s.in_port, s.rem_addr, s.rem_port);
        let in_h = self.in_hash(s.proto, pool, s.ext_port, s.rem_addr, s.rem_port);
        self.index.remove(out_h, KIND_OUT << 30 | idx);
        self.index.remove(in_h, KIND_IN << 30 | idx);
        if let Some(f) = self.forward_of(&s) {
            if s.state & track::OPENED_IN != 0 {
                self.fwd.unanswered[f] = self.fwd.unanswered[f].saturating_sub(1);
            }
            self.sessions.remove(idx as usize);
            return;
        }
        let was_head = s.sib.is_first();
        let next = list::chain_unlink::<1, _>(&mut self.sessions, idx);
        let host = self.find_host(s.in_addr);
        let unanswered = s.state & track::OPENED_IN != 0;
        if unanswered {
            if let Some(t) = self.ports[pool][proto_slot(s.proto)].as_mut() {
                t.count_unanswered(s.ext_port, false);
            }
        }
        if was_head {
            let map_h = self.map_hash(s.proto, s.in_addr, s.in_port);
            let slot = proto_slot(s.proto);
            match next {
                Some(next) => {
                    self.index
                        .replace(map_h, KIND_MAP << 30 | idx, KIND_MAP << 30 | next);
                    if let Some(t) = self.ports[pool][slot].as_mut() {
                        t.set_head(s.ext_port, next);
                    }
                }
                None => {
                    if self.logs_mappings() {
                        self.log_mapping(idx, false, now);
                    }
                    self.index.remove(map_h, KIND_MAP << 30 | idx);
                    if let Some(t) = self.ports[pool][slot].as_mut() {
                        t.hold(s.ext_port, now);
                    }
                    self.block_unmapped(pool, slot, s.ext_port);
                    if self.holds.len() == self.holds.capacity() {
                        // Hold FIFO full: end the oldest hold early rather than grow.
                        if let Some(h) = self.holds.pop_front() {
                            self.end_hold(h, now);
                        }
                    }
                    self.holds.push_back(Hold {
                        pool: s.pool,
                        proto: slot as u8,
                        port: s.ext_port,
                        freed: now,
                    });
                    if let Some(h) = host {
                        self.hosts[h as usize].ports -= 1;
                    }
                }
            }
        }
        if let Some(h) = host {
            if !unanswered {
                self.hosts[h as usize].sessions -= 1;
            }
            self.release_host_if_idle(h);
        }
        self.sessions.remove(idx as usize);
    }

    /// Advances TCP state and refreshes the idle timer as the packet allows; refuses
    /// an out-of-window RST (see `track`), and an answer to a session opened from
    /// outside when the inside host is at its session quota.
    #[inline]
    fn track(
        &mut self,
        idx: u32,
        dir: Dir,
        seg: &track::Segment,
        now: u32,
    ) -> Result<(), DropReason> {
        let s = &self.sessions[idx as usize];
        // Stepped on copies: nothing changes unless the packet is let through.
        let (mut state, mut window) = (s.state, s.tcp);
        let effect = track::step(
            s.proto,
            &mut state,
            &mut window,
            dir,
            seg,
            self.p.t.udp_inbound_refresh,
        )?;
        if effect.answered {
            if let Some(f) = self.forward_of(s) {
                self.fwd.unanswered[f] = self.fwd.unanswered[f].saturating_sub(1);
                return self.commit_track(idx, state, window, effect, now);
            }
            let (in_addr, pool, proto, ext_port) = (s.in_addr, s.pool, s.proto, s.ext_port);
            // A session's mapping holds a port of its host, so the host record exists.
            let host = self
                .find_host(in_addr)
                .ok_or(DropReason::HostSessionLimit)?;
            self.charge_host(host)?;
            if let Some(t) = self.ports[usize::from(pool)][proto_slot(proto)].as_mut() {
                t.count_unanswered(ext_port, false);
            }
        }
        let s = &self.sessions[idx as usize];
        if state != s.state && s.proto == proto::TCP {
            // Before the new state is stored: a late answer's attempt is judged first.
            self.sli.tcp_moved(&self.sessions, idx, state, dir, now);
        }
        self.commit_track(idx, state, window, effect, now)
    }

    /// Stores what `track` stepped and moves the session on its idle lists.
    #[inline]
    fn commit_track(
        &mut self,
        idx: u32,
        state: u8,
        window: track::Window,
        effect: track::Effect,
        now: u32,
    ) -> Result<(), DropReason> {
        let s = &mut self.sessions[idx as usize];
        (s.state, s.tcp) = (state, window);
        self.lru
            .touch(&mut self.sessions, idx, effect.class, effect.refresh, now);
        Ok(())
    }
}

/// A slab entry is an enum of the record and a free-list link: the record after a
/// 4-byte tag, rounded up to the word (measured by the `memory` benchmark with a
/// counting allocator).
const SLAB_ENTRY_SIZE: usize =
    (std::mem::size_of::<Session>() + 4).next_multiple_of(std::mem::align_of::<usize>());
// The module doc and the `memory` benchmark count on this size.
const _: () = assert!(std::mem::size_of::<Session>() == 52);

/// The state of a session an inbound packet opens (`track::OPENED_IN`); a TCP
/// segment that cannot open one is refused.
fn opened_in_state(flow: &Flow) -> Result<u8, DropReason> {
    Ok(track::OPENED_IN
        | match flow.proto {
            proto::TCP => {
                TcpState::open(Dir::In, flow.tcp.flags).ok_or(DropReason::TcpNoSession)? as u8
            }
            _ => 0,
        })
}

/// The session the inbound datagram `flow` opens to inside endpoint `(in_addr,
/// in_port)` through public port `flow.dport` of pool address `pool`.
fn opened_in(
    flow: &Flow,
    pool: usize,
    (in_addr, in_port): (u32, u16),
    state: u8,
    now: u32,
) -> Session {
    Session {
        in_addr,
        rem_addr: flow.src,
        in_port,
        rem_port: remote_port(flow.proto, flow.sport),
        ext_port: flow.dport,
        pool: pool as u8,
        proto: flow.proto,
        state,
        class: track::class_of(flow.proto, state) as u8,
        last: now,
        born: now,
        lru: Links::default(),
        sib: Links::default(),
        tcp: track::Window::open(Dir::In, &flow.tcp),
    }
}

/// ICMP queries have no remote port: the identifier names the inside endpoint only.
#[inline]
fn remote_port(proto: u8, port: u16) -> u16 {
    if proto == proto::ICMP {
        0
    } else {
        port
    }
}

/// Extracts the NAT-relevant fields. ICMP: only echo requests travel out and echo
/// replies travel in; the identifier stands for both ports.
fn parse_flow(ip: &[u8], dir: Dir) -> Result<Flow, DropReason> {
    let p = ipv4::Packet::new_checked(ip).map_err(|_| DropReason::Ipv4Malformed)?;
    let l4 = p.header_len();
    let payload = p.payload();
    let (src, dst) = (p.src().to_bits(), p.dst().to_bits());
    match p.protocol() {
        proto::TCP => {
            let t = tcp::Packet::new_checked(payload).map_err(|_| DropReason::L4Truncated)?;
            Ok(Flow {
                proto: proto::TCP,
                len: p.total_len(),
                l4,
                src,
                dst,
                sport: t.src_port(),
                dport: t.dst_port(),
                tcp: track::Segment::parse(&t),
            })
        }
        proto::UDP => {
            let u = crate::wire::udp::Packet::new_checked(payload)
                .map_err(|_| DropReason::L4Truncated)?;
            Ok(Flow {
                proto: proto::UDP,
                len: p.total_len(),
                l4,
                src,
                dst,
                sport: u.src_port(),
                dport: u.dst_port(),
                tcp: track::Segment::default(),
            })
        }
        proto::ICMP => {
            let i = icmpv4::Packet::new_checked(payload).map_err(|_| DropReason::L4Truncated)?;
            let expected = match dir {
                Dir::Out => icmpv4::ECHO_REQUEST,
                Dir::In => icmpv4::ECHO_REPLY,
            };
            if i.msg_type() != expected {
                return Err(DropReason::UnsupportedIcmp);
            }
            let id = i.echo_id();
            Ok(Flow {
                proto: proto::ICMP,
                len: p.total_len(),
                l4,
                src,
                dst,
                sport: id,
                dport: id,
                tcp: track::Segment::default(),
            })
        }
        _ => Err(DropReason::UnsupportedProtocol),
    }
}
