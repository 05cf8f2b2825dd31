//! Where the configuration comes from at boot, in this order, the first found winning:
//! 1. natbox's own metadata disk (`firmware_config::disk`), found by its magic;
//! 2. a cloud-init NoCloud volume, label `cidata` (`firmware_config::sources`);
//! 3. an OpenStack config drive, label `config-2`;
//! 4. with none of these, the cloud's metadata server (`init::metadata`).
//!
//! Every block device (whole disks: `/sys/block`, not partitions; loop, ram and zram
//! devices skipped) is looked at in each pass; a pass that finds a source decides by
//! the order above among all it saw, so a device that appears later than the first
//! source found is not waited for. Passes repeat for [`SCAN_FOR`] while nothing is
//! found (block devices appear shortly after their driver loads).
//!
//! A source that is found but cannot be used (a damaged metadata disk, a `cidata`
//! volume whose user-data is a `#cloud-config`) still wins: the log says why, no
//! lower source is tried, and the box stays up with forwarding off, the console and
//! shell reachable. A half-configured box never boots from a lower-ranked leftover.
//!
//! A formatted metadata disk with no slot ever written (`DiskError::is_blank`) holds no
//! configuration: the cloud sources are looked for, and `commit` saves to that disk
//! (so what the operator commits on a cloud-configured box wins at the next boot).
//! Without one, a cloud source's `commit` still applies live but says it does not
//! survive a reboot (`control::Unsaved`): user-data cannot be written back.

use firmware_config::{disk, sources, Config};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the block devices are scanned while no source is found.
const SCAN_FOR: Duration = Duration::from_secs(2);

/// A usable configuration and where it came from.
#[derive(Debug)]
pub struct Found {
    pub config: Config,
    /// The metadata disk's previous configuration, to fall back to.
    pub previous: Option<(u64, Config)>,
    /// For the log, the banner and `show config`: "/dev/vdb generation 3 slot A",
    /// "nocloud (/dev/vdb, label cidata), instance-id iid-1".
    pub source: String,
    /// The metadata disk `commit` writes to, if there is one.
    pub disk: Option<PathBuf>,
}

/// What one block device holds (a few per boot, so their size does not matter).
#[allow(clippy::large_enum_variant)]
enum Seen {
    Disk(Result<disk::Loaded, disk::DiskError>),
    Cloud(Result<sources::Loaded, sources::Refused>),
}

/// What the volumes hold (one per boot, so its size does not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Finding {
    Found(Found),
    /// A source was found but cannot be used (logged): no lower one is tried.
    Unusable,
    /// No source; `blank` is a metadata disk with no configuration written yet, which
    /// `commit` can save to.
    Nothing {
        blank: Option<PathBuf>,
    },
}

/// Finds the configuration among the volumes (see the module doc).
pub fn find() -> Finding {
    let start = Instant::now();
    let mut blank = None;
    while start.elapsed() < SCAN_FOR {
        let seen = scan();
        blank = blank_disk(&seen);
        match decide(seen, blank.clone()) {
            Some(Some(found)) => return Finding::Found(found),
            Some(None) => return Finding::Unusable,
            None => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(path) = &blank {
        log::info!(
            "metadata disk {}: blank (no configuration written), and no cidata or config-2 \
             volume either",
            path.display()
        );
    }
    Finding::Nothing { blank }
}

/// The first blank metadata disk among `seen`.
fn blank_disk(seen: &[(PathBuf, Seen)]) -> Option<PathBuf> {
    seen.iter().find_map(|(path, s)| match s {
        Seen::Disk(Err(e)) if e.is_blank() => Some(path.clone()),
        _ => None,
    })
}

/// Every block device that holds a metadata disk or a cloud volume, by name. A file
/// system too broken to show its label is logged and left out.
fn scan() -> Vec<(PathBuf, Seen)> {
    let mut names: Vec<String> = fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !["loop", "ram", "zram"].iter().any(|p| name.starts_with(p)))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let path = PathBuf::from(format!("/dev/{name}"));
            look(&path).map(|seen| (path, seen))
        })
        .collect()
}

/// What the device at `path` holds, if it is a source at all.
fn look(path: &Path) -> Option<Seen> {
    let mut file = fs::File::open(path).ok()?;
    let mut head = [0u8; 64];
    if file.read_exact(&mut head).is_ok() && disk::is_metadata_disk(&head) {
        return Some(Seen::Disk(disk::read_path(path)));
    }
    match sources::read(fs::File::open(path).ok()?) {
        Err(sources::Refused {
            kind: None,
            message,
        }) => {
            log::debug!("{}: {message}; not a configuration source", path.display());
            None
        }
        read => read.transpose().map(Seen::Cloud),
    }
}

/// The source the order picks among `seen`: `None` to look again (nothing yet, or only
/// a blank metadata disk), `Some(None)` when the winner cannot be used.
fn decide(seen: Vec<(PathBuf, Seen)>, blank: Option<PathBuf>) -> Option<Option<Found>> {
    let rank = |s: &Seen| match s {
        Seen::Disk(Err(e)) if e.is_blank() => None,
        Seen::Disk(_) => Some(0),
        Seen::Cloud(Ok(sources::Loaded { kind, .. }))
        | Seen::Cloud(Err(sources::Refused {
            kind: Some(kind), ..
        })) => Some(1 + *kind as u8),
        Seen::Cloud(Err(_)) => None,
    };
    let (path, winner) = seen
        .into_iter()
        .filter_map(|(path, s)| rank(&s).map(|r| (r, path, s)))
        .min_by_key(|(r, _, _)| *r)
        .map(|(_, path, s)| (path, s))?;
    let dev = path.display();
    Some(match winner {
        Seen::Disk(Ok(loaded)) => {
            for w in &loaded.warnings {
                log::warn!("metadata disk {dev}: {w}");
            }
            let source = format!(
                "{dev} generation {} slot {:?}",
                loaded.generation, loaded.slot
            );
            log::info!("configuration from metadata disk {source}");
            Some(Found {
                config: loaded.config,
                previous: loaded.previous,
                source,
                disk: Some(path),
            })
        }
        Seen::Disk(Err(e)) => {
            log::error!("metadata disk {dev}: {e}");
            None
        }
        Seen::Cloud(Ok(loaded)) => {
            for w in &loaded.warnings {
                log::warn!("{dev}: {w}");
            }
            let source = loaded.source(Some(&dev.to_string()));
            log::info!(
                "configuration from {source}, sha256 {}",
                firmware_config::digest(&loaded.config)
            );
            Some(Found {
                config: loaded.config,
                previous: None,
                source,
                disk: blank,
            })
        }
        Seen::Cloud(Err(e)) => {
            log::error!("{dev}: {e}");
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_config::disk::{DiskError, Slot, SlotProblem};
    use firmware_config::sources::{Kind, Meta, Refused};

    fn config(hostname: &str) -> Config {
        let mut c = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        c.hostname = hostname.into();
        c
    }

    fn disk_ok(path: &str) -> (PathBuf, Seen) {
        let loaded = disk::Loaded {
            config: config("from-disk"),
            generation: 3,
            slot: Slot::A,
            warnings: Vec::new(),
            previous: None,
        };
        (path.into(), Seen::Disk(Ok(loaded)))
    }

    fn disk_blank(path: &str) -> (PathBuf, Seen) {
        let blank = DiskError::NoValidConfig {
            a: SlotProblem::Empty,
            b: SlotProblem::Empty,
        };
        (path.into(), Seen::Disk(Err(blank)))
    }

    fn cloud_ok(path: &str, kind: Kind) -> (PathBuf, Seen) {
        let loaded = sources::Loaded {
            config: config(kind.name()),
            kind,
            meta: Meta {
                instance_id: Some("iid-1".into()),
                hostname: None,
            },
            warnings: Vec::new(),
        };
        (path.into(), Seen::Cloud(Ok(loaded)))
    }

    fn cloud_refused(path: &str, kind: Kind) -> (PathBuf, Seen) {
        let refused = Refused {
            kind: Some(kind),
            message: "cidata:user-data is a #cloud-config document".into(),
        };
        (path.into(), Seen::Cloud(Err(refused)))
    }

    fn winner(seen: Vec<(PathBuf, Seen)>) -> Option<Option<Found>> {
        let blank = blank_disk(&seen);
        decide(seen, blank)
    }

    #[test]
    fn the_metadata_disk_wins_over_cloud_volumes_whatever_the_device_order() {
        let found = winner(vec![
            cloud_ok("/dev/vda", Kind::NoCloud),
            disk_ok("/dev/vdb"),
        ])
        .flatten()
        .unwrap();
        assert_eq!(found.config.hostname, "from-disk");
        assert_eq!(found.source, "/dev/vdb generation 3 slot A");
        assert_eq!(found.disk, Some(PathBuf::from("/dev/vdb")));
    }

    #[test]
    fn nocloud_wins_over_a_config_drive_and_names_itself() {
        let found = winner(vec![
            cloud_ok("/dev/vda", Kind::ConfigDrive),
            cloud_ok("/dev/vdb", Kind::NoCloud),
        ])
        .flatten()
        .unwrap();
        assert_eq!(found.config.hostname, "nocloud");
        assert_eq!(
            found.source,
            "nocloud (/dev/vdb, label cidata), instance-id iid-1"
        );
        assert_eq!(found.disk, None, "nothing to save commits to");
    }

    #[test]
    fn a_refused_source_still_wins_over_a_lower_one() {
        let decided = winner(vec![
            cloud_ok("/dev/vda", Kind::ConfigDrive),
            cloud_refused("/dev/vdb", Kind::NoCloud),
        ]);
        assert!(matches!(decided, Some(None)), "forwarding stays off");
    }

    #[test]
    fn a_blank_metadata_disk_is_no_source_but_takes_the_commits() {
        assert!(winner(vec![disk_blank("/dev/vda")]).is_none(), "look again");
        let found = winner(vec![
            disk_blank("/dev/vda"),
            cloud_ok("/dev/vdb", Kind::NoCloud),
        ])
        .flatten()
        .unwrap();
        assert_eq!(found.config.hostname, "nocloud");
        assert_eq!(found.disk, Some(PathBuf::from("/dev/vda")));
    }
}
