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
//! one.
//!
//! On-link routes: a lease's route via 0.0.0.0 (RFC 3442; how Google Compute Engine
//! gives a /32 address its gateway) stays in the effective configuration as written;
//! `route` sends to its destination directly and `port::on_link_routes4` makes its
//! prefix on-link for ARP, so the gateway outside the /32 is resolved and learnt.
//!
//! MTU (option 26, RFC 2132 section 5.1; AWS hands 9001, GCP 1460): the lease's MTU
//! replaces the port's configured one while the lease is held ([`lease_mtu`]), bounded
//! below by 576 (RFC 791 and RFC 1122 section 3.3.3: every IPv4 host takes 576-byte
//! datagrams; an option below it names a link natbox does not run on), or 1280 on a
//! port with an IPv6 address (RFC 8200 section 5), and above by the largest port MTU
//! natbox supports (`firmware_config::validate::MTU_RANGE`, 9000: AWS's 9001 is used
//! as 9000). A clamped value is logged by the caller (`services::dhcp4`). The
//! dataplane follows the effective MTU as it follows a committed one: it reopens the
//! port with the new MTU on its link, and rebuilds the rings with larger slots when the
//! new MTU is larger than they hold (their memory is fixed per port, so a larger MTU
//! costs no memory there; the engine's frame buffers grow with it, 512 of them per
//! shard). Losing the lease gives the port its configured MTU back.

use firmware_config::validate::MTU_RANGE;
use firmware_config::{Config, Ipv4Setting, Port, Route};
use ipnet::{IpNet, Ipv4Net};
use std::net::{IpAddr, Ipv4Addr};

/// What a DHCP lease gives a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease4 {
    /// The port's address and the on-link prefix.
    pub address: Ipv4Net,
    /// The default router, if the lease names one.
    pub gateway: Option<Ipv4Addr>,
    /// Other routes: prefix and next hop (RFC 3442), 0.0.0.0 for on-link.
    pub routes: Vec<(Ipv4Net, Ipv4Addr)>,
    /// The interface MTU the lease gives (option 26), as given: [`lease_mtu`] bounds it.
    pub mtu: Option<u16>,
}

/// The smallest MTU a lease may set on a port without IPv6, and with it.
pub const MIN_LEASE_MTU: u16 = 576;
pub const MIN_LEASE_MTU6: u16 = 1280;

/// The MTU port `port` takes from a lease offering `offered` (module doc).
pub fn lease_mtu(port: &Port, offered: u16) -> u16 {
    let floor = if port.ipv6.is_some() {
        MIN_LEASE_MTU6
    } else {
        MIN_LEASE_MTU
    };
    offered.clamp(floor, *MTU_RANGE.end())
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
        if let Some(offered) = lease.mtu {
            port.mtu = lease_mtu(port, offered);
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
            mtu: None,
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

    /// RFC 2132 section 5.1: the lease's MTU is the port's while it is held, within
    /// 576 (1280 with IPv6 on the port) and 9000; without option 26 the port keeps
    /// its configured MTU.
    #[test]
    fn rfc2132_5_1_the_lease_mtu_is_the_port_mtu_within_bounds() {
        let c = dhcp_outside();
        let mtu = |offered: Option<u16>, c: &Config| {
            let lease = Lease4 {
                mtu: offered,
                ..lease()
            };
            effective(c, &[None, Some(lease)]).outside.mtu
        };
        assert_eq!(mtu(None, &c), 1500);
        assert_eq!(mtu(Some(1460), &c), 1460, "GCP");
        assert_eq!(
            mtu(Some(9001), &c),
            9000,
            "AWS, clamped to the most natbox runs"
        );
        assert_eq!(mtu(Some(68), &c), 576);
        let mut with6 = c.clone();
        with6.outside.ipv6 = Some("2001:db8:ff::10/64".parse().expect("net"));
        assert_eq!(mtu(Some(576), &with6), 1280, "IPv6 needs 1280 (RFC 8200 5)");
        assert_eq!(mtu(Some(1460), &with6), 1460);
    }
}
