//! Keeps the kernel's own stack away from the data ports' frames: an nftables table of
//! family `netdev`, `natbox`, with one chain per port hooked at ingress with policy
//! drop and no rules.
//!
//! Why: AF_PACKET gives natbox a copy of every frame, but the kernel also passes the
//! frame on to its own IPv4 input, which, with no address and no route on the port,
//! looks the destination up, fails, allocates a throw-away route entry and frees it
//! through RCU, for every frame: measured, about a tenth of the receiving CPU under a
//! flood (tests/bench/compare.sh, `PROFILE=1`). The netdev ingress hook runs after the
//! packet taps (net/core/dev.c `__netif_receive_skb_core`: taps, then tc and netfilter
//! ingress, then the protocol handlers), so natbox still sees everything while the
//! kernel drops its copy at once. natbox's own transmissions leave by the egress path
//! and are not touched. The kernel needs nothing on these ports: natbox answers ARP
//! and NDP itself and the kernel has no address there.
//!
//! The table carries `NFT_TABLE_F_OWNER` (Linux 5.12+): it belongs to this netlink
//! socket, no other process can change it, and the kernel deletes it when the socket
//! closes, so natbox never leaves it behind, even when killed. Everything is one
//! netlink transaction per change (nfnetlink batch, include/uapi/linux/netfilter/
//! nf_tables.h). Without nf_tables in the kernel nothing is dropped early: a cost, not
//! an error, and logged once.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_NETFILTER: libc::c_int = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFPROTO_NETDEV: u8 = 5;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFT_TABLE_F_OWNER: u32 = 2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEV: u16 = 3;
const NF_NETDEV_INGRESS: u32 = 0;
const NF_DROP: u32 = 0;
const NLA_F_NESTED: u16 = 0x8000;
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;

/// The table's name, as `nft list ruleset` shows it.
pub const TABLE: &str = "natbox";

/// The owning netlink socket of the `natbox` netdev table.
#[derive(Debug)]
pub struct IngressDrop {
    fd: OwnedFd,
    seq: u32,
}

impl IngressDrop {
    /// Creates the table (owned by the new socket).
    pub fn new() -> io::Result<IngressDrop> {
        // SAFETY: plain socket(2); the result is checked and owned.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut me = IngressDrop {
            // SAFETY: raw is a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
            seq: 0,
        };
        let mut table = Message::new(NFT_MSG_NEWTABLE, libc::NLM_F_CREATE);
        table.str(NFTA_TABLE_NAME, TABLE);
        table.u32(NFTA_TABLE_FLAGS, NFT_TABLE_F_OWNER);
        me.transact(table)?;
        Ok(me)
    }

    /// Hooks a drop-everything chain named `chain` at the ingress of `device`,
    /// replacing a chain of that name (the device may have come back under another
    /// name or index).
    pub fn claim(&mut self, chain: &str, device: &str) -> io::Result<()> {
        let mut del = Message::new(NFT_MSG_DELCHAIN, 0);
        del.str(NFTA_CHAIN_TABLE, TABLE);
        del.str(NFTA_CHAIN_NAME, chain);
        // Gone already (never made, or deleted by the kernel with its device): fine.
        let _ = self.transact(del);
        let mut add = Message::new(NFT_MSG_NEWCHAIN, libc::NLM_F_CREATE);
        add.str(NFTA_CHAIN_TABLE, TABLE);
        add.str(NFTA_CHAIN_NAME, chain);
        let hook = add.begin_nested(NFTA_CHAIN_HOOK);
        add.u32(NFTA_HOOK_HOOKNUM, NF_NETDEV_INGRESS);
        // Before every other ingress chain (the kernel's range is signed 32-bit).
        add.u32(NFTA_HOOK_PRIORITY, i32::MIN as u32);
        add.str(NFTA_HOOK_DEV, device);
        add.end_nested(hook);
        add.u32(NFTA_CHAIN_POLICY, NF_DROP);
        add.str(NFTA_CHAIN_TYPE, "filter");
        self.transact(add)
    }

    /// Sends `message` as a batch of its own and waits for its acknowledgement: the
    /// error the kernel reports, if any.
    fn transact(&mut self, message: Message) -> io::Result<()> {
        let mut buf = Vec::new();
        Message::batch(NFNL_MSG_BATCH_BEGIN).finish(self.next_seq(), &mut buf);
        let seq = self.next_seq();
        message.finish(seq, &mut buf);
        Message::batch(NFNL_MSG_BATCH_END).finish(self.next_seq(), &mut buf);
        // SAFETY: buf is readable for its length.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        // The kernel runs the batch inside send(2): every answer is queued by now.
        let mut reply = vec![0u8; 8192];
        loop {
            // SAFETY: reply is writable for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    reply.as_mut_ptr().cast(),
                    reply.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                return Err(io::Error::other("nftables: no acknowledgement"));
            }
            for (acked, error) in errors(&reply[..n as usize]) {
                if error != 0 {
                    return Err(io::Error::from_raw_os_error(-error));
                }
                if acked == seq {
                    return Ok(());
                }
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }
}

/// The (sequence number, error) of every `NLMSG_ERROR` in a netlink reply.
fn errors(reply: &[u8]) -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= reply.len() {
        let u32_at = |i: usize| u32::from_ne_bytes(reply[i..i + 4].try_into().expect("4 bytes"));
        let len = u32_at(at) as usize;
        let kind = u16::from_ne_bytes([reply[at + 4], reply[at + 5]]);
        let seq = u32_at(at + 8);
        if len < NLMSG_HDRLEN || at + len > reply.len() {
            break;
        }
        if kind == libc::NLMSG_ERROR as u16 && len >= NLMSG_HDRLEN + 4 {
            out.push((seq, u32_at(at + NLMSG_HDRLEN) as i32));
        }
        at += len.next_multiple_of(4);
    }
    out
}

/// One nf_tables netlink message being built: header, `nfgenmsg`, attributes.
struct Message {
    kind: u16,
    flags: u16,
    body: Vec<u8>,
}

impl Message {
    fn new(command: u16, flags: libc::c_int) -> Message {
        Message {
            kind: NFNL_SUBSYS_NFTABLES << 8 | command,
            flags: (libc::NLM_F_REQUEST | libc::NLM_F_ACK | flags) as u16,
            body: vec![NFPROTO_NETDEV, 0, 0, 0],
        }
    }

    /// A batch delimiter for the nf_tables subsystem.
    fn batch(kind: u16) -> Message {
        let res_id = NFNL_SUBSYS_NFTABLES.to_be_bytes();
        Message {
            kind,
            flags: libc::NLM_F_REQUEST as u16,
            body: vec![libc::AF_UNSPEC as u8, 0, res_id[0], res_id[1]],
        }
    }

    fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.body.extend_from_slice(&(len as u16).to_ne_bytes());
        self.body.extend_from_slice(&kind.to_ne_bytes());
        self.body.extend_from_slice(value);
        self.body.resize(self.body.len().next_multiple_of(4), 0);
    }

    /// A NUL-terminated string attribute.
    fn str(&mut self, kind: u16, value: &str) {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v);
    }

    /// A big-endian 32-bit attribute (nf_tables' NLA_BE32).
    fn u32(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_be_bytes());
    }

    fn begin_nested(&mut self, kind: u16) -> usize {
        let at = self.body.len();
        self.attr(kind | NLA_F_NESTED, &[]);
        at
    }

    fn end_nested(&mut self, at: usize) {
        let len = (self.body.len() - at) as u16;
        self.body[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends the finished message to `out`.
    fn finish(&self, seq: u32, out: &mut Vec<u8>) {
        debug_assert!(self.body.len() >= NFGENMSG_LEN);
        let len = (NLMSG_HDRLEN + self.body.len()) as u32;
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&self.kind.to_ne_bytes());
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&self.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested_lengths_cover_their_children() {
        let mut m = Message::new(NFT_MSG_NEWCHAIN, libc::NLM_F_CREATE);
        m.str(NFTA_CHAIN_NAME, "in"); // 4 + 3, padded to 8
        let hook = m.begin_nested(NFTA_CHAIN_HOOK);
        m.u32(NFTA_HOOK_HOOKNUM, 7);
        m.end_nested(hook);
        let b = &m.body[NFGENMSG_LEN..];
        assert_eq!(&b[..8], &[7, 0, 3, 0, b'i', b'n', 0, 0]);
        assert_eq!(u16::from_ne_bytes([b[8], b[9]]), 12);
        assert_eq!(
            u16::from_ne_bytes([b[10], b[11]]),
            NFTA_CHAIN_HOOK | NLA_F_NESTED
        );
        assert_eq!(&b[16..20], &7u32.to_be_bytes());
        let mut out = Vec::new();
        m.finish(9, &mut out);
        assert_eq!(out.len(), NLMSG_HDRLEN + m.body.len());
        assert_eq!(
            u32::from_ne_bytes(out[..4].try_into().unwrap()) as usize,
            out.len()
        );
    }

    #[test]
    fn errors_reads_acks_and_failures_and_stops_at_a_bad_length() {
        let mut reply = Vec::new();
        for (seq, error) in [(3u32, 0i32), (4, -libc::ENOENT)] {
            reply.extend_from_slice(&36u32.to_ne_bytes());
            reply.extend_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
            reply.extend_from_slice(&0u16.to_ne_bytes());
            reply.extend_from_slice(&seq.to_ne_bytes());
            reply.extend_from_slice(&0u32.to_ne_bytes());
            reply.extend_from_slice(&error.to_ne_bytes());
            reply.extend_from_slice(&[0; 16]);
        }
        reply.extend_from_slice(&99u32.to_ne_bytes());
        reply.extend_from_slice(&[0; 12]);
        assert_eq!(errors(&reply), vec![(3, 0), (4, -libc::ENOENT)]);
    }
}
