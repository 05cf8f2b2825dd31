//! The mapped packet rings of a port's AF_PACKET sockets (packet_mmap, see the
//! kernel's Documentation/networking/packet_mmap.rst and net/packet/af_packet.c):
//! `PACKET_RX_RING` on the receiving socket, `PACKET_TX_RING` on the sending one, both
//! `TPACKET_V2`, both with `PACKET_VNET_HDR` (each frame has its `virtio_net_hdr` just
//! in front of it).
//!
//! Receive (`RxRing`, `tpacket_rcv`): the kernel copies each frame, in softirq,
//! straight into the next slot of the ring and marks the slot `TP_STATUS_USER`; natbox
//! processes the frame in place and gives the slot back (`TP_STATUS_KERNEL`). No system
//! call, socket queueing or completion per received frame. `TPACKET_V2` and not V3:
//! V2 hands over every frame as soon as it is written (and wakes the poller), while V3
//! hands over whole blocks, when full or after a timeout of at least 1 ms, which added a
//! millisecond to every round trip at low rates.
//!
//! Slots are fixed-size and sized for wire frames (`slot_size`), with room behind the
//! frame for an ICMP error built in place. A frame larger than a slot (a GSO
//! super-frame, up to 64 KiB) does not fit: with `PACKET_COPY_THRESH` set the kernel
//! puts a truncated copy in the slot, flagged `TP_STATUS_COPY`, and queues the whole
//! frame on the socket's ordinary receive queue, where `recv` reads it, in ring order.
//! That keeps the ring small (4096 slots of 2 KiB per port) while super-frames still
//! arrive whole.
//!
//! Transmit (`TxRing`, `tpacket_snd`): natbox copies a frame into the next free slot
//! and marks it `TP_STATUS_SEND_REQUEST`; one `send` with no data then has the kernel
//! transmit every requested slot, in order, so a batch of frames costs one system call
//! and no completions. The kernel marks a slot `TP_STATUS_AVAILABLE` again when the skb
//! it made is freed. Each frame's `hdr_len` is raised to the frame's length, so the
//! kernel copies the whole frame into the skb: with the default (only the link header
//! copied) it attaches the slot's pages to the skb instead and frees the slot when the
//! skb is orphaned, which on a veth peer happens at IP input, while a socket queue there
//! can still hold the pages; a reused slot would then change bytes a receiver has not
//! read yet. `PACKET_LOSS` is set, so a frame the kernel refuses is skipped, not left
//! to block the ring (`TP_STATUS_WRONG_FORMAT`).
//!
//! A frame the device layer drops (`NET_XMIT_DROP`) is not skipped: `tpacket_snd`
//! hands its slot back as still requested and stops there, so the same frame is tried
//! at every flush, and the `ENOBUFS` looks like a full driver queue. A frame that has
//! been first in line for `STALL_LIMIT` (1 s) without the kernel taking it is
//! discarded: its length is set to 0, which the kernel's parser refuses, so
//! `PACKET_LOSS` skips it at the next flush; `flush` reports it (`TimedOut`) for the
//! caller to count. A driver queue that stays full for a second loses one frame a
//! second this way; a frame the device can never take (the old GSO super-frame on a
//! port without TSO) no longer blocks the ring for good.
//!
//! A frame does not leave from the receive slot it arrived in because the kernel sends
//! only from its transmit ring; the copy from one to the other is the price of
//! batching, and frees the receive slot at once.

use super::socket::PacketSocket;
use crate::wire::offload::{VnetHdr, VNET_HDR_LEN};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `TPACKET_V2`.
const TPACKET_V2: libc::c_int = 1;
/// Memory for one port's receive ring.
const RX_MEMORY: usize = 8 << 20;
/// Memory for one port's transmit ring.
const TX_MEMORY: usize = 4 << 20;
/// Memory one worker's rings of one port take.
pub const PORT_MEMORY: usize = RX_MEMORY + TX_MEMORY;
/// Bytes per ring block (each holds whole slots).
const BLOCK_SIZE: usize = 1 << 16;

// Offsets in `struct tpacket2_hdr`.
const H2_STATUS: usize = 0;
const H2_LEN: usize = 4;
const H2_SNAPLEN: usize = 8;
const H2_MAC: usize = 12;
/// Bytes in front of a received frame in a slot: the `tpacket2_hdr`, the `sockaddr_ll`
/// the kernel fills in, its alignment, and the `virtio_net_hdr` (`tpacket_rcv`'s
/// `macoff` is `TPACKET_ALIGN(52 + 16) + 10 - 14` = 76 for Ethernet).
const SLOT_HEADROOM: usize = 128;
/// Where a frame to send starts in a transmit slot (its `virtio_net_hdr` first):
/// `TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)`, `tpacket_parse_header`.
const TX_DATA: usize = 32;

const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;
/// How long a frame may stay first in line in a transmit ring (module doc).
const STALL_LIMIT: Duration = Duration::from_secs(1);

/// `struct tpacket_req`.
#[repr(C)]
struct Req {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
}

/// Slot size for frames of up to `max_frame` bytes (a power of two).
pub fn slot_size(max_frame: usize) -> usize {
    (SLOT_HEADROOM + max_frame).next_power_of_two().max(2048)
}

/// One mapped ring: `slots` slots of `slot_size` bytes, each starting with its
/// `tpacket2_hdr`.
#[derive(Debug)]
struct Mapping {
    map: *mut u8,
    map_len: usize,
    slot_size: usize,
    slots: u16,
}

// SAFETY: `map` is a mapping this value owns alone (unmapped on drop); its slots are
// shared only with the kernel, through the status words, whichever thread holds the
// value. Moving it to another thread (a worker's, `threads`) moves that ownership.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Switches `socket` to TPACKET_V2, sets up the ring `which` (`PACKET_RX_RING` or
    /// `PACKET_TX_RING`) in about `memory` bytes of slots for frames of up to
    /// `max_frame` bytes, and maps it.
    fn new(
        socket: &PacketSocket,
        which: libc::c_int,
        memory: usize,
        max_frame: usize,
    ) -> io::Result<Self> {
        socket.set(libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V2)?;
        let slot_size = slot_size(max_frame);
        let block_size = BLOCK_SIZE.max(slot_size);
        let blocks = (memory / block_size).max(1);
        let slots = (block_size / slot_size * blocks).min(usize::from(u16::MAX));
        let req = Req {
            block_size: block_size as u32,
            block_nr: blocks as u32,
            frame_size: slot_size as u32,
            frame_nr: slots as u32,
        };
        socket.set(libc::SOL_PACKET, which, &req)?;
        let map_len = block_size * blocks;
        // SAFETY: a fresh shared mapping of the socket's one ring; the result is
        // checked.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                socket.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            map: map.cast(),
            map_len,
            slot_size,
            slots: slots as u16,
        })
    }

    /// Slot `slot`'s offset in the mapping (slots never straddle blocks: the block size
    /// is a multiple of the slot size).
    fn base(&self, slot: u16) -> usize {
        usize::from(slot) * self.slot_size
    }

    fn status(&self, slot: u16) -> &AtomicU32 {
        let at = self.base(slot) + H2_STATUS;
        debug_assert!(at + 4 <= self.map_len);
        // SAFETY: a 4-aligned status word inside the mapping, which lives as long as
        // `self`; the kernel updates it concurrently, hence the atomic.
        unsafe { &*self.map.add(at).cast::<AtomicU32>() }
    }

    fn read_u32(&self, at: usize) -> u32 {
        debug_assert!(at + 4 <= self.map_len);
        // SAFETY: inside the mapping; only read while the slot is ours (after an
        // acquire load of its status).
        unsafe { self.map.add(at).cast::<u32>().read_volatile() }
    }

    /// The whole of slot `slot`. Only for a slot that is ours now (its status says
    /// so), so the kernel does not touch it; the borrow of `self` keeps it unique.
    fn slot_mut(&mut self, slot: u16) -> &mut [u8] {
        let base = self.base(slot);
        assert!(base + self.slot_size <= self.map_len);
        // SAFETY: in bounds; see above.
        unsafe { std::slice::from_raw_parts_mut(self.map.add(base), self.slot_size) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; nothing borrows it (every
        // slice into it borrows `self`).
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}

/// One received frame in a ring slot, as the kernel described it.
#[derive(Debug, Clone, Copy)]
pub struct RxFrame {
    /// The slot's index.
    pub slot: u16,
    /// Offset of the frame's first byte in the slot.
    pub at: usize,
    /// Bytes in the slot (`tp_snaplen`).
    pub len: usize,
    /// The frame did not fit the slot (`tp_len > tp_snaplen`).
    pub truncated: bool,
    /// The whole frame waits on the socket's receive queue (`TP_STATUS_COPY`).
    pub copied: bool,
    /// The NIC stripped an 802.1Q tag (`TP_STATUS_VLAN_VALID`).
    pub vlan: bool,
}

/// The mapped receive ring of one socket.
#[derive(Debug)]
pub struct RxRing {
    ring: Mapping,
    /// Next slot to look at.
    head: u16,
}

impl RxRing {
    /// Maps a receive ring on `socket` (already carrying `PACKET_VNET_HDR`) whose slots
    /// hold frames of up to `max_frame` bytes with room to grow; larger frames are
    /// queued whole on the socket (`TP_STATUS_COPY`).
    pub fn new(socket: &PacketSocket, max_frame: usize) -> io::Result<RxRing> {
        socket.set(libc::SOL_PACKET, libc::PACKET_COPY_THRESH, &1i32)?;
        let ring = Mapping::new(socket, libc::PACKET_RX_RING, RX_MEMORY, max_frame)?;
        Ok(RxRing { ring, head: 0 })
    }

    pub fn slots(&self) -> u16 {
        self.ring.slots
    }

    pub fn slot_size(&self) -> usize {
        self.ring.slot_size
    }

    /// The next frame the kernel handed over, if any. Its slot stays ours until
    /// `release`.
    pub fn take(&mut self) -> Option<RxFrame> {
        let slot = self.head;
        let status = self.ring.status(slot).load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return None;
        }
        self.head = (slot + 1) % self.ring.slots;
        let base = self.ring.base(slot);
        let len = self.ring.read_u32(base + H2_LEN) as usize;
        let snaplen = self.ring.read_u32(base + H2_SNAPLEN) as usize;
        let mac = self.ring.read_u32(base + H2_MAC) as usize & 0xffff;
        // A frame the kernel placed outside its slot (it never does) reads as empty.
        let (at, snaplen) = if mac + snaplen <= self.ring.slot_size {
            (mac, snaplen)
        } else {
            (self.ring.slot_size, 0)
        };
        Some(RxFrame {
            slot,
            at,
            len: snaplen,
            truncated: snaplen < len,
            copied: status & libc::TP_STATUS_COPY != 0,
            vlan: status & libc::TP_STATUS_VLAN_VALID != 0,
        })
    }

    /// Whether the kernel has handed over the next slot.
    pub fn has_next(&self) -> bool {
        self.ring.status(self.head).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// The whole of slot `slot` (the frame sits at its `RxFrame::at`), taken and not
    /// released yet.
    pub fn slot_mut(&mut self, slot: u16) -> &mut [u8] {
        self.ring.slot_mut(slot)
    }

    /// Gives slot `slot` back to the kernel.
    pub fn release(&self, slot: u16) {
        self.ring
            .status(slot)
            .store(TP_STATUS_KERNEL, Ordering::Release);
    }
}

/// A sending socket and its mapped transmit ring.
#[derive(Debug)]
pub struct TxRing {
    // Unmapped before the socket closes.
    ring: Mapping,
    socket: PacketSocket,
    /// Next slot to fill.
    head: u16,
    /// Slots were requested that the kernel has not taken yet.
    unsent: bool,
    /// The first slot requested and not seen taken yet (meaningful while `unsent`).
    oldest: u16,
    /// Since when `oldest` has waited, across flushes that did not take it.
    stalled_since: Option<Instant>,
}

impl TxRing {
    /// Maps a transmit ring on `socket` (a sending socket carrying `PACKET_VNET_HDR`)
    /// for frames of up to `max_frame` bytes.
    pub fn new(socket: PacketSocket, max_frame: usize) -> io::Result<TxRing> {
        socket.set(libc::SOL_PACKET, libc::PACKET_LOSS, &1i32)?;
        let ring = Mapping::new(&socket, libc::PACKET_TX_RING, TX_MEMORY, max_frame)?;
        Ok(TxRing {
            ring,
            socket,
            head: 0,
            unsent: false,
            oldest: 0,
            stalled_since: None,
        })
    }

    /// Copies `bytes` (a `virtio_net_hdr`, then the frame) into the next slot and
    /// requests its transmission at the next `flush`; false if that slot is still
    /// waiting to be sent or still held by the kernel (the ring is full), or the frame
    /// does not fit a slot.
    pub fn request(&mut self, bytes: &[u8]) -> bool {
        let slot = self.head;
        if self.ring.status(slot).load(Ordering::Acquire) != TP_STATUS_AVAILABLE
            || bytes.len() < VNET_HDR_LEN
            || TX_DATA + bytes.len() > self.ring.slot_size
        {
            return false;
        }
        let buf = self.ring.slot_mut(slot);
        buf[H2_LEN..H2_LEN + 4].copy_from_slice(&(bytes.len() as u32).to_ne_bytes());
        let data = &mut buf[TX_DATA..TX_DATA + bytes.len()];
        data.copy_from_slice(bytes);
        let (vnet, frame) = data.split_at_mut(VNET_HDR_LEN);
        let vnet: &mut [u8; VNET_HDR_LEN] = vnet.try_into().expect("VNET_HDR_LEN bytes");
        let mut h = VnetHdr::read(vnet);
        // The whole frame is copied into the skb (module doc).
        h.hdr_len = frame.len() as u16;
        h.write(vnet);
        self.ring
            .status(slot)
            .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
        if !self.unsent {
            self.oldest = slot;
        }
        self.head = (slot + 1) % self.ring.slots;
        self.unsent = true;
        true
    }

    /// The sending socket's descriptor (for the tests, which break it).
    #[cfg(test)]
    pub fn socket_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }

    /// Whether requested slots wait for a `flush` (for the tests; `flush` checks it
    /// itself).
    #[cfg(test)]
    pub fn has_unsent(&self) -> bool {
        self.unsent
    }

    /// Has the kernel transmit every requested slot, in order: one `send` with no data.
    /// Slots it cannot take now (socket buffer full) stay requested and go with the
    /// next flush; a frame first in line for `STALL_LIMIT` is discarded and reported as
    /// `TimedOut` (module doc).
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.unsent {
            return Ok(());
        }
        // SAFETY: a send of no bytes; the kernel reads the mapped ring instead.
        let r = unsafe {
            libc::send(
                self.socket.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
            )
        };
        let failed = (r < 0).then(io::Error::last_os_error);
        // The kernel takes slots in order: if it took the last one requested, it took
        // them all.
        let last = (self.head + self.ring.slots - 1) % self.ring.slots;
        self.unsent = self.ring.status(last).load(Ordering::Acquire) == TP_STATUS_SEND_REQUEST;
        if !self.unsent {
            self.stalled_since = None;
        } else if self.stalled() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "a frame the kernel did not take for a second was discarded",
            ));
        }
        failed.map_or(Ok(()), Err)
    }

    /// After a flush that left slots requested: moves `oldest` past the slots the
    /// kernel took and, if it took none for `STALL_LIMIT`, discards the first in line
    /// (module doc) and says so.
    fn stalled(&mut self) -> bool {
        let before = self.oldest;
        // Bounded: the last requested slot is still requested, so the walk stops there.
        while self.ring.status(self.oldest).load(Ordering::Acquire) != TP_STATUS_SEND_REQUEST
            && self.oldest != self.head
        {
            self.oldest = (self.oldest + 1) % self.ring.slots;
        }
        let now = Instant::now();
        let since = match self.stalled_since {
            Some(t) if self.oldest == before => t,
            _ => {
                self.stalled_since = Some(now);
                return false;
            }
        };
        if now.duration_since(since) < STALL_LIMIT {
            return false;
        }
        // The slot is requested and the kernel is not in a send: nothing reads it now.
        self.ring.slot_mut(self.oldest)[H2_LEN..H2_LEN + 4].copy_from_slice(&0u32.to_ne_bytes());
        self.stalled_since = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::testnet::{index, private_netns, run};

    /// A `virtio_net_hdr` (no offloads) and a 60-byte frame numbered `n`, of a local
    /// experimental EtherType, for no one.
    fn frame(n: u16) -> Vec<u8> {
        let mut b = vec![0u8; VNET_HDR_LEN];
        b.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0xb5]);
        b.extend_from_slice(&n.to_be_bytes());
        b.extend((0..44).map(|i| (i as u8).wrapping_mul(n as u8)));
        b
    }

    /// The frames `rx` receives within a second, at most `want`.
    fn receive(rx: &mut RxRing, want: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for _ in 0..100 {
            while let Some(f) = rx.take() {
                got.push(rx.slot_mut(f.slot)[f.at..f.at + f.len].to_vec());
                rx.release(f.slot);
            }
            if got.len() >= want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        got
    }

    #[test]
    fn transmit_ring_sends_requested_frames_whole_and_in_order() {
        let lo = private_netns();
        let listener = PacketSocket::open(lo).unwrap();
        let mut rx = RxRing::new(&listener, 1514).unwrap();
        let mut tx = TxRing::new(PacketSocket::open_sender(lo).unwrap(), 1514).unwrap();
        assert!(!tx.has_unsent());
        for n in 0..3 {
            assert!(tx.request(&frame(n)));
        }
        assert!(tx.has_unsent());
        assert!(
            receive(&mut rx, 1).is_empty(),
            "nothing leaves before the flush"
        );
        tx.flush().unwrap();
        assert!(!tx.has_unsent());
        let got = receive(&mut rx, 3);
        let want: Vec<Vec<u8>> = (0..3).map(|n| frame(n)[VNET_HDR_LEN..].to_vec()).collect();
        assert_eq!(got, want);
    }

    /// A TCP/IPv4 GSO super-frame (400 bytes of payload in segments of 100) with its
    /// `virtio_net_hdr`.
    fn gso_frame() -> Vec<u8> {
        let h = VnetHdr {
            flags: crate::wire::offload::F_NEEDS_CSUM,
            gso_type: crate::wire::offload::GSO_TCPV4,
            hdr_len: 54,
            gso_size: 100,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut b = [0u8; VNET_HDR_LEN];
        h.write(&mut b);
        let mut f = b.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0x01, 0xb8, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff,
        ]);
        f.extend_from_slice(&[0; 4]);
        f.extend(std::iter::repeat_n(0x5a, 400));
        f
    }

    /// The silent endless retry: a frame the device layer drops at every flush (a GSO
    /// super-frame on a veth without TSO, which `__dev_direct_xmit` refuses) used to
    /// stay first in line for good, with every frame behind it; now it is discarded
    /// after `STALL_LIMIT`, reported, and the frames behind it leave.
    #[test]
    fn a_frame_the_device_drops_is_discarded_after_a_second_not_retried_forever() {
        private_netns();
        for args in [
            &[
                "ip", "link", "add", "txa", "type", "veth", "peer", "name", "txb",
            ][..],
            &[
                "ethtool", "-K", "txa", "tx", "off", "tso", "off", "gso", "off",
            ],
            &["ip", "link", "set", "txa", "up"],
            &["ip", "link", "set", "txb", "up"],
        ] {
            run(args);
        }
        let listener = PacketSocket::open(index("txb")).unwrap();
        let mut rx = RxRing::new(&listener, 1514).unwrap();
        let mut tx = TxRing::new(PacketSocket::open_sender(index("txa")).unwrap(), 1514).unwrap();
        assert!(tx.request(&gso_frame()));
        assert!(tx.request(&frame(7)));
        let start = Instant::now();
        let mut discarded = None;
        while discarded.is_none() && start.elapsed() < 3 * STALL_LIMIT {
            if let Err(e) = tx.flush() {
                if e.kind() == io::ErrorKind::TimedOut {
                    discarded = Some(start.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let after = discarded.expect("the refused frame is discarded");
        assert!(after >= STALL_LIMIT, "not before a second: {after:?}");
        assert!(tx.has_unsent(), "frame 7 still waits behind it");
        tx.flush().unwrap();
        let got = receive(&mut rx, 1);
        assert!(got.contains(&frame(7)[VNET_HDR_LEN..].to_vec()), "{got:?}");
        assert!(!tx.has_unsent());
    }

    #[test]
    fn a_full_transmit_ring_refuses_frames_until_flushed() {
        let lo = private_netns();
        let mut tx = TxRing::new(PacketSocket::open_sender(lo).unwrap(), 1514).unwrap();
        let slots = tx.ring.slots;
        assert_eq!(usize::from(slots), TX_MEMORY / 2048);
        for n in 0..slots {
            assert!(tx.request(&frame(n)), "slot {n}");
        }
        assert!(!tx.request(&frame(0)), "every slot waits to be sent");
        tx.flush().unwrap();
        // lo frees each skb as it sends it, which hands its slot back.
        assert!(tx.request(&frame(0)));
        assert!(
            !tx.request(&vec![0u8; tx.ring.slot_size]),
            "larger than a slot"
        );
        assert!(!tx.request(&[0u8; VNET_HDR_LEN - 1]), "no virtio_net_hdr");
    }
}
