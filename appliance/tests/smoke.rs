//! The shortest end-to-end path through the engine: a UDP flow out and its reply in.

#[path = "../../core/tests/support/mod.rs"]
mod support;
use natbox::engine::Verdict;
use support::*;

#[test]
fn udp_out_and_reply_in() {
    let mut h = Harness::default();
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"query"));
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    assert_checksums(&out.frame);
    assert_eq!(&out.frame[0..6], &GW_MAC.0);
    let (src, dst) = endpoints4(out.ip());
    assert_eq!(src, sa(PUBLIC, 40000), "port preserved, source translated");
    assert_eq!(dst, sa(REMOTE, 53));
    let back = h.from_wan(udp4(sa(REMOTE, 53), src, b"answer"));
    assert_eq!(back.verdict, Verdict::Forward(INSIDE));
    assert_checksums(&back.frame);
    assert_eq!(&back.frame[0..6], &HOST_MAC.0);
    assert_eq!(endpoints4(back.ip()), (sa(REMOTE, 53), sa(HOST, 40000)));
}
