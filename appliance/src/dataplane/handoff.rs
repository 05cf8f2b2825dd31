//! Frames one worker hands to another: the few a worker receives but another shard
//! must finish (a hairpinned frame whose destination mapping another shard owns, the
//! fragments of a datagram whose first fragment names another shard's port).
//!
//! Contract:
//! - Every worker has one bounded inbox (`std::sync::mpsc::sync_channel`, lock-free
//!   on the sending side) that every other worker sends to, and one bounded channel
//!   on which its own buffers come back once the receiver is done with them.
//! - A frame travels with the index of the port it arrived on (the receiving shard
//!   processes it as received there: `Engine::process_handed`).
//! - A frame is copied into a buffer of the sender's and travels by move; nothing
//!   allocates on the packet path once a worker owns `MAX_IN_FLIGHT` buffers (they
//!   are allocated on first use, so a box that never hands off never pays for them).
//! - Nothing blocks: a full inbox, or a sender with all its buffers in flight, refuses
//!   the frame (`send` returns false; the caller counts it as the engine's drop
//!   reason `handoff_full`). Returns never fail: a return channel holds as many
//!   buffers as its owner can have in flight.
//! - `take_touched` says which workers were sent frames since it was last asked, so
//!   the sender can wake them (an idle worker waits in the kernel).
//!
//! Crates weighed: `crossbeam-queue`'s `ArrayQueue` would do the same job; std's
//! bounded channel is lock-free since Rust 1.67 (it is crossbeam's algorithm) and
//! needs no dependency.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

/// Buffers a worker can have in other workers' inboxes at once; also each inbox's
/// bound.
pub const MAX_IN_FLIGHT: usize = 256;
/// Most workers (the touched set is a 64-bit mask).
pub const MAX_WORKERS: usize = 64;

/// A frame in flight: whose buffer it is and how much of it is the frame.
#[derive(Debug)]
struct Handed {
    from: usize,
    /// The port the frame arrived on.
    port: usize,
    len: usize,
    buf: Vec<u8>,
}

/// One worker's end of the lanes.
#[derive(Debug)]
pub struct Handoff {
    me: usize,
    frame_room: usize,
    inbox: Receiver<Handed>,
    outboxes: Vec<SyncSender<Handed>>,
    returned: Receiver<Vec<u8>>,
    return_to: Vec<SyncSender<Vec<u8>>>,
    spare: Vec<Vec<u8>>,
    /// This worker's buffers, spare or in flight.
    owned: usize,
    touched: u64,
}

/// The lanes between `workers` workers (at most `MAX_WORKERS`), with buffers of
/// `frame_room` bytes; element k belongs to worker k.
pub fn lanes(workers: usize, frame_room: usize) -> Vec<Handoff> {
    let workers = workers.clamp(1, MAX_WORKERS);
    let (outboxes, inboxes): (Vec<_>, Vec<_>) =
        (0..workers).map(|_| sync_channel(MAX_IN_FLIGHT)).unzip();
    let (return_to, returns): (Vec<_>, Vec<_>) =
        (0..workers).map(|_| sync_channel(MAX_IN_FLIGHT)).unzip();
    inboxes
        .into_iter()
        .zip(returns)
        .enumerate()
        .map(|(me, (inbox, returned))| Handoff {
            me,
            frame_room,
            inbox,
            outboxes: outboxes.clone(),
            returned,
            return_to: return_to.clone(),
            spare: Vec::new(),
            owned: 0,
            touched: 0,
        })
        .collect()
}

impl Handoff {
    /// This worker's index.
    pub fn worker(&self) -> usize {
        self.me
    }

    /// Hands a copy of `frame`, which arrived on port `port`, to worker `to`; false if
    /// it could not (the caller counts the drop).
    #[must_use]
    pub fn send(&mut self, to: usize, port: usize, frame: &[u8]) -> bool {
        if to == self.me || to >= self.outboxes.len() || frame.len() > self.frame_room {
            return false;
        }
        let Some(mut buf) = self.buffer() else {
            return false;
        };
        buf[..frame.len()].copy_from_slice(frame);
        let handed = Handed {
            from: self.me,
            port,
            len: frame.len(),
            buf,
        };
        match self.outboxes[to].try_send(handed) {
            Ok(()) => {
                self.touched |= 1 << to;
                true
            }
            Err(TrySendError::Full(h) | TrySendError::Disconnected(h)) => {
                self.spare.push(h.buf);
                false
            }
        }
    }

    /// Runs `each` on at most `budget` frames handed to this worker, in the order they
    /// were sent by each sender; `each` gets the frame's arrival port, the whole buffer
    /// and the frame's length (it may write a reply over the frame). Returns how many
    /// it ran.
    pub fn receive(
        &mut self,
        budget: usize,
        mut each: impl FnMut(usize, &mut [u8], usize),
    ) -> usize {
        let mut done = 0;
        while done < budget {
            let Ok(mut h) = self.inbox.try_recv() else {
                break;
            };
            each(h.port, &mut h.buf, h.len);
            done += 1;
            // Holds as many as its owner can have in flight, so this cannot be full;
            // should the owner be gone, the buffer is simply freed.
            if let Some(back) = self.return_to.get(h.from) {
                let _ = back.try_send(h.buf);
            }
        }
        done
    }

    /// Which workers were sent frames since the last call (bit k: worker k).
    pub fn take_touched(&mut self) -> u64 {
        std::mem::take(&mut self.touched)
    }

    /// A buffer of ours: one that came back, a spare, or a new one while fewer than
    /// `MAX_IN_FLIGHT` exist.
    fn buffer(&mut self) -> Option<Vec<u8>> {
        while let Ok(buf) = self.returned.try_recv() {
            self.spare.push(buf);
        }
        if let Some(buf) = self.spare.pop() {
            return Some(buf);
        }
        (self.owned < MAX_IN_FLIGHT).then(|| {
            self.owned += 1;
            vec![0; self.frame_room]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reaches_the_worker_it_was_handed_to_and_its_buffer_comes_back() {
        let mut lanes = lanes(3, 64);
        assert!(lanes[0].send(2, 0, b"to two"));
        assert_eq!(lanes[0].take_touched(), 0b100);
        assert_eq!(lanes[0].take_touched(), 0);
        let mut got = Vec::new();
        assert_eq!(lanes[1].receive(8, |_, b, n| got.push(b[..n].to_vec())), 0);
        assert_eq!(lanes[2].receive(8, |_, b, n| got.push(b[..n].to_vec())), 1);
        assert_eq!(got, vec![b"to two".to_vec()]);
        let mut ports = Vec::new();
        assert!(lanes[1].send(0, 3, b"from port 3"));
        lanes[0].receive(8, |port, _, _| ports.push(port));
        assert_eq!(ports, [3]);
        // The same buffer serves the next send: nothing new is allocated.
        assert!(lanes[0].send(1, 0, b"again"));
        assert_eq!(lanes[0].owned, 1);
    }

    #[test]
    fn a_full_inbox_refuses_without_blocking() {
        let mut lanes = lanes(2, 16);
        for i in 0..MAX_IN_FLIGHT {
            assert!(lanes[0].send(1, 0, &[i as u8]), "send {i}");
        }
        assert!(!lanes[0].send(1, 0, b"x"));
        // Once the receiver drained, the buffers are back and sending works again.
        assert_eq!(lanes[1].receive(usize::MAX, |_, _, _| {}), MAX_IN_FLIGHT);
        assert!(lanes[0].send(1, 0, b"y"));
        assert_eq!(lanes[0].owned, MAX_IN_FLIGHT);
    }

    #[test]
    fn frames_to_itself_too_large_or_to_no_worker_are_refused() {
        let mut lanes = lanes(2, 4);
        assert!(!lanes[0].send(0, 0, b"me"));
        assert!(!lanes[0].send(5, 0, b"who"));
        assert!(!lanes[0].send(1, 0, b"too large"));
        assert_eq!(lanes[0].owned, 0);
    }

    #[test]
    fn receive_keeps_each_senders_order_and_its_budget() {
        let mut lanes = lanes(2, 8);
        for i in 0..10u8 {
            assert!(lanes[1].send(0, 0, &[i]));
        }
        let mut seen = Vec::new();
        assert_eq!(lanes[0].receive(4, |_, b, _| seen.push(b[0])), 4);
        assert_eq!(lanes[0].receive(100, |_, b, _| seen.push(b[0])), 6);
        assert_eq!(seen, (0..10).collect::<Vec<u8>>());
    }

    #[test]
    fn workers_on_threads_exchange_frames_both_ways() {
        let mut lanes = lanes(2, 32);
        let mut b = lanes.pop().expect("lane 1");
        let mut a = lanes.pop().expect("lane 0");
        let echo = std::thread::spawn(move || {
            let mut echoed = 0;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while echoed < 1000 && std::time::Instant::now() < deadline {
                let mut frames = Vec::new();
                b.receive(64, |_, buf, n| frames.push(buf[..n].to_vec()));
                for f in frames {
                    while !b.send(0, 0, &f) && std::time::Instant::now() < deadline {
                        std::thread::yield_now();
                    }
                    echoed += 1;
                }
            }
            echoed
        });
        let (mut sent, mut back) = (0u32, 0u32);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while back < 1000 && std::time::Instant::now() < deadline {
            if sent < 1000 && a.send(1, 0, &sent.to_be_bytes()) {
                sent += 1;
            }
            a.receive(64, |_, buf, n| {
                assert_eq!(buf[..n], back.to_be_bytes());
                back += 1;
            });
        }
        assert_eq!(echo.join().expect("echo thread"), 1000);
        assert_eq!(back, 1000);
    }
}
