//! ARP (RFC 826) and NDP (RFC 4861) behaviour: the box answers for its own and its pool
//! addresses, resolves unknown next hops while holding the packet, gives up on silent
//! ones, learns only from ARP addressed to it and only from the port on-link for the
//! address, ages entries through the RFC 4861 states, evicts the least recently used
//! entry of a full cache; and the budgets that keep floods from starving the box's own
//! requests, its PMTUD errors and other senders' fragments.

mod support;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::{PortId, Verdict};
use natbox_core::wire::ethernet::Mac;
use pnet_packet::ip::IpNextHeaderProtocols;
use std::net::{Ipv4Addr, Ipv6Addr};
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
        (INSIDE, HOST_MAC, HOST, BOX_LAN, BOX_LAN_MAC),
        (OUTSIDE, GW_MAC, GW, PUBLIC, BOX_WAN_MAC),
        (OUTSIDE, GW_MAC, GW, pool[1], BOX_WAN_MAC),
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
        (INSIDE, PUBLIC),
        (INSIDE, pool[1]),
        (INSIDE, HOST2),
        (OUTSIDE, BOX_LAN),
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
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    let ext = endpoints4(out.ip()).0;
    let reply = udp4(sa(REMOTE, 53), ext, b"answer");
    assert_eq!(h.from_wan(reply).verdict, Verdict::Hold);
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1, "one ARP request");
    let (port, req) = &sent[0];
    assert_eq!(*port, INSIDE);
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
    assert_eq!(h.frame(INSIDE, answer).verdict, Verdict::Consumed);
    let sent = h.transmitted();
    assert_eq!(sent.len(), 2, "both parked packets released, in order");
    for ((port, f), payload) in sent.iter().zip([&b"answer"[..], b"second"]) {
        assert_eq!(*port, INSIDE);
        assert_eq!(&f[0..6], &HOST7_MAC.0);
        assert_eq!(&f[6..12], &BOX_LAN_MAC.0);
        assert_checksums(f);
        assert_eq!(endpoints4(&f[14..]), (sa(REMOTE, 53), sa(HOST7, 40000)));
        assert_eq!(&f[14 + 28..], payload);
    }
    // Known now: forwarded straight away.
    let third = h.from_wan(udp4(sa(REMOTE, 53), ext, b"third"));
    assert_eq!(third.verdict, Verdict::Forward(INSIDE));
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
    let out = h.frame(INSIDE, arp_request(HOST7_MAC, HOST7, HOST2));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NeighbourIgnored));
    let out = h.frame(INSIDE, arp_reply(HOST7_MAC, HOST7, HOST2_MAC, HOST2));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NotForUs));
    let mut broadcast_reply = arp_reply(HOST7_MAC, HOST7, HOST2_MAC, HOST2);
    broadcast_reply[0..6].copy_from_slice(&Mac::BROADCAST.0);
    let out = h.frame(INSIDE, broadcast_reply);
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
        INSIDE,
        arp_request(HOST7_MAC, Ipv4Addr::new(192, 0, 2, 9), BOX_LAN),
    );
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert!(h
        .engine
        .neighbours4(h.now)
        .iter()
        .all(|n| n.addr != Ipv4Addr::new(192, 0, 2, 9)));
}

const ATTACKER_MAC: Mac = Mac([0x02, 0, 0, 0, 0x02, 0x66]);

/// The port, state and MAC of the IPv4 neighbour `addr`, if the box has one.
fn neighbour4(h: &Harness, addr: Ipv4Addr) -> Option<(PortId, &'static str, Option<Mac>)> {
    h.engine
        .neighbours4(h.now)
        .into_iter()
        .find(|n| n.addr == addr)
        .map(|n| (n.port, n.state, n.mac))
}

/// The IPv6 neighbours the box has for `addr`: (port, MAC).
fn neighbours6(h: &Harness, addr: Ipv6Addr) -> Vec<(PortId, Option<Mac>)> {
    h.engine
        .neighbours6(h.now)
        .into_iter()
        .filter(|n| n.addr == addr)
        .map(|n| (n.port, n.mac))
        .collect()
}

/// ARP requests in `sent`: (Ethernet destination, target).
fn arp_requests(sent: &[(PortId, Vec<u8>)]) -> Vec<(Mac, Ipv4Addr)> {
    sent.iter()
        .filter(|(_, f)| f[12..14] == ETHERTYPE_ARP.to_be_bytes() && arp_fields(f).0 == 1)
        .map(|(_, f)| (Mac(f[0..6].try_into().unwrap()), arp_fields(f).4))
        .collect()
}

#[test]
fn rfc826_arp_reply_from_outside_claiming_inside_address_is_ignored_and_counted() {
    let mut h = Harness::default();
    // An outsider answers "HOST is at my MAC", to the box.
    let forged = arp_reply(ATTACKER_MAC, HOST, BOX_WAN_MAC, PUBLIC);
    let out = h.frame(OUTSIDE, forged);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NeighbourOffLink));
    assert_eq!(h.drops(DropReason::NeighbourOffLink), 1);
    assert_eq!(
        neighbour4(&h, HOST).map(|n| (n.0, n.2)),
        Some((INSIDE, Some(HOST_MAC)))
    );
    // A gratuitous ARP for it on the outside link is not learnt either.
    let mut gratuitous = arp_request(ATTACKER_MAC, HOST, HOST);
    gratuitous[0..6].copy_from_slice(&Mac::BROADCAST.0);
    h.frame(OUTSIDE, gratuitous);
    assert!(h
        .engine
        .neighbours4(h.now)
        .iter()
        .all(|n| n.mac != Some(ATTACKER_MAC)));
    // Traffic for HOST still goes to HOST.
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"out"));
    let ext = endpoints4(out.ip()).0;
    let back = h.from_wan(udp4(sa(REMOTE, 53), ext, b"back"));
    assert_eq!(back.verdict, Verdict::Forward(INSIDE));
    assert_eq!(&back.frame[0..6], &HOST_MAC.0);
}

#[test]
fn rfc4861_na_for_address_off_the_ports_prefix_is_ignored() {
    let mut h = Harness::default();
    let before = neighbours6(&h, host6());
    assert_eq!(before, vec![(INSIDE, Some(HOST_MAC))]);
    // An advertisement for an inside address arriving on the outside port, and one for
    // the gateway's address arriving on the inside port.
    let forged = [
        (
            OUTSIDE,
            neighbor_advert(ATTACKER_MAC, host6(), BOX_WAN_MAC, box_wan6()),
        ),
        (
            INSIDE,
            neighbor_advert(ATTACKER_MAC, gw6(), BOX_LAN_MAC, box_lan6()),
        ),
    ];
    for (port, frame) in forged {
        let out = h.frame(port, frame);
        assert_eq!(out.verdict, Verdict::Drop(DropReason::NeighbourOffLink));
    }
    assert_eq!(h.drops(DropReason::NeighbourOffLink), 2);
    assert_eq!(neighbours6(&h, host6()), before);
    assert_eq!(neighbours6(&h, gw6()), vec![(OUTSIDE, Some(GW_MAC))]);
    // A link-local neighbour is on-link on either port.
    let ll: Ipv6Addr = "fe80::99".parse().unwrap();
    let out = h.frame(INSIDE, neighbor_solicit(HOST7_MAC, ll, box_lan6()));
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_eq!(neighbours6(&h, ll), vec![(INSIDE, Some(HOST7_MAC))]);
}

#[test]
fn rfc4861_7_3_3_unconfirmed_entry_ages_to_stale_and_is_reprobed_on_use() {
    let mut h = Harness::default();
    // HOST7 announces itself (ARP request to the box) and then goes silent: its entry
    // is STALE (nobody confirmed it), used but verified.
    let out = h.frame(INSIDE, arp_request(HOST7_MAC, HOST7, BOX_LAN));
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_eq!(neighbour4(&h, HOST7).unwrap().1, "stale");
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(HOST7, 53), b"to host7"));
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    assert_eq!(&out.frame[0..6], &HOST7_MAC.0);
    assert_eq!(neighbour4(&h, HOST7).unwrap().1, "delay");
    // DELAY_FIRST_PROBE_TIME later: unicast probes to the cached MAC, then deletion.
    h.advance_secs(5);
    assert_eq!(neighbour4(&h, HOST7).unwrap().1, "probe");
    h.advance_secs(3);
    assert_eq!(arp_requests(&h.transmitted()), vec![(HOST7_MAC, HOST7); 3]);
    assert_eq!(neighbour4(&h, HOST7), None, "unanswered probes delete it");
    // A live neighbour confirmed by a solicited answer is REACHABLE, ages to STALE
    // after ReachableTime, and answers the probe its next use triggers.
    h.from_lan(udp4(sa(HOST2, 40000), sa(HOST, 53), b"to host"));
    h.advance_secs(6);
    assert_eq!(neighbour4(&h, HOST).unwrap().1, "reachable");
    h.advance_secs(30);
    assert_eq!(neighbour4(&h, HOST).unwrap().1, "stale");
    h.from_lan(udp4(sa(HOST2, 40000), sa(HOST, 53), b"to host"));
    h.advance_secs(6);
    assert_eq!(neighbour4(&h, HOST).unwrap().1, "reachable");
    assert!(h.transmitted().is_empty(), "HOST answered its probes");
}

#[test]
fn full_neighbour_cache_evicts_least_recently_used() {
    let mut c = config();
    c.inside.as_mut().unwrap().ipv4 = Some("10.10.0.1/16".parse().unwrap());
    let mut h = Harness::new(c);
    let max = natbox_core::engine::neigh::MAX_ENTRIES;
    // HOST, HOST2 and GW are known; fill the rest of the table with announcements.
    let host = |n: usize| Ipv4Addr::new(10, 10, 1 + (n / 250) as u8, 1 + (n % 250) as u8);
    let mac = |n: usize| Mac([0x02, 0, 0, 0x03, (n >> 8) as u8, n as u8]);
    for n in 0..max - 3 {
        h.frame(INSIDE, arp_request(mac(n), host(n), BOX_LAN));
    }
    assert_eq!(h.engine.neighbours4(h.now).len(), max);
    assert_eq!(h.engine.stats().neighbours_evicted, 0);
    // The gateway is in use; HOST and HOST2 are not. (Recency counts in milliseconds:
    // the use comes one after the entries were made.)
    h.now += 1;
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"out"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    for n in max - 3..max {
        let out = h.frame(INSIDE, arp_request(mac(n), host(n), BOX_LAN));
        assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    }
    assert_eq!(h.engine.stats().neighbours_evicted, 3);
    assert_eq!(neighbour4(&h, HOST), None);
    assert_eq!(neighbour4(&h, HOST2), None);
    assert_eq!(neighbour4(&h, host(0)), None);
    assert!(neighbour4(&h, GW).is_some());
    assert!(neighbour4(&h, host(max - 1)).is_some(), "the newest is in");
}

#[test]
fn flood_to_unresolved_next_hops_cannot_prevent_own_solicitation() {
    let mut h = Harness::default();
    // An inside host sends four packets each to 190 silent neighbours; the dataplane
    // drains what the engine sends after each frame.
    for host in 10..200u8 {
        for _ in 0..4 {
            h.from_lan(udp4(
                sa(HOST, 40000),
                sa(Ipv4Addr::new(10, 10, 0, host), 9),
                b"x",
            ));
            h.transmitted();
        }
    }
    assert!(h.drops(DropReason::NeighbourParkedLimit) > 0);
    // A packet for a new next hop cannot wait, but the box still asks for it.
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(HOST7, 9), b"x"));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NeighbourParkedLimit));
    assert_eq!(
        arp_requests(&h.transmitted()),
        vec![(Mac::BROADCAST, HOST7)],
        "the box asked for its new next hop"
    );
    assert_eq!(h.drops(DropReason::NeighbourRequestNoBuffer), 0);
}

#[test]
fn ping_flood_does_not_suppress_frag_needed() {
    let mut c = config();
    c.outside.mtu = 1280;
    let mut h = Harness::new(c);
    let burst = h.engine.config().icmp.burst;
    // Echo requests over IPv4 and IPv6 (one budget for both).
    let mut answered = 0;
    for seq in 0..burst as u16 {
        let v4 = h.from_lan(echo4(HOST, BOX_LAN, 7, seq, false)).verdict;
        let v6 = h.from_lan6(echo6(host6(), box_lan6(), seq, false)).verdict;
        answered += [v4, v6]
            .iter()
            .filter(|&&v| v == Verdict::Reply(INSIDE))
            .count() as u32;
    }
    assert_eq!(answered, burst, "the ping flood used up the general budget");
    assert_eq!(h.engine.stats().icmp_rate_limited, u64::from(burst));
    let big4 = udp4(sa(HOST, 40000), sa(REMOTE, 53), &[0xab; 1300]);
    let out = h.from_lan(big4);
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_eq!(out.ip()[20..22], [3, 4], "fragmentation needed");
    let big6 = udp6(host6(), 40000, remote6(), 53, &[0x5a; 1300]);
    let out = h.from_lan6(big6);
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_eq!(out.ip()[40], 2, "packet too big");
}

#[test]
fn one_source_fragments_cannot_fill_the_fragment_table() {
    let mut h = Harness::default();
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE2, 53), b"query"));
    let ext = endpoints4(out.ip()).0;
    // An outsider floods the public address with fragments whose first never comes.
    let per_source = natbox_core::engine::frag::PARKED_PER_SOURCE;
    let mut held = 0;
    for ident in 0..natbox_core::engine::frag::MAX_PARKED as u16 {
        let f = ipv4_full(
            REMOTE,
            PUBLIC,
            IpNextHeaderProtocols::Udp,
            &[0; 8],
            64,
            ident,
            0x2001,
        );
        match h.from_wan(f).verdict {
            Verdict::Hold => held += 1,
            v => assert_eq!(v, Verdict::Drop(DropReason::FragmentSourceLimit)),
        }
    }
    assert_eq!(held, per_source);
    // REMOTE2's answer, fragmented and out of order, still gets through.
    let payload: Vec<u8> = (0..40u8).collect();
    let (first, rest) = fragment4(&udp4(sa(REMOTE2, 53), ext, &payload), 0x7777, 24);
    assert_eq!(h.from_wan(rest).verdict, Verdict::Hold);
    assert_eq!(h.from_wan(first).verdict, Verdict::Forward(INSIDE));
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1, "the parked fragment followed its first");
    assert_eq!(addrs4(&sent[0].1[14..]), (REMOTE2, HOST));
}

#[test]
fn rfc4861_7_2_2_probe_is_a_unicast_solicitation_to_the_cached_address() {
    let mut h = Harness::default();
    let silent: Ipv6Addr = "2001:db8:10::7".parse().unwrap();
    let out = h.frame(INSIDE, neighbor_solicit(HOST7_MAC, silent, box_lan6()));
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    // Used (a routed packet from another inside host): DELAY, then PROBE.
    let out = h.from_lan6(udp6(host6(), 53, silent, 40000, b"y"));
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    assert_eq!(&out.frame[0..6], &HOST7_MAC.0);
    h.advance_secs(5);
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (port, ns) = &sent[0];
    assert_eq!(*port, INSIDE);
    assert_eq!(&ns[0..6], &HOST7_MAC.0, "unicast to the cached MAC");
    assert_eq!(ns[54], 135, "a Neighbor Solicitation");
    assert_eq!(
        ns[14 + 24..14 + 40],
        silent.octets(),
        "to the address itself"
    );
    assert_eq!(ns[62..78], silent.octets(), "for the address");
    assert_checksums(ns);
}
