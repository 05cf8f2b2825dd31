//! Configuration from the cloud's metadata server (EC2 IMDSv2, then GCE), when no
//! volume gives one (`source`): the box's last way to find what to do at boot.
//!
//! # Design: natbox's own stack, before forwarding starts
//! The metadata server is reached the way the box reaches anything: through its own
//! dataplane, not the kernel's stack. A *search* dataplane runs on one port (the
//! first NIC: device 0 on EC2, nic0 on GCE, is where the server answers) with a
//! configuration that translates nothing: one-armed, `ipv4 = "dhcp"`, no inside
//! prefixes, one worker. The port's DHCP client (`services::dhcp4`) gets the lease,
//! whose routes lead to 169.254.169.254 (on GCE through the /32 lease's on-link
//! gateway); `services::metadata` asks the clouds in turn over smoltcp TCP
//! (`services::fetch`). With an outcome the search dataplane is stopped and closed,
//! and the box starts its real one from the configuration found, exactly as from a
//! volume. The search's lease is handed over: the real dataplane's DHCP client asks
//! to keep the address (INIT-REBOOT, one round trip) and, given it, binds without
//! probing it again (`Dhcp4::handed_over`, `Client::resuming`); the port routes
//! within a round trip of "forwarding", not after a DORA and a 2 s probe.
//!
//! Weighed: the kernel's stack, briefly (an address and a route by netlink, a
//! `TcpStream`, then both removed), would need its own DHCP exchange over a raw
//! socket, a netlink client, and the kernel's IPv4 configuration undone before the
//! dataplane takes the NIC; the box's own stack reuses what forwarding already runs
//! and tests, and behaves the same in host mode (`appliance run --metadata PORT`) and
//! as PID 1.
//!
//! The console and the admin shell are served all along (the control tick runs on the
//! search dataplane); the search never ends by itself while no cloud answers (see
//! `services::metadata` for its backoff), and a port that does not exist yet is
//! waited for as any configuration's (`dataplane::start`).

use crate::control::Control;
use firmware_config::sources::metadata::Outcome;
use firmware_config::Config;
use std::sync::atomic::AtomicBool;

/// A configuration the metadata gave.
#[derive(Debug)]
pub struct FromCloud {
    pub config: Config,
    /// For the log, the banner and `show config`.
    pub source: String,
}

/// Searches the metadata through `port` (see the module doc) until a cloud gives a
/// configuration; `None` when one refused it (logged) or the box is told to stop.
pub fn search(port: &str, stop: &AtomicBool, control: &mut Control) -> Option<FromCloud> {
    let config = search_config(port)?;
    let tick = &mut |links: &crate::dataplane::LinkSummary| control.tick(None, links);
    let mut dataplane = crate::dataplane::start::retrying(&config, None, stop, tick).ok()?;
    log::info!("no configuration volume: asking the cloud's metadata server through {port}");
    control.search_metadata(usize::from(config.outside.mtu));
    let mut outcome = None;
    dataplane.run(stop, &mut |shards, links| {
        let go = control.tick(Some(shards), links);
        outcome = control.metadata_outcome();
        go && outcome.is_none()
    });
    drop(dataplane);
    match outcome? {
        Outcome::Loaded(loaded) => {
            for w in &loaded.warnings {
                log::warn!("metadata: {w}");
            }
            let source = loaded.source(None);
            log::info!(
                "configuration from {source}, sha256 {}",
                firmware_config::digest(&loaded.config)
            );
            Some(FromCloud {
                config: loaded.config,
                source,
            })
        }
        Outcome::Refused(refused) => {
            log::error!("metadata: {refused}; forwarding is off");
            None
        }
        Outcome::Absent(_) => None,
    }
}

/// The search dataplane's configuration: `port` by DHCP, translating nothing.
fn search_config(port: &str) -> Option<Config> {
    let mut outside = toml::Table::new();
    outside.insert("port".into(), port.into());
    outside.insert("ipv4".into(), "dhcp".into());
    let mut dataplane = toml::Table::new();
    dataplane.insert("workers".into(), 1.into());
    let mut table = toml::Table::new();
    table.insert("outside".into(), outside.into());
    table.insert("dataplane".into(), dataplane.into());
    table
        .try_into()
        .inspect_err(|e| log::error!("metadata: port {port:?}: {e}"))
        .ok()
}
