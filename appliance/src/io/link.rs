//! Finding and preparing the data ports.
//!
//! A port is named in the configuration by interface name or MAC address (cloud NIC
//! names are not stable); `find` resolves either through sysfs. `prepare` makes the
//! kernel a pure driver host on the port: link up, the configured MTU, kernel IPv6
//! disabled (no autoconfiguration, no NDP answers: natbox speaks NDP itself), and GRO
//! on: natbox reads `virtio_net_hdr`s and forwards GSO super-frames whole (fewer,
//! larger frames: the kernel merges wire segments, the egress NIC or the kernel's GSO
//! cuts them again, as in the kernel's own forwarding).

use crate::wire::ethernet::Mac;
use std::fs;
use std::io;
use std::path::Path;

const SYS_NET: &str = "/sys/class/net";

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: Mac,
}

/// Resolves a configured port (`eth0` or `52:54:00:12:34:56`) to an interface.
pub fn find(spec: &str) -> io::Result<Link> {
    if let Some(mac) = Mac::parse(spec) {
        for entry in fs::read_dir(SYS_NET)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if read_mac(&name).ok() == Some(mac) {
                return by_name(&name);
            }
        }
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface has MAC address {mac}"),
        ));
    }
    by_name(spec)
}

fn by_name(name: &str) -> io::Result<Link> {
    let dir = Path::new(SYS_NET).join(name);
    if !dir.exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name}"),
        ));
    }
    let index = read_trimmed(&dir.join("ifindex"))?
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad ifindex in sysfs"))?;
    Ok(Link {
        name: name.to_string(),
        index,
        mac: read_mac(name)?,
    })
}

fn read_mac(name: &str) -> io::Result<Mac> {
    let text = read_trimmed(&Path::new(SYS_NET).join(name).join("address"))?;
    Mac::parse(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad MAC in sysfs"))
}

fn read_trimmed(path: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(path)?.trim().to_string())
}

/// Whether the interface exists with the same index and has carrier.
pub fn is_running(link: &Link) -> bool {
    let dir = Path::new(SYS_NET).join(&link.name);
    let same = read_trimmed(&dir.join("ifindex")).is_ok_and(|i| i == link.index.to_string());
    same && read_trimmed(&dir.join("operstate")).is_ok_and(|s| s == "up" || s == "unknown")
}

/// Brings the link up with `mtu`, disables kernel IPv6 on it and turns GRO on.
pub fn prepare(link: &Link, mtu: u16) -> io::Result<()> {
    let ctl = Ctl::open()?;
    ctl.set_mtu(&link.name, mtu)?;
    ctl.set_up(&link.name)?;
    if let Err(e) = ctl.enable_gro(&link.name) {
        // Not every driver has GRO to switch (loopback-like devices): not fatal.
        log::debug!("{}: cannot turn GRO on: {e}", link.name);
    }
    let ipv6 = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", link.name);
    if Path::new(&ipv6).exists() {
        fs::write(&ipv6, "1")?;
    }
    Ok(())
}

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

    fn set_up(&self, name: &str) -> io::Result<()> {
        let mut req = Self::ifreq(name)?;
        self.ioctl(libc::SIOCGIFFLAGS, &mut req)?;
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        self.ioctl(libc::SIOCSIFFLAGS, &mut req)
    }

    /// ETHTOOL_SGRO through SIOCETHTOOL.
    fn enable_gro(&self, name: &str) -> io::Result<()> {
        #[repr(C)]
        struct EthtoolValue {
            cmd: u32,
            data: u32,
        }
        const ETHTOOL_SGRO: u32 = 0x2c;
        const SIOCETHTOOL: libc::c_ulong = 0x8946;
        let mut value = EthtoolValue {
            cmd: ETHTOOL_SGRO,
            data: 1,
        };
        let mut req = Self::ifreq(name)?;
        req.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
        self.ioctl(SIOCETHTOOL, &mut req)
    }
}
