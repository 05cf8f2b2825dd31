//! Loading the kernel modules the devices present need, in dependency order.
//!
//! The image carries a set of modules (`image/src/main.rs` chooses them); at boot
//! [`load_for_devices`] loads only those some device needs, as udev and modprobe would:
//! every device's `modalias` (the files `/sys/bus/*/devices/*/modalias` and, for
//! devices of a class rather than a bus such as input devices,
//! `/sys/class/*/*/modalias`) is matched against each carried module's `alias=`
//! patterns ([`modalias::matches`](super::modalias::matches)); every module that
//! matches is loaded, after its dependencies. Modules that serve the box rather than
//! a device ([`ALWAYS`]: nf_tables) are loaded too.
//!
//! Loading a bus driver makes new devices appear (virtio_pci binds the PCI functions
//! and registers virtio devices, which then need virtio_net or virtio_blk; the ACPI
//! button registers an input device, which needs evdev; virtio_scsi's host scan
//! registers SCSI disks, which need sd_mod), so the scan is repeated: at most
//! [`MAX_PASSES`] passes, [`PASS_WAIT`] apart, ending once no new module has been
//! needed for [`SETTLE`] since the last load. The waits add up to at most
//! `(MAX_PASSES - 1) * PASS_WAIT` (550 ms), no busy loop (a boot in QEMU takes 5 or 6
//! scans); the NICs and the metadata disk are then waited for as before (`init`: polls
//! of 20 and 50 ms, bounded at 5 and 2 s). Asynchronous probes are what `SETTLE` is
//! for; the SCSI host scan, asynchronous in Debian's kernel, is made synchronous by
//! the image's command line (`scsi_mod.scan=sync`), so no disk depends on it.
//!
//! Each module gets the parameters the kernel command line gives it, as modprobe
//! does: the `module.param=value` words ([`cmdline_params`]).
//!
//! Each module loaded is logged with the device it was loaded for (or the module that
//! needed it); the carried modules no device needed are logged at debug level.
//!
//! Debian's kernel package ships no `modules.dep` usable without depmod, so each
//! module's dependencies and aliases come from its own `.modinfo` ELF section
//! (`depends=a,b`, `alias=pattern`). Modules are loaded with `finit_module(2)`; one
//! that is already loaded or built in counts as loaded; one that fails is logged and
//! not tried again.

use super::modalias;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Modules loaded whatever the devices: the dataplane has the kernel drop its copy of
/// the data ports' frames with an nf_tables rule (`dataplane::ingress`).
pub const ALWAYS: &[&str] = &["nf_tables"];

/// The most scans of the devices' modaliases.
pub const MAX_PASSES: usize = 12;

/// The wait between two scans.
pub const PASS_WAIT: Duration = Duration::from_millis(50);

/// How long after the last load a scan that needs nothing new ends the loading (an
/// asynchronous probe, such as a SCSI host scan, has this long to add its devices).
pub const SETTLE: Duration = Duration::from_millis(200);

/// Reads the `depends=` list of a module image.
pub fn depends(image: &[u8]) -> Vec<String> {
    values(image, "depends")
        .flat_map(|list| {
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Reads the `alias=` patterns of a module image.
pub fn aliases(image: &[u8]) -> Vec<String> {
    values(image, "alias").map(str::to_string).collect()
}

/// The values of the `.modinfo` entries named `key`.
fn values<'a>(image: &'a [u8], key: &'a str) -> impl Iterator<Item = &'a str> {
    modinfo(image)
        .into_iter()
        .filter_map(move |kv| kv.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

/// The `key=value` strings of the `.modinfo` section of an ELF64 little-endian image.
fn modinfo(image: &[u8]) -> Vec<&str> {
    let u16_at = |at: usize| {
        image
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        image
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |at: usize| {
        image
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    let section = || -> Option<&[u8]> {
        if image.get(0..6)? != b"\x7fELF\x02\x01" {
            return None;
        }
        let shoff = u64_at(0x28)? as usize;
        let shentsize = usize::from(u16_at(0x3a)?);
        let shnum = usize::from(u16_at(0x3c)?);
        let shstrndx = usize::from(u16_at(0x3e)?);
        let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
        let strtab = header(shstrndx)?;
        let (str_off, str_size) = (
            u64_at(strtab + 0x18)? as usize,
            u64_at(strtab + 0x20)? as usize,
        );
        let names = image.get(str_off..str_off.checked_add(str_size)?)?;
        for i in 0..shnum {
            let h = header(i)?;
            let name_at = u32_at(h)? as usize;
            let name = names.get(name_at..)?.split(|&b| b == 0).next()?;
            if name == b".modinfo" {
                let (off, size) = (u64_at(h + 0x18)? as usize, u64_at(h + 0x20)? as usize);
                return image.get(off..off.checked_add(size)?);
            }
        }
        None
    };
    section()
        .map(|s| {
            s.split(|&b| b == 0)
                .filter_map(|kv| std::str::from_utf8(kv).ok())
                .filter(|kv| !kv.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The module name of a file: `virtio_net.ko` -> `virtio_net` (dashes as underscores,
/// as the kernel names them).
fn module_name(path: &Path) -> String {
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    stem.split('.').next().unwrap_or_default().replace('-', "_")
}

/// Orders modules so that each comes after its dependencies. Dependencies that are not
/// among `deps` (built into the kernel) are ignored; cycles are broken arbitrarily.
pub fn load_order(deps: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    fn visit(
        name: &str,
        deps: &BTreeMap<String, Vec<String>>,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if !seen.insert(name.to_string()) {
            return;
        }
        for d in deps.get(name).into_iter().flatten() {
            if deps.contains_key(d) {
                visit(d, deps, seen, out);
            }
        }
        out.push(name.to_string());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in deps.keys() {
        visit(name, deps, &mut seen, &mut out);
    }
    out
}

/// A module the image carries.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    pub path: PathBuf,
    pub depends: Vec<String>,
    pub aliases: Vec<String>,
}

/// The `*.ko` files in `dir`, by module name, with their dependencies and aliases.
pub fn carried(dir: &Path) -> BTreeMap<String, Carried> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "ko") {
            let image = fs::read(&path).unwrap_or_default();
            let module = Carried {
                depends: depends(&image),
                aliases: aliases(&image),
                path: path.clone(),
            };
            out.insert(module_name(&path), module);
        }
    }
    out
}

/// A device and its modalias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its bus (or class) and name: `pci 0000:00:03.0`, `virtio virtio0`.
    pub name: String,
    pub modalias: String,
}

/// Every device under the sysfs mount `sys` that has a modalias: those of
/// `bus/*/devices/*` and of `class/*/*`, in that order, sorted within each.
pub fn devices(sys: &Path) -> Vec<Device> {
    let sorted = |dir: PathBuf| -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        paths.sort();
        paths
    };
    let mut out = Vec::new();
    for (top, inner) in [("bus", Some("devices")), ("class", None)] {
        for group in sorted(sys.join(top)) {
            let group_name = file_name(&group);
            let members = match inner {
                Some(inner) => group.join(inner),
                None => group,
            };
            for device in sorted(members) {
                let Ok(alias) = fs::read_to_string(device.join("modalias")) else {
                    continue;
                };
                let modalias = alias.trim();
                if !modalias.is_empty() {
                    out.push(Device {
                        name: format!("{group_name} {}", file_name(&device)),
                        modalias: modalias.to_string(),
                    });
                }
            }
        }
    }
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Why a module is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// One of its aliases matches this device's modalias (the first such device).
    Device(Device),
    /// A module loaded for another reason depends on it.
    NeededBy(String),
    /// It is in [`ALWAYS`].
    Always,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Device(d) => write!(f, "for {} ({})", d.name, d.modalias),
            Reason::NeededBy(m) => write!(f, "needed by {m}"),
            Reason::Always => write!(f, "always loaded"),
        }
    }
}

/// The carried modules that `devices` and `always` need and that are not `done`
/// (loaded or tried already), with why, each after its dependencies.
pub fn select(
    devices: &[Device],
    carried: &BTreeMap<String, Carried>,
    always: &[&str],
    done: &BTreeSet<String>,
) -> Vec<(String, Reason)> {
    let wanted = |name: &str| carried.contains_key(name) && !done.contains(name);
    let mut reasons: BTreeMap<String, Reason> = BTreeMap::new();
    for name in always.iter().filter(|n| wanted(n)) {
        reasons.insert(name.to_string(), Reason::Always);
    }
    for device in devices {
        for (name, module) in carried {
            if wanted(name)
                && !reasons.contains_key(name)
                && module
                    .aliases
                    .iter()
                    .any(|a| modalias::matches(a, &device.modalias))
            {
                reasons.insert(name.clone(), Reason::Device(device.clone()));
            }
        }
    }
    let mut pending: Vec<String> = reasons.keys().cloned().collect();
    while let Some(name) = pending.pop() {
        for dep in carried.get(&name).into_iter().flat_map(|m| &m.depends) {
            if wanted(dep) && !reasons.contains_key(dep) {
                reasons.insert(dep.clone(), Reason::NeededBy(name.clone()));
                pending.push(dep.clone());
            }
        }
    }
    let deps: BTreeMap<String, Vec<String>> = reasons
        .keys()
        .map(|name| {
            let depends = carried.get(name).map(|m| m.depends.clone());
            (name.clone(), depends.unwrap_or_default())
        })
        .collect();
    load_order(&deps)
        .into_iter()
        .filter_map(|name| reasons.remove(&name).map(|r| (name, r)))
        .collect()
}

/// What [`load_for_devices`] did.
#[derive(Debug, Default)]
pub struct Report {
    /// The modules loaded (or found already loaded), in order.
    pub loaded: Vec<String>,
    /// The modules that failed to load.
    pub failed: Vec<(String, io::Error)>,
    /// The scans made.
    pub passes: usize,
}

/// The parameters kernel command line `cmdline` gives module `name`, as modprobe
/// passes them: every `name.param=value` (or `name.flag`) word, without the `name.`
/// prefix, separated by spaces; dashes in the module name read as underscores. Values
/// quoted to hold spaces are not supported (no module natbox carries needs one).
pub fn cmdline_params(cmdline: &str, name: &str) -> String {
    let params: Vec<&str> = cmdline
        .split_whitespace()
        .filter_map(|word| {
            let (module, param) = word.split_once('.')?;
            let named = module.replace('-', "_") == name && !module.contains('=');
            (named && !param.is_empty()).then_some(param)
        })
        .collect();
    params.join(" ")
}

/// Loads the modules in `dir` that the devices under the sysfs mount `sys` need (see
/// the module doc), each with the parameters kernel command line `cmdline` gives it,
/// logging each.
pub fn load_for_devices(dir: &Path, sys: &Path, cmdline: &str) -> Report {
    load_with(dir, sys, cmdline, finit_module)
}

/// [`load_for_devices`] with `load` loading one module file with its parameters.
fn load_with(
    dir: &Path,
    sys: &Path,
    cmdline: &str,
    mut load: impl FnMut(&Path, &str) -> io::Result<()>,
) -> Report {
    let carried = carried(dir);
    let mut done = BTreeSet::new();
    let mut report = Report::default();
    let mut last_load = Instant::now();
    while report.passes < MAX_PASSES {
        if report.passes > 0 {
            std::thread::sleep(PASS_WAIT);
        }
        report.passes += 1;
        let plan = select(&devices(sys), &carried, ALWAYS, &done);
        if plan.is_empty() {
            if last_load.elapsed() >= SETTLE {
                break;
            }
            continue;
        }
        for (name, reason) in plan {
            done.insert(name.clone());
            let Some(module) = carried.get(&name) else {
                continue;
            };
            let params = cmdline_params(cmdline, &name);
            let reason = if params.is_empty() {
                reason.to_string()
            } else {
                format!("{reason} with {params}")
            };
            match load(&module.path, &params) {
                Ok(()) => {
                    log::info!("module {name} {reason}");
                    report.loaded.push(name);
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    log::info!("module {name} {reason} (already loaded)");
                    report.loaded.push(name);
                }
                Err(e) => {
                    log::warn!("module {name} {reason}: {e}");
                    report.failed.push((name, e));
                }
            }
        }
        last_load = Instant::now();
    }
    for name in carried.keys().filter(|n| !done.contains(*n)) {
        log::debug!("module {name} carried, no device needs it");
    }
    report
}

fn finit_module(path: &Path, params: &str) -> io::Result<()> {
    let file = fs::File::open(path)?;
    let params = std::ffi::CString::new(params)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in module parameters"))?;
    // SAFETY: finit_module(2) with a valid open fd and a NUL-terminated string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 image with a `.modinfo` section, as the kernel build writes it.
    fn elf_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let mut img = vec![0u8; 64];
        img[0..6].copy_from_slice(b"\x7fELF\x02\x01");
        let modinfo_off = img.len();
        img.extend_from_slice(modinfo);
        let strtab_off = img.len();
        img.extend_from_slice(shstrtab);
        let shoff = img.len();
        let section = |name: u32, off: usize, size: usize| {
            let mut h = vec![0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            h
        };
        let null = section(0, 0, 0);
        let m = section(1, modinfo_off, modinfo.len());
        let s = section(10, strtab_off, shstrtab.len());
        img.extend(null);
        img.extend(m);
        img.extend(s);
        img[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        img[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        img[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        img[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        img
    }

    #[test]
    fn reads_depends_from_modinfo() {
        let img = elf_with_modinfo(
            b"license=GPL\0depends=virtio,virtio_ring,net_failover\0name=virtio_net\0",
        );
        assert_eq!(depends(&img), vec!["virtio", "virtio_ring", "net_failover"]);
        let none = elf_with_modinfo(b"depends=\0name=virtio\0");
        assert!(depends(&none).is_empty());
        assert!(depends(b"not an elf").is_empty());
        assert!(depends(&img[..100]).is_empty());
    }

    #[test]
    fn reads_aliases_from_modinfo() {
        let img = elf_with_modinfo(
            b"alias=virtio:d00000001v*\0depends=virtio\0aliasx=no\0alias=pci:v00001AF4d*\0",
        );
        assert_eq!(aliases(&img), vec!["virtio:d00000001v*", "pci:v00001AF4d*"]);
        assert!(aliases(b"not an elf").is_empty());
    }

    #[test]
    fn orders_dependencies_first() {
        let mut deps = BTreeMap::new();
        deps.insert(
            "virtio_net".into(),
            vec!["virtio".into(), "virtio_ring".into(), "net_failover".into()],
        );
        deps.insert("net_failover".into(), vec!["failover".into()]);
        deps.insert("failover".into(), vec![]);
        deps.insert("virtio".into(), vec![]);
        deps.insert("virtio_ring".into(), vec!["builtin_thing".into()]);
        let order = load_order(&deps);
        let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(pos("failover") < pos("net_failover"));
        assert!(pos("net_failover") < pos("virtio_net"));
        assert!(pos("virtio") < pos("virtio_net"));
        assert!(pos("virtio_ring") < pos("virtio_net"));
        assert_eq!(order.len(), 5);
        assert_eq!(
            module_name(Path::new("/lib/modules/virtio-rng.ko")),
            "virtio_rng"
        );
    }

    fn module(depends: &[&str], aliases: &[&str]) -> Carried {
        Carried {
            path: PathBuf::from("/lib/modules/x.ko"),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The image's modules as Debian's 6.1 cloud kernel has them (aliases trimmed to
    /// the ones that matter here).
    fn image_modules() -> BTreeMap<String, Carried> {
        [
            ("virtio", module(&[], &[])),
            ("virtio_ring", module(&[], &[])),
            ("virtio_pci_modern_dev", module(&[], &[])),
            ("virtio_pci_legacy_dev", module(&[], &[])),
            (
                "virtio_pci",
                module(
                    &[
                        "virtio_ring",
                        "virtio_pci_modern_dev",
                        "virtio_pci_legacy_dev",
                        "virtio",
                    ],
                    &["pci:v00001AF4d*sv*sd*bc*sc*i*"],
                ),
            ),
            ("failover", module(&[], &[])),
            ("net_failover", module(&["failover"], &[])),
            (
                "virtio_net",
                module(
                    &["virtio_ring", "virtio", "net_failover"],
                    &["virtio:d00000001v*"],
                ),
            ),
            (
                "virtio_blk",
                module(&["virtio", "virtio_ring"], &["virtio:d00000002v*"]),
            ),
            (
                "ena",
                module(
                    &[],
                    &[
                        "pci:v00001D0Fd0000EC21sv*sd*bc*sc*i*",
                        "pci:v00001D0Fd0000EC20sv*sd*bc*sc*i*",
                    ],
                ),
            ),
            (
                "vmxnet3",
                module(&[], &["pci:v000015ADd000007B0sv*sd*bc*sc*i*"]),
            ),
            ("scsi_common", module(&[], &[])),
            ("scsi_mod", module(&["scsi_common"], &[])),
            (
                "sd_mod",
                module(
                    &["scsi_mod", "scsi_common"],
                    &["scsi:t-0x00*", "scsi:t-0x0e*"],
                ),
            ),
            ("libcrc32c", module(&[], &[])),
            ("nfnetlink", module(&[], &["net-pf-16-proto-12"])),
            (
                "nf_tables",
                module(&["nfnetlink", "libcrc32c"], &["nfnetlink-subsys-10"]),
            ),
        ]
        .into_iter()
        .map(|(n, m)| (n.to_string(), m))
        .collect()
    }

    fn device(name: &str, modalias: &str) -> Device {
        Device {
            name: name.into(),
            modalias: modalias.into(),
        }
    }

    fn names(plan: &[(String, Reason)]) -> Vec<&str> {
        plan.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn a_pci_device_selects_its_driver_after_the_drivers_dependencies() {
        let devices = [
            device(
                "pci 0000:00:01.0",
                "pci:v00008086d00007000sv00000000sd00000000bc06sc01i00",
            ),
            device(
                "pci 0000:00:03.0",
                "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00",
            ),
        ];
        let plan = select(&devices, &image_modules(), &[], &BTreeSet::new());
        let order = names(&plan);
        assert_eq!(order.last(), Some(&"virtio_pci"));
        assert_eq!(order.len(), 5, "{order:?}");
        for dep in [
            "virtio",
            "virtio_ring",
            "virtio_pci_modern_dev",
            "virtio_pci_legacy_dev",
        ] {
            assert!(order.contains(&dep), "{dep} missing from {order:?}");
        }
        assert_eq!(
            plan.last().map(|(_, r)| r),
            Some(&Reason::Device(devices[1].clone()))
        );
        assert!(plan
            .iter()
            .any(|(n, r)| n == "virtio" && *r == Reason::NeededBy("virtio_pci".into())));
    }

    #[test]
    fn modules_no_device_needs_are_not_selected() {
        let devices = [device("virtio virtio0", "virtio:d00000001v00001AF4")];
        let plan = select(&devices, &image_modules(), &[], &BTreeSet::new());
        let order = names(&plan);
        for unwanted in [
            "ena",
            "vmxnet3",
            "virtio_blk",
            "virtio_pci",
            "sd_mod",
            "nf_tables",
        ] {
            assert!(!order.contains(&unwanted), "{unwanted} in {order:?}");
        }
        assert_eq!(order.last(), Some(&"virtio_net"));
        let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
        assert!(pos("failover") < pos("net_failover"));
        assert!(pos("net_failover") < pos("virtio_net"));
    }

    #[test]
    fn cloud_nics_and_disks_select_their_drivers() {
        let devices = [
            device(
                "pci 0000:00:05.0",
                "pci:v00001D0Fd0000EC20sv00001D0Fsd00000000bc02sc00i00",
            ),
            device(
                "pci 0000:00:06.0",
                "pci:v000015ADd000007B0sv000015ADsd000007B0bc02sc00i01",
            ),
            device("scsi 0:0:0:0", "scsi:t-0x00"),
        ];
        let plan = select(&devices, &image_modules(), &[], &BTreeSet::new());
        let order = names(&plan);
        assert_eq!(
            order,
            ["ena", "scsi_common", "scsi_mod", "sd_mod", "vmxnet3"]
        );
        assert_eq!(plan[0].1, Reason::Device(devices[0].clone()));
        assert_eq!(plan[3].1, Reason::Device(devices[2].clone()));
    }

    #[test]
    fn always_modules_load_without_a_device_and_bring_their_dependencies() {
        let plan = select(&[], &image_modules(), ALWAYS, &BTreeSet::new());
        let order = names(&plan);
        assert_eq!(order.last(), Some(&"nf_tables"));
        assert_eq!(order.len(), 3, "{order:?}");
        assert_eq!(plan.last().map(|(_, r)| r), Some(&Reason::Always));
        assert!(select(&[], &image_modules(), &["not_carried"], &BTreeSet::new()).is_empty());
    }

    #[test]
    fn modules_already_done_are_not_selected_again() {
        let devices = [
            device(
                "pci 0000:00:03.0",
                "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00",
            ),
            device("virtio virtio0", "virtio:d00000001v00001AF4"),
        ];
        let first = select(&devices, &image_modules(), &[], &BTreeSet::new());
        let done: BTreeSet<String> = first.iter().map(|(n, _)| n.clone()).collect();
        assert!(done.contains("virtio_net") && done.contains("virtio_pci"));
        assert!(select(&devices, &image_modules(), &[], &done).is_empty());
        // A new device after a rescan selects only what is new.
        let mut more = devices.to_vec();
        more.push(device("virtio virtio1", "virtio:d00000002v00001AF4"));
        assert_eq!(
            names(&select(&more, &image_modules(), &[], &done)),
            ["virtio_blk"]
        );
    }

    /// A scratch directory under the system's temporary directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("natbox-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn add_device(sys: &Path, dir: &str, modalias: &str) {
        let path = sys.join(dir);
        fs::create_dir_all(&path).unwrap();
        fs::write(path.join("modalias"), format!("{modalias}\n")).unwrap();
    }

    #[test]
    fn devices_are_read_from_bus_and_class_modalias_files() {
        let scratch = Scratch::new("sysfs");
        let sys = &scratch.0;
        add_device(
            sys,
            "bus/pci/devices/0000:00:03.0",
            "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00",
        );
        add_device(
            sys,
            "bus/virtio/devices/virtio0",
            "virtio:d00000001v00001AF4",
        );
        add_device(sys, "bus/platform/devices/empty", "");
        fs::create_dir_all(sys.join("bus/cpu/devices/cpu0")).unwrap();
        add_device(
            sys,
            "class/input/input0",
            "input:b0019v0000p0001e0000-e0,1,k74,ramlsfw",
        );
        let found = devices(sys);
        assert_eq!(
            found,
            [
                device(
                    "pci 0000:00:03.0",
                    "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00"
                ),
                device("virtio virtio0", "virtio:d00000001v00001AF4"),
                device(
                    "input input0",
                    "input:b0019v0000p0001e0000-e0,1,k74,ramlsfw"
                ),
            ]
        );
        assert!(devices(&sys.join("absent")).is_empty());
    }

    #[test]
    fn a_bus_driver_s_new_devices_are_found_by_a_rescan() {
        let scratch = Scratch::new("rescan");
        let (dir, sys) = (scratch.0.join("modules"), scratch.0.join("sys"));
        fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, modinfo: &[u8]| {
            fs::write(dir.join(format!("{name}.ko")), elf_with_modinfo(modinfo)).unwrap();
        };
        write("virtio", b"depends=\0");
        write(
            "virtio_pci",
            b"alias=pci:v00001AF4d*sv*sd*bc*sc*i*\0depends=virtio\0",
        );
        write("virtio_net", b"alias=virtio:d00000001v*\0depends=virtio\0");
        write(
            "vmxnet3",
            b"alias=pci:v000015ADd000007B0sv*sd*bc*sc*i*\0depends=\0",
        );
        add_device(
            &sys,
            "bus/pci/devices/0000:00:03.0",
            "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00",
        );
        let mut order = Vec::new();
        let report = load_with(&dir, &sys, "", |path, _| {
            let name = module_name(path);
            // Loading the PCI transport registers the virtio device behind it.
            if name == "virtio_pci" {
                add_device(
                    &sys,
                    "bus/virtio/devices/virtio0",
                    "virtio:d00000001v00001AF4",
                );
            }
            order.push(name);
            Ok(())
        });
        assert_eq!(order, ["virtio", "virtio_pci", "virtio_net"]);
        assert_eq!(report.loaded, order);
        assert!(report.failed.is_empty());
        assert!(
            report.passes >= 2 && report.passes <= MAX_PASSES,
            "{}",
            report.passes
        );
    }

    #[test]
    fn module_parameters_come_from_the_kernel_command_line_as_modprobe_reads_them() {
        let cmdline = "console=ttyS0,115200 scsi_mod.scan=sync quiet scsi-mod.max_luns=1 \
                       virtio_net.napi_tx=1 sd_mod. .x=1 scsi_mod panic=-1 a=scsi_mod.b";
        assert_eq!(cmdline_params(cmdline, "scsi_mod"), "scan=sync max_luns=1");
        assert_eq!(cmdline_params(cmdline, "virtio_net"), "napi_tx=1");
        assert_eq!(cmdline_params(cmdline, "sd_mod"), "");
        assert_eq!(cmdline_params(cmdline, "ena"), "");
        assert_eq!(cmdline_params("", "scsi_mod"), "");
    }

    #[test]
    fn command_line_parameters_reach_the_loader() {
        let scratch = Scratch::new("params");
        let (dir, sys) = (scratch.0.join("modules"), scratch.0.join("sys"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("scsi_mod.ko"), elf_with_modinfo(b"depends=\0")).unwrap();
        fs::write(
            dir.join("virtio_scsi.ko"),
            elf_with_modinfo(b"alias=virtio:d00000008v*\0depends=scsi_mod\0"),
        )
        .unwrap();
        add_device(
            &sys,
            "bus/virtio/devices/virtio1",
            "virtio:d00000008v00001AF4",
        );
        let mut calls = Vec::new();
        let report = load_with(&dir, &sys, "quiet scsi_mod.scan=sync", |path, params| {
            calls.push((module_name(path), params.to_string()));
            Ok(())
        });
        assert_eq!(
            calls,
            [
                ("scsi_mod".to_string(), "scan=sync".to_string()),
                ("virtio_scsi".to_string(), String::new())
            ]
        );
        assert_eq!(report.loaded, ["scsi_mod", "virtio_scsi"]);
    }

    #[test]
    fn a_failed_module_is_reported_and_not_retried() {
        let scratch = Scratch::new("failed");
        let (dir, sys) = (scratch.0.join("modules"), scratch.0.join("sys"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("vmxnet3.ko"),
            elf_with_modinfo(b"alias=pci:v000015ADd000007B0sv*sd*bc*sc*i*\0"),
        )
        .unwrap();
        add_device(
            &sys,
            "bus/pci/devices/0000:00:04.0",
            "pci:v000015ADd000007B0sv000015ADsd000007B0bc02sc00i01",
        );
        let mut tries = 0;
        let report = load_with(&dir, &sys, "", |_, _| {
            tries += 1;
            Err(io::Error::from_raw_os_error(libc::ENOEXEC))
        });
        assert_eq!(tries, 1);
        assert!(report.loaded.is_empty());
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, "vmxnet3");
        assert!(report.passes <= MAX_PASSES);
    }
}
