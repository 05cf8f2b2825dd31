//! IP datagrams the box's services send and receive on their own behalf: UDP
//! datagrams (the NAT event log and the DHCPv4 and DHCPv6 clients, RFC 768), the
//! endpoints of TCP segments (the metadata fetch's, sorted from the responder's) and
//! ICMP / ICMPv6 echo
//! (RFC 792, RFC 4443 section 4), for IPv4 and IPv6, with correct checksums.
//! Control-plane code: these allocate, and run a few times a second at most.

use crate::wire::checksum;
use crate::wire::emit::IpRepr;
use crate::wire::{icmpv4, icmpv6, ipv4, ipv6, proto, tcp, udp};
use std::net::{IpAddr, SocketAddr};

/// Hop limit of datagrams the box originates.
const TTL: u8 = 64;

/// `l4` (a transport message) behind an IP header from `src` to `dst`, its checksum
/// filled in (`wire::emit`). `None` when the families differ.
fn datagram(src: IpAddr, dst: IpAddr, protocol: u8, l4: &[u8]) -> Option<Vec<u8>> {
    let ip = IpRepr {
        src,
        dst,
        protocol,
        hop_limit: TTL,
        ident: 0,
    };
    let mut packet = vec![0u8; ip.header_len()];
    packet.extend_from_slice(l4);
    let len = ip.emit(&mut packet, l4.len())?;
    packet.truncate(len);
    Some(packet)
}

/// A UDP datagram carrying `data`.
pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, data: &[u8]) -> Option<Vec<u8>> {
    let mut l4 = Vec::with_capacity(udp::HEADER_LEN + data.len());
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&((udp::HEADER_LEN + data.len()) as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(data);
    datagram(src, dst, proto::UDP, &l4)
}

/// The payload of `ip` if it is an unfragmented UDP-over-IPv4 datagram from port
/// `sport` to port `dport`.
pub fn udp4_payload(ip: &[u8], sport: u16, dport: u16) -> Option<&[u8]> {
    let p = ipv4::Packet::new_checked(ip).ok()?;
    if p.protocol() != proto::UDP || p.is_fragment() {
        return None;
    }
    let l4 = ip.get(p.header_len()..p.total_len())?;
    let u = udp::Packet::new_checked(l4).ok()?;
    (u.src_port() == sport && u.dst_port() == dport)
        .then(|| l4.get(udp::HEADER_LEN..))
        .flatten()
}

/// Source and destination of `ip` if it is an unfragmented TCP-over-IPv4 segment.
pub fn tcp4_endpoints(ip: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let p = ipv4::Packet::new_checked(ip).ok()?;
    if p.protocol() != proto::TCP || p.is_fragment() {
        return None;
    }
    let l4 = ip.get(p.header_len()..p.total_len())?;
    let port = |at: usize| Some(u16::from_be_bytes([*l4.get(at)?, *l4.get(at + 1)?]));
    Some((
        SocketAddr::new(p.src().into(), port(tcp::SRC_PORT_OFFSET)?),
        SocketAddr::new(p.dst().into(), port(tcp::DST_PORT_OFFSET)?),
    ))
}

/// The payload of `ip` if it is an unfragmented UDP-over-IPv6 datagram from port
/// `sport` to port `dport` (after any extension headers).
pub fn udp6_payload(ip: &[u8], sport: u16, dport: u16) -> Option<&[u8]> {
    let p = ipv6::Packet::new_checked(ip).ok()?;
    let upper = p.upper_layer().ok()?;
    if upper.protocol != proto::UDP || upper.fragment.is_some() {
        return None;
    }
    let l4 = ip.get(upper.offset..p.total_len())?;
    let u = udp::Packet::new_checked(l4).ok()?;
    (u.src_port() == sport && u.dst_port() == dport)
        .then(|| l4.get(udp::HEADER_LEN..))
        .flatten()
}

/// An echo request with identifier `ident`, sequence number `seq` and `data`.
pub fn echo_request(
    src: IpAddr,
    dst: IpAddr,
    ident: u16,
    seq: u16,
    data: &[u8],
) -> Option<Vec<u8>> {
    let (protocol, msg_type) = match dst {
        IpAddr::V4(_) => (proto::ICMP, icmpv4::ECHO_REQUEST),
        IpAddr::V6(_) => (proto::ICMPV6, icmpv6::ECHO_REQUEST),
    };
    let mut l4 = vec![0u8; icmpv4::HEADER_LEN];
    icmpv4::write_header(
        &mut l4,
        msg_type,
        0,
        u32::from(ident) << 16 | u32::from(seq),
    );
    l4.extend_from_slice(data);
    datagram(src, dst, protocol, &l4)
}

/// An echo reply, as a `ping` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    pub from: IpAddr,
    pub ident: u16,
    pub seq: u16,
    /// TTL / hop limit on arrival.
    pub ttl: u8,
    /// Bytes of the ICMP message (header and data).
    pub len: usize,
}

/// Parses an echo reply whose checksum verifies; `None` for anything else.
pub fn parse_echo_reply(ip: &[u8]) -> Option<EchoReply> {
    let (from, ttl, l4, valid) = match ip.first()? >> 4 {
        4 => {
            let p = ipv4::Packet::new_checked(ip).ok()?;
            let l4 = &ip[p.header_len()..p.total_len()];
            let valid = l4.first() == Some(&icmpv4::ECHO_REPLY) && checksum::checksum(l4) == 0;
            (IpAddr::V4(p.src()), p.ttl(), l4, valid)
        }
        6 => {
            let p = ipv6::Packet::new_checked(ip).ok()?;
            let upper = p.upper_layer().ok()?;
            let l4 = &ip[upper.offset..p.total_len()];
            let pseudo = checksum::pseudo_v6(&p.src(), &p.dst(), proto::ICMPV6, l4.len() as u32);
            let valid = upper.protocol == proto::ICMPV6
                && l4.first() == Some(&icmpv6::ECHO_REPLY)
                && pseudo.add_bytes(l4).finish() == 0;
            (IpAddr::V6(p.src()), p.hop_limit(), l4, valid)
        }
        _ => return None,
    };
    if !valid || l4.len() < icmpv4::HEADER_LEN {
        return None;
    }
    Some(EchoReply {
        from,
        ident: u16::from_be_bytes([l4[4], l4[5]]),
        seq: u16::from_be_bytes([l4[6], l4[7]]),
        ttl,
        len: l4.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a remote host does to an echo request: swap addresses, type 0 / 129.
    fn reflect(mut ip: Vec<u8>) -> Vec<u8> {
        match ip[0] >> 4 {
            4 => {
                let (s, d) = (ip[12..16].to_vec(), ip[16..20].to_vec());
                ip[12..16].copy_from_slice(&d);
                ip[16..20].copy_from_slice(&s);
                ip[20] = icmpv4::ECHO_REPLY;
                ip[22..24].copy_from_slice(&[0, 0]);
                let c = checksum::checksum(&ip[20..]);
                ip[22..24].copy_from_slice(&c.to_be_bytes());
            }
            _ => {
                let (s, d) = (ip[8..24].to_vec(), ip[24..40].to_vec());
                ip[8..24].copy_from_slice(&d);
                ip[24..40].copy_from_slice(&s);
                ip[40] = icmpv6::ECHO_REPLY;
                ip[42..44].copy_from_slice(&[0, 0]);
                let p = ipv6::Packet::new_checked(&ip[..]).unwrap();
                let c = checksum::pseudo_v6(&p.src(), &p.dst(), proto::ICMPV6, 16)
                    .add_bytes(&ip[40..])
                    .finish();
                ip[42..44].copy_from_slice(&c.to_be_bytes());
            }
        }
        ip
    }

    #[test]
    fn rfc792_echo_round_trip_v4_and_v6() {
        for (src, dst) in [
            ("198.51.100.10", "198.51.100.1"),
            ("2001:db8:ff::10", "2001:db8:ff::1"),
        ] {
            let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let req = echo_request(src, dst, 0x1234, 7, &[0xab; 8]).unwrap();
            let reply = parse_echo_reply(&reflect(req.clone())).expect("reply parses");
            assert_eq!(
                (reply.from, reply.ident, reply.seq, reply.ttl, reply.len),
                (dst, 0x1234, 7, 64, 16)
            );
            assert_eq!(parse_echo_reply(&req), None, "a request is not a reply");
            let mut bad = reflect(req);
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert_eq!(parse_echo_reply(&bad), None, "bad checksum");
        }
    }

    #[test]
    fn rfc768_udp_checksum_verifies() {
        let (src, dst): (IpAddr, IpAddr) =
            ("10.10.0.1".parse().unwrap(), "10.10.0.2".parse().unwrap());
        let d = udp(src, dst, 514, 514, b"hello").unwrap();
        assert_eq!(d.len(), 20 + 8 + 5);
        let p = ipv4::Packet::new_checked(&d[..]).unwrap();
        assert!(p.verify_checksum());
        let (IpAddr::V4(s), IpAddr::V4(t)) = (src, dst) else {
            unreachable!()
        };
        let sum = checksum::pseudo_v4(s, t, proto::UDP, 13)
            .add_bytes(&d[20..])
            .finish();
        assert_eq!(sum, 0);
        assert_eq!(udp(src, "::1".parse().unwrap(), 1, 2, b""), None);
    }
}
