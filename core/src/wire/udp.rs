//! UDP headers (RFC 768).
//!
//! A zero checksum means "none" over IPv4: rewrites must keep it zero, and a computed
//! checksum of zero is sent as 0xffff (RFC 768).

use super::checksum::pseudo_v4;
use super::{be16, proto, set_be16, WireError};
use std::net::Ipv4Addr;

pub const HEADER_LEN: usize = 8;
pub const SRC_PORT_OFFSET: usize = 0;
pub const DST_PORT_OFFSET: usize = 2;
pub const CHECKSUM_OFFSET: usize = 6;

/// A view of a UDP datagram.
#[derive(Debug)]
pub struct Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buf })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buf.as_ref(), SRC_PORT_OFFSET)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buf.as_ref(), DST_PORT_OFFSET)
    }

    pub fn len(&self) -> u16 {
        be16(self.buf.as_ref(), 4)
    }

    pub fn is_empty(&self) -> bool {
        self.len() as usize <= HEADER_LEN
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buf.as_ref(), CHECKSUM_OFFSET)
    }

    /// Whether the datagram is whole and its checksum verifies, carried over IPv4 from
    /// `src` to `dst` (RFC 768): the length field at least the header and within the
    /// buffer, and a checksum of zero (the sender computed none) or one whose sum over
    /// the pseudo-header and the datagram, as long as the length field says, is all
    /// ones. The checksum must be complete (a CHECKSUM_PARTIAL one is completed first).
    pub fn verify4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let len = self.len();
        let Some(datagram) = self.buf.as_ref().get(..usize::from(len)) else {
            return false;
        };
        usize::from(len) >= HEADER_LEN
            && (self.checksum() == 0
                || pseudo_v4(src, dst, proto::UDP, len)
                    .add_bytes(datagram)
                    .fold()
                    == 0xffff)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, port: u16) {
        set_be16(self.buf.as_mut(), 0, port);
    }

    pub fn set_dst_port(&mut self, port: u16) {
        set_be16(self.buf.as_mut(), 2, port);
    }

    pub fn set_checksum(&mut self, c: u16) {
        set_be16(self.buf.as_mut(), CHECKSUM_OFFSET, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_golden() {
        let b = [0x9c, 0x40, 0x00, 0x35, 0x00, 0x0c, 0x12, 0x34, 1, 2, 3, 4];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (40000, 53, 12));
        assert_eq!(p.checksum(), 0x1234);
        assert!(!p.is_empty());
        assert_eq!(
            Packet::new_checked(&b[..7]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn setters_write_fields() {
        let mut b = [0u8; 8];
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_checksum(0xffff);
        assert_eq!(b, [0, 1, 0, 2, 0, 0, 0xff, 0xff]);
    }

    /// RFC 768: a checksum of zero is none; any other must verify over the
    /// pseudo-header and the datagram; a length field outside the buffer fails.
    #[test]
    fn rfc768_checksum_verifies_zero_is_none_and_the_length_must_fit() {
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 10));
        let mut b = vec![0, 67, 0, 68, 0, 11, 0, 0, b'a', b'c', b'k'];
        assert!(
            Packet::new_checked(&b[..]).unwrap().verify4(src, dst),
            "zero"
        );
        let c = pseudo_v4(src, dst, proto::UDP, 11).add_bytes(&b).finish();
        b[6..8].copy_from_slice(&c.to_be_bytes());
        let ok = |b: &[u8]| Packet::new_checked(b).unwrap().verify4(src, dst);
        assert!(ok(&b));
        assert!(
            !Packet::new_checked(&b[..])
                .unwrap()
                .verify4(src, Ipv4Addr::new(192, 0, 2, 11)),
            "the pseudo-header counts"
        );
        let mut flipped = b.clone();
        flipped[9] ^= 1;
        assert!(!ok(&flipped), "a flipped payload bit");
        let mut padded = b.clone();
        padded.push(0x55);
        assert!(
            ok(&padded),
            "bytes past the length field are not the datagram's"
        );
        let mut long = b.clone();
        long[5] = 12;
        assert!(!ok(&long), "a length past the buffer");
        let mut short = b.clone();
        short[4..8].copy_from_slice(&[0, 7, 0, 0]);
        assert!(
            !ok(&short),
            "a length below the header, even with no checksum"
        );
    }
}
