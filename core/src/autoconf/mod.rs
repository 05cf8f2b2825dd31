//! IPv6 autoconfiguration of one port from Router Advertisements, sans I/O like the
//! engine and `dhcp4`: the default router (RFC 4861 sections 6.3.4 and 6.3.7) and a
//! stateless address (RFC 4862). The caller passes the time in milliseconds and a seed
//! (for the solicitation delay, `dhcp4::rng`), hands it the IPv6 datagrams of Router
//! Advertisements received on the port, carries out the `Action`s it asks for, and
//! reads the router and the address it holds (`router`, `address`) to put in force.
//!
//! What the driver owes it:
//! - every Router Advertisement received on the port (the engine validates them and
//!   delivers them to a `RouterAdverts` binding); `receive` checks RFC 4861 section
//!   6.1.2 again (hop limit 255, a link-local source, the checksum, code 0, length,
//!   option lengths), so it can be fed any datagram;
//! - `Action::SolicitRouters`: a Router Solicitation out of the port (from its
//!   link-local address, to all-routers, with its link-layer address);
//! - `Action::DadProbe(a)`: a Duplicate Address Detection solicitation for `a` from
//!   the unspecified address and a watch for an answer (`Engine::probe6`), and
//!   `Action::DadVerdict(a)`: the end of the watch, answered with `dad_result`;
//! - `handle_timeout` once `poll_timeout` has passed.
//!
//! Router solicitation (RFC 4861 section 6.3.7): at start, after a random delay of up
//! to MAX_RTR_SOLICITATION_DELAY (1 s), then every RTR_SOLICITATION_INTERVAL (4 s),
//! MAX_RTR_SOLICITATIONS (3) in all, until a valid Advertisement arrives. When the
//! last router of the list goes (lifetime 0 or expiry) another round of at most three
//! starts, so a box whose router restarted finds the next one without waiting for its
//! periodic advertisements (RFC 7559's idea, bounded).
//!
//! The router (`routers`): the first of the Default Router List, learned from
//! Advertisements with a non-zero Router Lifetime, removed by lifetime 0 or expiry.
//! The address (`slaac`): formed from the first /64 Prefix Information option with the
//! A flag, in use once Duplicate Address Detection passes (`dad`), until its valid
//! lifetime ends. On-link prefixes (L flag) are kept for `on_link_prefix`, which gives
//! a DHCPv6 address (always a /128 in IA_NA) the prefix length of its link: the
//! longest on-link prefix that holds it, else /128 and every destination through the
//! router (RFC 5942 section 4: an address says nothing of what is on-link).
//!
//! Not read: Router Preference (RFC 4191), the Advertisement's hop limit, reachable
//! time and retrans timer (the engine keeps its own neighbour timers, `dad` RFC 4862's
//! defaults) and its MTU option (the port keeps its configured MTU, as with a DHCPv4
//! lease). RAs are accepted from any link-local source on the port: the port is the
//! outside one, where the cloud's router is (RFC 6105's RA-Guard is the switch's job).

pub mod dad;
pub mod routers;
pub mod slaac;

use crate::dhcp4::rng::Rng;
use crate::wire::checksum::pseudo_v6;
use crate::wire::ethernet::Mac;
use crate::wire::ra::RouterAdvert;
use crate::wire::{icmpv6, ipv6, proto};
use dad::Step;
use ipnet::Ipv6Net;
use routers::{TimedList, Update};
use slaac::{AddrState, Refusal, Slaac};
use std::collections::VecDeque;
use std::net::Ipv6Addr;

/// RFC 4861 section 10 host constants.
pub const MAX_RTR_SOLICITATION_DELAY_MS: u64 = 1000;
pub const RTR_SOLICITATION_INTERVAL_MS: u64 = 4000;
pub const MAX_RTR_SOLICITATIONS: u32 = 3;

/// What the port learns from Router Advertisements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Its default router (no `gateway6` configured).
    pub router: bool,
    /// Its address (`ipv6 = "slaac"`).
    pub slaac: bool,
}

/// What the driver must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send a Router Solicitation (RFC 4861 section 6.3.7).
    SolicitRouters,
    /// Send a DAD Neighbor Solicitation for the address from :: and watch for an
    /// answer (RFC 4862 section 5.4.2).
    DadProbe(Ipv6Addr),
    /// Stop watching for the address and call `dad_result`.
    DadVerdict(Ipv6Addr),
}

/// Why a received datagram was not acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Not a whole Router Advertisement: bad IPv6 or ICMPv6 lengths, a code other than
    /// 0, an option of length 0 or past the end (RFC 4861 section 6.1.2).
    Malformed,
    /// Hop limit not 255: it crossed a router (section 6.1.2).
    HopLimit,
    /// Source not link-local (section 6.1.2).
    NotLinkLocal,
    /// The ICMPv6 checksum does not verify.
    BadChecksum,
}

impl Ignored {
    pub const ALL: [Ignored; 4] = [
        Ignored::Malformed,
        Ignored::HopLimit,
        Ignored::NotLinkLocal,
        Ignored::BadChecksum,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Ignored::Malformed => "malformed",
            Ignored::HopLimit => "hop_limit",
            Ignored::NotLinkLocal => "not_link_local",
            Ignored::BadChecksum => "bad_checksum",
        }
    }
}

/// What the autoconfiguration counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Router Advertisements received (acted on or ignored).
    pub received: u64,
    /// Of those, not acted on, by `Ignored as usize`.
    pub ignored: [u64; Ignored::ALL.len()],
    /// Router Solicitations asked for.
    pub solicits: u64,
    /// Routers not added: the list was full.
    pub routers_refused: u64,
    /// Prefix Information options with the A flag that formed no address.
    pub prefixes_refused: u64,
    /// Duplicate Address Detection runs that found the address in use.
    pub duplicates: u64,
}

impl Counters {
    pub fn ignored(&self, reason: Ignored) -> u64 {
        self.ignored[reason as usize]
    }
}

/// What the shell shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub mode: Mode,
    /// The routers and the milliseconds each has left (`None`: infinite), the default
    /// first.
    pub routers: Vec<(Ipv6Addr, Option<u64>)>,
    /// The autoconfigured address, whether tentative, assigned or duplicate.
    pub address: Option<Slaac>,
    /// Milliseconds its valid and preferred lifetimes have left.
    pub valid_left_ms: Option<u64>,
    pub preferred_left_ms: Option<u64>,
    /// The M flag of the last Advertisement (addresses by DHCPv6).
    pub managed: bool,
    pub counters: Counters,
    pub last_refusal: Option<Refusal>,
}

impl Snapshot {
    /// `tentative`, `preferred`, `deprecated` or `duplicate` (RFC 4862 section 2).
    pub fn address_state(&self) -> Option<&'static str> {
        let s = self.address.as_ref()?;
        Some(match s.state {
            AddrState::Tentative(_) => "tentative",
            AddrState::Duplicate => "duplicate",
            AddrState::Assigned if self.preferred_left_ms == Some(0) => "deprecated",
            AddrState::Assigned => "preferred",
        })
    }
}

/// One port's autoconfiguration (module doc).
#[derive(Debug, Clone)]
pub struct Autoconf {
    mac: Mac,
    mode: Mode,
    rng: Rng,
    routers: TimedList<Ipv6Addr>,
    on_link: TimedList<Ipv6Net>,
    address: Option<Slaac>,
    /// Solicitations sent in this round, and when the next is due (none: not
    /// soliciting).
    solicits: u32,
    next_solicit: Option<u64>,
    managed: bool,
    actions: VecDeque<Action>,
    counters: Counters,
    last_refusal: Option<Refusal>,
}

impl Autoconf {
    /// Starts the port's autoconfiguration at `now`: the first Router Solicitation
    /// is due within `MAX_RTR_SOLICITATION_DELAY_MS`.
    pub fn new(mac: Mac, mode: Mode, seed: u64, now: u64) -> Autoconf {
        let mut a = Autoconf {
            mac,
            mode,
            rng: Rng::new(seed),
            routers: TimedList::new(routers::MAX_ROUTERS),
            on_link: TimedList::new(routers::MAX_PREFIXES),
            address: None,
            solicits: 0,
            next_solicit: None,
            managed: false,
            actions: VecDeque::new(),
            counters: Counters::default(),
            last_refusal: None,
        };
        a.start_soliciting(now);
        a
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn start_soliciting(&mut self, now: u64) {
        self.solicits = 0;
        let delay = self.rng.up_to(MAX_RTR_SOLICITATION_DELAY_MS);
        self.next_solicit = Some(now.saturating_add(delay));
    }

    /// The default router, when the port learns it.
    pub fn router(&self) -> Option<Ipv6Addr> {
        self.routers
            .first()
            .map(|e| e.item)
            .filter(|_| self.mode.router)
    }

    /// The autoconfigured address once Duplicate Address Detection passed.
    pub fn address(&self) -> Option<Ipv6Net> {
        self.address
            .filter(|s| s.state == AddrState::Assigned)
            .map(|s| s.net)
    }

    /// `addr` with the prefix length of the longest on-link prefix that holds it, or
    /// /128 (module doc).
    pub fn on_link_prefix(&self, addr: Ipv6Addr) -> Ipv6Net {
        let len = routers::longest_containing(&self.on_link, &addr).map_or(128, |p| p.prefix_len());
        Ipv6Net::new(addr, len).unwrap_or_else(|_| Ipv6Net::from(addr))
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` has something to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        let dad = match self.address.map(|s| s.state) {
            Some(AddrState::Tentative(d)) => Some(d.deadline()),
            _ => None,
        };
        let valid = self.address.and_then(|s| s.valid_until);
        [
            self.next_solicit,
            dad,
            valid,
            self.routers.next_expiry(),
            self.on_link.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs what is due at `now`: solicitations, the DAD steps, expiries.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.next_solicit.is_some_and(|t| now >= t) {
            self.solicits += 1;
            self.counters.solicits += 1;
            self.actions.push_back(Action::SolicitRouters);
            self.next_solicit = (self.solicits < MAX_RTR_SOLICITATIONS)
                .then(|| now.saturating_add(RTR_SOLICITATION_INTERVAL_MS));
        }
        self.dad_step(now);
        if self
            .address
            .is_some_and(|s| s.valid_until.is_some_and(|t| now >= t))
        {
            self.address = None;
        }
        self.on_link.expire(now);
        if self.routers.expire(now) && self.routers.is_empty() {
            self.start_soliciting(now);
        }
    }

    /// The driver's answer to `Action::DadVerdict`: whether another node answered for
    /// the address. Ignored when no detection is waiting for it.
    pub fn dad_result(&mut self, conflict: bool) {
        if let Some(s) = self.address.as_mut() {
            if matches!(s.state, AddrState::Tentative(_)) {
                s.state = if conflict {
                    self.counters.duplicates += 1;
                    AddrState::Duplicate
                } else {
                    AddrState::Assigned
                };
            }
        }
    }

    /// Offers an IPv6 datagram received on the port: false if it is not a Router
    /// Advertisement at all; true if it is one, acted on or counted as ignored.
    pub fn receive(&mut self, now: u64, ip: &[u8]) -> bool {
        let Some((src, hop_limit, icmp, pseudo_ok)) = router_advert(ip) else {
            return false;
        };
        self.counters.received += 1;
        let verdict = match RouterAdvert::new_checked(icmp) {
            Err(_) => Err(Ignored::Malformed),
            Ok(_) if hop_limit != 255 => Err(Ignored::HopLimit),
            Ok(_) if !src.is_unicast_link_local() => Err(Ignored::NotLinkLocal),
            Ok(_) if !pseudo_ok => Err(Ignored::BadChecksum),
            Ok(ra) => Ok(ra),
        };
        match verdict {
            Ok(ra) => self.advert(now, src, &ra),
            Err(reason) => self.counters.ignored[reason as usize] += 1,
        }
        true
    }

    /// A valid Advertisement from `src` (RFC 4861 section 6.3.4).
    fn advert(&mut self, now: u64, src: Ipv6Addr, ra: &RouterAdvert<'_>) {
        self.next_solicit = None;
        self.managed = ra.managed();
        if self.mode.router {
            let lifetime = u64::from(ra.router_lifetime()) * 1000;
            let update = self.routers.update(src, Some(lifetime), now);
            if update == Update::Full {
                self.counters.routers_refused += 1;
            }
            if update == Update::Removed && self.routers.is_empty() {
                self.start_soliciting(now);
            }
        }
        for p in ra.prefixes() {
            if p.on_link && !p.prefix.is_unicast_link_local() {
                if let Ok(net) = Ipv6Net::new(p.prefix, p.prefix_len) {
                    let valid = slaac::lifetime_ms(p.valid_lifetime);
                    self.on_link.update(net.trunc(), valid, now);
                }
            }
            if !self.mode.slaac {
                continue;
            }
            if let Err(refusal) = slaac::consider(&mut self.address, &p, self.mac, now) {
                self.counters.prefixes_refused += 1;
                self.last_refusal = Some(refusal);
            }
        }
        // A new tentative address's first solicitation is due now.
        self.dad_step(now);
    }

    /// Asks for what a tentative address's detection has due at `now`.
    fn dad_step(&mut self, now: u64) {
        let Some(Slaac {
            state: AddrState::Tentative(d),
            ..
        }) = self.address.as_mut()
        else {
            return;
        };
        match d.step(now) {
            Some(Step::Probe(a)) => self.actions.push_back(Action::DadProbe(a)),
            Some(Step::Verdict(a)) => self.actions.push_back(Action::DadVerdict(a)),
            None => {}
        }
    }

    /// What the shell shows, at `now`.
    pub fn snapshot(&self, now: u64) -> Snapshot {
        let left = |t: Option<u64>| t.map(|t| t.saturating_sub(now));
        Snapshot {
            mode: self.mode,
            routers: self
                .routers
                .iter()
                .filter(|_| self.mode.router)
                .map(|e| (e.item, left(e.expires)))
                .collect(),
            address: self.address,
            valid_left_ms: self.address.and_then(|s| left(s.valid_until)),
            preferred_left_ms: self.address.and_then(|s| left(s.preferred_until)),
            managed: self.managed,
            counters: self.counters.clone(),
            last_refusal: self.last_refusal,
        }
    }
}

/// The source, hop limit and ICMPv6 message of `ip` if it is an unfragmented ICMPv6
/// Router Advertisement (type 134), with whether its checksum verifies.
fn router_advert(ip: &[u8]) -> Option<(Ipv6Addr, u8, &[u8], bool)> {
    let p = ipv6::Packet::new_checked(ip).ok()?;
    let upper = p.upper_layer().ok()?;
    if upper.protocol != proto::ICMPV6 || upper.fragment.is_some() {
        return None;
    }
    let icmp = ip.get(upper.offset..p.total_len())?;
    if icmp.first() != Some(&icmpv6::ROUTER_ADVERT) {
        return None;
    }
    let pseudo = pseudo_v6(&p.src(), &p.dst(), proto::ICMPV6, icmp.len() as u32);
    let ok = pseudo.add_bytes(icmp).finish() == 0;
    Some((p.src(), p.hop_limit(), icmp, ok))
}
