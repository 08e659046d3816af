//! What console-conf or a preseed file decided: the whole input of the first-boot commit.
//!
//! These are plain values shared by the network, identity, console-conf and commit modules, so
//! each can be built and tested on its own. Every value here has been validated by the module
//! that produced it (an interface that exists, keys that `ssh-key` parsed, a valid user name).

pub use coreforge_preseed::{Network, Wifi, WifiSecret};

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

/// The account console-conf creates: no password (unless a brand-signed system-user
/// assertion gives a hash), sudo rights, these SSH keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Account {
    /// Login name (validated: lower-case letters, digits, `-`, `_`, starting with a letter).
    pub username: String,
    /// Public keys in `authorized_keys` form, one per entry, each parsed by `ssh-key`.
    pub keys: Vec<String>,
    /// Where the keys came from, for the login details, e.g. `store account alice@example.com`.
    pub source: String,
    /// A crypt(3) hash (`$6$...`) from a system-user assertion; `None`: no password.
    pub password: Option<String>,
}

/// A root-owned file for the OS's writable state, e.g. the network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsFile {
    /// Path relative to the OS's root, e.g. `etc/network/interfaces`.
    pub path: std::path::PathBuf,
    /// Whole contents (empty for a link).
    pub contents: Vec<u8>,
    /// Permission bits, e.g. `0o644` (`0o600` for secrets).
    pub mode: u32,
    /// When set, a symbolic link to this target instead of a file (`systemctl enable`'s
    /// links in `*.wants/`).
    pub link: Option<std::path::PathBuf>,
}

/// The kind of OS in the base snap, which decides the configuration files it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Debian with systemd: systemd-networkd, wpa_supplicant@.service, OpenSSH, sudo.
    Systemd,
    /// The busybox test base: ifupdown's interfaces, dropbear.
    Busybox,
}

impl Os {
    /// The OS of the base snap mounted at `base`: systemd if it has systemd's manager.
    pub fn of(base: &std::path::Path) -> Os {
        // Debian's merged /usr: lib is a relative link to usr/lib, which resolves here too.
        if base.join("usr/lib/systemd/systemd").exists()
            || base.join("lib/systemd/systemd").exists()
        {
            Os::Systemd
        } else {
            Os::Busybox
        }
    }
}
