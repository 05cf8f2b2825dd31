//! What the client counts, for the shell: messages sent and received, every received
//! message it did not act on under exactly one [`Ignored`] reason, NAKs and DECLINEs.

macro_rules! ignored_reasons {
    ($($variant:ident => $name:literal, $help:literal;)*) => {
        /// Why a received message was not acted on. One counter per variant.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Ignored {
            $($variant,)*
        }

        impl Ignored {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Ignored] = &[$(Ignored::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// A stable snake_case name for metrics and the shell.
            pub fn name(self) -> &'static str {
                match self {
                    $(Ignored::$variant => $name,)*
                }
            }

            /// One line an operator can act on.
            pub fn help(self) -> &'static str {
                match self {
                    $(Ignored::$variant => $help,)*
                }
            }
        }
    };
}

ignored_reasons! {
    Malformed => "malformed", "shorter than a BOOTP header (240 bytes), or without a one-byte DHCP message type (option 53)";
    NotReply => "not_reply", "op is not BOOTREPLY (another client's request)";
    WrongChaddr => "wrong_chaddr", "hardware type, length or address is not this client's (a reply to another client)";
    TruncatedOptions => "truncated_options", "an option's length runs past the end of the message (RFC 2132 section 2): a broken reply, refused whole";
    WrongXid => "wrong_xid", "transaction id is not the one in progress (a late or foreign reply)";
    Unexpected => "unexpected", "message type the current state does not wait for (an OFFER once requesting, anything while bound)";
    BadLease => "bad_lease", "OFFER or ACK refused by lease validation (the reason is in last_refusal)";
    ForeignNak => "foreign_nak", "NAK whose server identifier is not the server the REQUEST went to";
}

/// The client's counters; the shell reads a copy in the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub sent: u64,
    pub received: u64,
    /// Received messages not acted on, indexed by `Ignored as usize`.
    pub ignored: [u64; Ignored::COUNT],
    pub naks: u64,
    pub declines: u64,
    /// ACKs that extended the lease in RENEWING (from the server, unicast) and in
    /// REBINDING (from any server, broadcast), RFC 2131 section 4.4.5.
    pub renewals: u64,
    pub rebinds: u64,
}

impl Counters {
    /// The count for one reason.
    pub fn ignored(&self, reason: Ignored) -> u64 {
        self.ignored[reason as usize]
    }

    pub(super) fn ignore(&mut self, reason: Ignored) {
        self.ignored[reason as usize] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_distinct_name_and_its_own_counter() {
        let mut c = Counters::default();
        for (i, r) in Ignored::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            c.ignore(*r);
            assert_eq!(c.ignored(*r), 1);
            assert!(!r.help().is_empty());
        }
        let mut names: Vec<_> = Ignored::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Ignored::COUNT);
    }
}
