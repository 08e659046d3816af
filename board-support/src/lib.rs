//! What coreforge knows about each board: architecture, consoles, kernel command line,
//! device tree, the kernel modules the agent loads at boot, and how QEMU emulates it.
//!
//! ```
//! use coreforge_boards::{Arch, Board};
//! let pi3 = Board::by_name("pi3", Arch::Arm64).unwrap();
//! assert_eq!(pi3.qemu.machine, "raspi3b");
//! assert!(pi3.modules.contains(&"bcm2835_wdt"));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod arch;
mod board;
mod qemu;

pub use arch::Arch;
pub use board::{Board, BoardError, Console, ConsoleKind, StatusLed};
pub use qemu::{DiskBus, QemuError, QemuExtras, QemuInputs, QemuMachine};
