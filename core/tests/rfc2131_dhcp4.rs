//! RFC behaviour tests for the DHCPv4 client (`natbox_core::dhcp4`): RFC 2131 (the
//! exchanges, retransmission, the lease timers), RFC 2132 (options), RFC 3442
//! (classless static routes) and RFC 5227 (the probe before use). A small fake server
//! answers the client's requests with messages built by dhcproto.

use dhcproto::v4::{
    DhcpOption, DhcpOptions, Message, MessageType, Opcode, OptionCode, UnknownOption,
};
use dhcproto::{Decodable, Encodable};
use natbox_core::dhcp4::{
    Client, Destination, Event, Ignored, Lease, LeaseError, Route, RouteEncoding, State, Transmit,
    DECLINE_WAIT_MS, REQUEST_TRIES,
};
use proptest::prelude::*;
use std::net::Ipv4Addr;

const MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const OTHER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
const LEASE_S: u32 = 3600;
const S: u64 = 1000;

// ---- the fake server ----

/// The options of a sane OFFER/ACK: /24, router, one hour, DNS, MTU 1500.
fn sane() -> DhcpOptions {
    let mut o = DhcpOptions::new();
    o.insert(DhcpOption::ServerIdentifier(SERVER));
    o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
    o.insert(DhcpOption::Router(vec![SERVER]));
    o.insert(DhcpOption::AddressLeaseTime(LEASE_S));
    o.insert(DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
        192, 0, 2, 53,
    )]));
    o.insert(DhcpOption::InterfaceMtu(1500));
    o
}

/// `sane()` with `changes` put in (an option of the same code is replaced).
fn sane_with(changes: &[DhcpOption]) -> DhcpOptions {
    let mut o = sane();
    for c in changes {
        o.insert(c.clone());
    }
    o
}

fn decode(t: &Transmit) -> Message {
    Message::from_bytes(&t.payload).expect("the client's message decodes")
}

/// The server's `kind` answer to the request `req`, for `yiaddr`, with `opts`.
fn answer(req: &Transmit, kind: MessageType, yiaddr: Ipv4Addr, opts: &DhcpOptions) -> Vec<u8> {
    let req = decode(req);
    let mut m = Message::new_with_id(
        req.xid(),
        Ipv4Addr::UNSPECIFIED,
        yiaddr,
        SERVER,
        Ipv4Addr::UNSPECIFIED,
        req.chaddr(),
    );
    m.set_opcode(Opcode::BootReply);
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    for (_, opt) in opts.iter() {
        o.insert(opt.clone());
    }
    m.to_vec().unwrap()
}

fn nak(req: &Transmit) -> Vec<u8> {
    let mut o = DhcpOptions::new();
    o.insert(DhcpOption::ServerIdentifier(SERVER));
    answer(req, MessageType::Nak, Ipv4Addr::UNSPECIFIED, &o)
}

// ---- driving the client ----

fn sent(c: &mut Client) -> Vec<Transmit> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

fn events(c: &mut Client) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// The one message the client queued.
fn one(c: &mut Client) -> Transmit {
    let mut t = sent(c);
    assert_eq!(t.len(), 1, "expected exactly one message: {t:?}");
    t.pop().unwrap()
}

fn kind(t: &Transmit) -> MessageType {
    decode(t).opts().msg_type().unwrap()
}

fn opt(t: &Transmit, code: OptionCode) -> Option<DhcpOption> {
    decode(t).opts().get(code).cloned()
}

/// A client at `now` with its DISCOVER sent.
fn selecting(seed: u64, now: u64) -> (Client, Transmit) {
    let mut c = Client::new(MAC, seed, now);
    assert_eq!(c.poll_timeout(), Some(now));
    c.handle_timeout(now);
    assert_eq!(c.state(), State::Selecting);
    let discover = one(&mut c);
    (c, discover)
}

/// DISCOVER, OFFER, REQUEST at `now`; returns the REQUEST.
fn requesting(c: &mut Client, discover: &Transmit, now: u64, opts: &DhcpOptions) -> Transmit {
    let offer = answer(discover, MessageType::Offer, ADDR, opts);
    assert_eq!(c.handle_reply(now, &offer), Ok(()));
    assert_eq!(c.state(), State::Requesting);
    one(c)
}

/// A full DORA and a clean probe at `now`, the ACK carrying `ack`: the lease.
fn bound_with(c: &mut Client, now: u64, ack: &DhcpOptions) -> Lease {
    let discover = one_discover(c, now);
    let request = requesting(c, &discover, now, &sane());
    assert_eq!(
        c.handle_reply(now, &answer(&request, MessageType::Ack, ADDR, ack)),
        Ok(())
    );
    assert_eq!(events(c), [Event::Probe { address: ADDR }]);
    assert!(c.probe_result(now, false));
    let [Event::Bound(lease)] = &events(c)[..] else {
        panic!("expected Bound")
    };
    assert_eq!(c.state(), State::Bound);
    lease.clone()
}

fn one_discover(c: &mut Client, now: u64) -> Transmit {
    c.handle_timeout(now);
    let d = one(c);
    assert_eq!(kind(&d), MessageType::Discover);
    d
}

fn bound(seed: u64) -> (Client, Lease) {
    let mut c = Client::new(MAC, seed, 0);
    let lease = bound_with(&mut c, 0, &sane());
    (c, lease)
}

fn assert_within_jitter(delay: u64, base_s: u64) {
    assert!(
        (base_s * S - S..=base_s * S + S).contains(&delay),
        "delay {delay} ms not {base_s} s ± 1 s"
    );
}

// ---- RFC 2131 ----

#[test]
fn rfc2131_3_1_dora_reaches_bound_with_the_lease_fields() {
    let (mut c, discover) = selecting(1, 0);
    assert_eq!((discover.to, discover.from), (Destination::Broadcast, None));
    let d = decode(&discover);
    assert_eq!(d.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        opt(&discover, OptionCode::ClientIdentifier),
        Some(DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 2, 1]))
    );
    let Some(DhcpOption::ParameterRequestList(prl)) =
        opt(&discover, OptionCode::ParameterRequestList)
    else {
        panic!("no parameter request list")
    };
    let prl: Vec<u8> = prl.into_iter().map(u8::from).collect();
    assert_eq!(prl, [1, 3, 6, 26, 51, 54, 58, 59, 121]);

    let request = requesting(&mut c, &discover, 500, &sane());
    let r = decode(&request);
    assert_eq!(kind(&request), MessageType::Request);
    assert_eq!(
        r.xid(),
        d.xid(),
        "RFC 2131 4.4.1: the REQUEST keeps the OFFER's xid"
    );
    assert_eq!((request.to, request.from), (Destination::Broadcast, None));
    assert_eq!(
        opt(&request, OptionCode::RequestedIpAddress),
        Some(DhcpOption::RequestedIpAddress(ADDR))
    );
    assert_eq!(
        opt(&request, OptionCode::ServerIdentifier),
        Some(DhcpOption::ServerIdentifier(SERVER))
    );

    let ack = answer(&request, MessageType::Ack, ADDR, &sane());
    assert_eq!(c.handle_reply(900, &ack), Ok(()));
    assert_eq!(c.state(), State::Probing);
    assert_eq!(events(&mut c), [Event::Probe { address: ADDR }]);
    assert_eq!(
        c.poll_timeout(),
        None,
        "the driver's probe answer drives PROBING"
    );
    assert!(c.probe_result(5_000, false));
    let [Event::Bound(lease)] = &events(&mut c)[..] else {
        panic!("expected Bound")
    };
    assert_eq!(lease.address, "192.0.2.10/24".parse().unwrap());
    assert_eq!(lease.server, SERVER);
    assert_eq!(lease.gateway(), Some(SERVER));
    assert_eq!(lease.mtu, Some(1500));
    assert_eq!(lease.dns, [Ipv4Addr::new(192, 0, 2, 53)]);
    // RFC 2131 4.4.1: the lease runs from the REQUEST's transmission (500 ms).
    let snap = c.snapshot(5_000);
    assert_eq!(snap.state, State::Bound);
    assert_eq!(snap.server, Some(SERVER));
    assert_eq!(snap.lease.as_ref(), Some(lease));
    assert_eq!(snap.lease_left_ms, Some(500 + 3_600_000 - 5_000));
    assert_eq!(snap.t1_left_ms, Some(500 + 1_800_000 - 5_000));
    assert_eq!(snap.t2_left_ms, Some(500 + 3_150_000 - 5_000));
    assert_eq!((snap.counters.sent, snap.counters.received), (2, 2));
    assert_eq!(c.poll_timeout(), Some(500 + 1_800_000));
}

#[test]
fn rfc2131_4_1_discover_retransmission_4_8_16_32_64_capped_with_jitter() {
    for seed in 0..20 {
        let (mut c, first) = selecting(seed, 1_000);
        let xid = decode(&first).xid();
        let mut last = 1_000;
        for base in [4, 8, 16, 32, 64, 64, 64] {
            let at = c.poll_timeout().unwrap();
            assert_within_jitter(at - last, base);
            c.handle_timeout(at - 1);
            assert!(sent(&mut c).is_empty(), "nothing before the deadline");
            c.handle_timeout(at);
            let again = one(&mut c);
            assert_eq!(kind(&again), MessageType::Discover);
            assert_eq!(decode(&again).xid(), xid, "retransmissions keep the xid");
            assert_eq!(u64::from(decode(&again).secs()), (at - 1_000) / S);
            last = at;
        }
    }
}

#[test]
fn rfc2131_4_1_jitter_is_spread_over_the_whole_second_each_way() {
    let delays: Vec<u64> = (0..200)
        .map(|seed| selecting(seed, 0).0.poll_timeout().unwrap())
        .collect();
    assert!(delays.iter().any(|&d| d < 3_500));
    assert!(delays.iter().any(|&d| d > 4_500));
}

#[test]
fn rfc2131_4_4_1_requesting_gives_up_after_the_retransmissions_and_restarts() {
    let (mut c, discover) = selecting(3, 0);
    requesting(&mut c, &discover, 0, &sane());
    for _ in 1..REQUEST_TRIES {
        let at = c.poll_timeout().unwrap();
        c.handle_timeout(at);
        assert_eq!(kind(&one(&mut c)), MessageType::Request);
        assert_eq!(c.state(), State::Requesting);
    }
    let at = c.poll_timeout().unwrap();
    c.handle_timeout(at);
    assert_eq!(c.state(), State::Init);
    assert!(sent(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), Some(at));
    c.handle_timeout(at);
    assert_eq!(kind(&one(&mut c)), MessageType::Discover);
}

#[test]
fn rfc2131_4_4_1_lease_starts_when_the_request_was_sent_not_at_the_discover() {
    let (mut c, discover) = selecting(4, 0);
    // Nobody answers the first DISCOVERs; the OFFER comes 100 s later.
    let request = requesting(&mut c, &discover, 100 * S, &sane());
    let ack = answer(&request, MessageType::Ack, ADDR, &sane());
    c.handle_reply(101 * S, &ack).unwrap();
    c.probe_result(106 * S, false);
    assert_eq!(c.poll_timeout(), Some(100 * S + 1_800 * S));
}

#[test]
fn rfc2131_4_4_5_renewing_at_t1_unicast_with_ciaddr_then_rebinding_at_t2_then_expiry() {
    let (mut c, lease) = bound(5);
    let t1 = 1_800 * S;
    let t2 = 3_150 * S;
    let expiry = 3_600 * S;
    assert_eq!(c.poll_timeout(), Some(t1));
    c.handle_timeout(t1 - 1);
    assert_eq!(c.state(), State::Bound);
    c.handle_timeout(t1);
    assert_eq!(c.state(), State::Renewing);
    let renew = one(&mut c);
    assert_eq!(kind(&renew), MessageType::Request);
    assert_eq!(renew.to, Destination::Unicast(SERVER));
    assert_eq!(renew.from, Some(ADDR));
    assert_eq!(decode(&renew).ciaddr(), ADDR);
    // Table 5: RENEWING's REQUEST carries neither a requested address nor a server id.
    assert_eq!(opt(&renew, OptionCode::RequestedIpAddress), None);
    assert_eq!(opt(&renew, OptionCode::ServerIdentifier), None);
    // Retransmission at half the time left to T2 (675 s), not before.
    assert_eq!(c.poll_timeout(), Some(t1 + (t2 - t1) / 2));
    c.handle_timeout(t1 + (t2 - t1) / 2);
    assert_eq!(decode(&one(&mut c)).xid(), decode(&renew).xid());
    // Then half of 675 s, then the 60 s minimum, capped by T2.
    let next = c.poll_timeout().unwrap();
    assert_eq!(next, t1 + (t2 - t1) / 2 + (t2 - t1) / 4);
    c.handle_timeout(next);
    one(&mut c);
    let next = c.poll_timeout().unwrap();
    c.handle_timeout(next);
    one(&mut c);
    assert_eq!(
        c.poll_timeout().unwrap() - next,
        84_375,
        "half of 168.75 s left"
    );
    // T2: REBINDING, broadcast, still from our address with ciaddr.
    c.handle_timeout(t2);
    assert_eq!(c.state(), State::Rebinding);
    let rebind = one(&mut c);
    assert_eq!(
        (rebind.to, rebind.from),
        (Destination::Broadcast, Some(ADDR))
    );
    assert_eq!(decode(&rebind).ciaddr(), ADDR);
    assert_ne!(decode(&rebind).xid(), decode(&renew).xid());
    assert_eq!(c.poll_timeout(), Some(t2 + 225 * S));
    c.handle_timeout(t2 + 225 * S);
    one(&mut c);
    // 225 s left: half is 112.5 s; then 60 s, the minimum, over half of 112.5 s.
    let next = t2 + 225 * S + 112_500;
    assert_eq!(c.poll_timeout(), Some(next));
    c.handle_timeout(next);
    one(&mut c);
    assert_eq!(c.poll_timeout(), Some(next + 60 * S));
    c.handle_timeout(next + 60 * S);
    one(&mut c);
    // 52.5 s left: the 60 s retransmission would land past expiry; expiry comes first.
    assert_eq!(c.poll_timeout(), Some(expiry));
    // Expiry: Lost, INIT, and the DISCOVER is due at once.
    assert!(events(&mut c).is_empty());
    c.handle_timeout(expiry);
    assert_eq!(events(&mut c), [Event::Lost { old: lease }]);
    assert_eq!(c.state(), State::Init);
    assert!(sent(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), Some(expiry));
    c.handle_timeout(expiry);
    assert_eq!(kind(&one(&mut c)), MessageType::Discover);
    assert_eq!(c.snapshot(expiry).lease, None);
}

#[test]
fn rfc2131_4_4_5_a_clock_jump_past_expiry_is_lost_without_a_renewal() {
    let (mut c, lease) = bound(6);
    c.handle_timeout(10_000 * S);
    assert_eq!(events(&mut c), [Event::Lost { old: lease }]);
    assert!(sent(&mut c).is_empty());
    assert_eq!(c.state(), State::Init);
}

#[test]
fn rfc2131_4_4_5_t1_t2_default_to_half_and_seven_eighths_when_absent_or_inconsistent() {
    let mut c = Client::new(MAC, 7, 0);
    bound_with(&mut c, 0, &sane_with(&[DhcpOption::AddressLeaseTime(1000)]));
    assert_eq!(c.snapshot(0).t1_left_ms, Some(500 * S));
    assert_eq!(c.snapshot(0).t2_left_ms, Some(875 * S));

    let mut c = Client::new(MAC, 7, 0);
    let given = [
        DhcpOption::AddressLeaseTime(1000),
        DhcpOption::Renewal(100),
        DhcpOption::Rebinding(200),
    ];
    bound_with(&mut c, 0, &sane_with(&given));
    assert_eq!(c.snapshot(0).t1_left_ms, Some(100 * S));
    assert_eq!(c.snapshot(0).t2_left_ms, Some(200 * S));

    // T1 after T2: both defaults.
    let mut c = Client::new(MAC, 7, 0);
    let bad = [
        DhcpOption::AddressLeaseTime(1000),
        DhcpOption::Renewal(300),
        DhcpOption::Rebinding(200),
    ];
    bound_with(&mut c, 0, &sane_with(&bad));
    assert_eq!(c.snapshot(0).t1_left_ms, Some(500 * S));
    assert_eq!(c.snapshot(0).t2_left_ms, Some(875 * S));
}

#[test]
fn rfc2131_3_3_an_infinite_lease_never_renews() {
    let mut c = Client::new(MAC, 8, 0);
    let lease = bound_with(
        &mut c,
        0,
        &sane_with(&[DhcpOption::AddressLeaseTime(u32::MAX)]),
    );
    assert_eq!(lease.times, None);
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(u64::MAX / 2);
    assert_eq!(c.state(), State::Bound);
    assert_eq!(c.snapshot(0).lease_left_ms, None);
}

#[test]
fn rfc2131_4_4_5_renewal_ack_with_the_same_address_is_renewed_not_changed() {
    let (mut c, _) = bound(9);
    c.handle_timeout(1_800 * S);
    let renew = one(&mut c);
    let ack = answer(
        &renew,
        MessageType::Ack,
        ADDR,
        &sane_with(&[DhcpOption::InterfaceMtu(1400)]),
    );
    assert_eq!(c.handle_reply(1_801 * S, &ack), Ok(()));
    let [Event::Renewed(lease)] = &events(&mut c)[..] else {
        panic!("expected Renewed only")
    };
    assert_eq!(lease.mtu, Some(1400), "options of the renewal are in force");
    assert_eq!(c.state(), State::Bound);
    // The new lease runs from the renewal REQUEST (1800 s).
    assert_eq!(c.poll_timeout(), Some(1_800 * S + 1_800 * S));
}

/// RFC 2131 section 4.4.5 with a server that ignores unicast: the renewal at T1 goes
/// unanswered, the client rebinds by broadcast at T2 and any server's ACK extends the
/// lease; the next renewal is answered. Each is counted, and the address never
/// changes (nothing for the driver to apply but `Renewed`).
#[test]
fn rfc2131_4_4_5_an_unanswered_renewal_rebinds_at_t2_and_both_are_counted() {
    let (mut c, _) = bound(11);
    c.handle_timeout(1_800 * S);
    assert_eq!(one(&mut c).to, Destination::Unicast(SERVER));
    // RENEWING retransmits after half the time left to T2; nothing comes back.
    c.handle_timeout(c.poll_timeout().unwrap());
    assert_eq!(one(&mut c).to, Destination::Unicast(SERVER));
    c.handle_timeout(3_150 * S);
    assert_eq!(c.state(), State::Rebinding);
    let rebind = one(&mut c);
    assert_eq!(
        (rebind.to, rebind.from),
        (Destination::Broadcast, Some(ADDR))
    );
    let ack = answer(&rebind, MessageType::Ack, ADDR, &sane());
    assert_eq!(c.handle_reply(3_151 * S, &ack), Ok(()));
    assert!(matches!(&events(&mut c)[..], [Event::Renewed(_)]));
    assert_eq!(c.state(), State::Bound);
    let counted = |c: &Client| {
        let n = c.snapshot(0).counters;
        (n.renewals, n.rebinds)
    };
    assert_eq!(counted(&c), (0, 1));
    c.handle_timeout(3_150 * S + 1_800 * S);
    let renew = one(&mut c);
    assert_eq!(renew.to, Destination::Unicast(SERVER));
    c.handle_reply(
        3_150 * S + 1_801 * S,
        &answer(&renew, MessageType::Ack, ADDR, &sane()),
    )
    .unwrap();
    assert_eq!(counted(&c), (1, 1));
    assert_eq!(
        c.snapshot(0).unbound_ms,
        None,
        "a lease was in force throughout"
    );
}

/// RFC 2131 section 4.1: a client nobody answers keeps asking forever, DISCOVERs at
/// most 65 s apart, and says how long it has been without a lease and that no server
/// answered; an OFFER is an answer; a lease ends the wait, and losing it (a NAK while
/// renewing) starts a new one.
#[test]
fn rfc2131_4_1_without_an_answer_the_client_keeps_asking_and_says_for_how_long() {
    let (mut c, first) = selecting(12, 5 * S);
    let mut last = 5 * S;
    for _ in 0..30 {
        let at = c.poll_timeout().unwrap();
        assert!(at - last <= 65 * S, "{} ms between DISCOVERs", at - last);
        c.handle_timeout(at);
        assert_eq!(kind(&one(&mut c)), MessageType::Discover);
        last = at;
    }
    assert!(last > 20 * 60 * S, "still asking after 20 minutes");
    let snap = c.snapshot(last);
    assert_eq!(
        (snap.unbound_ms, snap.answered),
        (Some(last - 5 * S), false)
    );
    assert_eq!(snap.state, State::Selecting);

    // A refused OFFER is an answer too: the server is there, its offer is not usable.
    let bad = answer(
        &first,
        MessageType::Offer,
        ADDR,
        &sane_with(&[DhcpOption::AddressLeaseTime(0)]),
    );
    assert_eq!(c.handle_reply(last, &bad), Err(Ignored::BadLease));
    assert!(c.snapshot(last).answered);
    let request = requesting(&mut c, &first, last, &sane());
    c.handle_reply(last, &answer(&request, MessageType::Ack, ADDR, &sane()))
        .unwrap();
    assert_eq!(
        c.snapshot(last).unbound_ms,
        Some(last - 5 * S),
        "probing: no lease yet"
    );
    assert!(c.probe_result(last + 2 * S, false));
    assert_eq!(c.snapshot(last + 2 * S).unbound_ms, None);

    let t1 = last + 1_800 * S;
    c.handle_timeout(t1);
    let renew = one(&mut c);
    c.handle_reply(t1 + S, &nak(&renew)).unwrap();
    let snap = c.snapshot(t1 + 10 * S);
    assert_eq!((snap.unbound_ms, snap.answered), (Some(9 * S), false));
}

/// RFC 2132 section 2: a reply with our hardware address whose options run past its
/// end is refused whole and counted, and the client goes on selecting; it is not read
/// as a reply without its later options (dhcproto's iterator stops there silently).
#[test]
fn rfc2132_2_a_reply_with_truncated_options_is_refused_and_counted() {
    let (mut c, discover) = selecting(13, 0);
    let mut offer = answer(&discover, MessageType::Offer, ADDR, &sane());
    let end = offer.iter().rposition(|&b| b == 255).unwrap();
    offer.truncate(end);
    offer.extend_from_slice(&[121, 9, 0, 10, 0]);
    assert_eq!(c.handle_reply(S, &offer), Err(Ignored::TruncatedOptions));
    assert_eq!(c.snapshot(S).counters.ignored(Ignored::TruncatedOptions), 1);
    assert_eq!(c.state(), State::Selecting);
    requesting(&mut c, &discover, 2 * S, &sane());
}

#[test]
fn rfc2131_4_4_5_rebind_ack_with_a_new_address_is_address_changed() {
    let (mut c, old) = bound(10);
    c.handle_timeout(3_150 * S);
    assert_eq!(c.state(), State::Rebinding);
    let rebind = one(&mut c);
    let ack = answer(&rebind, MessageType::Ack, OTHER_ADDR, &sane());
    assert_eq!(c.handle_reply(3_151 * S, &ack), Ok(()));
    // RFC 5227 2.1: the new address is probed first; the old one stays in force.
    assert_eq!(
        events(&mut c),
        [Event::Probe {
            address: OTHER_ADDR
        }]
    );
    assert_eq!(c.state(), State::Probing);
    assert_eq!(c.snapshot(3_151 * S).lease, Some(old.clone()));
    assert!(c.probe_result(3_152 * S, false));
    let [Event::AddressChanged { old: o, new }] = &events(&mut c)[..] else {
        panic!("expected AddressChanged")
    };
    assert_eq!(o, &old);
    assert_eq!(new.address.addr(), OTHER_ADDR);
    assert_eq!(c.state(), State::Bound);
    assert_eq!(
        c.snapshot(3_152 * S).lease.unwrap().address.addr(),
        OTHER_ADDR
    );
    // The new lease runs from the REBINDING request (3150 s).
    assert_eq!(c.poll_timeout(), Some(3_150 * S + 1_800 * S));
}

#[test]
fn rfc5227_2_1_a_renewal_address_in_use_is_declined_and_the_old_lease_lost() {
    let (mut c, old) = bound(22);
    c.handle_timeout(1_800 * S);
    let renew = one(&mut c);
    c.handle_reply(
        1_801 * S,
        &answer(&renew, MessageType::Ack, OTHER_ADDR, &sane()),
    )
    .unwrap();
    assert_eq!(
        events(&mut c),
        [Event::Probe {
            address: OTHER_ADDR
        }]
    );
    assert!(c.probe_result(1_802 * S, true));
    assert_eq!(events(&mut c), [Event::Lost { old }]);
    let decline = one(&mut c);
    assert_eq!(kind(&decline), MessageType::Decline);
    assert_eq!(
        opt(&decline, OptionCode::RequestedIpAddress),
        Some(DhcpOption::RequestedIpAddress(OTHER_ADDR))
    );
    assert_eq!(c.state(), State::Init);
    assert_eq!(c.poll_timeout(), Some(1_802 * S + DECLINE_WAIT_MS));
}

#[test]
fn rfc2131_4_4_1_nak_in_requesting_restarts_at_init() {
    let (mut c, discover) = selecting(11, 0);
    let request = requesting(&mut c, &discover, 0, &sane());
    assert_eq!(c.handle_reply(S, &nak(&request)), Ok(()));
    assert_eq!(c.state(), State::Init);
    assert_eq!(c.snapshot(S).counters.naks, 1);
    assert!(events(&mut c).is_empty(), "no lease was held: nothing lost");
    c.handle_timeout(S);
    let again = one(&mut c);
    assert_eq!(kind(&again), MessageType::Discover);
    assert_ne!(decode(&again).xid(), decode(&discover).xid());
}

#[test]
fn rfc2131_4_4_5_nak_in_renewing_loses_the_lease() {
    let (mut c, lease) = bound(12);
    c.handle_timeout(1_800 * S);
    let renew = one(&mut c);
    assert_eq!(c.handle_reply(1_801 * S, &nak(&renew)), Ok(()));
    assert_eq!(events(&mut c), [Event::Lost { old: lease }]);
    assert_eq!(c.state(), State::Init);
}

#[test]
fn rfc2131_4_4_1_a_nak_from_another_server_is_ignored() {
    let (mut c, discover) = selecting(13, 0);
    let request = requesting(&mut c, &discover, 0, &sane());
    let mut o = DhcpOptions::new();
    o.insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 0, 2, 99)));
    let foreign = answer(&request, MessageType::Nak, Ipv4Addr::UNSPECIFIED, &o);
    assert_eq!(c.handle_reply(S, &foreign), Err(Ignored::ForeignNak));
    assert_eq!(c.state(), State::Requesting);
    assert_eq!(c.snapshot(S).counters.naks, 0);
}

#[test]
fn rfc2131_4_1_replies_with_a_wrong_xid_or_chaddr_are_ignored_and_counted() {
    let (mut c, discover) = selecting(14, 0);
    let mut wrong_xid = answer(&discover, MessageType::Offer, ADDR, &sane());
    wrong_xid[4] ^= 0xff;
    assert_eq!(c.handle_reply(S, &wrong_xid), Err(Ignored::WrongXid));
    let mut wrong_mac = answer(&discover, MessageType::Offer, ADDR, &sane());
    wrong_mac[33] ^= 1;
    assert_eq!(c.handle_reply(S, &wrong_mac), Err(Ignored::WrongChaddr));
    assert_eq!(c.handle_reply(S, &discover.payload), Err(Ignored::NotReply));
    assert_eq!(c.handle_reply(S, &[0u8; 100]), Err(Ignored::Malformed));
    let ack_now = answer(&discover, MessageType::Ack, ADDR, &sane());
    assert_eq!(c.handle_reply(S, &ack_now), Err(Ignored::Unexpected));
    assert_eq!(c.state(), State::Selecting);
    assert!(sent(&mut c).is_empty());
    let counters = c.snapshot(S).counters;
    assert_eq!(counters.received, 5);
    for reason in [
        Ignored::WrongXid,
        Ignored::WrongChaddr,
        Ignored::NotReply,
        Ignored::Malformed,
        Ignored::Unexpected,
    ] {
        assert_eq!(counters.ignored(reason), 1, "{}", reason.name());
    }
}

#[test]
fn rfc2131_3_2_init_reboot_asks_for_the_previous_address() {
    let mut c = Client::rebooting(MAC, 15, 0, ADDR);
    assert_eq!(c.state(), State::InitReboot);
    c.handle_timeout(0);
    assert_eq!(c.state(), State::Rebooting);
    let req = one(&mut c);
    assert_eq!(kind(&req), MessageType::Request);
    assert_eq!(req.to, Destination::Broadcast);
    assert_eq!(decode(&req).ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        opt(&req, OptionCode::RequestedIpAddress),
        Some(DhcpOption::RequestedIpAddress(ADDR))
    );
    assert_eq!(
        opt(&req, OptionCode::ServerIdentifier),
        None,
        "Table 5: MUST NOT in INIT-REBOOT"
    );
    c.handle_reply(S, &answer(&req, MessageType::Ack, ADDR, &sane()))
        .unwrap();
    assert_eq!(events(&mut c), [Event::Probe { address: ADDR }]);

    let mut c = Client::rebooting(MAC, 15, 0, ADDR);
    c.handle_timeout(0);
    let req = one(&mut c);
    c.handle_reply(S, &nak(&req)).unwrap();
    assert_eq!(c.state(), State::Init);
}

#[test]
fn rfc5227_2_1_an_address_already_in_use_is_resumed_unprobed_and_a_new_one_probed() {
    let mut c = Client::resuming(MAC, 15, 0, ADDR);
    c.handle_timeout(0);
    assert_eq!(c.state(), State::Rebooting);
    let req = one(&mut c);
    assert_eq!(
        opt(&req, OptionCode::RequestedIpAddress),
        Some(DhcpOption::RequestedIpAddress(ADDR))
    );
    c.handle_reply(S, &answer(&req, MessageType::Ack, ADDR, &sane()))
        .unwrap();
    let got = events(&mut c);
    assert!(
        matches!(got.as_slice(), [Event::Bound(lease)] if lease.address.addr() == ADDR),
        "{got:?}"
    );
    assert_eq!(c.state(), State::Bound);

    // The server gives another address: that one is new to the interface.
    let mut c = Client::resuming(MAC, 15, 0, ADDR);
    c.handle_timeout(0);
    let req = one(&mut c);
    c.handle_reply(S, &answer(&req, MessageType::Ack, OTHER_ADDR, &sane()))
        .unwrap();
    assert_eq!(
        events(&mut c),
        [Event::Probe {
            address: OTHER_ADDR
        }]
    );

    // A NAK: back to INIT, which asks afresh (DISCOVER) and probes what it gets.
    let mut c = Client::resuming(MAC, 15, 0, ADDR);
    c.handle_timeout(0);
    let req = one(&mut c);
    c.handle_reply(S, &nak(&req)).unwrap();
    assert_eq!(c.state(), State::Init);
}

// ---- RFC 3442 and RFC 2132 ----

#[test]
fn rfc3442_option_121_wins_over_option_3_and_decodes_default_and_slash_25() {
    let routes = vec![
        ("0.0.0.0/0".parse().unwrap(), Ipv4Addr::new(192, 0, 2, 254)),
        (
            "198.51.100.128/25".parse().unwrap(),
            Ipv4Addr::new(192, 0, 2, 2),
        ),
    ];
    let mut c = Client::new(MAC, 16, 0);
    let lease = bound_with(
        &mut c,
        0,
        &sane_with(&[DhcpOption::ClasslessStaticRoute(routes)]),
    );
    assert_eq!(
        lease.routes,
        [
            Route {
                dest: "0.0.0.0/0".parse().unwrap(),
                gateway: Ipv4Addr::new(192, 0, 2, 254)
            },
            Route {
                dest: "198.51.100.128/25".parse().unwrap(),
                gateway: Ipv4Addr::new(192, 0, 2, 2)
            },
        ]
    );
    assert_eq!(
        lease.gateway(),
        Some(Ipv4Addr::new(192, 0, 2, 254)),
        "option 3 (192.0.2.1) ignored"
    );
}

/// RFC 3442 on Google Compute Engine: a /32 address, and option 121 makes the gateway
/// on-link (a host route to it via 0.0.0.0) before the default route via it.
#[test]
fn rfc3442_a_slash_32_lease_with_an_on_link_route_to_its_gateway_is_taken() {
    let gateway = Ipv4Addr::new(10, 128, 0, 1);
    let routes = vec![
        ("10.128.0.1/32".parse().unwrap(), Ipv4Addr::UNSPECIFIED),
        ("0.0.0.0/0".parse().unwrap(), gateway),
    ];
    let mut c = Client::new(MAC, 18, 0);
    let lease = bound_with(
        &mut c,
        0,
        &sane_with(&[
            DhcpOption::SubnetMask(Ipv4Addr::BROADCAST),
            DhcpOption::ClasslessStaticRoute(routes),
        ]),
    );
    assert_eq!(lease.address, ipnet::Ipv4Net::new(ADDR, 32).unwrap());
    assert_eq!(lease.gateway(), Some(gateway));
    // Without the on-link route the gateway is unreachable.
    assert_offer_refused(
        &sane_with(&[
            DhcpOption::SubnetMask(Ipv4Addr::BROADCAST),
            DhcpOption::ClasslessStaticRoute(vec![("0.0.0.0/0".parse().unwrap(), gateway)]),
        ]),
        LeaseError::GatewayOutsideSubnet(gateway),
    );
}

/// Offers `opts` to a selecting client: it must be refused for `why`, and the client
/// must keep selecting and take the next sane offer.
fn assert_offer_refused(opts: &DhcpOptions, why: LeaseError) {
    let (mut c, discover) = selecting(17, 0);
    let bad = answer(&discover, MessageType::Offer, ADDR, opts);
    assert_eq!(c.handle_reply(S, &bad), Err(Ignored::BadLease));
    assert_eq!(c.snapshot(S).last_refusal, Some(why));
    assert!(!why.to_string().is_empty());
    assert_eq!(c.state(), State::Selecting);
    assert!(sent(&mut c).is_empty());
    requesting(&mut c, &discover, 2 * S, &sane());
    assert_eq!(c.snapshot(2 * S).counters.ignored(Ignored::BadLease), 1);
}

#[test]
fn rfc3442_malformed_option_121_is_refused() {
    let raw = |data: Vec<u8>| {
        DhcpOption::Unknown(UnknownOption::new(OptionCode::ClasslessStaticRoute, data))
    };
    assert_offer_refused(
        &sane_with(&[raw(vec![33, 1, 2, 3, 4, 5, 192, 0, 2, 1])]),
        LeaseError::BadClasslessRoute(RouteEncoding::PrefixTooLong(33)),
    );
    assert_offer_refused(
        &sane_with(&[raw(vec![24, 198, 51, 100, 192, 0])]),
        LeaseError::BadClasslessRoute(RouteEncoding::Truncated),
    );
    assert_offer_refused(
        &sane_with(&[raw(vec![25, 198, 51, 100, 129, 192, 0, 2, 1])]),
        LeaseError::BadClasslessRoute(RouteEncoding::HostBitsSet),
    );
    assert_offer_refused(
        &sane_with(&[raw(vec![0, 10, 9, 9, 1])]),
        LeaseError::GatewayOutsideSubnet(Ipv4Addr::new(10, 9, 9, 1)),
    );
}

/// RFC 2132 section 3.3 (subnet mask): a mask of /0, or one whose bits are not
/// contiguous, names no usable subnet: the offer is refused by name and the client
/// keeps selecting.
#[test]
fn rfc2132_3_3_a_slash_0_or_non_contiguous_mask_is_refused() {
    assert_offer_refused(
        &sane_with(&[DhcpOption::SubnetMask(Ipv4Addr::UNSPECIFIED)]),
        LeaseError::BadPrefix(0),
    );
    assert_offer_refused(
        &sane_with(&[DhcpOption::SubnetMask(Ipv4Addr::new(255, 0, 255, 0))]),
        LeaseError::NonContiguousMask(Ipv4Addr::new(255, 0, 255, 0)),
    );
}

/// RFC 2132 section 9.2 (lease time): a lease of 0 seconds cannot be used.
#[test]
fn rfc2132_9_2_a_lease_time_of_0_is_refused() {
    assert_offer_refused(
        &sane_with(&[DhcpOption::AddressLeaseTime(0)]),
        LeaseError::ZeroLeaseTime,
    );
}

/// RFC 2132 section 3.5 (router): a router outside the subnet (and not reached by an
/// on-link route of option 121, RFC 3442) or that is not a host of it is refused;
/// so is an offer without the options RFC 2131 Table 3 requires.
#[test]
fn rfc2132_3_5_a_router_outside_the_subnet_is_refused() {
    // A /32 with only option 3: the router cannot be reached.
    assert_offer_refused(
        &sane_with(&[DhcpOption::SubnetMask(Ipv4Addr::BROADCAST)]),
        LeaseError::GatewayOutsideSubnet(SERVER),
    );
    let outside = Ipv4Addr::new(198, 51, 100, 1);
    assert_offer_refused(
        &sane_with(&[DhcpOption::Router(vec![outside])]),
        LeaseError::GatewayOutsideSubnet(outside),
    );
    assert_offer_refused(
        &sane_with(&[DhcpOption::Router(vec![ADDR])]),
        LeaseError::GatewayNotHost(ADDR),
    );
    let mut no_server = sane();
    no_server.remove(OptionCode::ServerIdentifier);
    assert_offer_refused(&no_server, LeaseError::MissingServerId);
    let mut no_mask = sane();
    no_mask.remove(OptionCode::SubnetMask);
    assert_offer_refused(&no_mask, LeaseError::MissingSubnetMask);
}

#[test]
fn nonsense_addresses_are_refused() {
    for bad in [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(192, 0, 2, 255),
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(224, 0, 0, 1),
    ] {
        let (mut c, discover) = selecting(18, 0);
        let offer = answer(&discover, MessageType::Offer, bad, &sane());
        assert_eq!(c.handle_reply(S, &offer), Err(Ignored::BadLease));
        assert_eq!(
            c.snapshot(S).last_refusal,
            Some(LeaseError::BadAddress(bad))
        );
    }
}

#[test]
fn rfc2132_5_1_mtu_below_68_is_refused_68_and_65535_accepted() {
    assert_offer_refused(
        &sane_with(&[DhcpOption::InterfaceMtu(67)]),
        LeaseError::MtuOutOfRange(67),
    );
    for mtu in [68, 65535] {
        let mut c = Client::new(MAC, 19, 0);
        let lease = bound_with(&mut c, 0, &sane_with(&[DhcpOption::InterfaceMtu(mtu)]));
        assert_eq!(lease.mtu, Some(mtu));
    }
    let mut no_mtu = sane();
    no_mtu.remove(OptionCode::InterfaceMtu);
    let mut c = Client::new(MAC, 19, 0);
    assert_eq!(bound_with(&mut c, 0, &no_mtu).mtu, None);
}

// ---- RFC 5227 ----

#[test]
fn rfc5227_2_1_1_probe_conflict_declines_and_restarts_after_10_s() {
    let (mut c, discover) = selecting(20, 0);
    let request = requesting(&mut c, &discover, 0, &sane());
    c.handle_reply(S, &answer(&request, MessageType::Ack, ADDR, &sane()))
        .unwrap();
    assert_eq!(events(&mut c), [Event::Probe { address: ADDR }]);
    assert!(c.probe_result(3 * S, true));
    let decline = one(&mut c);
    assert_eq!(kind(&decline), MessageType::Decline);
    assert_eq!((decline.to, decline.from), (Destination::Broadcast, None));
    assert_eq!(decode(&decline).ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        opt(&decline, OptionCode::RequestedIpAddress),
        Some(DhcpOption::RequestedIpAddress(ADDR))
    );
    assert_eq!(
        opt(&decline, OptionCode::ServerIdentifier),
        Some(DhcpOption::ServerIdentifier(SERVER))
    );
    assert_eq!(opt(&decline, OptionCode::ParameterRequestList), None);
    assert!(events(&mut c).is_empty(), "the address was never bound");
    assert_eq!(c.state(), State::Init);
    assert_eq!(c.snapshot(3 * S).counters.declines, 1);
    assert_eq!(c.poll_timeout(), Some(3 * S + DECLINE_WAIT_MS));
    c.handle_timeout(3 * S + DECLINE_WAIT_MS - 1);
    assert!(sent(&mut c).is_empty());
    c.handle_timeout(3 * S + DECLINE_WAIT_MS);
    assert_eq!(kind(&one(&mut c)), MessageType::Discover);
    assert!(!c.probe_result(14 * S, false), "no probe pending any more");
}

// ---- release ----

#[test]
fn rfc2131_4_4_6_release_gives_the_address_back_and_stops() {
    let (mut c, _) = bound(21);
    assert!(c.release(60 * S));
    let release = one(&mut c);
    assert_eq!(kind(&release), MessageType::Release);
    assert_eq!(release.to, Destination::Unicast(SERVER));
    assert_eq!(release.from, Some(ADDR));
    assert_eq!(decode(&release).ciaddr(), ADDR);
    assert_eq!(
        opt(&release, OptionCode::ServerIdentifier),
        Some(DhcpOption::ServerIdentifier(SERVER))
    );
    assert_eq!(c.state(), State::Released);
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(10_000 * S);
    assert!(sent(&mut c).is_empty() && events(&mut c).is_empty());
    assert!(!c.release(61 * S), "nothing left to release");

    let (mut c, _) = selecting(21, 0);
    assert!(!c.release(S), "no address held: no RELEASE");
    assert!(sent(&mut c).is_empty());
    assert_eq!(c.state(), State::Released);
}

// ---- hostile bytes ----

/// A client brought to each state, with the last request it sent (the reply template).
fn in_every_state(seed: u64) -> Vec<(Client, Option<Transmit>)> {
    let mut out = Vec::new();
    let c = Client::new(MAC, seed, 0);
    out.push((c, None));
    let (c, discover) = selecting(seed, 0);
    out.push((c, Some(discover.clone())));
    let (mut c, _) = selecting(seed, 0);
    let request = requesting(&mut c, &discover, 0, &sane());
    out.push((c, Some(request.clone())));
    let (mut c, _) = selecting(seed, 0);
    requesting(&mut c, &discover, 0, &sane());
    c.handle_reply(0, &answer(&request, MessageType::Ack, ADDR, &sane()))
        .unwrap();
    out.push((c, Some(request.clone())));
    let mut c = Client::rebooting(MAC, seed, 0, ADDR);
    c.handle_timeout(0);
    let reboot = one(&mut c);
    out.push((c, Some(reboot)));
    let (c, _) = bound(seed);
    out.push((c, Some(request)));
    let (mut c, _) = bound(seed);
    c.handle_timeout(1_800 * S);
    let renew = one(&mut c);
    out.push((c, Some(renew)));
    let (mut c, _) = bound(seed);
    c.handle_timeout(3_150 * S);
    let rebind = one(&mut c);
    out.push((c, Some(rebind)));
    let (mut c, _) = bound(seed);
    c.release(0);
    out.push((c, None));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes, and valid replies with arbitrary bytes overwritten, in every
    /// state: no panic; a refused message leaves the state as it was and is counted
    /// under exactly one reason; an accepted one moves to a state that follows.
    #[test]
    fn hostile_replies_in_every_state_never_panic_and_keep_the_state_consistent(
        seed in any::<u64>(),
        noise in proptest::collection::vec(any::<u8>(), 0..600),
        kind_byte in 1u8..=8,
        flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..8),
    ) {
        for (mut c, template) in in_every_state(seed) {
            let mut inputs = vec![noise.clone()];
            if let Some(t) = &template {
                let mut reply = answer(t, MessageType::from(kind_byte), ADDR, &sane());
                for &(at, byte) in &flips {
                    if let Some(b) = reply.get_mut(at) {
                        *b = byte;
                    }
                }
                inputs.push(reply);
            }
            for input in inputs {
                let state = c.state();
                let received = c.snapshot(0).counters.received;
                let ignored: u64 = c.snapshot(0).counters.ignored.iter().sum();
                let result = c.handle_reply(S, &input);
                let after = c.snapshot(0).counters;
                prop_assert_eq!(after.received, received + 1);
                match result {
                    Err(_) => {
                        prop_assert_eq!(c.state(), state);
                        prop_assert_eq!(after.ignored.iter().sum::<u64>(), ignored + 1);
                    }
                    Ok(()) => {
                        let allowed: &[State] = match state {
                            State::Selecting => &[State::Requesting],
                            State::Requesting | State::Rebooting => &[State::Probing, State::Init],
                            State::Renewing | State::Rebinding => &[State::Bound, State::Probing, State::Init],
                            _ => &[],
                        };
                        prop_assert!(allowed.contains(&c.state()), "{:?} -> {:?}", state, c.state());
                    }
                }
                // Timers stay defined where the state needs one.
                let needs_timer = !matches!(c.state(), State::Probing | State::Released);
                prop_assert_eq!(c.poll_timeout().is_some(), needs_timer, "{:?}", c.state());
            }
        }
    }
}
