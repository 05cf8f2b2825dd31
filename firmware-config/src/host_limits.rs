//! Per-inside-host rate limits (`[host_limits]`): how many new sessions a second and
//! how many packets a second one inside host may send, each a token bucket, so one
//! host's scan or flood cannot starve the others (issue #18 section 1).
//!
//! ```toml fragment
//! [host_limits]
//! new_sessions_per_second = 100   # new NAT44 sessions and IPv6 filter states
//! new_sessions_burst = 200        # the bucket's depth (default: one second's worth)
//! packets_per_second = 20000      # every packet an inside host sends through the box
//! packets_burst = 40000
//! ```
//!
//! A rate that is absent is no limit (the default: no limit at all). A burst needs its
//! rate. Both families count: IPv4 from an inside host before translation, IPv6 that
//! the egress-only filter passes out. The engine's buckets are
//! `natbox_core::engine::policy::limit`.
//!
//! Validation ([`check`]) refuses a zero rate (leave the key out for no limit), a
//! burst without its rate, a burst below a tenth of the rate (packets arrive in
//! batches stamped with one time, so a smaller bucket drops a well-behaved host's
//! batch; raise the burst) and values over [`MAX_RATE`].
//!
//! Kept in its own section rather than inside `[policy]`: the metadata disk is
//! positional (postcard), and a new section appended at the end of `Config` decodes
//! older disks by appending its default (`disk::decode`).

use crate::validate::ValidationError;
use serde::{Deserialize, Serialize};

/// Highest rate or burst accepted: ten million a second (the bucket arithmetic stays
/// exact in 64 bits far past this).
pub const MAX_RATE: u32 = 10_000_000;

/// The limits every inside host is held to; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostLimits {
    /// New sessions (IPv4) or filter states (IPv6) a host may open a second.
    pub new_sessions_per_second: Option<u32>,
    /// How many new sessions a host may open at once (default: `new_sessions_per_second`).
    pub new_sessions_burst: Option<u32>,
    /// Packets a host may send through the box a second.
    pub packets_per_second: Option<u32>,
    /// How many packets a host may send at once (default: `packets_per_second`).
    pub packets_burst: Option<u32>,
}

/// One token bucket: `rate` tokens a second, at most `burst` held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub rate: u32,
    pub burst: u32,
}

impl HostLimits {
    /// The new-session bucket, if limited.
    pub fn sessions(&self) -> Option<Bucket> {
        bucket(self.new_sessions_per_second, self.new_sessions_burst)
    }

    /// The packet bucket, if limited.
    pub fn packets(&self) -> Option<Bucket> {
        bucket(self.packets_per_second, self.packets_burst)
    }

    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.sessions().is_some() || self.packets().is_some()
    }
}

fn bucket(rate: Option<u32>, burst: Option<u32>) -> Option<Bucket> {
    rate.map(|rate| Bucket {
        rate,
        burst: burst.unwrap_or(rate),
    })
}

/// Every broken rule of `limits`, each naming its field and the fix.
pub fn check(limits: &HostLimits) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: String| {
        errors.push(ValidationError {
            field: format!("host_limits.{field}"),
            message,
        })
    };
    for (what, rate_key, rate, burst_key, burst) in [
        (
            "new sessions",
            "new_sessions_per_second",
            limits.new_sessions_per_second,
            "new_sessions_burst",
            limits.new_sessions_burst,
        ),
        (
            "packets",
            "packets_per_second",
            limits.packets_per_second,
            "packets_burst",
            limits.packets_burst,
        ),
    ] {
        match rate {
            Some(0) => fail(
                rate_key,
                format!("0 {what} a second would refuse everything; leave {rate_key} out for no limit, or give at least 1"),
            ),
            Some(r) if r > MAX_RATE => fail(
                rate_key,
                format!("{r}: at most {MAX_RATE}; leave {rate_key} out for no limit"),
            ),
            None if burst.is_some() => fail(
                burst_key,
                format!("a burst without a rate; set {rate_key} too, or remove {burst_key}"),
            ),
            _ => {}
        }
        let (Some(r), Some(b)) = (rate, burst) else {
            continue;
        };
        if b > MAX_RATE {
            fail(burst_key, format!("{b}: at most {MAX_RATE}"));
        } else if b == 0 || u64::from(b) * 10 < u64::from(r) {
            fail(
                burst_key,
                format!(
                    "{b} is below a tenth of {rate_key} ({r}): packets arrive in batches stamped \
                     with one time, so a bucket this shallow drops a host that keeps to its rate; \
                     give at least {}",
                    r.div_ceil(10).max(1)
                ),
            );
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(l: HostLimits) -> Vec<String> {
        check(&l).into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn absent_is_no_limit_and_burst_defaults_to_the_rate() {
        let none = HostLimits::default();
        assert!(!none.any());
        assert!(check(&none).is_empty());
        let l = HostLimits {
            packets_per_second: Some(500),
            ..HostLimits::default()
        };
        assert_eq!(
            l.packets(),
            Some(Bucket {
                rate: 500,
                burst: 500
            })
        );
        assert_eq!(l.sessions(), None);
        assert!(check(&l).is_empty());
    }

    #[test]
    fn refuses_zero_rate_lonely_burst_shallow_burst_and_huge_values() {
        let zero = HostLimits {
            new_sessions_per_second: Some(0),
            ..HostLimits::default()
        };
        assert_eq!(fields(zero), ["host_limits.new_sessions_per_second"]);
        let lonely = HostLimits {
            packets_burst: Some(10),
            ..HostLimits::default()
        };
        assert_eq!(fields(lonely), ["host_limits.packets_burst"]);
        let shallow = HostLimits {
            packets_per_second: Some(1000),
            packets_burst: Some(99),
            ..HostLimits::default()
        };
        let e = check(&shallow);
        assert_eq!(e[0].field, "host_limits.packets_burst");
        assert!(e[0].message.contains("at least 100"), "{}", e[0].message);
        let deep_enough = HostLimits {
            packets_per_second: Some(1000),
            packets_burst: Some(100),
            ..HostLimits::default()
        };
        assert!(check(&deep_enough).is_empty());
        let zero_burst = HostLimits {
            new_sessions_per_second: Some(1),
            new_sessions_burst: Some(0),
            ..HostLimits::default()
        };
        assert_eq!(fields(zero_burst), ["host_limits.new_sessions_burst"]);
        let huge = HostLimits {
            packets_per_second: Some(MAX_RATE + 1),
            new_sessions_per_second: Some(5),
            new_sessions_burst: Some(MAX_RATE + 1),
            ..HostLimits::default()
        };
        assert_eq!(
            fields(huge),
            [
                "host_limits.new_sessions_burst",
                "host_limits.packets_per_second"
            ]
        );
    }

    #[test]
    fn toml_round_trip_through_the_config() {
        let text = "[outside]\nport = \"wan0\"\nipv4 = \"198.51.100.10/24\"\n\
                    [inside]\nport = \"lan0\"\nipv4 = \"10.10.0.1/24\"\n\
                    [host_limits]\nnew_sessions_per_second = 50\npackets_per_second = 1000\n\
                    packets_burst = 2000\n";
        let c = crate::from_toml(text).expect("valid");
        assert_eq!(
            c.host_limits.sessions(),
            Some(Bucket {
                rate: 50,
                burst: 50
            })
        );
        assert_eq!(
            c.host_limits.packets(),
            Some(Bucket {
                rate: 1000,
                burst: 2000
            })
        );
        assert_eq!(
            crate::from_toml(&crate::to_toml(&c)).expect("reads back"),
            c
        );
        let bad = text.replace("packets_burst = 2000", "packets_burst = 0");
        let e = crate::from_toml(&bad).expect_err("refused");
        assert!(
            format!("{e:?}").contains("host_limits.packets_burst"),
            "{e:?}"
        );
    }
}
