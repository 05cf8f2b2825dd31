//! Test support: a private network namespace for the calling test thread, and the
//! iproute2/ethtool commands run inside it. Needs root (`CAP_SYS_ADMIN`,
//! `CAP_NET_RAW`), as every run of natbox's tests has.

use std::io;
use std::process::Command;

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
