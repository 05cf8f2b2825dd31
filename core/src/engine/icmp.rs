//! Messages the box itself sends, built in place in the received frame's buffer:
//! ICMPv4 errors (RFC 792, RFC 1812 section 4.3.2: quote as much of the offending
//! datagram as fits in 576 bytes), ICMPv6 errors (RFC 4443 section 2.4: as much as fits
//! in the 1280-byte minimum MTU), echo replies, ARP replies and Neighbor
//! Advertisements; and token buckets that bound how many the box generates
//! (RFC 1812 section 4.3.2.8, RFC 4443 section 2.4(f)).
//!
//! Path MTU discovery errors (ICMPv4 fragmentation needed, ICMPv6 packet too big)
//! draw on a budget of their own (`Budgets`, each bucket at the configured rate and
//! burst): without them a sender's connection stalls (a PMTUD black hole, RFC 2923),
//! so a flood of echo requests or of other errors must not use them up (RFC 4443
//! section 2.4(f) allows per-type limits; RFC 1191 and RFC 8201 depend on them).
//!
//! Never sent: errors about ICMP errors, about non-first fragments, or to sources that
//! are not unicast (RFC 1812 section 4.3.2.7, RFC 4443 section 2.4(e)).
//!
//! Replies are written into the received frame's buffer, whose length is all the room
//! there is: builders never write past it, and callers check `error4_fits`,
//! `error6_fits` and `ND_FRAME_LEN` before building what might not fit. Builders that
//! read the received frame parse it again rather than trust their caller, and return
//! `None` (nothing written) when it does not parse: the caller drops the frame with a
//! reason. No builder panics on any input.

use super::port::PortId;
use super::stats::DropReason;
use super::{Engine, Frame, Verdict};
use crate::wire::emit::IpRepr;
use crate::wire::ethernet::{self, ethertype, Mac};
use crate::wire::{arp, checksum, icmp, icmpv4, icmpv6, ipv4, ipv6, proto};
use std::net::{Ipv4Addr, Ipv6Addr};

const ETH: usize = ethernet::HEADER_LEN;
/// RFC 1812 4.3.2.3: an ICMPv4 error is at most 576 bytes.
const MAX_ERROR4: usize = 576;
/// RFC 4443 2.4(c): an ICMPv6 error fits the IPv6 minimum MTU.
const MAX_ERROR6: usize = 1280;
const TTL: u8 = 64;

/// A token bucket: `rate` messages per second, bursts up to `burst`.
#[derive(Debug, Clone)]
pub struct RateLimit {
    rate: u64,
    burst: u64,
    /// Tokens scaled by 1000 (so refills are exact per millisecond).
    milli_tokens: u64,
    last_ms: u64,
}

impl RateLimit {
    pub fn new(rate: u32, burst: u32) -> RateLimit {
        RateLimit {
            rate: u64::from(rate),
            burst: u64::from(burst.max(1)),
            milli_tokens: u64::from(burst.max(1)) * 1000,
            last_ms: 0,
        }
    }

    /// Takes one token if available.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        // Saturating: a rate near u32::MAX after weeks of silence must not overflow.
        let refill = elapsed.saturating_mul(self.rate);
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(refill)
            .min(self.burst * 1000);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

/// Which budget a message the box generates draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Fragmentation needed / packet too big.
    Pmtu,
    /// Everything else: echo replies and the other errors.
    Other,
}

impl Budget {
    /// The budget of an ICMPv4 message of `kind` (type, code, rest).
    pub fn of4(kind: (u8, u8, u32)) -> Budget {
        match kind {
            (icmpv4::DEST_UNREACHABLE, icmpv4::CODE_FRAG_NEEDED, _) => Budget::Pmtu,
            _ => Budget::Other,
        }
    }

    /// The budget of an ICMPv6 message of `kind` (type, code, rest).
    pub fn of6(kind: (u8, u8, u32)) -> Budget {
        match kind.0 {
            icmpv6::PACKET_TOO_BIG => Budget::Pmtu,
            _ => Budget::Other,
        }
    }
}

/// One token bucket per `Budget`.
#[derive(Debug, Clone)]
pub struct Budgets {
    pmtu: RateLimit,
    other: RateLimit,
}

impl Budgets {
    /// Each budget at `rate` messages per second, bursts up to `burst`.
    pub fn new(rate: u32, burst: u32) -> Budgets {
        Budgets {
            pmtu: RateLimit::new(rate, burst),
            other: RateLimit::new(rate, burst),
        }
    }

    /// Takes one token from `budget` if available.
    pub fn allow(&mut self, budget: Budget, now_ms: u64) -> bool {
        match budget {
            Budget::Pmtu => self.pmtu.allow(now_ms),
            Budget::Other => self.other.allow(now_ms),
        }
    }
}

/// Whether an ICMPv4 error may be sent about the datagram at `ip` (already validated).
pub fn may_error4(ip: &[u8]) -> bool {
    let Ok(p) = ipv4::Packet::new_checked(ip) else {
        return false;
    };
    let src = p.src();
    if p.frag_offset() != 0 || src.is_broadcast() || src.is_multicast() || src.is_unspecified() {
        return false;
    }
    if p.protocol() == proto::ICMP {
        if let Ok(i) = icmpv4::Packet::new_checked(p.payload()) {
            return !i.is_error();
        }
    }
    true
}

/// Whether a buffer of `capacity` bytes can hold an ICMPv4 error quoting a datagram of
/// `total` bytes: at least its first 28 bytes (header and 8 bytes, RFC 792), or all
/// of it if shorter.
pub fn error4_fits(capacity: usize, total: usize) -> bool {
    capacity >= ETH + ipv4::MIN_HEADER_LEN + icmpv4::HEADER_LEN + total.min(28)
}

/// Replaces the frame (Ethernet + IPv4 datagram, `len` bytes) with an ICMPv4 error
/// about it, sent from `(mac, addr)` back to the frame's sender. Returns the new
/// length. The caller checked `may_error4` and `error4_fits`.
pub fn error4(
    buf: &mut [u8],
    len: usize,
    mac: Mac,
    addr: Ipv4Addr,
    kind: (u8, u8, u32),
    ident: u16,
) -> Option<usize> {
    let (orig_src, quoted_len, peer) = {
        let p = ipv4::Packet::new_checked(buf.get(ETH..len)?).ok()?;
        let room = quote_room(buf.len(), MAX_ERROR4, ipv4::MIN_HEADER_LEN)?;
        (p.src(), p.total_len().min(room), peer_mac(buf)?)
    };
    let ip = IpRepr {
        src: addr.into(),
        dst: orig_src.into(),
        protocol: proto::ICMP,
        hop_limit: TTL,
        ident,
    };
    wrap_error(buf, mac, peer, ip, quoted_len, kind)
}

/// How many bytes of the offending packet an error of at most `max` bytes (IP header
/// of `ip_header` bytes, then the 8-byte ICMP header, then the quote) can quote in a
/// buffer of `capacity`. ICMPv4 and ICMPv6 headers are both 8 bytes.
fn quote_room(capacity: usize, max: usize, ip_header: usize) -> Option<usize> {
    capacity
        .min(ETH + max)
        .checked_sub(ETH + ip_header + icmpv4::HEADER_LEN)
}

/// The sender's MAC address of the frame in `buf`.
fn peer_mac(buf: &[u8]) -> Option<Mac> {
    ethernet::Frame::new_checked(buf).ok().map(|f| f.src())
}

/// Turns an ICMPv4 echo request frame into its reply. Returns the new length.
pub fn echo_reply4(buf: &mut [u8], len: usize, mac: Mac) -> Option<usize> {
    let peer = peer_mac(buf)?;
    let mut p = ipv4::Packet::new_checked(buf.get_mut(ETH..len)?).ok()?;
    let (src, dst) = (p.src(), p.dst());
    let total = p.total_len();
    let mut i = icmpv4::Packet::new_checked(p.payload_mut()).ok()?;
    let old = u16::from(icmpv4::ECHO_REQUEST) << 8 | u16::from(i.code());
    i.set_msg_type(icmpv4::ECHO_REPLY);
    let c = checksum::update16(
        i.checksum(),
        old,
        u16::from(icmpv4::ECHO_REPLY) << 8 | u16::from(i.code()),
    );
    i.set_checksum(c);
    p.set_src(dst);
    p.set_dst(src);
    ethernet::write_header(buf, peer, mac, ethertype::IPV4);
    Some(ETH + total)
}

/// Turns an ARP request frame into the reply for `(mac, addr)`. Returns the new length
/// (padded to the 60-byte Ethernet minimum).
pub fn arp_reply(buf: &mut [u8], mac: Mac, addr: Ipv4Addr) -> Option<usize> {
    let (peer_mac, peer_ip) = {
        let a = arp::Packet::new_checked(buf.get(ETH..)?).ok()?;
        (a.sender_mac(), a.sender_ip())
    };
    ethernet::write_header(buf, peer_mac, mac, ethertype::ARP);
    arp::write(
        &mut buf[ETH..],
        arp::OP_REPLY,
        (mac, addr),
        (peer_mac, peer_ip),
    );
    Some(pad(buf, ETH + arp::LEN))
}

/// Writes an ARP request for `target` from `(mac, addr)` into `buf`, broadcast or
/// unicast to `to`; returns its length.
pub fn arp_request(
    buf: &mut [u8],
    mac: Mac,
    addr: Ipv4Addr,
    target: Ipv4Addr,
    to: Option<Mac>,
) -> usize {
    ethernet::write_header(buf, to.unwrap_or(Mac::BROADCAST), mac, ethertype::ARP);
    arp::write(
        &mut buf[ETH..],
        arp::OP_REQUEST,
        (mac, addr),
        (Mac::default(), target),
    );
    pad(buf, ETH + arp::LEN)
}

/// Pads to the Ethernet minimum, as far as the buffer allows (the NIC pads the rest).
fn pad(buf: &mut [u8], len: usize) -> usize {
    let min = buf.len().min(60);
    if len < min {
        buf[len..min].fill(0);
        min
    } else {
        len
    }
}

/// Whether an ICMPv6 error may be sent about the packet at `ip` (already validated).
pub fn may_error6(ip: &[u8]) -> bool {
    let Ok(p) = ipv6::Packet::new_checked(ip) else {
        return false;
    };
    let src = p.src();
    if src.is_multicast() || src.is_unspecified() {
        return false;
    }
    match p.upper_layer() {
        Ok(u) if u.fragment.is_some_and(|f| f.is_non_first()) => false,
        Ok(u) if u.protocol == proto::ICMPV6 => ip.get(u.offset).is_some_and(|&t| t >= 128),
        _ => true,
    }
}

/// Whether a buffer of `capacity` bytes can hold an ICMPv6 error quoting a packet of
/// `total` bytes: at least its header and 8 bytes, or all of it if shorter.
pub fn error6_fits(capacity: usize, total: usize) -> bool {
    capacity >= ETH + ipv6::HEADER_LEN + icmpv6::HEADER_LEN + total.min(ipv6::HEADER_LEN + 8)
}

/// Replaces the frame (Ethernet + IPv6 packet) with an ICMPv6 error about it, sent
/// from `(mac, addr)` back to the frame's sender. Returns the new length. The caller
/// checked `may_error6` and `error6_fits`.
pub fn error6(
    buf: &mut [u8],
    len: usize,
    mac: Mac,
    addr: &Ipv6Addr,
    kind: (u8, u8, u32),
) -> Option<usize> {
    let (orig_src, quoted_len, peer) = {
        let p = ipv6::Packet::new_checked(buf.get(ETH..len)?).ok()?;
        let room = quote_room(buf.len(), MAX_ERROR6, ipv6::HEADER_LEN)?;
        (p.src(), p.total_len().min(room), peer_mac(buf)?)
    };
    wrap_error(
        buf,
        mac,
        peer,
        icmp6(addr, &orig_src, TTL),
        quoted_len,
        kind,
    )
}

/// The part of an error both families share: moves the first `quoted_len` bytes of
/// the offending packet behind the IP header of `ip` and the ICMP header, writes that
/// header (`kind`: type, code, rest), the IP header with the checksum
/// (`IpRepr::emit`) and the Ethernet header to `peer`. Returns the frame's length. The
/// caller sized `quoted_len` with `quote_room`, so everything fits.
fn wrap_error(
    buf: &mut [u8],
    mac: Mac,
    peer: Mac,
    ip: IpRepr,
    quoted_len: usize,
    kind: (u8, u8, u32),
) -> Option<usize> {
    let icmp_at = ETH + ip.header_len();
    buf.copy_within(ETH..ETH + quoted_len, icmp_at + icmp::HEADER_LEN);
    let ethertype = if ip.src.is_ipv4() {
        ethertype::IPV4
    } else {
        ethertype::IPV6
    };
    ethernet::write_header(buf, peer, mac, ethertype);
    let (t, code, rest) = kind;
    icmp::write_header(&mut buf[icmp_at..], t, code, rest);
    Some(ETH + ip.emit(&mut buf[ETH..], icmp::HEADER_LEN + quoted_len)?)
}

/// The IPv6 header of an ICMPv6 message the box sends.
fn icmp6(src: &Ipv6Addr, dst: &Ipv6Addr, hop_limit: u8) -> IpRepr {
    IpRepr {
        src: (*src).into(),
        dst: (*dst).into(),
        protocol: proto::ICMPV6,
        hop_limit,
        ident: 0,
    }
}

/// Turns an ICMPv6 echo request frame (its ICMPv6 message at `upper_offset` in the
/// IPv6 packet) into its reply. Returns the new length; `None`, with nothing written,
/// when the message is shorter than an echo header.
pub fn echo_reply6(buf: &mut [u8], len: usize, mac: Mac, upper_offset: usize) -> Option<usize> {
    let peer = peer_mac(buf)?;
    let (src, dst, total) = {
        let p = ipv6::Packet::new_checked(buf.get(ETH..len)?).ok()?;
        (p.src(), p.dst(), p.total_len())
    };
    let icmp_len = total
        .checked_sub(upper_offset)
        .filter(|&n| n >= icmpv6::HEADER_LEN)?;
    let icmp_at = ETH + upper_offset;
    // Any extension headers of the request are dropped from the reply.
    buf.copy_within(icmp_at..icmp_at + icmp_len, ETH + ipv6::HEADER_LEN);
    ethernet::write_header(buf, peer, mac, ethertype::IPV6);
    buf[ETH + ipv6::HEADER_LEN] = icmpv6::ECHO_REPLY;
    Some(ETH + icmp6(&dst, &src, TTL).emit(&mut buf[ETH..], icmp_len)?)
}

/// Writes a Neighbor Advertisement for `target` (ours) answering a solicitation from
/// `(peer_mac, peer)`; an unspecified `peer` (duplicate address detection) gets the
/// answer at all-nodes (RFC 4861 section 7.2.4). Returns the frame length.
pub fn neighbor_advert(
    buf: &mut [u8],
    mac: Mac,
    target: &Ipv6Addr,
    peer_mac: Mac,
    peer: &Ipv6Addr,
) -> usize {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let (dst, dst_mac, solicited) = if peer.is_unspecified() {
        (all_nodes, Mac::ipv6_multicast(&all_nodes), 0)
    } else {
        (*peer, peer_mac, icmpv6::NA_SOLICITED)
    };
    let flags = icmpv6::NA_ROUTER | icmpv6::NA_OVERRIDE | solicited;
    nd_message(
        buf,
        mac,
        dst_mac,
        target,
        &dst,
        (
            icmpv6::NEIGHBOR_ADVERT,
            flags,
            target,
            icmpv6::OPT_TARGET_LL,
        ),
    )
}

/// Writes a Neighbor Solicitation for `target` from `src`: to its solicited-node
/// group, or unicast to the target at `to` (RFC 4861 section 7.2.2). Returns the length.
pub fn neighbor_solicit(
    buf: &mut [u8],
    mac: Mac,
    src: &Ipv6Addr,
    target: &Ipv6Addr,
    to: Option<Mac>,
) -> usize {
    let group = ipv6::solicited_node(target);
    let (dst_mac, dst) = match to {
        Some(m) => (m, *target),
        None => (Mac::ipv6_multicast(&group), group),
    };
    nd_message(
        buf,
        mac,
        dst_mac,
        src,
        &dst,
        (icmpv6::NEIGHBOR_SOLICIT, 0, target, icmpv6::OPT_SOURCE_LL),
    )
}

/// Length of the frames `neighbor_advert` and `neighbor_solicit` write.
pub const ND_FRAME_LEN: usize = ETH + ipv6::HEADER_LEN + icmpv6::ND_LEN + 8;

fn nd_message(
    buf: &mut [u8],
    mac: Mac,
    dst_mac: Mac,
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    body: (u8, u8, &Ipv6Addr, u8),
) -> usize {
    const ND_BODY: usize = ND_FRAME_LEN - ETH - ipv6::HEADER_LEN;
    ethernet::write_header(buf, dst_mac, mac, ethertype::IPV6);
    let icmp_at = ETH + ipv6::HEADER_LEN;
    let (t, flags, target, opt) = body;
    icmpv6::write_nd(&mut buf[icmp_at..], t, flags, target, opt, mac);
    // RFC 4861 7.1: hop limit 255 proves the message was not forwarded. The caller's
    // buffer holds a whole ND frame (ND_FRAME_LEN), so the header always fits.
    let _ = icmp6(src, dst, 255).emit(&mut buf[ETH..], ND_BODY);
    icmp_at + ND_BODY
}

/// The engine's side: the general rate limit for what the box generates (RFC 1812
/// 4.3.2.8, RFC 4443 2.4(f)), and errors answering a frame (one skeleton for both
/// families: may an error be sent, is there room and budget, build it, count the drop).
impl Engine {
    /// Takes a token from the general rate limit for a message the box generates,
    /// counting the message as sent or as suppressed.
    pub(super) fn icmp_allowed(&mut self, now: u64) -> bool {
        self.icmp_budget_allows(Budget::Other, now)
    }

    /// As `icmp_allowed`, from `budget` (PMTUD errors have their own: see `Budget`).
    fn icmp_budget_allows(&mut self, budget: Budget, now: u64) -> bool {
        if self.icmp_limit.allow(budget, now) {
            self.stats.icmp_sent += 1;
            true
        } else {
            self.stats.icmp_rate_limited += 1;
            false
        }
    }

    /// Answers `frame` with an ICMPv4 error (rate-limited) and counts `reason`; if no
    /// error may or can be sent, the verdict is a plain drop.
    pub(super) fn reject4(
        &mut self,
        port: PortId,
        frame: &mut Frame<'_>,
        reason: DropReason,
        kind: (u8, u8, u32),
        now: u64,
    ) -> Verdict {
        let Some(src) = self.source4(port) else {
            return Verdict::Drop(reason);
        };
        let ip = &frame.buf[ETH..frame.len];
        let allowed = may_error4(ip) && error4_fits(frame.buf.len(), ip.len());
        let build = |buf: &mut [u8], len, mac, ident: &mut u16| {
            *ident = ident.wrapping_add(1);
            error4(buf, len, mac, src, kind, *ident)
        };
        self.reject(
            port,
            frame,
            reason,
            (allowed, Budget::of4(kind)),
            now,
            build,
        )
    }

    /// As `reject4`, for ICMPv6 (from the port's global address, else its link-local).
    pub(super) fn reject6(
        &mut self,
        port: PortId,
        frame: &mut Frame<'_>,
        reason: DropReason,
        kind: (u8, u8, u32),
        now: u64,
    ) -> Verdict {
        let p = &self.ports[port];
        let src = p.ipv6.map_or(p.link_local, |n| n.addr());
        let ip = &frame.buf[ETH..frame.len];
        let allowed = may_error6(ip) && error6_fits(frame.buf.len(), ip.len());
        let build = |buf: &mut [u8], len, mac, _: &mut u16| error6(buf, len, mac, &src, kind);
        self.reject(
            port,
            frame,
            reason,
            (allowed, Budget::of6(kind)),
            now,
            build,
        )
    }

    /// The skeleton of `reject4`/`reject6`: `allowed` says whether the frame may be
    /// answered and the error fits, `build` writes it over the frame (given the frame,
    /// its length, the port's MAC and the IPv4 identification counter).
    pub(super) fn reject(
        &mut self,
        port: PortId,
        frame: &mut Frame<'_>,
        reason: DropReason,
        (allowed, budget): (bool, Budget),
        now: u64,
        build: impl FnOnce(&mut [u8], usize, Mac, &mut u16) -> Option<usize>,
    ) -> Verdict {
        if !allowed || !self.icmp_budget_allows(budget, now) {
            return Verdict::Drop(reason);
        }
        let mac = self.ports[port].mac;
        let Some(len) = build(frame.buf, frame.len, mac, &mut self.ident) else {
            return Verdict::Drop(reason);
        };
        frame.len = len;
        // The offending packet is dropped even though a reply leaves.
        self.stats.drop(reason);
        self.stats.ports[port.slot()].drops += 1;
        Verdict::Reply(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_refill_never_overflows() {
        let mut r = RateLimit::new(u32::MAX, u32::MAX);
        assert!(r.allow(0));
        assert!(r.allow(50 * 24 * 3600 * 1000));
        assert!(r.allow(u64::MAX));
    }

    #[test]
    fn rate_limit_bursts_then_refills() {
        let mut r = RateLimit::new(10, 3);
        assert!((0..3).all(|_| r.allow(0)));
        assert!(!r.allow(0));
        assert!(!r.allow(99));
        assert!(r.allow(100)); // 10/s: one token per 100 ms
        assert!(!r.allow(100));
        assert!(r.allow(10_000));
    }

    #[test]
    fn rfc4443_2_4_f_pmtu_budget_is_separate() {
        let mut b = Budgets::new(10, 2);
        let too_big = Budget::of6((icmpv6::PACKET_TOO_BIG, 0, 1280));
        let frag_needed = Budget::of4((icmpv4::DEST_UNREACHABLE, icmpv4::CODE_FRAG_NEEDED, 1400));
        let unreachable = Budget::of4((icmpv4::DEST_UNREACHABLE, 1, 0));
        assert_eq!(
            (too_big, frag_needed, unreachable),
            (Budget::Pmtu, Budget::Pmtu, Budget::Other)
        );
        assert!(b.allow(Budget::Other, 0) && b.allow(Budget::Other, 0));
        assert!(!b.allow(Budget::Other, 0));
        assert!(b.allow(Budget::Pmtu, 0) && b.allow(Budget::Pmtu, 0));
        assert!(!b.allow(Budget::Pmtu, 0));
    }
}
