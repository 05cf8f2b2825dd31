//! Engine benchmarks (criterion): established-flow translation cost per packet, new
//! session rate, lookup cost at 1 k vs 1 M sessions, IPv6 filter forwarding.
//!
//! Every iteration processes a real frame: the pristine frame is copied into a work
//! buffer and then processed (`copy_*` benchmarks measure that copy alone, so the
//! engine's share is the difference). Engine time stays fixed for a run and `poll` is
//! never called, so nothing expires; each benchmark checks afterwards that no packet
//! was dropped and prints a warning if one was. The neighbours are REACHABLE
//! (`Harness::confirm_neighbours`), as on a live network: forwarding to a next hop
//! that answered its last probe is the case that matters.
//!
//! Run: `cargo bench -p natbox-core --bench engine`.

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use common::*;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use natbox_core::engine::{Engine, PortId, Verdict};
use std::hint::black_box;
use std::time::{Duration, Instant};
use support::*;

/// Warns if the engine dropped anything: the numbers would then not be what they claim.
fn check_clean(e: &Engine, what: &str) {
    let drops = e.stats().total_drops();
    if drops != 0 {
        let reasons: Vec<_> = e
            .stats()
            .drops
            .iter()
            .enumerate()
            .filter(|(_, &n)| n != 0)
            .collect();
        eprintln!("WARNING {what}: {drops} drops during the run: {reasons:?}");
    } else {
        eprintln!("{what}: 0 drops, {} sessions", e.nat().session_count());
    }
}

fn expect(v: Verdict, want: PortId, what: &str) {
    assert_eq!(v, Verdict::Forward(want), "{what}");
}

/// Sets up one flow and returns (outbound frame, inbound reply frame).
fn udp_pair(h: &mut Harness, sport: u16) -> (Vec<u8>, Vec<u8>) {
    let out = lan_udp(sa(HOST, sport), sa(REMOTE, 53));
    let o = h.frame(INSIDE, out.clone());
    expect(o.verdict, OUTSIDE, "udp setup out");
    let (ext, _) = endpoints4(o.ip());
    let back = wan_udp(sa(REMOTE, 53), ext);
    let i = h.frame(OUTSIDE, back.clone());
    expect(i.verdict, INSIDE, "udp setup in");
    (out, back)
}

fn udp_established(c: &mut Criterion) {
    let mut h = Harness::default();
    h.confirm_neighbours();
    let now = h.now;
    let (out, back) = udp_pair(&mut h, 40000);
    let (outs, backs): (Vec<_>, Vec<_>) = (0..1000).map(|i| udp_pair(&mut h, 20000 + i)).unzip();
    let outs = Frames::build(outs.len(), |i| outs[i].clone());
    let backs = Frames::build(backs.len(), |i| backs[i].clone());
    let mut work = vec![0u8; 2048];

    let mut g = c.benchmark_group("udp_established");
    g.throughput(Throughput::Elements(1));
    g.bench_function("copy_only_60B", |b| {
        b.iter(|| {
            work[..out.len()].copy_from_slice(black_box(&out));
            black_box(&mut work);
        })
    });
    g.bench_function("out_1_flow", |b| {
        b.iter(|| black_box(run(&mut h.engine, INSIDE, &mut work, &out, now)))
    });
    g.bench_function("in_1_flow", |b| {
        b.iter(|| black_box(run(&mut h.engine, OUTSIDE, &mut work, &back, now)))
    });
    let mut i = 0;
    g.bench_function("copy_only_1k_rr", |b| {
        b.iter(|| {
            i = if i + 1 == outs.count { 0 } else { i + 1 };
            let f = outs.get(i);
            work[..f.len()].copy_from_slice(black_box(f));
            black_box(&mut work);
        })
    });
    g.bench_function("out_1k_flows_rr", |b| {
        b.iter(|| {
            i = if i + 1 == outs.count { 0 } else { i + 1 };
            black_box(run(&mut h.engine, INSIDE, &mut work, outs.get(i), now))
        })
    });
    g.bench_function("in_1k_flows_rr", |b| {
        b.iter(|| {
            i = if i + 1 == backs.count { 0 } else { i + 1 };
            black_box(run(&mut h.engine, OUTSIDE, &mut work, backs.get(i), now))
        })
    });
    g.finish();
    check_clean(&h.engine, "udp_established");
}

/// `udp_established`'s one-flow cases with flow logs on (`[flow_log] ipfix`): the
/// per-packet cost of the accounting (issue #18 section 3).
fn udp_established_flowlog(c: &mut Criterion) {
    let mut config = config();
    config.flow_log.ipfix = Some("198.51.100.1:4739".parse().expect("addr"));
    let mut h = Harness::new(config);
    h.confirm_neighbours();
    let now = h.now;
    let (out, back) = udp_pair(&mut h, 40000);
    let mut work = vec![0u8; 2048];
    let mut g = c.benchmark_group("udp_established_flowlog");
    g.throughput(Throughput::Elements(1));
    g.bench_function("out_1_flow", |b| {
        b.iter(|| black_box(run(&mut h.engine, INSIDE, &mut work, &out, now)))
    });
    g.bench_function("in_1_flow", |b| {
        b.iter(|| black_box(run(&mut h.engine, OUTSIDE, &mut work, &back, now)))
    });
    g.finish();
    check_clean(&h.engine, "udp_established_flowlog");
}

fn tcp_established(c: &mut Criterion) {
    let mut h = Harness::default();
    h.confirm_neighbours();
    let now = h.now;
    let syn = h.from_lan(tcp4(sa(HOST, 40000), sa(REMOTE, 443), SYN, &[]));
    expect(syn.verdict, OUTSIDE, "SYN");
    let (ext, _) = endpoints4(syn.ip());
    let sa_ = h.from_wan(tcp4(sa(REMOTE, 443), ext, SYN | ACK, &[]));
    expect(sa_.verdict, INSIDE, "SYN-ACK");
    let out = eth(
        BOX_LAN_MAC,
        HOST_MAC,
        ETHERTYPE_IPV4,
        &tcp4(sa(HOST, 40000), sa(REMOTE, 443), ACK, &[]),
    );
    let back = eth(
        BOX_WAN_MAC,
        GW_MAC,
        ETHERTYPE_IPV4,
        &tcp4(sa(REMOTE, 443), ext, ACK, &[]),
    );
    expect(h.frame(INSIDE, out.clone()).verdict, OUTSIDE, "ACK out");
    expect(h.frame(OUTSIDE, back.clone()).verdict, INSIDE, "ACK in");
    let info: Vec<_> = h.engine.nat().sessions(0).collect();
    assert_eq!(info[0].state, "established", "{info:?}");
    let mut work = vec![0u8; 2048];

    let mut g = c.benchmark_group("tcp_established");
    g.throughput(Throughput::Elements(1));
    g.bench_function("copy_only_54B", |b| {
        b.iter(|| {
            work[..out.len()].copy_from_slice(black_box(&out));
            black_box(&mut work);
        })
    });
    g.bench_function("ack_out", |b| {
        b.iter(|| black_box(run(&mut h.engine, INSIDE, &mut work, &out, now)))
    });
    g.bench_function("ack_in", |b| {
        b.iter(|| black_box(run(&mut h.engine, OUTSIDE, &mut work, &back, now)))
    });
    g.finish();
    check_clean(&h.engine, "tcp_established");
}

/// Sessions per engine in the creation benchmark; the engine is rebuilt (untimed) when
/// it is full, so the rate is an average over fill levels 0 to `CREATE_CAP`.
const CREATE_CAP: usize = 1 << 20;
/// Flows created untimed after each rebuild (allocates the lazily built port tables).
const CREATE_WARM: usize = 4096;

fn session_creation(c: &mut Criterion) {
    creation(c, "udp_new_flow", big_config(CREATE_CAP as u32, 64));
    // The same with `[port_block] size = 64` (dynamic): blocks decide every new port.
    let mut blocks = big_config(CREATE_CAP as u32, 64);
    blocks.port_block.size = 64;
    creation(c, "udp_new_flow_blocks64", blocks);
}

/// `session_creation` under `config`, as benchmark `name`.
fn creation(c: &mut Criterion, name: &str, config: firmware_config::Config) {
    let pristine = Frames::build(CREATE_CAP, |k| {
        let (s, d) = flow(k, 1);
        lan_udp(s, d)
    });
    let mut frames = Frames {
        data: pristine.data.clone(),
        len: pristine.len,
        count: pristine.count,
    };
    let mut h = Harness::new(config.clone());
    h.confirm_neighbours();
    let mut next = CREATE_CAP; // forces a rebuild on first use
    let mut engines = 0u32;
    let mut problems = 0u64;

    let check = |h: &Harness, next: usize, problems: &mut u64| {
        let e = &h.engine;
        if e.stats().total_drops() != 0 || e.nat().session_count() != next {
            *problems += 1;
            eprintln!(
                "WARNING session_creation: {} drops ({:?}), {} sessions for {} flows",
                e.stats().total_drops(),
                e.stats()
                    .drops
                    .iter()
                    .enumerate()
                    .filter(|(_, &n)| n != 0)
                    .collect::<Vec<_>>(),
                e.nat().session_count(),
                next
            );
        }
    };

    let mut g = c.benchmark_group("session_creation");
    g.throughput(Throughput::Elements(1));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(6));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut left = iters as usize;
            let mut spent = Duration::ZERO;
            while left > 0 {
                if next == CREATE_CAP {
                    if engines > 0 {
                        check(&h, next, &mut problems);
                    }
                    h = Harness::new(config.clone());
                    h.confirm_neighbours();
                    frames.data.copy_from_slice(&pristine.data);
                    for i in 0..CREATE_WARM {
                        frames.process_in_place(i, &mut h.engine, INSIDE, h.now);
                    }
                    next = CREATE_WARM;
                    engines += 1;
                }
                let n = left.min(CREATE_CAP - next);
                let now = h.now;
                let t = Instant::now();
                for i in next..next + n {
                    black_box(frames.process_in_place(i, &mut h.engine, INSIDE, now));
                }
                spent += t.elapsed();
                next += n;
                left -= n;
            }
            spent
        })
    });
    g.finish();
    check(&h, next, &mut problems);
    eprintln!(
        "session_creation {name}: {engines} engines filled, last at {next} sessions, {problems} with drops or missing sessions"
    );
}

/// Established outbound UDP to a random one of `n` flows.
fn lookup_scaling(c: &mut Criterion) {
    const PICKS: usize = 1 << 20;
    let mut g = c.benchmark_group("lookup_random_flow");
    g.throughput(Throughput::Elements(1));
    let mut results = Vec::new();
    for n in [1usize << 10, 1 << 20] {
        let mut h = Harness::new(big_config(n as u32, 64));
        h.confirm_neighbours();
        fill(&mut h, n, 1);
        let flows = Frames::build(n, |k| {
            let (s, d) = flow(k, 1);
            lan_udp(s, d)
        });
        let mut rng = Rng(n as u64);
        let picks = Frames::pick(&flows, (0..PICKS).map(|_| rng.below(n)));
        drop(flows);
        let now = h.now;
        let mut work = vec![0u8; 2048];
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("copy_only", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) & (PICKS - 1);
                let f = picks.get(i);
                work[..f.len()].copy_from_slice(black_box(f));
                black_box(&mut work);
            })
        });
        g.bench_with_input(BenchmarkId::new("udp_out", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) & (PICKS - 1);
                black_box(run(&mut h.engine, INSIDE, &mut work, picks.get(i), now))
            })
        });
        // A plain timing of two passes over the picks, for a printed ratio.
        let t = Instant::now();
        for i in 0..2 * PICKS {
            black_box(run(
                &mut h.engine,
                INSIDE,
                &mut work,
                picks.get(i & (PICKS - 1)),
                now,
            ));
        }
        let ns = t.elapsed().as_nanos() as f64 / (2 * PICKS) as f64;
        eprintln!("lookup_random_flow/{n}: {ns:.1} ns/packet (plain loop, copy included)");
        results.push(ns);
        check_clean(&h.engine, &format!("lookup_random_flow/{n}"));
    }
    g.finish();
    eprintln!(
        "lookup_random_flow: 1M / 1k = {:.2} (plain loop)",
        results[1] / results[0]
    );
}

fn ipv6_established(c: &mut Criterion) {
    let mut h = Harness::default();
    h.confirm_neighbours();
    let now = h.now;
    let out = eth(
        BOX_LAN_MAC,
        HOST_MAC,
        ETHERTYPE_IPV6,
        &udp6(host6(), 40000, remote6(), 53, PAYLOAD),
    );
    let back = eth(
        BOX_WAN_MAC,
        GW_MAC,
        ETHERTYPE_IPV6,
        &udp6(remote6(), 53, host6(), 40000, PAYLOAD),
    );
    expect(h.frame(INSIDE, out.clone()).verdict, OUTSIDE, "udp6 out");
    expect(h.frame(OUTSIDE, back.clone()).verdict, INSIDE, "udp6 in");
    let mut work = vec![0u8; 2048];

    let mut g = c.benchmark_group("ipv6_established");
    g.throughput(Throughput::Elements(1));
    g.bench_function("copy_only_80B", |b| {
        b.iter(|| {
            work[..out.len()].copy_from_slice(black_box(&out));
            black_box(&mut work);
        })
    });
    g.bench_function("udp_out", |b| {
        b.iter(|| black_box(run(&mut h.engine, INSIDE, &mut work, &out, now)))
    });
    g.bench_function("udp_in", |b| {
        b.iter(|| black_box(run(&mut h.engine, OUTSIDE, &mut work, &back, now)))
    });
    g.finish();
    check_clean(&h.engine, "ipv6_established");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = udp_established, udp_established_flowlog, tcp_established, session_creation, lookup_scaling, ipv6_established
}
criterion_main!(benches);
