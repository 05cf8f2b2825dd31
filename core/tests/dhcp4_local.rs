//! The engine's side of a DHCPv4 client (RFC 2131 section 4.1): server messages reach
//! the client bound on a port whatever their destination address, and what the client
//! broadcasts leaves that port to the Ethernet broadcast address.

mod support;
use natbox_core::engine::lease::Lease4;
use natbox_core::engine::local::Binding;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::{Engine, Frame, PortId, PortSetup, Verdict};
use natbox_core::wire::checksum::Csum;
use natbox_core::wire::ethernet::Mac;
use natbox_core::wire::offload::Offload;
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
    dhcp_engine_with(config())
}

/// `dhcp_engine` with the outside gateway left to the lease (as the e2e tests run it).
fn dhcp_engine_without_gateway() -> Engine {
    let mut config = config();
    config.outside.gateway4 = None;
    dhcp_engine_with(config)
}

fn dhcp_engine_with(mut config: firmware_config::Config) -> Engine {
    config.outside.ipv4 = Some("dhcp".parse().expect("the word dhcp"));
    config.nat.pool.clear();
    let setups = [
        PortSetup { mac: BOX_LAN_MAC },
        PortSetup { mac: BOX_WAN_MAC },
    ];
    Engine::new(&config, &setups)
}

/// `bytes` (a whole frame) in on `port` of `engine`: the verdict and the frame as
/// the engine left it.
fn process(engine: &mut Engine, port: PortId, mut bytes: Vec<u8>, now: u64) -> (Verdict, Vec<u8>) {
    let len = bytes.len();
    bytes.resize(10_000, 0);
    let mut frame = Frame {
        buf: &mut bytes,
        len,
    };
    let verdict = engine.process(port, &mut frame, now);
    let n = frame.len;
    bytes.truncate(n);
    (verdict, bytes)
}

/// A datagram of `payload` bytes from the lan host to `dst` through `engine` (DF
/// set), and its verdict.
fn send_to(
    engine: &mut Engine,
    dst: Ipv4Addr,
    sport: u16,
    payload: usize,
    now: u64,
) -> (Verdict, Vec<u8>) {
    let ip = udp4(
        SocketAddrV4::new(HOST, sport),
        SocketAddrV4::new(dst, 53),
        &vec![b'q'; payload],
    );
    process(engine, INSIDE, eth(BOX_LAN_MAC, HOST_MAC, 0x0800, &ip), now)
}

/// A datagram from the lan host to the remote through `engine`, and its verdict.
fn query(engine: &mut Engine, sport: u16, now: u64) -> Verdict {
    send_to(engine, REMOTE, sport, 5, now).0
}

/// The frames `engine` queued on its own.
fn sent(engine: &mut Engine) -> Vec<(PortId, Vec<u8>)> {
    let mut buf = vec![0u8; 10_000];
    std::iter::from_fn(|| {
        engine
            .pop_transmit(&mut buf)
            .map(|(p, n)| (p, buf[..n].to_vec()))
    })
    .collect()
}

fn lease(address: &str) -> Lease4 {
    Lease4 {
        address: address.parse().expect("net"),
        gateway: Some(GW),
        routes: Vec::new(),
        mtu: None,
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

/// The (sender, target) addresses of an ARP request frame.
fn arp_addresses(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let at = |o: usize| Ipv4Addr::new(frame[o], frame[o + 1], frame[o + 2], frame[o + 3]);
    (frame.get(12..14) == Some(&[0x08, 0x06][..]) && frame.len() >= 42).then(|| (at(28), at(38)))
}

/// RFC 3442 as Google Compute Engine uses it: a /32 address whose gateway is on-link
/// through a route via 0.0.0.0 (then the default route via it). The engine ARPs for
/// the gateway from the leased address, learns it from its reply (on-link, not
/// `neighbour_off_link`) and forwards the parked datagram through it, translated to
/// the leased address; the destination of an on-link route is its own next hop.
#[test]
fn rfc3442_a_slash_32_lease_reaches_its_gateway_on_link_and_forwards_through_it() {
    let mut engine = dhcp_engine_without_gateway();
    let own = Ipv4Addr::new(10, 128, 0, 5);
    let gateway = Ipv4Addr::new(10, 128, 0, 1);
    engine.set_lease4(
        OUTSIDE,
        Some(Lease4 {
            address: "10.128.0.5/32".parse().expect("net"),
            gateway: Some(gateway),
            routes: vec![
                ("10.128.0.1/32".parse().expect("net"), Ipv4Addr::UNSPECIFIED),
                ("10.9.0.0/16".parse().expect("net"), Ipv4Addr::UNSPECIFIED),
            ],
            mtu: None,
        }),
    );
    let (verdict, _) = send_to(&mut engine, REMOTE, 40000, 5, 1000);
    assert_eq!(verdict, Verdict::Hold, "parked until the gateway answers");
    let asked: Vec<_> = sent(&mut engine)
        .into_iter()
        .filter_map(|(port, f)| arp_addresses(&f).map(|a| (port, a)))
        .collect();
    assert_eq!(
        asked,
        [(OUTSIDE, (own, gateway))],
        "ARP for the gateway, from the lease"
    );

    let (verdict, _) = process(
        &mut engine,
        OUTSIDE,
        arp_reply(GW_MAC, gateway, BOX_WAN_MAC, own),
        1001,
    );
    assert_eq!(verdict, Verdict::Consumed, "learnt, not neighbour_off_link");
    assert_eq!(engine.stats().drops_for(DropReason::NeighbourOffLink), 0);
    let out = sent(&mut engine);
    assert_eq!(out.len(), 1, "the parked datagram left: {out:?}");
    let (port, frame) = &out[0];
    assert_eq!(*port, OUTSIDE);
    assert_eq!(frame[0..6], GW_MAC.0, "through the gateway");
    assert_eq!(
        frame[14 + 12..14 + 16],
        own.octets(),
        "translated to the lease"
    );
    assert_eq!(outside_addresses(&engine), [own]);

    // An on-link route's destination is its own next hop.
    let (verdict, _) = send_to(&mut engine, Ipv4Addr::new(10, 9, 1, 2), 40001, 5, 1002);
    assert_eq!(verdict, Verdict::Hold);
    let asked: Vec<_> = sent(&mut engine)
        .iter()
        .filter_map(|(_, f)| arp_addresses(f))
        .collect();
    assert_eq!(asked, [(own, Ipv4Addr::new(10, 9, 1, 2))]);
    let routes = engine.routes().list();
    assert!(
        routes
            .iter()
            .any(|r| r.prefix.to_string() == "10.128.0.1/32" && r.via.is_none()),
        "shown as connected: {routes:?}"
    );
}

/// RFC 2132 section 5.1: the lease's MTU (GCP's 1460) is the outside port's while the
/// lease is held, so a larger datagram with DF set is refused with that MTU in the
/// ICMP error (RFC 1191); losing the lease gives the port its configured MTU back.
#[test]
fn rfc2132_5_1_the_lease_mtu_is_the_port_mtu_for_forwarding() {
    let mut engine = dhcp_engine();
    assert_eq!(engine.port_info(OUTSIDE).mtu, 1500);
    engine.set_lease4(
        OUTSIDE,
        Some(Lease4 {
            mtu: Some(1460),
            ..lease("198.51.100.77/24")
        }),
    );
    assert_eq!(engine.port_info(OUTSIDE).mtu, 1460);
    // 20 + 8 + 1432 = 1460 bytes pass (parked for ARP); one more is too big.
    assert_eq!(
        send_to(&mut engine, REMOTE, 40000, 1432, 1000).0,
        Verdict::Hold
    );
    let (verdict, reply) = send_to(&mut engine, REMOTE, 40001, 1433, 1001);
    assert_eq!(verdict, Verdict::Reply(INSIDE));
    let icmp = &reply[14 + 20..];
    assert_eq!((icmp[0], icmp[1]), (3, 4), "fragmentation needed");
    assert_eq!(
        u16::from_be_bytes([icmp[6], icmp[7]]),
        1460,
        "the lease's MTU"
    );
    engine.set_lease4(
        OUTSIDE,
        Some(Lease4 {
            mtu: Some(9001),
            ..lease("198.51.100.77/24")
        }),
    );
    assert_eq!(engine.port_info(OUTSIDE).mtu, 9000, "AWS's 9001 clamped");
    engine.set_lease4(OUTSIDE, None);
    assert_eq!(
        engine.port_info(OUTSIDE).mtu,
        1500,
        "the configured MTU again"
    );
}

/// A DHCP server message whose UDP checksum does not verify is discarded and counted
/// (RFC 768, RFC 1122 section 4.1.3.4), as is one whose UDP length is wrong; a zero
/// checksum (none computed) and a partial one (offloaded, completed first) are taken.
#[test]
fn rfc1122_4_1_3_4_a_server_message_with_a_bad_udp_checksum_is_dropped_and_counted() {
    let mut h = bound();
    let mut bad = from_server(Ipv4Addr::BROADCAST, 68);
    bad[20 + 6] ^= 0x5a;
    let out = h.from_wan(bad);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::UdpBadChecksum));
    let mut long = from_server(Ipv4Addr::BROADCAST, 68);
    long[20 + 5] += 1;
    let out = h.from_wan(long);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::UdpBadChecksum));
    assert_eq!(h.engine.stats().drops_for(DropReason::UdpBadChecksum), 2);
    let mut buf = [0u8; 2048];
    assert!(h.engine.pop_local(&mut buf).is_none(), "nothing delivered");

    let mut none = from_server(Ipv4Addr::BROADCAST, 68);
    none[20 + 6..20 + 8].copy_from_slice(&[0, 0]);
    assert_eq!(
        h.from_wan(none).verdict,
        Verdict::Consumed,
        "zero: no checksum"
    );

    // CHECKSUM_PARTIAL: the field holds the pseudo-header sum only.
    let mut partial = from_server(Ipv4Addr::BROADCAST, 68);
    let udp_len = (partial.len() - 20) as u16;
    let pseudo =
        natbox_core::wire::checksum::pseudo_v4(SERVER, Ipv4Addr::BROADCAST, 17, udp_len).fold();
    partial[20 + 6..20 + 8].copy_from_slice(&pseudo.to_be_bytes());
    let mut frame = eth(BOX_WAN_MAC, GW_MAC, 0x0800, &partial);
    let len = frame.len();
    frame.resize(2048, 0);
    let offload = Offload {
        csum: Csum::Partial,
        gso_segment: None,
    };
    let verdict = h.engine.process_offloaded(
        OUTSIDE,
        &mut Frame {
            buf: &mut frame,
            len,
        },
        offload,
        h.now,
    );
    assert_eq!(verdict, Verdict::Consumed, "completed, then verified");
    assert_eq!(h.engine.stats().drops_for(DropReason::UdpBadChecksum), 2);
}
