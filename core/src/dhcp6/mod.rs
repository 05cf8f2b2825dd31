//! A DHCPv6 client for one IA_NA (RFC 8415: Solicit, Advertise, Request, Reply,
//! Renew, Rebind, Decline; retransmission per section 15), sans I/O like the engine
//! and `dhcp4`: it reads no clock, opens no socket and draws no OS randomness. The
//! caller passes the time in milliseconds and a seed (transaction ids and RAND come
//! from `dhcp4::rng`), hands it the UDP payloads received on port 546, sends what it
//! asks, checks addresses by Duplicate Address Detection when asked, and applies the
//! leases it reports. See `client` for the state machine, `message` for the wire
//! format and what dhcproto is used for.
//!
//! What the driver owes the client:
//! - receive the UDP datagrams from port 547 to port 546 addressed to the port's own
//!   addresses (servers answer the client's link-local address, section 14.1);
//! - send every payload of [`Client::poll_transmit`] as UDP 546 → 547 to
//!   All_DHCP_Relay_Agents_and_Servers (ff02::1:2) from the port's link-local address,
//!   out of the port (sections 7.1, 14: the client never unicasts without a Server
//!   Unicast option, which natbox does not ask for);
//! - on [`Event::Probe`], run Duplicate Address Detection (RFC 4862 section 5.4) and
//!   answer [`Client::probe_result`];
//! - put [`Event::Bound`], [`Event::Renewed`] and [`Event::AddressChanged`] in force
//!   and undo [`Event::Lost`]. A lease's address comes alone (an IA_NA address is a
//!   /128, RFC 8415 section 21.6 and RFC 5942): the driver gives it the prefix length
//!   of the link's on-link prefix from Router Advertisements
//!   (`autoconf::Autoconf::on_link_prefix`), or /128;
//! - call [`Client::handle_timeout`] once [`Client::poll_timeout`] has passed, with a
//!   seed that differs between boots.
//!
//! Not done: Rapid Commit, Information-request, Reconfigure (it needs the
//! authentication of section 20), Release at shutdown, prefix delegation (IA_PD), and
//! the random delay before the first Solicit (the box is one host that should route
//! soon, as in `dhcp4`).

mod client;
mod counters;
mod message;

pub use client::{Client, Event, Lease, Refusal, Snapshot, State, REQ_MAX_RC, RETRY_WAIT_MS};
pub use counters::{Counters, Ignored};
