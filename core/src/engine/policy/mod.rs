//! The egress policy (`[policy]`, `firmware_config::policy`), compiled: which new
//! sessions inside hosts may open, decided by the first rule that matches.
//!
//! Contract:
//! - The policy is asked only when a session or state would be created: a new NAT44
//!   session (`nat44::Nat44::outbound`, matched on the inside source before
//!   translation; a session an outsider opens on a mapping, `admit_inbound`, is asked
//!   as the inside host's traffic to that remote endpoint would be), a new IPv6 filter
//!   state (`fw6::Fw6::pass`). Packets of existing sessions never reach it.
//! - `admit4`/`admit6` count a hit on the deciding rule (or the default) and return
//!   `Err(PolicyDeny)` (dropped silently) or `Err(PolicyReject)` (the engine answers:
//!   a TCP RST, `reset`, or ICMP administratively prohibited, IPv4 type 3 code 13 and
//!   IPv6 type 1 code 1, `icmp::reject4`/`reject6`, under the ICMP rate limit). With
//!   no rule and the default `allow` the policy is off: nothing is looked up or
//!   counted.
//! - Rules are compiled, not walked (up to `firmware_config::policy::MAX_RULES`):
//!   each family's rules into a bit-vector classifier (`classify`, Lakshman and
//!   Stiliadis 1998) split by the dimensions rules are wildcards in, whose sets are
//!   aggregated bit vectors (`sets`, Baboescu and Varghese 2001): three binary
//!   searches and at most eight probes, each intersection stopping at the first
//!   common word. The `policy` criterion benchmark measures a lookup and a new session
//!   through the engine at 10, 1 000 and 10 000 rules against no policy. Memory: each
//!   dimension has at most 2n + 1 intervals and each distinct set of rules is stored
//!   once, sparse; `memory` says how much a compiled policy holds and
//!   `Engine::table_bytes` counts it per shard.
//! - A new policy (`Engine::reconfigure`) is compiled on every shard, and the
//!   sessions and states it now denies (or rejects) end (`Nat44::clear`, `Fw6::clear`
//!   with the policy's decision; a mapping whose last session ends is a mapping event,
//!   as at expiry); `Reconfigured::denied` says how many. Hit counters of rules that
//!   stayed the same at the same place are kept.
//!
//! Crates weighed: LPM tables (`prefix-trie`, `ip_network_table`, `treebitmap`) give the
//! longest matching prefix of one field, where first-match over five fields needs
//! every matching rule of each; compressed bitmaps (`roaring`) and dense bit sets
//! (`fixedbitset`) allocate or walk every word on intersection, where the aggregate
//! skips the empty ones without allocating on the packet path. The classifier is
//! small enough to write here (the core takes no dependency it does not need).

mod classify;
pub mod limit;
pub mod reset;
mod sets;

use super::stats::DropReason;
use crate::wire;
pub use classify::l4_key;
use classify::{Classifier, Ranges};
use firmware_config::host_limits::HostLimits;
use firmware_config::policy::{Action, Policy as Written, Prefix, Protocol, Rule};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The policy of one engine shard: compiled rules and their hit counters.
#[derive(Debug, Clone)]
pub struct Policy {
    written: Written,
    v4: Classifier<u32>,
    v6: Classifier<u128>,
    /// Whether anything is ever refused or counted (some rule, or a default other
    /// than allow).
    active: bool,
    hits: Vec<u64>,
    default_hits: u64,
    /// The rule that decided the last `admit4`/`admit6` (`None`: the default, or no
    /// policy), for flow logs.
    decided: Option<u32>,
    /// The per-host rate limits' buckets, while `[host_limits]` sets any (`limit`).
    limits: Option<Box<limit::Limiter>>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(&Written::default())
    }
}

/// Per-rule hit counters (`Request::Policy`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hits {
    /// New sessions each rule decided, by rule number.
    pub rules: Vec<u64>,
    /// New sessions no rule matched (the default decided).
    pub default: u64,
    /// Bytes the compiled policy holds.
    pub memory: usize,
    /// The per-host rate limits' table (`limit::LimitStats`), while limits are set.
    pub limits: Option<limit::LimitStats>,
}

impl Hits {
    /// The box's counters: the shards' summed rule by rule (each shard compiled the
    /// same policy and holds its own copy).
    pub fn merge(parts: impl IntoIterator<Item = Hits>) -> Hits {
        let mut all = Hits::default();
        for part in parts {
            if all.rules.len() < part.rules.len() {
                all.rules.resize(part.rules.len(), 0);
            }
            for (a, b) in all.rules.iter_mut().zip(&part.rules) {
                *a += b;
            }
            all.default += part.default;
            all.memory += part.memory;
            if let Some(part) = part.limits {
                all.limits.get_or_insert_with(Default::default).merge(part);
            }
        }
        all
    }
}

impl Policy {
    /// Compiles `written` (validated: see `firmware_config::policy::check`).
    pub fn new(written: &Written) -> Policy {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (n, rule) in written.rule.iter().enumerate() {
            let n = n as u32;
            if let Some(r) = ranges4(rule) {
                v4.push((n, r));
            }
            if let Some(r) = ranges6(rule) {
                v6.push((n, r));
            }
        }
        Policy {
            active: !written.rule.is_empty() || written.default != Action::Allow,
            v4: Classifier::new(&v4),
            v6: Classifier::new(&v6),
            hits: vec![0; written.rule.len()],
            decided: None,
            default_hits: 0,
            written: written.clone(),
            limits: None,
        }
    }

    /// Enforces `limits` with `old`'s buckets if they enforced the same limits, else
    /// with fresh ones (`limit::Limiter::carried`); none when nothing is limited.
    pub fn limit_hosts(&mut self, old: Option<Box<limit::Limiter>>, limits: &HostLimits) {
        self.limits = limit::Limiter::carried(old, limits);
    }

    /// Takes the host limits' buckets out (for `limit_hosts` of a new policy).
    pub fn take_limiter(&mut self) -> Option<Box<limit::Limiter>> {
        self.limits.take()
    }

    /// Whether inside host `key` (`limit::key4`, `key6`) may send one more packet at
    /// `now` (engine milliseconds); always, with no `packets_per_second` set. Every
    /// packet from an inside host the box forwards asks, so that `open4`/`open6` of
    /// the same packet charge at its time.
    #[inline]
    pub fn host_packet(&mut self, key: u128, now: u64) -> bool {
        match &mut self.limits {
            None => true,
            Some(l) => l.packet(key, now),
        }
    }

    /// `admit4` for a session an inside host opens: allowed by the policy, then
    /// charged to the host's new-session bucket (`HostSessionRate` when empty).
    #[inline]
    pub fn open4(&mut self, src: Ipv4Addr, dst: Ipv4Addr, l4: u32) -> Result<(), DropReason> {
        self.admit4(src, dst, l4)?;
        self.charge_session(limit::key4(src))
    }

    /// `open4` for an IPv6 filter state.
    #[inline]
    pub fn open6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr, l4: u32) -> Result<(), DropReason> {
        self.admit6(src, dst, l4)?;
        self.charge_session(limit::key6(src))
    }

    /// A session `open4`/`open6` let through for inside `src` was not made (no port,
    /// a full table): its token goes back (`Limiter::refund_session`).
    #[inline]
    pub fn not_made(&mut self, src: IpAddr) {
        if let Some(l) = &mut self.limits {
            l.refund_session(match src {
                IpAddr::V4(a) => limit::key4(a),
                IpAddr::V6(a) => limit::key6(&a),
            });
        }
    }

    #[inline]
    fn charge_session(&mut self, key: u128) -> Result<(), DropReason> {
        let refused = self.limits.as_mut().is_some_and(|l| !l.session(key));
        if refused {
            return Err(DropReason::HostSessionRate);
        }
        Ok(())
    }

    /// The policy as configured.
    pub fn written(&self) -> &Written {
        &self.written
    }

    /// `written` compiled, with the hit counters of the rules this policy has at the
    /// same place (and of the default, if the same); `self` itself if nothing changed.
    pub fn replaced_by(self, written: &Written) -> Policy {
        if self.written == *written {
            return self;
        }
        let mut new = Policy::new(written);
        new.carry_hits(&self);
        new
    }

    /// Takes the counters of `old`'s rules that `self` has unchanged at the same place.
    pub fn carry_hits(&mut self, old: &Policy) {
        for (i, hits) in self.hits.iter_mut().enumerate() {
            if old.written.rule.get(i) == self.written.rule.get(i) {
                *hits = old.hits.get(i).copied().unwrap_or(0);
            }
        }
        if old.written.default == self.written.default {
            self.default_hits = old.default_hits;
        }
    }

    /// The decision for a new IPv4 session from inside `src` to `dst` with transport
    /// key `l4` (`l4_key`), counted.
    #[inline]
    pub fn admit4(&mut self, src: Ipv4Addr, dst: Ipv4Addr, l4: u32) -> Result<(), DropReason> {
        if !self.active {
            self.decided = None;
            return Ok(());
        }
        let rule = self.v4.lookup(src.to_bits(), dst.to_bits(), l4);
        self.count(rule)
    }

    /// `admit4` for IPv6.
    #[inline]
    pub fn admit6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr, l4: u32) -> Result<(), DropReason> {
        if !self.active {
            self.decided = None;
            return Ok(());
        }
        let rule = self.v6.lookup(src.to_bits(), dst.to_bits(), l4);
        self.count(rule)
    }

    /// What the policy does with an IPv4 session (not counted: for re-evaluation).
    pub fn decide4(&self, src: Ipv4Addr, dst: Ipv4Addr, l4: u32) -> Action {
        if !self.active {
            return Action::Allow;
        }
        self.action(self.v4.lookup(src.to_bits(), dst.to_bits(), l4))
    }

    /// `decide4` for IPv6.
    pub fn decide6(&self, src: &Ipv6Addr, dst: &Ipv6Addr, l4: u32) -> Action {
        if !self.active {
            return Action::Allow;
        }
        self.action(self.v6.lookup(src.to_bits(), dst.to_bits(), l4))
    }

    /// Whether the policy can refuse anything (else existing sessions need no
    /// re-evaluation).
    pub fn refuses_anything(&self) -> bool {
        self.written.default != Action::Allow
            || self.written.rule.iter().any(|r| r.action != Action::Allow)
    }

    fn action(&self, rule: Option<u32>) -> Action {
        rule.and_then(|n| self.written.rule.get(n as usize))
            .map_or(self.written.default, |r| r.action)
    }

    /// The rule that decided the last `admit4` or `admit6`, if a rule did.
    pub fn decided(&self) -> Option<u32> {
        self.decided
    }

    fn count(&mut self, rule: Option<u32>) -> Result<(), DropReason> {
        self.decided = rule;
        let slot = rule.and_then(|n| self.hits.get_mut(n as usize));
        match slot {
            Some(hits) => *hits += 1,
            None => self.default_hits += 1,
        }
        match self.action(rule) {
            Action::Allow => Ok(()),
            Action::Deny => Err(DropReason::PolicyDeny),
            Action::Reject => Err(DropReason::PolicyReject),
        }
    }

    /// The hit counters, and the compiled policy's size.
    pub fn hits(&self) -> Hits {
        Hits {
            rules: self.hits.clone(),
            default: self.default_hits,
            memory: self.memory(),
            limits: self.limits.as_ref().map(|l| l.stats()),
        }
    }

    pub fn clear_hits(&mut self) {
        self.hits.iter_mut().for_each(|h| *h = 0);
        self.default_hits = 0;
    }

    /// Bytes the compiled rules hold.
    pub fn memory(&self) -> usize {
        self.v4.memory()
            + self.v6.memory()
            + self.hits.capacity() * 8
            + self.limits.as_ref().map_or(0, |_| limit::Limiter::memory())
    }
}

/// The transport key of a session or state of protocol `proto` with the remote port
/// `remote_port`: ICMP sessions and ICMPv6 states are echo requests' (type 8 and 128;
/// the only ICMP queries that open a NAT44 session, and the ICMPv6 ones that leave a
/// network in practice), TCP and UDP match by their remote port.
pub fn session_key(proto: u8, remote_port: u16) -> u32 {
    match proto {
        wire::proto::ICMP => l4_key(proto, u16::from(wire::icmpv4::ECHO_REQUEST)),
        wire::proto::ICMPV6 => l4_key(proto, u16::from(wire::icmpv6::ECHO_REQUEST)),
        _ => l4_key(proto, remote_port),
    }
}

/// The transport key range of `rule` (`l4_key`).
fn l4_range(rule: &Rule) -> Option<(u32, u32)> {
    let Some(proto) = rule.protocol.number() else {
        return Some((0, u32::MAX));
    };
    let (first, last) = match (rule.port, rule.icmp_type) {
        (Some(p), _) if rule.protocol == Protocol::Tcp || rule.protocol == Protocol::Udp => {
            (p.first, p.last)
        }
        (_, Some(t)) if rule.protocol == Protocol::Icmp || rule.protocol == Protocol::Icmpv6 => {
            (u16::from(t), u16::from(t))
        }
        _ => (0, u16::MAX),
    };
    (first <= last).then(|| (l4_key(proto, first), l4_key(proto, last)))
}

/// A prefix as a range of IPv4 addresses: `None` if it is IPv6 (the rule is not an
/// IPv4 rule); no prefix is every address.
fn range4(prefix: Option<Prefix>) -> Option<(u32, u32)> {
    match prefix {
        None => Some((0, u32::MAX)),
        Some(Prefix(IpNet::V4(n))) => Some((n.network().to_bits(), n.broadcast().to_bits())),
        Some(Prefix(IpNet::V6(_))) => None,
    }
}

fn range6(prefix: Option<Prefix>) -> Option<(u128, u128)> {
    match prefix {
        None => Some((0, u128::MAX)),
        Some(Prefix(IpNet::V6(n))) => Some((n.network().to_bits(), n.broadcast().to_bits())),
        Some(Prefix(IpNet::V4(_))) => None,
    }
}

/// What `rule` matches of IPv4, if anything.
fn ranges4(rule: &Rule) -> Option<Ranges<u32>> {
    if rule.protocol == Protocol::Icmpv6 {
        return None;
    }
    Some(Ranges {
        src: range4(rule.source)?,
        dst: range4(rule.destination)?,
        l4: l4_range(rule)?,
    })
}

/// What `rule` matches of IPv6, if anything.
fn ranges6(rule: &Rule) -> Option<Ranges<u128>> {
    if rule.protocol == Protocol::Icmp {
        return None;
    }
    Some(Ranges {
        src: range6(rule.source)?,
        dst: range6(rule.destination)?,
        l4: l4_range(rule)?,
    })
}

#[cfg(test)]
mod tests;
