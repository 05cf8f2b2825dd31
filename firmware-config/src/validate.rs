//! Rules that relate fields to each other. Each broken rule becomes one
//! `ValidationError` naming the field, the offending value and the fix.

use crate::schema::Config;

/// One broken rule: `field: problem (fix)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Dotted path of the field, e.g. `nat.port_min`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Checks every rule and returns all broken ones at once.
pub fn validate(config: &Config) -> Result<(), Vec<ValidationError>> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: String| {
        errors.push(ValidationError {
            field: field.into(),
            message,
        })
    };
    if config.outside.ipv4.is_none() && config.nat.pool.is_empty() {
        fail(
            "outside.ipv4",
            "missing: the NAT pool defaults to this address; set outside.ipv4 or nat.pool".into(),
        );
    }
    if config.inside.ipv4.is_none() && config.nat.inside_prefixes.is_empty() {
        fail(
            "inside.ipv4",
            "missing: set the box's inside address, e.g. \"10.10.0.1/24\"".into(),
        );
    }
    if config.nat.port_min == 0 || config.nat.port_min > config.nat.port_max {
        fail(
            "nat.port_min",
            format!(
                "range {}-{} is empty or starts at 0; use 1 <= port_min <= port_max",
                config.nat.port_min, config.nat.port_max
            ),
        );
    }
    if config.nat.pool.len() > 64 {
        fail(
            "nat.pool",
            format!("{} addresses; at most 64 are supported", config.nat.pool.len()),
        );
    }
    if config.nat.max_sessions == 0 || config.nat.max_sessions > (1 << 24) {
        fail(
            "nat.max_sessions",
            format!("{} is out of range; use 1-16777216", config.nat.max_sessions),
        );
    }
    for (field, mtu) in [("inside.mtu", config.inside.mtu), ("outside.mtu", config.outside.mtu)] {
        if !(1280..=9000).contains(&mtu) {
            fail(field, format!("{mtu} is out of range; use 1280-9000"));
        }
    }
    if config.timeouts.tcp_established < 7440 {
        fail(
            "timeouts.tcp_established",
            format!(
                "{} s is below the 7440 s RFC 5382 REQ-5 requires; use 7440 or more",
                config.timeouts.tcp_established
            ),
        );
    }
    if config.timeouts.udp < 120 {
        fail(
            "timeouts.udp",
            format!(
                "{} s is below the 120 s RFC 4787 REQ-5 requires; use 120 or more",
                config.timeouts.udp
            ),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
