//! Attacks from outside that once crashed the box or reached a session, one test each
//! (the hardening findings): a short ICMPv6 echo request, echo requests with a wrong
//! checksum, and sources that BCP 38 / RFC 6092 REC-6 say can never arrive from the
//! outside (the inside prefixes, the pool, the box's own addresses, loopback,
//! 0.0.0.0/8, multicast, class E; for IPv6 the inside prefix, ULA, loopback,
//! multicast). Frames are fed to the engine with a virtual clock; each test asserts
//! the verdict, the named drop counter, and that the live session was not touched.

mod support;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::Verdict;
use pnet_packet::ip::IpNextHeaderProtocols;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use support::*;

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

/// An ICMPv6 message with exactly `icmp` as its bytes (no header added), whatever
/// its length, from `src` to `dst`; the checksum is filled in when the message has
/// room for it and `good_checksum` says so.
fn raw_icmp6(src: Ipv6Addr, dst: Ipv6Addr, mut icmp: Vec<u8>, good_checksum: bool) -> Vec<u8> {
    if icmp.len() >= 4 && good_checksum {
        icmp[2..4].fill(0);
        let c = pnet_packet::util::ipv6_checksum(
            &icmp,
            1,
            &[],
            &src,
            &dst,
            IpNextHeaderProtocols::Icmpv6,
        );
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
    }
    ipv6(src, dst, IpNextHeaderProtocols::Icmpv6, &icmp)
}

#[test]
fn icmpv6_echo_request_shorter_than_its_header_is_dropped_and_counted() {
    let mut h = Harness::default();
    for to in [box_wan6(), box_lan6()] {
        for len in 0..icmpv6_header_len() {
            let mut icmp = vec![0u8; len];
            if let Some(t) = icmp.first_mut() {
                *t = 128;
            }
            let out = h.from_wan6(raw_icmp6(remote6(), to, icmp, true));
            assert!(
                matches!(out.verdict, Verdict::Drop(_)),
                "{len}-byte echo request to {to}: {:?}",
                out.verdict
            );
        }
    }
    // 1 to 7 bytes: an ICMPv6 type but no whole header (an empty body is no ICMPv6 message).
    assert_eq!(h.drops(DropReason::IcmpMalformed), 2 * 7);
}

fn icmpv6_header_len() -> usize {
    natbox_core::wire::icmpv6::HEADER_LEN
}

/// Ethernet padding after an IPv6 packet with an empty ICMPv6 body is not the body.
#[test]
fn icmpv6_type_is_read_within_the_packet_not_from_padding() {
    let mut h = Harness::default();
    let ip = raw_icmp6(remote6(), box_wan6(), Vec::new(), true);
    let mut frame = eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV6, &ip);
    frame.extend_from_slice(&[128, 0, 0, 0, 0, 0, 0, 0]);
    let out = h.frame(OUTSIDE, frame);
    assert!(matches!(out.verdict, Verdict::Drop(_)), "{:?}", out.verdict);
}

#[test]
fn rfc4443_echo_request_with_a_wrong_checksum_gets_no_reply() {
    let mut h = Harness::default();
    let mut ip = echo6(remote6(), box_wan6(), 7, false);
    ip[40 + 2] ^= 0xff;
    let out = h.from_wan6(ip);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::IcmpBadChecksum));

    let mut ip = echo4(REMOTE, PUBLIC, 7, 1, false);
    ip[20 + 2] ^= 0xff;
    let out = h.from_wan(ip);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::IcmpBadChecksum));
    assert_eq!(h.drops(DropReason::IcmpBadChecksum), 2);

    // The same requests with their checksums intact are answered.
    let out = h.from_wan6(echo6(remote6(), box_wan6(), 7, false));
    assert_eq!(out.verdict, Verdict::Reply(OUTSIDE));
    assert_checksums(&out.frame);
    let out = h.from_wan(echo4(REMOTE, PUBLIC, 7, 1, false));
    assert_eq!(out.verdict, Verdict::Reply(OUTSIDE));
    assert_checksums(&out.frame);
}

/// BCP 38 / RFC 6092 REC-6 for IPv4: with endpoint-independent filtering and a live
/// mapping, datagrams from the outside whose source could only be inside, the box or
/// nowhere are dropped before translation, each counted.
#[test]
fn bcp38_outside_frames_with_impossible_sources_never_reach_a_mapping() {
    let mut h = Harness::default();
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"out"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    let ext_port = u16::from_be_bytes([out.ip()[20], out.ip()[21]]);
    let ext = sa(PUBLIC, ext_port);
    // A remote the host never talked to is let in (endpoint-independent filtering).
    let out = h.from_wan(udp4(sa(REMOTE2, 9), ext, b"in"));
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));

    let spoofed = [
        Ipv4Addr::new(10, 10, 0, 7),     // an inside address
        HOST,                            // the inside host itself
        PUBLIC,                          // the pool (and the box's outside address)
        BOX_LAN,                         // the box's inside address
        Ipv4Addr::new(0, 1, 2, 3),       // 0.0.0.0/8
        Ipv4Addr::new(240, 0, 0, 1),     // class E
        Ipv4Addr::new(255, 255, 255, 1), // class E
    ];
    for src in spoofed {
        let out = h.from_wan(udp4(sa(src, 9), ext, b"spoofed"));
        assert!(
            matches!(
                out.verdict,
                Verdict::Drop(DropReason::SpoofedFromOutside | DropReason::MartianSource)
            ),
            "{src}: {:?}",
            out.verdict
        );
    }
    assert_eq!(h.drops(DropReason::SpoofedFromOutside), 4);
    assert_eq!(h.drops(DropReason::MartianSource), 3);
    for src in [Ipv4Addr::LOCALHOST, Ipv4Addr::new(224, 0, 0, 5)] {
        let out = h.from_wan(udp4(sa(src, 9), ext, b"martian"));
        assert_eq!(
            out.verdict,
            Verdict::Drop(DropReason::MartianSource),
            "{src}"
        );
    }
    // Nothing spoofed opened or refreshed a session: only the two real ones exist.
    assert_eq!(h.engine.nat().session_count(), 2);
}

/// The same rule set for IPv6 from the outside: the inside prefix, ULA, loopback,
/// multicast and the box's own addresses as a source are refused.
#[test]
fn rfc6092_rec6_outside_frames_with_impossible_sources_are_dropped() {
    let mut h = Harness::default();
    let out = h.from_lan6(udp6(host6(), 40000, remote6(), 53, b"out"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    let spoofed: [Ipv6Addr; 4] = [
        "2001:db8:10::7".parse().unwrap(), // the inside prefix
        "fd00::1".parse().unwrap(),        // ULA (RFC 4193 section 4.1)
        box_wan6(),                        // the box's own
        box_lan6(),
    ];
    for src in spoofed {
        let out = h.from_wan6(udp6(src, 53, host6(), 40000, b"spoofed"));
        assert_eq!(
            out.verdict,
            Verdict::Drop(DropReason::SpoofedFromOutside),
            "{src}"
        );
    }
    for src in [Ipv6Addr::LOCALHOST, "ff02::1".parse().unwrap()] {
        let out = h.from_wan6(udp6(src, 53, host6(), 40000, b"martian"));
        assert_eq!(
            out.verdict,
            Verdict::Drop(DropReason::MartianSource),
            "{src}"
        );
    }
    // Spoofed sources get no echo reply from the box either.
    let out = h.from_wan6(echo6("fd00::1".parse().unwrap(), box_wan6(), 1, false));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::SpoofedFromOutside));
    let out = h.from_wan(echo4(Ipv4Addr::new(10, 10, 0, 7), PUBLIC, 1, 1, false));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::SpoofedFromOutside));
}
