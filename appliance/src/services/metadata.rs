//! The boot-time read of the cloud's metadata server: EC2's instance metadata service
//! (IMDSv2 only) and then GCE's metadata server, both at 169.254.169.254:80, for the
//! box's configuration (the user-data, with defaults from the metadata:
//! `firmware_config::sources::metadata`, which holds each cloud's requests and
//! rules, sans I/O). This module carries them: one HTTP exchange at a time
//! (`fetch`) from the address the DHCP lease gave the port the route to the server
//! leaves by, through natbox's own dataplane (`init::metadata` runs it before
//! forwarding starts).
//!
//! # Bounds
//! - each exchange ends within [`EXCHANGE_MS`] (connect, request, whole answer) and
//!   reads at most `MAX_RESPONSE` bytes: a server that hangs or answers 10 MB costs
//!   one exchange, which fails with a message;
//! - a round tries each cloud in turn; a round in which no cloud answered (none of
//!   them is this cloud, or no server at all) is logged with each cloud's reason and
//!   tried again after a backoff that doubles from [`FIRST_RETRY_MS`] up to
//!   [`MAX_RETRY_MS`], for as long as the box runs (a NAT instance without its
//!   configuration must keep trying, and say so, not come up half-configured);
//! - while the port has no address yet (DHCP not bound), nothing is sent.
//!
//! A cloud whose configuration cannot be used (a `#cloud-config` user-data, a bad
//! field, a server that offers only IMDSv1) ends the search: its message is the
//! outcome, and the box stays up with forwarding off.

use super::fetch::Exchange;
use crate::backoff::Backoff;
use crate::control::shards::{Shards, Snapshots};
use crate::engine::local::Binding;
use firmware_config::sources::metadata::{
    parse_response, Cloud, Fetch, Outcome, Step, MAX_RESPONSE, METADATA_ADDR, METADATA_PORT,
};
use std::net::{IpAddr, SocketAddr};

/// One exchange's deadline, from its SYN to the server's FIN.
pub const EXCHANGE_MS: u64 = 3_000;
/// The first pause between rounds; it doubles per round.
pub const FIRST_RETRY_MS: u64 = 2_000;
/// The longest pause between rounds.
pub const MAX_RETRY_MS: u64 = 60_000;
/// The clouds, in the order they are asked.
const CLOUDS: [Cloud; 2] = [Cloud::Ec2, Cloud::Gce];
/// Head room for the answer's head beyond the largest body.
const HEAD_ROOM: usize = 16 << 10;

/// The search for the configuration in the metadata.
#[derive(Debug)]
pub struct Metadata {
    mtu: usize,
    /// The client of the cloud asked now (`CLOUDS[absent.len()]`) and its exchange.
    asking: Option<(Fetch, Option<Exchange>)>,
    /// Why each cloud asked this round is not this one.
    absent: Vec<String>,
    rounds: u32,
    /// When the next round may start.
    retry: Backoff,
    /// Logged once: the port has no address yet.
    said_waiting: bool,
    outcome: Option<Outcome>,
}

impl Metadata {
    /// A search over a port of `mtu` bytes.
    pub fn new(mtu: usize) -> Metadata {
        Metadata {
            mtu,
            asking: None,
            absent: Vec::new(),
            rounds: 0,
            retry: Backoff::new(0, FIRST_RETRY_MS, MAX_RETRY_MS),
            said_waiting: false,
            outcome: None,
        }
    }

    /// What the engine must deliver: the open exchange's segments.
    pub fn binding(&self) -> Option<Binding> {
        let (_, exchange) = self.asking.as_ref()?;
        exchange.as_ref().map(Exchange::binding)
    }

    /// Takes a delivered datagram if the open exchange wants it.
    pub fn receive(&mut self, ip: &[u8]) -> bool {
        match &mut self.asking {
            Some((_, Some(exchange))) => exchange.receive(ip),
            _ => false,
        }
    }

    /// The outcome, once there is one: `Loaded` or `Refused` (never `Absent`).
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Takes the outcome.
    pub fn take_outcome(&mut self) -> Option<Outcome> {
        self.outcome.take()
    }

    /// Runs the search one step (`now` in ms).
    pub fn poll(&mut self, shards: &mut dyn Shards, now: u64) {
        if self.outcome.is_some() || self.retry.wait(now) > 0 {
            return;
        }
        let server = IpAddr::V4(METADATA_ADDR);
        let Some(src) = shards.source_for(server) else {
            if !self.said_waiting {
                log::info!("metadata: waiting for an address (DHCP) on the way to {server}");
                self.said_waiting = true;
            }
            return;
        };
        // Bounded: each pass either sends, waits on an exchange, or moves the
        // client or the round on; a client asks a bounded number of requests.
        for _ in 0..8 {
            let (fetch, exchange) = match &mut self.asking {
                Some(asking) => asking,
                None => match CLOUDS.get(self.absent.len()) {
                    Some(&cloud) => self.asking.insert((Fetch::new(cloud), None)),
                    None => {
                        self.round_failed(now);
                        return;
                    }
                },
            };
            if let Some(ex) = exchange {
                for ip in ex.poll(now) {
                    let _ = shards.originate(ip);
                }
                let answer = match (ex.error(), parse_response(ex.received(), ex.closed())) {
                    (Some(e), _) => Err(e.to_string()),
                    (None, Ok(Some(response))) => Ok(response),
                    (None, Ok(None)) if ex.closed() => {
                        Err("the answer ended before it was complete".to_string())
                    }
                    (None, Ok(None)) => return,
                    (None, Err(e)) => Err(e),
                };
                fetch.answer(answer);
                *exchange = None;
            }
            match fetch.next() {
                Step::Request(request) => {
                    let peer = SocketAddr::new(server, METADATA_PORT);
                    let mut ex = Exchange::start(
                        src,
                        peer,
                        request.to_bytes(),
                        MAX_RESPONSE + HEAD_ROOM,
                        self.mtu,
                        now,
                        EXCHANGE_MS,
                    );
                    for ip in ex.poll(now) {
                        let _ = shards.originate(ip);
                    }
                    *exchange = Some(ex);
                    return;
                }
                Step::Done(Outcome::Absent(reason)) => {
                    log::debug!("metadata: {reason}");
                    self.absent.push(reason);
                    self.asking = None;
                }
                Step::Done(outcome) => {
                    self.asking = None;
                    self.outcome = Some(outcome);
                    return;
                }
            }
        }
    }

    /// No cloud answered this round: says why, and waits before the next.
    fn round_failed(&mut self, now: u64) {
        self.retry.due(now);
        let wait = self.retry.wait(now);
        self.rounds = self.rounds.saturating_add(1);
        log::warn!(
            "metadata: no configuration from the metadata server at {METADATA_ADDR} ({}); \
             trying again in {} s (attempt {}); forwarding stays off until a configuration \
             is found",
            self.absent.join("; "),
            wait / 1000,
            self.rounds
        );
        self.absent.clear();
    }
}
