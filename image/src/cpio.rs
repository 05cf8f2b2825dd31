//! The cpio "newc" archive format the kernel unpacks as its initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte ASCII
//! header per entry, the NUL-terminated name and the data each padded to 4 bytes, and
//! a `TRAILER!!!` entry. Every timestamp, owner and inode number is fixed by the
//! caller's order, so the same entries always give the same bytes.

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir {
        path: String,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    CharDevice {
        path: String,
        mode: u32,
        major: u32,
        minor: u32,
    },
}

impl Entry {
    fn path(&self) -> &str {
        match self {
            Entry::Dir { path } | Entry::File { path, .. } | Entry::CharDevice { path, .. } => path,
        }
    }
}

/// Writes `entries` (in the given order) as a newc archive.
pub fn write(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match e {
            Entry::Dir { .. } => (S_IFDIR | 0o755, &[], (0, 0)),
            Entry::File { mode, data, .. } => (S_IFREG | mode, data, (0, 0)),
            Entry::CharDevice {
                mode, major, minor, ..
            } => (S_IFCHR | mode, &[], (*major, *minor)),
        };
        member(&mut out, i as u32 + 1, e.path(), mode, data, rdev);
    }
    member(&mut out, 0, "TRAILER!!!", 0, &[], (0, 0));
    out
}

fn member(out: &mut Vec<u8>, ino: u32, path: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
    let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
    let name_size = path.len() + 1;
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name_size as u32,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(path.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout() {
        let a = write(&[Entry::File {
            path: "init".into(),
            mode: 0o755,
            data: b"hi".to_vec(),
        }]);
        assert_eq!(&a[..6], b"070701");
        // Header (110) + "init\0" padded to 116 + data padded to 120, then the trailer.
        assert_eq!(&a[110..115], b"init\0");
        assert_eq!(&a[116..118], b"hi");
        assert_eq!(&a[120..126], b"070701");
        assert!(a.len().is_multiple_of(4));
        // filesize field (7th) is 2, mode field is a regular file 0755.
        assert_eq!(&a[6 + 6 * 8..6 + 7 * 8], b"00000002");
        assert_eq!(&a[6 + 8..6 + 16], b"000081ed");
        let tail = &a[120..];
        assert!(tail.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn same_input_same_bytes() {
        let entries = vec![
            Entry::Dir { path: "dev".into() },
            Entry::CharDevice {
                path: "dev/console".into(),
                mode: 0o600,
                major: 5,
                minor: 1,
            },
        ];
        assert_eq!(write(&entries), write(&entries));
    }
}
