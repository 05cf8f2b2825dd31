//! Router Advertisements (RFC 4861 section 4.2) and the options natbox reads from them:
//! Source Link-Layer Address (4.6.1), Prefix Information (4.6.2) and MTU (4.6.4), and
//! the Router Solicitation natbox sends (4.1).
//!
//! `RouterAdvert::new_checked` takes the ICMPv6 message (from its type byte on) and
//! checks what RFC 4861 section 6.1.2 asks of its bytes: type 134, code 0, at least 16
//! bytes, and an option chain in which every option has a non-zero length and ends
//! within the message. The other checks of section 6.1.2 need the IP header (hop limit
//! 255, a link-local source) or the pseudo-header (the checksum) and are the caller's.
//! Options of a known type but the wrong length (a Prefix Information option whose
//! length is not 4) are skipped, not trusted; unknown options are skipped (section
//! 4.6). Hand-written: the format is a fixed header and type-length-value options, and
//! smoltcp's `NdiscRepr` (the one crate weighed) keeps one prefix option of several
//! and is tied to its own `Repr` types.

use super::ethernet::Mac;
use super::{be16, be32, icmpv6, WireError};
use std::net::Ipv6Addr;

/// The fixed part of a Router Advertisement: ICMPv6 header, hop limit, flags, router
/// lifetime, reachable time, retrans timer.
pub const HEADER_LEN: usize = 16;

/// Option types (RFC 4861 section 4.6).
pub const OPT_SOURCE_LL: u8 = icmpv6::OPT_SOURCE_LL;
pub const OPT_PREFIX_INFO: u8 = 3;
pub const OPT_MTU: u8 = 5;

/// Prefix Information flags (RFC 4861 section 4.6.2).
const FLAG_ON_LINK: u8 = 0x80;
const FLAG_AUTONOMOUS: u8 = 0x40;
/// RA flags (RFC 4861 section 4.2).
const FLAG_MANAGED: u8 = 0x80;
const FLAG_OTHER: u8 = 0x40;

/// A lifetime of all ones: infinity (RFC 4861 section 4.6.2).
pub const INFINITE: u32 = u32::MAX;

/// A checked Router Advertisement.
#[derive(Debug, Clone, Copy)]
pub struct RouterAdvert<'a> {
    bytes: &'a [u8],
}

/// One Prefix Information option (RFC 4861 section 4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInfo {
    pub prefix: Ipv6Addr,
    pub prefix_len: u8,
    /// L: the prefix is on-link.
    pub on_link: bool,
    /// A: the prefix may be used for stateless address autoconfiguration.
    pub autonomous: bool,
    /// Seconds; `INFINITE` is forever.
    pub valid_lifetime: u32,
    pub preferred_lifetime: u32,
}

impl<'a> RouterAdvert<'a> {
    /// Checks `bytes` (the ICMPv6 message) as section 6.1.2 asks of its own bytes.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if bytes[0] != icmpv6::ROUTER_ADVERT || bytes[1] != 0 {
            return Err(WireError::Malformed);
        }
        let ra = RouterAdvert { bytes };
        let mut at = HEADER_LEN;
        while at < bytes.len() {
            let len = usize::from(*bytes.get(at + 1).ok_or(WireError::Truncated)?) * 8;
            if len == 0 {
                return Err(WireError::Malformed);
            }
            at = at.checked_add(len).ok_or(WireError::Malformed)?;
            if at > bytes.len() {
                return Err(WireError::Truncated);
            }
        }
        Ok(ra)
    }

    /// Cur Hop Limit (0: unspecified).
    pub fn hop_limit(&self) -> u8 {
        self.bytes[4]
    }

    /// M: addresses are available by DHCPv6.
    pub fn managed(&self) -> bool {
        self.bytes[5] & FLAG_MANAGED != 0
    }

    /// O: other configuration is available by DHCPv6.
    pub fn other(&self) -> bool {
        self.bytes[5] & FLAG_OTHER != 0
    }

    /// Router Lifetime, seconds: 0 means "not a default router".
    pub fn router_lifetime(&self) -> u16 {
        be16(self.bytes, 6)
    }

    /// Reachable Time, milliseconds (0: unspecified).
    pub fn reachable_time(&self) -> u32 {
        be32(self.bytes, 8)
    }

    /// Retrans Timer, milliseconds (0: unspecified).
    pub fn retrans_timer(&self) -> u32 {
        be32(self.bytes, 12)
    }

    /// The options, as (type, whole option including its two header bytes). The chain
    /// was checked by `new_checked`.
    pub fn options(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let bytes = self.bytes;
        let mut at = HEADER_LEN;
        std::iter::from_fn(move || {
            let kind = *bytes.get(at)?;
            let len = usize::from(*bytes.get(at + 1)?) * 8;
            let opt = bytes.get(at..at.checked_add(len)?)?;
            if len == 0 {
                return None;
            }
            at += len;
            Some((kind, opt))
        })
    }

    /// The router's link-layer address, from the first well-formed Source Link-Layer
    /// Address option.
    pub fn source_link_addr(&self) -> Option<Mac> {
        self.options()
            .find(|(kind, opt)| *kind == OPT_SOURCE_LL && opt.len() == 8)
            .and_then(|(_, opt)| Some(Mac(opt.get(2..8)?.try_into().ok()?)))
    }

    /// The link MTU, from the first well-formed MTU option.
    pub fn mtu(&self) -> Option<u32> {
        self.options()
            .find(|(kind, opt)| *kind == OPT_MTU && opt.len() == 8)
            .map(|(_, opt)| be32(opt, 4))
    }

    /// Every well-formed Prefix Information option (length 4, a prefix length up to
    /// 128), in order.
    pub fn prefixes(&self) -> impl Iterator<Item = PrefixInfo> + 'a {
        self.options().filter_map(|(kind, opt)| {
            if kind != OPT_PREFIX_INFO || opt.len() != 32 {
                return None;
            }
            let prefix_len = opt[2];
            if prefix_len > 128 {
                return None;
            }
            let prefix: [u8; 16] = opt.get(16..32)?.try_into().ok()?;
            Some(PrefixInfo {
                prefix: Ipv6Addr::from(prefix),
                prefix_len,
                on_link: opt[3] & FLAG_ON_LINK != 0,
                autonomous: opt[3] & FLAG_AUTONOMOUS != 0,
                valid_lifetime: be32(opt, 4),
                preferred_lifetime: be32(opt, 8),
            })
        })
    }
}

/// Length of the Router Solicitation `write_router_solicit` writes: 8 bytes of ICMPv6
/// header and reserved field, then a Source Link-Layer Address option.
pub const RS_LEN: usize = 16;

/// Writes a Router Solicitation with `mac` as its source link-layer address into
/// `buf[..RS_LEN]` (RFC 4861 section 4.1). Checksum left 0. `None` if `buf` is short.
pub fn write_router_solicit(buf: &mut [u8], mac: Mac) -> Option<()> {
    let b = buf.get_mut(..RS_LEN)?;
    b.fill(0);
    b[0] = icmpv6::ROUTER_SOLICIT;
    b[8] = OPT_SOURCE_LL;
    b[9] = 1;
    b[10..16].copy_from_slice(&mac.0);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RA with router lifetime 1800 s, M set, an SLLA option, a /64 prefix (L, A,
    /// valid 86400, preferred 14400) and an MTU option.
    fn ra() -> Vec<u8> {
        let mut b = vec![134, 0, 0, 0, 64, 0x80, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[1, 1, 2, 0, 0, 0, 2, 2]);
        let mut pio = vec![3, 4, 64, 0xc0];
        pio.extend_from_slice(&86400u32.to_be_bytes());
        pio.extend_from_slice(&14400u32.to_be_bytes());
        pio.extend_from_slice(&[0; 4]);
        pio.extend_from_slice(&"2001:db8:ff::".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&pio);
        b.extend_from_slice(&[5, 1, 0, 0, 0, 0, 0x05, 0xdc]);
        b
    }

    #[test]
    fn rfc4861_4_2_fields_and_options() {
        let bytes = ra();
        let ra = RouterAdvert::new_checked(&bytes).unwrap();
        assert_eq!((ra.hop_limit(), ra.router_lifetime()), (64, 1800));
        assert!(ra.managed() && !ra.other());
        assert_eq!(ra.source_link_addr(), Some(Mac([2, 0, 0, 0, 2, 2])));
        assert_eq!(ra.mtu(), Some(1500));
        let p: Vec<PrefixInfo> = ra.prefixes().collect();
        assert_eq!(
            p,
            vec![PrefixInfo {
                prefix: "2001:db8:ff::".parse().unwrap(),
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
            }]
        );
    }

    #[test]
    fn rfc4861_6_1_2_short_zero_length_and_overrunning_options_are_invalid() {
        let bytes = ra();
        assert_eq!(
            RouterAdvert::new_checked(&bytes[..15]).unwrap_err(),
            WireError::Truncated
        );
        let mut zero = bytes.clone();
        zero[17] = 0;
        assert_eq!(
            RouterAdvert::new_checked(&zero).unwrap_err(),
            WireError::Malformed
        );
        let mut over = bytes.clone();
        over.truncate(bytes.len() - 1);
        assert!(RouterAdvert::new_checked(&over).is_err());
        let mut code = bytes.clone();
        code[1] = 1;
        assert!(RouterAdvert::new_checked(&code).is_err());
        let mut odd = bytes;
        odd.push(5);
        assert_eq!(
            RouterAdvert::new_checked(&odd).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn rfc4861_4_6_2_a_prefix_option_of_the_wrong_length_is_skipped() {
        let mut bytes = ra();
        // The PIO (at 24) claims 5 units; pad so the chain still ends in the message.
        bytes[25] = 5;
        bytes.truncate(24 + 32);
        bytes.extend_from_slice(&[0; 8]);
        let ra = RouterAdvert::new_checked(&bytes).unwrap();
        assert_eq!(ra.prefixes().count(), 0);
        assert_eq!(ra.source_link_addr(), Some(Mac([2, 0, 0, 0, 2, 2])));
    }

    #[test]
    fn rfc4861_4_1_router_solicit_layout() {
        let mut b = [0xaa; 20];
        write_router_solicit(&mut b, Mac([2, 0, 0, 0, 2, 1])).unwrap();
        assert_eq!(
            &b[..RS_LEN],
            &[133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 2, 1]
        );
        assert!(write_router_solicit(&mut [0; 15], Mac::default()).is_none());
    }
}
