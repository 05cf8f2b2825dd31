//! The engine with offloaded frames (`Engine::process_offloaded`): TCP/UDP checksums
//! left partial (CHECKSUM_PARTIAL: the field holds the pseudo-header sum) and GSO
//! super-frames, as AF_PACKET hands them over with PACKET_VNET_HDR (packet(7),
//! include/uapi/linux/virtio_net.h). Partial sums are built and completed here with
//! code of the test's own, and the results checked with pnet's checksum code.

mod support;

use natbox_core::engine::stats::DropReason;
use natbox_core::engine::{Frame, PortId, Verdict};
use natbox_core::wire::checksum::Csum;
use natbox_core::wire::offload::Offload;
use std::net::{Ipv4Addr, Ipv6Addr};
use support::*;

const PAYLOAD: usize = 20_000;

fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn words(b: &[u8]) -> u64 {
    b.chunks(2)
        .map(|c| u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// The folded (not inverted) IPv4 pseudo-header sum a sender leaves in the field.
fn pseudo4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u16 {
    fold(words(&src.octets()) + words(&dst.octets()) + u64::from(proto) + len as u64)
}

fn pseudo6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: usize) -> u16 {
    fold(words(&src.octets()) + words(&dst.octets()) + u64::from(proto) + len as u64)
}

/// What a NIC does with a partial checksum: sums from the transport header to the end
/// (the field included) and stores the complement.
fn complete(frame: &mut [u8], l4: usize, offset: usize) {
    let c = !fold(words(&frame[l4..]));
    let c = if c == 0 { 0xffff } else { c };
    frame[l4 + offset..l4 + offset + 2].copy_from_slice(&c.to_be_bytes());
}

fn field(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

fn payload() -> Vec<u8> {
    (0..PAYLOAD).map(|i| (i * 13 + i / 256) as u8).collect()
}

/// An IPv4 datagram around transport bytes `l4` (protocol 6 or 17) whose checksum
/// field (at `csum_at`) holds the partial pseudo-header sum.
fn partial4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, mut l4: Vec<u8>, csum_at: usize) -> Vec<u8> {
    let p = pseudo4(src, dst, proto, l4.len());
    l4[csum_at..csum_at + 2].copy_from_slice(&p.to_be_bytes());
    let next = pnet_packet::ip::IpNextHeaderProtocol(proto);
    ipv4(src, dst, next, &l4)
}

/// A TCP/IPv4 datagram with its checksum left partial.
fn tcp4_partial(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: u8,
    opts: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let t = tcp_segment(src.1, dst.1, flags, 5000, opts, data);
    partial4(src.0, dst.0, 6, t, 16)
}

fn gso(seg: usize) -> Offload {
    Offload {
        csum: Csum::Partial,
        gso_segment: Some(seg),
    }
}

const PARTIAL: Offload = Offload {
    csum: Csum::Partial,
    gso_segment: None,
};

fn offloaded(h: &mut Harness, port: PortId, mut bytes: Vec<u8>, off: Offload) -> Out {
    let len = bytes.len();
    bytes.resize(len + 2048, 0);
    let mut frame = Frame {
        buf: &mut bytes,
        len,
    };
    let verdict = h.engine.process_offloaded(port, &mut frame, off, h.now);
    let n = frame.len;
    bytes.truncate(n);
    Out {
        verdict,
        frame: bytes,
    }
}

fn lan4(ip: Vec<u8>) -> Vec<u8> {
    eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV4, &ip)
}

fn wan4(ip: Vec<u8>) -> Vec<u8> {
    eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV4, &ip)
}

/// Opens a TCP connection HOST:40000 -> REMOTE:443; returns the external port.
fn connect(h: &mut Harness) -> u16 {
    let out = h.from_lan(tcp4(sa(HOST, 40000), sa(REMOTE, 443), SYN, &[]));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    endpoints4(out.ip()).0.port()
}

/// A 20 kB TCP super-frame (gso_size 1448) leaves translated, still partial: the field
/// is the pseudo-header sum with the public address (the port change is not in it), so
/// completing it gives a valid checksum of the rewritten segment.
#[test]
fn gso_tcp4_outbound_keeps_a_partial_pseudo_header_sum() {
    let mut h = Harness::default();
    let ext = connect(&mut h);
    let sent_before = h.engine.stats().ports[1].tx_packets;
    let f = tcp4_partial((HOST, 40000), (REMOTE, 443), ACK, &[], &payload());
    let out = offloaded(&mut h, INSIDE, lan4(f), gso(20 + 20 + 1448));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    assert_eq!(out.frame.len(), 14 + 20 + 20 + PAYLOAD);
    assert_eq!(endpoints4(out.ip()), (sa(PUBLIC, ext), sa(REMOTE, 443)));
    let want = pseudo4(PUBLIC, REMOTE, 6, 20 + PAYLOAD);
    assert_eq!(field(&out.frame, 34 + 16) % 0xffff, want % 0xffff);
    let mut done = out.frame.clone();
    complete(&mut done, 34, 16);
    assert_checksums(&done);
    // A super-frame counts as one frame.
    assert_eq!(h.engine.stats().ports[1].tx_packets, sent_before + 1);
}

#[test]
fn gso_tcp4_inbound_and_partial_udp() {
    let mut h = Harness::default();
    let ext = connect(&mut h);
    let f = tcp4_partial((REMOTE, 443), (PUBLIC, ext), ACK, &[], &payload());
    let mut out = offloaded(&mut h, OUTSIDE, wan4(f), gso(20 + 20 + 1448));
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    assert_eq!(endpoints4(out.ip()), (sa(REMOTE, 443), sa(HOST, 40000)));
    complete(&mut out.frame, 34, 16);
    assert_checksums(&out.frame);

    // A UDP datagram with a partial checksum (no GSO): rewritten as a pseudo sum.
    let f = partial4(HOST, REMOTE, 17, udp_segment(5353, 53, b"query"), 6);
    let mut out = offloaded(&mut h, INSIDE, lan4(f), PARTIAL);
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    assert_eq!(endpoints4(out.ip()).0.ip(), &PUBLIC);
    complete(&mut out.frame, 34, 6);
    assert_checksums(&out.frame);
}

/// MTU 1400 outside: a super-frame whose segments (IP + TCP + gso_size) exceed it gets
/// "fragmentation needed, MTU 1400" like a 1488-byte packet would; one whose segments
/// fit leaves whole although it is 20 kB long. Without DF it is dropped (natbox does not
/// fragment).
#[test]
fn gso_is_checked_against_the_mtu_by_segment() {
    let mut c = config();
    c.outside.mtu = 1400;
    let mut h = Harness::new(c);
    connect(&mut h);
    let f = tcp4_partial((HOST, 40000), (REMOTE, 443), ACK, &[], &payload());
    let out = offloaded(&mut h, INSIDE, lan4(f.clone()), gso(20 + 20 + 1448));
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    let icmp = &out.ip()[20..];
    assert_eq!(
        (icmp[0], icmp[1]),
        (3, 4),
        "destination unreachable, frag needed"
    );
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1400);
    assert_checksums(
        &out.frame[..14 + usize::from(u16::from_be_bytes([out.ip()[2], out.ip()[3]]))],
    );
    assert_eq!(h.drops(DropReason::TooBig), 1);

    let out = offloaded(&mut h, INSIDE, lan4(f.clone()), gso(20 + 20 + 1360));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));

    let mut no_df = f;
    no_df[6] = 0;
    fix_ipv4_checksum(&mut no_df);
    let out = offloaded(&mut h, INSIDE, lan4(no_df), gso(20 + 20 + 1448));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::TooBigNoDf));

    // Without GSO metadata the same 20 kB frame is longer than the inside MTU.
    let f = tcp4_partial((HOST, 40000), (REMOTE, 443), ACK, &[], &payload());
    let out = offloaded(&mut h, INSIDE, lan4(f), PARTIAL);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::FrameTooLong));
}

/// IPv6: a TCPv6 super-frame passes the egress-only filter whole (nothing rewritten but
/// the hop limit, so the partial field stays); with segments over the MTU it gets
/// "packet too big".
#[test]
fn gso_tcp6_forwarded_and_packet_too_big() {
    let mut c = config();
    c.outside.mtu = 1400;
    let mut h = Harness::new(c);
    let syn = tcp6(host6(), 40000, remote6(), 443, SYN);
    assert_eq!(h.from_lan6(syn).verdict, Verdict::Forward(OUTSIDE));
    let mut t = tcp_segment(40000, 443, ACK, 5000, &[], &payload());
    let p = pseudo6(host6(), remote6(), 6, t.len());
    t[16..18].copy_from_slice(&p.to_be_bytes());
    let f = eth(
        BOX_LAN_MAC,
        HOST_MAC,
        ETHERTYPE_IPV6,
        &ipv6(
            host6(),
            remote6(),
            pnet_packet::ip::IpNextHeaderProtocols::Tcp,
            &t,
        ),
    );
    let mut out = offloaded(&mut h, INSIDE, f.clone(), gso(40 + 20 + 1340));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    assert_eq!(field(&out.frame, 54 + 16), p);
    complete(&mut out.frame, 54, 16);
    assert_checksums(&out.frame);

    let out = offloaded(&mut h, INSIDE, f, gso(40 + 20 + 1440));
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    let icmp = &out.ip()[40..];
    assert_eq!(icmp[0], 2, "packet too big");
    assert_eq!(
        u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
        1400
    );
}

/// A SYN with a partial checksum: the MSS is clamped (1460 -> 1300) and the field is
/// only moved for the address change, so completing it verifies.
#[test]
fn partial_syn_is_clamped_without_touching_the_sum() {
    let mut c = config();
    c.nat.mss_clamp = 1300;
    let mut h = Harness::new(c);
    let f = tcp4_partial((HOST, 40001), (REMOTE, 443), SYN, &[2, 4, 0x05, 0xb4], &[]);
    let mut out = offloaded(&mut h, INSIDE, lan4(f), PARTIAL);
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    assert_eq!(field(&out.frame, 34 + 22), 1300);
    assert_eq!(
        field(&out.frame, 34 + 16) % 0xffff,
        pseudo4(PUBLIC, REMOTE, 6, 24) % 0xffff
    );
    complete(&mut out.frame, 34, 16);
    assert_checksums(&out.frame);
    assert_eq!(h.engine.stats().mss_clamped, 1);
}

/// Towards a next hop not resolved yet: a super-frame is dropped (gso_not_buffered), a
/// partial wire-sized frame is parked with its checksum completed and leaves valid
/// once ARP answers.
#[test]
fn unresolved_next_hop_parks_only_wire_sized_frames() {
    let mut h = Harness::default();
    let lonely = Ipv4Addr::new(10, 10, 0, 7);
    let out = h.from_lan(tcp4(sa(lonely, 40000), sa(REMOTE, 443), SYN, &[]));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    let ext = endpoints4(out.ip()).0.port();
    let inbound = |data: &[u8]| wan4(tcp4_partial((REMOTE, 443), (PUBLIC, ext), ACK, &[], data));
    let out = offloaded(&mut h, OUTSIDE, inbound(&payload()), gso(20 + 20 + 1448));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::GsoNotBuffered));
    assert_eq!(h.drops(DropReason::GsoNotBuffered), 1);
    let out = offloaded(&mut h, OUTSIDE, inbound(&payload()[..1000]), PARTIAL);
    assert_eq!(out.verdict, Verdict::Hold);
    let mac = natbox_core::wire::ethernet::Mac([2, 0, 0, 0, 1, 7]);
    let out = h.frame(INSIDE, arp_reply(mac, lonely, BOX_LAN_MAC, BOX_LAN));
    assert_eq!(out.verdict, Verdict::Consumed);
    let sent = h.transmitted();
    let released: Vec<_> = sent
        .iter()
        .filter(|(p, f)| *p == INSIDE && f.len() == 14 + 20 + 20 + 1000)
        .collect();
    assert_eq!(released.len(), 1, "{sent:?}");
    assert_eq!(endpoints4(&released[0].1[14..]).1, sa(lonely, 40000));
    assert_checksums(&released[0].1);
}

/// To a service of the box's (here the metrics port): a partial SYN reaches it with its
/// checksum completed (services verify checksums), a super-frame is refused.
#[test]
fn local_services_get_complete_checksums() {
    let mut h = Harness::default();
    h.engine
        .bind_local(&[natbox_core::engine::local::Binding::TcpInside(
            (BOX_LAN, 9100).into(),
        )]);
    let syn = tcp4_partial((HOST, 40002), (BOX_LAN, 9100), SYN, &[], &[]);
    let out = offloaded(&mut h, INSIDE, lan4(syn.clone()), PARTIAL);
    assert_eq!(out.verdict, Verdict::Consumed);
    let mut buf = vec![0u8; 2048];
    let d = h.engine.pop_local(&mut buf).expect("delivered");
    assert_eq!(d.len, 40);
    assert_checksums(&eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV4, &buf[..d.len]));
    let big = tcp4_partial((HOST, 40002), (BOX_LAN, 9100), ACK, &[], &payload());
    let out = offloaded(&mut h, INSIDE, lan4(big), gso(20 + 20 + 1448));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::GsoNotBuffered));
    assert!(h.engine.pop_local(&mut buf).is_none());
}
