//! Drives a DHCPv4 client (`natbox_core::dhcp4`) through arbitrary replies, timeouts,
//! probe results and releases. The first byte picks the start (bit 0: INIT-REBOOT for
//! 192.0.2.10, else INIT); then records `[control, len_hi, len_lo, op, payload...]`
//! (see `natbox_fuzz::records`; `control >> 1` advances the clock in 100 ms steps). `op
//! & 3`: 0 hands `payload` to `handle_reply`, with the xid and chaddr of the client's
//! last message stamped on it first when bit 2 is set (so mutated replies reach the
//! states past SELECTING); 1 runs `handle_timeout` at the next deadline; 2 answers a
//! probe (bit 2: conflict); 3 releases. Any panic is a bug, and so is a broken
//! invariant: every message sent is a BOOTREQUEST from our MAC, a lease is in force
//! in BOUND/RENEWING/REBINDING and
//! none outside them and PROBING, every received message is acted on or
//! counted under one reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natbox_core::dhcp4::{Client, State};
use std::net::Ipv4Addr;

const MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut now = 0u64;
    let mut client = if mode & 1 == 1 {
        Client::rebooting(MAC, 42, now, Ipv4Addr::new(192, 0, 2, 10))
    } else {
        Client::new(MAC, 42, now)
    };
    let mut last = vec![0u8; 34];
    let mut acted = 0u64;
    let mut reply = Vec::new();
    for r in natbox_fuzz::records::<1>(data) {
        now += r.advance_ms;
        let op = r.head[0];
        match op & 3 {
            0 => {
                reply.clear();
                reply.extend_from_slice(r.frame);
                if op & 4 != 0 && reply.len() >= 34 {
                    reply[4..8].copy_from_slice(&last[4..8]);
                    reply[28..34].copy_from_slice(&last[28..34]);
                }
                if client.handle_reply(now, &reply).is_ok() {
                    acted += 1;
                }
            }
            1 => {
                now = client.poll_timeout().map_or(now, |t| t.max(now));
                client.handle_timeout(now);
            }
            2 => {
                client.probe_result(now, op & 4 != 0);
            }
            _ => {
                client.release(now);
            }
        }
        while let Some(t) = client.poll_transmit() {
            let p = &t.payload;
            assert!(p.len() >= 240 && p[0] == 1 && p[1..3] == [1, 6] && p[28..34] == MAC);
            assert_eq!(p[236..240], [99, 130, 83, 99]);
            last.copy_from_slice(&p[..34]);
        }
        while client.poll_event().is_some() {}
        let snap = client.snapshot(now);
        match snap.state {
            State::Bound | State::Renewing | State::Rebinding => assert!(snap.lease.is_some()),
            State::Probing => {} // holds the old lease while probing a renewal's new address
            _ => assert!(snap.lease.is_none()),
        }
        let ignored: u64 = snap.counters.ignored.iter().sum();
        assert_eq!(snap.counters.received, acted + ignored);
    }
});
