//! Feeds arbitrary bytes to the cloud sources' parsers, as a NoCloud or config-drive
//! volume hands them to the box: the user-data decoder (plain or gzip natbox TOML,
//! anything else refused by name), NoCloud's `meta-data` and OpenStack's
//! `meta_data.json`. They must answer, never panic; a user-data they accept must be a
//! valid configuration, and a refusal must say what natbox expects (or be the TOML
//! diagnostics, which name the file).
#![no_main]

use firmware_config::sources::{parse_meta_data, parse_meta_data_json, userdata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match userdata::decode(data, "cidata:user-data") {
        Ok((config, _)) => assert!(firmware_config::validate(&config).is_ok()),
        Err(e) => assert!(
            e.contains("natbox reads its own TOML") || e.starts_with("cidata:user-data"),
            "{e}"
        ),
    }
    let text = String::from_utf8_lossy(data);
    let meta = parse_meta_data(&text);
    let json = parse_meta_data_json(&text);
    for value in [
        meta.instance_id,
        meta.hostname,
        json.instance_id,
        json.hostname,
    ]
    .into_iter()
    .flatten()
    {
        assert!(!value.is_empty());
    }
});
