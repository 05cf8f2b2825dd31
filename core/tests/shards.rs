//! Engine shards (issue #16, workers): two engines in one process, sharing nothing,
//! fed as the steering program feeds the workers (`appliance/src/dataplane/steering`,
//! modelled by `Rig::steer`) and connected only by hand-offs (`Verdict::Handoff`,
//! `Engine::pop_handoff`, `Engine::process_handed`).

mod support;

use natbox_core::engine::stats::DropReason;
use natbox_core::engine::{Engine, Frame, PortId, PortSetup, Verdict};
use natbox_core::shard::{host_worker, PublicSplit, Shard};
use natbox_core::wire::checksum::Csum;
use natbox_core::wire::ethernet::Mac;
use natbox_core::wire::offload::Offload;
use std::net::{Ipv4Addr, SocketAddrV4};
use support::*;

/// The shards of one box, with a virtual clock.
struct Rig {
    shards: Vec<Engine>,
    split: PublicSplit,
    now: u64,
}

/// What a frame became once every hand-off ran: the shard that finished it, its
/// verdict there, and the frame as that shard left it.
#[derive(Debug)]
struct Done {
    shard: usize,
    verdict: Verdict,
    frame: Vec<u8>,
}

impl Done {
    fn ip(&self) -> &[u8] {
        &self.frame[14..]
    }
}

/// Inside host `n` (10.10.0.n) and its MAC.
fn host(n: u8) -> (Ipv4Addr, Mac) {
    (Ipv4Addr::new(10, 10, 0, n), Mac([2, 0, 0, 0, 1, n]))
}

/// Hosts 10.10.0.2.. the rig teaches the shards.
const HOSTS: std::ops::RangeInclusive<u8> = 2..=20;

/// The first host the steering puts on `worker` (of 2).
fn host_on(worker: usize) -> (Ipv4Addr, Mac) {
    HOSTS
        .map(host)
        .find(|(ip, _)| host_worker(ip.to_bits(), 2) == worker)
        .expect("hosts on both workers")
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl Rig {
    fn new(workers: usize) -> Rig {
        Rig::with(config(), workers)
    }

    fn with(config: firmware_config::Config, workers: usize) -> Rig {
        let setups = [
            PortSetup { mac: BOX_LAN_MAC },
            PortSetup { mac: BOX_WAN_MAC },
        ];
        let mut rig = Rig {
            shards: (0..workers)
                .map(|k| Engine::new_shard(&config, &setups, Shard::new(k, workers).unwrap()))
                .collect(),
            split: PublicSplit::new(workers, (config.nat.port_min, config.nat.port_max)).unwrap(),
            now: 1_000_000,
        };
        for (ip, mac) in HOSTS.map(host) {
            let d = rig.send(INSIDE, arp_request(mac, ip, BOX_LAN));
            assert_eq!((d.shard, d.verdict), (0, Verdict::Reply(INSIDE)));
        }
        let d = rig.send(OUTSIDE, arp_request(GW_MAC, GW, PUBLIC));
        assert_eq!(d.verdict, Verdict::Reply(OUTSIDE));
        rig
    }

    /// The worker the steering program picks for a received frame (its rules 1-3 and
    /// 5 for IPv4 and ARP; IPv6 is not used here): ARP to 0; from an inside host, the
    /// host hash; to the pool, the owner of the public port (every IPv4 fragment: 0).
    fn steer(&self, f: &[u8]) -> usize {
        let workers = self.shards.len() as u32;
        if be16(f, 12) != ETHERTYPE_IPV4 {
            return 0;
        }
        let ip = &f[14..];
        let (src, dst) = addrs4(ip);
        if src.octets()[..3] == [10, 10, 0] {
            return host_worker(src.to_bits(), workers);
        }
        if dst != PUBLIC || be16(ip, 6) & 0x3fff != 0 {
            return 0;
        }
        let l4 = &ip[usize::from(ip[0] & 0xf) * 4..];
        match (ip[9], l4[0]) {
            (6 | 17, _) => self.split.port_owner(be16(l4, 2)),
            (1, 0) => self.split.ident_owner(be16(l4, 4)),
            (1, 3 | 11 | 12) => {
                let inner = &l4[8..];
                let inner_l4 = &inner[usize::from(inner[0] & 0xf) * 4..];
                match inner[9] {
                    1 => self.split.ident_owner(be16(inner_l4, 4)),
                    _ => self.split.port_owner(be16(inner_l4, 0)),
                }
            }
            _ => 0,
        }
    }

    /// Receives `frame` on `port` where the steering puts it.
    fn send(&mut self, port: PortId, frame: Vec<u8>) -> Done {
        let k = self.steer(&frame);
        self.deliver(k, port, frame, false)
    }

    /// Runs `frame` on shard `k` and follows its hand-offs (each shard at most once).
    fn deliver(&mut self, mut k: usize, port: PortId, mut bytes: Vec<u8>, handed: bool) -> Done {
        let mut handed = handed;
        for _ in 0..=self.shards.len() {
            let len = bytes.len();
            bytes.resize(len.max(2048), 0);
            let mut frame = Frame {
                buf: &mut bytes,
                len,
            };
            let engine = &mut self.shards[k];
            let verdict = if handed {
                engine.process_handed(port, &mut frame, self.now)
            } else {
                engine.process(port, &mut frame, self.now)
            };
            let n = frame.len;
            bytes.truncate(n);
            match verdict {
                Verdict::Handoff(to) => {
                    assert_ne!(to, k, "a shard never hands a frame to itself");
                    (k, handed) = (to, true);
                }
                _ => {
                    return Done {
                        shard: k,
                        verdict,
                        frame: bytes,
                    }
                }
            }
        }
        panic!("hand-offs did not end");
    }

    /// Delivers every frame the shards queued for each other.
    fn handoffs(&mut self) -> Vec<Done> {
        let mut done = Vec::new();
        let mut buf = vec![0u8; 9100];
        for from in 0..self.shards.len() {
            while let Some((to, port, n)) = self.shards[from].pop_handoff(&mut buf) {
                let frame = buf[..n].to_vec();
                done.push(self.deliver(to, port, frame, true));
            }
        }
        done
    }

    fn lan(&mut self, mac: Mac, ip: Vec<u8>) -> Done {
        self.send(INSIDE, eth(BOX_LAN_MAC, mac, ETHERTYPE_IPV4, &ip))
    }

    fn wan(&mut self, ip: Vec<u8>) -> Done {
        self.send(OUTSIDE, eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV4, &ip))
    }

    /// Opens a UDP mapping for `host:port` towards REMOTE:53 and returns its public
    /// endpoint and the shard that made it.
    fn open(&mut self, (ip, mac): (Ipv4Addr, Mac), port: u16) -> (SocketAddrV4, usize) {
        let d = self.lan(mac, udp4(sa(ip, port), sa(REMOTE, 53), b"q"));
        assert_eq!(d.verdict, Verdict::Forward(OUTSIDE), "{ip}:{port} out");
        (endpoints4(d.ip()).0, d.shard)
    }
}

/// Every shard learns the neighbours from shard 0's copies of the ARP it received
/// (the steering sends ARP to worker 0 only): a frame shard 1 forwards goes out at once
/// instead of waiting for an ARP reply shard 1 would never receive.
#[test]
fn arp_learnt_on_shard_0_reaches_every_shard() {
    let mut rig = Rig::new(2);
    let shared = rig.handoffs();
    assert_eq!(shared.len(), HOSTS.count() + 1);
    assert!(shared
        .iter()
        .all(|d| d.shard == 1 && d.verdict == Verdict::Consumed));
    let (_, shard) = rig.open(host_on(1), 5000);
    assert_eq!(shard, 1);
    assert_eq!(rig.shards[1].stats().arp_requests, 0);
}

/// The same for NDP: a solicitation shard 0 answered teaches shard 1 the neighbour, so
/// an IPv6 host's traffic on shard 1 goes out and comes back without waiting.
#[test]
fn ndp_learnt_on_shard_0_reaches_every_shard() {
    let mut rig = Rig::new(2);
    rig.handoffs();
    for (port, mac, ip, target) in [
        (INSIDE, HOST_MAC, host6(), box_lan6()),
        (OUTSIDE, GW_MAC, gw6(), box_wan6()),
    ] {
        let d = rig.deliver(0, port, neighbor_solicit(mac, ip, target), false);
        assert_eq!(d.verdict, Verdict::Reply(port));
    }
    let shared = rig.handoffs();
    assert_eq!(shared.len(), 2);
    assert!(shared
        .iter()
        .all(|d| (d.shard, d.verdict) == (1, Verdict::Consumed)));
    let out = udp6(host6(), 5000, remote6(), 53, b"q");
    let d = rig.deliver(
        1,
        INSIDE,
        eth(BOX_LAN_MAC, HOST_MAC, ETHERTYPE_IPV6, &out),
        false,
    );
    assert_eq!(d.verdict, Verdict::Forward(OUTSIDE));
    let back = udp6(remote6(), 53, host6(), 5000, b"a");
    let d = rig.deliver(
        1,
        OUTSIDE,
        eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV6, &back),
        false,
    );
    assert_eq!(d.verdict, Verdict::Forward(INSIDE));
    assert_eq!(rig.shards[1].stats().ndp_solicits, 0);
}

/// Each shard allocates from its own slices of the port classes, so the shards' public
/// ports are disjoint and the owner of each (`PortSplit`) is the shard that made it.
#[test]
fn shards_allocate_disjoint_public_ports_from_their_slices() {
    let mut rig = Rig::new(2);
    rig.handoffs();
    let mut seen = std::collections::HashSet::new();
    let mut per_shard = [0; 2];
    for n in HOSTS {
        for port in [80, 5000, 40000, 60000] {
            let (public, shard) = rig.open(host(n), port);
            assert_eq!(rig.split.port_owner(public.port()), shard, "{public}");
            assert!(seen.insert(public.port()), "{public} given twice");
            per_shard[shard] += 1;
        }
    }
    assert!(per_shard.iter().all(|&n| n > 0), "{per_shard:?}");
}

/// A reply reaches the shard owning its public port and is translated there; landing
/// on another shard (a frame steered before the program was attached), it is handed
/// to the owner instead of being dropped as unsolicited.
#[test]
fn reply_is_translated_by_the_shard_owning_the_public_port() {
    let mut rig = Rig::new(2);
    rig.handoffs();
    let (ip, mac) = host_on(1);
    let (public, shard) = rig.open((ip, mac), 5000);
    assert_eq!(shard, 1);
    let shared = rig.shards[0].stats().handed_off;
    let reply = udp4(sa(REMOTE, 53), public, b"a");
    let d = rig.wan(reply.clone());
    assert_eq!((d.shard, d.verdict), (1, Verdict::Forward(INSIDE)));
    assert_eq!(endpoints4(d.ip()).1, sa(ip, 5000));
    let d = rig.deliver(
        0,
        OUTSIDE,
        eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV4, &reply),
        false,
    );
    assert_eq!((d.shard, d.verdict), (1, Verdict::Forward(INSIDE)));
    assert_eq!(rig.shards[0].stats().handed_off, shared + 1);
    assert_eq!(rig.shards[0].stats().drops_for(DropReason::NoMapping), 0);
}

/// RFC 4787 REQ-9 across shards: the sender's shard translates the source and hands
/// the frame to the shard owning the destination's mapping, which translates the
/// destination; the target sees the sender's public endpoint.
#[test]
fn rfc4787_req9_hairpin_across_shards_completes_through_a_handoff() {
    let mut rig = Rig::new(2);
    rig.handoffs();
    let (a, a_mac) = host_on(0);
    let (b, b_mac) = host_on(1);
    let (b_public, b_shard) = rig.open((b, b_mac), 6000);
    let (a_public, a_shard) = rig.open((a, a_mac), 7000);
    assert_eq!((a_shard, b_shard), (0, 1));
    let shared = rig.shards[0].stats().handed_off;
    let d = rig.lan(a_mac, udp4(sa(a, 7000), b_public, b"hi"));
    assert_eq!((d.shard, d.verdict), (1, Verdict::Forward(INSIDE)));
    assert_eq!(endpoints4(d.ip()), (a_public, sa(b, 6000)));
    assert_checksums(&d.frame);
    assert_eq!(rig.shards[0].stats().handed_off, shared + 1);
    assert_eq!(rig.shards[1].stats().hairpinned, 1);
    // And back: b's reply to a's public endpoint goes from shard 1 to shard 0.
    let d = rig.lan(b_mac, udp4(sa(b, 6000), a_public, b"ho"));
    assert_eq!((d.shard, d.verdict), (0, Verdict::Forward(INSIDE)));
    assert_eq!(endpoints4(d.ip()), (b_public, sa(a, 7000)));
}

/// A hairpinned frame with its UDP checksum left partial (CHECKSUM_PARTIAL, as a veth
/// hands over locally sent datagrams) is handed with the checksum completed, since a
/// handed frame carries no offload metadata; a GSO super-frame is not handed at all.
#[test]
fn hairpin_handoff_completes_a_partial_checksum_and_refuses_gso() {
    let mut rig = Rig::new(2);
    rig.handoffs();
    let (a, a_mac) = host_on(0);
    let (b, b_mac) = host_on(1);
    let (b_public, _) = rig.open((b, b_mac), 6000);
    let mut l4 = udp_segment(7000, b_public.port(), b"partial");
    let words = [a.octets(), b_public.ip().octets()]
        .iter()
        .flat_map(|o| {
            [
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
            ]
        })
        .map(u32::from)
        .sum::<u32>()
        + 17
        + l4.len() as u32;
    let folded = ((words & 0xffff) + (words >> 16)) as u16;
    l4[6..8].copy_from_slice(&folded.to_be_bytes());
    let ip = ipv4(
        a,
        *b_public.ip(),
        pnet_packet::ip::IpNextHeaderProtocols::Udp,
        &l4,
    );
    for (gso, want) in [
        (None, Verdict::Handoff(1)),
        (Some(100), Verdict::Drop(DropReason::GsoNotBuffered)),
    ] {
        let mut bytes = eth(BOX_LAN_MAC, a_mac, ETHERTYPE_IPV4, &ip);
        let len = bytes.len();
        bytes.resize(2048, 0);
        let mut frame = Frame {
            buf: &mut bytes,
            len,
        };
        let offload = Offload {
            csum: Csum::Partial,
            gso_segment: gso,
        };
        let v = rig.shards[0].process_offloaded(INSIDE, &mut frame, offload, rig.now);
        assert_eq!(v, want);
        let n = frame.len;
        bytes.truncate(n);
        if v == Verdict::Handoff(1) {
            let d = rig.deliver(1, INSIDE, bytes, true);
            assert_eq!(d.verdict, Verdict::Forward(INSIDE));
            assert_eq!(endpoints4(d.ip()).1, sa(b, 6000));
            assert_checksums(&d.frame);
        }
    }
}

/// RFC 5508 REQ-7 across shards: an ICMP error from the hairpin's target about the
/// datagram it received is translated out by its shard and in by the sender's.
#[test]
fn rfc5508_req7_hairpinned_icmp_error_reaches_the_senders_shard() {
    let mut rig = Rig::new(2);
    rig.handoffs();
    let (a, a_mac) = host_on(0);
    let (b, b_mac) = host_on(1);
    let (b_public, _) = rig.open((b, b_mac), 6000);
    let (a_public, _) = rig.open((a, a_mac), 7000);
    let delivered = rig.lan(a_mac, udp4(sa(a, 7000), b_public, b"hi"));
    let error = icmp4_error(b, a_public.ip().to_owned(), (3, 3), delivered.ip());
    let d = rig.lan(b_mac, error);
    assert_eq!((d.shard, d.verdict), (0, Verdict::Forward(INSIDE)));
    assert_eq!(addrs4(d.ip()), (*b_public.ip(), a));
    let quoted = &d.ip()[28..];
    assert_eq!(endpoints4(quoted), (sa(a, 7000), b_public));
    assert_eq!(rig.shards[0].stats().icmp_errors_translated, 1);
}

/// An ICMP error about a session of shard 1 is steered by the quoted source port to
/// shard 1 and translated there (RFC 5508 REQ-3); shard 0 has no such session and
/// hands it over rather than dropping it.
#[test]
fn icmp_error_for_a_session_on_shard_1_is_translated_by_shard_1() {
    let mut rig = Rig::new(2);
    rig.handoffs();
    let (ip, mac) = host_on(1);
    let out = rig.lan(mac, udp4(sa(ip, 5000), sa(REMOTE, 53), b"q"));
    assert_eq!(out.shard, 1);
    let error = icmp4_error(GW, PUBLIC, (3, 1), out.ip());
    let d = rig.wan(error.clone());
    assert_eq!((d.shard, d.verdict), (1, Verdict::Forward(INSIDE)));
    assert_eq!(addrs4(d.ip()).1, ip);
    assert_eq!(endpoints4(&d.ip()[28..]).0, sa(ip, 5000));
    let d = rig.deliver(
        0,
        OUTSIDE,
        eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV4, &error),
        false,
    );
    assert_eq!((d.shard, d.verdict), (1, Verdict::Forward(INSIDE)));
    assert_eq!(
        rig.shards[0]
            .stats()
            .drops_for(DropReason::IcmpErrorNoMatch),
        0
    );
}

/// RFC 4787 REQ-14 across shards: every fragment from outside reaches shard 0, which
/// hands the datagram to the shard owning its port, in order or not: a fragment ahead
/// of its first waits on shard 0 and follows the first.
#[test]
fn rfc4787_req14_fragments_from_outside_reach_the_owner_through_shard_0() {
    let mut rig = Rig::new(2);
    rig.handoffs();
    let (ip, mac) = host_on(1);
    let (public, _) = rig.open((ip, mac), 5000);
    let whole = udp4(sa(REMOTE, 53), public, &[7; 64]);
    let wan = |ip: &[u8]| eth(BOX_WAN_MAC, GW_MAC, ETHERTYPE_IPV4, ip);

    let (first, rest) = fragment4(&whole, 0x4242, 24);
    assert_eq!(rig.steer(&wan(&first)), 0);
    let d = rig.send(OUTSIDE, wan(&first));
    assert_eq!((d.shard, d.verdict), (1, Verdict::Forward(INSIDE)));
    let d = rig.send(OUTSIDE, wan(&rest));
    assert_eq!((d.shard, d.verdict), (1, Verdict::Forward(INSIDE)));
    assert_eq!(addrs4(d.ip()), (REMOTE, ip));

    let (first, rest) = fragment4(&whole, 0x4343, 24);
    let d = rig.send(OUTSIDE, wan(&rest));
    assert_eq!((d.shard, d.verdict), (0, Verdict::Hold));
    let d = rig.send(OUTSIDE, wan(&first));
    assert_eq!((d.shard, d.verdict), (1, Verdict::Forward(INSIDE)));
    let released = rig.handoffs();
    assert_eq!(released.len(), 1);
    assert_eq!(
        (released[0].shard, released[0].verdict),
        (1, Verdict::Forward(INSIDE))
    );
    assert_eq!(addrs4(released[0].ip()), (REMOTE, ip));
    assert_eq!(rig.shards[1].stats().fragments_forwarded, 2);
}

/// One shard is the engine of old: `Engine::new` is shard 0 of 1 and never hands off.
#[test]
fn one_shard_never_hands_off() {
    let mut rig = Rig::new(1);
    assert!(rig.handoffs().is_empty());
    let (ip, mac) = host(2);
    let (public, shard) = rig.open((ip, mac), 5000);
    assert_eq!((shard, public.port()), (0, 5000), "port preserved");
    let d = rig.wan(udp4(sa(REMOTE, 53), public, b"a"));
    assert_eq!(d.verdict, Verdict::Forward(INSIDE));
    assert_eq!(rig.shards[0].stats().handed_off, 0);
}

/// Issue 18, port forwards with workers: a forwarded port lies outside the split, so
/// the steering sends its frames to shard 0, which hands them to the inside host's
/// shard; there the session lives, the host's replies (steered by its address) meet
/// it, and a hairpinned client on the other shard reaches the server and gets its
/// answer (RFC 4787 REQ-9) through two hand-offs.
#[test]
fn issue18_forwarded_sessions_live_on_the_inside_hosts_shard() {
    let (server, server_mac) = host_on(1);
    let (client, client_mac) = host_on(0);
    let text = example_toml().replace("[nat]\n", "[nat]\nport_min = 10000\n");
    let forward =
        format!("[[forward]]\nprotocol = \"tcp\"\nport = 8080\nto = \"{server}\"\nto_port = 80\n");
    let mut rig = Rig::with(
        firmware_config::from_toml(&format!("{text}\n{forward}")).unwrap(),
        2,
    );
    rig.handoffs();
    let syn = rig.wan(tcp4(sa(REMOTE, 5555), sa(PUBLIC, 8080), SYN, &[]));
    assert_eq!((syn.shard, syn.verdict), (1, Verdict::Forward(INSIDE)));
    assert_eq!(endpoints4(syn.ip()), (sa(REMOTE, 5555), sa(server, 80)));
    let reply = rig.lan(
        server_mac,
        tcp4(sa(server, 80), sa(REMOTE, 5555), SYN | ACK, &[]),
    );
    assert_eq!((reply.shard, reply.verdict), (1, Verdict::Forward(OUTSIDE)));
    assert_eq!(endpoints4(reply.ip()), (sa(PUBLIC, 8080), sa(REMOTE, 5555)));
    // Hairpin from a host of shard 0.
    let out = rig.lan(
        client_mac,
        tcp4(sa(client, 7000), sa(PUBLIC, 8080), SYN, &[]),
    );
    assert_eq!((out.shard, out.verdict), (1, Verdict::Forward(INSIDE)));
    let (seen, to) = endpoints4(out.ip());
    assert_eq!((*seen.ip(), to), (PUBLIC, sa(server, 80)));
    let back = rig.lan(server_mac, tcp4(sa(server, 80), seen, SYN | ACK, &[]));
    assert_eq!((back.shard, back.verdict), (0, Verdict::Forward(INSIDE)));
    assert_eq!(endpoints4(back.ip()), (sa(PUBLIC, 8080), sa(client, 7000)));
    let hits: u64 = rig
        .shards
        .iter()
        .map(|e| e.nat().forward_hits()[0].hits)
        .sum();
    assert_eq!(hits, 2);
}
