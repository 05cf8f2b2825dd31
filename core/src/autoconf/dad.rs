//! Duplicate Address Detection's timing (RFC 4862 section 5.4): `DAD_TRANSMITS`
//! Neighbor Solicitations from the unspecified address, `RETRANS_TIMER_MS` apart, and
//! the verdict `RETRANS_TIMER_MS` after the last (section 5.4.2). Sending the
//! solicitations and watching for an answer is the engine's (`Engine::probe6`); the
//! driver maps `Step::Probe` to a probe and `Step::Verdict` to the end of the watch.
//!
//! The defaults of RFC 4862 section 5.1 and RFC 4861 section 10: DupAddrDetectTransmits
//! 1, RetransTimer 1000 ms, so an address is in use about a second after it is formed.
//! The random delay before the first solicitation (section 5.4.2, up to 1 s) is not
//! taken: it keeps many hosts powered on together apart, and the box is one host whose
//! link-local address already announced it.

use std::net::Ipv6Addr;

/// Neighbor Solicitations sent per detection (DupAddrDetectTransmits).
pub const DAD_TRANSMITS: u32 = 1;
/// Between them, and from the last to the verdict (RetransTimer).
pub const RETRANS_TIMER_MS: u64 = 1000;

/// What the driver does next for a detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send a solicitation for the address from :: and watch for an answer.
    Probe(Ipv6Addr),
    /// The wait is over: stop watching and report whether anyone answered.
    Verdict(Ipv6Addr),
}

/// One detection under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dad {
    addr: Ipv6Addr,
    sent: u32,
    next: u64,
}

impl Dad {
    /// A detection of `addr`, its first solicitation due at `now`.
    pub fn new(addr: Ipv6Addr, now: u64) -> Dad {
        Dad {
            addr,
            sent: 0,
            next: now,
        }
    }

    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// When `step` has something to do.
    pub fn deadline(&self) -> u64 {
        self.next
    }

    /// What is due at `now`, if anything: a solicitation, or (after the last one's
    /// wait) the verdict, after which the detection is over.
    pub fn step(&mut self, now: u64) -> Option<Step> {
        if now < self.next {
            return None;
        }
        self.next = now.saturating_add(RETRANS_TIMER_MS);
        if self.sent < DAD_TRANSMITS {
            self.sent += 1;
            Some(Step::Probe(self.addr))
        } else {
            Some(Step::Verdict(self.addr))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4862_5_4_2_one_solicitation_then_the_verdict_a_retrans_timer_later() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut d = Dad::new(a, 100);
        assert_eq!(d.step(99), None);
        assert_eq!(d.step(100), Some(Step::Probe(a)));
        assert_eq!(d.deadline(), 100 + RETRANS_TIMER_MS);
        assert_eq!(d.step(100 + RETRANS_TIMER_MS - 1), None);
        assert_eq!(d.step(100 + RETRANS_TIMER_MS), Some(Step::Verdict(a)));
    }
}
