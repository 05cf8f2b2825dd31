//! The only code that talks to the kernel about packets: AF_PACKET sockets, the
//! io_uring loop, and link setup. Everything here is `unsafe`-permitted; each `unsafe`
//! block states why it is sound.

pub mod admin;
pub mod console;
pub mod dataplane;
pub mod ingress;
pub mod link;
pub mod power_button;
pub mod ring;
pub mod signals;
pub mod socket;
pub mod steering;
#[cfg(test)]
mod testnet;
