//! A TOML configuration text laid over defaults (the cloud metadata sources: what the
//! metadata says fills what the user-data leaves out).
//!
//! Contract: [`from_toml_over`] deep-merges `defaults` into the text's table, the
//! text winning key by key (a table in both is merged entry by entry; any other value
//! the text gives replaces the default whole, lists included), then reads the merged
//! table exactly as [`from_toml_named`](crate::from_toml_named) reads a file: the same
//! schema, the same [`validate`](crate::validate), the same diagnostics. A diagnostic's
//! line is the line of its field in the operator's text, or of the nearest table
//! there that holds it; a problem in a field the text does not name at all (it came
//! from the defaults) has no line.

use crate::diagnostic::{self, Diagnostic};
use crate::locate::Locator;
use crate::{from_toml_named, Config, ConfigError};

/// The top-level table of `text`, or why it is not TOML.
pub(crate) fn table(source: &str, text: &str) -> Result<toml::Table, ConfigError> {
    let locator = Locator::new(text)
        .map_err(|err| ConfigError::Syntax(diagnostic::syntax(source, text, &err)))?;
    toml::from_str(text)
        .map_err(|e| ConfigError::Syntax(diagnostic::schema(source, text, &locator, &e)))
}

/// The configuration `text` (named `source` in messages) gives over `defaults`.
pub(crate) fn from_toml_over(
    source: &str,
    text: &str,
    defaults: toml::Table,
) -> Result<Config, ConfigError> {
    let mut merged = table(source, text)?;
    merge(&mut merged, defaults);
    let rendered = toml::to_string(&merged).map_err(|e| {
        ConfigError::Syntax(Diagnostic {
            source: source.into(),
            line: None,
            field: None,
            message: format!("the configuration cannot be rendered as TOML: {e}"),
        })
    })?;
    // `table` parsed the text, so this cannot fail; without a locator no line is given.
    let locator = Locator::new(text).ok();
    let relocate = |mut d: Diagnostic| {
        d.line = d
            .field
            .as_deref()
            .zip(locator.as_ref())
            .and_then(|(field, locator)| locator.line(field));
        d
    };
    from_toml_named(source, &rendered).map_err(|e| match e {
        ConfigError::Syntax(d) => ConfigError::Syntax(relocate(d)),
        ConfigError::Invalid(ds) => ConfigError::Invalid(ds.into_iter().map(relocate).collect()),
    })
}

/// Adds to `into` what it lacks of `defaults`, table by table.
fn merge(into: &mut toml::Table, defaults: toml::Table) {
    for (key, default) in defaults {
        match (into.get_mut(&key), default) {
            (Some(toml::Value::Table(given)), toml::Value::Table(default)) => merge(given, default),
            (Some(_), _) => {}
            (None, default) => {
                into.insert(key, default);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> toml::Table {
        toml::toml! {
            hostname = "from-defaults"
            [outside]
            port = "0e:00:00:00:00:01"
            ipv4 = "dhcp"
            [nat]
            inside_prefixes = ["10.0.0.0/16"]
            pool = ["10.0.0.5", "10.0.0.6"]
        }
    }

    #[test]
    fn the_text_wins_key_by_key_and_the_defaults_fill_the_rest() {
        let text = "[outside]\nmtu = 9000\n[nat]\npool = [\"10.0.0.7\"]\n";
        let config = from_toml_over("u", text, defaults()).unwrap();
        assert_eq!(config.hostname, "from-defaults");
        assert_eq!(config.outside.port, "0e:00:00:00:00:01");
        assert!(config.outside.ipv4_dhcp());
        assert_eq!(config.outside.mtu, 9000);
        assert_eq!(
            config.nat.pool,
            ["10.0.0.7".parse::<std::net::Ipv4Addr>().unwrap()]
        );
        assert_eq!(config.nat.inside_prefixes, ["10.0.0.0/16".parse().unwrap()]);
    }

    #[test]
    fn an_empty_text_is_the_defaults() {
        let config = from_toml_over("u", "", defaults()).unwrap();
        assert!(config.one_armed());
        assert_eq!(config.nat.pool.len(), 2);
    }

    #[test]
    fn errors_name_the_line_of_the_operators_text() {
        let text = "# a comment\n\n[outside]\nmtu = 70000\n";
        let err = from_toml_over("ec2:user-data", text, defaults()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ec2:user-data:4: outside.mtu: 70000: out of range; use a whole number 0-65535"
        );
        let text = "\n[outside]\nmtu = 1000\n";
        let err = from_toml_over("ec2:user-data", text, defaults()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ec2:user-data:3: outside.mtu: 1000 is out of range; use 1280-9000"
        );
    }

    #[test]
    fn a_broken_default_has_no_line_and_a_syntax_error_its_own() {
        let mut broken = defaults();
        broken.insert("hostname".into(), "-bad-".into());
        let err = from_toml_over("u", "\n\n[log]\nlevel = \"info\"\n", broken).unwrap_err();
        assert!(
            err.to_string().starts_with("u: hostname: \"-bad-\""),
            "{err}"
        );
        let err = from_toml_over("u", "\n[outside\n", defaults()).unwrap_err();
        assert!(err.to_string().starts_with("u:2:"), "{err}");
    }
}
