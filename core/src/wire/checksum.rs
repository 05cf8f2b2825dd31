//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! `Sum` accumulates 16-bit big-endian words in one's-complement arithmetic; `finish`
//! folds and inverts. `update*` rewrite a stored checksum after a field changed, using
//! RFC 1624 equation 3: `HC' = ~(~HC + ~m + m')`, which never yields the `-0` (0xffff ->
//! 0x0000) ambiguity of equation 2.
//!
//! A CHECKSUM_PARTIAL field (a sender left the sum to the NIC; see `offload.rs`) holds
//! the folded pseudo-header sum, not inverted: `update32_partial` changes a
//! pseudo-header word there, the way Linux's `inet_proto_csum_replace4` does for
//! `CHECKSUM_PARTIAL` with `pseudohdr` set (net/core/utils.c).

use std::net::{Ipv4Addr, Ipv6Addr};

/// A running one's-complement sum of 16-bit words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sum(u64);

impl Sum {
    /// Adds `data` as a sequence of big-endian 16-bit words (odd tail padded with zero).
    pub fn add_bytes(mut self, data: &[u8]) -> Sum {
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            self.0 += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            self.0 += u64::from(u32::from_be_bytes([c[4], c[5], c[6], c[7]]));
        }
        let mut words = chunks.remainder().chunks_exact(2);
        for w in &mut words {
            self.0 += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            self.0 += u64::from(*last) << 8;
        }
        self
    }

    /// Adds one 16-bit word.
    pub fn add_u16(self, word: u16) -> Sum {
        Sum(self.0 + u64::from(word))
    }

    /// Adds a 32-bit value as two words.
    pub fn add_u32(self, v: u32) -> Sum {
        Sum(self.0 + u64::from(v >> 16) + u64::from(v & 0xffff))
    }

    /// Folds the sum to 16 bits (not inverted).
    pub fn fold(self) -> u16 {
        let mut s = self.0;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// The checksum field value: the inverted folded sum.
    pub fn finish(self) -> u16 {
        !self.fold()
    }
}

/// The checksum of `data` alone (e.g. an IPv4 header or an ICMPv4 message).
pub fn checksum(data: &[u8]) -> u16 {
    Sum::default().add_bytes(data).finish()
}

/// The TCP/UDP pseudo-header sum for IPv4 (RFC 793 section 3.1).
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> Sum {
    Sum::default()
        .add_u32(src.to_bits())
        .add_u32(dst.to_bits())
        .add_u16(u16::from(proto))
        .add_u16(len)
}

/// The upper-layer pseudo-header sum for IPv6 (RFC 8200 section 8.1).
pub fn pseudo_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, len: u32) -> Sum {
    Sum::default()
        .add_bytes(&src.octets())
        .add_bytes(&dst.octets())
        .add_u32(len)
        .add_u16(u16::from(next_header))
}

/// RFC 1624 eqn. 3 for one 16-bit word changing from `old` to `new`.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let sum = u32::from(!check) + u32::from(!old) + u32::from(new);
    !fold32(sum)
}

/// RFC 1624 eqn. 3 for a 32-bit value (e.g. an IPv4 address) changing.
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let sum = u32::from(!check)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + (new >> 16)
        + (new & 0xffff);
    !fold32(sum)
}

/// What a TCP/UDP checksum field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Csum {
    /// The complete checksum (RFC 793/768).
    Full,
    /// The folded pseudo-header sum only (CHECKSUM_PARTIAL): whoever transmits the
    /// frame completes it over the transport header and payload.
    Partial,
}

/// A 32-bit pseudo-header value (an address) changing under a CHECKSUM_PARTIAL field:
/// `sum' = sum - old + new`, no inversion. Changes to bytes the final sum covers (ports,
/// options) must not touch such a field at all.
#[inline]
pub fn update32_partial(sum: u16, old: u32, new: u32) -> u16 {
    !update32(!sum, old, new)
}

/// RFC 1624 eqn. 3 for an address and a port changing together (a NAPT rewrite).
#[inline]
pub fn update_addr_port(check: u16, old: (u32, u16), new: (u32, u16)) -> u16 {
    let sum = u32::from(!check)
        + u32::from(!(old.0 >> 16) as u16)
        + u32::from(!(old.0 as u16))
        + u32::from(!old.1)
        + (new.0 >> 16)
        + (new.0 & 0xffff)
        + u32::from(new.1);
    !fold32(sum)
}

/// RFC 1624 eqn. 3 for an arbitrary even-length byte range changing.
pub fn update_bytes(check: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    let removed = Sum::default().add_bytes(old).fold();
    let added = Sum::default().add_bytes(new).fold();
    update16(check, removed, added)
}

#[inline]
fn fold32(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 section 3 worked example.
    #[test]
    fn rfc1071_example_sum() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(Sum::default().add_bytes(&data).fold(), 0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(
            Sum::default().add_bytes(&[0x12, 0x34, 0x56]).fold(),
            0x1234 + 0x5600
        );
    }

    /// A real IPv4 header (from a capture) whose checksum is 0xb861.
    #[test]
    fn ipv4_header_golden() {
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }

    /// RFC 1624 section 4: eqn. 3 gives 0x0000 where eqn. 2 would give 0xffff.
    #[test]
    fn rfc1624_section4_example() {
        // Header sums to 0xcd7a, checksum 0x3285; a word changes 0x5555 -> 0x3285.
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    /// A partial field updated for an address change equals the pseudo-header sum
    /// computed afresh with the new address.
    #[test]
    fn partial_update_is_a_pseudo_header_sum() {
        let (a, b, c) = (
            Ipv4Addr::new(10, 10, 0, 2),
            Ipv4Addr::new(203, 0, 113, 5),
            Ipv4Addr::new(198, 51, 100, 10),
        );
        for len in [20u16, 1480, 65000] {
            let before = pseudo_v4(a, b, 6, len).fold();
            let after = update32_partial(before, a.to_bits(), c.to_bits());
            let fresh = pseudo_v4(c, b, 6, len).fold();
            // Equal as one's-complement values (0 and 0xffff are both zero).
            assert_eq!(after % 0xffff, fresh % 0xffff);
        }
    }

    #[test]
    fn incremental_matches_full_recompute() {
        let mut data: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37)).collect();
        let before = checksum(&data);
        let old = u32::from_be_bytes(data[12..16].try_into().unwrap());
        let new: u32 = 0xc633_640a;
        data[12..16].copy_from_slice(&new.to_be_bytes());
        assert_eq!(update32(before, old, new), checksum(&data));
        let old_port = u16::from_be_bytes([data[20], data[21]]);
        let old_addr = u32::from_be_bytes(data[16..20].try_into().unwrap());
        let c = checksum(&data);
        data[16..20].copy_from_slice(&1u32.to_be_bytes());
        data[20..22].copy_from_slice(&65535u16.to_be_bytes());
        assert_eq!(
            update_addr_port(c, (old_addr, old_port), (1, 65535)),
            checksum(&data)
        );
    }
}
