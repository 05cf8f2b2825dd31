//! Stateless address autoconfiguration of one address (RFC 4862 section 5.5.3) from
//! the Prefix Information options of Router Advertisements.
//!
//! - An option is used when its A flag is set, its prefix is not link-local, and its
//!   preferred lifetime does not exceed its valid lifetime (5.5.3 a-c); refusals are
//!   named (`Refusal`), and a prefix without the A flag is simply not for SLAAC.
//! - A new address is formed only from a /64 (5.5.3 d: the prefix and the 64-bit
//!   interface identifier must make 128 bits), with the modified EUI-64 identifier of
//!   the port's MAC (RFC 4291 appendix A), the one natbox's link-local address
//!   already uses. RFC 7217's stable opaque identifiers were weighed: they keep the
//!   MAC out of the address, which matters for a host that roams, not for a NAT
//!   instance whose addresses the cloud assigns and lists anyway; EUI-64 needs no
//!   secret key to keep across reboots. Privacy addresses (RFC 8981) make no sense for
//!   a router's own address.
//! - The port holds one address: the first usable prefix forms it, others are left
//!   alone while it lives (the configuration's `ipv6` is one address too).
//! - A new address is tentative until Duplicate Address Detection passes (`dad`); a
//!   duplicate is kept, unused, until its valid lifetime ends (5.4.5: an address from
//!   the hardware identifier is not retried, the same one would be formed again).
//! - Lifetimes: a later option for the same prefix sets the preferred lifetime, and
//!   the valid lifetime by the two-hour rule of 5.5.3 e (a short valid lifetime can
//!   shorten a longer one to two hours at most, so a forged advertisement cannot
//!   expire the address at once). The address is removed when its valid lifetime ends.
//!   Past its preferred lifetime it is deprecated (shown as such) and still used: it
//!   is the port's only address, and 5.5.4 allows a deprecated address where no
//!   preferred one exists.

use super::dad::Dad;
use crate::wire::ethernet::Mac;
use crate::wire::ra::{PrefixInfo, INFINITE};
use ipnet::Ipv6Net;
use std::fmt;
use std::net::Ipv6Addr;

/// RFC 4862 section 5.5.3 e.
const TWO_HOURS_MS: u64 = 2 * 3600 * 1000;

/// Where an autoconfigured address stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrState {
    /// Duplicate Address Detection under way: not used yet.
    Tentative(Dad),
    /// In use.
    Assigned,
    /// Another node on the link has it: not used.
    Duplicate,
}

/// The autoconfigured address and its lifetimes (ms; `None`: infinite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slaac {
    pub net: Ipv6Net,
    pub state: AddrState,
    pub valid_until: Option<u64>,
    pub preferred_until: Option<u64>,
}

/// Why a Prefix Information option with the A flag formed no address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    LinkLocal(Ipv6Net),
    PreferredOverValid(Ipv6Net),
    NotSlash64(Ipv6Net),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::LinkLocal(p) => write!(
                f,
                "{p}: a link-local prefix is never autoconfigured (RFC 4862 5.5.3 b)"
            ),
            Refusal::PreferredOverValid(p) => write!(
                f,
                "{p}: preferred lifetime longer than the valid lifetime (RFC 4862 5.5.3 c)"
            ),
            Refusal::NotSlash64(p) => write!(
                f,
                "{p}: SLAAC forms addresses from /64 prefixes only (RFC 4862 5.5.3 d, \
                 64-bit interface identifiers); advertise a /64 or set ipv6 = \"dhcp\""
            ),
        }
    }
}

/// A lifetime in seconds as milliseconds, `None` for infinity.
pub(super) fn lifetime_ms(secs: u32) -> Option<u64> {
    (secs != INFINITE).then(|| u64::from(secs) * 1000)
}

/// `lifetime_ms` from `now` as an instant.
fn until(now: u64, secs: u32) -> Option<u64> {
    lifetime_ms(secs).map(|ms| now.saturating_add(ms))
}

/// The address `prefix` (a /64) forms with `mac`'s interface identifier.
pub fn eui64_address(prefix: Ipv6Addr, mac: Mac) -> Ipv6Addr {
    let mut a = prefix.octets();
    a[8..].copy_from_slice(&mac.eui64_interface_id());
    Ipv6Addr::from(a)
}

/// Acts on one Prefix Information option: forms a tentative address (`Ok(true)`),
/// updates the lifetimes of the one held, or leaves things alone (`Ok(false)`).
pub fn consider(
    held: &mut Option<Slaac>,
    p: &PrefixInfo,
    mac: Mac,
    now: u64,
) -> Result<bool, Refusal> {
    if !p.autonomous {
        return Ok(false);
    }
    let prefix =
        Ipv6Net::new(p.prefix, p.prefix_len).map_or_else(|_| Ipv6Net::default(), |n| n.trunc());
    if p.prefix.is_unicast_link_local() {
        return Err(Refusal::LinkLocal(prefix));
    }
    if p.preferred_lifetime > p.valid_lifetime {
        return Err(Refusal::PreferredOverValid(prefix));
    }
    match held {
        Some(s) if s.net.trunc() == prefix => {
            s.preferred_until = until(now, p.preferred_lifetime);
            s.valid_until = two_hour_rule(s.valid_until, p.valid_lifetime, now);
            Ok(false)
        }
        Some(_) => Ok(false),
        None if p.valid_lifetime == 0 => Ok(false),
        None if p.prefix_len != 64 => Err(Refusal::NotSlash64(prefix)),
        None => {
            let addr = eui64_address(prefix.network(), mac);
            *held = Some(Slaac {
                net: Ipv6Net::new(addr, 64).unwrap_or(prefix),
                state: AddrState::Tentative(Dad::new(addr, now)),
                valid_until: until(now, p.valid_lifetime),
                preferred_until: until(now, p.preferred_lifetime),
            });
            Ok(true)
        }
    }
}

/// RFC 4862 section 5.5.3 e: the new valid lifetime's end, given the one in force
/// (`current`, `None` infinite) and the one received (seconds).
fn two_hour_rule(current: Option<u64>, received: u32, now: u64) -> Option<u64> {
    let remaining = current.map_or(u64::MAX, |c| c.saturating_sub(now));
    let received_ms = lifetime_ms(received).unwrap_or(u64::MAX);
    if received_ms > TWO_HOURS_MS || received_ms > remaining {
        until(now, received)
    } else if remaining <= TWO_HOURS_MS {
        current
    } else {
        Some(now.saturating_add(TWO_HOURS_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

    fn pio(prefix: &str, len: u8, valid: u32, preferred: u32) -> PrefixInfo {
        PrefixInfo {
            prefix: prefix.parse().unwrap(),
            prefix_len: len,
            on_link: true,
            autonomous: true,
            valid_lifetime: valid,
            preferred_lifetime: preferred,
        }
    }

    #[test]
    fn rfc4862_5_3_the_address_is_the_prefix_and_the_modified_eui64_identifier() {
        assert_eq!(
            eui64_address("2001:db8:ff::".parse().unwrap(), MAC),
            "2001:db8:ff::5054:ff:fe12:3456"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
    }

    #[test]
    fn rfc4862_5_5_3_d_a_slash64_forms_a_tentative_address_others_are_refused() {
        let mut held = None;
        assert_eq!(
            consider(&mut held, &pio("2001:db8::", 48, 600, 300), MAC, 0),
            Err(Refusal::NotSlash64("2001:db8::/48".parse().unwrap()))
        );
        assert_eq!(
            consider(&mut held, &pio("2001:db8:ff::", 64, 600, 300), MAC, 0),
            Ok(true)
        );
        let s = held.expect("an address");
        assert_eq!(s.net.to_string(), "2001:db8:ff:0:5054:ff:fe12:3456/64");
        assert!(matches!(s.state, AddrState::Tentative(_)));
        assert_eq!(
            (s.valid_until, s.preferred_until),
            (Some(600_000), Some(300_000))
        );
        // A second prefix forms nothing while the first's address lives.
        assert_eq!(
            consider(&mut held, &pio("2001:db8:ee::", 64, 600, 300), MAC, 0),
            Ok(false)
        );
        assert_eq!(held.map(|s| s.net), Some(s.net));
    }

    #[test]
    fn rfc4862_5_5_3_abc_no_a_flag_link_local_and_preferred_over_valid() {
        let mut held = None;
        let mut p = pio("2001:db8:ff::", 64, 600, 300);
        p.autonomous = false;
        assert_eq!(consider(&mut held, &p, MAC, 0), Ok(false));
        assert!(matches!(
            consider(&mut held, &pio("fe80::", 64, 600, 300), MAC, 0),
            Err(Refusal::LinkLocal(_))
        ));
        assert!(matches!(
            consider(&mut held, &pio("2001:db8:ff::", 64, 300, 600), MAC, 0),
            Err(Refusal::PreferredOverValid(_))
        ));
        assert_eq!(
            consider(&mut held, &pio("2001:db8:ff::", 64, 0, 0), MAC, 0),
            Ok(false),
            "valid lifetime 0 forms nothing"
        );
        assert!(held.is_none());
    }

    #[test]
    fn rfc4862_5_5_3_e_the_two_hour_rule() {
        let h = 3600u32;
        let mut held = None;
        consider(&mut held, &pio("2001:db8:ff::", 64, 10 * h, 10 * h), MAC, 0).unwrap();
        let valid = |held: &Option<Slaac>| held.and_then(|s| s.valid_until);
        // A short lifetime shortens a long one to two hours, never less.
        consider(&mut held, &pio("2001:db8:ff::", 64, 60, 0), MAC, 0).unwrap();
        assert_eq!(valid(&held), Some(u64::from(2 * h) * 1000));
        assert_eq!(held.and_then(|s| s.preferred_until), Some(0));
        // Once two hours or less remain, a shorter one is ignored ...
        consider(&mut held, &pio("2001:db8:ff::", 64, 60, 0), MAC, 1000).unwrap();
        assert_eq!(valid(&held), Some(u64::from(2 * h) * 1000));
        // ... and a longer one, or one above two hours, is taken.
        consider(&mut held, &pio("2001:db8:ff::", 64, 3 * h, 0), MAC, 1000).unwrap();
        assert_eq!(valid(&held), Some(1000 + u64::from(3 * h) * 1000));
        consider(
            &mut held,
            &pio("2001:db8:ff::", 64, INFINITE, INFINITE),
            MAC,
            1000,
        )
        .unwrap();
        assert_eq!(valid(&held), None, "infinite");
        consider(&mut held, &pio("2001:db8:ff::", 64, 60, 60), MAC, 2000).unwrap();
        assert_eq!(
            valid(&held),
            Some(2000 + TWO_HOURS_MS),
            "infinity shortened to 2 h"
        );
    }
}
