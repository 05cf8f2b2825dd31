//! A fixed-capacity hash index from keys to `u32` handles.
//!
//! Open addressing with linear probing and backward-shift deletion (no tombstones, so
//! a long-lived table never degrades). Each slot is one `u64`: the high 32 bits are a
//! tag taken from the key's hash, the low 32 bits the handle. The index does not store
//! keys: callers keep them in their own records (a session knows its own tuple) and
//! confirm a tag match with a predicate. That keeps the index at 8 bytes per slot.
//!
//! Capacity is fixed at construction and never grows, so nothing allocates on the
//! packet path. `insert` fails only when the table is full, which callers prevent by
//! sizing it above their own record limits.

const EMPTY: u64 = u64::MAX;

/// The index. `hash` values come from the caller (keyed, see `Hasher`).
#[derive(Debug)]
pub struct Index {
    slots: Box<[u64]>,
    mask: usize,
    len: usize,
}

/// A keyed hash over up to five 64-bit words; keyed per process so remote hosts
/// cannot aim collisions at one chain (hash flooding).
#[derive(Debug, Clone)]
pub struct Hasher {
    state: ahash::RandomState,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher {
            state: ahash::RandomState::new(),
        }
    }
}

impl Hasher {
    /// Hashes a key given as 64-bit words.
    #[inline]
    pub fn hash(&self, words: &[u64]) -> u64 {
        self.state.hash_one(words)
    }
}

impl Index {
    /// An index with room for at least `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Index {
        let slots = Self::slots_for(capacity);
        Index {
            slots: vec![EMPTY; slots].into_boxed_slice(),
            mask: slots - 1,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the slot array.
    pub fn memory(&self) -> usize {
        self.slots.len() * std::mem::size_of::<u64>()
    }

    /// Bytes `with_capacity(capacity)` allocates.
    pub fn memory_for(capacity: usize) -> usize {
        Self::slots_for(capacity) * std::mem::size_of::<u64>()
    }

    fn slots_for(capacity: usize) -> usize {
        capacity.max(8).next_power_of_two()
    }

    /// The handle of the first entry with this hash for which `is_key` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = tag(hash);
        let mut i = tag as usize & self.mask;
        loop {
            let slot = self.slots[i];
            if slot == EMPTY {
                return None;
            }
            if slot >> 32 == tag && is_key(slot as u32) {
                return Some(slot as u32);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Adds an entry. The caller guarantees no equal key is present. Returns false if
    /// the table is full.
    pub fn insert(&mut self, hash: u64, handle: u32) -> bool {
        // Keep one slot empty so probes always terminate.
        if self.len + 1 >= self.slots.len() {
            return false;
        }
        let mut i = tag(hash) as usize & self.mask;
        while self.slots[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = tag(hash) << 32 | u64::from(handle);
        self.len += 1;
        true
    }

    /// Points the entry for this hash and handle at a new handle.
    pub fn replace(&mut self, hash: u64, old: u32, new: u32) -> bool {
        match self.position(hash, old) {
            Some(i) => {
                self.slots[i] = tag(hash) << 32 | u64::from(new);
                true
            }
            None => false,
        }
    }

    /// Removes the entry for this hash and handle; returns whether it was present.
    pub fn remove(&mut self, hash: u64, handle: u32) -> bool {
        let Some(mut hole) = self.position(hash, handle) else {
            return false;
        };
        // Backward-shift: move later members of the cluster into the hole when their
        // home slot is not inside (hole, current].
        let mut i = (hole + 1) & self.mask;
        while self.slots[i] != EMPTY {
            let home = self.home_of(self.slots[i]);
            let dist_home = i.wrapping_sub(home) & self.mask;
            let dist_hole = i.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.slots[hole] = self.slots[i];
                hole = i;
            }
            i = (i + 1) & self.mask;
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
        true
    }

    fn position(&self, hash: u64, handle: u32) -> Option<usize> {
        let want = tag(hash) << 32 | u64::from(handle);
        let mut i = tag(hash) as usize & self.mask;
        loop {
            match self.slots[i] {
                EMPTY => return None,
                s if s == want => return Some(i),
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    /// A slot's home position, recovered from its tag (the tag holds the hash bits the
    /// position came from).
    fn home_of(&self, slot: u64) -> usize {
        (slot >> 32) as usize & self.mask
    }
}

/// The tag is the low 32 bits of the hash: the same bits that choose the home slot
/// (for tables up to 2^32 slots), so `home_of` can recover the home without the key.
/// All-ones is reserved so no slot can equal `EMPTY`.
#[inline]
fn tag(hash: u64) -> u64 {
    let t = hash & 0xffff_ffff;
    if t == 0xffff_ffff {
        0xffff_fffe
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn insert_find_remove() {
        let mut ix = Index::with_capacity(16);
        assert!(ix.insert(5, 50));
        assert!(ix.insert(5, 51)); // same hash, other key
        assert_eq!(ix.find(5, |h| h == 51), Some(51));
        assert_eq!(ix.find(5, |h| h == 50), Some(50));
        assert!(ix.remove(5, 50));
        assert_eq!(ix.find(5, |h| h == 50), None);
        assert_eq!(ix.find(5, |h| h == 51), Some(51));
        assert!(!ix.remove(5, 50));
        assert!(ix.replace(5, 51, 52));
        assert_eq!(ix.find(5, |_| true), Some(52));
        assert_eq!(ix.len(), 1);
    }

    #[test]
    fn full_table_refuses_insert() {
        let mut ix = Index::with_capacity(8);
        for i in 0..7 {
            assert!(ix.insert(i * 8, i as u32)); // all collide on slot 0
        }
        assert!(!ix.insert(99, 99));
        for i in 0..7 {
            assert_eq!(ix.find(i * 8, |h| h == i as u32), Some(i as u32));
        }
    }

    proptest! {
        /// The index agrees with a HashMap model under any sequence of inserts and
        /// removes, including heavy collisions (hashes drawn from a small range).
        #[test]
        fn matches_model(ops in proptest::collection::vec((any::<bool>(), 0u64..64, 0u32..40), 1..400)) {
            let mut ix = Index::with_capacity(64);
            let mut model: HashMap<u32, u64> = HashMap::new();
            for (insert, hash, handle) in ops {
                if insert && !model.contains_key(&handle) {
                    prop_assert!(ix.insert(hash, handle));
                    model.insert(handle, hash);
                } else if let Some(h) = model.remove(&handle) {
                    prop_assert!(ix.remove(h, handle));
                }
                for (&handle, &hash) in &model {
                    prop_assert_eq!(ix.find(hash, |x| x == handle), Some(handle));
                }
                prop_assert_eq!(ix.len(), model.len());
            }
        }
    }
}
