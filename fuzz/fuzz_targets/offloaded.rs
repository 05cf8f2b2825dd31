//! Feeds arbitrary frames with arbitrary virtio-net headers (what PACKET_VNET_HDR
//! hands natbox: GSO type and size, checksum start and offset) through
//! `wire::offload::prepare` and, when it accepts them, `Engine::process_offloaded`.
//! Records are `[control, len_hi, len_lo, vnet header (10 bytes), frame...]` (see
//! `natbox_fuzz::records`). Any panic is a bug: a lying header must be refused or the
//! frame dropped and counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natbox::engine::{Frame, Verdict};
use natbox::wire::offload::{self, VnetHdr, VNET_HDR_LEN};

fuzz_target!(|data: &[u8]| {
    let mut engine = natbox_fuzz::engine();
    let mut now = 1_000_000u64;
    // Super-frames are up to 64 KiB, like the dataplane's receive buffers.
    let mut buf = vec![0u8; 65_600];
    let mut out = vec![0u8; 9100];
    for r in natbox_fuzz::records::<VNET_HDR_LEN>(data) {
        if r.advance_ms > 0 {
            now += r.advance_ms;
            engine.poll(now);
        }
        let len = r.frame.len();
        buf[..len].copy_from_slice(r.frame);
        let mut h = VnetHdr::read(&r.head);
        let Ok(o) = offload::prepare(&mut buf[..len], &mut h) else {
            continue;
        };
        let mut f = Frame { buf: &mut buf, len };
        let verdict = engine.process_offloaded(r.port, &mut f, o, now);
        if let Verdict::Forward(_) | Verdict::Reply(_) = verdict {
            assert!(f.len <= f.buf.len());
        }
        while engine.pop_transmit(&mut out).is_some() {}
    }
});
