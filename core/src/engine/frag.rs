//! The fragment table (RFC 4787 REQ-14; the IPv6 filter uses it the same way): lets
//! non-first fragments, which carry no ports, follow the decision made for the first
//! fragment of their datagram, whichever order they arrive in.
//!
//! Keyed by (source, destination, protocol, identification) as received. The first
//! fragment records an action (the IPv4 addresses to write, or "pass" for the IPv6
//! filter); later fragments look it up. Fragments that arrive before their first are
//! parked in pool buffers and re-processed once it comes.
//!
//! DoS bounds: at most `MAX_ENTRIES` datagrams, `MAX_PARKED` parked fragments in all,
//! `PARKED_PER_SOURCE` per source address and `PARKED_PER_DATAGRAM` per datagram;
//! entries live `timeout` from creation. When full, new datagrams are refused (counted)
//! rather than evicting ones in progress, so a flood of fragments cannot break
//! datagrams already being forwarded; and since one source may park only a quarter of
//! the fragments (`fragment_source_limit`), one sender's flood of out-of-order
//! fragments cannot take the parking space of everyone else.
//!
//! With several shards, every IPv4 fragment from outside reaches shard 0 (the
//! steering program sends it there), which hands the datagram's fragments to the shard
//! that owns its public port: the first fragment names the owner, and its entry here
//! records `Handoff(owner)` so the others follow it, parked until it comes like any
//! fragment. The owner sees the first fragment before the others (one FIFO hand-off
//! lane from shard 0), so its own table always has the translation they need.

use super::buffers::BufId;
use super::port::PortId;
use super::stats::DropReason;
use super::{Engine, Frame, Step, Verdict};
use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;

pub const MAX_ENTRIES: usize = 1024;
pub const MAX_PARKED: usize = 64;
pub const PARKED_PER_DATAGRAM: usize = 8;
pub const PARKED_PER_SOURCE: usize = MAX_PARKED / 4;

/// Identifies one datagram's fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    ident: u32,
}

impl FragKey {
    pub fn v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ident: u16) -> FragKey {
        FragKey {
            src: src.to_ipv6_mapped().octets(),
            dst: dst.to_ipv6_mapped().octets(),
            proto,
            ident: u32::from(ident),
        }
    }

    pub fn v6(src: &std::net::Ipv6Addr, dst: &std::net::Ipv6Addr, ident: u32) -> FragKey {
        FragKey {
            src: src.octets(),
            dst: dst.octets(),
            proto: 0,
            ident,
        }
    }
}

/// What to do with the datagram's other fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragAction {
    /// Write these IPv4 addresses (the first fragment's translation).
    Rewrite4 { src: Ipv4Addr, dst: Ipv4Addr },
    /// Forward unchanged (the IPv6 filter admitted the first fragment).
    Pass,
    /// Hand to this engine shard, which translated the first fragment (see the
    /// engine's "Shards" doc).
    Handoff(usize),
}

type Parked = heapless::Vec<(BufId, PortId), PARKED_PER_DATAGRAM>;

#[derive(Debug)]
struct Entry {
    action: Option<FragAction>,
    created: u64,
    parked: Parked,
}

/// The table.
#[derive(Debug)]
pub struct Frags {
    entries: HashMap<FragKey, Entry, ahash::RandomState>,
    order: VecDeque<(FragKey, u64)>,
    parked: usize,
    /// Parked fragments per source address (only sources with some; so at most
    /// `MAX_PARKED` keys).
    parked_by_source: HashMap<[u8; 16], usize, ahash::RandomState>,
    timeout_ms: u64,
}

impl Frags {
    pub fn new(timeout_s: u32) -> Frags {
        Frags {
            entries: HashMap::with_capacity_and_hasher(MAX_ENTRIES, ahash::RandomState::new()),
            order: VecDeque::with_capacity(MAX_ENTRIES),
            parked: 0,
            parked_by_source: HashMap::with_capacity_and_hasher(
                MAX_PARKED,
                ahash::RandomState::new(),
            ),
            timeout_ms: u64::from(timeout_s) * 1000,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn set_timeout(&mut self, timeout_s: u32) {
        self.timeout_ms = u64::from(timeout_s) * 1000;
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first fragment was handled with `action`; returns fragments parked for it,
    /// to be processed again now.
    pub fn first(
        &mut self,
        key: FragKey,
        action: FragAction,
        now: u64,
    ) -> Result<Parked, DropReason> {
        let entry = self.entry(key, now)?;
        entry.action = Some(action);
        let parked = std::mem::take(&mut entry.parked);
        self.unpark(&key, parked.len());
        Ok(parked)
    }

    pub fn lookup(&self, key: &FragKey) -> Option<FragAction> {
        self.entries.get(key).and_then(|e| e.action)
    }

    /// Parks a fragment that came before its first fragment.
    pub fn park(
        &mut self,
        key: FragKey,
        buf: BufId,
        port: PortId,
        now: u64,
    ) -> Result<(), DropReason> {
        if self.parked >= MAX_PARKED {
            return Err(DropReason::FragmentTableFull);
        }
        if self.parked_by_source.get(&key.src).copied().unwrap_or(0) >= PARKED_PER_SOURCE {
            return Err(DropReason::FragmentSourceLimit);
        }
        let entry = self.entry(key, now)?;
        entry
            .parked
            .push((buf, port))
            .map_err(|_| DropReason::FragmentTableFull)?;
        self.parked += 1;
        *self.parked_by_source.entry(key.src).or_default() += 1;
        Ok(())
    }

    /// Ends entries older than the timeout; their parked fragments go to `expired`.
    pub fn poll(&mut self, now: u64, expired: &mut Vec<BufId>) {
        while let Some(&(key, created)) = self.order.front() {
            if created + self.timeout_ms > now {
                break;
            }
            self.order.pop_front();
            if self.entries.get(&key).is_some_and(|e| e.created == created) {
                let e = self.entries.remove(&key).expect("just checked");
                self.unpark(&key, e.parked.len());
                expired.extend(e.parked.iter().map(|&(b, _)| b));
            }
        }
    }

    /// Accounts for `n` fragments of `key`'s datagram leaving the parking.
    fn unpark(&mut self, key: &FragKey, n: usize) {
        if n == 0 {
            return;
        }
        self.parked -= n;
        if let Some(count) = self.parked_by_source.get_mut(&key.src) {
            *count -= n;
            if *count == 0 {
                self.parked_by_source.remove(&key.src);
            }
        }
    }

    fn entry(&mut self, key: FragKey, now: u64) -> Result<&mut Entry, DropReason> {
        if !self.entries.contains_key(&key) {
            if self.entries.len() >= MAX_ENTRIES {
                return Err(DropReason::FragmentTableFull);
            }
            self.order.push_back((key, now));
            self.entries.insert(
                key,
                Entry {
                    action: None,
                    created: now,
                    parked: Parked::new(),
                },
            );
        }
        Ok(self.entries.get_mut(&key).expect("present"))
    }
}

impl Engine {
    /// Parks a fragment that came before its first fragment.
    pub(super) fn park_fragment(
        &mut self,
        frame: &Frame<'_>,
        key: FragKey,
        port: PortId,
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

    /// Processes fragments parked before their first fragment, now that it came.
    pub(super) fn run_reinjected(&mut self, now: u64) {
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
                    let c = &mut self.stats.ports[out.slot()];
                    c.tx_packets -= 1;
                    c.tx_bytes -= len as u64;
                    self.tx.push_back((out, id));
                }
                Verdict::Handoff(shard) => {
                    // `account` counted the hand-off.
                    self.handoff.push_back((shard, port, id));
                }
                _ => self.buffers.free(id),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSIDE: PortId = PortId(0);
    const OUTSIDE: PortId = PortId(1);

    fn key(id: u16) -> FragKey {
        FragKey::v4(
            Ipv4Addr::new(10, 10, 0, 2),
            Ipv4Addr::new(198, 51, 100, 1),
            17,
            id,
        )
    }

    const ACTION: FragAction = FragAction::Rewrite4 {
        src: Ipv4Addr::new(198, 51, 100, 10),
        dst: Ipv4Addr::new(198, 51, 100, 1),
    };

    #[test]
    fn in_order_lookup() {
        let mut f = Frags::new(5);
        assert!(f.first(key(1), ACTION, 0).unwrap().is_empty());
        assert_eq!(f.lookup(&key(1)), Some(ACTION));
        assert_eq!(f.lookup(&key(2)), None);
    }

    #[test]
    fn out_of_order_fragments_are_released_by_first() {
        let mut f = Frags::new(5);
        f.park(key(1), BufId(3), INSIDE, 0).unwrap();
        f.park(key(1), BufId(4), INSIDE, 0).unwrap();
        assert_eq!(f.lookup(&key(1)), None);
        let released = f.first(key(1), ACTION, 1).unwrap();
        assert_eq!(
            released.as_slice(),
            &[(BufId(3), INSIDE), (BufId(4), INSIDE)]
        );
    }

    #[test]
    fn one_source_cannot_fill_the_parking() {
        let mut f = Frags::new(5);
        let from = |src: u8, id: u16| {
            FragKey::v4(
                Ipv4Addr::new(203, 0, 113, src),
                Ipv4Addr::new(198, 51, 100, 10),
                17,
                id,
            )
        };
        for id in 0..PARKED_PER_SOURCE as u16 {
            f.park(from(1, id), BufId(id), OUTSIDE, 0).unwrap();
        }
        assert_eq!(
            f.park(from(1, 999), BufId(999), OUTSIDE, 0),
            Err(DropReason::FragmentSourceLimit)
        );
        f.park(from(2, 0), BufId(500), OUTSIDE, 0).unwrap();
        // Released fragments give the source its share back.
        assert_eq!(f.first(from(1, 0), ACTION, 1).unwrap().len(), 1);
        f.park(from(1, 999), BufId(999), OUTSIDE, 1).unwrap();
        let mut expired = Vec::new();
        f.poll(10_000, &mut expired);
        assert_eq!(expired.len(), PARKED_PER_SOURCE + 1);
        assert!(f.parked_by_source.is_empty());
    }

    #[test]
    fn rfc4787_req14_bounded_and_expiring() {
        let mut f = Frags::new(5);
        for i in 0..PARKED_PER_DATAGRAM as u16 {
            f.park(key(1), BufId(i), INSIDE, 0).unwrap();
        }
        assert_eq!(
            f.park(key(1), BufId(99), INSIDE, 0),
            Err(DropReason::FragmentTableFull)
        );
        let mut expired = Vec::new();
        f.poll(4_999, &mut expired);
        assert!(expired.is_empty());
        f.poll(5_000, &mut expired);
        assert_eq!(expired.len(), PARKED_PER_DATAGRAM);
        assert!(f.is_empty());
        for i in 0..MAX_ENTRIES as u16 {
            f.first(key(i), ACTION, 10_000).unwrap();
        }
        assert_eq!(
            f.first(key(u16::MAX), ACTION, 10_000).unwrap_err(),
            DropReason::FragmentTableFull
        );
    }
}
