//! `show forwards`: the port forwards in force (`[[forward]]`), in configuration
//! order, with the sessions each opened and the packets its allow list refused,
//! summed over every worker (`Snapshots::forward_hits`). At most
//! `firmware_config::forward::MAX_FORWARDS` rows, so no limit is needed.

use super::render::{pretty, table};
use super::NO_ANSWER;
use crate::control::shards::{Shards, Snapshots};
use serde_json::{json, Value};

pub fn show(shards: &mut dyn Shards, json: bool) -> Result<String, String> {
    let config = shards.config().ok_or(NO_ANSWER)?;
    let hits = shards.forward_hits();
    let at = |i: usize| hits.get(i).copied().unwrap_or_default();
    let forwards = &config.forward;
    if json {
        let rows: Vec<Value> = (forwards.iter().enumerate())
            .map(|(i, f)| {
                json!({
                    "forward": i, "protocol": f.protocol.name(),
                    "address": f.address.map(|a| a.to_string()),
                    "port": f.port.to_string(), "to": f.to.to_string(),
                    "to_port": f.inside_port(),
                    "allow": f.allow.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                    "comment": f.comment, "hits": at(i).hits, "refused": at(i).refused,
                })
            })
            .collect();
        return Ok(pretty(json!({ "forwards": rows })));
    }
    if forwards.is_empty() {
        return Ok("no port forwards ([[forward]] in the configuration)".into());
    }
    let rows: Vec<Vec<String>> = (forwards.iter().enumerate())
        .map(|(i, f)| {
            let allow: Vec<String> = f.allow.iter().map(|n| n.to_string()).collect();
            vec![
                i.to_string(),
                f.describe(),
                if allow.is_empty() {
                    "any".into()
                } else {
                    allow.join(",")
                },
                at(i).hits.to_string(),
                at(i).refused.to_string(),
                f.comment.clone().unwrap_or_default(),
            ]
        })
        .collect();
    Ok(format!(
        "{}\n(* = the first pool address)",
        table(
            &[
                "forward",
                "public -> inside",
                "allow",
                "hits",
                "refused",
                "comment"
            ],
            &rows
        )
    ))
}
