//! Which port a packet leaves by and its next hop: longest-prefix match over the
//! connected prefixes of the ports, the configured static routes, and the default
//! gateways. The table is a handful of entries, so a linear scan beats any trie.
//!
//! An IPv4 route or gateway via 0.0.0.0 (a DHCP lease's, RFC 3442: the destination
//! is on-link) is connected: its next hop is the destination itself.

use super::port::{self, PortId};
use firmware_config::Config;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone)]
struct Route<N, A> {
    net: N,
    port: PortId,
    via: Option<A>,
}

/// The netmask of a prefix length (0..=32).
fn mask4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// A route's IPv4 next hop: `None` (connected) for 0.0.0.0 (module doc).
fn hop4(via: Ipv4Addr) -> Option<Ipv4Addr> {
    (!via.is_unspecified()).then_some(via)
}

/// The routing table.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    v4: Vec<Route<Ipv4Net, Ipv4Addr>>,
    v6: Vec<Route<Ipv6Net, Ipv6Addr>>,
}

/// A route as the shell shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub prefix: IpNet,
    pub port: PortId,
    pub via: Option<IpAddr>,
}

impl Routes {
    pub fn from_config(config: &Config) -> Routes {
        let mut r = Routes::default();
        for c in port::layout(config) {
            let (port, p) = (c.id, c.port);
            if let Some(net) = p.ipv4_net() {
                r.v4.push(Route {
                    net: net.trunc(),
                    port,
                    via: None,
                });
            }
            if let Some(net) = p.ipv6_net() {
                r.v6.push(Route {
                    net: net.trunc(),
                    port,
                    via: None,
                });
            }
            if let Some(gw) = p.gateway4 {
                r.v4.push(Route {
                    net: Ipv4Net::default(),
                    port,
                    via: hop4(gw),
                });
            }
            if let Some(gw) = p.gateway6 {
                r.v6.push(Route {
                    net: Ipv6Net::default(),
                    port,
                    via: Some(gw),
                });
            }
            for route in &p.routes {
                match (route.prefix, route.via) {
                    (IpNet::V4(net), IpAddr::V4(via)) => r.v4.push(Route {
                        net,
                        port,
                        via: hop4(via),
                    }),
                    (IpNet::V6(net), IpAddr::V6(via)) => r.v6.push(Route {
                        net,
                        port,
                        via: Some(via),
                    }),
                    _ => {}
                }
            }
        }
        // Longest prefix first (stable: configuration order breaks ties).
        r.v4.sort_by_key(|x| std::cmp::Reverse(x.net.prefix_len()));
        r.v6.sort_by_key(|x| std::cmp::Reverse(x.net.prefix_len()));
        r
    }

    /// Egress port and next hop for an IPv4 destination: the first match, since the
    /// table is kept longest prefix first.
    pub fn lookup4(&self, dst: Ipv4Addr) -> Option<(PortId, Ipv4Addr)> {
        let bits = dst.to_bits();
        self.v4
            .iter()
            .find(|r| bits & mask4(r.net.prefix_len()) == r.net.network().to_bits())
            .map(|r| (r.port, r.via.unwrap_or(dst)))
    }

    /// Egress port and next hop for an IPv6 destination (longest prefix first).
    pub fn lookup6(&self, dst: &Ipv6Addr) -> Option<(PortId, Ipv6Addr)> {
        self.v6
            .iter()
            .find(|r| r.net.contains(dst))
            .map(|r| (r.port, r.via.unwrap_or(*dst)))
    }

    pub fn list(&self) -> Vec<RouteInfo> {
        let v4 = self.v4.iter().map(|r| RouteInfo {
            prefix: IpNet::V4(r.net),
            port: r.port,
            via: r.via.map(IpAddr::V4),
        });
        let v6 = self.v6.iter().map(|r| RouteInfo {
            prefix: IpNet::V6(r.net),
            port: r.port,
            via: r.via.map(IpAddr::V6),
        });
        v4.chain(v6).collect()
    }
}
