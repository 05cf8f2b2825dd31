//! TCP headers (RFC 9293 section 3.1) and the MSS option (section 3.2).

use super::checksum::Csum;
use super::{be16, be32, set_be16, WireError};

pub const MIN_HEADER_LEN: usize = 20;
/// Offset of the checksum field; an ICMP error quoting fewer bytes cannot fix it.
pub const CHECKSUM_OFFSET: usize = 16;
/// Where the source port is.
pub const SRC_PORT_OFFSET: usize = 0;
/// Where the destination port is.
pub const DST_PORT_OFFSET: usize = 2;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const OPT_WSCALE: u8 = 3;

/// A view of a TCP segment.
#[derive(Debug)]
pub struct Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks that the header, options included, fits the buffer.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = usize::from(b[12] >> 4) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if b.len() < header_len {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buf })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buf.as_ref(), 0)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buf.as_ref(), DST_PORT_OFFSET)
    }

    pub fn seq(&self) -> u32 {
        be32(self.buf.as_ref(), 4)
    }

    pub fn ack(&self) -> u32 {
        be32(self.buf.as_ref(), 8)
    }

    /// The raw window field (RFC 7323: scaled on every segment but a SYN).
    pub fn window(&self) -> u16 {
        be16(self.buf.as_ref(), 14)
    }

    /// Bytes after the header: the payload of a segment cut at its IP end.
    pub fn payload_len(&self) -> usize {
        self.buf.as_ref().len() - self.header_len()
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buf.as_ref()[12] >> 4) * 4
    }

    /// The flag bits CWR..FIN.
    pub fn flags(&self) -> u8 {
        self.buf.as_ref()[13]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buf.as_ref(), CHECKSUM_OFFSET)
    }

    /// Offset (from the TCP header start) of the MSS option's 16-bit value, if any.
    pub fn mss_offset(&self) -> Option<usize> {
        self.option(OPT_MSS, 4)
    }

    /// The window scale option's shift count (RFC 7323 section 2.2), if present.
    pub fn wscale(&self) -> Option<u8> {
        self.option(OPT_WSCALE, 3).map(|at| self.buf.as_ref()[at])
    }

    /// Offset of the value of the first option of `kind` and total length `len`. The
    /// walk stops at a malformed option, so the offset is always within the header.
    fn option(&self, want: u8, want_len: usize) -> Option<usize> {
        let b = self.buf.as_ref();
        let end = self.header_len();
        let mut at = MIN_HEADER_LEN;
        while at < end {
            match b[at] {
                OPT_END => return None,
                OPT_NOP => at += 1,
                kind => {
                    let len = usize::from(*b.get(at + 1)?);
                    if len < 2 || at + len > end {
                        return None;
                    }
                    if kind == want && len == want_len {
                        return Some(at + 2);
                    }
                    at += len;
                }
            }
        }
        None
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

    /// Lowers the MSS option to `clamp` if it is larger, keeping the checksum valid.
    /// Returns whether the segment changed.
    pub fn clamp_mss(&mut self, clamp: u16, csum: Csum) -> bool {
        let Some(at) = self.mss_offset() else {
            return false;
        };
        let b = self.buf.as_mut();
        let mss = be16(b, at);
        if mss <= clamp {
            return false;
        }
        set_be16(b, at, clamp);
        // A partial checksum is completed over the option later: it stays as it is.
        if csum == Csum::Full {
            let c = super::checksum::update16(be16(b, CHECKSUM_OFFSET), mss, clamp);
            set_be16(b, CHECKSUM_OFFSET, c);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use std::net::Ipv4Addr;

    fn syn_with_options(options: &[u8]) -> Vec<u8> {
        let hl = MIN_HEADER_LEN + options.len();
        let mut b = vec![0u8; hl];
        b[0..2].copy_from_slice(&40000u16.to_be_bytes());
        b[2..4].copy_from_slice(&80u16.to_be_bytes());
        b[4..8].copy_from_slice(&0x01020304u32.to_be_bytes());
        b[12] = ((hl / 4) as u8) << 4;
        b[13] = SYN;
        b[MIN_HEADER_LEN..].copy_from_slice(options);
        let sum = checksum::pseudo_v4(
            Ipv4Addr::new(10, 10, 0, 2),
            Ipv4Addr::new(198, 51, 100, 1),
            6,
            hl as u16,
        );
        let c = sum.add_bytes(&b).finish();
        b[16..18].copy_from_slice(&c.to_be_bytes());
        b
    }

    fn verifies(b: &[u8]) -> bool {
        checksum::pseudo_v4(
            Ipv4Addr::new(10, 10, 0, 2),
            Ipv4Addr::new(198, 51, 100, 1),
            6,
            b.len() as u16,
        )
        .add_bytes(b)
        .finish()
            == 0
    }

    #[test]
    fn parses_fields() {
        let b = syn_with_options(&[]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.seq()),
            (40000, 80, 0x01020304)
        );
        assert_eq!(p.flags(), SYN);
        assert!(verifies(&b));
    }

    #[test]
    fn clamps_mss_after_nops_and_keeps_checksum() {
        // NOP, NOP, SACK-permitted, MSS 1460, NOP, NOP, NOP, NOP.
        let mut b = syn_with_options(&[1, 1, 4, 2, 2, 4, 0x05, 0xb4, 1, 1, 1, 1]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.mss_offset(), Some(26));
        assert_eq!(p.wscale(), None);
        assert!(p.clamp_mss(1400, Csum::Full));
        assert!(!p.clamp_mss(1450, Csum::Full));
        assert_eq!(u16::from_be_bytes([b[26], b[27]]), 1400);
        assert!(verifies(&b));
    }

    /// Under a partial checksum the field is the pseudo-header sum: the clamp changes
    /// the option and leaves the field alone.
    #[test]
    fn clamp_leaves_a_partial_checksum_alone() {
        let mut b = syn_with_options(&[2, 4, 0x05, 0xb4]);
        b[16..18].copy_from_slice(&0x1234u16.to_be_bytes());
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert!(p.clamp_mss(1300, Csum::Partial));
        assert_eq!(u16::from_be_bytes([b[22], b[23]]), 1300);
        assert_eq!(u16::from_be_bytes([b[16], b[17]]), 0x1234);
    }

    #[test]
    fn rfc7323_window_scale_option() {
        // MSS 1460, NOP, window scale 7.
        let b = syn_with_options(&[2, 4, 0x05, 0xb4, 1, 3, 3, 7]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.wscale(), p.payload_len()), (Some(7), 0));
        let b = syn_with_options(&[1, 3, 4, 7]); // wrong length
        assert_eq!(Packet::new_checked(&b[..]).unwrap().wscale(), None);
    }

    #[test]
    fn malformed_options_are_ignored() {
        let b = syn_with_options(&[2, 0, 0, 0]); // zero-length option
        assert_eq!(Packet::new_checked(&b[..]).unwrap().mss_offset(), None);
        let b = syn_with_options(&[1, 1, 2, 9]); // runs past the header
        assert_eq!(Packet::new_checked(&b[..]).unwrap().mss_offset(), None);
    }

    #[test]
    fn refuses_bad_data_offset() {
        let mut b = syn_with_options(&[]);
        assert_eq!(
            Packet::new_checked(&b[..19]).unwrap_err(),
            WireError::Truncated
        );
        b[12] = 4 << 4;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            WireError::Malformed
        );
        b[12] = 6 << 4;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated
        );
    }
}
