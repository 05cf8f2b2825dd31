//! Property tests for the engine (proptest):
//! (a) translation is reversible: a reply to a translated datagram comes back to the
//!     exact inside endpoints, and the reverse of that reply is the original datagram
//!     (see `translate_then_reverse_restores_the_original` for what that means exactly);
//! (b) every checksum verifies after every rewrite, whatever the protocol;
//! (c) no two inside endpoints ever share one external endpoint, under port contention
//!     and expiry, and a freed port never goes to another host within the reuse hold;
//! (d) arbitrary bytes never make the engine panic (a cheap version of the fuzz crate).

mod support;
use natbox::engine::{Frame, Port, Verdict};
use natbox::wire::ethernet::Mac;
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::util;
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
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
    let out = h.frame(Port::Inside, arp_request(host_mac(host), host, BOX_LAN));
    assert_eq!(out.verdict, Verdict::Reply(Port::Inside));
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
        prop_assert_eq!(out.verdict, Verdict::Forward(Port::Outside));
        assert_checksums(&out.frame);
        let (ext, to) = endpoints4(out.ip());
        prop_assert_eq!(*ext.ip(), PUBLIC);
        prop_assert_eq!(to, sa(remote, dport));
        prop_assert_eq!(&out.ip()[original.len() - payload.len()..], &payload[..]);

        let back = h.from_wan(swap(out.ip()));
        prop_assert_eq!(back.verdict, Verdict::Forward(Port::Inside));
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
        prop_assert_eq!(out.verdict, Verdict::Forward(Port::Outside));
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
        prop_assert_eq!(back.verdict, Verdict::Forward(Port::Inside));
        assert_checksums(&back.frame);
        if kind == 1 {
            prop_assert_eq!(&back.ip()[26..28], &[0, 0]);
        }
        let delivered = back.ip().to_vec();

        // An inbound ICMP error quoting what we sent.
        let router = Ipv4Addr::new(192, 0, 2, 1);
        let quote = if cut { &sent[..28] } else { &sent[..] };
        let err = h.from_wan(icmp4_error(router, PUBLIC, error_type, quote));
        prop_assert_eq!(err.verdict, Verdict::Forward(Port::Inside));
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
        prop_assert_eq!(err.verdict, Verdict::Forward(Port::Outside));
        assert_checksums(&err.frame);
        if !cut {
            assert_quoted_checksums(&err.ip()[28..]);
        }

        // A hairpinned datagram to the mapping.
        if kind != 3 {
            let ext = endpoints4(&sent).0;
            let hp = datagram(if kind == 2 { TCP } else { UDP }, sa(HOST2, 33333), ext, SYN, &payload);
            let out = h.from_lan(hp);
            prop_assert_eq!(out.verdict, Verdict::Forward(Port::Inside));
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
    h.frame(Port::Outside, arp_request(GW_MAC, GW, PUBLIC));
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
                        Verdict::Forward(Port::Outside) => {
                            assert_checksums(&out.frame);
                            let ext = endpoints4(out.ip()).0;
                            prop_assert!((40000..=40007).contains(&ext.port()), "{}", ext);
                            let now = (h.now / 1000) as u32;
                            let s = h.engine.nat().sessions(now)
                                .find(|s| s.proto == proto && s.inside == src)
                                .expect("a session for the forwarded datagram");
                            prop_assert_eq!(s.outside, ext);
                        }
                        Verdict::Drop(natbox::engine::stats::DropReason::PortsExhausted) => {}
                        v => prop_assert!(false, "unexpected verdict {:?}", v),
                    }
                }
                Op::In { remote, ext, proto } => {
                    let from = sa(remotes[usize::from(remote)], 443);
                    let out = h.from_wan(datagram(proto, from, sa(PUBLIC, ext), SYN, b"r"));
                    if out.verdict == Verdict::Forward(Port::Inside) {
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
fn seeds() -> Vec<(Port, Vec<u8>)> {
    let lan4 = |ip: Vec<u8>| {
        (
            Port::Inside,
            eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV4, &ip),
        )
    };
    let wan4 = |ip: Vec<u8>| (Port::Outside, eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV4, &ip));
    let lan6 = |ip: Vec<u8>| {
        (
            Port::Inside,
            eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV6, &ip),
        )
    };
    let wan6 = |ip: Vec<u8>| (Port::Outside, eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV6, &ip));
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
        (
            Port::Inside,
            neighbor_solicit(HOST_MAC, host6(), box_lan6()),
        ),
        (Port::Inside, arp_request(HOST_MAC, HOST, BOX_LAN)),
        (
            Port::Inside,
            arp_reply(HOST_MAC, HOST, BOX_LAN_MAC, BOX_LAN),
        ),
    ]
}

/// Frames the box answers with something at least as long: errors about short
/// datagrams, a Duplicate Address Detection solicitation (no source link-layer option).
fn reply_seeds() -> Vec<(Port, Vec<u8>)> {
    let lan4 = |ip: Vec<u8>| {
        (
            Port::Inside,
            eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV4, &ip),
        )
    };
    let lan6 = |ip: Vec<u8>| {
        (
            Port::Inside,
            eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV6, &ip),
        )
    };
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
        (Port::Inside, eth(dad_mac, HOST_MAC, ETHERTYPE_IPV6, &dad)),
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
fn feed(h: &mut Harness, port: Port, bytes: &[u8], room: usize) {
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
            let port = if inside { Port::Inside } else { Port::Outside };
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
        let other = if port == Port::Inside { Port::Outside } else { Port::Inside };
        feed(&mut h, other, &frame, 2048);
    }
}
