//! Issue #18 section 1: the egress policy in the engine. New IPv4 sessions are
//! matched on their inside source before translation, new IPv6 states at the
//! egress-only filter; `deny` drops (`policy_deny`), `reject` answers (a TCP RST, RFC
//! 9293 section 3.10.7.1; ICMP administratively prohibited, RFC 792 type 3 code 13 /
//! RFC 4443 section 3.1 type 1 code 1); established sessions are not asked again; a
//! new policy ends the sessions it refuses; hit counters per rule.

mod support;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::Verdict;
use std::net::Ipv6Addr;
use support::*;

/// The example configuration with `policy` (TOML) appended.
fn with_policy(policy: &str) -> firmware_config::Config {
    firmware_config::from_toml(&format!("{}\n{policy}", example_toml())).expect("valid policy")
}

const POLICY: &str = "[policy]\ndefault = \"deny\"\n\
    [[policy.rule]]\naction = \"allow\"\ndestination = \"203.0.113.5\"\n\
    [[policy.rule]]\naction = \"reject\"\ndestination = \"203.0.113.6\"\n\
    [[policy.rule]]\naction = \"allow\"\ndestination = \"2001:db8:77::/48\"\nprotocol = \"udp\"\n\
    [[policy.rule]]\naction = \"reject\"\ndestination = \"2001:db8:77::/48\"\n";

fn remote6b() -> Ipv6Addr {
    "2001:db8:98::1".parse().unwrap()
}

/// The TCP header fields (source port, destination port, seq, ack, flags) of `ip`.
fn tcp_fields(ip: &[u8], at: usize) -> (u16, u16, u32, u32, u8) {
    let t = &ip[at..];
    let be32 = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    (
        u16::from_be_bytes([t[0], t[1]]),
        u16::from_be_bytes([t[2], t[3]]),
        be32(4),
        be32(8),
        t[13],
    )
}

#[test]
fn issue18_allowed_destinations_are_translated_and_the_default_denies() {
    let mut h = Harness::new(with_policy(POLICY));
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    let other = sa("192.0.2.1".parse().unwrap(), 53);
    let out = h.from_lan(udp4(sa(HOST, 40000), other, b"q"));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::PolicyDeny));
    assert_eq!(
        h.engine.nat().session_count(),
        1,
        "no session for a denied one"
    );
    let hits = h.engine.policy().hits();
    assert_eq!((hits.rules, hits.default), (vec![1, 0, 0, 0], 1));
}

#[test]
fn issue18_established_sessions_are_not_asked_again() {
    let mut h = Harness::new(with_policy(POLICY));
    for _ in 0..5 {
        let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
        assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    }
    let ext = {
        let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
        endpoints4(out.ip()).0
    };
    let back = h.from_wan(udp4(sa(REMOTE, 53), ext, b"a"));
    assert_eq!(back.verdict, Verdict::Forward(INSIDE));
    assert_eq!(
        h.engine.policy().hits().rules[0],
        1,
        "one decision, at creation"
    );
}

#[test]
fn rfc9293_3_10_7_1_a_rejected_syn_gets_a_reset_from_the_destination() {
    let mut h = Harness::new(with_policy(POLICY));
    let out = h.from_lan(tcp4(sa(HOST, 40000), sa(REMOTE2, 443), SYN, &[]));
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_checksums(&out.frame);
    let (src, dst) = (&out.ip()[12..16], &out.ip()[16..20]);
    assert_eq!((src, dst), (&REMOTE2.octets()[..], &HOST.octets()[..]));
    assert_eq!(out.ip()[9], 6, "TCP");
    assert_eq!(
        tcp_fields(out.ip(), 20),
        (443, 40000, 0, ISN + 1, RST | ACK)
    );
    assert_eq!(h.drops(DropReason::PolicyReject), 1);
    assert_eq!(h.engine.nat().session_count(), 0);
    // A segment that opens nothing (a stray ACK) is not the policy's to count.
    let stray = h.from_lan(tcp4(sa(HOST, 40001), sa(REMOTE2, 443), ACK, &[]));
    assert_eq!(stray.verdict, Verdict::Drop(DropReason::TcpNoSession));
    assert_eq!(h.engine.policy().hits().rules[1], 1);
}

#[test]
fn rfc792_a_rejected_udp_datagram_gets_admin_prohibited() {
    let mut h = Harness::new(with_policy(POLICY));
    let sent = udp4(sa(HOST, 40000), sa(REMOTE2, 53), b"q");
    let out = h.from_lan(sent.clone());
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_checksums(&out.frame);
    let (t, code, _, quoted) = icmp_error_parts(out.ip());
    assert_eq!((t, code), (3, 13));
    assert_eq!(
        &quoted[..20],
        &sent[..20],
        "the datagram as sent, untranslated"
    );
    let echo = h.from_lan(echo4(HOST, REMOTE2, 7, 1, false));
    let (t, code, _, _) = icmp_error_parts(echo.ip());
    assert_eq!((echo.verdict, t, code), (Verdict::Reply(INSIDE), 3, 13));
}

#[test]
fn rfc4443_3_1_rejected_ipv6_gets_admin_prohibited_or_a_reset() {
    let mut h = Harness::new(with_policy(POLICY));
    let r6 = remote6();
    assert_eq!(r6.segments()[2], 0x77, "remote6() is in 2001:db8:77::/48");
    let udp = h.from_lan6(udp6(host6(), 40000, r6, 53, b"q"));
    assert_eq!(udp.verdict, Verdict::Forward(OUTSIDE), "rule 2 allows UDP");
    let out = h.from_lan6(echo6(host6(), r6, 9, false));
    assert_eq!(out.verdict, Verdict::Reply(INSIDE));
    assert_checksums(&out.frame);
    assert_eq!((out.ip()[6], out.ip()[40], out.ip()[41]), (58, 1, 1));
    let syn = h.from_lan6(tcp6(host6(), 40000, r6, 443, SYN));
    assert_eq!(syn.verdict, Verdict::Reply(INSIDE));
    assert_checksums(&syn.frame);
    assert_eq!(syn.ip()[6], 6);
    assert_eq!(&syn.ip()[8..24], &r6.octets());
    assert_eq!(
        tcp_fields(syn.ip(), 40),
        (443, 40000, 0, ISN + 1, RST | ACK)
    );
    // The default denies the rest, silently.
    let denied = h.from_lan6(udp6(host6(), 40000, remote6b(), 53, b"q"));
    assert_eq!(denied.verdict, Verdict::Drop(DropReason::PolicyDeny));
    assert_eq!(h.engine.fw6().state_count(), 1);
    let hits = h.engine.policy().hits();
    assert_eq!((hits.rules, hits.default), (vec![0, 0, 1, 2], 1));
}

#[test]
fn issue18_a_session_opened_from_outside_is_asked_as_the_inside_hosts() {
    // Endpoint-independent filtering lets any remote reach a mapping; the policy still
    // decides whether the inside host may talk to that remote.
    let mut h = Harness::new(with_policy(POLICY));
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    let ext = endpoints4(out.ip()).0;
    let stranger = sa("192.0.2.44".parse().unwrap(), 9999);
    let back = h.from_wan(udp4(stranger, ext, b"hello"));
    assert_eq!(back.verdict, Verdict::Drop(DropReason::PolicyDeny));
    let rejected = h.from_wan(udp4(sa(REMOTE2, 53), ext, b"hello"));
    assert_eq!(
        rejected.verdict,
        Verdict::Drop(DropReason::PolicyDeny),
        "never answered towards the outside"
    );
    let allowed = h.from_wan(udp4(sa(REMOTE, 54), ext, b"hello"));
    assert_eq!(allowed.verdict, Verdict::Forward(INSIDE));
}

#[test]
fn issue18_a_new_policy_ends_the_sessions_it_refuses_as_mapping_events() {
    let mut base = config();
    base.log.syslog = Some("10.10.0.2:514".parse().unwrap());
    let mut h = Harness::new(base.clone());
    let a = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    let b = h.from_lan(udp4(sa(HOST, 40001), sa(REMOTE2, 53), b"q"));
    assert_eq!(
        (a.verdict, b.verdict),
        (Verdict::Forward(OUTSIDE), Verdict::Forward(OUTSIDE))
    );
    let v6 = h.from_lan6(udp6(host6(), 40000, remote6b(), 53, b"q"));
    assert_eq!(v6.verdict, Verdict::Forward(OUTSIDE));
    while h.engine.nat_mut().events_mut().pop().is_some() {}
    let mut strict = with_policy(POLICY);
    strict.log = base.log.clone();
    let done = h.engine.reconfigure(&strict);
    assert!(!done.rebuilt);
    // REMOTE2's session (rejected now) and the IPv6 state (denied by the default).
    assert_eq!((done.ended, done.denied), (0, 2));
    assert_eq!(h.engine.nat().session_count(), 1);
    assert_eq!(h.engine.fw6().state_count(), 0);
    let event = h
        .engine
        .nat_mut()
        .events_mut()
        .pop()
        .expect("a mapping event");
    assert!(!event.created);
    assert_eq!(event.inside, sa(HOST, 40001));
    // The allowed one goes on; the same policy again ends nothing more.
    let a = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    assert_eq!(a.verdict, Verdict::Forward(OUTSIDE));
    assert_eq!(h.engine.reconfigure(&strict).denied, 0);
    // A policy change through a rebuild (another MTU) is enforced too.
    let mut rebuilt = strict.clone();
    rebuilt.policy.rule.remove(0);
    rebuilt.inside.as_mut().unwrap().mtu = 1400;
    let done = h.engine.reconfigure(&rebuilt);
    assert_eq!((done.rebuilt, done.denied), (true, 1));
    assert_eq!(h.engine.nat().session_count(), 0);
}

#[test]
fn issue18_hit_counters_survive_a_change_to_later_rules_and_clear_with_the_stats() {
    let mut h = Harness::new(with_policy(POLICY));
    h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    let mut more = with_policy(POLICY);
    more.policy.rule.push(more.policy.rule[0].clone());
    more.policy.rule.last_mut().unwrap().destination = Some("192.0.2.0/24".parse().unwrap());
    h.engine.reconfigure(&more);
    assert_eq!(h.engine.policy().hits().rules, vec![1, 0, 0, 0, 0]);
    h.engine.clear_stats();
    assert_eq!(h.engine.policy().hits().rules, vec![0; 5]);
}
