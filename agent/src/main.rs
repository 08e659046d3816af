//! `coreforge-agent`: PID 1 of the coreforge initramfs.
//!
//! It mounts the kernel file systems, opens the consoles, loads the board's modules, finds
//! the boot partition, verifies and reports the seed's model, then waits at a prompt. It never exits:
//! see `init.rs` for the boot script.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod clock;
mod cmdline;
mod console;
mod consoleconf;
mod disk;
mod fat;
mod firstboot;
mod handover;
mod identity;
mod init;
mod logger;
mod memory;
mod model;
mod modules;
mod mounts;
mod net;
mod power;
mod prompt;
mod seed;
mod setup;
mod state;
mod status;
mod unit_name;

fn main() {
    if std::process::id() != 1 {
        // Outside an initramfs the boot phases would mount over the host's /proc and /dev.
        eprintln!(
            "coreforge-agent {} is PID 1 of the coreforge initramfs and runs only as PID 1",
            env!("CARGO_PKG_VERSION")
        );
        std::process::exit(2);
    }
    init::Init::start().run()
}
