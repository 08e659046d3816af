//! The OS's network configuration files, in the form its base reads: systemd-networkd's
//! `.network` units and `wpa_supplicant@<interface>.service` on the Debian base, busybox
//! ifupdown's `/etc/network/interfaces` on the busybox test base; `/etc/resolv.conf` for
//! static name servers and wpa_supplicant's configuration for Wi-Fi on both.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use coreforge_preseed::valid_interface;

use crate::setup::{Network, Os, OsFile, Wifi, WifiSecret};

/// Where the OS's init (`ifup -a`) reads the interfaces.
pub const INTERFACES: &str = "etc/network/interfaces";
/// The resolver's name servers.
pub const RESOLV_CONF: &str = "etc/resolv.conf";
/// The Wi-Fi network for wpa_supplicant (holds the secret: 0600).
pub const WPA_SUPPLICANT: &str = "etc/wpa_supplicant/wpa_supplicant.conf";
/// systemd-networkd's configuration folder.
pub const NETWORKD: &str = "etc/systemd/network";
/// Where the OS's own systemd units and their `.wants` links live.
pub const SYSTEMD_SYSTEM: &str = "etc/systemd/system";

/// The files the commit writes for the OS `os` to bring up `network` and `wifi` by itself.
pub fn os_files(network: &Network, wifi: Option<&Wifi>, os: Os) -> Vec<OsFile> {
    let mut files = match os {
        Os::Busybox => vec![file(INTERFACES, interfaces(network, wifi), 0o644)],
        Os::Systemd => networkd(network, wifi),
    };
    if let Network::Static { dns, .. } = network {
        if !dns.is_empty() {
            files.push(file(RESOLV_CONF, resolv_conf(dns), 0o644));
        }
    }
    if let Some(wifi) = wifi.filter(|w| valid_interface(&w.interface)) {
        match os {
            Os::Busybox => files.push(file(WPA_SUPPLICANT, wpa_supplicant(wifi), 0o600)),
            Os::Systemd => {
                let interface = &wifi.interface;
                files.push(file(
                    &format!("etc/wpa_supplicant/wpa_supplicant-{interface}.conf"),
                    wpa_supplicant(wifi),
                    0o600,
                ));
                // Wanted by the interface's device unit, not by multi-user.target: it starts
                // when the interface appears, which for a radio whose driver the OS loads
                // (brcmfmac, mac80211_hwsim) is after boot; multi-user.target would wait 90 s
                // for the device at boot and give up.
                let device = format!(
                    "sys-subsystem-net-devices-{}.device",
                    crate::unit_name::escape(interface)
                );
                files.push(OsFile {
                    path: PathBuf::from(format!(
                        "{SYSTEMD_SYSTEM}/{device}.wants/wpa_supplicant@{interface}.service"
                    )),
                    contents: Vec::new(),
                    mode: 0o777,
                    link: Some(PathBuf::from("/lib/systemd/system/wpa_supplicant@.service")),
                });
            }
        }
    }
    files
}

fn file(path: &str, contents: String, mode: u32) -> OsFile {
    OsFile {
        path: PathBuf::from(path),
        contents: contents.into_bytes(),
        mode,
        link: None,
    }
}

/// systemd-networkd units: one per interface, DHCP or static. Only names of
/// [`valid_interface`]'s set are written (they become file names).
fn networkd(network: &Network, wifi: Option<&Wifi>) -> Vec<OsFile> {
    let header = "# Written by coreforge console-conf on first boot.\n";
    let mut files = Vec::new();
    let wired = network.interface().filter(|name| valid_interface(name));
    if let Some(interface) = wired {
        let mut text = format!("{header}[Match]\nName={interface}\n\n[Network]\n");
        match network {
            Network::Dhcp { .. } => text.push_str("DHCP=ipv4\n"),
            Network::Static {
                address,
                prefix,
                gateway,
                dns,
                ..
            } => {
                let _ = writeln!(text, "Address={address}/{prefix}");
                if let Some(gateway) = gateway {
                    let _ = writeln!(text, "Gateway={gateway}");
                }
                for server in dns {
                    let _ = writeln!(text, "DNS={server}");
                }
            }
            Network::None => {}
        }
        files.push(file(
            &format!("{NETWORKD}/10-coreforge-{interface}.network"),
            text,
            0o644,
        ));
    }
    if let Some(wifi) = wifi.filter(|w| valid_interface(&w.interface)) {
        // The same interface cannot be both; the wired choice above wins.
        if wired != Some(wifi.interface.as_str()) {
            let interface = &wifi.interface;
            files.push(file(
                &format!("{NETWORKD}/20-coreforge-{interface}.network"),
                format!("{header}[Match]\nName={interface}\n\n[Network]\nDHCP=ipv4\n"),
                0o644,
            ));
        }
    }
    files
}

/// `/etc/network/interfaces` in busybox ifupdown syntax.
///
/// ifup hands `pre-up` and `post-down` lines to a shell, so only names of
/// [`coreforge_preseed::valid_interface`]'s set (letters, digits, `_`, `.`, `-`: nothing a
/// shell quotes, expands or ends a command at) are written. The validating constructors and
/// the commit refuse any other name before this; a `Network` or `Wifi` built around them
/// gets no stanza here at all.
fn interfaces(network: &Network, wifi: Option<&Wifi>) -> String {
    let mut text = String::from(
        "# Written by coreforge console-conf on first boot.\n\nauto lo\niface lo inet loopback\n",
    );
    let network = match network.interface() {
        Some(name) if !valid_interface(name) => &Network::None,
        _ => network,
    };
    let wifi = wifi.filter(|w| valid_interface(&w.interface));
    match network {
        Network::Dhcp { interface } => {
            let _ = write!(text, "\nauto {interface}\niface {interface} inet dhcp\n");
        }
        Network::Static {
            interface,
            address,
            prefix,
            gateway,
            ..
        } => {
            let _ = write!(
                text,
                "\nauto {interface}\niface {interface} inet static\n    address {address}\n    netmask {}\n",
                coreforge_preseed::netmask(*prefix)
            );
            if let Some(gateway) = gateway {
                let _ = writeln!(text, "    gateway {gateway}");
            }
        }
        Network::None => {}
    }
    if let Some(wifi) = wifi {
        // The same interface cannot be both; the wired choice above wins.
        if network.interface() != Some(wifi.interface.as_str()) {
            let interface = &wifi.interface;
            let _ = write!(
                text,
                "\nauto {interface}\niface {interface} inet dhcp\n    pre-up wpa_supplicant -B -i {interface} -c /{WPA_SUPPLICANT}\n    post-down killall -q wpa_supplicant\n"
            );
        }
    }
    text
}

/// A resolv.conf naming `servers`.
pub fn resolv_conf(servers: &[Ipv4Addr]) -> String {
    let mut text = String::from("# Written by coreforge.\n");
    for server in servers {
        let _ = writeln!(text, "nameserver {server}");
    }
    text
}

/// wpa_supplicant's configuration for one WPA2-Personal network.
fn wpa_supplicant(wifi: &Wifi) -> String {
    let psk = match &wifi.secret {
        // wpa_supplicant takes everything between the first and the last quote, so a
        // passphrase of printable ASCII (validated) needs no escaping.
        WifiSecret::Passphrase(passphrase) => format!("\"{passphrase}\""),
        WifiSecret::Psk(bytes) => hex(bytes),
    };
    format!(
        "# Written by coreforge console-conf on first boot.\nctrl_interface=/run/wpa_supplicant\nupdate_config=0\n\nnetwork={{\n    ssid={}\n    scan_ssid=1\n    key_mgmt=WPA-PSK\n    psk={psk}\n}}\n",
        ssid(&wifi.ssid)
    )
}

/// A quoted SSID when it is plain printable text, otherwise hex (wpa_supplicant reads both).
fn ssid(ssid: &str) -> String {
    if ssid
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"')
    {
        format!("\"{ssid}\"")
    } else {
        hex(ssid.as_bytes())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn text(files: &[OsFile], path: &str) -> String {
        let f = files.iter().find(|f| f.path == Path::new(path)).unwrap();
        String::from_utf8(f.contents.clone()).unwrap()
    }

    fn paths(files: &[OsFile]) -> Vec<(String, u32)> {
        files
            .iter()
            .map(|f| (f.path.display().to_string(), f.mode))
            .collect()
    }

    #[test]
    fn dhcp() {
        let files = os_files(&Network::dhcp("eth0").unwrap(), None, Os::Busybox);
        assert_eq!(paths(&files), [(INTERFACES.to_owned(), 0o644)]);
        let body = text(&files, INTERFACES);
        assert!(body.contains("auto lo\niface lo inet loopback\n"), "{body}");
        assert!(
            body.ends_with("\nauto eth0\niface eth0 inet dhcp\n"),
            "{body}"
        );
    }

    #[test]
    fn static_with_gateway_and_dns() {
        let net = Network::parse_static(
            "eth1",
            "192.168.1.10/20",
            "192.168.1.1",
            "192.168.1.1 9.9.9.9",
        )
        .unwrap();
        let files = os_files(&net, None, Os::Busybox);
        assert_eq!(
            paths(&files),
            [
                (INTERFACES.to_owned(), 0o644),
                (RESOLV_CONF.to_owned(), 0o644)
            ]
        );
        assert!(text(&files, INTERFACES).ends_with(
            "\nauto eth1\niface eth1 inet static\n    address 192.168.1.10\n    netmask 255.255.240.0\n    gateway 192.168.1.1\n"
        ));
        assert_eq!(
            text(&files, RESOLV_CONF),
            "# Written by coreforge.\nnameserver 192.168.1.1\nnameserver 9.9.9.9\n"
        );
    }

    #[test]
    fn static_without_gateway_or_dns() {
        let net = Network::parse_static("eth0", "10.1.2.3/8", "", "").unwrap();
        let files = os_files(&net, None, Os::Busybox);
        assert_eq!(files.len(), 1, "no resolv.conf without name servers");
        let body = text(&files, INTERFACES);
        assert!(body.ends_with("    netmask 255.0.0.0\n"), "{body}");
        assert!(!body.contains("gateway"));
    }

    #[test]
    fn none_is_loopback_only() {
        let files = os_files(&Network::None, None, Os::Busybox);
        let body = text(&files, INTERFACES);
        assert!(
            body.ends_with("auto lo\niface lo inet loopback\n"),
            "{body}"
        );
        assert_eq!(body.matches("auto ").count(), 1);
    }

    #[test]
    fn wifi_passphrase() {
        let wifi = Wifi::new("wlan0", "home net", "pa\"ss #word").unwrap();
        let files = os_files(&Network::None, Some(&wifi), Os::Busybox);
        assert_eq!(
            paths(&files),
            [
                (INTERFACES.to_owned(), 0o644),
                (WPA_SUPPLICANT.to_owned(), 0o600)
            ]
        );
        let conf = text(&files, WPA_SUPPLICANT);
        assert!(conf.contains("\n    ssid=\"home net\"\n"), "{conf}");
        assert!(conf.contains("\n    psk=\"pa\"ss #word\"\n"), "{conf}");
        assert!(conf.contains("key_mgmt=WPA-PSK"));
        let body = text(&files, INTERFACES);
        assert!(body.contains("\nauto wlan0\niface wlan0 inet dhcp\n    pre-up wpa_supplicant -B -i wlan0 -c /etc/wpa_supplicant/wpa_supplicant.conf\n"), "{body}");
    }

    #[test]
    fn wifi_psk_and_odd_ssid() {
        let hex_psk = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff";
        let wifi = Wifi::new("wlan0", "café\"", hex_psk).unwrap();
        let files = os_files(&Network::dhcp("eth0").unwrap(), Some(&wifi), Os::Busybox);
        let conf = text(&files, WPA_SUPPLICANT);
        assert!(
            conf.contains(&format!("\n    psk={}\n", hex_psk.to_lowercase())),
            "{conf}"
        );
        assert!(conf.contains("\n    ssid=636166c3a922\n"), "{conf}");
        let body = text(&files, INTERFACES);
        assert!(
            body.contains("iface eth0 inet dhcp") && body.contains("iface wlan0 inet dhcp"),
            "{body}"
        );
    }

    /// Names built around the validating constructors (the fields are public) never reach
    /// the file busybox ifup runs through a shell.
    #[test]
    fn names_with_shell_syntax_are_not_written() {
        for bad in crate::net::HOSTILE_NAMES.iter().copied() {
            let wired = Network::Dhcp {
                interface: bad.into(),
            };
            let wifi = Wifi {
                interface: bad.into(),
                ssid: "home".into(),
                secret: WifiSecret::Passphrase("12345678".into()),
            };
            let body = text(&os_files(&wired, Some(&wifi), Os::Busybox), INTERFACES);
            assert!(!body.contains(bad), "{bad:?}: {body}");
            assert_eq!(body.matches("iface ").count(), 1, "{bad:?}: {body}");
            assert!(!body.contains("pre-up"), "{bad:?}: {body}");
        }
    }

    #[test]
    fn wifi_on_the_wired_interface_is_not_doubled() {
        let wifi = Wifi::new("eth0", "home", "12345678").unwrap();
        let body = text(
            &os_files(&Network::dhcp("eth0").unwrap(), Some(&wifi), Os::Busybox),
            INTERFACES,
        );
        assert_eq!(body.matches("iface eth0").count(), 1, "{body}");
    }

    #[test]
    fn systemd_dhcp_is_a_networkd_unit_and_nothing_for_ifupdown() {
        let files = os_files(&Network::dhcp("eth0").unwrap(), None, Os::Systemd);
        let unit = "etc/systemd/network/10-coreforge-eth0.network";
        assert_eq!(paths(&files), [(unit.to_owned(), 0o644)]);
        assert!(
            text(&files, unit).ends_with("[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n"),
            "{}",
            text(&files, unit)
        );
    }

    #[test]
    fn systemd_static_with_gateway_and_dns() {
        let net = Network::Static {
            interface: "end0".into(),
            address: Ipv4Addr::new(192, 168, 7, 20),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(192, 168, 7, 1)),
            dns: vec![Ipv4Addr::new(9, 9, 9, 9)],
        };
        let files = os_files(&net, None, Os::Systemd);
        let unit = "etc/systemd/network/10-coreforge-end0.network";
        assert_eq!(
            text(&files, unit).split_once("[Network]\n").unwrap().1,
            "Address=192.168.7.20/24\nGateway=192.168.7.1\nDNS=9.9.9.9\n"
        );
        assert_eq!(
            text(&files, RESOLV_CONF),
            "# Written by coreforge.\nnameserver 9.9.9.9\n"
        );
    }

    /// Wi-Fi on the Debian base: the interface's own wpa_supplicant file, its service enabled
    /// the way `systemctl enable wpa_supplicant@wlan0` links it, and DHCP on it.
    #[test]
    fn systemd_wifi_enables_wpa_supplicant_at_the_interface() {
        let wifi = Wifi::new("wlan0", "home net", "secret passphrase").unwrap();
        let files = os_files(&Network::dhcp("eth0").unwrap(), Some(&wifi), Os::Systemd);
        assert_eq!(
            paths(&files),
            [
                (
                    "etc/systemd/network/10-coreforge-eth0.network".to_owned(),
                    0o644
                ),
                (
                    "etc/systemd/network/20-coreforge-wlan0.network".to_owned(),
                    0o644
                ),
                (
                    "etc/wpa_supplicant/wpa_supplicant-wlan0.conf".to_owned(),
                    0o600
                ),
                (
                    "etc/systemd/system/sys-subsystem-net-devices-wlan0.device.wants/wpa_supplicant@wlan0.service"
                        .to_owned(),
                    0o777
                ),
            ]
        );
        let link = files.last().unwrap();
        assert_eq!(
            link.link.as_deref(),
            Some(Path::new("/lib/systemd/system/wpa_supplicant@.service"))
        );
        let conf = text(&files, "etc/wpa_supplicant/wpa_supplicant-wlan0.conf");
        assert!(conf.contains("\n    ssid=\"home net\"\n"), "{conf}");
        assert!(
            text(&files, "etc/systemd/network/20-coreforge-wlan0.network")
                .ends_with("Name=wlan0\n\n[Network]\nDHCP=ipv4\n")
        );
    }
}
