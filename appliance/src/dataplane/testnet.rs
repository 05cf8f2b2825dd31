//! Test support: a private network namespace for the calling test thread, and the
//! iproute2/ethtool commands run inside it. Needs root (`CAP_SYS_ADMIN`,
//! `CAP_NET_RAW`), as every run of natbox's tests has.

use super::socket::PacketSocket;
use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

/// The `virtio_net_hdr` in front of every frame the sockets send and receive.
const VNET_HDR_LEN: usize = 10;

/// Moves this test's thread into a network namespace of its own with `lo` up and
/// returns lo's index. Commands the thread starts afterwards run there too.
pub fn private_netns() -> u32 {
    // SAFETY: unshare(2) with a flag; it affects only this thread.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        r,
        0,
        "unshare(CLONE_NEWNET): {} (natbox's tests run as root)",
        io::Error::last_os_error()
    );
    run(&["ip", "link", "set", "lo", "up"]);
    index("lo")
}

/// Runs a command (`ip`, `ethtool`) in the thread's namespace, quietly; it must
/// succeed.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The output of a command run in the thread's namespace.
pub fn output(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The index of interface `name` in the thread's namespace.
pub fn index(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).expect("no NUL in an interface name");
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(index, 0, "no interface {name}");
    index
}

/// Sends an Ethernet frame of `ethertype` carrying `l3` out of `sock` (a zero
/// `virtio_net_hdr` first).
pub fn send_from(sock: &PacketSocket, ethertype: u16, l3: &[u8]) {
    let mut f = vec![0u8; VNET_HDR_LEN];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(l3);
    // SAFETY: f is a live buffer of the length passed.
    let n = unsafe { libc::send(sock.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
    assert_eq!(
        usize::try_from(n).ok(),
        Some(f.len()),
        "{}",
        io::Error::last_os_error()
    );
}

/// Which of `sockets` (`None`: a closed one) receives, within `wait`, a frame whose
/// network layer is `l3`.
pub fn receiver_of(sockets: &[Option<&PacketSocket>], l3: &[u8], wait: Duration) -> Option<usize> {
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    while start.elapsed() < wait {
        for (k, s) in sockets.iter().enumerate() {
            let Some(s) = s else { continue };
            // SAFETY: buf is a writable buffer of the length passed.
            let n = unsafe {
                libc::recv(
                    s.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            let Ok(n) = usize::try_from(n) else { continue };
            if buf.get(VNET_HDR_LEN + 14..n) == Some(l3) {
                return Some(k);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}
