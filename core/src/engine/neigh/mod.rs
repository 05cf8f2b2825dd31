//! Neighbour caches for ARP (RFC 826) and NDP (RFC 4861 section 7): IP address to MAC
//! address, per port, with a short queue of packets waiting for each resolution.
//!
//! Entries are keyed by (port, address): a link-local address may exist on both links.
//! Their states are those of RFC 4861 section 7.3.2, for ARP as for NDP, on the
//! engine's clock (the constants of RFC 4861 section 10; `ReachableTime` is not
//! randomised: the engine has no randomness, and a box that synchronises with nobody
//! gains nothing from it):
//! - INCOMPLETE: a packet for an unknown next hop created it; packets wait (at most
//!   `QUEUE_PER_NEIGHBOUR` each, `MAX_PARKED` in all, so the queues cannot take the
//!   whole buffer pool) while a broadcast ARP request / multicast NS is sent every
//!   `RETRANS_MS`, `MAX_MULTICAST_SOLICIT` times; then the entry and its packets are
//!   dropped (counted).
//! - REACHABLE: confirmed by a solicited answer; used without question for
//!   `REACHABLE_MS`, then STALE.
//! - STALE: a MAC that is still used but not known to work: learnt from the
//!   neighbour's own announcement, or confirmed too long ago. The first use makes it
//!   DELAY.
//! - DELAY: in use; if nothing confirms it within `DELAY_FIRST_PROBE_MS` it becomes
//!   PROBE.
//! - PROBE: unicast requests to the cached MAC every `RETRANS_MS`,
//!   `MAX_UNICAST_SOLICIT` times; a solicited answer makes it REACHABLE, silence
//!   deletes it.
//!
//! What may update an entry (the caller checks the rest, see the engine's `arp_in` and
//! `ndp_in`: only messages from the port that is on-link for the address, i.e. its
//! prefix, or fe80::/10 for NDP, reach the cache; others are dropped as
//! `neighbour_off_link`):
//! - A Neighbor Advertisement follows RFC 4861 section 7.2.5: it never creates an
//!   entry; without the Override flag it does not replace a cached MAC (a REACHABLE
//!   entry becomes STALE instead); with it, a different MAC replaces the cached one;
//!   the entry is REACHABLE only if the Solicited flag is set, otherwise a changed MAC
//!   leaves it STALE. So an unsolicited NA (S=0, O=1) can redirect an entry, as the
//!   RFC requires, but only to STALE: the next use probes the new MAC by unicast before
//!   trusting it as REACHABLE.
//! - A Neighbor Solicitation with a Source Link-Layer Address option, addressed to us,
//!   creates or updates the sender's entry as STALE (RFC 4861 section 7.2.3).
//! - ARP: the RFC 826 merge rule (any ARP from an on-link sender updates an existing
//!   entry; one whose target is ours may create it). A gratuitous ARP (RFC 5227 section
//!   3: an announcement, sender = target) therefore updates an existing entry, as RFC
//!   5227 intends, but as an unsolicited NA does: a changed MAC leaves the entry STALE.
//!   Only an ARP reply sent to our MAC counts as solicited (REACHABLE).
//! - Entries created by an announcement start STALE: a binding nobody asked for is
//!   used, but verified on use.
//!
//! The table holds `MAX_ENTRIES` per family; a new entry in a full table evicts the
//! least recently used one (its waiting packets are dropped, counted), so neither a
//! flood of next hops nor of announcements can lock neighbours out. Use is recorded by
//! `resolve` and by every update.

use super::buffers::BufId;
use super::flow::list::{Linked, Links, List};
use super::port::PortId;
use super::stats::DropReason;
use crate::wire::ethernet::Mac;
use slab::Slab;
use std::collections::HashMap;
use std::hash::Hash;

/// Packets parked per unresolved neighbour.
pub const QUEUE_PER_NEIGHBOUR: usize = 4;
/// Packets parked per address family, over all neighbours (a quarter of the engine's
/// buffer pool: both families together leave half of it to fragments, the box's
/// services and its own requests).
pub const MAX_PARKED: usize = 128;
/// Entries per address family.
pub const MAX_ENTRIES: usize = 4096;
/// RFC 4861 section 10 constants.
const RETRANS_MS: u64 = 1000;
const MAX_MULTICAST_SOLICIT: u8 = 3;
const MAX_UNICAST_SOLICIT: u8 = 3;
const REACHABLE_MS: u64 = 30_000;
const DELAY_FIRST_PROBE_MS: u64 = 5_000;

/// Packets waiting for one neighbour.
pub type Queue = heapless::Vec<BufId, QUEUE_PER_NEIGHBOUR>;

/// Reachability state (RFC 4861 section 7.3.2), with its timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Incomplete { probes: u8, next: u64 },
    Reachable { until: u64 },
    Stale,
    Delay { until: u64 },
    Probe { probes: u8, next: u64 },
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Incomplete { .. } => "incomplete",
            State::Reachable { .. } => "reachable",
            State::Stale => "stale",
            State::Delay { .. } => "delay",
            State::Probe { .. } => "probe",
        }
    }
}

#[derive(Debug)]
struct Entry<A> {
    port: PortId,
    addr: A,
    /// `None` only while INCOMPLETE.
    mac: Option<Mac>,
    state: State,
    /// When the MAC was last learnt or confirmed.
    confirmed: u64,
    /// When the entry last moved to the back of the LRU list.
    used: u64,
    queue: Queue,
    lru: Links,
}

impl<A> Linked<0> for Entry<A> {
    fn links(&mut self) -> &mut Links {
        &mut self.lru
    }
}

/// What the caller does with a packet for a next hop.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolve {
    /// Send it to this MAC.
    Known(Mac),
    /// Park it with `park`; if `probe`, send a request now.
    Unknown { probe: bool },
}

/// What a received ARP or NDP message says about a neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The link-layer address it carries, if any.
    pub mac: Option<Mac>,
    /// An answer to a request of ours (NA Solicited flag; an ARP reply to our MAC).
    pub solicited: bool,
    /// It may replace a cached MAC (NA Override flag; always for ARP and NS).
    pub overrides: bool,
    /// It may create an entry (it was addressed to us and is not an NA).
    pub create: bool,
}

impl Claim {
    /// The sender's own announcement of its MAC: an NS with a Source Link-Layer
    /// Address option, an ARP request or gratuitous ARP.
    pub fn announcement(mac: Mac, create: bool) -> Claim {
        Claim {
            mac: Some(mac),
            solicited: false,
            overrides: true,
            create,
        }
    }
}

/// Events from `poll`.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<A> {
    /// Send a request for this address on this port: broadcast/multicast, or unicast
    /// to the cached MAC (RFC 4861 section 7.3.3 PROBE).
    Probe(PortId, A, Option<Mac>),
    /// The neighbour never answered: these parked packets are dropped.
    Failed(BufId),
}

/// A neighbour as the shell shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourInfo<A> {
    pub addr: A,
    pub port: PortId,
    pub mac: Option<Mac>,
    /// RFC 4861 state name.
    pub state: &'static str,
    /// Milliseconds since the MAC was learnt or confirmed.
    pub age_ms: u64,
    pub queued: usize,
}

/// One address family's cache.
#[derive(Debug)]
pub struct Cache<A> {
    entries: Slab<Entry<A>>,
    index: HashMap<(PortId, A), u32, ahash::RandomState>,
    /// Least recently used first.
    lru: List,
    /// Packets parked over all entries.
    parked: usize,
    /// The last REACHABLE entry `resolve` returned: (port, address, MAC, until).
    /// Most packets of a NAT go to one next hop (the gateway), so this skips the hash
    /// lookup for them. Cleared whenever any entry changes and on every `poll`, so a
    /// busy neighbour still moves to the back of the LRU list at least every poll.
    last: Option<(PortId, A, Mac, u64)>,
    /// Entries `poll` deletes (kept to avoid allocating).
    doomed: Vec<u32>,
}

impl<A: Copy + Eq + Hash> Default for Cache<A> {
    fn default() -> Self {
        Cache {
            entries: Slab::with_capacity(MAX_ENTRIES),
            index: HashMap::with_capacity_and_hasher(MAX_ENTRIES, ahash::RandomState::new()),
            lru: List::default(),
            parked: 0,
            last: None,
            doomed: Vec::with_capacity(MAX_ENTRIES),
        }
    }
}

impl<A: Copy + Eq + Hash> Cache<A> {
    /// Looks up `addr` on `port` for a packet about to be sent, creating an incomplete
    /// entry if there is none. The second value holds the packets of an entry evicted
    /// to make room (`Some`, possibly empty, when one was).
    pub fn resolve(&mut self, port: PortId, addr: A, now: u64) -> (Resolve, Option<Queue>) {
        if let Some((p, a, mac, until)) = self.last {
            if a == addr && p == port && now < until {
                return (Resolve::Known(mac), None);
            }
        }
        self.last = None;
        let Some(&i) = self.index.get(&(port, addr)) else {
            let state = State::Incomplete {
                probes: 1,
                next: now + RETRANS_MS,
            };
            let evicted = self.insert(port, addr, None, state, now);
            return (Resolve::Unknown { probe: true }, evicted);
        };
        self.touch(i, now);
        let e = &mut self.entries[i as usize];
        let Some(mac) = e.mac else {
            return (Resolve::Unknown { probe: false }, None);
        };
        match e.state {
            State::Reachable { until } if now < until => {
                self.last = Some((port, addr, mac, until));
            }
            // RFC 4861 section 7.3.3: the first use of a STALE entry starts DELAY.
            State::Reachable { .. } | State::Stale => {
                e.state = State::Delay {
                    until: now + DELAY_FIRST_PROBE_MS,
                };
            }
            _ => {}
        }
        (Resolve::Known(mac), None)
    }

    /// Parks a packet on the incomplete entry for `addr` on `port`. On error the
    /// caller keeps (and frees) the buffer.
    pub fn park(&mut self, port: PortId, addr: A, buf: BufId) -> Result<(), DropReason> {
        if self.parked >= MAX_PARKED {
            return Err(DropReason::NeighbourParkedLimit);
        }
        let e = self
            .index
            .get(&(port, addr))
            .map(|&i| &mut self.entries[i as usize])
            .filter(|e| e.mac.is_none())
            .ok_or(DropReason::NeighbourQueueFull)?;
        e.queue
            .push(buf)
            .map_err(|_| DropReason::NeighbourQueueFull)?;
        self.parked += 1;
        Ok(())
    }

    /// Applies what a received message says about `addr` on `port` (see the module
    /// docs). Returns the packets that were waiting, to be sent now, and (as
    /// `resolve`) those of an entry evicted to make room.
    pub fn learn(
        &mut self,
        port: PortId,
        addr: A,
        claim: Claim,
        now: u64,
    ) -> (Queue, Option<Queue>) {
        self.last = None;
        let Some(&i) = self.index.get(&(port, addr)) else {
            return match claim.mac {
                Some(mac) if claim.create => {
                    let evicted = self.insert(port, addr, Some(mac), State::Stale, now);
                    (Queue::new(), evicted)
                }
                _ => (Queue::new(), None),
            };
        };
        self.touch(i, now);
        let e = &mut self.entries[i as usize];
        let reachable = State::Reachable {
            until: now + REACHABLE_MS,
        };
        let Some(cached) = e.mac else {
            // INCOMPLETE: any MAC completes it.
            let Some(mac) = claim.mac else {
                return (Queue::new(), None);
            };
            e.mac = Some(mac);
            e.state = if claim.solicited {
                reachable
            } else {
                State::Stale
            };
            e.confirmed = now;
            let released = std::mem::take(&mut e.queue);
            self.parked -= released.len();
            return (released, None);
        };
        let changed = claim.mac.is_some_and(|m| m != cached);
        if changed && !claim.overrides {
            if matches!(e.state, State::Reachable { .. }) {
                e.state = State::Stale;
            }
            return (Queue::new(), None);
        }
        if changed {
            e.mac = claim.mac;
            e.confirmed = now;
        }
        if claim.solicited {
            e.state = reachable;
            e.confirmed = now;
        } else if changed {
            e.state = State::Stale;
        }
        (Queue::new(), None)
    }

    /// Runs the state timers: retransmits requests, ages REACHABLE entries to STALE,
    /// starts PROBE after DELAY, and deletes neighbours that never answered.
    pub fn poll(&mut self, now: u64, events: &mut Vec<Event<A>>) {
        self.last = None;
        let mut doomed = std::mem::take(&mut self.doomed);
        for (i, e) in self.entries.iter_mut() {
            let probe = Event::Probe(e.port, e.addr, e.mac);
            match e.state {
                State::Incomplete { probes, next } | State::Probe { probes, next }
                    if now >= next =>
                {
                    let limit = match e.mac {
                        None => MAX_MULTICAST_SOLICIT,
                        Some(_) => MAX_UNICAST_SOLICIT,
                    };
                    if probes >= limit {
                        events.extend(e.queue.iter().map(|&b| Event::Failed(b)));
                        doomed.push(i as u32);
                        continue;
                    }
                    let (probes, next) = (probes + 1, now + RETRANS_MS);
                    e.state = match e.mac {
                        None => State::Incomplete { probes, next },
                        Some(_) => State::Probe { probes, next },
                    };
                    events.push(probe);
                }
                State::Reachable { until } if now >= until => e.state = State::Stale,
                State::Delay { until } if now >= until => {
                    e.state = State::Probe {
                        probes: 1,
                        next: now + RETRANS_MS,
                    };
                    events.push(probe);
                }
                _ => {}
            }
        }
        for i in doomed.drain(..) {
            self.remove(i);
        }
        self.doomed = doomed;
    }

    pub fn list(&self, now: u64) -> Vec<NeighbourInfo<A>> {
        self.entries
            .iter()
            .map(|(_, e)| NeighbourInfo {
                addr: e.addr,
                port: e.port,
                mac: e.mac,
                state: e.state.name(),
                age_ms: if e.mac.is_some() {
                    now.saturating_sub(e.confirmed)
                } else {
                    0
                },
                queued: e.queue.len(),
            })
            .collect()
    }

    /// Forgets every entry on `port` (its link was replaced: the neighbours behind it
    /// may have new MACs), returning their parked packets.
    pub fn forget_port(&mut self, port: PortId) -> Vec<BufId> {
        let ids: Vec<u32> = self
            .entries
            .iter()
            .filter(|(_, e)| e.port == port)
            .map(|(i, _)| i as u32)
            .collect();
        ids.into_iter().flat_map(|i| self.remove(i)).collect()
    }

    /// Adds an entry, evicting the least recently used one if the table is full.
    fn insert(
        &mut self,
        port: PortId,
        addr: A,
        mac: Option<Mac>,
        state: State,
        now: u64,
    ) -> Option<Queue> {
        let evicted = if self.entries.len() >= MAX_ENTRIES {
            self.lru.front().map(|i| self.remove(i))
        } else {
            None
        };
        let i = self.entries.insert(Entry {
            port,
            addr,
            mac,
            state,
            confirmed: now,
            used: now,
            queue: Queue::new(),
            lru: Links::default(),
        }) as u32;
        self.index.insert((port, addr), i);
        self.lru.push_back::<0, _>(&mut self.entries, i);
        evicted
    }

    /// Moves an entry to the back of the LRU list, at most once a millisecond: recency
    /// at that grain is all eviction needs, and a relink for every packet sent doubled
    /// the cost of forwarding one (criterion `udp_established`).
    fn touch(&mut self, i: u32, now: u64) {
        let e = &mut self.entries[i as usize];
        if e.used == now {
            return;
        }
        e.used = now;
        self.lru.unlink::<0, _>(&mut self.entries, i);
        self.lru.push_back::<0, _>(&mut self.entries, i);
    }

    /// Deletes an entry, returning its parked packets.
    fn remove(&mut self, i: u32) -> Queue {
        self.last = None;
        self.lru.unlink::<0, _>(&mut self.entries, i);
        let e = self.entries.remove(i as usize);
        self.index.remove(&(e.port, e.addr));
        self.parked -= e.queue.len();
        e.queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSIDE: PortId = PortId(0);
    const OUTSIDE: PortId = PortId(1);
    use std::net::Ipv4Addr;

    const GW: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const MAC: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const MAC2: Mac = Mac([2, 0, 0, 0, 0, 2]);

    fn buf(n: u16) -> BufId {
        BufId(n)
    }

    /// A solicited answer (NA with S and O, ARP reply to us).
    fn answer(mac: Mac) -> Claim {
        Claim {
            mac: Some(mac),
            solicited: true,
            overrides: true,
            create: false,
        }
    }

    fn state(c: &Cache<Ipv4Addr>, addr: Ipv4Addr) -> &'static str {
        c.list(0)
            .iter()
            .find(|n| n.addr == addr)
            .map_or("none", |n| n.state)
    }

    fn probes(ev: &[Event<Ipv4Addr>]) -> Vec<Option<Mac>> {
        ev.iter()
            .filter_map(|e| match e {
                Event::Probe(_, _, to) => Some(*to),
                Event::Failed(_) => None,
            })
            .collect()
    }

    #[test]
    fn unknown_then_learnt_releases_queue() {
        let mut c = Cache::default();
        assert_eq!(
            c.resolve(OUTSIDE, GW, 0),
            (Resolve::Unknown { probe: true }, None)
        );
        assert_eq!(
            c.resolve(OUTSIDE, GW, 10),
            (Resolve::Unknown { probe: false }, None)
        );
        c.park(OUTSIDE, GW, buf(0)).unwrap();
        let (released, _) = c.learn(OUTSIDE, GW, answer(MAC), 20);
        assert_eq!(released.as_slice(), &[buf(0)]);
        assert_eq!(c.resolve(OUTSIDE, GW, 30).0, Resolve::Known(MAC));
        assert_eq!(state(&c, GW), "reachable");
    }

    #[test]
    fn forget_port_drops_only_that_ports_entries() {
        let mut c = Cache::<Ipv4Addr>::default();
        let inside = Ipv4Addr::new(10, 10, 0, 2);
        c.learn(OUTSIDE, GW, Claim::announcement(MAC, true), 0);
        c.learn(INSIDE, inside, Claim::announcement(MAC, true), 0);
        let other = Ipv4Addr::new(198, 51, 100, 7);
        c.resolve(OUTSIDE, other, 0);
        c.park(OUTSIDE, other, buf(1)).unwrap();
        assert_eq!(c.forget_port(OUTSIDE), vec![buf(1)]);
        assert_eq!(
            c.resolve(OUTSIDE, GW, 1).0,
            Resolve::Unknown { probe: true }
        );
        assert_eq!(c.resolve(INSIDE, inside, 1).0, Resolve::Known(MAC));
    }

    #[test]
    fn queues_are_bounded_per_neighbour_and_in_all() {
        let mut c = Cache::default();
        c.resolve(OUTSIDE, GW, 0);
        for i in 0..QUEUE_PER_NEIGHBOUR as u16 {
            c.park(OUTSIDE, GW, buf(i)).unwrap();
        }
        assert_eq!(
            c.park(OUTSIDE, GW, buf(9)),
            Err(DropReason::NeighbourQueueFull)
        );
        let mut n = QUEUE_PER_NEIGHBOUR;
        'fill: for host in 0..=255u8 {
            let addr = Ipv4Addr::new(10, 0, 0, host);
            c.resolve(INSIDE, addr, 0);
            for _ in 0..QUEUE_PER_NEIGHBOUR {
                match c.park(INSIDE, addr, buf(n as u16)) {
                    Ok(()) => n += 1,
                    Err(reason) => {
                        assert_eq!(reason, DropReason::NeighbourParkedLimit);
                        break 'fill;
                    }
                }
            }
        }
        assert_eq!(n, MAX_PARKED);
    }

    #[test]
    fn rfc4861_7_3_3_incomplete_fails_after_max_multicast_solicit() {
        let mut c = Cache::default();
        c.resolve(OUTSIDE, GW, 0);
        c.park(OUTSIDE, GW, buf(0)).unwrap();
        let mut ev = Vec::new();
        for t in 1..=3 {
            c.poll(t * RETRANS_MS, &mut ev);
        }
        assert_eq!(probes(&ev), vec![None, None], "broadcast retries");
        assert!(ev.contains(&Event::Failed(buf(0))));
        assert!(c.list(0).is_empty());
        assert_eq!(c.parked, 0);
    }

    #[test]
    fn rfc4861_7_2_3_solicitation_creates_stale_only_if_addressed_to_us() {
        let mut c: Cache<Ipv4Addr> = Cache::default();
        c.learn(INSIDE, GW, Claim::announcement(MAC, false), 0);
        assert!(c.list(0).is_empty());
        c.learn(INSIDE, GW, Claim::announcement(MAC, true), 0);
        assert_eq!(state(&c, GW), "stale");
    }

    #[test]
    fn rfc4861_7_3_3_reachable_ages_to_stale_then_delay_probe_and_failure() {
        let mut c = Cache::default();
        c.resolve(OUTSIDE, GW, 0);
        c.learn(OUTSIDE, GW, answer(MAC), 0);
        let mut ev = Vec::new();
        c.poll(REACHABLE_MS - 1, &mut ev);
        assert_eq!(state(&c, GW), "reachable");
        c.poll(REACHABLE_MS, &mut ev);
        assert_eq!(state(&c, GW), "stale");
        assert!(ev.is_empty(), "a stale entry nobody uses is not probed");
        let t = REACHABLE_MS + 10_000;
        assert_eq!(c.resolve(OUTSIDE, GW, t).0, Resolve::Known(MAC));
        assert_eq!(state(&c, GW), "delay");
        c.poll(t + DELAY_FIRST_PROBE_MS - 1, &mut ev);
        assert!(ev.is_empty());
        c.poll(t + DELAY_FIRST_PROBE_MS, &mut ev);
        assert_eq!(state(&c, GW), "probe");
        for i in 1..=3 {
            c.poll(t + DELAY_FIRST_PROBE_MS + i * RETRANS_MS, &mut ev);
        }
        assert_eq!(probes(&ev), vec![Some(MAC); 3], "unicast probes");
        assert!(c.list(0).is_empty(), "deleted after MAX_UNICAST_SOLICIT");
    }

    #[test]
    fn rfc4861_7_3_3_answer_to_probe_makes_reachable() {
        let mut c = Cache::default();
        c.learn(OUTSIDE, GW, Claim::announcement(MAC, true), 0);
        c.resolve(OUTSIDE, GW, 0);
        let mut ev = Vec::new();
        c.poll(DELAY_FIRST_PROBE_MS, &mut ev);
        assert_eq!(probes(&ev), vec![Some(MAC)]);
        c.learn(OUTSIDE, GW, answer(MAC), DELAY_FIRST_PROBE_MS + 5);
        assert_eq!(state(&c, GW), "reachable");
    }

    #[test]
    fn rfc4861_7_2_5_advert_without_override_keeps_the_mac() {
        let mut c = Cache::default();
        c.resolve(OUTSIDE, GW, 0);
        c.learn(OUTSIDE, GW, answer(MAC), 0);
        let no_override = Claim {
            mac: Some(MAC2),
            solicited: true,
            overrides: false,
            create: false,
        };
        c.learn(OUTSIDE, GW, no_override, 1);
        assert_eq!(c.resolve(OUTSIDE, GW, 2).0, Resolve::Known(MAC));
        assert_eq!(
            state(&c, GW),
            "delay",
            "REACHABLE became STALE, used: DELAY"
        );
    }

    #[test]
    fn rfc4861_7_2_5_unsolicited_override_leaves_entry_stale() {
        let mut c = Cache::default();
        c.resolve(OUTSIDE, GW, 0);
        c.learn(OUTSIDE, GW, answer(MAC), 0);
        let unsolicited = Claim {
            mac: Some(MAC2),
            solicited: false,
            overrides: true,
            create: false,
        };
        c.learn(OUTSIDE, GW, unsolicited, 1);
        assert_eq!(state(&c, GW), "stale");
        assert_eq!(c.resolve(OUTSIDE, GW, 2).0, Resolve::Known(MAC2));
        // The same MAC again, unsolicited: no change of state.
        c.learn(OUTSIDE, GW, unsolicited, 3);
        assert_eq!(state(&c, GW), "delay");
    }

    #[test]
    fn rfc4861_7_2_5_advert_never_creates() {
        let mut c: Cache<Ipv4Addr> = Cache::default();
        c.learn(OUTSIDE, GW, answer(MAC), 0);
        assert!(c.list(0).is_empty());
    }

    #[test]
    fn full_cache_evicts_least_recently_used() {
        let mut c = Cache::default();
        let addr = |n: usize| Ipv4Addr::from(0x0a00_0000 + n as u32);
        for n in 0..MAX_ENTRIES {
            assert_eq!(c.resolve(INSIDE, addr(n), 0).1, None);
        }
        c.park(INSIDE, addr(0), buf(7)).unwrap();
        // Entry 0 is used again: entry 1 is now the least recently used.
        c.resolve(INSIDE, addr(0), 1);
        let (r, evicted) = c.resolve(INSIDE, addr(MAX_ENTRIES), 2);
        assert_eq!(r, Resolve::Unknown { probe: true });
        assert_eq!(evicted, Some(Queue::new()));
        let listed = c.list(2);
        assert_eq!(listed.len(), MAX_ENTRIES);
        assert!(listed.iter().all(|n| n.addr != addr(1)));
        // Order now: 2, 0, new, 3.. ; using 3.. leaves 2 then 0 (with its packet) first.
        for n in 3..MAX_ENTRIES {
            c.resolve(INSIDE, addr(n), 4);
        }
        let (_, evicted) = c.resolve(INSIDE, addr(MAX_ENTRIES + 1), 5);
        assert_eq!(evicted, Some(Queue::new()));
        let (_, evicted) = c.resolve(INSIDE, addr(MAX_ENTRIES + 2), 5);
        assert_eq!(evicted.unwrap().as_slice(), &[buf(7)]);
        assert_eq!(c.parked, 0);
    }

    #[test]
    fn link_local_address_on_both_ports_is_two_entries() {
        let mut c = Cache::default();
        c.learn(INSIDE, GW, Claim::announcement(MAC, true), 0);
        c.learn(OUTSIDE, GW, Claim::announcement(MAC2, true), 0);
        assert_eq!(c.resolve(INSIDE, GW, 1).0, Resolve::Known(MAC));
        assert_eq!(c.resolve(OUTSIDE, GW, 1).0, Resolve::Known(MAC2));
    }
}
