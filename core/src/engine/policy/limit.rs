//! Per-inside-host rate limits (`[host_limits]`, `firmware_config::host_limits`): a
//! token bucket for new sessions and one for packets, per inside address, so one
//! host's scan or flood cannot starve the others.
//!
//! Contract:
//! - `packet` is asked for every packet from an inside host that the box forwards
//!   (IPv4 before translation, hairpinned or routed to another inside port included;
//!   IPv6 routed out or to another inside port), after the source checks and before
//!   anything else; refused, the packet is `host_packet_rate`. `session` is asked when
//!   an inside host's packet would open a NAT44 session or an IPv6 filter state, after
//!   the egress policy allowed it (`Policy::open4`/`open6`); refused, it is
//!   `host_session_rate`. Established sessions never reach `session`; sessions an
//!   outsider opens on a mapping are not charged to the inside host.
//! - A bucket holds at most `burst` tokens and gains `rate` a second, counted in
//!   thousandths of a token from the engine's millisecond clock (`Engine::process`'s
//!   `now`), so refill is exact to the millisecond in integer arithmetic: level =
//!   min(cap, level + elapsed_ms × rate). A refusal takes nothing, and a session the
//!   box then fails to make (no port, a full table) gives its token back
//!   (`refund_session`). A clock that steps back refills nothing.
//! - O(1) per packet and bounded memory: the buckets live in a fixed table of
//!   [`ENTRIES`] entries (40 bytes each, about 320 KiB a shard, allocated only while
//!   a limit is set), [`WAYS`]-way set associative, indexed by a keyed hash
//!   (`flow::index::Hasher`, seeded per engine, so inside hosts cannot aim at one
//!   set). A key is the host's address: an IPv4 address as its IPv4-mapped IPv6
//!   address, an IPv6 address whole (/128: the hosts of one link share a /64, so a
//!   /64 key would limit the whole LAN as one host; a host that hops addresses gets a
//!   bucket per address, and the per-host session quota and the state table still
//!   bound it).
//! - A host with no entry starts with full buckets. An entry whose buckets have
//!   refilled to full holds nothing a fresh one would not, so it is free for another
//!   host. When all four ways of a set are busy, the least recently seen is replaced
//!   (counted, `evictions`): its host starts again with full buckets. Collisions and
//!   overflow can therefore only let a host send more, never hold one host to another
//!   host's bucket.
//! - Shards: steering puts every packet from an inside source, IPv4 and IPv6, on the
//!   worker its address hashes to (`appliance/src/dataplane/steering`), so each host's
//!   buckets live on one shard and the limits are exact per host with any number of
//!   workers.
//! - A commit that changes `[host_limits]` starts every bucket afresh (full); one that
//!   leaves them alone keeps the buckets (`Limiter::carried`).
//!
//! Crates weighed: `governor` (GCRA) keys its keyed limiters with a `DashMap` that
//! grows with the keys and needs its clock, `leaky-bucket` is async; a bounded table of
//! plain integers is what the packet path needs and is a few lines here.

use crate::engine::flow::index::Hasher;
use firmware_config::host_limits::{Bucket, HostLimits};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Entries in one shard's table.
pub const ENTRIES: usize = 8192;
/// Entries a host's key can land in.
pub const WAYS: usize = 4;
const SETS: usize = ENTRIES / WAYS;
/// Thousandths of a token in one token.
const MILLI: u64 = 1000;
/// Most hosts `top` lists.
pub const TOP: usize = 10;

/// One bucket's parameters in thousandths: gains `rate` a millisecond, holds `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rate {
    rate: u64,
    cap: u64,
}

impl Rate {
    fn new(b: Bucket) -> Rate {
        Rate {
            rate: u64::from(b.rate),
            cap: u64::from(b.burst) * MILLI,
        }
    }

    /// `level` after `elapsed` milliseconds.
    #[inline]
    fn refill(self, level: u64, elapsed: u64) -> u64 {
        level
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(self.cap)
    }
}

/// Takes one token from `level` if it holds one.
#[inline]
fn take(level: &mut u64) -> bool {
    if *level >= MILLI {
        *level -= MILLI;
        true
    } else {
        false
    }
}

/// One host's buckets. `key == 0` (the unspecified address, never an inside
/// source) is an empty entry.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    key: [u64; 2],
    /// When the levels were last brought up to date, in engine milliseconds.
    at: u64,
    sessions: u64,
    packets: u64,
    /// Packets and sessions refused since the entry was made.
    limited: u64,
}

/// The buckets of one shard.
#[derive(Debug, Clone)]
pub struct Limiter {
    written: HostLimits,
    sessions: Option<Rate>,
    packets: Option<Rate>,
    table: Box<[Entry]>,
    hasher: Hasher,
    /// The engine time of the last packet asked about.
    now: u64,
    /// The entry of the last packet asked about (`session` of the same packet finds
    /// it without hashing again).
    last: usize,
    evictions: u64,
}

/// What `show policy` tells of one shard's limiter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitStats {
    /// Entries whose buckets are not full (hosts limited or sending lately).
    pub busy: usize,
    /// Entries replaced while busy.
    pub evictions: u64,
    /// The hosts in the table refused most, most first (at most `TOP`).
    pub top: Vec<(IpAddr, u64)>,
}

impl LimitStats {
    /// The box's: busy and evictions added up, the top hosts of every shard merged.
    pub fn merge(&mut self, other: LimitStats) {
        self.busy += other.busy;
        self.evictions += other.evictions;
        self.top.extend(other.top);
        self.top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        self.top.truncate(TOP);
    }
}

/// The key of an IPv4 host: its IPv4-mapped address.
#[inline]
pub fn key4(addr: Ipv4Addr) -> u128 {
    0xffff << 32 | u128::from(addr.to_bits())
}

/// The key of an IPv6 host.
#[inline]
pub fn key6(addr: &Ipv6Addr) -> u128 {
    addr.to_bits()
}

fn words(key: u128) -> [u64; 2] {
    [(key >> 64) as u64, key as u64]
}

impl Limiter {
    /// Buckets for `written`, or `None` if it limits nothing.
    pub fn new(written: &HostLimits) -> Option<Box<Limiter>> {
        written.any().then(|| {
            Box::new(Limiter {
                written: *written,
                sessions: written.sessions().map(Rate::new),
                packets: written.packets().map(Rate::new),
                table: vec![Entry::default(); ENTRIES].into_boxed_slice(),
                hasher: Hasher::default(),
                now: 0,
                last: 0,
                evictions: 0,
            })
        })
    }

    /// `old` if it enforces `written` already (its buckets kept), else `new(written)`.
    pub fn carried(old: Option<Box<Limiter>>, written: &HostLimits) -> Option<Box<Limiter>> {
        match old {
            Some(old) if old.written == *written => Some(old),
            _ => Limiter::new(written),
        }
    }

    /// The limits enforced.
    pub fn written(&self) -> &HostLimits {
        &self.written
    }

    /// Bytes the table holds.
    pub fn memory() -> usize {
        ENTRIES * std::mem::size_of::<Entry>()
    }

    /// Whether host `key` may send one more packet at `now` (engine milliseconds);
    /// also the time `session` charges at.
    #[inline]
    pub fn packet(&mut self, key: u128, now: u64) -> bool {
        self.now = now;
        if self.packets.is_none() {
            return true;
        }
        let i = self.entry(key);
        self.last = i;
        let e = &mut self.table[i];
        let ok = take(&mut e.packets);
        if !ok {
            e.limited += 1;
        }
        ok
    }

    /// Whether host `key` may open one more session, at the time of the last `packet`.
    #[inline]
    pub fn session(&mut self, key: u128) -> bool {
        if self.sessions.is_none() {
            return true;
        }
        let i = if self.table[self.last].key == words(key) {
            self.refresh(self.last);
            self.last
        } else {
            self.entry(key)
        };
        self.last = i;
        let e = &mut self.table[i];
        let ok = take(&mut e.sessions);
        if !ok {
            e.limited += 1;
        }
        ok
    }

    /// Gives back the token `session` just took from host `key`: the session was not
    /// made after all (no port, a full table), and a host should not lose its rate to
    /// what the box could not give it.
    #[inline]
    pub fn refund_session(&mut self, key: u128) {
        let Some(rate) = self.sessions else {
            return;
        };
        let e = &mut self.table[self.last];
        if e.key == words(key) {
            e.sessions = (e.sessions + MILLI).min(rate.cap);
        }
    }

    /// The entry of `key`, brought up to date, made if it has none.
    #[inline]
    fn entry(&mut self, key: u128) -> usize {
        let k = words(key);
        let set = (self.hasher.hash(&k) as usize % SETS) * WAYS;
        if let Some(i) = (set..set + WAYS).find(|&i| self.table[i].key == k) {
            self.refresh(i);
            return i;
        }
        // A free way (empty, or its buckets full again), else the least recently seen.
        let mut victim = set;
        for i in set..set + WAYS {
            if self.table[i].key == [0, 0] || self.is_full(i) {
                victim = i;
                break;
            }
            if self.table[i].at < self.table[victim].at {
                victim = i;
            }
        }
        if self.table[victim].key != [0, 0] && !self.is_full(victim) {
            self.evictions += 1;
        }
        self.table[victim] = Entry {
            key: k,
            at: self.now,
            sessions: self.sessions.map_or(0, |r| r.cap),
            packets: self.packets.map_or(0, |r| r.cap),
            limited: 0,
        };
        victim
    }

    /// Brings entry `i`'s levels up to `now`.
    #[inline]
    fn refresh(&mut self, i: usize) {
        let now = self.now;
        let e = &mut self.table[i];
        let elapsed = now.saturating_sub(e.at);
        if elapsed == 0 {
            return;
        }
        e.at = now;
        if let Some(r) = self.sessions {
            e.sessions = r.refill(e.sessions, elapsed);
        }
        if let Some(r) = self.packets {
            e.packets = r.refill(e.packets, elapsed);
        }
    }

    /// Whether entry `i`'s buckets would be full at `now` (it holds nothing a fresh
    /// entry would not).
    fn is_full(&self, i: usize) -> bool {
        let e = &self.table[i];
        let elapsed = self.now.saturating_sub(e.at);
        let full =
            |r: Option<Rate>, level| r.is_none_or(|r: Rate| r.refill(level, elapsed) == r.cap);
        full(self.sessions, e.sessions) && full(self.packets, e.packets)
    }

    /// Busy entries, evictions and the hosts refused most (a walk of the table: for
    /// `show policy`, not the packet path).
    pub fn stats(&self) -> LimitStats {
        let mut top: Vec<(IpAddr, u64)> = Vec::new();
        let mut busy = 0;
        for (i, e) in self.table.iter().enumerate() {
            if e.key == [0, 0] || self.is_full(i) {
                continue;
            }
            busy += 1;
            if e.limited > 0 {
                let key = u128::from(e.key[0]) << 64 | u128::from(e.key[1]);
                let v6 = Ipv6Addr::from_bits(key);
                let addr = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
                top.push((addr, e.limited));
            }
        }
        let mut stats = LimitStats {
            busy,
            evictions: self.evictions,
            top: Vec::new(),
        };
        stats.merge(LimitStats {
            top,
            ..LimitStats::default()
        });
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(sessions: Option<(u32, u32)>, packets: Option<(u32, u32)>) -> HostLimits {
        HostLimits {
            new_sessions_per_second: sessions.map(|s| s.0),
            new_sessions_burst: sessions.map(|s| s.1),
            packets_per_second: packets.map(|p| p.0),
            packets_burst: packets.map(|p| p.1),
        }
    }

    const A: u128 = 0xffff_0a0a_0002;
    const B: u128 = 0xffff_0a0a_0003;

    #[test]
    fn no_limit_is_no_limiter() {
        assert!(Limiter::new(&HostLimits::default()).is_none());
    }

    #[test]
    fn burst_then_rate_per_millisecond() {
        let mut l = Limiter::new(&limits(None, Some((1000, 10)))).expect("limited");
        let sent = (0..50).filter(|_| l.packet(A, 5_000)).count();
        assert_eq!(sent, 10, "the burst, at one instant");
        // 1000 a second is one a millisecond.
        assert!(l.packet(A, 5_001));
        assert!(!l.packet(A, 5_001));
        assert_eq!((0..50).filter(|_| l.packet(A, 5_004)).count(), 3);
        // Another host has its own bucket.
        assert_eq!((0..50).filter(|_| l.packet(B, 5_004)).count(), 10);
        // A clock that steps back refills nothing.
        assert!(!l.packet(A, 4_000));
    }

    #[test]
    fn sessions_charge_at_the_packets_time_and_sub_token_rates_accumulate() {
        let mut l = Limiter::new(&limits(Some((2, 2)), None)).expect("limited");
        assert!(l.packet(A, 0) && l.session(A) && l.session(A));
        assert!(!l.session(A), "burst of 2 spent");
        l.packet(A, 499);
        assert!(!l.session(A), "0.998 of a token after 499 ms");
        l.packet(A, 500);
        assert!(l.session(A), "one token after 500 ms at 2 a second");
        assert!(!l.session(A));
        l.packet(B, 500);
        assert!(l.session(B), "B has its own bucket");
        assert!(!l.session(A), "A found again by hash, still empty");
    }

    #[test]
    fn a_full_set_evicts_the_least_recent_and_counts_only_busy_victims() {
        let mut l = Limiter::new(&limits(None, Some((1, 1)))).expect("limited");
        // Find WAYS + 1 keys of one set.
        let set = |l: &Limiter, k: u128| l.hasher.hash(&words(k)) as usize % SETS;
        let target = set(&l, A);
        let keys: Vec<u128> = (0..1u128 << 20)
            .map(|n| 0xffff_0000_0000 | n)
            .filter(|&k| set(&l, k) == target)
            .take(WAYS + 1)
            .collect();
        for (t, &k) in keys.iter().take(WAYS).enumerate() {
            assert!(l.packet(k, t as u64));
        }
        assert_eq!(l.stats().busy, WAYS);
        // The fifth host evicts the first (least recently seen); it starts full.
        assert!(l.packet(keys[WAYS], 10));
        assert_eq!(l.stats().evictions, 1);
        assert!(
            l.packet(keys[0], 11),
            "evicted: starts again with a full bucket"
        );
        // Refilled entries are free: no eviction after a second.
        let before = l.stats().evictions;
        assert!(l.packet(keys[1], 5_000));
        assert!(l.packet(0xffff_0000_0000 | (1 << 21), 5_000));
        assert_eq!(l.stats().evictions, before);
    }

    #[test]
    fn stats_name_the_hosts_refused_most() {
        let mut l = Limiter::new(&limits(None, Some((1, 1)))).expect("limited");
        let a: Ipv4Addr = "10.10.0.2".parse().expect("addr");
        let v6: Ipv6Addr = "2001:db8::2".parse().expect("addr");
        for _ in 0..5 {
            l.packet(key4(a), 0);
        }
        for _ in 0..3 {
            l.packet(key6(&v6), 0);
        }
        let s = l.stats();
        assert_eq!(s.top, vec![(IpAddr::V4(a), 4), (IpAddr::V6(v6), 2)]);
        assert_eq!(s.busy, 2);
    }

    #[test]
    fn carried_keeps_buckets_only_for_the_same_limits() {
        let w = limits(Some((5, 5)), None);
        let mut l = Limiter::new(&w).expect("limited");
        l.packet(A, 0);
        (0..5).for_each(|_| assert!(l.session(A)));
        let mut kept = Limiter::carried(Some(l), &w).expect("kept");
        kept.packet(A, 0);
        assert!(!kept.session(A), "same limits: the spent bucket is kept");
        let mut fresh = Limiter::carried(Some(kept), &limits(Some((5, 6)), None)).expect("new");
        fresh.packet(A, 0);
        assert!(fresh.session(A), "changed limits: buckets start full");
        assert!(Limiter::carried(Some(fresh), &HostLimits::default()).is_none());
    }

    proptest! {
        /// Over any run of packets at non-decreasing times, a host gets at most
        /// burst + rate × elapsed / 1000 through, and a host sending no faster than
        /// the rate (one packet per 1000/rate ms) is never refused.
        #[test]
        fn never_more_than_burst_plus_rate(
            rate in 1u32..5_000,
            burst_extra in 0u32..100,
            gaps in proptest::collection::vec(0u64..50, 1..400),
        ) {
            let burst = rate.div_ceil(10).max(1) + burst_extra;
            let mut l = Limiter::new(&limits(None, Some((rate, burst)))).expect("limited");
            let mut now = 1_000u64;
            let start = now;
            let mut passed = 0u64;
            for g in gaps {
                now += g;
                if l.packet(A, now) {
                    passed += 1;
                }
            }
            let bound = u64::from(burst) + u64::from(rate) * (now - start) / 1000;
            prop_assert!(passed <= bound, "{passed} > {bound}");
        }

        #[test]
        fn a_host_within_its_rate_is_never_refused(rate in 1u32..1_000, n in 1usize..300) {
            let mut l = Limiter::new(&limits(None, Some((rate, rate.div_ceil(10).max(1)))))
                .expect("limited");
            let gap = 1000u64.div_ceil(u64::from(rate));
            for i in 0..n {
                prop_assert!(l.packet(A, 1_000 + i as u64 * gap));
            }
        }
    }
}
