//! ICMPv6 (RFC 4443) and the Neighbor Discovery messages natbox speaks (RFC 4861
//! sections 4.3, 4.4 and 4.6.1: NS, NA, link-layer address options).

use super::ethernet::Mac;
use std::net::Ipv6Addr;

pub use super::icmp::HEADER_LEN;

pub const DEST_UNREACHABLE: u8 = 1;
pub const PACKET_TOO_BIG: u8 = 2;
pub const TIME_EXCEEDED: u8 = 3;
pub const PARAMETER_PROBLEM: u8 = 4;
pub const ECHO_REQUEST: u8 = 128;
pub const ECHO_REPLY: u8 = 129;
pub const ROUTER_SOLICIT: u8 = 133;
pub const ROUTER_ADVERT: u8 = 134;
pub const NEIGHBOR_SOLICIT: u8 = 135;
pub const NEIGHBOR_ADVERT: u8 = 136;
pub const REDIRECT: u8 = 137;

/// Destination unreachable codes.
pub const CODE_ADMIN_PROHIBITED: u8 = 1;

/// Neighbor Advertisement flags (RFC 4861 section 4.4).
pub const NA_ROUTER: u8 = 0x80;
pub const NA_SOLICITED: u8 = 0x40;
pub const NA_OVERRIDE: u8 = 0x20;

/// Option types (RFC 4861 section 4.6).
pub const OPT_SOURCE_LL: u8 = 1;
pub const OPT_TARGET_LL: u8 = 2;

/// Length of an NS/NA body before options: header + reserved/flags + target.
pub const ND_LEN: usize = 24;

super::icmp::family_view! {
    /// A view of an ICMPv6 message: the shared header (`icmp::Message`, through
    /// `Deref`), ICMPv6's own classification and checksum, and the Neighbor Discovery
    /// fields.
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Error messages have types 0-127 (RFC 4443 section 2.1).
    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }

    pub fn is_echo(&self) -> bool {
        matches!(self.msg_type(), ECHO_REQUEST | ECHO_REPLY)
    }

    /// Verifies the checksum given the pseudo-header sum of the enclosing IPv6 packet
    /// (RFC 4443 section 2.3).
    pub fn verify_checksum(&self, pseudo: super::checksum::Sum) -> bool {
        self.checksum_ok(pseudo)
    }

    /// The target address of an NS or NA, if the message is long enough.
    pub fn nd_target(&self) -> Option<Ipv6Addr> {
        let b = self.bytes();
        let t: [u8; 16] = b.get(8..24)?.try_into().ok()?;
        Some(Ipv6Addr::from(t))
    }

    /// The NA flags byte.
    pub fn na_flags(&self) -> u8 {
        self.bytes()[4]
    }

    /// The link-layer address carried in option `kind` of an NS/NA, if present and
    /// well-formed. Malformed option chains yield `None` (RFC 4861 section 4.6: a
    /// zero-length option means the packet must be discarded).
    pub fn nd_link_addr(&self, kind: u8) -> Option<Mac> {
        let b = self.bytes();
        let mut at = ND_LEN;
        while at + 2 <= b.len() {
            let len = usize::from(b[at + 1]) * 8;
            if len == 0 || at + len > b.len() {
                return None;
            }
            if b[at] == kind && len == 8 {
                return Some(Mac(b[at + 2..at + 8].try_into().ok()?));
            }
            at += len;
        }
        None
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Recomputes the checksum given the enclosing packet's pseudo-header sum.
    pub fn fill_checksum(&mut self, pseudo: super::checksum::Sum) {
        self.fill(pseudo);
    }
}

/// Writes an NS or NA body (header, flags, target, one link-layer option) into
/// `buf[..32]`. Checksum left 0.
pub fn write_nd(buf: &mut [u8], msg_type: u8, flags: u8, target: &Ipv6Addr, opt: u8, mac: Mac) {
    write_header(buf, msg_type, 0, u32::from(flags) << 24);
    buf[8..24].copy_from_slice(&target.octets());
    buf[24] = opt;
    buf[25] = 1;
    buf[26..32].copy_from_slice(&mac.0);
}

pub use super::icmp::write_header;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::pseudo_v6;
    use crate::wire::WireError;

    #[test]
    fn nd_round_trip_and_checksum() {
        let src: Ipv6Addr = "2001:db8:10::2".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1:ff00:1".parse().unwrap();
        let target: Ipv6Addr = "2001:db8:10::1".parse().unwrap();
        let mac = Mac([2, 0, 0, 0, 0, 2]);
        let mut b = [0u8; 32];
        write_nd(&mut b, NEIGHBOR_SOLICIT, 0, &target, OPT_SOURCE_LL, mac);
        let pseudo = pseudo_v6(&src, &dst, 58, 32);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum(pseudo);
        assert!(p.verify_checksum(pseudo));
        assert_eq!(p.nd_target(), Some(target));
        assert_eq!(p.nd_link_addr(OPT_SOURCE_LL), Some(mac));
        assert_eq!(p.nd_link_addr(OPT_TARGET_LL), None);
        assert!(!p.is_error());
    }

    #[test]
    fn zero_length_option_is_refused() {
        let mut b = [0u8; 32];
        write_nd(
            &mut b,
            NEIGHBOR_ADVERT,
            NA_SOLICITED,
            &Ipv6Addr::LOCALHOST,
            2,
            Mac::BROADCAST,
        );
        b[25] = 0;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.nd_link_addr(OPT_TARGET_LL), None);
        assert_eq!(
            Packet::new_checked(&b[..7]).unwrap_err(),
            WireError::Truncated
        );
        let short = Packet::new_checked(&b[..20]).unwrap();
        assert_eq!(short.nd_target(), None);
    }

    #[test]
    fn error_types() {
        let mut b = [0u8; 8];
        write_header(&mut b, PACKET_TOO_BIG, 0, 1280);
        assert!(Packet::new_checked(&b[..]).unwrap().is_error());
        write_header(&mut b, ECHO_REQUEST, 0, 0x00050001);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_echo() && !p.is_error());
        assert_eq!(p.echo_id(), 5);
    }
}
