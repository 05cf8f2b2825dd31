//! ARP (RFC 826) behaviour: the box answers for its own and its pool addresses,
//! resolves unknown next hops while holding the packet, gives up on silent ones, and
//! learns only from ARP addressed to it.

mod support;
use natbox::engine::stats::DropReason;
use natbox::engine::{Port, Verdict};
use natbox::wire::ethernet::Mac;
use std::net::Ipv4Addr;
use support::*;

const HOST7: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 7);
const HOST7_MAC: Mac = Mac([0x02, 0, 0, 0, 0x01, 0x07]);

/// Operation, sender (MAC, IP) and target (MAC, IP) of an ARP frame.
fn arp_fields(f: &[u8]) -> (u16, Mac, Ipv4Addr, Mac, Ipv4Addr) {
    let a = &f[14..];
    (
        u16::from_be_bytes([a[6], a[7]]),
        Mac(a[8..14].try_into().unwrap()),
        Ipv4Addr::new(a[14], a[15], a[16], a[17]),
        Mac(a[18..24].try_into().unwrap()),
        Ipv4Addr::new(a[24], a[25], a[26], a[27]),
    )
}

#[test]
fn rfc826_reply_for_own_and_pool_addresses() {
    let pool = [PUBLIC, Ipv4Addr::new(198, 51, 100, 11)];
    let mut h = Harness::new(pool_config(&pool));
    let asks = [
        (Port::Inside, HOST_MAC, HOST, BOX_LAN, BOX_LAN_MAC),
        (Port::Outside, GW_MAC, GW, PUBLIC, BOX_WAN_MAC),
        (Port::Outside, GW_MAC, GW, pool[1], BOX_WAN_MAC),
    ];
    for (port, mac, ip, target, box_mac) in asks {
        let out = h.frame(port, arp_request(mac, ip, target));
        assert_eq!(out.verdict, Verdict::Reply(port), "who has {target}");
        assert_eq!(&out.frame[0..6], &mac.0, "unicast to the asker");
        assert_eq!(&out.frame[6..12], &box_mac.0);
        assert_eq!(u16::from_be_bytes([out.frame[12], out.frame[13]]), 0x0806);
        assert!(out.frame.len() >= 60, "padded to the Ethernet minimum");
        assert_eq!(arp_fields(&out.frame), (2, box_mac, target, mac, ip));
    }
    // Not ours: the outside address on the inside link, the pool on the inside, a
    // neighbour's address.
    for (port, target) in [
        (Port::Inside, PUBLIC),
        (Port::Inside, pool[1]),
        (Port::Inside, HOST2),
        (Port::Outside, BOX_LAN),
    ] {
        let out = h.frame(port, arp_request(HOST_MAC, HOST, target));
        assert_eq!(out.verdict, Verdict::Drop(DropReason::NeighbourIgnored));
    }
    assert_eq!(h.drops(DropReason::NeighbourIgnored), 4);
}

#[test]
fn rfc826_unknown_next_hop_held_then_released_by_reply() {
    let mut h = Harness::default();
    let out = h.from_lan(udp4(sa(HOST7, 40000), sa(REMOTE, 53), b"out"));
    assert_eq!(out.verdict, Verdict::Forward(Port::Outside));
    let ext = endpoints4(out.ip()).0;
    let reply = udp4(sa(REMOTE, 53), ext, b"answer");
    assert_eq!(h.from_wan(reply).verdict, Verdict::Hold);
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1, "one ARP request");
    let (port, req) = &sent[0];
    assert_eq!(*port, Port::Inside);
    assert_eq!(&req[0..6], &Mac::BROADCAST.0);
    assert_eq!(
        arp_fields(req),
        (1, BOX_LAN_MAC, BOX_LAN, Mac([0; 6]), HOST7)
    );
    // More packets for the same next hop wait without a second request.
    let second = udp4(sa(REMOTE, 53), ext, b"second");
    assert_eq!(h.from_wan(second).verdict, Verdict::Hold);
    assert!(h.transmitted().is_empty());

    let answer = arp_reply(HOST7_MAC, HOST7, BOX_LAN_MAC, BOX_LAN);
    assert_eq!(h.frame(Port::Inside, answer).verdict, Verdict::Consumed);
    let sent = h.transmitted();
    assert_eq!(sent.len(), 2, "both parked packets released, in order");
    for ((port, f), payload) in sent.iter().zip([&b"answer"[..], b"second"]) {
        assert_eq!(*port, Port::Inside);
        assert_eq!(&f[0..6], &HOST7_MAC.0);
        assert_eq!(&f[6..12], &BOX_LAN_MAC.0);
        assert_checksums(f);
        assert_eq!(endpoints4(&f[14..]), (sa(REMOTE, 53), sa(HOST7, 40000)));
        assert_eq!(&f[14 + 28..], payload);
    }
    // Known now: forwarded straight away.
    let third = h.from_wan(udp4(sa(REMOTE, 53), ext, b"third"));
    assert_eq!(third.verdict, Verdict::Forward(Port::Inside));
    assert_eq!(&third.frame[0..6], &HOST7_MAC.0);
}

#[test]
fn rfc826_unanswered_next_hop_drops_after_retries() {
    let mut h = Harness::default();
    let out = h.from_lan(udp4(sa(HOST7, 40000), sa(REMOTE, 53), b"out"));
    let ext = endpoints4(out.ip()).0;
    assert_eq!(
        h.from_wan(udp4(sa(REMOTE, 53), ext, b"x")).verdict,
        Verdict::Hold
    );
    h.advance_secs(10);
    let requests: Vec<_> = h
        .transmitted()
        .into_iter()
        .filter(|(_, f)| arp_fields(f).0 == 1 && arp_fields(f).4 == HOST7)
        .collect();
    assert_eq!(requests.len(), 3, "first request and two retries");
    assert_eq!(h.drops(DropReason::NeighbourUnresolved), 1);
    assert!(h.engine.neighbours4(h.now).iter().all(|n| n.addr != HOST7));
    // The next packet starts a new resolution.
    assert_eq!(
        h.from_wan(udp4(sa(REMOTE, 53), ext, b"x")).verdict,
        Verdict::Hold
    );
    assert_eq!(h.transmitted().len(), 1);
}

#[test]
fn rfc826_foreign_arp_not_learnt() {
    let mut h = Harness::default();
    // A request between two other hosts, and a reply to someone else.
    let out = h.frame(Port::Inside, arp_request(HOST7_MAC, HOST7, HOST2));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NeighbourIgnored));
    let out = h.frame(Port::Inside, arp_reply(HOST7_MAC, HOST7, HOST2_MAC, HOST2));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NotForUs));
    let mut broadcast_reply = arp_reply(HOST7_MAC, HOST7, HOST2_MAC, HOST2);
    broadcast_reply[0..6].copy_from_slice(&Mac::BROADCAST.0);
    let out = h.frame(Port::Inside, broadcast_reply);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NeighbourIgnored));
    assert!(h.engine.neighbours4(h.now).iter().all(|n| n.addr != HOST7));
    // So traffic to HOST7 still needs resolving.
    let out = h.from_lan(udp4(sa(HOST7, 40000), sa(REMOTE, 53), b"out"));
    let ext = endpoints4(out.ip()).0;
    assert_eq!(
        h.from_wan(udp4(sa(REMOTE, 53), ext, b"x")).verdict,
        Verdict::Hold
    );
    // An off-link sender asking for us is answered but not learnt.
    let out = h.frame(
        Port::Inside,
        arp_request(HOST7_MAC, Ipv4Addr::new(192, 0, 2, 9), BOX_LAN),
    );
    assert_eq!(out.verdict, Verdict::Reply(Port::Inside));
    assert!(h
        .engine
        .neighbours4(h.now)
        .iter()
        .all(|n| n.addr != Ipv4Addr::new(192, 0, 2, 9)));
}
