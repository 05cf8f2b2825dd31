//! Flow records as text on the `[log] syslog` collector, in the field order of AWS
//! VPC flow logs' version-2 default format, as the MSG of an RFC 5424 message
//! (MSGID `FLOW`, no structured data):
//!
//! ```text
//! <134>1 2026-11-28T13:02:07.123Z natbox natbox - FLOW - 2 - lan0 10.10.0.2 203.0.113.5 40000 80 6 10 840 1795870867 1795870927 ACCEPT OK
//! ```
//!
//! | field | natbox |
//! |-------|--------|
//! | version | `2` |
//! | account-id | `-` (no cloud account) |
//! | interface-id | the inside port's `port` setting (the outside's on a one-armed box) |
//! | srcaddr, srcport, dstaddr, dstport | the direction's endpoints as the inside sees them: out, inside host to remote; in, remote to inside host (AWS logs the network interface's private address, so the public address and port are in IPFIX only). ICMP: ports `0` |
//! | protocol | IANA protocol number |
//! | packets, bytes | that direction's counts since the flow's previous record (IP header and payload) |
//! | start, end | Unix seconds: the first second the counts cover, the last packet |
//! | action | `ACCEPT`, or `REJECT` for a session the policy (deny or reject) or a limit refused |
//! | log-status | `OK` |
//!
//! One line per direction that carried packets, as AWS (each direction is its own
//! flow record there too).

use super::syslog;
use crate::engine::control::FlowBatch;
use crate::engine::flowlog::{Action, FlowRecord};
use crate::wire::proto;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The lines of `record` from a batch taken at engine second `now`, the wall clock
/// then being `wall`; `interface` names the port.
pub fn lines(record: &FlowRecord, now: u32, wall: SystemTime, interface: &str) -> Vec<String> {
    let unix = |t: u32| {
        let at = wall - Duration::from_secs(u64::from(now.saturating_sub(t)));
        at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    };
    let action = match record.action {
        Action::Accepted => "ACCEPT",
        _ => "REJECT",
    };
    let icmp = matches!(record.proto, proto::ICMP | proto::ICMPV6);
    let port = |p: u16| if icmp { 0 } else { p };
    let ends = [
        (
            record.inside,
            record.in_port,
            record.remote,
            record.rem_port,
        ),
        (
            record.remote,
            record.rem_port,
            record.inside,
            record.in_port,
        ),
    ];
    let (start, end) = (unix(record.account.since), unix(record.end));
    let iface = if interface.is_empty() { "-" } else { interface };
    (0..2)
        .filter(|&d| record.account.packets[d] > 0)
        .map(|d| {
            let (src, sport, dst, dport) = ends[d];
            format!(
                "2 - {iface} {src} {dst} {} {} {} {} {} {start} {end} {action} OK",
                port(sport),
                port(dport),
                record.proto,
                record.account.packets[d],
                record.account.bytes[d],
            )
        })
        .collect()
}

/// The syslog messages of every record of `batches`.
pub fn messages(
    batches: &[FlowBatch],
    wall: SystemTime,
    hostname: &str,
    interface: &str,
) -> Vec<String> {
    let header = syslog::header(wall, hostname);
    batches
        .iter()
        .flat_map(|b| b.records.iter().map(move |r| (b.now, r)))
        .flat_map(|(now, r)| lines(r, now, wall, interface))
        .map(|line| format!("{header} FLOW - {line}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::flowlog::EndReason;

    fn record() -> FlowRecord {
        let mut r = crate::services::ipfix::tests::nat_record(EndReason::IdleTimeout);
        r.account.packets = [10, 0];
        r.account.bytes = [840, 0];
        r.account.since = 40;
        r.end = 100;
        r
    }

    #[test]
    fn aws_v2_default_field_order() {
        let wall = UNIX_EPOCH + Duration::from_millis(1_795_870_927_123);
        let batch = FlowBatch {
            now: 100,
            records: vec![record()],
        };
        assert_eq!(
            messages(&[batch], wall, "natbox", "lan0"),
            [
                "<134>1 2026-11-28T13:02:07.123Z natbox natbox - FLOW - 2 - lan0 10.10.0.2 \
              203.0.113.5 40000 80 6 10 840 1795870867 1795870927 ACCEPT OK"
            ]
        );
    }

    #[test]
    fn each_direction_is_a_line_and_refusals_reject() {
        let mut r = record();
        r.account.packets = [1, 2];
        r.account.bytes = [60, 3000];
        r.action = Action::Denied;
        let l = lines(&r, 100, UNIX_EPOCH + Duration::from_secs(1000), "");
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[1],
            "2 - - 203.0.113.5 10.10.0.2 80 40000 6 2 3000 940 1000 REJECT OK"
        );
    }
}
