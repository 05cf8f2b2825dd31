//! Configuration mode: a candidate configuration edited with `set PATH VALUE` and
//! `delete PATH` (dotted TOML paths, e.g. `set timeouts.udp 600`, `set nat.filtering
//! address-dependent`, `set nat.pool ["198.51.100.10", "198.51.100.11"]`), shown with
//! `diff`, then `commit`ted (validated, applied live, persisted) or `abort`ed.
//!
//! Edits go through the TOML form of the configuration, so a path names exactly what
//! the configuration file would, and every value is checked by the same schema and
//! validation rules as a file: a bad value is refused with the rule's message and the
//! candidate stays as it was.

use firmware_config::Config;

/// Sets `path` to `raw` (a TOML value; a bare word is taken as a string).
pub fn set(config: &Config, path: &str, raw: &str) -> Result<Config, String> {
    let value = parse_value(raw);
    edit(config, path, |table, key| {
        table.insert(key.to_string(), value);
        Ok(())
    })
}

/// Removes `path`, so its default applies.
pub fn delete(config: &Config, path: &str) -> Result<Config, String> {
    edit(config, path, |table, key| {
        table
            .remove(key)
            .map(drop)
            .ok_or_else(|| format!("`{path}` is not set"))
    })
}

fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim_matches('"').to_string()))
}

fn edit(
    config: &Config,
    path: &str,
    change: impl FnOnce(&mut toml::Table, &str) -> Result<(), String>,
) -> Result<Config, String> {
    let mut root = toml::Table::try_from(config).map_err(|e| e.to_string())?;
    let keys: Vec<&str> = path.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(format!(
            "`{path}`: expected a dotted path such as nat.filtering"
        ));
    }
    let (last, tables) = keys.split_last().expect("split yields at least one key");
    let mut table = &mut root;
    for key in tables {
        table = table
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{key}` in `{path}` is a value, not a section"))?;
    }
    change(table, last)?;
    let text = toml::to_string(&root).map_err(|e| e.to_string())?;
    firmware_config::from_toml_named("candidate", &text).map_err(|e| e.to_string())
}

/// A line diff of the TOML forms: `-` lines only in `old`, `+` lines only in `new`
/// (longest common subsequence, so moved context stays quiet).
pub fn diff(old: &Config, new: &Config) -> String {
    let (a, b) = (firmware_config::to_toml(old), firmware_config::to_toml(new));
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut lcs = vec![vec![0u16; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            if a[i].starts_with('[') {
                out.push(format!("  {}", a[i]));
            }
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+ {}", b[j]));
            j += 1;
        } else {
            out.push(format!("- {}", a[i]));
            i += 1;
        }
    }
    let changed: Vec<&String> = out.iter().filter(|l| !l.starts_with("  ")).collect();
    if changed.is_empty() {
        return "no changes".into();
    }
    // Keep section headers only where a change follows them.
    let mut shown = Vec::new();
    for (k, line) in out.iter().enumerate() {
        let header = line.starts_with("  ");
        let has_change = out[k + 1..]
            .iter()
            .take_while(|l| !l.starts_with("  "))
            .next()
            .is_some();
        if !header || has_change {
            shown.push(line.clone());
        }
    }
    shown.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Config {
        firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap()
    }

    #[test]
    fn set_values_of_each_kind() {
        let c = example();
        let c = set(&c, "timeouts.udp", "600").unwrap();
        assert_eq!(c.timeouts.udp, 600);
        let c = set(&c, "nat.filtering", "address-dependent").unwrap();
        assert_eq!(
            c.nat.filtering,
            firmware_config::Filtering::AddressDependent
        );
        let c = set(&c, "nat.pool", r#"["198.51.100.10", "198.51.100.11"]"#).unwrap();
        assert_eq!(c.nat.pool.len(), 2);
        let c = set(&c, "hostname", "\"edge-1\"").unwrap();
        assert_eq!(c.hostname, "edge-1");
    }

    #[test]
    fn bad_values_are_refused_with_the_rule() {
        let c = example();
        let e = set(&c, "timeouts.udp", "10").unwrap_err();
        assert!(e.contains("timeouts.udp") && e.contains("120"), "{e}");
        let e = set(&c, "nat.filtering", "sometimes").unwrap_err();
        assert!(e.contains("filtering"), "{e}");
        let e = set(&c, "nat.no_such_thing", "1").unwrap_err();
        assert!(e.contains("no_such_thing"), "{e}");
        let e = set(&c, "hostname.x", "1").unwrap_err();
        assert!(e.contains("not a section"), "{e}");
        assert!(set(&c, "nat..x", "1").is_err());
    }

    #[test]
    fn delete_restores_default_and_diff_shows_changes() {
        let c = example();
        let changed = set(&c, "timeouts.udp", "600").unwrap();
        let d = diff(&c, &changed);
        assert!(
            d.contains("- udp = 300") && d.contains("+ udp = 600") && d.contains("[timeouts]"),
            "{d}"
        );
        assert!(!d.contains("[inside]"), "{d}");
        let back = delete(&changed, "timeouts.udp").unwrap();
        assert_eq!(back.timeouts.udp, 300);
        assert_eq!(diff(&c, &back), "no changes");
        assert!(delete(&c, "nat.nothing").is_err());
    }
}
