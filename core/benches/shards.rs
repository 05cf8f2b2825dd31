//! Engine shards in parallel (issue #16, workers): N engines, each on its own thread
//! with the flows the steering program would give it (inside hosts by
//! `shard::host_worker`), translating established outbound UDP flows. The throughput
//! of N = 1 against N = 2 shows how the shards scale when cores are free: they share
//! nothing, so the only limits are the cores and the memory bandwidth.
//!
//! Each iteration runs every flow's frame once (copied from a pristine frame first, as
//! in the `engine` benchmark), split across the shards' threads, which are spawned per
//! iteration (tens of microseconds, against milliseconds of work).
//!
//! Run: `cargo bench -p natbox-core --bench shards`.

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use natbox_core::engine::Verdict;
use natbox_core::shard::{host_worker, Shard};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};
use support::*;

/// Inside hosts and mappings per host: 16 384 flows in all.
const HOSTS: u32 = 256;
const PORTS: u16 = 64;

/// Every flow's inside endpoint.
fn flows() -> Vec<SocketAddrV4> {
    (0..HOSTS)
        .flat_map(|h| {
            let host = Ipv4Addr::from_bits(0x0a01_0001 + h);
            (0..PORTS).map(move |p| SocketAddrV4::new(host, 40000 + p))
        })
        .collect()
}

/// One shard: its engine and the frames of its flows (sessions already open).
struct Worker {
    h: Harness,
    frames: Frames,
}

fn workers(n: usize) -> Vec<Worker> {
    let config = big_config(1 << 16, 1);
    let all = flows();
    (0..n)
        .map(|k| {
            let mine: Vec<&SocketAddrV4> = all
                .iter()
                .filter(|f| host_worker(f.ip().to_bits(), n as u32) == k)
                .collect();
            let frames = Frames::build(mine.len(), |i| lan_udp(*mine[i], sa(REMOTE, 53)));
            let mut h = Harness::new_shard(config.clone(), Shard::new(k, n).expect("k < n"));
            h.confirm_neighbours();
            let mut work = vec![0u8; STRIDE];
            for i in 0..frames.count {
                let v = run(&mut h.engine, INSIDE, &mut work, frames.get(i), h.now);
                assert_eq!(v, Verdict::Forward(OUTSIDE), "setup: shard {k} flow {i}");
            }
            Worker { h, frames }
        })
        .collect()
}

fn shards_in_parallel(c: &mut Criterion) {
    let mut g = c.benchmark_group("shards_udp_established");
    g.throughput(Throughput::Elements(u64::from(HOSTS) * u64::from(PORTS)));
    g.measurement_time(Duration::from_secs(5));
    for n in [1usize, 2] {
        let mut ws = workers(n);
        let counts: Vec<usize> = ws.iter().map(|w| w.frames.count).collect();
        eprintln!("shards={n}: flows per shard {counts:?}");
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    std::thread::scope(|s| {
                        for w in ws.iter_mut() {
                            s.spawn(move || {
                                let mut work = vec![0u8; STRIDE];
                                let now = w.h.now;
                                for i in 0..w.frames.count {
                                    let v = run(
                                        &mut w.h.engine,
                                        INSIDE,
                                        &mut work,
                                        w.frames.get(i),
                                        now,
                                    );
                                    debug_assert_eq!(v, Verdict::Forward(OUTSIDE));
                                    std::hint::black_box(v);
                                }
                            });
                        }
                    });
                }
                start.elapsed()
            })
        });
        for (k, w) in ws.iter().enumerate() {
            let drops = w.h.engine.stats().total_drops();
            assert_eq!(drops, 0, "shard {k} of {n} dropped frames");
        }
    }
    g.finish();
}

criterion_group!(benches, shards_in_parallel);
criterion_main!(benches);
