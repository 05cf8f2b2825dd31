//! The metrics an operator moving from AWS NAT Gateway has dashboards and alarms for,
//! one series per CloudWatch metric (docs/metrics.md has the mapping table), and the
//! table saturation gauges operators alert on.
//!
//! AWS names, natbox series (a CloudWatch Sum is a `rate()`/`increase()` of the
//! counter here, a Max the gauge):
//! - ActiveConnectionCount: `natbox_active_connections` (gauge), NAT44 TCP sessions
//!   in the established class (open, or half-closed).
//! - ConnectionAttemptCount / ConnectionEstablishedCount:
//!   `natbox_connection_attempts_total` (TCP sessions an inside SYN opened, and
//!   reopened) / `natbox_connections_established_total` (those the remote's SYN-ACK
//!   answered), from `engine::destinations`.
//! - Bytes/PacketsInFromSource, Bytes/PacketsOutToSource: the inside ports' received
//!   / sent counters; Bytes/PacketsInFromDestination, Bytes/PacketsOutToDestination:
//!   the outside ports'. These are the per-port counters (`natbox_<role>_rx_bytes_total`
//!   ...), summed by role; a one-armed port has both roles and counts on both sides.
//! - PacketsDropCount: `natbox_packets_drop_total`, every drop reason summed.
//! - ErrorPortAllocation: `natbox_error_port_allocation_total`, the drops
//!   `ports_exhausted` and `host_port_limit`.
//! - IdleTimeoutCount: `natbox_idle_timeouts_total`, sessions that expired while
//!   established.
//!
//! Saturation: `natbox_sessions_max` and `natbox_ipv6_states_max` (gauges, the
//! configured limits, beside `natbox_sessions` and `natbox_ipv6_states`),
//! `natbox_pool_ports_capacity{address,proto}` beside `natbox_pool_ports_in_use`
//! (ports a pool address has per protocol: the configured range; 65536 ICMP
//! identifiers), and the `TOP_HOSTS` inside hosts with the most sessions,
//! `natbox_host_sessions{host}` and `natbox_host_ports{host}`.

use crate::control::shards::{Shards, Snapshots};
use crate::engine::control::Counters;
use crate::engine::destinations::Report;
use crate::engine::flow::track::Class;
use crate::engine::stats::DropReason;
use crate::engine::PortInfo;
use std::fmt::Write;

/// Inside hosts exposed by `natbox_host_*`.
pub const TOP_HOSTS: usize = 10;

/// The AWS-named series (module doc).
pub fn aws(out: &mut String, c: &Counters, ports: &[PortInfo], r: &Report) {
    let active = c.session_classes[Class::TcpEstablished as usize];
    let _ = writeln!(
        out,
        "# TYPE natbox_active_connections gauge\nnatbox_active_connections {active}"
    );
    let side = |outside: bool| {
        let mut sum = crate::engine::stats::PortCounters::default();
        for p in ports.iter().filter(|p| {
            if outside {
                p.roles.outside
            } else {
                p.roles.inside
            }
        }) {
            if let Some(pc) = c.stats.ports.get(p.port.index()) {
                sum.add(pc);
            }
        }
        sum
    };
    let (src, dst) = (side(false), side(true));
    let s = &c.stats;
    let total = &r.summary.total;
    for (name, v) in [
        ("connection_attempts", total.tcp_attempts),
        ("connections_established", total.tcp_established),
        ("bytes_out_to_destination", dst.tx_bytes),
        ("bytes_out_to_source", src.tx_bytes),
        ("bytes_in_from_destination", dst.rx_bytes),
        ("bytes_in_from_source", src.rx_bytes),
        ("packets_out_to_destination", dst.tx_packets),
        ("packets_out_to_source", src.tx_packets),
        ("packets_in_from_destination", dst.rx_packets),
        ("packets_in_from_source", src.rx_packets),
        ("packets_drop", s.total_drops()),
        (
            "error_port_allocation",
            s.drops_for(DropReason::PortsExhausted) + s.drops_for(DropReason::HostPortLimit),
        ),
        ("idle_timeouts", r.idle_timeouts),
    ] {
        let _ = writeln!(
            out,
            "# TYPE natbox_{name}_total counter\nnatbox_{name}_total {v}"
        );
    }
}

/// The saturation gauges (module doc).
pub fn saturation(out: &mut String, shards: &mut dyn Shards) {
    let Some(config) = shards.config() else {
        return;
    };
    let _ = writeln!(
        out,
        "# TYPE natbox_sessions_max gauge\nnatbox_sessions_max {}\n# TYPE natbox_ipv6_states_max gauge\nnatbox_ipv6_states_max {}",
        config.nat.max_sessions, config.ipv6.max_states
    );
    let n = &config.nat;
    let range = u32::from(n.port_max) + 1 - u32::from(n.port_min.clamp(1, n.port_max));
    let pool = shards.pool(TOP_HOSTS);
    let _ = writeln!(out, "# TYPE natbox_pool_ports_capacity gauge");
    for (addr, _) in &pool.addresses {
        for (proto, cap) in [("tcp", range), ("udp", range), ("icmp", 65536)] {
            let _ = writeln!(
                out,
                "natbox_pool_ports_capacity{{address=\"{addr}\",proto=\"{proto}\"}} {cap}"
            );
        }
    }
    let _ = writeln!(out, "# TYPE natbox_host_sessions gauge");
    for (host, sessions, _) in &pool.top_hosts {
        let _ = writeln!(out, "natbox_host_sessions{{host=\"{host}\"}} {sessions}");
    }
    let _ = writeln!(out, "# TYPE natbox_host_ports gauge");
    for (host, _, ports) in &pool.top_hosts {
        let _ = writeln!(out, "natbox_host_ports{{host=\"{host}\"}} {ports}");
    }
}
