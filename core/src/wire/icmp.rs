//! The header ICMPv4 (RFC 792) and ICMPv6 (RFC 4443 section 2.1) share: type, code,
//! checksum and a 4-byte rest, which echo messages use for their identifier and
//! sequence number. `icmpv4::Packet` and `icmpv6::Packet` are this view plus what
//! differs by family: which types are errors, and what the checksum covers (the
//! message alone for ICMPv4, a pseudo-header too for ICMPv6).

use super::checksum::Sum;
use super::{be16, set_be16, WireError};

pub const HEADER_LEN: usize = 8;
/// Where an echo message's identifier sits.
pub const ECHO_ID_OFFSET: usize = 4;

/// A view of an ICMP or ICMPv6 message of at least a header's length.
#[derive(Debug)]
pub struct Message<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Message<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Message { buf })
    }

    /// The whole message.
    pub fn bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    pub fn msg_type(&self) -> u8 {
        self.bytes()[0]
    }

    pub fn code(&self) -> u8 {
        self.bytes()[1]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.bytes(), 2)
    }

    pub fn echo_id(&self) -> u16 {
        be16(self.bytes(), ECHO_ID_OFFSET)
    }

    pub fn payload(&self) -> &[u8] {
        &self.bytes()[HEADER_LEN..]
    }

    /// Whether the checksum verifies, `pseudo` being the pseudo-header's sum (none for
    /// ICMPv4).
    pub(super) fn checksum_ok(&self, pseudo: Sum) -> bool {
        pseudo.add_bytes(self.bytes()).finish() == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Message<T> {
    pub fn set_msg_type(&mut self, t: u8) {
        self.buf.as_mut()[0] = t;
    }

    pub fn set_checksum(&mut self, c: u16) {
        set_be16(self.buf.as_mut(), 2, c);
    }

    pub fn set_echo_id(&mut self, id: u16) {
        set_be16(self.buf.as_mut(), ECHO_ID_OFFSET, id);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }

    /// Recomputes the checksum over `pseudo` (none for ICMPv4) and the message.
    pub(super) fn fill(&mut self, pseudo: Sum) {
        self.set_checksum(0);
        let c = pseudo.add_bytes(self.bytes()).finish();
        self.set_checksum(c);
    }
}

/// Writes an 8-byte header with the given rest-of-header word (checksum left 0).
pub fn write_header(buf: &mut [u8], msg_type: u8, code: u8, rest: u32) {
    buf[0] = msg_type;
    buf[1] = code;
    set_be16(buf, 2, 0);
    buf[4..8].copy_from_slice(&rest.to_be_bytes());
}

/// A family's view: `icmp::Message` with the family's own checks on top (`Deref`).
macro_rules! family_view {
    ($(#[$doc:meta])*) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct Packet<T>(super::icmp::Message<T>);

        impl<T: AsRef<[u8]>> Packet<T> {
            pub fn new_checked(buf: T) -> Result<Self, super::WireError> {
                super::icmp::Message::new_checked(buf).map(Packet)
            }
        }

        impl<T> std::ops::Deref for Packet<T> {
            type Target = super::icmp::Message<T>;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl<T> std::ops::DerefMut for Packet<T> {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }
    };
}
pub(super) use family_view;
