//! Configuration from a cloud's metadata server at 169.254.169.254:80: EC2's instance
//! metadata service, IMDSv2 only (`imds`), and the GCE metadata server (`gce`),
//! as sans-IO clients.
//!
//! # Who does the I/O
//!
//! This module does none. The appliance's boot phase (when no metadata disk, `cidata`
//! or `config-2` volume is found) takes a DHCP lease on the first NIC with natbox's
//! own dataplane and carries TCP to [`METADATA_ADDR`]:[`METADATA_PORT`] with smoltcp;
//! it drives a [`Fetch`] per [`Cloud`], EC2 first, then GCE:
//!
//! ```text
//! loop { match fetch.next() {
//!     Step::Request(req) => connect, send req.to_bytes(), read until
//!         parse_response(&bytes, closed) gives a response or an error (or a timeout),
//!         fetch.answer(that),
//!     Step::Done(outcome) => break outcome,
//! } }
//! ```
//!
//! `next` gives the same request again until it is answered, and the outcome for
//! good once there is one; an `answer` with no request outstanding is ignored.
//!
//! # Outcomes
//!
//! - [`Outcome::Absent`]: not this cloud; try the next. The first request got no
//!   answer at all (connection refused, timeout, reset: the message the caller passes),
//!   or an answer that is not this cloud's: on EC2 a `404` to `PUT /latest/api/token`
//!   (no IMDSv2 endpoint there) or any answer with `Metadata-Flavor: Google` (a GCE
//!   server, which also listens at 169.254.169.254); on GCE an answer without
//!   `Metadata-Flavor: Google`.
//! - [`Outcome::Refused`]: this cloud, but no configuration can come from it: the box
//!   boots with forwarding off, as with a refused volume. The message names the request
//!   and what natbox expects: IMDSv2 not offered (`405`, `403` or another answer to the
//!   token PUT: natbox never falls back to IMDSv1), a token that is not short visible
//!   ASCII (it would go into a header), an unexpected status (after [`TRIES`] tries of
//!   a 5xx or 429), a transport error once the server has answered, user-data that is
//!   not natbox's TOML (`userdata`'s refusals) or a configuration that breaks a rule.
//! - [`Outcome::Loaded`]: a valid configuration, with the instance id and host name.
//!
//! # User-data and the metadata's defaults
//!
//! The user-data is natbox's TOML, plain or gzip, read by `userdata`'s rules. It may
//! leave out what the metadata says; these defaults fill it, the user-data winning key
//! by key (`layered`), and then the schema and `validate` decide, with diagnostics that
//! name the user-data's line (`ec2:user-data:7: outside.ipv4: ...`). No user-data at
//! all (404, or empty) is the defaults alone, with a warning.
//!
//! - `outside = { port = MAC, ipv4 = "dhcp" }`: the interface the user-data's
//!   `outside.port` names when it is one of the metadata's MACs, else the first
//!   interface (EC2 `device-number` 0, GCE `nic0`). Cloud NIC names are not stable;
//!   MAC addresses are.
//! - `inside = { port = MAC, ipv4 = "dhcp" }` when a second interface exists and the
//!   user-data does not choose one-armed by naming `outside` without `inside`: the
//!   interface its `inside.port` names, else the first one after the outside one.
//! - `nat.inside_prefixes`: on EC2 the VPC's CIDR blocks (`vpc-ipv4-cidr-blocks` of
//!   the outside interface); with two ports less the outside interface's subnet
//!   (`subnet-ipv4-cidr-block`), so that inside and outside stay apart and the outside
//!   subnet's own hosts (its router, the DHCP server) are not taken for spoofed inside
//!   sources. On GCE, whose metadata names no VPC-wide range (a VPC's subnets span
//!   regions and are not listed to an instance), the subnet (`ip` and `subnetmask`) of
//!   the one interface one-armed, or of the inside interface with two ports: other
//!   subnets that route through the box must be listed in the user-data.
//! - `nat.pool` (EC2): the outside interface's `local-ipv4s` when it has more than one
//!   (each maps 1:1 to its own Elastic IP: more public addresses, more ports); with one
//!   it is left empty, so the pool is the DHCP lease's address.
//! - `mtu` (GCE): each port's interface's `mtu` (1460 by default there) when natbox
//!   supports it; EC2 says none (9001 inside the VPC, 1500 through its gateway).
//! - `hostname`: the metadata's, or its first label when the whole is not a valid
//!   host name (as for volumes).
//!
//! # Bounds
//!
//! At most [`MAX_REQUESTS`] requests per cloud (EC2 needs 9 and one per interface, GCE 4),
//! [`TRIES`] per request; at most [`MAX_INTERFACES`] interfaces and [`MAX_LIST`]
//! entries per list (addresses, CIDR blocks) are taken, the rest named in a warning;
//! responses bounded by `http` (head 8 KiB, body [`MAX_RESPONSE`]); user-data at most
//! `MAX_USER_DATA`, any other value at most `MAX_META_DATA`. Every value taken is
//! checked (visible ASCII, parsed as what it is); any bytes in any response give an
//! outcome, never a panic (`fuzz/fuzz_targets/metadata_http.rs`). How long each request
//! may take is the caller's bound.

mod defaults;
mod gce;
pub mod http;
mod imds;

pub use http::{parse_response, HttpRequest, HttpResponse, MAX_RESPONSE};

use super::{Kind, Loaded, Meta, Refused, MAX_META_DATA, MAX_META_VALUE};
use std::net::Ipv4Addr;

/// The metadata servers' address (EC2 and GCE alike).
pub const METADATA_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// Their TCP port.
pub const METADATA_PORT: u16 = 80;
/// Most requests one `Fetch` makes, retries included.
pub const MAX_REQUESTS: usize = 32;
/// Most tries of one request answered 5xx or 429, or, once the server has answered,
/// not answered at all.
pub const TRIES: usize = 3;
/// Most network interfaces taken from the metadata.
pub const MAX_INTERFACES: usize = 8;
/// Most entries taken from one list (addresses, CIDR blocks).
pub const MAX_LIST: usize = 64;

/// Which cloud's metadata server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Ec2,
    Gce,
}

impl Cloud {
    /// The source kind it gives.
    pub fn kind(self) -> Kind {
        match self {
            Cloud::Ec2 => Kind::Ec2,
            Cloud::Gce => Kind::Gce,
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// Send this request and `answer` with what comes back.
    Request(HttpRequest),
    /// Finished.
    Done(Outcome),
}

/// What a cloud's metadata server gave (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// Not this cloud (why): try the next.
    Absent(String),
    /// This cloud, but its configuration cannot be used.
    Refused(Refused),
    /// A valid configuration.
    Loaded(Loaded),
}

/// One cloud's client, as `imds` and `gce` implement it: the requests of a fixed walk,
/// each answer read as it comes.
trait Walk {
    /// The next request, or the outcome once it is known.
    fn next(&mut self) -> Step;
    /// Why `response` does not come from this cloud's server, if it does not.
    fn foreign(&self, response: &HttpResponse) -> Option<String>;
    /// A final response to the request `next` gave.
    fn answer(&mut self, response: HttpResponse);
}

#[derive(Debug)]
enum Client {
    Ec2(imds::Imds),
    Gce(gce::Gce),
}

impl Client {
    fn walk(&mut self) -> &mut dyn Walk {
        match self {
            Client::Ec2(c) => c,
            Client::Gce(c) => c,
        }
    }
}

/// One cloud's sans-IO client (see the module doc).
#[derive(Debug)]
pub struct Fetch {
    cloud: Cloud,
    client: Client,
    /// The request sent and not answered yet, and how often it was sent.
    pending: Option<(HttpRequest, usize)>,
    /// Requests sent, retries included.
    sent: usize,
    /// Whether the server has answered anything yet.
    answered: bool,
    done: Option<Outcome>,
}

impl Fetch {
    pub fn new(cloud: Cloud) -> Fetch {
        let client = match cloud {
            Cloud::Ec2 => Client::Ec2(imds::Imds::default()),
            Cloud::Gce => Client::Gce(gce::Gce::default()),
        };
        Fetch {
            cloud,
            client,
            pending: None,
            sent: 0,
            answered: false,
            done: None,
        }
    }

    /// Which cloud it asks.
    pub fn cloud(&self) -> Cloud {
        self.cloud
    }

    /// The next request to make, or the outcome. (Not an `Iterator`: it ends with
    /// the outcome, given again at every call.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Step {
        if let Some(done) = &self.done {
            return Step::Done(done.clone());
        }
        if let Some((request, _)) = &self.pending {
            return Step::Request(request.clone());
        }
        if self.sent >= MAX_REQUESTS {
            let message = format!("made {MAX_REQUESTS} requests without finishing");
            return self.finish(Outcome::Refused(self.refusal(message)));
        }
        match self.client.walk().next() {
            Step::Request(request) => {
                self.sent += 1;
                self.pending = Some((request.clone(), 1));
                Step::Request(request)
            }
            Step::Done(outcome) => self.finish(outcome),
        }
    }

    /// The answer to the last request: a response, or why there is none (see the
    /// module doc).
    pub fn answer(&mut self, response: Result<HttpResponse, String>) {
        let Some((request, tries)) = self.pending.take() else {
            return;
        };
        let first = !self.answered;
        let retry = match &response {
            Err(_) => !first,
            Ok(r) => {
                (r.status >= 500 || r.status == 429) && self.client.walk().foreign(r).is_none()
            }
        };
        if retry && tries < TRIES && self.sent < MAX_REQUESTS {
            self.sent += 1;
            self.answered |= response.is_ok();
            self.pending = Some((request, tries + 1));
            return;
        }
        match response {
            Err(e) if first => {
                self.done = Some(Outcome::Absent(format!(
                    "no answer from {METADATA_ADDR}:{METADATA_PORT} to {request}: {e}"
                )));
            }
            Err(e) => {
                let message = format!("{request}: {e} ({tries} tries)");
                self.done = Some(Outcome::Refused(self.refusal(message)));
            }
            Ok(response) => {
                self.answered = true;
                match self.client.walk().foreign(&response) {
                    Some(why) if first => self.done = Some(Outcome::Absent(why)),
                    Some(why) => {
                        let message = format!("{request}: {why}");
                        self.done = Some(Outcome::Refused(self.refusal(message)));
                    }
                    None => self.client.walk().answer(response),
                }
            }
        }
    }

    fn finish(&mut self, outcome: Outcome) -> Step {
        self.done = Some(outcome.clone());
        Step::Done(outcome)
    }

    fn refusal(&self, message: String) -> Refused {
        refused(self.cloud, message)
    }
}

/// `message` as this cloud's refusal, prefixed with where it came from.
fn refused(cloud: Cloud, message: String) -> Refused {
    let kind = cloud.kind();
    Refused {
        kind: Some(kind),
        message: format!("{} metadata ({}): {message}", kind.name(), kind.origin()),
    }
}

/// A response's status read as what a GET of a value means.
enum Got {
    /// 200: the body.
    Body(Vec<u8>),
    /// 404: the server has no such value.
    Missing,
}

/// `response` to `request` as a value or its absence; any other status is refused
/// (the message).
fn got(request: &HttpRequest, response: HttpResponse) -> Result<Got, String> {
    match response.status {
        200 => Ok(Got::Body(response.body)),
        404 => Ok(Got::Missing),
        status => Err(format!(
            "{request} answered {status}; natbox expects 200, or 404 for a value not set"
        )),
    }
}

/// The text of a metadata body: UTF-8, at most `MAX_META_DATA` bytes, trimmed.
fn body_text(body: &[u8]) -> Option<&str> {
    if body.len() as u64 > MAX_META_DATA {
        return None;
    }
    std::str::from_utf8(body).ok().map(str::trim)
}

/// One metadata value: visible ASCII without spaces, at most `MAX_META_VALUE` long.
fn value(body: &[u8]) -> Option<String> {
    body_text(body)
        .filter(|v| !v.is_empty() && v.len() <= MAX_META_VALUE)
        .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
}

/// The entries of a newline-separated list that parse as `T`, at most [`MAX_LIST`];
/// what is left out is named in a warning (one for the entries that do not parse,
/// one for those over the bound).
fn list<T: std::str::FromStr>(body: &[u8], what: &str, warnings: &mut Vec<String>) -> Vec<T> {
    let Some(text) = body_text(body) else {
        warnings.push(format!(
            "{what}: not UTF-8 text of at most 64 KiB; not used"
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    let (mut bad, mut first_bad, mut over) = (0, None, false);
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.parse() {
            Ok(_) if out.len() >= MAX_LIST => over = true,
            Ok(v) => out.push(v),
            Err(_) => {
                bad += 1;
                first_bad.get_or_insert(line);
            }
        }
    }
    if let Some(line) = first_bad {
        warnings.push(format!(
            "{what}: {bad} entries are not what natbox expects there (the first: {:?}); \
             left out",
            printable(line)
        ));
    }
    if over {
        warnings.push(format!(
            "{what}: more than {MAX_LIST} entries; the rest are not used"
        ));
    }
    out
}

/// `text` cut to 64 visible characters, for a message.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect()
}

/// A MAC address from the metadata, normalised to lower case.
fn mac(text: &str) -> Option<String> {
    crate::validate::parse_mac(text).map(|m| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

#[cfg(test)]
mod tests;
