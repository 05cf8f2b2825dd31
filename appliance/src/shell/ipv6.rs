//! `show ipv6` and the `natbox_ipv6_*` and `natbox_dhcp6_*` metrics: what the ports
//! that learn their IPv6 on their link hold (`services::ipv6`): the default router and
//! its lifetime left, the address, where it came from, its state (SLAAC, RFC 4862:
//! tentative, preferred, deprecated, duplicate; DHCPv6: the client's state) and
//! lifetimes left, the DHCPv6 server and T1/T2 left, and the messages counted.
//!
//! Metrics, per port label: `natbox_ipv6_router_learned` (1 while a default router is
//! held), `natbox_ipv6_router_seconds_left` (absent without a router or for an
//! infinite lifetime), `natbox_ipv6_address_learned` (1 while a learned address is in
//! use), `natbox_ipv6_address_valid_seconds_left`, and the counters
//! `natbox_ipv6_router_adverts_received_total`,
//! `natbox_ipv6_router_adverts_ignored_total`, `natbox_ipv6_router_solicits_sent_total`;
//! with `ipv6 = "dhcp"`, `natbox_dhcp6_bound` (1 while a lease is held) and
//! `natbox_dhcp6_messages_sent_total` / `_received_total`.

use super::render::{duration, pretty, table};
use super::Facts;
use crate::services::dhcp6::hex;
use crate::services::ipv6::View;
use natbox_core::autoconf::Ignored;
use serde_json::{json, Value};
use std::fmt::Write;

/// One port's row, as JSON (the text table is cut from it).
fn row(port: &str, v: &View) -> Value {
    let a = &v.auto;
    let secs = |ms: Option<u64>| ms.map(|ms| ms / 1000);
    let ignored: serde_json::Map<String, Value> = Ignored::ALL
        .iter()
        .map(|&r| (r.name().to_string(), json!(a.counters.ignored(r))))
        .collect();
    let dhcp6 = v.dhcp6.as_ref().map(|d| {
        let ignored: serde_json::Map<String, Value> = natbox_core::dhcp6::Ignored::ALL
            .iter()
            .map(|&r| (r.name().to_string(), json!(d.counters.ignored(r))))
            .collect();
        json!({
            "state": d.state.name(),
            "address": d.lease.as_ref().map(|l| l.address.to_string()),
            "server": d.lease.as_ref().map(|l| hex(&l.server_id)),
            "dns": d.lease.as_ref().map(|l| l.dns.iter().map(ToString::to_string).collect::<Vec<_>>()),
            "valid_left_s": secs(d.valid_left_ms), "preferred_left_s": secs(d.preferred_left_ms),
            "t1_left_s": secs(d.t1_left_ms), "t2_left_s": secs(d.t2_left_ms),
            "sent": d.counters.sent, "received": d.counters.received,
            "declines": d.counters.declines, "ignored": ignored,
            "last_refusal": d.last_refusal.map(|r| r.to_string()),
        })
    });
    let (state, valid, preferred) = match &v.dhcp6 {
        Some(d) => (
            Some(d.state.name()),
            secs(d.valid_left_ms),
            secs(d.preferred_left_ms),
        ),
        None => (
            a.address_state(),
            secs(a.valid_left_ms),
            secs(a.preferred_left_ms),
        ),
    };
    json!({
        "port": port,
        "router_from_ra": a.mode.router,
        "address_from": v.address_from,
        "router": v.lease.and_then(|l| l.router).map(|r| r.to_string()),
        "routers": a.routers.iter().map(|(r, left)| json!({
            "address": r.to_string(), "lifetime_left_s": secs(*left)
        })).collect::<Vec<_>>(),
        "address": v.lease.and_then(|l| l.address).map(|n| n.to_string()),
        "autoconf_address": a.address.map(|s| s.net.to_string()),
        "address_state": state,
        "valid_left_s": valid,
        "preferred_left_s": preferred,
        "dhcp6": dhcp6,
        "managed_flag": a.managed,
        "router_adverts_received": a.counters.received,
        "router_adverts_ignored": ignored,
        "router_solicits_sent": a.counters.solicits,
        "routers_refused": a.counters.routers_refused,
        "prefixes_refused": a.counters.prefixes_refused,
        "duplicates": a.counters.duplicates,
        "last_refusal": a.last_refusal.map(|r| r.to_string()),
    })
}

/// `show ipv6` (module doc).
pub fn show(facts: &Facts, json: bool) -> String {
    let rows: Vec<Value> = facts.ipv6.iter().map(|(p, v)| row(p, v)).collect();
    if json {
        return pretty(Value::Array(rows));
    }
    if rows.is_empty() {
        return "no port learns IPv6 on its link (every outside port has gateway6 and a \
                static ipv6, or IPv6 is off)"
            .into();
    }
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let left = |v: &Value| v.as_u64().map_or_else(|| "-".to_string(), duration);
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|v| {
            let router_left = v["routers"]
                .get(0)
                .map_or_else(|| "-".to_string(), |r| left(&r["lifetime_left_s"]));
            vec![
                text(&v["port"]),
                text(&v["router"]),
                router_left,
                text(&v["address_from"]),
                match &v["autoconf_address"] {
                    Value::Null => text(&v["address"]),
                    formed => text(formed),
                },
                text(&v["address_state"]),
                left(&v["valid_left_s"]),
                left(&v["preferred_left_s"]),
                text(&v["router_adverts_received"]),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "port",
            "router",
            "router left",
            "address from",
            "address",
            "state",
            "valid left",
            "preferred left",
            "RAs",
        ],
        &body,
    );
    for v in &rows {
        if let Value::String(why) = &v["last_refusal"] {
            let _ = write!(out, "\n{}: last prefix refused: {why}", text(&v["port"]));
        }
    }
    out
}

/// A series' name and how a port's value is read.
type Series<T> = (&'static str, fn(&View) -> T);

/// The `natbox_ipv6_*` series (module doc).
pub fn metrics(out: &mut String, facts: &Facts) {
    if facts.ipv6.is_empty() {
        return;
    }
    let gauges: [Series<Option<u64>>; 4] = [
        ("router_learned", |v| {
            Some(u64::from(v.lease.and_then(|l| l.router).is_some()))
        }),
        ("router_seconds_left", |v| {
            v.auto
                .routers
                .first()
                .and_then(|(_, left)| *left)
                .map(|ms| ms / 1000)
        }),
        ("address_learned", |v| {
            Some(u64::from(
                v.address_from != "static" && v.lease.and_then(|l| l.address).is_some(),
            ))
        }),
        ("address_valid_seconds_left", |v| {
            let left = v
                .dhcp6
                .as_ref()
                .map_or(v.auto.valid_left_ms, |d| d.valid_left_ms);
            left.map(|ms| ms / 1000)
        }),
    ];
    for (name, value) in gauges {
        let _ = writeln!(out, "# TYPE natbox_ipv6_{name} gauge");
        for (port, v) in &facts.ipv6 {
            if let Some(n) = value(v) {
                let _ = writeln!(out, "natbox_ipv6_{name}{{port=\"{port}\"}} {n}");
            }
        }
    }
    let counters: [Series<u64>; 3] = [
        ("router_adverts_received_total", |v| {
            v.auto.counters.received
        }),
        ("router_adverts_ignored_total", |v| {
            v.auto.counters.ignored.iter().sum()
        }),
        ("router_solicits_sent_total", |v| v.auto.counters.solicits),
    ];
    for (name, value) in counters {
        let _ = writeln!(out, "# TYPE natbox_ipv6_{name} counter");
        for (port, v) in &facts.ipv6 {
            let _ = writeln!(out, "natbox_ipv6_{name}{{port=\"{port}\"}} {}", value(v));
        }
    }
    let dhcp6: Vec<_> = facts
        .ipv6
        .iter()
        .filter_map(|(port, v)| Some((port, v.dhcp6.as_ref()?)))
        .collect();
    if dhcp6.is_empty() {
        return;
    }
    let _ = writeln!(out, "# TYPE natbox_dhcp6_bound gauge");
    for (port, d) in &dhcp6 {
        let bound = u8::from(d.lease.is_some());
        let _ = writeln!(out, "natbox_dhcp6_bound{{port=\"{port}\"}} {bound}");
    }
    for (name, pick) in [("sent", 0), ("received", 1)] {
        let _ = writeln!(out, "# TYPE natbox_dhcp6_messages_{name}_total counter");
        for (port, d) in &dhcp6 {
            let n = [d.counters.sent, d.counters.received][pick];
            let _ = writeln!(
                out,
                "natbox_dhcp6_messages_{name}_total{{port=\"{port}\"}} {n}"
            );
        }
    }
}
