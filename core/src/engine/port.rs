//! The data ports: their identity, the addresses the box holds on each, and what the
//! I/O layer tells the engine about a port (`PortSetup`). Answers "is this address
//! ours on this port", "which address does the box speak from here" and "is this
//! address on-link here"; nothing else in the engine reads a port's addresses directly.

use super::Engine;
use crate::wire::ethernet::Mac;
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A data port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    Inside = 0,
    Outside = 1,
}

impl Port {
    pub const ALL: [Port; 2] = [Port::Inside, Port::Outside];

    pub fn name(self) -> &'static str {
        match self {
            Port::Inside => "inside",
            Port::Outside => "outside",
        }
    }
}

/// What the I/O layer knows about a port that the configuration does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSetup {
    pub mac: Mac,
}

#[derive(Debug, Clone)]
pub(super) struct PortState {
    pub(super) mac: Mac,
    pub(super) ipv4: Option<Ipv4Net>,
    /// The directed broadcast address of `ipv4` (none for /31 and /32).
    pub(super) broadcast4: Option<Ipv4Addr>,
    pub(super) ipv6: Option<Ipv6Net>,
    pub(super) link_local: Ipv6Addr,
    pub(super) mtu: usize,
}

/// A port as the shell shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub port: Port,
    pub mac: Mac,
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    pub link_local: Ipv6Addr,
    pub mtu: usize,
}

/// The EUI-64 link-local address of a MAC (RFC 4291 appendix A).
pub(super) fn link_local(mac: Mac) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 2,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

impl Engine {
    /// The box's IPv4 addresses on a port: the port address, plus the pool on the
    /// outside (the gateway must be able to reach every pool address).
    pub(super) fn owns4(&self, port: Port, addr: Ipv4Addr) -> bool {
        self.ports[port as usize]
            .ipv4
            .is_some_and(|n| n.addr() == addr)
            || (port == Port::Outside && self.nat.is_pool_addr(addr))
    }

    /// The address the box speaks from on a port.
    pub(super) fn source4(&self, port: Port) -> Option<Ipv4Addr> {
        self.ports[port as usize]
            .ipv4
            .map(|n| n.addr())
            .or_else(|| self.nat.pool().first().copied())
    }

    /// Whether `addr` is on-link on `port`: in the port's IPv4 prefix (a port without
    /// one has no IPv4 neighbours). Every route's next hop is (the configuration checks).
    pub(super) fn on_link4(&self, port: Port, addr: Ipv4Addr) -> bool {
        self.ports[port as usize]
            .ipv4
            .is_some_and(|n| n.contains(&addr))
    }

    pub(super) fn owns6(&self, port: Port, addr: &Ipv6Addr) -> bool {
        let p = &self.ports[port as usize];
        p.link_local == *addr || p.ipv6.is_some_and(|n| n.addr() == *addr)
    }

    /// Whether `addr` is on-link on `port`: link-local, or in the port's IPv6 prefix.
    pub(super) fn on_link6(&self, port: Port, addr: &Ipv6Addr) -> bool {
        addr.is_unicast_link_local()
            || self.ports[port as usize]
                .ipv6
                .is_some_and(|n| n.contains(addr))
    }
}
