//! `show policy`: the egress policy in force (`[policy]`), rule by rule in order with
//! the new sessions each decided, summed over every worker (`Snapshots::policy_hits`),
//! then the default and how many sessions it decided. Bounded like every listing:
//! `limit N` rules (default 50, at most 1000), the total said. Then the per-host
//! rate limits, while set (`shell::host_limits`).

use super::grammar::Parsed;
use super::render::{limit, pretty, table};
use super::NO_ANSWER;
use crate::control::shards::{Shards, Snapshots};
use serde_json::{json, Value};

/// Rules shown when no `limit` is given.
const DEFAULT_LIMIT: usize = 50;

pub fn show(p: &Parsed, shards: &mut dyn Shards, json: bool) -> Result<String, String> {
    let config = shards.config().ok_or(NO_ANSWER)?;
    let n = limit(p, DEFAULT_LIMIT)?;
    let hits = shards.policy_hits();
    let limits = super::host_limits::show(&config.host_limits, hits.limits.as_ref(), shards);
    let policy = &config.policy;
    let hit = |i: usize| hits.rules.get(i).copied().unwrap_or(0);
    if json {
        let rules: Vec<Value> = (policy.rule.iter().enumerate().take(n))
            .map(|(i, r)| {
                json!({
                    "rule": i, "action": r.action.name(),
                    "source": r.source.map(|s| s.to_string()),
                    "destination": r.destination.map(|d| d.to_string()),
                    "protocol": r.protocol.name(), "port": r.port.map(|p| p.to_string()),
                    "icmp_type": r.icmp_type, "comment": r.comment, "hits": hit(i),
                })
            })
            .collect();
        return Ok(pretty(json!({
            "default": { "action": policy.default.name(), "hits": hits.default },
            "total": policy.rule.len(),
            "rules": rules,
            "memory_bytes": hits.memory,
            "host_limits": limits.map(|l| l.1),
        })));
    }
    let rows: Vec<Vec<String>> = (policy.rule.iter().enumerate().take(n))
        .map(|(i, r)| {
            vec![
                i.to_string(),
                r.action.name().into(),
                r.describe(),
                hit(i).to_string(),
                r.comment.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = String::new();
    if !rows.is_empty() {
        out = table(&["rule", "action", "match", "hits", "comment"], &rows);
        out.push('\n');
    }
    out.push_str(&format!(
        "default {}: {} hits\n{} shown of {} rules; compiled: {} KiB over all workers",
        policy.default.name(),
        hits.default,
        rows.len(),
        policy.rule.len(),
        hits.memory.div_ceil(1024)
    ));
    if let Some((text, _)) = limits {
        out.push('\n');
        out.push_str(&text);
    }
    Ok(out)
}
