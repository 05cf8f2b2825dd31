//! Static port forwarding (inbound DNAT, `[[forward]]`, `firmware_config::forward`):
//! the table of forwarded public ports and the sessions they open.
//!
//! A forwarded session is an ordinary NAT44 session (`Session`) whose inside endpoint
//! is the forward's host and port and whose external port is the forwarded public port:
//! it has the same outbound and inbound keys, so replies from the inside host are
//! translated back to the public address and port, ICMP errors about it are
//! translated both ways by the same code as for source NAT (`Nat44::icmp_error`, RFC
//! 5508 REQ-3/4), and fragments follow their first fragment through the engine's
//! fragment table (`frag`, RFC 4787 REQ-14). What differs:
//! - It belongs to no mapping: no mapping key, no port-table slot and no host record,
//!   so it is never charged to the inside host's quotas (a server behind a forward
//!   answers many remotes; the global `nat.max_sessions` bounds it). A session is a
//!   forwarded one exactly when its public address, protocol and external port name a
//!   forward: the validation keeps source NAT's port range and the forwards apart
//!   (`firmware_config::forward::check`), and `Nat44::new` reserves in the port
//!   tables, as a hold that never ends (owner 0.0.0.0, which no inside host can be:
//!   it is a martian source), any forwarded port that lies in the range anyway, so the
//!   allocator (`pool::PortTable::pick`) can never hand one out.
//! - It is opened by the first inbound packet from a source the forward allows (TCP:
//!   a SYN), in the incoming class (`track::OPENED_IN`): until the inside host answers
//!   it lives `tcp_incoming_syn` / the UDP incoming timeout and is refreshed only by
//!   the inside, and at most [`MAX_UNANSWERED_PER_FORWARD`] such sessions exist per
//!   forward (over it: `forward_unanswered_limit`), so a SYN flood to a forwarded port
//!   cannot fill the session table. A source outside the `allow` list is dropped
//!   (`forward_source_denied`) and counted on the forward.
//! - Hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8): an inside host reaching the public
//!   address and port is translated outbound first (its own source NAT mapping), then
//!   inbound through the forward, so the server sees the client's *public* address and
//!   port, and its replies come back through the box (the same translation in
//!   reverse). An `allow` list therefore has to name the pool addresses for hairpinned
//!   clients to get through.
//!
//! Lookup: the forwards are kept sorted by (public address, protocol, first port) and
//! found by binary search; an inbound packet pays for it only when it has no session
//! (and, with several shards, `owner_in` asks it to steer a forwarded port's frames to
//! the inside host's shard, see `Nat44::owner_in`). An empty table costs a length test.
//!
//! Live change: `Nat44::reforward` puts a new list in force, ending the sessions of
//! every forward removed or changed (target, or a source no longer allowed), and keeps
//! the hit counters of forwards left unchanged. A change that rebuilds the tables
//! (addresses, pool, port range) ends every forwarded session (`adopt` keeps source
//! NAT mappings only).

use super::{opened_in, opened_in_state, remote_port, Flow, Join, Nat44, Session};
use crate::engine::flow::track;
use crate::engine::flowlog::EndReason;
use crate::engine::stats::DropReason;
use firmware_config::forward::Forward;
use firmware_config::Config;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// Sessions opened from outside to one forward and not answered by the inside yet.
/// They live `tcp_incoming_syn` seconds (6 by default), so this admits a sustained
/// 170 new clients a second per forward.
pub const MAX_UNANSWERED_PER_FORWARD: u32 = 1024;

/// One forward as the engine looks it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub pool: u8,
    pub proto: u8,
    pub first: u16,
    pub last: u16,
    /// The inside host, and the inside port of `first`.
    pub to: u32,
    pub to_port: u16,
    /// The forward's place in the configuration (`forward[index]`).
    pub index: usize,
    allow: Box<[Ipv4Net]>,
}

impl Entry {
    /// Whether `src` may open a session.
    pub fn allows(&self, src: u32) -> bool {
        self.allow.is_empty() || {
            let src = Ipv4Addr::from_bits(src);
            self.allow.iter().any(|n| n.contains(&src))
        }
    }

    /// The inside port public port `port` (in the forward's range) leads to.
    pub fn inside_port(&self, port: u16) -> u16 {
        self.to_port.wrapping_add(port.wrapping_sub(self.first))
    }
}

/// What `show forwards` and the metrics count for one forward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardHits {
    /// Sessions opened.
    pub hits: u64,
    /// Packets refused for their source (`forward_source_denied`).
    pub refused: u64,
}

/// The forwards in force, with their counters.
#[derive(Debug, Default)]
pub struct Forwards {
    written: Vec<Forward>,
    entries: Vec<Entry>,
    pub(super) counts: Vec<ForwardHits>,
    pub(super) unanswered: Vec<u32>,
}

impl Forwards {
    /// The forwards of `config`, each on its public address's index in `pool` (its
    /// own address, else the first pool address); a forward whose address is not in
    /// `pool` (a pool learnt by DHCP and not leased yet) is left out.
    pub fn new(config: &Config, pool: &[Ipv4Addr]) -> Forwards {
        let written = config.forward.clone();
        let mut entries: Vec<Entry> = written
            .iter()
            .enumerate()
            .filter_map(|(index, f)| {
                let at = match f.address {
                    Some(a) => pool.iter().position(|&p| p == a)?,
                    None => (!pool.is_empty()).then_some(0)?,
                };
                Some(Entry {
                    pool: at as u8,
                    proto: f.protocol.number(),
                    first: f.port.first,
                    last: f.port.last,
                    to: f.to.to_bits(),
                    to_port: f.inside_port(),
                    index,
                    allow: f.allow.clone().into_boxed_slice(),
                })
            })
            .collect();
        entries.sort_unstable_by_key(|e| (e.pool, e.proto, e.first));
        Forwards {
            counts: vec![ForwardHits::default(); written.len()],
            unanswered: vec![0; written.len()],
            written,
            entries,
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The configuration these were built from.
    pub fn written(&self) -> &[Forward] {
        &self.written
    }

    /// Every forward's entry.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The forward of public port `port` on pool address `pool` for `proto`.
    #[inline]
    pub fn find(&self, pool: usize, proto: u8, port: u16) -> Option<&Entry> {
        self.position(pool, proto, port).map(|at| &self.entries[at])
    }

    /// `find`, as a position in `entries`.
    #[inline]
    pub fn position(&self, pool: usize, proto: u8, port: u16) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let key = (pool, proto, port);
        let at = self
            .entries
            .partition_point(|e| (usize::from(e.pool), e.proto, e.first) <= key)
            .checked_sub(1)?;
        let e = &self.entries[at];
        (usize::from(e.pool) == pool && e.proto == proto && port <= e.last).then_some(at)
    }

    /// The counters of every forward, by configuration index.
    pub fn hits(&self) -> &[ForwardHits] {
        &self.counts
    }

    /// Takes the counters of `old`'s forwards that are here unchanged (the same
    /// definition, wherever it now stands in the list).
    pub fn carry(&mut self, old: &Forwards) {
        let mut taken = vec![false; old.written.len()];
        for (i, f) in self.written.iter().enumerate() {
            let same = (old.written.iter().enumerate()).position(|(j, g)| !taken[j] && g == f);
            if let Some(j) = same {
                taken[j] = true;
                self.counts[i] = old.counts[j];
            }
        }
    }
}

/// The hold time that marks a port reserved for a forward in a port table (see the
/// module doc): a hold FIFO entry never carries it.
const RESERVED: u32 = u32::MAX;

impl Nat44 {
    /// Puts `fwd` in force; reserves in the port tables any forwarded port the
    /// allocator could pick (none, for a validated configuration), and frees the
    /// reservations of the forwards it replaces.
    pub(super) fn set_forwards(&mut self, fwd: Forwards) {
        let old = std::mem::replace(&mut self.fwd, fwd);
        for e in old.entries() {
            if let Some(t) = self.ports[usize::from(e.pool)][super::proto_slot(e.proto)].as_mut() {
                for port in e.first..=e.last {
                    t.release(port, RESERVED);
                }
            }
        }
        let entries = self.fwd.entries().to_vec();
        for e in &entries {
            for port in e.first..=e.last {
                // The slices of both port classes (`pool::Slices::for_port`).
                let snat = [0, 1024].iter().any(|&class| {
                    self.p
                        .slices
                        .for_port(class)
                        .is_some_and(|r| (r.min..=r.max).contains(&port))
                });
                if !snat {
                    continue;
                }
                let t = self.port_table(usize::from(e.pool), e.proto);
                if t.owner(port).is_none() {
                    t.claim(port, 0, 0);
                    t.hold(port, RESERVED);
                }
            }
        }
    }

    /// The forward (configuration index) session `s` belongs to, if it is a forwarded
    /// session.
    #[inline]
    pub(super) fn forward_of(&self, s: &Session) -> Option<usize> {
        self.fwd
            .find(usize::from(s.pool), s.proto, s.ext_port)
            .map(|e| e.index)
    }

    /// The shard that holds the sessions of a forward of public `port` on `public`
    /// for `protocol`: the inside host's (`shard::host_worker`, as the steering
    /// program sends that host's frames), so the host's replies and the inbound
    /// frames meet there. `None` if no forward matches or the NAT is not sharded.
    pub(super) fn forward_owner(&self, protocol: u8, public: u32, port: u16) -> Option<usize> {
        if self.fwd.is_empty() || !self.sharded() {
            return None;
        }
        let e = self.fwd.find(self.pool_index(public)?, protocol, port)?;
        let count = u32::try_from(self.p.shard.count()).unwrap_or(u32::MAX);
        Some(crate::shard::host_worker(e.to, count))
    }

    /// Opens a session of the forward at `at` (in `Forwards::entries`) for the
    /// inbound datagram `flow` (no session of its own) to its public port on pool
    /// address `pool`.
    pub(super) fn admit_forward(
        &mut self,
        flow: &Flow,
        pool: usize,
        at: usize,
        now: u32,
    ) -> Result<u32, DropReason> {
        let e = &self.fwd.entries[at];
        let (index, in_addr, in_port) = (e.index, e.to, e.inside_port(flow.dport));
        if !e.allows(flow.src) {
            self.fwd.counts[index].refused += 1;
            return Err(DropReason::ForwardSourceDenied);
        }
        let state = opened_in_state(flow)?;
        if self.sessions.len() as u32 >= self.p.t.max_sessions {
            return Err(DropReason::SessionLimit);
        }
        if self.fwd.unanswered[index] >= MAX_UNANSWERED_PER_FORWARD {
            return Err(DropReason::ForwardUnansweredLimit);
        }
        let rem_port = remote_port(flow.proto, flow.sport);
        if self
            .find_out(flow.proto, in_addr, in_port, flow.src, rem_port)
            .is_some()
        {
            return Err(DropReason::ForwardClash);
        }
        self.fwd.unanswered[index] += 1;
        self.fwd.counts[index].hits += 1;
        Ok(self.insert_session(
            opened_in(flow, pool, (in_addr, in_port), state, now),
            Join::Forward,
        ))
    }

    /// Puts the forwards of `config` in force if they changed: ends the sessions of
    /// every forward removed or changed (another target, or a source it no longer
    /// allows) and keeps the counters of the unchanged ones. Returns how many
    /// sessions ended.
    pub fn reforward(&mut self, config: &Config, now: u32) -> usize {
        if self.fwd.written() == config.forward.as_slice() {
            return 0;
        }
        let mut new = Forwards::new(config, &self.p.pool);
        new.carry(&self.fwd);
        let doomed: Vec<u32> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                self.forward_of(s).is_some() && {
                    let kept = new.find(usize::from(s.pool), s.proto, s.ext_port);
                    !kept.is_some_and(|e| {
                        e.to == s.in_addr
                            && e.inside_port(s.ext_port) == s.in_port
                            && e.allows(s.rem_addr)
                    })
                }
            })
            .map(|(i, _)| i as u32)
            .collect();
        for &idx in &doomed {
            self.report(idx, now, EndReason::ForcedEnd);
            self.remove(idx, now);
        }
        // The sessions left are forwarded sessions of `new` too: recount their
        // unanswered ones under `new`'s numbering.
        for (_, s) in &self.sessions {
            if s.state & track::OPENED_IN != 0 {
                if let Some(at) = new
                    .find(usize::from(s.pool), s.proto, s.ext_port)
                    .map(|e| e.index)
                {
                    new.unanswered[at] += 1;
                }
            }
        }
        self.set_forwards(new);
        doomed.len()
    }

    /// Each forward's counters, by configuration index.
    pub fn forward_hits(&self) -> &[ForwardHits] {
        self.fwd.hits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_by_address_protocol_and_port() {
        let mut c = firmware_config::from_toml(
            "[outside]\nport = \"wan0\"\nipv4 = \"198.51.100.10/24\"\n\
             [inside]\nport = \"lan0\"\nipv4 = \"10.10.0.1/24\"\n\
             [nat]\npool = [\"198.51.100.10\", \"198.51.100.11\"]\nport_min = 20000\n\
             [[forward]]\nprotocol = \"tcp\"\nport = \"8000-8009\"\nto = \"10.10.0.5\"\nto_port = 9000\n\
             [[forward]]\nprotocol = \"udp\"\nport = 8005\nto = \"10.10.0.6\"\n\
             [[forward]]\nprotocol = \"tcp\"\nport = 80\nto = \"10.10.0.7\"\naddress = \"198.51.100.11\"\n",
        )
        .unwrap();
        let pool = c.nat_pool();
        let f = Forwards::new(&c, &pool);
        let tcp = f.find(0, 6, 8005).unwrap();
        assert_eq!((tcp.index, tcp.inside_port(8005)), (0, 9005));
        assert_eq!(f.find(0, 17, 8005).unwrap().index, 1);
        assert!(f.find(0, 6, 8010).is_none());
        assert!(f.find(0, 6, 7999).is_none());
        assert!(f.find(0, 6, 80).is_none());
        assert_eq!(f.find(1, 6, 80).unwrap().index, 2);
        // Without its public address (a DHCP pool not leased yet) a forward is out.
        c.nat.pool.clear();
        assert!(Forwards::new(&c, &[]).is_empty());
    }
}
