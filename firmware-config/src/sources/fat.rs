//! FAT12/16/32 volumes, through `fatfs`: the label (the root directory's volume entry,
//! as `blkid` reads it, else the boot sector's) and files by path, each directory
//! walked for at most [`MAX_DIR_ENTRIES`] entries.

use super::volume::{check_size, read_exactly, Bounded};
use super::MAX_DIR_ENTRIES;
use fatfs::{Dir, DirEntry, FileSystem, FsOptions};
use std::io::{Read, Seek, SeekFrom};

/// An open FAT volume.
pub(super) struct Fat<D: Read + Seek> {
    fs: FileSystem<Bounded<D>>,
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

impl<D: Read + Seek> Fat<D> {
    pub(super) fn open(mut device: Bounded<D>) -> Result<Self, String> {
        device.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        let fs = FileSystem::new(device, FsOptions::new())
            .map_err(|e| format!("FAT file system cannot be read: {e}"))?;
        Ok(Fat { fs })
    }

    pub(super) fn label(&self) -> String {
        match self.fs.read_volume_label_from_root_dir() {
            Ok(Some(label)) if !label.trim().is_empty() => label.trim_end().to_string(),
            _ => self.fs.volume_label().trim_end().to_string(),
        }
    }

    pub(super) fn read_file(&mut self, path: &[&str], cap: u64) -> Result<Option<Vec<u8>>, String> {
        let mut dir = self.fs.root_dir();
        for (i, name) in path.iter().enumerate() {
            let Some(entry) = find(&dir, name)? else {
                return Ok(None);
            };
            let last = i + 1 == path.len();
            match (last, entry.is_dir()) {
                (false, true) => dir = entry.to_dir(),
                (true, false) => {
                    check_size(entry.len(), cap)?;
                    return read_exactly(entry.to_file(), entry.len()).map(Some);
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }
}

/// The entry called `name` (case-insensitive) among the first `MAX_DIR_ENTRIES`.
fn find<'a, D: Read + Seek>(
    dir: &Dir<'a, Bounded<D>>,
    name: &str,
) -> Result<Option<DirEntry<'a, Bounded<D>>>, String> {
    for (n, entry) in dir.iter().enumerate() {
        if n >= MAX_DIR_ENTRIES {
            return Err(format!(
                "a directory on the path has more than {MAX_DIR_ENTRIES} entries"
            ));
        }
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.file_name().eq_ignore_ascii_case(name) {
            return Ok(Some(entry));
        }
    }
    Ok(None)
}
