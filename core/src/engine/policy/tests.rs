//! The compiled policy against the rules walked one by one, as the documentation
//! defines them (`firmware_config::policy`): first match wins, else the default.

use super::*;
use firmware_config::policy::PortRange;
use proptest::prelude::*;
use std::net::IpAddr;

/// A packet as the policy sees it.
#[derive(Debug, Clone, Copy)]
struct Pkt {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    /// Destination port (TCP, UDP) or ICMP type.
    value: u16,
}

/// Whether `rule` matches `p`, field by field.
fn matches(rule: &Rule, p: &Pkt) -> bool {
    let addr_ok = |prefix: Option<Prefix>, a: IpAddr| prefix.is_none_or(|x| x.0.contains(&a));
    let ports = p.proto == 6 || p.proto == 17;
    let icmp = p.proto == 1 || p.proto == 58;
    // ICMP is an IPv4 protocol and ICMPv6 an IPv6 one, whatever a packet's next
    // header says.
    let family_ok = match rule.protocol {
        Protocol::Icmp => p.src.is_ipv4(),
        Protocol::Icmpv6 => p.src.is_ipv6(),
        _ => true,
    };
    family_ok
        && addr_ok(rule.source, p.src)
        && addr_ok(rule.destination, p.dst)
        && rule.protocol.number().is_none_or(|n| n == p.proto)
        && rule
            .port
            .is_none_or(|r| ports && r.first <= p.value && p.value <= r.last)
        && rule
            .icmp_type
            .is_none_or(|t| icmp && u16::from(t) == p.value)
}

/// The linear walk: the action of the first matching rule, else the default.
fn walk(policy: &Written, p: &Pkt) -> (Option<u32>, Action) {
    match policy.rule.iter().position(|r| matches(r, p)) {
        Some(i) => (Some(i as u32), policy.rule[i].action),
        None => (None, policy.default),
    }
}

fn key(p: &Pkt) -> u32 {
    let value = match p.proto {
        1 | 6 | 17 | 58 => p.value,
        _ => 0,
    };
    l4_key(p.proto, value)
}

/// The compiled decision, counted, and which rule's counter moved.
fn compiled(policy: &mut Policy, p: &Pkt) -> (Option<u32>, Action) {
    let before = policy.hits();
    let result = match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => policy.admit4(s, d, key(p)),
        (IpAddr::V6(s), IpAddr::V6(d)) => policy.admit6(&s, &d, key(p)),
        _ => unreachable!("packets have one family"),
    };
    let after = policy.hits();
    let rule = (0..after.rules.len())
        .find(|&i| after.rules[i] != before.rules[i])
        .map(|i| i as u32);
    if policy.active {
        assert_eq!(
            after.rules.iter().sum::<u64>() + after.default,
            before.rules.iter().sum::<u64>() + before.default + 1,
            "exactly one counter moves"
        );
    }
    let action = match result {
        Ok(()) => Action::Allow,
        Err(DropReason::PolicyDeny) => Action::Deny,
        Err(DropReason::PolicyReject) => Action::Reject,
        Err(other) => panic!("{other:?}"),
    };
    (rule, action)
}

// Small universes, so random rules and packets meet often.
fn addr4() -> impl Strategy<Value = Ipv4Addr> {
    (0u32..4, 0u32..256).prop_map(|(a, b)| Ipv4Addr::from_bits(0x0a00_0000 | a << 16 | b))
}

fn addr6() -> impl Strategy<Value = Ipv6Addr> {
    (0u128..4, 0u128..256).prop_map(|(a, b)| Ipv6Addr::from_bits(0x2001_0db8 << 96 | a << 64 | b))
}

fn prefix4() -> impl Strategy<Value = Prefix> {
    (
        addr4(),
        prop::sample::select(vec![0u8, 8, 14, 16, 24, 28, 31, 32]),
    )
        .prop_map(|(a, l)| {
            Prefix(IpNet::V4(
                ipnet::Ipv4Net::new(a, l).expect("length").trunc(),
            ))
        })
}

fn prefix6() -> impl Strategy<Value = Prefix> {
    (
        addr6(),
        prop::sample::select(vec![0u8, 32, 62, 64, 120, 124, 127, 128]),
    )
        .prop_map(|(a, l)| {
            Prefix(IpNet::V6(
                ipnet::Ipv6Net::new(a, l).expect("length").trunc(),
            ))
        })
}

const PORTS: [u16; 8] = [0, 1, 22, 53, 80, 443, 1024, 65535];

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![prop::sample::select(PORTS.to_vec()), any::<u16>()]
}

/// A rule of the shapes validation lets through.
fn rule() -> impl Strategy<Value = Rule> {
    let family = prop_oneof![Just(None), Just(Some(4u8)), Just(Some(6u8))];
    (
        family,
        prop::sample::select(vec![Action::Allow, Action::Deny, Action::Reject]),
        any::<(bool, bool)>(),
        (prefix4(), prefix4(), prefix6(), prefix6()),
        0usize..5,
        (port(), port(), any::<bool>()),
        prop::option::of(prop::sample::select(vec![0u8, 3, 8, 128, 129])),
    )
        .prop_map(
            |(
                family,
                action,
                (has_src, has_dst),
                (s4, d4, s6, d6),
                proto,
                (a, b, has_port),
                icmp_type,
            )| {
                let (source, destination) = match family {
                    Some(4) => (has_src.then_some(s4), has_dst.then_some(d4)),
                    Some(_) => (has_src.then_some(s6), has_dst.then_some(d6)),
                    None => (None, None),
                };
                let protocol = match (proto, family) {
                    (1, _) => Protocol::Tcp,
                    (2, _) => Protocol::Udp,
                    (3, Some(6)) => Protocol::Icmpv6,
                    (3, _) => Protocol::Icmp,
                    (4, Some(4)) => Protocol::Icmp,
                    (4, _) => Protocol::Icmpv6,
                    _ => Protocol::Any,
                };
                let ported = matches!(protocol, Protocol::Tcp | Protocol::Udp);
                let icmp = matches!(protocol, Protocol::Icmp | Protocol::Icmpv6);
                Rule {
                    action,
                    source,
                    destination,
                    protocol,
                    port: (ported && has_port).then(|| PortRange {
                        first: a.min(b),
                        last: a.max(b),
                    }),
                    icmp_type: icmp_type.filter(|_| icmp),
                    comment: None,
                }
            },
        )
}

fn packet() -> impl Strategy<Value = Pkt> {
    (
        any::<bool>(),
        (addr4(), addr4(), addr6(), addr6()),
        prop::sample::select(vec![1u8, 6, 17, 58, 47]),
        prop_oneof![port(), prop::sample::select(vec![0u16, 3, 8, 128, 129])],
    )
        .prop_map(|(v6, (s4, d4, s6, d6), proto, value)| {
            let (src, dst) = if v6 {
                (IpAddr::V6(s6), IpAddr::V6(d6))
            } else {
                (IpAddr::V4(s4), IpAddr::V4(d4))
            };
            Pkt {
                src,
                dst,
                proto,
                value,
            }
        })
}

fn written() -> impl Strategy<Value = Written> {
    (
        prop::sample::select(vec![Action::Allow, Action::Deny, Action::Reject]),
        prop::collection::vec(rule(), 0..120),
    )
        .prop_map(|(default, rule)| Written { default, rule })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The compiled lookup decides as the linear walk, and counts the deciding rule.
    #[test]
    fn compiled_lookup_agrees_with_the_linear_walk(
        written in written(),
        packets in prop::collection::vec(packet(), 64),
    ) {
        let mut policy = Policy::new(&written);
        for p in &packets {
            let (rule, action) = walk(&written, p);
            let got = compiled(&mut policy, p);
            if policy.active {
                prop_assert_eq!(got, (rule, action), "{:?}", p);
            } else {
                prop_assert_eq!(got, (None, Action::Allow));
            }
            let undecided = match (p.src, p.dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => policy.decide4(s, d, key(p)),
                (IpAddr::V6(s), IpAddr::V6(d)) => policy.decide6(&s, &d, key(p)),
                _ => unreachable!(),
            };
            prop_assert_eq!(undecided, action);
        }
    }
}

fn rules(text: &str) -> Written {
    let base = include_str!("../../../../natbox.toml");
    firmware_config::from_toml(&format!("{base}\n{text}"))
        .expect("valid")
        .policy
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn no_rules_and_allow_is_off() {
    let mut p = Policy::default();
    assert!(!p.active);
    assert_eq!(
        p.admit4(v4("10.10.0.2"), v4("192.0.2.1"), l4_key(6, 80)),
        Ok(())
    );
    assert_eq!(p.hits().default, 0, "nothing is counted while off");
    let mut deny_all = Policy::new(&rules("[policy]\ndefault = \"deny\"\n"));
    assert_eq!(
        deny_all.admit4(v4("10.10.0.2"), v4("192.0.2.1"), l4_key(6, 80)),
        Err(DropReason::PolicyDeny)
    );
    assert_eq!(deny_all.hits().default, 1);
}

#[test]
fn deny_and_reject_name_their_drop_reasons_and_count_the_rule() {
    let mut p = Policy::new(&rules(
        "[[policy.rule]]\naction = \"reject\"\nprotocol = \"tcp\"\nport = 25\n\
         [[policy.rule]]\naction = \"deny\"\ndestination = \"192.0.2.0/24\"\n\
         [[policy.rule]]\naction = \"allow\"\nprotocol = \"icmpv6\"\nicmp_type = 128\n",
    ));
    let (h, remote) = (v4("10.10.0.2"), v4("192.0.2.9"));
    assert_eq!(
        p.admit4(h, remote, l4_key(6, 25)),
        Err(DropReason::PolicyReject)
    );
    assert_eq!(
        p.admit4(h, remote, l4_key(6, 80)),
        Err(DropReason::PolicyDeny)
    );
    assert_eq!(p.admit4(h, v4("198.51.100.7"), l4_key(17, 53)), Ok(()));
    let (h6, r6): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8:10::2".parse().unwrap(),
        "2001:db8:99::1".parse().unwrap(),
    );
    assert_eq!(p.admit6(&h6, &r6, l4_key(58, 128)), Ok(()));
    assert_eq!(
        p.admit6(&h6, &r6, l4_key(6, 25)),
        Err(DropReason::PolicyReject)
    );
    let hits = p.hits();
    assert_eq!((hits.rules, hits.default), (vec![2, 1, 1], 1));
}

#[test]
fn a_new_policy_keeps_the_counters_of_rules_left_in_place() {
    let first = rules(
        "[[policy.rule]]\naction = \"deny\"\nprotocol = \"tcp\"\nport = 25\n\
         [[policy.rule]]\naction = \"deny\"\nprotocol = \"udp\"\nport = 53\n",
    );
    let mut p = Policy::new(&first);
    let h = v4("10.10.0.2");
    let _ = p.admit4(h, h, l4_key(6, 25));
    let _ = p.admit4(h, h, l4_key(17, 53));
    let _ = p.admit4(h, h, l4_key(17, 54));
    let same = p.clone().replaced_by(&first);
    assert_eq!(same.hits().rules, vec![1, 1]);
    let mut changed = first.clone();
    changed.rule[1].action = Action::Reject;
    let p = p.replaced_by(&changed);
    let hits = p.hits();
    assert_eq!((hits.rules, hits.default), (vec![1, 0], 1));
    assert_eq!(
        p.decide4(h, h, l4_key(17, 53)),
        Action::Reject,
        "the new rules are in force"
    );
}

#[test]
fn hits_of_shards_sum_rule_by_rule() {
    let a = Hits {
        rules: vec![1, 2],
        default: 3,
        memory: 10,
        limits: None,
    };
    let b = Hits {
        rules: vec![4, 5],
        default: 1,
        memory: 10,
        limits: None,
    };
    assert_eq!(
        Hits::merge([a, b]),
        Hits {
            rules: vec![5, 7],
            default: 4,
            memory: 20,
            limits: None,
        }
    );
}

/// 10 000 rules to distinct destinations, and the nesting that makes the sets of
/// intervals big (rules on one wide prefix interleaved with rules on hosts inside it):
/// what a compiled policy holds.
#[test]
fn compiled_size_of_ten_thousand_rules() {
    let host = |i: u32| {
        Prefix(IpNet::V4(
            ipnet::Ipv4Net::new(Ipv4Addr::from_bits(0xc000_0000 + i * 7), 32).unwrap(),
        ))
    };
    let rule = |destination, port: u16, action| Rule {
        action,
        source: None,
        destination: Some(destination),
        protocol: Protocol::Tcp,
        port: Some(PortRange {
            first: port,
            last: port,
        }),
        icmp_type: None,
        comment: None,
    };
    let distinct = Written {
        default: Action::Deny,
        rule: (0..10_000)
            .map(|i| rule(host(i), 443, Action::Allow))
            .collect(),
    };
    let p = Policy::new(&distinct);
    assert!(p.memory() < 2 << 20, "{} bytes", p.memory());
    let wide = Prefix("192.0.0.0/8".parse().unwrap());
    let nested = Written {
        default: Action::Deny,
        rule: (0..10_000u32)
            .map(|i| {
                if i % 2 == 0 {
                    rule(wide, (i / 2) as u16, Action::Deny)
                } else {
                    rule(host(i), 443, Action::Allow)
                }
            })
            .collect(),
    };
    let p = Policy::new(&nested);
    assert!(p.memory() < 16 << 20, "{} bytes", p.memory());
    assert_eq!(
        p.decide4(v4("10.0.0.1"), v4("192.0.0.7"), l4_key(6, 443)),
        Action::Allow
    );
    assert_eq!(
        p.decide4(v4("10.0.0.1"), v4("192.0.0.8"), l4_key(6, 3)),
        Action::Deny
    );
}
