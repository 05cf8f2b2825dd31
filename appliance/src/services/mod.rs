//! The box's own services on the data ports, beside forwarding: the Prometheus
//! metrics responder (`http`), `ping` from the box (`ping`) and the NAT event log to
//! a remote syslog collector (`syslog`).
//!
//! They run on the control tick, between dataplane batches, and reach the network
//! only through the engine: they bind what they receive (`engine::local`), drain the
//! datagrams delivered to them and the NAT events, and send with
//! `Engine::originate`, from the box's own address toward each destination's route.
//! Work per tick is bounded (`EVENTS_PER_TICK`, the responder's connection limit and
//! each connection's lifetime, the ping job limit).

pub mod http;
pub mod packet;
pub mod ping;
pub mod syslog;

use crate::engine::local::Binding;
use crate::engine::Engine;
use std::time::SystemTime;

/// NAT events sent per tick at most (the tick is 100 ms): the rest wait in the
/// engine's bounded queue. Also bounds how many engine buffers the log can hold.
pub const EVENTS_PER_TICK: usize = 200;
/// Largest datagram delivered to a service.
const MAX_DATAGRAM: usize = 9216;

/// The services of one box.
#[derive(Debug)]
pub struct Services {
    metrics: Option<http::MetricsServer>,
    pub pings: ping::Pings,
    scratch: Vec<u8>,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            metrics: None,
            pings: ping::Pings::default(),
            scratch: vec![0; MAX_DATAGRAM],
        }
    }
}

impl Services {
    /// One round of every service. `render_metrics` produces the metrics text.
    pub fn tick(
        &mut self,
        engine: &mut Engine,
        now: u64,
        render_metrics: &mut dyn FnMut(&Engine) -> String,
    ) {
        self.follow_config(engine, now);
        while let Some(d) = engine.pop_local(&mut self.scratch) {
            let ip = &self.scratch[..d.len];
            if !self.pings.receive(ip, d.arrived_ms) {
                if let Some(m) = self.metrics.as_mut() {
                    m.receive(ip);
                }
            }
        }
        self.pings.poll(engine, now);
        if let Some(m) = self.metrics.as_mut() {
            let out = {
                let e: &Engine = engine;
                m.poll(now, &mut || render_metrics(e))
            };
            for ip in out {
                let _ = engine.originate(&ip, now);
            }
        }
        send_events(engine, now);
    }

    /// Starts, moves or stops the metrics responder as the configuration says, and
    /// keeps the engine's bindings in step with the services.
    fn follow_config(&mut self, engine: &mut Engine, now: u64) {
        let listen = engine.config().metrics.listen;
        if self.metrics.as_ref().map(http::MetricsServer::listen) != listen {
            self.metrics = listen.map(|addr| {
                let mtu = usize::from(engine.config().inside_port().mtu);
                log::info!("metrics served on http://{addr}/metrics");
                http::MetricsServer::new(addr, mtu, now)
            });
        }
        let wanted: Vec<Binding> = listen
            .map(Binding::TcpInside)
            .into_iter()
            .chain(self.pings.bindings())
            .collect();
        if engine.local_bindings() != wanted.as_slice() {
            engine.bind_local(&wanted);
        }
    }
}

/// Sends queued NAT events to the collector, if one is configured.
fn send_events(engine: &mut Engine, now: u64) {
    let Some(collector) = engine.config().log.syslog else {
        return;
    };
    let Some(src) = engine.source_for(collector.ip()) else {
        return;
    };
    let hostname = engine.config().hostname.clone();
    let at = SystemTime::now();
    for _ in 0..EVENTS_PER_TICK {
        let Some(event) = engine.nat_mut().events_mut().pop() else {
            break;
        };
        let message = syslog::format(&event, at, &hostname);
        let sent = packet::udp(
            src,
            collector.ip(),
            syslog::SOURCE_PORT,
            collector.port(),
            message.as_bytes(),
        )
        .is_some_and(|ip| engine.originate(&ip, now).is_ok());
        if !sent {
            engine.nat_mut().events_mut().dropped += 1;
        }
    }
}
