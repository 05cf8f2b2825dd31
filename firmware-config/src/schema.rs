//! The configuration schema: everything a natbox needs to run, as people write it (TOML)
//! and as the metadata disk carries it (postcard).
//!
//! Every field that can have a sensible default has one, so a minimal file names only the
//! ports and their addresses.
//!
//! Two layouts: with `[inside]` and `[outside]` the box sits between two networks on two
//! NICs; with `[outside]` alone it is **one-armed** (a cloud NAT instance with one NIC):
//! the one port carries both the hosts being translated, which `nat.inside_prefixes`
//! (and `ipv6.inside_prefixes`) name, and the way to the default gateway. Defaults follow the RFCs the engine implements:
//! timeouts from RFC 4787 REQ-5 / RFC 5382 REQ-5 / RFC 5508 REQ-2 / RFC 6888 / RFC 7857,
//! endpoint-independent filtering (RFC 4787 REQ-8 recommends EIF for application
//! transparency), a 120 s port-reuse hold (RFC 6888 REQ-8).
//!
//! Types here are plain data: `validate` checks the relations between fields.

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The whole configuration of one box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Shown in the shell prompt and the boot banner.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// The private side: the hosts being translated live here. Absent: one-armed, the
    /// outside port carries them too (format version 3).
    pub inside: Option<Port>,
    /// The public side: the pool addresses and the default gateways live here.
    pub outside: Port,
    #[serde(default)]
    pub nat: Nat,
    #[serde(default)]
    pub ipv6: Ipv6Filter,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub icmp: IcmpPolicy,
    #[serde(default)]
    pub shell: Shell,
    #[serde(default)]
    pub log: Log,
    /// Fields added in format version 2 stay last (see `disk::decode`).
    #[serde(default)]
    pub metrics: Metrics,
    /// Added in format version 4, last (see `disk::decode`).
    #[serde(default)]
    pub dataplane: DataplaneSettings,
    /// The egress policy (`crate::policy`). Added in format version 6, last (see
    /// `disk::decode`).
    #[serde(default)]
    pub policy: crate::policy::Policy,
    /// NAT44 port blocks (`crate::port_block`). Added in format version 8, last (see
    /// `disk::decode`).
    #[serde(default)]
    pub port_block: crate::port_block::PortBlock,
    /// Flow logs (`crate::flow_log`). Added in format version 8, last (see
    /// `disk::decode`).
    #[serde(default)]
    pub flow_log: crate::flow_log::FlowLog,
    /// Static port forwards (`crate::forward`). Added in format version 8, last (see
    /// `disk::decode`).
    #[serde(default)]
    pub forward: Vec<crate::forward::Forward>,
    /// Per-inside-host rate limits (`crate::host_limits`). Added in format version 8,
    /// last (see `disk::decode`).
    #[serde(default)]
    pub host_limits: crate::host_limits::HostLimits,
}

/// One data port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// Interface name (`eth0`) or MAC address (`52:54:00:12:34:56`); cloud NIC names are
    /// not stable, MAC addresses are.
    pub port: String,
    /// The box's IPv4 address on this port, with the connected prefix, or `"dhcp"`:
    /// learned from a DHCPv4 server on the port's link (format version 5).
    pub ipv4: Option<Ipv4Setting>,
    /// The box's IPv6 address on this port, with the connected prefix, or `"slaac"`
    /// (formed from a Router Advertisement's prefix, RFC 4862) or `"dhcp"` (leased by
    /// a DHCPv6 server, RFC 8415): learned on the port's link (format version 6).
    pub ipv6: Option<Ipv6Setting>,
    /// Default IPv4 gateway reached through this port (normally only on `outside`).
    pub gateway4: Option<Ipv4Addr>,
    /// Default IPv6 gateway reached through this port (normally only on `outside`).
    /// Not given on the outside port: learned from Router Advertisements (RFC 4861).
    pub gateway6: Option<Ipv6Addr>,
    /// Prefixes behind a router on this port's link (normally only on `inside`).
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default = "default_mtu")]
    pub mtu: u16,
}

/// How a port gets its IPv4 address.
///
/// In TOML, a string: `"10.0.0.1/24"` or `"dhcp"`. On the metadata disk (postcard) an
/// `Ipv4Net`, with `Dhcp` written as 0.0.0.0/0, an address validation refuses for a
/// static one, so a disk of format 4 reads unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Setting {
    /// This address, with the connected prefix.
    Static(Ipv4Net),
    /// From a DHCPv4 server on the port's link (RFC 2131).
    Dhcp,
}

impl Ipv4Setting {
    /// The word that stands for `Dhcp` in TOML.
    pub const DHCP: &'static str = "dhcp";
    /// How `Dhcp` is written on the metadata disk.
    const DHCP_ON_DISK: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0);

    /// The static address, if it is one.
    pub fn net(self) -> Option<Ipv4Net> {
        match self {
            Ipv4Setting::Static(net) => Some(net),
            Ipv4Setting::Dhcp => None,
        }
    }

    fn on_disk(self) -> Ipv4Net {
        self.net().unwrap_or(Self::DHCP_ON_DISK)
    }
}

impl std::fmt::Display for Ipv4Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ipv4Setting::Static(net) => write!(f, "{net}"),
            Ipv4Setting::Dhcp => f.write_str(Self::DHCP),
        }
    }
}

impl std::str::FromStr for Ipv4Setting {
    type Err = ipnet::AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == Self::DHCP {
            return Ok(Ipv4Setting::Dhcp);
        }
        s.parse().map(Ipv4Setting::Static)
    }
}

impl Serialize for Ipv4Setting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.on_disk().serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Ipv4Setting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            text.parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "{text:?} is neither an address with its prefix (\"10.0.0.1/24\") nor \"dhcp\""
                ))
            })
        } else {
            let net = Ipv4Net::deserialize(d)?;
            Ok(if net == Self::DHCP_ON_DISK {
                Ipv4Setting::Dhcp
            } else {
                Ipv4Setting::Static(net)
            })
        }
    }
}

/// How a port gets its IPv6 address.
///
/// In TOML, a string: `"2001:db8::1/64"`, `"slaac"` or `"dhcp"`. On the metadata disk
/// (postcard) an `Ipv6Net`, with `Slaac` written as ::/0 and `Dhcp` as ::/1, addresses
/// validation refuses for a static one (the unspecified address), so a disk of format
/// 5 reads unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Setting {
    /// This address, with the connected prefix.
    Static(Ipv6Net),
    /// Formed from the prefix of a Router Advertisement on the port's link (RFC 4862).
    Slaac,
    /// Leased by a DHCPv6 server on the port's link (RFC 8415, IA_NA).
    Dhcp,
}

impl Ipv6Setting {
    /// The words that stand for `Slaac` and `Dhcp` in TOML.
    pub const SLAAC: &'static str = "slaac";
    pub const DHCP: &'static str = "dhcp";
    /// How `Slaac` and `Dhcp` are written on the metadata disk.
    const SLAAC_ON_DISK: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 0);
    const DHCP_ON_DISK: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 1);

    /// The static address, if it is one.
    pub fn net(self) -> Option<Ipv6Net> {
        match self {
            Ipv6Setting::Static(net) => Some(net),
            Ipv6Setting::Slaac | Ipv6Setting::Dhcp => None,
        }
    }

    fn on_disk(self) -> Ipv6Net {
        match self {
            Ipv6Setting::Static(net) => net,
            Ipv6Setting::Slaac => Self::SLAAC_ON_DISK,
            Ipv6Setting::Dhcp => Self::DHCP_ON_DISK,
        }
    }
}

impl std::fmt::Display for Ipv6Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ipv6Setting::Static(net) => write!(f, "{net}"),
            Ipv6Setting::Slaac => f.write_str(Self::SLAAC),
            Ipv6Setting::Dhcp => f.write_str(Self::DHCP),
        }
    }
}

impl std::str::FromStr for Ipv6Setting {
    type Err = ipnet::AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            Self::SLAAC => Ok(Ipv6Setting::Slaac),
            Self::DHCP => Ok(Ipv6Setting::Dhcp),
            _ => s.parse().map(Ipv6Setting::Static),
        }
    }
}

impl Serialize for Ipv6Setting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.on_disk().serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Ipv6Setting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            text.parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "{text:?} is neither an address with its prefix (\"2001:db8::1/64\") nor \"slaac\" nor \"dhcp\""
                ))
            })
        } else {
            let net = Ipv6Net::deserialize(d)?;
            Ok(match net {
                n if n == Self::SLAAC_ON_DISK => Ipv6Setting::Slaac,
                n if n == Self::DHCP_ON_DISK => Ipv6Setting::Dhcp,
                n => Ipv6Setting::Static(n),
            })
        }
    }
}

/// A static route: `prefix` is reached through next hop `via` on the port's link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub prefix: ipnet::IpNet,
    pub via: std::net::IpAddr,
}

/// IPv4 source NAT (NAPT) settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nat {
    /// Public addresses inside hosts are translated to; empty means the outside port's
    /// IPv4 address. Each inside host is paired with one of them (RFC 4787 REQ-2).
    pub pool: Vec<Ipv4Addr>,
    /// External ports handed out (RFC 4787 REQ-3): inside ports 0-1023 map into the
    /// part of this range below 1024, inside ports 1024-65535 into the part above; when
    /// the range has no part below 1024, every port maps into it.
    pub port_min: u16,
    pub port_max: u16,
    /// Which inside sources are translated; empty means the inside connected prefix.
    /// Required one-armed: there it also decides which sources are inside at all.
    pub inside_prefixes: Vec<Ipv4Net>,
    pub filtering: Filtering,
    /// Global bound on translated sessions.
    pub max_sessions: u32,
    /// Per inside host session bound (RFC 6888 REQ-5). Sessions opened from outside
    /// count only once the host answers. The IPv6 filter applies the same bound to
    /// each inside IPv6 address's states.
    pub max_sessions_per_host: u32,
    /// Per inside host external port bound (RFC 6888 REQ-4).
    pub max_ports_per_host: u32,
    /// Answer a packet refused for a limit with ICMP destination unreachable,
    /// communication administratively prohibited (type 3 code 13).
    pub icmp_on_limit: bool,
    /// Seconds a freed external port stays reserved for its last inside host
    /// (RFC 6888 REQ-8).
    pub port_reuse_hold: u32,
    /// Whether inbound UDP also refreshes a mapping (RFC 4787 REQ-6: outbound must,
    /// inbound may).
    pub udp_inbound_refresh: bool,
    /// Clamp the MSS option of forwarded TCP SYNs to this value (0 = off).
    pub mss_clamp: u16,
}

/// RFC 4787 section 5 filtering behaviours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Filtering {
    EndpointIndependent,
    AddressDependent,
    AddressAndPortDependent,
}

/// IPv6 egress-only filter (RFC 6092) settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ipv6Filter {
    /// Route IPv6 at all.
    pub enabled: bool,
    /// Inside prefixes allowed as sources of outbound traffic; empty means the inside
    /// connected prefix (and, one-armed, no IPv6 forwarding).
    pub inside_prefixes: Vec<Ipv6Net>,
    /// Global bound on IPv6 filter states.
    pub max_states: u32,
}

/// Idle timeouts in seconds for each session class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// RFC 5382 REQ-5: at least 2 h 4 min.
    pub tcp_established: u32,
    /// RFC 5382 REQ-5 / RFC 7857 section 2.2: 4 min for partially open or closing.
    pub tcp_transitory: u32,
    /// RFC 5382 REQ-4: how long an unsolicited inbound SYN waits for simultaneous open;
    /// also how long any session opened from outside waits for the inside's answer.
    pub tcp_incoming_syn: u32,
    /// RFC 4787 REQ-5: at least 2 min, 5 min recommended.
    pub udp: u32,
    /// RFC 5508 REQ-2: 60 s.
    pub icmp: u32,
    /// How long fragments wait for their first fragment (RFC 4787 REQ-14).
    pub fragment: u32,
}

/// What the box itself sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IcmpPolicy {
    /// Sustained rate of ICMP errors and echo replies the box generates, per second.
    /// Path MTU errors (fragmentation needed, packet too big) have a budget of their
    /// own at the same rate and burst, so a ping flood cannot suppress them.
    pub rate_limit: u32,
    /// Burst allowance above the rate.
    pub burst: u32,
}

/// Admin shell settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Shell {
    /// Password hash for the console; none means an open console.
    pub password_hash: Option<String>,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// Remote syslog collector (`host:port`) for NAT events.
    pub syslog: Option<std::net::SocketAddr>,
    /// NAT events sent to the collector per second at most; the rest are counted as
    /// dropped (format version 2).
    pub event_rate: u32,
}

/// The Prometheus metrics responder (format version 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Address and TCP port where `GET /metrics` is served: one of the inside port's own
    /// addresses (one-armed: the port's, answered to inside sources only); none means
    /// not served.
    pub listen: Option<std::net::SocketAddr>,
}

/// The dataplane's threads (format version 4).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataplaneSettings {
    /// Worker threads, each with an engine shard (0 to 64): 0, the default, means one
    /// per online CPU, at most the data ports' receive queues (so a NIC with one
    /// queue, like a veth, gets one thread). A change takes effect at the next start.
    pub workers: u16,
}

fn default_hostname() -> String {
    "natbox".into()
}

fn default_mtu() -> u16 {
    1500
}

impl Default for Nat {
    fn default() -> Self {
        Nat {
            pool: Vec::new(),
            port_min: 1,
            port_max: 65535,
            inside_prefixes: Vec::new(),
            filtering: Filtering::EndpointIndependent,
            max_sessions: 262_144,
            max_sessions_per_host: 8192,
            max_ports_per_host: 4096,
            icmp_on_limit: false,
            port_reuse_hold: 120,
            udp_inbound_refresh: false,
            mss_clamp: 0,
        }
    }
}

impl Default for Ipv6Filter {
    fn default() -> Self {
        Ipv6Filter {
            enabled: true,
            inside_prefixes: Vec::new(),
            max_states: 262_144,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_established: 7440,
            tcp_transitory: 240,
            tcp_incoming_syn: 6,
            udp: 300,
            icmp: 60,
            fragment: 5,
        }
    }
}

impl Default for IcmpPolicy {
    fn default() -> Self {
        IcmpPolicy {
            rate_limit: 100,
            burst: 50,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            syslog: None,
            event_rate: 1000,
        }
    }
}

impl Port {
    /// The port's static IPv4 address and prefix (none with `"dhcp"` or none set).
    pub fn ipv4_net(&self) -> Option<Ipv4Net> {
        self.ipv4.and_then(Ipv4Setting::net)
    }

    /// Whether the port learns its IPv4 address by DHCP.
    pub fn ipv4_dhcp(&self) -> bool {
        self.ipv4 == Some(Ipv4Setting::Dhcp)
    }

    /// The port's static IPv6 address and prefix (none with `"slaac"`, `"dhcp"` or
    /// none set).
    pub fn ipv6_net(&self) -> Option<Ipv6Net> {
        self.ipv6.and_then(Ipv6Setting::net)
    }

    /// Whether the port learns its IPv6 address on its link (`"slaac"` or `"dhcp"`).
    pub fn ipv6_learned(&self) -> bool {
        matches!(self.ipv6, Some(Ipv6Setting::Slaac | Ipv6Setting::Dhcp))
    }
}

impl Config {
    /// Whether the box runs with one port (`[outside]` without `[inside]`).
    pub fn one_armed(&self) -> bool {
        self.inside.is_none()
    }

    /// The configured ports with their section names, inside first.
    pub fn ports(&self) -> impl Iterator<Item = (&'static str, &Port)> {
        let inside = self.inside.as_ref().map(|p| ("inside", p));
        inside.into_iter().chain([("outside", &self.outside)])
    }

    /// The port the hosts being translated live on: `inside`, or one-armed `outside`.
    pub fn inside_port(&self) -> &Port {
        self.inside.as_ref().unwrap_or(&self.outside)
    }

    /// The largest MTU of any port (the size of the engine's frame buffers).
    pub fn max_mtu(&self) -> u16 {
        self.ports()
            .map(|(_, p)| p.mtu)
            .max()
            .unwrap_or(self.outside.mtu)
    }

    /// The public addresses of the NAT pool, with the default applied.
    pub fn nat_pool(&self) -> Vec<Ipv4Addr> {
        if self.nat.pool.is_empty() {
            self.outside.ipv4_net().iter().map(|n| n.addr()).collect()
        } else {
            self.nat.pool.clone()
        }
    }

    /// The IPv4 prefixes whose sources are translated, with the default applied.
    pub fn nat_inside_prefixes(&self) -> Vec<Ipv4Net> {
        if self.nat.inside_prefixes.is_empty() {
            let inside = self.inside.as_ref().and_then(Port::ipv4_net);
            inside.iter().map(|n| n.trunc()).collect()
        } else {
            self.nat.inside_prefixes.clone()
        }
    }

    /// The IPv6 prefixes allowed as outbound sources, with the default applied.
    pub fn ipv6_inside_prefixes(&self) -> Vec<Ipv6Net> {
        if self.ipv6.inside_prefixes.is_empty() {
            let inside = self.inside.as_ref().and_then(Port::ipv6_net);
            inside.iter().map(|n| n.trunc()).collect()
        } else {
            self.ipv6.inside_prefixes.clone()
        }
    }
}
