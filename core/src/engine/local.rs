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
//! - TCP to one address and port, arriving on the **inside** port only: the metrics
//!   responder is never reachable from the outside, whatever the address.
//! - Echo replies (ICMP type 0 / ICMPv6 type 129) with one identifier from one remote:
//!   a running `ping`. An echo reply to a pool address is first offered to NAT; only
//!   one NAT does not claim reaches a `ping` (`ping` picks an identifier no mapping
//!   uses, so the two never compete).

use super::buffers::{BufId, Buffers};
use super::Port;
use crate::wire::{icmpv4, icmpv6, ipv4, ipv6, proto};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

/// At most this many bindings at once.
pub const MAX_BINDINGS: usize = 8;
/// Packets waiting for the services; more are dropped (`local_queue_full`).
pub const QUEUE: usize = 64;

/// Something a service wants to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// TCP segments to this address and port, arriving on the inside port.
    TcpInside(SocketAddr),
    /// Echo replies from `from` carrying identifier `ident`.
    EchoReply { from: IpAddr, ident: u16 },
}

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
    /// Some binding is an `EchoReply` (checked per inbound packet to a pool address).
    echo_bound: bool,
    queue: VecDeque<(BufId, u64)>,
}

impl Local {
    /// Replaces the bindings; extra ones beyond `MAX_BINDINGS` are ignored.
    pub fn bind(&mut self, bindings: &[Binding]) {
        self.bindings.clear();
        for b in bindings.iter().take(MAX_BINDINGS) {
            let _ = self.bindings.push(*b);
        }
        self.echo_bound = self
            .bindings
            .iter()
            .any(|b| matches!(b, Binding::EchoReply { .. }));
    }

    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// Whether any `ping` is running (the only binding that can match a pool address).
    #[inline]
    pub fn wants_echo_replies(&self) -> bool {
        self.echo_bound
    }

    /// Whether the IP datagram `ip`, addressed to the box and arriving on `port`,
    /// matches a binding.
    pub fn wants(&self, port: Port, ip: &[u8]) -> bool {
        let Some((src, dst, protocol, l4)) = endpoints(ip) else {
            return false;
        };
        self.bindings.iter().any(|b| match *b {
            Binding::TcpInside(addr) => {
                port == Port::Inside
                    && protocol == proto::TCP
                    && addr.ip() == dst
                    && l4.len() >= 4
                    && u16::from_be_bytes([l4[2], l4[3]]) == addr.port()
            }
            Binding::EchoReply { from, ident } => {
                from == src
                    && l4.len() >= icmpv4::HEADER_LEN
                    && u16::from_be_bytes([l4[4], l4[5]]) == ident
                    && match protocol {
                        proto::ICMP => l4[0] == icmpv4::ECHO_REPLY,
                        proto::ICMPV6 => l4[0] == icmpv6::ECHO_REPLY,
                        _ => false,
                    }
            }
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
        assert!(!l.wants(Port::Inside, &tcp4(9100)));
        assert!(!l.wants_echo_replies());
    }

    #[test]
    fn tcp_binding_matches_inside_only() {
        let mut l = Local::default();
        l.bind(&[Binding::TcpInside("10.10.0.1:9100".parse().unwrap())]);
        assert!(l.wants(Port::Inside, &tcp4(9100)));
        assert!(!l.wants(Port::Outside, &tcp4(9100)), "never from outside");
        assert!(!l.wants(Port::Inside, &tcp4(22)));
    }

    #[test]
    fn echo_binding_matches_identifier_and_remote() {
        let mut l = Local::default();
        let from = "198.51.100.1".parse().unwrap();
        l.bind(&[Binding::EchoReply { from, ident: 77 }]);
        assert!(l.wants_echo_replies());
        assert!(l.wants(Port::Outside, &echo_reply4(77)));
        assert!(!l.wants(Port::Outside, &echo_reply4(78)));
        l.bind(&[Binding::EchoReply {
            from: "198.51.100.2".parse().unwrap(),
            ident: 77,
        }]);
        assert!(!l.wants(Port::Outside, &echo_reply4(77)));
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
