//! The control plane's way to the engine shards: it sends each a `Request` and
//! collects their `Answer`s (`natbox_core::engine::control`), and never touches an
//! engine itself.
//!
//! `Inline` is one shard the caller owns (tests, tools, and the dataplane's own tick);
//! the workers' handle implements the same trait across threads.
//!
//! `Snapshots` is what the shell, the metrics and the services read and change the box
//! through, as one box: a read asks every shard and merges the answers with the merge
//! function of its `Answer` variant; a change is broadcast. The box's own datagrams
//! (`Request::Originate`) and the count of NAT events lost on the way out go to ONE
//! shard, `ORIGIN_SHARD`, through `ask_one`, and so do reads of what every shard
//! derives from the same configuration (the configuration, ports, routes, source
//! addresses). An answer of another variant than the
//! request's would be a bug of the shard's; it is left out of the merge.

use crate::engine::control::merge_forward_hits;
use crate::engine::control::{
    Answer, Counters, Delivered, FlowBatch, Neighbours, PoolUsage, Request, Rows, SessionFilter,
};
use crate::engine::destinations::Report;
use crate::engine::flowlog::FlowCounters;
use crate::engine::fw6::StateInfo;
use crate::engine::lease::Lease4;
use crate::engine::lease6::Lease6;
use crate::engine::local::Binding;
use crate::engine::nat44::events::MappingEvent;
use crate::engine::nat44::forward::ForwardHits;
use crate::engine::nat44::SessionInfo;
use crate::engine::policy::Hits;
use crate::engine::route::RouteInfo;
use crate::engine::stats::DropReason;
use crate::engine::{Engine, PortId, PortInfo, Reconfigured};
use firmware_config::Config;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every engine shard of the box, as the control plane reaches them.
pub trait Shards {
    /// How many shards there are.
    fn count(&self) -> usize;
    /// Runs `request` on every shard and returns their answers, in shard order.
    fn ask(&mut self, request: &Request) -> Vec<Answer>;
    /// Runs `request` on shard `shard` alone (`Request::Originate`, `EventsLost`);
    /// `None` if the shard did not answer (a worker that is stuck or gone).
    fn ask_one(&mut self, shard: usize, request: &Request) -> Option<Answer>;
}

/// The shard that sends the box's own datagrams.
pub const ORIGIN_SHARD: usize = 0;

/// One engine, answered in place, at engine time `now_ms`.
#[derive(Debug)]
pub struct Inline<'a> {
    pub engine: &'a mut Engine,
    pub now_ms: u64,
}

impl Shards for Inline<'_> {
    fn count(&self) -> usize {
        1
    }

    fn ask(&mut self, request: &Request) -> Vec<Answer> {
        vec![self.engine.answer(request, self.now_ms)]
    }

    fn ask_one(&mut self, _shard: usize, request: &Request) -> Option<Answer> {
        Some(self.engine.answer(request, self.now_ms))
    }
}

/// The answers of variant `$variant`, in shard order.
macro_rules! answers {
    ($shards:expr, $request:expr, $variant:ident) => {
        $shards.ask(&$request).into_iter().filter_map(|a| match a {
            Answer::$variant(x) => Some(x),
            _ => None,
        })
    };
}

/// The answer of variant `$variant` from `ORIGIN_SHARD` alone: for what every shard
/// derives from the same configuration (the configuration, ports, routes, source
/// addresses), which asking every shard would only compute again, each a round trip
/// to another worker.
macro_rules! answer_of_one {
    ($shards:expr, $request:expr, $variant:ident) => {
        match $shards.ask_one(ORIGIN_SHARD, &$request) {
            Some(Answer::$variant(x)) => Some(x),
            _ => None,
        }
    };
}

/// The box's state and changes, merged over every shard (module doc).
pub trait Snapshots: Shards {
    /// The running configuration.
    fn config(&mut self) -> Option<Config> {
        answer_of_one!(self, Request::Config, Config).map(|c| *c)
    }

    fn ports(&mut self) -> Vec<PortInfo> {
        answer_of_one!(self, Request::Ports, Ports).unwrap_or_default()
    }

    fn routes(&mut self) -> Vec<RouteInfo> {
        answer_of_one!(self, Request::Routes, Routes).unwrap_or_default()
    }

    /// The counters and gauges, summed; `None` if no shard answered.
    fn counters(&mut self) -> Option<Counters> {
        answers!(self, Request::Counters, Counters)
            .reduce(|mut all, c| {
                all.add(&c);
                all
            })
            .map(|all| *all)
    }

    /// Each shard's own counters, in shard order (not merged: `show workers`).
    fn shard_counters(&mut self) -> Vec<Counters> {
        answers!(self, Request::Counters, Counters)
            .map(|c| *c)
            .collect()
    }

    fn sessions(&mut self, filter: &SessionFilter, limit: usize) -> Rows<SessionInfo> {
        let request = Request::Sessions {
            filter: filter.clone(),
            limit,
        };
        Rows::merge(answers!(self, request, Sessions), limit)
    }

    fn states6(&mut self, limit: usize) -> Rows<StateInfo> {
        Rows::merge(answers!(self, Request::States6 { limit }, States6), limit)
    }

    fn pool(&mut self, top: usize) -> PoolUsage {
        PoolUsage::merge(answers!(self, Request::Pool { top }, Pool), top)
    }

    /// The egress policy's hit counters, summed rule by rule.
    fn policy_hits(&mut self) -> Hits {
        Hits::merge(answers!(self, Request::Policy, Policy))
    }

    /// The per-destination SLIs, merged (`destinations::Report::merge`).
    fn destinations(&mut self) -> Report {
        Report::merge(answers!(self, Request::Destinations, Destinations).map(|r| *r))
    }

    /// The port forwards' counters, summed forward by forward.
    fn forward_hits(&mut self) -> Vec<ForwardHits> {
        merge_forward_hits(answers!(self, Request::Forwards, Forwards))
    }

    fn neighbours(&mut self) -> Neighbours {
        Neighbours::merge(answers!(self, Request::Neighbours, Neighbours))
    }

    /// The box's address toward `dst`.
    fn source_for(&mut self, dst: IpAddr) -> Option<IpAddr> {
        answer_of_one!(self, Request::SourceFor(dst), SourceFor).flatten()
    }

    /// Which of the `count` echo identifiers from `first` on (wrapping) some shard's
    /// NAT mapping on `addr` uses, sorted.
    fn echo_idents_taken(&mut self, addr: Ipv4Addr, first: u16, count: u16) -> Vec<u16> {
        let request = Request::EchoIdentsTaken { addr, first, count };
        let mut taken: Vec<u16> = answers!(self, request, EchoIdentsTaken).flatten().collect();
        taken.sort_unstable();
        taken.dedup();
        taken
    }

    /// Takes queued NAT events, at most `max` from each shard.
    fn events(&mut self, max: usize) -> Vec<MappingEvent> {
        answers!(self, Request::Events { max }, Events)
            .flatten()
            .collect()
    }

    /// Takes datagrams delivered to the services, at most `max` from each shard.
    fn deliveries(&mut self, max: usize) -> Vec<Delivered> {
        Delivered::merge(answers!(self, Request::Deliveries { max }, Deliveries))
    }

    /// Applies `config` on every shard; what it did, summed over the shards.
    fn reconfigure(&mut self, config: &Config) -> Reconfigured {
        answers!(
            self,
            Request::Reconfigure(Box::new(config.clone())),
            Reconfigured
        )
        .fold(Reconfigured::default(), Reconfigured::merge)
    }

    /// Sets or clears port `port`'s DHCP lease on every shard.
    fn set_lease4(&mut self, port: PortId, lease: Option<Lease4>) -> Reconfigured {
        answers!(
            self,
            Request::SetLease4 {
                port,
                lease: lease.clone()
            },
            Reconfigured
        )
        .fold(Reconfigured::default(), Reconfigured::merge)
    }

    /// Sets or clears what port `port` learned on its link, on every shard.
    fn set_lease6(&mut self, port: PortId, lease: Option<Lease6>) -> Reconfigured {
        answers!(self, Request::SetLease6 { port, lease }, Reconfigured)
            .fold(Reconfigured::default(), Reconfigured::merge)
    }

    /// Sends a Router Solicitation out of `port`, through `ORIGIN_SHARD`.
    fn solicit_routers(&mut self, port: PortId) -> Result<(), DropReason> {
        match self.ask_one(ORIGIN_SHARD, &Request::SolicitRouters(port)) {
            Some(Answer::Originated(result)) => result,
            _ => Err(DropReason::NoRoute),
        }
    }

    /// Sends a Duplicate Address Detection solicitation for `addr` out of `port` (or,
    /// `None`, stops watching) on `ORIGIN_SHARD`, which every Neighbor Discovery
    /// frame reaches; whether a conflict was seen.
    fn probe6(&mut self, port: PortId, addr: Option<Ipv6Addr>) -> bool {
        matches!(
            self.ask_one(ORIGIN_SHARD, &Request::Probe6 { port, addr }),
            Some(Answer::Probed(true))
        )
    }

    /// Sends an IPv6 datagram of the box's own to a link-scope multicast group out of
    /// `port`, through `ORIGIN_SHARD`.
    fn multicast6(&mut self, port: PortId, ip: Vec<u8>) -> Result<(), DropReason> {
        match self.ask_one(ORIGIN_SHARD, &Request::Multicast6 { port, ip }) {
            Some(Answer::Originated(result)) => result,
            _ => Err(DropReason::NoRoute),
        }
    }

    /// Sends an ARP probe for `addr` out of `port` (or, `None`, stops watching) on
    /// `ORIGIN_SHARD`, which every ARP frame reaches; whether a conflict was seen.
    fn probe4(&mut self, port: PortId, addr: Option<Ipv4Addr>) -> bool {
        matches!(
            self.ask_one(ORIGIN_SHARD, &Request::Probe4 { port, addr }),
            Some(Answer::Probed(true))
        )
    }

    /// Sends an IPv4 datagram of the box's own to the limited broadcast address out of
    /// `port`, through `ORIGIN_SHARD`.
    fn broadcast4(&mut self, port: PortId, ip: Vec<u8>) -> Result<(), DropReason> {
        match self.ask_one(ORIGIN_SHARD, &Request::Broadcast4 { port, ip }) {
            Some(Answer::Originated(result)) => result,
            _ => Err(DropReason::NoRoute),
        }
    }

    /// Removes the matching sessions from every shard; how many.
    fn clear_sessions(&mut self, filter: &SessionFilter) -> usize {
        answers!(self, Request::ClearSessions(filter.clone()), Cleared).sum()
    }

    fn clear_stats(&mut self) {
        self.ask(&Request::ClearStats);
    }

    fn bind_local(&mut self, bindings: &[Binding]) {
        self.ask(&Request::BindLocal(bindings.to_vec()));
    }

    /// Sends a datagram of the box's own, through `ORIGIN_SHARD`.
    fn originate(&mut self, ip: Vec<u8>) -> Result<(), DropReason> {
        match self.ask_one(ORIGIN_SHARD, &Request::Originate(ip)) {
            Some(Answer::Originated(result)) => result,
            _ => Err(DropReason::NoRoute),
        }
    }

    /// Takes queued flow records, at most `max` of NAT44's and of the IPv6 filter's
    /// from each shard.
    fn flows(&mut self, max: usize) -> Vec<FlowBatch> {
        answers!(self, Request::Flows { max }, Flows).collect()
    }

    /// Counts what the services did with flow records (on `ORIGIN_SHARD`).
    fn flows_exported(&mut self, counters: FlowCounters) {
        if counters != FlowCounters::default() {
            self.ask_one(ORIGIN_SHARD, &Request::FlowsExported(counters));
        }
    }

    /// Counts `n` NAT events taken but not sent (on `ORIGIN_SHARD`).
    fn events_lost(&mut self, n: u64) {
        if n > 0 {
            self.ask_one(ORIGIN_SHARD, &Request::EventsLost(n));
        }
    }
}

impl<S: Shards + ?Sized> Snapshots for S {}
