//! Port blocks (RFC 7422, RFC 8158 section 4.1.4's port-block NAT events): with
//! `[port_block] size` set, the ports of one public address and protocol are cut into
//! blocks, and an inside host takes ports only from blocks it owns, so the event log
//! says once per block, not once per mapping, who held which ports.
//!
//! Layout: blocks are cut from the start of each range the allocator hands out from
//! (a shard's slice of an RFC 4787 REQ-3 class, or of the ICMP identifiers,
//! `pool::Slices`): block `k` of range `r` is `r.min + k*size ..= r.min + (k+1)*size - 1`,
//! whole blocks only (a tail shorter than `size` is never handed out). Every block
//! therefore lies inside one slice, so a shard only ever hands out ports it owns and
//! blocks of different shards or classes never overlap. Two disjoint blocks of `size`
//! ports never share `first / size`, so that is the block's slot in a flat table; a
//! port's block starts at most `size - 1` before it, so its slot is `port / size` or
//! the one before (the range's start need not be a multiple of `size`).
//!
//! Counts: `live` is the block's ports owned by a mapping; `used` adds the ports in
//! their reuse hold (RFC 6888 REQ-8). A block stays its host's until `used` falls to 0,
//! that is until the hold of its last mapping ends: a freed port can only go back to
//! the host that had it, as REQ-8 asks, because nobody else can take ports from the
//! block meanwhile. A host's blocks of one table are chained through `next` from the
//! head its host record keeps, so nothing here allocates after the table is made.

use super::Range;

/// No block (end of a host's chain).
pub const NONE: u16 = u16::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Inside host (address) that owns the block.
    host: u32,
    first: u16,
    /// Ports owned by a mapping.
    live: u16,
    /// Ports owned or held.
    used: u16,
    /// The host's next block in this table, or `NONE`.
    next: u16,
    owned: bool,
}

/// One public address's blocks for one protocol.
#[derive(Debug)]
pub struct Blocks {
    size: u16,
    entries: Box<[Entry]>,
    in_use: u32,
}

impl Blocks {
    /// Blocks of `size` ports (at least 2).
    pub fn new(size: u16) -> Blocks {
        let size = size.max(2);
        let free = Entry {
            host: 0,
            first: 0,
            live: 0,
            used: 0,
            next: NONE,
            owned: false,
        };
        Blocks {
            size,
            entries: vec![free; 65536 / usize::from(size) + 1].into_boxed_slice(),
            in_use: 0,
        }
    }

    /// Bytes a table of blocks of `size` ports holds.
    pub fn memory(size: u16) -> usize {
        (65536 / usize::from(size.max(2)) + 1) * std::mem::size_of::<Entry>()
    }

    /// Blocks owned.
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// The slot of the block starting at `first`.
    fn slot(&self, first: u16) -> usize {
        usize::from(first / self.size)
    }

    /// The slot of the owned block that holds `port`. Blocks start wherever their
    /// range does, not at multiples of `size`, so the block's first port, and with it
    /// its slot, is `port / size` or the one before.
    fn slot_holding(&self, port: u16) -> Option<usize> {
        let at = usize::from(port / self.size);
        [Some(at), at.checked_sub(1)]
            .into_iter()
            .flatten()
            .find(|&slot| {
                let e = &self.entries[slot];
                e.owned && e.first <= port && port - e.first < self.size
            })
    }

    /// The block of `range` that holds `port` (`None` outside the range's whole blocks).
    pub fn block_of(&self, range: Range, port: u16) -> Option<Range> {
        if !(range.min..=range.max).contains(&port) {
            return None;
        }
        let k = (port - range.min) / self.size;
        self.nth(range, k)
    }

    /// Block `k` of `range`, if whole.
    pub fn nth(&self, range: Range, k: u16) -> Option<Range> {
        let first = u32::from(range.min) + u32::from(k) * u32::from(self.size);
        let last = first + u32::from(self.size) - 1;
        (last <= u32::from(range.max)).then_some(Range {
            min: first as u16,
            max: last as u16,
        })
    }

    /// The inside host owning the block starting at `first`.
    pub fn owner(&self, first: u16) -> Option<u32> {
        let e = &self.entries[self.slot(first)];
        (e.owned && e.first == first).then_some(e.host)
    }

    /// The inside host owning the block that holds `port`.
    pub fn port_owner(&self, port: u16) -> Option<u32> {
        self.slot_holding(port).map(|slot| self.entries[slot].host)
    }

    /// The port in `block` with the parity of `wanted` (RFC 4787 REQ-4) at the same
    /// offset from the block's start as `wanted` modulo the size: where a search for
    /// `wanted` starts.
    pub fn fold(&self, block: Range, wanted: u16) -> u16 {
        let off = (i32::from(wanted) - i32::from(block.min)).rem_euclid(i32::from(self.size));
        block.min + off as u16
    }

    /// A block of `range` nobody owns: the one holding `wanted` if free (so the
    /// inside port can be preserved), else the next free one, wrapping.
    pub fn find_free(&self, range: Range, wanted: u16) -> Option<Range> {
        let count = (u32::from(range.max - range.min) + 1) / u32::from(self.size);
        let start = match self.block_of(range, wanted) {
            Some(b) => u32::from((b.min - range.min) / self.size),
            None => 0,
        };
        (0..count)
            .filter_map(|i| self.nth(range, ((start + i) % count) as u16))
            .find(|b| self.owner(b.min).is_none())
    }

    /// Gives `block` to `host`, at the front of the chain whose head is `head`.
    pub fn take(&mut self, block: Range, host: u32, head: &mut u16) {
        let slot = self.slot(block.min);
        self.entries[slot] = Entry {
            host,
            first: block.min,
            live: 0,
            used: 0,
            next: *head,
            owned: true,
        };
        *head = slot as u16;
        self.in_use += 1;
    }

    /// The block at chain position `at`, its live ports, and the next position.
    pub fn at(&self, at: u16) -> (Range, u16, u16) {
        let e = &self.entries[usize::from(at)];
        let block = Range {
            min: e.first,
            max: e.first + (self.size - 1),
        };
        (block, e.live, e.next)
    }

    /// Whether every port of the block at `at` has a live mapping.
    pub fn full(&self, at: u16) -> bool {
        self.entries[usize::from(at)].live >= self.size
    }

    /// A mapping took `port`; `fresh` if the port was free before (not held).
    pub fn mapped(&mut self, port: u16, fresh: bool) {
        let Some(slot) = self.slot_holding(port) else {
            return;
        };
        let e = &mut self.entries[slot];
        e.live = e.live.saturating_add(1);
        if fresh {
            e.used = e.used.saturating_add(1);
        }
    }

    /// The mapping on `port` ended; the port is held.
    pub fn unmapped(&mut self, port: u16) {
        let Some(slot) = self.slot_holding(port) else {
            return;
        };
        let e = &mut self.entries[slot];
        e.live = e.live.saturating_sub(1);
    }

    /// The hold on `port` ended. When that was the block's last port in use, the block
    /// is freed, unlinked from the chain at `head`, and returned with its host.
    pub fn released(&mut self, port: u16, head: &mut u16) -> Option<(Range, u32)> {
        let slot = self.slot_holding(port)?;
        let e = &mut self.entries[slot];
        e.used = e.used.saturating_sub(1);
        if e.used > 0 {
            return None;
        }
        e.owned = false;
        let (block, _, next) = self.at(slot as u16);
        let host = self.entries[slot].host;
        self.in_use -= 1;
        // Unlink (a chain is at most the host's block quota long).
        if *head == slot as u16 {
            *head = next;
        } else {
            let mut at = *head;
            while at != NONE {
                let e = &mut self.entries[usize::from(at)];
                if e.next == slot as u16 {
                    e.next = next;
                    break;
                }
                at = e.next;
            }
        }
        Some((block, host))
    }

    /// Blocks in the chain at `head`.
    pub fn chain_len(&self, head: u16) -> u32 {
        let mut n = 0;
        let mut at = head;
        while at != NONE {
            n += 1;
            at = self.entries[usize::from(at)].next;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pool::{PortTable, Ranges, Slices};
    use crate::shard::Shard;
    use proptest::prelude::*;

    const HIGH: Range = Range {
        min: 1024,
        max: 65535,
    };

    #[test]
    fn rfc7422_blocks_are_cut_from_the_range_start_whole_only() {
        let b = Blocks::new(64);
        assert_eq!(
            b.block_of(HIGH, 1024),
            Some(Range {
                min: 1024,
                max: 1087
            })
        );
        assert_eq!(
            b.block_of(HIGH, 40010),
            Some(Range {
                min: 40000,
                max: 40063
            })
        );
        // 64512 ports hold 1008 whole blocks: the last ends at 65535.
        assert_eq!(
            b.nth(HIGH, 1007),
            Some(Range {
                min: 65472,
                max: 65535
            })
        );
        assert_eq!(b.nth(HIGH, 1008), None);
        let low = Range { min: 1, max: 1023 };
        assert_eq!(
            b.block_of(low, 1000),
            None,
            "the short tail is never handed out"
        );
    }

    #[test]
    fn rfc4787_section4_2_1_preservation_prefers_the_inside_ports_block() {
        let mut b = Blocks::new(64);
        assert_eq!(b.find_free(HIGH, 40010).map(|r| r.min), Some(40000));
        let mut head = NONE;
        b.take(
            Range {
                min: 40000,
                max: 40063,
            },
            7,
            &mut head,
        );
        assert_eq!(b.find_free(HIGH, 40010).map(|r| r.min), Some(40064));
        assert_eq!(b.owner(40000), Some(7));
        assert_eq!(b.owner(40064), None);
    }

    #[test]
    fn rfc4787_req4_fold_keeps_parity() {
        let b = Blocks::new(64);
        let block = Range {
            min: 2048,
            max: 2111,
        };
        assert_eq!(b.fold(block, 40001), 2048 + (40001 - 2048) % 64);
        assert_eq!(b.fold(block, 40001) % 2, 1);
        assert_eq!(b.fold(block, 7) % 2, 1);
        assert_eq!(b.fold(block, 2050), 2050);
    }

    #[test]
    fn rfc6888_req8_block_released_after_its_last_hold() {
        let mut b = Blocks::new(8);
        let mut head = NONE;
        let block = Range {
            min: 1024,
            max: 1031,
        };
        b.take(block, 7, &mut head);
        b.mapped(1024, true);
        b.mapped(1025, true);
        b.unmapped(1024);
        b.unmapped(1025);
        assert!(b.released(1024, &mut head).is_none(), "1025 still held");
        assert_eq!(b.owner(1024), Some(7));
        assert_eq!(b.released(1025, &mut head), Some((block, 7)));
        assert_eq!((head, b.in_use(), b.owner(1024)), (NONE, 0, None));
    }

    /// The default range starts at port 1 and a `port_min` of 10000 is no multiple of
    /// 64: a port is counted on the block that holds it, not on its neighbour.
    #[test]
    fn rfc7422_ports_count_on_their_own_block_when_the_range_start_is_unaligned() {
        let range = Range {
            min: 10000,
            max: 65535,
        };
        let mut b = Blocks::new(64);
        let (mut head_a, mut head_b) = (NONE, NONE);
        let first = b.nth(range, 0).expect("block 0");
        let second = b.nth(range, 1).expect("block 1");
        assert_eq!((first.min, first.max, second.min), (10000, 10063, 10064));
        b.take(first, 1, &mut head_a);
        b.take(second, 2, &mut head_b);
        assert_eq!(b.port_owner(10063), Some(1));
        assert_eq!(b.port_owner(10064), Some(2));
        b.mapped(10063, true);
        b.mapped(10064, true);
        assert_eq!(b.at(head_a).1, 1, "10063 is live on the first block");
        assert_eq!(b.at(head_b).1, 1, "10064 is live on the second block");
        b.unmapped(10063);
        assert_eq!(b.released(10063, &mut head_a), Some((first, 1)));
        assert_eq!(b.owner(10064), Some(2), "the neighbour keeps its port");
        b.unmapped(10064);
        assert_eq!(b.released(10064, &mut head_b), Some((second, 2)));
        assert_eq!(b.in_use(), 0);
    }

    #[test]
    fn chains_unlink_from_the_middle() {
        let mut b = Blocks::new(8);
        let mut head = NONE;
        for k in 0..3 {
            let block = b.nth(HIGH, k).unwrap();
            b.take(block, 1, &mut head);
            b.mapped(block.min, true);
        }
        assert_eq!(b.chain_len(head), 3);
        assert!(b.released(1032, &mut head).is_some());
        assert_eq!(b.chain_len(head), 2);
        assert!(b.released(1024, &mut head).is_some());
        assert!(b.released(1040, &mut head).is_some());
        assert_eq!(head, NONE);
    }

    proptest! {
        /// Blocks given to hosts by `find_free` never overlap and never leave the
        /// shard's slice, for any block size, port range and shard.
        #[test]
        fn blocks_never_overlap_and_never_leave_the_slice(
            size in 8u16..2048,
            min in 1u16..40000,
            len in 0u16..25000,
            shards in 1usize..5,
            hosts in proptest::collection::vec((any::<u32>(), any::<u16>()), 1..200),
        ) {
            let max = min.saturating_add(len).max(1024);
            let classes = Ranges::from_config(min, max);
            let mut owned: Vec<(Range, u32)> = Vec::new();
            for k in 0..shards {
                let slices = Slices::new(classes, Shard::new(k, shards).unwrap());
                let mut b = Blocks::new(size);
                let table = PortTable::default();
                for &(host, wanted) in &hosts {
                    let Some(slice) = slices.for_port(wanted) else { continue };
                    let Some(block) = b.find_free(slice, wanted) else { continue };
                    prop_assert!(slice.min <= block.min && block.max <= slice.max);
                    let mut head = NONE;
                    b.take(block, host, &mut head);
                    let p = table.pick(block, b.fold(block, wanted), host).unwrap();
                    prop_assert!(block.min <= p && p <= block.max);
                    for &(other, _) in &owned {
                        prop_assert!(other.max < block.min || block.max < other.min);
                    }
                    owned.push((block, host));
                }
            }
        }
    }
}
