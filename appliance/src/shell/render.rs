//! The commands themselves: each reads the engine through its query methods and renders
//! an aligned table, or JSON with `--json`.

use super::grammar::Parsed;
use super::{metrics, Action, Facts, Reply};
use crate::engine::flow::track::Class;
use crate::engine::nat44::SessionInfo;
use crate::engine::stats::DropReason;
use crate::engine::{Engine, PortInfo};
use serde_json::{json, Value};
use std::net::Ipv4Addr;

/// Sessions shown when no `limit` is given.
const DEFAULT_LIMIT: usize = 50;
/// The largest `limit`: a command runs between two dataplane batches, so its output
/// is bounded while it is produced (about 100 bytes a row), not cut afterwards.
const MAX_LIMIT: usize = 1000;

pub fn run(p: &Parsed, engine: Option<&mut Engine>, facts: &Facts) -> Reply {
    let json = p.flag("--json");
    let out = match (p.command, engine) {
        (["show", "log"], _) => limit(p, 100).map(|n| crate::logging::recent(n).join("\n")),
        (["show", "version"], _) => Ok(version(facts, json)),
        (["show", "uptime"], _) => Ok(format!("up {}", duration(facts.now_ms / 1000))),
        (["log", "level"], _) => log_level(p.get("value").unwrap_or_default()),
        (["help"], _) => Ok(super::grammar::help(&[])),
        (["exit"], _) => return action(Action::Exit, "bye"),
        (["reboot"], _) => return action(Action::Reboot, "rebooting"),
        (["poweroff"], _) => return action(Action::Poweroff, "powering off"),
        (_, None) => Err("forwarding is off (no valid configuration): see `show log`".into()),
        (command, Some(engine)) => with_engine(p, command, engine, facts, json),
    };
    Reply::text(match out {
        Ok(text) => text,
        Err(e) => format!("error: {e}"),
    })
}

fn with_engine(
    p: &Parsed,
    command: &[&str],
    engine: &mut Engine,
    facts: &Facts,
    json: bool,
) -> Result<String, String> {
    match command {
        ["show", "interfaces"] => interfaces(engine, facts, json),
        ["show", "sessions"] => sessions(p, engine, facts, json),
        ["show", "states6"] => states6(p, engine, facts, json),
        ["show", "nat", "pool"] => pool(engine, json),
        ["show", "stats"] => stats(engine, json),
        ["show", "neighbors"] => neighbors(engine, facts, json),
        ["show", "routes"] => routes(engine, json),
        ["show", "config"] => Ok(if json {
            serde_json::to_string_pretty(engine.config()).unwrap_or_default()
        } else {
            firmware_config::to_toml(engine.config())
        }),
        ["show", "metrics"] => Ok(metrics::render(engine, facts)),
        ["clear", "sessions"] => clear_sessions(p, engine, facts),
        ["clear", "stats"] => {
            engine.clear_stats();
            Ok("counters cleared".into())
        }
        other => Err(format!("no handler for {}", other.join(" "))),
    }
}

fn action(action: Action, text: &str) -> Reply {
    Reply {
        text: text.into(),
        action,
    }
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
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

fn pretty(v: Value) -> String {
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn limit(p: &Parsed, default: usize) -> Result<usize, String> {
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

fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m {s}s")
    } else if h > 0 {
        format!("{h}h {m}m {s}s")
    } else {
        format!("{m}m {s}s")
    }
}

fn interfaces(engine: &Engine, facts: &Facts, json: bool) -> Result<String, String> {
    let rows: Vec<(PortInfo, Value)> = engine
        .ports()
        .map(|i| {
            let n = i.port.index();
            let c = engine.stats().ports[n];
            let mut v = json!({
                "port": i.roles.label(), "device": facts.devices.get(n).map_or("-", String::as_str),
                "link": facts.links.get(n).copied().unwrap_or("off"),
                "mac": i.mac.to_string(), "ipv4": i.ipv4.map(|n| n.to_string()), "ipv6": i.ipv6.map(|n| n.to_string()),
                "mtu": i.mtu, "rx_packets": c.rx_packets, "rx_bytes": c.rx_bytes, "tx_packets": c.tx_packets,
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

/// A session filter from `proto`, `inside`, `outside`, `remote` (address or address:port).
fn session_filter(p: &Parsed) -> Result<impl Fn(&SessionInfo) -> bool, String> {
    let proto = p.get("proto").map(str::to_string);
    if let Some(pr) = &proto {
        if !["tcp", "udp", "icmp"].contains(&pr.as_str()) {
            return Err(format!("proto `{pr}`: expected tcp, udp or icmp"));
        }
    }
    let addr = |key: &str| -> Result<Option<(Ipv4Addr, Option<u16>)>, String> {
        let Some(text) = p.get(key) else {
            return Ok(None);
        };
        if let Ok(sa) = text.parse::<std::net::SocketAddrV4>() {
            return Ok(Some((*sa.ip(), Some(sa.port()))));
        }
        text.parse::<Ipv4Addr>()
            .map(|a| Some((a, None)))
            .map_err(|_| format!("{key} `{text}`: expected an IPv4 address or address:port"))
    };
    let (inside, outside, remote) = (addr("inside")?, addr("outside")?, addr("remote")?);
    let matches = |want: &Option<(Ipv4Addr, Option<u16>)>, got: &std::net::SocketAddrV4| {
        want.is_none_or(|(a, port)| *got.ip() == a && port.is_none_or(|p| p == got.port()))
    };
    Ok(move |s: &SessionInfo| {
        proto.as_deref().is_none_or(|p| p == proto_name(s.proto))
            && matches(&inside, &s.inside)
            && matches(&outside, &s.outside)
            && matches(&remote, &s.remote)
    })
}

fn sessions(p: &Parsed, engine: &Engine, facts: &Facts, json: bool) -> Result<String, String> {
    let keep = session_filter(p)?;
    let n = limit(p, DEFAULT_LIMIT)?;
    let now = (facts.now_ms / 1000) as u32;
    let total = engine.nat().session_count();
    let shown: Vec<SessionInfo> = engine
        .nat()
        .sessions(now)
        .filter(|s| keep(s))
        .take(n)
        .collect();
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

fn states6(p: &Parsed, engine: &Engine, facts: &Facts, json: bool) -> Result<String, String> {
    let n = limit(p, DEFAULT_LIMIT)?;
    let now = (facts.now_ms / 1000) as u32;
    let shown: Vec<_> = engine.fw6().states(now).take(n).collect();
    if json {
        let list: Vec<Value> = shown
            .iter()
            .map(|s| {
                json!({"proto": proto_name(s.proto), "inside": format!("[{}]:{}", s.inside, s.in_port),
                       "remote": format!("[{}]:{}", s.remote, s.rem_port), "state": s.state, "idle": s.idle, "expires": s.expires})
            })
            .collect();
        return Ok(pretty(
            json!({"total": engine.fw6().state_count(), "states": list}),
        ));
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
    out.push_str(&format!(
        "\n{} shown of {} states",
        shown.len(),
        engine.fw6().state_count()
    ));
    Ok(out)
}

fn pool(engine: &Engine, json: bool) -> Result<String, String> {
    let nat = engine.nat();
    let per_addr: Vec<(Ipv4Addr, [u32; 3])> = nat
        .pool()
        .iter()
        .enumerate()
        .map(|(i, a)| (*a, nat.ports_in_use(i)))
        .collect();
    let top = nat.top_hosts(10);
    if json {
        return Ok(pretty(json!({
            "addresses": per_addr.iter().map(|(a, p)| json!({"address": a.to_string(), "tcp": p[0], "udp": p[1], "icmp": p[2]})).collect::<Vec<_>>(),
            "top_hosts": top.iter().map(|(a, s, p)| json!({"inside": a.to_string(), "sessions": s, "ports": p})).collect::<Vec<_>>(),
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
    Ok(format!(
        "{}\n\ntop inside hosts:\n{}",
        table(&["address", "tcp ports", "udp ports", "icmp ids"], &rows),
        table(&["inside", "sessions", "ports"], &hosts)
    ))
}

/// Every counter as (name, value), in a stable order.
pub fn counters(engine: &Engine) -> Vec<(String, u64)> {
    let s = engine.stats();
    let mut out = Vec::new();
    for port in engine.ports() {
        let c = s.ports[port.port.index()];
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
        ("nat_events_logged", engine.nat().events().logged),
        ("nat_events_dropped", engine.nat().events().dropped),
    ] {
        out.push((k.to_string(), v));
    }
    out.push(("sessions".into(), engine.nat().session_count() as u64));
    for class in Class::ALL {
        out.push((
            format!("sessions_{}", class.name()),
            u64::from(engine.nat().class_count(class)),
        ));
    }
    out.push(("ipv6_states".into(), engine.fw6().state_count() as u64));
    out
}

fn stats(engine: &Engine, json: bool) -> Result<String, String> {
    let counters = counters(engine);
    let s = engine.stats();
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

fn neighbors(engine: &Engine, facts: &Facts, json: bool) -> Result<String, String> {
    fn row<A: std::fmt::Display>(
        engine: &Engine,
        n: crate::engine::neigh::NeighbourInfo<A>,
    ) -> Vec<String> {
        vec![
            n.addr.to_string(),
            engine.port_info(n.port).roles.label().into(),
            n.mac.map_or("incomplete".to_string(), |m| m.to_string()),
            n.state.into(),
            format!("{}s", n.age_ms / 1000),
            n.queued.to_string(),
        ]
    }
    let mut rows: Vec<Vec<String>> = engine
        .neighbours4(facts.now_ms)
        .into_iter()
        .map(|n| row(engine, n))
        .chain(
            engine
                .neighbours6(facts.now_ms)
                .into_iter()
                .map(|n| row(engine, n)),
        )
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

fn routes(engine: &Engine, json: bool) -> Result<String, String> {
    let list = engine.routes().list();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                r.prefix.to_string(),
                engine.port_info(r.port).roles.label().into(),
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

fn clear_sessions(p: &Parsed, engine: &mut Engine, facts: &Facts) -> Result<String, String> {
    let keep = session_filter(p)?;
    let now = (facts.now_ms / 1000) as u32;
    let n = engine.nat_mut().clear(now, |s| keep(s));
    Ok(format!("{n} sessions cleared"))
}

fn log_level(level: &str) -> Result<String, String> {
    let filter: log::LevelFilter = level
        .parse()
        .map_err(|_| format!("level `{level}`: expected error, warn, info, debug or trace"))?;
    log::set_max_level(filter);
    Ok(format!("log level {filter}"))
}
