//! Typed zero-copy views over packet bytes, one module per protocol.
//!
//! Views follow smoltcp's shape: `X::new_checked(buf)` validates lengths once, after
//! which accessors cannot fail or panic; setters exist only where the buffer is
//! `AsMut<[u8]>`. Unknown protocol numbers are plain values, never errors. Nothing here
//! allocates, and nothing here imports the rest of natbox.

pub mod arp;
pub mod checksum;
pub mod emit;
pub mod ethernet;
pub mod icmp;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod offload;
pub mod ra;
pub mod tcp;
pub mod udp;

/// Why bytes could not be viewed as a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header (or a length field) requires.
    Truncated,
    /// A field holds a value the protocol forbids (bad version, header length, ...).
    Malformed,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "packet truncated",
            WireError::Malformed => "malformed header",
        })
    }
}

/// IP protocol numbers natbox handles (IANA "Assigned Internet Protocol Numbers").
pub mod proto {
    pub const HOPOPT: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6_ROUTE: u8 = 43;
    pub const IPV6_FRAG: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const IPV6_NONXT: u8 = 59;
    pub const IPV6_OPTS: u8 = 60;
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn set_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn set_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
