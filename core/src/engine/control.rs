//! What the control plane asks of one engine shard, and what the shard answers: plain
//! data both ways, so a request can cross to the thread that owns the shard and the
//! answer come back, and the shell and the services never hold an `&Engine`.
//!
//! Contract: `Engine::answer` runs one `Request` between two batches of the shard's
//! packets and returns its `Answer`; the caller asks every shard and merges (counters
//! add up, rows are concatenated, a change is applied to each). Requests are bounded
//! in the work they do (row limits), since a shard forwards nothing while it answers.

use super::stats::Stats;
use super::{Engine, Reconfigured};
use firmware_config::Config;

/// A question or a change for one shard.
#[derive(Debug, Clone)]
pub enum Request {
    /// The shard's counters.
    Stats,
    /// Apply a validated configuration (`Engine::reconfigure`).
    Reconfigure(Box<Config>),
}

/// A shard's answer to a `Request`, variant for variant.
#[derive(Debug)]
pub enum Answer {
    Stats(Box<Stats>),
    /// What the change did to the shard's tables and sessions.
    Reconfigured(Reconfigured),
}

impl Engine {
    /// Answers one control-plane request at engine time `now_ms`.
    pub fn answer(&mut self, request: &Request, _now_ms: u64) -> Answer {
        match request {
            Request::Stats => Answer::Stats(Box::new(self.stats().clone())),
            Request::Reconfigure(config) => Answer::Reconfigured(self.reconfigure(config)),
        }
    }
}
