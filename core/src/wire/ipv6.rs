//! IPv6 headers (RFC 8200) and the walk over extension headers to the upper layer.
//!
//! The walk is bounded (`MAX_EXTENSIONS` headers) so a chain of options cannot make a
//! packet cost more than a fixed amount. It reports a type-0 routing header
//! (deprecated by RFC 5095, dropped by RFC 6092 REC-4) and fragment information.

use super::checksum;
use super::{be16, be32, proto, WireError};
use std::net::Ipv6Addr;

pub const HEADER_LEN: usize = 40;

/// At most this many extension headers are walked; longer chains are malformed.
pub const MAX_EXTENSIONS: usize = 8;

/// A view of an IPv6 packet.
#[derive(Debug)]
pub struct Packet<T> {
    buf: T,
}

/// Where the upper-layer header starts, found by `Packet::upper_layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol (or the next header of a non-first fragment).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    pub fragment: Option<Fragment>,
    /// A type-0 routing header is present.
    pub has_rh0: bool,
}

/// The fields of a Fragment extension header (RFC 8200 section 4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Offset of this fragment's data in bytes.
    pub offset: usize,
    pub more: bool,
    pub ident: u32,
}

impl Fragment {
    /// True for a fragment that carries no upper-layer header.
    pub fn is_non_first(&self) -> bool {
        self.offset != 0
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks version 6 and that the payload length fits the buffer.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        if b.len() < HEADER_LEN + usize::from(be16(b, 4)) {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buf })
    }

    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.buf.as_ref(), 4))
    }

    /// Header plus payload length, without Ethernet padding.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    pub fn next_header(&self) -> u8 {
        self.buf.as_ref()[6]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buf.as_ref()[7]
    }

    pub fn src(&self) -> Ipv6Addr {
        addr(&self.buf.as_ref()[8..24])
    }

    pub fn dst(&self) -> Ipv6Addr {
        addr(&self.buf.as_ref()[24..40])
    }

    /// The packet up to its payload length.
    pub fn packet(&self) -> &[u8] {
        &self.buf.as_ref()[..self.total_len()]
    }

    /// Walks the extension headers to the upper-layer header.
    pub fn upper_layer(&self) -> Result<UpperLayer, WireError> {
        let b = self.packet();
        let mut next = self.next_header();
        let mut at = HEADER_LEN;
        let mut fragment = None;
        let mut has_rh0 = false;
        for _ in 0..=MAX_EXTENSIONS {
            let len = match next {
                proto::HOPOPT | proto::IPV6_ROUTE | proto::IPV6_OPTS => {
                    if b.len() < at + 8 {
                        return Err(WireError::Truncated);
                    }
                    if next == proto::IPV6_ROUTE && b[at + 2] == 0 {
                        has_rh0 = true;
                    }
                    (usize::from(b[at + 1]) + 1) * 8
                }
                proto::AH => {
                    if b.len() < at + 8 {
                        return Err(WireError::Truncated);
                    }
                    (usize::from(b[at + 1]) + 2) * 4
                }
                proto::IPV6_FRAG => {
                    if b.len() < at + 8 {
                        return Err(WireError::Truncated);
                    }
                    let word = be16(b, at + 2);
                    let f = Fragment {
                        offset: usize::from(word & 0xfff8),
                        more: word & 1 == 1,
                        ident: be32(b, at + 4),
                    };
                    fragment = Some(f);
                    if f.is_non_first() {
                        return Ok(UpperLayer {
                            protocol: b[at],
                            offset: at + 8,
                            fragment,
                            has_rh0,
                        });
                    }
                    8
                }
                protocol => {
                    return Ok(UpperLayer {
                        protocol,
                        offset: at,
                        fragment,
                        has_rh0,
                    })
                }
            };
            if b.len() < at + len {
                return Err(WireError::Truncated);
            }
            next = b[at];
            at += len;
        }
        Err(WireError::Malformed)
    }

    /// The upper-layer pseudo-header sum for a payload of `len` bytes.
    pub fn pseudo_header(&self, next_header: u8, len: usize) -> checksum::Sum {
        checksum::pseudo_v6(&self.src(), &self.dst(), next_header, len as u32)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn decrement_hop_limit(&mut self) {
        let b = self.buf.as_mut();
        b[7] = b[7].wrapping_sub(1);
    }

    pub fn packet_mut(&mut self) -> &mut [u8] {
        let len = self.total_len();
        &mut self.buf.as_mut()[..len]
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes"))
}

/// The solicited-node multicast group of `addr` (RFC 4291 section 2.7.1):
/// ff02::1:ffXX:XXXX with its low 24 bits.
pub fn solicited_node(addr: &Ipv6Addr) -> Ipv6Addr {
    let t = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ])
}

/// Writes a 40-byte header into `buf[..40]`.
pub fn write_header(
    buf: &mut [u8],
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload_len: usize,
) {
    buf[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    buf[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
    buf[6] = next_header;
    buf[7] = hop_limit;
    buf[8..24].copy_from_slice(&src.octets());
    buf[24..40].copy_from_slice(&dst.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(next: u8, ext: &[u8], upper: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        write_header(
            &mut b,
            &"2001:db8:10::2".parse().unwrap(),
            &"2001:db8:ff::1".parse().unwrap(),
            next,
            64,
            ext.len() + upper.len(),
        );
        b.extend_from_slice(ext);
        b.extend_from_slice(upper);
        b
    }

    #[test]
    fn plain_udp_upper_layer() {
        let b = packet(proto::UDP, &[], &[0; 8]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.src(), "2001:db8:10::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.hop_limit(), 64);
        let u = p.upper_layer().unwrap();
        assert_eq!(
            (u.protocol, u.offset, u.fragment, u.has_rh0),
            (17, 40, None, false)
        );
    }

    #[test]
    fn walks_hop_by_hop_and_fragment() {
        // HBH (8 bytes, next = frag), first fragment (next = TCP, M=1, id 0x01020304).
        let ext = [
            proto::IPV6_FRAG,
            0,
            1,
            4,
            0,
            0,
            0,
            0, // HBH with PadN
            proto::TCP,
            0,
            0x00,
            0x01,
            1,
            2,
            3,
            4,
        ];
        let b = packet(proto::HOPOPT, &ext, &[0; 20]);
        let u = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!(u.protocol, proto::TCP);
        assert_eq!(u.offset, 56);
        let f = u.fragment.unwrap();
        assert_eq!((f.offset, f.more, f.ident), (0, true, 0x01020304));
    }

    #[test]
    fn non_first_fragment_stops_walk() {
        let ext = [proto::UDP, 0, 0x05, 0x00, 0, 0, 0, 9]; // offset 1280 bytes, M=0
        let b = packet(proto::IPV6_FRAG, &ext, &[0; 16]);
        let u = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        let f = u.fragment.unwrap();
        assert!(f.is_non_first());
        assert_eq!(f.offset, 1280);
        assert_eq!(u.offset, 48);
    }

    #[test]
    fn detects_rh0() {
        let ext = [
            proto::UDP,
            2,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        let b = packet(proto::IPV6_ROUTE, &ext, &[0; 8]);
        assert!(
            Packet::new_checked(&b[..])
                .unwrap()
                .upper_layer()
                .unwrap()
                .has_rh0
        );
    }

    #[test]
    fn refuses_truncated_and_endless_chains() {
        let b = packet(proto::UDP, &[], &[0; 8]);
        assert_eq!(
            Packet::new_checked(&b[..47]).unwrap_err(),
            WireError::Truncated
        );
        let mut v4 = b.clone();
        v4[0] = 0x45;
        assert_eq!(
            Packet::new_checked(&v4[..]).unwrap_err(),
            WireError::Malformed
        );
        // Extension length runs past the end.
        let b = packet(proto::IPV6_OPTS, &[proto::UDP, 4, 0, 0, 0, 0, 0, 0], &[]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), WireError::Truncated);
        // Nine destination-options headers in a row.
        let mut chain = Vec::new();
        for _ in 0..9 {
            chain.extend_from_slice(&[proto::IPV6_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        let b = packet(proto::IPV6_OPTS, &chain, &[]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), WireError::Malformed);
    }
}
