//! When to do a repeated thing again: at intervals that double up to a cap. The box
//! uses it where it retries without end (a dataplane whose ports are missing,
//! `dataplane::start`) and where a condition that lasts, or that repeats with every
//! packet, must reach the log at a bounded rate (a DHCP client nobody answers, the
//! offers it refuses: `services::dhcp4`). Time is milliseconds on the caller's clock;
//! nothing here reads a clock.

/// A schedule: due first at `next`, then `interval` later, the interval doubling each
/// time up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: u64,
    interval: u64,
    cap: u64,
    /// Occurrences `due` turned down since it last said yes.
    held_back: u64,
}

impl Backoff {
    /// Due first at `first_at`, then `interval` later, doubling up to `cap`.
    pub fn new(first_at: u64, interval: u64, cap: u64) -> Backoff {
        Backoff {
            next: first_at,
            interval: interval.min(cap),
            cap,
            held_back: 0,
        }
    }

    /// Whether the thing is due at `now`. If so the next time is set (and the interval
    /// doubles, up to the cap); if not, this occurrence counts as held back.
    pub fn due(&mut self, now: u64) -> bool {
        if now < self.next {
            self.held_back += 1;
            return false;
        }
        self.next = now.saturating_add(self.interval);
        self.interval = self.interval.saturating_mul(2).min(self.cap);
        true
    }

    /// How many occurrences were held back since the last due one; clears the count.
    pub fn take_held_back(&mut self) -> u64 {
        std::mem::take(&mut self.held_back)
    }

    /// Milliseconds from `now` until the thing is due again.
    pub fn wait(&self, now: u64) -> u64 {
        self.next.saturating_sub(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_double_up_to_the_cap_and_held_back_occurrences_are_counted() {
        let mut b = Backoff::new(1_000, 500, 2_000);
        assert!(!b.due(999));
        assert!(b.due(1_000));
        assert_eq!(b.take_held_back(), 1);
        assert_eq!(b.wait(1_000), 500);
        let mut at = 1_000;
        let mut gaps = Vec::new();
        for _ in 0..5 {
            let next = at + b.wait(at);
            assert!(!b.due(next - 1));
            assert!(b.due(next));
            gaps.push(next - at);
            at = next;
        }
        assert_eq!(gaps, [500, 1_000, 2_000, 2_000, 2_000]);
        assert_eq!(b.take_held_back(), 5);
        assert_eq!(b.take_held_back(), 0);
        let mut far = Backoff::new(u64::MAX - 1, u64::MAX, u64::MAX);
        assert!(far.due(u64::MAX) && !far.due(u64::MAX - 1), "no overflow");
    }
}
