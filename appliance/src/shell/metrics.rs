//! Counters in the Prometheus text exposition format (version 0.0.4): every counter as
//! `natbox_<name>`, drops as `natbox_drops_total{reason="..."}`, ports in use per pool
//! address as `natbox_pool_ports_in_use{address,proto}`, the I/O layer's counters as
//! `natbox_io_<name>_total{port="..."}` (socket drops, GSO super-frames...).

use super::render::counters;
use super::Facts;
use crate::engine::stats::DropReason;
use crate::engine::stats::IoCounters;
use crate::engine::Engine;
use std::fmt::Write;

pub fn render(engine: &Engine, facts: &Facts) -> String {
    let mut out = String::new();
    for (name, value) in counters(engine) {
        let gauge = name == "sessions"
            || name == "ipv6_states"
            || name.starts_with("sessions_")
                && !name.ends_with("_created")
                && !name.ends_with("_expired");
        let kind = if gauge { "gauge" } else { "counter" };
        let _ = writeln!(out, "# TYPE natbox_{name} {kind}\nnatbox_{name} {value}");
    }
    let _ = writeln!(out, "# HELP natbox_drops_total Frames not forwarded, by reason.\n# TYPE natbox_drops_total counter");
    for reason in DropReason::ALL {
        let _ = writeln!(
            out,
            "natbox_drops_total{{reason=\"{}\"}} {}",
            reason.name(),
            engine.stats().drops_for(*reason)
        );
    }
    let io: Vec<_> = engine
        .ports()
        .map(|p| {
            let counters = facts.io.get(p.port.index()).copied();
            (p.roles.label(), counters.unwrap_or_default().named())
        })
        .collect();
    for (i, (name, _)) in IoCounters::default().named().iter().enumerate() {
        let _ = writeln!(out, "# TYPE natbox_io_{name}_total counter");
        for (label, named) in &io {
            let value = named[i].1;
            let _ = writeln!(out, "natbox_io_{name}_total{{port=\"{label}\"}} {value}");
        }
    }
    let _ = writeln!(out, "# TYPE natbox_pool_ports_in_use gauge");
    for (i, addr) in engine.nat().pool().iter().enumerate() {
        for (proto, n) in ["tcp", "udp", "icmp"]
            .iter()
            .zip(engine.nat().ports_in_use(i))
        {
            let _ = writeln!(
                out,
                "natbox_pool_ports_in_use{{address=\"{addr}\",proto=\"{proto}\"}} {n}"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PortSetup;
    use crate::wire::ethernet::Mac;

    /// Issue #16: a one-armed box renders its one port (both roles) as valid
    /// Prometheus metric names (`natbox_inside_outside_rx_packets`), and its I/O
    /// counters under the display label.
    #[test]
    fn one_armed_port_renders_valid_metric_names() {
        let toml = "[outside]\nport = \"seg0\"\nipv4 = \"10.10.0.1/24\"\n\
                    gateway4 = \"10.10.0.254\"\n[nat]\npool = [\"10.10.0.1\"]\n\
                    inside_prefixes = [\"10.10.0.0/25\"]\n";
        let config = firmware_config::from_toml(toml).unwrap();
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let engine = Engine::new(&config, &[PortSetup { mac }]);
        let facts = Facts {
            devices: vec!["seg0".into()],
            links: vec!["up"],
            now_ms: 0,
            io: vec![IoCounters::default()],
        };
        let out = render(&engine, &facts);
        assert!(
            out.contains("\nnatbox_inside_outside_rx_packets 0\n"),
            "{out}"
        );
        assert!(out.contains("natbox_io_socket_drops_total{port=\"inside+outside\"} 0"));
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "not a metric name: {line}"
            );
        }
    }
}
