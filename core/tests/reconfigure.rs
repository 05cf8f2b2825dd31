//! Issue #16: a configuration change that keeps a session's mapping possible keeps the
//! session, also when it rebuilds the tables (a new pool address, larger tables, a
//! narrower port range for the mappings that still fit, an added route); the mappings
//! it makes impossible end, each a mapping event (RFC 6888 REQ-12).

mod support;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::Verdict;
use std::net::Ipv4Addr;
use support::*;

const NEW_POOL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);

/// `h` takes `config`; the neighbours announce themselves again (a rebuild learns
/// them afresh). Returns (rebuilt, ended).
fn reconfigure(h: &mut Harness, config: &firmware_config::Config) -> (bool, usize) {
    let r = h.engine.reconfigure(config);
    h.teach_neighbours();
    (r.rebuilt, r.ended)
}

/// The reply to a UDP flow's external endpoint reaches the inside endpoint.
fn reply_reaches(h: &mut Harness, outside: std::net::SocketAddrV4, inside: std::net::SocketAddrV4) {
    let back = h.from_wan(udp4(sa(REMOTE, 53), outside, b"a"));
    assert_eq!(back.verdict, Verdict::Forward(INSIDE), "{back:?}");
    assert_eq!(endpoints4(back.ip()).1, inside);
}

#[test]
fn issue16_a_new_pool_address_keeps_sessions_and_each_hosts_pairing() {
    let mut h = Harness::default();
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    let ext = endpoints4(out.ip()).0;
    assert_eq!(*ext.ip(), PUBLIC);
    // The new address goes first, so the address hash would now pair HOST with it.
    let grown = pool_config(&[NEW_POOL, PUBLIC]);
    assert_eq!(reconfigure(&mut h, &grown), (true, 0));
    assert_eq!(h.engine.nat().session_count(), 1);
    reply_reaches(&mut h, ext, sa(HOST, 40000));
    // RFC 4787 REQ-2: HOST's new mappings stay on the address its live one has.
    let again = h.from_lan(udp4(sa(HOST, 40001), sa(REMOTE, 53), b"q"));
    assert_eq!(*endpoints4(again.ip()).0.ip(), PUBLIC);
    // A host without mappings is paired by the hash, here with the new address.
    let other = h.from_lan(udp4(sa(HOST2, 40000), sa(REMOTE, 53), b"q"));
    assert_eq!(*endpoints4(other.ip()).0.ip(), NEW_POOL);
}

#[test]
fn issue16_tables_grown_beyond_their_allocation_keep_sessions() {
    let mut h = Harness::default();
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    let ext = endpoints4(out.ip()).0;
    let mut bigger = config();
    bigger.nat.max_sessions *= 2;
    bigger.ipv6.max_states *= 2;
    assert_eq!(reconfigure(&mut h, &bigger), (true, 0));
    reply_reaches(&mut h, ext, sa(HOST, 40000));
}

#[test]
fn issue16_tcp_state_and_windows_survive_a_rebuild() {
    let mut h = Harness::default();
    let (inside, remote) = (sa(HOST, 40000), sa(REMOTE, 80));
    let ext = endpoints4(h.from_lan(tcp4(inside, remote, SYN, &[])).ip()).0;
    assert_eq!(
        h.from_wan(tcp4(remote, ext, SYN | ACK, &[])).verdict,
        Verdict::Forward(INSIDE)
    );
    h.from_lan(tcp4_at(inside, remote, ACK, ISN + 1, b""));
    let state = |h: &Harness| h.engine.nat().sessions(0).next().expect("session").state;
    assert_eq!(state(&h), "established");
    assert_eq!(
        reconfigure(&mut h, &pool_config(&[PUBLIC, NEW_POOL])),
        (true, 0)
    );
    assert_eq!(state(&h), "established");
    // RFC 5961 section 3.2 still holds: the windows came along, so a RST far outside
    // them is refused and an in-window segment passes.
    let blind = h.from_wan(tcp4_at(remote, ext, RST, ISN + 1 + 100_000, b""));
    assert_eq!(blind.verdict, Verdict::Drop(DropReason::TcpRstOutOfWindow));
    let data = h.from_wan(tcp4_at(remote, ext, ACK, ISN + 1, b"data"));
    assert_eq!(data.verdict, Verdict::Forward(INSIDE));
}

#[test]
fn issue16_mappings_a_change_makes_impossible_end_with_a_mapping_event() {
    let mut c = pool_config(&[PUBLIC, NEW_POOL]);
    c.log.syslog = Some("192.0.2.5:514".parse().unwrap());
    let mut h = Harness::new(c.clone());
    // HOST and HOST2 are both paired with PUBLIC by the hash; a mapping on the second
    // address comes from a host that hashes there.
    let host3 = (4..250)
        .map(|i| Ipv4Addr::new(10, 10, 0, i))
        .find(|a| {
            let mut probe = Harness::new(c.clone());
            let out = probe.from_lan(udp4(sa(*a, 1), sa(REMOTE, 53), b"q"));
            *endpoints4(out.ip()).0.ip() == NEW_POOL
        })
        .expect("a host paired with the second address");
    h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    let out = h.from_lan(udp4(sa(host3, 40000), sa(REMOTE, 53), b"q"));
    let gone = endpoints4(out.ip()).0;
    assert_eq!(*gone.ip(), NEW_POOL);
    while h.engine.nat_mut().events_mut().pop().is_some() {}
    // The second address leaves the pool: host3's mapping is no longer possible.
    c.nat.pool = vec![PUBLIC];
    assert_eq!(reconfigure(&mut h, &c), (true, 1));
    assert_eq!(h.engine.nat().session_count(), 1);
    let ended = h
        .engine
        .nat_mut()
        .events_mut()
        .pop()
        .expect("a mapping event");
    assert!(!ended.created);
    assert_eq!(*ended.outside.ip(), NEW_POOL);
    assert_eq!(*ended.inside.ip(), host3);
    // Its replies find no mapping; HOST's still do.
    let stray = h.from_wan(udp4(sa(REMOTE, 53), gone, b"a"));
    assert!(matches!(stray.verdict, Verdict::Drop(_)), "{stray:?}");
    reply_reaches(&mut h, sa(PUBLIC, 40000), sa(HOST, 40000));
}

#[test]
fn issue16_ipv6_states_survive_a_rebuild_and_leave_with_their_prefix() {
    let mut h = Harness::default();
    let out = h.from_lan6(udp6(host6(), 40000, remote6(), 53, b"q"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    assert_eq!(
        reconfigure(&mut h, &pool_config(&[PUBLIC, NEW_POOL])),
        (true, 0)
    );
    let back = h.from_wan6(udp6(remote6(), 53, host6(), 40000, b"a"));
    assert_eq!(back.verdict, Verdict::Forward(INSIDE));
    // A change of the inside prefix leaves the host outside it: its state ends.
    let mut moved = config();
    moved.ipv6.inside_prefixes = vec!["2001:db8:99::/64".parse().unwrap()];
    assert_eq!(reconfigure(&mut h, &moved), (true, 1));
    assert_eq!(h.engine.fw6().state_count(), 0);
}

/// A rebuild keeps what the box's services bound (the metrics responder, a running
/// ping, a DHCP client): they are not part of the configuration, and they would
/// otherwise stop receiving until their bindings changed.
#[test]
fn issue17_a_rebuild_keeps_the_services_bindings() {
    use natbox_core::engine::local::Binding;
    let mut h = Harness::default();
    let bindings = [
        Binding::TcpInside(std::net::SocketAddrV4::new(BOX_LAN, 9100).into()),
        Binding::Dhcp4Client(OUTSIDE),
    ];
    h.engine.bind_local(&bindings);
    assert_eq!(reconfigure(&mut h, &pool_config(&[NEW_POOL])), (true, 0));
    assert_eq!(h.engine.local_bindings(), &bindings[..]);
}
