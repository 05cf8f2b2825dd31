//! Per-host rate limits (`[host_limits]`, `engine::policy::limit`): what the packet
//! bucket costs an established flow's packet, and the session bucket a new session.
//!
//! `udp_established_limits/{none,packets,sessions,both}/{1_flow,1k_flows_rr}`: one
//! outbound UDP flow (or 1 000 of one host, round robin) with no limit, a
//! `packets_per_second` limit, a `new_sessions_per_second` limit (established
//! packets never ask it: the cost is the clock kept for it), and both. The limits are
//! high (`MAX_RATE`) so nothing is dropped, and the engine clock moves 1 ms an
//! iteration in every variant so the bucket refills as in a live box (each bench
//! checks that nothing was dropped).
//!
//! Run: `cargo bench -p natbox-core --bench host_limits`.

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use firmware_config::host_limits::{HostLimits, MAX_RATE};
use firmware_config::Config;
use natbox_core::engine::Verdict;
use std::hint::black_box;
use std::time::Duration;
use support::*;

fn limited(sessions: bool, packets: bool) -> Config {
    let mut c = big_config(1 << 16, 1);
    c.host_limits = HostLimits {
        new_sessions_per_second: sessions.then_some(MAX_RATE),
        new_sessions_burst: None,
        packets_per_second: packets.then_some(MAX_RATE),
        packets_burst: None,
    };
    c
}

const VARIANTS: [(&str, bool, bool); 4] = [
    ("none", false, false),
    ("packets", false, true),
    ("sessions", true, false),
    ("both", true, true),
];

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("udp_established_limits");
    g.throughput(Throughput::Elements(1));
    for (name, sessions, packets) in VARIANTS {
        let mut h = Harness::new(limited(sessions, packets));
        h.confirm_neighbours();
        let outs = Frames::build(1000, |k| {
            let (s, d) = flow(k, 1);
            lan_udp(s, d)
        });
        let mut now = h.now;
        for i in 0..outs.count {
            let mut work = outs.get(i).to_vec();
            assert_eq!(
                run(&mut h.engine, INSIDE, &mut work, outs.get(i), now),
                Verdict::Forward(OUTSIDE)
            );
        }
        let mut work = vec![0u8; 2048];
        g.bench_function(format!("{name}/1_flow"), |b| {
            b.iter(|| {
                now += 1;
                black_box(run(&mut h.engine, INSIDE, &mut work, outs.get(0), now))
            })
        });
        let mut i = 0;
        g.bench_function(format!("{name}/1k_flows_rr"), |b| {
            b.iter(|| {
                now += 1;
                i = if i + 1 == outs.count { 0 } else { i + 1 };
                black_box(run(&mut h.engine, INSIDE, &mut work, outs.get(i), now))
            })
        });
        let drops = h.engine.stats().total_drops();
        assert_eq!(drops, 0, "{name}: the limits dropped packets");
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = established
}
criterion_main!(benches);
