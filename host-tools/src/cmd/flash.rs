//! `coreforge flash IMAGE DEVICE [--bmap FILE]`: the step after `build-image`, for a user
//! with an SD card reader.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::flash::{self, Plan};
use crate::image::bmap;

/// Arguments of `flash`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image `build-image` wrote.
    image: PathBuf,
    /// The SD card: a block device such as /dev/sdX or /dev/mmcblk0 (its partitions
    /// must not be mounted).
    device: PathBuf,
    /// A bmap file for the image (`build-image --bmap`, or bmaptool's): write the ranges it
    /// maps, checked against its SHA-256s. Default: the image's own holes (SEEK_HOLE).
    #[arg(long, value_name = "FILE")]
    bmap: Option<PathBuf>,
    /// Write to DEVICE even if it is not a block device (an image file).
    #[arg(long)]
    force: bool,
}

/// Flashes the image; exit 1 (with the reason) on any refusal or failure.
pub fn run(args: &Args) -> Result<ExitCode> {
    let started = Instant::now();
    let map = args
        .bmap
        .as_deref()
        .map(bmap::read)
        .transpose()
        .context("--bmap")?;
    let plan = Plan::new(&args.image, map.as_ref())?;
    let target = flash::check_target(&args.device, plan.image_size, args.force)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta} left",
        ) {
            b.set_style(style);
        }
        b
    });
    let progress = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let report = flash::flash(&args.image, &target, &plan, &progress, &|_| {})?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{}: wrote {} MiB of {} MiB ({} ranges, read back and verified) in {secs:.1} s",
        args.device.display(),
        report.written.div_ceil(1 << 20),
        plan.image_size.div_ceil(1 << 20),
        report.verified
    );
    Ok(ExitCode::SUCCESS)
}
