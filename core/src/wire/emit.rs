//! Where the box's own packets get their IP header and their transport checksum: one
//! writer for both families (smoltcp's `Repr::emit` idea). The engine's replies, ICMP
//! errors and Neighbor Discovery messages and the services' datagrams all go through
//! `IpRepr::emit`; nothing else writes an IP header or a transport checksum from
//! scratch (translation only updates them incrementally, RFC 1624).
//!
//! Checksums: TCP and UDP over the pseudo-header of their family (RFC 9293 section
//! 3.1, RFC 768, RFC 8200 section 8.1), ICMPv6 likewise (RFC 4443 section 2.3), ICMPv4
//! over the message alone (RFC 792). A UDP checksum that computes to zero is sent as
//! all ones, since zero means "none" (RFC 768) and is not allowed over IPv6.

use super::checksum::{self, Sum};
use super::{ipv4, ipv6, proto};
use std::net::IpAddr;

/// The IP header of a packet the box sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRepr {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    /// TTL (IPv4) or hop limit (IPv6).
    pub hop_limit: u8,
    /// The IPv4 identification (unused for IPv6).
    pub ident: u16,
}

/// Where a protocol's checksum field sits in its header.
fn checksum_at(protocol: u8) -> Option<usize> {
    match protocol {
        proto::ICMP | proto::ICMPV6 => Some(2),
        proto::UDP => Some(6),
        proto::TCP => Some(16),
        _ => None,
    }
}

impl IpRepr {
    /// The header's length: 20 (IPv4, no options) or 40 (IPv6) bytes; 0 when the two
    /// addresses are of different families.
    pub fn header_len(&self) -> usize {
        match (self.src, self.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => ipv4::MIN_HEADER_LEN,
            (IpAddr::V6(_), IpAddr::V6(_)) => ipv6::HEADER_LEN,
            _ => 0,
        }
    }

    /// Writes the header at the start of `buf`, in front of the `payload_len`-byte
    /// transport message that already follows it there, and fills that message's
    /// checksum. Returns the packet's length; `None`, with nothing written, when the
    /// families differ, the buffer is shorter than the packet, or the message is
    /// shorter than its header's checksum field.
    pub fn emit(&self, buf: &mut [u8], payload_len: usize) -> Option<usize> {
        let at = self.header_len();
        let end = at.checked_add(payload_len)?;
        let field = checksum_at(self.protocol);
        if at == 0 || buf.len() < end || field.is_some_and(|f| payload_len < f + 2) {
            return None;
        }
        let pseudo = match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                ipv4::write_header(
                    buf,
                    &ipv4::Header {
                        src,
                        dst,
                        protocol: self.protocol,
                        ttl: self.hop_limit,
                        ident: self.ident,
                        payload_len,
                    },
                );
                if self.protocol == proto::ICMP {
                    Sum::default()
                } else {
                    checksum::pseudo_v4(src, dst, self.protocol, payload_len as u16)
                }
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                ipv6::write_header(buf, &src, &dst, self.protocol, self.hop_limit, payload_len);
                checksum::pseudo_v6(&src, &dst, self.protocol, payload_len as u32)
            }
            _ => return None,
        };
        if let Some(f) = field {
            let c = at + f;
            buf[c..c + 2].fill(0);
            let mut sum = pseudo.add_bytes(&buf[at..end]).finish();
            if self.protocol == proto::UDP && sum == 0 {
                sum = 0xffff;
            }
            buf[c..c + 2].copy_from_slice(&sum.to_be_bytes());
        }
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn repr(src: IpAddr, dst: IpAddr, protocol: u8) -> IpRepr {
        IpRepr {
            src,
            dst,
            protocol,
            hop_limit: 64,
            ident: 7,
        }
    }

    const V4: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 2));

    #[test]
    fn rfc768_udp_over_ipv4_verifies_against_its_pseudo_header() {
        let (s, d) = V4;
        let mut buf = vec![0u8; 20 + 12];
        buf[20..32]
            .copy_from_slice(&[0x12, 0x34, 0, 53, 0, 12, 0xaa, 0xbb, b'a', b'b', b'c', b'd']);
        let len = repr(s.into(), d.into(), proto::UDP).emit(&mut buf, 12);
        assert_eq!(len, Some(32));
        assert_eq!(checksum::checksum(&buf[..20]), 0, "IPv4 header checksum");
        let sum = checksum::pseudo_v4(s, d, proto::UDP, 12)
            .add_bytes(&buf[20..])
            .finish();
        assert_eq!(sum, 0, "UDP checksum over the pseudo-header");
        assert_eq!(buf[9], proto::UDP);
        assert_eq!(u16::from_be_bytes([buf[4], buf[5]]), 7);
    }

    #[test]
    fn rfc792_icmpv4_checksum_covers_the_message_alone() {
        let (s, d) = V4;
        let mut buf = vec![0u8; 20 + 8];
        buf[20] = 8;
        repr(s.into(), d.into(), proto::ICMP)
            .emit(&mut buf, 8)
            .expect("emitted");
        assert_eq!(checksum::checksum(&buf[20..]), 0);
    }

    #[test]
    fn rfc4443_2_3_icmpv6_checksum_covers_the_pseudo_header() {
        let s: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut buf = vec![0u8; 40 + 8];
        buf[40] = 128;
        let len = repr(s.into(), d.into(), proto::ICMPV6).emit(&mut buf, 8);
        assert_eq!(len, Some(48));
        assert_eq!(buf[0] >> 4, 6);
        assert_eq!(buf[7], 64);
        let sum = checksum::pseudo_v6(&s, &d, proto::ICMPV6, 8)
            .add_bytes(&buf[40..])
            .finish();
        assert_eq!(sum, 0);
    }

    #[test]
    fn rfc768_a_zero_udp_checksum_is_sent_as_all_ones() {
        // Find a payload whose checksum computes to zero: the last two bytes balance it.
        let (s, d) = V4;
        let mut buf = vec![0u8; 20 + 10];
        buf[20..28].copy_from_slice(&[0, 1, 0, 2, 0, 10, 0, 0]);
        let partial = checksum::pseudo_v4(s, d, proto::UDP, 10)
            .add_bytes(&buf[20..])
            .finish();
        // Adding the complement's complement makes the final sum 0xffff, i.e. checksum 0.
        buf[28..30].copy_from_slice(&partial.to_be_bytes());
        repr(s.into(), d.into(), proto::UDP)
            .emit(&mut buf, 10)
            .expect("emitted");
        assert_eq!(&buf[26..28], &[0xff, 0xff]);
    }

    #[test]
    fn mixed_families_short_buffers_and_short_messages_write_nothing() {
        let (s, _) = V4;
        let d6: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut buf = vec![0u8; 64];
        assert_eq!(
            repr(s.into(), d6.into(), proto::UDP).emit(&mut buf, 8),
            None
        );
        assert_eq!(
            repr(s.into(), s.into(), proto::UDP).emit(&mut buf, 60),
            None
        );
        assert_eq!(
            repr(s.into(), s.into(), proto::TCP).emit(&mut buf, 10),
            None
        );
        assert!(buf.iter().all(|&b| b == 0));
    }
}
