//! The engine's side of a DHCPv4 client (RFC 2131 section 4.1): server messages reach
//! the client bound on a port whatever their destination address, and what the client
//! broadcasts leaves that port to the Ethernet broadcast address.

mod support;
use natbox_core::engine::lease::Lease4;
use natbox_core::engine::local::Binding;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::{Engine, Frame, PortSetup, Verdict};
use natbox_core::wire::ethernet::Mac;
use std::net::{Ipv4Addr, SocketAddrV4};
use support::*;

const SERVER: Ipv4Addr = GW;
const OFFERED: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 77);

fn from_server(to: Ipv4Addr, dport: u16) -> Vec<u8> {
    udp4(
        SocketAddrV4::new(SERVER, 67),
        SocketAddrV4::new(to, dport),
        b"dhcp reply",
    )
}

fn bound() -> Harness {
    let mut h = Harness::default();
    h.engine.bind_local(&[Binding::Dhcp4Client(OUTSIDE)]);
    h
}

/// RFC 2131 section 4.1: an OFFER broadcast to 255.255.255.255, and one unicast to the
/// address offered (not the box's yet), both reach the client bound on the port.
#[test]
fn rfc2131_4_1_offers_broadcast_or_unicast_to_the_offered_address_reach_the_client() {
    let mut h = bound();
    let mut buf = [0u8; 2048];
    for to in [Ipv4Addr::BROADCAST, OFFERED] {
        let out = h.from_wan(from_server(to, 68));
        assert_eq!(out.verdict, Verdict::Consumed, "to {to}");
        let d = h.engine.pop_local(&mut buf).expect("queued for the client");
        assert_eq!(&buf[d.len - 10..d.len], b"dhcp reply");
    }
    assert_eq!(h.engine.stats().local_delivered, 2);
}

/// Only server-to-client messages on the bound port: not on another port, not to
/// another UDP port; and with no binding a broadcast is dropped as before.
#[test]
fn only_server_messages_on_the_bound_port_are_taken() {
    let mut h = bound();
    let out = h.from_wan(from_server(Ipv4Addr::BROADCAST, 69));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::BroadcastOrMulticast));
    let lan_server = udp4(
        SocketAddrV4::new(HOST, 67),
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 68),
        b"x",
    );
    let out = h.from_lan(lan_server);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::BroadcastOrMulticast));
    let mut unbound = Harness::default();
    let out = unbound.from_wan(from_server(Ipv4Addr::BROADCAST, 68));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::BroadcastOrMulticast));
    let mut buf = [0u8; 2048];
    assert!(h.engine.pop_local(&mut buf).is_none());
}

/// A DISCOVER (0.0.0.0 to 255.255.255.255) leaves the port to the Ethernet broadcast
/// address with the port's MAC; a datagram to any other address is not broadcast.
#[test]
fn rfc2131_4_1_a_discover_leaves_the_port_as_an_ethernet_broadcast() {
    let mut h = bound();
    let discover = udp4(
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
        b"discover",
    );
    let now = h.now;
    assert_eq!(h.engine.broadcast4(OUTSIDE, &discover, now), Ok(()));
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1);
    let (port, frame) = &sent[0];
    assert_eq!(*port, OUTSIDE);
    assert_eq!(frame[0..6], Mac::BROADCAST.0);
    assert_eq!(frame[6..12], BOX_WAN_MAC.0);
    assert_eq!(&frame[14..], &discover[..]);
    let unicast = udp4(
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        SocketAddrV4::new(SERVER, 67),
        b"request",
    );
    assert_eq!(
        h.engine.broadcast4(OUTSIDE, &unicast, now),
        Err(DropReason::NoRoute)
    );
}

/// An engine whose outside port's `ipv4` is "dhcp" (the pool defaults to it).
fn dhcp_engine() -> Engine {
    let mut config = config();
    config.outside.ipv4 = Some("dhcp".parse().expect("the word dhcp"));
    config.nat.pool.clear();
    let setups = [
        PortSetup { mac: BOX_LAN_MAC },
        PortSetup { mac: BOX_WAN_MAC },
    ];
    Engine::new(&config, &setups)
}

/// A datagram from the lan host to the remote through `engine`, and its verdict.
fn query(engine: &mut Engine, sport: u16, now: u64) -> Verdict {
    let ip = udp4(
        SocketAddrV4::new(HOST, sport),
        SocketAddrV4::new(REMOTE, 53),
        b"query",
    );
    let mut bytes = eth(BOX_LAN_MAC, HOST_MAC, 0x0800, &ip);
    let len = bytes.len();
    bytes.resize(2048, 0);
    let mut frame = Frame {
        buf: &mut bytes,
        len,
    };
    engine.process(INSIDE, &mut frame, now)
}

fn lease(address: &str) -> Lease4 {
    Lease4 {
        address: address.parse().expect("net"),
        gateway: Some(GW),
        routes: Vec::new(),
    }
}

/// The public address of every NAT session.
fn outside_addresses(engine: &Engine) -> Vec<Ipv4Addr> {
    engine.nat().sessions(0).map(|s| *s.outside.ip()).collect()
}

/// Before the first lease an outside port of `ipv4 = "dhcp"` has no address, so the
/// pool that defaults to it is empty: inside traffic is refused, counted under its own
/// reason, and nothing panics.
#[test]
fn without_a_lease_the_empty_pool_refuses_translation_by_name() {
    let mut engine = dhcp_engine();
    assert_eq!(
        query(&mut engine, 40000, 1000),
        Verdict::Drop(DropReason::NoPoolAddress)
    );
    assert_eq!(engine.stats().drops_for(DropReason::NoPoolAddress), 1);
    assert_eq!(engine.nat().session_count(), 0);
}

/// Issue #17: the lease's address becomes the NAT address; a renewal that keeps it
/// changes nothing (the session stays); a new address ends the sessions on the old
/// one, and new ones use the new address. The configuration as written keeps "dhcp".
#[test]
fn rfc2131_a_lease_is_the_nat_address_a_renewal_keeps_sessions_a_new_address_ends_them() {
    let mut engine = dhcp_engine();
    let first = lease("198.51.100.77/24");
    assert!(engine.set_lease4(OUTSIDE, Some(first.clone())).rebuilt);
    assert!(!matches!(query(&mut engine, 40000, 1000), Verdict::Drop(_)));
    assert_eq!(
        outside_addresses(&engine),
        [Ipv4Addr::new(198, 51, 100, 77)]
    );
    assert!(engine.config().outside.ipv4_dhcp(), "as written");
    assert_eq!(
        engine.effective_config().outside.ipv4_net(),
        Some(first.address)
    );

    let renewed = engine.set_lease4(OUTSIDE, Some(first));
    assert_eq!((renewed.rebuilt, renewed.ended), (false, 0));
    assert_eq!(
        engine.nat().session_count(),
        1,
        "the renewal kept the session"
    );

    let moved = engine.set_lease4(OUTSIDE, Some(lease("198.51.100.88/24")));
    assert!(moved.rebuilt);
    assert_eq!(moved.ended, 1, "the session on the old address ended");
    assert!(!matches!(query(&mut engine, 40001, 2000), Verdict::Drop(_)));
    assert_eq!(
        outside_addresses(&engine),
        [Ipv4Addr::new(198, 51, 100, 88)]
    );

    engine.set_lease4(OUTSIDE, None);
    assert_eq!(
        query(&mut engine, 40002, 3000),
        Verdict::Drop(DropReason::NoPoolAddress),
        "the lease lost: no address to translate to"
    );
}

/// RFC 5227 section 2.1.1: a probe goes out with sender IP 0.0.0.0 for the address;
/// an ARP from a host that has it, or another host's probe for it, is a conflict;
/// silence is not.
#[test]
fn rfc5227_2_1_1_a_probe_is_answered_by_a_conflict_or_by_silence() {
    let mut h = bound();
    assert!(!h.engine.probe4(OUTSIDE, Some(OFFERED)));
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1);
    let (port, frame) = &sent[0];
    assert_eq!(*port, OUTSIDE);
    assert_eq!(frame[0..6], Mac::BROADCAST.0);
    assert_eq!(frame[14 + 14..14 + 18], [0, 0, 0, 0], "sender IP 0.0.0.0");
    assert_eq!(
        frame[14 + 24..14 + 28],
        OFFERED.octets(),
        "target: the address"
    );
    assert!(!h.engine.probe4(OUTSIDE, None), "nobody answered");

    const OTHER_MAC: Mac = Mac([2, 0, 0, 0, 9, 9]);
    h.engine.probe4(OUTSIDE, Some(OFFERED));
    h.frame(
        OUTSIDE,
        arp_reply(OTHER_MAC, OFFERED, BOX_WAN_MAC, Ipv4Addr::UNSPECIFIED),
    );
    assert!(h.engine.probe4(OUTSIDE, None), "a host has the address");

    h.engine.probe4(OUTSIDE, Some(OFFERED));
    h.frame(
        OUTSIDE,
        arp_request(OTHER_MAC, Ipv4Addr::UNSPECIFIED, OFFERED),
    );
    assert!(h.engine.probe4(OUTSIDE, None), "another host probes for it");

    h.engine.probe4(OUTSIDE, Some(OFFERED));
    h.frame(OUTSIDE, arp_request(GW_MAC, GW, PUBLIC));
    assert!(
        !h.engine.probe4(OUTSIDE, None),
        "ARP about other addresses is no conflict"
    );
}
