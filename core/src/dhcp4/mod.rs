//! A DHCPv4 client (RFC 2131, options RFC 2132, classless static routes RFC 3442,
//! address conflict detection RFC 5227), sans I/O like the engine: it reads no clock,
//! opens no socket, spawns no thread and draws no OS randomness. The caller passes the
//! time in milliseconds and a seed (xids and jitter come from a SplitMix64 over it,
//! `rng`), hands it the UDP payloads received on port 68, sends what it asks to send
//! (UDP 68 → 67, broadcast or unicast, the caller builds UDP and IP), ARP-probes when
//! asked, and applies the leases it reports. See `client` for the state machine and the
//! API, `lease` for what a reply must hold to be used, `message` for the wire format.
//!
//! What the driver owes the client:
//! - receive every UDP datagram to port 68 on the port, whatever its destination IP:
//!   the broadcast flag is left clear (see `message`), so a server may unicast the
//!   OFFER/ACK to the offered address and our MAC before that address is configured;
//! - send [`Transmit`]s as UDP 68 → 67: `Broadcast` to 255.255.255.255 and the Ethernet
//!   broadcast address, `Unicast(server)` routed like any packet of the box (the server
//!   may sit behind a relay, off-link); the IP source is `from`, or 0.0.0.0;
//! - on [`Event::Probe`], probe the address as RFC 5227 §2.1.1 says (ARP requests with
//!   sender IP 0.0.0.0) and answer [`Client::probe_result`];
//! - apply [`Event::Bound`], [`Event::Renewed`] and [`Event::AddressChanged`] (address,
//!   routes, MTU) and undo [`Event::Lost`];
//! - call [`Client::handle_timeout`] once [`Client::poll_timeout`] has passed, and pass
//!   a seed that differs between boots (two boxes with one seed would pick the same
//!   xids; their MACs still keep the replies apart).
//!
//! Every received byte is untrusted: decoding never panics, and a reply that is not
//! for us or does not make sense is counted under a named reason (`counters`).
//!
//! Message format: dhcproto (0.15, BlueCat's DHCPv4/v6 encoder and decoder), as the
//! issue asked. Weighed against it:
//! - smoltcp's `wire::DhcpPacket`/`DhcpRepr` (smoltcp is already a dependency, feature
//!   `proto-dhcpv4`): fixed-capacity `Repr` (three DNS servers), options outside its
//!   short list only as raw `additional_options`, and its client socket is tied to
//!   smoltcp's own interface;
//! - dhcp4r: server-oriented and unmaintained since 2021;
//! - a hand-written codec: the framing (pad, end, magic cookie, RFC 3396 long options)
//!   is the part a library gets right once.
//!
//! dhcproto's costs, taken knowingly: it pulls in hickory-proto (for domain-name
//! options) with idna/ICU and rand (75 crates in its tree, 42 new to the lock file), and its typed option
//! decoder is lenient about lengths, so replies are read through its borrowed view and
//! option values are length-checked here (`message` says where it falls short). Its
//! MSRV is 1.87.

mod client;
mod counters;
mod lease;
mod message;
pub(crate) mod rng;

pub use client::{
    Client, Destination, Event, Snapshot, State, Transmit, DECLINE_WAIT_MS, REQUEST_TRIES,
};
pub use counters::{Counters, Ignored};
pub use lease::{Lease, LeaseError, LeaseTimes, Route, RouteEncoding};
