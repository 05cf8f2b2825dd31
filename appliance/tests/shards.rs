//! The shell and the metrics above several engine shards: reads see every shard
//! (merged), changes reach every shard (broadcast), through the `Shards` trait alone.
//! Two engines stand for two workers, each with sessions of its own.

#[path = "../../core/tests/support/mod.rs"]
mod support;
use natbox::control::shards::Shards;
use natbox::engine::control::{Answer, Request};
use natbox::shell::{execute, Action, Context, Facts, Session};
use support::*;

/// Test-only shards: engines answered in place, in order.
struct Engines(Vec<Harness>);

impl Shards for Engines {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn ask(&mut self, request: &Request) -> Vec<Answer> {
        self.0
            .iter_mut()
            .map(|h| h.engine.answer(request, h.now))
            .collect()
    }

    fn ask_one(&mut self, shard: usize, request: &Request) -> Option<Answer> {
        let h = self.0.get_mut(shard)?;
        Some(h.engine.answer(request, h.now))
    }
}

/// Shard 0 holds a UDP session of HOST, shard 1 a TCP and an ICMP session of HOST2;
/// each saw one unsolicited datagram.
fn two_shards() -> Engines {
    let (mut a, mut b) = (Harness::default(), Harness::default());
    a.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    b.from_lan(tcp4(sa(HOST2, 40001), sa(REMOTE2, 80), SYN, &[]));
    b.from_lan(echo4(HOST2, REMOTE2, 7, 1, false));
    for h in [&mut a, &mut b] {
        h.from_wan(udp4(sa(REMOTE, 1), sa(PUBLIC, 9), b"x"));
    }
    Engines(vec![a, b])
}

fn run(shards: &mut Engines, line: &str) -> String {
    let f = Facts {
        roles: vec!["inside", "outside"],
        devices: vec!["lan0".into(), "wan0".into()],
        links: vec!["up", "up"],
        now_ms: shards.0[0].now,
        io: vec![Default::default(); 2],
        dhcp4: Vec::new(),
        ipv6: Vec::new(),
        source: None,
    };
    let ctx = Context {
        shards: Some(shards),
        facts: &f,
        store: None,
        pings: None,
        rollback: None,
    };
    let reply = execute(&mut Session::default(), line, ctx);
    assert_eq!(reply.action, Action::None, "{line}");
    reply.text
}

#[test]
fn show_sessions_lists_every_shards_sessions_and_their_sum() {
    let mut shards = two_shards();
    let all = run(&mut shards, "show sessions");
    assert!(
        all.contains("10.10.0.2:40000")
            && all.contains("10.10.0.3:40001")
            && all.contains("203.0.113.6:80"),
        "{all}"
    );
    assert!(all.ends_with("3 shown of 3 sessions"), "{all}");
    let tcp = run(&mut shards, "show sessions proto tcp");
    assert!(tcp.ends_with("1 shown of 3 sessions"), "{tcp}");
    let json: serde_json::Value =
        serde_json::from_str(&run(&mut shards, "show sessions limit 2 --json")).unwrap();
    assert_eq!(json["total"], 3);
    let rows = json["sessions"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "the limit holds over the shards");
    assert_eq!(rows[0]["inside"], "10.10.0.2:40000", "shard order");
}

#[test]
fn show_stats_and_metrics_sum_every_shard() {
    let mut shards = two_shards();
    let json: serde_json::Value =
        serde_json::from_str(&run(&mut shards, "show stats --json")).unwrap();
    assert_eq!(json["drops"]["no_mapping"], 2);
    assert_eq!(json["counters"]["nat_out_udp"], 1);
    assert_eq!(json["counters"]["nat_out_tcp"], 1);
    assert_eq!(json["counters"]["sessions"], 3);
    let metrics = run(&mut shards, "show metrics");
    for line in [
        "natbox_sessions 3",
        "natbox_drops_total{reason=\"no_mapping\"} 2",
        "natbox_pool_ports_in_use{address=\"198.51.100.10\",proto=\"udp\"} 1",
        "natbox_pool_ports_in_use{address=\"198.51.100.10\",proto=\"tcp\"} 1",
        "natbox_pool_ports_in_use{address=\"198.51.100.10\",proto=\"icmp\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    let pool = run(&mut shards, "show nat pool");
    assert!(
        pool.contains("10.10.0.2") && pool.contains("10.10.0.3"),
        "{pool}"
    );
    assert_eq!(run(&mut shards, "clear stats"), "counters cleared");
    for h in &shards.0 {
        assert_eq!(h.engine.stats().total_drops(), 0);
    }
}

#[test]
fn clear_sessions_reaches_every_shard() {
    let mut shards = two_shards();
    assert_eq!(
        run(&mut shards, "clear sessions proto tcp"),
        "1 sessions cleared"
    );
    assert_eq!(shards.0[0].engine.nat().session_count(), 1);
    assert_eq!(shards.0[1].engine.nat().session_count(), 1);
    assert_eq!(run(&mut shards, "clear sessions"), "2 sessions cleared");
    for h in &shards.0 {
        assert_eq!(h.engine.nat().session_count(), 0);
    }
}

#[test]
fn commit_applies_to_every_shard() {
    let mut shards = two_shards();
    let mut s = Session::default();
    let f = Facts::default();
    let mut line = |shards: &mut Engines, line: &str| {
        let ctx = Context {
            shards: Some(shards),
            facts: &f,
            store: None,
            pings: None,
            rollback: None,
        };
        execute(&mut s, line, ctx).text
    };
    line(&mut shards, "configure");
    line(&mut shards, "set timeouts.udp 600");
    let out = line(&mut shards, "commit");
    assert!(out.contains("applied live, sessions kept"), "{out}");
    for h in &shards.0 {
        assert_eq!(h.engine.config().timeouts.udp, 600);
    }
    assert_eq!(shards.0[1].engine.nat().session_count(), 2);
}

/// The services drain the NAT events of every shard and send each once, through one
/// shard; what they receive is bound on every shard.
#[test]
fn services_drain_every_shards_events_and_send_through_one_shard() {
    let mut c = config();
    c.log.syslog = Some("10.10.0.2:514".parse().unwrap());
    c.metrics.listen = Some("10.10.0.1:9100".parse().unwrap());
    let (mut a, mut b) = (Harness::new(c.clone()), Harness::new(c.clone()));
    a.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    b.from_lan(udp4(sa(HOST2, 40001), sa(REMOTE, 53), b"q"));
    let mut shards = Engines(vec![a, b]);
    let now = shards.0[0].now;
    let mut services = natbox::services::Services::default();
    services.tick(&mut shards, &c, now, &mut |_| String::new());
    let sent = shards.0[0].transmitted();
    let text: Vec<String> = sent
        .iter()
        .map(|(_, f)| String::from_utf8_lossy(&f[14 + 28..]).into_owned())
        .collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(text[0].contains("inside=\"10.10.0.2:40000\""), "{text:?}");
    assert!(text[1].contains("inside=\"10.10.0.3:40001\""), "{text:?}");
    assert!(shards.0[1].transmitted().is_empty(), "sent once");
    for h in &mut shards.0 {
        assert!(h.engine.nat_mut().events_mut().pop().is_none(), "drained");
        assert_eq!(
            h.engine.local_bindings(),
            &[natbox::engine::local::Binding::TcpInside(
                "10.10.0.1:9100".parse().unwrap()
            )]
        );
    }
}

/// A box `ping` takes an echo identifier no NAT mapping uses on its source address,
/// on any shard (RFC 792: the reply must reach the job, not an inside host).
#[test]
fn ping_skips_echo_identifiers_a_mapping_uses_on_another_shard() {
    let (a, mut b) = (Harness::default(), Harness::default());
    b.from_lan(echo4(HOST2, REMOTE2, 1, 1, false));
    let mut shards = Engines(vec![a, b]);
    assert!(
        shards.0[1].engine.nat().echo_ident_taken(PUBLIC, 1),
        "the mapping keeps identifier 1 on the pool address"
    );
    let mut pings = natbox::services::ping::Pings::default();
    let now = shards.0[0].now;
    pings
        .start(&mut shards, REMOTE.into(), 1, now)
        .expect("started");
    let bound: Vec<_> = pings.bindings().collect();
    assert_eq!(
        bound,
        vec![natbox::engine::local::Binding::EchoReply {
            from: REMOTE.into(),
            ident: 2
        }]
    );
}

/// Issue #16: `show workers` has one row per worker (shard), with its own sessions, so
/// an operator sees that every worker carries traffic.
#[test]
fn show_workers_has_a_row_per_shard_with_its_own_sessions() {
    let mut shards = two_shards();
    let json: serde_json::Value =
        serde_json::from_str(&run(&mut shards, "show workers --json")).unwrap();
    let rows = json.as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["worker"].as_u64(), rows[0]["sessions"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(
        (rows[1]["worker"].as_u64(), rows[1]["sessions"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(rows.iter().all(|r| r["rx_packets"].as_u64() > Some(0)));
    let table = run(&mut shards, "show workers");
    assert!(table.starts_with("worker"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
}
