//! RFC behaviour tests for the IPv4 NAT: one test per requirement of RFC 4787 (UDP),
//! RFC 5382 (TCP), RFC 5508 (ICMP), RFC 6888 (CGN limits) and RFC 7857 (updates), plus
//! the router duties around translation (TTL, MTU, MSS, echo to the box, spoofing and
//! malformed input). Frames are built with pnet and fed to the engine with a virtual
//! clock; every test asserts verdicts, rewritten endpoints, checksums, drop counters or
//! session timers.

mod support;
use firmware_config::Filtering;
use natbox_core::engine::flow::track::Class;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::Verdict;
use natbox_core::wire::ethernet::Mac;
use pnet_packet::ip::IpNextHeaderProtocols;
use std::net::{Ipv4Addr, SocketAddrV4};
use support::*;

const FWD_OUT: Verdict = Verdict::Forward(OUTSIDE);
const FWD_IN: Verdict = Verdict::Forward(INSIDE);

/// Sends a UDP datagram from the lan; asserts it was translated and returns its
/// external source endpoint.
fn udp_out(h: &mut Harness, src: SocketAddrV4, dst: SocketAddrV4) -> SocketAddrV4 {
    let out = h.from_lan(udp4(src, dst, b"outbound"));
    assert_eq!(out.verdict, FWD_OUT, "{src} -> {dst}");
    assert_checksums(&out.frame);
    let (ext, to) = endpoints4(out.ip());
    assert_eq!(to, dst, "destination untouched");
    ext
}

/// Sends a UDP datagram from the wan; returns the verdict and, if forwarded, the
/// endpoints the inside sees.
fn udp_in(
    h: &mut Harness,
    src: SocketAddrV4,
    dst: SocketAddrV4,
) -> (Verdict, Option<(SocketAddrV4, SocketAddrV4)>) {
    let out = h.from_wan(udp4(src, dst, b"inbound"));
    if out.verdict == FWD_IN {
        assert_checksums(&out.frame);
        (out.verdict, Some(endpoints4(out.ip())))
    } else {
        (out.verdict, None)
    }
}

fn tcp_out(h: &mut Harness, src: SocketAddrV4, dst: SocketAddrV4, flags: u8) -> SocketAddrV4 {
    let out = h.from_lan(tcp4(src, dst, flags, &[]));
    assert_eq!(out.verdict, FWD_OUT, "TCP {flags:#x} {src} -> {dst}");
    assert_checksums(&out.frame);
    endpoints4(out.ip()).0
}

fn tcp_in(h: &mut Harness, src: SocketAddrV4, dst: SocketAddrV4, flags: u8) -> Verdict {
    let out = h.from_wan(tcp4(src, dst, flags, &[]));
    if out.verdict == FWD_IN {
        assert_checksums(&out.frame);
    }
    out.verdict
}

/// Opens an established TCP connection; returns the external endpoint.
fn tcp_established(h: &mut Harness, src: SocketAddrV4, dst: SocketAddrV4) -> SocketAddrV4 {
    let ext = tcp_out(h, src, dst, SYN);
    assert_eq!(tcp_in(h, dst, ext, SYN | ACK), FWD_IN);
    tcp_out(h, src, dst, ACK);
    assert_eq!(session(h, 6, src, dst).state, "established");
    ext
}

fn now_s(h: &Harness) -> u32 {
    (h.now / 1000) as u32
}

fn sessions(h: &Harness) -> Vec<natbox_core::engine::nat44::SessionInfo> {
    h.engine.nat().sessions(now_s(h)).collect()
}

fn find_session(
    h: &Harness,
    proto: u8,
    inside: SocketAddrV4,
    remote: SocketAddrV4,
) -> Option<natbox_core::engine::nat44::SessionInfo> {
    sessions(h)
        .into_iter()
        .find(|s| s.proto == proto && s.inside == inside && s.remote == remote)
}

fn session(
    h: &Harness,
    proto: u8,
    inside: SocketAddrV4,
    remote: SocketAddrV4,
) -> natbox_core::engine::nat44::SessionInfo {
    find_session(h, proto, inside, remote)
        .unwrap_or_else(|| panic!("no session {inside} <-> {remote}: {:?}", sessions(h)))
}

// ---- RFC 4787: UDP ----

#[test]
fn rfc4787_req1_endpoint_independent_mapping() {
    let mut h = Harness::default();
    // HOST2 takes port 40000 first, so HOST's mapping is not a preserved port and the
    // test cannot pass by port preservation alone.
    assert_eq!(
        udp_out(&mut h, sa(HOST2, 40000), sa(REMOTE, 53)),
        sa(PUBLIC, 40000)
    );
    let ext1 = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let ext2 = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE2, 5000));
    let ext3 = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 54));
    assert_ne!(ext1.port(), 40000);
    assert_eq!(
        ext1, ext2,
        "same external endpoint for a second remote address"
    );
    assert_eq!(
        ext1, ext3,
        "same external endpoint for a second remote port"
    );
    assert_eq!(h.engine.nat().session_count(), 4);
    // Both remotes reach the inside endpoint through the one mapping.
    for remote in [sa(REMOTE, 53), sa(REMOTE2, 5000)] {
        let (v, ends) = udp_in(&mut h, remote, ext1);
        assert_eq!(v, FWD_IN);
        assert_eq!(ends, Some((remote, sa(HOST, 40000))));
    }
}

#[test]
fn rfc4787_req2_paired_pooling() {
    let pool: Vec<Ipv4Addr> = (10..14).map(|i| Ipv4Addr::new(198, 51, 100, i)).collect();
    let mut h = Harness::new(pool_config(&pool));
    let mut used = std::collections::BTreeSet::new();
    for host in 2..34u8 {
        let inside = Ipv4Addr::new(10, 10, 0, host);
        let mut addrs = std::collections::BTreeSet::new();
        for i in 0..8u16 {
            let remote = Ipv4Addr::new(203, 0, 113, 1 + (i % 4) as u8);
            let ext = udp_out(&mut h, sa(inside, 30000 + i), sa(remote, 1000 + i));
            addrs.insert(*ext.ip());
        }
        assert_eq!(addrs.len(), 1, "host {inside} used {addrs:?}");
        let addr = *addrs.iter().next().unwrap();
        assert!(pool.contains(&addr));
        used.insert(addr);
    }
    assert!(used.len() > 1, "the pool is shared out: {used:?}");
    // Replies to a non-primary pool address come back in.
    let pool_addr = *used.iter().find(|a| **a != PUBLIC).unwrap();
    let s = sessions(&h)
        .into_iter()
        .find(|s| *s.outside.ip() == pool_addr)
        .unwrap();
    // (That host must answer ARP first: only HOST and HOST2 are known neighbours.)
    let mac = Mac([2, 0, 0, 0, 0x01, s.inside.ip().octets()[3]]);
    h.frame(INSIDE, arp_request(mac, *s.inside.ip(), BOX_LAN));
    let (v, ends) = udp_in(&mut h, s.remote, s.outside);
    assert_eq!(v, FWD_IN);
    assert_eq!(ends, Some((s.remote, s.inside)));
}

#[test]
fn rfc4787_req3_port_preservation_and_range() {
    let mut h = Harness::default();
    // Preserved when free.
    assert_eq!(
        udp_out(&mut h, sa(HOST, 123), sa(REMOTE, 123)),
        sa(PUBLIC, 123)
    );
    assert_eq!(
        udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53)),
        sa(PUBLIC, 40000)
    );
    // Taken: the replacement stays in the inside port's range.
    let low = udp_out(&mut h, sa(HOST2, 123), sa(REMOTE, 123));
    assert_ne!(low.port(), 123);
    assert!((1..1024).contains(&low.port()), "low port {low}");
    let high = udp_out(&mut h, sa(HOST2, 40000), sa(REMOTE, 53));
    assert_ne!(high.port(), 40000);
    assert!(high.port() >= 1024, "high port {high}");
    // Same for TCP.
    let t = tcp_out(&mut h, sa(HOST2, 1023), sa(REMOTE, 80), SYN);
    assert_eq!(t, sa(PUBLIC, 1023));
    let t = tcp_out(&mut h, sa(HOST, 1023), sa(REMOTE, 80), SYN);
    assert!(t.port() < 1024 && t.port() != 1023, "{t}");
    let t = tcp_out(&mut h, sa(HOST, 1024), sa(REMOTE, 80), SYN);
    assert_eq!(t, sa(PUBLIC, 1024));
    let t = tcp_out(&mut h, sa(HOST2, 1024), sa(REMOTE, 80), SYN);
    assert!(t.port() >= 1024 && t.port() != 1024, "{t}");
}

#[test]
fn rfc4787_req3_configured_range_is_respected() {
    let mut c = config();
    c.nat.port_min = 20000;
    c.nat.port_max = 20099;
    let mut h = Harness::new(c);
    for (i, port) in [53u16, 5000, 20050, 65000].into_iter().enumerate() {
        let ext = udp_out(&mut h, sa(HOST, port), sa(REMOTE, 100 + i as u16));
        assert!((20000..=20099).contains(&ext.port()), "{port} -> {ext}");
    }
    // An inside port within the range is preserved.
    assert_eq!(
        udp_out(&mut h, sa(HOST2, 20051), sa(REMOTE, 1)),
        sa(PUBLIC, 20051)
    );
}

#[test]
fn rfc4787_req4_port_parity() {
    let mut h = Harness::default();
    for port in [40000u16, 40001] {
        udp_out(&mut h, sa(HOST, port), sa(REMOTE, 53));
        let ext = udp_out(&mut h, sa(HOST2, port), sa(REMOTE, 53));
        assert_ne!(ext.port(), port);
        assert_eq!(ext.port() % 2, port % 2, "parity kept: {port} -> {ext}");
    }
}

#[test]
fn rfc4787_req5_udp_mapping_timeout_300s() {
    let mut h = Harness::default();
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let s = session(&h, 17, sa(HOST, 40000), sa(REMOTE, 53));
    assert_eq!((s.class, s.expires), (Class::Udp, 300));
    h.advance_secs(299);
    assert_eq!(h.engine.nat().session_count(), 1, "alive at 299 s");
    h.advance_secs(2);
    assert_eq!(h.engine.nat().session_count(), 0, "gone at 301 s");
    assert_eq!(h.engine.stats().sessions_expired, 1);
    let (v, _) = udp_in(&mut h, sa(REMOTE, 53), ext);
    assert_eq!(v, Verdict::Drop(DropReason::NoMapping));
}

#[test]
fn rfc4787_req6_outbound_refreshes_inbound_does_not() {
    let mut h = Harness::default();
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    h.advance_secs(200);
    let (v, _) = udp_in(&mut h, sa(REMOTE, 53), ext);
    assert_eq!(v, FWD_IN);
    assert_eq!(session(&h, 17, sa(HOST, 40000), sa(REMOTE, 53)).idle, 200);
    h.advance_secs(101);
    assert_eq!(
        h.engine.nat().session_count(),
        0,
        "inbound traffic did not extend the mapping"
    );

    // Outbound traffic does.
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    h.advance_secs(200);
    assert_eq!(udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53)), ext);
    h.advance_secs(299);
    let (v, _) = udp_in(&mut h, sa(REMOTE, 53), ext);
    assert_eq!(v, FWD_IN, "refreshed by the outbound packet at 200 s");
    h.advance_secs(2);
    assert_eq!(h.engine.nat().session_count(), 0);
}

#[test]
fn rfc4787_req6_inbound_refresh_when_configured() {
    let mut c = config();
    c.nat.udp_inbound_refresh = true;
    let mut h = Harness::new(c);
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    h.advance_secs(200);
    assert_eq!(udp_in(&mut h, sa(REMOTE, 53), ext).0, FWD_IN);
    h.advance_secs(299);
    assert_eq!(h.engine.nat().session_count(), 1, "refreshed at 200 s");
    h.advance_secs(2);
    assert_eq!(h.engine.nat().session_count(), 0);
}

#[test]
fn rfc4787_req8_endpoint_independent_filtering() {
    let mut h = Harness::default();
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    // Any remote address and port may use the mapping.
    for remote in [sa(REMOTE2, 9999), sa(REMOTE, 9999), sa(GW, 1)] {
        let (v, ends) = udp_in(&mut h, remote, ext);
        assert_eq!(v, FWD_IN, "{remote}");
        assert_eq!(ends, Some((remote, sa(HOST, 40000))));
    }
    // Each admitted remote has a session of its own on the same mapping.
    assert_eq!(h.engine.nat().session_count(), 4);
    assert!(sessions(&h).iter().all(|s| s.outside == ext));
    // A port with no mapping stays closed.
    let (v, _) = udp_in(&mut h, sa(REMOTE, 53), sa(PUBLIC, 40002));
    assert_eq!(v, Verdict::Drop(DropReason::NoMapping));
}

#[test]
fn rfc4787_req8_address_dependent_filtering() {
    let mut c = config();
    c.nat.filtering = Filtering::AddressDependent;
    let mut h = Harness::new(c);
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let (v, ends) = udp_in(&mut h, sa(REMOTE, 9999), ext);
    assert_eq!(v, FWD_IN, "known address, new port: admitted");
    assert_eq!(ends, Some((sa(REMOTE, 9999), sa(HOST, 40000))));
    let (v, _) = udp_in(&mut h, sa(REMOTE2, 53), ext);
    assert_eq!(v, Verdict::Drop(DropReason::Filtered), "unknown address");
    assert_eq!(h.drops(DropReason::Filtered), 1);
    // Once the inside has sent to REMOTE2, it is admitted.
    assert_eq!(udp_out(&mut h, sa(HOST, 40000), sa(REMOTE2, 1)), ext);
    assert_eq!(udp_in(&mut h, sa(REMOTE2, 53), ext).0, FWD_IN);
    // TCP: an unknown address's SYN is filtered too.
    let t = tcp_out(&mut h, sa(HOST, 41000), sa(REMOTE, 80), SYN);
    assert_eq!(
        tcp_in(&mut h, sa(REMOTE2, 80), t, SYN),
        Verdict::Drop(DropReason::Filtered)
    );
    assert_eq!(tcp_in(&mut h, sa(REMOTE, 81), t, SYN), FWD_IN);
}

#[test]
fn rfc4787_req8_address_and_port_dependent_filtering() {
    let mut c = config();
    c.nat.filtering = Filtering::AddressAndPortDependent;
    let mut h = Harness::new(c);
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    for remote in [sa(REMOTE, 9999), sa(REMOTE2, 53)] {
        let (v, _) = udp_in(&mut h, remote, ext);
        assert_eq!(v, Verdict::Drop(DropReason::Filtered), "{remote}");
    }
    assert_eq!(h.drops(DropReason::Filtered), 2);
    let (v, ends) = udp_in(&mut h, sa(REMOTE, 53), ext);
    assert_eq!(v, FWD_IN, "the exact remote endpoint is admitted");
    assert_eq!(ends, Some((sa(REMOTE, 53), sa(HOST, 40000))));
    assert_eq!(
        h.engine.nat().session_count(),
        1,
        "no session for refused ones"
    );
}

#[test]
fn rfc4787_req9_hairpinning_udp() {
    let mut h = Harness::default();
    let ext_a = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let out = h.from_lan(udp4(sa(HOST2, 6000), ext_a, b"hairpin"));
    assert_eq!(out.verdict, FWD_IN);
    assert_checksums(&out.frame);
    assert_eq!(&out.frame[0..6], &HOST_MAC.0, "delivered to HOST");
    let (from, to) = endpoints4(out.ip());
    assert_eq!(to, sa(HOST, 40000));
    assert_eq!(
        from,
        sa(PUBLIC, 6000),
        "target sees the sender's external endpoint"
    );
    assert_eq!(&out.ip()[28..], b"hairpin");
    // And the answer goes back the same way.
    let back = h.from_lan(udp4(sa(HOST, 40000), from, b"answer"));
    assert_eq!(back.verdict, FWD_IN);
    assert_checksums(&back.frame);
    assert_eq!(&back.frame[0..6], &HOST2_MAC.0);
    assert_eq!(endpoints4(back.ip()), (ext_a, sa(HOST2, 6000)));
    assert_eq!(h.engine.stats().hairpinned, 2);
}

#[test]
fn rfc5382_req9_hairpinning_tcp() {
    let mut h = Harness::default();
    let ext_a = tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 80), SYN);
    let out = h.from_lan(tcp4(sa(HOST2, 6001), ext_a, SYN, &[]));
    assert_eq!(out.verdict, FWD_IN);
    assert_checksums(&out.frame);
    let (from, to) = endpoints4(out.ip());
    assert_eq!((from, to), (sa(PUBLIC, 6001), sa(HOST, 40000)));
    let back = h.from_lan(tcp4(sa(HOST, 40000), from, SYN | ACK, &[]));
    assert_eq!(back.verdict, FWD_IN);
    assert_checksums(&back.frame);
    assert_eq!(endpoints4(back.ip()), (ext_a, sa(HOST2, 6001)));
    // Both halves of the hairpinned connection are established.
    assert_eq!(session(&h, 6, sa(HOST2, 6001), ext_a).state, "established");
    assert_eq!(
        session(&h, 6, sa(HOST, 40000), sa(PUBLIC, 6001)).state,
        "established"
    );
}

/// NAPT cannot hairpin an echo request: a pool address names no single inside host for
/// ICMP queries (RFC 5508 REQ-7 requires query hairpinning only of Basic NAT). natbox
/// answers echo requests to pool addresses itself, from inside as from outside.
#[test]
fn rfc5508_req7_echo_request_to_pool_answered_by_box() {
    let pool = [PUBLIC, Ipv4Addr::new(198, 51, 100, 11)];
    let mut h = Harness::new(pool_config(&pool));
    for addr in pool {
        let out = h.from_lan(echo4(HOST, addr, 77, 1, false));
        assert_eq!(out.verdict, Verdict::Reply(INSIDE));
        assert_checksums(&out.frame);
        assert_eq!(addrs4(out.ip()), (addr, HOST));
        assert_eq!(out.ip()[20], 0, "echo reply");
        assert_eq!(echo_id4(out.ip()), 77);
    }
    assert_eq!(h.engine.nat().session_count(), 0);
}

/// RFC 5508 REQ-7: every NAT must hairpin ICMP errors. HOST2 sends to HOST's external
/// endpoint; HOST answers with port unreachable, addressed to HOST2's external endpoint.
#[test]
fn rfc5508_req7_hairpinning_icmp_error() {
    let mut h = Harness::default();
    let ext_a = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let original = udp4(sa(HOST2, 6000), ext_a, b"hairpin");
    let delivered = h.from_lan(original.clone());
    assert_eq!(delivered.verdict, FWD_IN);
    let ext_b = endpoints4(delivered.ip()).0;
    // HOST's stack answers to the source it saw, quoting what it received.
    let err = icmp4_error(HOST, *ext_b.ip(), (3, 3), delivered.ip());
    let out = h.from_lan(err);
    assert_eq!(out.verdict, FWD_IN, "hairpinned ICMP error");
    assert_checksums(&out.frame);
    assert_eq!(&out.frame[0..6], &HOST2_MAC.0);
    assert_eq!(addrs4(out.ip()), (*ext_a.ip(), HOST2));
    let (t, code, _, quoted) = icmp_error_parts(out.ip());
    assert_eq!((t, code), (3, 3));
    // HOST2 sees its own datagram as it would have left the NAT towards ext_a.
    assert_eq!(endpoints4(quoted), (sa(HOST2, 6000), ext_a));
    assert_quoted_checksums(quoted);
    assert_eq!(quoted, &after_one_hop(&original)[..]);
}

#[test]
fn rfc4787_req13_fragmentation_needed_for_df_packets() {
    let mut c = config();
    c.outside.mtu = 1280;
    let mut h = Harness::new(c);
    let payload = vec![0xab; 1300];
    let original = udp4(sa(HOST, 40000), sa(REMOTE, 53), &payload);
    let out = h.from_lan(original.clone());
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_checksums(&out.frame);
    assert_eq!(&out.frame[0..6], &HOST_MAC.0);
    assert_eq!(addrs4(out.ip()), (BOX_LAN, HOST));
    let (t, code, rest, quoted) = icmp_error_parts(out.ip());
    assert_eq!((t, code), (3, 4), "fragmentation needed and DF set");
    assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), 1280, "next-hop MTU");
    // The quote is the datagram as the host sent it (no translation happened).
    assert_eq!(quoted, &original[..quoted.len()]);
    assert!(quoted.len() >= 28 && out.ip().len() <= 576);
    assert_eq!(h.drops(DropReason::TooBig), 1);
    assert_eq!(h.engine.nat().session_count(), 0);
    // At the MTU exactly, it passes.
    let fits = udp4(sa(HOST, 40000), sa(REMOTE, 53), &vec![0; 1280 - 28]);
    assert_eq!(h.from_lan(fits).verdict, FWD_OUT);
    // Without DF natbox does not fragment (a documented deviation from REQ-13's
    // second half): the datagram is dropped and counted.
    let mut no_df = original.clone();
    no_df[6] = 0;
    fix_ipv4_checksum(&mut no_df);
    assert_eq!(
        h.from_lan(no_df).verdict,
        Verdict::Drop(DropReason::TooBigNoDf)
    );
}

/// Two fragments of a UDP datagram whose transport checksum is checked over both.
fn udp_datagram_fragments(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    ident: u16,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..40u8).collect();
    let whole = udp4(src, dst, &payload);
    let (a, b) = fragment4(&whole, ident, 24);
    (whole, a, b)
}

/// Reassembles two translated fragments and checks the whole datagram's checksums.
fn assert_reassembles(first: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut whole = first[..20].to_vec();
    whole.extend_from_slice(&first[20..]);
    whole.extend_from_slice(&rest[20..]);
    let total = whole.len() as u16;
    whole[2..4].copy_from_slice(&total.to_be_bytes());
    whole[6..8].fill(0);
    fix_ipv4_checksum(&mut whole);
    assert_quoted_checksums(&whole);
    whole
}

#[test]
fn rfc4787_req14_fragments_in_order() {
    let mut h = Harness::default();
    let (_, first, rest) = udp_datagram_fragments(sa(HOST, 40000), sa(REMOTE, 53), 0x7777);
    let a = h.from_lan(first);
    assert_eq!(a.verdict, FWD_OUT);
    assert_checksums(&a.frame);
    let ext = endpoints4(a.ip()).0;
    assert_eq!(ext, sa(PUBLIC, 40000));
    let b = h.from_lan(rest);
    assert_eq!(b.verdict, FWD_OUT);
    assert_checksums(&b.frame);
    assert_eq!(
        addrs4(b.ip()),
        (PUBLIC, REMOTE),
        "follows the first fragment"
    );
    assert_eq!(b.ip()[4..6], a.ip()[4..6], "identification kept");
    assert_eq!(b.ip()[6..8], [0, 3], "offset kept, last fragment");
    let whole = assert_reassembles(a.ip(), b.ip());
    assert_eq!(endpoints4(&whole), (ext, sa(REMOTE, 53)));
    assert_eq!(h.engine.stats().fragments_forwarded, 1);

    // The fragmented reply comes back to the host.
    let (_, first, rest) = udp_datagram_fragments(sa(REMOTE, 53), ext, 0x8888);
    let a = h.from_wan(first);
    let b = h.from_wan(rest);
    assert_eq!((a.verdict, b.verdict), (FWD_IN, FWD_IN));
    assert_eq!(addrs4(b.ip()), (REMOTE, HOST));
    let whole = assert_reassembles(a.ip(), b.ip());
    assert_eq!(endpoints4(&whole), (sa(REMOTE, 53), sa(HOST, 40000)));
}

#[test]
fn rfc4787_req14_fragments_out_of_order() {
    let mut h = Harness::default();
    // Take port 40000 so the translation is not the identity on the port.
    udp_out(&mut h, sa(HOST2, 40000), sa(REMOTE, 53));
    let (_, first, rest) = udp_datagram_fragments(sa(HOST, 40000), sa(REMOTE, 53), 0x4242);
    let b = h.from_lan(rest);
    assert_eq!(
        b.verdict,
        Verdict::Hold,
        "non-first fragment waits for the first"
    );
    assert!(h.transmitted().is_empty());
    let a = h.from_lan(first);
    assert_eq!(a.verdict, FWD_OUT);
    let ext = endpoints4(a.ip()).0;
    assert_ne!(ext.port(), 40000);
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1, "the parked fragment is released");
    let (port, frame) = &sent[0];
    assert_eq!(*port, OUTSIDE);
    assert_eq!(&frame[0..6], &GW_MAC.0);
    assert_checksums(frame);
    assert_eq!(addrs4(&frame[14..]), (PUBLIC, REMOTE));
    let whole = assert_reassembles(a.ip(), &frame[14..]);
    assert_eq!(endpoints4(&whole), (ext, sa(REMOTE, 53)));

    // Inbound, out of order too.
    let (_, first, rest) = udp_datagram_fragments(sa(REMOTE, 53), ext, 0x4343);
    assert_eq!(h.from_wan(rest).verdict, Verdict::Hold);
    let a = h.from_wan(first);
    assert_eq!(a.verdict, FWD_IN);
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, INSIDE);
    let whole = assert_reassembles(a.ip(), &sent[0].1[14..]);
    assert_eq!(endpoints4(&whole), (sa(REMOTE, 53), sa(HOST, 40000)));
}

#[test]
fn rfc4787_req14_fragment_table_bounded_and_timeout_counted() {
    let mut h = Harness::default();
    let per = natbox_core::engine::frag::PARKED_PER_DATAGRAM;
    let payload = [0u8; 8];
    let frag = |offset: u16| {
        ipv4_full(
            HOST,
            REMOTE,
            IpNextHeaderProtocols::Udp,
            &payload,
            64,
            0x5151,
            0x2000 | offset,
        )
    };
    for i in 0..per as u16 {
        assert_eq!(h.from_lan(frag(i + 1)).verdict, Verdict::Hold);
    }
    assert_eq!(
        h.from_lan(frag(100)).verdict,
        Verdict::Drop(DropReason::FragmentTableFull),
        "per-datagram bound"
    );
    // The global bound, reached by several sources (each within its own share).
    let max = natbox_core::engine::frag::MAX_PARKED;
    let mut refused = 0;
    for ident in 0..max as u16 {
        let src = Ipv4Addr::new(10, 10, 0, 20 + (ident as usize / per) as u8);
        let f = ipv4_full(
            src,
            REMOTE,
            IpNextHeaderProtocols::Udp,
            &payload,
            64,
            ident,
            0x2001,
        );
        if h.from_lan(f).verdict == Verdict::Drop(DropReason::FragmentTableFull) {
            refused += 1;
        }
    }
    assert_eq!(refused, per, "at most {max} fragments parked in all");
    assert_eq!(h.drops(DropReason::FragmentTableFull), per as u64 + 1);
    h.advance_secs(4);
    assert_eq!(h.drops(DropReason::FragmentTimeout), 0);
    h.advance_secs(2);
    assert_eq!(
        h.drops(DropReason::FragmentTimeout),
        max as u64,
        "parked fragments time out, counted"
    );
    assert!(h.transmitted().is_empty(), "nothing leaked out");
    // The table works again.
    assert_eq!(h.from_lan(frag(1)).verdict, Verdict::Hold);
}

// ---- RFC 5382: TCP ----

#[test]
fn rfc5382_req1_tcp_endpoint_independent_mapping() {
    let mut h = Harness::default();
    tcp_out(&mut h, sa(HOST2, 40000), sa(REMOTE, 80), SYN);
    let ext1 = tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 80), SYN);
    let ext2 = tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE2, 443), SYN);
    assert_ne!(ext1.port(), 40000);
    assert_eq!(ext1, ext2);
    assert_eq!(tcp_in(&mut h, sa(REMOTE2, 443), ext2, SYN | ACK), FWD_IN);
    assert_eq!(
        session(&h, 6, sa(HOST, 40000), sa(REMOTE2, 443)).state,
        "established"
    );
}

#[test]
fn rfc5382_req2_simultaneous_open_inbound_syn_first() {
    let mut h = Harness::default();
    let ext = tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 5000), SYN);
    // The peer's SYN reaches the mapping before the inside's SYN to it.
    let out = h.from_wan(tcp4(sa(REMOTE2, 6000), ext, SYN, &[]));
    assert_eq!(out.verdict, FWD_IN);
    assert_eq!(endpoints4(out.ip()), (sa(REMOTE2, 6000), sa(HOST, 40000)));
    let s = session(&h, 6, sa(HOST, 40000), sa(REMOTE2, 6000));
    assert_eq!((s.state, s.class), ("syn_in", Class::TcpIncomingSyn));
    assert_eq!(
        tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE2, 6000), SYN),
        ext,
        "the inside's SYN uses the same mapping"
    );
    let s = session(&h, 6, sa(HOST, 40000), sa(REMOTE2, 6000));
    assert_eq!((s.state, s.class), ("established", Class::TcpEstablished));
    assert_eq!(tcp_in(&mut h, sa(REMOTE2, 6000), ext, ACK), FWD_IN);
}

#[test]
fn rfc5382_req2_simultaneous_open_outbound_syn_first() {
    let mut h = Harness::default();
    let ext = tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 5000), SYN);
    // A bare SYN (no ACK) crosses ours.
    assert_eq!(tcp_in(&mut h, sa(REMOTE, 5000), ext, SYN), FWD_IN);
    assert_eq!(
        session(&h, 6, sa(HOST, 40000), sa(REMOTE, 5000)).state,
        "established"
    );
    tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 5000), SYN | ACK);
}

#[test]
fn rfc5382_req4_unsolicited_syn_not_answered() {
    let mut h = Harness::default();
    let v = tcp_in(&mut h, sa(REMOTE, 5000), sa(PUBLIC, 50000), SYN);
    assert_eq!(v, Verdict::Drop(DropReason::NoMapping));
    assert!(h.transmitted().is_empty(), "no RST, no ICMP");
    // A non-SYN segment never creates state.
    let out = h.from_lan(tcp4(sa(HOST, 40000), sa(REMOTE, 80), ACK, &[]));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::TcpNoSession));
    assert_eq!(h.engine.nat().session_count(), 0);
}

#[test]
fn rfc5382_req5_established_idle_timeout_at_least_7440s() {
    let mut h = Harness::default();
    let ext = tcp_established(&mut h, sa(HOST, 40000), sa(REMOTE, 80));
    let s = session(&h, 6, sa(HOST, 40000), sa(REMOTE, 80));
    assert_eq!((s.class, s.expires), (Class::TcpEstablished, 7440));
    h.advance_secs(7439);
    assert_eq!(
        tcp_in(&mut h, sa(REMOTE, 80), ext, ACK),
        FWD_IN,
        "alive at 7439 s"
    );
    // Inbound TCP refreshes too.
    h.advance_secs(7439);
    assert_eq!(h.engine.nat().session_count(), 1);
    h.advance_secs(2);
    assert_eq!(h.engine.nat().session_count(), 0, "gone after 7440 s idle");
    assert_eq!(
        tcp_in(&mut h, sa(REMOTE, 80), ext, ACK),
        Verdict::Drop(DropReason::NoMapping)
    );
}

#[test]
fn rfc5382_req5_transitory_idle_timeout_240s() {
    let mut h = Harness::default();
    tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 80), SYN);
    let s = session(&h, 6, sa(HOST, 40000), sa(REMOTE, 80));
    assert_eq!((s.class, s.expires), (Class::TcpTransitory, 240));
    h.advance_secs(239);
    assert_eq!(h.engine.nat().session_count(), 1);
    h.advance_secs(2);
    assert_eq!(h.engine.nat().session_count(), 0);
}

#[test]
fn rfc7857_rst_moves_session_to_transitory() {
    let mut h = Harness::default();
    let ext = tcp_established(&mut h, sa(HOST, 40000), sa(REMOTE, 80));
    assert_eq!(tcp_in(&mut h, sa(REMOTE, 80), ext, RST), FWD_IN);
    let s = session(&h, 6, sa(HOST, 40000), sa(REMOTE, 80));
    assert_eq!(
        (s.state, s.class, s.expires),
        ("reset", Class::TcpTransitory, 240)
    );
    // The RST may have been forged or lost: the session still carries traffic...
    h.advance_secs(200);
    tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 80), ACK);
    // ...without being refreshed by it.
    h.advance_secs(39);
    assert_eq!(
        h.engine.nat().session_count(),
        1,
        "kept for < 240 s after RST"
    );
    h.advance_secs(2);
    assert_eq!(h.engine.nat().session_count(), 0, "gone 240 s after RST");
}

#[test]
fn rfc7857_fin_both_ways_moves_session_to_transitory() {
    let mut h = Harness::default();
    let ext = tcp_established(&mut h, sa(HOST, 40000), sa(REMOTE, 80));
    tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 80), FIN | ACK);
    let s = session(&h, 6, sa(HOST, 40000), sa(REMOTE, 80));
    assert_eq!(
        s.class,
        Class::TcpEstablished,
        "half-closed is still established"
    );
    assert_eq!(tcp_in(&mut h, sa(REMOTE, 80), ext, FIN | ACK), FWD_IN);
    let s = session(&h, 6, sa(HOST, 40000), sa(REMOTE, 80));
    assert_eq!((s.class, s.expires), (Class::TcpTransitory, 240));
    tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 80), ACK);
    h.advance_secs(239);
    assert_eq!(h.engine.nat().session_count(), 1);
    h.advance_secs(2);
    assert_eq!(h.engine.nat().session_count(), 0);
}

/// Sends a data segment at `seq` each way, every 60 s, five times (past the 240 s
/// transitory timeout); asserts both are forwarded.
fn tcp_data_both_ways_for_300s(
    h: &mut Harness,
    inside: SocketAddrV4,
    remote: SocketAddrV4,
    ext: SocketAddrV4,
) {
    let (mut out_seq, mut in_seq) = (ISN + 1, ISN + 1);
    for round in 0..5 {
        h.advance_secs(60);
        let v = h
            .from_lan(tcp4_at(inside, remote, ACK, out_seq, b"request"))
            .verdict;
        assert_eq!(v, FWD_OUT, "round {round} out");
        out_seq += 7;
        let v = h
            .from_wan(tcp4_at(remote, ext, ACK, in_seq, b"response"))
            .verdict;
        assert_eq!(v, FWD_IN, "round {round} in");
        in_seq += 8;
    }
}

/// An off-path attacker who knows the endpoints but not the sequence numbers sends
/// RSTs from the remote's address: they are dropped and the session lives on.
#[test]
fn rfc5961_3_2_off_path_rst_out_of_window_leaves_session_established() {
    let mut h = Harness::default();
    let (inside, remote) = (sa(HOST, 40000), sa(REMOTE, 80));
    let ext = tcp_established(&mut h, inside, remote);
    for seq in [ISN + 1 + 100_000, ISN.wrapping_sub(100_000), 0x8000_0000] {
        let out = h.from_wan(tcp4_at(remote, ext, RST, seq, b""));
        let dropped = Verdict::Drop(DropReason::TcpRstOutOfWindow);
        assert_eq!(out.verdict, dropped, "RST at {seq}");
    }
    assert_eq!(h.engine.stats().drops_for(DropReason::TcpRstOutOfWindow), 3);
    assert_eq!(session(&h, 6, inside, remote).state, "established");
    tcp_data_both_ways_for_300s(&mut h, inside, remote, ext);
    let s = session(&h, 6, inside, remote);
    assert_eq!((s.state, s.class), ("established", Class::TcpEstablished));
}

/// RFC 7857 section 2.2: a RST in the window (but not exactly at RCV.NXT, so the
/// endpoint answers a challenge ACK) moves the session to transitory; traffic in both
/// directions afterwards brings it back, and it outlives the transitory timeout.
#[test]
fn rfc7857_2_2_in_window_rst_then_traffic_both_ways_reestablishes() {
    let mut h = Harness::default();
    let (inside, remote) = (sa(HOST, 40000), sa(REMOTE, 80));
    let ext = tcp_established(&mut h, inside, remote);
    assert_eq!(
        h.from_wan(tcp4_at(remote, ext, RST, ISN + 501, b""))
            .verdict,
        FWD_IN
    );
    let s = session(&h, 6, inside, remote);
    assert_eq!((s.state, s.class), ("reset", Class::TcpTransitory));
    assert_eq!(
        h.from_lan(tcp4_at(inside, remote, ACK, ISN + 1, b""))
            .verdict,
        FWD_OUT
    );
    let s = session(&h, 6, inside, remote);
    assert_eq!((s.state, s.class), ("reset_seen_out", Class::TcpTransitory));
    assert_eq!(
        h.from_wan(tcp4_at(remote, ext, ACK, ISN + 1, b"")).verdict,
        FWD_IN
    );
    let s = session(&h, 6, inside, remote);
    assert_eq!((s.state, s.class), ("established", Class::TcpEstablished));
    tcp_data_both_ways_for_300s(&mut h, inside, remote, ext);
    assert_eq!(session(&h, 6, inside, remote).state, "established");
}

// ---- RFC 5508: ICMP ----

#[test]
fn rfc5508_req1_echo_identifier_mapping() {
    let mut h = Harness::default();
    let a = h.from_lan(echo4(HOST, REMOTE, 7, 1, false));
    let b = h.from_lan(echo4(HOST2, REMOTE, 7, 1, false));
    for o in [&a, &b] {
        assert_eq!(o.verdict, FWD_OUT);
        assert_checksums(&o.frame);
        assert_eq!(addrs4(o.ip()), (PUBLIC, REMOTE));
    }
    let (id_a, id_b) = (echo_id4(a.ip()), echo_id4(b.ip()));
    assert_eq!(id_a, 7, "identifier preserved when free");
    assert_ne!(id_a, id_b, "two hosts never share an identifier");
    for (id, host, mac) in [(id_a, HOST, HOST_MAC), (id_b, HOST2, HOST2_MAC)] {
        let back = h.from_wan(echo4(REMOTE, PUBLIC, id, 1, true));
        assert_eq!(back.verdict, FWD_IN);
        assert_checksums(&back.frame);
        assert_eq!(&back.frame[0..6], &mac.0);
        assert_eq!(addrs4(back.ip()), (REMOTE, host));
        assert_eq!(echo_id4(back.ip()), 7);
    }
    let s = session(&h, 1, sa(HOST, 7), sa(REMOTE, 0));
    assert_eq!((s.class, s.expires), (Class::Icmp, 60));
    // Inbound echo requests never use a query mapping; unknown replies are dropped.
    let stray = h.from_wan(echo4(REMOTE, PUBLIC, 999, 1, true));
    assert_eq!(stray.verdict, Verdict::Drop(DropReason::NoMapping));
    h.advance_secs(61);
    assert_eq!(h.engine.nat().session_count(), 0, "ICMP query timeout 60 s");
}

#[test]
fn rfc5508_req3_inbound_icmp_error_translated_to_inside_host() {
    let mut h = Harness::default();
    // Not the identity translation: port 40000 belongs to HOST2.
    udp_out(&mut h, sa(HOST2, 40000), sa(REMOTE, 53));
    let original = udp4(sa(HOST, 40000), sa(REMOTE, 53), b"query");
    let sent = h.from_lan(original.clone());
    assert_eq!(sent.verdict, FWD_OUT);
    let ext = endpoints4(sent.ip()).0;
    assert_ne!(ext.port(), 40000);

    let err = icmp4_error(REMOTE, PUBLIC, (3, 3), sent.ip());
    let out = h.from_wan(err);
    assert_eq!(out.verdict, FWD_IN);
    assert_checksums(&out.frame);
    assert_eq!(&out.frame[0..6], &HOST_MAC.0);
    assert_eq!(addrs4(out.ip()), (REMOTE, HOST));
    let (t, code, _, quoted) = icmp_error_parts(out.ip());
    assert_eq!((t, code), (3, 3));
    assert_quoted_checksums(quoted);
    // The quote is exactly what the host sent, one hop later.
    assert_eq!(quoted, &after_one_hop(&original)[..]);
    assert_eq!(h.engine.stats().icmp_errors_translated, 1);

    // A router on the way (not the remote) reports TTL expiry for a TCP SYN.
    let router = Ipv4Addr::new(192, 0, 2, 77);
    let syn = tcp4(sa(HOST, 41000), sa(REMOTE, 80), SYN, &[]);
    let sent = h.from_lan(syn.clone());
    let out = h.from_wan(icmp4_error(router, PUBLIC, (11, 0), sent.ip()));
    assert_eq!(out.verdict, FWD_IN);
    assert_checksums(&out.frame);
    assert_eq!(addrs4(out.ip()), (router, HOST));
    let (_, _, _, quoted) = icmp_error_parts(out.ip());
    assert_eq!(quoted, &after_one_hop(&syn)[..]);

    // An error quoting an echo request.
    h.from_lan(echo4(HOST2, REMOTE, 300, 1, false));
    let ping = echo4(HOST, REMOTE, 300, 1, false);
    let sent = h.from_lan(ping.clone());
    assert_ne!(echo_id4(sent.ip()), 300);
    let out = h.from_wan(icmp4_error(router, PUBLIC, (3, 1), sent.ip()));
    assert_eq!(out.verdict, FWD_IN);
    assert_checksums(&out.frame);
    let (_, _, _, quoted) = icmp_error_parts(out.ip());
    assert_eq!(quoted, &after_one_hop(&ping)[..]);
    assert_quoted_checksums(quoted);
}

#[test]
fn rfc5508_req3_truncated_quote_translated() {
    let mut h = Harness::default();
    udp_out(&mut h, sa(HOST2, 40000), sa(REMOTE, 53));
    let sent = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), &[7; 200]));
    // RFC 792: only the header and 8 bytes are quoted.
    let err = icmp4_error(REMOTE, PUBLIC, (3, 3), &sent.ip()[..28]);
    let out = h.from_wan(err);
    assert_eq!(out.verdict, FWD_IN);
    assert_checksums(&out.frame);
    let (_, _, _, quoted) = icmp_error_parts(out.ip());
    assert_eq!(quoted.len(), 28);
    assert_eq!(endpoints4(quoted), (sa(HOST, 40000), sa(REMOTE, 53)));
    let mut hdr = quoted[..20].to_vec();
    fix_ipv4_checksum(&mut hdr);
    assert_eq!(hdr, &quoted[..20], "quoted IPv4 header checksum valid");
}

#[test]
fn rfc5508_req4_outbound_icmp_error_translated() {
    let mut h = Harness::default();
    udp_out(&mut h, sa(HOST2, 40000), sa(REMOTE, 53));
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let remote_sent = udp4(sa(REMOTE, 53), ext, b"late answer");
    let delivered = h.from_wan(remote_sent.clone());
    assert_eq!(delivered.verdict, FWD_IN);
    // The host's socket is gone: its stack answers with port unreachable.
    let out = h.from_lan(icmp4_error(HOST, REMOTE, (3, 3), delivered.ip()));
    assert_eq!(out.verdict, FWD_OUT);
    assert_checksums(&out.frame);
    assert_eq!(addrs4(out.ip()), (PUBLIC, REMOTE));
    let (t, code, _, quoted) = icmp_error_parts(out.ip());
    assert_eq!((t, code), (3, 3));
    assert_eq!(
        quoted,
        &after_one_hop(&remote_sent)[..],
        "the remote sees its own datagram"
    );
    assert_quoted_checksums(quoted);
}

#[test]
fn rfc5508_req4_icmp_error_matching_no_mapping_dropped() {
    let mut h = Harness::default();
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    // Quotes a datagram from an external port that has no mapping.
    let never_sent = udp4(sa(PUBLIC, 45555), sa(REMOTE, 53), b"x");
    let v = h
        .from_wan(icmp4_error(REMOTE, PUBLIC, (3, 3), &never_sent))
        .verdict;
    assert_eq!(v, Verdict::Drop(DropReason::IcmpErrorNoMatch));
    // Right port, wrong remote: matches no session either.
    let other_remote = udp4(sa(PUBLIC, 40000), sa(REMOTE2, 53), b"x");
    let v = h
        .from_wan(icmp4_error(REMOTE2, PUBLIC, (3, 3), &other_remote))
        .verdict;
    assert_eq!(v, Verdict::Drop(DropReason::IcmpErrorNoMatch));
    // Outbound: quoting an inbound datagram we never delivered.
    let fake = udp4(sa(REMOTE2, 53), sa(HOST, 40000), b"x");
    let v = h
        .from_lan(icmp4_error(HOST, REMOTE2, (3, 3), &fake))
        .verdict;
    assert_eq!(v, Verdict::Drop(DropReason::IcmpErrorNoMatch));
    assert_eq!(h.drops(DropReason::IcmpErrorNoMatch), 3);
    assert_eq!(h.engine.stats().icmp_errors_translated, 0);
}

#[test]
fn rfc5508_req6_icmp_errors_never_refresh_or_kill_mappings() {
    let mut h = Harness::default();
    let sent = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    let tcp_ext = tcp_established(&mut h, sa(HOST, 41000), sa(REMOTE, 80));
    let syn_sent = tcp4(tcp_ext, sa(REMOTE, 80), ACK, &[]);
    h.advance_secs(200);
    for err in [
        icmp4_error(REMOTE, PUBLIC, (3, 3), sent.ip()),
        icmp4_error(REMOTE, PUBLIC, (3, 1), &syn_sent),
    ] {
        assert_eq!(h.from_wan(err).verdict, FWD_IN);
    }
    // Neither session was killed or refreshed.
    let u = session(&h, 17, sa(HOST, 40000), sa(REMOTE, 53));
    assert_eq!(u.idle, 200);
    let t = session(&h, 6, sa(HOST, 41000), sa(REMOTE, 80));
    assert_eq!((t.state, t.idle), ("established", 200));
    h.advance_secs(101);
    assert!(find_session(&h, 17, sa(HOST, 40000), sa(REMOTE, 53)).is_none());
    assert!(find_session(&h, 6, sa(HOST, 41000), sa(REMOTE, 80)).is_some());
}

// ---- RFC 6888: limits ----

#[test]
fn rfc6888_req4_ports_per_host_limit() {
    let mut c = config();
    c.nat.max_ports_per_host = 2;
    let mut h = Harness::new(c);
    udp_out(&mut h, sa(HOST, 1000), sa(REMOTE, 53));
    udp_out(&mut h, sa(HOST, 1001), sa(REMOTE, 53));
    let out = h.from_lan(udp4(sa(HOST, 1002), sa(REMOTE, 53), b"x"));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::HostPortLimit));
    // ICMP identifiers count as ports too.
    let out = h.from_lan(echo4(HOST, REMOTE, 5, 1, false));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::HostPortLimit));
    assert_eq!(h.drops(DropReason::HostPortLimit), 2);
    // An existing mapping may still gain sessions; other hosts are unaffected.
    udp_out(&mut h, sa(HOST, 1000), sa(REMOTE2, 53));
    udp_out(&mut h, sa(HOST2, 1002), sa(REMOTE, 53));
    assert_eq!(h.engine.nat().session_count(), 4);
}

#[test]
fn rfc6888_req5_sessions_per_host_limit() {
    let mut c = config();
    c.nat.max_sessions_per_host = 3;
    let mut h = Harness::new(c);
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 1));
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 2));
    tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 3), SYN);
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 4), b"x"));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::HostSessionLimit));
    // A session opened from outside (EIF) is charged to its mapping, not the host...
    let (v, _) = udp_in(&mut h, sa(REMOTE2, 9), ext);
    assert_eq!(v, FWD_IN);
    // ...until the host answers it, which its quota then refuses.
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE2, 9), b"x"));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::HostSessionLimit));
    assert_eq!(h.drops(DropReason::HostSessionLimit), 2);
    udp_out(&mut h, sa(HOST2, 40000), sa(REMOTE, 4));
    // When a session ends, the host may open another.
    h.advance_secs(241);
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 4));
}

/// Sessions the inside host `HOST` has charged to it.
fn host_sessions(h: &Harness) -> u32 {
    let hosts = h.engine.nat().top_hosts(10);
    hosts.iter().find(|e| e.0 == HOST).map_or(0, |e| e.1)
}

/// The starvation attack: an outsider reaches a host's endpoint-independent mapping
/// from many source ports. The sessions it opens are capped per mapping and never
/// charged to the host's own quota (RFC 6888 REQ-5), so the host keeps opening its own.
#[test]
fn rfc6888_req5_outsider_sessions_on_a_mapping_are_capped_and_not_charged_to_the_host() {
    let mut c = config();
    c.nat.max_sessions_per_host = 10;
    let mut h = Harness::new(c);
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let cap = natbox_core::engine::nat44::MAX_UNANSWERED_PER_MAPPING;
    for port in 1..=cap as u16 {
        let (v, _) = udp_in(&mut h, sa(REMOTE2, port), ext);
        assert_eq!(v, FWD_IN, "outsider port {port}");
    }
    let (v, _) = udp_in(&mut h, sa(REMOTE2, 9999), ext);
    assert_eq!(v, Verdict::Drop(DropReason::MappingInboundLimit));
    assert_eq!(h.drops(DropReason::MappingInboundLimit), 1);
    assert_eq!(host_sessions(&h), 1);
    // The host still has its whole quota for its own sessions.
    for port in 2..=10 {
        udp_out(&mut h, sa(HOST, 40000 + port), sa(REMOTE, 53));
    }
    assert_eq!(host_sessions(&h), 10);
    // Another mapping of the same host has its own allowance.
    let other = sa(HOST, 40002);
    let ext2 = endpoints4(h.from_lan(udp4(other, sa(REMOTE, 53), b"x")).ip()).0;
    assert_eq!(udp_in(&mut h, sa(REMOTE2, 7), ext2).0, FWD_IN);
}

/// An unanswered session opened from outside lives `tcp_incoming_syn` seconds, however
/// often the outsider sends; the inside's answer charges it to the host.
#[test]
fn rfc5382_req4_outsider_sessions_end_unless_the_inside_answers() {
    let mut c = config();
    c.nat.udp_inbound_refresh = true;
    let mut h = Harness::new(c);
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    assert_eq!(udp_in(&mut h, sa(REMOTE2, 1), ext).0, FWD_IN);
    assert_eq!(udp_in(&mut h, sa(REMOTE2, 2), ext).0, FWD_IN);
    let s = session(&h, 17, sa(HOST, 40000), sa(REMOTE2, 1));
    assert_eq!(
        (s.state, s.class, s.expires),
        ("unanswered", Class::UdpIncoming, 6)
    );
    assert_eq!(host_sessions(&h), 1);
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE2, 2));
    let s = session(&h, 17, sa(HOST, 40000), sa(REMOTE2, 2));
    assert_eq!((s.state, s.class), ("active", Class::Udp));
    assert_eq!(host_sessions(&h), 2, "answered: charged to the host");
    // Inbound packets (refreshing under udp_inbound_refresh) do not keep it.
    for _ in 0..2 {
        h.advance_secs(2);
        assert_eq!(udp_in(&mut h, sa(REMOTE2, 1), ext).0, FWD_IN);
    }
    h.advance_secs(3);
    assert_eq!(find_session(&h, 17, sa(HOST, 40000), sa(REMOTE2, 1)), None);
    assert!(find_session(&h, 17, sa(HOST, 40000), sa(REMOTE2, 2)).is_some());
    // TCP: an outsider's SYN the inside refuses with a RST ends just as soon.
    let syn_from = sa(REMOTE2, 3);
    let ext = tcp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 80), SYN);
    assert_eq!(tcp_in(&mut h, syn_from, ext, SYN), FWD_IN);
    h.advance_secs(3);
    tcp_out(&mut h, sa(HOST, 40000), syn_from, RST | ACK);
    let s = session(&h, 6, sa(HOST, 40000), syn_from);
    assert_eq!((s.state, s.class), ("reset", Class::TcpIncomingSyn));
    assert_eq!(host_sessions(&h), 3, "a refusal is no answer");
    h.advance_secs(7);
    assert_eq!(find_session(&h, 6, sa(HOST, 40000), syn_from), None);
}

#[test]
fn rfc6888_global_session_limit() {
    let mut c = config();
    c.nat.max_sessions = 3;
    let mut h = Harness::new(c);
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 1));
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 2));
    udp_out(&mut h, sa(HOST2, 40000), sa(REMOTE, 1));
    let out = h.from_lan(udp4(sa(HOST2, 40001), sa(REMOTE, 1), b"x"));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::SessionLimit));
    let out = h.from_lan(tcp4(sa(HOST, 1), sa(REMOTE, 1), SYN, &[]));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::SessionLimit));
    assert_eq!(h.drops(DropReason::SessionLimit), 2);
    assert_eq!(h.engine.nat().session_count(), 3);
}

#[test]
fn rfc6888_req8_freed_port_held_for_previous_host() {
    let mut c = config();
    c.nat.port_min = 40000;
    c.nat.port_max = 40000;
    let mut h = Harness::new(c.clone());
    assert_eq!(
        udp_out(&mut h, sa(HOST, 5555), sa(REMOTE, 53)),
        sa(PUBLIC, 40000)
    );
    h.advance_secs(301);
    assert_eq!(h.engine.nat().session_count(), 0);
    assert_eq!(h.engine.nat().ports_in_use(0)[1], 1, "held");
    let refused = |h: &mut Harness| {
        h.from_lan(udp4(sa(HOST2, 5555), sa(REMOTE, 53), b"x"))
            .verdict
    };
    assert_eq!(refused(&mut h), Verdict::Drop(DropReason::PortsExhausted));
    h.advance_secs(118);
    assert_eq!(
        refused(&mut h),
        Verdict::Drop(DropReason::PortsExhausted),
        "still held at 119 s"
    );
    h.advance_secs(2);
    assert_eq!(
        udp_out(&mut h, sa(HOST2, 5555), sa(REMOTE, 53)),
        sa(PUBLIC, 40000),
        "reusable by another host after 120 s"
    );

    // The previous owner may take its port back during the hold.
    let mut h = Harness::new(c);
    udp_out(&mut h, sa(HOST, 5555), sa(REMOTE, 53));
    h.advance_secs(301);
    assert_eq!(
        udp_out(&mut h, sa(HOST, 6666), sa(REMOTE2, 1)),
        sa(PUBLIC, 40000)
    );
}

#[test]
fn rfc6888_req11_no_eviction_of_live_sessions_when_full() {
    let mut c = config();
    c.nat.max_sessions = 2;
    let mut h = Harness::new(c);
    let a = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let b = tcp_established(&mut h, sa(HOST2, 41000), sa(REMOTE, 80));
    let before = sessions(&h);
    for i in 0..20u16 {
        let out = h.from_lan(udp4(sa(HOST2, 50000 + i), sa(REMOTE2, 1), b"x"));
        assert_eq!(out.verdict, Verdict::Drop(DropReason::SessionLimit));
    }
    // An inbound packet from a new remote cannot take a slot either.
    assert_eq!(
        udp_in(&mut h, sa(REMOTE2, 7), a).0,
        Verdict::Drop(DropReason::SessionLimit)
    );
    let mut after = sessions(&h);
    let mut before = before;
    before.sort_by_key(|s| s.inside);
    after.sort_by_key(|s| s.inside);
    assert_eq!(
        before
            .iter()
            .map(|s| (s.inside, s.outside))
            .collect::<Vec<_>>(),
        after
            .iter()
            .map(|s| (s.inside, s.outside))
            .collect::<Vec<_>>()
    );
    // Live sessions keep working both ways.
    assert_eq!(udp_in(&mut h, sa(REMOTE, 53), a).0, FWD_IN);
    assert_eq!(tcp_in(&mut h, sa(REMOTE, 80), b, ACK), FWD_IN);
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
}

#[test]
fn rfc6888_icmp_on_limit_sends_admin_prohibited() {
    let mut c = config();
    c.nat.max_sessions_per_host = 1;
    c.nat.icmp_on_limit = true;
    let mut h = Harness::new(c);
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let refused = udp4(sa(HOST, 40001), sa(REMOTE, 53), b"refused");
    let out = h.from_lan(refused.clone());
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_checksums(&out.frame);
    assert_eq!(&out.frame[0..6], &HOST_MAC.0);
    assert_eq!(addrs4(out.ip()), (BOX_LAN, HOST));
    let (t, code, _, quoted) = icmp_error_parts(out.ip());
    assert_eq!(
        (t, code),
        (3, 13),
        "communication administratively prohibited"
    );
    assert_eq!(
        quoted,
        &refused[..],
        "quotes the refused datagram untranslated"
    );
    assert_eq!(h.drops(DropReason::HostSessionLimit), 1);
    assert_eq!(h.engine.stats().icmp_sent, 1);
}

// ---- router duties ----

#[test]
fn rfc1812_ttl_expiry_sends_time_exceeded() {
    let mut h = Harness::default();
    let mut dying = udp4(sa(HOST, 40000), sa(REMOTE, 53), b"traceroute");
    dying[8] = 1;
    fix_ipv4_checksum(&mut dying);
    let out = h.from_lan(dying.clone());
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_checksums(&out.frame);
    assert_eq!(addrs4(out.ip()), (BOX_LAN, HOST));
    let (t, code, _, quoted) = icmp_error_parts(out.ip());
    assert_eq!((t, code), (11, 0));
    assert_eq!(quoted, &dying[..]);
    assert_eq!(h.drops(DropReason::TtlExceeded), 1);
    assert_eq!(
        h.engine.nat().session_count(),
        0,
        "no mapping for a dead packet"
    );

    // Inbound through a mapping: answered from the outside address.
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let mut dying = udp4(sa(REMOTE, 53), ext, b"x");
    dying[8] = 1;
    fix_ipv4_checksum(&mut dying);
    let out = h.from_wan(dying);
    assert_eq!(out.verdict, Verdict::Reply(OUTSIDE));
    assert_checksums(&out.frame);
    assert_eq!(&out.frame[0..6], &GW_MAC.0);
    assert_eq!(addrs4(out.ip()), (PUBLIC, REMOTE));
    // TTL 2 still goes through, leaving with TTL 1.
    let mut ttl2 = udp4(sa(HOST, 40000), sa(REMOTE, 53), b"x");
    ttl2[8] = 2;
    fix_ipv4_checksum(&mut ttl2);
    let out = h.from_lan(ttl2);
    assert_eq!(out.verdict, FWD_OUT);
    assert_eq!(out.ip()[8], 1);
    assert_checksums(&out.frame);
}

#[test]
fn rfc1122_echo_to_box_addresses_answered() {
    let pool = [PUBLIC, Ipv4Addr::new(198, 51, 100, 11)];
    let mut h = Harness::new(pool_config(&pool));
    let cases = [
        (INSIDE, HOST, BOX_LAN),
        (INSIDE, HOST, PUBLIC),
        (OUTSIDE, REMOTE, PUBLIC),
        (OUTSIDE, REMOTE, pool[1]),
    ];
    for (port, src, dst) in cases {
        let request = echo4(src, dst, 0x1234, 9, false);
        let out = if port == INSIDE {
            h.from_lan(request.clone())
        } else {
            h.from_wan(request.clone())
        };
        assert_eq!(out.verdict, Verdict::Reply(port), "{src} -> {dst}");
        assert_checksums(&out.frame);
        let mac = if port == INSIDE { HOST_MAC } else { GW_MAC };
        assert_eq!(&out.frame[0..6], &mac.0);
        assert_eq!(addrs4(out.ip()), (dst, src));
        assert_eq!(out.ip()[20], 0, "echo reply");
        assert_eq!(
            &out.ip()[24..],
            &request[24..],
            "id, sequence and data echoed"
        );
    }
    assert_eq!(h.engine.stats().icmp_sent, 4);
    assert_eq!(h.engine.nat().session_count(), 0);
    // Anything else to the box is not served.
    let out = h.from_lan(udp4(sa(HOST, 1), sa(BOX_LAN, 22), b"ssh?"));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::LocalUnsupported));
}

fn mss_option(mss: u16) -> [u8; 4] {
    let m = mss.to_be_bytes();
    [2, 4, m[0], m[1]]
}

fn mss_of(ip: &[u8]) -> u16 {
    let hl = usize::from(ip[0] & 0xf) * 4;
    assert_eq!(ip[hl + 20], 2, "MSS option first");
    u16::from_be_bytes([ip[hl + 22], ip[hl + 23]])
}

#[test]
fn tcp_mss_clamped_on_syn_both_directions() {
    let mut h = Harness::default();
    assert_eq!(h.engine.config().nat.mss_clamp, 1460);
    let out = h.from_lan(tcp4(
        sa(HOST, 40000),
        sa(REMOTE, 80),
        SYN,
        &mss_option(8960),
    ));
    assert_eq!(out.verdict, FWD_OUT);
    assert_checksums(&out.frame);
    assert_eq!(mss_of(out.ip()), 1460);
    let ext = endpoints4(out.ip()).0;
    let back = h.from_wan(tcp4(sa(REMOTE, 80), ext, SYN | ACK, &mss_option(9000)));
    assert_eq!(back.verdict, FWD_IN);
    assert_checksums(&back.frame);
    assert_eq!(mss_of(back.ip()), 1460);
    assert_eq!(h.engine.stats().mss_clamped, 2);
    // A smaller MSS is left alone; so is a non-SYN segment.
    let out = h.from_lan(tcp4(
        sa(HOST, 40001),
        sa(REMOTE, 80),
        SYN,
        &mss_option(1200),
    ));
    assert_checksums(&out.frame);
    assert_eq!(mss_of(out.ip()), 1200);
    let out = h.from_lan(tcp4(
        sa(HOST, 40000),
        sa(REMOTE, 80),
        ACK,
        &mss_option(9000),
    ));
    assert_eq!(out.verdict, FWD_OUT);
    assert_eq!(mss_of(out.ip()), 9000);
    assert_eq!(h.engine.stats().mss_clamped, 2);
}

#[test]
fn unsolicited_inbound_to_pool_address_dropped() {
    let mut h = Harness::default();
    for ip in [
        udp4(sa(REMOTE, 53), sa(PUBLIC, 40000), b"x"),
        tcp4(sa(REMOTE, 80), sa(PUBLIC, 22), SYN, &[]),
        echo4(REMOTE, PUBLIC, 5, 1, true),
    ] {
        assert_eq!(h.from_wan(ip).verdict, Verdict::Drop(DropReason::NoMapping));
    }
    assert_eq!(h.drops(DropReason::NoMapping), 3);
    assert_eq!(h.engine.nat().session_count(), 0);
    // Closed again once the mapping expires.
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    h.advance_secs(301);
    assert_eq!(
        udp_in(&mut h, sa(REMOTE, 53), ext).0,
        Verdict::Drop(DropReason::NoMapping)
    );
}

#[test]
fn outside_to_private_address_dropped() {
    let mut h = Harness::default();
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let v = h
        .from_wan(udp4(sa(REMOTE, 53), sa(HOST, 40000), b"x"))
        .verdict;
    assert_eq!(v, Verdict::Drop(DropReason::InboundNotTranslated));
    let v = h
        .from_wan(udp4(sa(REMOTE, 53), sa(REMOTE2, 1), b"x"))
        .verdict;
    assert_eq!(v, Verdict::Drop(DropReason::TransitDenied));
    assert_eq!(h.drops(DropReason::InboundNotTranslated), 1);
}

#[test]
fn spoofed_inside_source_dropped() {
    let mut h = Harness::default();
    for src in [
        Ipv4Addr::new(192, 168, 1, 5),
        REMOTE2,
        Ipv4Addr::new(10, 10, 1, 2),
    ] {
        let v = h
            .from_lan(udp4(sa(src, 40000), sa(REMOTE, 53), b"x"))
            .verdict;
        assert_eq!(v, Verdict::Drop(DropReason::SpoofedSource), "{src}");
    }
    // Also for hairpin traffic.
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    let v = h
        .from_lan(udp4(sa(Ipv4Addr::new(192, 168, 1, 5), 1), ext, b"x"))
        .verdict;
    assert_eq!(v, Verdict::Drop(DropReason::SpoofedSource));
    assert_eq!(h.drops(DropReason::SpoofedSource), 4);
    assert_eq!(h.engine.nat().session_count(), 1);
}

#[test]
fn malformed_frames_dropped_and_counted() {
    let mut h = Harness::default();
    let good = udp4(sa(HOST, 40000), sa(REMOTE, 53), b"payload");
    let lan = |ip: &[u8]| eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV4, ip);

    let mut bad_sum = good.clone();
    bad_sum[10] ^= 0xff;
    let mut ihl4 = good.clone();
    ihl4[0] = 0x44;
    fix_ipv4_checksum(&mut ihl4[..16]);
    let mut long_total = good.clone();
    long_total[2..4].copy_from_slice(&1400u16.to_be_bytes());
    fix_ipv4_checksum(&mut long_total);
    let mut version6 = good.clone();
    version6[0] = 0x65;
    fix_ipv4_checksum(&mut version6);
    let short_udp = ipv4(HOST, REMOTE, IpNextHeaderProtocols::Udp, &[0, 1, 0]);
    let short_tcp = ipv4(HOST, REMOTE, IpNextHeaderProtocols::Tcp, &[0; 12]);
    let mut vlan = lan(&good);
    vlan.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    let mut jumbo = lan(&udp4(sa(HOST, 40000), sa(REMOTE, 53), &[0; 1600]));
    jumbo[14 + 6] = 0; // even without DF, too long for the port
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (vec![0u8; 10], DropReason::FrameTruncated),
        (lan(&good[..12]), DropReason::Ipv4Malformed),
        (lan(&bad_sum), DropReason::Ipv4BadChecksum),
        (lan(&ihl4), DropReason::Ipv4Malformed),
        (lan(&long_total), DropReason::Ipv4Malformed),
        (lan(&version6), DropReason::Ipv4Malformed),
        (lan(&short_udp), DropReason::L4Truncated),
        (lan(&short_tcp), DropReason::L4Truncated),
        (vlan, DropReason::VlanTagged),
        (jumbo, DropReason::FrameTooLong),
        (
            eth(Mac([2, 9, 9, 9, 9, 9]), HOST_MAC, ETHERTYPE_IPV4, &good),
            DropReason::NotForUs,
        ),
        (
            eth(BOX_LAN_MAC, HOST_MAC, 0x88cc, &good),
            DropReason::UnknownEthertype,
        ),
        (
            eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_ARP, &[0; 20]),
            DropReason::ArpMalformed,
        ),
        (
            lan(&ipv4(HOST, REMOTE, IpNextHeaderProtocols::Gre, &[0; 8])),
            DropReason::UnsupportedProtocol,
        ),
    ];
    for (frame, reason) in cases {
        let before = h.drops(reason);
        let out = h.frame(INSIDE, frame);
        assert_eq!(out.verdict, Verdict::Drop(reason));
        assert_eq!(h.drops(reason), before + 1, "{reason:?} counted once");
    }
    assert_eq!(h.drops(DropReason::Ipv4Malformed), 4);
    assert_eq!(h.engine.nat().session_count(), 0);
    assert_eq!(h.engine.stats().ports[INSIDE.index()].drops, 14);
    // The engine is still fine.
    udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
}
