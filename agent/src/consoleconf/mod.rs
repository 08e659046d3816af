//! console-conf: the first-boot questions (network, account) asked on every console at once,
//! or answered by a preseed file, ending in the login details.
//!
//! It is a small state machine over a line editor ([`editor`]), on consoles behind a trait
//! ([`term::Terminal`]), with the real work (network, identity look-up, the commit) behind
//! [`Backend`], so every screen is tested with scripted bytes and fakes.

pub mod editor;
mod lines;
mod preseed;
mod screens;
pub mod term;
pub mod text;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use coreforge_preseed::Identity;
pub use preseed::run_preseed;
pub use term::{Consoles, Terminal};

use crate::setup::{Account, Network, Setup};
use lines::{End, Lines};

/// A network interface as the network screen lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Kernel name, e.g. `eth0`.
    pub name: String,
    /// Wi-Fi rather than wired.
    pub wireless: bool,
    /// A cable is plugged in (or, for Wi-Fi, the radio is up).
    pub carrier: bool,
    /// Addresses it has now, e.g. `10.0.2.15/24`.
    pub addresses: Vec<String>,
}

/// What a person needs to log in once the configuration is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The account created.
    pub user: String,
    /// Where its keys came from, e.g. `store account alice@example.com`.
    pub source: String,
    /// The device's addresses (a `/prefix` is dropped for the `ssh` lines).
    pub addresses: Vec<String>,
    /// SSH host key fingerprints, e.g. `ED25519 SHA256:...`.
    pub fingerprints: Vec<String>,
}

/// The work behind the screens; errors are messages to show as they are.
pub trait Backend {
    /// The network interfaces, wired and wireless.
    fn interfaces(&mut self) -> Vec<Interface>;
    /// Brings up a wired network now (for the look-ups); returns the addresses it got.
    fn bring_up(&mut self, network: &Network) -> Result<Vec<String>, String>;
    /// Finds the account and its keys: a store e-mail, `gh:`, `lp:`, or keys given directly.
    fn identity(&mut self, identity: &Identity) -> Result<Account, String>;
    /// Writes the whole configuration atomically; nothing is written if it fails.
    fn commit(&mut self, setup: &Setup) -> Result<Login, String>;
}

/// Settings of an interactive run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// A session with no key pressed for this long ends, writing nothing.
    pub idle: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            idle: Duration::from_secs(15 * 60),
        }
    }
}

/// Asks on every console until one session commits; shows the login details everywhere and
/// returns them. `None` if every console hung up before that (nothing was written).
pub fn run<T: Terminal, B: Backend>(
    term: &mut T,
    backend: &mut B,
    options: Options,
) -> Option<Login> {
    let mut lines = Lines::new(term);
    loop {
        lines.claim()?;
        // The session starts on a clean screen; a write that fails ends it below anyway.
        let _ = lines.say(text::CLEAR_SCREEN);
        match screens::session(&mut lines, backend, options.idle) {
            Ok(login) => {
                lines.broadcast(&login_details(&login));
                return Some(login);
            }
            Err(End::Cancelled) => {
                let _ = lines.say(&format!("{}\n", text::CANCELLED));
            }
            Err(End::TimedOut) => {
                let _ = lines.say(&format!("\n{}\n", text::TIMED_OUT));
            }
            Err(End::Gone) => {}
        }
    }
}

/// The login details screen.
pub fn login_details(login: &Login) -> String {
    let mut s = format!(
        "\n{}\nAccount {} was created.\nIts SSH keys came from {}.\nLog in with:\n",
        text::DONE,
        login.user,
        login.source
    );
    for address in &login.addresses {
        let host = address.split('/').next().unwrap_or(address);
        s.push_str(&format!("{}{}@{host}\n", text::SSH_PREFIX, login.user));
    }
    if login.addresses.is_empty() {
        s.push_str(&format!(
            "{}{}@ADDRESS (the device has no address yet)\n",
            text::SSH_PREFIX,
            login.user
        ));
    }
    s.push_str(text::FINGERPRINTS);
    s.push('\n');
    for fingerprint in &login.fingerprints {
        s.push_str(&format!("  {fingerprint}\n"));
    }
    s
}
