//! The dataplane loop: two AF_PACKET sockets per port with their mapped rings, and
//! one io_uring ring for everything that waits.
//!
//! Receive: a `TPACKET_V2` ring per port (`ring.rs`). The kernel copies each frame, in
//! softirq, into a ring slot with its `virtio_net_hdr` in front; a multishot `PollAdd`
//! per port wakes the loop, which walks the ready slots (at most `DRAIN_BUDGET` per
//! port and batch) and has the engine translate each frame in place. No system call or
//! completion per received frame.
//!
//! Transmit: a forwarded or reply frame is copied into the egress port's transmit
//! ring (`ring.rs`) and its receive slot goes straight back to the kernel; after each
//! batch one `send` per port has the kernel transmit everything requested. The
//! transmit ring sits on a socket of its own that receives nothing and that nothing
//! waits on, so freeing a sent frame wakes no one. A GSO super-frame, too large for a
//! slot, waits whole on the receiving socket's queue (`TP_STATUS_COPY`): it is read
//! with `recv` into one large buffer and translated there. A super-frame, from there
//! or from a slot, is sent synchronously, after the egress transmit ring was flushed
//! (a flow's frames keep their order), on the egress port's receiving socket (the
//! sending one sends only from its ring), which goes through the kernel's qdisc layer:
//! the transmit ring's `PACKET_QDISC_BYPASS` (`__dev_direct_xmit`) drops any skb that
//! `validate_xmit_skb` replaced, and it replaces a super-frame the device cannot
//! segment by its software-GSO segments, so on a port without TSO every super-frame
//! failed (`ENOBUFS`). Frames the engine makes itself go through the transmit ring
//! too. Nothing allocates per packet. (`SendZc` is refused by AF_PACKET with
//! EOPNOTSUPP.)
//!
//! Offloads: the sockets carry `PACKET_VNET_HDR`, so a GSO super-frame (up to 64 KiB)
//! arrives whole. `wire::offload::prepare` checks the header against the frame (a
//! partial checksum natbox does not rewrite is completed in software; a GSO type it
//! cannot translate is dropped as `gso_unsupported`) and rewrites it into the header
//! the frame leaves with; the engine translates with the checksum left partial and
//! checks GSO segments, not the super-frame, against the MTU; header and frame leave
//! together, so the kernel (`virtio_net_hdr_to_skb`) segments or passes the
//! super-frame on, and no checksum is computed in user space: on an egress port
//! without TSO or transmit checksum offload the kernel segments and checksums in
//! software (`link.rs`). Replies go out with an all-zero header; so do the engine's
//! own frames. GRO is turned on on a port whose other port (one-armed: itself) has TSO
//! (`link::offer_gro`):
//! the kernel merges wire segments into super-frames before natbox sees them.
//!
//! Waiting: the ring runs with `DEFER_TASKRUN`, so poll wakeups are processed when the
//! loop enters the kernel, never by interrupting it. An idle loop waits for the first
//! completion; under a flood (a batch of at least `BUSY_BATCH` frames) it naps
//! `BUSY_NAP` between batches instead, because waking a waiting loop costs the sender's
//! CPU a scheduler call per frame. Few frames (a ping, bulk TCP's super-frames) never
//! nap, so they gain no latency. The loop also naps, rather than waits, while a
//! transmit ring holds frames the kernel had no room for (a full driver queue), so
//! they leave within a nap and not at the next timer tick.
//!
//! The kernel's own stack drops its copy of every data-port frame at ingress
//! (`ingress.rs`), so it spends nothing on frames natbox handles.
//!
//! Timers: `Engine::poll` every 100 ms; link state every second. A port whose link
//! goes down is logged and the other port keeps forwarding; a port whose interface
//! disappears is closed and reopened (with its link set up again) when it returns.
//!
//! Configuration: a committed change of a port's interface or MTU (or a DHCP lease's
//! MTU, `engine::lease`: the dataplane follows the engine's effective configuration)
//! takes effect at once: after the tick that applied it, the port is closed and
//! reopened on the
//! interface the configuration now names, its link set to the new MTU, and the engine
//! answers with that interface's MAC (`Engine::port_moved`). A larger MTU than the
//! rings were sized for rebuilds both ports' rings with larger slots. Should the new
//! interface not exist, the port stays closed until it appears (or a `commit
//! confirmed` rolls the change back), as after a link loss.
//!
//! Faults: natbox is PID 1, so no I/O error ends the loop (and powers the VM off).
//! - A port whose socket fails (its poll request fails or reports `POLLNVAL`, or a
//!   transmit ring's flush fails with `EBADF`, `ENOTSOCK` or `EFAULT`: the descriptor
//!   or its ring is unusable, not one frame or the link) is closed, logged, and
//!   reopened by the next link check, within a second; so at most once a second,
//!   however often it fails.
//! - An io_uring failure (entering the kernel or queueing a request fails other than
//!   by timeout or signal) restarts the dataplane: both ports are closed, and after a
//!   delay a new io_uring ring is built and the ports reopened. The delay is 100 ms
//!   and doubles with every failure in a row, up to 10 s; a failure more than a
//!   minute after the last one starts again at 100 ms. Each failure is logged. The
//!   engine, with its sessions, is kept throughout, and the timers (the engine's poll,
//!   the admin shell) keep running while the ports are closed. Each port counts its
//!   restarts (`IoCounters::restarts`).
//! - Every other error concerns one frame or the link and is counted (`tx_errors`,
//!   `rx_errors`); a frame is never sent again, except those a full kernel queue left
//!   in a transmit ring, which go with the next flush.
//!
//! Measured with tests/bench/compare.sh (same machine, same day):
//! - the transmit ring against an io_uring `Send` per frame from the receive slot,
//!   A/B interleaved in four runs: natbox CPU per 64-byte packet 1.82-2.06 us against
//!   2.05-2.20 us (8% less on average, lower in every run); TCP with wire-sized frames
//!   within the noise of the runs;
//! - the receive ring against the io_uring multishot `RecvMsg` path before it (provided
//!   buffers, one completion and one socket-queue round trip per frame): 3.3-3.8 us per
//!   packet then, 1.75-1.8 us after; TCP with offloads and the round-trip time about
//!   the same;
//! - against the `TPACKET_V3` ring before that: no block timeout (V3 hands over whole
//!   blocks, which added about 1 ms to every round trip at low rates), and offloads.
//!
//! Workers (`threads`): `[dataplane] workers = N` runs N such loops, one per thread,
//! each with its own engine shard ("Shards" in `natbox_core::engine`), its own receive
//! socket per port in the port's fanout group (steered by the `steering` program), its
//! own transmit rings, io_uring and buffers; frames a shard cannot finish go to another
//! on `handoff`'s lanes (with their arrival port), and an eventfd in the target's
//! io_uring wakes it. With one worker (the default) the loop is the one described
//! above, on the calling thread. See docs/architecture.md, "Engine shards".
//!
//! Starting (`start`): a configuration whose ports are not there yet is tried again
//! with a backoff, the shell served meanwhile, until they appear.

pub mod handoff;
mod ingress;
pub mod link;
pub mod ring;
pub mod socket;
pub mod start;
pub mod steering;
#[cfg(test)]
pub(crate) mod testnet;
mod threads;

pub use threads::{worker_count, Threads};

use crate::engine::port::{self, PortConfig};
use crate::engine::stats::{DropReason, IoCounters};
use crate::engine::{Engine, Frame, PortId, PortSetup, Verdict};
use crate::shard::Shard;
use crate::wire::offload::{self, Offload, VNET_HDR_LEN};
use ingress::IngressDrop;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use link::Link;
use ring::{RxFrame, RxRing, TxRing};
use socket::PacketSocket;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use threads::Peers;

/// io_uring carries only each port's multishot poll and, when a socket is reopened, its
/// cancel: a few entries at a time.
const RING_ENTRIES: u32 = 64;
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Under a flood the loop naps this long between batches instead of waiting to be
/// woken (module doc).
const BUSY_NAP: Duration = Duration::from_micros(50);
/// Frames in one batch that make the next wait a nap.
const BUSY_BATCH: usize = 32;
const LINK_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Ring slots processed per port before the loop submits the sends and looks at the
/// other port.
const DRAIN_BUDGET: usize = 256;

/// The first delay before a restart after an io_uring failure, doubled for every
/// failure in a row up to `RESTART_MAX_DELAY` (module doc).
const RESTART_DELAY: Duration = Duration::from_millis(100);
const RESTART_MAX_DELAY: Duration = Duration::from_secs(10);
/// A failure this long after the previous one is not "in a row".
const RESTART_CALM: Duration = Duration::from_secs(60);

const KIND_POLL: u64 = 1;
const KIND_CANCEL: u64 = 2;
/// This worker's eventfd: another worker handed it frames (`threads`).
const KIND_WAKE: u64 = 3;

/// What a completion is for: the kind of request, the port it concerns and the
/// generation of that port's socket (a poll of a closed socket is stale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag {
    kind: u64,
    port: usize,
    generation: u8,
}

impl Tag {
    fn encode(self) -> u64 {
        self.kind << 16 | u64::from(self.generation) << 8 | self.port as u64
    }

    fn decode(ud: u64) -> Tag {
        Tag {
            kind: ud >> 16,
            generation: (ud >> 8) as u8,
            port: (ud & 0xff) as usize,
        }
    }
}

/// What the shell shows about the ports that only the I/O layer knows.
#[derive(Debug, Clone)]
pub struct LinkSummary {
    /// The ports' role labels, by `PortId`.
    pub roles: Vec<&'static str>,
    /// By `PortId`.
    pub devices: Vec<String>,
    /// "up", "down" or "gone"; before the dataplane runs, "missing" or "waiting"
    /// (`start`).
    pub states: Vec<&'static str>,
    /// Engine time, milliseconds since the dataplane started.
    pub now_ms: u64,
    /// The I/O layer's counters, per port.
    pub io: Vec<IoCounters>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    Up,
    Down,
    Gone,
}

#[derive(Debug)]
struct PortIo {
    port: PortId,
    /// The port's role label (`inside`, `outside`), for logs and the ingress drop.
    role: &'static str,
    spec: String,
    mtu: u16,
    link: Link,
    /// The port's sockets and ring; `None` while its interface is gone.
    open: Option<Sockets>,
    state: LinkState,
    armed: bool,
    /// Tags the socket, so completions for a closed one are recognised.
    generation: u8,
    /// Several workers: the generation of the port's fanout group the socket is (or
    /// was last) a member of (`threads::Peers::rejoin`).
    fanout: u64,
    /// Why the socket is unusable, if it is: it is closed after the batch (module doc).
    broken: Option<String>,
    counters: IoCounters,
}

/// The running dataplane.
pub struct Dataplane {
    /// Polls (and their cancels) only: requests that point into no memory of ours.
    ring: IoUring,
    /// By `PortId`, in `port::layout` order.
    ports: Vec<PortIo>,
    /// Where a GSO super-frame is read, translated and sent from, and where the engine
    /// writes the frames it makes.
    large: Box<[u8]>,
    cqes: Vec<cqueue::Entry>,
    engine: Engine,
    start: Instant,
    /// Largest frame a port carries, with room for ICMP errors built in place.
    max_frame: usize,
    /// A receive ring still held frames when its budget ran out: do not wait.
    rx_pending: bool,
    /// Frames received in the last batch.
    batch: usize,
    /// A transmit ring holds frames the kernel had no room for yet: nap, do not wait.
    tx_backlog: bool,
    /// The kernel's ingress drop on the ports, if nf_tables is there.
    ingress: Option<IngressDrop>,
    /// After an io_uring failure: when to restart (module doc).
    restart_at: Option<Instant>,
    /// With several workers: the lanes, wake-ups and mailbox (`threads`).
    peers: Option<Peers>,
    /// The one worker that sets the ports' kernel state (the ingress drop, GRO) and
    /// says so: worker 0.
    leader: bool,
    /// io_uring failures in a row, and when the last one was.
    failures: u32,
    last_failure: Option<Instant>,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

/// A port's receiving socket with its mapped receive ring, and its sending socket with
/// its mapped transmit ring.
#[derive(Debug)]
struct Sockets {
    socket: PacketSocket,
    ring: RxRing,
    tx: TxRing,
}

/// What a flush of a transmit ring came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flushed {
    /// Everything requested was handed to the kernel, or a failure (link down) was
    /// counted.
    Done,
    /// The kernel's queues were full (socket buffer, driver queue): the rest waits for
    /// the next flush, which should come soon.
    Backlog,
    /// The socket is unusable (`broken_socket`); counted.
    Broken,
}

/// Has the kernel send what `tx` holds.
fn flush(tx: &mut TxRing, counters: &mut IoCounters) -> Flushed {
    match tx.flush() {
        Ok(()) => Flushed::Done,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS)) => {
            Flushed::Backlog
        }
        Err(e) => {
            counters.tx_errors += 1;
            if broken_socket(&e) {
                Flushed::Broken
            } else {
                Flushed::Done
            }
        }
    }
}

/// Whether a socket call's error says the socket itself, or its mapped ring, is
/// unusable, rather than one frame or the link (module doc).
fn broken_socket(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::ENOTSOCK | libc::EFAULT)
    )
}

/// A new io_uring ring for the loop.
fn new_ring() -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .build(RING_ENTRIES)
}

/// How long to wait before restarting after the `failures`-th io_uring failure in a
/// row (module doc).
fn restart_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (RESTART_DELAY * (1u32 << doublings)).min(RESTART_MAX_DELAY)
}

/// The most bytes the I/O of `workers` workers for `config` holds beside the engine:
/// each worker's rings of each port, its large buffer and, with several workers, its
/// hand-off buffers.
pub fn io_bytes(config: &firmware_config::Config, workers: usize) -> usize {
    let layout = port::layout(config);
    let handoff = if workers > 1 {
        handoff::MAX_IN_FLIGHT * frame_room(max_mtu(&layout))
    } else {
        0
    };
    workers * (layout.len() * ring::PORT_MEMORY + VNET_HDR_LEN + offload::MAX_GSO_FRAME + handoff)
}

/// Hands `frame`, received on `port`, to worker `to` (`Verdict::Handoff`); a frame the
/// lanes refuse is counted as the engine's `handoff_full` drop on that port.
fn hand_off(engine: &mut Engine, peers: Option<&mut Peers>, to: usize, port: PortId, frame: &[u8]) {
    if !peers.is_some_and(|p| p.handoff.send(to, port.index(), frame)) {
        engine.count_drop(port, DropReason::HandoffFull);
    }
}

/// Copies `bytes` (a `virtio_net_hdr` and a frame) into `tx`, flushing it first if it
/// is full; a frame that finds no room is counted.
fn transmit(tx: &mut TxRing, counters: &mut IoCounters, bytes: &[u8]) {
    if !tx.request(bytes) {
        flush(tx, counters);
        if !tx.request(bytes) {
            counters.tx_errors += 1;
        }
    }
}

/// Sends `bytes` (a `virtio_net_hdr` and a frame) out of a port synchronously, after
/// what its transmit ring holds (a flow's frames keep their order), on its receiving
/// socket, which goes through the kernel's qdisc layer: a GSO super-frame the device
/// cannot segment itself is segmented (and checksummed) there in software (module
/// doc). A frame the kernel refuses is counted.
fn send_whole(socket: &PacketSocket, tx: &mut TxRing, counters: &mut IoCounters, bytes: &[u8]) {
    flush(tx, counters);
    // SAFETY: bytes is readable for its length.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        counters.tx_errors += 1;
    }
}

/// Sends a translated frame (`bytes`, its `virtio_net_hdr` first) out of a port: a GSO
/// super-frame whole (`send_whole`), any other frame through the transmit ring.
fn forward(socket: &PacketSocket, tx: &mut TxRing, counters: &mut IoCounters, bytes: &[u8]) {
    let gso = bytes
        .get(1)
        .is_some_and(|t| t & !offload::GSO_ECN != offload::GSO_NONE);
    if gso {
        send_whole(socket, tx, counters, bytes);
    } else {
        transmit(tx, counters, bytes);
    }
}

/// Prepares `link` and opens its sockets and rings; has the kernel drop its own
/// copy of the port's frames (`ingress`; logged, not fatal, if that fails) and says
/// whether it does.
fn open_socket(
    role: &str,
    link: &Link,
    mtu: u16,
    max_frame: usize,
    ingress: Option<&mut IngressDrop>,
) -> io::Result<(Sockets, bool)> {
    link::prepare(link, mtu)?;
    let socket = PacketSocket::open(link.index)?;
    let ring = RxRing::new(&socket, max_frame)?;
    let tx = TxRing::new(PacketSocket::open_sender(link.index)?, max_frame)?;
    let claimed = match ingress.map(|i| i.claim(role, &link.name)) {
        Some(Ok(())) => true,
        Some(Err(e)) => {
            log::warn!(
                "{role} port {}: the kernel keeps processing its frames (nftables ingress drop: {e})",
                link.name
            );
            false
        }
        None => false,
    };
    Ok((Sockets { socket, ring, tx }, claimed))
}

impl Dataplane {
    /// Finds and prepares the ports and builds the engine for `config`.
    pub fn new(config: &firmware_config::Config) -> io::Result<Dataplane> {
        Dataplane::open(config, Shard::ONLY, true)
    }

    /// `new` for worker `shard` of several (`threads`); only one worker, the leader,
    /// has the kernel drop its copy of the ports' frames and offers GRO
    /// (`claim_ingress`).
    fn open(
        config: &firmware_config::Config,
        shard: Shard,
        claim_ingress: bool,
    ) -> io::Result<Dataplane> {
        let ring = new_ring()?;
        let layout = port::layout(config);
        let max_frame = frame_room(max_mtu(&layout));
        let mut ingress = claim_ingress
            .then(|| {
                IngressDrop::new()
                    .inspect_err(|e| {
                        log::warn!(
                            "nftables unavailable ({e}): the kernel keeps processing the data ports' frames"
                        )
                    })
                    .ok()
            })
            .flatten();
        let mut open = |c: &PortConfig<'_>| -> io::Result<PortIo> {
            let (p, role) = (c.port, c.roles.label());
            let link = link::find(&p.port).map_err(|e| annotate(role, &p.port, e))?;
            let (open, claimed) = open_socket(role, &link, p.mtu, max_frame, ingress.as_mut())
                .map_err(|e| annotate(role, &link.name, e))?;
            log::info!(
                "{role} port: {} (index {}, MAC {}, MTU {}), receive ring of {} slots of {} bytes{}",
                link.name,
                link.index,
                link.mac,
                p.mtu,
                open.ring.slots(),
                open.ring.slot_size(),
                if claimed {
                    ", the kernel drops its copy at ingress"
                } else {
                    ""
                }
            );
            Ok(PortIo {
                port: c.id,
                role,
                spec: p.port.clone(),
                mtu: p.mtu,
                link,
                open: Some(open),
                state: LinkState::Up,
                armed: false,
                generation: 0,
                fanout: 1,
                broken: None,
                counters: IoCounters::default(),
            })
        };
        let ports = layout
            .iter()
            .map(&mut open)
            .collect::<io::Result<Vec<_>>>()?;
        if claim_ingress {
            offer_gro_between(&ports);
        }
        let setups: Vec<PortSetup> = ports
            .iter()
            .map(|io| PortSetup { mac: io.link.mac })
            .collect();
        let engine = Engine::new_shard(config, &setups, shard);
        Ok(Dataplane {
            ring,
            ports,
            large: vec![0u8; VNET_HDR_LEN + offload::MAX_GSO_FRAME].into_boxed_slice(),
            cqes: Vec::with_capacity(RING_ENTRIES as usize * 2),
            engine,
            start: Instant::now(),
            max_frame,
            rx_pending: false,
            batch: 0,
            tx_backlog: false,
            ingress,
            restart_at: None,
            failures: 0,
            last_failure: None,
            peers: None,
            leader: claim_ingress,
        })
    }

    /// Builds the io_uring ring again, on the calling thread: a worker's first step on
    /// its own thread (`threads`), since the ring is single-issuer. Nothing is armed
    /// yet.
    fn new_ring_here(&mut self) -> io::Result<()> {
        self.ring = new_ring()?;
        Ok(())
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn io_counters(&self, port: PortId) -> IoCounters {
        self.ports[port.index()].counters
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Device names, link states and I/O counters of the ports, for the shell; with
    /// several workers the counters are the box's (every worker's, as last published
    /// at its timer, `threads::Peers::io_counters`).
    pub fn links(&self) -> LinkSummary {
        let state = |s: LinkState| match s {
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Gone => "gone",
        };
        let ours: Vec<IoCounters> = self.ports.iter().map(|io| io.counters).collect();
        LinkSummary {
            roles: self.ports.iter().map(|io| io.role).collect(),
            devices: self.ports.iter().map(|io| io.link.name.clone()).collect(),
            states: self.ports.iter().map(|io| state(io.state)).collect(),
            now_ms: self.now_ms(),
            io: match &self.peers {
                Some(peers) => peers.io_counters(ours),
                None => ours,
            },
        }
    }

    /// Runs until `stop` becomes true or `tick` returns false; I/O failures are
    /// recovered from, never returned (module doc). `tick` runs every poll interval
    /// (100 ms) between batches, with the engine to itself: the admin shell runs there.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        tick: &mut dyn FnMut(&mut Engine, &LinkSummary) -> bool,
    ) {
        self.run_while(&|| !stop.load(Ordering::Relaxed), tick);
    }

    /// `run` while `go` says so.
    fn run_while(
        &mut self,
        go: &dyn Fn() -> bool,
        tick: &mut dyn FnMut(&mut Engine, &LinkSummary) -> bool,
    ) {
        let mut last_poll = Instant::now();
        let mut last_link = Instant::now();
        // SAFETY: prctl with integer arguments only. Naps are tens of microseconds;
        // the default 50 us timer slack would double them.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000, 0, 0, 0) };
        while go() {
            if let Some(mailbox) = self.peers.as_ref().and_then(|p| p.mailbox.as_ref()) {
                let now = self.start.elapsed().as_millis() as u64;
                mailbox.serve(&mut self.engine, now);
            }
            match self.restart_at {
                None => {
                    if let Err(e) = self.turn() {
                        self.fail(&e);
                    }
                }
                Some(at) if Instant::now() >= at => self.restart(),
                // The ports are closed: only the timers run.
                Some(at) => std::thread::sleep(
                    at.saturating_duration_since(Instant::now())
                        .min(POLL_INTERVAL),
                ),
            }
            if last_poll.elapsed() >= POLL_INTERVAL {
                last_poll = Instant::now();
                let now = self.now_ms();
                self.engine.poll(now);
                let links = self.links();
                if !tick(&mut self.engine, &links) {
                    break;
                }
                self.follow_config();
                self.follow_group();
                self.send_engine_frames();
                self.flush_transmits();
            }
            if last_link.elapsed() >= LINK_CHECK_INTERVAL && self.restart_at.is_none() {
                last_link = Instant::now();
                self.check_links();
            }
        }
    }

    /// One round of I/O: arms the polls, enters the kernel (to wait, nap or just
    /// submit), handles the completions, processes the receive rings and sends. An
    /// error is io_uring's own (module doc).
    fn turn(&mut self) -> io::Result<()> {
        self.arm_receivers()?;
        // Frames left in a ring: look again at once. A flood, or frames the kernel had
        // no room for yet: nap. Otherwise wait for the first completion (module doc).
        let idle = types::Timespec::from(POLL_INTERVAL);
        let nap = types::Timespec::from(BUSY_NAP);
        let (want, timeout) = if self.rx_pending {
            (0, &idle)
        } else if self.batch >= BUSY_BATCH || self.tx_backlog {
            (2 * RING_ENTRIES as usize, &nap)
        } else {
            (1, &idle)
        };
        let args = types::SubmitArgs::new().timespec(timeout);
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        self.reap();
        self.receive_handed();
        self.drain_rings();
        self.send_engine_frames();
        self.flush_transmits();
        if let Some(peers) = self.peers.as_mut() {
            peers.wake_touched();
        }
        self.close_broken();
        Ok(())
    }

    /// An io_uring failure: closes both ports and schedules the restart, later the
    /// more failures came in a row (module doc).
    fn fail(&mut self, e: &io::Error) {
        if self
            .last_failure
            .is_some_and(|t| t.elapsed() > RESTART_CALM)
        {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = Some(Instant::now());
        let delay = restart_delay(self.failures);
        log::error!(
            "dataplane: io_uring failed ({e}); ports closed, restart in {} ms (failure {} \
             in a row); sessions are kept",
            delay.as_millis(),
            self.failures
        );
        for p in 0..self.ports.len() {
            if self.ports[p].open.is_some() {
                self.close(p);
            }
        }
        self.restart_at = Some(Instant::now() + delay);
    }

    /// Builds a new io_uring ring and reopens both ports (a port that cannot be opened
    /// yet is left to the link checks); a ring that cannot be built is a failure.
    fn restart(&mut self) {
        self.restart_at = None;
        if let Some(peers) = self.peers.as_mut() {
            peers.wake_armed = false;
        }
        match new_ring() {
            Ok(ring) => self.ring = ring,
            Err(e) => return self.fail(&e),
        }
        for p in 0..self.ports.len() {
            self.reopen(p);
            self.ports[p].counters.restarts += 1;
        }
        let open = |io: &PortIo| {
            if io.open.is_some() {
                "open"
            } else {
                "not open yet"
            }
        };
        let ports: Vec<String> = self
            .ports
            .iter()
            .map(|io| format!("{} port {}", io.role, open(io)))
            .collect();
        log::warn!("dataplane restarted: {}", ports.join(", "));
    }

    /// Closes every port whose socket failed (module doc); the link checks reopen it.
    fn close_broken(&mut self) {
        for p in 0..self.ports.len() {
            let io = &mut self.ports[p];
            let Some(why) = io.broken.take() else {
                continue;
            };
            if io.open.is_some() {
                log::error!(
                    "{} port {}: socket failed ({why}); reopening it",
                    io.role,
                    io.link.name
                );
                io.counters.restarts += 1;
                self.close(p);
            }
        }
    }

    /// Handles every completion posted so far.
    fn reap(&mut self) {
        self.cqes.clear();
        self.cqes.extend(self.ring.completion());
        for i in 0..self.cqes.len() {
            let cqe = self.cqes[i].clone();
            self.complete(&cqe);
        }
    }

    fn complete(&mut self, cqe: &cqueue::Entry) {
        let tag = Tag::decode(cqe.user_data());
        if tag.kind == KIND_POLL {
            self.on_poll(tag, cqe);
        } else if tag.kind == KIND_WAKE {
            if let Some(peers) = self.peers.as_mut() {
                peers.drain_waker();
                peers.wake_armed &= cqueue::more(cqe.flags());
            }
        }
    }

    /// A poll completion: the rings are drained after every batch anyway; only a poll
    /// that ended needs noting, to re-arm it.
    fn on_poll(&mut self, tag: Tag, cqe: &cqueue::Entry) {
        let io = &mut self.ports[tag.port];
        if !cqueue::more(cqe.flags()) && tag.generation == io.generation {
            io.armed = false;
        }
        let res = cqe.result();
        if tag.generation != io.generation || res == -libc::ECANCELED {
            return;
        }
        if res < 0 {
            io.counters.rx_errors += 1;
            io.broken = Some(format!("poll: {}", io::Error::from_raw_os_error(-res)));
        } else if res & i32::from(libc::POLLNVAL) != 0 {
            io.broken = Some("poll: POLLNVAL".into());
        }
    }

    /// Processes the frames waiting in both ports' receive rings, at most
    /// `DRAIN_BUDGET` per port; notes how many there were and whether any were left.
    fn drain_rings(&mut self) {
        let now = self.now_ms();
        self.rx_pending = false;
        self.batch = 0;
        for p in 0..self.ports.len() {
            for _ in 0..DRAIN_BUDGET {
                let Some(f) = self.ports[p].open.as_mut().and_then(|o| o.ring.take()) else {
                    break;
                };
                self.batch += 1;
                if f.copied {
                    self.release_slot(p, f.slot);
                    self.receive_whole(p, f.vlan, now);
                } else {
                    self.ring_frame(p, &f, now);
                }
            }
            self.rx_pending |= self.ports[p]
                .open
                .as_ref()
                .is_some_and(|o| o.ring.has_next());
        }
    }

    fn release_slot(&self, p: usize, slot: u16) {
        if let Some(o) = &self.ports[p].open {
            o.ring.release(slot);
        }
    }

    /// One frame in a ring slot of port `p`: translated in place, copied into the
    /// egress port's transmit ring, and its slot released.
    fn ring_frame(&mut self, p: usize, f: &RxFrame, now: u64) {
        let reason = unusable(f.vlan, f.truncated || f.at < VNET_HDR_LEN);
        let (before, rest) = self.ports.split_at_mut(p);
        let Some((io, after)) = rest.split_first_mut() else {
            return;
        };
        let Some(Sockets { socket, ring, tx }) = io.open.as_mut() else {
            return;
        };
        if let Some(reason) = reason {
            self.engine.count_drop(io.port, reason);
        } else {
            let buf = &mut ring.slot_mut(f.slot)[f.at - VNET_HDR_LEN..];
            let port = io.port;
            match translate(&mut self.engine, &mut io.counters, port, buf, f.len, now) {
                Some(Out::Shard(k, len)) => {
                    hand_off(
                        &mut self.engine,
                        self.peers.as_mut(),
                        k,
                        port,
                        &buf[VNET_HDR_LEN..VNET_HDR_LEN + len],
                    );
                }
                Some(Out::Port(out, len)) => {
                    let bytes = &buf[..VNET_HDR_LEN + len];
                    // The engine names only its ports: `out` is p, before it or after it.
                    let other = if out < p {
                        before.get_mut(out)
                    } else {
                        after.get_mut(out.wrapping_sub(p + 1))
                    };
                    if out == p {
                        forward(socket, tx, &mut io.counters, bytes);
                    } else if let Some(other) = other {
                        match other.open.as_mut() {
                            Some(o) => forward(&o.socket, &mut o.tx, &mut other.counters, bytes),
                            None => other.counters.tx_errors += 1,
                        }
                    }
                }
                None => {}
            }
        }
        ring.release(f.slot);
    }

    /// A frame too large for a ring slot (`TP_STATUS_COPY`), waiting whole on port
    /// `p`'s socket: read into the large buffer, translated, and sent synchronously
    /// once the egress port's transmit ring is flushed, on that port's receiving socket
    /// (module doc).
    fn receive_whole(&mut self, p: usize, vlan: bool, now: u64) {
        let io = &mut self.ports[p];
        let Some(fd) = io.open.as_ref().map(|o| o.socket.as_raw_fd()) else {
            return;
        };
        let buf = &mut self.large[..];
        // SAFETY: buf is writable for its length; MSG_TRUNC makes recv return the
        // frame's real length, so a longer one is recognised.
        let n = unsafe {
            libc::recv(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        let Some(len) = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(VNET_HDR_LEN))
        else {
            io.counters.rx_errors += 1;
            return;
        };
        if let Some(reason) = unusable(vlan, VNET_HDR_LEN + len > buf.len()) {
            self.engine.count_drop(io.port, reason);
            return;
        }
        let port = io.port;
        let (out, len) = match translate(&mut self.engine, &mut io.counters, port, buf, len, now) {
            Some(Out::Port(out, len)) => (out, len),
            Some(Out::Shard(k, len)) => {
                let frame = &buf[VNET_HDR_LEN..VNET_HDR_LEN + len];
                hand_off(&mut self.engine, self.peers.as_mut(), k, port, frame);
                return;
            }
            None => return,
        };
        let io = &mut self.ports[out];
        match io.open.as_mut() {
            Some(o) => send_whole(
                &o.socket,
                &mut o.tx,
                &mut io.counters,
                &self.large[..VNET_HDR_LEN + len],
            ),
            None => io.counters.tx_errors += 1,
        }
    }

    /// Processes the frames other workers handed to this one (`threads`), at most
    /// `DRAIN_BUDGET`, and queues what they become.
    fn receive_handed(&mut self) {
        let now = self.now_ms();
        let Some(peers) = self.peers.as_mut() else {
            return;
        };
        let (engine, ports, large) = (&mut self.engine, &mut self.ports, &mut self.large);
        peers.handoff.receive(DRAIN_BUDGET, |port, buf, len| {
            let Ok(port) = u8::try_from(port) else {
                return;
            };
            let mut frame = Frame { buf, len };
            let out = match engine.process_handed(PortId(port), &mut frame, now) {
                Verdict::Forward(out) | Verdict::Reply(out) => out,
                // A handed frame is finished here: a second hand-off does not happen
                // (the owner holds the mapping), anything else was counted.
                _ => return,
            };
            let n = frame.len;
            let Some(bytes) = large.get_mut(..VNET_HDR_LEN + n) else {
                return;
            };
            bytes[..VNET_HDR_LEN].fill(0);
            bytes[VNET_HDR_LEN..].copy_from_slice(&frame.buf[..n]);
            let Some(io) = ports.get_mut(out.index()) else {
                return;
            };
            match io.open.as_mut() {
                Some(o) => transmit(&mut o.tx, &mut io.counters, bytes),
                None => io.counters.tx_errors += 1,
            }
        });
    }

    /// Queues the frames the engine made (ARP/NDP requests, released packets) and hands
    /// other workers those it queued for them.
    fn send_engine_frames(&mut self) {
        if self.peers.is_some() {
            while let Some((k, port, len)) = self.engine.pop_handoff(&mut self.large) {
                let frame = &self.large[..len];
                hand_off(&mut self.engine, self.peers.as_mut(), k, port, frame);
            }
        }
        // No offloads: an all-zero `virtio_net_hdr`.
        self.large[..VNET_HDR_LEN].fill(0);
        while let Some((port, len)) = self.engine.pop_transmit(&mut self.large[VNET_HDR_LEN..]) {
            let io = &mut self.ports[port.index()];
            match io.open.as_mut() {
                Some(o) => transmit(
                    &mut o.tx,
                    &mut io.counters,
                    &self.large[..VNET_HDR_LEN + len],
                ),
                None => io.counters.tx_errors += 1,
            }
        }
    }

    /// Has the kernel send what both transmit rings hold.
    fn flush_transmits(&mut self) {
        self.tx_backlog = false;
        for io in &mut self.ports {
            if let Some(o) = io.open.as_mut() {
                match flush(&mut o.tx, &mut io.counters) {
                    Flushed::Done => {}
                    Flushed::Backlog => self.tx_backlog = true,
                    Flushed::Broken => io.broken = Some("send from the transmit ring".into()),
                }
            }
        }
    }

    fn arm_receivers(&mut self) -> io::Result<()> {
        if let Some(peers) = self.peers.as_ref().filter(|p| !p.wake_armed) {
            let fd = peers.waker().as_raw_fd();
            let sqe = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(
                    Tag {
                        kind: KIND_WAKE,
                        port: 0,
                        generation: 0,
                    }
                    .encode(),
                );
            self.push(sqe)?;
            if let Some(peers) = self.peers.as_mut() {
                peers.wake_armed = true;
            }
        }
        for p in 0..self.ports.len() {
            let io = &self.ports[p];
            let Some(fd) = io.open.as_ref().map(|o| o.socket.as_raw_fd()) else {
                continue;
            };
            if io.armed {
                continue;
            }
            let sqe = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(poll_tag(p, io.generation).encode());
            self.push(sqe)?;
            self.ports[p].armed = true;
        }
        Ok(())
    }

    fn push(&mut self, sqe: squeue::Entry) -> io::Result<()> {
        // SAFETY: the only requests are polls and cancels, which point at no memory.
        unsafe {
            if self.ring.submission().push(&sqe).is_err() {
                self.ring.submit()?;
                self.ring
                    .submission()
                    .push(&sqe)
                    .map_err(|_| io::Error::other("submission queue full"))?;
            }
        }
        Ok(())
    }

    /// Logs link transitions; closes a port whose interface disappeared and reopens it
    /// (link set up again) when an interface of that name or MAC returns.
    fn check_links(&mut self) {
        for io in &mut self.ports {
            if let Some(o) = &io.open {
                io.counters.socket_drops += o.socket.take_drops();
            }
        }
        for p in 0..self.ports.len() {
            let found = link::find(&self.ports[p].spec);
            let same = matches!(&found, Ok(l) if l.index == self.ports[p].link.index);
            if !same && self.ports[p].open.is_some() {
                self.close(p);
            }
            if self.ports[p].open.is_none() && found.is_ok() {
                self.reopen(p);
            }
            let io = &mut self.ports[p];
            let state = match (&io.open, link::is_running(&io.link)) {
                (None, _) => LinkState::Gone,
                (Some(_), true) => LinkState::Up,
                (Some(_), false) => LinkState::Down,
            };
            if state != io.state {
                let (name, dev) = (io.role, &io.link.name);
                match state {
                    LinkState::Up => log::info!("{name} port {dev}: link up, forwarding"),
                    LinkState::Down => {
                        log::warn!("{name} port {dev}: link down; the other port keeps forwarding")
                    }
                    LinkState::Gone => {
                        log::warn!("{name} port {dev}: interface gone; waiting for it to return")
                    }
                }
                io.state = state;
            }
        }
    }

    /// Several workers: leaves a port's fanout group that another formed anew or asked
    /// to be formed anew, and joins the new one in this worker's turn (`threads`,
    /// "Regrouping"). Worker 0 forms a new group when its own socket reopens, at the
    /// link checks.
    fn follow_group(&mut self) {
        let Some(peers) = &self.peers else {
            return;
        };
        let leave: Vec<usize> = (0..self.ports.len())
            .filter(|&p| {
                let io = &self.ports[p];
                io.open.is_some() && peers.must_leave(p, io.fanout)
            })
            .collect();
        let rejoin = self.peers.as_ref().is_some_and(|p| p.handoff.worker() > 0);
        for p in leave {
            log::debug!("{} port: rejoining its fanout group", self.ports[p].role);
            self.close(p);
            if !rejoin {
                self.reopen(p);
            }
        }
        if rejoin {
            for p in 0..self.ports.len() {
                if self.ports[p].open.is_none() {
                    self.reopen(p);
                }
            }
        }
    }

    /// Reopens the ports whose interface or MTU the running configuration changed
    /// (module doc).
    fn follow_config(&mut self) {
        let config = self.engine.effective_config();
        if let Some(peers) = self.peers.as_ref().filter(|_| self.leader) {
            let sockets = self.ports.iter().filter_map(|io| io.open.as_ref());
            peers.follow_steering(config, sockets.map(|o| &o.socket));
        }
        let layout = port::layout(config);
        let changed =
            |io: &PortIo, w: &PortConfig<'_>| io.spec != w.port.port || io.mtu != w.port.mtu;
        if !self.ports.iter().zip(&layout).any(|(io, w)| changed(io, w)) {
            return;
        }
        let max_frame = frame_room(max_mtu(&layout));
        let grown = max_frame > self.max_frame;
        self.max_frame = self.max_frame.max(max_frame);
        let wanted: Vec<(String, u16)> = layout
            .iter()
            .map(|w| (w.port.port.clone(), w.port.mtu))
            .collect();
        for (p, (spec, mtu)) in wanted.into_iter().enumerate() {
            let io = &mut self.ports[p];
            if io.spec == spec && io.mtu == mtu && !grown {
                continue;
            }
            log::info!(
                "{} port: {spec} with MTU {mtu} (was {} with MTU {}): reopening",
                io.role,
                io.spec,
                io.mtu
            );
            io.spec = spec;
            io.mtu = mtu;
            if io.open.is_some() {
                self.close(p);
            }
            self.reopen(p);
        }
    }

    /// Stops receiving on port `p` and closes its sockets (frames still waiting in its
    /// transmit ring are lost).
    fn close(&mut self, p: usize) {
        let io = &mut self.ports[p];
        if io.armed {
            let cancel = opcode::AsyncCancel::new(poll_tag(p, io.generation).encode())
                .build()
                .user_data(
                    Tag {
                        kind: KIND_CANCEL,
                        port: p,
                        generation: io.generation,
                    }
                    .encode(),
                );
            // SAFETY: a cancel SQE points at no memory. If the queue is full the old
            // receive simply ends with an error on the closed socket.
            let _ = unsafe { self.ring.submission().push(&cancel) };
        }
        io.open = None;
        io.armed = false;
        // Completions for the old socket must not touch the new one's state.
        io.generation = io.generation.wrapping_add(1);
    }

    /// Opens port `p` again (after its interface returned, or after a fault), with the
    /// interface its configured name or MAC now finds; logged at debug level if that
    /// fails (the link checks try again).
    fn reopen(&mut self, p: usize) {
        let max_frame = self.max_frame;
        let io = &mut self.ports[p];
        let ingress = self.ingress.as_mut();
        let result = link::find(&io.spec).and_then(|l| {
            let open = || open_socket(io.role, &l, io.mtu, max_frame, ingress).map(|(o, _)| o);
            // Several workers: the new socket joins the port's fanout group in turn.
            let open = match &self.peers {
                Some(peers) => match peers.rejoin(p, io.fanout, open, |o| &o.socket)? {
                    Some((open, fanout)) => {
                        io.fanout = fanout;
                        open
                    }
                    None => return Ok(None),
                },
                None => open()?,
            };
            Ok(Some((l, open)))
        });
        match result {
            Ok(None) => {}
            Ok(Some((l, open))) => {
                let moved = (l.mac != io.link.mac).then_some(l.mac);
                let replaced = l.index != io.link.index;
                if moved.is_some() {
                    log::info!("{} port: now {} with MAC {}", io.role, l.name, l.mac);
                }
                io.link = l;
                io.open = Some(open);
                let port = io.port;
                // A new link: the neighbours behind it may have new MACs. (The same
                // link reopened after a fault keeps them.) Either may transmit
                // differently now.
                match moved {
                    Some(mac) => self.engine.port_moved(port, mac),
                    None if replaced => self.engine.link_replaced(port),
                    None => {}
                }
                if self.leader {
                    offer_gro_between(&self.ports);
                }
            }
            Err(e) => log::debug!("{} port: not back yet: {e}", io.role),
        }
    }
}

/// The ring slot room for frames of a port of `mtu`: the frame and its Ethernet
/// header, and at least the ICMP errors built in place (1294 bytes).
fn frame_room(mtu: u16) -> usize {
    14 + usize::from(mtu).max(1294)
}

/// Turns GRO on at port `io` if `egress` has TSO (`link::offer_gro`) and says what it
/// did.
/// `offer_gro` for every port toward every other port; a lone port (one-armed: both
/// roles, its frames leave by it) toward itself.
fn offer_gro_between(ports: &[PortIo]) {
    let lone = ports.len() == 1;
    for io in ports {
        for egress in ports.iter().filter(|e| lone || e.port != io.port) {
            offer_gro(io, egress);
        }
    }
}

fn offer_gro(io: &PortIo, egress: &PortIo) {
    let (name, dev, out) = (io.role, &io.link.name, &egress.link.name);
    match link::offer_gro(&io.link, &egress.link) {
        Ok((_, true)) => log::info!("{name} port {dev}: GRO on ({out} has TSO)"),
        Ok((tx, false)) if tx.tso => {
            log::info!("{name} port {dev}: GRO left as it is (the driver does not switch it)")
        }
        Ok((tx, false)) => log::info!(
            "{name} port {dev}: GRO left as it is: {out} has no TSO (transmit checksum \
             offload {}); the kernel segments and checksums super-frames for it in software",
            if tx.csum { "on" } else { "off" },
        ),
        Err(e) => {
            log::warn!("{name} port {dev}: cannot read {out}'s offloads ({e}); GRO left as it is")
        }
    }
}

/// The tag of port `p`'s poll request.
fn poll_tag(p: usize, generation: u8) -> Tag {
    Tag {
        kind: KIND_POLL,
        port: p,
        generation,
    }
}

/// Why a received frame cannot be used: an 802.1Q tag the NIC stripped, or a frame cut
/// short.
fn unusable(vlan: bool, truncated: bool) -> Option<DropReason> {
    if vlan {
        Some(DropReason::VlanTagged)
    } else if truncated {
        Some(DropReason::FrameTooLong)
    } else {
        None
    }
}

/// Runs a received frame through the engine. `buf` holds the frame's `virtio_net_hdr`
/// and then the frame (`len` bytes) with room behind it. The header is checked against
/// the frame (`offload::prepare`) and rewritten into the one the frame leaves with (all
/// zero for a reply the engine wrote over the frame). Returns where the frame goes and
/// its new length, or `None` if nothing is sent.
fn translate(
    engine: &mut Engine,
    counters: &mut IoCounters,
    port: PortId,
    buf: &mut [u8],
    len: usize,
    now: u64,
) -> Option<Out> {
    let (vnet, frame_buf) = buf.split_at_mut_checked(VNET_HDR_LEN)?;
    let vnet: &mut [u8; VNET_HDR_LEN] = vnet.try_into().ok()?;
    let mut h = offload::VnetHdr::read(vnet);
    let partial = h.flags & offload::F_NEEDS_CSUM != 0;
    let offload = match offload::prepare(frame_buf.get_mut(..len)?, &mut h) {
        Ok(o) => {
            if partial && o == Offload::NONE {
                counters.csum_completed += 1;
            }
            counters.gso_frames += u64::from(o.gso_segment.is_some());
            h.write(vnet);
            o
        }
        Err(offload::Unsupported) => {
            engine.count_drop(port, DropReason::GsoUnsupported);
            return None;
        }
    };
    let mut frame = Frame {
        buf: frame_buf,
        len,
    };
    match engine.process_offloaded(port, &mut frame, offload, now) {
        Verdict::Forward(out) => Some(Out::Port(out.index(), frame.len)),
        Verdict::Reply(out) => {
            vnet.fill(0);
            Some(Out::Port(out.index(), frame.len))
        }
        Verdict::Handoff(shard) => Some(Out::Shard(shard, frame.len)),
        _ => None,
    }
}

/// Where a translated frame goes, with its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// Out of this port (by index).
    Port(usize, usize),
    /// To this worker (`threads`); the frame follows the `virtio_net_hdr`.
    Shard(usize, usize),
}

fn annotate(role: &str, name: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{role} port {name}: {e}"))
}

/// The largest MTU of the ports: what the receive and transmit rings' slots hold.
fn max_mtu(layout: &[PortConfig<'_>]) -> u16 {
    layout.iter().map(|c| c.port.mtu).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::testnet::{index, private_netns, run};
    use std::os::fd::AsRawFd;

    #[test]
    fn restart_delay_doubles_from_100ms_up_to_10s() {
        let ms = |n| restart_delay(n).as_millis();
        assert_eq!([ms(1), ms(2), ms(3), ms(4)], [100, 200, 400, 800]);
        assert_eq!(ms(8), 10_000);
        assert_eq!(ms(u32::MAX), 10_000);
    }

    /// Two veth pairs, lan0/lan0p and wan0/wan0p, in the test's own namespace; the
    /// peers up, with no IPv6 of their own (no router solicitations to count).
    fn ports() {
        private_netns();
        for port in ["lan0", "wan0"] {
            let peer = format!("{port}p");
            run(&[
                "ip", "link", "add", port, "type", "veth", "peer", "name", &peer,
            ]);
            run(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{peer}.disable_ipv6=1"),
            ]);
            run(&["ip", "link", "set", &peer, "up"]);
        }
    }

    /// An ARP request for the inside address, sent into lan0 from its peer.
    fn arp_request_from_lan() {
        let peer = PacketSocket::open_sender(index("lan0p")).unwrap();
        let mut f = vec![0u8; VNET_HDR_LEN];
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 0x08, 0x06]);
        f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 10, 10, 0, 2]);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 10, 0, 1]);
        // SAFETY: f is readable for its length.
        let sent = unsafe { libc::send(peer.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
        assert_eq!(sent, f.len() as isize, "{}", io::Error::last_os_error());
    }

    /// Hardening 6: an io_uring failure (here its descriptor made to name /dev/null,
    /// so entering it fails with EOPNOTSUPP) neither ends the loop nor loses the
    /// engine: the dataplane restarts both ports on a new ring, and frames are received
    /// again.
    #[test]
    fn an_io_uring_failure_restarts_the_dataplane_and_keeps_the_engine() {
        ports();
        let config = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        let mut dp = Dataplane::new(&config).unwrap();
        dp.engine.count_drop(PortId(0), DropReason::VlanTagged);
        let null = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: both descriptors are open; the ring's now names /dev/null (it is
        // closed once, when the ring is dropped).
        assert!(unsafe { libc::dup2(null.as_raw_fd(), dp.ring.as_raw_fd()) } >= 0);
        let stop = AtomicBool::new(false);
        let (mut ticks, mut after_restart) = (0, None);
        dp.run(&stop, &mut |engine, links| {
            ticks += 1;
            let rx = engine.stats().ports[0].rx_packets;
            match after_restart {
                None if links.io.iter().all(|c| c.restarts == 1) => {
                    after_restart = Some((ticks, rx));
                    arp_request_from_lan();
                }
                Some((t, _)) if ticks > t + 5 => return false,
                _ => {}
            }
            ticks < 50
        });
        let (_, rx) = after_restart.expect("restarted within 5 s");
        assert!(
            dp.ports.iter().all(|io| io.open.is_some()),
            "ports reopened"
        );
        let stats = dp.engine.stats();
        assert_eq!(
            stats.drops[DropReason::VlanTagged as usize],
            1,
            "same engine"
        );
        assert!(rx >= 1 && stats.ports[0].rx_packets > rx, "receiving again");
    }

    /// Hardening 7: a commit that names another interface and a larger MTU for the
    /// inside port takes effect: the port is reopened on the new interface, its link
    /// and the engine use the new MTU and MAC, and the rings take the larger frames.
    #[test]
    fn a_committed_port_and_mtu_change_moves_the_port() {
        ports();
        run(&[
            "ip", "link", "add", "lan1", "type", "veth", "peer", "name", "lan1p",
        ]);
        run(&["ip", "link", "set", "lan1p", "up"]);
        let config = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        let mut dp = Dataplane::new(&config).unwrap();
        let mut moved = config.clone();
        let inside = moved.inside.as_mut().expect("two-port example");
        inside.port = "lan1".into();
        inside.mtu = 9000;
        let stop = AtomicBool::new(false);
        let mut ticks = 0;
        dp.run(&stop, &mut |engine, _| {
            ticks += 1;
            if ticks == 1 {
                engine.reconfigure(&moved);
            }
            ticks < 3
        });
        let io = &dp.ports[0];
        assert_eq!((io.link.name.as_str(), io.mtu), ("lan1", 9000));
        let ring = &io.open.as_ref().expect("reopened").ring;
        assert!(ring.slot_size() >= 14 + 9000, "{}", ring.slot_size());
        let lan1 = link::find("lan1").unwrap();
        let info = dp.engine.port_info(PortId(0));
        assert_eq!((info.mac, info.mtu), (lan1.mac, 9000));
        let shown = crate::dataplane::testnet::output(&["ip", "-o", "link", "show", "lan1"]);
        assert!(shown.contains("mtu 9000"), "{shown}");
        // The outside port is reopened with the larger slots too, on its interface.
        assert_eq!(dp.ports[1].link.name, "wan0");
        assert!(dp.ports[1].open.is_some());
    }

    /// Issue #17: a DHCP lease's MTU (AWS's 9001, bounded to 9000) is applied as a
    /// committed one is: the outside port is reopened with it on its link, with ring
    /// slots that hold it; losing the lease gives the port its configured MTU back.
    #[test]
    fn a_lease_mtu_reopens_the_port_with_it() {
        ports();
        let mut config = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        config.outside.ipv4 = Some("dhcp".parse().unwrap());
        config.outside.gateway4 = None;
        config.nat.pool.clear();
        let mut dp = Dataplane::new(&config).unwrap();
        let lease = crate::engine::lease::Lease4 {
            address: "198.51.100.77/24".parse().unwrap(),
            gateway: Some("198.51.100.1".parse().unwrap()),
            routes: Vec::new(),
            mtu: Some(9001),
        };
        let stop = AtomicBool::new(false);
        let mut ticks = 0;
        dp.run(&stop, &mut |engine, _| {
            ticks += 1;
            if ticks == 1 {
                engine.set_lease4(PortId(1), Some(lease.clone()));
            }
            ticks < 3
        });
        let io = &dp.ports[1];
        assert_eq!(io.mtu, 9000);
        let ring = &io.open.as_ref().expect("reopened").ring;
        assert!(ring.slot_size() >= 14 + 9000, "{}", ring.slot_size());
        let shown = crate::dataplane::testnet::output(&["ip", "-o", "link", "show", "wan0"]);
        assert!(shown.contains("mtu 9000"), "{shown}");
        ticks = 0;
        dp.run(&stop, &mut |engine, _| {
            ticks += 1;
            if ticks == 1 {
                engine.set_lease4(PortId(1), None);
            }
            ticks < 3
        });
        assert_eq!(dp.ports[1].mtu, 1500);
        let shown = crate::dataplane::testnet::output(&["ip", "-o", "link", "show", "wan0"]);
        assert!(shown.contains("mtu 1500"), "{shown}");
    }

    /// Hardening 6: a port whose sending socket fails (here its descriptor made to
    /// name /dev/null, so sending fails with ENOTSOCK) is closed and reopened within a
    /// second, while the other port and the engine carry on.
    #[test]
    fn a_broken_port_socket_is_reopened() {
        ports();
        let config = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        let mut dp = Dataplane::new(&config).unwrap();
        let tx = dp.ports[0].open.as_ref().unwrap().tx.socket_fd();
        let null = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: both descriptors are open; the socket's now names /dev/null (it is
        // closed once, when the ring is dropped).
        assert!(unsafe { libc::dup2(null.as_raw_fd(), tx) } >= 0);
        let stop = AtomicBool::new(false);
        let mut ticks = 0;
        let mut summary = None;
        dp.run(&stop, &mut |_, links| {
            ticks += 1;
            // The ARP reply is what fails to leave.
            if ticks == 1 {
                arp_request_from_lan();
            }
            summary = Some(links.clone());
            ticks < 25
        });
        let links = summary.unwrap();
        assert_eq!([links.io[0].restarts, links.io[1].restarts], [1, 0]);
        assert!(links.io[0].tx_errors >= 1);
        assert!(dp.ports.iter().all(|io| io.open.is_some()), "reopened");
        assert_eq!(links.states, ["up", "up"]);
    }
}
