//! One family's compiled rules: a bit-vector classifier (Lakshman and Stiliadis,
//! "High-speed policy-based packet forwarding using efficient multi-dimensional range
//! matching", SIGCOMM 1998) over three dimensions, each a range of integers:
//!
//! - the source address (`u32` for IPv4, `u128` for IPv6): a prefix is the range from
//!   its network address to its last address, no prefix the whole range;
//! - the destination address, likewise;
//! - the transport key (`l4_key`): the protocol number times 65536 plus the
//!   destination port (TCP, UDP) or the ICMP type (ICMP, ICMPv6), so a rule's
//!   protocol, port range and ICMP type are one range: `tcp` is 6·65536..=6·65536+65535,
//!   `tcp port 443` one point of it, no protocol everything.
//!
//! Each dimension is cut at every rule's range ends into elementary intervals (at most
//! 2n + 1 for n rules), kept as the sorted list of their first values, and each
//! interval names the set of rules whose range covers it (`sets`). A lookup finds the
//! packet's interval in each dimension by binary search (O(log n)) and the lowest rule
//! number in all three sets (`Sets::first_common`): the first rule that matches, since
//! rules are numbered in order. Its cost is three binary searches and the words of the
//! three sets that have members in common, independent of how the rules are written.

use super::sets::{Builder, Sets};

/// An integer dimension of the classifier.
pub(super) trait Point: Copy + Ord + std::fmt::Debug {
    const MIN: Self;
    /// The next value, if any.
    fn next(self) -> Option<Self>;
}

impl Point for u32 {
    const MIN: u32 = 0;
    fn next(self) -> Option<u32> {
        self.checked_add(1)
    }
}

impl Point for u128 {
    const MIN: u128 = 0;
    fn next(self) -> Option<u128> {
        self.checked_add(1)
    }
}

/// The transport key of a packet or a rule: `proto` times 65536 plus `value` (the
/// destination port for TCP and UDP, the type for ICMP and ICMPv6, 0 otherwise).
#[inline]
pub fn l4_key(proto: u8, value: u16) -> u32 {
    u32::from(proto) << 16 | u32::from(value)
}

/// One dimension: the first value of every elementary interval (the first is `MIN`)
/// and the set each names.
#[derive(Debug, Clone)]
struct Intervals<K> {
    starts: Vec<K>,
    sets: Vec<u32>,
}

impl<K: Point> Intervals<K> {
    /// The set of the interval holding `k`.
    #[inline]
    fn lookup(&self, k: K) -> u32 {
        let at = self.starts.partition_point(|&s| s <= k);
        self.sets
            .get(at.wrapping_sub(1))
            .copied()
            .unwrap_or(u32::MAX)
    }

    /// Cuts the dimension at the ends of `ranges` (one per rule, in rule order) and
    /// interns each interval's set of rules.
    fn build(ranges: &[(K, K)], sets: &mut Builder) -> Intervals<K> {
        // Rule `r` joins at its first value and leaves after its last.
        let mut events: Vec<(K, bool, usize)> = Vec::with_capacity(2 * ranges.len());
        for (r, &(lo, hi)) in ranges.iter().enumerate() {
            events.push((lo, true, r));
            if let Some(after) = hi.next() {
                events.push((after, false, r));
            }
        }
        events.sort_unstable_by_key(|e| e.0);
        let mut members = vec![0u64; sets.words()];
        let mut out = Intervals {
            starts: Vec::new(),
            sets: Vec::new(),
        };
        let mut emit = |at: K, members: &[u64], out: &mut Intervals<K>| {
            let id = sets.intern(members);
            if out.sets.last() != Some(&id) {
                out.starts.push(at);
                out.sets.push(id);
            }
        };
        let mut i = 0;
        if events.first().is_none_or(|e| e.0 != K::MIN) {
            emit(K::MIN, &members, &mut out);
        }
        while let Some(&(at, _, _)) = events.get(i) {
            while let Some(&(_, joins, r)) = events.get(i).filter(|e| e.0 == at) {
                if let Some(word) = members.get_mut(r / 64) {
                    if joins {
                        *word |= 1 << (r % 64);
                    } else {
                        *word &= !(1 << (r % 64));
                    }
                }
                i += 1;
            }
            emit(at, &members, &mut out);
        }
        out.starts.shrink_to_fit();
        out.sets.shrink_to_fit();
        out
    }

    fn memory(&self) -> usize {
        self.starts.capacity() * std::mem::size_of::<K>() + self.sets.capacity() * 4
    }
}

/// What a rule matches in one family: a range per dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ranges<A> {
    pub src: (A, A),
    pub dst: (A, A),
    pub l4: (u32, u32),
}

/// One family's rules, compiled.
#[derive(Debug, Clone)]
pub(super) struct Classifier<A> {
    src: Intervals<A>,
    dst: Intervals<A>,
    l4: Intervals<u32>,
    sets: Sets,
    /// The policy's number of each rule here (this family's rules are a subsequence).
    numbers: Vec<u32>,
}

impl<A: Point> Classifier<A> {
    /// Compiles `rules`: (the policy's rule number, what it matches), in order.
    pub(super) fn new(rules: &[(u32, Ranges<A>)]) -> Classifier<A> {
        let mut sets = Builder::new(rules.len());
        let src: Vec<_> = rules.iter().map(|(_, r)| r.src).collect();
        let dst: Vec<_> = rules.iter().map(|(_, r)| r.dst).collect();
        let l4: Vec<_> = rules.iter().map(|(_, r)| r.l4).collect();
        Classifier {
            src: Intervals::build(&src, &mut sets),
            dst: Intervals::build(&dst, &mut sets),
            l4: Intervals::build(&l4, &mut sets),
            sets: sets.finish(),
            numbers: rules.iter().map(|(n, _)| *n).collect(),
        }
    }

    /// The number of the first rule matching (source, destination, transport key).
    #[inline]
    pub(super) fn lookup(&self, src: A, dst: A, l4: u32) -> Option<u32> {
        if self.numbers.is_empty() {
            return None;
        }
        let first = self.sets.first_common(
            self.dst.lookup(dst),
            self.src.lookup(src),
            self.l4.lookup(l4),
        )?;
        self.numbers.get(first as usize).copied()
    }

    /// Bytes held.
    pub(super) fn memory(&self) -> usize {
        self.src.memory()
            + self.dst.memory()
            + self.l4.memory()
            + self.sets.memory()
            + self.numbers.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(src: (u32, u32), dst: (u32, u32), l4: (u32, u32)) -> Ranges<u32> {
        Ranges { src, dst, l4 }
    }

    const ALL: (u32, u32) = (0, u32::MAX);

    #[test]
    fn intervals_cut_at_range_ends_and_merge_equal_neighbours() {
        let mut b = Builder::new(3);
        let d = Intervals::build(&[(10, 20), (15, 30), (21, 30)], &mut b);
        // [0,10) {} [10,15) {0} [15,21) {0,1} [21,31) {1,2} [31,..] {}
        assert_eq!(d.starts, vec![0, 10, 15, 21, 31]);
        assert_eq!(d.sets[0], d.sets[4], "the empty set is stored once");
        assert_eq!(d.lookup(9), d.sets[0]);
        assert_eq!(d.lookup(10), d.sets[1]);
        assert_eq!(d.lookup(30), d.sets[3]);
        assert_eq!(d.lookup(u32::MAX), d.sets[4]);
        let mut b = Builder::new(1);
        let whole = Intervals::build(&[ALL], &mut b);
        assert_eq!(whole.starts, vec![0], "a range to the end has no end event");
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let c = Classifier::new(&[
            (0, ranges((5, 5), ALL, ALL)),
            (1, ranges(ALL, (100, 199), (l4_key(6, 443), l4_key(6, 443)))),
            (4, ranges(ALL, (100, 199), ALL)),
        ]);
        assert_eq!(c.lookup(5, 150, l4_key(6, 443)), Some(0));
        assert_eq!(c.lookup(6, 150, l4_key(6, 443)), Some(1));
        assert_eq!(c.lookup(6, 150, l4_key(6, 80)), Some(4));
        assert_eq!(c.lookup(6, 200, l4_key(6, 443)), None);
        assert_eq!(Classifier::<u32>::new(&[]).lookup(1, 2, 3), None);
    }
}
