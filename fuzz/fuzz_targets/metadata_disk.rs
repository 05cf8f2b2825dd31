//! Feeds arbitrary bytes to the metadata-disk reader: it must refuse cleanly, never
//! panic, and anything it accepts must be a valid configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(loaded) = firmware_config::disk::read_bytes(data) {
        assert!(firmware_config::validate(&loaded.config).is_ok());
    }
});
