//! The box's TCP endpoints over the engine: smoltcp (RFC 9293: retransmission,
//! windows and timers done right) on a device that is two queues of IP datagrams,
//! fed what the engine shards deliver for a binding and drained into
//! `Request::Originate`. The box's kernel owns no address on the data ports, so there
//! is no kernel socket to use. Shared by the metrics responder (`http`) and the
//! boot-time metadata fetch (`fetch`).
//!
//! smoltcp's generator (initial sequence numbers and ephemeral ports, RFC 6528 §3) is
//! seeded from `/dev/urandom` for each interface: with its default seed of 0 every
//! boot would pick the same sequence numbers, and an off-path host could predict them.

use smoltcp::iface::{Config, Interface};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::collections::VecDeque;
use std::net::IpAddr;

/// Datagrams in (from the engine) and out (to the engine), as smoltcp's device.
#[derive(Debug, Default)]
pub struct Queues {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: Vec<Vec<u8>>,
    pub mtu: usize,
}

impl Queues {
    pub fn new(mtu: usize) -> Queues {
        Queues {
            mtu,
            ..Default::default()
        }
    }

    /// Queues a received datagram unless `max` are waiting already.
    pub fn push(&mut self, ip: &[u8], max: usize) {
        if self.rx.len() < max {
            self.rx.push_back(ip.to_vec());
        }
    }
}

#[derive(Debug)]
pub struct Rx(Vec<u8>);
#[derive(Debug)]
pub struct Tx<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push(buf);
        r
    }
}

impl Device for Queues {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let packet = self.rx.pop_front()?;
        Some((Rx(packet), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

/// An interface that owns `addr` alone and reaches every peer "through" the engine
/// (the engine routes), seeded from the kernel's generator; `now` in ms.
pub fn interface(addr: IpAddr, dev: &mut Queues, now: u64, who: &str) -> Interface {
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = random_seed(who);
    let mut iface = Interface::new(config, dev, Instant::from_millis(now as i64));
    let ip = IpAddress::from(addr);
    iface.update_ip_addrs(|addrs| {
        let host = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let _ = addrs.push(IpCidr::new(ip, host));
    });
    let routes = iface.routes_mut();
    let _ = match ip {
        IpAddress::Ipv4(a) => routes.add_default_ipv4_route(a).map(|_| ()),
        IpAddress::Ipv6(a) => routes.add_default_ipv6_route(a).map(|_| ()),
    };
    iface
}

/// A seed for smoltcp's generator from the kernel's (`/dev/urandom` never blocks,
/// also early in boot); the clock if that cannot be read. `who` names the endpoint
/// in the warning.
pub fn random_seed(who: &str) -> u64 {
    use std::io::Read;
    let mut seed = [0u8; 8];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed)) {
        Ok(()) => u64::from_le_bytes(seed),
        Err(e) => {
            log::warn!("/dev/urandom: {e}; {who} seeds TCP from the clock");
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        }
    }
}
