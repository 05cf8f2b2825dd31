//! The engine's part of IPv6 autoconfiguration (the state machines are
//! `crate::autoconf` and `crate::dhcp6`, run by the box's services):
//!
//! - Router Advertisements in: checked as RFC 4861 section 6.1.2 asks (hop limit 255,
//!   a link-local source, a valid checksum, code 0, at least 16 bytes, every option of
//!   non-zero length; `wire::ra`), addressed to all-nodes or to the port, then
//!   delivered to the `RouterAdverts` binding of their port (`local`); without one
//!   they are dropped as `router_advert_ignored`, invalid ones as `ndp_malformed`. A
//!   delivered one's Source Link-Layer Address option is recorded for the router as
//!   section 6.3.4 asks (an entry created STALE, as from a solicitation).
//! - Router Solicitations out (`solicit_routers`, section 6.3.7): from the port's
//!   link-local address to all-routers, with its link-layer address.
//! - Duplicate Address Detection (RFC 4862 section 5.4, `probe6`): a Neighbor
//!   Solicitation for the tentative address from the unspecified address to its
//!   solicited-node group, without a link-layer option (RFC 4861 section 4.3), and a
//!   watch of the port's Neighbor Discovery until told to stop (`probes`): an
//!   advertisement for the address (5.4.4), or another node's solicitation for it
//!   from the unspecified address (5.4.3), is a conflict. The address is not the
//!   box's while it is tested, so the box neither answers for it nor uses it.
//! - Link-scope multicast out (`multicast6`): a service's datagram to an ff02::
//!   group (DHCPv6's All_DHCP_Relay_Agents_and_Servers), sent out of a port to the
//!   group's Ethernet address (RFC 2464 section 7), with no route or next hop.

use super::ndp::ND_HOP_LIMIT;
use super::neigh::Claim;
use super::port::PortId;
use super::stats::DropReason;
use super::{Engine, Frame, Verdict, ETH};
use crate::wire::checksum::pseudo_v6;
use crate::wire::emit::IpRepr;
use crate::wire::ethernet::{self, ethertype, Mac};
use crate::wire::ra::{self, RouterAdvert};
use crate::wire::{icmpv6, ipv6, proto};
use std::net::{IpAddr, Ipv6Addr};

/// All-nodes and all-routers (RFC 4291 section 2.7.1).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// A Neighbor Solicitation without options: header, reserved, target.
const NS_LEN: usize = icmpv6::ND_LEN;

impl Engine {
    /// A Router Advertisement (module doc).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ra_in(
        &mut self,
        port: PortId,
        frame: &mut Frame<'_>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        hop_limit: u8,
        offset: usize,
        now: u64,
    ) -> Verdict {
        let Some(body) = frame.bytes().get(ETH + offset..) else {
            return Verdict::Drop(DropReason::NdpMalformed);
        };
        let pseudo = pseudo_v6(src, dst, proto::ICMPV6, body.len() as u32);
        let Ok(ra) = RouterAdvert::new_checked(body) else {
            return Verdict::Drop(DropReason::NdpMalformed);
        };
        if hop_limit != ND_HOP_LIMIT
            || !src.is_unicast_link_local()
            || pseudo.add_bytes(body).finish() != 0
        {
            return Verdict::Drop(DropReason::NdpMalformed);
        }
        if *dst != ALL_NODES && !self.owns6(port, dst) {
            return Verdict::Drop(DropReason::NeighbourIgnored);
        }
        if !self.local.wants_router_adverts(port) {
            return Verdict::Drop(DropReason::RouterAdvertIgnored);
        }
        if let Some(mac) = ra.source_link_addr().filter(|m| !m.is_multicast()) {
            let learnt = self
                .ndp
                .learn(port, *src, Claim::announcement(mac, true), now);
            self.learnt(port, mac, learnt);
        }
        self.deliver(frame, now)
    }

    /// Notes what a valid Neighbor Solicitation or Advertisement from `sender` (its
    /// Ethernet source) says about an address under Duplicate Address Detection on
    /// `port` (module doc).
    pub(super) fn dad_watch(
        &mut self,
        port: PortId,
        msg_type: u8,
        src: &Ipv6Addr,
        target: &Ipv6Addr,
        sender: Mac,
    ) {
        if self.probes6.is_empty() || sender == self.ports[port].mac {
            return;
        }
        let claims = match msg_type {
            icmpv6::NEIGHBOR_ADVERT => true,
            icmpv6::NEIGHBOR_SOLICIT => src.is_unspecified(),
            _ => false,
        };
        if claims {
            self.probes6.seen(port, |addr| addr == *target);
        }
    }

    /// Sends a Router Solicitation out of `port` (RFC 4861 section 6.3.7).
    pub fn solicit_routers(&mut self, port: PortId) -> Result<(), DropReason> {
        if port.index() >= self.ports.len() {
            return Err(DropReason::NoRoute);
        }
        let (mac, src) = (self.ports[port].mac, self.ports[port].link_local);
        self.queue_nd(port, Mac::ipv6_multicast(&ALL_ROUTERS), |b| {
            ra::write_router_solicit(b.get_mut(ETH + ipv6::HEADER_LEN..)?, mac)?;
            icmp6(src, ALL_ROUTERS).emit(b.get_mut(ETH..)?, ra::RS_LEN)
        })
    }

    /// Sends a Duplicate Address Detection solicitation for `addr` out of `port` and
    /// watches the port's Neighbor Discovery for a conflict; `None` stops watching.
    /// Returns whether a conflict was seen since the watch of this address began.
    pub fn probe6(&mut self, port: PortId, addr: Option<Ipv6Addr>) -> bool {
        let Some(addr) = addr else {
            return self.probes6.stop(port);
        };
        if port.index() >= self.ports.len() {
            return false;
        }
        let conflict = self.probes6.watch(port, addr);
        let group = ipv6::solicited_node(&addr);
        let sent = self.queue_nd(port, Mac::ipv6_multicast(&group), |b| {
            let ns = b.get_mut(ETH + ipv6::HEADER_LEN..)?.get_mut(..NS_LEN)?;
            icmpv6::write_header(ns, icmpv6::NEIGHBOR_SOLICIT, 0, 0);
            ns[8..].copy_from_slice(&addr.octets());
            icmp6(Ipv6Addr::UNSPECIFIED, group).emit(b.get_mut(ETH..)?, NS_LEN)
        });
        if sent.is_ok() {
            self.stats.ndp_solicits += 1;
        }
        conflict
    }

    /// Sends a service's IPv6 datagram to a link-scope multicast group (ff02::/16) out
    /// of `port`, from one of the port's own addresses. Anything else is refused
    /// (`NoRoute`: `originate` routes it).
    pub fn multicast6(&mut self, port: PortId, ip: &[u8], now_ms: u64) -> Result<(), DropReason> {
        let p = ipv6::Packet::new_checked(ip).map_err(|_| DropReason::Ipv6Malformed)?;
        let (src, dst) = (p.src(), p.dst());
        let link_scope = dst.segments()[0] == 0xff02;
        if !link_scope || port.index() >= self.ports.len() || !self.owns6(port, &src) {
            return Err(DropReason::NoRoute);
        }
        self.queue_local(port, ip, ethertype::IPV6, now_ms, |engine, frame, _| {
            let own = engine.ports[port].mac;
            ethernet::set_addresses(frame.buf, Mac::ipv6_multicast(&dst), own);
            Verdict::Forward(port)
        })
    }

    /// Builds a Neighbor Discovery message of the box's own in a reserved buffer
    /// (`write` fills the IPv6 packet and returns its length) and queues it to
    /// `dst_mac` out of `port`.
    fn queue_nd(
        &mut self,
        port: PortId,
        dst_mac: Mac,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<(), DropReason> {
        let Some(id) = self.buffers.alloc_reserved() else {
            self.stats.drop(DropReason::NeighbourRequestNoBuffer);
            return Err(DropReason::NeighbourRequestNoBuffer);
        };
        let own = self.ports[port].mac;
        let b = self.buffers.buf_mut(id);
        let Some(len) = write(b) else {
            self.buffers.free(id);
            return Err(DropReason::NoRoomForReply);
        };
        ethernet::write_header(b, dst_mac, own, ethertype::IPV6);
        self.buffers.set_len(id, ETH + len);
        self.tx.push_back((port, id));
        Ok(())
    }
}

/// The IPv6 header of a Neighbor Discovery message from `src` to `dst`.
fn icmp6(src: Ipv6Addr, dst: Ipv6Addr) -> IpRepr {
    IpRepr {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        protocol: proto::ICMPV6,
        hop_limit: ND_HOP_LIMIT,
        ident: 0,
    }
}
