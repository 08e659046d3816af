//! Boots one board in QEMU with the agent, the model disk and the serial console on this
//! terminal (see README, "Booting the agent by hand").
//!
//! `cargo run -p coreforge-tests --example boot -- BOARD ARCH [KERNEL ARGS...]`,
//! e.g. `-- pi3 arm64` or `-- qemu-virt armhf coreforge.debug`.

use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use coreforge_boards::{Arch, Board};
use coreforge_tests::{Boot, InitKind};

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, arch, extra @ ..] = args.as_slice() else {
        bail!(
            "usage: boot BOARD ARCH [KERNEL ARGS...]; boards: pi3, qemu-virt; arches: arm64, armhf"
        );
    };
    let board = Board::by_name(name, arch.parse::<Arch>()?)?;
    let mut boot =
        Boot::new(&format!("by-hand-{}", board.id()), board, InitKind::Agent).with_model_disk()?;
    boot.extra_cmdline = extra.join(" ");
    let prepared = boot.prepare()?;
    eprintln!(
        "$ {} {}",
        prepared.program,
        prepared
            .args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    eprintln!("(the serial console is this terminal; Ctrl-C ends QEMU)");
    let status = Command::new(prepared.program)
        .args(&prepared.args)
        .status()
        .with_context(|| format!("running {}", prepared.program))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
