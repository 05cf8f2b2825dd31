//! Worker threads: `dataplane.workers` loops, one per thread, each a `Dataplane` with
//! an engine shard of its own (`Engine::new_shard`), its own receive socket per port
//! (joined to the port's fanout group, steered by the `steering` program), its own
//! transmit rings, io_uring and buffers.
//!
//! Contract:
//! - With one worker nothing changes: one `Dataplane`, `Engine::new`, no fanout group,
//!   no lanes, on the calling thread.
//! - With N > 1: worker 0 runs on the calling thread and runs the control tick; the
//!   others run on threads of their own (scoped: `run` returns once every worker
//!   stopped). The tick reaches every shard (`control::workers::Fleet`: worker 0's
//!   own engine in place, the others' through their mailboxes, each request waking
//!   its worker), so the shell, the metrics and the services see and change the box
//!   as one; worker 0 forwards nothing while it waits for the answers. The counters
//!   logged at exit are every worker's, merged (`report`), with one line per worker
//!   (`log_workers`).
//! - Hand-offs (`Verdict::Handoff`, `Engine::pop_handoff`) travel on `handoff`'s
//!   lanes; after each batch a worker wakes those it handed frames to by writing
//!   their eventfd, which each worker's io_uring polls (an idle worker waits in the
//!   kernel up to 100 ms otherwise).
//! - A port's socket reopened (link loss, fault, configuration change) joins the
//!   port's fanout group again with the same program.
//! - `workers = 0`: one per online CPU, at most the smallest receive-queue count of
//!   the data ports (a queue is served by one CPU's softirq; more workers than queues
//!   only spread the copies), at most `handoff::MAX_WORKERS`.

use super::handoff::{self, Handoff};
use super::link;
use super::steering::{self, Steering};
use super::{Dataplane, LinkSummary};
use crate::control::shards::{Inline, Shards};
use crate::control::workers::{self as mailboxes, Fleet, Mailbox, Workers};
use crate::engine::port;
use crate::engine::stats::{DropReason, IoCounters};
use crate::shard::Shard;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// What a worker of several shares with the others.
#[derive(Debug)]
pub(super) struct Peers {
    pub handoff: Handoff,
    /// Every worker's eventfd, by worker: written to wake it.
    pub wakers: Arc<[OwnedFd]>,
    /// Requests from worker 0's control tick (`None` on worker 0).
    pub mailbox: Option<Mailbox>,
    /// The ports' fanout groups are `group + port index`, steered by `program`.
    pub group: u16,
    pub program: Arc<[libc::sock_filter]>,
    /// Whether this worker's eventfd poll is armed.
    pub wake_armed: bool,
    /// Every worker's I/O counters per port, as each last published them (at its
    /// 100 ms timer: one lock a tick, never on the packet path), so worker 0's tick
    /// shows the box's.
    pub io: Arc<[Mutex<Vec<IoCounters>>]>,
}

impl Peers {
    /// This worker's eventfd.
    pub fn waker(&self) -> &OwnedFd {
        &self.wakers[self.handoff.worker()]
    }

    /// Publishes this worker's I/O counters (`ours`, by port) and returns every
    /// worker's, summed port by port.
    pub fn io_counters(&self, ours: Vec<IoCounters>) -> Vec<IoCounters> {
        if let Some(mine) = self.io.get(self.handoff.worker()) {
            *mine.lock().unwrap_or_else(PoisonError::into_inner) = ours;
        }
        let mut all: Vec<IoCounters> = Vec::new();
        for worker in self.io.iter() {
            let theirs = worker.lock().unwrap_or_else(PoisonError::into_inner);
            all.resize(all.len().max(theirs.len()), IoCounters::default());
            for (sum, c) in all.iter_mut().zip(theirs.iter()) {
                sum.add(c);
            }
        }
        all
    }

    /// Wakes the workers this one handed frames to since the last call.
    pub fn wake_touched(&mut self) {
        let touched = self.handoff.take_touched();
        for (k, fd) in self.wakers.iter().enumerate() {
            if touched & (1 << k) != 0 {
                write_eventfd(fd);
            }
        }
    }

    /// Resets this worker's eventfd after its poll fired.
    pub fn drain_waker(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer; the eventfd is non-blocking.
        unsafe { libc::read(self.waker().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    }

    /// Joins `socket`, a receiving socket of port `p`, to the port's fanout group.
    pub fn join(&self, p: usize, socket: &super::socket::PacketSocket) -> io::Result<()> {
        steering::join(self.group_of(p), &[socket], &self.program)
    }

    fn group_of(&self, p: usize) -> u16 {
        self.group.wrapping_add(p as u16)
    }
}

/// The dataplane's workers.
pub struct Threads {
    workers: Vec<Dataplane>,
    /// Workers 1.. as worker 0's control tick reaches them.
    others: Option<Workers>,
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threads")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl Threads {
    /// Opens the ports for `config`'s worker count (module doc).
    pub fn new(config: &firmware_config::Config) -> io::Result<Threads> {
        let n = worker_count(config);
        if n == 1 {
            return Ok(Threads {
                workers: vec![Dataplane::new(config)?],
                others: None,
            });
        }
        let mut workers = (0..n)
            .map(|k| {
                let shard = Shard::new(k, n).ok_or_else(|| io::Error::other("shard"))?;
                Dataplane::open(config, shard, k == 0)
            })
            .collect::<io::Result<Vec<_>>>()?;
        let steering = Steering::new(
            n,
            config.nat_pool(),
            (config.nat.port_min, config.nat.port_max),
            config.nat_inside_prefixes(),
            config.ipv6_inside_prefixes(),
        )
        .ok_or_else(|| io::Error::other("no steering for an empty port range"))?;
        let program: Arc<[libc::sock_filter]> = steering
            .program()
            .map_err(|e| io::Error::other(format!("steering program: {e:?}")))?
            .into();
        // Unique among the namespace's groups: natbox is the only user of its ports.
        let group = (std::process::id() as u16) & 0xff00;
        for p in 0..workers[0].ports.len() {
            let sockets: Vec<&super::socket::PacketSocket> = workers
                .iter()
                .filter_map(|w| w.ports[p].open.as_ref().map(|o| &o.socket))
                .collect();
            steering::join(group.wrapping_add(p as u16), &sockets, &program)?;
        }
        let wakers: Arc<[OwnedFd]> = (0..n)
            .map(|_| eventfd())
            .collect::<io::Result<Vec<_>>>()?
            .into();
        let lanes = handoff::lanes(n, workers[0].max_frame);
        let io: Arc<[Mutex<Vec<IoCounters>>]> = (0..n).map(|_| Mutex::new(Vec::new())).collect();
        // Mailbox k belongs to worker k + 1 (worker 0 answers in place).
        let wake_fds = wakers.clone();
        let wake = Box::new(move |k: usize| {
            if let Some(fd) = wake_fds.get(k + 1) {
                write_eventfd(fd);
            }
        });
        let (others, boxes) = mailboxes::mailboxes(n - 1, mailboxes::TIMEOUT, wake);
        let mut boxes = boxes.into_iter();
        for (k, (w, lane)) in workers.iter_mut().zip(lanes).enumerate() {
            w.peers = Some(Peers {
                handoff: lane,
                wakers: wakers.clone(),
                mailbox: if k == 0 { None } else { boxes.next() },
                group,
                program: program.clone(),
                wake_armed: false,
                io: io.clone(),
            });
        }
        log::info!("dataplane: {n} workers, each port's frames steered by a fanout program");
        Ok(Threads {
            workers,
            others: Some(others),
        })
    }

    /// The workers, worker 0 first.
    pub fn workers(&self) -> &[Dataplane] {
        &self.workers
    }

    /// Worker 0: its engine answers the shell.
    pub fn first(&self) -> &Dataplane {
        &self.workers[0]
    }

    /// Runs every worker until `stop` becomes true or `tick` (the control tick, run by
    /// worker 0 with every shard in reach) returns false (module doc).
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        tick: &mut dyn FnMut(&mut dyn Shards, &LinkSummary) -> bool,
    ) {
        let Some((first, rest)) = self.workers.split_first_mut() else {
            return;
        };
        let Some(others) = self.others.as_mut() else {
            return first.run(stop, &mut |engine, links| {
                let now_ms = links.now_ms;
                tick(&mut Inline { engine, now_ms }, links)
            });
        };
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            for (k, w) in rest.iter_mut().enumerate() {
                let done = &done;
                let spawned = std::thread::Builder::new()
                    .name(format!("worker{}", k + 1))
                    .spawn_scoped(s, move || {
                        // io_uring's single issuer is the thread that built the ring.
                        if let Err(e) = w.new_ring_here() {
                            log::error!("worker {}: io_uring: {e}", k + 1);
                            return;
                        }
                        let go = || !stop.load(Ordering::Relaxed) && !done.load(Ordering::Relaxed);
                        w.run_while(&go, &mut |_, _| true);
                    });
                if let Err(e) = spawned {
                    log::error!("worker {}: cannot start its thread: {e}", k + 1);
                }
            }
            first.run(stop, &mut |engine, links| {
                let now_ms = links.now_ms;
                let first = Inline { engine, now_ms };
                tick(
                    &mut Fleet {
                        first,
                        others: &mut *others,
                    },
                    links,
                )
            });
            done.store(true, Ordering::Relaxed);
        });
    }

    /// One line per worker: what it received and handed, so a test sees every worker
    /// carried traffic.
    pub fn log_workers(&self) {
        if self.workers.len() < 2 {
            return;
        }
        for (k, w) in self.workers.iter().enumerate() {
            let s = w.engine().stats();
            let rx: u64 = s.ports.iter().map(|p| p.rx_packets).sum();
            log::info!(
                "worker {k}: rx_packets={rx} handed_off={} handed_in={} handoff_full={}",
                s.handed_off,
                s.handed_in,
                s.drops[DropReason::HandoffFull as usize]
            );
        }
    }
}

/// The number of workers `config` asks for (module doc).
fn worker_count(config: &firmware_config::Config) -> usize {
    let asked = usize::from(config.dataplane.workers);
    let n = if asked > 0 {
        asked
    } else {
        let queues: Vec<usize> = port::layout(config)
            .iter()
            .filter_map(|c| link::find(&c.port.port).ok())
            .map(|l| link::rx_queues(&l.name))
            .collect();
        link::default_workers(link::online_cpus(), &queues)
    };
    n.clamp(1, handoff::MAX_WORKERS)
}

/// Wakes whoever polls eventfd `fd`.
fn write_eventfd(fd: &OwnedFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer to an eventfd we own. A full counter
    // (never, at 2^64 - 2 wakes) only loses a wake-up.
    unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
}

/// A non-blocking eventfd.
fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd with flags only; a valid descriptor is owned from here on.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(lane: Handoff, io: &Arc<[Mutex<Vec<IoCounters>>]>) -> Peers {
        Peers {
            handoff: lane,
            wakers: Arc::from(Vec::new()),
            mailbox: None,
            group: 0,
            program: Arc::from(Vec::new()),
            wake_armed: false,
            io: io.clone(),
        }
    }

    /// Issue #16: the shell's I/O counters are the box's, every worker's summed port by
    /// port (a socket drop on worker 1 shows on worker 0's tick).
    #[test]
    fn io_counters_are_every_workers_summed_port_by_port() {
        let io: Arc<[Mutex<Vec<IoCounters>>]> = (0..2).map(|_| Mutex::new(Vec::new())).collect();
        let mut lanes = handoff::lanes(2, 64).into_iter();
        let (zero, one) = (
            peers(lanes.next().expect("lane 0"), &io),
            peers(lanes.next().expect("lane 1"), &io),
        );
        let drops = |n| IoCounters {
            socket_drops: n,
            ..Default::default()
        };
        one.io_counters(vec![drops(5), drops(7)]);
        let all = zero.io_counters(vec![drops(1), drops(0)]);
        assert_eq!(all, vec![drops(6), drops(7)]);
        // Publishing again replaces a worker's share, it does not add to it.
        let all = zero.io_counters(vec![drops(2), drops(0)]);
        assert_eq!(all, vec![drops(7), drops(7)]);
    }
}
