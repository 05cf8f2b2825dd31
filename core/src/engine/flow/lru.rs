//! Per-class LRU lists for expiry (VPP keeps one per class: TCP established, TCP
//! transitory, UDP, ICMP). Within a class every record has the same timeout, so the
//! least recently used record is always the next to expire: expiry looks only at list
//! fronts, never scans the table.
//!
//! A record is moved to the back only when its whole-second timestamp changes, so a
//! busy flow costs one relink per second, not one per packet.

use super::list::{Linked, List};
use super::track::{Class, Timeouts};
use slab::Slab;

/// A record with an idle timer.
pub trait Timed: Linked<0> {
    fn last(&self) -> u32;
    fn set_last(&mut self, now: u32);
    fn class(&self) -> Class;
    fn set_class(&mut self, class: Class);
}

/// Implements `Linked<0>` and `Timed` for a record type with the fields
/// `lru: Links`, `last: u32` and `class: u8` (a `Class` as its discriminant).
#[macro_export]
macro_rules! timed_record {
    ($record:ty) => {
        impl $crate::engine::flow::list::Linked<0> for $record {
            fn links(&mut self) -> &mut $crate::engine::flow::list::Links {
                &mut self.lru
            }
        }

        impl $crate::engine::flow::lru::Timed for $record {
            fn last(&self) -> u32 {
                self.last
            }
            fn set_last(&mut self, now: u32) {
                self.last = now;
            }
            fn class(&self) -> $crate::engine::flow::track::Class {
                $crate::engine::flow::track::Class::ALL[usize::from(self.class)]
            }
            fn set_class(&mut self, class: $crate::engine::flow::track::Class) {
                self.class = class as u8;
            }
        }
    };
}

/// One list per class.
#[derive(Debug, Default)]
pub struct Lru {
    lists: [List; Class::COUNT],
}

impl Lru {
    pub fn count(&self, class: Class) -> u32 {
        self.lists[class as usize].len()
    }

    pub fn insert<T: Timed>(&mut self, slab: &mut Slab<T>, idx: u32) {
        let class = slab[idx as usize].class();
        self.lists[class as usize].push_back::<0, _>(slab, idx);
    }

    pub fn remove<T: Timed>(&mut self, slab: &mut Slab<T>, idx: u32) {
        let class = slab[idx as usize].class();
        self.lists[class as usize].unlink::<0, _>(slab, idx);
    }

    /// Records activity: moves the record to `class` and, if `refresh`, restarts its
    /// idle timer at `now`.
    #[inline]
    pub fn touch<T: Timed>(
        &mut self,
        slab: &mut Slab<T>,
        idx: u32,
        class: Class,
        refresh: bool,
        now: u32,
    ) {
        let r = &slab[idx as usize];
        if (refresh && r.last() != now) || r.class() != class {
            self.remove(slab, idx);
            let r = &mut slab[idx as usize];
            if refresh {
                r.set_last(now);
            }
            r.set_class(class);
            self.insert(slab, idx);
        }
    }

    /// A record whose idle timeout has passed, if any.
    pub fn next_expired<T: Timed>(
        &self,
        slab: &Slab<T>,
        timeouts: &Timeouts,
        now: u32,
    ) -> Option<u32> {
        Class::ALL.iter().find_map(|&class| {
            let idx = self.lists[class as usize].front()?;
            let expires = slab[idx as usize]
                .last()
                .saturating_add(timeouts.get(class));
            (expires <= now).then_some(idx)
        })
    }
}
