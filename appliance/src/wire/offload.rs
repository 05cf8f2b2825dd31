//! Completing transport checksums that a virtual NIC left partial.
//!
//! With checksum offload, a local sender hands veth/virtio a TCP or UDP segment whose
//! checksum field holds only the pseudo-header sum (CHECKSUM_PARTIAL; AF_PACKET flags
//! it TP_STATUS_CSUMNOTREADY). A router that forwards the frame out of a raw socket
//! must compute the real checksum first, or the receiver drops the segment. Here the
//! checksum is recomputed from scratch over the pseudo-header and the whole segment.

use super::checksum::Sum;
use super::{ethernet, ipv4, ipv6, proto, set_be16, tcp, udp};

/// Recomputes the TCP/UDP checksum of an Ethernet frame carrying an unfragmented IPv4
/// or IPv6 datagram. Returns false (frame unchanged) for anything else.
pub fn complete_checksum(frame: &mut [u8]) -> bool {
    let Ok(eth) = ethernet::Frame::new_checked(&frame[..]) else {
        return false;
    };
    let ethertype = eth.ethertype();
    let ip = &mut frame[ethernet::HEADER_LEN..];
    match ethertype {
        ethernet::ethertype::IPV4 => {
            let Ok(p) = ipv4::Packet::new_checked(&ip[..]) else {
                return false;
            };
            if p.is_fragment() {
                return false;
            }
            let (pseudo, start, end, protocol) = (
                p.pseudo_header(),
                p.header_len(),
                p.total_len(),
                p.protocol(),
            );
            fill(&mut ip[start..end], protocol, pseudo)
        }
        ethernet::ethertype::IPV6 => {
            let Ok(p) = ipv6::Packet::new_checked(&ip[..]) else {
                return false;
            };
            let Ok(upper) = p.upper_layer() else {
                return false;
            };
            if upper.fragment.is_some() {
                return false;
            }
            let end = p.total_len();
            let pseudo = p.pseudo_header(upper.protocol, end - upper.offset);
            fill(&mut ip[upper.offset..end], upper.protocol, pseudo)
        }
        _ => false,
    }
}

fn fill(segment: &mut [u8], protocol: u8, pseudo: Sum) -> bool {
    let at = match protocol {
        proto::TCP if segment.len() >= tcp::MIN_HEADER_LEN => tcp::CHECKSUM_OFFSET,
        proto::UDP if segment.len() >= udp::HEADER_LEN => udp::CHECKSUM_OFFSET,
        _ => return false,
    };
    set_be16(segment, at, 0);
    let c = pseudo.add_bytes(segment).finish();
    // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
    let c = if c == 0 && protocol == proto::UDP {
        0xffff
    } else {
        c
    };
    set_be16(segment, at, c);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::pseudo_v4;
    use std::net::Ipv4Addr;

    #[test]
    fn completes_partial_udp_checksum() {
        let (src, dst) = (Ipv4Addr::new(10, 10, 0, 2), Ipv4Addr::new(203, 0, 113, 5));
        let payload = b"partial";
        let udp_len = 8 + payload.len();
        let mut f = vec![0u8; 14];
        ethernet::write_header(
            &mut f,
            ethernet::Mac::BROADCAST,
            ethernet::Mac::default(),
            ethernet::ethertype::IPV4,
        );
        let mut ip = vec![0u8; 20];
        ipv4::write_header(
            &mut ip,
            &ipv4::Header {
                src,
                dst,
                protocol: proto::UDP,
                ttl: 64,
                ident: 0,
                payload_len: udp_len,
            },
        );
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, udp_len as u8]);
        // What the kernel leaves: the folded pseudo-header sum, not inverted.
        let partial = pseudo_v4(src, dst, proto::UDP, udp_len as u16).fold();
        f.extend_from_slice(&partial.to_be_bytes());
        f.extend_from_slice(payload);
        assert!(complete_checksum(&mut f));
        let seg = &f[34..];
        assert_eq!(
            pseudo_v4(src, dst, proto::UDP, udp_len as u16)
                .add_bytes(seg)
                .finish(),
            0
        );
    }

    #[test]
    fn leaves_other_frames_alone() {
        let mut arp = vec![0u8; 42];
        ethernet::write_header(
            &mut arp,
            ethernet::Mac::BROADCAST,
            ethernet::Mac::default(),
            ethernet::ethertype::ARP,
        );
        let before = arp.clone();
        assert!(!complete_checksum(&mut arp));
        assert_eq!(arp, before);
        assert!(!complete_checksum(&mut [0u8; 5]));
    }
}
