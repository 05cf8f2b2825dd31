//! In-place NAPT rewrites with incremental checksums (RFC 1624, RFC 3022 section 4.2),
//! and the parsing and rewriting of the datagram quoted in an ICMP error
//! (RFC 5508 section 4.1).
//!
//! A TCP/UDP checksum left partial by the sender (CHECKSUM_PARTIAL, GSO super-frames;
//! see `wire::offload`) holds the pseudo-header sum: an address rewrite updates it as
//! such, a port rewrite leaves it alone (the final sum covers the new port), as Linux's
//! `inet_proto_csum_replace4`/`_replace2` do for `CHECKSUM_PARTIAL`.

use super::super::flow::track::Dir;
use super::super::stats::DropReason;
use crate::wire::checksum::{update16, update32, update32_partial, update_addr_port, Csum};
use crate::wire::{be16, be32, icmpv4, ipv4, proto, set_be16, set_be32};

/// Which end of a packet a rewrite changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Src,
    Dst,
}

impl End {
    fn addr_offset(self) -> usize {
        match self {
            End::Src => 12,
            End::Dst => 16,
        }
    }

    fn port_offset(self) -> usize {
        match self {
            End::Src => 0,
            End::Dst => 2,
        }
    }
}

/// Rewrites one end's address and port (ICMP: echo identifier) of the datagram at
/// `ip`, whose transport header starts at `l4`, keeping every checksum valid. `csum`
/// says what a TCP/UDP checksum field holds.
#[inline]
pub fn rewrite(
    ip: &mut [u8],
    l4: usize,
    protocol: u8,
    end: End,
    (addr, port): (u32, u16),
    csum: Csum,
) {
    let old_addr = set_addr(ip, 10, end.addr_offset(), addr);
    rewrite_transport(
        &mut ip[l4..],
        protocol,
        end,
        (old_addr, addr),
        port,
        (usize::MAX, csum),
    );
}

/// Writes an address at `at` of an IPv4 header whose checksum is at `check`; returns
/// the old address.
fn set_addr(ip: &mut [u8], check: usize, at: usize, addr: u32) -> u32 {
    let old = be32(ip, at);
    set_be32(ip, at, addr);
    let c = update32(be16(ip, check), old, addr);
    set_be16(ip, check, c);
    old
}

/// Rewrites a transport header's port on `end` after its IP address changed from
/// `addrs.0` to `addrs.1`. `avail` is how many transport bytes exist (a quote may be
/// cut short): a checksum beyond them is left alone; `csum` is what a TCP/UDP checksum
/// field holds.
fn rewrite_transport(
    t: &mut [u8],
    protocol: u8,
    end: End,
    addrs: (u32, u32),
    port: u16,
    (avail, csum): (usize, Csum),
) {
    let at = end.port_offset();
    // A TCP/UDP checksum after the address and port changed.
    let update = |c: u16, old_port: u16| match csum {
        Csum::Full => update_addr_port(c, (addrs.0, old_port), (addrs.1, port)),
        Csum::Partial => update32_partial(c, addrs.0, addrs.1),
    };
    match protocol {
        proto::TCP => {
            let old_port = be16(t, at);
            set_be16(t, at, port);
            if avail >= crate::wire::tcp::CHECKSUM_OFFSET + 2 {
                let off = crate::wire::tcp::CHECKSUM_OFFSET;
                set_be16(t, off, update(be16(t, off), old_port));
            }
        }
        proto::UDP => {
            let old_port = be16(t, at);
            set_be16(t, at, port);
            let off = crate::wire::udp::CHECKSUM_OFFSET;
            let c = be16(t, off);
            // RFC 768: zero means "no checksum" and must stay zero (a partial sum
            // includes the protocol number and is never zero).
            if c != 0 {
                let c = update(c, old_port);
                set_be16(t, off, if c == 0 { 0xffff } else { c });
            }
        }
        proto::ICMP => {
            let old_id = be16(t, 4);
            set_be16(t, 4, port);
            let c = update16(be16(t, 2), old_id, port);
            set_be16(t, 2, c);
        }
        _ => {}
    }
}

/// The datagram quoted by an ICMP error, as far as NAT needs it.
#[derive(Debug, Clone, Copy)]
pub struct Quoted {
    pub proto: u8,
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    /// Offset of the quoted IPv4 header within the outer datagram.
    off: usize,
    header_len: usize,
    /// Transport bytes present in the quote.
    avail: usize,
}

/// Parses the quote of the ICMPv4 error in datagram `ip`. RFC 792 guarantees the
/// quoted header plus 8 bytes; less is malformed.
pub fn quoted(ip: &[u8]) -> Result<Quoted, DropReason> {
    let outer = ipv4::Packet::new_checked(ip).map_err(|_| DropReason::Ipv4Malformed)?;
    let off = outer.header_len() + icmpv4::HEADER_LEN;
    let q = outer
        .payload()
        .get(icmpv4::HEADER_LEN..)
        .ok_or(DropReason::L4Truncated)?;
    if q.len() < ipv4::MIN_HEADER_LEN || q[0] >> 4 != 4 {
        return Err(DropReason::L4Truncated);
    }
    let header_len = usize::from(q[0] & 0x0f) * 4;
    if header_len < ipv4::MIN_HEADER_LEN || q.len() < header_len + 8 {
        return Err(DropReason::L4Truncated);
    }
    let t = &q[header_len..];
    let protocol = q[9];
    let (sport, dport) = match protocol {
        proto::TCP | proto::UDP => (be16(t, 0), be16(t, 2)),
        proto::ICMP if matches!(t[0], icmpv4::ECHO_REQUEST | icmpv4::ECHO_REPLY) => {
            (be16(t, 4), be16(t, 4))
        }
        _ => return Err(DropReason::IcmpErrorNoMatch),
    };
    Ok(Quoted {
        proto: protocol,
        src: be32(q, 12),
        dst: be32(q, 16),
        sport,
        dport,
        off,
        header_len,
        avail: t.len(),
    })
}

/// Translates an ICMP error travelling `dir`: inbound errors quote our outbound packet
/// (its source becomes the inside endpoint, and so does the outer destination);
/// outbound errors quote an inbound packet (its destination becomes the external
/// endpoint, and so does the outer source). The ICMP checksum is recomputed over the
/// whole message, since most of its words changed.
pub fn rewrite_icmp_error(ip: &mut [u8], q: &Quoted, dir: Dir, addr: u32, port: u16) {
    let end = match dir {
        Dir::In => End::Src,
        Dir::Out => End::Dst,
    };
    let qip = &mut ip[q.off..];
    let old = set_addr(qip, 10, end.addr_offset(), addr);
    rewrite_transport(
        &mut qip[q.header_len..],
        q.proto,
        end,
        (old, addr),
        port,
        (q.avail, Csum::Full),
    );
    let mut outer = ipv4::Packet::new_checked(&mut ip[..]).expect("parsed by quoted()");
    match dir {
        Dir::In => outer.set_dst(std::net::Ipv4Addr::from_bits(addr)),
        Dir::Out => outer.set_src(std::net::Ipv4Addr::from_bits(addr)),
    }
    let mut icmp = icmpv4::Packet::new_checked(outer.payload_mut()).expect("parsed by quoted()");
    icmp.fill_checksum();
}
