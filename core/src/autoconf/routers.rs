//! The Default Router List (RFC 4861 section 6.3.4) and the Prefix List's on-link
//! prefixes, each entry with its expiry.
//!
//! A router is added by an Advertisement with a non-zero Router Lifetime, its expiry
//! reset by each later one, and removed by one with lifetime 0 or when its lifetime
//! runs out. At most `MAX_ROUTERS` are kept (RFC 4861 section 6.3.4 asks hosts to keep
//! at least two); a router beyond them is counted and not added. The default router
//! is the one learned first of those still listed (section 6.3.6 lets a host pick any
//! router not known unreachable; natbox keeps its choice while it lives, so a second
//! router's advertisements never move the default route and rebuild the tables).
//! Router Preference (RFC 4191) is not read.
//!
//! On-link prefixes (L flag, section 6.3.4) are kept likewise, at most `MAX_PREFIXES`:
//! they give a DHCPv6 address its prefix length (`autoconf` module doc).

use ipnet::Ipv6Net;
use std::net::Ipv6Addr;

/// Routers kept.
pub const MAX_ROUTERS: usize = 4;
/// On-link prefixes kept.
pub const MAX_PREFIXES: usize = 8;

/// An entry and its expiry (ms; `None`: never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed<T> {
    pub item: T,
    pub expires: Option<u64>,
}

/// A bounded list of timed entries, in order of learning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedList<T> {
    entries: Vec<Timed<T>>,
    max: usize,
}

/// What `TimedList::update` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    Added,
    Refreshed,
    Removed,
    /// The list was full: not added.
    Full,
    /// Lifetime 0 for an entry not listed.
    Nothing,
}

impl<T: Copy + PartialEq> TimedList<T> {
    pub fn new(max: usize) -> Self {
        TimedList {
            entries: Vec::with_capacity(max),
            max,
        }
    }

    /// Applies an advertised lifetime for `item`: `Some(0)` removes it, `None` keeps
    /// it forever, anything else sets its expiry.
    pub fn update(&mut self, item: T, lifetime_ms: Option<u64>, now: u64) -> Update {
        let at = self.entries.iter().position(|e| e.item == item);
        match (at, lifetime_ms) {
            (Some(i), Some(0)) => {
                self.entries.remove(i);
                Update::Removed
            }
            (None, Some(0)) => Update::Nothing,
            (Some(i), life) => {
                self.entries[i].expires = life.map(|l| now.saturating_add(l));
                Update::Refreshed
            }
            (None, _) if self.entries.len() >= self.max => Update::Full,
            (None, life) => {
                self.entries.push(Timed {
                    item,
                    expires: life.map(|l| now.saturating_add(l)),
                });
                Update::Added
            }
        }
    }

    /// Removes the entries whose lifetime ran out by `now`; whether any did.
    pub fn expire(&mut self, now: u64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.expires.is_none_or(|t| t > now));
        self.entries.len() != before
    }

    /// The earliest expiry.
    pub fn next_expiry(&self) -> Option<u64> {
        self.entries.iter().filter_map(|e| e.expires).min()
    }

    pub fn first(&self) -> Option<&Timed<T>> {
        self.entries.first()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Timed<T>> {
        self.entries.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The longest of `prefixes` that contains `addr`, if any.
pub fn longest_containing(prefixes: &TimedList<Ipv6Net>, addr: &Ipv6Addr) -> Option<Ipv6Net> {
    prefixes
        .iter()
        .map(|e| e.item)
        .filter(|p| p.contains(addr))
        .max_by_key(Ipv6Net::prefix_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, n)
    }

    #[test]
    fn rfc4861_6_3_4_lifetime_zero_removes_and_expiry_times_out() {
        let mut l = TimedList::new(MAX_ROUTERS);
        assert_eq!(l.update(r(1), Some(1_800_000), 0), Update::Added);
        assert_eq!(l.update(r(2), Some(600_000), 0), Update::Added);
        assert_eq!(l.update(r(1), Some(1_800_000), 1000), Update::Refreshed);
        assert_eq!(l.next_expiry(), Some(600_000));
        assert!(!l.expire(599_999));
        assert!(l.expire(600_000));
        assert_eq!(l.first().map(|e| e.item), Some(r(1)));
        assert_eq!(l.update(r(1), Some(0), 2000), Update::Removed);
        assert!(l.is_empty());
        assert_eq!(l.update(r(1), Some(0), 2000), Update::Nothing);
    }

    #[test]
    fn rfc4861_6_3_4_the_list_is_bounded_and_the_first_learned_stays_first() {
        let mut l = TimedList::new(MAX_ROUTERS);
        for n in 1..=MAX_ROUTERS as u16 {
            assert_eq!(l.update(r(n), Some(1000), 0), Update::Added);
        }
        assert_eq!(l.update(r(99), Some(1000), 0), Update::Full);
        assert_eq!(l.first().map(|e| e.item), Some(r(1)));
    }

    #[test]
    fn the_longest_on_link_prefix_holding_an_address_wins() {
        let mut l = TimedList::new(MAX_PREFIXES);
        let p = |s: &str| s.parse::<Ipv6Net>().unwrap();
        l.update(p("2001:db8::/48"), None, 0);
        l.update(p("2001:db8:0:1::/64"), None, 0);
        let a = "2001:db8:0:1::5".parse().unwrap();
        assert_eq!(longest_containing(&l, &a), Some(p("2001:db8:0:1::/64")));
        assert_eq!(
            longest_containing(&l, &"2001:db9::1".parse().unwrap()),
            None
        );
    }
}
