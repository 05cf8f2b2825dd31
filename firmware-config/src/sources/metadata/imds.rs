//! EC2's instance metadata service, IMDSv2 only
//! (docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html).
//!
//! The walk: `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds:
//! 21600` (the longest a token lives); then, each with `X-aws-ec2-metadata-token`,
//! `GET /latest/user-data`, `/latest/meta-data/instance-id`, `.../local-hostname`,
//! `.../mac` (the primary interface), `.../network/interfaces/macs/` (one `MAC/` a
//! line) and each MAC's `device-number`; then, of the interface that is the outside
//! port, `local-ipv4s`, `subnet-ipv4-cidr-block` and `vpc-ipv4-cidr-blocks`.
//!
//! The token PUT decides whether this is EC2 and whether IMDSv2 is offered:
//! - `200`: the body is the token. It goes into a header of every later request, so
//!   it must be 1 to [`MAX_TOKEN`] visible ASCII characters (no space, CR or LF),
//!   else the server is refused.
//! - `404` (no such endpoint: some other server) is `Absent`, and so is any answer
//!   with `Metadata-Flavor: Google` (GCE's server at the same address).
//! - `405` or `403` (the method, or tokens, refused: an IMDSv1-only server, a
//!   metadata service turned off, a PUT through a proxy) and any other status are
//!   refused: natbox never falls back to IMDSv1, whose unauthenticated GETs any SSRF
//!   can replay, and says how to turn IMDSv2 on.
//!
//! A `404` later means the value is not set: no user-data (the defaults alone), no
//! host name; any other status is refused (a `401` means the server dropped the token
//! it just issued).

use super::defaults::{self, Defaults, PortDefault, UserData};
use super::Walk;
use super::{got, list, mac, value, Cloud, Got, HttpRequest, HttpResponse, Meta, Outcome, Step};
use super::{MAX_INTERFACES, METADATA_ADDR};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// Longest token taken (AWS's are 56 characters).
pub const MAX_TOKEN: usize = 256;
/// The token's lifetime asked for, in seconds (the most IMDSv2 grants).
const TOKEN_TTL: &str = "21600";
const TOKEN_PATH: &str = "/latest/api/token";
const MACS: &str = "/latest/meta-data/network/interfaces/macs/";

/// What to ask next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Token,
    UserData,
    InstanceId,
    Hostname,
    Mac,
    Macs,
    /// The device number of the n-th MAC listed.
    DeviceNumber(usize),
    LocalIpv4s,
    Subnet,
    VpcCidrs,
    Finished,
}

#[derive(Debug)]
pub(super) struct Imds {
    phase: Phase,
    token: String,
    user: Option<UserData>,
    meta: Meta,
    primary: Option<String>,
    /// The MACs listed, with their device numbers once known.
    macs: Vec<(String, Option<u32>)>,
    /// The outside interface's MAC, and the inside's.
    outside: Option<String>,
    inside: Option<String>,
    local_ipv4s: Vec<Ipv4Addr>,
    subnet: Option<Ipv4Net>,
    vpc: Vec<Ipv4Net>,
    warnings: Vec<String>,
    outcome: Option<Outcome>,
}

impl Default for Imds {
    fn default() -> Imds {
        Imds {
            phase: Phase::Token,
            token: String::new(),
            user: None,
            meta: Meta::default(),
            primary: None,
            macs: Vec::new(),
            outside: None,
            inside: None,
            local_ipv4s: Vec::new(),
            subnet: None,
            vpc: Vec::new(),
            warnings: Vec::new(),
            outcome: None,
        }
    }
}

impl Imds {
    fn path(&self) -> String {
        let of_outside = |leaf: &str| {
            format!(
                "{MACS}{}/{leaf}",
                self.outside.as_deref().unwrap_or_default()
            )
        };
        match self.phase {
            Phase::Token => TOKEN_PATH.into(),
            Phase::UserData => "/latest/user-data".into(),
            Phase::InstanceId => "/latest/meta-data/instance-id".into(),
            Phase::Hostname => "/latest/meta-data/local-hostname".into(),
            Phase::Mac => "/latest/meta-data/mac".into(),
            Phase::Macs => MACS.into(),
            Phase::DeviceNumber(i) => {
                let mac = self
                    .macs
                    .get(i)
                    .map(|(m, _)| m.as_str())
                    .unwrap_or_default();
                format!("{MACS}{mac}/device-number")
            }
            Phase::LocalIpv4s => of_outside("local-ipv4s"),
            Phase::Subnet => of_outside("subnet-ipv4-cidr-block"),
            Phase::VpcCidrs => of_outside("vpc-ipv4-cidr-blocks"),
            Phase::Finished => String::new(),
        }
    }

    fn refuse(&mut self, message: String) {
        self.outcome = Some(Outcome::Refused(super::refused(Cloud::Ec2, message)));
    }

    /// The token PUT's answer (see the module doc).
    fn token(&mut self, response: HttpResponse) {
        let request = format!("PUT {TOKEN_PATH}");
        match response.status {
            200 => {
                let token = std::str::from_utf8(&response.body).unwrap_or_default();
                if (1..=MAX_TOKEN).contains(&token.len())
                    && token.bytes().all(|b| b.is_ascii_graphic())
                {
                    self.token = token.to_string();
                    self.phase = Phase::UserData;
                } else {
                    self.refuse(format!(
                        "{request} answered a token that is not 1-{MAX_TOKEN} visible ASCII \
                         characters ({} bytes); it cannot go into a header, so this server \
                         is not used",
                        response.body.len()
                    ));
                }
            }
            404 => {
                self.outcome = Some(Outcome::Absent(format!(
                    "{METADATA_ADDR} answered {request} with 404: no IMDSv2 there"
                )));
            }
            status => {
                let why = match status {
                    405 => "the server does not offer IMDSv2".to_string(),
                    403 => "the server refuses IMDSv2 tokens (the instance metadata service \
                            is turned off, or the PUT went through a proxy)"
                        .to_string(),
                    _ => "the server gives no IMDSv2 token".to_string(),
                };
                self.refuse(format!(
                    "{request} answered {status}: {why}. natbox never uses IMDSv1: turn \
                     IMDSv2 on (aws ec2 modify-instance-metadata-options --http-endpoint \
                     enabled --http-tokens required), or give the configuration on a cidata \
                     volume"
                ));
            }
        }
    }

    /// The MACs in device order, and which are the ports.
    fn choose_ports(&mut self) {
        let primary = self.primary.clone();
        self.macs
            .sort_by_key(|(m, n)| (n.unwrap_or(u32::MAX), Some(m) != primary.as_ref()));
        let macs: Vec<String> = self.macs.iter().map(|(m, _)| m.clone()).collect();
        let (outside, inside) = defaults::ports(self.user.as_ref(), &macs);
        self.outside = outside.and_then(|i| macs.get(i).cloned());
        self.inside = inside.and_then(|i| macs.get(i).cloned());
    }

    fn defaults(&mut self) -> Defaults {
        let port = |mac: &Option<String>| mac.clone().map(|mac| PortDefault { mac, mtu: None });
        let mut inside_prefixes = self.vpc.clone();
        if self.inside.is_some() {
            match self.subnet {
                Some(subnet) => inside_prefixes = defaults::without(&self.vpc, subnet),
                None if !self.vpc.is_empty() => self.warnings.push(
                    "ec2: the outside interface's subnet-ipv4-cidr-block is unknown, so \
                     nat.inside_prefixes (the VPC's CIDR blocks) holds the outside subnet \
                     too; list the inside sources in the user-data"
                        .into(),
                ),
                None => {}
            }
        }
        Defaults {
            outside: port(&self.outside),
            inside: port(&self.inside),
            inside_prefixes,
            pool: if self.local_ipv4s.len() > 1 {
                self.local_ipv4s.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// A GET's answer in `phase`.
    fn value(&mut self, phase: Phase, got: Got) {
        let body = match got {
            Got::Body(body) => Some(body),
            Got::Missing => None,
        };
        let path = self.path();
        let body_or_warn = |warnings: &mut Vec<String>, what: &str| {
            if body.is_none() {
                warnings.push(format!("ec2: GET {path} answered 404: no {what}"));
            }
            body.as_deref()
        };
        self.phase = match phase {
            Phase::UserData => match body
                .as_deref()
                .map(|b| UserData::read(Cloud::Ec2, b, &mut self.warnings))
            {
                None => {
                    self.warnings
                        .push(defaults::no_user_data(Cloud::Ec2, "is not set (404)"));
                    Phase::InstanceId
                }
                Some(Ok(user)) => {
                    self.user = user;
                    Phase::InstanceId
                }
                Some(Err(message)) => {
                    self.refuse(message);
                    Phase::Finished
                }
            },
            Phase::InstanceId => {
                self.meta.instance_id =
                    body_or_warn(&mut self.warnings, "instance id").and_then(value);
                Phase::Hostname
            }
            Phase::Hostname => {
                self.meta.hostname = body_or_warn(&mut self.warnings, "host name").and_then(value);
                Phase::Mac
            }
            Phase::Mac => {
                self.primary = body_or_warn(&mut self.warnings, "primary MAC")
                    .and_then(value)
                    .and_then(|v| mac(&v));
                Phase::Macs
            }
            Phase::Macs => {
                let listed: Vec<String> = body_or_warn(&mut self.warnings, "interfaces")
                    .map(|b| list::<String>(b, "ec2: network/interfaces/macs/", &mut self.warnings))
                    .unwrap_or_default();
                for entry in listed {
                    match mac(entry.trim_end_matches('/')) {
                        Some(_) if self.macs.len() >= MAX_INTERFACES => {
                            self.warnings.push(format!(
                                "ec2: more than {MAX_INTERFACES} interfaces; the rest are not used"
                            ));
                            break;
                        }
                        Some(m) if !self.macs.iter().any(|(x, _)| *x == m) => {
                            self.macs.push((m, None))
                        }
                        Some(_) => {}
                        None => self.warnings.push(format!(
                            "ec2: network/interfaces/macs/ lists {:?}, not a MAC address; left out",
                            super::printable(&entry)
                        )),
                    }
                }
                if self.macs.is_empty() {
                    self.warnings
                        .push("ec2: the metadata lists no network interface".into());
                    Phase::Finished
                } else {
                    Phase::DeviceNumber(0)
                }
            }
            Phase::DeviceNumber(i) => {
                let number = body_or_warn(&mut self.warnings, "device number")
                    .and_then(value)
                    .and_then(|v| v.parse::<u32>().ok());
                if let Some(entry) = self.macs.get_mut(i) {
                    entry.1 = number;
                }
                if i + 1 < self.macs.len() {
                    Phase::DeviceNumber(i + 1)
                } else {
                    self.choose_ports();
                    Phase::LocalIpv4s
                }
            }
            Phase::LocalIpv4s => {
                self.local_ipv4s = body_or_warn(&mut self.warnings, "local-ipv4s")
                    .map(|b| list(b, "ec2: local-ipv4s", &mut self.warnings))
                    .unwrap_or_default();
                Phase::Subnet
            }
            Phase::Subnet => {
                self.subnet = body_or_warn(&mut self.warnings, "subnet")
                    .and_then(value)
                    .and_then(|v| v.parse::<Ipv4Net>().ok())
                    .map(|n| n.trunc());
                Phase::VpcCidrs
            }
            Phase::VpcCidrs => {
                self.vpc = body_or_warn(&mut self.warnings, "VPC CIDR blocks")
                    .map(|b| list::<Ipv4Net>(b, "ec2: vpc-ipv4-cidr-blocks", &mut self.warnings))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|n| n.trunc())
                    .collect();
                if self.vpc.is_empty() {
                    self.warnings.push(
                        "ec2: the metadata names no VPC CIDR block, so nat.inside_prefixes has \
                         no default; list the inside sources in the user-data"
                            .into(),
                    );
                }
                Phase::Finished
            }
            Phase::Token | Phase::Finished => Phase::Finished,
        };
    }
}

impl Walk for Imds {
    fn next(&mut self) -> Step {
        if let Some(outcome) = &self.outcome {
            return Step::Done(outcome.clone());
        }
        Step::Request(match self.phase {
            Phase::Token => HttpRequest::put(self.path())
                .header("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL),
            Phase::Finished => {
                let defaults = self.defaults();
                let outcome = defaults::load(
                    Cloud::Ec2,
                    self.user.take(),
                    &defaults,
                    std::mem::take(&mut self.meta),
                    std::mem::take(&mut self.warnings),
                );
                self.outcome = Some(outcome.clone());
                return Step::Done(outcome);
            }
            _ => HttpRequest::get(self.path()).header("X-aws-ec2-metadata-token", &self.token),
        })
    }

    fn foreign(&self, response: &HttpResponse) -> Option<String> {
        response
            .header("metadata-flavor")
            .filter(|f| f.eq_ignore_ascii_case("google"))
            .map(|_| {
                format!(
                    "{METADATA_ADDR} is a GCE metadata server (Metadata-Flavor: Google), not EC2's"
                )
            })
    }

    fn answer(&mut self, response: HttpResponse) {
        let phase = self.phase;
        if phase == Phase::Token {
            return self.token(response);
        }
        let request = HttpRequest::get(self.path());
        match got(&request, response) {
            Ok(got) => self.value(phase, got),
            Err(message) => self.refuse(message),
        }
    }
}
