//! The mapped receive path: `PACKET_RX_RING` with `TPACKET_V2` on a port's AF_PACKET
//! socket (packet_mmap, see the kernel's Documentation/networking/packet_mmap.rst and
//! net/packet/af_packet.c `tpacket_rcv`), selected with `NATBOX_RX=tpacket`.
//!
//! The kernel copies each frame, in softirq, straight into the next slot of a ring
//! mapped into natbox and marks the slot `TP_STATUS_USER`; natbox processes the frame
//! in place and gives the slot back (`TP_STATUS_KERNEL`). No system call, socket
//! queueing or completion per received frame. `TPACKET_V2` and not V3: V2 hands over
//! every frame as soon as it is written (and wakes the poller), while V3 hands over
//! whole blocks, when full or after a timeout of at least 1 ms, which added a
//! millisecond to every round trip at low rates.
//!
//! Slots are fixed-size and sized for wire frames (`slot_size`), with room behind the
//! frame for an ICMP error built in place. The socket carries `PACKET_VNET_HDR`: the
//! kernel writes the frame's `virtio_net_hdr` just in front of it, so partial
//! checksums and GSO metadata arrive as on the other path. A frame larger than a slot
//! (a GSO super-frame, up to 64 KiB) does not fit: with `PACKET_COPY_THRESH` set the
//! kernel puts a truncated copy in the slot, flagged `TP_STATUS_COPY`, and queues the
//! whole frame on the socket's ordinary receive queue, where `recv` reads it, in ring
//! order. That keeps the ring small (4096 slots of 2 KiB per port) while super-frames
//! still arrive whole.
//!
//! Transmit is not mapped: a `PACKET_TX_RING` attaches the slot's pages to the skb
//! without copying and hands the slot back when the skb is orphaned, which on a veth
//! peer happens at IP input, while a socket queue there can still hold the pages; a
//! reused slot would then change bytes a receiver has not read yet. Frames leave with
//! ordinary sends (one copy), from the slot they arrived in.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// `TPACKET_V2`.
const TPACKET_V2: libc::c_int = 1;
/// Memory for one port's receive ring.
const RX_MEMORY: usize = 8 << 20;
/// Bytes per ring block (each holds whole slots).
const BLOCK_SIZE: usize = 1 << 16;

// Offsets in `struct tpacket2_hdr`.
const H2_STATUS: usize = 0;
const H2_LEN: usize = 4;
const H2_SNAPLEN: usize = 8;
const H2_MAC: usize = 12;
/// Bytes in front of the frame in a slot: the `tpacket2_hdr`, the `sockaddr_ll` the
/// kernel fills in, its alignment, and the `virtio_net_hdr` (`tpacket_rcv`'s `macoff`
/// is `TPACKET_ALIGN(52 + 16) + 10 - 14` = 76 for Ethernet).
const SLOT_HEADROOM: usize = 128;

/// `struct tpacket_req`.
#[repr(C)]
struct Req {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
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
    map: *mut u8,
    map_len: usize,
    slot_size: usize,
    slots: u16,
    /// Next slot to look at.
    head: u16,
}

/// Slot size for frames of up to `max_frame` bytes (a power of two).
pub fn slot_size(max_frame: usize) -> usize {
    (SLOT_HEADROOM + max_frame).next_power_of_two().max(2048)
}

fn setsockopt<T>(fd: RawFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a live T of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl RxRing {
    /// Switches `socket` (already carrying `PACKET_VNET_HDR`) to TPACKET_V2 and maps a
    /// receive ring whose slots hold frames of up to `max_frame` bytes with room to
    /// grow; larger frames are queued whole on the socket (`TP_STATUS_COPY`).
    pub fn new(socket: &impl AsRawFd, max_frame: usize) -> io::Result<RxRing> {
        let fd = socket.as_raw_fd();
        setsockopt(fd, libc::PACKET_VERSION, &TPACKET_V2)?;
        setsockopt(fd, libc::PACKET_COPY_THRESH, &1i32)?;
        let slot_size = slot_size(max_frame);
        let block_size = BLOCK_SIZE.max(slot_size);
        let blocks = (RX_MEMORY / block_size).max(1);
        let slots = (block_size / slot_size * blocks).min(usize::from(u16::MAX));
        let req = Req {
            block_size: block_size as u32,
            block_nr: blocks as u32,
            frame_size: slot_size as u32,
            frame_nr: slots as u32,
        };
        setsockopt(fd, libc::PACKET_RX_RING, &req)?;
        let map_len = block_size * blocks;
        // SAFETY: a fresh shared mapping of the socket's receive ring; the result is
        // checked.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(RxRing {
            map: map.cast(),
            map_len,
            slot_size,
            slots: slots as u16,
            head: 0,
        })
    }

    pub fn slots(&self) -> u16 {
        self.slots
    }

    pub fn slot_size(&self) -> usize {
        self.slot_size
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
        // SAFETY: inside the mapping; only read after the slot was handed to us
        // (acquire load of its status).
        unsafe { self.map.add(at).cast::<u32>().read_volatile() }
    }

    /// The next frame the kernel handed over, if any. Its slot stays ours until
    /// `release`.
    pub fn take(&mut self) -> Option<RxFrame> {
        let slot = self.head;
        let status = self.status(slot).load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return None;
        }
        self.head = (slot + 1) % self.slots;
        let base = self.base(slot);
        let len = self.read_u32(base + H2_LEN) as usize;
        let snaplen = self.read_u32(base + H2_SNAPLEN) as usize;
        let mac = self.read_u32(base + H2_MAC) as usize & 0xffff;
        // A frame the kernel placed outside its slot (it never does) reads as empty.
        let (at, snaplen) = if mac + snaplen <= self.slot_size {
            (mac, snaplen)
        } else {
            (self.slot_size, 0)
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
        self.status(self.head).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// The whole of slot `slot` (the frame sits at its `RxFrame::at`).
    pub fn slot_mut(&mut self, slot: u16) -> &mut [u8] {
        let base = self.base(slot);
        assert!(base + self.slot_size <= self.map_len);
        // SAFETY: in bounds; the slot was handed to us (`take`) and is not released
        // yet, so the kernel does not write it; the borrow of `self` keeps it unique.
        unsafe { std::slice::from_raw_parts_mut(self.map.add(base), self.slot_size) }
    }

    /// Gives slot `slot` back to the kernel.
    pub fn release(&self, slot: u16) {
        self.status(slot).store(TP_STATUS_KERNEL, Ordering::Release);
    }
}

const TP_STATUS_KERNEL: u32 = 0;

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; nothing borrows it (every
        // slice into it borrows `self`).
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}
