//! User-data: natbox's own TOML (the schema of `natbox.toml`), plain or gzip (magic
//! `1f 8b`, as EC2 and cloud-init accept it), gunzipped to at most
//! [`MAX_USER_DATA`] bytes.
//!
//! Anything else is refused with a message that names what it is and what natbox
//! expects: a `#cloud-config` document, a `#!` script, MIME multipart, another
//! cloud-init `#` format (`#include`, `#cloud-boothook`, ...), bytes that are not
//! UTF-8 text, or an empty file. TOML goes through
//! [`from_toml_named`](crate::from_toml_named), so its errors are the metadata disk's
//! and `natbox.toml`'s, line by line (`cidata:user-data:7: outside.ipv4: ...`).
//! [`decode`] is the fuzzing entry point: any bytes give a `Config` or a message.

use super::MAX_USER_DATA;
use crate::schema::Config;
use std::io::Read;

/// What natbox reads, appended to every refusal.
const EXPECTED: &str = "natbox reads its own TOML configuration (see natbox.toml), plain or gzip";

/// The configuration in `raw` (named `name` in messages), and whether it sets
/// `hostname` itself.
pub fn decode(raw: &[u8], name: &str) -> Result<(Config, bool), String> {
    let text = text(raw, name)?;
    let config = crate::from_toml_named(name, &text).map_err(|e| e.to_string())?;
    let hostname_given = text
        .parse::<toml::Table>()
        .is_ok_and(|t| t.contains_key("hostname"));
    Ok((config, hostname_given))
}

/// The text of `raw` (named `name` in messages), gunzipped, when it may be natbox's
/// TOML: refused when it is another format (see the module doc), not UTF-8, or empty.
pub fn text(raw: &[u8], name: &str) -> Result<String, String> {
    let gunzipped;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        gunzipped = gunzip(raw).map_err(|e| format!("{name}: {e}"))?;
        &gunzipped[..]
    } else {
        raw
    };
    if let Some(what) = foreign(bytes) {
        return Err(format!("{name} is {what}; {EXPECTED}"));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{name} is not UTF-8 text; {EXPECTED}"))
}

/// Gunzips `raw`, refusing more than `MAX_USER_DATA` bytes out.
fn gunzip(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(MAX_USER_DATA + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("gzip data cannot be decompressed: {e}; {EXPECTED}"))?;
    if out.len() as u64 > MAX_USER_DATA {
        return Err(format!(
            "gzip data decompresses to more than {} KiB, the most natbox reads",
            MAX_USER_DATA >> 10
        ));
    }
    Ok(out)
}

/// What a user-data that is not natbox's TOML is, by its first line.
fn foreign(bytes: &[u8]) -> Option<String> {
    let start = bytes
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(bytes)
        .trim_ascii_start();
    let first = start.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first)
        .trim_end()
        .to_ascii_lowercase();
    if start.is_empty() {
        return Some("empty".into());
    }
    if first.starts_with("#cloud-config") && !first.starts_with("#cloud-config-archive") {
        return Some("a #cloud-config document".into());
    }
    if first.starts_with("#!") {
        return Some("a #! shell script".into());
    }
    if first.starts_with("content-type:") || first.starts_with("mime-version:") {
        return Some("a MIME multipart document".into());
    }
    const CLOUD_INIT: [&str; 6] = [
        "#cloud-config-archive",
        "#include",
        "#cloud-boothook",
        "#part-handler",
        "#upstart-job",
        "## template:",
    ];
    CLOUD_INIT
        .iter()
        .find(|tag| first.starts_with(*tag))
        .map(|tag| format!("a cloud-init {tag} document"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const NATBOX_TOML: &str = include_str!("../../../natbox.toml");

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn plain_toml_user_data_is_the_configuration() {
        let (config, hostname_given) = decode(NATBOX_TOML.as_bytes(), "u").unwrap();
        assert_eq!(config, crate::from_toml(NATBOX_TOML).unwrap());
        assert_eq!(
            hostname_given,
            NATBOX_TOML.lines().any(|l| l.starts_with("hostname"))
        );
    }

    #[test]
    fn gzip_user_data_is_gunzipped() {
        let (config, _) = decode(&gzip(NATBOX_TOML.as_bytes()), "u").unwrap();
        assert_eq!(config, crate::from_toml(NATBOX_TOML).unwrap());
    }

    #[test]
    fn gzip_bomb_is_refused_at_the_bound() {
        let bomb = gzip(&vec![b'#'; (MAX_USER_DATA as usize) * 4]);
        assert!(bomb.len() < 64 << 10);
        let err = decode(&bomb, "u").unwrap_err();
        assert!(err.contains("more than 1024 KiB"), "{err}");
    }

    #[test]
    fn broken_gzip_is_refused_with_what_natbox_expects() {
        let mut g = gzip(NATBOX_TOML.as_bytes());
        g.truncate(g.len() / 2);
        let err = decode(&g, "u").unwrap_err();
        assert!(err.contains("gzip data cannot be decompressed"), "{err}");
        assert!(err.ends_with(EXPECTED), "{err}");
    }

    #[test]
    fn cloud_config_script_and_multipart_are_refused_by_name() {
        for (text, what) in [
            (
                "#cloud-config\npackages: [nginx]\n",
                "a #cloud-config document",
            ),
            ("#!/bin/sh\necho hi\n", "a #! shell script"),
            (
                "Content-Type: multipart/mixed; boundary=\"x\"\nMIME-Version: 1.0\n",
                "a MIME multipart document",
            ),
            ("#include\nhttp://x/\n", "a cloud-init #include document"),
            ("\n  \n", "empty"),
        ] {
            assert_eq!(
                decode(text.as_bytes(), "cidata:user-data").unwrap_err(),
                format!("cidata:user-data is {what}; {EXPECTED}")
            );
        }
        let gz = decode(&gzip(b"#cloud-config\n"), "u").unwrap_err();
        assert!(gz.contains("#cloud-config"), "{gz}");
    }

    #[test]
    fn invalid_toml_gets_the_metadata_disks_diagnostics() {
        let bad = NATBOX_TOML.replacen("[outside]", "[outside]\nmtu = 70000", 1);
        let err = decode(bad.as_bytes(), "cidata:user-data").unwrap_err();
        let expected = crate::from_toml_named("cidata:user-data", &bad)
            .unwrap_err()
            .to_string();
        assert_eq!(err, expected);
        assert!(err.starts_with("cidata:user-data:"), "{err}");
    }

    #[test]
    fn non_utf8_is_refused() {
        let err = decode(b"\xff\xfe\x00x", "u").unwrap_err();
        assert_eq!(err, format!("u is not UTF-8 text; {EXPECTED}"));
    }
}
