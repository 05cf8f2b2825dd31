//! The egress policy (`[policy]`): an ordered list of rules, each matching traffic
//! that inside hosts send out and saying what happens to it, and a default action for
//! what no rule matches. The first rule that matches decides (as in nftables, pf's
//! `quick` rules and AWS network ACLs); rules are numbered from 0 in `show policy`,
//! the metrics and the error messages (`policy.rule[3]`).
//!
//! ```toml fragment
//! [policy]
//! default = "deny"              # allow (the default), deny or reject
//!
//! [[policy.rule]]               # rule 0
//! action = "allow"              # allow, deny (dropped silently) or reject
//! destination = "203.0.113.0/24"
//! protocol = "tcp"              # tcp, udp, icmp, icmpv6 or any (the default)
//! port = 443                    # a destination port, or a range "8000-8080"
//!
//! [[policy.rule]]               # rule 1
//! action = "reject"             # TCP gets a RST, the rest ICMP administratively
//! source = "10.10.0.66"         # prohibited (IPv4 type 3 code 13, IPv6 type 1 code 1)
//! comment = "the build server may not reach anything else"
//! ```
//!
//! Every match field is optional (absent: anything): `source` (an inside address or
//! prefix, IPv4 or IPv6: the source before translation), `destination` (an address or
//! prefix), `protocol`, `port` (TCP and UDP only), `icmp_type` (ICMP and ICMPv6 only).
//! A rule with IPv4 addresses matches IPv4 only, with IPv6 addresses IPv6 only, with
//! neither both families.
//!
//! The policy decides when a session (IPv4) or filter state (IPv6) would be created;
//! established traffic is not looked at again. The engine compiles the rules rather
//! than walking them (`natbox_core::engine::policy`).
//!
//! Validation ([`check`]) refuses a rule that can never match, naming the field and
//! the fix: addresses of two families, ICMP with IPv6 addresses (or ICMPv6 with
//! IPv4), a port without TCP or UDP, an ICMP type without ICMP, an empty port range,
//! host bits in a prefix, a source outside the inside prefixes (the policy sees only
//! inside sources), and a rule that an earlier rule with another action shadows
//! entirely: one that matches exactly the same traffic, or one that matches every
//! packet of the rule's family (no match fields but its family). Shadowing by partial
//! overlap in general is not looked for: it would cost a pairwise comparison of up to
//! `MAX_RULES` rules at every commit. At most [`MAX_RULES`] rules.

use crate::validate::ValidationError;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// Most rules a policy holds: the compiled lookup stays flat to here (the `policy`
/// benchmark measures 10, 1 000 and 10 000).
pub const MAX_RULES: usize = 10_000;
/// Longest `comment`, in characters.
pub const MAX_COMMENT: usize = 128;

/// The egress policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// What happens to traffic no rule matches.
    pub default: Action,
    /// The rules, first match wins.
    pub rule: Vec<Rule>,
}

/// What a rule (or the default) does with a new session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Translated (IPv4) or let through the filter (IPv6).
    #[default]
    Allow,
    /// Dropped silently.
    Deny,
    /// Dropped and answered: a TCP RST to TCP, ICMP administratively prohibited to the
    /// rest (IPv4 type 3 code 13, IPv6 type 1 code 1).
    Reject,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Reject => "reject",
        }
    }
}

/// One rule: every match field given must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub action: Action,
    /// The inside source, before translation: an address or a prefix.
    #[serde(default)]
    pub source: Option<Prefix>,
    /// The destination: an address or a prefix.
    #[serde(default)]
    pub destination: Option<Prefix>,
    #[serde(default)]
    pub protocol: Protocol,
    /// The destination port or range (TCP and UDP).
    #[serde(default)]
    pub port: Option<PortRange>,
    /// The ICMP or ICMPv6 type (echo request: 8 for ICMP, 128 for ICMPv6).
    #[serde(default)]
    pub icmp_type: Option<u8>,
    /// Shown by `show policy`.
    #[serde(default)]
    pub comment: Option<String>,
}

/// The protocols a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Any,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

impl Protocol {
    /// The IP protocol number (`None` for any).
    pub fn number(self) -> Option<u8> {
        match self {
            Protocol::Any => None,
            Protocol::Tcp => Some(6),
            Protocol::Udp => Some(17),
            Protocol::Icmp => Some(1),
            Protocol::Icmpv6 => Some(58),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Any => "any",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Icmpv6 => "icmpv6",
        }
    }

    /// The one family the protocol exists in, if only one.
    fn family(self) -> Option<Family> {
        match self {
            Protocol::Icmp => Some(Family::V4),
            Protocol::Icmpv6 => Some(Family::V6),
            _ => None,
        }
    }
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// An address or a prefix. In TOML a string, `"10.10.0.5"` (a host: /32 or /128) or
/// `"10.10.0.0/24"`; a host is written back without its length. On the metadata disk
/// an `IpNet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix(pub IpNet);

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl std::str::FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Prefix(net));
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Prefix(IpNet::from(addr)));
        }
        Err(format!(
            "\"{s}\" is neither an address nor a prefix; write e.g. \"10.10.0.5\", \
             \"10.10.0.0/24\" or \"2001:db8:10::/64\""
        ))
    }
}

impl Serialize for Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?
                .parse()
                .map_err(serde::de::Error::custom)
        } else {
            IpNet::deserialize(d).map(Prefix)
        }
    }
}

/// A destination port range, both ends included. In TOML a port number (`443`) or a
/// string `"8000-8080"`; on the metadata disk two `u16`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn contains(self, other: PortRange) -> bool {
        self.first <= other.first && other.last <= self.last
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("\"{s}\" is not a port or a range; write e.g. 443 or \"8000-8080\" (0-65535)")
        };
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let first = a.trim().parse().map_err(|_| bad())?;
        let last = b.trim().parse().map_err(|_| bad())?;
        Ok(PortRange { first, last })
    }
}

impl Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            (self.first, self.last).serialize(s)
        } else if self.first == self.last {
            s.serialize_u16(self.first)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PortRange;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a port (443) or a range (\"8000-8080\")")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PortRange, E> {
                let port = u16::try_from(v)
                    .map_err(|_| E::custom(format!("{v} is not a port; use 0-65535")))?;
                Ok(PortRange {
                    first: port,
                    last: port,
                })
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PortRange, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PortRange, E> {
                v.parse().map_err(E::custom)
            }
        }
        if d.is_human_readable() {
            d.deserialize_any(Visitor)
        } else {
            let (first, last) = <(u16, u16)>::deserialize(d)?;
            Ok(PortRange { first, last })
        }
    }
}

impl Rule {
    /// The family the rule matches, if only one: from its addresses, else from its
    /// protocol (`None`: both).
    pub fn family(&self) -> Option<Family> {
        self.source
            .or(self.destination)
            .map(|p| Family::of(&p.0))
            .or(self.protocol.family())
    }

    /// The match as one line: `tcp 10.10.0.0/24 -> 203.0.113.0/24 port 443`.
    pub fn describe(&self) -> String {
        let any = |p: Option<Prefix>| p.map_or_else(|| "any".to_string(), |p| p.to_string());
        let mut s = format!(
            "{} {} -> {}",
            self.protocol.name(),
            any(self.source),
            any(self.destination)
        );
        if let Some(port) = self.port {
            s.push_str(&format!(" port {port}"));
        }
        if let Some(t) = self.icmp_type {
            s.push_str(&format!(" type {t}"));
        }
        s
    }

    /// The match fields alone, to compare rules by.
    fn key(
        &self,
    ) -> (
        Option<Prefix>,
        Option<Prefix>,
        Protocol,
        Option<PortRange>,
        Option<u8>,
    ) {
        (
            self.source.map(truncated),
            self.destination.map(truncated),
            self.protocol,
            self.port,
            self.icmp_type,
        )
    }

    /// Whether the rule matches every packet of `family` (its only match field, if
    /// any, says the family).
    fn matches_all_of(&self, family: Family) -> bool {
        let whole = |p: Option<Prefix>| p.is_none_or(|p| p.0.prefix_len() == 0);
        whole(self.source)
            && whole(self.destination)
            && self.port.is_none_or(|p| p.first == 0 && p.last == u16::MAX)
            && self.protocol == Protocol::Any
            && self.icmp_type.is_none()
            && self.family().is_none_or(|f| f == family)
    }
}

fn truncated(p: Prefix) -> Prefix {
    Prefix(p.0.trunc())
}

/// The rules of `policy`, given the inside prefixes of each family (empty: not known
/// or none, not checked); every problem as a `ValidationError`.
pub fn check(policy: &Policy, inside4: &[IpNet], inside6: &[IpNet]) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    if policy.rule.len() > MAX_RULES {
        errors.push(ValidationError {
            field: "policy.rule".into(),
            message: format!(
                "{} rules; at most {MAX_RULES}: merge rules into prefixes or port ranges",
                policy.rule.len()
            ),
        });
        return errors;
    }
    // The first rule of each match, and the first rule that matches every packet of
    // each family (by `Family as usize`).
    let mut first: HashMap<_, usize> = HashMap::with_capacity(policy.rule.len());
    let mut catch_all: [Option<usize>; 2] = [None, None];
    for (i, rule) in policy.rule.iter().enumerate() {
        let broken = rule_fields(rule, inside4, inside6);
        if !broken.is_empty() {
            errors.extend(broken.into_iter().map(|(f, message)| ValidationError {
                field: format!("policy.rule[{i}].{f}"),
                message,
            }));
            continue;
        }
        let families: &[Family] = match rule.family() {
            Some(Family::V4) => &[Family::V4],
            Some(Family::V6) => &[Family::V6],
            None => &[Family::V4, Family::V6],
        };
        let covering: Vec<usize> = families
            .iter()
            .filter_map(|f| catch_all[*f as usize])
            .collect();
        let shadow = if covering.len() == families.len() {
            // Every family this rule matches is taken by earlier catch-alls.
            covering
                .iter()
                .copied()
                .find(|&j| policy.rule[j].action != rule.action)
                .map(|j| (j, "matches every packet of its family"))
        } else {
            first
                .get(&rule.key())
                .copied()
                .filter(|&j| policy.rule[j].action != rule.action)
                .map(|j| (j, "matches exactly the same traffic"))
        };
        if let Some((j, how)) = shadow {
            let earlier = &policy.rule[j];
            errors.push(ValidationError {
                field: format!("policy.rule[{i}]"),
                message: format!(
                    "never matches: policy.rule[{j}] ({} {}) {how} first; remove this rule \
                     or move it above rule {j}",
                    earlier.action.name(),
                    earlier.describe()
                ),
            });
            continue;
        }
        first.entry(rule.key()).or_insert(i);
        for family in families {
            if rule.matches_all_of(*family) {
                catch_all[*family as usize].get_or_insert(i);
            }
        }
    }
    errors
}

/// What is wrong with one rule's fields on their own: (field, message) pairs.
fn rule_fields(rule: &Rule, inside4: &[IpNet], inside6: &[IpNet]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (name, prefix) in [("source", rule.source), ("destination", rule.destination)] {
        if let Some(Prefix(net)) = prefix {
            if net != net.trunc() {
                out.push((
                    name,
                    format!("{net} has host bits set; write \"{}\"", net.trunc()),
                ));
            }
        }
    }
    if let (Some(Prefix(s)), Some(Prefix(d))) = (rule.source, rule.destination) {
        let (fs, fd) = (Family::of(&s), Family::of(&d));
        if fs != fd {
            out.push((
                "destination",
                format!(
                    "{d} is {} but source {s} is {}: a packet has one family; split the \
                     rule in two, one per family",
                    fd.name(),
                    fs.name()
                ),
            ));
        }
    }
    let address = rule.source.or(rule.destination).map(|p| p.0);
    if let (Some(only), Some(net)) = (rule.protocol.family(), address) {
        if Family::of(&net) != only {
            let other = if only == Family::V4 { "icmpv6" } else { "icmp" };
            out.push((
                "protocol",
                format!(
                    "\"{}\" is {} only but the rule's addresses ({net}) are {}; use \
                     protocol = \"{other}\"",
                    rule.protocol.name(),
                    only.name(),
                    Family::of(&net).name()
                ),
            ));
        }
    }
    if let Some(port) = rule.port {
        if !matches!(rule.protocol, Protocol::Tcp | Protocol::Udp) {
            out.push((
                "port",
                format!(
                    "{port}: only TCP and UDP have ports, and protocol is \"{}\"; set \
                     protocol = \"tcp\" or \"udp\" (one rule each), or remove port",
                    rule.protocol.name()
                ),
            ));
        } else if port.first > port.last {
            out.push((
                "port",
                format!(
                    "\"{port}\" is an empty range; write the lower port first, \"{}-{}\"",
                    port.last, port.first
                ),
            ));
        }
    }
    if let Some(t) = rule.icmp_type {
        if !matches!(rule.protocol, Protocol::Icmp | Protocol::Icmpv6) {
            out.push((
                "icmp_type",
                format!(
                    "{t}: only ICMP has types, and protocol is \"{}\"; set protocol = \
                     \"icmp\" or \"icmpv6\", or remove icmp_type",
                    rule.protocol.name()
                ),
            ));
        }
    }
    if let Some(Prefix(src)) = rule.source {
        let (inside, field) = match src {
            IpNet::V4(_) => (inside4, "nat.inside_prefixes"),
            IpNet::V6(_) => (inside6, "ipv6.inside_prefixes"),
        };
        let overlaps = |p: &IpNet| p.contains(&src.trunc()) || src.trunc().contains(p);
        if !inside.is_empty() && !inside.iter().any(overlaps) {
            let list: Vec<String> = inside.iter().map(ToString::to_string).collect();
            out.push((
                "source",
                format!(
                    "{src} is not inside ({field}: {}): the policy sees only inside \
                     sources, so this rule never matches; use an inside address or prefix",
                    list.join(", ")
                ),
            ));
        }
    }
    if let Some(c) = &rule.comment {
        if c.chars().count() > MAX_COMMENT || c.chars().any(char::is_control) {
            out.push((
                "comment",
                format!("at most {MAX_COMMENT} characters, no control characters; shorten it"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = include_str!("../tests/data/base.toml");

    /// The errors of base.toml with `policy` appended, as `field: message` lines.
    fn errors(policy: &str) -> Vec<String> {
        match crate::from_toml(&format!("{BASE}\n{policy}")) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .diagnostics()
                .iter()
                .map(|d| format!("{}: {}", d.field.as_deref().unwrap_or("-"), d.message))
                .collect(),
        }
    }

    fn policy(text: &str) -> Policy {
        crate::from_toml(&format!("{BASE}\n{text}"))
            .expect("valid")
            .policy
    }

    #[test]
    fn absent_policy_allows_everything() {
        assert_eq!(policy(""), Policy::default());
        assert_eq!(Policy::default().default, Action::Allow);
    }

    #[test]
    fn rules_read_with_hosts_prefixes_ports_and_ranges() {
        let p = policy(
            "[policy]\ndefault = \"reject\"\n\
             [[policy.rule]]\naction = \"allow\"\nsource = \"10.10.0.5\"\n\
             destination = \"203.0.113.0/24\"\nprotocol = \"tcp\"\nport = 443\n\
             [[policy.rule]]\naction = \"deny\"\nprotocol = \"udp\"\nport = \"6000-6999\"\n\
             [[policy.rule]]\naction = \"allow\"\nprotocol = \"icmpv6\"\nicmp_type = 128\n",
        );
        assert_eq!(p.default, Action::Reject);
        assert_eq!(p.rule.len(), 3);
        assert_eq!(
            p.rule[0].source,
            Some(Prefix("10.10.0.5/32".parse().unwrap()))
        );
        assert_eq!(
            p.rule[0].port,
            Some(PortRange {
                first: 443,
                last: 443
            })
        );
        assert_eq!(
            p.rule[1].port,
            Some(PortRange {
                first: 6000,
                last: 6999
            })
        );
        assert_eq!(
            p.rule[0].describe(),
            "tcp 10.10.0.5 -> 203.0.113.0/24 port 443"
        );
        assert_eq!(p.rule[2].family(), Some(Family::V6));
        assert_eq!(p.rule[1].family(), None);
        // The TOML form reads back equal, hosts written without their length.
        let text = crate::to_toml(&crate::from_toml(&format!("{BASE}\n[policy]\n[[policy.rule]]\naction = \"deny\"\nsource = \"10.10.0.5\"\nport = \"1-2\"\nprotocol = \"udp\"\n")).unwrap());
        assert!(
            text.contains("source = \"10.10.0.5\"") && text.contains("port = \"1-2\""),
            "{text}"
        );
        let c = crate::from_toml(&text).unwrap();
        assert_eq!(crate::from_toml(&crate::to_toml(&c)).unwrap(), c);
    }

    #[test]
    fn a_rule_of_two_families_never_matches() {
        assert_eq!(
            errors(
                "[[policy.rule]]\naction = \"deny\"\nsource = \"10.10.0.0/24\"\n\
                 destination = \"2001:db8::/32\"\n"
            ),
            vec![
                "policy.rule[0].destination: 2001:db8::/32 is IPv6 but source 10.10.0.0/24 is \
                 IPv4: a packet has one family; split the rule in two, one per family"
            ]
        );
    }

    #[test]
    fn icmp_of_the_other_family_never_matches() {
        assert_eq!(
            errors(
                "[[policy.rule]]\naction = \"deny\"\ndestination = \"2001:db8::/32\"\n\
                 protocol = \"icmp\"\n"
            ),
            vec![
                "policy.rule[0].protocol: \"icmp\" is IPv4 only but the rule's addresses \
                 (2001:db8::/32) are IPv6; use protocol = \"icmpv6\""
            ]
        );
    }

    #[test]
    fn a_port_needs_tcp_or_udp_and_a_type_needs_icmp() {
        assert_eq!(
            errors("[[policy.rule]]\naction = \"deny\"\nprotocol = \"icmp\"\nport = 80\n"),
            vec![
                "policy.rule[0].port: 80: only TCP and UDP have ports, and protocol is \
                 \"icmp\"; set protocol = \"tcp\" or \"udp\" (one rule each), or remove port"
            ]
        );
        assert_eq!(
            errors("[[policy.rule]]\naction = \"deny\"\nport = 80\n").len(),
            1,
            "a port with any protocol"
        );
        assert_eq!(
            errors("[[policy.rule]]\naction = \"deny\"\nprotocol = \"tcp\"\nicmp_type = 8\n"),
            vec![
                "policy.rule[0].icmp_type: 8: only ICMP has types, and protocol is \"tcp\"; \
                 set protocol = \"icmp\" or \"icmpv6\", or remove icmp_type"
            ]
        );
        assert_eq!(
            errors("[[policy.rule]]\naction = \"deny\"\nprotocol = \"tcp\"\nport = \"90-80\"\n"),
            vec![
                "policy.rule[0].port: \"90-80\" is an empty range; write the lower port \
                 first, \"80-90\""
            ]
        );
    }

    #[test]
    fn bad_values_are_refused_by_the_schema() {
        let e = errors("[[policy.rule]]\naction = \"deny\"\nprotocol = \"tcp\"\nport = 70000\n");
        assert!(e[0].contains("70000 is not a port; use 0-65535"), "{e:?}");
        let e = errors("[[policy.rule]]\naction = \"deny\"\nprotocol = \"tcp\"\nport = \"http\"\n");
        assert!(e[0].contains("\"http\" is not a port or a range"), "{e:?}");
        let e = errors("[[policy.rule]]\naction = \"deny\"\ndestination = \"example.com\"\n");
        assert!(e[0].contains("neither an address nor a prefix"), "{e:?}");
        let e = errors("[[policy.rule]]\naction = \"drop\"\n");
        assert!(
            e[0].contains("use one of \"allow\", \"deny\", \"reject\""),
            "{e:?}"
        );
        let e = errors("[[policy.rule]]\ndestination = \"192.0.2.1\"\n");
        assert!(e[0].contains("action"), "{e:?}");
    }

    #[test]
    fn host_bits_and_sources_outside_the_inside_prefixes() {
        assert_eq!(
            errors("[[policy.rule]]\naction = \"deny\"\ndestination = \"192.0.2.1/24\"\n"),
            vec!["policy.rule[0].destination: 192.0.2.1/24 has host bits set; write \"192.0.2.0/24\""]
        );
        assert_eq!(
            errors("[[policy.rule]]\naction = \"deny\"\nsource = \"192.168.1.0/24\"\n"),
            vec![
                "policy.rule[0].source: 192.168.1.0/24 is not inside (nat.inside_prefixes: \
                 10.10.0.0/24): the policy sees only inside sources, so this rule never \
                 matches; use an inside address or prefix"
            ]
        );
        // A prefix around the inside one matches its hosts.
        assert!(errors("[[policy.rule]]\naction = \"deny\"\nsource = \"10.0.0.0/8\"\n").is_empty());
        assert!(
            errors("[[policy.rule]]\naction = \"deny\"\nsource = \"2001:db8:10::5\"\n").is_empty()
        );
        assert_eq!(
            errors("[[policy.rule]]\naction = \"deny\"\nsource = \"2001:db8:99::5\"\n").len(),
            1
        );
    }

    #[test]
    fn a_rule_shadowed_by_the_same_match_with_another_action() {
        let same = "[[policy.rule]]\naction = \"allow\"\ndestination = \"192.0.2.0/24\"\n\
                    protocol = \"tcp\"\nport = 443\n\
                    [[policy.rule]]\naction = \"deny\"\ndestination = \"192.0.2.0/24\"\n\
                    protocol = \"tcp\"\nport = 443\n";
        assert_eq!(
            errors(same),
            vec![
                "policy.rule[1]: never matches: policy.rule[0] (allow tcp any -> 192.0.2.0/24 \
                 port 443) matches exactly the same traffic first; remove this rule or move \
                 it above rule 0"
            ]
        );
        // The same action twice is only redundant.
        assert!(errors(&same.replace("\"deny\"", "\"allow\"")).is_empty());
        // Another port is another match.
        assert!(errors(&same.replacen("443", "80", 1)).is_empty());
    }

    #[test]
    fn a_rule_after_a_catch_all_of_its_family() {
        let e = errors(
            "[[policy.rule]]\naction = \"deny\"\ndestination = \"0.0.0.0/0\"\n\
             [[policy.rule]]\naction = \"allow\"\ndestination = \"192.0.2.0/24\"\n\
             [[policy.rule]]\naction = \"allow\"\ndestination = \"2001:db8::/32\"\n\
             [[policy.rule]]\naction = \"allow\"\nprotocol = \"tcp\"\n",
        );
        // Rule 2 is IPv6 and rule 3 matches IPv6 too: only rule 1 is shadowed.
        assert_eq!(
            e,
            vec![
                "policy.rule[1]: never matches: policy.rule[0] (deny any any -> 0.0.0.0/0) \
                 matches every packet of its family first; remove this rule or move it above \
                 rule 0"
            ]
        );
        let e = errors(
            "[[policy.rule]]\naction = \"reject\"\n\
             [[policy.rule]]\naction = \"allow\"\nprotocol = \"icmpv6\"\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
    }

    #[test]
    fn at_most_max_rules() {
        let one = "[[policy.rule]]\naction = \"deny\"\nprotocol = \"tcp\"\nport = 1\n";
        let mut text = String::new();
        for i in 0..=MAX_RULES {
            text.push_str(&one.replace("port = 1", &format!("port = {}", i + 1)));
        }
        assert_eq!(
            errors(&text),
            vec![
                "policy.rule: 10001 rules; at most 10000: merge rules into prefixes or port ranges"
            ]
        );
    }

    #[test]
    fn comments_are_bounded() {
        let long = "x".repeat(MAX_COMMENT + 1);
        assert_eq!(
            errors(&format!(
                "[[policy.rule]]\naction = \"deny\"\ncomment = \"{long}\"\n"
            )),
            vec![format!(
                "policy.rule[0].comment: at most {MAX_COMMENT} characters, no control \
                 characters; shorten it"
            )]
        );
    }

    #[test]
    fn errors_name_the_line_of_the_rule() {
        let text = format!(
            "{BASE}\n[[policy.rule]]\naction = \"deny\"\n\n[[policy.rule]]\naction = \"allow\"\n\
             protocol = \"icmp\"\nport = 7\n"
        );
        let e = crate::from_toml_named("natbox.toml", &text).unwrap_err();
        let line = text.lines().position(|l| l == "port = 7").unwrap() + 1;
        assert_eq!(e.diagnostics()[0].line, Some(line), "{e}");
    }
}
