//! Flow logs: per-session accounting and the bounded queue of flow records
//! (`[flow_log]`, `firmware_config::flow_log`), which the services drain and export
//! (IPFIX, `appliance::services::ipfix`; text, `appliance::services::flowtext`).
//!
//! Contract:
//! - Accounting lives beside the session tables, not in them: `Accounts` holds one
//!   `Account` per slab slot of `Nat44` sessions or `Fw6` states, allocated only when
//!   flow logging is on. Off, `count` is one failed bounds check; on, it adds a
//!   packet's IP length (header and payload, as IPFIX `octetDeltaCount` counts,
//!   RFC 7012 §5.10.1) and TCP flags to its direction. The session records keep only
//!   what every session needs (`born`, for the record's start).
//! - A record is made when a session ends (its whole last interval) and, while it
//!   lives, every `interval` seconds (`sweep`, a bounded number of slots per `poll`),
//!   each only if the session carried packets since its previous record (so a
//!   session whose last interim record covered everything ends without another). Counters in a record are deltas since
//!   the previous record of the same session (RFC 7011/7012 delta counters, which
//!   nfdump and other collectors add up). A record says when the flow started
//!   (`born`, the session's creation: IPFIX `flowStartMilliseconds` is "the first
//!   packet of this Flow", RFC 7012 §5.9.3, in every record of it), the first second
//!   its counters cover (`account.since`: the previous record's time; the text form's
//!   `start`, as AWS's capture window) and the session's last activity (`end`).
//! - A new session the egress policy refuses (deny or reject) or a limit stops never
//!   gets a session; one record is made at decision time, at most
//!   `REFUSED_PER_SECOND` per shard and second and `REFUSED_PER_HOST` of those per
//!   inside host (the rest are counted as dropped), so a scan cannot crowd out the
//!   records of real flows, nor one scanning host the refusals of the others. Hosts
//!   are told apart by a hash into `HOST_SLOTS` counters: two hosts that share a
//!   slot share its allowance (a bound, never an exemption).
//! - The queue holds at most `CAPACITY` records; a full queue drops the record and
//!   counts it (`dropped`). Nothing here blocks or allocates on the packet path
//!   (the queue and the accounts are reserved when logging is turned on; a slab that
//!   grows past them grows the accounts at session creation, never per packet).

use super::flow::track::Dir;
use crate::wire::{proto, tcp};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

/// Records waiting to be exported, at most, per shard.
pub const CAPACITY: usize = 4096;
/// Records of refused sessions per shard and second, at most.
pub const REFUSED_PER_SECOND: u32 = 1000;
/// Of those, per inside host (module doc).
pub const REFUSED_PER_HOST: u16 = 100;
/// Per-host refusal counters per shard.
const HOST_SLOTS: usize = 256;
/// Slots `sweep` looks at per call, at least (else a sixteenth of the table: a
/// full pass every 16 polls, 1.6 s at the dataplane's 100 ms poll).
pub const SWEEP: usize = 4096;
/// `Account::rule` when no rule decided (no policy, or its default).
pub const NO_RULE: u16 = u16::MAX;

/// `Account::rule` for the policy rule that `Policy::decided` names (`NO_RULE` for
/// none, or the default).
pub fn rule(decided: Option<u32>) -> u16 {
    decided.map_or(NO_RULE, |r| r as u16)
}

/// Bytes the accounts of a table of `slots` sessions take under `config`.
pub fn accounts_bytes(config: &firmware_config::Config, slots: usize) -> usize {
    if config.flow_log.enabled() {
        slots * std::mem::size_of::<Account>()
    } else {
        0
    }
}

/// What a session carried since its last record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Account {
    /// Out (inside to outside), in.
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// The first second these counters cover.
    pub since: u32,
    /// TCP flags seen either way, ORed.
    pub flags: u8,
    /// The policy rule that admitted the session, or `NO_RULE`.
    pub rule: u16,
}

/// What happened to the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accepted,
    /// Refused by a policy rule (or the default) with `reject`.
    Rejected,
    /// Refused by a policy rule (or the default) with `deny`.
    Denied,
    /// Dropped by a limit (sessions, ports, per-host quotas).
    Limit,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Accepted => "accept",
            Action::Rejected => "reject",
            Action::Denied => "deny",
            Action::Limit => "limit",
        }
    }
}

/// Why the record was made: IPFIX `flowEndReason` (IE 136) values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EndReason {
    /// The session expired idle (also a closed TCP session's short timeout).
    IdleTimeout = 1,
    /// Interim record of a live session.
    ActiveTimeout = 2,
    /// TCP FIN or RST seen, then expired.
    EndOfFlow = 3,
    /// Cleared by the operator or a new policy, or refused at creation.
    ForcedEnd = 4,
}

/// One flow record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRecord {
    /// IP protocol number.
    pub proto: u8,
    pub inside: IpAddr,
    pub in_port: u16,
    pub remote: IpAddr,
    pub rem_port: u16,
    /// The translated (public) inside endpoint, for NAT44 sessions.
    pub outside: Option<(Ipv4Addr, u16)>,
    pub account: Account,
    /// When the session was created, engine seconds (the flow's start; the counters
    /// cover `account.since` to `end`).
    pub born: u32,
    /// Last activity, engine seconds.
    pub end: u32,
    pub action: Action,
    pub reason: EndReason,
}

impl FlowRecord {
    /// The record of a new session refused at `now` with `action`, decided by `rule`:
    /// its first packet, of `len` IP bytes and TCP flags `flags`, from `inside`:`in_port`
    /// to `remote`:`rem_port` (protocol `proto`).
    pub fn refused(
        (proto, inside, in_port, remote, rem_port): (u8, IpAddr, u16, IpAddr, u16),
        (len, flags): (usize, u8),
        (action, rule): (Action, u16),
        now: u32,
    ) -> FlowRecord {
        FlowRecord {
            proto,
            inside,
            in_port,
            remote,
            rem_port,
            outside: None,
            account: Account {
                packets: [1, 0],
                bytes: [len as u64, 0],
                since: now,
                flags,
                rule,
            },
            born: now,
            end: now,
            action,
            reason: EndReason::ForcedEnd,
        }
    }
}

/// Per-slot accounts of one session table.
#[derive(Debug, Default)]
pub struct Accounts(Vec<Account>);

impl Accounts {
    /// Counts a packet of `len` IP bytes with TCP flags `flags` on slot `idx`.
    #[inline]
    pub fn count(&mut self, idx: u32, dir: Dir, len: usize, flags: u8) {
        if let Some(a) = self.0.get_mut(idx as usize) {
            let d = dir as usize;
            a.packets[d] += 1;
            a.bytes[d] += len as u64;
            a.flags |= flags;
        }
    }

    /// Starts the account of a new session in slot `idx` (no-op when off).
    pub fn open(&mut self, on: bool, idx: u32, now: u32, rule: u16) {
        let account = Account {
            since: now,
            rule,
            ..Account::default()
        };
        self.put(on, idx, account);
    }

    /// Sets the account of slot `idx` (a session moved there; no-op when off).
    pub fn put(&mut self, on: bool, idx: u32, account: Account) {
        if !on {
            return;
        }
        let idx = idx as usize;
        if idx >= self.0.len() {
            self.0.resize(idx + 1, Account::default());
        }
        self.0[idx] = account;
    }

    /// The account of slot `idx` (zero when off).
    pub fn get(&self, idx: u32) -> Account {
        self.0.get(idx as usize).copied().unwrap_or_default()
    }

    /// The counters of slot `idx` since its last record, restarted from `now`.
    pub fn take(&mut self, idx: u32, now: u32) -> Account {
        match self.0.get_mut(idx as usize) {
            Some(a) => {
                let taken = *a;
                *a = Account {
                    since: now,
                    rule: a.rule,
                    ..Account::default()
                };
                taken
            }
            None => Account::default(),
        }
    }

    /// Whether slot `idx` saw packets and its last record is `interval` old.
    pub fn due(&self, idx: u32, now: u32, interval: u32) -> bool {
        self.0
            .get(idx as usize)
            .is_some_and(|a| a.packets != [0, 0] && now.saturating_sub(a.since) >= interval)
    }

    fn reserve(&mut self, on: bool, slots: usize) {
        if on {
            self.0.resize(slots.max(self.0.len()), Account::default());
        } else {
            self.0 = Vec::new();
        }
    }

    pub fn memory(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<Account>()
    }
}

/// The queue of one shard, its settings and its counters.
#[derive(Debug, Default)]
pub struct FlowLog {
    on: bool,
    interval: u32,
    queue: VecDeque<FlowRecord>,
    second: u32,
    refused_budget: u32,
    /// Refusal records this second, by `host_slot`.
    refused_by_host: Option<Box<[u16; HOST_SLOTS]>>,
    /// The next slot `sweep` looks at.
    cursor: usize,
    pub counters: FlowCounters,
}

/// Flow log counters of a shard (`Counters::flows`); the services' export counts are
/// kept on `ORIGIN_SHARD`'s NAT (`Request::FlowsExported`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCounters {
    /// Records queued for export.
    pub logged: u64,
    /// Records lost: a full queue, the refused-session budget, or not sent.
    pub dropped: u64,
    /// Records sent to a collector (IPFIX data records and text lines).
    pub exported: u64,
    /// IPFIX template sets sent.
    pub templates: u64,
    /// Datagrams the box could not send (no route, no buffer, ICMP errors back).
    pub errors: u64,
}

impl FlowCounters {
    pub fn add(&mut self, o: &FlowCounters) {
        self.logged += o.logged;
        self.dropped += o.dropped;
        self.exported += o.exported;
        self.templates += o.templates;
        self.errors += o.errors;
    }
}

impl FlowLog {
    /// Turns logging on (interim records every `interval` seconds) or off (`None`),
    /// with room for `slots` accounts in `accounts`.
    pub fn configure(&mut self, interval: Option<u32>, accounts: &mut Accounts, slots: usize) {
        self.on = interval.is_some();
        self.interval = interval.unwrap_or(0);
        accounts.reserve(self.on, slots);
        if self.on {
            self.queue
                .reserve_exact(CAPACITY.saturating_sub(self.queue.len()));
            self.refused_by_host
                .get_or_insert_with(|| Box::new([0; HOST_SLOTS]));
        } else {
            self.queue = VecDeque::new();
            self.refused_by_host = None;
        }
    }

    #[inline]
    pub fn enabled(&self) -> bool {
        self.on
    }

    pub fn interval(&self) -> u32 {
        self.interval
    }

    /// Queues `record` if there is room.
    pub fn push(&mut self, record: FlowRecord) {
        if !self.on {
            return;
        }
        if self.queue.len() >= CAPACITY {
            self.counters.dropped += 1;
            return;
        }
        self.counters.logged += 1;
        self.queue.push_back(record);
    }

    /// Queues the record of what session `idx` (of protocol `proto`) carried since its
    /// last one, `reason` its end, built by `record` from the account and the reason:
    /// nothing when logging is off or an interim record covered everything. A TCP
    /// session that saw a FIN or RST ended (`EndOfFlow`) rather than idled out.
    /// Returns the account taken (zero when off), whether or not the queue had room.
    pub fn session_ended(
        &mut self,
        accounts: &mut Accounts,
        (idx, proto): (u32, u8),
        now: u32,
        reason: EndReason,
        record: impl FnOnce(Account, EndReason) -> FlowRecord,
    ) -> Account {
        if !self.on {
            return Account::default();
        }
        let account = accounts.take(idx, now);
        if account.packets == [0, 0] {
            return account;
        }
        let closed = proto == proto::TCP && account.flags & (tcp::FIN | tcp::RST) != 0;
        let reason = match reason {
            EndReason::IdleTimeout if closed => EndReason::EndOfFlow,
            r => r,
        };
        self.push(record(account, reason));
        account
    }

    /// Queues the record of a refused session, within the second's budget.
    pub fn refused(&mut self, now: u32, record: FlowRecord) {
        if !self.on {
            return;
        }
        // Made by `configure` while on.
        let Some(by_host) = self.refused_by_host.as_mut() else {
            return;
        };
        if now != self.second {
            self.second = now;
            self.refused_budget = REFUSED_PER_SECOND;
            by_host.fill(0);
        }
        let host = &mut by_host[host_slot(record.inside)];
        if self.refused_budget == 0 || *host >= REFUSED_PER_HOST {
            self.counters.dropped += 1;
            return;
        }
        *host += 1;
        self.refused_budget -= 1;
        self.push(record);
    }

    /// The next slots of a table of `slots` (`SWEEP`), round robin, for interim
    /// records.
    pub fn sweep(&mut self, slots: usize) -> impl Iterator<Item = u32> {
        let start = if self.cursor >= slots { 0 } else { self.cursor };
        let n = SWEEP.max(slots / 16).min(slots);
        self.cursor = start + n;
        (start..start + n).map(move |i| (i % slots.max(1)) as u32)
    }

    pub fn pop(&mut self) -> Option<FlowRecord> {
        self.queue.pop_front()
    }

    pub fn clear_counters(&mut self) {
        self.counters = FlowCounters::default();
    }
}

/// The per-host refusal counter of inside address `addr`: a multiplicative hash of
/// its bits (IPv4 as IPv4-mapped IPv6), top 8 bits.
fn host_slot(addr: IpAddr) -> usize {
    let bits = match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
        IpAddr::V6(a) => a.to_bits(),
    };
    let folded = (bits >> 64) as u64 ^ bits as u64;
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
}

/// The action a refusal `reason` stands for, if it is one flow logs record.
pub fn refusal(reason: super::stats::DropReason) -> Option<Action> {
    use super::stats::DropReason as R;
    match reason {
        R::PolicyDeny => Some(Action::Denied),
        R::PolicyReject => Some(Action::Rejected),
        R::SessionLimit
        | R::HostSessionLimit
        | R::HostPortLimit
        | R::HostSessionRate
        | R::PortsExhausted
        | R::StateLimit6 => Some(Action::Limit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(port: u16) -> FlowRecord {
        FlowRecord {
            proto: 17,
            inside: "10.10.0.2".parse().unwrap(),
            in_port: port,
            remote: "203.0.113.5".parse().unwrap(),
            rem_port: 53,
            outside: None,
            account: Account::default(),
            born: 0,
            end: 0,
            action: Action::Accepted,
            reason: EndReason::IdleTimeout,
        }
    }

    #[test]
    fn off_keeps_nothing() {
        let (mut log, mut acc) = (FlowLog::default(), Accounts::default());
        log.configure(None, &mut acc, 10);
        acc.open(log.enabled(), 3, 1, NO_RULE);
        acc.count(3, Dir::Out, 100, 0x02);
        log.push(record(1));
        assert_eq!((log.pop(), log.counters.logged, acc.memory()), (None, 0, 0));
    }

    #[test]
    fn counts_each_way_and_takes_deltas() {
        let (mut log, mut acc) = (FlowLog::default(), Accounts::default());
        log.configure(Some(60), &mut acc, 4);
        acc.open(true, 6, 10, 7);
        acc.count(6, Dir::Out, 60, 0x02);
        acc.count(6, Dir::In, 1500, 0x12);
        acc.count(6, Dir::In, 1500, 0x10);
        assert!(!acc.due(6, 69, 60));
        assert!(acc.due(6, 70, 60));
        let a = acc.take(6, 70);
        assert_eq!(
            (a.packets, a.bytes, a.flags, a.since, a.rule),
            ([1, 2], [60, 3000], 0x12, 10, 7)
        );
        let b = acc.take(6, 80);
        assert_eq!(
            (b.packets, b.since, b.rule),
            ([0, 0], 70, 7),
            "deltas restart"
        );
        assert!(!acc.due(6, 200, 60), "no packets, no interim record");
    }

    /// `record(port)` from inside host 10.10.x.y numbered `n`.
    fn from_host(port: u16, n: u32) -> FlowRecord {
        FlowRecord {
            inside: Ipv4Addr::from_bits(0x0a0a_0000 + n).into(),
            ..record(port)
        }
    }

    #[test]
    fn queue_is_bounded_and_refusals_budgeted() {
        let (mut log, mut acc) = (FlowLog::default(), Accounts::default());
        log.configure(Some(60), &mut acc, 0);
        for port in 0..REFUSED_PER_SECOND + 5 {
            log.refused(1, from_host(port as u16, port));
        }
        assert_eq!(
            (log.counters.logged, log.counters.dropped),
            (u64::from(REFUSED_PER_SECOND), 5)
        );
        for port in 0..CAPACITY as u16 {
            log.push(record(port));
        }
        assert_eq!(log.counters.dropped, 5 + u64::from(REFUSED_PER_SECOND));
        assert_eq!(log.pop().map(|r| r.in_port), Some(0));
    }

    #[test]
    fn one_host_takes_at_most_its_share_of_the_refusal_records() {
        let (mut log, mut acc) = (FlowLog::default(), Accounts::default());
        log.configure(Some(60), &mut acc, 0);
        let scanner = 7;
        let other = (8..).find(|&n| {
            host_slot(from_host(0, n).inside) != host_slot(from_host(0, scanner).inside)
        });
        let other = other.expect("a host in another slot");
        for port in 0..5000 {
            log.refused(1, from_host(port, scanner));
        }
        for port in 0..10 {
            log.refused(1, from_host(port, other));
        }
        let logged: Vec<_> = std::iter::from_fn(|| log.pop()).collect();
        let of = |n| {
            logged
                .iter()
                .filter(|r| r.inside == from_host(0, n).inside)
                .count()
        };
        assert_eq!(
            (of(scanner), of(other)),
            (usize::from(REFUSED_PER_HOST), 10)
        );
        // The next second starts afresh.
        log.refused(2, from_host(0, scanner));
        assert_eq!(
            log.pop().map(|r| r.inside),
            Some(from_host(0, scanner).inside)
        );
    }

    #[test]
    fn sweep_walks_every_slot_round_robin() {
        let mut log = FlowLog::default();
        let mut seen = vec![0; 5000];
        for _ in 0..3 {
            for i in log.sweep(5000) {
                seen[i as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n >= 1), "every slot within two sweeps");
        assert_eq!(log.sweep(3).collect::<Vec<_>>(), [0, 1, 2]);
    }
}
