//! Static port forwarding (`[[forward]]`, inbound DNAT): a public address, protocol
//! and port (or range) that outsiders may reach, and the inside host and port it
//! leads to. Forwards are numbered from 0 in `show forwards`, the metrics and the
//! error messages (`forward[2]`).
//!
//! ```toml fragment
//! [nat]
//! port_min = 10000             # source NAT's ports must not hold a forwarded one
//!
//! [[forward]]                  # forward 0
//! protocol = "tcp"             # tcp or udp
//! port = 443                   # the public port, or a range "8000-8009"
//! to = "10.10.0.5"             # the inside host
//! to_port = 8443               # its port (the first of its range); default: port
//! address = "198.51.100.10"    # the public address; default: the first pool address
//! allow = ["203.0.113.0/24"]   # sources that may connect; default: any
//! comment = "the web server"
//! ```
//!
//! A range maps one to one by offset: with `port = "8000-8009"` and `to_port = 9000`,
//! public port 8005 leads to inside port 9005.
//!
//! **The public address** is a pool address (`nat.pool`), or, when the pool is empty,
//! the outside port's own address (the pool's default). Left out, it is the first pool
//! address *as the engine sees it*: with `outside.ipv4 = "dhcp"` and no pool (a cloud
//! box, one-armed or not) that is the address the lease gives, so a forward follows
//! the lease; an explicit address is refused there, since no configuration-time check
//! could know it.
//!
//! Validation ([`check`]) refuses, naming the field and the fix: a port or inside port
//! of 0, an empty range, a range whose inside end passes 65535, an inside host that is
//! not translated (outside `nat.inside_prefixes`), a public address that is not a pool
//! address, a forward whose ports lie in the source-NAT port range
//! (`nat.port_min`-`nat.port_max`, naming both: the two would collide on a public
//! port), two forwards that share a public address, protocol and port (naming both),
//! and more than [`MAX_FORWARDS`].

use crate::policy::PortRange;
use crate::schema::Config;
use crate::validate::ValidationError;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Most forwards a configuration holds (the engine looks them up by binary search).
pub const MAX_FORWARDS: usize = 1024;

/// One forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub protocol: Protocol,
    /// The public port or range.
    pub port: PortRange,
    /// The inside host.
    pub to: Ipv4Addr,
    /// The inside port (for a range, the first); absent: the public port.
    #[serde(default)]
    pub to_port: Option<u16>,
    /// The public address; absent: the first pool address.
    #[serde(default)]
    pub address: Option<Ipv4Addr>,
    /// The sources allowed to open sessions; empty: any.
    #[serde(default)]
    pub allow: Vec<Ipv4Net>,
    /// Shown by `show forwards`.
    #[serde(default)]
    pub comment: Option<String>,
}

/// The protocols a forward carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl Forward {
    /// The first inside port.
    pub fn inside_port(&self) -> u16 {
        self.to_port.unwrap_or(self.port.first)
    }

    /// The forward as one line: `tcp 198.51.100.10:8000-8009 -> 10.10.0.5:9000-9009`
    /// (`*` for the default public address).
    pub fn describe(&self) -> String {
        let public = self.address.map_or("*".to_string(), |a| a.to_string());
        let first = self.inside_port();
        let span = self.port.last.saturating_sub(self.port.first);
        let inside = PortRange {
            first,
            last: first.saturating_add(span),
        };
        format!(
            "{} {public}:{} -> {}:{inside}",
            self.protocol.name(),
            self.port,
            self.to
        )
    }
}

/// The public address a forward is reached at, as far as the configuration says: its
/// own, else the first configured pool address, else the outside port's static
/// address (`None`: learnt by DHCP).
fn public_address(config: &Config, f: &Forward) -> Option<Ipv4Addr> {
    f.address.or_else(|| config.nat_pool().first().copied())
}

/// Checks every forward of `config`; see the module doc.
pub fn check(config: &Config) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    let mut fail = |field: String, message: String| errors.push(ValidationError { field, message });
    let forwards = &config.forward;
    if forwards.len() > MAX_FORWARDS {
        fail(
            "forward".into(),
            format!(
                "{} forwards; at most {MAX_FORWARDS}: merge forwards into port ranges",
                forwards.len()
            ),
        );
        return errors;
    }
    let (min, max) = (config.nat.port_min, config.nat.port_max);
    let inside = config.nat_inside_prefixes();
    let pool = config.nat_pool();
    for (i, f) in forwards.iter().enumerate() {
        let at = |k: &str| format!("forward[{i}].{k}");
        let PortRange { first, last } = f.port;
        if first == 0 {
            fail(
                at("port"),
                format!("{}: port 0 cannot be reached; use 1-65535", f.port),
            );
            continue;
        }
        if first > last {
            fail(
                at("port"),
                format!("\"{first}-{last}\" is empty; write the lower port first"),
            );
            continue;
        }
        let to_port = f.inside_port();
        if to_port == 0 {
            fail(
                at("to_port"),
                "0: port 0 cannot be reached; use 1-65535".into(),
            );
        } else if u32::from(to_port) + u32::from(last - first) > 65535 {
            fail(
                at("to_port"),
                format!(
                    "{to_port}: the range {} needs inside ports up to {}; use at most {}",
                    f.port,
                    u32::from(to_port) + u32::from(last - first),
                    65535 - (last - first)
                ),
            );
        }
        if !inside.iter().any(|n| n.contains(&f.to)) || f.to.is_broadcast() {
            let nets: Vec<String> = inside.iter().map(|n| n.to_string()).collect();
            fail(
                at("to"),
                format!(
                    "{} is not an inside host the box translates ({}); name a host in \
                     nat.inside_prefixes",
                    f.to,
                    nets.join(", ")
                ),
            );
        }
        if let Some(addr) = f.address {
            if config.nat.pool.is_empty() && config.outside.ipv4_dhcp() {
                fail(
                    at("address"),
                    format!(
                        "{addr}: the public address is learnt by DHCP (outside.ipv4 = \
                         \"dhcp\", no nat.pool); leave address out to forward on the \
                         leased address"
                    ),
                );
            } else if !pool.contains(&addr) {
                let list: Vec<String> = pool.iter().map(|a| a.to_string()).collect();
                fail(
                    at("address"),
                    format!(
                        "{addr} is not a public address of the box ({}); use one of them \
                         or leave address out for the first",
                        list.join(", ")
                    ),
                );
            }
        }
        if first <= max && min <= last {
            fail(
                at("port"),
                format!(
                    "{} lies in the source NAT port range nat.port_min-nat.port_max \
                     ({min}-{max}), where source NAT would hand the same public port out; \
                     move the forward out of that range or narrow the range to exclude it",
                    f.port
                ),
            );
        }
        let here = public_address(config, f);
        if let Some((j, g)) = forwards[..i].iter().enumerate().find(|(_, g)| {
            g.protocol == f.protocol
                && public_address(config, g) == here
                && g.port.first <= last
                && first <= g.port.last
        }) {
            fail(
                at("port"),
                format!(
                    "{} overlaps forward[{j}] ({}): a public port leads to one inside \
                     host; change one of the two ports",
                    f.describe(),
                    g.describe()
                ),
            );
        }
        if f.comment.as_ref().is_some_and(|c| c.chars().count() > 128) {
            fail(
                at("comment"),
                "longer than 128 characters; shorten it".into(),
            );
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    const BASE: &str = "[outside]\nport = \"wan0\"\nipv4 = \"198.51.100.10/24\"\n\
        [inside]\nport = \"lan0\"\nipv4 = \"10.10.0.1/24\"\n";

    /// The problems `toml` (after `BASE`) has, as `field: message` lines.
    fn problems(toml: &str) -> Vec<String> {
        match crate::from_toml(&format!("{BASE}{toml}")) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .diagnostics()
                .iter()
                .map(|d| format!("{}: {}", d.field.as_deref().unwrap_or(""), d.message))
                .collect(),
        }
    }

    const FWD: &str = "[[forward]]\nprotocol = \"tcp\"\nto = \"10.10.0.5\"\n";

    #[test]
    fn forward_outside_the_snat_range_is_accepted() {
        let ok = format!("[nat]\nport_min = 10000\n{FWD}port = \"8000-8009\"\nto_port = 9000\n");
        assert_eq!(problems(&ok), Vec::<String>::new());
    }

    #[test]
    fn forward_in_the_snat_range_is_refused_naming_both() {
        let p = problems(&format!("{FWD}port = 8080\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("forward[0].port: 8080 lies in the source NAT port range"));
        assert!(
            p[0].contains("nat.port_min-nat.port_max (1-65535)"),
            "{p:?}"
        );
    }

    #[test]
    fn overlapping_forwards_are_refused_naming_both() {
        let p = problems(&format!(
            "[nat]\nport_max = 7000\n{FWD}port = \"8000-8009\"\n{FWD}port = 8005\nto_port = 22\n"
        ));
        assert_eq!(
            p,
            [
                "forward[1].port: tcp *:8005 -> 10.10.0.5:22 overlaps forward[0] \
              (tcp *:8000-8009 -> 10.10.0.5:8000-8009): a public port leads to one inside \
              host; change one of the two ports"
            ]
        );
        // Another protocol, or another public address, is no overlap.
        let udp = FWD.replace("tcp", "udp");
        assert!(problems(&format!(
            "[nat]\nport_max = 7000\n{FWD}port = 8005\n{udp}port = 8005\n"
        ))
        .is_empty());
    }

    #[test]
    fn public_address_must_be_the_boxs() {
        let p = problems(&format!(
            "[nat]\nport_max = 7000\n{FWD}port = 8000\naddress = \"192.0.2.1\"\n"
        ));
        assert_eq!(
            p,
            [
                "forward[0].address: 192.0.2.1 is not a public address of the box \
              (198.51.100.10); use one of them or leave address out for the first"
            ]
        );
    }

    #[test]
    fn public_address_learnt_by_dhcp_must_be_left_out() {
        let dhcp = "[outside]\nport = \"wan0\"\nipv4 = \"dhcp\"\n\
            [inside]\nport = \"lan0\"\nipv4 = \"10.10.0.1/24\"\n\
            [nat]\nport_max = 7000\n";
        let with = |extra: &str| crate::from_toml(&format!("{dhcp}{FWD}port = 8000\n{extra}"));
        assert!(with("").is_ok());
        let e = with("address = \"198.51.100.10\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("the public address is learnt by DHCP"), "{e}");
    }

    #[test]
    fn bad_ports_and_hosts_are_refused() {
        let p = problems(&format!(
            "[nat]\nport_max = 7000\n{FWD}port = \"9000-9010\"\nto_port = 65530\n\
             {FWD}port = 0\n[[forward]]\nprotocol = \"udp\"\nport = 9100\nto = \"192.0.2.7\"\n"
        ));
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("forward[0].to_port: 65530: the range 9000-9010"));
        assert!(p[1].starts_with("forward[1].port: 0: port 0"));
        assert!(p[2].starts_with("forward[2].to: 192.0.2.7 is not an inside host"));
    }
}
