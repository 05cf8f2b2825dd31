//! Address conflict watches, one per port at most: an ARP probe of an address a DHCPv4
//! server offered (RFC 5227 section 2.1.1, `l2`) and Duplicate Address Detection of an
//! IPv6 address the box forms or leases (RFC 4862 section 5.4, `autoconf`). The caller
//! sends the probes and says what it saw on the wire (`seen`); a watch remembers
//! whether anything conflicted until it is stopped. The timing is the caller's.

use super::port::PortId;

#[derive(Debug, Clone, Copy)]
struct Watch<A> {
    port: PortId,
    addr: A,
    conflict: bool,
}

/// The watches under way.
#[derive(Debug, Clone)]
pub(super) struct Probes<A> {
    watches: Vec<Watch<A>>,
}

impl<A> Default for Probes<A> {
    fn default() -> Self {
        Probes {
            watches: Vec::new(),
        }
    }
}

impl<A: Copy + PartialEq> Probes<A> {
    /// Watches `addr` on `port` (replacing a watch of another address there); whether
    /// a conflict was seen since the watch of this address began.
    pub(super) fn watch(&mut self, port: PortId, addr: A) -> bool {
        match self.watches.iter_mut().find(|w| w.port == port) {
            Some(w) if w.addr == addr => w.conflict,
            Some(w) => {
                *w = Watch {
                    port,
                    addr,
                    conflict: false,
                };
                false
            }
            None => {
                self.watches.push(Watch {
                    port,
                    addr,
                    conflict: false,
                });
                false
            }
        }
    }

    /// Stops watching on `port`; whether a conflict was seen.
    pub(super) fn stop(&mut self, port: PortId) -> bool {
        match self.watches.iter().position(|w| w.port == port) {
            Some(i) => self.watches.swap_remove(i).conflict,
            None => false,
        }
    }

    /// Marks a conflict on the watch of `port` if `conflicts` says its address is
    /// claimed by what was seen.
    pub(super) fn seen(&mut self, port: PortId, conflicts: impl Fn(A) -> bool) {
        for w in self.watches.iter_mut().filter(|w| w.port == port) {
            w.conflict |= conflicts(w.addr);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_remembers_a_conflict_until_stopped_and_restarts_clean_for_another_address() {
        let mut p = Probes::default();
        assert!(!p.watch(PortId(1), 5u32));
        p.seen(PortId(0), |_| true);
        assert!(!p.watch(PortId(1), 5), "another port's frames");
        p.seen(PortId(1), |a| a == 5);
        assert!(p.watch(PortId(1), 5));
        assert!(!p.watch(PortId(1), 6), "a new address starts clean");
        p.seen(PortId(1), |a| a == 6);
        assert!(p.stop(PortId(1)));
        assert!(!p.stop(PortId(1)));
        assert!(p.is_empty());
    }
}
