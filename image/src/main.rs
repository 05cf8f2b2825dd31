//! `natbox-image`: builds the appliance's initramfs.
//!
//! `natbox-image initramfs --binary APPLIANCE --kernel-tree DIR --out FILE` writes a
//! gzip-compressed cpio newc archive holding `/init` (the static natbox binary), the
//! mount points PID 1 uses, `/dev/console`, and `/lib/modules/*.ko`: the modules of
//! `MODULES` found under DIR (an unpacked Debian kernel package). The output is
//! reproducible: fixed order, timestamps, owners and gzip header.
//!
//! Modules carried: virtio (PCI and MMIO transports, net, blk) for QEMU and KVM
//! clouds, ena (AWS Nitro), gve (GCP gVNIC), vmxnet3 (VMware), qemu_fw_cfg; NVMe is
//! built into Debian's cloud kernel. AF_PACKET makes the dataplane driver-agnostic, so
//! any NIC the kernel drives works.

mod cpio;

use cpio::Entry;
use std::collections::BTreeMap;
use std::io::Write;
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
    "ena",
    "gve",
    "vmxnet3",
    "qemu_fw_cfg",
];

const USAGE: &str = "usage: natbox-image initramfs --binary APPLIANCE --kernel-tree DIR --out FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["initramfs", "--binary", binary, "--kernel-tree", tree, "--out", out] => {
            match build(Path::new(binary), Path::new(tree), Path::new(out)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("natbox-image: {e}");
                    ExitCode::from(1)
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
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
    let archive = cpio::write(&entries);
    // mtime 0 and no file name in the gzip header: reproducible.
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(&archive).map_err(|e| e.to_string())?;
    let bytes = gz.finish().map_err(|e| e.to_string())?;
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
