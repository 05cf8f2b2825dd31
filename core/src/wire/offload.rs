//! Checksum and segmentation offload metadata: the `virtio_net_hdr` that AF_PACKET
//! puts in front of every frame with `PACKET_VNET_HDR` (packet(7);
//! include/uapi/linux/virtio_net.h; net/packet/af_packet.c `packet_rcv_vnet`,
//! `__packet_snd_vnet_parse`; include/linux/virtio_net.h `virtio_net_hdr_to_skb`/
//! `_from_skb`), and completing transport checksums that a sender left partial.
//!
//! Contract:
//! - A frame flagged `VIRTIO_NET_HDR_F_NEEDS_CSUM` is CHECKSUM_PARTIAL: the 16-bit
//!   field at `csum_start + csum_offset` holds the folded, *not inverted* sum of the
//!   pseudo-header (Documentation/networking/checksum-offloads.rst); whoever finally
//!   transmits sums `csum_start..end` into it. Rewrites of such a frame update the
//!   field only for pseudo-header changes (addresses), and not for ports or other
//!   bytes the final sum covers ([`checksum::update32_partial`], like Linux's
//!   `inet_proto_csum_replace4` with `pseudohdr` set).
//! - A GSO super-frame (`gso_type` TCPV4, TCPV6 or UDP_L4, up to 64 KiB) is one IP
//!   packet whose payload the kernel (or a virtio/veth peer) cuts into `gso_size`-byte
//!   segments; it is always CHECKSUM_PARTIAL. Each segment's network-layer length is
//!   the IP header(s) + transport header + `gso_size` ([`Offload::gso_segment`]): that,
//!   not the super-frame's length, is compared with the egress MTU, as the kernel's
//!   forwarding does (`ip_exceeds_mtu`, `skb_gso_validate_network_len`).
//! - [`prepare`] accepts only layouts natbox can translate: `csum_start` at the
//!   TCP/UDP header of an unfragmented IPv4/IPv6 packet, `csum_offset` at its checksum
//!   field, GSO type matching the IP version and transport. A non-GSO partial frame of
//!   any other layout has its checksum completed in software (the kernel's
//!   `skb_checksum_help`); a GSO frame of any other layout is refused.
//! - A frame the engine keeps in a buffer of its own (parked while a neighbour is
//!   resolved) must carry a full checksum: [`complete_checksum`] recomputes the
//!   TCP/UDP checksum from scratch over the pseudo-header and the whole segment.

use super::checksum::{Csum, Sum};
use super::{ethernet, ipv4, ipv6, proto, set_be16, tcp, udp};

/// `sizeof(struct virtio_net_hdr)`.
pub const VNET_HDR_LEN: usize = 10;
/// The largest IP packet a GSO super-frame carries (IPv4 total length, IPv6 payload
/// length without jumbograms), plus its Ethernet header.
pub const MAX_GSO_FRAME: usize = ethernet::HEADER_LEN + 65535 + 40;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_*`.
pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_UDP: u8 = 3;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_UDP_L4: u8 = 5;
pub const GSO_ECN: u8 = 0x80;

/// `struct virtio_net_hdr` (legacy layout, native byte order: AF_PACKET uses
/// `vio_le()`, i.e. the host's order for legacy virtio).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads the header from the first `VNET_HDR_LEN` bytes of `b`.
    pub fn read(b: &[u8; VNET_HDR_LEN]) -> VnetHdr {
        let u = |at: usize| u16::from_ne_bytes([b[at], b[at + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        }
    }

    /// Writes the header into `b`.
    pub fn write(&self, b: &mut [u8; VNET_HDR_LEN]) {
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
    }
}

/// What the engine must know about a frame's offload state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offload {
    /// What the TCP/UDP checksum field holds.
    pub csum: Csum,
    /// For a GSO super-frame: the network-layer length of each segment it becomes (IP
    /// header(s) + transport header + `gso_size`).
    pub gso_segment: Option<usize>,
}

impl Offload {
    /// A plain frame: full checksums, no segmentation.
    pub const NONE: Offload = Offload {
        csum: Csum::Full,
        gso_segment: None,
    };

    /// The length to compare with an MTU, for an IP packet of `total` bytes.
    pub fn network_len(&self, total: usize) -> usize {
        self.gso_segment.unwrap_or(total)
    }
}

/// A frame with offload metadata natbox cannot translate (a GSO type or checksum
/// layout other than TCP/UDP over unfragmented IPv4/IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

/// The transport header of a frame, as the offload checks need it.
struct L4 {
    ethertype: u16,
    protocol: u8,
    /// Offset of the transport header in the frame.
    start: usize,
    /// End of the IP packet in the frame.
    end: usize,
    pseudo: Sum,
}

/// Finds the TCP/UDP header of an Ethernet frame carrying an unfragmented IPv4 or IPv6
/// packet.
fn transport(frame: &[u8]) -> Option<L4> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let ethertype = eth.ethertype();
    let ip = &frame[ethernet::HEADER_LEN..];
    let (protocol, offset, end, pseudo) = match ethertype {
        ethernet::ethertype::IPV4 => {
            let p = ipv4::Packet::new_checked(ip).ok()?;
            if p.is_fragment() {
                return None;
            }
            (
                p.protocol(),
                p.header_len(),
                p.total_len(),
                p.pseudo_header(),
            )
        }
        ethernet::ethertype::IPV6 => {
            let p = ipv6::Packet::new_checked(ip).ok()?;
            let upper = p.upper_layer().ok()?;
            if upper.fragment.is_some() {
                return None;
            }
            let end = p.total_len();
            let pseudo = p.pseudo_header(upper.protocol, end - upper.offset);
            (upper.protocol, upper.offset, end, pseudo)
        }
        _ => return None,
    };
    Some(L4 {
        ethertype,
        protocol,
        start: ethernet::HEADER_LEN + offset,
        end: ethernet::HEADER_LEN + end,
        pseudo,
    })
}

/// Checks a received frame's offload metadata `h` and turns it into what the engine
/// needs; rewrites `h` in place into the header to transmit the frame with (the same
/// offloads, `hdr_len` = the real header length; all zero when nothing is offloaded
/// any more). A non-GSO partial checksum in a layout the engine does not rewrite is
/// completed here, in software.
pub fn prepare(frame: &mut [u8], h: &mut VnetHdr) -> Result<Offload, Unsupported> {
    let gso = h.gso_type & !GSO_ECN;
    if h.flags & F_NEEDS_CSUM == 0 {
        if gso != GSO_NONE {
            return Err(Unsupported);
        }
        *h = VnetHdr::default();
        return Ok(Offload::NONE);
    }
    let layout = transport(frame).and_then(|l| {
        let (offset, header_len) = match l.protocol {
            proto::TCP => (
                tcp::CHECKSUM_OFFSET,
                tcp::Packet::new_checked(frame.get(l.start..l.end)?)
                    .ok()?
                    .header_len(),
            ),
            proto::UDP if l.end >= l.start + udp::HEADER_LEN => {
                (udp::CHECKSUM_OFFSET, udp::HEADER_LEN)
            }
            _ => return None,
        };
        let matches = usize::from(h.csum_start) == l.start
            && usize::from(h.csum_offset) == offset
            && l.end <= frame.len();
        let headers = l.start + header_len;
        matches.then_some((l, headers))
    });
    if gso == GSO_NONE {
        return match layout {
            Some((_, headers)) => {
                h.hdr_len = headers as u16;
                Ok(Offload {
                    csum: Csum::Partial,
                    gso_segment: None,
                })
            }
            None => {
                finish_partial(frame, h.csum_start, h.csum_offset)?;
                *h = VnetHdr::default();
                Ok(Offload::NONE)
            }
        };
    }
    let (l, headers) = layout.ok_or(Unsupported)?;
    let fits = match gso {
        GSO_TCPV4 => l.ethertype == ethernet::ethertype::IPV4 && l.protocol == proto::TCP,
        GSO_TCPV6 => l.ethertype == ethernet::ethertype::IPV6 && l.protocol == proto::TCP,
        GSO_UDP_L4 => l.protocol == proto::UDP,
        _ => false,
    };
    if !fits || h.gso_size == 0 {
        return Err(Unsupported);
    }
    h.hdr_len = headers as u16;
    Ok(Offload {
        csum: Csum::Partial,
        gso_segment: Some(headers - ethernet::HEADER_LEN + usize::from(h.gso_size)),
    })
}

/// Completes a partial checksum the way the kernel's `skb_checksum_help` does: the
/// one's-complement sum of `start..` (whose checksum field already holds the
/// pseudo-header sum), inverted, stored at `start + offset` (0 sent as 0xffff).
pub fn finish_partial(frame: &mut [u8], start: u16, offset: u16) -> Result<(), Unsupported> {
    let (start, at) = (usize::from(start), usize::from(start) + usize::from(offset));
    if at + 2 > frame.len() {
        return Err(Unsupported);
    }
    let c = Sum::default().add_bytes(&frame[start..]).finish();
    set_be16(frame, at, if c == 0 { 0xffff } else { c });
    Ok(())
}

/// Recomputes the TCP/UDP checksum of an Ethernet frame carrying an unfragmented IPv4
/// or IPv6 datagram. Returns false (frame unchanged) for anything else.
pub fn complete_checksum(frame: &mut [u8]) -> bool {
    let Some(l) = transport(frame) else {
        return false;
    };
    let Some(segment) = frame.get_mut(l.start..l.end) else {
        return false;
    };
    let at = match l.protocol {
        proto::TCP if segment.len() >= tcp::MIN_HEADER_LEN => tcp::CHECKSUM_OFFSET,
        proto::UDP if segment.len() >= udp::HEADER_LEN => udp::CHECKSUM_OFFSET,
        _ => return false,
    };
    set_be16(segment, at, 0);
    let c = l.pseudo.add_bytes(segment).finish();
    // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
    let c = if c == 0 && l.protocol == proto::UDP {
        0xffff
    } else {
        c
    };
    set_be16(segment, at, c);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::{pseudo_v4, pseudo_v6, update32_partial};
    use crate::wire::{be16, be32, set_be32};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
    const PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

    fn frame4(protocol: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        ethernet::write_header(
            &mut f,
            ethernet::Mac::BROADCAST,
            ethernet::Mac::default(),
            ethernet::ethertype::IPV4,
        );
        let mut ip = vec![0u8; 20];
        ipv4::write_header(
            &mut ip,
            &ipv4::Header {
                src: SRC,
                dst: DST,
                protocol,
                ttl: 64,
                ident: 7,
                payload_len: l4.len(),
            },
        );
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        f
    }

    /// A TCP super-frame as a TSO sender hands it over: `payload` bytes after a
    /// 32-byte header (12 bytes of options), checksum field = folded pseudo-header sum
    /// over the whole segment.
    fn tcp_super(payload: usize) -> Vec<u8> {
        let mut t = vec![0u8; 32 + payload];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&443u16.to_be_bytes());
        t[4..8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
        t[12] = 8 << 4;
        t[13] = 0x18 | tcp::FIN; // PSH ACK FIN: the flags only the last segment keeps
        t[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        for (i, b) in t[32..].iter_mut().enumerate() {
            *b = (i * 7 + i / 251) as u8;
        }
        let len = t.len() as u16;
        let partial = pseudo_v4(SRC, DST, proto::TCP, len).fold();
        t[16..18].copy_from_slice(&partial.to_be_bytes());
        frame4(proto::TCP, &t)
    }

    fn vnet(gso_type: u8, gso_size: u16, csum_start: u16, csum_offset: u16) -> VnetHdr {
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type,
            hdr_len: 0,
            gso_size,
            csum_start,
            csum_offset,
        }
    }

    /// Cuts a TCP/IPv4 super-frame into segments the way the kernel's `tcp_gso_segment`
    /// and `inet_gso_segment` do (headers copied, IP length/ID/checksum fixed, sequence
    /// numbers advanced, FIN/PSH only on the last segment, the partial checksum
    /// adjusted for each segment's length), then completes each segment's checksum as
    /// a NIC would (`finish_partial`).
    fn segment_tcp4(f: &[u8], mss: usize) -> Vec<Vec<u8>> {
        let hl = 14 + 20 + usize::from(f[46] >> 4) * 4;
        let payload = &f[hl..];
        let old_len = (f.len() - 34) as u16;
        let n = payload.len().div_ceil(mss);
        (0..n)
            .map(|i| {
                let chunk = &payload[i * mss..payload.len().min((i + 1) * mss)];
                let mut s = f[..hl].to_vec();
                s.extend_from_slice(chunk);
                let ip_len = (s.len() - 14) as u16;
                s[16..18].copy_from_slice(&ip_len.to_be_bytes());
                let id = be16(&s, 18).wrapping_add(i as u16);
                s[18..20].copy_from_slice(&id.to_be_bytes());
                s[24..26].copy_from_slice(&[0, 0]);
                let c = crate::wire::checksum::checksum(&s[14..34]);
                s[24..26].copy_from_slice(&c.to_be_bytes());
                let seq = be32(&s, 38).wrapping_add((i * mss) as u32);
                set_be32(&mut s, 38, seq);
                if i + 1 < n {
                    s[47] &= !(tcp::FIN | 0x08);
                }
                let seg_len = (s.len() - 34) as u16;
                let check = crate::wire::checksum::update16(!be16(&s, 50), old_len, seg_len);
                s[50..52].copy_from_slice(&(!check).to_be_bytes());
                finish_partial(&mut s, 34, 16).unwrap();
                s
            })
            .collect()
    }

    fn verifies4(seg: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let l4 = &seg[34..];
        pseudo_v4(src, dst, proto::TCP, l4.len() as u16)
            .add_bytes(l4)
            .finish()
            == 0
    }

    /// Golden: a NAT rewrite of a CHECKSUM_PARTIAL super-frame (source address and
    /// port changed, the field updated as a pseudo-header sum only) segments into
    /// segments that all checksum correctly with the new addresses and ports; the
    /// full-checksum update (which also folds in the port change) would not.
    #[test]
    fn partial_rewrite_then_segmentation_checksums_every_segment() {
        let mut f = tcp_super(5000);
        let mut h = vnet(GSO_TCPV4, 1400, 34, 16);
        let off = prepare(&mut f, &mut h).unwrap();
        assert_eq!(off.csum, Csum::Partial);
        assert_eq!(off.gso_segment, Some(20 + 32 + 1400));
        assert_eq!(h.hdr_len, 14 + 20 + 32);
        let mut wrong = f.clone();
        // The rewrite natbox does: source address (IP header and pseudo-header) and
        // source port; the TCP field only follows the address.
        for (g, partial) in [(&mut f, true), (&mut wrong, false)] {
            let old = be32(g, 26);
            set_be32(g, 26, PUBLIC.to_bits());
            g[34..36].copy_from_slice(&61000u16.to_be_bytes());
            let c = be16(g, 50);
            let c = if partial {
                update32_partial(c, old, PUBLIC.to_bits())
            } else {
                crate::wire::checksum::update_addr_port(c, (old, 40000), (PUBLIC.to_bits(), 61000))
            };
            g[50..52].copy_from_slice(&c.to_be_bytes());
        }
        let segs = segment_tcp4(&f, 1400);
        assert_eq!(segs.len(), 4);
        for s in &segs {
            assert!(verifies4(s, PUBLIC, DST));
            assert_eq!(be16(s, 34), 61000);
        }
        assert!(segment_tcp4(&wrong, 1400)
            .iter()
            .any(|s| !verifies4(s, PUBLIC, DST)));
        // The same frame without segmentation: finish_partial agrees with a full
        // recomputation (complete_checksum).
        let mut whole = f.clone();
        finish_partial(&mut whole, 34, 16).unwrap();
        let mut full = whole.clone();
        assert!(complete_checksum(&mut full));
        assert_eq!(whole, full);
    }

    #[test]
    fn non_gso_partial_and_plain_frames() {
        let mut f = tcp_super(100);
        let mut h = vnet(GSO_NONE, 0, 34, 16);
        let off = prepare(&mut f, &mut h).unwrap();
        assert_eq!(
            off,
            Offload {
                csum: Csum::Partial,
                gso_segment: None
            }
        );
        assert_eq!(h.hdr_len, 66);
        let mut h = VnetHdr {
            hdr_len: 99,
            ..VnetHdr::default()
        };
        assert_eq!(prepare(&mut f, &mut h), Ok(Offload::NONE));
        assert_eq!(h, VnetHdr::default());
    }

    /// A partial checksum at a place the engine does not rewrite (here: an ICMP
    /// checksum left partial) is completed in software and the frame sent plain.
    #[test]
    fn other_partial_layouts_are_completed_in_software() {
        let mut icmp = vec![8u8, 0, 0, 0, 0, 1, 0, 1, 0xaa, 0xbb];
        let mut f = frame4(proto::ICMP, &icmp);
        let mut h = vnet(GSO_NONE, 0, 34, 2);
        assert_eq!(prepare(&mut f, &mut h), Ok(Offload::NONE));
        assert_eq!(h, VnetHdr::default());
        let c = crate::wire::checksum::checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(&f[34..], &icmp[..]);
        // Out of bounds: refused.
        let mut h = vnet(GSO_NONE, 0, 43, 2);
        assert_eq!(prepare(&mut f, &mut h), Err(Unsupported));
    }

    #[test]
    fn refuses_gso_it_cannot_translate() {
        let f = tcp_super(3000);
        for h in [
            vnet(GSO_TCPV6, 1400, 34, 16),  // TCPv6 GSO on an IPv4 packet
            vnet(GSO_UDP_L4, 1400, 34, 16), // UDP GSO on TCP
            vnet(GSO_UDP, 1400, 34, 16),    // UFO
            vnet(GSO_TCPV4, 0, 34, 16),     // no segment size
            vnet(GSO_TCPV4, 1400, 30, 16),  // csum_start not at the TCP header
            vnet(GSO_TCPV4, 1400, 34, 6),   // csum_offset not at the TCP checksum
            VnetHdr {
                flags: 0,
                ..vnet(GSO_TCPV4, 1400, 34, 16)
            }, // GSO without a partial checksum
        ] {
            let mut g = f.clone();
            let mut h2 = h;
            assert_eq!(prepare(&mut g, &mut h2), Err(Unsupported), "{h:?}");
        }
        // ECN flag is carried through.
        let mut g = f.clone();
        let mut h = vnet(GSO_TCPV4 | GSO_ECN, 1400, 34, 16);
        assert!(prepare(&mut g, &mut h).is_ok());
        assert_eq!(h.gso_type, GSO_TCPV4 | GSO_ECN);
    }

    #[test]
    fn udp_l4_over_ipv6() {
        let (src, dst): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:10::2".parse().unwrap(),
            "2001:db8:ff::1".parse().unwrap(),
        );
        let payload = 3000usize;
        let ulen = 8 + payload;
        let mut f = vec![0u8; 14 + 40 + ulen];
        f[12..14].copy_from_slice(&ethernet::ethertype::IPV6.to_be_bytes());
        f[14] = 0x60;
        f[18..20].copy_from_slice(&(ulen as u16).to_be_bytes());
        f[20] = proto::UDP;
        f[21] = 64;
        f[22..38].copy_from_slice(&src.octets());
        f[38..54].copy_from_slice(&dst.octets());
        f[58..60].copy_from_slice(&(ulen as u16).to_be_bytes());
        let partial = pseudo_v6(&src, &dst, proto::UDP, ulen as u32).fold();
        f[60..62].copy_from_slice(&partial.to_be_bytes());
        let mut h = vnet(GSO_UDP_L4, 1200, 54, 6);
        let off = prepare(&mut f, &mut h).unwrap();
        assert_eq!(off.gso_segment, Some(40 + 8 + 1200));
        assert_eq!(off.network_len(ulen + 40), 1248);
        assert_eq!(h.hdr_len, 62);
    }

    #[test]
    fn vnet_header_round_trips() {
        let h = VnetHdr {
            flags: 1,
            gso_type: GSO_TCPV6 | GSO_ECN,
            hdr_len: 86,
            gso_size: 1428,
            csum_start: 54,
            csum_offset: 16,
        };
        let mut b = [0u8; VNET_HDR_LEN];
        h.write(&mut b);
        assert_eq!(VnetHdr::read(&b), h);
        assert_eq!(b[0..2], [1, 0x84]);
    }

    #[test]
    fn completes_partial_udp_checksum() {
        let payload = b"partial";
        let udp_len = 8 + payload.len();
        let mut u = vec![0x9c, 0x40, 0, 53, 0, udp_len as u8];
        // What the kernel leaves: the folded pseudo-header sum, not inverted.
        let partial = pseudo_v4(SRC, DST, proto::UDP, udp_len as u16).fold();
        u.extend_from_slice(&partial.to_be_bytes());
        u.extend_from_slice(payload);
        let mut f = frame4(proto::UDP, &u);
        assert!(complete_checksum(&mut f));
        let seg = &f[34..];
        assert_eq!(
            pseudo_v4(SRC, DST, proto::UDP, udp_len as u16)
                .add_bytes(seg)
                .finish(),
            0
        );
    }

    #[test]
    fn leaves_other_frames_alone() {
        let mut arp = vec![0u8; 42];
        ethernet::write_header(
            &mut arp,
            ethernet::Mac::BROADCAST,
            ethernet::Mac::default(),
            ethernet::ethertype::ARP,
        );
        let before = arp.clone();
        assert!(!complete_checksum(&mut arp));
        assert_eq!(arp, before);
        assert!(!complete_checksum(&mut [0u8; 5]));
    }
}
