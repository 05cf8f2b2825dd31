//! Feeds arbitrary frames with arbitrary virtio-net headers (what PACKET_VNET_HDR
//! hands natbox: GSO type and size, checksum start and offset) through
//! `wire::offload::prepare` and, when it accepts them, `Engine::process_offloaded`.
//! Records are `[control, len_hi, len_lo, vnet header (10 bytes), frame...]`; bit 0 of
//! `control` picks the port, the rest advances the clock in 100 ms steps. Any panic is
//! a bug: a lying header must be refused or the frame dropped and counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natbox::engine::{Engine, Frame, Port, PortSetup, Verdict};
use natbox::wire::ethernet::Mac;
use natbox::wire::offload::{self, VnetHdr, VNET_HDR_LEN};

fn engine() -> Engine {
    let mut config = firmware_config::from_toml(include_str!("../../natbox.toml")).expect("example config");
    config.nat.max_sessions = 256;
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
    // Super-frames are up to 64 KiB, like the dataplane's receive buffers.
    let mut buf = vec![0u8; 65_600];
    let mut out = vec![0u8; 9100];
    while rest.len() >= 3 + VNET_HDR_LEN {
        let control = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3 - VNET_HDR_LEN);
        let raw: [u8; VNET_HDR_LEN] = rest[3..3 + VNET_HDR_LEN].try_into().expect("10 bytes");
        let frame = &rest[3 + VNET_HDR_LEN..3 + VNET_HDR_LEN + len];
        rest = &rest[3 + VNET_HDR_LEN + len..];
        let port = if control & 1 == 0 { Port::Inside } else { Port::Outside };
        let advance = u64::from(control >> 1) * 100;
        if advance > 0 {
            now += advance;
            engine.poll(now);
        }
        buf[..len].copy_from_slice(frame);
        let mut h = VnetHdr::read(&raw);
        let Ok(o) = offload::prepare(&mut buf[..len], &mut h) else {
            continue;
        };
        let mut f = Frame { buf: &mut buf, len };
        let verdict = engine.process_offloaded(port, &mut f, o, now);
        if let Verdict::Forward(_) | Verdict::Reply(_) = verdict {
            assert!(f.len <= f.buf.len());
        }
        while engine.pop_transmit(&mut out).is_some() {}
    }
});
