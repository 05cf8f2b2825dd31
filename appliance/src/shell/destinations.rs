//! `show destinations` and the `natbox_destination_*` metrics: the destination
//! prefixes (IPv4 /24, IPv6 /48) inside hosts open the most sessions to, merged over
//! every worker (`Snapshots::destinations`, `engine::destinations`), each with its TCP
//! connection success rate, and an `other` row for what the top-K does not hold.
//!
//! Columns: `sessions` is the space-saving estimate (at least the true number, at most
//! `±` more); `counted`, the attempts, `established`, `ok` and `failed` are exact since
//! the destination entered the top-K; `success` is ok / (ok + failed). An attempt is a
//! TCP session an inside SYN opened; `ok` means the remote's SYN-ACK within 3 s,
//! `failed` no SYN-ACK within 3 s, or a RST. `bytes out` and `bytes in` (IP bytes to
//! and from the destination, exact since it entered the top-K) are counted at each
//! flow record, so only while `[flow_log]` is on; off, they show `-`.
//!
//! Metrics, per `destination` label (the prefix, or `other`): the exact counters
//! `natbox_destination_sessions_total`, `_tcp_attempts_total`,
//! `_tcp_established_total`, `_tcp_ok_total`, `_tcp_failed_total`, and while flow logs
//! are on `_bytes_out_total` and `_bytes_in_total`. A destination's
//! series starts when it enters the top-K and ends when it leaves (its counts move
//! to `other`; one that comes back starts again from zero, which Prometheus reads as
//! a counter reset). `other` can step down when a destination enters the top-K.

use super::render::{pretty, table};
use super::NO_ANSWER;
use crate::control::shards::{Shards, Snapshots};
use crate::engine::destinations::{Entry, Report, Summary, Tally, TOP_K};
use serde_json::{json, Value};
use std::fmt::Write;

pub fn show(shards: &mut dyn Shards, json: bool) -> Result<String, String> {
    if shards.counters().is_none() {
        return Err(NO_ANSWER.into());
    }
    let r = shards.destinations();
    if json {
        let family = |s: &Summary| {
            let rows: Vec<Value> = s
                .entries
                .iter()
                .map(|e| {
                    json!({
                        "destination": e.dest.to_string(), "sessions": e.count,
                        "error": e.error, "counted": tally_json(&e.tally, r.bytes),
                    })
                })
                .collect();
            json!({
                "top": rows,
                "other": tally_json(&s.other(), r.bytes),
                "total": tally_json(&s.total, r.bytes),
            })
        };
        return Ok(pretty(json!({
            "k": TOP_K, "ipv4": family(&r.summary), "ipv6": family(&r.v6),
            "unjudged": r.unjudged, "bytes_counted": r.bytes,
        })));
    }
    let mut out = String::new();
    for (name, s) in [("IPv4 (/24)", &r.summary), ("IPv6 (/48)", &r.v6)] {
        let mut rows: Vec<Vec<String>> = s.entries.iter().map(|e| row(e, r.bytes)).collect();
        rows.push(tally_row(
            "other".into(),
            String::new(),
            &s.other(),
            r.bytes,
        ));
        rows.push(tally_row("total".into(), String::new(), &s.total, r.bytes));
        let _ = writeln!(out, "{name}: top {} of {TOP_K}", s.entries.len());
        out.push_str(&table(
            &[
                "destination",
                "sessions",
                "counted",
                "attempts",
                "established",
                "ok",
                "failed",
                "success",
                "bytes out",
                "bytes in",
            ],
            &rows,
        ));
        out.push('\n');
    }
    let _ = write!(
        out,
        "ok: SYN-ACK within 3 s; failed: none within 3 s, or a RST. Attempts not judged (queue full): {}",
        r.unjudged
    );
    if !r.bytes {
        out.push_str("\nBytes are counted only while [flow_log] is on.");
    }
    Ok(out)
}

fn row(e: &Entry, bytes: bool) -> Vec<String> {
    let est = if e.error > 0 {
        format!("{} ±{}", e.count, e.error)
    } else {
        e.count.to_string()
    };
    tally_row(e.dest.to_string(), est, &e.tally, bytes)
}

fn tally_row(name: String, estimate: String, t: &Tally, bytes: bool) -> Vec<String> {
    let judged = t.tcp_ok + t.tcp_failed;
    let success = if judged == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * t.tcp_ok as f64 / judged as f64)
    };
    let counted = |n: u64| if bytes { n.to_string() } else { "-".into() };
    vec![
        name,
        estimate,
        t.sessions.to_string(),
        t.tcp_attempts.to_string(),
        t.tcp_established.to_string(),
        t.tcp_ok.to_string(),
        t.tcp_failed.to_string(),
        success,
        counted(t.bytes_out),
        counted(t.bytes_in),
    ]
}

/// The counts of `t` by name, the bytes only if `bytes` are counted.
fn counted(t: &Tally, bytes: bool) -> impl Iterator<Item = (&'static str, u64)> {
    t.named()
        .into_iter()
        .filter(move |(name, _)| bytes || !name.starts_with("bytes_"))
}

fn tally_json(t: &Tally, bytes: bool) -> Value {
    let named: serde_json::Map<String, Value> = counted(t, bytes)
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Value::Object(named)
}

/// The `natbox_destination_*` series (module doc).
pub fn metrics(out: &mut String, r: &Report) {
    let rows: Vec<(String, Tally)> = [&r.summary, &r.v6]
        .into_iter()
        .flat_map(|s| s.entries.iter().map(|e| (e.dest.to_string(), e.tally)))
        .chain([("other".to_string(), {
            let mut other = r.summary.other();
            other.add(&r.v6.other());
            other
        })])
        .collect();
    for (i, (name, _)) in counted(&Tally::default(), r.bytes).enumerate() {
        super::metrics::labelled_counter(
            out,
            (&format!("destination_{name}_total"), None),
            "destination",
            rows.iter()
                .map(|(dest, t)| (dest, counted(t, r.bytes).nth(i).map_or(0, |(_, n)| n))),
        );
    }
}
