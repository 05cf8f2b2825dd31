//! The DHCPv4 client state machine (RFC 2131 §4.4, Figure 5), sans I/O.
//!
//! States and transitions:
//! - INIT (or INIT-REBOOT with a previous address): waits until its deadline (now at
//!   start, after a NAK and after expiry; 10 s after a DECLINE, RFC 2131 §3.1 step 5
//!   and RFC 5227 §2.1.1's rate limit), then broadcasts DISCOVER → SELECTING (or a
//!   REQUEST for the previous address → REBOOTING). The random 1–10 s wait RFC 2131
//!   §4.4.1 suggests before the first DISCOVER is not taken: it desynchronizes many
//!   hosts powered on together, and the box is one host that should route soon.
//! - SELECTING: the first valid OFFER wins (no collection window; an OFFER is held to
//!   the rules of an ACK, `lease`, so the client never asks for a lease it would
//!   refuse); the REQUEST carries the offered address (50) and the server identifier
//!   (54), same xid → REQUESTING.
//! - REQUESTING / REBOOTING: ACK → PROBING; NAK → INIT; no answer after
//!   [`REQUEST_TRIES`] transmissions → INIT (RFC 2131 §4.4.1). A NAK in REQUESTING
//!   whose server identifier is not the server asked is ignored (another server's).
//! - A resuming client ([`Client::resuming`]) is INIT-REBOOT for the address its
//!   interface already uses (another client's lease, handed over when the box replaced
//!   its dataplane): an ACK for that address binds at once, since RFC 5227 §2.1's
//!   probe comes "before beginning to use" an address; an ACK for another address is
//!   probed as usual, and a NAK or silence falls back to INIT and DISCOVER.
//! - PROBING: every address new to us is probed before use (RFC 5227 §2.1: "MUST test
//!   ... whether received from manual configuration, DHCP, or some other means"): the
//!   client emits [`Event::Probe`], the driver ARP-probes the address (RFC 5227 §2.1.1)
//!   and answers with [`Client::probe_result`]. No conflict → BOUND with
//!   [`Event::Bound`] (or [`Event::AddressChanged`] after a renewal); a conflict →
//!   DECLINE (broadcast; [`Event::Lost`] for the lease a renewal was replacing) and
//!   INIT for 10 s. PROBING has no deadline of its own: the driver must answer.
//! - BOUND: at T1 → RENEWING: REQUEST unicast to the server with `ciaddr` set, from our
//!   address. At T2 → REBINDING: the same, broadcast. At expiry → [`Event::Lost`] and
//!   INIT. An ACK in RENEWING/REBINDING for the same address → BOUND with
//!   [`Event::Renewed`] (nothing changes for sessions); for another address → PROBING
//!   it, the old lease still in force; a NAK → `Lost` and INIT.
//!   The lease runs from the first transmission of the REQUEST that earned it (RFC 2131
//!   §4.4.1), so the box's view of expiry is never later than the server's.
//! - [`Client::release`] sends a RELEASE (unicast to the server) if an address is held
//!   and leaves the client inert (RELEASED).
//!
//! Retransmission (RFC 2131 §4.1): in SELECTING, REQUESTING and REBOOTING 4 s after
//! the first transmission, doubling up to 64 s, each randomized by ±1 s (uniform, from
//! the seeded PRNG); the same xid for all retransmissions of one exchange, a new xid
//! per exchange. In RENEWING and REBINDING after half the time left to T2 or to expiry,
//! at least 60 s (RFC 2131 §4.4.5), and never past the T2 or expiry transition.
//!
//! Only a reply with our xid and our hardware address is acted on; everything else is
//! counted under an [`Ignored`] reason, and an OFFER or ACK that fails lease validation
//! is counted as `BadLease` with the reason kept in [`Snapshot::last_refusal`].
//!
//! Without a lease (from the start, and from each loss until the next BOUND) the
//! client keeps asking forever, at the backoff above (DISCOVERs at most 64 s apart),
//! and says how long it has been without one and whether any server answered it
//! meanwhile ([`Snapshot::unbound_ms`], [`Snapshot::answered`]): what the box shows
//! as "no answer" (`services::dhcp4`, `show interfaces`).
//!
//! The API is poll-based: the caller feeds replies ([`Client::handle_reply`]), timer
//! expiries ([`Client::handle_timeout`] at [`Client::poll_timeout`]) and probe results,
//! and drains [`Client::poll_transmit`] and [`Client::poll_event`] after each call.
//! Time is milliseconds on the caller's monotonic clock.

use super::counters::{Counters, Ignored};
use super::lease::{Lease, LeaseError};
use super::message::{Outgoing, Reply};
use super::rng::Rng;
use dhcproto::v4::{MessageType, OptionCode};
use std::collections::VecDeque;
use std::net::Ipv4Addr;

/// REQUEST transmissions in REQUESTING and REBOOTING before going back to INIT: at 0,
/// ~4, ~12 and ~28 s, giving up ~60 s after the first.
pub const REQUEST_TRIES: u32 = 4;
/// The wait after a DECLINE before the next DISCOVER (RFC 2131 §3.1 step 5).
pub const DECLINE_WAIT_MS: u64 = 10_000;
const FIRST_RETRANSMIT_MS: u64 = 4_000;
const MAX_RETRANSMIT_MS: u64 = 64_000;
const JITTER_MS: u64 = 1_000;
/// RFC 2131 §4.4.5: the shortest retransmission interval in RENEWING and REBINDING.
const MIN_RENEW_RETRANSMIT_MS: u64 = 60_000;

/// Where a message goes (UDP from port 68 to port 67; the caller builds UDP and IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255, to the Ethernet broadcast address.
    Broadcast,
    /// A server's address (RENEWING, RELEASE).
    Unicast(Ipv4Addr),
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: Destination,
    /// The IP source: our address while we hold it (RENEWING, REBINDING, RELEASE),
    /// `None` for 0.0.0.0.
    pub from: Option<Ipv4Addr>,
    /// The DHCP message (the UDP payload).
    pub payload: Vec<u8>,
}

/// What the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// ARP-probe `address` (RFC 5227 §2.1.1) and answer with `probe_result`.
    Probe { address: Ipv4Addr },
    /// A lease to put in force: address, routes, MTU.
    Bound(Lease),
    /// The lease was extended with the same address; options may have changed.
    Renewed(Lease),
    /// A renewal or rebinding gave another address, probed free: `old`'s address is
    /// gone, `new`'s is in force.
    AddressChanged { old: Lease, new: Lease },
    /// The lease expired or was NAKed (or a renewal's new address was in use): remove
    /// its address and routes.
    Lost { old: Lease },
}

/// The client's state (RFC 2131 Figure 5, with PROBING for RFC 5227 and RELEASED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Init,
    InitReboot,
    Selecting,
    Requesting,
    Rebooting,
    Probing,
    Bound,
    Renewing,
    Rebinding,
    Released,
}

impl State {
    /// The state's name in RFC 2131's Figure 5, lower case.
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "init",
            State::InitReboot => "init-reboot",
            State::Selecting => "selecting",
            State::Requesting => "requesting",
            State::Rebooting => "rebooting",
            State::Probing => "probing",
            State::Bound => "bound",
            State::Renewing => "renewing",
            State::Rebinding => "rebinding",
            State::Released => "released",
        }
    }
}

/// What the shell shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub state: State,
    /// The server in play: the one offering, or the one whose lease we hold.
    pub server: Option<Ipv4Addr>,
    /// The lease in force (BOUND, RENEWING, REBINDING, and PROBING a renewal's new
    /// address).
    pub lease: Option<Lease>,
    /// Milliseconds left until expiry, T1 and T2 (0 once passed; `None` without a
    /// lease or for an infinite one).
    pub lease_left_ms: Option<u64>,
    pub t1_left_ms: Option<u64>,
    pub t2_left_ms: Option<u64>,
    pub counters: Counters,
    /// Why the last refused OFFER or ACK was refused.
    pub last_refusal: Option<LeaseError>,
    /// How long the client has been without a lease (since it started or lost the
    /// last one); `None` while a lease is in force.
    pub unbound_ms: Option<u64>,
    /// Whether a server answered (a reply with our xid and hardware address: an OFFER,
    /// ACK or NAK, taken or refused) since then.
    pub answered: bool,
}

/// One request and its retransmissions.
#[derive(Debug, Clone)]
struct Exchange {
    msg: Outgoing,
    to: Destination,
    from: Option<Ipv4Addr>,
    /// When the exchange began (the `secs` field counts from here).
    began: u64,
    /// When its message was first sent: a lease it earns starts here.
    first_sent: u64,
    sends: u32,
    /// When the next retransmission is due.
    next: u64,
}

/// A lease in force and when it started.
#[derive(Debug, Clone)]
struct Held {
    lease: Lease,
    start: u64,
}

impl Held {
    /// `lease`, earned by the exchange `x`: it runs from `x`'s first transmission.
    fn new(lease: Lease, x: &Exchange) -> Held {
        Held {
            lease,
            start: x.first_sent,
        }
    }

    fn at(&self, offset: impl Fn(&super::lease::LeaseTimes) -> u64) -> Option<u64> {
        self.lease
            .times
            .as_ref()
            .map(|t| self.start.saturating_add(offset(t)))
    }
    fn t1(&self) -> Option<u64> {
        self.at(|t| t.t1_ms)
    }
    fn t2(&self) -> Option<u64> {
        self.at(|t| t.t2_ms)
    }
    fn expiry(&self) -> Option<u64> {
        self.at(|t| t.lease_ms)
    }
    fn address(&self) -> Ipv4Addr {
        self.lease.address.addr()
    }
}

#[derive(Debug, Clone)]
enum Phase {
    Init {
        until: u64,
        previous: Option<Ipv4Addr>,
    },
    Selecting(Exchange),
    Requesting {
        x: Exchange,
        server: Ipv4Addr,
    },
    Rebooting(Exchange),
    /// `candidate` waits for the probe; `current` is the lease still in force when a
    /// renewal moved us to a new address.
    Probing {
        candidate: Held,
        current: Option<Held>,
    },
    Bound(Held),
    Renewing(Held, Exchange),
    Rebinding(Held, Exchange),
    Released,
}

/// Everything but the state: the outputs and what produces them.
#[derive(Debug)]
struct Io {
    mac: [u8; 6],
    rng: Rng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    counters: Counters,
    last_refusal: Option<LeaseError>,
    /// Since when no lease is in force (`None` while one is), and whether a server
    /// answered since.
    unbound_since: Option<u64>,
    answered: bool,
    /// The address a resuming client's interface already uses (`Client::resuming`).
    in_use: Option<Ipv4Addr>,
}

/// A DHCPv4 client for one interface.
#[derive(Debug)]
pub struct Client {
    io: Io,
    phase: Phase,
}

impl Client {
    /// A client for the interface `mac`, starting in INIT with its DISCOVER due at
    /// `now_ms`. `seed` drives xids and jitter; pass a different one per boot.
    pub fn new(mac: [u8; 6], seed: u64, now_ms: u64) -> Client {
        Client::starting(mac, seed, now_ms, None)
    }

    /// A client that first asks to keep `previous` (INIT-REBOOT, RFC 2131 §3.2).
    pub fn rebooting(mac: [u8; 6], seed: u64, now_ms: u64, previous: Ipv4Addr) -> Client {
        Client::starting(mac, seed, now_ms, Some(previous))
    }

    /// A client taking over `in_use`, the address another client of the same interface
    /// held until now (the box's dataplane was replaced, not the host): INIT-REBOOT as
    /// [`Client::rebooting`], but an ACK for `in_use` binds at once, unprobed. RFC 5227
    /// §2.1 asks for the probe "before beginning to use" an address; this interface is
    /// already using it, and a conflict is still found by the next client that starts
    /// afresh (module doc).
    pub fn resuming(mac: [u8; 6], seed: u64, now_ms: u64, in_use: Ipv4Addr) -> Client {
        let mut client = Client::starting(mac, seed, now_ms, Some(in_use));
        client.io.in_use = Some(in_use);
        client
    }

    fn starting(mac: [u8; 6], seed: u64, now: u64, previous: Option<Ipv4Addr>) -> Client {
        Client {
            io: Io {
                mac,
                rng: Rng::new(seed),
                transmits: VecDeque::new(),
                events: VecDeque::new(),
                counters: Counters::default(),
                last_refusal: None,
                unbound_since: Some(now),
                answered: false,
                in_use: None,
            },
            phase: Phase::Init {
                until: now,
                previous,
            },
        }
    }

    /// The interface's MAC.
    pub fn mac(&self) -> [u8; 6] {
        self.io.mac
    }

    /// The address in force, if any (BOUND, RENEWING, REBINDING, or the lease a
    /// renewal's probe would replace).
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.held().map(Held::address)
    }

    fn held(&self) -> Option<&Held> {
        match &self.phase {
            Phase::Bound(h) | Phase::Renewing(h, _) | Phase::Rebinding(h, _) => Some(h),
            Phase::Probing { current, .. } => current.as_ref(),
            _ => None,
        }
    }

    pub fn state(&self) -> State {
        match &self.phase {
            Phase::Init { previous: None, .. } => State::Init,
            Phase::Init { .. } => State::InitReboot,
            Phase::Selecting(_) => State::Selecting,
            Phase::Requesting { .. } => State::Requesting,
            Phase::Rebooting(_) => State::Rebooting,
            Phase::Probing { .. } => State::Probing,
            Phase::Bound(_) => State::Bound,
            Phase::Renewing(..) => State::Renewing,
            Phase::Rebinding(..) => State::Rebinding,
            Phase::Released => State::Released,
        }
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.io.transmits.pop_front()
    }

    /// The next event for the driver, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.io.events.pop_front()
    }

    /// When `handle_timeout` is next due; `None` while probing, released, or bound to
    /// an infinite lease.
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.phase {
            Phase::Init { until, .. } => Some(*until),
            Phase::Selecting(x) | Phase::Requesting { x, .. } | Phase::Rebooting(x) => Some(x.next),
            Phase::Probing { .. } | Phase::Released => None,
            Phase::Bound(held) => held.t1(),
            Phase::Renewing(held, x) => held.t2().map(|t2| t2.min(x.next)),
            Phase::Rebinding(held, x) => held.expiry().map(|e| e.min(x.next)),
        }
    }

    /// Acts on every deadline that is due at `now`; a call before any is due does
    /// nothing. A clock that jumps past several lease timers lands in the latest state
    /// they lead to (expiry before T2 before T1), sending one message.
    pub fn handle_timeout(&mut self, now: u64) {
        let io = &mut self.io;
        self.phase = match std::mem::replace(&mut self.phase, Phase::Released) {
            Phase::Init { until, previous } if now >= until => io.init(now, previous),
            Phase::Selecting(mut x) if now >= x.next => {
                io.transmit(&mut x, now);
                Phase::Selecting(x)
            }
            Phase::Requesting { x, .. } | Phase::Rebooting(x)
                if now >= x.next && x.sends >= REQUEST_TRIES =>
            {
                init_at(now)
            }
            Phase::Requesting { mut x, server } if now >= x.next => {
                io.transmit(&mut x, now);
                Phase::Requesting { x, server }
            }
            Phase::Rebooting(mut x) if now >= x.next => {
                io.transmit(&mut x, now);
                Phase::Rebooting(x)
            }
            Phase::Bound(held) | Phase::Renewing(held, _) | Phase::Rebinding(held, _)
                if held.expiry().is_some_and(|e| now >= e) =>
            {
                io.lost(held.lease, now);
                init_at(now)
            }
            Phase::Bound(held) | Phase::Renewing(held, _)
                if held.t2().is_some_and(|t2| now >= t2) =>
            {
                let x = io.renewal(&held, now, Destination::Broadcast);
                Phase::Rebinding(held, x)
            }
            Phase::Bound(held) if held.t1().is_some_and(|t1| now >= t1) => {
                let to = Destination::Unicast(held.lease.server);
                let x = io.renewal(&held, now, to);
                Phase::Renewing(held, x)
            }
            Phase::Renewing(held, mut x) if now >= x.next => {
                io.transmit_renewal(&mut x, now, held.t2());
                Phase::Renewing(held, x)
            }
            Phase::Rebinding(held, mut x) if now >= x.next => {
                io.transmit_renewal(&mut x, now, held.expiry());
                Phase::Rebinding(held, x)
            }
            phase => phase,
        };
    }

    /// Reads a UDP payload received on port 68. `Err` says why it was not acted on
    /// (also counted); malformed or hostile bytes are refused, never a panic.
    pub fn handle_reply(&mut self, now: u64, payload: &[u8]) -> Result<(), Ignored> {
        self.io.counters.received += 1;
        let result = self.reply(now, payload);
        if let Err(reason) = result {
            self.io.counters.ignore(reason);
        }
        result
    }

    fn reply(&mut self, now: u64, payload: &[u8]) -> Result<(), Ignored> {
        let reply = Reply::parse(payload, self.io.mac)?;
        let xid = match &self.phase {
            Phase::Selecting(x)
            | Phase::Requesting { x, .. }
            | Phase::Rebooting(x)
            | Phase::Renewing(_, x)
            | Phase::Rebinding(_, x) => x.xid(),
            _ => return Err(Ignored::Unexpected),
        };
        if reply.xid != xid {
            return Err(Ignored::WrongXid);
        }
        let io = &mut self.io;
        io.answered = true;
        let phase = std::mem::replace(&mut self.phase, Phase::Released);
        let (phase, result) = match (phase, reply.kind) {
            (Phase::Selecting(x), MessageType::Offer) => match io.lease(&reply) {
                Ok(offer) => (io.request(offer, x, now), Ok(())),
                Err(e) => (Phase::Selecting(x), Err(e)),
            },
            (Phase::Requesting { x, server }, MessageType::Ack) => match io.lease(&reply) {
                Ok(lease) => (io.probe(Held::new(lease, &x), None), Ok(())),
                Err(e) => (Phase::Requesting { x, server }, Err(e)),
            },
            (Phase::Rebooting(x), MessageType::Ack) => match io.lease(&reply) {
                Ok(lease) if io.in_use.take() == Some(lease.address.addr()) => {
                    (io.bind(Held::new(lease, &x), None), Ok(()))
                }
                Ok(lease) => (io.probe(Held::new(lease, &x), None), Ok(())),
                Err(e) => (Phase::Rebooting(x), Err(e)),
            },
            (Phase::Renewing(held, x) | Phase::Rebinding(held, x), MessageType::Ack) => {
                let lease = io.lease(&reply);
                if lease.is_ok() {
                    match x.to {
                        Destination::Unicast(_) => io.counters.renewals += 1,
                        Destination::Broadcast => io.counters.rebinds += 1,
                    }
                }
                match lease {
                    Ok(lease) if lease.address.addr() == held.address() => {
                        io.events.push_back(Event::Renewed(lease.clone()));
                        (Phase::Bound(Held::new(lease, &x)), Ok(()))
                    }
                    Ok(lease) => (io.probe(Held::new(lease, &x), Some(held)), Ok(())),
                    Err(e) => (renewal_phase(held, x), Err(e)),
                }
            }
            (Phase::Requesting { x, server }, MessageType::Nak)
                if naked_by_other(&reply, server) =>
            {
                (Phase::Requesting { x, server }, Err(Ignored::ForeignNak))
            }
            (Phase::Renewing(held, x), MessageType::Nak)
                if naked_by_other(&reply, held.lease.server) =>
            {
                (Phase::Renewing(held, x), Err(Ignored::ForeignNak))
            }
            (Phase::Requesting { .. } | Phase::Rebooting(_), MessageType::Nak) => {
                io.counters.naks += 1;
                (init_at(now), Ok(()))
            }
            (Phase::Renewing(held, _) | Phase::Rebinding(held, _), MessageType::Nak) => {
                io.counters.naks += 1;
                io.lost(held.lease, now);
                (init_at(now), Ok(()))
            }
            (phase, _) => (phase, Err(Ignored::Unexpected)),
        };
        self.phase = phase;
        result
    }

    /// The driver's answer to [`Event::Probe`]: whether another host answered for the
    /// address. Returns false (and does nothing) when no probe is pending.
    pub fn probe_result(&mut self, now: u64, conflict: bool) -> bool {
        let (candidate, current) = match std::mem::replace(&mut self.phase, Phase::Released) {
            Phase::Probing { candidate, current } => (candidate, current),
            phase => {
                self.phase = phase;
                return false;
            }
        };
        self.phase = if conflict {
            self.io.decline(&candidate.lease, now);
            if let Some(old) = current {
                self.io.lost(old.lease, now);
            }
            init_at(now.saturating_add(DECLINE_WAIT_MS))
        } else {
            self.io.bind(candidate, current)
        };
        true
    }

    /// Gives the address back (RELEASE, unicast to the server) if one is held, and
    /// stops the client for good. Returns whether a RELEASE was queued. No event
    /// follows: the caller, which asked, removes the address.
    pub fn release(&mut self, now: u64) -> bool {
        let held = match std::mem::replace(&mut self.phase, Phase::Released) {
            Phase::Bound(held)
            | Phase::Renewing(held, _)
            | Phase::Rebinding(held, _)
            | Phase::Probing {
                current: Some(held),
                ..
            } => held,
            _ => return false,
        };
        self.io.unbound_since = Some(now);
        let msg = Outgoing {
            kind: MessageType::Release,
            xid: self.io.rng.xid(),
            secs: 0,
            ciaddr: held.address(),
            requested: None,
            server: Some(held.lease.server),
        };
        let mut x = self.io.exchange(
            msg,
            now,
            Destination::Unicast(held.lease.server),
            Some(held.address()),
        );
        self.io.send(&mut x, now);
        true
    }

    /// What the shell shows, at `now`.
    pub fn snapshot(&self, now: u64) -> Snapshot {
        let held = self.held();
        let server = match &self.phase {
            Phase::Requesting { server, .. } => Some(*server),
            Phase::Probing { candidate, .. } => Some(candidate.lease.server),
            _ => held.map(|h| h.lease.server),
        };
        let left = |at: Option<u64>| at.map(|at| at.saturating_sub(now));
        Snapshot {
            state: self.state(),
            server,
            lease: held.map(|h| h.lease.clone()),
            lease_left_ms: held.and_then(|h| left(h.expiry())),
            t1_left_ms: held.and_then(|h| left(h.t1())),
            t2_left_ms: held.and_then(|h| left(h.t2())),
            counters: self.io.counters.clone(),
            last_refusal: self.io.last_refusal,
            unbound_ms: self.io.unbound_since.map(|s| now.saturating_sub(s)),
            answered: self.io.answered,
        }
    }
}

impl Exchange {
    fn xid(&self) -> u32 {
        self.msg.xid
    }
}

impl Io {
    /// A new exchange for `msg`, not sent yet.
    fn exchange(
        &mut self,
        msg: Outgoing,
        now: u64,
        to: Destination,
        from: Option<Ipv4Addr>,
    ) -> Exchange {
        Exchange {
            msg,
            to,
            from,
            began: now,
            first_sent: now,
            sends: 0,
            next: now,
        }
    }

    /// Queues `x`'s message (again), with `secs` counted from the exchange's start.
    fn send(&mut self, x: &mut Exchange, now: u64) {
        if x.sends == 0 {
            x.first_sent = now;
        }
        x.msg.secs = u16::try_from(now.saturating_sub(x.began) / 1000).unwrap_or(u16::MAX);
        self.transmits.push_back(Transmit {
            to: x.to,
            from: x.from,
            payload: x.msg.encode(self.mac),
        });
        x.sends += 1;
        self.counters.sent += 1;
    }

    /// Sends `x` (first or again) and sets its next retransmission by the RFC 2131
    /// §4.1 backoff.
    fn transmit(&mut self, x: &mut Exchange, now: u64) {
        self.send(x, now);
        x.next = now.saturating_add(self.backoff(x.sends));
    }

    /// Sends a renewal `x` (first or again) and sets its next retransmission by RFC
    /// 2131 §4.4.5: half the time left `until` T2 or expiry.
    fn transmit_renewal(&mut self, x: &mut Exchange, now: u64, until: Option<u64>) {
        self.send(x, now);
        x.next = now.saturating_add(half_left(now, until));
    }

    /// The wait after the `sends`-th transmission: 4 s, 8 s, ... up to 64 s, ±1 s.
    fn backoff(&mut self, sends: u32) -> u64 {
        let doublings = sends.saturating_sub(1).min(4);
        let base = (FIRST_RETRANSMIT_MS << doublings).min(MAX_RETRANSMIT_MS);
        base - JITTER_MS + self.rng.up_to(2 * JITTER_MS)
    }

    /// INIT's deadline came: DISCOVER (→ SELECTING), or the REQUEST for the previous
    /// address (→ REBOOTING).
    fn init(&mut self, now: u64, previous: Option<Ipv4Addr>) -> Phase {
        let msg = Outgoing {
            kind: if previous.is_some() {
                MessageType::Request
            } else {
                MessageType::Discover
            },
            xid: self.rng.xid(),
            secs: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            requested: previous,
            server: None,
        };
        let mut x = self.exchange(msg, now, Destination::Broadcast, None);
        self.transmit(&mut x, now);
        match previous {
            Some(_) => Phase::Rebooting(x),
            None => Phase::Selecting(x),
        }
    }

    /// `old` is no longer in force: the driver removes it, and the wait for the next
    /// lease starts (`Snapshot::unbound_ms`).
    fn lost(&mut self, old: Lease, now: u64) {
        self.events.push_back(Event::Lost { old });
        self.unbound_since = Some(now);
        self.answered = false;
    }

    /// The lease `reply` gives, or `BadLease` with the reason kept.
    fn lease(&mut self, reply: &Reply) -> Result<Lease, Ignored> {
        Lease::from_reply(reply).map_err(|e| {
            self.last_refusal = Some(e);
            Ignored::BadLease
        })
    }

    /// SELECTING took `offer`: REQUEST it, same xid and `secs` base (→ REQUESTING).
    fn request(&mut self, offer: Lease, discover: Exchange, now: u64) -> Phase {
        let msg = Outgoing {
            kind: MessageType::Request,
            requested: Some(offer.address.addr()),
            server: Some(offer.server),
            ..discover.msg
        };
        let mut x = self.exchange(msg, discover.began, Destination::Broadcast, None);
        self.transmit(&mut x, now);
        Phase::Requesting {
            x,
            server: offer.server,
        }
    }

    /// An ACK for an address new to us: probe it before use (RFC 5227 §2.1, → PROBING).
    /// `candidate` is in force (in place of `current`, after a renewal): BOUND.
    fn bind(&mut self, candidate: Held, current: Option<Held>) -> Phase {
        let new = candidate.lease.clone();
        self.unbound_since = None;
        self.events.push_back(match current {
            None => Event::Bound(new),
            Some(old) => Event::AddressChanged {
                old: old.lease,
                new,
            },
        });
        Phase::Bound(candidate)
    }

    fn probe(&mut self, candidate: Held, current: Option<Held>) -> Phase {
        self.events.push_back(Event::Probe {
            address: candidate.address(),
        });
        Phase::Probing { candidate, current }
    }

    /// Starts RENEWING (`to` the server) or REBINDING (broadcast) for `held`.
    fn renewal(&mut self, held: &Held, now: u64, to: Destination) -> Exchange {
        let msg = Outgoing {
            kind: MessageType::Request,
            xid: self.rng.xid(),
            secs: 0,
            ciaddr: held.address(),
            requested: None,
            server: None,
        };
        let mut x = self.exchange(msg, now, to, Some(held.address()));
        let until = match to {
            Destination::Unicast(_) => held.t2(),
            Destination::Broadcast => held.expiry(),
        };
        self.transmit_renewal(&mut x, now, until);
        x
    }

    /// The probe found `lease`'s address in use: DECLINE it (RFC 2131 §4.4.1).
    fn decline(&mut self, lease: &Lease, now: u64) {
        let msg = Outgoing {
            kind: MessageType::Decline,
            xid: self.rng.xid(),
            secs: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            requested: Some(lease.address.addr()),
            server: Some(lease.server),
        };
        let mut x = self.exchange(msg, now, Destination::Broadcast, None);
        self.send(&mut x, now);
        self.counters.declines += 1;
    }
}

/// INIT, its DISCOVER due at `until`.
fn init_at(until: u64) -> Phase {
    Phase::Init {
        until,
        previous: None,
    }
}

/// A renewal exchange goes on in the phase its destination says.
fn renewal_phase(held: Held, x: Exchange) -> Phase {
    match x.to {
        Destination::Unicast(_) => Phase::Renewing(held, x),
        Destination::Broadcast => Phase::Rebinding(held, x),
    }
}

/// RFC 2131 §4.4.5: half the time left until `until`, at least 60 s.
fn half_left(now: u64, until: Option<u64>) -> u64 {
    let left = until.map_or(0, |u| u.saturating_sub(now));
    (left / 2).max(MIN_RENEW_RETRANSMIT_MS)
}

/// A NAK that names a server other than `asked`.
fn naked_by_other(reply: &Reply, asked: Ipv4Addr) -> bool {
    matches!(
        reply.options.addr(OptionCode::ServerIdentifier),
        Ok(Some(server)) if server != asked
    )
}
