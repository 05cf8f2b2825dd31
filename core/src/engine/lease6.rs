//! What an IPv6 port learns on its link, laid over the configuration like the DHCPv4
//! leases of `lease`: the router of its Router Advertisements (RFC 4861) and the
//! address it formed (SLAAC, RFC 4862) or leased (DHCPv6, RFC 8415).
//!
//! Contract: `Engine::config` stays as written (`ipv6 = "slaac"`, no `gateway6`); the
//! tables follow the effective configuration, where a port with a `Lease6` holds
//! - its `router` as `gateway6` when the configuration names none;
//! - its `address` as its IPv6 address when its `ipv6` is `"slaac"` or `"dhcp"`: the
//!   box answers Neighbor Solicitations for it, and the egress-only filter and the
//!   source checks treat it as they treat a configured one.
//!
//! A learned port without an address has no IPv6 address (forwarding still works
//! through its link-local address and the learned router). Setting a `Lease6` is a
//! reconfiguration like any other (`config::Engine::reshape`): an unchanged one
//! changes nothing, a new router or address rebuilds the tables, keeping every IPv6
//! state (`Fw6::adopt`) and NAT session.

use super::config::Reconfigured;
use super::port::PortId;
use super::Engine;
use firmware_config::{Config, Ipv6Setting};
use ipnet::Ipv6Net;
use std::net::Ipv6Addr;

/// What a port learned on its link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lease6 {
    /// Its address and the on-link prefix (SLAAC: the /64; DHCPv6: see
    /// `autoconf::Autoconf::on_link_prefix`).
    pub address: Option<Ipv6Net>,
    /// Its default router (a link-local address, from Router Advertisements).
    pub router: Option<Ipv6Addr>,
}

/// `config` with the `Lease6` of each port (by `PortId` index, in `port::layout`
/// order) laid over it.
pub(super) fn effective(config: &Config, leases: &[Option<Lease6>]) -> Config {
    let mut out = config.clone();
    let ports = out
        .inside
        .iter_mut()
        .chain(std::iter::once(&mut out.outside));
    for (port, lease) in ports.zip(leases.iter()) {
        let Some(lease) = lease else {
            continue;
        };
        if port.gateway6.is_none() {
            port.gateway6 = lease.router;
        }
        if port.ipv6_learned() {
            port.ipv6 = lease.address.map(Ipv6Setting::Static);
        }
    }
    out
}

impl Engine {
    /// Sets (or, `None`, clears) what port `port` learned on its link: the tables
    /// follow the effective configuration as after `reconfigure`.
    pub fn set_lease6(&mut self, port: PortId, lease: Option<Lease6>) -> Reconfigured {
        let mut leases6 = self.leases6.clone();
        if leases6.len() <= port.index() {
            leases6.resize(port.index() + 1, None);
        }
        leases6[port.index()] = lease;
        let (configured, leases) = (self.config.clone(), self.leases.clone());
        self.reshape(&configured, leases, leases6)
    }

    /// What port `port` learned on its link, if anything.
    pub fn lease6(&self, port: PortId) -> Option<&Lease6> {
        self.leases6.get(port.index())?.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(outside_ipv6: &str) -> Config {
        toml::from_str(&format!(
            "[inside]\nport = \"lan0\"\nipv4 = \"10.0.0.1/24\"\nipv6 = \"2001:db8:10::1/64\"\n\
             [outside]\nport = \"wan0\"\nipv4 = \"198.51.100.10/24\"\nipv6 = \"{outside_ipv6}\"\n"
        ))
        .expect("a configuration")
    }

    fn lease() -> Lease6 {
        Lease6 {
            address: Some("2001:db8:ff::77/64".parse().expect("net")),
            router: Some("fe80::1".parse().expect("addr")),
        }
    }

    #[test]
    fn a_learned_port_takes_the_address_and_the_router() {
        let c = config("slaac");
        let e = effective(&c, &[None, Some(lease())]);
        assert_eq!(e.outside.ipv6_net(), lease().address);
        assert_eq!(e.outside.gateway6, lease().router);
        assert_eq!(e.inside, c.inside);
        let bare = effective(&c, &[None, Some(Lease6::default())]);
        assert_eq!(bare.outside.ipv6, None, "no address learned yet: none");
    }

    #[test]
    fn a_static_address_and_a_configured_gateway_win() {
        let mut c = config("2001:db8:ff::10/64");
        let e = effective(&c, &[None, Some(lease())]);
        assert_eq!(
            e.outside.ipv6, c.outside.ipv6,
            "static: only the router is taken"
        );
        assert_eq!(e.outside.gateway6, lease().router);
        c.outside.gateway6 = Some("fe80::99".parse().expect("addr"));
        let e = effective(&c, &[None, Some(lease())]);
        assert_eq!(e.outside.gateway6, c.outside.gateway6);
    }
}
