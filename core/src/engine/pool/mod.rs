//! External port (or ICMP identifier) allocation for one public address and protocol.
//!
//! A table of 65 536 slots, each naming the first session of the mapping that owns the
//! port, or free, or held. Held ports were freed less than `port_reuse_hold` seconds ago
//! and may only go back to their previous inside host (RFC 6888 REQ-8); the caller's
//! FIFO of holds releases them.
//!
//! Allocation (RFC 4787 REQ-3, REQ-4): keep the inside port if it is free and inside
//! the right range (port preservation); otherwise search the range, starting at the
//! inside port and keeping its parity, then fall back to the other parity. The range is
//! chosen by the inside port: 0-1023 and 1024-65535 map into the matching part of the
//! configured range. Port overloading never happens: a slot has one owner.
//!
//! With several engine shards (workers), a shard allocates only from its `Slices`: its
//! slice (`shard::PortSplit`) of each class and of the ICMP identifiers, so the owner
//! of a public port, which the steering program computes from the port alone, is the
//! shard that holds the mapping. The consequences for RFC 4787: REQ-3 still holds
//! (every shard has ports of both classes, as long as a class has at least as many
//! ports as there are shards; a shard without a slice of a class refuses mappings of
//! that class as `ports_exhausted`); port preservation (section 4.2.1, a MAY) happens
//! only for inside ports in the shard's own slice, so with N shards about 1/N of the
//! inside ports are preserved; parity (REQ-4, a RECOMMENDED) is kept within the slice
//! as within the whole range. A host's ports all come from one shard's slice, since
//! its frames are steered to one shard (by a hash of its address), so a single host
//! can hold at most a 1/N share of each pool address's ports.

pub mod blocks;

use crate::shard::{PortSplit, Shard};

/// Slot value for a port nobody owns.
const FREE: u32 = u32::MAX;
/// Slot value for a port in its reuse hold.
const HELD: u32 = u32::MAX - 1;

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// First session of the owning mapping, or `FREE`/`HELD`.
    head: u32,
    /// Inside host that owned it last (for holds).
    owner: u32,
    /// While held: when the hold started, in seconds (matches the hold FIFO entry).
    /// While owned: the mapping's sessions opened from outside and not answered yet
    /// (the two uses never overlap, and a slot stays 12 bytes).
    freed: u32,
}

/// One public address's ports for one protocol.
#[derive(Debug)]
pub struct PortTable {
    slots: Box<[Slot]>,
    in_use: u32,
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: u16,
    pub max: u16,
}

/// Ranges for the two RFC 4787 REQ-3 port classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranges {
    pub low: Option<Range>,
    pub high: Range,
}

impl Ranges {
    /// Splits the configured range at 1024. ICMP identifiers use `full()` instead.
    pub fn from_config(min: u16, max: u16) -> Ranges {
        let high = Range {
            min: min.max(1024).min(max),
            max,
        };
        let low = (min < 1024).then(|| Range {
            min: min.max(1),
            max: max.min(1023),
        });
        match low {
            Some(low) if max < 1024 => Ranges {
                low: Some(low),
                high: low,
            },
            _ => Ranges { low, high },
        }
    }

    /// Every identifier (ICMP queries have no well-known/ephemeral split).
    pub fn full() -> Ranges {
        Ranges {
            low: None,
            high: Range { min: 0, max: 65535 },
        }
    }

    /// The range an inside port maps into.
    pub fn for_port(&self, port: u16) -> Range {
        match self.low {
            Some(low) if port < 1024 => low,
            _ => self.high,
        }
    }
}

/// The ranges one engine shard allocates from: its slice of each port class and of
/// the ICMP identifiers (see the module doc). For `Shard::ONLY`, the classes whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slices {
    /// Whether the configured range has a class below 1024.
    has_low: bool,
    low: Option<Range>,
    high: Option<Range>,
    ids: Option<Range>,
}

impl Slices {
    /// Shard `shard`'s slices of `classes` and of the identifiers.
    pub fn new(classes: Ranges, shard: Shard) -> Slices {
        let cut = |r: Range| {
            let slice = PortSplit::new(r.min, r.max, shard.count())?.slice(shard.index())?;
            Some(Range {
                min: *slice.start(),
                max: *slice.end(),
            })
        };
        Slices {
            has_low: classes.low.is_some(),
            low: classes.low.and_then(cut),
            high: cut(classes.high),
            ids: cut(Ranges::full().high),
        }
    }

    /// The slice a new mapping for inside port `port` takes its port from (its class's,
    /// as `Ranges::for_port`); `None` if this shard owns none of that class.
    pub fn for_port(&self, port: u16) -> Option<Range> {
        if self.has_low && port < 1024 {
            self.low
        } else {
            self.high
        }
    }

    /// The slice of ICMP identifiers.
    pub fn ids(&self) -> Option<Range> {
        self.ids
    }
}

impl Default for PortTable {
    fn default() -> Self {
        PortTable {
            slots: vec![
                Slot {
                    head: FREE,
                    owner: 0,
                    freed: 0
                };
                65536
            ]
            .into_boxed_slice(),
            in_use: 0,
        }
    }
}

impl PortTable {
    /// Ports owned or held.
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// The first session of the mapping that owns `port`.
    #[inline]
    pub fn owner(&self, port: u16) -> Option<u32> {
        let head = self.slots[usize::from(port)].head;
        (head < HELD).then_some(head)
    }

    /// Picks a port for inside host `host` whose inside port is `wanted`, or `None` if
    /// the range is full. The caller then `claim`s it. `wanted` itself is kept if it
    /// is free or in this host's hold (port preservation); otherwise `search`.
    pub fn pick(&self, range: Range, wanted: u16, host: u32) -> Option<u16> {
        let s = self.slots[usize::from(wanted)];
        let usable = s.head == FREE || (s.head == HELD && s.owner == host);
        if (range.min..=range.max).contains(&wanted) && usable {
            return Some(wanted);
        }
        self.search(range, wanted, host)
    }

    /// A port of `range` for `host`, searched from `start` keeping its parity, then the
    /// other parity (REQ-4): a free port if there is one, else one in this host's own
    /// hold. Free ports come first so that a host does not get back, moments later, a
    /// port whose last connection the remote may still hold in TIME_WAIT: in a port
    /// block of a few dozen ports the held ones would otherwise be met at once.
    pub fn search(&self, range: Range, start: u16, host: u32) -> Option<u16> {
        let free = |s: &Slot| s.head == FREE;
        let held_here = |s: &Slot| s.head == HELD && s.owner == host;
        self.scan(range, start, free)
            .or_else(|| self.scan(range, start, held_here))
    }

    fn scan(&self, range: Range, start: u16, usable: impl Fn(&Slot) -> bool) -> Option<u16> {
        let span = u32::from(range.max - range.min) + 1;
        let start = if (range.min..=range.max).contains(&start) {
            u32::from(start - range.min)
        } else {
            u32::from(start) % span
        };
        for offset in [0u32, 1] {
            let mut step = offset;
            while step < span {
                let p = range.min + ((start + step) % span) as u16;
                if usable(&self.slots[usize::from(p)]) {
                    return Some(p);
                }
                step += 2;
            }
        }
        None
    }

    /// Gives `port` to the mapping whose first session is `head`; whether the port was
    /// free (not held) before.
    pub fn claim(&mut self, port: u16, head: u32, host: u32) -> bool {
        let s = &mut self.slots[usize::from(port)];
        let fresh = s.head == FREE;
        if fresh {
            self.in_use += 1;
        }
        *s = Slot {
            head,
            owner: host,
            freed: 0,
        };
        fresh
    }

    /// Sessions opened from outside on the mapping that owns `port`, not answered yet.
    pub fn unanswered(&self, port: u16) -> u32 {
        let s = &self.slots[usize::from(port)];
        if s.head < HELD {
            s.freed
        } else {
            0
        }
    }

    /// One more (`true`) or one fewer unanswered session on the mapping owning `port`.
    pub fn count_unanswered(&mut self, port: u16, more: bool) {
        let s = &mut self.slots[usize::from(port)];
        if s.head < HELD {
            s.freed = if more {
                s.freed.saturating_add(1)
            } else {
                s.freed.saturating_sub(1)
            };
        }
    }

    /// The mapping's first session changed.
    pub fn set_head(&mut self, port: u16, head: u32) {
        self.slots[usize::from(port)].head = head;
    }

    /// The mapping ended at time `now`: the port is held for its owner.
    pub fn hold(&mut self, port: u16, now: u32) {
        let s = &mut self.slots[usize::from(port)];
        s.head = HELD;
        s.freed = now;
    }

    /// Ends the hold that started at `freed`, unless the port was reclaimed since;
    /// whether the port is free now.
    pub fn release(&mut self, port: u16, freed: u32) -> bool {
        let s = &mut self.slots[usize::from(port)];
        let ended = s.head == HELD && s.freed == freed;
        if ended {
            s.head = FREE;
            self.in_use -= 1;
        }
        ended
    }

    /// Bytes this table holds.
    pub fn memory() -> usize {
        65536 * std::mem::size_of::<Slot>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIGH: Range = Range {
        min: 1024,
        max: 65535,
    };

    #[test]
    fn rfc4787_req3_ranges_split_at_1024() {
        let r = Ranges::from_config(1, 65535);
        assert_eq!(r.for_port(123), Range { min: 1, max: 1023 });
        assert_eq!(r.for_port(40000), HIGH);
        let narrow = Ranges::from_config(40000, 40003);
        assert_eq!(
            narrow.for_port(123),
            Range {
                min: 40000,
                max: 40003
            }
        );
        let only_low = Ranges::from_config(100, 200);
        assert_eq!(only_low.for_port(50000), Range { min: 100, max: 200 });
    }

    #[test]
    fn shards_allocate_from_disjoint_slices_of_each_class() {
        let classes = Ranges::from_config(1, 65535);
        let only = Slices::new(classes, Shard::ONLY);
        assert_eq!(only.for_port(80), Some(Range { min: 1, max: 1023 }));
        assert_eq!(only.for_port(40000), Some(HIGH));
        assert_eq!(only.ids(), Some(Range { min: 0, max: 65535 }));
        let [a, b] = [0, 1].map(|k| Slices::new(classes, Shard::new(k, 2).unwrap()));
        assert_eq!(a.for_port(80), Some(Range { min: 1, max: 511 }));
        assert_eq!(
            b.for_port(80),
            Some(Range {
                min: 512,
                max: 1023
            })
        );
        assert_eq!(
            a.for_port(5000),
            Some(Range {
                min: 1024,
                max: 33279
            })
        );
        assert_eq!(
            b.for_port(5000),
            Some(Range {
                min: 33280,
                max: 65535
            })
        );
        assert_eq!(
            b.ids(),
            Some(Range {
                min: 32768,
                max: 65535
            })
        );
        // A class with fewer ports than shards leaves the last shards without one.
        let tiny = Ranges::from_config(1023, 1024);
        let third = Slices::new(tiny, Shard::new(1, 2).unwrap());
        assert_eq!(third.for_port(5), None);
        assert_eq!(third.for_port(5000), None);
    }

    #[test]
    fn rfc4787_req4_parity_preserved() {
        let mut t = PortTable::default();
        t.claim(5000, 1, 10);
        // 5000 is taken: the next even port is chosen.
        assert_eq!(t.pick(HIGH, 5000, 11), Some(5002));
        t.claim(5001, 2, 10);
        assert_eq!(t.pick(HIGH, 5001, 11), Some(5003));
    }

    #[test]
    fn falls_back_to_other_parity_then_none() {
        let r = Range { min: 10, max: 13 };
        let mut t = PortTable::default();
        t.claim(10, 1, 1);
        t.claim(12, 2, 1);
        assert_eq!(t.pick(r, 10, 2), Some(11));
        t.claim(11, 3, 1);
        t.claim(13, 4, 1);
        assert_eq!(t.pick(r, 10, 2), None);
        assert_eq!(t.in_use(), 4);
    }

    /// A search gives a host a free port before one in its own hold, so a small range
    /// (a port block) does not hand back a port its last connection just used.
    #[test]
    fn rfc6888_req8_a_search_takes_free_ports_before_the_hosts_held_ones() {
        let r = Range { min: 10, max: 13 };
        let host = 0x0a0a0002;
        let mut t = PortTable::default();
        for p in [10, 12] {
            t.claim(p, 1, host);
            t.hold(p, 100);
        }
        assert_eq!(t.search(r, 10, host), Some(11), "free, other parity");
        assert_eq!(
            t.pick(r, 10, host),
            Some(10),
            "its own port is kept (REQ-8)"
        );
        t.claim(11, 2, host);
        t.claim(13, 3, host);
        assert_eq!(t.search(r, 10, host), Some(10), "only held ones left");
        assert_eq!(t.search(r, 10, 0x0a0a0003), None, "never another host's");
    }

    #[test]
    fn rfc6888_req8_held_port_only_for_previous_owner() {
        let r = Range { min: 10, max: 10 };
        let mut t = PortTable::default();
        t.claim(10, 7, 0x0a0a0002);
        t.hold(10, 100);
        assert_eq!(t.owner(10), None);
        assert_eq!(t.pick(r, 10, 0x0a0a0003), None);
        assert_eq!(t.pick(r, 10, 0x0a0a0002), Some(10));
        t.release(10, 99); // a stale hold entry does nothing
        assert_eq!(t.pick(r, 10, 0x0a0a0003), None);
        t.release(10, 100);
        assert_eq!(t.pick(r, 10, 0x0a0a0003), Some(10));
        assert_eq!(t.in_use(), 0);
    }

    #[test]
    fn unanswered_count_lives_with_the_mapping() {
        let mut t = PortTable::default();
        t.count_unanswered(10, true); // no mapping: nothing to count
        assert_eq!(t.unanswered(10), 0);
        t.claim(10, 7, 1);
        t.count_unanswered(10, true);
        t.count_unanswered(10, true);
        t.set_head(10, 8);
        assert_eq!(t.unanswered(10), 2);
        t.count_unanswered(10, false);
        t.count_unanswered(10, false);
        t.count_unanswered(10, false);
        assert_eq!(t.unanswered(10), 0);
        t.hold(10, 100);
        assert_eq!(t.unanswered(10), 0, "the hold's time is not a count");
        t.release(10, 100);
        assert_eq!(t.in_use(), 0);
    }
}
