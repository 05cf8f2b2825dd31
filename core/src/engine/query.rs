//! Read-only views of the engine for the control plane's requests (`control`, which
//! the shell, metrics and services reach through) and tests, and the table sizing the
//! box checks against its memory before it builds an engine.

use super::control::{Counters, PoolUsage};
use super::flow::track::Class;
use super::fw6::Fw6;
use super::nat44::Nat44;
use super::neigh;
use super::policy::Policy;
use super::port::{self, PortId, PortInfo};
use super::route::Routes;
use super::stats::Stats;
use super::{Engine, ETH, POOL_BUFFERS};
use crate::shard::Shard;
use firmware_config::Config;
use std::net::{Ipv4Addr, Ipv6Addr};

impl Engine {
    /// The most bytes the `shards` engine shards for `config` hold in their tables
    /// and buffers together, for a check against the memory the box has before they
    /// are built. Each shard has its share of the session and state budgets, but a
    /// full set of port tables and buffers, and its own compiled egress policy.
    pub fn table_bytes(config: &Config, shards: usize) -> usize {
        (0..shards.max(1))
            .filter_map(|k| Shard::new(k, shards.max(1)))
            .map(|shard| {
                Nat44::table_bytes(config, shard)
                    + Fw6::table_bytes(config, shard)
                    + POOL_BUFFERS * (ETH + port::max_mtu(config))
            })
            .sum::<usize>()
            + shards.max(1) * policy_bytes(config)
    }

    /// The configuration as written (a DHCP port's `ipv4` is `"dhcp"`).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration the tables follow: `config` with the ports' DHCP leases
    /// (`lease`).
    pub fn effective_config(&self) -> &Config {
        &self.effective
    }

    /// The DHCP lease of port `port`, if it has one.
    pub fn lease4(&self, port: PortId) -> Option<&super::lease::Lease4> {
        self.leases.get(port.index())?.as_ref()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn clear_stats(&mut self) {
        self.stats = Stats::default();
        self.nat.events_mut().clear_counters();
        self.nat.flows_mut().clear_counters();
        self.fw6.flows_mut().clear_counters();
        self.policy.clear_hits();
        self.nat.clear_destinations();
        self.fw6.clear_destinations();
    }

    /// The egress policy in force, with its hit counters.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The counters and the gauges of the tables (`control::Counters`).
    pub fn counters(&self) -> Counters {
        Counters {
            stats: self.stats.clone(),
            sessions: self.nat.session_count() as u64,
            session_classes: Class::ALL.map(|c| u64::from(self.nat.class_count(c))),
            states6: self.fw6.state_count() as u64,
            events_logged: self.nat.events().logged,
            events_dropped: self.nat.events().dropped,
            flows: {
                let mut flows = self.nat.flows().counters;
                flows.add(&self.fw6.flows().counters);
                flows
            },
        }
    }

    /// Ports in use per pool address and the `top` inside hosts by sessions.
    pub fn pool_usage(&self, top: usize) -> PoolUsage {
        PoolUsage {
            addresses: (self.nat.pool().iter().enumerate())
                .map(|(i, a)| (*a, self.nat.ports_in_use(i)))
                .collect(),
            top_hosts: self.nat.top_hosts(top),
            blocks: self.nat.block_usage(),
        }
    }

    pub fn nat(&self) -> &Nat44 {
        &self.nat
    }

    pub fn nat_mut(&mut self) -> &mut Nat44 {
        &mut self.nat
    }

    pub fn fw6(&self) -> &Fw6 {
        &self.fw6
    }

    pub fn fw6_mut(&mut self) -> &mut Fw6 {
        &mut self.fw6
    }

    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    pub fn neighbours4(&self, now_ms: u64) -> Vec<neigh::NeighbourInfo<Ipv4Addr>> {
        self.arp.list(now_ms)
    }

    pub fn neighbours6(&self, now_ms: u64) -> Vec<neigh::NeighbourInfo<Ipv6Addr>> {
        self.ndp.list(now_ms)
    }

    /// The ports, in `PortId` order.
    pub fn ports(&self) -> impl Iterator<Item = PortInfo> + '_ {
        self.port_ids().map(|id| self.port_info(id))
    }

    /// One port as the shell shows it.
    pub fn port_info(&self, port: PortId) -> PortInfo {
        let p = &self.ports[port];
        PortInfo {
            port,
            // Cold: read from the configuration rather than kept on the packet path.
            name: port::layout(&self.config)
                .get(port.index())
                .map_or_else(String::new, |c| c.port.port.clone()),
            roles: p.roles,
            mac: p.mac,
            ipv4: p.ipv4,
            ipv6: p.ipv6,
            link_local: p.link_local,
            mtu: p.mtu,
        }
    }
}

/// Bytes one shard's compiled egress policy holds: compiled to be measured (a
/// policy without rules is a few hundred bytes; 10 000 rules a few MiB at most, see
/// `policy`).
fn policy_bytes(config: &Config) -> usize {
    let limits = if config.host_limits.any() {
        super::policy::limit::Limiter::memory()
    } else {
        0
    };
    if config.policy.rule.is_empty() {
        return limits;
    }
    Policy::new(&config.policy).memory() + limits
}
