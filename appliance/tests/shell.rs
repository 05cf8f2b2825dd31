//! The admin shell against a live engine: every command's output, prefixes, `--json`,
//! filters, hostile input.

mod support;
use natbox::engine::stats::DropReason;
use natbox::shell::{execute, Action, Facts};
use support::*;

fn facts(h: &Harness) -> Facts {
    Facts {
        devices: ["lan0".into(), "wan0".into()],
        links: ["up", "up"],
        now_ms: h.now,
    }
}

fn run(h: &mut Harness, line: &str) -> String {
    let f = facts(h);
    let reply = execute(line, Some(&mut h.engine), &f);
    assert_eq!(reply.action, Action::None, "{line}");
    reply.text
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
    assert_eq!(execute("poweroff", None, &f).action, Action::Poweroff);
    assert_eq!(execute("reboot", None, &f).action, Action::Reboot);
    assert_eq!(execute("exit", None, &f).action, Action::Exit);
    let off = execute("show sessions", None, &f);
    assert!(off.text.contains("forwarding is off"), "{}", off.text);
    assert!(execute("log level nonsense", None, &f)
        .text
        .contains("expected error, warn"));
}
