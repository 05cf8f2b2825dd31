//! Counters in the Prometheus text exposition format (version 0.0.4): every counter as
//! `natbox_<name>_total` (every gauge as `natbox_<name>`), drops as `natbox_drops_total{reason="..."}`, ports in use per pool
//! address as `natbox_pool_ports_in_use{address,proto}`, the I/O layer's counters as
//! `natbox_io_<name>_total{port="..."}` (socket drops, GSO super-frames...), where
//! the configuration came from with the SHA-256 of the one in force as
//! `natbox_config_info{source="...",sha256="..."} 1`, and per DHCPv4 client whether
//! it holds a lease (`natbox_dhcp4_bound{port}`, 1 in BOUND, RENEWING and REBINDING),
//! the seconds its lease has left (`natbox_dhcp4_lease_seconds_left{port}`, absent
//! without a finite lease), the seconds it has been without a lease
//! (`natbox_dhcp4_seconds_without_lease{port}`, 0 while it holds one), the messages
//! it sent and received and the renewals and rebinds that extended its lease; per
//! port whether its link is up (`natbox_port_up{port}`: 0 for a link down, gone, or
//! while forwarding is off a port whose interface is missing, when `show metrics`
//! gives this gauge alone, `render_off`); and per port that learns its IPv6 on its
//! link the `natbox_ipv6_*` series of `shell::ipv6`; and while an egress policy is
//! set the new sessions each rule decided (`natbox_policy_hits_total{rule="N"}`,
//! `{rule="default"}`); with `[port_block]`, the blocks owned per pool address
//! (`natbox_pool_blocks_in_use{address}`) and the blocks refused, over a host's quota
//! or with none free (`natbox_nat_block_alloc_failures_total`); while port forwards
//! are configured, per forward the sessions it opened
//! (`natbox_forward_hits_total{forward="N"}`) and the packets its allow list refused
//! (`natbox_forward_refused_total{forward="N"}`); the AWS NAT Gateway-named series and
//! the saturation gauges (`shell::gateway`); the per-destination SLIs
//! (`shell::destinations`); while a per-host rate limit is set, `shell::host_limits`'s
//! gauge and counter.
//!
//! The box's values, whatever its number of shards: counters and gauges summed over
//! the shards, ports in use summed per address (`control::shards::Snapshots`).

use super::render::counters;
use super::Facts;
use crate::control::shards::{Shards, Snapshots};
use crate::engine::stats::DropReason;
use crate::engine::stats::IoCounters;
use std::fmt::Write;

/// The exposition, or nothing if no shard answered.
pub fn render(shards: &mut dyn Shards, facts: &Facts) -> String {
    let mut out = String::new();
    let Some(all) = shards.counters() else {
        return out;
    };
    let ports = shards.ports();
    for (name, value) in counters(&ports, &all) {
        let gauge = name == "sessions"
            || name == "ipv6_states"
            || name.starts_with("sessions_")
                && !name.ends_with("_created")
                && !name.ends_with("_expired");
        // Counters end in `_total`, as Prometheus asks (a rename: README, Metrics).
        let (kind, suffix) = if gauge {
            ("gauge", "")
        } else {
            ("counter", "_total")
        };
        let _ = writeln!(
            out,
            "# TYPE natbox_{name}{suffix} {kind}\nnatbox_{name}{suffix} {value}"
        );
    }
    labelled_counter(
        &mut out,
        ("drops_total", Some("Frames not forwarded, by reason.")),
        "reason",
        DropReason::ALL
            .iter()
            .map(|r| (r.name(), all.stats.drops_for(*r))),
    );
    let io: Vec<_> = ports
        .iter()
        .map(|p| {
            let counters = facts.io.get(p.port.index()).copied();
            (p.roles.label(), counters.unwrap_or_default().named())
        })
        .collect();
    for (i, (name, _)) in IoCounters::default().named().iter().enumerate() {
        labelled_counter(
            &mut out,
            (&format!("io_{name}_total"), None),
            "port",
            io.iter().map(|(label, named)| (*label, named[i].1)),
        );
    }
    let usage = shards.pool(0);
    if shards
        .config()
        .is_some_and(|c| c.port_block.enabled().is_some())
    {
        port_blocks(&mut out, &usage.blocks);
    }
    let _ = writeln!(out, "# TYPE natbox_pool_ports_in_use gauge");
    for (addr, in_use) in usage.addresses {
        for (proto, n) in ["tcp", "udp", "icmp"].iter().zip(in_use) {
            let _ = writeln!(
                out,
                "natbox_pool_ports_in_use{{address=\"{addr}\",proto=\"{proto}\"}} {n}"
            );
        }
    }
    if let Some(config) = shards.config() {
        let source = facts.source.as_deref().unwrap_or("unknown");
        let _ = writeln!(
            out,
            "# TYPE natbox_config_info gauge\nnatbox_config_info{{source=\"{}\",sha256=\"{}\"}} 1",
            label_value(source),
            firmware_config::digest(&config)
        );
    }
    ports_up(&mut out, facts);
    dhcp4(&mut out, facts);
    super::ipv6::metrics(&mut out, facts);
    policy(&mut out, shards);
    let report = shards.destinations();
    super::gateway::aws(&mut out, &all, &ports, &report);
    super::gateway::saturation(&mut out, shards);
    super::destinations::metrics(&mut out, &report);
    forwards(&mut out, shards);
    super::host_limits::metrics(&mut out, shards);
    out
}

/// `natbox_pool_blocks_in_use{address}` and `natbox_nat_block_alloc_failures_total`.
fn port_blocks(out: &mut String, blocks: &crate::engine::nat44::BlockUsage) {
    let _ = writeln!(out, "# TYPE natbox_pool_blocks_in_use gauge");
    for (addr, n) in &blocks.per_address {
        let _ = writeln!(out, "natbox_pool_blocks_in_use{{address=\"{addr}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# TYPE natbox_nat_block_alloc_failures_total counter\nnatbox_nat_block_alloc_failures_total {}",
        blocks.failures
    );
}

/// What there is to expose while forwarding is off: the ports' gauges.
pub fn render_off(facts: &Facts) -> String {
    let mut out = String::new();
    ports_up(&mut out, facts);
    out
}

/// `natbox_port_up{port}` (module doc).
fn ports_up(out: &mut String, facts: &Facts) {
    if facts.roles.is_empty() {
        return;
    }
    let _ = writeln!(out, "# TYPE natbox_port_up gauge");
    for (n, role) in facts.roles.iter().enumerate() {
        let up = u8::from(facts.links.get(n) == Some(&"up"));
        let _ = writeln!(out, "natbox_port_up{{port=\"{role}\"}} {up}");
    }
}

/// `natbox_policy_hits_total{rule="N"}` per rule of the egress policy and
/// `{rule="default"}`, while a policy is set (a rule, or a default other than allow).
fn policy(out: &mut String, shards: &mut dyn Shards) {
    let active = shards
        .config()
        .is_some_and(|c| c.policy != firmware_config::policy::Policy::default());
    if !active {
        return;
    }
    let hits = shards.policy_hits();
    let rules = hits
        .rules
        .iter()
        .enumerate()
        .map(|(i, n)| (i.to_string(), *n));
    labelled_counter(
        out,
        (
            "policy_hits_total",
            Some("New sessions decided, by egress policy rule."),
        ),
        "rule",
        rules.chain([("default".to_string(), hits.default)]),
    );
}

/// `natbox_forward_hits_total{forward="N"}` and `natbox_forward_refused_total` per
/// port forward, while any is configured.
fn forwards(out: &mut String, shards: &mut dyn Shards) {
    let count = shards.config().map_or(0, |c| c.forward.len());
    if count == 0 {
        return;
    }
    let hits = shards.forward_hits();
    let at = |i: usize| hits.get(i).copied().unwrap_or_default();
    labelled_counter(
        out,
        (
            "forward_hits_total",
            Some("Sessions opened, by port forward."),
        ),
        "forward",
        (0..count).map(|i| (i, at(i).hits)),
    );
    labelled_counter(
        out,
        (
            "forward_refused_total",
            Some("Packets from sources a port forward does not allow."),
        ),
        "forward",
        (0..count).map(|i| (i, at(i).refused)),
    );
}

/// One counter family with one label: `# HELP` (when given) and `# TYPE` lines for
/// `natbox_{name}`, then `natbox_{name}{label="value"} n` per row.
pub(super) fn labelled_counter<V: std::fmt::Display>(
    out: &mut String,
    (name, help): (&str, Option<&str>),
    label: &str,
    rows: impl IntoIterator<Item = (V, u64)>,
) {
    if let Some(help) = help {
        let _ = writeln!(out, "# HELP natbox_{name} {help}");
    }
    let _ = writeln!(out, "# TYPE natbox_{name} counter");
    for (value, n) in rows {
        let _ = writeln!(out, "natbox_{name}{{{label}=\"{value}\"}} {n}");
    }
}

/// The DHCPv4 clients' gauges and counters (module doc).
fn dhcp4(out: &mut String, facts: &Facts) {
    if facts.dhcp4.is_empty() {
        return;
    }
    let _ = writeln!(out, "# TYPE natbox_dhcp4_bound gauge");
    for (port, s) in &facts.dhcp4 {
        let bound = u8::from(s.lease.is_some());
        let _ = writeln!(out, "natbox_dhcp4_bound{{port=\"{port}\"}} {bound}");
    }
    let _ = writeln!(out, "# TYPE natbox_dhcp4_lease_seconds_left gauge");
    for (port, s) in &facts.dhcp4 {
        if let Some(ms) = s.lease_left_ms {
            let _ = writeln!(
                out,
                "natbox_dhcp4_lease_seconds_left{{port=\"{port}\"}} {}",
                ms / 1000
            );
        }
    }
    let _ = writeln!(out, "# TYPE natbox_dhcp4_seconds_without_lease gauge");
    for (port, s) in &facts.dhcp4 {
        let secs = s.unbound_ms.unwrap_or(0) / 1000;
        let _ = writeln!(
            out,
            "natbox_dhcp4_seconds_without_lease{{port=\"{port}\"}} {secs}"
        );
    }
    let counts = |s: &natbox_core::dhcp4::Snapshot| {
        let c = &s.counters;
        [c.sent, c.received, c.renewals, c.rebinds]
    };
    let names = ["messages_sent", "messages_received", "renewals", "rebinds"];
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(out, "# TYPE natbox_dhcp4_{name}_total counter");
        for (port, s) in &facts.dhcp4 {
            let n = counts(s)[i];
            let _ = writeln!(out, "natbox_dhcp4_{name}_total{{port=\"{port}\"}} {n}");
        }
    }
}

/// A label value escaped as the exposition format asks: backslash, quote, line feed.
fn label_value(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_escape_backslash_quote_and_line_feed() {
        assert_eq!(super::label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
