//! `coreforge pack DIR [-o FILE]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::snap;

/// Arguments of `pack`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The snap directory (with meta/snap.yaml).
    dir: PathBuf,
    /// The snap file to write (default: ./NAME_VERSION_ARCH.snap).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Compression of the squashfs, as `snap pack --compression`.
    #[arg(long, value_enum, default_value_t)]
    compression: snap::Compression,
    /// Who owns the files in the snap: `root` (every file root's, no extended attributes) or
    /// `keep` (as in DIR). Default: snapd's rule, `keep` for bases (types base, os, core),
    /// `root` for every other type.
    #[arg(long, value_enum, value_name = "root|keep")]
    owners: Option<snap::Owners>,
}

/// Packs the directory reproducibly and prints the file written.
pub fn run(args: &Args) -> Result<ExitCode> {
    let out = snap::pack(
        &args.dir,
        args.output.as_deref(),
        args.compression,
        args.owners,
    )
    .with_context(|| format!("cannot pack {}", args.dir.display()))?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}
