//! What the engine's fuzz targets share: a small engine on the example configuration,
//! and their record format `[control, len_hi, len_lo, head (HEAD bytes), frame...]`,
//! where bit 0 of `control` picks the port and the rest advances the virtual clock in
//! 100 ms steps before the frame.

use natbox::engine::{Engine, Port, PortSetup};
use natbox::wire::ethernet::Mac;

/// An engine for the example configuration, with small tables.
pub fn engine() -> Engine {
    let mut config = firmware_config::from_toml(include_str!("../../natbox.toml")).expect("example config");
    config.nat.max_sessions = 256;
    config.nat.max_sessions_per_host = 64;
    config.nat.max_ports_per_host = 32;
    config.ipv6.max_states = 256;
    Engine::new(
        &config,
        PortSetup { mac: Mac([2, 0, 0, 0, 1, 1]) },
        PortSetup { mac: Mac([2, 0, 0, 0, 2, 1]) },
    )
}

/// One record: the port, the clock advance in ms, the head bytes and the frame.
pub struct Record<'a, const HEAD: usize> {
    pub port: Port,
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
            port: if control & 1 == 0 { Port::Inside } else { Port::Outside },
            advance_ms: u64::from(control >> 1) * 100,
            head,
            frame,
        })
    })
}
