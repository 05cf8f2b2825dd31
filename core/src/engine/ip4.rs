//! IPv4 forwarding (RFC 1812): source checks (martians, RFC 1812 section 5.3.7;
//! spoofing from the outside, BCP 38), what is the box's, then translation outbound,
//! inbound and hairpinned (`nat44`, RFC 4787/5382/5508), TTL and MTU checks with their
//! ICMP errors, fragments kept together (RFC 4787 REQ-14), MSS clamping and the next
//! hop. The egress policy (`policy`) is asked inside `nat44` when a datagram would
//! open a session; its refusals are answered here (`refuse4`).

use super::flow::track::Dir;
use super::frag::{FragAction, FragKey};
use super::policy;
use super::port::{PortId, PortState};
use super::stats::DropReason;
use super::{Engine, Frame, NextHop, Step, Verdict, ETH};
use crate::wire::checksum::Csum;
use crate::wire::{icmpv4, ipv4, proto, tcp};
use std::net::Ipv4Addr;

impl Engine {
    pub(super) fn ipv4_in(&mut self, port: PortId, frame: &mut Frame<'_>, now: u64) -> Verdict {
        let (src, dst, total, ttl, df, fragment, protocol, ident, first_frag) = {
            let Ok(p) = ipv4::Packet::new_checked(&frame.buf[ETH..frame.len]) else {
                return Verdict::Drop(DropReason::Ipv4Malformed);
            };
            if !p.verify_checksum() {
                return Verdict::Drop(DropReason::Ipv4BadChecksum);
            }
            (
                p.src(),
                p.dst(),
                p.total_len(),
                p.ttl(),
                p.dont_fragment(),
                p.is_fragment(),
                p.protocol(),
                p.ident(),
                p.frag_offset() == 0,
            )
        };
        frame.len = ETH + total; // strip Ethernet padding
        if martian4(src) {
            return Verdict::Drop(DropReason::MartianSource);
        }
        let from_inside = self.inside4(port, src);
        if !from_inside && self.inside_or_own4(src) {
            return Verdict::Drop(DropReason::SpoofedFromOutside);
        }
        // A DHCP client's server messages, whatever their destination (`local`).
        if protocol == proto::UDP
            && !fragment
            && self.local.wants_dhcp4(port, &frame.buf[ETH..frame.len])
        {
            return self.deliver_dhcp4(frame, now);
        }
        if dst.is_multicast() || dst.is_broadcast() || self.is_subnet_broadcast(port, dst) {
            return Verdict::Drop(DropReason::BroadcastOrMulticast);
        }
        let echo_request = protocol == proto::ICMP && first_frag && !fragment && {
            ipv4::Packet::new_checked(&frame.buf[ETH..frame.len]).is_ok_and(|p| {
                icmpv4::Packet::new_checked(p.payload())
                    .is_ok_and(|i| i.msg_type() == icmpv4::ECHO_REQUEST)
            })
        };
        let pool_dst = self.nat.is_pool_addr(dst);
        // Pool addresses are translated, except that echo requests to them are answered
        // by the box, and (one-armed, where the pool is the port's own address) a
        // service bound to a port address takes what the inside sends it before
        // hairpinning would. The ports' own addresses are the box's.
        // (`owns4` without its pool test: `dst` is known not to be a pool address.)
        // From the inside, every port's address is the box's; from the outside, only
        // the arrival port's.
        let port_addr = |p: &PortState| p.ipv4.is_some_and(|n| n.addr() == dst);
        let local = if pool_dst {
            echo_request
                || self.local.wants_from_outside() && self.bound_from_outside(frame, protocol)
                || from_inside
                    && self.ports.iter().any(port_addr)
                    && self.local.wants(true, &frame.buf[ETH..frame.len])
        } else if from_inside {
            self.ports.iter().any(port_addr)
        } else {
            port_addr(&self.ports[port])
        };
        if local {
            return self.local4(port, from_inside, frame, echo_request, now);
        }
        if from_inside && !self.policy.host_packet(policy::limit::key4(src), now) {
            return Verdict::Drop(DropReason::HostPacketRate);
        }
        let ctx = Pkt4 {
            port,
            src,
            dst,
            total,
            ttl,
            df,
            fragment,
            first_frag,
            protocol,
            ident,
        };
        match (from_inside, pool_dst) {
            (true, true) => self.hairpin4(frame, &ctx, now),
            (true, false) => self.forward4_from_inside(frame, &ctx, now),
            (false, true) => self.inbound4(frame, &ctx, now),
            (false, false) => match self.routes.lookup4(dst) {
                Some((egress, _)) if self.inside4(egress, dst) => {
                    Verdict::Drop(DropReason::InboundNotTranslated)
                }
                Some(_) => Verdict::Drop(DropReason::TransitDenied),
                None => Verdict::Drop(DropReason::NoRoute),
            },
        }
    }

    /// Whether `src` can only be an inside host's or the box's own (BCP 38, RFC 6092
    /// REC-6 applied to IPv4): an inside prefix, a pool address, a port address. Such a
    /// source on the outside is forged.
    fn inside_or_own4(&self, src: Ipv4Addr) -> bool {
        // `owns4` of a port with the outside role includes the pool.
        self.nat.translates(src) || self.port_ids().any(|p| self.owns4(p, src))
    }

    fn is_subnet_broadcast(&self, port: PortId, dst: Ipv4Addr) -> bool {
        self.ports[port].broadcast4 == Some(dst)
    }

    /// TTL and MTU checks before any rewrite, so errors quote what the sender sent;
    /// `mtu` is the egress port's.
    fn check4(
        &mut self,
        mtu: usize,
        frame: &mut Frame<'_>,
        ctx: &Pkt4,
        now: u64,
    ) -> Option<Verdict> {
        let port = ctx.port;
        if ctx.ttl <= 1 {
            let kind = (icmpv4::TIME_EXCEEDED, 0, 0);
            return Some(self.reject4(port, frame, DropReason::TtlExceeded, kind, now));
        }
        if self.offload.network_len(ctx.total) > mtu {
            if !ctx.df {
                return Some(Verdict::Drop(DropReason::TooBigNoDf));
            }
            let kind = (
                icmpv4::DEST_UNREACHABLE,
                icmpv4::CODE_FRAG_NEEDED,
                mtu as u32,
            );
            return Some(self.reject4(port, frame, DropReason::TooBig, kind, now));
        }
        None
    }

    fn forward4_from_inside(&mut self, frame: &mut Frame<'_>, ctx: &Pkt4, now: u64) -> Verdict {
        let Some((egress, hop)) = self.routes.lookup4(ctx.dst) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        if let Some(v) = self.check4(self.ports[egress].mtu, frame, ctx, now) {
            return v;
        }
        if !self.inside4(egress, ctx.dst) {
            if !self.nat.translates(ctx.src) {
                return Verdict::Drop(DropReason::SpoofedSource);
            }
            match self.translate4(frame, ctx, Dir::Out, now) {
                Ok(Step::Go) => {}
                Ok(Step::Parked) => return Verdict::Hold,
                Ok(Step::Handoff(shard)) => return Verdict::Handoff(shard),
                Err(reason) => return self.refuse4(frame, ctx.port, reason, now),
            }
        }
        self.finish4(frame, egress, hop, now)
    }

    fn inbound4(&mut self, frame: &mut Frame<'_>, ctx: &Pkt4, now: u64) -> Verdict {
        if let Some(v) = self.check4(self.inside_mtu, frame, ctx, now) {
            return v;
        }
        match self.translate4(frame, ctx, Dir::In, now) {
            Ok(Step::Go) => self.route_inside4(frame, now),
            Ok(Step::Parked) => Verdict::Hold,
            Ok(Step::Handoff(shard)) => self.hand_off(frame, shard),
            Err(reason) => Verdict::Drop(reason),
        }
    }

    /// Hands `frame` to shard `shard`: a handed frame carries no offload metadata, so a
    /// partial checksum is completed first and a GSO super-frame refused
    /// (`settle_offload`).
    fn hand_off(&mut self, frame: &mut Frame<'_>, shard: usize) -> Verdict {
        match self.settle_offload(frame) {
            Ok(()) => Verdict::Handoff(shard),
            Err(reason) => Verdict::Drop(reason),
        }
    }

    /// The shard other than this one that owns the mapping of the inbound datagram
    /// in `frame` (`nat44::Nat44::owner_in`), if any.
    fn other_owner4(&self, frame: &Frame<'_>) -> Option<usize> {
        if !self.nat.sharded() {
            return None;
        }
        let owner = self.nat.owner_in(&frame.buf[ETH..frame.len])?;
        (owner != self.nat.shard().index()).then_some(owner)
    }

    /// The inbound half of a datagram hairpinned by another shard, which translated
    /// its source (`hairpin4`) and found that this shard owns its destination.
    pub(super) fn hairpin4_handed(&mut self, frame: &mut Frame<'_>, now: u64) -> Verdict {
        let now_s = (now / 1000) as u32;
        let ip = &mut frame.buf[ETH..frame.len];
        let error = ipv4::Packet::new_checked(&*ip).is_ok_and(|p| {
            p.protocol() == proto::ICMP
                && icmpv4::Packet::new_checked(p.payload()).is_ok_and(|i| i.is_error())
        });
        let translated = if error {
            self.nat.icmp_error(ip, Dir::In)
        } else {
            let csum = self.offload.csum;
            self.nat
                .inbound(ip, csum, now_s, &mut self.stats, &mut self.policy)
        };
        if let Err(reason) = translated {
            return Verdict::Drop(reason);
        }
        if error {
            self.stats.icmp_errors_translated += 1;
        }
        self.stats.hairpinned += 1;
        self.route_inside4(frame, now)
    }

    /// RFC 4787 REQ-9 / RFC 5508 REQ-7: translate out, then back in.
    fn hairpin4(&mut self, frame: &mut Frame<'_>, ctx: &Pkt4, now: u64) -> Verdict {
        if !self.nat.translates(ctx.src) {
            return Verdict::Drop(DropReason::SpoofedSource);
        }
        if let Some(v) = self.check4(self.inside_mtu, frame, ctx, now) {
            return v;
        }
        if ctx.fragment {
            // A hairpinned datagram would need two table entries; not supported.
            return Verdict::Drop(DropReason::UnsupportedProtocol);
        }
        let now_s = (now / 1000) as u32;
        let ip = &mut frame.buf[ETH..frame.len];
        // The outbound half is this shard's (its host's mapping); the inbound half
        // belongs to the owner of the destination's mapping, maybe another shard.
        if is_icmp_error4(ctx, ip) {
            // An error about a hairpinned packet: its quote is translated the same way.
            if let Err(reason) = self.nat.icmp_error(ip, Dir::Out) {
                return Verdict::Drop(reason);
            }
            if let Some(owner) = self.other_owner4(frame) {
                return self.hand_off(frame, owner);
            }
            let ip = &mut frame.buf[ETH..frame.len];
            if let Err(reason) = self.nat.icmp_error(ip, Dir::In) {
                return Verdict::Drop(reason);
            }
            self.stats.icmp_errors_translated += 1;
        } else {
            let csum = self.offload.csum;
            if let Err(reason) =
                self.nat
                    .outbound(ip, csum, now_s, &mut self.stats, &mut self.policy)
            {
                return self.refuse4(frame, ctx.port, reason, now);
            }
            if let Some(owner) = self.other_owner4(frame) {
                return self.hand_off(frame, owner);
            }
            let ip = &mut frame.buf[ETH..frame.len];
            if let Err(reason) =
                self.nat
                    .inbound(ip, csum, now_s, &mut self.stats, &mut self.policy)
            {
                return Verdict::Drop(reason);
            }
        }
        self.stats.hairpinned += 1;
        self.route_inside4(frame, now)
    }

    /// Routes a translated inbound datagram to its inside destination.
    fn route_inside4(&mut self, frame: &mut Frame<'_>, now: u64) -> Verdict {
        let Ok(p) = ipv4::Packet::new_checked(&frame.buf[ETH..frame.len]) else {
            return Verdict::Drop(DropReason::Ipv4Malformed);
        };
        let dst = p.dst();
        match self.routes.lookup4(dst) {
            Some((egress, hop)) if self.inside4(egress, dst) => {
                self.finish4(frame, egress, hop, now)
            }
            _ => Verdict::Drop(DropReason::NoRoute),
        }
    }

    /// A NAT refusal of a datagram from the inside that arrived on `port`; over a
    /// limit, optionally answered with ICMP type 3 code 13; rejected by the egress
    /// policy, answered with a TCP RST (TCP) or ICMP type 3 code 13.
    fn refuse4(
        &mut self,
        frame: &mut Frame<'_>,
        port: PortId,
        reason: DropReason,
        now: u64,
    ) -> Verdict {
        let admin_prohibited = (icmpv4::DEST_UNREACHABLE, icmpv4::CODE_ADMIN_PROHIBITED, 0);
        if reason == DropReason::PolicyReject {
            let tcp = ipv4::Packet::new_checked(&frame.buf[ETH..frame.len])
                .is_ok_and(|p| p.protocol() == proto::TCP);
            return if tcp {
                self.reset_tcp(port, frame, reason, now)
            } else {
                self.reject4(port, frame, reason, admin_prohibited, now)
            };
        }
        let limit = matches!(
            reason,
            DropReason::SessionLimit
                | DropReason::HostSessionLimit
                | DropReason::HostPortLimit
                | DropReason::PortsExhausted
        );
        if limit && self.config.nat.icmp_on_limit {
            return self.reject4(port, frame, reason, admin_prohibited, now);
        }
        Verdict::Drop(reason)
    }

    /// Translates a datagram (or fragment) travelling `dir`, keeping fragments of one
    /// datagram together (RFC 4787 REQ-14).
    fn translate4(
        &mut self,
        frame: &mut Frame<'_>,
        ctx: &Pkt4,
        dir: Dir,
        now: u64,
    ) -> Result<Step, DropReason> {
        let key = || FragKey::v4(ctx.src, ctx.dst, ctx.protocol, ctx.ident);
        if ctx.fragment && !ctx.first_frag {
            return match self.frags.lookup(&key()) {
                Some(FragAction::Rewrite4 { src, dst }) => {
                    let mut p = ipv4::Packet::new_checked(&mut frame.buf[ETH..frame.len])
                        .map_err(|_| DropReason::Ipv4Malformed)?;
                    p.set_src(src);
                    p.set_dst(dst);
                    self.stats.fragments_forwarded += 1;
                    Ok(Step::Go)
                }
                Some(FragAction::Handoff(shard)) => Ok(Step::Handoff(shard)),
                _ => self.park_fragment(frame, key(), ctx.port, now),
            };
        }
        if dir == Dir::In {
            if let Some(owner) = self.other_owner4(frame) {
                // Another shard's mapping (a fragment: its others follow it there).
                if ctx.fragment {
                    for (id, port) in self.frags.first(key(), FragAction::Handoff(owner), now)? {
                        self.reinject.push_back((port, id));
                    }
                }
                return Ok(Step::Handoff(owner));
            }
        }
        let now_s = (now / 1000) as u32;
        let ip = &mut frame.buf[ETH..frame.len];
        if is_icmp_error4(ctx, ip) {
            self.nat.icmp_error(ip, dir)?;
            self.stats.icmp_errors_translated += 1;
        } else {
            let csum = self.offload.csum;
            match dir {
                Dir::Out => {
                    self.nat
                        .outbound(ip, csum, now_s, &mut self.stats, &mut self.policy)?
                }
                Dir::In => self
                    .nat
                    .inbound(ip, csum, now_s, &mut self.stats, &mut self.policy)?,
            }
        }
        if ctx.fragment {
            let p = ipv4::Packet::new_checked(&frame.buf[ETH..frame.len])
                .map_err(|_| DropReason::Ipv4Malformed)?;
            let action = FragAction::Rewrite4 {
                src: p.src(),
                dst: p.dst(),
            };
            for (id, port) in self.frags.first(key(), action, now)? {
                self.reinject.push_back((port, id));
            }
        }
        Ok(Step::Go)
    }

    /// MSS clamp, TTL decrement, next hop.
    fn finish4(
        &mut self,
        frame: &mut Frame<'_>,
        egress: PortId,
        hop: Ipv4Addr,
        now: u64,
    ) -> Verdict {
        let clamp = self.config.nat.mss_clamp;
        let Ok(mut p) = ipv4::Packet::new_checked(&mut frame.buf[ETH..frame.len]) else {
            return Verdict::Drop(DropReason::Ipv4Malformed);
        };
        if clamp != 0
            && p.protocol() == proto::TCP
            && p.frag_offset() == 0
            && clamp_syn(p.payload_mut(), clamp, self.offload.csum)
        {
            self.stats.mss_clamped += 1;
        }
        p.decrement_ttl();
        self.send(egress, NextHop::V4(hop), frame, now)
    }
}

/// Facts about an IPv4 datagram gathered by one parse.
#[derive(Debug, Clone, Copy)]
struct Pkt4 {
    /// The arrival port.
    port: PortId,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    total: usize,
    ttl: u8,
    df: bool,
    fragment: bool,
    first_frag: bool,
    protocol: u8,
    ident: u16,
}

/// Sources no router accepts from any port (RFC 1812 section 5.3.7, RFC 6890):
/// 0.0.0.0/8 ("this network"), 127.0.0.0/8 (loopback), 224.0.0.0/4 (multicast) and
/// 240.0.0.0/4 (class E, with the limited broadcast address).
fn martian4(src: Ipv4Addr) -> bool {
    matches!(src.octets()[0], 0 | 127 | 224..)
}

/// Whether the datagram `ip` (described by `ctx`) is an ICMPv4 error message.
fn is_icmp_error4(ctx: &Pkt4, ip: &[u8]) -> bool {
    ctx.protocol == proto::ICMP && {
        ipv4::Packet::new_checked(ip)
            .is_ok_and(|p| icmpv4::Packet::new_checked(p.payload()).is_ok_and(|i| i.is_error()))
    }
}

/// Clamps the MSS option of a TCP SYN at `l4`; returns whether it changed.
pub(super) fn clamp_syn(l4: &mut [u8], clamp: u16, csum: Csum) -> bool {
    match tcp::Packet::new_checked(l4) {
        Ok(mut t) if t.flags() & tcp::SYN != 0 => t.clamp_mss(clamp, csum),
        _ => false,
    }
}
