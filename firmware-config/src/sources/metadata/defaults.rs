//! The user-data as received, the defaults the metadata gives (the rules are in the
//! parent's doc), and the configuration they make together.

use super::{refused, Cloud, Loaded, Meta, Outcome};
use crate::sources::{userdata, MAX_USER_DATA};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// A user-data that may be natbox's TOML, and what it says about the ports.
#[derive(Debug)]
pub(super) struct UserData {
    /// As messages name it: `ec2:user-data`.
    name: String,
    text: String,
    /// The MACs its `outside.port` and `inside.port` give, if they are MACs.
    outside_mac: Option<String>,
    inside_mac: Option<String>,
    names_outside: bool,
    names_inside: bool,
    names_hostname: bool,
}

impl UserData {
    /// The user-data in `body` (`None`: empty), or why it is refused.
    pub(super) fn read(
        cloud: Cloud,
        body: &[u8],
        warnings: &mut Vec<String>,
    ) -> Result<Option<UserData>, String> {
        let name = format!("{}:user-data", cloud.kind().name());
        if body.len() as u64 > MAX_USER_DATA {
            return Err(format!(
                "{name} is larger than {} KiB, the most natbox reads",
                MAX_USER_DATA >> 10
            ));
        }
        if body.trim_ascii().is_empty() {
            warnings.push(no_user_data(cloud, "is empty"));
            return Ok(None);
        }
        let text = userdata::text(body, &name)?;
        let table = crate::layered::table(&name, &text).map_err(|e| e.to_string())?;
        let port = |section: &str| {
            let port = table.get(section)?.get("port")?.as_str()?;
            super::mac(port)
        };
        Ok(Some(UserData {
            outside_mac: port("outside"),
            inside_mac: port("inside"),
            names_outside: table.contains_key("outside"),
            names_inside: table.contains_key("inside"),
            names_hostname: table.contains_key("hostname"),
            name,
            text,
        }))
    }
}

/// The warning for a metadata source without user-data.
pub(super) fn no_user_data(cloud: Cloud, why: &str) -> String {
    format!(
        "{}'s user-data {why}: the configuration is the metadata's defaults alone \
         (one-armed or two ports by DHCP, translating the {})",
        cloud.kind().name(),
        match cloud {
            Cloud::Ec2 => "VPC's CIDR blocks",
            Cloud::Gce => "interface's subnet",
        }
    )
}

/// Which of the metadata's interfaces (by their MACs, in device order) are the ports:
/// the outside's index, and the inside's when there are two ports.
pub(super) fn ports(user: Option<&UserData>, macs: &[String]) -> (Option<usize>, Option<usize>) {
    let find = |mac: Option<&String>| mac.and_then(|m| macs.iter().position(|x| x == m));
    let outside =
        find(user.and_then(|u| u.outside_mac.as_ref())).or((!macs.is_empty()).then_some(0));
    let one_armed = user.is_some_and(|u| u.names_outside && !u.names_inside);
    let inside = match outside {
        Some(outside) if !one_armed => find(user.and_then(|u| u.inside_mac.as_ref()))
            .filter(|&i| i != outside)
            .or_else(|| (0..macs.len()).find(|&i| i != outside)),
        _ => None,
    };
    (outside, inside)
}

/// A port as the metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PortDefault {
    pub mac: String,
    pub mtu: Option<u16>,
}

/// What the metadata says, as configuration.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Defaults {
    pub outside: Option<PortDefault>,
    pub inside: Option<PortDefault>,
    pub inside_prefixes: Vec<Ipv4Net>,
    pub pool: Vec<Ipv4Addr>,
}

impl Defaults {
    fn table(&self) -> toml::Table {
        let mut table = toml::Table::new();
        for (section, port) in [("outside", &self.outside), ("inside", &self.inside)] {
            let Some(port) = port else { continue };
            let mut t = toml::Table::new();
            t.insert("port".into(), port.mac.clone().into());
            t.insert("ipv4".into(), crate::Ipv4Setting::DHCP.into());
            if let Some(mtu) = port.mtu {
                t.insert("mtu".into(), i64::from(mtu).into());
            }
            table.insert(section.into(), t.into());
        }
        let strings = |items: Vec<String>| {
            toml::Value::Array(items.into_iter().map(toml::Value::String).collect())
        };
        let mut nat = toml::Table::new();
        if !self.inside_prefixes.is_empty() {
            let prefixes = self
                .inside_prefixes
                .iter()
                .map(ToString::to_string)
                .collect();
            nat.insert("inside_prefixes".into(), strings(prefixes));
        }
        if !self.pool.is_empty() {
            nat.insert(
                "pool".into(),
                strings(self.pool.iter().map(ToString::to_string).collect()),
            );
        }
        if !nat.is_empty() {
            table.insert("nat".into(), nat.into());
        }
        table
    }
}

/// The configuration `user` gives over `defaults`, with the metadata's host name
/// where it names none.
pub(super) fn load(
    cloud: Cloud,
    user: Option<UserData>,
    defaults: &Defaults,
    meta: Meta,
    mut warnings: Vec<String>,
) -> Outcome {
    let (name, text, names_hostname) = match user {
        Some(u) => (u.name, u.text, u.names_hostname),
        None => (
            format!("{} metadata", cloud.kind().name()),
            String::new(),
            false,
        ),
    };
    let config = match crate::layered::from_toml_over(&name, &text, defaults.table()) {
        Ok(config) => config,
        Err(e) => return Outcome::Refused(refused(cloud, e.to_string())),
    };
    let meta = meta.printable();
    let config = match &meta.hostname {
        Some(hostname) if !names_hostname => {
            crate::sources::with_hostname(config, hostname, &mut warnings)
        }
        _ => config,
    };
    Outcome::Loaded(Loaded {
        config,
        kind: cloud.kind(),
        meta,
        warnings,
    })
}

/// `blocks` without the addresses of `hole`, as prefixes (at most 32 for each block
/// that strictly holds it).
pub(super) fn without(blocks: &[Ipv4Net], hole: Ipv4Net) -> Vec<Ipv4Net> {
    let hole = hole.trunc();
    let mut out = Vec::new();
    for block in blocks.iter().map(Ipv4Net::trunc) {
        if hole.contains(&block) {
            continue;
        }
        if !block.contains(&hole) {
            out.push(block);
            continue;
        }
        // Halve the block down to the hole, keeping each half the hole is not in.
        let mut rest = block;
        while rest.prefix_len() < hole.prefix_len() {
            let Ok(halves) = rest.subnets(rest.prefix_len() + 1) else {
                break;
            };
            for half in halves {
                if half.contains(&hole) {
                    rest = half;
                } else {
                    out.push(half);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<Ipv4Net> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn without_cuts_the_hole_out_of_the_blocks_that_hold_it() {
        assert_eq!(
            without(
                &nets(&["10.0.0.0/16", "172.16.0.0/12"]),
                "10.0.1.0/24".parse().unwrap()
            ),
            nets(&[
                "10.0.128.0/17",
                "10.0.64.0/18",
                "10.0.32.0/19",
                "10.0.16.0/20",
                "10.0.8.0/21",
                "10.0.4.0/22",
                "10.0.2.0/23",
                "10.0.0.0/24",
                "172.16.0.0/12",
            ])
        );
        assert_eq!(
            without(&nets(&["10.0.1.0/24"]), "10.0.0.0/16".parse().unwrap()),
            vec![]
        );
        let all = without(&nets(&["0.0.0.0/0"]), "10.0.0.7/32".parse().unwrap());
        assert_eq!(all.len(), 32);
        assert!(all
            .iter()
            .all(|n| !n.contains(&"10.0.0.7".parse::<Ipv4Addr>().unwrap())));
        let covered: u64 = all.iter().map(|n| 1u64 << (32 - n.prefix_len())).sum();
        assert_eq!(covered, (1u64 << 32) - 1);
    }

    fn user(text: &str) -> UserData {
        UserData::read(Cloud::Ec2, text.as_bytes(), &mut Vec::new())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn ports_follow_the_user_data_or_device_order() {
        let macs: Vec<String> = [
            "0e:00:00:00:00:01",
            "0e:00:00:00:00:02",
            "0e:00:00:00:00:03",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(ports(None, &macs), (Some(0), Some(1)));
        assert_eq!(ports(None, &macs[..1]), (Some(0), None));
        assert_eq!(ports(None, &[]), (None, None));
        // Naming outside alone chooses one-armed.
        assert_eq!(
            ports(Some(&user("[outside]\nmtu = 9000\n")), &macs),
            (Some(0), None)
        );
        // A MAC the metadata knows picks that interface (in any case).
        let u = user("[outside]\nport = \"0E:00:00:00:00:02\"\n[inside]\nipv4 = \"dhcp\"\n");
        assert_eq!(ports(Some(&u), &macs), (Some(1), Some(0)));
        let u = user("[inside]\nport = \"0e:00:00:00:00:03\"\n");
        assert_eq!(ports(Some(&u), &macs), (Some(0), Some(2)));
        // A name, not a MAC: the device order.
        let u = user("[outside]\nport = \"eth1\"\n[inside]\nport = \"eth0\"\n");
        assert_eq!(ports(Some(&u), &macs), (Some(0), Some(1)));
        assert_eq!(
            ports(Some(&user("hostname = \"x\"\n")), &macs),
            (Some(0), Some(1))
        );
    }
}
