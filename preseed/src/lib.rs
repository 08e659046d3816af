//! First-boot configuration shared by the host and the device: the network and Wi-Fi choices
//! console-conf makes, and `console-conf.json`, the preseed file that makes them with no person
//! at the console.
//!
//! The device (`coreforge-agent`) applies these; the host (`coreforge build-image --preseed`)
//! validates a preseed file before it places it on the boot partition, so a typo is found at
//! build time and not on the device.

use std::net::Ipv4Addr;

// Validating constructors for Network and Wifi (console text and preseed values).
mod validate;
pub use validate::{netmask, network_of, valid_interface, NetworkError, WifiError};

mod file;
pub use file::*;

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
