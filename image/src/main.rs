//! `natbox-image`: builds the appliance's initramfs.
//!
//! `natbox-image initramfs --binary APPLIANCE --kernel-tree DIR --out FILE` writes a
//! zstd-compressed cpio newc archive holding `/init` (the static natbox binary), the
//! mount points PID 1 uses, `/dev/console`, and `/lib/modules/*.ko`: the modules of
//! `MODULES` found under DIR (an unpacked Debian kernel package). The output is
//! reproducible: fixed order, timestamps and owners, and one zstd frame from the
//! single-threaded, bundled (version-pinned) libzstd; see [`compress`].
//!
//! `natbox-image uki --stub STUB --kernel VMLINUZ --initrd IMG --cmdline LINE --out FILE`
//! makes a unified kernel image from systemd-boot's `linuxx64.efi.stub` (objcopy adds
//! `.osrel`, `.cmdline`, `.linux` and `.initrd` after the stub's own sections), with
//! the PE timestamp zeroed so the result is reproducible.
//!
//! `natbox-image disk --efi UKI --out FILE [--size BYTES]` writes a raw GPT disk whose
//! EFI system partition (FAT) holds the UKI as `EFI/BOOT/BOOTX64.EFI`; with
//! `--bios-mbr` (syslinux's gptmbr.bin) also prepared for legacy BIOS boot (see
//! `disk.rs`), then made bootable by running syslinux's installer (`syslinux --offset
//! ESP_START --install`, which writes through mtools, rootless) on it, with the FAT
//! epoch as `SOURCE_DATE_EPOCH` so the files it adds are reproducible.
//!
//! Modules carried: virtio (PCI and MMIO transports, net, blk, scsi) for QEMU and KVM
//! clouds (GCE's disks are virtio-scsi), sd_mod with scsi_mod for SCSI disks, sr_mod
//! with cdrom for SCSI CD-ROMs (OpenStack attaches an ISO 9660 config drive as a
//! CD-ROM, on virtio-scsi with the image properties `hw_cdrom_bus=scsi
//! hw_scsi_model=virtio-scsi`; 40 KB of the initramfs). nova's default CD-ROM buses are
//! not covered: IDE on the pc machine would need ata_piix and libata (147 KB more, and
//! loaded at every boot on a pc machine, whose IDE controller is always there), SATA on
//! q35 needs ahci, which Debian's cloud kernel does not build), ena (AWS
//! Nitro), gve (GCP gVNIC), vmxnet3 (VMware; QEMU emulates it), qemu_fw_cfg, and the
//! ACPI power button with evdev (a hypervisor's shutdown request), nf_tables (the
//! dataplane has the kernel drop its copy of the data ports' frames). NVMe (EC2
//! Nitro's disks) is built into Debian's cloud kernel (`CONFIG_BLK_DEV_NVME=y`), and
//! its kernel has no e1000/e1000e driver at all (`# CONFIG_E1000E is not set`), so
//! neither is carried; the build checks the first is built in (`BUILT_IN`, against
//! the kernel tree's `modules.builtin`). At boot natbox loads only the modules the devices present
//! need, by modalias (`appliance/src/init/modules.rs`). AF_PACKET makes the
//! dataplane driver-agnostic, so any NIC the kernel drives works.

mod cpio;
mod disk;

use cpio::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const MODULES: &[&str] = &[
    "virtio",
    "virtio_ring",
    "virtio_pci",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_mmio",
    "virtio_net",
    "net_failover",
    "failover",
    "virtio_blk",
    "virtio_scsi",
    "scsi_mod",
    "scsi_common",
    "sd_mod",
    "sr_mod",
    "cdrom",
    "ena",
    "gve",
    "vmxnet3",
    "qemu_fw_cfg",
    "button",
    "evdev",
    "libcrc32c",
    "nfnetlink",
    "nf_tables",
];

/// Modules the image needs that Debian's cloud kernel builds in (listed in the
/// tree's `modules.builtin`), so they are not carried: the build fails if a kernel
/// ships one of them as a module instead, which the image would then lack (NVMe: EC2
/// Nitro's disks).
const BUILT_IN: &[&str] = &["nvme", "nvme_core"];

const USAGE: &str = "usage: natbox-image initramfs --binary APPLIANCE --kernel-tree DIR --out FILE
       natbox-image uki --stub STUB --kernel VMLINUZ --initrd IMG --cmdline LINE --out FILE
       natbox-image disk --efi UKI --out FILE [--size BYTES] [--bios-mbr GPTMBR.BIN]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["initramfs", "--binary", binary, "--kernel-tree", tree, "--out", out] => {
            build(Path::new(binary), Path::new(tree), Path::new(out))
        }
        ["uki", rest @ ..] => {
            match flags(rest, &["stub", "kernel", "initrd", "cmdline", "out"], &[]) {
                Some(f) => uki(&f),
                None => Err(USAGE.into()),
            }
        }
        ["disk", rest @ ..] => match flags(rest, &["efi", "out"], &["size", "bios-mbr"]) {
            Some(f) => disk_image(&f),
            None => Err(USAGE.into()),
        },
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e == USAGE => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("natbox-image: {e}");
            ExitCode::from(1)
        }
    }
}

/// `--name value` pairs: all of `required` and any of `optional`, nothing else.
fn flags<'a>(
    args: &[&'a str],
    required: &[&str],
    optional: &[&str],
) -> Option<BTreeMap<String, &'a str>> {
    let mut map = BTreeMap::new();
    for pair in args.chunks(2) {
        let [name, value] = pair else { return None };
        let name = name.strip_prefix("--")?;
        if !required.contains(&name) && !optional.contains(&name) {
            return None;
        }
        map.insert(name.to_string(), *value);
    }
    required.iter().all(|r| map.contains_key(*r)).then_some(map)
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

/// The unified kernel image: objcopy adds the sections at 4 KiB-aligned addresses past
/// the stub's image; the PE timestamp objcopy writes is zeroed afterwards.
fn uki(f: &BTreeMap<String, &str>) -> Result<(), String> {
    let stub = read(f["stub"])?;
    let lfanew = stub
        .get(0x3c..0x40)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
        .ok_or("stub: not a PE image")?;
    let size_of_image = stub
        .get(lfanew + 24 + 56..lfanew + 24 + 60)
        .map(|b| u64::from(u32::from_le_bytes(b.try_into().unwrap())))
        .ok_or("stub: not a PE image")?;
    let out = Path::new(f["out"]);
    let dir = out.parent().unwrap_or(Path::new("."));
    let osrel = dir.join(".uki-osrel");
    let cmdline = dir.join(".uki-cmdline");
    let os_release = format!(
        "NAME=\"natbox\"\nID=natbox\nVERSION_ID={v}\nPRETTY_NAME=\"natbox {v}\"\n",
        v = env!("CARGO_PKG_VERSION")
    );
    std::fs::write(&osrel, os_release).map_err(|e| e.to_string())?;
    std::fs::write(&cmdline, f["cmdline"]).map_err(|e| e.to_string())?;
    let sections: [(&str, &Path); 4] = [
        (".osrel", &osrel),
        (".cmdline", &cmdline),
        (".linux", Path::new(f["kernel"])),
        (".initrd", Path::new(f["initrd"])),
    ];
    let align = |n: u64| n.div_ceil(0x1000) * 0x1000;
    let mut vma = align(size_of_image);
    let mut cmd = std::process::Command::new("objcopy");
    for (name, path) in sections {
        let len = std::fs::metadata(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        cmd.arg("--add-section")
            .arg(format!("{name}={}", path.display()))
            .arg("--change-section-vma")
            .arg(format!("{name}={vma:#x}"));
        vma = align(vma + len);
    }
    cmd.arg(f["stub"]).arg(out);
    let status = cmd.status().map_err(|e| format!("objcopy: {e}"))?;
    std::fs::remove_file(&osrel).ok();
    std::fs::remove_file(&cmdline).ok();
    if !status.success() {
        return Err(format!("objcopy failed: {status}"));
    }
    let mut pe = read(f["out"])?;
    disk::pe_normalize(&mut pe)?;
    std::fs::write(out, &pe).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("{}: {} bytes", out.display(), pe.len());
    Ok(())
}

fn disk_image(f: &BTreeMap<String, &str>) -> Result<(), String> {
    let uki = read(f["efi"])?;
    let size = match f.get("size") {
        Some(s) => Some(s.parse::<u64>().map_err(|e| format!("--size {s}: {e}"))?),
        None => None,
    };
    let bios_mbr = f.get("bios-mbr").map(|p| read(p)).transpose()?;
    let total = disk::build(&uki, Path::new(f["out"]), size, bios_mbr.as_deref())?;
    if bios_mbr.is_some() {
        install_syslinux(f["out"])?;
    }
    println!(
        "{}: {} bytes ({:.2} MiB), GPT + FAT ESP with EFI/BOOT/BOOTX64.EFI",
        f["out"],
        total,
        total as f64 / 1048576.0
    );
    Ok(())
}

/// Runs syslinux's installer on the ESP of disk `out` (the VBR, ldlinux.sys and
/// ldlinux.c32; `disk::build` left room for them).
fn install_syslinux(out: &str) -> Result<(), String> {
    let status = std::process::Command::new("syslinux")
        .args(["--offset", &disk::ESP_START.to_string(), "--install", out])
        // mtools stamps files with SOURCE_DATE_EPOCH: the FAT epoch, 1980-01-01.
        .env("SOURCE_DATE_EPOCH", "315532800")
        .env("TZ", "UTC")
        .status()
        .map_err(|e| format!("syslinux: {e} (Debian package syslinux)"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("syslinux --install {out}: {status}"))
    }
}

fn build(binary: &Path, tree: &Path, out: &Path) -> Result<(), String> {
    let init = std::fs::read(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    let mut found = BTreeMap::new();
    find_modules(tree, &mut found);
    let missing: Vec<&str> = MODULES
        .iter()
        .copied()
        .filter(|m| !found.contains_key(*m))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "modules not found under {}: {}",
            tree.display(),
            missing.join(", ")
        ));
    }
    let built_in = built_in(tree);
    let not_built_in: Vec<&str> = BUILT_IN
        .iter()
        .copied()
        .filter(|m| !built_in.contains(*m))
        .collect();
    if !not_built_in.is_empty() {
        return Err(format!(
            "not built into the kernel under {} (add them to MODULES): {}",
            tree.display(),
            not_built_in.join(", ")
        ));
    }
    let mut entries = vec![
        Entry::File {
            path: "init".into(),
            mode: 0o755,
            data: init,
        },
        Entry::Dir { path: "dev".into() },
        Entry::CharDevice {
            path: "dev/console".into(),
            mode: 0o600,
            major: 5,
            minor: 1,
        },
        Entry::Dir {
            path: "proc".into(),
        },
        Entry::Dir { path: "sys".into() },
        Entry::Dir { path: "run".into() },
        Entry::Dir { path: "lib".into() },
        Entry::Dir {
            path: "lib/modules".into(),
        },
    ];
    for name in MODULES {
        let path = &found[*name];
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        entries.push(Entry::File {
            path: format!("lib/modules/{name}.ko"),
            mode: 0o644,
            data,
        });
    }
    let bytes = compress(&cpio::write(&entries))?;
    std::fs::write(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{}: {} bytes ({:.2} MiB), {} modules, /init {} bytes",
        out.display(),
        bytes.len(),
        bytes.len() as f64 / 1048576.0,
        MODULES.len(),
        std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0)
    );
    Ok(())
}

/// zstd level of the initramfs: libzstd's highest without `--ultra` (whose larger
/// windows buy nothing on a 4 MB archive).
const ZSTD_LEVEL: i32 = 19;

/// The initramfs compression: `archive` as one zstd frame at [`ZSTD_LEVEL`], with the
/// content size in its header (single segment: the decoder's window is the archive's
/// size) and a content checksum, which the kernel verifies after unpacking (a mismatch
/// is logged as "Initramfs unpacking failed: ZSTD-compressed data is corrupt", as a bad
/// gzip CRC was). Debian's cloud kernel has `CONFIG_RD_ZSTD`. The initramfs is on the
/// disk twice (in the UKI and syslinux's copy), so each byte counts double. Measured
/// on the 4.0 MB archive, booted directly under QEMU TCG with `-icount shift=3` (guest
/// time from instruction counts, independent of host load), kernel start to
/// forwarding: gzip -9 1.64 MB, 16.32 s; zstd -19 1.34 MB, 16.31-16.32 s; xz -9e
/// 1.24 MB, 19.44-19.45 s (its decoder runs about 390 M more instructions). So zstd:
/// most of xz's saving at gzip's boot cost. Deterministic: same input and libzstd
/// version (bundled by zstd-sys, pinned by Cargo.lock), same bytes; single-threaded.
fn compress(archive: &[u8]) -> Result<Vec<u8>, String> {
    let mut zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| e.to_string())?;
    zstd.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .map_err(|e| e.to_string())?;
    zstd.compress(archive).map_err(|e| format!("zstd: {e}"))
}

/// The names of the modules built into the kernel: the `modules.builtin` lists
/// (`kernel/drivers/nvme/host/nvme-core.ko` per line) of each kernel version under
/// `tree`, dashes as underscores.
fn built_in(tree: &Path) -> BTreeSet<String> {
    let versions = std::fs::read_dir(tree).into_iter().flatten().flatten();
    versions
        .filter_map(|v| std::fs::read_to_string(v.path().join("modules.builtin")).ok())
        .flat_map(|list| {
            list.lines()
                .filter_map(|line| line.rsplit('/').next()?.strip_suffix(".ko"))
                .map(|name| name.replace('-', "_"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Maps module names to their `.ko` files under `dir`.
fn find_modules(dir: &Path, found: &mut BTreeMap<String, PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            find_modules(&path, found);
        } else if let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ko"))
        {
            let name = name.replace('-', "_");
            if MODULES.contains(&name.as_str()) {
                found.entry(name).or_insert(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 256 KiB of compressible but not trivial bytes: words drawn by an LCG.
    fn sample() -> Vec<u8> {
        const WORDS: [&[u8]; 8] = [
            b"virtio ",
            b"natbox ",
            b"\x7fELF\x02\x01",
            b"\0\0\0\0",
            b"lib/modules/",
            b"0707010",
            b"\xe8\x12\x34\x56\x78",
            b"init ",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut out = Vec::new();
        while out.len() < 256 << 10 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(WORDS[(state >> 61) as usize]);
            out.push((state >> 40) as u8);
        }
        out
    }

    #[test]
    fn built_in_modules_are_read_from_modules_builtin() {
        let tree =
            std::env::temp_dir().join(format!("natbox-image-builtin-{}", std::process::id()));
        let version = tree.join("6.1.0-57-cloud-amd64");
        std::fs::create_dir_all(&version).unwrap();
        std::fs::write(
            version.join("modules.builtin"),
            "kernel/drivers/nvme/host/nvme-core.ko\nkernel/drivers/nvme/host/nvme.ko\nkernel/fs/ext4/ext4.ko\n",
        )
        .unwrap();
        let found = built_in(&tree);
        std::fs::remove_dir_all(&tree).unwrap();
        assert!(BUILT_IN.iter().all(|m| found.contains(*m)), "{found:?}");
        assert!(found.contains("ext4") && !found.contains("virtio_net"));
        assert!(built_in(Path::new("/nonexistent")).is_empty());
    }

    #[test]
    fn compress_round_trips_and_shrinks() {
        let data = sample();
        let packed = compress(&data).unwrap();
        assert!(
            packed.len() < data.len() / 2,
            "{} of {}",
            packed.len(),
            data.len()
        );
        assert_eq!(zstd::stream::decode_all(&packed[..]).unwrap(), data);
    }

    #[test]
    fn compress_is_deterministic() {
        let data = sample();
        assert_eq!(compress(&data).unwrap(), compress(&data).unwrap());
    }

    /// One frame with the content size and a checksum in it: the magic, the header's
    /// Content_Checksum_flag, the size zstd reads from the header, and a frame whose
    /// last byte (inside the checksum) is flipped no longer decodes.
    #[test]
    fn compress_writes_one_frame_with_size_and_checksum() {
        let data = sample();
        let mut packed = compress(&data).unwrap();
        assert_eq!(packed[..4], [0x28, 0xb5, 0x2f, 0xfd]);
        assert_ne!(packed[4] & 0x04, 0, "Content_Checksum_flag");
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&packed).ok(),
            Some(Some(data.len() as u64))
        );
        assert_eq!(
            zstd::zstd_safe::find_frame_compressed_size(&packed),
            Ok(packed.len())
        );
        *packed.last_mut().unwrap() ^= 0xff;
        assert!(zstd::stream::decode_all(&packed[..]).is_err());
    }

    #[test]
    fn compress_empty_archive() {
        let packed = compress(&[]).unwrap();
        assert_eq!(
            zstd::stream::decode_all(&packed[..]).unwrap(),
            Vec::<u8>::new()
        );
    }
}
