//! One-armed mode (issue #16): a config with `[outside]` and no `[inside]` is one port
//! with both roles. The inside hosts (sources in `nat.inside_prefixes` /
//! `ipv6.inside_prefixes`) and the default gateway share the segment; the pool is the
//! box's own address (a cloud router maps it 1:1 to a public one). Everything the
//! two-port box does is checked here on one port: translation both ways, the three
//! filtering behaviours, hairpinning, ICMP error translation and generation, MSS
//! clamping, per-host quotas, the IPv6 egress-only filter, the box's services, ARP for
//! the pool address, spoofing, and never an ICMP redirect.

mod support;
use firmware_config::Filtering;
use natbox_core::engine::local::Binding;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::Verdict;
use natbox_core::wire::ethernet::Mac;
use pnet_packet::ip::IpNextHeaderProtocols;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use support::*;

const FWD: Verdict = Verdict::Forward(ARM);
/// The pool address: the port's own address.
const POOL: Ipv4Addr = BOX_LAN;

fn harness() -> Harness {
    Harness::one_armed(one_armed_config())
}

/// Sends an IPv4 datagram into the one port from `mac`.
fn from(h: &mut Harness, mac: Mac, ip: Vec<u8>) -> Out {
    h.frame(ARM, eth(BOX_LAN_MAC, mac, ETHERTYPE_IPV4, &ip))
}

/// From a lan host (by source address).
fn from_host(h: &mut Harness, ip: Vec<u8>) -> Out {
    let mac = if ip[12..16] == HOST2.octets() {
        HOST2_MAC
    } else {
        HOST_MAC
    };
    from(h, mac, ip)
}

/// From the gateway (anything from beyond it, or its own packets).
fn from_gw(h: &mut Harness, ip: Vec<u8>) -> Out {
    from(h, GW_MAC, ip)
}

fn from_gw6(h: &mut Harness, ip: Vec<u8>) -> Out {
    h.frame(ARM, eth(BOX_LAN_MAC, GW_MAC, ETHERTYPE_IPV6, &ip))
}

fn from_host6(h: &mut Harness, ip: Vec<u8>) -> Out {
    h.frame(ARM, eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV6, &ip))
}

/// Asserts `out` left by the one port to `mac`, from the box's MAC, with valid
/// checksums.
fn assert_sent_to(out: &Out, verdict: Verdict, mac: Mac) {
    assert_eq!(out.verdict, verdict);
    assert_eq!(&out.frame[0..6], &mac.0, "destination MAC");
    assert_eq!(&out.frame[6..12], &BOX_LAN_MAC.0, "source MAC");
    assert_checksums(&out.frame);
}

/// A UDP datagram from the lan, translated and sent to the gateway; its external
/// source endpoint.
fn udp_out(h: &mut Harness, src: SocketAddrV4, dst: SocketAddrV4) -> SocketAddrV4 {
    let out = from_host(h, udp4(src, dst, b"outbound"));
    assert_sent_to(&out, FWD, GW_MAC);
    let (ext, to) = endpoints4(out.ip());
    assert_eq!(to, dst, "destination untouched");
    assert_eq!(*ext.ip(), POOL, "source translated to the pool address");
    ext
}

/// A UDP datagram from beyond the gateway: the verdict and, if delivered, the
/// endpoints the lan host sees.
fn udp_in(
    h: &mut Harness,
    src: SocketAddrV4,
    dst: SocketAddrV4,
) -> (Verdict, Option<(SocketAddrV4, SocketAddrV4)>) {
    let out = from_gw(h, udp4(src, dst, b"inbound"));
    if out.verdict == FWD {
        assert_checksums(&out.frame);
        (out.verdict, Some(endpoints4(out.ip())))
    } else {
        (out.verdict, None)
    }
}

/// RFC 4787 REQ-1 (EIM) on one port: the lan host's datagram leaves by the port it
/// came in on, to the gateway's MAC, from the pool address (the box's own); the reply
/// comes back the same way to the host's MAC; a second remote sees the same mapping.
#[test]
fn rfc4787_req1_eim_outbound_and_reply_by_the_same_port() {
    let mut h = harness();
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    assert_eq!(
        udp_out(&mut h, sa(HOST, 40000), sa(REMOTE2, 53)),
        ext,
        "EIM"
    );
    let out = from_gw(&mut h, udp4(sa(REMOTE, 53), ext, b"reply"));
    assert_sent_to(&out, FWD, HOST_MAC);
    assert_eq!(endpoints4(out.ip()), (sa(REMOTE, 53), sa(HOST, 40000)));
    assert_eq!(&out.ip()[28..], b"reply");
    // The port counts both directions on itself.
    let port = &h.engine.stats().ports[ARM.index()];
    assert!(port.tx_packets >= 3 && port.rx_packets >= 3);
}

/// RFC 4787 REQ-8: the three filtering behaviours, decided the same way when the
/// inbound traffic arrives on the inside hosts' own port.
#[test]
fn rfc4787_req8_filtering_behaviours_on_one_port() {
    let cases = [
        (Filtering::EndpointIndependent, [true, true, true]),
        (Filtering::AddressDependent, [true, false, true]),
        (Filtering::AddressAndPortDependent, [false, false, true]),
    ];
    for (filtering, admitted) in cases {
        let mut c = one_armed_config();
        c.nat.filtering = filtering;
        let mut h = Harness::one_armed(c);
        let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
        let remotes = [sa(REMOTE, 9999), sa(REMOTE2, 53), sa(REMOTE, 53)];
        for (remote, admitted) in remotes.into_iter().zip(admitted) {
            let (v, ends) = udp_in(&mut h, remote, ext);
            if admitted {
                assert_eq!(v, FWD, "{filtering:?}: {remote}");
                assert_eq!(ends, Some((remote, sa(HOST, 40000))));
            } else {
                assert_eq!(
                    v,
                    Verdict::Drop(DropReason::Filtered),
                    "{filtering:?}: {remote}"
                );
            }
        }
        let (v, _) = udp_in(&mut h, sa(REMOTE, 53), sa(POOL, 40002));
        assert_eq!(v, Verdict::Drop(DropReason::NoMapping), "{filtering:?}");
    }
}

/// RFC 4787 REQ-9 / RFC 5382 REQ-9: two lan hosts on the segment reach each other
/// through the pool address (the box's own), each seeing the other's external
/// endpoint.
#[test]
fn rfc4787_req9_hairpinning_between_hosts_on_the_segment() {
    let mut h = harness();
    let ext_a = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let out = from_host(&mut h, udp4(sa(HOST2, 6000), ext_a, b"hairpin"));
    assert_sent_to(&out, FWD, HOST_MAC);
    let (from_b, to) = endpoints4(out.ip());
    assert_eq!(to, sa(HOST, 40000));
    assert_eq!(*from_b.ip(), POOL, "HOST sees HOST2's external endpoint");
    let back = from_host(&mut h, udp4(sa(HOST, 40000), from_b, b"answer"));
    assert_sent_to(&back, FWD, HOST2_MAC);
    assert_eq!(endpoints4(back.ip()), (ext_a, sa(HOST2, 6000)));
    // TCP too.
    let syn = from_host(&mut h, tcp4(sa(HOST, 41000), sa(REMOTE, 80), SYN, &[]));
    let ext_t = endpoints4(syn.ip()).0;
    let out = from_host(&mut h, tcp4(sa(HOST2, 6001), ext_t, SYN, &[]));
    assert_sent_to(&out, FWD, HOST_MAC);
    assert_eq!(endpoints4(out.ip()).1, sa(HOST, 41000));
    assert_eq!(h.engine.stats().hairpinned, 3);
}

/// RFC 5508 REQ-3: an ICMP error from the gateway itself (10.10.0.254, on the segment
/// but outside the inside prefix) about a translated datagram is translated back to
/// the lan host, its quote restored.
#[test]
fn rfc5508_req3_error_from_the_gateway_translated_back() {
    let mut h = harness();
    let original = udp4(sa(HOST, 40000), sa(REMOTE, 53), b"query");
    let sent = from_host(&mut h, original.clone());
    assert_eq!(sent.verdict, FWD);
    let err = icmp4_error(ARM_GW, POOL, (11, 0), sent.ip());
    let out = from_gw(&mut h, err);
    assert_sent_to(&out, FWD, HOST_MAC);
    assert_eq!(addrs4(out.ip()), (ARM_GW, HOST));
    let (t, code, _, quoted) = icmp_error_parts(out.ip());
    assert_eq!((t, code), (11, 0));
    assert_quoted_checksums(quoted);
    assert_eq!(quoted, &after_one_hop(&original)[..]);
    assert_eq!(h.engine.stats().icmp_errors_translated, 1);
}

/// RFC 1812 section 5.3.1 / RFC 792: TTL expiry in the box is reported from the
/// port's address, to the sender's MAC, both for a lan host and for a remote sender.
#[test]
fn rfc1812_ttl_exceeded_from_the_port_address_both_ways() {
    let mut h = harness();
    let dying = ipv4_full(
        HOST,
        REMOTE,
        IpNextHeaderProtocols::Udp,
        &udp_segment(40000, 53, b"x"),
        1,
        7,
        0x4000,
    );
    let out = from_host(&mut h, dying);
    assert_sent_to(&out, Verdict::Reply(ARM), HOST_MAC);
    assert_eq!(addrs4(out.ip()), (BOX_LAN, HOST));
    assert_eq!(icmp_error_parts(out.ip()).0, 11);
    assert_eq!(h.engine.nat().session_count(), 0, "nothing translated");
    // Inbound, on an existing mapping.
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let mut inbound = udp4(sa(REMOTE, 53), ext, b"late");
    inbound[8] = 1;
    fix_ipv4_checksum(&mut inbound);
    let out = from_gw(&mut h, inbound);
    assert_sent_to(&out, Verdict::Reply(ARM), GW_MAC);
    assert_eq!(addrs4(out.ip()), (BOX_LAN, REMOTE));
    assert_eq!(h.drops(DropReason::TtlExceeded), 2);
}

/// RFC 1191 (PMTUD) on one port: the datagram cannot outgrow the egress MTU in the
/// box (it arrived by the same port, and a frame beyond its MTU is refused as
/// `frame_too_long`), so "fragmentation needed" comes from further on: the gateway's,
/// about a translated datagram, reaches the lan host with its next-hop MTU intact.
#[test]
fn rfc1191_fragmentation_needed_relayed_with_its_mtu() {
    let mut c = one_armed_config();
    c.outside.mtu = 1280;
    let mut h = Harness::one_armed(c);
    let too_long = from_host(&mut h, udp4(sa(HOST, 40000), sa(REMOTE, 53), &[0xab; 1300]));
    assert_eq!(too_long.verdict, Verdict::Drop(DropReason::FrameTooLong));
    let original = udp4(sa(HOST, 40000), sa(REMOTE, 53), &[0xab; 1200]);
    let sent = from_host(&mut h, original.clone());
    assert_sent_to(&sent, FWD, GW_MAC);
    let mtu = [0, 0, 0x03, 0xe8]; // 1000
    let err = icmp4_error_rest(ARM_GW, POOL, (3, 4), mtu, &sent.ip()[..28]);
    let out = from_gw(&mut h, err);
    assert_sent_to(&out, FWD, HOST_MAC);
    assert_eq!(addrs4(out.ip()), (ARM_GW, HOST));
    let (t, code, rest, quoted) = icmp_error_parts(out.ip());
    assert_eq!((t, code), (3, 4));
    assert_eq!(
        u16::from_be_bytes([rest[2], rest[3]]),
        1000,
        "next-hop MTU kept"
    );
    assert_eq!(endpoints4(quoted), (sa(HOST, 40000), sa(REMOTE, 53)));
}

/// The MSS option of a SYN (RFC 879 / RFC 6691, `nat.mss_clamp`) is clamped on the
/// way out and on the way back.
#[test]
fn mss_clamped_both_ways_on_one_port() {
    let mut h = harness();
    let mss_1500 = [2, 4, 0x05, 0xdc];
    let out = from_host(
        &mut h,
        tcp4(sa(HOST, 41000), sa(REMOTE, 80), SYN, &mss_1500),
    );
    assert_sent_to(&out, FWD, GW_MAC);
    assert_eq!(&out.ip()[40..44], &[2, 4, 0x05, 0xb4], "clamped to 1460");
    let ext = endpoints4(out.ip()).0;
    let back = from_gw(&mut h, tcp4(sa(REMOTE, 80), ext, SYN | ACK, &mss_1500));
    assert_sent_to(&back, FWD, HOST_MAC);
    assert_eq!(&back.ip()[40..44], &[2, 4, 0x05, 0xb4]);
    assert_eq!(h.engine.stats().mss_clamped, 2);
}

/// RFC 6888 REQ-5: the per-host session limit holds for a host on the shared port,
/// and does not touch another host.
#[test]
fn rfc6888_req5_per_host_session_limit() {
    let mut c = one_armed_config();
    c.nat.max_sessions_per_host = 2;
    let mut h = Harness::one_armed(c);
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 1));
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 2));
    let third = from_host(&mut h, udp4(sa(HOST, 40000), sa(REMOTE, 3), b"x"));
    assert_eq!(third.verdict, Verdict::Drop(DropReason::HostSessionLimit));
    udp_out(&mut h, sa(HOST2, 40000), sa(REMOTE, 3));
    assert_eq!(h.drops(DropReason::HostSessionLimit), 1);
}

/// RFC 6092 REC-8/REC-11 on one port: the inside prefix decides what is inside. A lan
/// host's packet goes to the gateway (a link-local address, as in a cloud VPC), the
/// answer comes back to the host, and an unsolicited packet is refused.
#[test]
fn rfc6092_egress_only_on_one_port_with_a_link_local_gateway() {
    let mut h = harness();
    let out = from_host6(&mut h, udp6(host6(), 5000, remote6(), 53, b"q"));
    assert_sent_to(&out, FWD, GW_MAC);
    let back = from_gw6(&mut h, udp6(remote6(), 53, host6(), 5000, b"a"));
    assert_sent_to(&back, FWD, HOST_MAC);
    let stray = from_gw6(&mut h, udp6(remote6(), 53, host6(), 5001, b"s"));
    assert_eq!(stray.verdict, Verdict::Drop(DropReason::Unsolicited6));
    // A TCP SYN from outside is refused too; from inside it passes.
    let syn_in = from_gw6(&mut h, tcp6(remote6(), 80, host6(), 6000, SYN));
    assert_eq!(syn_in.verdict, Verdict::Drop(DropReason::Unsolicited6));
    let syn_out = from_host6(&mut h, tcp6(host6(), 6000, remote6(), 80, SYN));
    assert_sent_to(&syn_out, FWD, GW_MAC);
    // The gateway's link-local address resolved through NDP on the one port.
    let gw = h.engine.neighbours6(h.now);
    assert!(gw.iter().any(|n| n.addr == arm_gw6() && n.port == ARM));
}

/// A one-armed router sees traffic come in and leave by the same port, which is when
/// a classic router sends ICMP redirects (RFC 1812 section 5.2.7.2). natbox never
/// does: every frame it sends or answers with, for a mix of flows in both families
/// (including a lan host sending to another lan host through the box), is checked
/// for ICMP type 5 and ICMPv6 type 137.
#[test]
fn never_sends_icmp_redirects() {
    let mut h = harness();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut send = |h: &mut Harness, out: Out| {
        if matches!(out.verdict, Verdict::Forward(_) | Verdict::Reply(_)) {
            seen.push(out.frame);
        }
        seen.extend(h.transmitted().into_iter().map(|(_, f)| f));
    };
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let out = from_gw(&mut h, udp4(sa(REMOTE, 53), ext, b"r"));
    send(&mut h, out);
    let lan_to_lan = from_host(&mut h, udp4(sa(HOST, 1), sa(HOST2, 2), b"via box"));
    assert_eq!(lan_to_lan.verdict, FWD, "forwarded, not redirected");
    assert_eq!(endpoints4(lan_to_lan.ip()), (sa(HOST, 1), sa(HOST2, 2)));
    send(&mut h, lan_to_lan);
    let out = from_host(&mut h, echo4(HOST, REMOTE, 9, 1, false));
    send(&mut h, out);
    let out = from_host(&mut h, echo4(HOST, POOL, 9, 1, false));
    send(&mut h, out);
    let unknown = Ipv4Addr::new(10, 10, 0, 77);
    let out = from_host(&mut h, udp4(sa(HOST, 1), sa(unknown, 2), b"?"));
    send(&mut h, out);
    let out = from_host6(&mut h, udp6(host6(), 1, remote6(), 2, b"6"));
    send(&mut h, out);
    let other6: Ipv6Addr = "2001:db8:10::77".parse().unwrap();
    let out = from_host6(&mut h, udp6(host6(), 1, other6, 2, b"6"));
    send(&mut h, out);
    let out = from_host6(&mut h, echo6(host6(), remote6(), 3, false));
    send(&mut h, out);
    h.advance_secs(5);
    send(
        &mut h,
        Out {
            verdict: Verdict::Consumed,
            frame: Vec::new(),
        },
    );
    assert!(seen.len() >= 8, "the flows produced frames: {}", seen.len());
    for f in &seen {
        let ethertype = u16::from_be_bytes([f[12], f[13]]);
        if ethertype == ETHERTYPE_IPV4 && f[23] == 1 {
            let hl = usize::from(f[14] & 0xf) * 4;
            assert_ne!(f[14 + hl], 5, "ICMP redirect sent: {f:02x?}");
        }
        if ethertype == ETHERTYPE_IPV6 && f[20] == 58 {
            assert_ne!(f[54], 137, "ICMPv6 redirect sent: {f:02x?}");
        }
    }
}

/// The metrics responder (a `Binding::TcpInside` on the port's address, which is also
/// the pool address) is reached from a lan host, and never from the outside: not from
/// the gateway's own address on the segment, nor from beyond it. A bound service wins
/// over hairpinning for the lan.
#[test]
fn metrics_answer_the_inside_and_refuse_the_outside() {
    let mut h = harness();
    let listen = SocketAddrV4::new(BOX_LAN, 9100);
    h.engine.bind_local(&[Binding::TcpInside(listen.into())]);
    let out = from_host(&mut h, tcp4(sa(HOST, 50000), listen, SYN, &[]));
    assert_eq!(out.verdict, Verdict::Consumed, "delivered to the service");
    let mut buf = [0u8; 2048];
    let d = h.engine.pop_local(&mut buf).expect("the SYN was queued");
    assert_eq!(endpoints4(&buf[..d.len]), (sa(HOST, 50000), listen));
    assert_eq!(h.engine.nat().session_count(), 0, "not hairpinned");
    for src in [
        sa(ARM_GW, 50000),
        sa(REMOTE, 50000),
        sa(ARM_STRANGER, 50000),
    ] {
        let out = from_gw(&mut h, tcp4(src, listen, SYN, &[]));
        assert!(
            matches!(out.verdict, Verdict::Drop(_)),
            "{src}: {:?}",
            out.verdict
        );
        assert!(h.engine.pop_local(&mut buf).is_none(), "{src} reached it");
    }
    assert_eq!(h.engine.stats().local_delivered, 1);
}

/// The pool address is the port's own: the gateway's and the hosts' ARP requests for
/// it are answered with the port's MAC, and traffic to it from the outside is
/// translated, not taken for spoofing (only a *source* of the box's is forged).
#[test]
fn pool_address_on_the_port_answers_arp_and_receives_inbound() {
    let mut h = harness();
    for (mac, ip) in [(GW_MAC, ARM_GW), (HOST_MAC, HOST)] {
        let out = h.frame(ARM, arp_request(mac, ip, POOL));
        assert_eq!(out.verdict, Verdict::Reply(ARM));
        assert_eq!(&out.frame[0..6], &mac.0);
        assert_eq!(&out.frame[22..28], &BOX_LAN_MAC.0, "sender MAC: the port's");
        assert_eq!(&out.frame[28..32], &POOL.octets(), "sender IP: the pool");
    }
    let (v, _) = udp_in(&mut h, sa(ARM_GW, 53), sa(POOL, 40000));
    assert_eq!(
        v,
        Verdict::Drop(DropReason::NoMapping),
        "unsolicited, not spoofed"
    );
    let out = from_gw(&mut h, echo4(REMOTE, POOL, 5, 1, false));
    assert_sent_to(&out, Verdict::Reply(ARM), GW_MAC);
    assert_eq!(h.drops(DropReason::SpoofedFromOutside), 0);
}

/// BCP 38: the box's own address lies inside the inside prefix in one-armed mode, yet
/// a packet with it as source is never an inside host's: it is dropped as
/// `spoofed_from_outside`, for IPv4 (the pool/port address) and IPv6 (the port's
/// global and link-local addresses), and nothing is translated.
#[test]
fn own_address_as_source_is_spoofed() {
    let mut h = harness();
    let spoofed = from_gw(&mut h, udp4(sa(POOL, 40000), sa(REMOTE, 53), b"x"));
    assert_eq!(
        spoofed.verdict,
        Verdict::Drop(DropReason::SpoofedFromOutside)
    );
    let to_host = from_gw(&mut h, udp4(sa(POOL, 40000), sa(HOST, 53), b"x"));
    assert_eq!(
        to_host.verdict,
        Verdict::Drop(DropReason::SpoofedFromOutside)
    );
    let link_local = h.engine.port_info(ARM).link_local;
    for src in [box_lan6(), link_local] {
        let out = from_gw6(&mut h, udp6(src, 1, remote6(), 2, b"x"));
        assert_eq!(
            out.verdict,
            Verdict::Drop(DropReason::SpoofedFromOutside),
            "{src}"
        );
    }
    assert_eq!(h.drops(DropReason::SpoofedFromOutside), 4);
    assert_eq!(h.engine.nat().session_count(), 0);
    // A source outside the inside prefix with an inside destination is refused too.
    let stranger = from_gw(&mut h, udp4(sa(ARM_STRANGER, 1), sa(HOST, 2), b"x"));
    assert_eq!(
        stranger.verdict,
        Verdict::Drop(DropReason::InboundNotTranslated)
    );
}
