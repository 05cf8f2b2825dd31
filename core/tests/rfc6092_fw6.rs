//! RFC behaviour tests for the IPv6 egress-only filter (RFC 6092) and the router duties
//! around it: ICMPv6 errors from the box (RFC 4443), Neighbor Discovery (RFC 4861) and
//! fragments. IPv6 is routed, never translated: every forwarded packet keeps its
//! addresses.

mod support;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::Verdict;
use natbox_core::wire::ethernet::Mac;
use pnet_packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use std::net::Ipv6Addr;
use support::*;

const FWD_OUT: Verdict = Verdict::Forward(OUTSIDE);
const FWD_IN: Verdict = Verdict::Forward(INSIDE);

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Source and destination of an IPv6 packet.
fn addrs6(ip: &[u8]) -> (Ipv6Addr, Ipv6Addr) {
    (
        Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap()),
        Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap()),
    )
}

/// Asserts a forwarded packet is the original, routed: same bytes but the hop limit.
fn assert_routed(original: &[u8], out: &Out, mac: Mac) {
    assert_eq!(&out.frame[0..6], &mac.0, "next hop's MAC");
    assert_checksums(&out.frame);
    let mut expected = original.to_vec();
    expected[7] -= 1;
    assert_eq!(
        out.ip(),
        &expected[..],
        "routed unchanged but the hop limit"
    );
}

fn udp_out6(h: &mut Harness, sport: u16, dst: Ipv6Addr, dport: u16) -> Vec<u8> {
    let p = udp6(host6(), sport, dst, dport, b"outbound");
    let out = h.from_lan6(p.clone());
    assert_eq!(out.verdict, FWD_OUT);
    assert_routed(&p, &out, GW_MAC);
    out.ip().to_vec()
}

/// An IPv6 fragment: a Fragment header then `payload`.
fn frag6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    offset: u16,
    more: bool,
    ident: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = vec![next, 0];
    b.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
    b.extend_from_slice(&ident.to_be_bytes());
    b.extend_from_slice(payload);
    ipv6(src, dst, IpNextHeaderProtocol(44), &b)
}

/// A UDP datagram in two fragments (the first carries the UDP header).
fn udp6_fragments(
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    ident: u32,
) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..40u8).collect();
    let whole = udp6(src, sport, dst, dport, &payload);
    let l4 = &whole[40..];
    (
        frag6(src, dst, 17, 0, true, ident, &l4[..24]),
        frag6(src, dst, 17, 24, false, ident, &l4[24..]),
    )
}

fn icmp6_type(ip: &[u8]) -> (u8, u8, [u8; 4]) {
    assert_eq!(ip[6], 58, "ICMPv6");
    (ip[40], ip[41], ip[44..48].try_into().unwrap())
}

#[test]
fn rfc6092_outbound_creates_state_and_reply_passes_untouched() {
    let mut h = Harness::default();
    udp_out6(&mut h, 40000, remote6(), 53);
    assert_eq!(h.engine.fw6().state_count(), 1);
    let reply = udp6(remote6(), 53, host6(), 40000, b"answer");
    let out = h.from_wan6(reply.clone());
    assert_eq!(out.verdict, FWD_IN);
    assert_routed(&reply, &out, HOST_MAC);

    // TCP: the handshake opens the state both ways.
    let syn = tcp6(host6(), 41000, remote6(), 443, SYN);
    let out = h.from_lan6(syn.clone());
    assert_eq!(out.verdict, FWD_OUT);
    assert_routed(&syn, &out, GW_MAC);
    let synack = tcp6(remote6(), 443, host6(), 41000, SYN | ACK);
    let out = h.from_wan6(synack.clone());
    assert_eq!(out.verdict, FWD_IN);
    assert_routed(&synack, &out, HOST_MAC);

    // Echo: the identifier names the flow.
    let ping = echo6(host6(), remote6(), 99, false);
    assert_eq!(h.from_lan6(ping).verdict, FWD_OUT);
    let pong = echo6(remote6(), host6(), 99, true);
    let out = h.from_wan6(pong.clone());
    assert_eq!(out.verdict, FWD_IN);
    assert_routed(&pong, &out, HOST_MAC);
    assert_eq!(h.engine.fw6().state_count(), 3);
    assert_eq!(h.engine.stats().total_drops(), 0);
}

#[test]
fn rfc6092_rec11_unsolicited_inbound_dropped() {
    let mut h = Harness::default();
    udp_out6(&mut h, 40000, remote6(), 53);
    let unsolicited = [
        tcp6(remote6(), 5000, host6(), 22, SYN),
        udp6(remote6(), 53, host6(), 40001, b"x"),
        // Right inside port, other remote port: filtering is address-and-port-dependent.
        udp6(remote6(), 54, host6(), 40000, b"x"),
        udp6(addr("2001:db8:77::6"), 53, host6(), 40000, b"x"),
        echo6(remote6(), host6(), 7, false),
        echo6(remote6(), host6(), 7, true),
        ipv6(remote6(), host6(), IpNextHeaderProtocol(132), &[0; 16]),
        ipv6(remote6(), host6(), IpNextHeaderProtocols::Gre, &[0; 8]),
    ];
    let n = unsolicited.len() as u64;
    for p in unsolicited {
        assert_eq!(
            h.from_wan6(p).verdict,
            Verdict::Drop(DropReason::Unsolicited6)
        );
    }
    assert_eq!(h.drops(DropReason::Unsolicited6), n);
    assert_eq!(
        h.engine.fw6().state_count(),
        1,
        "inbound never creates state"
    );
    // An outbound packet of another protocol opens its generic record (REC-12).
    let gre_out = ipv6(host6(), remote6(), IpNextHeaderProtocols::Gre, &[0; 8]);
    assert_eq!(h.from_lan6(gre_out).verdict, FWD_OUT);
    let gre_in = ipv6(remote6(), host6(), IpNextHeaderProtocols::Gre, &[0; 8]);
    assert_eq!(h.from_wan6(gre_in).verdict, FWD_IN);
}

#[test]
fn rfc6092_rec10_inbound_icmpv6_error_needs_matching_state() {
    let mut h = Harness::default();
    let router = addr("2001:db8:77::1");
    let sent = udp_out6(&mut h, 40000, remote6(), 53);
    for (ty, code, rest) in [
        (2u8, 0u8, 1400u32.to_be_bytes()),
        (1, 4, [0; 4]),
        (3, 0, [0; 4]),
    ] {
        let err = icmp6(router, host6(), ty, code, rest, &sent);
        let out = h.from_wan6(err.clone());
        assert_eq!(out.verdict, FWD_IN, "type {ty} quoting our flow");
        assert_routed(&err, &out, HOST_MAC);
    }
    // A truncated quote still identifies the flow (8 bytes of UDP).
    let err = icmp6(router, host6(), 2, 0, 1280u32.to_be_bytes(), &sent[..48]);
    assert_eq!(h.from_wan6(err).verdict, FWD_IN);
    // Quotes of flows the inside never sent are dropped, Packet Too Big included.
    let never = udp6(host6(), 40001, remote6(), 53, b"outbound");
    let other_remote = udp6(host6(), 40000, addr("2001:db8:77::9"), 53, b"outbound");
    for quote in [&never, &other_remote] {
        for ty in [2u8, 1] {
            let err = icmp6(router, host6(), ty, 0, [0, 0, 5, 0], quote);
            assert_eq!(
                h.from_wan6(err).verdict,
                Verdict::Drop(DropReason::IcmpErrorNoMatch)
            );
        }
    }
    assert_eq!(h.drops(DropReason::IcmpErrorNoMatch), 4);
    assert_eq!(h.engine.fw6().state_count(), 1);
}

#[test]
fn rfc6092_rec5_spoofed_inside_source_dropped() {
    let mut h = Harness::default();
    for src in ["2001:db8:99::2", "2001:db8:ff::77", "2001:db8:11::2"] {
        let p = udp6(addr(src), 40000, remote6(), 53, b"x");
        assert_eq!(
            h.from_lan6(p).verdict,
            Verdict::Drop(DropReason::SpoofedSource),
            "{src}"
        );
    }
    assert_eq!(h.drops(DropReason::SpoofedSource), 3);
    assert_eq!(h.engine.fw6().state_count(), 0);
}

#[test]
fn rfc6092_rec6_inside_source_arriving_outside_dropped() {
    let mut h = Harness::default();
    udp_out6(&mut h, 40000, remote6(), 53);
    // Even a packet that would match state is refused with an inside source.
    let p = udp6(addr("2001:db8:10::99"), 53, host6(), 40000, b"x");
    assert_eq!(
        h.from_wan6(p).verdict,
        Verdict::Drop(DropReason::SpoofedFromOutside)
    );
    assert_eq!(h.drops(DropReason::SpoofedFromOutside), 1);
}

#[test]
fn rfc6092_rec3_forbidden_addresses_dropped() {
    let mut h = Harness::default();
    udp_out6(&mut h, 40000, remote6(), 53);
    for src in [
        "ff02::1",
        "ff0e::5",
        "::1",
        "fe80::1",
        "::ffff:192.0.2.1",
        "::",
    ] {
        let p = udp6(addr(src), 53, host6(), 40000, b"x");
        assert_eq!(
            h.from_wan6(p).verdict,
            Verdict::Drop(DropReason::MartianSource),
            "{src}"
        );
    }
    // From the inside too, and link-local destinations are never routed.
    let p = udp6(addr("fe80::2"), 53, remote6(), 53, b"x");
    assert_eq!(
        h.from_lan6(p).verdict,
        Verdict::Drop(DropReason::MartianSource)
    );
    let p = udp6(host6(), 53, addr("fe80::99"), 53, b"x");
    assert_eq!(
        h.from_lan6(p).verdict,
        Verdict::Drop(DropReason::MartianSource)
    );
    assert_eq!(h.drops(DropReason::MartianSource), 8);
    // Multicast destinations are not forwarded either.
    let p = udp6(host6(), 53, addr("ff0e::1"), 53, b"x");
    assert_eq!(
        h.from_lan6(p).verdict,
        Verdict::Drop(DropReason::Ipv6Multicast)
    );
}

#[test]
fn rfc6092_rec4_type0_routing_header_dropped() {
    let mut h = Harness::default();
    let udp = &udp6(host6(), 40000, remote6(), 53, b"x")[40..];
    let rh = |routing_type: u8| {
        // Next header UDP, length 2 (24 bytes), type, 1 segment left, one address.
        let mut b = vec![17, 2, routing_type, 1, 0, 0, 0, 0];
        b.extend_from_slice(&addr("2001:db8:77::99").octets());
        b.extend_from_slice(udp);
        b
    };
    let p = ipv6(host6(), remote6(), IpNextHeaderProtocol(43), &rh(0));
    assert_eq!(h.from_lan6(p).verdict, Verdict::Drop(DropReason::Ipv6Rh0));
    let p = ipv6(remote6(), host6(), IpNextHeaderProtocol(43), &rh(0));
    assert_eq!(h.from_wan6(p).verdict, Verdict::Drop(DropReason::Ipv6Rh0));
    assert_eq!(h.drops(DropReason::Ipv6Rh0), 2);
    // Another routing type is not RH0.
    let p = ipv6(host6(), remote6(), IpNextHeaderProtocol(43), &rh(2));
    assert_ne!(h.from_lan6(p).verdict, Verdict::Drop(DropReason::Ipv6Rh0));
}

#[test]
fn rfc4443_hop_limit_1_time_exceeded() {
    let mut h = Harness::default();
    let mut p = udp6(host6(), 40000, remote6(), 53, b"traceroute");
    p[7] = 1;
    let out = h.from_lan6(p.clone());
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_checksums(&out.frame);
    assert_eq!(&out.frame[0..6], &HOST_MAC.0);
    assert_eq!(addrs6(out.ip()), (box_lan6(), host6()));
    assert_eq!(icmp6_type(out.ip()), (3, 0, [0; 4]));
    assert_eq!(&out.ip()[48..], &p[..], "quotes the packet");
    assert_eq!(h.drops(DropReason::TtlExceeded), 1);
    assert_eq!(h.engine.fw6().state_count(), 0);
}

#[test]
fn rfc4443_packet_too_big_generated() {
    let mut c = config();
    c.outside.mtu = 1280;
    let mut h = Harness::new(c);
    let p = udp6(host6(), 40000, remote6(), 53, &[0x5a; 1300]);
    let out = h.from_lan6(p.clone());
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_checksums(&out.frame);
    assert_eq!(addrs6(out.ip()), (box_lan6(), host6()));
    let (ty, code, mtu) = icmp6_type(out.ip());
    assert_eq!((ty, code, u32::from_be_bytes(mtu)), (2, 0, 1280));
    assert!(out.ip().len() <= 1280, "error fits the minimum MTU");
    assert_eq!(&out.ip()[48..], &p[..out.ip().len() - 48]);
    assert_eq!(h.drops(DropReason::TooBig), 1);
    // At the MTU it passes.
    let fits = udp6(host6(), 40000, remote6(), 53, &vec![0; 1280 - 48]);
    assert_eq!(h.from_lan6(fits).verdict, FWD_OUT);
}

#[test]
fn rfc4443_echo_to_box_answered() {
    let mut h = Harness::default();
    let out = h.from_lan6(echo6(host6(), box_lan6(), 5, false));
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_checksums(&out.frame);
    assert_eq!(addrs6(out.ip()), (box_lan6(), host6()));
    assert_eq!(out.ip()[40], 129);
    let out = h.from_wan6(echo6(remote6(), box_wan6(), 6, false));
    assert_eq!(out.verdict, Verdict::Reply(OUTSIDE));
    assert_checksums(&out.frame);
    assert_eq!(&out.frame[0..6], &GW_MAC.0);
    assert_eq!(addrs6(out.ip()), (box_wan6(), remote6()));
}

#[test]
fn rfc4861_ns_for_box_address_answered_with_na() {
    let mut h = Harness::default();
    let ll = h.engine.port_info(INSIDE).link_local;
    for target in [box_lan6(), ll] {
        let out = h.frame(INSIDE, neighbor_solicit(HOST2_MAC, host6(), target));
        assert_eq!(out.verdict, Verdict::Reply(INSIDE));
        assert_checksums(&out.frame);
        assert_eq!(&out.frame[0..6], &HOST2_MAC.0);
        assert_eq!(&out.frame[6..12], &BOX_LAN_MAC.0);
        let ip = out.ip();
        assert_eq!(addrs6(ip), (target, host6()));
        assert_eq!(ip[7], 255, "hop limit 255");
        assert_eq!((ip[40], ip[41]), (136, 0), "Neighbor Advertisement");
        assert_eq!(ip[44], 0xe0, "Router, Solicited and Override flags");
        assert_eq!(&ip[48..64], &target.octets(), "target");
        assert_eq!(&ip[64..66], &[2, 1], "Target Link-Layer Address option");
        assert_eq!(&ip[66..72], &BOX_LAN_MAC.0);
    }
    // Not ours, or invalid (hop limit below 255): no answer.
    let out = h.frame(
        INSIDE,
        neighbor_solicit(HOST2_MAC, host6(), addr("2001:db8:10::77")),
    );
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NeighbourIgnored));
    let mut forwarded = neighbor_solicit(HOST2_MAC, host6(), box_lan6());
    forwarded[14 + 7] = 64;
    assert_eq!(
        h.frame(INSIDE, forwarded).verdict,
        Verdict::Drop(DropReason::NdpMalformed)
    );
    // The box's outside address is not answered on the inside link.
    let out = h.frame(INSIDE, neighbor_solicit(HOST2_MAC, host6(), box_wan6()));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NeighbourIgnored));
}

#[test]
fn rfc4861_unknown_next_hop_solicited_and_packet_released_on_na() {
    let mut h = Harness::default();
    let host3 = addr("2001:db8:10::3");
    let host3_mac = Mac([2, 0, 0, 0, 1, 0x33]);
    let p = udp6(host3, 40000, remote6(), 53, b"x");
    assert_eq!(h.from_lan6(p).verdict, FWD_OUT);
    let reply = udp6(remote6(), 53, host3, 40000, b"answer");
    assert_eq!(h.from_wan6(reply.clone()).verdict, Verdict::Hold);
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1, "one Neighbor Solicitation");
    let (port, ns) = &sent[0];
    assert_eq!(*port, INSIDE);
    assert_checksums(ns);
    assert_eq!(
        &ns[0..6],
        &[0x33, 0x33, 0xff, 0, 0, 3],
        "solicited-node MAC"
    );
    let ip = &ns[14..];
    assert_eq!(addrs6(ip), (box_lan6(), addr("ff02::1:ff00:3")));
    assert_eq!((ip[7], ip[40]), (255, 135));
    assert_eq!(&ip[48..64], &host3.octets());
    assert_eq!(
        &ip[64..72],
        &[1, 1, 2, 0, 0, 0, 0x01, 0x01],
        "Source LL option"
    );

    let na = neighbor_advert(host3_mac, host3, BOX_LAN_MAC, box_lan6());
    assert_eq!(h.frame(INSIDE, na).verdict, Verdict::Consumed);
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1, "the parked packet is released");
    let (port, f) = &sent[0];
    assert_eq!(*port, INSIDE);
    assert_eq!(&f[0..6], &host3_mac.0);
    assert_eq!(&f[6..12], &BOX_LAN_MAC.0);
    assert_checksums(f);
    let mut expected = reply;
    expected[7] -= 1;
    assert_eq!(&f[14..], &expected[..]);
    // Now known: forwarded at once.
    let again = udp6(remote6(), 53, host3, 40000, b"again");
    assert_eq!(h.from_wan6(again).verdict, FWD_IN);
}

#[test]
fn rfc6092_fragments_follow_first_fragment() {
    let mut h = Harness::default();
    // In order.
    let (first, rest) = udp6_fragments(host6(), 40000, remote6(), 53, 0x1111);
    for f in [first, rest] {
        let out = h.from_lan6(f.clone());
        assert_eq!(out.verdict, FWD_OUT);
        assert_routed(&f, &out, GW_MAC);
    }
    assert_eq!(h.engine.fw6().state_count(), 1);
    // Out of order: the non-first fragment waits.
    let (first, rest) = udp6_fragments(host6(), 40002, remote6(), 53, 0x2222);
    assert_eq!(h.from_lan6(rest.clone()).verdict, Verdict::Hold);
    assert_eq!(h.from_lan6(first).verdict, FWD_OUT);
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, OUTSIDE);
    let mut expected = rest;
    expected[7] -= 1;
    assert_eq!(&sent[0].1[14..], &expected[..]);
    // Inbound reply fragments pass once the first matches state.
    let (first, rest) = udp6_fragments(remote6(), 53, host6(), 40000, 0x3333);
    assert_eq!(h.from_wan6(rest).verdict, Verdict::Hold);
    assert_eq!(h.from_wan6(first).verdict, FWD_IN);
    assert_eq!(h.transmitted().len(), 1);
    // Unsolicited: the first is dropped, the rest never pass and time out.
    let (first, rest) = udp6_fragments(remote6(), 53, host6(), 44444, 0x4444);
    assert_eq!(h.from_wan6(rest).verdict, Verdict::Hold);
    assert_eq!(
        h.from_wan6(first).verdict,
        Verdict::Drop(DropReason::Unsolicited6)
    );
    let (_, rest) = udp6_fragments(remote6(), 53, host6(), 44444, 0x5555);
    assert_eq!(h.from_wan6(rest).verdict, Verdict::Hold);
    h.advance_secs(6);
    assert_eq!(h.drops(DropReason::FragmentTimeout), 2);
    assert!(
        h.transmitted().is_empty(),
        "nothing unsolicited got through"
    );
}

/// Opens an established TCP state host6():41000 <-> remote6():443.
fn tcp6_established(h: &mut Harness) -> ((Ipv6Addr, u16), (Ipv6Addr, u16)) {
    let (inside, remote) = ((host6(), 41000), (remote6(), 443));
    assert_eq!(
        h.from_lan6(tcp6(inside.0, inside.1, remote.0, remote.1, SYN))
            .verdict,
        FWD_OUT
    );
    let synack = tcp6(remote.0, remote.1, inside.0, inside.1, SYN | ACK);
    assert_eq!(h.from_wan6(synack).verdict, FWD_IN);
    assert_eq!(
        h.from_lan6(tcp6(inside.0, inside.1, remote.0, remote.1, ACK))
            .verdict,
        FWD_OUT
    );
    assert_eq!(tcp6_state(h), "established");
    (inside, remote)
}

/// The state of the only TCP record.
fn tcp6_state(h: &Harness) -> &'static str {
    let now = (h.now / 1000) as u32;
    let mut tcp = h.engine.fw6().states(now).filter(|s| s.proto == 6);
    let s = tcp.next().expect("a TCP state");
    assert!(tcp.next().is_none());
    s.state
}

/// Data each way every 60 s, five times: past the 240 s transitory timeout.
fn tcp6_data_both_ways_for_300s(h: &mut Harness, inside: (Ipv6Addr, u16), remote: (Ipv6Addr, u16)) {
    let (mut out_seq, mut in_seq) = (ISN + 1, ISN + 1);
    for round in 0..5 {
        h.advance_secs(60);
        let v = h
            .from_lan6(tcp6_at(inside, remote, ACK, out_seq, b"request"))
            .verdict;
        assert_eq!(v, FWD_OUT, "round {round} out");
        out_seq += 7;
        let v = h
            .from_wan6(tcp6_at(remote, inside, ACK, in_seq, b"response"))
            .verdict;
        assert_eq!(v, FWD_IN, "round {round} in");
        in_seq += 8;
    }
}

#[test]
fn rfc5961_3_2_off_path_rst_out_of_window_leaves_fw6_state_established() {
    let mut h = Harness::default();
    let (inside, remote) = tcp6_established(&mut h);
    for seq in [ISN + 1 + 100_000, ISN.wrapping_sub(100_000), 0x8000_0000] {
        let out = h.from_wan6(tcp6_at(remote, inside, RST, seq, b""));
        let dropped = Verdict::Drop(DropReason::TcpRstOutOfWindow);
        assert_eq!(out.verdict, dropped, "RST at {seq}");
    }
    assert_eq!(h.engine.stats().drops_for(DropReason::TcpRstOutOfWindow), 3);
    assert_eq!(tcp6_state(&h), "established");
    tcp6_data_both_ways_for_300s(&mut h, inside, remote);
    assert_eq!(tcp6_state(&h), "established");
}

#[test]
fn rfc7857_2_2_in_window_rst_then_traffic_both_ways_reestablishes_fw6_state() {
    let mut h = Harness::default();
    let (inside, remote) = tcp6_established(&mut h);
    let rst = tcp6_at(remote, inside, RST, ISN + 501, b"");
    assert_eq!(h.from_wan6(rst).verdict, FWD_IN);
    assert_eq!(tcp6_state(&h), "reset");
    let v = h
        .from_wan6(tcp6_at(remote, inside, ACK, ISN + 1, b""))
        .verdict;
    assert_eq!(v, FWD_IN);
    assert_eq!(tcp6_state(&h), "reset_seen_in");
    let v = h
        .from_lan6(tcp6_at(inside, remote, ACK, ISN + 1, b""))
        .verdict;
    assert_eq!(v, FWD_OUT);
    assert_eq!(tcp6_state(&h), "established");
    tcp6_data_both_ways_for_300s(&mut h, inside, remote);
    assert_eq!(tcp6_state(&h), "established");
}

/// Each inside address may hold `nat.max_sessions_per_host` states, so one host cannot
/// fill the table for the others (RFC 6888 REQ-5 applied to the IPv6 filter).
#[test]
fn rfc6888_req5_fw6_per_host_state_quota() {
    let mut c = config();
    c.nat.max_sessions_per_host = 3;
    let mut h = Harness::new(c);
    for port in 1..=3 {
        udp_out6(&mut h, 40000 + port, remote6(), 53);
    }
    let over = h.from_lan6(udp6(host6(), 40004, remote6(), 53, b"x"));
    assert_eq!(over.verdict, Verdict::Drop(DropReason::HostStateLimit6));
    let tcp = h.from_lan6(tcp6(host6(), 40005, remote6(), 443, SYN));
    assert_eq!(tcp.verdict, Verdict::Drop(DropReason::HostStateLimit6));
    assert_eq!(h.drops(DropReason::HostStateLimit6), 2);
    // Existing states still carry traffic both ways.
    udp_out6(&mut h, 40001, remote6(), 53);
    let reply = udp6(remote6(), 53, host6(), 40001, b"answer");
    assert_eq!(h.from_wan6(reply).verdict, FWD_IN);
    // Another inside address has its own quota.
    let other = addr("2001:db8:10::3");
    let p = udp6(other, 40000, remote6(), 53, b"x");
    assert_eq!(h.from_lan6(p).verdict, FWD_OUT);
    assert_eq!(h.engine.fw6().state_count(), 4);
    // Expired states give their share back.
    h.advance_secs(301);
    assert_eq!(h.engine.fw6().state_count(), 0);
    udp_out6(&mut h, 40004, remote6(), 53);
}
