//! Issue #18 section 3: flow records from the engine. A NAT44 session's packets and
//! bytes are counted each way; its record is made when it ends and every `interval`
//! seconds while it lives (deltas since the previous record); a session the policy
//! refuses gets a record at decision time; IPv6 filter states alike; off, nothing.

mod support;
use natbox_core::engine::control::{Answer, Request};
use natbox_core::engine::flowlog::{Action, EndReason, FlowRecord, NO_RULE};
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::Verdict;
use support::*;

/// The example configuration with flow logs on, interim records every `interval`
/// seconds, and `extra` (TOML) appended.
fn harness_every(interval: u32, extra: &str) -> Harness {
    let toml = format!(
        "{}\n[flow_log]\nipfix = \"198.51.100.1:4739\"\ninterval = {interval}\n{extra}",
        example_toml()
    );
    Harness::new(firmware_config::from_toml(&toml).expect("valid"))
}

fn harness(extra: &str) -> Harness {
    harness_every(10, extra)
}

/// Takes every queued record.
fn records(h: &mut Harness) -> Vec<FlowRecord> {
    match h.engine.answer(&Request::Flows { max: 1000 }, h.now) {
        Answer::Flows(b) => b.records,
        other => panic!("{other:?}"),
    }
}

#[test]
fn issue18_nat44_session_counts_each_way_and_reports_at_its_end() {
    let mut h = harness_every(3600, "");
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"query"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    let ext = endpoints4(out.ip()).0;
    for _ in 0..3 {
        let back = h.from_wan(udp4(sa(REMOTE, 53), ext, b"answer!"));
        assert_eq!(back.verdict, Verdict::Forward(INSIDE));
    }
    assert!(
        records(&mut h).is_empty(),
        "nothing before the end or the interval"
    );
    h.advance_secs(400);
    let r = records(&mut h);
    assert_eq!(r.len(), 1, "{r:?}");
    let r = r[0];
    assert_eq!(r.account.packets, [1, 3]);
    // IPv4 20 + UDP 8 + payload.
    assert_eq!(r.account.bytes, [28 + 5, 3 * (28 + 7)]);
    assert_eq!((r.in_port, r.rem_port, r.proto), (40000, 53, 17));
    assert_eq!(r.outside, Some((*ext.ip(), ext.port())));
    assert_eq!(
        (r.action, r.reason, r.account.rule),
        (Action::Accepted, EndReason::IdleTimeout, NO_RULE)
    );
    assert!(r.end >= r.born);
}

#[test]
fn issue18_interim_records_carry_deltas() {
    let mut h = harness("");
    let out = h.from_lan(udp4(sa(HOST, 40001), sa(REMOTE, 53), b"a"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    h.advance_secs(5);
    h.from_lan(udp4(sa(HOST, 40001), sa(REMOTE, 53), b"b"));
    // The sweep visits every slot within 16 polls (1.6 s) of its interval.
    h.advance_secs(8);
    let first = records(&mut h);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].reason, EndReason::ActiveTimeout);
    assert_eq!(first[0].account.packets, [2, 0]);
    h.from_lan(udp4(sa(HOST, 40001), sa(REMOTE, 53), b"c"));
    h.advance_secs(12);
    let second = records(&mut h);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].account.packets, [1, 0], "only what came since");
    assert_eq!(second[0].born, first[0].born);
    assert!(second[0].account.since > first[0].account.since);
}

#[test]
fn issue18_a_refused_session_is_recorded_with_its_rule() {
    let policy = "[policy]\ndefault = \"allow\"\n\
        [[policy.rule]]\naction = \"reject\"\ndestination = \"203.0.113.6\"\n";
    let mut h = harness(policy);
    h.from_lan(udp4(sa(HOST, 40002), sa(REMOTE2, 53), b"q"));
    assert_eq!(h.drops(DropReason::PolicyReject), 1);
    let r = records(&mut h);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0].action, r[0].account.rule, r[0].outside),
        (Action::Rejected, 0, None)
    );
    assert_eq!(r[0].account.packets, [1, 0]);
}

#[test]
fn issue18_ipv6_states_are_recorded_too() {
    let mut h = harness_every(3600, "");
    let out = h.from_lan6(udp6(host6(), 5000, remote6(), 53, b"q"));
    assert!(
        matches!(out.verdict, Verdict::Forward(_)),
        "{:?}",
        out.verdict
    );
    let back = h.from_wan6(udp6(remote6(), 53, host6(), 5000, b"answer"));
    assert!(
        matches!(back.verdict, Verdict::Forward(_)),
        "{:?}",
        back.verdict
    );
    h.advance_secs(400);
    let r = records(&mut h);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].account.packets, [1, 1]);
    assert_eq!(r[0].account.bytes, [40 + 8 + 1, 40 + 8 + 6]);
    assert_eq!(r[0].outside, None);
}

#[test]
fn issue18_off_by_default() {
    let mut h = Harness::default();
    h.from_lan(udp4(sa(HOST, 40003), sa(REMOTE, 53), b"q"));
    h.advance_secs(400);
    assert!(records(&mut h).is_empty());
}

/// A reconfiguration that rebuilds the tables ends the sessions and states it cannot
/// keep; each gets its record, as `clear sessions` would give it.
#[test]
fn issue18_sessions_a_rebuild_ends_get_their_records() {
    let mut h = harness_every(3600, "");
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"query"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    let out = h.from_lan6(udp6(host6(), 40000, remote6(), 53, b"q"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    assert!(records(&mut h).is_empty());
    // Another pool address and inside prefix: neither survives.
    let mut moved = h.engine.config().clone();
    moved.nat.pool = vec![std::net::Ipv4Addr::new(198, 51, 100, 11)];
    moved.ipv6.inside_prefixes = vec!["2001:db8:99::/64".parse().unwrap()];
    let r = h.engine.reconfigure(&moved);
    assert_eq!((r.rebuilt, r.ended), (true, 2));
    let ended = records(&mut h);
    assert_eq!(ended.len(), 2, "{ended:?}");
    for r in &ended {
        assert_eq!(
            (r.reason, r.account.packets),
            (EndReason::ForcedEnd, [1, 0])
        );
    }
    assert!(ended
        .iter()
        .any(|r| r.remote == std::net::IpAddr::from(REMOTE)));
    assert!(ended
        .iter()
        .any(|r| r.remote == std::net::IpAddr::from(remote6())));
}
