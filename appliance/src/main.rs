//! The natbox binary.
//!
//! Subcommands (the dataplane's host and PID-1 modes join them as they land):
//! - `appliance check CONFIG.toml`: validates a configuration, exit 0 ok, 1 invalid,
//!   2 unreadable;
//! - `appliance demo [CONFIG.toml]`: runs the engine through a scripted scenario.

mod demo;

use std::process::ExitCode;

const USAGE: &str = "usage: appliance check CONFIG.toml | appliance demo [CONFIG.toml]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["check", path] => match load(path) {
            Ok(_) => {
                println!("{path}: ok");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        ["demo"] => {
            let config = firmware_config::from_toml(include_str!("../../natbox.toml"))
                .expect("the bundled example configuration is valid");
            demo::run(&config);
            ExitCode::SUCCESS
        }
        ["demo", path] => match load(path) {
            Ok(config) => {
                demo::run(&config);
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Reads and validates a TOML configuration, printing what is wrong.
fn load(path: &str) -> Result<firmware_config::Config, ExitCode> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("{path}: {e}");
        ExitCode::from(2)
    })?;
    firmware_config::from_toml_named(path, &text).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(1)
    })
}
