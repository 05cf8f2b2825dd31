//! The control plane's way to the engine shards: it sends each a `Request` and
//! collects their `Answer`s (`natbox_core::engine::control`), and never touches an
//! engine itself.
//!
//! `Inline` is one shard the caller owns (tests, tools, and the dataplane's own tick);
//! the workers' handle implements the same trait across threads.

use crate::engine::control::{Answer, Request};
use crate::engine::Engine;

/// Every engine shard of the box, as the control plane reaches them.
pub trait Shards {
    /// How many shards there are.
    fn count(&self) -> usize;
    /// Runs `request` on every shard and returns their answers, in shard order.
    fn ask(&mut self, request: &Request) -> Vec<Answer>;
}

/// One engine, answered in place, at engine time `now_ms`.
#[derive(Debug)]
pub struct Inline<'a> {
    pub engine: &'a mut Engine,
    pub now_ms: u64,
}

impl Shards for Inline<'_> {
    fn count(&self) -> usize {
        1
    }

    fn ask(&mut self, request: &Request) -> Vec<Answer> {
        vec![self.engine.answer(request, self.now_ms)]
    }
}
