//! IPv4 headers (RFC 791).
//!
//! `new_checked` accepts a buffer that may be longer than the datagram (Ethernet
//! padding); `payload` ends at Total Length. The header checksum is not checked here:
//! `verify_checksum` is separate so a router can count bad checksums as its own drop.

use super::checksum;
use super::{be16, be32, set_be16, set_be32, WireError};
use std::net::Ipv4Addr;

pub const MIN_HEADER_LEN: usize = 20;

/// A view of an IPv4 datagram.
#[derive(Debug)]
pub struct Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks version 4, IHL >= 5, and that header and Total Length fit the buffer.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = usize::from(b[0] & 0x0f) * 4;
        let total_len = usize::from(be16(b, 2));
        if b[0] >> 4 != 4 || header_len < MIN_HEADER_LEN || total_len < header_len {
            return Err(WireError::Malformed);
        }
        if b.len() < header_len || b.len() < total_len {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buf })
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buf.as_ref()[0] & 0x0f) * 4
    }

    pub fn dscp_ecn(&self) -> u8 {
        self.buf.as_ref()[1]
    }

    pub fn total_len(&self) -> usize {
        usize::from(be16(self.buf.as_ref(), 2))
    }

    pub fn ident(&self) -> u16 {
        be16(self.buf.as_ref(), 4)
    }

    pub fn dont_fragment(&self) -> bool {
        self.buf.as_ref()[6] & 0x40 != 0
    }

    pub fn more_fragments(&self) -> bool {
        self.buf.as_ref()[6] & 0x20 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        usize::from(be16(self.buf.as_ref(), 6) & 0x1fff) * 8
    }

    /// True for any fragment (first, middle or last).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.frag_offset() != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buf.as_ref()[8]
    }

    pub fn protocol(&self) -> u8 {
        self.buf.as_ref()[9]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buf.as_ref(), 10)
    }

    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(be32(self.buf.as_ref(), 12))
    }

    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(be32(self.buf.as_ref(), 16))
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buf.as_ref()[..self.header_len()]) == 0
    }

    /// The bytes after the header, up to Total Length.
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[self.header_len()..self.total_len()]
    }

    /// The header plus Total Length bytes.
    pub fn datagram(&self) -> &[u8] {
        &self.buf.as_ref()[..self.total_len()]
    }

    /// The pseudo-header sum for the upper-layer checksum of this datagram.
    pub fn pseudo_header(&self) -> checksum::Sum {
        let len = (self.total_len() - self.header_len()) as u16;
        checksum::pseudo_v4(self.src(), self.dst(), self.protocol(), len)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Rewrites the source address, updating the header checksum (RFC 1624).
    pub fn set_src(&mut self, addr: Ipv4Addr) {
        let old = be32(self.buf.as_ref(), 12);
        self.set_word32(12, old, addr.to_bits());
    }

    /// Rewrites the destination address, updating the header checksum (RFC 1624).
    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        let old = be32(self.buf.as_ref(), 16);
        self.set_word32(16, old, addr.to_bits());
    }

    /// Decrements TTL by one, updating the header checksum (RFC 1624 section 5 example).
    pub fn decrement_ttl(&mut self) {
        let b = self.buf.as_mut();
        let old = be16(b, 8);
        b[8] = b[8].wrapping_sub(1);
        let new = be16(b, 8);
        let c = checksum::update16(be16(b, 10), old, new);
        set_be16(b, 10, c);
    }

    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buf.as_mut();
        set_be16(b, 10, 0);
        let c = checksum::checksum(&b[..hl]);
        set_be16(b, 10, c);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), self.total_len());
        &mut self.buf.as_mut()[hl..tl]
    }

    fn set_word32(&mut self, at: usize, old: u32, new: u32) {
        let b = self.buf.as_mut();
        set_be32(b, at, new);
        let c = checksum::update32(be16(b, 10), old, new);
        set_be16(b, 10, c);
    }
}

/// The fields of a header natbox writes itself (no options).
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub ident: u16,
    /// Bytes after the header.
    pub payload_len: usize,
}

/// Writes a 20-byte header with DF clear and a correct checksum into `buf[..20]`.
pub fn write_header(buf: &mut [u8], h: &Header) {
    buf[0] = 0x45;
    buf[1] = 0;
    set_be16(buf, 2, (MIN_HEADER_LEN + h.payload_len) as u16);
    set_be16(buf, 4, h.ident);
    set_be16(buf, 6, 0);
    buf[8] = h.ttl;
    buf[9] = h.protocol;
    set_be16(buf, 10, 0);
    set_be32(buf, 12, h.src.to_bits());
    set_be32(buf, 16, h.dst.to_bits());
    let c = checksum::checksum(&buf[..MIN_HEADER_LEN]);
    set_be16(buf, 10, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 192.168.0.1 -> 192.168.0.199, UDP, total length 0x73, checksum 0xb861.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn datagram() -> Vec<u8> {
        let mut d = HEADER.to_vec();
        d.resize(0x73, 0xab);
        d
    }

    #[test]
    fn parses_golden_header() {
        let d = datagram();
        let p = Packet::new_checked(&d[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 0x73);
        assert!(p.dont_fragment());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.src(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 0x73 - 20);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut d = datagram();
        d.extend_from_slice(&[0; 10]);
        assert_eq!(
            Packet::new_checked(&d[..]).unwrap().payload().len(),
            0x73 - 20
        );
    }

    #[test]
    fn refuses_bad_lengths() {
        let d = datagram();
        assert_eq!(
            Packet::new_checked(&d[..19]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&d[..0x72]).unwrap_err(),
            WireError::Truncated
        );
        let mut bad = d.clone();
        bad[0] = 0x44; // IHL 4
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::Malformed
        );
        let mut bad = d.clone();
        bad[0] = 0x65; // version 6
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::Malformed
        );
        let mut bad = d.clone();
        bad[2..4].copy_from_slice(&10u16.to_be_bytes()); // total < header
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::Malformed
        );
        let mut bad = d;
        bad[0] = 0x4f; // 60-byte header, fits in 0x73
        assert!(Packet::new_checked(&bad[..]).is_ok());
    }

    #[test]
    fn rewrites_keep_checksum_valid() {
        let mut d = datagram();
        let mut p = Packet::new_checked(&mut d[..]).unwrap();
        p.set_src(Ipv4Addr::new(198, 51, 100, 10));
        p.set_dst(Ipv4Addr::new(10, 10, 0, 2));
        p.decrement_ttl();
        assert_eq!(p.ttl(), 63);
        assert!(p.verify_checksum());
    }

    #[test]
    fn written_header_verifies() {
        let mut b = [0u8; 28];
        write_header(
            &mut b,
            &Header {
                src: Ipv4Addr::new(10, 10, 0, 1),
                dst: Ipv4Addr::new(10, 10, 0, 2),
                protocol: 1,
                ttl: 64,
                ident: 7,
                payload_len: 8,
            },
        );
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.total_len(), 28);
    }
}
