//! ICMPv4 messages (RFC 792): echo queries and the errors natbox translates or sends
//! (destination unreachable incl. fragmentation needed (RFC 1191), time exceeded,
//! parameter problem).

use super::{be16, set_be16, WireError};

pub const HEADER_LEN: usize = 8;
/// Where an echo message's identifier is (the same in ICMPv6, RFC 4443 section 4.1).
pub const ECHO_ID_OFFSET: usize = 4;

pub const ECHO_REPLY: u8 = 0;
pub const DEST_UNREACHABLE: u8 = 3;
pub const SOURCE_QUENCH: u8 = 4;
pub const REDIRECT: u8 = 5;
pub const ECHO_REQUEST: u8 = 8;
pub const TIME_EXCEEDED: u8 = 11;
pub const PARAMETER_PROBLEM: u8 = 12;

/// Destination unreachable codes natbox sends.
pub const CODE_PORT_UNREACHABLE: u8 = 3;
pub const CODE_FRAG_NEEDED: u8 = 4;
pub const CODE_ADMIN_PROHIBITED: u8 = 13;

/// A view of an ICMPv4 message.
#[derive(Debug)]
pub struct Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buf })
    }

    pub fn msg_type(&self) -> u8 {
        self.buf.as_ref()[0]
    }

    pub fn code(&self) -> u8 {
        self.buf.as_ref()[1]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buf.as_ref(), 2)
    }

    /// Echo identifier (the "port" of an ICMP query, RFC 5508 section 3.1).
    pub fn echo_id(&self) -> u16 {
        be16(self.buf.as_ref(), ECHO_ID_OFFSET)
    }

    /// True for the error messages whose payload quotes an offending datagram.
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            DEST_UNREACHABLE | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAMETER_PROBLEM
        )
    }

    /// True for echo request/reply, the queries natbox maps (RFC 5508 section 3.1).
    pub fn is_echo(&self) -> bool {
        matches!(self.msg_type(), ECHO_REQUEST | ECHO_REPLY)
    }

    /// The bytes after the 8-byte header (the quoted datagram of an error).
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }

    pub fn verify_checksum(&self) -> bool {
        super::checksum::checksum(self.buf.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_msg_type(&mut self, t: u8) {
        self.buf.as_mut()[0] = t;
    }

    pub fn set_checksum(&mut self, c: u16) {
        set_be16(self.buf.as_mut(), 2, c);
    }

    pub fn set_echo_id(&mut self, id: u16) {
        set_be16(self.buf.as_mut(), 4, id);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }

    /// Recomputes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = super::checksum::checksum(self.buf.as_ref());
        self.set_checksum(c);
    }
}

/// Writes an 8-byte ICMP header with the given rest-of-header word (checksum left 0).
pub fn write_header(buf: &mut [u8], msg_type: u8, code: u8, rest: u32) {
    buf[0] = msg_type;
    buf[1] = code;
    set_be16(buf, 2, 0);
    buf[4..8].copy_from_slice(&rest.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo request as sent by `ping` (id 0x1234, seq 1, 8 payload bytes).
    const ECHO: [u8; 16] = [
        8, 0, 0x93, 0x8e, 0x12, 0x34, 0x00, 0x01, b'n', b'a', b't', b'b', b'o', b'x', 0, 0,
    ];

    #[test]
    fn parses_golden_echo() {
        let p = Packet::new_checked(&ECHO[..]).unwrap();
        assert!(p.is_echo() && !p.is_error());
        assert_eq!(p.echo_id(), 0x1234);
        assert!(p.verify_checksum());
    }

    #[test]
    fn setters_and_fill_checksum() {
        let mut b = ECHO;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_msg_type(ECHO_REPLY);
        p.set_echo_id(7);
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.echo_id(), 7);
    }

    #[test]
    fn errors_and_truncation() {
        let mut b = [0u8; 8];
        write_header(&mut b, DEST_UNREACHABLE, CODE_FRAG_NEEDED, 1400);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_error());
        assert_eq!(be16(&b, 6), 1400);
        assert_eq!(
            Packet::new_checked(&b[..7]).unwrap_err(),
            WireError::Truncated
        );
    }
}
