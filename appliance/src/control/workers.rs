//! `Shards` across threads: the control thread's handle on the engine shards that
//! worker threads own. Each worker has a mailbox; `Workers::ask` posts the request to
//! every mailbox and collects the answers, tagged by shard, until all came or the
//! timeout passed.
//!
//! Contract:
//! - A worker calls `Mailbox::serve` once per loop iteration, between two batches of
//!   its packets, and answers everything waiting (`Engine::answer`; requests are
//!   bounded in work, see `natbox_core::engine::control`).
//! - Waking: posting a request wakes the worker (`Workers::wake`: the dataplane writes
//!   the worker's eventfd, which its io_uring polls), so an idle worker answers at
//!   once rather than at its next 100 ms timer; a busy worker answers within one
//!   batch. The control tick runs on worker 0 (`Fleet`), which forwards nothing while
//!   it waits, so this bounds that pause to a batch of the slowest worker.
//!   `TIMEOUT` is the bound for a worker that is stuck.
//! - A worker that does not answer in time (stuck, or gone) is left out: `ask` returns
//!   the answers that came, in shard order, and logs the others. Its late answer is
//!   dropped (the reply channel is gone by then), never mistaken for a later one's.

use super::shards::{Inline, Shards};
use crate::engine::control::{Answer, Request};
use crate::engine::Engine;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

/// How long `ask` waits for every worker's answer.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// A request on its way to one shard, and where to answer.
#[derive(Debug)]
struct Asked {
    request: Request,
    reply: Sender<(usize, Answer)>,
}

/// One worker's end: the requests waiting for its shard.
#[derive(Debug)]
pub struct Mailbox {
    shard: usize,
    inbox: Receiver<Asked>,
}

impl Mailbox {
    /// Answers every waiting request with `engine` at engine time `now_ms`; returns how
    /// many.
    pub fn serve(&self, engine: &mut Engine, now_ms: u64) -> usize {
        let mut served = 0;
        while let Ok(asked) = self.inbox.try_recv() {
            // The asker may have given up (timeout): nothing to do then.
            let _ = asked
                .reply
                .send((self.shard, engine.answer(&asked.request, now_ms)));
            served += 1;
        }
        served
    }
}

/// Wakes worker k (its mailbox has a request).
pub type Wake = Box<dyn Fn(usize) + Send>;

/// The control thread's end: every worker's mailbox.
pub struct Workers {
    outboxes: Vec<Sender<Asked>>,
    timeout: Duration,
    wake: Wake,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("count", &self.outboxes.len())
            .finish_non_exhaustive()
    }
}

/// A `Workers` handle for `count` shards and their mailboxes (element k for shard k),
/// waiting at most `timeout` for the answers to one request; `wake(k)` wakes the
/// worker that serves mailbox k.
pub fn mailboxes(count: usize, timeout: Duration, wake: Wake) -> (Workers, Vec<Mailbox>) {
    let (outboxes, boxes) = (0..count)
        .map(|shard| {
            let (tx, inbox) = channel();
            (tx, Mailbox { shard, inbox })
        })
        .unzip();
    let workers = Workers {
        outboxes,
        timeout,
        wake,
    };
    (workers, boxes)
}

/// Every shard as worker 0's control tick reaches them: its own engine in place
/// (shard 0), the other workers' through their mailboxes (shards 1..).
#[derive(Debug)]
pub struct Fleet<'a> {
    pub first: Inline<'a>,
    pub others: &'a mut Workers,
}

impl Shards for Fleet<'_> {
    fn count(&self) -> usize {
        1 + self.others.count()
    }

    fn ask(&mut self, request: &Request) -> Vec<Answer> {
        let mut answers = self.first.ask(request);
        answers.extend(self.others.ask(request));
        answers
    }

    fn ask_one(&mut self, shard: usize, request: &Request) -> Option<Answer> {
        match shard.checked_sub(1) {
            None => self.first.ask_one(0, request),
            Some(other) => self.others.ask_one(other, request),
        }
    }
}

impl Shards for Workers {
    fn count(&self) -> usize {
        self.outboxes.len()
    }

    fn ask(&mut self, request: &Request) -> Vec<Answer> {
        self.collect(0..self.outboxes.len(), request)
    }

    fn ask_one(&mut self, shard: usize, request: &Request) -> Option<Answer> {
        self.collect(shard..shard + 1, request).pop()
    }
}

impl Workers {
    /// Posts `request` to the mailboxes of `shards` and returns the answers that came
    /// within the timeout, in shard order; logs the shards that did not answer.
    fn collect(&self, shards: std::ops::Range<usize>, request: &Request) -> Vec<Answer> {
        let (reply, answers) = channel();
        let mut expected = 0;
        let outboxes = self.outboxes.get(shards.clone()).unwrap_or_default();
        for (k, outbox) in shards.clone().zip(outboxes) {
            let asked = Asked {
                request: request.clone(),
                reply: reply.clone(),
            };
            if outbox.send(asked).is_ok() {
                expected += 1;
                (self.wake)(k);
            }
        }
        drop(reply);
        let deadline = Instant::now() + self.timeout;
        let mut got: Vec<(usize, Answer)> = Vec::with_capacity(expected);
        while got.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            match answers.recv_timeout(left) {
                Ok(answer) => got.push(answer),
                Err(_) => break,
            }
        }
        if got.len() < outboxes.len() {
            let missing: Vec<usize> = shards
                .filter(|k| !got.iter().any(|(s, _)| s == k))
                .collect();
            log::warn!(
                "control: workers {missing:?} did not answer {request:?} within {} ms",
                self.timeout.as_millis()
            );
        }
        got.sort_by_key(|(shard, _)| *shard);
        got.into_iter().map(|(_, answer)| answer).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PortSetup;
    use crate::shard::Shard;
    use crate::wire::ethernet::Mac;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn config() -> firmware_config::Config {
        firmware_config::from_toml(include_str!("../../../natbox.toml")).expect("example")
    }

    fn shard(k: usize, n: usize) -> Engine {
        let setup = PortSetup {
            mac: Mac([2, 0, 0, 0, 0, 1]),
        };
        Engine::new_shard(&config(), &[setup; 2], Shard::new(k, n).expect("k < n"))
    }

    /// Runs a worker that serves its mailbox every millisecond until `stop`.
    fn worker(
        mut engine: Engine,
        mailbox: Mailbox,
        stop: &AtomicBool,
    ) -> impl FnOnce() -> Engine + '_ {
        move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                mailbox.serve(&mut engine, 0);
                std::thread::sleep(Duration::from_millis(1));
            }
            engine
        }
    }

    #[test]
    fn every_worker_answers_in_shard_order_and_a_change_reaches_each() {
        let (mut workers, boxes) = mailboxes(2, TIMEOUT, Box::new(|_| {}));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let threads: Vec<_> = boxes
                .into_iter()
                .enumerate()
                .map(|(k, mailbox)| s.spawn(worker(shard(k, 2), mailbox, &stop)))
                .collect();
            let answers = workers.ask(&Request::Stats);
            assert_eq!(answers.len(), 2);
            assert!(answers.iter().all(|a| matches!(a, Answer::Stats(_))));
            let mut changed = config();
            changed.nat.max_sessions_per_host += 1;
            let answers = workers.ask(&Request::Reconfigure(Box::new(changed.clone())));
            assert!(answers
                .iter()
                .all(|a| matches!(a, Answer::Reconfigured(r) if r.ended == 0)));
            stop.store(true, Ordering::Relaxed);
            for (k, t) in threads.into_iter().enumerate() {
                let engine = t.join().expect("worker");
                assert_eq!(engine.shard(), Shard::new(k, 2).expect("k < 2"));
                assert_eq!(engine.config(), &changed, "shard {k} got the change");
            }
        });
    }

    #[test]
    fn a_worker_that_does_not_answer_is_left_out_after_the_timeout() {
        let (mut workers, mut boxes) = mailboxes(2, Duration::from_millis(50), Box::new(|_| {}));
        let silent = boxes.pop().expect("mailbox 1");
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let t = s.spawn(worker(shard(0, 2), boxes.remove(0), &stop));
            let start = Instant::now();
            let answers = workers.ask(&Request::Stats);
            assert_eq!(answers.len(), 1);
            assert!(start.elapsed() < Duration::from_secs(5));
            // The silent worker's late answer goes nowhere.
            assert_eq!(silent.serve(&mut shard(1, 2), 0), 1);
            stop.store(true, Ordering::Relaxed);
            t.join().expect("worker");
        });
    }
}
