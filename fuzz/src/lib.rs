//! What the engine's fuzz targets share: a small engine on the example configuration
//! (two ports) or on the one-armed e2e configuration (one port with both roles), their
//! record format `[control, len_hi, len_lo, head (HEAD bytes), frame...]`, where bit 0
//! of `control` picks the port (one-armed: always the one) and the rest advances the
//! virtual clock in 100 ms steps before the frame, and the loop that feeds the records
//! to the engine.

use firmware_config::Config;
use natbox_core::engine::local::Binding;
use natbox_core::engine::{Engine, Frame, PortId, PortSetup, Verdict};
use natbox_core::wire::ethernet::Mac;

/// Which configuration a target's engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The example configuration: `[inside]` and `[outside]`.
    TwoPort,
    /// The one-armed e2e configuration: `[outside]` alone.
    OneArmed,
}

/// The egress policy the engine targets run with: rejects (a TCP RST, ICMP
/// administratively prohibited) and denials that fuzzed frames can reach, while the
/// seeds' flows (to 203.0.113.5 and 2001:db8:77::5) stay allowed.
const POLICY: &str = r#"
[policy]
[[policy.rule]]
action = "reject"
protocol = "tcp"
port = "20-25"
[[policy.rule]]
action = "reject"
protocol = "udp"
port = 9
[[policy.rule]]
action = "reject"
destination = "192.0.2.0/24"
[[policy.rule]]
action = "reject"
destination = "2001:db8:dead::/48"
[[policy.rule]]
action = "deny"
destination = "198.18.0.0/15"
"#;

/// An engine for the example configuration, with small tables.
pub fn engine() -> Engine {
    engine_with(Layout::TwoPort)
}

/// An engine for `layout`'s configuration, with small tables.
pub fn engine_with(layout: Layout) -> Engine {
    let toml = match layout {
        Layout::TwoPort => include_str!("../../natbox.toml"),
        Layout::OneArmed => include_str!("../../tests/e2e/natbox-one-armed.toml"),
    };
    let config =
        firmware_config::from_toml(&format!("{toml}\n{POLICY}")).expect("checked-in config");
    let mut engine = engine_for(&config);
    // The services' side too: DHCPv4 and DHCPv6 clients and IPv6 autoconfiguration
    // bound on the outside port, an ARP probe and a DAD probe under way, so that their
    // paths see every frame.
    let outside = PortId(u8::try_from(config.ports().count() - 1).expect("a port or two"));
    engine.bind_local(&[
        Binding::Dhcp4Client(outside),
        Binding::RouterAdverts(outside),
        Binding::Dhcp6Client(outside),
    ]);
    engine.probe4(outside, Some(std::net::Ipv4Addr::new(198, 51, 100, 77)));
    engine.probe6(outside, Some("2001:db8:ff::ff:fe00:201".parse().expect("addr")));
    engine
}

/// An engine for `config` (two ports, or one-armed) with its tables made small
/// (`small_tables`).
pub fn engine_for(config: &Config) -> Engine {
    let macs = [Mac([2, 0, 0, 0, 1, 1]), Mac([2, 0, 0, 0, 2, 1])];
    let ports = config.ports().count();
    let setups: Vec<PortSetup> = macs[..ports].iter().map(|&mac| PortSetup { mac }).collect();
    Engine::new(&small_tables(config.clone()), &setups)
}

/// `config` with table sizes of at most a few hundred entries, so that building an
/// engine costs little per fuzz input.
pub fn small_tables(mut config: Config) -> Config {
    let nat = &mut config.nat;
    nat.max_sessions = nat.max_sessions.min(256);
    nat.max_sessions_per_host = nat.max_sessions_per_host.min(64);
    nat.max_ports_per_host = nat.max_ports_per_host.min(32);
    config.ipv6.max_states = config.ipv6.max_states.min(256);
    config
}

/// One record: the port, the clock advance in ms, the head bytes and the frame.
pub struct Record<'a, const HEAD: usize> {
    pub port: PortId,
    pub advance_ms: u64,
    pub head: [u8; HEAD],
    pub frame: &'a [u8],
}

/// The records of `data`; a short length takes what is left, a short tail ends it.
pub fn records<const HEAD: usize>(mut data: &[u8]) -> impl Iterator<Item = Record<'_, HEAD>> {
    std::iter::from_fn(move || {
        if data.len() < 3 + HEAD {
            return None;
        }
        let control = data[0];
        let len = usize::from(u16::from_be_bytes([data[1], data[2]])).min(data.len() - 3 - HEAD);
        let head = data[3..3 + HEAD].try_into().expect("HEAD bytes");
        let frame = &data[3 + HEAD..3 + HEAD + len];
        data = &data[3 + HEAD + len..];
        Some(Record {
            port: if control & 1 == 0 {
                PortId(0)
            } else {
                PortId(1)
            },
            advance_ms: u64::from(control >> 1) * 100,
            head,
            frame,
        })
    })
}

/// Feeds the records of `data` to a fresh engine for `layout`: advances the clock (polling the
/// engine), copies each frame into a buffer of `buf_len` bytes, hands it to `process`
/// (the verdict, or `None` when the target refused the frame before the engine),
/// checks that a frame forwarded or answered still fits its buffer, and drains the
/// frames the engine made itself.
pub fn run<const HEAD: usize>(
    layout: Layout,
    data: &[u8],
    buf_len: usize,
    mut process: impl FnMut(&mut Engine, &Record<'_, HEAD>, &mut Frame<'_>, u64) -> Option<Verdict>,
) {
    let mut engine = engine_with(layout);
    let mut now = 1_000_000u64;
    let mut buf = vec![0u8; buf_len];
    let mut out = vec![0u8; 9100];
    for mut r in records::<HEAD>(data) {
        if layout == Layout::OneArmed {
            r.port = PortId(0);
        }
        if r.advance_ms > 0 {
            now += r.advance_ms;
            engine.poll(now);
        }
        let len = r.frame.len();
        buf[..len].copy_from_slice(r.frame);
        let mut f = Frame { buf: &mut buf, len };
        if let Some(Verdict::Forward(_) | Verdict::Reply(_)) = process(&mut engine, &r, &mut f, now)
        {
            assert!(f.len <= f.buf.len());
        }
        while engine.pop_transmit(&mut out).is_some() {}
    }
}
