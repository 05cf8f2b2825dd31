//! Egress policy benchmarks (criterion), issue #18: what a new session costs with
//! 10, 1 000 and 10 000 rules against no policy.
//!
//! - `policy_lookup/{rules}`: one decision (`Policy::admit4`) for a random packet, the
//!   lookup alone.
//! - `policy_new_session/{none,10,1000,10000}`: a new UDP session through the engine
//!   (the `session_creation` benchmark of `engine`, frame copy excluded), under a
//!   policy whose rules are random (sources in the inside prefix or any, destinations
//!   anywhere but the benchmark's remote /24, TCP, UDP, ICMP or any, ports, ranges and
//!   ICMP types; deny, reject and allow) followed by the one rule that allows the
//!   benchmark's flows, and a default of deny: every session is decided by the last
//!   rule, the worst case for a walk and the usual one for an allow-list. The goal is
//!   at most twice the cost without a policy at 10 000 rules; the ratio is printed.
//!
//! Run: `cargo bench -p natbox-core --bench policy`.

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use common::*;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use firmware_config::policy::{Action, Policy as Written, PortRange, Prefix, Protocol, Rule};
use firmware_config::Config;
use natbox_core::engine::policy::{l4_key, Policy};
use std::collections::HashSet;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use support::*;

const SIZES: [usize; 3] = [10, 1_000, 10_000];

fn prefix(addr: u32, len: u8) -> Prefix {
    let net = ipnet::Ipv4Net::new(Ipv4Addr::from_bits(addr), len).expect("length");
    Prefix(net.trunc().into())
}

/// The benchmark flows' remotes (`REMOTE` and up).
fn remotes() -> Prefix {
    prefix(REMOTE.to_bits(), 24)
}

/// A random rule that never matches the benchmark's flows (UDP from 10.1/16 to
/// `remotes()` port 53).
fn random_rule(rng: &mut Rng) -> Rule {
    let action = [Action::Allow, Action::Deny, Action::Reject][rng.below(3)];
    let source = (rng.below(3) != 0).then(|| {
        let len = 8 + rng.below(25) as u8;
        prefix(0x0a00_0000 | rng.next() as u32 & 0x00ff_ffff, len)
    });
    let destination = (rng.below(4) != 0).then(|| loop {
        let len = [8u8, 12, 16, 20, 24, 28, 32][rng.below(7)];
        let p = prefix(rng.next() as u32, len);
        if !p.0.contains(&remotes().0) && !remotes().0.contains(&p.0) {
            break p;
        }
    });
    let mut protocol = [
        Protocol::Tcp,
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Icmp,
        Protocol::Any,
    ][rng.below(5)];
    if destination.is_none() && protocol == Protocol::Any {
        protocol = Protocol::Tcp;
    }
    let port = match protocol {
        // Anywhere: ports above 1024 only, so never the flows' 53.
        Protocol::Udp if destination.is_none() => {
            let first = 1024 + rng.below(60_000) as u16;
            Some(PortRange {
                first,
                last: first + rng.below(500) as u16,
            })
        }
        Protocol::Tcp | Protocol::Udp => match rng.below(3) {
            0 => None,
            1 => {
                let p = [22u16, 25, 80, 443, 8080, 3389][rng.below(6)];
                Some(PortRange { first: p, last: p })
            }
            _ => {
                let first = rng.below(65_000) as u16;
                Some(PortRange {
                    first,
                    last: first + rng.below(500) as u16,
                })
            }
        },
        _ => None,
    };
    let icmp_type =
        (protocol == Protocol::Icmp && rng.below(2) == 0).then(|| [0u8, 3, 8, 11][rng.below(4)]);
    Rule {
        action,
        source,
        destination,
        protocol,
        port,
        icmp_type,
        comment: None,
    }
}

/// `n` rules: `n - 1` random ones, then the one allowing the benchmark's flows;
/// default deny.
fn policy(n: usize) -> Written {
    let mut rng = Rng(n as u64);
    let mut seen = HashSet::new();
    let mut rule = Vec::with_capacity(n);
    while rule.len() + 1 < n {
        let r = random_rule(&mut rng);
        if seen.insert(r.describe()) {
            rule.push(r);
        }
    }
    rule.push(Rule {
        action: Action::Allow,
        source: None,
        destination: Some(remotes()),
        protocol: Protocol::Udp,
        port: None,
        icmp_type: None,
        comment: None,
    });
    Written {
        default: Action::Deny,
        rule,
    }
}

/// `big_config` with the policy of `n` rules (none for 0), checked valid.
fn config_with(max_sessions: u32, n: usize) -> Config {
    let mut c = big_config(max_sessions, 64);
    if n > 0 {
        c.policy = policy(n);
    }
    if let Err(e) = firmware_config::validate(&c) {
        panic!("benchmark policy invalid: {:?}", &e[..e.len().min(3)]);
    }
    c
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy_lookup");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let written = policy(n);
        let started = Instant::now();
        let mut p = Policy::new(&written);
        eprintln!(
            "policy_lookup/{n}: compiled in {:.1} ms, {} KiB",
            started.elapsed().as_secs_f64() * 1e3,
            p.memory() >> 10
        );
        // Packets to the rules' own destinations and to random ones.
        let mut rng = Rng(7);
        let dsts: Vec<u32> = written
            .rule
            .iter()
            .filter_map(|r| r.destination.map(|d| d.0))
            .map(|d| match d {
                ipnet::IpNet::V4(n) => n.network().to_bits(),
                ipnet::IpNet::V6(_) => 0,
            })
            .collect();
        let packets: Vec<(Ipv4Addr, Ipv4Addr, u32)> = (0..1 << 16)
            .map(|_| {
                let src = Ipv4Addr::from_bits(0x0a01_0000 | rng.below(1 << 16) as u32);
                let dst = if rng.below(2) == 0 && !dsts.is_empty() {
                    dsts[rng.below(dsts.len())] + rng.below(4) as u32
                } else {
                    rng.next() as u32
                };
                let proto = [6u8, 6, 17, 1][rng.below(4)];
                let value = [53u16, 80, 443, 8, rng.next() as u16][rng.below(5)];
                (src, Ipv4Addr::from_bits(dst), l4_key(proto, value))
            })
            .collect();
        let mut i = 0;
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) & 0xffff;
                let (s, d, k) = packets[i];
                black_box(p.admit4(black_box(s), black_box(d), black_box(k)))
            })
        });
    }
    g.finish();
}

/// Sessions per engine; the engine is rebuilt (untimed) when it is full.
const CAP: usize = 1 << 18;
const WARM: usize = 4096;

/// Nanoseconds per new session (plain timing, for the printed ratio) and the
/// criterion benchmark of it.
fn new_sessions(c: &mut Criterion) {
    let pristine = Frames::build(CAP, |k| {
        let (s, d) = flow(k, 1);
        lan_udp(s, d)
    });
    let mut g = c.benchmark_group("policy_new_session");
    g.throughput(Throughput::Elements(1));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    let mut plain = Vec::new();
    for n in [0].into_iter().chain(SIZES) {
        let config = config_with(CAP as u32, n);
        let mut frames = Frames {
            data: pristine.data.clone(),
            len: pristine.len,
            count: pristine.count,
        };
        // The engine being filled (none yet) and the next frame to send it.
        let mut h: Option<Harness> = None;
        let mut next = CAP;
        let mut problems = 0u64;
        // Creates `count` sessions, refilling the engine as needed; the time spent.
        let mut create = |count: usize| {
            let mut left = count;
            let mut spent = Duration::ZERO;
            while left > 0 {
                if next == CAP || h.is_none() {
                    if let Some(full) = &h {
                        let e = &full.engine;
                        if e.nat().session_count() != CAP || e.stats().total_drops() != 0 {
                            problems += 1;
                        }
                    }
                    let mut fresh = Harness::new(config.clone());
                    fresh.confirm_neighbours();
                    frames.data.copy_from_slice(&pristine.data);
                    for i in 0..WARM {
                        frames.process_in_place(i, &mut fresh.engine, INSIDE, fresh.now);
                    }
                    h = Some(fresh);
                    next = WARM;
                }
                let Some(h) = h.as_mut() else { break };
                let k = left.min(CAP - next);
                let now = h.now;
                let t = Instant::now();
                for i in next..next + k {
                    black_box(frames.process_in_place(i, &mut h.engine, INSIDE, now));
                }
                spent += t.elapsed();
                next += k;
                left -= k;
            }
            spent
        };
        let name = if n == 0 {
            "none".to_string()
        } else {
            n.to_string()
        };
        let t = create(CAP);
        plain.push(t.as_nanos() as f64 / CAP as f64);
        g.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter_custom(|iters| create(iters as usize))
        });
        eprintln!(
            "policy_new_session/{name}: {:.1} ns/session (plain timing of {CAP}), {problems} filled engines with drops or missing sessions",
            plain.last().copied().unwrap_or(0.0),
        );
    }
    g.finish();
    if let [none, .., ten_k] = plain[..] {
        eprintln!(
            "policy_new_session: 10000 rules / none = {:.2} (goal <= 2)",
            ten_k / none
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = lookup, new_sessions
}
criterion_main!(benches);
