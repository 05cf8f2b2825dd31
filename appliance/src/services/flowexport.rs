//! Sends the shards' flow records (`engine::flowlog`) out: as IPFIX to
//! `[flow_log] ipfix` (`ipfix`) and as text to `[log] syslog` when `[flow_log]
//! syslog` is on (`flowtext`), from the box's own address toward the collector
//! (through whichever port routes to it, like the NAT event log, `syslog`), UDP
//! source port `SOURCE_PORT`.
//!
//! Bounded and never waiting: at most `FLOWS_PER_TICK` records are taken per tick
//! over all shards (the rest wait in the shards' bounded queues, which drop and count
//! when full); a datagram that cannot leave (no route to the collector, no engine
//! buffer) is counted (`errors`, and its records as `dropped`) and not retried. UDP
//! gives no feedback: a collector that is down or answers with ICMP port unreachable
//! costs the datagrams sent to it and nothing else; the ICMP errors that come back
//! quote no session and are dropped by the engine, counted under
//! `icmp_error_no_match`.
//!
//! Templates go at start and every `template_interval` (a collector started later
//! decodes from the next round on, RFC 7011 §8.4). A new collector address starts a
//! new IPFIX session: templates first and the
//! sequence number from 0 (RFC 7011 §10.3.7: the collector keys sequence numbers by
//! transport session and observation domain).

use super::{flowtext, ipfix, packet};
use crate::control::shards::{Shards, Snapshots};
use crate::engine::flowlog::FlowCounters;
use firmware_config::Config;
use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

/// Records taken per tick (100 ms) at most, over all the shards.
pub const FLOWS_PER_TICK: usize = 400;
/// UDP source port of the exported datagrams (the IPFIX port, RFC 7011 §10.3.4).
pub const SOURCE_PORT: u16 = 4739;

/// The exporter of one box.
#[derive(Debug, Default)]
pub struct FlowExport {
    ipfix: ipfix::Exporter,
    /// The collector and observation domain of the running IPFIX session: a change of
    /// either starts a new one (sequence numbers from 0, templates at once).
    session: (Option<SocketAddr>, u32),
    /// When the templates are next due (ms of `now`): `template_interval` after they
    /// were sent, or a second after they could not be (no route to the collector
    /// yet), so data never goes out for long without them (RFC 7011 §8).
    templates_due: u64,
}

/// The wait before templates that could not be sent are tried again.
const TEMPLATE_RETRY_MS: u64 = 1000;

impl FlowExport {
    /// One round: takes what the shards queued and sends it (`now` in ms).
    pub fn tick(&mut self, shards: &mut dyn Shards, config: &Config, now: u64) {
        let f = &config.flow_log;
        if self.session != (f.ipfix, f.observation_domain) {
            *self = FlowExport {
                session: (f.ipfix, f.observation_domain),
                ..FlowExport::default()
            };
        }
        if !f.enabled() {
            return;
        }
        let mut c = FlowCounters::default();
        if let Some(collector) = f.ipfix {
            if now >= self.templates_due {
                let m = self.ipfix.templates(unix_secs(), f.observation_domain);
                if send(shards, collector, &m) {
                    c.templates += 1;
                    self.templates_due = now + u64::from(f.template_interval) * 1000;
                } else {
                    c.errors += 1;
                    self.templates_due = now + TEMPLATE_RETRY_MS;
                }
            }
        }
        let per_shard = FLOWS_PER_TICK / shards.count().max(1);
        let batches = shards.flows(per_shard);
        let records: u64 = batches.iter().map(|b| b.records.len() as u64).sum();
        if records == 0 {
            shards.flows_exported(c);
            return;
        }
        let wall = SystemTime::now();
        if let Some(collector) = f.ipfix {
            let wall_ms = wall
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let max_len = max_datagram(config, collector.ip());
            let messages = self.ipfix.data(
                &batches,
                unix_secs(),
                wall_ms,
                f.observation_domain,
                max_len,
            );
            for (m, n) in messages {
                if send(shards, collector, &m) {
                    c.exported += u64::from(n);
                } else {
                    c.errors += 1;
                    c.dropped += u64::from(n);
                }
            }
        }
        if let (true, Some(collector)) = (f.syslog, config.log.syslog) {
            let interface = &config.inside_port().port;
            for line in flowtext::messages(&batches, wall, &config.hostname, interface) {
                if send(shards, collector, line.as_bytes()) {
                    c.exported += 1;
                } else {
                    c.errors += 1;
                    c.dropped += 1;
                }
            }
        }
        shards.flows_exported(c);
    }
}

/// Sends `payload` to `collector` from the box's address toward it.
fn send(shards: &mut dyn Shards, collector: SocketAddr, payload: &[u8]) -> bool {
    let Some(src) = shards.source_for(collector.ip()) else {
        return false;
    };
    packet::udp(src, collector.ip(), SOURCE_PORT, collector.port(), payload)
        .is_some_and(|ip| shards.originate(ip).is_ok())
}

/// The longest IPFIX message toward `to` that needs no fragmenting: the smaller
/// port MTU less the IP and UDP headers.
fn max_datagram(config: &Config, to: IpAddr) -> usize {
    let mtu = config.ports().map(|(_, p)| p.mtu).min().unwrap_or(1280);
    let ip = if to.is_ipv4() { 20 } else { 40 };
    usize::from(mtu) - ip - 8
}

fn unix_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}
