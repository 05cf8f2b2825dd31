//! Per-destination SLIs: the destinations inside hosts open the most sessions to, and
//! for each the TCP connection success rate, so "is it us or them" has an answer.
//!
//! Contract:
//! - A destination is a prefix, not an address: IPv4 `/24` and IPv6 `/48`, the longest
//!   prefixes the global routing table carries (a provider's or CDN's nodes behind one
//!   announcement are one destination, and one remote network cannot fill the table
//!   with its addresses). `Dest` holds both in one `u128` (IPv4 as IPv4-mapped IPv6).
//! - Bounded: each engine shard tracks `TOP_K` (32) destinations with the space-saving
//!   algorithm (Metwally, Agrawal, El Abbadi, "Efficient Computation of Frequent and
//!   Top-k Elements in Data Streams", ICDT 2005), ranked by new sessions. A new session
//!   to an untracked destination takes the place of the tracked one with the fewest,
//!   inheriting its count as the entry's `error`. Guarantees, for one shard that saw N
//!   sessions: every destination with more than N/K sessions is tracked; an entry's
//!   `count` over-estimates its sessions by at most `error` <= N/K
//!   (`count - error <= true <= count`). What is not tracked is the `other` bucket:
//!   the totals minus what the tracked entries counted exactly.
//! - Each entry also counts exactly, from the moment it was (last) admitted: new
//!   sessions, TCP attempts (sessions opened by an inside SYN), and their outcome:
//!   `tcp_ok` when the remote's SYN-ACK came within `JUDGE_SECS`, `tcp_failed`
//!   when it did not. An outcome for a destination not tracked at that moment goes to
//!   `other` (only the totals count it).
//! - Merged at scrape (`Summary::merge`, "mergeable summaries", Agarwal et al., PODS
//!   2012): a destination's count is the sum over the shards, a shard whose table is
//!   full and does not track it adding its smallest count (what it could have had) to
//!   both count and error; the top `TOP_K` by count are kept. Merged bounds: `count -
//!   error <= true <= count` and `error <= N/K` for N the box's sessions. Exact
//!   tallies and totals add up, and `other` is the rest.
//!
//! Cost: the tracker is touched when a session is created (a scan of 32 keys), when a
//! TCP open completes, when an attempt is judged failed and when a flow record is
//! made, never per packet of an established session. `Pending` is the bounded queue that judges the attempts that
//! got no answer in time without a timer per session (see there).
//!
//! - Bytes each way are credited to a destination when a flow record takes a
//!   session's account (`engine::sli`), so only while flow logs keep per-session
//!   accounts (`Report::bytes`). Not quite exact since admission: a record made after
//!   its destination was admitted brings the bytes of its whole interval, some of them
//!   perhaps from before. Ranking stays by sessions: a byte-ranked top-K would need
//!   per-packet updates.
//!
//! Crates weighed: `streaming_algorithms` and `pdatastructs` have top-k sketches
//! (count-min based) that allocate per update and hold no per-key side counters; the
//! space-saving table here is 32 fixed entries and a linear scan.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Destinations tracked per shard, and shown after merging.
pub const TOP_K: usize = 32;

/// A TCP attempt succeeds when the SYN-ACK comes this many seconds after the SYN at
/// most (module doc; whole seconds of engine time, see `Pending`).
pub const JUDGE_SECS: u32 = 3;

/// A destination prefix: IPv4 /24 (as IPv4-mapped IPv6) or IPv6 /48.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dest(u128);

const V4_MAPPED: u128 = 0xffff << 32;

impl Dest {
    pub fn v4(addr: u32) -> Dest {
        Dest(V4_MAPPED | u128::from(addr & 0xffff_ff00))
    }

    pub fn v6(addr: Ipv6Addr) -> Dest {
        Dest(addr.to_bits() & !((1u128 << 80) - 1))
    }

    /// The prefix's first address and length.
    pub fn prefix(self) -> (IpAddr, u8) {
        if self.0 >> 32 == 0xffff {
            (IpAddr::V4(Ipv4Addr::from_bits(self.0 as u32)), 24)
        } else {
            (IpAddr::V6(Ipv6Addr::from_bits(self.0)), 48)
        }
    }
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (addr, len) = self.prefix();
        write!(f, "{addr}/{len}")
    }
}

/// Exact counts: of one tracked destination since it was admitted, or totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub sessions: u64,
    /// TCP sessions opened by an inside SYN.
    pub tcp_attempts: u64,
    /// Attempts answered by a SYN-ACK, whenever it came.
    pub tcp_established: u64,
    /// Attempts answered by a SYN-ACK within `JUDGE_SECS`.
    pub tcp_ok: u64,
    /// Attempts not answered within `JUDGE_SECS`.
    pub tcp_failed: u64,
    /// IP bytes to the destination and from it (`engine::sli`).
    pub bytes_out: u64,
    pub bytes_in: u64,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.sessions += o.sessions;
        self.tcp_attempts += o.tcp_attempts;
        self.tcp_established += o.tcp_established;
        self.tcp_ok += o.tcp_ok;
        self.tcp_failed += o.tcp_failed;
        self.bytes_out += o.bytes_out;
        self.bytes_in += o.bytes_in;
    }

    /// The counts by name, for the shell and the metrics.
    pub fn named(&self) -> [(&'static str, u64); 7] {
        [
            ("sessions", self.sessions),
            ("tcp_attempts", self.tcp_attempts),
            ("tcp_established", self.tcp_established),
            ("tcp_ok", self.tcp_ok),
            ("tcp_failed", self.tcp_failed),
            ("bytes_out", self.bytes_out),
            ("bytes_in", self.bytes_in),
        ]
    }

    fn sub(&mut self, o: &Tally) {
        self.sessions = self.sessions.saturating_sub(o.sessions);
        self.tcp_attempts = self.tcp_attempts.saturating_sub(o.tcp_attempts);
        self.tcp_established = self.tcp_established.saturating_sub(o.tcp_established);
        self.tcp_ok = self.tcp_ok.saturating_sub(o.tcp_ok);
        self.tcp_failed = self.tcp_failed.saturating_sub(o.tcp_failed);
        self.bytes_out = self.bytes_out.saturating_sub(o.bytes_out);
        self.bytes_in = self.bytes_in.saturating_sub(o.bytes_in);
    }
}

/// One tracked destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub dest: Dest,
    /// Space-saving estimate of its sessions: at least the true number.
    pub count: u64,
    /// At most this much of `count` belongs to destinations it replaced.
    pub error: u64,
    /// Counted exactly since it was admitted.
    pub tally: Tally,
}

/// One shard's tracker.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    entries: Vec<Entry>,
    total: Tally,
}

/// What `Destinations::outcome` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
}

impl Destinations {
    /// A session to `dest` was created; `tcp_attempt` if an inside SYN opened it.
    pub fn session(&mut self, dest: Dest, tcp_attempt: bool) {
        let attempt = u64::from(tcp_attempt);
        self.total.sessions += 1;
        self.total.tcp_attempts += attempt;
        let at = match self.entries.iter().position(|e| e.dest == dest) {
            Some(at) => at,
            None if self.entries.len() < TOP_K => {
                self.entries.push(Entry {
                    dest,
                    count: 0,
                    error: 0,
                    tally: Tally::default(),
                });
                self.entries.len() - 1
            }
            None => {
                // The table is full (TOP_K entries), so there is a minimum.
                let (at, min) = self
                    .entries
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| e.count)
                    .map_or((0, 0), |(i, e)| (i, e.count));
                self.entries[at] = Entry {
                    dest,
                    count: min,
                    error: min,
                    tally: Tally::default(),
                };
                at
            }
        };
        let e = &mut self.entries[at];
        e.count += 1;
        e.tally.sessions += 1;
        e.tally.tcp_attempts += attempt;
    }

    /// A TCP attempt to `dest` was judged.
    pub fn outcome(&mut self, dest: Dest, outcome: Outcome) {
        self.count(dest, |t| match outcome {
            Outcome::Ok => t.tcp_ok += 1,
            Outcome::Failed => t.tcp_failed += 1,
        });
    }

    /// The remote `dest` answered an attempt with its SYN.
    pub fn established(&mut self, dest: Dest) {
        self.count(dest, |t| t.tcp_established += 1);
    }

    /// An inside SYN reopened a closed session to `dest`: an attempt, not a session.
    pub fn reopened(&mut self, dest: Dest) {
        self.count(dest, |t| t.tcp_attempts += 1);
    }

    /// A session to `dest` carried `[out, in]` bytes since its last record.
    pub fn carried(&mut self, dest: Dest, [out, inward]: [u64; 2]) {
        self.count(dest, |t| {
            t.bytes_out += out;
            t.bytes_in += inward;
        });
    }

    /// Counts in the totals, and in `dest`'s entry if it is tracked.
    fn count(&mut self, dest: Dest, f: impl Fn(&mut Tally)) {
        f(&mut self.total);
        if let Some(e) = self.entries.iter_mut().find(|e| e.dest == dest) {
            f(&mut e.tally);
        }
    }

    /// The tracker as the control plane reads it.
    pub fn summary(&self) -> Summary {
        let mut entries = self.entries.clone();
        sort(&mut entries);
        Summary {
            entries,
            total: self.total,
            full: self.entries.len() == TOP_K,
        }
    }

    /// Forgets everything (`clear stats`).
    pub fn clear(&mut self) {
        *self = Destinations::default();
    }
}

/// A tracker's entries and totals, or several merged (module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Highest count first, then by prefix.
    pub entries: Vec<Entry>,
    pub total: Tally,
    /// Whether the table was full: a destination it does not track may have had up
    /// to its smallest count.
    pub full: bool,
}

impl Summary {
    /// The merged summary of several (module doc), cut at `k` entries.
    pub fn merge(parts: impl IntoIterator<Item = Summary>, k: usize) -> Summary {
        let parts: Vec<Summary> = parts.into_iter().collect();
        let floor = |p: &Summary| {
            if p.full {
                p.entries.iter().map(|e| e.count).min().unwrap_or(0)
            } else {
                0
            }
        };
        let mut all: Vec<Entry> = Vec::new();
        let mut total = Tally::default();
        for p in &parts {
            total.add(&p.total);
            for e in &p.entries {
                if !all.iter().any(|a| a.dest == e.dest) {
                    all.push(Entry {
                        dest: e.dest,
                        count: 0,
                        error: 0,
                        tally: Tally::default(),
                    });
                }
            }
        }
        for a in &mut all {
            for p in &parts {
                match p.entries.iter().find(|e| e.dest == a.dest) {
                    Some(e) => {
                        a.count += e.count;
                        a.error += e.error;
                        a.tally.add(&e.tally);
                    }
                    None => {
                        a.count += floor(p);
                        a.error += floor(p);
                    }
                }
            }
        }
        sort(&mut all);
        let full = all.len() >= k || parts.iter().any(|p| p.full);
        all.truncate(k);
        Summary {
            entries: all,
            total,
            full,
        }
    }

    /// What the entries did not count exactly: the `other` bucket.
    pub fn other(&self) -> Tally {
        let mut rest = self.total;
        for e in &self.entries {
            rest.sub(&e.tally);
        }
        rest
    }
}

/// What a shard (or the box, merged) reports: the destinations, and the
/// gateway-wide counters that come from the same hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// IPv4 destinations (NAT44).
    pub summary: Summary,
    /// IPv6 destinations (the IPv6 filter), a top-K of their own.
    pub v6: Summary,
    /// Sessions that expired while established (`IdleTimeoutCount`).
    pub idle_timeouts: u64,
    /// Attempts not queued for judgment (`Pending` full).
    pub unjudged: u64,
    /// Whether the bytes are counted (flow logs on in some shard).
    pub bytes: bool,
}

impl Report {
    /// Summaries merge family by family (`Summary::merge`, cut at `TOP_K`), counters
    /// add.
    pub fn merge(parts: impl IntoIterator<Item = Report>) -> Report {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let (mut idle_timeouts, mut unjudged, mut bytes) = (0, 0, false);
        for p in parts {
            idle_timeouts += p.idle_timeouts;
            unjudged += p.unjudged;
            bytes |= p.bytes;
            v4.push(p.summary);
            v6.push(p.v6);
        }
        Report {
            summary: Summary::merge(v4, TOP_K),
            v6: Summary::merge(v6, TOP_K),
            idle_timeouts,
            unjudged,
            bytes,
        }
    }
}

/// Highest count first, then by prefix.
fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.count.cmp(&a.count).then(a.dest.cmp(&b.dest)));
}

/// The TCP attempts waiting to be judged: the slab index of each session an inside SYN
/// opened, with its creation second and a tag, in creation order (so the queue is
/// ordered by deadline). Polled once a tick, the front entries whose `JUDGE_SECS`
/// have passed are handed back, and the owner judges the session at that index as
/// failed if it is still the same session (`born` and tag match) and still waiting
/// for its SYN-ACK. The owner judges success itself when the SYN-ACK comes in time;
/// a later SYN-ACK counts nothing (its failure was judged, or is judged right then
/// by draining the due entries first). So each attempt is judged once, at most one
/// tick after its deadline, and no timer is kept per session.
///
/// Times are whole seconds of engine time (`Nat44`'s clock): an attempt answered
/// within 3 s always succeeds, one answered after 4 s or never always fails; between
/// 3 and 4 s it depends on where in their seconds the SYN and SYN-ACK fell.
///
/// Bounded: a full queue does not take the attempt (`unjudged` counts it): it can
/// still succeed, but a failure is not seen. An attempt whose session ends before its
/// deadline (`clear sessions`, a reconfiguration) is not judged either.
#[derive(Debug)]
pub struct Pending {
    queue: VecDeque<Waiting>,
    cap: usize,
    pub unjudged: u64,
}

/// One attempt in `Pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub idx: u32,
    pub born: u32,
    /// Told apart from a later session in the same slot and second.
    pub tag: u32,
}

impl Pending {
    pub fn with_capacity(cap: usize) -> Pending {
        Pending {
            queue: VecDeque::with_capacity(cap),
            cap,
            unjudged: 0,
        }
    }

    pub fn push(&mut self, w: Waiting) {
        if self.queue.len() < self.cap {
            self.queue.push_back(w);
        } else {
            self.unjudged += 1;
        }
    }

    /// The next attempt whose time is up at `now`.
    pub fn due(&mut self, now: u32) -> Option<Waiting> {
        let front = self.queue.front()?;
        if now.saturating_sub(front.born) > JUDGE_SECS {
            self.queue.pop_front()
        } else {
            None
        }
    }

    /// Attempts waiting.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// The bytes it holds.
    pub fn memory(&self) -> usize {
        self.queue.capacity() * std::mem::size_of::<Waiting>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn d(n: u32) -> Dest {
        Dest::v4(n << 8)
    }

    #[test]
    fn prefixes_are_v4_24_and_v6_48() {
        let a = Dest::v4(u32::from(Ipv4Addr::new(192, 0, 2, 77)));
        assert_eq!(a, Dest::v4(u32::from(Ipv4Addr::new(192, 0, 2, 1))));
        assert_eq!(a.to_string(), "192.0.2.0/24");
        let b = Dest::v6("2001:db8:1:2::5".parse().unwrap());
        assert_eq!(b, Dest::v6("2001:db8:1:ffff::1".parse().unwrap()));
        assert_eq!(b.to_string(), "2001:db8:1::/48");
        assert_ne!(Dest::v6("::ffff:192.0.2.1".parse().unwrap()).prefix().1, 24);
    }

    #[test]
    fn outcomes_of_untracked_destinations_go_to_other() {
        let mut t = Destinations::default();
        t.session(d(1), true);
        t.outcome(d(1), Outcome::Ok);
        t.outcome(d(2), Outcome::Failed);
        let s = t.summary();
        assert_eq!(s.entries[0].tally.tcp_ok, 1);
        assert_eq!(s.other().tcp_failed, 1);
        assert_eq!(s.total.tcp_failed + s.total.tcp_ok, 2);
    }

    #[test]
    fn pending_hands_back_attempts_past_their_deadline_in_order() {
        let mut p = Pending::with_capacity(2);
        let w = |idx, born| Waiting { idx, born, tag: 0 };
        p.push(w(1, 10));
        p.push(w(2, 11));
        p.push(w(3, 11));
        assert_eq!(p.unjudged, 1);
        assert_eq!(p.due(13), None);
        assert_eq!(p.due(14), Some(w(1, 10)));
        assert_eq!(p.due(14), None);
        assert_eq!(p.due(15), Some(w(2, 11)));
    }

    /// Streams of destinations drawn with a skew, so some are frequent.
    fn stream() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec((0u32..4, 0u32..200), 1..2000).prop_map(|v| {
            v.into_iter()
                .map(|(k, x)| if k == 0 { x } else { x % 5 })
                .collect()
        })
    }

    fn truth(s: &[u32]) -> HashMap<u32, u64> {
        let mut m = HashMap::new();
        for &x in s {
            *m.entry(x).or_insert(0) += 1;
        }
        m
    }

    proptest! {
        /// Metwally et al. 2005: a destination with more than N/K sessions is tracked,
        /// and every count is within its error of the truth.
        #[test]
        fn space_saving_bounds(s in stream()) {
            let mut t = Destinations::default();
            for &x in &s {
                t.session(d(x), false);
            }
            let n = s.len() as u64;
            let sum = t.summary();
            let truth = truth(&s);
            prop_assert_eq!(sum.entries.iter().map(|e| e.count).sum::<u64>(), n);
            for (x, f) in &truth {
                if *f > n / TOP_K as u64 {
                    prop_assert!(sum.entries.iter().any(|e| e.dest == d(*x)));
                }
            }
            for e in &sum.entries {
                let f = truth.iter().find(|(x, _)| d(**x) == e.dest).map_or(0, |(_, f)| *f);
                prop_assert!(e.count - e.error <= f && f <= e.count);
                prop_assert!(e.error <= n / TOP_K as u64);
                prop_assert!(e.tally.sessions <= f);
            }
            prop_assert_eq!(sum.other().sessions + sum.entries.iter().map(|e| e.tally.sessions).sum::<u64>(), n);
        }

        /// Merged over shards, counts still bound the truth within N/K, and the exact
        /// tallies plus `other` make the totals.
        #[test]
        fn merged_summaries_keep_their_bounds(s in stream(), shards in 1usize..4) {
            let mut t: Vec<Destinations> = (0..shards).map(|_| Destinations::default()).collect();
            for (i, &x) in s.iter().enumerate() {
                t[i % shards].session(d(x), true);
            }
            let m = Summary::merge(t.iter().map(|t| t.summary()), TOP_K);
            let n = s.len() as u64;
            let truth = truth(&s);
            prop_assert!(m.entries.len() <= TOP_K);
            for e in &m.entries {
                let f = truth.iter().find(|(x, _)| d(**x) == e.dest).map_or(0, |(_, f)| *f);
                prop_assert!(e.count - e.error <= f && f <= e.count);
                prop_assert!(e.error <= n / TOP_K as u64);
            }
            prop_assert_eq!(m.total.sessions, n);
            prop_assert_eq!(m.other().tcp_attempts + m.entries.iter().map(|e| e.tally.tcp_attempts).sum::<u64>(), n);
            if shards == 1 {
                prop_assert_eq!(m, t[0].summary());
            }
        }
    }
}
