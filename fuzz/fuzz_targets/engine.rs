//! Feeds arbitrary frame sequences to the engine, as records `[control, len_hi, len_lo,
//! frame...]` (see `natbox_fuzz::records`). Any panic is a bug: malformed frames must be
//! dropped and counted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    natbox_fuzz::run::<0>(
        natbox_fuzz::Layout::TwoPort,
        data,
        9100,
        |engine, r, f, now| Some(engine.process(r.port, f, now)),
    );
});
