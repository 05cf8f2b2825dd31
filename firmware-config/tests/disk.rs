//! The metadata disk against damage: round trips, every byte flipped, truncation at
//! every length, a power cut after every byte of a write, random mutations, and the
//! checked-in format-version-1 image.

use firmware_config::disk::{self, BlockDevice, DiskError, Loaded, Slot, SlotProblem};
use firmware_config::{from_toml, to_toml, Config};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

const SMALL: u64 = disk::MIN_DISK_SIZE;
const SLOT_A: usize = 4096;
const SLOT_B: usize = 8192;

fn config(hostname: &str) -> Config {
    let mut c = from_toml(include_str!("data/base.toml")).expect("base.toml is valid");
    c.hostname = hostname.into();
    c
}

fn formatted(size: u64) -> Cursor<Vec<u8>> {
    let mut d = Cursor::new(Vec::new());
    disk::format(&mut d, size).expect("format");
    d
}

/// A small disk with generation 1 (`old`) in slot A and generation 2 (`new`) in B.
fn two_generations() -> (Vec<u8>, Config, Config) {
    let (old, new) = (config("old"), config("new"));
    let mut d = formatted(SMALL);
    assert_eq!(disk::write(&mut d, &old).expect("gen 1"), 1);
    assert_eq!(disk::write(&mut d, &new).expect("gen 2"), 2);
    (d.into_inner(), old, new)
}

/// Bytes slot headers plus payloads use on a `two_generations` disk.
fn used(image: &[u8], slot_at: usize) -> usize {
    let len = u32::from_le_bytes(image[slot_at + 12..slot_at + 16].try_into().expect("4"));
    32 + len as usize
}

#[track_caller]
fn assert_loaded(result: Result<Loaded, DiskError>, config: &Config, generation: u64, slot: Slot) {
    let loaded = result.unwrap_or_else(|e| panic!("expected slot {slot}, got error: {e}"));
    assert_eq!((loaded.generation, loaded.slot), (generation, slot));
    assert_eq!(&loaded.config, config);
}

#[test]
fn round_trip_toml_disk_toml() {
    let text = include_str!("data/v1.toml");
    let config = from_toml(text).expect("valid");
    let mut d = formatted(disk::DEFAULT_DISK_SIZE);
    disk::write(&mut d, &config).expect("write");
    let loaded = disk::read(&mut d).expect("read");
    let rendered = to_toml(&loaded.config);
    assert_eq!(
        from_toml(&rendered).expect("rendered TOML is valid"),
        config
    );
}

/// Format version 5: `ipv4 = "dhcp"` survives TOML, the disk and TOML again, and a
/// static address next to it keeps its encoding of version 4.
#[test]
fn a_dhcp_port_round_trips_toml_disk_toml() {
    let mut config = config("dhcp");
    config.outside.ipv4 = Some("dhcp".parse().expect("the word dhcp"));
    config.outside.gateway4 = None;
    config.nat.pool.clear();
    let text = to_toml(&config);
    assert!(text.contains("ipv4 = \"dhcp\""), "{text}");
    assert_eq!(from_toml(&text).expect("valid"), config);
    let mut d = formatted(SMALL);
    disk::write(&mut d, &config).expect("write");
    let loaded = disk::read(&mut d).expect("read");
    assert_eq!(loaded.config, config);
    assert!(loaded.config.outside.ipv4_dhcp());
    assert!(loaded.config.inside_port().ipv4_net().is_some());
}

/// A value that is neither an address nor "dhcp" is refused with both forms named.
#[test]
fn ipv4_is_an_address_or_dhcp() {
    let text =
        include_str!("data/base.toml").replace("ipv4 = \"198.51.100.10/24\"", "ipv4 = \"dchp\"");
    assert_ne!(
        text,
        include_str!("data/base.toml"),
        "base.toml has the outside address"
    );
    let e = from_toml(&text).expect_err("a typo is refused").to_string();
    assert!(
        e.contains("neither an address nor \"dhcp\"") && e.contains("10.10.0.1/24"),
        "{e}"
    );
}

/// Format version 6: `ipv6 = "slaac"` and `ipv6 = "dhcp"` on the outside port, with no
/// gateway6, survive TOML, the disk and TOML again.
#[test]
fn learned_ipv6_round_trips_toml_disk_toml() {
    for how in ["slaac", "dhcp"] {
        let mut config = config(how);
        config.outside.ipv6 = Some(how.parse().expect("the word"));
        config.outside.gateway6 = None;
        let text = to_toml(&config);
        assert!(text.contains(&format!("ipv6 = \"{how}\"")), "{text}");
        assert_eq!(from_toml(&text).expect("valid"), config);
        let mut d = formatted(SMALL);
        disk::write(&mut d, &config).expect("write");
        let loaded = disk::read(&mut d).expect("read");
        assert_eq!(loaded.config, config);
        assert!(loaded.config.outside.ipv6_learned());
        assert!(loaded.config.inside_port().ipv6_net().is_some());
    }
}

/// A value that is no address nor a word natbox knows is refused with every form named.
#[test]
fn ipv6_is_an_address_or_slaac_or_dhcp() {
    let base = include_str!("data/base.toml");
    let text = base.replace("ipv6 = \"2001:db8:ff::10/64\"", "ipv6 = \"slacc\"");
    assert_ne!(text, base, "base.toml has the outside IPv6 address");
    let e = from_toml(&text).expect_err("a typo is refused").to_string();
    assert!(
        e.contains("neither an address nor \"slaac\" nor \"dhcp\"")
            && e.contains("2001:db8:10::1/64"),
        "{e}"
    );
}

#[test]
fn every_flipped_byte_of_a_slot_falls_back_to_the_other() {
    let (image, old, new) = two_generations();
    for (slot_at, survivor, generation, slot) in
        [(SLOT_B, &old, 1, Slot::A), (SLOT_A, &new, 2, Slot::B)]
    {
        for i in slot_at..slot_at + used(&image, slot_at) {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut damaged = image.clone();
                damaged[i] ^= mask;
                let result = disk::read_bytes(&damaged);
                let warnings = result
                    .as_ref()
                    .map(|l| l.warnings.clone())
                    .unwrap_or_default();
                assert_loaded(result, survivor, generation, slot);
                let damaged_slot = if slot == Slot::A {
                    "slot B: "
                } else {
                    "slot A: "
                };
                assert_eq!(warnings.len(), 1, "byte {i} mask {mask:#x}");
                assert!(warnings[0].starts_with(damaged_slot), "{}", warnings[0]);
                assert!(
                    warnings[0]
                        .ends_with(&format!("; using slot {slot} (generation {generation})")),
                    "{}",
                    warnings[0]
                );
            }
        }
    }
}

#[test]
fn every_flipped_byte_of_the_disk_header_is_refused() {
    let (image, _, new) = two_generations();
    for i in 0..32 {
        let mut damaged = image.clone();
        damaged[i] ^= 0x01;
        let err = disk::read_bytes(&damaged).expect_err("damaged disk header");
        assert!(
            matches!(
                err,
                DiskError::NotMetadataDisk
                    | DiskError::NewerLayout(_)
                    | DiskError::BadDiskHeader(_)
            ),
            "byte {i}: {err}"
        );
    }
    // The rest of the header area is padding.
    let mut padded = image.clone();
    padded[32..SLOT_A].fill(0xaa);
    assert_loaded(disk::read_bytes(&padded), &new, 2, Slot::B);
}

#[test]
fn truncation_at_every_length() {
    let (image, old, new) = two_generations();
    let end_a = SLOT_A + used(&image, SLOT_A);
    let end_b = SLOT_B + used(&image, SLOT_B);
    for len in 0..=image.len() {
        let result = disk::read_bytes(&image[..len]);
        if len < 32 {
            assert!(matches!(result, Err(DiskError::NotMetadataDisk)), "{len}");
        } else if len < end_a {
            assert!(
                matches!(result, Err(DiskError::NoValidConfig { .. })),
                "{len}"
            );
        } else if len < end_b {
            let warnings = result
                .as_ref()
                .map(|l| l.warnings.clone())
                .unwrap_or_default();
            assert_loaded(result, &old, 1, Slot::A);
            if len > SLOT_B {
                assert!(warnings[0].starts_with("slot B: truncated"), "{warnings:?}");
            }
        } else {
            assert_loaded(result, &new, 2, Slot::B);
        }
    }
}

#[test]
fn zeroed_disk_and_zeroed_slots() {
    let (image, _, _) = two_generations();
    let zeros = vec![0u8; image.len()];
    assert!(matches!(
        disk::read_bytes(&zeros),
        Err(DiskError::NotMetadataDisk)
    ));
    let mut slots_zeroed = image.clone();
    slots_zeroed[SLOT_A..].fill(0);
    match disk::read_bytes(&slots_zeroed) {
        Err(DiskError::NoValidConfig { a, b }) => {
            assert_eq!((a, b), (SlotProblem::Empty, SlotProblem::Empty))
        }
        other => panic!("expected no valid config, got {other:?}"),
    }
    assert!(disk::read_bytes(&[]).is_err());
}

/// A device that loses power after `budget` more bytes: later writes fail and what was
/// written stays.
struct PowerCut {
    inner: Cursor<Vec<u8>>,
    budget: usize,
    written: usize,
}

impl Read for PowerCut {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Seek for PowerCut {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl Write for PowerCut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.budget);
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::other("power cut"));
        }
        let n = self.inner.write(&buf[..n])?;
        self.budget -= n;
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlockDevice for PowerCut {}

/// Writes `config` onto `image` with the power cut after every possible byte count and
/// checks the reader sees `before` until the write is whole, and `config` after.
fn cut_at_every_byte(image: &[u8], config: &Config, before: Option<(&Config, u64, Slot)>) {
    let mut whole = PowerCut {
        inner: Cursor::new(image.to_vec()),
        budget: usize::MAX,
        written: 0,
    };
    let generation = disk::write(&mut whole, config).expect("uncut write");
    let new_slot = disk::read_bytes(whole.inner.get_ref()).expect("read").slot;
    let total = whole.written;
    assert!(
        total > 64,
        "a write is header, payload, header: {total} bytes"
    );
    for budget in 0..=total {
        let mut device = PowerCut {
            inner: Cursor::new(image.to_vec()),
            budget,
            written: 0,
        };
        let outcome = disk::write(&mut device, config);
        let result = disk::read_bytes(device.inner.get_ref());
        if budget == total {
            assert_eq!(outcome.expect("whole write"), generation);
            assert_loaded(result, config, generation, new_slot);
        } else {
            assert!(
                matches!(outcome, Err(DiskError::Io { .. })),
                "cut at {budget}"
            );
            match before {
                Some((old, g, slot)) => assert_loaded(result, old, g, slot),
                None => assert!(
                    matches!(result, Err(DiskError::NoValidConfig { .. })),
                    "cut at {budget}: {result:?}"
                ),
            }
        }
    }
}

#[test]
fn power_cut_during_first_write() {
    let image = formatted(SMALL).into_inner();
    cut_at_every_byte(&image, &config("first"), None);
}

#[test]
fn power_cut_during_second_write() {
    let old = config("old");
    let mut d = formatted(SMALL);
    disk::write(&mut d, &old).expect("gen 1");
    cut_at_every_byte(d.get_ref(), &config("second"), Some((&old, 1, Slot::A)));
}

#[test]
fn power_cut_while_overwriting_the_older_slot() {
    let (image, _, new) = two_generations();
    cut_at_every_byte(&image, &config("third"), Some((&new, 2, Slot::B)));
}

#[test]
fn power_cut_after_a_damaged_slot() {
    // Slot B is damaged, so the write goes there and the reader keeps using A.
    let (mut image, old, _) = two_generations();
    image[SLOT_B + 40] ^= 0xff;
    cut_at_every_byte(&image, &config("repair"), Some((&old, 1, Slot::A)));
}

/// xorshift64*: a fixed sequence, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_damage_never_panics_nor_invents_a_config() {
    let (image, old, new) = two_generations();
    let end_b = SLOT_B + used(&image, SLOT_B);
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for _ in 0..5000 {
        let mut damaged = image[..end_b].to_vec();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(damaged.len());
            damaged[at] = rng.next() as u8;
        }
        if rng.below(4) == 0 {
            damaged.truncate(rng.below(end_b + 1));
        }
        if let Ok(loaded) = disk::read_bytes(&damaged) {
            assert!(loaded.config == old || loaded.config == new);
        }
    }
    // Arbitrary slot contents behind a valid disk header.
    for _ in 0..2000 {
        let mut junk = image[..SLOT_A].to_vec();
        let len = rng.below(2 * 4096 + 64);
        junk.extend((0..len).map(|_| rng.next() as u8));
        if rng.below(2) == 0 && junk.len() >= SLOT_A + 12 {
            junk[SLOT_A..SLOT_A + 8].copy_from_slice(&disk::SLOT_MAGIC);
            junk[SLOT_A + 8..SLOT_A + 12].copy_from_slice(&[1, 0, 0, 0]);
        }
        let _ = disk::read_bytes(&junk);
    }
}

/// Rewrites slot B's header so its length and CRC match `payload`: the damage reaches
/// the decoder and the rules instead of stopping at the checksum.
fn forge_slot_b(image: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut forged = image[..SLOT_B + 32].to_vec();
    forged[SLOT_B + 12..SLOT_B + 16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    forged.extend_from_slice(payload);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&forged[SLOT_B..SLOT_B + 28]);
    crc.update(payload);
    let crc = crc.finalize().to_le_bytes();
    forged[SLOT_B + 28..SLOT_B + 32].copy_from_slice(&crc);
    forged
}

#[test]
fn damaged_payloads_with_good_checksums_are_refused_cleanly() {
    let (image, old, new) = two_generations();
    let payload = image[SLOT_B + 32..SLOT_B + used(&image, SLOT_B)].to_vec();
    assert_loaded(
        disk::read_bytes(&forge_slot_b(&image, &payload)),
        &new,
        2,
        Slot::B,
    );
    let mut rng = Rng(0xdead_beef_0bad_cafe);
    let mut decoded_other = 0;
    for round in 0..20_000 {
        let mut p = payload.clone();
        match round % 3 {
            0 => {
                let at = rng.below(p.len());
                p[at] = rng.next() as u8;
            }
            1 => p.truncate(rng.below(p.len())),
            _ => p.extend((0..1 + rng.below(8)).map(|_| rng.next() as u8)),
        }
        match disk::read_bytes(&forge_slot_b(&image, &p)) {
            Ok(loaded) if loaded.slot == Slot::B => decoded_other += 1,
            Ok(loaded) => {
                assert_eq!(loaded.config, old);
                assert_eq!(loaded.warnings.len(), 1);
            }
            Err(e) => panic!("slot A is intact, yet: {e}"),
        }
    }
    // Some byte changes still decode to a valid config (a different port name, say);
    // most must be refused.
    assert!(decoded_other < 20_000 / 3, "{decoded_other}");
}

#[test]
fn reads_the_checked_in_format_version_1_image() {
    let image = include_bytes!("data/v1.img");
    assert!(image.len() < 64 * 1024);
    assert!(disk::is_metadata_disk(image));
    // Both slots are format version 1.
    assert_eq!(image[SLOT_A + 8..SLOT_A + 10], [1, 0]);
    assert_eq!(image[SLOT_B + 8..SLOT_B + 10], [1, 0]);
    let expected = from_toml(include_str!("data/v1.toml")).expect("v1.toml is valid");
    let loaded = disk::read_bytes(image).expect("v1.img reads");
    assert_eq!(loaded.warnings, Vec::<String>::new());
    assert_loaded(Ok(loaded), &expected, 2, Slot::B);
}

#[test]
fn reads_the_checked_in_format_version_2_image() {
    let image = include_bytes!("data/v2.img");
    assert!(disk::is_metadata_disk(image));
    // Both slots are format version 2, whose `inside` was not yet optional.
    assert_eq!(image[SLOT_A + 8..SLOT_A + 10], [2, 0]);
    assert_eq!(image[SLOT_B + 8..SLOT_B + 10], [2, 0]);
    let expected = from_toml(include_str!("data/v2.toml")).expect("v2.toml is valid");
    assert!(expected.inside.is_some());
    let loaded = disk::read_bytes(image).expect("v2.img reads");
    assert_eq!(loaded.warnings, Vec::<String>::new());
    assert_loaded(Ok(loaded), &expected, 2, Slot::B);
}

#[test]
fn writes_to_a_file() {
    let dir = std::env::temp_dir().join(format!("natbox-disk-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("meta.img");
    let _ = std::fs::remove_file(&path);
    let (one, two) = (config("one"), config("two"));
    assert_eq!(disk::create_image(&path, &one, SMALL).expect("create"), 1);
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), SMALL);
    assert_eq!(disk::write_path(&path, &two).expect("write"), 2);
    assert_loaded(disk::read_path(&path), &two, 2, Slot::B);
    // No temporary file is left beside the image.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec!["meta.img"]);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn the_older_valid_slot_is_offered_as_the_previous_configuration() {
    let (image, old, new) = two_generations();
    let loaded = disk::read_bytes(&image).expect("reads");
    assert_eq!(loaded.config, new);
    assert_eq!(loaded.previous, Some((1, old)));
    // With the older slot damaged there is nothing to fall back to.
    let mut damaged = image.clone();
    damaged[SLOT_A + 40] ^= 0xff;
    assert_eq!(disk::read_bytes(&damaged).expect("reads B").previous, None);
    // With the newer slot damaged, the older one is the configuration, with no previous.
    let mut damaged = image;
    damaged[SLOT_B + 40] ^= 0xff;
    let loaded = disk::read_bytes(&damaged).expect("reads A");
    assert_eq!((loaded.generation, loaded.previous), (1, None));
}
