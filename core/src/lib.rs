//! natbox-core: everything natbox decides about a packet, and nothing about how packets
//! arrive.
//!
//! `wire` holds typed zero-copy views over packet bytes (and imports nothing of ours);
//! `dhcp4` is the DHCPv4 client state machine an outside port uses to get its address;
//! `autoconf` learns an IPv6 port's router and address from Router Advertisements,
//! `dhcp6` leases its address by DHCPv6;
//! `engine` turns a received frame, the port it came from and the current time into a
//! verdict; `shard` says which worker owns which external port. None of them does I/O, reads a clock, spawns a thread or needs `unsafe`: the
//! appliance (`appliance/`) drives real NICs, the fuzz targets and the benchmarks drive
//! the same engine with synthetic frames.
#![forbid(unsafe_code)]

pub mod autoconf;
pub mod dhcp4;
pub mod dhcp6;
pub mod engine;
pub mod shard;
pub mod wire;
