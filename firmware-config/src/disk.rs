//! The metadata disk: a raw block device (or image file) that carries the box's
//! `Config`, written so that a power cut at any byte leaves a readable config.
//!
//! # Layout
//!
//! All integers are little-endian.
//!
//! ```text
//! 0                      header area (4096 bytes): the disk header, then zeros
//! 4096                   slot A (slot_size bytes)
//! 4096 + slot_size       slot B (slot_size bytes)
//!
//! disk header (32 bytes at offset 0), written once by `format`:
//!   0  magic "NATBOXMD"       8  layout version u16 (1)    10  reserved u16 (0)
//!  12  slot_size u32 (a multiple of 4096, at most 1 MiB)     16  reserved (12 bytes, 0)
//!  28  CRC-32 of bytes 0..28
//!
//! slot header (32 bytes at the start of a slot), then the payload:
//!   0  magic "NATBOXCF"       8  format version u16 (1)    10  reserved u16 (0)
//!  12  payload length u32    16  generation u64            24  reserved u32 (0)
//!  28  CRC-32 of header bytes 0..28 followed by the payload
//!  32  payload: the postcard encoding of `Config`
//! ```
//!
//! # Contract
//!
//! - [`write`] never touches the slot [`read`] would pick. It writes the other slot
//!   with a generation one above the highest on the disk: first it zeroes that slot's header, then writes the
//!   payload, then the header, syncing after each step. Until the last header byte is
//!   down the reader still picks the old slot (the new one is empty or fails its
//!   CRC), afterwards it picks the new one: old or new config, never a mix, whatever
//!   byte the power is cut at.
//! - [`read`] checks everything in both slots (magic, version, reserved bytes, length,
//!   CRC, decoding, then [`validate`](crate::validate)) and takes the valid slot with
//!   the higher generation. What is wrong with the other slot comes back as a warning
//!   ("slot A: checksum mismatch (torn write or damaged disk); using slot B
//!   (generation 7)"); when neither slot is usable the error names both reasons.
//!   Malformed input of any kind is an error, never a panic ([`read_bytes`] is the
//!   entry point for fuzzing).
//! - Versions: the magic and version fields sit at the same place in every version.
//!   This binary reads every format version up to [`FORMAT_VERSION`] and refuses newer
//!   ones by name. Any change to `Config` that changes its postcard encoding must bump
//!   [`FORMAT_VERSION`] and keep a decoder for the older versions in `decode`; the
//!   checked-in image `tests/data/v1.img` holds the test to that. Version 2 appended
//!   fields at the end of the encoding (`log.event_rate`, then `metrics`), so a
//!   version-1 payload decodes as version 2 once the encoding of their defaults is
//!   appended. Version 3 made `inside` optional (one-armed mode): a version-2 payload
//!   decodes as version 3 once the `Some` tag is put in front of its `inside`, which
//!   follows the host name; `tests/data/v2.img` holds the test to that. Version 4
//!   appended `dataplane` (the worker count): a version-3 payload decodes once the
//!   encoding of its default is appended. Version 5 lets a port's `ipv4` be `"dhcp"`,
//!   written as the address 0.0.0.0/0 (`schema::Ipv4Setting`), so a version-4
//!   payload decodes unchanged; the version says that an older binary cannot read it.
//!   Version 6 lets a port's `ipv6` be `"slaac"` or `"dhcp"`, written as ::/0 and ::/1
//!   (`schema::Ipv6Setting`), so a version-5 payload decodes unchanged too, and a
//!   version-5 binary refuses a version-6 disk by its version rather than by the
//!   unspecified address it would find there.
//!   Version 7 appended `policy` (the egress policy): a version-4, -5 or -6 payload
//!   decodes once the encoding of its default (allow, no rules) is appended.
//!   Version 8 appended `port_block` (NAT44 port blocks), `flow_log` (flow logs),
//!   `forward` (port forwards) and `host_limits` (per-inside-host rate limits): a
//!   version-7 payload decodes once the encoding of their defaults (off, no forwards,
//!   no limits) is appended.
//! - The device may be shorter than the full layout as long as it holds what the slots
//!   use; bytes past the end read as missing, never as zeros.

use crate::schema::Config;
use crate::validate::validate;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Magic at offset 0 of a metadata disk.
pub const DISK_MAGIC: [u8; 8] = *b"NATBOXMD";
/// Magic at the start of a written slot.
pub const SLOT_MAGIC: [u8; 8] = *b"NATBOXCF";
/// The disk header layout this binary writes and the newest it reads.
pub const LAYOUT_VERSION: u16 = 1;
/// The slot format this binary writes and the newest it reads.
pub const FORMAT_VERSION: u16 = 8;
/// Bytes before slot A; slots are multiples of this too.
pub const BLOCK: u64 = 4096;
/// Size of the images `natbox-config build` makes.
pub const DEFAULT_DISK_SIZE: u64 = 1 << 20;
/// Smallest disk: the header area and two one-block slots.
pub const MIN_DISK_SIZE: u64 = 3 * BLOCK;
/// Largest slot: a config is a few hundred bytes, so a larger disk leaves the rest
/// unused, and no damaged header makes the reader take more than this.
pub const MAX_SLOT_SIZE: u32 = 1 << 20;

const HEADER_LEN: usize = 32;
const CRC_AT: usize = 28;

/// One of the two config slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::A => "A",
            Slot::B => "B",
        })
    }
}

/// A config read from the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub config: Config,
    /// Generation of the slot it came from; every write adds one.
    pub generation: u64,
    pub slot: Slot,
    /// What is wrong with the other slot, if anything ("slot A: checksum mismatch ...;
    /// using slot B (generation 7)"). Worth logging; the config is good.
    pub warnings: Vec<String>,
    /// The other slot's configuration and generation, when that slot is valid too and
    /// older: the last good configuration before this one, which the box falls back
    /// to when this one validates but cannot start.
    pub previous: Option<(u64, Config)>,
}

/// Why a slot cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotProblem {
    /// The slot header is all zeros: never written, or a write was cut short.
    Empty,
    /// The device ends before the slot's header or payload does.
    Truncated { have: usize, need: usize },
    /// No slot magic: the slot holds something else.
    NoMagic,
    /// Written by a newer natbox.
    NewerVersion(u16),
    /// Version 0 or reserved bytes set: not a slot this or any version writes.
    BadHeader,
    /// The payload length does not fit the slot.
    TooLong { len: u32, max: usize },
    /// The CRC does not match the header and payload.
    Checksum,
    /// The CRC matches but the payload is not a config of its version.
    Decode(String),
    /// The config decodes but breaks a rule of `validate`.
    Rules {
        generation: u64,
        count: usize,
        first: String,
    },
}

impl fmt::Display for SlotProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotProblem::Empty => write!(f, "empty"),
            SlotProblem::Truncated { have, need } => write!(
                f,
                "truncated: the device ends {have} bytes into the slot, {need} are needed"
            ),
            SlotProblem::NoMagic => write!(f, "no slot header (overwritten or never written)"),
            SlotProblem::NewerVersion(v) => write!(
                f,
                "format version {v} is newer than this binary supports ({FORMAT_VERSION}); \
                 upgrade natbox"
            ),
            SlotProblem::BadHeader => write!(f, "malformed slot header (damaged disk)"),
            SlotProblem::TooLong { len, max } => write!(
                f,
                "payload length {len} exceeds the slot's {max} bytes (damaged disk)"
            ),
            SlotProblem::Checksum => {
                write!(f, "checksum mismatch (torn write or damaged disk)")
            }
            SlotProblem::Decode(e) => write!(f, "config does not decode: {e}"),
            SlotProblem::Rules {
                generation,
                count,
                first,
            } => write!(
                f,
                "generation {generation} breaks {count} rule(s) of this binary, first {first}; \
                 rewrite it with natbox-config build"
            ),
        }
    }
}

/// Why the disk could not be read or written. `Display` is one line that says what
/// to do; prefix it with the device name.
#[derive(Debug)]
pub enum DiskError {
    /// The device could not be read or written.
    Io {
        action: &'static str,
        error: io::Error,
    },
    /// No natbox disk header at offset 0.
    NotMetadataDisk,
    /// The disk header was written by a newer natbox.
    NewerLayout(u16),
    /// The disk header is damaged.
    BadDiskHeader(&'static str),
    /// Neither slot holds a usable config.
    NoValidConfig { a: SlotProblem, b: SlotProblem },
    /// A slot was written by a newer natbox; an older one must not overwrite it.
    NewerSlot { slot: Slot, version: u16 },
    /// The config to write breaks rules (each `field: message`).
    InvalidConfig(Vec<String>),
    /// The encoded config does not fit a slot.
    TooLarge { len: usize, max: usize },
    /// The size asked of `format` cannot hold the layout.
    BadSize(u64),
    /// The config could not be encoded.
    Encode(String),
    /// The generation counter would overflow.
    GenerationExhausted,
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::Io { action, error } => write!(f, "I/O error {action}: {error}"),
            DiskError::NotMetadataDisk => write!(
                f,
                "not a natbox metadata disk (no NATBOXMD header); build one with \
                 `natbox-config build`"
            ),
            DiskError::NewerLayout(v) => write!(
                f,
                "disk layout version {v} is newer than this binary supports \
                 ({LAYOUT_VERSION}); upgrade natbox"
            ),
            DiskError::BadDiskHeader(what) => write!(
                f,
                "disk header damaged ({what}); rebuild the disk with `natbox-config build`"
            ),
            DiskError::NoValidConfig { a, b } => write!(
                f,
                "no valid config: slot A: {a}; slot B: {b}; write one with \
                 `natbox-config build`"
            ),
            DiskError::NewerSlot { slot, version } => write!(
                f,
                "slot {slot}: format version {version} is newer than this binary supports \
                 ({FORMAT_VERSION}); upgrade natbox-config before writing"
            ),
            DiskError::InvalidConfig(errors) => {
                write!(
                    f,
                    "refusing to write an invalid config: {}",
                    errors.join("; ")
                )
            }
            DiskError::TooLarge { len, max } => write!(
                f,
                "config encodes to {len} bytes but a slot holds {max}; shorten it or build a \
                 larger disk"
            ),
            DiskError::BadSize(size) => write!(
                f,
                "a disk of {size} bytes cannot hold the layout; use at least {MIN_DISK_SIZE} \
                 bytes (default {DEFAULT_DISK_SIZE})"
            ),
            DiskError::Encode(e) => write!(f, "cannot encode the config: {e}"),
            DiskError::GenerationExhausted => write!(
                f,
                "generation counter exhausted; rebuild the disk with `natbox-config build`"
            ),
        }
    }
}

impl DiskError {
    /// A formatted disk with neither slot ever written: it holds no configuration (so
    /// a cloud source is looked for), and `commit` can save to it.
    pub fn is_blank(&self) -> bool {
        matches!(
            self,
            DiskError::NoValidConfig {
                a: SlotProblem::Empty,
                b: SlotProblem::Empty
            }
        )
    }
}

impl std::error::Error for DiskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DiskError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A device `write` can make durable: `sync` returns once written bytes survive a
/// power cut. The default flushes, which is right for in-memory devices.
pub trait BlockDevice: Read + Write + Seek {
    fn sync(&mut self) -> io::Result<()> {
        self.flush()
    }
}

impl BlockDevice for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

impl BlockDevice for Cursor<Vec<u8>> {}
impl BlockDevice for Cursor<&mut Vec<u8>> {}
impl BlockDevice for Cursor<&mut [u8]> {}

fn io_err(action: &'static str) -> impl FnOnce(io::Error) -> DiskError {
    move |error| DiskError::Io { action, error }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Whether `first_bytes` (the start of a device) begin with the metadata disk magic.
/// The appliance reads the first block of each block device and asks this.
pub fn is_metadata_disk(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(&DISK_MAGIC)
}

/// Reads the start of `device` and tells whether it is a metadata disk.
pub fn probe<R: Read + Seek>(device: &mut R) -> Result<bool, DiskError> {
    let head = read_at(device, 0, DISK_MAGIC.len())?;
    Ok(is_metadata_disk(&head))
}

/// Up to `len` bytes at `offset`; fewer when the device ends first.
fn read_at<R: Read + Seek>(device: &mut R, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
    device
        .seek(SeekFrom::Start(offset))
        .map_err(io_err("seeking"))?;
    // Only what the device holds is allocated, whatever length a header claims.
    let mut buf = Vec::with_capacity(len.min(BLOCK as usize));
    device
        .take(len as u64)
        .read_to_end(&mut buf)
        .map_err(io_err("reading"))?;
    Ok(buf)
}

fn write_at<D: BlockDevice>(
    device: &mut D,
    offset: u64,
    bytes: &[u8],
    action: &'static str,
) -> Result<(), DiskError> {
    device
        .seek(SeekFrom::Start(offset))
        .map_err(io_err(action))?;
    device.write_all(bytes).map_err(io_err(action))?;
    device.sync().map_err(io_err(action))
}

/// Where the slots are, from the disk header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    slot_size: u32,
}

impl Layout {
    fn for_disk_size(size: u64) -> Result<Self, DiskError> {
        let slot_blocks = size.saturating_sub(BLOCK) / 2 / BLOCK;
        if slot_blocks == 0 {
            return Err(DiskError::BadSize(size));
        }
        let slot_size = (slot_blocks * BLOCK).min(u64::from(MAX_SLOT_SIZE));
        Ok(Layout {
            slot_size: u32::try_from(slot_size).map_err(|_| DiskError::BadSize(size))?,
        })
    }

    fn offset(self, slot: Slot) -> u64 {
        match slot {
            Slot::A => BLOCK,
            Slot::B => BLOCK + u64::from(self.slot_size),
        }
    }

    fn max_payload(self) -> usize {
        self.slot_size as usize - HEADER_LEN
    }

    fn encode(self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(&DISK_MAGIC);
        h[8..10].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&self.slot_size.to_le_bytes());
        let crc = crc32fast::hash(&h[..CRC_AT]);
        h[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        h
    }

    fn decode(h: &[u8]) -> Result<Self, DiskError> {
        if h.len() < HEADER_LEN || !is_metadata_disk(h) {
            return Err(DiskError::NotMetadataDisk);
        }
        let version = u16_at(h, 8);
        if version > LAYOUT_VERSION {
            return Err(DiskError::NewerLayout(version));
        }
        if crc32fast::hash(&h[..CRC_AT]) != u32_at(h, CRC_AT) {
            return Err(DiskError::BadDiskHeader("checksum mismatch"));
        }
        if version == 0 || u16_at(h, 10) != 0 || h[16..CRC_AT].iter().any(|&b| b != 0) {
            return Err(DiskError::BadDiskHeader("unknown header fields"));
        }
        let slot_size = u32_at(h, 12);
        if slot_size == 0 || u64::from(slot_size) % BLOCK != 0 || slot_size > MAX_SLOT_SIZE {
            return Err(DiskError::BadDiskHeader(
                "slot size not a multiple of 4096 up to 1 MiB",
            ));
        }
        Ok(Layout { slot_size })
    }
}

fn read_layout<R: Read + Seek>(device: &mut R) -> Result<Layout, DiskError> {
    Layout::decode(&read_at(device, 0, HEADER_LEN)?)
}

/// The CRC of a slot: header bytes before the CRC field, then the payload.
fn slot_crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..CRC_AT]);
    hasher.update(payload);
    hasher.finalize()
}

fn slot_header(payload: &[u8], generation: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&SLOT_MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    // A payload longer than u32::MAX never gets here: `write` checks it fits a slot.
    h[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[16..24].copy_from_slice(&generation.to_le_bytes());
    let crc = slot_crc(&h, payload);
    h[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Postcard's tag of an `Option` that holds a value.
const POSTCARD_SOME: u8 = 1;

/// Decodes a payload of format `version` (every version up to `FORMAT_VERSION`).
fn decode(version: u16, payload: &[u8]) -> Result<Config, SlotProblem> {
    match version {
        1 => {
            let added = (
                crate::schema::Log::default().event_rate,
                crate::schema::Metrics::default(),
            );
            let tail = postcard::to_allocvec(&added).expect("defaults encode");
            decode(2, &[payload, &tail].concat())
        }
        2 => {
            let (_hostname, inside) = postcard::take_from_bytes::<String>(payload)
                .map_err(|e| SlotProblem::Decode(e.to_string()))?;
            let hostname = &payload[..payload.len() - inside.len()];
            decode(3, &[hostname, &[POSTCARD_SOME], inside].concat())
        }
        3 => {
            let added = crate::schema::DataplaneSettings::default();
            let tail = postcard::to_allocvec(&added).expect("defaults encode");
            decode(4, &[payload, &tail].concat())
        }
        4..=6 => {
            let added = crate::policy::Policy::default();
            let tail = postcard::to_allocvec(&added).expect("defaults encode");
            decode(7, &[payload, &tail].concat())
        }
        7 => {
            let added = (
                crate::port_block::PortBlock::default(),
                crate::flow_log::FlowLog::default(),
                Vec::<crate::forward::Forward>::new(),
                crate::host_limits::HostLimits::default(),
            );
            let tail = postcard::to_allocvec(&added).expect("defaults encode");
            decode(8, &[payload, &tail].concat())
        }
        8 => {
            let (config, rest) = postcard::take_from_bytes::<Config>(payload)
                .map_err(|e| SlotProblem::Decode(e.to_string()))?;
            if !rest.is_empty() {
                return Err(SlotProblem::Decode(format!(
                    "{} bytes after the config",
                    rest.len()
                )));
            }
            Ok(config)
        }
        v => Err(SlotProblem::NewerVersion(v)),
    }
}

/// What one slot holds.
fn read_slot<R: Read + Seek>(
    device: &mut R,
    layout: Layout,
    slot: Slot,
) -> Result<Result<(u64, Config), SlotProblem>, DiskError> {
    let offset = layout.offset(slot);
    let header = read_at(device, offset, HEADER_LEN)?;
    if header.len() < HEADER_LEN {
        if !header.is_empty() && header.iter().all(|&b| b == 0) {
            return Ok(Err(SlotProblem::Empty));
        }
        return Ok(Err(SlotProblem::Truncated {
            have: header.len(),
            need: HEADER_LEN,
        }));
    }
    if header.iter().all(|&b| b == 0) {
        return Ok(Err(SlotProblem::Empty));
    }
    if header[..8] != SLOT_MAGIC {
        return Ok(Err(SlotProblem::NoMagic));
    }
    let version = u16_at(&header, 8);
    if version > FORMAT_VERSION {
        return Ok(Err(SlotProblem::NewerVersion(version)));
    }
    if version == 0 || u16_at(&header, 10) != 0 || u32_at(&header, 24) != 0 {
        return Ok(Err(SlotProblem::BadHeader));
    }
    let len = u32_at(&header, 12);
    let max = layout.max_payload();
    if len as usize > max {
        return Ok(Err(SlotProblem::TooLong { len, max }));
    }
    let payload = read_at(device, offset + HEADER_LEN as u64, len as usize)?;
    if payload.len() < len as usize {
        return Ok(Err(SlotProblem::Truncated {
            have: HEADER_LEN + payload.len(),
            need: HEADER_LEN + len as usize,
        }));
    }
    if slot_crc(&header, &payload) != u32_at(&header, CRC_AT) {
        return Ok(Err(SlotProblem::Checksum));
    }
    let generation = u64_at(&header, 16);
    let config = match decode(version, &payload) {
        Ok(config) => config,
        Err(problem) => return Ok(Err(problem)),
    };
    if let Err(errors) = validate(&config) {
        return Ok(Err(SlotProblem::Rules {
            generation,
            count: errors.len(),
            first: errors.first().map(|e| e.to_string()).unwrap_or_default(),
        }));
    }
    Ok(Ok((generation, config)))
}

/// Both slots, read and checked.
struct Slots {
    a: Result<(u64, Config), SlotProblem>,
    b: Result<(u64, Config), SlotProblem>,
}

impl Slots {
    fn read<R: Read + Seek>(device: &mut R, layout: Layout) -> Result<Self, DiskError> {
        Ok(Slots {
            a: read_slot(device, layout, Slot::A)?,
            b: read_slot(device, layout, Slot::B)?,
        })
    }

    /// The slot the reader uses: the valid one with the higher generation (A on a tie).
    fn current(&self) -> Option<(Slot, u64)> {
        match (&self.a, &self.b) {
            (Ok((ga, _)), Ok((gb, _))) if gb > ga => Some((Slot::B, *gb)),
            (Ok((ga, _)), _) => Some((Slot::A, *ga)),
            (Err(_), Ok((gb, _))) => Some((Slot::B, *gb)),
            (Err(_), Err(_)) => None,
        }
    }

    /// The highest generation any slot with an intact CRC carries.
    fn highest_generation(&self) -> u64 {
        [&self.a, &self.b]
            .into_iter()
            .map(|s| match s {
                Ok((g, _)) | Err(SlotProblem::Rules { generation: g, .. }) => *g,
                Err(_) => 0,
            })
            .max()
            .unwrap_or(0)
    }
}

/// Reads the config from a metadata disk (see the module docs for what is checked).
pub fn read<R: Read + Seek>(device: &mut R) -> Result<Loaded, DiskError> {
    let layout = read_layout(device)?;
    let slots = Slots::read(device, layout)?;
    // The same choice as `Slots::current`, taking the values apart.
    let (slot, (generation, config), other) = match (slots.a, slots.b) {
        (Err(a), Err(b)) => return Err(DiskError::NoValidConfig { a, b }),
        (Ok(a), Ok(b)) if b.0 > a.0 => (Slot::B, b, Ok(a)),
        (Ok(a), b) => (Slot::A, a, b),
        (Err(a), Ok(b)) => (Slot::B, b, Err(a)),
    };
    let previous = other
        .as_ref()
        .ok()
        .filter(|(g, _)| *g < generation)
        .cloned();
    let other = other.map(|(g, _)| g);
    let other_slot = match slot {
        Slot::A => Slot::B,
        Slot::B => Slot::A,
    };
    let mut warnings = Vec::new();
    match other {
        Err(SlotProblem::Empty) => {}
        Err(problem) => warnings.push(format!(
            "slot {other_slot}: {problem}; using slot {slot} (generation {generation})"
        )),
        Ok(g) if g == generation => warnings.push(format!(
            "slot {other_slot}: holds the same generation {g}; using slot {slot}"
        )),
        Ok(_) => {}
    }
    Ok(Loaded {
        config,
        generation,
        slot,
        warnings,
        previous,
    })
}

/// [`read`] over bytes in memory: the entry point for fuzzing, never panics.
pub fn read_bytes(bytes: &[u8]) -> Result<Loaded, DiskError> {
    read(&mut Cursor::new(bytes))
}

/// Lays out an empty metadata disk of `size` bytes: writes the disk header and zeroes
/// both slot headers. Everything the disk held before is lost.
pub fn format<D: BlockDevice>(device: &mut D, size: u64) -> Result<(), DiskError> {
    let layout = Layout::for_disk_size(size)?;
    for slot in [Slot::A, Slot::B] {
        write_at(device, layout.offset(slot), &[0; HEADER_LEN], "formatting")?;
    }
    let mut header_area = vec![0u8; BLOCK as usize];
    header_area[..HEADER_LEN].copy_from_slice(&layout.encode());
    write_at(device, 0, &header_area, "formatting")?;
    // An image file grows to the full `size`, so that it can be copied to a disk of
    // that size byte for byte.
    if read_at(device, size - 1, 1)?.is_empty() {
        write_at(device, size - 1, &[0], "formatting")?;
    }
    Ok(())
}

/// Writes `config` as the next generation into the slot the reader does not use, and
/// returns that generation. The config is validated first; the disk must be formatted.
pub fn write<D: BlockDevice>(device: &mut D, config: &Config) -> Result<u64, DiskError> {
    validate(config).map_err(|errors| {
        DiskError::InvalidConfig(errors.iter().map(|e| e.to_string()).collect())
    })?;
    let payload = postcard::to_allocvec(config).map_err(|e| DiskError::Encode(e.to_string()))?;
    let layout = read_layout(device)?;
    if payload.len() > layout.max_payload() {
        return Err(DiskError::TooLarge {
            len: payload.len(),
            max: layout.max_payload(),
        });
    }
    let slots = Slots::read(device, layout)?;
    for (slot, state) in [(Slot::A, &slots.a), (Slot::B, &slots.b)] {
        if let Err(SlotProblem::NewerVersion(version)) = state {
            return Err(DiskError::NewerSlot {
                slot,
                version: *version,
            });
        }
    }
    let target = match slots.current() {
        Some((Slot::A, _)) => Slot::B,
        Some((Slot::B, _)) | None => Slot::A,
    };
    let generation = slots
        .highest_generation()
        .checked_add(1)
        .ok_or(DiskError::GenerationExhausted)?;
    let offset = layout.offset(target);
    // 1. Invalidate the target: from here until step 3 ends it reads as empty or torn.
    write_at(device, offset, &[0; HEADER_LEN], "writing the slot header")?;
    // 2. The payload, where no reader looks while the header is zero.
    write_at(
        device,
        offset + HEADER_LEN as u64,
        &payload,
        "writing the config",
    )?;
    // 3. The header: its CRC covers the payload, so only a complete header is valid.
    let header = slot_header(&payload, generation);
    write_at(device, offset, &header, "writing the slot header")?;
    Ok(generation)
}

/// [`read`] of the device or image file at `path`.
pub fn read_path(path: &Path) -> Result<Loaded, DiskError> {
    let mut file = File::open(path).map_err(io_err("opening"))?;
    read(&mut file)
}

/// [`write`] to the existing device or image file at `path`.
pub fn write_path(path: &Path, config: &Config) -> Result<u64, DiskError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("opening"))?;
    write(&mut file, config)
}

/// Creates a new image file of `size` bytes at `path` holding `config` as generation 1.
/// The image is built beside `path` and renamed into place, so `path` is either absent
/// or complete. An existing `path` is replaced.
pub fn create_image(path: &Path, config: &Config, size: u64) -> Result<u64, DiskError> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err("creating the image"))?;
        format(&mut file, size)?;
        let generation = write(&mut file, config)?;
        std::fs::rename(&tmp, path).map_err(io_err("renaming the image into place"))?;
        Ok(generation)
    })();
    if result.is_err() {
        // Best effort: the temporary file is garbage either way.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::from_toml(include_str!("../tests/data/base.toml")).expect("base.toml is valid")
    }

    fn disk(size: u64) -> Cursor<Vec<u8>> {
        let mut d = Cursor::new(Vec::new());
        format(&mut d, size).expect("format");
        d
    }

    /// A version-3 payload (no `dataplane` section) reads as version 4 with the
    /// default worker count.
    #[test]
    fn version_3_payload_decodes_with_the_default_workers() {
        let c = config();
        assert_eq!(c.dataplane, crate::schema::DataplaneSettings::default());
        let full = v7_payload(&c);
        let tail = postcard::to_allocvec(&c.dataplane).expect("encodes");
        let v6_tail = postcard::to_allocvec(&c.policy).expect("encodes");
        let v3 = &full[..full.len() - tail.len() - v6_tail.len()];
        assert_eq!(decode(3, v3).expect("a version-3 payload"), c);
        assert!(decode(4, v3).is_err(), "not a version-4 payload");
    }

    /// Format 6 changed `ipv6`'s type, not a static address's encoding: a version-5
    /// payload (written with `ipv6` an `Ipv6Net`) decodes unchanged, and `"slaac"` and
    /// `"dhcp"` are the two unspecified-address prefixes no valid format-5 disk holds.
    #[test]
    fn version_5_payload_decodes_unchanged_and_learned_ipv6_is_two_unspecified_prefixes() {
        use crate::schema::Ipv6Setting;
        let c = config();
        let net = c.outside.ipv6_net().expect("base.toml has an outside ipv6");
        assert_eq!(
            postcard::to_allocvec(&Ipv6Setting::Static(net)).expect("encodes"),
            postcard::to_allocvec(&net).expect("encodes"),
            "a static address is written as format 5 wrote its Ipv6Net"
        );
        let v7 = v7_payload(&c);
        let tail = postcard::to_allocvec(&c.policy).expect("encodes");
        let v5 = &v7[..v7.len() - tail.len()];
        assert_eq!(decode(5, v5).expect("a version-5 payload"), c);
        for (setting, on_disk) in [(Ipv6Setting::Slaac, "::/0"), (Ipv6Setting::Dhcp, "::/1")] {
            let on_disk: ipnet::Ipv6Net = on_disk.parse().expect("net");
            let bytes = postcard::to_allocvec(&setting).expect("encodes");
            assert_eq!(bytes, postcard::to_allocvec(&on_disk).expect("encodes"));
            assert_eq!(postcard::from_bytes::<Ipv6Setting>(&bytes), Ok(setting));
        }
    }

    /// `c` as format version 7 wrote it: without format 8's sections.
    fn v7_payload(c: &Config) -> Vec<u8> {
        let full = postcard::to_allocvec(c).expect("encodes");
        let added = (&c.port_block, &c.flow_log, &c.forward, &c.host_limits);
        let tail = postcard::to_allocvec(&added).expect("encodes");
        full[..full.len() - tail.len()].to_vec()
    }

    /// A version-4, -5 or -6 payload (no `policy` section) reads as version 7 with the
    /// default policy (allow, no rules); a version-7 payload with rules reads back equal.
    #[test]
    fn version_6_payload_decodes_with_the_default_policy() {
        let c = config();
        assert_eq!(c.policy, crate::policy::Policy::default());
        let v7 = v7_payload(&c);
        let tail = postcard::to_allocvec(&c.policy).expect("encodes");
        let v6 = &v7[..v7.len() - tail.len()];
        assert_eq!(decode(6, v6).expect("a version-6 payload"), c);
        assert_eq!(decode(5, v6).expect("a version-5 payload"), c);
        assert_eq!(decode(4, v6).expect("a version-4 payload"), c);
        assert!(decode(7, v6).is_err(), "not a version-7 payload");
        let mut with_rules = c.clone();
        with_rules.policy = crate::from_toml(
            "[outside]\nport = \"wan0\"\nipv4 = \"198.51.100.10/24\"\n\
             [inside]\nport = \"lan0\"\nipv4 = \"10.10.0.1/24\"\n\
             [policy]\ndefault = \"deny\"\n\
             [[policy.rule]]\naction = \"allow\"\ndestination = \"203.0.113.0/24\"\n\
             protocol = \"tcp\"\nport = \"8000-8080\"\n\
             [[policy.rule]]\naction = \"reject\"\nsource = \"10.10.0.66\"\ncomment = \"x\"\n",
        )
        .expect("valid")
        .policy;
        let mut d = disk(MIN_DISK_SIZE);
        write(&mut d, &with_rules).expect("write");
        assert_eq!(read(&mut d).expect("read").config, with_rules);
    }

    /// A version-7 payload (none of format 8's sections) reads as version 8 with them
    /// off; a version-8 payload with each of them set reads back equal.
    #[test]
    fn version_7_payload_decodes_with_the_format_8_sections_off() {
        let c = config();
        assert_eq!(c.port_block, crate::port_block::PortBlock::default());
        assert_eq!(c.flow_log, crate::flow_log::FlowLog::default());
        assert!(c.forward.is_empty());
        assert!(!c.host_limits.any());
        let v7 = v7_payload(&c);
        assert_eq!(decode(7, &v7).expect("a version-7 payload"), c);
        assert!(decode(8, &v7).is_err(), "not a version-8 payload");
        let mut all = crate::from_toml(
            "[outside]\nport = \"wan0\"\nipv4 = \"198.51.100.10/24\"\n\
             [inside]\nport = \"lan0\"\nipv4 = \"10.10.0.1/24\"\n\
             [nat]\nport_min = 10000\n\
             [[forward]]\nprotocol = \"tcp\"\nport = \"8000-8009\"\nto = \"10.10.0.5\"\n\
             to_port = 9000\nallow = [\"203.0.113.0/24\"]\ncomment = \"web\"\n",
        )
        .expect("valid");
        assert_eq!(all.forward.len(), 1);
        all.port_block = crate::port_block::PortBlock {
            size: 64,
            mode: crate::port_block::Mode::Deterministic,
        };
        all.dataplane.workers = 2;
        all.flow_log.ipfix = Some("192.0.2.9:4739".parse().expect("addr"));
        all.flow_log.interval = 600;
        all.host_limits = crate::host_limits::HostLimits {
            new_sessions_per_second: Some(100),
            new_sessions_burst: Some(300),
            packets_per_second: Some(20_000),
            packets_burst: None,
        };
        let mut d = disk(MIN_DISK_SIZE);
        write(&mut d, &all).expect("write");
        assert_eq!(read(&mut d).expect("read").config, all);
    }

    #[test]
    fn layout_of_default_disk() {
        let l = Layout::for_disk_size(DEFAULT_DISK_SIZE).expect("layout");
        assert_eq!(l.slot_size, 127 * 4096);
        assert!(l.offset(Slot::B) + u64::from(l.slot_size) <= DEFAULT_DISK_SIZE);
        assert!(matches!(
            Layout::for_disk_size(MIN_DISK_SIZE - 1),
            Err(DiskError::BadSize(_))
        ));
        assert_eq!(
            Layout::for_disk_size(MIN_DISK_SIZE).expect("min").slot_size,
            4096
        );
        // Big block devices keep 1 MiB slots and leave the rest unused.
        assert_eq!(
            Layout::for_disk_size(100 << 30).expect("big").slot_size,
            MAX_SLOT_SIZE
        );
    }

    #[test]
    fn format_makes_full_size_image() {
        let d = disk(DEFAULT_DISK_SIZE);
        assert_eq!(d.get_ref().len() as u64, DEFAULT_DISK_SIZE);
        assert!(is_metadata_disk(d.get_ref()));
    }

    #[test]
    fn empty_disk_has_no_config() {
        let d = disk(MIN_DISK_SIZE);
        let err = read_bytes(d.get_ref()).expect_err("no config yet");
        assert_eq!(
            err.to_string(),
            "no valid config: slot A: empty; slot B: empty; write one with \
             `natbox-config build`"
        );
    }

    #[test]
    fn writes_alternate_slots() {
        let mut d = disk(MIN_DISK_SIZE);
        let mut c = config();
        for (generation, slot) in [(1, Slot::A), (2, Slot::B), (3, Slot::A), (4, Slot::B)] {
            c.hostname = format!("gen{generation}");
            assert_eq!(write(&mut d, &c).expect("write"), generation);
            let loaded = read(&mut d).expect("read");
            assert_eq!(
                (loaded.generation, loaded.slot, loaded.warnings),
                (generation, slot, vec![])
            );
            assert_eq!(loaded.config, c);
        }
    }

    #[test]
    fn invalid_config_is_not_written() {
        let mut d = disk(MIN_DISK_SIZE);
        let mut c = config();
        c.timeouts.udp = 30;
        let err = write(&mut d, &c).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "refusing to write an invalid config: timeouts.udp: 30 s is below the 120 s RFC \
             4787 REQ-5 requires; use 120 or more"
        );
    }

    #[test]
    fn too_large_config_is_refused() {
        let mut d = disk(MIN_DISK_SIZE);
        let mut c = config();
        c.shell.password_hash = Some(format!("$6$salt${}", "x".repeat(5000)));
        let err = write(&mut d, &c).expect_err("too large");
        assert!(err.to_string().starts_with("config encodes to 5"), "{err}");
        assert!(err
            .to_string()
            .ends_with("but a slot holds 4064; shorten it or build a larger disk"));
    }

    #[test]
    fn checksum_mismatch_falls_back_with_warning() {
        let mut d = disk(MIN_DISK_SIZE);
        let c = config();
        write(&mut d, &c).expect("gen 1");
        write(&mut d, &c).expect("gen 2");
        // Damage slot B's payload.
        d.get_mut()[(BLOCK + 4096 + 40) as usize] ^= 0x55;
        let loaded = read(&mut d).expect("slot A");
        assert_eq!((loaded.slot, loaded.generation), (Slot::A, 1));
        assert_eq!(
            loaded.warnings,
            vec![
                "slot B: checksum mismatch (torn write or damaged disk); using slot A \
                 (generation 1)"
            ]
        );
    }

    #[test]
    fn newer_format_is_refused_by_name() {
        let mut d = disk(MIN_DISK_SIZE);
        write(&mut d, &config()).expect("gen 1");
        let newer = FORMAT_VERSION + 1;
        d.get_mut()[BLOCK as usize + 8..BLOCK as usize + 10].copy_from_slice(&newer.to_le_bytes());
        let err = read(&mut d).expect_err("newer");
        assert_eq!(
            err.to_string(),
            format!(
                "no valid config: slot A: format version {newer} is newer than this binary \
                 supports ({FORMAT_VERSION}); upgrade natbox; slot B: empty; write one with \
                 `natbox-config build`"
            )
        );
        let err = write(&mut d, &config()).expect_err("must not overwrite");
        assert_eq!(
            err.to_string(),
            format!(
                "slot A: format version {newer} is newer than this binary supports \
                 ({FORMAT_VERSION}); upgrade natbox-config before writing"
            )
        );
    }

    #[test]
    fn newer_layout_is_refused_by_name() {
        let mut d = disk(MIN_DISK_SIZE);
        d.get_mut()[8] = 2;
        assert_eq!(
            read(&mut d).expect_err("newer").to_string(),
            "disk layout version 2 is newer than this binary supports (1); upgrade natbox"
        );
    }

    #[test]
    fn damaged_disk_header() {
        let mut d = disk(MIN_DISK_SIZE);
        d.get_mut()[13] ^= 1;
        assert_eq!(
            read(&mut d).expect_err("damaged").to_string(),
            "disk header damaged (checksum mismatch); rebuild the disk with \
             `natbox-config build`"
        );
        // A header claiming huge slots (with a good CRC) is refused before any read.
        let mut forged = Layout { slot_size: 4096 }.encode();
        forged[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let crc = crc32fast::hash(&forged[..CRC_AT]);
        forged[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            read_bytes(&forged).expect_err("huge").to_string(),
            "disk header damaged (slot size not a multiple of 4096 up to 1 MiB); rebuild the \
             disk with `natbox-config build`"
        );
    }

    #[test]
    fn not_a_metadata_disk() {
        assert_eq!(
            read_bytes(&[0; 8192]).expect_err("zeros").to_string(),
            "not a natbox metadata disk (no NATBOXMD header); build one with \
             `natbox-config build`"
        );
        assert!(!probe(&mut Cursor::new(vec![0u8; 10])).expect("probe"));
        assert!(probe(&mut disk(MIN_DISK_SIZE)).expect("probe"));
    }

    #[test]
    fn equal_generations_prefer_a_and_warn() {
        let mut d = disk(MIN_DISK_SIZE);
        write(&mut d, &config()).expect("gen 1");
        let image = d.get_mut();
        let (a, b) = (BLOCK as usize, 2 * BLOCK as usize);
        let slot_a = image[a..b].to_vec();
        image[b..b + slot_a.len()].copy_from_slice(&slot_a);
        let loaded = read(&mut d).expect("read");
        assert_eq!((loaded.slot, loaded.generation), (Slot::A, 1));
        assert_eq!(
            loaded.warnings,
            vec!["slot B: holds the same generation 1; using slot A"]
        );
        // The writer agrees A is current and writes B.
        write(&mut d, &config()).expect("gen 2");
        assert_eq!(read(&mut d).expect("read").slot, Slot::B);
    }

    #[test]
    fn rule_breaking_slot_is_skipped() {
        let mut d = disk(MIN_DISK_SIZE);
        let good = config();
        write(&mut d, &good).expect("gen 1");
        // Forge generation 2 in slot B with a config this binary refuses.
        let mut bad = config();
        bad.timeouts.udp = 30;
        let payload = postcard::to_allocvec(&bad).expect("encode");
        let header = slot_header(&payload, 2);
        let at = (BLOCK + 4096) as usize;
        d.get_mut()[at..at + HEADER_LEN].copy_from_slice(&header);
        d.get_mut()[at + HEADER_LEN..at + HEADER_LEN + payload.len()].copy_from_slice(&payload);
        let loaded = read(&mut d).expect("slot A");
        assert_eq!(loaded.slot, Slot::A);
        assert_eq!(
            loaded.warnings,
            vec![
                "slot B: generation 2 breaks 1 rule(s) of this binary, first timeouts.udp: 30 \
                 s is below the 120 s RFC 4787 REQ-5 requires; use 120 or more; rewrite it \
                 with natbox-config build; using slot A (generation 1)"
            ]
        );
        // The next write goes past generation 2 so it wins over the forged slot.
        assert_eq!(write(&mut d, &good).expect("gen 3"), 3);
        assert_eq!(read(&mut d).expect("read").slot, Slot::B);
    }
}
