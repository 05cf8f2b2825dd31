//! Issue #18 section 1, per-host rate limits (`[host_limits]`): each inside host's
//! new sessions and packets are token buckets; one host over its limit is dropped
//! (`host_session_rate`, `host_packet_rate`) while the others go on; established
//! sessions pay nothing for the session limit; sessions an outsider opens are not
//! charged to the inside host; a commit that changes the limits starts the buckets
//! afresh, one that does not keeps them.

mod support;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::Verdict;
use std::net::Ipv6Addr;
use support::*;

fn with_limits(limits: &str) -> firmware_config::Config {
    firmware_config::from_toml(&format!("{}\n[host_limits]\n{limits}", example_toml()))
        .expect("valid limits")
}

fn host6b() -> Ipv6Addr {
    "2001:db8:10::3".parse().unwrap()
}

/// How many of `n` UDP datagrams from `host`, each to a new remote port, were forwarded.
fn new_sessions4(h: &mut Harness, host: std::net::Ipv4Addr, first_port: u16, n: u16) -> usize {
    (0..n)
        .filter(|i| {
            let out = h.from_lan(udp4(sa(host, 40000), sa(REMOTE, first_port + i), b"q"));
            out.verdict == Verdict::Forward(OUTSIDE)
        })
        .count()
}

#[test]
fn issue18_new_sessions_over_the_rate_are_dropped_and_other_hosts_go_on() {
    let mut h = Harness::new(with_limits("new_sessions_per_second = 5\n"));
    assert_eq!(
        new_sessions4(&mut h, HOST, 1000, 20),
        5,
        "the burst (= rate)"
    );
    assert_eq!(h.drops(DropReason::HostSessionRate), 15);
    assert_eq!(h.engine.nat().session_count(), 5);
    // Established sessions pay nothing.
    for _ in 0..50 {
        let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 1000), b"q"));
        assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    }
    // Another host has its own bucket.
    assert_eq!(new_sessions4(&mut h, HOST2, 1000, 3), 3);
    // 5 a second: one more every 200 ms.
    h.now += 400;
    assert_eq!(new_sessions4(&mut h, HOST, 2000, 10), 2);
    let stats = h.engine.policy().hits().limits.expect("limits set");
    assert_eq!(stats.top[0], (HOST.into(), 23));
}

#[test]
fn issue18_packets_over_the_rate_are_dropped_per_host() {
    let mut h = Harness::new(with_limits(
        "packets_per_second = 100\npackets_burst = 10\n",
    ));
    let send = |h: &mut Harness, host, n| {
        (0..n)
            .filter(|_| {
                let out = h.from_lan(udp4(sa(host, 40000), sa(REMOTE, 53), b"q"));
                out.verdict == Verdict::Forward(OUTSIDE)
            })
            .count()
    };
    assert_eq!(send(&mut h, HOST, 50), 10);
    assert_eq!(h.drops(DropReason::HostPacketRate), 40);
    assert_eq!(send(&mut h, HOST2, 5), 5, "the other host is not held back");
    h.now += 50; // 100 a second: 5 in 50 ms
    assert_eq!(send(&mut h, HOST, 50), 5);
    // Replies from outside are not the inside host's packets.
    let ext = {
        h.now += 10;
        let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
        assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
        endpoints4(out.ip()).0
    };
    for _ in 0..20 {
        let back = h.from_wan(udp4(sa(REMOTE, 53), ext, b"a"));
        assert_eq!(back.verdict, Verdict::Forward(INSIDE));
    }
}

#[test]
fn issue18_ipv6_states_and_packets_are_limited_per_address() {
    let mut h = Harness::new(with_limits(
        "new_sessions_per_second = 3\npackets_per_second = 80\npackets_burst = 8\n",
    ));
    let r6 = remote6();
    let opened = (0..6u16)
        .filter(|i| {
            let out = h.from_lan6(udp6(host6(), 40000, r6, 1000 + i, b"q"));
            out.verdict == Verdict::Forward(OUTSIDE)
        })
        .count();
    assert_eq!(opened, 3);
    assert_eq!(h.drops(DropReason::HostSessionRate), 3);
    // Two tokens of the packet bucket left: the established state's packets take them.
    let passed = (0..5)
        .filter(|_| {
            let out = h.from_lan6(udp6(host6(), 40000, r6, 1000, b"q"));
            out.verdict == Verdict::Forward(OUTSIDE)
        })
        .count();
    assert_eq!(passed, 2);
    assert_eq!(h.drops(DropReason::HostPacketRate), 3);
    // Another address of the same /64 is another host.
    let out = h.from_lan6(udp6(host6b(), 40000, r6, 1000, b"q"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
}

#[test]
fn issue18_sessions_an_outsider_opens_are_not_charged_to_the_host() {
    let mut h = Harness::new(with_limits("new_sessions_per_second = 1\n"));
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    let ext = endpoints4(out.ip()).0;
    // Endpoint-independent filtering: other remotes may open sessions on the mapping.
    for port in 1..=5u16 {
        let back = h.from_wan(udp4(sa(REMOTE2, port), ext, b"a"));
        assert_eq!(back.verdict, Verdict::Forward(INSIDE), "port {port}");
    }
    assert_eq!(h.drops(DropReason::HostSessionRate), 0);
}

#[test]
fn issue18_a_commit_keeps_buckets_unless_the_limits_change() {
    let limited = with_limits("new_sessions_per_second = 2\n");
    let mut h = Harness::new(limited.clone());
    assert_eq!(new_sessions4(&mut h, HOST, 1000, 5), 2);
    // The same limits (another setting changed): the spent bucket is kept.
    let mut retuned = limited.clone();
    retuned.timeouts.udp += 1;
    h.engine.reconfigure(&retuned);
    assert_eq!(new_sessions4(&mut h, HOST, 2000, 5), 0);
    // Changed limits: every bucket starts full.
    let changed = with_limits("new_sessions_per_second = 3\n");
    h.engine.reconfigure(&changed);
    assert_eq!(new_sessions4(&mut h, HOST, 3000, 5), 3);
    // No limits: nothing is held back, and no table is kept.
    h.engine.reconfigure(&config());
    assert_eq!(new_sessions4(&mut h, HOST, 4000, 20), 20);
    assert!(h.engine.policy().hits().limits.is_none());
}

/// A session the rate let through but the box could not make (here the host's
/// session quota) gives its token back: the host's later sessions are refused for
/// the quota, not for a rate it never used.
#[test]
fn issue18_a_session_not_made_gives_its_token_back() {
    let mut c = with_limits("new_sessions_per_second = 1\nnew_sessions_burst = 2\n");
    c.nat.max_sessions_per_host = 1;
    let mut h = Harness::new(c);
    assert_eq!(new_sessions4(&mut h, HOST, 1000, 1), 1);
    assert_eq!(new_sessions4(&mut h, HOST, 2000, 5), 0, "over the quota");
    assert_eq!(h.drops(DropReason::HostSessionLimit), 5);
    assert_eq!(h.drops(DropReason::HostSessionRate), 0);
    // The same for IPv6 filter states.
    let mut c = with_limits("new_sessions_per_second = 1\nnew_sessions_burst = 2\n");
    c.nat.max_sessions_per_host = 1;
    let mut h = Harness::new(c);
    let open6 = |h: &mut Harness, port| {
        let out = h.from_lan6(udp6(host6(), 40000, remote6(), port, b"q"));
        out.verdict == Verdict::Forward(OUTSIDE)
    };
    assert!(open6(&mut h, 1000));
    assert!((2000..2005).all(|p| !open6(&mut h, p)));
    assert_eq!(h.drops(DropReason::HostStateLimit6), 5);
    assert_eq!(h.drops(DropReason::HostSessionRate), 0);
}
