//! The NAT event log: one event when a mapping (an external address and port, or ICMP
//! identifier, given to an inside endpoint) is created and one when it is deleted, for
//! operators who must answer "who had 198.51.100.10:40123 at 14:02?".
//!
//! What an event holds follows RFC 6888 REQ-12: time (stamped by whoever drains the
//! queue), protocol, inside address and port, outside address and port, and **not**
//! the remote address. Logging mappings rather than sessions keeps the volume down
//! (one mapping serves every remote an inside endpoint talks to).
//!
//! With port blocks (`[port_block]`, dynamic mode) the events are about blocks
//! instead: one when a block of ports is given to an inside host and one when it goes
//! back to the pool (RFC 8158 natEvent 13 and 14, "port block allocation" and
//! "de-allocation", with the block's first and last port, RFC 7422); the mappings
//! inside a block are not logged, since the block already says who held its ports.
//!
//! Bounded: at most `rate` events are queued per second of engine time, and the queue
//! holds at most `CAPACITY`; anything beyond is counted in `dropped`, never blocks the
//! dataplane and never allocates. Off (no queue at all) unless a collector is
//! configured.

use std::collections::VecDeque;
use std::net::SocketAddrV4;

/// Events waiting to be sent, at most.
pub const CAPACITY: usize = 4096;

/// A mapping, or a port block, created or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappingEvent {
    pub created: bool,
    /// IP protocol number (6, 17 or 1).
    pub proto: u8,
    /// For a block, port 0 (the block serves every port of the host).
    pub inside: SocketAddrV4,
    /// For a block, its first port.
    pub outside: SocketAddrV4,
    /// For a block, its last port; `None` for a mapping.
    pub block_last: Option<u16>,
}

/// The queue, its per-second budget and its counters.
#[derive(Debug, Default)]
pub struct EventLog {
    /// Events allowed per second; 0 = logging off.
    rate: u32,
    second: u32,
    budget: u32,
    queue: VecDeque<MappingEvent>,
    /// Events queued for sending, ever.
    pub logged: u64,
    /// Events lost to the rate limit or a full queue.
    pub dropped: u64,
}

impl EventLog {
    /// Turns logging on at `rate` events per second, or off with `None`.
    pub fn configure(&mut self, rate: Option<u32>) {
        self.rate = rate.unwrap_or(0);
        // The current second starts with a full budget (at engine start, second 0).
        self.budget = self.rate;
        match rate {
            Some(_) if self.queue.capacity() < CAPACITY => {
                self.queue.reserve_exact(CAPACITY - self.queue.len())
            }
            Some(_) => {}
            None => self.queue = VecDeque::new(),
        }
    }

    #[inline]
    pub fn enabled(&self) -> bool {
        self.rate != 0
    }

    /// Queues `event` if the second's budget and the queue allow (`now` in seconds).
    pub fn record(&mut self, now: u32, event: MappingEvent) {
        if !self.enabled() {
            return;
        }
        if now != self.second {
            self.second = now;
            self.budget = self.rate;
        }
        if self.budget == 0 || self.queue.len() >= CAPACITY {
            self.dropped += 1;
            return;
        }
        self.budget -= 1;
        self.logged += 1;
        self.queue.push_back(event);
    }

    pub fn pop(&mut self) -> Option<MappingEvent> {
        self.queue.pop_front()
    }

    pub fn clear_counters(&mut self) {
        self.logged = 0;
        self.dropped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(port: u16) -> MappingEvent {
        MappingEvent {
            created: true,
            proto: 17,
            inside: SocketAddrV4::new("10.10.0.2".parse().unwrap(), port),
            outside: SocketAddrV4::new("198.51.100.10".parse().unwrap(), port),
            block_last: None,
        }
    }

    #[test]
    fn off_by_default() {
        let mut log = EventLog::default();
        log.record(1, event(1));
        assert_eq!((log.pop(), log.logged, log.dropped), (None, 0, 0));
    }

    #[test]
    fn rate_limit_per_second_counts_drops() {
        let mut log = EventLog::default();
        log.configure(Some(2));
        for port in 0..5 {
            log.record(7, event(port));
        }
        log.record(8, event(9));
        assert_eq!((log.logged, log.dropped), (3, 3));
        let ports: Vec<u16> = std::iter::from_fn(|| log.pop())
            .map(|e| e.inside.port())
            .collect();
        assert_eq!(ports, [0, 1, 9]);
    }

    #[test]
    fn the_first_second_has_its_budget() {
        let mut log = EventLog::default();
        log.configure(Some(1));
        log.record(0, event(1));
        log.record(0, event(2));
        assert_eq!((log.logged, log.dropped), (1, 1));
    }

    #[test]
    fn queue_is_bounded() {
        let mut log = EventLog::default();
        log.configure(Some(100_000));
        for port in 0..CAPACITY as u32 + 10 {
            log.record(1, event(port as u16));
        }
        assert_eq!(log.dropped, 10);
        log.configure(None);
        assert_eq!(log.pop(), None, "turning off empties the queue");
    }
}
