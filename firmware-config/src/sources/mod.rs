//! Configuration from a cloud's own volumes: a cloud-init NoCloud volume (label
//! `cidata`) or an OpenStack config drive (label `config-2`), read from the raw block
//! device in userspace, without mounting: the image's kernel need not carry the vfat
//! or iso9660 modules, and PID 1 depends on no mount.
//!
//! # Contract
//!
//! [`read`] takes a device (or image file) and answers:
//! - `Ok(None)`: not a cloud volume (no FAT or ISO 9660 file system, or another label).
//!   The label is matched case-insensitively, as cloud-init's `blkid` match does.
//! - `Ok(Some(loaded))`: the volume's user-data is a valid natbox configuration
//!   (`userdata`: natbox's TOML, plain or gzip, checked by the same
//!   [`from_toml_named`](crate::from_toml_named) as `natbox.toml`). Where the TOML
//!   leaves `hostname` out, the metadata's host name fills it (`local-hostname` or
//!   `hostname` on NoCloud, `hostname` on a config drive), or its first label when the
//!   whole name is not a valid host name.
//! - `Err(refused)`: a cloud volume whose configuration cannot be used: unreadable,
//!   no user-data, user-data that is not natbox's TOML (a `#cloud-config`, a script,
//!   MIME multipart: the message says what natbox expects) or that breaks a rule.
//!   The caller boots no half-configured box from it: forwarding stays off. A file
//!   system too broken to read its label is refused with no kind: it may be no cloud
//!   volume at all.
//!
//! The metadata (`meta-data`, `meta_data.json`) never refuses a volume: only its
//! instance id and host name are taken, each only when it is printable ASCII of at
//! most 255 characters, and a broken file is a warning.
//!
//! # Bounds
//!
//! A hostile or broken volume cannot make the box read much or loop:
//! - at most [`MAX_DEVICE_READ`] (16 MiB) is read from the device per volume, whatever
//!   its file system claims (a cyclic FAT cluster chain ends there, as an error);
//! - user-data at most [`MAX_USER_DATA`] (1 MiB), and as much again once gunzipped;
//!   metadata at most [`MAX_META_DATA`] (64 KiB); a larger file is refused by its size;
//! - at most [`MAX_DIR_ENTRIES`] (256) entries are walked in each directory on the path
//!   (root, `openstack`, `latest`), and an ISO 9660 directory is read up to 64 KiB.
//!
//! # Readers weighed
//!
//! Both file systems are read by small readers of this module's own (`fat`, `iso`):
//! the few structures a NoCloud or config-drive volume uses, every number checked and
//! every read bounded as above, and fuzzed (`fuzz/fuzz_targets/cloud_volume.rs`).
//! - FAT: `fatfs` 0.3.6, the FAT crate on crates.io, was used first; the cloud_volume
//!   fuzz target found it panicking in its first 30 s run on a damaged directory entry
//!   (`attempt to subtract with overflow` in `FileSystem::sector_from_cluster` for a
//!   first cluster of 0 or 1; in a release build the number wraps instead), and
//!   crates.io has no release after 0.3.6. A panic in PID 1 is a kernel panic.
//! - ISO 9660: `cdfs` 0.2 reads Rock Ridge but depends on `fuser` (libfuse), `clap` and
//!   a logger for its command-line tool, unconditionally, which a static PID 1 cannot
//!   carry; `iso9660` 0.1 (which `cdfs` continues) reads neither Joliet nor Rock Ridge
//!   names; `hadris-iso` is only a 3.0 release candidate.

mod configdrive;
mod fat;
mod iso;
pub mod metadata;
mod nocloud;
pub mod userdata;
mod volume;

pub use configdrive::parse_meta_data_json;
pub use nocloud::parse_meta_data;

use crate::schema::Config;
use std::io::{Read, Seek};

/// Largest user-data file, and largest once gunzipped.
pub const MAX_USER_DATA: u64 = 1 << 20;
/// Largest metadata file.
pub const MAX_META_DATA: u64 = 64 << 10;
/// Entries walked per directory.
pub const MAX_DIR_ENTRIES: usize = 256;
/// Bytes read from one device, in all.
pub const MAX_DEVICE_READ: u64 = 16 << 20;

/// Which kind of cloud source: a volume, or a metadata server (`metadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// cloud-init NoCloud, label `cidata`.
    NoCloud,
    /// OpenStack config drive, label `config-2`.
    ConfigDrive,
    /// EC2 instance metadata, IMDSv2, at 169.254.169.254.
    Ec2,
    /// The GCE metadata server (`metadata.google.internal`, 169.254.169.254).
    Gce,
}

impl Kind {
    /// Short name, for the log and `show config`: `nocloud`, `configdrive`, `ec2`, `gce`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::NoCloud => "nocloud",
            Kind::ConfigDrive => "configdrive",
            Kind::Ec2 => "ec2",
            Kind::Gce => "gce",
        }
    }

    /// Where it is read from: `label cidata`, `label config-2` (a volume's label),
    /// `imdsv2 169.254.169.254`, `metadata.google.internal`.
    pub fn origin(self) -> &'static str {
        match self {
            Kind::NoCloud => "label cidata",
            Kind::ConfigDrive => "label config-2",
            Kind::Ec2 => "imdsv2 169.254.169.254",
            Kind::Gce => "metadata.google.internal",
        }
    }

    /// The kind of volume labelled `label`.
    fn by_label(label: &str) -> Option<Kind> {
        [Kind::NoCloud, Kind::ConfigDrive].into_iter().find(|k| {
            k.origin()
                .strip_prefix("label ")
                .is_some_and(|l| label.trim().eq_ignore_ascii_case(l))
        })
    }
}

/// What the metadata says, where it says it. Each value is at most [`MAX_META_VALUE`]
/// printable ASCII characters (it reaches the console, the log and the metrics); any
/// other value is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub instance_id: Option<String>,
    pub hostname: Option<String>,
}

/// Longest metadata value taken.
pub const MAX_META_VALUE: usize = 255;

impl Meta {
    /// The metadata with only the values that are printable and short enough.
    fn printable(self) -> Meta {
        let keep = |v: Option<String>| {
            v.filter(|v| {
                v.len() <= MAX_META_VALUE && v.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
            })
        };
        Meta {
            instance_id: keep(self.instance_id),
            hostname: keep(self.hostname),
        }
    }
}

/// A configuration read from a cloud volume or metadata server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub config: Config,
    pub kind: Kind,
    pub meta: Meta,
    /// Worth logging; the configuration is good (a broken or missing metadata file).
    pub warnings: Vec<String>,
}

impl Loaded {
    /// How the log, the banner and `show config` name the source: `nocloud (/dev/vdb,
    /// label cidata), instance-id iid-1` for a volume on `device`, `ec2 (imdsv2
    /// 169.254.169.254), instance-id i-0abc` for a metadata server (no device).
    pub fn source(&self, device: Option<&str>) -> String {
        let mut source = match device {
            Some(device) => format!("{} ({device}, {})", self.kind.name(), self.kind.origin()),
            None => format!("{} ({})", self.kind.name(), self.kind.origin()),
        };
        if let Some(id) = &self.meta.instance_id {
            source.push_str(&format!(", instance-id {id}"));
        }
        source
    }
}

/// Why a volume gives no configuration: `kind` is `None` when its file system could
/// not be read far enough to know its label (so it may not be a cloud volume at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub kind: Option<Kind>,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The files a kind of volume holds, read within the bounds.
struct Files {
    user_data: Vec<u8>,
    /// The user-data's name, as error messages give it (`cidata:user-data`).
    user_data_name: String,
    meta: Meta,
    warnings: Vec<String>,
}

/// Reads a cloud volume's configuration from `device` (see the module doc).
pub fn read<D: Read + Seek>(device: D) -> Result<Option<Loaded>, Refused> {
    let opened = volume::open(device).map_err(|message| Refused {
        kind: None,
        message,
    })?;
    let Some(mut volume) = opened else {
        return Ok(None);
    };
    let Some(kind) = Kind::by_label(&volume.label()) else {
        return Ok(None);
    };
    let refused = |message| Refused {
        kind: Some(kind),
        message,
    };
    let files = match kind {
        Kind::NoCloud => nocloud::files(&mut volume),
        Kind::ConfigDrive => configdrive::files(&mut volume),
        // `by_label` gives volume kinds only.
        Kind::Ec2 | Kind::Gce => return Ok(None),
    }
    .map_err(refused)?;
    let (config, hostname_given) =
        userdata::decode(&files.user_data, &files.user_data_name).map_err(refused)?;
    let mut warnings = files.warnings;
    let meta = files.meta.printable();
    let config = match (&meta.hostname, hostname_given) {
        (Some(name), false) => with_hostname(config, name, &mut warnings),
        _ => config,
    };
    Ok(Some(Loaded {
        config,
        kind,
        meta,
        warnings,
    }))
}

/// `config` with the metadata's host name, or its first label, whichever is valid.
pub(crate) fn with_hostname(config: Config, name: &str, warnings: &mut Vec<String>) -> Config {
    let first_label = name.split('.').next().unwrap_or_default();
    for candidate in [name, first_label] {
        let mut named = config.clone();
        named.hostname = candidate.to_string();
        if crate::validate(&named).is_ok() {
            return named;
        }
    }
    warnings.push(format!(
        "the metadata's host name {name:?} is not a valid host name; keeping {:?}",
        config.hostname
    ));
    config
}

#[cfg(test)]
mod tests;
