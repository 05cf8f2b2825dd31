//! Port-block allocation for NAT44 (`[port_block]`, RFC 7422; the block layout and
//! counts are `pool::blocks`).
//!
//! Dynamic mode: a host's new mapping takes a port from one of its blocks on its
//! paired pool address (REQ-2 unchanged): first the block holding its inside port
//! (so the port is preserved when free, RFC 4787 section 4.2.1), then its other
//! blocks of the port's class and slice that have a port without a live mapping,
//! searched from the inside port's offset with its parity (REQ-4, exact for an even
//! size). When all are full it takes a new block, the free block holding the inside
//! port if there is one, else the next free one; one event per block taken or given
//! back (RFC 8158 natEvent 13/14), none per mapping. Quota: `nat.max_ports_per_host`
//! becomes `max(1, max_ports_per_host / size)` blocks per protocol (over it:
//! `HostPortLimit`); the mapping quota stays as well. A block goes back to the pool
//! when the reuse hold of its last mapping ends (RFC 6888 REQ-8: until then its held
//! ports can only go back to the same host, since only that host takes from it).
//! Within a host's blocks free ports come before its held ones, the inside port's
//! included: in a block of a few dozen ports a held port was usually another of the
//! host's connections moments ago, maybe to the same server, whose TIME_WAIT would
//! refuse the new SYN (measured: 3-4 of 200 curl requests failed in test_portblock
//! while held ports came first, none since).
//! Filtering, EIM (one external port per inside endpoint, RFC 4787 REQ-1) and the
//! inbound path are untouched: blocks only decide which port a new mapping gets.
//!
//! Deterministic mode (RFC 7422 section 2): inside address number `i`
//! (`port_block::inside_index`) owns block `i % b` of pool address `i / b`, `b` the
//! whole blocks in this shard's slice of the ports above 1023 (ICMP: block `i % b` of
//! the identifier slice), and nothing else: one block, no events (the mapping is a
//! function of the configuration, so "who had 198.51.100.10:40123" is computed, not
//! looked up). Every mapping of the host, whatever its inside port, takes a port from
//! that block: the low class of REQ-3 (a RECOMMENDED) is given up, as RFC 7422's
//! example ranges do by starting above the well-known ports. An inside address beyond
//! the pool's capacity (validation checks it with the configured worker count) has no
//! pool address (`NoPoolAddress`).
//!
//! The new-session path pays for this (a chain walk and a search inside a block);
//! established sessions do not (measured: `core/benches/engine.rs`, `new_session*`).

use super::{events, proto_slot, Hold, Nat44};
use crate::engine::pool::blocks::{Blocks, NONE};
use crate::engine::pool::Range;
use crate::engine::stats::DropReason;
use crate::wire::proto;
use firmware_config::port_block::inside_index;
pub(super) use firmware_config::port_block::Mode;
use firmware_config::Config;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Block settings of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BlockParams {
    pub size: u16,
    pub mode: Mode,
}

impl BlockParams {
    pub fn of(config: &Config) -> Option<BlockParams> {
        let b = &config.port_block;
        b.enabled().map(|size| BlockParams { size, mode: b.mode })
    }
}

/// A block as the shell shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    pub inside: Ipv4Addr,
    pub proto: u8,
    pub outside: Ipv4Addr,
    pub first: u16,
    pub last: u16,
    /// Ports of the block with a live mapping.
    pub live: u16,
}

/// Most blocks one shard lists for the shell.
pub const MAX_BLOCK_ROWS: usize = 256;

/// Port-block gauges and listing of one shard or, merged, of the box.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockUsage {
    /// Blocks owned per pool address.
    pub per_address: Vec<(Ipv4Addr, u32)>,
    /// Blocks refused (quota reached or none free), ever.
    pub failures: u64,
    /// Blocks by host (at most `MAX_BLOCK_ROWS` per shard).
    pub rows: Vec<BlockInfo>,
}

impl BlockUsage {
    /// Adds `other` (another shard's: disjoint slices, so nothing counts twice).
    pub fn merge(&mut self, other: BlockUsage) {
        for (addr, n) in other.per_address {
            match self.per_address.iter_mut().find(|(a, _)| *a == addr) {
                Some((_, sum)) => *sum += n,
                None => self.per_address.push((addr, n)),
            }
        }
        self.failures += other.failures;
        self.rows.extend(other.rows);
        self.rows.sort_by_key(|b| (b.inside, b.proto, b.first));
    }
}

impl Nat44 {
    /// The range a new mapping of `proto` from inside port `port` takes its port from:
    /// the shard's slice of the port's class, or of the identifiers; in deterministic
    /// mode the slice above 1023 for every TCP/UDP port (module doc).
    pub(super) fn range_for(&self, proto: u8, port: u16) -> Option<Range> {
        if proto == proto::ICMP {
            self.p.slices.ids()
        } else if self.p.blocks.is_some_and(|b| b.mode == Mode::Deterministic) {
            self.p.slices.for_port(u16::MAX)
        } else {
            self.p.slices.for_port(port)
        }
    }

    /// Deterministic mode: (pool address, block number) of inside address `in_addr`.
    pub(super) fn deterministic_block(&self, in_addr: u32) -> Option<(usize, u16)> {
        let b = self.p.blocks?;
        let high = self.p.slices.for_port(u16::MAX)?;
        let per_address = (u64::from(high.max - high.min) + 1) / u64::from(b.size);
        let i = inside_index(&self.p.inside, Ipv4Addr::from_bits(in_addr))?;
        let pool = usize::try_from(i.checked_div(per_address)?).ok()?;
        (pool < self.p.pool.len()).then_some((pool, (i % per_address) as u16))
    }

    /// A port for a new mapping of `host` (record index) in one of its blocks of
    /// `range` on pool address `pool`, taking a new block when its blocks are full.
    pub(super) fn pick_in_blocks(
        &mut self,
        host: u32,
        pool: usize,
        proto: u8,
        range: Range,
        wanted: u16,
        now: u32,
    ) -> Result<u16, DropReason> {
        let bp = self.p.blocks.ok_or(DropReason::PortsExhausted)?;
        let slot = proto_slot(proto);
        let in_addr = self.hosts[host as usize].addr;
        let mut head = self.hosts[host as usize].blocks[slot];
        let deterministic = match bp.mode {
            Mode::Deterministic => Some(self.deterministic_block(in_addr)),
            Mode::Dynamic => None,
        };
        let blocks = self.blocks[pool][slot].get_or_insert_with(|| Box::new(Blocks::new(bp.size)));
        let table = self.ports[pool][slot].get_or_insert_with(Default::default);
        let own = blocks
            .block_of(range, wanted)
            .filter(|b| blocks.owner(b.min) == Some(in_addr));
        // In a block, free ports come first even for the inside port itself: a held
        // one was another of this host's connections moments ago (`PortTable::search`).
        if let Some(p) = own.and_then(|b| table.search(b, wanted, in_addr)) {
            return Ok(p);
        }
        let mut at = head;
        while at != NONE {
            let (b, _, next) = blocks.at(at);
            if !blocks.full(at) && range.min <= b.min && b.max <= range.max {
                if let Some(p) = table.search(b, blocks.fold(b, wanted), in_addr) {
                    return Ok(p);
                }
            }
            at = next;
        }
        let quota = match bp.mode {
            Mode::Dynamic => (self.p.t.max_ports_per_host / u32::from(bp.size)).max(1),
            Mode::Deterministic => 1,
        };
        if blocks.chain_len(head) >= quota {
            self.block_failures += 1;
            return Err(DropReason::HostPortLimit);
        }
        let block = match deterministic {
            None => blocks.find_free(range, wanted),
            Some(at) => at
                .filter(|&(p, _)| p == pool)
                .and_then(|(_, k)| blocks.nth(range, k))
                .filter(|b| blocks.owner(b.min).is_none()),
        };
        let Some(port) = block.and_then(|b| {
            blocks.take(b, in_addr, &mut head);
            table.search(b, blocks.fold(b, wanted), in_addr)
        }) else {
            self.block_failures += 1;
            return Err(DropReason::PortsExhausted);
        };
        self.hosts[host as usize].blocks[slot] = head;
        if let Some(b) = block.filter(|_| deterministic.is_none()) {
            let outside = self.p.pool[pool];
            self.log_block(true, proto, in_addr, outside, b, now);
        }
        Ok(port)
    }

    /// Adoption: whether the mapping of `host` on `pool`:`port` can keep its port
    /// under the new block settings (its block is the host's, or free and within the
    /// host's quota, and in deterministic mode the host's own block); takes the block.
    pub(super) fn adopt_block(
        &mut self,
        host: u32,
        pool: usize,
        proto: u8,
        range: Range,
        port: u16,
    ) -> bool {
        let Some(bp) = self.p.blocks else {
            return true;
        };
        let slot = proto_slot(proto);
        let in_addr = self.hosts[host as usize].addr;
        let det = self.deterministic_block(in_addr);
        let mut head = self.hosts[host as usize].blocks[slot];
        let quota = (self.p.t.max_ports_per_host / u32::from(bp.size)).max(1);
        let blocks = self.blocks[pool][slot].get_or_insert_with(|| Box::new(Blocks::new(bp.size)));
        let Some(b) = blocks.block_of(range, port) else {
            return false;
        };
        match blocks.owner(b.min) {
            Some(owner) => return owner == in_addr,
            None if blocks.chain_len(head) >= quota => return false,
            None => {}
        }
        if bp.mode == Mode::Deterministic
            && det.and_then(|(p, k)| (p == pool).then(|| blocks.nth(range, k)).flatten()) != Some(b)
        {
            return false;
        }
        blocks.take(b, in_addr, &mut head);
        self.hosts[host as usize].blocks[slot] = head;
        true
    }

    /// After adopting from `old`: a block-delete event for each block of `old` this
    /// NAT does not have (same host, protocol, address and ports), and a block-create
    /// for each block it has that `old` had not; nothing for blocks kept, so a rebuild
    /// leaves the log saying who holds what. Only dynamic blocks are logged.
    pub(super) fn log_block_changes(&mut self, old: &Nat44, now: u32) {
        let logged = |nat: &Nat44| -> std::collections::BTreeSet<_> {
            if nat.p.blocks.is_some_and(|b| b.mode == Mode::Dynamic) {
                let all = nat.host_blocks(usize::MAX).into_iter();
                all.map(|b| (b.inside, b.proto, b.outside, b.first, b.last))
                    .collect()
            } else {
                Default::default()
            }
        };
        let (before, after) = (logged(old), logged(self));
        for (created, set, other) in [(false, &before, &after), (true, &after, &before)] {
            for &(inside, proto, outside, min, max) in set.difference(other) {
                let b = Range { min, max };
                self.log_block(created, proto, inside.to_bits(), outside, b, now);
            }
        }
    }

    /// A mapping on `pool`/`slot`:`port` ended (its port is now held).
    pub(super) fn block_unmapped(&mut self, pool: usize, slot: usize, port: u16) {
        if let Some(b) = self.blocks[pool][slot].as_mut() {
            b.unmapped(port);
        }
    }

    /// Ends the hold `h` (unless its port was reclaimed); with blocks, gives the block
    /// back when that was its last port in use.
    pub(super) fn end_hold(&mut self, h: Hold, now: u32) {
        let (pool, slot) = (usize::from(h.pool), usize::from(h.proto));
        let Some(t) = self.ports[pool][slot].as_mut() else {
            return;
        };
        if !t.release(h.port, h.freed) {
            return;
        }
        let Some(blocks) = self.blocks[pool][slot].as_mut() else {
            return;
        };
        let Some(owner) = blocks.port_owner(h.port) else {
            return;
        };
        let host = self.find_host(owner);
        let mut head = host.map_or(NONE, |h| self.hosts[h as usize].blocks[slot]);
        let Some(blocks) = self.blocks[pool][slot].as_mut() else {
            return;
        };
        let Some((block, _)) = blocks.released(h.port, &mut head) else {
            return;
        };
        let proto = [proto::TCP, proto::UDP, proto::ICMP][slot];
        if let Some(host) = host {
            self.hosts[host as usize].blocks[slot] = head;
            self.release_host_if_idle(host);
        }
        if self.p.blocks.is_some_and(|b| b.mode == Mode::Dynamic) {
            let outside = self.p.pool[pool];
            self.log_block(false, proto, owner, outside, block, now);
        }
    }

    fn log_block(
        &mut self,
        created: bool,
        proto: u8,
        in_addr: u32,
        outside: Ipv4Addr,
        b: Range,
        now: u32,
    ) {
        if self.events.enabled() {
            self.events.record(
                now,
                events::MappingEvent {
                    created,
                    proto,
                    inside: SocketAddrV4::new(Ipv4Addr::from_bits(in_addr), 0),
                    outside: SocketAddrV4::new(outside, b.min),
                    block_last: Some(b.max),
                },
            );
        }
    }

    /// Whether mappings are logged one by one (no dynamic blocks).
    pub(super) fn logs_mappings(&self) -> bool {
        self.p.blocks.is_none()
    }

    /// This shard's `BlockUsage`.
    pub fn block_usage(&self) -> BlockUsage {
        BlockUsage {
            per_address: (self.p.pool.iter().enumerate())
                .map(|(i, a)| (*a, self.blocks_in_use(i)))
                .collect(),
            failures: self.block_failures,
            rows: self.host_blocks(MAX_BLOCK_ROWS),
        }
    }

    /// Blocks owned per pool address (all protocols).
    pub fn blocks_in_use(&self, pool: usize) -> u32 {
        self.blocks[pool].iter().flatten().map(|b| b.in_use()).sum()
    }

    /// Blocks that could not be given (quota reached or none free), ever.
    pub fn block_failures(&self) -> u64 {
        self.block_failures
    }

    /// The blocks of every host, at most `max` (for the shell).
    pub fn host_blocks(&self, max: usize) -> Vec<BlockInfo> {
        let mut out = Vec::new();
        for (_, h) in self.hosts.iter() {
            let pool = usize::from(h.pool);
            for (slot, &head) in h.blocks.iter().enumerate() {
                let Some(blocks) = self.blocks[pool][slot].as_ref() else {
                    continue;
                };
                let mut at = head;
                while at != NONE && out.len() < max {
                    let (b, live, next) = blocks.at(at);
                    out.push(BlockInfo {
                        inside: Ipv4Addr::from_bits(h.addr),
                        proto: [proto::TCP, proto::UDP, proto::ICMP][slot],
                        outside: self.p.pool[pool],
                        first: b.min,
                        last: b.max,
                        live,
                    });
                    at = next;
                }
            }
        }
        out.sort_by_key(|b| (b.inside, b.proto, b.first));
        out
    }
}
