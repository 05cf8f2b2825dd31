//! natbox: stateful IPv4 source NAT and IPv6 egress-only filtering, as a library.
//!
//! Layers, with arrows pointing one way: `engine -> wire`. `wire` holds typed views
//! over packet bytes; `engine` is the I/O-free core that turns a received frame and
//! the current time into a verdict.

pub mod engine;
pub mod wire;
