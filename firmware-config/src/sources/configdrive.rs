//! OpenStack config drive (`config-2`): `openstack/latest/user_data` and
//! `openstack/latest/meta_data.json`, whose `uuid` is the instance id and `hostname`
//! the host name. A `meta_data.json` that is missing or not a JSON object is a
//! warning: the metadata never refuses a volume.

use super::volume::Volume;
use super::{Files, Meta, MAX_META_DATA, MAX_USER_DATA};
use std::io::{Read, Seek};

const LATEST: [&str; 2] = ["openstack", "latest"];

pub(super) fn files<D: Read + Seek>(volume: &mut Volume<D>) -> Result<Files, String> {
    let path = |file| [LATEST[0], LATEST[1], file];
    let user_data = volume
        .read_file(&path("user_data"), MAX_USER_DATA)
        .map_err(|e| format!("config-2 volume: {e}"))?
        .ok_or(
            "config-2 volume has no openstack/latest/user_data; give the instance natbox's \
             TOML as its user data",
        )?;
    let mut warnings = Vec::new();
    let meta = match volume.read_file(&path("meta_data.json"), MAX_META_DATA) {
        Ok(Some(text)) => {
            let text = String::from_utf8_lossy(&text);
            if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).is_err() {
                warnings.push(
                    "config-2 volume: openstack/latest/meta_data.json is not a JSON object"
                        .to_string(),
                );
            }
            parse_meta_data_json(&text)
        }
        Ok(None) => {
            warnings.push("config-2 volume has no openstack/latest/meta_data.json".to_string());
            Meta::default()
        }
        Err(e) => {
            warnings.push(format!("config-2 volume: {e}; its metadata is not used"));
            Meta::default()
        }
    };
    Ok(Files {
        user_data,
        user_data_name: "config-2:openstack/latest/user_data".into(),
        meta,
        warnings,
    })
}

/// The instance id (`uuid`) and host name (`hostname`) of a `meta_data.json` text;
/// empty when it is not a JSON object.
pub fn parse_meta_data_json(text: &str) -> Meta {
    meta_from_json(text, "uuid", &["hostname"])
}

/// The string at `id` and the first string among `hostnames` of a flat JSON object.
pub(super) fn meta_from_json(text: &str, id: &str, hostnames: &[&str]) -> Meta {
    let Ok(object) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
    else {
        return Meta::default();
    };
    let string = |key: &str| {
        object
            .get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Meta {
        instance_id: string(id),
        hostname: hostnames.iter().find_map(|k| string(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_data_json_uuid_and_hostname_are_read() {
        let meta = parse_meta_data_json(
            r#"{"uuid": "83679162-1378-4288-a2d4-70e13ec132aa", "hostname": "nat-1.novalocal", "meta": {"x": 1}, "public_keys": {}}"#,
        );
        assert_eq!(
            meta.instance_id.as_deref(),
            Some("83679162-1378-4288-a2d4-70e13ec132aa")
        );
        assert_eq!(meta.hostname.as_deref(), Some("nat-1.novalocal"));
    }

    #[test]
    fn meta_data_json_that_is_not_an_object_gives_nothing() {
        assert_eq!(parse_meta_data_json("[1, 2]"), Meta::default());
        assert_eq!(parse_meta_data_json("{\"uuid\": 7}"), Meta::default());
        assert_eq!(parse_meta_data_json("{"), Meta::default());
    }
}
