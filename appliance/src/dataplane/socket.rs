//! The AF_PACKET sockets of a data port (packet(7)): one that receives (and carries the
//! receive ring, `ring.rs`; it also sends GSO super-frames, see `dataplane.rs`) and
//! one that only sends (`open_sender`).
//!
//! Options, each for a reason:
//! - bound to the port's ifindex, with `ETH_P_ALL` for the receiving one (created with
//!   protocol 0 and bound afterwards, so no frame of another interface slips in before
//!   the bind), with 0 for the sending one (it receives nothing);
//! - `PACKET_ADD_MEMBERSHIP`/`PACKET_MR_PROMISC`: the box answers for pool addresses
//!   and routes for others, so it must see frames for any MAC it is sent;
//! - `PACKET_IGNORE_OUTGOING`: our own transmissions are not looped back to us;
//! - `PACKET_QDISC_BYPASS`, on the sending socket only: transmit straight to the
//!   driver, skipping the qdisc layer (the box has no traffic shaping to do). The
//!   receiving socket, which sends GSO super-frames, goes through the qdisc layer
//!   (`dev_queue_xmit`) instead: the bypass (`__dev_direct_xmit`) drops every skb that
//!   `validate_xmit_skb` had to change, and it changes a super-frame the device cannot
//!   segment itself into a list of segments (software GSO), so `send` fails with
//!   `ENOBUFS` on a port without TSO (`dataplane.rs`);
//! - `PACKET_VNET_HDR`: every frame read or written carries a `struct virtio_net_hdr`
//!   in front (packet(7), `wire::offload`), so GSO super-frames (TSO from a veth peer,
//!   GRO, virtio guest offloads) arrive whole with their segment size and
//!   partial-checksum offsets instead of truncated, and leave whole for the kernel or
//!   the peer to segment (`VIRTIO_NET_HDR_F_NEEDS_CSUM` says what
//!   `TP_STATUS_CSUMNOTREADY` would, with the offsets).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const ETH_P_ALL: u16 = 0x0003;

/// A bound, configured AF_PACKET socket.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl PacketSocket {
    /// Opens the socket that receives the frames of `ifindex` (all of them,
    /// promiscuously, none of natbox's own); it sends too, through the qdisc layer.
    pub fn open(ifindex: u32) -> io::Result<PacketSocket> {
        let sock = PacketSocket::bound(ifindex, ETH_P_ALL)?;
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as i32,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        sock.set(libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)?;
        sock.set(libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1i32)?;
        sock.set(libc::SOL_PACKET, libc::PACKET_VNET_HDR, &1i32)?;
        sock.set_buffer(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF)?;
        sock.set_buffer(libc::SO_SNDBUFFORCE, libc::SO_SNDBUF)?;
        Ok(sock)
    }

    /// A socket bound to `ifindex` for `protocol` (0: none, it receives nothing).
    fn bound(ifindex: u32, protocol: u16) -> io::Result<PacketSocket> {
        // SAFETY: plain socket(2); the result is checked and owned.
        let raw = check(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        // SAFETY: raw is a fresh descriptor we own.
        let sock = PacketSocket {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        };
        // SAFETY: sockaddr_ll is plain old data; zero is valid.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol.to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: addr is a valid sockaddr_ll of the length passed.
        check(unsafe {
            libc::bind(
                raw,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        })?;
        Ok(sock)
    }

    /// A generous socket buffer (4 MiB) absorbs bursts while the loop is busy: the
    /// `force` option (beyond the sysctl limit, as root) or else the plain one.
    fn set_buffer(&self, force: libc::c_int, plain: libc::c_int) -> io::Result<()> {
        let size: libc::c_int = 4 << 20;
        self.set(libc::SOL_SOCKET, force, &size)
            .or_else(|_| self.set(libc::SOL_SOCKET, plain, &size))
    }

    /// Opens a socket that only sends, out of `ifindex`: bound with protocol 0, so the
    /// kernel hands it no frames, and nothing ever waits on it, so the kernel's
    /// per-frame "write space" callback (`sock_wfree`) finds no one to wake. With
    /// `PACKET_VNET_HDR`, `PACKET_QDISC_BYPASS` and the same buffer size.
    pub fn open_sender(ifindex: u32) -> io::Result<PacketSocket> {
        let sock = PacketSocket::bound(ifindex, 0)?;
        sock.set(libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &1i32)?;
        sock.set(libc::SOL_PACKET, libc::PACKET_VNET_HDR, &1i32)?;
        sock.set_buffer(libc::SO_SNDBUFFORCE, libc::SO_SNDBUF)?;
        Ok(sock)
    }

    /// Frames the kernel dropped because the socket's queue was full, since the last
    /// call (PACKET_STATISTICS resets on read).
    pub fn take_drops(&self) -> u64 {
        // SAFETY: tpacket_stats is plain old data; zero is valid.
        let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: stats and len describe a writable tpacket_stats.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if r < 0 {
            0
        } else {
            u64::from(stats.tp_drops)
        }
    }

    /// The integer socket option `level`/`name`.
    pub(super) fn get_int(&self, level: libc::c_int, name: libc::c_int) -> io::Result<u32> {
        let mut value: libc::c_uint = 0;
        let mut len = std::mem::size_of::<libc::c_uint>() as libc::socklen_t;
        // SAFETY: value and len describe a writable c_uint.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&mut value as *mut libc::c_uint).cast(),
                &mut len,
            )
        })?;
        Ok(value)
    }

    /// Sets the socket option `level`/`name` to `value` (also the rings' set-up,
    /// `ring.rs`).
    pub(super) fn set<T>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: &T,
    ) -> io::Result<()> {
        // SAFETY: value points to a live T of the size passed.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (value as *const T).cast(),
                std::mem::size_of::<T>() as u32,
            )
        })
        .map(drop)
    }
}
