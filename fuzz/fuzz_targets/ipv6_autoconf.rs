//! Drives one port's IPv6 autoconfiguration (`natbox_core::autoconf`: Router
//! Advertisement parsing, the Default Router List, SLAAC, DAD) through arbitrary
//! datagrams, timeouts and DAD verdicts. The first byte picks the mode (bit 0: learn
//! the router, bit 1: SLAAC); then records `[control, len_hi, len_lo, op, payload...]`
//! (`natbox_fuzz::records`; `control >> 1` advances the clock in 100 ms steps). `op &
//! 3`: 0 hands `payload` to `receive` as an IPv6 datagram; 1 wraps it as the body of a
//! Router Advertisement from fe80::2:2 to all-nodes, hop limit 255, its checksum
//! right (so mutated option chains reach the parser and the state machine); 2 runs
//! `handle_timeout` at the next deadline; 3 answers a DAD verdict (bit 2: conflict).
//! Any panic is a bug, and so is a broken invariant: a learned router is link-local and
//! only held when the mode learns one, an address is in use only once its DAD passed
//! and as a /64, a verdict is asked only for the address last probed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natbox_core::autoconf::{Action, Autoconf, Mode};
use natbox_core::wire::emit::IpRepr;
use natbox_core::wire::ethernet::Mac;
use std::net::{IpAddr, Ipv6Addr};

const MAC: Mac = Mac([2, 0, 0, 0, 2, 1]);

/// `body` after an RA's type and code, as a whole IPv6 datagram with a valid checksum.
fn advert(body: &[u8]) -> Vec<u8> {
    let repr = IpRepr {
        src: IpAddr::V6("fe80::2:2".parse().expect("addr")),
        dst: IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
        protocol: 58,
        hop_limit: 255,
        ident: 0,
    };
    let mut ip = vec![0u8; 40];
    ip.extend_from_slice(&[134, 0, 0, 0]);
    ip.extend_from_slice(body);
    let len = ip.len() - 40;
    repr.emit(&mut ip, len).expect("fits");
    ip
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mode = Mode {
        router: mode & 1 != 0,
        slaac: mode & 2 != 0,
    };
    let mut now = 0u64;
    let mut auto = Autoconf::new(MAC, mode, 42, now);
    let mut probed: Option<Ipv6Addr> = None;
    let mut asked: Option<Ipv6Addr> = None;
    for r in natbox_fuzz::records::<1>(data) {
        now += r.advance_ms;
        let op = r.head[0];
        match op & 3 {
            0 => {
                auto.receive(now, r.frame);
            }
            1 => {
                let ip = advert(r.frame);
                assert!(auto.receive(now, &ip), "an RA is taken");
            }
            2 => {
                now = auto.poll_timeout().map_or(now, |t| t.max(now));
                auto.handle_timeout(now);
            }
            _ => {
                if asked.take().is_some() {
                    auto.dad_result(op & 4 != 0);
                }
            }
        }
        while let Some(action) = auto.poll_action() {
            match action {
                Action::SolicitRouters => {}
                Action::DadProbe(a) => probed = Some(a),
                Action::DadVerdict(a) => {
                    assert_eq!(Some(a), probed, "a verdict for the address probed");
                    asked = Some(a);
                }
            }
        }
        if let Some(router) = auto.router() {
            assert!(mode.router && router.is_unicast_link_local());
        }
        if let Some(net) = auto.address() {
            assert!(mode.slaac && net.prefix_len() == 64);
            assert_ne!(auto.snapshot(now).address_state(), Some("tentative"));
        }
        let _ = auto.on_link_prefix("2001:db8::1".parse().expect("addr"));
    }
});
