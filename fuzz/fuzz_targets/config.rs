//! Feeds arbitrary bytes as a TOML configuration to `firmware_config::from_toml` (the
//! parser, the schema and `validate`), as the host CLI and the box read a file. What
//! it accepts must pass `validate`, read back unchanged from its own `to_toml` (the
//! crate's contract), and be safe for the engine: building an engine on it and
//! reconfiguring a running engine of the same layout (two ports or one-armed; the
//! shell refuses a live switch between them) to it must not panic. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = firmware_config::from_toml(text) else {
        return;
    };
    assert!(firmware_config::validate(&config).is_ok());
    let back = firmware_config::from_toml(&firmware_config::to_toml(&config))
        .expect("to_toml output reads back");
    assert_eq!(back, config);
    let small = natbox_fuzz::small_tables(config);
    natbox_fuzz::engine_for(&small);
    let layout = if small.one_armed() {
        natbox_fuzz::Layout::OneArmed
    } else {
        natbox_fuzz::Layout::TwoPort
    };
    natbox_fuzz::engine_with(layout).reconfigure(&small);
});
