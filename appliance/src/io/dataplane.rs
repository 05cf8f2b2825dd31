//! The dataplane loop: two AF_PACKET sockets driven by one io_uring ring.
//!
//! Receive: one multishot `RecvMsg` per port (kernel 6.0+) draws buffers from a
//! provided-buffer ring registered per port. Each buffer holds the kernel's
//! `io_uring_recvmsg_out` header, the `PACKET_AUXDATA` control message and the frame;
//! the frame is processed in place by the engine. A multishot receive that ends (no
//! `IORING_CQE_F_MORE`, e.g. `ENOBUFS` when every buffer is in flight) is re-armed at
//! the end of the batch, after buffers went back to the ring.
//!
//! Transmit: a forwarded or reply frame is sent from the very buffer it arrived in
//! (`Send` on the egress socket); the buffer returns to its ring when the send
//! completes. Frames the engine makes itself are copied into a small transmit pool.
//! Nothing allocates per packet. (`SendZc` is refused by AF_PACKET with EOPNOTSUPP.)
//!
//! Offloads (this path): the sockets carry `PACKET_VNET_HDR`, so a receive buffer holds
//! `[io_uring_recvmsg_out][auxdata][virtio_net_hdr][frame]` and a GSO super-frame (up
//! to 64 KiB) arrives whole. `wire::offload::prepare` checks the header against the
//! frame (a partial checksum natbox does not rewrite is completed in software; a GSO
//! type it cannot translate is dropped as `gso_unsupported`) and rewrites it into the
//! header the frame leaves with; the engine translates with the checksum left partial
//! and checks GSO segments, not the super-frame, against the MTU; `Send` transmits
//! header and frame from the same buffer, so the kernel (`virtio_net_hdr_to_skb`)
//! segments or passes the super-frame on, and no checksum is computed in user space.
//! Replies go out with an all-zero header; so do the engine's own frames. Buffers are
//! sized for the largest super-frame (`MAX_GSO_FRAME`), so fewer of them fit the
//! per-port budget (`RX_MEMORY`); pages of a buffer a small frame never reaches are
//! never touched, so resident memory grows with the traffic's frame sizes. GRO is on
//! on the ports (`link::prepare`): the kernel merges wire segments into super-frames
//! before natbox sees them.
//!
//! Timers: `Engine::poll` every 100 ms; link state every second. A port whose link
//! goes down is logged and the other port keeps forwarding; a port whose interface
//! disappears is closed and reopened (with its link set up again) when it returns.
//!
//! That is the default (`NATBOX_RX=bufring`). `NATBOX_RX=tpacket` at start-up
//! replaces receive and transmit with `PACKET_RX_RING`/
//! `PACKET_TX_RING` in `TPACKET_V3` (see `ring.rs`), without offloads: no
//! `virtio_net_hdr`, GRO off, a GSO super-frame from a TSO sender is dropped as
//! `frame_too_long` (its slots hold wire-sized frames), partial checksums are completed
//! in software (`TP_STATUS_CSUMNOTREADY`). A multishot `PollAdd` per port
//! wakes the loop, which walks the ready receive blocks, kicking the transmit rings once
//! per block. Everything else (link setup, counters, timers, link monitoring, the shell
//! tick) is shared. Measured with tests/bench/compare.sh on a 2-vCPU VM: tpacket
//! delivers ~1.7-2x the packets per second of bufring at ~0.6x natbox CPU per packet,
//! the same TCP throughput, but adds up to a block timeout (1 ms, and timer slack) of
//! latency per direction at low rates (ping RTT ~1.3-1.6 ms against ~0.2 ms): a block
//! is handed over when full or when its timeout expires. bufring stays the default
//! until the ring path stops costing latency (a NAT gateway should not add a
//! millisecond to every idle flow's round trip) and has run in the VM image.
//!
//! One thread runs everything. The design leaves room for one loop per queue
//! (`PACKET_FANOUT` across several sockets per port, one engine shard each).

use super::link::{self, Link};
use super::ring::{Rings, RxFrame};
use super::socket::{self, PacketSocket};
use crate::engine::stats::{DropReason, IoCounters};
use crate::engine::{Engine, Frame, Port, PortSetup, Verdict};
use crate::wire::offload::{self, Offload};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Receive buffers per port (a power of two, at most 32768), at most.
const RX_BUFFERS: u16 = 2048;
/// Memory for one port's receive buffers: with buffers sized for GSO super-frames
/// (68 KiB) this allows 128 of them, with wire-sized ones (2 KiB) `RX_BUFFERS`.
const RX_MEMORY: usize = 16 << 20;
/// Transmit buffers for frames the engine makes (ARP/NDP, released packets).
const TX_BUFFERS: usize = 64;
const RING_ENTRIES: u32 = 4096;
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const LINK_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// `struct io_uring_recvmsg_out`.
const RECVMSG_OUT_LEN: usize = 16;

const KIND_RECV: u64 = 1;
const KIND_SEND_RX: u64 = 2;
const KIND_SEND_TX: u64 = 3;
const KIND_CANCEL: u64 = 4;

fn user_data(kind: u64, port: usize, out: usize, bid: u16) -> u64 {
    kind << 32 | (port as u64) << 24 | (out as u64) << 16 | u64::from(bid)
}

fn decode(ud: u64) -> (u64, usize, usize, u16) {
    (
        ud >> 32,
        (ud >> 24 & 0xff) as usize,
        (ud >> 16 & 0xff) as usize,
        ud as u16,
    )
}

/// Which receive/transmit path the dataplane uses (`NATBOX_RX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxPath {
    /// Multishot `RecvMsg` into a provided-buffer ring, `Send` SQEs, with
    /// `PACKET_VNET_HDR` offloads (GSO super-frames, partial checksums), the default:
    /// lower latency at low rates.
    BufRing,
    /// `TPACKET_V3` receive and transmit rings (`ring.rs`), without offloads: more
    /// small packets per second and less CPU per packet.
    Tpacket,
}

impl RxPath {
    /// From `NATBOX_RX` (`bufring` or `tpacket`); unset means the default.
    pub fn from_env() -> io::Result<RxPath> {
        match std::env::var("NATBOX_RX").as_deref() {
            Err(_) | Ok("" | "bufring") => Ok(RxPath::BufRing),
            Ok("tpacket") => Ok(RxPath::Tpacket),
            Ok(other) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("NATBOX_RX={other}: expected bufring or tpacket"),
            )),
        }
    }
}

/// What the shell shows about the ports that only the I/O layer knows.
#[derive(Debug, Clone)]
pub struct LinkSummary {
    pub devices: [String; 2],
    /// "up", "down" or "gone".
    pub states: [&'static str; 2],
    /// Engine time, milliseconds since the dataplane started.
    pub now_ms: u64,
    /// The I/O layer's counters, per port.
    pub io: [IoCounters; 2],
}

/// A provided-buffer ring: page-aligned ring of buffer descriptors shared with the
/// kernel, plus the buffers themselves.
struct BufRing {
    entries: *mut types::BufRingEntry,
    count: u16,
    tail: u16,
    mem: Box<[u8]>,
    buf_size: usize,
}

impl std::fmt::Debug for BufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BufRing({} x {})", self.count, self.buf_size)
    }
}

impl BufRing {
    fn layout(count: u16) -> std::alloc::Layout {
        let size = usize::from(count) * std::mem::size_of::<types::BufRingEntry>();
        std::alloc::Layout::from_size_align(size, 4096).expect("valid layout")
    }

    fn new(count: u16, buf_size: usize) -> BufRing {
        assert!(count.is_power_of_two());
        // SAFETY: the layout has a non-zero size; zeroed memory is a valid ring.
        let entries =
            unsafe { std::alloc::alloc_zeroed(Self::layout(count)) }.cast::<types::BufRingEntry>();
        assert!(!entries.is_null(), "out of memory for the buffer ring");
        let mut ring = BufRing {
            entries,
            count,
            tail: 0,
            mem: vec![0u8; usize::from(count) * buf_size].into_boxed_slice(),
            buf_size,
        };
        for bid in 0..count {
            ring.push(bid);
        }
        ring.publish();
        ring
    }

    /// Hands buffer `bid` back to the kernel (visible after `publish`).
    fn push(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.count - 1));
        let addr = self.mem.as_ptr() as u64 + u64::from(bid) * self.buf_size as u64;
        // SAFETY: slot < count, inside the ring allocation.
        let e = unsafe { &mut *self.entries.add(slot) };
        e.set_addr(addr);
        e.set_len(self.buf_size as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lives in the first entry of our ring; the kernel reads
        // it with acquire semantics, so a release store orders the entries before it.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries).cast_mut();
            (*tail.cast::<AtomicU16>()).store(self.tail, Ordering::Release);
        }
    }

    fn buf(&mut self, bid: u16) -> &mut [u8] {
        let start = usize::from(bid) * self.buf_size;
        &mut self.mem[start..start + self.buf_size]
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout; the ring that used it is
        // dropped before (field order in `Dataplane`).
        unsafe { std::alloc::dealloc(self.entries.cast(), Self::layout(self.count)) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    Up,
    Down,
    Gone,
}

#[derive(Debug)]
struct PortIo {
    port: Port,
    spec: String,
    mtu: u16,
    link: Link,
    socket: Option<PacketSocket>,
    /// The socket's mapped rings (`RxPath::Tpacket` only).
    rings: Option<Rings>,
    state: LinkState,
    rx: BufRing,
    msghdr: Box<libc::msghdr>,
    armed: bool,
    /// Tags the armed receive, so completions of a cancelled one are recognised.
    generation: u8,
    counters: IoCounters,
}

/// The running dataplane.
pub struct Dataplane {
    // Dropped first: the ring must go before the buffer memory it points into.
    ring: IoUring,
    ports: [PortIo; 2],
    tx_bufs: Vec<Box<[u8]>>,
    tx_free: Vec<u16>,
    cqes: Vec<cqueue::Entry>,
    engine: Engine,
    start: Instant,
    path: RxPath,
    /// Largest frame a port carries, with room for ICMP errors built in place.
    max_frame: usize,
    /// Frames of the receive block being processed (`RxPath::Tpacket`).
    frames: Vec<RxFrame>,
    /// Bytes of `virtio_net_hdr` in front of every frame read or written: `VNET_HDR_LEN`
    /// on the `BufRing` path, 0 on the `Tpacket` path.
    vnet_len: usize,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

/// Bytes before the frame in a receive buffer.
fn headroom() -> usize {
    RECVMSG_OUT_LEN + socket::auxdata_space()
}

impl Dataplane {
    /// Finds and prepares both ports and builds the engine for `config`.
    pub fn new(config: &firmware_config::Config) -> io::Result<Dataplane> {
        let path = RxPath::from_env()?;
        let ring = IoUring::builder()
            .setup_single_issuer()
            .build(RING_ENTRIES)?;
        let max_mtu = usize::from(config.inside.mtu.max(config.outside.mtu));
        // Room for the frame, its headers, and ICMP errors built in place (1294 bytes).
        let max_frame = 14 + max_mtu.max(1294);
        let vnet = path == RxPath::BufRing;
        let vnet_len = if vnet { offload::VNET_HDR_LEN } else { 0 };
        // Transmit buffers hold the frames the engine makes (at most `max_frame`).
        let tx_size = vnet_len + max_frame;
        let (buf_size, rx_count) = if vnet {
            let size = (headroom() + vnet_len + offload::MAX_GSO_FRAME).next_multiple_of(4096);
            let count = (RX_MEMORY / size).min(usize::from(RX_BUFFERS));
            (size, 1u16 << count.ilog2())
        } else {
            ((headroom() + max_frame).next_power_of_two(), RX_BUFFERS)
        };
        let open = |port: Port, p: &firmware_config::Port| -> io::Result<PortIo> {
            let link = link::find(&p.port).map_err(|e| annotate(port, &p.port, e))?;
            link::prepare(&link, p.mtu, vnet).map_err(|e| annotate(port, &link.name, e))?;
            let socket =
                PacketSocket::open(link.index, vnet).map_err(|e| annotate(port, &link.name, e))?;
            let rings = match path {
                RxPath::BufRing => None,
                RxPath::Tpacket => Some(
                    Rings::new(&socket, max_frame).map_err(|e| annotate(port, &link.name, e))?,
                ),
            };
            // SAFETY: msghdr is plain old data; zero is valid.
            let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
            msghdr.msg_controllen = socket::auxdata_space() as _; // usize (glibc) or u32 (musl)
            log::info!(
                "{} port: {} (index {}, MAC {}, MTU {})",
                port.name(),
                link.name,
                link.index,
                link.mac,
                p.mtu
            );
            Ok(PortIo {
                port,
                spec: p.port.clone(),
                mtu: p.mtu,
                link,
                socket: Some(socket),
                rings,
                state: LinkState::Up,
                // The tpacket path receives through its rings: a token buffer ring.
                rx: BufRing::new(if path == RxPath::Tpacket { 1 } else { rx_count }, buf_size),
                msghdr,
                armed: false,
                generation: 0,
                counters: IoCounters::default(),
            })
        };
        log::info!(
            "receive path: {path:?} (NATBOX_RX), offloads {}, {rx_count} receive buffers of {buf_size} bytes per port",
            if vnet { "on (virtio_net_hdr, GSO)" } else { "off" }
        );
        let inside = open(Port::Inside, &config.inside)?;
        let outside = open(Port::Outside, &config.outside)?;
        let engine = Engine::new(
            config,
            PortSetup {
                mac: inside.link.mac,
            },
            PortSetup {
                mac: outside.link.mac,
            },
        );
        for (bgid, p) in [&inside, &outside].into_iter().enumerate() {
            // SAFETY: the ring memory lives in `p.rx` until after `ring` is dropped.
            unsafe {
                ring.submitter().register_buf_ring_with_flags(
                    p.rx.entries as u64,
                    p.rx.count,
                    bgid as u16,
                    0,
                )?;
            }
        }
        Ok(Dataplane {
            ring,
            ports: [inside, outside],
            tx_bufs: (0..TX_BUFFERS)
                .map(|_| vec![0u8; tx_size].into_boxed_slice())
                .collect(),
            tx_free: (0..TX_BUFFERS as u16).collect(),
            cqes: Vec::with_capacity(RING_ENTRIES as usize * 2),
            engine,
            start: Instant::now(),
            path,
            max_frame,
            frames: Vec::with_capacity(1024),
            vnet_len,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn io_counters(&self, port: Port) -> IoCounters {
        self.ports[port as usize].counters
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Device names and link states of the ports, for the shell.
    pub fn links(&self) -> LinkSummary {
        let state = |s: LinkState| match s {
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Gone => "gone",
        };
        LinkSummary {
            devices: [
                self.ports[0].link.name.clone(),
                self.ports[1].link.name.clone(),
            ],
            states: [state(self.ports[0].state), state(self.ports[1].state)],
            now_ms: self.now_ms(),
            io: [self.ports[0].counters, self.ports[1].counters],
        }
    }

    /// Runs until `stop` becomes true or `tick` returns false. `tick` runs every poll
    /// interval (100 ms) between batches, with the engine to itself: the admin shell
    /// runs there.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        tick: &mut dyn FnMut(&mut Engine, &LinkSummary) -> bool,
    ) -> io::Result<()> {
        let mut last_poll = Instant::now();
        let mut last_link = Instant::now();
        let timeout = types::Timespec::from(POLL_INTERVAL);
        let args = types::SubmitArgs::new().timespec(&timeout);
        while !stop.load(Ordering::Relaxed) {
            self.arm_receivers()?;
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                    ) => {}
                Err(e) => return Err(e),
            }
            self.cqes.clear();
            self.cqes.extend(self.ring.completion());
            for i in 0..self.cqes.len() {
                let cqe = self.cqes[i].clone();
                self.complete(&cqe)?;
            }
            for p in &self.ports {
                p.rx.publish();
            }
            if self.path == RxPath::Tpacket {
                self.drain_rings();
            }
            self.send_engine_frames()?;
            self.kick_rings();
            if last_poll.elapsed() >= POLL_INTERVAL {
                last_poll = Instant::now();
                let now = self.now_ms();
                self.engine.poll(now);
                let links = self.links();
                if !tick(&mut self.engine, &links) {
                    break;
                }
                self.send_engine_frames()?;
                self.kick_rings();
            }
            if last_link.elapsed() >= LINK_CHECK_INTERVAL {
                last_link = Instant::now();
                self.check_links();
            }
        }
        Ok(())
    }

    fn complete(&mut self, cqe: &cqueue::Entry) -> io::Result<()> {
        let (kind, p, out, bid) = decode(cqe.user_data());
        match kind {
            KIND_RECV if self.path == RxPath::Tpacket => {
                self.on_poll(p, out, cqe);
                Ok(())
            }
            KIND_RECV => self.on_receive(p, out, cqe),
            KIND_SEND_RX => {
                if cqe.result() < 0 {
                    self.ports[out].counters.tx_errors += 1;
                }
                self.ports[p].rx.push(bid);
                Ok(())
            }
            KIND_SEND_TX => {
                if cqe.result() < 0 {
                    self.ports[out].counters.tx_errors += 1;
                }
                self.tx_free.push(bid);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn on_receive(&mut self, p: usize, generation: usize, cqe: &cqueue::Entry) -> io::Result<()> {
        let flags = cqe.flags();
        if !cqueue::more(flags) && generation == usize::from(self.ports[p].generation) {
            self.ports[p].armed = false;
        }
        let res = cqe.result();
        let Some(bid) = cqueue::buffer_select(flags) else {
            if res < 0 && res != -libc::ENOBUFS && res != -libc::ECANCELED {
                self.ports[p].counters.rx_errors += 1;
                log::debug!(
                    "{} port: receive error {}",
                    self.ports[p].port.name(),
                    io::Error::from_raw_os_error(-res)
                );
            }
            return Ok(());
        };
        let now = self.now_ms();
        let vnet_len = self.vnet_len;
        let io = &mut self.ports[p];
        let port = io.port;
        let used = (res.max(0) as usize).min(io.rx.buf_size);
        let parsed = {
            let buf = io.rx.buf(bid);
            types::RecvMsgOut::parse(&buf[..used], &io.msghdr).map(|out| {
                (
                    socket::parse_auxdata(out.control_data()),
                    out.payload_data().len(),
                    out.is_payload_truncated(),
                )
            })
        };
        let Ok((aux, payload, truncated)) = parsed else {
            io.counters.rx_errors += 1;
            io.rx.push(bid);
            return Ok(());
        };
        let Some(len) = payload.checked_sub(vnet_len) else {
            io.counters.rx_errors += 1;
            io.rx.push(bid);
            return Ok(());
        };
        if truncated || aux.vlan {
            let reason = if aux.vlan {
                DropReason::VlanTagged
            } else {
                DropReason::FrameTooLong
            };
            self.engine.count_drop(port, reason);
            io.rx.push(bid);
            return Ok(());
        }
        let (vnet, frame_buf) = io.rx.buf(bid)[headroom()..].split_at_mut(vnet_len);
        let offload = match <&mut [u8; offload::VNET_HDR_LEN]>::try_from(vnet) {
            Ok(raw) => {
                let mut h = offload::VnetHdr::read(raw);
                let partial = h.flags & offload::F_NEEDS_CSUM != 0;
                match offload::prepare(&mut frame_buf[..len], &mut h) {
                    Ok(o) => {
                        if partial && o == Offload::NONE {
                            io.counters.csum_completed += 1;
                        }
                        io.counters.gso_frames += u64::from(o.gso_segment.is_some());
                        h.write(raw);
                        o
                    }
                    Err(offload::Unsupported) => {
                        self.engine.count_drop(port, DropReason::GsoUnsupported);
                        io.rx.push(bid);
                        return Ok(());
                    }
                }
            }
            Err(_) => {
                if aux.csum_not_ready && offload::complete_checksum(&mut frame_buf[..len]) {
                    io.counters.csum_completed += 1;
                }
                Offload::NONE
            }
        };
        let mut frame = Frame {
            buf: frame_buf,
            len,
        };
        match self
            .engine
            .process_offloaded(port, &mut frame, offload, now)
        {
            Verdict::Forward(out) => {
                let len = frame.len;
                self.send_rx(p, bid, out as usize, len)
            }
            Verdict::Reply(out) => {
                // A reply the engine wrote over the frame: no offloads.
                let len = frame.len;
                self.ports[p].rx.buf(bid)[headroom()..][..vnet_len].fill(0);
                self.send_rx(p, bid, out as usize, len)
            }
            _ => {
                self.ports[p].rx.push(bid);
                Ok(())
            }
        }
    }

    /// Sends a frame of `len` bytes (and its `virtio_net_hdr` in front, if any) from
    /// receive buffer `bid` of port `p` out of port `out`.
    fn send_rx(&mut self, p: usize, bid: u16, out: usize, len: usize) -> io::Result<()> {
        let Some(fd) = self.ports[out].socket.as_ref().map(|s| s.as_raw_fd()) else {
            self.ports[out].counters.tx_errors += 1;
            self.ports[p].rx.push(bid);
            return Ok(());
        };
        let ptr = self.ports[p].rx.buf(bid)[headroom()..].as_ptr();
        let sqe = opcode::Send::new(types::Fd(fd), ptr, (self.vnet_len + len) as u32)
            .build()
            .user_data(user_data(KIND_SEND_RX, p, out, bid));
        self.push(sqe)
    }

    /// A poll completion (`RxPath::Tpacket`): the rings are drained after every batch
    /// anyway; only a poll that ended needs noting, to re-arm it.
    fn on_poll(&mut self, p: usize, generation: usize, cqe: &cqueue::Entry) {
        if !cqueue::more(cqe.flags()) && generation == usize::from(self.ports[p].generation) {
            self.ports[p].armed = false;
        }
        let res = cqe.result();
        if res < 0 && res != -libc::ECANCELED {
            self.ports[p].counters.rx_errors += 1;
        }
    }

    /// Processes every ready receive block of both ports (`RxPath::Tpacket`).
    fn drain_rings(&mut self) {
        let now = self.now_ms();
        for p in 0..2 {
            loop {
                let mut frames = std::mem::take(&mut self.frames);
                frames.clear();
                let block = match self.ports[p].rings.as_mut() {
                    Some(r) => r.next_block(&mut frames),
                    None => None,
                };
                let Some(block) = block else {
                    self.frames = frames;
                    break;
                };
                for f in &frames {
                    self.ring_frame(p, f, now);
                }
                self.frames = frames;
                if let Some(r) = self.ports[p].rings.as_mut() {
                    r.release_block(block);
                }
                // One kick per block keeps the bursts handed to the kernel (and the
                // transmit slots in use) bounded.
                self.kick_rings();
            }
        }
    }

    /// One frame from port `p`'s receive ring: copied into the next transmit slot of
    /// the other port (where most frames leave), processed there with the slot's room,
    /// and sent from there, or moved to the right port's slot.
    fn ring_frame(&mut self, p: usize, f: &RxFrame, now: u64) {
        let port = self.ports[p].port;
        if f.truncated || f.vlan || f.len > self.max_frame {
            let reason = if f.vlan {
                DropReason::VlanTagged
            } else {
                DropReason::FrameTooLong
            };
            self.engine.count_drop(port, reason);
            return;
        }
        let o = 1 - p;
        let [a, b] = &mut self.ports;
        let (rx_io, guess) = if p == 0 { (a, b) } else { (b, a) };
        let Some(rx) = rx_io.rings.as_ref() else {
            return;
        };
        let src = rx.bytes(f.at, f.len);
        let Some(slot) = guess.rings.as_mut().and_then(Rings::tx_buf) else {
            // No free slot on the other port (or it is gone): process in a transmit
            // buffer of the engine's pool instead.
            let Some(idx) = self.tx_free.pop() else {
                self.ports[o].counters.tx_errors += 1;
                return;
            };
            let buf = &mut self.tx_bufs[usize::from(idx)];
            buf[..f.len].copy_from_slice(src);
            let verdict = process_copy(&mut self.engine, &mut rx_io.counters, port, buf, f, now);
            if let Some((out, len)) = verdict {
                let buf = &self.tx_bufs[usize::from(idx)][..len];
                ring_send(&mut self.ports[out], buf);
            }
            self.tx_free.push(idx);
            return;
        };
        if slot.len() < f.len {
            self.engine.count_drop(port, DropReason::FrameTooLong);
            return;
        }
        slot[..f.len].copy_from_slice(src);
        match process_copy(&mut self.engine, &mut rx_io.counters, port, slot, f, now) {
            Some((out, len)) if out == o => {
                if let Some(r) = guess.rings.as_mut() {
                    r.commit_tx(len);
                }
            }
            Some((out, len)) => {
                // Back out of the port it came in by (a reply, a hairpin).
                let [a, b] = &mut self.ports;
                let (to, from) = if out == 0 { (a, b) } else { (b, a) };
                match from.rings.as_mut().and_then(Rings::tx_buf) {
                    Some(slot) => ring_send(to, &slot[..len]),
                    None => to.counters.tx_errors += 1,
                }
            }
            None => {}
        }
    }

    /// Sends every transmit slot filled in this iteration (`RxPath::Tpacket`).
    fn kick_rings(&mut self) {
        for io in &mut self.ports {
            if let Some(r) = io.rings.as_mut() {
                if let Err(e) = r.kick() {
                    io.counters.tx_errors += 1;
                    log::debug!("{} port: transmit ring: {e}", io.port.name());
                }
            }
        }
    }

    /// Sends the frames the engine made (ARP/NDP requests, released packets).
    fn send_engine_frames(&mut self) -> io::Result<()> {
        if self.path == RxPath::Tpacket {
            let Some(idx) = self.tx_free.pop() else {
                return Ok(());
            };
            while let Some((port, len)) = self
                .engine
                .pop_transmit(&mut self.tx_bufs[usize::from(idx)])
            {
                let buf = &self.tx_bufs[usize::from(idx)][..len];
                ring_send(&mut self.ports[port as usize], buf);
            }
            self.tx_free.push(idx);
            return Ok(());
        }
        while let Some(idx) = self.tx_free.pop() {
            // The buffer's first `vnet_len` bytes stay zero: no offloads.
            let Some((port, len)) = self
                .engine
                .pop_transmit(&mut self.tx_bufs[usize::from(idx)][self.vnet_len..])
            else {
                self.tx_free.push(idx);
                break;
            };
            let out = port as usize;
            let Some(fd) = self.ports[out].socket.as_ref().map(|s| s.as_raw_fd()) else {
                self.ports[out].counters.tx_errors += 1;
                self.tx_free.push(idx);
                continue;
            };
            let sqe = opcode::Send::new(
                types::Fd(fd),
                self.tx_bufs[usize::from(idx)].as_ptr(),
                (self.vnet_len + len) as u32,
            )
            .build()
            .user_data(user_data(KIND_SEND_TX, out, out, idx));
            self.push(sqe)?;
        }
        Ok(())
    }

    fn arm_receivers(&mut self) -> io::Result<()> {
        for p in 0..2 {
            let io = &self.ports[p];
            let Some(fd) = io.socket.as_ref().map(|s| s.as_raw_fd()) else {
                continue;
            };
            if io.armed {
                continue;
            }
            let sqe = match self.path {
                RxPath::BufRing => {
                    opcode::RecvMsgMulti::new(types::Fd(fd), &*io.msghdr, p as u16).build()
                }
                RxPath::Tpacket => opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
                    .multi(true)
                    .build(),
            }
            .user_data(user_data(KIND_RECV, p, usize::from(io.generation), 0));
            self.push(sqe)?;
            let io = &mut self.ports[p];
            io.armed = true;
            io.counters.rearms += 1;
        }
        Ok(())
    }

    fn push(&mut self, sqe: squeue::Entry) -> io::Result<()> {
        // SAFETY: every buffer and msghdr an SQE points to lives in `self` and stays
        // put until its completion is reaped (receive buffers return to the ring only
        // then; msghdrs are boxed per port).
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
            if let Some(socket) = &io.socket {
                io.counters.socket_drops += socket.take_drops();
            }
        }
        for p in 0..2 {
            let found = link::find(&self.ports[p].spec);
            let same = matches!(&found, Ok(l) if l.index == self.ports[p].link.index);
            if !same && self.ports[p].socket.is_some() {
                self.close(p);
            }
            if self.ports[p].socket.is_none() && found.is_ok() {
                self.reopen(p);
            }
            let io = &mut self.ports[p];
            let state = match (&io.socket, link::is_running(&io.link)) {
                (None, _) => LinkState::Gone,
                (Some(_), true) => LinkState::Up,
                (Some(_), false) => LinkState::Down,
            };
            if state != io.state {
                let (name, dev) = (io.port.name(), &io.link.name);
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

    /// Stops receiving on port `p` and closes its socket.
    fn close(&mut self, p: usize) {
        let io = &mut self.ports[p];
        if io.armed {
            let cancel =
                opcode::AsyncCancel::new(user_data(KIND_RECV, p, usize::from(io.generation), 0))
                    .build()
                    .user_data(user_data(KIND_CANCEL, p, p, 0));
            // SAFETY: a cancel SQE points at no memory. If the queue is full the old
            // receive simply ends with an error on the closed socket.
            let _ = unsafe { self.ring.submission().push(&cancel) };
        }
        io.rings = None;
        io.socket = None;
        io.armed = false;
        // Completions of the old receive must not touch the new one's state.
        io.generation = io.generation.wrapping_add(1);
    }

    fn reopen(&mut self, p: usize) -> bool {
        let (path, max_frame, vnet) = (self.path, self.max_frame, self.vnet_len > 0);
        let io = &mut self.ports[p];
        let result = link::find(&io.spec).and_then(|l| {
            link::prepare(&l, io.mtu, vnet)?;
            let s = PacketSocket::open(l.index, vnet)?;
            let rings = match path {
                RxPath::BufRing => None,
                RxPath::Tpacket => Some(Rings::new(&s, max_frame)?),
            };
            Ok((l, s, rings))
        });
        match result {
            Ok((l, s, rings)) => {
                if l.mac != io.link.mac {
                    log::warn!(
                        "{} port: interface returned with a new MAC {}; restart natbox to use it",
                        io.port.name(),
                        l.mac
                    );
                }
                io.link = l;
                io.socket = Some(s);
                io.rings = rings;
                let port = io.port;
                // A new link: the neighbours behind it may have new MACs.
                self.engine.link_replaced(port);
                true
            }
            Err(e) => {
                log::debug!("{} port: not back yet: {e}", io.port.name());
                false
            }
        }
    }
}

/// Completes the checksum of a received frame copied into `buf` and runs it through
/// the engine: the port and length to send, if any.
fn process_copy(
    engine: &mut Engine,
    counters: &mut IoCounters,
    port: Port,
    buf: &mut [u8],
    f: &RxFrame,
    now: u64,
) -> Option<(usize, usize)> {
    if f.csum_not_ready && offload::complete_checksum(&mut buf[..f.len]) {
        counters.csum_completed += 1;
    }
    let mut frame = Frame { buf, len: f.len };
    match engine.process(port, &mut frame, now) {
        Verdict::Forward(out) | Verdict::Reply(out) => Some((out as usize, frame.len)),
        _ => None,
    }
}

/// Copies `frame` into the next transmit slot of `io` (`RxPath::Tpacket`).
fn ring_send(io: &mut PortIo, frame: &[u8]) {
    match io.rings.as_mut().and_then(|r| {
        let slot = r.tx_buf()?;
        let to = slot.get_mut(..frame.len())?;
        to.copy_from_slice(frame);
        Some(r)
    }) {
        Some(r) => r.commit_tx(frame.len()),
        None => io.counters.tx_errors += 1,
    }
}

fn annotate(port: Port, name: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{} port {name}: {e}", port.name()))
}
