//! What console-conf or a preseed file decided: the whole input of the first-boot commit.
//!
//! These are plain values shared by the network, identity, console-conf and commit modules, so
//! each can be built and tested on its own. Every value here has been validated by the module
//! that produced it (an interface that exists, keys that `ssh-key` parsed, a valid user name).

use std::net::Ipv4Addr;

/// The device's configuration, ready to be committed to `writable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// How the OS brings up its wired network.
    pub network: Network,
    /// A Wi-Fi network for the OS to join, if one was given.
    pub wifi: Option<Wifi>,
    /// The account to create.
    pub account: Account,
}

/// The wired network choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// DHCP on this interface.
    Dhcp {
        /// Interface name, e.g. `eth0`.
        interface: String,
    },
    /// A static IPv4 address on this interface.
    Static {
        /// Interface name, e.g. `eth0`.
        interface: String,
        /// The device's address.
        address: Ipv4Addr,
        /// Prefix length of the subnet (0-32).
        prefix: u8,
        /// Default gateway, if any.
        gateway: Option<Ipv4Addr>,
        /// Name servers, in order of preference.
        dns: Vec<Ipv4Addr>,
    },
    /// No wired network (Wi-Fi only, or none at all).
    None,
}

/// A Wi-Fi network for the OS (written for it; the agent does not join it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wifi {
    /// Wireless interface, e.g. `wlan0`.
    pub interface: String,
    /// Network name (1-32 bytes).
    pub ssid: String,
    /// How the device proves it may join.
    pub secret: WifiSecret,
}

/// A WPA2 secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WifiSecret {
    /// A passphrase of 8-63 printable ASCII characters.
    Passphrase(String),
    /// A raw 256-bit PSK (given as 64 hex digits).
    Psk([u8; 32]),
}

/// The account console-conf creates: no password, sudo rights, these SSH keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name (validated: lower-case letters, digits, `-`, `_`, starting with a letter).
    pub username: String,
    /// Public keys in `authorized_keys` form, one per entry, each parsed by `ssh-key`.
    pub keys: Vec<String>,
    /// Where the keys came from, for the login details, e.g. `store account alice@example.com`.
    pub source: String,
}
