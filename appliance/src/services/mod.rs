//! The box's own services on the data ports, beside forwarding: the Prometheus
//! metrics responder (`http`), `ping` from the box (`ping`), the NAT event log to
//! a remote syslog collector (`syslog`), the DHCPv4 clients of the ports whose
//! address comes by DHCP (`dhcp4`), the outside port's IPv6 on its link (`ipv6`:
//! its router from Router Advertisements, its address by SLAAC or by DHCPv6,
//! `dhcp6`), and at boot the search for the configuration in the cloud's metadata
//! (`metadata`, over `fetch` and `tcp`).
//!
//! They run on the control tick, between dataplane batches, and reach the network
//! only through the engine shards (`control::shards::Snapshots`): they bind what they
//! receive on every shard (`engine::local`, `Request::BindLocal`), drain the datagrams
//! delivered to them and the NAT events from every shard, and send through one shard
//! (`Request::Originate`), from the box's own address toward each destination's
//! route. Work per tick is bounded (`EVENTS_PER_TICK`, the deliveries a shard queues,
//! the responder's connection limit and each connection's lifetime, the ping job
//! limit).

pub mod dhcp4;
pub mod dhcp6;
pub mod fetch;
pub mod flowexport;
pub mod flowtext;
pub mod http;
pub mod ipfix;
pub mod ipv6;
pub mod metadata;
pub mod packet;
pub mod ping;
pub mod syslog;
pub mod tcp;

use crate::control::shards::{Shards, Snapshots};
use crate::engine::local::{self, Binding};
use firmware_config::Config;
use std::time::SystemTime;

/// NAT events sent per tick at most (the tick is 100 ms): the rest wait in the
/// engine's bounded queue. Also bounds how many engine buffers the log can hold.
pub const EVENTS_PER_TICK: usize = 200;
/// The services of one box.
#[derive(Debug, Default)]
pub struct Services {
    metrics: Option<http::MetricsServer>,
    pub pings: ping::Pings,
    pub dhcp4: dhcp4::Dhcp4,
    pub ipv6: ipv6::Ipv6Auto,
    /// The boot-time search for the configuration in the cloud's metadata, while it runs.
    pub metadata: Option<metadata::Metadata>,
    /// What the shards were last asked to deliver to the services.
    bound: Vec<Binding>,
    /// Flow records to their collectors.
    pub flows: flowexport::FlowExport,
}

impl Services {
    /// One round of every service, as the running `config` says. `render_metrics`
    /// produces the metrics text.
    pub fn tick(
        &mut self,
        shards: &mut dyn Shards,
        config: &Config,
        now: u64,
        render_metrics: &mut dyn FnMut(&mut dyn Shards) -> String,
    ) {
        self.follow_config(shards, config, now);
        for d in shards.deliveries(local::QUEUE) {
            let metadata = self.metadata.as_mut();
            if !self.dhcp4.receive(&d.ip, now)
                && !self.ipv6.receive(&d.ip, now)
                && !self.pings.receive(&d.ip, d.arrived_ms)
                && !metadata.is_some_and(|m| m.receive(&d.ip))
            {
                if let Some(m) = self.metrics.as_mut() {
                    m.receive(&d.ip);
                }
            }
        }
        self.dhcp4.poll(shards, now);
        self.ipv6.poll(shards, now);
        if let Some(m) = self.metadata.as_mut() {
            m.poll(shards, now);
        }
        self.pings.poll(shards, now);
        if let Some(m) = self.metrics.as_mut() {
            for ip in m.poll(now, &mut || render_metrics(shards)) {
                let _ = shards.originate(ip);
            }
        }
        // Again after the services ran: a connection the metadata search opened this
        // tick is bound before its SYN's answer can arrive (requests reach a shard in
        // order, before it receives again), not a tick later.
        self.bind(shards, config);
        send_events(shards, config);
        self.flows.tick(shards, config, now);
    }

    /// Starts, moves or stops the metrics responder and the DHCP clients as the
    /// configuration says, and binds what they receive.
    fn follow_config(&mut self, shards: &mut dyn Shards, config: &Config, now: u64) {
        let listen = config.metrics.listen;
        if self.metrics.as_ref().map(http::MetricsServer::listen) != listen {
            self.metrics = listen.map(|addr| {
                let mtu = usize::from(config.inside_port().mtu);
                log::info!("metrics served on http://{addr}/metrics");
                http::MetricsServer::new(addr, mtu, now)
            });
        }
        if !self.dhcp4.in_step(config) || !self.ipv6.in_step(config) {
            let ports = shards.ports();
            let mac_of = |id| ports.iter().find(|p| p.port == id).map(|p| p.mac.0);
            self.dhcp4.follow(config, mac_of, now);
            self.ipv6.follow(shards, config, mac_of, now);
        }
        self.bind(shards, config);
    }

    /// Keeps the shards' bindings in step with the services (a change is sent to every
    /// shard; the shards keep their bindings across reconfigurations).
    fn bind(&mut self, shards: &mut dyn Shards, config: &Config) {
        let wanted: Vec<Binding> = config
            .metrics
            .listen
            .map(Binding::TcpInside)
            .into_iter()
            .chain(self.pings.bindings())
            .chain(self.dhcp4.bindings())
            .chain(self.metadata.as_ref().and_then(metadata::Metadata::binding))
            .chain(self.ipv6.bindings())
            .collect();
        if self.bound != wanted {
            shards.bind_local(&wanted);
            self.bound = wanted;
        }
    }
}

/// Sends queued NAT events to the collector, if one is configured: at most
/// `EVENTS_PER_TICK` over all the shards.
fn send_events(shards: &mut dyn Shards, config: &Config) {
    let Some(collector) = config.log.syslog else {
        return;
    };
    let Some(src) = shards.source_for(collector.ip()) else {
        return;
    };
    let at = SystemTime::now();
    let per_shard = EVENTS_PER_TICK / shards.count().max(1);
    let mut lost = 0;
    for event in shards.events(per_shard) {
        let message = syslog::format(&event, at, &config.hostname);
        let sent = packet::udp(
            src,
            collector.ip(),
            syslog::SOURCE_PORT,
            collector.port(),
            message.as_bytes(),
        )
        .is_some_and(|ip| shards.originate(ip).is_ok());
        if !sent {
            lost += 1;
        }
    }
    shards.events_lost(lost);
}
