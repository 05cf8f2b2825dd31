//! The per-inside-host rate limits (`[host_limits]`) as the shell and the metrics show
//! them: under `show policy`, the limits in force, how many new sessions
//! (`host_session_rate`) and packets (`host_packet_rate`) they refused, the hosts
//! whose buckets are not full (`busy`), the busy hosts replaced for want of room
//! (`evictions`, `natbox_core::engine::policy::limit`) and the hosts refused most
//! (at most `limit::TOP`, summed over every worker: each host lives on one); in the
//! metrics `natbox_host_limit_busy_hosts` and `natbox_host_limit_evictions_total`
//! (the refusals are `natbox_drops_total{reason="host_session_rate"}` and
//! `{reason="host_packet_rate"}`). Nothing is shown while no limit is set.

use crate::control::shards::{Shards, Snapshots};
use crate::engine::policy::limit::LimitStats;
use crate::engine::stats::DropReason;
use firmware_config::host_limits::{Bucket, HostLimits};
use serde_json::{json, Value};
use std::fmt::Write;

/// What `show policy` adds: text, or the JSON value of its `host_limits` key.
pub fn show(
    limits: &HostLimits,
    stats: Option<&LimitStats>,
    shards: &mut dyn Shards,
) -> Option<(String, Value)> {
    if !limits.any() {
        return None;
    }
    let counters = shards.counters();
    let refused = |r: DropReason| counters.as_ref().map_or(0, |c| c.stats.drops_for(r));
    let (sessions, packets) = (
        refused(DropReason::HostSessionRate),
        refused(DropReason::HostPacketRate),
    );
    let stats = stats.cloned().unwrap_or_default();
    let describe = |b: Option<Bucket>| {
        b.map_or("no limit".to_string(), |b| {
            format!("{} a second, burst {}", b.rate, b.burst)
        })
    };
    let mut text = format!(
        "host limits: new sessions {} ({sessions} refused); packets {} ({packets} refused)\n\
         {} hosts busy, {} evictions",
        describe(limits.sessions()),
        describe(limits.packets()),
        stats.busy,
        stats.evictions
    );
    for (addr, n) in &stats.top {
        let _ = write!(text, "\n  {addr}: {n} refused");
    }
    let bucket = |b: Option<Bucket>| b.map(|b| json!({ "rate": b.rate, "burst": b.burst }));
    let value = json!({
        "new_sessions": bucket(limits.sessions()),
        "packets": bucket(limits.packets()),
        "sessions_refused": sessions,
        "packets_refused": packets,
        "busy_hosts": stats.busy,
        "evictions": stats.evictions,
        "top": stats.top.iter().map(|(a, n)| json!({ "host": a.to_string(), "refused": n })).collect::<Vec<_>>(),
    });
    Some((text, value))
}

/// The limiter's gauge and counter (module doc), while a limit is set.
pub fn metrics(out: &mut String, shards: &mut dyn Shards) {
    if !shards.config().is_some_and(|c| c.host_limits.any()) {
        return;
    }
    let stats = shards.policy_hits().limits.unwrap_or_default();
    let _ = writeln!(
        out,
        "# HELP natbox_host_limit_busy_hosts Inside hosts whose rate-limit buckets are not full.\n\
         # TYPE natbox_host_limit_busy_hosts gauge\nnatbox_host_limit_busy_hosts {}\n\
         # HELP natbox_host_limit_evictions_total Busy hosts' buckets replaced for want of room.\n\
         # TYPE natbox_host_limit_evictions_total counter\nnatbox_host_limit_evictions_total {}",
        stats.busy, stats.evictions
    );
}
