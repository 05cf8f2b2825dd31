//! The natbox binary.
//!
//! - As PID 1 (the appliance image): see `natbox::init`.
//! - `appliance run --config PATH [--admin SOCKET]`: host mode. Runs the whole box as
//!   an ordinary root process on the interfaces the configuration names (TOML file or
//!   metadata-disk image), until SIGINT/SIGTERM or `poweroff` from the shell; then
//!   prints its counters and exits 0. The shell listens on SOCKET, and on standard
//!   input when that is a terminal. Ports that do not exist yet are waited for, the
//!   shell served meanwhile (`natbox::dataplane::start`), as in the appliance.
//! - `appliance run --metadata PORT [--admin SOCKET]`: host mode with the
//!   configuration from the cloud's metadata server, asked through PORT by DHCP
//!   first (`natbox::init::metadata`, what the image does with no configuration
//!   volume); `commit` then applies live only.
//! - `appliance check CONFIG.toml`: validates a configuration (exit 0 ok, 1 invalid,
//!   2 unreadable).
//! - `appliance demo [CONFIG.toml]`: runs the engine through a scripted scenario.

mod demo;
mod report;

use std::process::ExitCode;

const USAGE: &str = "usage: appliance run --config PATH [--admin SOCKET] | appliance run --metadata PORT [--admin SOCKET] | appliance check CONFIG.toml | appliance demo [CONFIG.toml]";

fn main() -> ExitCode {
    if natbox::init::is_pid1() {
        natbox::init::run(report::log_counters);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["run", "--config", path] => match load(path) {
            Ok(config) => run(&config, path, None),
            Err(code) => code,
        },
        ["run", "--config", path, "--admin", admin]
        | ["run", "--admin", admin, "--config", path] => match load(path) {
            Ok(config) => run(&config, path, Some(std::path::Path::new(admin))),
            Err(code) => code,
        },
        ["run", "--metadata", port] => run_from_metadata(port, None),
        ["run", "--metadata", port, "--admin", admin]
        | ["run", "--admin", admin, "--metadata", port] => {
            run_from_metadata(port, Some(std::path::Path::new(admin)))
        }
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

/// Host mode, from a configuration file or metadata-disk image.
fn run(
    config: &firmware_config::Config,
    source: &str,
    admin: Option<&std::path::Path>,
) -> ExitCode {
    natbox::logging::init(&config.log.level);
    let Some((stop, mut control)) = open_control(admin, &config.hostname) else {
        return ExitCode::from(2);
    };
    // `commit` in the shell saves where the configuration came from.
    let is_disk = std::fs::read(source).is_ok_and(|b| firmware_config::disk::is_metadata_disk(&b));
    let path = std::path::PathBuf::from(source);
    control.set_source(format!(
        "{} {source}",
        if is_disk { "metadata disk" } else { "file" }
    ));
    control.set_store(if is_disk {
        Box::new(natbox::control::DiskStore(path))
    } else {
        Box::new(natbox::control::TomlStore(path))
    });
    forward(config, source, stop, control)
}

/// Host mode, from the cloud's metadata server asked through `port`.
fn run_from_metadata(port: &str, admin: Option<&std::path::Path>) -> ExitCode {
    natbox::logging::init("info");
    let Some((stop, mut control)) = open_control(admin, "natbox") else {
        return ExitCode::from(2);
    };
    let Some(found) = natbox::init::metadata::search(port, stop, &mut control) else {
        // As the image does: up without forwarding, the shell served, until stopped.
        let begin = std::time::Instant::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed)
            && control.tick(None, &natbox::init::links_off(begin))
        {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        return ExitCode::from(1);
    };
    log::set_max_level(
        found
            .config
            .log
            .level
            .parse()
            .unwrap_or(log::LevelFilter::Info),
    );
    control.set_source(found.source.clone());
    control.set_store(Box::new(natbox::control::Unsaved(found.source.clone())));
    forward(&found.config, &found.source, stop, control)
}

/// The stop flag (SIGINT, SIGTERM) and the shell front-ends.
fn open_control(
    admin: Option<&std::path::Path>,
    hostname: &str,
) -> Option<(
    &'static std::sync::atomic::AtomicBool,
    natbox::control::Control,
)> {
    let stop = natbox::host::signals::stop_flag()
        .inspect_err(|e| log::error!("cannot install signal handlers: {e}"))
        .ok()?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let console = if tty {
        natbox::control::ConsoleMode::Host
    } else {
        natbox::control::ConsoleMode::Off
    };
    let control = natbox::control::Control::open(admin, console, hostname)
        .inspect_err(|e| log::error!("admin shell: {e}"))
        .ok()?;
    Some((stop, control))
}

/// Runs the dataplane for `config` until told to stop.
fn forward(
    config: &firmware_config::Config,
    source: &str,
    stop: &std::sync::atomic::AtomicBool,
    mut control: natbox::control::Control,
) -> ExitCode {
    if let Err(e) = natbox::memory::check(config, natbox::dataplane::worker_count(config)) {
        log::error!("{source}: {e}");
        return ExitCode::from(2);
    }
    control.set_password_hash(config.shell.password_hash.clone());
    let tick = &mut |links: &natbox::dataplane::LinkSummary| control.tick(None, links);
    let mut dataplane = match natbox::dataplane::start::retrying(config, None, stop, tick) {
        Ok(d) => d,
        Err(natbox::dataplane::start::NotStarted::Stopped) => {
            log::info!("stopped before the ports were there");
            return ExitCode::SUCCESS;
        }
        Err(natbox::dataplane::start::NotStarted::Failed(e)) => {
            log::error!("{e}; check the port names in the configuration and run as root");
            return ExitCode::from(2);
        }
    };
    log::info!(
        "{} forwarding (pool {:?})",
        config.hostname,
        config.nat_pool()
    );
    dataplane.run(stop, &mut |shards, links| control.tick(Some(shards), links));
    report::log_counters(&dataplane);
    log::info!("stopped");
    ExitCode::SUCCESS
}

/// Reads and validates a configuration: a TOML file, or a metadata-disk image.
fn load(path: &str) -> Result<firmware_config::Config, ExitCode> {
    let bytes = std::fs::read(path).map_err(|e| {
        eprintln!("{path}: {e}");
        ExitCode::from(2)
    })?;
    if firmware_config::disk::is_metadata_disk(&bytes) {
        return firmware_config::disk::read_bytes(&bytes)
            .map(|loaded| {
                for w in &loaded.warnings {
                    eprintln!("{path}: {w}");
                }
                loaded.config
            })
            .map_err(|e| {
                eprintln!("{path}: {e}");
                ExitCode::from(1)
            });
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        eprintln!("{path}: neither a metadata disk nor UTF-8 TOML");
        ExitCode::from(1)
    })?;
    firmware_config::from_toml_named(path, &text).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(1)
    })
}
