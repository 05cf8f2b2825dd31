//! Shared by the `engine` and `memory` benchmarks: configurations large enough that no
//! limit is hit, a deterministic generator of many distinct UDP flows, and a flat array
//! of pre-built frames (one allocation, fixed stride) so the timed loops touch no
//! allocator.
#![allow(dead_code)]

use crate::support::*;
use firmware_config::Config;
use natbox_core::engine::{Engine, Frame, PortId, Verdict};
use std::net::{Ipv4Addr, SocketAddrV4};

/// UDP payload of every benchmark datagram: 14 + 20 + 8 + 18 = 60-byte frames.
pub const PAYLOAD: &[u8] = b"natbox-bench-data!";
/// Bytes per frame in a `Frames` array.
pub const STRIDE: usize = 64;
/// Source ports per inside host in `flow` (clients' ephemeral range is 28 232 wide).
pub const PORTS_PER_HOST: usize = 1024;

/// The example configuration with room for `max_sessions` sessions, a pool of `pool`
/// addresses (198.51.100.100 and up) and 10.0.0.0/8 translated, so that `flow` can
/// make up to `max_sessions` distinct flows without touching a limit.
pub fn big_config(max_sessions: u32, pool: u8) -> Config {
    let mut c = config();
    c.nat.max_sessions = max_sessions;
    c.nat.max_sessions_per_host = 8192.min(max_sessions);
    c.nat.max_ports_per_host = 4096.min(max_sessions);
    c.nat.pool = (0..pool)
        .map(|i| Ipv4Addr::new(198, 51, 100, 100 + i))
        .collect();
    c.nat.inside_prefixes = vec!["10.0.0.0/8".parse().unwrap()];
    if let Err(e) = firmware_config::validate(&c) {
        panic!("benchmark config invalid: {e:?}");
    }
    c
}

/// The `k`-th distinct flow: inside hosts 10.1.0.1 and up, `PORTS_PER_HOST` mappings
/// each with scattered ephemeral source ports (so hosts sharing a pool address collide
/// the way real clients do), and `remotes` sessions per mapping (remote 203.0.113.5
/// and up, port 53).
pub fn flow(k: usize, remotes: usize) -> (SocketAddrV4, SocketAddrV4) {
    let r = k % remotes;
    let m = k / remotes;
    let (h, j) = (m / PORTS_PER_HOST, m % PORTS_PER_HOST);
    let host = Ipv4Addr::from_bits(0x0a01_0001 + h as u32);
    let sport = 32768 + ((j * 7919 + h * 12345) % 28232) as u16;
    let remote = Ipv4Addr::from_bits(REMOTE.to_bits() + r as u32);
    (
        SocketAddrV4::new(host, sport),
        SocketAddrV4::new(remote, 53),
    )
}

/// An Ethernet frame carrying a UDP datagram from the lan into the inside port.
pub fn lan_udp(src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
    eth(
        BOX_LAN_MAC,
        HOST_MAC,
        ETHERTYPE_IPV4,
        &udp4(src, dst, PAYLOAD),
    )
}

/// An Ethernet frame carrying a UDP datagram from the wan gateway into the outside port.
pub fn wan_udp(src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
    eth(
        BOX_WAN_MAC,
        GW_MAC,
        ETHERTYPE_IPV4,
        &udp4(src, dst, PAYLOAD),
    )
}

/// Equal-length frames at a fixed stride in one buffer.
pub struct Frames {
    pub data: Vec<u8>,
    pub len: usize,
    pub count: usize,
}

impl Frames {
    pub fn build(count: usize, mut make: impl FnMut(usize) -> Vec<u8>) -> Frames {
        let mut data = vec![0u8; count * STRIDE];
        let mut len = 0;
        for i in 0..count {
            let f = make(i);
            assert!(f.len() <= STRIDE && (len == 0 || f.len() == len));
            len = f.len();
            data[i * STRIDE..i * STRIDE + len].copy_from_slice(&f);
        }
        Frames { data, len, count }
    }

    /// Frame `i` of `other`, for each `i` of `picks`.
    pub fn pick(other: &Frames, picks: impl Iterator<Item = usize>) -> Frames {
        let picks: Vec<usize> = picks.collect();
        let mut data = vec![0u8; picks.len() * STRIDE];
        for (n, &i) in picks.iter().enumerate() {
            data[n * STRIDE..(n + 1) * STRIDE]
                .copy_from_slice(&other.data[i * STRIDE..(i + 1) * STRIDE]);
        }
        Frames {
            data,
            len: other.len,
            count: picks.len(),
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[i * STRIDE..i * STRIDE + self.len]
    }

    /// Processes frame `i` in place (a frame can be processed once this way).
    #[inline]
    pub fn process_in_place(
        &mut self,
        i: usize,
        e: &mut Engine,
        port: PortId,
        now: u64,
    ) -> Verdict {
        let mut f = Frame {
            buf: &mut self.data[i * STRIDE..(i + 1) * STRIDE],
            len: self.len,
        };
        e.process(port, &mut f, now)
    }
}

/// Copies `pristine` into `work` and processes it: what every established-flow
/// iteration does (the copy is measured on its own as well).
#[inline(always)]
pub fn run(e: &mut Engine, port: PortId, work: &mut [u8], pristine: &[u8], now: u64) -> Verdict {
    work[..pristine.len()].copy_from_slice(pristine);
    let mut f = Frame {
        buf: work,
        len: pristine.len(),
    };
    e.process(port, &mut f, now)
}

/// Fills a fresh engine with `n` outbound UDP sessions from `flow(k, remotes)`;
/// panics if any is refused.
pub fn fill(h: &mut Harness, n: usize, remotes: usize) {
    let mut frames = Frames::build(n, |k| {
        let (s, d) = flow(k, remotes);
        lan_udp(s, d)
    });
    let now = h.now;
    for i in 0..n {
        let v = frames.process_in_place(i, &mut h.engine, INSIDE, now);
        assert_eq!(v, Verdict::Forward(OUTSIDE), "fill: flow {i}");
    }
    assert_eq!(h.engine.nat().session_count(), n);
}

/// A small deterministic generator (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
