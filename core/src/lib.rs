//! natbox-core: everything natbox decides about a packet, and nothing about how packets
//! arrive.
//!
//! `wire` holds typed zero-copy views over packet bytes (and imports nothing of ours);
//! `engine` turns a received frame, the port it came from and the current time into a
//! verdict; `shard` says which worker owns which external port. None of them does I/O, reads a clock, spawns a thread or needs `unsafe`: the
//! appliance (`appliance/`) drives real NICs, the fuzz targets and the benchmarks drive
//! the same engine with synthetic frames.
#![forbid(unsafe_code)]

pub mod engine;
pub mod shard;
pub mod wire;
