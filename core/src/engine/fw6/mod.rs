//! IPv6 egress-only stateful filter (RFC 6092, "Simple Security in IPv6 Gateway CPE").
//!
//! IPv6 is routed, never translated. The engine applies the stateless rules before
//! calling in here (RFC 6092 REC-3 forbidden addresses, REC-4 type-0 routing header,
//! REC-5/REC-6 spoofed sources); this module keeps the transport state:
//! - an outbound packet from an inside source creates or refreshes a state record keyed
//!   by (protocol, inside address, inside port, remote address, remote port); ICMPv6
//!   echo uses its identifier as the inside port and 0 as the remote port; other
//!   protocols use ports 0 (a "generic upper-layer transport" record, REC-12);
//! - an inbound packet passes only if it matches a record exactly: filtering is
//!   address-and-port-dependent, the most conservative of REC-11/REC-23's choices, so
//!   nothing unsolicited gets in — TCP SYN, UDP, echo request or anything else;
//! - inbound ICMPv6 errors pass only if their quoted packet matches a record (REC-10,
//!   Packet Too Big included); outbound errors pass without creating state;
//! - TCP uses the shared state machine and timeouts (`track`), UDP records are
//!   refreshed only by outbound packets unless configured (REC-14 / RFC 4787 REQ-6).
//!
//! The table is bounded (`max_states`), and so is each inside address's share of it
//! (`nat.max_sessions_per_host`, the per-host quota NAT44 applies to IPv4 sessions, RFC
//! 6888 REQ-5 style), so one host cannot fill the table for the others. Over either
//! bound new outbound flows are dropped and counted; existing ones are never evicted.
//! Only outbound packets create state, so outsiders cannot use up a host's quota. A
//! host is one /128: IPv6 hosts on one link share a /64. A state record is 68 bytes,
//! 10 of them the TCP sequence windows (`track::Window`) and 4 its creation time; the host index adds 8 bytes
//! (rounded up to a power of two of slots) per unit of `max_states`.

use super::destinations::{Dest, Report};
use super::flow::index::{Hasher, Index};
use super::flow::list::Links;
use super::flow::lru::{Lru, Timed};
use super::flow::track::{self, Class, Dir, TcpState, Timeouts};
use super::flowlog::{self, Accounts, Action, EndReason, FlowLog, FlowRecord};
use super::nat44::flow_interval;
use super::policy::Policy;
use super::sli::{Attempt, Sli};
use super::stats::{DropReason, Stats};
use crate::shard::Shard;
use crate::wire::{icmpv6, ipv6, proto, tcp, udp, WireError};
use firmware_config::Config;
use ipnet::Ipv6Net;
use slab::Slab;
use std::net::Ipv6Addr;

const EXPIRE_BATCH: usize = 16_384;

/// The transport identity of an IPv6 packet, oriented inside/remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple6 {
    pub proto: u8,
    pub inside: Ipv6Addr,
    pub in_port: u16,
    pub remote: Ipv6Addr,
    pub rem_port: u16,
    /// What TCP tracking reads (zero for other protocols).
    pub tcp: track::Segment,
}

/// An inside address with state.
#[derive(Debug, Clone)]
struct Host6 {
    addr: [u8; 16],
    states: u32,
}

#[derive(Debug, Clone)]
struct State6 {
    inside: [u8; 16],
    remote: [u8; 16],
    in_port: u16,
    rem_port: u16,
    proto: u8,
    state: u8,
    class: u8,
    last: u32,
    /// When the session was created, whole seconds of engine time.
    born: u32,
    lru: Links,
    /// TCP sequence windows (unused for other protocols).
    tcp: track::Window,
}

crate::timed_record!(State6);

impl Attempt for State6 {
    fn dest(&self) -> Dest {
        Dest::v6(Ipv6Addr::from(self.remote))
    }
    fn born(&self) -> u32 {
        self.born
    }
    fn tag(&self) -> u32 {
        u32::from(self.in_port) << 16 | u32::from(self.rem_port)
    }
    fn proto(&self) -> u8 {
        self.proto
    }
    fn state(&self) -> u8 {
        self.state
    }
}

// The module doc counts on this size.
const _: () = assert!(std::mem::size_of::<State6>() == 68);

impl State6 {
    /// The state's tuple (no segment: for hashing).
    fn tuple(&self) -> Tuple6 {
        Tuple6 {
            proto: self.proto,
            inside: Ipv6Addr::from(self.inside),
            in_port: self.in_port,
            remote: Ipv6Addr::from(self.remote),
            rem_port: self.rem_port,
            tcp: track::Segment::default(),
        }
    }

    fn matches(&self, t: &Tuple6) -> bool {
        self.in_port == t.in_port
            && self.rem_port == t.rem_port
            && self.proto == t.proto
            && self.inside == t.inside.octets()
            && self.remote == t.remote.octets()
    }
}

/// A state record as the shell sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateInfo {
    pub proto: u8,
    pub inside: Ipv6Addr,
    pub in_port: u16,
    pub remote: Ipv6Addr,
    pub rem_port: u16,
    pub state: &'static str,
    pub idle: u32,
    pub expires: u32,
}

/// The settings `retune` changes in place, read from a configuration in one place.
#[derive(Debug, Clone)]
struct Tunables {
    max_states: u32,
    max_states_per_host: u32,
    udp_inbound_refresh: bool,
    timeouts: Timeouts,
}

impl Tunables {
    /// The tunables of shard `shard`: its share of the global state limit.
    fn of(config: &Config, shard: Shard) -> Tunables {
        Tunables {
            max_states: shard.share(config.ipv6.max_states),
            max_states_per_host: config.nat.max_sessions_per_host,
            udp_inbound_refresh: config.nat.udp_inbound_refresh,
            timeouts: Timeouts::from_config(&config.timeouts),
        }
    }
}

/// The filter.
#[derive(Debug)]
pub struct Fw6 {
    inside: Vec<Ipv6Net>,
    t: Tunables,
    states: Slab<State6>,
    index: Index,
    hosts: Slab<Host6>,
    /// Inside address to `hosts` entry.
    host_index: Index,
    hasher: Hasher,
    lru: Lru,
    shard: Shard,
    /// Flow records (`engine::flowlog`) and the states' accounts.
    flows: FlowLog,
    accounts: Accounts,
    /// The per-destination SLIs of the /48s (`engine::sli`).
    sli: Sli,
}

impl Fw6 {
    /// The filter of engine shard `shard`, holding its share of `ipv6.max_states`.
    pub fn new(config: &Config, shard: Shard) -> Fw6 {
        let max = shard.share(config.ipv6.max_states) as usize;
        // Like NAT44's host table: grows past this only on a very large network.
        let hosts = max.min(1 << 16);
        let mut fw6 = Fw6 {
            inside: config.ipv6_inside_prefixes(),
            t: Tunables::of(config, shard),
            shard,
            states: Slab::with_capacity(max),
            index: Index::with_capacity(max * 2),
            hosts: Slab::with_capacity(hosts),
            // Every state may have its own inside address.
            host_index: Index::with_capacity(max),
            hasher: Hasher::default(),
            lru: Lru::default(),
            sli: Sli::new(max),
            flows: FlowLog::default(),
            accounts: Accounts::default(),
        };
        fw6.configure_flows(config);
        fw6
    }

    fn configure_flows(&mut self, config: &Config) {
        let slots = self.states.capacity();
        self.flows
            .configure(flow_interval(config), &mut self.accounts, slots);
    }

    /// The flow log (see `engine::flowlog`).
    pub fn flows(&self) -> &FlowLog {
        &self.flows
    }

    pub fn flows_mut(&mut self) -> &mut FlowLog {
        &mut self.flows
    }

    /// The flow record of state `idx` for what it carried since its last record.
    fn report(&mut self, idx: u32, now: u32, reason: EndReason) {
        if !self.flows.enabled() {
            return;
        }
        let s = &self.states[idx as usize];
        let carried = self.flows.session_ended(
            &mut self.accounts,
            (idx, s.proto),
            now,
            reason,
            |account, reason| FlowRecord {
                proto: s.proto,
                inside: Ipv6Addr::from(s.inside).into(),
                in_port: s.in_port,
                remote: Ipv6Addr::from(s.remote).into(),
                rem_port: s.rem_port,
                outside: None,
                account,
                born: s.born,
                end: s.last,
                action: Action::Accepted,
                reason,
            },
        );
        self.sli.carried(s.dest(), &carried);
    }

    /// Bytes the tables of shard `shard` under `config` take (`new` sets them all
    /// aside).
    pub fn table_bytes(config: &Config, shard: Shard) -> usize {
        let max = shard.share(config.ipv6.max_states) as usize;
        max * (std::mem::size_of::<State6>() + std::mem::size_of::<usize>())
            + Index::memory_for(max * 2)
            + flowlog::accounts_bytes(config, max)
            + Sli::memory_for(max)
    }

    /// The per-destination SLIs of the IPv6 destinations (`Report::v6`).
    pub fn destinations(&self) -> Report {
        let mut report = self.sli.report(self.flows.enabled());
        report.v6 = std::mem::take(&mut report.summary);
        report
    }

    /// Forgets the IPv6 destinations (`clear stats`).
    pub fn clear_destinations(&mut self) {
        self.sli.clear();
    }

    /// Applies the tunable settings of `config` in place, keeping every state.
    pub fn retune(&mut self, config: &Config) {
        self.t = Tunables::of(config, self.shard);
        self.configure_flows(config);
    }

    /// The settings in force, for tests that compare engines.
    #[cfg(test)]
    pub(crate) fn tunables(&self) -> impl std::fmt::Debug + '_ {
        (&self.inside, &self.t)
    }

    /// Whether `addr` is an inside address (RFC 6092 REC-5/REC-6).
    pub fn is_inside(&self, addr: &Ipv6Addr) -> bool {
        self.inside.iter().any(|n| n.contains(addr))
    }

    pub fn state_count(&self) -> usize {
        self.states.len()
    }

    pub fn class_count(&self, class: Class) -> u32 {
        self.lru.count(class)
    }

    /// A packet travelling `dir`: going out, it creates or refreshes its state; coming
    /// in, it passes only with matching state (RFC 6092 REC-11). A packet that would
    /// create a state is first put to the egress `policy` with its transport key `l4`
    /// (`policy::l4_key`).
    pub fn pass(
        &mut self,
        t: &Tuple6,
        dir: Dir,
        now: u32,
        stats: &mut Stats,
        (policy, l4): (&mut Policy, u32),
        len: usize,
    ) -> Result<(), DropReason> {
        let idx = match (self.find(t), dir) {
            (Some(idx), _) => idx,
            (None, Dir::Out) => {
                let made = self.create(t, now, stats, (&mut *policy, l4));
                let rule = flowlog::rule(policy.decided());
                match made {
                    Ok(idx) => {
                        self.accounts.open(self.flows.enabled(), idx, now, rule);
                        idx
                    }
                    Err(e) => {
                        if self.flows.enabled() {
                            self.report_refused(t, len, now, e, rule);
                        }
                        return Err(e);
                    }
                }
            }
            (None, Dir::In) => return Err(DropReason::Unsolicited6),
        };
        self.track(idx, dir, &t.tcp, now)?;
        self.accounts.count(idx, dir, len, t.tcp.flags);
        match dir {
            Dir::Out => stats.fw6_out.count(t.proto),
            Dir::In => stats.fw6_in.count(t.proto),
        }
        Ok(())
    }

    /// Whether a packet quoted by an inbound ICMPv6 error matches state (REC-10).
    pub fn matches(&self, t: &Tuple6) -> bool {
        self.find(t).is_some()
    }

    pub fn poll(&mut self, now: u32, stats: &mut Stats) {
        for _ in 0..EXPIRE_BATCH {
            let Some(idx) = self.lru.next_expired(&self.states, &self.t.timeouts, now) else {
                break;
            };
            self.report(idx, now, EndReason::IdleTimeout);
            self.remove(idx);
            stats.states6_expired += 1;
        }
        self.sli.judge_due(&self.states, now);
        if self.flows.enabled() {
            let interval = self.flows.interval();
            for idx in self.flows.sweep(self.states.capacity()) {
                if self.states.contains(idx as usize) && self.accounts.due(idx, now, interval) {
                    self.report(idx, now, EndReason::ActiveTimeout);
                }
            }
        }
    }

    pub fn states(&self, now: u32) -> impl Iterator<Item = StateInfo> + '_ {
        self.states.iter().map(move |(_, s)| self.info(s, now))
    }

    /// Takes over the states of `old` (the filter of the previous configuration) whose
    /// inside address is still inside, as far as the limits allow, in order of last
    /// activity (issue #16: a configuration change keeps what it can). Each state that
    /// ends gets its flow record (`ForcedEnd`). Returns how many of `old`'s states
    /// ended; `now` in seconds.
    pub fn adopt(&mut self, mut old: Fw6, now: u32) -> usize {
        let mut order: Vec<(u32, u32)> =
            old.states.iter().map(|(i, s)| (s.last, i as u32)).collect();
        order.sort_unstable();
        let mut ended = Vec::new();
        for (_, old_idx) in order {
            if !self.take_over(&old, old_idx) {
                ended.push(old_idx);
            }
        }
        for &idx in &ended {
            old.report(idx, now, EndReason::ForcedEnd);
        }
        // The queue of records carries over; the settings stay this filter's.
        old.flows.configure(
            self.flows.enabled().then_some(self.flows.interval()),
            &mut Accounts::default(),
            0,
        );
        self.sli.carry(&mut old.sli);
        self.flows = std::mem::take(&mut old.flows);
        ended.len()
    }

    /// Moves state `old_idx` of `old` into this filter with its account, unless it is
    /// no longer inside or over a limit.
    fn take_over(&mut self, old: &Fw6, old_idx: u32) -> bool {
        let s = &old.states[old_idx as usize];
        if !self.is_inside(&Ipv6Addr::from(s.inside))
            || self.states.len() as u32 >= self.t.max_states
        {
            return false;
        }
        let Ok(host) = self.charge_host(s.inside) else {
            return false;
        };
        let hash = self.hash(&s.tuple());
        let idx = self.states.insert(State6 {
            lru: Links::default(),
            ..s.clone()
        }) as u32;
        if !self.index.insert(hash, idx) {
            self.states.remove(idx as usize);
            self.uncharge_host(host);
            return false;
        }
        self.lru.insert(&mut self.states, idx);
        self.accounts
            .put(self.flows.enabled(), idx, old.accounts.get(old_idx));
        true
    }

    pub fn clear(&mut self, now: u32, mut pred: impl FnMut(&StateInfo) -> bool) -> usize {
        let doomed: Vec<u32> = self
            .states
            .iter()
            .filter(|(_, s)| pred(&self.info(s, now)))
            .map(|(i, _)| i as u32)
            .collect();
        for &idx in &doomed {
            self.report(idx, now, EndReason::ForcedEnd);
            self.remove(idx);
        }
        doomed.len()
    }

    fn info(&self, s: &State6, now: u32) -> StateInfo {
        let idle = now.saturating_sub(s.last);
        StateInfo {
            proto: s.proto,
            inside: Ipv6Addr::from(s.inside),
            in_port: s.in_port,
            remote: Ipv6Addr::from(s.remote),
            rem_port: s.rem_port,
            state: track::state_name(s.proto, s.state),
            idle,
            expires: self.t.timeouts.get(Timed::class(s)).saturating_sub(idle),
        }
    }

    fn hash(&self, t: &Tuple6) -> u64 {
        let i = u128::from(t.inside);
        let r = u128::from(t.remote);
        self.hasher.hash(&[
            (i >> 64) as u64,
            i as u64,
            (r >> 64) as u64,
            r as u64,
            u64::from(t.proto) << 32 | u64::from(t.in_port) << 16 | u64::from(t.rem_port),
        ])
    }

    fn find(&self, t: &Tuple6) -> Option<u32> {
        self.index
            .find(self.hash(t), |i| self.states[i as usize].matches(t))
    }

    fn create(
        &mut self,
        t: &Tuple6,
        now: u32,
        stats: &mut Stats,
        (policy, l4): (&mut Policy, u32),
    ) -> Result<u32, DropReason> {
        if self.states.len() as u32 >= self.t.max_states {
            return Err(DropReason::StateLimit6);
        }
        let state = match t.proto {
            proto::TCP => {
                TcpState::open(Dir::Out, t.tcp.flags).ok_or(DropReason::TcpNoSession)? as u8
            }
            _ => 0,
        };
        policy.open6(&t.inside, &t.remote, l4)?;
        let made = self.insert_state(t, state, now);
        if made.is_err() {
            policy.not_made(t.inside.into());
        }
        let idx = made?;
        stats.states6_created += 1;
        self.sli.created(idx, &self.states[idx as usize]);
        Ok(idx)
    }

    /// Inserts the state of new tuple `t` in TCP state `state` (0 for others),
    /// charged to its inside host.
    fn insert_state(&mut self, t: &Tuple6, state: u8, now: u32) -> Result<u32, DropReason> {
        let host = self.charge_host(t.inside.octets())?;
        let idx = self.states.insert(State6 {
            inside: t.inside.octets(),
            remote: t.remote.octets(),
            in_port: t.in_port,
            rem_port: t.rem_port,
            proto: t.proto,
            state,
            class: track::class_of(t.proto, state) as u8,
            last: now,
            born: now,
            lru: Links::default(),
            tcp: track::Window::open(Dir::Out, &t.tcp),
        }) as u32;
        let h = self.hash(t);
        if !self.index.insert(h, idx) {
            self.states.remove(idx as usize);
            self.uncharge_host(host);
            return Err(DropReason::StateLimit6);
        }
        self.lru.insert(&mut self.states, idx);
        Ok(idx)
    }

    fn remove(&mut self, idx: u32) {
        self.lru.remove(&mut self.states, idx);
        let s = &self.states[idx as usize];
        let h = self.hash(&s.tuple());
        self.index.remove(h, idx);
        if let Some(host) = self.find_host(s.inside) {
            self.uncharge_host(host);
        }
        self.states.remove(idx as usize);
    }

    /// The flow record of a new state refused with `reason`.
    fn report_refused(&mut self, t: &Tuple6, len: usize, now: u32, reason: DropReason, rule: u16) {
        let Some(action) = flowlog::refusal(reason) else {
            return;
        };
        let ends = (
            t.proto,
            t.inside.into(),
            t.in_port,
            t.remote.into(),
            t.rem_port,
        );
        let record = FlowRecord::refused(ends, (len, t.tcp.flags), (action, rule), now);
        self.flows.refused(now, record);
    }

    fn host_hash(&self, addr: [u8; 16]) -> u64 {
        let a = u128::from_be_bytes(addr);
        self.hasher.hash(&[(a >> 64) as u64, a as u64])
    }

    fn find_host(&self, addr: [u8; 16]) -> Option<u32> {
        self.host_index.find(self.host_hash(addr), |i| {
            self.hosts[i as usize].addr == addr
        })
    }

    /// Charges one state to inside address `addr` (its record created if new), unless
    /// it is at its quota; returns the record.
    fn charge_host(&mut self, addr: [u8; 16]) -> Result<u32, DropReason> {
        let host = match self.find_host(addr) {
            Some(host) => host,
            None => {
                let host = self.hosts.insert(Host6 { addr, states: 0 }) as u32;
                if !self.host_index.insert(self.host_hash(addr), host) {
                    self.hosts.remove(host as usize);
                    return Err(DropReason::StateLimit6);
                }
                host
            }
        };
        let rec = &mut self.hosts[host as usize];
        rec.states += 1;
        if rec.states > self.t.max_states_per_host {
            self.uncharge_host(host);
            return Err(DropReason::HostStateLimit6);
        }
        Ok(host)
    }

    /// Gives back one state of `host`, forgetting the host with its last state.
    fn uncharge_host(&mut self, host: u32) {
        let rec = &mut self.hosts[host as usize];
        rec.states = rec.states.saturating_sub(1);
        if rec.states == 0 {
            let addr = rec.addr;
            self.host_index.remove(self.host_hash(addr), host);
            self.hosts.remove(host as usize);
        }
    }

    fn track(
        &mut self,
        idx: u32,
        dir: Dir,
        seg: &track::Segment,
        now: u32,
    ) -> Result<(), DropReason> {
        let s = &self.states[idx as usize];
        // Stepped on copies, so the SLI hook sees the old state beside the new.
        let (mut state, mut window) = (s.state, s.tcp);
        let effect = track::step(
            s.proto,
            &mut state,
            &mut window,
            dir,
            seg,
            self.t.udp_inbound_refresh,
        )?;
        if state != s.state && s.proto == proto::TCP {
            self.sli.tcp_moved(&self.states, idx, state, dir, now);
        }
        let s = &mut self.states[idx as usize];
        (s.state, s.tcp) = (state, window);
        self.lru
            .touch(&mut self.states, idx, effect.class, effect.refresh, now);
        Ok(())
    }
}

/// The ports of the upper-layer header at `l4` (a slice starting there and ending
/// with the packet): TCP/UDP ports, or the echo identifier for ICMPv6 echo, or zeros
/// for other protocols. Returns (source port, destination port, TCP segment).
pub fn ports(protocol: u8, l4: &[u8]) -> Result<(u16, u16, track::Segment), WireError> {
    let none = track::Segment::default();
    Ok(match protocol {
        proto::TCP => {
            let t = tcp::Packet::new_checked(l4)?;
            (t.src_port(), t.dst_port(), track::Segment::parse(&t))
        }
        proto::UDP => {
            let u = udp::Packet::new_checked(l4)?;
            (u.src_port(), u.dst_port(), none)
        }
        proto::ICMPV6 => {
            let i = icmpv6::Packet::new_checked(l4)?;
            if i.is_echo() {
                (i.echo_id(), i.echo_id(), none)
            } else {
                (0, 0, none)
            }
        }
        _ => (0, 0, none),
    })
}

/// Orients a packet's addresses and ports as a state tuple for direction `dir`.
pub fn tuple(
    protocol: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ports: (u16, u16, track::Segment),
    dir: Dir,
) -> Tuple6 {
    let (sport, dport, tcp) = ports;
    let icmp = protocol == proto::ICMPV6;
    match dir {
        Dir::Out => Tuple6 {
            proto: protocol,
            inside: src,
            in_port: sport,
            remote: dst,
            rem_port: if icmp { 0 } else { dport },
            tcp,
        },
        Dir::In => Tuple6 {
            proto: protocol,
            inside: dst,
            in_port: dport,
            remote: src,
            rem_port: if icmp { 0 } else { sport },
            tcp,
        },
    }
}

/// The state tuple of the packet quoted by an inbound ICMPv6 error (`body` is the error
/// message after its 8-byte header). The quote is an outbound packet of ours.
pub fn quoted_tuple(body: &[u8]) -> Result<Tuple6, WireError> {
    // The quote may be cut short: view only its fixed header, then walk what is there.
    if body.len() < ipv6::HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let mut copy = [0u8; 1280];
    let n = body.len().min(copy.len());
    copy[..n].copy_from_slice(&body[..n]);
    // Pretend the payload length is what we have, so the walker stays in bounds.
    copy[4..6].copy_from_slice(&((n - ipv6::HEADER_LEN) as u16).to_be_bytes());
    let p = ipv6::Packet::new_checked(&copy[..n])?;
    let upper = p.upper_layer()?;
    let l4 = &copy[upper.offset..n];
    let (sport, dport) = if upper.fragment.is_some_and(|f| f.is_non_first()) {
        (0, 0)
    } else if l4.len() >= 8 {
        // Only the first 8 bytes are guaranteed: read ports without the full header.
        match upper.protocol {
            proto::TCP | proto::UDP => (crate::wire::be16(l4, 0), crate::wire::be16(l4, 2)),
            proto::ICMPV6 if matches!(l4[0], icmpv6::ECHO_REQUEST | icmpv6::ECHO_REPLY) => {
                let id = crate::wire::be16(l4, 4);
                (id, id)
            }
            _ => (0, 0),
        }
    } else {
        return Err(WireError::Truncated);
    };
    let ports = (sport, dport, track::Segment::default());
    Ok(tuple(upper.protocol, p.src(), p.dst(), ports, Dir::Out))
}
