//! The box as an endpoint: what happens to packets addressed to the box that the
//! engine does not answer itself (it answers ARP, NDP and echo requests).
//!
//! Services outside the engine (the metrics responder, the shell's `ping`) *bind* what
//! they want to receive. Matching packets are copied, IP header first and with their
//! arrival time, into a bounded queue the services drain between batches; everything
//! else addressed to the box is dropped as `local_unsupported`, exactly as when nothing
//! is bound, so a port scan of the box learns nothing. What the services send goes out
//! through `Engine::originate` (routed, next hop resolved, queued like any frame the
//! engine makes).
//!
//! Two kinds of binding:
//! - TCP to one address and port, arriving from the **inside** only (on a port with
//!   the inside role; on a port with both roles, from a source in the inside
//!   prefixes): the metrics responder is never reachable from the outside, whatever
//!   the address. One-armed, the bound address is usually the pool address too: what
//!   the inside sends to the bound port goes to the service, not to a hairpin (the
//!   service wins; `ip4` checks the binding before hairpinning).
//! - DHCPv4 server messages (UDP from port 67 to port 68, unfragmented) arriving on
//!   one port, whatever their destination address: a DHCP client before it has an
//!   address gets its OFFER and ACK broadcast, or unicast to the address offered
//!   (RFC 2131 section 4.1), which is not the box's yet. They are taken before any
//!   other check of the destination (broadcasts are otherwise dropped), and only
//!   whole with a UDP checksum that verifies (RFC 768, RFC 1122 section 4.1.3.4;
//!   `udp_bad_checksum` otherwise). What the
//!   client sends before it has an address goes out as a limited broadcast on its
//!   port (`Engine::broadcast4`), with no route and no next hop to resolve.
//! - TCP from one remote address and port to one of the box's addresses and ports,
//!   arriving on any port: a connection the box opened itself (the boot-time fetch of
//!   the cloud's metadata, `services::metadata`). Like an echo reply it is taken before
//!   NAT, so its local port must be one no mapping holds: the box opens it only before
//!   forwarding starts, when there are none.
//! - Router Advertisements arriving on one port (RFC 4861, valid by section 6.1.2:
//!   `autoconf`), for the port's IPv6 autoconfiguration; without the binding they are
//!   dropped as `router_advert_ignored`.
//! - DHCPv6 server messages (UDP from port 547 to port 546, RFC 8415 section 7.2)
//!   arriving on one port for one of its addresses (the server answers the client's
//!   link-local address). What the client sends goes to All_DHCP_Relay_Agents_and_
//!   Servers (ff02::1:2) out of its port (`Engine::multicast6`), with no route.
//! - Echo replies (ICMP type 0 / ICMPv6 type 129) with one identifier from one remote:
//!   a running `ping`. An echo reply to a pool address is first offered to NAT; only
//!   one NAT does not claim reaches a `ping` (`ping` picks an identifier no mapping
//!   uses, so the two never compete).

use super::buffers::{BufId, Buffers};
use super::icmp;
use super::port::PortId;
use super::stats::DropReason;
use super::{Engine, Frame, NextHop, Verdict, ETH};
use crate::wire::checksum;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::{be16, set_be16, tcp, udp};
use crate::wire::{icmpv4, icmpv6, ipv4, ipv6, proto};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// At most this many bindings at once.
pub const MAX_BINDINGS: usize = 16;
/// Packets waiting for the services; more are dropped (`local_queue_full`).
pub const QUEUE: usize = 64;

/// Something a service wants to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// TCP segments to this address and port, arriving from the inside.
    TcpInside(SocketAddr),
    /// TCP segments from `peer` to `local`, arriving on any port: a connection the
    /// box opened.
    TcpPeer { local: SocketAddr, peer: SocketAddr },
    /// Echo replies from `from` carrying identifier `ident`.
    EchoReply { from: IpAddr, ident: u16 },
    /// DHCPv4 server messages (UDP 67 to 68) arriving on this port, to any address.
    Dhcp4Client(PortId),
    /// Router Advertisements arriving on this port.
    RouterAdverts(PortId),
    /// DHCPv6 server messages (UDP 547 to 546) arriving on this port for one of its
    /// addresses.
    Dhcp6Client(PortId),
}

/// The DHCPv4 ports (RFC 2131 section 4.1).
pub const DHCP4_SERVER_PORT: u16 = 67;
pub const DHCP4_CLIENT_PORT: u16 = 68;
/// The DHCPv6 ports (RFC 8415 section 7.2).
pub const DHCP6_CLIENT_PORT: u16 = 546;
pub const DHCP6_SERVER_PORT: u16 = 547;

/// A packet for a service: the IP datagram and when it arrived (engine time, ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub len: usize,
    pub arrived_ms: u64,
}

/// The bindings and the queue of delivered packets.
#[derive(Debug, Default)]
pub struct Local {
    bindings: heapless::Vec<Binding, MAX_BINDINGS>,
    /// Some binding is an `EchoReply` or a `TcpPeer`: one that can match a packet to
    /// a pool address from outside (checked per inbound packet to a pool address).
    outside_bound: bool,
    /// Ports with a `Dhcp4Client` binding, by bit (checked per inbound UDP datagram).
    dhcp4_ports: u64,
    /// Ports with a `RouterAdverts` binding, by bit.
    ra_ports: u64,
    /// Ports with a `Dhcp6Client` binding, by bit.
    dhcp6_ports: u64,
    queue: VecDeque<(BufId, u64)>,
}

impl Local {
    /// Replaces the bindings; extra ones beyond `MAX_BINDINGS` are ignored.
    pub fn bind(&mut self, bindings: &[Binding]) {
        self.bindings.clear();
        for b in bindings.iter().take(MAX_BINDINGS) {
            let _ = self.bindings.push(*b);
        }
        self.outside_bound = self
            .bindings
            .iter()
            .any(|b| matches!(b, Binding::EchoReply { .. } | Binding::TcpPeer { .. }));
        self.dhcp4_ports = self.port_bits(|b| match b {
            Binding::Dhcp4Client(p) => Some(*p),
            _ => None,
        });
        self.ra_ports = self.port_bits(|b| match b {
            Binding::RouterAdverts(p) => Some(*p),
            _ => None,
        });
        self.dhcp6_ports = self.port_bits(|b| match b {
            Binding::Dhcp6Client(p) => Some(*p),
            _ => None,
        });
    }

    /// The ports `port_of` finds in the bindings, one bit each.
    fn port_bits(&self, port_of: impl Fn(&Binding) -> Option<PortId>) -> u64 {
        self.bindings
            .iter()
            .filter_map(port_of)
            .filter_map(|p| 1u64.checked_shl(u32::from(p.0)))
            .fold(0, |all, bit| all | bit)
    }

    /// Whether `bits` holds `port`.
    fn has(bits: u64, port: PortId) -> bool {
        bits & 1u64.checked_shl(u32::from(port.0)).unwrap_or(0) != 0
    }

    /// Whether a service takes the Router Advertisements of `port`.
    #[inline]
    pub fn wants_router_adverts(&self, port: PortId) -> bool {
        Self::has(self.ra_ports, port)
    }

    /// Whether the IPv6 datagram `ip`, arriving on `port` for one of its addresses, is
    /// a DHCPv6 server message a client bound there waits for.
    #[inline]
    pub fn wants_dhcp6(&self, port: PortId, ip: &[u8]) -> bool {
        Self::has(self.dhcp6_ports, port)
            && matches!(endpoints(ip), Some((_, _, proto::UDP, l4))
                if l4.len() >= udp::HEADER_LEN
                    && be16(l4, udp::SRC_PORT_OFFSET) == DHCP6_SERVER_PORT
                    && be16(l4, udp::DST_PORT_OFFSET) == DHCP6_CLIENT_PORT)
    }

    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// Whether a `ping` runs or the box has a connection open: the only bindings that
    /// can match a packet to a pool address from outside.
    #[inline]
    pub fn wants_from_outside(&self) -> bool {
        self.outside_bound
    }

    /// Whether the IPv4 datagram `ip`, arriving on `port`, is a DHCPv4 server message
    /// a client bound there waits for (any destination address).
    #[inline]
    pub fn wants_dhcp4(&self, port: PortId, ip: &[u8]) -> bool {
        if !Self::has(self.dhcp4_ports, port) {
            return false;
        }
        matches!(endpoints(ip), Some((_, _, proto::UDP, l4))
            if l4.len() >= udp::HEADER_LEN
                && be16(l4, udp::SRC_PORT_OFFSET) == DHCP4_SERVER_PORT
                && be16(l4, udp::DST_PORT_OFFSET) == DHCP4_CLIENT_PORT)
    }

    /// Whether the IP datagram `ip`, addressed to the box and arriving from the inside
    /// (`from_inside`, see `port::Roles::inside_for`) or the outside, matches a binding.
    pub fn wants(&self, from_inside: bool, ip: &[u8]) -> bool {
        let Some((src, dst, protocol, l4)) = endpoints(ip) else {
            return false;
        };
        self.bindings.iter().any(|b| match *b {
            Binding::TcpInside(addr) => {
                from_inside
                    && protocol == proto::TCP
                    && addr.ip() == dst
                    && l4.len() >= tcp::DST_PORT_OFFSET + 2
                    && be16(l4, tcp::DST_PORT_OFFSET) == addr.port()
            }
            Binding::TcpPeer { local, peer } => {
                protocol == proto::TCP
                    && local.ip() == dst
                    && peer.ip() == src
                    && l4.len() >= tcp::DST_PORT_OFFSET + 2
                    && be16(l4, tcp::SRC_PORT_OFFSET) == peer.port()
                    && be16(l4, tcp::DST_PORT_OFFSET) == local.port()
            }
            Binding::EchoReply { from, ident } => {
                from == src
                    && l4.len() >= icmpv4::HEADER_LEN
                    && be16(l4, icmpv4::ECHO_ID_OFFSET) == ident
                    && match protocol {
                        proto::ICMP => l4[0] == icmpv4::ECHO_REPLY,
                        proto::ICMPV6 => l4[0] == icmpv6::ECHO_REPLY,
                        _ => false,
                    }
            }
            // Taken before the destination checks (`Engine::ipv4_in`, `ipv6_in`), not
            // here.
            Binding::Dhcp4Client(_) | Binding::RouterAdverts(_) | Binding::Dhcp6Client(_) => false,
        })
    }

    /// Queues a copy of `ip`; false when the queue or the buffer pool is full.
    pub fn deliver(&mut self, buffers: &mut Buffers, ip: &[u8], now_ms: u64) -> bool {
        if self.queue.len() >= QUEUE {
            return false;
        }
        match buffers.store(ip) {
            Some(id) => {
                self.queue.push_back((id, now_ms));
                true
            }
            None => false,
        }
    }

    /// Takes the oldest delivered datagram, copying it into `out`.
    pub fn pop(&mut self, buffers: &mut Buffers, out: &mut [u8]) -> Option<Delivery> {
        let (id, arrived_ms) = self.queue.pop_front()?;
        let data = buffers.frame(id);
        let len = data.len().min(out.len());
        out[..len].copy_from_slice(&data[..len]);
        buffers.free(id);
        Some(Delivery { len, arrived_ms })
    }
}

/// Source, destination, protocol and transport bytes of an unfragmented datagram.
fn endpoints(ip: &[u8]) -> Option<(IpAddr, IpAddr, u8, &[u8])> {
    match ip.first()? >> 4 {
        4 => {
            let p = ipv4::Packet::new_checked(ip).ok()?;
            if p.is_fragment() {
                return None;
            }
            let l4 = &ip[p.header_len()..p.total_len()];
            Some((p.src().into(), p.dst().into(), p.protocol(), l4))
        }
        6 => {
            let p = ipv6::Packet::new_checked(ip).ok()?;
            let upper = p.upper_layer().ok()?;
            if upper.fragment.is_some() {
                return None;
            }
            let l4 = &ip[upper.offset..p.total_len()];
            Some((p.src().into(), p.dst().into(), upper.protocol, l4))
        }
        _ => None,
    }
}

impl Engine {
    /// Replaces what the box's services receive.
    pub fn bind_local(&mut self, bindings: &[Binding]) {
        self.local.bind(bindings);
    }

    pub fn local_bindings(&self) -> &[Binding] {
        self.local.bindings()
    }

    /// Takes the oldest datagram delivered to a service, copying it into `out`.
    pub fn pop_local(&mut self, out: &mut [u8]) -> Option<Delivery> {
        self.local.pop(&mut self.buffers, out)
    }

    /// The box's address toward `dst`: the address of the port its route leaves by
    /// (for IPv4 on a port without one, the first pool address).
    pub fn source_for(&self, dst: std::net::IpAddr) -> Option<std::net::IpAddr> {
        match dst {
            std::net::IpAddr::V4(a) => {
                let (port, _) = self.routes.lookup4(a)?;
                self.source4(port).map(Into::into)
            }
            std::net::IpAddr::V6(a) => {
                let (port, _) = self.routes.lookup6(&a)?;
                self.ports[port].ipv6.map(|n| n.addr().into())
            }
        }
    }

    /// Sends an IPv4 datagram a service made to the limited broadcast address out of
    /// `port`, to the Ethernet broadcast address, with no route or next hop (a DHCP
    /// client without an address or a server yet, RFC 2131 section 4.1). A datagram to
    /// any other address is refused (`NoRoute`: `originate` routes it).
    pub fn broadcast4(&mut self, port: PortId, ip: &[u8], now_ms: u64) -> Result<(), DropReason> {
        let p = ipv4::Packet::new_checked(ip).map_err(|_| DropReason::Ipv4Malformed)?;
        if !p.dst().is_broadcast() || port.index() >= self.ports.len() {
            return Err(DropReason::NoRoute);
        }
        self.queue_local(port, ip, ethertype::IPV4, now_ms, |engine, frame, _| {
            let own = engine.ports[port].mac;
            ethernet::set_addresses(frame.buf, ethernet::Mac::BROADCAST, own);
            Verdict::Forward(port)
        })
    }

    /// Sends an IP datagram the box's services made (`ip` starts at the IP header and
    /// its source is one of the box's addresses): routed, its next hop resolved (the
    /// datagram waits if needed), and queued for `pop_transmit`.
    pub fn originate(&mut self, ip: &[u8], now_ms: u64) -> Result<(), DropReason> {
        let (egress, hop, kind) = match ip.first().map(|b| b >> 4) {
            Some(4) => {
                let p = ipv4::Packet::new_checked(ip).map_err(|_| DropReason::Ipv4Malformed)?;
                let (egress, hop) = self.routes.lookup4(p.dst()).ok_or(DropReason::NoRoute)?;
                (egress, NextHop::V4(hop), ethertype::IPV4)
            }
            Some(6) => {
                let p = ipv6::Packet::new_checked(ip).map_err(|_| DropReason::Ipv6Malformed)?;
                let (egress, hop) = self.routes.lookup6(&p.dst()).ok_or(DropReason::NoRoute)?;
                (egress, NextHop::V6(hop), ethertype::IPV6)
            }
            _ => return Err(DropReason::UnknownEthertype),
        };
        self.queue_local(egress, ip, kind, now_ms, |engine, frame, now| {
            engine.send(egress, hop, frame, now)
        })
    }

    /// Frames the datagram `ip` (EtherType `kind`) of a service in a buffer, lets
    /// `finish` address it (the verdict: forward, parked, refused), and queues it for
    /// `pop_transmit` when it is to be forwarded.
    pub(super) fn queue_local(
        &mut self,
        egress: PortId,
        ip: &[u8],
        kind: u16,
        now_ms: u64,
        finish: impl FnOnce(&mut Engine, &mut Frame<'_>, u64) -> Verdict,
    ) -> Result<(), DropReason> {
        if ip.len() > self.ports[egress].mtu {
            return Err(DropReason::TooBig);
        }
        let id = self.buffers.alloc().ok_or(DropReason::BufferPoolFull)?;
        let (mut data, _) = self.buffers.take(id);
        let len = ETH + ip.len();
        set_be16(&mut data, ethernet::field::ETHERTYPE, kind);
        data[ETH..len].copy_from_slice(ip);
        let mut frame = Frame {
            buf: &mut data,
            len,
        };
        let verdict = finish(self, &mut frame, now_ms);
        self.buffers.put(id, data, len);
        match verdict {
            Verdict::Forward(out) => self.tx.push_back((out, id)),
            // `send` parked a copy, or refused.
            _ => self.buffers.free(id),
        }
        match verdict {
            Verdict::Drop(reason) => Err(reason),
            _ => {
                self.stats.local_sent += 1;
                Ok(())
            }
        }
    }

    pub(super) fn local4(
        &mut self,
        port: PortId,
        from_inside: bool,
        frame: &mut Frame<'_>,
        echo_request: bool,
        now: u64,
    ) -> Verdict {
        if !echo_request {
            return self.deliver_local(from_inside, frame, now);
        }
        // RFC 1122 section 3.2.2: a message whose checksum fails is discarded.
        let verified = ipv4::Packet::new_checked(&frame.buf[ETH..frame.len])
            .ok()
            .and_then(|p| {
                icmpv4::Packet::new_checked(p.payload())
                    .ok()
                    .map(|i| i.verify_checksum())
            });
        match verified {
            None => return Verdict::Drop(DropReason::IcmpMalformed),
            Some(false) => return Verdict::Drop(DropReason::IcmpBadChecksum),
            Some(true) => {}
        }
        if !self.icmp_allowed(now) {
            return Verdict::Consumed;
        }
        let mac = self.ports[port].mac;
        match icmp::echo_reply4(frame.buf, frame.len, mac) {
            Some(len) => {
                frame.len = len;
                Verdict::Reply(port)
            }
            None => Verdict::Drop(DropReason::IcmpMalformed),
        }
    }

    /// Hands a packet addressed to the box to the service bound to it, if any.
    pub(super) fn deliver_local(
        &mut self,
        from_inside: bool,
        frame: &mut Frame<'_>,
        now: u64,
    ) -> Verdict {
        if !self.local.wants(from_inside, &frame.buf[ETH..frame.len]) {
            return Verdict::Drop(DropReason::LocalUnsupported);
        }
        self.deliver(frame, now)
    }

    /// Queues the datagram in `frame` for the services.
    pub(super) fn deliver(&mut self, frame: &mut Frame<'_>, now: u64) -> Verdict {
        if let Err(reason) = self.settle_offload(frame) {
            return Verdict::Drop(reason);
        }
        let ip = &frame.buf[ETH..frame.len];
        if !self.local.deliver(&mut self.buffers, ip, now) {
            return Verdict::Drop(DropReason::LocalQueueFull);
        }
        self.stats.local_delivered += 1;
        Verdict::Consumed
    }

    /// Queues a DHCPv4 server message for the client bound on its port, if it is a
    /// whole UDP datagram whose checksum verifies (RFC 768; RFC 1122 section 4.1.3.4:
    /// a datagram with a bad checksum is discarded); counted as `udp_bad_checksum`
    /// otherwise. A partial checksum (offloaded) is completed first, so it verifies.
    pub(super) fn deliver_dhcp4(&mut self, frame: &mut Frame<'_>, now: u64) -> Verdict {
        if let Err(reason) = self.settle_offload(frame) {
            return Verdict::Drop(reason);
        }
        let whole = ipv4::Packet::new_checked(&frame.buf[ETH..frame.len]).is_ok_and(|p| {
            udp::Packet::new_checked(p.payload()).is_ok_and(|u| u.verify4(p.src(), p.dst()))
        });
        if !whole {
            return Verdict::Drop(DropReason::UdpBadChecksum);
        }
        self.deliver(frame, now)
    }

    /// Whether an IPv4 datagram from outside to a pool address is for a service of the
    /// box's own: a reply to its `ping` that no NAT mapping claims (NAT wins), or a
    /// segment of a connection the box opened (`Binding::TcpPeer`, taken before NAT).
    pub(super) fn bound_from_outside(&self, frame: &Frame<'_>, protocol: u8) -> bool {
        let ip = &frame.buf[ETH..frame.len];
        self.local.wants(false, ip) && (protocol == proto::TCP || !self.nat.claims_echo_reply(ip))
    }

    /// Answers an ICMPv6 echo request to the box (RFC 4443 section 4.2), after the
    /// checks RFC 4443 section 2.3 asks of a receiver: a whole header and a checksum
    /// that verifies.
    ///
    /// ICMPv6 is never offloaded (`wire::offload::prepare` drops GSO of it and
    /// completes a partial checksum), so the frame is checked as it is.
    pub(super) fn echo6(
        &mut self,
        port: PortId,
        frame: &mut Frame<'_>,
        (src, dst): (&Ipv6Addr, &Ipv6Addr),
        offset: usize,
        now: u64,
    ) -> Verdict {
        let Some(body) = frame.bytes().get(ETH + offset..) else {
            return Verdict::Drop(DropReason::IcmpMalformed);
        };
        let Ok(msg) = icmpv6::Packet::new_checked(body) else {
            return Verdict::Drop(DropReason::IcmpMalformed);
        };
        let pseudo = checksum::pseudo_v6(src, dst, proto::ICMPV6, body.len() as u32);
        if !msg.verify_checksum(pseudo) {
            return Verdict::Drop(DropReason::IcmpBadChecksum);
        }
        if !self.icmp_allowed(now) {
            return Verdict::Consumed;
        }
        let mac = self.ports[port].mac;
        match icmp::echo_reply6(frame.buf, frame.len, mac, offset) {
            Some(len) => {
                frame.len = len;
                Verdict::Reply(port)
            }
            None => Verdict::Drop(DropReason::IcmpMalformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    fn tcp4(dst_port: u16) -> Vec<u8> {
        let mut b = vec![0u8; 40];
        ipv4::write_header(
            &mut b,
            &ipv4::Header {
                src: "10.10.0.2".parse().unwrap(),
                dst: "10.10.0.1".parse().unwrap(),
                protocol: proto::TCP,
                ttl: 64,
                ident: 1,
                payload_len: 20,
            },
        );
        b[22..24].copy_from_slice(&dst_port.to_be_bytes());
        b
    }

    fn echo_reply4(ident: u16) -> Vec<u8> {
        let mut b = vec![0u8; 28];
        ipv4::write_header(
            &mut b,
            &ipv4::Header {
                src: "198.51.100.1".parse().unwrap(),
                dst: "198.51.100.10".parse().unwrap(),
                protocol: proto::ICMP,
                ttl: 64,
                ident: 1,
                payload_len: 8,
            },
        );
        icmpv4::write_header(&mut b[20..], icmpv4::ECHO_REPLY, 0, u32::from(ident) << 16);
        let c = checksum::checksum(&b[20..]);
        b[22..24].copy_from_slice(&c.to_be_bytes());
        b
    }

    #[test]
    fn nothing_bound_wants_nothing() {
        let l = Local::default();
        assert!(!l.wants(true, &tcp4(9100)));
        assert!(!l.wants_from_outside());
    }

    #[test]
    fn tcp_binding_matches_inside_only() {
        let mut l = Local::default();
        l.bind(&[Binding::TcpInside("10.10.0.1:9100".parse().unwrap())]);
        assert!(l.wants(true, &tcp4(9100)));
        assert!(!l.wants(false, &tcp4(9100)), "never from outside");
        assert!(!l.wants(true, &tcp4(22)));
    }

    #[test]
    fn tcp_peer_binding_matches_both_endpoints_from_any_side() {
        let mut l = Local::default();
        let mut from_server = tcp4(40000);
        from_server[20..22].copy_from_slice(&80u16.to_be_bytes());
        l.bind(&[Binding::TcpPeer {
            local: "10.10.0.1:40000".parse().unwrap(),
            peer: "10.10.0.2:80".parse().unwrap(),
        }]);
        assert!(l.wants_from_outside());
        assert!(l.wants(false, &from_server) && l.wants(true, &from_server));
        let mut other_port = from_server.clone();
        other_port[20..22].copy_from_slice(&81u16.to_be_bytes());
        assert!(!l.wants(false, &other_port), "another remote port");
        assert!(!l.wants(false, &tcp4(40001)), "another local port");
    }

    #[test]
    fn echo_binding_matches_identifier_and_remote() {
        let mut l = Local::default();
        let from = "198.51.100.1".parse().unwrap();
        l.bind(&[Binding::EchoReply { from, ident: 77 }]);
        assert!(l.wants_from_outside());
        assert!(l.wants(false, &echo_reply4(77)));
        assert!(!l.wants(false, &echo_reply4(78)));
        l.bind(&[Binding::EchoReply {
            from: "198.51.100.2".parse().unwrap(),
            ident: 77,
        }]);
        assert!(!l.wants(false, &echo_reply4(77)));
    }

    #[test]
    fn queue_is_bounded_and_keeps_arrival_time() {
        let mut l = Local::default();
        let mut bufs = Buffers::new(QUEUE + 8, 128, 0);
        let pkt = tcp4(9100);
        for t in 0..QUEUE as u64 {
            assert!(l.deliver(&mut bufs, &pkt, t));
        }
        assert!(!l.deliver(&mut bufs, &pkt, 99), "queue full");
        let mut out = [0u8; 128];
        let d = l.pop(&mut bufs, &mut out).unwrap();
        assert_eq!(
            d,
            Delivery {
                len: 40,
                arrived_ms: 0
            }
        );
        assert_eq!(&out[..40], &pkt[..]);
        assert_eq!(bufs.available(), 8 + 1);
    }
}
