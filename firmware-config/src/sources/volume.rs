//! A file system on a device, whichever of FAT or ISO 9660 it is, behind one small
//! interface: its label, and a file by path read up to a size cap.
//!
//! Every byte comes through [`Bounded`], which fails a read once
//! [`MAX_DEVICE_READ`](super::MAX_DEVICE_READ) bytes were read in all, so no file
//! system structure, however broken, makes the box read more; nothing here writes.

use super::{fat, iso, MAX_DEVICE_READ};
use std::io::{self, Read, Seek, SeekFrom};

/// A device with a budget of bytes to read.
#[derive(Debug)]
pub(super) struct Bounded<D> {
    device: D,
    left: u64,
}

impl<D> Bounded<D> {
    pub(super) fn new(device: D) -> Self {
        Bounded {
            device,
            left: MAX_DEVICE_READ,
        }
    }
}

impl<D: Read> Read for Bounded<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            return Err(io::Error::other(format!(
                "read more than {} MiB from the volume (a broken file system?)",
                MAX_DEVICE_READ >> 20
            )));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.device.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl<D: Seek> Seek for Bounded<D> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.device.seek(pos)
    }
}

/// An open file system.
pub(super) enum Volume<D: Read + Seek> {
    Fat(fat::Fat<D>),
    Iso(iso::Iso<D>),
}

impl<D: Read + Seek> std::fmt::Debug for Volume<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Volume::Fat(_) => "Volume::Fat",
            Volume::Iso(_) => "Volume::Iso",
        })
    }
}

/// Opens the file system on `device`: `Ok(None)` when it holds neither FAT nor ISO
/// 9660, an error when it looks like one but cannot be read.
pub(super) fn open<D: Read + Seek>(device: D) -> Result<Option<Volume<D>>, String> {
    let mut device = Bounded::new(device);
    if iso::probe(&mut device)? {
        return iso::Iso::open(device).map(|v| Some(Volume::Iso(v)));
    }
    if fat::probe(&mut device)? {
        return fat::Fat::open(device).map(|v| Some(Volume::Fat(v)));
    }
    Ok(None)
}

impl<D: Read + Seek> Volume<D> {
    /// The volume label, as written (trailing spaces trimmed).
    pub(super) fn label(&self) -> String {
        match self {
            Volume::Fat(v) => v.label(),
            Volume::Iso(v) => v.label(),
        }
    }

    /// The file at `path` (names matched case-insensitively), `Ok(None)` when it is
    /// not there, an error when it is larger than `cap` bytes or cannot be read.
    pub(super) fn read_file(&mut self, path: &[&str], cap: u64) -> Result<Option<Vec<u8>>, String> {
        let name = path.join("/");
        match self {
            Volume::Fat(v) => v.read_file(path, cap),
            Volume::Iso(v) => v.read_file(path, cap),
        }
        .map_err(|e| format!("{name}: {e}"))
    }
}

/// Refuses a file of `size` bytes when it is over `cap`.
pub(super) fn check_size(size: u64, cap: u64) -> Result<(), String> {
    if size > cap {
        return Err(format!(
            "{size} bytes, more than the {} KiB natbox reads",
            cap >> 10
        ));
    }
    Ok(())
}

/// Reads exactly `len` bytes (already checked against a cap) from `reader`.
pub(super) fn read_exactly(reader: impl Read, len: u64) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    reader
        .take(len)
        .read_to_end(&mut data)
        .map_err(|e| e.to_string())?;
    if (data.len() as u64) < len {
        return Err(format!(
            "ends after {} of its {len} bytes (truncated volume)",
            data.len()
        ));
    }
    Ok(data)
}
