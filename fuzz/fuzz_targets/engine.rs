//! Feeds arbitrary frame sequences to the engine. The input is read as records
//! `[control, len_hi, len_lo, frame...]`: bit 0 of `control` picks the port, the rest
//! advances the virtual clock (in 100 ms steps, running the timers) before the frame.
//! Any panic is a bug: malformed frames must be dropped and counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natbox::engine::{Engine, Frame, Port, PortSetup, Verdict};
use natbox::wire::ethernet::Mac;

fn engine() -> Engine {
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

fuzz_target!(|data: &[u8]| {
    let mut engine = engine();
    let mut now = 1_000_000u64;
    let mut rest = data;
    let mut buf = vec![0u8; 9100];
    let mut out = vec![0u8; 9100];
    while rest.len() >= 3 {
        let control = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let frame = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let port = if control & 1 == 0 { Port::Inside } else { Port::Outside };
        let advance = u64::from(control >> 1) * 100;
        if advance > 0 {
            now += advance;
            engine.poll(now);
        }
        buf[..len].copy_from_slice(frame);
        let mut f = Frame { buf: &mut buf, len };
        let verdict = engine.process(port, &mut f, now);
        if let Verdict::Forward(_) | Verdict::Reply(_) = verdict {
            assert!(f.len <= f.buf.len());
        }
        while engine.pop_transmit(&mut out).is_some() {}
    }
});
