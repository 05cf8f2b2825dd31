//! DHCP messages on the wire: the requests the client builds (RFC 2131 §4.4.1 Table 5)
//! and the checked view of a server's reply.
//!
//! Requests are built and encoded with dhcproto. A request starts from a fixed
//! BOOTREQUEST header decoded with dhcproto rather than from `Message::new_with_id`:
//! that constructor goes through `Message::default()`, which draws an xid from the OS
//! random source (`rand::random`) only to overwrite it, and the core reads no OS state.
//!
//! Replies are read through dhcproto's borrowed view (`v4::borrowed::Message`: header
//! fields, magic cookie, option framing with RFC 3396 concatenation of adjacent
//! instances); non-adjacent instances of one option are concatenated here, as RFC 3396
//! §7 asks. Option *values* are not decoded with dhcproto's typed decoder: it does not
//! check lengths (a 6-byte lease time is read from its first 4 bytes, a 1-byte MTU
//! silently ends the decoding of every later option, an option 121 prefix length above
//! 32 silently truncates the route list), so each value is checked against the length
//! RFC 2132 gives it ([`Options`]). Its option iterator also stops silently at an
//! option whose length runs past the end of the message (and drops the option before
//! it if that was another instance of the same code), so a truncated reply would be
//! read as one without its later options: the framing is walked once here first
//! ([`truncated`]) and such a reply refused (`truncated_options`). dhcproto's own
//! `chaddr()` accessors index by the received `hlen` and panic on an `hlen` above 16
//! (owned) or past the buffer (borrowed): the hardware address is read here after
//! checking `htype` and `hlen`. Options carried in `sname`/`file` (option overload, 52)
//! are not read: the client does not ask for them and no server is known to need it.

use super::counters::Ignored;
use dhcproto::v4::{borrowed, DhcpOption, MessageType, OptionCode, MAGIC};
use dhcproto::{Decodable, Encodable};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Length of the fixed BOOTP header up to and including the magic cookie.
const HEADER_LEN: usize = 240;
/// The size of a BOOTP message (RFC 951): requests are padded up to it.
const BOOTP_MIN_LEN: usize = 300;
/// Offset and length of `chaddr` in the header.
const CHADDR: std::ops::Range<usize> = 28..34;

/// The options the client asks for in its parameter request list (option 55, RFC 2132
/// §9.8): subnet mask, router, DNS, interface MTU, lease time, server identifier,
/// T1, T2, classless static routes (RFC 3442).
pub(super) const REQUESTED: [OptionCode; 9] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::InterfaceMtu,
    OptionCode::AddressLeaseTime,
    OptionCode::ServerIdentifier,
    OptionCode::Renewal,
    OptionCode::Rebinding,
    OptionCode::ClasslessStaticRoute,
];

/// What one outgoing message says; the fields follow RFC 2131 Table 5.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outgoing {
    pub kind: MessageType,
    pub xid: u32,
    /// Seconds since the client began this acquisition or renewal (RFC 2131 Table 5).
    pub secs: u16,
    /// Our address while we hold it (RENEWING, REBINDING, RELEASE), else 0.0.0.0.
    pub ciaddr: Ipv4Addr,
    /// Option 50: SELECTING's REQUEST, INIT-REBOOT's REQUEST and DECLINE.
    pub requested: Option<Ipv4Addr>,
    /// Option 54: SELECTING's REQUEST, DECLINE and RELEASE.
    pub server: Option<Ipv4Addr>,
}

impl Outgoing {
    /// The message's bytes (the UDP payload). The broadcast flag is left clear: the
    /// driver reads every frame of its NIC (AF_PACKET), so a reply unicast to our MAC
    /// and an address we have not configured yet reaches us (RFC 2131 §4.1 lets a
    /// client that can receive such replies leave it clear), and unicast replies do not
    /// wake every host on the link.
    pub(super) fn encode(&self, mac: [u8; 6]) -> Vec<u8> {
        let mut header = [0u8; HEADER_LEN];
        header[0] = 1; // op: BOOTREQUEST
        header[1] = 1; // htype: Ethernet (RFC 1700)
        header[2] = 6; // hlen
        header[4..8].copy_from_slice(&self.xid.to_be_bytes());
        header[8..10].copy_from_slice(&self.secs.to_be_bytes());
        header[12..16].copy_from_slice(&self.ciaddr.octets());
        header[CHADDR].copy_from_slice(&mac);
        header[236..240].copy_from_slice(&MAGIC);
        let mut msg = dhcproto::v4::Message::from_bytes(&header)
            .expect("a complete BOOTREQUEST header decodes");
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::MessageType(self.kind));
        let mut client_id = vec![1u8]; // RFC 2132 §9.14: hardware type, then the MAC
        client_id.extend_from_slice(&mac);
        opts.insert(DhcpOption::ClientIdentifier(client_id));
        if let Some(addr) = self.requested {
            opts.insert(DhcpOption::RequestedIpAddress(addr));
        }
        if let Some(server) = self.server {
            opts.insert(DhcpOption::ServerIdentifier(server));
        }
        // Table 5: a parameter request list MAY go in DISCOVER and REQUEST, MUST NOT in
        // DECLINE and RELEASE.
        if matches!(self.kind, MessageType::Discover | MessageType::Request) {
            opts.insert(DhcpOption::ParameterRequestList(REQUESTED.to_vec()));
        }
        let mut bytes = msg
            .to_vec()
            .expect("a request of fixed options encodes into a Vec");
        // Pad options after End up to the BOOTP size (RFC 951's 64-octet vendor
        // field), as ISC dhclient does: older relays and servers drop shorter requests.
        if bytes.len() < BOOTP_MIN_LEN {
            bytes.resize(BOOTP_MIN_LEN, 0);
        }
        bytes
    }
}

/// A server reply that passed the header checks: BOOTREPLY, our hardware address, a
/// message type. Whether its xid and type fit the client's state is the client's call.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub kind: MessageType,
    pub xid: u32,
    pub yiaddr: Ipv4Addr,
    pub options: Options,
}

impl Reply {
    /// Reads `payload` (a UDP payload from port 67) as a reply to the client `mac`.
    pub(super) fn parse(payload: &[u8], mac: [u8; 6]) -> Result<Reply, Ignored> {
        let msg = borrowed::Message::new(payload).map_err(|_| Ignored::Malformed)?;
        if msg.opcode() != dhcproto::v4::Opcode::BootReply {
            return Err(Ignored::NotReply);
        }
        let ours = payload.get(1..3) == Some(&[1, 6][..]) && payload.get(CHADDR) == Some(&mac[..]);
        if !ours {
            return Err(Ignored::WrongChaddr);
        }
        if payload.get(HEADER_LEN..).is_some_and(truncated) {
            return Err(Ignored::TruncatedOptions);
        }
        let options = Options::collect(msg.opts());
        let kind = match options.get(OptionCode::MessageType) {
            Some(&[kind]) => MessageType::from(kind),
            _ => return Err(Ignored::Malformed),
        };
        Ok(Reply {
            kind,
            xid: msg.xid(),
            yiaddr: msg.yiaddr(),
            options,
        })
    }
}

/// Whether the options field `opts` (after the magic cookie) has an option whose
/// length runs past its end (RFC 2132 section 2: code, length, that many bytes; pad
/// and end are one byte). Bytes after the end option are padding, not read.
fn truncated(mut opts: &[u8]) -> bool {
    loop {
        match opts {
            [] | [255, ..] => return false,
            [0, rest @ ..] => opts = rest,
            [_, len, rest @ ..] => match rest.get(usize::from(*len)..) {
                Some(next) => opts = next,
                None => return true,
            },
            [_] => return true,
        }
    }
}

/// An option whose value does not have the length RFC 2132 gives it; carries the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BadLength(pub u8);

/// A reply's options by code, each the concatenation of all its instances (RFC 3396),
/// with typed readers that check the value's length.
#[derive(Debug, Clone, Default)]
pub(super) struct Options(BTreeMap<u8, Vec<u8>>);

impl Options {
    fn collect<'a>(opts: impl Iterator<Item = borrowed::DhcpOption<'a>>) -> Options {
        let mut map: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        for opt in opts {
            map.entry(u8::from(opt.code()))
                .or_default()
                .extend_from_slice(opt.data());
        }
        Options(map)
    }

    /// The raw value of `code`, if present.
    pub(super) fn get(&self, code: OptionCode) -> Option<&[u8]> {
        self.0.get(&u8::from(code)).map(Vec::as_slice)
    }

    fn fixed<const N: usize>(&self, code: OptionCode) -> Result<Option<[u8; N]>, BadLength> {
        self.get(code)
            .map(|v| v.try_into().map_err(|_| BadLength(u8::from(code))))
            .transpose()
    }

    /// One IPv4 address (4 bytes).
    pub(super) fn addr(&self, code: OptionCode) -> Result<Option<Ipv4Addr>, BadLength> {
        Ok(self.fixed::<4>(code)?.map(Ipv4Addr::from))
    }

    /// A list of IPv4 addresses (a non-zero multiple of 4 bytes, RFC 2132 §3.5, §3.8).
    pub(super) fn addrs(&self, code: OptionCode) -> Result<Vec<Ipv4Addr>, BadLength> {
        match self.get(code) {
            None => Ok(Vec::new()),
            Some(v) if !v.is_empty() && v.len() % 4 == 0 => Ok(v
                .chunks_exact(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                .collect()),
            Some(_) => Err(BadLength(u8::from(code))),
        }
    }

    /// A 32-bit number (4 bytes).
    pub(super) fn u32(&self, code: OptionCode) -> Result<Option<u32>, BadLength> {
        Ok(self.fixed::<4>(code)?.map(u32::from_be_bytes))
    }

    /// A 16-bit number (2 bytes).
    pub(super) fn u16(&self, code: OptionCode) -> Result<Option<u16>, BadLength> {
        Ok(self.fixed::<2>(code)?.map(u16::from_be_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 9, 1];

    fn discover() -> Outgoing {
        Outgoing {
            kind: MessageType::Discover,
            xid: 0x1234_5678,
            secs: 3,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            requested: None,
            server: None,
        }
    }

    #[test]
    fn rfc2131_table5_discover_fields_and_options() {
        let bytes = discover().encode(MAC);
        assert_eq!(bytes.len(), BOOTP_MIN_LEN, "padded to the BOOTP size");
        let msg = dhcproto::v4::Message::from_bytes(&bytes).unwrap();
        assert_eq!(msg.opcode(), dhcproto::v4::Opcode::BootRequest);
        assert_eq!((msg.xid(), msg.secs(), msg.hlen()), (0x1234_5678, 3, 6));
        assert_eq!(msg.chaddr(), MAC);
        assert!(!msg.flags().broadcast());
        let opts = msg.opts();
        assert_eq!(opts.msg_type(), Some(MessageType::Discover));
        assert_eq!(
            opts.get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 9, 1]))
        );
        assert_eq!(
            opts.get(OptionCode::ParameterRequestList),
            Some(&DhcpOption::ParameterRequestList(REQUESTED.to_vec()))
        );
        assert!(opts.get(OptionCode::RequestedIpAddress).is_none());
    }

    #[test]
    fn rfc2131_table5_release_has_no_parameter_request_list() {
        let release = Outgoing {
            kind: MessageType::Release,
            ciaddr: Ipv4Addr::new(10, 0, 0, 5),
            server: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..discover()
        };
        let msg = dhcproto::v4::Message::from_bytes(&release.encode(MAC)).unwrap();
        assert_eq!(msg.ciaddr(), Ipv4Addr::new(10, 0, 0, 5));
        assert!(msg.opts().get(OptionCode::ParameterRequestList).is_none());
        assert!(msg.opts().get(OptionCode::ServerIdentifier).is_some());
    }

    #[test]
    fn a_request_is_not_a_reply_and_short_bytes_are_malformed() {
        let bytes = discover().encode(MAC);
        assert_eq!(Reply::parse(&bytes, MAC).unwrap_err(), Ignored::NotReply);
        assert_eq!(
            Reply::parse(&bytes[..239], MAC).unwrap_err(),
            Ignored::Malformed
        );
    }

    #[test]
    fn huge_hlen_is_a_foreign_chaddr_not_a_panic() {
        let mut bytes = discover().encode(MAC);
        bytes[0] = 2;
        bytes[2] = 255;
        assert_eq!(Reply::parse(&bytes, MAC).unwrap_err(), Ignored::WrongChaddr);
    }

    /// RFC 2132 section 2: an option whose length runs past the message is a broken
    /// reply, not one without that option; a missing end option is not.
    #[test]
    fn rfc2132_2_an_option_running_past_the_message_is_truncated() {
        assert!(!truncated(&[]));
        assert!(!truncated(&[53, 1, 2, 0, 0, 255, 7, 9]));
        assert!(
            !truncated(&[53, 1, 2]),
            "no end option: the message ends there"
        );
        assert!(truncated(&[53, 1, 2, 3, 4, 10, 0]));
        assert!(truncated(&[53, 1, 2, 3]), "a code without its length");
        assert!(truncated(&[53, 1]));
        let mut bytes = discover().encode(MAC);
        bytes[0] = 2;
        let end = bytes.iter().rposition(|&b| b == 255).unwrap();
        bytes.truncate(end);
        bytes.extend_from_slice(&[3, 8, 10, 0, 0, 1]);
        assert_eq!(
            Reply::parse(&bytes, MAC).unwrap_err(),
            Ignored::TruncatedOptions
        );
    }

    #[test]
    fn rfc3396_instances_of_one_option_are_concatenated() {
        let raw = [3u8, 4, 10, 0, 0, 1, 53, 1, 5, 3, 4, 10, 0, 0, 2, 255];
        let opts = Options::collect(borrowed::DhcpOptionIterator::new(&raw));
        assert_eq!(
            opts.addrs(OptionCode::Router).unwrap(),
            [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
        );
    }

    #[test]
    fn rfc2132_option_lengths_are_checked() {
        let raw = [26u8, 1, 9, 51, 3, 0, 0, 1, 6, 5, 1, 1, 1, 1, 1, 255];
        let opts = Options::collect(borrowed::DhcpOptionIterator::new(&raw));
        assert_eq!(opts.u16(OptionCode::InterfaceMtu), Err(BadLength(26)));
        assert_eq!(opts.u32(OptionCode::AddressLeaseTime), Err(BadLength(51)));
        assert_eq!(opts.addrs(OptionCode::DomainNameServer), Err(BadLength(6)));
        assert_eq!(opts.addr(OptionCode::SubnetMask), Ok(None));
    }
}
