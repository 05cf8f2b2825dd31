//! NAT events to a remote syslog collector: RFC 5424 messages over UDP (RFC 5426),
//! sent from the box's own address toward the collector (source port 514).
//!
//! One message per mapping event, facility local0, severity informational:
//!
//! ```text
//! <134>1 2026-11-22T13:02:07.123Z natbox natbox - NAT44 [nat@32473 event="create" proto="udp" inside="10.10.0.2:40000" outside="198.51.100.10:40000"] mapping create udp 10.10.0.2:40000 -> 198.51.100.10:40000
//! ```
//!
//! A port-block event (`[port_block]`, RFC 8158 natEvent 13/14) names the block's
//! first and last port and the inside address without a port:
//!
//! ```text
//! <134>1 2026-11-22T13:02:07.123Z natbox natbox - NAT44 [nat@32473 event="block-create" proto="tcp" inside="10.10.0.2" outside="198.51.100.10" first="1024" last="1087"] block create tcp 10.10.0.2 -> 198.51.100.10:1024-1087
//! ```
//!
//! The structured data carries the fields for machines (SD-ID `nat@32473`: 32473 is
//! the private enterprise number RFC 5612 sets aside for documentation); the free
//! text repeats them for people. No remote address is logged (RFC 6888 REQ-12).
//! The timestamp is the wall clock when the event leaves the queue (at most one
//! timer tick, 100 ms, after the mapping changed). Rate limit and drop counting
//! happen where events are queued (`engine::nat44::events`); an event that cannot be
//! sent (no route, no buffer) is counted as dropped too.

use crate::engine::nat44::events::MappingEvent;
use crate::wire::proto;
use std::time::SystemTime;

/// `<PRI>`: facility local0 (16) * 8 + severity informational (6).
const PRI: u8 = 16 * 8 + 6;
/// UDP source port of the messages.
pub const SOURCE_PORT: u16 = 514;

fn proto_name(p: u8) -> &'static str {
    match p {
        proto::TCP => "tcp",
        proto::UDP => "udp",
        proto::ICMP => "icmp",
        _ => "other",
    }
}

/// An RFC 5424 message's header up to APP-NAME and PROCID (the MSGID follows),
/// stamped `at`, from host `hostname`.
pub fn header(at: SystemTime, hostname: &str) -> String {
    // HOSTNAME is PRINTUSASCII without spaces (RFC 5424 section 6.2.4), else NILVALUE.
    let host = if !hostname.is_empty() && hostname.bytes().all(|b| b.is_ascii_graphic()) {
        hostname
    } else {
        "-"
    };
    format!(
        "<{PRI}>1 {} {host} natbox -",
        humantime::format_rfc3339_millis(at)
    )
}

/// The RFC 5424 message for `event`, stamped `at`, from host `hostname`.
pub fn format(event: &MappingEvent, at: SystemTime, hostname: &str) -> String {
    let kind = if event.created { "create" } else { "delete" };
    let proto = proto_name(event.proto);
    let header = header(at, hostname);
    if let Some(last) = event.block_last {
        let (inside, outside, first) =
            (event.inside.ip(), event.outside.ip(), event.outside.port());
        return format!(
            "{header} NAT44 [nat@32473 event=\"block-{kind}\" proto=\"{proto}\" inside=\"{inside}\" outside=\"{outside}\" first=\"{first}\" last=\"{last}\"] block {kind} {proto} {inside} -> {outside}:{first}-{last}",
        );
    }
    format!(
        "{header} NAT44 [nat@32473 event=\"{kind}\" proto=\"{proto}\" inside=\"{}\" outside=\"{}\"] mapping {kind} {proto} {} -> {}",
        event.inside,
        event.outside,
        event.inside,
        event.outside,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc5424_message_fields() {
        let event = MappingEvent {
            created: false,
            proto: proto::TCP,
            inside: "10.10.0.2:40000".parse().unwrap(),
            outside: "198.51.100.10:1025".parse().unwrap(),
            block_last: None,
        };
        let at = UNIX_EPOCH + Duration::from_millis(1_795_870_927_123);
        assert_eq!(
            format(&event, at, "natbox"),
            "<134>1 2026-11-28T13:02:07.123Z natbox natbox - NAT44 [nat@32473 event=\"delete\" \
             proto=\"tcp\" inside=\"10.10.0.2:40000\" outside=\"198.51.100.10:1025\"] mapping \
             delete tcp 10.10.0.2:40000 -> 198.51.100.10:1025"
        );
        assert!(format(&event, at, "my box").contains(".123Z - natbox"));
    }

    #[test]
    fn rfc8158_port_block_event_names_first_and_last_port() {
        let event = MappingEvent {
            created: true,
            proto: proto::UDP,
            inside: "10.10.0.2:0".parse().unwrap(),
            outside: "198.51.100.10:1024".parse().unwrap(),
            block_last: Some(1087),
        };
        let at = UNIX_EPOCH + Duration::from_millis(1_795_870_927_123);
        assert_eq!(
            format(&event, at, "natbox"),
            "<134>1 2026-11-28T13:02:07.123Z natbox natbox - NAT44 [nat@32473 \
             event=\"block-create\" proto=\"udp\" inside=\"10.10.0.2\" \
             outside=\"198.51.100.10\" first=\"1024\" last=\"1087\"] block create udp \
             10.10.0.2 -> 198.51.100.10:1024-1087"
        );
    }
}
