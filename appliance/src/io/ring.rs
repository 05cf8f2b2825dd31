//! The alternative receive/transmit path: `PACKET_RX_RING` and `PACKET_TX_RING` with
//! `TPACKET_V3` on a port's AF_PACKET socket (packet_mmap, see the kernel's
//! Documentation/networking/packet_mmap.rst), selected with `NATBOX_RX=tpacket` (the
//! default is the io_uring buffer-ring path, `dataplane.rs`).
//!
//! No offloads here: the socket has no `PACKET_VNET_HDR` and slots hold wire-sized
//! frames, so a GSO super-frame is dropped (`frame_too_long`) and senders must not use
//! TSO/GSO towards a port on this path (GRO is off on its ports); a partial checksum
//! (`TP_STATUS_CSUMNOTREADY`) is completed in software.
//!
//! Receive: the kernel copies frames into blocks of one mmap'd ring and hands a whole
//! block to user space when it is full or after `RX_BLOCK_TIMEOUT_MS`
//! (`TP_STATUS_USER` in the block header). The dataplane learns about ready blocks from
//! a multishot io_uring `PollAdd` (POLLIN) on the socket, walks each ready block and
//! gives it back (`TP_STATUS_KERNEL`). No system call or completion per frame.
//!
//! Transmit: fixed-size slots of a second ring, filled in order and marked
//! `TP_STATUS_SEND_REQUEST`; one `send(fd, NULL, 0, MSG_DONTWAIT)` per port and loop
//! iteration makes the kernel send every pending slot.
//!
//! Frames in a V3 receive block are packed back to back, so a frame there has no room
//! to grow into (an ICMP error built in place reaches 14 + 576 or 14 + 1280 bytes).
//! The dataplane therefore copies each received frame once, into the next free transmit
//! slot of the port it most likely leaves by, and the engine works in that slot (which
//! has the room); the slot is then either sent, or reused for the next frame.
//!
//! With a transmit ring on a socket every `sendmsg` on it sends ring slots, so the
//! frames the engine makes itself go through the ring too.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

const TPACKET_V3: libc::c_int = 2;
/// Bytes per receive block and number of blocks (4 MiB per port, like the socket
/// buffers of the other path).
const RX_BLOCK_SIZE: u32 = 1 << 16;
const RX_BLOCKS: u32 = 64;
/// A block is handed over at the latest this long after its first frame arrived.
const RX_BLOCK_TIMEOUT_MS: u32 = 1;
/// Transmit slots per port.
const TX_FRAMES: u32 = 1024;

// Offsets in `struct tpacket_block_desc` (version, offset_to_priv, then
// `tpacket_hdr_v1`).
const BD_STATUS: usize = 8;
const BD_NUM_PKTS: usize = 12;
const BD_FIRST: usize = 16;
// Offsets in `struct tpacket3_hdr` (48 bytes).
const H3_NEXT: usize = 0;
const H3_SNAPLEN: usize = 12;
const H3_LEN: usize = 16;
const H3_STATUS: usize = 20;
const H3_MAC: usize = 24;
/// `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`: where a transmit slot's frame starts
/// (`tp_hdrlen - sizeof(struct sockaddr_ll)`, the kernel's default offset).
pub const TX_DATA: usize = 48;

const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;
const TP_STATUS_WRONG_FORMAT: u32 = 4;

/// `struct tpacket_req3`.
#[repr(C)]
struct Req3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

/// One received frame in a ring block, as the kernel described it.
#[derive(Debug, Clone, Copy)]
pub struct RxFrame {
    /// Offset of the frame's first byte in the mapping.
    pub at: usize,
    /// Bytes captured (`tp_snaplen`).
    pub len: usize,
    /// `tp_len < tp_snaplen`: the frame did not fit a block.
    pub truncated: bool,
    pub csum_not_ready: bool,
    pub vlan: bool,
}

/// The mapped rings of one socket.
#[derive(Debug)]
pub struct Rings {
    /// The socket's descriptor, for kicks; the owner drops the rings before closing it.
    fd: RawFd,
    map: *mut u8,
    map_len: usize,
    /// Next receive block to look at.
    rx_block: u32,
    tx_base: usize,
    tx_frame_size: usize,
    /// Next transmit slot to fill, in ring order.
    tx_head: u32,
    /// Slots marked for sending since the last kick.
    pub tx_pending: u32,
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

impl Rings {
    /// Switches `socket` to TPACKET_V3 and maps a receive and a transmit ring whose
    /// slots hold frames of up to `max_frame` bytes.
    pub fn new(socket: &impl AsRawFd, max_frame: usize) -> io::Result<Rings> {
        let fd = socket.as_raw_fd();
        setsockopt(fd, libc::PACKET_VERSION, &TPACKET_V3)?;
        // A slot the kernel refuses (bad length) is skipped rather than left marked
        // TP_STATUS_WRONG_FORMAT at the kernel's head, which would stall the ring.
        setsockopt(fd, libc::PACKET_LOSS, &1i32)?;
        let rx = Req3 {
            block_size: RX_BLOCK_SIZE.max((TX_DATA + max_frame + 64).next_power_of_two() as u32),
            block_nr: RX_BLOCKS,
            frame_size: 2048,
            frame_nr: 0,
            retire_blk_tov: RX_BLOCK_TIMEOUT_MS,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        let rx = Req3 {
            frame_nr: rx.block_size / rx.frame_size * rx.block_nr,
            ..rx
        };
        setsockopt(fd, libc::PACKET_RX_RING, &rx)?;
        let frame_size = (TX_DATA + max_frame).next_power_of_two().max(2048) as u32;
        let block_size = frame_size.max(4096);
        let tx = Req3 {
            block_size,
            block_nr: TX_FRAMES / (block_size / frame_size),
            frame_size,
            frame_nr: TX_FRAMES,
            retire_blk_tov: 0,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        setsockopt(fd, libc::PACKET_TX_RING, &tx)?;
        let tx_base = (rx.block_size * rx.block_nr) as usize;
        let map_len = tx_base + (tx.block_size * tx.block_nr) as usize;
        // SAFETY: a fresh shared mapping of the socket's rings (receive ring first, then
        // the transmit ring, as packet_mmap requires); the result is checked.
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
        Ok(Rings {
            fd,
            map: map.cast(),
            map_len,
            rx_block: 0,
            tx_base,
            tx_frame_size: frame_size as usize,
            tx_head: 0,
            tx_pending: 0,
        })
    }

    fn status(&self, at: usize) -> &AtomicU32 {
        debug_assert!(at + 4 <= self.map_len && at.is_multiple_of(4));
        // SAFETY: `at` is a 4-aligned status word inside the mapping, which lives as
        // long as `self`; the kernel updates it concurrently, hence the atomic.
        unsafe { &*self.map.add(at).cast::<AtomicU32>() }
    }

    fn read_u32(&self, at: usize) -> u32 {
        debug_assert!(at + 4 <= self.map_len);
        // SAFETY: inside the mapping; only read after the owning block or slot was
        // handed to us (acquire load of its status).
        unsafe { self.map.add(at).cast::<u32>().read_volatile() }
    }

    fn read_u16(&self, at: usize) -> u16 {
        debug_assert!(at + 2 <= self.map_len);
        // SAFETY: as in `read_u32`.
        unsafe { self.map.add(at).cast::<u16>().read_volatile() }
    }

    fn write_u32(&mut self, at: usize, v: u32) {
        debug_assert!(at + 4 <= self.map_len);
        // SAFETY: inside the mapping, in a transmit slot the kernel gave back to us.
        unsafe { self.map.add(at).cast::<u32>().write_volatile(v) }
    }

    /// The bytes `at..at + len` of the mapping.
    pub fn bytes(&self, at: usize, len: usize) -> &[u8] {
        assert!(at + len <= self.map_len);
        // SAFETY: in bounds; the range lies in a block or slot that user space owns.
        unsafe { std::slice::from_raw_parts(self.map.add(at), len) }
    }

    /// The next ready receive block: its offset and its frames, appended to `out`.
    /// The block stays ours until `release_block`.
    pub fn next_block(&mut self, out: &mut Vec<RxFrame>) -> Option<usize> {
        let block = self.rx_block as usize * self.rx_block_size();
        if self.status(block + BD_STATUS).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return None;
        }
        let n = self.read_u32(block + BD_NUM_PKTS);
        let mut h = block + self.read_u32(block + BD_FIRST) as usize;
        let end = block + self.rx_block_size();
        for _ in 0..n {
            if h + TX_DATA > end {
                break;
            }
            let status = self.read_u32(h + H3_STATUS);
            let snaplen = self.read_u32(h + H3_SNAPLEN) as usize;
            let len = self.read_u32(h + H3_LEN) as usize;
            let at = h + usize::from(self.read_u16(h + H3_MAC));
            if at + snaplen > end {
                break;
            }
            out.push(RxFrame {
                at,
                len: snaplen,
                truncated: snaplen < len,
                csum_not_ready: status & libc::TP_STATUS_CSUMNOTREADY != 0,
                vlan: status & libc::TP_STATUS_VLAN_VALID != 0,
            });
            let next = self.read_u32(h + H3_NEXT) as usize;
            if next == 0 {
                break;
            }
            h += next;
        }
        Some(block)
    }

    /// Gives the current receive block back to the kernel.
    pub fn release_block(&mut self, block: usize) {
        self.status(block + BD_STATUS)
            .store(TP_STATUS_KERNEL, Ordering::Release);
        self.rx_block = (self.rx_block + 1) % RX_BLOCKS;
    }

    fn rx_block_size(&self) -> usize {
        self.tx_base / RX_BLOCKS as usize
    }

    fn tx_slot(&self) -> usize {
        self.tx_base + self.tx_head as usize * self.tx_frame_size
    }

    fn tx_free(&self) -> bool {
        let status = self
            .status(self.tx_slot() + H3_STATUS)
            .load(Ordering::Acquire);
        status == TP_STATUS_AVAILABLE || status == TP_STATUS_WRONG_FORMAT
    }

    /// Room for a frame in the next transmit slot (its whole data area), or `None`
    /// when the kernel still has it even after a kick. Nothing is committed until
    /// `commit_tx`.
    pub fn tx_buf(&mut self) -> Option<&mut [u8]> {
        if !self.tx_free() && (self.tx_pending == 0 || self.kick().is_err() || !self.tx_free()) {
            return None;
        }
        let slot = self.tx_slot();
        let len = self.tx_frame_size - TX_DATA;
        // SAFETY: the slot's data area lies inside the mapping and the kernel does not
        // touch an available slot; the borrow of `self` keeps it unique.
        Some(unsafe { std::slice::from_raw_parts_mut(self.map.add(slot + TX_DATA), len) })
    }

    /// Marks the next transmit slot (filled through `tx_buf`) for sending `len` bytes.
    pub fn commit_tx(&mut self, len: usize) {
        let slot = self.tx_slot();
        self.write_u32(slot + H3_NEXT, 0);
        self.write_u32(slot + H3_LEN, len as u32);
        self.write_u32(slot + H3_SNAPLEN, len as u32);
        self.status(slot + H3_STATUS)
            .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.tx_head = (self.tx_head + 1) % TX_FRAMES;
        self.tx_pending += 1;
    }

    /// Asks the kernel to send every pending slot (no wait). Returns the error, if any.
    pub fn kick(&mut self) -> io::Result<()> {
        if self.tx_pending == 0 {
            return Ok(());
        }
        self.tx_pending = 0;
        // SAFETY: a send with no buffer: with a transmit ring the kernel sends the
        // ring's pending slots and reads nothing from the (null) pointer.
        let r = unsafe { libc::send(self.fd, std::ptr::null(), 0, libc::MSG_DONTWAIT) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EAGAIN) {
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for Rings {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; nothing borrows it (every
        // slice into it borrows `self`).
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}
