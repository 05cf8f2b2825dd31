//! ICMPv4 messages (RFC 792): echo queries and the errors natbox translates or sends
//! (destination unreachable incl. fragmentation needed (RFC 1191), time exceeded,
//! parameter problem).

use super::checksum::Sum;

pub use super::icmp::{ECHO_ID_OFFSET, HEADER_LEN};

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

super::icmp::family_view! {
    /// A view of an ICMPv4 message: the shared header (`icmp::Message`, through
    /// `Deref`) and ICMPv4's own classification and checksum.
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            DEST_UNREACHABLE | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAMETER_PROBLEM
        )
    }

    pub fn is_echo(&self) -> bool {
        matches!(self.msg_type(), ECHO_REQUEST | ECHO_REPLY)
    }

    /// The checksum covers the message alone (RFC 792).
    pub fn verify_checksum(&self) -> bool {
        self.checksum_ok(Sum::default())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn fill_checksum(&mut self) {
        self.fill(Sum::default());
    }
}

pub use super::icmp::write_header;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{be16, WireError};

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
