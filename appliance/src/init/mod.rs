//! PID-1 duties: what natbox does when it is the only program in the image.
//!
//! In order: mount /proc, /sys, /dev (devtmpfs) and /run; make /dev/console the
//! standard streams; hand Ctrl-Alt-Del to us as SIGINT instead of an instant reboot;
//! load the carried kernel modules the devices present need, by their modalias
//! (`modules`, rescanning as bus drivers add devices); wait for the NICs and log the online
//! CPUs and each NIC's enabled receive queues (what the workers are sized by,
//! `dataplane::link`); find the configuration among all block devices (no device name
//! is assumed): natbox's metadata disk by its magic, else a cloud-init NoCloud or
//! OpenStack config-drive volume by its label (`source`), else the cloud's metadata
//! server, EC2 IMDSv2 or GCE, asked through the first NIC (`metadata`); start the
//! dataplane (the configuration's tables checked against the memory first, then
//! retried while its ports are missing, since NICs can be late, with a backoff up to
//! 30 s and each failure logged, `dataplane::start`: for `START_RETRY` when the disk
//! has a previous configuration to fall back to, and without end for the last
//! configuration left; when the newest configuration cannot start, the disk's previous
//! one, if valid, is started instead, and the log says so) and print one banner line (version, ports, config generation, time from
//! kernel start to forwarding, whether the console asks for a password). The admin shell runs on the serial console (and on
//! /run/natbox.sock) from early boot, also when there is no valid configuration. On
//! `poweroff`/`reboot` from the shell, the ACPI power button, or SIGINT/SIGTERM
//! (Ctrl-Alt-Del), it stops the
//! dataplane, logs its counters and the clean-shutdown line, syncs and powers off (or
//! reboots).
//!
//! PID 1 must never exit (the kernel panics): every fatal condition is printed with
//! what to do, and the box stays up, idle, until it is told to shut down. Its own
//! lines go out through `host::console::say`, never `println!`, which panics (and so
//! aborts PID 1) on a write error.

pub mod metadata;
pub mod modalias;
pub mod modules;
mod source;

use crate::control::Control;
use crate::dataplane::start::NotStarted;
use crate::dataplane::{link, LinkSummary, Threads};
use crate::host::console::say;
use crate::shell::Action;
use nix::mount::{mount, MsFlags};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Printed last before power-off; boot tests wait for it.
pub const SHUTDOWN_LINE: &str = "natbox: clean shutdown, powering off";

/// The admin socket in the image (for tests and tooling over virtio-serial/vsock).
const ADMIN_SOCKET: &str = "/run/natbox.sock";

/// Where the image keeps its kernel modules.
const MODULE_DIR: &str = "/lib/modules";

/// How long a configuration's dataplane is retried before the previous one is tried
/// (the last configuration left is retried without end).
const START_RETRY: Duration = Duration::from_secs(10);

/// Whether this process is PID 1.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Runs the appliance as PID 1. `report` logs the dataplane counters at shutdown.
pub fn run(report: fn(&Threads)) -> ! {
    mount_basics();
    console();
    crate::logging::init("info");
    if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
        log::warn!("cannot take over Ctrl-Alt-Del: {e}");
    }
    let stop = match crate::host::signals::stop_flag() {
        Ok(stop) => stop,
        Err(e) => fatal(&format!("cannot install signal handlers: {e}")),
    };
    let mut control = match Control::open(
        Some(Path::new(ADMIN_SOCKET)),
        crate::control::ConsoleMode::Appliance,
        "natbox",
    ) {
        Ok(c) => c,
        Err(e) => {
            log::error!("admin shell unavailable: {e}");
            Control::default()
        }
    };
    let started = Instant::now();
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let loading = modules::load_for_devices(Path::new(MODULE_DIR), Path::new("/sys"), &cmdline);
    log::info!(
        "modules loaded: {} ({} failed; {} scans of the devices, {} ms)",
        loading.loaded.join(" "),
        loading.failed.len(),
        loading.passes,
        started.elapsed().as_millis()
    );
    match crate::host::power_button::PowerButton::find() {
        Some(button) => control.watch_power_button(button),
        None => {
            log::warn!("no ACPI power button found: shut down from the shell or with Ctrl-Alt-Del")
        }
    }
    wait_for_nics();
    let queues: Vec<String> = nics()
        .iter()
        .map(|nic| format!("{nic} {}", link::rx_queues(nic)))
        .collect();
    log::info!(
        "{} CPUs online; rx queues: {}",
        link::online_cpus(),
        queues.join(", ")
    );
    let found = match source::find() {
        source::Finding::Found(found) => found,
        source::Finding::Unusable => {
            log::error!(
                "the configuration found cannot be used (see above), and no other source is \
                 tried; forwarding is off"
            );
            idle(stop, &mut control)
        }
        source::Finding::Nothing { blank } => from_metadata(blank, stop, &mut control),
    };
    let source = found.source;
    // Asked for on the console even if forwarding stays off below.
    control.set_password_hash(found.config.shell.password_hash.clone());
    control.set_source(source.clone());
    control.set_store(match found.disk {
        Some(device) => Box::new(crate::control::DiskStore(device)),
        None => Box::new(crate::control::Unsaved(source.clone())),
    });
    let patience = found.previous.is_some().then_some(START_RETRY);
    let (config, mut dataplane) = match start(&found.config, &mut control, stop, patience) {
        Ok(d) => (found.config, d),
        Err(e) => {
            log::error!("configuration from {source} cannot start: {e}");
            let Some((generation, previous)) = found.previous else {
                log::error!("no previous configuration to fall back to; forwarding is off");
                idle(stop, &mut control);
            };
            log::warn!("starting the previous configuration, generation {generation}, instead");
            match start(&previous, &mut control, stop, None) {
                Ok(d) => (previous, d),
                Err(e) => {
                    log::error!(
                        "generation {generation} cannot start either: {e}; forwarding is off"
                    );
                    idle(stop, &mut control);
                }
            }
        }
    };
    log::set_max_level(config.log.level.parse().unwrap_or(log::LevelFilter::Info));
    let ports: Vec<String> = dataplane
        .first()
        .engine()
        .ports()
        .map(|p| format!("{} {}", p.roles.label(), p.mac))
        .collect();
    let console = if config.shell.password_hash.is_some() {
        "console password set"
    } else {
        "console open (no password set)"
    };
    say(&format!(
        "natbox {}: {}, config {source}, forwarding {} ms after kernel start, {console}",
        env!("CARGO_PKG_VERSION"),
        ports.join(" "),
        uptime_ms()
    ));
    dataplane.run(stop, &mut |shards, links| control.tick(Some(shards), links));
    report(&dataplane);
    shut_down(control.requested);
}

/// The configuration from the cloud's metadata server, asked through the first NIC
/// (`metadata`); stays up without forwarding when there is none to be had.
fn from_metadata(
    blank: Option<PathBuf>,
    stop: &AtomicBool,
    control: &mut Control,
) -> source::Found {
    let Some(port) = nics().into_iter().next() else {
        log::error!(
            "no configuration volume and no network interface to ask the cloud's metadata \
             server through: attach a metadata disk built with `natbox-config build \
             natbox.toml -o meta.img`, or a cidata (NoCloud) or config-2 (config drive) \
             volume whose user-data is natbox's TOML; forwarding is off"
        );
        idle(stop, control);
    };
    match metadata::search(&port, stop, control) {
        Some(cloud) => source::Found {
            config: cloud.config,
            previous: None,
            source: cloud.source,
            disk: blank,
        },
        None => idle(stop, control),
    }
}

fn mount_basics() {
    let mounts: [(&str, &str, &str, MsFlags); 4] = [
        (
            "proc",
            "/proc",
            "proc",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        ),
        (
            "sysfs",
            "/sys",
            "sysfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        ),
        ("devtmpfs", "/dev", "devtmpfs", MsFlags::MS_NOSUID),
        (
            "tmpfs",
            "/run",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        ),
    ];
    for (source, target, fstype, flags) in mounts {
        let _ = fs::create_dir_all(target);
        if let Err(e) = mount(Some(source), target, Some(fstype), flags, None::<&str>) {
            // EBUSY: already mounted (the kernel may auto-mount devtmpfs).
            if e != nix::errno::Errno::EBUSY {
                say(&format!("natbox: mount {target}: {e}"));
            }
        }
    }
}

/// Makes /dev/console stdin, stdout and stderr (the kernel opens it for init only if
/// the initramfs has the node; devtmpfs always does).
fn console() {
    if let Ok(c) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        let _ = nix::unistd::dup2_stdin(&c);
        let _ = nix::unistd::dup2_stdout(&c);
        let _ = nix::unistd::dup2_stderr(&c);
    }
}

/// The network interfaces other than `lo`, by name, sorted.
fn nics() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name != "lo")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits (at most 5 s) for a first NIC, then, while there is only one, until no new
/// one has appeared for 300 ms (at most 2 s more): a one-NIC cloud instance does not
/// wait for a second, a two-NIC box goes on as soon as it has both (as before), and
/// the NICs of one driver come within milliseconds of each other. A NIC later still
/// is waited for by `start` (the ports the configuration names).
fn wait_for_nics() {
    let start = Instant::now();
    while nics().is_empty() {
        if start.elapsed() >= Duration::from_secs(5) {
            log::warn!("no network interface after 5 s");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let settled = Instant::now();
    let (mut count, mut since) = (nics().len(), Instant::now());
    while count < 2
        && since.elapsed() < Duration::from_millis(300)
        && settled.elapsed() < Duration::from_secs(2)
    {
        std::thread::sleep(Duration::from_millis(20));
        let now = nics().len();
        if now != count {
            (count, since) = (now, Instant::now());
        }
    }
}

/// Starts the dataplane for `config` (validated, and its tables checked against the
/// memory), trying again while its ports are missing for `patience`, or without end
/// (`dataplane::start`); the shell stays served meanwhile, and a shutdown asked
/// meanwhile happens at once.
fn start(
    config: &firmware_config::Config,
    control: &mut Control,
    stop: &AtomicBool,
    patience: Option<Duration>,
) -> Result<Threads, String> {
    firmware_config::validate(config).map_err(|e| {
        let errors: Vec<String> = e.iter().map(ToString::to_string).collect();
        errors.join("; ")
    })?;
    crate::memory::check(config, crate::dataplane::worker_count(config))?;
    let tick = &mut |links: &LinkSummary| control.tick(None, links);
    match crate::dataplane::start::retrying(config, patience, stop, tick) {
        Ok(d) => Ok(d),
        Err(NotStarted::Stopped) => idle(stop, control),
        Err(NotStarted::Failed(e)) => Err(format!(
            "{e}: check the ports named in the configuration (interface name or MAC)"
        )),
    }
}

/// Milliseconds since the kernel started (from /proc/uptime).
fn uptime_ms() -> u64 {
    fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |s| (s * 1000.0) as u64)
}

/// Stays up without forwarding, the shell available, until told to shut down.
fn idle(stop: &AtomicBool, control: &mut Control) -> ! {
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        reap();
        if !control.tick(None, &links_off(start)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    shut_down(control.requested);
}

/// What the shell shows of the ports while forwarding is off.
pub fn links_off(since: Instant) -> LinkSummary {
    LinkSummary {
        roles: Vec::new(),
        devices: Vec::new(),
        states: Vec::new(),
        now_ms: since.elapsed().as_millis() as u64,
        io: Vec::new(),
    }
}

fn reap() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

fn fatal(message: &str) -> ! {
    say(&format!(
        "natbox: {message}; the box stays up without forwarding"
    ));
    loop {
        reap();
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Powers off, or reboots if that is what the operator asked for.
fn shut_down(requested: Option<Action>) -> ! {
    use nix::sys::reboot::{reboot, RebootMode};
    reap();
    nix::unistd::sync();
    let mode = if requested == Some(Action::Reboot) {
        say("natbox: clean shutdown, rebooting");
        RebootMode::RB_AUTOBOOT
    } else {
        say(SHUTDOWN_LINE);
        RebootMode::RB_POWER_OFF
    };
    let _ = reboot(mode);
    fatal("power-off failed")
}
