//! The data ports: their identity, the addresses the box holds on each, and what the
//! I/O layer tells the engine about a port (`PortSetup`). Answers "is this address
//! ours on this port", "which address does the box speak from here" and "is this
//! address on-link here"; nothing else in the engine reads a port's addresses directly.
//!
//! A port is a `PortId` (an index into the engine's port table) with `Roles`: inside,
//! outside, or both (one-armed mode). `layout` maps the configuration to ports, once.
//! Direction is never read off the arrival port alone: `Roles::inside_for` (through
//! `Engine::inside4`/`inside6`) decides whether an address on a port is on the inside,
//! so a port with both roles works by its inside prefixes.

use super::Engine;
use crate::wire::ethernet::Mac;
use firmware_config::Config;
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The most ports an engine has. Port tables are kept inline and sized for this, so a
/// `PortId` indexes them without a bounds check on the packet path.
pub const MAX_PORTS: usize = 8;

/// The engine's port table: `MAX_PORTS` inline slots, of which the first `len` are
/// the ports of `layout`. Indexed by `PortId` (see `PortId::slot`).
#[derive(Debug, Clone)]
pub(super) struct Ports {
    slots: [PortState; MAX_PORTS],
    len: u8,
}

impl Ports {
    /// The table for `ports` (at most `MAX_PORTS`: `layout` names two).
    pub(super) fn new(ports: impl IntoIterator<Item = PortState>) -> Ports {
        let mut t = Ports {
            slots: Default::default(),
            len: 0,
        };
        for (slot, p) in t.slots.iter_mut().zip(ports) {
            *slot = p;
            t.len += 1;
        }
        t
    }

    pub(super) fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub(super) fn iter(&self) -> std::slice::Iter<'_, PortState> {
        self.slots[..self.len()].iter()
    }
}

impl std::ops::Index<PortId> for Ports {
    type Output = PortState;
    fn index(&self, id: PortId) -> &PortState {
        &self.slots[id.slot()]
    }
}

impl std::ops::IndexMut<PortId> for Ports {
    fn index_mut(&mut self, id: PortId) -> &mut PortState {
        &mut self.slots[id.slot()]
    }
}

/// A data port: its index in the engine's port table (the order of `layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u8);

impl PortId {
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The id's slot in the engine's inline tables: its index, taken modulo
    /// `MAX_PORTS` so that no lookup needs a bounds check. Ids come from `layout`
    /// (the I/O layer uses no other), so the modulo never changes one; an id beyond
    /// the ports names an empty slot (no roles, no address) rather than panicking.
    pub(super) fn slot(self) -> usize {
        self.index() % MAX_PORTS
    }
}

/// What a port faces. A port may have both roles (one-armed mode: one NIC carries the
/// inside and the outside, and the inside prefixes tell the two apart, see
/// `Roles::inside_for`); room for `sync`/`mgmt` later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    pub inside: bool,
    pub outside: bool,
}

impl Roles {
    pub const INSIDE: Roles = Roles {
        inside: true,
        outside: false,
    };
    pub const OUTSIDE: Roles = Roles {
        inside: false,
        outside: true,
    };
    /// One-armed mode.
    pub const BOTH: Roles = Roles {
        inside: true,
        outside: true,
    };

    /// Whether an address seen on a port with these roles (the source of a packet that
    /// arrived there, or the destination of one that leaves by it) is on the inside:
    /// always on an inside-only port, never on an outside-only one, and on a port with
    /// both roles when `in_inside_prefix` says so. The one place the engine decides
    /// direction; `in_inside_prefix` runs only for a port with both roles.
    pub fn inside_for(self, in_inside_prefix: impl FnOnce() -> bool) -> bool {
        self.inside && (!self.outside || in_inside_prefix())
    }

    /// For display: `inside`, `outside` or `inside+outside`.
    pub fn label(self) -> &'static str {
        match (self.inside, self.outside) {
            (true, true) => "inside+outside",
            (true, false) => "inside",
            (false, true) => "outside",
            (false, false) => "none",
        }
    }

    /// `label` as a counter-name prefix (letters and `_` only, as Prometheus metric
    /// names want): `inside`, `outside` or `inside_outside`.
    pub fn key(self) -> &'static str {
        match (self.inside, self.outside) {
            (true, true) => "inside_outside",
            _ => self.label(),
        }
    }
}

/// A port the configuration names: its settings and its roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig<'a> {
    pub id: PortId,
    pub port: &'a firmware_config::Port,
    pub roles: Roles,
}

/// The data ports of `config`, in port-id order, with their roles: with `[inside]`,
/// `[inside]` is port 0 (inside) and `[outside]` port 1 (outside); without it the box
/// is one-armed and `[outside]` is port 0 with both roles. The only place that maps
/// the configuration's sections to ports and roles.
pub fn layout(config: &Config) -> Vec<PortConfig<'_>> {
    let ports: Vec<(&firmware_config::Port, Roles)> = match &config.inside {
        Some(inside) => vec![(inside, Roles::INSIDE), (&config.outside, Roles::OUTSIDE)],
        None => vec![(&config.outside, Roles::BOTH)],
    };
    ports
        .into_iter()
        .enumerate()
        .map(|(i, (port, roles))| PortConfig {
            // At most two ports: the configuration names no more.
            id: PortId(i as u8),
            port,
            roles,
        })
        .collect()
}

/// What the I/O layer knows about a port that the configuration does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSetup {
    pub mac: Mac,
}

#[derive(Debug, Clone)]
pub(super) struct PortState {
    pub(super) roles: Roles,
    pub(super) mac: Mac,
    pub(super) ipv4: Option<Ipv4Net>,
    /// The directed broadcast address of `ipv4` (none for /31 and /32).
    pub(super) broadcast4: Option<Ipv4Addr>,
    /// Prefixes on-link beyond `ipv4`'s: those of the routes via 0.0.0.0
    /// (`on_link_routes4`).
    pub(super) on_link4: Vec<Ipv4Net>,
    pub(super) ipv6: Option<Ipv6Net>,
    pub(super) link_local: Ipv6Addr,
    pub(super) mtu: usize,
}

/// A port as the shell shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub port: PortId,
    /// The configuration's interface name (or MAC).
    pub name: String,
    pub roles: Roles,
    pub mac: Mac,
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    pub link_local: Ipv6Addr,
    pub mtu: usize,
}

/// An empty slot of the port table: no roles, no address, MTU 0.
impl Default for PortState {
    fn default() -> Self {
        PortState {
            roles: Roles::default(),
            mac: Mac::default(),
            ipv4: None,
            broadcast4: None,
            on_link4: Vec::new(),
            ipv6: None,
            link_local: Ipv6Addr::UNSPECIFIED,
            mtu: 0,
        }
    }
}

impl PortState {
    pub(super) fn new(c: &PortConfig<'_>, setup: PortSetup) -> PortState {
        let p = c.port;
        PortState {
            roles: c.roles,
            mac: setup.mac,
            ipv4: p.ipv4_net(),
            broadcast4: p
                .ipv4_net()
                .filter(|n| n.prefix_len() < 31)
                .map(|n| n.broadcast()),
            on_link4: on_link_routes4(p),
            ipv6: p.ipv6_net(),
            link_local: link_local(setup.mac),
            mtu: usize::from(p.mtu),
        }
    }
}

/// The IPv4 prefixes a port reaches on-link through a router of 0.0.0.0: its routes
/// via 0.0.0.0, and 0.0.0.0/0 if its gateway is 0.0.0.0. Only a DHCP lease names such
/// routes (RFC 3442 "DHCP Client Behavior": a router of 0.0.0.0 means the destination
/// is on the link, as Google Compute Engine's /32 leases reach their gateway); `route`
/// sends to their destinations directly, and `Engine::on_link4` counts them.
pub(super) fn on_link_routes4(p: &firmware_config::Port) -> Vec<Ipv4Net> {
    let routes = p.routes.iter().filter_map(|r| match (r.prefix, r.via) {
        (ipnet::IpNet::V4(net), std::net::IpAddr::V4(via)) if via.is_unspecified() => Some(net),
        _ => None,
    });
    let default = p
        .gateway4
        .filter(Ipv4Addr::is_unspecified)
        .map(|_| Ipv4Net::default());
    routes.chain(default).collect()
}

/// The largest MTU of the ports of `config`: what the engine's frame buffers hold.
pub(super) fn max_mtu(config: &Config) -> usize {
    layout(config)
        .iter()
        .map(|c| usize::from(c.port.mtu))
        .max()
        .unwrap_or(0)
}

/// The EUI-64 link-local address of a MAC (RFC 4291 appendix A).
pub(super) fn link_local(mac: Mac) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[..2].copy_from_slice(&[0xfe, 0x80]);
    a[8..].copy_from_slice(&mac.eui64_interface_id());
    Ipv6Addr::from(a)
}

impl Engine {
    /// The box's IPv4 addresses on a port: the port address, plus the pool on the
    /// outside (the gateway must be able to reach every pool address).
    pub(super) fn owns4(&self, port: PortId, addr: Ipv4Addr) -> bool {
        let p = &self.ports[port];
        p.ipv4.is_some_and(|n| n.addr() == addr) || (p.roles.outside && self.nat.is_pool_addr(addr))
    }

    /// The port ids, in order.
    pub(super) fn port_ids(&self) -> impl Iterator<Item = PortId> {
        // `layout` names at most a handful of ports.
        (0..self.ports.len() as u8).map(PortId)
    }

    /// Whether IPv4 `addr`, seen on `port`, is on the inside (see `Roles::inside_for`;
    /// the NAT's inside prefixes decide on a port with both roles). The box's own
    /// addresses on such a port (its address, the pool) are never an inside host's,
    /// though one-armed they lie in the inside prefix: a packet from one of them is
    /// from the outside, and so `spoofed_from_outside` (BCP 38).
    pub(super) fn inside4(&self, port: PortId, addr: Ipv4Addr) -> bool {
        self.ports[port]
            .roles
            .inside_for(|| self.nat.translates(addr) && !self.owns4(port, addr))
    }

    /// As `inside4`, for IPv6 (the filter's inside prefixes decide, the port's own
    /// addresses excepted).
    pub(super) fn inside6(&self, port: PortId, addr: &Ipv6Addr) -> bool {
        self.ports[port]
            .roles
            .inside_for(|| self.fw6.is_inside(addr) && !self.owns6(port, addr))
    }

    /// The address the box speaks from on a port.
    pub(super) fn source4(&self, port: PortId) -> Option<Ipv4Addr> {
        self.ports[port]
            .ipv4
            .map(|n| n.addr())
            .or_else(|| self.nat.pool().first().copied())
    }

    /// Whether `addr` is on-link on `port`: in the port's IPv4 prefix, or in a prefix
    /// a lease's route makes on-link (`on_link_routes4`); a port without an IPv4
    /// address has no IPv4 neighbours. Every route's next hop is on-link (the
    /// configuration checks a static one, `dhcp4::Lease` a lease's).
    pub(super) fn on_link4(&self, port: PortId, addr: Ipv4Addr) -> bool {
        let p = &self.ports[port];
        p.ipv4
            .is_some_and(|n| n.contains(&addr) || p.on_link4.iter().any(|r| r.contains(&addr)))
    }

    /// The box's IPv6 addresses on a port: its link-local and its global address.
    pub(super) fn owns6(&self, port: PortId, addr: &Ipv6Addr) -> bool {
        let p = &self.ports[port];
        p.link_local == *addr || p.ipv6.is_some_and(|n| n.addr() == *addr)
    }

    /// Whether `addr` is on-link on `port`: link-local, or in the port's IPv6 prefix.
    pub(super) fn on_link6(&self, port: PortId, addr: &Ipv6Addr) -> bool {
        addr.is_unicast_link_local() || self.ports[port].ipv6.is_some_and(|n| n.contains(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PortSetup;

    fn config() -> Config {
        firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap()
    }

    /// Issue #16: `[inside]` is port 0 with the inside role, `[outside]` port 1 with
    /// the outside role, and nothing else maps configuration sections to ports.
    #[test]
    fn layout_maps_inside_then_outside() {
        let c = config();
        let layout = layout(&c);
        assert_eq!(layout.len(), 2);
        assert_eq!((layout[0].id, layout[0].roles), (PortId(0), Roles::INSIDE));
        assert_eq!((layout[1].id, layout[1].roles), (PortId(1), Roles::OUTSIDE));
        assert_eq!(Some(layout[0].port), c.inside.as_ref());
        assert_eq!(layout[1].port, &c.outside);
    }

    /// Issue #16: without `[inside]` the box is one-armed: `[outside]` is its only
    /// port, with both roles.
    #[test]
    fn layout_of_a_one_armed_config_is_one_port_with_both_roles() {
        let mut c = config();
        c.inside = None;
        let layout = layout(&c);
        assert_eq!(layout.len(), 1);
        assert_eq!((layout[0].id, layout[0].roles), (PortId(0), Roles::BOTH));
        assert_eq!(layout[0].port, &c.outside);
    }

    /// A caller's bug must not panic PID 1: a port `setups` does not name gets the
    /// zero MAC (until `port_moved`), and the others keep theirs.
    #[test]
    fn a_port_without_a_setup_gets_the_zero_mac_not_a_panic() {
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let engine = Engine::new(&config(), &[PortSetup { mac }]);
        assert_eq!(engine.port_info(PortId(0)).mac, mac);
        assert_eq!(engine.port_info(PortId(1)).mac, Mac::default());
    }

    /// A single-role port decides direction by its role alone, without looking at the
    /// address (the packet path pays no prefix lookup for it); a port with both roles
    /// decides by the inside prefixes.
    #[test]
    fn direction_is_by_role_and_by_prefix_only_on_a_port_with_both_roles() {
        let never = || -> bool { panic!("a single-role port looked at the address") };
        assert!(Roles::INSIDE.inside_for(never));
        assert!(!Roles::OUTSIDE.inside_for(never));
        assert!(Roles::BOTH.inside_for(|| true));
        assert!(!Roles::BOTH.inside_for(|| false));
        assert!(
            !Roles::default().inside_for(|| true),
            "no role faces nothing"
        );
    }

    /// A port with both roles is shown as `inside+outside` and keys its counters as
    /// `inside_outside` (a valid Prometheus metric name); single roles are the same
    /// in both.
    #[test]
    fn role_label_and_counter_key() {
        assert_eq!(Roles::BOTH.label(), "inside+outside");
        assert_eq!(Roles::BOTH.key(), "inside_outside");
        for r in [Roles::INSIDE, Roles::OUTSIDE] {
            assert_eq!(r.key(), r.label());
        }
    }

    /// One-armed mode (a later configuration): on a port with both roles, a source in
    /// the NAT's (IPv4) or the filter's (IPv6) inside prefixes is from the inside and
    /// anything else from the outside; the pool is the box's on that port.
    #[test]
    fn a_port_with_both_roles_tells_sides_apart_by_the_inside_prefixes() {
        let c = config();
        let setup = PortSetup {
            mac: Mac([2, 0, 0, 0, 0, 1]),
        };
        let mut engine = Engine::new(&c, &[setup; 2]);
        let port = PortId(0);
        engine.ports[port].roles = Roles::BOTH;
        let inside4 = c.nat_inside_prefixes()[0].addr();
        let remote4 = Ipv4Addr::new(203, 0, 113, 9);
        assert!(engine.inside4(port, inside4));
        assert!(!engine.inside4(port, remote4));
        let pool = c.nat_pool()[0];
        assert!(
            engine.owns4(port, pool),
            "the pool answers on an outside-facing port"
        );
        let inside6 = c.ipv6_inside_prefixes()[0].addr();
        assert!(engine.inside6(port, &inside6));
        assert!(!engine.inside6(port, &"2001:db8:ffff::9".parse().unwrap()));
        // The other port keeps its single role.
        assert!(!engine.inside4(PortId(1), inside4));
    }
}
