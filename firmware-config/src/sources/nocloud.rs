//! cloud-init NoCloud (`cidata`): `user-data` and `meta-data` at the volume's root.
//!
//! `meta-data` is YAML; natbox reads only its flat top-level `key: value` lines (the
//! form cloud-localds and every NoCloud example write) and of those only `instance-id`,
//! `local-hostname` and `hostname` (the first of those two wins). Anything else in it
//! (nested keys, lists, comments, keys natbox does not use) is skipped, never refused.
//! A flat JSON object, which is YAML too, is read the same way.

use super::volume::Volume;
use super::{Files, Meta, MAX_META_DATA, MAX_USER_DATA};
use std::io::{Read, Seek};

pub(super) fn files<D: Read + Seek>(volume: &mut Volume<D>) -> Result<Files, String> {
    let user_data = volume
        .read_file(&["user-data"], MAX_USER_DATA)
        .map_err(|e| format!("cidata volume: {e}"))?
        .ok_or("cidata volume has no user-data file at its root; put natbox's TOML there")?;
    let mut warnings = Vec::new();
    let meta = match volume.read_file(&["meta-data"], MAX_META_DATA) {
        Ok(Some(text)) => parse_meta_data(&String::from_utf8_lossy(&text)),
        Ok(None) => {
            warnings.push("cidata volume has no meta-data file".to_string());
            Meta::default()
        }
        Err(e) => {
            warnings.push(format!("cidata volume: {e}; its meta-data is not used"));
            Meta::default()
        }
    };
    Ok(Files {
        user_data,
        user_data_name: "cidata:user-data".into(),
        meta,
        warnings,
    })
}

/// The instance id and host name of a NoCloud `meta-data` text.
pub fn parse_meta_data(text: &str) -> Meta {
    if text.trim_start().starts_with('{') {
        return super::configdrive::meta_from_json(
            text,
            "instance-id",
            &["local-hostname", "hostname"],
        );
    }
    let mut meta = Meta::default();
    let mut hostname = None;
    for line in text.lines() {
        // Indented lines belong to a nested value.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let Some(value) = scalar(value) else {
            continue;
        };
        match key.trim() {
            "instance-id" => meta.instance_id = Some(value),
            "local-hostname" => hostname = Some(value),
            "hostname" if hostname.is_none() => hostname = Some(value),
            _ => {}
        }
    }
    meta.hostname = hostname;
    meta
}

/// A plain or quoted YAML scalar, without a trailing comment; `None` when empty.
fn scalar(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let value = match raw.chars().next() {
        Some(q @ ('"' | '\'')) => raw[1..].split(q).next().unwrap_or_default(),
        _ => raw.split(" #").next().unwrap_or_default().trim(),
    };
    (!value.is_empty()).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_data_flat_keys_are_read_and_everything_else_skipped() {
        let meta = parse_meta_data(
            "# comment\ninstance-id: iid-abc  # the id\nnetwork-interfaces: |\n  auto eth0\n  hostname: nested\npublic-keys:\n  - ssh-rsa AAA\nlocal-hostname: 'gw-1'\n",
        );
        assert_eq!(meta.instance_id.as_deref(), Some("iid-abc"));
        assert_eq!(meta.hostname.as_deref(), Some("gw-1"));
    }

    #[test]
    fn meta_data_local_hostname_wins_over_hostname() {
        let meta = parse_meta_data("hostname: b\nlocal-hostname: a\n");
        assert_eq!(meta.hostname.as_deref(), Some("a"));
        let meta = parse_meta_data("hostname: \"b\"\n");
        assert_eq!(meta.hostname.as_deref(), Some("b"));
    }

    #[test]
    fn meta_data_as_flat_json_is_read() {
        let meta = parse_meta_data(r#"{"instance-id": "i-1", "local-hostname": "nb"}"#);
        assert_eq!(meta.instance_id.as_deref(), Some("i-1"));
        assert_eq!(meta.hostname.as_deref(), Some("nb"));
    }

    #[test]
    fn meta_data_that_is_not_yaml_gives_nothing_and_no_error() {
        assert_eq!(parse_meta_data("\u{0}\u{1}::\n:\n'"), Meta::default());
    }
}
