//! IPFIX (RFC 7011) encoding of flow records (`engine::flowlog`): the messages the
//! box sends its collector over UDP (`flowexport`). Pure: no I/O, no clock.
//!
//! - Message (RFC 7011 §3.1): version 10, length, export time (seconds), sequence
//!   number (data records sent before this message in this observation domain,
//!   modulo 2^32; template records do not count), observation domain ID. Each
//!   message is at most `max_len` bytes (the collector path's MTU less IP and UDP
//!   headers, §10.3.3: an IPFIX message never fragments) and holds whole records.
//! - Template set (§3.3.2 set ID 2, §3.4.1 template records) at the start of the first
//!   message and again whenever `template_interval` has passed (§8.4: over UDP,
//!   templates are re-sent periodically; a collector that restarted learns them
//!   again), in a message of its own before the data.
//! - Data sets (§3.3.2, set ID = template ID), one per template used in a message,
//!   no padding.
//! - One data record per direction that carried packets: the outbound direction
//!   (`flowDirection` 1, egress) from the inside endpoint to the remote, the inbound
//!   (`flowDirection` 0) from the remote to the box's public endpoint. NAT44 records
//!   carry RFC 8158's post-NAT IEs: outbound, the source becomes the public address
//!   and port (postNATSourceIPv4Address, postNAPTSourceTransportPort); inbound, the
//!   destination becomes the inside endpoint. Directions as two unidirectional
//!   records rather than one RFC 5103 biflow record: nfdump and most collectors
//!   show and add up unidirectional records, and the delta counters of each stay
//!   standard IEs.
//!
//! Templates (IE numbers from the IANA IPFIX registry; lengths in octets):
//!
//! | ID  | used for | fields |
//! |-----|----------|--------|
//! | 256 | NAT44 session ended | `BASE4` + post-NAT 225, 226, 227, 228 + natEvent 230 (5, NAT44 session delete; 1 and 2 are the historic draft values) |
//! | 257 | NAT44 session interim | `BASE4` + post-NAT 225, 226, 227, 228 |
//! | 258 | IPv4 session refused (policy or limit) | `BASE4` |
//! | 259 | IPv6 filter state, any | `BASE6` |
//!
//! `BASE4` is sourceIPv4Address 8, destinationIPv4Address 12, sourceTransportPort 7,
//! destinationTransportPort 11, protocolIdentifier 4, octetDeltaCount 1 (IP header and
//! payload, RFC 7012), packetDeltaCount 2, flowStartMilliseconds 152 (the session's
//! creation), flowEndMilliseconds 153 (its last packet), tcpControlBits 6 (2 octets,
//! RFC 7125), flowEndReason 136, flowDirection 61, firewallEvent 233 (2 deleted, 5
//! update, 3 denied: refused by the policy or a limit), and two enterprise-specific
//! IEs of PEN 32473 (RFC 5612's documentation number, as the syslog SD-ID): 3 the
//! policy rule that decided (unsigned16, 65535 = none: no policy or its default) and
//! 5 the action (unsigned8: 0 accepted, 1 rejected, 2 denied, 3 dropped by a limit).
//! `BASE6` is the same with sourceIPv6Address 27 and destinationIPv6Address 28.
//! ICMP records carry the echo identifier as the inside port.
//!
//! Crates weighed: `ipfixrw` and `netflow_parser` decode IPFIX well but would add a
//! dependency to the static binary for a writer of four fixed templates, which is a
//! few dozen lines here; the tests decode what this writes with an independent
//! decoder instead (nfdump and the Python `netflow` package in the e2e test, and a
//! decoder written to RFC 7011 §3 in the unit tests).

use crate::engine::control::FlowBatch;
use crate::engine::flowlog::{Action, EndReason, FlowRecord};
use std::net::IpAddr;

/// Message header length (RFC 7011 §3.1).
pub const HEADER_LEN: usize = 16;
/// IPFIX version number.
pub const VERSION: u16 = 10;
/// Set ID of a template set (§3.3.2).
pub const TEMPLATE_SET: u16 = 2;
/// Our enterprise number for the rule and action IEs (RFC 5612 documentation PEN).
pub const PEN: u32 = 32473;
const ENTERPRISE_BIT: u16 = 0x8000;

/// A field specifier: IE number (with the enterprise bit for ours), length.
type Field = (u16, u16);

/// Our element IDs: 3 and 5, away from the standard IE numbers the templates use,
/// because some decoders (the Python `netflow` package 0.12) key an
/// enterprise-specific field by its element ID alone.
pub const RULE_IE: u16 = ENTERPRISE_BIT | 3;
pub const ACTION_IE: u16 = ENTERPRISE_BIT | 5;

const BASE4: [Field; 15] = [
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (1, 8),
    (2, 8),
    (152, 8),
    (153, 8),
    (6, 2),
    (136, 1),
    (61, 1),
    (233, 1),
    (RULE_IE, 2),
    (ACTION_IE, 1),
];
const POST_NAT: [Field; 4] = [(225, 4), (226, 4), (227, 2), (228, 2)];

/// Template IDs.
pub const NAT_END: u16 = 256;
pub const NAT_UPDATE: u16 = 257;
pub const V4_REFUSED: u16 = 258;
pub const V6: u16 = 259;

/// The fields of template `id`.
fn fields(id: u16) -> Vec<Field> {
    let mut f: Vec<Field> = BASE4.to_vec();
    match id {
        NAT_END => {
            f.extend(POST_NAT);
            f.push((230, 1));
        }
        NAT_UPDATE => f.extend(POST_NAT),
        V6 => {
            f[0] = (27, 16);
            f[1] = (28, 16);
        }
        _ => {}
    }
    f
}

/// Every template, in the order the template set lists them.
pub const TEMPLATES: [u16; 4] = [NAT_END, NAT_UPDATE, V4_REFUSED, V6];

/// The template a record is written with.
fn template_of(r: &FlowRecord) -> u16 {
    match (r.inside, r.outside, r.reason) {
        (IpAddr::V6(_), ..) => V6,
        (_, None, _) => V4_REFUSED,
        (_, Some(_), EndReason::ActiveTimeout) => NAT_UPDATE,
        _ => NAT_END,
    }
}

/// The encoder's state for one observation domain.
#[derive(Debug, Default)]
pub struct Exporter {
    /// Data records sent, modulo 2^32 (§3.1 sequence number).
    sequence: u32,
}

/// One direction of a record, as it is written.
struct Dir<'a> {
    r: &'a FlowRecord,
    out: bool,
    /// Wall-clock milliseconds of the flow's start and end.
    start_ms: u64,
    end_ms: u64,
}

impl Exporter {
    /// The template set as one message (export time `time` in seconds).
    pub fn templates(&self, time: u32, domain: u32) -> Vec<u8> {
        let mut set = Vec::new();
        for id in TEMPLATES {
            let f = fields(id);
            put16(&mut set, id);
            put16(&mut set, f.len() as u16);
            for (ie, len) in f {
                put16(&mut set, ie);
                put16(&mut set, len);
                if ie & ENTERPRISE_BIT != 0 {
                    set.extend_from_slice(&PEN.to_be_bytes());
                }
            }
        }
        let mut m = header(time, self.sequence, domain);
        put16(&mut m, TEMPLATE_SET);
        put16(&mut m, (4 + set.len()) as u16);
        m.extend_from_slice(&set);
        finish(&mut m);
        m
    }

    /// The data records of `batches` as messages of at most `max_len` bytes, stamped
    /// `time` (seconds); `wall_ms` is the wall clock when the batches were taken.
    pub fn data(
        &mut self,
        batches: &[FlowBatch],
        time: u32,
        wall_ms: u64,
        domain: u32,
        max_len: usize,
    ) -> Vec<(Vec<u8>, u32)> {
        let mut messages = Vec::new();
        let mut m: Vec<u8> = Vec::new();
        // Start of the open data set in `m` and its template.
        let mut open: Option<(usize, u16)> = None;
        let mut in_message: u32 = 0;
        for batch in batches {
            let at = |t: u32| wall_ms.saturating_sub(u64::from(batch.now.saturating_sub(t)) * 1000);
            for r in &batch.records {
                let id = template_of(r);
                let len = record_len(id);
                for out in [true, false] {
                    let d = usize::from(!out);
                    if r.account.packets[d] == 0 {
                        continue;
                    }
                    let dir = Dir {
                        r,
                        out,
                        start_ms: at(r.born),
                        end_ms: at(r.end),
                    };
                    let set_needed = open.map(|(_, t)| t) != Some(id);
                    let need = len + if set_needed { 4 } else { 0 };
                    if !m.is_empty() && m.len() + need > max_len {
                        close(&mut m, &mut open);
                        messages.push((std::mem::take(&mut m), in_message));
                    }
                    if m.is_empty() {
                        m = header(time, self.sequence, domain);
                        in_message = 0;
                        open = None;
                    }
                    if open.map(|(_, t)| t) != Some(id) {
                        close(&mut m, &mut open);
                        open = Some((m.len(), id));
                        put16(&mut m, id);
                        put16(&mut m, 0);
                    }
                    write(&mut m, id, &dir);
                    in_message += 1;
                    self.sequence = self.sequence.wrapping_add(1);
                }
            }
        }
        if !m.is_empty() && in_message > 0 {
            close(&mut m, &mut open);
            messages.push((m, in_message));
        }
        messages
    }
}

fn header(time: u32, sequence: u32, domain: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(1500);
    put16(&mut m, VERSION);
    put16(&mut m, 0);
    m.extend_from_slice(&time.to_be_bytes());
    m.extend_from_slice(&sequence.to_be_bytes());
    m.extend_from_slice(&domain.to_be_bytes());
    m
}

/// Writes the open set's length.
fn close(m: &mut [u8], open: &mut Option<(usize, u16)>) {
    if let Some((start, _)) = open.take() {
        let len = (m.len() - start) as u16;
        m[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    finish(m);
}

/// Writes the message length.
fn finish(m: &mut [u8]) {
    let len = m.len() as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
}

fn record_len(id: u16) -> usize {
    fields(id).iter().map(|&(_, l)| usize::from(l)).sum()
}

fn put16(m: &mut Vec<u8>, v: u16) {
    m.extend_from_slice(&v.to_be_bytes());
}

fn ip_bytes(m: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => m.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => m.extend_from_slice(&a.octets()),
    }
}

/// Writes one data record of template `id`.
fn write(m: &mut Vec<u8>, id: u16, d: &Dir<'_>) {
    let r = d.r;
    let i = usize::from(!d.out);
    let (public, public_port) = match r.outside {
        Some((a, p)) => (IpAddr::V4(a), p),
        None => (r.inside, r.in_port),
    };
    // (source, destination) before and after translation.
    let (src, dst, post_src, post_dst) = if d.out {
        (
            (r.inside, r.in_port),
            (r.remote, r.rem_port),
            (public, public_port),
            (r.remote, r.rem_port),
        )
    } else {
        (
            (r.remote, r.rem_port),
            (public, public_port),
            (r.remote, r.rem_port),
            (r.inside, r.in_port),
        )
    };
    for (ie, len) in fields(id) {
        match ie {
            8 | 27 => ip_bytes(m, src.0),
            12 | 28 => ip_bytes(m, dst.0),
            7 => put16(m, src.1),
            11 => put16(m, dst.1),
            4 => m.push(r.proto),
            1 => m.extend_from_slice(&r.account.bytes[i].to_be_bytes()),
            2 => m.extend_from_slice(&r.account.packets[i].to_be_bytes()),
            152 => m.extend_from_slice(&d.start_ms.to_be_bytes()),
            153 => m.extend_from_slice(&d.end_ms.to_be_bytes()),
            6 => put16(m, u16::from(r.account.flags)),
            136 => m.push(r.reason as u8),
            61 => m.push(u8::from(d.out)),
            233 => m.push(match (r.action, r.reason) {
                (Action::Accepted, EndReason::ActiveTimeout) => 5,
                (Action::Accepted, _) => 2,
                _ => 3,
            }),
            RULE_IE => put16(m, r.account.rule),
            ACTION_IE => m.push(match r.action {
                Action::Accepted => 0,
                Action::Rejected => 1,
                Action::Denied => 2,
                Action::Limit => 3,
            }),
            225 => ip_bytes(m, post_src.0),
            226 => ip_bytes(m, post_dst.0),
            227 => put16(m, post_src.1),
            228 => put16(m, post_dst.1),
            // natEvent: NAT44 session delete (RFC 8158 §4.1.1, IANA value 5).
            230 => m.push(5),
            // Every template field has a value above; zeros keep the record whole.
            _ => m.resize(m.len() + usize::from(len), 0),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
