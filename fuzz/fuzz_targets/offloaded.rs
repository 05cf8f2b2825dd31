//! Feeds arbitrary frames with arbitrary virtio-net headers (what PACKET_VNET_HDR
//! hands natbox: GSO type and size, checksum start and offset) through
//! `wire::offload::prepare` and, when it accepts them, `Engine::process_offloaded`.
//! Records are `[control, len_hi, len_lo, vnet header (10 bytes), frame...]` (see
//! `natbox_fuzz::records`). Any panic is a bug: a lying header must be refused or the
//! frame dropped and counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natbox_core::wire::offload::{self, VnetHdr, VNET_HDR_LEN};

fuzz_target!(|data: &[u8]| {
    // Super-frames are up to 64 KiB, like the dataplane's receive buffers.
    natbox_fuzz::run::<VNET_HDR_LEN>(
        natbox_fuzz::Layout::TwoPort,
        data,
        65_600,
        |engine, r, f, now| {
            let mut h = VnetHdr::read(&r.head);
            let o = offload::prepare(&mut f.buf[..f.len], &mut h).ok()?;
            Some(engine.process_offloaded(r.port, f, o, now))
        },
    );
});
