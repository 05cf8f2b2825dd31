//! Test support: frames built with pnet (an implementation independent of natbox's own
//! `wire` module, so a symmetric bug cannot hide), checksum verification with pnet's
//! checksum code, and a harness that drives an `Engine` with a virtual clock in the
//! DESIGN.md topology (lan 10.10.0.0/24 + 2001:db8:10::/64, wan 198.51.100.0/24 +
//! 2001:db8:ff::/64, box at .1/::1 inside and .10/::10 outside).
#![allow(dead_code)]

use natbox_core::engine::{Engine, Frame, PortId, PortSetup, Roles, Verdict};
use natbox_core::wire::ethernet::Mac;
use pnet_packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use pnet_packet::util;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

/// The two-port topology's ports (`engine::port::layout`: `[inside]` then `[outside]`).
pub const INSIDE: PortId = PortId(0);
pub const OUTSIDE: PortId = PortId(1);

pub const BOX_LAN_MAC: Mac = Mac([0x02, 0, 0, 0, 0x01, 0x01]);
pub const BOX_WAN_MAC: Mac = Mac([0x02, 0, 0, 0, 0x02, 0x01]);
pub const HOST_MAC: Mac = Mac([0x02, 0, 0, 0, 0x01, 0x02]);
pub const HOST2_MAC: Mac = Mac([0x02, 0, 0, 0, 0x01, 0x03]);
pub const GW_MAC: Mac = Mac([0x02, 0, 0, 0, 0x02, 0x02]);

pub const BOX_LAN: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
pub const HOST: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 2);
pub const HOST2: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 3);
pub const PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const GW: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// A host "on the internet", reached through the gateway.
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
pub const REMOTE2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 6);

pub fn host6() -> Ipv6Addr {
    "2001:db8:10::2".parse().unwrap()
}
pub fn box_lan6() -> Ipv6Addr {
    "2001:db8:10::1".parse().unwrap()
}
pub fn box_wan6() -> Ipv6Addr {
    "2001:db8:ff::10".parse().unwrap()
}
pub fn gw6() -> Ipv6Addr {
    "2001:db8:ff::1".parse().unwrap()
}
pub fn remote6() -> Ipv6Addr {
    "2001:db8:77::5".parse().unwrap()
}

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// The example configuration of the repository (the demo/test topology).
pub fn example_toml() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../natbox.toml")).unwrap()
}

/// The example configuration with `extra` TOML appended inside the named tables,
/// e.g. `config_with("[nat]\nfiltering = \"address-dependent\"")` — appended keys
/// override nothing, so pass only keys the example does not set, or use `edit`.
pub fn config() -> firmware_config::Config {
    firmware_config::from_toml(&example_toml()).expect("example config is valid")
}

// ---- frame builders (pnet) ----

pub fn eth(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 14 + payload.len()];
    {
        let mut e = pnet_packet::ethernet::MutableEthernetPacket::new(&mut b).unwrap();
        e.set_destination(pnet_base::MacAddr::from(dst.0));
        e.set_source(pnet_base::MacAddr::from(src.0));
        e.set_ethertype(pnet_packet::ethernet::EtherType(ethertype));
    }
    b[14..].copy_from_slice(payload);
    b
}

/// An IPv4 datagram with a correct header checksum (DF set, TTL 64).
pub fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpNextHeaderProtocol,
    payload: &[u8],
) -> Vec<u8> {
    ipv4_full(src, dst, protocol, payload, 64, 0x1234, 0x4000)
}

/// An IPv4 datagram with explicit TTL, identification and flags/fragment-offset word.
pub fn ipv4_full(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpNextHeaderProtocol,
    payload: &[u8],
    ttl: u8,
    ident: u16,
    flags_frag: u16,
) -> Vec<u8> {
    let mut b = vec![0u8; 20 + payload.len()];
    {
        let mut p = pnet_packet::ipv4::MutableIpv4Packet::new(&mut b).unwrap();
        p.set_version(4);
        p.set_header_length(5);
        p.set_total_length((20 + payload.len()) as u16);
        p.set_identification(ident);
        p.set_flags((flags_frag >> 13) as u8);
        p.set_fragment_offset(flags_frag & 0x1fff);
        p.set_ttl(ttl);
        p.set_next_level_protocol(protocol);
        p.set_source(src);
        p.set_destination(dst);
    }
    b[20..].copy_from_slice(payload);
    let c = util::checksum(&b[..20], 5);
    b[10..12].copy_from_slice(&c.to_be_bytes());
    b
}

pub fn udp_segment(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 8 + payload.len()];
    {
        let mut u = pnet_packet::udp::MutableUdpPacket::new(&mut b).unwrap();
        u.set_source(sport);
        u.set_destination(dport);
        u.set_length((8 + payload.len()) as u16);
    }
    b[8..].copy_from_slice(payload);
    b
}

/// A UDP/IPv4 datagram with a correct UDP checksum.
pub fn udp4(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let mut u = udp_segment(src.port(), dst.port(), payload);
    let c = util::ipv4_checksum(&u, 3, &[], src.ip(), dst.ip(), IpNextHeaderProtocols::Udp);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(*src.ip(), *dst.ip(), IpNextHeaderProtocols::Udp, &u)
}

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const RST: u8 = 0x04;

/// A TCP segment (checksum left zero). An ACK acknowledges `seq + 1`: the fixed-seq
/// helpers below give both ends the same ISN, so that is the peer's SYN, and the box's
/// sequence tracking sees a consistent connection.
pub fn tcp_segment(
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let ack = if flags & ACK != 0 {
        seq.wrapping_add(1)
    } else {
        0
    };
    tcp_segment_acked((sport, dport), flags, seq, ack, options, payload)
}

/// A TCP segment (checksum left zero) with every number chosen.
pub fn tcp_segment_acked(
    (sport, dport): (u16, u16),
    flags: u8,
    seq: u32,
    ack: u32,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let hl = 20 + options.len();
    assert_eq!(hl % 4, 0, "options must pad to 4 bytes");
    let mut b = vec![0u8; hl + payload.len()];
    {
        let mut t = pnet_packet::tcp::MutableTcpPacket::new(&mut b).unwrap();
        t.set_source(sport);
        t.set_destination(dport);
        t.set_sequence(seq);
        t.set_acknowledgement(ack);
        t.set_data_offset((hl / 4) as u8);
        t.set_flags(flags);
        t.set_window(65535);
    }
    b[20..hl].copy_from_slice(options);
    b[hl..].copy_from_slice(payload);
    b
}

/// The ISN of every segment `tcp4`/`tcp6` make, on both ends.
pub const ISN: u32 = 1000;

/// A TCP/IPv4 segment with a correct checksum.
pub fn tcp4(src: SocketAddrV4, dst: SocketAddrV4, flags: u8, options: &[u8]) -> Vec<u8> {
    let mut t = tcp_segment(src.port(), dst.port(), flags, ISN, options, b"");
    let c = util::ipv4_checksum(&t, 8, &[], src.ip(), dst.ip(), IpNextHeaderProtocols::Tcp);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(*src.ip(), *dst.ip(), IpNextHeaderProtocols::Tcp, &t)
}

/// A TCP/IPv4 segment at `seq` carrying `payload`, acknowledging the peer's SYN of a
/// connection `tcp4` opened (`ISN + 1`).
pub fn tcp4_at(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    flags: u8,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let ports = (src.port(), dst.port());
    let mut t = tcp_segment_acked(ports, flags, seq, ISN + 1, &[], payload);
    let c = util::ipv4_checksum(&t, 8, &[], src.ip(), dst.ip(), IpNextHeaderProtocols::Tcp);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(*src.ip(), *dst.ip(), IpNextHeaderProtocols::Tcp, &t)
}

/// An ICMPv4 echo request (or reply) with a correct checksum.
pub fn echo4(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16, reply: bool) -> Vec<u8> {
    let mut m = vec![if reply { 0 } else { 8 }, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"natbox-ping-data");
    let c = util::checksum(&m, 1);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, IpNextHeaderProtocols::Icmp, &m)
}

/// An ICMPv4 error of `kind` (type, code) quoting `offending` (an IPv4 datagram).
pub fn icmp4_error(src: Ipv4Addr, dst: Ipv4Addr, kind: (u8, u8), offending: &[u8]) -> Vec<u8> {
    icmp4_error_rest(src, dst, kind, [0; 4], offending)
}

/// `icmp4_error` with its rest-of-header (e.g. the next-hop MTU of RFC 1191).
pub fn icmp4_error_rest(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    kind: (u8, u8),
    rest: [u8; 4],
    offending: &[u8],
) -> Vec<u8> {
    let mut m = vec![kind.0, kind.1, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(offending);
    let c = util::checksum(&m, 1);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, IpNextHeaderProtocols::Icmp, &m)
}

/// An IPv6 packet (hop limit 64).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: IpNextHeaderProtocol, payload: &[u8]) -> Vec<u8> {
    ipv6_hops(src, dst, next, payload, 64)
}

pub fn ipv6_hops(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: IpNextHeaderProtocol,
    payload: &[u8],
    hops: u8,
) -> Vec<u8> {
    let mut b = vec![0u8; 40 + payload.len()];
    {
        let mut p = pnet_packet::ipv6::MutableIpv6Packet::new(&mut b).unwrap();
        p.set_version(6);
        p.set_payload_length(payload.len() as u16);
        p.set_next_header(next);
        p.set_hop_limit(hops);
        p.set_source(src);
        p.set_destination(dst);
    }
    b[40..].copy_from_slice(payload);
    b
}

pub fn udp6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = udp_segment(sport, dport, payload);
    let c = util::ipv6_checksum(&u, 3, &[], &src, &dst, IpNextHeaderProtocols::Udp);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    ipv6(src, dst, IpNextHeaderProtocols::Udp, &u)
}

pub fn tcp6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = tcp_segment(sport, dport, flags, ISN, &[], b"");
    let c = util::ipv6_checksum(&t, 8, &[], &src, &dst, IpNextHeaderProtocols::Tcp);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ipv6(src, dst, IpNextHeaderProtocols::Tcp, &t)
}

/// `tcp4_at` for IPv6.
pub fn tcp6_at(
    (src, sport): (Ipv6Addr, u16),
    (dst, dport): (Ipv6Addr, u16),
    flags: u8,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = tcp_segment_acked((sport, dport), flags, seq, ISN + 1, &[], payload);
    let c = util::ipv6_checksum(&t, 8, &[], &src, &dst, IpNextHeaderProtocols::Tcp);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ipv6(src, dst, IpNextHeaderProtocols::Tcp, &t)
}

/// An ICMPv6 message of `ty`/`code` with a 4-byte rest-of-header and a body.
pub fn icmp6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: u8,
    code: u8,
    rest: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    icmp6_hops(src, dst, ty, code, rest, body, 64)
}

pub fn icmp6_hops(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: u8,
    code: u8,
    rest: [u8; 4],
    body: &[u8],
    hops: u8,
) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let c = util::ipv6_checksum(&m, 1, &[], &src, &dst, IpNextHeaderProtocols::Icmpv6);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv6_hops(src, dst, IpNextHeaderProtocols::Icmpv6, &m, hops)
}

pub fn echo6(src: Ipv6Addr, dst: Ipv6Addr, id: u16, reply: bool) -> Vec<u8> {
    let mut rest = [0u8; 4];
    rest[..2].copy_from_slice(&id.to_be_bytes());
    rest[3] = 1;
    icmp6(
        src,
        dst,
        if reply { 129 } else { 128 },
        0,
        rest,
        b"natbox-ping6",
    )
}

/// An ARP request from `(mac, ip)` for `target`.
pub fn arp_request(mac: Mac, ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0u8; 28];
    {
        let mut p = pnet_packet::arp::MutableArpPacket::new(&mut a).unwrap();
        p.set_hardware_type(pnet_packet::arp::ArpHardwareTypes::Ethernet);
        p.set_protocol_type(pnet_packet::ethernet::EtherTypes::Ipv4);
        p.set_hw_addr_len(6);
        p.set_proto_addr_len(4);
        p.set_operation(pnet_packet::arp::ArpOperations::Request);
        p.set_sender_hw_addr(pnet_base::MacAddr::from(mac.0));
        p.set_sender_proto_addr(ip);
        p.set_target_proto_addr(target);
    }
    eth(Mac::BROADCAST, mac, ETHERTYPE_ARP, &a)
}

/// A Neighbor Solicitation from `(mac, src)` for `target`, sent to its solicited-node
/// group.
pub fn neighbor_solicit(mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::from([
        0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ]);
    let mut body = target.octets().to_vec();
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&mac.0);
    let ip = icmp6_hops(src, group, 135, 0, [0; 4], &body, 255);
    eth(
        Mac([0x33, 0x33, 0xff, t[13], t[14], t[15]]),
        mac,
        ETHERTYPE_IPV6,
        &ip,
    )
}

/// An ARP reply from `(mac, ip)` to `(target_mac, target)`.
pub fn arp_reply(mac: Mac, ip: Ipv4Addr, target_mac: Mac, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0u8; 28];
    {
        let mut p = pnet_packet::arp::MutableArpPacket::new(&mut a).unwrap();
        p.set_hardware_type(pnet_packet::arp::ArpHardwareTypes::Ethernet);
        p.set_protocol_type(pnet_packet::ethernet::EtherTypes::Ipv4);
        p.set_hw_addr_len(6);
        p.set_proto_addr_len(4);
        p.set_operation(pnet_packet::arp::ArpOperations::Reply);
        p.set_sender_hw_addr(pnet_base::MacAddr::from(mac.0));
        p.set_sender_proto_addr(ip);
        p.set_target_hw_addr(pnet_base::MacAddr::from(target_mac.0));
        p.set_target_proto_addr(target);
    }
    eth(target_mac, mac, ETHERTYPE_ARP, &a)
}

/// A solicited Neighbor Advertisement from `(mac, src)` for `src` itself, to `dst` at
/// `dst_mac`, with the Target Link-Layer Address option.
pub fn neighbor_advert(mac: Mac, src: Ipv6Addr, dst_mac: Mac, dst: Ipv6Addr) -> Vec<u8> {
    let mut body = src.octets().to_vec();
    body.extend_from_slice(&[2, 1]);
    body.extend_from_slice(&mac.0);
    // Solicited + Override.
    let ip = icmp6_hops(src, dst, 136, 0, [0x60, 0, 0, 0], &body, 255);
    eth(dst_mac, mac, ETHERTYPE_IPV6, &ip)
}

/// Splits an IPv4 datagram (20-byte header) into two fragments: the first carries
/// `first_len` payload bytes (a multiple of 8). DF is cleared, `ident` set.
pub fn fragment4(datagram: &[u8], ident: u16, first_len: usize) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(first_len % 8, 0);
    let src = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    let dst = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    let protocol = IpNextHeaderProtocol(datagram[9]);
    let ttl = datagram[8];
    let payload = &datagram[20..];
    let first = ipv4_full(
        src,
        dst,
        protocol,
        &payload[..first_len],
        ttl,
        ident,
        0x2000,
    );
    let rest = ipv4_full(
        src,
        dst,
        protocol,
        &payload[first_len..],
        ttl,
        ident,
        (first_len / 8) as u16,
    );
    (first, rest)
}

/// Recomputes the header checksum of an IPv4 datagram after a test edited it.
pub fn fix_ipv4_checksum(ip: &mut [u8]) {
    let hl = usize::from(ip[0] & 0xf) * 4;
    ip[10..12].fill(0);
    let c = util::checksum(&ip[..hl], 5);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The ICMP header (type, code, rest-of-header) and the quoted datagram of an ICMPv4
/// error datagram.
pub fn icmp_error_parts(ip: &[u8]) -> (u8, u8, [u8; 4], &[u8]) {
    let hl = usize::from(ip[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let icmp = &ip[hl..total];
    (icmp[0], icmp[1], icmp[4..8].try_into().unwrap(), &icmp[8..])
}

/// `datagram` as it looks after one hop: TTL decremented, header checksum redone.
pub fn after_one_hop(datagram: &[u8]) -> Vec<u8> {
    let mut d = datagram.to_vec();
    d[8] -= 1;
    fix_ipv4_checksum(&mut d);
    d
}

/// The example configuration with `pool` as the NAT pool.
pub fn pool_config(pool: &[Ipv4Addr]) -> firmware_config::Config {
    let mut c = config();
    c.nat.pool = pool.to_vec();
    c
}

// ---- checks (pnet's checksum code) ----

/// Verifies every checksum of an Ethernet frame carrying IPv4 or IPv6: the IP header,
/// and TCP/UDP/ICMP over the whole payload. Panics with a description on failure.
pub fn assert_checksums(frame: &[u8]) {
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let ip = &frame[14..];
    match ethertype {
        ETHERTYPE_IPV4 => {
            let hl = usize::from(ip[0] & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let stored = u16::from_be_bytes([ip[10], ip[11]]);
            assert_eq!(util::checksum(&ip[..hl], 5), stored, "IPv4 header checksum");
            let frag = u16::from_be_bytes([ip[6], ip[7]]);
            if frag & 0x3fff != 0 {
                return; // a fragment's transport checksum covers other fragments
            }
            let l4 = &ip[hl..total];
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            match ip[9] {
                6 => assert_eq!(
                    util::ipv4_checksum(l4, 8, &[], &src, &dst, IpNextHeaderProtocols::Tcp),
                    u16::from_be_bytes([l4[16], l4[17]]),
                    "TCP checksum"
                ),
                17 => {
                    let stored = u16::from_be_bytes([l4[6], l4[7]]);
                    if stored != 0 {
                        let c =
                            util::ipv4_checksum(l4, 3, &[], &src, &dst, IpNextHeaderProtocols::Udp);
                        assert_eq!(if c == 0 { 0xffff } else { c }, stored, "UDP checksum");
                    }
                }
                1 => assert_eq!(
                    util::checksum(l4, 1),
                    u16::from_be_bytes([l4[2], l4[3]]),
                    "ICMP checksum"
                ),
                _ => {}
            }
        }
        ETHERTYPE_IPV6 => {
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
            let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let l4 = &ip[40..40 + len];
            let (proto, skip) = match ip[6] {
                6 => (IpNextHeaderProtocols::Tcp, 8),
                17 => (IpNextHeaderProtocols::Udp, 3),
                58 => (IpNextHeaderProtocols::Icmpv6, 1),
                _ => return,
            };
            let stored = u16::from_be_bytes([l4[skip * 2], l4[skip * 2 + 1]]);
            assert_eq!(
                util::ipv6_checksum(l4, skip, &[], &src, &dst, proto),
                stored,
                "IPv6 upper-layer checksum"
            );
        }
        other => panic!("not an IP frame: ethertype {other:#06x}"),
    }
}

// ---- the harness ----

/// The two-port harness's live neighbours: port, MAC, IPv4 address (they answer ARP).
const PEERS4: [(PortId, Mac, Ipv4Addr); 3] = [
    (INSIDE, HOST_MAC, HOST),
    (INSIDE, HOST2_MAC, HOST2),
    (OUTSIDE, GW_MAC, GW),
];

/// The two-port harness's live IPv6 neighbours (they answer Neighbor Solicitations).
fn peers6() -> Vec<(PortId, Mac, Ipv6Addr)> {
    vec![(INSIDE, HOST_MAC, host6()), (OUTSIDE, GW_MAC, gw6())]
}

// ---- the one-armed topology (issue #16) ----

/// The one-armed box's only port: `[outside]` with both roles.
pub const ARM: PortId = PortId(0);
/// The one-armed segment's default gateway (a "VPC router"): outside the inside
/// prefix 10.10.0.0/25, so its own packets are outside traffic.
pub const ARM_GW: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 254);
/// A host on the segment outside the inside prefix (neither translated nor the box's).
pub const ARM_STRANGER: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 200);

/// The one-armed gateway's IPv6 address: link-local only, as a cloud router's.
pub fn arm_gw6() -> Ipv6Addr {
    "fe80::1".parse().unwrap()
}

/// A one-armed configuration (tests/e2e/natbox-one-armed.toml): one port at
/// 10.10.0.1/24 and 2001:db8:10::1/64, gateways 10.10.0.254 and fe80::1 on the same
/// segment, the pool = the port's own address, inside prefixes 10.10.0.0/25 and
/// 2001:db8:10::/64.
pub fn one_armed_config() -> firmware_config::Config {
    let toml = r#"
hostname = "natbox"
[outside]
port = "seg0"
ipv4 = "10.10.0.1/24"
ipv6 = "2001:db8:10::1/64"
gateway4 = "10.10.0.254"
gateway6 = "fe80::1"
[nat]
pool = ["10.10.0.1"]
inside_prefixes = ["10.10.0.0/25"]
filtering = "endpoint-independent"
mss_clamp = 1460
[ipv6]
inside_prefixes = ["2001:db8:10::/64"]
"#;
    firmware_config::from_toml(toml).expect("one-armed config is valid")
}

/// The one-armed harness's live neighbours, all on the one port.
const ARM_PEERS4: [(PortId, Mac, Ipv4Addr); 3] = [
    (ARM, HOST_MAC, HOST),
    (ARM, HOST2_MAC, HOST2),
    (ARM, GW_MAC, ARM_GW),
];

fn arm_peers6() -> Vec<(PortId, Mac, Ipv6Addr)> {
    vec![(ARM, HOST_MAC, host6()), (ARM, GW_MAC, arm_gw6())]
}

/// An engine in the test topology with a virtual clock. Neighbours (the lan hosts and
/// the wan gateway) are taught by ARP/NDP requests addressed to the box, as real hosts
/// would, and while the clock advances they answer the box's ARP/NDP probes, as live
/// hosts do; addresses other than theirs never answer.
pub struct Harness {
    pub engine: Engine,
    /// Milliseconds of virtual time.
    pub now: u64,
    /// Frames the engine sent on its own, not yet taken by `transmitted`.
    sent: Vec<(PortId, Vec<u8>)>,
    /// The live neighbours (port, MAC, address): they answer ARP / NDP.
    peers4: Vec<(PortId, Mac, Ipv4Addr)>,
    peers6: Vec<(PortId, Mac, Ipv6Addr)>,
}

/// The result of sending one frame.
#[derive(Debug)]
pub struct Out {
    pub verdict: Verdict,
    /// The frame as the engine left it (the rewritten or reply frame).
    pub frame: Vec<u8>,
}

impl Out {
    /// The IP packet (after the Ethernet header).
    pub fn ip(&self) -> &[u8] {
        &self.frame[14..]
    }
}

// `from_lan`/`from_wan` name the side a frame arrives from, not a conversion.
#[allow(clippy::wrong_self_convention)]
impl Harness {
    pub fn new(config: firmware_config::Config) -> Harness {
        Harness::new_shard(config, natbox_core::shard::Shard::ONLY)
    }

    /// `new` for engine shard `shard` (`Engine::new_shard`).
    pub fn new_shard(config: firmware_config::Config, shard: natbox_core::shard::Shard) -> Harness {
        let setups = [
            PortSetup { mac: BOX_LAN_MAC },
            PortSetup { mac: BOX_WAN_MAC },
        ];
        let h = Harness::with_peers(config, &setups, shard, PEERS4.to_vec(), peers6());
        assert_eq!(h.engine.port_info(INSIDE).roles, Roles::INSIDE);
        assert_eq!(h.engine.port_info(OUTSIDE).roles, Roles::OUTSIDE);
        h
    }

    pub fn default() -> Harness {
        Harness::new(config())
    }

    /// An engine in the one-armed topology (`one_armed_config` or a variant of it):
    /// one port `ARM` with both roles (MAC `BOX_LAN_MAC`), the lan hosts and the
    /// gateway `ARM_GW` / `arm_gw6()` (MAC `GW_MAC`) on it.
    pub fn one_armed(config: firmware_config::Config) -> Harness {
        let setups = [PortSetup { mac: BOX_LAN_MAC }];
        let only = natbox_core::shard::Shard::ONLY;
        let h = Harness::with_peers(config, &setups, only, ARM_PEERS4.to_vec(), arm_peers6());
        assert_eq!(h.engine.port_info(ARM).roles, Roles::BOTH);
        h
    }

    /// Builds the engine (shard `shard`) and teaches it the neighbours: each asks for
    /// the box's address on its port, as real hosts do.
    fn with_peers(
        config: firmware_config::Config,
        setups: &[PortSetup],
        shard: natbox_core::shard::Shard,
        peers4: Vec<(PortId, Mac, Ipv4Addr)>,
        peers6: Vec<(PortId, Mac, Ipv6Addr)>,
    ) -> Harness {
        let mut h = Harness {
            engine: Engine::new_shard(&config, setups, shard),
            now: 1_000_000,
            sent: Vec::new(),
            peers4,
            peers6,
        };
        h.teach_neighbours();
        h
    }

    /// The neighbours announce themselves to the box (ARP and NDP requests for its
    /// addresses), as after start-up or a rebuild of its tables.
    pub fn teach_neighbours(&mut self) {
        let h = self;
        for (port, mac, ip) in h.peers4.clone() {
            let (_, target) = h.box4(port);
            let out = h.frame(port, arp_request(mac, ip, target));
            assert!(
                matches!(out.verdict, Verdict::Reply(_)),
                "ARP setup: {:?}",
                out.verdict
            );
        }
        if h.engine.config().ipv6.enabled {
            for (port, mac, ip) in h.peers6.clone() {
                let (_, target) = h.box6(port);
                let out = h.frame(port, neighbor_solicit(mac, ip, target));
                assert!(
                    matches!(out.verdict, Verdict::Reply(_)),
                    "NDP setup: {:?}",
                    out.verdict
                );
            }
        }
    }

    /// The box's MAC and IPv4 address on `port`.
    fn box4(&self, port: PortId) -> (Mac, Ipv4Addr) {
        let p = self.engine.port_info(port);
        (p.mac, p.ipv4.expect("harness ports have IPv4").addr())
    }

    /// The box's MAC and global IPv6 address on `port`.
    fn box6(&self, port: PortId) -> (Mac, Ipv6Addr) {
        let p = self.engine.port_info(port);
        (p.mac, p.ipv6.expect("harness ports have IPv6").addr())
    }

    /// Every live neighbour answers as if the box had just asked (an ARP reply or a
    /// solicited NA to the box): their entries are REACHABLE (RFC 4861 section 7.3),
    /// as on a network after the first probe, rather than STALE as `new` leaves them.
    pub fn confirm_neighbours(&mut self) {
        for (port, mac, ip) in self.peers4.clone() {
            let (box_mac, box_ip) = self.box4(port);
            let out = self.frame(port, arp_reply(mac, ip, box_mac, box_ip));
            assert_eq!(out.verdict, Verdict::Consumed, "ARP reply from {ip}");
        }
        if self.engine.config().ipv6.enabled {
            for (port, mac, ip) in self.peers6.clone() {
                let (box_mac, box_ip) = self.box6(port);
                let out = self.frame(port, neighbor_advert(mac, ip, box_mac, box_ip));
                assert_eq!(out.verdict, Verdict::Consumed, "NA from {ip}");
            }
        }
    }

    /// Sends a whole Ethernet frame in on `port`.
    pub fn frame(&mut self, port: PortId, mut bytes: Vec<u8>) -> Out {
        let len = bytes.len();
        bytes.resize(len.max(2048), 0);
        let mut frame = Frame {
            buf: &mut bytes,
            len,
        };
        let verdict = self.engine.process(port, &mut frame, self.now);
        let n = frame.len;
        bytes.truncate(n);
        Out {
            verdict,
            frame: bytes,
        }
    }

    /// Sends an IPv4 datagram from a lan host (by source address) into the inside port.
    pub fn from_lan(&mut self, ip: Vec<u8>) -> Out {
        let mac = if ip[12..16] == HOST2.octets() {
            HOST2_MAC
        } else {
            HOST_MAC
        };
        self.frame(INSIDE, eth(BOX_LAN_MAC, mac, ETHERTYPE_IPV4, &ip))
    }

    /// Sends an IPv4 datagram from the wan gateway into the outside port.
    pub fn from_wan(&mut self, ip: Vec<u8>) -> Out {
        self.frame(OUTSIDE, eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV4, &ip))
    }

    pub fn from_lan6(&mut self, ip: Vec<u8>) -> Out {
        self.frame(INSIDE, eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV6, &ip))
    }

    pub fn from_wan6(&mut self, ip: Vec<u8>) -> Out {
        self.frame(OUTSIDE, eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV6, &ip))
    }

    /// Advances the virtual clock and runs the timers (in 100 ms steps, like the
    /// dataplane's poll interval, but at most 10 000 steps). The live neighbours answer
    /// the probes the engine sends meanwhile.
    pub fn advance_secs(&mut self, secs: u64) {
        let end = self.now + secs * 1000;
        let step = (secs * 1000 / 10_000).max(100);
        while self.now < end {
            self.now = (self.now + step).min(end);
            self.engine.poll(self.now);
            self.answer_probes();
        }
    }

    /// Drains the frames the engine made on its own (including any probes the live
    /// neighbours answered only if they were sent outside `advance_secs`).
    pub fn transmitted(&mut self) -> Vec<(PortId, Vec<u8>)> {
        let mut out = std::mem::take(&mut self.sent);
        out.extend(self.pop_all());
        out
    }

    fn pop_all(&mut self) -> Vec<(PortId, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 9100];
        while let Some((port, n)) = self.engine.pop_transmit(&mut buf) {
            out.push((port, buf[..n].to_vec()));
        }
        out
    }

    /// Answers the engine's ARP requests and Neighbor Solicitations for the live
    /// neighbours; keeps every other frame for `transmitted`.
    fn answer_probes(&mut self) {
        for (port, f) in self.pop_all() {
            if !self.answer_probe(port, &f) {
                self.sent.push((port, f));
            }
        }
    }

    fn answer_probe(&mut self, port: PortId, f: &[u8]) -> bool {
        let ethertype = u16::from_be_bytes([f[12], f[13]]);
        let box_mac = Mac(f[6..12].try_into().unwrap());
        if ethertype == ETHERTYPE_ARP && f[21] == 1 {
            let sender = Ipv4Addr::new(f[28], f[29], f[30], f[31]);
            let target = Ipv4Addr::new(f[38], f[39], f[40], f[41]);
            let peer = self.peers4.iter().find(|p| p.0 == port && p.2 == target);
            if let Some(&(_, mac, ip)) = peer {
                self.frame(port, arp_reply(mac, ip, box_mac, sender));
                return true;
            }
        }
        if ethertype == ETHERTYPE_IPV6 && f[20] == 58 && f[54] == 135 {
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
            let target = Ipv6Addr::from(<[u8; 16]>::try_from(&f[62..78]).unwrap());
            let peer = self.peers6.iter().find(|p| p.0 == port && p.2 == target);
            if let Some(&(_, mac, ip)) = peer {
                self.frame(port, neighbor_advert(mac, ip, box_mac, src));
                return true;
            }
        }
        false
    }

    pub fn drops(&self, reason: natbox_core::engine::stats::DropReason) -> u64 {
        self.engine.stats().drops_for(reason)
    }
}

/// Source and destination (address, port) of a TCP/UDP IPv4 datagram.
pub fn endpoints4(ip: &[u8]) -> (SocketAddrV4, SocketAddrV4) {
    let hl = usize::from(ip[0] & 0xf) * 4;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let sport = u16::from_be_bytes([ip[hl], ip[hl + 1]]);
    let dport = u16::from_be_bytes([ip[hl + 2], ip[hl + 3]]);
    (SocketAddrV4::new(src, sport), SocketAddrV4::new(dst, dport))
}

pub fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

/// The echo identifier of an ICMPv4 echo datagram.
pub fn echo_id4(ip: &[u8]) -> u16 {
    let hl = usize::from(ip[0] & 0xf) * 4;
    u16::from_be_bytes([ip[hl + 4], ip[hl + 5]])
}

/// Source and destination addresses of an IPv4 datagram.
pub fn addrs4(ip: &[u8]) -> (Ipv4Addr, Ipv4Addr) {
    (
        Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
    )
}

/// Verifies the IPv4 header checksum and the transport checksum of a datagram quoted
/// whole inside an ICMP error (the quote must not be cut short).
pub fn assert_quoted_checksums(quoted: &[u8]) {
    let mut frame = vec![0u8; 14];
    frame[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    frame.extend_from_slice(quoted);
    assert_checksums(&frame);
}
