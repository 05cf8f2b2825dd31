//! Memory per NAT44 session, measured with a counting global allocator.
//!
//! A session covers both directions: one slab record (tuple, external port, state,
//! timer, LRU and mapping links) found through two index slots (outbound and inbound
//! key). Reported:
//! 1. what `Engine::new` preallocates per unit of `nat.max_sessions` (live bytes at
//!    1 M minus live bytes at 1, divided by the difference), with every large
//!    allocation listed and named;
//! 2. everything the NAT holds with 1 M live sessions, including the port tables that
//!    are allocated on first use of a pool address, divided by 1 M, for two traffic
//!    shapes (one session per mapping; four remotes per mapping);
//! 3. what the packet path allocated while creating those sessions.
//!
//! Run: `cargo bench -p natbox-core --bench memory`.
// A global allocator needs `unsafe`; it is confined to this benchmark binary.
#![allow(unsafe_code)]

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use support::{Harness, INSIDE, OUTSIDE};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
/// While set, allocations of at least `BIG` bytes are logged (sizes only, in a fixed
/// array: the allocator must not allocate).
static LOG: AtomicBool = AtomicBool::new(false);
const BIG: usize = 64 * 1024;
static BIG_LOG: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];
static BIG_N: AtomicUsize = AtomicUsize::new(0);

fn note(size: usize) {
    LIVE.fetch_add(size, Relaxed);
    ALLOCS.fetch_add(1, Relaxed);
    ALLOCATED.fetch_add(size, Relaxed);
    if size >= BIG && LOG.load(Relaxed) {
        let i = BIG_N.fetch_add(1, Relaxed);
        if let Some(slot) = BIG_LOG.get(i) {
            slot.store(size, Relaxed);
        }
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// atomics and nothing here allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Relaxed);
        note(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 1 << 20;

/// Live bytes of a harness built with `max_sessions`, and the large allocations made.
fn engine_bytes(max_sessions: u32, pool: u8) -> (Harness, usize, Vec<usize>) {
    let config = big_config(max_sessions, pool);
    BIG_N.store(0, Relaxed);
    LOG.store(true, Relaxed);
    let before = LIVE.load(Relaxed);
    let h = Harness::new(config);
    let bytes = LIVE.load(Relaxed) - before;
    LOG.store(false, Relaxed);
    let n = BIG_N.load(Relaxed).min(BIG_LOG.len());
    let big = BIG_LOG[..n].iter().map(|a| a.load(Relaxed)).collect();
    (h, bytes, big)
}

fn mib(b: usize) -> String {
    format!("{:.2} MiB", b as f64 / (1 << 20) as f64)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` compatibility
    }
    println!("== memory per NAT44 session (counting allocator) ==");
    let (small, base, _) = engine_bytes(1, 1);
    drop(small);
    let (h, full, big) = engine_bytes(N as u32, 1);
    drop(h);
    println!(
        "Engine::new live bytes: max_sessions=1: {base} B; max_sessions={N}: {full} B ({})",
        mib(full)
    );
    let per = (full - base) as f64 / (N - 1) as f64;
    println!("preallocated per unit of max_sessions: {per:.2} B");
    println!("large allocations made by Engine::new(max_sessions={N}):");
    let slab_entry = full_slab_entry();
    for b in &big {
        let what = if *b == N * slab_entry {
            format!("NAT session slab: {N} x {slab_entry} B")
        } else if *b == (4 * N).next_power_of_two() * 8 {
            format!(
                "NAT index: {} slots x 8 B (4 per session)",
                (4 * N).next_power_of_two()
            )
        } else if *b == N.min(1 << 20) * 8 {
            "NAT port-hold FIFO: min(max_sessions, 2^20) x 8 B".to_string()
        } else if *b == N.min(1 << 16) * 16 {
            "NAT host slab: min(max_sessions, 2^16) x 16 B".to_string()
        } else {
            "fixed (IPv6 filter sized by ipv6.max_states, frame pool, neighbour caches)".to_string()
        };
        println!("  {:>12} B  {what}", b);
    }

    for (label, pool, remotes) in [
        ("one session per mapping, pool of 32", 32u8, 1usize),
        ("four remotes per mapping, pool of 8", 8, 4),
    ] {
        let (mut h, built, _) = engine_bytes(N as u32, pool);
        let (allocs0, allocated0, live0) = (
            ALLOCS.load(Relaxed),
            ALLOCATED.load(Relaxed),
            LIVE.load(Relaxed),
        );
        // `fill` builds its frames first; count only what processing allocates.
        let frames = Frames::build(N, |k| {
            let (s, d) = flow(k, remotes);
            lan_udp(s, d)
        });
        let (allocs1, allocated1, live1) = (
            ALLOCS.load(Relaxed),
            ALLOCATED.load(Relaxed),
            LIVE.load(Relaxed),
        );
        let mut frames = frames;
        let now = h.now;
        for i in 0..N {
            let v = frames.process_in_place(i, &mut h.engine, INSIDE, now);
            assert_eq!(
                v,
                natbox_core::engine::Verdict::Forward(OUTSIDE),
                "flow {i}"
            );
        }
        let (allocs2, allocated2, live2) = (
            ALLOCS.load(Relaxed),
            ALLOCATED.load(Relaxed),
            LIVE.load(Relaxed),
        );
        drop(frames);
        let _ = (allocs0, allocated0, live0);
        let sessions = h.engine.nat().session_count();
        assert_eq!(sessions, N);
        assert_eq!(h.engine.stats().total_drops(), 0);
        let path_bytes = live2 - live1;
        let tables = path_bytes / (65536 * 12);
        let nat_total = built - base + path_bytes;
        println!("-- {N} UDP sessions, {label} --");
        println!(
            "packet path allocated {} B in {} allocations ({} port tables of 786 432 B); live +{} B",
            allocated2 - allocated1,
            allocs2 - allocs1,
            tables,
            path_bytes
        );
        println!(
            "NAT bytes (engine at max_sessions={N} minus engine at 1, plus port tables): {} = {:.1} B/session (Nat44::memory() says {})",
            mib(nat_total),
            nat_total as f64 / sessions as f64,
            mib(h.engine.nat().memory())
        );
    }
}

/// The size of one `slab` entry holding a session, as `Nat44::memory` assumes it.
fn full_slab_entry() -> usize {
    // Session is 52 bytes; slab's Entry<T> puts a 4-byte tag before it, word-aligned.
    56
}
