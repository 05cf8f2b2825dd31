//! The engine's side of a configuration change: which settings shape the tables and
//! the forwarding topology (`Addressing`: a change rebuilds the engine) and which tune
//! behaviour in place (everything else the engine reads: `Engine::retune` applies it).
//!
//! Contract: `Addressing` is the one list of rebuilding settings. Any other setting
//! changes in place with every session kept. A table's tunables are read from the
//! configuration in one function (`nat44`'s and `fw6`'s `Tunables::of`), which both
//! building and retuning use, so a new tunable is one line there;
//! `in_place_reconfiguration_matches_a_fresh_engine` fails if an engine reconfigured
//! in place differs from a fresh one built from the new configuration. Settings the
//! engine never reads (hostname, shell, log, metrics) change in place trivially. The
//! egress policy changes in place either way (`repolicy`), and so do the port
//! forwards (`Nat44::reforward`: the sessions of removed or changed forwards end).

use super::lease::{self, Lease4};
use super::lease6::{self, Lease6};
use super::port::{self, PortConfig, PortId};
use super::stats::DropReason;
use super::{icmp, policy, Engine, PortSetup, ETH};
use firmware_config::policy::Action;
use firmware_config::Config;
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr};

/// The settings that shape the tables and the forwarding topology: ports (addresses,
/// gateways, routes, MTU), the pool and its port range, the inside prefixes and
/// whether IPv6 is forwarded at all.
#[derive(Debug, PartialEq, Eq)]
struct Addressing<'a> {
    ports: Vec<PortConfig<'a>>,
    pool: &'a [Ipv4Addr],
    port_range: (u16, u16),
    nat_inside: &'a [Ipv4Net],
    ipv6_enabled: bool,
    ipv6_inside: &'a [Ipv6Net],
    /// Port blocks change how every port is owned: a change rebuilds and adopts.
    port_block: &'a firmware_config::port_block::PortBlock,
}

impl<'a> Addressing<'a> {
    fn of(config: &'a Config) -> Addressing<'a> {
        Addressing {
            ports: port::layout(config),
            pool: &config.nat.pool,
            port_range: (config.nat.port_min, config.nat.port_max),
            nat_inside: &config.nat.inside_prefixes,
            ipv6_enabled: config.ipv6.enabled,
            ipv6_inside: &config.ipv6.inside_prefixes,
            port_block: &config.port_block,
        }
    }
}

/// What a configuration change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reconfigured {
    /// The tables were rebuilt (an `Addressing` change, or tables grown).
    pub rebuilt: bool,
    /// Sessions and IPv6 states that ended because their mapping is no longer
    /// possible (or over a lowered limit).
    pub ended: usize,
    /// Sessions and IPv6 states that ended because a new egress policy refuses them
    /// (`policy`).
    pub denied: usize,
}

impl Reconfigured {
    /// Two shards' outcomes as the box's: rebuilt if either was, the ends added up.
    pub fn merge(self, other: Reconfigured) -> Reconfigured {
        Reconfigured {
            rebuilt: self.rebuilt || other.rebuilt,
            ended: self.ended + other.ended,
            denied: self.denied + other.denied,
        }
    }
}

impl Engine {
    /// Applies a new, validated configuration. Settings that only tune behaviour
    /// (filtering, limits, timeouts, MSS clamp, ICMP rate, hold time) change in place;
    /// anything in `Addressing` (ports, addresses, pool, port range, prefixes, routes)
    /// or tables grown beyond their allocation rebuild the engine, which then adopts
    /// every session and IPv6 state whose mapping is still possible
    /// (`Nat44::adopt`, `Fw6::adopt`); neighbours are learnt afresh and parked frames
    /// dropped. A changed egress policy is compiled and ends the sessions and states it
    /// refuses (`Reconfigured::denied`), whichever way the rest changed.
    pub fn reconfigure(&mut self, new: &Config) -> Reconfigured {
        let (leases, leases6) = (self.leases.clone(), self.leases6.clone());
        self.reshape(new, leases, leases6)
    }

    /// Sets (or, `None`, clears) the DHCP lease of port `port` (`lease`): the tables
    /// follow the effective configuration as after `reconfigure`.
    pub fn set_lease4(&mut self, port: PortId, lease: Option<Lease4>) -> Reconfigured {
        let mut leases = self.leases.clone();
        if leases.len() <= port.index() {
            leases.resize(port.index() + 1, None);
        }
        leases[port.index()] = lease;
        let (configured, leases6) = (self.config.clone(), self.leases6.clone());
        self.reshape(&configured, leases, leases6)
    }

    /// Applies `configured` with `leases` and `leases6` laid over it
    /// (`lease::effective`, `lease6::effective`), then a changed egress policy to the
    /// sessions and states that remain (`repolicy`).
    pub(super) fn reshape(
        &mut self,
        configured: &Config,
        leases: Vec<Option<Lease4>>,
        leases6: Vec<Option<Lease6>>,
    ) -> Reconfigured {
        let mut previous = std::mem::take(&mut self.policy);
        let buckets = previous.take_limiter();
        let mut done = self.rebuild_or_retune(configured, leases, leases6);
        done.ended += self
            .nat
            .reforward(&self.effective, (self.clock / 1000) as u32);
        done.denied = self.repolicy(previous, &configured.policy);
        self.policy.limit_hosts(buckets, &configured.host_limits);
        done
    }

    /// Puts `written` in force: `previous` itself if it is the same, else `written`
    /// compiled (a rebuilt engine compiled it already) with `previous`'s hit counters
    /// (`Policy::carry_hits`), ending the sessions and IPv6 states it refuses; returns
    /// how many ended.
    fn repolicy(
        &mut self,
        previous: policy::Policy,
        written: &firmware_config::policy::Policy,
    ) -> usize {
        if previous.written() == written {
            self.policy = previous;
            return 0;
        }
        if self.policy.written() != written {
            self.policy = policy::Policy::new(written);
        }
        self.policy.carry_hits(&previous);
        if !self.policy.refuses_anything() {
            return 0;
        }
        let now = (self.clock / 1000) as u32;
        let p = &self.policy;
        let refused = |proto, inside: IpAddr, remote: IpAddr, port| {
            let key = policy::session_key(proto, port);
            let action = match (inside, remote) {
                (IpAddr::V4(i), IpAddr::V4(r)) => p.decide4(i, r, key),
                (IpAddr::V6(i), IpAddr::V6(r)) => p.decide6(&i, &r, key),
                _ => Action::Allow,
            };
            action != Action::Allow
        };
        self.nat.clear(now, |s| {
            refused(
                s.proto,
                (*s.inside.ip()).into(),
                (*s.remote.ip()).into(),
                s.remote.port(),
            )
        }) + self.fw6.clear(now, |s| {
            refused(s.proto, s.inside.into(), s.remote.into(), s.rem_port)
        })
    }

    /// `reshape` but the policy: retunes in place, or rebuilds the tables (compiling
    /// the new policy) and adopts what they can keep.
    fn rebuild_or_retune(
        &mut self,
        configured: &Config,
        leases: Vec<Option<Lease4>>,
        leases6: Vec<Option<Lease6>>,
    ) -> Reconfigured {
        let new = lease6::effective(&lease::effective(configured, &leases), &leases6);
        if Addressing::of(&self.effective) == Addressing::of(&new)
            && new.nat.max_sessions <= self.capacity.0
            && new.ipv6.max_states <= self.capacity.1
        {
            self.retune(&new);
            self.config = configured.clone();
            self.leases = leases;
            self.leases6 = leases6;
            return Reconfigured::default();
        }
        let setups: Vec<PortSetup> = self
            .ports
            .iter()
            .map(|p| PortSetup { mac: p.mac })
            .collect();
        let old = std::mem::replace(self, Engine::new_shard(&new, &setups, self.shard));
        // What the services receive is theirs, not the configuration's (what they had
        // queued lived in the old buffers and is gone).
        self.bind_local(old.local_bindings());
        self.stats = old.stats;
        self.clock = old.clock;
        self.config = configured.clone();
        self.leases = leases;
        self.leases6 = leases6;
        // An address conflict watch under way goes on (a probe's answer may come
        // between the change and its verdict).
        self.probes4 = old.probes4.clone();
        self.probes6 = old.probes6.clone();
        // Frames queued to leave (the box's own solicitations and probes, a service's
        // datagrams) still leave; only parked ones wait on neighbours learnt afresh.
        let room = ETH + port::max_mtu(&new);
        for &(port, id) in &old.tx {
            let frame = old.buffers.frame(id);
            let copy = (frame.len() <= room)
                .then(|| self.buffers.store(frame))
                .flatten();
            match copy {
                Some(copy) => self.tx.push_back((port, copy)),
                None => self.stats.drop(DropReason::BufferPoolFull),
            }
        }
        let now = (old.clock / 1000) as u32;
        let ended = self.nat.adopt(old.nat, &new, now) + self.fw6.adopt(old.fw6, now);
        Reconfigured {
            rebuilt: true,
            ended,
            denied: 0,
        }
    }

    /// Applies every setting outside `Addressing`. Those read per packet from the
    /// configuration (MSS clamp, ICMP on limit) follow `self.config`.
    fn retune(&mut self, new: &Config) {
        self.nat.retune(new);
        self.fw6.retune(new);
        self.frags.set_timeout(new.timeouts.fragment);
        self.icmp_limit = icmp::Budgets::new(new.icmp.rate_limit, new.icmp.burst);
        self.config = new.clone();
        self.effective = new.clone();
    }
}

#[cfg(test)]
mod reconfigure_tests {
    use super::*;
    use crate::wire::ethernet::Mac;

    /// Every scalar setting of `config` (a dotted path, and a different value for it
    /// that may or may not be valid): booleans flipped, numbers moved, strings swapped
    /// for one of a few candidates. Lists (addresses, prefixes) are left alone.
    fn scalar_changes(config: &Config) -> Vec<(String, toml::Value)> {
        fn walk(prefix: &str, value: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
            use toml::Value;
            let mut push = |v: Value| out.push((prefix.to_string(), v));
            match value {
                Value::Table(t) => {
                    for (k, v) in t {
                        let path = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&path, v, out);
                    }
                }
                Value::Boolean(b) => push(Value::Boolean(!b)),
                Value::Integer(i) => {
                    for n in [i + 1, i - 1, i * 2, i / 2, 1] {
                        if n != *i {
                            push(Value::Integer(n));
                        }
                    }
                }
                Value::String(s) => {
                    for c in [
                        "address-dependent",
                        "endpoint-independent",
                        "debug",
                        "other",
                    ] {
                        if c != s {
                            push(Value::String(c.to_string()));
                        }
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk("", &toml::Value::try_from(config).unwrap(), &mut out);
        out
    }

    /// `config` with the setting at `path` set to `value`, if that is a valid
    /// configuration.
    fn with(config: &Config, path: &str, value: toml::Value) -> Option<Config> {
        let mut doc = toml::Value::try_from(config).unwrap();
        let mut at = &mut doc;
        for key in path.split('.') {
            at = at.get_mut(key)?;
        }
        *at = value;
        firmware_config::from_toml(&toml::to_string(&doc).ok()?).ok()
    }

    /// The engine's state that a configuration shapes, without what differs between
    /// any two engines (hash seeds) or only with the tables' capacity.
    fn shaped(engine: &Engine) -> String {
        format!(
            "{:?} {:?} {:?} {:?} {:?}",
            engine.nat.params(),
            engine.fw6.tunables(),
            engine.frags,
            engine.icmp_limit,
            engine.policy.written()
        )
    }

    /// A setting `reconfigure` applies in place must leave the engine as a fresh one
    /// built from the new configuration: a tunable outside `Addressing` that no
    /// `retune` applies would otherwise be silently ignored until a restart.
    #[test]
    fn in_place_reconfiguration_matches_a_fresh_engine() {
        let base = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        let setup = PortSetup {
            mac: Mac([2, 0, 0, 0, 0, 1]),
        };
        let mut in_place = std::collections::BTreeSet::new();
        for (path, value) in scalar_changes(&base) {
            let Some(changed) = with(&base, &path, value) else {
                continue;
            };
            if changed == base {
                continue;
            }
            let mut engine = Engine::new(&base, &[setup; 2]);
            if !engine.reconfigure(&changed).rebuilt {
                let fresh = Engine::new(&changed, &[setup; 2]);
                assert_eq!(shaped(&engine), shaped(&fresh), "{path} changed in place");
                in_place.insert(path);
            }
        }
        // The guard guards something: the tunables of [nat], [ipv6], [timeouts] and
        // [icmp] were among the settings changed in place.
        for path in [
            "nat.filtering",
            "nat.max_sessions_per_host",
            "nat.port_reuse_hold",
            "ipv6.max_states",
            "timeouts.udp",
            "timeouts.fragment",
            "icmp.rate_limit",
        ] {
            assert!(
                in_place.contains(path),
                "{path} not changed in place: {in_place:?}"
            );
        }
    }

    /// Every setting in `Addressing` rebuilds the engine: a change to a port, the port
    /// range or IPv6 forwarding never keeps tables sized or routed for the old one.
    #[test]
    fn addressing_changes_rebuild_the_engine() {
        let base = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        let setup = PortSetup {
            mac: Mac([2, 0, 0, 0, 0, 1]),
        };
        let mut rebuilt = std::collections::BTreeSet::new();
        for (path, value) in scalar_changes(&base) {
            let Some(changed) = with(&base, &path, value) else {
                continue;
            };
            if changed == base || Addressing::of(&changed) == Addressing::of(&base) {
                continue;
            }
            let mut engine = Engine::new(&base, &[setup; 2]);
            assert!(
                engine.reconfigure(&changed).rebuilt,
                "{path} changed in place"
            );
            rebuilt.insert(path);
        }
        for path in ["inside.mtu", "outside.mtu", "nat.port_min", "ipv6.enabled"] {
            assert!(
                rebuilt.contains(path),
                "{path} did not rebuild: {rebuilt:?}"
            );
        }
    }
}
