//! Layer 2: ARP in (RFC 826), and the neighbour plumbing ARP and NDP share: resolving
//! a next hop before a frame leaves (`send`), parking a frame until its neighbour
//! answers (`park`), soliciting (`solicit`), releasing what waited (`release`), and
//! forgetting the neighbours of a port whose link changed. The caches themselves are
//! `neigh`'s; Neighbor Discovery messages in are `ndp`'s.
//!
//! Address conflict probes (RFC 5227 section 2.1.1), for a DHCP client checking an
//! offered address: `probe4` sends an ARP probe (sender IP 0.0.0.0, target the
//! address) and watches the port's ARP until told to stop (`probes`); any ARP whose
//! sender IP is the address, or another host's probe for it, is a conflict. The
//! timing (how many probes, how long to wait) is the caller's.

use super::buffers::BufId;
use super::icmp;
use super::neigh::{self, Claim, Event, Resolve};
use super::port::{link_local, PortId};
use super::stats::DropReason;
use super::{Engine, Frame, NextHop, Verdict, ETH};
use crate::wire::arp;
use crate::wire::ethernet::{self, Mac};
use std::net::Ipv4Addr;

impl Engine {
    /// Forgets the ARP and NDP entries learnt on `port`: its interface was replaced
    /// (it disappeared and came back), so the neighbours behind it may have new MACs
    /// and must be resolved again. Packets waiting for them are dropped (counted as
    /// `neighbour_unresolved`).
    pub fn link_replaced(&mut self, port: PortId) {
        self.forget_neighbours(port);
    }

    /// The port now runs on an interface with MAC `mac` (the configuration named
    /// another interface): the box answers for its addresses with the new MAC, and
    /// its link-local address follows (RFC 4291 appendix A).
    pub fn port_moved(&mut self, port: PortId, mac: Mac) {
        let p = &mut self.ports[port];
        p.mac = mac;
        p.link_local = link_local(mac);
        self.forget_neighbours(port);
    }

    fn forget_neighbours(&mut self, port: PortId) {
        let mut parked = self.arp.forget_port(port);
        parked.extend(self.ndp.forget_port(port));
        for buf in parked {
            self.discard(buf, DropReason::NeighbourUnresolved);
        }
    }

    /// Sends the requests a neighbour cache asked for and drops what waited in vain.
    pub(super) fn neighbour_events<A>(
        &mut self,
        events: &mut Vec<Event<A>>,
        hop: fn(A) -> NextHop,
    ) {
        for e in events.drain(..) {
            match e {
                Event::Probe(port, addr, to) => self.solicit(port, hop(addr), to),
                Event::Failed(buf) => self.discard(buf, DropReason::NeighbourUnresolved),
            }
        }
    }

    /// ARP (RFC 826): requests for our addresses are answered; what an on-link sender
    /// says about itself updates the cache (see `neigh`). A claim from an off-link
    /// sender is never learnt: a reply or announcement to us from one is dropped as
    /// `neighbour_off_link`; a request from one for our address is still answered (the
    /// reply goes to the MAC that asked, and nothing is stored).
    pub(super) fn arp_in(&mut self, port: PortId, frame: &mut Frame<'_>, now: u64) -> Verdict {
        let Ok(a) = arp::Packet::new_checked(&frame.buf[ETH..frame.len]) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        let (op, sender_ip, sender_mac, target) =
            (a.operation(), a.sender_ip(), a.sender_mac(), a.target_ip());
        if sender_mac != self.ports[port].mac {
            self.probes4.seen(port, |addr| {
                let probing_too = sender_ip.is_unspecified() && target == addr;
                sender_ip == addr || probing_too
            });
        }
        let ours = self.owns4(port, target);
        let claims = !sender_ip.is_unspecified()
            && !sender_mac.is_multicast()
            && !self.owns4(port, sender_ip);
        let on_link = self.on_link4(port, sender_ip);
        if claims && on_link {
            // Only a reply sent to our MAC answers a request of ours.
            let to_us = ethernet::Frame::new_checked(&frame.buf[..frame.len])
                .is_ok_and(|e| e.dst() == self.ports[port].mac);
            let claim = Claim {
                solicited: op == arp::OP_REPLY && to_us,
                ..Claim::announcement(sender_mac, ours)
            };
            let learnt = self.arp.learn(port, sender_ip, claim, now);
            self.learnt(port, sender_mac, learnt);
        }
        match (op, ours) {
            (arp::OP_REQUEST, true) => {
                let mac = self.ports[port].mac;
                match icmp::arp_reply(frame.buf, mac, target) {
                    Some(len) => {
                        frame.len = len;
                        Verdict::Reply(port)
                    }
                    None => Verdict::Drop(DropReason::ArpMalformed),
                }
            }
            (_, true) if claims && !on_link => Verdict::Drop(DropReason::NeighbourOffLink),
            (_, true) => Verdict::Consumed,
            _ => Verdict::Drop(DropReason::NeighbourIgnored),
        }
    }

    /// Sends an ARP probe for `addr` out of `port` (RFC 5227 section 2.1.1: sender IP
    /// 0.0.0.0) and watches the port's ARP for a conflict; `None` stops watching.
    /// Returns whether a conflict was seen since the watch of this address began.
    pub fn probe4(&mut self, port: PortId, addr: Option<Ipv4Addr>) -> bool {
        let Some(addr) = addr else {
            return self.probes4.stop(port);
        };
        let conflict = self.probes4.watch(port, addr);
        if let Some(id) = self.buffers.alloc_reserved() {
            let mac = self.ports[port].mac;
            let len = icmp::arp_request(
                self.buffers.buf_mut(id),
                mac,
                Ipv4Addr::UNSPECIFIED,
                addr,
                None,
            );
            self.buffers.set_len(id, len);
            self.tx.push_back((port, id));
        } else {
            self.stats.drop(DropReason::NeighbourRequestNoBuffer);
        }
        conflict
    }

    /// Sends the packets a neighbour's answer released and drops those of an entry
    /// evicted to make room for it.
    pub(super) fn learnt(
        &mut self,
        port: PortId,
        mac: Mac,
        (released, evicted): (neigh::Queue, Option<neigh::Queue>),
    ) {
        self.release(port, mac, &released);
        self.evicted(evicted);
    }

    /// Counts an eviction from a neighbour cache and drops the packets that waited.
    pub(super) fn evicted(&mut self, evicted: Option<neigh::Queue>) {
        if let Some(queue) = evicted {
            self.stats.neighbours_evicted += 1;
            for buf in queue {
                self.discard(buf, DropReason::NeighbourEvicted);
            }
        }
    }

    /// Sends packets that waited for `mac`.
    pub(super) fn release(&mut self, port: PortId, mac: Mac, bufs: &[BufId]) {
        let own = self.ports[port].mac;
        for &id in bufs {
            let b = self.buffers.buf_mut(id);
            ethernet::set_addresses(b, mac, own);
            self.tx.push_back((port, id));
        }
    }

    /// Queues an ARP request or Neighbor Solicitation for `hop` on `port`: broadcast
    /// (multicast), or unicast to `to` (a PROBE of a cached MAC). It may use the
    /// buffers kept in reserve, which parked packets cannot take.
    fn solicit(&mut self, port: PortId, hop: NextHop, to: Option<Mac>) {
        let Some(id) = self.buffers.alloc_reserved() else {
            self.stats.drop(DropReason::NeighbourRequestNoBuffer);
            return;
        };
        let p = &self.ports[port];
        let mac = p.mac;
        let len = match hop {
            NextHop::V4(target) => {
                let Some(src) = self.source4(port) else {
                    self.buffers.free(id);
                    return;
                };
                self.stats.arp_requests += 1;
                icmp::arp_request(self.buffers.buf_mut(id), mac, src, target, to)
            }
            NextHop::V6(target) => {
                let src = if target.is_unicast_link_local() {
                    p.link_local
                } else {
                    p.ipv6.map_or(p.link_local, |n| n.addr())
                };
                self.stats.ndp_solicits += 1;
                icmp::neighbor_solicit(self.buffers.buf_mut(id), mac, &src, &target, to)
            }
        };
        self.buffers.set_len(id, len);
        self.tx.push_back((port, id));
    }

    /// Finishes a forwarded frame: fills in the Ethernet header for the next hop, or
    /// parks the frame until the next hop answers.
    pub(super) fn send(
        &mut self,
        egress: PortId,
        hop: NextHop,
        frame: &mut Frame<'_>,
        now: u64,
    ) -> Verdict {
        let (resolved, evicted) = match hop {
            NextHop::V4(a) => self.arp.resolve(egress, a, now),
            NextHop::V6(a) => self.ndp.resolve(egress, a, now),
        };
        self.evicted(evicted);
        match resolved {
            Resolve::Known(mac) => {
                let own = self.ports[egress].mac;
                ethernet::set_addresses(frame.buf, mac, own);
                Verdict::Forward(egress)
            }
            Resolve::Unknown { probe } => {
                let verdict = self.park(egress, hop, frame);
                if probe {
                    self.solicit(egress, hop, None);
                }
                verdict
            }
        }
    }

    /// Parks a frame until `hop` on `egress` resolves.
    pub(super) fn park(&mut self, egress: PortId, hop: NextHop, frame: &mut Frame<'_>) -> Verdict {
        if let Err(reason) = self.settle_offload(frame) {
            return Verdict::Drop(reason);
        }
        let Some(id) = self.buffers.store(frame.bytes()) else {
            return Verdict::Drop(DropReason::BufferPoolFull);
        };
        let parked = match hop {
            NextHop::V4(a) => self.arp.park(egress, a, id),
            NextHop::V6(a) => self.ndp.park(egress, a, id),
        };
        match parked {
            Ok(()) => Verdict::Hold,
            Err(reason) => {
                self.buffers.free(id);
                Verdict::Drop(reason)
            }
        }
    }
}
