//! Drives a DHCPv6 client (`natbox_core::dhcp6`) through arbitrary server messages,
//! timeouts and address checks: records `[control, len_hi, len_lo, op, payload...]`
//! (`natbox_fuzz::records`; `control >> 1` advances the clock in 100 ms steps). `op &
//! 3`: 0 hands `payload` to `handle_reply` (the message parser is ours, `dhcp6::message`),
//! with the transaction id of the client's last message stamped on it first when bit
//! 2 is set, so mutated replies reach the states past SOLICITING; 1 runs
//! `handle_timeout` at the next deadline; 2 answers an address check (bit 2:
//! conflict). Any panic is a bug, and so is a broken invariant: every message sent is
//! a client message (Solicit, Request, Renew, Rebind, Decline) with the client's DUID
//! right after its header, a lease is in force in BOUND, RENEWING and REBINDING and
//! none in INIT and SOLICITING, and every received message is acted on or counted
//! under one reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natbox_core::dhcp6::{Client, State};

const MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];

fuzz_target!(|data: &[u8]| {
    let mut now = 0u64;
    let mut client = Client::new(MAC, 42, now);
    let duid = client.duid().to_vec();
    let mut last_xid = [0u8; 3];
    let mut acted = 0u64;
    let mut reply = Vec::new();
    for r in natbox_fuzz::records::<1>(data) {
        now += r.advance_ms;
        let op = r.head[0];
        match op & 3 {
            0 => {
                reply.clear();
                reply.extend_from_slice(r.frame);
                if op & 4 != 0 && reply.len() >= 4 {
                    reply[1..4].copy_from_slice(&last_xid);
                }
                if client.handle_reply(now, &reply).is_ok() {
                    acted += 1;
                }
            }
            1 => {
                now = client.poll_timeout().map_or(now, |t| t.max(now));
                client.handle_timeout(now);
            }
            _ => {
                client.probe_result(now, op & 4 != 0);
            }
        }
        while let Some(p) = client.poll_transmit() {
            assert!(matches!(p.first(), Some(1 | 3 | 5 | 6 | 9)), "{p:?}");
            // The Client Identifier option (sorted first by dhcproto: code 1).
            assert_eq!(p.get(4..6), Some(&[0, 1][..]));
            assert_eq!(p.get(8..8 + duid.len()), Some(&duid[..]));
            last_xid.copy_from_slice(&p[1..4]);
        }
        while client.poll_event().is_some() {}
        let snap = client.snapshot(now);
        match snap.state {
            State::Bound | State::Renewing | State::Rebinding => assert!(snap.lease.is_some()),
            State::Init | State::Soliciting => assert!(snap.lease.is_none()),
            State::Requesting | State::Probing => {}
        }
        let ignored: u64 = snap.counters.ignored.iter().sum();
        assert_eq!(snap.counters.received, acted + ignored);
    }
});
