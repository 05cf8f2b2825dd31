//! IPv6 on cloud links: the default router from Router Advertisements (RFC 4861
//! sections 6.1.2, 6.3.4, 6.3.7) and stateless address autoconfiguration with
//! Duplicate Address Detection (RFC 4862 sections 5.4 and 5.5.3), through the engine
//! (`Engine::probe6`, `solicit_routers`, `set_lease6`, the `RouterAdverts` binding)
//! and the sans-I/O state machine (`natbox_core::autoconf`), driven together as the
//! box's service drives them.

mod support;
use natbox_core::autoconf::{self, Action, Autoconf, Mode};
use natbox_core::engine::lease6::Lease6;
use natbox_core::engine::local::Binding;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::Verdict;
use natbox_core::wire::ethernet::Mac;
use std::net::Ipv6Addr;
use support::*;

/// The router's link-local address (its MAC is `GW_MAC`).
fn router() -> Ipv6Addr {
    "fe80::2:2".parse().unwrap()
}

fn all_nodes() -> Ipv6Addr {
    "ff02::1".parse().unwrap()
}

/// A Prefix Information option (RFC 4861 section 4.6.2): L and A set.
fn pio(prefix: &str, len: u8, valid: u32, preferred: u32) -> Vec<u8> {
    let mut o = vec![3, 4, len, 0xc0];
    o.extend_from_slice(&valid.to_be_bytes());
    o.extend_from_slice(&preferred.to_be_bytes());
    o.extend_from_slice(&[0; 4]);
    o.extend_from_slice(&prefix.parse::<Ipv6Addr>().unwrap().octets());
    o
}

/// A Router Advertisement's IPv6 datagram from `src` with `lifetime`, a Source
/// Link-Layer Address option (`GW_MAC`) and `options`, at hop limit `hops`.
fn ra_ip(src: Ipv6Addr, lifetime: u16, options: &[u8], hops: u8) -> Vec<u8> {
    let mut rest = [64, 0, 0, 0];
    rest[2..].copy_from_slice(&lifetime.to_be_bytes());
    let mut body = vec![0u8; 8];
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&GW_MAC.0);
    body.extend_from_slice(options);
    icmp6_hops(src, all_nodes(), 134, 0, rest, &body, hops)
}

fn ra_frame(ip: &[u8]) -> Vec<u8> {
    eth(
        Mac::ipv6_multicast(&all_nodes()),
        GW_MAC,
        ETHERTYPE_IPV6,
        ip,
    )
}

/// The example configuration without `outside.gateway6`, and with the outside's
/// `ipv6` as given.
fn learning(outside_ipv6: &str) -> firmware_config::Config {
    let mut c = config();
    c.outside.gateway6 = None;
    c.outside.ipv6 = Some(outside_ipv6.parse().unwrap());
    c
}

/// A harness (neighbours taught with the example configuration) running `config`,
/// with the outside port's RAs bound.
fn harness(config: firmware_config::Config) -> Harness {
    let mut h = Harness::default();
    h.engine.reconfigure(&config);
    h.engine.bind_local(&[Binding::RouterAdverts(OUTSIDE)]);
    h
}

/// Delivered datagrams, in order.
fn deliveries(h: &mut Harness) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 2048];
    std::iter::from_fn(|| h.engine.pop_local(&mut buf).map(|d| buf[..d.len].to_vec())).collect()
}

/// A lan host's UDP datagram to a remote IPv6 address.
fn outbound6() -> Vec<u8> {
    udp6(host6(), 4000, remote6(), 53, b"query")
}

#[test]
fn rfc4861_6_1_2_a_valid_advertisement_reaches_the_bound_port_invalid_ones_are_dropped() {
    let mut h = harness(learning("2001:db8:ff::10/64"));
    let good = ra_ip(router(), 1800, &[], 255);
    assert_eq!(h.frame(OUTSIDE, ra_frame(&good)).verdict, Verdict::Consumed);
    assert_eq!(deliveries(&mut h), vec![good.clone()]);

    let forwarded = ra_ip(router(), 1800, &[], 254);
    let global = ra_ip("2001:db8:ff::1".parse().unwrap(), 1800, &[], 255);
    let mut bad_sum = good.clone();
    let last = bad_sum.len() - 1;
    bad_sum[last] ^= 1;
    // An option of length 0 (with the checksum made right) is invalid too.
    let zero_opt = ra_ip(router(), 1800, &[9, 0, 0, 0, 0, 0, 0, 0], 255);
    for (what, ip) in [
        ("hop limit 254", forwarded),
        ("global source", global),
        ("bad checksum", bad_sum),
        ("zero-length option", zero_opt),
    ] {
        let out = h.frame(OUTSIDE, ra_frame(&ip));
        assert_eq!(
            out.verdict,
            Verdict::Drop(DropReason::NdpMalformed),
            "{what}"
        );
    }
    assert!(deliveries(&mut h).is_empty());

    // The inside port takes no advertisement, nor does an unbound outside port.
    let inside = eth(
        Mac::ipv6_multicast(&all_nodes()),
        HOST_MAC,
        ETHERTYPE_IPV6,
        &good,
    );
    assert_eq!(
        h.frame(INSIDE, inside).verdict,
        Verdict::Drop(DropReason::RouterAdvertIgnored)
    );
    h.engine.bind_local(&[]);
    assert_eq!(
        h.frame(OUTSIDE, ra_frame(&good)).verdict,
        Verdict::Drop(DropReason::RouterAdvertIgnored)
    );
}

#[test]
fn rfc4861_6_3_4_the_learned_router_is_the_default_ipv6_route_until_lifetime_zero() {
    let mut h = harness(learning("2001:db8:ff::10/64"));
    let mut ac = Autoconf::new(
        BOX_WAN_MAC,
        Mode {
            router: true,
            slaac: false,
        },
        7,
        h.now,
    );
    assert_eq!(
        h.from_lan6(outbound6()).verdict,
        Verdict::Drop(DropReason::NoRoute),
        "no gateway6, no router yet"
    );
    let ra = ra_ip(router(), 1800, &[], 255);
    h.frame(OUTSIDE, ra_frame(&ra));
    for ip in deliveries(&mut h) {
        assert!(ac.receive(h.now, &ip));
    }
    assert_eq!(ac.router(), Some(router()));
    let lease = Lease6 {
        address: None,
        router: ac.router(),
    };
    assert!(h.engine.set_lease6(OUTSIDE, Some(lease)).rebuilt);
    assert!(
        !h.engine.set_lease6(OUTSIDE, Some(lease)).rebuilt,
        "the same router again changes nothing"
    );
    assert_eq!(
        h.engine.config().outside.gateway6,
        None,
        "the configuration stays as written"
    );
    assert_eq!(h.engine.effective_config().outside.gateway6, Some(router()));
    // The next advertisement's Source Link-Layer Address resolves the router at once
    // (section 6.3.4), so the outbound datagram leaves to its MAC.
    h.frame(OUTSIDE, ra_frame(&ra));
    let out = h.from_lan6(outbound6());
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    assert_eq!(out.frame[0..6], GW_MAC.0);

    // Router Lifetime 0: the router is removed at once.
    h.frame(OUTSIDE, ra_frame(&ra_ip(router(), 0, &[], 255)));
    for ip in deliveries(&mut h) {
        ac.receive(h.now, &ip);
    }
    assert_eq!(ac.router(), None);
    h.engine.set_lease6(
        OUTSIDE,
        Some(Lease6 {
            address: None,
            router: ac.router(),
        }),
    );
    assert_eq!(
        h.from_lan6(outbound6()).verdict,
        Verdict::Drop(DropReason::NoRoute)
    );
}

#[test]
fn rfc4861_6_3_4_a_router_expires_with_its_lifetime_and_solicitation_starts_again() {
    let mut ac = Autoconf::new(
        BOX_WAN_MAC,
        Mode {
            router: true,
            slaac: false,
        },
        1,
        0,
    );
    assert!(ac.receive(0, &ra_ip(router(), 30, &[], 255)));
    assert_eq!(ac.router(), Some(router()));
    assert_eq!(ac.poll_timeout(), Some(30_000));
    ac.handle_timeout(29_999);
    assert_eq!(ac.router(), Some(router()));
    ac.handle_timeout(30_000);
    assert_eq!(ac.router(), None);
    // A new round of solicitations starts within MAX_RTR_SOLICITATION_DELAY.
    let due = ac.poll_timeout().expect("a solicitation is due");
    assert!(due <= 30_000 + autoconf::MAX_RTR_SOLICITATION_DELAY_MS);
    ac.handle_timeout(due);
    assert_eq!(ac.poll_action(), Some(Action::SolicitRouters));
}

#[test]
fn rfc4861_6_3_4_hop_limit_link_local_and_checksum_are_checked_by_the_state_machine_too() {
    let mut ac = Autoconf::new(
        BOX_WAN_MAC,
        Mode {
            router: true,
            slaac: false,
        },
        1,
        0,
    );
    assert!(ac.receive(0, &ra_ip(router(), 1800, &[], 64)));
    assert!(ac.receive(0, &ra_ip("2001:db8::1".parse().unwrap(), 1800, &[], 255)));
    assert_eq!(ac.router(), None);
    let s = ac.snapshot(0);
    assert_eq!(s.counters.received, 2);
    assert_eq!(s.counters.ignored(autoconf::Ignored::HopLimit), 1);
    assert_eq!(s.counters.ignored(autoconf::Ignored::NotLinkLocal), 1);
    assert!(!ac.receive(0, &outbound6()), "not an RA at all");
}

#[test]
fn rfc4861_6_3_7_three_solicitations_four_seconds_apart_stopped_by_an_advertisement() {
    let mut ac = Autoconf::new(
        BOX_WAN_MAC,
        Mode {
            router: true,
            slaac: false,
        },
        3,
        0,
    );
    let first = ac.poll_timeout().expect("due");
    assert!(first <= autoconf::MAX_RTR_SOLICITATION_DELAY_MS);
    let mut sent = Vec::new();
    let mut now = 0;
    for _ in 0..10 {
        let Some(t) = ac.poll_timeout() else { break };
        now = t;
        ac.handle_timeout(now);
        while let Some(a) = ac.poll_action() {
            assert_eq!(a, Action::SolicitRouters);
            sent.push(now);
        }
    }
    assert_eq!(
        sent.len() as u32,
        autoconf::MAX_RTR_SOLICITATIONS,
        "bounded"
    );
    assert_eq!(sent[1] - sent[0], autoconf::RTR_SOLICITATION_INTERVAL_MS);
    assert_eq!(ac.poll_timeout(), None, "nothing more to do");
    // A round stopped early by an advertisement.
    let mut ac = Autoconf::new(
        BOX_WAN_MAC,
        Mode {
            router: true,
            slaac: false,
        },
        3,
        now,
    );
    ac.receive(now, &ra_ip(router(), 1800, &[], 255));
    assert_eq!(
        ac.poll_timeout(),
        Some(now + 1_800_000),
        "only the router's expiry"
    );
}

#[test]
fn rfc4861_6_3_7_the_router_solicitation_leaves_from_the_link_local_to_all_routers() {
    let mut h = harness(learning("2001:db8:ff::10/64"));
    assert_eq!(h.engine.solicit_routers(OUTSIDE), Ok(()));
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1);
    let (port, f) = &sent[0];
    assert_eq!(*port, OUTSIDE);
    assert_eq!(f[0..6], [0x33, 0x33, 0, 0, 0, 2]);
    assert_eq!(f[6..12], BOX_WAN_MAC.0);
    assert_eq!(f[21], 255, "hop limit");
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
    assert_eq!(src, h.engine.port_info(OUTSIDE).link_local);
    assert_eq!(f[38..54], "ff02::2".parse::<Ipv6Addr>().unwrap().octets());
    assert_eq!(f[54], 133);
    assert_eq!(
        &f[62..70],
        &[1, 1, 2, 0, 0, 0, 2, 1],
        "source link-layer address"
    );
    assert_checksums(f);
}

#[test]
fn rfc4862_5_4_2_the_dad_solicitation_is_from_the_unspecified_address_without_options() {
    let mut h = harness(learning("slaac"));
    let tentative: Ipv6Addr = "2001:db8:ff:0:0:ff:fe00:201".parse().unwrap();
    assert!(!h.engine.probe6(OUTSIDE, Some(tentative)));
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1);
    let f = &sent[0].1;
    assert_eq!(f[0..6], [0x33, 0x33, 0xff, 0x00, 0x02, 0x01]);
    assert_eq!(f[21], 255);
    assert_eq!(f[22..38], [0; 16], "source ::");
    assert_eq!(
        f[38..54],
        "ff02::1:ff00:201".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(f[54], 135);
    assert_eq!(f[62..78], tentative.octets());
    assert_eq!(f.len(), 14 + 40 + 24, "no link-layer option (RFC 4861 4.3)");
    assert_checksums(f);
    assert!(!h.engine.probe6(OUTSIDE, None), "nobody answered");
}

#[test]
fn rfc4862_5_4_4_an_advertisement_for_the_tentative_address_is_a_conflict() {
    let mut h = harness(learning("slaac"));
    let tentative: Ipv6Addr = "2001:db8:ff::99".parse().unwrap();
    h.engine.probe6(OUTSIDE, Some(tentative));
    let na = neighbor_advert(
        GW_MAC,
        tentative,
        Mac::ipv6_multicast(&all_nodes()),
        all_nodes(),
    );
    h.frame(OUTSIDE, na);
    assert!(h.engine.probe6(OUTSIDE, None));
}

#[test]
fn rfc4862_5_4_3_another_nodes_dad_solicitation_is_a_conflict_a_resolution_is_not() {
    let mut h = harness(learning("slaac"));
    let tentative: Ipv6Addr = "2001:db8:ff::99".parse().unwrap();
    h.engine.probe6(OUTSIDE, Some(tentative));
    // A solicitation with a real source is address resolution, not DAD.
    h.frame(
        OUTSIDE,
        neighbor_solicit(GW_MAC, "fe80::2:2".parse().unwrap(), tentative),
    );
    assert!(!h.engine.probe6(OUTSIDE, Some(tentative)));
    let mut dad = neighbor_solicit(GW_MAC, Ipv6Addr::UNSPECIFIED, tentative);
    // No link-layer option from ::, and the checksum made right for that.
    dad.truncate(dad.len() - 8);
    let ip = icmp6_hops(
        Ipv6Addr::UNSPECIFIED,
        "ff02::1:ff00:99".parse().unwrap(),
        135,
        0,
        [0; 4],
        &tentative.octets(),
        255,
    );
    dad[14..].copy_from_slice(&ip);
    h.frame(OUTSIDE, dad);
    assert!(h.engine.probe6(OUTSIDE, None));
}

/// The whole of RFC 4862 for one port, as the service runs it: an advertisement
/// with a /64 prefix forms a tentative address; its DAD solicitation goes out; a
/// second later nobody answered, the address is assigned, the engine takes it as the
/// port's: the box answers Neighbor Solicitations and pings for it, and the egress-only
/// filter works unchanged (an unsolicited datagram from outside to a lan host is still
/// dropped).
#[test]
fn rfc4862_5_5_3_and_5_4_an_autoconfigured_address_becomes_the_ports_after_dad() {
    let mut h = harness(learning("slaac"));
    let mut ac = Autoconf::new(
        BOX_WAN_MAC,
        Mode {
            router: true,
            slaac: true,
        },
        9,
        h.now,
    );
    h.frame(
        OUTSIDE,
        ra_frame(&ra_ip(
            router(),
            1800,
            &pio("2001:db8:ff::", 64, 86400, 14400),
            255,
        )),
    );
    for ip in deliveries(&mut h) {
        ac.receive(h.now, &ip);
    }
    let expected: Ipv6Addr = "2001:db8:ff:0:0:ff:fe00:201".parse().unwrap();
    assert_eq!(ac.poll_action(), Some(Action::DadProbe(expected)));
    assert_eq!(ac.address(), None, "tentative: not used");
    h.engine.probe6(OUTSIDE, Some(expected));
    assert_eq!(h.transmitted().len(), 1);
    h.now += 1000;
    ac.handle_timeout(h.now);
    assert_eq!(ac.poll_action(), Some(Action::DadVerdict(expected)));
    ac.dad_result(h.engine.probe6(OUTSIDE, None));
    let net = ac.address().expect("assigned");
    assert_eq!(net.to_string(), "2001:db8:ff::ff:fe00:201/64");
    assert_eq!(ac.snapshot(h.now).address_state(), Some("preferred"));
    h.engine.set_lease6(
        OUTSIDE,
        Some(Lease6 {
            address: Some(net),
            router: ac.router(),
        }),
    );
    assert_eq!(h.engine.port_info(OUTSIDE).ipv6, Some(net));
    let out = h.frame(OUTSIDE, neighbor_solicit(GW_MAC, router(), expected));
    assert!(
        matches!(out.verdict, Verdict::Reply(OUTSIDE)),
        "{:?}",
        out.verdict
    );
    let ping = echo6(router(), expected, 7, false);
    assert!(matches!(h.from_wan6(ping).verdict, Verdict::Reply(OUTSIDE)));
    let unsolicited = udp6(remote6(), 53, host6(), 4000, b"hello");
    assert_eq!(
        h.from_wan6(unsolicited).verdict,
        Verdict::Drop(DropReason::Unsolicited6)
    );
}

#[test]
fn rfc4862_5_4_5_a_duplicate_is_never_used_and_not_retried() {
    let mut ac = Autoconf::new(
        BOX_WAN_MAC,
        Mode {
            router: false,
            slaac: true,
        },
        9,
        0,
    );
    let ra = ra_ip(router(), 1800, &pio("2001:db8:ff::", 64, 600, 300), 255);
    ac.receive(0, &ra);
    let Some(Action::DadProbe(a)) = ac.poll_action() else {
        panic!("a DAD probe");
    };
    ac.handle_timeout(1000);
    assert_eq!(ac.poll_action(), Some(Action::DadVerdict(a)));
    ac.dad_result(true);
    assert_eq!(ac.address(), None);
    let s = ac.snapshot(1000);
    assert_eq!(s.address_state(), Some("duplicate"));
    assert_eq!(s.counters.duplicates, 1);
    ac.receive(2000, &ra);
    assert_eq!(
        ac.poll_action(),
        None,
        "no second detection of the same address"
    );
    assert_eq!(ac.router(), None, "router not learned in this mode");
}

#[test]
fn rfc4862_5_5_3_the_address_goes_when_its_valid_lifetime_ends() {
    let mut ac = Autoconf::new(
        BOX_WAN_MAC,
        Mode {
            router: false,
            slaac: true,
        },
        9,
        0,
    );
    ac.receive(
        0,
        &ra_ip(router(), 0, &pio("2001:db8:ff::", 64, 60, 30), 255),
    );
    while ac.poll_action().is_some() {}
    ac.handle_timeout(1000);
    ac.poll_action();
    ac.dad_result(false);
    assert!(ac.address().is_some());
    assert_eq!(ac.snapshot(31_000).address_state(), Some("deprecated"));
    ac.handle_timeout(59_999);
    assert!(ac.address().is_some(), "deprecated but valid: still used");
    ac.handle_timeout(60_000);
    assert_eq!(ac.address(), None);
}

#[test]
fn a_refused_prefix_is_named() {
    let mut ac = Autoconf::new(
        BOX_WAN_MAC,
        Mode {
            router: false,
            slaac: true,
        },
        9,
        0,
    );
    ac.receive(
        0,
        &ra_ip(router(), 0, &pio("2001:db8::", 48, 600, 300), 255),
    );
    let s = ac.snapshot(0);
    assert_eq!(s.counters.prefixes_refused, 1);
    let why = s.last_refusal.expect("a refusal").to_string();
    assert!(
        why.contains("2001:db8::/48") && why.contains("/64"),
        "{why}"
    );
}

#[test]
fn dhcp6_on_link_prefix_gives_a_leased_address_its_length_else_slash_128() {
    let mut ac = Autoconf::new(
        BOX_WAN_MAC,
        Mode {
            router: true,
            slaac: false,
        },
        9,
        0,
    );
    let leased: Ipv6Addr = "2001:db8:ff::1234".parse().unwrap();
    assert_eq!(ac.on_link_prefix(leased).prefix_len(), 128);
    ac.receive(
        0,
        &ra_ip(router(), 1800, &pio("2001:db8:ff::", 64, 600, 300), 255),
    );
    assert_eq!(
        ac.on_link_prefix(leased).to_string(),
        "2001:db8:ff::1234/64"
    );
}

#[test]
fn link_scope_multicast_leaves_to_the_group_mac_from_an_own_address_only() {
    let mut h = harness(learning("dhcp"));
    let ll = h.engine.port_info(OUTSIDE).link_local;
    let group: Ipv6Addr = "ff02::1:2".parse().unwrap();
    let solicit = udp6(ll, 546, group, 547, b"solicit");
    let now = h.now;
    assert_eq!(h.engine.multicast6(OUTSIDE, &solicit, now), Ok(()));
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1[0..6], [0x33, 0x33, 0, 1, 0, 2]);
    assert_eq!(&sent[0].1[14..], &solicit[..]);
    let global = udp6(ll, 546, remote6(), 547, b"x");
    assert_eq!(
        h.engine.multicast6(OUTSIDE, &global, now),
        Err(DropReason::NoRoute)
    );
    let foreign = udp6(host6(), 546, group, 547, b"x");
    assert_eq!(
        h.engine.multicast6(OUTSIDE, &foreign, now),
        Err(DropReason::NoRoute)
    );
}

#[test]
fn rfc8415_7_2_server_messages_to_the_link_local_address_reach_the_bound_client() {
    let mut h = harness(learning("dhcp"));
    let ll = h.engine.port_info(OUTSIDE).link_local;
    let reply = udp6(router(), 547, ll, 546, b"advertise");
    assert_eq!(
        h.from_wan6(reply.clone()).verdict,
        Verdict::Drop(DropReason::LocalUnsupported),
        "unbound"
    );
    h.engine.bind_local(&[Binding::Dhcp6Client(OUTSIDE)]);
    assert_eq!(h.from_wan6(reply.clone()).verdict, Verdict::Consumed);
    assert_eq!(deliveries(&mut h), vec![reply]);
    let other_port = udp6(router(), 547, ll, 547, b"x");
    assert_eq!(
        h.from_wan6(other_port).verdict,
        Verdict::Drop(DropReason::LocalUnsupported)
    );
}

/// The service asks for a DAD solicitation and then puts the router of the same
/// advertisement in force, which rebuilds the tables: the queued solicitation still
/// leaves (a rebuild drops parked frames, not frames ready to go), and the watch goes
/// on, so the answer is still a conflict.
#[test]
fn rfc4862_5_4_2_a_dad_solicitation_queued_before_a_rebuild_still_leaves() {
    let mut h = harness(learning("slaac"));
    let tentative: Ipv6Addr = "2001:db8:ff::99".parse().unwrap();
    h.engine.probe6(OUTSIDE, Some(tentative));
    let lease = Lease6 {
        address: None,
        router: Some(router()),
    };
    assert!(h.engine.set_lease6(OUTSIDE, Some(lease)).rebuilt);
    let sent = h.transmitted();
    assert_eq!(sent.len(), 1, "the solicitation");
    assert_eq!(sent[0].1[54], 135);
    let na = neighbor_advert(
        GW_MAC,
        tentative,
        Mac::ipv6_multicast(&all_nodes()),
        all_nodes(),
    );
    h.frame(OUTSIDE, na);
    assert!(h.engine.probe6(OUTSIDE, None));
}
