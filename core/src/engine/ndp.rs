//! Neighbor Discovery in (RFC 4861): solicitations for the box's addresses are
//! answered, advertisements update the cache, after the section 7.1 validity checks.
//! Resolution, parking and soliciting are `l2`'s, shared with ARP.

use super::icmp;
use super::neigh::Claim;
use super::port::PortId;
use super::stats::DropReason;
use super::{Engine, Frame, Verdict, ETH};
use crate::wire::{ethernet, icmpv6, proto};
use std::net::Ipv6Addr;

/// RFC 4861 sections 6.1.2 and 7.1.1: a Neighbor Discovery message with hop limit 255
/// was not forwarded; the box sends its Router Solicitations with it too.
pub(super) const ND_HOP_LIMIT: u8 = 255;

impl Engine {
    /// Neighbor Solicitations for our addresses get an advertisement; advertisements
    /// update the cache (see `neigh`). RFC 4861 section 7.1 validity: hop limit 255,
    /// code 0, a valid checksum, and no Solicited flag on a multicast advertisement.
    /// Only on-link addresses are learnt: a solicitation from an off-link source is
    /// answered but not learnt (as ARP), an advertisement for an off-link target is
    /// dropped as `neighbour_off_link`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ndp_in(
        &mut self,
        port: PortId,
        frame: &mut Frame<'_>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        hop_limit: u8,
        offset: usize,
        now: u64,
    ) -> Verdict {
        let body = &frame.buf[ETH + offset..frame.len];
        let Ok(msg) = icmpv6::Packet::new_checked(body) else {
            return Verdict::Drop(DropReason::NdpMalformed);
        };
        let pseudo = crate::wire::checksum::pseudo_v6(src, dst, proto::ICMPV6, body.len() as u32);
        let Some(target) = msg.nd_target() else {
            return Verdict::Drop(DropReason::NdpMalformed);
        };
        if hop_limit != ND_HOP_LIMIT
            || msg.code() != 0
            || !msg.verify_checksum(pseudo)
            || target.is_multicast()
        {
            return Verdict::Drop(DropReason::NdpMalformed);
        }
        if let Ok(eth) = ethernet::Frame::new_checked(frame.bytes()) {
            self.dad_watch(port, msg.msg_type(), src, &target, eth.src());
        }
        if msg.msg_type() == icmpv6::NEIGHBOR_SOLICIT {
            if !self.owns6(port, &target) {
                return Verdict::Drop(DropReason::NeighbourIgnored);
            }
            let sender_mac = msg.nd_link_addr(icmpv6::OPT_SOURCE_LL);
            if let (Some(mac), false) = (sender_mac, src.is_unspecified()) {
                if self.on_link6(port, src) && !self.owns6(port, src) {
                    let learnt = self
                        .ndp
                        .learn(port, *src, Claim::announcement(mac, true), now);
                    self.learnt(port, mac, learnt);
                }
            }
            if frame.buf.len() < icmp::ND_FRAME_LEN {
                return Verdict::Drop(DropReason::NoRoomForReply);
            }
            let Ok(eth) = ethernet::Frame::new_checked(frame.bytes()) else {
                return Verdict::Drop(DropReason::FrameTruncated);
            };
            let peer_mac = eth.src();
            let mac = self.ports[port].mac;
            frame.len = icmp::neighbor_advert(frame.buf, mac, &target, peer_mac, src);
            return Verdict::Reply(port);
        }
        // Neighbor Advertisement (RFC 4861 section 7.2.5).
        let flags = msg.na_flags();
        let solicited = flags & icmpv6::NA_SOLICITED != 0;
        if solicited && dst.is_multicast() {
            return Verdict::Drop(DropReason::NdpMalformed);
        }
        if !self.on_link6(port, &target) {
            return Verdict::Drop(DropReason::NeighbourOffLink);
        }
        let claim = Claim {
            mac: msg.nd_link_addr(icmpv6::OPT_TARGET_LL),
            solicited,
            overrides: flags & icmpv6::NA_OVERRIDE != 0,
            create: false,
        };
        let learnt = self.ndp.learn(port, target, claim, now);
        if let Some(mac) = claim.mac {
            self.learnt(port, mac, learnt);
        }
        Verdict::Consumed
    }
}
