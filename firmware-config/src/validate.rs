//! Rules a `Config` must keep beyond its types: values in range, addresses that can be
//! what they are used as, and fields that agree with each other.
//!
//! Contract: [`validate`] checks every rule and returns all broken ones at once, each
//! as one `ValidationError` whose `field` is the dotted path of the field to change
//! (`nat.pool[2]`, `inside.routes[0].via`) and whose `message` names the offending
//! value and the fix. Rules that come from an RFC cite it in the message:
//!
//! - timeouts: RFC 5382 REQ-4 and REQ-5 (TCP), RFC 4787 REQ-5 (UDP), RFC 5508 REQ-2
//!   (ICMP query);
//! - external port range: RFC 4787 REQ-3 (ports 1024-65535 map into 1024-65535, so
//!   the range must reach 1024);
//! - host name: RFC 1123 section 2.1;
//! - MSS clamp: RFC 9293 section 3.7.1 (every IPv4 host accepts 536).
//!
//! The egress policy's rules are checked by `policy::check` (rules that can never
//! match, at most `policy::MAX_RULES`). Port forwards are checked by `forward::check`
//! (public address, a port inside the source NAT range, overlapping forwards).
//!
//! One-armed (`[outside]` without `[inside]`): `nat.inside_prefixes` is required, since
//! it alone says which sources are inside; the inside prefixes may contain the port's
//! own network and the pool (a VPC's CIDR holds the box's private address, which the
//! cloud maps 1:1 to a public one), so the rules that keep inside and outside apart
//! apply to two-port configs only.
//!
//! A config that passes is safe for the engine to act on: no empty ranges, no zero
//! limits, no gateway it cannot reach.

use crate::schema::{Config, Ipv4Setting, Ipv6Setting, Port};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One broken rule: `field: problem (fix)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Dotted path of the field, e.g. `nat.port_min`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Most sessions (and IPv6 filter states) the engine's tables are sized for.
pub const MAX_SESSIONS: u32 = 1 << 24;
/// Most NAT pool addresses.
pub const MAX_POOL: usize = 64;
/// Port MTUs the box supports: IPv6's minimum link MTU (RFC 8200 section 5) to jumbo.
pub const MTU_RANGE: std::ops::RangeInclusive<u16> = 1280..=9000;
/// Log levels `log.level` accepts.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Checks every rule and returns all broken ones at once.
pub fn validate(config: &Config) -> Result<(), Vec<ValidationError>> {
    let mut errors = Errors(Vec::new());
    hostname(config, &mut errors);
    for (name, port) in config.ports() {
        port_name(name, port, &mut errors);
        port_addresses(name, port, &mut errors);
        gateways(name, port, &mut errors);
        routes(name, port, &mut errors);
        mtu(name, port, &mut errors);
    }
    ports_distinct(config, &mut errors);
    one_default_gateway(config, &mut errors);
    learned_ipv6_outside_only(config, &mut errors);
    required_addresses(config, &mut errors);
    port_range(config, &mut errors);
    pool(config, &mut errors);
    inside_prefixes(config, &mut errors);
    limits(config, &mut errors);
    mss_clamp(config, &mut errors);
    timeouts(config, &mut errors);
    log(config, &mut errors);
    shell(config, &mut errors);
    metrics(config, &mut errors);
    workers(config, &mut errors);
    errors.0.extend(crate::policy::check(
        &config.policy,
        &nets(&config.nat_inside_prefixes()),
        &nets(&config.ipv6_inside_prefixes()),
    ));
    errors.0.extend(crate::port_block::check(config));
    errors.0.extend(crate::flow_log::check(
        &config.flow_log,
        config.log.syslog.is_some(),
    ));
    errors.0.extend(crate::forward::check(config));
    errors
        .0
        .extend(crate::host_limits::check(&config.host_limits));
    if errors.0.is_empty() {
        Ok(())
    } else {
        Err(errors.0)
    }
}

struct Errors(Vec<ValidationError>);

impl Errors {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            field: field.into(),
            message: message.into(),
        });
    }
}

fn hostname(config: &Config, errors: &mut Errors) {
    let name = &config.hostname;
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        errors.fail(
            "hostname",
            format!(
                "\"{name}\": not a valid host name; use letters, digits and '-' in labels of \
                 1-63 characters separated by dots (RFC 1123 section 2.1)"
            ),
        );
    }
}

/// A MAC address written as six hex pairs separated by ':'.
pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        // from_str_radix would take a sign ("+f").
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn port_name(name: &str, port: &Port, errors: &mut Errors) {
    let field = format!("{name}.port");
    let p = &port.port;
    if p.is_empty() {
        errors.fail(
            field,
            "missing: set the interface name (e.g. \"eth0\") or MAC address \
             (e.g. \"52:54:00:12:34:56\")",
        );
    } else if p.contains(':') {
        match parse_mac(p) {
            None => errors.fail(
                field,
                format!(
                    "\"{p}\": not a MAC address; write six hex pairs separated by ':', \
                     e.g. \"52:54:00:12:34:56\" (interface names cannot contain ':')"
                ),
            ),
            Some([0, 0, 0, 0, 0, 0]) => errors.fail(
                field,
                format!("\"{p}\": the all-zero MAC address is no NIC's; use the NIC's own"),
            ),
            Some(mac) if mac[0] & 1 == 1 => errors.fail(
                field,
                format!("\"{p}\": a multicast MAC address is no NIC's; use the NIC's own"),
            ),
            Some(_) => {}
        }
    } else if p.len() > 15 {
        errors.fail(
            field,
            format!(
                "\"{p}\": interface names are at most 15 characters (Linux IFNAMSIZ); \
                 use the name `ip link` shows, or the MAC address"
            ),
        );
    } else if p.contains('/') || p.chars().any(char::is_whitespace) || p == "." || p == ".." {
        errors.fail(
            field,
            format!(
                "\"{p}\": not an interface name (no '/' or spaces); use the name `ip link` \
                 shows, or the MAC address"
            ),
        );
    }
}

/// How two port strings compare: MAC addresses case-insensitively.
fn port_key(p: &str) -> String {
    match parse_mac(p) {
        Some(mac) => format!("{mac:?}"),
        None => p.to_string(),
    }
}

fn ports_distinct(config: &Config, errors: &mut Errors) {
    let Some(inside) = config.inside.as_ref().map(|p| &p.port) else {
        return;
    };
    let outside = &config.outside.port;
    if !inside.is_empty() && port_key(inside) == port_key(outside) {
        errors.fail(
            "outside.port",
            format!("\"{outside}\" is also inside.port; inside and outside must be different NICs"),
        );
    }
}

/// Why an IPv4 address cannot be a host's own unicast address, if it cannot.
fn not_unicast4(a: Ipv4Addr) -> Option<&'static str> {
    Some(if a.is_unspecified() {
        "the unspecified"
    } else if a.is_broadcast() {
        "the broadcast"
    } else if a.is_multicast() {
        "a multicast"
    } else if a.is_loopback() {
        "a loopback"
    } else if a.octets()[0] >= 240 {
        "a reserved (240.0.0.0/4)"
    } else {
        return None;
    })
}

/// Why an IPv6 address cannot be a host's own unicast address, if it cannot.
fn not_unicast6(a: Ipv6Addr) -> Option<&'static str> {
    Some(if a.is_unspecified() {
        "the unspecified"
    } else if a.is_multicast() {
        "a multicast"
    } else if a.is_loopback() {
        "the loopback"
    } else {
        return None;
    })
}

fn is_link_local6(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

fn port_addresses(name: &str, port: &Port, errors: &mut Errors) {
    if let Some(net) = port.ipv4_net() {
        let field = format!("{name}.ipv4");
        let addr = net.addr();
        if let Some(what) = not_unicast4(addr) {
            errors.fail(
                field,
                format!("{net}: {addr} is {what} address; give the box's own unicast address"),
            );
        } else if net.prefix_len() <= 30 && (addr == net.network() || addr == net.broadcast()) {
            let which = if addr == net.network() {
                "network"
            } else {
                "broadcast"
            };
            let example = net.hosts().next().unwrap_or(addr);
            errors.fail(
                field,
                format!(
                    "{net}: {addr} is the {which} address of {}; give the box's own address, \
                     e.g. \"{example}/{}\"",
                    net.trunc(),
                    net.prefix_len()
                ),
            );
        }
    }
    if let Some(net) = port.ipv6_net() {
        let field = format!("{name}.ipv6");
        let addr = net.addr();
        if let Some(what) = not_unicast6(addr) {
            errors.fail(
                field,
                format!("{net}: {addr} is {what} address; give the box's own unicast address"),
            );
        } else if net.prefix_len() < 127 && addr == net.network() {
            errors.fail(
                field,
                format!(
                    "{net}: {addr} is the subnet-router anycast address of {}; give the box's \
                     own address, e.g. \"{}1/{}\"",
                    net.trunc(),
                    net.network(),
                    net.prefix_len()
                ),
            );
        }
    }
}

fn gateways(name: &str, port: &Port, errors: &mut Errors) {
    if let Some(gw) = port.gateway4 {
        let field = format!("{name}.gateway4");
        match port.ipv4.map(Ipv4Setting::net) {
            _ if not_unicast4(gw).is_some() => errors.fail(
                field,
                format!("{gw} cannot be a router's address; use the router's unicast address"),
            ),
            // By DHCP: the lease's prefix is not known yet; this router wins over its.
            Some(None) => {}
            None => errors.fail(
                field,
                format!("{gw} cannot be reached: {name}.ipv4 is not set; set {name}.ipv4"),
            ),
            Some(Some(net)) if !net.contains(&gw) => errors.fail(
                field,
                format!(
                    "{gw} is not in {name}.ipv4's prefix {}; use the router's address in {} \
                     or correct {name}.ipv4",
                    net.trunc(),
                    net.trunc()
                ),
            ),
            Some(Some(net)) if net.addr() == gw => errors.fail(
                field,
                format!("{gw} is the box's own address; use the router's address"),
            ),
            Some(Some(_)) => {}
        }
    }
    if let Some(gw) = port.gateway6 {
        let field = format!("{name}.gateway6");
        match port.ipv6.map(Ipv6Setting::net) {
            _ if not_unicast6(gw).is_some() => errors.fail(
                field,
                format!("{gw} cannot be a router's address; use the router's unicast address"),
            ),
            _ if is_link_local6(gw) => {}
            // Learned on the link: the prefix is not known yet; this router wins.
            Some(None) => {}
            None => errors.fail(
                field,
                format!(
                    "{gw} cannot be reached: {name}.ipv6 is not set; set {name}.ipv6 or use \
                     the router's link-local address (fe80::/10)"
                ),
            ),
            Some(Some(net)) if !net.contains(&gw) => errors.fail(
                field,
                format!(
                    "{gw} is not in {name}.ipv6's prefix {} nor link-local; use the router's \
                     address in {} or its fe80:: address",
                    net.trunc(),
                    net.trunc()
                ),
            ),
            Some(Some(net)) if net.addr() == gw => errors.fail(
                field,
                format!("{gw} is the box's own address; use the router's address"),
            ),
            Some(Some(_)) => {}
        }
    }
}

fn one_default_gateway(config: &Config, errors: &mut Errors) {
    let Some(inside) = &config.inside else {
        return;
    };
    if inside.gateway4.is_some() && config.outside.gateway4.is_some() {
        errors.fail(
            "inside.gateway4",
            "a default gateway is also set on outside; keep only one (normally outside.gateway4)",
        );
    }
    if inside.gateway6.is_some() && config.outside.gateway6.is_some() {
        errors.fail(
            "inside.gateway6",
            "a default gateway is also set on outside; keep only one (normally outside.gateway6)",
        );
    }
}

fn routes(name: &str, port: &Port, errors: &mut Errors) {
    for (i, route) in port.routes.iter().enumerate() {
        let field = |f: &str| format!("{name}.routes[{i}].{f}");
        if route.prefix != route.prefix.trunc() {
            errors.fail(
                field("prefix"),
                format!(
                    "{} has host bits set; write \"{}\"",
                    route.prefix,
                    route.prefix.trunc()
                ),
            );
        }
        let (connected, own) = match (route.prefix, route.via) {
            // By DHCP the link's prefix is not known yet: the router is taken as on it.
            (IpNet::V4(_), IpAddr::V4(via)) => match port.ipv4 {
                Some(Ipv4Setting::Dhcp) => (Some(true), false),
                _ => (
                    port.ipv4_net().map(|n| n.contains(&via)),
                    port.ipv4_net().is_some_and(|n| n.addr() == via),
                ),
            },
            (IpNet::V6(_), IpAddr::V6(via)) => match port.ipv6 {
                _ if is_link_local6(via) => (Some(true), false),
                Some(Ipv6Setting::Slaac | Ipv6Setting::Dhcp) => (Some(true), false),
                _ => (
                    port.ipv6_net().map(|n| n.contains(&via)),
                    port.ipv6_net().is_some_and(|n| n.addr() == via),
                ),
            },
            (prefix, via) => {
                errors.fail(
                    field("via"),
                    format!(
                        "{via} and prefix {prefix} are of different IP versions; the next hop \
                         must be of the prefix's version"
                    ),
                );
                continue;
            }
        };
        let via = route.via;
        let family = if via.is_ipv4() { "ipv4" } else { "ipv6" };
        match connected {
            None => errors.fail(
                field("via"),
                format!("{via} cannot be reached: {name}.{family} is not set; set it"),
            ),
            Some(false) => errors.fail(
                field("via"),
                format!(
                    "{via} is not on {name}'s link (outside {name}.{family}); use a router's \
                     address in that prefix"
                ),
            ),
            Some(true) if own => errors.fail(
                field("via"),
                format!("{via} is the box's own address; use the router's address"),
            ),
            Some(true) => {}
        }
    }
}

/// An inside port's IPv6 address is never learned: natbox is the inside's router, and
/// takes Router Advertisements (and DHCPv6) on ports with the outside role only, so a
/// host on the inside cannot hand the box its address or its default route.
fn learned_ipv6_outside_only(config: &Config, errors: &mut Errors) {
    let Some(inside) = &config.inside else {
        return;
    };
    if let Some(how @ (Ipv6Setting::Slaac | Ipv6Setting::Dhcp)) = inside.ipv6 {
        errors.fail(
            "inside.ipv6",
            format!(
                "\"{how}\": the box learns IPv6 addresses on the outside port only (it is the \
                 inside's router); give the inside port a static address, e.g. \
                 \"2001:db8:10::1/64\""
            ),
        );
    }
}

fn mtu(name: &str, port: &Port, errors: &mut Errors) {
    if !MTU_RANGE.contains(&port.mtu) {
        errors.fail(
            format!("{name}.mtu"),
            format!("{} is out of range; use 1280-9000", port.mtu),
        );
    }
}

fn required_addresses(config: &Config, errors: &mut Errors) {
    if config.outside.ipv4.is_none() && config.nat.pool.is_empty() {
        errors.fail(
            "outside.ipv4",
            "missing: the NAT pool defaults to this address; set outside.ipv4 or nat.pool",
        );
    }
    match &config.inside {
        Some(inside) if inside.ipv4.is_none() && config.nat.inside_prefixes.is_empty() => errors
            .fail(
                "inside.ipv4",
                "missing: set the box's inside address, e.g. \"10.10.0.1/24\"",
            ),
        Some(inside) if inside.ipv4_dhcp() && config.nat.inside_prefixes.is_empty() => errors.fail(
            "nat.inside_prefixes",
            "missing: inside.ipv4 is \"dhcp\", so the translated sources cannot default to \
                 its prefix; list them, e.g. [\"10.10.0.0/24\"]",
        ),
        None if config.nat.inside_prefixes.is_empty() => errors.fail(
            "nat.inside_prefixes",
            "missing: without [inside] the box is one-armed and translates only these \
             sources; list them, e.g. the VPC's CIDR [\"10.0.0.0/16\"] (or add [inside])",
        ),
        _ => {}
    }
}

fn port_range(config: &Config, errors: &mut Errors) {
    let (min, max) = (config.nat.port_min, config.nat.port_max);
    if min == 0 {
        errors.fail(
            "nat.port_min",
            "0: port 0 is never handed out; use 1 or more",
        );
    } else if min > max {
        errors.fail(
            "nat.port_min",
            format!("range {min}-{max} is empty; port_min must not exceed port_max ({max})"),
        );
    } else if max < 1024 {
        errors.fail(
            "nat.port_max",
            format!(
                "{max}: inside ports 1024-65535 must map to external ports 1024-65535 \
                 (RFC 4787 REQ-3); use 1024 or more"
            ),
        );
    }
}

fn pool(config: &Config, errors: &mut Errors) {
    let pool = &config.nat.pool;
    if pool.len() > MAX_POOL {
        errors.fail(
            "nat.pool",
            format!("{} addresses; at most {MAX_POOL} are supported", pool.len()),
        );
    }
    let inside = config.nat_inside_prefixes();
    for (i, &addr) in pool.iter().enumerate() {
        let field = format!("nat.pool[{i}]");
        if let Some(what) = not_unicast4(addr) {
            errors.fail(
                field,
                format!("{addr} is {what} address; pool addresses must be unicast addresses"),
            );
        } else if let Some(first) = pool[..i].iter().position(|&a| a == addr) {
            errors.fail(
                field,
                format!("{addr} is listed twice (also nat.pool[{first}]); remove one"),
            );
        } else if let Some(prefix) = inside
            .iter()
            .find(|p| !config.one_armed() && p.contains(&addr))
        {
            errors.fail(
                field,
                format!(
                    "{addr} is inside the translated prefix {prefix}; pool addresses are \
                     public addresses on the outside"
                ),
            );
        }
    }
}

/// Checks one family's inside prefixes: no host bits, and (two-port) no overlap with
/// the outside port's network. `configured` are the `field`'s own entries, `effective`
/// the prefixes in force (the inside connected prefix when none are configured, named
/// by `default_field`).
fn inside_prefix_rules(
    field: &str,
    default_field: &str,
    configured: &[IpNet],
    effective: &[IpNet],
    outside: Option<IpNet>,
    config: &Config,
    errors: &mut Errors,
) {
    for (i, p) in configured.iter().enumerate() {
        if *p != p.trunc() {
            errors.fail(
                format!("{field}[{i}]"),
                format!("{p} has host bits set; write \"{}\"", p.trunc()),
            );
        }
    }
    let Some(outside) = outside.filter(|_| !config.one_armed()) else {
        return;
    };
    let outside = outside.trunc();
    for (i, p) in effective.iter().enumerate() {
        if p.contains(&outside) || outside.contains(p) {
            let field = if configured.is_empty() {
                default_field.to_string()
            } else {
                format!("{field}[{i}]")
            };
            errors.fail(
                field,
                format!(
                    "{p} overlaps the outside prefix {outside}; inside and outside must \
                     be different networks"
                ),
            );
        }
    }
}

/// Prefixes of either family as `IpNet`s, so one rule checks both.
fn nets<T: Into<IpNet> + Copy>(prefixes: &[T]) -> Vec<IpNet> {
    prefixes.iter().map(|&p| p.into()).collect()
}

fn inside_prefixes(config: &Config, errors: &mut Errors) {
    inside_prefix_rules(
        "nat.inside_prefixes",
        "inside.ipv4",
        &nets(&config.nat.inside_prefixes),
        &nets(&config.nat_inside_prefixes()),
        config.outside.ipv4_net().map(Into::into),
        config,
        errors,
    );
    inside_prefix_rules(
        "ipv6.inside_prefixes",
        "inside.ipv6",
        &nets(&config.ipv6.inside_prefixes),
        &nets(&config.ipv6_inside_prefixes()),
        config.outside.ipv6_net().map(Into::into),
        config,
        errors,
    );
}

fn limits(config: &Config, errors: &mut Errors) {
    let nat = &config.nat;
    if nat.max_sessions == 0 || nat.max_sessions > MAX_SESSIONS {
        errors.fail(
            "nat.max_sessions",
            format!("{} is out of range; use 1-{MAX_SESSIONS}", nat.max_sessions),
        );
    }
    if nat.max_sessions_per_host == 0 {
        errors.fail(
            "nat.max_sessions_per_host",
            "0 would refuse every session; use 1 or more",
        );
    } else if nat.max_sessions_per_host > nat.max_sessions {
        errors.fail(
            "nat.max_sessions_per_host",
            format!(
                "{} exceeds nat.max_sessions ({}); lower it to at most {}",
                nat.max_sessions_per_host, nat.max_sessions, nat.max_sessions
            ),
        );
    }
    if nat.max_ports_per_host == 0 {
        errors.fail(
            "nat.max_ports_per_host",
            "0 would refuse every session; use 1 or more",
        );
    } else if nat.max_sessions_per_host > 0 && nat.max_ports_per_host > nat.max_sessions_per_host {
        errors.fail(
            "nat.max_ports_per_host",
            format!(
                "{} exceeds nat.max_sessions_per_host ({}); every external port holds at \
                 least one session, so lower it to at most {}",
                nat.max_ports_per_host, nat.max_sessions_per_host, nat.max_sessions_per_host
            ),
        );
    }
    let states = config.ipv6.max_states;
    if states == 0 || states > MAX_SESSIONS {
        errors.fail(
            "ipv6.max_states",
            format!("{states} is out of range; use 1-{MAX_SESSIONS}"),
        );
    }
}

fn mss_clamp(config: &Config, errors: &mut Errors) {
    let mss = config.nat.mss_clamp;
    let smaller_mtu = config.ports().map(|(_, p)| p.mtu).min().unwrap_or(0);
    if !MTU_RANGE.contains(&smaller_mtu) || !MTU_RANGE.contains(&config.max_mtu()) {
        return; // an MTU out of range is reported by its own rule
    }
    let max = smaller_mtu - 40;
    if mss != 0 && !(536..=max).contains(&mss) {
        errors.fail(
            "nat.mss_clamp",
            format!(
                "{mss}: use 0 (off) or 536-{max}: every IPv4 host accepts 536 (RFC 9293 \
                 section 3.7.1), and the smaller port MTU less 40 bytes of IPv4 and TCP \
                 headers is {max}"
            ),
        );
    }
}

fn timeouts(config: &Config, errors: &mut Errors) {
    let t = &config.timeouts;
    let minimums = [
        ("tcp_established", t.tcp_established, 7440, "RFC 5382 REQ-5"),
        ("tcp_transitory", t.tcp_transitory, 240, "RFC 5382 REQ-5"),
        ("tcp_incoming_syn", t.tcp_incoming_syn, 6, "RFC 5382 REQ-4"),
        ("udp", t.udp, 120, "RFC 4787 REQ-5"),
        ("icmp", t.icmp, 60, "RFC 5508 REQ-2"),
    ];
    for (name, value, min, rfc) in minimums {
        if value < min {
            errors.fail(
                format!("timeouts.{name}"),
                format!("{value} s is below the {min} s {rfc} requires; use {min} or more"),
            );
        }
    }
    if t.tcp_transitory > t.tcp_established {
        errors.fail(
            "timeouts.tcp_transitory",
            format!(
                "{} s exceeds timeouts.tcp_established ({} s); half-open and closing \
                 connections must not outlive established ones",
                t.tcp_transitory, t.tcp_established
            ),
        );
    }
    if !(1..=60).contains(&t.fragment) {
        errors.fail(
            "timeouts.fragment",
            format!(
                "{} s is out of range; use 1-60 (fragments are held in memory while they wait)",
                t.fragment
            ),
        );
    }
}

fn log(config: &Config, errors: &mut Errors) {
    event_rate(config, errors);
    let level = &config.log.level;
    if !LOG_LEVELS.contains(&level.as_str()) {
        let mut message = format!("\"{level}\": use one of {}", LOG_LEVELS.join(", "));
        if LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            message.push_str(" (in lower case)");
        }
        errors.fail("log.level", message);
    }
    if let Some(addr) = config.log.syslog {
        if addr.port() == 0 || addr.ip().is_unspecified() || addr.ip().is_multicast() {
            errors.fail(
                "log.syslog",
                format!(
                    "{addr}: the collector needs a unicast address and a port, \
                     e.g. \"192.0.2.5:514\""
                ),
            );
        }
    }
}

/// Highest accepted `log.event_rate`, events per second.
const MAX_EVENT_RATE: u32 = 2000;

fn event_rate(config: &Config, errors: &mut Errors) {
    let rate = config.log.event_rate;
    if rate == 0 || rate > MAX_EVENT_RATE {
        errors.fail(
            "log.event_rate",
            format!("{rate}: use 1 to {MAX_EVENT_RATE} events per second"),
        );
    }
}

/// Most worker threads (`dataplane.workers`): the steering's and the hand-off lanes'
/// bound.
pub const MAX_WORKERS: u16 = 64;

fn workers(config: &Config, errors: &mut Errors) {
    let n = config.dataplane.workers;
    if n > MAX_WORKERS {
        errors.fail(
            "dataplane.workers",
            format!("{n}: use 1 to {MAX_WORKERS} threads, or 0 for one per CPU"),
        );
    }
}

fn metrics(config: &Config, errors: &mut Errors) {
    let Some(listen) = config.metrics.listen else {
        return;
    };
    let port = config.inside_port();
    let inside = [
        port.ipv4_net().map(|n| std::net::IpAddr::V4(n.addr())),
        port.ipv6_net().map(|n| std::net::IpAddr::V6(n.addr())),
    ];
    if !inside.contains(&Some(listen.ip())) {
        let own: Vec<String> = inside.iter().flatten().map(|a| a.to_string()).collect();
        errors.fail(
            "metrics.listen",
            format!(
                "{listen}: metrics are served only on an address of the inside port ({}), \
                 never on the outside; e.g. \"{}:9100\"",
                own.join(", "),
                own.first().map_or("10.10.0.1", String::as_str)
            ),
        );
    } else if listen.port() == 0 {
        errors.fail(
            "metrics.listen",
            format!("{listen}: needs a TCP port, e.g. 9100"),
        );
    }
}

fn shell(config: &Config, errors: &mut Errors) {
    match config.shell.password_hash.as_deref() {
        Some("") => errors.fail(
            "shell.password_hash",
            "empty: remove the line for an open console, or set a password hash",
        ),
        Some(hash) if !is_sha_crypt(hash) => errors.fail(
            "shell.password_hash",
            "not a SHA-crypt hash (\"$6$salt$...\" or \"$5$salt$...\"): make one with \
             `openssl passwd -6` or `mkpasswd -m sha-512`",
        ),
        Some(hash) => match sha_crypt_rounds(hash) {
            Some(rounds) if rounds > MAX_SHA_CRYPT_ROUNDS => errors.fail(
                "shell.password_hash",
                format!(
                    "rounds={rounds}: at most {MAX_SHA_CRYPT_ROUNDS} (each console login \
                     checks the hash between two forwarding batches); make a hash with the \
                     default 5000 rounds with `openssl passwd -6`"
                ),
            ),
            None => errors.fail(
                "shell.password_hash",
                "rounds= takes a number: make a hash with `openssl passwd -6`",
            ),
            Some(_) => {}
        },
        None => {}
    }
}

/// The most SHA-crypt rounds a console password hash may ask for. Login runs on the
/// dataplane thread's control tick: 5000 rounds (the default) cost about 1.5 ms of
/// one idle core (glibc's sha512-crypt, measured), so 20000 hold forwarding up for
/// about 6 ms, while the specification's maximum (999,999,999) would stop it for
/// minutes at each try.
pub const MAX_SHA_CRYPT_ROUNDS: u64 = 20_000;

/// The rounds a SHA-crypt hash asks for: `rounds=N` after the id, else the default
/// 5000; `None` if N is not a number.
fn sha_crypt_rounds(hash: &str) -> Option<u64> {
    match hash
        .split('$')
        .nth(2)
        .and_then(|f| f.strip_prefix("rounds="))
    {
        Some(n) => n.parse().ok(),
        None => Some(5000),
    }
}

/// `$6$[rounds=N$]salt$hash` or `$5$...` (the hash itself is checked at login).
fn is_sha_crypt(hash: &str) -> bool {
    let fields: Vec<&str> = hash.split('$').collect();
    matches!(fields.as_slice(), ["", "5" | "6", .., salt, digest]
        if !salt.is_empty() && !digest.is_empty() && fields.len() <= 5
            && hash.bytes().all(|b| b.is_ascii_graphic()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Route, Shell};

    fn base() -> Config {
        crate::from_toml(include_str!("../tests/data/base.toml")).expect("base.toml is valid")
    }

    /// The inside port of a two-port config.
    fn inside(c: &mut Config) -> &mut Port {
        c.inside.as_mut().expect("base.toml has [inside]")
    }

    /// The broken rules of `base` after `change`, as `field: message` lines.
    fn broken(change: impl FnOnce(&mut Config)) -> Vec<String> {
        let mut c = base();
        change(&mut c);
        validate(&c)
            .err()
            .unwrap_or_default()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[track_caller]
    fn assert_broken(change: impl FnOnce(&mut Config), expected: &str) {
        assert_eq!(broken(change), vec![expected.to_string()]);
    }

    fn route(prefix: &str, via: &str) -> Route {
        Route {
            prefix: prefix.parse().expect("prefix"),
            via: via.parse().expect("via"),
        }
    }

    #[test]
    fn example_is_valid() {
        assert_eq!(broken(|_| {}), Vec::<String>::new());
    }

    #[test]
    fn hostname_rfc1123() {
        assert_broken(
            |c| c.hostname = "nat_box".into(),
            "hostname: \"nat_box\": not a valid host name; use letters, digits and '-' in \
             labels of 1-63 characters separated by dots (RFC 1123 section 2.1)",
        );
        assert_eq!(
            broken(|c| c.hostname = "gw-1.example".into()),
            Vec::<String>::new()
        );
        assert_eq!(broken(|c| c.hostname = "-x".into()).len(), 1);
        assert_eq!(broken(|c| c.hostname = String::new()).len(), 1);
    }

    #[test]
    fn port_missing() {
        assert_broken(
            |c| inside(c).port = String::new(),
            "inside.port: missing: set the interface name (e.g. \"eth0\") or MAC address \
             (e.g. \"52:54:00:12:34:56\")",
        );
    }

    #[test]
    fn port_bad_mac() {
        assert_broken(
            |c| inside(c).port = "52:54:00:12:34".into(),
            "inside.port: \"52:54:00:12:34\": not a MAC address; write six hex pairs \
             separated by ':', e.g. \"52:54:00:12:34:56\" (interface names cannot contain ':')",
        );
    }

    #[test]
    fn port_zero_mac() {
        assert_broken(
            |c| c.outside.port = "00:00:00:00:00:00".into(),
            "outside.port: \"00:00:00:00:00:00\": the all-zero MAC address is no NIC's; use \
             the NIC's own",
        );
    }

    #[test]
    fn port_multicast_mac() {
        assert_broken(
            |c| c.outside.port = "01:00:5e:00:00:01".into(),
            "outside.port: \"01:00:5e:00:00:01\": a multicast MAC address is no NIC's; use \
             the NIC's own",
        );
        assert_eq!(
            broken(|c| c.outside.port = "52:54:00:AB:cd:01".into()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn port_name_too_long() {
        assert_broken(
            |c| inside(c).port = "enp0s31f6-is-too-long".into(),
            "inside.port: \"enp0s31f6-is-too-long\": interface names are at most 15 \
             characters (Linux IFNAMSIZ); use the name `ip link` shows, or the MAC address",
        );
    }

    #[test]
    fn port_name_bad_chars() {
        assert_broken(
            |c| inside(c).port = "eth 0".into(),
            "inside.port: \"eth 0\": not an interface name (no '/' or spaces); use the name \
             `ip link` shows, or the MAC address",
        );
        assert_eq!(broken(|c| inside(c).port = "a/b".into()).len(), 1);
    }

    #[test]
    fn ports_must_differ() {
        assert_broken(
            |c| c.outside.port = "lan0".into(),
            "outside.port: \"lan0\" is also inside.port; inside and outside must be \
             different NICs",
        );
        assert_broken(
            |c| {
                inside(c).port = "52:54:00:00:00:01".into();
                c.outside.port = "52:54:00:00:00:01".to_uppercase();
            },
            "outside.port: \"52:54:00:00:00:01\" is also inside.port; inside and outside \
             must be different NICs",
        );
    }

    #[test]
    fn port_ipv4_not_unicast() {
        assert_broken(
            |c| inside(c).ipv4 = Some("224.0.0.1/24".parse().expect("net")),
            "inside.ipv4: 224.0.0.1/24: 224.0.0.1 is a multicast address; give the box's \
             own unicast address",
        );
    }

    #[test]
    fn port_ipv4_network_address() {
        assert_broken(
            |c| inside(c).ipv4 = Some("10.10.0.0/24".parse().expect("net")),
            "inside.ipv4: 10.10.0.0/24: 10.10.0.0 is the network address of 10.10.0.0/24; \
             give the box's own address, e.g. \"10.10.0.1/24\"",
        );
        assert_eq!(
            broken(|c| inside(c).ipv4 = Some("10.10.0.255/24".parse().expect("net"))).len(),
            1
        );
    }

    #[test]
    fn port_ipv6_not_unicast() {
        assert_broken(
            |c| inside(c).ipv6 = Some("ff02::1/64".parse().expect("net")),
            "inside.ipv6: ff02::1/64: ff02::1 is a multicast address; give the box's own \
             unicast address",
        );
    }

    #[test]
    fn port_ipv6_anycast() {
        assert_broken(
            |c| inside(c).ipv6 = Some("2001:db8:10::/64".parse().expect("net")),
            "inside.ipv6: 2001:db8:10::/64: 2001:db8:10:: is the subnet-router anycast \
             address of 2001:db8:10::/64; give the box's own address, e.g. \
             \"2001:db8:10::1/64\"",
        );
    }

    #[test]
    fn gateway4_outside_prefix() {
        assert_broken(
            |c| c.outside.gateway4 = Some("203.0.113.1".parse().expect("addr")),
            "outside.gateway4: 203.0.113.1 is not in outside.ipv4's prefix 198.51.100.0/24; \
             use the router's address in 198.51.100.0/24 or correct outside.ipv4",
        );
    }

    #[test]
    fn gateway4_without_address() {
        assert_broken(
            |c| {
                c.outside.ipv4 = None;
                c.nat.pool = vec!["198.51.100.10".parse().expect("addr")];
            },
            "outside.gateway4: 198.51.100.1 cannot be reached: outside.ipv4 is not set; set \
             outside.ipv4",
        );
    }

    #[test]
    fn gateway4_own_address() {
        assert_broken(
            |c| c.outside.gateway4 = Some("198.51.100.10".parse().expect("addr")),
            "outside.gateway4: 198.51.100.10 is the box's own address; use the router's \
             address",
        );
    }

    #[test]
    fn gateway4_not_unicast() {
        assert_broken(
            |c| c.outside.gateway4 = Some("255.255.255.255".parse().expect("addr")),
            "outside.gateway4: 255.255.255.255 cannot be a router's address; use the \
             router's unicast address",
        );
    }

    #[test]
    fn gateway6_outside_prefix() {
        assert_broken(
            |c| c.outside.gateway6 = Some("2001:db8:ee::1".parse().expect("addr")),
            "outside.gateway6: 2001:db8:ee::1 is not in outside.ipv6's prefix \
             2001:db8:ff::/64 nor link-local; use the router's address in 2001:db8:ff::/64 \
             or its fe80:: address",
        );
        // A link-local gateway is always on the link.
        assert_eq!(
            broken(|c| c.outside.gateway6 = Some("fe80::1".parse().expect("addr"))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn gateway6_without_address() {
        assert_broken(
            |c| c.outside.ipv6 = None,
            "outside.gateway6: 2001:db8:ff::1 cannot be reached: outside.ipv6 is not set; \
             set outside.ipv6 or use the router's link-local address (fe80::/10)",
        );
    }

    #[test]
    fn gateway6_own_address() {
        assert_broken(
            |c| c.outside.gateway6 = Some("2001:db8:ff::10".parse().expect("addr")),
            "outside.gateway6: 2001:db8:ff::10 is the box's own address; use the router's \
             address",
        );
    }

    #[test]
    fn gateway6_not_unicast() {
        assert_broken(
            |c| c.outside.gateway6 = Some("ff02::2".parse().expect("addr")),
            "outside.gateway6: ff02::2 cannot be a router's address; use the router's \
             unicast address",
        );
    }

    /// `"slaac"` and `"dhcp"` on the outside port: no gateway6 needed (Router
    /// Advertisements give it), and a global one given is taken as on the link.
    #[test]
    fn learned_ipv6_on_the_outside_is_valid_with_or_without_gateway6() {
        for how in ["slaac", "dhcp"] {
            assert_eq!(
                broken(|c| {
                    c.outside.ipv6 = Some(how.parse().expect("a word"));
                    c.outside.gateway6 = None;
                }),
                Vec::<String>::new(),
                "{how}"
            );
            assert_eq!(
                broken(|c| c.outside.ipv6 = Some(how.parse().expect("a word"))),
                Vec::<String>::new(),
                "{how} with gateway6"
            );
        }
    }

    #[test]
    fn learned_ipv6_on_the_inside_is_refused() {
        assert_broken(
            |c| inside(c).ipv6 = Some("slaac".parse().expect("a word")),
            "inside.ipv6: \"slaac\": the box learns IPv6 addresses on the outside port only \
             (it is the inside's router); give the inside port a static address, e.g. \
             \"2001:db8:10::1/64\"",
        );
    }

    #[test]
    fn one_gateway_per_family() {
        assert_broken(
            |c| inside(c).gateway4 = Some("10.10.0.254".parse().expect("addr")),
            "inside.gateway4: a default gateway is also set on outside; keep only one \
             (normally outside.gateway4)",
        );
        assert_broken(
            |c| inside(c).gateway6 = Some("fe80::1".parse().expect("addr")),
            "inside.gateway6: a default gateway is also set on outside; keep only one \
             (normally outside.gateway6)",
        );
    }

    #[test]
    fn route_host_bits() {
        assert_broken(
            |c| inside(c).routes = vec![route("10.20.0.5/16", "10.10.0.254")],
            "inside.routes[0].prefix: 10.20.0.5/16 has host bits set; write \"10.20.0.0/16\"",
        );
    }

    #[test]
    fn route_mixed_families() {
        assert_broken(
            |c| inside(c).routes = vec![route("10.20.0.0/16", "2001:db8:10::fe")],
            "inside.routes[0].via: 2001:db8:10::fe and prefix 10.20.0.0/16 are of different \
             IP versions; the next hop must be of the prefix's version",
        );
    }

    #[test]
    fn route_via_off_link() {
        assert_broken(
            |c| {
                inside(c).routes = vec![
                    route("10.20.0.0/16", "10.10.0.254"),
                    route("2001:db8:20::/48", "fe80::fe"),
                    route("10.30.0.0/16", "10.99.0.1"),
                ]
            },
            "inside.routes[2].via: 10.99.0.1 is not on inside's link (outside inside.ipv4); \
             use a router's address in that prefix",
        );
    }

    #[test]
    fn route_via_unset_family() {
        assert_broken(
            |c| {
                inside(c).ipv6 = None;
                inside(c).routes = vec![route("2001:db8:20::/48", "2001:db8:10::fe")];
            },
            "inside.routes[0].via: 2001:db8:10::fe cannot be reached: inside.ipv6 is not \
             set; set it",
        );
    }

    #[test]
    fn route_via_own_address() {
        assert_broken(
            |c| inside(c).routes = vec![route("10.20.0.0/16", "10.10.0.1")],
            "inside.routes[0].via: 10.10.0.1 is the box's own address; use the router's \
             address",
        );
    }

    #[test]
    fn mtu_range() {
        assert_broken(
            |c| c.outside.mtu = 9216,
            "outside.mtu: 9216 is out of range; use 1280-9000",
        );
        assert_broken(
            |c| inside(c).mtu = 576,
            "inside.mtu: 576 is out of range; use 1280-9000",
        );
    }

    #[test]
    fn outside_address_required() {
        assert_broken(
            |c| {
                c.outside.ipv4 = None;
                c.outside.gateway4 = None;
            },
            "outside.ipv4: missing: the NAT pool defaults to this address; set outside.ipv4 \
             or nat.pool",
        );
    }

    #[test]
    fn inside_address_required() {
        assert_broken(
            |c| inside(c).ipv4 = None,
            "inside.ipv4: missing: set the box's inside address, e.g. \"10.10.0.1/24\"",
        );
    }

    #[test]
    fn port_range_empty() {
        assert_broken(
            |c| {
                c.nat.port_min = 40000;
                c.nat.port_max = 30000;
            },
            "nat.port_min: range 40000-30000 is empty; port_min must not exceed port_max \
             (30000)",
        );
    }

    #[test]
    fn port_range_zero() {
        assert_broken(
            |c| c.nat.port_min = 0,
            "nat.port_min: 0: port 0 is never handed out; use 1 or more",
        );
    }

    #[test]
    fn port_range_high_ports() {
        assert_broken(
            |c| {
                c.nat.port_min = 1;
                c.nat.port_max = 1023;
            },
            "nat.port_max: 1023: inside ports 1024-65535 must map to external ports \
             1024-65535 (RFC 4787 REQ-3); use 1024 or more",
        );
    }

    #[test]
    fn pool_size() {
        assert_broken(
            |c| {
                c.nat.pool = (0..65u32)
                    .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 0, 2, 0)) + i))
                    .collect()
            },
            "nat.pool: 65 addresses; at most 64 are supported",
        );
    }

    #[test]
    fn pool_not_unicast() {
        for (addr, what) in [
            ("0.0.0.0", "the unspecified"),
            ("255.255.255.255", "the broadcast"),
            ("239.1.2.3", "a multicast"),
            ("127.0.0.1", "a loopback"),
            ("240.0.0.1", "a reserved (240.0.0.0/4)"),
        ] {
            assert_broken(
                |c| c.nat.pool = vec!["192.0.2.1".parse().expect("a"), addr.parse().expect("a")],
                &format!(
                    "nat.pool[1]: {addr} is {what} address; pool addresses must be unicast \
                     addresses"
                ),
            );
        }
    }

    #[test]
    fn pool_duplicates() {
        assert_broken(
            |c| c.nat.pool = vec!["192.0.2.1".parse().expect("a"); 2],
            "nat.pool[1]: 192.0.2.1 is listed twice (also nat.pool[0]); remove one",
        );
    }

    #[test]
    fn pool_inside_translated_prefix() {
        assert_broken(
            |c| c.nat.pool = vec!["10.10.0.7".parse().expect("a")],
            "nat.pool[0]: 10.10.0.7 is inside the translated prefix 10.10.0.0/24; pool \
             addresses are public addresses on the outside",
        );
    }

    #[test]
    fn inside_prefix_host_bits() {
        assert_broken(
            |c| c.nat.inside_prefixes = vec!["10.10.0.1/24".parse().expect("net")],
            "nat.inside_prefixes[0]: 10.10.0.1/24 has host bits set; write \"10.10.0.0/24\"",
        );
        assert_broken(
            |c| c.ipv6.inside_prefixes = vec!["2001:db8:10::1/64".parse().expect("net")],
            "ipv6.inside_prefixes[0]: 2001:db8:10::1/64 has host bits set; write \
             \"2001:db8:10::/64\"",
        );
    }

    #[test]
    fn inside_overlaps_outside() {
        assert_broken(
            |c| {
                c.nat.inside_prefixes = vec![
                    "10.0.0.0/8".parse().expect("net"),
                    "198.51.0.0/16".parse().expect("net"),
                ]
            },
            "nat.inside_prefixes[1]: 198.51.0.0/16 overlaps the outside prefix \
             198.51.100.0/24; inside and outside must be different networks",
        );
        assert_broken(
            |c| inside(c).ipv6 = Some("2001:db8:ff::99/64".parse().expect("net")),
            "inside.ipv6: 2001:db8:ff::/64 overlaps the outside prefix 2001:db8:ff::/64; \
             inside and outside must be different networks",
        );
    }

    #[test]
    fn inside_address_overlaps_outside() {
        let errors = broken(|c| {
            inside(c).ipv4 = Some("198.51.100.20/24".parse().expect("net"));
            c.outside.port = "wan0".into();
        });
        assert!(errors.contains(
            &"inside.ipv4: 198.51.100.0/24 overlaps the outside prefix 198.51.100.0/24; \
              inside and outside must be different networks"
                .to_string()
        ));
    }

    #[test]
    fn max_sessions_range() {
        assert_broken(
            |c| c.nat.max_sessions = (1 << 24) + 1,
            "nat.max_sessions: 16777217 is out of range; use 1-16777216",
        );
    }

    #[test]
    fn per_host_sessions_limit() {
        assert_broken(
            |c| c.nat.max_sessions_per_host = 300_000,
            "nat.max_sessions_per_host: 300000 exceeds nat.max_sessions (262144); lower it \
             to at most 262144",
        );
        assert_broken(
            |c| c.nat.max_sessions_per_host = 0,
            "nat.max_sessions_per_host: 0 would refuse every session; use 1 or more",
        );
    }

    #[test]
    fn per_host_ports_limit() {
        assert_broken(
            |c| c.nat.max_ports_per_host = 10_000,
            "nat.max_ports_per_host: 10000 exceeds nat.max_sessions_per_host (8192); every \
             external port holds at least one session, so lower it to at most 8192",
        );
        assert_broken(
            |c| c.nat.max_ports_per_host = 0,
            "nat.max_ports_per_host: 0 would refuse every session; use 1 or more",
        );
    }

    #[test]
    fn ipv6_states_range() {
        assert_broken(
            |c| c.ipv6.max_states = 0,
            "ipv6.max_states: 0 is out of range; use 1-16777216",
        );
    }

    #[test]
    fn mss_clamp_range() {
        assert_broken(
            |c| c.nat.mss_clamp = 1461,
            "nat.mss_clamp: 1461: use 0 (off) or 536-1460: every IPv4 host accepts 536 (RFC \
             9293 section 3.7.1), and the smaller port MTU less 40 bytes of IPv4 and TCP \
             headers is 1460",
        );
        assert_eq!(broken(|c| c.nat.mss_clamp = 100).len(), 1);
        assert_eq!(broken(|c| c.nat.mss_clamp = 0), Vec::<String>::new());
    }

    #[test]
    fn timeouts_rfc_minimums() {
        type Set = fn(&mut Config, u32);
        let cases: [(&str, u32, &str, Set); 5] = [
            ("tcp_established", 7440, "RFC 5382 REQ-5", |c, v| {
                c.timeouts.tcp_established = v
            }),
            ("tcp_transitory", 240, "RFC 5382 REQ-5", |c, v| {
                c.timeouts.tcp_transitory = v
            }),
            ("tcp_incoming_syn", 6, "RFC 5382 REQ-4", |c, v| {
                c.timeouts.tcp_incoming_syn = v
            }),
            ("udp", 120, "RFC 4787 REQ-5", |c, v| c.timeouts.udp = v),
            ("icmp", 60, "RFC 5508 REQ-2", |c, v| c.timeouts.icmp = v),
        ];
        for (field, min, rfc, set) in cases {
            assert_broken(
                |c| set(c, min - 1),
                &format!(
                    "timeouts.{field}: {} s is below the {min} s {rfc} requires; use {min} or \
                     more",
                    min - 1
                ),
            );
            assert_eq!(broken(|c| set(c, min)), Vec::<String>::new());
        }
    }

    #[test]
    fn transitory_below_established() {
        assert_broken(
            |c| c.timeouts.tcp_transitory = 8000,
            "timeouts.tcp_transitory: 8000 s exceeds timeouts.tcp_established (7440 s); \
             half-open and closing connections must not outlive established ones",
        );
    }

    #[test]
    fn fragment_timeout_range() {
        assert_broken(
            |c| c.timeouts.fragment = 0,
            "timeouts.fragment: 0 s is out of range; use 1-60 (fragments are held in memory \
             while they wait)",
        );
    }

    #[test]
    fn log_level_names() {
        assert_broken(
            |c| c.log.level = "verbose".into(),
            "log.level: \"verbose\": use one of error, warn, info, debug, trace",
        );
        assert_broken(
            |c| c.log.level = "INFO".into(),
            "log.level: \"INFO\": use one of error, warn, info, debug, trace (in lower case)",
        );
    }

    #[test]
    fn syslog_address() {
        assert_broken(
            |c| c.log.syslog = Some("192.0.2.5:0".parse().expect("addr")),
            "log.syslog: 192.0.2.5:0: the collector needs a unicast address and a port, \
             e.g. \"192.0.2.5:514\"",
        );
    }

    #[test]
    fn event_rate_bounds() {
        assert_broken(
            |c| c.log.event_rate = 0,
            "log.event_rate: 0: use 1 to 2000 events per second",
        );
    }

    /// `base` one-armed: no `[inside]`, the outside port on a VPC subnet whose CIDR is
    /// translated, the pool the port's own private address (the cloud maps it 1:1).
    fn one_armed(c: &mut Config) {
        c.inside = None;
        c.outside.ipv4 = Some("10.0.1.5/24".parse().expect("net"));
        c.outside.ipv6 = Some("2001:db8:1::5/64".parse().expect("net"));
        c.outside.gateway4 = Some("10.0.1.1".parse().expect("addr"));
        c.outside.gateway6 = Some("2001:db8:1::1".parse().expect("addr"));
        c.nat.pool = vec!["10.0.1.5".parse().expect("addr")];
        c.nat.inside_prefixes = vec!["10.0.0.0/16".parse().expect("net")];
        c.ipv6.inside_prefixes = vec!["2001:db8::/48".parse().expect("net")];
        c.metrics.listen = None;
    }

    #[test]
    fn one_armed_translates_its_own_network_with_its_own_address_as_pool() {
        assert_eq!(broken(one_armed), Vec::<String>::new());
        // The same relations with two ports are refused: inside and outside overlap,
        // and the pool is inside the translated prefix.
        let two_port = broken(|c| {
            let inside = c.inside.clone();
            one_armed(c);
            c.inside = inside;
        });
        assert!(
            two_port.iter().any(|e| e.starts_with("nat.pool[0]")),
            "{two_port:?}"
        );
        assert!(
            two_port
                .iter()
                .any(|e| e.starts_with("nat.inside_prefixes[0]")),
            "{two_port:?}"
        );
    }

    #[test]
    fn one_armed_requires_the_inside_prefixes() {
        assert_broken(
            |c| {
                one_armed(c);
                c.nat.inside_prefixes.clear();
            },
            "nat.inside_prefixes: missing: without [inside] the box is one-armed and \
             translates only these sources; list them, e.g. the VPC's CIDR \
             [\"10.0.0.0/16\"] (or add [inside])",
        );
    }

    #[test]
    fn one_armed_serves_metrics_on_its_one_port() {
        let listen = Some("10.0.1.5:9100".parse().expect("socket address"));
        assert_eq!(
            broken(|c| {
                one_armed(c);
                c.metrics.listen = listen;
            }),
            Vec::<String>::new()
        );
    }

    #[test]
    fn metrics_only_on_an_inside_address() {
        let inside6 = inside(&mut base()).ipv6_net().expect("inside ipv6").addr();
        let inside = inside(&mut base()).ipv4_net().expect("inside ipv4").addr();
        let outside = base().outside.ipv4_net().expect("outside ipv4").addr();
        assert!(broken(|c| c.metrics.listen = Some((inside, 9100).into())).is_empty());
        assert_broken(
            |c| c.metrics.listen = Some((outside, 9100).into()),
            &format!(
                "metrics.listen: {outside}:9100: metrics are served only on an address of \
                 the inside port ({inside}, {inside6}), never on the outside; e.g. \"{inside}:9100\""
            ),
        );
        assert_broken(
            |c| c.metrics.listen = Some((inside, 0).into()),
            &format!("metrics.listen: {inside}:0: needs a TCP port, e.g. 9100"),
        );
    }

    #[test]
    fn password_hash_format() {
        let with = |hash: &str| {
            let hash = hash.to_string();
            broken(move |c| {
                c.shell = Shell {
                    password_hash: Some(hash),
                }
            })
        };
        assert!(with("$6$natboxsalt$0HThqMT32bYBWMr7y50qCVP1Y82").is_empty());
        assert!(with("$5$rounds=6000$salt$abc").is_empty());
        for bad in ["secret", "$1$salt$md5", "$6$$x", "$6$salt$", "$6$a b$c"] {
            assert_eq!(with(bad).len(), 1, "{bad}");
        }
    }

    /// Login checks the hash on the dataplane thread: a hash asking for the
    /// specification's 999,999,999 rounds would stop forwarding for minutes per try.
    #[test]
    fn password_hash_rounds_above_the_cap_are_refused_naming_the_fix() {
        let with = |hash: &str| {
            let hash = hash.to_string();
            broken(move |c| {
                c.shell = Shell {
                    password_hash: Some(hash),
                }
            })
        };
        assert!(with("$6$rounds=20000$salt$abc").is_empty());
        assert_eq!(
            with("$6$rounds=999999999$salt$abc"),
            vec![
                "shell.password_hash: rounds=999999999: at most 20000 (each console login \
                 checks the hash between two forwarding batches); make a hash with the \
                 default 5000 rounds with `openssl passwd -6`"
                    .to_string()
            ]
        );
        assert_eq!(
            with("$5$rounds=99999999999999999999999$salt$abc"),
            vec![
                "shell.password_hash: rounds= takes a number: make a hash with `openssl passwd -6`"
                    .to_string()
            ]
        );
    }

    #[test]
    fn empty_password_hash() {
        assert_broken(
            |c| {
                c.shell = Shell {
                    password_hash: Some(String::new()),
                }
            },
            "shell.password_hash: empty: remove the line for an open console, or set a \
             password hash",
        );
    }
}
