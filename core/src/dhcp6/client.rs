//! The DHCPv6 client state machine for one IA_NA (RFC 8415 section 18), sans I/O.
//!
//! States and transitions:
//! - INIT: waits until its deadline (now at start; 10 s after a Decline or a refused
//!   Request, so a server that keeps offering what it then refuses is not hammered),
//!   then sends Solicit → SOLICITING.
//! - SOLICITING (18.2.1): Advertises are collected until the first retransmission
//!   time has passed, and the one with the highest Preference taken (the first of
//!   equals); one with Preference 255 is taken at once, and after the first RT the
//!   first valid one is. An Advertise is held to the rules of a Reply (`Lease`), so
//!   the client never requests what it would refuse. → REQUESTING.
//! - REQUESTING (18.2.2): Request to the chosen server for the advertised address.
//!   Reply with an address → PROBING; a refusal → INIT; no Reply after REQ_MAX_RC (10)
//!   transmissions → INIT (or, when a lease is held, back to it).
//! - PROBING (18.2.10.1): every address new to the client is checked by Duplicate
//!   Address Detection before use: the client emits [`Event::Probe`] and the driver
//!   answers [`Client::probe_result`]. Free → BOUND ([`Event::Bound`], or
//!   [`Event::AddressChanged`] after a renewal gave another address); in use → Decline
//!   (18.2.8, sent once: the box does not wait for its Reply) and INIT.
//! - BOUND: at T1 → RENEWING: Renew with the server's identifier. At T2 → REBINDING:
//!   Rebind, to any server. At the end of the valid lifetime → [`Event::Lost`], INIT.
//!   A Reply keeping the address → BOUND ([`Event::Renewed`]: nothing changes for
//!   sessions); another address → PROBING with the old lease still in force; the
//!   IA_NA's status NoBinding (the server lost it) → REQUESTING for the held address
//!   (18.2.10.1), the lease still in force; any other refusal is ignored and the
//!   renewal goes on. T1 and T2 of 0 are the client's to choose (21.4): half and
//!   four fifths of the preferred lifetime.
//!
//! The lease runs from the first transmission of the message that earned it, so the
//! client's view of expiry is never later than the server's.
//!
//! Retransmission (section 15): RT = IRT + RAND*IRT first (RAND in [0, 0.1] for the
//! first Solicit, in [-0.1, 0.1] otherwise), then 2*RT + RAND*RT, capped at MRT +
//! RAND*MRT; Solicit 1 s / 3600 s, Request 1 s / 30 s for 10 transmissions, Renew
//! and Rebind 10 s / 600 s until T2 or expiry. One transaction id per exchange; every
//! message carries the Elapsed Time since the exchange began (21.9). RAND comes from
//! the seeded PRNG (`dhcp4::rng`).
//!
//! Only Advertise and Reply messages with the exchange's transaction id, the client's
//! own Client Identifier and a Server Identifier are acted on (16.3, 16.10); every
//! other received message is counted under an [`Ignored`] reason, a refused lease with
//! its reason kept in [`Snapshot::last_refusal`].

use super::counters::{Counters, Ignored};
use super::message::{Outgoing, Reply, ADVERTISE, REPLY, STATUS_NO_BINDING, STATUS_SUCCESS};
use crate::dhcp4::rng::Rng;
use dhcproto::v6::MessageType;
use std::collections::VecDeque;
use std::fmt;
use std::net::Ipv6Addr;

/// RFC 8415 section 7.6 transmission parameters, in ms.
const SOL_TIMEOUT_MS: u64 = 1_000;
const SOL_MAX_RT_MS: u64 = 3_600_000;
const REQ_TIMEOUT_MS: u64 = 1_000;
const REQ_MAX_RT_MS: u64 = 30_000;
/// Request transmissions before giving up (REQ_MAX_RC).
pub const REQ_MAX_RC: u32 = 10;
const REN_TIMEOUT_MS: u64 = 10_000;
const REN_MAX_RT_MS: u64 = 600_000;
const REB_TIMEOUT_MS: u64 = 10_000;
const REB_MAX_RT_MS: u64 = 600_000;
/// The wait in INIT after a Decline or a refused Request.
pub const RETRY_WAIT_MS: u64 = 10_000;
/// A lifetime of all ones: infinity (section 7.7).
const INFINITY: u32 = u32::MAX;

/// What a Reply gives: one address of the IA_NA and its times, from one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The address (IA_NA addresses are /128: the prefix length is the link's).
    pub address: Ipv6Addr,
    /// Lifetimes and renewal times, seconds; `u32::MAX` is infinity.
    pub preferred_s: u32,
    pub valid_s: u32,
    pub t1_s: u32,
    pub t2_s: u32,
    /// The server's DUID.
    pub server_id: Vec<u8>,
    /// DNS servers (RFC 3646), informational.
    pub dns: Vec<Ipv6Addr>,
}

/// Why an Advertise or Reply gave no lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The message's Status Code is not Success.
    Status(u16),
    /// No IA_NA with the client's IAID.
    NoIaNa,
    /// The IA_NA's Status Code is not Success (NoAddrsAvail, NoBinding, ...).
    IaStatus(u16),
    /// T1 above a non-zero T2 (21.4: the IA_NA is discarded).
    T1OverT2 { t1: u32, t2: u32 },
    /// No IA Address with a valid lifetime.
    NoAddress,
    /// Preferred lifetime above the valid one (21.6: the address is discarded).
    PreferredOverValid(Ipv6Addr),
    /// Not a global unicast address (link-local, multicast, unspecified, loopback).
    NotUnicast(Ipv6Addr),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Status(s) => write!(f, "status code {s} ({})", status_name(*s)),
            Refusal::NoIaNa => f.write_str("no IA_NA for this client"),
            Refusal::IaStatus(s) => write!(f, "IA_NA status code {s} ({})", status_name(*s)),
            Refusal::T1OverT2 { t1, t2 } => write!(f, "T1 {t1} s above T2 {t2} s"),
            Refusal::NoAddress => f.write_str("no address with a valid lifetime in the IA_NA"),
            Refusal::PreferredOverValid(a) => {
                write!(f, "{a}: preferred lifetime above the valid lifetime")
            }
            Refusal::NotUnicast(a) => write!(f, "{a} is not a global unicast address"),
        }
    }
}

/// RFC 8415 section 21.13's names.
fn status_name(code: u16) -> &'static str {
    match code {
        0 => "Success",
        1 => "UnspecFail",
        2 => "NoAddrsAvail",
        3 => "NoBinding",
        4 => "NotOnLink",
        5 => "UseMulticast",
        6 => "NoPrefixAvail",
        _ => "unknown",
    }
}

impl Lease {
    /// The lease `reply` gives the client (module doc).
    fn from_reply(reply: &Reply) -> Result<Lease, Refusal> {
        if let Some(s) = reply.status.filter(|&s| s != STATUS_SUCCESS) {
            return Err(Refusal::Status(s));
        }
        let ia = reply.ia_na.as_ref().ok_or(Refusal::NoIaNa)?;
        if let Some(s) = ia.status.filter(|&s| s != STATUS_SUCCESS) {
            return Err(Refusal::IaStatus(s));
        }
        if ia.t2 != 0 && ia.t1 > ia.t2 {
            return Err(Refusal::T1OverT2 {
                t1: ia.t1,
                t2: ia.t2,
            });
        }
        let a = ia
            .addrs
            .iter()
            .find(|a| a.valid > 0 && a.status.is_none_or(|s| s == STATUS_SUCCESS))
            .ok_or(Refusal::NoAddress)?;
        if a.preferred > a.valid {
            return Err(Refusal::PreferredOverValid(a.addr));
        }
        let addr = a.addr;
        if addr.is_multicast()
            || addr.is_unspecified()
            || addr.is_loopback()
            || addr.is_unicast_link_local()
        {
            return Err(Refusal::NotUnicast(addr));
        }
        let share = |num: u64, den: u64| match a.preferred {
            INFINITY => INFINITY,
            p => u32::try_from(u64::from(p) * num / den).unwrap_or(INFINITY),
        };
        Ok(Lease {
            address: addr,
            preferred_s: a.preferred,
            valid_s: a.valid,
            t1_s: if ia.t1 == 0 { share(1, 2) } else { ia.t1 },
            t2_s: if ia.t2 == 0 { share(4, 5) } else { ia.t2 },
            server_id: reply.server_id.clone().unwrap_or_default(),
            dns: reply.dns.clone(),
        })
    }
}

/// What the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Check `address` by Duplicate Address Detection and answer with `probe_result`.
    Probe { address: Ipv6Addr },
    /// A lease to put in force.
    Bound(Lease),
    /// The lease was extended for the same address.
    Renewed(Lease),
    /// A renewal gave another address, checked free: `old`'s is gone, `new`'s in force.
    AddressChanged { old: Lease, new: Lease },
    /// The lease ended (or its renewal's new address was in use): remove its address.
    Lost { old: Lease },
}

/// The client's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Init,
    Soliciting,
    Requesting,
    Probing,
    Bound,
    Renewing,
    Rebinding,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "init",
            State::Soliciting => "soliciting",
            State::Requesting => "requesting",
            State::Probing => "probing",
            State::Bound => "bound",
            State::Renewing => "renewing",
            State::Rebinding => "rebinding",
        }
    }
}

/// What the shell shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub state: State,
    /// The lease in force.
    pub lease: Option<Lease>,
    pub valid_left_ms: Option<u64>,
    pub preferred_left_ms: Option<u64>,
    pub t1_left_ms: Option<u64>,
    pub t2_left_ms: Option<u64>,
    pub counters: Counters,
    pub last_refusal: Option<Refusal>,
}

/// A lease and when it began (ms).
#[derive(Debug, Clone)]
struct Held {
    lease: Lease,
    start: u64,
}

impl Held {
    fn at(&self, secs: u32) -> Option<u64> {
        (secs != INFINITY).then(|| self.start.saturating_add(u64::from(secs) * 1000))
    }
    fn t1(&self) -> Option<u64> {
        self.at(self.lease.t1_s)
    }
    fn t2(&self) -> Option<u64> {
        self.at(self.lease.t2_s)
    }
    fn expiry(&self) -> Option<u64> {
        self.at(self.lease.valid_s)
    }
    fn preferred_end(&self) -> Option<u64> {
        self.at(self.lease.preferred_s)
    }
}

/// One message exchange and its retransmission (section 15).
#[derive(Debug, Clone)]
struct Exchange {
    msg: Outgoing,
    began: u64,
    sends: u32,
    rt: u64,
    next: u64,
    irt: u64,
    mrt: u64,
}

#[derive(Debug, Clone)]
enum Phase {
    Init {
        until: u64,
    },
    Soliciting {
        x: Exchange,
        best: Option<(u8, Lease)>,
        collect_until: u64,
    },
    Requesting {
        x: Exchange,
        current: Option<Held>,
    },
    Probing {
        candidate: Held,
        current: Option<Held>,
    },
    Bound(Held),
    Renewing(Held, Exchange),
    Rebinding(Held, Exchange),
}

/// What is not the phase: identity, randomness, output queues, counters.
#[derive(Debug, Clone)]
struct Io {
    duid: Vec<u8>,
    iaid: u32,
    rng: Rng,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    counters: Counters,
    last_refusal: Option<Refusal>,
}

/// A DHCPv6 client for one port (module doc).
#[derive(Debug, Clone)]
pub struct Client {
    phase: Phase,
    io: Io,
}

impl Client {
    /// A client for the port with `mac`: its DUID is DUID-LL (RFC 8415 section 11.4,
    /// stable for the NIC and needing no clock), its IAID the MAC's last four bytes.
    /// Its first Solicit is due at `now`.
    pub fn new(mac: [u8; 6], seed: u64, now: u64) -> Client {
        let mut duid = vec![0, 3, 0, 1];
        duid.extend_from_slice(&mac);
        Client {
            phase: Phase::Init { until: now },
            io: Io {
                duid,
                iaid: u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]),
                rng: Rng::new(seed),
                transmits: VecDeque::new(),
                events: VecDeque::new(),
                counters: Counters::default(),
                last_refusal: None,
            },
        }
    }

    /// The client's DUID (Client Identifier).
    pub fn duid(&self) -> &[u8] {
        &self.io.duid
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::Init { .. } => State::Init,
            Phase::Soliciting { .. } => State::Soliciting,
            Phase::Requesting { .. } => State::Requesting,
            Phase::Probing { .. } => State::Probing,
            Phase::Bound(_) => State::Bound,
            Phase::Renewing(..) => State::Renewing,
            Phase::Rebinding(..) => State::Rebinding,
        }
    }

    /// The next message to send (a UDP payload, 546 → 547, to ff02::1:2 from the
    /// port's link-local address).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.io.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.io.events.pop_front()
    }

    /// When `handle_timeout` has something to do (none while probing: the driver
    /// answers).
    pub fn poll_timeout(&self) -> Option<u64> {
        let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match &self.phase {
            Phase::Init { until } => Some(*until),
            Phase::Soliciting {
                x,
                best,
                collect_until,
            } => Some(match best {
                Some(_) => x.next.min(*collect_until),
                None => x.next,
            }),
            Phase::Requesting { x, current } => {
                min(Some(x.next), current.as_ref().and_then(Held::expiry))
            }
            Phase::Probing { .. } => None,
            Phase::Bound(h) => min(min(h.t1(), h.t2()), h.expiry()),
            Phase::Renewing(h, x) => min(min(Some(x.next), h.t2()), h.expiry()),
            Phase::Rebinding(h, x) => min(Some(x.next), h.expiry()),
        }
    }

    /// Acts on what is due at `now`; a call before anything is due does nothing. A
    /// clock that jumps past several lease times lands in the latest state they lead
    /// to (expiry before T2 before T1).
    pub fn handle_timeout(&mut self, now: u64) {
        let io = &mut self.io;
        self.phase = match std::mem::replace(&mut self.phase, Phase::Init { until: now }) {
            Phase::Init { until } if now >= until => io.solicit(now),
            Phase::Soliciting {
                best: Some((_, lease)),
                collect_until,
                ..
            } if now >= collect_until => io.request(lease, now, None),
            Phase::Soliciting {
                mut x,
                best,
                collect_until,
            } if now >= x.next => {
                io.transmit(&mut x, now);
                Phase::Soliciting {
                    x,
                    best,
                    collect_until,
                }
            }
            Phase::Requesting { current, .. }
                if current
                    .as_ref()
                    .and_then(Held::expiry)
                    .is_some_and(|e| now >= e) =>
            {
                if let Some(old) = current {
                    io.events.push_back(Event::Lost { old: old.lease });
                }
                io.solicit(now)
            }
            Phase::Requesting { x, current } if now >= x.next && x.sends >= REQ_MAX_RC => {
                match current {
                    Some(held) => Phase::Bound(held),
                    None => Phase::Init { until: now },
                }
            }
            Phase::Requesting { mut x, current } if now >= x.next => {
                io.transmit(&mut x, now);
                Phase::Requesting { x, current }
            }
            Phase::Bound(h) | Phase::Renewing(h, _) | Phase::Rebinding(h, _)
                if h.expiry().is_some_and(|e| now >= e) =>
            {
                io.events.push_back(Event::Lost { old: h.lease });
                io.solicit(now)
            }
            Phase::Bound(h) | Phase::Renewing(h, _) if h.t2().is_some_and(|t| now >= t) => {
                let x = io.renewal(MessageType::Rebind, &h, now);
                Phase::Rebinding(h, x)
            }
            Phase::Bound(h) if h.t1().is_some_and(|t| now >= t) => {
                let x = io.renewal(MessageType::Renew, &h, now);
                Phase::Renewing(h, x)
            }
            Phase::Renewing(h, mut x) if now >= x.next => {
                io.transmit(&mut x, now);
                Phase::Renewing(h, x)
            }
            Phase::Rebinding(h, mut x) if now >= x.next => {
                io.transmit(&mut x, now);
                Phase::Rebinding(h, x)
            }
            phase => phase,
        };
    }

    /// Reads a UDP payload received from port 547. `Err` says why it was not acted on
    /// (also counted); hostile bytes are refused, never a panic.
    pub fn handle_reply(&mut self, now: u64, payload: &[u8]) -> Result<(), Ignored> {
        self.io.counters.received += 1;
        let result = self.reply(now, payload);
        if let Err(reason) = result {
            self.io.counters.ignore(reason);
        }
        result
    }

    fn reply(&mut self, now: u64, payload: &[u8]) -> Result<(), Ignored> {
        let reply = Reply::parse(payload, self.io.iaid)?;
        if reply.kind != ADVERTISE && reply.kind != REPLY {
            return Err(Ignored::NotForClient);
        }
        let xid = match &self.phase {
            Phase::Soliciting { x, .. }
            | Phase::Requesting { x, .. }
            | Phase::Renewing(_, x)
            | Phase::Rebinding(_, x) => x.msg.xid,
            _ => return Err(Ignored::Unexpected),
        };
        if reply.xid != xid {
            return Err(Ignored::WrongXid);
        }
        if reply.client_id.as_deref() != Some(&self.io.duid[..]) {
            return Err(Ignored::WrongClientId);
        }
        if reply.server_id.is_none() {
            return Err(Ignored::NoServerId);
        }
        let io = &mut self.io;
        let phase = std::mem::replace(&mut self.phase, Phase::Init { until: now });
        let (phase, result) = match (phase, reply.kind) {
            (
                Phase::Soliciting {
                    x,
                    best,
                    collect_until,
                },
                ADVERTISE,
            ) => match io.lease(&reply) {
                Ok(lease) if reply.preference == 255 || now >= collect_until => {
                    (io.request(lease, now, None), Ok(()))
                }
                Ok(lease) => {
                    let better = best.as_ref().is_none_or(|(p, _)| reply.preference > *p);
                    let best = if better {
                        Some((reply.preference, lease))
                    } else {
                        best
                    };
                    let phase = Phase::Soliciting {
                        x,
                        best,
                        collect_until,
                    };
                    (phase, Ok(()))
                }
                Err(e) => (
                    Phase::Soliciting {
                        x,
                        best,
                        collect_until,
                    },
                    Err(e),
                ),
            },
            (Phase::Requesting { x, current }, REPLY) => match io.lease(&reply) {
                Ok(lease) => io.bind(
                    Held {
                        lease,
                        start: x.began,
                    },
                    current,
                ),
                Err(e) => {
                    let phase = match current {
                        Some(held) => Phase::Bound(held),
                        None => Phase::Init {
                            until: now.saturating_add(RETRY_WAIT_MS),
                        },
                    };
                    (phase, Err(e))
                }
            },
            (Phase::Renewing(held, x), REPLY) | (Phase::Rebinding(held, x), REPLY) => {
                let no_binding = reply
                    .ia_na
                    .as_ref()
                    .is_some_and(|ia| ia.status == Some(STATUS_NO_BINDING));
                match io.lease(&reply) {
                    Ok(lease) => io.bind(
                        Held {
                            lease,
                            start: x.began,
                        },
                        Some(held),
                    ),
                    Err(_) if no_binding => {
                        let server = reply.server_id.clone().unwrap_or_default();
                        let offer = Lease {
                            server_id: server,
                            ..held.lease.clone()
                        };
                        (io.request(offer, now, Some(held)), Ok(()))
                    }
                    Err(e) => (renewal_phase(held, x), Err(e)),
                }
            }
            (phase, _) => (phase, Err(Ignored::Unexpected)),
        };
        self.phase = phase;
        result
    }

    /// The driver's answer to [`Event::Probe`]: whether another node has the address.
    /// Returns false (and does nothing) when no probe is pending.
    pub fn probe_result(&mut self, now: u64, conflict: bool) -> bool {
        let (candidate, current) =
            match std::mem::replace(&mut self.phase, Phase::Init { until: now }) {
                Phase::Probing { candidate, current } => (candidate, current),
                phase => {
                    self.phase = phase;
                    return false;
                }
            };
        self.phase = if conflict {
            self.io.decline(&candidate.lease, now);
            if let Some(old) = current {
                self.io.events.push_back(Event::Lost { old: old.lease });
            }
            Phase::Init {
                until: now.saturating_add(RETRY_WAIT_MS),
            }
        } else {
            let new = candidate.lease.clone();
            self.io.events.push_back(match current {
                None => Event::Bound(new),
                Some(old) if old.lease.address == new.address => Event::Renewed(new),
                Some(old) => Event::AddressChanged {
                    old: old.lease,
                    new,
                },
            });
            Phase::Bound(candidate)
        };
        true
    }

    /// What the shell shows, at `now`.
    pub fn snapshot(&self, now: u64) -> Snapshot {
        let held = match &self.phase {
            Phase::Bound(h) | Phase::Renewing(h, _) | Phase::Rebinding(h, _) => Some(h),
            Phase::Probing { current, .. } | Phase::Requesting { current, .. } => current.as_ref(),
            _ => None,
        };
        let left = |at: Option<u64>| at.map(|at| at.saturating_sub(now));
        Snapshot {
            state: self.state(),
            lease: held.map(|h| h.lease.clone()),
            valid_left_ms: held.and_then(|h| left(h.expiry())),
            preferred_left_ms: held.and_then(|h| left(h.preferred_end())),
            t1_left_ms: held.and_then(|h| left(h.t1())),
            t2_left_ms: held.and_then(|h| left(h.t2())),
            counters: self.io.counters.clone(),
            last_refusal: self.io.last_refusal,
        }
    }
}

/// A renewal exchange goes on in the phase its message type says.
fn renewal_phase(held: Held, x: Exchange) -> Phase {
    if x.msg.kind == MessageType::Rebind {
        Phase::Rebinding(held, x)
    } else {
        Phase::Renewing(held, x)
    }
}

impl Io {
    /// A new exchange for a message of `kind`, not sent yet.
    fn exchange(
        &mut self,
        kind: MessageType,
        (irt, mrt): (u64, u64),
        now: u64,
        server_id: Option<Vec<u8>>,
        address: Option<Ipv6Addr>,
    ) -> Exchange {
        let x = (self.rng.next_u64() >> 40).to_be_bytes();
        Exchange {
            msg: Outgoing {
                kind,
                xid: [x[5], x[6], x[7]],
                elapsed: 0,
                server_id,
                address,
            },
            began: now,
            sends: 0,
            rt: 0,
            next: now,
            irt,
            mrt,
        }
    }

    /// `base` moved by RAND*`base`, RAND uniform in [-0.1, 0.1], or [0, 0.1] when
    /// `positive`.
    fn jitter(&mut self, base: u64, positive: bool) -> u64 {
        let per_mille = self.rng.up_to(200) as i64 - 100;
        let per_mille = if positive { per_mille.abs() } else { per_mille };
        let delta = (base as i64).saturating_mul(per_mille) / 1000;
        base.saturating_add_signed(delta)
    }

    /// Sends `x`'s message (again) and sets its next retransmission (section 15).
    fn transmit(&mut self, x: &mut Exchange, now: u64) {
        let hundredths = now.saturating_sub(x.began) / 10;
        x.msg.elapsed = u16::try_from(hundredths).unwrap_or(u16::MAX);
        self.transmits
            .push_back(x.msg.encode(&self.duid, self.iaid));
        self.counters.sent += 1;
        x.sends += 1;
        let first_solicit = x.sends == 1 && x.msg.kind == MessageType::Solicit;
        x.rt = if x.sends == 1 {
            self.jitter(x.irt, first_solicit)
        } else {
            self.jitter(x.rt.saturating_mul(2), false)
        };
        if x.mrt != 0 && x.rt > x.mrt {
            x.rt = self.jitter(x.mrt, false);
        }
        x.next = now.saturating_add(x.rt);
    }

    /// INIT's deadline came: Solicit (→ SOLICITING).
    fn solicit(&mut self, now: u64) -> Phase {
        let mut x = self.exchange(
            MessageType::Solicit,
            (SOL_TIMEOUT_MS, SOL_MAX_RT_MS),
            now,
            None,
            None,
        );
        self.transmit(&mut x, now);
        Phase::Soliciting {
            collect_until: x.next,
            x,
            best: None,
        }
    }

    /// Request `offer`'s address from its server (→ REQUESTING), keeping `current`.
    fn request(&mut self, offer: Lease, now: u64, current: Option<Held>) -> Phase {
        let mut x = self.exchange(
            MessageType::Request,
            (REQ_TIMEOUT_MS, REQ_MAX_RT_MS),
            now,
            Some(offer.server_id),
            Some(offer.address),
        );
        self.transmit(&mut x, now);
        Phase::Requesting { x, current }
    }

    /// Renew (to the server) or Rebind (to any) `held`'s address.
    fn renewal(&mut self, kind: MessageType, held: &Held, now: u64) -> Exchange {
        let (timing, server) = if kind == MessageType::Renew {
            (
                (REN_TIMEOUT_MS, REN_MAX_RT_MS),
                Some(held.lease.server_id.clone()),
            )
        } else {
            ((REB_TIMEOUT_MS, REB_MAX_RT_MS), None)
        };
        let mut x = self.exchange(kind, timing, now, server, Some(held.lease.address));
        self.transmit(&mut x, now);
        x
    }

    /// A Reply gave `candidate`: probe it if its address is new, else it is in force.
    fn bind(&mut self, candidate: Held, current: Option<Held>) -> (Phase, Result<(), Ignored>) {
        if let Some(old) = current.as_ref() {
            if old.lease.address == candidate.lease.address {
                self.events
                    .push_back(Event::Renewed(candidate.lease.clone()));
                return (Phase::Bound(candidate), Ok(()));
            }
        }
        self.events.push_back(Event::Probe {
            address: candidate.lease.address,
        });
        (Phase::Probing { candidate, current }, Ok(()))
    }

    /// The lease `reply` gives, or `NoAddress` with the reason kept.
    fn lease(&mut self, reply: &Reply) -> Result<Lease, Ignored> {
        Lease::from_reply(reply).map_err(|e| {
            self.last_refusal = Some(e);
            Ignored::NoAddress
        })
    }

    /// The address is in use: Decline it, once (section 18.2.8).
    fn decline(&mut self, lease: &Lease, now: u64) {
        let mut x = self.exchange(
            MessageType::Decline,
            (0, 0),
            now,
            Some(lease.server_id.clone()),
            Some(lease.address),
        );
        self.transmit(&mut x, now);
        self.counters.declines += 1;
    }
}
