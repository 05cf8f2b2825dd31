//! The DHCPv6 client (`natbox_core::dhcp6`) against a scripted server: RFC 8415's
//! exchanges (sections 18.2.1-18.2.10), retransmission (section 15), message
//! validation (section 16) and the IA_NA rules (section 21.4, 21.6).

use dhcproto::v6::{self, DhcpOption, IAAddr, MessageType, OptionCode, Status, StatusCode, IANA};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use natbox_core::dhcp6::{Client, Event, Ignored, Refusal, State, REQ_MAX_RC};
use std::net::Ipv6Addr;

const MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
const SERVER: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 2, 2];
const OTHER_SERVER: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 2, 3];

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn decode(bytes: &[u8]) -> v6::Message {
    v6::Message::decode(&mut Decoder::new(bytes)).expect("the client's message decodes")
}

/// What a scripted server answers.
#[derive(Clone)]
struct Answer {
    kind: MessageType,
    server: [u8; 10],
    preference: Option<u8>,
    /// (address, preferred, valid)
    address: Option<(&'static str, u32, u32)>,
    t1: u32,
    t2: u32,
    ia_status: Option<Status>,
}

fn answer(kind: MessageType) -> Answer {
    Answer {
        kind,
        server: SERVER,
        preference: None,
        address: Some(("2001:db8:ff::100", 300, 600)),
        t1: 150,
        t2: 240,
        ia_status: None,
    }
}

/// The server's answer to the client message `to` (its xid, Client Identifier, IAID).
fn respond(to: &[u8], a: &Answer) -> Vec<u8> {
    let req = decode(to);
    let Some(DhcpOption::IANA(ia)) = req.opts().get(OptionCode::IANA) else {
        panic!("every client message has an IA_NA");
    };
    let mut m = v6::Message::new_with_id(a.kind, req.xid());
    let o = m.opts_mut();
    if let Some(id) = req.opts().get(OptionCode::ClientId) {
        o.insert(id.clone());
    }
    o.insert(DhcpOption::ServerId(a.server.to_vec()));
    if let Some(p) = a.preference {
        o.insert(DhcpOption::Preference(p));
    }
    let mut inner = v6::DhcpOptions::new();
    if let Some((address, preferred_life, valid_life)) = a.address {
        inner.insert(DhcpOption::IAAddr(IAAddr {
            addr: addr(address),
            preferred_life,
            valid_life,
            opts: v6::DhcpOptions::new(),
        }));
    }
    if let Some(status) = a.ia_status {
        inner.insert(DhcpOption::StatusCode(StatusCode {
            status,
            msg: String::new(),
        }));
    }
    o.insert(DhcpOption::IANA(IANA {
        id: ia.id,
        t1: a.t1,
        t2: a.t2,
        opts: inner,
    }));
    let mut b = Vec::new();
    m.encode(&mut Encoder::new(&mut b)).unwrap();
    b
}

/// Every message the client queued, decoded.
fn sent(c: &mut Client) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

fn events(c: &mut Client) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// A client bound to 2001:db8:ff::100 (T1 150 s, T2 240 s, valid 600 s) at time
/// `now` on return; the lease began when the Request was first sent.
fn bound() -> (Client, u64) {
    let mut c = Client::new(MAC, 7, 0);
    c.handle_timeout(0);
    let solicit = sent(&mut c).pop().unwrap();
    let mut adv = answer(MessageType::Advertise);
    adv.preference = Some(255);
    c.handle_reply(10, &respond(&solicit, &adv)).unwrap();
    let request = sent(&mut c).pop().unwrap();
    assert_eq!(decode(&request).msg_type(), MessageType::Request);
    c.handle_reply(20, &respond(&request, &answer(MessageType::Reply)))
        .unwrap();
    assert_eq!(
        events(&mut c),
        vec![Event::Probe {
            address: addr("2001:db8:ff::100")
        }]
    );
    assert!(c.probe_result(1020, false));
    let ev = events(&mut c);
    assert!(matches!(&ev[..], [Event::Bound(l)] if l.address == addr("2001:db8:ff::100")));
    assert_eq!(c.state(), State::Bound);
    (c, 1020)
}

#[test]
fn rfc8415_15_solicit_retransmission_doubles_from_one_second_with_one_xid() {
    let mut c = Client::new(MAC, 3, 0);
    assert_eq!(c.poll_timeout(), Some(0));
    let mut times = Vec::new();
    let mut xids = Vec::new();
    let mut elapsed = Vec::new();
    let mut now = 0;
    for _ in 0..6 {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        for m in sent(&mut c) {
            let m = decode(&m);
            assert_eq!(m.msg_type(), MessageType::Solicit);
            xids.push(m.xid());
            let Some(DhcpOption::ElapsedTime(e)) = m.opts().get(OptionCode::ElapsedTime) else {
                panic!("Elapsed Time in every message (21.9)");
            };
            elapsed.push(*e);
            times.push(now);
        }
    }
    assert_eq!(times.len(), 6);
    // The first RT is IRT + RAND*IRT with RAND in (0, 0.1] for a Solicit.
    let first = times[1] - times[0];
    assert!((1000..=1100).contains(&first), "{first}");
    for w in times.windows(3) {
        let (a, b) = (w[1] - w[0], w[2] - w[1]);
        assert!(b >= a * 18 / 10 && b <= a * 22 / 10, "{a} then {b}");
    }
    assert!(xids.iter().all(|x| *x == xids[0]), "one xid per exchange");
    assert_eq!(elapsed[0], 0);
    assert_eq!(u64::from(elapsed[5]), (now - times[0]) / 10, "hundredths");
}

#[test]
fn rfc8415_18_2_1_advertises_are_collected_for_the_first_rt_the_most_preferred_wins() {
    let mut c = Client::new(MAC, 5, 0);
    c.handle_timeout(0);
    let solicit = sent(&mut c).pop().unwrap();
    let mut low = answer(MessageType::Advertise);
    low.preference = Some(10);
    let mut high = answer(MessageType::Advertise);
    high.preference = Some(200);
    high.server = OTHER_SERVER;
    high.address = Some(("2001:db8:ff::200", 300, 600));
    c.handle_reply(100, &respond(&solicit, &low)).unwrap();
    c.handle_reply(200, &respond(&solicit, &high)).unwrap();
    assert!(sent(&mut c).is_empty(), "still collecting");
    assert_eq!(c.state(), State::Soliciting);
    let until = c.poll_timeout().unwrap();
    assert!(until <= 1100);
    c.handle_timeout(until);
    let request = decode(&sent(&mut c).pop().expect("a Request"));
    assert_eq!(request.msg_type(), MessageType::Request);
    assert_eq!(
        request.opts().get(OptionCode::ServerId),
        Some(&DhcpOption::ServerId(OTHER_SERVER.to_vec()))
    );
    let Some(DhcpOption::IANA(ia)) = request.opts().get(OptionCode::IANA) else {
        panic!("an IA_NA");
    };
    assert!(matches!(
        ia.opts.get(OptionCode::IAAddr),
        Some(DhcpOption::IAAddr(a)) if a.addr == addr("2001:db8:ff::200")
    ));
}

#[test]
fn rfc8415_18_2_1_preference_255_is_taken_at_once() {
    let mut c = Client::new(MAC, 5, 0);
    c.handle_timeout(0);
    let solicit = sent(&mut c).pop().unwrap();
    let mut adv = answer(MessageType::Advertise);
    adv.preference = Some(255);
    c.handle_reply(5, &respond(&solicit, &adv)).unwrap();
    assert_eq!(c.state(), State::Requesting);
    assert_eq!(
        decode(&sent(&mut c).pop().unwrap()).msg_type(),
        MessageType::Request
    );
}

#[test]
fn rfc8415_18_2_1_an_advertise_without_an_address_is_ignored() {
    let mut c = Client::new(MAC, 5, 0);
    c.handle_timeout(0);
    let solicit = sent(&mut c).pop().unwrap();
    let mut none = answer(MessageType::Advertise);
    none.address = None;
    none.ia_status = Some(Status::NoAddrsAvail);
    assert_eq!(
        c.handle_reply(5, &respond(&solicit, &none)),
        Err(Ignored::NoAddress)
    );
    assert_eq!(c.snapshot(5).last_refusal, Some(Refusal::IaStatus(2)));
    assert_eq!(c.state(), State::Soliciting);
}

#[test]
fn rfc8415_18_2_2_a_request_unanswered_req_max_rc_times_goes_back_to_soliciting() {
    let mut c = Client::new(MAC, 5, 0);
    c.handle_timeout(0);
    let solicit = sent(&mut c).pop().unwrap();
    let mut adv = answer(MessageType::Advertise);
    adv.preference = Some(255);
    c.handle_reply(5, &respond(&solicit, &adv)).unwrap();
    let mut requests = sent(&mut c).len() as u32;
    let mut now = 5;
    while c.state() == State::Requesting {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        requests += sent(&mut c).len() as u32;
        assert!(now < 600_000, "bounded");
    }
    assert_eq!(requests, REQ_MAX_RC);
    assert_eq!(c.state(), State::Init);
    // REQ_MAX_RT caps each wait at 30 s (+10 %).
    assert!(now < 5 + 10 * 33_000, "{now}");
}

#[test]
fn rfc8415_18_2_10_a_reply_binds_the_address_after_dad() {
    let (c, now) = bound();
    let s = c.snapshot(now);
    let lease = s.lease.expect("a lease");
    assert_eq!(lease.server_id, SERVER.to_vec());
    assert_eq!((lease.t1_s, lease.t2_s, lease.valid_s), (150, 240, 600));
    // The lease runs from the Request's first transmission (t = 10 ms).
    assert_eq!(s.t1_left_ms, Some(10 + 150_000 - now));
}

#[test]
fn rfc8415_18_2_4_renew_at_t1_to_the_server_keeps_the_address() {
    let (mut c, _) = bound();
    let t1 = c.poll_timeout().unwrap();
    assert_eq!(t1, 10 + 150_000);
    c.handle_timeout(t1);
    assert_eq!(c.state(), State::Renewing);
    let renew = sent(&mut c).pop().unwrap();
    let m = decode(&renew);
    assert_eq!(m.msg_type(), MessageType::Renew);
    assert_eq!(
        m.opts().get(OptionCode::ServerId),
        Some(&DhcpOption::ServerId(SERVER.to_vec()))
    );
    c.handle_reply(t1 + 5, &respond(&renew, &answer(MessageType::Reply)))
        .unwrap();
    let ev = events(&mut c);
    assert!(
        matches!(&ev[..], [Event::Renewed(l)] if l.address == addr("2001:db8:ff::100")),
        "{ev:?}"
    );
    assert_eq!(c.state(), State::Bound);
    // The renewed lease runs from the Renew.
    assert_eq!(c.poll_timeout(), Some(t1 + 150_000));
}

#[test]
fn rfc8415_18_2_5_rebind_at_t2_to_any_server_and_the_lease_ends_at_its_valid_lifetime() {
    let (mut c, _) = bound();
    let mut now = 0;
    let mut kinds = Vec::new();
    while c.state() != State::Soliciting {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        kinds.extend(sent(&mut c).iter().map(|m| decode(m).msg_type()));
        assert!(now <= 700_000, "bounded");
    }
    assert_eq!(kinds.first(), Some(&MessageType::Renew));
    let first_rebind = kinds
        .iter()
        .position(|k| *k == MessageType::Rebind)
        .unwrap();
    assert!(kinds[..first_rebind]
        .iter()
        .all(|k| *k == MessageType::Renew));
    assert_eq!(kinds.last(), Some(&MessageType::Solicit));
    assert_eq!(now, 10 + 600_000, "expiry at the valid lifetime");
    let ev = events(&mut c);
    assert!(matches!(&ev[..], [Event::Lost { .. }]), "{ev:?}");
}

#[test]
fn rfc8415_18_2_5_a_rebind_carries_no_server_identifier() {
    let (mut c, _) = bound();
    c.handle_timeout(10 + 240_000);
    assert_eq!(c.state(), State::Rebinding);
    let m = decode(&sent(&mut c).pop().unwrap());
    assert_eq!(m.msg_type(), MessageType::Rebind);
    assert!(m.opts().get(OptionCode::ServerId).is_none());
}

#[test]
fn rfc8415_18_2_10_1_no_binding_in_a_renew_reply_asks_again_by_request() {
    let (mut c, _) = bound();
    c.handle_timeout(10 + 150_000);
    let renew = sent(&mut c).pop().unwrap();
    let mut no_binding = answer(MessageType::Reply);
    no_binding.address = None;
    no_binding.ia_status = Some(Status::NoBinding);
    c.handle_reply(150_100, &respond(&renew, &no_binding))
        .unwrap();
    assert_eq!(c.state(), State::Requesting);
    assert!(
        c.snapshot(150_100).lease.is_some(),
        "the lease stays in force"
    );
    let request = sent(&mut c).pop().unwrap();
    assert_eq!(decode(&request).msg_type(), MessageType::Request);
    c.handle_reply(150_200, &respond(&request, &answer(MessageType::Reply)))
        .unwrap();
    assert!(matches!(&events(&mut c)[..], [Event::Renewed(_)]));
}

#[test]
fn rfc8415_18_2_10_1_a_renewal_to_another_address_is_probed_and_changes_it() {
    let (mut c, _) = bound();
    c.handle_timeout(10 + 150_000);
    let renew = sent(&mut c).pop().unwrap();
    let mut moved = answer(MessageType::Reply);
    moved.address = Some(("2001:db8:ff::101", 300, 600));
    c.handle_reply(150_100, &respond(&renew, &moved)).unwrap();
    assert_eq!(
        events(&mut c),
        vec![Event::Probe {
            address: addr("2001:db8:ff::101")
        }]
    );
    c.probe_result(151_100, false);
    let ev = events(&mut c);
    assert!(matches!(&ev[..], [Event::AddressChanged { old, new }]
        if old.address == addr("2001:db8:ff::100") && new.address == addr("2001:db8:ff::101")));
}

#[test]
fn rfc8415_18_2_8_an_address_in_use_is_declined_and_solicited_again_later() {
    let mut c = Client::new(MAC, 7, 0);
    c.handle_timeout(0);
    let solicit = sent(&mut c).pop().unwrap();
    let mut adv = answer(MessageType::Advertise);
    adv.preference = Some(255);
    c.handle_reply(10, &respond(&solicit, &adv)).unwrap();
    let request = sent(&mut c).pop().unwrap();
    c.handle_reply(20, &respond(&request, &answer(MessageType::Reply)))
        .unwrap();
    events(&mut c);
    c.probe_result(1020, true);
    let decline = decode(&sent(&mut c).pop().expect("a Decline"));
    assert_eq!(decline.msg_type(), MessageType::Decline);
    assert_eq!(
        decline.opts().get(OptionCode::ServerId),
        Some(&DhcpOption::ServerId(SERVER.to_vec()))
    );
    assert_eq!(c.snapshot(1020).counters.declines, 1);
    assert!(events(&mut c).is_empty(), "nothing was in force");
    assert_eq!(c.state(), State::Init);
    assert_eq!(
        c.poll_timeout(),
        Some(1020 + natbox_core::dhcp6::RETRY_WAIT_MS)
    );
}

#[test]
fn rfc8415_16_wrong_xid_another_clients_id_or_no_server_id_are_ignored() {
    let mut c = Client::new(MAC, 5, 0);
    c.handle_timeout(0);
    let solicit = sent(&mut c).pop().unwrap();
    let mut adv = answer(MessageType::Advertise);
    adv.preference = Some(255);
    let good = respond(&solicit, &adv);
    let mut xid = good.clone();
    xid[3] ^= 1;
    assert_eq!(c.handle_reply(1, &xid), Err(Ignored::WrongXid));
    let mut other = Client::new([2, 0, 0, 0, 9, 9], 5, 0);
    other.handle_timeout(0);
    let theirs = respond(&sent(&mut other).pop().unwrap(), &adv);
    let mut foreign = theirs.clone();
    foreign[1..4].copy_from_slice(&good[1..4]);
    assert_eq!(c.handle_reply(1, &foreign), Err(Ignored::WrongClientId));
    let mut m = decode(&good);
    m.opts_mut().remove(OptionCode::ServerId);
    let mut no_server = Vec::new();
    m.encode(&mut Encoder::new(&mut no_server)).unwrap();
    assert_eq!(c.handle_reply(1, &no_server), Err(Ignored::NoServerId));
    let mut reconfigure = good.clone();
    reconfigure[0] = 10;
    assert_eq!(c.handle_reply(1, &reconfigure), Err(Ignored::NotForClient));
    assert_eq!(c.handle_reply(1, &[7, 0]), Err(Ignored::Malformed));
    assert_eq!(c.state(), State::Soliciting);
    let s = c.snapshot(1);
    assert_eq!(s.counters.received, 5);
    assert_eq!(s.counters.ignored.iter().sum::<u64>(), 5);
}

#[test]
fn rfc8415_21_4_t1_above_t2_and_21_6_preferred_above_valid_are_refused() {
    let mut c = Client::new(MAC, 5, 0);
    c.handle_timeout(0);
    let solicit = sent(&mut c).pop().unwrap();
    let mut backwards = answer(MessageType::Advertise);
    backwards.t1 = 300;
    backwards.t2 = 100;
    assert_eq!(
        c.handle_reply(1, &respond(&solicit, &backwards)),
        Err(Ignored::NoAddress)
    );
    assert_eq!(
        c.snapshot(1).last_refusal,
        Some(Refusal::T1OverT2 { t1: 300, t2: 100 })
    );
    let mut lifetimes = answer(MessageType::Advertise);
    lifetimes.address = Some(("2001:db8:ff::100", 700, 600));
    assert_eq!(
        c.handle_reply(1, &respond(&solicit, &lifetimes)),
        Err(Ignored::NoAddress)
    );
    let mut link_local = answer(MessageType::Advertise);
    link_local.address = Some(("fe80::1", 300, 600));
    assert_eq!(
        c.handle_reply(1, &respond(&solicit, &link_local)),
        Err(Ignored::NoAddress)
    );
    assert!(matches!(
        c.snapshot(1).last_refusal,
        Some(Refusal::NotUnicast(_))
    ));
}

#[test]
fn rfc8415_21_4_t1_and_t2_of_zero_are_half_and_four_fifths_of_the_preferred_lifetime() {
    let mut c = Client::new(MAC, 5, 0);
    c.handle_timeout(0);
    let solicit = sent(&mut c).pop().unwrap();
    let mut adv = answer(MessageType::Advertise);
    adv.preference = Some(255);
    c.handle_reply(1, &respond(&solicit, &adv)).unwrap();
    let request = sent(&mut c).pop().unwrap();
    let mut zero = answer(MessageType::Reply);
    zero.t1 = 0;
    zero.t2 = 0;
    c.handle_reply(2, &respond(&request, &zero)).unwrap();
    c.probe_result(3, false);
    let lease = c.snapshot(3).lease.unwrap();
    assert_eq!((lease.t1_s, lease.t2_s), (150, 240));
}
