//! The bootable disk image: a unified kernel image (UKI) as `EFI/BOOT/BOOTX64.EFI` on a
//! FAT16 EFI system partition inside a GPT disk, written without loop devices or root.
//!
//! Legacy BIOS boot of the same disk (optional): syslinux's `gptmbr.bin` in the
//! protective MBR, the ESP marked legacy-BIOS-bootable, and `syslinux.cfg` booting
//! `/vmlinuz` and `/initrd.img` with the UKI's command line; `build.sh` then runs the
//! (mtools-based, rootless) syslinux installer for the VBR, ldlinux.sys and ldlinux.c32,
//! for which the ESP keeps [`SPARE`] bytes free. `/vmlinuz` and `/initrd.img` are real
//! files, copies of the UKI's `.linux` and `.initrd` sections, so the ESP is
//! fsck.fat-clean (every cluster belongs to one file) and a repairing fsck cannot
//! damage it. The price is a second copy of the kernel and initramfs: about 15 MB, which
//! keeps the disk near 32 MiB (the boot test's budget is 40 MiB) because the layout is
//! tight: the ESP is its contents plus the FAT structures and [`SPARE`], rounded to
//! 64 KiB (2 KiB clusters), between [`ESP_START`] (64 KiB, not the customary 1 MiB:
//! 960 KiB of the size budget back, and 64 KiB is aligned for any disk's physical
//! blocks) and a 64 KiB tail for the backup GPT.
//!
//! Reproducible: the PE timestamp of the UKI is zeroed (objcopy stamps the build
//! time), FAT timestamps are the DOS epoch, and the disk GUID, partition GUID and FAT
//! volume id are derived from the UKI's bytes, so the same inputs give the same disk.

use std::io::{self, Cursor, Seek, SeekFrom, Write};
use std::path::Path;

pub const SECTOR: u64 = 512;
const MIB: u64 = 1 << 20;
/// FAT cluster size: FAT16 wants 4085 to 65524 clusters, so with 2 KiB clusters an
/// ESP from [`MIN_ESP`] up to 128 MiB.
const CLUSTER: u64 = 2048;
const MIN_ESP: u64 = 9 * MIB;
/// Free room left on the ESP for the files the syslinux installer adds (ldlinux.sys and
/// ldlinux.c32, 179 KB with syslinux 6.04).
const SPARE: u64 = 256 << 10;
/// The ESP's size and the disk's are multiples of this.
const ALIGN: u64 = 64 << 10;
/// Where the ESP starts: after the protective MBR, the GPT header and its 32 sectors of
/// entries (17 KiB), aligned (`natbox-image disk` passes the same offset to syslinux's
/// installer).
pub const ESP_START: u64 = ALIGN;
/// GPT partition entries: 128 entries of 128 bytes, 32 sectors.
const ENTRIES: usize = 128;
const ENTRY_SIZE: usize = 128;
const ENTRY_SECTORS: u64 = (ENTRIES * ENTRY_SIZE) as u64 / SECTOR;
/// The ESP type GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B, in GPT's mixed-endian form.
const ESP_TYPE: [u8; 16] = [
    0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
];

/// Zeroes the COFF TimeDateStamp of a PE image and recomputes its checksum.
pub fn pe_normalize(pe: &mut [u8]) -> Result<(), String> {
    let bad = || "not a PE image".to_string();
    if pe.len() < 0x40 || &pe[..2] != b"MZ" {
        return Err(bad());
    }
    let lfanew = u32::from_le_bytes(pe[0x3c..0x40].try_into().unwrap()) as usize;
    if pe.len() < lfanew + 24 + 68 || &pe[lfanew..lfanew + 4] != b"PE\0\0" {
        return Err(bad());
    }
    pe[lfanew + 8..lfanew + 12].fill(0);
    let checksum_at = lfanew + 24 + 64;
    pe[checksum_at..checksum_at + 4].fill(0);
    let sum = pe_checksum(pe, checksum_at);
    pe[checksum_at..checksum_at + 4].copy_from_slice(&sum.to_le_bytes());
    Ok(())
}

/// The PE optional-header checksum: 16-bit one's-complement-style sum of the file
/// (skipping the checksum field), folded, plus the file length.
fn pe_checksum(pe: &[u8], checksum_at: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in pe.chunks(2).enumerate() {
        let at = i * 2;
        if at >= checksum_at && at < checksum_at + 4 {
            continue;
        }
        let word = u16::from_le_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u64::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(pe.len() as u32)
}

/// 128 bits from `data` and a `salt` (two FNV-1a passes), shaped as a version-4 GUID in
/// GPT's on-disk byte order.
pub fn derived_guid(data: &[u8], salt: &str) -> [u8; 16] {
    let fnv = |seed: u64| {
        let mut h = seed;
        for &b in salt.as_bytes().iter().chain(data) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h
    };
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_le_bytes());
    g[8..].copy_from_slice(&fnv(0x6c62_272e_07bb_0142).to_le_bytes());
    g[7] = (g[7] & 0x0f) | 0x40;
    g[8] = (g[8] & 0x3f) | 0x80;
    g
}

#[derive(Debug)]
struct DosEpoch;

impl fatfs::TimeProvider for DosEpoch {
    fn get_current_date(&self) -> fatfs::Date {
        fatfs::Date {
            year: 1980,
            month: 1,
            day: 1,
        }
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        fatfs::DateTime {
            date: self.get_current_date(),
            time: fatfs::Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        }
    }
}

static DOS_EPOCH: DosEpoch = DosEpoch;

/// The file offset and size of PE section `name`.
pub fn pe_section(pe: &[u8], name: &str) -> Option<(usize, usize)> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(pe.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(pe.get(at..at + 4)?.try_into().ok()?));
    let lfanew = u32_at(0x3c)? as usize;
    let count = usize::from(u16_at(lfanew + 6)?);
    let table = lfanew + 24 + usize::from(u16_at(lfanew + 20)?);
    (0..count).map(|i| table + 40 * i).find_map(|at| {
        let raw_name = pe.get(at..at + 8)?;
        let end = raw_name.iter().position(|&b| b == 0).unwrap_or(8);
        if &raw_name[..end] != name.as_bytes() {
            return None;
        }
        let virtual_size = u32_at(at + 8)? as usize;
        let raw_size = u32_at(at + 16)? as usize;
        let offset = u32_at(at + 20)? as usize;
        Some((offset, virtual_size.min(raw_size)))
    })
}

/// fatfs 0.3 writes long-name entries in front of the `.` and `..` entries of the
/// directories it creates, which fsck.fat rejects (`.` and `..` must be the first two
/// slots); this drops them. `fat` is a FAT16 image; walks every directory.
fn drop_dot_long_names(fat: &mut [u8]) {
    let u16_at = |fat: &[u8], at: usize| usize::from(u16::from_le_bytes([fat[at], fat[at + 1]]));
    let sector = u16_at(fat, 11);
    let cluster = sector * usize::from(fat[13]);
    let fat_start = u16_at(fat, 14) * sector;
    let root = fat_start + usize::from(fat[16]) * u16_at(fat, 22) * sector;
    let data = root + u16_at(fat, 17) * 32;
    // Directories as lists of (start, len) byte ranges.
    let mut dirs: Vec<Vec<(usize, usize)>> = vec![vec![(root, data - root)]];
    while let Some(ranges) = dirs.pop() {
        let slots: Vec<usize> = ranges
            .iter()
            .flat_map(|&(at, len)| (at..at + len).step_by(32))
            .collect();
        // The entries up to the end marker, less the long names of `.` and `..`,
        // written back in order from the first slot (so `.` and `..` come first).
        let used: Vec<usize> = slots
            .iter()
            .copied()
            .take_while(|&at| fat[at] != 0)
            .collect();
        let mut keep: Vec<[u8; 32]> = Vec::new();
        let mut pending: Vec<[u8; 32]> = Vec::new();
        for &at in &used {
            let entry: [u8; 32] = fat[at..at + 32].try_into().unwrap();
            if entry[11] == 0x0f {
                pending.push(entry);
                continue;
            }
            let dot = &entry[..11] == b".          " || &entry[..11] == b"..         ";
            if !dot {
                keep.append(&mut pending);
            }
            pending.clear();
            keep.push(entry);
        }
        keep.append(&mut pending);
        for (i, &at) in used.iter().enumerate() {
            match keep.get(i) {
                Some(entry) => fat[at..at + 32].copy_from_slice(entry),
                None => fat[at..at + 32].fill(0),
            }
        }
        for &at in &used[..keep.len()] {
            let (name, attr) = (&fat[at..at + 11], fat[at + 11]);
            if name[0] == 0xe5 || attr == 0x0f || attr & 0x10 == 0 || name[0] == b'.' {
                continue;
            }
            let mut chain = Vec::new();
            let mut c = u16_at(fat, at + 26);
            while (2..0xfff8).contains(&c) && chain.len() < fat.len() / cluster {
                chain.push((data + (c - 2) * cluster, cluster));
                c = u16_at(fat, fat_start + 2 * c);
            }
            dirs.push(chain);
        }
    }
}

/// A FAT file system image of `size` bytes holding `files` (paths with `/`).
pub fn fat_image(size: u64, volume_id: u32, files: &[(&str, &[u8])]) -> io::Result<Vec<u8>> {
    let mut image = Cursor::new(vec![0u8; size as usize]);
    fatfs::format_volume(
        &mut image,
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat16)
            .bytes_per_cluster(CLUSTER as u32)
            .volume_id(volume_id)
            .volume_label(*b"NATBOX ESP "),
    )?;
    image.seek(SeekFrom::Start(0))?;
    {
        let fs = fatfs::FileSystem::new(
            &mut image,
            fatfs::FsOptions::new().time_provider(&DOS_EPOCH),
        )?;
        for (path, data) in files {
            let mut dir = fs.root_dir();
            let parts: Vec<&str> = path.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                dir = match dir.open_dir(part) {
                    Ok(d) => d,
                    Err(_) => dir.create_dir(part)?,
                };
            }
            let mut file = dir.create_file(parts[parts.len() - 1])?;
            file.truncate()?;
            file.write_all(data)?;
        }
        fs.unmount()?;
    }
    let mut image = image.into_inner();
    drop_dot_long_names(&mut image);
    Ok(image)
}

/// Writes a GPT disk of `total` bytes (a multiple of the sector size) to `out` with one
/// partition, the EFI system partition `esp`, at [`ESP_START`]. Unwritten regions are left as
/// holes (the file is sparse) so big cloud-sized disks cost little.
/// `bios_mbr`: boot code for the protective MBR (its first 440 bytes are used); the ESP
/// is then marked legacy-BIOS-bootable (GPT attribute bit 2).
pub fn write_gpt_disk(
    out: &Path,
    total: u64,
    esp: &[u8],
    seed: &[u8],
    bios_mbr: Option<&[u8]>,
) -> io::Result<()> {
    let sectors = total / SECTOR;
    let last = sectors - 1;
    let esp_first = ESP_START / SECTOR;
    let esp_last = esp_first + esp.len() as u64 / SECTOR - 1;
    assert!(
        esp_last < last - ENTRY_SECTORS,
        "disk too small for the ESP"
    );

    let mut entries = vec![0u8; ENTRIES * ENTRY_SIZE];
    let e = &mut entries[..ENTRY_SIZE];
    e[0..16].copy_from_slice(&ESP_TYPE);
    e[16..32].copy_from_slice(&derived_guid(seed, "natbox esp partition"));
    e[32..40].copy_from_slice(&esp_first.to_le_bytes());
    e[40..48].copy_from_slice(&esp_last.to_le_bytes());
    if bios_mbr.is_some() {
        e[48..56].copy_from_slice(&4u64.to_le_bytes());
    }
    for (i, unit) in "EFI System".encode_utf16().enumerate() {
        e[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
    }
    let entries_crc = crc32fast::hash(&entries);
    let disk_guid = derived_guid(seed, "natbox disk");
    let header = |my: u64, alternate: u64, entries_lba: u64| {
        let mut h = vec![0u8; SECTOR as usize];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my.to_le_bytes());
        h[32..40].copy_from_slice(&alternate.to_le_bytes());
        h[40..48].copy_from_slice(&(2 + ENTRY_SECTORS).to_le_bytes());
        h[48..56].copy_from_slice(&(last - 1 - ENTRY_SECTORS).to_le_bytes());
        h[56..72].copy_from_slice(&disk_guid);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
        h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };

    // Protective MBR: one partition of type 0xEE covering the disk.
    let mut mbr = vec![0u8; SECTOR as usize];
    if let Some(code) = bios_mbr {
        let n = code.len().min(440);
        mbr[..n].copy_from_slice(&code[..n]);
    }
    let p = &mut mbr[446..462];
    p[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    p[4] = 0xee;
    p[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    p[8..12].copy_from_slice(&1u32.to_le_bytes());
    p[12..16].copy_from_slice(&(u32::try_from(sectors - 1).unwrap_or(u32::MAX)).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;

    let mut f = std::fs::File::create(out)?;
    f.set_len(total)?;
    let mut put = |lba: u64, data: &[u8]| -> io::Result<()> {
        f.seek(SeekFrom::Start(lba * SECTOR))?;
        f.write_all(data)
    };
    put(0, &mbr)?;
    put(1, &header(1, last, 2))?;
    put(2, &entries)?;
    put(esp_first, esp)?;
    put(last - ENTRY_SECTORS, &entries)?;
    put(last, &header(last, 1, last - ENTRY_SECTORS))?;
    f.sync_all()
}

/// The ESP size for `files`: their clusters, two directory clusters (`EFI`,
/// `EFI/BOOT`), [`SPARE`], the two FATs, the root directory (512 entries) and the boot
/// sector, rounded up to [`ALIGN`], and at least [`MIN_ESP`].
fn esp_size(files: &[(&str, &[u8])]) -> u64 {
    let clusters: u64 = files
        .iter()
        .map(|(_, data)| (data.len() as u64).div_ceil(CLUSTER))
        .sum::<u64>()
        + 2
        + SPARE / CLUSTER;
    let fat = ((clusters + 2) * 2).div_ceil(SECTOR) * SECTOR;
    let size = clusters * CLUSTER + 2 * fat + 512 * 32 + SECTOR;
    (size.div_ceil(ALIGN) * ALIGN).max(MIN_ESP)
}

/// Builds the disk: `uki` as EFI/BOOT/BOOTX64.EFI on an ESP sized by [`esp_size`]; the
/// disk is that plus [`ESP_START`] before (GPT) and [`ALIGN`] after (backup GPT), or
/// `total` bytes when given (and big enough). With `bios_mbr`, also the legacy BIOS
/// boot files (see the module doc). Returns the disk size.
pub fn build(
    uki: &[u8],
    out: &Path,
    total: Option<u64>,
    bios_mbr: Option<&[u8]>,
) -> Result<u64, String> {
    let mut files: Vec<(&str, &[u8])> = vec![("EFI/BOOT/BOOTX64.EFI", uki)];
    let syslinux_cfg;
    if bios_mbr.is_some() {
        let section = |name| {
            pe_section(uki, name)
                .map(|(at, len)| &uki[at..at + len])
                .ok_or(format!("the UKI has no {name} section"))
        };
        let cmdline = String::from_utf8_lossy(section(".cmdline")?);
        syslinux_cfg = format!(
            "DEFAULT natbox\nPROMPT 0\nTIMEOUT 0\nLABEL natbox\n  LINUX /vmlinuz\n  INITRD /initrd.img\n  APPEND {}\n",
            cmdline.trim_end_matches(['\0', '\n'])
        );
        files.extend([
            ("vmlinuz", section(".linux")?),
            ("initrd.img", section(".initrd")?),
            ("syslinux.cfg", syslinux_cfg.as_bytes()),
        ]);
    }
    let esp_size = esp_size(&files);
    let minimum = ESP_START + esp_size + ALIGN;
    let total = total.unwrap_or(minimum);
    if total < minimum || !total.is_multiple_of(SECTOR) {
        return Err(format!(
            "disk size {total} must be a multiple of {SECTOR} and at least {minimum}"
        ));
    }
    let volume_id = u32::from_le_bytes(
        derived_guid(uki, "natbox fat volume")[..4]
            .try_into()
            .unwrap(),
    );
    let esp = fat_image(esp_size, volume_id, &files).map_err(|e| format!("FAT: {e}"))?;
    write_gpt_disk(out, total, &esp, uki, bios_mbr)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat_and_gpt_are_reproducible_and_valid() {
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let dir = std::env::temp_dir();
        let a = dir.join(format!("natbox-disk-test-a-{}", std::process::id()));
        let b = dir.join(format!("natbox-disk-test-b-{}", std::process::id()));
        let size = build(&payload, &a, None, None).unwrap();
        build(&payload, &b, None, None).unwrap();
        let (da, db) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        std::fs::remove_file(&a).ok();
        std::fs::remove_file(&b).ok();
        assert_eq!(da, db);
        assert_eq!(da.len() as u64, size);
        // Primary header: signature and CRC.
        let h = &da[512..1024];
        assert_eq!(&h[..8], b"EFI PART");
        let mut copy = h[..92].to_vec();
        copy[16..20].fill(0);
        assert_eq!(crc32fast::hash(&copy).to_le_bytes(), h[16..20]);
        // Backup header at the last sector.
        assert_eq!(&da[da.len() - 512..da.len() - 504], b"EFI PART");
        // The file reads back from the FAT.
        let esp = &da[ESP_START as usize..];
        let fs =
            fatfs::FileSystem::new(Cursor::new(esp.to_vec()), fatfs::FsOptions::new()).unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(
            &mut fs.root_dir().open_file("EFI/BOOT/BOOTX64.EFI").unwrap(),
            &mut back,
        )
        .unwrap();
        assert_eq!(back, payload);
        // Directories start with `.` and `..` (no long-name entries in front).
        let u16_at = |at: usize| usize::from(u16::from_le_bytes([esp[at], esp[at + 1]]));
        let root = (u16_at(14) + usize::from(esp[16]) * u16_at(22)) * 512;
        let data = root + u16_at(17) * 32;
        let efi = (root..data)
            .step_by(32)
            .find(|&at| &esp[at..at + 11] == b"EFI        ")
            .unwrap();
        let dir = data + (u16_at(efi + 26) - 2) * CLUSTER as usize;
        assert_eq!(&esp[dir..dir + 11], b".          ");
        assert_eq!(&esp[dir + 32..dir + 43], b"..         ");
    }

    /// A PE image with sections `.cmdline`, `.linux` and `.initrd` (just the headers
    /// `pe_section` reads, then the section bytes).
    fn fake_uki(linux: &[u8], initrd: &[u8]) -> Vec<u8> {
        let cmdline = b"console=ttyS0 quiet\0";
        let sections: [(&[u8], &[u8]); 3] = [
            (b".cmdline", cmdline),
            (b".linux", linux),
            (b".initrd", initrd),
        ];
        let mut pe = vec![0u8; 0x200];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        pe[0x46..0x48].copy_from_slice(&3u16.to_le_bytes());
        for (i, (name, data)) in sections.iter().enumerate() {
            let at = 0x58 + 40 * i;
            let offset = pe.len() as u32;
            pe[at..at + name.len()].copy_from_slice(name);
            pe[at + 8..at + 12].copy_from_slice(&(data.len() as u32).to_le_bytes());
            pe[at + 16..at + 20].copy_from_slice(&(data.len() as u32).to_le_bytes());
            pe[at + 20..at + 24].copy_from_slice(&offset.to_le_bytes());
            pe.extend_from_slice(data);
        }
        pe
    }

    #[test]
    fn bios_layout_copies_kernel_and_initrd_and_is_fsck_clean() {
        let linux: Vec<u8> = (0..1_000_001u32).map(|i| (i % 253) as u8).collect();
        let initrd: Vec<u8> = (0..70_000u32).map(|i| (i % 241) as u8).collect();
        let uki = fake_uki(&linux, &initrd);
        let out =
            std::env::temp_dir().join(format!("natbox-disk-test-bios-{}", std::process::id()));
        let size = build(&uki, &out, None, Some(&[0x90; 440])).unwrap();
        let disk = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).ok();
        assert_eq!(disk.len() as u64, size);
        assert_eq!(disk[..440], [0x90; 440]);
        // The ESP's extent from the GPT's first partition entry (LBA 2).
        let lba = |at: usize| u64::from_le_bytes(disk[at..at + 8].try_into().unwrap()) * SECTOR;
        let (first, last) = (lba(1024 + 32) as usize, lba(1024 + 40) as usize);
        assert_eq!(first as u64, ESP_START);
        let esp = &disk[first..last + SECTOR as usize];
        let read = |path: &str| {
            let fs =
                fatfs::FileSystem::new(Cursor::new(esp.to_vec()), fatfs::FsOptions::new()).unwrap();
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut fs.root_dir().open_file(path).unwrap(), &mut back)
                .unwrap();
            back
        };
        assert_eq!(read("vmlinuz"), linux);
        assert_eq!(read("initrd.img"), initrd);
        assert_eq!(read("EFI/BOOT/BOOTX64.EFI"), uki);
        let cfg = String::from_utf8(read("syslinux.cfg")).unwrap();
        assert!(cfg.contains("APPEND console=ttyS0 quiet\n"), "{cfg}");
        // fsck.fat (dosfstools) must find nothing: no cross-linked clusters.
        let image = std::env::temp_dir().join(format!("natbox-esp-test-{}", std::process::id()));
        std::fs::write(&image, esp).unwrap();
        let fsck = std::process::Command::new("fsck.fat")
            .arg("-n")
            .arg(&image)
            .output();
        std::fs::remove_file(&image).ok();
        match fsck {
            Ok(o) => {
                let text = String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr);
                assert!(o.status.success(), "fsck.fat -n: {text}");
                assert_eq!(text.lines().count(), 2, "fsck.fat -n reported: {text}");
            }
            Err(e) => {
                eprintln!("skipped fsck.fat check: fsck.fat not runnable ({e}); install dosfstools")
            }
        }
    }

    #[test]
    fn pe_checksum_matches_a_known_stub() {
        // A stub as objcopy leaves it: normalizing twice is stable.
        let stub = Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
        let Ok(mut pe) = std::fs::read(stub) else {
            return;
        };
        let lfanew = u32::from_le_bytes(pe[0x3c..0x40].try_into().unwrap()) as usize;
        let original = pe[lfanew + 24 + 64..lfanew + 24 + 68].to_vec();
        pe_normalize(&mut pe).unwrap();
        // The shipped stub has timestamp 0, so its checksum must be reproduced.
        assert_eq!(pe[lfanew + 24 + 64..lfanew + 24 + 68], original[..]);
    }
}
