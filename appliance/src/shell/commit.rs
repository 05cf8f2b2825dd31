//! Committing a configuration, and taking a commit back.
//!
//! `commit` validates the candidate and checks that its tables fit the box's memory
//! (`crate::memory`), saves it where the running configuration came from, and only
//! then applies it: a configuration that cannot be saved is not applied, so what runs
//! is always what the next boot runs. The one exception is a box configured from a
//! cloud volume's user-data with no blank metadata disk to save to
//! (`control::Unsaved`, `init::source`): user-data cannot be written back, so the
//! commit applies live and says it is lost at reboot.
//!
//! A change of a port's interface or MTU takes effect too: the dataplane reopens the
//! port after the commit (`dataplane`), and the commit says so. Adding or removing
//! `[inside]` (switching between one-armed and two ports) is refused: the set of ports
//! is fixed from boot, so that change is written to the metadata disk with
//! `natbox-config` and takes effect at the next boot.
//!
//! `commit confirmed MINUTES` (as on Junos and VyOS) commits the same way and arms a
//! rollback: unless `confirm` (or a plain `commit`, as on Junos) follows within that
//! many minutes, the control tick puts the previous configuration back, saved first
//! and then applied, and logs it. A commit that cuts the operator off (a wrong
//! address, a password they cannot type) thereby undoes itself. A second `commit
//! confirmed` while one is armed moves the deadline and keeps the configuration from
//! before the first, so a series of unconfirmed commits rolls back as a whole. The
//! rollback lives in the box, not in the session: it fires also when the session that
//! armed it is gone.
//!
//! A configuration is applied to every engine shard (`Request::Reconfigure`,
//! broadcast); the box kept its sessions only if every shard did.

use super::Store;
use crate::control::shards::{Shards, Snapshots};
use firmware_config::Config;

/// The longest `commit confirmed` wait, in minutes.
pub const MAX_CONFIRM_MINUTES: u64 = 60;

/// The rollback a `commit confirmed` arms.
#[derive(Debug, Default)]
pub struct Rollback {
    armed: Option<Armed>,
}

#[derive(Debug)]
struct Armed {
    previous: Config,
    deadline_ms: u64,
}

impl Rollback {
    /// When the armed rollback fires (engine milliseconds), if one is armed.
    pub fn deadline_ms(&self) -> Option<u64> {
        self.armed.as_ref().map(|a| a.deadline_ms)
    }

    fn arm(&mut self, previous: Config, deadline_ms: u64) {
        let previous = self.armed.take().map_or(previous, |a| a.previous);
        self.armed = Some(Armed {
            previous,
            deadline_ms,
        });
    }

    /// Disarms the rollback; whether one was armed.
    pub fn confirm(&mut self) -> bool {
        self.armed.take().is_some()
    }

    /// Takes the configuration to go back to, once its time has come.
    pub fn due(&mut self, now_ms: u64) -> Option<Config> {
        match &self.armed {
            Some(a) if now_ms >= a.deadline_ms => self.armed.take().map(|a| a.previous),
            _ => None,
        }
    }
}

/// Parses the MINUTES of `commit confirmed MINUTES`.
pub fn confirm_minutes(raw: &str) -> Result<u64, String> {
    match raw.parse::<u64>() {
        Ok(m) if (1..=MAX_CONFIRM_MINUTES).contains(&m) => Ok(m),
        _ => Err(format!(
            "`{raw}`: commit confirmed takes a number of minutes from 1 to {MAX_CONFIRM_MINUTES}"
        )),
    }
}

/// Commits `candidate`: validated, checked against memory, saved, then applied.
/// With `confirmed` (minutes, and the time now), arms `rollback` to the running
/// configuration; without, confirms what `rollback` holds. Returns what happened, for
/// the operator.
pub fn commit(
    candidate: &Config,
    shards: &mut dyn Shards,
    store: Option<&mut dyn Store>,
    rollback: Option<&mut Rollback>,
    confirmed: Option<(u64, u64)>,
) -> Result<String, String> {
    if confirmed.is_some() && rollback.is_none() {
        return Err("commit confirmed is not available here".into());
    }
    firmware_config::validate(candidate).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    crate::memory::check(candidate, shards.count())?;
    let previous = shards
        .config()
        .ok_or("no answer from the dataplane: nothing applied")?;
    if candidate.one_armed() != previous.one_armed() {
        return Err(format!(
            "[inside] {}: switching between one-armed and two ports happens at boot only; \
             write the configuration to the metadata disk with `natbox-config build` and \
             reboot",
            if candidate.one_armed() {
                "removed"
            } else {
                "added"
            }
        ));
    }
    let unchanged = *candidate == previous;
    let outcome = if unchanged {
        "no changes".to_string()
    } else {
        install(candidate, &previous, shards, store)?
    };
    let Some(rollback) = rollback else {
        return Ok(outcome);
    };
    Ok(match confirmed {
        Some((minutes, now_ms)) => {
            rollback.arm(previous, now_ms + minutes * 60_000);
            format!("{outcome}; rolls back in {minutes} min unless `confirm` follows")
        }
        None if rollback.confirm() => format!("{outcome}; the pending rollback is cancelled"),
        None => outcome,
    })
}

/// Puts back the configuration of an unconfirmed `commit confirmed`; returns what
/// happened, for the log.
pub fn roll_back(
    previous: &Config,
    shards: &mut dyn Shards,
    store: Option<&mut dyn Store>,
) -> String {
    let running = shards.config();
    let installed = running
        .ok_or_else(|| "no answer from the dataplane".to_string())
        .and_then(|running| install(previous, &running, shards, store));
    match installed {
        Ok(outcome) => format!("commit not confirmed in time: rolled back ({outcome})"),
        Err(e) => format!("commit not confirmed in time, and the rollback failed: {e}"),
    }
}

/// Saves `config`, then applies it in place of `running`.
fn install(
    config: &Config,
    running: &Config,
    shards: &mut dyn Shards,
    store: Option<&mut dyn Store>,
) -> Result<String, String> {
    let saved = match store {
        Some(store) => store
            .save(config)
            .map_err(|e| format!("not saved, so not applied: {e}"))?,
        None => "not saved: no writable configuration source".into(),
    };
    let reopened = ports_reopened(running, config);
    let applied = applied(shards.reconfigure(config));
    log::info!("configuration committed: {applied}{reopened}; {saved}");
    Ok(format!("committed: {applied}{reopened}; {saved}"))
}

/// What a configuration change did to the sessions, for the operator.
fn applied(r: crate::engine::Reconfigured) -> String {
    let refused = format!("{} sessions the new egress policy refuses ended", r.denied);
    match (r.rebuilt, r.ended, r.denied) {
        (false, 0, 0) => "applied live, sessions kept".into(),
        (false, 0, _) => format!("applied live: {refused}, the others kept"),
        (false, n, d) => format!(
            "applied live: {n} sessions of removed or changed port forwards ended{}, the others kept",
            if d > 0 { format!(", {refused}") } else { String::new() }
        ),
        (true, 0, 0) => "applied, tables rebuilt, sessions kept".into(),
        (true, 0, _) => format!("applied, tables rebuilt: {refused}, the others kept"),
        (true, n, d) => {
            format!(
            "applied, tables rebuilt: {n} sessions ended (their mappings are no longer possible){}",
            if d > 0 { format!(", {refused}") } else { String::new() }
        )
        }
    }
}

/// What a change from `old` to `new` reopens: "; inside port reopens on lan1 with MTU
/// 9000", or nothing.
fn ports_reopened(old: &Config, new: &Config) -> String {
    old.ports()
        .zip(new.ports())
        .filter(|((_, o), (_, n))| o.port != n.port || o.mtu != n.mtu)
        .map(|(_, (name, n))| format!("; {name} port reopens on {} with MTU {}", n.port, n.mtu))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(udp: u32) -> Config {
        let mut c = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        c.timeouts.udp = udp;
        c
    }

    #[test]
    fn an_armed_rollback_fires_once_at_its_deadline_with_the_oldest_configuration() {
        let mut r = Rollback::default();
        assert_eq!(r.due(u64::MAX), None);
        r.arm(config(300), 1_000);
        r.arm(config(400), 2_000);
        assert_eq!(r.deadline_ms(), Some(2_000));
        assert_eq!(r.due(1_999), None);
        assert_eq!(r.due(2_000).map(|c| c.timeouts.udp), Some(300));
        assert_eq!(r.due(u64::MAX), None);
        r.arm(config(300), 1_000);
        assert!(r.confirm());
        assert!(!r.confirm());
        assert_eq!(r.due(u64::MAX), None);
    }

    #[test]
    fn confirm_minutes_are_bounded() {
        assert_eq!(confirm_minutes("5"), Ok(5));
        for bad in ["0", "61", "-1", "x", ""] {
            assert!(
                confirm_minutes(bad).unwrap_err().contains("1 to 60"),
                "{bad}"
            );
        }
    }
}
