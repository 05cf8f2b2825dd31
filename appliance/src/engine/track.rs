//! Session classes, their idle timeouts, and the TCP state machine shared by NAT44 and
//! the IPv6 filter.
//!
//! TCP tracking follows RFC 7857 section 2 (which points at the RFC 6146 section
//! 3.5.2.2 machine) with natbox's choices written down here:
//! - an outbound SYN opens `SynOut`; an inbound SYN that the filter admits opens
//!   `SynIn`, which lives `tcp_incoming_syn` seconds unless the inside answers with its
//!   own SYN (simultaneous open, RFC 5382 REQ-2 / section 4.2.1);
//! - a SYN in the other direction completes the open (`Established`);
//! - a FIN in each direction moves through `FinOut`/`FinIn` to `FinBoth`, which is
//!   transitory (RFC 5382 REQ-5: 4 min);
//! - a RST moves any state to `Reset`, also transitory: RFC 7857 section 2.2 asks not
//!   to drop state at once, since the RST may be lost or forged;
//! - a SYN on a `FinBoth`/`Reset` session reopens it (4-tuple reuse, RFC 7857 s2.1);
//! - packets refresh the idle timer except in `FinBoth`/`Reset`, so a closed
//!   connection always ends within the transitory timeout.
//!
//! A non-SYN segment never creates state: after a restart, stale connections are
//! dropped (counted) rather than guessed at.

use crate::wire::tcp::{FIN, RST, SYN};

/// Which way a packet crosses the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the inside to the outside.
    Out,
    /// From the outside to the inside.
    In,
}

/// Expiry classes: each has its own timeout and its own LRU list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    TcpEstablished,
    TcpTransitory,
    TcpIncomingSyn,
    Udp,
    Icmp,
    /// IPv6 protocols other than TCP, UDP and ICMPv6 (tracked by address pair).
    Other,
}

impl Class {
    pub const COUNT: usize = 6;
    pub const ALL: [Class; Class::COUNT] = [
        Class::TcpEstablished,
        Class::TcpTransitory,
        Class::TcpIncomingSyn,
        Class::Udp,
        Class::Icmp,
        Class::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::TcpEstablished => "tcp_established",
            Class::TcpTransitory => "tcp_transitory",
            Class::TcpIncomingSyn => "tcp_incoming_syn",
            Class::Udp => "udp",
            Class::Icmp => "icmp",
            Class::Other => "other",
        }
    }
}

/// Idle timeout per class, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts([u32; Class::COUNT]);

impl Timeouts {
    pub fn from_config(t: &firmware_config::Timeouts) -> Timeouts {
        Timeouts([
            t.tcp_established,
            t.tcp_transitory,
            t.tcp_incoming_syn,
            t.udp,
            t.icmp,
            t.udp,
        ])
    }

    pub fn get(&self, class: Class) -> u32 {
        self.0[class as usize]
    }
}

/// Advances a record's state for one packet: returns the new state byte
/// (`TcpState as u8` for TCP, 0 otherwise), whether the idle timer restarts, and the
/// record's class. UDP refreshes on outbound packets, and on inbound ones only if
/// `udp_inbound_refresh` (RFC 4787 REQ-6); ICMP queries and other protocols refresh on
/// outbound packets.
pub fn step(
    protocol: u8,
    state: u8,
    dir: Dir,
    tcp_flags: u8,
    udp_inbound_refresh: bool,
) -> (u8, bool, Class) {
    use crate::wire::proto;
    match protocol {
        proto::TCP => {
            let old = TcpState::from_u8(state);
            let new = old.next(dir, tcp_flags);
            (new as u8, new.refreshes() || new != old, new.class())
        }
        proto::UDP => (0, dir == Dir::Out || udp_inbound_refresh, Class::Udp),
        proto::ICMP | proto::ICMPV6 => (0, dir == Dir::Out, Class::Icmp),
        _ => (0, dir == Dir::Out, Class::Other),
    }
}

/// The class of a new record.
pub fn initial_class(protocol: u8, state: u8) -> Class {
    step(protocol, state, Dir::Out, 0, false).2
}

/// Connection state of a TCP session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TcpState {
    SynOut,
    SynIn,
    Established,
    FinOut,
    FinIn,
    FinBoth,
    Reset,
}

impl TcpState {
    /// The state a new session starts in, or `None` if this segment may not open one.
    pub fn open(dir: Dir, flags: u8) -> Option<TcpState> {
        if flags & SYN == 0 || flags & (RST | FIN) != 0 {
            return None;
        }
        Some(match dir {
            Dir::Out => TcpState::SynOut,
            Dir::In => TcpState::SynIn,
        })
    }

    /// The state after a segment with `flags` travelling `dir`.
    pub fn next(self, dir: Dir, flags: u8) -> TcpState {
        use TcpState::*;
        if flags & RST != 0 {
            return Reset;
        }
        let syn = flags & SYN != 0;
        let fin = flags & FIN != 0;
        match (self, dir) {
            (SynOut, Dir::In) | (SynIn, Dir::Out) if syn => Established,
            (FinBoth | Reset, Dir::Out) if syn => SynOut,
            (Established, Dir::Out) if fin => FinOut,
            (Established, Dir::In) if fin => FinIn,
            (FinOut, Dir::In) | (FinIn, Dir::Out) if fin => FinBoth,
            (state, _) => state,
        }
    }

    pub fn class(self) -> Class {
        match self {
            TcpState::Established | TcpState::FinOut | TcpState::FinIn => Class::TcpEstablished,
            TcpState::SynIn => Class::TcpIncomingSyn,
            TcpState::SynOut | TcpState::FinBoth | TcpState::Reset => Class::TcpTransitory,
        }
    }

    /// Whether a packet in this state restarts the idle timer.
    pub fn refreshes(self) -> bool {
        !matches!(self, TcpState::FinBoth | TcpState::Reset)
    }

    pub fn name(self) -> &'static str {
        match self {
            TcpState::SynOut => "syn_out",
            TcpState::SynIn => "syn_in",
            TcpState::Established => "established",
            TcpState::FinOut => "fin_out",
            TcpState::FinIn => "fin_in",
            TcpState::FinBoth => "closing",
            TcpState::Reset => "reset",
        }
    }

    pub fn from_u8(v: u8) -> TcpState {
        use TcpState::*;
        [SynOut, SynIn, Established, FinOut, FinIn, FinBoth, Reset]
            .get(usize::from(v))
            .copied()
            .unwrap_or(Reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::ACK;
    use TcpState::*;

    #[test]
    fn three_way_handshake_then_close() {
        let s = TcpState::open(Dir::Out, SYN).unwrap();
        assert_eq!(s, SynOut);
        let s = s.next(Dir::In, SYN | ACK);
        assert_eq!(s, Established);
        let s = s.next(Dir::Out, ACK).next(Dir::Out, FIN | ACK);
        assert_eq!(s, FinOut);
        assert_eq!(s.class(), Class::TcpEstablished);
        let s = s.next(Dir::In, FIN | ACK);
        assert_eq!(s, FinBoth);
        assert_eq!(s.class(), Class::TcpTransitory);
        assert!(!s.refreshes());
    }

    #[test]
    fn rfc5382_simultaneous_open() {
        let s = TcpState::open(Dir::In, SYN).unwrap();
        assert_eq!(s.class(), Class::TcpIncomingSyn);
        assert_eq!(s.next(Dir::Out, SYN), Established);
        // Outbound SYN first, then the peer's bare SYN crosses it.
        assert_eq!(
            TcpState::open(Dir::Out, SYN).unwrap().next(Dir::In, SYN),
            Established
        );
    }

    #[test]
    fn rfc7857_rst_moves_to_transitory_and_syn_reopens() {
        let s = Established.next(Dir::In, RST);
        assert_eq!(s, Reset);
        assert_eq!(s.class(), Class::TcpTransitory);
        assert_eq!(s.next(Dir::Out, SYN), SynOut);
    }

    #[test]
    fn only_a_plain_syn_opens() {
        assert_eq!(TcpState::open(Dir::Out, ACK), None);
        assert_eq!(TcpState::open(Dir::Out, SYN | RST), None);
        assert_eq!(TcpState::open(Dir::In, FIN | SYN), None);
        assert_eq!(TcpState::from_u8(Established as u8), Established);
    }
}
