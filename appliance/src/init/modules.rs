//! Loading the kernel modules the image carries, in dependency order.
//!
//! Debian's kernel package ships no `modules.dep` usable without depmod, so each
//! module's dependencies come from its own `.modinfo` ELF section (`depends=a,b`).
//! Modules are loaded with `finit_module(2)`; one that is already loaded or built in
//! counts as loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Reads the `depends=` list of a module image.
pub fn depends(image: &[u8]) -> Vec<String> {
    modinfo(image)
        .into_iter()
        .filter_map(|kv| kv.strip_prefix("depends=").map(str::to_string))
        .flat_map(|list| {
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
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

/// Loads every `*.ko` in `dir`. Returns the names loaded and the failures.
pub fn load_all(dir: &Path) -> (Vec<String>, Vec<(String, io::Error)>) {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut deps = BTreeMap::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "ko") {
            let name = module_name(&path);
            let image = fs::read(&path).unwrap_or_default();
            deps.insert(name.clone(), depends(&image));
            files.insert(name, path);
        }
    }
    let mut loaded = Vec::new();
    let mut failed = Vec::new();
    for name in load_order(&deps) {
        match finit_module(&files[&name]) {
            Ok(()) => loaded.push(name),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => loaded.push(name),
            Err(e) => failed.push((name, e)),
        }
    }
    (loaded, failed)
}

fn finit_module(path: &Path) -> io::Result<()> {
    let file = fs::File::open(path)?;
    let params = c"";
    // SAFETY: finit_module(2) with a valid open fd and a NUL-terminated empty string.
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
}
