//! What a valid OFFER or ACK gives the box, and the validation that refuses nonsense.
//!
//! [`Lease::from_reply`] reads, with the lengths RFC 2132 gives them:
//! - the address (`yiaddr`) and its prefix from the subnet mask (option 1, RFC 2132
//!   §3.3; required: the box routes, it needs its on-link prefix). The mask must be
//!   contiguous and the prefix between /1 and /32; the address must be a unicast host
//!   address: not 0.0.0.0, 255.255.255.255, 0.0.0.0/8, loopback, multicast or class E,
//!   and not its subnet's network or broadcast address (a /31 has neither, RFC 3021;
//!   nor has a /32). A /32 is what Google Compute Engine hands out, with option 121
//!   making the gateway on-link (a host route to it via 0.0.0.0, then the default
//!   route via it).
//! - routes: the classless static routes (option 121, RFC 3442) when present, and then
//!   the router option is ignored (RFC 3442 "DHCP Client Behavior": the client MUST
//!   ignore option 3 when it receives option 121); otherwise a default route via the
//!   first router of option 3 (RFC 2132 §3.5; later routers are not used). Option 121
//!   is decoded strictly: a prefix length above 32, a truncated route, bits set past
//!   the prefix length in the destination, or an empty option refuse the lease. A
//!   route's gateway is 0.0.0.0 (on-link, as Linux and Windows clients read it), a
//!   host address of the subnet other than ours, or an address an on-link route of
//!   option 121 covers; every router of option 3 must be a host of the subnet.
//! - the interface MTU (option 26, RFC 2132 §5.1): 68 to 65535, else the lease is
//!   refused (a server sending a smaller one is misconfigured, and using it would
//!   break the link).
//! - the lease time (option 51, required in OFFER and ACK by RFC 2131 Table 3), not 0;
//!   0xffffffff is an infinite lease (RFC 2131 §3.3) with no T1, T2 or expiry.
//! - T1 (58) and T2 (59): kept when `0 < T1 < T2 < lease`, with a missing one replaced
//!   by its default first; otherwise both defaults, 0.5 and 0.875 of the lease (RFC
//!   2131 §4.4.5). Times are kept in milliseconds so that the defaults of a
//!   one-second lease stay apart.
//! - the server identifier (option 54, required in OFFER and ACK by Table 3), a
//!   unicast address: RENEWING sends to it.
//! - DNS servers (option 6), optional, as given.
//!
//! A refusal is a [`LeaseError`] naming the reason, with a message for the shell.

use super::message::{BadLength, Options, Reply};
use dhcproto::v4::OptionCode;
use ipnet::Ipv4Net;
use std::fmt;
use std::net::Ipv4Addr;

/// A route from the lease: `gateway` 0.0.0.0 means the destination is on-link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub dest: Ipv4Net,
    pub gateway: Ipv4Addr,
}

/// The lease's timers, in milliseconds from the moment the lease starts (when the
/// REQUEST that earned it was sent, RFC 2131 §4.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub lease_ms: u64,
}

/// A validated lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Our address and the on-link prefix.
    pub address: Ipv4Net,
    /// The server identifier (option 54).
    pub server: Ipv4Addr,
    /// The routes in force: option 121's, or a default route via option 3's first router.
    pub routes: Vec<Route>,
    pub mtu: Option<u16>,
    pub dns: Vec<Ipv4Addr>,
    /// `None`: an infinite lease.
    pub times: Option<LeaseTimes>,
}

/// Why an OFFER or ACK was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseError {
    /// An option's value does not have its RFC 2132 length (the option code).
    BadOptionLength(u8),
    MissingSubnetMask,
    NonContiguousMask(Ipv4Addr),
    /// /0 or /32.
    BadPrefix(u8),
    /// Not a unicast host address of its subnet.
    BadAddress(Ipv4Addr),
    MissingServerId,
    BadServerId(Ipv4Addr),
    MissingLeaseTime,
    ZeroLeaseTime,
    /// A router (option 3) or a route's gateway (option 121) outside our subnet.
    GatewayOutsideSubnet(Ipv4Addr),
    /// A router or gateway that is our own address or the subnet's network or broadcast
    /// address.
    GatewayNotHost(Ipv4Addr),
    BadClasslessRoute(RouteEncoding),
    MtuOutOfRange(u16),
}

/// What is wrong with an option 121 encoding (RFC 3442 §"DHCP Client Behavior").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteEncoding {
    Empty,
    PrefixTooLong(u8),
    Truncated,
    /// The destination has bits set past its prefix length.
    HostBitsSet,
}

impl fmt::Display for LeaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LeaseError::*;
        match self {
            BadOptionLength(code) => write!(f, "option {code} has a wrong length"),
            MissingSubnetMask => write!(f, "no subnet mask (option 1)"),
            NonContiguousMask(m) => write!(f, "subnet mask {m} is not contiguous"),
            BadPrefix(p) => write!(f, "prefix /{p} is not usable (need /1 to /32)"),
            BadAddress(a) => write!(f, "{a} is not a unicast host address of its subnet"),
            MissingServerId => write!(f, "no server identifier (option 54)"),
            BadServerId(a) => write!(f, "server identifier {a} is not a unicast address"),
            MissingLeaseTime => write!(f, "no lease time (option 51)"),
            ZeroLeaseTime => write!(f, "lease time 0"),
            GatewayOutsideSubnet(g) => write!(f, "gateway {g} is outside the subnet"),
            GatewayNotHost(g) => write!(
                f,
                "gateway {g} is our own address or the subnet's network or broadcast address"
            ),
            BadClasslessRoute(e) => write!(f, "classless static routes (option 121): {e}"),
            MtuOutOfRange(m) => write!(f, "MTU {m} is below the minimum 68 (RFC 2132 5.1)"),
        }
    }
}

impl fmt::Display for RouteEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteEncoding::Empty => write!(f, "empty option"),
            RouteEncoding::PrefixTooLong(p) => write!(f, "prefix length {p} above 32"),
            RouteEncoding::Truncated => write!(f, "truncated route"),
            RouteEncoding::HostBitsSet => write!(f, "destination has bits past its prefix"),
        }
    }
}

impl std::error::Error for LeaseError {}

impl From<BadLength> for LeaseError {
    fn from(BadLength(code): BadLength) -> Self {
        LeaseError::BadOptionLength(code)
    }
}

/// RFC 2131 §3.3: a lease time of all ones is infinite.
const INFINITE: u32 = u32::MAX;
/// RFC 2132 §5.1: the smallest legal MTU.
const MIN_MTU: u16 = 68;

impl Lease {
    /// The lease an OFFER or ACK gives, or why it is refused.
    pub(super) fn from_reply(reply: &Reply) -> Result<Lease, LeaseError> {
        let opts = &reply.options;
        let mask = opts
            .addr(OptionCode::SubnetMask)?
            .ok_or(LeaseError::MissingSubnetMask)?;
        let address = subnet(reply.yiaddr, mask)?;
        let server = opts
            .addr(OptionCode::ServerIdentifier)?
            .ok_or(LeaseError::MissingServerId)?;
        if !is_unicast(server) {
            return Err(LeaseError::BadServerId(server));
        }
        // Every router of option 3 is checked, not only the one the default route uses.
        let (routes, gateways) = match opts.get(OptionCode::ClasslessStaticRoute) {
            Some(raw) => {
                let routes = classless_routes(raw).map_err(LeaseError::BadClasslessRoute)?;
                let gateways = routes.iter().map(|r| r.gateway).collect();
                (routes, gateways)
            }
            None => {
                let routers = opts.addrs(OptionCode::Router)?;
                let default = routers.first().map(|&gateway| Route {
                    dest: Ipv4Net::default(),
                    gateway,
                });
                (default.into_iter().collect(), routers)
            }
        };
        for gateway in gateways {
            check_gateway(address, gateway, &routes)?;
        }
        let mtu = opts.u16(OptionCode::InterfaceMtu)?;
        if let Some(m) = mtu.filter(|&m| m < MIN_MTU) {
            return Err(LeaseError::MtuOutOfRange(m));
        }
        Ok(Lease {
            address,
            server,
            routes,
            mtu,
            dns: opts.addrs(OptionCode::DomainNameServer)?,
            times: times(opts)?,
        })
    }

    /// The gateway of the default route, if the lease has one.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.routes
            .iter()
            .find(|r| r.dest.prefix_len() == 0)
            .map(|r| r.gateway)
    }
}

/// Unicast: not 0.0.0.0/8, loopback, multicast, class E or the limited broadcast.
fn is_unicast(a: Ipv4Addr) -> bool {
    !(a.octets()[0] == 0 || a.is_loopback() || a.is_multicast() || a.octets()[0] >= 240)
}

/// `addr` with the prefix of `mask`, if both make sense (see the module doc).
fn subnet(addr: Ipv4Addr, mask: Ipv4Addr) -> Result<Ipv4Net, LeaseError> {
    let m = u32::from(mask);
    if m.leading_ones() + m.trailing_zeros() != 32 {
        return Err(LeaseError::NonContiguousMask(mask));
    }
    let prefix = m.leading_ones() as u8;
    if prefix == 0 {
        return Err(LeaseError::BadPrefix(prefix));
    }
    let net = Ipv4Net::new(addr, prefix).map_err(|_| LeaseError::BadPrefix(prefix))?;
    if !is_unicast(addr) || !is_host(net, addr) {
        return Err(LeaseError::BadAddress(addr));
    }
    Ok(net)
}

/// Not the network or broadcast address of `net` (a /31 or a /32 has neither, RFC
/// 3021).
fn is_host(net: Ipv4Net, a: Ipv4Addr) -> bool {
    net.prefix_len() >= 31 || (a != net.network() && a != net.broadcast())
}

/// A gateway is 0.0.0.0 (the route is on-link), an address an on-link route covers,
/// or a host of our subnet other than us.
fn check_gateway(address: Ipv4Net, gateway: Ipv4Addr, routes: &[Route]) -> Result<(), LeaseError> {
    let on_link = |r: &Route| r.gateway.is_unspecified() && r.dest.contains(&gateway);
    if gateway.is_unspecified() || (gateway != address.addr() && routes.iter().any(on_link)) {
        return Ok(());
    }
    if !address.contains(&gateway) {
        return Err(LeaseError::GatewayOutsideSubnet(gateway));
    }
    if gateway == address.addr() || !is_host(address, gateway) {
        return Err(LeaseError::GatewayNotHost(gateway));
    }
    Ok(())
}

/// Option 121's routes: each is a prefix length, the significant octets of the
/// destination (`ceil(len / 8)`), then the 4-octet router (RFC 3442 §"Classless Route
/// Option Format").
fn classless_routes(mut raw: &[u8]) -> Result<Vec<Route>, RouteEncoding> {
    if raw.is_empty() {
        return Err(RouteEncoding::Empty);
    }
    let mut routes = Vec::new();
    while let Some((&len, rest)) = raw.split_first() {
        if len > 32 {
            return Err(RouteEncoding::PrefixTooLong(len));
        }
        let octets = usize::from(len).div_ceil(8);
        let (dest_bytes, rest) = rest
            .split_at_checked(octets)
            .ok_or(RouteEncoding::Truncated)?;
        let (gw, rest) = rest.split_at_checked(4).ok_or(RouteEncoding::Truncated)?;
        let mut dest = [0u8; 4];
        dest[..octets].copy_from_slice(dest_bytes);
        let dest = Ipv4Net::new(Ipv4Addr::from(dest), len)
            .map_err(|_| RouteEncoding::PrefixTooLong(len))?;
        if dest.trunc() != dest {
            return Err(RouteEncoding::HostBitsSet);
        }
        let gateway = Ipv4Addr::new(gw[0], gw[1], gw[2], gw[3]);
        routes.push(Route { dest, gateway });
        raw = rest;
    }
    Ok(routes)
}

/// The lease's timers (module doc); `None` for an infinite lease.
fn times(opts: &Options) -> Result<Option<LeaseTimes>, LeaseError> {
    let lease = opts
        .u32(OptionCode::AddressLeaseTime)?
        .ok_or(LeaseError::MissingLeaseTime)?;
    match lease {
        0 => return Err(LeaseError::ZeroLeaseTime),
        INFINITE => return Ok(None),
        _ => {}
    }
    let lease_ms = u64::from(lease) * 1000;
    let default_t1 = lease_ms / 2;
    let default_t2 = lease_ms * 7 / 8;
    let ms = |code| -> Result<Option<u64>, LeaseError> {
        Ok(opts.u32(code)?.map(|s| u64::from(s) * 1000))
    };
    let t1 = ms(OptionCode::Renewal)?.unwrap_or(default_t1);
    let t2 = ms(OptionCode::Rebinding)?.unwrap_or(default_t2);
    let (t1_ms, t2_ms) = if 0 < t1 && t1 < t2 && t2 < lease_ms {
        (t1, t2)
    } else {
        (default_t1, default_t2)
    };
    Ok(Some(LeaseTimes {
        t1_ms,
        t2_ms,
        lease_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(raw: &[u8]) -> Options {
        let mut bytes = vec![0u8; 240];
        bytes[0] = 2;
        bytes[1] = 1;
        bytes[2] = 6;
        bytes[236..240].copy_from_slice(&dhcproto::v4::MAGIC);
        bytes.extend_from_slice(&[53, 1, 5]);
        bytes.extend_from_slice(raw);
        bytes.push(255);
        Reply::parse(&bytes, [0; 6]).unwrap().options
    }

    #[test]
    fn rfc3442_default_route_and_a_slash_25_decode() {
        // 0/0 via 10.0.0.1; 192.168.1.128/25 via 10.0.0.2; 10.9.0.0/16 on-link.
        let raw = [
            0, 10, 0, 0, 1, 25, 192, 168, 1, 128, 10, 0, 0, 2, 16, 10, 9, 0, 0, 0, 0,
        ];
        let routes = classless_routes(&raw).unwrap();
        let route = |d: &str, g: [u8; 4]| Route {
            dest: d.parse().unwrap(),
            gateway: g.into(),
        };
        assert_eq!(
            routes,
            [
                route("0.0.0.0/0", [10, 0, 0, 1]),
                route("192.168.1.128/25", [10, 0, 0, 2]),
                route("10.9.0.0/16", [0, 0, 0, 0]),
            ]
        );
    }

    #[test]
    fn rfc3442_bad_encodings_are_named() {
        assert_eq!(classless_routes(&[]), Err(RouteEncoding::Empty));
        assert_eq!(
            classless_routes(&[33, 1, 2, 3, 4, 5, 10, 0, 0, 1]),
            Err(RouteEncoding::PrefixTooLong(33))
        );
        assert_eq!(
            classless_routes(&[24, 10, 0, 0, 10, 0]),
            Err(RouteEncoding::Truncated)
        );
        assert_eq!(
            classless_routes(&[24, 10, 0]),
            Err(RouteEncoding::Truncated)
        );
        assert_eq!(
            classless_routes(&[25, 192, 168, 1, 129, 10, 0, 0, 1]),
            Err(RouteEncoding::HostBitsSet)
        );
    }

    #[test]
    fn rfc2131_4_4_5_timer_defaults_and_consistency() {
        let lease = [51, 4, 0, 0, 0x0e, 0x10]; // 3600 s
        let t = |extra: &[u8]| {
            times(&opts(&[&lease[..], extra].concat()))
                .unwrap()
                .unwrap()
        };
        let defaults = LeaseTimes {
            t1_ms: 1_800_000,
            t2_ms: 3_150_000,
            lease_ms: 3_600_000,
        };
        assert_eq!(t(&[]), defaults);
        // Given and consistent: kept.
        let given = t(&[58, 4, 0, 0, 0, 100, 59, 4, 0, 0, 0, 200]);
        assert_eq!((given.t1_ms, given.t2_ms), (100_000, 200_000));
        // T1 above T2, or T2 past the lease: both defaults.
        assert_eq!(t(&[58, 4, 0, 0, 1, 0, 59, 4, 0, 0, 0, 200]), defaults);
        assert_eq!(t(&[59, 4, 0, 0, 0x0e, 0x10]), defaults);
        // Only T1, below the default T2: kept with the default T2.
        assert_eq!(t(&[58, 4, 0, 0, 0, 60]).t1_ms, 60_000);
        // A one-second lease keeps its defaults apart.
        let one = times(&opts(&[51, 4, 0, 0, 0, 1])).unwrap().unwrap();
        assert_eq!((one.t1_ms, one.t2_ms, one.lease_ms), (500, 875, 1000));
        assert_eq!(times(&opts(&[51, 4, 0xff, 0xff, 0xff, 0xff])), Ok(None));
        assert_eq!(
            times(&opts(&[51, 4, 0, 0, 0, 0])),
            Err(LeaseError::ZeroLeaseTime)
        );
        assert_eq!(times(&opts(&[])), Err(LeaseError::MissingLeaseTime));
    }

    #[test]
    fn masks_and_addresses() {
        let a = Ipv4Addr::new(10, 0, 0, 5);
        assert_eq!(
            subnet(a, Ipv4Addr::new(255, 255, 255, 0)),
            Ok("10.0.0.5/24".parse().unwrap())
        );
        assert_eq!(
            subnet(a, Ipv4Addr::new(255, 0, 255, 0)),
            Err(LeaseError::NonContiguousMask(Ipv4Addr::new(255, 0, 255, 0)))
        );
        assert_eq!(
            subnet(a, Ipv4Addr::UNSPECIFIED),
            Err(LeaseError::BadPrefix(0))
        );
        assert_eq!(
            subnet(a, Ipv4Addr::BROADCAST),
            Ok("10.0.0.5/32".parse().unwrap())
        );
        let bcast = Ipv4Addr::new(10, 0, 0, 255);
        assert_eq!(
            subnet(bcast, Ipv4Addr::new(255, 255, 255, 0)),
            Err(LeaseError::BadAddress(bcast))
        );
        assert!(subnet(
            Ipv4Addr::new(10, 0, 0, 0),
            Ipv4Addr::new(255, 255, 255, 254)
        )
        .is_ok());
        for bad in [
            Ipv4Addr::new(127, 0, 0, 5),
            Ipv4Addr::new(224, 0, 0, 5),
            Ipv4Addr::new(0, 0, 0, 5),
        ] {
            assert_eq!(
                subnet(bad, Ipv4Addr::new(255, 255, 255, 0)),
                Err(LeaseError::BadAddress(bad))
            );
        }
    }
}
