//! Errors in a TOML configuration, each pinned to a file, a line and a field, with the
//! fix spelled out: `natbox.toml:7: outside.ipv4: "198.51.100.10/33": prefix length
//! must be 0-32`.
//!
//! Three kinds of error reach here: text that is not TOML (the parser's span gives the
//! line), TOML that does not fit the schema (the deserializer's span gives the line and,
//! through the document, the field), and rules `validate` finds broken (the field path
//! gives the line). For values the deserializer refuses, the message is rewritten into
//! what is wrong with that particular value, by the field's type.

use crate::locate::{line_of, Locator};
use crate::validate::ValidationError;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One problem in a configuration text: `source:line: field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as the operator gave it (or `config` for text without one).
    pub source: String,
    /// 1-based line, when the problem has a place in the text.
    pub line: Option<usize>,
    /// Dotted field path (`nat.pool[1]`), when the problem belongs to a field.
    pub field: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Joins a multi-line parser message into one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The text is not TOML at all.
pub(crate) fn syntax(source: &str, text: &str, err: &toml_edit::TomlError) -> Diagnostic {
    let mut message = one_line(err.message());
    if message.starts_with("invalid string") {
        message.push_str(" (text values need quotes: key = \"value\")");
    }
    let line = err.span().map(|s| line_of(text, s.start));
    Diagnostic {
        source: source.into(),
        line,
        field: line.and_then(|l| key_on_line(text, l)),
        message,
    }
}

/// The dotted path of a `key = value` on line `line` (1-based), under the last table
/// header above it: the field a syntax error most likely belongs to.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let mut table = None;
    for l in text.lines().take(line - 1) {
        let l = l.trim();
        if l.starts_with('[') {
            let name = l.trim_start_matches('[');
            let name = name.split(']').next().unwrap_or_default().trim();
            table = Some(name.to_string());
        }
    }
    let (key, _) = text.lines().nth(line - 1)?.split_once('=')?;
    let key = key.trim();
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
    if key.is_empty() || !key.chars().all(bare) {
        return None;
    }
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

/// The text is TOML but does not fit the schema.
pub(crate) fn schema(
    source: &str,
    text: &str,
    locator: &Locator<'_>,
    err: &toml::de::Error,
) -> Diagnostic {
    let offset = err.span().map(|s| s.start);
    let path = offset.and_then(|o| locator.path_at(o));
    let mut line = offset.map(|o| line_of(text, o));
    let message = one_line(err.message());
    let (field, message) = if let Some(name) = between(&message, "missing field `", "`") {
        if path.is_none() {
            // A missing top-level table: the span is the whole file, no line helps.
            line = None;
        }
        let field = join(path.as_deref(), name);
        let fix = match name {
            "outside" => format!("missing; add an [{name}] table with port and ipv4"),
            _ => format!("missing; add `{name} = ...`"),
        };
        (Some(field), fix)
    } else if let Some(name) = between(&message, "unknown field `", "`") {
        let allowed = quoted_list(&message);
        let mut fix = "unknown field; remove it".to_string();
        if let Some(best) = closest(name, &allowed) {
            fix = format!("unknown field; did you mean `{best}`?");
        }
        if !allowed.is_empty() {
            fix.push_str(&format!(" (allowed here: {})", allowed.join(", ")));
        }
        (path, fix)
    } else if let Some(name) = between(&message, "unknown variant `", "`") {
        let allowed = quoted_list(&message);
        let mut fix = format!(
            "\"{name}\": unknown value; use one of {}",
            allowed
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(best) = closest(name, &allowed) {
            fix.push_str(&format!(" (did you mean \"{best}\"?)"));
        }
        (path, fix)
    } else {
        let raw = path.as_deref().and_then(|p| locator.raw_value(p));
        let fix = explain_value(path.as_deref(), raw, &message);
        (path, fix)
    };
    Diagnostic {
        source: source.into(),
        line,
        field,
        message,
    }
}

/// A rule `validate` found broken.
pub(crate) fn rule(source: &str, locator: &Locator<'_>, err: &ValidationError) -> Diagnostic {
    Diagnostic {
        source: source.into(),
        line: locator.line(&err.field),
        field: Some(err.field.clone()),
        message: err.message.clone(),
    }
}

fn join(parent: Option<&str>, name: &str) -> String {
    match parent {
        Some(p) => format!("{p}.{name}"),
        None => name.to_string(),
    }
}

/// The text between the first `start` and the next `end`.
fn between<'m>(message: &'m str, start: &str, end: &str) -> Option<&'m str> {
    let rest = &message[message.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// The back-quoted names after "expected" in a serde message.
fn quoted_list(message: &str) -> Vec<&str> {
    let Some(at) = message.find("expected") else {
        return Vec::new();
    };
    message[at..].split('`').skip(1).step_by(2).collect()
}

/// The allowed name closest to a misspelled one, if it is close enough to be a typo.
fn closest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(name, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diag + cost);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// What kind of value a field holds, by its path with list indices removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A port's `ipv4`: an address/length or "dhcp".
    Ipv4Setting,
    /// A port's `ipv6`: an address/length, "slaac" or "dhcp".
    Ipv6Setting,
    Ipv4Net,
    Ipv6Net,
    IpNet,
    Ipv4Addr,
    Ipv6Addr,
    IpAddr,
    SocketAddr,
}

fn kind_of(path: &str) -> Option<Kind> {
    let mut bare = String::with_capacity(path.len());
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => bare.push(c),
            _ => {}
        }
    }
    Some(match bare.as_str() {
        "inside.ipv4" | "outside.ipv4" => Kind::Ipv4Setting,
        "nat.inside_prefixes" => Kind::Ipv4Net,
        "inside.ipv6" | "outside.ipv6" => Kind::Ipv6Setting,
        "ipv6.inside_prefixes" => Kind::Ipv6Net,
        "inside.gateway4" | "outside.gateway4" | "nat.pool" => Kind::Ipv4Addr,
        "inside.gateway6" | "outside.gateway6" => Kind::Ipv6Addr,
        "inside.routes.prefix" | "outside.routes.prefix" => Kind::IpNet,
        "inside.routes.via" | "outside.routes.via" => Kind::IpAddr,
        "log.syslog" | "metrics.listen" => Kind::SocketAddr,
        _ => return None,
    })
}

/// Rewrites the deserializer's message about a refused value into the fix.
fn explain_value(path: Option<&str>, raw: Option<&str>, message: &str) -> String {
    let kind = path.and_then(kind_of);
    let unquoted = raw.and_then(|r| r.strip_prefix('"')?.strip_suffix('"'));
    let why = match (kind, unquoted) {
        _ if message.ends_with("expected a sequence") => explain_other(message),
        (Some(kind), Some(value)) => explain_address(kind, value),
        (Some(kind), None) => format!("expected a quoted string, {}", example(kind)),
        (None, _) => explain_other(message),
    };
    match raw {
        Some(raw) => format!("{raw}: {why}"),
        None => why,
    }
}

fn example(kind: Kind) -> &'static str {
    match kind {
        Kind::Ipv4Setting => {
            "address/length, e.g. \"10.10.0.1/24\", or \"dhcp\" to learn it from a DHCP server"
        }
        Kind::Ipv6Setting => {
            "address/length, e.g. \"2001:db8:10::1/64\", or \"slaac\" or \"dhcp\" to learn it \
             on the outside port's link"
        }
        Kind::Ipv4Net => "address/length, e.g. \"10.10.0.1/24\"",
        Kind::Ipv6Net => "address/length, e.g. \"2001:db8:10::1/64\"",
        Kind::IpNet => "prefix/length, e.g. \"10.20.0.0/16\" or \"2001:db8:20::/48\"",
        Kind::Ipv4Addr => "an IPv4 address, e.g. \"198.51.100.1\"",
        Kind::Ipv6Addr => "an IPv6 address, e.g. \"2001:db8:ff::1\" or \"fe80::1\"",
        Kind::IpAddr => "an address, e.g. \"10.10.0.254\" or \"2001:db8:10::fe\"",
        Kind::SocketAddr => "address:port, e.g. \"192.0.2.5:514\" or \"[2001:db8::5]:514\"",
    }
}

fn explain_address(kind: Kind, value: &str) -> String {
    let v6 = value.contains(':');
    let kind = match kind {
        Kind::IpNet if v6 => Kind::Ipv6Net,
        Kind::IpNet => Kind::Ipv4Net,
        Kind::IpAddr if v6 => Kind::Ipv6Addr,
        Kind::IpAddr => Kind::Ipv4Addr,
        k => k,
    };
    let bad_addr = |addr: &str, six: bool| {
        if six {
            addr.parse::<Ipv6Addr>().is_err()
        } else {
            addr.parse::<Ipv4Addr>().is_err()
        }
    };
    match kind {
        // A word, not an address (a misspelt "dhcp"): both forms.
        Kind::Ipv4Setting if !value.contains(['.', '/']) => {
            format!("neither an address nor \"dhcp\"; write {}", example(kind))
        }
        Kind::Ipv4Setting => explain_address(Kind::Ipv4Net, value),
        // A word, not an address (a misspelt "slaac" or "dhcp"): every form.
        Kind::Ipv6Setting if !value.contains([':', '/']) => {
            format!(
                "neither an address nor \"slaac\" nor \"dhcp\"; write {}",
                example(kind)
            )
        }
        Kind::Ipv6Setting => explain_address(Kind::Ipv6Net, value),
        Kind::Ipv4Net | Kind::Ipv6Net => {
            let (six, max) = if kind == Kind::Ipv6Net {
                (true, 128)
            } else {
                (false, 32)
            };
            let Some((addr, len)) = value.split_once('/') else {
                return format!("missing the prefix length; write {}", example(kind));
            };
            if bad_addr(addr, six) {
                return format!("\"{addr}\" is not {}", address_words(six));
            }
            match len.parse::<u8>() {
                Ok(n) if n <= max => format!("not a valid prefix; write {}", example(kind)),
                _ => format!("prefix length must be 0-{max}"),
            }
        }
        Kind::Ipv4Addr | Kind::Ipv6Addr => {
            let six = kind == Kind::Ipv6Addr;
            if value.contains('/') {
                let sample = if six {
                    "\"2001:db8:ff::1\""
                } else {
                    "\"198.51.100.1\""
                };
                format!("write a plain address without /length, e.g. {sample}")
            } else if !six && v6 {
                format!(
                    "an IPv6 address where IPv4 is expected; use {}",
                    example(kind)
                )
            } else if six && !v6 {
                format!(
                    "an IPv4 address where IPv6 is expected; use {}",
                    example(kind)
                )
            } else {
                format!("not {}", address_words(six))
            }
        }
        _ => format!("expected {}", example(kind)),
    }
}

fn address_words(six: bool) -> &'static str {
    if six {
        "an IPv6 address (groups of hex digits separated by colons)"
    } else {
        "an IPv4 address (four numbers 0-255 separated by dots)"
    }
}

/// Integers, booleans and lists: turn serde's wording into the operator's.
fn explain_other(message: &str) -> String {
    let range = if message.ends_with("expected u16") {
        Some("0-65535")
    } else if message.ends_with("expected u32") {
        Some("0-4294967295")
    } else {
        None
    };
    if let Some(range) = range {
        return if message.starts_with("invalid value: integer") {
            format!("out of range; use a whole number {range}")
        } else {
            format!("expected a whole number {range}, without quotes")
        };
    }
    if message.ends_with("expected a sequence") {
        return "expected a list, e.g. [\"192.0.2.1\", \"192.0.2.2\"]".into();
    }
    if message.ends_with("expected a boolean") {
        return "expected true or false, without quotes".into();
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_guess_their_field() {
        let text = "a = 1\n[nat]\nmss_clamp = = 3\n[[outside.routes]]\nvia = x\n";
        assert_eq!(key_on_line(text, 1).as_deref(), Some("a"));
        assert_eq!(key_on_line(text, 3).as_deref(), Some("nat.mss_clamp"));
        assert_eq!(key_on_line(text, 5).as_deref(), Some("outside.routes.via"));
        assert_eq!(key_on_line(text, 2), None);
    }

    #[test]
    fn closest_names() {
        assert_eq!(
            closest("msss_clamp", &["mss_clamp", "pool"]),
            Some("mss_clamp")
        );
        assert_eq!(closest("zzz", &["mss_clamp", "pool"]), None);
    }

    #[test]
    fn kinds_ignore_indices() {
        assert_eq!(kind_of("nat.pool[3]"), Some(Kind::Ipv4Addr));
        assert_eq!(kind_of("inside.routes[0].via"), Some(Kind::IpAddr));
        assert_eq!(kind_of("nat.port_min"), None);
    }

    #[test]
    fn addresses_explained() {
        assert_eq!(
            explain_address(Kind::Ipv4Net, "198.51.100.10/33"),
            "prefix length must be 0-32"
        );
        assert_eq!(
            explain_address(Kind::Ipv4Net, "198.51.100.10"),
            "missing the prefix length; write address/length, e.g. \"10.10.0.1/24\""
        );
        assert_eq!(
            explain_address(Kind::IpNet, "2001:db8::/129"),
            "prefix length must be 0-128"
        );
        assert_eq!(
            explain_address(Kind::Ipv4Addr, "198.51.100.300"),
            "not an IPv4 address (four numbers 0-255 separated by dots)"
        );
        assert!(explain_address(Kind::Ipv6Addr, "10.0.0.1").starts_with("an IPv4 address where"));
    }
}
