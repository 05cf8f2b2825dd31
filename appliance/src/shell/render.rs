//! The commands themselves: each reads the box through `Snapshots` (every shard asked,
//! the answers merged, `control::shards`) and renders an aligned table, or JSON with
//! `--json`; `clear` commands reach every shard. Filters are parsed here into plain
//! data (`SessionFilter`) that the shards apply.

use super::grammar::Parsed;
use super::{metrics, Action, Facts, Reply, NO_ANSWER};
use crate::control::shards::{Shards, Snapshots};
use crate::engine::control::{Counters, Endpoint, SessionFilter};
use crate::engine::flow::track::Class;
use crate::engine::neigh::NeighbourInfo;
use crate::engine::stats::DropReason;
use crate::engine::PortInfo;
use serde_json::{json, Value};
use std::net::Ipv4Addr;

/// Sessions shown when no `limit` is given.
const DEFAULT_LIMIT: usize = 50;
/// The largest `limit`: a command runs between two dataplane batches, so its output
/// is bounded while it is produced (about 100 bytes a row), not cut afterwards.
const MAX_LIMIT: usize = 1000;
/// Inside hosts `show nat pool` lists.
const TOP_HOSTS: usize = 10;

pub fn run(p: &Parsed, shards: Option<&mut dyn Shards>, facts: &Facts) -> Reply {
    let json = p.flag("--json");
    let out = match (p.command, shards) {
        (["show", "log"], _) => limit(p, 100).map(|n| crate::logging::recent(n).join("\n")),
        (["show", "version"], _) => Ok(version(facts, json)),
        (["show", "uptime"], _) => Ok(format!("up {}", duration(facts.now_ms / 1000))),
        (["log", "level"], _) => log_level(p.get("value").unwrap_or_default()),
        (["help"], _) => Ok(super::grammar::help(&[])),
        (["exit"], _) => return action(Action::Exit, "bye"),
        (["reboot"], _) => return action(Action::Reboot, "rebooting"),
        (["poweroff"], _) => return action(Action::Poweroff, "powering off"),
        (["show", "interfaces"], None) => Ok(interfaces_off(facts, json)),
        (["show", "metrics"], None) => Ok(metrics::render_off(facts)),
        (_, None) => Err("forwarding is off (no valid configuration): see `show log`".into()),
        (command, Some(shards)) => with_shards(p, command, shards, facts, json),
    };
    Reply::text(match out {
        Ok(text) => text,
        Err(e) => format!("error: {e}"),
    })
}

fn with_shards(
    p: &Parsed,
    command: &[&str],
    shards: &mut dyn Shards,
    facts: &Facts,
    json: bool,
) -> Result<String, String> {
    match command {
        ["show", "interfaces"] => interfaces(shards, facts, json),
        ["show", "workers"] => workers(shards, json),
        ["show", "dhcp"] => Ok(dhcp(facts, json)),
        ["show", "ipv6"] => Ok(super::ipv6::show(facts, json)),
        ["show", "sessions"] => sessions(p, shards, json),
        ["show", "states6"] => states6(p, shards, json),
        ["show", "policy"] => super::policy::show(p, shards, json),
        ["show", "destinations"] => super::destinations::show(shards, json),
        ["show", "forwards"] => super::forwards::show(shards, json),
        ["show", "nat", "pool"] => pool(shards, json),
        ["show", "stats"] => stats(shards, json),
        ["show", "neighbors"] => neighbors(shards, json),
        ["show", "routes"] => routes(shards, json),
        ["show", "config"] => show_config(shards, facts, json),
        ["show", "metrics"] => Ok(metrics::render(shards, facts)),
        ["clear", "sessions"] => clear_sessions(p, shards),
        ["clear", "stats"] => {
            shards.clear_stats();
            Ok("counters cleared".into())
        }
        other => Err(format!("no handler for {}", other.join(" "))),
    }
}

/// The configuration in force, as TOML under a comment line that names where the boot
/// configuration came from and the SHA-256 of the one in force (its first 16 hex
/// digits; `--json` gives all 64 beside `source` and `config`).
fn show_config(shards: &mut dyn Shards, facts: &Facts, json: bool) -> Result<String, String> {
    let config = shards.config().ok_or(NO_ANSWER)?;
    let digest = firmware_config::digest(&config);
    let source = facts.source.as_deref().unwrap_or("unknown");
    Ok(if json {
        pretty(json!({ "source": source, "sha256": digest, "config": config }))
    } else {
        format!(
            "# source: {source}, sha256 {}\n{}",
            digest.get(..16).unwrap_or(&digest),
            firmware_config::to_toml(&config)
        )
    })
}

fn action(action: Action, text: &str) -> Reply {
    Reply {
        text: text.into(),
        action,
    }
}

/// Left-aligned columns, two spaces apart.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

pub(super) fn pretty(v: Value) -> String {
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

pub(super) fn limit(p: &Parsed, default: usize) -> Result<usize, String> {
    let Some(n) = p.get("limit") else {
        return Ok(default);
    };
    match n.parse::<usize>() {
        Ok(n) if n <= MAX_LIMIT => Ok(n),
        Ok(_) => Err(format!(
            "limit {n}: at most {MAX_LIMIT}; narrow the list with the filters (proto, inside, outside, remote) instead"
        )),
        Err(_) => Err(format!("limit `{n}`: expected a number")),
    }
}

fn proto_name(proto: u8) -> &'static str {
    match proto {
        6 => "tcp",
        17 => "udp",
        1 | 58 => "icmp",
        _ => "other",
    }
}

pub(super) fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m {s}s")
    } else if h > 0 {
        format!("{h}h {m}m {s}s")
    } else {
        format!("{m}m {s}s")
    }
}

/// What `show interfaces` says of the DHCP client of the port with role label `role`
/// (`None` for a static port): its state, and while it holds no lease for how long
/// and whether a server answered meanwhile ("selecting, no answer for 0m 45s").
fn dhcp_status(facts: &Facts, role: &str) -> Option<String> {
    let (_, s) = facts.dhcp4.iter().find(|(r, _)| *r == role)?;
    Some(match s.unbound_ms {
        None => s.state.name().to_string(),
        Some(ms) => format!(
            "{}, {} for {}",
            s.state.name(),
            if s.answered { "no lease" } else { "no answer" },
            duration(ms / 1000)
        ),
    })
}

/// One row per DHCPv4 client: its state, the server, the lease and its times, the
/// options in force and the messages counted.
fn dhcp(facts: &Facts, json: bool) -> String {
    let secs = |ms: Option<u64>| ms.map(|ms| ms / 1000);
    let rows: Vec<Value> = facts
        .dhcp4
        .iter()
        .map(|(port, s)| {
            let lease = s.lease.as_ref();
            let ignored: serde_json::Map<String, Value> = natbox_core::dhcp4::Ignored::ALL
                .iter()
                .map(|&r| (r.name().to_string(), json!(s.counters.ignored(r))))
                .collect();
            json!({
                "port": port, "state": s.state.name(),
                "server": s.server.map(|a| a.to_string()),
                "address": lease.map(|l| l.address.to_string()),
                "router": lease.and_then(|l| l.gateway()).map(|a| a.to_string()),
                "routes": lease.map(|l| l.routes.iter().map(|r| format!("{} via {}", r.dest, r.gateway)).collect::<Vec<_>>()),
                "mtu": lease.and_then(|l| l.mtu),
                "dns": lease.map(|l| l.dns.iter().map(ToString::to_string).collect::<Vec<_>>()),
                "lease_left_s": secs(s.lease_left_ms), "t1_left_s": secs(s.t1_left_ms),
                "t2_left_s": secs(s.t2_left_ms),
                "sent": s.counters.sent, "received": s.counters.received,
                "naks": s.counters.naks, "declines": s.counters.declines, "ignored": ignored,
                "renewals": s.counters.renewals, "rebinds": s.counters.rebinds,
                "without_lease_s": secs(s.unbound_ms), "answered": s.answered,
                "last_refusal": s.last_refusal.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    if json {
        return pretty(Value::Array(rows));
    }
    if rows.is_empty() {
        return "no port takes its address by DHCP".into();
    }
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let left = |v: &Value| v.as_u64().map_or_else(|| "-".to_string(), duration);
    let cols = [
        "port",
        "state",
        "address",
        "server",
        "router",
        "lease left",
        "T1 left",
        "T2 left",
        "mtu",
        "renewals",
        "rebinds",
    ];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|v| {
            vec![
                text(&v["port"]),
                text(&v["state"]),
                text(&v["address"]),
                text(&v["server"]),
                text(&v["router"]),
                left(&v["lease_left_s"]),
                left(&v["t1_left_s"]),
                left(&v["t2_left_s"]),
                text(&v["mtu"]),
                text(&v["renewals"]),
                text(&v["rebinds"]),
            ]
        })
        .collect();
    table(&cols, &body)
}

/// One row per worker (engine shard): what it received and sent on every port, its
/// sessions and IPv6 states, and the frames it handed to and took from the others.
fn workers(shards: &mut dyn Shards, json: bool) -> Result<String, String> {
    let rows: Vec<Value> = shards
        .shard_counters()
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let s = &c.stats;
            json!({
                "worker": k,
                "rx_packets": s.ports.iter().map(|p| p.rx_packets).sum::<u64>(),
                "tx_packets": s.ports.iter().map(|p| p.tx_packets).sum::<u64>(),
                "sessions": c.sessions, "states6": c.states6,
                "handed_off": s.handed_off, "handed_in": s.handed_in,
            })
        })
        .collect();
    if rows.is_empty() {
        return Err(NO_ANSWER.into());
    }
    if json {
        return Ok(pretty(Value::Array(rows)));
    }
    let cols = [
        "worker",
        "rx_packets",
        "tx_packets",
        "sessions",
        "states6",
        "handed_off",
        "handed_in",
    ];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|v| cols.iter().map(|c| v[c].to_string()).collect())
        .collect();
    Ok(table(&cols, &body))
}

fn interfaces(shards: &mut dyn Shards, facts: &Facts, json: bool) -> Result<String, String> {
    let counters = shards.counters().ok_or(NO_ANSWER)?;
    let rows: Vec<(PortInfo, Value)> = shards
        .ports()
        .into_iter()
        .map(|i| {
            let n = i.port.index();
            let c = counters.stats.ports.get(n).copied().unwrap_or_default();
            let mut v = json!({
                "port": i.roles.label(), "device": facts.devices.get(n).map_or("-", String::as_str),
                "link": facts.links.get(n).copied().unwrap_or("off"),
                "mac": i.mac.to_string(), "ipv4": i.ipv4.map(|n| n.to_string()), "ipv6": i.ipv6.map(|n| n.to_string()),
                "mtu": i.mtu, "dhcp": dhcp_status(facts, i.roles.label()), "rx_packets": c.rx_packets, "rx_bytes": c.rx_bytes, "tx_packets": c.tx_packets,
                "tx_bytes": c.tx_bytes, "drops": c.drops,
            });
            for (name, value) in facts.io.get(n).copied().unwrap_or_default().named() {
                v[name] = json!(value);
            }
            (i, v)
        })
        .collect();
    if json {
        return Ok(pretty(Value::Array(
            rows.into_iter().map(|(_, v)| v).collect(),
        )));
    }
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let cols = [
        "port",
        "device",
        "link",
        "mac",
        "ipv4",
        "ipv6",
        "mtu",
        "dhcp",
        "rx_packets",
        "rx_bytes",
        "tx_packets",
        "tx_bytes",
        "drops",
        "socket_drops",
        "gso_frames",
    ];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(_, v)| cols.iter().map(|c| s(&v[c])).collect())
        .collect();
    Ok(table(&cols, &body))
}

/// The configured ports while forwarding is off: the interface each names and whether
/// it is there (`missing`, or `waiting` for another port; `dataplane::start`).
fn interfaces_off(facts: &Facts, json: bool) -> String {
    let rows: Vec<Vec<String>> = facts
        .roles
        .iter()
        .enumerate()
        .map(|(n, role)| {
            vec![
                role.to_string(),
                facts.devices.get(n).map_or("-", String::as_str).to_string(),
                facts.links.get(n).copied().unwrap_or("off").to_string(),
            ]
        })
        .collect();
    if json {
        let list: Vec<Value> = rows
            .iter()
            .map(|r| json!({"port": r[0], "device": r[1], "link": r[2]}))
            .collect();
        return pretty(Value::Array(list));
    }
    if rows.is_empty() {
        return "forwarding is off (no valid configuration): see `show log`".into();
    }
    format!(
        "{}
forwarding is off until every port is there (tried again up to every 30 s): see `show log`",
        table(&["port", "device", "link"], &rows)
    )
}

/// A session filter from `proto`, `inside`, `outside`, `remote` (address or address:port).
fn session_filter(p: &Parsed) -> Result<SessionFilter, String> {
    let proto = match p.get("proto") {
        None => None,
        Some("tcp") => Some(6),
        Some("udp") => Some(17),
        Some("icmp") => Some(1),
        Some(pr) => return Err(format!("proto `{pr}`: expected tcp, udp or icmp")),
    };
    let addr = |key: &str| -> Result<Option<Endpoint>, String> {
        let Some(text) = p.get(key) else {
            return Ok(None);
        };
        if let Ok(sa) = text.parse::<std::net::SocketAddrV4>() {
            return Ok(Some(Endpoint {
                addr: *sa.ip(),
                port: Some(sa.port()),
            }));
        }
        text.parse::<Ipv4Addr>()
            .map(|addr| Some(Endpoint { addr, port: None }))
            .map_err(|_| format!("{key} `{text}`: expected an IPv4 address or address:port"))
    };
    Ok(SessionFilter {
        proto,
        inside: addr("inside")?,
        outside: addr("outside")?,
        remote: addr("remote")?,
    })
}

fn sessions(p: &Parsed, shards: &mut dyn Shards, json: bool) -> Result<String, String> {
    let filter = session_filter(p)?;
    let n = limit(p, DEFAULT_LIMIT)?;
    let found = shards.sessions(&filter, n);
    let (shown, total) = (found.rows, found.total);
    if json {
        let list: Vec<Value> = shown
            .iter()
            .map(|s| {
                json!({"proto": proto_name(s.proto), "inside": s.inside.to_string(), "outside": s.outside.to_string(),
                       "remote": s.remote.to_string(), "state": s.state, "idle": s.idle, "expires": s.expires})
            })
            .collect();
        return Ok(pretty(json!({"total": total, "sessions": list})));
    }
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|s| {
            vec![
                proto_name(s.proto).into(),
                s.inside.to_string(),
                s.outside.to_string(),
                s.remote.to_string(),
                s.state.into(),
                format!("{}s", s.idle),
                format!("{}s", s.expires),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "proto", "inside", "outside", "remote", "state", "idle", "expires",
        ],
        &rows,
    );
    out.push_str(&format!("\n{} shown of {total} sessions", shown.len()));
    Ok(out)
}

fn states6(p: &Parsed, shards: &mut dyn Shards, json: bool) -> Result<String, String> {
    let n = limit(p, DEFAULT_LIMIT)?;
    let found = shards.states6(n);
    let (shown, total) = (found.rows, found.total);
    if json {
        let list: Vec<Value> = shown
            .iter()
            .map(|s| {
                json!({"proto": proto_name(s.proto), "inside": format!("[{}]:{}", s.inside, s.in_port),
                       "remote": format!("[{}]:{}", s.remote, s.rem_port), "state": s.state, "idle": s.idle, "expires": s.expires})
            })
            .collect();
        return Ok(pretty(json!({"total": total, "states": list})));
    }
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|s| {
            vec![
                proto_name(s.proto).into(),
                format!("[{}]:{}", s.inside, s.in_port),
                format!("[{}]:{}", s.remote, s.rem_port),
                s.state.into(),
                format!("{}s", s.idle),
                format!("{}s", s.expires),
            ]
        })
        .collect();
    let mut out = table(
        &["proto", "inside", "remote", "state", "idle", "expires"],
        &rows,
    );
    out.push_str(&format!("\n{} shown of {total} states", shown.len()));
    Ok(out)
}

fn pool(shards: &mut dyn Shards, json: bool) -> Result<String, String> {
    let usage = shards.pool(TOP_HOSTS);
    let (per_addr, top) = (&usage.addresses, &usage.top_hosts);
    if json {
        return Ok(pretty(json!({
            "addresses": per_addr.iter().map(|(a, p)| json!({"address": a.to_string(), "tcp": p[0], "udp": p[1], "icmp": p[2]})).collect::<Vec<_>>(),
            "top_hosts": top.iter().map(|(a, s, p)| json!({"inside": a.to_string(), "sessions": s, "ports": p})).collect::<Vec<_>>(),
            "port_blocks": usage.blocks.rows.iter().map(|b| json!({"inside": b.inside.to_string(), "proto": proto_name(b.proto), "outside": b.outside.to_string(), "first": b.first, "last": b.last, "mapped": b.live})).collect::<Vec<_>>(),
        })));
    }
    let rows: Vec<Vec<String>> = per_addr
        .iter()
        .map(|(a, p)| {
            vec![
                a.to_string(),
                p[0].to_string(),
                p[1].to_string(),
                p[2].to_string(),
            ]
        })
        .collect();
    let hosts: Vec<Vec<String>> = top
        .iter()
        .map(|(a, s, p)| vec![a.to_string(), s.to_string(), p.to_string()])
        .collect();
    let mut out = format!(
        "{}\n\ntop inside hosts:\n{}",
        table(&["address", "tcp ports", "udp ports", "icmp ids"], &rows),
        table(&["inside", "sessions", "ports"], &hosts)
    );
    if !usage.blocks.rows.is_empty() {
        out.push_str(&format!(
            "\n\nport blocks:\n{}",
            port_blocks(&usage.blocks.rows)
        ));
    }
    Ok(out)
}

/// The `show nat pool` table of port blocks (`[port_block]`): one row per block.
fn port_blocks(rows: &[crate::engine::nat44::BlockInfo]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|b| {
            vec![
                b.inside.to_string(),
                proto_name(b.proto).into(),
                b.outside.to_string(),
                format!("{}-{}", b.first, b.last),
                b.live.to_string(),
            ]
        })
        .collect();
    table(&["inside", "proto", "outside", "ports", "mapped"], &rows)
}

/// Every counter as (name, value), in a stable order.
pub fn counters(ports: &[PortInfo], counters: &Counters) -> Vec<(String, u64)> {
    let s = &counters.stats;
    let mut out = Vec::new();
    for port in ports {
        let c = s.ports.get(port.port.index()).copied().unwrap_or_default();
        for (k, v) in [
            ("rx_packets", c.rx_packets),
            ("rx_bytes", c.rx_bytes),
            ("tx_packets", c.tx_packets),
            ("tx_bytes", c.tx_bytes),
            ("drops", c.drops),
        ] {
            out.push((format!("{}_{k}", port.roles.key()), v));
        }
    }
    for (dir, p) in [
        ("nat_out", s.nat_out),
        ("nat_in", s.nat_in),
        ("ipv6_out", s.fw6_out),
        ("ipv6_in", s.fw6_in),
    ] {
        for (k, v) in [
            ("tcp", p.tcp),
            ("udp", p.udp),
            ("icmp", p.icmp),
            ("other", p.other),
        ] {
            out.push((format!("{dir}_{k}"), v));
        }
    }
    for (k, v) in [
        ("sessions_created", s.sessions_created),
        ("sessions_expired", s.sessions_expired),
        ("ipv6_states_created", s.states6_created),
        ("ipv6_states_expired", s.states6_expired),
        ("hairpinned", s.hairpinned),
        ("icmp_errors_translated", s.icmp_errors_translated),
        ("fragments_forwarded", s.fragments_forwarded),
        ("mss_clamped", s.mss_clamped),
        ("icmp_sent", s.icmp_sent),
        ("icmp_rate_limited", s.icmp_rate_limited),
        ("arp_requests", s.arp_requests),
        ("ndp_solicits", s.ndp_solicits),
        ("neighbours_evicted", s.neighbours_evicted),
        ("local_delivered", s.local_delivered),
        ("local_sent", s.local_sent),
        ("nat_events_logged", counters.events_logged),
        ("nat_events_dropped", counters.events_dropped),
        ("flow_records_logged", counters.flows.logged),
        ("flow_records_exported", counters.flows.exported),
        ("flow_records_dropped", counters.flows.dropped),
        ("flow_templates_sent", counters.flows.templates),
        ("flow_export_errors", counters.flows.errors),
    ] {
        out.push((k.to_string(), v));
    }
    out.push(("sessions".into(), counters.sessions));
    for (class, n) in Class::ALL.iter().zip(counters.session_classes) {
        out.push((format!("sessions_{}", class.name()), n));
    }
    out.push(("ipv6_states".into(), counters.states6));
    out
}

fn stats(shards: &mut dyn Shards, json: bool) -> Result<String, String> {
    let all = shards.counters().ok_or(NO_ANSWER)?;
    let counters = counters(&shards.ports(), &all);
    let s = &all.stats;
    if json {
        let drops: serde_json::Map<String, Value> = DropReason::ALL
            .iter()
            .map(|r| (r.name().to_string(), json!(s.drops_for(*r))))
            .collect();
        let c: serde_json::Map<String, Value> =
            counters.into_iter().map(|(k, v)| (k, json!(v))).collect();
        return Ok(pretty(json!({"counters": c, "drops": drops})));
    }
    let rows: Vec<Vec<String>> = counters
        .into_iter()
        .map(|(k, v)| vec![k, v.to_string()])
        .collect();
    let drops: Vec<Vec<String>> = DropReason::ALL
        .iter()
        .map(|r| {
            vec![
                r.name().to_string(),
                s.drops_for(*r).to_string(),
                r.help().to_string(),
            ]
        })
        .collect();
    Ok(format!(
        "{}\n\n{}",
        table(&["counter", "value"], &rows),
        table(&["drop reason", "count", "meaning"], &drops)
    ))
}

/// The role label of port `port` ("-" for a port the shards do not list).
fn port_label(ports: &[PortInfo], port: crate::engine::PortId) -> &'static str {
    ports
        .iter()
        .find(|p| p.port == port)
        .map_or("-", |p| p.roles.label())
}

fn neighbors(shards: &mut dyn Shards, json: bool) -> Result<String, String> {
    fn row<A: std::fmt::Display>(ports: &[PortInfo], n: NeighbourInfo<A>) -> Vec<String> {
        vec![
            n.addr.to_string(),
            port_label(ports, n.port).into(),
            n.mac.map_or("incomplete".to_string(), |m| m.to_string()),
            n.state.into(),
            format!("{}s", n.age_ms / 1000),
            n.queued.to_string(),
        ]
    }
    let ports = shards.ports();
    let all = shards.neighbours();
    let mut rows: Vec<Vec<String>> = (all.v4.into_iter().map(|n| row(&ports, n)))
        .chain(all.v6.into_iter().map(|n| row(&ports, n)))
        .collect();
    rows.sort();
    if json {
        let list: Vec<Value> = rows
            .iter()
            .map(|r| json!({"address": r[0], "port": r[1], "mac": r[2], "state": r[3], "age": r[4], "queued": r[5]}))
            .collect();
        return Ok(pretty(Value::Array(list)));
    }
    Ok(table(
        &["address", "port", "mac", "state", "age", "queued"],
        &rows,
    ))
}

fn routes(shards: &mut dyn Shards, json: bool) -> Result<String, String> {
    let ports = shards.ports();
    let list = shards.routes();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                r.prefix.to_string(),
                port_label(&ports, r.port).into(),
                r.via.map_or("connected".into(), |v| v.to_string()),
            ]
        })
        .collect();
    if json {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| json!({"prefix": r[0], "port": r[1], "via": r[2]}))
            .collect();
        return Ok(pretty(Value::Array(v)));
    }
    Ok(table(&["prefix", "port", "via"], &rows))
}

fn version(facts: &Facts, json: bool) -> String {
    let v = env!("CARGO_PKG_VERSION");
    if json {
        return pretty(json!({"version": v, "uptime_seconds": facts.now_ms / 1000}));
    }
    format!("natbox {v}, up {}", duration(facts.now_ms / 1000))
}

fn clear_sessions(p: &Parsed, shards: &mut dyn Shards) -> Result<String, String> {
    let n = shards.clear_sessions(&session_filter(p)?);
    Ok(format!("{n} sessions cleared"))
}

fn log_level(level: &str) -> Result<String, String> {
    let filter: log::LevelFilter = level
        .parse()
        .map_err(|_| format!("level `{level}`: expected error, warn, info, debug or trace"))?;
    log::set_max_level(filter);
    Ok(format!("log level {filter}"))
}
