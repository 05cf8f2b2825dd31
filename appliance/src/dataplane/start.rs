//! Starting the dataplane when the ports the configuration names may not be there yet
//! (a NIC that comes up late, a name that stays wrong until someone fixes it):
//! `Threads::new` is tried again with a backoff, the first retry after
//! `FIRST_RETRY_MS` (0.5 s), doubling up to `RETRY_CAP_MS` (30 s), without end or for
//! the patience the caller gives. Each failed try is logged with the time of the next,
//! so at most one line per 30 s once the backoff is capped. Meanwhile the caller's
//! tick runs every 100 ms: the shell is served (console, admin socket) and sees each
//! configured port as `missing` (no interface of that name or MAC) or `waiting` (there,
//! but the dataplane did not start: another port is missing) in the `LinkSummary`
//! (`show interfaces`, `natbox_port_up` 0). A refused privilege (not root) is not
//! retried: no wait fixes it.

use super::{link, LinkSummary, Threads};
use crate::backoff::Backoff;
use crate::engine::port;
use crate::engine::stats::IoCounters;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The wait before the first retry, and the most between two tries.
pub const FIRST_RETRY_MS: u64 = 500;
pub const RETRY_CAP_MS: u64 = 30_000;
/// How often the caller's tick runs meanwhile.
const TICK: Duration = Duration::from_millis(100);

/// Why `retrying` returned without a dataplane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStarted {
    /// `stop` was set or the tick said stop (a shutdown was asked).
    Stopped,
    /// The last try's error, once the patience ran out or a privilege was refused.
    Failed(String),
}

/// Starts the dataplane for `config`, trying again as the module doc says until it
/// starts, `patience` (if any) has passed, `stop` is set or `tick` returns false.
pub fn retrying(
    config: &firmware_config::Config,
    patience: Option<Duration>,
    stop: &AtomicBool,
    tick: &mut dyn FnMut(&LinkSummary) -> bool,
) -> Result<Threads, NotStarted> {
    let begin = Instant::now();
    let ms = || begin.elapsed().as_millis() as u64;
    let mut retry = Backoff::new(0, FIRST_RETRY_MS, RETRY_CAP_MS);
    let mut links = waiting(config, 0);
    loop {
        if retry.due(ms()) {
            match Threads::new(config) {
                Ok(threads) => return Ok(threads),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    return Err(NotStarted::Failed(e.to_string()))
                }
                Err(e) => {
                    let now = ms();
                    let next = now + retry.wait(now);
                    if patience.is_some_and(|p| u128::from(next) > p.as_millis()) {
                        return Err(NotStarted::Failed(e.to_string()));
                    }
                    log::warn!(
                        "{e}: the dataplane is not running; trying again in {:.1} s",
                        retry.wait(now) as f64 / 1000.0
                    );
                    links = waiting(config, now);
                }
            }
        }
        links.now_ms = ms();
        if stop.load(Ordering::Relaxed) || !tick(&links) {
            return Err(NotStarted::Stopped);
        }
        std::thread::sleep(TICK);
    }
}

/// The configured ports as the shell sees them while the dataplane is not running:
/// `missing` where no interface has the configured name or MAC, else `waiting`.
pub fn waiting(config: &firmware_config::Config, now_ms: u64) -> LinkSummary {
    let layout = port::layout(config);
    LinkSummary {
        roles: layout.iter().map(|c| c.roles.label()).collect(),
        devices: layout.iter().map(|c| c.port.port.clone()).collect(),
        states: layout
            .iter()
            .map(|c| match link::find(&c.port.port) {
                Ok(_) => "waiting",
                Err(_) => "missing",
            })
            .collect(),
        now_ms,
        io: vec![IoCounters::default(); layout.len()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::testnet::{private_netns, run};

    /// Issue #17: a port that does not exist yet keeps the dataplane waiting, the shell
    /// served and the port shown as missing; once its interface appears the dataplane
    /// starts on it. With a patience, the wait ends with the error; a shutdown asked
    /// meanwhile ends it at once.
    #[test]
    fn a_port_that_appears_late_is_picked_up() {
        private_netns();
        for port in ["lan0", "wan0"] {
            run(&[
                "ip",
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                &format!("{port}p"),
            ]);
        }
        run(&["ip", "link", "del", "wan0"]);
        let config = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        let stop = AtomicBool::new(false);

        let mut seen = Vec::new();
        let patient = retrying(&config, Some(Duration::from_secs(1)), &stop, &mut |l| {
            seen.push(l.states.clone());
            true
        });
        let Err(NotStarted::Failed(e)) = patient else {
            panic!("expected the wait to end: {patient:?}");
        };
        assert!(e.contains("outside port wan0"), "{e}");
        assert!(seen.contains(&vec!["waiting", "missing"]), "{seen:?}");

        let mut ticks = 0;
        let started = retrying(&config, None, &stop, &mut |l| {
            ticks += 1;
            assert_eq!(
                (l.roles.as_slice(), l.devices.len()),
                (&["inside", "outside"][..], 2)
            );
            if ticks == 3 {
                run(&[
                    "ip", "link", "add", "wan0", "type", "veth", "peer", "name", "wan0p",
                ]);
            }
            ticks < 100
        });
        let threads = started.expect("started once wan0 appeared");
        assert!(ticks < 30, "within the first retries: {ticks} ticks");
        assert_eq!(threads.first().links().devices, ["lan0", "wan0"]);
        drop(threads);

        run(&["ip", "link", "del", "wan0"]);
        let stopped = retrying(&config, None, &stop, &mut |_| false);
        assert_eq!(stopped.err(), Some(NotStarted::Stopped));
    }
}
