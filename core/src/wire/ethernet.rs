//! Ethernet II frames (IEEE 802.3 with an EtherType; no FCS: NICs strip it).
//!
//! 802.1Q-tagged frames are visible as EtherType `VLAN` and left to the caller to drop.

use super::{be16, set_be16, WireError};

pub const HEADER_LEN: usize = 14;

/// Where the header's fields are.
pub mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
}

/// EtherType values natbox understands.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
}

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    /// Group (multicast or broadcast) addresses have the I/G bit set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// The Ethernet multicast address an IPv6 multicast address maps to (RFC 2464 s7).
    pub fn ipv6_multicast(addr: &std::net::Ipv6Addr) -> Mac {
        let o = addr.octets();
        Mac([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }

    /// The modified EUI-64 interface identifier of this MAC (RFC 4291 appendix A: the
    /// universal/local bit flipped, ff:fe in the middle), for the link-local address
    /// and stateless autoconfiguration (RFC 4862 section 5.3).
    pub fn eui64_interface_id(&self) -> [u8; 8] {
        let m = self.0;
        [m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (also `-` separated).
    pub fn parse(s: &str) -> Option<Mac> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
        }
        parts.next().is_none().then_some(Mac(out))
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// A view of an Ethernet II frame.
#[derive(Debug)]
pub struct Frame<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Frame { buf })
    }

    pub fn dst(&self) -> Mac {
        Mac(self.buf.as_ref()[field::DST]
            .try_into()
            .expect("checked length"))
    }

    pub fn src(&self) -> Mac {
        Mac(self.buf.as_ref()[field::SRC]
            .try_into()
            .expect("checked length"))
    }

    pub fn ethertype(&self) -> u16 {
        be16(self.buf.as_ref(), field::ETHERTYPE)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst(&mut self, mac: Mac) {
        self.buf.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    pub fn set_src(&mut self, mac: Mac) {
        self.buf.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }

    pub fn set_ethertype(&mut self, t: u16) {
        set_be16(self.buf.as_mut(), field::ETHERTYPE, t);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }
}

/// Writes the destination and source MACs of the Ethernet header at the start of `buf`
/// (which must hold `HEADER_LEN`).
pub fn set_addresses(buf: &mut [u8], dst: Mac, src: Mac) {
    buf[field::DST].copy_from_slice(&dst.0);
    buf[field::SRC].copy_from_slice(&src.0);
}

/// Writes an Ethernet header at the start of `buf` (which must hold `HEADER_LEN`).
pub fn write_header(buf: &mut [u8], dst: Mac, src: Mac, ethertype: u16) {
    set_addresses(buf, dst, src);
    set_be16(buf, field::ETHERTYPE, ethertype);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_fields() {
        let mut b = [0u8; 60];
        write_header(
            &mut b,
            Mac::BROADCAST,
            Mac([2, 0, 0, 0, 0, 1]),
            ethertype::ARP,
        );
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(f.dst(), Mac::BROADCAST);
        assert_eq!(f.src().to_string(), "02:00:00:00:00:01");
        assert_eq!(f.ethertype(), 0x0806);
        assert_eq!(f.payload().len(), 46);
    }

    #[test]
    fn truncated_is_refused() {
        assert_eq!(
            Frame::new_checked(&[0u8; 13][..]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn mac_parse_and_multicast() {
        assert_eq!(
            Mac::parse("52:54:00:12:34:56"),
            Some(Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]))
        );
        assert_eq!(Mac::parse("52:54:00:12:34"), None);
        assert_eq!(Mac::parse("52:54:00:12:34:56:78"), None);
        assert!(Mac::BROADCAST.is_multicast());
        assert!(!Mac([0x52, 0, 0, 0, 0, 1]).is_multicast());
        let m = Mac::ipv6_multicast(&"ff02::1:ff00:10".parse().unwrap());
        assert_eq!(m, Mac([0x33, 0x33, 0xff, 0, 0, 0x10]));
    }
}
