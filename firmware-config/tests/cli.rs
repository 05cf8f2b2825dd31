//! `natbox-config` as an operator runs it: exit codes 0 (ok), 1 (invalid input),
//! 2 (I/O error), and one stderr line per problem naming file, line, field and fix.

use firmware_config::{disk, from_toml};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BASE: &str = include_str!("data/base.toml");

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("natbox-config-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write scratch file");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_natbox-config"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run natbox-config");
    (
        status.code().expect("exit code"),
        String::from_utf8(stdout).expect("utf-8 stdout"),
        String::from_utf8(stderr).expect("utf-8 stderr"),
    )
}

#[test]
fn check_accepts_a_valid_config() {
    let s = Scratch::new("check-ok");
    s.file("natbox.toml", BASE);
    assert_eq!(
        run(&s.0, &["check", "natbox.toml"]),
        (0, "natbox.toml: ok\n".into(), String::new())
    );
}

#[test]
fn check_names_file_line_field_and_fix() {
    let s = Scratch::new("check-bad");
    s.file(
        "natbox.toml",
        &BASE.replace("198.51.100.10/24", "198.51.100.10/33"),
    );
    let line = BASE[..BASE.find("198.51.100.10/24").expect("addr")]
        .matches('\n')
        .count()
        + 1;
    let (code, stdout, stderr) = run(&s.0, &["check", "natbox.toml"]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert_eq!(
        stderr,
        format!(
            "natbox.toml:{line}: outside.ipv4: \"198.51.100.10/33\": prefix length must be 0-32\n"
        )
    );
}

#[test]
fn check_lists_every_broken_rule() {
    let s = Scratch::new("check-rules");
    s.file(
        "n.toml",
        &BASE
            .replace("level = \"info\"", "level = \"INFO\"")
            .replace("port = \"wan0\"", "port = \"lan0\""),
    );
    let (code, _, stderr) = run(&s.0, &["check", "n.toml"]);
    assert_eq!(code, 1);
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with("n.toml:"), "{stderr}");
    assert!(lines[0].contains(": outside.port: \"lan0\" is also inside.port"));
    assert!(lines[1].contains(": log.level: \"INFO\": use one of error, warn, info, debug, trace"));
}

#[test]
fn check_of_a_missing_file_is_an_io_error() {
    let s = Scratch::new("check-missing");
    let (code, _, stderr) = run(&s.0, &["check", "absent.toml"]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with("absent.toml: cannot read: "), "{stderr}");
}

#[test]
fn build_show_round_trip_and_next_generation() {
    let s = Scratch::new("build");
    s.file("natbox.toml", BASE);
    assert_eq!(
        run(&s.0, &["build", "natbox.toml", "-o", "meta.img"]),
        (
            0,
            "meta.img: generation 1 in slot A\n".into(),
            String::new()
        )
    );
    assert_eq!(
        std::fs::metadata(s.path("meta.img")).expect("image").len(),
        disk::DEFAULT_DISK_SIZE
    );
    let (code, shown, stderr) = run(&s.0, &["show", "meta.img"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert!(
        shown.starts_with("# meta.img: generation 1, slot A\n"),
        "{shown}"
    );
    // What `show` prints is a config that reads back to the same thing.
    assert_eq!(
        from_toml(&shown).expect("show prints valid TOML"),
        from_toml(BASE).expect("base")
    );

    // Building again writes the next generation into the other slot.
    s.file(
        "natbox.toml",
        &BASE.replace("hostname = \"natbox\"", "hostname = \"next\""),
    );
    assert_eq!(
        run(&s.0, &["build", "natbox.toml", "-o", "meta.img"]),
        (
            0,
            "meta.img: generation 2 in slot B\n".into(),
            String::new()
        )
    );
    let (code, shown, _) = run(&s.0, &["show", "meta.img"]);
    assert_eq!(code, 0);
    assert!(
        shown.starts_with("# meta.img: generation 2, slot B\n"),
        "{shown}"
    );
    assert!(shown.contains("hostname = \"next\""), "{shown}");
}

#[test]
fn build_with_a_small_size() {
    let s = Scratch::new("build-small");
    s.file("natbox.toml", BASE);
    let (code, _, stderr) = run(
        &s.0,
        &["build", "natbox.toml", "-o", "m.img", "--size", "12288"],
    );
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(
        std::fs::metadata(s.path("m.img")).expect("image").len(),
        12288
    );
    let (code, _, stderr) = run(
        &s.0,
        &["build", "natbox.toml", "-o", "n.img", "--size", "100"],
    );
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "n.img: a disk of 100 bytes cannot hold the layout; use at least 12288 bytes \
         (default 1048576)\n"
    );
    assert!(!s.path("n.img").exists(), "no partial image is left behind");
}

#[test]
fn build_refuses_an_invalid_config_and_keeps_the_image() {
    let s = Scratch::new("build-invalid");
    s.file("natbox.toml", BASE);
    assert_eq!(run(&s.0, &["build", "natbox.toml", "-o", "meta.img"]).0, 0);
    let before = std::fs::read(s.path("meta.img")).expect("image");
    s.file(
        "bad.toml",
        &BASE.replace(
            "mss_clamp = 1460",
            "mss_clamp = 1460\nport_min = 1\nport_max = 80",
        ),
    );
    let (code, _, stderr) = run(&s.0, &["build", "bad.toml", "-o", "meta.img"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(": nat.port_max: 80: inside ports 1024-65535 must map"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(s.path("meta.img")).expect("image"), before);
}

#[test]
fn build_refuses_to_overwrite_a_foreign_file() {
    let s = Scratch::new("build-foreign");
    s.file("natbox.toml", BASE);
    s.file("notes.txt", "precious\n");
    assert_eq!(
        run(&s.0, &["build", "natbox.toml", "-o", "notes.txt"]),
        (
            1,
            String::new(),
            "notes.txt: exists and is not a natbox metadata disk; choose another path, or add \
             --format to erase it\n"
                .into()
        )
    );
    assert_eq!(
        std::fs::read_to_string(s.path("notes.txt")).expect("kept"),
        "precious\n"
    );
}

#[test]
fn build_format_starts_over() {
    let s = Scratch::new("build-format");
    s.file("natbox.toml", BASE);
    s.file("notes.txt", "not a disk\n");
    let args = [
        "build",
        "natbox.toml",
        "-o",
        "notes.txt",
        "--format",
        "--size",
        "12288",
    ];
    assert_eq!(
        run(&s.0, &args),
        (
            0,
            "notes.txt: generation 1 in slot A\n".into(),
            String::new()
        )
    );
    assert_eq!(
        std::fs::metadata(s.path("notes.txt")).expect("image").len(),
        12288
    );
    assert_eq!(run(&s.0, &["build", "natbox.toml", "-o", "notes.txt"]).0, 0);
    // --format on an image with generation 2 starts again at 1.
    assert_eq!(
        run(&s.0, &args),
        (
            0,
            "notes.txt: generation 1 in slot A\n".into(),
            String::new()
        )
    );
}

#[test]
fn size_is_ignored_for_an_existing_image() {
    let s = Scratch::new("build-size-existing");
    s.file("natbox.toml", BASE);
    assert_eq!(run(&s.0, &["build", "natbox.toml", "-o", "m.img"]).0, 0);
    let (code, stdout, stderr) = run(
        &s.0,
        &["build", "natbox.toml", "-o", "m.img", "--size", "12288"],
    );
    assert_eq!(code, 0);
    assert_eq!(stdout, "m.img: generation 2 in slot B\n");
    assert_eq!(
        stderr,
        "m.img: note: --size applies to new images; this one keeps its layout\n"
    );
    assert_eq!(
        std::fs::metadata(s.path("m.img")).expect("image").len(),
        disk::DEFAULT_DISK_SIZE
    );
}

#[test]
fn show_reports_damage() {
    let s = Scratch::new("show-damage");
    s.file("natbox.toml", BASE);
    assert_eq!(run(&s.0, &["build", "natbox.toml", "-o", "meta.img"]).0, 0);
    assert_eq!(run(&s.0, &["build", "natbox.toml", "-o", "meta.img"]).0, 0);
    // Damage slot B (generation 2): show falls back to slot A and warns.
    let path = s.path("meta.img");
    let mut image = std::fs::read(&path).expect("image");
    let slot_b = 4096 + 127 * 4096;
    image[slot_b + 40] ^= 0xff;
    std::fs::write(&path, &image).expect("damage");
    let (code, shown, stderr) = run(&s.0, &["show", "meta.img"]);
    assert_eq!(code, 0);
    assert!(shown.starts_with("# meta.img: generation 1, slot A\n"));
    assert_eq!(
        stderr,
        "meta.img: warning: slot B: checksum mismatch (torn write or damaged disk); using \
         slot A (generation 1)\n"
    );
    // Both slots damaged: refused, naming both.
    image[4096 + 40] ^= 0xff;
    std::fs::write(&path, &image).expect("damage");
    assert_eq!(
        run(&s.0, &["show", "meta.img"]),
        (
            1,
            String::new(),
            "meta.img: no valid config: slot A: checksum mismatch (torn write or damaged disk); \
             slot B: checksum mismatch (torn write or damaged disk); write one with \
             `natbox-config build`\n"
                .into()
        )
    );
}

#[test]
fn show_of_a_missing_image_is_an_io_error() {
    let s = Scratch::new("show-missing");
    let (code, _, stderr) = run(&s.0, &["show", "absent.img"]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("absent.img: I/O error opening: "),
        "{stderr}"
    );
}

#[test]
fn show_reads_the_checked_in_image() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let (code, shown, stderr) = run(&dir, &["show", "v1.img"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert!(shown.starts_with("# v1.img: generation 2, slot B\n"));
    assert_eq!(
        from_toml(&shown).expect("valid"),
        from_toml(include_str!("data/v1.toml")).expect("valid")
    );
}

#[test]
fn usage_errors() {
    let s = Scratch::new("usage");
    for (args, first) in [
        (&[][..], "natbox-config: no command"),
        (
            &["frobnicate"][..],
            "natbox-config: unknown command frobnicate",
        ),
        (
            &["build", "x.toml"][..],
            "natbox-config: build needs -o IMAGE",
        ),
        (
            &["build", "-o", "x.img"][..],
            "natbox-config: build needs a config file",
        ),
        (
            &["build", "x.toml", "-o", "x.img", "--size", "big"][..],
            "natbox-config: --size big: not a number of bytes",
        ),
        (&["show"][..], "natbox-config: show takes one image"),
        (
            &["check", "a", "b"][..],
            "natbox-config: check takes one config file",
        ),
    ] {
        let (code, stdout, stderr) = run(&s.0, args);
        assert_eq!((code, stdout.as_str()), (1, ""), "{args:?}");
        assert_eq!(stderr.lines().next(), Some(first), "{args:?}");
        assert!(stderr.contains("usage:"), "{args:?}");
    }
    let (code, stdout, _) = run(&s.0, &["--help"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("usage:"));
}

/// A blank image holds no configuration (`is_blank`: the box looks for a cloud source
/// and saves its commits there), and a `build` onto it writes generation 1.
#[test]
fn blank_makes_an_image_with_no_configuration_that_build_fills() {
    let dir = Scratch::new("blank");
    let img = dir.path("blank.img");
    let (code, out, err) = run(
        &dir.0,
        &["blank", "-o", img.to_str().unwrap(), "--size", "12288"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("blank metadata disk of 12288 bytes"), "{out}");
    let read = firmware_config::disk::read_path(&img).unwrap_err();
    assert!(read.is_blank(), "{read}");
    let (code, _, err) = run(&dir.0, &["blank", "-o", img.to_str().unwrap()]);
    assert_eq!(code, 2, "an existing image is not overwritten");
    assert!(err.contains("cannot create"), "{err}");
    let config = dir.file("natbox.toml", include_str!("../../natbox.toml"));
    let (code, _, err) = run(
        &dir.0,
        &[
            "build",
            config.to_str().unwrap(),
            "-o",
            img.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        firmware_config::disk::read_path(&img).unwrap().generation,
        1
    );
}
