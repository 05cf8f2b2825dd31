//! The steering program on the real kernel (a veth pair in a private namespace, N
//! fanout sockets on one end, crafted frames sent from the other) and, for any
//! description, on the interpreter.

use super::interp;
use super::*;
use crate::dataplane::testnet::{index, private_netns, receiver_of, run, send_from};
use proptest::prelude::*;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const IPV4: u16 = 0x0800;
const IPV6: u16 = 0x86dd;
const ARP: u16 = 0x0806;
const POOL: [[u8; 4]; 2] = [[198, 51, 100, 1], [198, 51, 100, 2]];
const OUTSIDE: [u8; 4] = [203, 0, 113, 9];
const OUTSIDE6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
];

fn steering(workers: usize) -> Steering {
    Steering::new(
        workers,
        POOL.iter().map(|&a| a.into()).collect(),
        (500, 65535),
        vec![
            "10.0.0.0/16".parse().unwrap(),
            "172.16.0.0/12".parse().unwrap(),
        ],
        vec!["2001:db8:1::/48".parse().unwrap()],
    )
    .unwrap()
}

fn inside(host: u8) -> [u8; 4] {
    [10, 0, 1, host]
}

fn inside6(host: u8) -> [u8; 16] {
    let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    a[15] = host;
    a
}

/// An IPv4 header (`ihl_words` 5 or more, options zero) and `payload`.
fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    frag: u16,
    ihl_words: u8,
    payload: &[u8],
) -> Vec<u8> {
    let hlen = usize::from(ihl_words) * 4;
    let total = u16::try_from(hlen + payload.len()).unwrap();
    let mut b = vec![0x40 | ihl_words, 0];
    b.extend_from_slice(&total.to_be_bytes());
    b.extend_from_slice(&[0x12, 0x34]);
    b.extend_from_slice(&frag.to_be_bytes());
    b.extend_from_slice(&[64, proto, 0, 0]);
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.resize(hlen, 1); // options: NOPs
    b.extend_from_slice(payload);
    b
}

/// A TCP (20 bytes) or UDP (8 bytes) header with these ports.
fn ports(proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut b = sport.to_be_bytes().to_vec();
    b.extend_from_slice(&dport.to_be_bytes());
    b.resize(if proto == 6 { 20 } else { 8 }, 0);
    b
}

/// An ICMP message: type, code, the 4 bytes after the checksum, and the body.
fn icmp(kind: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = vec![kind, 0, 0, 0];
    b.extend_from_slice(&rest);
    b.extend_from_slice(body);
    b
}

fn echo(kind: u8, id: u16) -> Vec<u8> {
    let [h, l] = id.to_be_bytes();
    icmp(kind, [h, l, 0, 1], b"ping")
}

fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0x60, 0, 0, 0];
    b.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    b.extend_from_slice(&[next, 64]);
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend_from_slice(payload);
    b
}

/// A veth pair in a private namespace: `workers` fanout sockets on `sta`, steered by
/// `steering(workers)`, and a sender on `stb`.
struct Rig {
    workers: Vec<PacketSocket>,
    sender: PacketSocket,
    program: Vec<libc::sock_filter>,
}

impl Rig {
    fn new(workers: usize) -> Rig {
        Rig::with(&steering(workers).program().unwrap(), workers)
    }

    fn with(program: &[libc::sock_filter], workers: usize) -> Rig {
        Rig::joined(workers, program, |sockets| {
            let refs: Vec<&PacketSocket> = sockets.iter().collect();
            form(&refs, program).expect("the kernel accepts the program");
        })
    }

    /// The rig, its fanout group made by `attach`; `program` predicts the steering.
    fn joined(
        workers: usize,
        program: &[libc::sock_filter],
        attach: impl FnOnce(&[PacketSocket]),
    ) -> Rig {
        private_netns();
        run(&[
            "ip", "link", "add", "sta", "type", "veth", "peer", "name", "stb",
        ]);
        run(&["ip", "link", "set", "sta", "up"]);
        run(&["ip", "link", "set", "stb", "up"]);
        let sockets: Vec<PacketSocket> = (0..workers)
            .map(|_| PacketSocket::open(index("sta")).unwrap())
            .collect();
        attach(&sockets);
        Rig {
            workers: sockets,
            sender: PacketSocket::open_sender(index("stb")).unwrap(),
            program: program.to_vec(),
        }
    }

    fn send(&self, ethertype: u16, l3: &[u8]) {
        send_from(&self.sender, ethertype, l3);
    }

    /// Sends the frame and returns the worker whose socket received it (within a
    /// second), after checking the interpreter agrees with the kernel.
    fn worker_of(&self, ethertype: u16, l3: &[u8]) -> usize {
        self.send(ethertype, l3);
        let k = self
            .receiver_of(l3, Duration::from_secs(1))
            .expect("a worker receives the frame");
        let predicted = interp::run(&self.program, ethertype, l3);
        assert_eq!(predicted as usize, k, "interpreter and kernel disagree");
        k
    }

    /// The worker whose socket receives the network-layer frame `l3` within `wait`.
    fn receiver_of(&self, l3: &[u8], wait: Duration) -> Option<usize> {
        let sockets: Vec<Option<&PacketSocket>> = self.workers.iter().map(Some).collect();
        receiver_of(&sockets, l3, wait)
    }
}

/// Frames sent out of the port come back to no worker. A member socket's
/// `PACKET_IGNORE_OUTGOING` stops applying once it joins a fanout group (the group has
/// a receive hook of its own), so the group must ask for it; frames sent by a member
/// itself, or through `PACKET_QDISC_BYPASS`, never reach the taps at all, so the
/// frame here is sent by another socket through the qdisc layer (as the host's own
/// stack would).
#[test]
fn frames_sent_out_of_the_port_reach_no_worker() {
    let s = steering(2);
    let rig = Rig::new(2);
    let port = *s.ports[0].slice(1).unwrap().start();
    let frame = ipv4(OUTSIDE, POOL[0], 17, 0, 5, &ports(17, 1, port));
    send_from(&PacketSocket::open(index("sta")).unwrap(), IPV4, &frame);
    assert_eq!(rig.receiver_of(&frame, Duration::from_millis(300)), None);
    assert_eq!(rig.worker_of(IPV4, &frame), 1, "the same frame, received");
}

#[test]
fn reply_reaches_the_worker_that_owns_the_public_port() {
    for workers in [2, 3] {
        let s = steering(workers);
        let rig = Rig::new(workers);
        for split in &s.ports {
            for k in 0..workers {
                let slice = split.slice(k).unwrap();
                for (port, proto, dst) in
                    [(*slice.start(), 6, POOL[0]), (*slice.end(), 17, POOL[1])]
                {
                    let frame = ipv4(OUTSIDE, dst, proto, 0, 5, &ports(proto, 443, port));
                    assert_eq!(rig.worker_of(IPV4, &frame), k, "port {port} proto {proto}");
                }
            }
        }
        let below_range = ipv4(OUTSIDE, POOL[0], 17, 0, 5, &ports(17, 53, 80));
        assert_eq!(rig.worker_of(IPV4, &below_range), 0, "no one's port");
    }
}

#[test]
fn echo_reply_reaches_the_owner_of_its_identifier() {
    let s = steering(3);
    let rig = Rig::new(3);
    for k in 0..3 {
        let id = *s.icmp_ids.slice(k).unwrap().end();
        assert_eq!(
            rig.worker_of(IPV4, &ipv4(OUTSIDE, POOL[1], 1, 0, 5, &echo(0, id))),
            k
        );
    }
    let request = ipv4(OUTSIDE, POOL[1], 1, 0, 5, &echo(8, 65535));
    assert_eq!(rig.worker_of(IPV4, &request), 0, "a ping of the box itself");
}

#[test]
fn icmp_error_reaches_the_owner_of_the_embedded_source_port() {
    let s = steering(2);
    let rig = Rig::new(2);
    let port = *s.ports[0].slice(1).unwrap().start();
    let id = *s.icmp_ids.slice(1).unwrap().start();
    // The datagrams the box sent, from the pool: IHL 6 (an option) and 5.
    let sent_udp = ipv4(POOL[0], OUTSIDE, 17, 0, 6, &ports(17, port, 53));
    let sent_tcp = ipv4(POOL[0], OUTSIDE, 6, 0, 5, &ports(6, port, 443)[..8]);
    let sent_ping = ipv4(POOL[0], OUTSIDE, 1, 0, 6, &echo(8, id)[..8]);
    for (kind, sent, outer_ihl) in [
        (3, &sent_udp, 5),
        (11, &sent_tcp, 6),
        (12, &sent_udp, 5),
        (3, &sent_ping, 5),
    ] {
        let error = ipv4(OUTSIDE, POOL[0], 1, 0, outer_ihl, &icmp(kind, [0; 4], sent));
        assert_eq!(
            rig.worker_of(IPV4, &error),
            1,
            "type {kind}, outer IHL {outer_ihl}"
        );
    }
    let port0 = *s.ports[0].slice(0).unwrap().end();
    let sent0 = ipv4(POOL[0], OUTSIDE, 17, 0, 6, &ports(17, port0, 1));
    let error0 = ipv4(OUTSIDE, POOL[0], 1, 0, 5, &icmp(3, [0; 4], &sent0));
    assert_eq!(rig.worker_of(IPV4, &error0), 0);
}

/// All frames of one inside host (any ports, protocols, fragments) meet on one worker,
/// and hosts spread over every worker.
#[test]
fn inside_host_frames_stay_on_one_worker_and_hosts_spread_over_all() {
    for workers in [2, 3] {
        let rig = Rig::new(workers);
        let mut used = vec![0; workers];
        for host in 1..=24 {
            let src = inside(host);
            let first = rig.worker_of(IPV4, &ipv4(src, OUTSIDE, 6, 0, 5, &ports(6, 40000, 443)));
            for frame in [
                ipv4(src, OUTSIDE, 17, 0, 5, &ports(17, 5353, 53)),
                ipv4(src, OUTSIDE, 17, 185, 5, b"non-first fragment"),
                ipv4(src, OUTSIDE, 1, 0, 5, &echo(8, 7)),
            ] {
                assert_eq!(rig.worker_of(IPV4, &frame), first, "host {host}");
            }
            used[first] += 1;
        }
        assert!(
            used.iter().all(|&n| n >= 24 / workers / 2),
            "{workers} workers: {used:?}"
        );
        let other_prefix = ipv4([172, 20, 3, 4], OUTSIDE, 17, 0, 5, &ports(17, 1, 2));
        let _ = rig.worker_of(IPV4, &other_prefix);
        let stranger = ipv4([192, 168, 9, 9], OUTSIDE, 17, 0, 5, &ports(17, 1, 2));
        assert_eq!(rig.worker_of(IPV4, &stranger), 0, "not an inside source");
    }
}

/// Hairpinning (RFC 4787 section 6): an inside host's frame to a pool address goes to
/// the host's worker (which translates its source and hands the frame to the port's
/// owner), not to the owner of the destination port.
#[test]
fn hairpinned_frame_reaches_the_worker_of_its_inside_source() {
    let s = steering(2);
    let rig = Rig::new(2);
    for host in 1..=4 {
        let src = inside(host);
        let own = rig.worker_of(IPV4, &ipv4(src, OUTSIDE, 17, 0, 5, &ports(17, 1000, 53)));
        let other = 1 - own;
        let port = *s.ports[0].slice(other).unwrap().start();
        let hairpin = ipv4(src, POOL[1], 17, 0, 5, &ports(17, 1000, port));
        assert_eq!(rig.worker_of(IPV4, &hairpin), own, "host {host}");
        let from_outside = ipv4(OUTSIDE, POOL[1], 17, 0, 5, &ports(17, 1000, port));
        assert_eq!(rig.worker_of(IPV4, &from_outside), other);
    }
}

/// IPv6 (RFC 6092): a host's outbound frames and the inbound frames to it meet on one
/// worker, and hosts spread over every worker.
#[test]
fn ipv6_both_directions_of_a_host_meet_on_one_worker() {
    let rig = Rig::new(3);
    let mut used = [0; 3];
    for host in 1..=24 {
        let out = rig.worker_of(IPV6, &ipv6(inside6(host), OUTSIDE6, 17, &ports(17, 1, 2)));
        let back = rig.worker_of(IPV6, &ipv6(OUTSIDE6, inside6(host), 6, &ports(6, 2, 1)));
        assert_eq!(out, back, "host {host}");
        used[out] += 1;
    }
    assert!(used.iter().all(|&n| n >= 4), "{used:?}");
    let transit = ipv6(OUTSIDE6, OUTSIDE6, 17, &ports(17, 1, 2));
    assert_eq!(rig.worker_of(IPV6, &transit), 0);
}

/// What no stateless program can place goes to worker 0, which hands it off: ARP, NDP
/// (even from an inside host's global address), and fragments from outside: the
/// non-first ones carry no port, so the first goes with them and worker 0 hands the
/// datagram to its owner (the engine's "Shards").
#[test]
fn arp_ndp_and_fragments_from_outside_go_to_worker_zero() {
    let s = steering(2);
    let rig = Rig::new(2);
    let arp = [
        0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 10, 0, 1, 5, 0, 0, 0, 0, 0, 0, 10, 0, 1, 1,
    ];
    assert_eq!(rig.worker_of(ARP, &arp), 0);
    for host in 1..=8 {
        let ns = ipv6(inside6(host), inside6(1), 58, &icmp(135, [0; 4], &[0; 16]));
        assert_eq!(
            rig.worker_of(IPV6, &ns),
            0,
            "neighbor solicitation from host {host}"
        );
    }
    let port = *s.ports[0].slice(1).unwrap().start();
    let first = ipv4(OUTSIDE, POOL[0], 17, 0x2000, 5, &ports(17, 53, port));
    assert_eq!(
        rig.worker_of(IPV4, &first),
        0,
        "a first fragment goes with the others"
    );
    let whole = ipv4(OUTSIDE, POOL[0], 17, 0x4000, 5, &ports(17, 53, port));
    assert_eq!(rig.worker_of(IPV4, &whole), 1, "DF is no fragment");
    let later = ipv4(OUTSIDE, POOL[0], 17, 0x2000 | 185, 5, &ports(17, 53, port));
    assert_eq!(
        rig.worker_of(IPV4, &later),
        0,
        "a non-first fragment has none"
    );
    let truncated = ipv4(OUTSIDE, POOL[0], 17, 0, 5, &[0x12]);
    assert_eq!(
        rig.worker_of(IPV4, &truncated),
        0,
        "a load past the end returns 0"
    );
}

/// A forward of public `first..=last` (TCP) to inside host `to`.
fn forward(first: u16, last: u16, to: [u8; 4]) -> firmware_config::forward::Forward {
    firmware_config::forward::Forward {
        protocol: firmware_config::forward::Protocol::Tcp,
        port: firmware_config::policy::PortRange { first, last },
        to: to.into(),
        to_port: None,
        address: None,
        allow: Vec::new(),
        comment: None,
    }
}

/// Inside hosts 1.. whose workers (of `workers`) are 0, 1, ... in turn.
fn hosts_on_each_worker(workers: u32) -> Vec<[u8; 4]> {
    (0..workers)
        .map(|k| {
            (1..=255)
                .map(inside)
                .find(|&h| {
                    natbox_core::shard::host_worker(u32::from_be_bytes(h), workers) == k as usize
                })
                .expect("a host on each worker")
        })
        .collect()
}

/// Frames to a forwarded public port, and ICMP errors about the datagrams the box sent
/// from it, reach the worker of the forward's inside host, which holds its sessions,
/// instead of worker 0 and a hand-off.
#[test]
fn forwarded_port_reaches_the_worker_of_its_inside_host() {
    let hosts = hosts_on_each_worker(3);
    // The SNAT range starts at 500: the forwards lie below it.
    let s = steering(3).with_forwards(&[
        forward(80, 80, hosts[1]),
        forward(100, 199, hosts[2]),
        forward(200, 200, hosts[0]),
    ]);
    assert_eq!(s.forwarded, vec![(80, 80, 1), (100, 199, 2), (200, 200, 0)]);
    let rig = Rig::with(&s.program().unwrap(), 3);
    for (port, k) in [
        (80, 1),
        (100, 2),
        (150, 2),
        (199, 2),
        (200, 0),
        (81, 0),
        (99, 0),
    ] {
        for proto in [6, 17] {
            let frame = ipv4(OUTSIDE, POOL[0], proto, 0, 5, &ports(proto, 40000, port));
            assert_eq!(rig.worker_of(IPV4, &frame), k, "port {port} proto {proto}");
        }
    }
    let sent = ipv4(POOL[0], OUTSIDE, 6, 0, 5, &ports(6, 150, 40000)[..8]);
    let error = ipv4(OUTSIDE, POOL[0], 1, 0, 5, &icmp(3, [0; 4], &sent));
    assert_eq!(rig.worker_of(IPV4, &error), 2);
}

#[test]
fn forwards_whose_hosts_disagree_on_a_port_are_left_to_worker_zero() {
    let hosts = hosts_on_each_worker(2);
    let s = steering(2).with_forwards(&[
        // TCP 53 to one host, UDP 53 to another: no single worker holds port 53.
        forward(53, 53, hosts[1]),
        forward(50, 60, hosts[0]),
        // Touching ranges of one worker merge.
        forward(70, 79, hosts[1]),
        forward(80, 80, hosts[1]),
        forward(81, 90, hosts[1]),
    ]);
    assert_eq!(s.forwarded, vec![(70, 90, 1)]);
    let p = s.program().unwrap();
    let to = |port| {
        interp::run(
            &p,
            IPV4,
            &ipv4(OUTSIDE, POOL[0], 17, 0, 5, &ports(17, 1, port)),
        )
    };
    assert_eq!((to(53), to(55), to(75), to(90), to(91)), (0, 0, 1, 1, 0));
}

/// Forwards past the kernel's program limit are left out, not a refused program.
#[test]
fn too_many_forwards_for_the_program_are_left_out() {
    let hosts = hosts_on_each_worker(2);
    // 1400 ranges of 2 ports (3 instructions each), the hosts alternating.
    let many: Vec<_> = (0..1400u16)
        .map(|i| forward(3 * i + 1, 3 * i + 2, hosts[usize::from(i % 2)]))
        .collect();
    let s = Steering::new(
        2,
        vec![POOL[0].into()],
        (5000, 65535),
        Vec::new(),
        Vec::new(),
    )
    .unwrap()
    .with_forwards(&many);
    assert_eq!(s.forwarded.len(), 1400);
    let p = s.program().expect("built without the forwards");
    assert!(p.len() <= 4096);
    let frame = ipv4(OUTSIDE, POOL[0], 17, 0, 5, &ports(17, 1, 4));
    assert_eq!(interp::run(&p, IPV4, &frame), 0);
}

/// The largest descriptions the builder is tested with pass the kernel's checker.
#[test]
fn kernel_accepts_the_program_for_64_workers_and_long_lists() {
    let s = Steering::new(
        64,
        (0..200u32)
            .map(|i| Ipv4Addr::from(0xc633_6400 + i * 3))
            .collect(),
        (1, 65535),
        (0..32u32)
            .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 16)), 16).unwrap())
            .collect(),
        (0..32u16)
            .map(|i| format!("2001:db8:{i:x}::/{}", 48 + i % 17).parse().unwrap())
            .collect(),
    )
    .unwrap();
    let program = s.program().unwrap();
    assert!(
        program.len() > 255,
        "long enough to need 32-bit jumps: {}",
        program.len()
    );
    let rig = Rig::with(&program, 64);
    let port = *s.ports[0].slice(63).unwrap().end();
    let to = Ipv4Addr::from(0xc633_6400 + 199 * 3).octets();
    assert_eq!(
        rig.worker_of(IPV4, &ipv4(OUTSIDE, to, 6, 0, 5, &ports(6, 1, port))),
        63
    );
}

/// Any description the config validation lets through (port 0 is never in the range).
fn any_steering() -> impl Strategy<Value = Steering> {
    (
        1usize..=64,
        prop::collection::vec(any::<u32>(), 0..64),
        (1u16.., 1u16..),
        prop::collection::vec((any::<u32>(), 0u8..=32), 0..16),
        prop::collection::vec((any::<u128>(), 0u8..=128), 0..16),
    )
        .prop_map(|(workers, pool, (a, b), v4, v6)| {
            Steering::new(
                workers,
                pool.into_iter().map(Ipv4Addr::from).collect(),
                (a.min(b), a.max(b)),
                v4.into_iter()
                    .map(|(a, l)| Ipv4Net::new(a.into(), l).unwrap())
                    .collect(),
                v6.into_iter()
                    .map(|(a, l)| Ipv6Net::new(a.into(), l).unwrap())
                    .collect(),
            )
            .unwrap()
        })
}

proptest! {
    /// For any description: the program assembles within the kernel's limits, every
    /// jump lands inside it, and for any frame it returns a worker index below N (so
    /// the kernel's modulo never changes it); a reply to a pool address is given to
    /// the owner of its port.
    #[test]
    fn program_is_valid_and_answers_below_the_worker_count(
        s in any_steering(),
        bytes in prop::collection::vec(any::<u8>(), 0..80),
        port in any::<u16>(),
        pick in any::<prop::sample::Index>(),
    ) {
        let p = s.program().unwrap();
        prop_assert!(p.len() <= 4096);
        for (at, i) in p.iter().enumerate() {
            let targets = if i.code == super::asm::op::JA {
                vec![at + 1 + i.k as usize]
            } else if i.code & 0x07 == libc::BPF_JMP as u16 {
                vec![at + 1 + usize::from(i.jt), at + 1 + usize::from(i.jf)]
            } else {
                Vec::new()
            };
            prop_assert!(targets.iter().all(|&t| t < p.len()), "jump out at {at}");
        }
        for proto in [IPV4, IPV6, ARP] {
            prop_assert!(interp::run(&p, proto, &bytes) < s.workers);
        }
        if !s.pool.is_empty() {
            let dst = s.pool[pick.index(s.pool.len())].octets();
            let from_inside = s.inside4.iter().any(|n| n.contains(&Ipv4Addr::from(OUTSIDE)));
            if !from_inside {
                let frame = ipv4(OUTSIDE, dst, 17, 0, 5, &ports(17, 9, port));
                let owner = s.ports.iter().find_map(|sp| sp.owner(port)).unwrap_or(0);
                prop_assert_eq!(interp::run(&p, IPV4, &frame) as usize, owner);
            }
        }
    }
}

/// The CPU time this thread has used.
fn thread_cpu() -> Duration {
    // SAFETY: timespec is plain old data; zero is valid.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: t is a writable timespec.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(r, 0);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Fanout modes compared by `measure_steering_cost`.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Round robin: the cheapest demux there is, the baseline.
    RoundRobin,
    /// The kernel's flow hash (`skb_get_hash`: the flow dissector, on a veth).
    Hash,
    /// The steering program.
    Cbpf,
}

/// One round's results.
#[derive(Debug)]
struct Round {
    /// The sender thread's CPU time per frame: the send system call, the veth and the
    /// receive path up to the sockets' queues (fanout demux included), all of which
    /// run in the sender's context.
    cpu_ns: f64,
    /// Frames sent per second.
    pps: f64,
    /// Frames each socket got (received or dropped for a full queue).
    per_socket: Vec<u64>,
}

/// Drains `sock` until `stop`; returns the frames it got (received or dropped).
fn drain(sock: &PacketSocket, stop: &std::sync::atomic::AtomicBool) -> u64 {
    let mut buf = [0u8; 2048];
    let mut got = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
        // SAFETY: buf is a writable buffer of the length passed.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            got += 1;
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    got + sock.take_drops()
}

/// One round: `frames` frames (half UDP replies to pool ports over both slices, half
/// UDP from 64 inside hosts) sent over the veth to 2 fanout sockets, each drained by a
/// thread.
fn round(mode: Mode, frames: usize) -> Round {
    let program = steering(2).program().unwrap();
    let rig = Rig::joined(2, &program, |sockets| {
        let kind = match mode {
            Mode::Cbpf => {
                let refs: Vec<&PacketSocket> = sockets.iter().collect();
                form(&refs, &program).unwrap();
                return;
            }
            Mode::Hash => libc::PACKET_FANOUT_HASH,
            Mode::RoundRobin => libc::PACKET_FANOUT_LB,
        };
        for sock in sockets {
            sock.set(libc::SOL_PACKET, libc::PACKET_FANOUT, &fanout_arg(1, kind))
                .unwrap();
        }
    });
    let mix: Vec<Vec<u8>> = (0..128u16)
        .map(|i| {
            if i % 2 == 0 {
                ipv4(OUTSIDE, POOL[0], 17, 0, 5, &ports(17, 443, 1024 + i * 500))
            } else {
                let host = u8::try_from(i / 2).unwrap();
                ipv4(inside(host), OUTSIDE, 17, 0, 5, &ports(17, 40000 + i, 443))
            }
        })
        .collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let drains: Vec<_> = rig
            .workers
            .iter()
            .map(|sock| scope.spawn(|| drain(sock, &stop)))
            .collect();
        let (wall, cpu) = (Instant::now(), thread_cpu());
        for frame in mix.iter().cycle().take(frames) {
            rig.send(IPV4, frame);
        }
        let (wall, cpu) = (wall.elapsed(), thread_cpu() - cpu);
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        Round {
            cpu_ns: cpu.as_nanos() as f64 / frames as f64,
            pps: frames as f64 / wall.as_secs_f64(),
            per_socket: drains.into_iter().map(|d| d.join().unwrap()).collect(),
        }
    })
}

/// The numbers in the module doc: `cargo test -p appliance --lib
/// dataplane::steering::tests::measure_steering_cost -- --ignored --nocapture`. Modes
/// alternate within each of `ROUNDS` rounds, so background load hits them alike.
#[test]
#[ignore = "a measurement, not a check: run by hand"]
fn measure_steering_cost() {
    const ROUNDS: usize = 9;
    const FRAMES: usize = 200_000;
    let modes = [Mode::RoundRobin, Mode::Hash, Mode::Cbpf];
    let mut results: Vec<Vec<Round>> = modes.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for (m, mode) in modes.iter().enumerate() {
            results[m].push(round(*mode, FRAMES));
        }
    }
    for (mode, rounds) in modes.iter().zip(&mut results) {
        rounds.sort_by(|a, b| a.cpu_ns.total_cmp(&b.cpu_ns));
        let median = &rounds[ROUNDS / 2];
        let cpu: Vec<String> = rounds.iter().map(|r| format!("{:.0}", r.cpu_ns)).collect();
        println!(
            "{mode:?}: median {:.0} ns/frame of sender CPU ({}), {:.0} frames/s, per socket {:?}",
            median.cpu_ns,
            cpu.join(" "),
            median.pps,
            median.per_socket
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The kernel's checker accepts whatever the builder produces.
    #[test]
    fn kernel_accepts_every_generated_program(s in any_steering(), workers in 1usize..=4) {
        let lo = private_netns();
        let program = s.program().unwrap();
        let sockets: Vec<PacketSocket> =
            (0..workers).map(|_| PacketSocket::open(lo).unwrap()).collect();
        let refs: Vec<&PacketSocket> = sockets.iter().collect();
        prop_assert!(form(&refs, &program).is_ok(), "{} instructions", program.len());
    }
}
