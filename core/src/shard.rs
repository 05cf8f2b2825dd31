//! Which worker owns which external port: the per-worker split of a port range (the
//! split VPP's NAT uses per thread).
//!
//! With `workers` shards, each public address's range `[min, max]` is cut into
//! contiguous slices of `len = max(count / workers, 1)` ports: worker `k` owns
//! `[min + k*len, min + (k+1)*len)`, and the last worker also takes the remainder. A
//! port's owner is therefore `min((port - min) / len, workers - 1)`, a subtraction, a
//! division and a clamp, which is what lets a classic BPF fanout program find the
//! owner of a reply's destination port in a few instructions
//! (`appliance/src/io/steering`). A worker's port allocator must hand out only ports of
//! its own slice, so the owner of a mapping's public port is the worker that holds its
//! state. The split is per range: the RFC 4787 REQ-3 classes (ports below and above
//! 1024) and the ICMP identifier range are each split on their own, so every worker
//! has ports of every class. Port preservation (RFC 4787 section 4.2.1, a MAY) then
//! works only for inside ports that fall in the worker's own slice; the others are
//! searched for within the slice, as the whole range is today.
//!
//! With more workers than ports (a tiny configured range), workers `count..` own
//! nothing: `slice` returns `None` for them.
//!
//! `Shard` names one engine of several; `PublicSplit` is the whole public port space
//! cut as above (what the steering program and the engine's hand-off both ask "who
//! owns this port?"); `host_worker` is the steering program's hash of an inside host's
//! address, for in-process shards (tests, benchmarks) that steer as the kernel does.

use crate::engine::pool::{Range, Ranges};
use std::ops::RangeInclusive;

/// Which engine shard of how many: shard `index` allocates public ports only from its
/// slices of every range (`PortSplit::slice(index)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// The one shard of a box with one worker.
    pub const ONLY: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count` (`None` unless `index < count`).
    pub fn new(index: usize, count: usize) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    pub fn index(self) -> usize {
        self.index
    }

    pub fn count(self) -> usize {
        self.count
    }

    /// This shard's part of a box-wide table budget: `total / count`, rounded up, at
    /// least 1. The shards together hold at most `total + count - 1` entries.
    pub fn share(self, total: u32) -> u32 {
        let count = u32::try_from(self.count).unwrap_or(u32::MAX);
        total.div_ceil(count).max(1)
    }
}

/// The NAT's public port space split among shards: each RFC 4787 REQ-3 class of the
/// configured port range, and the ICMP identifier range, split on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicSplit {
    /// TCP/UDP port classes (disjoint), each split.
    pub ports: Vec<PortSplit>,
    /// The ICMP identifier range (every identifier), split.
    pub icmp_ids: PortSplit,
}

impl PublicSplit {
    /// The split of the port range `port_min..=port_max` among `workers`; `None` for
    /// no workers or an empty range.
    pub fn new(workers: usize, (port_min, port_max): (u16, u16)) -> Option<PublicSplit> {
        let split = |r: Range| PortSplit::new(r.min, r.max, workers);
        let classes = Ranges::from_config(port_min, port_max);
        let mut ports = vec![split(classes.high)?];
        if let Some(low) = classes.low.filter(|&low| low != classes.high) {
            ports.push(split(low)?);
        }
        Some(PublicSplit {
            ports,
            icmp_ids: split(Ranges::full().high)?,
        })
    }

    /// The owner of public TCP/UDP port `port` (a port outside the range: worker 0, as
    /// the steering program does).
    pub fn port_owner(&self, port: u16) -> usize {
        self.ports.iter().find_map(|s| s.owner(port)).unwrap_or(0)
    }

    /// The owner of ICMP identifier `id`.
    pub fn ident_owner(&self, id: u16) -> usize {
        self.icmp_ids.owner(id).unwrap_or(0)
    }
}

/// Multiplier of the host hash (2^32 / golden ratio, odd).
const GOLDEN: u32 = 0x9e37_79b1;

/// The worker the steering program sends an inside host's frames to (its address as a
/// big-endian `u32`; for IPv6, the xor of the address's four words): `h = addr *
/// GOLDEN`, `(h ^ (h >> 16)) % workers`.
pub fn host_worker(addr: u32, workers: u32) -> usize {
    let h = addr.wrapping_mul(GOLDEN);
    ((h ^ (h >> 16)) % workers.max(1)) as usize
}

/// One port range cut into per-worker slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSplit {
    min: u16,
    max: u16,
    workers: u32,
    len: u32,
}

impl PortSplit {
    /// Splits `[min, max]` among `workers`; `None` for an empty range or no workers.
    pub fn new(min: u16, max: u16, workers: usize) -> Option<PortSplit> {
        let workers = u32::try_from(workers).ok().filter(|&w| w > 0)?;
        let count = u32::from(max.checked_sub(min)?) + 1;
        Some(PortSplit {
            min,
            max,
            workers,
            len: (count / workers).max(1),
        })
    }

    /// The first port of the range.
    pub fn min(&self) -> u16 {
        self.min
    }

    /// The last port of the range.
    pub fn max(&self) -> u16 {
        self.max
    }

    /// Ports per slice (the last slice may be longer).
    pub fn slice_len(&self) -> u32 {
        self.len
    }

    /// The number of workers the range is split among.
    pub fn workers(&self) -> u32 {
        self.workers
    }

    /// The worker that owns `port`, if `port` is in the range.
    pub fn owner(&self, port: u16) -> Option<usize> {
        if !(self.min..=self.max).contains(&port) {
            return None;
        }
        let k = (u32::from(port - self.min) / self.len).min(self.workers - 1);
        usize::try_from(k).ok()
    }

    /// The ports worker `k` owns (`None`: no ports, or no such worker).
    pub fn slice(&self, k: usize) -> Option<RangeInclusive<u16>> {
        let k = u32::try_from(k).ok().filter(|&k| k < self.workers)?;
        let start = u32::from(self.min) + k * self.len;
        let end = if k == self.workers - 1 {
            u32::from(self.max)
        } else {
            (start + self.len - 1).min(u32::from(self.max))
        };
        let start = u16::try_from(start).ok().filter(|&s| s <= self.max)?;
        Some(start..=u16::try_from(end).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slices_are_contiguous_and_the_last_takes_the_remainder() {
        let s = PortSplit::new(1024, 65535, 3).unwrap();
        assert_eq!(s.slice_len(), 21504);
        assert_eq!(s.slice(0), Some(1024..=22527));
        assert_eq!(s.slice(1), Some(22528..=44031));
        assert_eq!(s.slice(2), Some(44032..=65535));
        assert_eq!(s.slice(3), None);
        assert_eq!(s.owner(1023), None);
        assert_eq!(s.owner(22527), Some(0));
        assert_eq!(s.owner(22528), Some(1));
        assert_eq!(s.owner(65535), Some(2));
    }

    #[test]
    fn workers_beyond_the_port_count_own_nothing() {
        let s = PortSplit::new(10, 11, 4).unwrap();
        assert_eq!(s.slice(0), Some(10..=10));
        assert_eq!(s.slice(1), Some(11..=11));
        assert_eq!(s.slice(2), None);
        assert_eq!(s.slice(3), None);
        assert_eq!(PortSplit::new(5, 4, 1), None);
        assert_eq!(PortSplit::new(5, 5, 0), None);
    }

    #[test]
    fn public_split_owns_each_class_and_the_identifiers_separately() {
        let s = PublicSplit::new(2, (1, 65535)).unwrap();
        assert_eq!(s.ports.len(), 2);
        assert_eq!(s.port_owner(1), 0);
        assert_eq!(s.port_owner(1023), 1);
        assert_eq!(s.port_owner(1024), 0);
        assert_eq!(s.port_owner(65535), 1);
        assert_eq!(s.ident_owner(0), 0);
        assert_eq!(s.ident_owner(40000), 1);
        let narrow = PublicSplit::new(2, (40000, 40003)).unwrap();
        assert_eq!(narrow.port_owner(39999), 0, "outside the range: worker 0");
        assert_eq!(narrow.port_owner(40002), 1);
    }

    #[test]
    fn shares_cover_the_budget() {
        let two = |k| Shard::new(k, 2).unwrap();
        assert_eq!(two(0).share(7) + two(1).share(7), 8);
        assert_eq!(Shard::ONLY.share(7), 7);
        assert_eq!(Shard::new(0, 4).unwrap().share(1), 1);
        assert_eq!(Shard::new(2, 2), None);
    }

    proptest! {
        /// Every port of the range has exactly one owner, the worker whose slice holds it.
        #[test]
        fn every_port_has_one_owner_whose_slice_holds_it(
            a in any::<u16>(), b in any::<u16>(), workers in 1usize..=64, port in any::<u16>()
        ) {
            let (min, max) = (a.min(b), a.max(b));
            let s = PortSplit::new(min, max, workers).unwrap();
            let holders: Vec<usize> = (0..workers)
                .filter(|&k| s.slice(k).is_some_and(|r| r.contains(&port)))
                .collect();
            match s.owner(port) {
                Some(k) => prop_assert_eq!(holders, vec![k]),
                None => prop_assert!(holders.is_empty() && !(min..=max).contains(&port)),
            }
        }
    }
}
