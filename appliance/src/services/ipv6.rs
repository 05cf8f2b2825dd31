//! IPv6 on the outside port's link: the default router from Router Advertisements
//! (RFC 4861) when no `gateway6` is configured, and the address when `ipv6` is
//! `"slaac"` (RFC 4862) or `"dhcp"` (RFC 8415, `dhcp6`). The state machines are
//! `natbox_core::autoconf` and `natbox_core::dhcp6`; this module carries their
//! messages and applies what they learn.
//!
//! Contract:
//! - One `Autoconf` per port with the outside role whose IPv6 is learned on the link
//!   (no `gateway6`, or `ipv6 = "slaac"` or `"dhcp"`), while IPv6 forwarding is on;
//!   made with the port's MAC and a seed from the clock and the MAC (`dhcp4::seed`)
//!   when the configuration asks for it, remade when what it learns changes, and
//!   dropped (its router and address withdrawn) when the configuration no longer asks.
//!   The inside port never learns from advertisements (an inside host must not be able
//!   to become the box's router; `validate` refuses a learned inside address).
//! - The engine delivers the port's valid advertisements (`Binding::RouterAdverts`).
//!   The layout has one port with the outside role, so every advertisement delivered
//!   is that port's.
//! - What it asks is done through `ORIGIN_SHARD`, which Neighbor Discovery reaches:
//!   Router Solicitations (`Shards::solicit_routers`) and Duplicate Address Detection
//!   (`Shards::probe6`).
//! - Its router and address are put in force on every shard as the port's `Lease6`
//!   (`Shards::set_lease6`, `engine::lease6`) whenever they change, and logged; an
//!   advertisement or a renewal that only refreshes lifetimes changes nothing.
//! - A DHCPv6 address comes as a /128 (RFC 8415 section 21.6); it takes the prefix
//!   length of the longest on-link prefix (L flag) of the port's Router Advertisements
//!   that holds it, so the rest of that prefix is reached directly, and stays a /128,
//!   everything through the router, while no advertisement names one (RFC 5942
//!   section 4). An on-link prefix learned after the lease widens it then (the tables
//!   are rebuilt, states kept). The M flag is shown, not waited for: `"dhcp"` asks at
//!   once.

use super::dhcp6::Dhcp6Port;
use crate::control::shards::{Shards, Snapshots};
use crate::engine::lease6::Lease6;
use crate::engine::local::Binding;
use crate::engine::port::{self, PortId};
use crate::wire::ethernet::Mac;
use firmware_config::{Config, Ipv6Setting};
use natbox_core::autoconf::{self, Action, Autoconf, Mode};

/// How a port's IPv6 is learned, as the configuration says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wanted {
    port: PortId,
    role: &'static str,
    mode: Mode,
    /// The address by DHCPv6 (`ipv6 = "dhcp"`).
    dhcp: bool,
}

/// One port's autoconfiguration and what was last put in force.
#[derive(Debug)]
struct PortAuto {
    wanted: Wanted,
    auto: Autoconf,
    dhcp6: Option<Dhcp6Port>,
    applied: Option<Lease6>,
}

impl PortAuto {
    /// What the port holds now (module doc).
    fn lease(&self) -> Lease6 {
        let leased = self.dhcp6.as_ref().and_then(Dhcp6Port::address);
        Lease6 {
            address: match leased {
                Some(a) => Some(self.auto.on_link_prefix(a)),
                None => self.auto.address(),
            },
            router: self.auto.router(),
        }
    }
}

/// What the shell shows of one port.
#[derive(Debug, Clone)]
pub struct View {
    /// `"slaac"`, `"dhcp"` or `"static"`: how the address is had.
    pub address_from: &'static str,
    pub auto: autoconf::Snapshot,
    /// The DHCPv6 client, with `"dhcp"`.
    pub dhcp6: Option<natbox_core::dhcp6::Snapshot>,
    /// What the engine holds for the port.
    pub lease: Option<Lease6>,
}

/// The IPv6 autoconfiguration of the box's ports.
#[derive(Debug, Default)]
pub struct Ipv6Auto {
    ports: Vec<PortAuto>,
}

impl Ipv6Auto {
    /// Keeps one `Autoconf` for each port of `config` that learns its IPv6 on its link
    /// (module doc), withdrawing what a dropped or remade one had put in force.
    pub fn follow(
        &mut self,
        shards: &mut dyn Shards,
        config: &Config,
        mac_of: impl Fn(PortId) -> Option<[u8; 6]>,
        now: u64,
    ) {
        let wanted = wanted(config);
        let mut kept = Vec::with_capacity(wanted.len());
        for p in std::mem::take(&mut self.ports) {
            if wanted.contains(&p.wanted) {
                kept.push(p);
            } else if p.applied.is_some() {
                shards.set_lease6(p.wanted.port, None);
                log::info!("{} port: IPv6 learned on the link withdrawn", p.wanted.role);
            }
        }
        for w in wanted {
            if kept.iter().any(|p| p.wanted == w) {
                continue;
            }
            let Some(mac) = mac_of(w.port) else {
                continue;
            };
            log::info!(
                "{} port: learning its IPv6 {}",
                w.role,
                match (w.mode.router, w.mode.slaac, w.dhcp) {
                    (true, true, _) => "router and address from Router Advertisements",
                    (true, false, true) => "router from Router Advertisements, address by DHCPv6",
                    (true, false, false) => "router from Router Advertisements",
                    (false, true, _) => "address from Router Advertisements",
                    (false, false, _) => "address by DHCPv6",
                }
            );
            kept.push(PortAuto {
                wanted: w,
                auto: Autoconf::new(Mac(mac), w.mode, super::dhcp4::seed(mac), now),
                dhcp6: w.dhcp.then(|| Dhcp6Port::new(mac, now)),
                applied: None,
            });
        }
        self.ports = kept;
    }

    /// Whether the autoconfigurations are those `config` asks for.
    pub fn in_step(&self, config: &Config) -> bool {
        let wanted = wanted(config);
        wanted.len() == self.ports.len() && self.ports.iter().all(|p| wanted.contains(&p.wanted))
    }

    /// What the shards must deliver.
    pub fn bindings(&self) -> impl Iterator<Item = Binding> + '_ {
        self.ports.iter().flat_map(|p| {
            let port = p.wanted.port;
            let dhcp = p.dhcp6.as_ref().map(|_| Binding::Dhcp6Client(port));
            std::iter::once(Binding::RouterAdverts(port)).chain(dhcp)
        })
    }

    /// Offers a delivered datagram; true if it was a Router Advertisement or a DHCPv6
    /// server message.
    pub fn receive(&mut self, ip: &[u8], now: u64) -> bool {
        let mut taken = false;
        for p in &mut self.ports {
            let dhcp = p.dhcp6.as_mut().is_some_and(|d| d.receive(ip, now));
            taken |= dhcp || p.auto.receive(now, ip);
        }
        taken
    }

    /// Runs the timers, does what the state machines ask and puts what they learnt in
    /// force.
    pub fn poll(&mut self, shards: &mut dyn Shards, now: u64) {
        for p in &mut self.ports {
            if p.auto.poll_timeout().is_some_and(|at| at <= now) {
                p.auto.handle_timeout(now);
            }
            while let Some(action) = p.auto.poll_action() {
                act(p, action, shards);
            }
            if let Some(d) = p.dhcp6.as_mut() {
                d.poll(p.wanted.port, p.wanted.role, shards, now);
            }
            let lease = p.lease();
            if p.applied != Some(lease) {
                let how = if p.wanted.dhcp { "DHCPv6" } else { "SLAAC" };
                log_change(p.wanted.role, how, p.applied, lease);
                shards.set_lease6(p.wanted.port, Some(lease));
                p.applied = Some(lease);
            }
        }
    }

    /// Each port's state, by role, for the shell.
    pub fn views(&self, now: u64) -> Vec<(&'static str, View)> {
        self.ports
            .iter()
            .map(|p| {
                let view = View {
                    address_from: match (p.wanted.mode.slaac, p.wanted.dhcp) {
                        (true, _) => Ipv6Setting::SLAAC,
                        (false, true) => Ipv6Setting::DHCP,
                        _ => "static",
                    },
                    auto: p.auto.snapshot(now),
                    dhcp6: p.dhcp6.as_ref().map(|d| d.snapshot(now)),
                    lease: p.applied,
                };
                (p.wanted.role, view)
            })
            .collect()
    }
}

/// Does one thing a port's autoconfiguration asked.
fn act(p: &mut PortAuto, action: Action, shards: &mut dyn Shards) {
    let (port, role) = (p.wanted.port, p.wanted.role);
    match action {
        Action::SolicitRouters => {
            if let Err(reason) = shards.solicit_routers(port) {
                log::debug!(
                    "{role} port: router solicitation not sent ({})",
                    reason.name()
                );
            }
        }
        Action::DadProbe(addr) => {
            shards.probe6(port, Some(addr));
        }
        Action::DadVerdict(addr) => {
            let conflict = shards.probe6(port, None);
            if conflict {
                log::warn!(
                    "{role} port: {addr}, formed from a Router Advertisement's prefix, is in \
                     use on the link (RFC 4862 duplicate address detection): not used"
                );
            }
            p.auto.dad_result(conflict);
        }
    }
}

fn log_change(role: &str, how: &str, old: Option<Lease6>, new: Lease6) {
    let old = old.unwrap_or_default();
    if old.router != new.router {
        match new.router {
            Some(r) => log::info!("{role} port: default IPv6 router {r} (Router Advertisement)"),
            None => log::warn!(
                "{role} port: default IPv6 router {} gone (lifetime ended or 0); no IPv6 \
                 default route",
                old.router.map_or_else(String::new, |r| r.to_string())
            ),
        }
    }
    if old.address != new.address {
        match new.address {
            Some(a) => log::info!("{role} port: IPv6 address {a} ({how})"),
            None => log::warn!(
                "{role} port: IPv6 address {} gone (valid lifetime ended, or lost)",
                old.address.map_or_else(String::new, |a| a.to_string())
            ),
        }
    }
}

/// The ports of `config` that learn their IPv6 on their link, and how.
fn wanted(config: &Config) -> Vec<Wanted> {
    if !config.ipv6.enabled {
        return Vec::new();
    }
    port::layout(config)
        .iter()
        .filter(|c| c.roles.outside)
        .map(|c| Wanted {
            port: c.id,
            role: c.roles.label(),
            mode: Mode {
                router: c.port.gateway6.is_none(),
                slaac: c.port.ipv6 == Some(Ipv6Setting::Slaac),
            },
            dhcp: c.port.ipv6 == Some(Ipv6Setting::Dhcp),
        })
        .filter(|w| w.mode.router || w.mode.slaac || w.dhcp)
        .collect()
}
