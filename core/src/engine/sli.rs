//! The session tables' hooks into the per-destination SLIs (`engine::destinations`),
//! shared by NAT44 (`Nat44`, IPv4 destinations) and the IPv6 filter (`Fw6`): a session
//! opened from inside counts for its remote's prefix when it is created; a TCP one
//! opened by an inside SYN is an attempt, queued in `Pending` until it is judged. Only
//! state changes of a TCP session reach here (the table compares the state byte after
//! stepping a copy), so packets of an established session pay one comparison.
//!
//! - The remote's SYN-ACK (`SynOut` to `Established`, travelling in; a crossing bare
//!   SYN too) is `ConnectionEstablishedCount`; within `JUDGE_SECS` of the session's
//!   creation it judges the attempt `ok`. Later, the due attempts are judged first, so
//!   this one is judged failed if it was not yet.
//! - A RST answering the SYN (connection refused) within `JUDGE_SECS` judges the
//!   attempt failed at once: the remote is reachable but the connection was not made,
//!   which AWS counts the same way (attempted, not established).
//! - An inside SYN reopening a closed session (RFC 7857 section 2.1) is another
//!   attempt (counted, not judged: the session's creation time is the first open's).
//!   One reopened within `JUDGE_SECS` + 1 s of the first SYN and left unanswered may
//!   be judged failed twice (the queue entry still names it).
//! - Sessions opened from outside are not counted: their remote is a source, not a
//!   destination.
//! - Bytes each way are credited to the destination when a flow record takes a
//!   session's account (`carried`: at its end and at every interim record), so they
//!   are counted only while flow logs are on (`engine::flowlog`; off, the box keeps no
//!   per-session byte counters, and `Report::bytes` says so). Sessions of port
//!   forwards are left out (their remotes are clients; a hairpinned exchange would
//!   also count twice); a session an outsider opened on a host's mapping
//!   (endpoint-independent filtering) counts, its remote being a peer the host talks
//!   to.
//! - `idle_timeouts` counts sessions that expire in the established class
//!   (`IdleTimeoutCount`: an open connection that went idle, not a closed one); only
//!   NAT44 counts it, as AWS's gateway counts IPv4 connections.

use super::destinations::{Dest, Destinations, Outcome, Pending, Report, Waiting, JUDGE_SECS};
use super::flow::track::{Dir, TcpState, OPENED_IN};
use super::flowlog::Account;
use crate::wire::proto;
use slab::Slab;

/// Attempts waiting for judgment at most, per shard (`Pending`): 16k new TCP
/// connections a second for the 4 s an attempt waits.
const MAX_PENDING: usize = 1 << 16;

/// What the hooks read of a session record.
pub(super) trait Attempt {
    /// The remote's prefix.
    fn dest(&self) -> Dest;
    /// Creation second.
    fn born(&self) -> u32;
    /// Tells the session from a later one in the same slot and second.
    fn tag(&self) -> u32;
    fn proto(&self) -> u8;
    /// See `track::step`.
    fn state(&self) -> u8;
}

#[derive(Debug)]
pub(super) struct Sli {
    dests: Destinations,
    pending: Pending,
    pub(super) idle_timeouts: u64,
}

impl Sli {
    /// For a table of `max` sessions.
    pub(super) fn new(max: usize) -> Sli {
        Sli {
            dests: Destinations::default(),
            pending: Pending::with_capacity(max.min(MAX_PENDING)),
            idle_timeouts: 0,
        }
    }

    pub(super) fn memory_for(max: usize) -> usize {
        max.min(MAX_PENDING) * std::mem::size_of::<Waiting>()
    }

    pub(super) fn memory(&self) -> usize {
        self.pending.memory()
    }

    /// Session `idx` (`s`) was created from inside.
    pub(super) fn created(&mut self, idx: u32, s: &impl Attempt) {
        let attempt = s.proto() == proto::TCP && s.state() == TcpState::SynOut as u8;
        self.dests.session(s.dest(), attempt);
        if attempt {
            self.pending.push(Waiting {
                idx,
                born: s.born(),
                tag: s.tag(),
            });
        }
    }

    /// TCP session `idx` moves to state `new` on a packet travelling `dir`; its
    /// record still holds the old state.
    pub(super) fn tcp_moved<S: Attempt>(
        &mut self,
        sessions: &Slab<S>,
        idx: u32,
        new: u8,
        dir: Dir,
        now: u32,
    ) {
        let s = &sessions[idx as usize];
        let old = TcpState::from_u8(s.state() & !OPENED_IN);
        let dest = s.dest();
        match (old, TcpState::from_u8(new & !OPENED_IN), dir) {
            (TcpState::SynOut, answer @ (TcpState::Established | TcpState::Reset), Dir::In) => {
                let ok = answer == TcpState::Established;
                if ok {
                    self.dests.established(dest);
                }
                if now.saturating_sub(s.born()) <= JUDGE_SECS {
                    self.dests
                        .outcome(dest, if ok { Outcome::Ok } else { Outcome::Failed });
                } else {
                    self.judge_due(sessions, now);
                }
            }
            (TcpState::SynOut, _, _) => {}
            (_, TcpState::SynOut, Dir::Out) => self.dests.reopened(dest),
            _ => {}
        }
    }

    /// Judges the attempts whose time is up: failed if still unanswered.
    pub(super) fn judge_due<S: Attempt>(&mut self, sessions: &Slab<S>, now: u32) {
        while let Some(w) = self.pending.due(now) {
            let Some(s) = sessions.get(w.idx as usize) else {
                continue;
            };
            if s.born() == w.born
                && s.tag() == w.tag
                && s.proto() == proto::TCP
                && s.state() == TcpState::SynOut as u8
            {
                self.dests.outcome(s.dest(), Outcome::Failed);
            }
        }
    }

    /// A flow record took `account` from a session to `dest`.
    pub(super) fn carried(&mut self, dest: Dest, account: &Account) {
        self.dests.carried(dest, account.bytes);
    }

    /// The SLIs, the destinations in `summary`; `bytes` whether they are counted.
    pub(super) fn report(&self, bytes: bool) -> Report {
        Report {
            summary: self.dests.summary(),
            v6: Default::default(),
            idle_timeouts: self.idle_timeouts,
            unjudged: self.pending.unjudged,
            bytes,
        }
    }

    /// Takes over `old`'s counts at a rebuild (the tables were made anew, sessions
    /// adopted). Its attempts still waiting are not: they name `old`'s session slots,
    /// so they stay unjudged (counted as such).
    pub(super) fn carry(&mut self, old: &mut Sli) {
        std::mem::swap(&mut self.dests, &mut old.dests);
        self.idle_timeouts = old.idle_timeouts;
        self.pending.unjudged = old.pending.unjudged + old.pending.waiting() as u64;
    }

    pub(super) fn clear(&mut self) {
        self.dests.clear();
        self.idle_timeouts = 0;
        self.pending.unjudged = 0;
    }
}
