//! UDP headers (RFC 768).
//!
//! A zero checksum means "none" over IPv4: rewrites must keep it zero, and a computed
//! checksum of zero is sent as 0xffff (RFC 768).

use super::{be16, set_be16, WireError};

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
}
