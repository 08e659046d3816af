//! The kernel side: interface flags, hardware address, IPv4 address, netmask and default route
//! through the classic socket ioctls (what `ifconfig` and `route` do), and the addresses in use
//! through `getifaddrs`. There is no `ip` program in the initramfs to do it for us.

use std::ffi::CStr;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An `AF_INET` datagram socket: the handle the interface ioctls need.
pub fn inet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh, valid descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `ifreq` naming `interface` (at most 15 bytes, checked).
fn ifreq(interface: &str) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = interface.as_bytes();
    if name.is_empty() || name.len() >= req.ifr_name.len() || name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{interface:?} is not an interface name"),
        ));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

fn ioctl(fd: &OwnedFd, request: libc::Ioctl, arg: *mut libc::c_void) -> io::Result<()> {
    // SAFETY: every caller passes a request whose argument is the struct `arg` points to.
    if unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn sockaddr(address: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(address).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; the kernel reads it by family.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn flags(fd: &OwnedFd, interface: &str) -> io::Result<(libc::ifreq, libc::c_int)> {
    let mut req = ifreq(interface)?;
    ioctl(fd, libc::SIOCGIFFLAGS, (&raw mut req).cast())?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = libc::c_int::from(unsafe { req.ifr_ifru.ifru_flags });
    Ok((req, flags))
}

/// Sets `IFF_UP` on `interface` (SIOCSIFFLAGS), keeping its other flags.
pub fn link_up(interface: &str) -> io::Result<()> {
    let fd = inet_socket()?;
    let (mut req, current) = flags(&fd, interface)?;
    if current & libc::IFF_UP != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = (current | libc::IFF_UP) as libc::c_short;
    ioctl(&fd, libc::SIOCSIFFLAGS, (&raw mut req).cast())
}

/// Whether the interface is up (`IFF_UP`).
pub fn is_up(interface: &str) -> io::Result<bool> {
    let (_, current) = flags(&inet_socket()?, interface)?;
    Ok(current & libc::IFF_UP != 0)
}

/// Whether the interface is up and its driver reports a link (`IFF_RUNNING`).
pub fn running(interface: &str) -> io::Result<bool> {
    let (_, current) = flags(&inet_socket()?, interface)?;
    Ok(current & libc::IFF_UP != 0 && current & libc::IFF_RUNNING != 0)
}

/// The interface's Ethernet address (SIOCGIFHWADDR).
pub fn hardware_address(interface: &str) -> io::Result<[u8; 6]> {
    let fd = inet_socket()?;
    let mut req = ifreq(interface)?;
    ioctl(&fd, libc::SIOCGIFHWADDR, (&raw mut req).cast())?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    if hw.sa_family != libc::ARPHRD_ETHER {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{interface} is not an Ethernet interface (hardware type {})",
                hw.sa_family
            ),
        ));
    }
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *dst = *src as u8;
    }
    Ok(mac)
}

/// Gives `interface` the address `address`/`prefix` (SIOCSIFADDR, then SIOCSIFNETMASK, which
/// also sets the broadcast address and the subnet's route).
pub fn set_address(interface: &str, address: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let fd = inet_socket()?;
    let mut req = ifreq(interface)?;
    req.ifr_ifru.ifru_addr = sockaddr(address);
    ioctl(&fd, libc::SIOCSIFADDR, (&raw mut req).cast())?;
    let mut req = ifreq(interface)?;
    req.ifr_ifru.ifru_netmask = sockaddr(coreforge_preseed::netmask(prefix));
    ioctl(&fd, libc::SIOCSIFNETMASK, (&raw mut req).cast())
}

/// Adds the default route through `gateway` on `interface` (SIOCADDRT); one already there is
/// kept.
pub fn add_default_route(interface: &str, gateway: Ipv4Addr) -> io::Result<()> {
    let fd = inet_socket()?;
    let mut device = ifreq(interface)?.ifr_name;
    // SAFETY: rtentry is plain old data; all zeroes is a valid value.
    let mut route: libc::rtentry = unsafe { std::mem::zeroed() };
    route.rt_dst = sockaddr(Ipv4Addr::UNSPECIFIED);
    route.rt_genmask = sockaddr(Ipv4Addr::UNSPECIFIED);
    route.rt_gateway = sockaddr(gateway);
    route.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
    // The kernel copies the name during the call; `device` outlives it.
    route.rt_dev = device.as_mut_ptr();
    match ioctl(&fd, libc::SIOCADDRT, (&raw mut route).cast()) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        other => other,
    }
}

/// Every IPv4 address in use, as (interface, address, prefix), loopback included.
pub fn ipv4_addresses() -> io::Result<Vec<(String, Ipv4Addr, u8)>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below.
    if unsafe { libc::getifaddrs(&mut list) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned, not yet freed.
        let node = unsafe { &*entry };
        entry = node.ifa_next;
        if let (Some(address), Some(mask)) = (ipv4_of(node.ifa_addr), ipv4_of(node.ifa_netmask)) {
            if node.ifa_name.is_null() {
                continue;
            }
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let name = unsafe { CStr::from_ptr(node.ifa_name) }
                .to_string_lossy()
                .into_owned();
            let prefix = super::dhcp::prefix_of(mask).unwrap_or(32);
            found.push((name, address, prefix));
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

fn ipv4_of(addr: *const libc::sockaddr) -> Option<Ipv4Addr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: a non-null sockaddr from getifaddrs; we read the family before the rest.
    if libc::c_int::from(unsafe { (*addr).sa_family }) != libc::AF_INET {
        return None;
    }
    // SAFETY: an AF_INET sockaddr is a sockaddr_in; read_unaligned copes with any alignment.
    let sin = unsafe { std::ptr::read_unaligned(addr.cast::<libc::sockaddr_in>()) };
    Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_with_its_prefix() {
        let all = ipv4_addresses().unwrap();
        assert!(
            all.iter().any(|(name, ip, prefix)| name == "lo"
                && *ip == Ipv4Addr::LOCALHOST
                && *prefix == 8),
            "{all:?}"
        );
    }

    #[test]
    fn flags_of_loopback_and_missing_interfaces() {
        assert!(running("lo").unwrap());
        let err = running("cf-missing0").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
        assert_eq!(ifreq("").unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            ifreq("sixteen-bytes-xx").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        // Loopback has no Ethernet address.
        assert_eq!(
            hardware_address("lo").unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
    }

    #[test]
    fn sockaddr_layout() {
        let sa = sockaddr(Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(ipv4_of(&sa), Some(Ipv4Addr::new(10, 0, 2, 15)));
    }
}
