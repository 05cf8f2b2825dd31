//! The GCE metadata server (cloud.google.com/compute/docs/metadata/querying-metadata).
//!
//! Every request carries `Metadata-Flavor: Google`, and every response must too: the
//! first one without it is not GCE (`Absent`; EC2's server answers at the same
//! address), a later one is refused. The walk: `GET
//! /computeMetadata/v1/instance/attributes/user-data` (404: none, the defaults alone),
//! `.../instance/id`, `.../instance/hostname`, and
//! `.../instance/network-interfaces/?recursive=true`, a JSON array in `nicN` order of
//! objects with `mac`, `ip`, `subnetmask` and `mtu` (and `gateway`, `ipAliases`,
//! `accessConfigs`..., not used: the gateway comes with the DHCP lease, alias ranges
//! are the box's own, the external address is the cloud's 1:1 NAT of `ip`).
//! Interfaces are taken in order up to the first one whose `mac` is not a MAC address,
//! so a broken entry never moves another interface into its place.

use super::defaults::{self, Defaults, PortDefault, UserData};
use super::{got, mac, value, Cloud, Got, HttpRequest, HttpResponse, Meta, Outcome, Step, Walk};
use super::{MAX_INTERFACES, MAX_META_DATA};
use crate::validate::MTU_RANGE;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

const BASE: &str = "/computeMetadata/v1/instance";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    UserData,
    Id,
    Hostname,
    Interfaces,
    Finished,
}

/// One interface of the `network-interfaces` tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Interface {
    mac: String,
    subnet: Option<Ipv4Net>,
    mtu: Option<u16>,
}

#[derive(Debug)]
pub(super) struct Gce {
    phase: Phase,
    user: Option<UserData>,
    meta: Meta,
    interfaces: Vec<Interface>,
    warnings: Vec<String>,
    outcome: Option<Outcome>,
}

impl Default for Gce {
    fn default() -> Gce {
        Gce {
            phase: Phase::UserData,
            user: None,
            meta: Meta::default(),
            interfaces: Vec::new(),
            warnings: Vec::new(),
            outcome: None,
        }
    }
}

impl Gce {
    fn refuse(&mut self, message: String) {
        self.outcome = Some(Outcome::Refused(super::refused(Cloud::Gce, message)));
    }

    fn path(&self) -> String {
        match self.phase {
            Phase::UserData => format!("{BASE}/attributes/user-data"),
            Phase::Id => format!("{BASE}/id"),
            Phase::Hostname => format!("{BASE}/hostname"),
            Phase::Interfaces | Phase::Finished => {
                format!("{BASE}/network-interfaces/?recursive=true")
            }
        }
    }

    fn defaults(&self) -> Defaults {
        let macs: Vec<String> = self.interfaces.iter().map(|i| i.mac.clone()).collect();
        let (outside, inside) = defaults::ports(self.user.as_ref(), &macs);
        let port = |i: Option<usize>| {
            let i = self.interfaces.get(i?)?;
            Some(PortDefault {
                mac: i.mac.clone(),
                mtu: i.mtu,
            })
        };
        // One-armed the outside interface's subnet; with two ports the inside's.
        let translated = inside.or(outside).and_then(|i| self.interfaces.get(i));
        Defaults {
            outside: port(outside),
            inside: port(inside),
            inside_prefixes: translated.and_then(|i| i.subnet).into_iter().collect(),
            pool: Vec::new(),
        }
    }

    /// The `network-interfaces` tree (see the module doc).
    fn interfaces(&mut self, body: &[u8]) {
        let parsed = (body.len() as u64 <= MAX_META_DATA)
            .then(|| serde_json::from_slice::<Vec<serde_json::Value>>(body).ok())
            .flatten();
        let Some(list) = parsed else {
            self.warnings.push(
                "gce: network-interfaces is not a JSON array of at most 64 KiB; no port \
                 defaults"
                    .into(),
            );
            return;
        };
        if list.len() > MAX_INTERFACES {
            self.warnings.push(format!(
                "gce: more than {MAX_INTERFACES} interfaces; the rest are not used"
            ));
        }
        for (n, entry) in list.iter().take(MAX_INTERFACES).enumerate() {
            let text = |key: &str| entry.get(key).and_then(serde_json::Value::as_str);
            let Some(mac) = text("mac").and_then(mac) else {
                self.warnings.push(format!(
                    "gce: nic{n} has no valid mac; it and the interfaces after it are not used"
                ));
                break;
            };
            let addr = |key: &str| text(key).and_then(|v| v.parse::<Ipv4Addr>().ok());
            let subnet = addr("ip")
                .zip(addr("subnetmask"))
                .and_then(|(ip, mask)| Ipv4Net::with_netmask(ip, mask).ok())
                .map(|n| n.trunc());
            if subnet.is_none() {
                self.warnings
                    .push(format!("gce: nic{n} has no valid ip and subnetmask"));
            }
            let mtu = entry
                .get("mtu")
                .and_then(serde_json::Value::as_u64)
                .and_then(|m| u16::try_from(m).ok())
                .filter(|m| MTU_RANGE.contains(m));
            self.interfaces.push(Interface { mac, subnet, mtu });
        }
    }
}

impl Walk for Gce {
    fn next(&mut self) -> Step {
        if let Some(outcome) = &self.outcome {
            return Step::Done(outcome.clone());
        }
        if self.phase == Phase::Finished {
            let outcome = defaults::load(
                Cloud::Gce,
                self.user.take(),
                &self.defaults(),
                std::mem::take(&mut self.meta),
                std::mem::take(&mut self.warnings),
            );
            self.outcome = Some(outcome.clone());
            return Step::Done(outcome);
        }
        Step::Request(HttpRequest::get(self.path()).header("Metadata-Flavor", "Google"))
    }

    fn foreign(&self, response: &HttpResponse) -> Option<String> {
        match response.header("metadata-flavor") {
            Some(f) if f.eq_ignore_ascii_case("google") => None,
            _ => Some(format!(
                "{} answered without Metadata-Flavor: Google: not a GCE metadata server",
                super::METADATA_ADDR
            )),
        }
    }

    fn answer(&mut self, response: HttpResponse) {
        let request = HttpRequest::get(self.path());
        let body = match got(&request, response) {
            Ok(Got::Body(body)) => Some(body),
            Ok(Got::Missing) => None,
            Err(message) => return self.refuse(message),
        };
        let missing = |what: &str| format!("gce: GET {request} answered 404: no {what}");
        self.phase = match (self.phase, body) {
            (Phase::UserData, None) => {
                self.warnings
                    .push(defaults::no_user_data(Cloud::Gce, "is not set (404)"));
                Phase::Id
            }
            (Phase::UserData, Some(body)) => {
                match UserData::read(Cloud::Gce, &body, &mut self.warnings) {
                    Ok(user) => self.user = user,
                    Err(message) => self.refuse(message),
                }
                Phase::Id
            }
            (Phase::Id, body) => {
                self.meta.instance_id = body.as_deref().and_then(value);
                if body.is_none() {
                    self.warnings.push(missing("instance id"));
                }
                Phase::Hostname
            }
            (Phase::Hostname, body) => {
                self.meta.hostname = body.as_deref().and_then(value);
                if body.is_none() {
                    self.warnings.push(missing("host name"));
                }
                Phase::Interfaces
            }
            (Phase::Interfaces, Some(body)) => {
                self.interfaces(&body);
                Phase::Finished
            }
            (Phase::Interfaces, None) => {
                self.warnings.push(missing("network interfaces"));
                Phase::Finished
            }
            (Phase::Finished, _) => Phase::Finished,
        };
    }
}
