//! IPv6 forwarding (RFC 8200) through the egress-only filter (`fw6`, RFC 6092): source
//! checks (REC-3, and REC-6/BCP 38 from the outside), what is the box's, link-local
//! scope (RFC 4291 section 2.5.6), RH0 (RFC 5095), hop limit and Packet Too Big (IPv6
//! routers never fragment), fragments kept together, MSS clamping and the next hop.
//! Neighbor Discovery is `ndp`'s; Router Advertisements, and DHCPv6 server messages to
//! a port bound for them, are `autoconf`'s and `local`'s.
//! The egress policy (`policy`) is asked when an outbound packet would create a
//! filter state; a `reject` is answered here.

use super::flow::track::Dir;
use super::frag::{FragAction, FragKey};
use super::fw6;
use super::ip4::clamp_syn;
use super::policy;
use super::port::PortId;
use super::stats::DropReason;
use super::{Engine, Frame, NextHop, Step, Verdict, ETH};
use crate::wire::{icmpv6, ipv4, ipv6, proto};
use std::net::Ipv6Addr;

impl Engine {
    pub(super) fn ipv6_in(&mut self, port: PortId, frame: &mut Frame<'_>, now: u64) -> Verdict {
        if !self.config.ipv6.enabled {
            return Verdict::Drop(DropReason::Ipv6Disabled);
        }
        let (src, dst, total, hop_limit, upper) = {
            let Ok(p) = ipv6::Packet::new_checked(&frame.buf[ETH..frame.len]) else {
                return Verdict::Drop(DropReason::Ipv6Malformed);
            };
            let Ok(upper) = p.upper_layer() else {
                return Verdict::Drop(DropReason::Ipv6Malformed);
            };
            (p.src(), p.dst(), p.total_len(), p.hop_limit(), upper)
        };
        frame.len = ETH + total;
        // Read within the packet: Ethernet padding and stale buffer bytes are no type.
        let l4_type = (upper.protocol == proto::ICMPV6 && upper.fragment.is_none())
            .then(|| frame.bytes().get(ETH + upper.offset).copied())
            .flatten();
        let nd = matches!(
            l4_type,
            Some(icmpv6::NEIGHBOR_SOLICIT | icmpv6::NEIGHBOR_ADVERT)
        );
        if nd {
            return self.ndp_in(port, frame, &src, &dst, hop_limit, upper.offset, now);
        }
        if l4_type == Some(icmpv6::ROUTER_ADVERT) {
            return self.ra_in(port, frame, &src, &dst, hop_limit, upper.offset, now);
        }
        // RFC 6092 REC-3: addresses that must not appear as a source anywhere.
        if src.is_multicast()
            || src.is_unspecified()
            || src.is_loopback()
            || src.to_ipv4_mapped().is_some()
        {
            return Verdict::Drop(DropReason::MartianSource);
        }
        let from_inside = self.inside6(port, &src);
        if !from_inside && self.inside_or_own6(&src) {
            return Verdict::Drop(DropReason::SpoofedFromOutside);
        }
        if dst.is_multicast() {
            return Verdict::Drop(DropReason::Ipv6Multicast);
        }
        if self.local.wants_dhcp6(port, &frame.buf[ETH..frame.len]) && self.owns6(port, &dst) {
            return self.deliver(frame, now);
        }
        // Any port's address is the box's, from either side.
        if self.port_ids().any(|p| self.owns6(p, &dst)) {
            if l4_type == Some(icmpv6::ECHO_REQUEST) {
                return self.echo6(port, frame, (&src, &dst), upper.offset, now);
            }
            return self.deliver_local(from_inside, frame, now);
        }
        // Link-local addresses never leave their link (RFC 4291 section 2.5.6).
        if src.is_unicast_link_local() || dst.is_unicast_link_local() {
            return Verdict::Drop(DropReason::MartianSource);
        }
        if upper.has_rh0 {
            return Verdict::Drop(DropReason::Ipv6Rh0);
        }
        if from_inside && !self.policy.host_packet(policy::limit::key6(&src), now) {
            return Verdict::Drop(DropReason::HostPacketRate);
        }
        let Some((egress, hop)) = self.routes.lookup6(&dst) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        let dir = match (from_inside, self.inside6(egress, &dst)) {
            (true, false) => Dir::Out,
            (false, true) => Dir::In,
            (true, true) => return self.finish6(frame, port, egress, hop, hop_limit, total, now),
            (false, false) => return Verdict::Drop(DropReason::TransitDenied),
        };
        // RFC 6092 REC-5 (outbound) and REC-6 (inbound).
        if self.fw6.is_inside(&src) != (dir == Dir::Out) {
            return Verdict::Drop(DropReason::SpoofedSource);
        }
        if hop_limit <= 1 || self.offload.network_len(total) > self.ports[egress].mtu {
            return self.finish6(frame, port, egress, hop, hop_limit, total, now);
        }
        match self.filter6(frame, &src, &dst, &upper, dir, port, now) {
            Ok(Step::Go) => {}
            Ok(Step::Parked) => return Verdict::Hold,
            Ok(Step::Handoff(shard)) => return Verdict::Handoff(shard),
            Err(DropReason::PolicyReject) if upper.protocol == proto::TCP => {
                return self.reset_tcp(port, frame, DropReason::PolicyReject, now)
            }
            Err(DropReason::PolicyReject) => {
                let kind = (icmpv6::DEST_UNREACHABLE, icmpv6::CODE_ADMIN_PROHIBITED, 0);
                return self.reject6(port, frame, DropReason::PolicyReject, kind, now);
            }
            Err(reason) => return Verdict::Drop(reason),
        }
        self.finish6(frame, port, egress, hop, hop_limit, total, now)
    }

    /// Whether `src` can only be an inside host's or the box's own: an inside prefix, a
    /// unique local address (RFC 4193 section 4.1: filtered at the site border by
    /// default), or a port address (global or link-local). Such a source on the
    /// outside is forged (RFC 6092 REC-6, BCP 38).
    fn inside_or_own6(&self, src: &Ipv6Addr) -> bool {
        self.fw6.is_inside(src)
            || src.is_unique_local()
            || self.port_ids().any(|p| self.owns6(p, src))
    }

    /// Runs the egress-only filter for a routed IPv6 packet.
    #[allow(clippy::too_many_arguments)]
    fn filter6(
        &mut self,
        frame: &mut Frame<'_>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        upper: &ipv6::UpperLayer,
        dir: Dir,
        port: PortId,
        now: u64,
    ) -> Result<Step, DropReason> {
        let now_s = (now / 1000) as u32;
        let key = upper.fragment.map(|f| FragKey::v6(src, dst, f.ident));
        if let (Some(f), Some(key)) = (upper.fragment, key) {
            if f.is_non_first() {
                if self.frags.lookup(&key) == Some(FragAction::Pass) {
                    self.stats.fragments_forwarded += 1;
                    return Ok(Step::Go);
                }
                return self.park_fragment(frame, key, port, now);
            }
        }
        let l4 = &frame.buf[ETH + upper.offset..frame.len];
        let icmp_error = upper.protocol == proto::ICMPV6 && l4.first().is_some_and(|&t| t < 128);
        if icmp_error {
            if dir == Dir::In {
                let body = l4
                    .get(icmpv6::HEADER_LEN..)
                    .ok_or(DropReason::L4Truncated)?;
                let quoted = fw6::quoted_tuple(body).map_err(|_| DropReason::IcmpErrorNoMatch)?;
                if !self.fw6.matches(&quoted) {
                    return Err(DropReason::IcmpErrorNoMatch);
                }
                self.stats.icmp_errors_translated += 1;
            }
        } else {
            let ports = fw6::ports(upper.protocol, l4).map_err(|_| DropReason::L4Truncated)?;
            let t = fw6::tuple(upper.protocol, *src, *dst, ports, dir);
            // The policy's transport key: the destination port, or the ICMPv6 type.
            let value = match upper.protocol {
                proto::ICMPV6 => l4.first().copied().map_or(0, u16::from),
                _ => t.rem_port,
            };
            let key = policy::l4_key(upper.protocol, value);
            let admit = (&mut self.policy, key);
            let len = frame.len - ETH;
            self.fw6.pass(&t, dir, now_s, &mut self.stats, admit, len)?;
        }
        if let Some(key) = key {
            for (id, port) in self.frags.first(key, FragAction::Pass, now)? {
                self.reinject.push_back((port, id));
            }
        }
        Ok(Step::Go)
    }

    /// Hop limit, packet too big (IPv6 routers never fragment), MSS clamp, next hop.
    #[allow(clippy::too_many_arguments)]
    fn finish6(
        &mut self,
        frame: &mut Frame<'_>,
        port: PortId,
        egress: PortId,
        hop: Ipv6Addr,
        hop_limit: u8,
        total: usize,
        now: u64,
    ) -> Verdict {
        if hop_limit <= 1 {
            let kind = (icmpv6::TIME_EXCEEDED, 0, 0);
            return self.reject6(port, frame, DropReason::TtlExceeded, kind, now);
        }
        let mtu = self.ports[egress].mtu;
        if self.offload.network_len(total) > mtu {
            let kind = (icmpv6::PACKET_TOO_BIG, 0, mtu as u32);
            return self.reject6(port, frame, DropReason::TooBig, kind, now);
        }
        let Ok(mut p) = ipv6::Packet::new_checked(&mut frame.buf[ETH..frame.len]) else {
            return Verdict::Drop(DropReason::Ipv6Malformed);
        };
        let clamp = self.config.nat.mss_clamp;
        if clamp != 0 {
            if let Ok(u) = p.upper_layer() {
                if u.protocol == proto::TCP && u.fragment.is_none() {
                    // The clamp is configured for IPv4; IPv6 headers are longer.
                    let longer = (ipv6::HEADER_LEN - ipv4::MIN_HEADER_LEN) as u16;
                    let at = u.offset;
                    let l4 = &mut p.packet_mut()[at..];
                    if clamp_syn(l4, clamp.saturating_sub(longer), self.offload.csum) {
                        self.stats.mss_clamped += 1;
                    }
                }
            }
        }
        p.decrement_hop_limit();
        self.send(egress, NextHop::V6(hop), frame, now)
    }
}
