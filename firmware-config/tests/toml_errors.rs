//! Errors in TOML text name the file, the line, the field and the fix.

use firmware_config::{from_toml_named, ConfigError};

const EXAMPLE: &str = include_str!("data/base.toml");

/// The error lines for base.toml (named natbox.toml) with `from` replaced by `to`.
fn errors(from: &str, to: &str) -> Vec<String> {
    assert!(EXAMPLE.contains(from), "base.toml has no {from:?}");
    let text = EXAMPLE.replacen(from, to, 1);
    match from_toml_named("natbox.toml", &text) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics().iter().map(ToString::to_string).collect(),
    }
}

#[track_caller]
fn assert_error(from: &str, to: &str, expected: &str) {
    assert_eq!(errors(from, to), vec![expected.to_string()]);
}

/// The line base.toml has `needle` on.
fn line(needle: &str) -> usize {
    let at = EXAMPLE.find(needle).expect("needle");
    EXAMPLE[..at].matches('\n').count() + 1
}

#[test]
fn examples_are_valid() {
    assert_eq!(errors("", ""), Vec::<String>::new());
    let shipped = include_str!("../../natbox.toml");
    assert!(from_toml_named("natbox.toml", shipped).is_ok());
}

#[test]
fn prefix_length_out_of_range() {
    let l = line("ipv4 = \"198.51.100.10/24\"");
    assert_error(
        "198.51.100.10/24",
        "198.51.100.10/33",
        &format!("natbox.toml:{l}: outside.ipv4: \"198.51.100.10/33\": prefix length must be 0-32"),
    );
}

#[test]
fn prefix_length_missing() {
    let l = line("ipv4 = \"10.10.0.1/24\"");
    assert_error(
        "10.10.0.1/24",
        "10.10.0.1",
        &format!(
            "natbox.toml:{l}: inside.ipv4: \"10.10.0.1\": missing the prefix length; write \
             address/length, e.g. \"10.10.0.1/24\""
        ),
    );
}

#[test]
fn bad_address() {
    let l = line("gateway4");
    assert_error(
        "\"198.51.100.1\"",
        "\"198.51.100.300\"",
        &format!(
            "natbox.toml:{l}: outside.gateway4: \"198.51.100.300\": not an IPv4 address (four \
             numbers 0-255 separated by dots)"
        ),
    );
}

#[test]
fn rule_violation_has_the_line_of_its_field() {
    let l = line("gateway4");
    assert_error(
        "\"198.51.100.1\"",
        "\"203.0.113.1\"",
        &format!(
            "natbox.toml:{l}: outside.gateway4: 203.0.113.1 is not in outside.ipv4's prefix \
             198.51.100.0/24; use the router's address in 198.51.100.0/24 or correct \
             outside.ipv4"
        ),
    );
}

#[test]
fn rule_violations_point_at_their_field() {
    let l = line("[log]");
    assert_eq!(
        errors("[log]", "[timeouts]\nudp = 30\n\n[log]"),
        vec![format!(
            "natbox.toml:{}: timeouts.udp: 30 s is below the 120 s RFC 4787 REQ-5 requires; \
             use 120 or more",
            l + 1
        )]
    );
    // A rule relating two fields names the one to change, at its own line.
    let l = line("mss_clamp");
    assert_eq!(
        errors(
            "gateway6 = \"2001:db8:ff::1\"",
            "gateway6 = \"2001:db8:ff::1\"\nmtu = 1400"
        ),
        vec![format!(
            "natbox.toml:{}: nat.mss_clamp: 1460: use 0 (off) or 536-1360: every IPv4 host \
             accepts 536 (RFC 9293 section 3.7.1), and the smaller port MTU less 40 bytes of \
             IPv4 and TCP headers is 1360",
            l + 1
        )]
    );
}

#[test]
fn rule_on_an_absent_field_points_at_its_table() {
    let text = EXAMPLE
        .replace("ipv4 = \"198.51.100.10/24\"\n", "")
        .replace("gateway4 = \"198.51.100.1\"\n", "");
    let err = from_toml_named("natbox.toml", &text).expect_err("no outside address");
    assert_eq!(
        err.to_string(),
        format!(
            "natbox.toml:{}: outside.ipv4: missing: the NAT pool defaults to this address; \
             set outside.ipv4 or nat.pool",
            line("[outside]")
        )
    );
}

#[test]
fn all_broken_rules_are_listed() {
    let text = EXAMPLE
        .replace("level = \"info\"", "level = \"loud\"")
        .replace(
            "mss_clamp = 1460",
            "mss_clamp = 1460\nmax_sessions_per_host = 0",
        );
    let Err(ConfigError::Invalid(ds)) = from_toml_named("n.toml", &text) else {
        panic!("expected rule violations");
    };
    let fields: Vec<_> = ds.iter().filter_map(|d| d.field.clone()).collect();
    assert_eq!(fields, vec!["nat.max_sessions_per_host", "log.level"]);
}

#[test]
fn unknown_field_suggests_the_right_one() {
    let l = line("mss_clamp");
    assert_error(
        "mss_clamp = 1460",
        "msss_clamp = 1460",
        &format!(
            "natbox.toml:{l}: nat.msss_clamp: unknown field; did you mean `mss_clamp`? \
             (allowed here: pool, port_min, port_max, inside_prefixes, filtering, \
             max_sessions, max_sessions_per_host, max_ports_per_host, icmp_on_limit, \
             port_reuse_hold, udp_inbound_refresh, mss_clamp)"
        ),
    );
}

#[test]
fn unknown_enum_value() {
    let l = line("filtering");
    assert_error(
        "\"endpoint-independent\"",
        "\"endpoint-independant\"",
        &format!(
            "natbox.toml:{l}: nat.filtering: \"endpoint-independant\": unknown value; use one \
             of \"endpoint-independent\", \"address-dependent\", \
             \"address-and-port-dependent\" (did you mean \"endpoint-independent\"?)"
        ),
    );
}

#[test]
fn integer_out_of_range() {
    let l = line("mss_clamp");
    assert_error(
        "mss_clamp = 1460",
        "mss_clamp = 99999",
        &format!("natbox.toml:{l}: nat.mss_clamp: 99999: out of range; use a whole number 0-65535"),
    );
    assert_error(
        "mss_clamp = 1460",
        "mss_clamp = \"1460\"",
        &format!(
            "natbox.toml:{l}: nat.mss_clamp: \"1460\": expected a whole number 0-65535, \
             without quotes"
        ),
    );
}

#[test]
fn missing_field() {
    let l = line("[inside]");
    assert_error(
        "port = \"lan0\"\n",
        "",
        &format!("natbox.toml:{l}: inside.port: missing; add `port = ...`"),
    );
}

#[test]
fn missing_table() {
    let start = EXAMPLE.find("[outside]").expect("outside");
    let end = EXAMPLE.find("[nat]").expect("nat");
    assert_error(
        &EXAMPLE[start..end],
        "",
        "natbox.toml: outside: missing; add an [outside] table with port and ipv4",
    );
}

#[test]
fn without_inside_the_box_is_one_armed_and_needs_the_inside_prefixes() {
    let start = EXAMPLE.find("[inside]").expect("inside");
    let end = EXAMPLE.find("[outside]").expect("outside");
    let one_armed = EXAMPLE.replacen(&EXAMPLE[start..end], "", 1);
    let l = 1 + one_armed.lines().position(|l| l == "[nat]").expect("[nat]");
    assert_error(
        &EXAMPLE[start..end],
        "",
        &format!(
            "natbox.toml:{l}: nat.inside_prefixes: missing: without [inside] the box is \
             one-armed and translates only these sources; list them, e.g. the VPC's CIDR \
             [\"10.0.0.0/16\"] (or add [inside])"
        ),
    );
}

#[test]
fn list_expected() {
    let l = line("mss_clamp");
    assert_error(
        "mss_clamp = 1460",
        "mss_clamp = 1460\npool = \"198.51.100.10\"",
        &format!(
            "natbox.toml:{}: nat.pool: \"198.51.100.10\": expected a list, e.g. \
             [\"192.0.2.1\", \"192.0.2.2\"]",
            l + 1
        ),
    );
}

#[test]
fn list_element_named_by_index() {
    let l = line("mss_clamp");
    assert_error(
        "mss_clamp = 1460",
        "mss_clamp = 1460\npool = [\"198.51.100.10\", \"198.51.100.11/32\"]",
        &format!(
            "natbox.toml:{}: nat.pool[1]: \"198.51.100.11/32\": write a plain address \
             without /length, e.g. \"198.51.100.1\"",
            l + 1
        ),
    );
}

#[test]
fn toml_syntax_error() {
    assert_error(
        "hostname = \"natbox\"",
        "hostname = natbox",
        &format!(
            "natbox.toml:{}: hostname: invalid string; expected `\"`, `'` (text values need quotes: \
             key = \"value\")",
            line("hostname")
        ),
    );
    assert_error(
        "[nat]",
        "[nat",
        &format!(
            "natbox.toml:{}: invalid table header; expected `.`, `]`",
            line("[nat]")
        ),
    );
}

#[test]
fn unnamed_source() {
    let err = firmware_config::from_toml("hostname = 1").expect_err("bad");
    assert_eq!(
        err.to_string(),
        "config:1: hostname: 1: invalid type: integer `1`, expected a string"
    );
}
