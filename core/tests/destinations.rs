//! Issue #18 section 5: per-destination SLIs in the engine. A TCP attempt (a session
//! an inside SYN opened) succeeds when the remote's SYN-ACK crosses the box within 3 s
//! (`destinations::JUDGE_SECS`, whole seconds of engine time) and fails when it does
//! not (judged by the next poll after its deadline), or when the remote refuses it
//! with a RST; destinations are /24 (IPv4) and /48 (IPv6) prefixes.

mod support;
use natbox_core::engine::control::{Answer, Request, SessionFilter};
use natbox_core::engine::destinations::{Dest, Report, Tally};
use natbox_core::engine::Verdict;
use std::net::SocketAddrV4;
use support::*;

fn report(h: &Harness) -> Report {
    h.engine.nat().destinations()
}

/// The exact tally of `REMOTE`'s /24.
fn remote(h: &Harness) -> Tally {
    let r = report(h);
    r.summary
        .entries
        .iter()
        .find(|e| e.dest == Dest::v4(REMOTE.to_bits()))
        .expect("REMOTE's /24 is tracked")
        .tally
}

/// `clear sessions`, every one.
fn clear_sessions(h: &mut Harness) {
    let cleared = h
        .engine
        .answer(&Request::ClearSessions(SessionFilter::default()), h.now);
    assert!(!matches!(cleared, Answer::Done), "{cleared:?}");
}

/// (sessions, attempts, established, ok, failed).
fn counts(t: &Tally) -> (u64, u64, u64, u64, u64) {
    (
        t.sessions,
        t.tcp_attempts,
        t.tcp_established,
        t.tcp_ok,
        t.tcp_failed,
    )
}

/// Sends an inside SYN; returns the external endpoint.
fn syn(h: &mut Harness, port: u16) -> SocketAddrV4 {
    let out = h.from_lan(tcp4(sa(HOST, port), sa(REMOTE, 443), SYN, &[]));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    endpoints4(out.ip()).0
}

fn answer(h: &mut Harness, ext: SocketAddrV4, flags: u8) {
    let back = h.from_wan(tcp4_at(sa(REMOTE, 443), ext, flags, ISN, b""));
    assert_eq!(back.verdict, Verdict::Forward(INSIDE));
}

#[test]
fn issue18_a_syn_ack_within_3s_is_a_success() {
    let mut h = Harness::new(config());
    let ext = syn(&mut h, 40000);
    h.advance_secs(2);
    answer(&mut h, ext, SYN | ACK);
    h.advance_secs(10);
    let t = remote(&h);
    assert_eq!(counts(&t), (1, 1, 1, 1, 0));
}

#[test]
fn issue18_a_syn_with_no_answer_fails_after_3s_and_a_late_answer_changes_nothing() {
    let mut h = Harness::new(config());
    let ext = syn(&mut h, 40000);
    h.advance_secs(3);
    assert_eq!(remote(&h).tcp_failed, 0, "not judged before its deadline");
    h.advance_secs(2);
    assert_eq!((remote(&h).tcp_ok, remote(&h).tcp_failed), (0, 1));
    answer(&mut h, ext, SYN | ACK);
    let t = remote(&h);
    assert_eq!((t.tcp_established, t.tcp_ok, t.tcp_failed), (1, 0, 1));
}

#[test]
fn issue18_a_late_answer_before_the_poll_is_judged_failed_once() {
    let mut h = Harness::new(config());
    let ext = syn(&mut h, 40000);
    h.now += 5_000; // no poll in between
    answer(&mut h, ext, SYN | ACK);
    h.advance_secs(1);
    let t = remote(&h);
    assert_eq!((t.tcp_established, t.tcp_ok, t.tcp_failed), (1, 0, 1));
}

#[test]
fn rfc9293_3_10_7_3_a_reset_answering_the_syn_is_a_failure_at_once() {
    let mut h = Harness::new(config());
    let ext = syn(&mut h, 40000);
    answer(&mut h, ext, RST | ACK);
    let t = remote(&h);
    assert_eq!((t.tcp_established, t.tcp_ok, t.tcp_failed), (0, 0, 1));
    h.advance_secs(6);
    assert_eq!(remote(&h).tcp_failed, 1, "judged once");
}

#[test]
fn issue18_sessions_count_per_24_and_udp_is_no_attempt() {
    let mut h = Harness::new(config());
    syn(&mut h, 40000);
    let out = h.from_lan(udp4(sa(HOST, 40001), sa(REMOTE2, 53), b"q"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    let r = report(&h);
    assert_eq!(r.summary.entries.len(), 1, "REMOTE and REMOTE2 share a /24");
    let t = remote(&h);
    assert_eq!((t.sessions, t.tcp_attempts), (2, 1));
    assert_eq!(r.summary.other(), Tally::default());
    assert_eq!(r.summary.total, t);
}

#[test]
fn issue18_established_sessions_that_expire_are_idle_timeouts() {
    let mut h = Harness::new(config());
    let ext = syn(&mut h, 40000);
    answer(&mut h, ext, SYN | ACK);
    let out = h.from_lan(udp4(sa(HOST, 40001), sa(REMOTE, 53), b"q"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    let established = u64::from(config().timeouts.tcp_established);
    h.advance_secs(established + 5);
    assert_eq!(h.engine.nat().session_count(), 0);
    assert_eq!(
        report(&h).idle_timeouts,
        1,
        "the TCP session, not the UDP one"
    );
}

#[test]
fn issue18_ipv6_destinations_count_per_48() {
    let mut h = Harness::new(config());
    let out = h.from_lan6(udp6(host6(), 40000, remote6(), 53, b"q"));
    assert!(matches!(out.verdict, Verdict::Forward(_)));
    let s = h.engine.fw6().destinations().v6;
    assert_eq!(s.entries.len(), 1);
    assert_eq!(s.entries[0].dest, Dest::v6(remote6()));
    assert_eq!(s.entries[0].tally.sessions, 1);
}

#[test]
fn issue18_clear_stats_forgets_the_destinations() {
    let mut h = Harness::new(config());
    syn(&mut h, 40000);
    h.engine.clear_stats();
    assert_eq!(report(&h), Report::default());
}

#[test]
fn issue18_a_rebuild_keeps_the_destinations() {
    let mut h = Harness::new(config());
    let ext = syn(&mut h, 40000);
    answer(&mut h, ext, SYN | ACK);
    h.from_lan6(udp6(host6(), 40000, remote6(), 53, b"q"));
    // A new port range rebuilds the tables (`Addressing`); the sessions are adopted.
    let mut rebuilt = config();
    rebuilt.nat.port_min = 2000;
    assert!(rebuilt.nat.port_min != config().nat.port_min);
    h.engine.reconfigure(&rebuilt);
    let t = remote(&h);
    assert_eq!((t.sessions, t.tcp_attempts, t.tcp_established), (1, 1, 1));
    assert_eq!(h.engine.fw6().destinations().v6.entries.len(), 1);
}

/// The exact tally of `remote6()`'s /48.
fn remote6_tally(h: &Harness) -> Tally {
    h.engine
        .fw6()
        .destinations()
        .v6
        .entries
        .iter()
        .find(|e| e.dest == Dest::v6(remote6()))
        .expect("remote6's /48 is tracked")
        .tally
}

/// An inside SYN to `remote6()`:443 from `port`, forwarded.
fn syn6(h: &mut Harness, port: u16) {
    let out = h.from_lan6(tcp6(host6(), port, remote6(), 443, SYN));
    assert!(matches!(out.verdict, Verdict::Forward(_)));
}

/// The remote's answer with `flags` to the SYN from `port`, forwarded.
fn answer6(h: &mut Harness, port: u16, flags: u8) {
    let back = h.from_wan6(tcp6_at((remote6(), 443), (host6(), port), flags, ISN, b""));
    assert!(matches!(back.verdict, Verdict::Forward(_)));
}

#[test]
fn issue18_ipv6_tcp_attempts_are_judged_like_ipv4_ones() {
    let mut h = Harness::new(config());
    // Answered within 3 s: ok.
    syn6(&mut h, 40000);
    h.advance_secs(1);
    answer6(&mut h, 40000, SYN | ACK);
    // Never answered: failed once its 3 s are up, not before.
    syn6(&mut h, 40001);
    h.advance_secs(3);
    assert_eq!(
        remote6_tally(&h).tcp_failed,
        0,
        "not judged before its deadline"
    );
    h.advance_secs(2);
    // Refused with a RST: failed at once.
    syn6(&mut h, 40002);
    answer6(&mut h, 40002, RST | ACK);
    let t = remote6_tally(&h);
    assert_eq!(counts(&t), (3, 3, 1, 1, 2));
    assert_eq!(report(&h).summary.total, Tally::default(), "IPv4 untouched");
}

#[test]
fn issue18_bytes_per_destination_are_credited_at_each_flow_record() {
    let toml = format!(
        "{}\n[flow_log]\nipfix = \"198.51.100.1:4739\"\ninterval = 10\n",
        example_toml()
    );
    let mut h = Harness::new(firmware_config::from_toml(&toml).expect("valid"));
    let query = udp4(sa(HOST, 40000), sa(REMOTE, 53), b"query");
    let out = h.from_lan(query.clone());
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    let ext = endpoints4(out.ip()).0;
    let answer = udp4(sa(REMOTE, 53), ext, b"a longer answer");
    assert_eq!(h.from_wan(answer.clone()).verdict, Verdict::Forward(INSIDE));
    assert!(report(&h).bytes);
    assert_eq!(
        remote(&h).bytes_out,
        0,
        "credited at a record, not per packet"
    );
    // The interim record (every 10 s; the sweep visits each slot within 1.6 s of
    // it) credits what the session carried so far.
    h.advance_secs(12);
    let t = remote(&h);
    assert_eq!(
        (t.bytes_out, t.bytes_in),
        (query.len() as u64, answer.len() as u64)
    );
    // A second packet each way, credited when the session ends.
    h.from_lan(query.clone());
    h.from_wan(answer.clone());
    clear_sessions(&mut h);
    let t = remote(&h);
    assert_eq!(
        (t.bytes_out, t.bytes_in),
        (2 * query.len() as u64, 2 * answer.len() as u64)
    );
    assert_eq!(report(&h).summary.total, t);
}

#[test]
fn issue18_without_flow_logs_bytes_are_not_counted_and_say_so() {
    let mut h = Harness::new(config());
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"query"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    clear_sessions(&mut h);
    let r = report(&h);
    assert!(!r.bytes);
    assert_eq!((remote(&h).bytes_out, remote(&h).bytes_in), (0, 0));
}
