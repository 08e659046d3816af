//! The network during first boot: which interfaces there are, bringing one up by DHCP or with
//! a static IPv4 address (the agent needs it for the identity look-ups), and the files that
//! let the OS do the same on every later boot.
//!
//! The agent has no `ip`, `udhcpc` or `ifconfig`: links, addresses and routes are set with
//! socket ioctls (`sys`), and DHCP is our own client (`dhcp`) over a UDP socket (`udp`).

mod dhcp;
mod files;
mod sys;
mod udp;

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use dhcp::{DhcpError, Lease};
#[allow(unused_imports)] // for the commit (state) and console-conf, until wired
pub use files::{os_files, resolv_conf};

use crate::setup::Network;

/// Where the kernel lists the network interfaces.
const SYS_CLASS_NET: &str = "/sys/class/net";
/// The initramfs's resolver configuration, for the agent's own name look-ups.
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// How long to wait for a link (cable, virtio) after bringing an interface up.
const CARRIER_WAIT: Duration = Duration::from_secs(5);
/// How long listing the interfaces waits for links of interfaces it brought up.
const LINK_SETTLE: Duration = Duration::from_secs(3);

/// A network interface found in `/sys/class/net`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Kernel name, e.g. `eth0`.
    pub name: String,
    /// Hardware address as the kernel prints it, e.g. `52:54:00:12:34:56`.
    pub mac: String,
    /// Wired or wireless.
    pub kind: Kind,
    /// Whether a link is detected (cable plugged, associated); false while the interface is down.
    pub carrier: bool,
    /// IPv4 addresses currently set, with their prefix lengths.
    pub addresses: Vec<(Ipv4Addr, u8)>,
}

/// What sort of link an interface has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ethernet and the like.
    Wired,
    /// 802.11 (the kernel shows `wireless` or `phy80211`).
    Wireless,
}

/// Why the network could not be brought up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The interface named does not exist.
    #[error("there is no network interface {interface} on this device (it has: {existing}): name one of those, or check that its driver is in the initramfs")]
    NoInterface {
        /// The interface named.
        interface: String,
        /// The interfaces that exist, comma separated (`none` if there are none).
        existing: String,
    },
    /// The interface name is not one coreforge accepts (it would reach a shell in the OS's
    /// ifupdown configuration).
    #[error("interface name {0:?} is not valid: use 1-15 letters, digits, '_', '.' or '-' (for example eth0)")]
    BadName(String),
    /// Setting the interface up failed.
    #[error("could not bring {interface} up: {source}")]
    Link {
        /// The interface.
        interface: String,
        /// The kernel's answer.
        source: io::Error,
    },
    /// DHCP failed on an interface that has no link.
    #[error(
        "{interface} has no link: check that the cable is plugged in (or choose another interface)"
    )]
    NoCarrier {
        /// The interface.
        interface: String,
    },
    /// DHCP found no server or no lease.
    #[error("no address from DHCP on {interface}: {source}. Check that a DHCP server is on this network, or configure a static address")]
    Dhcp {
        /// The interface.
        interface: String,
        /// What the exchange saw.
        source: DhcpError,
    },
    /// Setting an address or route failed.
    #[error("could not set the {what} of {interface}: {source}")]
    Configure {
        /// The interface.
        interface: String,
        /// `address`, `default route`, `hardware address`.
        what: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
    /// The initramfs's resolv.conf could not be written.
    #[error("could not write {path}: {source} (names will not resolve; use addresses)")]
    ResolvConf {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The network interfaces, loopback left out, sorted by name.
///
/// Wired interfaces that are down are brought up first (and given a moment to find their
/// link): the kernel reports no carrier for a down interface, which would read as "no cable".
pub fn interfaces() -> io::Result<Vec<Interface>> {
    let sys_net = Path::new(SYS_CLASS_NET);
    let mut raised = Vec::new();
    for wired in interfaces_in(sys_net, &[])?
        .into_iter()
        .filter(|i| i.kind == Kind::Wired)
    {
        if !sys::is_up(&wired.name).unwrap_or(true) && sys::link_up(&wired.name).is_ok() {
            raised.push(wired.name);
        }
    }
    let started = Instant::now();
    while started.elapsed() < LINK_SETTLE
        && !raised.iter().all(|name| sys::running(name).unwrap_or(true))
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let addresses = sys::ipv4_addresses()?;
    interfaces_in(sys_net, &addresses)
}

/// `interfaces()` over a sysfs directory and a list of addresses (tests give fake ones).
fn interfaces_in(sys: &Path, addresses: &[(String, Ipv4Addr, u8)]) -> io::Result<Vec<Interface>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(sys)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let dir = entry.path();
        // Only Ethernet-type links (wired and 802.11 alike): not loopback, nor the tunnels
        // (sit0, tunl0) some kernels create by themselves.
        let ether = matches!(read_trimmed(&dir.join("type")).as_deref(), None | Some("1"));
        if name == "lo" || !ether {
            continue;
        }
        let kind = if dir.join("wireless").exists() || dir.join("phy80211").exists() {
            Kind::Wireless
        } else {
            Kind::Wired
        };
        found.push(Interface {
            mac: read_trimmed(&dir.join("address")).unwrap_or_default(),
            kind,
            // Reading `carrier` fails (EINVAL) while the interface is down: no link known.
            carrier: read_trimmed(&dir.join("carrier")).as_deref() == Some("1"),
            addresses: addresses
                .iter()
                .filter(|(n, _, _)| *n == name)
                .map(|(_, ip, prefix)| (*ip, *prefix))
                .collect(),
            name,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The names of the interfaces in `/sys/class/net` (loopback left out), sorted.
pub fn interface_names() -> Vec<String> {
    names_in(Path::new(SYS_CLASS_NET))
}

fn names_in(sys: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sys)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names
}

/// Refuses `interface` unless it is a name coreforge accepts and one of `existing` (the
/// device's interfaces): the error names it and the ones there are.
pub fn require_interface(interface: &str, existing: &[String]) -> Result<(), NetError> {
    if !coreforge_preseed::valid_interface(interface) {
        return Err(NetError::BadName(interface.to_owned()));
    }
    if existing.iter().any(|n| n == interface) {
        return Ok(());
    }
    Err(NetError::NoInterface {
        interface: interface.to_owned(),
        existing: if existing.is_empty() {
            "none".to_owned()
        } else {
            existing.join(", ")
        },
    })
}

/// Brings `interface` up (SIOCSIFFLAGS).
pub fn link_up(interface: &str) -> Result<(), NetError> {
    if !coreforge_preseed::valid_interface(interface) {
        return Err(NetError::BadName(interface.to_owned()));
    }
    sys::link_up(interface).map_err(|source| match source.raw_os_error() {
        Some(libc::ENODEV) => match require_interface(interface, &interface_names()) {
            Err(e) => e,
            // It appeared meanwhile: report the kernel's answer.
            Ok(()) => NetError::Link {
                interface: interface.to_owned(),
                source,
            },
        },
        _ => NetError::Link {
            interface: interface.to_owned(),
            source,
        },
    })
}

/// The IPv4 addresses of every interface but loopback, for the login details screen.
pub fn addresses() -> io::Result<Vec<(String, Ipv4Addr)>> {
    Ok(sys::ipv4_addresses()?
        .into_iter()
        .filter(|(_, ip, _)| !ip.is_loopback())
        .map(|(name, ip, _)| (name, ip))
        .collect())
}

/// Configures `network` for the agent itself: DHCP (waiting at most `timeout`) or static
/// address, default route and `/etc/resolv.conf`. Returns the addresses the device now has.
pub fn bring_up(network: &Network, timeout: Duration) -> Result<Vec<Ipv4Addr>, NetError> {
    bring_up_with(network, timeout, Path::new(RESOLV_CONF))
}

/// `bring_up` writing name servers to `resolv` (tests keep the host's file alone).
fn bring_up_with(
    network: &Network,
    timeout: Duration,
    resolv: &Path,
) -> Result<Vec<Ipv4Addr>, NetError> {
    match network {
        Network::None => Ok(Vec::new()),
        Network::Static {
            interface,
            address,
            prefix,
            gateway,
            dns,
        } => {
            link_up(interface)?;
            apply(interface, *address, *prefix, *gateway, dns, resolv)?;
            Ok(vec![*address])
        }
        Network::Dhcp { interface } => {
            let lease = dhcp(interface, timeout)?;
            log::info!(
                "net: {interface}: {}/{} from DHCP server {} (router {:?}, dns {:?}, lease {:?} s)",
                lease.address,
                lease.prefix,
                lease.server,
                lease.router,
                lease.dns,
                lease.lease_secs
            );
            apply(
                interface,
                lease.address,
                lease.prefix,
                lease.router,
                &lease.dns,
                resolv,
            )?;
            Ok(vec![lease.address])
        }
    }
}

/// Runs DHCP on `interface` until a lease is granted or `timeout` passes.
pub fn dhcp(interface: &str, timeout: Duration) -> Result<Lease, NetError> {
    link_up(interface)?;
    let started = Instant::now();
    // A fresh link (virtio, a cable) needs a moment; DHCP would only retransmit meanwhile.
    while !sys::running(interface).unwrap_or(true) && started.elapsed() < CARRIER_WAIT.min(timeout)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let configure = |what, source| NetError::Configure {
        interface: interface.to_owned(),
        what,
        source,
    };
    let mac = sys::hardware_address(interface).map_err(|e| configure("hardware address", e))?;
    let client = dhcp::Client {
        mac,
        xid: dhcp::new_xid(&mac),
    };
    let mut transport =
        udp::UdpTransport::open(interface).map_err(|e| configure("DHCP socket", e))?;
    client
        .obtain(&mut transport, timeout.saturating_sub(started.elapsed()))
        .map_err(|source| {
            if !sys::running(interface).unwrap_or(true) {
                NetError::NoCarrier {
                    interface: interface.to_owned(),
                }
            } else {
                NetError::Dhcp {
                    interface: interface.to_owned(),
                    source,
                }
            }
        })
}

/// Sets the address, the default route and the name servers.
fn apply(
    interface: &str,
    address: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
    dns: &[Ipv4Addr],
    resolv: &Path,
) -> Result<(), NetError> {
    let configure = |what, source| NetError::Configure {
        interface: interface.to_owned(),
        what,
        source,
    };
    sys::set_address(interface, address, prefix).map_err(|e| configure("address", e))?;
    if let Some(gateway) = gateway {
        sys::add_default_route(interface, gateway).map_err(|e| configure("default route", e))?;
    }
    if !dns.is_empty() {
        std::fs::write(resolv, resolv_conf(dns)).map_err(|source| NetError::ResolvConf {
            path: resolv.to_owned(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// Interface names a shell would act on, or that are too long or a path: refused everywhere
/// (the tests of every place that takes a name try them all).
#[cfg(test)]
pub(crate) const HOSTILE_NAMES: &[&str] = &[
    "eth0;reboot",
    "$(x)",
    "`x`",
    "wl an0",
    "wl\nan0",
    "abcdefghijklmnop",
    "..",
];
