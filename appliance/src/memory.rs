//! Whether a configuration's tables fit the memory the box has.
//!
//! The engine sets aside its session, state and index tables when it is built
//! (`Engine::table_bytes` says how much, at most), so a `nat.max_sessions` the box
//! cannot hold would end in the kernel's out-of-memory killer, which for PID 1 is a
//! kernel panic. Before a configuration is started (at boot, in host mode) or
//! committed, its tables (every worker's shard: each has its share of the sessions
//! but a full set of port tables and buffers) and every worker's packet rings (12 MiB
//! a port) are checked against half of the machine's memory (`MemTotal` of
//! /proc/meminfo): the other half is for the kernel, the initramfs, which lives in
//! memory, and the shell and services. A configuration that does not fit is refused
//! with the fields to lower. With `dataplane.workers = 0` the box runs no more
//! workers than fit (`workers_that_fit`). Where /proc/meminfo cannot be read, nothing
//! is refused.

use crate::dataplane;
use crate::engine::Engine;
use firmware_config::Config;

/// The share of the machine's memory the tables may take: one half.
const TABLE_SHARE_DIVISOR: u64 = 2;

/// Checks `config`, run by `workers` workers, against this machine's memory.
pub fn check(config: &Config, workers: usize) -> Result<(), String> {
    match machine_bytes() {
        Some(total) => fits(config, workers, total),
        None => Ok(()),
    }
}

/// The most workers, at most `wanted` and at least 1, whose tables and rings for
/// `config` fit this machine's memory.
pub fn workers_that_fit(config: &Config, wanted: usize) -> usize {
    let Some(total) = machine_bytes() else {
        return wanted.max(1);
    };
    (1..=wanted.max(1))
        .rev()
        .find(|&n| fits(config, n, total).is_ok())
        .unwrap_or(1)
}

/// The bytes `config` run by `workers` workers needs: tables and rings.
fn need(config: &Config, workers: usize) -> u64 {
    (Engine::table_bytes(config, workers) + dataplane::io_bytes(config, workers)) as u64
}

/// Checks `config`, run by `workers` workers, against a machine of `total` bytes.
pub fn fits(config: &Config, workers: usize, total: u64) -> Result<(), String> {
    let need = need(config, workers);
    let budget = total / TABLE_SHARE_DIVISOR;
    if need <= budget {
        return Ok(());
    }
    Err(format!(
        "nat.max_sessions ({}) and ipv6.max_states ({}) with {workers} worker(s) need {} MiB of tables and packet rings, more than half of this box's {} MiB of memory: lower them or dataplane.workers, or give the box more memory",
        config.nat.max_sessions,
        config.ipv6.max_states,
        need >> 20,
        total >> 20
    ))
}

/// `MemTotal` from /proc/meminfo, in bytes.
fn machine_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total(&text)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Config {
        firmware_config::from_toml(include_str!("../../natbox.toml")).unwrap()
    }

    #[test]
    fn reads_mem_total_from_meminfo() {
        let text = "MemTotal:        262144 kB\nMemFree:  1000 kB\n";
        assert_eq!(parse_mem_total(text), Some(256 << 20));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_mem_total("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn the_example_fits_the_image_s_256_mib_and_the_largest_tables_do_not() {
        let mut config = example();
        assert_eq!(fits(&config, 1, 256 << 20), Ok(()));
        assert_eq!(
            fits(&config, 2, 256 << 20),
            Ok(()),
            "the image runs 2 workers"
        );
        config.nat.max_sessions = firmware_config::validate::MAX_SESSIONS;
        let refused = fits(&config, 1, 256 << 20).unwrap_err();
        assert!(refused.contains("nat.max_sessions (16777216)"), "{refused}");
        assert!(refused.contains("256 MiB"), "{refused}");
        // A machine of 8 GiB holds them.
        assert_eq!(fits(&config, 1, 8 << 30), Ok(()));
    }

    /// Issue #16: every worker has its own rings (12 MiB a port), so a small box with
    /// many CPUs cannot run one worker per CPU: 16 workers of two ports need 384 MiB
    /// of rings alone.
    #[test]
    fn every_workers_rings_count_and_many_workers_do_not_fit_a_small_box() {
        let config = example();
        let one = need(&config, 1);
        let two = need(&config, 2);
        assert!(
            two >= one + 2 * crate::dataplane::ring::PORT_MEMORY as u64,
            "{one} {two}"
        );
        let refused = fits(&config, 16, 256 << 20).unwrap_err();
        assert!(refused.contains("with 16 worker(s)"), "{refused}");
        assert!(refused.contains("dataplane.workers"), "{refused}");
    }

    #[test]
    fn the_estimate_covers_what_an_engine_really_allocates() {
        let config = example();
        let setup = crate::engine::PortSetup {
            mac: Default::default(),
        };
        let engine = Engine::new(&config, &[setup; 2]);
        let held = engine.nat().memory();
        let only = crate::shard::Shard::ONLY;
        let estimate = crate::engine::nat44::Nat44::table_bytes(&config, only);
        // Port tables are not allocated until first use: the estimate holds them.
        assert!(estimate >= held, "{estimate} < {held}");
        assert!(Engine::table_bytes(&config, 1) > estimate);
        // Shards share the session budget but each has its own port tables.
        assert!(Engine::table_bytes(&config, 2) > Engine::table_bytes(&config, 1));
    }
}
