//! The DHCPv6 client of a port whose `ipv6` is `"dhcp"` (RFC 8415 IA_NA; the state
//! machine is `natbox_core::dhcp6`): this module carries its messages, checks a leased
//! address by Duplicate Address Detection and keeps the lease in force, for
//! `services::ipv6` to put on the port.
//!
//! Contract:
//! - Server messages reach it through the engine's `Dhcp6Client` binding of the port
//!   (UDP 547 → 546 to one of the port's addresses).
//! - What it sends leaves as UDP 546 → 547 from the port's link-local address to
//!   All_DHCP_Relay_Agents_and_Servers (ff02::1:2), out of the port, with no route
//!   (`Shards::multicast6`, through `ORIGIN_SHARD`).
//! - A leased address is checked before use (RFC 8415 section 18.2.10.1) with RFC
//!   4862's Duplicate Address Detection (`autoconf::dad`, `Shards::probe6`): one
//!   solicitation, the verdict a second later; a conflict declines it.
//! - Each lease bound, renewed to another address or lost is logged.

use crate::control::shards::{Shards, Snapshots};
use crate::engine::local::{DHCP6_CLIENT_PORT, DHCP6_SERVER_PORT};
use crate::engine::port::PortId;
use crate::services::packet;
use crate::wire::ethernet::Mac;
use natbox_core::autoconf::dad::{Dad, Step};
use natbox_core::dhcp6::{Client, Event, Lease, Snapshot};
use std::net::{IpAddr, Ipv6Addr};

/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 section 7.1).
const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// One port's DHCPv6 client.
#[derive(Debug)]
pub(super) struct Dhcp6Port {
    client: Client,
    /// The port's link-local address: the source of what the client sends.
    link_local: Ipv6Addr,
    dad: Option<Dad>,
    /// The lease in force.
    lease: Option<Lease>,
}

impl Dhcp6Port {
    pub(super) fn new(mac: [u8; 6], now: u64) -> Dhcp6Port {
        let mut ll = [0u8; 16];
        ll[..2].copy_from_slice(&[0xfe, 0x80]);
        ll[8..].copy_from_slice(&Mac(mac).eui64_interface_id());
        Dhcp6Port {
            client: Client::new(mac, super::dhcp4::seed(mac), now),
            link_local: Ipv6Addr::from(ll),
            dad: None,
            lease: None,
        }
    }

    /// The leased address in force.
    pub(super) fn address(&self) -> Option<Ipv6Addr> {
        self.lease.as_ref().map(|l| l.address)
    }

    /// Offers a delivered datagram; true if it was a DHCPv6 server message (taken,
    /// whether the client wanted it or not).
    pub(super) fn receive(&mut self, ip: &[u8], now: u64) -> bool {
        let Some(payload) = packet::udp6_payload(ip, DHCP6_SERVER_PORT, DHCP6_CLIENT_PORT) else {
            return false;
        };
        // A message not for this client is counted there.
        let _ = self.client.handle_reply(now, payload);
        true
    }

    /// Runs the client's timers and its address check, applies its events and sends
    /// what it asks, out of `port` (`role` names it in the log).
    pub(super) fn poll(&mut self, port: PortId, role: &str, shards: &mut dyn Shards, now: u64) {
        if self.client.poll_timeout().is_some_and(|at| at <= now) {
            self.client.handle_timeout(now);
        }
        self.check(port, role, shards, now);
        while let Some(event) = self.client.poll_event() {
            self.apply(role, event, now);
        }
        // A new check's first solicitation is due at once.
        self.check(port, role, shards, now);
        while let Some(payload) = self.client.poll_transmit() {
            let ip = packet::udp(
                IpAddr::V6(self.link_local),
                IpAddr::V6(ALL_SERVERS),
                DHCP6_CLIENT_PORT,
                DHCP6_SERVER_PORT,
                &payload,
            );
            let sent = ip.map(|ip| shards.multicast6(port, ip));
            if let Some(Err(reason)) = sent {
                log::debug!("{role} port: DHCPv6 message not sent ({})", reason.name());
            }
        }
    }

    /// Runs what Duplicate Address Detection of a leased address has due.
    fn check(&mut self, port: PortId, role: &str, shards: &mut dyn Shards, now: u64) {
        match self.dad.as_mut().and_then(|d| d.step(now)) {
            Some(Step::Probe(addr)) => {
                shards.probe6(port, Some(addr));
            }
            Some(Step::Verdict(addr)) => {
                self.dad = None;
                let conflict = shards.probe6(port, None);
                if conflict {
                    log::warn!(
                        "{role} port: {addr} leased by DHCPv6 is in use on the link (duplicate \
                         address detection): declined"
                    );
                }
                self.client.probe_result(now, conflict);
            }
            None => {}
        }
    }

    fn apply(&mut self, role: &str, event: Event, now: u64) {
        match event {
            Event::Probe { address } => self.dad = Some(Dad::new(address, now)),
            Event::Bound(lease) => {
                log::info!("{role} port: DHCPv6 lease {}", describe(&lease));
                self.lease = Some(lease);
            }
            Event::Renewed(lease) => {
                log::debug!("{role} port: DHCPv6 lease renewed: {}", describe(&lease));
                self.lease = Some(lease);
            }
            Event::AddressChanged { old, new } => {
                log::warn!(
                    "{role} port: DHCPv6 moved the address from {} to {}",
                    old.address,
                    describe(&new)
                );
                self.lease = Some(new);
            }
            Event::Lost { old } => {
                log::warn!(
                    "{role} port: DHCPv6 lease of {} lost; asking again",
                    old.address
                );
                self.lease = None;
            }
        }
    }

    pub(super) fn snapshot(&self, now: u64) -> Snapshot {
        self.client.snapshot(now)
    }
}

fn describe(lease: &Lease) -> String {
    let secs = |s: u32| {
        if s == u32::MAX {
            "infinite".to_string()
        } else {
            format!("{s} s")
        }
    };
    format!(
        "{} from server {}, valid {}, T1 {}",
        lease.address,
        hex(&lease.server_id),
        secs(lease.valid_s),
        secs(lease.t1_s)
    )
}

/// A DUID as the shell shows it: hex bytes joined by ':'.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
