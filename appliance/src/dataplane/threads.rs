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
//! - Regrouping: the kernel gives a fanout group's members the indices they joined
//!   in (and moves the last into the hole one leaves), and the program's answer is
//!   such an index, so worker k's socket must be member k. A socket reopened alone
//!   (after its interface returned, a fault, a configuration change, an io_uring
//!   restart) cannot rejoin its old group at its old index, so every reopening makes
//!   a new group, in order (`Peers::rejoin`, `FanoutGroup`): worker 0 forms it
//!   (under an id the kernel picks unique) as soon as its own socket reopens; every
//!   other worker leaves the older group when it sees the new one (each checks at its
//!   100 ms timer) and joins once the workers before it have; the last one attaches
//!   the program. A worker whose socket closed while the group stayed (its own fault
//!   or io_uring restart) marks the group wanted, and worker 0 regroups. Until the
//!   program is attached, every frame goes to worker 0, which hands what others own
//!   to them, as at start. While an old group still receives (the interface did not
//!   go away), a frame can reach a member of each for up to one timer period.
//! - A configuration change of the pool, the port range or the inside prefixes makes
//!   worker 0 build the steering program anew and attach it to every port's group
//!   (`Peers::follow_steering`, at its tick); frames the old program misplaced in
//!   between reach their shard through a hand-off.
//! - `workers = 0`: one per online CPU, at most the smallest receive-queue count of
//!   the data ports (a queue is served by one CPU's softirq; more workers than queues
//!   only spread the copies), at most `handoff::MAX_WORKERS`.

use super::handoff::{self, Handoff};
use super::link;
use super::socket::PacketSocket;
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
    /// Every port's fanout group, by port (module doc, "Regrouping").
    pub groups: Arc<[Mutex<FanoutGroup>]>,
    /// The steering program every group runs.
    pub program: Arc<Mutex<Program>>,
    /// How many workers there are.
    pub workers: usize,
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

    /// Whether this worker's socket of port `p`, a member of the port's group
    /// generation `generation`, must leave it: for worker 0, another worker asked for
    /// a new group; for the others, worker 0 formed a newer one.
    pub fn must_leave(&self, p: usize, generation: u64) -> bool {
        self.groups.get(p).is_some_and(|g| {
            let g = g.lock().unwrap_or_else(PoisonError::into_inner);
            if self.handoff.worker() == 0 {
                g.wanted
            } else {
                g.generation > generation
            }
        })
    }

    /// Opens a receiving socket of port `p` with `open` and makes it a member of the
    /// port's fanout group, in this worker's turn (module doc): worker 0 forms a new
    /// group; worker k joins the newest once k workers have, if it is newer than
    /// `generation`, the one its last socket was a member of. Returns what `open` made
    /// and the group's generation, or `None` if it is not this worker's turn (then a
    /// worker that left the current group asks worker 0 for a new one).
    pub fn rejoin<T>(
        &self,
        p: usize,
        generation: u64,
        open: impl FnOnce() -> io::Result<T>,
        socket: impl Fn(&T) -> &PacketSocket,
    ) -> io::Result<Option<(T, u64)>> {
        let me = self.handoff.worker();
        let group = self
            .groups
            .get(p)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut g = group.lock().unwrap_or_else(PoisonError::into_inner);
        if me != 0 && !(g.generation > generation && g.joined == me) {
            if g.generation == generation {
                g.wanted = true;
            }
            return Ok(None);
        }
        let opened = open()?;
        let joined = if me == 0 {
            steering::found(socket(&opened)).map(|id| {
                *g = FanoutGroup {
                    generation: g.generation + 1,
                    id,
                    joined: 1,
                    wanted: false,
                };
            })
        } else {
            steering::join(g.id, socket(&opened)).map(|()| g.joined += 1)
        };
        let attached = joined.and_then(|()| {
            if g.joined == self.workers {
                let code = self
                    .program
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .code
                    .clone();
                steering::attach(socket(&opened), &code)
            } else {
                Ok(())
            }
        });
        if let Err(e) = attached {
            // The group may be short of this member for good: start again.
            g.wanted = true;
            return Err(e);
        }
        Ok(Some((opened, g.generation)))
    }
}

/// The steering program the groups run, and what it was built from.
#[derive(Debug)]
pub(super) struct Program {
    from: Steering,
    code: Arc<[libc::sock_filter]>,
}

impl Program {
    fn build(from: Steering) -> io::Result<Program> {
        let code = from
            .program()
            .map_err(|e| io::Error::other(format!("steering program: {e:?}")))?
            .into();
        Ok(Program { from, code })
    }
}

impl Peers {
    /// Worker 0, after a configuration change: when the pool, the port range, the
    /// inside prefixes or the port forwards changed, builds the program anew and attaches it to every
    /// port's group through `sockets` (worker 0's, one per open port), so replies go
    /// straight to their owners again instead of through a hand-off. A program that
    /// cannot be built leaves the old one (frames still reach their shards through
    /// hand-offs) and says so.
    pub fn follow_steering<'a>(
        &self,
        config: &firmware_config::Config,
        sockets: impl Iterator<Item = &'a PacketSocket>,
    ) {
        let Some(wanted) = Steering::of(self.workers, config) else {
            return;
        };
        let mut program = self.program.lock().unwrap_or_else(PoisonError::into_inner);
        if program.from == wanted {
            return;
        }
        match Program::build(wanted) {
            Ok(new) => {
                *program = new;
                for s in sockets {
                    if let Err(e) = steering::attach(s, &program.code) {
                        log::warn!("steering: the new program was refused ({e}); hand-offs place the frames");
                    }
                }
                log::info!("steering: program rebuilt for the new configuration");
            }
            Err(e) => {
                log::warn!("steering: {e}; the old program stays, hand-offs place the frames")
            }
        }
    }
}

/// A port's fanout group as the workers share it (module doc, "Regrouping").
#[derive(Debug, Default)]
pub(super) struct FanoutGroup {
    /// Counts the groups formed for the port; 1 is the one formed at start.
    generation: u64,
    /// The kernel's id of the group.
    id: u16,
    /// Workers that joined it so far, in order (worker k is member k).
    joined: usize,
    /// A worker left it: worker 0 must form a new one.
    wanted: bool,
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
        let steering = Steering::of(n, config)
            .ok_or_else(|| io::Error::other("no steering for an empty port range"))?;
        let program = Program::build(steering)?;
        let code = program.code.clone();
        let groups: Arc<[Mutex<FanoutGroup>]> = (0..workers[0].ports.len())
            .map(|p| {
                let sockets: Vec<&PacketSocket> = workers
                    .iter()
                    .filter_map(|w| w.ports[p].open.as_ref().map(|o| &o.socket))
                    .collect();
                let id = steering::form(&sockets, &code)?;
                Ok(Mutex::new(FanoutGroup {
                    generation: 1,
                    id,
                    joined: n,
                    wanted: false,
                }))
            })
            .collect::<io::Result<Vec<_>>>()?
            .into();
        let wakers: Arc<[OwnedFd]> = (0..n)
            .map(|_| eventfd())
            .collect::<io::Result<Vec<_>>>()?
            .into();
        let lanes = handoff::lanes(n, workers[0].max_frame);
        let program = Arc::new(Mutex::new(program));
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
                groups: groups.clone(),
                program: program.clone(),
                workers: n,
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

/// The number of workers `config` asks for (module doc); with `workers = 0`, also no
/// more than the memory holds (`memory::workers_that_fit`), said in the log.
pub fn worker_count(config: &firmware_config::Config) -> usize {
    let asked = usize::from(config.dataplane.workers);
    if asked > 0 {
        return asked.clamp(1, handoff::MAX_WORKERS);
    }
    let queues: Vec<usize> = port::layout(config)
        .iter()
        .filter_map(|c| link::find(&c.port.port).ok())
        .map(|l| link::rx_queues(&l.name))
        .collect();
    let n = link::default_workers(link::online_cpus(), &queues).clamp(1, handoff::MAX_WORKERS);
    let fit = crate::memory::workers_that_fit(config, n);
    if fit < n {
        log::warn!(
            "dataplane: {fit} workers, not {n}: the memory holds the tables and rings of {fit}"
        );
    }
    fit
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
            groups: Arc::from(vec![Mutex::new(FanoutGroup::default())]),
            program: Arc::new(Mutex::new(program(&config(), Vec::new()))),
            workers: 2,
            wake_armed: false,
            io: io.clone(),
        }
    }

    fn config() -> firmware_config::Config {
        toml::from_str(
            "[inside]\nport = \"lan0\"\nipv4 = \"10.0.0.1/24\"\n\
             [outside]\nport = \"wan0\"\nipv4 = \"198.51.100.10/24\"\n",
        )
        .expect("a valid configuration")
    }

    /// A program built for `config` with 2 workers, its code replaced by `code`.
    fn program(config: &firmware_config::Config, code: Vec<libc::sock_filter>) -> Program {
        let from = Steering::of(2, config).expect("a port range");
        Program {
            from,
            code: Arc::from(code),
        }
    }

    /// Issue #16: a configuration change that moves the pool rebuilds the steering
    /// program (replies to the new address go straight to their owners); one that
    /// does not leaves it as it is.
    #[test]
    fn a_new_pool_rebuilds_the_steering_program_and_nothing_else_does() {
        let io: Arc<[Mutex<Vec<IoCounters>>]> = (0..2).map(|_| Mutex::new(Vec::new())).collect();
        let zero = peers(handoff::lanes(2, 64).remove(0), &io);
        let code = |p: &Peers| p.program.lock().expect("lock").code.len();
        let mut changed = config();
        changed.hostname = "renamed".into();
        zero.follow_steering(&changed, std::iter::empty());
        assert_eq!(code(&zero), 0, "same steering inputs: the program stays");
        changed.nat.pool = vec!["198.51.100.20".parse().expect("address")];
        zero.follow_steering(&changed, std::iter::empty());
        assert!(code(&zero) > 0, "a new pool: the program is built anew");
        let from = Steering::of(2, &changed).expect("a port range");
        assert_eq!(zero.program.lock().expect("lock").from, from);
    }

    /// The worker whose socket receives a frame sent from `sender` within a second.
    fn receiver(sender: &PacketSocket, workers: &[Option<&PacketSocket>]) -> Option<usize> {
        use crate::dataplane::testnet::{receiver_of, send_from};
        send_from(sender, 0x88b5, b"regroup test frame");
        receiver_of(
            workers,
            b"regroup test frame",
            std::time::Duration::from_secs(1),
        )
    }

    /// Issue #16: the kernel numbers a fanout group's members in the order they joined,
    /// so a worker's socket reopened alone would become another worker's member. After
    /// a worker's socket closes, the group is formed anew (worker 0 first, then each in
    /// turn) and worker 1's new socket again gets the frames the program gives worker 1.
    #[test]
    fn a_reopened_socket_gets_its_workers_frames_again() {
        use crate::dataplane::testnet::{index, private_netns, run};
        private_netns();
        run(&[
            "ip", "link", "add", "rga", "type", "veth", "peer", "name", "rgb",
        ]);
        run(&["ip", "link", "set", "rga", "up"]);
        run(&["ip", "link", "set", "rgb", "up"]);
        let sender = PacketSocket::open_sender(index("rgb")).expect("sender");
        let open = || PacketSocket::open(index("rga"));
        let io: Arc<[Mutex<Vec<IoCounters>>]> = (0..2).map(|_| Mutex::new(Vec::new())).collect();
        let mut lanes = handoff::lanes(2, 64).into_iter();
        let zero = peers(lanes.next().expect("lane 0"), &io);
        let mut one = peers(lanes.next().expect("lane 1"), &io);
        // Every frame to worker 1: `ret #1`.
        let to_one: Arc<[libc::sock_filter]> = Arc::from(vec![libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: 1,
        }]);
        one.groups = zero.groups.clone();
        *zero.program.lock().expect("lock") = program(&config(), to_one.to_vec());
        one.program = zero.program.clone();
        fn id(s: &PacketSocket) -> &PacketSocket {
            s
        }

        // Worker 1 cannot join before worker 0 formed the group.
        assert!(one.rejoin(0, 0, open, id).expect("rejoin").is_none());
        let (s0, g0) = zero
            .rejoin(0, 0, open, id)
            .expect("form")
            .expect("worker 0's turn");
        let (s1, g1) = one
            .rejoin(0, 0, open, id)
            .expect("join")
            .expect("worker 1's turn");
        assert_eq!((g0, g1), (1, 1));
        assert_eq!(receiver(&sender, &[Some(&s0), Some(&s1)]), Some(1));

        // Worker 1's socket fails and closes: not its turn in the same group; it asks
        // worker 0 for a new one.
        drop(s1);
        assert!(one.rejoin(0, 1, open, id).expect("rejoin").is_none());
        assert!(zero.must_leave(0, 1));
        drop(s0);
        let (s0, g0) = zero
            .rejoin(0, 1, open, id)
            .expect("form")
            .expect("worker 0's turn");
        assert_eq!(g0, 2);
        assert!(!zero.must_leave(0, 2));
        // Until every worker joined, no program: every frame to worker 0.
        assert_eq!(receiver(&sender, &[Some(&s0), None]), Some(0));
        let (s1, g1) = one
            .rejoin(0, 1, open, id)
            .expect("join")
            .expect("worker 1's turn");
        assert_eq!(g1, 2);
        assert_eq!(receiver(&sender, &[Some(&s0), Some(&s1)]), Some(1));
        // A newer group makes worker 1 leave the older one.
        assert!(one.must_leave(0, 1));
        assert!(!one.must_leave(0, 2));
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
