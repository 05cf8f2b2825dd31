//! DHCPv6 messages on the wire (RFC 8415 sections 8 and 21): the client messages the
//! client builds, and the checked view of a server's Advertise or Reply.
//!
//! Client messages are built and encoded with dhcproto's v6 module. A message starts
//! from its 4-byte header decoded with dhcproto rather than from `Message::new_with_id`,
//! which goes through `Message::default()` and so draws an xid from the OS random
//! source only to overwrite it (the core reads no OS state).
//!
//! Server messages are read here, not with dhcproto's decoder, which does not hold up
//! against hostile input (checked against dhcproto 0.15.0): a Status Code option
//! shorter than 2 bytes, or a Vendor Class or Vendor-specific Information option
//! shorter than 4, makes it subtract past zero (`len - 2`, `len - 4`: a panic with
//! overflow checks, as in the fuzz build; a wrapped length that fails the read without
//! them); fixed-size options (Preference, Elapsed Time, Server Unicast) are read from
//! the message at large, past their own length; and IA options nest through its
//! recursive option decoder with no depth bound. The format is plain
//! type-length-value, so `Reply::parse` reads what the client uses and skips the rest:
//! Client and Server Identifiers, Preference, Status Code, DNS servers (RFC 3646) and
//! IA_NA with its IA Address options, each length checked, with nesting fixed at
//! message, IA_NA, IA Address.

use super::counters::Ignored;
use dhcproto::v6::{self, DhcpOption, IAAddr, MessageType, OptionCode, IANA, ORO};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use std::net::Ipv6Addr;

/// Option codes (RFC 8415 section 24, RFC 3646).
const OPT_CLIENTID: u16 = 1;
const OPT_SERVERID: u16 = 2;
const OPT_IA_NA: u16 = 3;
const OPT_IAADDR: u16 = 5;
const OPT_PREFERENCE: u16 = 7;
const OPT_STATUS_CODE: u16 = 13;
const OPT_DNS_SERVERS: u16 = 23;

/// Message types the client reads (RFC 8415 section 7.3).
pub const ADVERTISE: u8 = 2;
pub const REPLY: u8 = 7;

/// Status codes the client acts on (RFC 8415 section 21.13).
pub const STATUS_SUCCESS: u16 = 0;
pub const STATUS_NO_BINDING: u16 = 3;

/// At most this many IA Address options are kept per IA_NA, and DNS servers per
/// message: the client uses one address.
const MAX_ADDRS: usize = 8;
const MAX_DNS: usize = 8;

/// What one client message says (RFC 8415 section 18.2, Appendix A).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outgoing {
    pub kind: MessageType,
    pub xid: [u8; 3],
    /// Elapsed Time (section 21.9), hundredths of a second.
    pub elapsed: u16,
    /// Server Identifier: Request, Renew, Decline.
    pub server_id: Option<Vec<u8>>,
    /// The address asked for or held, in the IA_NA (none in a Solicit).
    pub address: Option<Ipv6Addr>,
}

impl Outgoing {
    /// The message's bytes (the UDP payload), from the client `duid` with IA_NA `iaid`.
    pub(super) fn encode(&self, duid: &[u8], iaid: u32) -> Vec<u8> {
        let x = self.xid;
        let header = [u8::from(self.kind), x[0], x[1], x[2]];
        let mut msg = v6::Message::decode(&mut Decoder::new(&header))
            .expect("a 4-byte DHCPv6 header decodes");
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::ClientId(duid.to_vec()));
        if let Some(server) = &self.server_id {
            opts.insert(DhcpOption::ServerId(server.clone()));
        }
        let mut ia = IANA {
            id: iaid,
            t1: 0,
            t2: 0,
            opts: v6::DhcpOptions::new(),
        };
        if let Some(addr) = self.address {
            // Section 18.2: lifetimes 0, the server decides.
            ia.opts.insert(DhcpOption::IAAddr(IAAddr {
                addr,
                preferred_life: 0,
                valid_life: 0,
                opts: v6::DhcpOptions::new(),
            }));
        }
        opts.insert(DhcpOption::IANA(ia));
        opts.insert(DhcpOption::ElapsedTime(self.elapsed));
        // Section 18.2: an Option Request option in Solicit, Request, Renew and Rebind,
        // not in Decline.
        if self.kind != MessageType::Decline {
            opts.insert(DhcpOption::ORO(ORO {
                opts: vec![OptionCode::DomainNameServers],
            }));
        }
        let mut bytes = Vec::new();
        msg.encode(&mut Encoder::new(&mut bytes))
            .expect("a message of fixed options encodes into a Vec");
        bytes
    }
}

/// An IA Address option (section 21.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IaAddr {
    pub addr: Ipv6Addr,
    pub preferred: u32,
    pub valid: u32,
    pub status: Option<u16>,
}

/// The client's IA_NA in a server message (section 21.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct IaNa {
    pub t1: u32,
    pub t2: u32,
    pub status: Option<u16>,
    pub addrs: Vec<IaAddr>,
}

/// A server message that passed the framing checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reply {
    pub kind: u8,
    pub xid: [u8; 3],
    pub client_id: Option<Vec<u8>>,
    pub server_id: Option<Vec<u8>>,
    pub preference: u8,
    /// The message's own Status Code, if any.
    pub status: Option<u16>,
    /// The IA_NA with the client's IAID, if any.
    pub ia_na: Option<IaNa>,
    pub dns: Vec<Ipv6Addr>,
}

/// The options of `bytes` as (code, value); `Err` if one runs past the end.
fn options(mut bytes: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), Ignored>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let Some((head, rest)) = bytes.split_first_chunk::<4>() else {
            bytes = &[];
            return Some(Err(Ignored::Malformed));
        };
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let Some((value, after)) = rest.split_at_checked(len) else {
            bytes = &[];
            return Some(Err(Ignored::Malformed));
        };
        bytes = after;
        Some(Ok((code, value)))
    })
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn addr_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let octets: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(octets))
}

/// A Status Code option's code (section 21.13: 2 bytes, then a UTF-8 message).
fn status(value: &[u8]) -> Result<u16, Ignored> {
    match value {
        [a, b, ..] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(Ignored::Malformed),
    }
}

/// The status code among `opts`, if any.
fn status_of<'a>(
    opts: impl Iterator<Item = Result<(u16, &'a [u8]), Ignored>>,
) -> Result<Option<u16>, Ignored> {
    let mut found = None;
    for opt in opts {
        let (code, value) = opt?;
        if code == OPT_STATUS_CODE {
            found.get_or_insert(status(value)?);
        }
    }
    Ok(found)
}

/// An IA_NA option's value (section 21.4).
fn ia_na(value: &[u8]) -> Result<(u32, IaNa), Ignored> {
    let (iaid, t1, t2) = match (u32_at(value, 0), u32_at(value, 4), u32_at(value, 8)) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return Err(Ignored::Malformed),
    };
    let mut ia = IaNa {
        t1,
        t2,
        ..IaNa::default()
    };
    for opt in options(value.get(12..).unwrap_or_default()) {
        let (code, v) = opt?;
        match code {
            OPT_STATUS_CODE => {
                ia.status.get_or_insert(status(v)?);
            }
            OPT_IAADDR if ia.addrs.len() < MAX_ADDRS => {
                let (Some(addr), Some(preferred), Some(valid)) =
                    (addr_at(v, 0), u32_at(v, 16), u32_at(v, 20))
                else {
                    return Err(Ignored::Malformed);
                };
                let status = status_of(options(v.get(24..).unwrap_or_default()))?;
                ia.addrs.push(IaAddr {
                    addr,
                    preferred,
                    valid,
                    status,
                });
            }
            _ => {}
        }
    }
    Ok((iaid, ia))
}

impl Reply {
    /// Reads `payload` (a UDP payload from port 547) for the client with IA_NA `iaid`.
    /// The message type, transaction id and identifiers are the client's to judge.
    pub(super) fn parse(payload: &[u8], iaid: u32) -> Result<Reply, Ignored> {
        let Some((&[kind, x0, x1, x2], body)) = payload.split_first_chunk::<4>() else {
            return Err(Ignored::Malformed);
        };
        let mut reply = Reply {
            kind,
            xid: [x0, x1, x2],
            client_id: None,
            server_id: None,
            preference: 0,
            status: None,
            ia_na: None,
            dns: Vec::new(),
        };
        for opt in options(body) {
            let (code, value) = opt?;
            match code {
                OPT_CLIENTID => {
                    reply.client_id.get_or_insert_with(|| value.to_vec());
                }
                OPT_SERVERID => {
                    reply.server_id.get_or_insert_with(|| value.to_vec());
                }
                OPT_PREFERENCE => match value {
                    [p] => reply.preference = *p,
                    _ => return Err(Ignored::Malformed),
                },
                OPT_STATUS_CODE => {
                    reply.status.get_or_insert(status(value)?);
                }
                OPT_DNS_SERVERS => {
                    if value.len() % 16 != 0 {
                        return Err(Ignored::Malformed);
                    }
                    reply.dns = value
                        .chunks_exact(16)
                        .take(MAX_DNS)
                        .filter_map(|c| addr_at(c, 0))
                        .collect();
                }
                OPT_IA_NA => {
                    let (id, ia) = ia_na(value)?;
                    if id == iaid && reply.ia_na.is_none() {
                        reply.ia_na = Some(ia);
                    }
                }
                _ => {}
            }
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 2, 1];

    fn opt(code: u16, value: &[u8]) -> Vec<u8> {
        let mut o = code.to_be_bytes().to_vec();
        o.extend_from_slice(&(value.len() as u16).to_be_bytes());
        o.extend_from_slice(value);
        o
    }

    fn ia_addr(addr: &str, preferred: u32, valid: u32) -> Vec<u8> {
        let mut v = addr.parse::<Ipv6Addr>().unwrap().octets().to_vec();
        v.extend_from_slice(&preferred.to_be_bytes());
        v.extend_from_slice(&valid.to_be_bytes());
        opt(OPT_IAADDR, &v)
    }

    fn ia(iaid: u32, t1: u32, t2: u32, inner: &[u8]) -> Vec<u8> {
        let mut v = iaid.to_be_bytes().to_vec();
        v.extend_from_slice(&t1.to_be_bytes());
        v.extend_from_slice(&t2.to_be_bytes());
        v.extend_from_slice(inner);
        opt(OPT_IA_NA, &v)
    }

    #[test]
    fn rfc8415_18_2_1_solicit_has_client_id_ia_na_elapsed_time_and_oro() {
        let solicit = Outgoing {
            kind: MessageType::Solicit,
            xid: [1, 2, 3],
            elapsed: 150,
            server_id: None,
            address: None,
        };
        let bytes = solicit.encode(&DUID, 7);
        let msg = v6::Message::decode(&mut Decoder::new(&bytes)).unwrap();
        assert_eq!(msg.msg_type(), MessageType::Solicit);
        assert_eq!(msg.xid(), [1, 2, 3]);
        let o = msg.opts();
        assert_eq!(
            o.get(OptionCode::ClientId),
            Some(&DhcpOption::ClientId(DUID.to_vec()))
        );
        assert_eq!(
            o.get(OptionCode::ElapsedTime),
            Some(&DhcpOption::ElapsedTime(150))
        );
        assert!(o.get(OptionCode::ServerId).is_none());
        assert!(o.get(OptionCode::ORO).is_some());
        let Some(DhcpOption::IANA(ia)) = o.get(OptionCode::IANA) else {
            panic!("an IA_NA");
        };
        assert_eq!((ia.id, ia.t1, ia.t2), (7, 0, 0));
        assert!(ia.opts.get(OptionCode::IAAddr).is_none());
    }

    #[test]
    fn rfc8415_18_2_8_decline_names_the_server_and_the_address_without_oro() {
        let decline = Outgoing {
            kind: MessageType::Decline,
            xid: [9, 9, 9],
            elapsed: 0,
            server_id: Some(vec![0, 3, 0, 1, 2, 0, 0, 0, 2, 2]),
            address: Some("2001:db8:ff::100".parse().unwrap()),
        };
        let msg = v6::Message::decode(&mut Decoder::new(&decline.encode(&DUID, 7))).unwrap();
        assert!(msg.opts().get(OptionCode::ORO).is_none());
        assert!(msg.opts().get(OptionCode::ServerId).is_some());
        let Some(DhcpOption::IANA(ia)) = msg.opts().get(OptionCode::IANA) else {
            panic!("an IA_NA");
        };
        assert!(matches!(
            ia.opts.get(OptionCode::IAAddr),
            Some(DhcpOption::IAAddr(a)) if a.addr == "2001:db8:ff::100".parse::<Ipv6Addr>().unwrap()
        ));
    }

    #[test]
    fn rfc8415_21_a_reply_is_read_option_by_option() {
        let mut m = vec![REPLY, 1, 2, 3];
        m.extend(opt(OPT_CLIENTID, &DUID));
        m.extend(opt(OPT_SERVERID, &[0, 3, 0, 1, 2, 0, 0, 0, 2, 2]));
        m.extend(opt(OPT_PREFERENCE, &[200]));
        m.extend(ia(8, 0, 0, &ia_addr("2001:db8:ff::200", 10, 20)));
        m.extend(ia(7, 100, 160, &ia_addr("2001:db8:ff::100", 200, 300)));
        m.extend(opt(
            OPT_DNS_SERVERS,
            &"2001:db8::53".parse::<Ipv6Addr>().unwrap().octets(),
        ));
        let r = Reply::parse(&m, 7).unwrap();
        assert_eq!((r.kind, r.xid, r.preference), (REPLY, [1, 2, 3], 200));
        assert_eq!(r.client_id.as_deref(), Some(&DUID[..]));
        let ia = r.ia_na.expect("our IA_NA, not IAID 8's");
        assert_eq!((ia.t1, ia.t2, ia.status), (100, 160, None));
        assert_eq!(
            ia.addrs,
            vec![IaAddr {
                addr: "2001:db8:ff::100".parse().unwrap(),
                preferred: 200,
                valid: 300,
                status: None
            }]
        );
        assert_eq!(r.dns, vec!["2001:db8::53".parse::<Ipv6Addr>().unwrap()]);
    }

    /// What makes dhcproto 0.15's decoder subtract past zero is a clean refusal here.
    #[test]
    fn short_status_codes_overrunning_options_and_short_ia_options_are_malformed() {
        for bad in [
            [vec![REPLY, 1, 2, 3], opt(OPT_STATUS_CODE, &[])].concat(),
            [vec![REPLY, 1, 2, 3], opt(OPT_STATUS_CODE, &[0])].concat(),
            [vec![REPLY, 1, 2, 3], opt(OPT_IA_NA, &[0; 11])].concat(),
            [
                vec![REPLY, 1, 2, 3],
                ia(7, 0, 0, &opt(OPT_IAADDR, &[0; 23])),
            ]
            .concat(),
            [
                vec![REPLY, 1, 2, 3],
                ia(7, 0, 0, &opt(OPT_STATUS_CODE, &[1])),
            ]
            .concat(),
            [vec![REPLY, 1, 2, 3], opt(OPT_PREFERENCE, &[1, 2])].concat(),
            [vec![REPLY, 1, 2, 3], opt(OPT_DNS_SERVERS, &[0; 15])].concat(),
            vec![REPLY, 1, 2, 3, 0, 1, 0, 9, 0],
            vec![REPLY, 1, 2, 3, 0],
            vec![REPLY, 1, 2],
        ] {
            assert_eq!(Reply::parse(&bad, 7), Err(Ignored::Malformed), "{bad:?}");
        }
        let vendor = [vec![REPLY, 1, 2, 3], opt(16, &[]), opt(17, &[0, 0])].concat();
        assert!(
            Reply::parse(&vendor, 7).is_ok(),
            "unread options are skipped"
        );
    }
}
