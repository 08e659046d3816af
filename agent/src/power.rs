//! Reboot and power-off: sync, drain the consoles, unmount, then `reboot(2)`.

use std::io;
use std::path::Path;

use rustix::system::RebootCommand;

use crate::{console, mounts};

/// What to do with the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Restart.
    Reboot,
    /// Switch off.
    PowerOff,
}

/// Why the machine is still running.
#[derive(Debug)]
pub enum PowerError {
    /// The kernel would hang instead: a Raspberry Pi reboots and powers off only through
    /// its watchdog driver.
    NoWatchdog,
    /// `reboot(2)` returned an error.
    Syscall(io::Error),
}

impl std::fmt::Display for PowerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PowerError::NoWatchdog => write!(
                f,
                "the bcm2835_wdt watchdog driver is not loaded, and a Raspberry Pi reboots and \
                 powers off only through it"
            ),
            PowerError::Syscall(e) => write!(f, "the kernel refused: {e}"),
        }
    }
}

impl PowerError {
    /// What the person at the console can do about it.
    pub fn todo(&self) -> &'static str {
        match self {
            PowerError::NoWatchdog => {
                "add bcm2835_wdt to the board's modules; until then, unplug the power"
            }
            PowerError::Syscall(_) => "choose again below, or unplug the power",
        }
    }
}

/// Board compatibles whose reboot and power-off go through the bcm2835 watchdog.
const WATCHDOG_BOARDS: [&str; 5] = [
    "raspberrypi,",
    "brcm,bcm2835",
    "brcm,bcm2836",
    "brcm,bcm2837",
    "brcm,bcm2711",
];

/// Whether a device tree `compatible` property (NUL-separated) names a bcm283x/Pi board.
pub fn needs_watchdog(compatible: &[u8]) -> bool {
    compatible
        .split(|&b| b == 0)
        .any(|c| WATCHDOG_BOARDS.iter().any(|p| c.starts_with(p.as_bytes())))
}

fn check_watchdog() -> Result<(), PowerError> {
    let compatible = std::fs::read("/proc/device-tree/compatible").unwrap_or_default();
    // The driver registers here whether it is built in or a module.
    let driver = Path::new("/sys/bus/platform/drivers/bcm2835-wdt");
    if needs_watchdog(&compatible) && !driver.exists() {
        return Err(PowerError::NoWatchdog);
    }
    Ok(())
}

/// Reboots or powers off; returns only if that could not happen.
pub fn perform(action: Action) -> PowerError {
    // Checked first: on a Pi without the watchdog the kernel would print "Reboot failed --
    // System halted" and hang, and we could not offer the prompt again.
    if let Err(e) = check_watchdog() {
        return e;
    }
    rustix::fs::sync();
    if let Err(e) = mounts::unmount_seed() {
        log::warn!("cannot unmount {}: {e}", mounts::SEED);
    }
    log::info!(
        "{}",
        match action {
            Action::Reboot => "rebooting",
            Action::PowerOff => "powering off",
        }
    );
    console::drain_all();
    let cmd = match action {
        Action::Reboot => RebootCommand::Restart,
        Action::PowerOff => RebootCommand::PowerOff,
    };
    match rustix::system::reboot(cmd) {
        Ok(()) => PowerError::Syscall(io::Error::other("reboot(2) returned")),
        Err(e) => PowerError::Syscall(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pi_boards_need_the_watchdog() {
        assert!(needs_watchdog(b"raspberrypi,3-model-b\0brcm,bcm2837\0"));
        assert!(needs_watchdog(b"brcm,bcm2836\0"));
        assert!(needs_watchdog(b"raspberrypi,4-model-b\0brcm,bcm2711\0"));
    }

    #[test]
    fn other_boards_do_not() {
        assert!(!needs_watchdog(b"linux,dummy-virt\0"));
        assert!(!needs_watchdog(b""));
        assert!(!needs_watchdog(b"\0\0xbrcm,bcm2837"));
    }
}
