//! DHCPv4 clients of the ports whose `ipv4` is `"dhcp"` (RFC 2131; the state machine
//! is `natbox_core::dhcp4`, this module only carries its messages and applies what it
//! learns).
//!
//! Contract:
//! - One client per DHCP port, made when the configuration asks for it (with the
//!   port's MAC and a seed from the clock and the MAC, so two boxes, or two boots, pick
//!   different transaction ids) and dropped when it no longer does.
//! - Server messages reach the clients through the engine's `Dhcp4Client` binding of
//!   each DHCP port (whatever their destination address); every client sees every
//!   one and keeps those with its own MAC and transaction id.
//! - What a client sends leaves as UDP 68 → 67: a broadcast out of its port
//!   (`Shards::broadcast4`, source 0.0.0.0 before it holds an address), or unicast to
//!   the server (RENEWING), routed like any datagram of the box's.
//! - A lease bound, renewed or lost is applied to every shard (`Shards::set_lease4`):
//!   the port's address, its router as the default gateway unless the configuration
//!   names one, its classless routes (those via 0.0.0.0 on-link), its MTU (option 26,
//!   bounded as `engine::lease::lease_mtu` says; a bounded value is logged), and with
//!   them the NAT address (`engine::lease`). A renewal that keeps the address and the
//!   options changes nothing; one that changes an option (the MTU, a route) applies it
//!   and keeps the sessions. Each change is logged.
//! - What the box says while a port has no lease (the client keeps asking forever, RFC
//!   2131 section 4.1's backoff capped at 64 s): a warning `NO_LEASE_FIRST_MS` (30 s)
//!   after the lease was lost or the client started, repeated at doubling intervals up
//!   to `NO_LEASE_CAP_MS` (5 min) while it lasts: "no DHCP answer" if no server
//!   answered, else why no lease came (the last refusal). `show interfaces` and the
//!   metrics show the same (`shell`).
//! - A reply for this client (its MAC) that is refused, by lease validation (a prefix
//!   of /0, a lease time of 0, a router outside the subnet...) or for options that run
//!   past its end, is counted by the client and logged with the reason and the
//!   server's address, at most once per `REFUSAL_LOG_MS` (10 s) doubling up to a
//!   minute, with the number of refusals not logged in between.
//! - An offered address is probed before it is used (RFC 5227 section 2.1.1, through
//!   `Shards::probe4`): `PROBES` ARP probes `PROBE_INTERVAL_MS` apart, and the verdict
//!   `DECIDE_AFTER_MS` after the first. RFC 5227's own timing (three probes 1-2 s
//!   apart, then 2 s) would keep the box without an address 4-8 s at every boot;
//!   a DHCP server has normally checked the address itself (RFC 2131 section 4.4.1
//!   asks the client only to check, not how), so natbox takes 2 s. A conflict
//!   declines the address (the client sends DHCPDECLINE and starts again).

use crate::backoff::Backoff;
use crate::control::shards::{Shards, Snapshots};
use crate::engine::lease::{lease_mtu, Lease4};
use crate::engine::local::{Binding, DHCP4_CLIENT_PORT, DHCP4_SERVER_PORT};
use crate::engine::port::{self, PortId};
use crate::services::packet;
use crate::wire::ipv4;
use firmware_config::Config;
use natbox_core::dhcp4::{Client, Destination, Event, Ignored, Lease, Snapshot};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};

/// ARP probes of an offered address, their spacing and when the verdict comes
/// (module doc).
const PROBES: u32 = 2;
const PROBE_INTERVAL_MS: u64 = 1000;
const DECIDE_AFTER_MS: u64 = 2000;
/// When a port without a lease is first reported, and the most between two reports.
pub const NO_LEASE_FIRST_MS: u64 = 30_000;
const NO_LEASE_CAP_MS: u64 = 300_000;
/// The least, then the most, between two logged refusals of a client.
const REFUSAL_LOG_MS: u64 = 10_000;
const REFUSAL_LOG_CAP_MS: u64 = 60_000;

/// A probe of an offered address under way.
#[derive(Debug, Clone, Copy)]
struct Probing {
    addr: Ipv4Addr,
    started_ms: u64,
    sent: u32,
}

/// One DHCP port's client.
#[derive(Debug)]
struct PortClient {
    port: PortId,
    /// The port's role label, for the log and the shell.
    role: &'static str,
    client: Client,
    probing: Option<Probing>,
    /// When the lack of a lease is next reported (`None` while one is in force).
    no_lease: Option<Backoff>,
    /// When a refused reply may be logged again.
    refusals: Backoff,
}

/// The DHCPv4 clients of the box.
#[derive(Debug, Default)]
pub struct Dhcp4 {
    clients: Vec<PortClient>,
    /// Addresses the box's previous dataplane held, by interface MAC, waiting for the
    /// client of the port that has that MAC (`handed_over`).
    in_use: Vec<([u8; 6], Ipv4Addr)>,
}

impl Dhcp4 {
    /// Clients for a new dataplane that take over the leases `previous` holds (the
    /// metadata search's, `init::metadata`): each port whose MAC held an address
    /// starts by asking to keep it (`Client::resuming`), so it routes again within a
    /// round trip instead of a DISCOVER, the server's own check and our probe.
    pub fn handed_over(previous: &Dhcp4) -> Dhcp4 {
        let in_use = previous
            .clients
            .iter()
            .filter_map(|c| Some((c.client.mac(), c.client.address()?)))
            .collect();
        Dhcp4 {
            clients: Vec::new(),
            in_use,
        }
    }

    /// Whether the clients are those `config` asks for, one per DHCP port.
    pub fn in_step(&self, config: &Config) -> bool {
        let wanted = dhcp_ports(config);
        wanted.len() == self.clients.len()
            && wanted
                .iter()
                .all(|&(p, _)| self.clients.iter().any(|c| c.port == p))
    }

    /// Keeps one client for each port of `config` whose `ipv4` is `"dhcp"`; `mac_of`
    /// gives a port's MAC.
    pub fn follow(
        &mut self,
        config: &Config,
        mac_of: impl Fn(PortId) -> Option<[u8; 6]>,
        now: u64,
    ) {
        let wanted = dhcp_ports(config);
        self.clients
            .retain(|c| wanted.iter().any(|&(p, _)| p == c.port));
        for (port, role) in wanted {
            if self.clients.iter().any(|c| c.port == port) {
                continue;
            }
            let Some(mac) = mac_of(port) else {
                continue;
            };
            let client = match self.in_use.iter().position(|&(m, _)| m == mac) {
                Some(i) => {
                    let (_, addr) = self.in_use.swap_remove(i);
                    log::info!("{role} port: asking by DHCP to keep {addr}, in use until now");
                    Client::resuming(mac, seed(mac), now, addr)
                }
                None => {
                    log::info!("{role} port: asking for an IPv4 address by DHCP");
                    Client::new(mac, seed(mac), now)
                }
            };
            self.clients.push(PortClient {
                port,
                role,
                client,
                probing: None,
                no_lease: None,
                refusals: Backoff::new(now, REFUSAL_LOG_MS, REFUSAL_LOG_CAP_MS),
            });
        }
    }

    /// What the shards must deliver to the clients.
    pub fn bindings(&self) -> impl Iterator<Item = Binding> + '_ {
        self.clients.iter().map(|c| Binding::Dhcp4Client(c.port))
    }

    /// Offers a delivered datagram to the clients; true if it was a DHCP server
    /// message (taken, whether a client wanted it or not).
    pub fn receive(&mut self, ip: &[u8], now: u64) -> bool {
        let Some(payload) = packet::udp4_payload(ip, DHCP4_SERVER_PORT, DHCP4_CLIENT_PORT) else {
            return false;
        };
        let from = ipv4::Packet::new_checked(ip).map_or(Ipv4Addr::UNSPECIFIED, |p| p.src());
        for c in &mut self.clients {
            // A reply for another client (its MAC, its xid) is counted there.
            let why = match c.client.handle_reply(now, payload) {
                Err(Ignored::BadLease) => {
                    c.client.snapshot(now).last_refusal.map(|e| e.to_string())
                }
                Err(Ignored::TruncatedOptions) => {
                    Some(Ignored::TruncatedOptions.help().to_string())
                }
                _ => None,
            };
            if let Some(why) = why.filter(|_| c.refusals.due(now)) {
                let more = match c.refusals.take_held_back() {
                    0 => String::new(),
                    n => format!(" ({n} more refused since the last line)"),
                };
                log::warn!(
                    "{} port: DHCP reply from {from} refused: {why}{more}",
                    c.role
                );
            }
        }
        true
    }

    /// Runs the clients' timers, applies what they learnt and sends what they ask.
    pub fn poll(&mut self, shards: &mut dyn Shards, now: u64) {
        for c in &mut self.clients {
            if c.client.poll_timeout().is_some_and(|at| at <= now) {
                c.client.handle_timeout(now);
            }
            probe(c, shards, now);
            while let Some(event) = c.client.poll_event() {
                apply(c, event, shards, now);
            }
            report_no_lease(c, now);
            while let Some(t) = c.client.poll_transmit() {
                let src = IpAddr::V4(t.from.unwrap_or(Ipv4Addr::UNSPECIFIED));
                let (dst, broadcast) = match t.to {
                    Destination::Broadcast => (Ipv4Addr::BROADCAST, true),
                    Destination::Unicast(server) => (server, false),
                };
                let Some(ip) = packet::udp(
                    src,
                    IpAddr::V4(dst),
                    DHCP4_CLIENT_PORT,
                    DHCP4_SERVER_PORT,
                    &t.payload,
                ) else {
                    continue;
                };
                let sent = if broadcast {
                    shards.broadcast4(c.port, ip)
                } else {
                    shards.originate(ip)
                };
                if let Err(reason) = sent {
                    log::debug!("{} port: DHCP message not sent ({})", c.role, reason.name());
                }
            }
        }
    }

    /// Each client's state, by port role, for the shell.
    pub fn snapshots(&self, now: u64) -> Vec<(&'static str, Snapshot)> {
        self.clients
            .iter()
            .map(|c| (c.role, c.client.snapshot(now)))
            .collect()
    }
}

/// The ports of `config` whose `ipv4` is `"dhcp"`, with their role labels.
fn dhcp_ports(config: &Config) -> Vec<(PortId, &'static str)> {
    port::layout(config)
        .iter()
        .filter(|c| c.port.ipv4_dhcp())
        .map(|c| (c.id, c.roles.label()))
        .collect()
}

/// Applies one of a client's events to the shards and logs it.
fn apply(c: &mut PortClient, event: Event, shards: &mut dyn Shards, now: u64) {
    let role = c.role;
    match event {
        Event::Probe { address } => {
            shards.probe4(c.port, Some(address));
            c.probing = Some(Probing {
                addr: address,
                started_ms: now,
                sent: 1,
            });
        }
        Event::Bound(lease) => {
            shards.set_lease4(c.port, Some(lease4(&lease)));
            log::info!("{role} port: DHCP lease {}", describe(&lease));
            log_mtu(c, &lease, shards);
        }
        Event::Renewed(lease) => {
            let done = shards.set_lease4(c.port, Some(lease4(&lease)));
            if done.rebuilt {
                log::info!(
                    "{role} port: DHCP renewal changed the options: {}",
                    describe(&lease)
                );
                log_mtu(c, &lease, shards);
            } else {
                log::debug!("{role} port: DHCP lease renewed: {}", describe(&lease));
            }
        }
        Event::AddressChanged { old, new } => {
            log_mtu(c, &new, shards);
            let done = shards.set_lease4(c.port, Some(lease4(&new)));
            log::warn!(
                "{role} port: DHCP moved the address from {} to {} ({} sessions on the old one ended)",
                old.address,
                describe(&new),
                done.ended
            );
        }
        Event::Lost { old } => {
            let done = shards.set_lease4(c.port, None);
            log::warn!(
                "{role} port: DHCP lease of {} lost ({} sessions ended); asking again",
                old.address,
                done.ended
            );
        }
    }
}

/// Logs that port `c` has been without a lease for a while, at the backoff of the
/// module doc; forgets the schedule once a lease is in force.
fn report_no_lease(c: &mut PortClient, now: u64) {
    let s = c.client.snapshot(now);
    let Some(unbound_ms) = s.unbound_ms else {
        c.no_lease = None;
        return;
    };
    let since = now.saturating_sub(unbound_ms);
    let schedule = c.no_lease.get_or_insert_with(|| {
        Backoff::new(
            since.saturating_add(NO_LEASE_FIRST_MS),
            NO_LEASE_FIRST_MS,
            NO_LEASE_CAP_MS,
        )
    });
    if schedule.due(now) {
        log::warn!(
            "{} port: {} for {} s; still asking ({} DHCP messages sent)",
            c.role,
            no_lease_why(&s),
            unbound_ms / 1000,
            s.counters.sent
        );
    }
}

/// Why a client without a lease has none, in a few words.
pub fn no_lease_why(s: &Snapshot) -> String {
    match (s.answered, s.last_refusal) {
        (false, _) => "no DHCP answer".into(),
        (true, Some(e)) => format!("no usable DHCP lease (last refused: {e})"),
        (true, None) => "no DHCP lease yet".into(),
    }
}

/// Logs the MTU `lease` gives port `c` when it is not the one offered (bounded,
/// `engine::lease::lease_mtu`).
fn log_mtu(c: &PortClient, lease: &Lease, shards: &mut dyn Shards) {
    let (Some(offered), Some(config)) = (lease.mtu, shards.config()) else {
        return;
    };
    let layout = port::layout(&config);
    let Some(p) = layout.iter().find(|p| p.id == c.port) else {
        return;
    };
    let used = lease_mtu(p.port, offered);
    if used != offered {
        log::warn!(
            "{} port: DHCP offers MTU {offered}; natbox uses {used} (576 to 9000, 1280 and up with IPv6 on the port)",
            c.role
        );
    }
}

/// Sends a client's next ARP probe when due, and gives it the verdict once the wait
/// is over (module doc).
fn probe(c: &mut PortClient, shards: &mut dyn Shards, now: u64) {
    let Some(p) = c.probing.as_mut() else {
        return;
    };
    let elapsed = now.saturating_sub(p.started_ms);
    if elapsed >= DECIDE_AFTER_MS {
        let conflict = shards.probe4(c.port, None);
        let addr = p.addr;
        c.probing = None;
        if conflict {
            log::warn!(
                "{} port: {addr} offered by DHCP is in use on the link (RFC 5227): declined",
                c.role
            );
        }
        c.client.probe_result(now, conflict);
    } else if p.sent < PROBES && elapsed >= u64::from(p.sent) * PROBE_INTERVAL_MS {
        p.sent += 1;
        shards.probe4(c.port, Some(p.addr));
    }
}

/// What the engine takes of a lease.
fn lease4(lease: &Lease) -> Lease4 {
    Lease4 {
        address: lease.address,
        gateway: lease.gateway(),
        routes: lease
            .routes
            .iter()
            .filter(|r| r.dest.prefix_len() > 0)
            .map(|r| (r.dest, r.gateway))
            .collect(),
        mtu: lease.mtu,
    }
}

fn describe(lease: &Lease) -> String {
    let router = lease
        .gateway()
        .map_or_else(|| "no router".to_string(), |g| format!("router {g}"));
    let time = lease.times.map_or_else(
        || "infinite".to_string(),
        |t| format!("{} s", t.lease_ms / 1000),
    );
    let mtu = lease.mtu.map_or_else(String::new, |m| format!(", MTU {m}"));
    format!(
        "{} from {}, {router}, lease {time}{mtu}",
        lease.address, lease.server
    )
}

/// A seed that differs between boxes (the MAC) and boots (the clock).
pub(super) fn seed(mac: [u8; 6]) -> u64 {
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mac = mac.iter().fold(0u64, |s, &b| s << 8 | u64::from(b));
    clock ^ mac.rotate_left(17)
}

#[cfg(test)]
mod tests {
    use super::*;
    use natbox_core::dhcp4::LeaseError;

    /// What the console says of a port without a lease: silence, refusals, or neither.
    #[test]
    fn no_lease_says_whether_a_server_answered_and_why_nothing_came() {
        let client = Client::new([2, 0, 0, 0, 2, 1], 1, 0);
        let mut s = client.snapshot(31_000);
        assert_eq!(no_lease_why(&s), "no DHCP answer");
        s.answered = true;
        assert_eq!(no_lease_why(&s), "no DHCP lease yet");
        s.last_refusal = Some(LeaseError::ZeroLeaseTime);
        assert_eq!(
            no_lease_why(&s),
            "no usable DHCP lease (last refused: lease time 0)"
        );
    }
}
