//! The `engine` target on a one-armed box (one port with both roles, issue #16): the
//! same records, every frame arriving on the one port, where the inside prefixes tell
//! inside from outside. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    natbox_fuzz::run::<0>(
        natbox_fuzz::Layout::OneArmed,
        data,
        9100,
        |engine, r, f, now| Some(engine.process(r.port, f, now)),
    );
});
