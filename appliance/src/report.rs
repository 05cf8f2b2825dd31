//! The counters summary host mode logs when it stops (until the admin shell lands,
//! this is how tests and operators read them): one line per port, translations,
//! sessions, and every drop reason that occurred.

use natbox::dataplane::Threads;
use natbox::engine::flow::track::Class;
use natbox::engine::stats::{DropReason, IoCounters};

/// Logs the counters of every worker, merged (each counter a sum), after one line per
/// worker when there are several.
pub fn log_counters(threads: &Threads) {
    threads.log_workers();
    let workers = threads.workers();
    let engine = threads.first().engine();
    let mut s = engine.stats().clone();
    for w in &workers[1..] {
        s.merge(w.engine().stats());
    }
    let sum = |f: &dyn Fn(&natbox::engine::Engine) -> u64| -> u64 {
        workers.iter().map(|w| f(w.engine())).sum()
    };
    for port in engine.ports() {
        let c = s.ports[port.port.index()];
        let io =
            workers
                .iter()
                .map(|w| w.io_counters(port.port))
                .fold(IoCounters::default(), |a, b| IoCounters {
                    socket_drops: a.socket_drops + b.socket_drops,
                    rx_errors: a.rx_errors + b.rx_errors,
                    tx_errors: a.tx_errors + b.tx_errors,
                    csum_completed: a.csum_completed + b.csum_completed,
                    gso_frames: a.gso_frames + b.gso_frames,
                    restarts: a.restarts + b.restarts,
                });
        log::info!(
            "counters {}: rx_packets={} rx_bytes={} tx_packets={} tx_bytes={} drops={} socket_drops={} rx_errors={} tx_errors={} csum_completed={} gso_frames={} restarts={}",
            port.roles.label(), c.rx_packets, c.rx_bytes, c.tx_packets, c.tx_bytes, c.drops, io.socket_drops, io.rx_errors, io.tx_errors, io.csum_completed, io.gso_frames, io.restarts
        );
    }
    log::info!(
        "counters nat: out tcp={} udp={} icmp={} in tcp={} udp={} icmp={} sessions={} created={} expired={} hairpinned={} icmp_errors={} fragments={} mss_clamped={}",
        s.nat_out.tcp, s.nat_out.udp, s.nat_out.icmp, s.nat_in.tcp, s.nat_in.udp, s.nat_in.icmp,
        sum(&|e| e.nat().session_count() as u64), s.sessions_created, s.sessions_expired, s.hairpinned,
        s.icmp_errors_translated, s.fragments_forwarded, s.mss_clamped
    );
    let classes: Vec<String> = Class::ALL
        .iter()
        .map(|&c| {
            format!(
                "{}={}",
                c.name(),
                sum(&|e| u64::from(e.nat().class_count(c)))
            )
        })
        .collect();
    log::info!("counters sessions: {}", classes.join(" "));
    log::info!(
        "counters ipv6: out tcp={} udp={} icmp={} in tcp={} udp={} icmp={} states={}",
        s.fw6_out.tcp,
        s.fw6_out.udp,
        s.fw6_out.icmp,
        s.fw6_in.tcp,
        s.fw6_in.udp,
        s.fw6_in.icmp,
        sum(&|e| e.fw6().state_count() as u64)
    );
    let drops: Vec<String> = DropReason::ALL
        .iter()
        .filter(|&&r| s.drops_for(r) > 0)
        .map(|&r| format!("{}={}", r.name(), s.drops_for(r)))
        .collect();
    log::info!(
        "counters drops: {}",
        if drops.is_empty() {
            "none".into()
        } else {
            drops.join(" ")
        }
    );
    log::info!(
        "counters icmp: sent={} rate_limited={} arp_requests={} ndp_solicits={}",
        s.icmp_sent,
        s.icmp_rate_limited,
        s.arp_requests,
        s.ndp_solicits
    );
}
