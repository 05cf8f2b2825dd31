//! Sets of rule numbers as aggregated bit vectors (Baboescu and Varghese, "Scalable
//! Packet Classification", SIGCOMM 2001): a set of the numbers below `n` is a bit
//! vector of `words = ceil(n / 64)` words, stored sparse: an aggregate of
//! `ceil(words / 64)` words whose bit `w` says whether word `w` has any bit set, and
//! then only the words that do. Each set is stored once (`Builder::intern`), however
//! many intervals of the classifier name it.
//!
//! `first_common` finds the smallest number in three sets at once: it intersects the
//! aggregates first, so it reads only the words where all three sets have members
//! (at most `words`, 157 for 10 000 rules; a handful in practice), and stops at the
//! first word whose intersection is not empty. It reads what `Builder` wrote and
//! nothing a packet carries, and no index it computes can leave the vectors (`get`,
//! an empty word where a bug would put one).

use std::collections::HashMap;

/// Every set the classifier's intervals name, sparse.
#[derive(Debug, Clone, Default)]
pub(super) struct Sets {
    /// Aggregate words per set.
    aggs: usize,
    /// Set `i`'s aggregate: `agg[i * aggs..(i + 1) * aggs]`.
    agg: Vec<u64>,
    /// Where set `i`'s words start in `bits`.
    start: Vec<u32>,
    /// The non-empty words of every set, set after set.
    bits: Vec<u64>,
}

impl Sets {
    /// The smallest number in all of `a`, `b` and `c`.
    #[inline]
    pub(super) fn first_common(&self, a: u32, b: u32, c: u32) -> Option<u32> {
        let n = self.aggs;
        let agg = |s: u32| {
            let at = s as usize * n;
            self.agg.get(at..at + n).unwrap_or(&[])
        };
        let start = |s: u32| self.start.get(s as usize).map_or(0, |&x| x as usize);
        let (ga, gb, gc) = (agg(a), agg(b), agg(c));
        let (mut ra, mut rb, mut rc) = (start(a), start(b), start(c));
        let word = |at: usize| self.bits.get(at).copied().unwrap_or(0);
        for (k, ((&xa, &xb), &xc)) in ga.iter().zip(gb).zip(gc).enumerate() {
            let mut candidates = xa & xb & xc;
            while candidates != 0 {
                let bit = candidates.trailing_zeros();
                let below = (1u64 << bit) - 1;
                let w = word(ra + (xa & below).count_ones() as usize)
                    & word(rb + (xb & below).count_ones() as usize)
                    & word(rc + (xc & below).count_ones() as usize);
                if w != 0 {
                    return Some(((k as u32 * 64 + bit) * 64) + w.trailing_zeros());
                }
                candidates &= candidates - 1;
            }
            ra += xa.count_ones() as usize;
            rb += xb.count_ones() as usize;
            rc += xc.count_ones() as usize;
        }
        None
    }

    /// Bytes held.
    pub(super) fn memory(&self) -> usize {
        (self.agg.capacity() + self.bits.capacity()) * 8 + self.start.capacity() * 4
    }
}

/// Builds `Sets` from dense bit vectors, storing each distinct set once.
#[derive(Debug)]
pub(super) struct Builder {
    sets: Sets,
    /// A set's sparse form (aggregate, then words) to its number.
    seen: HashMap<Vec<u64>, u32>,
    scratch: Vec<u64>,
}

impl Builder {
    /// For sets of the numbers below `n`.
    pub(super) fn new(n: usize) -> Builder {
        Builder {
            sets: Sets {
                aggs: n.div_ceil(64).div_ceil(64),
                ..Sets::default()
            },
            seen: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// The number of the set whose dense vector is `dense` (⌈n/64⌉ words), stored now
    /// if it is new.
    pub(super) fn intern(&mut self, dense: &[u64]) -> u32 {
        let s = &mut self.sets;
        self.scratch.clear();
        self.scratch.resize(s.aggs, 0);
        for (w, &word) in dense.iter().enumerate().filter(|(_, &x)| x != 0) {
            self.scratch[w / 64] |= 1 << (w % 64);
            self.scratch.push(word);
        }
        if let Some(&id) = self.seen.get(&self.scratch) {
            return id;
        }
        let id = s.start.len() as u32;
        s.agg.extend_from_slice(&self.scratch[..s.aggs]);
        s.start.push(s.bits.len() as u32);
        s.bits.extend_from_slice(&self.scratch[s.aggs..]);
        self.seen.insert(self.scratch.clone(), id);
        id
    }

    pub(super) fn finish(mut self) -> Sets {
        let s = &mut self.sets;
        s.agg.shrink_to_fit();
        s.start.shrink_to_fit();
        s.bits.shrink_to_fit();
        self.sets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(n: usize, members: &[usize]) -> Vec<u64> {
        let mut v = vec![0u64; n.div_ceil(64)];
        for &m in members {
            v[m / 64] |= 1 << (m % 64);
        }
        v
    }

    #[test]
    fn equal_sets_are_stored_once() {
        let mut b = Builder::new(300);
        let x = b.intern(&dense(300, &[1, 200]));
        let y = b.intern(&dense(300, &[2]));
        assert_eq!(b.intern(&dense(300, &[1, 200])), x);
        assert_ne!(x, y);
        let sets = b.finish();
        assert_eq!(sets.start.len(), 2);
        assert_eq!(sets.bits.len(), 3, "only non-empty words are stored");
    }

    #[test]
    fn the_first_common_member_wins() {
        let n = 10_000;
        let mut b = Builder::new(n);
        let a = b.intern(&dense(n, &[5, 4097, 9000, 9999]));
        let c = b.intern(&dense(n, &[4097, 9000, 9999]));
        let d = b.intern(&dense(n, &[9000, 9999, 3]));
        let e = b.intern(&dense(n, &[]));
        let all: Vec<usize> = (0..n).collect();
        let f = b.intern(&dense(n, &all));
        let sets = b.finish();
        assert_eq!(sets.first_common(a, c, d), Some(9000));
        assert_eq!(sets.first_common(a, c, f), Some(4097));
        assert_eq!(sets.first_common(f, f, f), Some(0));
        assert_eq!(sets.first_common(a, e, f), None);
        assert_eq!(sets.first_common(d, f, a), Some(9000));
        // A number no set has (a caller's bug) finds nothing rather than panicking.
        assert_eq!(sets.first_common(99, a, a), None);
    }
}
