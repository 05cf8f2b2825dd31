//! Feeds arbitrary frame sequences to the engine, as records `[control, len_hi, len_lo,
//! frame...]` (see `natbox_fuzz::records`). Any panic is a bug: malformed frames must be
//! dropped and counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natbox::engine::{Frame, Verdict};

fuzz_target!(|data: &[u8]| {
    let mut engine = natbox_fuzz::engine();
    let mut now = 1_000_000u64;
    let mut buf = vec![0u8; 9100];
    let mut out = vec![0u8; 9100];
    for r in natbox_fuzz::records::<0>(data) {
        if r.advance_ms > 0 {
            now += r.advance_ms;
            engine.poll(now);
        }
        let len = r.frame.len();
        buf[..len].copy_from_slice(r.frame);
        let mut f = Frame { buf: &mut buf, len };
        let verdict = engine.process(r.port, &mut f, now);
        if let Verdict::Forward(_) | Verdict::Reply(_) = verdict {
            assert!(f.len <= f.buf.len());
        }
        while engine.pop_transmit(&mut out).is_some() {}
    }
});
