//! `appliance demo`: drives the engine through a short scripted scenario in the
//! DESIGN.md topology and prints what happened to each packet, the session table and
//! the counters. It shows the engine's behaviour without any I/O; the dataplane runs
//! the same engine on real interfaces.

use natbox::engine::stats::DropReason;
use natbox::engine::{Engine, Frame, PortId, PortSetup, Verdict};
use natbox::wire::checksum::{self, pseudo_v4};
use natbox::wire::ethernet::{self, ethertype, Mac};
use natbox::wire::{arp, ipv4, proto};
use std::net::{Ipv4Addr, SocketAddrV4};

const BOX_LAN: Mac = Mac([2, 0, 0, 0, 1, 1]);
const BOX_WAN: Mac = Mac([2, 0, 0, 0, 2, 1]);
const HOST: Mac = Mac([2, 0, 0, 0, 1, 2]);
const GW: Mac = Mac([2, 0, 0, 0, 2, 2]);

/// Runs the scenario against `config`.
pub fn run(config: &firmware_config::Config) {
    let mut engine = Engine::new(
        config,
        &[PortSetup { mac: BOX_LAN }, PortSetup { mac: BOX_WAN }],
    );
    // The scenario's two-port topology: the port with the inside role and the one
    // with the outside role.
    let labels: Vec<&'static str> = engine.ports().map(|p| p.roles.label()).collect();
    let role = |inside: bool| {
        engine
            .ports()
            .find(|p| p.roles.inside == inside)
            .map(|p| p.port)
            .expect("the configuration names an inside and an outside port")
    };
    let (inside, outside) = (role(true), role(false));
    let mut now = 1_000u64;
    let inside_ip = config
        .inside_port()
        .ipv4_net()
        .map(|n| n.addr())
        .unwrap_or(Ipv4Addr::new(10, 10, 0, 1));
    let host_ip = inside_ip.to_bits().wrapping_add(1).into();
    let public = config.nat_pool()[0];
    let gw_ip = config
        .outside
        .gateway4
        .unwrap_or(Ipv4Addr::new(198, 51, 100, 1));
    let remote = Ipv4Addr::new(203, 0, 113, 5);

    let mut step = |what: &str, port: PortId, frame: Vec<u8>, now: u64| -> Vec<u8> {
        let mut buf = frame.clone();
        buf.resize(2048, 0);
        let mut f = Frame {
            buf: &mut buf,
            len: frame.len(),
        };
        let verdict = engine.process(port, &mut f, now);
        let len = f.len;
        println!("{what:<48} {}", describe(verdict, &buf[..len], &labels));
        buf.truncate(len);
        buf
    };

    println!("natbox engine demo: inside {host_ip} behind {public}, remote {remote}\n");
    step(
        "lan host asks ARP who-has the box",
        inside,
        arp_request(HOST, host_ip, inside_ip),
        now,
    );
    step(
        "wan gateway asks ARP who-has the public address",
        outside,
        arp_request(GW, gw_ip, public),
        now,
    );
    let out = step(
        "lan host sends DNS query (UDP 40000 -> 53)",
        inside,
        eth(
            BOX_LAN,
            HOST,
            udp(
                SocketAddrV4::new(host_ip, 40000),
                SocketAddrV4::new(remote, 53),
            ),
        ),
        now,
    );
    let ext = endpoints(&out[ethernet::HEADER_LEN..]).0;
    now += 20;
    step(
        "remote answers to the external endpoint",
        outside,
        eth(BOX_WAN, GW, udp(SocketAddrV4::new(remote, 53), ext)),
        now,
    );
    step(
        "a stranger sends to the same external port",
        outside,
        eth(
            BOX_WAN,
            GW,
            udp(SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 99), 4444), ext),
        ),
        now,
    );
    step(
        "unsolicited packet to another public port",
        outside,
        eth(
            BOX_WAN,
            GW,
            udp(
                SocketAddrV4::new(remote, 53),
                SocketAddrV4::new(public, 6000),
            ),
        ),
        now,
    );
    engine.poll(now);

    println!("\nsessions:");
    let now_s = (now / 1000) as u32;
    for s in engine.nat().sessions(now_s) {
        println!(
            "  proto {:<3} inside {:<21} outside {:<21} remote {:<21} {} expires in {} s",
            s.proto, s.inside, s.outside, s.remote, s.state, s.expires
        );
    }
    let stats = engine.stats();
    println!(
        "\ntranslations out/in (udp): {}/{}",
        stats.nat_out.udp, stats.nat_in.udp
    );
    println!("drops:");
    for &reason in DropReason::ALL {
        let n = stats.drops_for(reason);
        if n > 0 {
            println!("  {:<24} {n:>4}  {}", reason.name(), reason.help());
        }
    }
}

fn describe(verdict: Verdict, frame: &[u8], labels: &[&str]) -> String {
    match verdict {
        Verdict::Forward(port) | Verdict::Reply(port) => {
            let kind = if matches!(verdict, Verdict::Reply(_)) {
                "reply"
            } else {
                "forward"
            };
            let e = ethernet::Frame::new_checked(frame).expect("engine output");
            if e.ethertype() == ethertype::IPV4 {
                let (src, dst) = endpoints(e.payload());
                format!("-> {kind} on {}: {src} -> {dst}", labels[port.index()])
            } else {
                format!(
                    "-> {kind} on {} ({} bytes)",
                    labels[port.index()],
                    frame.len()
                )
            }
        }
        Verdict::Drop(reason) => format!("-> dropped: {}", reason.name()),
        other => format!("-> {other:?}"),
    }
}

fn endpoints(ip: &[u8]) -> (SocketAddrV4, SocketAddrV4) {
    let p = ipv4::Packet::new_checked(ip).expect("engine output");
    let l4 = p.payload();
    let port = |at: usize| u16::from_be_bytes([l4[at], l4[at + 1]]);
    (
        SocketAddrV4::new(p.src(), port(0)),
        SocketAddrV4::new(p.dst(), port(2)),
    )
}

fn eth(dst: Mac, src: Mac, ip: Vec<u8>) -> Vec<u8> {
    let mut f = vec![0u8; ethernet::HEADER_LEN];
    ethernet::write_header(&mut f, dst, src, ethertype::IPV4);
    f.extend_from_slice(&ip);
    f
}

fn arp_request(mac: Mac, ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; ethernet::HEADER_LEN + arp::LEN];
    ethernet::write_header(&mut f, Mac::BROADCAST, mac, ethertype::ARP);
    arp::write(
        &mut f[ethernet::HEADER_LEN..],
        arp::OP_REQUEST,
        (mac, ip),
        (Mac::default(), target),
    );
    f
}

fn udp(src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
    let payload = b"natbox demo";
    let len = 8 + payload.len();
    let mut seg = Vec::with_capacity(len);
    for v in [src.port(), dst.port(), len as u16, 0] {
        seg.extend_from_slice(&v.to_be_bytes());
    }
    seg.extend_from_slice(payload);
    let c = pseudo_v4(*src.ip(), *dst.ip(), proto::UDP, len as u16)
        .add_bytes(&seg)
        .finish();
    seg[6..8].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0u8; ipv4::MIN_HEADER_LEN];
    ipv4::write_header(
        &mut ip,
        &ipv4::Header {
            src: *src.ip(),
            dst: *dst.ip(),
            protocol: proto::UDP,
            ttl: 64,
            ident: 1,
            payload_len: len,
        },
    );
    debug_assert_eq!(checksum::checksum(&ip), 0);
    ip.extend_from_slice(&seg);
    ip
}
