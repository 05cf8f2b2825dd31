//! natbox: stateful IPv4 source NAT and IPv6 egress-only filtering, as a library.
//!
//! Layers, with arrows pointing one way: `control -> {shell, services, dataplane, host}
//! -> engine -> wire`. `wire` holds typed views over packet bytes; `engine` is the
//! I/O-free core that turns a received frame and the current time into a verdict (both
//! from `natbox-core`); `dataplane` drives real NICs (AF_PACKET + io_uring); `host` is
//! the admin socket, the console, the power button and signals; `services` are the box's own endpoints (metrics over
//! HTTP, `ping`, the NAT event log), which reach the network only through the engine;
//! `shell` is the admin shell; `control` runs the shell front-ends and the services on
//! the dataplane's timer tick; `init` does what PID 1 must in the appliance image.

pub mod backoff;
pub mod control;
#[allow(unsafe_code)]
pub mod dataplane;
#[allow(unsafe_code)]
pub mod host;
#[allow(unsafe_code)]
pub mod init;
pub mod logging;
pub mod memory;
pub mod services;
pub mod shell;

/// The I/O-free core lives in its own crate (`core/`); re-exported so the layers above
/// name it as before.
pub use natbox_core::{engine, shard, wire};
