//! FAT12/16/32 volumes (Microsoft's FAT specification, 2005): the label and files by
//! path, with long (VFAT) names, which `user-data`, `meta-data` and `openstack` need.
//!
//! Every number taken from the volume is checked before use: the boot sector's fields
//! against the spec's ranges, every cluster number against the volume's cluster count,
//! all offsets computed with checked arithmetic. A cluster chain is followed only as
//! far as the bytes wanted (a file's size, at most [`MAX_DIR_ENTRIES`] directory
//! entries), so a cyclic chain cannot loop. A long name is used only when its checksum
//! matches the short entry it precedes.

use super::volume::{check_size, Bounded};
use super::MAX_DIR_ENTRIES;
use std::io::{Read, Seek, SeekFrom};

const ENTRY: usize = 32;
const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_LONG_NAME: u8 = 0x0F;

/// An open FAT volume.
pub(super) struct Fat<D> {
    device: Bounded<D>,
    geometry: Geometry,
    label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fat12,
    Fat16,
    Fat32,
}

/// Where things are, in bytes, as the boot sector says.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    kind: Kind,
    cluster_bytes: u64,
    /// First byte of the first FAT.
    fat: u64,
    /// The FAT12/16 root directory region (offset, bytes); FAT32 has a root cluster.
    root_region: (u64, u64),
    root_cluster: u32,
    /// First byte of cluster 2.
    data: u64,
    /// Clusters 2..=last_cluster exist.
    last_cluster: u32,
}

/// A directory entry: a file or a directory, where its data starts, how long.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    dir: bool,
    cluster: u32,
    size: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn broken(what: &str) -> String {
    format!("FAT file system is damaged: {what}")
}

/// Whether the first sector looks like a FAT boot sector: a jump, the 0x55AA
/// signature and a `FAT` file system type (at 54 for FAT12/16, at 82 for FAT32).
pub(super) fn probe<D: Read + Seek>(device: &mut Bounded<D>) -> Result<bool, String> {
    let mut sector = [0u8; 512];
    device.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    if device.read_exact(&mut sector).is_err() {
        return Ok(false);
    }
    Ok(matches!(sector[0], 0xEB | 0xE9)
        && sector[510..512] == [0x55, 0xAA]
        && (sector[54..57] == *b"FAT" || sector[82..85] == *b"FAT"))
}

/// The geometry and boot-sector label of a boot sector (512 bytes).
fn geometry(b: &[u8; 512]) -> Result<(Geometry, String), String> {
    let bytes_per_sector = u64::from(u16_at(b, 11));
    let sectors_per_cluster = u64::from(b[13]);
    let reserved = u64::from(u16_at(b, 14));
    let fats = u64::from(b[16]);
    let root_entries = u64::from(u16_at(b, 17));
    let total = match u16_at(b, 19) {
        0 => u64::from(u32_at(b, 32)),
        n => u64::from(n),
    };
    let fat_sectors = match u16_at(b, 22) {
        0 => u64::from(u32_at(b, 36)),
        n => u64::from(n),
    };
    if !(512..=4096).contains(&bytes_per_sector) || !bytes_per_sector.is_power_of_two() {
        return Err(broken("bytes per sector"));
    }
    if !sectors_per_cluster.is_power_of_two() || reserved == 0 || fats == 0 || fat_sectors == 0 {
        return Err(broken("boot sector fields"));
    }
    let root_sectors = (root_entries * ENTRY as u64).div_ceil(bytes_per_sector);
    let first_data = reserved + fats * fat_sectors + root_sectors;
    let clusters = total
        .checked_sub(first_data)
        .ok_or_else(|| broken("total sectors"))?
        / sectors_per_cluster;
    let kind = match clusters {
        0 => return Err(broken("no clusters")),
        1..=4084 => Kind::Fat12,
        4085..=65524 => Kind::Fat16,
        _ => Kind::Fat32,
    };
    let label_at = if kind == Kind::Fat32 { 71 } else { 43 };
    let signature_at = if kind == Kind::Fat32 { 66 } else { 38 };
    let label = if b[signature_at] == 0x29 {
        String::from_utf8_lossy(&b[label_at..label_at + 11])
            .trim_end()
            .to_string()
    } else {
        String::new()
    };
    let last_cluster = u32::try_from(clusters + 1).map_err(|_| broken("cluster count"))?;
    Ok((
        Geometry {
            kind,
            cluster_bytes: sectors_per_cluster * bytes_per_sector,
            fat: reserved * bytes_per_sector,
            root_region: (
                (reserved + fats * fat_sectors) * bytes_per_sector,
                root_sectors * bytes_per_sector,
            ),
            root_cluster: u32_at(b, 44),
            data: first_data * bytes_per_sector,
            last_cluster,
        },
        label,
    ))
}

impl<D: Read + Seek> Fat<D> {
    pub(super) fn open(mut device: Bounded<D>) -> Result<Self, String> {
        let mut sector = [0u8; 512];
        device.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        device.read_exact(&mut sector).map_err(|e| e.to_string())?;
        let (geometry, boot_label) = geometry(&sector)?;
        let mut fat = Fat {
            device,
            geometry,
            label: boot_label,
        };
        // The root directory's volume entry is the label `blkid` reports.
        let root = fat.root()?;
        if let Some(label) = fat.label_entry(&root) {
            fat.label = label;
        }
        Ok(fat)
    }

    pub(super) fn label(&self) -> String {
        self.label.clone()
    }

    pub(super) fn read_file(&mut self, path: &[&str], cap: u64) -> Result<Option<Vec<u8>>, String> {
        let mut dir = self.root()?;
        for (i, name) in path.iter().enumerate() {
            let Some(entry) = entries(&dir)
                .into_iter()
                .find(|e| e.name.eq_ignore_ascii_case(name))
            else {
                return Ok(None);
            };
            match (i + 1 == path.len(), entry.dir) {
                (false, true) => {
                    dir = self.chain(entry.cluster, (MAX_DIR_ENTRIES * ENTRY) as u64, false)?
                }
                (true, false) => {
                    check_size(u64::from(entry.size), cap)?;
                    return self
                        .chain(entry.cluster, u64::from(entry.size), true)
                        .map(Some);
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The root directory's bytes, at most `MAX_DIR_ENTRIES` entries.
    fn root(&mut self) -> Result<Vec<u8>, String> {
        let want = (MAX_DIR_ENTRIES * ENTRY) as u64;
        match self.geometry.kind {
            Kind::Fat32 => self.chain(self.geometry.root_cluster, want, false),
            _ => {
                let (at, len) = self.geometry.root_region;
                self.read_at(at, len.min(want))
            }
        }
    }

    /// The label in the root directory's volume entry, if it has one.
    fn label_entry(&self, root: &[u8]) -> Option<String> {
        root.chunks_exact(ENTRY)
            .take_while(|e| e[0] != 0)
            .find(|e| e[0] != 0xE5 && e[11] != ATTR_LONG_NAME && e[11] & ATTR_VOLUME_ID != 0)
            .map(|e| String::from_utf8_lossy(&e[..11]).trim_end().to_string())
    }

    fn read_at(&mut self, at: u64, len: u64) -> Result<Vec<u8>, String> {
        self.device
            .seek(SeekFrom::Start(at))
            .map_err(|e| e.to_string())?;
        super::volume::read_exactly(&mut self.device, len)
    }

    /// Up to `want` bytes of the cluster chain from `first`: exactly `want` when `exact`
    /// (a file), else as much as the chain holds (a directory).
    fn chain(&mut self, first: u32, want: u64, exact: bool) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut cluster = first;
        while (out.len() as u64) < want {
            if cluster < 2 || cluster > self.geometry.last_cluster {
                if exact {
                    return Err(broken("a file's cluster chain ends early"));
                }
                break;
            }
            let offset = u64::from(cluster - 2)
                .checked_mul(self.geometry.cluster_bytes)
                .and_then(|o| o.checked_add(self.geometry.data))
                .ok_or_else(|| broken("cluster offset"))?;
            let len = self.geometry.cluster_bytes.min(want - out.len() as u64);
            out.extend(self.read_at(offset, len)?);
            cluster = self.next(cluster)?;
        }
        Ok(out)
    }

    /// The FAT entry of `cluster` (an end-of-chain mark reads as 0).
    fn next(&mut self, cluster: u32) -> Result<u32, String> {
        let n = u64::from(cluster);
        let (at, len) = match self.geometry.kind {
            Kind::Fat12 => (n + n / 2, 2),
            Kind::Fat16 => (n * 2, 2),
            Kind::Fat32 => (n * 4, 4),
        };
        let raw = self.read_at(self.geometry.fat + at, len)?;
        let value = match self.geometry.kind {
            Kind::Fat12 => {
                let v = u32::from(u16_at(&raw, 0));
                if cluster % 2 == 1 {
                    v >> 4
                } else {
                    v & 0x0FFF
                }
            }
            Kind::Fat16 => u32::from(u16_at(&raw, 0)),
            Kind::Fat32 => u32_at(&raw, 0) & 0x0FFF_FFFF,
        };
        let end = match self.geometry.kind {
            Kind::Fat12 => 0x0FF8,
            Kind::Fat16 => 0xFFF8,
            Kind::Fat32 => 0x0FFF_FFF8,
        };
        Ok(if value >= end { 0 } else { value })
    }
}

/// The files and directories of a directory's bytes, named by their long names where
/// a long name with the right checksum precedes them, else by their 8.3 names.
fn entries(dir: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut long: Vec<(u8, [u16; 13])> = Vec::new();
    for e in dir.chunks_exact(ENTRY).take(MAX_DIR_ENTRIES) {
        match (e[0], e[11]) {
            (0, _) => break,
            (0xE5, _) => long.clear(),
            (_, ATTR_LONG_NAME) => {
                if e[0] & 0x40 != 0 {
                    long.clear();
                }
                let mut units = [0u16; 13];
                let at = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
                for (u, &a) in units.iter_mut().zip(&at) {
                    *u = u16_at(e, a);
                }
                long.push((e[13], units));
            }
            (_, attr) if attr & ATTR_VOLUME_ID != 0 => long.clear(),
            (_, attr) => {
                let sum = e[..11]
                    .iter()
                    .fold(0u8, |s, &b| s.rotate_right(1).wrapping_add(b));
                let name = if !long.is_empty() && long.iter().all(|(c, _)| *c == sum) {
                    let units: Vec<u16> = long
                        .iter()
                        .rev()
                        .flat_map(|(_, u)| u.iter().copied())
                        .take_while(|&u| u != 0 && u != 0xFFFF)
                        .collect();
                    String::from_utf16_lossy(&units)
                } else {
                    short_name(&e[..11])
                };
                long.clear();
                out.push(Entry {
                    name,
                    dir: attr & ATTR_DIRECTORY != 0,
                    cluster: (u32::from(u16_at(e, 20)) << 16) | u32::from(u16_at(e, 26)),
                    size: u32_at(e, 28),
                });
            }
        }
    }
    out
}

/// `NAME    EXT` as `NAME.EXT`.
fn short_name(raw: &[u8]) -> String {
    let base = String::from_utf8_lossy(&raw[..8]).trim_end().to_string();
    let ext = String::from_utf8_lossy(&raw[8..11]).trim_end().to_string();
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_with_a_wrong_checksum_fall_back_to_the_short_name() {
        let mut dir = vec![0u8; 3 * ENTRY];
        // One long-name entry "user-data" (last, sequence 1), then the short entry.
        let lfn = &mut dir[..ENTRY];
        lfn[0] = 0x41;
        lfn[11] = ATTR_LONG_NAME;
        let units: Vec<u16> = "user-data".encode_utf16().chain([0]).collect();
        let at = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
        for (i, &a) in at.iter().enumerate() {
            let u = units.get(i).copied().unwrap_or(0xFFFF);
            lfn[a..a + 2].copy_from_slice(&u.to_le_bytes());
        }
        let short = b"USER-D~1   ";
        dir[ENTRY..ENTRY + 11].copy_from_slice(short);
        let sum = short
            .iter()
            .fold(0u8, |s, &b| s.rotate_right(1).wrapping_add(b));
        dir[13] = sum;
        assert_eq!(entries(&dir)[0].name, "user-data");
        dir[13] = sum.wrapping_add(1);
        assert_eq!(entries(&dir)[0].name, "USER-D~1");
    }

    #[test]
    fn boot_sectors_with_impossible_geometry_are_refused() {
        let mut b = [0u8; 512];
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 1;
        b[14] = 1;
        b[16] = 2;
        b[17] = 16;
        b[19..21].copy_from_slice(&4u16.to_le_bytes()); // fewer sectors than the FATs
        b[22] = 1;
        assert!(geometry(&b).is_err());
        b[13] = 3; // not a power of two
        assert!(geometry(&b).is_err());
    }
}
