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
//! - an acceptable RST (below) moves any state to `Reset`, also transitory. RFC 7857
//!   section 2.2 asks not to drop state at once, since the RST may be lost or forged:
//!   a segment each way after it (`ResetSeenOut`/`ResetSeenIn`, in either order) puts
//!   the session back to `Established`;
//! - a SYN on a `FinBoth`/`Reset*` session reopens it (4-tuple reuse, RFC 7857 s2.1);
//! - packets refresh the idle timer except in `FinBoth`/`Reset*`, so a closed
//!   connection always ends within the transitory timeout; a record opened from
//!   outside and not answered yet (`OPENED_IN`) is refreshed only by the inside.
//!
//! A non-SYN segment never creates state: after a restart, stale connections are
//! dropped (counted) rather than guessed at.
//!
//! Sequence windows (RFC 5961 section 3, as a middlebox can apply it). `Window` keeps,
//! for each side, the end of the sequence space it has sent (highest seq + len, SYN
//! and FIN counting one) and a bound on the window it has advertised: 10 bytes a
//! record, byte-aligned so records pay no padding, and no allocation. A side's bound is
//! a power of two `2^(15+k)` (k in 0..=15: 32 KiB to 1 GiB), the smallest above the
//! largest window it advertised, so at most twice it. Its window field is scaled by its
//! RFC 7323 shift when both SYNs carried the option, and taken unscaled otherwise (as
//! that RFC says); a side not seen yet is assumed to advertise 64 KiB (the largest
//! unscaled window). No ACK numbers are kept: the receiver's RCV.NXT is bounded from
//! below by the sender's end minus the receiver's bound (nothing more can be in
//! flight), which saves 8 bytes a record for a window twice as wide.
//!
//! A segment from a side is *plausible* when its sequence number lies within the
//! peer's bound of that side's end, `end - bound <= seq < end + bound`: RCV.NXT lies in
//! `[end - bound, end]` and RCV.NXT + RCV.WND below `end + bound`, so every segment the
//! receiver could accept, RST included (RFC 5961 section 3.2), is plausible. A blind
//! guess is plausible with odds of `2 * bound / 2^32`: 1 in 32 768 for a 64 KiB window.
//! - Only plausible segments move the state machine or teach the tracker (end,
//!   window): an off-path sender must guess the sequence number before it can steer
//!   anything. Other segments are forwarded unchanged (the endpoint discards them) and
//!   refresh the idle timer as before.
//! - A RST from outside that is not plausible is dropped and counted as
//!   `TcpRstOutOfWindow`. One from inside is the inside endpoint's own and always
//!   forwarded (it moves nothing when not plausible): a client in SYN-SENT answers a
//!   stale ACK (a server's TIME-WAIT for an earlier connection on the same 4-tuple)
//!   with a RST whose sequence number is that ACK's (RFC 9293 section 3.10.7.3), which
//!   no window of ours holds, and the server needs it to end the TIME-WAIT; dropping it
//!   left such connections unable to open (test_portblock, where ports come back
//!   sooner than in a whole range). A plausible one is forwarded and moves to `Reset`: natbox does not send challenge
//!   ACKs itself, the endpoint applies the exact check and answers an inexact RST with
//!   one (RFC 5961 section 3.2), and the traffic that follows brings the session back
//!   to `Established` (RFC 7857 section 2.2, above).
//! - Before a side's SYN is seen, the only segments from it that count are a SYN (which
//!   teaches its ISN and window scale) and a RST; both must acknowledge exactly the
//!   peer's SYN (RFC 9293 section 3.10.7.3, SYN-SENT), except a bare SYN (simultaneous
//!   open). A SYN that acknowledges exactly the peer's sequence end re-teaches a side
//!   already seen, so a forged bare SYN cannot desynchronise the tracker for good.
//! - An outbound SYN on a closed session teaches the inside's new ISN and forgets the
//!   remote side (reopen). Only the inside can reopen.

use super::super::stats::DropReason;
use crate::wire::tcp::{self, ACK, FIN, RST, SYN};

/// Which way a packet crosses the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the inside to the outside.
    Out,
    /// From the outside to the inside.
    In,
}

impl Dir {
    fn reverse(self) -> Dir {
        match self {
            Dir::Out => Dir::In,
            Dir::In => Dir::Out,
        }
    }
}

/// Expiry classes: each has its own timeout and its own LRU list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    TcpEstablished,
    TcpTransitory,
    TcpIncomingSyn,
    /// A UDP session opened from outside that the inside has not answered yet.
    UdpIncoming,
    Udp,
    Icmp,
    /// IPv6 protocols other than TCP, UDP and ICMPv6 (tracked by address pair).
    Other,
}

impl Class {
    pub const COUNT: usize = 7;
    pub const ALL: [Class; Class::COUNT] = [
        Class::TcpEstablished,
        Class::TcpTransitory,
        Class::TcpIncomingSyn,
        Class::UdpIncoming,
        Class::Udp,
        Class::Icmp,
        Class::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::TcpEstablished => "tcp_established",
            Class::TcpTransitory => "tcp_transitory",
            Class::TcpIncomingSyn => "tcp_incoming_syn",
            Class::UdpIncoming => "udp_incoming",
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

/// Marks a record opened by an inbound packet that the inside has not answered yet
/// (NAT44 charges it to its mapping, not to its inside host). Such a record lives in
/// an incoming class (`tcp_incoming_syn` seconds) and only the inside refreshes it;
/// `step` clears the mark when the inside answers: a UDP packet out, or a TCP open
/// completed (not a RST).
pub const OPENED_IN: u8 = 0x80;

/// What one packet did to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    /// The idle timer restarts.
    pub refresh: bool,
    /// The record's class now.
    pub class: Class,
    /// The packet answered a record opened from outside (`OPENED_IN` cleared).
    pub answered: bool,
}

/// Advances a record's state for one packet: updates `state` (`TcpState as u8` for
/// TCP, 0 otherwise, plus `OPENED_IN`) and `window`. UDP refreshes on outbound
/// packets, and on inbound ones only if `udp_inbound_refresh` (RFC 4787 REQ-6); ICMP
/// queries and other protocols refresh on outbound packets. A TCP RST outside the
/// receiver's window is refused and changes nothing; any other TCP segment outside it
/// is let through (the endpoint decides) but neither moves the state nor restarts the
/// idle timer, so an off-path sender who knows the 4-tuple cannot keep a session.
pub fn step(
    protocol: u8,
    state: &mut u8,
    window: &mut Window,
    dir: Dir,
    seg: &Segment,
    udp_inbound_refresh: bool,
) -> Result<Effect, DropReason> {
    use crate::wire::proto;
    let opened_in = *state & OPENED_IN != 0;
    let (new, refresh, answers) = match protocol {
        proto::TCP => {
            let old = TcpState::from_u8(*state & !OPENED_IN);
            let accepted = window.accept(old, dir, seg);
            if !accepted && seg.flags & RST != 0 && dir == Dir::In {
                return Err(DropReason::TcpRstOutOfWindow);
            }
            let new = if accepted {
                old.next(dir, seg.flags)
            } else {
                old
            };
            // Closing restarts the timer once; moving between closed states does not.
            let closes = new != old && !old.is_closed();
            let refresh = accepted && (new.refreshes() || closes);
            (new as u8, refresh, accepted && new.answered())
        }
        proto::UDP => (0, dir == Dir::Out || udp_inbound_refresh, dir == Dir::Out),
        _ => (0, dir == Dir::Out, dir == Dir::Out),
    };
    let answered = opened_in && answers;
    let still_in = opened_in && !answers;
    *state = if still_in { new | OPENED_IN } else { new };
    Ok(Effect {
        refresh: refresh && (!still_in || dir == Dir::Out),
        class: class_of(protocol, *state),
        answered,
    })
}

/// The class of a record in `state` (as `step` keeps it).
pub fn class_of(protocol: u8, state: u8) -> Class {
    use crate::wire::proto;
    match protocol {
        proto::TCP if state & OPENED_IN != 0 => Class::TcpIncomingSyn,
        proto::TCP => TcpState::from_u8(state).class(),
        proto::UDP if state & OPENED_IN != 0 => Class::UdpIncoming,
        proto::UDP => Class::Udp,
        proto::ICMP | proto::ICMPV6 => Class::Icmp,
        _ => Class::Other,
    }
}

/// The state's name for the shell.
pub fn state_name(protocol: u8, state: u8) -> &'static str {
    match protocol {
        crate::wire::proto::TCP => TcpState::from_u8(state & !OPENED_IN).name(),
        _ if state & OPENED_IN != 0 => "unanswered",
        _ => "active",
    }
}

/// What window tracking reads from one TCP segment (all zero for other protocols).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    /// The raw window field.
    pub window: u16,
    /// Payload bytes.
    pub len: u32,
    /// A SYN's window scale option (RFC 7323 section 2.2).
    pub wscale: Option<u8>,
}

impl Segment {
    /// Reads a segment whose buffer ends where its datagram ends.
    pub fn parse<T: AsRef<[u8]>>(t: &tcp::Packet<T>) -> Segment {
        let flags = t.flags();
        Segment {
            flags,
            seq: t.seq(),
            ack: t.ack(),
            window: t.window(),
            // A segment is shorter than 4 GiB: its buffer is.
            len: t.payload_len() as u32,
            wscale: if flags & SYN != 0 { t.wscale() } else { None },
        }
    }

    /// The sequence number after this segment: SYN and FIN take one each.
    fn end(&self) -> u32 {
        self.seq
            .wrapping_add(self.len)
            .wrapping_add(u32::from(self.flags & SYN != 0))
            .wrapping_add(u32::from(self.flags & FIN != 0))
    }
}

/// Shift-count nibble meaning "no window scale option".
const NO_SCALE: u8 = 0x0f;
/// A side not seen yet: bound 2^16 (the largest unscaled window), no scale option.
const UNSEEN_SHAPE: u8 = 1 << 4 | NO_SCALE;

/// Per-side sequence tracking of one TCP connection (see the module doc). Index 0 is
/// the inside (it sends `Dir::Out`), 1 the remote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// Each side's sequence end, as bytes so the record pays no alignment padding.
    end: [[u8; 4]; 2],
    /// Each side's window bound exponent `k` (high nibble) and offered shift count
    /// (low nibble, `NO_SCALE` if none).
    shape: [u8; 2],
}

impl Window {
    /// The tracking of a connection opened by `syn` travelling `dir`.
    pub fn open(dir: Dir, syn: &Segment) -> Window {
        let mut w = Window {
            end: [[0; 4]; 2],
            shape: [UNSEEN_SHAPE; 2],
        };
        w.learn_syn(dir, syn);
        w
    }

    fn end(&self, side: Dir) -> u32 {
        u32::from_ne_bytes(self.end[side as usize])
    }

    fn set_end(&mut self, side: Dir, end: u32) {
        self.end[side as usize] = end.to_ne_bytes();
    }

    /// The most the peer of `side` may have outstanding: above `side`'s largest window.
    fn bound(&self, side: Dir) -> u32 {
        1 << (15 + (self.shape[side as usize] >> 4))
    }

    /// The shift applied to `side`'s window field: its own, if both SYNs offered one.
    fn shift(&self, side: Dir) -> u8 {
        let own = self.shape[side as usize] & NO_SCALE;
        let peer = self.shape[side.reverse() as usize] & NO_SCALE;
        if own == NO_SCALE || peer == NO_SCALE {
            0
        } else {
            own.min(14) // RFC 7323 section 2.3: larger values are used as 14
        }
    }

    /// Takes `side`'s ISN, window and scale option from its SYN.
    fn learn_syn(&mut self, side: Dir, syn: &Segment) {
        self.set_end(side, syn.end());
        let scale = syn.wscale.map_or(NO_SCALE, |s| s.min(14));
        self.shape[side as usize] = bound_exponent(u32::from(syn.window)) << 4 | scale;
    }

    /// Raises `side`'s bound to cover a (non-SYN) window field.
    fn learn_window(&mut self, side: Dir, field: u16) {
        let k = bound_exponent(u32::from(field) << self.shift(side));
        let shape = &mut self.shape[side as usize];
        if k > *shape >> 4 {
            *shape = k << 4 | (*shape & NO_SCALE);
        }
    }

    /// Checks a segment travelling `dir` against the windows and learns from it;
    /// `false` means it must not change the connection state (module doc).
    fn accept(&mut self, state: TcpState, dir: Dir, seg: &Segment) -> bool {
        let peer = dir.reverse();
        let syn = seg.flags & SYN != 0;
        let acks_peer = seg.flags & ACK != 0 && seg.ack == self.end(peer) && state.knows(peer);
        if syn && dir == Dir::Out && state.is_closed() {
            self.learn_syn(dir, seg);
            self.shape[peer as usize] = UNSEEN_SHAPE;
            return true;
        }
        if !state.knows(dir) {
            if syn && (seg.flags & ACK == 0 || acks_peer) {
                self.learn_syn(dir, seg);
                return true;
            }
            return seg.flags & RST != 0 && acks_peer;
        }
        if syn && acks_peer {
            self.learn_syn(dir, seg);
            return true;
        }
        let (end, bound) = (self.end(dir), self.bound(peer));
        if !in_window(seg.seq, end, bound) {
            return false;
        }
        let seg_end = seg.end();
        if (seg_end.wrapping_sub(end) as i32) > 0 && in_window(seg_end, end, bound) {
            self.set_end(dir, seg_end);
        }
        if !syn {
            self.learn_window(dir, seg.window);
        }
        true
    }
}

/// `k` such that `2^(15+k)` is the smallest power of two above `window` (at least 32
/// KiB, at most 1 GiB: a scaled window is below 2^30).
fn bound_exponent(window: u32) -> u8 {
    let bits = 32 - window.leading_zeros();
    bits.saturating_sub(15).min(15) as u8
}

/// Whether `end - bound <= seq < end + bound`, in sequence-number arithmetic.
fn in_window(seq: u32, end: u32, bound: u32) -> bool {
    seq.wrapping_sub(end).wrapping_add(bound) < 2 * bound
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
    /// Reset, then a segment from the inside.
    ResetSeenOut,
    /// Reset, then a segment from the remote.
    ResetSeenIn,
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
            (state, Dir::Out) if syn && state.is_closed() => SynOut,
            (Reset, Dir::Out) => ResetSeenOut,
            (Reset, Dir::In) => ResetSeenIn,
            (ResetSeenOut, Dir::In) | (ResetSeenIn, Dir::Out) => Established,
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
            TcpState::SynOut
            | TcpState::FinBoth
            | TcpState::Reset
            | TcpState::ResetSeenOut
            | TcpState::ResetSeenIn => Class::TcpTransitory,
        }
    }

    /// Whether a packet in this state restarts the idle timer.
    pub fn refreshes(self) -> bool {
        !self.is_closed()
    }

    /// The inside took part in the open: a session opened from outside was answered.
    fn answered(self) -> bool {
        !self.is_closed() && self != TcpState::SynIn
    }

    /// Closed or reset: an outbound SYN reopens the session.
    fn is_closed(self) -> bool {
        use TcpState::*;
        matches!(self, FinBoth | Reset | ResetSeenOut | ResetSeenIn)
    }

    /// Whether the SYN of the side that sends `dir` has been seen.
    fn knows(self, dir: Dir) -> bool {
        !matches!(
            (self, dir),
            (TcpState::SynOut, Dir::In) | (TcpState::SynIn, Dir::Out)
        )
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
            TcpState::ResetSeenOut => "reset_seen_out",
            TcpState::ResetSeenIn => "reset_seen_in",
        }
    }

    pub fn from_u8(v: u8) -> TcpState {
        use TcpState::*;
        [
            SynOut,
            SynIn,
            Established,
            FinOut,
            FinIn,
            FinBoth,
            Reset,
            ResetSeenOut,
            ResetSeenIn,
        ]
        .get(usize::from(v))
        .copied()
        .unwrap_or(Reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    const IN_ISN: u32 = 1000;
    const REM_ISN: u32 = 0xffff_ff00; // the remote's numbers wrap

    fn seg(flags: u8, seq: u32, ack: u32) -> Segment {
        Segment {
            flags,
            seq,
            ack,
            window: 65535,
            len: 0,
            wscale: None,
        }
    }

    /// A TCP connection's tracking fields.
    struct Conn {
        state: u8,
        window: Window,
    }

    impl Conn {
        /// Inside SYN, remote SYN-ACK, inside ACK; each SYN offers `scale` if given.
        fn handshake(inside_scale: Option<u8>, remote_scale: Option<u8>) -> Conn {
            let syn = Segment {
                wscale: inside_scale,
                ..seg(SYN, IN_ISN, 0)
            };
            let mut c = Conn {
                state: TcpState::open(Dir::Out, SYN).unwrap() as u8,
                window: Window::open(Dir::Out, &syn),
            };
            c.send(Dir::Out, syn).unwrap();
            let syn_ack = Segment {
                wscale: remote_scale,
                ..seg(SYN | ACK, REM_ISN, IN_ISN + 1)
            };
            assert_eq!(c.send(Dir::In, syn_ack), Ok(Established));
            assert_eq!(
                c.send(Dir::Out, seg(ACK, IN_ISN + 1, REM_ISN.wrapping_add(1))),
                Ok(Established)
            );
            c
        }

        fn send(&mut self, dir: Dir, seg: Segment) -> Result<TcpState, DropReason> {
            step(
                crate::wire::proto::TCP,
                &mut self.state,
                &mut self.window,
                dir,
                &seg,
                false,
            )?;
            Ok(TcpState::from_u8(self.state & !OPENED_IN))
        }

        /// A RST from the remote at `offset` from the remote's sequence end.
        fn remote_rst(&mut self, offset: i32) -> Result<TcpState, DropReason> {
            let seq = REM_ISN.wrapping_add(1).wrapping_add_signed(offset);
            self.send(Dir::In, seg(RST | ACK, seq, IN_ISN + 1))
        }
    }

    #[test]
    fn rfc5961_3_2_out_of_window_rst_is_refused() {
        let mut c = Conn::handshake(None, None);
        // The inside's window is 65535 unscaled: the bound is 2^16 either side.
        for offset in [1 << 16, -(1 << 16) - 1, 1 << 30, i32::MIN] {
            assert_eq!(
                c.remote_rst(offset),
                Err(DropReason::TcpRstOutOfWindow),
                "{offset}"
            );
            assert_eq!(TcpState::from_u8(c.state), Established);
        }
        assert_eq!(c.remote_rst((1 << 16) - 1), Ok(Reset));
        let mut c = Conn::handshake(None, None);
        assert_eq!(c.remote_rst(-(1 << 16)), Ok(Reset));
    }

    /// RFC 9293 section 3.10.7.3: a client in SYN-SENT answers an ACK that does not
    /// acknowledge its SYN (a server's TIME-WAIT for the 4-tuple's last connection)
    /// with <SEQ=SEG.ACK><CTL=RST>. That RST is forwarded (the server needs it to end
    /// the TIME-WAIT) and moves nothing; a RST from outside is still checked.
    #[test]
    fn rfc9293_3_10_7_3_the_inside_rst_answering_a_stale_ack_passes() {
        let syn = seg(SYN, IN_ISN, 0);
        let mut c = Conn {
            state: TcpState::open(Dir::Out, SYN).unwrap() as u8,
            window: Window::open(Dir::Out, &syn),
        };
        let synout = c.send(Dir::Out, syn).unwrap();
        let stale_ack = 0x7777_0000;
        assert_eq!(c.send(Dir::In, seg(ACK, REM_ISN, stale_ack)), Ok(synout));
        assert_eq!(c.send(Dir::Out, seg(RST, stale_ack, 0)), Ok(synout));
        assert_eq!(
            c.send(Dir::In, seg(RST, stale_ack, 0)),
            Err(DropReason::TcpRstOutOfWindow)
        );
    }

    #[test]
    fn rfc5961_off_path_segments_teach_nothing() {
        let mut c = Conn::handshake(None, None);
        let far = REM_ISN.wrapping_add(1 << 20);
        // A forged FIN and forged data far off the window change nothing...
        assert_eq!(
            c.send(Dir::In, seg(FIN | ACK, far, IN_ISN + 1)),
            Ok(Established)
        );
        let data = Segment {
            len: 1000,
            ..seg(ACK, far, IN_ISN + 1)
        };
        assert_eq!(c.send(Dir::In, data), Ok(Established));
        // ...so a RST next to them is still out of window.
        assert_eq!(
            c.send(Dir::In, seg(RST, far.wrapping_add(1000), 0)),
            Err(DropReason::TcpRstOutOfWindow)
        );
    }

    #[test]
    fn rfc5961_off_path_segments_do_not_keep_a_session_alive() {
        let mut c = Conn::handshake(None, None);
        let mut refreshes = |seq: u32| {
            let data = Segment {
                len: 100,
                ..seg(ACK, seq, IN_ISN + 1)
            };
            step(
                crate::wire::proto::TCP,
                &mut c.state,
                &mut c.window,
                Dir::In,
                &data,
                false,
            )
            .unwrap()
            .refresh
        };
        assert!(!refreshes(REM_ISN.wrapping_add(1 << 20)), "off path");
        assert!(refreshes(REM_ISN.wrapping_add(1)), "in window");
    }

    #[test]
    fn in_window_data_moves_the_window() {
        let mut c = Conn::handshake(None, None);
        let mut seq = REM_ISN.wrapping_add(1);
        for _ in 0..100 {
            let data = Segment {
                len: 60_000,
                ..seg(ACK, seq, IN_ISN + 1)
            };
            assert_eq!(c.send(Dir::In, data), Ok(Established));
            seq = seq.wrapping_add(60_000);
        }
        // 6 MB later (and past the wrap), a RST at the new end is in window.
        assert_eq!(c.send(Dir::In, seg(RST, seq, 0)), Ok(Reset));
    }

    #[test]
    fn rfc7323_window_scale_widens_the_bound_only_when_both_offer_it() {
        let big = 4_000_000;
        let mut c = Conn::handshake(Some(7), Some(7));
        // The inside advertises 65535 << 7 (8 MB).
        let ack = seg(ACK, IN_ISN + 1, REM_ISN.wrapping_add(1));
        c.send(Dir::Out, ack).unwrap();
        assert_eq!(c.remote_rst(-(1 << 24)), Err(DropReason::TcpRstOutOfWindow));
        assert_eq!(c.remote_rst(big), Ok(Reset));
        // The remote offered no scaling: the inside's window is not scaled.
        let mut c = Conn::handshake(Some(7), None);
        c.send(Dir::Out, ack).unwrap();
        assert_eq!(c.remote_rst(big), Err(DropReason::TcpRstOutOfWindow));
    }

    #[test]
    fn rfc9293_syn_sent_only_an_ack_of_the_syn_counts() {
        let syn = seg(SYN, IN_ISN, 0);
        let open = || Conn {
            state: SynOut as u8,
            window: Window::open(Dir::Out, &syn),
        };
        let mut c = open();
        // A SYN-ACK or RST that does not acknowledge our SYN changes nothing.
        assert_eq!(c.send(Dir::In, seg(SYN | ACK, 7, IN_ISN + 2)), Ok(SynOut));
        assert_eq!(
            c.send(Dir::In, seg(RST | ACK, 0, IN_ISN)),
            Err(DropReason::TcpRstOutOfWindow)
        );
        assert_eq!(
            c.send(Dir::In, seg(RST, 0, IN_ISN + 1)),
            Err(DropReason::TcpRstOutOfWindow),
            "a RST without ACK"
        );
        // Connection refused.
        assert_eq!(c.send(Dir::In, seg(RST | ACK, 0, IN_ISN + 1)), Ok(Reset));
        // A forged bare SYN is taken (simultaneous open), but the real SYN-ACK,
        // acknowledging our SYN exactly, re-teaches the remote's numbers.
        let mut c = open();
        assert_eq!(c.send(Dir::In, seg(SYN, 0x4000_0000, 0)), Ok(Established));
        let syn_ack = seg(SYN | ACK, REM_ISN, IN_ISN + 1);
        assert_eq!(c.send(Dir::In, syn_ack), Ok(Established));
        assert_eq!(c.remote_rst(0), Ok(Reset));
    }

    #[test]
    fn rfc7857_2_2_traffic_both_ways_after_a_rst_reestablishes() {
        let mut c = Conn::handshake(None, None);
        let out = seg(ACK, IN_ISN + 1, REM_ISN.wrapping_add(1));
        let inb = seg(ACK, REM_ISN.wrapping_add(1), IN_ISN + 1);
        assert_eq!(c.remote_rst(10), Ok(Reset));
        assert_eq!(c.send(Dir::In, inb), Ok(ResetSeenIn));
        assert_eq!(
            c.send(Dir::In, inb),
            Ok(ResetSeenIn),
            "one way is not enough"
        );
        assert_eq!(c.send(Dir::Out, out), Ok(Established));
        assert_eq!(c.remote_rst(10), Ok(Reset));
        assert_eq!(c.send(Dir::Out, out), Ok(ResetSeenOut));
        assert_eq!(c.remote_rst(10), Ok(Reset), "a new RST starts over");
        assert_eq!(c.send(Dir::Out, out), Ok(ResetSeenOut));
        assert_eq!(c.send(Dir::In, inb), Ok(Established));
        // Only the first step into a closed state restarts the idle timer.
        let mut c = Conn::handshake(None, None);
        let tcp = crate::wire::proto::TCP;
        let rst = seg(RST, REM_ISN.wrapping_add(1), 0);
        let refresh = |c: &mut Conn, dir, s| {
            step(tcp, &mut c.state, &mut c.window, dir, &s, false)
                .unwrap()
                .refresh
        };
        assert!(refresh(&mut c, Dir::In, rst));
        assert!(!refresh(&mut c, Dir::Out, out));
        assert!(refresh(&mut c, Dir::In, inb), "back to established");
    }

    #[test]
    fn only_the_inside_reopens_a_closed_session() {
        let mut c = Conn::handshake(None, None);
        assert_eq!(c.remote_rst(0), Ok(Reset));
        assert_eq!(c.send(Dir::In, seg(SYN, 0x4000_0000, 0)), Ok(Reset));
        assert_eq!(c.send(Dir::Out, seg(SYN, 0x8000_0000, 0)), Ok(SynOut));
        // The remote side is forgotten: its answer must acknowledge the new SYN.
        assert_eq!(
            c.send(Dir::In, seg(SYN | ACK, 9, 0x8000_0001)),
            Ok(Established)
        );
        assert_eq!(c.send(Dir::In, seg(RST, 10, 0)), Ok(Reset));
    }

    #[test]
    fn bound_exponent_covers_the_window() {
        assert_eq!(bound_exponent(0), 0);
        assert_eq!(bound_exponent(32767), 0);
        assert_eq!(bound_exponent(32768), 1);
        assert_eq!(bound_exponent(65535), 1);
        assert_eq!(bound_exponent(65535 << 14), 15);
        assert!(in_window(u32::MAX, 5, 8) && !in_window(13, 5, 8) && in_window(12, 5, 8));
        assert_eq!(std::mem::size_of::<Window>(), 10);
        assert_eq!(std::mem::align_of::<Window>(), 1);
    }

    #[test]
    fn only_a_plain_syn_opens() {
        assert_eq!(TcpState::open(Dir::Out, ACK), None);
        assert_eq!(TcpState::open(Dir::Out, SYN | RST), None);
        assert_eq!(TcpState::open(Dir::In, FIN | SYN), None);
        assert_eq!(TcpState::from_u8(Established as u8), Established);
    }
}
