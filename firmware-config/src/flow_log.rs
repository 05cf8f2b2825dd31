//! Flow logs (`[flow_log]`): one record per session (IPv4 NAT44 session or IPv6
//! filter state) at its end and every `interval` seconds while it lives, and one per
//! new session the egress policy refused, exported as IPFIX (RFC 7011) to a collector
//! and/or as text on the `[log] syslog` collector in the AWS VPC flow-log v2 field
//! order.
//!
//! ```toml fragment
//! [flow_log]
//! ipfix = "192.0.2.9:4739"      # IPFIX collector (UDP); absent: no IPFIX export
//! syslog = true                 # also as text to [log] syslog (default false)
//! interval = 60                 # interim record every 60 s of a live flow (AWS: 60 or 600)
//! template_interval = 60        # IPFIX templates re-sent every 60 s (RFC 7011 §8.4)
//! observation_domain = 1        # IPFIX Observation Domain ID
//! ```
//!
//! Flow logging is on when `ipfix` is set or `syslog` is true; off, the engine keeps
//! no per-session counters at all. Validated by [`check`].

use crate::validate::ValidationError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Allowed `interval` and `template_interval`, seconds.
pub const INTERVALS: std::ops::RangeInclusive<u32> = 10..=3600;

/// The `[flow_log]` section (format version 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowLog {
    /// IPFIX collector (`host:port`, UDP).
    pub ipfix: Option<SocketAddr>,
    /// Records as text to the `[log] syslog` collector.
    pub syslog: bool,
    /// Seconds between interim records of a live flow.
    pub interval: u32,
    /// Seconds between re-sent IPFIX templates.
    pub template_interval: u32,
    /// IPFIX Observation Domain ID of the box.
    pub observation_domain: u32,
}

impl Default for FlowLog {
    fn default() -> Self {
        FlowLog {
            ipfix: None,
            syslog: false,
            interval: 60,
            template_interval: 60,
            observation_domain: 1,
        }
    }
}

impl FlowLog {
    /// Whether flow records are made at all.
    pub fn enabled(&self) -> bool {
        self.ipfix.is_some() || self.syslog
    }
}

/// The problems of `flow`, given whether `[log] syslog` is set.
pub fn check(flow: &FlowLog, log_syslog: bool) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: String| {
        errors.push(ValidationError {
            field: format!("flow_log.{field}"),
            message,
        })
    };
    if let Some(addr) = flow.ipfix {
        if addr.port() == 0 || addr.ip().is_unspecified() || addr.ip().is_multicast() {
            fail(
                "ipfix",
                format!(
                    "{addr}: the collector needs a unicast address and a port, \
                     e.g. \"192.0.2.9:4739\""
                ),
            );
        }
    }
    if flow.syslog && !log_syslog {
        fail(
            "syslog",
            "true needs a syslog collector: set [log] syslog = \"host:port\", or \
             syslog = false"
                .into(),
        );
    }
    for (field, value) in [
        ("interval", flow.interval),
        ("template_interval", flow.template_interval),
    ] {
        if !INTERVALS.contains(&value) {
            fail(
                field,
                format!(
                    "{value}: use {} to {} seconds",
                    INTERVALS.start(),
                    INTERVALS.end()
                ),
            );
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(flow: &FlowLog, log_syslog: bool) -> Vec<String> {
        check(flow, log_syslog)
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn default_is_off_and_valid() {
        assert!(!FlowLog::default().enabled());
        assert!(check(&FlowLog::default(), false).is_empty());
    }

    #[test]
    fn bad_fields_are_named() {
        let flow = FlowLog {
            ipfix: Some("0.0.0.0:4739".parse().unwrap()),
            syslog: true,
            interval: 5,
            template_interval: 4000,
            observation_domain: 0,
        };
        let got = fields(&flow, false);
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[0].starts_with("flow_log.ipfix: 0.0.0.0:4739"));
        assert!(got[1].starts_with("flow_log.syslog: true needs"));
        assert_eq!(got[2], "flow_log.interval: 5: use 10 to 3600 seconds");
        assert!(got[3].starts_with("flow_log.template_interval: 4000"));
    }
}
