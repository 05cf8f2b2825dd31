//! The admin shell against a live engine: every command's output, prefixes, `--json`,
//! filters, hostile input.

#[path = "../../core/tests/support/mod.rs"]
mod support;
use natbox::control::shards::Inline;
use natbox::engine::stats::DropReason;
use natbox::shell::commit::{self, Rollback};
use natbox::shell::{execute, Action, Context, Facts, Session, Store};
use support::*;

fn facts(h: &Harness) -> Facts {
    Facts {
        roles: vec!["inside", "outside"],
        devices: vec!["lan0".into(), "wan0".into()],
        links: vec!["up", "up"],
        now_ms: h.now,
        io: vec![Default::default(); 2],
        dhcp4: Vec::new(),
        ipv6: Vec::new(),
        source: Some("file natbox.toml".into()),
    }
}

fn run(h: &mut Harness, line: &str) -> String {
    run_in(&mut Session::default(), h, line, None)
}

fn run_in(session: &mut Session, h: &mut Harness, line: &str, store: Option<&mut Saved>) -> String {
    run_with(session, h, line, store.map(|s| s as &mut dyn Store), None)
}

fn run_with(
    session: &mut Session,
    h: &mut Harness,
    line: &str,
    store: Option<&mut dyn Store>,
    rollback: Option<&mut Rollback>,
) -> String {
    let f = facts(h);
    run_facts(session, h, &f, line, store, rollback)
}

fn run_facts(
    session: &mut Session,
    h: &mut Harness,
    f: &Facts,
    line: &str,
    store: Option<&mut dyn Store>,
    rollback: Option<&mut Rollback>,
) -> String {
    let now_ms = h.now;
    let ctx = Context {
        shards: Some(&mut Inline {
            engine: &mut h.engine,
            now_ms,
        }),
        facts: f,
        store: store.map(|s| &mut *s as &mut dyn Store),
        pings: None,
        rollback,
    };
    let reply = execute(session, line, ctx);
    assert_eq!(reply.action, Action::None, "{line}");
    reply.text
}

/// A store that keeps what it was given.
#[derive(Default)]
struct Saved(Vec<firmware_config::Config>);

impl Store for Saved {
    fn save(&mut self, config: &firmware_config::Config) -> Result<String, String> {
        self.0.push(config.clone());
        Ok(format!("saved generation {}", self.0.len()))
    }
}

#[test]
fn configure_set_diff_commit_keeps_sessions_and_saves() {
    let mut h = with_traffic();
    let mut s = Session::default();
    let mut saved = Saved::default();
    assert!(
        run_in(&mut s, &mut h, "set timeouts.udp 600", None).contains("not in configuration mode")
    );
    assert!(run_in(&mut s, &mut h, "configure", None).contains("configuration mode"));
    assert_eq!(run_in(&mut s, &mut h, "set timeouts.udp 600", None), "");
    assert_eq!(
        run_in(&mut s, &mut h, "set nat.filtering address-dependent", None),
        ""
    );
    let bad = run_in(&mut s, &mut h, "set timeouts.udp 5", None);
    assert!(bad.starts_with("error:") && bad.contains("120"), "{bad}");
    let diff = run_in(&mut s, &mut h, "diff", None);
    assert!(
        diff.contains("+ udp = 600") && diff.contains("+ filtering = \"address-dependent\""),
        "{diff}"
    );
    let commit = run_in(&mut s, &mut h, "commit", Some(&mut saved));
    assert!(
        commit.contains("applied live, sessions kept") && commit.contains("saved generation 1"),
        "{commit}"
    );
    assert_eq!(
        h.engine.nat().session_count(),
        3,
        "sessions survive a tuning change"
    );
    assert_eq!(h.engine.config().timeouts.udp, 600);
    assert_eq!(
        saved.0[0].nat.filtering,
        firmware_config::Filtering::AddressDependent
    );
    // The new UDP timeout applies to the live session.
    let udp = run(&mut h, "show sessions proto udp");
    assert!(udp.contains("600s"), "{udp}");
    assert!(run_in(&mut s, &mut h, "commit", None).contains("not in configuration mode"));
}

/// A store whose disk has failed.
struct Broken;

impl Store for Broken {
    fn save(&mut self, _: &firmware_config::Config) -> Result<String, String> {
        Err("/dev/vdb: I/O error".into())
    }
}

#[test]
fn a_commit_that_cannot_be_saved_is_not_applied() {
    let mut h = with_traffic();
    let mut s = Session::default();
    run_in(&mut s, &mut h, "configure", None);
    run_in(&mut s, &mut h, "set timeouts.udp 600", None);
    let out = run_with(&mut s, &mut h, "commit", Some(&mut Broken), None);
    assert!(
        out.contains("not saved, so not applied") && out.contains("I/O error"),
        "{out}"
    );
    assert_eq!(
        h.engine.config().timeouts.udp,
        300,
        "the running config is unchanged"
    );
    assert!(s.configuring(), "the candidate is kept for another try");
}

#[test]
fn commit_confirmed_rolls_back_unless_confirmed() {
    let mut h = with_traffic();
    let mut s = Session::default();
    let mut saved = Saved::default();
    let mut rollback = Rollback::default();
    let original = h.engine.config().clone();
    run_in(&mut s, &mut h, "configure", None);
    run_in(&mut s, &mut h, "set timeouts.udp 600", None);
    for bad in [
        "commit confirmed 0",
        "commit confirmed 61",
        "commit confirmed soon",
    ] {
        let out = run_with(&mut s, &mut h, bad, Some(&mut saved), Some(&mut rollback));
        assert!(out.contains("1 to 60"), "{bad}: {out}");
    }
    let out = run_with(
        &mut s,
        &mut h,
        "commit confirmed 2",
        Some(&mut saved),
        Some(&mut rollback),
    );
    assert!(out.contains("rolls back in 2 min"), "{out}");
    assert_eq!(h.engine.config().timeouts.udp, 600);
    assert_eq!(rollback.deadline_ms(), Some(h.now + 120_000));
    // Nothing happens before the deadline; at it, the old config is saved and applied.
    assert!(rollback.due(h.now + 119_999).is_none());
    let previous = rollback.due(h.now + 120_000).expect("due at the deadline");
    let mut one = Inline {
        engine: &mut h.engine,
        now_ms: h.now,
    };
    let said = commit::roll_back(&previous, &mut one, Some(&mut saved));
    assert!(said.contains("rolled back"), "{said}");
    assert_eq!(*h.engine.config(), original);
    assert_eq!(saved.0.last(), Some(&original), "the rollback is saved too");
    assert_eq!(
        h.engine.nat().session_count(),
        3,
        "a tuning rollback keeps sessions"
    );

    // Confirmed in time: nothing rolls back.
    run_in(&mut s, &mut h, "configure", None);
    run_in(&mut s, &mut h, "set timeouts.udp 600", None);
    run_with(
        &mut s,
        &mut h,
        "commit confirmed 1",
        Some(&mut saved),
        Some(&mut rollback),
    );
    let out = run_with(&mut s, &mut h, "confirm", None, Some(&mut rollback));
    assert!(out.contains("rollback is cancelled"), "{out}");
    assert!(rollback.due(u64::MAX).is_none());
    let out = run_with(&mut s, &mut h, "confirm", None, Some(&mut rollback));
    assert!(out.contains("nothing to confirm"), "{out}");
    assert_eq!(h.engine.config().timeouts.udp, 600);
}

#[test]
fn a_commit_that_changes_a_port_says_the_port_reopens() {
    let mut h = with_traffic();
    let mut s = Session::default();
    run_in(&mut s, &mut h, "configure", None);
    assert_eq!(run_in(&mut s, &mut h, "set outside.mtu 9000", None), "");
    let out = run_in(&mut s, &mut h, "commit", None);
    assert!(
        out.contains("outside port reopens on wan0 with MTU 9000"),
        "{out}"
    );
    assert!(!out.contains("inside port"), "{out}");
    assert_eq!(h.engine.port_info(OUTSIDE).mtu, 9000);
}

/// Issue #16: a change that rebuilds the tables keeps every session whose mapping is
/// still possible; here the TCP and UDP mappings (external ports 40000 and 40001) fall
/// below the new range and end, the ICMP one (identifiers are not ranged) stays.
#[test]
fn configure_addressing_change_keeps_possible_sessions_and_abort_discards() {
    let mut h = with_traffic();
    let mut s = Session::default();
    run_in(&mut s, &mut h, "configure", None);
    run_in(&mut s, &mut h, "set nat.port_min 45000", None);
    assert_eq!(run_in(&mut s, &mut h, "abort", None), "candidate discarded");
    assert_eq!(h.engine.config().nat.port_min, 1);
    run_in(&mut s, &mut h, "configure", None);
    run_in(&mut s, &mut h, "set nat.port_min 45000", None);
    let commit = run_in(&mut s, &mut h, "commit", None);
    assert!(
        commit.contains("tables rebuilt: 2 sessions ended") && commit.contains("not saved"),
        "{commit}"
    );
    assert_eq!(h.engine.nat().session_count(), 1);
    let out = h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    assert!(
        endpoints4(out.ip()).0.port() >= 45000,
        "the new port range applies"
    );
}

fn with_traffic() -> Harness {
    let mut h = Harness::default();
    h.from_lan(udp4(sa(HOST, 40000), sa(REMOTE, 53), b"q"));
    h.from_lan(tcp4(sa(HOST, 40001), sa(REMOTE, 80), SYN, &[]));
    h.from_lan(echo4(HOST, REMOTE, 7, 1, false));
    h.from_wan(udp4(sa(REMOTE, 1), sa(PUBLIC, 9), b"x")); // unsolicited
    h
}

#[test]
fn show_sessions_table_filters_and_json() {
    let mut h = with_traffic();
    let all = run(&mut h, "show sessions");
    assert!(
        all.contains("10.10.0.2:40000")
            && all.contains("198.51.100.10:40000")
            && all.contains("203.0.113.5:53"),
        "{all}"
    );
    assert!(all.contains("3 shown of 3 sessions"), "{all}");
    let udp = run(&mut h, "sh ses pro udp");
    assert!(
        udp.contains("1 shown of 3") && !udp.contains(":80"),
        "{udp}"
    );
    let by_remote = run(&mut h, "show sessions remote 203.0.113.5:80");
    assert!(
        by_remote.contains("syn_out") && by_remote.contains("1 shown"),
        "{by_remote}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(&mut h, "show sessions limit 2 --json")).unwrap();
    assert_eq!(json["total"], 3);
    assert_eq!(json["sessions"].as_array().unwrap().len(), 2);
    let e = run(&mut h, "show sessions proto gre");
    assert!(
        e.starts_with("error:") && e.contains("tcp, udp or icmp"),
        "{e}"
    );
}

#[test]
fn clear_sessions_with_filter() {
    let mut h = with_traffic();
    assert_eq!(
        run(&mut h, "clear sessions proto tcp"),
        "1 sessions cleared"
    );
    assert_eq!(h.engine.nat().session_count(), 2);
    assert_eq!(run(&mut h, "clear sessions"), "2 sessions cleared");
    assert_eq!(h.engine.nat().session_count(), 0);
}

#[test]
fn show_stats_lists_every_drop_reason_and_clear_stats_resets() {
    let mut h = with_traffic();
    let stats = run(&mut h, "show stats");
    for r in DropReason::ALL {
        assert!(stats.contains(r.name()), "missing {}", r.name());
    }
    let json: serde_json::Value = serde_json::from_str(&run(&mut h, "show stats --json")).unwrap();
    assert_eq!(json["drops"]["no_mapping"], 1);
    assert_eq!(json["counters"]["nat_out_udp"], 1);
    assert_eq!(run(&mut h, "clear stats"), "counters cleared");
    assert_eq!(h.engine.stats().drops_for(DropReason::NoMapping), 0);
}

#[test]
fn other_show_commands() {
    let mut h = with_traffic();
    let ifs = run(&mut h, "show interfaces");
    assert!(
        ifs.contains("lan0") && ifs.contains("10.10.0.1/24") && ifs.contains("rx_packets"),
        "{ifs}"
    );
    let pool = run(&mut h, "show nat pool");
    assert!(
        pool.contains("198.51.100.10") && pool.contains("10.10.0.2"),
        "{pool}"
    );
    let neigh = run(&mut h, "show neighbors");
    assert!(
        neigh.contains("198.51.100.1") && neigh.contains("02:00:00:00:02:02"),
        "{neigh}"
    );
    let routes = run(&mut h, "show routes");
    assert!(
        routes.contains("0.0.0.0/0") && routes.contains("198.51.100.1"),
        "{routes}"
    );
    let config = run(&mut h, "show config");
    assert!(
        config.contains("[inside]") && config.contains("lan0"),
        "{config}"
    );
    // The source and the digest of the configuration in force head it, as a comment
    // that keeps the text TOML.
    let running = h.engine.config().clone();
    let digest = firmware_config::digest(&running);
    assert!(
        config.starts_with(&format!(
            "# source: file natbox.toml, sha256 {}\n",
            &digest[..16]
        )),
        "{config}"
    );
    assert_eq!(firmware_config::from_toml(&config).unwrap(), running);
    let json: serde_json::Value = serde_json::from_str(&run(&mut h, "show config --json")).unwrap();
    assert_eq!(json["source"], "file natbox.toml");
    assert_eq!(json["sha256"], digest.as_str());
    assert_eq!(json["config"]["inside"]["port"], "lan0");
    assert!(run(&mut h, "show version").starts_with("natbox "));
    assert!(run(&mut h, "show uptime").starts_with("up "));
    let metrics = run(&mut h, "show metrics");
    assert!(
        metrics.contains("natbox_drops_total{reason=\"no_mapping\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("natbox_pool_ports_in_use{address=\"198.51.100.10\",proto=\"udp\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "natbox_config_info{{source=\"file natbox.toml\",sha256=\"{digest}\"}} 1"
        )),
        "{metrics}"
    );
    assert!(run(&mut h, "show states6").contains("0 shown of 0 states"));
}

#[test]
fn help_and_question_mark() {
    let mut h = Harness::default();
    assert!(run(&mut h, "help").contains("show sessions"));
    let q = run(&mut h, "show ?");
    assert!(q.contains("show stats") && !q.contains("poweroff"), "{q}");
    assert!(run(&mut h, "sh?").contains("show interfaces"));
    assert!(run(&mut h, "show s").contains("ambiguous"));
}

#[test]
fn hostile_input_gets_clear_errors() {
    let mut h = Harness::default();
    let long = "show ".repeat(1000);
    assert!(run(&mut h, &long).contains("line too long"));
    assert!(run(&mut h, "show \x1b[2J stats").contains("control characters"));
    assert!(run(&mut h, "\u{0}\u{1}").contains("control characters"));
    assert!(run(&mut h, "ßhow stats").contains("unknown word"));
    assert_eq!(run(&mut h, "   "), "");
}

#[test]
fn actions_and_no_engine() {
    let h = Harness::default();
    let f = facts(&h);
    let off = |line: &str| {
        let ctx = Context {
            shards: None,
            facts: &f,
            store: None,
            pings: None,
            rollback: None,
        };
        execute(&mut Session::default(), line, ctx)
    };
    assert_eq!(off("poweroff").action, Action::Poweroff);
    assert_eq!(off("reboot").action, Action::Reboot);
    assert_eq!(off("exit").action, Action::Exit);
    assert!(off("show sessions").text.contains("forwarding is off"));
    assert!(off("configure").text.contains("forwarding is off"));
    assert!(off("log level nonsense")
        .text
        .contains("expected error, warn"));
}

/// A command runs between two dataplane batches: `limit` is capped, so no command
/// renders an unbounded list (hardening: the control plane cannot stall forwarding).
#[test]
fn show_sessions_limit_above_the_cap_is_refused_naming_the_cap() {
    let mut h = with_traffic();
    let out = run(&mut h, "show sessions limit 1000000");
    assert!(
        out.starts_with("error: limit 1000000: at most 1000;") && out.contains("filters"),
        "{out}"
    );
    assert!(run(&mut h, "show states6 limit 1001").starts_with("error: limit 1001: at most 1000"));
    assert!(run(&mut h, "show log limit 99999999999999999999").contains("expected a number"));
    assert!(run(&mut h, "show sessions limit 1000").contains("shown of"));
}

#[test]
fn switching_between_one_armed_and_two_ports_is_refused_live() {
    let mut h = Harness::default();
    let running = h.engine.config().clone();
    let mut one_armed = running.clone();
    one_armed.inside = None;
    one_armed.nat.inside_prefixes = vec!["10.10.0.0/24".parse().unwrap()];
    let mut one = Inline {
        engine: &mut h.engine,
        now_ms: 0,
    };
    let refused = commit::commit(&one_armed, &mut one, None, None, None).unwrap_err();
    assert!(
        refused.starts_with(
            "[inside] removed: switching between one-armed and two ports happens at boot only"
        ),
        "{refused}"
    );
    assert_eq!(h.engine.config(), &running);
}

/// Issue #16: a one-armed box renders its one port (both roles) as valid Prometheus
/// metric names (`natbox_inside_outside_rx_packets_total`), and its I/O counters under the
/// display label.
#[test]
fn one_armed_port_renders_valid_metric_names() {
    let toml = "[outside]\nport = \"seg0\"\nipv4 = \"10.10.0.1/24\"\n\
                gateway4 = \"10.10.0.254\"\n[nat]\npool = [\"10.10.0.1\"]\n\
                inside_prefixes = [\"10.10.0.0/25\"]\n";
    let config = firmware_config::from_toml(toml).unwrap();
    let mac = natbox::wire::ethernet::Mac([2, 0, 0, 0, 0, 1]);
    let mut engine = natbox::engine::Engine::new(&config, &[natbox::engine::PortSetup { mac }]);
    let facts = Facts {
        roles: vec!["inside+outside"],
        devices: vec!["seg0".into()],
        links: vec!["up"],
        now_ms: 0,
        io: vec![natbox::engine::stats::IoCounters::default()],
        dhcp4: Vec::new(),
        ipv6: Vec::new(),
        source: None,
    };
    let mut shards = Inline {
        engine: &mut engine,
        now_ms: 0,
    };
    let out = natbox::shell::metrics::render(&mut shards, &facts);
    assert!(
        out.contains("\nnatbox_inside_outside_rx_packets_total 0\n"),
        "{out}"
    );
    assert!(out.contains("natbox_io_socket_drops_total{port=\"inside+outside\"} 0"));
    for line in out.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "not a metric name: {line}"
        );
    }
}

/// Issue #17: `show dhcp` lists each DHCP client (here one that has not heard a
/// server yet) and says so when no port takes its address by DHCP.
#[test]
fn show_dhcp_lists_the_clients_state() {
    let mut h = Harness::default();
    let mut f = facts(&h);
    let show = |h: &mut Harness, f: &Facts, line: &str| {
        run_facts(&mut Session::default(), h, f, line, None, None)
    };
    assert!(show(&mut h, &f, "show dhcp").contains("no port takes its address by DHCP"));
    let client = natbox_core::dhcp4::Client::new([2, 0, 0, 0, 2, 1], 7, 0);
    f.dhcp4 = vec![("outside", client.snapshot(0))];
    let text = show(&mut h, &f, "show dhcp");
    assert!(text.contains("outside") && text.contains("init"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&show(&mut h, &f, "show dhcp --json")).expect("JSON");
    assert_eq!(json[0]["state"], "init");
    assert_eq!(json[0]["address"], serde_json::Value::Null);
}

/// Issue #17: a DHCP port nobody answers says so in `show interfaces` (state, and how
/// long without an answer) and in the metrics (`natbox_dhcp4_seconds_without_lease`,
/// `natbox_dhcp4_bound` 0); a static port shows no DHCP state, and every port's link
/// is a gauge (`natbox_port_up`).
#[test]
fn a_dhcp_port_without_an_answer_says_so_in_show_interfaces_and_the_metrics() {
    let mut h = Harness::default();
    let mut f = facts(&h);
    f.links = vec!["up", "down"];
    let mut client = natbox_core::dhcp4::Client::new([2, 0, 0, 0, 2, 1], 7, 0);
    client.handle_timeout(0);
    f.dhcp4 = vec![("outside", client.snapshot(45_000))];
    let text = run_facts(
        &mut Session::default(),
        &mut h,
        &f,
        "show interfaces",
        None,
        None,
    );
    let line = |role: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{role} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("outside").contains("selecting, no answer for 0m 45s"),
        "{text}"
    );
    assert!(!line("inside").contains("selecting"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&run_facts(
        &mut Session::default(),
        &mut h,
        &f,
        "show interfaces --json",
        None,
        None,
    ))
    .expect("JSON");
    assert_eq!(json[1]["dhcp"], "selecting, no answer for 0m 45s");
    assert_eq!(json[0]["dhcp"], serde_json::Value::Null);
    let metrics = run_facts(
        &mut Session::default(),
        &mut h,
        &f,
        "show metrics",
        None,
        None,
    );
    for want in [
        "natbox_dhcp4_bound{port=\"outside\"} 0",
        "natbox_dhcp4_seconds_without_lease{port=\"outside\"} 45",
        "natbox_port_up{port=\"inside\"} 1",
        "natbox_port_up{port=\"outside\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == want),
            "{want} not in {metrics}"
        );
    }
}

/// Issue #17: while forwarding is off because a port is missing, `show interfaces`
/// names the configured ports and which one is missing, and `show metrics` has the
/// ports' gauges (the rest needs the dataplane).
#[test]
fn while_a_port_is_missing_show_interfaces_and_metrics_say_which() {
    let f = Facts {
        roles: vec!["inside", "outside"],
        devices: vec!["lan0".into(), "wan9".into()],
        links: vec!["waiting", "missing"],
        ..Facts::default()
    };
    let run_off = |line: &str| {
        let ctx = Context {
            shards: None,
            facts: &f,
            store: None,
            pings: None,
            rollback: None,
        };
        execute(&mut Session::default(), line, ctx).text
    };
    let text = run_off("show interfaces");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().eq(["outside", "wan9", "missing"])),
        "{text}"
    );
    assert!(text.contains("forwarding is off"), "{text}");
    let metrics = run_off("show metrics");
    assert!(
        metrics.contains("natbox_port_up{port=\"outside\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("natbox_port_up{port=\"inside\"} 0\n"),
        "{metrics}"
    );
    assert!(run_off("show sessions").contains("forwarding is off"));
}

/// Issue #17: `show ipv6` shows the router and the SLAAC address learned from a Router
/// Advertisement, with their state and lifetimes, the DHCPv6 client of a `"dhcp"`
/// port, and the metrics carry them.
#[test]
fn show_ipv6_shows_the_learned_router_address_and_dhcp6_client() {
    use natbox::engine::lease6::Lease6;
    use natbox::services::ipv6::View;
    use natbox_core::autoconf::{Action, Autoconf, Mode};
    let mut h = Harness::default();
    let mut f = facts(&h);
    let show = |h: &mut Harness, f: &Facts, line: &str| {
        run_facts(&mut Session::default(), h, f, line, None, None)
    };
    assert!(show(&mut h, &f, "show ipv6").contains("no port learns IPv6"));
    let mode = Mode {
        router: true,
        slaac: true,
    };
    let mut auto = Autoconf::new(BOX_WAN_MAC, mode, 1, 0);
    let mut body = vec![0u8; 8];
    body.extend_from_slice(&[
        3, 4, 64, 0xc0, 0, 1, 0x51, 0x80, 0, 0, 0x38, 0x40, 0, 0, 0, 0,
    ]);
    body.extend_from_slice(
        &"2001:db8:ff::"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    let router: std::net::Ipv6Addr = "fe80::2:2".parse().unwrap();
    let ra = icmp6_hops(
        router,
        "ff02::1".parse().unwrap(),
        134,
        0,
        [64, 0, 7, 8],
        &body,
        255,
    );
    assert!(auto.receive(0, &ra));
    while auto.poll_action().is_some() {}
    auto.handle_timeout(1000);
    assert!(matches!(auto.poll_action(), Some(Action::DadVerdict(_))));
    auto.dad_result(false);
    let lease = Lease6 {
        address: auto.address(),
        router: auto.router(),
    };
    let view = |address_from, dhcp6| View {
        address_from,
        auto: auto.snapshot(1000),
        dhcp6,
        lease: Some(lease),
    };
    f.ipv6 = vec![("outside", view("slaac", None))];
    let text = show(&mut h, &f, "show ipv6");
    for want in [
        "fe80::2:2",
        "2001:db8:ff::ff:fe00:201/64",
        "preferred",
        "29m 59s",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&show(&mut h, &f, "show ipv6 --json")).expect("JSON");
    assert_eq!(json[0]["router"], "fe80::2:2");
    assert_eq!(json[0]["address_state"], "preferred");
    assert_eq!(json[0]["router_adverts_received"], 1);
    let metrics = show(&mut h, &f, "show metrics");
    for want in [
        "natbox_ipv6_router_learned{port=\"outside\"} 1",
        "natbox_ipv6_address_learned{port=\"outside\"} 1",
        "natbox_ipv6_router_seconds_left{port=\"outside\"} 1799",
    ] {
        assert!(metrics.lines().any(|l| l == want), "{want}");
    }
    let client = natbox_core::dhcp6::Client::new(BOX_WAN_MAC.0, 7, 0);
    f.ipv6 = vec![("outside", view("dhcp", Some(client.snapshot(0))))];
    let json: serde_json::Value =
        serde_json::from_str(&show(&mut h, &f, "show ipv6 --json")).expect("JSON");
    assert_eq!(json[0]["dhcp6"]["state"], "init");
    assert_eq!(json[0]["address_state"], "init");
    let metrics = show(&mut h, &f, "show metrics");
    assert!(metrics
        .lines()
        .any(|l| l == "natbox_dhcp6_bound{port=\"outside\"} 0"));
}

/// Issue #18: a policy committed live ends the sessions it refuses, `show policy`
/// counts each rule's new sessions (also as JSON and in the metrics), and the rule's
/// reject answers the next connection with a RST.
#[test]
fn issue18_commit_a_policy_then_show_policy_counts_its_hits() {
    let mut h = with_traffic();
    let mut s = Session::default();
    assert!(run(&mut h, "show policy").contains("default allow: 0 hits\n0 shown of 0 rules"));
    run_in(&mut s, &mut h, "configure", None);
    let set = run_in(
        &mut s,
        &mut h,
        r#"set policy.rule [{action = "reject", protocol = "tcp", port = 80, comment = "no plain http"}, {action = "allow", destination = "203.0.113.0/24"}]"#,
        None,
    );
    assert_eq!(set, "");
    assert_eq!(run_in(&mut s, &mut h, "set policy.default deny", None), "");
    let bad = run_in(
        &mut s,
        &mut h,
        "set policy.rule [{action = \"deny\", protocol = \"icmp\", port = 1}]",
        None,
    );
    assert!(bad.contains("only TCP and UDP have ports"), "{bad}");
    let commit = run_in(&mut s, &mut h, "commit", None);
    assert!(
        commit.contains(
            "applied live: 1 sessions the new egress policy refuses ended, the others kept"
        ),
        "{commit}"
    );
    assert_eq!(
        h.engine.nat().session_count(),
        2,
        "the TCP session to port 80 ended"
    );
    let syn = h.from_lan(tcp4(sa(HOST, 40002), sa(REMOTE, 80), SYN, &[]));
    assert_eq!(syn.verdict, natbox::engine::Verdict::Reply(INSIDE));
    let ok = h.from_lan(udp4(sa(HOST, 40003), sa(REMOTE, 53), b"q"));
    assert_eq!(ok.verdict, natbox::engine::Verdict::Forward(OUTSIDE));
    let denied = h.from_lan(udp4(
        sa(HOST, 40003),
        sa("192.0.2.1".parse().unwrap(), 53),
        b"q",
    ));
    assert_eq!(
        denied.verdict,
        natbox::engine::Verdict::Drop(DropReason::PolicyDeny)
    );
    let shown = run(&mut h, "show policy");
    assert!(
        shown.contains("0     reject  tcp any -> any port 80     1     no plain http"),
        "{shown}"
    );
    assert!(
        shown.contains("1     allow   any any -> 203.0.113.0/24  1"),
        "{shown}"
    );
    assert!(
        shown.contains("default deny: 1 hits\n2 shown of 2 rules"),
        "{shown}"
    );
    assert!(run(&mut h, "show policy limit 1").contains("1 shown of 2 rules"));
    let json: serde_json::Value =
        serde_json::from_str(&run(&mut h, "show policy --json")).expect("JSON");
    assert_eq!(json["rules"][0]["hits"], 1);
    assert_eq!(json["rules"][0]["port"], "80");
    assert_eq!(json["default"]["action"], "deny");
    assert_eq!(json["total"], 2);
    let metrics = run(&mut h, "show metrics");
    assert!(
        metrics.contains("natbox_policy_hits_total{rule=\"0\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("natbox_policy_hits_total{rule=\"default\"} 1\n"));
    assert!(metrics.contains("natbox_drops_total{reason=\"policy_reject\"} 1\n"));
    run(&mut h, "clear stats");
    assert!(run(&mut h, "show policy").contains("default deny: 0 hits"));
}
