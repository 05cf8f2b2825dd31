//! Neighbour caches for ARP (RFC 826) and NDP (RFC 4861 section 7): IP address to MAC
//! address, per port, with a short queue of packets waiting for each resolution.
//!
//! Life of an entry: a packet for an unknown next hop creates an `Incomplete` entry,
//! parks the packet (at most `QUEUE_PER_NEIGHBOUR`) and asks the engine to send a
//! request; requests repeat every `RETRANS_MS` up to `MAX_PROBES` times, then the entry
//! and its queue are dropped (counted). An answer makes it `Reachable` and releases the
//! queue. After `REACHABLE_MS` without confirmation the entry is still used, but each
//! use may trigger a refresh probe; if refreshes go unanswered it is removed. Entries
//! are only learnt from packets addressed to us (RFC 826 "merge" rule; RFC 4861
//! section 7.2.3/7.2.5), so a flood of foreign ARP cannot fill the table; the table
//! itself is bounded and refuses new entries when full.

use super::buffers::BufId;
use super::Port;
use crate::wire::ethernet::Mac;
use std::collections::HashMap;
use std::hash::Hash;

/// Packets parked per unresolved neighbour.
pub const QUEUE_PER_NEIGHBOUR: usize = 4;
/// Entries per address family.
pub const MAX_ENTRIES: usize = 4096;
const RETRANS_MS: u64 = 1000;
const MAX_PROBES: u8 = 3;
const REACHABLE_MS: u64 = 300_000;

#[derive(Debug)]
struct Entry {
    port: Port,
    mac: Option<Mac>,
    /// When the MAC was last confirmed.
    confirmed: u64,
    /// Probes sent since the last confirmation.
    probes: u8,
    next_probe: u64,
    queue: heapless::Vec<BufId, QUEUE_PER_NEIGHBOUR>,
}

/// What the caller does with a packet for a next hop.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolve {
    /// Send it to this MAC (and, if `probe`, also send a refresh request).
    Known { mac: Mac, probe: bool },
    /// Park it with `park`; if `probe`, send a request now.
    Unknown { probe: bool },
}

/// Events from `poll`.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<A> {
    /// Send a request for this address on this port.
    Probe(Port, A),
    /// The neighbour never answered: these parked packets are dropped.
    Failed(BufId),
}

/// A neighbour as the shell shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourInfo<A> {
    pub addr: A,
    pub port: Port,
    pub mac: Option<Mac>,
    /// Milliseconds since confirmation.
    pub age_ms: u64,
    pub queued: usize,
}

/// One address family's cache.
#[derive(Debug)]
pub struct Cache<A> {
    entries: HashMap<A, Entry, ahash::RandomState>,
    /// The last reachable entry `resolve` returned: (address, port, MAC, confirmed).
    /// Most packets of a NAT go to one next hop (the gateway), so this skips the hash
    /// lookup for them. Cleared whenever any entry changes.
    last: Option<(A, Port, Mac, u64)>,
}

impl<A: Copy + Eq + Hash> Default for Cache<A> {
    fn default() -> Self {
        Cache {
            entries: HashMap::with_capacity_and_hasher(MAX_ENTRIES, ahash::RandomState::new()),
            last: None,
        }
    }
}

impl<A: Copy + Eq + Hash> Cache<A> {
    /// Looks up `addr` on `port` for a packet about to be sent, creating an incomplete
    /// entry if there is none (and room for one). `None`: table full.
    pub fn resolve(&mut self, port: Port, addr: A, now: u64) -> Option<Resolve> {
        if let Some((a, p, mac, confirmed)) = self.last {
            if a == addr && p == port && now.saturating_sub(confirmed) < REACHABLE_MS {
                return Some(Resolve::Known { mac, probe: false });
            }
        }
        self.last = None;
        if let Some(e) = self.entries.get_mut(&addr) {
            if e.port == port {
                return Some(match e.mac {
                    Some(mac) => {
                        let stale = now.saturating_sub(e.confirmed) >= REACHABLE_MS;
                        if !stale {
                            self.last = Some((addr, port, mac, e.confirmed));
                        }
                        let probe = stale && e.probes == 0;
                        if probe {
                            e.probes = 1;
                            e.next_probe = now + RETRANS_MS;
                        }
                        Resolve::Known { mac, probe }
                    }
                    None => Resolve::Unknown { probe: false },
                });
            }
            // The address moved to the other port (re-configuration): start over.
            self.entries.remove(&addr);
        }
        if self.entries.len() >= MAX_ENTRIES {
            return None;
        }
        self.entries.insert(
            addr,
            Entry {
                port,
                mac: None,
                confirmed: 0,
                probes: 1,
                next_probe: now + RETRANS_MS,
                queue: heapless::Vec::new(),
            },
        );
        Some(Resolve::Unknown { probe: true })
    }

    /// Parks a packet on an incomplete entry; gives it back if the queue is full.
    pub fn park(&mut self, addr: A, buf: BufId) -> Result<(), BufId> {
        match self.entries.get_mut(&addr) {
            Some(e) if e.mac.is_none() => e.queue.push(buf),
            _ => Err(buf),
        }
    }

    /// Records `addr` at `mac` on `port`. `create` allows a new entry (the packet
    /// was addressed to us); otherwise only an existing entry is updated. Returns
    /// the packets that were waiting, to be sent now.
    pub fn learn(
        &mut self,
        port: Port,
        addr: A,
        mac: Mac,
        now: u64,
        create: bool,
    ) -> heapless::Vec<BufId, QUEUE_PER_NEIGHBOUR> {
        self.last = None;
        if !self.entries.contains_key(&addr) && (!create || self.entries.len() >= MAX_ENTRIES) {
            return heapless::Vec::new();
        }
        let e = self.entries.entry(addr).or_insert(Entry {
            port,
            mac: None,
            confirmed: 0,
            probes: 0,
            next_probe: 0,
            queue: heapless::Vec::new(),
        });
        e.port = port;
        e.mac = Some(mac);
        e.confirmed = now;
        e.probes = 0;
        std::mem::take(&mut e.queue)
    }

    /// Retransmits requests and gives up on silent neighbours.
    pub fn poll(&mut self, now: u64, events: &mut Vec<Event<A>>) {
        self.last = None;
        self.entries.retain(|&addr, e| {
            if e.probes == 0 || now < e.next_probe {
                return true;
            }
            if e.probes >= MAX_PROBES {
                events.extend(e.queue.iter().map(|&b| Event::Failed(b)));
                return false;
            }
            e.probes += 1;
            e.next_probe = now + RETRANS_MS;
            events.push(Event::Probe(e.port, addr));
            true
        });
    }

    pub fn list(&self, now: u64) -> Vec<NeighbourInfo<A>> {
        self.entries
            .iter()
            .map(|(&addr, e)| NeighbourInfo {
                addr,
                port: e.port,
                mac: e.mac,
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
    pub fn forget_port(&mut self, port: Port) -> Vec<BufId> {
        self.last = None;
        let mut parked = Vec::new();
        self.entries.retain(|_, e| {
            if e.port == port {
                parked.extend(e.queue.iter().copied());
                false
            } else {
                true
            }
        });
        parked
    }

    /// Forgets every entry, returning the parked packets.
    pub fn clear(&mut self) -> Vec<BufId> {
        self.last = None;
        self.entries.drain().flat_map(|(_, e)| e.queue).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const GW: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const MAC: Mac = Mac([2, 0, 0, 0, 0, 1]);

    fn buf(n: u16) -> BufId {
        BufId(n)
    }

    #[test]
    fn unknown_then_learnt_releases_queue() {
        let mut c = Cache::default();
        assert_eq!(
            c.resolve(Port::Outside, GW, 0),
            Some(Resolve::Unknown { probe: true })
        );
        assert_eq!(
            c.resolve(Port::Outside, GW, 10),
            Some(Resolve::Unknown { probe: false })
        );
        c.park(GW, buf(0)).unwrap();
        let released = c.learn(Port::Outside, GW, MAC, 20, false);
        assert_eq!(released.len(), 1);
        assert_eq!(
            c.resolve(Port::Outside, GW, 30),
            Some(Resolve::Known {
                mac: MAC,
                probe: false
            })
        );
    }

    #[test]
    fn forget_port_drops_only_that_ports_entries() {
        let mut c = Cache::<Ipv4Addr>::default();
        let inside = Ipv4Addr::new(10, 10, 0, 2);
        c.learn(Port::Outside, GW, MAC, 0, true);
        c.learn(Port::Inside, inside, MAC, 0, true);
        assert_eq!(
            c.resolve(Port::Outside, Ipv4Addr::new(198, 51, 100, 7), 0),
            Some(Resolve::Unknown { probe: true })
        );
        c.park(Ipv4Addr::new(198, 51, 100, 7), buf(1)).unwrap();
        assert_eq!(c.forget_port(Port::Outside), vec![buf(1)]);
        assert_eq!(
            c.resolve(Port::Outside, GW, 1),
            Some(Resolve::Unknown { probe: true })
        );
        assert_eq!(
            c.resolve(Port::Inside, inside, 1),
            Some(Resolve::Known {
                mac: MAC,
                probe: false
            })
        );
    }

    #[test]
    fn queue_is_bounded() {
        let mut c = Cache::default();
        c.resolve(Port::Outside, GW, 0);
        for i in 0..QUEUE_PER_NEIGHBOUR as u16 {
            c.park(GW, buf(i)).unwrap();
        }
        assert!(c.park(GW, buf(9)).is_err());
    }

    #[test]
    fn silent_neighbour_fails_after_probes() {
        let mut c = Cache::default();
        c.resolve(Port::Outside, GW, 0);
        c.park(GW, buf(0)).unwrap();
        let mut ev = Vec::new();
        for t in 1..=3 {
            c.poll(t * RETRANS_MS, &mut ev);
        }
        assert_eq!(
            ev.iter().filter(|e| matches!(e, Event::Probe(..))).count(),
            2
        );
        assert_eq!(
            ev.iter().filter(|e| matches!(e, Event::Failed(_))).count(),
            1
        );
        assert!(c.list(0).is_empty());
    }

    #[test]
    fn unsolicited_learning_needs_create() {
        let mut c: Cache<Ipv4Addr> = Cache::default();
        c.learn(Port::Inside, GW, MAC, 0, false);
        assert!(c.list(0).is_empty());
        c.learn(Port::Inside, GW, MAC, 0, true);
        assert_eq!(c.list(0).len(), 1);
    }

    #[test]
    fn stale_entry_probes_once_and_expires_without_answer() {
        let mut c = Cache::default();
        c.learn(Port::Outside, GW, MAC, 0, true);
        let t = REACHABLE_MS;
        assert_eq!(
            c.resolve(Port::Outside, GW, t),
            Some(Resolve::Known {
                mac: MAC,
                probe: true
            })
        );
        assert_eq!(
            c.resolve(Port::Outside, GW, t),
            Some(Resolve::Known {
                mac: MAC,
                probe: false
            })
        );
        let mut ev = Vec::new();
        for i in 1..=3 {
            c.poll(t + i * RETRANS_MS, &mut ev);
        }
        assert!(c.list(t).is_empty());
    }
}
