//! Tells board-support/snaps/build.sh what the board snaps take from a Debian kernel, from
//! the board table (so the snaps cannot drift from what the boards boot with):
//!
//! - `snap-inputs modules ARCH MODULES_DIR`: the module files (relative to MODULES_DIR, a
//!   kernel's `lib/modules/<release>/`) of every ARCH board's boot modules, then of its OS
//!   modules (`Board::os_modules`: Wi-Fi), with their dependency closure, as
//!   coreforge-initramfs computes it, one per line in load order;
//! - `snap-inputs dtbs ARCH`: the device trees the ARCH boards and their QEMU machines use,
//!   relative to the kernel package's dtb folder, one per line.

use std::path::Path;
use std::process::ExitCode;

use coreforge_boards::{Arch, Board};
use coreforge_initramfs::ModuleIndex;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("snap-inputs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<Vec<String>> {
    match args {
        [what, arch, dir] if what == "modules" => modules(arch.parse()?, Path::new(dir)),
        [what, arch] if what == "dtbs" => Ok(dtbs(arch.parse()?)),
        _ => Err("usage: snap-inputs modules ARCH MODULES_DIR | snap-inputs dtbs ARCH".into()),
    }
}

/// The boards built for `arch`.
fn boards(arch: Arch) -> impl Iterator<Item = &'static Board> {
    Board::all().iter().filter(move |b| b.arch == arch)
}

/// Every board's boot and OS modules with their closure, each file once, relative to `dir`.
fn modules(arch: Arch, dir: &Path) -> Result<Vec<String>> {
    let index = ModuleIndex::scan(dir)?;
    let names: Vec<&str> = boards(arch)
        .flat_map(|b| b.modules.iter().copied())
        .chain(boards(arch).flat_map(|b| b.os_modules.iter().copied()))
        .collect();
    let mut out: Vec<String> = Vec::new();
    for module in index.resolve(&names)? {
        let rel = module.source.strip_prefix(dir)?.display().to_string();
        if !out.contains(&rel) {
            out.push(rel);
        }
    }
    Ok(out)
}

/// The boards' own device trees and their QEMU machines', each once, in table order.
fn dtbs(arch: Arch) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for dtb in boards(arch).flat_map(|b| [b.dtb, b.qemu.dtb]).flatten() {
        if !out.iter().any(|d| d == dtb) {
            out.push(dtb.to_string());
        }
    }
    out
}
