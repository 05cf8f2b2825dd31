//! The encoder against a decoder written to RFC 7011 §3 (independent of the writer's
//! tables: it learns the layout from the template set it is sent).

use super::*;
use crate::engine::flowlog::Account;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A decoded data record: IE number (enterprise bit kept) to value bytes.
type Rec = HashMap<u16, Vec<u8>>;

#[derive(Debug, Default)]
struct Decoder {
    templates: HashMap<u16, Vec<(u16, u16)>>,
}

#[derive(Debug)]
struct Message {
    time: u32,
    sequence: u32,
    domain: u32,
    records: Vec<(u16, Rec)>,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

impl Decoder {
    fn decode(&mut self, m: &[u8]) -> Message {
        assert_eq!(be16(m, 0), 10, "§3.1 version");
        assert_eq!(
            usize::from(be16(m, 2)),
            m.len(),
            "§3.1 length is the message's"
        );
        let mut records = Vec::new();
        let mut at = HEADER_LEN;
        while at < m.len() {
            let (id, len) = (be16(m, at), usize::from(be16(m, at + 2)));
            assert!(len >= 4 && at + len <= m.len(), "§3.3.2 set length");
            let body = &m[at + 4..at + len];
            if id == TEMPLATE_SET {
                let mut i = 0;
                while i < body.len() {
                    let (tid, n) = (be16(body, i), be16(body, i + 2));
                    i += 4;
                    let mut f = Vec::new();
                    for _ in 0..n {
                        let (ie, l) = (be16(body, i), be16(body, i + 2));
                        i += 4;
                        if ie & 0x8000 != 0 {
                            assert_eq!(be32(body, i), PEN, "§3.2 enterprise number");
                            i += 4;
                        }
                        f.push((ie, l));
                    }
                    self.templates.insert(tid, f);
                }
            } else {
                assert!(id >= 256, "§3.3.2 data set IDs are template IDs");
                let t = self
                    .templates
                    .get(&id)
                    .expect("template known first")
                    .clone();
                let rl: usize = t.iter().map(|&(_, l)| usize::from(l)).sum();
                assert_eq!(body.len() % rl, 0, "whole records, no padding");
                for rec in body.chunks(rl) {
                    let mut o = 0;
                    let mut r = Rec::new();
                    for &(ie, l) in &t {
                        r.insert(ie, rec[o..o + usize::from(l)].to_vec());
                        o += usize::from(l);
                    }
                    records.push((id, r));
                }
            }
            at += len;
        }
        Message {
            time: be32(m, 4),
            sequence: be32(m, 8),
            domain: be32(m, 12),
            records,
        }
    }
}

fn uint(v: &[u8]) -> u64 {
    v.iter().fold(0, |a, &b| a << 8 | u64::from(b))
}

/// A NAT44 TCP flow's record (also `flowtext`'s tests').
pub(crate) fn nat_record(reason: EndReason) -> FlowRecord {
    FlowRecord {
        proto: 6,
        inside: "10.10.0.2".parse().unwrap(),
        in_port: 40000,
        remote: "203.0.113.5".parse().unwrap(),
        rem_port: 80,
        outside: Some(("198.51.100.10".parse().unwrap(), 1025)),
        account: Account {
            packets: [10, 20],
            bytes: [800, 25_000],
            since: 95,
            flags: 0x1b,
            rule: 3,
        },
        born: 90,
        end: 99,
        action: Action::Accepted,
        reason,
    }
}

fn batch(records: Vec<FlowRecord>) -> FlowBatch {
    FlowBatch { now: 100, records }
}

#[test]
fn rfc7011_3_1_message_header_and_sequence_counts_data_records_only() {
    let mut e = Exporter::default();
    let mut d = Decoder::default();
    let t = d.decode(&e.templates(1_700_000_000, 7));
    assert_eq!((t.time, t.sequence, t.domain), (1_700_000_000, 0, 7));
    let m = e.data(
        &[batch(vec![nat_record(EndReason::IdleTimeout)])],
        5,
        0,
        7,
        1400,
    );
    assert_eq!(m.len(), 1);
    let m1 = d.decode(&m[0].0);
    assert_eq!(
        (m1.sequence, m1.records.len()),
        (0, 2),
        "one record each way"
    );
    let t2 = d.decode(&e.templates(6, 7));
    assert_eq!(
        t2.sequence, 2,
        "templates do not count; the two data records did"
    );
    let m = e.data(
        &[batch(vec![nat_record(EndReason::IdleTimeout)])],
        7,
        0,
        7,
        1400,
    );
    assert_eq!(d.decode(&m[0].0).sequence, 2);
}

#[test]
fn rfc7011_3_4_1_template_set_lists_every_template() {
    let mut d = Decoder::default();
    d.decode(&Exporter::default().templates(0, 1));
    let mut ids: Vec<u16> = d.templates.keys().copied().collect();
    ids.sort_unstable();
    assert_eq!(ids, TEMPLATES);
    let nat = &d.templates[&NAT_END];
    for ie in [
        8, 12, 7, 11, 4, 1, 2, 152, 153, 6, 136, 225, 226, 227, 228, 230,
    ] {
        assert!(
            nat.iter().any(|&(i, _)| i == ie),
            "IE {ie} in the NAT44 template"
        );
    }
    assert!(d.templates[&V6].contains(&(27, 16)));
}

#[test]
fn rfc8158_nat44_records_carry_the_post_nat_endpoint_each_way() {
    let mut e = Exporter::default();
    let mut d = Decoder::default();
    d.decode(&e.templates(0, 1));
    let wall = 1_000_000_000;
    let m = e.data(
        &[batch(vec![nat_record(EndReason::IdleTimeout)])],
        0,
        wall,
        1,
        1400,
    );
    let recs = d.decode(&m[0].0).records;
    let (id, out) = &recs[0];
    assert_eq!(*id, NAT_END);
    assert_eq!(out[&8], Ipv4Addr::new(10, 10, 0, 2).octets());
    assert_eq!(out[&225], Ipv4Addr::new(198, 51, 100, 10).octets());
    assert_eq!((uint(&out[&7]), uint(&out[&227])), (40000, 1025));
    assert_eq!((uint(&out[&1]), uint(&out[&2])), (800, 10));
    assert_eq!(uint(&out[&61]), 1, "egress");
    assert_eq!(uint(&out[&230]), 5, "RFC 8158: NAT44 session delete is 5");
    assert_eq!(
        uint(&out[&152]),
        wall - 10_000,
        "born 10 s before the batch"
    );
    assert_eq!(uint(&out[&153]), wall - 1_000);
    assert_eq!((uint(&out[&6]), uint(&out[&136])), (0x1b, 1));
    assert_eq!(uint(&out[&RULE_IE]), 3, "the rule");
    let (_, inb) = &recs[1];
    assert_eq!(inb[&8], Ipv4Addr::new(203, 0, 113, 5).octets());
    assert_eq!(inb[&12], Ipv4Addr::new(198, 51, 100, 10).octets());
    assert_eq!(inb[&226], Ipv4Addr::new(10, 10, 0, 2).octets());
    assert_eq!((uint(&inb[&11]), uint(&inb[&228])), (1025, 40000));
    assert_eq!((uint(&inb[&1]), uint(&inb[&2])), (25_000, 20));
}

#[test]
fn interim_refused_and_ipv6_records_use_their_templates() {
    let mut e = Exporter::default();
    let mut d = Decoder::default();
    d.decode(&e.templates(0, 1));
    let mut refused = nat_record(EndReason::ForcedEnd);
    refused.outside = None;
    refused.action = Action::Rejected;
    refused.account.packets = [1, 0];
    let mut v6 = nat_record(EndReason::EndOfFlow);
    v6.outside = None;
    v6.inside = "2001:db8:1::2".parse().unwrap();
    v6.remote = "2001:db8:2::5".parse().unwrap();
    let records = vec![nat_record(EndReason::ActiveTimeout), refused, v6];
    let m = e.data(&[batch(records)], 0, 0, 1, 1400);
    let recs = d.decode(&m[0].0).records;
    let ids: Vec<u16> = recs.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [NAT_UPDATE, NAT_UPDATE, V4_REFUSED, V6, V6]);
    assert_eq!(uint(&recs[0].1[&233]), 5, "firewallEvent update");
    assert_eq!(uint(&recs[2].1[&233]), 3, "firewallEvent denied");
    assert_eq!(uint(&recs[2].1[&ACTION_IE]), 1, "action rejected");
    assert_eq!(
        recs[3].1[&27],
        "2001:db8:1::2".parse::<Ipv6Addr>().unwrap().octets()
    );
}

#[test]
fn rfc7011_10_3_3_messages_fit_the_path_and_hold_whole_records() {
    let mut e = Exporter::default();
    let mut d = Decoder::default();
    d.decode(&e.templates(0, 1));
    let records = vec![nat_record(EndReason::IdleTimeout); 100];
    let messages = e.data(&[batch(records)], 0, 0, 1, 512);
    assert!(messages.len() > 1);
    let mut expected_seq = 0;
    let mut total = 0;
    for m in &messages {
        assert!(m.0.len() <= 512);
        let decoded = d.decode(&m.0);
        assert_eq!(decoded.sequence, expected_seq, "§3.1 continuous sequence");
        expected_seq += decoded.records.len() as u32;
        total += decoded.records.len();
    }
    assert_eq!(total, 200);
}

#[test]
fn nothing_to_send_sends_nothing() {
    let mut e = Exporter::default();
    assert!(e.data(&[batch(vec![])], 0, 0, 1, 1400).is_empty());
}
