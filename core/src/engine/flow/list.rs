//! Intrusive doubly linked lists over records in a `slab::Slab`.
//!
//! Records embed `Links` (one per list they can be on; the const parameter `K` says
//! which); lists hold only head, tail and length. All operations are O(1) and never
//! allocate. Used for per-class LRU expiry (oldest at the front, so expiry looks only
//! at the front: VPP's per-class LRU) and for the sessions that share one mapping.

use slab::Slab;

/// "No record".
pub const NIL: u32 = u32::MAX;

/// One record's neighbours on one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Links {
    prev: u32,
    next: u32,
}

impl Links {
    /// True for a record with no predecessor (the first of a chain, or unlinked).
    pub fn is_first(&self) -> bool {
        self.prev == NIL
    }
}

impl Default for Links {
    fn default() -> Self {
        Links {
            prev: NIL,
            next: NIL,
        }
    }
}

/// A record that can sit on list family `K`.
pub trait Linked<const K: usize> {
    fn links(&mut self) -> &mut Links;
}

/// A list of records of one slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct List {
    head: u32,
    tail: u32,
    len: u32,
}

impl Default for List {
    fn default() -> Self {
        List {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl List {
    pub fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends record `i`, which must not be on a list of family `K`.
    pub fn push_back<const K: usize, T: Linked<K>>(&mut self, slab: &mut Slab<T>, i: u32) {
        *slab[i as usize].links() = Links {
            prev: self.tail,
            next: NIL,
        };
        if self.tail == NIL {
            self.head = i;
        } else {
            slab[self.tail as usize].links().next = i;
        }
        self.tail = i;
        self.len += 1;
    }

    /// Removes record `i`, which must be on this list.
    pub fn unlink<const K: usize, T: Linked<K>>(&mut self, slab: &mut Slab<T>, i: u32) {
        let Links { prev, next } = *slab[i as usize].links();
        if prev == NIL {
            self.head = next;
        } else {
            slab[prev as usize].links().next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            slab[next as usize].links().prev = prev;
        }
        *slab[i as usize].links() = Links::default();
        self.len -= 1;
    }

    /// The record after `i` on a list of family `K`.
    pub fn next<const K: usize, T: Linked<K>>(slab: &mut Slab<T>, i: u32) -> Option<u32> {
        let next = slab[i as usize].links().next;
        (next != NIL).then_some(next)
    }
}

/// Inserts record `i` right after `at` on a headless chain of family `K` (a chain
/// whose first member is tracked by its owner, e.g. a port slot).
pub fn chain_insert_after<const K: usize, T: Linked<K>>(slab: &mut Slab<T>, at: u32, i: u32) {
    let next = slab[at as usize].links().next;
    *slab[i as usize].links() = Links { prev: at, next };
    slab[at as usize].links().next = i;
    if next != NIL {
        slab[next as usize].links().prev = i;
    }
}

/// Removes record `i` from its headless chain; returns its successor, which becomes
/// the chain's first member if `i` was first.
pub fn chain_unlink<const K: usize, T: Linked<K>>(slab: &mut Slab<T>, i: u32) -> Option<u32> {
    let Links { prev, next } = *slab[i as usize].links();
    if prev != NIL {
        slab[prev as usize].links().next = next;
    }
    if next != NIL {
        slab[next as usize].links().prev = prev;
    }
    *slab[i as usize].links() = Links::default();
    (next != NIL).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Node(Links);
    impl Linked<0> for Node {
        fn links(&mut self) -> &mut Links {
            &mut self.0
        }
    }

    fn collect(list: &List, slab: &mut Slab<Node>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = list.front();
        while let Some(i) = at {
            out.push(i);
            at = List::next::<0, _>(slab, i);
        }
        out
    }

    #[test]
    fn push_unlink_keeps_order() {
        let mut slab = Slab::new();
        let ids: Vec<u32> = (0..4)
            .map(|_| slab.insert(Node::default()) as u32)
            .collect();
        let mut list = List::default();
        for &i in &ids {
            list.push_back::<0, _>(&mut slab, i);
        }
        assert_eq!(collect(&list, &mut slab), ids);
        list.unlink::<0, _>(&mut slab, ids[0]);
        list.unlink::<0, _>(&mut slab, ids[2]);
        list.push_back::<0, _>(&mut slab, ids[0]);
        assert_eq!(collect(&list, &mut slab), vec![ids[1], ids[3], ids[0]]);
        assert_eq!(list.len(), 3);
        for i in [ids[1], ids[3], ids[0]] {
            list.unlink::<0, _>(&mut slab, i);
        }
        assert!(list.is_empty());
        assert_eq!(list.front(), None);
    }
}
