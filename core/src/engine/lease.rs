//! Addresses ports learn at run time (DHCPv4, RFC 2131) laid over the configuration.
//!
//! Contract: the engine keeps the configuration as written (`Engine::config`: what the
//! shell shows and edits, with `ipv4 = "dhcp"`) and builds every table from the
//! *effective* configuration (`Engine::effective_config`), where each DHCP port with
//! a lease holds the lease's address and prefix, the lease's classless routes (RFC
//! 3442) other than the default, and on the outside port the lease's router as its
//! default gateway unless the configuration names one. An inside port's lease gives
//! no default route (a cloud's second NIC is leased its subnet's router too, and the
//! box's default route leaves by the outside). A DHCP port without a lease has no IPv4 address;
//! the NAT pool that defaults to the outside address is then empty, and translation
//! is refused as `no_pool_address`. Setting or clearing a lease is a reconfiguration
//! like any other (`config::Engine::reconfigure`): a renewal that keeps the address
//! changes nothing, and a new address ends, as mapping events, the sessions on the old
//! one. The lease's MTU is not applied yet: the port keeps its configured MTU.

use firmware_config::{Config, Ipv4Setting, Route};
use ipnet::{IpNet, Ipv4Net};
use std::net::{IpAddr, Ipv4Addr};

/// What a DHCP lease gives a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease4 {
    /// The port's address and the on-link prefix.
    pub address: Ipv4Net,
    /// The default router, if the lease names one.
    pub gateway: Option<Ipv4Addr>,
    /// Other routes: prefix and next hop (RFC 3442).
    pub routes: Vec<(Ipv4Net, Ipv4Addr)>,
}

/// `config` with the leases of its DHCP ports (by `PortId` index, in `port::layout`
/// order) laid over it.
pub(super) fn effective(config: &Config, leases: &[Option<Lease4>]) -> Config {
    let mut out = config.clone();
    let ports = out
        .inside
        .iter_mut()
        .map(|p| (p, false))
        .chain(std::iter::once((&mut out.outside, true)));
    for ((port, outside), lease) in ports.zip(leases.iter()) {
        let Some(lease) = lease.as_ref().filter(|_| port.ipv4_dhcp()) else {
            continue;
        };
        port.ipv4 = Some(Ipv4Setting::Static(lease.address));
        if outside && port.gateway4.is_none() {
            port.gateway4 = lease.gateway;
        }
        port.routes
            .extend(lease.routes.iter().map(|&(prefix, via)| Route {
                prefix: IpNet::V4(prefix),
                via: IpAddr::V4(via),
            }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dhcp_outside() -> Config {
        let mut c: Config = toml::from_str(
            "[inside]\nport = \"lan0\"\nipv4 = \"10.0.0.1/24\"\n\
             [outside]\nport = \"wan0\"\nipv4 = \"dhcp\"\n",
        )
        .expect("a configuration");
        c.nat.pool.clear();
        c
    }

    fn lease() -> Lease4 {
        Lease4 {
            address: "198.51.100.77/24".parse().expect("net"),
            gateway: Some(Ipv4Addr::new(198, 51, 100, 1)),
            routes: vec![(
                "192.0.2.0/24".parse().expect("net"),
                Ipv4Addr::new(198, 51, 100, 2),
            )],
        }
    }

    #[test]
    fn a_lease_gives_the_dhcp_port_its_address_gateway_routes_and_the_pool() {
        let c = dhcp_outside();
        assert!(c.nat_pool().is_empty(), "no lease, no pool");
        let e = effective(&c, &[None, Some(lease())]);
        assert_eq!(e.outside.ipv4_net(), Some(lease().address));
        assert_eq!(e.outside.gateway4, Some(Ipv4Addr::new(198, 51, 100, 1)));
        assert_eq!(e.outside.routes.len(), 1);
        assert_eq!(e.nat_pool(), vec![Ipv4Addr::new(198, 51, 100, 77)]);
        assert_eq!(e.inside, c.inside, "the static port is as configured");
    }

    #[test]
    fn a_configured_gateway_wins_and_a_static_port_ignores_leases() {
        let mut c = dhcp_outside();
        c.outside.gateway4 = Some(Ipv4Addr::new(198, 51, 100, 254));
        let e = effective(&c, &[Some(lease()), Some(lease())]);
        assert_eq!(e.outside.gateway4, Some(Ipv4Addr::new(198, 51, 100, 254)));
        assert_eq!(e.inside, c.inside, "inside is static: its lease is ignored");
    }

    #[test]
    fn an_inside_lease_gives_its_address_and_routes_but_no_default_route() {
        let mut c = dhcp_outside();
        if let Some(inside) = c.inside.as_mut() {
            inside.ipv4 = Some(Ipv4Setting::Dhcp);
        }
        let e = effective(&c, &[Some(lease()), None]);
        let inside = e.inside.expect("inside");
        assert_eq!(inside.ipv4_net(), Some(lease().address));
        assert_eq!(
            inside.gateway4, None,
            "the default route leaves by the outside"
        );
        assert_eq!(inside.routes.len(), 1);
    }
}
