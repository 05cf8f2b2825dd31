//! What the control plane asks of one engine shard, and what the shard answers: plain
//! data both ways, so a request can cross to the thread that owns the shard and the
//! answer come back, and the shell, the metrics and the services never hold an
//! `&Engine`.
//!
//! Contract: `Engine::answer` runs one `Request` between two batches of the shard's
//! packets and returns its `Answer`. Requests are bounded in the work they do (row
//! limits, drain counts), since a shard forwards nothing while it answers.
//!
//! Above the fast path the box is one box: a read is asked of every shard and the
//! answers merged (each `Answer` variant says how; the merge functions are here, pure),
//! a change is applied to every shard (broadcast). Two requests are the exception and
//! go to ONE shard, the one the caller sends them to: `Originate` (a datagram of the
//! box's own is sent once, not once per shard) and `EventsLost`. What every shard
//! derives from the same configuration (ports, routes, the configuration itself, the
//! source address toward a destination) is the same on every shard, so it is asked of
//! one.

use super::destinations::Report;
use super::fw6::StateInfo;
use super::lease::Lease4;
use super::lease6::Lease6;
use super::local::Binding;
use super::nat44::events::MappingEvent;
use super::nat44::forward::ForwardHits;
use super::nat44::SessionInfo;
use super::neigh::NeighbourInfo;
use super::policy::Hits;
use super::port::PortId;
use super::route::RouteInfo;
use super::stats::{DropReason, Stats};
use super::{port, Engine, PortInfo, Reconfigured, ETH};
use crate::engine::flow::track::Class;
use firmware_config::Config;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};

/// A question or a change for one shard.
#[derive(Debug, Clone)]
pub enum Request {
    /// The shard's counters.
    Stats,
    /// Apply a validated configuration (`Engine::reconfigure`). Broadcast.
    Reconfigure(Box<Config>),
    /// Sets or clears a port's DHCP lease (`Engine::set_lease4`). Broadcast.
    SetLease4 {
        port: PortId,
        lease: Option<Lease4>,
    },
    /// Sets or clears what a port learned on its link (`Engine::set_lease6`).
    /// Broadcast.
    SetLease6 {
        port: PortId,
        lease: Option<Lease6>,
    },
    /// The counters and the table gauges (`Counters`).
    Counters,
    /// The ports, as the shell shows them.
    Ports,
    /// NAT44 sessions matching the filter, at most `limit` of them.
    Sessions {
        filter: SessionFilter,
        limit: usize,
    },
    /// IPv6 states, at most `limit` of them.
    States6 {
        limit: usize,
    },
    /// Ports in use per pool address, and the `top` inside hosts by sessions.
    Pool {
        top: usize,
    },
    /// The IPv4 and IPv6 neighbour caches.
    Neighbours,
    Routes,
    /// The running configuration.
    Config,
    /// The box's address toward a destination (`Engine::source_for`).
    SourceFor(IpAddr),
    /// Which of the `count` ICMP echo identifiers from `first` on (wrapping) a NAT
    /// mapping on pool address `addr` uses.
    EchoIdentsTaken {
        addr: Ipv4Addr,
        first: u16,
        count: u16,
    },
    /// Takes up to `max` queued NAT events (`nat44::events`).
    Events {
        max: usize,
    },
    /// Takes up to `max` datagrams delivered to the box's services (`local`).
    Deliveries {
        max: usize,
    },
    /// Removes the sessions matching the filter. Broadcast.
    ClearSessions(SessionFilter),
    /// Zeroes the counters. Broadcast.
    ClearStats,
    /// Sends a datagram of the box's own (`Engine::originate`). To ONE shard: the one
    /// it is sent to answers, so the datagram leaves once.
    Originate(Vec<u8>),
    /// Sends an ARP probe for an address out of a port and watches for a conflict, or
    /// (`None`) stops watching (`Engine::probe4`). To ONE shard: the one ARP reaches.
    Probe4 {
        port: PortId,
        addr: Option<Ipv4Addr>,
    },
    /// Sends an IPv4 datagram of the box's own to the limited broadcast address out of
    /// a port (`Engine::broadcast4`). To ONE shard, as `Originate`.
    Broadcast4 {
        port: PortId,
        ip: Vec<u8>,
    },
    /// Sends a Router Solicitation out of a port (`Engine::solicit_routers`). To ONE
    /// shard, as `Originate`.
    SolicitRouters(PortId),
    /// Sends a Duplicate Address Detection solicitation for an address out of a port
    /// and watches for a conflict, or (`None`) stops watching (`Engine::probe6`). To
    /// ONE shard: the one Neighbor Discovery reaches.
    Probe6 {
        port: PortId,
        addr: Option<Ipv6Addr>,
    },
    /// Sends an IPv6 datagram of the box's own to a link-scope multicast group out of
    /// a port (`Engine::multicast6`). To ONE shard, as `Originate`.
    Multicast6 {
        port: PortId,
        ip: Vec<u8>,
    },
    /// Replaces what the box's services receive (`Engine::bind_local`). Broadcast.
    BindLocal(Vec<Binding>),
    /// Counts NAT events the services took but could not send. To ONE shard.
    EventsLost(u64),
    /// The egress policy's hit counters (`policy::Hits`).
    Policy,
    /// Takes up to `max` queued flow records (`flowlog`) of NAT44 and of the IPv6
    /// filter each.
    Flows {
        max: usize,
    },
    /// Counts what the services did with flow records (`lost` adds to `dropped`).
    /// To ONE shard.
    FlowsExported(crate::engine::flowlog::FlowCounters),
    /// The per-destination SLIs, IPv4 and IPv6 (`destinations::Report`).
    Destinations,
    /// The port forwards' counters (`nat44::forward::ForwardHits`, by forward).
    Forwards,
}

/// A shard's answer to a `Request`, variant for variant. Each says how the answers of
/// several shards merge.
#[derive(Debug)]
pub enum Answer {
    /// Sum (`Stats::merge`).
    Stats(Box<Stats>),
    /// What the change did to the shard's tables and sessions: the box rebuilt if any
    /// shard did, and the sessions ended add up (`Reconfigured::merge`).
    Reconfigured(Reconfigured),
    /// Sum (`Counters::add`).
    Counters(Box<Counters>),
    /// The same on every shard: asked of one (`ORIGIN_SHARD` in the appliance).
    Ports(Vec<PortInfo>),
    /// `Rows::merge`.
    Sessions(Rows<SessionInfo>),
    /// `Rows::merge`.
    States6(Rows<StateInfo>),
    /// `PoolUsage::merge`.
    Pool(PoolUsage),
    /// `Neighbours::merge`.
    Neighbours(Neighbours),
    /// The same on every shard: asked of one (`ORIGIN_SHARD` in the appliance).
    Routes(Vec<RouteInfo>),
    /// The same on every shard: asked of one (`ORIGIN_SHARD` in the appliance).
    Config(Box<Config>),
    /// The same on every shard: asked of one (`ORIGIN_SHARD` in the appliance).
    SourceFor(Option<IpAddr>),
    /// Taken if any shard uses it: the union.
    EchoIdentsTaken(Vec<u16>),
    /// Concatenated in shard order (each shard's in the order they were queued).
    Events(Vec<MappingEvent>),
    /// `Delivered::merge`.
    Deliveries(Vec<Delivered>),
    /// Sessions removed: sum.
    Cleared(usize),
    /// Answered by one shard only.
    Originated(Result<(), DropReason>),
    /// Whether the probe saw a conflict (ONE shard).
    Probed(bool),
    /// `Hits::merge`: sums rule by rule.
    Policy(Hits),
    /// Concatenated in shard order.
    Flows(FlowBatch),
    /// `Report::merge`.
    Destinations(Box<Report>),
    /// `merge_forward_hits`: sums forward by forward.
    Forwards(Vec<ForwardHits>),
    /// `ClearStats`, `BindLocal`, `EventsLost` done: nothing to merge.
    Done,
}

/// Which sessions `show sessions` and `clear sessions` mean: every given field must
/// match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// IP protocol number (6, 17, 1).
    pub proto: Option<u8>,
    pub inside: Option<Endpoint>,
    pub outside: Option<Endpoint>,
    pub remote: Option<Endpoint>,
}

/// An address, and a port unless any port matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: Ipv4Addr,
    pub port: Option<u16>,
}

impl Endpoint {
    fn matches(&self, got: &SocketAddrV4) -> bool {
        *got.ip() == self.addr && self.port.is_none_or(|p| p == got.port())
    }
}

impl SessionFilter {
    pub fn matches(&self, s: &SessionInfo) -> bool {
        let end = |want: &Option<Endpoint>, got| want.as_ref().is_none_or(|e| e.matches(got));
        self.proto.is_none_or(|p| p == s.proto)
            && end(&self.inside, &s.inside)
            && end(&self.outside, &s.outside)
            && end(&self.remote, &s.remote)
    }
}

/// Up to a limit of a shard's rows, and how many it has in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows<T> {
    pub rows: Vec<T>,
    pub total: usize,
}

impl<T> Rows<T> {
    /// The box's rows: the shards' in shard order, cut at `limit`; the totals sum.
    /// Deterministic for a given set of shard answers, and for one shard what it said.
    pub fn merge(parts: impl IntoIterator<Item = Rows<T>>, limit: usize) -> Rows<T> {
        let mut all = Rows {
            rows: Vec::new(),
            total: 0,
        };
        for part in parts {
            all.total += part.total;
            let room = limit.saturating_sub(all.rows.len());
            all.rows.extend(part.rows.into_iter().take(room));
        }
        all
    }
}

/// The counters and the gauges of the tables, for `show stats` and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    pub stats: Stats,
    pub sessions: u64,
    /// Sessions per class, by `Class::ALL`.
    pub session_classes: [u64; Class::COUNT],
    pub states6: u64,
    pub events_logged: u64,
    pub events_dropped: u64,
    /// Flow records (`flowlog`), NAT44's and the IPv6 filter's.
    pub flows: crate::engine::flowlog::FlowCounters,
}

/// Flow records a shard handed over, and its engine time (seconds) when it did: a
/// record's times are engine seconds, placed on the wall clock by the difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowBatch {
    pub now: u32,
    pub records: Vec<crate::engine::flowlog::FlowRecord>,
}

impl Counters {
    /// Every counter and gauge sums (each shard holds its own sessions and states).
    pub fn add(&mut self, other: &Counters) {
        self.stats.merge(&other.stats);
        self.sessions += other.sessions;
        for (mine, theirs) in self.session_classes.iter_mut().zip(other.session_classes) {
            *mine += theirs;
        }
        self.states6 += other.states6;
        self.events_logged += other.events_logged;
        self.events_dropped += other.events_dropped;
        self.flows.add(&other.flows);
    }
}

/// An inside host's share of the pool: (address, sessions, ports).
pub type HostUsage = (Ipv4Addr, u32, u32);

/// Ports (and ICMP identifiers) in use per pool address and protocol (TCP, UDP,
/// ICMP), and the inside hosts with the most sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    pub addresses: Vec<(Ipv4Addr, [u32; 3])>,
    /// Most sessions first, then by address.
    pub top_hosts: Vec<HostUsage>,
    /// Port blocks (`[port_block]`).
    pub blocks: crate::engine::nat44::BlockUsage,
}

impl PoolUsage {
    /// Ports in use sum per address (each shard owns a disjoint slice of the port
    /// range, so none is counted twice). A host's sessions and ports sum across the
    /// shards' top lists, re-ranked and cut at `top`: exact for one shard; for
    /// several, a host below some shard's top list is counted without that shard's
    /// share.
    pub fn merge(parts: impl IntoIterator<Item = PoolUsage>, top: usize) -> PoolUsage {
        let mut all = PoolUsage {
            addresses: Vec::new(),
            top_hosts: Vec::new(),
            blocks: Default::default(),
        };
        for part in parts {
            all.blocks.merge(part.blocks);
            for (addr, used) in part.addresses {
                match all.addresses.iter_mut().find(|(a, _)| *a == addr) {
                    Some((_, sum)) => sum.iter_mut().zip(used).for_each(|(s, u)| *s += u),
                    None => all.addresses.push((addr, used)),
                }
            }
            for (addr, sessions, ports) in part.top_hosts {
                match all.top_hosts.iter_mut().find(|(a, _, _)| *a == addr) {
                    Some((_, s, p)) => {
                        *s += sessions;
                        *p += ports;
                    }
                    None => all.top_hosts.push((addr, sessions, ports)),
                }
            }
        }
        all.top_hosts
            .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.top_hosts.truncate(top);
        all
    }
}

/// The neighbour caches of a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbours {
    pub v4: Vec<NeighbourInfo<Ipv4Addr>>,
    pub v6: Vec<NeighbourInfo<Ipv6Addr>>,
}

impl Neighbours {
    /// Every shard resolves on its own: one row per address and port, the most
    /// recently confirmed shard's entry (a resolved one before an incomplete one),
    /// with the datagrams waiting on it summed over the shards.
    pub fn merge(parts: impl IntoIterator<Item = Neighbours>) -> Neighbours {
        let mut all = Neighbours {
            v4: Vec::new(),
            v6: Vec::new(),
        };
        for part in parts {
            merge_neighbours(&mut all.v4, part.v4);
            merge_neighbours(&mut all.v6, part.v6);
        }
        all
    }
}

fn merge_neighbours<A: PartialEq>(all: &mut Vec<NeighbourInfo<A>>, part: Vec<NeighbourInfo<A>>) {
    for n in part {
        match all
            .iter_mut()
            .find(|m| m.addr == n.addr && m.port == n.port)
        {
            Some(m) => {
                let queued = m.queued + n.queued;
                if (n.mac.is_some(), std::cmp::Reverse(n.age_ms))
                    > (m.mac.is_some(), std::cmp::Reverse(m.age_ms))
                {
                    *m = n;
                }
                m.queued = queued;
            }
            None => all.push(n),
        }
    }
}

/// A datagram delivered to the box's services, and when it arrived (engine ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub ip: Vec<u8>,
    pub arrived_ms: u64,
}

impl Delivered {
    /// In order of arrival (stable: a shard's own order is kept).
    pub fn merge(parts: impl IntoIterator<Item = Vec<Delivered>>) -> Vec<Delivered> {
        let mut all: Vec<Delivered> = parts.into_iter().flatten().collect();
        all.sort_by_key(|d| d.arrived_ms);
        all
    }
}

impl Engine {
    /// Answers one control-plane request at engine time `now_ms`.
    pub fn answer(&mut self, request: &Request, now_ms: u64) -> Answer {
        let now = (now_ms / 1000) as u32;
        match request {
            Request::Stats => Answer::Stats(Box::new(self.stats().clone())),
            Request::Reconfigure(config) => Answer::Reconfigured(self.reconfigure(config)),
            Request::SetLease4 { port, lease } => {
                Answer::Reconfigured(self.set_lease4(*port, lease.clone()))
            }
            Request::SetLease6 { port, lease } => {
                Answer::Reconfigured(self.set_lease6(*port, *lease))
            }
            Request::Counters => Answer::Counters(Box::new(self.counters())),
            Request::Ports => Answer::Ports(self.ports().collect()),
            Request::Sessions { filter, limit } => Answer::Sessions(Rows {
                rows: self
                    .nat()
                    .sessions(now)
                    .filter(|s| filter.matches(s))
                    .take(*limit)
                    .collect(),
                total: self.nat().session_count(),
            }),
            Request::States6 { limit } => Answer::States6(Rows {
                rows: self.fw6().states(now).take(*limit).collect(),
                total: self.fw6().state_count(),
            }),
            Request::Pool { top } => Answer::Pool(self.pool_usage(*top)),
            Request::Neighbours => Answer::Neighbours(Neighbours {
                v4: self.neighbours4(now_ms),
                v6: self.neighbours6(now_ms),
            }),
            Request::Routes => Answer::Routes(self.routes().list()),
            Request::Config => Answer::Config(Box::new(self.config().clone())),
            Request::SourceFor(dst) => Answer::SourceFor(self.source_for(*dst)),
            Request::EchoIdentsTaken { addr, first, count } => Answer::EchoIdentsTaken(
                (0..*count)
                    .map(|i| first.wrapping_add(i))
                    .filter(|ident| self.nat().echo_ident_taken(*addr, *ident))
                    .collect(),
            ),
            Request::Events { max } => Answer::Events(
                (0..*max)
                    .map_while(|_| self.nat_mut().events_mut().pop())
                    .collect(),
            ),
            Request::Deliveries { max } => {
                // What an engine buffer holds: no delivered datagram is longer.
                let mut buf = vec![0; ETH + port::max_mtu(self.config())];
                Answer::Deliveries(
                    (0..*max)
                        .map_while(|_| {
                            let d = self.pop_local(&mut buf)?;
                            Some(Delivered {
                                ip: buf.get(..d.len)?.to_vec(),
                                arrived_ms: d.arrived_ms,
                            })
                        })
                        .collect(),
                )
            }
            Request::ClearSessions(filter) => {
                Answer::Cleared(self.nat_mut().clear(now, |s| filter.matches(s)))
            }
            Request::ClearStats => {
                self.clear_stats();
                Answer::Done
            }
            Request::Originate(ip) => Answer::Originated(self.originate(ip, now_ms)),
            Request::Probe4 { port, addr } => Answer::Probed(self.probe4(*port, *addr)),
            Request::Broadcast4 { port, ip } => {
                Answer::Originated(self.broadcast4(*port, ip, now_ms))
            }
            Request::SolicitRouters(port) => Answer::Originated(self.solicit_routers(*port)),
            Request::Probe6 { port, addr } => Answer::Probed(self.probe6(*port, *addr)),
            Request::Multicast6 { port, ip } => {
                Answer::Originated(self.multicast6(*port, ip, now_ms))
            }
            Request::BindLocal(bindings) => {
                self.bind_local(bindings);
                Answer::Done
            }
            Request::EventsLost(n) => {
                self.nat_mut().events_mut().dropped += n;
                Answer::Done
            }
            Request::Policy => Answer::Policy(self.policy().hits()),
            Request::Flows { max } => {
                let mut records: Vec<_> = (0..*max)
                    .map_while(|_| self.nat_mut().flows_mut().pop())
                    .collect();
                records.extend((0..*max).map_while(|_| self.fw6_mut().flows_mut().pop()));
                Answer::Flows(FlowBatch { now, records })
            }
            Request::FlowsExported(c) => {
                self.nat_mut().flows_mut().counters.add(c);
                Answer::Done
            }
            Request::Destinations => {
                let report = Report::merge([self.nat().destinations(), self.fw6().destinations()]);
                Answer::Destinations(Box::new(report))
            }
            Request::Forwards => Answer::Forwards(self.nat().forward_hits().to_vec()),
        }
    }
}

/// Several shards' forward counters as the box's: summed forward by forward.
pub fn merge_forward_hits(all: impl Iterator<Item = Vec<ForwardHits>>) -> Vec<ForwardHits> {
    let mut sum: Vec<ForwardHits> = Vec::new();
    for shard in all {
        if sum.len() < shard.len() {
            sum.resize(shard.len(), ForwardHits::default());
        }
        for (s, h) in sum.iter_mut().zip(shard) {
            s.hits += h.hits;
            s.refused += h.refused;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PortId;

    fn session(inside: &str, remote: &str) -> SessionInfo {
        SessionInfo {
            proto: 17,
            inside: inside.parse().unwrap(),
            outside: "198.51.100.10:1024".parse().unwrap(),
            remote: remote.parse().unwrap(),
            state: "udp",
            class: Class::ALL[0],
            idle: 0,
            expires: 300,
        }
    }

    #[test]
    fn session_filter_matches_every_given_field() {
        let s = session("10.10.0.2:4000", "203.0.113.5:53");
        let host = |port| Endpoint {
            addr: "10.10.0.2".parse().unwrap(),
            port,
        };
        assert!(SessionFilter::default().matches(&s));
        let mut f = SessionFilter {
            proto: Some(17),
            inside: Some(host(None)),
            ..Default::default()
        };
        assert!(f.matches(&s));
        f.inside = Some(host(Some(4001)));
        assert!(!f.matches(&s), "another port");
        f.inside = Some(host(Some(4000)));
        f.proto = Some(6);
        assert!(!f.matches(&s), "another protocol");
    }

    #[test]
    fn rows_of_two_shards_keep_shard_order_cut_at_the_limit_and_sum_totals() {
        let a = Rows {
            rows: vec![1, 2],
            total: 5,
        };
        let b = Rows {
            rows: vec![3, 4],
            total: 2,
        };
        assert_eq!(
            Rows::merge([a.clone(), b.clone()], 3),
            Rows {
                rows: vec![1, 2, 3],
                total: 7
            }
        );
        assert_eq!(Rows::merge([a, b], 10).rows, vec![1, 2, 3, 4]);
    }

    #[test]
    fn pool_usage_of_two_shards_sums_ports_per_address_and_reranks_hosts() {
        let (p1, p2): (Ipv4Addr, Ipv4Addr) = (
            "198.51.100.10".parse().unwrap(),
            "198.51.100.11".parse().unwrap(),
        );
        let (h1, h2, h3): (Ipv4Addr, Ipv4Addr, Ipv4Addr) = (
            "10.10.0.1".parse().unwrap(),
            "10.10.0.2".parse().unwrap(),
            "10.10.0.3".parse().unwrap(),
        );
        let a = PoolUsage {
            addresses: vec![(p1, [1, 2, 0]), (p2, [0, 1, 0])],
            top_hosts: vec![(h1, 3, 3), (h2, 1, 1)],
            blocks: Default::default(),
        };
        let b = PoolUsage {
            addresses: vec![(p1, [4, 0, 1]), (p2, [0, 0, 2])],
            top_hosts: vec![(h2, 3, 2), (h3, 2, 2)],
            blocks: Default::default(),
        };
        let all = PoolUsage::merge([a, b], 2);
        assert_eq!(all.addresses, vec![(p1, [5, 2, 1]), (p2, [0, 1, 2])]);
        assert_eq!(all.top_hosts, vec![(h2, 4, 3), (h1, 3, 3)]);
    }

    #[test]
    fn counters_of_two_shards_sum() {
        let mut a = Counters {
            stats: Stats::default(),
            sessions: 2,
            session_classes: [1; Class::COUNT],
            states6: 1,
            events_logged: 3,
            events_dropped: 0,
            flows: Default::default(),
        };
        let mut b = a.clone();
        b.stats.sessions_created = 2;
        b.events_dropped = 1;
        b.flows.dropped = 5;
        a.add(&b);
        assert_eq!(a.flows.dropped, 5);
        assert_eq!((a.sessions, a.states6, a.events_logged), (4, 2, 6));
        assert_eq!((a.stats.sessions_created, a.events_dropped), (2, 1));
        assert_eq!(a.session_classes, [2; Class::COUNT]);
    }

    #[test]
    fn neighbours_of_two_shards_keep_one_row_per_address_the_freshest() {
        let n = |addr: &str, mac: Option<u8>, age_ms, queued| NeighbourInfo {
            addr: addr.parse::<Ipv4Addr>().unwrap(),
            port: PortId(0),
            mac: mac.map(|m| crate::wire::ethernet::Mac([2, 0, 0, 0, 0, m])),
            state: if mac.is_some() {
                "reachable"
            } else {
                "incomplete"
            },
            age_ms,
            queued,
        };
        let a = Neighbours {
            v4: vec![n("10.10.0.2", None, 0, 2), n("10.10.0.3", Some(3), 900, 0)],
            v6: Vec::new(),
        };
        let b = Neighbours {
            v4: vec![
                n("10.10.0.2", Some(2), 500, 1),
                n("10.10.0.3", Some(3), 100, 0),
            ],
            v6: Vec::new(),
        };
        let all = Neighbours::merge([a, b]);
        assert_eq!(
            all.v4,
            vec![
                n("10.10.0.2", Some(2), 500, 3),
                n("10.10.0.3", Some(3), 100, 0)
            ]
        );
    }

    #[test]
    fn deliveries_of_two_shards_come_in_order_of_arrival() {
        let d = |b: u8, arrived_ms| Delivered {
            ip: vec![b],
            arrived_ms,
        };
        let all = Delivered::merge([vec![d(1, 10), d(2, 30)], vec![d(3, 20), d(4, 30)]]);
        assert_eq!(all, vec![d(1, 10), d(3, 20), d(2, 30), d(4, 30)]);
    }
}
