//! What the DHCPv6 client counts, for the shell: messages sent and received, and every
//! received message it did not act on under exactly one [`Ignored`] reason.

/// Why a received message was not acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// Shorter than its header, or an option that runs past its container or is too
    /// short for its kind (RFC 8415 section 21).
    Malformed,
    /// Neither Advertise nor Reply (another client's message, a Reconfigure, which
    /// needs authentication natbox does not do).
    NotForClient,
    /// The transaction id is not the exchange's (section 16).
    WrongXid,
    /// No Client Identifier, or another client's (sections 16.3, 16.10).
    WrongClientId,
    /// No Server Identifier (sections 16.3, 16.10).
    NoServerId,
    /// A message the current state does not wait for.
    Unexpected,
    /// No usable address: a status other than success, no address in the client's
    /// IA_NA, lifetimes that make no sense (the reason is in `last_refusal`).
    NoAddress,
}

impl Ignored {
    pub const ALL: [Ignored; 7] = [
        Ignored::Malformed,
        Ignored::NotForClient,
        Ignored::WrongXid,
        Ignored::WrongClientId,
        Ignored::NoServerId,
        Ignored::Unexpected,
        Ignored::NoAddress,
    ];

    /// A stable snake_case name for metrics and the shell.
    pub fn name(self) -> &'static str {
        match self {
            Ignored::Malformed => "malformed",
            Ignored::NotForClient => "not_for_client",
            Ignored::WrongXid => "wrong_xid",
            Ignored::WrongClientId => "wrong_client_id",
            Ignored::NoServerId => "no_server_id",
            Ignored::Unexpected => "unexpected",
            Ignored::NoAddress => "no_address",
        }
    }
}

/// The client's counters; the shell reads a copy in the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub sent: u64,
    pub received: u64,
    /// Received messages not acted on, by `Ignored as usize`.
    pub ignored: [u64; Ignored::ALL.len()],
    pub declines: u64,
}

impl Counters {
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
    fn every_reason_has_its_own_counter_and_a_distinct_name() {
        let mut c = Counters::default();
        for (i, r) in Ignored::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            c.ignore(*r);
            assert_eq!(c.ignored(*r), 1);
        }
        let mut names: Vec<_> = Ignored::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Ignored::ALL.len());
    }
}
