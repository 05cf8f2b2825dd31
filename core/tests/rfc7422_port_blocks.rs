//! Port-block allocation (`[port_block]`, RFC 7422, RFC 8158 port-block events) through
//! the engine: every translated port of a host lies in one of its blocks, blocks of
//! two hosts never overlap, RFC 4787's EIM, preservation and parity hold inside a
//! block, the quota counts blocks, a block goes back after its last hold (RFC 6888
//! REQ-8), and the event log has one line per block, not per mapping.

mod support;
use firmware_config::port_block::{Mode, PortBlock};
use natbox_core::engine::nat44::events::MappingEvent;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::Verdict;
use std::net::SocketAddrV4;
use support::*;

fn blocks_config(size: u16, mode: Mode) -> firmware_config::Config {
    let mut c = config();
    c.port_block = PortBlock { size, mode };
    // Deterministic blocks need a fixed worker count (the harness runs one shard).
    c.dataplane.workers = 1;
    c.log.syslog = Some("10.10.0.2:514".parse().unwrap());
    c.log.event_rate = 2000;
    firmware_config::validate(&c).expect("valid");
    c
}

fn udp_out(h: &mut Harness, src: SocketAddrV4, dst: SocketAddrV4) -> SocketAddrV4 {
    let out = h.from_lan(udp4(src, dst, b"x"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE), "{src} -> {dst}");
    assert_checksums(&out.frame);
    endpoints4(out.ip()).0
}

fn events(h: &mut Harness) -> Vec<MappingEvent> {
    let log = h.engine.nat_mut().events_mut();
    std::iter::from_fn(|| log.pop()).collect()
}

#[test]
fn rfc7422_each_hosts_ports_fall_in_its_block_and_one_event_per_block() {
    let mut h = Harness::new(blocks_config(64, Mode::Dynamic));
    let mut ext = Vec::new();
    for (host, base) in [(HOST, 40000u16), (HOST2, 40000)] {
        for i in 0..20 {
            ext.push((
                host,
                udp_out(&mut h, sa(host, base + i), sa(REMOTE, 53)).port(),
            ));
        }
    }
    let ev = events(&mut h);
    assert_eq!(
        ev.len(),
        2,
        "one block event per host, not 40 mapping events: {ev:?}"
    );
    for e in &ev {
        assert!(e.created);
        let (first, last) = (e.outside.port(), e.block_last.expect("a block event"));
        assert_eq!(last - first, 63);
        for &(host, port) in ext.iter().filter(|(a, _)| *a == *e.inside.ip()) {
            assert!(
                (first..=last).contains(&port),
                "{host} port {port} outside its block"
            );
        }
    }
    assert_ne!(ev[0].inside.ip(), ev[1].inside.ip());
    let a = ev[0].outside.port()..=ev[0].block_last.unwrap();
    assert!(!a.contains(&ev[1].outside.port()), "blocks overlap");
    // HOST took the block holding its inside ports and kept them (RFC 4787 4.2.1).
    assert_eq!(ext[0], (HOST, 40000));
    assert_eq!(h.engine.nat().blocks_in_use(0), 2);
    let shown = h.engine.nat().host_blocks(10);
    assert_eq!(shown.len(), 2);
    assert_eq!(shown[0].live, 20);
}

#[test]
fn rfc4787_req1_eim_and_req4_parity_inside_the_block() {
    let mut h = Harness::new(blocks_config(64, Mode::Dynamic));
    let first = udp_out(&mut h, sa(HOST, 40010), sa(REMOTE, 53));
    assert_eq!(first.port(), 40010, "preserved: its block was free");
    assert_eq!(
        udp_out(&mut h, sa(HOST, 40010), sa(REMOTE2, 99)),
        first,
        "EIM"
    );
    // An inside port outside the block maps into it with its parity.
    for inside in [5001u16, 5002, 61235] {
        let p = udp_out(&mut h, sa(HOST, inside), sa(REMOTE, 53)).port();
        assert!((40000..=40063).contains(&p), "{inside} -> {p}");
        assert_eq!(p % 2, inside % 2, "REQ-4 parity {inside} -> {p}");
    }
    // HOST2's inside port 40020 lies in HOST's block: it gets its own block.
    let other = udp_out(&mut h, sa(HOST2, 40020), sa(REMOTE, 53)).port();
    assert!(!(40000..=40063).contains(&other), "{other}");
    assert_eq!(other % 2, 0);
}

#[test]
fn rfc6888_req4_port_quota_becomes_a_block_quota() {
    let mut c = blocks_config(64, Mode::Dynamic);
    c.nat.max_ports_per_host = 100; // 100 / 64: one block
    let mut h = Harness::new(c);
    for i in 0..64 {
        udp_out(&mut h, sa(HOST, 20000 + i), sa(REMOTE, 53));
    }
    let out = h.from_lan(udp4(sa(HOST, 30000), sa(REMOTE, 53), b"x"));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::HostPortLimit));
    assert_eq!(h.engine.nat().block_failures(), 1);
    // Another host is not affected.
    udp_out(&mut h, sa(HOST2, 30000), sa(REMOTE, 53));
}

#[test]
fn rfc6888_req8_block_released_after_the_last_hold_then_reusable() {
    let mut c = blocks_config(64, Mode::Dynamic);
    c.nat.port_min = 40000;
    c.nat.port_max = 40063; // exactly one block
    let mut h = Harness::new(c);
    let ext = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    assert_eq!(events(&mut h).len(), 1);
    h.advance_secs(301); // UDP idle timeout: the mapping ends, its port is held
    assert_eq!(h.engine.nat().session_count(), 0);
    assert!(
        events(&mut h).is_empty(),
        "mappings are not logged with blocks"
    );
    let refused = h.from_lan(udp4(sa(HOST2, 5555), sa(REMOTE, 53), b"x"));
    assert_eq!(refused.verdict, Verdict::Drop(DropReason::PortsExhausted));
    // The previous owner still gets ports of its block during the hold: a free one
    // first (its held port was another connection's moments ago).
    let again = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    assert_eq!(again.ip(), ext.ip());
    assert!((40001..=40063).contains(&again.port()), "{again}");
    h.advance_secs(301 + 121);
    let ev = events(&mut h);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(!ev[0].created && ev[0].block_last == Some(40063));
    assert_eq!(h.engine.nat().blocks_in_use(0), 0);
    let p = udp_out(&mut h, sa(HOST2, 5555), sa(REMOTE, 53)).port();
    assert!((40000..=40063).contains(&p));
}

#[test]
fn rfc7422_section2_deterministic_block_from_the_address_no_events() {
    let mut h = Harness::new(blocks_config(64, Mode::Deterministic));
    // 10.10.0.0/24: HOST (10.10.0.2) is address 2, so block 2 of the ports above 1023.
    let (lo, hi) = (1024 + 2 * 64, 1024 + 3 * 64 - 1);
    for inside in [40000u16, 80, 5001, 1152] {
        let p = udp_out(&mut h, sa(HOST, inside), sa(REMOTE, 53)).port();
        assert!((lo..=hi).contains(&p), "{inside} -> {p}");
    }
    let p2 = udp_out(&mut h, sa(HOST2, 40000), sa(REMOTE, 53)).port();
    assert!((hi + 1..=hi + 64).contains(&p2), "HOST2 is address 3: {p2}");
    assert!(events(&mut h).is_empty(), "deterministic mode logs nothing");
    // One block only: the 65th mapping is over the quota.
    for i in 0..60 {
        udp_out(&mut h, sa(HOST, 20000 + i), sa(REMOTE, 53));
    }
    let out = h.from_lan(udp4(sa(HOST, 30000), sa(REMOTE, 53), b"x"));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::HostPortLimit));
}

#[test]
fn without_blocks_every_mapping_is_logged() {
    let mut c = blocks_config(64, Mode::Dynamic);
    c.port_block = PortBlock::default();
    let mut h = Harness::new(c);
    for i in 0..20 {
        udp_out(&mut h, sa(HOST, 40000 + i), sa(REMOTE, 53));
    }
    let ev = events(&mut h);
    assert_eq!(ev.len(), 20);
    assert!(ev.iter().all(|e| e.block_last.is_none()));
}

#[test]
fn shards_take_blocks_from_their_own_slice() {
    let c = blocks_config(64, Mode::Dynamic);
    for k in 0..2 {
        let shard = natbox_core::shard::Shard::new(k, 2).unwrap();
        let mut h = Harness::new_shard(c.clone(), shard);
        let (lo, hi) = if k == 0 {
            (1024, 33279)
        } else {
            (33280, 65535)
        };
        for i in 0..70 {
            let p = udp_out(&mut h, sa(HOST, 2000 + i * 7), sa(REMOTE, 53)).port();
            assert!((lo..=hi).contains(&p), "shard {k}: {p}");
        }
        for e in events(&mut h) {
            assert!(lo <= e.outside.port() && e.block_last.unwrap() <= hi);
        }
    }
}

#[test]
fn rebuild_keeps_blocks_and_logs_only_what_changed() {
    let c = blocks_config(64, Mode::Dynamic);
    let mut h = Harness::new(c.clone());
    let a = udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53));
    udp_out(&mut h, sa(HOST2, 40100), sa(REMOTE, 53));
    assert_eq!(events(&mut h).len(), 2);
    let mut grown = c.clone();
    grown.nat.max_sessions *= 2;
    assert!(h.engine.reconfigure(&grown).rebuilt);
    h.teach_neighbours();
    assert!(
        events(&mut h).is_empty(),
        "kept blocks are not logged again"
    );
    assert_eq!(
        udp_out(&mut h, sa(HOST, 40000), sa(REMOTE, 53)),
        a,
        "mapping kept"
    );
    assert_eq!(h.engine.nat().blocks_in_use(0), 2);
    let mut off = grown.clone();
    off.port_block = PortBlock::default();
    assert!(h.engine.reconfigure(&off).rebuilt);
    let ev = events(&mut h);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev.iter().all(|e| !e.created && e.block_last.is_some()));
}
