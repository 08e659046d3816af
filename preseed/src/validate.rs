//! Constructors that validate what a person typed (or a preseed file said) into a [`Network`]
//! or a [`Wifi`]: console-conf and the preseed parser both build these values only here.

use std::net::Ipv4Addr;

use crate::{Network, Wifi, WifiSecret};

/// Longest interface name Linux accepts (`IFNAMSIZ` - 1).
pub const MAX_INTERFACE: usize = 15;

/// Why an interface name, address, gateway or DNS list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The interface name is not one Linux can have.
    #[error("interface name {0:?} is not valid: use 1-15 letters, digits, '_', '.' or '-' (for example eth0)")]
    Interface(String),
    /// The address is not `a.b.c.d/prefix`.
    #[error("address {0:?} is not valid: write it as a.b.c.d/prefix, for example 192.168.1.10/24")]
    Address(String),
    /// The prefix length is out of range or leaves no room for hosts.
    #[error("prefix /{0} is not valid: use 1-32, for example /24 for a 255.255.255.0 netmask")]
    Prefix(u8),
    /// The address cannot be a host's own address.
    #[error("{0} cannot be this device's address: use a unicast address of the local network")]
    NotHost(Ipv4Addr),
    /// The address is the network or broadcast address of its own subnet.
    #[error("{address} is the {which} address of {network}/{prefix}: pick a host address inside the subnet")]
    Reserved {
        /// The address given.
        address: Ipv4Addr,
        /// `network` or `broadcast`.
        which: &'static str,
        /// The subnet's network address.
        network: Ipv4Addr,
        /// The prefix length.
        prefix: u8,
    },
    /// The gateway is not an IPv4 address.
    #[error(
        "gateway {0:?} is not an IPv4 address: write it as a.b.c.d, or leave it empty for none"
    )]
    Gateway(String),
    /// The gateway is not in the device's subnet, so it cannot be reached.
    #[error("gateway {gateway} is outside {network}/{prefix}: the gateway must be on the device's own subnet")]
    GatewayOutside {
        /// The gateway given.
        gateway: Ipv4Addr,
        /// The subnet's network address.
        network: Ipv4Addr,
        /// The prefix length.
        prefix: u8,
    },
    /// The gateway is the device's own address.
    #[error("gateway {0} is the device's own address: give the router's address")]
    GatewayIsSelf(Ipv4Addr),
    /// A name server is not an IPv4 address.
    #[error("name server {0:?} is not an IPv4 address: write addresses as a.b.c.d, separated by spaces or commas")]
    Dns(String),
    /// More name servers than the resolver uses.
    #[error("{0} name servers given: the resolver uses at most 3")]
    TooManyDns(usize),
}

/// Why a Wi-Fi network was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WifiError {
    /// The interface name is not one Linux can have.
    #[error("interface name {0:?} is not valid: use 1-15 letters, digits, '_', '.' or '-' (for example wlan0)")]
    Interface(String),
    /// The SSID is empty or longer than 32 bytes.
    #[error("network name (SSID) is {0} bytes long: it must be 1-32 bytes")]
    SsidLength(usize),
    /// The secret is neither a passphrase nor a PSK.
    #[error(
        "passphrase is {0} characters long: use 8-63 characters, or the 64 hex digits of a PSK"
    )]
    SecretLength(usize),
    /// The passphrase has a character WPA does not allow.
    #[error("passphrase has a character that is not printable ASCII at position {0}: use letters, digits, spaces and punctuation only")]
    SecretCharacter(usize),
    /// 64 characters that are not all hex digits.
    #[error("a 64-character secret must be a PSK of 64 hex digits (0-9, a-f); a passphrase has at most 63 characters")]
    PskHex,
}

/// Whether `name` is an interface name coreforge accepts: 1-15 bytes of `[A-Za-z0-9_.-]`,
/// and not `.` or `..`.
///
/// Linux allows more (any byte but `/`, `:` and white space), but the name ends up in
/// busybox ifupdown's `/etc/network/interfaces`, whose `pre-up` lines run through a shell:
/// this set cannot quote, expand or end a command there.
pub fn valid_interface(name: &str) -> bool {
    (1..=MAX_INTERFACE).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Network {
    /// A DHCP choice on `interface`, with the name checked.
    pub fn dhcp(interface: &str) -> Result<Network, NetworkError> {
        check_interface(interface)?;
        Ok(Network::Dhcp {
            interface: interface.to_owned(),
        })
    }

    /// A static choice from console text: `address` as `a.b.c.d/prefix`, `gateway` as
    /// `a.b.c.d` or empty for none, `dns` as addresses separated by spaces or commas.
    pub fn parse_static(
        interface: &str,
        address: &str,
        gateway: &str,
        dns: &str,
    ) -> Result<Network, NetworkError> {
        let dns: Vec<&str> = dns
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect();
        let gateway = gateway.trim();
        Network::new_static(
            interface,
            address,
            (!gateway.is_empty()).then_some(gateway),
            &dns,
        )
    }

    /// A static choice from separate values (the preseed file's fields).
    pub fn new_static(
        interface: &str,
        address: &str,
        gateway: Option<&str>,
        dns: &[&str],
    ) -> Result<Network, NetworkError> {
        check_interface(interface)?;
        let (address, prefix) = parse_cidr(address)?;
        let network = network_of(address, prefix);
        let gateway = match gateway {
            None => None,
            Some(text) => {
                let gateway: Ipv4Addr = text
                    .trim()
                    .parse()
                    .map_err(|_| NetworkError::Gateway(text.to_owned()))?;
                if gateway == address {
                    return Err(NetworkError::GatewayIsSelf(gateway));
                }
                if network_of(gateway, prefix) != network {
                    return Err(NetworkError::GatewayOutside {
                        gateway,
                        network,
                        prefix,
                    });
                }
                Some(gateway)
            }
        };
        if dns.len() > 3 {
            return Err(NetworkError::TooManyDns(dns.len()));
        }
        let dns = dns
            .iter()
            .map(|text| {
                text.trim()
                    .parse::<Ipv4Addr>()
                    .ok()
                    .filter(|ip| !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast())
                    .ok_or_else(|| NetworkError::Dns((*text).to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Network::Static {
            interface: interface.to_owned(),
            address,
            prefix,
            gateway,
            dns,
        })
    }

    /// The interface this choice configures, if any.
    pub fn interface(&self) -> Option<&str> {
        match self {
            Network::Dhcp { interface } | Network::Static { interface, .. } => Some(interface),
            Network::None => None,
        }
    }
}

impl Wifi {
    /// A Wi-Fi network from console text: `secret` is a passphrase of 8-63 printable ASCII
    /// characters, or exactly 64 hex digits taken as the raw PSK.
    pub fn new(interface: &str, ssid: &str, secret: &str) -> Result<Wifi, WifiError> {
        if !valid_interface(interface) {
            return Err(WifiError::Interface(interface.to_owned()));
        }
        if ssid.is_empty() || ssid.len() > 32 {
            return Err(WifiError::SsidLength(ssid.len()));
        }
        Ok(Wifi {
            interface: interface.to_owned(),
            ssid: ssid.to_owned(),
            secret: WifiSecret::parse(secret)?,
        })
    }
}

impl WifiSecret {
    /// A passphrase (8-63 printable ASCII) or a PSK (exactly 64 hex digits).
    pub fn parse(text: &str) -> Result<WifiSecret, WifiError> {
        if text.len() == 64 {
            return parse_psk(text).map(WifiSecret::Psk);
        }
        if let Some(at) = text.chars().position(|c| !(' '..='~').contains(&c)) {
            return Err(WifiError::SecretCharacter(at + 1));
        }
        if !(8..=63).contains(&text.len()) {
            return Err(WifiError::SecretLength(text.chars().count()));
        }
        Ok(WifiSecret::Passphrase(text.to_owned()))
    }
}

fn check_interface(name: &str) -> Result<(), NetworkError> {
    if valid_interface(name) {
        Ok(())
    } else {
        Err(NetworkError::Interface(name.to_owned()))
    }
}

fn parse_psk(text: &str) -> Result<[u8; 32], WifiError> {
    let mut psk = [0u8; 32];
    for (byte, pair) in psk.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| WifiError::PskHex)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| WifiError::PskHex)?;
    }
    Ok(psk)
}

/// `a.b.c.d/prefix` into a host address and prefix, refusing what cannot be a host's address.
fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), NetworkError> {
    let bad = || NetworkError::Address(text.to_owned());
    let (ip, prefix) = text.trim().split_once('/').ok_or_else(bad)?;
    let address: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix == 0 || prefix > 32 {
        return Err(NetworkError::Prefix(prefix));
    }
    if address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.is_loopback()
        || address.octets()[0] >= 240
    {
        return Err(NetworkError::NotHost(address));
    }
    // /31 (RFC 3021) and /32 have no network or broadcast address.
    if prefix <= 30 {
        let network = network_of(address, prefix);
        let broadcast = Ipv4Addr::from(u32::from(network) | !mask_bits(prefix));
        for (which, reserved) in [("network", network), ("broadcast", broadcast)] {
            if address == reserved {
                return Err(NetworkError::Reserved {
                    address,
                    which,
                    network,
                    prefix,
                });
            }
        }
    }
    Ok((address, prefix))
}

fn mask_bits(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// The network address of `address`/`prefix`.
pub fn network_of(address: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(address) & mask_bits(prefix.min(32)))
}

/// The netmask of a prefix length, e.g. 24 -> 255.255.255.0.
pub fn netmask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(mask_bits(prefix.min(32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn static_from_console_text() {
        let n = Network::parse_static(
            "eth0",
            "192.168.1.10/24",
            " 192.168.1.1 ",
            "1.1.1.1, 9.9.9.9",
        )
        .unwrap();
        assert_eq!(
            n,
            Network::Static {
                interface: "eth0".into(),
                address: ip("192.168.1.10"),
                prefix: 24,
                gateway: Some(ip("192.168.1.1")),
                dns: vec![ip("1.1.1.1"), ip("9.9.9.9")],
            }
        );
        let n = Network::parse_static("eth0", "10.0.0.5/8", "", "").unwrap();
        assert!(
            matches!(n, Network::Static { gateway: None, ref dns, prefix: 8, .. } if dns.is_empty())
        );
        assert_eq!(n.interface(), Some("eth0"));
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        let st = |a: &str| Network::parse_static("eth0", a, "", "").unwrap_err();
        assert_eq!(
            st("192.168.1.10"),
            NetworkError::Address("192.168.1.10".into())
        );
        assert_eq!(
            st("192.168.1/24"),
            NetworkError::Address("192.168.1/24".into())
        );
        assert_eq!(
            st("192.168.1.10/+4"),
            NetworkError::Address("192.168.1.10/+4".into())
        );
        assert_eq!(st("192.168.1.10/33"), NetworkError::Prefix(33));
        assert_eq!(st("192.168.1.10/0"), NetworkError::Prefix(0));
        assert_eq!(st("0.0.0.0/24"), NetworkError::NotHost(ip("0.0.0.0")));
        assert_eq!(st("127.0.0.1/8"), NetworkError::NotHost(ip("127.0.0.1")));
        assert_eq!(st("224.0.0.1/24"), NetworkError::NotHost(ip("224.0.0.1")));
        assert!(matches!(
            st("192.168.1.0/24"),
            NetworkError::Reserved {
                which: "network",
                ..
            }
        ));
        assert!(matches!(
            st("192.168.1.255/24"),
            NetworkError::Reserved {
                which: "broadcast",
                ..
            }
        ));
        // Point-to-point and host routes have no reserved addresses.
        assert!(Network::parse_static("eth0", "192.168.1.0/31", "", "").is_ok());
        assert!(Network::parse_static("eth0", "192.168.1.7/32", "", "").is_ok());
    }

    #[test]
    fn gateway_and_dns_are_checked() {
        let err = Network::parse_static("eth0", "192.168.1.10/24", "192.168.2.1", "").unwrap_err();
        assert!(matches!(err, NetworkError::GatewayOutside { .. }), "{err}");
        let err = Network::parse_static("eth0", "192.168.1.10/24", "192.168.1.10", "").unwrap_err();
        assert_eq!(err, NetworkError::GatewayIsSelf(ip("192.168.1.10")));
        let err = Network::parse_static("eth0", "192.168.1.10/24", "router", "").unwrap_err();
        assert_eq!(err, NetworkError::Gateway("router".into()));
        let err =
            Network::parse_static("eth0", "192.168.1.10/24", "", "1.1.1.1 one.one").unwrap_err();
        assert_eq!(err, NetworkError::Dns("one.one".into()));
        let err = Network::parse_static(
            "eth0",
            "192.168.1.10/24",
            "",
            "1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4",
        )
        .unwrap_err();
        assert_eq!(err, NetworkError::TooManyDns(4));
        let err =
            Network::parse_static("eth0", "192.168.1.10/24", "", "255.255.255.255").unwrap_err();
        assert!(matches!(err, NetworkError::Dns(_)));
    }

    #[test]
    fn interface_names() {
        for good in [
            "eth0",
            "enp0s3",
            "wlan0",
            "a",
            "abcdefghijklmno",
            "br-lan",
            "eth0.100",
            "wl_0",
            "...",
        ] {
            assert!(valid_interface(good), "{good}");
            assert!(Network::dhcp(good).is_ok());
        }
        for bad in [
            "",
            "abcdefghijklmnop",
            "eth 0",
            "eth/0",
            "eth0:1",
            ".",
            "..",
            "eth\u{e9}",
        ] {
            assert!(!valid_interface(bad), "{bad}");
            assert_eq!(Network::dhcp(bad), Err(NetworkError::Interface(bad.into())));
        }
    }

    /// Names that would run a command where busybox `ifup` hands an interfaces line to a
    /// shell (`pre-up wpa_supplicant -i NAME ...`) are refused by every constructor.
    #[test]
    fn interface_names_with_shell_syntax_are_refused() {
        let sixteen = "abcdefghijklmnop";
        assert_eq!(sixteen.len(), 16);
        for bad in [
            "eth0;reboot",
            ";",
            "$(x)",
            "wl$IFS",
            "`x`",
            "wl`id`",
            "wl an0",
            "wlan0\n",
            "wl\nan0",
            "wl\tan0",
            "wl\ran0",
            "wl|x",
            "wl&x",
            "wl>x",
            "wl'x",
            "wl\"x",
            "wl\\x",
            "wl*",
            "wl#x",
            "wl\0x",
            sixteen,
            "..",
            ".",
        ] {
            assert!(!valid_interface(bad), "{bad:?}");
            assert_eq!(Network::dhcp(bad), Err(NetworkError::Interface(bad.into())));
            assert_eq!(
                Network::parse_static(bad, "192.168.1.10/24", "", ""),
                Err(NetworkError::Interface(bad.into()))
            );
            assert_eq!(
                Network::new_static(bad, "192.168.1.10/24", None, &[]),
                Err(NetworkError::Interface(bad.into()))
            );
            assert_eq!(
                Wifi::new(bad, "home", "12345678"),
                Err(WifiError::Interface(bad.into())),
                "{bad:?}"
            );
        }
        assert!(valid_interface(&sixteen[..15]));
    }

    #[test]
    fn wifi_passphrase_and_psk() {
        let w = Wifi::new("wlan0", "home", "correct horse").unwrap();
        assert_eq!(w.secret, WifiSecret::Passphrase("correct horse".into()));
        assert!(Wifi::new("wlan0", "home", "12345678").is_ok());
        assert!(Wifi::new("wlan0", "home", &"x".repeat(63)).is_ok());
        assert_eq!(
            Wifi::new("wlan0", "home", "1234567"),
            Err(WifiError::SecretLength(7))
        );
        assert_eq!(
            Wifi::new("wlan0", "home", ""),
            Err(WifiError::SecretLength(0))
        );
        assert_eq!(
            Wifi::new("wlan0", "home", "pass\tword"),
            Err(WifiError::SecretCharacter(5))
        );
        assert_eq!(
            Wifi::new("wlan0", "home", "pässword1"),
            Err(WifiError::SecretCharacter(2))
        );

        let hex = "00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100";
        let w = Wifi::new("wlan0", "home", hex).unwrap();
        let WifiSecret::Psk(psk) = w.secret else {
            panic!("not a PSK")
        };
        assert_eq!(psk[0], 0x00);
        assert_eq!(psk[1], 0x11);
        assert_eq!(psk[15], 0xff);
        assert_eq!(psk[16], 0xff);
        assert_eq!(psk[31], 0x00);
        let not_hex = format!("{}g", &hex[..63]);
        assert_eq!(Wifi::new("wlan0", "home", &not_hex), Err(WifiError::PskHex));
        // 64 non-ASCII bytes must not be split inside a character.
        let wide = "é".repeat(32);
        assert_eq!(Wifi::new("wlan0", "home", &wide), Err(WifiError::PskHex));
    }

    #[test]
    fn wifi_ssid_and_interface() {
        assert_eq!(
            Wifi::new("wlan0", "", "12345678"),
            Err(WifiError::SsidLength(0))
        );
        assert_eq!(
            Wifi::new("wlan0", &"s".repeat(33), "12345678"),
            Err(WifiError::SsidLength(33))
        );
        // 32 bytes of UTF-8 (16 two-byte characters) is the longest SSID.
        assert!(Wifi::new("wlan0", &"é".repeat(16), "12345678").is_ok());
        assert_eq!(
            Wifi::new("wlan0", &"é".repeat(17), "12345678"),
            Err(WifiError::SsidLength(34))
        );
        assert_eq!(
            Wifi::new("wl an0", "home", "12345678"),
            Err(WifiError::Interface("wl an0".into()))
        );
    }

    #[test]
    fn masks() {
        assert_eq!(netmask(24), ip("255.255.255.0"));
        assert_eq!(netmask(32), ip("255.255.255.255"));
        assert_eq!(netmask(0), ip("0.0.0.0"));
        assert_eq!(netmask(20), ip("255.255.240.0"));
        assert_eq!(network_of(ip("10.0.2.15"), 24), ip("10.0.2.0"));
    }
}
