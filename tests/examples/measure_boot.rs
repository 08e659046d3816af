//! Measures the agent against the targets in its issue; run by `cross/measure-boot.sh`.
//!
//! Prints: the stripped agent size per arch, the initramfs size per board (zstd and gzip),
//! and on qemu-virt arm64 the time from QEMU's start to the first line of the agent and of
//! the trivial init (same kernel, interleaved runs, medians), with the agent's peak memory.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use coreforge_boards::{Arch, Board};
use coreforge_initramfs::{Compression, InitramfsBuilder};
use coreforge_tests::{agent_binary, trusted_roots, Boot, InitKind, Kernel};

const MIB: f64 = 1024.0 * 1024.0;

fn main() -> Result<()> {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("repetitions must be a number")?
        .unwrap_or(5);

    println!("| what | value | target |");
    println!("| --- | --- | --- |");
    for arch in Arch::ALL {
        let agent = agent_binary(arch)?;
        let size = std::fs::metadata(&agent)?.len();
        let target = if arch == Arch::Arm64 {
            "≤ 1.5 MiB"
        } else {
            ""
        };
        println!(
            "| agent {arch}, stripped | {} B ({:.2} MiB) | {target} |",
            size,
            size as f64 / MIB
        );
    }
    for board in Board::all() {
        let kernel = Kernel::for_arch(board.arch)?;
        for (name, compression) in [("zstd", Compression::Zstd), ("gzip", Compression::Gzip)] {
            let image = InitramfsBuilder::from_agent_file(&agent_binary(board.arch)?)?
                .modules(&kernel.modules_dir(), board.modules)?
                .trusted(&trusted_roots())?
                .mtime(0)
                .build(compression)?;
            let target = if name == "zstd" { "≤ 4 MiB" } else { "" };
            println!(
                "| initramfs {} ({} modules), {name} | {} B ({:.2} MiB; {:.2} MiB unpacked) | {target} |",
                board.id(),
                image.modules.len(),
                image.bytes.len(),
                image.bytes.len() as f64 / MIB,
                image.uncompressed_len as f64 / MIB
            );
        }
    }

    let virt = Board::by_name("qemu-virt", Arch::Arm64)?;
    let mut agent_times = Vec::new();
    let mut trivial_times = Vec::new();
    let mut peak = String::from("?");
    for rep in 0..reps {
        let (t, line) = first_line(virt, InitKind::Agent, rep)?;
        agent_times.push(t);
        if let Some(l) = line {
            peak = l;
        }
        trivial_times.push(first_line(virt, InitKind::Trivial, rep)?.0);
    }
    let (a, t) = (median(&mut agent_times), median(&mut trivial_times));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| qemu-virt arm64: QEMU start → trivial init's first line (median of {reps}) | {:.0} ms | |", ms(t));
    println!(
        "| qemu-virt arm64: QEMU start → agent's first line (median of {reps}) | {:.0} ms | |",
        ms(a)
    );
    println!(
        "| agent's extra time to first line | {:.0} ms | ≤ 1000 ms |",
        ms(a) - ms(t)
    );
    println!("| agent peak memory (VmHWM) | {peak} | |");
    Ok(())
}

/// Boots once; returns the time to the init's first line and the agent's `memory: peak` line.
fn first_line(
    board: &'static Board,
    init: InitKind,
    rep: usize,
) -> Result<(Duration, Option<String>)> {
    let name = format!(
        "measure-{}-{rep}",
        if init == InitKind::Agent {
            "agent"
        } else {
            "trivial"
        }
    );
    let mut boot = Boot::new(&name, board, init);
    let needle = match init {
        InitKind::Agent => {
            boot = boot.with_model_disk()?;
            boot.extra_cmdline = "coreforge.then=poweroff".into();
            format!("coreforge-agent {} starting", env!("CARGO_PKG_VERSION"))
        }
        InitKind::Trivial => "trivial-init: first line".to_string(),
    };
    boot.no_reboot = true;
    let mut qemu = boot.start()?;
    qemu.wait_exit(Duration::from_secs(120))?;
    let Some(time) = qemu.line_time(&needle) else {
        bail!(qemu.failure(&format!("no {needle:?}")));
    };
    let peak = qemu
        .transcript()
        .lines()
        .find_map(|l| l.split("memory: peak ").nth(1).map(str::to_string));
    Ok((time, peak))
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}
