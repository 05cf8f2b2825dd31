//! The TCP reset a policy `reject` answers a TCP segment with, as if the destination
//! refused the connection (what nftables' `reject with tcp reset` and iptables'
//! `REJECT --reject-with tcp-reset` send): from the destination's address and port
//! to the sender's, sequence and acknowledgment numbers by RFC 9293 section 3.10.7.1
//! (a segment with ACK gets `<SEQ=SEG.ACK><CTL=RST>`, one without it
//! `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`, where SYN and FIN each count one),
//! never in answer to a RST (section 3.10.7). The client sees "connection refused" at
//! once instead of waiting out its SYN retries.
//!
//! The reset is written over the received frame like the box's ICMP errors (`icmp`)
//! and goes through the same skeleton (`Engine::reject`): the same rate limit (the
//! general ICMP budget, RFC 1812 section 4.3.2.8 style, so a scan of denied ports
//! cannot make the box flood; counted in `icmp_sent` and `icmp_rate_limited` with the
//! ICMP messages), the drop counted under its reason. `reset` returns `None`, with
//! nothing written, for anything but a whole unfragmented TCP segment.

use crate::engine::icmp::{may_error4, may_error6, Budget};
use crate::engine::port::PortId;
use crate::engine::stats::DropReason;
use crate::engine::{Engine, Frame, Verdict, ETH};
use crate::wire::emit::IpRepr;
use crate::wire::ethernet::{self, ethertype, Mac};
use crate::wire::{ipv4, ipv6, proto, tcp};
use std::net::IpAddr;

/// TTL (hop limit) of the resets.
const TTL: u8 = 64;

/// The segment a reset answers, read from the received frame.
struct Segment {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    /// SEG.LEN: payload bytes, plus one each for SYN and FIN.
    len: u32,
}

impl Segment {
    /// The TCP segment of the Ethernet frame `frame`, if it is one, whole.
    fn read(frame: &[u8]) -> Option<Segment> {
        let eth = ethernet::Frame::new_checked(frame).ok()?;
        let ip = frame.get(ETH..)?;
        let (src, dst, l4): (IpAddr, IpAddr, &[u8]) = match eth.ethertype() {
            ethertype::IPV4 => {
                let p = ipv4::Packet::new_checked(ip).ok()?;
                if p.protocol() != proto::TCP || p.is_fragment() {
                    return None;
                }
                let at = p.header_len();
                (p.src().into(), p.dst().into(), ip.get(at..p.total_len())?)
            }
            ethertype::IPV6 => {
                let p = ipv6::Packet::new_checked(ip).ok()?;
                let upper = p.upper_layer().ok()?;
                if upper.protocol != proto::TCP || upper.fragment.is_some() {
                    return None;
                }
                (
                    p.src().into(),
                    p.dst().into(),
                    ip.get(upper.offset..p.total_len())?,
                )
            }
            _ => return None,
        };
        let t = tcp::Packet::new_checked(l4).ok()?;
        let flags = t.flags();
        let controls = u32::from(flags & tcp::SYN != 0) + u32::from(flags & tcp::FIN != 0);
        Some(Segment {
            src,
            dst,
            sport: t.src_port(),
            dport: t.dst_port(),
            seq: t.seq(),
            ack: t.ack(),
            flags,
            len: (t.payload_len() as u32).wrapping_add(controls),
        })
    }
}

/// Replaces the frame in `buf` (`len` bytes, a TCP segment) with the reset answering
/// it, sent from the port's MAC `mac` back to the frame's sender. Returns the new
/// length; `None`, with nothing written, when the frame is not a whole unfragmented
/// TCP segment, carries a RST, or the buffer cannot hold the reset.
pub fn reset(buf: &mut [u8], len: usize, mac: Mac) -> Option<usize> {
    let seg = Segment::read(buf.get(..len)?)?;
    if seg.flags & tcp::RST != 0 {
        return None;
    }
    let peer = ethernet::Frame::new_checked(&*buf).ok()?.src();
    let (seq, ack, flags) = if seg.flags & tcp::ACK != 0 {
        (seg.ack, 0, tcp::RST)
    } else {
        (0, seg.seq.wrapping_add(seg.len), tcp::RST | tcp::ACK)
    };
    let ip = IpRepr {
        src: seg.dst,
        dst: seg.src,
        protocol: proto::TCP,
        hop_limit: TTL,
        ident: 0,
    };
    let at = ETH + ip.header_len();
    let header = buf.get_mut(at..at + tcp::MIN_HEADER_LEN)?;
    header[0..2].copy_from_slice(&seg.dport.to_be_bytes());
    header[2..4].copy_from_slice(&seg.sport.to_be_bytes());
    header[4..8].copy_from_slice(&seq.to_be_bytes());
    header[8..12].copy_from_slice(&ack.to_be_bytes());
    header[12] = (tcp::MIN_HEADER_LEN as u8 / 4) << 4;
    header[13] = flags;
    // Window, checksum (filled by `emit`) and urgent pointer: zero.
    header[14..].fill(0);
    let ethertype = if seg.src.is_ipv4() {
        ethertype::IPV4
    } else {
        ethertype::IPV6
    };
    let n = ip.emit(&mut buf[ETH..], tcp::MIN_HEADER_LEN)?;
    ethernet::write_header(buf, peer, mac, ethertype);
    Some(ETH + n)
}

impl Engine {
    /// Answers the TCP segment in `frame` (from port `port`) with a reset (rate
    /// limited) and counts `reason`; a plain drop when none may or can be sent.
    pub(in crate::engine) fn reset_tcp(
        &mut self,
        port: PortId,
        frame: &mut Frame<'_>,
        reason: DropReason,
        now: u64,
    ) -> Verdict {
        let ip = frame.buf.get(ETH..frame.len).unwrap_or_default();
        let allowed = may_error4(ip) || may_error6(ip);
        let build = |buf: &mut [u8], len, mac, _: &mut u16| reset(buf, len, mac);
        self.reject(port, frame, reason, (allowed, Budget::Other), now, build)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const HOST_MAC: Mac = Mac([2, 0, 0, 0, 0, 0x10]);
    const BOX_MAC: Mac = Mac([2, 0, 0, 0, 0, 1]);

    /// A frame from the host carrying a TCP segment with `flags` and `payload`.
    fn segment(src: IpAddr, dst: IpAddr, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 200];
        let ip = IpRepr {
            src,
            dst,
            protocol: proto::TCP,
            hop_limit: 64,
            ident: 1,
        };
        let at = ETH + ip.header_len();
        let t = &mut buf[at..];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&25u16.to_be_bytes());
        t[4..8].copy_from_slice(&1000u32.to_be_bytes());
        t[8..12].copy_from_slice(&7777u32.to_be_bytes());
        t[12] = 0x50;
        t[13] = flags;
        t[20..20 + payload.len()].copy_from_slice(payload);
        let n = ip.emit(&mut buf[ETH..], 20 + payload.len()).unwrap();
        let et = if src.is_ipv4() {
            ethertype::IPV4
        } else {
            ethertype::IPV6
        };
        ethernet::write_header(&mut buf, BOX_MAC, HOST_MAC, et);
        buf.truncate(ETH + n);
        buf
    }

    fn fields(frame: &[u8], ip_len: usize) -> (u16, u16, u32, u32, u8) {
        let t = tcp::Packet::new_checked(&frame[ETH + ip_len..]).unwrap();
        (t.src_port(), t.dst_port(), t.seq(), t.ack(), t.flags())
    }

    #[test]
    fn rfc9293_3_10_7_1_a_syn_gets_rst_ack_acknowledging_it() {
        let (h, r): (Ipv4Addr, Ipv4Addr) =
            ("10.10.0.2".parse().unwrap(), "192.0.2.9".parse().unwrap());
        let mut f = segment(h.into(), r.into(), tcp::SYN, &[]);
        let len = f.len();
        let n = reset(&mut f, len, BOX_MAC).expect("a reset");
        assert_eq!(n, ETH + 40);
        let p = ipv4::Packet::new_checked(&f[ETH..n]).unwrap();
        assert_eq!((p.src(), p.dst(), p.ttl()), (r, h, TTL));
        assert_eq!(checksum::checksum(&f[ETH..ETH + 20]), 0);
        assert_eq!(
            checksum::pseudo_v4(r, h, proto::TCP, 20)
                .add_bytes(&f[ETH + 20..n])
                .finish(),
            0,
            "TCP checksum"
        );
        assert_eq!(fields(&f, 20), (25, 40000, 0, 1001, tcp::RST | tcp::ACK));
        let e = ethernet::Frame::new_checked(&f[..]).unwrap();
        assert_eq!((e.dst(), e.src()), (HOST_MAC, BOX_MAC));
    }

    #[test]
    fn rfc9293_3_10_7_1_a_segment_with_ack_gets_its_ack_as_sequence() {
        let (h, r): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:10::2".parse().unwrap(),
            "2001:db8:99::1".parse().unwrap(),
        );
        let mut f = segment(h.into(), r.into(), tcp::ACK | tcp::FIN, b"abc");
        let len = f.len();
        let n = reset(&mut f, len, BOX_MAC).expect("a reset");
        assert_eq!(n, ETH + 60);
        let p = ipv6::Packet::new_checked(&f[ETH..n]).unwrap();
        assert_eq!((p.src(), p.dst()), (r, h));
        assert_eq!(
            checksum::pseudo_v6(&r, &h, proto::TCP, 20)
                .add_bytes(&f[ETH + 40..n])
                .finish(),
            0
        );
        assert_eq!(fields(&f, 40), (25, 40000, 7777, 0, tcp::RST));
        // Without ACK the payload and FIN count in SEG.LEN: 1000 + 3 + 1.
        let mut f = segment(h.into(), r.into(), tcp::FIN, b"abc");
        let len = f.len();
        reset(&mut f, len, BOX_MAC).unwrap();
        assert_eq!(fields(&f, 40).3, 1004);
    }

    #[test]
    fn rfc9293_3_10_7_no_reset_answers_a_reset_or_a_non_segment() {
        let (h, r): (Ipv4Addr, Ipv4Addr) =
            ("10.10.0.2".parse().unwrap(), "192.0.2.9".parse().unwrap());
        let mut f = segment(h.into(), r.into(), tcp::RST, &[]);
        let before = f.clone();
        let len = f.len();
        assert_eq!(reset(&mut f, len, BOX_MAC), None);
        assert_eq!(f, before, "nothing written");
        // Every truncation of a segment is refused or answered, never a panic.
        let good = segment(h.into(), r.into(), tcp::SYN, &[]);
        for cut in 0..good.len() {
            let mut f = good[..cut].to_vec();
            assert_eq!(reset(&mut f, cut, BOX_MAC), None, "cut at {cut}");
        }
    }
}
