//! Property tests for the engine (proptest):
//! (a) translation is reversible: a reply to a translated datagram comes back to the
//!     exact inside endpoints, and the reverse of that reply is the original datagram
//!     (see `translate_then_reverse_restores_the_original` for what that means exactly);
//! (b) every checksum verifies after every rewrite, whatever the protocol;
//! (c) no two inside endpoints ever share one external endpoint, under port contention
//!     and expiry, and a freed port never goes to another host within the reuse hold;
//! (d) arbitrary bytes never make the engine panic (a cheap version of the fuzz crate);
//! (e) every ICMPv4/ICMPv6 type, code and short body to every address of the box, from
//!     either port, is answered with a well-formed reply or dropped for a counted
//!     reason, never a panic (exhaustive, not sampled: see `icmp_cases`).

mod support;
use natbox_core::engine::{Frame, PortId, Verdict};
use natbox_core::wire::ethernet::Mac;
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::util;
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use support::*;

const UDP: u8 = 17;
const TCP: u8 = 6;

/// The example configuration with small tables, so a harness is cheap to build.
fn small_config() -> firmware_config::Config {
    let mut c = config();
    c.nat.max_sessions = 4096;
    c.ipv6.max_states = 1024;
    c.nat.mss_clamp = 0;
    c
}

/// A TCP or UDP datagram with correct checksums (TCP with `flags`; UDP ignores them).
fn datagram(proto: u8, src: SocketAddrV4, dst: SocketAddrV4, flags: u8, payload: &[u8]) -> Vec<u8> {
    match proto {
        UDP => udp4(src, dst, payload),
        _ => {
            let mut t = tcp_segment(src.port(), dst.port(), flags, 0x0102_0304, &[], payload);
            let c = util::ipv4_checksum(&t, 8, &[], src.ip(), dst.ip(), IpNextHeaderProtocols::Tcp);
            t[16..18].copy_from_slice(&c.to_be_bytes());
            ipv4(*src.ip(), *dst.ip(), IpNextHeaderProtocols::Tcp, &t)
        }
    }
}

/// Swaps source and destination addresses and ports of a TCP/UDP datagram: the
/// datagram a peer would send back. Neither the IPv4 header checksum nor the transport
/// checksum changes (one's complement sums do not depend on word order).
fn swap(ip: &[u8]) -> Vec<u8> {
    let mut r = ip.to_vec();
    let hl = usize::from(ip[0] & 0xf) * 4;
    r[12..16].copy_from_slice(&ip[16..20]);
    r[16..20].copy_from_slice(&ip[12..16]);
    r[hl..hl + 2].copy_from_slice(&ip[hl + 2..hl + 4]);
    r[hl + 2..hl + 4].copy_from_slice(&ip[hl..hl + 2]);
    r
}

fn host_mac(host: Ipv4Addr) -> Mac {
    Mac([0x02, 0, 0, 0, 0x01, host.octets()[3]])
}

/// Makes `host` a known neighbour on the lan, as its first ARP request would.
fn teach(h: &mut Harness, host: Ipv4Addr) {
    let out = h.frame(INSIDE, arp_request(host_mac(host), host, BOX_LAN));
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
}

fn inside_host() -> impl Strategy<Value = Ipv4Addr> {
    (2u8..=254).prop_map(|d| Ipv4Addr::new(10, 10, 0, d))
}

/// A remote address on the Internet side (never the box's networks, never special).
fn remote_addr() -> impl Strategy<Value = Ipv4Addr> {
    (
        prop::sample::select(vec![1u8, 8, 20, 45, 93, 151, 185, 203, 223]),
        any::<u8>(),
        any::<u8>(),
        1u8..=254,
    )
        .prop_map(|(a, b, c, d)| Ipv4Addr::new(a, b, c, d))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// What "restores" means: for any UDP or TCP datagram O from an inside host,
    /// 1. the translated datagram O' keeps the destination and payload and has a pool
    ///    address as its source;
    /// 2. the remote's reply R = swap(O') is translated to I' whose endpoints are
    ///    exactly O's, swapped;
    /// 3. swap(I') equals O byte for byte, except the TTL (decremented once per pass
    ///    through the box) and the IPv4 header checksum that covers it. In particular
    ///    the transport checksum is restored exactly, not merely valid.
    #[test]
    fn translate_then_reverse_restores_the_original(
        host in inside_host(),
        sport in 1u16..=65535,
        remote in remote_addr(),
        dport in 1u16..=65535,
        proto in prop::sample::select(vec![UDP, TCP]),
        payload in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut h = Harness::new(small_config());
        teach(&mut h, host);
        let original = datagram(proto, sa(host, sport), sa(remote, dport), SYN, &payload);
        let out = h.from_lan(original.clone());
        prop_assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
        assert_checksums(&out.frame);
        let (ext, to) = endpoints4(out.ip());
        prop_assert_eq!(*ext.ip(), PUBLIC);
        prop_assert_eq!(to, sa(remote, dport));
        prop_assert_eq!(&out.ip()[original.len() - payload.len()..], &payload[..]);

        let back = h.from_wan(swap(out.ip()));
        prop_assert_eq!(back.verdict, Verdict::Forward(INSIDE));
        prop_assert_eq!(&back.frame[0..6], &host_mac(host).0);
        assert_checksums(&back.frame);
        prop_assert_eq!(endpoints4(back.ip()), (sa(remote, dport), sa(host, sport)));

        let mut restored = swap(back.ip());
        prop_assert_eq!(restored[8], original[8] - 2);
        restored[8] = original[8];
        fix_ipv4_checksum(&mut restored);
        prop_assert_eq!(restored, original);
    }

    /// Every rewrite keeps every checksum valid: UDP (with and without a checksum),
    /// TCP (with an MSS option being clamped), ICMP echo, inbound and outbound ICMP
    /// errors quoting the flow (whole or cut to 8 bytes), and hairpinned datagrams.
    /// Odd lengths are included on purpose.
    #[test]
    fn checksums_verify_after_every_rewrite(
        sport in 1u16..=65535,
        remote in remote_addr(),
        dport in 1u16..=65535,
        kind in 0u8..4,
        mss in 500u16..=9000,
        payload in prop::collection::vec(any::<u8>(), 0..61),
        error_type in prop::sample::select(vec![(3u8, 3u8), (3, 1), (3, 4), (11, 0), (12, 0)]),
        cut in any::<bool>(),
    ) {
        let mut c = small_config();
        c.nat.mss_clamp = 1400;
        let mut h = Harness::new(c);
        // Make the translation change the port: HOST2 holds HOST's port first.
        h.from_lan(udp4(sa(HOST2, sport), sa(remote, dport), b"x"));
        h.from_lan(tcp4(sa(HOST2, sport), sa(remote, dport), SYN, &[]));
        h.from_lan(echo4(HOST2, remote, sport, 1, false));

        let src = sa(HOST, sport);
        let dst = sa(remote, dport);
        let original = match kind {
            0 => udp4(src, dst, &payload),
            1 => {
                let mut d = udp4(src, dst, &payload);
                d[26..28].fill(0); // no checksum
                d
            }
            2 => {
                let m = mss.to_be_bytes();
                let mut t = tcp_segment(sport, dport, SYN, 7, &[2, 4, m[0], m[1]], &payload);
                let c = util::ipv4_checksum(&t, 8, &[], &HOST, &remote, IpNextHeaderProtocols::Tcp);
                t[16..18].copy_from_slice(&c.to_be_bytes());
                ipv4(HOST, remote, IpNextHeaderProtocols::Tcp, &t)
            }
            _ => {
                let mut m = vec![8, 0, 0, 0];
                m.extend_from_slice(&sport.to_be_bytes());
                m.extend_from_slice(&[0, 1]);
                m.extend_from_slice(&payload);
                let c = util::checksum(&m, 1);
                m[2..4].copy_from_slice(&c.to_be_bytes());
                ipv4(HOST, remote, IpNextHeaderProtocols::Icmp, &m)
            }
        };
        let out = h.from_lan(original);
        prop_assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
        assert_checksums(&out.frame);
        if kind == 1 {
            prop_assert_eq!(&out.ip()[26..28], &[0, 0], "a zero UDP checksum stays zero");
        }
        if kind == 2 {
            let clamped = u16::from_be_bytes([out.ip()[42], out.ip()[43]]);
            prop_assert_eq!(clamped, mss.min(1400));
        }
        let sent = out.ip().to_vec();

        // The reply.
        let reply = if kind == 3 {
            let mut r = sent.clone();
            r[12..16].copy_from_slice(&sent[16..20]);
            r[16..20].copy_from_slice(&sent[12..16]);
            r[20] = 0;
            let c = util::checksum(&{ let mut z = r[20..].to_vec(); z[2..4].fill(0); z }, 1);
            r[22..24].copy_from_slice(&c.to_be_bytes());
            r
        } else {
            swap(&sent)
        };
        let back = h.from_wan(reply);
        prop_assert_eq!(back.verdict, Verdict::Forward(INSIDE));
        assert_checksums(&back.frame);
        if kind == 1 {
            prop_assert_eq!(&back.ip()[26..28], &[0, 0]);
        }
        let delivered = back.ip().to_vec();

        // An inbound ICMP error quoting what we sent.
        let router = Ipv4Addr::new(192, 0, 2, 1);
        let quote = if cut { &sent[..28] } else { &sent[..] };
        let err = h.from_wan(icmp4_error(router, PUBLIC, error_type, quote));
        prop_assert_eq!(err.verdict, Verdict::Forward(INSIDE));
        assert_checksums(&err.frame);
        let q = &err.ip()[28..];
        prop_assert_eq!(&q[12..16], &HOST.octets());
        let mut qh = q[..20].to_vec();
        fix_ipv4_checksum(&mut qh);
        prop_assert_eq!(&qh[..], &q[..20], "quoted header checksum");
        if !cut {
            assert_quoted_checksums(q);
        }

        // An outbound ICMP error quoting what we delivered (not for echo: hosts do not
        // send errors about echo replies... but they may; natbox translates either).
        let quote = if cut { &delivered[..28] } else { &delivered[..] };
        let err = h.from_lan(icmp4_error(HOST, remote, (3, 3), quote));
        prop_assert_eq!(err.verdict, Verdict::Forward(OUTSIDE));
        assert_checksums(&err.frame);
        if !cut {
            assert_quoted_checksums(&err.ip()[28..]);
        }

        // A hairpinned datagram to the mapping.
        if kind != 3 {
            let ext = endpoints4(&sent).0;
            let hp = datagram(if kind == 2 { TCP } else { UDP }, sa(HOST2, 33333), ext, SYN, &payload);
            let out = h.from_lan(hp);
            prop_assert_eq!(out.verdict, Verdict::Forward(INSIDE));
            assert_checksums(&out.frame);
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Out {
        host: u8,
        port: u16,
        remote: u8,
        proto: u8,
    },
    In {
        remote: u8,
        ext: u16,
        proto: u8,
    },
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let proto = prop::sample::select(vec![UDP, TCP]);
    prop_oneof![
        6 => (0u8..4, prop::sample::select(vec![1000u16, 1001, 2000, 5000, 40000]), 0u8..3, proto.clone())
            .prop_map(|(host, port, remote, proto)| Op::Out { host, port, remote, proto }),
        2 => (0u8..3, 40000u16..=40007, proto).prop_map(|(remote, ext, proto)| Op::In { remote, ext, proto }),
        2 => prop::sample::select(vec![10u64, 61, 130, 250, 310]).prop_map(Op::Wait),
    ]
}

/// Moves the clock with one `poll` (the timers only need to see the new time), and
/// lets the live neighbours refresh themselves as real hosts do.
fn jump(h: &mut Harness, secs: u64) {
    h.now += secs * 1000;
    h.engine.poll(h.now);
    h.frame(OUTSIDE, arp_request(GW_MAC, GW, PUBLIC));
    for d in 2..6 {
        teach(h, Ipv4Addr::new(10, 10, 0, d));
    }
    h.transmitted();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_two_inside_endpoints_share_an_external_endpoint(ops in prop::collection::vec(op(), 1..60)) {
        let mut c = small_config();
        c.nat.port_min = 40000;
        c.nat.port_max = 40007;
        let hold = c.nat.port_reuse_hold;
        let mut h = Harness::new(c);
        jump(&mut h, 0);
        let remotes = [REMOTE, REMOTE2, Ipv4Addr::new(8, 8, 8, 8)];
        // (proto, external port) -> (inside address, last second seen owning it).
        let mut last_owner: HashMap<(u8, u16), (Ipv4Addr, u32)> = HashMap::new();
        for op in ops {
            match op {
                Op::Out { host, port, remote, proto } => {
                    let src = sa(Ipv4Addr::new(10, 10, 0, 2 + host), port);
                    let out = h.from_lan(datagram(proto, src, sa(remotes[usize::from(remote)], 443), SYN, b"p"));
                    match out.verdict {
                        Verdict::Forward(OUTSIDE) => {
                            assert_checksums(&out.frame);
                            let ext = endpoints4(out.ip()).0;
                            prop_assert!((40000..=40007).contains(&ext.port()), "{}", ext);
                            let now = (h.now / 1000) as u32;
                            let s = h.engine.nat().sessions(now)
                                .find(|s| s.proto == proto && s.inside == src)
                                .expect("a session for the forwarded datagram");
                            prop_assert_eq!(s.outside, ext);
                        }
                        Verdict::Drop(natbox_core::engine::stats::DropReason::PortsExhausted) => {}
                        v => prop_assert!(false, "unexpected verdict {:?}", v),
                    }
                }
                Op::In { remote, ext, proto } => {
                    let from = sa(remotes[usize::from(remote)], 443);
                    let out = h.from_wan(datagram(proto, from, sa(PUBLIC, ext), SYN, b"r"));
                    if out.verdict == Verdict::Forward(INSIDE) {
                        assert_checksums(&out.frame);
                        let now = (h.now / 1000) as u32;
                        let to = endpoints4(out.ip()).1;
                        let owner = h.engine.nat().sessions(now)
                            .find(|s| s.proto == proto && s.outside == sa(PUBLIC, ext))
                            .map(|s| s.inside);
                        prop_assert_eq!(Some(to), owner, "delivered to the mapping's owner");
                    }
                }
                Op::Wait(secs) => jump(&mut h, secs),
            }
            // The invariants, over every session.
            let now = (h.now / 1000) as u32;
            let mut by_ext: HashMap<(u8, SocketAddrV4), SocketAddrV4> = HashMap::new();
            let mut by_inside: HashMap<(u8, SocketAddrV4), SocketAddrV4> = HashMap::new();
            for s in h.engine.nat().sessions(now) {
                let owner = by_ext.entry((s.proto, s.outside)).or_insert(s.inside);
                prop_assert_eq!(*owner, s.inside, "external endpoint shared");
                let mapped = by_inside.entry((s.proto, s.inside)).or_insert(s.outside);
                prop_assert_eq!(*mapped, s.outside, "mapping not endpoint-independent");
            }
            for ((proto, ext), inside) in by_ext {
                if let Some(&(prev, seen)) = last_owner.get(&(proto, ext.port())) {
                    if prev != *inside.ip() {
                        prop_assert!(
                            now >= seen + hold,
                            "port {} went from {} (seen at {}) to {} at {}",
                            ext, prev, seen, inside, now
                        );
                    }
                }
                last_owner.insert((proto, ext.port()), (*inside.ip(), now));
            }
        }
    }
}

/// Valid frames of every kind the engine handles, to mutate.
fn seeds() -> Vec<(PortId, Vec<u8>)> {
    let lan4 = |ip: Vec<u8>| (INSIDE, eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV4, &ip));
    let wan4 = |ip: Vec<u8>| (OUTSIDE, eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV4, &ip));
    let lan6 = |ip: Vec<u8>| (INSIDE, eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV6, &ip));
    let wan6 = |ip: Vec<u8>| (OUTSIDE, eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV6, &ip));
    let sent = udp4(sa(PUBLIC, 40000), sa(REMOTE, 53), b"q");
    vec![
        lan4(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"query")),
        lan4(tcp4(sa(HOST, 41000), sa(REMOTE, 80), SYN, &[2, 4, 5, 0xb4])),
        lan4(echo4(HOST, REMOTE, 9, 1, false)),
        lan4(echo4(HOST, BOX_LAN, 9, 1, false)),
        lan4(udp4(sa(HOST, 1), sa(PUBLIC, 40000), b"hairpin")),
        wan4(udp4(sa(REMOTE, 53), sa(PUBLIC, 40000), b"answer")),
        wan4(tcp4(sa(REMOTE, 80), sa(PUBLIC, 41000), SYN | ACK, &[])),
        wan4(icmp4_error(REMOTE, PUBLIC, (3, 3), &sent)),
        wan4(fragment4(&udp4(sa(REMOTE, 53), sa(PUBLIC, 40000), &[1; 40]), 9, 24).1),
        lan6(udp6(host6(), 40000, remote6(), 53, b"q")),
        wan6(udp6(remote6(), 53, host6(), 40000, b"a")),
        wan6(icmp6(
            remote6(),
            host6(),
            2,
            0,
            [0, 0, 5, 0],
            &udp6(host6(), 40000, remote6(), 53, b"q"),
        )),
        (INSIDE, neighbor_solicit(HOST_MAC, host6(), box_lan6())),
        (INSIDE, arp_request(HOST_MAC, HOST, BOX_LAN)),
        (INSIDE, arp_reply(HOST_MAC, HOST, BOX_LAN_MAC, BOX_LAN)),
    ]
}

/// Frames the box answers with something at least as long: errors about short
/// datagrams, a Duplicate Address Detection solicitation (no source link-layer option).
fn reply_seeds() -> Vec<(PortId, Vec<u8>)> {
    let lan4 = |ip: Vec<u8>| (INSIDE, eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV4, &ip));
    let lan6 = |ip: Vec<u8>| (INSIDE, eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV6, &ip));
    let gre = IpNextHeaderProtocols::Gre;
    let t = box_lan6().octets();
    let group = std::net::Ipv6Addr::from([
        0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ]);
    let dad = icmp6_hops(
        std::net::Ipv6Addr::UNSPECIFIED,
        group,
        135,
        0,
        [0; 4],
        &t,
        255,
    );
    let dad_mac = Mac([0x33, 0x33, 0xff, t[13], t[14], t[15]]);
    let mut big = udp4(sa(HOST, 40000), sa(REMOTE, 53), &[0; 1000]);
    big[8] = 1;
    fix_ipv4_checksum(&mut big);
    vec![
        lan4(ipv4_full(HOST, REMOTE, gre, &[], 1, 1, 0)),
        lan4(ipv4_full(HOST, REMOTE, gre, &[1, 2, 3], 1, 1, 0x4000)),
        lan4(big),
        lan6(ipv6_hops(host6(), remote6(), gre, &[], 1)),
        lan6(ipv6_hops(host6(), remote6(), gre, &[0; 900], 1)),
        (INSIDE, eth(dad_mac, HOST_MAC, ETHERTYPE_IPV6, &dad)),
    ]
}

/// Replies are built in the received buffer, whose length is all the room there is:
/// whatever the capacity, the engine must neither panic nor write past it.
#[test]
fn replies_fit_any_buffer_capacity() {
    for (port, frame) in seeds().into_iter().chain(reply_seeds()) {
        let mut h = busy_harness();
        for extra in (0..100).chain([500, 1500, 2048]) {
            h.now += 1000; // keep the ICMP rate limiter from hiding the reply path
            feed(&mut h, port, &frame, frame.len() + extra);
        }
    }
}

/// A harness with some state, so that inbound paths find sessions.
fn busy_harness() -> Harness {
    let mut h = Harness::new(small_config());
    h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    h.from_lan(tcp4(sa(HOST, 41000), sa(REMOTE, 80), SYN, &[]));
    h.from_lan6(udp6(host6(), 40000, remote6(), 53, b"q"));
    h
}

/// Feeds one frame in a buffer of `room` bytes, then runs the timers and drains.
fn feed(h: &mut Harness, port: PortId, bytes: &[u8], room: usize) {
    let mut buf = bytes.to_vec();
    let len = buf.len();
    buf.resize(room.max(len), 0);
    let mut frame = Frame { buf: &mut buf, len };
    let verdict = h.engine.process(port, &mut frame, h.now);
    if let Verdict::Forward(_) | Verdict::Reply(_) = verdict {
        assert!(frame.len <= frame.buf.len());
    }
    h.now += 700;
    h.engine.poll(h.now);
    h.transmitted();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(
        frames in prop::collection::vec(
            (any::<bool>(), prop::collection::vec(any::<u8>(), 0..200), 0usize..2048),
            1..8,
        ),
    ) {
        let mut h = busy_harness();
        for (inside, mut bytes, room) in frames {
            // Half the time, address the box so the frame gets past the MAC filter.
            if bytes.len() >= 14 && bytes[0] & 1 == 0 {
                let mac = if inside { BOX_LAN_MAC } else { BOX_WAN_MAC };
                bytes[0..6].copy_from_slice(&mac.0);
            }
            let port = if inside { INSIDE } else { OUTSIDE };
            feed(&mut h, port, &bytes, room);
        }
    }

    #[test]
    fn mutated_frames_never_panic(
        seed in 0usize..15,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        room in 0usize..2048,
    ) {
        let (port, mut frame) = seeds().swap_remove(seed);
        // Keep the Ethernet header so the mutation reaches the IP layers.
        for (at, byte) in edits {
            let i = 14 + at.index(frame.len() - 14);
            frame[i] = byte;
        }
        if truncate {
            frame.truncate(cut.index(frame.len() + 1));
        }
        let mut h = busy_harness();
        feed(&mut h, port, &frame, room);
        // The same frame again (state may have changed), then on the other port.
        feed(&mut h, port, &frame, room);
        let other = if port == INSIDE { OUTSIDE } else { INSIDE };
        feed(&mut h, other, &frame, 2048);
    }
}

// ---- (e) every ICMP message to every address of the box ----

/// A second pool address beside the outside port's own.
const POOL2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
/// ICMP body lengths (bytes after type, code and checksum) tried for every type, with
/// code 0, at every address.
const BODY_LENS: std::ops::RangeInclusive<usize> = 0..=64;
/// The body length every (type, code) pair is tried at, at each port's own addresses:
/// enough for a rest-of-header and a quoted IPv4/IPv6 + UDP header.
const CODE_LEN: usize = 64;

/// Who sends the ICMP messages: the port, the sender's MAC, the box's MAC there.
struct Side {
    port: PortId,
    mac: Mac,
    box_mac: Mac,
    /// The box's IPv4 and global IPv6 address on `port`.
    addr4: IpAddr,
    addr6: IpAddr,
    src4: Ipv4Addr,
    src6: Ipv6Addr,
    /// The sender's link-local address (the source toward the box's link-local).
    src6_ll: Ipv6Addr,
}

fn sides() -> [Side; 2] {
    [
        Side {
            port: INSIDE,
            mac: HOST_MAC,
            box_mac: BOX_LAN_MAC,
            addr4: BOX_LAN.into(),
            addr6: box_lan6().into(),
            src4: HOST,
            src6: host6(),
            src6_ll: "fe80::2".parse().unwrap(),
        },
        Side {
            port: OUTSIDE,
            mac: GW_MAC,
            box_mac: BOX_WAN_MAC,
            addr4: PUBLIC.into(),
            addr6: box_wan6().into(),
            src4: REMOTE,
            src6: remote6(),
            src6_ll: "fe80::1".parse().unwrap(),
        },
    ]
}

/// Every address of the box's own: the ports' IPv4 addresses, the pool's second
/// address, and each port's IPv6 global and link-local address.
fn box_addresses(h: &Harness) -> Vec<IpAddr> {
    let mut all = vec![BOX_LAN.into(), PUBLIC.into(), POOL2.into()];
    for port in [INSIDE, OUTSIDE] {
        let info = h.engine.port_info(port);
        all.push(
            info.ipv6
                .expect("the example config has IPv6")
                .addr()
                .into(),
        );
        all.push(info.link_local.into());
    }
    all
}

/// The example configuration with a two-address pool and an ICMP rate limit no loop
/// here reaches, so every message gets to the code that answers it.
fn icmp_config() -> firmware_config::Config {
    let mut c = pool_config(&[PUBLIC, POOL2]);
    c.icmp.rate_limit = 1_000_000;
    c.icmp.burst = 10_000_000;
    c
}

/// An ICMP body of `len` bytes: a 4-byte rest-of-header, then the start of a UDP
/// datagram the box could have sent (what an error quotes), cut to fit.
fn icmp_body(v6: bool, side: &Side, len: usize) -> Vec<u8> {
    let quoted = if v6 {
        udp6(side.src6, 53, box_wan6(), 40000, b"natbox")
    } else {
        udp4(sa(PUBLIC, 40000), sa(side.src4, 53), b"natbox")
    };
    let mut body = vec![0, 0, 0, 1];
    body.extend_from_slice(&quoted);
    body.resize(len, 0);
    body
}

/// The frame `side` sends to `dst`: an ICMPv4 or ICMPv6 message of `ty`/`code` with a
/// correct checksum (IPv6: hop limit 255, as Neighbor Discovery requires).
fn icmp_frame(side: &Side, dst: IpAddr, ty: u8, code: u8, len: usize) -> Vec<u8> {
    match dst {
        IpAddr::V4(dst) => {
            let mut m = vec![ty, code, 0, 0];
            m.extend_from_slice(&icmp_body(false, side, len));
            let c = util::checksum(&m, 1);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            let ip = ipv4(side.src4, dst, IpNextHeaderProtocols::Icmp, &m);
            eth(side.box_mac, side.mac, ETHERTYPE_IPV4, &ip)
        }
        IpAddr::V6(dst) => {
            let src = if dst.is_unicast_link_local() {
                side.src6_ll
            } else {
                side.src6
            };
            let body = icmp_body(true, side, len);
            let (rest, body) = body.split_at(len.min(4));
            let ip = if rest.len() == 4 {
                let rest = rest.try_into().expect("4 bytes");
                icmp6_hops(src, dst, ty, code, rest, body, 255)
            } else {
                // Shorter than a rest-of-header: build the message by hand.
                let mut m = vec![ty, code, 0, 0];
                m.extend_from_slice(rest);
                let c = util::ipv6_checksum(&m, 1, &[], &src, &dst, IpNextHeaderProtocols::Icmpv6);
                m[2..4].copy_from_slice(&c.to_be_bytes());
                ipv6_hops(src, dst, IpNextHeaderProtocols::Icmpv6, &m, 255)
            };
            eth(side.box_mac, side.mac, ETHERTYPE_IPV6, &ip)
        }
    }
}

/// Every (type, code, body length) the loop tries at `dst`: every type at every body
/// length with code 0; and, at the addresses of the sender's own port, every type with
/// every other code at `CODE_LEN` (codes mean something only once the type has been
/// recognised, which needs a full body; the loop stays within seconds in a debug build).
fn icmp_cases(all_codes: bool) -> impl Iterator<Item = (u8, u8, usize)> {
    let by_len = (0..=255u8).flat_map(|ty| BODY_LENS.map(move |len| (ty, 0, len)));
    let by_code = (0..=255u8)
        .flat_map(|ty| (1..=255u8).map(move |code| (ty, code, CODE_LEN)))
        .filter(move |_| all_codes);
    by_len.chain(by_code)
}

/// What one message did wrong: a panic (its location and message) or a broken rule.
type Failure = String;

/// Checks one verdict: a drop is counted under its reason, a reply goes back out the
/// port it came in on, to the sender, and is a well-formed frame whose checksums verify.
fn check_verdict(
    side: &Side,
    verdict: Verdict,
    reply: &[u8],
    drops_before: u64,
    h: &Harness,
) -> Result<(), Failure> {
    match verdict {
        Verdict::Drop(reason) => {
            if h.drops(reason) != drops_before + 1 {
                return Err(format!("drop {reason:?} not counted"));
            }
        }
        Verdict::Reply(port) => {
            if port != side.port {
                return Err(format!("reply sent on {port:?}"));
            }
            well_formed(side, reply)?;
        }
        Verdict::Handoff(shard) => return Err(format!("one engine handed off to {shard}")),
        Verdict::Forward(_) | Verdict::Hold | Verdict::Consumed => {}
    }
    Ok(())
}

/// A reply frame: addressed from the box to the sender, an IP header whose lengths
/// match the frame, and every checksum right (pnet's checksum code).
fn well_formed(side: &Side, f: &[u8]) -> Result<(), Failure> {
    if f.len() < 14 || f[0..6] != side.mac.0 || f[6..12] != side.box_mac.0 {
        return Err(format!(
            "reply Ethernet header wrong: {:02x?}",
            &f[..f.len().min(14)]
        ));
    }
    let ip = &f[14..];
    let consistent = match u16::from_be_bytes([f[12], f[13]]) {
        ETHERTYPE_IPV4 => {
            ip.len() >= 20
                && ip[0] >> 4 == 4
                && usize::from(ip[0] & 0xf) * 4 >= 20
                && usize::from(u16::from_be_bytes([ip[2], ip[3]])) == ip.len()
        }
        ETHERTYPE_IPV6 => {
            ip.len() >= 40
                && ip[0] >> 4 == 6
                && usize::from(u16::from_be_bytes([ip[4], ip[5]])) + 40 == ip.len()
        }
        _ => false,
    };
    if !consistent {
        return Err(format!(
            "reply IP header does not match the frame: {ip:02x?}"
        ));
    }
    // Panics (recorded as a failure by the caller) when a checksum is wrong.
    assert_checksums(f);
    Ok(())
}

/// Sends one message and checks the verdict; a panic comes back as a failure.
fn try_icmp(h: &mut Harness, side: &Side, frame: Vec<u8>) -> Result<Verdict, Failure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        PANIC.with(|p| p.borrow_mut().take());
        let mut buf = frame;
        let len = buf.len();
        buf.resize(2048, 0);
        let mut f = Frame { buf: &mut buf, len };
        let drops_before = h.engine.stats().drops;
        let verdict = h.engine.process(side.port, &mut f, h.now);
        let n = f.len;
        let before = match verdict {
            Verdict::Drop(r) => drops_before[r as usize],
            _ => 0,
        };
        check_verdict(side, verdict, &buf[..n.min(buf.len())], before, h).map(|()| verdict)
    }))
    .unwrap_or_else(|_| Err(PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default()))
}

thread_local! {
    /// The location and message of the last panic on this thread, while
    /// `every_icmp_type_code_and_length_to_every_box_address` runs.
    static PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    static RECORDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Records this thread's panics in `PANIC` instead of printing them (thousands of
/// cases may hit the same bug); other threads' panics print as before.
fn record_panics() {
    RECORDING.with(|r| r.set(true));
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if RECORDING.with(std::cell::Cell::get) {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let at = info.location().map(ToString::to_string).unwrap_or_default();
            // The first line only: the values of a failed `assert_eq!` follow it, and
            // failures are told apart by this text.
            let message = message.lines().next().unwrap_or_default();
            PANIC.with(|p| *p.borrow_mut() = Some(format!("panicked at {at}: {message}")));
        } else {
            previous(info);
        }
    }));
}

/// Whether `ty` is an echo request that `dst` answers when it comes from `side` (with
/// at least the identifier and sequence number): every address does, except the
/// inside IPv4 address from outside, a private address that is not translated inbound.
fn answers_echo(side: &Side, dst: IpAddr, ty: u8) -> bool {
    let echo = (ty == 8 && dst.is_ipv4()) || (ty == 128 && dst.is_ipv6());
    echo && !(side.port == OUTSIDE && dst == IpAddr::V4(BOX_LAN))
}

/// RFC 1812 4.3.2.7 / RFC 4443 2.4 and the hardening rule that no frame may stop the
/// box: every ICMPv4 and ICMPv6 type at every body length from 0 to 64 bytes, sent from
/// either port to each of the box's addresses (and every code of every type to the
/// addresses of the port it arrives on; see `icmp_cases`), is answered with a well-formed reply,
/// dropped for a counted reason, or handled, and never panics. All failures are
/// collected (one example per distinct failure) so one run shows every bug.
#[test]
fn every_icmp_type_code_and_length_to_every_box_address() {
    record_panics();
    let fresh = || {
        let mut h = Harness::new(icmp_config());
        // A session, so quoted datagrams in errors from outside find a mapping.
        h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
        h
    };
    let mut failures: Vec<(Failure, String, usize)> = Vec::new();
    let (mut sent, mut replies) = (0usize, 0usize);
    let addresses = box_addresses(&fresh());
    for side in sides() {
        for &dst in &addresses {
            let mut h = fresh();
            let own = [side.addr4, side.addr6].contains(&dst);
            for (ty, code, len) in icmp_cases(own) {
                sent += 1;
                let frame = icmp_frame(&side, dst, ty, code, len);
                let failure = match try_icmp(&mut h, &side, frame) {
                    Ok(Verdict::Reply(_)) => {
                        replies += 1;
                        continue;
                    }
                    Ok(verdict) if answers_echo(&side, dst, ty) && len >= 4 => {
                        format!("echo request not answered: {verdict:?}")
                    }
                    Ok(_) => continue,
                    Err(failure) => failure,
                };
                let case = format!(
                    "{:?} -> {dst}: type {ty} code {code} body {len} bytes",
                    side.port
                );
                match failures.iter_mut().find(|f| f.0 == failure) {
                    Some(f) => f.2 += 1,
                    None => failures.push((failure, case, 1)),
                }
                // A panic may leave the engine half-way: go on with a fresh one.
                h = fresh();
            }
            assert_eq!(
                h.engine.stats().icmp_rate_limited,
                0,
                "the rate limit hid replies"
            );
        }
    }
    RECORDING.with(|r| r.set(false));
    eprintln!("{sent} messages, {replies} replies");
    let report: Vec<String> = failures
        .iter()
        .map(|(failure, case, n)| format!("{failure}\n    first: {case} ({n} cases)"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {sent} messages failed:\n{}",
        failures.iter().map(|f| f.2).sum::<usize>(),
        report.join("\n")
    );
}
