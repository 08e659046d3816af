//! Device architectures and their names in each tool's vocabulary.

use std::fmt;
use std::str::FromStr;

use crate::BoardError;

/// A device architecture, as Debian names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// 64-bit ARM (`arm64`, Rust's `aarch64`).
    Arm64,
    /// 32-bit ARM, hard float (`armhf`, Rust's `armv7` gnueabihf).
    Armhf,
}

impl Arch {
    /// Every architecture coreforge builds for.
    pub const ALL: [Arch; 2] = [Arch::Arm64, Arch::Armhf];

    /// Debian's (and snapd's) name: `arm64` or `armhf`.
    pub fn debian_name(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::Armhf => "armhf",
        }
    }

    /// The Rust target triple the agent is built for.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
            Arch::Armhf => "armv7-unknown-linux-gnueabihf",
        }
    }

    /// The QEMU system emulator binary for this architecture.
    pub fn qemu_system(self) -> &'static str {
        match self {
            Arch::Arm64 => "qemu-system-aarch64",
            Arch::Armhf => "qemu-system-arm",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.debian_name())
    }
}

impl FromStr for Arch {
    type Err = BoardError;

    /// Accepts Debian's names and the Rust/`uname -m` spellings.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            "armhf" | "armv7" | "armv7l" | "arm" => Ok(Arch::Armhf),
            other => Err(BoardError::UnknownArch(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for arch in Arch::ALL {
            assert_eq!(arch.debian_name().parse::<Arch>().unwrap(), arch);
            assert_eq!(arch.to_string(), arch.debian_name());
        }
    }

    #[test]
    fn rust_and_uname_spellings_parse() {
        assert_eq!("aarch64".parse::<Arch>().unwrap(), Arch::Arm64);
        assert_eq!("armv7l".parse::<Arch>().unwrap(), Arch::Armhf);
    }

    #[test]
    fn unknown_arch_is_an_error_naming_it() {
        let err = "riscv64".parse::<Arch>().unwrap_err();
        assert!(err.to_string().contains("riscv64"), "{err}");
    }

    #[test]
    fn targets_and_emulators_match_the_arch() {
        assert!(Arch::Arm64.rust_target().starts_with("aarch64"));
        assert!(Arch::Armhf.rust_target().starts_with("armv7"));
        assert_eq!(Arch::Arm64.qemu_system(), "qemu-system-aarch64");
        assert_eq!(Arch::Armhf.qemu_system(), "qemu-system-arm");
    }
}
