//! Finding and preparing the data ports.
//!
//! A port is named in the configuration by interface name or MAC address (cloud NIC
//! names are not stable); `find` resolves either with `if_nameindex` and ioctls, which
//! answer for natbox's network namespace (sysfs shows the one it was mounted in). `prepare` makes the
//! kernel a pure driver host on the port: link up, the configured MTU, and kernel IPv6
//! disabled (no autoconfiguration, no NDP answers: natbox speaks NDP itself).
//!
//! Offloads. natbox reads `virtio_net_hdr`s and forwards GSO super-frames whole; what
//! a port can transmit itself decides only whether merging on the *other* port pays:
//! - A super-frame always leaves through the kernel's qdisc layer (`dataplane.rs`),
//!   whose `validate_xmit_skb` segments and checksums it in software when the egress
//!   device cannot (no TSO for its type, too many segments for the driver, a driver's
//!   `ndo_features_check`), exactly as for the kernel's own forwarding. natbox does not
//!   predict that decision from feature bits: a wrong guess would drop every
//!   super-frame. A partial checksum is completed by the kernel too, in place, on a
//!   port without transmit checksum offload (`skb_csum_hwoffload_help`, on both the
//!   qdisc and the bypass path), so natbox never completes one for the egress port.
//! - GRO on a port (`offer_gro`) is turned on only when the other port has TSO: the
//!   merged super-frames then stay whole to the egress NIC. Without TSO there, GRO would
//!   merge wire segments only for the kernel to cut them again, so natbox leaves the
//!   port's GRO setting as it found it (the operator's, or the driver's default).
//!
//! The port's transmit features are read with the legacy ethtool ioctls
//! `ETHTOOL_GTXCSUM` and `ETHTOOL_GTSO` (`SIOCETHTOOL`): one ioctl each, a stable ABI
//! and on every kernel. `ETHTOOL_GFEATURES` returns `NETIF_F_*` bits whose numbering is
//! internal to the kernel (a reader must map names through the `ETH_SS_FEATURES` string
//! set first), and the ethtool netlink interface needs a generic-netlink family lookup
//! and attribute parsing: both much more code for the two answers natbox needs. The
//! legacy answers are coarse (TSO means any of TSO, TSO6, TSO-ECN), which is enough for
//! a performance choice that correctness does not depend on.

use crate::wire::ethernet::Mac;
use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::path::Path;

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: Mac,
}

/// Resolves a configured port (`eth0` or `52:54:00:12:34:56`) to an interface.
pub fn find(spec: &str) -> io::Result<Link> {
    let Some(mac) = Mac::parse(spec) else {
        return by_name(spec);
    };
    let ctl = Ctl::open()?;
    names()?
        .into_iter()
        .find(|name| ctl.mac(name).ok() == Some(mac))
        .map_or_else(
            || {
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no interface has MAC address {mac}"),
                ))
            },
            |name| by_name(&name),
        )
}

/// The names of the interfaces in natbox's network namespace (`if_nameindex`, which
/// asks the kernel through netlink: sysfs shows the namespace it was mounted in).
fn names() -> io::Result<Vec<String>> {
    // SAFETY: if_nameindex returns an array terminated by a zero entry, or null.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut at = list;
    // SAFETY: every entry up to the terminating one is valid, with a NUL-terminated
    // name; the array is freed once, after the last read.
    unsafe {
        while (*at).if_index != 0 && !(*at).if_name.is_null() {
            out.push(CStr::from_ptr((*at).if_name).to_string_lossy().into_owned());
            at = at.add(1);
        }
        libc::if_freenameindex(list);
    }
    Ok(out)
}

/// The index of interface `name`, if there is one.
fn index_of(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some(index)
}

fn by_name(name: &str) -> io::Result<Link> {
    let index = index_of(name).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name}"),
        )
    })?;
    Ok(Link {
        name: name.to_string(),
        index,
        mac: Ctl::open()?.mac(name)?,
    })
}

/// Whether the interface exists with the same index and is operationally up
/// (`IFF_RUNNING`: operstate up or unknown).
/// The receive queues of interface `name` (`/sys/class/net/NAME/queues/rx-*`; 1 if
/// that cannot be read).
pub fn rx_queues(name: &str) -> usize {
    fs::read_dir(Path::new("/sys/class/net").join(name).join("queues"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

pub fn is_running(link: &Link) -> bool {
    index_of(&link.name) == Some(link.index)
        && Ctl::open()
            .and_then(|c| c.flags(&link.name))
            .is_ok_and(|f| f & libc::IFF_RUNNING != 0)
}

/// Brings the link up with `mtu` and disables kernel IPv6 on it.
pub fn prepare(link: &Link, mtu: u16) -> io::Result<()> {
    let ctl = Ctl::open()?;
    ctl.set_mtu(&link.name, mtu)?;
    ctl.set_up(&link.name)?;
    let ipv6 = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", link.name);
    if Path::new(&ipv6).exists() {
        fs::write(&ipv6, "1")?;
    }
    Ok(())
}

/// What a port can transmit itself (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxOffloads {
    /// Transmit checksum offload, for some protocol (`ETHTOOL_GTXCSUM`).
    pub csum: bool,
    /// Some TCP segmentation offload (`ETHTOOL_GTSO`).
    pub tso: bool,
}

/// Reads what `link` can transmit itself.
fn tx_offloads(link: &Link) -> io::Result<TxOffloads> {
    let ctl = Ctl::open()?;
    Ok(TxOffloads {
        csum: ctl.ethtool(&link.name, ETHTOOL_GTXCSUM, 0)? != 0,
        tso: ctl.ethtool(&link.name, ETHTOOL_GTSO, 0)? != 0,
    })
}

/// Turns GRO on at `link` if `egress` (the other port) has TSO (module doc); returns
/// what `egress` can transmit and whether GRO was turned on.
pub fn offer_gro(link: &Link, egress: &Link) -> io::Result<(TxOffloads, bool)> {
    let offloads = tx_offloads(egress)?;
    if !offloads.tso {
        return Ok((offloads, false));
    }
    match Ctl::open()?.ethtool(&link.name, ETHTOOL_SGRO, 1) {
        Ok(_) => Ok((offloads, true)),
        Err(e) => {
            // Not every driver has GRO to switch (loopback-like devices): not fatal.
            log::debug!("{}: cannot turn GRO on: {e}", link.name);
            Ok((offloads, false))
        }
    }
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GTXCSUM: u32 = 0x16;
const ETHTOOL_GTSO: u32 = 0x1e;
const ETHTOOL_SGRO: u32 = 0x2c;

/// An `AF_INET` datagram socket used only as a handle for interface ioctls.
struct Ctl(std::os::fd::OwnedFd);

impl Ctl {
    fn open() -> io::Result<Ctl> {
        // SAFETY: plain socket(2) call; the result is checked and owned.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor we own.
        Ok(Ctl(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }

    fn ifreq(name: &str) -> io::Result<libc::ifreq> {
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        let bytes = name.as_bytes();
        if bytes.len() >= req.ifr_name.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "interface name too long",
            ));
        }
        for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        Ok(req)
    }

    fn ioctl(&self, request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: `req` is a valid ifreq for the duration of the call; the request codes
        // used here read/write only within it.
        let r = unsafe { libc::ioctl(self.0.as_raw_fd(), request as _, req as *mut libc::ifreq) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn set_mtu(&self, name: &str, mtu: u16) -> io::Result<()> {
        let mut req = Self::ifreq(name)?;
        req.ifr_ifru.ifru_mtu = i32::from(mtu);
        self.ioctl(libc::SIOCSIFMTU, &mut req)
    }

    fn flags(&self, name: &str) -> io::Result<libc::c_int> {
        let mut req = Self::ifreq(name)?;
        self.ioctl(libc::SIOCGIFFLAGS, &mut req)?;
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        Ok(libc::c_int::from(unsafe { req.ifr_ifru.ifru_flags }) & 0xffff)
    }

    fn set_up(&self, name: &str) -> io::Result<()> {
        let flags = self.flags(name)?;
        let mut req = Self::ifreq(name)?;
        req.ifr_ifru.ifru_flags = (flags | libc::IFF_UP) as libc::c_short;
        self.ioctl(libc::SIOCSIFFLAGS, &mut req)
    }

    fn mac(&self, name: &str) -> io::Result<Mac> {
        let mut req = Self::ifreq(name)?;
        self.ioctl(libc::SIOCGIFHWADDR, &mut req)?;
        // SAFETY: SIOCGIFHWADDR filled the hardware-address member of the union.
        let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
        let mut mac = [0u8; 6];
        for (m, d) in mac.iter_mut().zip(data) {
            *m = d as u8;
        }
        Ok(Mac(mac))
    }

    /// A legacy ethtool command on `struct ethtool_value` through `SIOCETHTOOL`: sends
    /// `data`, returns the `data` the kernel wrote back (a get command's answer).
    fn ethtool(&self, name: &str, cmd: u32, data: u32) -> io::Result<u32> {
        #[repr(C)]
        struct EthtoolValue {
            cmd: u32,
            data: u32,
        }
        let mut value = EthtoolValue { cmd, data };
        let mut req = Self::ifreq(name)?;
        req.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
        self.ioctl(SIOCETHTOOL, &mut req)?;
        Ok(value.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::testnet::{index, output, private_netns, run};

    /// A veth `name` (its peer `name`p) in the test's namespace, up.
    fn veth(name: &str) -> Link {
        let peer = format!("{name}p");
        run(&[
            "ip", "link", "add", name, "type", "veth", "peer", "name", &peer,
        ]);
        run(&["ip", "link", "set", name, "up"]);
        Link {
            name: name.to_string(),
            index: index(name),
            mac: Mac::default(),
        }
    }

    fn gro(link: &Link) -> bool {
        output(&["ethtool", "-k", &link.name]).contains("generic-receive-offload: on")
    }

    /// The gateway-offloads-off regression: natbox turned GRO on on a port whose
    /// super-frames the other port, without TSO, could not take.
    #[test]
    fn gro_is_turned_on_only_towards_a_port_with_tso() {
        private_netns();
        let (lan, wan) = (veth("lan0"), veth("wan0"));
        run(&["ethtool", "-K", "lan0", "gro", "off"]);
        run(&[
            "ethtool", "-K", "wan0", "tx", "off", "tso", "off", "gso", "off", "gro", "off",
        ]);
        assert_eq!(
            tx_offloads(&wan).unwrap(),
            TxOffloads {
                csum: false,
                tso: false
            }
        );
        assert_eq!(
            tx_offloads(&lan).unwrap(),
            TxOffloads {
                csum: true,
                tso: true
            }
        );
        let (_, on) = offer_gro(&lan, &wan).unwrap();
        assert!(!on && !gro(&lan), "wan0 has no TSO: lan0's GRO stays off");
        let (_, on) = offer_gro(&wan, &lan).unwrap();
        assert!(on && gro(&wan), "lan0 has TSO: wan0's GRO is on");
    }
}
