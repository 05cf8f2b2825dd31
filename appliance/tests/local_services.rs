//! The box's own endpoints against a live engine: what reaches a bound service, what
//! never does (RFC 6092-style: nothing unsolicited, and the metrics port never from
//! the outside), `ping`'s echo replies beside NAT's, and the NAT mapping event log
//! (RFC 6888 REQ-12).

#[path = "../../core/tests/support/mod.rs"]
mod support;
use natbox::engine::local::Binding;
use natbox::engine::stats::DropReason;
use natbox::engine::Verdict;
use natbox::services::packet;
use support::*;

const METRICS: u16 = 9100;

fn bound() -> Harness {
    let mut h = Harness::default();
    h.engine
        .bind_local(&[Binding::TcpInside((BOX_LAN, METRICS).into())]);
    h
}

fn popped(h: &mut Harness) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(d) = h.engine.pop_local(&mut buf) {
        out.push(buf[..d.len].to_vec());
    }
    out
}

#[test]
fn rfc9293_syn_to_the_bound_inside_port_reaches_the_service() {
    let mut h = bound();
    let syn = tcp4(sa(HOST, 40000), sa(BOX_LAN, METRICS), 0x02, &[]);
    assert_eq!(h.from_lan(syn.clone()).verdict, Verdict::Consumed);
    assert_eq!(popped(&mut h), vec![syn]);
    assert_eq!(h.engine.stats().local_delivered, 1);
}

#[test]
fn unbound_ports_of_the_box_stay_silent() {
    let mut h = bound();
    let out = h.from_lan(tcp4(sa(HOST, 40000), sa(BOX_LAN, 22), 0x02, &[]));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::LocalUnsupported));
    let mut h = Harness::default();
    let out = h.from_lan(tcp4(sa(HOST, 40000), sa(BOX_LAN, METRICS), 0x02, &[]));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::LocalUnsupported));
    assert!(popped(&mut h).is_empty());
}

#[test]
fn metrics_port_is_never_reachable_from_the_outside() {
    let mut h = bound();
    // To the public address: unsolicited, dropped like any other.
    let out = h.from_wan(tcp4(sa(REMOTE, 40000), sa(PUBLIC, METRICS), 0x02, &[]));
    assert!(matches!(out.verdict, Verdict::Drop(_)), "{:?}", out.verdict);
    // To the inside address, arriving on the outside port.
    let out = h.from_wan(tcp4(sa(REMOTE, 40000), sa(BOX_LAN, METRICS), 0x02, &[]));
    assert!(matches!(out.verdict, Verdict::Drop(_)), "{:?}", out.verdict);
    assert!(popped(&mut h).is_empty());
}

#[test]
fn rfc792_ping_reply_to_the_public_address_reaches_ping_unless_nat_owns_the_ident() {
    let mut h = Harness::default();
    // An inside host pings REMOTE: NAT maps its identifier (kept: 7).
    let out = h.from_lan(echo4(HOST, REMOTE, 7, 1, false));
    assert!(matches!(out.verdict, Verdict::Forward(_)));
    let nat_ident = echo_id4(out.ip());
    h.engine.bind_local(&[
        Binding::EchoReply {
            from: REMOTE.into(),
            ident: 4242,
        },
        Binding::EchoReply {
            from: REMOTE.into(),
            ident: nat_ident,
        },
    ]);
    let ours = echo4(REMOTE, PUBLIC, 4242, 1, true);
    assert_eq!(h.from_wan(ours.clone()).verdict, Verdict::Consumed);
    assert_eq!(popped(&mut h), vec![ours.clone()]);
    let reply = packet::parse_echo_reply(&ours).expect("an echo reply");
    assert_eq!((reply.ident, reply.seq), (4242, 1));
    // NAT wins for an identifier it mapped.
    let out = h.from_wan(echo4(REMOTE, PUBLIC, nat_ident, 1, true));
    assert!(
        matches!(out.verdict, Verdict::Forward(_)),
        "{:?}",
        out.verdict
    );
    assert_eq!(addrs4(out.ip()).1, HOST);
    // From someone else: not ours.
    let out = h.from_wan(echo4(REMOTE2, PUBLIC, 4242, 1, true));
    assert!(matches!(out.verdict, Verdict::Drop(_)));
}

#[test]
fn originated_datagrams_leave_by_the_route_with_the_box_source() {
    let mut h = Harness::default();
    let src = h.engine.source_for(REMOTE.into()).expect("a route");
    assert_eq!(src, std::net::IpAddr::from(PUBLIC));
    assert_eq!(h.engine.source_for(HOST.into()), Some(BOX_LAN.into()));
    let ip = packet::echo_request(src, REMOTE.into(), 9, 1, &[0; 8]).unwrap();
    h.engine.originate(&ip, h.now).expect("sent");
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, OUTSIDE);
    assert_eq!(&sent[0].1[14..], &ip[..]);
    assert_checksums(&sent[0].1);
}

#[test]
fn rfc6888_req12_mapping_events_hold_no_remote_address() {
    let mut c = config();
    c.log.syslog = Some("10.10.0.2:514".parse().unwrap());
    c.log.event_rate = 2;
    let mut h = Harness::new(c);
    for port in [5000, 5001, 5002] {
        h.from_lan(udp4(sa(HOST, port), sa(REMOTE, 53), b"q"));
    }
    // A second remote on the same mapping: no new event.
    h.from_lan(udp4(sa(HOST, 5000), sa(REMOTE2, 53), b"q"));
    let events = h.engine.nat_mut().events_mut();
    assert_eq!((events.logged, events.dropped), (2, 1), "rate 2/s");
    let e = events.pop().expect("first event");
    assert!(e.created);
    assert_eq!(e.inside, sa(HOST, 5000));
    assert_eq!(*e.outside.ip(), PUBLIC);
    h.advance_secs(400);
    let events = h.engine.nat_mut().events_mut();
    let deleted: Vec<_> = std::iter::from_fn(|| events.pop())
        .filter(|e| !e.created)
        .map(|e| e.inside.port())
        .collect();
    // Three mappings end in the same second: two deletes fit the rate, one is counted.
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(deleted.iter().all(|p| (5000..=5002).contains(p)));
    assert_eq!(events.dropped, 2);
}
