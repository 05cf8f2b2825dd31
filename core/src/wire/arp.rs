//! ARP for IPv4 over Ethernet (RFC 826): the only hardware/protocol pair natbox speaks.

use super::ethernet::Mac;
use super::{be16, set_be16, WireError};
use std::net::Ipv4Addr;

pub const LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug)]
pub struct Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Accepts only htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < LEN {
            return Err(WireError::Truncated);
        }
        if be16(b, 0) != 1 || be16(b, 2) != 0x0800 || b[4] != 6 || b[5] != 4 {
            return Err(WireError::Malformed);
        }
        Ok(Packet { buf })
    }

    pub fn operation(&self) -> u16 {
        be16(self.buf.as_ref(), 6)
    }

    pub fn sender_mac(&self) -> Mac {
        Mac(self.buf.as_ref()[8..14].try_into().expect("checked length"))
    }

    pub fn sender_ip(&self) -> Ipv4Addr {
        ip(&self.buf.as_ref()[14..18])
    }

    pub fn target_mac(&self) -> Mac {
        Mac(self.buf.as_ref()[18..24]
            .try_into()
            .expect("checked length"))
    }

    pub fn target_ip(&self) -> Ipv4Addr {
        ip(&self.buf.as_ref()[24..28])
    }
}

fn ip(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// Writes a complete ARP packet into `buf[..LEN]`.
pub fn write(buf: &mut [u8], operation: u16, sender: (Mac, Ipv4Addr), target: (Mac, Ipv4Addr)) {
    set_be16(buf, 0, 1);
    set_be16(buf, 2, 0x0800);
    buf[4] = 6;
    buf[5] = 4;
    set_be16(buf, 6, operation);
    buf[8..14].copy_from_slice(&sender.0 .0);
    buf[14..18].copy_from_slice(&sender.1.octets());
    buf[18..24].copy_from_slice(&target.0 .0);
    buf[24..28].copy_from_slice(&target.1.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request captured from `arping -I eth0 10.10.0.1` (who-has 10.10.0.1 tell 10.10.0.2).
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 10, 10,
        0, 2, 0, 0, 0, 0, 0, 0, 10, 10, 0, 1,
    ];

    #[test]
    fn parses_request_golden() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!(p.sender_mac(), Mac([2, 0, 0, 0, 0, 2]));
        assert_eq!(p.sender_ip(), Ipv4Addr::new(10, 10, 0, 2));
        assert_eq!(p.target_ip(), Ipv4Addr::new(10, 10, 0, 1));
    }

    #[test]
    fn write_reproduces_golden() {
        let mut b = [0u8; LEN];
        write(
            &mut b,
            OP_REQUEST,
            (Mac([2, 0, 0, 0, 0, 2]), Ipv4Addr::new(10, 10, 0, 2)),
            (Mac::default(), Ipv4Addr::new(10, 10, 0, 1)),
        );
        assert_eq!(b, REQUEST);
    }

    #[test]
    fn refuses_truncated_and_foreign() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).unwrap_err(),
            WireError::Truncated
        );
        let mut other = REQUEST;
        other[5] = 16; // IPv6-sized protocol address
        assert_eq!(
            Packet::new_checked(&other[..]).unwrap_err(),
            WireError::Malformed
        );
    }
}
