//! The natbox binary. The dataplane (host mode and PID-1 mode) is wired here once it
//! lands; for now it validates a configuration and runs the engine demo.

fn main() {}
