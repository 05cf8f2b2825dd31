//! `read` on real file system images, built here the way clouds and cloud-localds build
//! them: vfat with `mkfs.vfat` + `mtools`, ISO 9660 with `xorriso -as mkisofs` (no root,
//! no mount; `tests/setup.sh` installs them).

use super::*;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

const NATBOX_TOML: &str = include_str!("../../../natbox.toml");

/// natbox.toml without its `hostname` line.
fn toml_without_hostname() -> String {
    let text: String = NATBOX_TOML
        .lines()
        .filter(|l| !l.starts_with("hostname"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(
        text.len(),
        NATBOX_TOML.len(),
        "natbox.toml names a hostname"
    );
    text
}

const META_DATA: &str = "instance-id: iid-natbox-1\nlocal-hostname: nat-7.example.internal\n";

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("natbox-sources-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run tests/setup.sh)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A vfat image labelled `label` holding `files` (paths with `/`).
fn vfat(dir: &Path, label: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let img = dir.join("vfat.img");
    let _ = std::fs::remove_file(&img);
    run(Command::new("mkfs.vfat")
        .args(["-C", "-n", label])
        .arg(&img)
        .arg("2048"));
    let mut made = Vec::new();
    for (path, data) in files {
        let parts: Vec<&str> = path.split('/').collect();
        for depth in 1..parts.len() {
            let sub = parts[..depth].join("/");
            if !made.contains(&sub) {
                run(Command::new("mmd")
                    .arg("-i")
                    .arg(&img)
                    .arg(format!("::{sub}")));
                made.push(sub);
            }
        }
        let src = dir.join("payload");
        std::fs::write(&src, data).unwrap();
        run(Command::new("mcopy")
            .arg("-i")
            .arg(&img)
            .arg(&src)
            .arg(format!("::{path}")));
    }
    img
}

/// An ISO 9660 image labelled `label` holding `files`, with the extra mkisofs `names`
/// options (`-J -R`: Joliet and Rock Ridge).
fn iso(dir: &Path, label: &str, names: &[&str], files: &[(&str, &[u8])]) -> PathBuf {
    let root = dir.join("iso-root");
    let _ = std::fs::remove_dir_all(&root);
    for (path, data) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, data).unwrap();
    }
    std::fs::create_dir_all(&root).unwrap();
    let img = dir.join("iso.img");
    let _ = std::fs::remove_file(&img);
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-V", label])
        .args(names)
        .arg("-o")
        .arg(&img)
        .arg(&root));
    img
}

fn read_image(img: &Path) -> Result<Option<Loaded>, String> {
    read(File::open(img).unwrap()).map_err(|r| r.message)
}

fn nocloud_files(user_data: &[u8]) -> [(&str, &[u8]); 2] {
    [
        ("user-data", user_data),
        ("meta-data", META_DATA.as_bytes()),
    ]
}

#[test]
fn nocloud_vfat_user_data_and_meta_data_are_read() {
    let s = Scratch::new("vfat");
    let img = vfat(&s.0, "cidata", &nocloud_files(NATBOX_TOML.as_bytes()));
    let loaded = read_image(&img).unwrap().expect("a cidata volume");
    assert_eq!(loaded.kind, Kind::NoCloud);
    assert_eq!(loaded.config, crate::from_toml(NATBOX_TOML).unwrap());
    assert_eq!(loaded.meta.instance_id.as_deref(), Some("iid-natbox-1"));
    assert_eq!(
        loaded.meta.hostname.as_deref(),
        Some("nat-7.example.internal")
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn nocloud_iso9660_joliet_and_rock_ridge_are_read() {
    let s = Scratch::new("iso");
    for names in [&["-J", "-R"][..], &["-R"], &["-J"]] {
        let img = iso(
            &s.0,
            "cidata",
            names,
            &nocloud_files(NATBOX_TOML.as_bytes()),
        );
        let loaded = read_image(&img)
            .unwrap()
            .unwrap_or_else(|| panic!("{names:?}: a cidata volume"));
        assert_eq!(loaded.config, crate::from_toml(NATBOX_TOML).unwrap());
        assert_eq!(
            loaded.meta.instance_id.as_deref(),
            Some("iid-natbox-1"),
            "{names:?}"
        );
    }
}

#[test]
fn labels_are_matched_case_insensitively() {
    let s = Scratch::new("case");
    let img = vfat(&s.0, "CIDATA", &nocloud_files(NATBOX_TOML.as_bytes()));
    assert_eq!(read_image(&img).unwrap().unwrap().kind, Kind::NoCloud);
    let img = iso(
        &s.0,
        "CiData",
        &["-J", "-R"],
        &nocloud_files(NATBOX_TOML.as_bytes()),
    );
    assert_eq!(read_image(&img).unwrap().unwrap().kind, Kind::NoCloud);
    let img = vfat(
        &s.0,
        "CONFIG-2",
        &[("openstack/latest/user_data", NATBOX_TOML.as_bytes())],
    );
    assert_eq!(read_image(&img).unwrap().unwrap().kind, Kind::ConfigDrive);
}

#[test]
fn config_drive_layout_is_read_on_vfat_and_iso9660() {
    let s = Scratch::new("configdrive");
    let meta = br#"{"uuid": "83679162-1378-4288-a2d4-70e13ec132aa", "hostname": "nat-2"}"#;
    let files: [(&str, &[u8]); 3] = [
        (
            "openstack/latest/user_data",
            toml_without_hostname().leak().as_bytes(),
        ),
        ("openstack/latest/meta_data.json", meta),
        ("ec2/latest/meta-data.json", b"{}"),
    ];
    for img in [
        vfat(&s.0, "config-2", &files),
        iso(&s.0, "config-2", &["-J", "-R"], &files),
    ] {
        let loaded = read_image(&img).unwrap().expect("a config drive");
        assert_eq!(loaded.kind, Kind::ConfigDrive);
        assert_eq!(
            loaded.meta.instance_id.as_deref(),
            Some("83679162-1378-4288-a2d4-70e13ec132aa")
        );
        assert_eq!(loaded.config.hostname, "nat-2", "the metadata's host name");
    }
}

#[test]
fn metadata_hostname_fills_only_a_hostname_the_user_data_leaves_out() {
    let s = Scratch::new("hostname");
    let without = toml_without_hostname();
    let img = vfat(&s.0, "cidata", &nocloud_files(without.as_bytes()));
    // nat-7.example.internal is a valid host name as a whole.
    assert_eq!(
        read_image(&img).unwrap().unwrap().config.hostname,
        "nat-7.example.internal"
    );
    let img = vfat(&s.0, "cidata", &nocloud_files(NATBOX_TOML.as_bytes()));
    assert_eq!(read_image(&img).unwrap().unwrap().config.hostname, "natbox");
    // Not a valid name as a whole: its first label is.
    let img = vfat(
        &s.0,
        "cidata",
        &[
            ("user-data", without.as_bytes()),
            ("meta-data", b"local-hostname: gw-9.bad_domain\n"),
        ],
    );
    assert_eq!(read_image(&img).unwrap().unwrap().config.hostname, "gw-9");
}

#[test]
fn gzip_user_data_is_accepted() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(NATBOX_TOML.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let s = Scratch::new("gzip");
    let img = iso(&s.0, "cidata", &["-J", "-R"], &nocloud_files(&gz));
    let loaded = read_image(&img).unwrap().unwrap();
    assert_eq!(loaded.config, crate::from_toml(NATBOX_TOML).unwrap());
}

#[test]
fn cloud_config_script_and_bad_toml_are_refused_with_what_natbox_expects() {
    let s = Scratch::new("refused");
    let bad_toml = NATBOX_TOML.replacen(
        "ipv4 = \"198.51.100.10/24\"",
        "ipv4 = \"198.51.100.10/33\"",
        1,
    );
    assert_ne!(bad_toml, NATBOX_TOML);
    for (user_data, expected) in [
        (
            "#cloud-config\nruncmd: [reboot]\n",
            "cidata:user-data is a #cloud-config document; natbox reads its own TOML \
             configuration (see natbox.toml), plain or gzip",
        ),
        (
            "#!/bin/bash\niptables -t nat -A POSTROUTING -j MASQUERADE\n",
            "cidata:user-data is a #! shell script; natbox reads its own TOML \
             configuration (see natbox.toml), plain or gzip",
        ),
        (bad_toml.as_str(), "cidata:user-data:11: outside.ipv4:"),
    ] {
        let img = vfat(&s.0, "cidata", &nocloud_files(user_data.as_bytes()));
        let err = read_image(&img).unwrap_err();
        assert!(err.starts_with(expected), "{err}");
    }
}

#[test]
fn oversize_files_are_refused_by_their_size() {
    let s = Scratch::new("oversize");
    let big = vec![b'#'; MAX_USER_DATA as usize + 1];
    let img = iso(&s.0, "cidata", &["-J", "-R"], &nocloud_files(&big));
    let err = read_image(&img).unwrap_err();
    assert!(
        err.contains("user-data: 1048577 bytes, more than the 1024 KiB"),
        "{err}"
    );
    // An oversize meta-data is only a warning: the user-data still configures.
    let big_meta = vec![b'#'; MAX_META_DATA as usize + 1];
    let img = vfat(
        &s.0,
        "cidata",
        &[
            ("user-data", NATBOX_TOML.as_bytes()),
            ("meta-data", &big_meta),
        ],
    );
    let loaded = read_image(&img).unwrap().unwrap();
    assert_eq!(loaded.meta, Meta::default());
    assert!(
        loaded.warnings[0].contains("meta-data: 65537 bytes"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn missing_user_data_is_an_error_and_missing_meta_data_a_warning() {
    let s = Scratch::new("missing");
    let img = vfat(&s.0, "cidata", &[("meta-data", META_DATA.as_bytes())]);
    let err = read_image(&img).unwrap_err();
    assert!(err.contains("has no user-data"), "{err}");
    let img = vfat(&s.0, "cidata", &[("user-data", NATBOX_TOML.as_bytes())]);
    let loaded = read_image(&img).unwrap().unwrap();
    assert_eq!(loaded.warnings, ["cidata volume has no meta-data file"]);
}

#[test]
fn volumes_with_another_label_or_no_file_system_are_ignored() {
    let s = Scratch::new("other");
    let img = vfat(&s.0, "boot", &nocloud_files(NATBOX_TOML.as_bytes()));
    assert_eq!(read_image(&img).unwrap(), None);
    let img = iso(
        &s.0,
        "cidata2",
        &["-J", "-R"],
        &nocloud_files(NATBOX_TOML.as_bytes()),
    );
    assert_eq!(read_image(&img).unwrap(), None);
    assert_eq!(
        read(std::io::Cursor::new(vec![0u8; 1 << 20])).unwrap(),
        None
    );
    assert_eq!(read(std::io::Cursor::new(Vec::new())).unwrap(), None);
}

#[test]
fn truncated_and_corrupt_images_give_errors_not_panics() {
    let s = Scratch::new("corrupt");
    for img in [
        vfat(&s.0, "cidata", &nocloud_files(NATBOX_TOML.as_bytes())),
        iso(
            &s.0,
            "cidata",
            &["-J", "-R"],
            &nocloud_files(NATBOX_TOML.as_bytes()),
        ),
    ] {
        let image = std::fs::read(&img).unwrap();
        // Cut inside the user-data: the label and directories are there, the file is not.
        let cut = image
            .windows(9)
            .position(|w| w == b"[outside]")
            .expect("the user-data in the image");
        let truncated = read(std::io::Cursor::new(image[..cut].to_vec()));
        assert!(truncated.is_err(), "{truncated:?}");
        // Every 4 KiB region overwritten in turn: an answer, never a panic or a hang.
        let mut answers = 0;
        for start in (0..image.len()).step_by(4096).take(512) {
            let mut broken = image.clone();
            let end = (start + 4096).min(broken.len());
            broken[start..end].fill(0xA5);
            let _ = read(std::io::Cursor::new(broken));
            answers += 1;
        }
        assert!(answers > 1);
    }
}

#[test]
fn device_reads_are_bounded() {
    /// An endless device of one repeated FAT-looking byte pattern.
    struct Endless(u64);
    impl std::io::Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(0);
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
    }
    impl std::io::Seek for Endless {
        fn seek(&mut self, _: std::io::SeekFrom) -> std::io::Result<u64> {
            Ok(0)
        }
    }
    let mut device = volume::Bounded::new(Endless(0));
    let mut sink = Vec::new();
    let err = std::io::Read::read_to_end(&mut device, &mut sink).unwrap_err();
    assert!(err.to_string().contains("16 MiB"), "{err}");
    assert_eq!(sink.len() as u64, MAX_DEVICE_READ);
}

#[test]
fn metadata_values_that_are_not_printable_ascii_are_left_out() {
    let s = Scratch::new("printable");
    let img = vfat(
        &s.0,
        "cidata",
        &[
            ("user-data", NATBOX_TOML.as_bytes()),
            (
                "meta-data",
                b"instance-id: i-\x1b[2Jx\nlocal-hostname: ok-name\n",
            ),
        ],
    );
    let meta = read_image(&img).unwrap().unwrap().meta;
    assert_eq!(meta.instance_id, None);
    assert_eq!(meta.hostname.as_deref(), Some("ok-name"));
}
