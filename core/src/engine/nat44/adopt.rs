//! A configuration change that rebuilds the tables keeps every session whose mapping
//! is still possible (issue #16): the new NAT adopts them from the old one.
//!
//! A mapping is still possible when its public address is still in the pool, its
//! inside host is still translated, and its external port still lies in the range its
//! inside port maps into (RFC 4787 REQ-3), as far as this shard allocates it (its
//! slice of that range, `pool::Slices`; ICMP identifiers: its slice of them). Such a mapping
//! moves whole, with its public address and port, TCP state, sequence windows and idle
//! time, so a reply finds it exactly as before. A mapping that is no longer possible
//! ends with all its sessions, and its end is a mapping event (RFC 6888 REQ-12) like
//! an expiry. The new limits apply as to new sessions (a lowered quota ends the
//! sessions over it, newest mappings first in table order), so what runs afterwards is
//! exactly what the new configuration allows.
//!
//! Pairing (RFC 4787 REQ-2) survives a grown pool: a host's pool address is fixed when
//! its host record is created (by the address hash) and kept while it has mappings, so
//! adding an address does not split a live host across two. Port holds (RFC 6888
//! REQ-8) are not carried over: the freed ports they kept are free in the new tables.
//!
//! Port blocks (`blocks`): with blocks on, a mapping is kept only if its port's block
//! can be its host's (free, or already the host's, within the block quota; in
//! deterministic mode the host's own block), so when blocks are turned on the first
//! host to claim a block keeps it and another host's mappings in it end. The block
//! events of a rebuild say only what changed (`log_block_changes`).
//! Sessions of port forwards (`forward`) end; the forwards' counters carry over.
//! Every session that ends gets its flow record (`EndReason::ForcedEnd`, as a
//! `clear sessions`), and its bytes reach the per-destination SLIs before they move.

use super::{Join, Nat44, Session};
use crate::engine::flow::list::{Links, List};
use crate::engine::flow::track;
use crate::engine::flowlog::EndReason;
use firmware_config::Config;
use std::net::Ipv4Addr;

impl Nat44 {
    /// Takes over the sessions of `old` (the NAT of the previous configuration, built
    /// from `config` now) whose mappings are still possible; `now` in seconds.
    /// Returns how many of `old`'s sessions ended.
    pub fn adopt(&mut self, mut old: Nat44, config: &Config, now: u32) -> usize {
        // Forwarded sessions end (`forward`); their forwards' counters go on.
        self.fwd.carry(&old.fwd);
        let mut ended: Vec<u32> = old
            .sessions
            .iter()
            .filter(|(_, s)| old.forward_of(s).is_some())
            .map(|(i, _)| i as u32)
            .collect();
        let heads: Vec<u32> = old
            .sessions
            .iter()
            .filter(|(_, s)| s.sib.is_first() && old.forward_of(s).is_none())
            .map(|(i, _)| i as u32)
            .collect();
        let mut adopted: Vec<(u32, u32)> = Vec::with_capacity(old.sessions.len());
        for head in heads {
            let mut chain = vec![head];
            while let Some(next) = chain
                .last()
                .and_then(|&i| List::next::<1, _>(&mut old.sessions, i))
            {
                chain.push(next);
            }
            let kept = self.adopt_mapping(&old, &chain, &mut adopted);
            if kept == 0 && old.logs_mappings() {
                old.log_mapping(head, false, now);
            }
            ended.extend_from_slice(&chain[kept..]);
        }
        for &idx in &ended {
            old.report(idx, now, EndReason::ForcedEnd);
        }
        // The idle lists stay ordered by last activity.
        adopted.sort_unstable();
        for &(_, idx) in &adopted {
            self.lru.insert(&mut self.sessions, idx);
        }
        let mut events = std::mem::take(&mut old.events);
        events.configure(super::event_rate(config));
        self.events = events;
        self.log_block_changes(&old, now);
        self.sli.carry(&mut old.sli);
        self.block_failures = old.block_failures;
        let mut flows = std::mem::take(&mut old.flows);
        let slots = self.sessions.capacity();
        flows.configure(super::flow_interval(config), &mut self.accounts, slots);
        self.flows = flows;
        ended.len()
    }

    /// Adopts the mapping whose sessions are `chain` (its head first), as far as the
    /// new configuration allows; pushes (last activity, new index) of each adopted
    /// session and returns how many were adopted: the first ones of `chain`.
    fn adopt_mapping(
        &mut self,
        old: &Nat44,
        chain: &[u32],
        adopted: &mut Vec<(u32, u32)>,
    ) -> usize {
        let before = adopted.len();
        let h = &old.sessions[chain[0] as usize];
        let address = old.p.pool[usize::from(h.pool)];
        let Some(pool) = self.pool_index(address.to_bits()) else {
            return 0;
        };
        // The port must lie in what this shard allocates from for its class (RFC 4787
        // REQ-3): the shard's slice, which is the whole class for a box of one.
        let slice = self.range_for(h.proto, h.in_port);
        let in_range = slice.is_some_and(|r| (r.min..=r.max).contains(&h.ext_port));
        if !in_range || !self.translates(Ipv4Addr::from_bits(h.in_addr)) {
            return 0;
        }
        let Some(host) = self.adopt_host(h.in_addr, pool as u8) else {
            return 0;
        };
        let (proto, ext_port) = (h.proto, h.ext_port);
        if !slice.is_some_and(|r| self.adopt_block(host, pool, proto, r, ext_port)) {
            self.release_host_if_idle(host);
            return 0;
        }
        let mut head = None;
        for &i in chain {
            let s = &old.sessions[i as usize];
            let answered = s.state & track::OPENED_IN == 0;
            if self.sessions.len() as u32 >= self.p.t.max_sessions
                || answered && self.charge_host(host).is_err()
            {
                break;
            }
            let moved = Session {
                pool: pool as u8,
                lru: Links::default(),
                sib: Links::default(),
                ..s.clone()
            };
            let join = match head {
                Some(head) => Join::Mapping(head),
                None => Join::NewMapping { host },
            };
            let idx = self.place(moved, join, false);
            self.accounts
                .put(self.flows.enabled(), idx, old.accounts.get(i));
            if !answered {
                self.port_table(pool, s.proto)
                    .count_unanswered(s.ext_port, true);
            }
            head.get_or_insert(idx);
            adopted.push((s.last, idx));
        }
        if head.is_none() {
            self.release_host_if_idle(host);
        }
        adopted.len() - before
    }

    /// The host record of `in_addr`, created with pool address `pool` if it has none
    /// yet; `None` if a new host would exceed the per-host port quota.
    fn adopt_host(&mut self, in_addr: u32, pool: u8) -> Option<u32> {
        let host = self.host_or_new(in_addr, pool)?;
        let rec = &self.hosts[host as usize];
        (rec.pool == pool && rec.ports < self.p.t.max_ports_per_host).then_some(host)
    }
}
