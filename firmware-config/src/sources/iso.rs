//! ISO 9660 (ECMA-119) volumes: the label of the primary volume descriptor and files by
//! path, named as Joliet (the supplementary descriptor's UCS-2 tree) or Rock Ridge
//! (`NM` entries, IEEE P1282) name them, else by their ISO 9660 names without the
//! `;1` version. `genisoimage -J -R` and `xorriso -as mkisofs -J -R`, which
//! cloud-localds and OpenStack's nova use, write both.
//!
//! Bounds: at most [`MAX_DESCRIPTORS`] volume descriptors, directories read up to
//! [`MAX_DIR_BYTES`] and [`MAX_DIR_ENTRIES`] records; a record's fields are read only
//! within its own length. Rock Ridge continuation areas (`CE`) are not followed: the
//! short names these volumes hold fit their record.

use super::volume::{check_size, read_exactly, Bounded};
use super::MAX_DIR_ENTRIES;
use std::io::{Read, Seek, SeekFrom};

const SECTOR: u64 = 2048;
/// Volume descriptors start at sector 16.
const FIRST_DESCRIPTOR: u64 = 16;
/// Volume descriptors read before giving up on a terminator.
const MAX_DESCRIPTORS: u64 = 32;
/// Bytes of one directory read.
const MAX_DIR_BYTES: u32 = 64 << 10;

/// An open ISO 9660 volume.
pub(super) struct Iso<D> {
    device: Bounded<D>,
    label: String,
    root: Record,
    /// Names are UCS-2 (the Joliet tree).
    joliet: bool,
}

/// A directory record: where its data is, how long, whether a directory, its name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    lba: u32,
    len: u32,
    dir: bool,
    name: String,
}

/// Whether sector 16 holds a volume descriptor (`CD001`).
pub(super) fn probe<D: Read + Seek>(device: &mut Bounded<D>) -> Result<bool, String> {
    Ok(descriptor(device, 0)?.is_some())
}

/// Volume descriptor `index`, or `None` when the device ends or it has no `CD001`.
fn descriptor<D: Read + Seek>(
    device: &mut Bounded<D>,
    index: u64,
) -> Result<Option<[u8; SECTOR as usize]>, String> {
    let mut sector = [0u8; SECTOR as usize];
    device
        .seek(SeekFrom::Start((FIRST_DESCRIPTOR + index) * SECTOR))
        .map_err(|e| e.to_string())?;
    if device.read_exact(&mut sector).is_err() || sector[1..6] != *b"CD001" {
        return Ok(None);
    }
    Ok(Some(sector))
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

impl<D: Read + Seek> Iso<D> {
    pub(super) fn open(mut device: Bounded<D>) -> Result<Self, String> {
        let (mut label, mut primary, mut joliet) = (None, None, None);
        for index in 0..MAX_DESCRIPTORS {
            let Some(d) = descriptor(&mut device, index)? else {
                break;
            };
            match d[0] {
                1 if primary.is_none() => {
                    label = Some(String::from_utf8_lossy(&d[40..72]).trim_end().to_string());
                    primary = record(&d[156..190], false);
                }
                2 if [b"%/@", b"%/C", b"%/E"].contains(&&[d[88], d[89], d[90]]) => {
                    joliet = record(&d[156..190], true);
                }
                255 => break,
                _ => {}
            }
        }
        let (Some(label), Some(primary)) = (label, primary) else {
            return Err("ISO 9660 volume without a readable primary volume descriptor".into());
        };
        let (root, joliet) = match joliet {
            Some(root) => (root, true),
            None => (primary, false),
        };
        Ok(Iso {
            device,
            label,
            root,
            joliet,
        })
    }

    pub(super) fn label(&self) -> String {
        self.label.clone()
    }

    pub(super) fn read_file(&mut self, path: &[&str], cap: u64) -> Result<Option<Vec<u8>>, String> {
        let mut dir = self.root.clone();
        for (i, name) in path.iter().enumerate() {
            let Some(entry) = self.find(&dir, name)? else {
                return Ok(None);
            };
            match (i + 1 == path.len(), entry.dir) {
                (false, true) => dir = entry,
                (true, false) => {
                    check_size(u64::from(entry.len), cap)?;
                    self.seek(entry.lba)?;
                    return read_exactly(&mut self.device, u64::from(entry.len)).map(Some);
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    fn seek(&mut self, lba: u32) -> Result<(), String> {
        self.device
            .seek(SeekFrom::Start(u64::from(lba) * SECTOR))
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// The record called `name` (case-insensitive) in directory `dir`.
    fn find(&mut self, dir: &Record, name: &str) -> Result<Option<Record>, String> {
        if dir.len > MAX_DIR_BYTES {
            return Err(format!(
                "a directory on the path is {} bytes, more than the {} KiB natbox reads",
                dir.len,
                MAX_DIR_BYTES >> 10
            ));
        }
        self.seek(dir.lba)?;
        let data = read_exactly(&mut self.device, u64::from(dir.len))?;
        let mut entries = 0;
        for chunk in data.chunks(SECTOR as usize) {
            let mut at = 0;
            // A zero length byte pads the rest of the sector; records never cross one.
            while let Some(&len) = chunk.get(at).filter(|&&l| l != 0) {
                let Some(raw) = chunk.get(at..at + usize::from(len)) else {
                    return Err("a directory record runs past its sector".into());
                };
                at += usize::from(len);
                entries += 1;
                if entries > MAX_DIR_ENTRIES {
                    return Err(format!(
                        "a directory on the path has more than {MAX_DIR_ENTRIES} entries"
                    ));
                }
                match record(raw, self.joliet) {
                    Some(r) if !r.name.is_empty() && r.name.eq_ignore_ascii_case(name) => {
                        return Ok(Some(r))
                    }
                    _ => {}
                }
            }
        }
        Ok(None)
    }
}

/// Parses one directory record (`.` and `..`, and the root in a volume descriptor, get
/// an empty name); `None` for records too short to hold their name.
fn record(raw: &[u8], joliet: bool) -> Option<Record> {
    let name_len = usize::from(*raw.get(32)?);
    let id = raw.get(33..33 + name_len)?;
    let name = if id == [0] || id == [1] {
        String::new()
    } else if joliet {
        let units = id.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    } else {
        // The system use area follows the name, padded to an even offset.
        let su = raw
            .get(33 + name_len + (1 - name_len % 2)..)
            .unwrap_or_default();
        rock_ridge_name(su).unwrap_or_else(|| String::from_utf8_lossy(id).into_owned())
    };
    let name = match name.rsplit_once(';') {
        Some((base, _version)) => base.to_string(),
        None => name,
    };
    let name = if joliet {
        name
    } else {
        name.trim_end_matches('.').to_string()
    };
    Some(Record {
        lba: u32_le(raw, 2),
        len: u32_le(raw, 10),
        dir: raw[25] & 0x02 != 0,
        name,
    })
}

/// The Rock Ridge `NM` name in a record's system use area, if it has one.
fn rock_ridge_name(mut su: &[u8]) -> Option<String> {
    let mut name = Vec::new();
    let mut found = false;
    while su.len() >= 4 {
        let len = usize::from(su[2]);
        if len < 4 || len > su.len() {
            break;
        }
        if su[..2] == *b"NM" && len >= 5 {
            found = true;
            name.extend_from_slice(&su[5..len]);
        }
        su = &su[len..];
    }
    found.then(|| String::from_utf8_lossy(&name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rock_ridge_nm_entries_are_joined_and_other_entries_skipped() {
        let su = [
            b"PX".as_slice(),
            &[8, 1, 0, 0, 0, 0],
            b"NM",
            &[9, 1, 1],
            b"user",
            b"NM",
            &[10, 1, 0],
            b"-data",
        ]
        .concat();
        assert_eq!(rock_ridge_name(&su).as_deref(), Some("user-data"));
        assert_eq!(rock_ridge_name(b"PX\x03\x01"), None);
    }

    #[test]
    fn records_too_short_for_their_name_are_skipped() {
        let mut raw = vec![0u8; 34];
        raw[32] = 20;
        assert_eq!(record(&raw, false), None);
    }
}
