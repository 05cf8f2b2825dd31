//! Port-block allocation for NAT44 (`[port_block]`): external ports handed to an inside
//! host a block at a time (RFC 7422; RFC 8158's port-block allocation and
//! de-allocation NAT events), so the event log holds one line per block rather than
//! one per mapping.
//!
//! ```toml fragment
//! [port_block]
//! size = 64              # ports per block; 0 (the default) = off: one port per mapping
//! mode = "dynamic"       # "dynamic" (blocks on demand, logged) or "deterministic"
//! ```
//!
//! A section of its own rather than keys of `[nat]`: the metadata disk's format is
//! positional (postcard), and a new field at the end of `Config` is what an older
//! payload can be extended with (format version 8, `disk::decode`).
//!
//! Decisions:
//! - Any size from `MIN_SIZE` to `MAX_SIZE`, not only powers of two: the engine cuts
//!   blocks from the start of each port slice, not at multiples of the size, so a
//!   power of two buys no alignment; at least 8 keeps both parities (RFC 4787 REQ-4)
//!   with room for preservation. The size must fit in the ports above 1024 of one
//!   worker's slice (`high_slice_len`), or no block could ever be handed out.
//! - Deterministic mode (RFC 7422 section 2): the inside addresses, in the order of
//!   `nat.inside_prefixes`, are numbered from 0 (`inside_index`); address number `i`
//!   owns block `i % b` of pool address `i / b`, where `b` is the number of whole
//!   blocks in its worker's slice of the ports above 1024. Validation checks that
//!   every inside address gets one: inside addresses x size <= pool addresses x
//!   (blocks per slice x size), with the numbers in the message.

use crate::schema::Config;
use crate::validate::ValidationError;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Smallest block.
pub const MIN_SIZE: u16 = 8;
/// Largest block: half the port space.
pub const MAX_SIZE: u16 = 32768;

/// How blocks are given to hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Blocks on demand, one event per block allocated or released.
    #[default]
    Dynamic,
    /// One fixed block per inside address, computed from it: nothing to log.
    Deterministic,
}

/// The `[port_block]` section (format version 8).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortBlock {
    /// Ports per block; 0 = off.
    pub size: u16,
    pub mode: Mode,
}

impl PortBlock {
    /// The block size when blocks are on.
    pub fn enabled(&self) -> Option<u16> {
        (self.size != 0).then_some(self.size)
    }
}

/// Ports in the smallest worker slice of the part of `port_min..=port_max` above 1023
/// (the slice length `shard::PortSplit` gives the first workers), with `workers`
/// workers (at least 1; `check` resolves 0).
pub fn high_slice_len(port_min: u16, port_max: u16, workers: u16) -> u32 {
    let min = u32::from(port_min.max(1024));
    let len = (u32::from(port_max) + 1).saturating_sub(min);
    (len / u32::from(workers.max(1))).max(1).min(len)
}

/// Inside addresses in `prefixes`, all together.
pub fn inside_count(prefixes: &[Ipv4Net]) -> u64 {
    prefixes
        .iter()
        .map(|n| 1u64 << (32 - u32::from(n.prefix_len())))
        .sum()
}

/// The deterministic number of `addr`: its offset in the concatenation of `prefixes`
/// (the first prefix that holds it).
pub fn inside_index(prefixes: &[Ipv4Net], addr: Ipv4Addr) -> Option<u64> {
    let mut before = 0u64;
    for n in prefixes {
        if n.contains(&addr) {
            return Some(before + u64::from(addr.to_bits() - n.network().to_bits()));
        }
        before += inside_count(std::slice::from_ref(n));
    }
    None
}

/// The `[port_block]` rules.
pub fn check(config: &Config) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    let Some(size) = config.port_block.enabled() else {
        return errors;
    };
    let mut fail = |field: &str, message: String| {
        errors.push(ValidationError {
            field: field.into(),
            message,
        })
    };
    let n = &config.nat;
    if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
        fail(
            "port_block.size",
            format!("{size}: use {MIN_SIZE} to {MAX_SIZE} ports per block, or 0 for no blocks"),
        );
        return errors;
    }
    // `workers = 0` is one per CPU: the slices are known only on the machine, so a
    // dynamic size must fit the most workers there can be, and the deterministic
    // mapping (which follows the slices) needs a fixed count.
    let workers = match config.dataplane.workers {
        0 if config.port_block.mode == Mode::Deterministic => {
            fail(
                "dataplane.workers",
                "0 (one per CPU) with port_block.mode = \"deterministic\": each inside \
                 address's block would depend on the machine's CPUs; set workers to a fixed \
                 count (1 to 64)"
                    .into(),
            );
            return errors;
        }
        0 => crate::validate::MAX_WORKERS,
        n => n,
    };
    let slice = high_slice_len(n.port_min, n.port_max, workers);
    if u32::from(size) > slice {
        fail(
            "port_block.size",
            format!(
                "{size} ports do not fit in a worker's {slice} ports of nat.port_min-nat.port_max \
                 above 1023 ({}-{}, {workers} workers{}); use at most {slice}, or widen the range",
                n.port_min.max(1024),
                n.port_max,
                if config.dataplane.workers == 0 {
                    ", the most workers = 0 can start"
                } else {
                    ""
                },
            ),
        );
        return errors;
    }
    if u32::from(size) > n.max_ports_per_host && config.port_block.mode == Mode::Dynamic {
        fail(
            "port_block.size",
            format!(
                "{size} exceeds nat.max_ports_per_host ({}), which is the block quota's \
                 numerator (blocks per host = ports / size, at least 1); lower size or raise \
                 max_ports_per_host",
                n.max_ports_per_host
            ),
        );
    }
    if config.port_block.mode == Mode::Deterministic {
        let inside = inside_count(&config.nat_inside_prefixes());
        let pool = config.nat_pool().len().max(1) as u64;
        let per_address = u64::from(slice / u32::from(size));
        if inside > pool * per_address {
            fail(
                "port_block.mode",
                format!(
                    "deterministic: {inside} inside addresses x {size} ports need {} ports, but \
                     {pool} pool addresses x {per_address} blocks of {size} (a worker's {slice} \
                     ports above 1023) give {}; add pool addresses, narrow \
                     nat.inside_prefixes, or use a smaller size (at most {})",
                    inside * u64::from(size),
                    pool * per_address * u64::from(size),
                    (pool * u64::from(slice) / inside.max(1)).min(u64::from(MAX_SIZE))
                ),
            );
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn rfc7422_section2_inside_addresses_numbered_in_prefix_order() {
        let p = [net("10.0.0.0/30"), net("10.9.0.0/31")];
        assert_eq!(inside_count(&p), 6);
        assert_eq!(inside_index(&p, "10.0.0.3".parse().unwrap()), Some(3));
        assert_eq!(inside_index(&p, "10.9.0.1".parse().unwrap()), Some(5));
        assert_eq!(inside_index(&p, "10.9.0.2".parse().unwrap()), None);
    }

    fn broken(change: impl FnOnce(&mut Config)) -> Vec<String> {
        let mut c =
            crate::from_toml(include_str!("../tests/data/base.toml")).expect("base.toml valid");
        change(&mut c);
        check(&c).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn size_refused_with_field_and_fix() {
        assert!(broken(|c| c.port_block.size = 64).is_empty());
        assert!(broken(|c| c.port_block.size = 100).is_empty(), "any size");
        assert_eq!(
            broken(|c| c.port_block.size = 4),
            ["port_block.size: 4: use 8 to 32768 ports per block, or 0 for no blocks"]
        );
        assert_eq!(
            broken(|c| {
                c.port_block.size = 64;
                (c.nat.port_min, c.nat.port_max) = (40000, 40099);
                c.dataplane.workers = 2;
            }),
            [
                "port_block.size: 64 ports do not fit in a worker's 50 ports of \
              nat.port_min-nat.port_max above 1023 (40000-40099, 2 workers); use at most 50, \
              or widen the range"
            ]
        );
        assert_eq!(
            broken(|c| {
                c.port_block.size = 64;
                c.nat.max_ports_per_host = 32;
            }),
            [
                "port_block.size: 64 exceeds nat.max_ports_per_host (32), which is the block \
              quota's numerator (blocks per host = ports / size, at least 1); lower size or \
              raise max_ports_per_host"
            ]
        );
    }

    #[test]
    fn deterministic_blocks_need_a_fixed_worker_count_and_dynamic_fit_64_workers() {
        let with = |c: &mut Config, size, mode| {
            c.port_block = PortBlock { size, mode };
            c.dataplane.workers = 0;
        };
        assert_eq!(
            broken(|c| with(c, 64, Mode::Deterministic)),
            [
                "dataplane.workers: 0 (one per CPU) with port_block.mode = \"deterministic\": \
                 each inside address's block would depend on the machine's CPUs; set workers \
                 to a fixed count (1 to 64)"
            ]
        );
        // 64512 ports above 1023 / 64 workers = 1008 a worker.
        assert!(broken(|c| with(c, 1008, Mode::Dynamic)).is_empty());
        assert_eq!(broken(|c| with(c, 1009, Mode::Dynamic)).len(), 1);
    }

    #[test]
    fn rfc7422_section2_deterministic_capacity_names_the_numbers() {
        let det = |c: &mut Config, size| {
            c.port_block = PortBlock {
                size,
                mode: Mode::Deterministic,
            };
            c.nat.pool = vec!["198.51.100.10".parse().unwrap()];
            c.nat.inside_prefixes = vec![net("10.10.0.0/24")];
            c.dataplane.workers = 1;
        };
        // 256 addresses x 252 ports = 64512: exactly the ports above 1023.
        assert!(broken(|c| det(c, 252)).is_empty());
        assert_eq!(
            broken(|c| det(c, 256)),
            [
                "port_block.mode: deterministic: 256 inside addresses x 256 ports need 65536 \
              ports, but 1 pool addresses x 252 blocks of 256 (a worker's 64512 ports above \
              1023) give 64512; add pool addresses, narrow nat.inside_prefixes, or use a \
              smaller size (at most 252)"
            ]
        );
    }

    #[test]
    fn slice_of_the_high_class() {
        assert_eq!(high_slice_len(1, 65535, 0), 64512);
        assert_eq!(high_slice_len(1, 65535, 2), 32256);
        assert_eq!(high_slice_len(40000, 40003, 8), 1);
    }
}
