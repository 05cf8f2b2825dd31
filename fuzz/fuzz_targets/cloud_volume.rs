//! Feeds arbitrary bytes as a block device to `firmware_config::sources::read`, as the
//! box scans every disk at boot: a FAT or ISO 9660 file system, labelled `cidata` or
//! `config-2`, or anything else. It must answer within its read bounds, never panic,
//! and a configuration it accepts must be valid.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(loaded)) = firmware_config::sources::read(std::io::Cursor::new(data)) {
        assert!(firmware_config::validate(&loaded.config).is_ok());
    }
});
