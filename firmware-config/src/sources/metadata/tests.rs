//! `Fetch` against scripted EC2 and GCE servers: every request goes out as bytes and
//! every response comes back as bytes through `parse_response`, a few bytes at a time.

use super::*;
use crate::sources::{userdata, MAX_USER_DATA};
use crate::Ipv4Setting;
use std::io::Write;

const TOKEN: &str = "AQAEAFt0kjb8R3mXoBXVNnYq3lYJ5yQ1Qq0bJxO2Jm6w9kGz8mQ==";
const VPC_MAC: &str = "0e:49:61:0f:c3:11";
const MAC_1: &str = "0e:49:61:0f:c3:22";

fn ok(body: impl Into<Vec<u8>>) -> HttpResponse {
    status(200, body)
}

fn status(status: u16, body: impl Into<Vec<u8>>) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: body.into(),
    }
}

/// The bytes of `r`: Content-Length, or chunked (in 5-byte chunks) when `chunked`.
fn render(r: &HttpResponse, chunked: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} X\r\n", r.status).into_bytes();
    for (n, v) in &r.headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for c in r.body.chunks(5) {
            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", r.body.len()).as_bytes());
        out.extend_from_slice(&r.body);
    }
    out
}

/// What a server answers `request` (given as its bytes, parsed back here).
type Serve<'a> = dyn FnMut(&HttpRequest) -> Result<HttpResponse, String> + 'a;

/// Runs a `Fetch` of `cloud` against `serve`: the outcome and the requests made.
fn run(cloud: Cloud, serve: &mut Serve<'_>) -> (Outcome, Vec<HttpRequest>) {
    let mut fetch = Fetch::new(cloud);
    let mut requests = Vec::new();
    for n in 0..=MAX_REQUESTS + 1 {
        match fetch.next() {
            Step::Done(outcome) => {
                assert_eq!(
                    fetch.next(),
                    Step::Done(outcome.clone()),
                    "the outcome stays"
                );
                return (outcome, requests);
            }
            Step::Request(request) => {
                assert_eq!(
                    fetch.next(),
                    Step::Request(request.clone()),
                    "same until answered"
                );
                assert_wire_safe(&request);
                let answer = serve(&request).map(|r| through_bytes(&r, n % 2 == 1));
                requests.push(request);
                fetch.answer(answer);
            }
        }
    }
    panic!("no outcome after {} requests", MAX_REQUESTS + 1);
}

/// `r` rendered and parsed back, fed 7 bytes at a time (in at most 64 steps).
fn through_bytes(r: &HttpResponse, chunked: bool) -> HttpResponse {
    let bytes = render(r, chunked);
    for end in (0..bytes.len()).step_by((bytes.len() / 64).max(7)) {
        assert_eq!(
            parse_response(&bytes[..end], false),
            Ok(None),
            "partial at {end}"
        );
    }
    parse_response(&bytes, true).unwrap().unwrap()
}

/// A request's bytes: one request line, `Host`, `Connection: close`, no stray CR/LF.
fn assert_wire_safe(request: &HttpRequest) {
    let bytes = request.to_bytes();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.ends_with("\r\n\r\n"));
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert!(lines.iter().all(|l| !l.contains(['\r', '\n'])));
    assert!(lines[0].starts_with(&format!("{} /", request.method())));
    assert!(lines[0].ends_with(" HTTP/1.1") && lines[0].matches(' ').count() == 2);
    assert!(lines.contains(&"Host: 169.254.169.254"));
    assert!(lines.contains(&"Connection: close"));
}

/// One ENI of the scripted EC2 server.
#[derive(Clone)]
struct Eni {
    mac: &'static str,
    device: &'static str,
    ipv4s: &'static str,
    subnet: &'static str,
    vpc: &'static str,
}

fn eni0() -> Eni {
    Eni {
        mac: VPC_MAC,
        device: "0",
        ipv4s: "10.0.1.23",
        subnet: "10.0.1.0/24",
        vpc: "10.0.0.0/16",
    }
}

fn eni1() -> Eni {
    Eni {
        mac: MAC_1,
        device: "1",
        ipv4s: "10.0.2.5",
        subnet: "10.0.2.0/24",
        vpc: "10.0.0.0/16",
    }
}

/// A scripted IMDSv2 server: GETs without the token are 401, a PUT without the TTL
/// header 400, as AWS's.
struct Ec2 {
    user_data: Option<Vec<u8>>,
    enis: Vec<Eni>,
    token: HttpResponse,
}

impl Ec2 {
    fn new(user_data: Option<&str>, enis: Vec<Eni>) -> Ec2 {
        Ec2 {
            user_data: user_data.map(|u| u.as_bytes().to_vec()),
            enis,
            token: ok(TOKEN),
        }
    }

    fn serve(&self, req: &HttpRequest) -> Result<HttpResponse, String> {
        if req.method() == "PUT" {
            assert_eq!(req.path(), "/latest/api/token");
            return Ok(
                match req.header_value("X-aws-ec2-metadata-token-ttl-seconds") {
                    Some("21600") => self.token.clone(),
                    _ => status(400, ""),
                },
            );
        }
        if req.header_value("X-aws-ec2-metadata-token") != Some(TOKEN) {
            return Ok(status(401, ""));
        }
        let meta = req.path().strip_prefix("/latest/meta-data/");
        let body = match (req.path(), meta) {
            ("/latest/user-data", _) => self.user_data.clone(),
            (_, Some("instance-id")) => Some(b"i-0abc1234def567890".to_vec()),
            (_, Some("local-hostname")) => Some(b"ip-10-0-1-23.ec2.internal".to_vec()),
            (_, Some("mac")) => self.enis.first().map(|e| e.mac.into()),
            (_, Some("network/interfaces/macs/")) => Some(
                self.enis
                    .iter()
                    .map(|e| format!("{}/", e.mac))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into(),
            ),
            (_, Some(rest)) => rest
                .strip_prefix("network/interfaces/macs/")
                .and_then(|r| r.split_once('/'))
                .and_then(|(mac, leaf)| {
                    let eni = self.enis.iter().find(|e| e.mac == mac)?;
                    Some(match leaf {
                        "device-number" => eni.device,
                        "local-ipv4s" => eni.ipv4s,
                        "subnet-ipv4-cidr-block" => eni.subnet,
                        "vpc-ipv4-cidr-blocks" => eni.vpc,
                        _ => return None,
                    })
                })
                .map(|v| v.as_bytes().to_vec()),
            _ => None,
        };
        Ok(body.map_or_else(|| status(404, "Not Found"), ok))
    }
}

fn ec2(server: &Ec2) -> (Outcome, Vec<HttpRequest>) {
    run(Cloud::Ec2, &mut |r| server.serve(r))
}

fn loaded(outcome: Outcome) -> Loaded {
    match outcome {
        Outcome::Loaded(l) => l,
        other => panic!("not loaded: {other:?}"),
    }
}

fn refused_message(outcome: Outcome) -> String {
    match outcome {
        Outcome::Refused(r) => {
            assert!(matches!(r.kind, Some(Kind::Ec2 | Kind::Gce)));
            r.message
        }
        other => panic!("not refused: {other:?}"),
    }
}

fn nets(list: &[&str]) -> Vec<ipnet::Ipv4Net> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn ec2_one_nic_is_one_armed_translating_the_vpc() {
    let user = "[nat]\nfiltering = \"address-dependent\"\n";
    let (outcome, requests) = ec2(&Ec2::new(Some(user), vec![eni0()]));
    let l = loaded(outcome);
    assert!(l.config.one_armed());
    assert_eq!(l.config.outside.port, VPC_MAC);
    assert_eq!(l.config.outside.ipv4, Some(Ipv4Setting::Dhcp));
    assert_eq!(l.config.nat.inside_prefixes, nets(&["10.0.0.0/16"]));
    assert!(l.config.nat.pool.is_empty(), "one address: the lease's");
    assert_eq!(l.config.nat.filtering, crate::Filtering::AddressDependent);
    assert_eq!(l.config.hostname, "ip-10-0-1-23.ec2.internal");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(
        l.source(None),
        "ec2 (imdsv2 169.254.169.254), instance-id i-0abc1234def567890"
    );
    // IMDSv2 only: the PUT first, every GET with the token.
    assert_eq!(requests[0].method(), "PUT");
    assert!(requests[1..]
        .iter()
        .all(|r| r.method() == "GET" && r.header_value("X-aws-ec2-metadata-token") == Some(TOKEN)));
    assert_eq!(requests.len(), 10);
}

#[test]
fn ec2_two_nics_without_user_data_are_two_ports_by_dhcp() {
    let (outcome, requests) = ec2(&Ec2::new(None, vec![eni1(), eni0()]));
    let l = loaded(outcome);
    let inside = l.config.inside.as_ref().expect("two ports");
    assert_eq!(l.config.outside.port, VPC_MAC, "device-number 0 is outside");
    assert_eq!(inside.port, MAC_1);
    assert!(inside.ipv4_dhcp() && l.config.outside.ipv4_dhcp());
    // The VPC less the outside subnet 10.0.1.0/24.
    let prefixes = &l.config.nat.inside_prefixes;
    assert_eq!(prefixes.len(), 8);
    let outside: ipnet::Ipv4Net = "10.0.1.0/24".parse().unwrap();
    assert!(prefixes
        .iter()
        .all(|p| !p.contains(&outside) && !outside.contains(p)));
    assert!(prefixes
        .iter()
        .any(|p| p.contains(&"10.0.2.5".parse::<Ipv4Addr>().unwrap())));
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(
        l.warnings[0].contains("user-data is not set (404)"),
        "{:?}",
        l.warnings
    );
    // The second interface's details are not asked for.
    assert!(!requests
        .iter()
        .any(|r| r.path().contains(MAC_1) && !r.path().ends_with("device-number")));
}

#[test]
fn ec2_user_data_naming_outside_alone_chooses_one_armed_on_two_nics() {
    let user = "[outside]\nmtu = 9000\n";
    let (outcome, _) = ec2(&Ec2::new(Some(user), vec![eni0(), eni1()]));
    let l = loaded(outcome);
    assert!(l.config.one_armed());
    assert_eq!(l.config.outside.mtu, 9000);
    assert_eq!(l.config.outside.port, VPC_MAC);
    assert_eq!(l.config.nat.inside_prefixes, nets(&["10.0.0.0/16"]));
}

#[test]
fn ec2_secondary_private_addresses_are_the_pool() {
    let mut eni = eni0();
    eni.ipv4s = "10.0.1.23\n10.0.1.24\n10.0.1.25\n";
    eni.vpc = "10.0.0.0/16\n100.64.0.0/16\n";
    let (outcome, _) = ec2(&Ec2::new(None, vec![eni]));
    let l = loaded(outcome);
    let pool: Vec<String> = l.config.nat.pool.iter().map(ToString::to_string).collect();
    assert_eq!(pool, ["10.0.1.23", "10.0.1.24", "10.0.1.25"]);
    assert_eq!(
        l.config.nat.inside_prefixes,
        nets(&["10.0.0.0/16", "100.64.0.0/16"])
    );
    // The user-data's own pool wins.
    let user = "[nat]\npool = [\"10.0.1.24\"]\n";
    let mut eni = eni0();
    eni.ipv4s = "10.0.1.23\n10.0.1.24\n";
    let l = loaded(ec2(&Ec2::new(Some(user), vec![eni])).0);
    assert_eq!(l.config.nat.pool.len(), 1);
}

#[test]
fn ec2_gzip_user_data_and_its_own_hostname_and_ports() {
    let user = "hostname = \"nat-a\"\n[outside]\nport = \"eth0\"\nipv4 = \"10.0.1.23/24\"\ngateway4 = \"10.0.1.1\"\n";
    let mut server = Ec2::new(None, vec![eni0()]);
    server.user_data = Some(gzip(user.as_bytes()));
    let l = loaded(ec2(&server).0);
    assert_eq!(l.config.hostname, "nat-a");
    assert_eq!(l.config.outside.port, "eth0");
    assert_eq!(
        l.config.outside.ipv4_net(),
        Some("10.0.1.23/24".parse().unwrap())
    );
    assert_eq!(l.config.nat.inside_prefixes, nets(&["10.0.0.0/16"]));
}

#[test]
fn ec2_cloud_config_and_scripts_are_refused_as_for_volumes() {
    for user in ["#cloud-config\npackages: [nginx]\n", "#!/bin/sh\necho hi\n"] {
        let (outcome, requests) = ec2(&Ec2::new(Some(user), vec![eni0()]));
        let message = refused_message(outcome);
        let volume = userdata::decode(user.as_bytes(), "ec2:user-data").unwrap_err();
        assert_eq!(
            message,
            format!("ec2 metadata (imdsv2 169.254.169.254): {volume}")
        );
        assert_eq!(requests.len(), 2, "nothing asked after the user-data");
    }
}

#[test]
fn ec2_user_data_errors_name_its_line_and_field() {
    let user = "# natbox\n[outside]\nmtu = 1000\n";
    let message = refused_message(ec2(&Ec2::new(Some(user), vec![eni0()])).0);
    assert!(
        message.ends_with("ec2:user-data:3: outside.mtu: 1000 is out of range; use 1280-9000"),
        "{message}"
    );
    let message = refused_message(ec2(&Ec2::new(Some("[nat\n"), vec![eni0()])).0);
    assert!(message.contains("ec2:user-data:1"), "{message}");
    // Without interfaces nor a port in the user-data: the missing field is named.
    let message = refused_message(ec2(&Ec2::new(None, vec![])).0);
    assert!(
        message.contains("ec2 metadata: outside: missing"),
        "{message}"
    );
}

#[test]
fn ec2_imdsv1_only_servers_are_refused_and_imdsv1_never_used() {
    for (code, why) in [
        (405, "does not offer IMDSv2"),
        (403, "refuses IMDSv2 tokens"),
        (400, "gives no IMDSv2 token"),
        (401, "gives no IMDSv2 token"),
    ] {
        let mut server = Ec2::new(Some("[outside]\nport = \"eth0\"\n"), vec![eni0()]);
        server.token = status(code, "");
        let (outcome, requests) = ec2(&server);
        let message = refused_message(outcome);
        assert!(message.contains(&format!("answered {code}: ")), "{message}");
        assert!(message.contains(why), "{message}");
        assert!(message.contains("natbox never uses IMDSv1"), "{message}");
        assert_eq!(requests.len(), 1, "no GET without a token");
    }
    let mut server = Ec2::new(None, vec![eni0()]);
    server.token = status(404, "");
    let (outcome, requests) = ec2(&server);
    assert!(
        matches!(outcome, Outcome::Absent(ref m) if m.contains("404")),
        "{outcome:?}"
    );
    assert_eq!(requests.len(), 1);
}

#[test]
fn ec2_tokens_that_could_inject_headers_are_refused() {
    let long = "a".repeat(imds::MAX_TOKEN + 1);
    for token in ["", "abc\r\nX-Evil: 1", "two words", "caf\u{e9}", &long] {
        let mut server = Ec2::new(None, vec![eni0()]);
        server.token = ok(token);
        let (outcome, requests) = ec2(&server);
        let message = refused_message(outcome);
        assert!(message.contains("visible ASCII"), "{message}");
        assert_eq!(requests.len(), 1);
    }
}

#[test]
fn no_answer_at_first_is_absent_later_retried_then_refused() {
    let (outcome, requests) = run(Cloud::Ec2, &mut |_| Err("connect timeout (2 s)".into()));
    assert!(
        matches!(outcome, Outcome::Absent(ref m) if m.contains("connect timeout")),
        "{outcome:?}"
    );
    assert_eq!(requests.len(), 1, "no retry of a server that is not there");
    let server = Ec2::new(None, vec![eni0()]);
    let mut failures = 0;
    let (outcome, requests) = run(Cloud::Ec2, &mut |r| {
        if r.path() == "/latest/meta-data/instance-id" {
            failures += 1;
            return Err("connection reset".into());
        }
        server.serve(r)
    });
    let message = refused_message(outcome);
    assert!(message.contains("GET /latest/meta-data/instance-id: connection reset (3 tries)"));
    assert_eq!(failures, TRIES);
    assert_eq!(requests.len(), 2 + TRIES);
}

#[test]
fn server_errors_are_retried_and_a_recovery_loads() {
    let server = Ec2::new(None, vec![eni0()]);
    let mut busy = 0;
    let (outcome, requests) = run(Cloud::Ec2, &mut |r| {
        if r.path() == "/latest/user-data" && busy < 2 {
            busy += 1;
            return Ok(status(503, "busy"));
        }
        server.serve(r)
    });
    loaded(outcome);
    assert_eq!(requests.len(), 12);
    let (outcome, _) = run(Cloud::Ec2, &mut |r| match r.method() {
        "PUT" => server.serve(r),
        _ => Ok(status(500, "")),
    });
    assert!(refused_message(outcome).contains("GET /latest/user-data answered 500"));
}

#[test]
fn huge_responses_are_refused_by_size() {
    // The transport stops reading at MAX_RESPONSE and passes parse_response's error.
    let server = Ec2::new(None, vec![eni0()]);
    let mut huge = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 10 << 20).into_bytes();
    huge.extend_from_slice(&[b'a'; 4096]);
    let (outcome, _) = run(Cloud::Ec2, &mut |r| match r.path() {
        "/latest/user-data" => Err(parse_response(&huge, false).unwrap_err()),
        _ => server.serve(r),
    });
    let message = refused_message(outcome);
    assert!(
        message.contains("GET /latest/user-data: the response body is larger than"),
        "{message}"
    );
    // A body within the HTTP bound but over the user-data bound.
    let mut server = Ec2::new(None, vec![eni0()]);
    server.user_data = Some(vec![b'#'; MAX_USER_DATA as usize + 1]);
    let message = refused_message(ec2(&server).0);
    assert!(
        message.contains("ec2:user-data is larger than 1024 KiB"),
        "{message}"
    );
}

#[test]
fn malformed_metadata_values_are_warnings_never_panics() {
    let mut eni = eni0();
    eni.device = "zero";
    eni.ipv4s = "10.0.1.23\nnot-an-address\n10.0.1.99\n";
    eni.subnet = "\u{0}\u{1}garbage";
    eni.vpc = "10.0.0.0/33\n10.0.0.0/16\n";
    let bad = Eni {
        mac: "zz:zz",
        ..eni1()
    };
    let l = loaded(ec2(&Ec2::new(None, vec![eni, bad])).0);
    assert!(l.config.one_armed(), "the bad MAC is left out");
    assert_eq!(l.config.nat.inside_prefixes, nets(&["10.0.0.0/16"]));
    assert_eq!(l.config.nat.pool.len(), 2);
    let warnings = l.warnings.join("\n");
    for needle in ["not-an-address", "10.0.0.0/33", "zz:zz"] {
        assert!(warnings.contains(needle), "{warnings}");
    }
    // A value with control characters is not taken as the instance id.
    let server = Ec2::new(None, vec![eni0()]);
    let l = loaded(
        run(Cloud::Ec2, &mut |r| match r.path() {
            "/latest/meta-data/instance-id" => Ok(ok("i-1\u{1b}[2J")),
            _ => server.serve(r),
        })
        .0,
    );
    assert_eq!(l.meta.instance_id, None);
}

#[test]
fn ec2_interfaces_are_bounded() {
    let macs: Vec<&'static str> = (0..20)
        .map(|i| &*Box::leak(format!("0e:00:00:00:00:{i:02x}").into_boxed_str()))
        .collect();
    let enis = macs
        .iter()
        .enumerate()
        .map(|(i, mac)| Eni {
            mac,
            device: Box::leak(i.to_string().into_boxed_str()),
            ..eni0()
        })
        .collect();
    let (outcome, requests) = ec2(&Ec2::new(None, enis));
    let l = loaded(outcome);
    assert!(requests.len() <= 6 + MAX_INTERFACES + 3 + 1);
    assert!(l
        .warnings
        .iter()
        .any(|w| w.contains("more than 8 interfaces")));
}

#[test]
fn a_gce_server_is_not_ec2() {
    let (outcome, requests) = run(Cloud::Ec2, &mut |_| Ok(gce_response(404, "")));
    assert!(
        matches!(outcome, Outcome::Absent(ref m) if m.contains("GCE")),
        "{outcome:?}"
    );
    assert_eq!(requests.len(), 1);
}

fn gce_response(code: u16, body: &str) -> HttpResponse {
    let mut r = status(code, body);
    r.headers.push(("Metadata-Flavor".into(), "Google".into()));
    r
}

const GCE_NICS: &str = r#"[
 {"accessConfigs":[{"externalIp":"203.0.113.9","type":"ONE_TO_ONE_NAT"}],
  "dnsServers":["169.254.169.254"],"gateway":"10.128.0.1","ip":"10.128.0.2",
  "ipAliases":[],"mac":"42:01:0a:80:00:02","mtu":1460,
  "network":"projects/1/networks/default","subnetmask":"255.255.240.0"},
 {"gateway":"10.20.0.1","ip":"10.20.0.2","mac":"42:01:0a:14:00:02","mtu":1460,
  "network":"projects/1/networks/inside","subnetmask":"255.255.255.0"}
]"#;

fn gce_server(
    user_data: Option<&'static str>,
    nics: &'static str,
) -> impl Fn(&HttpRequest) -> Result<HttpResponse, String> {
    move |r: &HttpRequest| {
        if r.header_value("Metadata-Flavor") != Some("Google") {
            return Ok(gce_response(403, ""));
        }
        let body = match r.path().strip_prefix("/computeMetadata/v1/instance/") {
            Some("attributes/user-data") => user_data,
            Some("id") => Some("4520031799277581759"),
            Some("hostname") => Some("nat-1.us-central1-a.c.proj.internal"),
            Some("network-interfaces/?recursive=true") => Some(nics),
            _ => None,
        };
        Ok(body.map_or_else(|| gce_response(404, ""), |b| gce_response(200, b)))
    }
}

#[test]
fn gce_two_nics_translate_the_inside_subnet() {
    let serve = gce_server(Some("[log]\nlevel = \"debug\"\n"), GCE_NICS);
    let (outcome, requests) = run(Cloud::Gce, &mut |r| serve(r));
    let l = loaded(outcome);
    assert_eq!(l.kind, Kind::Gce);
    assert_eq!(l.config.outside.port, "42:01:0a:80:00:02");
    assert_eq!(l.config.outside.mtu, 1460);
    let inside = l.config.inside.as_ref().unwrap();
    assert_eq!(inside.port, "42:01:0a:14:00:02");
    assert_eq!(l.config.nat.inside_prefixes, nets(&["10.20.0.0/24"]));
    assert_eq!(l.config.log.level, "debug");
    assert_eq!(l.config.hostname, "nat-1.us-central1-a.c.proj.internal");
    assert_eq!(
        l.source(None),
        "gce (metadata.google.internal), instance-id 4520031799277581759"
    );
    assert_eq!(requests.len(), 4);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn gce_one_nic_without_user_data_translates_its_subnet() {
    let one = r#"[{"ip":"10.128.0.2","mac":"42:01:0a:80:00:02","mtu":8896,"subnetmask":"255.255.240.0"}]"#;
    let serve = gce_server(None, one);
    let l = loaded(run(Cloud::Gce, &mut |r| serve(r)).0);
    assert!(l.config.one_armed());
    assert_eq!(l.config.outside.mtu, 8896);
    assert_eq!(l.config.nat.inside_prefixes, nets(&["10.128.0.0/20"]));
    assert!(
        l.warnings[0].contains("gce's user-data is not set (404)"),
        "{:?}",
        l.warnings
    );
    // An MTU natbox does not support is left to its default.
    let serve = gce_server(
        None,
        r#"[{"ip":"10.128.0.2","mac":"42:01:0a:80:00:02","mtu":65536,"subnetmask":"255.255.240.0"}]"#,
    );
    let l = loaded(run(Cloud::Gce, &mut |r| serve(r)).0);
    assert_eq!(l.config.outside.mtu, 1500);
}

#[test]
fn gce_without_the_flavor_header_is_absent() {
    let (outcome, requests) = run(Cloud::Gce, &mut |_| Ok(ok("user-data")));
    assert!(
        matches!(outcome, Outcome::Absent(ref m) if m.contains("Metadata-Flavor")),
        "{outcome:?}"
    );
    assert_eq!(requests.len(), 1);
    // An EC2 server's 401 to a tokenless GET: not GCE either.
    let server = Ec2::new(None, vec![eni0()]);
    let (outcome, _) = run(Cloud::Gce, &mut |r| server.serve(r));
    assert!(matches!(outcome, Outcome::Absent(_)), "{outcome:?}");
    // Losing the header half-way is refused.
    let serve = gce_server(None, GCE_NICS);
    let (outcome, _) = run(Cloud::Gce, &mut |r| {
        let mut resp = serve(r)?;
        if r.path().ends_with("/id") {
            resp.headers.clear();
        }
        Ok(resp)
    });
    assert!(refused_message(outcome).contains("without Metadata-Flavor"));
}

#[test]
fn gce_cloud_config_is_refused_and_broken_interfaces_warned() {
    let serve = gce_server(Some("#cloud-config\n"), GCE_NICS);
    let message = refused_message(run(Cloud::Gce, &mut |r| serve(r)).0);
    assert!(
        message.contains("gce:user-data is a #cloud-config document"),
        "{message}"
    );
    for nics in ["{}", "[", "[1, 2]", r#"[{"mac": "nope"}]"#, "\u{0}"] {
        let serve = gce_server(Some("[outside]\nport = \"eth0\"\nipv4 = \"dhcp\"\n[nat]\ninside_prefixes = [\"10.0.0.0/8\"]\n"), nics);
        let l = loaded(run(Cloud::Gce, &mut |r| serve(r)).0);
        assert_eq!(l.config.outside.port, "eth0");
        assert!(!l.warnings.is_empty(), "{nics}");
    }
}

#[test]
fn answers_without_a_request_are_ignored() {
    let mut fetch = Fetch::new(Cloud::Gce);
    fetch.answer(Ok(ok("x")));
    assert!(matches!(fetch.next(), Step::Request(_)));
    assert_eq!(fetch.cloud(), Cloud::Gce);
}

#[test]
fn requests_are_bounded_whatever_the_server_says() {
    // A server that is always busy: every request is tried TRIES times, then refused.
    let (outcome, requests) = run(Cloud::Gce, &mut |_| Ok(gce_response(503, "")));
    assert!(matches!(outcome, Outcome::Refused(_)));
    assert_eq!(requests.len(), TRIES);
}

#[test]
fn long_lists_give_bounded_values_and_warnings() {
    let mut lines: Vec<String> = (0..1000).map(|i| format!("bad-{i}")).collect();
    lines.extend((0..200).map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1)));
    let mut eni = eni0();
    eni.ipv4s = Box::leak(lines.join("\n").into_boxed_str());
    let l = loaded(ec2(&Ec2::new(None, vec![eni])).0);
    assert_eq!(l.config.nat.pool.len(), MAX_LIST);
    let about: Vec<&String> = l
        .warnings
        .iter()
        .filter(|w| w.contains("local-ipv4s"))
        .collect();
    assert_eq!(about.len(), 2, "{about:?}");
    assert!(about[0].contains("1000 entries") && about[0].contains("bad-0"));
}
