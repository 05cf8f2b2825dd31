//! Static port forwarding (issue 18 section 2, `[[forward]]`): inbound sessions to an
//! inside server, replies from the public port, the allow list, hairpinning (RFC 4787
//! REQ-9, RFC 5382 REQ-8), ICMP errors (RFC 5508 REQ-3), live removal, and the port
//! allocator never handing out a forwarded port.

mod support;
use natbox_core::engine::stats::DropReason;
use natbox_core::engine::Verdict;
use std::net::SocketAddrV4;
use support::*;

const FWD_OUT: Verdict = Verdict::Forward(OUTSIDE);
const FWD_IN: Verdict = Verdict::Forward(INSIDE);

/// Forward 0: TCP 8080 to HOST:80, from anywhere. Forward 1: UDP 5000-5009 to
/// HOST:6000-6009, from REMOTE only.
const FORWARDS: &str =
    "[[forward]]\nprotocol = \"tcp\"\nport = 8080\nto = \"10.10.0.2\"\nto_port = 80\n\
    [[forward]]\nprotocol = \"udp\"\nport = \"5000-5009\"\nto = \"10.10.0.2\"\nto_port = 6000\n\
    allow = [\"203.0.113.5/32\"]\n";

/// The example configuration with source NAT's ports moved above the forwards.
fn with_forwards(forwards: &str) -> firmware_config::Config {
    let text = example_toml().replace("[nat]\n", "[nat]\nport_min = 10000\n");
    firmware_config::from_toml(&format!("{text}\n{forwards}")).expect("valid forwards")
}

fn hits(h: &Harness) -> Vec<(u64, u64)> {
    let nat = h.engine.nat();
    nat.forward_hits()
        .iter()
        .map(|c| (c.hits, c.refused))
        .collect()
}

#[test]
fn issue18_tcp_forward_reaches_the_server_and_replies_leave_from_the_public_port() {
    let mut h = Harness::new(with_forwards(FORWARDS));
    let syn = h.from_wan(tcp4(sa(REMOTE, 5555), sa(PUBLIC, 8080), SYN, &[]));
    assert_eq!(syn.verdict, FWD_IN);
    assert_checksums(&syn.frame);
    assert_eq!(endpoints4(syn.ip()), (sa(REMOTE, 5555), sa(HOST, 80)));
    let reply = h.from_lan(tcp4(sa(HOST, 80), sa(REMOTE, 5555), SYN | ACK, &[]));
    assert_eq!(reply.verdict, FWD_OUT);
    assert_checksums(&reply.frame);
    assert_eq!(endpoints4(reply.ip()), (sa(PUBLIC, 8080), sa(REMOTE, 5555)));
    // A segment that opens nothing opens no session.
    let stray = h.from_wan(tcp4(sa(REMOTE2, 5555), sa(PUBLIC, 8080), ACK, &[]));
    assert_eq!(stray.verdict, Verdict::Drop(DropReason::TcpNoSession));
    assert_eq!(hits(&h), [(1, 0), (0, 0)]);
    // Not charged to the server's quotas: no host record.
    assert!(h.engine.nat().top_hosts(10).is_empty());
}

#[test]
fn issue18_udp_range_maps_one_to_one_and_the_allow_list_refuses_others() {
    let mut h = Harness::new(with_forwards(FORWARDS));
    let (verdict, seen) = {
        let out = h.from_wan(udp4(sa(REMOTE, 4000), sa(PUBLIC, 5003), b"hello"));
        (out.verdict, endpoints4(out.ip()))
    };
    assert_eq!(verdict, FWD_IN);
    assert_eq!(seen, (sa(REMOTE, 4000), sa(HOST, 6003)));
    let back = h.from_lan(udp4(sa(HOST, 6003), sa(REMOTE, 4000), b"world"));
    assert_eq!(back.verdict, FWD_OUT);
    assert_eq!(endpoints4(back.ip()), (sa(PUBLIC, 5003), sa(REMOTE, 4000)));
    let refused = h.from_wan(udp4(sa(REMOTE2, 4000), sa(PUBLIC, 5003), b"x"));
    assert_eq!(
        refused.verdict,
        Verdict::Drop(DropReason::ForwardSourceDenied)
    );
    assert_eq!(
        h.engine.stats().drops_for(DropReason::ForwardSourceDenied),
        1
    );
    assert_eq!(hits(&h), [(0, 0), (1, 1)]);
    // A port next to the range is no forward.
    let out = h.from_wan(udp4(sa(REMOTE, 4000), sa(PUBLIC, 5010), b"x"));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NoMapping));
}

/// RFC 4787 REQ-9 / RFC 5382 REQ-8: an inside host reaching the public address and
/// port reaches the server, which sees the client's external endpoint, and the
/// server's answer returns through the box to the client.
#[test]
fn rfc5382_req8_hairpinning_through_a_forward() {
    let mut h = Harness::new(with_forwards(FORWARDS));
    let out = h.from_lan(tcp4(sa(HOST2, 7000), sa(PUBLIC, 8080), SYN, &[]));
    assert_eq!(out.verdict, FWD_IN);
    assert_checksums(&out.frame);
    assert_eq!(&out.frame[0..6], &HOST_MAC.0, "delivered to the server");
    let (client, server) = endpoints4(out.ip());
    assert_eq!(server, sa(HOST, 80));
    assert_eq!(
        *client.ip(),
        PUBLIC,
        "the server sees the client's public address"
    );
    let back = h.from_lan(tcp4(server, client, SYN | ACK, &[]));
    assert_eq!(back.verdict, FWD_IN);
    assert_checksums(&back.frame);
    assert_eq!(&back.frame[0..6], &HOST2_MAC.0);
    assert_eq!(
        endpoints4(back.ip()),
        (sa(PUBLIC, 8080), sa(HOST2, 7000)),
        "the client sees the public address and port it asked for"
    );
    assert_eq!(h.engine.stats().hairpinned, 2);
}

/// RFC 5508 REQ-3: an ICMP error about a forwarded session's reply is translated to
/// the server, its quote restored.
#[test]
fn rfc5508_req3_icmp_error_about_a_forwarded_session() {
    let mut h = Harness::new(with_forwards(FORWARDS));
    assert_eq!(
        h.from_wan(udp4(sa(REMOTE, 4000), sa(PUBLIC, 5001), b"q"))
            .verdict,
        FWD_IN
    );
    let original = udp4(sa(HOST, 6001), sa(REMOTE, 4000), b"answer");
    let sent = h.from_lan(original.clone());
    assert_eq!(sent.verdict, FWD_OUT);
    let err = icmp4_error(REMOTE, PUBLIC, (3, 3), sent.ip());
    let out = h.from_wan(err);
    assert_eq!(out.verdict, FWD_IN);
    assert_eq!(addrs4(out.ip()), (REMOTE, HOST));
    let (_, _, _, quoted) = icmp_error_parts(out.ip());
    assert_quoted_checksums(quoted);
    assert_eq!(endpoints4(quoted), (sa(HOST, 6001), sa(REMOTE, 4000)));
}

#[test]
fn issue18_removing_a_forward_by_commit_ends_its_sessions() {
    let mut h = Harness::new(with_forwards(FORWARDS));
    assert_eq!(
        h.from_wan(tcp4(sa(REMOTE, 5555), sa(PUBLIC, 8080), SYN, &[]))
            .verdict,
        FWD_IN
    );
    assert_eq!(
        h.from_wan(udp4(sa(REMOTE, 4000), sa(PUBLIC, 5000), b"q"))
            .verdict,
        FWD_IN
    );
    let only_udp = FORWARDS.split("[[forward]]").nth(2).unwrap();
    let done = h
        .engine
        .reconfigure(&with_forwards(&format!("[[forward]]{only_udp}")));
    assert!(!done.rebuilt);
    assert_eq!(done.ended, 1, "the TCP forward's session ended");
    let sessions: Vec<SocketAddrV4> = h.engine.nat().sessions(0).map(|s| s.inside).collect();
    assert_eq!(sessions, [sa(HOST, 6000)]);
    assert_eq!(hits(&h), [(1, 0)], "the kept forward keeps its count");
    let syn = h.from_wan(tcp4(sa(REMOTE, 5556), sa(PUBLIC, 8080), SYN, &[]));
    assert_eq!(syn.verdict, Verdict::Drop(DropReason::NoMapping));
}

/// Defence behind the validation: a forward inside source NAT's range (a
/// configuration `validate` refuses, given to the engine directly) is never handed
/// out to an inside host.
#[test]
fn issue18_the_allocator_never_hands_out_a_forwarded_port() {
    let mut config = with_forwards(FORWARDS);
    config.nat.port_min = 1;
    assert!(firmware_config::validate(&config).is_err());
    let mut h = Harness::new(config);
    let ext = h.from_lan(udp4(sa(HOST2, 5004), sa(REMOTE, 53), b"q"));
    assert_eq!(ext.verdict, FWD_OUT);
    let (from, _) = endpoints4(ext.ip());
    assert!(
        !(5000..=5009).contains(&from.port()),
        "got forwarded port {from}"
    );
    // The forward still works.
    let out = h.from_wan(udp4(sa(REMOTE, 4000), sa(PUBLIC, 5004), b"x"));
    assert_eq!(out.verdict, FWD_IN);
    assert_eq!(endpoints4(out.ip()).1, sa(HOST, 6004));
}

/// A forward's remote is a client of the inside server, not a destination of the
/// inside hosts: its sessions' bytes are not credited to the per-destination SLIs
/// (nor are its sessions counted there).
#[test]
fn issue18_forwarded_sessions_are_no_destination_traffic() {
    let text = format!("{FORWARDS}\n[flow_log]\nipfix = \"198.51.100.1:4739\"\ninterval = 10\n");
    let mut h = Harness::new(with_forwards(&text));
    let syn = h.from_wan(tcp4(sa(REMOTE, 5555), sa(PUBLIC, 8080), SYN, &[]));
    assert_eq!(syn.verdict, FWD_IN);
    let reply = h.from_lan(tcp4(sa(HOST, 80), sa(REMOTE, 5555), SYN | ACK, &[]));
    assert_eq!(reply.verdict, FWD_OUT);
    // Its interim record is made (every 10 s, swept within 1.6 s of it).
    h.advance_secs(12);
    let records = match h.engine.answer(
        &natbox_core::engine::control::Request::Flows { max: 10 },
        h.now,
    ) {
        natbox_core::engine::control::Answer::Flows(b) => b.records,
        other => panic!("{other:?}"),
    };
    assert_eq!(records.len(), 1, "{records:?}");
    let r = h.engine.nat().destinations();
    assert!(r.bytes);
    assert_eq!(
        (r.summary.total.bytes_in, r.summary.total.bytes_out),
        (0, 0)
    );
    assert_eq!(r.summary.total.sessions, 0);
}
